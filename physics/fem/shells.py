r"""3D elastic shells: Gmsh meshes of solid bricks through the thickness, parametric Young's modulus.

Linear elasticity on the shell's volume :math:`\Omega` (no shell kinematics):

.. math::

    -\nabla\cdot\sigma(u) = b \ \text{in } \Omega, \qquad
    \sigma = 2\mu\,\varepsilon(u) + \lambda\,\mathrm{tr}\,\varepsilon(u)\, I, \qquad
    \mu = \frac{E}{2(1+\nu)},\ \lambda = \frac{E\nu}{(1+\nu)(1-2\nu)},

weak form :math:`F(u; v) = \int_\Omega \sigma(u):\varepsilon(v)\,dx - \int_\Omega b\cdot v\,dx
- \int_{\Gamma_N} t\cdot v\,ds`, with symmetry and diaphragm conditions as
component-wise Dirichlet conditions. Meshes are structured 27-node (Q2 geometry)
hexahedra made with the Gmsh Python API (a transfinite quadrilateral cross-section
extruded or revolved), read into DOLFINx from Gmsh's nodes and cells in memory
(``dolfinx.io.gmsh`` needs an MPI library this build lacks); the displacement is
Q2 on the same cells.

Parametric version (as the paper's shell case [1]_): the Young's modulus varies
along one axis through three Chebyshev coefficients,

.. math::

    E(x) = E_0\,\frac{\mathrm{softplus}\big(\sum_{i<3} z_i T_i(\hat x)\big) + 1}{\log 2 + 1},
    \qquad z \sim U(-2, 2)^3,

so that :math:`z = 0` is the benchmark's modulus :math:`E_0`; :math:`E` is
evaluated at cell midpoints (DG0), so the form is affine in it and the fast
route of :mod:`sciprob.physics.fem.forms` applies.

Benchmarks (MacNeal & Harder [2]_, Belytschko et al. [3]_):

* :class:`ScordelisLoRoof`: cylindrical roof, R = 25, L = 50, 80° arc, t = 0.25,
  E = 4.32e8, ν = 0, gravity 90 per unit area, rigid diaphragms at the curved
  ends; reference vertical displacement at the midpoint of the free edge
  0.3024 (quarter model, symmetry at mid-span and at the crown).
* :class:`PinchedHemisphere`: hemisphere with an 18° hole, R = 10, t = 0.04,
  E = 6.825e7, ν = 0.3, opposite radial loads of 2 at the equator (alternating
  in and out, 90° apart); reference radial displacement at the loads 0.0924
  (quadrant model with symmetry planes, a load of 1 on each).

References
----------
.. [1] A. Vadeboncoeur et al., arXiv:2208.04856 (shell case: Bunny app of the official code).
.. [2] R. H. MacNeal, R. L. Harder, "A proposed standard set of problems to test finite
   element accuracy", Finite Elem. Anal. Des. 1 (1985) 3-20.
.. [3] T. Belytschko, H. Stolarski, W. K. Liu, N. Carpenter, J. S.-J. Ong, "Stress
   projection for membrane and shear locking in shell finite elements",
   Comput. Methods Appl. Mech. Engrg. 51 (1985) 221-258.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import basix.ufl
import numpy as np
import pyro.distributions as dist
import torch
import ufl
from dolfinx import fem, mesh
from dolfinx.cpp.io import perm_gmsh
from mpi4py import MPI
from torch import Tensor, nn

from sciprob.physics.coefficients import chebyshev
from sciprob.physics.fem.forms import ParametricProblem, located_dofs

#: gmsh element type -> (DOLFINx cell, geometry degree, nodes per cell)
_GMSH_CELLS = {
    5: (mesh.CellType.hexahedron, 1, 8),
    12: (mesh.CellType.hexahedron, 2, 27),
    4: (mesh.CellType.tetrahedron, 1, 4),
    11: (mesh.CellType.tetrahedron, 2, 10),
}


# -- Gmsh -> DOLFINx ----------------------------------------------------------------------------
@contextlib.contextmanager
def _gmsh_session():
    import gmsh

    owner = not gmsh.isInitialized()
    if owner:
        gmsh.initialize(readConfigFiles=False)
    gmsh.option.setNumber("General.Terminal", 0)
    try:
        yield gmsh
    finally:
        if owner:
            gmsh.finalize()


def mesh_from_gmsh_model(gmsh) -> mesh.Mesh:
    """Build a serial DOLFINx mesh from the 3D cells of the current Gmsh model (in memory).

    Parameters
    ----------
    gmsh : module
        The initialised ``gmsh`` module with a meshed 3D model.

    Returns
    -------
    dolfinx.mesh.Mesh
        Hexahedra or tetrahedra, geometry degree 1 or 2 as meshed.

    Raises
    ------
    ValueError
        If the model holds no 3D cells, or several kinds.
    """
    types, _, node_tags = gmsh.model.mesh.getElements(dim=3)
    if len(types) != 1 or int(types[0]) not in _GMSH_CELLS:
        raise ValueError(
            f"the Gmsh model must hold one kind of 3D cell (hexahedra or tetrahedra, order 1 or 2), "
            f"got types {list(types)}"
        )
    cell_type, degree, n_nodes = _GMSH_CELLS[int(types[0])]
    tags, coords, _ = gmsh.model.mesh.getNodes()
    coords = coords.reshape(-1, 3)
    cells_tags = node_tags[0].reshape(-1, n_nodes).astype(np.int64)
    used, inverse = np.unique(cells_tags, return_inverse=True)
    position = {int(t): i for i, t in enumerate(tags)}
    x = coords[[position[int(t)] for t in used]]
    cells = inverse.reshape(cells_tags.shape)[:, perm_gmsh(cell_type, n_nodes)]
    element = basix.ufl.element("Lagrange", cell_type.name, degree, shape=(3,))
    return mesh.create_mesh(MPI.COMM_SELF, cells.astype(np.int64), element, x)


def read_gmsh_mesh(path: str | Path) -> mesh.Mesh:
    """Read a Gmsh ``.msh`` (or a geometry Gmsh meshes in 3D) into a serial DOLFINx mesh.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dolfinx.mesh.Mesh

    Raises
    ------
    ValueError
        If the file does not exist or Gmsh cannot read it or it holds no 3D cells.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`path` {str(path)!r} is not a readable file; give the path of a Gmsh .msh file")
    with _gmsh_session() as gmsh:
        gmsh.model.add("sciprob_read")
        try:
            gmsh.open(str(path))
        except Exception as exc:  # gmsh raises a bare Exception with its own log line
            raise ValueError(
                f"`path` {str(path)!r} cannot be read by Gmsh ({exc}); give a valid .msh file"
            ) from None
        try:
            if len(gmsh.model.mesh.getElements(dim=3)[0]) == 0:  # a geometry file: mesh it
                gmsh.model.mesh.generate(3)
            return mesh_from_gmsh_model(gmsh)
        finally:
            gmsh.model.remove()


