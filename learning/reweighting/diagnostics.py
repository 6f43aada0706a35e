r"""Diagnostics: agreement of FaMUS's meta-gradient with the exact one, weight AUC.

For batches :math:`b = 1..B` the exact meta-gradient :math:`g_b` (every layer)
and FaMUS's :math:`g'_b` (the layers its samplers keep, without the sampler
loss terms) are compared by their cosine and by their spread over batches,
the relative variance :math:`\frac1B\sum_b\|g_b - \bar g\|^2 / \|\bar g\|^2`
(Xu et al. 2021 claim a "reasonably accurate but low-variance" approximation).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor

from sciprob.learning.reweighting.trainer import MetaReweightTrainer

__all__ = ["GradientAgreement", "flat_cosine", "meta_gradient_agreement", "relative_variance", "weight_auc"]


class GradientAgreement(NamedTuple):
    r"""FaMUS against the exact meta-gradient over a set of batches.

    Attributes
    ----------
    cosine : float
        Mean cosine similarity of :math:`g'_b` and :math:`g_b`.
    cosine_std : float
        Its standard deviation over batches.
    exact_variance : float
        Relative variance of the exact meta-gradient over batches.
    famus_variance : float
        Relative variance of FaMUS's meta-gradient.
    norm_ratio : float
        Mean :math:`\|g'_b\| / \|g_b\|`.
    kept_fraction : float
        Mean share of layers kept by the samplers.
    """

    cosine: float
    cosine_std: float
    exact_variance: float
    famus_variance: float
    norm_ratio: float
    kept_fraction: float


def _flat(g: dict[str, Tensor]) -> Tensor:
    return torch.cat([g[k].reshape(-1) for k in sorted(g)]).double()


def flat_cosine(a: dict[str, Tensor], b: dict[str, Tensor]) -> float:
    """Cosine similarity of two gradients given as dicts of tensors (0 if either is zero)."""
    fa, fb = _flat(a), _flat(b)
    denom = float(fa.norm() * fb.norm())
    return float(fa @ fb) / denom if denom > 0 else 0.0


def relative_variance(grads: list[Tensor]) -> float:
    r""":math:`\frac1B\sum_b\|g_b-\bar g\|^2/\|\bar g\|^2` of flat gradients (inf if the mean is zero)."""
    stack = torch.stack(grads)
    mean = stack.mean(0)
    spread = float(((stack - mean) ** 2).sum(1).mean())
    norm = float((mean**2).sum())
    return spread / norm if norm > 0 else float("inf")


def meta_gradient_agreement(
    trainer: MetaReweightTrainer, batches: Iterable[tuple[Tensor, Tensor, Tensor, Tensor]]
) -> GradientAgreement:
    """Compare FaMUS's meta-gradient with the exact one on each batch (the model is not changed).

    Parameters
    ----------
    trainer : MetaReweightTrainer
        A trainer with a weighting and FaMUS samplers.
    batches : iterable of (x, y, x_meta, y_meta)
        Training and clean batches.

    Returns
    -------
    GradientAgreement

    Raises
    ------
    ValueError
        The trainer has no FaMUS samplers, or ``batches`` is empty.
    """
    if trainer.famus is None:
        raise ValueError("`trainer` has no FaMUS samplers to compare; build it with famus=FaMUS(model)")
    cos, exact, approx, ratio, kept = [], [], [], [], []
    n_layers = len(trainer.layers)
    for x, y, xm, ym in batches:
        choice = trainer.meta_gradient(x, y, xm, ym).kept
        g = _flat(trainer.meta_gradient(x, y, xm, ym, keep=[True] * n_layers).weighting)
        g_approx = _flat(trainer.meta_gradient(x, y, xm, ym, keep=choice).weighting)
        denom = float(g.norm() * g_approx.norm())
        cos.append(float(g @ g_approx) / denom if denom > 0 else 0.0)
        ratio.append(float(g_approx.norm() / g.norm()) if float(g.norm()) > 0 else float("nan"))
        exact.append(g)
        approx.append(g_approx)
        kept.append(float(np.mean(choice)))
    if not cos:
        raise ValueError("`batches` is empty; give at least one (x, y, x_meta, y_meta) batch")
    return GradientAgreement(
        float(np.mean(cos)),
        float(np.std(cos)),
        relative_variance(exact),
        relative_variance(approx),
        float(np.nanmean(ratio)),
        float(np.mean(kept)),
    )


def weight_auc(weights: np.ndarray, noisy: np.ndarray) -> float:
    """AUC of the weights as a score of clean (not mislabelled) membership.

    Parameters
    ----------
    weights : ndarray of shape (n,)
        Learnt per-example weights.
    noisy : ndarray of shape (n,), dtype bool
        Whether each label is wrong.

    Returns
    -------
    float
        1 when every clean example outweighs every noisy one, 0.5 for chance;
        NaN when one of the two groups is empty.
    """
    w, z = np.asarray(weights, dtype=float), np.asarray(noisy, dtype=bool)
    if w.shape != z.shape:
        raise ValueError(f"`weights` {w.shape} and `noisy` {z.shape} must have the same shape")
    if z.all() or not z.any():
        return float("nan")
    return float(roc_auc_score(~z, w))
