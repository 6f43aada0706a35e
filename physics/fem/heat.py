r"""DOLFINx reference solver of the paper's nonlinear heat equation: P1 in x, backward Euler, Newton.

Strong form, on :math:`x \in (0, L)`, :math:`t \in (0, T]`:

.. math::

    u_t = \frac{1}{\gamma}\,\partial_x\big(\mu(u)\,\partial_x u\big) + f, \qquad
    \mu(u) = \frac{u\kappa^2 + 1}{\kappa}, \qquad u(x, 0) = u_0(x), \qquad u = g \text{ at } x = 0, L,

with the paper's case :math:`L = 2\pi`, :math:`T = 2`, :math:`u_0 = \sin x + 1`,
:math:`g = 1`, :math:`f = 0` [1]_. Weak form of one backward-Euler step
:math:`t^{n} \to t^{n+1} = t^n + \Delta t`: find :math:`u^{n+1}_h \in V_h` (P1),
:math:`u^{n+1}_h = g(t^{n+1})` on the ends, with

.. math::

    F(u^{n+1}_h; v) = \int \frac{u^{n+1}_h - u^n_h}{\Delta t} v\,dx
        + \frac{1}{\gamma}\int \mu(u^{n+1}_h)\,\partial_x u^{n+1}_h\,\partial_x v\,dx
        - \int f(t^{n+1})\, v\,dx = 0 \quad \forall v \in V_{h,0},

solved by Newton's method (PETSc SNES, LU inner solves, an error if it does
not converge). The scheme is first order in time and second order in space (L2).
A manufactured solution (``exact=``) supplies :math:`u_0`, :math:`g` and the
source :math:`f = u_t - \gamma^{-1}\partial_x(\mu(u) u_x)`, derived by UFL.

References
----------
.. [1] Vadeboncoeur et al., arXiv:2208.04856; official code ``apps/PINN``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import ufl
from dolfinx import fem, mesh
from dolfinx.fem.petsc import NonlinearProblem
from mpi4py import MPI

_PREFIX = itertools.count()

#: ``exact(x, t, mod) -> value``: written with ``mod.sin``/``mod.exp`` so that it works for numpy and UFL
Exact = Callable[[object, object, object], object]


class HeatSolution(NamedTuple):
    r"""Nodal history of one solve.

    Attributes
    ----------
    x : ndarray of shape (n_cells + 1,)
        Sorted node coordinates.
    t : ndarray of shape (n_steps + 1,)
        Time levels.
    u : ndarray of shape (n_steps + 1, n_cells + 1)
        Nodal values at every time level (rows) and sorted node (columns).
    l2_error : float
        :math:`\|u_h(T) - u_e(T)\|_{L^2}` for a manufactured solution, else NaN.
    seconds : float
        Wall time of the time loop (form compilation excluded).
    newton_iterations : int
        Newton iterations summed over the steps.
    """

    x: np.ndarray
    t: np.ndarray
    u: np.ndarray
    l2_error: float
    seconds: float
    newton_iterations: int


def _mu(u, kappa):
    return (u * kappa**2 + 1.0) / kappa


class HeatReferenceSolver:
    r"""Backward-Euler / Newton P1 solver of the nonlinear heat equation.

    Parameters
    ----------
    n_cells : int
        Elements on :math:`(0, L)`, at least 2.
    n_steps : int
        Time steps on :math:`(0, T]`, at least 1.
    length : float, default=2*pi
    t_end : float, default=2.0
    exact : callable, default=None
        Manufactured solution ``exact(x, t, mod)``; default: the paper's case.

    Examples
    --------
    >>> solver = HeatReferenceSolver(200, 400)          # doctest: +SKIP
    >>> sol = solver.solve(gamma=2.0, kappa=3.0)
    >>> sol.u.shape
    (401, 201)
    """

    def __init__(
        self,
        n_cells: int,
        n_steps: int,
        *,
        length: float = 2 * math.pi,
        t_end: float = 2.0,
        exact: Exact | None = None,
    ) -> None:
        if isinstance(n_cells, bool) or int(n_cells) != n_cells or n_cells < 2:
            raise ValueError(f"`n_cells` must be an integer >= 2, got {n_cells!r}")
        if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 1:
            raise ValueError(f"`n_steps` must be an integer >= 1, got {n_steps!r}")
        if not (length > 0 and t_end > 0):
            raise ValueError(f"`length` and `t_end` must be positive, got {length!r} and {t_end!r}")
        self.n_cells, self.n_steps, self.length, self.t_end = int(n_cells), int(n_steps), length, t_end
        self.exact = exact
        self.msh = mesh.create_interval(MPI.COMM_SELF, self.n_cells, [0.0, float(length)])
        self.V = fem.functionspace(self.msh, ("Lagrange", 1))
        x = self.V.tabulate_dof_coordinates()[:, 0]
        self.order = np.argsort(x)
        self.x = x[self.order]
        facets = mesh.locate_entities_boundary(
            self.msh, dim=0, marker=lambda p: np.isclose(p[0], 0.0) | np.isclose(p[0], length)
        )
        dofs = fem.locate_dofs_topological(V=self.V, entity_dim=0, entities=facets)

        self.gamma = fem.Constant(self.msh, 1.0)
        self.kappa = fem.Constant(self.msh, 1.0)
        self.dt = fem.Constant(self.msh, t_end / self.n_steps)
        self.t = fem.Constant(self.msh, 0.0)
        self.uh, self.u_n, self.g = (fem.Function(self.V, name=n) for n in ("u", "u_n", "g"))
        self.bc = fem.dirichletbc(self.g, dofs)
        v = ufl.TestFunction(self.V)
        uh, u_n = self.uh, self.u_n
        F = (uh - u_n) / self.dt * v * ufl.dx
        F += (1.0 / self.gamma) * _mu(uh, self.kappa) * uh.dx(0) * v.dx(0) * ufl.dx
        if exact is not None:
            xs = ufl.SpatialCoordinate(self.msh)[0]
            tv = ufl.variable(self.t)
            ue = exact(xs, tv, ufl)
            # source against v, by parts: (u_t, v) + (1/gamma)(mu(u) u_x, v_x), as v = 0 at the ends
            ue_x = ufl.grad(ue)[0]
            F -= (
                ufl.diff(ue, tv) * v * ufl.dx
                + (1.0 / self.gamma) * _mu(ue, self.kappa) * ue_x * v.dx(0) * ufl.dx
            )
            self._error_form = fem.form(
                (uh - exact(xs, self.t, ufl)) ** 2 * ufl.dx(metadata={"quadrature_degree": 6})
            )
        options = {
            "ksp_type": "preonly",
            "pc_type": "lu",
            "ksp_error_if_not_converged": True,
            "snes_type": "newtonls",
            "snes_linesearch_type": "bt",
            "snes_rtol": 1e-10,
            "snes_atol": 1e-12,
            "snes_error_if_not_converged": True,
        }
        self._problem = NonlinearProblem(
            F,
            self.uh,
            bcs=[self.bc],
            petsc_options=options,
            petsc_options_prefix=f"sciprob_heat_{next(_PREFIX)}_",
        )

    def _initial(self, x: np.ndarray) -> np.ndarray:
        if self.exact is None:
            return np.sin(x) + 1.0
        return np.asarray(self.exact(x, 0.0, np), dtype=float) * np.ones_like(x)

    def _boundary(self, t: float) -> Callable[[np.ndarray], np.ndarray]:
        if self.exact is None:
            return lambda p: np.ones(p.shape[1])
        return lambda p: np.asarray(self.exact(p[0], t, np), dtype=float) * np.ones(p.shape[1])

    def solve(self, gamma: float, kappa: float) -> HeatSolution:
        """March from :math:`t = 0` to :math:`T` for one parameter pair.

        Parameters
        ----------
        gamma, kappa : float
            Positive parameters of the PDE.

        Returns
        -------
        HeatSolution

        Raises
        ------
        ValueError
            Non-positive or non-finite ``gamma`` or ``kappa``.
        """
        for name, value in (("gamma", gamma), ("kappa", kappa)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be positive and finite, got {value!r}")
        self.gamma.value, self.kappa.value = float(gamma), float(kappa)
        self.t.value = 0.0
        self.u_n.interpolate(lambda p: self._initial(p[0]))
        self.uh.x.array[:] = self.u_n.x.array
        history = np.empty((self.n_steps + 1, self.x.size))
        history[0] = self.u_n.x.array[self.order]
        dt = self.t_end / self.n_steps
        iterations = 0
        start = time.perf_counter()
        for step in range(1, self.n_steps + 1):
            t = step * dt
            self.t.value = t
            self.g.interpolate(self._boundary(t))
            self._problem.solve()
            iterations += int(self._problem.solver.getIterationNumber())
            self.u_n.x.array[:] = self.uh.x.array
            history[step] = self.uh.x.array[self.order]
        seconds = time.perf_counter() - start
        error = float("nan")
        if self.exact is not None:
            error = math.sqrt(max(fem.assemble_scalar(self._error_form), 0.0))
        t_levels = np.linspace(0.0, self.t_end, self.n_steps + 1)
        return HeatSolution(self.x.copy(), t_levels, history, error, seconds, iterations)


def sample_on_grid(sol: HeatSolution, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Interpolate a solution history linearly in x and t onto a grid.

    Parameters
    ----------
    sol : HeatSolution
    x : ndarray of shape (nx,)
    t : ndarray of shape (nt,)

    Returns
    -------
    ndarray of shape (nt, nx)
    """
    in_x = np.stack([np.interp(x, sol.x, row) for row in sol.u])  # (n_levels, nx)
    return np.stack([np.interp(t, sol.t, in_x[:, j]) for j in range(x.size)], axis=1)
