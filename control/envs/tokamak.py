"""A toy tokamak: track the normalised plasma pressure beta_N with the injected beam power."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sciprob.control.envs.base import BatchedTrackingEnv, PIDSpec, SystemDraw, TrackingDynamics, TrackingEnv

# Constants of ``fusion_toy_env.py`` in [1].
BETAN_MU, BETAN_SIG = 1.7797029, 1.2159256
PINJ_MU, PINJ_SIG = 5817915.52734375, 4223408.935546875
PINJ_STEP = 0.25 * PINJ_SIG
TRANSITION_COEF = 2e2
BETA_COEF = 5.0
DT = 0.025
MOMENTUM = 0.5
TARGET_BOUNDS = (1.5, 2.25)
PINJ_BOUNDS = (5e5, 1.2e7)
W_BOUNDS = (0.0, 5e5)
DW_BOUNDS = (-8.5e5, 8.5e5)
W_START, DW_START, PINJ_START = (5e4, 2.5e3), (0.0, 2.5e3), (1.0e6, 1e5)

TOKAMAK_PRESETS = {"sim": {"a_minor": (0.589, 0.02), "b_t": (2.75, 0.1), "i_p": (1e6, 1e5)}}


class TokamakDynamics(TrackingDynamics):
    """Batched toy tokamak (state ``W, dW/dt, P_inj``), the vectorised rollout of [1]."""

    NAME = "Tokamak"
    NORMAL_PARAMS = True
    PARAM_PRESETS = TOKAMAK_PRESETS
    OBS_NAMES = ("beta_n", "target", "power")
    OBS_LOW = (-np.inf, (TARGET_BOUNDS[0] - BETAN_MU) / BETAN_SIG, (PINJ_BOUNDS[0] - PINJ_MU) / PINJ_SIG)
    OBS_HIGH = (np.inf, (TARGET_BOUNDS[1] - BETAN_MU) / BETAN_SIG, (PINJ_BOUNDS[1] - PINJ_MU) / PINJ_SIG)
    ACT_DIM = 1
    PID = PIDSpec(position=(0,), target=(1,), dt=DT, integrate_initial_error=True)

    def __init__(self, n: int, params: str | Mapping, action_is_change: bool, episode_steps: int = 100):
        if params == "real":
            raise NotImplementedError(
                "`params='real'` of Tokamak needs the external `fusion_control` simulator of the reference, "
                "which is not public; use params='sim' or explicit (mean, std) ranges"
            )
        super().__init__(n, params, action_is_change, episode_steps)

    def sample(self, rng: np.random.Generator, options: Mapping[str, Any] | None) -> SystemDraw:
        """Draw (a, B_t, I_p) from normals, a target ``~ U(1.5, 2.25)``, then (W, dW, P_inj)."""
        task = np.array([rng.normal(*self.ranges[k]) for k in ("a_minor", "b_t", "i_p")])
        target = rng.uniform(*TARGET_BOUNDS)
        start = np.array(
            [rng.normal(*W_START), rng.normal(*DW_START), np.clip(rng.normal(*PINJ_START), *PINJ_BOUNDS)]
        )
        fixed = self.options_task(options, 3)
        fixed_targets = self.options_targets(options, 1)
        targets = np.full((self.episode_steps, 1), target)
        return SystemDraw(
            task if fixed is None else fixed, targets if fixed_targets is None else fixed_targets, start
        )

    def beta_n(self) -> np.ndarray:
        """``beta_N = 5 W a B_t / I_p`` of shape (n,)."""
        a, b_t, i_p = self.task.T
        return BETA_COEF * self.state[:, 0] * a * b_t / i_p

    def advance(self, action: np.ndarray) -> np.ndarray:
        """Power update, then stored-energy dynamics; reward ``-|beta_N' - target| / sigma``."""
        w, dw, p = self.state.T
        _, b_t, i_p = self.task.T
        a = np.clip(action[:, 0], -1.0, 1.0)
        if self.action_is_change:
            new_p = np.clip(p + a * PINJ_STEP, *PINJ_BOUNDS)
        else:
            radius = (PINJ_BOUNDS[1] - PINJ_BOUNDS[0]) / 2
            new_p = np.clip(a * radius + PINJ_BOUNDS[0] + radius, p - PINJ_STEP, p + PINJ_STEP)
        drive = new_p - TRANSITION_COEF * w * i_p**-0.93 * b_t**-0.15 * p**0.69
        new_dw = MOMENTUM * dw + (1 - MOMENTUM) * np.clip(drive, *DW_BOUNDS)
        new_w = np.clip(w + DT * dw, *W_BOUNDS)
        self.state = np.stack([new_w, new_dw, new_p], axis=1)
        self.t += 1
        return -np.abs(self.beta_n() - self.current_target()[:, 0]) / BETAN_SIG

    def observe(self) -> np.ndarray:
        """``[(beta_N - mu)/sigma, (target - mu)/sigma, (P_inj - mu_P)/sigma_P]``."""
        return np.stack(
            [
                (self.beta_n() - BETAN_MU) / BETAN_SIG,
                (self.current_target()[:, 0] - BETAN_MU) / BETAN_SIG,
                (self.state[:, 2] - PINJ_MU) / PINJ_SIG,
            ],
            axis=1,
        ).astype(np.float32)


