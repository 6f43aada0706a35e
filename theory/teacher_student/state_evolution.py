r"""Replica formula and state evolution of a GLM with a Gaussian prior, vectorised over α.

In the notation n samples, d inputs, :math:`\alpha = n/d`, and for the prior
:math:`\mathcal N(0, 1)` (:math:`\rho = 1`), the replica-symmetric potential [1]_ is

.. math::

    f_{\rm RS}(q, \hat q) = \psi_0(\hat q) + \alpha \Psi_{\rm out}(q) - \hat q q / 2,
    \qquad \psi_0(\hat q) = \tfrac12\left(\hat q - \ln(1 + \hat q)\right),

and its stationary points, which are the fixed points of GAMP's state evolution, solve

.. math::

    \hat q = \alpha\, \mathbb E\left[g_{\rm out}(Y, \sqrt q\,\xi, 1 - q)^2\right],
    \qquad q = \frac{\hat q}{1 + \hat q}.

At the fixed point :math:`q^*` of largest :math:`f_{\rm RS}`:

- free entropy per variable :math:`\Phi = f_{\rm RS}(q^*, \hat q^*) = \lim \tfrac1d\mathbb E\ln P(Y\mid X)`;
- mutual information per variable
  :math:`I(w^*; Y \mid X)/d = -\Phi + \alpha\, \mathbb E_z \int dy\, P_{\rm out}\ln P_{\rm out}`;
- estimation MSE :math:`\|\hat w - w^*\|^2/d = 1 - q^*`;
- Bayes-optimal generalisation error from :meth:`Channel.gen_error`.

For the noisy linear channel the MSE :math:`m = 1 - q^*` (of the weights, not of
the labels) solves :math:`m^2 + (\Delta + \alpha - 1) m - \Delta = 0`; the label
test MSE is :math:`\Delta + m`. See :func:`noisy_linear_mse`.

References
----------
.. [1] J. Barbier, F. Krzakala, N. Macris, L. Miolane, L. Zdeborová, PNAS 116(12), 2019.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sciprob.theory.teacher_student.channels import Channel

_Q_INFORMED = 1.0 - 1e-6  # start of the informed branch


def _check_alpha(alpha) -> np.ndarray:
    a = np.atleast_1d(np.asarray(alpha, dtype=float))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"`alpha` must be a scalar or a non-empty 1-d grid, got shape {a.shape}")
    bad = a[~np.isfinite(a) | (a <= 0)]
    if bad.size:
        raise ValueError(f"`alpha` (= n/d) must be finite and > 0, got {bad[0]!r}")
    return a


def noisy_linear_mse(alpha, noise: float) -> np.ndarray:
    r"""Closed-form weight MSE :math:`m = 1 - q` of the noisy linear channel (:math:`\lambda = 1`).

    Parameters
    ----------
    alpha : float or ndarray of shape (k,)
        Sample ratio n/d.
    noise : float
        Noise variance :math:`\Delta > 0`.

    Returns
    -------
    ndarray of shape (k,)
        The positive root of :math:`m^2 + (\Delta + \alpha - 1) m - \Delta = 0`.
    """
    a = _check_alpha(alpha)
    if not (math.isfinite(noise) and noise > 0):
        raise ValueError(f"`noise` must be finite and > 0, got {noise!r}")
    b = noise + a - 1.0
    # the root (-b + sqrt(b^2 + 4 Delta))/2 written without cancellation for b > 0
    disc = np.sqrt(b**2 + 4.0 * noise)
    return np.where(b > 0, 2.0 * noise / (b + disc), (disc - b) / 2.0)


@dataclass(frozen=True)
class StateEvolution:
    r"""Fixed point of the state evolution on a grid of α (every array has shape (k,)).

    Attributes
    ----------
    alpha : ndarray
        Sample ratios n/d.
    q, q_hat : ndarray
        Overlap and its conjugate at the chosen fixed point.
    mse : ndarray
        Weight MSE :math:`1 - q`.
    gen_error : ndarray
        Bayes-optimal generalisation error (test MSE with the label noise, or test error).
    free_entropy : ndarray
        :math:`\Phi` per variable.
    mutual_info : ndarray
        :math:`I(w^*; Y\mid X)/d` in nats.
    iterations : ndarray of int
        Iterations to convergence of the chosen branch.
    residual : ndarray
        Last :math:`|q_{t+1} - q_t|`.
    converged : ndarray of bool
        Whether ``residual < tol`` within ``max_iter``.
    """

    alpha: np.ndarray
    q: np.ndarray
    q_hat: np.ndarray
    mse: np.ndarray
    gen_error: np.ndarray
    free_entropy: np.ndarray
    mutual_info: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    converged: np.ndarray

    def convergence_report(self) -> str:
        """One line: how many α converged, the worst residual and the most iterations."""
        k = self.alpha.size
        bad = self.alpha[~self.converged]
        text = (
            f"{int(self.converged.sum())}/{k} values of alpha converged; max residual "
            f"{self.residual.max():.2e}, max iterations {int(self.iterations.max())}"
        )
        return text + (f"; NOT converged at alpha = {np.round(bad, 4).tolist()}" if bad.size else "")


def _iterate(
    channel: Channel, alpha: np.ndarray, q0: float, damping: float, tol: float, max_iter: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    q = np.full_like(alpha, q0)
    iters = np.zeros(alpha.shape, dtype=int)
    residual = np.full_like(alpha, np.inf)
    active = np.ones(alpha.shape, dtype=bool)
    for _ in range(max_iter):
        q_hat = alpha[active] * channel.fisher(q[active])
        q_new = (1.0 - damping) * q_hat / (1.0 + q_hat) + damping * q[active]
        residual[active] = np.abs(q_new - q[active])
        q[active] = q_new
        iters[active] += 1
        active = residual >= tol
        if not active.any():
            break
    return q, iters, residual, residual < tol


def state_evolution(
    channel: Channel,
    alpha,
    *,
    damping: float = 0.5,
    tol: float = 1e-13,
    max_iter: int = 20_000,
    branches: tuple[str, ...] = ("uninformed", "informed"),
) -> StateEvolution:
    r"""Solve the state evolution by damped iteration, for all α at once.

    Parameters
    ----------
    channel : Channel
        Output channel (see :mod:`~sciprob.theory.teacher_student.channels`).
    alpha : float or array-like of shape (k,)
        Sample ratios n/d, each finite and > 0.
    damping : float, default=0.5
        Weight of the old overlap: :math:`q \leftarrow (1 - \gamma) q_{\rm new} + \gamma q`.
    tol : float, default=1e-13
        Stop when :math:`|q_{t+1} - q_t| <` ``tol``.
    max_iter : int, default=20000
        Iteration cap per branch.
    branches : tuple of {"uninformed", "informed"}, default=both
        Initial overlaps 0 and :math:`1 - 10^{-6}`; where they end at different fixed
        points, the one with the larger free entropy is the Bayes-optimal one.

    Returns
    -------
    StateEvolution

    Raises
    ------
    ValueError
        ``alpha`` not finite and positive, or bad iteration settings.
    """
    a = _check_alpha(alpha)
    if not 0.0 <= damping < 1.0:
        raise ValueError(f"`damping` must lie in [0, 1), got {damping!r}")
    if not (tol > 0 and max_iter >= 1):
        raise ValueError(f"`tol` must be > 0 and `max_iter` >= 1, got {tol!r}, {max_iter!r}")
    starts = {"uninformed": 0.0, "informed": _Q_INFORMED}
    unknown = [b for b in branches if b not in starts]
    if unknown or not branches:
        raise ValueError(f"`branches` must be a non-empty subset of {sorted(starts)}, got {branches!r}")

    best = None
    for branch in branches:
        q, iters, res, conv = _iterate(channel, a, starts[branch], damping, tol, max_iter)
        q_hat = a * channel.fisher(q)
        phi = 0.5 * (q_hat - np.log1p(q_hat)) + a * channel.psi_out(q) - 0.5 * q_hat * q
        cand = (q, q_hat, phi, iters, res, conv)
        if best is None:
            best = cand
        else:
            take = phi > best[2] + 1e-12
            best = tuple(np.where(take, new, old) for new, old in zip(cand, best, strict=True))
    q, q_hat, phi, iters, res, conv = best
    return StateEvolution(
        alpha=a,
        q=q,
        q_hat=q_hat,
        mse=1.0 - q,
        gen_error=channel.gen_error(q),
        free_entropy=phi,
        mutual_info=-phi + a * channel.teacher_log_likelihood(),
        iterations=iters.astype(int),
        residual=res,
        converged=conv.astype(bool),
    )


def state_evolution_trajectory(channel: Channel, alpha: float, n_iter: int) -> np.ndarray:
    r"""Undamped state evolution from q = 0: the overlap GAMP should have after each iteration.

    Parameters
    ----------
    channel : Channel
        Output channel.
    alpha : float
        Sample ratio n/d.
    n_iter : int
        Number of iterations.

    Returns
    -------
    ndarray of shape (n_iter,)
        :math:`q_1, \dots, q_T` (GAMP's :math:`\hat w^t` has overlap :math:`q_t`).
    """
    a = _check_alpha(alpha)
    q = np.zeros(1)
    out = np.empty(n_iter)
    for t in range(n_iter):
        q_hat = a * channel.fisher(q)
        q = q_hat / (1.0 + q_hat)
        out[t] = q[0]
    return out
