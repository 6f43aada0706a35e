"""The forward-KL objective and the importance weighting of the amortised posterior."""

from __future__ import annotations

import math

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO
from pyro.optim import ClippedAdam

from sciprob.physics.inverse import AmortisedPosterior, interval_coverage
from sciprob.physics.inverse_experiments import InverseDataConfig
from sciprob.physics.observations import ObservationOperator
from sciprob.ppl import train_svi

NOISE = 0.05


def constant_field(z: torch.Tensor) -> torch.Tensor:
    """u(x) = z_0 at three nodes: one parameter, observed directly (a Gaussian likelihood in z)."""
    return z[:, :1].expand(-1, 3)


def one_parameter_model(noise: float = NOISE) -> AmortisedPosterior:
    x = torch.tensor([[0.0], [0.5], [1.0]], dtype=torch.float64)
    operator = ObservationOperator.point_values(x, [0.5])
    low, high = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    pyro.clear_param_store()
    return AmortisedPosterior(constant_field, operator, low, high, noise, hidden=(32, 32)).double()


def test_simulation_loss_is_minus_the_log_density_of_q():
    model = one_parameter_model()
    z, y = model.simulate(16, generator=torch.Generator().manual_seed(0))
    loss = Trace_ELBO().loss(model.simulation_model, model.simulation_guide, z=z, y=y, batch_size=16)
    by_hand = -model.posterior(y).log_prob(z).sum().item()
    assert loss == pytest.approx(by_hand, rel=1e-10)


def test_simulation_model_rejects_mismatched_pairs():
    model = one_parameter_model()
    z, y = model.simulate(4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="`z` must have shape"):
        model.simulation_model(z[:3], y, batch_size=2)


def test_log_joint_is_likelihood_plus_prior():
    model = one_parameter_model()
    z = torch.tensor([[0.3], [0.8]], dtype=torch.float64)
    y = torch.tensor([[0.4], [0.4]], dtype=torch.float64)
    by_hand = [
        -0.5 * ((0.4 - a) / NOISE) ** 2 - math.log(NOISE) - 0.5 * math.log(2 * math.pi) for a in (0.3, 0.8)
    ]
    torch.testing.assert_close(model.log_joint(z, y), torch.tensor(by_hand, dtype=torch.float64))


def test_importance_weighting_recovers_the_closed_form_posterior():
    # y = z + N(0, 0.05^2), z ~ U(0, 1), y = 0.4: the posterior is N(0.4, 0.05^2) truncated to [0, 1]
    # (the truncation is 8 standard deviations away); the proposal is the untrained, broad q
    model = one_parameter_model()
    y = torch.tensor([[0.4]], dtype=torch.float64)
    draws, ess = model.importance_resample(y, 20000, generator=torch.Generator().manual_seed(1))
    assert draws.shape == (20000, 1, 1) and ess.shape == (1,)
    assert 500 < ess.item() <= 20000
    # Monte Carlo error of the mean ~ 0.05 / sqrt(ESS) < 2.3e-3; of the std ~ 1 / sqrt(2 ESS) < 3.2 %
    assert draws.mean().item() == pytest.approx(0.4, abs=0.01)
    assert draws.std().item() == pytest.approx(NOISE, rel=0.12)
    with pytest.raises(ValueError, match="`n_draws`"):
        model.importance_resample(y, 1)


def test_forward_kl_fit_is_calibrated_over_data_sets():
    model = one_parameter_model()
    gen = torch.Generator().manual_seed(2)
    z_bank, y_bank = model.simulate(4000, generator=gen)
    train_svi(
        model.simulation_model,
        model.simulation_guide,
        ClippedAdam({"lr": 1e-2}),
        steps=400,
        model_kwargs={"z": z_bank, "y": y_bank, "batch_size": 256},
        description="forward KL",
    )
    z_test, y_test = model.simulate(400, generator=gen)
    with torch.no_grad():
        q = model.posterior(y_test)
        draws = model.posterior(y_test).sample((1000,))
    coverage = interval_coverage(draws, z_test).double().mean().item()
    assert 0.88 <= coverage <= 0.99
    # the posterior std is about NOISE away from the box's edges: q learnt the width, not the prior's
    mid = (y_test[:, 0] > 0.2) & (y_test[:, 0] < 0.8)
    assert draws[:, mid].std(0).median().item() == pytest.approx(NOISE, rel=0.3)
    assert q.batch_shape == (400,)


def test_bad_objectives_name_the_field():
    with pytest.raises(ValueError, match="`objectives`"):
        InverseDataConfig(objectives=())
    with pytest.raises(ValueError, match="`objectives`"):
        InverseDataConfig(objectives=("elbo", "elbo"))