def _check_divisions(**sizes: int) -> None:
    for name, n in sizes.items():
        if isinstance(n, bool) or int(n) != n or n < 1:
            raise ValueError(f"`{name}` (elements) must be an integer >= 1, got {n!r}")


def _swept_sector_mesh(name: str, ends, n_arc: int, n_thickness: int, sweep) -> mesh.Mesh:
    """Q2 hexahedra of an annular-sector cross-section swept along a path.

    The cross-section lies between two circular arcs about the origin (inner and outer wall)
    and two straight segments through the thickness; ``n_arc`` x ``n_thickness`` transfinite
    quadrilaterals, swept into bricks by ``sweep(geo, [(2, surface)])`` (an extrusion or a
    revolution with its own element count).

    Parameters
    ----------
    name : str
        Gmsh model name.
    ends : pair of pairs of 3-tuples
        ``((inner_0, outer_0), (inner_1, outer_1))``: the segments' end points at the arc's start and end.
    n_arc, n_thickness : int
    sweep : callable

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    with _gmsh_session() as gmsh:
        gmsh.model.add(name)
        geo = gmsh.model.geo
        c = geo.addPoint(0, 0, 0)
        (i0, o0), (i1, o1) = ([geo.addPoint(*p) for p in pair] for pair in ends)
        arc_i, arc_o = geo.addCircleArc(i0, c, i1), geo.addCircleArc(o0, c, o1)
        l0, l1 = geo.addLine(i0, o0), geo.addLine(i1, o1)
        s = geo.addPlaneSurface([geo.addCurveLoop([arc_i, l1, -arc_o, -l0])])
        for curve, n in ((arc_i, n_arc), (arc_o, n_arc), (l0, n_thickness), (l1, n_thickness)):
            geo.mesh.setTransfiniteCurve(curve, n + 1)
        geo.mesh.setTransfiniteSurface(s)
        geo.mesh.setRecombine(2, s)
        sweep(geo, [(2, s)])
        geo.synchronize()
        gmsh.model.mesh.generate(3)
        gmsh.model.mesh.setOrder(2)
        try:
            return mesh_from_gmsh_model(gmsh)
        finally:
            gmsh.model.remove()


def cylinder_panel_mesh(
    radius: float,
    length: float,
    angle_deg: float,
    thickness: float,
    n_arc: int,
    n_length: int,
    n_thickness: int = 1,
) -> mesh.Mesh:
    """Mesh the cylindrical panel ``0 <= x <= length`` (arc 0..``angle_deg`` from z) with Q2 hexahedra.

    Parameters
    ----------
    radius, length, angle_deg, thickness : float
        Mid-surface radius, axial length (along x), arc from the crown (the z axis), wall thickness.
    n_arc, n_length, n_thickness : int
        Elements along the arc, the axis and through the thickness.

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    _check_divisions(n_arc=n_arc, n_length=n_length, n_thickness=n_thickness)
    a = math.radians(angle_deg)
    radii = (radius - thickness / 2, radius + thickness / 2)
    ends = (
        tuple((0.0, 0.0, r) for r in radii),
        tuple((0.0, r * math.sin(a), r * math.cos(a)) for r in radii),
    )

    def extrude(geo, dimtags):
        geo.extrude(dimtags, length, 0, 0, numElements=[n_length], recombine=True)

    return _swept_sector_mesh("sciprob_cylinder_panel", ends, n_arc, n_thickness, extrude)


