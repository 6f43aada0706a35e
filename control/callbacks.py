"""Callbacks of :meth:`HistorySAC.learn <sciprob.control.agent.HistorySAC.learn>` (Stable-Baselines3 style).

A callback sees the agent (``self.agent``) and is called at the start of
training, after every vector step (``on_step``; returning ``False`` stops
``learn``) and at the end. :class:`EvalCallback` and :class:`CheckpointCallback`
are the evaluation and checkpoint hooks of SB3's ``callbacks.py`` [1]_.

References
----------
.. [1] A. Raffin et al., "Stable-Baselines3", JMLR 22, 2021; ``common/callbacks.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sciprob.runtime import get_logger

if TYPE_CHECKING:
    from sciprob.control.agent import HistorySAC


class BaseCallback:
    """Base class: override :meth:`_on_step` (and optionally the other hooks).

    Attributes
    ----------
    agent : HistorySAC
        Set by :meth:`init_callback`.
    n_calls : int
        Calls of :meth:`on_step` so far.
    """

    def __init__(self) -> None:
        self.agent: HistorySAC | None = None
        self.n_calls = 0

    def init_callback(self, agent: HistorySAC) -> None:
        """Attach to ``agent`` (called by ``learn``)."""
        self.agent = agent

    def on_training_start(self) -> None:
        """Before the first step of ``learn``."""
        self._on_training_start()

    def on_step(self) -> bool:
        """After every vector step; ``False`` stops training."""
        self.n_calls += 1
        return self._on_step() is not False

    def on_training_end(self) -> None:
        """After the last step of ``learn``."""
        self._on_training_end()

    def _on_training_start(self) -> None:
        pass

    def _on_step(self) -> bool | None:
        return True

    def _on_training_end(self) -> None:
        pass


class CallbackList(BaseCallback):
    """Several callbacks called in order (``None``, one callback or a sequence are accepted).

    Raises
    ------
    TypeError
        An element is not a :class:`BaseCallback`.
    """

    def __init__(self, callbacks: BaseCallback | Sequence[BaseCallback] | None) -> None:
        super().__init__()
        if callbacks is None:
            items: list[BaseCallback] = []
        elif isinstance(callbacks, BaseCallback):
            items = [callbacks]
        else:
            items = list(callbacks)
        for c in items:
            if not isinstance(c, BaseCallback):
                raise TypeError(f"`callback` must be a BaseCallback or a list of them, got {c!r}")
        self.callbacks = items

    def init_callback(self, agent: HistorySAC) -> None:  # noqa: D102
        super().init_callback(agent)
        for c in self.callbacks:
            c.init_callback(agent)

    def _on_training_start(self) -> None:
        for c in self.callbacks:
            c.on_training_start()

    def _on_step(self) -> bool:
        return all([c.on_step() for c in self.callbacks])

    def _on_training_end(self) -> None:
        for c in self.callbacks:
            c.on_training_end()


class FunctionCallback(BaseCallback):
    """Call ``fn(agent)`` after every step; ``False`` stops training."""

    def __init__(self, fn: Callable[[HistorySAC], bool | None]) -> None:
        super().__init__()
        self.fn = fn

    def _on_step(self) -> bool | None:
        return self.fn(self.agent)


class EvalCallback(BaseCallback):
    """Evaluate the deterministic policy every ``eval_freq`` transitions.

    Parameters
    ----------
    eval_env : str or gymnasium.Env or gymnasium.vector.VectorEnv, default=None
        Default: the agent's training id.
    eval_freq : int, default=10_000
        Transitions (all copies together) between evaluations.
    n_eval_episodes : int, default=10
    seed : int, default=0
        Seed of the evaluation episodes (the same episodes every time).
    best_model_save_path : path, default=None
        Save the agent there whenever the mean return improves.
    on_eval : callable, default=None
        ``on_eval(agent, mean, std)`` after each evaluation.

    Attributes
    ----------
    evaluations : list of dict
        ``{"step", "mean", "std"}`` per evaluation.
    best_mean_reward : float
    """

    def __init__(
        self,
        eval_env: Any = None,
        eval_freq: int = 10_000,
        n_eval_episodes: int = 10,
        seed: int = 0,
        best_model_save_path: str | os.PathLike | None = None,
        on_eval: Callable[[HistorySAC, float, float], None] | None = None,
    ) -> None:
        super().__init__()
        if eval_freq < 1 or n_eval_episodes < 1:
            raise ValueError(
                f"`eval_freq` and `n_eval_episodes` must be >= 1, got {eval_freq}, {n_eval_episodes}"
            )
        self.eval_env, self.eval_freq, self.n_eval_episodes, self.seed = (
            eval_env,
            eval_freq,
            n_eval_episodes,
            seed,
        )
        self.best_model_save_path = Path(best_model_save_path) if best_model_save_path else None
        self.on_eval = on_eval
        self.evaluations: list[dict[str, float]] = []
        self.best_mean_reward = -float("inf")
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = (self.agent.num_timesteps // self.eval_freq + 1) * self.eval_freq

    def evaluate_now(self) -> tuple[float, float]:
        """Evaluate at once and record the result."""
        mean, std = self.agent.evaluate(self.eval_env, self.n_eval_episodes, self.seed)
        self.evaluations.append({"step": float(self.agent.num_timesteps), "mean": mean, "std": std})
        get_logger("control.eval").info(
            "step %d: eval return %.3f ± %.3f", self.agent.num_timesteps, mean, std
        )
        if mean > self.best_mean_reward:
            self.best_mean_reward = mean
            if self.best_model_save_path is not None:
                self.agent.save(self.best_model_save_path, include_buffer=False)
        if self.on_eval is not None:
            self.on_eval(self.agent, mean, std)
        return mean, std

    def _on_step(self) -> bool:
        if self.agent.num_timesteps >= self._next:
            self.evaluate_now()
            self._next = (self.agent.num_timesteps // self.eval_freq + 1) * self.eval_freq
        return True


class CheckpointCallback(BaseCallback):
    """Save the agent every ``save_freq`` transitions to ``<save_path>/<name_prefix>_<steps>_steps.pt``.

    Parameters
    ----------
    save_freq : int
    save_path : path
    name_prefix : str, default="history_sac"
    include_buffer : bool, default=False
    """

    def __init__(
        self,
        save_freq: int,
        save_path: str | os.PathLike,
        name_prefix: str = "history_sac",
        include_buffer: bool = False,
    ) -> None:
        super().__init__()
        if save_freq < 1:
            raise ValueError(f"`save_freq` must be >= 1, got {save_freq}")
        self.save_freq, self.save_path = save_freq, Path(save_path)
        self.name_prefix, self.include_buffer = name_prefix, include_buffer
        self.saved: list[Path] = []
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = (self.agent.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_step(self) -> bool:
        if self.agent.num_timesteps >= self._next:
            path = self.save_path / f"{self.name_prefix}_{self.agent.num_timesteps}_steps.pt"
            self.saved.append(self.agent.save(path, include_buffer=self.include_buffer))
            self._next = (self.agent.num_timesteps // self.save_freq + 1) * self.save_freq
        return True
