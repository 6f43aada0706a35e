"""Shared machinery of the tracking environments: batched dynamics, single and vector envs.

Every tracking task is written once as a :class:`TrackingDynamics`, numpy code
that steps ``n`` systems at once. :class:`TrackingEnv` runs it with ``n = 1``
behind the ``gymnasium.Env`` API; :class:`BatchedTrackingEnv` runs it with
``n = num_envs`` behind the ``gymnasium.vector.VectorEnv`` API (registered as
the ``vector_entry_point``). Both draw system ``i``'s parameters, targets and
start state from a generator seeded like ``SyncVectorEnv`` seeds its ``i``-th
copy (``seed + i``), so the two give identical trajectories.

References
----------
.. [1] I. Char and J. Schneider, "PID-Inspired Inductive Biases for Deep
   Reinforcement Learning in Partially Observable Control Tasks", NeurIPS 2023;
   environments after ``rlkit/envs/*.py`` of github.com/IanChar/GPIDE.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space
from gymnasium.vector.vector_env import AutoresetMode

_ACTION_TOL = 1e-6


class PIDSpec(NamedTuple):
    """Where the tracked quantities sit in an observation, for PID features.

    Attributes
    ----------
    position : tuple of int
        Observation indices of the controlled quantities (one per tracked axis).
    target : tuple of int
        Observation indices of their targets, in the same order.
    dt : float
        Time step used by the integral and derivative terms.
    integrate_initial_error : bool
        Whether the integral already contains the error observed at reset
        (Tokamak in [1]_) or starts at zero (the spring and navigation tasks).
    """

    position: tuple[int, ...]
    target: tuple[int, ...]
    dt: float
    integrate_initial_error: bool = False


class SystemDraw(NamedTuple):
    """One system's episode: parameters, target schedule and start state.

    Attributes
    ----------
    task : ndarray of shape (n_task,)
        Physical parameters.
    targets : ndarray of shape (episode_steps, n_targets)
        Target at every step.
    start : ndarray of shape (n_state,)
        Initial state.
    """

    task: np.ndarray
    targets: np.ndarray
    start: np.ndarray


def resolve_ranges(
    params: str | Mapping[str, tuple[float, float]],
    presets: Mapping[str, Mapping[str, tuple[float, float]]],
    env_name: str,
    normal: bool = False,
    positive: tuple[str, ...] = (),
    nonnegative: tuple[str, ...] = (),
) -> dict[str, tuple[float, float]]:
    """Turn ``params`` (a preset name or explicit ranges) into ``{name: (low, high)}``.

    With ``normal=True`` the pairs are ``(mean, std)`` of normal distributions.
    Parameters named in ``positive`` (masses) must have ``low > 0``, those in
    ``nonnegative`` (damping, stiffness, friction) ``low >= 0``: a physically
    invalid system is an error here, not NaN observations later.

    Raises
    ------
    ValueError
        Unknown preset name, unknown or missing parameter, ``low > high``, a
        non-finite bound, or a bound outside the physical range.
    TypeError
        ``params`` is neither a string nor a mapping.
    """
    if isinstance(params, str):
        if params not in presets:
            raise ValueError(
                f"`params` of {env_name} must be one of {sorted(presets)} or a dict of ranges, got {params!r}"
            )
        return {k: (float(lo), float(hi)) for k, (lo, hi) in presets[params].items()}
    if not isinstance(params, Mapping):
        raise TypeError(f"`params` of {env_name} must be a str or a dict of (low, high), got {params!r}")
    names = set(next(iter(presets.values())))
    if set(params) != names:
        raise ValueError(
            f"`params` of {env_name} needs exactly the keys {sorted(names)}, got {sorted(params)}"
        )
    out = {}
    for key, value in params.items():
        lo, hi = (float(v) for v in value)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"`params[{key!r}]` of {env_name} must be finite, got {value!r}")
        if (hi < 0) if normal else not lo <= hi:
            need = "std >= 0" if normal else "low <= high"
            raise ValueError(f"`params[{key!r}]` of {env_name} needs {need}, got {value!r}")
        if not normal and key in positive and lo <= 0:
            raise ValueError(f"`params[{key!r}]` of {env_name} must be > 0 (a physical {key}), got {value!r}")
        if not normal and key in nonnegative and lo < 0:
            raise ValueError(f"`params[{key!r}]` of {env_name} must be >= 0, got {value!r}")
        out[key] = (lo, hi)
    return out


class TrackingDynamics(ABC):
    """Batched dynamics of ``n`` tracking systems.

    Subclasses set the class attributes and implement :meth:`sample`,
    :meth:`advance` and :meth:`observe`. The base holds the per-system arrays:

    ==============  ===============================  ======================
    attribute       shape                            meaning
    ==============  ===============================  ======================
    ``task``        (n, n_task)                      physical parameters
    ``targets``     (n, episode_steps, n_targets)    target schedule
    ``state``       (n, n_state)                     physical state
    ``force``       (n, act_dim)                     last normalised input
    ``t``           (n,)                             steps since reset
    ==============  ===============================  ======================

    Parameters
    ----------
    n : int
        Number of systems.
    params : str or dict of str to (float, float)
        A named range of :attr:`PARAM_PRESETS` or explicit ranges.
    action_is_change : bool
        Whether an action is the change of the normalised input (``True``) or
        the input itself.
    episode_steps : int, default=100
        Length of the target schedule (targets stay at their last value after).
    """

    NAME: str = ""
    NORMAL_PARAMS: bool = False
    PARAM_PRESETS: Mapping[str, Mapping[str, tuple[float, float]]] = {}
    OBS_NAMES: tuple[str, ...] = ()
    OBS_LOW: tuple[float, ...] = ()
    OBS_HIGH: tuple[float, ...] = ()
    ACT_DIM: int = 1
    N_STATE: int = 1
    PID: PIDSpec = PIDSpec((0,), (1,), 1.0)
    POSITIVE: tuple[str, ...] = ()
    NONNEGATIVE: tuple[str, ...] = ()
    TASK_POSITIVE: tuple[int, ...] = ()  # entries of `options["task"]` that must be > 0 (masses)

    def __init__(
        self,
        n: int,
        params: str | Mapping[str, tuple[float, float]],
        action_is_change: bool,
        episode_steps: int = 100,
    ) -> None:
        if episode_steps < 1:
            raise ValueError(f"`episode_steps` must be >= 1, got {episode_steps}")
        self.n = int(n)
        self.ranges = resolve_ranges(
            params, self.PARAM_PRESETS, self.NAME, self.NORMAL_PARAMS, self.POSITIVE, self.NONNEGATIVE
        )
        self.action_is_change = bool(action_is_change)
        self.episode_steps = int(episode_steps)
        draw = self.sample(np.random.default_rng(0), None)
        self.task = np.zeros((n, draw.task.size))
        self.targets = np.zeros((n, *draw.targets.shape))
        self.state = np.zeros((n, draw.start.size))
        self.force = np.zeros((n, self.ACT_DIM))
        self.t = np.zeros(n, dtype=np.int64)

    @property
    def obs_dim(self) -> int:
        """Observation size."""
        return len(self.OBS_NAMES)

    def observation_space(self) -> gym.spaces.Box:
        """Return the single-system observation space."""
        return gym.spaces.Box(np.array(self.OBS_LOW, np.float32), np.array(self.OBS_HIGH, np.float32))

    def action_space(self) -> gym.spaces.Box:
        """Return the single-system action space, ``[-1, 1]^act_dim``."""
        return gym.spaces.Box(-1.0, 1.0, shape=(self.ACT_DIM,), dtype=np.float32)

    def uniform(self, rng: np.random.Generator, name: str, size: int | None = None) -> Any:
        """Draw parameter ``name`` uniformly from its range."""
        lo, hi = self.ranges[name]
        return rng.uniform(lo, hi, size=size)

    @abstractmethod
    def sample(self, rng: np.random.Generator, options: Mapping[str, Any] | None) -> SystemDraw:
        """Draw one system's parameters, targets and start (``options`` may fix them)."""

    @abstractmethod
    def advance(self, action: np.ndarray) -> np.ndarray:
        """Step every system with ``action`` of shape (n, act_dim); return rewards (n,)."""

    @abstractmethod
    def observe(self) -> np.ndarray:
        """Observations of shape (n, obs_dim), float32."""

    def set_system(self, i: int, draw: SystemDraw) -> None:
        """Put system ``i`` at the start of the episode ``draw``."""
        self.task[i] = draw.task
        self.targets[i] = draw.targets
        self.state[i] = draw.start
        self.force[i] = 0.0
        self.t[i] = 0

    def current_target(self) -> np.ndarray:
        """Targets of shape (n, n_targets) at each system's current step."""
        idx = np.minimum(self.t, self.episode_steps - 1)
        return self.targets[np.arange(self.n), idx]

    def normalised_input(self, action: np.ndarray) -> np.ndarray:
        """Apply the action semantics: new normalised input in [-1, 1], stored in ``force``."""
        new = self.force + action if self.action_is_change else action
        self.force = np.clip(new, -1.0, 1.0)
        return self.force

    def check_action(self, action: Any, batch: int) -> np.ndarray:
        """Return ``action`` as float64 of shape (batch, act_dim) or raise a clear error."""
        arr = np.asarray(action, dtype=np.float64)
        expected = (batch, self.ACT_DIM)
        if arr.size != batch * self.ACT_DIM:
            raise ValueError(
                f"`action` of {self.NAME} must have shape {expected[1:] if batch == 1 else expected}, "
                f"got shape {arr.shape}"
            )
        arr = arr.reshape(expected)
        if not np.all(np.isfinite(arr)) or np.any(np.abs(arr) > 1.0 + _ACTION_TOL):
            raise ValueError(f"`action` of {self.NAME} must lie in the action space [-1, 1], got {action!r}")
        return arr

    def options_task(self, options: Mapping[str, Any] | None, size: int) -> np.ndarray | None:
        """Return the task fixed through ``options["task"]`` (validated), or ``None``."""
        if not options or options.get("task") is None:
            return None
        task = np.asarray(options["task"], dtype=np.float64).reshape(-1)
        if task.size != size:
            raise ValueError(f"`options['task']` of {self.NAME} needs {size} values, got {task.size}")
        if not np.all(np.isfinite(task)):
            raise ValueError(f"`options['task']` of {self.NAME} must be finite, got {task}")
        if self.TASK_POSITIVE and np.any(task[list(self.TASK_POSITIVE)] <= 0):
            raise ValueError(
                f"`options['task']` of {self.NAME} needs positive masses at "
                f"{list(self.TASK_POSITIVE)}, got {task}"
            )
        return task

    def options_targets(self, options: Mapping[str, Any] | None, n_targets: int) -> np.ndarray | None:
        """Return the targets fixed by ``options["targets"]``, shape (episode_steps, n_targets)."""
        if not options or options.get("targets") is None:
            return None
        tg = np.asarray(options["targets"], dtype=np.float64)
        if tg.size == n_targets:
            return np.broadcast_to(tg.reshape(1, n_targets), (self.episode_steps, n_targets)).copy()
        if tg.shape != (self.episode_steps, n_targets):
            raise ValueError(
                f"`options['targets']` of {self.NAME} needs shape ({n_targets},) or "
                f"({self.episode_steps}, {n_targets}), got {tg.shape}"
            )
        return tg.copy()