def hemisphere_quadrant_mesh(
    radius: float, hole_deg: float, thickness: float, n_polar: int, n_azimuth: int, n_thickness: int = 1
) -> mesh.Mesh:
    """Mesh the quadrant ``x, y >= 0`` of a hemispherical shell with a polar hole with Q2 hexahedra.

    Parameters
    ----------
    radius, hole_deg, thickness : float
        Mid-surface radius, polar half-angle of the hole (from +z), wall thickness.
    n_polar, n_azimuth, n_thickness : int
        Elements from the hole to the equator, around the quarter, through the thickness.

    Returns
    -------
    dolfinx.mesh.Mesh
    """
    _check_divisions(n_polar=n_polar, n_azimuth=n_azimuth, n_thickness=n_thickness)
    h = math.radians(hole_deg)
    radii = (radius - thickness / 2, radius + thickness / 2)
    ends = (
        tuple((r * math.sin(h), 0.0, r * math.cos(h)) for r in radii),
        tuple((r, 0.0, 0.0) for r in radii),
    )

    def revolve(geo, dimtags):
        geo.revolve(dimtags, 0, 0, 0, 0, 0, 1, math.pi / 2, numElements=[n_azimuth], recombine=True)

    return _swept_sector_mesh("sciprob_hemisphere", ends, n_polar, n_thickness, revolve)


