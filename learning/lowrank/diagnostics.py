"""Spectra of learnt weight updates, to tell whether ``W_T - W_0`` is high-rank.

ReLoRA's rank evidence [1]_ (``notebooks/09_bar_plot.ipynb`` of the reference)
counts, per layer type, the singular values of ``W_T - W_0`` below 0.1: a
rank-r LoRA update has all but r of them at zero, full-rank training almost
none, ReLoRA in between.

References
----------
.. [1] V. Lialin et al., "ReLoRA: High-Rank Training Through Low-Rank Updates", ICLR 2024, Fig. 4.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sciprob.learning.lowrank.lora import ADAPTABLE, LoRALayer, _matches


def _plain_name(name: str, wrappers: set[str]) -> str:
    parts = name.split(".")
    keep = [p for i, p in enumerate(parts) if not (p == "base" and ".".join(parts[:i]) in wrappers)]
    return ".".join(keep)


def effective_weights(model: nn.Module, targets: str | Sequence[str] = ("attn", "mlp")) -> dict[str, Tensor]:
    """Return the weight matrix each targeted layer applies now, adapters included.

    Parameters
    ----------
    model : nn.Module
    targets : str or sequence of str, default=("attn", "mlp")
        Layer-name patterns as in :func:`~sciprob.learning.lowrank.inject_lora`,
        matched against the plain (unwrapped) names.

    Returns
    -------
    dict of str to Tensor of shape (out, in)
        Detached float32 CPU copies of the matrix views (a kernel flattened to
        (out, in·k), an embedding table transposed), keyed by the plain layer
        name (a wrapped layer ``x.base`` is reported as ``x``; the packed
        projection of an attention module ``a`` as ``a.in_proj``), so models
        with and without adapters compare key by key.
    """
    wrappers = {n for n, m in model.named_modules() if isinstance(m, LoRALayer)}
    out: dict[str, Tensor] = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            plain = _plain_name(name, wrappers)
            if isinstance(module, LoRALayer):
                key = f"{plain}.in_proj" if isinstance(module.base, nn.MultiheadAttention) else plain
                w = module.effective_matrix()
            elif any(name == f"{w}.base" for w in wrappers) or not isinstance(module, ADAPTABLE):
                continue
            elif isinstance(module, nn.MultiheadAttention):
                key, w = f"{plain}.in_proj", module.in_proj_weight
            elif isinstance(module, nn.Embedding):
                key, w = plain, module.weight.t()
            else:
                key, w = plain, module.weight.flatten(1)
            if _matches(plain, targets):
                out[key] = w.detach().float().cpu().clone()
    return out


@dataclass(frozen=True)
class UpdateSpectrum:
    """Singular values of ``W_T - W_0`` of one layer.

    Attributes
    ----------
    name : str
    singular_values : Tensor of shape (min(out, in),)
        Descending.
    """

    name: str
    singular_values: Tensor

    def rank(self, rtol: float = 1e-3) -> int:
        """Numerical rank: singular values above ``rtol`` times the largest (0 for a zero update)."""
        s = self.singular_values
        return int((s > rtol * s[0]).sum()) if s.numel() and s[0] > 0 else 0

    def count_below(self, threshold: float = 0.1) -> int:
        """Singular values below an absolute ``threshold`` (the reference's rank evidence)."""
        return int((self.singular_values < threshold).sum())


def update_spectra(initial: Mapping[str, Tensor], final: Mapping[str, Tensor]) -> list[UpdateSpectrum]:
    """Spectra of ``final[name] - initial[name]`` for every shared layer name.

    Parameters
    ----------
    initial, final : mapping of str to Tensor of shape (out, in)
        From :func:`effective_weights` at the start and the end of training.

    Returns
    -------
    list of UpdateSpectrum
        In the order of ``final``.

    Raises
    ------
    ValueError
        No shared names, or mismatched shapes.
    """
    names = [n for n in final if n in initial]
    if not names:
        raise ValueError("`initial` and `final` share no layer names")
    spectra = []
    for name in names:
        if initial[name].shape != final[name].shape:
            raise ValueError(
                f"layer {name!r}: shapes {tuple(initial[name].shape)} and {tuple(final[name].shape)}"
            )
        delta = (final[name] - initial[name]).double()
        spectra.append(UpdateSpectrum(name, torch.linalg.svdvals(delta).float()))
    return spectra


def mean_update_rank(spectra: Sequence[UpdateSpectrum], rtol: float = 1e-3) -> float:
    """Mean numerical rank (:meth:`UpdateSpectrum.rank`) over layers."""
    return sum(s.rank(rtol) for s in spectra) / len(spectra)
