r"""Generalised approximate message passing (GAMP) for a GLM with a Gaussian prior.

For data :math:`X \in \mathbb R^{n \times d}` with i.i.d. :math:`\mathcal N(0, 1)`
entries, :math:`F = X/\sqrt d` and the prior :math:`\mathcal N(0, 1)`, one
iteration with scalar variances (valid for i.i.d. Gaussian data) reads [1]_ [2]_

.. math::

    V^t &= \overline{v^t}, \qquad \omega^t = F\hat w^t - V^t g^{t-1},\\
    g^t &= g_{\rm out}(y, \omega^t, V^t), \qquad
    A^t = -\tfrac1d \textstyle\sum_\mu \partial_\omega g_{\rm out}(y_\mu, \omega^t_\mu, V^t),\\
    B^t &= F^\top g^t + A^t \hat w^t, \qquad
    \hat w^{t+1} = B^t/(1 + A^t), \qquad v^{t+1} = 1/(1 + A^t).

Started from :math:`\hat w^0 = 0`, :math:`v^0 = 1`, its overlap
:math:`\hat w^{t\top} w^*/d` follows the undamped state evolution
:math:`q_t` (:func:`~sciprob.theory.teacher_student.state_evolution.state_evolution_trajectory`)
as d grows. Cost: two matrix-vector products, O(nd), per iteration.

References
----------
.. [1] S. Rangan, "Generalized approximate message passing for estimation with random linear
   mixing", ISIT 2011.
.. [2] J. Barbier, F. Krzakala, N. Macris, L. Miolane, L. Zdeborová, PNAS 116(12), 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sciprob.theory.teacher_student.channels import Channel
from sciprob.theory.teacher_student.state_evolution import state_evolution_trajectory


@dataclass(frozen=True)
class GLMData:
    """A teacher GLM sample.

    Attributes
    ----------
    X : ndarray of shape (n, d)
        Inputs with i.i.d. standard Gaussian entries.
    y : ndarray of shape (n,)
        Labels.
    w_star : ndarray of shape (d,)
        Teacher weights.
    """

    X: np.ndarray
    y: np.ndarray
    w_star: np.ndarray


def sample_glm(channel: Channel, n: int, d: int, rng: np.random.Generator) -> GLMData:
    r"""Draw a teacher on the sphere :math:`\|w^*\|^2 = d`, inputs and labels.

    The Gaussian prior's norm concentrates on this sphere; fixing it removes
    the :math:`O(d^{-1/2})` fluctuation of :math:`\rho` from finite-d comparisons.

    Parameters
    ----------
    channel : Channel
        Output channel.
    n, d : int
        Samples and dimension, both >= 1.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    GLMData
    """
    if n < 1 or d < 1:
        raise ValueError(f"`n` and `d` must be >= 1, got n={n}, d={d}")
    w_star = rng.standard_normal(d)
    w_star *= np.sqrt(d) / np.linalg.norm(w_star)
    X = rng.standard_normal((n, d))
    return GLMData(X=X, y=channel.sample(X @ w_star / np.sqrt(d), rng), w_star=w_star)


@dataclass(frozen=True)
class GAMPResult:
    r"""Outcome of :func:`gamp` (T = iterations run).

    Attributes
    ----------
    w_hat : ndarray of shape (d,)
        Posterior-mean estimate.
    v_hat : float
        Posterior variance per component.
    overlap : ndarray of shape (T,)
        :math:`m_t = \hat w^{t\top} w^*/d` (NaN without ``w_star``).
    self_overlap : ndarray of shape (T,)
        :math:`q_t = \|\hat w^t\|^2/d`.
    mse : ndarray of shape (T,)
        :math:`\|\hat w^t - w^*\|^2/d` (NaN without ``w_star``).
    gen_error : ndarray of shape (T,)
        Test error of the channel's predictor built from :math:`\hat w^t`, from the overlaps.
    se_q : ndarray of shape (T,)
        State-evolution prediction of :math:`m_t` (and :math:`q_t`).
    se_gen_error : ndarray of shape (T,)
        State-evolution prediction of ``gen_error``.
    converged : bool
        Whether :math:`\|\hat w^{t+1} - \hat w^t\|^2/d <` ``tol`` was reached.
    """

    w_hat: np.ndarray
    v_hat: float
    overlap: np.ndarray
    self_overlap: np.ndarray
    mse: np.ndarray
    gen_error: np.ndarray
    se_q: np.ndarray
    se_gen_error: np.ndarray
    converged: bool


def gamp(
    X: np.ndarray,
    y: np.ndarray,
    channel: Channel,
    *,
    w_star: np.ndarray | None = None,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> GAMPResult:
    r"""Run GAMP on one data set and track it against state evolution.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs (i.i.d. standard Gaussian entries).
    y : ndarray of shape (n,)
        Labels.
    channel : Channel
        Output channel used by the teacher.
    w_star : ndarray of shape (d,), default=None
        Teacher weights, to measure overlaps and errors.
    max_iter : int, default=50
        Iteration cap.
    tol : float, default=1e-10
        Stop when the per-component squared change of :math:`\hat w` is below it.

    Returns
    -------
    GAMPResult

    Raises
    ------
    ValueError
        Shapes that do not match, or non-finite data.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"`X` must have shape (n, d) and `y` shape (n,), got {X.shape} and {y.shape}")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("`X` and `y` must be finite")
    n, d = X.shape
    if w_star is not None and np.shape(w_star) != (d,):
        raise ValueError(f"`w_star` must have shape ({d},), got {np.shape(w_star)}")
    F = X / np.sqrt(d)
    w = np.zeros(d)
    v = 1.0
    g = np.zeros(n)
    m_hist, q_hist = [], []
    converged = False
    for _ in range(max_iter):
        omega = F @ w - v * g
        g, dg = channel.g_out(y, omega, v)
        A = -dg.sum() / d
        w_new = (F.T @ g + A * w) / (1.0 + A)
        v = 1.0 / (1.0 + A)
        change = float(np.mean((w_new - w) ** 2))
        w = w_new
        q_hist.append(float(w @ w / d))
        m_hist.append(float(w @ w_star / d) if w_star is not None else np.nan)
        if change < tol:
            converged = True
            break
    m = np.array(m_hist)
    qw = np.array(q_hist)
    se_q = state_evolution_trajectory(channel, n / d, len(m))
    return GAMPResult(
        w_hat=w,
        v_hat=float(v),
        overlap=m,
        self_overlap=qw,
        mse=1.0 - 2.0 * m + qw,
        gen_error=channel.generalisation_error(m, qw),
        se_q=se_q,
        se_gen_error=channel.gen_error(se_q),
        converged=converged,
    )
