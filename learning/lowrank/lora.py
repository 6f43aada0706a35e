"""Injection of LoRA adapters into any model, atomically, and the adapters' bookkeeping.

:func:`inject_lora` swaps the matching layers of a model for adapters
(:mod:`~sciprob.learning.lowrank.layers`, :mod:`~sciprob.learning.lowrank.attention`)
the way PEFT's ``inject_adapter_in_model`` does, but leaves every other
parameter trainable, as the ReLoRA reference implementation does [1]_. Every
matching layer is checked before the model is touched, so a model with one
layer that cannot be adapted is rejected unchanged.

==========================  ===============================  ==========================
matched layer type          adapter                          matrix that gets ``B A``
==========================  ===============================  ==========================
``nn.MultiheadAttention``   :class:`LoRAMultiheadAttention`  ``in_proj_weight`` (3E, E)
                                                             and ``out_proj.weight``
``nn.Linear`` (subclasses)  :class:`LoRALinear`              ``weight``
``nn.Conv1d``, ``Conv2d``   :class:`LoRAConv`                ``weight.flatten(1)``
``nn.Embedding``            :class:`LoRAEmbedding`           ``weight.T``
==========================  ===============================  ==========================

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

from torch import nn

from sciprob.learning.lowrank.attention import LoRAMultiheadAttention
from sciprob.learning.lowrank.layers import LoRAConv, LoRAEmbedding, LoRALayer, LoRALinear

__all__ = [
    "LoRAConv",
    "LoRAEmbedding",
    "LoRALayer",
    "LoRALinear",
    "LoRAMultiheadAttention",
    "LoRASummary",
    "count_parameters",
    "inject_lora",
    "lora_modules",
    "lora_parameters",
]

ADAPTABLE = (nn.MultiheadAttention, nn.Linear, nn.Conv1d, nn.Conv2d, nn.Embedding)
# Layers with a weight that LoRA could mean something for, but that no adapter here supports:
# matching one is an error, not a silent skip.
UNSUPPORTED = (
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Bilinear,
    nn.EmbeddingBag,
    nn.RNNBase,
)


@dataclass(frozen=True)
class LoRASummary:
    """What :func:`inject_lora` did.

    Attributes
    ----------
    wrapped : tuple of str
        Names of the modules replaced by adapters (an attention module's
        ``out_proj`` is adapted with it and not listed).
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


def _matrix_shape(module: nn.Module) -> tuple[int, int]:
    """(out, in) of the matrix an adapter would update (for MHA: the smaller, out_proj's)."""
    if isinstance(module, nn.MultiheadAttention):
        return module.embed_dim, module.embed_dim
    if isinstance(module, nn.Linear):
        return module.out_features, module.in_features
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        return module.out_channels, module.in_channels * math.prod(module.kernel_size)
    return module.embedding_dim, module.num_embeddings


def _why_not(module: nn.Module, r: int, tied: set[int]) -> str | None:
    """Why ``module`` (an ADAPTABLE or UNSUPPORTED layer) cannot take a rank-``r`` adapter, or None."""
    if isinstance(module, UNSUPPORTED):
        return "no adapter for this type (supported: MultiheadAttention, Linear, Conv1d/2d, Embedding)"
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in module.parameters()):
        return "lazy layer not yet initialised; run one forward pass first"
    if isinstance(module, nn.Linear) and type(module).forward is not nn.Linear.forward:
        return "it overrides nn.Linear.forward, so merging B A into its weight could change its function"
    if isinstance(module, nn.MultiheadAttention) and not module._qkv_same_embed_dim:
        return f"kdim={module.kdim}, vdim={module.vdim} differ from embed_dim={module.embed_dim}"
    if isinstance(module, nn.Conv1d | nn.Conv2d) and module.groups != 1:
        return f"groups={module.groups}; only groups=1 is supported"
    if isinstance(module, nn.Embedding) and module.max_norm is not None:
        return f"max_norm={module.max_norm}; only max_norm=None is supported"
    weights = (
        [module.in_proj_weight, module.out_proj.weight]
        if isinstance(module, nn.MultiheadAttention)
        else [module.weight]
    )
    if any(id(w) in tied for w in weights):
        return "its weight is shared with another module (tied); a merge would change both"
    if not all(w.is_floating_point() for w in weights):
        return "its weight is not floating point"
    out_dim, in_dim = _matrix_shape(module)
    if r > min(out_dim, in_dim):
        return f"`r`={r} exceeds min(out, in) = min({out_dim}, {in_dim})"
    return None


def _adapter(module: nn.Module, r: int, alpha: float, dropout: float) -> LoRALayer:
    if isinstance(module, nn.MultiheadAttention):
        return LoRAMultiheadAttention(module, r, alpha, dropout)
    if isinstance(module, nn.Linear):
        return LoRALinear(module, r, alpha, dropout)
    if isinstance(module, nn.Conv1d | nn.Conv2d):
        return LoRAConv(module, r, alpha, dropout)
    return LoRAEmbedding(module, r, alpha)


