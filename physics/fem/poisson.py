r"""Reference Poisson solver with a manufactured solution on the unit square.

Strong form

.. math::

    -\Delta u = f \quad \text{in } \Omega = (0, 1)^2, \qquad u = 0 \text{ on } \partial\Omega,

with :math:`u_e = \sin(\pi x)\sin(\pi y)` and :math:`f = 2\pi^2 u_e`. Weak form:
find :math:`u_h \in V_h` with :math:`a(u_h, v) = L(v)` for all :math:`v`, where
:math:`a(u, v) = \int_\Omega \nabla u \cdot \nabla v \,dx` and
:math:`L(v) = \int_\Omega f v \,dx`. The errors
:math:`\|u_e - u_h\|_{L^2}` and :math:`|u_e - u_h|_{H^1}` are integrated with
a quadrature rule of degree ``degree + 4`` so that the exact solution is
resolved well beyond the discretisation error.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import ufl
from dolfinx import fem, mesh
from dolfinx.fem.petsc import LinearProblem
from mpi4py import MPI


class PoissonSolution(NamedTuple):
    r"""Errors and cost of one Poisson solve.

    Attributes
    ----------
    n : int
        Cells per side of the mesh (``2 n^2`` triangles).
    h : float
        Mesh size ``1 / n``.
    degree : int
        Lagrange element degree.
    n_dofs : int
        Global number of degrees of freedom.
    l2_error : float
        :math:`\|u_e - u_h\|_{L^2(\Omega)}`.
    h1_error : float
        :math:`|u_e - u_h|_{H^1(\Omega)}` (the seminorm).
    solve_seconds : float
        Wall time of assembly and solve (forms compiled beforehand excluded).
    """

    n: int
    h: float
    degree: int
    n_dofs: int
    l2_error: float
    h1_error: float
    solve_seconds: float


def solve_manufactured_poisson(n: int, degree: int = 1, *, comm=MPI.COMM_WORLD) -> PoissonSolution:
    """Solve the manufactured Poisson problem on an ``n x n`` triangle mesh.

    Parameters
    ----------
    n : int
        Cells per side; at least 2.
    degree : int, default=1
        Lagrange degree (1 or higher).
    comm : MPI communicator, default=MPI.COMM_WORLD
        Communicator of the mesh.

    Returns
    -------
    PoissonSolution

    Raises
    ------
    ValueError
        If ``n < 2`` or ``degree < 1``.
    """
    if int(n) != n or n < 2:
        raise ValueError(f"`n` (cells per side) must be an integer >= 2, got {n!r}")
    if int(degree) != degree or degree < 1:
        raise ValueError(f"`degree` must be an integer >= 1, got {degree!r}")
    msh = mesh.create_unit_square(comm, int(n), int(n), mesh.CellType.triangle)
    V = fem.functionspace(msh, ("Lagrange", int(degree)))
    tdim = msh.topology.dim
    facets = mesh.locate_entities_boundary(msh, dim=tdim - 1, marker=lambda x: np.full(x.shape[1], True))
    dofs = fem.locate_dofs_topological(V=V, entity_dim=tdim - 1, entities=facets)
    bc = fem.dirichletbc(value=0.0, dofs=dofs, V=V)

    x = ufl.SpatialCoordinate(msh)
    u_exact = ufl.sin(ufl.pi * x[0]) * ufl.sin(ufl.pi * x[1])
    f = 2 * ufl.pi**2 * u_exact
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
    L = ufl.inner(f, v) * ufl.dx
    problem = LinearProblem(
        a,
        L,
        bcs=[bc],
        petsc_options={"ksp_type": "preonly", "pc_type": "lu", "ksp_error_if_not_converged": True},
        petsc_options_prefix=f"sciprob_poisson_{n}_{degree}_",
    )
    start = time.perf_counter()
    uh = problem.solve()
    if isinstance(uh, tuple):  # some DOLFINx versions return (solution, reason, iterations)
        uh = uh[0]
    solve_seconds = time.perf_counter() - start

    dx_err = ufl.dx(metadata={"quadrature_degree": int(degree) + 4})
    err = uh - u_exact
    l2_sq = fem.assemble_scalar(fem.form(ufl.inner(err, err) * dx_err))
    h1_sq = fem.assemble_scalar(fem.form(ufl.inner(ufl.grad(err), ufl.grad(err)) * dx_err))
    l2 = float(np.sqrt(msh.comm.allreduce(l2_sq, op=MPI.SUM)))
    h1 = float(np.sqrt(msh.comm.allreduce(h1_sq, op=MPI.SUM)))
    n_dofs = V.dofmap.index_map.size_global * V.dofmap.index_map_bs
    return PoissonSolution(int(n), 1.0 / n, int(degree), int(n_dofs), l2, h1, solve_seconds)
