"""Sequence replay buffer: whole episodes stored, fixed-length windows sampled with masks."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


class SequenceBatch(NamedTuple):
    """A batch of windows of ``W`` transitions.

    Attributes
    ----------
    obs : Tensor of shape (batch, W + 1, obs_dim)
        Observations ``o_s .. o_{s+W}`` (the last is the next observation of step ``W - 1``).
    prev_actions : Tensor of shape (batch, W + 1, act_dim)
        ``a_{t-1}`` aligned with ``obs`` (zero before the episode's first step).
    prev_rewards : Tensor of shape (batch, W + 1, 1)
        ``r_{t-1}`` aligned with ``obs``.
    actions : Tensor of shape (batch, W, act_dim)
        ``a_t``.
    rewards : Tensor of shape (batch, W)
        ``r_t``.
    terminals : Tensor of shape (batch, W)
        1 where ``o_{t+1}`` is terminal (no bootstrap).
    mask : Tensor of shape (batch, W)
        1 for real transitions, 0 for padding past the episode's end.
    """

    obs: Tensor
    prev_actions: Tensor
    prev_rewards: Tensor
    actions: Tensor
    rewards: Tensor
    terminals: Tensor
    mask: Tensor


class SequenceReplayBuffer:
    """Ring buffer of episodes of at most ``max_steps`` steps.

    Storage (preallocated, float32):

    ===============  ==================================
    array            shape
    ===============  ==================================
    ``obs``          (capacity, max_steps + 1, obs_dim)
    ``actions``      (capacity, max_steps, act_dim)
    ``rewards``      (capacity, max_steps)
    ``terminals``    (capacity, max_steps)
    ``lengths``      (capacity,)
    ===============  ==================================

    Parameters
    ----------
    capacity_steps : int
        Transitions kept (rounded up to whole episodes); the reference uses 1e6.
    max_steps : int
        Longest episode.
    obs_dim, act_dim : int
        Sizes.
    """

    def __init__(self, capacity_steps: int, max_steps: int, obs_dim: int, act_dim: int) -> None:
        if capacity_steps < 1 or max_steps < 1:
            raise ValueError(
                f"`capacity_steps` and `max_steps` must be >= 1, got {capacity_steps}, {max_steps}"
            )
        self.capacity = -(-capacity_steps // max_steps)
        self.max_steps = max_steps
        self.obs = np.zeros((self.capacity, max_steps + 1, obs_dim), np.float32)
        self.actions = np.zeros((self.capacity, max_steps, act_dim), np.float32)
        self.rewards = np.zeros((self.capacity, max_steps), np.float32)
        self.terminals = np.zeros((self.capacity, max_steps), np.float32)
        self.lengths = np.zeros(self.capacity, np.int64)
        self.pos = 0
        self.full = False

    @property
    def n_episodes(self) -> int:
        """Stored episodes."""
        return self.capacity if self.full else self.pos

    @property
    def n_steps(self) -> int:
        """Stored transitions."""
        return int(self.lengths[: self.n_episodes].sum())

    def add_episodes(
        self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminals: np.ndarray | None = None
    ) -> None:
        """Store ``n`` episodes of equal length ``T``.

        Parameters
        ----------
        obs : ndarray of shape (n, T + 1, obs_dim)
        actions : ndarray of shape (n, T, act_dim)
        rewards : ndarray of shape (n, T)
        terminals : ndarray of shape (n, T), default=None (no terminal)
        """
        n, steps = rewards.shape
        if steps > self.max_steps or obs.shape[:2] != (n, steps + 1) or actions.shape[:2] != (n, steps):
            raise ValueError(
                f"episode arrays do not match: obs {obs.shape}, actions {actions.shape}, "
                f"rewards {rewards.shape}, max_steps {self.max_steps}"
            )
        for i in range(n):
            j = self.pos
            self.obs[j, : steps + 1] = obs[i]
            self.actions[j, :steps] = actions[i]
            self.rewards[j, :steps] = rewards[i]
            self.terminals[j, :steps] = 0.0 if terminals is None else terminals[i]
            self.lengths[j] = steps
            self.pos = (self.pos + 1) % self.capacity
            self.full = self.full or self.pos == 0

    def sample(
        self, batch_size: int, window: int, rng: np.random.Generator, device: torch.device | str = "cpu"
    ) -> SequenceBatch:
        """Sample ``batch_size`` windows of ``window`` transitions.

        A window starts uniformly in ``[0, max(len - window, 0)]`` of a uniformly
        drawn episode, so windows no longer than the episode have no padding.
        """
        if self.n_episodes == 0:
            raise RuntimeError("cannot sample from an empty SequenceReplayBuffer")
        ep = rng.integers(self.n_episodes, size=batch_size)
        lens = self.lengths[ep]
        start = (rng.random(batch_size) * (np.maximum(lens - window, 0) + 1)).astype(np.int64)
        offs = np.arange(window + 1)
        t_obs = np.minimum(start[:, None] + offs, lens[:, None])  # (B, W+1)
        t_act = np.minimum(start[:, None] + offs[:-1], lens[:, None] - 1)  # (B, W)
        mask = (start[:, None] + offs[:-1]) < lens[:, None]
        t_prev = start[:, None] + offs - 1  # (B, W+1)
        has_prev = (t_prev >= 0) & (t_prev < lens[:, None])
        t_prev = np.clip(t_prev, 0, self.max_steps - 1)
        e = ep[:, None]
        prev_a = self.actions[e, t_prev] * has_prev[..., None]
        prev_r = self.rewards[e, t_prev] * has_prev

        def tt(x: np.ndarray) -> Tensor:
            return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)

        return SequenceBatch(
            obs=tt(self.obs[e, t_obs]),
            prev_actions=tt(prev_a),
            prev_rewards=tt(prev_r[..., None]),
            actions=tt(self.actions[e, t_act]),
            rewards=tt(self.rewards[e, t_act]),
            terminals=tt(self.terminals[e, t_act]),
            mask=tt(mask),
        )

    def state_dict(self) -> dict:
        """Arrays and counters for checkpoints."""
        return {
            k: getattr(self, k) for k in ("obs", "actions", "rewards", "terminals", "lengths", "pos", "full")
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        for k, v in state.items():
            setattr(self, k, v)