# -- the parametric modulus -------------------------------------------------------------------------
class ChebyshevModulus(nn.Module):
    r"""Young's modulus along one axis, :math:`E = E_0 (\mathrm{softplus}(\sum_i z_i T_i) + 1)/(\log 2 + 1)`.

    Parameters
    ----------
    cell_coordinate : Tensor of shape (n_cells,)
        The axis coordinate of each DG0 dof (cell midpoint).
    bounds : tuple of float
        The axis range mapped to :math:`\hat x \in [-1, 1]`.
    young : float
        :math:`E_0` (the modulus at :math:`z = 0`), positive.
    n_coefficients : int, default=3
    prior_bound : float, default=2.0
        :math:`z \sim U(-b, b)^{n}`.

    Attributes
    ----------
    dim_z : int
    """

    def __init__(
        self,
        cell_coordinate: Tensor,
        bounds: tuple[float, float],
        young: float,
        n_coefficients: int = 3,
        prior_bound: float = 2.0,
    ) -> None:
        super().__init__()
        if not young > 0:
            raise ValueError(f"`young` (Young's modulus E_0) must be positive, got {young!r}")
        lo, hi = bounds
        xhat = (2 * (cell_coordinate.double() - lo) / (hi - lo) - 1).clamp(-1, 1)
        self.register_buffer("basis", chebyshev(xhat, n_coefficients))
        self.register_buffer("low", torch.full((n_coefficients,), -float(prior_bound), dtype=torch.float64))
        self.register_buffer("high", torch.full((n_coefficients,), float(prior_bound), dtype=torch.float64))
        self.scale = float(young) / (math.log(2.0) + 1.0)
        self.dim_z = n_coefficients

    def prior(self) -> dist.TorchDistribution:
        """Return :math:`U(-b, b)^n`."""
        return dist.Uniform(self.low, self.high, validate_args=False).to_event(1)

    def modulus(self, z: Tensor) -> Tensor:
        """Young's modulus per cell, shape (batch, n_cells), from ``z`` of shape (batch, dim_z)."""
        return self.scale * (torch.nn.functional.softplus(z @ self.basis.T.to(z)) + 1.0)

    def forward(self, z: Tensor) -> list[Tensor]:
        """Return the coefficient list ``[E]`` of the generic interface."""
        return [self.modulus(z)]

    def kappa_field(self, z: Tensor) -> Tensor:
        """Return the modulus (named as the Poisson maps' field, for the inverse error)."""
        return self.modulus(z)


