"""Tracking tasks: score policies on held-out systems; :func:`train` is a thin wrapper of ``HistorySAC``.

:func:`evaluate` runs
any policy (an :class:`Agent`, :class:`~sciprob.control.pid.PIDController`,
:class:`ZeroPolicy`) on a fixed set of systems drawn from a parameter range
with a fixed seed (system ``i`` uses ``seed + i``), so every method is scored
on the same systems.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import gymnasium as gym
import numpy as np
import torch

from sciprob.control.agent import HistorySAC
from sciprob.control.callbacks import BaseCallback
from sciprob.control.encoders import ENCODERS
from sciprob.control.sac import SACConfig
from sciprob.control.wrappers import PIDFeaturesVector
from sciprob.runtime import atomic_write_text, get_logger

EVAL_SEED = 1_000_000


class Policy(Protocol):
    """What :func:`evaluate` needs: ``reset(n)``, ``act(obs)``, ``observe(actions, rewards)``."""

    pid_features: bool
    env_kwargs: dict

    def reset(self, num_envs: int) -> None: ...  # noqa: D102

    def act(self, obs: np.ndarray) -> np.ndarray: ...  # noqa: D102

    def observe(self, actions: np.ndarray, rewards: np.ndarray) -> None: ...  # noqa: D102


class ZeroPolicy:
    """Do nothing: action 0 (no change of force, or zero force)."""

    pid_features = False
    env_kwargs: dict = {}

    def __init__(self, act_dim: int) -> None:
        self.act_dim = act_dim

    def reset(self, num_envs: int) -> None:
        """Start ``num_envs`` episodes."""
        self.n = num_envs

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Zeros of shape (n, act_dim)."""
        return np.zeros((len(obs), self.act_dim), np.float32)

    def observe(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Nothing to remember."""


class Agent:
    """A :class:`~sciprob.control.agent.HistorySAC` behind the :class:`Policy` protocol of :func:`evaluate`.

    Parameters
    ----------
    agent : HistorySAC
        The learner.
    pid_features : bool
        Whether its observations carry PID features (the ``"pid"`` method).
    deterministic : bool, default=True
        Act with the mean action (evaluation) or sample (exploration).
    """

    env_kwargs: dict = {}

    def __init__(self, agent: HistorySAC, pid_features: bool, deterministic: bool = True) -> None:
        self.agent, self.pid_features, self.deterministic = agent, pid_features, deterministic

    def reset(self, num_envs: int) -> None:
        """Clear the history of ``num_envs`` synchronised episodes."""
        self._state = None
        self._reward = None

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Append ``obs`` (n, obs_dim) to the history and return actions (n, act_dim)."""
        action, self._state = self.agent.predict(
            obs, self._state, deterministic=self.deterministic, reward=self._reward
        )
        return action

    def observe(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Record the last rewards (the actions are already in the history)."""
        self._reward = np.asarray(rewards, np.float32)


@dataclass
class EvalResult:
    """Returns and trajectories of :func:`evaluate`.

    Attributes
    ----------
    returns : ndarray of shape (episodes,)
    observations : ndarray of shape (episodes, steps + 1, obs_dim)
    actions : ndarray of shape (episodes, steps, act_dim)
    rewards : ndarray of shape (episodes, steps)
    """

    returns: np.ndarray
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray

    @property
    def mean(self) -> float:
        """Mean return."""
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        """Standard deviation of the returns over systems."""
        return float(self.returns.std())


def make_vector_env(
    env_id: str, num_envs: int, params: Any, pid_features: bool = False, **env_kwargs: Any
) -> gym.vector.VectorEnv:
    """Make the batched environment (``vector_entry_point``), optionally with PID features."""
    envs = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", params=params, **env_kwargs
    )
    return PIDFeaturesVector(envs) if pid_features else envs


def evaluate(
    policy: Policy, env_id: str, params: Any, episodes: int = 32, seed: int = EVAL_SEED, steps: int = 100
) -> EvalResult:
    """Run ``policy`` on ``episodes`` held-out systems of range ``params``.

    Parameters
    ----------
    policy : Policy
        E.g. ``Agent``, ``PIDController`` or ``ZeroPolicy``.
    env_id : str
        Registered id, e.g. ``"sciprob/MassSpringDamper-v0"``.
    params : str or dict
        Parameter range of the held-out systems.
    episodes : int, default=32
        Number of systems (one episode each).
    seed : int, default=EVAL_SEED
        System ``i`` is drawn with seed ``seed + i``: the same set for every policy.
    steps : int, default=100
        Episode length.

    Returns
    -------
    EvalResult
    """
    if episodes < 1:
        raise ValueError(f"`episodes` must be >= 1, got {episodes}")
    envs = make_vector_env(env_id, episodes, params, policy.pid_features, **policy.env_kwargs)
    obs, _ = envs.reset(seed=seed)
    policy.reset(episodes)
    all_obs, all_act, all_rew = [obs], [], []
    for _ in range(steps):
        action = policy.act(obs)
        obs, reward, _, _, _ = envs.step(action)
        policy.observe(action, reward)
        all_obs.append(obs)
        all_act.append(action)
        all_rew.append(reward)
    rewards = np.stack(all_rew, 1)
    return EvalResult(rewards.sum(1), np.stack(all_obs, 1), np.stack(all_act, 1), rewards)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    agent : Agent
        Deterministic policy of the final learner.
    history : list of dict
        One row per evaluation: ``step``, ``eval/<params>`` returns, losses.
    seconds : float
        Wall time of this call.
    """

    agent: Agent
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def _write_csv(path: Path, rows: list[dict[str, float]]) -> None:
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "step", k))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


