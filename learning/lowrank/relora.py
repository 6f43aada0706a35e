"""ReLoRA: merge-and-restart of LoRA adapters, partial optimizer reset, jagged cosine schedule.

ReLoRA [1]_ trains a network through a sequence of low-rank updates. Every
``reset_every`` optimizer steps the adapters are merged into the frozen
weights and re-initialised, most of their Adam moments are pruned, and the
learning rate restarts from zero with a short warm-up. The sum of many rank-r
updates is of rank up to ``k r``, so the total update ``W_T - W_0`` can be
high-rank although each segment trains only ``r (d_in + d_out)`` numbers per layer.

References
----------
.. [1] V. Lialin et al., "ReLoRA: High-Rank Training Through Low-Rank Updates",
   ICLR 2024, arXiv:2307.05695; code ``Guitaricet/relora``
   (``peft_pretraining/relora.py``, ``training_utils.py``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler

from sciprob.learning.lowrank.lora import LoRALayer, lora_modules, lora_parameters

ResetMode = Literal["magnitude", "random", "zero"]
_MOMENT_KEYS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def jagged_cosine_multiplier(
    step: int,
    *,
    total_steps: int,
    warmup_steps: int,
    restart_every: int,
    restart_warmup_steps: int,
    min_lr_ratio: float = 0.1,
    adjust_step: int = 0,
) -> float:
    r"""Learning-rate multiplier of the jagged cosine schedule at optimizer step ``step``.

    With :math:`c(p) = m + (1 - m)\,\tfrac12 (1 + \cos \pi p)`, warm-up ``w``,
    restart period ``R``, restart warm-up ``u`` and :math:`s' = s + \text{adjust}`:

    .. math::

        \lambda(s) = \begin{cases}
          s / w & s < w \\
          \dfrac{s' \bmod R}{u}\; c\!\left(\dfrac{\lfloor s'/R \rfloor R + u - w}{T - w}\right)
             & s \ge R,\ s' \bmod R < u \\
          c\!\left(\dfrac{s' - w}{T - w}\right) & \text{otherwise,}
        \end{cases}

    the reference's ``_get_cosine_schedule_with_multiple_warmups_lambda``: a
    global cosine from 1 to ``min_lr_ratio``, cut to zero at every restart and
    ramped back linearly over ``u`` steps to where the cosine will then be.

    Parameters
    ----------
    step : int
        Zero-based optimizer step.
    total_steps : int
        ``T``, the schedule's length.
    warmup_steps : int
        ``w``, first linear warm-up.
    restart_every : int
        ``R``, steps between restarts.
    restart_warmup_steps : int
        ``u``, linear warm-up after each restart.
    min_lr_ratio : float, default=0.1
        ``m``, the cosine's floor.
    adjust_step : int, default=0
        Phase shift for runs warm-started from a checkpoint.

    Returns
    -------
    float
    """
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    shifted = step + adjust_step
    restart_step, restart_number = shifted % restart_every, shifted // restart_every

    def cosine(progress: float) -> float:
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    span = max(1, total_steps - warmup_steps)
    if restart_step < restart_warmup_steps and step >= restart_every:
        end_of_warmup = (restart_number * restart_every + restart_warmup_steps - warmup_steps) / span
        return restart_step / max(1, restart_warmup_steps) * cosine(end_of_warmup)
    return cosine((shifted - warmup_steps) / span)


class JaggedCosineLR(LRScheduler):
    """Cosine decay with a linear warm-up and a zero-then-warm-up at every ReLoRA restart.

    The multiplier is :func:`jagged_cosine_multiplier`; call :meth:`step` after
    each ``optimizer.step()``, as for any ``torch.optim.lr_scheduler``.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    total_steps : int
        Length of the schedule (the reference asks ``total_steps % restart_every == 0``;
        here any length is allowed).
    warmup_steps : int
        First warm-up, ``0 <= warmup_steps + adjust_step <= restart_every``.
    restart_every : int
        Steps between restarts (ReLoRA's ``reset_every``).
    restart_warmup_steps : int
        Warm-up after each restart, ``0 <= restart_warmup_steps < restart_every``.
    min_lr_ratio : float, default=0.1
        Floor of the cosine as a fraction of the base learning rate, in (0, 1].
    adjust_step : int, default=0
        Phase shift (see :func:`jagged_cosine_multiplier`).
    last_epoch : int, default=-1

    Raises
    ------
    ValueError
        An argument is out of range (message names it).

    Examples
    --------
    >>> opt = torch.optim.AdamW([nn.Parameter(torch.zeros(2))], lr=1e-3)
    >>> sched = JaggedCosineLR(opt, total_steps=100, warmup_steps=10, restart_every=50,
    ...                        restart_warmup_steps=5)
    >>> for _ in range(50):
    ...     opt.step(); sched.step()
    >>> opt.param_groups[0]["lr"]   # restart: the rate is back at zero
    0.0
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        warmup_steps: int,
        restart_every: int,
        restart_warmup_steps: int,
        min_lr_ratio: float = 0.1,
        adjust_step: int = 0,
        last_epoch: int = -1,
    ) -> None:
        if restart_every < 1:
            raise ValueError(f"`restart_every` must be >= 1, got {restart_every}")
        if total_steps < 1:
            raise ValueError(f"`total_steps` must be >= 1, got {total_steps}")
        if not 0 <= warmup_steps + adjust_step <= min(restart_every, total_steps) or warmup_steps < 0:
            raise ValueError(
                f"`warmup_steps` + `adjust_step` must lie in [0, min(restart_every, total_steps)], "
                f"got {warmup_steps} + {adjust_step}; the first restart would come before the warm-up ends"
            )
        if not 0 <= restart_warmup_steps < restart_every:
            raise ValueError(
                f"`restart_warmup_steps` must lie in [0, restart_every={restart_every}), "
                f"got {restart_warmup_steps}"
            )
        if not 0.0 < min_lr_ratio <= 1.0:
            raise ValueError(f"`min_lr_ratio` must lie in (0, 1], got {min_lr_ratio}")
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.restart_every = restart_every
        self.restart_warmup_steps = restart_warmup_steps
        self.min_lr_ratio = min_lr_ratio
        self.adjust_step = adjust_step
        super().__init__(optimizer, last_epoch)

    def multiplier(self, step: int) -> float:
        """Return the learning-rate multiplier at zero-based step ``step``."""
        return jagged_cosine_multiplier(
            step,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
            restart_every=self.restart_every,
            restart_warmup_steps=self.restart_warmup_steps,
            min_lr_ratio=self.min_lr_ratio,
            adjust_step=self.adjust_step,
        )

    def get_lr(self) -> list[float]:
        """Learning rates of the parameter groups at ``self.last_epoch``."""
        mult = self.multiplier(self.last_epoch)
        return [base * mult for base in self.base_lrs]


@dataclass(frozen=True)
class ResetStats:
    """Outcome of one partial optimizer reset.

    Attributes
    ----------
    zeroed : int
        Moment entries that are zero after the reset.
    total : int
        Moment entries of the adapter parameters.
    """

    zeroed: int
    total: int

    @property
    def fraction(self) -> float:
        """``zeroed / total`` (0 when there was no state yet)."""
        return self.zeroed / self.total if self.total else 0.0


def _check_adam(optimizer: torch.optim.Optimizer) -> None:
    if not isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        raise NotImplementedError(
            f"partial optimizer reset supports torch.optim.Adam and AdamW, got {type(optimizer).__name__}"
        )


@torch.no_grad()
def _prune_(state: Tensor, mode: ResetMode, ratio: float, generator: torch.Generator | None) -> None:
    # In place, so that the optimizer keeps the very same tensors (the reference's reason, too).
    if mode == "zero" or ratio >= 1.0:
        state.zero_()
    elif ratio <= 0.0:
        return
    elif mode == "random":
        keep = torch.rand(state.shape, generator=generator, device="cpu").to(state.device) > ratio
        state.mul_(keep)
    else:
        magnitude = state.abs().flatten()
        k = max(1, round(ratio * magnitude.numel()))
        threshold = magnitude.float().kthvalue(k).values.to(state.dtype)
        state.mul_(state.abs() > threshold)


def reset_optimizer_state(
    optimizer: torch.optim.Optimizer,
    params: Iterable[nn.Parameter],
    mode: ResetMode = "magnitude",
    ratio: float = 0.9,
    generator: torch.Generator | None = None,
) -> ResetStats:
    """Prune the Adam moments of ``params`` in place; every other state entry is untouched.

    Parameters
    ----------
    optimizer : torch.optim.Adam or torch.optim.AdamW
        The optimizer, unmodified (no subclass or patch needed).
    params : iterable of nn.Parameter
        Parameters whose ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``
        with AMSGrad) are pruned; normally :func:`lora_parameters`. Their
        ``step`` counters and all other parameters' state stay as they are.
    mode : {"magnitude", "random", "zero"}, default="magnitude"
        ``"magnitude"``: per tensor, zero the ``round(ratio * n)`` entries of
        smallest magnitude (the reference's ``--optimizer_magnitude_pruning``;
        it thresholds at ``torch.quantile``, which differs by at most one
        entry's interpolation). ``"random"``: zero each entry with probability
        ``ratio`` (``--optimizer_random_pruning``). ``"zero"``: zero all
        (the reference approximates this by random pruning at 0.999).
    ratio : float, default=0.9
        Fraction to prune, in [0, 1]; ignored by ``"zero"``.
    generator : torch.Generator, default=None
        Random source of ``"random"`` (CPU generator).

    Returns
    -------
    ResetStats

    Raises
    ------
    NotImplementedError
        ``optimizer`` is not Adam or AdamW.
    ValueError
        Unknown ``mode`` or ``ratio`` outside [0, 1].
    """
    _check_adam(optimizer)
    if mode not in ("magnitude", "random", "zero"):
        raise ValueError(f"`mode` must be 'magnitude', 'random' or 'zero', got {mode!r}")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"`ratio` must lie in [0, 1], got {ratio!r}")
    zeroed = total = 0
    for p in params:
        state = optimizer.state.get(p, {})
        for key in _MOMENT_KEYS:
            if key in state:
                _prune_(state[key], mode, ratio, generator)
                zeroed += int((state[key] == 0).sum())
                total += state[key].numel()
    return ResetStats(zeroed=zeroed, total=total)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the tensors in ``optimizer.state`` (moments and step counters)."""
    return sum(
        v.numel() * v.element_size()
        for s in optimizer.state.values()
        for v in s.values()
        if torch.is_tensor(v)
    )


class ReLoRA:
    """Drive ReLoRA restarts for a model holding LoRA adapters (any :class:`LoRALayer`).

    Call :meth:`step` once after every ``optimizer.step()``; every
    ``reset_every`` calls it merges each adapter into its base weight,
    re-initialises ``A`` and ``B`` and prunes the adapters' Adam moments
    (:func:`reset_optimizer_state`). Pair it with :class:`JaggedCosineLR` using
    the same period so the learning rate restarts from zero at each merge.

    Parameters
    ----------
    model : nn.Module
        A model after :func:`inject_lora`.
    optimizer : torch.optim.Adam or torch.optim.AdamW
        Optimizer over (at least) the adapter parameters.
    reset_every : int
        Optimizer steps between restarts.
    reset_mode : {"magnitude", "random", "zero"}, default="magnitude"
        Optimizer reset mode (see :func:`reset_optimizer_state`).
    prune_ratio : float, default=0.9
        Pruned fraction of the adapters' moments (reference README: 0.9).
    generator : torch.Generator, default=None
        Random source for ``reset_mode="random"``.

    Attributes
    ----------
    num_steps : int
        Optimizer steps seen.
    restarts : list of int
        The step counts at which restarts happened.
    last_reset : ResetStats or None

    Raises
    ------
    ValueError
        No adapters in ``model``, adapters missing from ``optimizer``, or bad arguments.
    NotImplementedError
        ``optimizer`` is not Adam or AdamW.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        reset_every: int,
        *,
        reset_mode: ResetMode = "magnitude",
        prune_ratio: float = 0.9,
        generator: torch.Generator | None = None,
    ) -> None:
        _check_adam(optimizer)
        if not isinstance(reset_every, int) or reset_every < 1:
            raise ValueError(f"`reset_every` must be a positive integer, got {reset_every!r}")
        if reset_mode not in ("magnitude", "random", "zero"):
            raise ValueError(f"`reset_mode` must be 'magnitude', 'random' or 'zero', got {reset_mode!r}")
        if not 0.0 <= prune_ratio <= 1.0:
            raise ValueError(f"`prune_ratio` must lie in [0, 1], got {prune_ratio!r}")
        self.modules: list[LoRALayer] = [m for _, m in lora_modules(model)]
        if not self.modules:
            raise ValueError("`model` has no LoRALinear (or other LoRA) layers; call `inject_lora` first")
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [p for p in lora_parameters(model) if id(p) not in in_optimizer]
        if missing:
            raise ValueError(
                f"{len(missing)} adapter parameters are not in `optimizer`; build it after inject_lora"
            )
        self.model = model
        self.optimizer = optimizer
        self.reset_every = reset_every
        self.reset_mode = reset_mode
        self.prune_ratio = prune_ratio
        self.generator = generator
        self.num_steps = 0
        self.restarts: list[int] = []
        self.last_reset: ResetStats | None = None

    def step(self) -> bool:
        """Count one optimizer step; restart if the period is complete. Returns whether it restarted."""
        self.num_steps += 1
        if self.num_steps % self.reset_every == 0:
            self.restart()
            return True
        return False

    @torch.no_grad()
    def restart(self) -> ResetStats:
        """Merge and re-initialise every adapter now and prune their optimizer moments."""
        if not all(torch.isfinite(p).all() for p in lora_parameters(self.model)):
            raise FloatingPointError("non-finite adapter weights; ReLoRA restart aborted before merging")
        for module in self.modules:
            module.merge()
            module.reinit()
        self.last_reset = reset_optimizer_state(
            self.optimizer,
            lora_parameters(self.model),
            mode=self.reset_mode,
            ratio=self.prune_ratio,
            generator=self.generator,
        )
        self.restarts.append(self.num_steps)
        return self.last_reset

    def state_dict(self) -> dict[str, Any]:
        """Counters and the reset generator's state, for checkpoints (weights live in the model)."""
        state: dict[str, Any] = {"num_steps": self.num_steps, "restarts": list(self.restarts)}
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.num_steps = int(state["num_steps"])
        self.restarts = list(state["restarts"])
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])


