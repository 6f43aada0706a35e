r"""Calibration of Gaussian error bars against reference solutions: scale, coverage curve, NLL.

The PDDLVM's forward Gaussian :math:`\mathcal N(\mu(z), \sigma(z)^2)` has
standard deviations set by the residual noise :math:`\varepsilon` and the
variational family, not by the network's own approximation error, so its
bands over- or under-cover (issue #20 measured 29-48 % inside the 95 % band on
the 2D problem). :func:`conformal_scale` fixes that with a calibration step on
a few reference (FEM) solves that are not used for testing: one factor
:math:`s` for all standard deviations, the split-conformal quantile

.. math::

    s = \frac{1}{q_{(1+\alpha)/2}}\,
        \operatorname{quantile}_{\lceil (n+1)\alpha\rceil / n}
        \Bigl\{ \frac{|u_j - \mu_j|}{\sigma_j} \Bigr\}_{j=1}^{n},

over the ``n`` calibration nodal values with :math:`\sigma_j > 0`, where
:math:`q_p` is the standard normal quantile and :math:`\alpha` the nominal
level. Then the band :math:`\mu \pm q_{(1+\alpha)/2}\, s\sigma` holds a
fraction :math:`\geq \alpha` of exchangeable new nodal values in expectation
(Vovk et al. 2005; Angelopoulos & Bates 2021, "A gentle introduction to
conformal prediction", §1).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def _standard_quantile(p: float) -> float:
    return float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(p, dtype=torch.float64)))


def conformal_scale(truth: Tensor, mean: Tensor, stddev: Tensor, level: float = 0.95) -> float:
    """Factor ``s`` for ``stddev`` so that central ``level`` bands cover ``level`` of new values.

    Parameters
    ----------
    truth, mean, stddev : Tensor of shape (n_cases, n_dofs)
        Reference values (FEM solves of the calibration parameters), predictive means and
        standard deviations. Entries with ``stddev`` at most the
        smallest positive float (dofs the representation fixes exactly) are left out.
    level : float, default=0.95
        Nominal level in (0, 1).

    Returns
    -------
    float
        ``s > 0``; ``s > 1`` widens the bands.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"`level` must be in (0, 1), got {level!r}")
    if not truth.shape == mean.shape == stddev.shape:
        raise ValueError(
            f"`truth`, `mean`, `stddev` must have one shape, got {tuple(truth.shape)}, "
            f"{tuple(mean.shape)}, {tuple(stddev.shape)}"
        )
    free = stddev > torch.finfo(stddev.dtype).tiny
    if not bool(free.any()):
        raise ValueError("`stddev` is zero everywhere: there is no band to calibrate")
    ratio = ((truth - mean).abs()[free] / stddev[free]).double().cpu().numpy()
    n = ratio.size
    rank = min(1.0, math.ceil((n + 1) * level) / n)
    s = float(np.quantile(ratio, rank, method="higher")) / _standard_quantile(0.5 + level / 2)
    return max(s, float(np.finfo(np.float64).tiny))


def coverage_curve(truth: Tensor, mean: Tensor, stddev: Tensor, levels: np.ndarray) -> np.ndarray:
    """Fraction of ``truth`` inside the central Gaussian interval at each nominal level.

    Parameters
    ----------
    truth, mean, stddev : Tensor of one shape
    levels : ndarray of shape (k,)
        Nominal levels in (0, 1).

    Returns
    -------
    ndarray of shape (k,)
    """
    err = (truth - mean).abs()
    return np.array(
        [(err <= _standard_quantile(0.5 + p / 2) * stddev).double().mean().item() for p in levels]
    )


def gaussian_nll(truth: Tensor, mean: Tensor, stddev: Tensor) -> float:
    """Mean negative log-likelihood (nats per value) of ``truth`` under ``N(mean, stddev^2)``.

    Entries with ``stddev`` at most the smallest positive float (values known exactly) are left out.
    """
    free = stddev > torch.finfo(stddev.dtype).tiny
    t, m, s = truth[free].double(), mean[free].double(), stddev[free].double()
    return float((0.5 * ((t - m) / s) ** 2 + s.log() + 0.5 * math.log(2 * math.pi)).mean())
