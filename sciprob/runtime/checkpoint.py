"""Checkpoints for long training loops: atomic save, load with RNG state restore.

A checkpoint is a ``dict`` saved with :func:`torch.save`. :func:`save_checkpoint`
adds the random-number-generator states (python, numpy, torch, pyro) under the
key ``"_rng"`` so that a resumed run continues the same random stream.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from sciprob.runtime.atomic import atomic_write_bytes
from sciprob.runtime.seeding import get_rng_state, set_rng_state


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or is not a sciprob checkpoint; the message names it."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], *, rng: bool = True) -> Path:
    """Write ``state`` to ``path`` atomically.

    Parameters
    ----------
    path : str or PathLike
        Target file (conventionally ``checkpoint.pt`` in the run folder).
    state : dict
        Anything :func:`torch.save` accepts: ``state_dict()`` s, step counters,
        metric histories.
    rng : bool, default=True
        Also store the global RNG states, restored by :func:`load_checkpoint`.

    Returns
    -------
    Path
        The written path.
    """
    import torch

    if not isinstance(state, dict):
        raise TypeError(f"`state` must be a dict, got {type(state).__name__}")
    payload = dict(state)
    if rng:
        payload["_rng"] = get_rng_state()
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(
    path: str | os.PathLike, *, map_location: Any = "cpu", restore_rng: bool = True
) -> dict[str, Any] | None:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or PathLike
        Checkpoint file.
    map_location : str or torch.device, default="cpu"
        Passed to :func:`torch.load`.
    restore_rng : bool, default=True
        Restore the global RNG states stored with the checkpoint.

    Returns
    -------
    dict or None
        The saved state (without the RNG entry), or ``None`` if ``path`` does
        not exist.

    Raises
    ------
    CheckpointError
        If the file is truncated, empty, foreign or otherwise unreadable.
    """
    import torch

    path = Path(path)
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # truncated, empty, random bytes: torch raises many kinds
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}); delete it to start that part afresh"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, not a sciprob checkpoint")
    rng_state = payload.pop("_rng", None)
    if restore_rng and rng_state is not None:
        set_rng_state(rng_state)
    return payload
