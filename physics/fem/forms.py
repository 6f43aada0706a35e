r"""Any parametric DOLFINx problem: a user's UFL residual, its FEM solver and batched torch residuals.

A user states the problem in UFL, as in the DOLFINx demos: a mesh, a function
space ``V`` (scalar or vector, any degree), the unknown ``u`` (a ``fem.Function``
in ``V``), coefficients (``fem.Function`` or ``fem.Constant``) and the residual
form

.. math::

    F(u; v, w_1(z), \dots, w_K(z)) = 0 \quad \forall v \in V_0, \qquad u = g(z) \text{ on } \Gamma_D,

plus a torch map :math:`z \mapsto (w_1, \dots, w_K)` (the coefficients' arrays,
in DOLFINx's dof order) and optionally :math:`z \mapsto g` at the Dirichlet
degrees of freedom. :class:`ParametricProblem` then provides

* ``solve_fem(z)``: DOLFINx solves with forms compiled once (Newton with a
  MUMPS LU; one step when :math:`F` is affine in :math:`u`, detected from the
  UFL Jacobian);
* ``discrete``: the torch residual
  :math:`r_i(u, z) = F_i(u; w(z))` for free rows and :math:`s\,(u_i - g_i)` on
  Dirichlet rows (DOLFINx's ``bc.set(b, x0=u, alpha=-1)`` convention for
  :math:`s = 1`), batched and differentiable, through one of two routes:

  ``"general"`` (:class:`AssembledResidual`)
      any form; a ``torch.autograd.Function`` whose forward assembles
      :math:`F` with DOLFINx and whose backward assembles the Jacobian actions
      :math:`J_u^\top \bar r` and :math:`(\partial F/\partial w_k)^\top \bar r`
      (CPU, one assembly per batch row);
  ``"affine"`` (:class:`AffineResidual`)
      forms linear in :math:`u` and affine in coefficients that are DG0
      functions or constants. The decomposition
      :math:`r = (A_0 + \sum_k \theta_k A_k)\,u + f_0 + \sum_k \theta_k f_k` is
      assembled once by DOLFINx: global matrices for the entries of constants,
      per-cell element matrices for DG0 fields (extracted from one assembly
      per colour of a cell colouring in which no two cells of a colour share a
      degree of freedom). Evaluation is sparse matmuls, a gather, an ``einsum``
      and a scatter-add: CPU or CUDA, any batch, autograd in ``u`` and the
      coefficients.

Only serial meshes are supported.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Literal

import dolfinx.fem.petsc as fem_petsc
import numpy as np
import scipy.sparse as sp
import torch
import ufl
import ufl.algorithms
from dolfinx import fem, mesh
from mpi4py import MPI
from petsc4py import PETSc
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from sciprob.physics.residual import DiscreteProblem

Coefficient = fem.Function | fem.Constant
_PREFIX = itertools.count()


# -- helpers ------------------------------------------------------------------------------------
def boundary_dofs(
    V: fem.FunctionSpace, marker: Callable[[np.ndarray], np.ndarray], component: int | None = None
) -> np.ndarray:
    """Flat (unrolled) indices into ``Function.x.array`` of the dofs on a marked boundary.

    Parameters
    ----------
    V : dolfinx.fem.FunctionSpace
        Scalar or vector space.
    marker : callable
        ``marker(x) -> bool array`` for ``x`` of shape (3, n_points), marking boundary facets.
    component : int, default=None
        Constrain one component of a vector space only (``None``: all components).

    Returns
    -------
    ndarray of int64, sorted
    """
    msh = V.mesh
    tdim = msh.topology.dim
    msh.topology.create_connectivity(tdim - 1, tdim)
    facets = mesh.locate_entities_boundary(msh, dim=tdim - 1, marker=marker)
    bs = V.dofmap.index_map_bs
    if component is not None:
        if not 0 <= component < bs:
            raise ValueError(f"`component` must be in [0, {bs}), got {component!r}")
        # dofs of a sub-space are returned in the parent's unrolled numbering
        return np.sort(fem.locate_dofs_topological(V.sub(component), tdim - 1, facets).astype(np.int64))
    blocks = fem.locate_dofs_topological(V, tdim - 1, facets).astype(np.int64)
    return np.sort((blocks[:, None] * bs + np.arange(bs)).ravel())


def located_dofs(
    V: fem.FunctionSpace, marker: Callable[[np.ndarray], np.ndarray], component: int | None = None
):
    """Flat indices of the dofs whose coordinates satisfy ``marker`` (geometric location).

    Parameters
    ----------
    V : dolfinx.fem.FunctionSpace
    marker : callable
        ``marker(x) -> bool array``, ``x`` of shape (3, n_points).
    component : int, default=None
        One component of a vector space (``None``: all).

    Returns
    -------
    ndarray of int64, sorted
    """
    bs = V.dofmap.index_map_bs
    x = V.tabulate_dof_coordinates()[: V.dofmap.index_map.size_local]
    blocks = np.flatnonzero(marker(x.T)).astype(np.int64)
    comps = np.arange(bs) if component is None else np.array([component])
    return np.sort((blocks[:, None] * bs + comps).ravel())


def _size(w: Coefficient) -> int:
    if isinstance(w, fem.Constant):
        return int(np.asarray(w.value).size)
    return w.function_space.dofmap.index_map.size_local * w.function_space.dofmap.index_map_bs


def _name(w: Coefficient, k: int) -> str:
    return getattr(w, "name", None) if isinstance(w, fem.Function) else f"coefficient {k} (Constant)"


def _is_dg0(w: Coefficient) -> bool:
    if not isinstance(w, fem.Function):
        return False
    element = w.function_space.element.basix_element
    return element.degree == 0 and element.discontinuous and w.function_space.dofmap.index_map_bs == 1


def _assemble_csr(form) -> sp.csr_matrix:
    # PETSc's AIJ assembly: unrolled, and it handles mixed block sizes (vector test x scalar trial)
    A = fem_petsc.assemble_matrix(form)
    A.assemble()
    indptr, indices, data = A.getValuesCSR()
    out = sp.csr_matrix((data.copy(), indices.copy(), indptr.copy()), shape=A.getSize())
    A.destroy()
    return out


def _assemble_vec(form) -> np.ndarray:
    return fem.assemble_vector(form).array.copy()


def _color_cells(cell_dofs: np.ndarray, n_dofs: int) -> list[np.ndarray]:
    """Greedy colouring: no two cells of one colour share a degree of freedom."""
    n_cells, n_local = cell_dofs.shape
    incidence = sp.csr_matrix(
        (np.ones(cell_dofs.size), cell_dofs.ravel(), np.arange(0, cell_dofs.size + 1, n_local)),
        shape=(n_cells, n_dofs),
    )
    adjacency = (incidence @ incidence.T).tocsr()
    colors = np.full(n_cells, -1, dtype=np.int64)
    for e in range(n_cells):
        taken = colors[adjacency.indices[adjacency.indptr[e] : adjacency.indptr[e + 1]]]
        free = np.setdiff1d(np.arange(taken.size + 1), taken, assume_unique=False)
        colors[e] = free[0]
    return [np.flatnonzero(colors == c) for c in range(colors.max() + 1)]


# -- the z map ----------------------------------------------------------------------------------
class FormCoefficients(nn.Module):
    r"""Prior and map :math:`z \mapsto (w_1, \dots, w_K, g)` of a :class:`ParametricProblem`.

    Parameters
    ----------
    z_map : callable or nn.Module
        ``z_map(z) -> sequence of K tensors``, tensor ``k`` of shape (batch, size_k)
        (``size_k``: length of coefficient ``k``'s ``x.array``, or of a constant's value).
        An ``nn.Module`` moves with ``.to(device)``.
    prior : torch.distributions.Distribution or callable
        :math:`p(z)` with event shape ``(dim_z,)``, or a callable returning it.
    sizes : sequence of int
        Expected ``size_k``.
    n_bc : int
        Number of Dirichlet dofs.
    bc_values : callable, Tensor or None
        ``bc_values(z) -> (batch, n_bc)``, a fixed tensor of shape (n_bc,), or ``None`` (zero).
    names : sequence of str
        Coefficient names for messages.

    Attributes
    ----------
    dim_z : int
    """

    def __init__(
        self, z_map, prior, sizes: Sequence[int], n_bc: int, bc_values, names: Sequence[str]
    ) -> None:
        super().__init__()
        if not callable(z_map):
            raise TypeError(
                f"`z_map` must be callable (z -> coefficient tensors), got {type(z_map).__name__}"
            )
        self.z_map = z_map
        self._prior = prior
        self.sizes, self.names, self.n_bc = tuple(sizes), tuple(names), int(n_bc)
        self._bc_fn = bc_values if callable(bc_values) else None
        fixed = torch.zeros(n_bc, dtype=torch.float64)
        if bc_values is not None and not callable(bc_values):
            fixed = torch.as_tensor(bc_values, dtype=torch.float64).expand(n_bc).clone()
        self.register_buffer("bc_fixed", fixed)
        self.dim_z = int(self.prior().event_shape[0])

    def prior(self):
        """Return :math:`p(z)`, event shape ``(dim_z,)``."""
        return self._prior() if callable(self._prior) and not hasattr(self._prior, "sample") else self._prior

    def validate(self, z: Tensor) -> Tensor:
        """Check ``z`` (shape (batch, dim_z) or (dim_z,), finite); return it 2-D."""
        if not isinstance(z, Tensor):
            raise TypeError(f"`z` must be a torch.Tensor, got {type(z).__name__}")
        z2 = z.unsqueeze(0) if z.dim() == 1 else z
        if z2.dim() != 2 or z2.shape[-1] != self.dim_z:
            raise ValueError(
                f"`z` must have shape (batch, {self.dim_z}) or ({self.dim_z},), got {tuple(z.shape)}"
            )
        if not torch.isfinite(z2).all():
            raise ValueError("`z` must be finite, got non-finite entries")
        return z2

    def coefficient_values(self, z: Tensor) -> list[Tensor]:
        """Return the K coefficient tensors of a batch, shape-checked.

        Parameters
        ----------
        z : Tensor of shape (batch, dim_z)

        Returns
        -------
        list of Tensor, entry k of shape (batch, size_k)

        Raises
        ------
        ValueError
            If ``z_map`` returns the wrong number of tensors or a wrong shape.
        """
        values = self.z_map(z)
        if isinstance(values, Tensor) or not isinstance(values, Sequence):
            values = [values]
        if len(values) != len(self.sizes):
            raise ValueError(
                f"`z_map` returned {len(values)} tensor(s) but the form has {len(self.sizes)} coefficient(s) "
                f"{list(self.names)}; return one (batch, size) tensor per entry of `coefficients`"
            )
        out = []
        for k, (w, size) in enumerate(zip(values, self.sizes, strict=True)):
            w = torch.as_tensor(w)
            w = w.expand(z.shape[0], size) if w.dim() == 2 and w.shape[0] == 1 else w
            if w.dim() == 1 and size == 1:
                w = w[:, None]
            if w.shape != (z.shape[0], size):
                raise ValueError(
                    f"`z_map` output {k} (coefficient `{self.names[k]}`) must have shape "
                    f"({z.shape[0]}, {size}), got {tuple(w.shape)}"
                )
            out.append(w)
        return out

    def boundary_values(self, z: Tensor) -> Tensor:
        """Dirichlet values, shape (batch, n_bc)."""
        if self._bc_fn is None:
            return self.bc_fixed.to(z).expand(z.shape[0], -1)
        g = self._bc_fn(z)
        if g.shape != (z.shape[0], self.n_bc):
            raise ValueError(
                f"`bc_values(z)` must have shape ({z.shape[0]}, {self.n_bc}), got {tuple(g.shape)}"
            )
        return g

    def fields(self, z: Tensor) -> tuple[Tensor, ...]:
        """``(w_1, ..., w_K, g)`` for a batch ``z`` of shape (batch, dim_z)."""
        return (*self.coefficient_values(z), self.boundary_values(z))


# -- the general route --------------------------------------------------------------------------
class _AssembledFunction(torch.autograd.Function):
    """``F(u; w)`` assembled by DOLFINx per batch row; backward assembles Jacobian actions."""

    @staticmethod
    def forward(ctx, problem: ParametricProblem, u: Tensor, *coeffs: Tensor) -> Tensor:
        u64 = u.detach().cpu().double().numpy()
        c64 = [c.detach().cpu().double().numpy() for c in coeffs]
        out = np.stack([problem._assemble_F(u64[b], [c[b] for c in c64]) for b in range(u64.shape[0])])
        ctx.problem = problem
        ctx.save_for_backward(u, *coeffs)
        return torch.from_numpy(out).to(u)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        u, *coeffs = ctx.saved_tensors
        problem: ParametricProblem = ctx.problem
        need = ctx.needs_input_grad[1:]
        u64 = u.detach().cpu().double().numpy()
        c64 = [c.detach().cpu().double().numpy() for c in coeffs]
        g64 = grad.detach().cpu().double().numpy()
        grads = [np.zeros_like(u64) if need[0] else None] + [
            np.zeros_like(c) if n else None for c, n in zip(c64, need[1:], strict=True)
        ]
        for b in range(u64.shape[0]):
            parts = problem._vjp(u64[b], [c[b] for c in c64], g64[b], need)
            for k, part in enumerate(parts):
                if part is not None:
                    grads[k][b] = part
        out = [None if g is None else torch.from_numpy(g).to(u) for g in grads]
        return (None, *out)


class AssembledResidual(nn.Module):
    """General route: the residual of any form through DOLFINx assembly (CPU; see module docstring).

    Parameters
    ----------
    problem : ParametricProblem
    bc_scale : float, default=1.0
        Factor :math:`s` of the Dirichlet rows :math:`s(u_i - g_i)`.
    """

    def __init__(self, problem: ParametricProblem, bc_scale: float = 1.0) -> None:
        super().__init__()
        self._problem = [problem]  # a list: keeps the DOLFINx object out of nn.Module's attributes
        self.n_dofs, self.bc_scale = problem.n_dofs, float(bc_scale)
        self.register_buffer("bc_dofs", torch.from_numpy(problem.bc_dofs))
        is_bc = torch.zeros(self.n_dofs, dtype=torch.bool)
        is_bc[self.bc_dofs] = True
        self.register_buffer("is_bc", is_bc)

    def forward(self, u: Tensor, *fields: Tensor) -> Tensor:
        """Residual (batch, n_dofs) from ``u`` (batch, n_dofs), the coefficients and ``g`` (batch, n_bc)."""
        *coeffs, g = fields
        interior = _AssembledFunction.apply(self._problem[0], u, *coeffs)
        return _dirichlet_rows(u, interior, g, self.bc_dofs, self.is_bc, self.bc_scale)

    def jacobian(self, u: Tensor, *fields: Tensor) -> Tensor:
        r"""Sparse :math:`\partial r/\partial u` at one state (batch row 0), float64 COO."""
        *coeffs, _ = fields
        problem = self._problem[0]
        problem._set_state(
            u[0].detach().cpu().double().numpy(), [c[0].detach().cpu().double().numpy() for c in coeffs]
        )
        J = _assemble_csr(problem._J_form)
        return _with_bc_rows(J, problem.bc_dofs, self.bc_scale).to(u.device)


def _dirichlet_rows(u, interior, g, bc_dofs, is_bc, scale):
    full_g = torch.zeros_like(interior).index_copy(1, bc_dofs, g.to(interior.dtype))
    return torch.where(is_bc, scale * (u - full_g), interior)


def _with_bc_rows(J: sp.csr_matrix, bc_dofs: np.ndarray, scale: float) -> Tensor:
    J = J.tocsr(copy=True)
    keep = np.ones(J.shape[0])
    keep[bc_dofs] = 0.0
    J = sp.diags(keep) @ J + sp.csr_matrix((np.full(bc_dofs.size, scale), (bc_dofs, bc_dofs)), shape=J.shape)
    return _to_torch_sparse(J.tocoo())


def _to_torch_sparse(M: sp.spmatrix) -> Tensor:
    M = M.tocoo()
    idx = torch.from_numpy(np.vstack([M.row, M.col]).astype(np.int64))
    return torch.sparse_coo_tensor(
        idx, torch.from_numpy(M.data.astype(np.float64)), M.shape, check_invariants=False
    ).coalesce()


# -- the fast (affine) route ----------------------------------------------------------------------
class AffineResidual(nn.Module):
    r"""Fast route: :math:`r = (A_0 + \sum_k \theta_k A_k) u + f_0 + \sum_k \theta_k f_k` in torch.

    Built by :meth:`ParametricProblem.affine_residual` from DOLFINx assemblies.
    Constants contribute global sparse matrices; each DG0 coefficient
    contributes per-cell element matrices ``K`` (n_cells, n_local, n_local) and
    element vectors (n_cells, n_local).

    Attributes
    ----------
    n_dofs : int
    kinds : tuple of {"constant", "cells"}
        How each coefficient enters.
    """

    def __init__(self, A0, f0, parts: list[dict], bc_dofs: np.ndarray, n_dofs: int, bc_scale: float) -> None:
        super().__init__()
        self.n_dofs, self.bc_scale = n_dofs, float(bc_scale)
        self.register_buffer("A0", _to_torch_sparse(A0))
        self.register_buffer("f0", torch.from_numpy(f0))
        self.kinds = tuple(p["kind"] for p in parts)
        for k, p in enumerate(parts):
            if p["kind"] == "constant":
                for j, (A, f) in enumerate(zip(p["matrices"], p["vectors"], strict=True)):
                    self.register_buffer(f"A_{k}_{j}", _to_torch_sparse(A))
                    self.register_buffer(f"f_{k}_{j}", torch.from_numpy(f))
                setattr(self, f"_n_{k}", len(p["matrices"]))
            else:
                self.register_buffer(f"K_{k}", torch.from_numpy(p["K"]))
                self.register_buffer(f"fe_{k}", torch.from_numpy(p["fe"]))
                self.register_buffer(f"dofs_{k}", torch.from_numpy(p["cell_dofs"]))
                self.register_buffer(f"cell_of_dof_{k}", torch.from_numpy(p["cell_index"]))
        self.register_buffer("bc_dofs", torch.from_numpy(bc_dofs))
        is_bc = torch.zeros(n_dofs, dtype=torch.bool)
        is_bc[self.bc_dofs] = True
        self.register_buffer("is_bc", is_bc)

    def forward(self, u: Tensor, *fields: Tensor) -> Tensor:
        """Residual (batch, n_dofs) from ``u`` (batch, n_dofs), the coefficients and ``g`` (batch, n_bc)."""
        *coeffs, g = fields
        r = torch.sparse.mm(self.A0, u.T).T + self.f0
        for k, (kind, w) in enumerate(zip(self.kinds, coeffs, strict=True)):
            w = w.to(u.dtype)
            if kind == "constant":
                for j in range(getattr(self, f"_n_{k}")):
                    A, f = getattr(self, f"A_{k}_{j}"), getattr(self, f"f_{k}_{j}")
                    r = r + w[:, j : j + 1] * (torch.sparse.mm(A, u.T).T + f)
            else:
                dofs = getattr(self, f"dofs_{k}")  # (n_cells, n_local)
                we = w[:, getattr(self, f"cell_of_dof_{k}")]  # (batch, n_cells)
                ue = u[:, dofs]  # (batch, n_cells, n_local)
                y = torch.einsum("eij,bej->bei", getattr(self, f"K_{k}"), ue) + getattr(self, f"fe_{k}")
                r = r.index_add(1, dofs.reshape(-1), (we[:, :, None] * y).reshape(u.shape[0], -1))
        return _dirichlet_rows(u, r, g, self.bc_dofs, self.is_bc, self.bc_scale)

    def jacobian(self, u: Tensor, *fields: Tensor) -> Tensor:
        r"""Sparse :math:`\partial r/\partial u` at the parameters of batch row 0 (COO)."""
        *coeffs, _ = fields
        rows, cols, vals = [self.A0.indices()[0]], [self.A0.indices()[1]], [self.A0.values()]
        for k, (kind, w) in enumerate(zip(self.kinds, coeffs, strict=True)):
            w = w[0].to(self.f0.dtype)
            if kind == "constant":
                for j in range(getattr(self, f"_n_{k}")):
                    A = getattr(self, f"A_{k}_{j}")
                    rows.append(A.indices()[0]), cols.append(A.indices()[1]), vals.append(w[j] * A.values())
            else:
                dofs, K = getattr(self, f"dofs_{k}"), getattr(self, f"K_{k}")
                n_local = dofs.shape[1]
                rows.append(dofs[:, :, None].expand(-1, -1, n_local).reshape(-1))
                cols.append(dofs[:, None, :].expand(-1, n_local, -1).reshape(-1))
                vals.append((w[getattr(self, f"cell_of_dof_{k}")][:, None, None] * K).reshape(-1))
        rows, cols, vals = torch.cat(rows), torch.cat(cols), torch.cat(vals)
        free = ~self.is_bc[rows]
        rows = torch.cat([rows[free], self.bc_dofs])
        cols = torch.cat([cols[free], self.bc_dofs])
        vals = torch.cat([vals[free], torch.full_like(self.bc_dofs, 1, dtype=vals.dtype) * self.bc_scale])
        return torch.sparse_coo_tensor(
            torch.stack([rows, cols]), vals, (self.n_dofs, self.n_dofs), check_invariants=False
        ).coalesce()


# -- preconditioning -------------------------------------------------------------------------------
class _LUSolve(torch.autograd.Function):
    """``x = A^{-1} r`` row by row with a sparse LU factorisation; backward ``A^{-T} g``."""

    @staticmethod
    def forward(ctx, lu, r: Tensor) -> Tensor:
        ctx.lu = lu
        x = lu.solve(np.ascontiguousarray(r.detach().cpu().double().numpy().T))
        return torch.from_numpy(np.ascontiguousarray(x.T)).to(r)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        g = ctx.lu.solve(np.ascontiguousarray(grad.detach().cpu().double().numpy().T), trans="T")
        return None, torch.from_numpy(np.ascontiguousarray(g.T)).to(grad)


class PreconditionedResidual(nn.Module):
    r"""The residual preconditioned by a reference Jacobian: :math:`\bar r = \bar J^{-1} r(u, z)`.

    As in the paper's shell case (official code, Bunny app: :math:`\bar A^{-1}(A u - f)` with
    :math:`\bar A` the stiffness at the mean parameters). For stiff problems (thin shells) the
    plain residual hardly sees displacement errors in the soft bending modes; the preconditioned
    residual measures them in displacement units. :math:`\bar J` is factorised once (SuperLU);
    evaluation and its gradient are two sparse triangular solves per batch row (CPU).

    Parameters
    ----------
    operator : nn.Module
        The residual operator (with a ``jacobian`` method).
    reference_jacobian : Tensor, sparse, of shape (n_dofs, n_dofs)
        :math:`\bar J`.
    """

    def __init__(self, operator: nn.Module, reference_jacobian: Tensor) -> None:
        super().__init__()
        from scipy.sparse.linalg import splu

        self.operator, self.n_dofs = operator, operator.n_dofs
        J = reference_jacobian.coalesce().cpu()
        idx = J.indices().numpy()
        M = sp.csc_matrix((J.values().double().numpy(), (idx[0], idx[1])), shape=tuple(J.shape))
        self._lu = [splu(M)]  # a list: not an nn.Module attribute, survives .to()

    @property
    def bc_dofs(self) -> Tensor:
        """Dirichlet dofs of the wrapped operator."""
        return self.operator.bc_dofs

    def forward(self, u: Tensor, *fields: Tensor) -> Tensor:
        """Preconditioned residual, shape (batch, n_dofs)."""
        return _LUSolve.apply(self._lu[0], self.operator(u, *fields))

    def jacobian_product(self, u: Tensor, fields: Sequence[Tensor], tangents: Tensor) -> Tensor:
        r"""Return :math:`\bar J^{-1} J(u, z)\, T`, shape (n_dofs, m), for tangents (n_dofs, m)."""
        jt = torch.sparse.mm(self.operator.jacobian(u, *fields).to(tangents.dtype), tangents)
        return _LUSolve.apply(self._lu[0], jt.T).T


# -- the problem --------------------------------------------------------------------------------
class ParametricProblem:
    r"""A parametric DOLFINx problem from a UFL residual form (see the module docstring).

    Parameters
    ----------
    F : ufl.Form
        Residual form, linear in the test function, depending on ``u``.
    u : dolfinx.fem.Function
        The unknown, in the space of the test function.
    coefficients : sequence of fem.Function or fem.Constant
        The coefficients that ``z`` sets, in the order ``z_map`` returns them.
    z_map : callable or nn.Module
        ``z_map(z) -> sequence of tensors``; entry k of shape (batch, size_k), the
        values of ``coefficients[k].x.array`` (or of a constant's value).
    prior : torch.distributions.Distribution or callable
        :math:`p(z)`, event shape ``(dim_z,)``.
    bc_dofs : ndarray of int, default=None
        Flat Dirichlet dof indices (:func:`boundary_dofs`); ``None``: no Dirichlet rows.
    bc_values : callable, array or float, default=None
        ``bc_values(z) -> (batch, n_bc)`` or fixed values (``None``: zero).
    positive : sequence of int, default=()
        Indices of coefficients that must be positive on every entry
        (checked before each solve).
    route : {"auto", "affine", "general"}, default="auto"
        Torch residual of :attr:`discrete`; ``"auto"`` takes the affine route when
        the form qualifies.
    bc_scale : float, default=1.0
        Factor of the Dirichlet rows of the torch residual.
    newton_rtol, newton_atol : float, default=1e-10, 1e-12
        Newton tolerances on the free residual norm (nonlinear forms).
    max_newton : int, default=30

    Attributes
    ----------
    V, u, n_dofs, dim_z, bc_dofs, linear
    discrete : DiscreteProblem
        The torch side consumed by :class:`sciprob.physics.PDDLVM`.

    Examples
    --------
    >>> msh = mesh.create_unit_cube(MPI.COMM_SELF, 4, 4, 4)          # doctest: +SKIP
    >>> V = fem.functionspace(msh, ("Lagrange", 1))
    >>> u, v, c = fem.Function(V), ufl.TestFunction(V), fem.Constant(msh, 1.0)
    >>> F = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + c * u * v * ufl.dx - v * ufl.dx
    >>> problem = ParametricProblem(F, u, coefficients=[c], z_map=lambda z: [z.exp()],
    ...     prior=torch.distributions.Normal(torch.zeros(1), 1.0).to_event(1),
    ...     bc_dofs=boundary_dofs(V, lambda x: np.isclose(x[0], 0.0)))
    >>> problem.solve_fem(torch.zeros(3, 1)).shape
    torch.Size([3, 125])
    """

    def __init__(
        self,
        F: ufl.Form,
        u: fem.Function,
        *,
        coefficients: Sequence[Coefficient],
        z_map,
        prior,
        bc_dofs: np.ndarray | None = None,
        bc_values=None,
        positive: Sequence[int] = (),
        route: Literal["auto", "affine", "general"] = "auto",
        bc_scale: float = 1.0,
        newton_rtol: float = 1e-10,
        newton_atol: float = 1e-12,
        max_newton: int = 30,
    ) -> None:
        if not isinstance(F, ufl.Form):
            raise TypeError(f"`F` must be a ufl.Form (the residual), got {type(F).__name__}")
        if not isinstance(u, fem.Function):
            raise TypeError(f"`u` must be a dolfinx.fem.Function, got {type(u).__name__}")
        if u not in F.coefficients():
            raise ValueError(
                f"`F` does not depend on `u` ({u.name!r}); write the residual in terms of the Function `u`, "
                "not a TrialFunction"
            )
        if len(F.arguments()) != 1:
            raise ValueError(
                f"`F` must be a residual form with one test function, got {len(F.arguments())} arguments"
            )
        if route not in ("auto", "affine", "general"):
            raise ValueError(f"`route` must be 'auto', 'affine' or 'general', got {route!r}")
        coefficients = list(coefficients)
        for k, w in enumerate(coefficients):
            if not isinstance(w, fem.Function | fem.Constant):
                raise TypeError(
                    f"`coefficients[{k}]` must be a fem.Function or fem.Constant, got {type(w).__name__}"
                )
            if w is u:
                raise ValueError("`coefficients` must not contain the unknown `u`")
        self.V, self.u, self.F = u.function_space, u, F
        self.msh = self.V.mesh
        if self.msh.comm.size != 1:
            raise NotImplementedError("`ParametricProblem` supports serial meshes only")
        self.coefficient_list = coefficients
        self.bs = self.V.dofmap.index_map_bs
        self.n_dofs = self.V.dofmap.index_map.size_local * self.bs
        self.bc_dofs = np.zeros(0, np.int64) if bc_dofs is None else np.unique(np.asarray(bc_dofs, np.int64))
        if self.bc_dofs.size and (self.bc_dofs.min() < 0 or self.bc_dofs.max() >= self.n_dofs):
            raise ValueError(
                f"`bc_dofs` must lie in [0, {self.n_dofs}), got [{self.bc_dofs.min()}, {self.bc_dofs.max()}]"
            )
        for k in positive:
            if not 0 <= k < len(coefficients):
                raise ValueError(
                    f"`positive` holds coefficient index {k!r}, but there are {len(coefficients)}"
                )
        self.positive = tuple(positive)
        self.newton_rtol, self.newton_atol, self.max_newton = newton_rtol, newton_atol, int(max_newton)
        self.bc_scale = float(bc_scale)

        names = [_name(w, k) for k, w in enumerate(coefficients)]
        self._zmap = FormCoefficients(
            z_map, prior, [_size(w) for w in coefficients], self.bc_dofs.size, bc_values, names
        )
        self.coefficients = self._zmap
        self.dim_z = self._zmap.dim_z

        # forms, compiled once; coefficients are updated in place per parameter value
        self._F_form = fem.form(F)
        J = ufl.derivative(F, u, ufl.TrialFunction(self.V))
        self._J_form = fem.form(J)
        self.linear = u not in ufl.algorithms.expand_derivatives(J).coefficients()
        self._dF_forms: list | None = None  # coefficient derivatives, compiled when first needed
        self._set_up_solver()

        coords = self.V.tabulate_dof_coordinates()[: self.n_dofs // self.bs, : self.msh.geometry.dim]
        self._dof_coordinates = torch.from_numpy(np.repeat(coords, self.bs, axis=0).copy())
        self._dof_components = torch.from_numpy(np.tile(np.arange(self.bs), self.n_dofs // self.bs))
        self.route = self._choose_route(route)
        self.discrete = self._default_discrete()

    def _default_discrete(self) -> DiscreteProblem:
        return self.make_discrete(self.route)

    # -- torch side ---------------------------------------------------------------------------
    def _affine_ok(self) -> bool:
        return self.linear and all(_is_dg0(w) or isinstance(w, fem.Constant) for w in self.coefficient_list)

    def _choose_route(self, route: str) -> str:
        if route == "affine" and not self._affine_ok():
            raise ValueError(
                "`route='affine'` needs a form linear in `u` with DG0 Function or Constant coefficients; "
                "use route='general'"
            )
        return ("affine" if self._affine_ok() else "general") if route == "auto" else route

    def make_discrete(self, route: Literal["affine", "general"]) -> DiscreteProblem:
        """Build a torch :class:`~sciprob.physics.residual.DiscreteProblem` on the given route.

        Parameters
        ----------
        route : {"affine", "general"}

        Returns
        -------
        DiscreteProblem
        """
        operator = self.affine_residual() if route == "affine" else AssembledResidual(self, self.bc_scale)
        return DiscreteProblem(
            operator, self._zmap, self._dof_coordinates.clone(), dof_components=self._dof_components.clone()
        )

    def precondition(self, z: Tensor | None = None) -> DiscreteProblem:
        r"""Replace :attr:`discrete` by the residual preconditioned with :math:`J(0, z)^{-1}`.

        Parameters
        ----------
        z : Tensor of shape (dim_z,), default=None
            Reference parameters (default: the prior mean).

        Returns
        -------
        DiscreteProblem
            The new :attr:`discrete` (see :class:`PreconditionedResidual`).
        """
        z = self._zmap.prior().mean.double() if z is None else z
        z2 = self._zmap.validate(torch.as_tensor(z, dtype=torch.float64))
        base = self.discrete.operator
        J = base.jacobian(torch.zeros(1, self.n_dofs, dtype=torch.float64), *self._zmap.fields(z2))
        self.discrete = DiscreteProblem(
            PreconditionedResidual(base, J), self._zmap, self.discrete.dof_coordinates,
            dof_components=self.discrete.dof_components,
        )  # fmt: skip
        return self.discrete

    def affine_residual(self, check: bool = True) -> AffineResidual:
        """Assemble the affine decomposition once (see :class:`AffineResidual`).

        Parameters
        ----------
        check : bool, default=True
            Compare with the general route at random coefficients and raise if
            the form is not affine in them.

        Returns
        -------
        AffineResidual

        Raises
        ------
        ValueError
            If the form is not linear in ``u``, has coefficients other than DG0
            Functions and Constants, or fails the affinity check.
        """
        if not self._affine_ok():
            raise ValueError(
                "the affine route needs a form linear in `u` with DG0 Function or Constant coefficients; "
                "use route='general'"
            )
        u0 = np.zeros(self.n_dofs)
        zero = [np.zeros(_size(w)) for w in self.coefficient_list]

        def state(values):
            self._set_state(u0, values)
            return _assemble_csr(self._J_form), _assemble_vec(self._F_form)

        A0, f0 = state(zero)
        parts = []
        for k, w in enumerate(self.coefficient_list):
            if isinstance(w, fem.Constant):
                mats, vecs = [], []
                for j in range(_size(w)):
                    values = [z.copy() for z in zero]
                    values[k][j] = 1.0
                    A, f = state(values)
                    mats.append((A - A0).tocsr()), vecs.append(f - f0)
                    mats[-1].eliminate_zeros()
                parts.append({"kind": "constant", "matrices": mats, "vectors": vecs})
                continue
            Q = w.function_space
            cell_dg = np.asarray(Q.dofmap.list, dtype=np.int64)[:, 0]
            blocks = np.asarray(self.V.dofmap.list, dtype=np.int64)
            cell_dofs = (blocks[:, :, None] * self.bs + np.arange(self.bs)).reshape(blocks.shape[0], -1)
            n_cells, n_local = cell_dofs.shape
            K = np.zeros((n_cells, n_local, n_local))
            fe = np.zeros((n_cells, n_local))
            for cells in _color_cells(cell_dofs, self.n_dofs):
                values = [z.copy() for z in zero]
                values[k][cell_dg[cells]] = 1.0
                A, f = state(values)
                D = (A - A0).tocsr()
                d = cell_dofs[cells]
                K[cells] = np.asarray(
                    D[np.repeat(d, n_local, axis=1).ravel(), np.tile(d, (1, n_local)).ravel()]
                ).reshape(cells.size, n_local, n_local)
                fe[cells] = (f - f0)[d]
            cell_index = np.empty(n_cells, dtype=np.int64)  # coefficient value of cell e is w[cell_dg[e]]
            cell_index[:] = cell_dg
            parts.append(
                {"kind": "cells", "K": K, "fe": fe, "cell_dofs": cell_dofs, "cell_index": cell_index}
            )
        op = AffineResidual(A0, f0, parts, self.bc_dofs, self.n_dofs, self.bc_scale)
        if check:
            self._check_affine(op)
        return op

    def _check_affine(self, op: AffineResidual) -> None:
        rng = np.random.default_rng(0)
        u = rng.standard_normal(self.n_dofs)
        values = [rng.uniform(0.5, 1.5, _size(w)) for w in self.coefficient_list]
        reference = self._assemble_F(u, values)
        g = torch.zeros(1, self.bc_dofs.size, dtype=torch.float64)
        fast = op(torch.from_numpy(u)[None], *[torch.from_numpy(v)[None] for v in values], g)[0].numpy()
        free = np.ones(self.n_dofs, bool)
        free[self.bc_dofs] = False
        err = np.abs(fast - reference)[free].max()
        if err > 1e-9 * max(1.0, np.abs(reference[free]).max()):
            raise ValueError(
                f"`F` is not affine in its coefficients {list(self._zmap.names)} (affine route off by "
                f"{err:.2e}); use route='general'"
            )

    # -- DOLFINx state ------------------------------------------------------------------------
    def _set_state(self, u: np.ndarray, values: Sequence[np.ndarray]) -> None:
        self.u.x.array[: self.n_dofs] = u
        for w, c in zip(self.coefficient_list, values, strict=True):
            if isinstance(w, fem.Constant):
                w.value = np.asarray(c, dtype=np.float64).reshape(np.shape(w.value))
            else:
                w.x.array[: c.size] = c

    def _assemble_F(self, u: np.ndarray, values: Sequence[np.ndarray]) -> np.ndarray:
        self._set_state(u, values)
        return _assemble_vec(self._F_form)[: self.n_dofs]

    def _derivative_forms(self) -> list:
        """Per coefficient: a compiled mixed form (Function) or (vector forms, stand-in) for a Constant."""
        if self._dF_forms is None:
            forms = []
            for w in self.coefficient_list:
                if isinstance(w, fem.Function):
                    forms.append(
                        ("function", fem.form(ufl.derivative(self.F, w, ufl.TrialFunction(w.function_space))))
                    )
                    continue
                # UFL differentiates w.r.t. Functions only: stand in a constant DG0 field for the Constant
                shape = np.shape(w.value)
                Q = fem.functionspace(self.msh, ("DG", 0, shape) if shape else ("DG", 0))
                stand_in = fem.Function(Q)
                replaced = ufl.replace(self.F, {w: stand_in})
                directions = []
                for j in range(max(1, int(np.prod(shape)))):
                    e = fem.Function(Q)
                    e.x.array[j :: max(1, int(np.prod(shape)))] = 1.0
                    directions.append(fem.form(ufl.derivative(replaced, stand_in, e)))
                forms.append(("constant", directions, stand_in))
            self._dF_forms = forms
        return self._dF_forms

    def _vjp(self, u, values, v, need) -> list:
        """``[J_u^T v, (dF/dw_k)^T v ...]`` at one state (None where not needed)."""
        self._set_state(u, values)
        out = [_assemble_csr(self._J_form).T @ v if need[0] else None]
        if any(need[1:]):
            forms = self._derivative_forms()
            for k, (w, n) in enumerate(zip(self.coefficient_list, need[1:], strict=True)):
                if not n:
                    out.append(None)
                elif forms[k][0] == "function":
                    out.append(_assemble_csr(forms[k][1]).T @ v)
                else:
                    _, directions, stand_in = forms[k]
                    stand_in.x.array[:] = np.tile(
                        np.ravel(values[k]), stand_in.x.array.size // max(1, np.size(values[k]))
                    )
                    out.append(np.array([_assemble_vec(d)[: self.n_dofs] @ v for d in directions]))
        return out

    # -- solver -------------------------------------------------------------------------------
    def _set_up_solver(self) -> None:
        self._A = fem_petsc.create_matrix(self._J_form)
        self._b = fem_petsc.create_vector(self.V)
        self._du = self._b.duplicate()
        self._xbc = self._b.duplicate()
        self._ksp = PETSc.KSP().create(MPI.COMM_SELF)
        self._ksp.setOptionsPrefix(f"sciprob_form_{next(_PREFIX)}_")
        self._ksp.setType("preonly")
        pc = self._ksp.getPC()
        pc.setType("lu")
        pc.setFactorSolverType("mumps")
        self._ksp.setErrorIfNotConverged(True)
        self._bc_rows = self.bc_dofs.astype(PETSc.IntType)

    def _newton_step(self, target_bc: np.ndarray) -> np.ndarray:
        """Assemble J and F at ``self.u``, solve ``J du = -F`` with ``du = target - u`` on Dirichlet dofs."""
        self._A.zeroEntries()
        fem_petsc.assemble_matrix(self._A, self._J_form)
        self._A.assemble()
        with self._b.localForm() as loc:
            loc.set(0.0)
        fem_petsc.assemble_vector(self._b, self._F_form)
        self._b.scale(-1.0)
        x = self._xbc.getArray()
        x[:] = 0.0
        x[self.bc_dofs] = target_bc - self.u.x.array[self.bc_dofs]
        self._A.zeroRowsColumns(self._bc_rows, 1.0, self._xbc, self._b)
        self._ksp.setOperators(self._A)
        self._ksp.solve(self._b, self._du)
        du = self._du.getArray()
        self.u.x.array[: self.n_dofs] += du
        return du

    def solve_values(self, values: Sequence[np.ndarray], bc_values: np.ndarray) -> np.ndarray:
        """FEM solution for given coefficient arrays and Dirichlet values (compiled forms).

        Parameters
        ----------
        values : sequence of ndarray
            Entry k of shape (size_k,).
        bc_values : ndarray of shape (n_bc,)

        Returns
        -------
        ndarray of shape (n_dofs,)

        Raises
        ------
        ValueError
            Non-finite data, or a coefficient listed in ``positive`` that is not positive.
        RuntimeError
            Newton did not converge.
        """
        for k, c in enumerate(values):
            if not np.all(np.isfinite(c)):
                raise ValueError(f"coefficient `{self._zmap.names[k]}` must be finite; check `z_map`")
        for k in self.positive:
            if np.any(values[k] <= 0):
                raise ValueError(
                    f"coefficient `{self._zmap.names[k]}` must be positive on every entry, got "
                    f"{np.min(values[k])!r}; check `z_map`"
                )
        self._set_state(np.zeros(self.n_dofs), values)
        target = np.asarray(bc_values, dtype=np.float64)
        if self.linear:
            self._newton_step(target)
            return self.u.x.array[: self.n_dofs].copy()
        r0 = None
        for _ in range(self.max_newton):
            du = self._newton_step(target)
            self.u.x.array[self.bc_dofs] = target
            r = _assemble_vec(self._F_form)[: self.n_dofs]
            r[self.bc_dofs] = 0.0
            norm = np.linalg.norm(r)
            r0 = norm if r0 is None else r0
            if norm <= max(self.newton_atol, self.newton_rtol * r0) or np.linalg.norm(du) <= 1e-14 * max(
                1.0, np.linalg.norm(self.u.x.array)
            ):
                return self.u.x.array[: self.n_dofs].copy()
        raise RuntimeError(f"Newton did not converge in {self.max_newton} iterations (residual {norm:.3e})")

    def solve_fem(self, z: Tensor) -> Tensor:
        """Compute reference FEM solutions, one DOLFINx solve per parameter vector.

        Parameters
        ----------
        z : Tensor of shape (batch, dim_z) or (dim_z,)

        Returns
        -------
        Tensor of shape (batch, n_dofs) or (n_dofs,), float64
        """
        z2 = self._zmap.validate(z)
        coefficients = self._zmap.to(z2.device)
        with torch.no_grad():
            values = [c.detach().cpu().double().numpy() for c in coefficients.coefficient_values(z2)]
            g = coefficients.boundary_values(z2).detach().cpu().double().numpy()
        out = np.stack([self.solve_values([c[b] for c in values], g[b]) for b in range(z2.shape[0])])
        out = torch.from_numpy(out)
        return out[0] if z.dim() == 1 else out

    def assemble_residual(self, u: Tensor, z: Tensor) -> np.ndarray:
        """DOLFINx's own residual of one state: ``F`` assembled, Dirichlet rows ``s (u - g)``.

        Parameters
        ----------
        u : Tensor of shape (n_dofs,)
        z : Tensor of shape (dim_z,)

        Returns
        -------
        ndarray of shape (n_dofs,)
        """
        z2 = self._zmap.validate(z)
        with torch.no_grad():
            values = [c[0].detach().cpu().double().numpy() for c in self._zmap.coefficient_values(z2)]
            g = self._zmap.boundary_values(z2)[0].cpu().double().numpy()
        r = self._assemble_F(torch.as_tensor(u).detach().cpu().double().numpy(), values)
        r[self.bc_dofs] = self.bc_scale * (self.u.x.array[self.bc_dofs] - g)
        return r

    def prior(self):
        """Return :math:`p(z)`, event shape ``(dim_z,)``."""
        return self._zmap.prior()

    def residual(self, u: Tensor, z: Tensor) -> Tensor:
        """Torch residual for a batch through :attr:`discrete`.

        Parameters
        ----------
        u : Tensor of shape (batch, n_dofs)
        z : Tensor of shape (batch, dim_z)

        Returns
        -------
        Tensor of shape (batch, n_dofs)
        """
        z = self._zmap.validate(z)
        if u.dim() != 2 or u.shape != (z.shape[0], self.n_dofs):
            raise ValueError(f"`u` must have shape ({z.shape[0]}, {self.n_dofs}), got {tuple(u.shape)}")
        return self.discrete.to(u.device).residual(u, z)

    def dof_coordinates(self) -> np.ndarray:
        """Coordinates of each flat degree of freedom, shape (n_dofs, gdim)."""
        return self._dof_coordinates.numpy().copy()
