"""History encoders: a window of (observation, previous action, previous reward) to one encoding per step.

Every encoder maps

======================  ==================================
input                   shape
======================  ==================================
``obs``                 (batch, length, obs_dim)
``prev_action``         (batch, length, act_dim), zero at t=0
``prev_reward``         (batch, length, 1), zero at t=0
**output**              (batch, length, out_dim)
======================  ==================================

causally: step ``t`` of the output depends only on steps ``<= t`` of the inputs.
``window`` is how many past steps the encoder is shown when acting (1 for no
history); :func:`make_encoder` builds one by name.

References
----------
.. [1] I. Char and J. Schneider, NeurIPS 2023; ``gid_encoder.py``,
   ``rnn_encoder.py``, ``transformer_encoder.py`` of github.com/IanChar/GPIDE.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sciprob.control.envs.base import PIDSpec


class HistoryEncoder(nn.Module):
    """Base class: checks sizes and the window.

    Parameters
    ----------
    obs_dim, act_dim : int
        Observation and action sizes.
    window : int
        Steps of history the encoder sees (>= 1).

    Attributes
    ----------
    out_dim : int
        Encoding size per step.
    uses_reward : bool
        Whether the encoding depends on ``prev_reward`` (default ``True``).
    """

    out_dim: int
    uses_reward: bool = True

    def __init__(self, obs_dim: int, act_dim: int, window: int) -> None:
        super().__init__()
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"`window` must be an integer >= 1, got {window!r}")
        self.obs_dim, self.act_dim, self.window = int(obs_dim), int(act_dim), window

    def forward(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor) -> Tensor:  # pragma: no cover
        """Encode a window; see the module docstring for shapes."""
        raise NotImplementedError


class NoHistoryEncoder(HistoryEncoder):
    """No history: the encoding is the current observation (the heads are the MLP)."""

    uses_reward = False

    def __init__(self, obs_dim: int, act_dim: int, window: int = 1) -> None:
        super().__init__(obs_dim, act_dim, window)
        self.out_dim = obs_dim

    def forward(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor) -> Tensor:
        """Return ``obs`` unchanged."""
        return obs


class PIDEncoder(HistoryEncoder):
    r"""Fixed PID features of the window: ``[P, I, D]`` per tracked axis (no parameters).

    Over a window that starts at the episode's reset this equals
    :class:`~sciprob.control.wrappers.PIDFeatures`; otherwise ``I`` sums over
    the window only.

    Parameters
    ----------
    obs_dim, act_dim, window : int
        See :class:`HistoryEncoder`.
    spec : PIDSpec
        Observation indices of positions and targets, and ``dt``.
    """

    def __init__(self, obs_dim: int, act_dim: int, window: int, spec: PIDSpec) -> None:
        super().__init__(obs_dim, act_dim, window)
        self.spec = spec
        self.out_dim = 3 * len(spec.position)
        self.uses_reward = False

    def forward(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor) -> Tensor:
        """``[P_t, sum_{j<=t} P_j dt, -(x_t - x_{t-1})/dt]`` of shape (batch, length, 3k)."""
        x = obs[..., list(self.spec.position)]
        p = obs[..., list(self.spec.target)] - x
        dt = self.spec.dt
        summed = (
            p if self.spec.integrate_initial_error else torch.cat([torch.zeros_like(p[:, :1]), p[:, 1:]], 1)
        )
        d = torch.cat([torch.zeros_like(x[:, :1]), -(x[:, 1:] - x[:, :-1]) / dt], 1)
        return torch.cat([p, torch.cumsum(summed, 1) * dt, d], -1)


@dataclass(frozen=True)
class GPIDEConfig:
    """Sizes of a GPIDE encoder ([1]_, ``gid_encoder.py``).

    Attributes
    ----------
    n_attention, n_summation : int
        Causal attention heads and running-sum heads.
    es_alphas : tuple of float
        One exponential-smoothing head per weight ``alpha`` in (0, 1].
    head_dim : int
        Embedding size per head.
    out_dim : int
        Encoding size.
    decoder_hidden : int
        Hidden layer of the decoder (0: a single linear map).
    obs_encode_dim, act_encode_dim, rew_encode_dim, diff_encode_dim : int
        Linear encodings of the observation, previous action, previous reward and
        observation difference streams (0 drops a stream).
    """

    n_attention: int = 2
    n_summation: int = 1
    es_alphas: tuple[float, ...] = (0.25, 0.5, 1.0)
    head_dim: int = 16
    out_dim: int = 64
    decoder_hidden: int = 64
    obs_encode_dim: int = 8
    act_encode_dim: int = 0
    rew_encode_dim: int = 0
    diff_encode_dim: int = 8

    def __post_init__(self) -> None:
        if self.n_attention + self.n_summation + len(self.es_alphas) < 1:
            raise ValueError("GPIDE needs at least one head")
        if any(not 0.0 < a <= 1.0 for a in self.es_alphas):
            raise ValueError(f"`es_alphas` must lie in (0, 1], got {self.es_alphas}")
        if self.obs_encode_dim + self.act_encode_dim + self.rew_encode_dim + self.diff_encode_dim < 1:
            raise ValueError("GPIDE needs at least one input stream with a positive encode dim")

    @classmethod
    def tracking(cls) -> GPIDEConfig:
        """Return the tracking configuration of [1]_ (``tracking_gpide_sac``; window 100)."""
        return cls()

    @classmethod
    def ess(cls) -> GPIDEConfig:
        """Return GPIDE-ESS of [1]_: smoothing and summation heads, no attention (tracking sizes)."""
        return cls(n_attention=0, n_summation=1, es_alphas=(0.1, 0.25, 0.5, 0.9, 1.0))

    @classmethod
    def locomotion_ess(cls) -> GPIDEConfig:
        """Return GPIDE-ESS with the locomotion sizes of [1]_ (``pyb_gpide_ess_sac``; window 64)."""
        return dataclasses.replace(
            cls.locomotion(), n_attention=0, n_summation=1, es_alphas=(0.1, 0.25, 0.5, 0.9, 1.0)
        )

    @classmethod
    def locomotion(cls) -> GPIDEConfig:
        """Return the PyBullet locomotion configuration of [1]_ (``pyb_gpide_sac``; window 64)."""
        return cls(
            n_attention=3,
            n_summation=1,
            es_alphas=(0.25, 1.0),
            head_dim=32,
            out_dim=128,
            decoder_hidden=0,
            obs_encode_dim=32,
            act_encode_dim=16,
            rew_encode_dim=16,
            diff_encode_dim=64,
        )


def _smoothing_weights(alphas: tuple[float, ...], length: int, device: torch.device) -> Tensor:
    r"""Normalised EMA weights of shape (heads, length, length), lower triangular.

    ``w[h, t, j] = alpha (1-alpha)^{t-j} / (1 - (1-alpha)^{t+1})`` for ``j <= t``.
    """
    t = torch.arange(length, device=device, dtype=torch.float32)
    lag = (t[:, None] - t[None, :]).clamp(min=0)
    causal = (t[:, None] >= t[None, :]).float()
    out = []
    for alpha in alphas:
        decay = torch.pow(torch.tensor(1.0 - alpha, device=device), lag)
        norm = 1.0 - torch.pow(torch.tensor(1.0 - alpha, device=device), t + 1.0)
        out.append(alpha * decay * causal / norm[:, None])
    return torch.stack(out)


class GPIDEEncoder(HistoryEncoder):
    r"""Generalised PID encoder: sums, exponential smoothings and causal attention over history.

    Each stream (``o_t``, ``a_{t-1}``, ``r_{t-1}``, ``\Delta o_t = o_t - o_{t-1}``)
    is batch-normalised and linearly encoded; the concatenation ``u_t`` feeds
    heads that each project ``u`` (no bias) and then aggregate over time:

    .. math::
        z^{sum}_t = \sum_{j\le t} W u_j, \qquad
        z^{\alpha}_t = \frac{\sum_{j\le t} \alpha (1-\alpha)^{t-j} W u_j}{1 - (1-\alpha)^{t+1}}, \qquad
        z^{attn}_t = \mathrm{softmax}_{j \le t}\!\left(\frac{q_t \cdot k_j}{\sqrt d}\right) v_j,

    then ``BatchNorm -> Linear [-> ReLU -> Linear] -> tanh`` [1]_. Summation and
    differencing are what a PID controller needs; attention adds flexibility.
    Cost: ``O(length^2)`` per window for the smoothing and attention heads.

    Parameters
    ----------
    obs_dim, act_dim, window : int
        See :class:`HistoryEncoder` (the tracking preset of [1]_ uses 100).
    config : GPIDEConfig, default=GPIDEConfig.tracking()
        Head counts and sizes.
    """

    def __init__(
        self, obs_dim: int, act_dim: int, window: int = 100, config: GPIDEConfig | None = None
    ) -> None:
        super().__init__(obs_dim, act_dim, window)
        cfg = config or GPIDEConfig.tracking()
        self.config = cfg
        self.out_dim = cfg.out_dim
        self.uses_reward = cfg.rew_encode_dim > 0
        dims = {
            "obs": (obs_dim, cfg.obs_encode_dim),
            "act": (act_dim, cfg.act_encode_dim),
            "rew": (1, cfg.rew_encode_dim),
            "diff": (obs_dim, cfg.diff_encode_dim),
        }
        self.streams = nn.ModuleDict(
            {
                name: nn.Sequential(nn.BatchNorm1d(d_in), nn.Linear(d_in, d_out))
                for name, (d_in, d_out) in dims.items()
                if d_out > 0
            }
        )
        u_dim = sum(d_out for _, d_out in dims.values())
        d = cfg.head_dim
        self.sum_proj = nn.Linear(u_dim, cfg.n_summation * d, bias=False) if cfg.n_summation else None
        self.es_proj = nn.Linear(u_dim, len(cfg.es_alphas) * d, bias=False) if cfg.es_alphas else None
        if cfg.n_attention:
            self.attn_norm = nn.LayerNorm(u_dim)
            self.attn_proj = nn.Linear(u_dim, 3 * cfg.n_attention * d, bias=False)
        n_heads = cfg.n_attention + cfg.n_summation + len(cfg.es_alphas)
        self.head_norm = nn.BatchNorm1d(n_heads * d)
        if cfg.decoder_hidden > 0:
            self.decoder_fc = nn.Linear(n_heads * d, cfg.decoder_hidden)
            self.decoder_proj = nn.Linear(cfg.decoder_hidden, cfg.out_dim)
        else:
            self.decoder_fc = nn.Linear(n_heads * d, cfg.out_dim)
            self.decoder_proj = None
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def _time_weights(self, length: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """Lower-triangular weights of the summation then smoothing heads, (heads, L, L), cached."""
        key = (length, str(device), dtype)
        cache = self.__dict__.setdefault("_weights_cache", {})
        if key not in cache:
            ones = torch.tril(torch.ones(length, length, device=device))
            parts = [ones.expand(self.config.n_summation, length, length)]
            if self.config.es_alphas:
                parts.append(_smoothing_weights(self.config.es_alphas, length, device))
            cache[key] = torch.cat(parts).to(dtype).contiguous()
        return cache[key]

    @staticmethod
    def _norm(layer: nn.BatchNorm1d, x: Tensor) -> Tensor:
        return layer(x.reshape(-1, x.shape[-1])).reshape(x.shape)

    def forward(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor) -> Tensor:
        """Encode; shapes in the module docstring."""
        b, length, _ = obs.shape
        diff = torch.cat([torch.zeros_like(obs[:, :1]), obs[:, 1:] - obs[:, :-1]], 1)
        inputs = {"obs": obs, "act": prev_action, "rew": prev_reward, "diff": diff}
        u = torch.cat(
            [layer[1](self._norm(layer[0], inputs[name])) for name, layer in self.streams.items()], -1
        )
        d = self.config.head_dim
        heads = []
        if self.config.n_attention:
            qkv = self.attn_proj(self.attn_norm(u)).view(b, length, 3, self.config.n_attention, d)
            q, k, v = (qkv[:, :, i].transpose(1, 2).float() for i in range(3))  # (b, heads, L, d)
            # float32 even under autocast: the CPU flash kernel's bfloat16 backward is ~8x slower
            with torch.autocast(u.device.type, enabled=False):
                att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            heads.append(att.transpose(1, 2).to(u.dtype))
        if self.sum_proj is not None or self.es_proj is not None:
            # summation and smoothing heads share one (heads, L, L) weight tensor, built once per length
            v = torch.cat([p(u) for p in (self.sum_proj, self.es_proj) if p is not None], -1)
            w = self._time_weights(length, u.device, u.dtype)  # (h, L, L)
            v = v.view(b, length, -1, d).permute(2, 1, 0, 3).reshape(w.shape[0], length, b * d)
            z = torch.bmm(w, v).view(w.shape[0], length, b, d).permute(2, 1, 0, 3)  # (b, L, h, d)
            heads.append(z)
        z = self._norm(self.head_norm, torch.cat(heads, 2).reshape(b, length, -1))
        z = self.decoder_fc(z)
        if self.decoder_proj is not None:
            z = self.decoder_proj(F.relu(z))
        return torch.tanh(z)


class GRUEncoder(HistoryEncoder):
    """GRU over per-stream ReLU embeddings (``rnn_encoder.py`` of [1]_, after Ni et al. 2022).

    Parameters
    ----------
    obs_dim, act_dim, window : int
        See :class:`HistoryEncoder`.
    hidden : int, default=64
        GRU state size (64 for the tracking tasks of [1]_).
    """

    def __init__(self, obs_dim: int, act_dim: int, window: int = 100, hidden: int = 64) -> None:
        super().__init__(obs_dim, act_dim, window)
        self.embed_obs = nn.Linear(obs_dim, 32)
        self.embed_act = nn.Linear(act_dim, 16)
        self.embed_rew = nn.Linear(1, 16)
        self.gru = nn.GRU(64, hidden, batch_first=True)
        for name, p in self.gru.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(p)
            else:
                nn.init.zeros_(p)
        self.out_dim = hidden

    def forward(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor) -> Tensor:
        """Run the GRU from a zero state over the window."""
        x = torch.cat(
            [
                F.relu(self.embed_obs(obs)),
                F.relu(self.embed_act(prev_action)),
                F.relu(self.embed_rew(prev_reward)),
            ],
            -1,
        )
        return self.gru(x)[0]


class CausalTransformerEncoder(HistoryEncoder):
    """Causal (GPT-style) transformer with sine-cosine positions (``transformer_encoder.py`` of [1]_).

    Parameters
    ----------
    obs_dim, act_dim, window : int
        See :class:`HistoryEncoder`.
    d_model : int, default=64
        Width.
    n_layers, n_heads : int, default=2, 4
        Depth and attention heads (the tracking configuration of [1]_).
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        window: int = 100,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
    ) -> None:
        super().__init__(obs_dim, act_dim, window)
        self.embed = nn.Linear(obs_dim + act_dim + 1, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, 4 * d_model, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        # training windows hold window + 1 observations (the last is the next observation)
        pos = torch.arange(window + 1)[:, None]
        freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = torch.zeros(window + 1, d_model)
        table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq[: d_model // 2])
        self.register_buffer("positions", table, persistent=False)
        self.out_dim = d_model

    def forward(self, obs: Tensor, prev_action: Tensor, prev_reward: Tensor) -> Tensor:
        """Attend causally over the window (at most ``window + 1`` steps)."""
        length = obs.shape[1]
        if length > self.window + 1:
            raise ValueError(
                f"`obs` has {length} steps, more than the encoder's `window` + 1 = {self.window + 1}"
            )
        x = self.embed(torch.cat([obs, prev_action, prev_reward], -1)) + self.positions[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=obs.device)
        return self.norm(self.blocks(x, mask=mask, is_causal=True))


ENCODERS = (
    "none",
    "pid",
    "gpide",
    "gpide-ess",
    "gpide-locomotion",
    "gpide-ess-locomotion",
    "gru",
    "transformer",
)
_GPIDE_PRESETS = {
    "gpide": GPIDEConfig.tracking,
    "gpide-ess": GPIDEConfig.ess,
    "gpide-locomotion": GPIDEConfig.locomotion,
    "gpide-ess-locomotion": GPIDEConfig.locomotion_ess,
}


def make_encoder(
    name: str, obs_dim: int, act_dim: int, window: int | None = None, pid_spec: PIDSpec | None = None
) -> HistoryEncoder:
    """Build encoder ``name`` (one of :data:`ENCODERS`) with the reference's sizes.

    Parameters
    ----------
    name : str
        ``"none"``, ``"pid"``, ``"gpide"`` (tracking preset), ``"gpide-ess"`` (no attention),
        ``"gpide-locomotion"``, ``"gpide-ess-locomotion"``, ``"gru"`` or ``"transformer"``.
    obs_dim, act_dim : int
        Sizes.
    window : int, default=None
        History length; default 1 for ``"none"``, 64 for the ``*-locomotion`` ones, else 100.
    pid_spec : PIDSpec, default=None
        Required for ``"pid"``.

    Raises
    ------
    ValueError
        Unknown name, ``window < 1``, or ``"pid"`` without ``pid_spec``.
    """
    if name not in ENCODERS:
        raise ValueError(f"`encoder` must be one of {list(ENCODERS)}, got {name!r}")
    if window is None:
        window = 1 if name == "none" else 64 if name.endswith("-locomotion") else 100
    if name == "none":
        return NoHistoryEncoder(obs_dim, act_dim, window)
    if name == "pid":
        if pid_spec is None:
            raise ValueError("`pid_spec` is required for the 'pid' encoder")
        return PIDEncoder(obs_dim, act_dim, window, pid_spec)
    if name in _GPIDE_PRESETS:
        return GPIDEEncoder(obs_dim, act_dim, window, _GPIDE_PRESETS[name]())
    if name == "gru":
        return GRUEncoder(obs_dim, act_dim, window)
    return CausalTransformerEncoder(obs_dim, act_dim, window)
