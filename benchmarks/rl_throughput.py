"""Throughput of sciprob's RL stack against baselines measured in the same process.

1. Environment steps per second of the batched MassSpringDamper (numpy,
   ``vector_entry_point``) against ``gymnasium.vector.SyncVectorEnv`` of the
   single environment, at 64 systems. Target: >= 20x.
2. SAC gradient steps per second of :class:`sciprob.control.sac.HistorySAC`
   (no-history encoder, actor and critics [256, 256], batch 256) against
   Stable-Baselines3's ``SAC("MlpPolicy")`` with the same sizes on the same
   environment. Target: >= 1x. Needs ``pip install "sciprob[bench]"``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/rl_throughput.py [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

import sciprob.control  # noqa: F401 - registers the environments
from sciprob.control.buffer import SequenceReplayBuffer
from sciprob.control.encoders import make_encoder
from sciprob.control.sac import HistorySAC, SACConfig

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


def sciprob_sac_updates_per_second(seconds: float, batch: int) -> float:
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
    sac = HistorySAC(obs_dim, act_dim, lambda: make_encoder("none", obs_dim, act_dim), cfg)
    rng = np.random.default_rng(0)
    buf = SequenceReplayBuffer(100_000, 100, obs_dim, act_dim)
    buf.add_episodes(
        rng.normal(size=(20, 101, obs_dim)),
        rng.uniform(-1, 1, (20, 100, act_dim)),
        rng.normal(size=(20, 100)),
    )
    for _ in range(5):
        sac.update(buf.sample(batch, 1, rng))
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sac.update(buf.sample(batch, 1, rng))
        n += 1
    return n / (time.perf_counter() - start)


def sb3_sac_updates_per_second(seconds: float, batch: int) -> float:
    try:
        from stable_baselines3 import SAC
    except ImportError as exc:  # benchmark-only dependency
        raise SystemExit('stable-baselines3 is needed: pip install "sciprob[bench]"') from exc
    env = gym.make(ENV_ID)
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
    model.train(gradient_steps=5, batch_size=batch)
    n, start, chunk = 0, time.perf_counter(), 20
    while time.perf_counter() - start < seconds:
        model.train(gradient_steps=chunk, batch_size=batch)
        n += chunk
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per case")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)

    batched = env_steps_per_second("vector_entry_point", args.num_envs, args.seconds)
    sync = env_steps_per_second("sync", args.num_envs, args.seconds)
    print(
        f"env steps/s at {args.num_envs} systems: batched {batched:,.0f}, SyncVectorEnv {sync:,.0f}, "
        f"ratio {batched / sync:.1f}x (target >= 20x)"
    )

    ours = sciprob_sac_updates_per_second(args.seconds, args.batch)
    sb3 = sb3_sac_updates_per_second(args.seconds, args.batch)
    print(
        f"SAC gradient steps/s (MLP [256, 256], batch {args.batch}): sciprob {ours:,.1f}, "
        f"Stable-Baselines3 {sb3:,.1f}, ratio {ours / sb3:.2f}x (target >= 1x)"
    )


if __name__ == "__main__":
    main()
