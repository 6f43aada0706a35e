"""Device choice: ``auto`` takes CUDA when present."""

from __future__ import annotations

from typing import Literal

DeviceName = Literal["cpu", "cuda", "auto"]


def resolve_device(device: str = "auto"):
    """Turn a device name into a :class:`torch.device`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        ``"auto"`` picks ``cuda`` when :func:`torch.cuda.is_available`, else
        ``cpu``. Explicit torch strings such as ``"cuda:1"`` are accepted.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For an unknown name, or ``cuda`` when no CUDA device is present.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"`device` must be 'cpu', 'cuda' or 'auto', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` is {device!r} but no CUDA device is available; use 'cpu' or 'auto'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"`device` must be 'cpu', 'cuda' or 'auto', got {device!r}")
    return dev
