import csv

import numpy as np
import pytest
import torch

import sciprob.control  # noqa: F401
from sciprob.control.agent import HistorySAC
from sciprob.control.buffer import SequenceReplayBuffer
from sciprob.control.callbacks import BaseCallback
from sciprob.control.encoders import make_encoder
from sciprob.control.envs import ENV_IDS
from sciprob.control.pid import PIDController, pid_returns, tune_pid
from sciprob.control.sac import SACConfig, SACNetworks
from sciprob.control.training import ZeroPolicy, evaluate, make_vector_env, train
from sciprob.runtime import isolated_rng


def _filled_buffer(lengths=(100, 100, 60)):
    rng = np.random.default_rng(0)
    buf = SequenceReplayBuffer(1000, 100, 3, 2)
    for n in lengths:
        obs = rng.normal(size=(1, n + 1, 3))
        act = rng.uniform(-1, 1, (1, n, 2))
        rew = np.arange(n, dtype=float)[None]
        buf.add_episodes(obs, act, rew)
    return buf


def test_sequence_buffer_windows_are_aligned_and_masked():
    buf = _filled_buffer()
    b = buf.sample(64, 80, np.random.default_rng(1))
    assert b.obs.shape == (64, 81, 3) and b.actions.shape == (64, 80, 2) and b.mask.shape == (64, 80)
    # previous action of step t+1 is the action of step t; the reward index is the time step
    torch.testing.assert_close(b.prev_actions[:, 1:] * b.mask[..., None], b.actions * b.mask[..., None])
    torch.testing.assert_close(b.prev_rewards[:, 1:, 0] * b.mask, b.rewards * b.mask)
    starts = b.rewards[:, 0]
    assert torch.all(b.prev_rewards[starts == 0, 0] == 0)  # nothing before an episode's start
    short = b.mask.sum(1) < 80
    assert short.any() and torch.all(b.mask.sum(1)[short] == 60)  # the 60-step episode is padded
    with pytest.raises(ValueError, match="episode arrays"):
        buf.add_episodes(np.zeros((1, 5, 3)), np.zeros((1, 5, 2)), np.zeros((1, 5)))


@pytest.mark.parametrize(
    ("encoder", "precision"),
    [(e, "float32") for e in ("none", "gpide", "gpide-ess", "gru", "transformer")]
    + [("gpide", "bfloat16"), ("none", "bfloat16")],
)
def test_sac_update_reduces_the_critic_loss_on_a_fixed_batch(encoder, precision):
    buf = _filled_buffer()
    window = 1 if encoder == "none" else 8
    batch = buf.sample(8, window, np.random.default_rng(0))
    batch = batch._replace(rewards=batch.rewards / 100)
    with isolated_rng(0):
        cfg = SACConfig(lr=1e-3, batch_size=8, precision=precision)
        sac = SACNetworks(3, 2, lambda: make_encoder(encoder, 3, 2, window), cfg)
    gen = torch.Generator().manual_seed(0)
    assert sac.actor.encoder is not sac.critics[0].encoder is not sac.critics[1].encoder
    first = {k: float(v) for k, v in sac.update(batch, gen).items()}
    for _ in range(25):
        last = {k: float(v) for k, v in sac.update(batch, gen).items()}
    assert all(np.isfinite(v) for v in last.values())
    assert last["train/critic_loss"] < 0.5 * first["train/critic_loss"]
    assert set(first) == {"train/critic_loss", "train/actor_loss", "train/alpha_loss", "train/alpha"}
    assert all(p.dtype == torch.float32 for p in sac.parameters())  # autocast keeps float32 weights


