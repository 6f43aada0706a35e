r"""Bayes-optimal teacher-student learning: GLM state evolution, GAMP, Pyro posteriors.

Notation (Camilli, Tieplova & Barbier 2023): n samples, d inputs, p hidden units,
:math:`\alpha = n/d`. The formulas, and which quantity bounds which, are explained
in ``docs/teacher_student.md`` and in the docstrings of the modules:

- :mod:`.channels` and :mod:`.state_evolution`: the GLM replica formula (free entropy,
  mutual information, MSE, Bayes-optimal generalisation error) for a Gaussian prior and
  the noisy linear, sign and ReLU channels;
- :mod:`.equivalence`: the coefficients :math:`(\kappa_0, \kappa_1, \kappa_*)` and the GLM
  a two-layer teacher is Gaussian-equivalent to;
- :mod:`.gamp`: GAMP on finite d with its state-evolution prediction;
- :mod:`.two_layer`: the two-layer teacher-student pair as a Pyro model, sampled with NUTS
  (:func:`sciprob.ppl.run_nuts`) or fitted by SVI.
"""

from sciprob.theory.teacher_student.channels import (
    CHANNELS,
    Channel,
    NoisyLinearChannel,
    ReLUChannel,
    SignChannel,
    make_channel,
)
from sciprob.theory.teacher_student.equivalence import (
    ACTIVATIONS,
    Coefficients,
    EquivalentGLM,
    closed_form_coefficients,
    equivalence_coefficients,
    equivalent_glm,
)
from sciprob.theory.teacher_student.gamp import GAMPResult, GLMData, gamp, sample_glm
from sciprob.theory.teacher_student.quadrature import gauss_hermite, gaussian_expectation
from sciprob.theory.teacher_student.state_evolution import (
    StateEvolution,
    noisy_linear_mse,
    state_evolution,
    state_evolution_trajectory,
)
from sciprob.theory.teacher_student.two_layer import (
    TORCH_ACTIVATIONS,
    PosteriorEstimate,
    TeacherData,
    TwoLayerNetwork,
    evaluate_posterior,
    nuts_posterior,
    sample_teacher_data,
    svi_posterior,
)

__all__: list[str] = [
    "ACTIVATIONS",
    "CHANNELS",
    "Channel",
    "Coefficients",
    "EquivalentGLM",
    "GAMPResult",
    "GLMData",
    "NoisyLinearChannel",
    "ReLUChannel",
    "SignChannel",
    "StateEvolution",
    "PosteriorEstimate",
    "TORCH_ACTIVATIONS",
    "TeacherData",
    "TwoLayerNetwork",
    "evaluate_posterior",
    "nuts_posterior",
    "sample_teacher_data",
    "svi_posterior",
    "closed_form_coefficients",
    "equivalence_coefficients",
    "equivalent_glm",
    "gamp",
    "gauss_hermite",
    "gaussian_expectation",
    "make_channel",
    "noisy_linear_mse",
    "sample_glm",
    "state_evolution",
    "state_evolution_trajectory",
]
