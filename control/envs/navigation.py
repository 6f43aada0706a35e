"""Navigation: push a point mass, possibly with friction, to a target in a walled square."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sciprob.control.envs.base import BatchedTrackingEnv, PIDSpec, SystemDraw, TrackingDynamics, TrackingEnv

DT = 0.1
CELL = 5.0
FORCE_SCALE = 10.0
MAX_SPEED = 1.0
DISTANCE_COEF = 1.0 / (2.0 * CELL)
FORCE_PENALTY = 0.1

NAV_PRESETS = {
    "sim": {"mass": (15.0, 25.0), "friction": (0.0, 0.0), "kinetic_ratio": (0.0, 0.0)},
    "real": {"mass": (5.0, 35.0), "friction": (0.05, 0.25), "kinetic_ratio": (0.25, 0.75)},
}


class NavigationDynamics(TrackingDynamics):
    """Batched navigation, the vectorised ``Navigation.rollout`` of [1] (its ``step`` has a bug)."""

    NAME = "Navigation"
    PARAM_PRESETS = NAV_PRESETS
    OBS_NAMES = ("x", "y", "target_x", "target_y", "force_x", "force_y")
    OBS_LOW = (-CELL, -CELL, -CELL, -CELL, -1.0, -1.0)
    OBS_HIGH = (CELL, CELL, CELL, CELL, 1.0, 1.0)
    ACT_DIM = 2
    PID = PIDSpec(position=(0, 1), target=(2, 3), dt=DT)
    POSITIVE = ("mass",)
    TASK_POSITIVE = (2,)
    NONNEGATIVE = ("friction", "kinetic_ratio")

    def sample(self, rng: np.random.Generator, options: Mapping[str, Any] | None) -> SystemDraw:
        """Draw (mu_s, mu_k / mu_s, m), then per axis a sign and a distance in [5/3, 5]."""
        task = np.array(
            [self.uniform(rng, "friction"), self.uniform(rng, "kinetic_ratio"), self.uniform(rng, "mass")]
        )
        target = np.array([(2 * rng.integers(2) - 1) * rng.uniform(CELL / 3, CELL) for _ in range(2)])
        fixed = self.options_task(options, 3)
        fixed_targets = self.options_targets(options, 2)
        targets = np.broadcast_to(target, (self.episode_steps, 2)).copy()
        return SystemDraw(
            task if fixed is None else fixed,
            targets if fixed_targets is None else fixed_targets,
            np.zeros(4),
        )

    def advance(self, action: np.ndarray) -> np.ndarray:
        """Friction, speed clip at 1 per axis, elastic bounce on the walls; reward as documented."""
        u = self.normalised_input(action)
        force = FORCE_SCALE * u
        mu_s = self.task[:, :1]
        mu_k = self.task[:, :1] * self.task[:, 1:2]
        m = self.task[:, 2:3]
        pos, vel = self.state[:, :2], self.state[:, 2:]
        still = (np.abs(vel).sum(axis=1, keepdims=True) < 1e-6).astype(np.float64)
        static = np.clip(still * mu_s * m * -np.sign(force), -np.abs(force), np.abs(force))
        kinetic = (1.0 - still) * mu_k * m * -np.sign(vel)
        new_pos = pos + DT * vel
        new_vel = np.clip(vel + (force + static + kinetic) / m, -MAX_SPEED, MAX_SPEED)
        hit = np.abs(new_pos) > CELL
        new_vel = np.where(hit, -new_vel, new_vel)
        new_pos = np.clip(new_pos, -CELL, CELL)
        self.state = np.concatenate([new_pos, new_vel], axis=1)
        self.t += 1
        err = new_pos - self.current_target()
        return -DISTANCE_COEF * np.abs(err).sum(axis=1) - FORCE_PENALTY * np.abs(u).sum(axis=1)

    def observe(self) -> np.ndarray:
        """``[x, y, target_x, target_y, u_x, u_y]`` per system."""
        return np.concatenate([self.state[:, :2], self.current_target(), self.force], axis=1).astype(
            np.float32
        )


class NavigationEnv(TrackingEnv):
    r"""Push a point mass to a target inside a walled square, with unknown mass and friction.

    ## Description

    A puck of mass ``m`` starts at rest at the origin of the square
    ``[-5, 5]^2`` and must reach a target; its velocity, mass and friction are
    hidden. Training without friction (``"sim"``) and testing with it
    (``"real"``) is the sim-to-real shift of [1]_.

    ## Observation Space

    ``Box(6,)`` of float32:

    | Num | Name     | Min | Max | Unit                 |
    |-----|----------|-----|-----|----------------------|
    | 0   | x        | -5  | 5   | m                    |
    | 1   | y        | -5  | 5   | m                    |
    | 2   | target_x | -5  | 5   | m                    |
    | 3   | target_y | -5  | 5   | m                    |
    | 4   | force_x  | -1  | 1   | F_x / 10 N (last)    |
    | 5   | force_y  | -1  | 1   | F_y / 10 N (last)    |

    ## Action Space

    ``Box(-1, 1, (2,))``: the normalised force ``u``, ``F = 10 u`` N
    (``action_is_change=True`` makes it the change of ``u`` instead).

    ## Transition Dynamics

    With ``dt = 0.1``, static friction (at rest) opposing ``F`` and capped by
    ``|F|``, kinetic friction ``-mu_k m sign(v)`` (moving):
    ``p' = p + dt v``, ``v' = clip(v + (F + f) / m, -1, 1)``; a wall flips the
    velocity component and clips the position. These are the equations of the
    reference's vectorised rollout, including its velocity update without ``dt``.

    ## Reward

    ``r_t = -0.1 (|x' - t_x| + |y' - t_y|) - 0.1 (|u_x| + |u_y|)``, in
    ``[-2.2, 0]``; doing nothing scores about -67 per episode [1]_.

    ## Starting State

    At rest at the origin; per axis the target is ``±U(5/3, 5)``. ``"sim"``:
    ``m ~ U(15, 25)``, no friction; ``"real"``: ``m ~ U(5, 35)``,
    ``mu_s ~ U(0.05, 0.25)``, ``mu_k = mu_s U(0.25, 0.75)``.

    ## Episode End

    Never terminates; truncated after ``episode_steps`` steps (default 100).

    ## Arguments

    ``params`` (``"sim" | "real"`` or a dict of ``(low, high)`` for ``mass``,
    ``friction``, ``kinetic_ratio``), ``action_is_change`` (default ``False``),
    ``episode_steps``. ``options["task"]`` is ``[mu_s, mu_k / mu_s, m]``.

    >>> import gymnasium as gym
    >>> import sciprob.control
    >>> env = gym.make("sciprob/Navigation-v0", params="real")
    >>> obs, info = env.reset(seed=0)
    >>> obs[:2].tolist(), bool(abs(obs[2]) >= 5 / 3)
    ([0.0, 0.0], True)

    ## Version History

    * v0: Initial version, after ``nav.py`` of [1]_.

    References
    ----------
    .. [1] I. Char and J. Schneider, NeurIPS 2023; github.com/IanChar/GPIDE.
    """

    dynamics_cls = NavigationDynamics

    def __init__(
        self, params: str | Mapping = "sim", action_is_change: bool = False, episode_steps: int = 100
    ):
        super().__init__(params, action_is_change, episode_steps)


class BatchedNavigationEnv(BatchedTrackingEnv):
    """:class:`NavigationEnv` for ``num_envs`` systems at once."""

    dynamics_cls = NavigationDynamics

    def __init__(
        self,
        num_envs: int,
        params: str | Mapping = "sim",
        action_is_change: bool = False,
        episode_steps: int = 100,
        max_episode_steps: int = 100,
    ):
        super().__init__(num_envs, params, action_is_change, episode_steps, max_episode_steps)