class TrackingEnv(gym.Env):
    """A single tracking system behind the ``gymnasium.Env`` API (see subclasses)."""

    metadata = {"render_modes": []}
    dynamics_cls: type[TrackingDynamics]

    def __init__(
        self,
        params: str | Mapping[str, tuple[float, float]] = "fixed",
        action_is_change: bool = True,
        episode_steps: int = 100,
    ) -> None:
        self.dynamics = self.dynamics_cls(1, params, action_is_change, episode_steps)
        self.observation_space = self.dynamics.observation_space()
        self.action_space = self.dynamics.action_space()
        self.pid_spec = self.dynamics.PID
        self.episode_steps = self.dynamics.episode_steps
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Draw a new system (parameters, targets, start) and return its first observation."""
        super().reset(seed=seed)
        self.dynamics.set_system(0, self.dynamics.sample(self.np_random, options))
        self._needs_reset = False
        return self.dynamics.observe()[0], {"task": self.dynamics.task[0].copy()}

    def step(self, action: Any):
        """Apply ``action``; return (obs, reward, terminated=False, truncated, info).

        ``truncated`` is true after ``episode_steps`` steps: the episode length is an
        argument of the environment (the target schedule spans it), so the
        environment ends the episode itself rather than through registration.
        """
        if self._needs_reset:
            raise gym.error.ResetNeeded(f"{self.dynamics.NAME}: call `reset()` before `step()`")
        act = self.dynamics.check_action(action, 1)
        reward = self.dynamics.advance(act)
        info = {"target": self.dynamics.current_target()[0].copy()}
        truncated = bool(self.dynamics.t[0] >= self.episode_steps)
        return self.dynamics.observe()[0], float(reward[0]), False, truncated, info


class BatchedTrackingEnv(VectorEnv):
    """``num_envs`` systems stepped together in numpy (the ``vector_entry_point``).

    Matches ``gymnasium.vector.SyncVectorEnv`` of the single environment with
    next-step autoreset: the step after an episode's truncation returns the
    reset observation with reward 0. ``reset(seed=s)`` seeds system ``i`` with
    ``s + i``.

    Parameters
    ----------
    num_envs : int
        Number of systems.
    params : str or dict, default="fixed"
        Parameter range (see the single environment).
    action_is_change : bool, default=True
        Action semantics (see the single environment).
    episode_steps : int, default=100
        Length of the target schedule and truncation time.
    max_episode_steps : int, default=None
        Truncation time if it differs from ``episode_steps``.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}
    dynamics_cls: type[TrackingDynamics]

    def __init__(
        self,
        num_envs: int,
        params: str | Mapping[str, tuple[float, float]] = "fixed",
        action_is_change: bool = True,
        episode_steps: int = 100,
        max_episode_steps: int | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"`num_envs` must be >= 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.dynamics = self.dynamics_cls(self.num_envs, params, action_is_change, episode_steps)
        self.single_observation_space = self.dynamics.observation_space()
        self.single_action_space = self.dynamics.action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.pid_spec = self.dynamics.PID
        self.max_episode_steps = int(max_episode_steps or self.dynamics.episode_steps)
        if self.max_episode_steps < 1:
            raise ValueError(f"`max_episode_steps` must be >= 1, got {max_episode_steps}")
        self._needs_reset = True
        self._rngs = [seeding.np_random(None)[0] for _ in range(self.num_envs)]
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def _reset_one(self, i: int, options: Mapping[str, Any] | None) -> None:
        self.dynamics.set_system(i, self.dynamics.sample(self._rngs[i], options))
        self._elapsed[i] = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset every system; ``options["task"]`` may be an array (num_envs, n_task)."""
        if seed is not None:
            self._rngs = [seeding.np_random(seed + i)[0] for i in range(self.num_envs)]
        for i in range(self.num_envs):
            self._reset_one(i, _row_options(options, i))
        self._autoreset[:] = False
        self._needs_reset = False
        return self.dynamics.observe(), {}

    def step(self, actions: Any):
        """Step all systems; returns (obs, rewards, terminations, truncations, infos) arrays."""
        if self._needs_reset:
            raise gym.error.ResetNeeded(f"{self.dynamics.NAME}: call `reset()` before `step()`")
        act = self.dynamics.check_action(actions, self.num_envs)
        rewards = self.dynamics.advance(act)
        self._elapsed += 1
        done = np.flatnonzero(self._autoreset)
        for i in done:
            self._reset_one(int(i), None)
        rewards[done] = 0.0
        truncations = self._elapsed >= self.max_episode_steps
        truncations[done] = False
        self._autoreset = truncations.copy()
        terminations = np.zeros(self.num_envs, dtype=bool)
        return self.dynamics.observe(), rewards, terminations, truncations, {}


def _row_options(options: Mapping[str, Any] | None, i: int) -> dict[str, Any] | None:
    """Per-system slice of batched reset options (arrays with a leading system axis)."""
    if not options:
        return None
    return {k: (None if v is None else np.asarray(v)[i]) for k, v in options.items()}
