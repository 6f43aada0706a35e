"""Sparse inference for very sparse linear layers: CSR and BSR weights.

Torch's sparse × dense kernels beat a dense matrix product only at high
sparsity: measured on 2 CPU cores for 2048 × 2048 weights at batch 256, CSR
is ~2.5× *slower* than dense at 50 % sparsity and ~2–4× faster from 90 %
(``benchmarks/sparse_speed.py`` measures it again on your machine).
:func:`to_sparse_inference` therefore converts only layers at or above
``min_sparsity``.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from sciprob.learning.sparse.masks import match_modules

LAYOUTS = ("csr", "bsr")


class SparseLinear(nn.Module):
    r"""A linear layer with its weight stored in CSR or BSR layout: :math:`y = x W^\top + b`.

    Parameters
    ----------
    weight : Tensor of shape (out_features, in_features)
        Dense weight (zeros are dropped).
    bias : Tensor of shape (out_features,), default=None
    layout : {"csr", "bsr"}, default="csr"
    blocksize : tuple of int, default=(4, 4)
        BSR block shape; must divide the weight's shape.

    Attributes
    ----------
    weight : sparse Tensor of shape (out_features, in_features), a buffer (inference only)
    bias : Tensor or None
    """

    def __init__(
        self,
        weight: Tensor,
        bias: Tensor | None = None,
        layout: Literal["csr", "bsr"] = "csr",
        blocksize: tuple[int, int] = (4, 4),
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"`layout` must be one of {LAYOUTS}, got {layout!r}")
        if weight.dim() != 2:
            raise ValueError(f"`weight` must be 2-D (out, in), got shape {tuple(weight.shape)}")
        w = weight.detach()
        if layout == "bsr" and (w.shape[0] % blocksize[0] or w.shape[1] % blocksize[1]):
            raise ValueError(f"`blocksize`={blocksize} must divide the weight shape {tuple(w.shape)}")
        with warnings.catch_warnings():
            # torch warns once that sparse compressed layouts are "beta"; they are what we want here
            warnings.filterwarnings(
                "ignore", message="Sparse CSR tensor support is in beta", category=UserWarning
            )
            sparse = w.to_sparse_csr() if layout == "csr" else w.to_sparse_bsr(blocksize)
        self.out_features, self.in_features = w.shape
        self.layout = layout
        self.register_buffer("weight", sparse)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_linear(
        cls, linear: nn.Linear, layout: Literal["csr", "bsr"] = "csr", blocksize=(4, 4)
    ) -> SparseLinear:
        """Convert an ``nn.Linear`` (masked or not) to a :class:`SparseLinear`."""
        return cls(linear.weight, linear.bias, layout, blocksize)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layer.

        Parameters
        ----------
        x : Tensor of shape (..., in_features)

        Returns
        -------
        Tensor of shape (..., out_features)
        """
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        y = (self.weight @ flat.T).T
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    @property
    def nnz(self) -> int:
        """Stored values (non-zeros, or whole blocks for BSR)."""
        return int(self.weight.values().numel())

    def extra_repr(self) -> str:
        """Describe the layer in ``repr(model)``."""
        dens = self.nnz / (self.in_features * self.out_features)
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"layout={self.layout}, density={dens:.4f}"
        )


@torch.no_grad()
def to_sparse_inference(
    model: nn.Module,
    targets: str | Sequence[str] | None = None,
    min_sparsity: float = 0.9,
    layout: Literal["csr", "bsr"] = "csr",
    blocksize: tuple[int, int] = (4, 4),
) -> list[str]:
    """Replace the matching ``nn.Linear`` layers at least ``min_sparsity`` sparse by :class:`SparseLinear`.

    Masked layers are converted from their effective (masked) weights; the
    result is for inference (no gradients reach sparse buffers).

    Parameters
    ----------
    model : nn.Module
    targets : str, sequence of str or None, default=None
    min_sparsity : float in [0, 1], default=0.9
        Layers with a smaller fraction of zeros stay dense (sparse kernels lose there).
    layout : {"csr", "bsr"}, default="csr"
    blocksize : tuple of int, default=(4, 4)

    Returns
    -------
    list of str
        Names of the replaced layers.
    """
    if not 0.0 <= min_sparsity <= 1.0:
        raise ValueError(f"`min_sparsity` must lie in [0, 1], got {min_sparsity!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {LAYOUTS}, got {layout!r}")
    names = match_modules(model, targets, (nn.Linear,))
    replaced = []
    for name in names:
        mod = model.get_submodule(name)
        w = mod.weight.detach()
        if float((w == 0).float().mean()) < min_sparsity:
            continue
        if layout == "bsr" and (w.shape[0] % blocksize[0] or w.shape[1] % blocksize[1]):
            continue
        bias = mod.bias.detach() if mod.bias is not None else None
        new = SparseLinear(w, bias, layout, blocksize)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
        replaced.append(name)
    return replaced


def compare_latency(
    models: Mapping[str, Callable[[Tensor], Tensor]],
    inputs: Tensor,
    warmup: int = 20,
    repeats: int = 50,
) -> dict[str, float]:
    """Median wall time of one forward of each model, measured in interleaved rounds.

    All models are first run ``warmup`` times (allocators, caches and lazy
    kernel choices settle: without it, timings swing 3–10×); then every round
    times each model once, in an order rotated from round to round, so that
    drifts of the machine's speed (other processes, frequency scaling) hit all
    models alike. Runs under :func:`torch.inference_mode`.

    Parameters
    ----------
    models : mapping of str to callable
        Variant name to model (or any callable on ``inputs``).
    inputs : Tensor of shape (batch, ...)
    warmup : int, default=20
    repeats : int, default=50

    Returns
    -------
    dict of str to float
        Median seconds per forward.
    """
    if not models:
        raise ValueError("`models` must name at least one model")
    if warmup < 0 or repeats < 1:
        raise ValueError(f"`warmup` must be >= 0 and `repeats` >= 1, got {warmup!r}, {repeats!r}")
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    sync = torch.cuda.synchronize if inputs.is_cuda else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            for n in names:
                models[n](inputs)
        sync()
        for r in range(repeats):
            shift = r % len(names)
            for n in names[shift:] + names[:shift]:
                t0 = time.perf_counter()
                models[n](inputs)
                sync()
                times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(v) for n, v in times.items()}
