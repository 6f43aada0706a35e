"""Any parametric DOLFINx problem: general and affine torch routes, solver, training, bad input."""

from __future__ import annotations

import dolfinx_solver  # noqa: F401, I001 - DOLFINx's bundled PETSc must load before dolfinx
import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
import ufl
from dolfinx import fem, mesh
from mpi4py import MPI
from pyro.optim import ClippedAdam

from sciprob.physics import PDDLVM, ReducedBasis
from sciprob.physics.fem import ParametricProblem, Poisson2D, boundary_dofs
from sciprob.ppl import train_svi


def _elasticity_p2():
    """Vector P2 linear elasticity on a box; E (DG0) and body force (constant) from z; z-dependent BC."""
    msh = mesh.create_box(MPI.COMM_SELF, [[0, 0, 0], [2, 1, 1]], [2, 1, 1], mesh.CellType.tetrahedron)
    V = fem.functionspace(msh, ("Lagrange", 2, (3,)))
    Q = fem.functionspace(msh, ("DG", 0))
    E, f = fem.Function(Q, name="E"), fem.Constant(msh, np.zeros(3))
    u, v = fem.Function(V, name="u"), ufl.TestFunction(V)
    nu = 0.3
    mu, lmbda = E / (2 * (1 + nu)), E * nu / ((1 + nu) * (1 - 2 * nu))

    def eps(w):
        return ufl.sym(ufl.grad(w))

    sigma = 2 * mu * eps(u) + lmbda * ufl.tr(eps(u)) * ufl.Identity(3)
    F = ufl.inner(sigma, eps(v)) * ufl.dx - ufl.inner(f, v) * ufl.dx
    x_cells = torch.from_numpy(Q.tabulate_dof_coordinates()[:, 0].copy())

    def z_map(z):
        return [torch.nn.functional.softplus(z[:, :1] * x_cells) + 1.0, z[:, 1:4]]

    prior = dist.Uniform(-torch.ones(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)).to_event(1)
    bc = boundary_dofs(V, lambda x: np.isclose(x[0], 0.0))
    problem = ParametricProblem(
        F, u, coefficients=[E, f], z_map=z_map, prior=prior, bc_dofs=bc,
        bc_values=lambda z: 0.1 * z[:, :1].expand(-1, bc.size), positive=[0],
    )  # fmt: skip
    return problem


@pytest.fixture(scope="module")
def elasticity():
    problem = _elasticity_p2()
    return problem, problem.make_discrete("general")


def test_general_route_equals_dolfinx_assembly(elasticity):
    problem, general = elasticity
    assert problem.route == "affine" and problem.linear and problem.n_dofs == 3 * 45
    gen = torch.Generator().manual_seed(0)
    z = problem.prior().sample((3,))
    u = torch.randn(3, problem.n_dofs, generator=gen, dtype=torch.float64)
    r = general.residual(u, z)
    for b in range(3):
        reference = problem.assemble_residual(u[b], z[b])
        assert np.abs(r[b].numpy() - reference).max() <= 1e-10 * max(1.0, np.abs(reference).max())
    bc = torch.from_numpy(problem.bc_dofs)
    torch.testing.assert_close(r[:, bc], u[:, bc] - 0.1 * z[:, :1], rtol=0, atol=1e-14)


