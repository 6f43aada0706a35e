r"""Subspace recovery and downstream evaluation of a learnt first layer.

Recovery compares the top-r right singular space :math:`V \in \mathbb R^{d\times r}`
of :math:`W` with span(M) through the principal angles
:math:`\theta_1 \le \dots \le \theta_r`, whose cosines are the singular values of
:math:`M^\top V`. The subspace error is

.. math::

    \operatorname{err}(W, M) = \sin\theta_r = \|(I - M M^\top) V\|_2 \in [0, 1],

0 when the top singular space of W is span(M), 1 when some direction of it is
orthogonal to span(M). The energy fraction is
:math:`\|W M\|_F^2 / \|W\|_F^2`.

Downstream evaluation freezes the features :math:`\mathrm{relu}(W x)`, fits a
linear classifier on n samples of a fresh task
on the same r coordinates and reports its test error (ridge linear classifier).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from sciprob.theory.multitask.data import MultiIndexTasks


def _as_matrices(W: Tensor, M: Tensor) -> tuple[Tensor, Tensor]:  # noqa: N803
    W = torch.as_tensor(W).detach().cpu().to(torch.float64)  # noqa: N806
    M = torch.as_tensor(M).detach().cpu().to(torch.float64)  # noqa: N806
    if W.ndim != 2 or M.ndim != 2 or W.shape[1] != M.shape[0]:
        raise ValueError(
            f"`W` must have shape (m, d) and `M` shape (d, r) with the same d, "
            f"got {tuple(W.shape)} and {tuple(M.shape)}"
        )
    if W.shape[0] < M.shape[1]:
        raise ValueError(f"`W` needs at least r={M.shape[1]} rows (neurons), got m={W.shape[0]}")
    return W, M


def top_right_singular_space(W: Tensor, r: int) -> Tensor:  # noqa: N803
    """Orthonormal basis of the top-``r`` right singular space of ``W`` (m, d): shape (d, r)."""
    _, _, vh = torch.linalg.svd(torch.as_tensor(W).detach().cpu().to(torch.float64), full_matrices=False)
    return vh[:r].T


def principal_angles(W: Tensor, M: Tensor) -> Tensor:  # noqa: N803
    """Principal angles between the top-r right singular space of W and span(M).

    Parameters
    ----------
    W : Tensor of shape (m, d)
        First-layer weights, m >= r.
    M : Tensor of shape (d, r)
        Orthonormal basis of the ground truth.

    Returns
    -------
    Tensor of shape (r,), float64
        Angles in radians, ascending, in [0, pi/2].
    """
    W, M = _as_matrices(W, M)  # noqa: N806
    cos = torch.linalg.svdvals(M.T @ top_right_singular_space(W, M.shape[1])).clamp(0.0, 1.0)
    return torch.sort(torch.arccos(cos)).values


def subspace_error(W: Tensor, M: Tensor) -> float:  # noqa: N803
    """Sine of the largest principal angle, ``||(I - M M^T) V||_2`` in [0, 1] (see the module docstring)."""
    W, M = _as_matrices(W, M)  # noqa: N806
    V = top_right_singular_space(W, M.shape[1])  # noqa: N806
    return float(torch.linalg.matrix_norm(V - M @ (M.T @ V), ord=2).clamp(0.0, 1.0))


def energy_in_subspace(W: Tensor, M: Tensor) -> float:  # noqa: N803
    """Fraction of W's squared Frobenius norm inside span(M): ``||W M||_F^2 / ||W||_F^2``."""
    W, M = _as_matrices(W, M)  # noqa: N806
    return float((W @ M).square().sum() / W.square().sum())


def recovered_dims(W: Tensor, M: Tensor, cos_threshold: float = 0.9) -> int:  # noqa: N803
    """Count the ground-truth directions recovered: principal angles with cosine >= ``cos_threshold``."""
    if not 0.0 < cos_threshold < 1.0:
        raise ValueError(f"`cos_threshold` must lie in (0, 1), got {cos_threshold!r}")
    return int((torch.cos(principal_angles(W, M)) >= cos_threshold).sum())


