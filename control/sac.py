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

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sciprob.control.buffer import SequenceBatch
from sciprob.control.encoders import HistoryEncoder, NoHistoryEncoder

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


@dataclass(frozen=True)
class SACConfig:
    """Hyper-parameters of :class:`HistorySAC` (defaults: the tracking runs of [1]_).

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

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"`gamma` must lie in [0, 1), got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"`tau` must lie in (0, 1], got {self.tau}")
        if self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"`batch_size` and `lr` must be positive, got {self.batch_size}, {self.lr}")


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
        mean, log_std = self.head(h).chunk(2, -1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(
        self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor, deterministic: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Actions in [-1, 1] (batch, length, act_dim) and their log-probabilities (batch, length)."""
        mean, log_std = self(obs, prev_action, prev_reward)
        if deterministic:
            return torch.tanh(mean), torch.zeros(mean.shape[:-1], device=mean.device)
        std = log_std.exp()
        pre = mean + std * torch.randn_like(mean)
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
        return self.q(x).squeeze(-1)


class HistorySAC(nn.Module):
    """SAC whose actor and twin critics read histories through separate encoders.

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

    def update(self, batch: SequenceBatch) -> dict[str, float]:
        """One gradient step of critics, actor and temperature; returns namespaced losses."""
        cfg = self.config
        obs, pa, pr, mask = batch.obs, batch.prev_actions, batch.prev_rewards, batch.mask
        alpha = self.log_alpha.exp().detach()
        self.actor.train()
        self.critics.train()
        actions_pi, logp_pi = self.actor.sample(obs, pa, pr)  # (B, W+1, A), (B, W+1)

        # Critic loss: soft Bellman targets from the target critics at t+1.
        with torch.no_grad():
            q_next = torch.min(
                torch.stack(
                    [
                        c.value(c.encode(obs, pa, pr)[:, 1:], obs[:, 1:], actions_pi[:, 1:].detach())
                        for c in self.critics_target
                    ]
                ),
                0,
            ).values
            y = batch.rewards + cfg.gamma * (1 - batch.terminals) * (q_next - alpha * logp_pi[:, 1:].detach())
        encodings = [c.encode(obs, pa, pr) for c in self.critics]
        critic_loss = sum(
            _masked_mean((c.value(h[:, :-1], obs[:, :-1], batch.actions) - y) ** 2, mask)
            for c, h in zip(self.critics, encodings, strict=True)
        )
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        # Actor loss on the fresh critics' heads (encodings held fixed).
        q_pi = torch.min(
            torch.stack(
                [
                    c.value(h[:, :-1].detach(), obs[:, :-1], actions_pi[:, :-1])
                    for c, h in zip(self.critics, encodings, strict=True)
                ]
            ),
            0,
        ).values
        actor_loss = _masked_mean(alpha * logp_pi[:, :-1] - q_pi, mask)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        alpha_loss = -_masked_mean(self.log_alpha * (logp_pi[:, :-1].detach() + self.target_entropy), mask)
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()

        self._polyak()
        return {
            "train/critic_loss": critic_loss.item(),
            "train/actor_loss": actor_loss.item(),
            "train/alpha_loss": alpha_loss.item(),
            "train/alpha": alpha.item(),
        }

    @torch.no_grad()
    def _polyak(self) -> None:
        tau = self.config.tau
        for p, tp in zip(self.critics.parameters(), self.critics_target.parameters(), strict=True):
            tp.lerp_(p, tau)
        for b, tb in zip(self.critics.buffers(), self.critics_target.buffers(), strict=True):
            tb.copy_(b)

    @torch.no_grad()
    def act(
        self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor, deterministic: bool = False
    ) -> Tensor:
        """Return the action of the last step of each window: (batch, act_dim) in [-1, 1]."""
        self.actor.eval()
        return self.actor.sample(obs, prev_action, prev_reward, deterministic)[0][:, -1]

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
