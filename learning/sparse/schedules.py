r"""When to prune: sparsity schedules and a pruner driven by optimizer steps.

A :class:`SparsitySchedule` maps an optimizer step :math:`t` (counted from 0)
to a target sparsity and says at which steps the masks are recomputed:

- :class:`OneShot`: the final sparsity at one step;
- :class:`Iterative`: prune–fine-tune in ``rounds`` rounds, each removing the
  same fraction of the survivors, :math:`s_k = 1 - (1 - s)^{k / n}`;
- :class:`Cubic`: gradual magnitude pruning of Zhu & Gupta (2017) [1]_,
  :math:`s_t = s_f + (s_i - s_f)\,(1 - (t - t_0)/(t_1 - t_0))^3` for
  :math:`t_0 \le t \le t_1`, updated every ``frequency`` steps.

:class:`GradualPruner` applies a schedule: call :meth:`GradualPruner.step`
after each optimizer step, or :meth:`GradualPruner.attach` it to any
``torch.optim`` optimizer as a step post-hook.

References
----------
.. [1] M. Zhu, S. Gupta, "To prune, or not to prune: exploring the efficacy of pruning
   for model compression", ICLR workshop 2018, arXiv:1710.01878.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import nn

from sciprob.learning.sparse.masks import ScoreSpec, check_sparsity, masked_tensors, prune


def _check_step(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer step, got {value!r}")
    return value


class SparsitySchedule(ABC):
    """Target sparsity per optimizer step."""

    @abstractmethod
    def sparsity_at(self, step: int) -> float:
        """Target sparsity after optimizer step ``step`` (0-based)."""

    @abstractmethod
    def is_update_step(self, step: int) -> bool:
        """Whether the masks are recomputed after optimizer step ``step``."""

    @property
    @abstractmethod
    def end_step(self) -> int:
        """Last step at which the schedule changes the masks."""


class OneShot(SparsitySchedule):
    """Prune to ``sparsity`` once, after step ``at_step``.

    Parameters
    ----------
    sparsity : float in [0, 1)
    at_step : int, default=0
    """

    def __init__(self, sparsity: float, at_step: int = 0) -> None:
        self.sparsity = check_sparsity(sparsity)
        self.at_step = _check_step(at_step, "at_step")

    def sparsity_at(self, step: int) -> float:  # noqa: D102
        return self.sparsity if step >= self.at_step else 0.0

    def is_update_step(self, step: int) -> bool:  # noqa: D102
        return step == self.at_step

    @property
    def end_step(self) -> int:  # noqa: D102
        return self.at_step

    def __repr__(self) -> str:
        return f"OneShot(sparsity={self.sparsity}, at_step={self.at_step})"


class Iterative(SparsitySchedule):
    """Iterative prune–fine-tune: ``rounds`` prunings ``every`` steps apart from ``start``.

    Round :math:`k = 1..n` (after step ``start + (k-1) * every``) reaches
    :math:`1 - (1 - s)^{k/n}`.

    Parameters
    ----------
    sparsity : float in [0, 1)
    rounds : int
    every : int
        Steps of fine-tuning between prunings.
    start : int, default=0
    """

    def __init__(self, sparsity: float, rounds: int, every: int, start: int = 0) -> None:
        self.sparsity = check_sparsity(sparsity)
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"`rounds` must be a positive integer, got {rounds!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be a positive integer number of steps, got {every!r}")
        self.rounds, self.every, self.start = rounds, every, _check_step(start, "start")

    def _round(self, step: int) -> int:
        if step < self.start:
            return 0
        return min(self.rounds, (step - self.start) // self.every + 1)

    def sparsity_at(self, step: int) -> float:  # noqa: D102
        return 1.0 - (1.0 - self.sparsity) ** (self._round(step) / self.rounds)

    def is_update_step(self, step: int) -> bool:  # noqa: D102
        return self.start <= step <= self.end_step and (step - self.start) % self.every == 0

    @property
    def end_step(self) -> int:  # noqa: D102
        return self.start + (self.rounds - 1) * self.every

    def __repr__(self) -> str:
        args = f"sparsity={self.sparsity}, rounds={self.rounds}, every={self.every}, start={self.start}"
        return f"Iterative({args})"


class Cubic(SparsitySchedule):
    r"""Gradual magnitude pruning schedule of Zhu & Gupta: cubic from ``initial_sparsity`` to ``sparsity``.

    .. math::

        s_t = s_f + (s_i - s_f) \left(1 - \frac{t - t_0}{t_1 - t_0}\right)^3,
        \qquad t_0 \le t \le t_1,

    with :math:`t` rounded down to a multiple of ``frequency`` after
    :math:`t_0`; the masks change every ``frequency`` steps and at :math:`t_1`.

    Parameters
    ----------
    sparsity : float in [0, 1)
        Final sparsity :math:`s_f`.
    start : int
        First pruning step :math:`t_0`.
    end : int
        Step :math:`t_1 > t_0` at which :math:`s_f` is reached.
    frequency : int, default=100
        Steps between mask updates (``Δt``).
    initial_sparsity : float in [0, 1), default=0.0
        :math:`s_i \le s_f`.

    Raises
    ------
    ValueError
        ``end <= start`` (a schedule ending before it starts), a bad sparsity
        or frequency.
    """

    def __init__(
        self, sparsity: float, start: int, end: int, frequency: int = 100, initial_sparsity: float = 0.0
    ) -> None:
        self.sparsity = check_sparsity(sparsity)
        self.initial_sparsity = check_sparsity(initial_sparsity, "initial_sparsity")
        self.start, self.end = _check_step(start, "start"), _check_step(end, "end")
        if self.end <= self.start:
            raise ValueError(
                f"`end`={end!r} must be after `start`={start!r}: the schedule would end before it starts"
            )
        if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
            raise ValueError(f"`frequency` must be a positive integer number of steps, got {frequency!r}")
        if self.initial_sparsity > self.sparsity:
            raise ValueError(
                f"`initial_sparsity`={initial_sparsity!r} must not exceed `sparsity`={sparsity!r}"
            )
        self.frequency = frequency

    def sparsity_at(self, step: int) -> float:  # noqa: D102
        if step < self.start:
            return 0.0
        if step >= self.end:
            return self.sparsity
        t = self.start + ((step - self.start) // self.frequency) * self.frequency
        frac = (t - self.start) / (self.end - self.start)
        return self.sparsity + (self.initial_sparsity - self.sparsity) * (1.0 - frac) ** 3

    def is_update_step(self, step: int) -> bool:  # noqa: D102
        return self.start <= step <= self.end and (
            (step - self.start) % self.frequency == 0 or step == self.end
        )

    @property
    def end_step(self) -> int:  # noqa: D102
        return self.end

    def __repr__(self) -> str:
        return (
            f"Cubic(sparsity={self.sparsity}, start={self.start}, end={self.end}, "
            f"frequency={self.frequency}, initial_sparsity={self.initial_sparsity})"
        )


class CosineDecay:
    r"""RigL's drop fraction :math:`\alpha_t = \tfrac{\alpha}{2}(1 + \cos \frac{\pi t}{T_\text{end}})`.

    Parameters
    ----------
    initial : float in (0, 1]
        :math:`\alpha` (RigL: 0.3).
    end : int
        :math:`T_\text{end}`, the step after which masks stop changing.
    """

    def __init__(self, initial: float, end: int) -> None:
        if not 0.0 < initial <= 1.0:
            raise ValueError(f"`initial` drop fraction must lie in (0, 1], got {initial!r}")
        if isinstance(end, bool) or not isinstance(end, int) or end < 1:
            raise ValueError(f"`end` must be a positive integer step, got {end!r}")
        self.initial, self.end = float(initial), end

    def __call__(self, step: int) -> float:
        """Drop fraction after step ``step``."""
        if step >= self.end:
            return 0.0
        return 0.5 * self.initial * (1.0 + math.cos(math.pi * step / self.end))


class GradualPruner:
    """Apply a :class:`SparsitySchedule` to a masked model after optimizer steps.

    Parameters
    ----------
    model : nn.Module
        A masked model (:func:`~sciprob.learning.sparse.masks.sparsify`).
    schedule : SparsitySchedule
    score : str, mapping or callable, default="magnitude"
        As in :func:`~sciprob.learning.sparse.masks.prune`; a
        :class:`~sciprob.learning.sparse.scores.MovementScores` gives movement pruning.
    allocation : {"uniform", "global", "er", "erk"}, default="uniform"

    Attributes
    ----------
    steps : int
        Optimizer steps seen.
    history : list of (int, float)
        ``(step, global sparsity)`` after each mask update.
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: SparsitySchedule,
        score: ScoreSpec = "magnitude",
        allocation: str = "uniform",
    ) -> None:
        if not isinstance(schedule, SparsitySchedule):
            raise TypeError(f"`schedule` must be a SparsitySchedule, got {type(schedule).__name__}")
        if not any(True for _ in masked_tensors(model)):
            raise ValueError("`model` has no masks; call `sparsify(model, targets)` first")
        self.model, self.schedule, self.score, self.allocation = model, schedule, score, allocation
        self.steps = 0
        self.history: list[tuple[int, float]] = []
        self._handle = None

    def step(self) -> None:
        """Count one optimizer step and prune if the schedule says so."""
        t = self.steps
        self.steps += 1
        if self.schedule.is_update_step(t):
            target = self.schedule.sparsity_at(t)
            summary = prune(self.model, target, score=self.score, allocation=self.allocation)
            self.history.append((t, 1.0 - summary.global_density))

    def attach(self, optimizer: torch.optim.Optimizer) -> GradualPruner:
        """Call :meth:`step` after every ``optimizer.step()``; returns self."""
        self._handle = optimizer.register_step_post_hook(lambda *_: self.step())
        return self

    def detach(self) -> None:
        """Remove the optimizer hook."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
