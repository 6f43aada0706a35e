"""Tuned PID controller baseline.

The controller applies ``u = K_p P + K_i I + K_d D`` per tracked axis (features
of :class:`~sciprob.control.wrappers.PIDState`), clipped to ``[-1, 1]``. As in
[1]_ it sets the normalised force directly on the spring and navigation tasks
(``action_is_change=False``) and the change of beam power on the Tokamak.

:func:`tune_pid` chooses the three gains (shared by all axes) to maximise the
mean return over a fixed set of training-range systems with SciPy's
differential evolution [2]_, a derivative-free global optimiser (the reference
used Bayesian optimisation; DE needs no extra dependency and, with all
candidates of a generation rolled out in one batched numpy simulation, a few
seconds).

References
----------
.. [1] I. Char and J. Schneider, NeurIPS 2023; ``scripts/tune_pid.py`` of github.com/IanChar/GPIDE.
.. [2] R. Storn and K. Price, "Differential Evolution", J. Global Optim. 11, 1997;
   ``scipy.optimize.differential_evolution``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from scipy.optimize import differential_evolution

from sciprob.control.envs.base import PIDSpec, TrackingDynamics
from sciprob.control.wrappers import PIDState

TUNE_SEED = 2_000_000
DEFAULT_BOUNDS = ((0.0, 10.0), (0.0, 5.0), (0.0, 10.0))


def _dynamics_cls(env_id: str) -> type[TrackingDynamics]:
    entry = gym.spec(env_id).entry_point
    cls = entry if not isinstance(entry, str) else gym.envs.registration.load_env_creator(entry)
    if not hasattr(cls, "dynamics_cls"):
        raise ValueError(f"`env_id` must be a sciprob tracking environment, got {env_id!r}")
    return cls.dynamics_cls


def pid_action_is_change(env_id: str) -> bool:
    """Return the reference's PID action semantics: change of input only for the Tokamak."""
    return _dynamics_cls(env_id).NAME == "Tokamak"


class PIDController:
    """PID control law usable with :func:`~sciprob.control.training.evaluate`.

    Parameters
    ----------
    gains : array-like of shape (3,) or (n, 3)
        ``(K_p, K_i, K_d)``, shared or per system.
    spec : PIDSpec
        Where positions and targets sit in the observation.
    action_is_change : bool, default=False
        The environment's action semantics this law is written for.
    """

    pid_features = False

    def __init__(self, gains: Any, spec: PIDSpec, action_is_change: bool = False) -> None:
        self.gains = np.asarray(gains, dtype=np.float64)
        if self.gains.shape[-1] != 3:
            raise ValueError(
                f"`gains` must have 3 entries (Kp, Ki, Kd) on its last axis, got {self.gains.shape}"
            )
        self.spec = spec
        self.env_kwargs = {"action_is_change": action_is_change}

    def reset(self, num_envs: int) -> None:
        """Start ``num_envs`` episodes."""
        self._state = PIDState(self.spec, num_envs)
        self._fresh = True

    def act(self, obs: np.ndarray) -> np.ndarray:
        """``clip(Kp P + Ki I + Kd D, -1, 1)`` of shape (n, k)."""
        obs = np.asarray(obs, np.float64)
        feats = self._state.reset(obs) if self._fresh else self._state.update(obs)
        self._fresh = False
        k = len(self.spec.position)
        g = self.gains.reshape(-1, 3)
        u = g[:, :1] * feats[:, :k] + g[:, 1:2] * feats[:, k : 2 * k] + g[:, 2:] * feats[:, 2 * k :]
        return np.clip(u, -1.0, 1.0).astype(np.float32)

    def observe(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Stateless beyond its integral."""


@dataclass
class PIDTuning:
    """Result of :func:`tune_pid`.

    Attributes
    ----------
    controller : PIDController
        With the best gains.
    gains : ndarray of shape (3,)
    train_return : float
        Mean return on the tuning systems.
    evaluations : int
        Controller rollouts (candidates x generations).
    """

    controller: PIDController
    gains: np.ndarray
    train_return: float
    evaluations: int


def pid_returns(
    env_id: str, params: Any, gains: np.ndarray, episodes: int, seed: int, steps: int = 100
) -> np.ndarray:
    """Return the returns of each gain vector on the same ``episodes`` systems, shape (candidates, episodes).

    Parameters
    ----------
    gains : ndarray of shape (candidates, 3)
    episodes : int
        Systems ``seed + i``, ``i < episodes`` (as :func:`~sciprob.control.training.evaluate` draws them).
    """
    gains = np.atleast_2d(gains)
    cls = _dynamics_cls(env_id)
    change = pid_action_is_change(env_id)
    dyn = cls(len(gains) * episodes, params, change, steps)
    draws = [dyn.sample(seeding.np_random(seed + e)[0], None) for e in range(episodes)]
    for c in range(len(gains)):
        for e, draw in enumerate(draws):
            dyn.set_system(c * episodes + e, draw)
    ctrl = PIDController(np.repeat(gains, episodes, axis=0), cls.PID, change)
    ctrl.reset(dyn.n)
    total = np.zeros(dyn.n)
    for _ in range(steps):
        total += dyn.advance(ctrl.act(dyn.observe()).astype(np.float64))
    return total.reshape(len(gains), episodes)


def tune_pid(
    env_id: str,
    params: Any = "fixed",
    episodes: int = 32,
    seed: int = TUNE_SEED,
    bounds: tuple[tuple[float, float], ...] = DEFAULT_BOUNDS,
    maxiter: int = 30,
    popsize: int = 10,
) -> PIDTuning:
    """Tune ``(K_p, K_i, K_d)`` on the training range by differential evolution.

    Parameters
    ----------
    env_id : str
        Tracking environment id.
    params : str or dict, default="fixed"
        Training range.
    episodes : int, default=32
        Tuning systems (common to every candidate).
    seed : int, default=TUNE_SEED
        Seed of the tuning systems (disjoint from the evaluation seeds).
    bounds : tuple of 3 (low, high), default=((0, 10), (0, 5), (0, 10))
        Search box of the gains.
    maxiter, popsize : int, default=30, 10
        Generations and population multiplier of ``differential_evolution``.

    Returns
    -------
    PIDTuning
    """
    if len(bounds) != 3:
        raise ValueError(f"`bounds` needs 3 (low, high) pairs for Kp, Ki, Kd, got {bounds!r}")
    count = 0

    def objective(x: np.ndarray) -> np.ndarray:
        nonlocal count
        count += x.shape[1]
        return -pid_returns(env_id, params, x.T, episodes, seed).mean(axis=1)

    res = differential_evolution(
        objective,
        bounds,
        maxiter=maxiter,
        popsize=popsize,
        seed=seed % 2**32,
        vectorized=True,
        updating="deferred",
        polish=False,
        tol=1e-6,
    )
    ctrl = PIDController(res.x, _dynamics_cls(env_id).PID, pid_action_is_change(env_id))
    return PIDTuning(ctrl, np.asarray(res.x), float(-res.fun), count)
