"""A LoRA adapter for ``nn.MultiheadAttention``: packed input projection and output projection.

``nn.MultiheadAttention`` keeps its query/key/value projections as one bare
parameter ``in_proj_weight`` (3E, E) and reads ``out_proj.weight`` directly,
so wrapping its linear layers one by one cannot work. As in PEFT's
``MultiheadAttention`` LoRA layer, :class:`LoRAMultiheadAttention` learns a
rank-r update of the packed matrix, ``W_in + (α/r) B A`` with ``A`` (r, E) and
``B`` (3E, r) (so the q, k and v rows share ``A`` and have their own block of
``B``), and turns ``out_proj`` into a :class:`~sciprob.learning.lowrank.LoRALinear`.
Unlike PEFT, which materialises the merged weights on every forward, the
attention is computed here from the projections themselves (with
:func:`torch.nn.functional.scaled_dot_product_attention`), so the adapter adds
only the r-dimensional intermediates to what the backward pass keeps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciprob.learning.lowrank.layers import LoRALayer, LoRALinear, lora_linear


def _float_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Boolean masks (True = not allowed) become additive ``-inf`` masks; float masks are kept."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(mask, float("-inf"))
    return mask.to(dtype)


class LoRAMultiheadAttention(LoRALayer):
    r"""``nn.MultiheadAttention`` with frozen projections and low-rank updates of both.

    .. math::

        [q; k; v] = x_{q,k,v} W_\text{in}^\top + b_\text{in}
                    + \tfrac{\alpha}{r}\, (x_{q,k,v} A^\top) B^\top, \qquad
        y = \mathrm{softmax}\!\left(\tfrac{q k^\top}{\sqrt{d}} + M\right) v \;\to\;
            \texttt{out\_proj}(y),

    where ``out_proj`` is a :class:`LoRALinear` of the same rank. The forward
    takes ``nn.MultiheadAttention``'s arguments and returns what it returns
    (``batch_first``, unbatched inputs, ``key_padding_mask``, ``attn_mask``
    boolean or float, ``need_weights``, ``average_attn_weights``,
    ``add_bias_kv``, ``add_zero_attn``, attention dropout in training).

    Parameters
    ----------
    base : nn.MultiheadAttention
        With ``kdim == vdim == embed_dim`` (the packed projection).
    r : int
        Rank, ``1 <= r <= embed_dim``.
    alpha : float, default=1.0
    dropout : float, default=0.0
        Dropout on the adapters' inputs (not the attention dropout, which is
        ``base.dropout``).

    Attributes
    ----------
    lora_A : nn.Parameter of shape (r, embed_dim)
    lora_B : nn.Parameter of shape (3 * embed_dim, r)
    out_proj : LoRALinear
        ``base.out_proj``, wrapped; merged, unmerged and re-initialised with this layer.
    _qkv_same_embed_dim : bool
        Always False: torch's ``TransformerEncoderLayer`` inference fast path
        reads ``in_proj_weight`` directly and would skip the adapter; this
        attribute makes it take the regular path.

    Raises
    ------
    TypeError
        ``base`` is not an ``nn.MultiheadAttention``.
    ValueError
        Separate key/value sizes, or ``r`` / ``alpha`` / ``dropout`` out of range.

    Examples
    --------
    >>> mha = nn.MultiheadAttention(16, 4, batch_first=True)
    >>> x = torch.randn(2, 5, 16)
    >>> ref = mha(x, x, x)[0]
    >>> lora = LoRAMultiheadAttention(mha, r=2)
    >>> torch.allclose(lora(x, x, x)[0], ref, atol=1e-6)
    True
    """

    _qkv_same_embed_dim = False

    def __init__(self, base: nn.MultiheadAttention, r: int, alpha: float = 1.0, dropout: float = 0.0) -> None:
        if not isinstance(base, nn.MultiheadAttention):
            raise TypeError(
                "`LoRAMultiheadAttention` requires an nn.MultiheadAttention `base`, "
                f"got {type(base).__name__}"
            )
        if not base._qkv_same_embed_dim:
            raise ValueError(
                f"`base` has kdim={base.kdim}, vdim={base.vdim} != embed_dim={base.embed_dim}: separate "
                "projection weights are not supported; use kdim = vdim = embed_dim"
            )
        out_proj = LoRALinear(base.out_proj, r, alpha, dropout)  # validates r against (E, E) first
        super().__init__(base, r, alpha, dropout, base.embed_dim, 3 * base.embed_dim)
        base.out_proj = out_proj

    def _base_weight(self) -> Tensor:
        return self.base.in_proj_weight

    def _nested(self) -> Iterator[LoRALayer]:
        yield self.base.out_proj

    # Attributes torch's transformer layers read from their attention module.
    @property
    def batch_first(self) -> bool:
        """Whether inputs are (batch, seq, feature)."""
        return self.base.batch_first

    @property
    def embed_dim(self) -> int:
        """Model width E."""
        return self.base.embed_dim

    @property
    def num_heads(self) -> int:
        """Number of heads."""
        return self.base.num_heads

    @property
    def head_dim(self) -> int:
        """E // num_heads."""
        return self.base.head_dim

    @property
    def in_proj_weight(self) -> Tensor:
        """The frozen packed projection (3E, E), without the update."""
        return self.base.in_proj_weight

    @property
    def in_proj_bias(self) -> Tensor | None:
        """The packed projection's bias (3E,)."""
        return self.base.in_proj_bias

    @property
    def out_proj(self) -> LoRALinear:
        """The wrapped output projection."""
        return self.base.out_proj

    def _project(self, x: Tensor, rows: slice) -> Tensor:
        weight, bias = self.base.in_proj_weight[rows], self.base.in_proj_bias
        bias = None if bias is None else bias[rows]
        if self.merged:
            return F.linear(x, weight, bias)
        if isinstance(self.dropout, nn.Identity) or not self.training:
            return lora_linear(x, weight, bias, self.lora_A, self.lora_B[rows], self.scaling)
        h = F.linear(self.dropout(x), self.lora_A)
        return torch.add(F.linear(x, weight, bias), F.linear(h, self.lora_B[rows]), alpha=self.scaling)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend, with ``nn.MultiheadAttention.forward``'s arguments and results.

        Parameters
        ----------
        query : Tensor of shape (L, E), (L, N, E) or (N, L, E) with ``batch_first``
        key, value : Tensor of shape (S, E), (S, N, E) or (N, S, E)
        key_padding_mask : Tensor of shape (N, S) or (S,), bool or float, default=None
        need_weights : bool, default=True
        attn_mask : Tensor of shape (L, S) or (N * num_heads, L, S), bool or float, default=None
        average_attn_weights : bool, default=True
        is_causal : bool, default=False
            A hint that ``attn_mask`` is causal (required with it, as in torch).

        Returns
        -------
        output : Tensor shaped as ``query``
        weights : Tensor of shape (N, L, S), or (N, num_heads, L, S) without averaging, or None
        """
        mha = self.base
        if is_causal and attn_mask is None:
            raise ValueError("`is_causal`=True needs `attn_mask` (as in nn.MultiheadAttention)")
        self_attention = key is query and value is query
        batched = query.dim() == 3
        if not batched:  # (L, E) -> (1, L, E)
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not mha.batch_first:  # (L, N, E) -> (N, L, E)
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        n, length, e = query.shape
        heads = mha.num_heads
        if self_attention:
            q, k, v = self._project(query, slice(None)).chunk(3, dim=-1)
        else:
            q = self._project(query, slice(0, e))
            k = self._project(key, slice(e, 2 * e))
            v = self._project(value, slice(2 * e, 3 * e))
        extra = []  # key positions appended by add_bias_kv / add_zero_attn
        if mha.bias_k is not None:
            k = torch.cat([k, mha.bias_k.reshape(1, 1, e).expand(n, 1, e)], dim=1)
            v = torch.cat([v, mha.bias_v.reshape(1, 1, e).expand(n, 1, e)], dim=1)
            extra.append(1)
        if mha.add_zero_attn:
            k = torch.cat([k, k.new_zeros(n, 1, e)], dim=1)
            v = torch.cat([v, v.new_zeros(n, 1, e)], dim=1)
            extra.append(1)
        s = k.shape[1]
        # (N, T, E) -> (N, heads, T, head_dim)
        q, k, v = (t.reshape(n, -1, heads, e // heads).transpose(1, 2) for t in (q, k, v))
        mask = None
        if attn_mask is not None:
            m = _float_mask(attn_mask, q.dtype)
            m = F.pad(m, (0, sum(extra)))
            mask = m.view(1, 1, length, s) if m.dim() == 2 else m.view(n, heads, length, s)
        if key_padding_mask is not None:
            kp = F.pad(_float_mask(key_padding_mask, q.dtype), (0, sum(extra))).view(n, 1, 1, s)
            mask = kp if mask is None else mask + kp
        p = mha.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores + mask
            attn = scores.softmax(dim=-1)
            if p > 0:
                attn = F.dropout(attn, p)
            out = attn @ v
            weights = attn.mean(dim=1) if average_attn_weights else attn
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        out = self.base.out_proj(out.transpose(1, 2).reshape(n, length, e))
        if not batched:
            return out.squeeze(0), None if weights is None else weights.squeeze(0)
        if not mha.batch_first:
            out = out.transpose(0, 1)
        return out, weights
