r"""What to remove: saliency scores of the masked weights (higher = keep).

Every function returns ``{name: Tensor}`` keyed by the masked tensor names of
:func:`~sciprob.learning.sparse.masks.masked_tensors`, ready for
``prune(model, sparsity, score=...)``.

=============  ===================================================  ======================
score          value for weight :math:`w` (kept if large)           needs
=============  ===================================================  ======================
magnitude      :math:`|w|`                                          nothing
random         :math:`u \sim U(0, 1)`                               a generator
movement       :math:`-\sum_t g_t w_t` (Sanh et al. 2020 [1]_)      training gradients
SNIP           :math:`|g \odot w|` (Lee et al. 2019 [2]_)           one loss
GraSP          :math:`w \odot H g` (Wang et al. 2020 [3]_)          one loss, a Hessian-vector product
SynFlow        :math:`(\partial R / \partial w) \odot w`,           the input shape only
               :math:`R = \mathbf 1^\top \prod_l |W_l| \mathbf 1`
               (Tanaka et al. 2020 [4]_)
=============  ===================================================  ======================

GraSP's paper scores :math:`S = -w \odot Hg` and removes the *largest*
:math:`S`; the function here returns :math:`-S` so that, as for every other
score, the largest values are kept.

Gradients are taken with respect to the hidden weights behind the masks, so
masked elements score zero; :func:`~sciprob.learning.sparse.masks.prune`
keeps them removed anyway (``cumulative=True``).

References
----------
.. [1] V. Sanh, T. Wolf, A. Rush, "Movement Pruning: Adaptive Sparsity by Fine-Tuning", NeurIPS 2020.
.. [2] N. Lee, T. Ajanthan, P. Torr, "SNIP: Single-shot Network Pruning based on Connection Sensitivity",
   ICLR 2019.
.. [3] C. Wang, G. Zhang, R. Grosse, "Picking Winning Tickets Before Training by Preserving Gradient Flow",
   ICLR 2020.
.. [4] H. Tanaka, D. Kunin, D. Yamins, S. Ganguli, "Pruning neural networks without any data by iteratively
   conserving synaptic flow", NeurIPS 2020.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from sciprob.learning.sparse.masks import SparsitySummary, check_sparsity, masked_tensors, prune

LossFn = Callable[[nn.Module], Tensor]


def _entries_or_raise(model: nn.Module):
    entries = list(masked_tensors(model))
    if not entries:
        raise ValueError("`model` has no masks; call `sparsify(model, targets)` first")
    return entries


def magnitude_scores(model: nn.Module) -> dict[str, Tensor]:
    """Return ``|W ⊙ M|`` for every masked tensor."""
    return {e.name: e.effective().abs() for e in _entries_or_raise(model)}


def random_scores(model: nn.Module, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Return i.i.d. uniform scores (random pruning), drawn on the CPU from ``generator``."""
    return {
        e.name: torch.rand(e.mask.shape, generator=generator).to(e.mask.device)
        for e in _entries_or_raise(model)
    }


def snip_scores(model: nn.Module, loss_fn: LossFn) -> dict[str, Tensor]:
    """SNIP connection sensitivity ``|∂L/∂w ⊙ w|``.

    Parameters
    ----------
    model : nn.Module
        A masked model (gradients are left unchanged: taken with autograd.grad).
    loss_fn : callable
        ``loss_fn(model) -> scalar Tensor``, e.g. the loss of one batch.

    Returns
    -------
    dict of str to Tensor
    """
    entries = _entries_or_raise(model)
    params = [e.original for e in entries]
    grads = torch.autograd.grad(loss_fn(model), params, allow_unused=True)
    return {
        e.name: (torch.zeros_like(p) if g is None else (g * p).abs()).detach()
        for e, p, g in zip(entries, params, grads, strict=True)
    }


