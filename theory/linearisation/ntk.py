r"""Empirical neural tangent kernels and the statistics tracked during training.

.. math::

    Θ(x, x')_{ab} = \sum_p \partial_{θ_p} f_a(x; θ)\, \partial_{θ_p} f_b(x'; θ)

Two implementations, following the PyTorch NTK tutorial and Novak et al. [1]_:

``"jacobian-contraction"``
    Per-example Jacobians with ``vmap(jacrev)``, contracted parameter block by
    parameter block. Cost ``N·O·[FP] + N₁N₂O²P``, memory ``c·O·P`` for a
    chunk of ``c`` examples. Best for small outputs and costly forward passes
    (CNNs).
``"ntk-vector-products"``
    For every example of ``x1`` and output ``a`` a VJP gives ``J₁ᵀe_a``, then
    one batched JVP over ``x2`` gives the kernel row; the Jacobian is never
    stored. Cost ``N₁·O`` VJPs and JVPs over ``N₂`` examples, memory
    ``c·O·P`` for the VJP vectors. Best for many parameters, cheap forward
    passes and large ``O``.

``outputs="trace"`` sums over the output pairs ``a = b`` (an ``N₁ × N₂``
kernel); ``outputs="full"`` keeps them (``N₁ × N₂ × O × O``). ``chunk_size``
bounds how many examples of each side are processed at once.

References
----------
.. [1] Novak, Sohl-Dickstein & Schoenholz, "Fast Finite Width Neural Tangent
   Kernel", ICML 2022, arXiv:2206.08720.
.. [2] Cristianini et al., "On kernel-target alignment", NeurIPS 2001;
   Cortes, Mohri & Rostamizadeh, "Algorithms for learning kernels based on
   centered alignment", JMLR 2012.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from sciprob.theory.linearisation.linearise import check_linearisable, trainable_parameters

__all__ = ["empirical_ntk", "kernel_distance", "kernel_target_alignment"]

Implementation = Literal["jacobian-contraction", "ntk-vector-products"]
Outputs = Literal["trace", "full"]
_IMPLEMENTATIONS = ("jacobian-contraction", "ntk-vector-products")

Params = dict[str, Tensor]


def _single(model: nn.Module) -> Callable[[Params, Tensor], Tensor]:
    """``f(θ, x) -> (O,)`` for one example ``x`` (no batch dimension)."""

    def f(params: Params, x: Tensor) -> Tensor:
        return functional_call(model, params, (x.unsqueeze(0),)).reshape(-1)

    return f


def _batched(model: nn.Module) -> Callable[[Params, Tensor], Tensor]:
    """``f(θ, x) -> (N, O)`` for a batch ``x``."""

    def f(params: Params, x: Tensor) -> Tensor:
        return functional_call(model, params, (x,)).reshape(x.shape[0], -1)

    return f


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _jacobian_contraction(
    model: nn.Module, params: Params, x1: Tensor, x2: Tensor, trace: bool, chunk: int, same: bool
) -> Tensor:
    jac = vmap(jacrev(_single(model)), (None, 0))  # dict name -> (c, O, *shape)
    equation = "naf,maf->nm" if trace else "naf,mbf->nmab"
    rows = []
    for s1 in _chunks(x1.shape[0], chunk):
        j1 = [j.flatten(2) for j in jac(params, x1[s1]).values()]
        blocks = []
        for s2 in _chunks(x2.shape[0], chunk):
            j2 = j1 if same and s1 == s2 else [j.flatten(2) for j in jac(params, x2[s2]).values()]
            blocks.append(sum(torch.einsum(equation, a, b) for a, b in zip(j1, j2, strict=True)))
        rows.append(torch.cat(blocks, dim=1))
    return torch.cat(rows, dim=0)


def _ntk_vector_products(
    model: nn.Module, params: Params, x1: Tensor, x2: Tensor, trace: bool, chunk: int, n_out: int
) -> Tensor:
    single, batched = _single(model), _batched(model)
    basis = torch.eye(n_out, dtype=x1.dtype, device=x1.device)

    def rows_for(x: Tensor, x2c: Tensor) -> Tensor:
        _, vjp_fn = vjp(lambda p: single(p, x), params)

        def row(cotangent: Tensor) -> Tensor:
            (v,) = vjp_fn(cotangent)  # J(x)ᵀ e_a, a parameter-shaped dict
            return jvp(lambda p: batched(p, x2c), (params,), (v,))[1]  # (M, O_b)

        return vmap(row)(basis)  # (O_a, M, O_b)

    rows = []
    for s1 in _chunks(x1.shape[0], chunk):
        blocks = []
        for s2 in _chunks(x2.shape[0], chunk):
            block = vmap(rows_for, (0, None))(x1[s1], x2[s2])  # (c, O_a, M, O_b)
            block = block.permute(0, 2, 1, 3)  # (c, M, O_a, O_b)
            blocks.append(block.diagonal(dim1=2, dim2=3).sum(-1) if trace else block)
        rows.append(torch.cat(blocks, dim=1))
    return torch.cat(rows, dim=0)


def empirical_ntk(
    model: nn.Module,
    x1: Tensor,
    x2: Tensor | None = None,
    *,
    implementation: Implementation = "jacobian-contraction",
    outputs: Outputs = "trace",
    chunk_size: int | None = None,
    params: Mapping[str, Tensor] | None = None,
) -> Tensor:
    r"""Compute the empirical NTK of ``model`` between two batches of inputs.

    .. math::

        Θ_{ij,ab} = \langle \partial_θ f_a(x^{(1)}_i; θ), \partial_θ f_b(x^{(2)}_j; θ) \rangle,
        \qquad Θ^{\mathrm{tr}}_{ij} = \sum_a Θ_{ij,aa}

    Parameters
    ----------
    model : nn.Module
        Maps a batch ``(N, ...)`` to ``(N, O)`` (any trailing output shape is
        flattened to ``O``); examples must be independent (no BatchNorm in
        training mode).
    x1 : Tensor of shape (N1, ...)
        First inputs.
    x2 : Tensor of shape (N2, ...), default=None
        Second inputs; default ``x1`` (the Gram matrix).
    implementation : {"jacobian-contraction", "ntk-vector-products"}, default="jacobian-contraction"
        See the module docstring for the costs.
    outputs : {"trace", "full"}, default="trace"
        Sum over the diagonal output pairs, or keep every pair.
    chunk_size : int, default=None
        At most this many examples of each side at once (bounds memory to
        about ``chunk_size·O·P`` numbers); default all.
    params : mapping of str to Tensor, default=None
        Evaluate at these parameters (e.g. a linearisation point) instead of
        the model's own; names as in ``model.named_parameters()``.

    Returns
    -------
    Tensor of shape (N1, N2) or (N1, N2, O, O)
        The kernel, on the inputs' device and dtype, without autograd history.

    Raises
    ------
    TypeError
        ``x1``/``x2`` are not tensors.
    ValueError
        Unknown ``implementation`` or ``outputs``, bad ``chunk_size``, or
        ``x1`` and ``x2`` with different per-example shapes.
    NotImplementedError
        ``model`` has a BatchNorm layer in training mode.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
    >>> x = torch.randn(6, 4)
    >>> empirical_ntk(net, x).shape
    torch.Size([6, 6])
    >>> empirical_ntk(net, x, x[:2], outputs="full", implementation="ntk-vector-products").shape
    torch.Size([6, 2, 3, 3])
    """
    if implementation not in _IMPLEMENTATIONS:
        raise ValueError(f"`implementation` must be one of {_IMPLEMENTATIONS}, got {implementation!r}")
    if outputs not in ("trace", "full"):
        raise ValueError(f"`outputs` must be 'trace' or 'full', got {outputs!r}")
    same = x2 is None
    x2 = x1 if x2 is None else x2
    for name, x in (("x1", x1), ("x2", x2)):
        if not isinstance(x, Tensor):
            raise TypeError(f"`{name}` must be a Tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[0] == 0:
            raise ValueError(f"`{name}` must have a non-empty batch dimension, got shape {tuple(x.shape)}")
    if x1.shape[1:] != x2.shape[1:]:
        raise ValueError(f"`x1` and `x2` examples differ in shape: {tuple(x1.shape)} vs {tuple(x2.shape)}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or chunk_size < 1):
        raise ValueError(f"`chunk_size` must be a positive integer or None, got {chunk_size!r}")
    check_linearisable(model)
    theta = {n: p.detach() for n, p in trainable_parameters(model).items()}
    if params is not None:
        theta.update({n: p.detach() for n, p in params.items()})
    chunk = chunk_size or max(x1.shape[0], x2.shape[0])
    trace = outputs == "trace"
    with torch.no_grad():
        if implementation == "jacobian-contraction":
            return _jacobian_contraction(model, theta, x1, x2, trace, chunk, same)
        n_out = _single(model)(theta, x1[0]).numel()
        return _ntk_vector_products(model, theta, x1, x2, trace, chunk, n_out)


def _check_kernel(name: str, k: Tensor) -> None:
    if not isinstance(k, Tensor):
        raise TypeError(f"`{name}` must be a Tensor, got {type(k).__name__}")
    if k.numel() == 0 or not torch.isfinite(k).all():
        raise ValueError(f"`{name}` must be non-empty and finite")


def kernel_distance(k0: Tensor, kt: Tensor) -> float:
    """Cosine distance between two kernels: ``1 − ⟨K₀, K_t⟩_F / (‖K₀‖_F ‖K_t‖_F)``.

    Parameters
    ----------
    k0, kt : Tensor of equal shape, e.g. (N, N) or (N, N, O, O)
        Kernels on the same inputs (e.g. at initialisation and at step ``t``).

    Returns
    -------
    float
        In ``[0, 2]``; 0 when the kernels are proportional.

    Raises
    ------
    ValueError
        Shapes differ, or a kernel is empty, non-finite or zero.
    """
    _check_kernel("k0", k0)
    _check_kernel("kt", kt)
    if k0.shape != kt.shape:
        raise ValueError(f"`k0` and `kt` must have one shape, got {tuple(k0.shape)} and {tuple(kt.shape)}")
    a, b = k0.reshape(-1).double(), kt.reshape(-1).double()
    norm = a.norm() * b.norm()
    if norm == 0:
        raise ValueError("kernel distance is undefined for a zero kernel")
    return float((1.0 - a.dot(b) / norm).clamp(0.0, 2.0))  # round-off can leave ±1e-16


def kernel_target_alignment(k: Tensor, targets: Tensor, *, centered: bool = True) -> float:
    """Alignment ``⟨K, YYᵀ⟩_F / (‖K‖_F ‖YYᵀ‖_F)`` of a kernel with the targets.

    Parameters
    ----------
    k : Tensor of shape (N, N)
        An output-traced kernel on ``N`` inputs.
    targets : Tensor of shape (N,) or (N, C)
        Class labels (integers, one-hot encoded here) or real targets.
    centered : bool, default=True
        Centre both matrices with ``H = I − 11ᵀ/N`` first (Cortes et al. [2]_),
        which removes the constant offset that makes any positive kernel look
        aligned with one-hot targets; ``False`` gives Cristianini's original.

    Returns
    -------
    float
        In ``[-1, 1]``.

    Raises
    ------
    ValueError
        ``k`` is not square ``(N, N)``, ``targets`` has the wrong length, or a
        matrix is zero after centring.
    """
    _check_kernel("k", k)
    if k.dim() != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"`k` must be a square (N, N) kernel, got shape {tuple(k.shape)}")
    if not isinstance(targets, Tensor) or targets.shape[0] != k.shape[0]:
        got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"`targets` must be a Tensor with {k.shape[0]} rows, got {got}")
    y = targets
    if not y.is_floating_point():
        y = torch.nn.functional.one_hot(y.long()).to(torch.float64)
    y = y.reshape(y.shape[0], -1).double()
    kk, yy = k.double(), y @ y.T
    if centered:
        h = torch.eye(k.shape[0], dtype=torch.float64, device=k.device) - 1.0 / k.shape[0]
        kk, yy = h @ kk @ h, h @ yy @ h
    tiny = 1e-12  # relative: centring a constant matrix leaves only round-off
    if kk.norm() <= tiny * k.double().norm() or yy.norm() <= tiny * (y @ y.T).norm():
        raise ValueError("alignment is undefined: the kernel or the target matrix is zero (after centring)")
    norm = kk.norm() * yy.norm()
    return float((kk * yy).sum() / norm)
