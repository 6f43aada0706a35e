r"""PID features of the tracking error, as an observation wrapper (single and vector).

For each tracked axis with position ``x_t`` and target ``g_t`` (observation
entries named by the environment's :class:`~sciprob.control.envs.PIDSpec`):

.. math::
    P_t = g_t - x_t, \qquad I_t = \sum_{j \le t} P_j\,dt, \qquad
    D_t = -(x_t - x_{t-1}) / dt, \quad D_0 = 0,

which are the ``P``, ``I`` and ``D`` observations of [1]_ (``D`` is the error's
rate for a constant target, minus the velocity for the spring tasks). For the
Tokamak the observation is already standardised, so the features come out
divided by the reference scale ``sigma_beta``, as in [1]_, and ``I`` includes
the reset error.

References
----------
.. [1] I. Char and J. Schneider, NeurIPS 2023; ``msd_env.py``, ``fusion_toy_env.py``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sciprob.control.envs.base import PIDSpec


def _pid_spec(env: Any, spec: PIDSpec | None, cls: str) -> PIDSpec:
    spec = spec if spec is not None else getattr(env.unwrapped, "pid_spec", None)
    if spec is None:
        raise TypeError(
            f"`{cls}` requires an environment with a `pid_spec` or an explicit `spec`, got {env!r}"
        )
    return spec


def _augmented_space(space: Any, spec: PIDSpec, cls: str) -> gym.spaces.Box:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise TypeError(f"`{cls}` requires a 1-D Box observation space, got {space!r}")
    if max(spec.position + spec.target) >= space.shape[0]:
        raise ValueError(f"`{cls}` spec indices {spec} exceed the observation size {space.shape[0]}")
    k = 3 * len(spec.position)
    low = np.concatenate([space.low, np.full(k, -np.inf)]).astype(np.float32)
    high = np.concatenate([space.high, np.full(k, np.inf)]).astype(np.float32)
    return gym.spaces.Box(low, high, dtype=np.float32)


class PIDState:
    """Running P, I, D of ``n`` systems.

    Parameters
    ----------
    spec : PIDSpec
        Where position and target sit in the observation, and ``dt``.
    n : int
        Number of systems.
    """

    def __init__(self, spec: PIDSpec, n: int) -> None:
        self.pid_spec = spec
        k = len(spec.position)
        self.integral = np.zeros((n, k))
        self.prev_position = np.zeros((n, k))
        self._pos = list(spec.position)
        self._tgt = list(spec.target)

    def reset(self, obs: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Start new episodes in ``rows`` from ``obs`` (n, obs_dim); return features (n, 3k)."""
        p = obs[:, self._tgt] - obs[:, self._pos]
        self.integral[rows] = (p * self.pid_spec.dt * float(self.pid_spec.integrate_initial_error))[rows]
        self.prev_position[rows] = obs[rows][:, self._pos]
        return self._features(obs, p, np.zeros_like(p))

    def update(self, obs: np.ndarray) -> np.ndarray:
        """Advance every system one step with ``obs`` (n, obs_dim); return features (n, 3k)."""
        x = obs[:, self._pos].astype(np.float64)
        p = obs[:, self._tgt] - x
        self.integral += p * self.pid_spec.dt
        d = -(x - self.prev_position) / self.pid_spec.dt
        self.prev_position = x
        return self._features(obs, p, d)

    def _features(self, obs: np.ndarray, p: np.ndarray, d: np.ndarray) -> np.ndarray:
        return np.concatenate([p, self.integral, d], axis=1)


class PIDFeatures(gym.ObservationWrapper):
    """Append ``[P, I, D]`` of the tracking error to a tracking environment's observation.

    Parameters
    ----------
    env : gymnasium.Env
        A tracking environment (1-D ``Box`` observations, ``env.unwrapped.pid_spec``).
    spec : PIDSpec, default=None
        Overrides the environment's spec.

    Examples
    --------
    >>> import gymnasium as gym
    >>> import sciprob.control
    >>> env = PIDFeatures(gym.make("sciprob/MassSpringDamper-v0"))
    >>> obs, _ = env.reset(seed=0)
    >>> obs.shape   # x, target, force, P, I, D
    (6,)
    """

    def __init__(self, env: gym.Env, spec: PIDSpec | None = None) -> None:
        super().__init__(env)
        self.pid_spec = _pid_spec(env, spec, "PIDFeatures")
        self.observation_space = _augmented_space(env.observation_space, self.pid_spec, "PIDFeatures")
        self._state = PIDState(self.pid_spec, 1)
        self._fresh = True

    def reset(self, **kwargs: Any):
        """Reset the wrapped environment and the running integral."""
        self._fresh = True
        return super().reset(**kwargs)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """``[obs, P, I, D]`` as float32."""
        obs = np.asarray(observation, np.float64)[None]
        feats = self._state.reset(obs) if self._fresh else self._state.update(obs)
        self._fresh = False
        return np.concatenate([obs[0], feats[0]]).astype(np.float32)


class PIDFeaturesVector(gym.vector.VectorWrapper):
    """:class:`PIDFeatures` for a vector environment with next-step autoreset.

    Parameters
    ----------
    env : gymnasium.vector.VectorEnv
        E.g. ``gymnasium.make_vec("sciprob/MassSpringDamper-v0", num_envs=64)``.
    spec : PIDSpec, default=None
        Overrides the environment's spec.
    """

    def __init__(self, env: gym.vector.VectorEnv, spec: PIDSpec | None = None) -> None:
        super().__init__(env)
        self.pid_spec = _pid_spec(env, spec, "PIDFeaturesVector")
        self.single_observation_space = _augmented_space(
            env.single_observation_space, self.pid_spec, "PIDFeaturesVector"
        )
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, env.num_envs)
        self._state = PIDState(self.pid_spec, env.num_envs)
        self._restart = np.zeros(env.num_envs, dtype=bool)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset all systems and their running integrals."""
        obs, info = self.env.reset(seed=seed, options=options)
        obs = np.asarray(obs, np.float64)
        self._restart[:] = False
        return np.concatenate([obs, self._state.reset(obs)], 1).astype(np.float32), info

    def step(self, actions: Any):
        """Step, restarting the features of systems that were just auto-reset."""
        obs, rew, term, trunc, info = self.env.step(actions)
        obs = np.asarray(obs, np.float64)
        feats = self._state.update(obs)
        if self._restart.any():
            feats[self._restart] = self._state.reset(obs, self._restart)[self._restart]
        self._restart = np.logical_or(term, trunc)
        return np.concatenate([obs, feats], 1).astype(np.float32), rew, term, trunc, info