def grasp_scores(model: nn.Module, loss_fn: LossFn) -> dict[str, Tensor]:
    r"""GraSP keep-score :math:`w \odot H g` (the negative of the paper's removal score).

    Parameters
    ----------
    model : nn.Module
    loss_fn : callable
        ``loss_fn(model) -> scalar Tensor``; called twice (gradient, then the
        Hessian-vector product :math:`\nabla (g^\top \bar g)` with :math:`\bar g` held fixed).

    Returns
    -------
    dict of str to Tensor
    """
    entries = _entries_or_raise(model)
    params = [e.original for e in entries]
    g = [x.detach() for x in torch.autograd.grad(loss_fn(model), params)]
    g2 = torch.autograd.grad(loss_fn(model), params, create_graph=True)
    z = sum((a * b).sum() for a, b in zip(g2, g, strict=True))
    hg = torch.autograd.grad(z, params)
    return {e.name: (p * h).detach() for e, p, h in zip(entries, params, hg, strict=True)}


def synflow_scores(model: nn.Module, input_shape: Sequence[int]) -> dict[str, Tensor]:
    r"""SynFlow scores :math:`(\partial R/\partial w) \odot w` with no data.

    The model is copied, put in ``eval`` mode and float64, every parameter and
    buffer replaced by its absolute value, and
    :math:`R = \mathbf 1^\top f(\mathbf 1)` computed on an all-ones input of
    ``(1, *input_shape)``; ``model`` itself is not changed.

    Parameters
    ----------
    model : nn.Module
    input_shape : sequence of int
        Shape of one input without the batch dimension, e.g. ``(1, 8, 8)``.

    Returns
    -------
    dict of str to Tensor
        On the model's device and dtype.
    """
    entries = _entries_or_raise(model)
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"`input_shape` must be a non-empty shape of positive sizes, got {input_shape!r}")
    twin = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in twin.parameters():
            p.abs_()
        for name, b in twin.named_buffers():
            if b.is_floating_point() and not name.endswith("running_var"):
                b.abs_()
    twin_entries = {e.name: e for e in masked_tensors(twin)}
    params = [twin_entries[e.name].original for e in entries]
    device = params[0].device
    r = twin(torch.ones((1, *shape), dtype=torch.float64, device=device)).sum()
    grads = torch.autograd.grad(r, params)
    return {
        e.name: (g * p).detach().to(e.original.dtype) for e, p, g in zip(entries, params, grads, strict=True)
    }


def synflow_prune(
    model: nn.Module, sparsity: float, input_shape: Sequence[int], iterations: int = 100
) -> SparsitySummary:
    r"""Prune at initialisation by iterative SynFlow: ``iterations`` rounds of score-and-prune.

    Round :math:`k` prunes globally to density :math:`d^{k/n}` (the paper's
    exponential schedule), so the final density is :math:`d = 1 - s`.

    Parameters
    ----------
    model : nn.Module
        A masked model (see :func:`~sciprob.learning.sparse.masks.sparsify` with ``sparsity=0``).
    sparsity : float in [0, 1)
    input_shape : sequence of int
    iterations : int, default=100

    Returns
    -------
    SparsitySummary
    """
    sparsity = check_sparsity(sparsity)
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"`iterations` must be a positive integer, got {iterations!r}")
    _entries_or_raise(model)
    summary = None
    for k in range(1, iterations + 1):
        target = 1.0 - (1.0 - sparsity) ** (k / iterations)
        summary = prune(model, target, score=synflow_scores(model, input_shape), allocation="global")
    return summary


class MovementScores:
    r"""Movement pruning scores accumulated during training: :math:`S = -\sum_t g_t \odot w_t`.

    Call :meth:`update` after every ``loss.backward()`` (before or after the
    optimizer step); pass the instance as ``score=`` to
    :func:`~sciprob.learning.sparse.masks.prune` or a
    :class:`~sciprob.learning.sparse.schedules.GradualPruner` (it is callable).

    Parameters
    ----------
    model : nn.Module
        A masked model.
    """

    def __init__(self, model: nn.Module) -> None:
        self.entries = _entries_or_raise(model)
        self.scores = {e.name: torch.zeros_like(e.mask, dtype=torch.float32) for e in self.entries}
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        """Add ``-grad ⊙ weight`` of the current gradients (skips tensors without a gradient)."""
        for e in self.entries:
            g = e.original.grad
            if g is not None:
                self.scores[e.name] -= (g * e.original).float()
        self.updates += 1

    def __call__(self) -> dict[str, Tensor]:
        """Return the accumulated scores (copies)."""
        if self.updates == 0:
            raise RuntimeError("`MovementScores` has seen no gradients; call `update()` after each backward")
        return {k: v.clone() for k, v in self.scores.items()}
