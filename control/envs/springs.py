"""Mass-spring-damper tracking tasks: one mass (MSD) and two masses in series (DMSD)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sciprob.control.envs.base import BatchedTrackingEnv, PIDSpec, SystemDraw, TrackingDynamics, TrackingEnv

DT = 0.2
TARGET_BOUNDS = (-1.5, 1.5)
START_POSITION = (-0.25, 0.25)
START_VELOCITY = (-0.1, 0.1)

# Parameter ranges of the robustness protocol [1] (rlkit/envs/__init__.py, vary_dict).
SPRING_PRESETS = {
    "fixed": {"damping": (4.0, 4.0), "stiffness": (2.0, 2.0), "mass": (20.0, 20.0)},
    "small": {"damping": (3.5, 5.5), "stiffness": (1.75, 3.0), "mass": (17.5, 40.0)},
    "med": {"damping": (3.0, 7.0), "stiffness": (1.25, 4.0), "mass": (15.0, 60.0)},
    "large": {"damping": (2.0, 10.0), "stiffness": (0.5, 6.0), "mass": (10.0, 100.0)},
}


def _piecewise_targets(rng: np.random.Generator, steps: int, max_targets: int) -> np.ndarray:
    """Draw a schedule of 1..max_targets constant targets splitting ``steps`` evenly, shape (steps,)."""
    count = int(rng.integers(1, max_targets + 1)) if max_targets > 1 else 1
    out = np.empty(steps)
    start = 0
    for k in range(count):
        stop = steps if k == count - 1 else start + steps // count
        out[start:stop] = rng.uniform(*TARGET_BOUNDS)
        start = stop
    return out


class MassSpringDamperDynamics(TrackingDynamics):
    """Batched MSD: ``x' = x + dt v``, ``v' = v - dt (k x + c v - F) / m``."""

    NAME = "MassSpringDamper"
    PARAM_PRESETS = SPRING_PRESETS
    OBS_NAMES = ("position", "target", "force")
    OBS_LOW = (-np.inf, TARGET_BOUNDS[0], -1.0)
    OBS_HIGH = (np.inf, TARGET_BOUNDS[1], 1.0)
    ACT_DIM = 1
    FORCE_SCALE = 10.0
    PID = PIDSpec(position=(0,), target=(1,), dt=DT)
    TASK_POSITIVE = (2,)
    POSITIVE = ("mass",)
    NONNEGATIVE = ("damping", "stiffness")

    def sample(self, rng: np.random.Generator, options: Mapping[str, Any] | None) -> SystemDraw:
        """Draw (c, k, m), one target and the start (x, v), in this order."""
        task = np.array(
            [self.uniform(rng, "damping"), self.uniform(rng, "stiffness"), self.uniform(rng, "mass")]
        )
        targets = _piecewise_targets(rng, self.episode_steps, 1)[:, None]
        start = np.array([rng.uniform(*START_POSITION), rng.uniform(*START_VELOCITY)])
        fixed = self.options_task(options, 3)
        fixed_targets = self.options_targets(options, 1)
        return SystemDraw(
            task if fixed is None else fixed, targets if fixed_targets is None else fixed_targets, start
        )

    def advance(self, action: np.ndarray) -> np.ndarray:
        """Explicit Euler step of every system; reward ``-|x' - target|``."""
        force = self.FORCE_SCALE * self.normalised_input(action)[:, 0]
        c, k, m = self.task.T
        x, v = self.state.T
        self.state = np.stack([x + DT * v, v - DT * k / m * x - DT * c / m * v + DT / m * force], axis=1)
        self.t += 1
        err = self.state[:, 0] - self.current_target()[:, 0]
        return -np.abs(err)

    def observe(self) -> np.ndarray:
        """``[x, target, normalised force]`` per system."""
        return np.concatenate([self.state[:, :1], self.current_target(), self.force], axis=1).astype(
            np.float32
        )


