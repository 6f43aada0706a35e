"""A stochastic variational inference loop with progress, checkpoints and optional JIT.

:func:`train_svi` wraps :class:`pyro.infer.SVI`: it shows a progress bar (log
lines off a terminal), stops (or warns) on non-finite losses, writes a checkpoint (Pyro
parameter store, optimiser state, loss history, RNG state) every
``checkpoint_every`` steps and at the end, and resumes from it. With
``jit=True`` it uses :class:`pyro.infer.JitTrace_ELBO`, valid when the model
structure is static (same sample sites and shapes every step); static
arguments are passed as keyword arguments so that the compiled trace is keyed
on them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyro
import torch
from pyro.infer import SVI, JitTrace_ELBO, Trace_ELBO
from pyro.optim import PyroOptim

from sciprob.runtime import ProgressBar, check_finite, load_checkpoint, save_checkpoint
from sciprob.runtime.numerics import check_policy


@dataclass
class SVIHistory:
    """Outcome of :func:`train_svi`.

    Attributes
    ----------
    losses : list of float
        Loss (negative ELBO) of every step, resumed steps included.
    steps : int
        Steps done in total.
    seconds : float
        Wall time of the steps run in this call.
    """

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


def train_svi(
    model: Callable,
    guide: Callable,
    optimizer: PyroOptim,
    *,
    steps: int,
    model_kwargs: Mapping[str, Any] | None = None,
    jit: bool = False,
    num_particles: int = 1,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 1000,
    resume: bool = False,
    on_nonfinite: Literal["raise", "warn"] = "raise",
    description: str = "SVI",
    callback: Callable[[int, float], None] | None = None,
) -> SVIHistory:
    """Maximise the ELBO of ``model``/``guide`` for ``steps`` steps.

    Parameters
    ----------
    model, guide : callable
        Pyro model and guide taking the same keyword arguments.
    optimizer : pyro.optim.PyroOptim
        E.g. ``pyro.optim.ClippedAdam({"lr": 1e-3})``.
    steps : int
        Total number of steps (a resumed run continues up to this number).
    model_kwargs : mapping, default=None
        Keyword arguments of ``model`` and ``guide`` (static under JIT).
    jit : bool, default=False
        Use :class:`~pyro.infer.JitTrace_ELBO`.
    num_particles : int, default=1
        Monte Carlo samples of the ELBO per step.
    checkpoint_path : path, default=None
        Where to save checkpoints; ``None`` disables them.
    checkpoint_every : int, default=1000
        Steps between checkpoints.
    resume : bool, default=False
        Continue from ``checkpoint_path`` if it exists.
    on_nonfinite : {"raise", "warn"}, default="raise"
        A NaN or infinite loss raises :class:`~sciprob.runtime.NonFiniteLossError`
        naming the step (or warns once and goes on).
    description : str, default="SVI"
        Progress label.
    callback : callable, default=None
        ``callback(step, loss)`` after every step.

    Returns
    -------
    SVIHistory

    Raises
    ------
    ValueError
        If ``steps < 0`` or ``checkpoint_every < 1``.
    """
    if steps < 0:
        raise ValueError(f"`steps` must be >= 0, got {steps}")
    if checkpoint_every < 1:
        raise ValueError(f"`checkpoint_every` must be >= 1, got {checkpoint_every}")
    check_policy(on_nonfinite)
    kwargs = dict(model_kwargs or {})
    if jit:
        loss = JitTrace_ELBO(num_particles=num_particles, ignore_jit_warnings=True)
    else:
        loss = Trace_ELBO(num_particles=num_particles)
    svi = SVI(model, guide, optimizer, loss=loss)
    history = SVIHistory()
    store = pyro.get_param_store()

    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        state = load_checkpoint(checkpoint_path)
        # register every parameter (PyroModules keep their own nn.Parameters), then copy in place
        Trace_ELBO().loss(model, guide, **kwargs)
        current = dict(store.named_parameters())
        with torch.no_grad():
            for name, value in state["params"]["params"].items():
                current[name].copy_(value)
        optimizer.set_state(state["optimizer"])
        history.losses, history.steps = list(state["losses"]), int(state["step"])

    def _save() -> None:
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                {
                    "params": store.get_state(),
                    "optimizer": optimizer.get_state(),
                    "losses": history.losses,
                    "step": history.steps,
                },
            )

    start = time.perf_counter()
    n_bad = 0
    with ProgressBar(steps, description) as bar:
        if history.steps:
            bar.update(history.steps)
        while history.steps < steps:
            value = float(svi.step(**kwargs))
            history.steps += 1
            history.losses.append(value)
            if not math.isfinite(value):
                n_bad += 1
                if n_bad == 1 or on_nonfinite == "raise":
                    check_finite(value, step=history.steps, policy=on_nonfinite, where=description)
            if callback is not None:
                callback(history.steps, value)
            bar.update(loss=value)
            if history.steps % checkpoint_every == 0 or history.steps == steps:
                _save()
    history.seconds = time.perf_counter() - start
    return history