# -- the problems --------------------------------------------------------------------------------
class ElasticShell(ParametricProblem):
    r"""Linear elasticity on a solid shell mesh, Young's modulus from :class:`ChebyshevModulus`.

    Parameters
    ----------
    msh : dolfinx.mesh.Mesh
        3D mesh (serial).
    young : float
        :math:`E_0`, positive.
    poisson : float
        :math:`\nu \in [0, 0.5)`.
    clamps : sequence of (marker, component)
        Zero displacement of ``component`` at dofs whose coordinates satisfy ``marker``.
    body_force : tuple of 3 float, default=(0, 0, 0)
        :math:`b` per unit volume.
    tractions : sequence of (marker, force vector), default=()
        A total force spread uniformly over the boundary facets marked (all vertices satisfy
        ``marker``): traction = force / area.
    axis : int, default=0
        Axis along which :math:`E` varies.
    degree : int, default=2
        Lagrange degree of the displacement.
    quadrature_degree : int, default=4
    prior_bound : float, default=2.0
    route : {"affine", "general"}, default="affine"
        Torch residual of :attr:`discrete` (``"general"`` skips the set-up of the
        affine decomposition, for FEM-only use).

    Attributes
    ----------
    modulus : ChebyshevModulus
    """

    def __init__(
        self,
        msh: mesh.Mesh,
        *,
        young: float,
        poisson: float,
        clamps,
        body_force=(0.0, 0.0, 0.0),
        tractions=(),
        axis: int = 0,
        degree: int = 2,
        quadrature_degree: int = 4,
        prior_bound: float = 2.0,
        route: str = "affine",
    ) -> None:
        if not young > 0:
            raise ValueError(f"`young` (Young's modulus) must be positive, got {young!r}")
        if not 0.0 <= poisson < 0.5:
            raise ValueError(f"`poisson` (Poisson's ratio) must be in [0, 0.5), got {poisson!r}")
        V = fem.functionspace(msh, ("Lagrange", degree, (3,)))
        Q = fem.functionspace(msh, ("DG", 0))
        u, v = fem.Function(V, name="u"), ufl.TestFunction(V)
        E = fem.Function(Q, name="E")
        nu = float(poisson)
        mu, lmbda = E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))

        def eps(w):
            return ufl.sym(ufl.grad(w))

        dx = ufl.dx(metadata={"quadrature_degree": quadrature_degree})
        sigma = 2 * mu * eps(u) + lmbda * ufl.tr(eps(u)) * ufl.Identity(3)
        F = (
            ufl.inner(sigma, eps(v)) * dx
            - ufl.inner(fem.Constant(msh, np.asarray(body_force, dtype=np.float64)), v) * dx
        )
        if tractions:
            tdim = msh.topology.dim
            msh.topology.create_connectivity(tdim - 1, tdim)
            facets, tags = [], []
            for k, (marker, _) in enumerate(tractions):
                found = mesh.locate_entities_boundary(msh, tdim - 1, marker)
                if found.size == 0:
                    raise ValueError(f"`tractions[{k}]` marks no boundary facet; check its marker")
                facets.append(found), tags.append(np.full(found.size, k + 1, dtype=np.int32))
            order = np.argsort(np.concatenate(facets))
            mt = mesh.meshtags(msh, tdim - 1, np.concatenate(facets)[order], np.concatenate(tags)[order])
            ds = ufl.Measure("ds", domain=msh, subdomain_data=mt)
            for k, (_, force) in enumerate(tractions):
                area = fem.assemble_scalar(fem.form(fem.Constant(msh, 1.0) * ds(k + 1)))
                traction = fem.Constant(msh, np.asarray(force, dtype=np.float64) / area)
                F = F - ufl.inner(traction, v) * ds(k + 1)
        bc = np.unique(np.concatenate([located_dofs(V, marker, component) for marker, component in clamps]))
        coords = Q.tabulate_dof_coordinates()[:, axis]
        x_all = msh.geometry.x[:, axis]
        self.modulus = ChebyshevModulus(
            torch.from_numpy(coords.copy()),
            (float(x_all.min()), float(x_all.max())),
            young,
            prior_bound=prior_bound,
        )
        self.E = E
        super().__init__(
            F,
            u,
            coefficients=[E],
            z_map=self.modulus,
            prior=self.modulus.prior,
            bc_dofs=bc,
            positive=[0],
            route=route,
        )
        self._set_bc_scale()

    def _set_bc_scale(self) -> None:
        """Dirichlet rows ``s (u - g)`` on the scale of the stiffness diagonal: keeps J well conditioned."""
        op = self.discrete.operator
        z0 = torch.zeros(1, self.dim_z, dtype=torch.float64)
        J = op.jacobian(
            torch.zeros(1, self.n_dofs, dtype=torch.float64), *self.discrete.coefficients.fields(z0)
        )
        idx, vals = J.indices(), J.values()
        on_diag = (idx[0] == idx[1]) & ~op.is_bc[idx[0]]
        self.bc_scale = float(vals[on_diag].abs().mean()) if on_diag.any() else 1.0
        op.bc_scale = self.bc_scale

    def value_at(self, u: Tensor, point, component: int) -> Tensor:
        """Return one displacement component at the dof nearest ``point``: (batch, n_dofs) -> (batch,)."""
        x = self._dof_coordinates.numpy()
        candidates = np.flatnonzero(self._dof_components.numpy() == component)
        k = candidates[np.argmin(np.linalg.norm(x[candidates] - np.asarray(point), axis=1))]
        return u[..., int(k)]


