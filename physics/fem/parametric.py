r"""Parametric P1 Poisson problems in DOLFINx, with a batched torch residual.

Strong form, for a parameter vector :math:`z`:

.. math::

    -\nabla \cdot q(\nabla u, \kappa_z) = f_z \ \text{in } \Omega, \qquad
    u = g_z \ \text{on } \Gamma_D, \qquad q \cdot n = 0 \ \text{on } \partial\Omega \setminus \Gamma_D,

with the linear flux :math:`q = \kappa\nabla u` or the paper's nonlinear law
(:func:`sciprob.physics.residual.sigmoid_flux`). Weak form: find
:math:`u_h \in V_h` (P1), :math:`u_h = g` on :math:`\Gamma_D`, with

.. math::

    F(u_h; v) = \int_\Omega q(\nabla u_h, \kappa_h) \cdot \nabla v \,dx - \int_\Omega f v \,dx = 0
    \quad \forall v \in V_{h,0},

where :math:`\kappa_h` is the DG0 interpolant of :math:`\kappa_z` (cell midpoints).
The forms are compiled once per problem: :math:`\kappa_h` is a ``fem.Function``,
:math:`f` a ``fem.Constant`` and :math:`g` a ``fem.Function``, updated in place
for each parameter value.

The torch residual (:class:`sciprob.physics.residual.ResidualOperator`) is built
from three things DOLFINx assembles once: the mixed matrices
:math:`B^d_{i e} = \int \psi_e\, \partial_d \phi_i\,dx` (P1 test, DG0 trial),
which give the per-cell gradient operators; the DG0 mass (cell volumes); and
the load vector :math:`\int \phi_i\,dx`. Only serial meshes are supported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI
from torch import Tensor, nn

from sciprob.physics.coefficients import CoefficientMap, Fields
from sciprob.physics.fem.forms import ParametricProblem
from sciprob.physics.residual import DiscreteProblem, ResidualOperator, linear_flux, sigmoid_flux


def _ufl_flux(law: str, grad_u, kappa):
    """Return the UFL twin of the torch flux laws in :mod:`sciprob.physics.residual`."""
    if law == "linear":
        return kappa * grad_u
    norm = abs(grad_u[0]) if grad_u.ufl_shape == (1,) else ufl.sqrt(ufl.inner(grad_u, grad_u))
    return ((1.0 / (1.0 + ufl.exp(-norm)) + 5.0 * kappa) / 10.0) * grad_u


class _PoissonZMap(nn.Module):
    """``z -> (kappa in DG0 dof order, f)`` of the generic interface, from a :class:`CoefficientMap`."""

    def __init__(self, coefficient_map: CoefficientMap, dof_to_cell: np.ndarray) -> None:
        super().__init__()
        self.map = coefficient_map
        self.register_buffer("dof_to_cell", torch.from_numpy(dof_to_cell))

    def forward(self, z: Tensor) -> list[Tensor]:
        kappa, forcing, _ = self.map.fields(z)
        return [kappa[:, self.dof_to_cell], forcing[:, None]]


class _PoissonBC(nn.Module):
    def __init__(self, coefficient_map: CoefficientMap) -> None:
        super().__init__()
        self.map = coefficient_map

    def forward(self, z: Tensor) -> Tensor:
        return self.map.fields(z).bc_values


class ParametricPoissonProblem(ParametricProblem):
    r"""A parametric Poisson problem on a DOLFINx mesh, P1 elements.

    An instance of :class:`sciprob.physics.fem.ParametricProblem` with the
    residual form above (coefficients ``kappa_h`` in DG0 and ``f_c`` a
    constant), so ``solve_fem`` and both generic torch routes
    (``make_discrete("general" | "affine")``) are available; :attr:`discrete`
    is the specialised P1 operator :class:`~sciprob.physics.residual.ResidualOperator`,
    which evaluates any flux law cell by cell on CPU or CUDA.

    Parameters
    ----------
    msh : dolfinx.mesh.Mesh
        A serial mesh (``MPI.COMM_SELF`` or a one-rank communicator).
    dirichlet : callable
        ``dirichlet(x) -> bool array`` marking the Dirichlet boundary
        (``x`` of shape (3, n_points)); the rest of the boundary is zero-flux.
    coefficient_map : type of CoefficientMap
        Prior and :math:`z \mapsto (\kappa, f, g)`.
    flux : {"linear", "sigmoid"}, default="linear"
        Flux law; ``"linear"`` is solved in one step, ``"sigmoid"`` by Newton.

    Attributes
    ----------
    msh, V, Q : mesh, P1 space, DG0 space
    discrete : DiscreteProblem
        The torch side (float64, CPU until moved).
    n_dofs, n_cells, dim_z : int
    """

    def __init__(
        self,
        msh: mesh.Mesh,
        dirichlet: Callable[[np.ndarray], np.ndarray],
        coefficient_map: type[CoefficientMap],
        flux: str = "linear",
    ) -> None:
        if msh.comm.size != 1:
            raise NotImplementedError("`ParametricPoissonProblem` supports serial meshes only")
        if flux not in ("linear", "sigmoid"):
            raise ValueError(f"`flux` must be 'linear' or 'sigmoid', got {flux!r}")
        self.msh, self.flux_law = msh, flux
        V = fem.functionspace(msh, ("Lagrange", 1))
        self.Q = fem.functionspace(msh, ("DG", 0))
        tdim, gdim = msh.topology.dim, msh.geometry.dim if msh.topology.dim > 1 else 1
        facets = mesh.locate_entities_boundary(msh, dim=tdim - 1, marker=dirichlet)
        bc_dofs = fem.locate_dofs_topological(V=V, entity_dim=tdim - 1, entities=facets)
        self.cell_dofs = np.asarray(V.dofmap.list, dtype=np.int64)
        self.cell_dg = np.asarray(self.Q.dofmap.list, dtype=np.int64)[:, 0]
        self.n_cells = self.cell_dofs.shape[0]
        coords = V.tabulate_dof_coordinates()[:, :gdim]
        self.V = V
        n_dofs = V.dofmap.index_map.size_local
        self.n_dofs = n_dofs
        self.bc_dofs = np.asarray(bc_dofs, dtype=np.int64)
        self.operator = self._assemble_operator(gdim)
        self.coefficient_map = coefficient_map(
            torch.from_numpy(coords[self.cell_dofs].mean(axis=1)),
            torch.from_numpy(coords[self.bc_dofs].copy()),
        )
        self._coords = torch.from_numpy(coords[:n_dofs].copy())

        # coefficients of the compiled forms, updated in place per parameter value
        self.kappa_h = fem.Function(self.Q, name="kappa")
        self.f_c = fem.Constant(msh, 1.0)
        self.uh = fem.Function(V, name="u")
        dof_to_cell = np.empty(self.n_cells, dtype=np.int64)
        dof_to_cell[self.cell_dg] = np.arange(self.n_cells)
        super().__init__(
            self._weak_residual(self.uh),
            self.uh,
            coefficients=[self.kappa_h, self.f_c],
            z_map=_PoissonZMap(self.coefficient_map, dof_to_cell),
            prior=self.coefficient_map.prior,
            bc_dofs=self.bc_dofs,
            bc_values=_PoissonBC(self.coefficient_map),
            positive=[0],
        )
        self.coefficients = self.coefficient_map

    def _default_discrete(self) -> DiscreteProblem:
        return DiscreteProblem(self.operator, self.coefficient_map, self._coords.clone())

    # -- set-up ---------------------------------------------------------------------------
    def _assemble_operator(self, gdim: int) -> ResidualOperator:
        """Per-cell gradient operators, volumes and load from DOLFINx-assembled forms."""
        v, psi = ufl.TestFunction(self.V), ufl.TrialFunction(self.Q)
        volumes = fem.assemble_vector(fem.form(ufl.TestFunction(self.Q) * ufl.dx)).array.copy()
        vol_cells = volumes[self.cell_dg]
        grad_ops = np.empty((self.n_cells, self.cell_dofs.shape[1], gdim))
        for d in range(gdim):
            B = fem.assemble_matrix(fem.form(psi * v.dx(d) * ufl.dx)).to_scipy().tocsr()
            rows = self.cell_dofs.ravel()
            cols = np.repeat(self.cell_dg, self.cell_dofs.shape[1])
            grad_ops[:, :, d] = np.asarray(B[rows, cols]).reshape(self.n_cells, -1) / vol_cells[:, None]
        load = fem.assemble_vector(fem.form(v * ufl.dx)).array[: self.n_dofs].copy()
        flux = linear_flux if self.flux_law == "linear" else sigmoid_flux
        return ResidualOperator(
            torch.from_numpy(self.cell_dofs),
            torch.from_numpy(grad_ops),
            torch.from_numpy(vol_cells),
            torch.from_numpy(load),
            torch.from_numpy(self.bc_dofs.astype(np.int64)),
            flux,
        )

    def _weak_residual(self, w: fem.Function):
        v = ufl.TestFunction(self.V)
        q = _ufl_flux(self.flux_law, ufl.grad(w), self.kappa_h)
        return ufl.inner(q, ufl.grad(v)) * ufl.dx - self.f_c * v * ufl.dx

    # -- conversions ----------------------------------------------------------------------
    def dof_coordinates(self) -> np.ndarray:
        """Coordinates of the degrees of freedom, shape (n_dofs, gdim)."""
        return self.discrete.dof_coordinates.numpy().copy()

    def to_function(self, u: Tensor, name: str = "u") -> fem.Function:
        """Copy nodal values ``u`` of shape (n_dofs,) into a new P1 ``fem.Function``."""
        u = torch.as_tensor(u)
        if u.shape != (self.n_dofs,):
            raise ValueError(f"`u` must have shape ({self.n_dofs},), got {tuple(u.shape)}")
        uh = fem.Function(self.V, name=name)
        uh.x.array[:] = u.detach().cpu().double().numpy()
        return uh

    def from_function(self, uh: fem.Function) -> Tensor:
        """Nodal values of a P1 function as a float64 tensor of shape (n_dofs,)."""
        return torch.from_numpy(uh.x.array[: self.n_dofs].copy())

    # -- parameters -----------------------------------------------------------------------
    def fields(self, z: Tensor) -> Fields:
        """Return the validated fields of a batch ``z`` of shape (batch, dim_z) or (dim_z,)."""
        return self.coefficient_map.fields(self.coefficient_map.validate(z))

    # -- DOLFINx --------------------------------------------------------------------------
    def solve_fields(self, kappa: np.ndarray, forcing: float, bc_values: np.ndarray) -> np.ndarray:
        """FEM solution for given discrete fields, with the compiled forms.

        Parameters
        ----------
        kappa : ndarray of shape (n_cells,)
            Positive diffusivity per cell.
        forcing : float
        bc_values : ndarray of shape (n_bc,)

        Returns
        -------
        ndarray of shape (n_dofs,)

        Raises
        ------
        ValueError
            Non-positive or non-finite ``kappa``; non-finite data.
        """
        kappa = np.asarray(kappa, dtype=np.float64)
        if kappa.shape != (self.n_cells,):
            raise ValueError(f"`kappa` must have shape ({self.n_cells},), got {kappa.shape}")
        if not np.all(np.isfinite(kappa)) or np.any(kappa <= 0):
            bad = kappa[~(np.isfinite(kappa) & (kappa > 0))][0]
            raise ValueError(
                f"the diffusivity `kappa` must be positive and finite on every cell, got {bad!r}; "
                "check the coefficient map"
            )
        if not np.isfinite(forcing) or not np.all(np.isfinite(bc_values)):
            raise ValueError("`forcing` and `bc_values` must be finite")
        kappa_dofs = np.empty(self.n_cells)
        kappa_dofs[self.cell_dg] = kappa
        return self.solve_values([kappa_dofs, np.array([float(forcing)])], np.asarray(bc_values, np.float64))


def _check_cells(name: str, n: int) -> int:
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"`{name}` (mesh size) must be an integer >= 2, got {n!r}")
    return int(n)


class LinearPoisson1D(ParametricPoissonProblem):
    """The paper's linear 1D problem: 20 P1 elements on [-1, 1], ``kappa = softplus(z)``.

    Parameters
    ----------
    n_cells : int, default=20
        Number of elements (>= 2).
    """

    def __init__(self, n_cells: int = 20) -> None:
        from sciprob.physics.coefficients import SoftplusConstant

        n = _check_cells("n_cells", n_cells)
        msh = mesh.create_interval(MPI.COMM_SELF, n, [-1.0, 1.0])
        ends = lambda x: np.isclose(np.abs(x[0]), 1.0)  # noqa: E731
        super().__init__(msh, ends, SoftplusConstant, "linear")


class NonlinearPoisson1D(ParametricPoissonProblem):
    """The paper's nonlinear 1D problem: 60 elements, Chebyshev diffusivity, sigmoid flux law.

    Parameters
    ----------
    n_cells : int, default=60
        Number of elements (>= 2).
    """

    def __init__(self, n_cells: int = 60) -> None:
        from sciprob.physics.coefficients import ChebyshevSoftplus

        n = _check_cells("n_cells", n_cells)
        msh = mesh.create_interval(MPI.COMM_SELF, n, [-1.0, 1.0])
        ends = lambda x: np.isclose(np.abs(x[0]), 1.0)  # noqa: E731
        super().__init__(msh, ends, ChebyshevSoftplus, "sigmoid")


class Poisson2D(ParametricPoissonProblem):
    """Issue #4's 2D problem on the unit square (``n x n`` squares, each split into 2 triangles).

    ``-div(kappa grad u) = 10``, ``u = 0`` on ``x = 0`` and ``x = 1``, zero flux
    on ``y = 0`` and ``y = 1``, ``kappa = exp(sum_k z_k a_k)`` (see
    :class:`sciprob.physics.coefficients.CosineExpansion2D`).

    Parameters
    ----------
    n : int, default=32
        Squares per side (>= 2).
    """

    def __init__(self, n: int = 32) -> None:
        from sciprob.physics.coefficients import CosineExpansion2D

        n = _check_cells("n", n)
        msh = mesh.create_unit_square(MPI.COMM_SELF, n, n, mesh.CellType.triangle)
        sides = lambda x: np.isclose(x[0], 0.0) | np.isclose(x[0], 1.0)  # noqa: E731
        super().__init__(msh, sides, CosineExpansion2D, "linear")


class ObservationMapPoisson1D(ParametricPoissonProblem):
    """The paper's observation-map problem: 100 P1 elements on [-1, 1], linear flux, 7 uniform parameters.

    ``-(kappa u')' = f``, ``u(-1) = z_5``, ``u(1) = z_6`` (see
    :class:`sciprob.physics.coefficients.ObservationMapCoefficients`). Linear in
    ``u``, so :class:`sciprob.physics.inverse.LinearSolver` solves it exactly in torch.

    Parameters
    ----------
    n_cells : int, default=100
        Number of elements (>= 2).
    """

    def __init__(self, n_cells: int = 100) -> None:
        from sciprob.physics.coefficients import ObservationMapCoefficients

        n = _check_cells("n_cells", n_cells)
        msh = mesh.create_interval(MPI.COMM_SELF, n, [-1.0, 1.0])
        ends = lambda x: np.isclose(np.abs(x[0]), 1.0)  # noqa: E731
        super().__init__(msh, ends, ObservationMapCoefficients, "linear")
