r"""Multi-task feature learning in two-layer ReLU networks (Collins et al., ICML 2024).

T binary tasks whose labels depend on x only through an r-dimensional projection
:math:`M^\top x`; a two-layer ReLU network with a shared first layer and per-task
heads, trained by the alternating (heads first, then representation) algorithm,
recovers span(M). See ``docs/multitask.md`` for the reconstructed choices.

- :mod:`.data`: the data model (:func:`make_tasks`, :class:`MultiIndexTasks`);
- :mod:`.model`: the network (:class:`MultiTaskReLU`) and the alternating and joint steps;
- :mod:`.metrics`: principal angles, subspace error, energy fraction, downstream errors.
"""

from sciprob.theory.multitask.data import (
    FAMILIES,
    MultiIndexTasks,
    check_dimensions,
    check_family,
    make_tasks,
    random_subspace,
)
from sciprob.theory.multitask.metrics import (
    downstream_errors,
    energy_in_subspace,
    energy_spectrum,
    principal_angles,
    recovered_dims,
    samples_needed,
    subspace_error,
    top_right_singular_space,
)
from sciprob.theory.multitask.model import (
    ALGORITHMS,
    LOSSES,
    MultiTaskReLU,
    TrainHistory,
    alternating_step,
    head_step,
    joint_step,
    margin_loss,
    representation_step,
    train_multitask,
)

__all__: list[str] = [
    "ALGORITHMS",
    "FAMILIES",
    "LOSSES",
    "MultiIndexTasks",
    "MultiTaskReLU",
    "TrainHistory",
    "alternating_step",
    "check_dimensions",
    "check_family",
    "downstream_errors",
    "energy_in_subspace",
    "energy_spectrum",
    "head_step",
    "joint_step",
    "make_tasks",
    "margin_loss",
    "principal_angles",
    "random_subspace",
    "recovered_dims",
    "representation_step",
    "samples_needed",
    "subspace_error",
    "top_right_singular_space",
    "train_multitask",
]
