"""Feature-explanation units (FEUs) as flat, vectorised arrays.

An FEU is one input unit (a token, a tabular feature, a time step) of one
instance, with its precomputed features, its explanation value, and its
instance's true label and prediction. ``n`` FEUs from instances of any length
are stored as columns of length ``n``; each FEU carries weight ``1/L`` where
``L`` is the length of its instance, so every instance weighs 1 (Zhou et al.
2022, Sec. 3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["FEUData"]


def _column(values: object, n: int, name: str) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim == 0:
        a = np.full(n, a.item())
    if a.shape != (n,):
        raise ValueError(f"`{name}` must have shape ({n},), one value per FEU, got shape {a.shape}.")
    return a


@dataclass(frozen=True, eq=False)
class FEUData:
    """``n`` feature-explanation units.

    Parameters
    ----------
    explanation : ndarray of shape (n,)
        Explanation value e(u) of each FEU (attribution units); must be finite.
    instance : ndarray of int of shape (n,)
        Index of the instance each FEU belongs to; FEUs of one instance need not be contiguous.
    features : mapping of str to ndarray of shape (n,), default={}
        Precomputed features, read by rule functions as ``data.features["name"]``.
    label : ndarray of shape (n,) or (n_instances,), default=0
        True label of the FEU's instance (class index; any integer for multi-class).
    prediction : ndarray of shape (n,) or (n_instances,), default=0
        The model's prediction for the instance: a probability in [0, 1] for binary models, or any
        number (the explained class's probability, the predicted class) for multi-class ones.
    units : sequence of str of shape (n,), default=None
        Display name of each unit (a word, a feature name, ``"t=12"``); default ``"u<position>"``.
    explained_class : int or ndarray of shape (n,), default=0
        Which class's explanation ``explanation`` is (for multi-class models).

    Attributes
    ----------
    n : int
        Number of FEUs.
    n_instances : int
        Number of distinct instances.
    length : ndarray of shape (n,)
        Length ``L`` of each FEU's instance.
    weight : ndarray of shape (n,)
        ``1 / L``.
    position : ndarray of shape (n,)
        Position of each FEU within its instance (order of appearance).

    Raises
    ------
    ValueError
        No FEUs, NaN or infinite explanations, or a column of the wrong length.

    Examples
    --------
    >>> d = FEUData(np.array([0.1, -0.2, 0.3]), np.array([0, 0, 1]), {"z": np.array([1.0, 2.0, 3.0])})
    >>> d.weight.tolist()
    [0.5, 0.5, 1.0]
    """

    explanation: np.ndarray
    instance: np.ndarray
    features: Mapping[str, np.ndarray] = field(default_factory=dict)
    label: np.ndarray | int = 0
    prediction: np.ndarray | float = 0.0
    units: Sequence[str] | None = None
    explained_class: np.ndarray | int = 0

    def __post_init__(self) -> None:
        e = np.asarray(self.explanation, dtype=np.float64)
        if e.ndim != 1:
            raise ValueError(f"`explanation` must have shape (n,), got shape {e.shape}; flatten the FEUs.")
        n = e.shape[0]
        if n == 0:
            raise ValueError("`explanation` is empty (0 FEUs); pass at least one instance with one unit.")
        if not np.all(np.isfinite(e)):
            bad = np.flatnonzero(~np.isfinite(e))
            raise ValueError(
                f"`explanation` has {bad.size} non-finite values (first at FEU {bad[0]}: {e[bad[0]]}); "
                "fix or drop those units before building FEUData."
            )
        inst = np.asarray(self.instance)
        if inst.shape != (n,) or not np.issubdtype(inst.dtype, np.integer):
            raise ValueError(
                f"`instance` must be an integer array of shape ({n},), got dtype {inst.dtype}, "
                f"shape {inst.shape}."
            )
        uniq, inverse, counts = np.unique(inst, return_inverse=True, return_counts=True)
        object.__setattr__(self, "explanation", e)
        object.__setattr__(self, "instance", inst.astype(np.int64))
        feats = {}
        for key, val in dict(self.features).items():
            if not isinstance(key, str):
                raise TypeError(f"`features` keys must be str, got {key!r}.")
            feats[key] = _column(val, n, f"features[{key!r}]")
        object.__setattr__(self, "features", feats)
        for name in ("label", "prediction"):
            v = np.asarray(getattr(self, name))
            if v.ndim == 1 and v.shape[0] == uniq.size and v.shape[0] != n:
                v = v[inverse]
            object.__setattr__(self, name, _column(v, n, name))
        object.__setattr__(self, "explained_class", _column(self.explained_class, n, "explained_class"))
        # position within the instance, in order of appearance
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pos = np.empty(n, dtype=np.int64)
        pos[order] = np.arange(n) - np.repeat(starts, counts)
        object.__setattr__(self, "position", pos)
        length = counts[inverse].astype(np.int64)
        object.__setattr__(self, "length", length)
        object.__setattr__(self, "weight", 1.0 / length)
        object.__setattr__(self, "n_instances", int(uniq.size))
        if self.units is None:
            units = [f"u{p}" for p in pos.tolist()]
        else:
            units = [str(u) for u in self.units]
            if len(units) != n:
                raise ValueError(f"`units` must have {n} names, one per FEU, got {len(units)}.")
        object.__setattr__(self, "units", units)

    position: np.ndarray = field(init=False, repr=False)
    length: np.ndarray = field(init=False, repr=False)
    weight: np.ndarray = field(init=False, repr=False)
    n_instances: int = field(init=False, repr=False)

    @property
    def n(self) -> int:
        """Number of FEUs."""
        return self.explanation.shape[0]

    @classmethod
    def from_instances(
        cls,
        explanations: Sequence[Sequence[float]],
        features: Sequence[Mapping[str, Sequence[float]]] | None = None,
        labels: Sequence[float] | None = None,
        predictions: Sequence[float] | None = None,
        units: Sequence[Sequence[str]] | None = None,
    ) -> FEUData:
        """Build from per-instance lists (instances of any length).

        Parameters
        ----------
        explanations : sequence of sequences of float
            ``explanations[i][j]``: explanation of unit ``j`` of instance ``i``.
        features : sequence of mappings str -> sequence of float, default=None
            ``features[i][name][j]``.
        labels, predictions : sequence of float of length n_instances, default=None
            Per instance; default 0.
        units : sequence of sequences of str, default=None
            Unit names per instance.

        Returns
        -------
        FEUData
        """
        lens = [len(e) for e in explanations]
        if sum(lens) == 0:
            raise ValueError("`explanations` is empty (0 FEUs); pass at least one instance with one unit.")
        e = np.concatenate([np.asarray(x, dtype=np.float64) for x in explanations])
        inst = np.repeat(np.arange(len(lens)), lens)
        feats: dict[str, np.ndarray] = {}
        if features is not None:
            names = list(features[0]) if len(features) else []
            for name in names:
                feats[name] = np.concatenate([np.asarray(f[name], dtype=np.float64) for f in features])
        lab = np.zeros(len(lens)) if labels is None else np.asarray(labels)
        pred = np.zeros(len(lens)) if predictions is None else np.asarray(predictions, dtype=np.float64)
        names_flat = None if units is None else [str(w) for ws in units for w in ws]
        return cls(e, inst, feats, lab[inst], pred[inst], names_flat)

    def save(self, path: str | Path) -> None:
        """Write to a ``.npz`` file (no pickles)."""
        path = Path(path)
        arrays = {f"feature__{k}": v for k, v in self.features.items()}
        np.savez(
            path,
            explanation=self.explanation,
            instance=self.instance,
            label=self.label,
            prediction=self.prediction,
            explained_class=self.explained_class,
            units=np.asarray(self.units, dtype=str),
            **arrays,
        )

    @classmethod
    def load(cls, path: str | Path) -> FEUData:
        """Read a file written by :meth:`save`."""
        with np.load(Path(path), allow_pickle=False) as z:
            feats = {k[len("feature__") :]: z[k] for k in z.files if k.startswith("feature__")}
            return cls(
                z["explanation"],
                z["instance"],
                feats,
                z["label"],
                z["prediction"],
                z["units"].tolist(),
                z["explained_class"],
            )

    def instance_indices(self, i: int) -> np.ndarray:
        """FEU indices of instance ``i`` (in position order)."""
        idx = np.flatnonzero(self.instance == i)
        return idx[np.argsort(self.position[idx])]
