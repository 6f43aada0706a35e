r"""Pruned parameter efficiency (PPE) — sciprob's reconstruction.

The survey (Hoefler et al. 2021, abstract) says it defines "a metric of
pruned parameter efficiency that could serve as a baseline for comparison of
different sparse networks". Its formula was not found in any text available
to this project (the abstract, the ISTA and unixer.de pages, the
``spcl/sparsity-in-deep-learning`` bibliography repository, and searches of
stored documentation, pages and code). What follows is **our
reconstruction**, the closest sound metric we could define from that
sentence: parameter efficiency measured as the compression a method reaches
without giving up accuracy.

.. math::

    \mathrm{PPE}_\delta(m) = \max\Bigl\{\tfrac{1}{1 - s} \;:\; s \in S \cup \{0\},\;
    \mathrm{acc}_m(s) \ge \mathrm{acc}_\text{dense} - \delta\Bigr\},

the largest compression factor (dense parameters over remaining parameters)
among the tested sparsities :math:`S` at which method :math:`m` stays within
:math:`\delta` (default one accuracy point) of the dense model trained in the
same run. It is 1 when no tested sparsity keeps the accuracy, it depends on
the grid :math:`S` (report it with the grid), and a larger value is better.
:func:`accuracy_per_parameter` gives a grid-free companion, the mean over
:math:`S` of :math:`\mathrm{acc}_m(s) / \mathrm{acc}_\text{dense}`
weighted by :math:`\log\frac{1}{1-s}`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def _check(accuracies: Mapping[float, float], dense_accuracy: float) -> None:
    if not accuracies:
        raise ValueError("`accuracies` must map at least one sparsity to an accuracy, got an empty mapping")
    for s, a in accuracies.items():
        if not 0.0 <= s < 1.0:
            raise ValueError(f"`accuracies` has sparsity {s!r} outside [0, 1)")
        if not math.isfinite(a):
            raise ValueError(f"`accuracies[{s!r}]` is not finite: {a!r}")
    if not math.isfinite(dense_accuracy):
        raise ValueError(f"`dense_accuracy` must be finite, got {dense_accuracy!r}")


def pruned_parameter_efficiency(
    accuracies: Mapping[float, float], dense_accuracy: float, tolerance: float = 0.01
) -> float:
    """Return the largest compression ``1/(1-s)`` within ``tolerance`` of dense accuracy (reconstruction).

    Parameters
    ----------
    accuracies : mapping of float to float
        Accuracy (fraction in [0, 1]) at each tested sparsity.
    dense_accuracy : float
        Accuracy of the dense model of the same run.
    tolerance : float, default=0.01
        Allowed accuracy loss δ (0.01 = one point).

    Returns
    -------
    float
        ``>= 1``; 1 if no sparsity keeps the accuracy.

    Examples
    --------
    >>> pruned_parameter_efficiency({0.5: 0.97, 0.9: 0.965, 0.98: 0.90}, dense_accuracy=0.97)
    10.000000000000002
    """
    _check(accuracies, dense_accuracy)
    if not tolerance >= 0.0:
        raise ValueError(f"`tolerance` must be non-negative, got {tolerance!r}")
    ok = [s for s, a in accuracies.items() if a >= dense_accuracy - tolerance]
    return max([1.0] + [1.0 / (1.0 - s) for s in ok])


def accuracy_per_parameter(accuracies: Mapping[float, float], dense_accuracy: float) -> float:
    r"""Return the log-compression-weighted mean of :math:`\mathrm{acc}(s)/\mathrm{acc}_\text{dense}`.

    Sparsities 0 get weight 0; returns ``nan`` if all weights are 0.
    """
    _check(accuracies, dense_accuracy)
    if dense_accuracy <= 0:
        raise ValueError(f"`dense_accuracy` must be positive, got {dense_accuracy!r}")
    weights = {s: -math.log1p(-s) for s in accuracies}
    total = sum(weights.values())
    if total == 0:
        return math.nan
    return sum(weights[s] * a / dense_accuracy for s, a in accuracies.items()) / total