class DoubleMassSpringDamperDynamics(TrackingDynamics):
    """Batched DMSD: wall - k1,d1 - m1 - k2,d2 - m2 - k3,d3 - wall, a force on each mass."""

    NAME = "DoubleMassSpringDamper"
    PARAM_PRESETS = SPRING_PRESETS
    OBS_NAMES = ("position_1", "position_2", "target_1", "target_2", "force_1", "force_2")
    OBS_LOW = (-np.inf, -np.inf, TARGET_BOUNDS[0], TARGET_BOUNDS[0], -1.0, -1.0)
    OBS_HIGH = (np.inf, np.inf, TARGET_BOUNDS[1], TARGET_BOUNDS[1], 1.0, 1.0)
    ACT_DIM = 2
    FORCE_SCALE = 30.0
    MAX_TARGETS = 2
    PID = PIDSpec(position=(0, 1), target=(2, 3), dt=DT)
    TASK_POSITIVE = (6, 7)
    POSITIVE = ("mass",)
    NONNEGATIVE = ("damping", "stiffness")

    def sample(self, rng: np.random.Generator, options: Mapping[str, Any] | None) -> SystemDraw:
        """Draw (d1, d2, d3, k1, k2, k3, m1, m2), a schedule per mass, then (x1, x2, v1, v2)."""
        task = np.concatenate(
            [self.uniform(rng, "damping", 3), self.uniform(rng, "stiffness", 3), self.uniform(rng, "mass", 2)]
        )
        # Each mass gets 1 or 2 targets; a second one switches in at mid-episode [1].
        targets = np.stack(
            [_piecewise_targets(rng, self.episode_steps, self.MAX_TARGETS) for _ in range(2)], 1
        )
        start = np.concatenate([rng.uniform(*START_POSITION, size=2), rng.uniform(*START_VELOCITY, size=2)])
        fixed = self.options_task(options, 8)
        fixed_targets = self.options_targets(options, 2)
        return SystemDraw(
            task if fixed is None else fixed, targets if fixed_targets is None else fixed_targets, start
        )

    def advance(self, action: np.ndarray) -> np.ndarray:
        """Explicit Euler step; reward ``-(|x1' - t1| + |x2' - t2|)``."""
        force = self.FORCE_SCALE * self.normalised_input(action)
        d1, d2, d3, k1, k2, k3, m1, m2 = self.task.T
        x1, x2, v1, v2 = self.state.T
        a1 = (-(k1 + k2) * x1 + k2 * x2 - (d1 + d2) * v1 + d2 * v2 + force[:, 0]) / m1
        a2 = (k2 * x1 - (k2 + k3) * x2 + d2 * v1 - (d2 + d3) * v2 + force[:, 1]) / m2
        self.state = np.stack([x1 + DT * v1, x2 + DT * v2, v1 + DT * a1, v2 + DT * a2], axis=1)
        self.t += 1
        err = self.state[:, :2] - self.current_target()
        return -np.abs(err).sum(axis=1)

    def observe(self) -> np.ndarray:
        """``[x1, x2, t1, t2, F1, F2]`` per system."""
        return np.concatenate([self.state[:, :2], self.current_target(), self.force], axis=1).astype(
            np.float32
        )


class MassSpringDamperEnv(TrackingEnv):
    r"""Drive a mass on a spring and damper to a target position.

    ## Description

    A mass ``m`` hangs between a wall and a spring (stiffness ``k``) and damper
    (damping ``c``). A controller pushes it with a force ``F`` and must bring
    the position ``x`` to a target drawn at reset. The velocity and the
    physical parameters are hidden: a policy must infer them from the history
    of positions and forces, and stay robust when the parameters at test time
    come from a wider range than at training time [1]_.

    ## Observation Space

    ``Box(3,)`` of float32:

    | Num | Name     | Min  | Max | Unit              |
    |-----|----------|------|-----|-------------------|
    | 0   | position | -Inf | Inf | m                 |
    | 1   | target   | -1.5 | 1.5 | m                 |
    | 2   | force    | -1   | 1   | F / 10 N (last)   |

    ## Action Space

    ``Box(-1, 1, (1,))``. With ``action_is_change=True`` (the default, as for
    the learned policies of [1]_) the action is the change of the normalised
    force, ``u_t = clip(u_{t-1} + a_t, -1, 1)``; otherwise ``u_t = a_t``. The
    applied force is ``F = 10 u_t`` N. Actions outside the space raise.

    ## Transition Dynamics

    Explicit Euler with ``dt = 0.2`` s:

    .. math:: x' = x + dt\,v, \qquad v' = v + \frac{dt}{m}\,(F - k x - c v).

    ## Reward

    ``r_t = -|x_{t+1} - target_{t+1}|``, in ``(-inf, 0]``. Doing nothing scores
    about -79 per episode [1]_.

    ## Starting State

    ``x ~ U(-0.25, 0.25)``, ``v ~ U(-0.1, 0.1)``, force 0, target ``~ U(-1.5, 1.5)``;
    ``(c, k, m)`` uniform in the chosen range (``fixed``: 4, 2, 20; ``small``:
    [3.5, 5.5], [1.75, 3], [17.5, 40]; ``med``: [3, 7], [1.25, 4], [15, 60];
    ``large``: [2, 10], [0.5, 6], [10, 100]).

    ## Episode End

    Never terminates; truncated after ``episode_steps`` steps (default 100).

    ## Arguments

    ``params`` (``"fixed" | "small" | "med" | "large"`` or a dict of
    ``(low, high)`` for ``damping``, ``stiffness``, ``mass``), ``action_is_change``
    and ``episode_steps``. ``reset(options={"task": [c, k, m], "targets": t})``
    fixes the system.

    >>> import gymnasium as gym
    >>> import sciprob.control
    >>> env = gym.make("sciprob/MassSpringDamper-v0", params="large")
    >>> obs, info = env.reset(seed=0, options={"task": [4.0, 2.0, 20.0]})
    >>> obs.shape, info["task"].tolist()
    ((3,), [4.0, 2.0, 20.0])

    ## Version History

    * v0: Initial version, after ``msd_env.py`` of [1]_ (observation ``xtf``).

    References
    ----------
    .. [1] I. Char and J. Schneider, NeurIPS 2023; github.com/IanChar/GPIDE.
    """

    dynamics_cls = MassSpringDamperDynamics


