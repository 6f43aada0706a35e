"""Train history-based SAC on the tracking environments and evaluate policies on held-out systems.

:func:`train` is the Stable-Baselines3-like entry point; :func:`evaluate` runs
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
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from sciprob.control.buffer import SequenceReplayBuffer
from sciprob.control.encoders import ENCODERS, make_encoder
from sciprob.control.sac import HistorySAC, SACConfig
from sciprob.control.wrappers import PIDFeaturesVector
from sciprob.runtime import ProgressBar, atomic_write_text, get_logger, load_checkpoint, save_checkpoint

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
    """A trained :class:`HistorySAC` acting online from its window of history.

    Parameters
    ----------
    sac : HistorySAC
        The learner.
    pid_features : bool
        Whether its observations carry PID features (the ``"pid"`` encoder).
    deterministic : bool, default=True
        Act with the mean action (evaluation) or sample (exploration).
    """

    env_kwargs: dict = {}

    def __init__(self, sac: HistorySAC, pid_features: bool, deterministic: bool = True) -> None:
        self.sac, self.pid_features, self.deterministic = sac, pid_features, deterministic
        self.window = sac.window

    def reset(self, num_envs: int) -> None:
        """Clear the history of ``num_envs`` synchronised episodes."""
        w, s = self.window, self.sac
        self._obs = np.zeros((num_envs, w, s.obs_dim), np.float32)
        self._pa = np.zeros((num_envs, w, s.act_dim), np.float32)
        self._pr = np.zeros((num_envs, w, 1), np.float32)
        self._count = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Append ``obs`` (n, obs_dim) to the history and return actions (n, act_dim)."""
        self._obs = np.roll(self._obs, -1, 1)
        self._obs[:, -1] = obs
        self._count = min(self._count + 1, self.window)
        k = self._count
        t = [torch.as_tensor(x[:, -k:]) for x in (self._obs, self._pa, self._pr)]
        return self.sac.act(*t, deterministic=self.deterministic).numpy()

    def observe(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Record the last actions and rewards as the next step's previous ones."""
        self._pa = np.roll(self._pa, -1, 1)
        self._pr = np.roll(self._pr, -1, 1)
        self._pa[:, -1] = actions
        self._pr[:, -1, 0] = rewards


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
    updates_per_step: float = 1.0,
    learning_starts: int = 1000,
    buffer_steps: int = 1_000_000,
    eval_every: int = 0,
    eval_params: Mapping[str, Any] | None = None,
    eval_episodes: int = 16,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    log_csv: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> TrainResult:
    """Train SAC with history encoder ``encoder`` on ``env_id``.

    Parameters
    ----------
    env_id : str
        Registered tracking environment.
    encoder : str
        One of ``"none"``, ``"pid"`` (the reference's PIDE: PID features appended
        to the observation by :class:`~sciprob.control.wrappers.PIDFeaturesVector`,
        then no history), ``"gpide"``, ``"gpide-locomotion"``, ``"gru"``, ``"transformer"``.
    steps : int
        Environment steps (all systems together), rounded up to whole rounds of
        ``num_envs`` episodes.
    params : str or dict, default="fixed"
        Training parameter range.
    seed : int, default=0
        Seeds torch, the buffer sampler and the training systems.
    window : int, default=None
        History length (see :func:`~sciprob.control.encoders.make_encoder`).
    config : SACConfig, default=None
        Hyper-parameters; default ``SACConfig()``, with ``batch_size=256`` for
        encoders without history.
    num_envs : int, default=8
        Systems collected in parallel (batched environment).
    updates_per_step : float, default=1.0
        Gradient steps per environment step (1 in [1]_).
    learning_starts : int, default=1000
        Random-action steps before learning.
    buffer_steps : int, default=1_000_000
        Replay capacity in transitions.
    eval_every : int, default=0
        Evaluate every this many environment steps (0: only at the end).
    eval_params : mapping of str to params, default=None
        Named evaluation ranges, default ``{"train": params}``.
    eval_episodes : int, default=16
        Held-out systems per evaluation.
    checkpoint : path, default=None
        Checkpoint file written after every evaluation.
    resume : bool, default=False
        Continue from ``checkpoint`` if it exists.
    log_csv : path, default=None
        Evaluation rows as CSV (``step``, ``eval/<name>``, ``train/*`` losses).
    device : str or torch.device, default="cpu"
    progress : bool, default=None
        Live bar (default: when stderr is a terminal; log lines otherwise).

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        Unknown encoder, non-positive ``steps``/``num_envs``, ``window < 1``.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"`encoder` must be one of {list(ENCODERS)}, got {encoder!r}")
    if steps < 1 or num_envs < 1 or updates_per_step < 0:
        raise ValueError(
            f"`steps`, `num_envs` must be >= 1 and `updates_per_step` >= 0, got "
            f"{steps}, {num_envs}, {updates_per_step}"
        )
    start_time = time.perf_counter()
    pid = encoder == "pid"
    enc_name = "none" if pid else encoder
    envs = make_vector_env(env_id, num_envs, params, pid)
    obs_dim = envs.single_observation_space.shape[0]
    act_dim = envs.single_action_space.shape[0]
    probe = make_encoder(enc_name, obs_dim, act_dim, window)  # validates window before any work
    if config is None:
        config = SACConfig(batch_size=256 if probe.window == 1 else 32)
    device = torch.device(device)
    torch.manual_seed(seed)
    sac = HistorySAC(
        obs_dim, act_dim, lambda: make_encoder(enc_name, obs_dim, act_dim, probe.window), config
    ).to(device)
    episode_steps = envs.unwrapped.max_episode_steps if hasattr(envs.unwrapped, "max_episode_steps") else 100
    buffer = SequenceReplayBuffer(buffer_steps, episode_steps, obs_dim, act_dim)
    rng = np.random.default_rng(seed)
    explorer = Agent(sac, pid, deterministic=False)
    eval_params = dict(eval_params or {"train": params})
    history: list[dict[str, float]] = []
    done_steps, updates_owed = 0, 0.0
    ckpt = Path(checkpoint) if checkpoint else None
    first_seed: int | None = seed
    if resume and ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt)
        sac.load_training_state(state["sac"])
        buffer.load_state_dict(state["buffer"])
        rng.bit_generator.state = state["sampler"]
        for r, s in zip(envs.unwrapped._rngs, state["env_rngs"], strict=True):
            r.bit_generator.state = s
        done_steps, updates_owed, history = state["steps"], state["updates_owed"], state["history"]
        first_seed = None
    log = get_logger("control.train")
    next_eval = (done_steps // eval_every + 1) * eval_every if eval_every else None
    losses: dict[str, float] = {}
    with ProgressBar(steps, f"SAC[{encoder}] {env_id.split('/')[-1]}", enabled=progress) as bar:
        bar.update(min(done_steps, steps))
        while done_steps < steps:
            obs, _ = envs.reset(seed=first_seed)
            first_seed = None
            explorer.reset(num_envs)
            ep_obs, ep_act, ep_rew = [obs], [], []
            for _ in range(episode_steps):
                if buffer.n_steps < learning_starts:  # the buffer only grows between rounds
                    action = rng.uniform(-1, 1, (num_envs, act_dim)).astype(np.float32)
                else:
                    action = explorer.act(obs)
                obs, reward, _, _, _ = envs.step(action)
                explorer.observe(action, reward)
                ep_obs.append(obs)
                ep_act.append(action)
                ep_rew.append(reward)
                if buffer.n_steps >= learning_starts:
                    updates_owed += num_envs * updates_per_step
                    while updates_owed >= 1:
                        batch = buffer.sample(config.batch_size, probe.window, rng, device)
                        losses = sac.update(batch)
                        updates_owed -= 1
            buffer.add_episodes(np.stack(ep_obs, 1), np.stack(ep_act, 1), np.stack(ep_rew, 1))
            round_steps = num_envs * episode_steps
            done_steps += round_steps
            bar.update(round_steps, ret=float(np.stack(ep_rew, 1).sum(1).mean()))
            if (next_eval is not None and done_steps >= next_eval) or done_steps >= steps:
                agent = Agent(sac, pid)
                row = {"step": float(done_steps), **losses}
                for name, p in eval_params.items():
                    row[f"eval/{name}"] = evaluate(agent, env_id, p, eval_episodes).mean
                history.append(row)
                log.info("step %d: %s", done_steps, {k: round(v, 3) for k, v in row.items() if k != "step"})
                if log_csv:
                    _write_csv(Path(log_csv), history)
                if ckpt is not None:
                    save_checkpoint(
                        ckpt,
                        {
                            "sac": sac.training_state(),
                            "buffer": buffer.state_dict(),
                            "sampler": rng.bit_generator.state,
                            "env_rngs": [r.bit_generator.state for r in envs.unwrapped._rngs],
                            "steps": done_steps,
                            "updates_owed": updates_owed,
                            "history": history,
                        },
                    )
                if next_eval is not None:
                    next_eval = (done_steps // eval_every + 1) * eval_every
    return TrainResult(Agent(sac, pid), history, time.perf_counter() - start_time)
