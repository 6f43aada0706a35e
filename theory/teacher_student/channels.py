r"""Output channels :math:`P_{\rm out}(y \mid z)` of a generalised linear model.

The model (Barbier et al. 2019 [1]_, in the notation n samples, d inputs):

.. math::

    w^* \sim \mathcal N(0, I_d), \quad x_\mu \sim \mathcal N(0, I_d), \quad
    z_\mu = x_\mu^\top w^* / \sqrt d, \quad y_\mu \sim P_{\rm out}(\cdot \mid z_\mu),
    \quad \mu = 1..n, \quad \alpha = n/d.

Each channel provides what state evolution and GAMP need: the denoiser
:math:`g_{\rm out}(y, \omega, V) = \partial_\omega \ln Z_{\rm out}` with
:math:`Z_{\rm out}(y, \omega, V) = \mathbb E_w P_{\rm out}(y \mid \omega + \sqrt V w)`,
its derivative, the Fisher term :math:`\mathbb E[g_{\rm out}^2]` at overlap q,
:math:`\Psi_{\rm out}(q) = \mathbb E \int dy\, Z_{\rm out} \ln Z_{\rm out}` and the
generalisation error of the Bayes-optimal predictor. The prior is
:math:`\mathcal N(0, 1)` (second moment :math:`\rho = 1`) throughout.

References
----------
.. [1] J. Barbier, F. Krzakala, N. Macris, L. Miolane, L. Zdeborová, "Optimal errors and
   phase transitions in high-dimensional generalized linear models", PNAS 116(12), 2019.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
from scipy.special import log_ndtr, ndtr

from sciprob.theory.teacher_student.quadrature import DEFAULT_NODES, gauss_hermite, scaled_rule

_LOG_2PI = math.log(2.0 * math.pi)
_Q_MAX = 1.0 - 1e-12  # keeps V = 1 - q > 0 where a channel divides by it


def _check_noise(name: str, value: float, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"`{name}` must be finite and {need}, got {value!r}")
    return value


def _log_normal_pdf(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (_LOG_2PI + np.log(var) + (y - mean) ** 2 / var)


def _phi(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x**2 - 0.5 * _LOG_2PI)


class Channel(ABC):
    """An output channel with a Gaussian prior; see the module docstring for the maths."""

    name: str = ""
    task: str = "regression"  # or "classification"

    @abstractmethod
    def sample(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r"""Labels ``y`` of shape ``z.shape`` drawn from :math:`P_{\rm out}(\cdot\mid z)`."""

    @abstractmethod
    def g_out(self, y: np.ndarray, omega: np.ndarray, V: float) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`g_{\rm out}` and :math:`\partial_\omega g_{\rm out}`, each of shape ``y.shape``."""

    @abstractmethod
    def fisher(self, q: np.ndarray) -> np.ndarray:
        r""":math:`\mathbb E[g_{\rm out}(Y, \sqrt q \xi, 1 - q)^2]` for q of shape (batch,)."""

    @abstractmethod
    def psi_out(self, q: np.ndarray) -> np.ndarray:
        r""":math:`\Psi_{\rm out}(q)` for q of shape (batch,)."""

    @abstractmethod
    def teacher_log_likelihood(self) -> float:
        r""":math:`\mathbb E_z \int dy\, P_{\rm out} \ln P_{\rm out} = -H(Y \mid Z)` with z ~ N(0, 1)."""

    @abstractmethod
    def generalisation_error(self, m: np.ndarray, qw: np.ndarray) -> np.ndarray:
        r"""Test error of the channel's Bayes predictor built from an estimate :math:`\hat w`.

        Parameters
        ----------
        m : ndarray of shape (batch,)
            Overlap :math:`\hat w^\top w^* / d`.
        qw : ndarray of shape (batch,)
            Self-overlap :math:`\|\hat w\|^2 / d`; the posterior variance of a new
            pre-activation is taken as :math:`1 - q_w` (Nishimori).

        Returns
        -------
        ndarray of shape (batch,)
            Test MSE on a fresh noisy label (regression) or misclassification rate.
        """

    def gen_error(self, q: np.ndarray) -> np.ndarray:
        """Bayes-optimal generalisation error at the fixed point q (where m = q_w = q)."""
        q = np.asarray(q, dtype=float)
        return self.generalisation_error(q, q)


