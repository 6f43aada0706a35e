"""3D elastic shells: Gmsh meshes in DOLFINx, FEM against MacNeal-Harder references, parametric modulus."""

from __future__ import annotations

import copy
import math

import dolfinx_solver  # noqa: F401, I001 - DOLFINx's bundled PETSc must load before dolfinx
import numpy as np
import pytest
import torch
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI

from sciprob.physics import PDDLVM, ReducedBasis
from sciprob.physics.fem.shells import (
    ChebyshevModulus,
    ElasticShell,
    PinchedHemisphere,
    ScordelisLoRoof,
    cylinder_panel_mesh,
    read_gmsh_mesh,
)


def _volume(msh) -> float:
    return fem.assemble_scalar(fem.form(fem.Constant(msh, 1.0) * ufl.dx(domain=msh)))


def test_gmsh_panel_mesh_has_the_exact_volume():
    msh = cylinder_panel_mesh(25.0, 25.0, 40.0, 0.25, n_arc=4, n_length=2)
    assert msh.topology.cell_type == mesh.CellType.hexahedron and msh.topology.index_map(3).size_local == 8
    exact = 25.0 * 0.25 * math.radians(40.0) * 25.0  # R t theta L of the annular sector
    assert _volume(msh) == pytest.approx(exact, rel=1e-5)  # Q2 geometry follows the arcs


def test_read_gmsh_mesh_round_trip_and_bad_files(tmp_path):
    import gmsh

    path = tmp_path / "box.msh"
    gmsh.initialize(readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.occ.addBox(0, 0, 0, 2, 1, 1)
        gmsh.model.occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.5)
        gmsh.model.mesh.generate(3)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()
    msh = read_gmsh_mesh(path)
    assert msh.topology.cell_type == mesh.CellType.tetrahedron
    assert _volume(msh) == pytest.approx(2.0, rel=1e-12)
    with pytest.raises(ValueError, match="not a readable file"):
        read_gmsh_mesh(tmp_path / "missing.msh")
    garbage = tmp_path / "garbage.msh"
    garbage.write_text("$MeshFormat\nthis is not a mesh\n")
    with pytest.raises(ValueError, match="cannot be read by Gmsh"):
        read_gmsh_mesh(garbage)


def test_scordelis_lo_converges_towards_the_reference():
    values = []
    for n in (4, 8):
        roof = ScordelisLoRoof(n, route="general")
        u = roof.solve_fem(torch.zeros(3, dtype=torch.float64))
        values.append(roof.quantity_of_interest(u[None])[0].item())
    # measured: 0.2459 (n = 4), 0.2965 (n = 8); 0.3011 at n = 24 (slow test); reference 0.3024
    assert values[0] < values[1] < ScordelisLoRoof.reference
    assert abs(values[1] / ScordelisLoRoof.reference - 1) < 0.03


@pytest.mark.slow
def test_fine_meshes_are_within_five_percent_of_the_references():
    for cls, n, tol in ((ScordelisLoRoof, 24, 0.01), (PinchedHemisphere, 40, 0.05)):
        shell = cls(n, route="general")
        u = shell.solve_fem(torch.zeros(3, dtype=torch.float64))
        value = shell.quantity_of_interest(u[None])[0].item()
        assert abs(value / cls.reference - 1) < tol, (cls.__name__, value)


def test_modulus_map_and_its_prior():
    x = torch.linspace(0, 25, 11, dtype=torch.float64)
    modulus = ChebyshevModulus(x, (0.0, 25.0), young=4.32e8)
    E0 = modulus.modulus(torch.zeros(1, 3, dtype=torch.float64))
    torch.testing.assert_close(E0, torch.full((1, 11), 4.32e8, dtype=torch.float64))
    z = modulus.prior().sample((100,))
    assert z.shape == (100, 3) and z.abs().max() <= 2.0
    assert (modulus.modulus(z) > 4.32e8 / (math.log(2) + 1)).all()  # softplus + 1 > 1
    with pytest.raises(ValueError, match="`young`"):
        ChebyshevModulus(x, (0.0, 25.0), young=0.0)


