"""The explanation measure μ used by sharpness: a weighted KDE with an optional point mass at zero.

Following the official ExSum ``Measure`` (Zhou et al. 2022): the continuous part is a weighted
Gaussian KDE (Scott's bandwidth, as :class:`scipy.stats.gaussian_kde`) restricted to the range of
the observed explanations and renormalised to mass ``1 - p0``; with ``zero_mass=True`` the FEUs with
explanation exactly 0 form a point mass ``p0`` (their weight share) and are left out of the KDE.
Instead of integrating the density with ``quad`` on a 1000-point grid (16–24 s), the KDE's CDF is
evaluated in closed form (a weighted sum of normal CDFs) on the grid once, then interpolated
linearly, so evaluating μ for 10^5 intervals is a few ``np.interp`` calls.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr
from scipy.stats import gaussian_kde

from sciprob.theory.exsum.intervals import Intervals

__all__ = ["ExplanationMeasure", "KDEMeasure", "UniformMeasure"]


class ExplanationMeasure:
    """Base class: a probability measure on explanation values.

    Subclasses define the continuous CDF part :meth:`cdf_continuous` (mass ``1 - zero_pmf``) and
    ``zero_pmf``, the point mass at 0.
    """

    zero_pmf: float = 0.0

    def cdf_continuous(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Continuous part of the CDF at ``x`` (array of any shape), rising from 0 to ``1 - zero_pmf``."""
        raise NotImplementedError

    def measure(self, intervals: Intervals) -> np.ndarray:
        """μ of each FEU's union of intervals.

        Overlapping slots are counted once (a sweep over slots sorted by ``lo``); the point mass is
        added once when 0 lies in the union.

        Parameters
        ----------
        intervals : Intervals
            ``n`` unions with ``k`` slots.

        Returns
        -------
        ndarray of shape (n,)
            Values in [0, 1].
        """
        lo, hi = intervals.lo, intervals.hi
        if intervals.k > 1:
            order = np.argsort(lo, axis=1)  # NaN slots sort last
            lo = np.take_along_axis(lo, order, axis=1)
            hi = np.take_along_axis(hi, order, axis=1)
            covered = np.fmax.accumulate(hi, axis=1)
            prev = np.concatenate([np.full((lo.shape[0], 1), -np.inf), covered[:, :-1]], axis=1)
            prev = np.where(np.isnan(prev), -np.inf, prev)
            a, b = np.maximum(lo, prev), np.maximum(hi, prev)
        else:
            a, b = lo, hi
        valid = ~np.isnan(a)
        a0 = np.where(valid, a, 0.0)
        b0 = np.where(valid, b, 0.0)
        mass = np.where(valid, self.cdf_continuous(b0) - self.cdf_continuous(a0), 0.0).sum(axis=1)
        if self.zero_pmf > 0:
            mass = mass + self.zero_pmf * intervals.contains_zero()
        return mass

    def interval_measure(self, lo: float, hi: float) -> float:
        """μ([lo, hi]) for one interval."""
        return float(self.measure(Intervals.simple(lo, hi))[0])