def load_full_rank(model: nn.Module, source: Mapping[str, Tensor] | str | os.PathLike) -> None:
    """Warm-start ``model`` (with or without adapters) from a full-rank state dict.

    Keys of a plain model (``<layer>.weight``, ``<attn>.in_proj_weight``,
    ``<attn>.out_proj.weight``, ...) are mapped onto the wrapped names
    (``<layer>.base.weight``, ``<attn>.base.out_proj.base.weight``, ...) of
    every adapter; the adapters themselves are re-initialised (a warm start
    carries no adapter).

    Parameters
    ----------
    model : nn.Module
    source : mapping of str to Tensor, or path
        A ``state_dict()`` of the same architecture without adapters, or a file
        saved with :func:`torch.save` holding one (or a dict with a ``"model"`` key).

    Raises
    ------
    ValueError
        Keys do not match the architecture (lists the first differences).
    """
    if not isinstance(source, Mapping):
        source = torch.load(source, map_location="cpu", weights_only=True)
        if "model" in source and isinstance(source["model"], Mapping):
            source = source["model"]
    wrappers = sorted(
        (name for name, m in model.named_modules() if isinstance(m, LoRALayer)), key=len, reverse=True
    )

    def plain(key: str) -> str:
        # Innermost wrapper first: a.base.out_proj.base.weight -> a.base.out_proj.weight -> a.out_proj.weight
        for w in wrappers:
            prefix = f"{w}.base." if w else "base."
            if key.startswith(prefix):
                key = (f"{w}." if w else "") + key[len(prefix) :]
        return key

    mapped: dict[str, Tensor] = {}
    by_plain = {plain(k): k for k in model.state_dict()}
    for key, value in source.items():
        mapped[by_plain.get(key, key)] = value
    result = model.load_state_dict(mapped, strict=False)
    missing = [k for k in result.missing_keys if not k.rpartition(".")[2].startswith("lora_")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"`source` does not fit the model: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    for _, module in lora_modules(model):
        module.reinit()