class TokamakEnv(TrackingEnv):
    r"""Track a normalised plasma pressure (beta_N) target by changing the beam power.

    ## Description

    A toy model of a tokamak's stored energy ``W`` driven by neutral-beam power
    ``P_inj`` [1]_. The controller sees beta_N, its target and the power
    (all standardised), and must infer the plasma shape (minor radius ``a``,
    toroidal field ``B_t``, plasma current ``I_p``) from history.

    ## Observation Space

    ``Box(3,)`` of float32, standardised with the reference's constants:

    | Num | Name   | Min   | Max  | Unit                              |
    |-----|--------|-------|------|-----------------------------------|
    | 0   | beta_n | -Inf  | Inf  | (beta_N - 1.780) / 1.216          |
    | 1   | target | -0.23 | 0.39 | (target - 1.780) / 1.216          |
    | 2   | power  | -1.26 | 1.46 | (P_inj - 5.82e6 W) / 4.22e6 W     |

    ## Action Space

    ``Box(-1, 1, (1,))``: ``P_inj' = clip(P_inj + 0.25 sigma_P a, 5e5, 1.2e7)``
    (``action_is_change=True``, default); otherwise ``a`` sets the power on
    ``[5e5, 1.2e7]`` W, rate-limited to ``0.25 sigma_P`` per step.

    ## Transition Dynamics

    With ``dt = 0.025``:

    .. math::
        dW' &= \tfrac12 dW + \tfrac12\,\mathrm{clip}(P_{inj}' - 200\, W I_p^{-0.93}
               B_t^{-0.15} P_{inj}^{0.69}), \qquad W' = \mathrm{clip}(W + dt\, dW), \\
        \beta_N &= 5\, W a B_t / I_p .

    ## Reward

    ``r_t = -|beta_N' - target| / 1.216``, in ``(-inf, 0]``.

    ## Starting State

    ``W ~ N(5e4, 2.5e3)``, ``dW ~ N(0, 2.5e3)``, ``P_inj ~ N(1e6, 1e5)`` (clipped),
    target ``~ U(1.5, 2.25)``; ``"sim"``: ``a ~ N(0.589, 0.02)``,
    ``B_t ~ N(2.75, 0.1)``, ``I_p ~ N(1e6, 1e5)``.

    ## Episode End

    Never terminates; truncated after ``episode_steps`` steps (default 100).

    ## Arguments

    ``params`` (``"sim"`` or a dict of ``(mean, std)`` for ``a_minor``, ``b_t``,
    ``i_p``; ``"real"`` needs the reference's non-public simulator and raises
    ``NotImplementedError``), ``action_is_change``, ``episode_steps``.

    >>> import gymnasium as gym
    >>> import sciprob.control
    >>> env = gym.make("sciprob/Tokamak-v0")
    >>> obs, info = env.reset(seed=0, options={"task": [0.589, 2.75, 1e6]})
    >>> obs.shape, info["task"].tolist()
    ((3,), [0.589, 2.75, 1000000.0])

    ## Version History

    * v0: Initial version, after ``fusion_toy_env.py`` (``ToyFusionEnv``) of [1]_.

    References
    ----------
    .. [1] I. Char and J. Schneider, NeurIPS 2023; github.com/IanChar/GPIDE.
    """

    dynamics_cls = TokamakDynamics

    def __init__(
        self, params: str | Mapping = "sim", action_is_change: bool = True, episode_steps: int = 100
    ):
        super().__init__(params, action_is_change, episode_steps)


class BatchedTokamakEnv(BatchedTrackingEnv):
    """:class:`TokamakEnv` for ``num_envs`` systems at once."""

    dynamics_cls = TokamakDynamics

    def __init__(
        self,
        num_envs: int,
        params: str | Mapping = "sim",
        action_is_change: bool = True,
        episode_steps: int = 100,
        max_episode_steps: int = 100,
    ):
        super().__init__(num_envs, params, action_is_change, episode_steps, max_episode_steps)
