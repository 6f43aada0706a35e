"""PDDLVM: reduced basis, Pyro model/guide, training on the 1D linear problem, bad input."""

from __future__ import annotations

import math

import pyro
import pytest
import torch
from pyro.optim import ClippedAdam

from sciprob.physics import PDDLVM, ReducedBasis
from sciprob.physics.fem import LinearPoisson1D, Poisson2D
from sciprob.ppl import train_svi


@pytest.fixture(scope="module")
def linear1d():
    return LinearPoisson1D(20)


def _nme(truth, estimate):
    return (((truth - estimate) ** 2).sum(-1) / (truth**2).sum(-1)).mean().item()


def test_reduced_basis_is_preconditioned():
    problem = Poisson2D(4).discrete
    basis = ReducedBasis.chebyshev(problem, 3)
    assert basis.matrix.shape == (problem.n_dofs, 9)
    z_ref = problem.prior().mean[None].expand(9, -1)
    r0 = problem.residual(torch.zeros(1, problem.n_dofs, dtype=torch.float64), z_ref[:1])
    j_psi = problem.residual(basis.matrix.T.contiguous(), z_ref) - r0  # linear problem: J psi
    gram = j_psi @ j_psi.T
    scale = gram.diagonal().mean()
    torch.testing.assert_close(gram / scale, torch.eye(9, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(
        basis.coordinates(basis.to_nodal(torch.eye(9, dtype=torch.float64))),
        torch.eye(9, dtype=torch.float64),
    )


def test_model_and_guide_sites(linear1d):
    problem = linear1d.discrete
    model = PDDLVM(problem.double(), ReducedBasis.chebyshev(problem, 5), hidden=(8,)).double()
    guide_tr = pyro.poutine.trace(model.guide).get_trace(batch_size=6)
    model_tr = pyro.poutine.trace(pyro.poutine.replay(model.model, trace=guide_tr)).get_trace(batch_size=6)
    model_tr.compute_log_prob()
    assert model_tr.nodes["r"]["is_observed"] and model_tr.nodes["r"]["value"].shape == (6, problem.n_dofs)
    assert torch.all(model_tr.nodes["u"]["log_prob"] == 0)  # flat p(u)
    assert not model_tr.nodes["z"]["is_observed"]
    # the residual term is log N(0; r(u, z), eps^2 I)
    u = model.basis.to_nodal(guide_tr.nodes["u"]["value"])
    r = problem.residual(u, guide_tr.nodes["z"]["value"])
    n = problem.n_dofs
    expected = (
        -0.5 * (r**2).sum(-1) / model.epsilon**2
        - n * math.log(model.epsilon)
        - 0.5 * n * math.log(2 * math.pi)
    )
    torch.testing.assert_close(model_tr.nodes["r"]["log_prob"], expected)


def test_training_reduces_forward_error(linear1d):
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    z_test = linear1d.prior().sample((30,))
    u_fem = linear1d.solve_fem(z_test).float()
    problem = linear1d.discrete
    basis = ReducedBasis.chebyshev(problem, 5)
    model = PDDLVM(problem.float(), basis.float(), hidden=(32, 32), inverse_hidden=(32, 32)).float()
    untrained = _nme(u_fem, model.forward(z_test.float()).mean)
    train_svi(
        model.model,
        model.guide,
        ClippedAdam({"lr": 1e-2, "lrd": 0.995}),
        steps=400,
        model_kwargs={"batch_size": 32},
        jit=True,
    )
    trained = _nme(u_fem, model.forward(z_test.float()).mean)
    assert untrained > 0.1
    assert trained < 0.02 * untrained, (untrained, trained)
    inverse = model.inverse(u_fem)
    assert inverse.mean.shape == (30, 1)
    kappa = torch.nn.functional.softplus(z_test.float())
    assert _nme(kappa.T, torch.nn.functional.softplus(inverse.mean).T) < 0.1


def test_bad_input(linear1d):
    problem = linear1d.discrete.double()
    model = PDDLVM(problem, ReducedBasis.chebyshev(problem, 5), hidden=(8,)).double()
    with pytest.raises(ValueError, match="`z` must have shape"):
        model.forward(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="finite"):
        model.forward(torch.tensor([[float("inf")]], dtype=torch.float64))
    with pytest.raises(ValueError, match="`u` must have shape"):
        model.inverse(torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="epsilon"):
        PDDLVM(problem, ReducedBasis.chebyshev(problem, 5), epsilon=0.0)


def test_resume_restores_networks(linear1d, tmp_path):
    problem = linear1d.discrete.float()
    basis = ReducedBasis.chebyshev(linear1d.discrete, 5).float()
    z = problem.prior().sample((5,))

    def fit(steps, resume):
        pyro.clear_param_store()
        model = PDDLVM(problem, basis, hidden=(8,)).float()
        train_svi(
            model.model,
            model.guide,
            ClippedAdam({"lr": 1e-2}),
            steps=steps,
            model_kwargs={"batch_size": 4},
            checkpoint_path=tmp_path / "c.pt",
            resume=resume,
        )
        return model.forward(z).mean

    trained = fit(20, resume=False)
    torch.testing.assert_close(fit(20, resume=True), trained)
