"""A small LLaMA-style causal language model and a byte-level tokenizer.

The architecture follows the models ReLoRA was trained on [1]_ [2]_ (the
reference uses Hugging Face's ``LlamaForCausalLM``): pre-norm blocks with
RMSNorm, rotary position embeddings on queries and keys, causal multi-head
attention and a SwiGLU feed-forward layer, no biases, untied output head.
Linear layers live under modules named ``attn`` and ``mlp`` so that
``inject_lora(model, ("attn", "mlp"), ...)`` wraps exactly the layers ReLoRA wraps.

References
----------
.. [1] H. Touvron et al., "LLaMA: Open and Efficient Foundation Language Models", arXiv:2302.13971.
.. [2] J. Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding", arXiv:2104.09864.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class LlamaConfig:
    """Sizes of :class:`LlamaLM`.

    Attributes
    ----------
    vocab_size : int, default=256
        Token count (256 for :class:`ByteTokenizer`).
    dim : int, default=128
        Model width; a multiple of ``n_heads`` with an even head size.
    n_layers : int, default=4
    n_heads : int, default=4
    hidden_dim : int, default=344
        SwiGLU inner width (LLaMA uses about ``8/3 dim``).
    max_seq_len : int, default=256
        Longest sequence the rotary tables cover.
    rope_theta : float, default=10000.0
    norm_eps : float, default=1e-6
    """

    vocab_size: int = 256
    dim: int = 128
    n_layers: int = 4
    n_heads: int = 4
    hidden_dim: int = 344
    max_seq_len: int = 256
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.dim % self.n_heads or (self.dim // self.n_heads) % 2:
            raise ValueError(
                f"`dim`={self.dim} must be a multiple of `n_heads`={self.n_heads} with an even head size"
            )


class RMSNorm(nn.Module):
    r"""Root-mean-square layer norm, :math:`y = g \odot x / \sqrt{\overline{x^2} + \epsilon}`.

    Parameters
    ----------
    dim : int
    eps : float, default=1e-6
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` of shape (..., dim) over its last axis."""
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_tables(seq_len: int, head_dim: int, theta: float = 10000.0) -> tuple[Tensor, Tensor]:
    r"""Cosine and sine tables of rotary embeddings, each of shape (seq_len, head_dim).

    Frequencies :math:`\theta^{-2i/d}` for ``i < d/2``, repeated for the two
    halves of the head (the "rotate half" layout of LLaMA in Hugging Face).
    """
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` of shape (batch, heads, seq, head_dim) by the tables of shape (seq, head_dim)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Causal multi-head self-attention with rotary positions; layers ``q_proj, k_proj, v_proj, o_proj``."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.q_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.o_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Attend over ``x`` of shape (batch, seq, dim); returns the same shape."""
        b, t, d = x.shape
        # (batch, seq, dim) -> (batch, heads, seq, head_dim)
        q, k, v = (
            p(x).view(b, t, self.n_heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    r"""LLaMA's feed-forward layer, :math:`W_d(\mathrm{silu}(W_g x) \odot W_u x)` (down, gate, up)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden_dim, bias=False)
        self.up_proj = nn.Linear(dim, hidden_dim, bias=False)
        self.down_proj = nn.Linear(hidden_dim, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """Apply to ``x`` of shape (..., dim)."""
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = SwiGLU(cfg.dim, cfg.hidden_dim)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Apply to ``x`` of shape (batch, seq, dim)."""
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class LlamaLM(nn.Module):
    r"""LLaMA-style decoder-only language model.

    Parameters
    ----------
    cfg : LlamaConfig

    Notes
    -----
    Weights are drawn from :math:`\mathcal N(0, 0.02^2)` (``initializer_range``
    of the reference configs); norms start at one. Cost per token is about
    ``6 N`` FLOPs for training with ``N`` the non-embedding parameter count.

    Examples
    --------
    >>> model = LlamaLM(LlamaConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_seq_len=16))
    >>> model(torch.randint(0, 256, (3, 16))).shape
    torch.Size([3, 16, 256])
    """

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        cos, sin = rotary_tables(cfg.max_seq_len, cfg.dim // cfg.n_heads, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)

    def forward(self, tokens: Tensor) -> Tensor:
        """Next-token logits.

        Parameters
        ----------
        tokens : LongTensor of shape (batch, seq), seq <= max_seq_len

        Returns
        -------
        Tensor of shape (batch, seq, vocab_size)
        """
        t = tokens.shape[-1]
        if t > self.cfg.max_seq_len:
            raise ValueError(f"sequence length {t} exceeds `max_seq_len`={self.cfg.max_seq_len}")
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.norm(x))

    def loss(self, batch: Tensor) -> Tensor:
        """Mean next-token cross-entropy (nats) of ``batch`` of shape (batch, seq + 1)."""
        logits = self(batch[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


class ByteTokenizer:
    """UTF-8 bytes as tokens: a lossless vocabulary of 256 with no training.

    Examples
    --------
    >>> tok = ByteTokenizer()
    >>> tok.decode(tok.encode("héllo"))
    'héllo'
    """

    vocab_size = 256

    def encode(self, text: str) -> Tensor:
        """Token ids of ``text``, a LongTensor of shape (n_bytes,)."""
        data = text.encode("utf-8")
        if not data:
            return torch.empty(0, dtype=torch.long)
        return torch.frombuffer(bytearray(data), dtype=torch.uint8).long()

    def decode(self, tokens: Tensor) -> str:
        """Text of ``tokens`` of shape (n,), invalid UTF-8 replaced."""
        return bytes(tokens.to(torch.uint8).tolist()).decode("utf-8", errors="replace")
