"""The SB3-style HistorySAC agent on environments it was not written for."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector.vector_env import AutoresetMode

import sciprob.control  # noqa: F401
from sciprob.control.agent import HistorySAC
from sciprob.control.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from sciprob.control.encoders import GRUEncoder
from sciprob.control.sac import SACConfig

SMALL = SACConfig(
    gamma=0.99, tau=0.005, actor_hidden=(32,), critic_hidden=(32,), batch_size=16, learning_starts=50
)


def _stored_episodes(agent):
    buf = agent.replay_buffer
    out = []
    for j in range(buf.n_episodes):
        n = buf.lengths[j]
        out.append((buf.obs[j, : n + 1].copy(), buf.actions[j, :n].copy(), buf.terminals[j, :n].copy()))
    return out


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_transitions_and_terminals_match_a_manual_rollout_under_autoreset(mode):
    # InvertedPendulum terminates within a few dozen random steps: several episodes end on `terminated`.
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("InvertedPendulum-v5")], autoreset_mode=mode)
    cfg = SACConfig(learning_starts=10_000, batch_size=4)
    agent = HistorySAC(envs, "none", cfg, seed=5, device="cpu")
    agent.learn(300, progress_bar=False)
    assert agent.num_timesteps == 300  # reset steps of NEXT_STEP are not transitions
    episodes = _stored_episodes(agent)
    assert len(episodes) >= 3
    # replay the stored actions in a fresh single environment from the same seed
    env = gym.make("InvertedPendulum-v5")
    obs, _ = env.reset(seed=5)
    for k, (ep_obs, ep_act, ep_term) in enumerate(episodes):
        if k:
            obs, _ = env.reset()
        np.testing.assert_allclose(ep_obs[0], obs, rtol=1e-6, atol=1e-6)
        for t, a in enumerate(ep_act):
            obs, _, term, trunc, _ = env.step(a * 3.0)  # stored in [-1, 1]; the space is [-3, 3]
            np.testing.assert_allclose(ep_obs[t + 1], obs, rtol=1e-5, atol=1e-5)
            assert bool(ep_term[t]) == (term and t == len(ep_act) - 1)
        assert term or trunc
        assert ep_term[-1] == 1.0  # random actions drop the pole: termination, no bootstrap


def test_truncation_is_bootstrapped_and_long_episodes_are_cut():
    cfg = SACConfig(learning_starts=10_000, batch_size=4)
    agent = HistorySAC("Pendulum-v1", "none", cfg, seed=0, device="cpu", max_episode_steps=150)
    agent.learn(400, progress_bar=False)
    lengths = agent.replay_buffer.lengths[: agent.replay_buffer.n_episodes].tolist()
    assert lengths == [150, 50, 150, 50]  # each 200-step episode is cut at 150
    assert agent.replay_buffer.terminals.sum() == 0  # Pendulum only truncates: always bootstrap


@pytest.mark.slow
def test_no_history_agent_learns_pendulum_like_sb3_budget():
    cfg = SACConfig(
        gamma=0.99,
        tau=0.005,
        lr=1e-3,
        actor_hidden=(256, 256),
        critic_hidden=(256, 256),
        batch_size=256,
        learning_starts=1000,
    )
    agent = HistorySAC("Pendulum-v1", "none", cfg, seed=0, device="cpu").learn(8000, progress_bar=False)
    mean, _ = agent.evaluate(episodes=10, seed=1000)
    assert mean > -300  # random policy: about -1250; SB3's SAC at 8k steps: about -150 to -250


def test_no_history_agent_learns_pendulum_quickly():
    # an unseen classic-control task at a small budget: 4,000 steps (seeds 0 and 1 reach about -165;
    # a random policy about -1,250; SB3's SAC needs roughly 5-10k steps for -200)
    cfg = SACConfig(
        gamma=0.99,
        tau=0.02,
        lr=2e-3,
        actor_hidden=(64, 64),
        critic_hidden=(64, 64),
        batch_size=64,
        learning_starts=500,
    )
    agent = HistorySAC("Pendulum-v1", "none", cfg, seed=0, device="cpu")
    random_mean, _ = agent.evaluate(episodes=8, seed=1000)  # the untrained policy
    agent.learn(4000, progress_bar=False)
    mean, _ = agent.evaluate(episodes=8, seed=1000)
    assert random_mean < -900
    assert mean > -400, mean


@pytest.mark.slow
def test_no_history_agent_is_on_par_with_sb3_at_the_same_budget():
    # measured 2026-12-02, seeds 0-2: see docs/gpide.md ("The agent against SB3")
    SAC = pytest.importorskip("stable_baselines3").SAC

    steps, kw = 4000, dict(gamma=0.99, tau=0.02, batch_size=64, learning_starts=500)
    ours = HistorySAC(
        "Pendulum-v1", "none", SACConfig(lr=2e-3, actor_hidden=(64, 64), critic_hidden=(64, 64), **kw), seed=0
    )
    ours.learn(steps, progress_bar=False)
    sb3 = SAC(
        "MlpPolicy", "Pendulum-v1", learning_rate=2e-3, policy_kwargs={"net_arch": [64, 64]}, seed=0, **kw
    )
    sb3.learn(steps)
    env = gym.make_vec("Pendulum-v1", num_envs=8, vectorization_mode="sync")
    obs, _ = env.reset(seed=1000)
    total = np.zeros(8)
    for _ in range(200):
        obs, r, *_ = env.step(sb3.predict(obs, deterministic=True)[0])
        total += r
    mean_ours, _ = ours.evaluate(episodes=8, seed=1000)
    assert mean_ours > total.mean() - 100, (mean_ours, total.mean())


def test_save_load_round_trip_gives_identical_actions_and_continues(tmp_path):
    agent = HistorySAC("Pendulum-v1", "gru", SMALL, seed=1, device="cpu", window=6, max_episode_steps=50)
    agent.learn(120, progress_bar=False)
    path = agent.save(tmp_path / "agent.pt")
    loaded = HistorySAC.load(path, device="cpu")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(4, 3)).astype(np.float32)
    s1 = s2 = None
    for t in range(5):
        a1, s1 = agent.predict(obs, s1, reward=None if t == 0 else np.ones(4))
        a2, s2 = loaded.predict(obs, s2, reward=None if t == 0 else np.ones(4))
        np.testing.assert_array_equal(a1, a2)  # exact: the same weights and inputs in one process
        obs = obs + 0.1
    assert loaded.num_timesteps == 120
    n_stored = loaded.replay_buffer.n_steps
    assert n_stored == agent.replay_buffer.n_steps > 0
    step_before = loaded.policy.critic_opt.state_dict()["state"][0]["step"].item()
    assert step_before == agent.policy.critic_opt.state_dict()["state"][0]["step"].item()
    # learn after load continues the run: counters, buffer and optimiser state carry on
    loaded.learn(80, progress_bar=False)
    assert loaded.num_timesteps == 200
    assert loaded.replay_buffer.n_steps > n_stored
    assert loaded.policy.critic_opt.state_dict()["state"][0]["step"].item() > step_before


def test_predict_follows_sb3_recurrent_convention():
    agent = HistorySAC("Pendulum-v1", "gru", SMALL, seed=2, device="cpu", window=4)
    obs = np.zeros(3, np.float32)
    action, state = agent.predict(obs)
    assert action.shape == (1,) and -2.0 <= action[0] <= 2.0  # rescaled to Pendulum's [-2, 2]
    assert state.count.tolist() == [1]
    for _ in range(6):
        action, state = agent.predict(obs, state, reward=-1.0)
    assert state.count.tolist() == [4]  # the window is full
    _, fresh = agent.predict(obs, state, episode_start=np.array([True]))
    assert fresh.count.tolist() == [1]
    with pytest.raises(ValueError, match="`reward`"):
        agent.predict(obs, state)  # the GRU reads rewards
    with pytest.raises(ValueError, match="`observation`"):
        agent.predict(np.zeros(5))


def test_callbacks_evaluate_checkpoint_and_stop(tmp_path):
    agent = HistorySAC("Pendulum-v1", "none", SMALL, seed=3, device="cpu")
    evals = EvalCallback(eval_freq=100, n_eval_episodes=2, seed=10)
    ckpts = CheckpointCallback(150, tmp_path)

    class StopAt(BaseCallback):
        def _on_step(self):
            return self.agent.num_timesteps < 320

    agent.learn(1000, callback=[evals, ckpts, StopAt()], progress_bar=False)
    assert agent.num_timesteps == 320
    assert [e["step"] for e in evals.evaluations] == [100.0, 200.0, 300.0]
    assert all(-2000 < e["mean"] < 0 for e in evals.evaluations)
    assert [p.name for p in ckpts.saved] == ["history_sac_150_steps.pt", "history_sac_300_steps.pt"]
    assert HistorySAC.load(ckpts.saved[0], device="cpu").num_timesteps == 150


def test_user_encoder_instance_and_vector_env():
    envs = gym.make_vec("Pendulum-v1", num_envs=3, vectorization_mode="sync")
    agent = HistorySAC(envs, GRUEncoder(3, 1, window=5, hidden=16), SMALL, seed=4, device="cpu")
    agent.learn(150, progress_bar=False)
    assert agent.window == 5 and agent.policy.actor.encoder.out_dim == 16
    assert agent.policy.actor.encoder is not agent.policy.critics[0].encoder
    mean, std = agent.evaluate("Pendulum-v1", episodes=3, seed=0)
    assert np.isfinite(mean) and std >= 0


def test_bad_input_is_a_one_line_error_before_work():
    with pytest.raises(TypeError, match="Box action space.*continuous actions") as exc:
        HistorySAC("CartPole-v1", "none")
    assert "\n" not in str(exc.value)
    with pytest.raises(TypeError, match="Box observation space.*FlattenObservation"):
        HistorySAC("Blackjack-v1", "none")
    agent = HistorySAC("Pendulum-v1", "none", SMALL, device="cpu")
    with pytest.raises(ValueError, match="`total_timesteps`"):
        agent.learn(0)
    with pytest.raises(TypeError, match="`total_timesteps`"):
        agent.learn(1.5)
    assert agent.num_timesteps == 0 and agent.replay_buffer.n_episodes == 0
    with pytest.raises(ValueError, match="`encoder`"):
        HistorySAC("Pendulum-v1", "lstm")
    with pytest.raises(ValueError, match="`encoder` was built"):
        HistorySAC("Pendulum-v1", GRUEncoder(4, 1, window=3))
    with pytest.raises(TypeError, match="`env`"):
        HistorySAC(42, "none")
    with pytest.raises(ValueError, match="`seed`"):
        HistorySAC("Pendulum-v1", "none", seed=-1)


def test_learning_does_not_touch_global_rngs():
    torch.manual_seed(123)
    np.random.seed(123)
    expected_t, expected_n = torch.rand(1), np.random.rand()
    torch.manual_seed(123)
    np.random.seed(123)
    HistorySAC("Pendulum-v1", "gru", SMALL, seed=0, device="cpu", window=3).learn(80, progress_bar=False)
    assert torch.rand(1).item() == expected_t.item()  # exact: the same draw from the same state
    assert np.random.rand() == expected_n


def test_a_non_finite_loss_stops_learning_or_warns():
    from gymnasium.wrappers import TransformReward

    from sciprob.runtime import NonFiniteLossError, NonFiniteLossWarning

    env = TransformReward(gym.make("Pendulum-v1"), lambda r: float("nan"))
    agent = HistorySAC(env, "none", SMALL, seed=0, device="cpu", max_episode_steps=20)
    with pytest.raises(NonFiniteLossError, match="HistorySAC"):
        agent.learn(100, progress_bar=False)
    assert agent.num_timesteps == SMALL.learning_starts  # stopped at the first update
    agent = HistorySAC(env, "none", SMALL, seed=0, device="cpu", max_episode_steps=20)
    with pytest.warns(NonFiniteLossWarning):
        agent.learn(60, progress_bar=False, on_nonfinite="warn")
    assert agent.num_timesteps == 60