def inject_lora(
    model: nn.Module,
    targets: str | Sequence[str],
    r: int,
    alpha: float = 1.0,
    dropout: float = 0.0,
    *,
    freeze_others: bool = False,
) -> LoRASummary:
    """Replace the matching layers of ``model`` by LoRA adapters, in place, or leave it unchanged.

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
        and ``("q_proj", "v_proj")`` wraps those layers only. Only layers of
        the types in the module table are candidates (norms, activations and
        containers that match are passed over); a matched
        ``nn.MultiheadAttention`` brings its ``out_proj`` along.
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
        Bad ``r``, ``alpha``, ``dropout`` or ``targets``; no layer matches; the
        model already holds adapters; or a matching layer cannot be adapted
        (the message names each such layer, its type and the reason). In every
        case the model is left exactly as it was.

    Notes
    -----
    An ``nn.TransformerEncoder`` holding adapted attention gets
    ``use_nested_tensor = False``: its inference fast path reads the packed
    projection weights directly and would bypass the adapters.
    """
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"`r` must be a positive integer, got {r!r}")
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"`alpha` must be a positive finite number, got {alpha!r}")
    if not (isinstance(dropout, int | float) and 0.0 <= dropout < 1.0):
        raise ValueError(f"`dropout` must lie in [0, 1), got {dropout!r}")
    if not isinstance(targets, str) and (
        isinstance(targets, bytes) or not targets or not all(isinstance(t, str) for t in targets)
    ):
        raise ValueError(
            f"`targets` must be a regex string or a non-empty sequence of names, got {targets!r}"
        )
    if any(isinstance(m, LoRALayer) for m in model.modules()):
        raise ValueError("`model` already contains LoRA layers; inject adapters only once")

    owners: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        owners[id(p)] = owners.get(id(p), 0) + 1
    tied = {k for k, count in owners.items() if count > 1}
    names: list[str] = []
    problems: list[str] = []
    covered: list[str] = []  # attention modules whose out_proj comes along
    for name, module in model.named_modules():
        if any(name.startswith(c + ".") for c in covered):
            continue
        if not isinstance(module, ADAPTABLE + UNSUPPORTED) or not _matches(name, targets):
            continue
        if name == "":
            problems.append(
                f"the model itself is a {type(module).__name__}; wrap it directly (e.g. LoRALinear(model, r))"
            )
            continue
        reason = _why_not(module, r, tied)
        if reason is not None:
            problems.append(f"`{name}` ({type(module).__name__}): {reason}")
            continue
        names.append(name)
        if isinstance(module, nn.MultiheadAttention):
            covered.append(name)
    if problems:
        raise ValueError(
            f"`inject_lora` cannot adapt {len(problems)} matching layer(s), model left unchanged: "
            + "; ".join(problems[:5])
            + (" ..." if len(problems) > 5 else "")
            + "; exclude them from `targets` or change `r`"
        )
    if not names:
        layers = [n for n, m in model.named_modules() if isinstance(m, ADAPTABLE) and n]
        raise ValueError(
            f"`targets`={targets!r} matches no nn.Linear (or other adaptable layer) of the model; its "
            f"adaptable layers are {layers[:8]}{' ...' if len(layers) > 8 else ''}"
        )

    if freeze_others:
        for p in model.parameters():
            p.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, _adapter(getattr(parent, child), r, alpha, dropout))
    for module in model.modules():
        if isinstance(module, nn.TransformerEncoder) and any(
            isinstance(m, LoRAMultiheadAttention) for m in module.modules()
        ):
            module.use_nested_tensor = False
    adapters = sum(p.numel() for p in lora_parameters(model))
    return LoRASummary(
        wrapped=tuple(names),
        adapter_params=adapters,
        trainable_params=count_parameters(model, trainable_only=True),
        total_params=count_parameters(model),
    )


def lora_modules(model: nn.Module) -> Iterator[tuple[str, LoRALayer]]:
    """Yield ``(name, module)`` for every outermost :class:`LoRALayer` in ``model``.

    Adapters owned by another one (the ``out_proj`` of a
    :class:`LoRAMultiheadAttention`) are merged and restarted with their owner
    and are not listed separately.
    """
    outer: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, LoRALayer) and not any(name.startswith(o + ".") for o in outer):
            outer.append(name)
            yield name, module


def lora_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Yield every adapter parameter (``lora_A`` then ``lora_B`` of each adapter, nested ones included)."""
    for module in model.modules():
        if isinstance(module, LoRALayer):
            yield module.lora_A
            yield module.lora_B
