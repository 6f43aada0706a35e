"""Behaviour ranges: one union of closed intervals per FEU, stored as padded arrays.

A behaviour function returns, for ``n`` FEUs, up to ``k`` intervals each::

    lo, hi : float arrays of shape (n, k)      slot j of FEU i is [lo[i, j], hi[i, j]]
    unused slots: lo = hi = NaN                 (NaN compares False, so they contain nothing)

Everything here is vectorised over FEUs; ``k`` is small (1 for most rules).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Intervals"]


def _as_2d(x: np.ndarray | float, n: int | None, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        if n is None:
            a = a.reshape(1, 1)
        else:
            a = np.full((n, 1), float(a))
    elif a.ndim == 1:
        a = a[:, None]
    elif a.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (n,) or (n, k), got shape {a.shape}; pass one row per FEU."
        )
    return a


@dataclass(frozen=True, eq=False)
class Intervals:
    """A union of closed intervals for each of ``n`` FEUs.

    Parameters
    ----------
    lo, hi : ndarray of shape (n, k)
        Interval ends (explanation units); unused slots are NaN in both.

    Raises
    ------
    ValueError
        Shapes differ, one end is NaN without the other, or ``lo > hi`` somewhere.

    Examples
    --------
    >>> iv = Intervals.simple([0.0, -1.0], [1.0, 0.5])
    >>> iv.contains(np.array([0.5, 0.75])).tolist()
    [True, False]
    """

    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self) -> None:
        lo, hi = self.lo, self.hi
        if lo.shape != hi.shape or lo.ndim != 2:
            raise ValueError(
                f"`lo` and `hi` must have the same shape (n, k), got {lo.shape} and {hi.shape}; "
                "return one pair of ends per interval slot."
            )
        nan_lo, nan_hi = np.isnan(lo), np.isnan(hi)
        if np.any(nan_lo != nan_hi):
            i = np.flatnonzero(np.any(nan_lo != nan_hi, axis=1))[0]
            raise ValueError(
                f"interval of FEU {i} has one NaN end (lo={lo[i].tolist()}, hi={hi[i].tolist()}); "
                "mark an unused slot with NaN in both `lo` and `hi`."
            )
        bad = lo > hi
        if np.any(bad):
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"interval with lo > hi: [{lo[i, j]}, {hi[i, j]}] for FEU {i}; "
                "give intervals as [lo, hi] with lo <= hi."
            )

    @classmethod
    def simple(cls, lo: np.ndarray | float, hi: np.ndarray | float, n: int | None = None) -> Intervals:
        """One interval per FEU.

        Parameters
        ----------
        lo, hi : float or ndarray of shape (n,)
            Ends; scalars are broadcast to ``n`` rows.
        n : int, default=None
            Number of FEUs when both ends are scalars.

        Returns
        -------
        Intervals
            With ``k = 1``.
        """
        lo_a = np.asarray(lo, dtype=np.float64)
        hi_a = np.asarray(hi, dtype=np.float64)
        if n is None and (lo_a.ndim or hi_a.ndim):
            n = max(lo_a.size if lo_a.ndim else 1, hi_a.size if hi_a.ndim else 1)
        lo2 = _as_2d(np.broadcast_to(lo_a, (n,)) if n is not None else lo_a, n, "lo")
        hi2 = _as_2d(np.broadcast_to(hi_a, (n,)) if n is not None else hi_a, n, "hi")
        return cls(np.ascontiguousarray(lo2), np.ascontiguousarray(hi2))

    @classmethod
    def empty(cls, n: int) -> Intervals:
        """Return the empty set for each of ``n`` FEUs."""
        return cls(np.full((n, 1), np.nan), np.full((n, 1), np.nan))

    @classmethod
    def coerce(cls, value: Intervals | tuple, n: int) -> Intervals:
        """Accept :class:`Intervals` or a ``(lo, hi)`` pair of scalars or arrays of shape (n,) or (n, k)."""
        if isinstance(value, Intervals):
            out = value
        elif isinstance(value, tuple) and len(value) == 2:
            lo = np.asarray(value[0], dtype=np.float64)
            hi = np.asarray(value[1], dtype=np.float64)
            lo, hi = np.broadcast_arrays(lo, hi)
            if lo.ndim <= 1:
                lo = np.broadcast_to(lo, (n,))
                hi = np.broadcast_to(hi, (n,))
            out = cls(np.ascontiguousarray(_as_2d(lo, n, "lo")), np.ascontiguousarray(_as_2d(hi, n, "hi")))
        else:
            raise TypeError(
                f"a behaviour function must return `Intervals` or a (lo, hi) tuple, "
                f"got {type(value).__name__}; "
                "return e.g. `(np.full(n, -0.1), np.full(n, 0.1))`."
            )
        if out.n != n:
            raise ValueError(
                f"behaviour range has {out.n} rows but the data has {n} FEUs; return one row per FEU."
            )
        return out

    @property
    def n(self) -> int:
        """Number of FEUs."""
        return self.lo.shape[0]

    @property
    def k(self) -> int:
        """Interval slots per FEU."""
        return self.lo.shape[1]

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Whether ``x[i]`` lies in FEU ``i``'s union (closed ends); bool array of shape (n,)."""
        x = np.asarray(x, dtype=np.float64)[:, None]
        return np.any((self.lo <= x) & (x <= self.hi), axis=1)

    def contains_zero(self) -> np.ndarray:
        """Whether 0 lies in each union; bool array of shape (n,)."""
        return np.any((self.lo <= 0.0) & (self.hi >= 0.0), axis=1)

    def pad(self, k: int) -> Intervals:
        """Return the same sets with ``k >= self.k`` slots."""
        if k == self.k:
            return self
        extra = np.full((self.n, k - self.k), np.nan)
        return Intervals(np.hstack([self.lo, extra]), np.hstack([self.hi, extra]))

    def select(self, mask: np.ndarray, other: Intervals) -> Intervals:
        """Rows of ``self`` where ``mask`` holds, rows of ``other`` elsewhere."""
        k = max(self.k, other.k)
        a, b = self.pad(k), other.pad(k)
        m = np.asarray(mask, dtype=bool)[:, None]
        return Intervals(np.where(m, a.lo, b.lo), np.where(m, a.hi, b.hi))

    def intersection(self, other: Intervals) -> Intervals:
        """Row-wise intersection; pairwise slot intersections, empty ones set to NaN."""
        lo = np.maximum(self.lo[:, :, None], other.lo[:, None, :]).reshape(self.n, -1)
        hi = np.minimum(self.hi[:, :, None], other.hi[:, None, :]).reshape(self.n, -1)
        empty = ~(lo <= hi)
        lo = np.where(empty, np.nan, lo)
        hi = np.where(empty, np.nan, hi)
        return Intervals(lo, hi)

    def union(self, other: Intervals) -> Intervals:
        """Row-wise union (slots concatenated)."""
        return Intervals(np.hstack([self.lo, other.lo]), np.hstack([self.hi, other.hi]))

    def row(self, i: int) -> list[tuple[float, float]]:
        """Return the intervals of FEU ``i`` as a sorted list of ``(lo, hi)`` pairs."""
        keep = ~np.isnan(self.lo[i])
        return sorted(zip(self.lo[i][keep].tolist(), self.hi[i][keep].tolist(), strict=True))
