import gymnasium as gym
import numpy as np
import pytest
import torch

import sciprob.control  # noqa: F401
from sciprob.control.encoders import (
    ENCODERS,
    GPIDEConfig,
    GPIDEEncoder,
    _smoothing_weights,
    make_encoder,
)
from sciprob.control.envs import ENV_IDS
from sciprob.control.wrappers import PIDFeatures, PIDFeaturesVector


def test_pid_features_match_the_reference_definitions():
    env = PIDFeatures(gym.make(ENV_IDS["MassSpringDamper"], params="large"))
    obs, _ = env.reset(seed=3)
    core = env.unwrapped.dynamics
    np.testing.assert_allclose(obs[3:], [obs[1] - obs[0], 0.0, 0.0], atol=1e-6)
    integral = 0.0
    rng = np.random.default_rng(0)
    for _ in range(30):
        v_prev = core.state[0, 1]
        obs, *_ = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
        p = core.current_target()[0, 0] - core.state[0, 0]
        integral += p * 0.2
        # P = target - x, I = sum P dt, D = -v_{t-1} (msd_env.py of the reference)
        np.testing.assert_allclose(obs[3:], [p, integral, -v_prev], rtol=1e-4, atol=1e-4)


def test_vector_pid_features_match_single_wrapper_across_autoreset():
    n = 3
    vec = PIDFeaturesVector(
        gym.make_vec(
            ENV_IDS["DoubleMassSpringDamper"],
            num_envs=n,
            vectorization_mode="vector_entry_point",
            params="small",
        )
    )
    sync = gym.vector.SyncVectorEnv(
        [lambda: PIDFeatures(gym.make(ENV_IDS["DoubleMassSpringDamper"], params="small")) for _ in range(n)]
    )
    o1, _ = vec.reset(seed=5)
    o2, _ = sync.reset(seed=5)
    np.testing.assert_allclose(o1, o2, atol=1e-5)
    rng = np.random.default_rng(1)
    for _ in range(210):
        a = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        o1 = vec.step(a)[0]
        o2 = sync.step(a)[0]
        np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-4)


def test_pid_encoder_equals_wrapper_over_an_episode():
    env = PIDFeatures(gym.make(ENV_IDS["Tokamak"]))
    obs, _ = env.reset(seed=2)
    traj = [obs]
    for _ in range(20):
        traj.append(env.step(np.array([0.3], np.float32))[0])
    traj = torch.tensor(np.stack(traj))[None]
    enc = make_encoder("pid", 3, 1, window=21, pid_spec=env.pid_spec)
    out = enc(traj[..., :3], torch.zeros(1, 21, 1), torch.zeros(1, 21, 1))
    torch.testing.assert_close(out[0], traj[0, :, 3:], rtol=1e-4, atol=1e-4)


def test_pid_wrapper_rejects_unsupported_spaces():
    env = gym.make("CartPole-v1")
    with pytest.raises(TypeError, match="PIDFeatures"):
        PIDFeatures(env)


@pytest.mark.parametrize("name", [e for e in ENCODERS if e != "pid"] + ["pid"])
def test_encoders_are_causal_with_one_interface(name):
    torch.manual_seed(0)
    obs_dim, act_dim, length = 5, 2, 12
    from sciprob.control.envs.base import PIDSpec

    enc = make_encoder(name, obs_dim, act_dim, window=length, pid_spec=PIDSpec((0, 1), (2, 3), 0.1)).eval()
    obs, pa, pr = torch.randn(3, length, obs_dim), torch.randn(3, length, act_dim), torch.randn(3, length, 1)
    out = enc(obs, pa, pr)
    assert out.shape == (3, length, enc.out_dim)
    obs2, pa2, pr2 = obs.clone(), pa.clone(), pr.clone()
    obs2[:, 7] += 1.0
    pa2[:, 7] += 1.0
    pr2[:, 7] += 1.0
    out2 = enc(obs2, pa2, pr2)
    torch.testing.assert_close(out2[:, :7], out[:, :7])
    if name != "none":
        assert not torch.allclose(out2[:, 8:], out[:, 8:])


def test_window_below_one_is_a_clear_error():
    with pytest.raises(ValueError, match="`window`"):
        make_encoder("gru", 3, 1, window=0)
    with pytest.raises(ValueError, match="`encoder`"):
        make_encoder("lstm", 3, 1)


def test_exponential_smoothing_weights():
    w = _smoothing_weights((0.25, 1.0), 6, torch.device("cpu"))
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 6))  # normalised over the window
    torch.testing.assert_close(w[1], torch.eye(6))  # alpha = 1 keeps the current value
    assert torch.all(w[0].triu(1) == 0)  # causal
    assert w[0, 5, 4] / w[0, 5, 3] == pytest.approx(1 / 0.75)  # geometric decay


def test_gpide_summation_head_is_a_running_sum():
    cfg = GPIDEConfig(n_attention=0, n_summation=1, es_alphas=(), head_dim=4, out_dim=4, decoder_hidden=0)
    enc = GPIDEEncoder(3, 1, 10, cfg).eval()
    u = torch.randn(2, 10, enc.sum_proj.in_features)
    torch.testing.assert_close(torch.cumsum(enc.sum_proj(u), 1)[:, -1], enc.sum_proj(u).sum(1))


def test_gpide_presets_follow_the_reference():
    t, loc = GPIDEConfig.tracking(), GPIDEConfig.locomotion()
    assert (t.n_attention, t.n_summation, t.es_alphas, t.head_dim, t.out_dim) == (
        2,
        1,
        (0.25, 0.5, 1.0),
        16,
        64,
    )
    assert (loc.n_attention, loc.es_alphas, loc.head_dim, loc.out_dim, loc.decoder_hidden) == (
        3,
        (0.25, 1.0),
        32,
        128,
        0,
    )
    assert make_encoder("gpide-locomotion", 4, 2).window == 64
    with pytest.raises(ValueError, match="es_alphas"):
        GPIDEConfig(es_alphas=(0.0,))
