r"""Partially observed locomotion: ``MaskObservation`` and the ``sciprob/<Task>-{P,V}-v0`` tasks.

The GPIDE paper's high-dimensional suite [1]_ is Ni et al.'s PyBullet
``*BLT-{P,V}-v0`` [2]_: a locomotion task that shows only its joint positions
(``P``) or only its velocities (``V``). PyBullet is an 80 MB C++ source build
on Python 3.12, so sciprob builds the same kind of task on Gymnasium's MuJoCo
v5 environments (the ``mujoco`` wheel). Registered on import of this module:

==================================  ==========  ==============================  ============
id                                  full obs    kept indices                    kept (size)
==================================  ==========  ==============================  ============
``sciprob/Hopper-P-v0``             11          0-4 (qpos[1:])                  5
``sciprob/Hopper-V-v0``             11          5-10 (qvel)                     6
``sciprob/Walker2d-P-v0``           17          0-7 (qpos[1:])                  8
``sciprob/Walker2d-V-v0``           17          8-16 (qvel)                     9
``sciprob/HalfCheetah-P-v0``        17          0-7 (qpos[1:])                  8
``sciprob/HalfCheetah-V-v0``        17          8-16 (qvel)                     9
``sciprob/Ant-P-v0``                27          0-12 (qpos[2:])                 13
``sciprob/Ant-V-v0``                27          13-26 (qvel)                    14
==================================  ==========  ==============================  ============

The indices follow each v5 environment's ``observation_structure``; Ant is
built with ``include_cfrc_ext_in_observation=False`` (27 dimensions, like the
PyBullet Ant's state without contact forces). Episodes last at most 1000 steps.

Scores are normalised as in [1]_, [2]_:

.. math:: \mathrm{score} = 100\,(R - R_M) / (R_O - R_M),

where the Oracle ``O`` is SAC on the full state and the Markovian agent ``M`` memoryless SAC
on the masked task, both trained here at the same budget (the paper's PyBullet
constants do not apply to MuJoCo tasks).

References
----------
.. [1] I. Char and J. Schneider, NeurIPS 2023; ``rlkit/envs/wrappers.py`` of github.com/IanChar/GPIDE.
.. [2] T. Ni, B. Eysenbach and R. Salakhutdinov, "Recurrent Model-Free RL Can Be a Strong
   Baseline for Many POMDPs", ICML 2022; ``POMDPWrapper`` of github.com/twni2016/pomdp-baselines.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np

TASKS = ("Hopper", "Walker2d", "HalfCheetah", "Ant")
MAX_EPISODE_STEPS = 1000
_BASE_KWARGS = {"Ant": {"include_cfrc_ext_in_observation": False}}
# (qpos, qvel) entries of each v5 observation, from its `observation_structure` (a test checks them)
STRUCTURE = {"Hopper": (5, 6), "Walker2d": (8, 9), "HalfCheetah": (8, 9), "Ant": (13, 14)}


class MaskObservation(gym.ObservationWrapper):
    """Show only the observation entries ``keep`` of a flat Box observation.

    Parameters
    ----------
    env : gymnasium.Env
        Environment with a 1-D ``Box`` observation space.
    keep : sequence of int
        Indices to keep, in order (no duplicates, each in ``[0, obs_dim)``).

    Raises
    ------
    TypeError
        The observation space is not a 1-D Box.
    ValueError
        ``keep`` is empty, has duplicates or an index out of range.

    Examples
    --------
    >>> env = MaskObservation(gym.make("Pendulum-v1"), keep=[0, 1])
    >>> env.reset(seed=0)[0].shape
    (2,)
    """

    def __init__(self, env: gym.Env, keep: Sequence[int]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise TypeError(f"`MaskObservation` requires a 1-D Box observation space, got {space!r}")
        idx = np.asarray(list(keep))
        n = space.shape[0]
        if idx.size == 0 or idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"`keep` must be a non-empty sequence of integer indices, got {keep!r}")
        if len(set(idx.tolist())) != idx.size or idx.min() < 0 or idx.max() >= n:
            raise ValueError(
                f"`keep` must hold distinct indices in [0, {n}) for this {n}-dimensional observation, "
                f"got {idx.tolist()}"
            )
        self.keep = idx
        self.observation_space = gym.spaces.Box(space.low[idx], space.high[idx], dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Return ``observation[keep]``."""
        return np.asarray(observation)[self.keep]


