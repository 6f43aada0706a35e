"""Global seeding of python, numpy, torch and pyro, RNG state capture, and isolated RNG scopes.

Only the engine (and :func:`isolated_rng`, for libraries such as Pyro's NUTS that
draw from the global generators) touch the global RNGs; library code takes a
``seed`` or ``generator`` argument instead.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Largest seed accepted: torch seeds are 64-bit.
MAX_SEED = 2**64 - 1


def check_seed(seed: Any, name: str = "seed") -> int:
    """Return ``seed`` as an ``int`` or raise naming it.

    Raises
    ------
    ValueError
        If ``seed`` is not an integer in ``[0, 2**64)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"`{name}` must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed python's ``random``, numpy, torch (CPU and CUDA) and pyro.

    Parameters
    ----------
    seed : int
        Integer in ``[0, 2**64)``. Numpy's legacy generator takes the seed's two
        32-bit words, so distinct seeds never share a numpy stream.
    deterministic : bool, default=True
        Also ask torch for deterministic kernels where they exist
        (``warn_only``, so unsupported CUDA ops still run).

    Raises
    ------
    ValueError
        If ``seed`` is negative, too large or not an integer.
    """
    seed = check_seed(seed)
    import torch

    random.seed(seed)
    np.random.seed([seed & 0xFFFFFFFF, seed >> 32])
    torch.manual_seed(seed)  # also seeds CUDA; pyro draws from torch's generator
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def get_rng_state() -> dict[str, Any]:
    """Return the global RNG states of python, numpy and torch (CPU and CUDA)."""
    import torch

    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`get_rng_state` (pyro uses these generators)."""
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Seed the global RNGs for a block and restore the caller's states afterwards.

    For libraries that can only draw from the global generators (Pyro's NUTS,
    for example): the block is reproducible from ``seed`` and the caller's
    random streams continue as if the block had not run.

    Parameters
    ----------
    seed : int
        Seed of the block, in ``[0, 2**64)``.

    Examples
    --------
    >>> import torch
    >>> with isolated_rng(3):
    ...     a = torch.rand(2)
    >>> with isolated_rng(3):
    ...     b = torch.rand(2)
    >>> bool((a == b).all())
    True
    """
    seed = check_seed(seed)
    import torch

    saved = get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        seed_everything(seed, deterministic=deterministic)
        yield
    finally:
        set_rng_state(saved)