class KDEMeasure(ExplanationMeasure):
    r"""Weighted Gaussian KDE of explanations, optionally with a point mass at zero.

    Parameters
    ----------
    explanations : ndarray of shape (n,)
        Explanation values (finite).
    weights : ndarray of shape (n,), default=None
        FEU weights (``FEUData.weight``, i.e. 1/L); default equal.
    zero_mass : bool, default=False
        Treat exact zeros as a point mass at 0 (for sparse explanations such as LIME's).
    bandwidth : float or {"scott", "silverman"}, default="scott"
        Passed to :class:`scipy.stats.gaussian_kde` as ``bw_method``.
    grid : int, default=1000
        Grid points on [min e, max e] at which the CDF is evaluated exactly (official tool: 1000).

    Attributes
    ----------
    zero_pmf : float
        Point mass at 0 (0 without ``zero_mass``).
    support : tuple of float
        ``(min e, max e)`` of the KDE part; μ of anything outside is 0.
    bandwidth_ : float
        Kernel standard deviation.

    Notes
    -----
    .. math::

        \mu([l, h]) = (1 - p_0)\,\frac{F(\min(h, e_{max})) - F(\max(l, e_{min}))}
        {F(e_{max}) - F(e_{min})} + p_0\,[0 \in [l, h]],\qquad
        F(x) = \sum_j w_j\,\Phi\!\left(\frac{x - e_j}{\sigma}\right)

    with ``F`` interpolated linearly between grid points. Building costs ``O(grid · n)``.
    """

    def __init__(
        self,
        explanations: np.ndarray,
        weights: np.ndarray | None = None,
        zero_mass: bool = False,
        bandwidth: float | str = "scott",
        grid: int = 1000,
    ) -> None:
        e = np.asarray(explanations, dtype=np.float64).ravel()
        if e.size == 0:
            raise ValueError("`explanations` is empty; build the measure from at least two FEUs.")
        if not np.all(np.isfinite(e)):
            raise ValueError("`explanations` contains NaN or inf; drop or fix those FEUs first.")
        w = np.ones_like(e) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != e.shape or np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise ValueError(f"`weights` must be {e.size} finite non-negative numbers with a positive sum.")
        if int(grid) < 2:
            raise ValueError(f"`grid` must be at least 2, got {grid}.")
        self.zero_mass = bool(zero_mass)
        if zero_mass:
            z = e == 0
            self.zero_pmf = float(w[z].sum() / w.sum())
            e, w = e[~z], w[~z]
        else:
            self.zero_pmf = 0.0
        if e.size < 2 or np.ptp(e) == 0:
            raise ValueError(
                "the KDE needs at least two distinct non-zero explanation values; "
                f"got {e.size} values spanning {np.ptp(e) if e.size else 0.0}."
            )
        w = w / w.sum()
        kde = gaussian_kde(e, bw_method=bandwidth, weights=w)
        sigma = float(np.sqrt(kde.covariance[0, 0]))
        self.bandwidth_ = sigma
        self.support = (float(e.min()), float(e.max()))
        xs = np.linspace(self.support[0], self.support[1], int(grid))
        cdf = np.empty_like(xs)
        chunk = max(1, 2_000_000 // max(e.size, 1))
        for s in range(0, xs.size, chunk):
            cdf[s : s + chunk] = ndtr((xs[s : s + chunk, None] - e[None, :]) / sigma) @ w
        cdf = (cdf - cdf[0]) / (cdf[-1] - cdf[0]) * (1.0 - self.zero_pmf)
        self._xs, self._cdf = xs, cdf
        self._kde = kde
        self._norm = float((ndtr((self.support[1] - e) / sigma) - ndtr((self.support[0] - e) / sigma)) @ w)

    def cdf_continuous(self, x: np.ndarray) -> np.ndarray:
        """Continuous CDF part (0 below the support, ``1 - zero_pmf`` above)."""
        return np.interp(x, self._xs, self._cdf)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Density of the continuous part, shape of ``x``; integrates to ``1 - zero_pmf`` over the support."""
        x = np.asarray(x, dtype=np.float64)
        inside = (x >= self.support[0]) & (x <= self.support[1])
        dens = self._kde(x.ravel()).reshape(x.shape) / self._norm * (1.0 - self.zero_pmf)
        return np.where(inside, dens, 0.0)


class UniformMeasure(ExplanationMeasure):
    """Uniform measure on ``[lo, hi]`` plus an optional point mass at zero (for hand computations).

    Parameters
    ----------
    lo, hi : float
        Support, ``lo < hi``.
    zero_pmf : float, default=0.0
        Point mass at 0, in [0, 1).
    """

    def __init__(self, lo: float, hi: float, zero_pmf: float = 0.0) -> None:
        if not lo < hi:
            raise ValueError(f"`lo` must be below `hi`, got lo={lo}, hi={hi}.")
        if not 0.0 <= zero_pmf < 1.0:
            raise ValueError(f"`zero_pmf` must be in [0, 1), got {zero_pmf}.")
        self.lo, self.hi, self.zero_pmf = float(lo), float(hi), float(zero_pmf)
        self.support = (self.lo, self.hi)

    def cdf_continuous(self, x: np.ndarray) -> np.ndarray:
        """``(1 - p0) (clip(x) - lo) / (hi - lo)``."""
        return (np.clip(x, self.lo, self.hi) - self.lo) / (self.hi - self.lo) * (1.0 - self.zero_pmf)
