"""Throughput of sciprob's RL stack against baselines measured in the same process.

1. Environment steps per second of the batched MassSpringDamper (numpy,
   ``vector_entry_point``) against ``gymnasium.vector.SyncVectorEnv`` of the
   single environment, at 64 systems. Target: >= 20x.
2. SAC gradient steps per second of :class:`sciprob.control.sac.SACNetworks`
   (the update of ``HistorySAC``; no-history encoder, actor and critics
   [256, 256], batch 256) against Stable-Baselines3's ``SAC("MlpPolicy")`` with
   the same sizes on the same environment. Target: >= 1.5x.
3. GPIDE and GRU update steps per second at the tracking configuration of the
   paper (batch 32 windows x 100 steps, [24] actor, [256, 256] critics) against
   a plain implementation of the reference's update measured here on the same
   networks: every head's time weights rebuilt per call, separate summation and
   smoothing heads, actor gradients through the critics' weights (as
   ``sequential_sac.py`` does with ``loss.backward()``). Target: >= 3x for GPIDE.
   ``--bf16`` adds rows with ``SACConfig(precision="bfloat16")`` (bfloat16 autocast of the update).

Each pair is measured in interleaved repeats after a warm-up; the median ratio is printed.

Run: ``OMP_NUM_THREADS=1 python benchmarks/rl_throughput.py [--seconds 3] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

import sciprob.control  # noqa: F401 - registers the environments
from sciprob.control.buffer import SequenceReplayBuffer
from sciprob.control.encoders import GPIDEEncoder, _smoothing_weights, make_encoder
from sciprob.control.sac import SACConfig, SACNetworks, _masked_mean
from sciprob.runtime import isolated_rng

ENV_ID = "sciprob/MassSpringDamper-v0"


def env_steps_per_second(mode: str, num_envs: int, seconds: float) -> float:
    envs = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode=mode, params="large")
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (256, num_envs, 1)).astype(np.float32)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        envs.step(actions[n % 256])
        n += 1
    return n * num_envs / (time.perf_counter() - start)


def _rate(step: Callable[[], None], seconds: float, chunk: int = 1) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += chunk
    return n / (time.perf_counter() - start)


def _interleaved(cases: dict[str, Callable[[], None]], seconds: float, repeats: int, chunks=None) -> dict:
    chunks = chunks or {}
    for step in cases.values():  # warm-up
        for _ in range(3):
            step()
    rates: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, step in cases.items():
            rates[name].append(_rate(step, seconds, chunks.get(name, 1)))
    return rates


def _buffer(obs_dim: int, act_dim: int) -> SequenceReplayBuffer:
    rng = np.random.default_rng(0)
    buf = SequenceReplayBuffer(100_000, 100, obs_dim, act_dim)
    buf.add_episodes(
        rng.normal(size=(40, 101, obs_dim)),
        rng.uniform(-1, 1, (40, 100, act_dim)),
        rng.normal(size=(40, 100)),
    )
    return buf


# --- a plain implementation of the reference's update (the comparison baseline) ----------------


def _plain_gpide_forward(enc: GPIDEEncoder, obs, prev_action, prev_reward):
    """GPIDE forward as written from the reference: weights rebuilt per call, one einsum per head type."""
    b, length, _ = obs.shape
    diff = torch.cat([torch.zeros_like(obs[:, :1]), obs[:, 1:] - obs[:, :-1]], 1)
    inputs = {"obs": obs, "act": prev_action, "rew": prev_reward, "diff": diff}
    u = torch.cat([layer[1](enc._norm(layer[0], inputs[name])) for name, layer in enc.streams.items()], -1)
    d, heads = enc.config.head_dim, []
    if enc.config.n_attention:
        qkv = enc.attn_proj(enc.attn_norm(u)).view(b, length, 3, enc.config.n_attention, d)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
        heads.append(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2))
    if enc.sum_proj is not None:
        ones = torch.tril(torch.ones(length, length)).expand(enc.config.n_summation, length, length)
        heads.append(torch.einsum("htj,bjhd->bthd", ones, enc.sum_proj(u).view(b, length, -1, d)))
    if enc.es_proj is not None:
        w = _smoothing_weights(enc.config.es_alphas, length, u.device)
        heads.append(torch.einsum("htj,bjhd->bthd", w, enc.es_proj(u).view(b, length, -1, d)))
    z = enc._norm(enc.head_norm, torch.cat(heads, 2).reshape(b, length, -1))
    z = enc.decoder_fc(z)
    if enc.decoder_proj is not None:
        z = enc.decoder_proj(F.relu(z))
    return torch.tanh(z)


def _plain_encode(enc, obs, pa, pr):
    return _plain_gpide_forward(enc, obs, pa, pr) if isinstance(enc, GPIDEEncoder) else enc(obs, pa, pr)


def plain_update(net: SACNetworks, batch, gen: torch.Generator) -> None:
    """The update of the reference (``sequential_sac.py``), written plainly on ``net``'s modules."""
    cfg = net.config
    obs, pa, pr, mask = batch.obs, batch.prev_actions, batch.prev_rewards, batch.mask
    alpha = net.log_alpha.exp().detach()
    actor = net.actor
    h_pi = _plain_encode(actor.encoder, obs, pa, pr)
    x = torch.cat([h_pi, F.relu(actor.obs_embed(obs))], -1) if actor.obs_embed is not None else h_pi
    mean, log_std = actor.head(F.relu(actor.trunk(x)) if len(actor.trunk) else x).chunk(2, -1)
    log_std = log_std.clamp(-20, 2)
    pre = mean + log_std.exp() * torch.randn(mean.shape, generator=gen)
    logp = (-0.5 * ((pre - mean) / log_std.exp()) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
    logp = logp - (2 * (np.log(2.0) - pre - F.softplus(-2 * pre))).sum(-1)
    a_pi = torch.tanh(pre)
    with torch.no_grad():
        q_next = torch.min(
            torch.stack(
                [
                    c.value(_plain_encode(c.encoder, obs, pa, pr)[:, 1:], obs[:, 1:], a_pi[:, 1:])
                    for c in net.critics_target
                ]
            ),
            0,
        ).values
        y = batch.rewards + cfg.gamma * (1 - batch.terminals) * (q_next - alpha * logp[:, 1:])
    hs = [_plain_encode(c.encoder, obs, pa, pr) for c in net.critics]
    critic_loss = sum(
        _masked_mean((c.value(h[:, :-1], obs[:, :-1], batch.actions) - y) ** 2, mask)
        for c, h in zip(net.critics, hs, strict=True)
    )
    net.critic_opt.zero_grad()
    critic_loss.backward()
    net.critic_opt.step()
    q_pi = torch.min(
        torch.stack(
            [
                c.value(h[:, :-1].detach(), obs[:, :-1], a_pi[:, :-1])
                for c, h in zip(net.critics, hs, strict=True)
            ]
        ),
        0,
    ).values
    actor_loss = _masked_mean(alpha * logp[:, :-1] - q_pi, mask)
    net.actor_opt.zero_grad()
    actor_loss.backward()
    net.actor_opt.step()
    alpha_loss = -_masked_mean(net.log_alpha * (logp[:, :-1].detach() + net.target_entropy), mask)
    net.alpha_opt.zero_grad()
    alpha_loss.backward()
    net.alpha_opt.step()
    with torch.no_grad():
        for p, tp in zip(net.critics.parameters(), net.critics_target.parameters(), strict=True):
            tp.mul_(1 - cfg.tau).add_(p, alpha=cfg.tau)
        for b, tb in zip(net.critics.buffers(), net.critics_target.buffers(), strict=True):
            tb.copy_(b)
    _ = critic_loss.item(), actor_loss.item(), alpha_loss.item()  # the reference logs every step


def history_update_rows(seconds: float, repeats: int, bf16: bool) -> None:
    obs_dim, act_dim = 3, 1  # MassSpringDamper
    buf = _buffer(obs_dim, act_dim)
    for name in ("gpide", "gru"):
        nets = {}
        labels = {"sciprob": "float32", "plain": "float32"}
        if bf16:
            labels["sciprob-bf16"] = "bfloat16"
        for label, precision in labels.items():
            with isolated_rng(0):
                nets[label] = SACNetworks(
                    obs_dim,
                    act_dim,
                    lambda name=name: make_encoder(name, obs_dim, act_dim, 100),
                    SACConfig(precision=precision),
                )
        rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
        cases = {
            "sciprob": lambda: nets["sciprob"].update(buf.sample(32, 100, rng), gen),
            "plain": lambda: plain_update(nets["plain"], buf.sample(32, 100, rng), gen),
        }
        if bf16:
            cases["sciprob-bf16"] = lambda: nets["sciprob-bf16"].update(buf.sample(32, 100, rng), gen)
        rates = _interleaved(cases, seconds, repeats)
        ratio = statistics.median(a / b for a, b in zip(rates["sciprob"], rates["plain"], strict=True))
        med = {k: statistics.median(v) for k, v in rates.items()}
        line = (
            f"{name.upper()} update steps/s (batch 32 x window 100): sciprob {med['sciprob']:.1f}, "
            f"plain reference {med['plain']:.1f}, ratio {ratio:.2f}x"
        )
        if bf16:
            r16 = statistics.median(a / b for a, b in zip(rates["sciprob-bf16"], rates["plain"], strict=True))
            line += f"; bf16 autocast {statistics.median(rates['sciprob-bf16']):.1f} ({r16:.2f}x)"
        print(line + (" (target >= 3x)" if name == "gpide" else ""), flush=True)


def sac_rows(seconds: float, repeats: int, batch: int, bf16: bool) -> None:
    try:
        from stable_baselines3 import SAC
    except ImportError as exc:  # benchmark-only dependency
        raise SystemExit('stable-baselines3 is needed: pip install "sciprob[bench]"') from exc
    env = gym.make(ENV_ID)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    cfg = SACConfig(
        gamma=0.99,
        tau=0.005,
        actor_hidden=(256, 256),
        critic_hidden=(256, 256),
        obs_embed_dim=0,
        critic_embed_dim=0,
        batch_size=batch,
    )
    with isolated_rng(0):
        net = SACNetworks(obs_dim, act_dim, lambda: make_encoder("none", obs_dim, act_dim), cfg)
        net16 = SACNetworks(
            obs_dim,
            act_dim,
            lambda: make_encoder("none", obs_dim, act_dim),
            replace(cfg, precision="bfloat16"),
        )
    buf, rng, gen = _buffer(obs_dim, act_dim), np.random.default_rng(0), torch.Generator().manual_seed(0)
    model = SAC(
        "MlpPolicy",
        env,
        learning_starts=2000,
        batch_size=batch,
        gamma=0.99,
        tau=0.005,
        policy_kwargs={"net_arch": [256, 256]},
        device="cpu",
        seed=0,
    )
    model.learn(total_timesteps=2000)  # fills the buffer with random actions, no training
    chunk = 20
    cases = {
        "sciprob": lambda: net.update(buf.sample(batch, 1, rng), gen),
        "sb3": lambda: model.train(gradient_steps=chunk, batch_size=batch),
    }
    if bf16:
        cases["sciprob-bf16"] = lambda: net16.update(buf.sample(batch, 1, rng), gen)
    rates = _interleaved(cases, seconds, repeats, chunks={"sb3": chunk})
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = statistics.median(a / b for a, b in zip(rates["sciprob"], rates["sb3"], strict=True))
    line = (
        f"SAC gradient steps/s (MLP [256, 256], batch {batch}): sciprob {med['sciprob']:,.1f}, "
        f"Stable-Baselines3 {med['sb3']:,.1f}, ratio {ratio:.2f}x"
    )
    if bf16:
        r16 = statistics.median(a / b for a, b in zip(rates["sciprob-bf16"], rates["sb3"], strict=True))
        line += f"; bf16 autocast {med['sciprob-bf16']:,.1f} ({r16:.2f}x)"
    print(line + " (target >= 1.5x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per case and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per pair")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--bf16", action="store_true", help="also time the update under bfloat16 autocast")
    parser.add_argument("--only", choices=["env", "sac", "history"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.only in (None, "env"):
        batched = env_steps_per_second("vector_entry_point", args.num_envs, args.seconds)
        sync = env_steps_per_second("sync", args.num_envs, args.seconds)
        print(
            f"env steps/s at {args.num_envs} systems: batched {batched:,.0f}, SyncVectorEnv {sync:,.0f}, "
            f"ratio {batched / sync:.1f}x (target >= 20x)",
            flush=True,
        )
    if args.only in (None, "sac"):
        sac_rows(args.seconds, args.repeats, args.batch, args.bf16)
    if args.only in (None, "history"):
        history_update_rows(args.seconds, args.repeats, args.bf16)


if __name__ == "__main__":
    main()