class ScordelisLoRoof(ElasticShell):
    """The Scordelis-Lo roof (MacNeal & Harder 1985), quarter model of solid Q2 bricks.

    Parameters
    ----------
    n : int, default=8
        Elements along the half-length; ``n`` along the 40° half-arc too.
    n_thickness : int, default=1
    young : float, default=4.32e8
    prior_bound : float, default=2.0
    route : {"affine", "general"}, default="affine"

    Attributes
    ----------
    reference : float
        0.3024, the vertical displacement at the midpoint of the free edge.
    """

    R, L, ANGLE, T, LOAD = 25.0, 50.0, 40.0, 0.25, 90.0
    reference = 0.3024

    def __init__(
        self,
        n: int = 8,
        n_thickness: int = 1,
        young: float = 4.32e8,
        prior_bound: float = 2.0,
        route: str = "affine",
    ) -> None:
        _check_divisions(n=n, n_thickness=n_thickness)
        msh = cylinder_panel_mesh(self.R, self.L / 2, self.ANGLE, self.T, n, n, n_thickness)
        half = self.L / 2
        clamps = [
            (lambda x: np.isclose(x[0], half), 1),  # rigid diaphragm: no displacement in its plane
            (lambda x: np.isclose(x[0], half), 2),
            (lambda x: np.isclose(x[0], 0.0), 0),  # symmetry at mid-span
            (lambda x: np.isclose(x[1], 0.0), 1),  # symmetry at the crown
        ]
        super().__init__(
            msh,
            young=young,
            poisson=0.0,
            clamps=clamps,
            body_force=(0.0, 0.0, -self.LOAD / self.T),
            axis=0,
            prior_bound=prior_bound,
            route=route,
        )
        a = math.radians(self.ANGLE)
        self.point = (0.0, self.R * math.sin(a), self.R * math.cos(a))  # mid-surface, free edge, mid-span

    def quantity_of_interest(self, u: Tensor) -> Tensor:
        """Downward displacement at the midpoint of the free edge, (batch, n_dofs) -> (batch,)."""
        return -self.value_at(u, self.point, 2)


class PinchedHemisphere(ElasticShell):
    """The pinched hemisphere with an 18° hole (MacNeal & Harder 1985), quadrant of solid Q2 bricks.

    Parameters
    ----------
    n : int, default=8
        Elements from the hole to the equator and around the quarter.
    n_thickness : int, default=1
    young : float, default=6.825e7
    prior_bound : float, default=2.0
    route : {"affine", "general"}, default="affine"

    Attributes
    ----------
    reference : float
        0.0924, the radial displacement at the loads (Belytschko et al. 1985; MacNeal and Harder give 0.094).
    """

    R, HOLE, T, LOAD = 10.0, 18.0, 0.04, 2.0
    reference = 0.0924

    def __init__(
        self,
        n: int = 8,
        n_thickness: int = 1,
        young: float = 6.825e7,
        prior_bound: float = 2.0,
        route: str = "affine",
    ) -> None:
        _check_divisions(n=n, n_thickness=n_thickness)
        msh = hemisphere_quadrant_mesh(self.R, self.HOLE, self.T, n, n, n_thickness)
        # the point loads act on the first row of facets of each symmetry plane at the equator
        z_row = 1.001 * (self.R + self.T / 2) * math.sin(math.radians(90 - self.HOLE) / n)
        clamps = [
            (lambda x: np.isclose(x[0], 0.0), 0),  # symmetry planes
            (lambda x: np.isclose(x[1], 0.0), 1),
            # no rigid vertical motion: the mid-surface node halfway round the equator
            (
                lambda x: (
                    np.isclose(x[2], 0.0) & np.isclose(x[0], x[1]) & np.isclose(np.hypot(x[0], x[1]), self.R)
                ),
                2,
            ),
        ]
        tractions = [
            (
                lambda x: np.isclose(x[1], 0.0) & (x[2] <= z_row),
                (self.LOAD / 2, 0.0, 0.0),
            ),  # outward at (R, 0, 0)
            (
                lambda x: np.isclose(x[0], 0.0) & (x[2] <= z_row),
                (0.0, -self.LOAD / 2, 0.0),
            ),  # inward at (0, R, 0)
        ]
        super().__init__(
            msh,
            young=young,
            poisson=0.3,
            clamps=clamps,
            tractions=tractions,
            axis=2,
            prior_bound=prior_bound,
            route=route,
        )
        self.point = (self.R, 0.0, 0.0)

    def quantity_of_interest(self, u: Tensor) -> Tensor:
        """Outward radial displacement at the load point (R, 0, 0), (batch, n_dofs) -> (batch,)."""
        return self.value_at(u, self.point, 0)