class DoubleMassSpringDamperEnv(TrackingEnv):
    r"""Drive two masses in series (between two walls) to their own targets.

    ## Description

    Wall, spring ``k1`` and damper ``d1``, mass ``m1``, spring ``k2`` and damper
    ``d2``, mass ``m2``, spring ``k3`` and damper ``d3``, wall. Each mass has its
    own actuator. Each mass's target may switch once at mid-episode, and the
    eight parameters are hidden [1]_.

    ## Observation Space

    ``Box(6,)`` of float32:

    | Num | Name       | Min  | Max | Unit            |
    |-----|------------|------|-----|-----------------|
    | 0   | position_1 | -Inf | Inf | m               |
    | 1   | position_2 | -Inf | Inf | m               |
    | 2   | target_1   | -1.5 | 1.5 | m               |
    | 3   | target_2   | -1.5 | 1.5 | m               |
    | 4   | force_1    | -1   | 1   | F1 / 30 N       |
    | 5   | force_2    | -1   | 1   | F2 / 30 N       |

    ## Action Space

    ``Box(-1, 1, (2,))``: the change of each normalised force (default) or the
    forces themselves (``action_is_change=False``); ``F = 30 u`` N.

    ## Transition Dynamics

    Explicit Euler with ``dt = 0.2`` s:

    .. math::
        m_1 \dot v_1 &= -(k_1 + k_2) x_1 + k_2 x_2 - (d_1 + d_2) v_1 + d_2 v_2 + F_1, \\
        m_2 \dot v_2 &= k_2 x_1 - (k_2 + k_3) x_2 + d_2 v_1 - (d_2 + d_3) v_2 + F_2.

    ## Reward

    ``r_t = -(|x_1 - t_1| + |x_2 - t_2|)`` after the step, in ``(-inf, 0]``;
    doing nothing scores about -154 per episode [1]_.

    ## Starting State

    Positions ``~ U(-0.25, 0.25)``, velocities ``~ U(-0.1, 0.1)``, forces 0. Per
    mass, 1 or 2 targets (equally likely) ``~ U(-1.5, 1.5)``, the second from
    step 50. Dampers, springs and masses are drawn independently from the same
    ranges as :class:`MassSpringDamperEnv`.

    ## Episode End

    Never terminates; truncated after ``episode_steps`` steps (default 100).

    ## Arguments

    As :class:`MassSpringDamperEnv`; ``options["task"]`` is
    ``[d1, d2, d3, k1, k2, k3, m1, m2]``.

    >>> import gymnasium as gym
    >>> import sciprob.control
    >>> env = gym.make("sciprob/DoubleMassSpringDamper-v0", params="small")
    >>> obs, info = env.reset(seed=1)
    >>> obs.shape, info["task"].shape
    ((6,), (8,))

    ## Version History

    * v0: Initial version, after ``double_msd_env.py`` of [1]_.

    References
    ----------
    .. [1] I. Char and J. Schneider, NeurIPS 2023; github.com/IanChar/GPIDE.
    """

    dynamics_cls = DoubleMassSpringDamperDynamics


class BatchedMassSpringDamperEnv(BatchedTrackingEnv):
    """:class:`MassSpringDamperEnv` for ``num_envs`` systems at once (see :class:`BatchedTrackingEnv`)."""

    dynamics_cls = MassSpringDamperDynamics


class BatchedDoubleMassSpringDamperEnv(BatchedTrackingEnv):
    """:class:`DoubleMassSpringDamperEnv` for ``num_envs`` systems at once."""

    dynamics_cls = DoubleMassSpringDamperDynamics
