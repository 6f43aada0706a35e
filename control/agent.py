r"""``HistorySAC``: a Stable-Baselines3-style soft actor-critic agent that reads histories.

SB3's SAC has no recurrent or history policy; this agent keeps SB3's habits
(``learn``/``predict``/``save``/``load``, callbacks, ``predict`` with a
``state`` as in SB3-contrib's ``RecurrentPPO``) and adds a history encoder
(:mod:`sciprob.control.encoders`) in front of the actor and of each critic.

How the loop handles Gymnasium 1.x vector environments
------------------------------------------------------
Every transition goes into an episode of the replay buffer; a window sampled
for an update never crosses an episode boundary.

=================  ===================================================================
autoreset mode     what the loop does
=================  ===================================================================
``NEXT_STEP``      the step after ``terminated | truncated`` returns the reset
                   observation (its action is ignored, reward 0): that step is not a
                   transition; it starts the sub-environment's next episode.
``SAME_STEP``      the true last observation is ``infos["final_obs"][i]``; the
                   returned observation starts the next episode.
=================  ===================================================================

``terminated`` stores a terminal flag (no bootstrap); ``truncated`` stores none,
so the target bootstraps from the last observation. Episodes longer than the
buffer's ``max_episode_steps`` are cut into segments that bootstrap at the cut
(the next segment starts with an empty history).

A loop checkpoint (``learn(checkpoint_path=...)``) holds the networks, optimisers,
buffer and random states, and the environment with its episodes in flight when
the environment pickles (the bundled tracking tasks do): a resumed run is then
the uninterrupted one. Environments that do not pickle (MuJoCo) restart their
episodes on resume.

Actions are learnt in ``[-1, 1]`` and rescaled to the action space's bounds.

References
----------
.. [1] A. Raffin et al., "Stable-Baselines3", JMLR 22, 2021; ``sac/sac.py``,
   ``common/off_policy_algorithm.py``.
.. [2] I. Char and J. Schneider, NeurIPS 2023; ``sequential_sac.py`` of github.com/IanChar/GPIDE.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector.vector_env import AutoresetMode

from sciprob.control.buffer import SequenceReplayBuffer
from sciprob.control.callbacks import BaseCallback, CallbackList
from sciprob.control.encoders import ENCODERS, HistoryEncoder, make_encoder
from sciprob.control.sac import SACConfig, SACNetworks
from sciprob.runtime import (
    ProgressBar,
    check_finite,
    isolated_rng,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
)
from sciprob.runtime.numerics import check_policy

DEFAULT_EPISODE_STEPS = 1000


class HistoryState(NamedTuple):
    """The history :meth:`HistorySAC.predict` carries between calls (one row per environment).

    Attributes
    ----------
    obs : ndarray of shape (n_envs, window, obs_dim)
        Last observations, newest last.
    prev_actions : ndarray of shape (n_envs, window, act_dim)
        Action taken before each of them (in ``[-1, 1]``; zero at an episode's start).
    prev_rewards : ndarray of shape (n_envs, window, 1)
        Reward received before each of them.
    count : ndarray of shape (n_envs,)
        Valid steps in the window (at most ``window``).
    """

    obs: np.ndarray
    prev_actions: np.ndarray
    prev_rewards: np.ndarray
    count: np.ndarray


def _empty_state(n: int, window: int, obs_dim: int, act_dim: int) -> HistoryState:
    return HistoryState(
        np.zeros((n, window, obs_dim), np.float32),
        np.zeros((n, window, act_dim), np.float32),
        np.zeros((n, window, 1), np.float32),
        np.zeros(n, np.int64),
    )


def _push_obs(state: HistoryState, rows: np.ndarray, obs: np.ndarray, start: np.ndarray) -> None:
    """Append ``obs`` to the windows of ``rows``; rows with ``start`` begin a new episode."""
    for name in ("obs", "prev_actions", "prev_rewards"):
        arr = getattr(state, name)
        arr[rows] = np.roll(arr[rows], -1, 1)
    state.obs[rows, -1] = obs
    fresh = rows[start]
    state.prev_actions[fresh] = 0.0
    state.prev_rewards[fresh] = 0.0
    state.obs[fresh, :-1] = 0.0
    state.count[fresh] = 0
    window = state.obs.shape[1]
    state.count[rows] = np.minimum(state.count[rows] + 1, window)


def _record(state: HistoryState, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
    """Store ``actions``/``rewards`` as the previous ones of the next observation of ``rows``.

    They sit one slot past the newest observation and move under the next
    observation when :func:`_push_obs` rolls the window.
    """
    state.prev_actions[rows, 0] = actions
    state.prev_rewards[rows, 0, 0] = rewards


def _check_box(space: Any, name: str) -> gym.spaces.Box:
    if name == "action":
        fix = (
            "SAC learns continuous actions: use an environment with a Box action space, or a "
            "gymnasium.ActionWrapper that maps a Box onto the environment's actions"
        )
    else:
        fix = "wrap the environment in gymnasium.wrappers.FlattenObservation to get one"
    if not isinstance(space, gym.spaces.Box):
        raise TypeError(f"`HistorySAC` requires a Box {name} space, got {space!r}; {fix}")
    if len(space.shape) != 1:
        raise ValueError(
            f"`HistorySAC` requires a flat (1-D) Box {name} space, got shape {space.shape}; {fix}"
        )
    return space


def make_vec_env(env: Any, num_envs: int = 1, env_kwargs: dict | None = None) -> gym.vector.VectorEnv:
    """Return a vector environment for an id, a ``gymnasium.Env`` or a ``VectorEnv``.

    Parameters
    ----------
    env : str or gymnasium.Env or gymnasium.vector.VectorEnv
        An id uses its own ``vector_entry_point`` when it has one, else
        ``SyncVectorEnv`` of ``num_envs`` copies; an ``Env`` is wrapped in a
        one-copy ``SyncVectorEnv``; a ``VectorEnv`` is returned as it is.
    num_envs : int, default=1
        Copies for an id.
    env_kwargs : dict, default=None
        Keyword arguments of ``gymnasium.make`` for an id.

    Raises
    ------
    TypeError
        ``env`` is none of the three.
    """
    if isinstance(env, gym.vector.VectorEnv):
        return env
    if isinstance(env, gym.Env):
        return gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.SAME_STEP)
    if isinstance(env, str):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"`num_envs` must be an integer >= 1, got {num_envs!r}")
        spec = gym.spec(env)
        mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
        return gym.make_vec(env, num_envs=num_envs, vectorization_mode=mode, **(env_kwargs or {}))
    raise TypeError(
        f"`env` must be an environment id, a gymnasium.Env or a gymnasium.vector.VectorEnv, got {env!r}"
    )


def _episode_steps(envs: gym.vector.VectorEnv, env: Any) -> int:
    for candidate in (getattr(envs, "spec", None), getattr(env, "spec", None)):
        steps = getattr(candidate, "max_episode_steps", None)
        if steps:
            return int(steps)
    if isinstance(env, str):
        steps = gym.spec(env).max_episode_steps
        if steps:
            return int(steps)
    for obj in (getattr(envs, "unwrapped", envs), getattr(env, "unwrapped", None)):
        for attr in ("max_episode_steps", "episode_steps"):
            steps = getattr(obj, attr, None)
            if isinstance(steps, int) and steps > 0:
                return steps
    return DEFAULT_EPISODE_STEPS


class HistorySAC:
    """Soft actor-critic whose actor and twin critics read a window of history.

    Parameters
    ----------
    env : str or gymnasium.Env or gymnasium.vector.VectorEnv
        Training environment (see :func:`make_vec_env`); any flat Box observation
        space and bounded Box action space.
    encoder : str or HistoryEncoder, default="gpide"
        A name of :data:`~sciprob.control.encoders.ENCODERS` (``"none"`` is plain
        SAC), or an encoder instance: the agent deep-copies it for the actor and
        each critic (so ``obs_dim``/``act_dim`` must match the environment).
    config : SACConfig, default=SACConfig()
        Hyper-parameters.
    seed : int, default=0
        Seeds the networks, the sampling noise, the replay sampler, the random
        warm-up actions and the environment's first reset.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when available.
    window : int, default=None
        History length (default: the encoder's default; 1 for ``"none"``).
    num_envs : int, default=1
        Copies when ``env`` is an id.
    env_kwargs : dict, default=None
        ``gymnasium.make`` arguments when ``env`` is an id.
    max_episode_steps : int, default=None
        Longest episode stored whole (default: the environment's time limit, else 1000).

    Attributes
    ----------
    policy : SACNetworks
        Actor, critics, target critics and optimisers.
    num_timesteps : int
        Environment transitions collected so far (all copies together).
    replay_buffer : SequenceReplayBuffer
    logger : dict of str to float
        The last losses (``train/*``) and episode statistics (``rollout/*``).

    Examples
    --------
    >>> agent = HistorySAC("Pendulum-v1", encoder="none", seed=0)  # doctest: +SKIP
    >>> agent.learn(5_000).evaluate("Pendulum-v1", episodes=5, seed=100)  # doctest: +SKIP
    """

    def __init__(
        self,
        env: Any,
        encoder: str | HistoryEncoder = "gpide",
        config: SACConfig | None = None,
        seed: int = 0,
        device: str | torch.device = "auto",
        *,
        window: int | None = None,
        num_envs: int = 1,
        env_kwargs: dict | None = None,
        max_episode_steps: int | None = None,
    ) -> None:
        config = SACConfig() if config is None else config
        if not isinstance(config, SACConfig):
            raise TypeError(f"`config` must be a SACConfig, got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**64:
            raise ValueError(f"`seed` must be an integer in [0, 2**64), got {seed!r}")
        if isinstance(encoder, str) and encoder not in ENCODERS:
            raise ValueError(
                f"`encoder` must be one of {list(ENCODERS)} or a HistoryEncoder, got {encoder!r}"
            )
        if not isinstance(encoder, str | HistoryEncoder):
            raise TypeError(f"`encoder` must be a name or a HistoryEncoder, got {type(encoder).__name__}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"`max_episode_steps` must be >= 1, got {max_episode_steps}")
        self.env_id = env if isinstance(env, str) else None
        self.env_kwargs = dict(env_kwargs or {})
        self.env = make_vec_env(env, num_envs, self.env_kwargs)
        obs_space = _check_box(self.env.single_observation_space, "observation")
        act_space = _check_box(self.env.single_action_space, "action")
        if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
            raise ValueError(
                f"`HistorySAC` requires a bounded action space, got low={act_space.low}, "
                f"high={act_space.high}; "
                "wrap it with gymnasium.wrappers.ClipAction or RescaleAction"
            )
        self.observation_space, self.action_space = obs_space, act_space
        self.obs_dim, self.act_dim = int(obs_space.shape[0]), int(act_space.shape[0])
        self.encoder = encoder
        self.config, self.seed = config, int(seed)
        self.device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
        if isinstance(encoder, HistoryEncoder):
            if (encoder.obs_dim, encoder.act_dim) != (self.obs_dim, self.act_dim):
                raise ValueError(
                    f"`encoder` was built for obs_dim={encoder.obs_dim}, act_dim={encoder.act_dim}; the "
                    f"environment has {self.obs_dim}, {self.act_dim}"
                )
            self.window = encoder.window if window is None else window
        else:
            pid_spec = getattr(self.env.unwrapped, "pid_spec", None) if encoder == "pid" else None
            with isolated_rng(0):  # a probe for the window check; its weights are thrown away
                probe = make_encoder(encoder, self.obs_dim, self.act_dim, window, pid_spec)
            self.window = probe.window
        self.max_episode_steps = max_episode_steps or _episode_steps(self.env, env)
        self._build()
        self.num_timesteps = 0
        self._updates_owed = 0.0
        self._n_updates = 0
        self._needs_reset = True
        self.logger: dict[str, float] = {}
        self._episode_returns: list[float] = []

    # -- construction -------------------------------------------------------------------------
    def _make_encoder(self) -> HistoryEncoder:
        import copy

        if isinstance(self.encoder, HistoryEncoder):
            return copy.deepcopy(self.encoder)
        pid_spec = getattr(self.env.unwrapped, "pid_spec", None) if self.encoder == "pid" else None
        return make_encoder(self.encoder, self.obs_dim, self.act_dim, self.window, pid_spec)

    def _build(self) -> None:
        seeds = np.random.SeedSequence(self.seed).spawn(3)
        with isolated_rng(int(seeds[0].generate_state(1)[0])):
            self.policy = SACNetworks(self.obs_dim, self.act_dim, self._make_encoder, self.config).to(
                self.device
            )
        self._torch_gen = torch.Generator(device=self.device)
        self._torch_gen.manual_seed(int(seeds[1].generate_state(1)[0]))
        self._rng = np.random.default_rng(seeds[2])
        batch = self.config.batch_size
        self.replay_buffer = SequenceReplayBuffer(
            self.config.buffer_size, self.max_episode_steps, self.obs_dim, self.act_dim
        )
        self._batch_size = batch
        low, high = self.action_space.low, self.action_space.high
        self._act_scale = ((high - low) / 2).astype(np.float32)
        self._act_bias = ((high + low) / 2).astype(np.float32)

    def _to_env_action(self, action: np.ndarray) -> np.ndarray:
        return (action * self._act_scale + self._act_bias).astype(self.action_space.dtype)

    # -- acting -------------------------------------------------------------------------------
    def _act(self, state: HistoryState, rows: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions in [-1, 1] for ``rows`` of ``state`` (grouped by how much history each has)."""
        out = np.zeros((len(rows), self.act_dim), np.float32)
        counts = state.count[rows]
        for k in np.unique(counts):
            sel = np.flatnonzero(counts == k)
            r = rows[sel]
            k = max(int(k), 1)
            tensors = [
                torch.as_tensor(x[r, -k:], device=self.device)
                for x in (state.obs, state.prev_actions, state.prev_rewards)
            ]
            act = self.policy.act(*tensors, deterministic=deterministic, generator=self._torch_gen)
            out[sel] = act.cpu().numpy()
        return out

    def predict(
        self,
        observation: np.ndarray,
        state: HistoryState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
        *,
        reward: np.ndarray | float | None = None,
    ) -> tuple[np.ndarray, HistoryState]:
        """Act from an observation and the history carried in ``state`` (SB3's recurrent convention).

        Parameters
        ----------
        observation : ndarray of shape (obs_dim,) or (n_envs, obs_dim)
        state : HistoryState, default=None
            What the previous call returned (``None``: every row starts an episode).
        episode_start : ndarray of bool of shape (n_envs,), default=None
            Rows whose ``observation`` is the first of an episode.
        deterministic : bool, default=True
            The mean action (evaluation) or a sample.
        reward : float or ndarray of shape (n_envs,), default=None
            The reward received after the previous action; required when the
            encoder reads rewards (GRU, transformer, GPIDE with a reward stream)
            and a row continues an episode.

        Returns
        -------
        action : ndarray of shape (act_dim,) or (n_envs, act_dim)
            In the action space's bounds.
        state : HistoryState
            Pass it to the next call.
        """
        obs = np.asarray(observation, np.float32)
        single = obs.ndim == 1
        obs = obs.reshape(1, -1) if single else obs
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"`observation` must have shape ({self.obs_dim},) or (n_envs, {self.obs_dim}), got "
                f"{np.shape(observation)}"
            )
        n = len(obs)
        if state is None:
            state = _empty_state(n, self.window, self.obs_dim, self.act_dim)
            start = np.ones(n, bool)
        else:
            state = HistoryState(*(np.array(x, copy=True) for x in state))
            if len(state.count) != n:
                raise ValueError(f"`state` holds {len(state.count)} environments, `observation` {n}")
            start = state.count == 0
        if episode_start is not None:
            start = start | np.asarray(episode_start, bool).reshape(n)
        if not start.all():
            uses_reward = any(getattr(e, "uses_reward", True) for e in (self.policy.actor.encoder,))
            if reward is None and uses_reward and self.window > 1:
                raise ValueError(
                    "`reward` is required: this encoder reads previous rewards; pass the reward of the "
                    "last step (or episode_start=True for a new episode)"
                )
            if reward is not None:
                r = np.broadcast_to(np.asarray(reward, np.float32), (n,))
                state.prev_rewards[~start, 0, 0] = r[~start]
        rows = np.arange(n)
        _push_obs(state, rows, obs, start)
        action = self._act(state, rows, deterministic)
        _record(state, rows, action, np.zeros(n, np.float32))
        env_action = self._to_env_action(action)
        return (env_action[0] if single else env_action), state

    # -- learning -----------------------------------------------------------------------------
    def learn(
        self,
        total_timesteps: int,
        callback: BaseCallback | Sequence[BaseCallback] | None = None,
        progress_bar: bool = True,
        *,
        reset_num_timesteps: bool = False,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 0,
        resume: bool = False,
        on_nonfinite: Literal["raise", "warn"] = "raise",
    ) -> HistorySAC:
        """Collect ``total_timesteps`` transitions and train on them (SB3's ``learn``).

        Parameters
        ----------
        total_timesteps : int
            Transitions to collect in this call (all copies together, rounded up
            to a whole vector step).
        callback : BaseCallback or list of them, default=None
            Hooks; see :mod:`sciprob.control.callbacks`.
        progress_bar : bool, default=True
            Live bar on a terminal (log lines otherwise).
        reset_num_timesteps : bool, default=False
            Start the step counter (and the warm-up) again.
        checkpoint_path : path, default=None
            Loop-contract checkpoint (agent, buffer, random states).
        checkpoint_every : int, default=0
            Transitions between checkpoints (0: only at the end when a path is given).
        resume : bool, default=False
            Continue from ``checkpoint_path`` if it exists (the call then runs to
            the total of the interrupted call).
        on_nonfinite : {"raise", "warn"}, default="raise"
            What a NaN or infinite loss does.

        Returns
        -------
        HistorySAC
            ``self``.
        """
        if isinstance(total_timesteps, bool) or not isinstance(total_timesteps, int | np.integer):
            raise TypeError(f"`total_timesteps` must be an integer, got {total_timesteps!r}")
        if total_timesteps < 1:
            raise ValueError(f"`total_timesteps` must be >= 1, got {total_timesteps}")
        if checkpoint_every < 0:
            raise ValueError(f"`checkpoint_every` must be >= 0, got {checkpoint_every}")
        check_policy(on_nonfinite)
        ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
        if reset_num_timesteps:
            self.num_timesteps = 0
        target = self.num_timesteps + int(total_timesteps)
        if resume and ckpt is not None and ckpt.exists():
            state = load_checkpoint(ckpt, map_location=self.device, restore_rng=False)
            self._load_state(state["agent"])
            self._restore_loop(state.get("loop"))
            target = state["target"]
        callbacks = CallbackList(callback)
        callbacks.init_callback(self)
        cfg = self.config
        envs, n = self.env, self.env.num_envs
        mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        mode = AutoresetMode(mode) if isinstance(mode, str) else mode
        if mode == AutoresetMode.DISABLED:
            raise NotImplementedError("`env` uses AutoresetMode.DISABLED; use NEXT_STEP or SAME_STEP")
        if self._needs_reset:
            obs, _ = envs.reset(seed=self.seed)
            self._start_episodes(np.asarray(obs, np.float32))
            self._needs_reset = False
        next_ckpt = self.num_timesteps + checkpoint_every if checkpoint_every else None
        name = self.encoder if isinstance(self.encoder, str) else type(self.encoder).__name__
        callbacks.on_training_start()
        with ProgressBar(
            target - self.num_timesteps, f"HistorySAC[{name}]", enabled=None if progress_bar else False
        ) as bar:
            while self.num_timesteps < target:
                if self.num_timesteps < cfg.learning_starts:
                    action = self._rng.uniform(-1, 1, (n, self.act_dim)).astype(np.float32)
                else:
                    action = self._act(self._state, np.arange(n), deterministic=False)
                obs, reward, term, trunc, info = envs.step(self._to_env_action(action))
                added = self._store(np.asarray(obs, np.float32), action, reward, term, trunc, info, mode)
                self.num_timesteps += added
                if added:
                    bar.update(added, **{k: v for k, v in self.logger.items() if k == "rollout/ep_rew_mean"})
                if self.num_timesteps >= cfg.learning_starts and self.replay_buffer.n_episodes:
                    self._updates_owed += added * cfg.gradient_steps
                    while self._updates_owed >= 1:
                        losses = self.policy.update(
                            self.replay_buffer.sample(self._batch_size, self.window, self._rng, self.device),
                            self._torch_gen,
                        )
                        self._updates_owed -= 1
                        self._n_updates += 1
                        self._log_losses(losses, on_nonfinite)  # a NaN loss stops the run at once
                if not callbacks.on_step():
                    break
                if next_ckpt is not None and self.num_timesteps >= next_ckpt and ckpt is not None:
                    self._checkpoint(ckpt, target)
                    next_ckpt = self.num_timesteps + checkpoint_every
        if ckpt is not None:
            self._checkpoint(ckpt, target)
        callbacks.on_training_end()
        return self

    def _log_losses(self, losses: dict[str, torch.Tensor], on_nonfinite: str) -> None:
        for key, value in losses.items():
            self.logger[key] = check_finite(
                value, step=self._n_updates, policy=on_nonfinite, where=f"HistorySAC {key}"
            )

    def _start_episodes(self, obs: np.ndarray) -> None:
        n = len(obs)
        self._state = _empty_state(n, self.window, self.obs_dim, self.act_dim)
        _push_obs(self._state, np.arange(n), obs, np.ones(n, bool))
        self._ep = [
            {"obs": [obs[i]], "act": [], "rew": [], "term": False, "reset_next": False} for i in range(n)
        ]

    def _store(self, obs, action, reward, term, trunc, info, mode) -> int:
        """Put one vector step into the episodes; return how many real transitions it held."""
        n = len(obs)
        added = 0
        reward = np.asarray(reward, np.float64)
        done = np.logical_or(term, trunc)
        final = info.get("final_obs") if mode == AutoresetMode.SAME_STEP else None
        push_rows, push_obs, push_start = [], [], []
        for i in range(n):
            ep = self._ep[i]
            if ep["reset_next"]:  # NEXT_STEP: this step was the reset of sub-env i
                self._ep[i] = {"obs": [obs[i]], "act": [], "rew": [], "term": False, "reset_next": False}
                push_rows.append(i), push_obs.append(obs[i]), push_start.append(True)
                continue
            added += 1
            real_next = np.asarray(final[i], np.float32) if (done[i] and final is not None) else obs[i]
            ep["obs"].append(real_next)
            ep["act"].append(action[i])
            ep["rew"].append(float(reward[i]))
            ep["term"] = bool(term[i])
            full = len(ep["act"]) >= self.max_episode_steps
            if done[i] or full:
                self._flush(i)
                self._episode_returns.append(float(sum(ep["rew"]))) if done[i] else None
                self._episode_returns = self._episode_returns[-100:]
                if self._episode_returns:
                    self.logger["rollout/ep_rew_mean"] = float(np.mean(self._episode_returns))
                if done[i] and mode == AutoresetMode.NEXT_STEP:
                    self._ep[i] = {"obs": [], "act": [], "rew": [], "term": False, "reset_next": True}
                else:
                    start_obs = obs[i] if done[i] else real_next
                    self._ep[i] = {
                        "obs": [start_obs],
                        "act": [],
                        "rew": [],
                        "term": False,
                        "reset_next": False,
                    }
                    push_rows.append(i), push_obs.append(start_obs), push_start.append(True)
            else:
                _record(self._state, np.array([i]), action[i : i + 1], reward[i : i + 1])
                push_rows.append(i), push_obs.append(real_next), push_start.append(False)
        if push_rows:
            _push_obs(self._state, np.array(push_rows), np.stack(push_obs), np.array(push_start))
        return added

    def _flush(self, i: int) -> None:
        ep = self._ep[i]
        steps = len(ep["act"])
        terminals = np.zeros((1, steps), np.float32)
        terminals[0, -1] = float(ep["term"])
        self.replay_buffer.add_episodes(
            np.stack(ep["obs"])[None], np.stack(ep["act"])[None], np.asarray(ep["rew"])[None], terminals
        )

    # -- evaluation ---------------------------------------------------------------------------
    def evaluate(
        self, env: Any = None, episodes: int = 10, seed: int = 0, deterministic: bool = True
    ) -> tuple[float, float]:
        """Mean and standard deviation of the return over ``episodes`` episodes.

        Parameters
        ----------
        env : str or gymnasium.Env or gymnasium.vector.VectorEnv, default=None
            Default: the training id (a fresh environment). An id runs one copy per
            episode, reset with ``seed`` (copy ``i`` gets ``seed + i``).
        episodes : int, default=10
        seed : int, default=0
        deterministic : bool, default=True

        Returns
        -------
        mean, std : float
        """
        returns = self.episode_returns(env, episodes, seed, deterministic)
        return float(returns.mean()), float(returns.std())

    def episode_returns(
        self, env: Any = None, episodes: int = 10, seed: int = 0, deterministic: bool = True
    ) -> np.ndarray:
        """Return the returns of ``episodes`` evaluation episodes, shape (episodes,); see :meth:`evaluate`."""
        if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
            raise ValueError(f"`episodes` must be an integer >= 1, got {episodes!r}")
        if env is None:
            if self.env_id is None:
                raise ValueError("`env` is required: the agent was not built from an environment id")
            env = self.env_id
        envs = make_vec_env(env, episodes, self.env_kwargs if env == self.env_id else None)
        mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        obs, _ = envs.reset(seed=seed)
        n = envs.num_envs
        state = _empty_state(n, self.window, self.obs_dim, self.act_dim)
        rows = np.arange(n)
        _push_obs(state, rows, np.asarray(obs, np.float32), np.ones(n, bool))
        # each copy contributes its first `quota` episodes, so that short episodes are not favoured
        quota = -(-episodes // n)
        found: list[list[float]] = [[] for _ in range(n)]
        running = np.zeros(n)
        skip = np.zeros(n, bool)
        while min(len(f) for f in found) < quota:
            action = self._act(state, rows, deterministic)
            obs, reward, term, trunc, _ = envs.step(self._to_env_action(action))
            obs = np.asarray(obs, np.float32)
            reward = np.asarray(reward, np.float64)
            done = np.logical_or(term, trunc) & ~skip
            running += np.where(skip, 0.0, reward)
            for i in np.flatnonzero(done):
                found[i].append(float(running[i]))
                running[i] = 0.0
            _record(state, rows, action, reward.astype(np.float32))
            start = skip | (done & (mode == AutoresetMode.SAME_STEP))
            _push_obs(state, rows, obs, start)
            skip = done if mode == AutoresetMode.NEXT_STEP else np.zeros(n, bool)
        returns = [r for k in range(quota) for f in found for r in f[k : k + 1]][:episodes]
        if not isinstance(env, gym.vector.VectorEnv):
            envs.close()
        return np.asarray(returns)

    # -- persistence --------------------------------------------------------------------------
    def _state_dict(self, include_buffer: bool = True) -> dict[str, Any]:
        state = {
            "config": dataclasses.asdict(self.config),
            "encoder": self.encoder if isinstance(self.encoder, str) else self._make_encoder().cpu(),
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "window": self.window,
            "seed": self.seed,
            "max_episode_steps": self.max_episode_steps,
            "spaces": (self.observation_space, self.action_space),
            "policy": self.policy.training_state(),
            "num_timesteps": self.num_timesteps,
            "updates_owed": self._updates_owed,
            "n_updates": self._n_updates,
            "rng": self._rng.bit_generator.state,
            "torch_gen": self._torch_gen.get_state(),
            "episode_returns": list(self._episode_returns),
            "logger": dict(self.logger),
        }
        if include_buffer:
            state["buffer"] = self.replay_buffer.state_dict()
        return state

    def _loop_state(self) -> dict[str, Any] | None:
        """Return the environment and the episodes in flight if the environment pickles, else ``None``."""
        import pickle

        if self._needs_reset:
            return None
        try:
            env_bytes = pickle.dumps(self.env)
        except Exception:  # MuJoCo and other C-backed environments do not pickle: restart episodes
            return None
        return {"env": env_bytes, "episodes": self._ep, "history": tuple(self._state)}

    def _restore_loop(self, loop: dict[str, Any] | None) -> None:
        import pickle

        if loop is None:
            return
        env = pickle.loads(loop["env"])
        if env.single_observation_space != self.env.single_observation_space:
            return
        self.env = env
        self._ep = loop["episodes"]
        self._state = HistoryState(*loop["history"])
        self._needs_reset = False

    def _load_state(self, state: dict[str, Any]) -> None:
        self.policy.load_training_state(state["policy"])
        self.num_timesteps = int(state["num_timesteps"])
        self._updates_owed = float(state["updates_owed"])
        self._n_updates = int(state["n_updates"])
        self._rng.bit_generator.state = state["rng"]
        self._torch_gen.set_state(state["torch_gen"].cpu())
        self._episode_returns = list(state.get("episode_returns", []))
        self.logger = dict(state.get("logger", {}))
        if "buffer" in state:
            self.replay_buffer.load_state_dict(state["buffer"])
        self._needs_reset = True

    def _checkpoint(self, path: Path, target: int) -> None:
        state = {"agent": self._state_dict(), "target": target, "loop": self._loop_state()}
        save_checkpoint(path, state, rng=False)

    def save(self, path: str | os.PathLike, include_buffer: bool = True) -> Path:
        """Write the agent (networks, optimisers, counters, random states, replay buffer) atomically.

        Parameters
        ----------
        path : str or PathLike
            File to write (conventionally ``*.pt``).
        include_buffer : bool, default=True
            Also store the filled part of the replay buffer, so that ``learn``
            after :meth:`load` continues the same run.
        """
        return save_checkpoint(path, self._state_dict(include_buffer), rng=False)

    @classmethod
    def load(
        cls, path: str | os.PathLike, env: Any = None, device: str | torch.device = "auto"
    ) -> HistorySAC:
        """Rebuild an agent written by :meth:`save`.

        Parameters
        ----------
        path : str or PathLike
        env : str or gymnasium.Env or gymnasium.vector.VectorEnv, default=None
            Environment to continue on (default: the saved id); its spaces must
            match the saved ones.
        device : str or torch.device, default="auto"
        """
        state = load_checkpoint(path, map_location="cpu", restore_rng=False)
        if state is None:
            raise FileNotFoundError(f"`path` {str(path)!r} does not exist")
        if "policy" not in state or "config" not in state:
            raise ValueError(f"`path` {str(path)!r} is not a HistorySAC file")
        env = state["env_id"] if env is None else env
        if env is None:
            raise ValueError("`env` is required: the agent was saved without an environment id")
        config = SACConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()})
        agent = cls(
            env,
            state["encoder"],
            config,
            state["seed"],
            device,
            window=state["window"],
            env_kwargs=state["env_kwargs"],
            max_episode_steps=state["max_episode_steps"],
        )
        obs_space, act_space = state["spaces"]
        if agent.observation_space.shape != obs_space.shape or agent.action_space.shape != act_space.shape:
            raise ValueError(
                f"`env` has spaces {agent.observation_space}, {agent.action_space}; the agent was trained "
                f"on {obs_space}, {act_space}"
            )
        agent.env_id = state["env_id"] if env == state["env_id"] else agent.env_id
        agent._load_state(state)
        return agent


def as_callback(fn: Callable[[HistorySAC], bool | None]) -> BaseCallback:
    """Wrap a function ``fn(agent) -> bool | None`` called after every step (``False`` stops)."""
    from sciprob.control.callbacks import FunctionCallback

    return FunctionCallback(fn)