class NoisyLinearChannel(Channel):
    r""":math:`y = \lambda z + \sqrt\Delta\,\xi`.

    Parameters
    ----------
    noise : float
        Noise variance :math:`\Delta > 0`.
    gain : float, default=1.0
        Amplitude :math:`\lambda` (the Gaussian-equivalence coefficient
        :math:`\kappa_1` for an equivalent GLM).

    Notes
    -----
    :math:`Z_{\rm out} = \mathcal N(y; \lambda\omega, \lambda^2 V + \Delta)`, so
    :math:`\hat q = \alpha\lambda^2 / (\Delta + \lambda^2 (1 - q))` and, for
    :math:`\lambda = 1`, the estimation MSE :math:`m = 1 - q` solves
    :math:`m^2 + (\Delta + \alpha - 1) m - \Delta = 0`.
    """

    name = "linear"

    def __init__(self, noise: float, gain: float = 1.0) -> None:
        self.noise = _check_noise("noise", noise, positive=True)
        self.gain = _check_noise("gain", gain, positive=True)

    def sample(self, z, rng):  # noqa: D102
        return self.gain * z + math.sqrt(self.noise) * rng.standard_normal(np.shape(z))

    def g_out(self, y, omega, V):  # noqa: D102
        var = self.gain**2 * V + self.noise
        return self.gain * (y - self.gain * omega) / var, np.full(np.shape(y), -(self.gain**2) / var)

    def fisher(self, q):  # noqa: D102
        return self.gain**2 / (self.noise + self.gain**2 * (1.0 - np.asarray(q, dtype=float)))

    def psi_out(self, q):  # noqa: D102
        var = self.noise + self.gain**2 * (1.0 - np.asarray(q, dtype=float))
        return -0.5 * (np.log(2.0 * math.pi * var) + 1.0)

    def teacher_log_likelihood(self):  # noqa: D102
        return -0.5 * (math.log(2.0 * math.pi * self.noise) + 1.0)

    def generalisation_error(self, m, qw):  # noqa: D102
        return self.noise + self.gain**2 * (1.0 - 2.0 * np.asarray(m) + np.asarray(qw))