class TrackingEvalCallback(BaseCallback):
    """Evaluate on held-out systems of named parameter ranges every ``eval_every`` transitions.

    Parameters
    ----------
    env_id : str
        Tracking environment.
    eval_params : mapping of str to params
        Named evaluation ranges.
    pid_features : bool
        Whether the agent reads PID features.
    eval_every : int
        Transitions between evaluations (0: only at the end).
    episodes : int
        Held-out systems per range.
    log_csv : path, default=None
        Rows as CSV after every evaluation.

    Attributes
    ----------
    history : list of dict
        ``step``, ``eval/<name>`` and the latest ``train/*`` losses per evaluation.
    """

    def __init__(
        self,
        env_id: str,
        eval_params: Mapping[str, Any],
        pid_features: bool,
        eval_every: int,
        episodes: int,
        log_csv: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.env_id, self.eval_params, self.pid = env_id, dict(eval_params), pid_features
        self.eval_every, self.episodes = eval_every, episodes
        self.log_csv = Path(log_csv) if log_csv else None
        self.history: list[dict[str, float]] = []
        self._next: int | None = None

    def _on_training_start(self) -> None:
        if self.eval_every:
            self._next = (self.agent.num_timesteps // self.eval_every + 1) * self.eval_every

    def evaluate_now(self) -> dict[str, float]:
        """Evaluate every range now and append a row."""
        policy = Agent(self.agent, self.pid)
        row = {"step": float(self.agent.num_timesteps)}
        row.update({k: v for k, v in self.agent.logger.items() if k.startswith("train/")})
        for name, params in self.eval_params.items():
            row[f"eval/{name}"] = evaluate(policy, self.env_id, params, self.episodes).mean
        self.history.append(row)
        get_logger("control.train").info(
            "step %d: %s", row["step"], {k: round(v, 3) for k, v in row.items() if k != "step"}
        )
        if self.log_csv is not None:
            _write_csv(self.log_csv, self.history)
        return row

    def _on_step(self) -> bool:
        if self._next is not None and self.agent.num_timesteps >= self._next:
            self.evaluate_now()
            self._next = (self.agent.num_timesteps // self.eval_every + 1) * self.eval_every
        return True

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1]["step"] < self.agent.num_timesteps:
            self.evaluate_now()


def train(
    env_id: str,
    encoder: str,
    steps: int,
    *,
    params: Any = "fixed",
    seed: int = 0,
    window: int | None = None,
    config: SACConfig | None = None,
    num_envs: int = 8,
    eval_every: int = 0,
    eval_params: Mapping[str, Any] | None = None,
    eval_episodes: int = 16,
    log_csv: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    on_nonfinite: Literal["raise", "warn"] = "raise",
) -> TrainResult:
    """Train :class:`~sciprob.control.agent.HistorySAC` on a tracking task (a thin wrapper).

    Parameters
    ----------
    env_id : str
        Registered tracking environment.
    encoder : str
        One of :data:`~sciprob.control.encoders.ENCODERS`; ``"pid"`` is the
        reference's PIDE: PID features appended to the observation by
        :class:`~sciprob.control.wrappers.PIDFeaturesVector`, then no history.
    steps : int
        Environment transitions (all systems together).
    params : str or dict, default="fixed"
        Training parameter range.
    seed : int, default=0
        Seed of the agent (networks, noise, sampler, first reset).
    window : int, default=None
        History length (see :func:`~sciprob.control.encoders.make_encoder`).
    config : SACConfig, default=None
        Default ``SACConfig()``, with ``batch_size=256`` for encoders without history.
    num_envs : int, default=8
        Systems collected in parallel (batched environment).
    eval_every : int, default=0
        Evaluate every this many transitions (0: only at the end).
    eval_params : mapping of str to params, default=None
        Named evaluation ranges, default ``{"train": params}``.
    eval_episodes : int, default=16
        Held-out systems per evaluation.
    log_csv : path, default=None
        Evaluation rows as CSV.
    device : str or torch.device, default="cpu"
    progress : bool, default=True
        Live bar on a terminal.
    checkpoint_path, checkpoint_every, resume, on_nonfinite
        The loop contract, passed to :meth:`HistorySAC.learn`.

    Returns
    -------
    TrainResult
    """
    if encoder not in ENCODERS:
        raise ValueError(f"`encoder` must be one of {list(ENCODERS)}, got {encoder!r}")
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"`num_envs` must be an integer >= 1, got {num_envs!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be an integer >= 1, got {steps!r}")
    start_time = time.perf_counter()
    pid = encoder == "pid"
    envs = make_vector_env(env_id, num_envs, params, pid)
    if config is None:
        free = pid or encoder == "none" or window == 1
        config = SACConfig(batch_size=256 if free else 32)
    agent = HistorySAC(envs, "none" if pid else encoder, config, seed, device, window=1 if pid else window)
    cb = TrackingEvalCallback(
        env_id, eval_params or {"train": params}, pid, eval_every, eval_episodes, log_csv
    )
    agent.learn(
        steps,
        callback=cb,
        progress_bar=progress,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
        resume=resume,
        on_nonfinite=on_nonfinite,
    )
    return TrainResult(Agent(agent, pid), cb.history, time.perf_counter() - start_time)
