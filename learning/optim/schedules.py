"""Schedules for the hybrid mixing weight ``g`` (per epoch, per parameter group).

Like torch's LR schedulers they hold the optimizer, remember each group's
initial ``g`` and are stepped once per epoch; ``state_dict`` /
``load_state_dict`` save and restore their position. The exponential and
random schedules follow the reference ``GExponentialScheduler`` and
``GRandScheduler`` [1]_.

References
----------
.. [1] Official code of Kirtas, Passalis, Tefas (2024), ``cidl-auth/torch_mult_optim``,
   ``schedulers/g_scheduler.py``.
"""

from __future__ import annotations

import random
from typing import Any

from sciprob.learning.optim.rules import UpdateRule


class GSchedule:
    """Base class: sets ``group["g"] = self.value(index, initial_g)`` on every :meth:`step`.

    Parameters
    ----------
    optimizer : UpdateRule
        The wrapped optimizer whose hybrid groups are scheduled.

    Attributes
    ----------
    epoch : int
        Number of :meth:`step` calls so far.
    initial_g : list of float
        Each group's ``g`` when the schedule was built.
    current_g : list of float
        Each group's ``g`` now.
    """

    def __init__(self, optimizer: UpdateRule) -> None:
        if not isinstance(optimizer, UpdateRule):
            raise TypeError(f"`optimizer` must be an UpdateRule, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.epoch = 0
        self.initial_g = [float(group["g"]) for group in optimizer.param_groups]
        self._apply()

    def value(self, index: int, initial: float) -> float:
        """Return the mixing weight of group ``index`` at the current epoch."""
        raise NotImplementedError

    def _apply(self) -> None:
        self.current_g = [
            min(1.0, max(0.0, float(self.value(index, initial))))
            for index, initial in enumerate(self.initial_g)
        ]
        self._set_groups()

    def _set_groups(self) -> None:
        for group, g in zip(self.optimizer.param_groups, self.current_g, strict=True):
            group["g"] = g

    def step(self) -> None:
        """Advance one epoch and update every group's ``g``."""
        self.epoch += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the position saved by :meth:`state_dict` and each group's current ``g``."""
        self.__dict__.update(state_dict)
        self._set_groups()


class ExponentialGSchedule(GSchedule):
    r"""Purely multiplicative for ``patience`` epochs, then ``g = g0**k`` after ``k`` more epochs.

    .. math:: g_e = 1 \;(e < p), \qquad g_e = g_0^{\,e - p + 1} \;(e \ge p)

    With ``inverse=True`` the roles swap: ``g = 0`` during the patience, then
    :math:`1 - (1 - g_0)^{e - p + 1}`.

    Parameters
    ----------
    optimizer : UpdateRule
        Wrapped optimizer; ``g0`` is each group's ``g`` at construction.
    patience : int, default=0
        Epochs before the decay starts.
    inverse : bool, default=False
        Start additive and move towards multiplicative instead.
    """

    def __init__(self, optimizer: UpdateRule, patience: int = 0, inverse: bool = False) -> None:
        if patience < 0:
            raise ValueError(f"`patience` must be >= 0, got {patience}")
        self.patience = int(patience)
        self.inverse = bool(inverse)
        super().__init__(optimizer)

    def value(self, index: int, initial: float) -> float:  # noqa: D102
        k = self.epoch - self.patience + 1
        if k <= 0:
            return 0.0 if self.inverse else 1.0
        return 1.0 - (1.0 - initial) ** k if self.inverse else initial**k


class LinearGSchedule(GSchedule):
    """Move ``g`` linearly from each group's initial value to ``final`` over ``epochs`` epochs.

    Parameters
    ----------
    optimizer : UpdateRule
        Wrapped optimizer.
    final : float
        Value reached after ``epochs`` steps, in [0, 1].
    epochs : int
        Length of the ramp (> 0); ``g`` stays at ``final`` afterwards.
    """

    def __init__(self, optimizer: UpdateRule, final: float, epochs: int) -> None:
        if not 0.0 <= final <= 1.0:
            raise ValueError(f"`final` must lie in [0, 1], got {final}")
        if epochs <= 0:
            raise ValueError(f"`epochs` must be positive, got {epochs}")
        self.final = float(final)
        self.epochs = int(epochs)
        super().__init__(optimizer)

    def value(self, index: int, initial: float) -> float:  # noqa: D102
        frac = min(1.0, self.epoch / self.epochs)
        return initial + frac * (self.final - initial)


class RandomGSchedule(GSchedule):
    """Draw ``g`` in {0, 1} per epoch (fair coin) after ``patience`` multiplicative epochs.

    Parameters
    ----------
    optimizer : UpdateRule
        Wrapped optimizer.
    patience : int, default=0
        Epochs with ``g = 1`` before the draws start.
    seed : int, default=0
        Seed of the schedule's own generator (saved in the state dict).
    """

    def __init__(self, optimizer: UpdateRule, patience: int = 0, seed: int = 0) -> None:
        if patience < 0:
            raise ValueError(f"`patience` must be >= 0, got {patience}")
        self.patience = int(patience)
        self.rng_state = random.Random(seed).getstate()
        super().__init__(optimizer)

    def value(self, index: int, initial: float) -> float:  # noqa: D102
        if self.epoch < self.patience:
            return 1.0
        rng = random.Random()
        rng.setstate(self.rng_state)
        draw = float(rng.randint(0, 1))
        self.rng_state = rng.getstate()
        return draw