def test_train_checkpoint_resume_and_csv(tmp_path):
    kwargs = dict(
        params="fixed",
        seed=3,
        num_envs=2,
        config=SACConfig(learning_starts=100, gradient_steps=0.05, batch_size=8),
        eval_every=200,
        eval_episodes=2,
        progress=False,
        window=4,
    )
    full = train(ENV_IDS["MassSpringDamper"], "gru", 600, **kwargs)
    ckpt = tmp_path / "ck.pt"

    class Stop(BaseCallback):  # interrupts the run at 400 steps, as a kill would
        def _on_step(self):
            return self.agent.num_timesteps < 400

    agent = HistorySAC(
        make_vector_env(ENV_IDS["MassSpringDamper"], 2, "fixed"), "gru", kwargs["config"], 3, "cpu", window=4
    )
    agent.learn(600, callback=Stop(), progress_bar=False, checkpoint_path=ckpt, checkpoint_every=200)
    resumed = train(
        ENV_IDS["MassSpringDamper"],
        "gru",
        600,
        checkpoint_path=ckpt,
        resume=True,
        log_csv=tmp_path / "log.csv",
        **kwargs,
    )
    assert resumed.agent.agent.num_timesteps == 600
    for a, b in zip(
        full.agent.agent.policy.state_dict().values(),
        resumed.agent.agent.policy.state_dict().values(),
        strict=True,
    ):
        torch.testing.assert_close(a, b)
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [float(r["step"]) for r in rows] == [600.0] and "train/critic_loss" in rows[-1]
    np.testing.assert_allclose(float(rows[-1]["eval/train"]), full.history[-1]["eval/train"], rtol=1e-6)


def test_train_rejects_bad_input_before_work():
    with pytest.raises(ValueError, match="`encoder`"):
        train(ENV_IDS["MassSpringDamper"], "lstm", 100)
    with pytest.raises(ValueError, match="`window`"):
        train(ENV_IDS["MassSpringDamper"], "gpide", 100, window=0)
    with pytest.raises(ValueError, match="`params`"):
        train(ENV_IDS["MassSpringDamper"], "none", 100, params="huge")
    with pytest.raises(ValueError, match="`steps`"):
        train(ENV_IDS["MassSpringDamper"], "none", 0)


def test_tuned_pid_reaches_the_reference_level():
    tuned = tune_pid(ENV_IDS["MassSpringDamper"], "fixed", episodes=16, maxiter=15)
    fixed = evaluate(tuned.controller, ENV_IDS["MassSpringDamper"], "fixed", episodes=64)
    large = evaluate(tuned.controller, ENV_IDS["MassSpringDamper"], "large", episodes=64)
    # reference tuned PID: -6.14 (fixed -> fixed) and -11.39 (fixed -> large)
    assert fixed.mean > -7.5 and large.mean > -14.5
    zero = evaluate(ZeroPolicy(1), ENV_IDS["MassSpringDamper"], "fixed", episodes=64)
    assert fixed.mean > zero.mean + 50


def test_pid_returns_match_evaluate():
    gains = np.array([[2.0, 0.1, 1.0]])
    ctrl = PIDController(gains[0], gym_spec_pid(), action_is_change=False)
    direct = pid_returns(ENV_IDS["MassSpringDamper"], "med", gains, episodes=8, seed=42)[0]
    np.testing.assert_allclose(direct, evaluate(ctrl, ENV_IDS["MassSpringDamper"], "med", 8, 42).returns)
    with pytest.raises(ValueError, match="`gains`"):
        PIDController([1.0, 2.0], gym_spec_pid())


def gym_spec_pid():
    from sciprob.control.envs.springs import MassSpringDamperDynamics

    return MassSpringDamperDynamics.PID


@pytest.mark.slow
def test_pid_feature_agent_learns_msd():
    cfg = SACConfig(batch_size=256, learning_starts=800)
    res = train(ENV_IDS["MassSpringDamper"], "pid", 4800, params="fixed", config=cfg, progress=False)
    assert evaluate(res.agent, ENV_IDS["MassSpringDamper"], "fixed", 32).mean > -15


def test_bfloat16_actor_step_reads_the_critics_after_their_step():
    # autocast keeps its bfloat16 copies of the weights until its region ends; the actor loss must
    # still see the critics' weights after the critic step, as in float32
    buf = _filled_buffer()
    batch = buf.sample(8, 8, np.random.default_rng(0))
    with isolated_rng(0):
        cfg = SACConfig(lr=1e-2, precision="bfloat16")
        sac = SACNetworks(3, 2, lambda: make_encoder("gpide", 3, 2, 8), cfg)
    first = sac.critics[0].q[0]
    calls = []
    first.register_forward_hook(lambda m, inp, out: calls.append((inp[0].detach(), out.detach())))
    before = first.weight.detach().clone()
    sac.update(batch, torch.Generator().manual_seed(0))
    assert not torch.equal(before, first.weight)  # the critic step moved the weights
    inp, out = calls[-1]  # the last call is the actor loss's
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fresh = first(inp)
    torch.testing.assert_close(out, fresh, rtol=0, atol=0)  # exact: the same bfloat16 product
