"""Channel (filter) pruning that physically shrinks the model, through Torch-Pruning's dependency graph.

Removing output channel :math:`c` of a layer also removes input channel
:math:`c` of every layer that reads it, the matching batch-norm entries, and
flattened features downstream; Torch-Pruning's ``DependencyGraph`` [1]_ finds
these coupled groups in any traced model. :func:`prune_channels` asks it for
the groups of lowest importance and either removes them (``mode="remove"``:
dense layers, smaller, and really faster on every device) or masks every
tensor slice of each group to zero (``mode="mask"``: same shapes, same
computation cost).

When every non-linearity after a pruned channel maps 0 to 0 (ReLU, GELU,
identity, max-pooling) and batch norm is in ``eval`` mode, the masked and the
removed model compute the same function: a masked channel outputs exactly zero
(weight, bias, batch-norm scale and shift all zero) and its readers' weights on
it are zero too. Non-linearities with ``f(0) != 0`` (sigmoid) break this, and so does
batch norm in training mode.

References
----------
.. [1] G. Fang, X. Ma, M. Song, M. B. Mi, X. Wang, "DepGraph: Towards Any Structural
   Pruning", CVPR 2023; PyPI ``torch-pruning``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from sciprob.learning.sparse.masks import add_mask, masked_tensors

IMPORTANCES = ("l1", "l2", "random", "taylor")


@dataclass(frozen=True)
class StructuredSummary:
    """What :func:`prune_channels` did.

    Attributes
    ----------
    params_before, params_after : int
        Parameters of the model (masked elements count as removed in ``mask`` mode).
    macs_before, macs_after : int
        Multiply-accumulates of one forward of ``example_inputs`` (shape-based,
        so unchanged by masks).
    groups : int
        Coupled channel groups pruned.
    channels : int
        Channels removed over all groups (counted at each group's root layer).
    """

    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    groups: int
    channels: int


def _importance(kind: str):
    import torch_pruning as tp

    if kind == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if kind == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if kind == "taylor":
        return tp.importance.GroupTaylorImportance()
    return tp.importance.RandomImportance()


def _default_ignored(model: nn.Module) -> list[nn.Module]:
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d)]
    return layers[-1:]


def _mask_slice(module: nn.Module, handler: str, idxs: Sequence[int]) -> None:
    idx = torch.as_tensor(list(idxs), dtype=torch.long)
    if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
        w = module.weight
        m = torch.ones_like(w, dtype=torch.bool)
        transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
        if handler == "prune_out_channels":
            m.index_fill_(1 if transposed else 0, idx.to(w.device), False)
            add_mask(module, "weight", m)
            if module.bias is not None:
                mb = torch.ones_like(module.bias, dtype=torch.bool)
                mb[idx] = False
                add_mask(module, "bias", mb)
        else:
            m.index_fill_(0 if transposed else 1, idx.to(w.device), False)
            add_mask(module, "weight", m)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm | nn.LayerNorm | nn.GroupNorm):
        for name in ("weight", "bias"):
            t = getattr(module, name, None)
            if isinstance(t, Tensor):
                mt = torch.ones_like(t, dtype=torch.bool)
                mt.view(-1)[idx] = False
                add_mask(module, name, mt)
    elif any(True for _ in module.parameters(recurse=False)):
        raise NotImplementedError(
            f"`mode='mask'` cannot mask a pruned group slice of {type(module).__name__}; use mode='remove'"
        )


def _count(model: nn.Module) -> int:
    masked = {id(e.original): int((e.mask).sum()) for e in masked_tensors(model)}
    return sum(masked.get(id(p), p.numel()) for p in model.parameters())


def prune_channels(
    model: nn.Module,
    example_inputs: Tensor,
    ratio: float = 0.5,
    *,
    importance: str = "l1",
    mode: Literal["remove", "mask"] = "remove",
    ignored_layers: Sequence[nn.Module] | None = None,
    global_pruning: bool = False,
    round_to: int | None = None,
) -> StructuredSummary:
    """Prune ``ratio`` of the channels of every prunable layer of ``model``, in place.

    Parameters
    ----------
    model : nn.Module
        Any model Torch-Pruning can trace (convolutions, linear layers, norms,
        residual additions, concatenations, attention heads).
    example_inputs : Tensor of shape (batch, ...)
        An input for tracing the dependency graph.
    ratio : float in [0, 1), default=0.5
        Fraction of the channels of each layer to remove.
    importance : {"l1", "l2", "random", "taylor"}, default="l1"
        Group importance: L1/L2 norm of every coupled slice, random, or
        first-order Taylor (needs ``.grad`` filled by a backward pass).
    mode : {"remove", "mask"}, default="remove"
    ignored_layers : sequence of nn.Module, default=None
        Layers whose output channels are kept; None keeps the last linear or
        convolution layer (the output), so the output shape is unchanged.
    global_pruning : bool, default=False
        Rank groups over the whole model instead of per layer.
    round_to : int, default=None
        Keep channel counts multiples of this (for hardware-friendly widths).

    Returns
    -------
    StructuredSummary

    Raises
    ------
    ValueError
        ``ratio`` outside [0, 1), unknown ``importance`` or ``mode``, or a model
        that already carries masks in ``remove`` mode.
    """
    import torch_pruning as tp

    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio < 1.0:
        raise ValueError(
            f"`ratio` must be a float in [0, 1) (the fraction of channels removed), got {ratio!r}"
        )
    if importance not in IMPORTANCES:
        raise ValueError(f"`importance` must be one of {IMPORTANCES}, got {importance!r}")
    if mode not in ("remove", "mask"):
        raise ValueError(f"`mode` must be 'remove' or 'mask', got {mode!r}")
    if any(True for _ in masked_tensors(model)):
        raise ValueError(
            "`model` already has masks; call `remove_masks(model)` before channel pruning (the dependency "
            "graph needs plain parameters)"
        )
    if not isinstance(example_inputs, Tensor):
        raise TypeError(f"`example_inputs` must be a Tensor, got {type(example_inputs).__name__}")
    ignored = list(_default_ignored(model) if ignored_layers is None else ignored_layers)
    was_training = model.training
    model.eval()
    macs_before, params_before = tp.utils.count_ops_and_params(model, example_inputs)
    pruner = tp.pruner.MetaPruner(
        model,
        example_inputs,
        importance=_importance(importance),
        pruning_ratio=float(ratio),
        ignored_layers=ignored,
        global_pruning=global_pruning,
        round_to=round_to,
    )
    groups = 0
    channels = 0
    plan: list[tuple[nn.Module, str, list[int]]] = []
    for group in pruner.step(interactive=True):
        groups += 1
        channels += len(group[0].idxs)
        if mode == "remove":
            group.prune()
        else:
            for item in group:
                plan.append((item.dep.target.module, item.dep.handler.__name__, list(item.idxs)))
    for module, handler, idxs in plan:
        _mask_slice(module, handler, idxs)
    macs_after, _ = tp.utils.count_ops_and_params(model, example_inputs)
    model.train(was_training)
    return StructuredSummary(
        params_before=int(params_before),
        params_after=_count(model),
        macs_before=int(macs_before),
        macs_after=int(macs_after),
        groups=groups,
        channels=channels,
    )