def mask_indices(task: str, kind: str) -> list[int]:
    """Kept indices of ``sciprob/<task>-<kind>-v0`` (``kind`` is ``"P"`` or ``"V"``).

    Computed from the v5 environment's ``observation_structure``: the first
    ``qpos`` entries are positions, the next ``qvel`` entries velocities.
    """
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {list(TASKS)}, got {task!r}")
    if kind not in ("P", "V"):
        raise ValueError(f"`kind` must be 'P' (positions) or 'V' (velocities), got {kind!r}")
    n_pos, n_vel = STRUCTURE[task]
    return list(range(n_pos)) if kind == "P" else list(range(n_pos, n_pos + n_vel))


def _forward_mujoco_warning(message: str) -> None:
    warnings.warn(f"MuJoCo: {message}", UserWarning, stacklevel=2)


@contextmanager
def mujoco_warnings_as_python_warnings() -> Iterator[None]:
    """Turn MuJoCo's warnings into Python ``UserWarning`` while the block runs.

    MuJoCo's default handler prints each warning and appends it to
    ``MUJOCO_LOG.TXT`` in the current directory (HalfCheetah-v5's XML, for
    one, triggers a deprecation warning at every compilation). Inside this
    block they go through :mod:`warnings` instead, so Python's filters apply;
    the previous handler is restored on exit.
    """
    import mujoco

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(_forward_mujoco_warning)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def _base(task: str, **kwargs: Any) -> gym.Env:
    with mujoco_warnings_as_python_warnings():  # the model compiles here
        return gym.make(f"{task}-v5", max_episode_steps=None, **{**_BASE_KWARGS.get(task, {}), **kwargs})


def full_state_id(task: str) -> str:
    """Id of the fully observed task used for the Oracle (``sciprob/<task>-F-v0``)."""
    return f"sciprob/{task}-F-v0"


def make_masked(task: str, kind: str, **kwargs: Any) -> gym.Env:
    """Entry point of ``sciprob/<task>-<kind>-v0``: the v5 task with :class:`MaskObservation`.

    ``kind="F"`` keeps every entry (the Oracle's full state). ``kwargs`` go to
    the v5 environment (``xml_file``, ``frame_skip``, ``reset_noise_scale``, ...).
    """
    if kind == "F":
        return _base(task, **kwargs)
    return MaskObservation(_base(task, **kwargs), mask_indices(task, kind))


def normalised_score(ret: float, markovian: float, oracle: float) -> float:
    """``100 (ret - markovian) / (oracle - markovian)``; NaN when the two references coincide."""
    gap = oracle - markovian
    if not np.isfinite(gap) or abs(gap) < 1e-12:
        return float("nan")
    return float(100.0 * (ret - markovian) / gap)


def task_ids() -> list[str]:
    """Every registered masked id (P and V for each task)."""
    return [f"sciprob/{t}-{k}-v0" for t in TASKS for k in ("P", "V")]


for _task in TASKS:
    for _kind in ("P", "V", "F"):
        _id = f"sciprob/{_task}-{_kind}-v0"
        if _id not in gym.registry:
            gym.register(
                id=_id,
                entry_point=make_masked,
                kwargs={"task": _task, "kind": _kind},
                max_episode_steps=MAX_EPISODE_STEPS,
            )

__all__ = ["MAX_EPISODE_STEPS", "TASKS", "MaskObservation", "make_masked", "mask_indices", "normalised_score"]