def energy_spectrum(W: Tensor, k: int | None = None) -> np.ndarray:  # noqa: N803
    """Normalised squared singular values of W (descending, summing to 1), the first ``k`` of them."""
    s2 = torch.linalg.svdvals(torch.as_tensor(W).detach().cpu().to(torch.float64)).square()
    out = (s2 / s2.sum()).numpy()
    return out if k is None else out[:k]


def downstream_errors(
    W: Tensor,  # noqa: N803
    tasks: MultiIndexTasks,
    n_train: Sequence[int],
    *,
    n_test: int,
    generator: torch.Generator,
    ridge: float = 1.0,
) -> np.ndarray:
    r"""Test errors of linear classifiers on the frozen features ``relu(W x)``.

    For every task of ``tasks`` one sample of ``max(n_train) + n_test`` points is
    drawn; the classifier for ``n`` uses its first ``n`` points (nested training
    sets) and all classifiers share the last ``n_test`` points as test set.
    Features are standardised on the training set; the classifier is the ridge
    (regularised least-squares) linear classifier with an intercept,

    .. math::

        \hat w = \arg\min_w \frac1n \sum_i (y_i - w^\top \tilde\phi_i - b)^2
            + \frac{\lambda}{n} \|w\|^2, \qquad \hat y = \operatorname{sign}(\hat w^\top
            \tilde\phi + b),

    solved in closed form for every task at once (the same predictions as
    scikit-learn's ``RidgeClassifier(alpha=ridge)``).

    Parameters
    ----------
    W : Tensor of shape (m, d)
        Frozen first layer.
    tasks : MultiIndexTasks
        Downstream tasks (on the ground-truth coordinates).
    n_train : sequence of int
        Training-set sizes, each >= 2.
    n_test : int
        Test points per task, >= 1.
    generator : torch.Generator
    ridge : float, default=1.0
        :math:`\lambda > 0`.

    Returns
    -------
    ndarray of shape (len(n_train), T)
        Test error (fraction misclassified) per size and task.
    """
    sizes = [int(n) for n in n_train]
    if not sizes or min(sizes) < 2 or n_test < 1:
        raise ValueError(f"`n_train` sizes must be >= 2 and `n_test` >= 1, got {n_train!r} and {n_test!r}")
    if not ridge > 0:
        raise ValueError(f"`ridge` must be positive, got {ridge!r}")
    x, y = tasks.sample(max(sizes) + n_test, generator=generator, dtype=torch.float64)
    W = torch.as_tensor(W).detach().cpu().to(torch.float64)  # noqa: N806
    feats = torch.relu(x @ W.T)  # (T, n, m)
    x_te, y_te = feats[:, -n_test:], y[:, -n_test:]
    eye = torch.eye(feats.shape[-1], dtype=torch.float64)
    errors = np.empty((len(sizes), tasks.T))
    for i, n in enumerate(sizes):
        x_tr, y_tr = feats[:, :n], y[:, :n]
        mu, sd = x_tr.mean(1, keepdim=True), x_tr.std(1, keepdim=True).clamp_min(1e-12)
        z_tr, z_te = (x_tr - mu) / sd, (x_te - mu) / sd
        y_mean = y_tr.mean(1, keepdim=True)
        # centred features and labels absorb the intercept: (Z^T Z + lambda I) w = Z^T (y - mean y)
        zc = z_tr - z_tr.mean(1, keepdim=True)
        w = torch.linalg.solve(zc.mT @ zc + ridge * eye, zc.mT @ (y_tr - y_mean).unsqueeze(-1))
        b = y_mean - (z_tr.mean(1, keepdim=True) @ w).squeeze(-1)
        pred = torch.where((z_te @ w).squeeze(-1) + b >= 0, 1.0, -1.0)
        errors[i] = (pred != y_te).to(torch.float64).mean(1).numpy()
    return errors


def samples_needed(n_train: Sequence[int], errors: Sequence[float], target: float) -> int | None:
    """Smallest training size whose error is at most ``target``, or ``None`` if none reaches it.

    Parameters
    ----------
    n_train : sequence of int
        Sizes, ascending.
    errors : sequence of float
        Error at each size (e.g. averaged over tasks and seeds).
    target : float
        Target test error.
    """
    for n, err in zip(n_train, errors, strict=True):
        if err <= target:
            return int(n)
    return None
