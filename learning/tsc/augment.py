"""Data augmentation of t-LeNet and MCNN: window slicing and window warping.

Window slicing (Le Guennec et al. 2016; Cui et al. 2016) cuts every
contiguous window of ``slice_length`` steps out of a series, so one case
becomes ``length - slice_length + 1`` cases with its label; a series is then
classified by the vote (here: the mean probability) of its slices. Window
warping stretches or squeezes the whole series by linear interpolation.
"""

from __future__ import annotations

import numpy as np


def window_slices(X: np.ndarray, slice_length: int) -> tuple[np.ndarray, int]:
    """All contiguous windows of each series.

    Parameters
    ----------
    X : ndarray of shape (n, channels, length)
        Series.
    slice_length : int
        Window length, ``1 <= slice_length <= length``.

    Returns
    -------
    slices : ndarray of shape (n * k, channels, slice_length)
        Windows grouped by case: rows ``i*k : (i+1)*k`` come from case ``i``.
    k : int
        Windows per case, ``length - slice_length + 1``.
    """
    length = X.shape[-1]
    if not 1 <= slice_length <= length:
        raise ValueError(f"`slice_length` must lie in [1, {length}], got {slice_length}")
    windows = np.lib.stride_tricks.sliding_window_view(X, slice_length, axis=-1)  # (n, C, k, s)
    k = windows.shape[2]
    return np.ascontiguousarray(windows.transpose(0, 2, 1, 3).reshape(-1, X.shape[1], slice_length)), k


def window_warp(X: np.ndarray, ratio: float) -> np.ndarray:
    """Resample every series on the grid ``0, ratio, 2 ratio, ... < length`` (dl-4-tsc's warping).

    Parameters
    ----------
    X : ndarray of shape (n, channels, length)
        Series.
    ratio : float
        Step of the new grid in original time steps; 0.5 doubles the length,
        2 halves it.

    Returns
    -------
    ndarray of shape (n, channels, ceil(length / ratio))
    """
    if ratio <= 0:
        raise ValueError(f"`ratio` must be positive, got {ratio}")
    length = X.shape[-1]
    grid = np.arange(0, length, ratio)
    flat = X.reshape(-1, length)
    out = np.stack([np.interp(grid, np.arange(length), row) for row in flat])
    return out.reshape(*X.shape[:-1], len(grid)).astype(X.dtype)


def tlenet_plan(length: int, n_cases: int) -> tuple[tuple[float, ...], int]:
    """Warping ratios and slice length of t-LeNet in dl-4-tsc.

    Ratios (0.5, 1, 2) with slices of ``int(0.1 * length)`` steps; only ratio
    1 and slices of ``int(0.9 * length)`` for series longer than 500 or more
    than 2000 cases; slices of at least 8 steps.

    Returns
    -------
    ratios : tuple of float
    slice_length : int
    """
    ratios, slice_ratio = (0.5, 1.0, 2.0), 0.1
    if length > 500 or n_cases > 2000:
        ratios, slice_ratio = (1.0,), 0.9
    if length * slice_ratio < 8:
        slice_ratio = 8 / length
    return ratios, min(length, max(1, int(round(slice_ratio * length, 9))))


def warp_and_slice(
    X: np.ndarray, ratios: tuple[float, ...], slice_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Warp each series by every ratio and cut all windows of ``slice_length``.

    Parameters
    ----------
    X : ndarray of shape (n, channels, length)
        Series.
    ratios : tuple of float
        Warping ratios (:func:`window_warp`).
    slice_length : int
        Window length.

    Returns
    -------
    slices : ndarray of shape (m, channels, slice_length)
        All windows of all warped copies.
    owner : ndarray of shape (m,), int
        Index of the case each window comes from.
    """
    parts, owners = [], []
    n = len(X)
    for ratio in ratios:
        warped = window_warp(X, ratio)
        if warped.shape[-1] < slice_length:
            continue
        slices, k = window_slices(warped, slice_length)
        parts.append(slices)
        owners.append(np.repeat(np.arange(n), k))
    if not parts:
        raise ValueError(f"every warped copy is shorter than `slice_length`={slice_length}")
    return np.concatenate(parts), np.concatenate(owners)
