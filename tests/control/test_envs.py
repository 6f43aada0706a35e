import doctest
import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sciprob.control
from sciprob.control import wrappers
from sciprob.control.envs import ENV_IDS, navigation, springs, tokamak
from sciprob.control.training import ZeroPolicy, evaluate

CASES = [
    ("MassSpringDamper", "fixed"),
    ("MassSpringDamper", "large"),
    ("DoubleMassSpringDamper", "small"),
    ("Navigation", "sim"),
    ("Navigation", "real"),
    ("Tokamak", "sim"),
]
HEADINGS = [
    "Description",
    "Observation Space",
    "Action Space",
    "Transition Dynamics",
    "Reward",
    "Starting State",
    "Episode End",
    "Arguments",
    "Version History",
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "params"), CASES)
def test_check_env_passes(name, params):
    env = gym.make(ENV_IDS[name], params=params)
    check_env(env.unwrapped)
    env.reset(seed=0)
    steps = 0
    while not env.step(env.action_space.sample() * 0)[3]:
        steps += 1
    assert steps + 1 == 100  # default episode length


@pytest.mark.parametrize("mode", ["single", "vector"])
def test_episode_steps_argument_sets_the_truncation(mode):
    if mode == "single":
        env = gym.make(ENV_IDS["MassSpringDamper"], episode_steps=5)
        env.reset(seed=0)
        truncs = [env.step(np.zeros(1))[3] for _ in range(5)]
    else:
        env = gym.make_vec(
            ENV_IDS["MassSpringDamper"], num_envs=3, vectorization_mode="vector_entry_point", episode_steps=5
        )
        env.reset(seed=0)
        truncs = [bool(env.step(np.zeros((3, 1)))[3].all()) for _ in range(5)]
    assert truncs == [False] * 4 + [True]


def test_step_before_reset_raises():
    with pytest.raises(gym.error.ResetNeeded):
        springs.MassSpringDamperEnv().step(np.zeros(1))
    vec = gym.make_vec(ENV_IDS["Navigation"], num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(gym.error.ResetNeeded):
        vec.step(np.zeros((2, 2)))


def test_physically_invalid_parameters_are_errors():
    ranges = {"damping": (4, 4), "stiffness": (2, 2), "mass": (0, 0)}
    with pytest.raises(ValueError, match=r"`params\['mass'\]`.*> 0"):
        gym.make(ENV_IDS["MassSpringDamper"], params=ranges)
    with pytest.raises(ValueError, match=r"`params\['damping'\]`.*>= 0"):
        springs.MassSpringDamperEnv({"damping": (-1, 4), "stiffness": (1, 2), "mass": (1, 2)})
    env = springs.MassSpringDamperEnv()
    with pytest.raises(ValueError, match="positive masses"):
        env.reset(seed=0, options={"task": [4.0, 2.0, 0.0]})
    with pytest.raises(ValueError, match="finite"):
        springs.MassSpringDamperEnv({"damping": (1, 4), "stiffness": (1, float("nan")), "mass": (1, 2)})
    with pytest.raises(ValueError, match=r"`params\['mass'\]`"):
        gym.make_vec(
            ENV_IDS["Navigation"],
            num_envs=2,
            vectorization_mode="vector_entry_point",
            params={"mass": (-1.0, 2.0), "friction": (0, 0), "kinetic_ratio": (0, 0)},
        )


@pytest.mark.parametrize(
    ("name", "params", "reference"),
    [
        ("MassSpringDamper", "fixed", -79.0),
        ("DoubleMassSpringDamper", "fixed", -154.0),
        ("Navigation", "sim", -67.0),
    ],
)
def test_do_nothing_returns_match_reference(name, params, reference):
    act_dim = gym.spec(ENV_IDS[name]).entry_point.dynamics_cls.ACT_DIM
    res = evaluate(ZeroPolicy(act_dim), ENV_IDS[name], params, episodes=2000, seed=7)
    assert abs(res.mean - reference) <= 0.10 * abs(reference), res.mean


@pytest.mark.parametrize(("name", "params"), CASES)
def test_batched_env_matches_sync_vector_env(name, params):
    n = 5
    sync = gym.make_vec(ENV_IDS[name], num_envs=n, vectorization_mode="sync", params=params)
    batched = gym.make_vec(ENV_IDS[name], num_envs=n, vectorization_mode="vector_entry_point", params=params)
    assert type(batched).__name__.startswith("Batched")
    o1, _ = sync.reset(seed=11)
    o2, _ = batched.reset(seed=11)
    # exact by construction: the same element-wise IEEE operations per system, batched or not
    np.testing.assert_array_equal(o1, o2)
    rng = np.random.default_rng(0)
    for _ in range(230):  # crosses two autoresets
        a = rng.uniform(-1, 1, size=(n, batched.single_action_space.shape[0])).astype(np.float32)
        s, b = sync.step(a), batched.step(a)
        for x, y in zip(s[:4], b[:4]):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    "cls",
    [
        springs.MassSpringDamperEnv,
        springs.DoubleMassSpringDamperEnv,
        navigation.NavigationEnv,
        tokamak.TokamakEnv,
    ],
)
def test_docstring_follows_gymnasium_layout(cls):
    found = re.findall(r"^\s*## (.+)$", cls.__doc__, flags=re.M)
    assert found == HEADINGS
    assert "| Num | Name" in cls.__doc__ and "gym.make(" in cls.__doc__ and "reset(seed=" in cls.__doc__


