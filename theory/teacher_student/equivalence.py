r"""Gaussian equivalence of a two-layer teacher and the GLM it defines.

The two-layer teacher (n samples, d inputs, p hidden units) is

.. math::

    y = \varphi_{\rm out}\!\left(\frac{1}{\sqrt p} a^\top \sigma\!\left(\frac{W x}{\sqrt d}\right)
        + \sqrt\Delta\,\xi\right), \qquad W_{ij}, a_i, x_j \sim \mathcal N(0, 1).

Expanding :math:`\sigma` in Hermite polynomials of :math:`h \sim \mathcal N(0, r)`,

.. math::

    \kappa_0 = \mathbb E\,\sigma(h), \quad
    \kappa_1 = \mathbb E[h\,\sigma(h)]/r, \quad
    \kappa_*^2 = \mathbb E\,\sigma(h)^2 - \kappa_0^2 - r\kappa_1^2,

the pre-activation is, for large p, equivalent to
:math:`\kappa_0 \sum_i a_i/\sqrt p + \kappa_1 v^\top x/\sqrt d + \kappa_*\,\zeta` with
:math:`v = W^\top a/\sqrt p \approx \mathcal N(0, I_d)` and an independent
:math:`\zeta \sim \mathcal N(0, 1)`: a GLM in the d-dimensional weight v whose
channel carries the extra noise :math:`\kappa_*^2`. Camilli, Tieplova and Barbier
[1]_ bound the two-layer network's mutual information and Bayes-optimal error by
this GLM's ones in the over-parametrised regime; the GLM's formulas follow the
computable form of Cui, Krzakala and Zdeborová [2]_. The constant
:math:`\kappa_0 \sum_i a_i/\sqrt p` is one scalar: it changes no quantity per
variable, and activations with :math:`\kappa_0 = 0` (erf, tanh, sign) avoid it.

References
----------
.. [1] F. Camilli, D. Tieplova, J. Barbier, "Fundamental limits of overparametrized shallow
   neural networks for supervised learning", arXiv:2307.05635, 2023.
.. [2] H. Cui, F. Krzakala, L. Zdeborová, "Bayes-optimal learning of deep random networks of
   extensive-width", ICML 2023, arXiv:2302.00375.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.integrate import quad
from scipy.special import erf

from sciprob.theory.teacher_student.channels import Channel, NoisyLinearChannel, SignChannel

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda h: np.maximum(h, 0.0),
    "erf": erf,
    "tanh": np.tanh,
    "sign": lambda h: np.where(h >= 0, 1.0, -1.0),
    "identity": lambda h: h,
}
"""Activations by name (numpy); the Pyro model uses the torch twins."""


class Coefficients(NamedTuple):
    """Gaussian-equivalence coefficients of an activation at input variance r."""

    kappa0: float
    kappa1: float
    kappa_star: float


def _resolve(activation: str | Callable) -> Callable:
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)} or pass a callable"
        )
    return ACTIVATIONS[activation]


def equivalence_coefficients(activation: str | Callable, r: float = 1.0) -> Coefficients:
    r""":math:`(\kappa_0, \kappa_1, \kappa_*)` of ``activation`` under :math:`h \sim \mathcal N(0, r)`.

    The three Gaussian integrals are computed with adaptive quadrature
    (:func:`scipy.integrate.quad`) on each half-line, so kinks and jumps at 0
    (ReLU, sign) cost no accuracy (absolute error below 1e-10).

    Parameters
    ----------
    activation : {"relu", "erf", "tanh", "sign", "identity"} or callable
        Activation; a callable maps a float array to an array of the same shape.
    r : float, default=1.0
        Variance of the pre-activation.

    Returns
    -------
    Coefficients

    Raises
    ------
    ValueError
        Unknown name, or ``r`` not finite and positive.

    Examples
    --------
    >>> c = equivalence_coefficients("sign")
    >>> round(c.kappa1**2 * math.pi / 2, 10), round(c.kappa_star**2 + 2 / math.pi, 10)
    (1.0, 1.0)
    """
    fn = _resolve(activation)
    if not (isinstance(r, int | float) and math.isfinite(r) and r > 0):
        raise ValueError(f"`r` (pre-activation variance) must be finite and > 0, got {r!r}")
    s = math.sqrt(r)

    def mean(g: Callable[[float], float]) -> float:
        dens = lambda u: g(u) * math.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)  # noqa: E731
        opts = dict(epsabs=1e-13, epsrel=1e-12, limit=200)
        return quad(dens, -np.inf, 0.0, **opts)[0] + quad(dens, 0.0, np.inf, **opts)[0]

    act = lambda u: float(fn(np.asarray(s * u)))  # noqa: E731
    k0 = mean(act)
    k1 = mean(lambda u: s * u * act(u)) / r
    second = mean(lambda u: act(u) ** 2)
    return Coefficients(k0, k1, math.sqrt(max(second - k0**2 - r * k1**2, 0.0)))


def closed_form_coefficients(activation: str, r: float = 1.0) -> Coefficients:
    r"""Return the closed forms of :math:`(\kappa_0, \kappa_1, \kappa_*)` where they exist.

    Parameters
    ----------
    activation : {"relu", "erf", "sign", "identity"}
        Activation (tanh has none).
    r : float, default=1.0
        Pre-activation variance.

    Returns
    -------
    Coefficients
        relu: :math:`(\sqrt{r/2\pi}, 1/2, \sqrt{r(\pi-2)/4\pi})`; erf:
        :math:`\kappa_1 = 2/\sqrt{\pi(1+2r)}`,
        :math:`\mathbb E\,\mathrm{erf}^2 = \tfrac2\pi\arcsin\tfrac{2r}{1+2r}`; sign:
        :math:`(0, \sqrt{2/\pi r}, \sqrt{1 - 2/\pi})`; identity: (0, 1, 0).
    """
    if activation == "relu":
        return Coefficients(math.sqrt(r / (2 * math.pi)), 0.5, math.sqrt(r * (math.pi - 2) / (4 * math.pi)))
    if activation == "erf":
        k1 = 2.0 / math.sqrt(math.pi * (1.0 + 2.0 * r))
        return Coefficients(0.0, k1, math.sqrt(2 / math.pi * math.asin(2 * r / (1 + 2 * r)) - r * k1**2))
    if activation == "sign":
        return Coefficients(0.0, math.sqrt(2.0 / (math.pi * r)), math.sqrt(1.0 - 2.0 / math.pi))
    if activation == "identity":
        return Coefficients(0.0, 1.0, 0.0)
    raise ValueError(f"no closed form for activation {activation!r}; use equivalence_coefficients")


class EquivalentGLM(NamedTuple):
    r"""The GLM a two-layer teacher is equivalent to.

    Attributes
    ----------
    channel : Channel
        :class:`NoisyLinearChannel` with gain :math:`\kappa_1` and noise
        :math:`\Delta + \kappa_*^2` (linear output), or :class:`SignChannel` with
        pre-activation noise :math:`(\Delta + \kappa_*^2)/\kappa_1^2` (sign output).
    coefficients : Coefficients
        The activation's :math:`(\kappa_0, \kappa_1, \kappa_*)`.
    """

    channel: Channel
    coefficients: Coefficients


def equivalent_glm(activation: str | Callable, output: str = "linear", noise: float = 0.0) -> EquivalentGLM:
    r"""GLM channel equivalent to the two-layer teacher with this activation and output.

    Parameters
    ----------
    activation : str or callable
        Hidden activation :math:`\sigma`.
    output : {"linear", "sign"}, default="linear"
        Output function :math:`\varphi_{\rm out}`.
    noise : float, default=0.0
        Output noise variance :math:`\Delta` (added before :math:`\varphi_{\rm out}`).

    Returns
    -------
    EquivalentGLM

    Raises
    ------
    ValueError
        Unknown ``output``, a non-finite or negative ``noise``, :math:`\kappa_1 = 0`
        (nothing linear to learn), or a linear output with zero total noise.
    """
    if not (isinstance(noise, int | float) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"`noise` must be finite and >= 0, got {noise!r}")
    coef = equivalence_coefficients(activation)
    if abs(coef.kappa1) < 1e-12:
        raise ValueError(f"activation {activation!r} has kappa1 = 0: its equivalent GLM carries no signal")
    total = noise + coef.kappa_star**2
    if output == "linear":
        return EquivalentGLM(NoisyLinearChannel(noise=total, gain=abs(coef.kappa1)), coef)
    if output == "sign":
        return EquivalentGLM(SignChannel(noise=total / coef.kappa1**2), coef)
    raise ValueError(f"unknown `output` {output!r}; choose 'linear' or 'sign'")