class SignChannel(Channel):
    r""":math:`y = \mathrm{sign}(z + \sqrt\Delta\,\xi)`, flipped with probability :math:`\epsilon`.

    Parameters
    ----------
    noise : float, default=0.0
        Gaussian pre-activation noise variance :math:`\Delta \ge 0`.
    flip : float, default=0.0
        Label-flip probability :math:`\epsilon \in [0, 1/2)`.

    Notes
    -----
    With :math:`s^2 = V + \Delta`,
    :math:`Z_{\rm out}(y, \omega, V) = \epsilon + (1 - 2\epsilon)\Phi(y\omega/s)`. The
    Bayes-optimal classifier is :math:`\mathrm{sign}(\hat\omega)`, with error
    :math:`\epsilon + (1 - 2\epsilon)\arccos\sqrt{q/(1+\Delta)}/\pi`.
    """

    name = "sign"
    task = "classification"

    def __init__(self, noise: float = 0.0, flip: float = 0.0) -> None:
        self.noise = _check_noise("noise", noise, positive=False)
        self.flip = _check_noise("flip", flip, positive=False)
        if self.flip >= 0.5:
            raise ValueError(f"`flip` must lie in [0, 0.5), got {flip!r}")

    def sample(self, z, rng):  # noqa: D102
        y = np.sign(z + math.sqrt(self.noise) * rng.standard_normal(np.shape(z)))
        y[y == 0] = 1.0
        return np.where(rng.random(np.shape(z)) < self.flip, -y, y)

    def _log_z(self, u: np.ndarray) -> np.ndarray:
        r""":math:`\ln Z_{\rm out}` as a function of :math:`u = y\omega/s`."""
        with np.errstate(divide="ignore"):
            return np.logaddexp(
                math.log(self.flip) if self.flip else -np.inf, math.log1p(-2.0 * self.flip) + log_ndtr(u)
            )

    def g_out(self, y, omega, V):  # noqa: D102
        s2 = V + self.noise
        s = math.sqrt(s2)
        u = y * omega / s
        g = (1.0 - 2.0 * self.flip) * y / s * np.exp(-0.5 * u**2 - 0.5 * _LOG_2PI - self._log_z(u))
        return g, -omega * g / s2 - g**2

    def fisher(self, q):  # noqa: D102
        # E_xi sum_y Z g^2 = 2 (1-2eps)^2 / s^2 E_xi[phi(sqrt(q) xi / s)^2 / Z(+, sqrt(q) xi)]; the
        # phi^2 factor is a Gaussian of width sigma, so integrate with the rule rescaled to it.
        q = np.clip(np.asarray(q, dtype=float), 0.0, _Q_MAX)
        s2 = 1.0 - q + self.noise
        sigma = np.sqrt(s2 / (s2 + 2.0 * q))
        # E_xi[phi(sqrt(q) xi/s)^2 h(xi)] = sigma/(2 pi) E_t[h(sigma t)]; 1/Z(+, .) grows like
        # exp(c^2 t^2/2) on the left, so the t-rule is widened to 1/sqrt(1 - c^2) as well.
        c2 = q * sigma**2 / s2
        nodes, weights = scaled_rule(1.0 / np.sqrt(1.0 - c2))  # (batch, n)
        u = np.sqrt(c2)[:, None] * nodes
        mean_inv_z = np.sum(weights * np.exp(-self._log_z(u)), axis=-1)
        return (1.0 - 2.0 * self.flip) ** 2 * sigma / (math.pi * s2) * mean_inv_z

    def _entropy_deviation(self, u: np.ndarray) -> np.ndarray:
        r""":math:`\sum_y Z \ln Z - h_\epsilon` at :math:`u = \omega/s`, free of cancellation."""
        eps = self.flip
        log_delta = math.log1p(-2.0 * eps) + log_ndtr(-np.abs(u))  # Z_+ = 1 - eps - delta (u > 0)
        delta = np.exp(log_delta)
        high = (1.0 - eps - delta) * np.log1p(-delta / (1.0 - eps)) - delta * math.log(1.0 - eps)
        if eps == 0.0:
            low = delta * log_delta
        else:
            low = (eps + delta) * np.log1p(delta / eps) + delta * math.log(eps)
        return high + low

    def _h_flip(self) -> float:
        eps = self.flip
        return 0.0 if eps == 0.0 else eps * math.log(eps) + (1.0 - eps) * math.log1p(-eps)

    def psi_out(self, q):  # noqa: D102
        q = np.clip(np.asarray(q, dtype=float), 0.0, _Q_MAX)
        s2 = 1.0 - q + self.noise
        k2 = s2 / np.maximum(q, 1e-300)  # the integrand varies on the scale k = s / sqrt(q)
        sigma = np.sqrt(k2 / (1.0 + k2))
        nodes, weights = scaled_rule(sigma)
        u = np.sqrt(q / s2)[:, None] * nodes
        return self._h_flip() + np.sum(weights * self._entropy_deviation(u), axis=-1)

    def teacher_log_likelihood(self):  # noqa: D102
        if self.noise == 0.0:
            return self._h_flip()
        nodes, weights = gauss_hermite(DEFAULT_NODES)
        return self._h_flip() + float(
            np.sum(weights * self._entropy_deviation(nodes / math.sqrt(self.noise)))
        )

    def generalisation_error(self, m, qw):  # noqa: D102
        m, qw = np.asarray(m, dtype=float), np.asarray(qw, dtype=float)
        cos = np.clip(m / np.sqrt(np.maximum(qw, 1e-300) * (1.0 + self.noise)), -1.0, 1.0)
        return self.flip + (1.0 - 2.0 * self.flip) * np.arccos(cos) / math.pi


