"""Reusable vectorised rule functions (importable, so rule files can name them).

Each takes ``(data: FEUData, params: dict[str, float])`` and returns, for all ``n`` FEUs, a bool
array (applicability) or a ``(lo, hi)`` pair (behaviour). Feature names are fixed by the function;
the experiment's FEU builders (:func:`sciprob.theory.exsum.tabular_feus`,
:func:`sciprob.theory.exsum.series_feus`) provide them.
"""

from __future__ import annotations

import numpy as np

from sciprob.theory.exsum.data import FEUData

__all__ = [
    "abs_value_below",
    "constant_range",
    "everything",
    "feature_above",
    "feature_below",
    "in_feature_set_above",
    "level_above",
    "near_peak",
    "slope_above",
    "slope_below",
    "symmetric_range",
]


def everything(data: FEUData, params: dict[str, float]) -> np.ndarray:
    """Apply to every FEU."""
    return np.ones(data.n, dtype=bool)


def feature_above(data: FEUData, params: dict[str, float]) -> np.ndarray:
    """``value > threshold`` (feature ``"value"``)."""
    return data.features["value"] > params["threshold"]


def feature_below(data: FEUData, params: dict[str, float]) -> np.ndarray:
    """``value < threshold`` (feature ``"value"``)."""
    return data.features["value"] < params["threshold"]


def abs_value_below(data: FEUData, params: dict[str, float]) -> np.ndarray:
    """``|value| < tau`` (feature ``"value"``)."""
    return np.abs(data.features["value"]) < params["tau"]


def in_feature_set_above(data: FEUData, params: dict[str, float]) -> np.ndarray:
    """Feature flag ``"in_set"`` is 1 and ``value > threshold``."""
    return (data.features["in_set"] > 0.5) & (data.features["value"] > params["threshold"])


def slope_above(data: FEUData, params: dict[str, float]) -> np.ndarray:
    """Local slope (feature ``"slope"``) above ``threshold``."""
    return data.features["slope"] > params["threshold"]


def slope_below(data: FEUData, params: dict[str, float]) -> np.ndarray:
    """Local slope (feature ``"slope"``) below ``threshold``."""
    return data.features["slope"] < params["threshold"]


def level_above(data: FEUData, params: dict[str, float]) -> np.ndarray:
    """Series level (feature ``"level"``) above ``threshold``."""
    return data.features["level"] > params["threshold"]


def near_peak(data: FEUData, params: dict[str, float]) -> np.ndarray:
    """Relative distance to the series' peak (feature ``"peak_distance"``, in [0, 1]) below ``radius``."""
    return data.features["peak_distance"] < params["radius"]


def constant_range(data: FEUData, params: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Return the interval ``[lo, hi]`` for every FEU."""
    return np.full(data.n, params["lo"]), np.full(data.n, params["hi"])


def symmetric_range(data: FEUData, params: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Return the interval ``[-h, h]`` for every FEU."""
    return np.full(data.n, -params["h"]), np.full(data.n, params["h"])