def test_general_route_gradcheck(elasticity):
    problem, general = elasticity
    gen = torch.Generator().manual_seed(1)
    z = problem.prior().sample((2,)).requires_grad_()
    u = torch.randn(2, problem.n_dofs, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(general.residual, (u, z))


def test_affine_route_equals_general(elasticity):
    problem, general = elasticity
    fast = problem.discrete
    gen = torch.Generator().manual_seed(2)
    z = problem.prior().sample((4,)).requires_grad_()
    u = torch.randn(4, problem.n_dofs, generator=gen, dtype=torch.float64).requires_grad_()
    w = torch.randn(4, problem.n_dofs, generator=gen, dtype=torch.float64)
    r_fast, r_gen = fast.residual(u, z), general.residual(u, z)
    scale = r_gen.detach().abs().max()
    torch.testing.assert_close(r_fast, r_gen, rtol=0, atol=1e-12 * scale.item())
    g_fast = torch.autograd.grad((r_fast * w).sum(), (u, z))
    g_gen = torch.autograd.grad((r_gen * w).sum(), (u, z))
    for a, b in zip(g_fast, g_gen, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12 * b.abs().max().item())
    # the sparse Jacobians of the two routes agree too
    J_fast = fast.operator.jacobian(u.detach()[:1], *fast.coefficients.fields(z.detach()[:1])).to_dense()
    J_gen = general.operator.jacobian(u.detach()[:1], *general.coefficients.fields(z.detach()[:1])).to_dense()
    torch.testing.assert_close(J_fast, J_gen, rtol=0, atol=1e-12 * J_gen.abs().max().item())


def test_fem_solution_has_zero_residual(elasticity):
    problem, _ = elasticity
    z = problem.prior().sample((2,))
    uh = problem.solve_fem(z)
    load = problem.residual(torch.zeros_like(uh), z).abs().max()
    assert problem.residual(uh, z).abs().max() <= 1e-10 * load
    with pytest.raises(ValueError, match="`E` must be positive"):  # E = softplus(.) + 1 - 3 < 0
        problem.solve_values(
            [-np.ones(problem.V.mesh.topology.index_map(3).size_local), np.zeros(3)],
            np.zeros(problem.bc_dofs.size),
        )


def test_poisson_problems_are_instances_with_matching_routes():
    problem = Poisson2D(4)
    assert isinstance(problem, ParametricProblem)
    z = problem.prior().sample((3,))
    u = torch.randn(3, problem.n_dofs, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    reference = problem.residual(u, z)  # the specialised P1 operator
    for route in ("affine", "general"):
        r = problem.make_discrete(route).residual(u, z)
        torch.testing.assert_close(r, reference, rtol=0, atol=1e-12 * reference.abs().max().item())


def test_user_defined_reaction_diffusion_trains_end_to_end():
    # -div(kappa grad u) + c u = 1 on the unit cube, u = 0 on x = 0; kappa = exp(z0 x) (DG0), c = softplus(z1)
    msh = mesh.create_unit_cube(MPI.COMM_SELF, 4, 4, 4)
    V, Q = fem.functionspace(msh, ("Lagrange", 1)), fem.functionspace(msh, ("DG", 0))
    u, v = fem.Function(V), ufl.TestFunction(V)
    kappa, c = fem.Function(Q, name="kappa"), fem.Constant(msh, 1.0)
    F = kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + c * u * v * ufl.dx - v * ufl.dx
    x = torch.from_numpy(Q.tabulate_dof_coordinates()[:, 0].copy())
    problem = ParametricProblem(
        F, u, coefficients=[kappa, c],
        z_map=lambda z: [torch.exp(z[:, :1] * x.to(z)), torch.nn.functional.softplus(z[:, 1:2])],
        prior=dist.Uniform(torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0])).to_event(1),
        bc_dofs=boundary_dofs(V, lambda x: np.isclose(x[0], 0.0)),
    )  # fmt: skip
    z_test = problem.prior().sample((20,))
    u_fem = problem.solve_fem(z_test).float()

    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    discrete = problem.discrete.float()
    basis = ReducedBasis.chebyshev(problem.discrete.double(), 4).float()
    model = PDDLVM(discrete.float(), basis, epsilon=1e-4, hidden=(32, 32)).float()

    def nme(mean):
        return (((u_fem - mean) ** 2).sum(-1) / (u_fem**2).sum(-1)).mean().item()

    untrained = nme(model.forward(z_test.float()).mean)
    train_svi(model.model, model.guide, ClippedAdam({"lr": 1e-2, "lrd": 0.995}), steps=300,
              model_kwargs={"batch_size": 16})  # fmt: skip
    trained = nme(model.forward(z_test.float()).mean)
    assert trained < 0.05 * untrained and trained < 5e-3, (untrained, trained)


def _poisson_pieces():
    msh = mesh.create_unit_square(MPI.COMM_SELF, 2, 2)
    V = fem.functionspace(msh, ("Lagrange", 1))
    u, v = fem.Function(V), ufl.TestFunction(V)
    c = fem.Constant(msh, 1.0)
    prior = dist.Normal(torch.zeros(1, dtype=torch.float64), 1.0).to_event(1)
    return V, u, v, c, prior


def test_bad_input_fails_before_any_solve():
    V, u, v, c, prior = _poisson_pieces()
    w = ufl.TrialFunction(V)
    with pytest.raises(ValueError, match="does not depend on `u`"):
        ParametricProblem(c * ufl.inner(ufl.grad(w), ufl.grad(v)) * ufl.dx, u, coefficients=[c],
                          z_map=lambda z: [z], prior=prior)  # fmt: skip
    F = c * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx - v * ufl.dx
    problem = ParametricProblem(F, u, coefficients=[c], z_map=lambda z: [z, z], prior=prior, positive=[0])
    with pytest.raises(ValueError, match="returned 2 tensor"):
        problem.solve_fem(torch.zeros(1, dtype=torch.float64))
    problem = ParametricProblem(F, u, coefficients=[c], z_map=lambda z: [z - 1.0], prior=prior, positive=[0],
                                bc_dofs=boundary_dofs(V, lambda x: np.isclose(x[0], 0)))  # fmt: skip
    with pytest.raises(ValueError, match="must be positive"):
        problem.solve_fem(torch.zeros(1, dtype=torch.float64))
    nonlinear = (1 + u**2) * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx - c * v * ufl.dx
    with pytest.raises(ValueError, match="route='general'"):
        ParametricProblem(nonlinear, u, coefficients=[c], z_map=lambda z: [z], prior=prior, route="affine")


def test_newton_solves_a_nonlinear_form():
    V, u, v, c, prior = _poisson_pieces()
    F = (1 + u**2) * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx - c * v * ufl.dx
    problem = ParametricProblem(F, u, coefficients=[c], z_map=lambda z: [10 * z.exp()], prior=prior,
                                bc_dofs=boundary_dofs(V, lambda x: np.isclose(x[0], 0)))  # fmt: skip
    assert problem.route == "general" and not problem.linear
    z = torch.tensor([[0.5], [-0.2]], dtype=torch.float64)
    uh = problem.solve_fem(z)
    assert problem.residual(uh, z).abs().max() <= 1e-9 * problem.residual(0 * uh, z).abs().max()