@pytest.fixture(scope="module")
def unit_box_shell():
    msh = mesh.create_box(MPI.COMM_SELF, [[0, 0, 0], [3, 1, 0.2]], [3, 1, 1], mesh.CellType.tetrahedron)
    clamps = [(lambda x: np.isclose(x[0], 0.0), c) for c in range(3)]
    return ElasticShell(msh, young=1.0, poisson=0.3, clamps=clamps, body_force=(0.0, 0.0, -1.0), axis=0)


def test_nonpositive_young_modulus_is_rejected(unit_box_shell):
    with pytest.raises(ValueError, match="`young`"):
        ScordelisLoRoof(2, young=-4.32e8)
    n_cells = unit_box_shell.msh.topology.index_map(3).size_local
    E = np.ones(n_cells)
    E[3] = -0.1
    with pytest.raises(ValueError, match="`E` must be positive"):
        unit_box_shell.solve_values([E], np.zeros(unit_box_shell.bc_dofs.size))


def test_preconditioned_residual_gradcheck_and_zero_at_the_solution(unit_box_shell):
    shell = unit_box_shell
    discrete = shell.precondition()
    z = torch.tensor([[0.9, 1.8, 1.4], [-0.5, -0.15, 1.3]], dtype=torch.float64)
    uh = shell.solve_fem(z)
    # round-off of the solves grows with the condition number of the stiffness (about 1e8 here):
    # measured 2.4e-10 relative to the displacement
    assert discrete.residual(uh, z).abs().max() < 1e-8 * uh.abs().max()
    # at the reference parameters the preconditioned residual is u - u_ref
    z0 = torch.zeros(1, 3, dtype=torch.float64)
    u0 = shell.solve_fem(z0)
    u = torch.randn(1, shell.n_dofs, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(discrete.residual(u, z0), u - u0, rtol=0, atol=1e-6 * u.abs().max().item())
    gen = torch.Generator().manual_seed(1)
    u = torch.randn(2, shell.n_dofs, dtype=torch.float64, generator=gen)
    scale = discrete.residual(u, z).abs().max().item()  # about 3e3: |J^-1 f| dominates
    # finite differences see the solves' round-off (1e-8 relative) divided by eps: atol on that scale
    args = (u.requires_grad_(), z.clone().requires_grad_())
    assert torch.autograd.gradcheck(discrete.residual, args, atol=1e-6 * scale, rtol=1e-4)


def test_shell_tiny_preset_writes_results(run_cli):
    res = run_cli("run", "pddlvm-shell-3d", "--preset", "tiny", "--device", "cpu", out="shell")
    assert res.returncode == 0, res.stderr[-3000:]
    results = res.results()
    metrics, timings = results["metrics"], results["timings"]
    assert {"forward_nme", "inverse_nme", "forward_coverage_95", "fem_reference_error"} <= set(metrics)
    assert {"speedup", "train_seconds"} <= set(timings) and "speedup" not in metrics
    ratio = timings["fem_seconds_per_solve"] / timings["model_seconds_per_solution"]
    assert timings["speedup"] == pytest.approx(ratio, rel=1e-12)
    for png in ("shell.png", "coverage.png", "elbo.png"):
        assert (res.out / png).stat().st_size > 1000


def test_galerkin_basis_meets_the_clamps_and_its_zero_approximates_the_fem():
    roof = ScordelisLoRoof(4)
    basis, galerkin = ReducedBasis.galerkin(roof.discrete, 4)
    psi = basis.matrix
    # the trial functions vanish at the clamped dofs
    assert psi[roof.discrete.operator.bc_dofs].abs().max() < 1e-10 * psi.abs().max()
    zeros = torch.zeros(1, roof.n_dofs, dtype=torch.float64)
    z0 = galerkin.prior().mean[None].double()
    # at the prior mean the reduced Jacobian is the identity and the reference coordinates are its zero
    A0 = galerkin.jacobian_product(zeros, z0, psi)
    torch.testing.assert_close(A0, torch.eye(basis.size, dtype=torch.float64), rtol=0, atol=1e-7)
    assert galerkin.residual(basis.to_nodal(basis.reference[None]), z0).abs().max() < 1e-7
    # elsewhere it stays well conditioned (the modulus varies by < 7x over the prior)
    z = torch.tensor([[1.9, -1.7, 1.2]], dtype=torch.float64)
    A = galerkin.jacobian_product(zeros, z, psi)
    assert torch.linalg.cond(A) < 7.0
    # the jacobian product is that of autograd
    c = torch.randn(1, basis.size, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    jac = torch.autograd.functional.jacobian(lambda c_: galerkin.residual(basis.to_nodal(c_), z)[0], c)[:, 0]
    torch.testing.assert_close(A, jac, rtol=1e-9, atol=1e-9)
    # the exact Galerkin solution is close to the FEM one (measured NME 1.0e-2 at this coarse size)
    c_star = torch.linalg.solve(A, -galerkin.residual(zeros, z)[0])
    u_fem = roof.solve_fem(z)
    nme = ((u_fem - basis.to_nodal(c_star[None])) ** 2).sum() / (u_fem**2).sum()
    assert nme < 2e-2, nme


def test_factored_basis_product_equals_the_dense_one_and_keeps_the_clamps():
    roof = ScordelisLoRoof(4)
    basis, _ = ReducedBasis.galerkin(roof.discrete, 4)
    assert basis.n_groups == 3  # one group of rows per displacement component, each of low rank
    c = torch.randn(5, basis.size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    u = basis.to_nodal(c)
    dense = c @ basis.matrix.T
    assert ((u - dense).norm() / dense.norm()) < 1e-12
    assert u[:, roof.discrete.operator.bc_dofs].abs().max() == 0.0  # exactly clamped
    # gradients flow through the factored product as through the dense one
    c.requires_grad_(True)
    w = torch.randn(roof.n_dofs, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (grad,) = torch.autograd.grad((basis.to_nodal(c) * w).sum(), c)
    torch.testing.assert_close(grad, (w @ basis.matrix).expand_as(grad), rtol=1e-10, atol=1e-12)
    # the model's mean solution is its predictive mean, in float32 too
    model = PDDLVM(roof.discrete, basis, hidden=(16, 16)).double()
    z = roof.discrete.prior().sample((3,)).double()
    torch.testing.assert_close(model.forward_mean(z), model.forward(z).mean, rtol=1e-12, atol=1e-14)
    model32 = copy.deepcopy(model).float()
    mean32 = model32.forward_mean(z.float()).double()
    torch.testing.assert_close(mean32, model.forward_mean(z), rtol=1e-4, atol=1e-6)


def test_row_groups_must_partition_the_dofs():
    matrix = torch.randn(6, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="partition the 6 dofs"):
        ReducedBasis(matrix, row_groups=[torch.tensor([0, 1, 2]), torch.tensor([2, 3, 4, 5])])
    full_rank = ReducedBasis(matrix, row_groups=[torch.arange(3), torch.arange(3, 6)])
    assert full_rank.n_groups == 0  # rank-2 groups of 3 rows: the dense product is cheaper


def test_galerkin_needs_zero_dirichlet_values_and_a_symmetric_jacobian():
    from sciprob.physics.fem import LinearPoisson1D, ParametricProblem, boundary_dofs

    with pytest.raises(ValueError, match="zero Dirichlet values"):
        ReducedBasis.galerkin(LinearPoisson1D(10).discrete, 3)  # u(1) = 0.5
    # convection-diffusion u'' - b u' = 1: a non-symmetric Jacobian
    msh = mesh.create_unit_interval(MPI.COMM_SELF, 16)
    V = fem.functionspace(msh, ("Lagrange", 1))
    u, v, b = fem.Function(V), ufl.TestFunction(V), fem.Constant(msh, 1.0)
    F = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + b * u.dx(0) * v * ufl.dx - v * ufl.dx
    problem = ParametricProblem(
        F, u, coefficients=[b], z_map=lambda z: [5.0 * z],
        prior=torch.distributions.Independent(torch.distributions.Uniform(torch.ones(1), 2.0), 1),
        bc_dofs=boundary_dofs(V, lambda x: np.isclose(x[0], 0.0) | np.isclose(x[0], 1.0)),
    )  # fmt: skip
    with pytest.raises(ValueError, match="symmetric Jacobian"):
        ReducedBasis.galerkin(problem.discrete, 4)
