"""Observation operators, the data likelihood, exact torch solves and NUTS on the observation-map problem."""

from __future__ import annotations

import math

import pytest
import torch

from sciprob.physics.fem import ObservationMapPoisson1D
from sciprob.physics.inverse import (
    AmortisedPosterior,
    IntervalSolver,
    LinearSolver,
    interval_coverage,
    laplace_preconditioner,
    nuts_posterior,
)
from sciprob.physics.observations import ObservationOperator, gaussian_log_likelihood


@pytest.fixture(scope="module")
def problem():
    return ObservationMapPoisson1D(100)


def test_point_values_and_averages_of_a_linear_function():
    x = torch.linspace(-1, 1, 11, dtype=torch.float64)[
        torch.randperm(11, generator=torch.Generator().manual_seed(0))
    ]
    u = (2 * x + 1)[None]
    H = ObservationOperator.point_values(x[:, None], [-0.95, 0.0, 0.33, 1.0])
    torch.testing.assert_close(H(u), (2 * torch.tensor([[-0.95, 0.0, 0.33, 1.0]], dtype=torch.float64) + 1))
    A = ObservationOperator.averages(x[:, None], [(-1.0, 0.0), (0.2, 0.6)])
    torch.testing.assert_close(A(u), torch.tensor([[0.0, 1.8]], dtype=torch.float64), rtol=0, atol=1e-12)


def test_likelihood_equals_hand_computed_gaussian():
    y = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64)
    pred = torch.tensor([[0.1, -1.0, 2.5]], dtype=torch.float64)
    noise = 0.2
    by_hand = sum(
        -0.5 * ((a - b) / noise) ** 2 - math.log(noise) - 0.5 * math.log(2 * math.pi)
        for a, b in zip(y[0].tolist(), pred[0].tolist(), strict=True)
    )
    assert gaussian_log_likelihood(y, pred, noise).item() == pytest.approx(by_hand, rel=1e-12)


def test_exact_solves_match_dolfinx(problem):
    z = problem.prior().sample((4,))
    u_fem = problem.solve_fem(z)
    discrete = problem.discrete.double()
    scale = u_fem.abs().max()
    assert (LinearSolver(discrete)(z) - u_fem).abs().max() <= 1e-10 * scale
    assert (IntervalSolver(discrete)(z) - u_fem).abs().max() <= 1e-10 * scale


def test_bad_observations_are_rejected_before_training(problem):
    x = problem.discrete.dof_coordinates
    with pytest.raises(ValueError, match="`locations` must lie inside the domain"):
        ObservationOperator.point_values(x, [0.0, 1.5])
    H = ObservationOperator.point_values(x, [-0.5, 0.5])
    low, high = problem.discrete.coefficients.bounds()
    solver = IntervalSolver(problem.discrete.double())
    with pytest.raises(ValueError, match="`noise`"):
        AmortisedPosterior(solver, H, low, high, -0.1)
    model = AmortisedPosterior(solver, H, low, high, 0.1, hidden=(8,)).double()
    with pytest.raises(ValueError, match=r"`y` must have shape \(batch, 2\)"):
        model.posterior(torch.zeros(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="`u` must have 101 entries"):
        H(torch.zeros(1, 7, dtype=torch.float64))


def test_interval_coverage_counts_truth_inside_the_central_interval():
    draws = torch.linspace(0, 1, 1001, dtype=torch.float64)[:, None, None].expand(-1, 2, 1)
    truth = torch.tensor([[0.5], [0.99]], dtype=torch.float64)
    assert interval_coverage(draws, truth).tolist() == [[True], [False]]


@pytest.mark.slow  # about 80 s on two shared cores
def test_nuts_recovers_z_from_dense_noise_free_data(problem):
    discrete = problem.discrete.double()
    solver = IntervalSolver(discrete)
    low, high = discrete.coefficients.bounds()
    z_true = torch.tensor([0.4, -0.3, 0.2, 0.1, 3.0, 0.25, -0.2], dtype=torch.float64)
    H = ObservationOperator.point_values(discrete.dof_coordinates, torch.linspace(-0.98, 0.98, 50))
    noise = 1e-4
    y = H(solver(z_true[None]))[0]  # noise-free
    pre = laplace_preconditioner(solver, H, low, high, noise, y)
    z, result = nuts_posterior(
        solver, H, low, high, noise, y, seed=3, shift=pre.shift, scale_tril=pre.scale_tril,
        num_samples=60, warmup_steps=60, num_chains=1,
    )  # fmt: skip
    flat = z.reshape(-1, 7)
    mean, std = flat.mean(0), flat.std(0)
    # kappa_1..3 and both boundary values are pinned by dense data: within 1 % of the prior range
    pinned = [1, 2, 3, 5, 6]
    assert ((mean - z_true).abs() / (high - low))[pinned].max() <= 0.01, (mean, z_true)
    # kappa_0 and f trade off along a ridge (kappa ~ 1 + softplus(.) and f scale u together):
    # the truth lies inside the posterior there, and the ridge is narrow compared with the prior
    assert ((mean - z_true).abs() <= 4 * std).all(), (mean, std, z_true)
    assert (std / (high - low))[[0, 4]].max() <= 0.1
    assert result.samples["v"].shape == (1, 60, 7)
