"""N:M semi-structured sparsity: at most N non-zeros in every M consecutive input weights.

With 2:4 masks on ``nn.Linear`` weights, NVIDIA's sparse tensor cores
(compute capability ≥ 8.0) multiply at up to twice the dense rate;
:func:`to_semi_structured` converts masked layers to
``torch.sparse.to_sparse_semi_structured`` tensors for that, on CUDA only (the
function raises on CPU tensors in torch ≥ 2.13). Following NVIDIA's recipe
(Mishra et al. 2021 [1]_), prune once by magnitude and retrain with the mask fixed.

References
----------
.. [1] A. Mishra et al., "Accelerating Sparse Deep Neural Networks", arXiv:2104.08378.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciprob.learning.sparse.masks import SparsitySummary, _summary, add_mask, masked_tensors, remove_masks


def nm_mask(weight: Tensor, n: int = 2, m: int = 4) -> Tensor:
    """Keep the ``n`` largest-magnitude entries of every group of ``m`` consecutive inputs.

    Parameters
    ----------
    weight : Tensor of shape (out_features, in_features)
        ``in_features`` divisible by ``m``.
    n, m : int, default=2, 4

    Returns
    -------
    BoolTensor of shape (out_features, in_features)
    """
    out_f, in_f = weight.shape
    groups = weight.detach().abs().reshape(out_f, in_f // m, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(-1, torch.topk(groups, n, dim=-1).indices, True)
    return keep.reshape(out_f, in_f)


def is_nm_sparse(weight: Tensor, n: int = 2, m: int = 4) -> bool:
    """Whether every group of ``m`` consecutive inputs of ``weight`` (out, in) has at most ``n`` non-zeros."""
    out_f, in_f = weight.shape
    if in_f % m:
        return False
    return bool(((weight.reshape(out_f, in_f // m, m) != 0).sum(-1) <= n).all())


def apply_nm(
    model: nn.Module, targets: str | Sequence[str] | None = None, n: int = 2, m: int = 4
) -> SparsitySummary:
    """Mask the matching ``nn.Linear`` layers of ``model`` to N:M sparsity by magnitude, in place.

    Parameters
    ----------
    model : nn.Module
    targets : str, sequence of str or None, default=None
        Module names as in :func:`~sciprob.learning.sparse.masks.match_modules`,
        matched against every module that has a ``weight``; None takes every ``nn.Linear``.
    n, m : int, default=2, 4
        ``0 < n < m``.

    Returns
    -------
    SparsitySummary

    Raises
    ------
    TypeError
        A matched module is not an ``nn.Linear`` (N:M kernels exist for linear layers only).
    ValueError
        Bad ``n``/``m``, ``targets`` matching nothing, or ``in_features`` not divisible by ``m``.
        All checks run before any module is changed.
    """
    from sciprob.learning.sparse.masks import _matches

    if not (isinstance(n, int) and isinstance(m, int) and 0 < n < m):
        raise ValueError(f"`n` and `m` must be integers with 0 < n < m, got n={n!r}, m={m!r}")
    with_weight = [
        (name, mod) for name, mod in model.named_modules() if isinstance(getattr(mod, "weight", None), Tensor)
    ]
    if targets is None:
        chosen = [(name, mod) for name, mod in with_weight if isinstance(mod, nn.Linear)]
    else:
        chosen = [(name, mod) for name, mod in with_weight if _matches(name, targets)]
    if not chosen:
        raise ValueError(
            f"`targets`={targets!r} matches no layer with a weight; layers: {[n for n, _ in with_weight][:8]}"
        )
    for name, mod in chosen:
        if not isinstance(mod, nn.Linear):
            raise TypeError(
                f"N:M sparsity supports nn.Linear layers only, but `targets` matches {name!r} of type "
                f"{type(mod).__name__}; exclude it from `targets`"
            )
        if mod.in_features % m:
            raise ValueError(f"layer {name!r} has in_features={mod.in_features}, not divisible by `m`={m}")
    for _name, mod in chosen:
        add_mask(mod, "weight", nm_mask(mod.weight, n, m))
    return _summary(list(masked_tensors(model)))


def to_semi_structured(model: nn.Module, n: int = 2, m: int = 4) -> list[str]:
    """Replace the 2:4-masked linear weights by CUDA semi-structured sparse tensors (inference only).

    The masks are removed first (zeros made permanent). Requires CUDA,
    compute capability ≥ 8.0 and fp16/bf16 (or fp32 with CUTLASS) weights.

    Returns
    -------
    list of str
        Converted layer names.

    Raises
    ------
    RuntimeError
        Weights not on CUDA (torch has no CPU kernels), or no 2:4 masked layer.
    """
    from torch.sparse import to_sparse_semi_structured

    entries = [
        e for e in masked_tensors(model) if isinstance(e.module, nn.Linear) and e.tensor_name == "weight"
    ]
    entries = [e for e in entries if is_nm_sparse(e.effective(), n, m)]
    if not entries:
        raise RuntimeError("`model` has no N:M-masked nn.Linear weight; call `apply_nm(model)` first")
    if n != 2 or m != 4:
        raise ValueError(f"semi-structured kernels need 2:4 sparsity, got {n}:{m}")
    bad = [e.name for e in entries if e.original.device.type != "cuda"]
    if bad:
        raise RuntimeError(
            f"`to_sparse_semi_structured` has CUDA kernels only; {bad[:3]} are on "
            f"{entries[0].original.device}: move the model with `.cuda().half()` first"
        )
    modules = [(e.name.rsplit(".", 1)[0], e.module) for e in entries]
    remove_masks(model)
    for _name, mod in modules:
        mod.weight = nn.Parameter(to_sparse_semi_structured(mod.weight.detach()), requires_grad=False)
    return [name for name, _ in modules]
