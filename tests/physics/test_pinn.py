"""PINN residual, the DOLFINx heat reference solver, and the PINN-PDDLVM model/guide."""

from __future__ import annotations

import math

import numpy as np
import pyro
import pytest
import torch

from sciprob.physics.fem.heat import HeatReferenceSolver, sample_on_grid
from sciprob.physics.pinn import PINNPDDLVM, CollocationGrid, HeatEquation, pinn_residual

GAMMA, KAPPA, T0 = 2.0, 3.0, 3.0


def _exact(points: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """A closed-form solution of u_t = (1/γ)(μ(u) u_x)_x.

    With w = κu + 1/κ (so μ(u) = w) the equation is the porous-medium equation
    w_t = (w²)_xx / (2γ), solved by w = γ (x + 1)² / (6 (t0 - t)).
    """
    x, t = points[..., 0], points[..., 1]
    gamma, kappa = z[:, :1], z[:, 1:2]
    w = gamma * (x + 1) ** 2 / (6 * (T0 - t))
    return (w - 1 / kappa) / kappa


class _ExactHeat(HeatEquation):
    """The same PDE with the initial and boundary data of the closed-form solution."""

    def initial(self, x):
        return _exact(
            torch.stack([x, torch.zeros_like(x)], -1), torch.tensor([[GAMMA, KAPPA]], dtype=x.dtype)
        )

    def boundary(self, x, t):
        return _exact(torch.stack([x, t], -1), torch.tensor([[GAMMA, KAPPA]], dtype=x.dtype))


def test_pinn_residual_of_a_closed_form_solution_vanishes():
    pde = _ExactHeat()
    grid = CollocationGrid.uniform(pde, 12, 9)
    z = torch.tensor([[GAMMA, KAPPA]], dtype=torch.float64)
    points = grid.points[None].clone().requires_grad_(True)
    u = _exact(points, z)
    r = pinn_residual(pde, grid, u, points, z)
    assert r.shape == (1, grid.points.shape[0])
    scale = u.abs().max().item()
    assert r.abs().max().item() <= 1e-10 * scale
    # a perturbed field is not a solution: the residual sees it inside and on the initial set
    wrong = u + 1e-3 * torch.sin(points[..., 0])
    r_wrong = pinn_residual(pde, grid, wrong, points, z)
    assert r_wrong[:, : grid.n_interior].abs().max() > 1e-4
    assert r_wrong[:, grid.n_interior : grid.n_interior + grid.n_initial].abs().max() > 5e-4


def test_collocation_sets_and_grid_assembly():
    pde = HeatEquation()
    grid = CollocationGrid.uniform(pde, 10, 9, 1e-2, 1e-3, 1e-3)
    assert (grid.n_interior, grid.n_initial, grid.n_boundary) == (8 * 8, 10, 2 * 8)
    assert torch.equal(grid.epsilon[: grid.n_interior], torch.full((64,), 1e-2, dtype=torch.float64))
    assert torch.all(grid.epsilon[grid.n_interior :] == 1e-3)
    full = grid.full_grid(grid.points[None, :, 0])  # x coordinate of every point, on the grid
    x = torch.linspace(0, 2 * math.pi, 10, dtype=torch.float64)
    torch.testing.assert_close(full[0], x.expand(9, -1), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="eps_initial"):
        CollocationGrid.uniform(pde, 10, 9, 1e-2, -1e-3, 1e-3)


def test_model_and_guide_sites_and_residual_term():
    pde = HeatEquation()
    grid = CollocationGrid.uniform(pde, 10, 9)
    pyro.clear_param_store()
    model = PINNPDDLVM(pde, grid, hidden=(8, 8), dense=8)
    guide_tr = pyro.poutine.trace(model.guide).get_trace(batch_size=3)
    model_tr = pyro.poutine.trace(pyro.poutine.replay(model.model, trace=guide_tr)).get_trace(batch_size=3)
    model_tr.compute_log_prob()
    n = grid.points.shape[0]
    assert model_tr.nodes["r"]["value"].shape == (3, n) and model_tr.nodes["r"]["is_observed"]
    assert torch.all(model_tr.nodes["u"]["log_prob"] == 0)  # flat p(u)
    z = guide_tr.nodes["z"]["value"]
    assert torch.all((z >= 1) & (z <= 5))
    # the residual term is sum over points of log N(0; r_p, eps_p^2)
    u = guide_tr.nodes["u"]["value"]
    r = pinn_residual(pde, grid, u, model._leaf(3), z)
    eps = grid.epsilon.float()
    expected = (-0.5 * (r / eps) ** 2 - eps.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(model_tr.nodes["r"]["log_prob"], expected, rtol=1e-5, atol=1e-2)
    with pytest.raises(ValueError, match="`z`"):
        model.forward(torch.tensor([[1.0, -2.0]]))


def test_heat_solver_converges_at_rate_two_in_space():
    # linear in t: backward Euler is exact in time, so only the spatial error is left
    exact = lambda x, t, m: 1 + 0.5 * (1 + t) * m.sin(x)  # noqa: E731
    errors = [
        HeatReferenceSolver(n, 4, exact=exact, t_end=1.0).solve(GAMMA, KAPPA).l2_error for n in (16, 32, 64)
    ]
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(rates - 2) <= 0.1), errors


def test_heat_solver_converges_at_rate_one_in_time():
    exact = lambda x, t, m: 1 + 0.5 * m.exp(-t) * m.sin(x)  # noqa: E731
    errors = [
        HeatReferenceSolver(400, k, exact=exact, t_end=1.0).solve(GAMMA, KAPPA).l2_error for k in (10, 20, 40)
    ]
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(rates - 1) <= 0.1), errors


def test_paper_case_keeps_initial_and_boundary_data():
    solver = HeatReferenceSolver(60, 40)
    sol = solver.solve(2.0, 3.0)
    np.testing.assert_allclose(sol.u[0], np.sin(sol.x) + 1, atol=1e-12)
    np.testing.assert_allclose(sol.u[1:, [0, -1]], 1.0, atol=1e-10)
    assert sol.newton_iterations >= 40  # at least one Newton step per time step
    grid = sample_on_grid(sol, sol.x[::3], sol.t[::2])
    np.testing.assert_allclose(grid, sol.u[::2, ::3], atol=1e-12)
    with pytest.raises(ValueError, match="`kappa`"):
        solver.solve(2.0, -1.0)
    with pytest.raises(ValueError, match="`n_cells`"):
        HeatReferenceSolver(1, 10)
