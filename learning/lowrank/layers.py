r"""LoRA adapters for ``nn.Linear`` (and subclasses), ``nn.Conv1d/2d`` and ``nn.Embedding``.

Every adapter is a :class:`LoRALayer`: it keeps the wrapped layer (``base``)
with its weight frozen and learns a rank-``r`` correction of that weight seen
as a matrix ``W`` of shape (out_features, in_features),

.. math::

    W \;\to\; W + \frac{\alpha}{r} B A, \qquad
    A \in \mathbb{R}^{r \times d_\text{in}},\; B \in \mathbb{R}^{d_\text{out} \times r},

with ``merge`` / ``unmerge`` (fold ``(α/r) B A`` into the weight and back),
``reinit`` (a fresh segment whose update is zero) and so the ReLoRA restart
``merge(); reinit()``. The matrix view of each weight follows PEFT [2]_:

=================  ==========================  ===================================
layer              weight                      matrix ``W`` (out, in)
=================  ==========================  ===================================
``nn.Linear``      (out, in)                   the weight itself
``nn.Conv{1,2}d``  (out, in, *kernel)          ``weight.flatten(1)``: (out, in·k)
``nn.Embedding``   (num_embeddings, dim)       ``weight.T``: (dim, num_embeddings)
=================  ==========================  ===================================

Memory: the adapter path never forms ``W + (α/r) B A``; it applies ``A`` then
``B`` to the activations, so the only activation it adds for the backward pass
is the r-dimensional intermediate ``x Aᵀ``. For linear layers the base and
adapter products run in one autograd node (:class:`_LoRALinearFunction`) that
keeps the layer's input (a view, not a copy) and that intermediate, computes no
gradient for the frozen weight and allocates no per-layer temporaries of the
output width beyond the output itself.

References
----------
.. [1] V. Lialin et al., "ReLoRA: High-Rank Training Through Low-Rank Updates", ICLR 2024,
   arXiv:2307.05695; code ``Guitaricet/relora`` ``peft_pretraining/relora.py``.
.. [2] Hugging Face PEFT, ``tuners/lora/layer.py`` (``Linear``, ``Conv2d``, ``Embedding``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def _check_hyper(r: object, max_r: int, alpha: float, dropout: float) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= max_r:
        raise ValueError(f"`r` must be an integer in [1, {max_r}] for this layer, got {r!r}")
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"`alpha` must be a positive finite number, got {alpha!r}")
    if not (isinstance(dropout, int | float) and 0.0 <= dropout < 1.0):
        raise ValueError(f"`dropout` must lie in [0, 1), got {dropout!r}")


class LoRALayer(nn.Module):
    """Common part of every adapter: the factors, the scale and merge / unmerge / reinit.

    Subclasses set ``base`` and define :meth:`_base_weight` (the parameter the
    update is merged into) and :meth:`_fold` (matrix -> weight layout).

    Parameters
    ----------
    base : nn.Module
        The wrapped layer; the parameter of :meth:`_base_weight` is frozen.
    r : int
        Rank, ``1 <= r <= min(in_features, out_features)``.
    alpha : float
        The update is scaled by ``alpha / r``.
    dropout : float
        Dropout probability on the adapter's input.
    in_features, out_features : int
        Shape of the weight's matrix view.

    Attributes
    ----------
    lora_A : nn.Parameter of shape (r, in_features)
    lora_B : nn.Parameter of shape (out_features, r)
    scaling : float
        ``alpha / r``.
    merged : bool
        Whether ``(α/r) B A`` is currently folded into the base weight.
    """

    def __init__(
        self, base: nn.Module, r: int, alpha: float, dropout: float, in_features: int, out_features: int
    ) -> None:
        super().__init__()
        _check_hyper(r, min(in_features, out_features), alpha, dropout)
        self.base = base
        self.r = r
        self.alpha = float(alpha)
        self.scaling = self.alpha / r
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        weight = self._base_weight()
        weight.requires_grad_(False)
        factory = {"device": weight.device, "dtype": weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(r, in_features, **factory))
        self.lora_B = nn.Parameter(torch.empty(out_features, r, **factory))
        self.merged = False
        self._reset_factors()

    # -- to be defined by each layer type ------------------------------------------------------
    def _base_weight(self) -> Tensor:
        raise NotImplementedError

    def _fold(self, delta: Tensor) -> Tensor:
        """Map a matrix (out_features, in_features) to the base weight's layout (identity for linear)."""
        return delta

    def _unfold(self, weight: Tensor) -> Tensor:
        """Map the base weight's layout to its matrix view (inverse of :meth:`_fold`)."""
        return weight

    def _nested(self) -> Iterator[LoRALayer]:
        """Adapters owned by this one (merged and restarted with it)."""
        return iter(())

    @torch.no_grad()
    def _reset_factors(self) -> None:
        # Kaiming-uniform A (a = √5, as nn.Linear) and zero B: the update starts at zero.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    # -- shared behaviour -----------------------------------------------------------------------
    @property
    def in_features(self) -> int:
        """Columns of the weight's matrix view."""
        return self.lora_A.shape[1]

    @property
    def out_features(self) -> int:
        """Rows of the weight's matrix view."""
        return self.lora_B.shape[0]

    def delta_weight(self) -> Tensor:
        """Return the update ``(α / r) B A`` in the base weight's layout."""
        return self._fold((self.lora_B @ self.lora_A) * self.scaling)

    def effective_matrix(self) -> Tensor:
        """Return the weight the layer applies now, as a matrix of shape (out_features, in_features)."""
        weight = self._unfold(self._base_weight())
        return weight if self.merged else weight + (self.lora_B @ self.lora_A) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ``(α / r) B A`` into the base weight (and merge owned adapters); the adapter path is skipped.

        Raises
        ------
        RuntimeError
            Already merged.
        FloatingPointError
            The update is not finite (nothing is changed).
        """
        if self.merged:
            raise RuntimeError(
                f"`{type(self).__name__}.merge` called on an already merged layer; call `unmerge` first"
            )
        delta = self.delta_weight()
        if not torch.isfinite(delta).all() or not all(
            torch.isfinite(m.delta_weight()).all() for m in self._nested()
        ):
            raise FloatingPointError("the LoRA update is not finite; refusing to merge it into the weight")
        self._base_weight().add_(delta)
        self.merged = True
        for module in self._nested():
            module.merge()

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract ``(α / r) B A`` from the base weight again (inverse of :meth:`merge`).

        Raises
        ------
        RuntimeError
            Not merged.
        """
        if not self.merged:
            raise RuntimeError(f"`{type(self).__name__}.unmerge` called on a layer that is not merged")
        self._base_weight().sub_(self.delta_weight())
        self.merged = False
        for module in self._nested():
            module.unmerge()

    @torch.no_grad()
    def reinit(self) -> None:
        """Re-draw the factors so that the update is zero; the layer counts as unmerged.

        After :meth:`merge` this starts a new low-rank segment without changing
        the layer's function (one ReLoRA restart); on an unmerged layer it
        discards the current update.
        """
        self._reset_factors()
        self.merged = False
        for module in self._nested():
            module.reinit()

    def extra_repr(self) -> str:
        """Describe the adapter in ``repr(model)``."""
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


