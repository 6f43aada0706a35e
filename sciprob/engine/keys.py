"""Unit keys: canonical form, the cache hash and the per-unit seed sequence."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

_SCALARS = (str, int, float, bool)


def canonical_key(key: Any, experiment: str = "experiment") -> dict[str, Any]:
    """Check a unit key and return it as a plain dict.

    Parameters
    ----------
    key : mapping of str to str, int, float or bool
        Named coordinates of one unit, e.g. ``{"dataset": "GunPoint", "run": 3}``.
    experiment : str
        For the error message.

    Raises
    ------
    TypeError
        If ``key`` is not a mapping of names to JSON scalars (or a float is not finite).
    """
    if not isinstance(key, Mapping):
        raise TypeError(f"units of {experiment!r} must be dicts of named coordinates, got {key!r}")
    out: dict[str, Any] = {}
    for name, value in key.items():
        if not isinstance(name, str) or not isinstance(value, _SCALARS) or value is None:
            raise TypeError(
                f"unit key {dict(key)!r} of {experiment!r}: coordinates must map names to "
                f"str/int/float/bool, got {name!r}: {value!r}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise TypeError(f"unit key {dict(key)!r} of {experiment!r}: {name!r} is not finite")
        out[name] = value.item() if isinstance(value, np.generic) else value
    return out


def _key_text(key: Mapping[str, Any]) -> str:
    return json.dumps(dict(key), sort_keys=True, separators=(",", ":"))


def unit_hash(experiment: str, config: Mapping[str, Any], seed: int, key: Mapping[str, Any]) -> str:
    """Hex digest (20 characters) naming one unit's result in the run folder.

    It changes with the experiment, any config value, the run seed and the key,
    so a resumed run can reuse a stored unit only if all four agree.
    """
    text = json.dumps(
        {"experiment": experiment, "config": config, "seed": int(seed), "key": dict(key)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def unit_seed_sequence(seed: int, key: Mapping[str, Any]) -> np.random.SeedSequence:
    """Return the unit's :class:`~numpy.random.SeedSequence`: run seed plus the key's SHA-256 words.

    The key enters through its content, not its position in the grid, so
    adding a data set leaves every other unit's seed unchanged.
    """
    digest = hashlib.sha256(_key_text(key).encode()).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, len(digest), 4))
    return np.random.SeedSequence(entropy=int(seed), spawn_key=words)


def seed_of(sequence: np.random.SeedSequence) -> int:
    """Draw a 64-bit integer seed from ``sequence`` (for torch and the global RNGs)."""
    lo, hi = (int(w) for w in sequence.generate_state(2, np.uint32))
    return lo | (hi << 32)
