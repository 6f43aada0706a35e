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

import itertools
from collections.abc import Callable

import numpy as np
import torch
import ufl
from dolfinx import fem, mesh
from dolfinx.fem.petsc import LinearProblem, NonlinearProblem
from mpi4py import MPI
from torch import Tensor

from sciprob.physics.coefficients import CoefficientMap, Fields
from sciprob.physics.residual import DiscreteProblem, ResidualOperator, linear_flux, sigmoid_flux

_PREFIX = itertools.count()


def _ufl_flux(law: str, grad_u, kappa):
    """Return the UFL twin of the torch flux laws in :mod:`sciprob.physics.residual`."""
    if law == "linear":
        return kappa * grad_u
    norm = abs(grad_u[0]) if grad_u.ufl_shape == (1,) else ufl.sqrt(ufl.inner(grad_u, grad_u))
    return ((1.0 / (1.0 + ufl.exp(-norm)) + 5.0 * kappa) / 10.0) * grad_u


class ParametricPoissonProblem:
    r"""A parametric Poisson problem on a DOLFINx mesh, P1 elements.

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
        Flux law; ``"linear"`` is solved with ``LinearProblem``, ``"sigmoid"``
        with the SNES ``NonlinearProblem``.

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
        self.V = fem.functionspace(msh, ("Lagrange", 1))
        self.Q = fem.functionspace(msh, ("DG", 0))
        tdim, gdim = msh.topology.dim, msh.geometry.dim if msh.topology.dim > 1 else 1
        facets = mesh.locate_entities_boundary(msh, dim=tdim - 1, marker=dirichlet)
        self.bc_dofs = fem.locate_dofs_topological(V=self.V, entity_dim=tdim - 1, entities=facets)
        self.cell_dofs = np.asarray(self.V.dofmap.list, dtype=np.int64)
        self.cell_dg = np.asarray(self.Q.dofmap.list, dtype=np.int64)[:, 0]
        self.n_dofs, self.n_cells = self.V.dofmap.index_map.size_local, self.cell_dofs.shape[0]
        coords = self.V.tabulate_dof_coordinates()[:, :gdim]

        self.operator = self._assemble_operator(gdim)
        self.coefficients = coefficient_map(
            torch.from_numpy(coords[self.cell_dofs].mean(axis=1)),
            torch.from_numpy(coords[self.bc_dofs].copy()),
        )
        self.discrete = DiscreteProblem(self.operator, self.coefficients, torch.from_numpy(coords.copy()))
        self.dim_z = self.coefficients.dim_z

        # coefficients of the compiled forms, updated in place per parameter value
        self.kappa_h = fem.Function(self.Q, name="kappa")
        self.f_c = fem.Constant(msh, 1.0)
        self.g_h = fem.Function(self.V, name="g")
        self.bc = fem.dirichletbc(self.g_h, self.bc_dofs)
        self.uh = fem.Function(self.V, name="u")
        self._residual_form = None
        self._problem = self._build_solver()

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

    def _build_solver(self):
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        prefix = f"sciprob_pddlvm_{next(_PREFIX)}_"
        direct = {"ksp_type": "preonly", "pc_type": "lu", "ksp_error_if_not_converged": True}
        if self.flux_law == "linear":
            a = ufl.inner(self.kappa_h * ufl.grad(u), ufl.grad(v)) * ufl.dx
            L = self.f_c * v * ufl.dx
            return LinearProblem(
                a, L, bcs=[self.bc], u=self.uh, petsc_options=direct, petsc_options_prefix=prefix
            )
        F = self._weak_residual(self.uh)
        options = dict(
            direct,
            snes_type="newtonls",
            snes_linesearch_type="bt",
            snes_rtol=1e-12,
            snes_atol=1e-13,
            snes_error_if_not_converged=True,
        )
        return NonlinearProblem(F, self.uh, bcs=[self.bc], petsc_options=options, petsc_options_prefix=prefix)

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
    def prior(self):
        """Return the prior :math:`p(z)`, event shape ``(dim_z,)``."""
        return self.coefficients.prior()

    def fields(self, z: Tensor) -> Fields:
        """Return the validated fields of a batch ``z`` of shape (batch, dim_z) or (dim_z,)."""
        return self.coefficients.fields(self.coefficients.validate(z))

    def residual(self, u: Tensor, z: Tensor) -> Tensor:
        """Torch residual for a batch (see :class:`sciprob.physics.residual.DiscreteProblem`).

        Parameters
        ----------
        u : Tensor of shape (batch, n_dofs)
        z : Tensor of shape (batch, dim_z)

        Returns
        -------
        Tensor of shape (batch, n_dofs)
        """
        z = self.coefficients.validate(z)
        if u.dim() != 2 or u.shape != (z.shape[0], self.n_dofs):
            raise ValueError(f"`u` must have shape ({z.shape[0]}, {self.n_dofs}), got {tuple(u.shape)}")
        return self.discrete.to(u.device).residual(u, z)

    # -- DOLFINx --------------------------------------------------------------------------
    def _set_fields(self, kappa: np.ndarray, forcing: float, bc_values: np.ndarray) -> None:
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
        self.kappa_h.x.array[self.cell_dg] = kappa
        self.f_c.value = float(forcing)
        self.g_h.x.array[:] = 0.0
        self.g_h.x.array[self.bc_dofs] = bc_values

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
        self._set_fields(kappa, forcing, bc_values)
        self.uh.x.array[:] = 0.0
        self._problem.solve()
        if self.flux_law != "linear" and self._problem.solver.getConvergedReason() <= 0:
            raise RuntimeError("SNES did not converge")
        return self.uh.x.array[: self.n_dofs].copy()

    def solve_fem(self, z: Tensor) -> Tensor:
        """Compute reference FEM solutions, one DOLFINx solve per parameter vector.

        Parameters
        ----------
        z : Tensor of shape (batch, dim_z) or (dim_z,)

        Returns
        -------
        Tensor of shape (batch, n_dofs) or (n_dofs,), float64
        """
        z2 = self.coefficients.validate(z)
        kappa, forcing, bc = (t.detach().cpu().double().numpy() for t in self.fields(z2))
        out = np.stack([self.solve_fields(kappa[b], forcing[b], bc[b]) for b in range(z2.shape[0])])
        out = torch.from_numpy(out)
        return out[0] if z.dim() == 1 else out

    def assemble_residual(self, u: Tensor, z: Tensor) -> np.ndarray:
        """DOLFINx's own residual of one state, for checking the torch residual.

        ``F(u; v)`` assembled with ``fem.assemble_vector``, Dirichlet rows set
        to ``u - g`` with ``bc.set(b, x0=u, alpha=-1)``.

        Parameters
        ----------
        u : Tensor of shape (n_dofs,)
        z : Tensor of shape (dim_z,)

        Returns
        -------
        ndarray of shape (n_dofs,)
        """
        kappa, forcing, bc = (t[0].detach().cpu().double().numpy() for t in self.fields(z))
        self._set_fields(kappa, float(forcing), bc)
        w = self.to_function(u, name="w")
        if self._residual_form is None:
            self._w = fem.Function(self.V, name="w")
            self._residual_form = fem.form(self._weak_residual(self._w))
        self._w.x.array[:] = w.x.array
        b = fem.assemble_vector(self._residual_form)
        b.scatter_reverse(__import__("dolfinx").la.InsertMode.add)
        self.bc.set(b.array, x0=self._w.x.array, alpha=-1.0)
        return b.array[: self.n_dofs].copy()


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
