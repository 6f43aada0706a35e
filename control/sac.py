r"""Soft actor-critic on histories: twin critics, automatic entropy, masked sequence losses.

The actor and each critic own a separate history encoder (``share_encoders:
False`` in [1]_). One update on a batch of windows (shapes of
:class:`~sciprob.control.buffer.SequenceBatch`, ``t = 0..W-1``):

.. math::
    y_t &= r_t + \gamma (1 - d_t)\,\big[\min_i \bar Q_i(h'_{t+1}, a'_{t+1})
           - \alpha \log\pi(a'_{t+1} | h^\pi_{t+1})\big],\\
    L_Q &= \textstyle\sum_{i,t} m_t (Q_i(h_t, a_t) - y_t)^2 / \sum_t m_t,\\
    L_\pi &= \textstyle\sum_t m_t (\alpha \log\pi(\tilde a_t|h^\pi_t)
             - \min_i Q_i(h_t, \tilde a_t)) / \sum_t m_t,\\
    L_\alpha &= -\log\alpha \cdot \textstyle\sum_t m_t (\log\pi(\tilde a_t|h^\pi_t)
                + \bar{\mathcal H}) / \sum_t m_t,

with ``m`` the padding mask, ``h`` the encodings of each network over the
window and target ``bar Q`` updated by Polyak averaging (SB3 ``sac.py`` order:
critics, actor, temperature, targets).

References
----------
.. [1] I. Char and J. Schneider, NeurIPS 2023; ``sequential_sac.py`` of github.com/IanChar/GPIDE.
.. [2] T. Haarnoja et al., "Soft Actor-Critic Algorithms and Applications", arXiv:1812.05905.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sciprob.control.buffer import SequenceBatch
from sciprob.control.encoders import HistoryEncoder, NoHistoryEncoder

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


@dataclass(frozen=True)
class SACConfig:
    """Hyper-parameters of :class:`~sciprob.control.agent.HistorySAC` (defaults: the tracking runs of [1]_).

    Attributes
    ----------
    gamma : float
        Discount (0.95 for tracking, 0.99 for locomotion).
    tau : float
        Polyak rate of the target critics.
    lr : float
        Adam learning rate of every network and of ``log alpha``.
    actor_hidden, critic_hidden : tuple of int
        MLP widths of the heads ([24] and [256, 256] in [1]_).
    obs_embed_dim : int
        ``ReLU(Linear(o_t))`` size beside the history encoding in the actor (0: raw ``o_t``).
    critic_embed_dim : int
        ``ReLU(Linear([o_t, a_t]))`` size in the critics (0: raw ``a_t``).
    batch_size : int
        Windows per update (32 for histories, 256 transitions without).
    target_entropy : float or None
        Default ``-act_dim``.
    buffer_size : int
        Replay capacity in transitions (1e6 in [1]_ and SB3).
    learning_starts : int
        Transitions collected with uniform random actions before learning.
    gradient_steps : float
        Gradient steps per collected transition (1 in [1]_ and SB3).
    precision : {"float32", "bfloat16"}
        ``"bfloat16"`` runs the update's matrix products under bfloat16 autocast
        (parameters, optimiser states, attention, Q-values and log-probabilities
        stay float32); about 3x faster matrix products on CPUs with AVX-512 BF16.
    """

    gamma: float = 0.95
    tau: float = 0.01
    lr: float = 3e-4
    actor_hidden: tuple[int, ...] = (24,)
    critic_hidden: tuple[int, ...] = (256, 256)
    obs_embed_dim: int = 16
    critic_embed_dim: int = 64
    batch_size: int = 32
    target_entropy: float | None = None
    buffer_size: int = 1_000_000
    learning_starts: int = 1000
    gradient_steps: float = 1.0
    precision: Literal["float32", "bfloat16"] = "float32"

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"`gamma` must lie in [0, 1), got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"`tau` must lie in (0, 1], got {self.tau}")
        if self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"`batch_size` and `lr` must be positive, got {self.batch_size}, {self.lr}")
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"`precision` must be 'float32' or 'bfloat16', got {self.precision!r}")
        if self.buffer_size < 1 or self.learning_starts < 0 or not self.gradient_steps >= 0:
            raise ValueError(
                f"`buffer_size` must be >= 1, `learning_starts` and `gradient_steps` >= 0, got "
                f"{self.buffer_size}, {self.learning_starts}, {self.gradient_steps}"
            )


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


class Actor(nn.Module):
    """Tanh-Gaussian policy on ``[encoding_t, ReLU(Linear(o_t))]``.

    Parameters
    ----------
    encoder : HistoryEncoder
        Its own encoder.
    obs_dim, act_dim : int
        Sizes.
    hidden : tuple of int
        MLP widths.
    obs_embed_dim : int
        Observation embedding size (0: the raw observation, or nothing for ``NoHistoryEncoder``).
    """

    def __init__(
        self, encoder: HistoryEncoder, obs_dim: int, act_dim: int, hidden: tuple[int, ...], obs_embed_dim: int
    ) -> None:
        super().__init__()
        self.encoder = encoder
        plain = isinstance(encoder, NoHistoryEncoder)
        self.obs_embed = nn.Linear(obs_dim, obs_embed_dim) if obs_embed_dim > 0 and not plain else None
        extra = 0 if plain else (obs_embed_dim or obs_dim)
        self.trunk = _mlp([encoder.out_dim + extra, *hidden])
        self.head = nn.Linear(hidden[-1] if hidden else encoder.out_dim + extra, 2 * act_dim)

    def forward(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-std of the pre-tanh Gaussian, each (batch, length, act_dim)."""
        x = self.encoder(obs, prev_action, prev_reward)
        if self.obs_embed is not None:
            x = torch.cat([x, F.relu(self.obs_embed(obs))], -1)
        elif not isinstance(self.encoder, NoHistoryEncoder):
            x = torch.cat([x, obs], -1)
        h = F.relu(self.trunk(x)) if len(self.trunk) else x
        with torch.autocast(h.device.type, enabled=False):  # the Gaussian's parameters in float32
            mean, log_std = self.head(h.float()).chunk(2, -1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(
        self,
        obs: Tensor,
        prev_action: Tensor,
        prev_reward: Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Actions in [-1, 1] (batch, length, act_dim) and their log-probabilities (batch, length)."""
        mean, log_std = self(obs, prev_action, prev_reward)
        if deterministic:
            return torch.tanh(mean), torch.zeros(mean.shape[:-1], device=mean.device)
        std = log_std.exp()
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        pre = mean + std * noise
        logp = (-0.5 * ((pre - mean) / std) ** 2 - log_std - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum(
            -1
        )
        # tanh change of variables, numerically stable form (SB3 / CleanRL)
        logp = logp - (2 * (torch.log(torch.tensor(2.0)) - pre - F.softplus(-2 * pre))).sum(-1)
        return torch.tanh(pre), logp


class Critic(nn.Module):
    """Q-network on ``[encoding_t, ReLU(Linear([o_t, a_t]))]`` with its own encoder."""

    def __init__(
        self, encoder: HistoryEncoder, obs_dim: int, act_dim: int, hidden: tuple[int, ...], embed_dim: int
    ) -> None:
        super().__init__()
        self.encoder = encoder
        plain = isinstance(encoder, NoHistoryEncoder)
        self.embed = nn.Linear(obs_dim + act_dim, embed_dim) if embed_dim > 0 and not plain else None
        extra = act_dim if self.embed is None else embed_dim
        self.q = _mlp([encoder.out_dim + extra, *hidden, 1])

    def encode(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor) -> Tensor:
        """Return the encodings (batch, length, out_dim)."""
        return self.encoder(obs, prev_action, prev_reward)

    def value(self, encoding: Tensor, obs: Tensor, action: Tensor) -> Tensor:
        """Q-values (batch, length) from encodings, observations and actions of equal length."""
        if self.embed is not None:
            x = torch.cat([encoding, F.relu(self.embed(torch.cat([obs, action], -1)))], -1)
        else:
            x = torch.cat([encoding, action], -1)
        h = self.q[:-1](x)
        # the last layer runs in float32 under autocast: Q-values and TD targets keep full precision
        with torch.autocast(h.device.type, enabled=False):
            return self.q[-1](h.float()).squeeze(-1)


class SACNetworks(nn.Module):
    """The networks and one update of SAC on histories (used by :class:`~sciprob.control.agent.HistorySAC`).

    The actor and the twin critics read histories through separate encoders.

    Parameters
    ----------
    obs_dim, act_dim : int
        Sizes.
    encoder_factory : callable
        ``() -> HistoryEncoder``; called three times (actor, two critics).
    config : SACConfig, default=SACConfig()
        Hyper-parameters.

    Attributes
    ----------
    actor : Actor
    critics : nn.ModuleList of two Critic
    critics_target : nn.ModuleList
        Polyak copies (kept in eval mode).
    log_alpha : nn.Parameter
        Log temperature.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        encoder_factory: Callable[[], HistoryEncoder],
        config: SACConfig | None = None,
    ) -> None:
        super().__init__()
        cfg = config or SACConfig()
        self.config = cfg
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.actor = Actor(encoder_factory(), obs_dim, act_dim, cfg.actor_hidden, cfg.obs_embed_dim)
        self.window = self.actor.encoder.window
        self.critics = nn.ModuleList(
            Critic(encoder_factory(), obs_dim, act_dim, cfg.critic_hidden, cfg.critic_embed_dim)
            for _ in range(2)
        )
        self.critics_target = copy.deepcopy(self.critics).eval()
        self.critics_target.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.zeros(()))
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=cfg.lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.lr, fused=True)
        self._actor_params = [p for p in self.actor.parameters() if p.requires_grad]

    def update(self, batch: SequenceBatch, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """One gradient step of critics, actor and temperature.

        Parameters
        ----------
        batch : SequenceBatch
            Windows of ``W`` transitions (``W = 1`` without history).
        generator : torch.Generator, default=None
            Source of the policy's sampling noise (the global one if ``None``).

        Returns
        -------
        dict of str to 0-d Tensor
            ``train/critic_loss``, ``train/actor_loss``, ``train/alpha_loss``, ``train/alpha``
            (detached tensors: reading them with ``float`` synchronises, so callers do it rarely).
        """
        cfg = self.config
        obs, pa, pr, mask = batch.obs, batch.prev_actions, batch.prev_rewards, batch.mask
        alpha = self.log_alpha.exp().detach()
        self.actor.train()
        self.critics.train()
        # Forward passes run in two autocast regions (bfloat16): autocast caches its casts of the
        # weights until the region ends, so one region would show the actor the critics' weights
        # from before the critic step. Backward passes run outside autocast, as PyTorch advises.
        with self._precision(obs.device.type):
            # (B, W+1, A) and (B, W+1)
            actions_pi, logp_pi = self.actor.sample(obs, pa, pr, generator=generator)

            # Critic loss: soft Bellman targets from the target critics at t+1.
            with torch.no_grad():
                obs_next, a_next = obs[:, 1:], actions_pi[:, 1:]
                q_next = torch.minimum(
                    *(c.value(c.encode(obs, pa, pr)[:, 1:], obs_next, a_next) for c in self.critics_target)
                )
                y = batch.rewards + cfg.gamma * (1 - batch.terminals) * (q_next - alpha * logp_pi[:, 1:])
            obs_now = obs[:, :-1]
            encodings = [c.encode(obs, pa, pr)[:, :-1] for c in self.critics]
            critic_loss = sum(
                _masked_mean((c.value(h, obs_now, batch.actions) - y) ** 2, mask)
                for c, h in zip(self.critics, encodings, strict=True)
            )
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        # Actor loss on the fresh critics' heads (encodings held fixed). Gradients are
        # taken for the actor's parameters only, so no critic weight gradient is computed.
        a_now = actions_pi[:, :-1]
        with self._precision(obs.device.type):
            q_pi = torch.minimum(
                *(c.value(h.detach(), obs_now, a_now) for c, h in zip(self.critics, encodings, strict=True))
            )
            actor_loss = _masked_mean(alpha * logp_pi[:, :-1] - q_pi, mask)
        params = self._actor_params
        grads = torch.autograd.grad(actor_loss, params)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        self.actor_opt.step()

        alpha_loss = -_masked_mean(self.log_alpha * (logp_pi[:, :-1].detach() + self.target_entropy), mask)
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()

        self._polyak()
        return {
            "train/critic_loss": critic_loss.detach(),
            "train/actor_loss": actor_loss.detach(),
            "train/alpha_loss": alpha_loss.detach(),
            "train/alpha": alpha,
        }

    def _precision(self, device_type: str) -> contextlib.AbstractContextManager:
        """Autocast to bfloat16 under ``precision="bfloat16"``, else nothing."""
        if self.config.precision == "bfloat16":
            return torch.autocast(device_type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def _polyak(self) -> None:
        if not hasattr(self, "_pairs"):
            self._pairs = (
                list(self.critics_target.parameters()),
                list(self.critics.parameters()),
                list(self.critics_target.buffers()),
                list(self.critics.buffers()),
            )
        target, online, target_buf, online_buf = self._pairs
        torch._foreach_lerp_(target, online, self.config.tau)
        if target_buf:
            torch._foreach_copy_(target_buf, online_buf)

    @torch.no_grad()
    def act(
        self,
        obs: Tensor,
        prev_action: Tensor,
        prev_reward: Tensor,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Return the action of the last step of each window: (batch, act_dim) in [-1, 1]."""
        self.actor.eval()
        return self.actor.sample(obs, prev_action, prev_reward, deterministic, generator)[0][:, -1]

    def training_state(self) -> dict:
        """Networks and optimisers, for checkpoints."""
        return {
            "model": self.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "alpha_opt": self.alpha_opt.state_dict(),
        }

    def load_training_state(self, state: dict) -> None:
        """Restore :meth:`training_state`."""
        self.load_state_dict(state["model"])
        for key in ("actor_opt", "critic_opt", "alpha_opt"):
            getattr(self, key).load_state_dict(state[key])
