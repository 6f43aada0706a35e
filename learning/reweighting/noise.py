r"""Label-noise models and the clean meta set.

Three corruption models at a rate ``p``, all seeded through a
:class:`numpy.random.Generator`:

=============  ==================================================================
``"uniform"``  symmetric noise with the official MW-Net/FaMUS semantics: a share
               ``p`` of the labels is redrawn uniformly over all ``K`` classes,
               so about ``p (K - 1) / K`` of them actually change (transition
               matrix :math:`p/K\,\mathbf{1}\mathbf{1}^\top + (1-p) I`)
``"flip"``     symmetric noise where every corrupted label moves to one of the
               other ``K - 1`` classes: exactly ``p`` of the labels change
``"pair"``     asymmetric (class-pair) noise: a share ``p`` of each class moves
               to the next class, :math:`y \mapsto (y + 1) \bmod K`
=============  ==================================================================

The corrupted examples are drawn without replacement (``round(p n)`` of them),
so ``"flip"`` and ``"pair"`` reach the requested rate up to rounding.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

NoiseKind = Literal["uniform", "flip", "pair"]
_KINDS = ("uniform", "flip", "pair")


class NoisyLabels(NamedTuple):
    """Labels after corruption.

    Attributes
    ----------
    labels : ndarray of shape (n,), dtype int64
        The noisy labels.
    noisy : ndarray of shape (n,), dtype bool
        Whether each label differs from the true one.
    rate : float
        The realised noise rate, ``noisy.mean()``.
    """

    labels: np.ndarray
    noisy: np.ndarray
    rate: float


def _check_labels(labels: np.ndarray, n_classes: int, name: str = "labels") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"`{name}` must be a 1-d integer array, got dtype {arr.dtype} and shape {arr.shape}")
    if not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise ValueError(f"`n_classes` must be an integer >= 2, got {n_classes!r}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(
            f"`{name}` must lie in [0, {n_classes}), got values in [{arr.min()}, {arr.max()}]; "
            "encode the classes as 0..n_classes-1"
        )
    return arr.astype(np.int64)


def corrupt_labels(
    labels: np.ndarray,
    rate: float,
    *,
    kind: NoiseKind = "uniform",
    n_classes: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> NoisyLabels:
    """Corrupt ``labels`` with symmetric or class-pair noise.

    Parameters
    ----------
    labels : ndarray of shape (n,), dtype int
        True labels in ``0..n_classes-1``; not modified.
    rate : float
        Share of the labels that are corrupted, in [0, 1).
    kind : {"uniform", "flip", "pair"}, default="uniform"
        Noise model (see the module docstring).
    n_classes : int, default=None
        Number of classes; default ``labels.max() + 1``.
    rng : numpy.random.Generator or int, default=None
        Random source (an int seeds a new generator).

    Returns
    -------
    NoisyLabels
        The noisy labels, the mask of changed labels and the realised rate.

    Raises
    ------
    ValueError
        ``rate`` outside [0, 1), unknown ``kind``, labels out of range.

    Examples
    --------
    >>> y = np.repeat(np.arange(10), 100)
    >>> corrupt_labels(y, 0.4, kind="flip", rng=0).rate
    0.4
    """
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not (0.0 <= float(rate) < 1.0):
        raise ValueError(f"`rate` must be a noise rate in [0, 1), got {rate!r}")
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {_KINDS}, got {kind!r}")
    arr = np.asarray(labels)
    k = int(arr.max()) + 1 if n_classes is None and arr.size else n_classes
    y = _check_labels(arr, 2 if k is None else k)
    k = int(k if k is not None else 2)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = y.size
    chosen = gen.choice(n, size=round(float(rate) * n), replace=False)
    out = y.copy()
    if kind == "uniform":
        out[chosen] = gen.integers(0, k, size=chosen.size)
    elif kind == "flip":
        out[chosen] = (y[chosen] + gen.integers(1, k, size=chosen.size)) % k
    else:
        out[chosen] = (y[chosen] + 1) % k
    noisy = out != y
    return NoisyLabels(out, noisy, float(noisy.mean()) if n else 0.0)


def clean_split(
    labels: np.ndarray,
    per_class: int,
    *,
    n_classes: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into a class-balanced clean meta set and the rest.

    Parameters
    ----------
    labels : ndarray of shape (n,), dtype int
        True labels.
    per_class : int
        Clean examples per class (at least 1).
    n_classes : int, default=None
        Number of classes; default ``labels.max() + 1``.
    rng : numpy.random.Generator or int, default=None
        Random source.

    Returns
    -------
    meta_idx : ndarray of shape (per_class * n_classes,)
        Indices of the clean meta set.
    train_idx : ndarray of shape (n - per_class * n_classes,)
        Indices of the (to be corrupted) training set, disjoint from ``meta_idx``.

    Raises
    ------
    ValueError
        ``per_class < 1`` or a class with fewer than ``per_class + 1`` examples.
    """
    arr = np.asarray(labels)
    k = int(arr.max()) + 1 if n_classes is None else n_classes
    y = _check_labels(arr, k)
    if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ValueError(f"`per_class` must be a positive integer, got {per_class!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    meta = []
    for c in range(k):
        members = np.flatnonzero(y == c)
        if members.size <= per_class:
            raise ValueError(
                f"class {c} has {members.size} examples, too few for `per_class`={per_class}; "
                "lower `per_class`"
            )
        meta.append(gen.choice(members, size=per_class, replace=False))
    meta_idx = np.sort(np.concatenate(meta))
    train_idx = np.setdiff1d(np.arange(y.size), meta_idx)
    return meta_idx, train_idx


def check_clean_set(
    meta_labels: np.ndarray,
    n_classes: int,
    *,
    meta_idx: np.ndarray | None = None,
    train_idx: np.ndarray | None = None,
) -> None:
    """Check that a clean meta set covers every class and is disjoint from the training set.

    Parameters
    ----------
    meta_labels : ndarray of shape (m,), dtype int
        Labels of the clean set.
    n_classes : int
        Number of classes.
    meta_idx, train_idx : ndarray of int, default=None
        Indices of the clean and training examples in a common pool; when both
        are given they must not overlap.

    Raises
    ------
    ValueError
        A class missing from the clean set, or an index in both sets.
    """
    y = _check_labels(np.asarray(meta_labels), n_classes, "meta_labels")
    missing = sorted(set(range(n_classes)) - set(y.tolist()))
    if missing:
        raise ValueError(
            f"the clean meta set (`meta_labels`) has no example of classes {missing}; "
            "give it at least one example of every class"
        )
    if meta_idx is not None and train_idx is not None:
        both = np.intersect1d(np.asarray(meta_idx), np.asarray(train_idx))
        if both.size:
            raise ValueError(
                f"`meta_idx` and `train_idx` share {both.size} examples (e.g. {both[:5].tolist()}); "
                "the clean set must be held out of the training set"
            )