class ReLUChannel(Channel):
    r""":math:`y = \max(z, 0) + \sqrt\Delta\,\xi`.

    Parameters
    ----------
    noise : float
        Noise variance :math:`\Delta > 0`.
    n_nodes : int, default=96
        Gauss–Hermite nodes per dimension of the two-dimensional expectations
        (relative accuracy about 1e-5 for q <= 0.9 and 2e-4 at q = 0.95 with
        :math:`\Delta = 0.1`; 48 nodes give about 1e-3).

    Notes
    -----
    With :math:`S = V + \Delta`, :math:`\sigma_c^2 = V\Delta/S` and
    :math:`\mu = (yV + \omega\Delta)/S`,

    .. math::

        Z_{\rm out} = \Phi(-\omega/\sqrt V)\,\mathcal N(y; 0, \Delta)
                     + \mathcal N(y; \omega, S)\,\Phi(\mu/\sigma_c).

    :math:`\partial_\omega g_{\rm out}` (GAMP only) is a central finite difference.
    The Bayes predictor of a new label is
    :math:`\hat y = \hat\omega\Phi(\hat\omega/\sqrt V) + \sqrt V\varphi(\hat\omega/\sqrt V)`.
    """

    name = "relu"

    def __init__(self, noise: float, n_nodes: int = DEFAULT_NODES) -> None:
        self.noise = _check_noise("noise", noise, positive=True)
        gauss_hermite(n_nodes)  # validates
        self.n_nodes = int(n_nodes)

    def sample(self, z, rng):  # noqa: D102
        return np.maximum(z, 0.0) + math.sqrt(self.noise) * rng.standard_normal(np.shape(z))

    def _parts(self, y, omega, V):
        r"""``log Z`` and :math:`g_{\rm out}` (broadcast over y, omega, V)."""
        S = V + self.noise
        sig = np.sqrt(V * self.noise / S)
        t = (y * V + omega * self.noise) / S / sig
        log_b = _log_normal_pdf(y, omega, S) + log_ndtr(t)
        log_z = np.logaddexp(log_ndtr(-omega / np.sqrt(V)) + _log_normal_pdf(y, 0.0, self.noise), log_b)
        mills = np.exp(-0.5 * t**2 - 0.5 * _LOG_2PI - log_ndtr(t))  # phi(t)/Phi(t), ~|t| as t -> -inf
        return log_z, np.exp(log_b - log_z) * ((y - omega) / S - (V / S) * mills / sig)

    def g_out(self, y, omega, V):  # noqa: D102
        V = max(float(V), 1e-12)
        g = self._parts(y, omega, V)[1]
        h = 1e-5 * (1.0 + np.abs(omega))
        dg = (self._parts(y, omega + h, V)[1] - self._parts(y, omega - h, V)[1]) / (2.0 * h)
        return g, dg

    def _expect_over_y(self, q: np.ndarray, fn) -> np.ndarray:
        r""":math:`\mathbb E_\xi \int dy\, Z_{\rm out}\, fn(\log Z, g)` on a (q, xi, y) grid."""
        q = np.clip(np.asarray(q, dtype=float), 0.0, _Q_MAX)
        t, w = gauss_hermite(self.n_nodes)
        V = (1.0 - q)[:, None, None]
        S = V + self.noise
        omega = np.sqrt(q)[:, None, None] * t[None, :, None]
        u = t[None, None, :]
        ww = w[:, None] * w[None, :]
        # Z = A + B: y ~ N(0, Delta) with mass Phi(-omega/sqrt V),
        # and y ~ N(omega, S) tilted by Phi(mu/sigma_c)
        y_a = math.sqrt(self.noise) * u
        y_b = omega + np.sqrt(S) * u
        sig = np.sqrt(V * self.noise / S)
        tilt_b = ndtr((y_b * V + omega * self.noise) / S / sig)
        part_a = ndtr(-omega / np.sqrt(V)) * fn(*self._parts(y_a, omega, V))
        part_b = tilt_b * fn(*self._parts(y_b, omega, V))
        return np.sum(ww * (part_a + part_b), axis=(-2, -1))

    def fisher(self, q):  # noqa: D102
        return self._expect_over_y(q, lambda log_z, g: g**2)

    def psi_out(self, q):  # noqa: D102
        return self._expect_over_y(q, lambda log_z, g: log_z)

    def teacher_log_likelihood(self):  # noqa: D102
        return -0.5 * (math.log(2.0 * math.pi * self.noise) + 1.0)

    def generalisation_error(self, m, qw):  # noqa: D102
        # (z, omega_hat) jointly Gaussian: omega_hat ~ N(0, qw), z = (m/qw) omega_hat + sqrt(1 - m^2/qw) u
        m = np.atleast_1d(np.asarray(m, dtype=float))
        qw = np.maximum(np.atleast_1d(np.asarray(qw, dtype=float)), 1e-300)
        t, w = gauss_hermite(self.n_nodes)
        V = np.maximum(1.0 - qw, 0.0)[:, None, None]
        om = np.sqrt(qw)[:, None, None] * t[None, :, None]
        z = (m / qw)[:, None, None] * om + np.sqrt(np.maximum(1.0 - m**2 / qw, 0.0))[:, None, None] * t
        sv = np.sqrt(V)
        with np.errstate(divide="ignore", invalid="ignore"):
            y_hat = np.where(
                sv > 0, om * ndtr(om / sv) + sv * _phi(om / np.where(sv > 0, sv, 1.0)), np.maximum(om, 0.0)
            )
        err = (np.maximum(z, 0.0) - y_hat) ** 2
        return self.noise + np.sum(w[:, None] * w[None, :] * err, axis=(-2, -1))


CHANNELS: dict[str, type[Channel]] = {c.name: c for c in (NoisyLinearChannel, SignChannel, ReLUChannel)}


def make_channel(name: str, **kwargs: float) -> Channel:
    """Build a channel by name.

    Parameters
    ----------
    name : {"linear", "sign", "relu"}
        Channel name.
    **kwargs
        Its parameters (``noise``, ``gain``, ``flip``, ``n_nodes``).

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists the known ones) or a bad parameter.
    """
    if name not in CHANNELS:
        raise ValueError(f"unknown channel {name!r}; choose one of {sorted(CHANNELS)}")
    return CHANNELS[name](**kwargs)
