"""LoRA adapters for ``nn.Linear`` layers and their injection into any model.

A :class:`LoRALinear` keeps the wrapped layer's weight frozen and learns a
low-rank correction ``ΔW = (α / r) B A``; :func:`inject_lora` swaps matching
``nn.Linear`` sub-modules of a model for adapters, the way PEFT's
``inject_adapter_in_model`` does, but leaves every other parameter trainable,
as the ReLoRA reference implementation does [1]_.

References
----------
.. [1] V. Lialin, N. Shivagunde, S. Muckatira, A. Rumshisky, "ReLoRA: High-Rank
   Training Through Low-Rank Updates", ICLR 2024, arXiv:2307.05695;
   code ``Guitaricet/relora`` ``peft_pretraining/relora.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


class LoRALinear(nn.Module):
    r"""An ``nn.Linear`` with a frozen weight and a trainable low-rank update.

    .. math::

        y = x W^\top + b + \frac{\alpha}{r}\, \mathrm{dropout}(x) A^\top B^\top,
        \qquad A \in \mathbb{R}^{r \times d_\text{in}},\;
        B \in \mathbb{R}^{d_\text{out} \times r}.

    ``A`` is initialised Kaiming-uniform (``a = √5``, as ``nn.Linear``) and
    ``B`` at zero, so a fresh adapter leaves the layer's output unchanged.

    Parameters
    ----------
    base : nn.Linear
        The layer to wrap; its ``weight`` is frozen in place (``requires_grad``
        set to False); its ``bias``, if any, keeps its ``requires_grad``.
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

    Raises
    ------
    TypeError
        ``base`` is not an ``nn.Linear``.
    ValueError
        ``r``, ``alpha`` or ``dropout`` out of range.

    Examples
    --------
    >>> layer = LoRALinear(nn.Linear(8, 4), r=2, alpha=4.0)
    >>> layer(torch.randn(3, 8)).shape
    torch.Size([3, 4])
    >>> layer.merge(); layer.reinit()   # one ReLoRA restart; output unchanged
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float = 1.0, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"`LoRALinear` requires an nn.Linear `base`, got {type(base).__name__}")
        max_r = min(base.in_features, base.out_features)
        if not isinstance(r, int) or not 1 <= r <= max_r:
            raise ValueError(f"`r` must be an integer in [1, {max_r}] for this layer, got {r!r}")
        if not alpha > 0:
            raise ValueError(f"`alpha` must be positive, got {alpha!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must lie in [0, 1), got {dropout!r}")
        self.base = base
        base.weight.requires_grad_(False)
        self.r = r
        self.alpha = float(alpha)
        self.scaling = self.alpha / r
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.empty(base.out_features, r, **factory))
        self.merged = False
        self.reinit()

    @property
    def in_features(self) -> int:
        """Input width of the wrapped layer."""
        return self.base.in_features

    @property
    def out_features(self) -> int:
        """Output width of the wrapped layer."""
        return self.base.out_features

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layer.

        Parameters
        ----------
        x : Tensor of shape (..., in_features)

        Returns
        -------
        Tensor of shape (..., out_features)
        """
        y = self.base(x)
        if self.merged:
            return y
        return y + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def delta_weight(self) -> Tensor:
        """Return the adapter's update ``(α / r) B A``, a tensor of shape (out_features, in_features)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ``(α / r) B A`` into ``base.weight``; the adapter path is then skipped.

        Raises
        ------
        RuntimeError
            Already merged.
        FloatingPointError
            The update is not finite (the weight is left untouched).
        """
        if self.merged:
            raise RuntimeError("`LoRALinear.merge` called on an already merged layer; call `unmerge` first")
        delta = self.delta_weight()
        if not torch.isfinite(delta).all():
            raise FloatingPointError("the LoRA update is not finite; refusing to merge it into the weight")
        self.base.weight.add_(delta)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract ``(α / r) B A`` from ``base.weight`` again (inverse of :meth:`merge`).

        Raises
        ------
        RuntimeError
            Not merged.
        """
        if not self.merged:
            raise RuntimeError("`LoRALinear.unmerge` called on a layer that is not merged")
        self.base.weight.sub_(self.delta_weight())
        self.merged = False

    @torch.no_grad()
    def reinit(self) -> None:
        """Re-draw ``A`` (Kaiming-uniform) and zero ``B``; the layer counts as unmerged.

        After :meth:`merge` this starts a new low-rank segment without changing
        the layer's function. On an unmerged layer it discards the current update.
        """
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)
        self.merged = False

    def extra_repr(self) -> str:
        """Describe the adapter in ``repr(model)``."""
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