class _LoRALinearFunction(torch.autograd.Function):
    r"""``y = x Wᵀ + b + s (x Aᵀ) Bᵀ`` as one autograd node.

    Saved for backward: ``x`` (a view of the caller's tensor when contiguous)
    only if ``A`` or ``W`` needs a gradient, and ``h = x Aᵀ`` of shape (n, r).
    Backward: ``g_h = s g B``; ``dx = g W + g_h A``; ``dA = g_hᵀ x``;
    ``dB = s gᵀ h``; ``dW = gᵀ x`` only if ``W`` requires grad.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, lora_A, lora_B, scaling):  # noqa: D102
        x2 = x.reshape(-1, x.shape[-1])
        h = x2 @ lora_A.t()
        y = torch.addmm(bias, x2, weight.t()) if bias is not None else x2 @ weight.t()
        y.addmm_(h, lora_B.t(), alpha=scaling)
        need_x = ctx.needs_input_grad[1] or ctx.needs_input_grad[3]
        ctx.save_for_backward(x2 if need_x else None, h, weight, lora_A, lora_B)
        ctx.scaling = scaling
        ctx.x_shape = x.shape
        return y.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # noqa: D102
        x2, h, weight, lora_A, lora_B = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1])
        g_h = (g @ lora_B).mul_(ctx.scaling)
        dx = dw = db = da = dB = None
        if ctx.needs_input_grad[0]:
            dx = (g @ weight).addmm_(g_h, lora_A).view(ctx.x_shape)
        if ctx.needs_input_grad[1]:
            dw = g.t() @ x2
        if ctx.needs_input_grad[2]:
            db = g.sum(0)
        if ctx.needs_input_grad[3]:
            da = g_h.t() @ x2
        if ctx.needs_input_grad[4]:
            dB = (g.t() @ h).mul_(ctx.scaling)
        return dx, dw, db, da, dB, None


def lora_linear(
    x: Tensor, weight: Tensor, bias: Tensor | None, lora_A: Tensor, lora_B: Tensor, scaling: float
) -> Tensor:
    r"""Compute :math:`x W^\top + b + s\,(x A^\top) B^\top` without forming ``W + s B A``.

    Parameters
    ----------
    x : Tensor of shape (..., in_features)
    weight : Tensor of shape (out_features, in_features)
    bias : Tensor of shape (out_features,) or None
    lora_A : Tensor of shape (r, in_features)
    lora_B : Tensor of shape (out_features, r)
    scaling : float

    Returns
    -------
    Tensor of shape (..., out_features)
    """
    return _LoRALinearFunction.apply(x, weight, bias, lora_A, lora_B, scaling)


class LoRALinear(LoRALayer):
    r"""An ``nn.Linear`` (or subclass) with a frozen weight and a trainable low-rank update.

    .. math::

        y = x W^\top + b + \frac{\alpha}{r}\, \mathrm{dropout}(x) A^\top B^\top,
        \qquad A \in \mathbb{R}^{r \times d_\text{in}},\;
        B \in \mathbb{R}^{d_\text{out} \times r}.

    ``A`` is initialised Kaiming-uniform (``a = √5``, as ``nn.Linear``) and
    ``B`` at zero, so a fresh adapter leaves the layer's output unchanged.

    Parameters
    ----------
    base : nn.Linear
        The layer to wrap, of ``nn.Linear`` or a subclass that keeps its
        forward (such as ``NonDynamicallyQuantizableLinear``); its ``weight``
        is frozen in place (``requires_grad`` set to False); its ``bias``, if
        any, keeps its ``requires_grad``.
    r : int
        Rank of the update, ``1 <= r <= min(in_features, out_features)``.
    alpha : float, default=1.0
        Scale numerator: the update is multiplied by ``alpha / r``.
    dropout : float, default=0.0
        Dropout probability on the adapter's input only.

    Attributes
    ----------
    lora_A : nn.Parameter of shape (r, in_features)
    lora_B : nn.Parameter of shape (out_features, r)
    scaling : float
        ``alpha / r``.
    merged : bool
        Whether ``B A`` is currently folded into ``base.weight``.
    weight : Tensor of shape (out_features, in_features)
        The weight the layer applies, ``W + (α/r) B A`` (differentiable in
        ``A`` and ``B``), for parents that read ``.weight`` directly (such as
        an ``nn.MultiheadAttention`` whose ``out_proj`` alone was targeted).
        Reading it forms that matrix; the layer's own forward never does.
    bias : Tensor or None
        ``base.bias``.

    Raises
    ------
    TypeError
        ``base`` is not an ``nn.Linear``.
    ValueError
        ``r``, ``alpha`` or ``dropout`` out of range, or ``base`` overrides ``forward``.

    Examples
    --------
    >>> layer = LoRALinear(nn.Linear(8, 4), r=2, alpha=4.0)
    >>> layer(torch.randn(3, 8)).shape
    torch.Size([3, 4])
    >>> layer.merge(); layer.reinit()   # one ReLoRA restart; output unchanged
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float = 1.0, dropout: float = 0.0) -> None:
        if not isinstance(base, nn.Linear):
            raise TypeError(f"`LoRALinear` requires an nn.Linear `base`, got {type(base).__name__}")
        if type(base).forward is not nn.Linear.forward:
            raise ValueError(
                f"`base` ({type(base).__name__}) overrides nn.Linear.forward; LoRA's merge assumes "
                "y = x W^T + b, so wrap only layers that keep nn.Linear's forward"
            )
        super().__init__(base, r, alpha, dropout, base.in_features, base.out_features)

    def _base_weight(self) -> Tensor:
        return self.base.weight

    @property
    def weight(self) -> Tensor:
        """The applied weight ``W + (α/r) B A`` (``W`` alone when merged)."""
        return self.base.weight if self.merged else self.base.weight + self.delta_weight()

    @property
    def bias(self) -> Tensor | None:
        """The wrapped layer's bias."""
        return self.base.bias

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layer.

        Parameters
        ----------
        x : Tensor of shape (..., in_features)

        Returns
        -------
        Tensor of shape (..., out_features)
        """
        if self.merged:
            return self.base(x)
        if isinstance(self.dropout, nn.Identity) or not self.training:
            return lora_linear(x, self.base.weight, self.base.bias, self.lora_A, self.lora_B, self.scaling)
        h = F.linear(self.dropout(x), self.lora_A)
        return torch.add(self.base(x), F.linear(h, self.lora_B), alpha=self.scaling)


class LoRAEmbedding(LoRALayer):
    r"""An ``nn.Embedding`` with a frozen table and a low-rank update of it.

    The table ``E`` (num_embeddings, dim) is the matrix ``Eᵀ`` of a linear map
    of one-hot inputs, so :math:`E \to E + \tfrac{\alpha}{r} (B A)^\top` with
    ``A`` (r, num_embeddings) and ``B`` (dim, r), and the lookup of token ``t``
    adds :math:`\tfrac{\alpha}{r} B A_{:, t}`. As in PEFT, ``A`` starts at zero
    and ``B`` normal: a row of ``A`` that never gets a gradient (the
    ``padding_idx`` column) then stays zero, so the padding vector never moves.
    There is no dropout on the adapter (the inputs are indices).

    Parameters
    ----------
    base : nn.Embedding
        Its ``max_norm`` must be None (renormalising the frozen table alone
        would make merged and unmerged outputs differ).
    r : int
        Rank, ``1 <= r <= min(num_embeddings, embedding_dim)``.
    alpha : float, default=1.0

    Raises
    ------
    TypeError
        ``base`` is not an ``nn.Embedding``.
    ValueError
        ``base.max_norm`` is set, or ``r`` / ``alpha`` out of range.
    """

    def __init__(self, base: nn.Embedding, r: int, alpha: float = 1.0, dropout: float = 0.0) -> None:
        if not isinstance(base, nn.Embedding):
            raise TypeError(f"`LoRAEmbedding` requires an nn.Embedding `base`, got {type(base).__name__}")
        if base.max_norm is not None:
            raise ValueError(
                f"`base.max_norm`={base.max_norm} is not supported: renormalising only the frozen table "
                "would change the function at merge; use max_norm=None"
            )
        super().__init__(base, r, alpha, 0.0, base.num_embeddings, base.embedding_dim)

    def _base_weight(self) -> Tensor:
        return self.base.weight

    def _fold(self, delta: Tensor) -> Tensor:
        return delta.t()

    def _unfold(self, weight: Tensor) -> Tensor:
        return weight.t()

    @torch.no_grad()
    def _reset_factors(self) -> None:
        nn.init.zeros_(self.lora_A)
        nn.init.normal_(self.lora_B)

    def forward(self, x: Tensor) -> Tensor:
        """Look up ``x`` (LongTensor of any shape); returns shape (*x.shape, embedding_dim)."""
        y = self.base(x)
        if self.merged:
            return y
        h = F.embedding(x, self.lora_A.t(), padding_idx=self.base.padding_idx)
        return torch.add(y, F.linear(h, self.lora_B), alpha=self.scaling)


class LoRAConv(LoRALayer):
    r"""An ``nn.Conv1d`` or ``nn.Conv2d`` with a frozen kernel and a low-rank update of it.

    The kernel (out, in, *k) is the matrix ``W`` (out, in·prod(k)); the update
    ``(α/r) B A`` is applied as a convolution with ``A`` reshaped to
    (r, in, *k) (same stride, padding, padding mode and dilation as the base)
    followed by a 1×1 convolution with ``B`` (out, r), as in PEFT's
    ``Conv2d``. Only the r-channel intermediate is kept for the backward pass.

    Parameters
    ----------
    base : nn.Conv1d or nn.Conv2d
        ``groups`` must be 1.
    r : int
        Rank, ``1 <= r <= min(out_channels, in_channels * prod(kernel_size))``.
    alpha : float, default=1.0
    dropout : float, default=0.0
        Dropout on the adapter's input.

    Raises
    ------
    TypeError
        ``base`` is not an ``nn.Conv1d`` / ``nn.Conv2d``.
    ValueError
        ``groups != 1``, or ``r`` / ``alpha`` / ``dropout`` out of range.
    """

    def __init__(self, base: nn.Conv1d | nn.Conv2d, r: int, alpha: float = 1.0, dropout: float = 0.0) -> None:
        if not isinstance(base, nn.Conv1d | nn.Conv2d):
            raise TypeError(
                f"`LoRAConv` requires an nn.Conv1d or nn.Conv2d `base`, got {type(base).__name__}"
            )
        if base.groups != 1:
            raise ValueError(f"`base.groups`={base.groups} is not supported; LoRAConv adapts groups=1 only")
        fan_in = base.in_channels * math.prod(base.kernel_size)
        super().__init__(base, r, alpha, dropout, fan_in, base.out_channels)

    def _base_weight(self) -> Tensor:
        return self.base.weight

    def _fold(self, delta: Tensor) -> Tensor:
        return delta.view(self.base.weight.shape)

    def _unfold(self, weight: Tensor) -> Tensor:
        return weight.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` of shape (batch, in, *spatial) or (in, *spatial); output as the base's."""
        y = self.base(x)
        if self.merged:
            return y
        kernel = self.lora_A.view(self.r, *self.base.weight.shape[1:])
        h = self.base._conv_forward(self.dropout(x), kernel, None)  # honours padding_mode
        pointwise = self.lora_B.view(*self.lora_B.shape, *([1] * len(self.base.kernel_size)))
        conv = F.conv1d if isinstance(self.base, nn.Conv1d) else F.conv2d
        return torch.add(y, conv(h, pointwise), alpha=self.scaling)
