"""Meta-reweighting for noisy labels: MW-Net, Learning-to-Reweight, FaMUS, the Pyro form.

A trainer for any ``nn.Module`` classifier and torch optimiser learns how much
each training example counts from a small clean set
(:class:`MetaReweightTrainer` with :class:`MetaWeightNet` or
:class:`LearningToReweight`), optionally with the FaMUS layer-wise
approximation of the meta-gradient (:class:`FaMUS`); the weighted objective as
a Pyro model (:class:`WeightedLikelihood`) and Bayesian data reweighting
(:func:`fit_bayesian_reweighting`) as a clean-set-free baseline; label-noise
models and diagnostics.
"""

from sciprob.learning.reweighting.diagnostics import (
    GradientAgreement,
    flat_cosine,
    meta_gradient_agreement,
    relative_variance,
    weight_auc,
)
from sciprob.learning.reweighting.famus import (
    FaMUS,
    Layer,
    LayerSampler,
    famus_layers,
    gradient_matching_loss,
    layer_count_loss,
)
from sciprob.learning.reweighting.noise import NoisyLabels, check_clean_set, clean_split, corrupt_labels
from sciprob.learning.reweighting.pyro_models import (
    BayesianReweighting,
    WeightedLikelihood,
    fit_bayesian_reweighting,
)
from sciprob.learning.reweighting.trainer import (
    FitResult,
    MetaGradient,
    MetaReweightTrainer,
    StepInfo,
    WeightedObjective,
    accuracy,
)
from sciprob.learning.reweighting.weighting import LearningToReweight, MetaWeightNet, VNet, Weighting

__all__ = [
    "BayesianReweighting",
    "FaMUS",
    "FitResult",
    "GradientAgreement",
    "Layer",
    "LayerSampler",
    "LearningToReweight",
    "MetaGradient",
    "MetaReweightTrainer",
    "MetaWeightNet",
    "NoisyLabels",
    "StepInfo",
    "VNet",
    "WeightedLikelihood",
    "WeightedObjective",
    "Weighting",
    "accuracy",
    "check_clean_set",
    "clean_split",
    "corrupt_labels",
    "famus_layers",
    "fit_bayesian_reweighting",
    "flat_cosine",
    "gradient_matching_loss",
    "layer_count_loss",
    "meta_gradient_agreement",
    "relative_variance",
    "weight_auc",
]