@dataclass(frozen=True)
class LoRASummary:
    """What :func:`inject_lora` did.

    Attributes
    ----------
    wrapped : tuple of str
        Names of the ``nn.Linear`` modules replaced by :class:`LoRALinear`.
    adapter_params : int
        Number of LoRA parameters (all ``A`` and ``B``).
    trainable_params : int
        Parameters with ``requires_grad`` after injection (adapters plus the
        modules left trainable).
    total_params : int
        All parameters, frozen ones included.
    """

    wrapped: tuple[str, ...]
    adapter_params: int
    trainable_params: int
    total_params: int

    def __str__(self) -> str:
        share = 100.0 * self.trainable_params / max(1, self.total_params)
        return (
            f"LoRA on {len(self.wrapped)} layers; {self.adapter_params:,} adapter parameters; "
            f"{self.trainable_params:,} of {self.total_params:,} parameters trainable ({share:.1f}%)"
        )


def _matches(name: str, targets: str | Sequence[str]) -> bool:
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    parts = name.split(".")
    return any(t == name or t in parts for t in targets)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Count the scalars in ``model``'s parameters (only ``requires_grad`` ones if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def inject_lora(
    model: nn.Module,
    targets: str | Sequence[str],
    r: int,
    alpha: float = 1.0,
    dropout: float = 0.0,
    *,
    freeze_others: bool = False,
) -> LoRASummary:
    """Replace the matching ``nn.Linear`` sub-modules of ``model`` by :class:`LoRALinear`, in place.

    Parameters
    ----------
    model : nn.Module
        Any model.
    targets : str or sequence of str
        Which layers to wrap, by dotted module name. A string is a regular
        expression matched against the whole name (PEFT's convention); in a
        sequence, each item matches a name equal to it or containing it as one
        dot-separated component, so ``("attn", "mlp")`` wraps every linear
        layer below modules called ``attn`` or ``mlp`` (the reference's choice)
        and ``("q_proj", "v_proj")`` wraps those layers only.
    r : int
        Adapter rank.
    alpha : float, default=1.0
        Adapter scale numerator (update scaled by ``alpha / r``).
    dropout : float, default=0.0
        Dropout on the adapters' input.
    freeze_others : bool, default=False
        Freeze every parameter outside the adapters (PEFT's default). ReLoRA
        leaves embeddings, norms and the output head trainable (False).

    Returns
    -------
    LoRASummary

    Raises
    ------
    ValueError
        No ``nn.Linear`` matches ``targets``, or the model already holds adapters.
    """
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("`model` already contains LoRALinear layers; inject adapters only once")
    if not isinstance(targets, str) and (not targets or not all(isinstance(t, str) for t in targets)):
        raise ValueError(
            f"`targets` must be a regex string or a non-empty sequence of names, got {targets!r}"
        )
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, targets)]
    if not names:
        linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        raise ValueError(
            f"`targets`={targets!r} matches no nn.Linear of the model; its linear layers are "
            f"{linear[:8]}{' ...' if len(linear) > 8 else ''}"
        )
    if freeze_others:
        for p in model.parameters():
            p.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), r=r, alpha=alpha, dropout=dropout))
    adapters = sum(p.numel() for p in lora_parameters(model))
    return LoRASummary(
        wrapped=tuple(names),
        adapter_params=adapters,
        trainable_params=count_parameters(model, trainable_only=True),
        total_params=count_parameters(model),
    )


def lora_modules(model: nn.Module) -> Iterator[tuple[str, LoRALinear]]:
    """Yield ``(name, module)`` for every :class:`LoRALinear` in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            yield name, module


def lora_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Yield every adapter parameter (``lora_A`` then ``lora_B`` of each layer)."""
    for _, module in lora_modules(model):
        yield module.lora_A
        yield module.lora_B