@pytest.mark.parametrize("module", [springs, navigation, tokamak, wrappers])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_msd_settles_at_static_deflection():
    env = springs.MassSpringDamperEnv("fixed")
    env.reset(seed=0, options={"task": [4.0, 2.0, 20.0], "targets": [0.0]})
    env.step(np.array([0.5], np.float32))  # force 0.5 * 10 N, then hold it
    for _ in range(600):
        env.step(np.zeros(1, np.float32))
    x = env.dynamics.state[0, 0]
    assert x == pytest.approx(5.0 / 2.0, abs=1e-4)  # F / k


def test_dmsd_settles_at_stiffness_solution():
    env = springs.DoubleMassSpringDamperEnv("fixed", action_is_change=False)
    d, k, m = [3.0, 4.0, 5.0], [1.0, 2.0, 3.0], [20.0, 30.0]
    env.reset(seed=0, options={"task": d + k + m})
    u = np.array([0.3, -0.2], np.float32)
    for _ in range(1500):
        env.step(u)
    stiffness = np.array([[k[0] + k[1], -k[1]], [-k[1], k[1] + k[2]]])
    np.testing.assert_allclose(env.dynamics.state[0, :2], np.linalg.solve(stiffness, 30 * u), atol=1e-4)


def test_navigation_static_friction_holds_a_weak_push():
    env = navigation.NavigationEnv("real")
    env.reset(seed=0, options={"task": [0.25, 0.5, 35.0]})  # mu_s m = 8.75 N > 5 N
    for _ in range(20):
        obs, *_ = env.step(np.array([0.5, -0.5], np.float32))
    np.testing.assert_array_equal(obs[:2], 0.0)  # exact: static friction zeroes the velocity
    env.reset(seed=0, options={"task": [0.0, 0.0, 20.0]})  # frictionless: it moves
    obs, *_ = env.step(np.array([0.5, 0.0], np.float32))
    obs, *_ = env.step(np.array([0.5, 0.0], np.float32))
    assert obs[0] == pytest.approx(0.1 * 5.0 / 20.0)


def test_unknown_parameter_range_is_a_clear_error():
    with pytest.raises(ValueError, match=r"`params`.*'huge'"):
        gym.make(ENV_IDS["MassSpringDamper"], params="huge")
    with pytest.raises(ValueError, match="`params`"):
        gym.make_vec(
            ENV_IDS["Navigation"], num_envs=2, vectorization_mode="vector_entry_point", params="fixed"
        )
    with pytest.raises(ValueError, match="low <= high"):
        springs.MassSpringDamperEnv({"damping": (5, 4), "stiffness": (1, 2), "mass": (1, 2)})
    with pytest.raises(NotImplementedError, match="fusion_control"):
        tokamak.TokamakEnv("real")


def test_action_outside_space_is_a_clear_error():
    env = gym.make(ENV_IDS["MassSpringDamper"])
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"`action`.*\[-1, 1\]"):
        env.unwrapped.step(np.array([1.5]))
    with pytest.raises(ValueError, match="shape"):
        env.unwrapped.step(np.zeros(2))
    vec = gym.make_vec(ENV_IDS["Navigation"], num_envs=3, vectorization_mode="vector_entry_point")
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="`action`"):
        vec.step(np.full((3, 2), -2.0))


def test_registration_on_import():
    for env_id in ENV_IDS.values():
        assert gym.spec(env_id).vector_entry_point is not None
    assert sciprob.control.ENV_IDS == ENV_IDS


def test_public_api_is_reachable():
    for name in sciprob.control.__all__:
        assert getattr(sciprob.control, name) is not None
    with pytest.raises(AttributeError):
        sciprob.control.no_such_thing  # noqa: B018
