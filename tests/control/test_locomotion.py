"""Partially observed MuJoCo tasks, the mask wrapper and the normalised score."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sciprob.control  # noqa: F401
from sciprob.control.locomotion import (
    STRUCTURE,
    TASKS,
    MaskObservation,
    mask_indices,
    normalised_score,
    task_ids,
)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("env_id", task_ids())
def test_every_masked_task_passes_check_env(env_id):
    env = gym.make(env_id)
    check_env(env, skip_render_check=True)
    assert env.spec.max_episode_steps == 1000


@pytest.mark.parametrize("task", TASKS)
def test_masks_follow_the_v5_observation_structure(task):
    full = gym.make(f"sciprob/{task}-F-v0")
    s = full.unwrapped.observation_structure
    assert STRUCTURE[task] == (s["qpos"], s["qvel"])
    obs_full, _ = full.reset(seed=3)
    for kind in ("P", "V"):
        env = gym.make(f"sciprob/{task}-{kind}-v0")
        obs, _ = env.reset(seed=3)
        # exact: the same deterministic simulation from the same seed, only indexed
        np.testing.assert_array_equal(obs, obs_full[mask_indices(task, kind)])
        action = np.full(env.action_space.shape, 0.3, env.action_space.dtype)
        np.testing.assert_array_equal(env.step(action)[0], full.step(action)[0][mask_indices(task, kind)])
        full.reset(seed=3)
    positions, velocities = mask_indices(task, "P"), mask_indices(task, "V")
    assert sorted(positions + velocities) == list(range(full.observation_space.shape[0]))
    assert len(velocities) == s["qvel"]


def test_mask_rejects_bad_indices_and_spaces():
    env = gym.make("Pendulum-v1")
    with pytest.raises(ValueError, match=r"`keep`.*\[0, 3\)"):
        MaskObservation(env, [0, 3])
    with pytest.raises(ValueError, match="`keep`.*distinct"):
        MaskObservation(env, [1, 1])
    with pytest.raises(ValueError, match="`keep`"):
        MaskObservation(env, [])
    with pytest.raises(TypeError, match="1-D Box"):
        MaskObservation(gym.make("Blackjack-v1"), [0])


def test_normalised_score():
    assert normalised_score(100.0, 100.0, 300.0) == pytest.approx(0.0)
    assert normalised_score(300.0, 100.0, 300.0) == pytest.approx(100.0)
    assert normalised_score(50.0, 100.0, 300.0) == pytest.approx(-25.0)
    assert np.isnan(normalised_score(1.0, 2.0, 2.0))


def test_mujoco_warnings_become_python_warnings_not_a_log_file(tmp_path, monkeypatch):
    import mujoco

    monkeypatch.chdir(tmp_path)
    before = mujoco.get_mju_user_warning()
    with pytest.warns(UserWarning, match="MuJoCo: .*settotalmass"):  # HalfCheetah-v5's XML
        gym.make("sciprob/HalfCheetah-P-v0").reset(seed=0)
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    assert mujoco.get_mju_user_warning() is before  # the previous handler is restored
