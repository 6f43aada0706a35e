"""Iterative linearised training and empirical neural tangent kernels.

Train any PyTorch model between the linearised (finite-width NTK, no feature
learning) regime and ordinary gradient descent, control how often the
features move, and measure how the empirical NTK changes (Goldwaser & Ge,
arXiv:2211.12345). See ``docs/linearisation.md``.
"""

from sciprob.theory.linearisation.gauss_newton import damped_gauss_newton_step
from sciprob.theory.linearisation.linearise import (
    LinearisedModel,
    check_linearisable,
    linearise,
    trainable_parameters,
)
from sciprob.theory.linearisation.ntk import empirical_ntk, kernel_distance, kernel_target_alignment
from sciprob.theory.linearisation.trainer import IterativeLinearisedTrainer, KernelTracker

__all__ = [
    "IterativeLinearisedTrainer",
    "KernelTracker",
    "LinearisedModel",
    "check_linearisable",
    "damped_gauss_newton_step",
    "empirical_ntk",
    "kernel_distance",
    "kernel_target_alignment",
    "linearise",
    "trainable_parameters",
]
