"""DOLFINx parametric problems: torch residual vs DOLFINx, gradients, solves, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciprob.physics.fem import LinearPoisson1D, NonlinearPoisson1D, Poisson2D

PROBLEMS = {
    "linear1d": lambda: LinearPoisson1D(20),
    "nonlinear1d": lambda: NonlinearPoisson1D(12),
    "poisson2d": lambda: Poisson2D(4),
}


@pytest.fixture(scope="module", params=sorted(PROBLEMS))
def problem(request):
    return PROBLEMS[request.param]()


def test_torch_residual_matches_dolfinx(problem):
    gen = torch.Generator().manual_seed(1)
    z = problem.prior().sample((4,))
    u = torch.randn(4, problem.n_dofs, generator=gen, dtype=torch.float64)
    r = problem.residual(u, z)
    for b in range(4):
        reference = problem.assemble_residual(u[b], z[b])
        assert np.abs(r[b].numpy() - reference).max() <= 1e-10 * max(1.0, np.abs(reference).max())


def test_residual_gradcheck(problem):
    gen = torch.Generator().manual_seed(2)
    z = problem.prior().sample((2,)).requires_grad_()
    u = (0.5 * torch.randn(2, problem.n_dofs, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(problem.residual, (u, z))


def test_residual_of_fem_solution_vanishes(problem):
    z = problem.prior().sample((3,))
    uh = problem.solve_fem(z)
    load = problem.residual(torch.zeros_like(uh), z).abs().max()
    assert problem.residual(uh, z).abs().max() <= 1e-9 * load
    assert problem.solve_fem(z[0]).shape == (problem.n_dofs,)


def test_linear_1d_is_nodally_exact():
    # -kappa u'' = 1, u(-1) = 0, u(1) = 1/2  =>  u = (1 - x^2) / (2 kappa) + (x + 1) / 4; P1 is exact at nodes
    problem = LinearPoisson1D(20)
    z = torch.tensor([0.3], dtype=torch.float64)
    kappa = torch.nn.functional.softplus(z).item()
    x = problem.dof_coordinates()[:, 0]
    exact = (1 - x**2) / (2 * kappa) + (x + 1) / 4
    np.testing.assert_allclose(problem.solve_fem(z).numpy(), exact, atol=1e-12)


def test_function_round_trip_and_coordinates():
    problem = Poisson2D(3)
    assert problem.dof_coordinates().shape == (16, 2)
    u = torch.randn(problem.n_dofs, dtype=torch.float64)
    assert torch.equal(problem.from_function(problem.to_function(u)), u)


@pytest.mark.parametrize(
    "z, match",
    [
        (torch.zeros(3, 5, dtype=torch.float64), "shape"),
        (torch.tensor([[0.1, float("nan"), 0, 0, 0, 0, 0, 0]], dtype=torch.float64), "finite"),
    ],
)
def test_bad_z_is_rejected(z, match):
    problem = Poisson2D(2)
    with pytest.raises(ValueError, match=match):
        problem.solve_fem(z)
    with pytest.raises(ValueError, match=match):
        problem.residual(torch.zeros(z.shape[0], problem.n_dofs, dtype=torch.float64), z)


def test_nonpositive_diffusivity_is_rejected():
    problem = LinearPoisson1D(4)
    kappa = np.array([1.0, 1.0, -0.5, 1.0])
    with pytest.raises(ValueError, match="kappa"):
        problem.solve_fields(kappa, 1.0, np.array([0.0, 0.5]))


@pytest.mark.parametrize("factory", [LinearPoisson1D, NonlinearPoisson1D, Poisson2D])
def test_mesh_size_below_two_is_rejected(factory):
    with pytest.raises(ValueError, match="mesh size"):
        factory(1)
