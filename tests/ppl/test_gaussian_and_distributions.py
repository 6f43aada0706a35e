"""Amortised Gaussian networks and the concatenated prior."""

from __future__ import annotations

import pyro.distributions as dist
import pytest
import torch

from sciprob.ppl import AmortisedGaussian, IndependentConcat


@pytest.mark.parametrize("covariance", ["diagonal", "lowrank"])
def test_variances_stay_bounded(covariance):
    torch.manual_seed(0)
    net = AmortisedGaussian(3, 6, hidden=(8, 8), covariance=covariance, rank=2, var_bounds=(1e-4, 0.5))
    d = net(1e3 * torch.randn(64, 3))  # extreme inputs saturate the heads
    assert d.batch_shape == (64,) and d.event_shape == (6,)
    var = d.variance
    assert torch.all(var >= 1e-4 * (1 - 1e-6)) and torch.all(var <= 2 * 0.5 + 1e-6)
    assert torch.isfinite(d.log_prob(d.sample())).all()


@pytest.mark.parametrize("covariance", ["diagonal", "lowrank"])
def test_mean_alone_equals_the_distributions_mean(covariance):
    torch.manual_seed(0)
    net = AmortisedGaussian(
        3, 5, hidden=(8, 8), covariance=covariance, input_shift=torch.ones(3), output_scale=3 * torch.ones(5)
    )
    x = torch.randn(7, 3)
    torch.testing.assert_close(net.mean(x), net(x).mean, rtol=1e-6, atol=1e-7)


def test_output_affine_and_init_var():
    net = AmortisedGaussian(
        2,
        3,
        hidden=(4,),
        init_var=1e-3,
        output_shift=torch.tensor([1.0, 2.0, 3.0]),
        output_scale=torch.tensor([2.0, 2.0, 2.0]),
    )
    with torch.no_grad():
        for p in net.net.parameters():
            if p.dim() == 2:
                p.zero_()
    d = net(torch.randn(5, 2))
    torch.testing.assert_close(d.mean, torch.tensor([1.0, 2.0, 3.0]).expand(5, 3))
    torch.testing.assert_close(d.variance, torch.full((5, 3), 4e-3), rtol=1e-4, atol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"var_bounds": (0.0, 1.0)}, "var_bounds"),
        ({"covariance": "full"}, "covariance"),
        ({"init_var": 2.0}, "init_var"),
        ({"covariance": "lowrank", "rank": 0}, "rank"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AmortisedGaussian(2, 2, **kwargs)


def test_independent_concat():
    p = IndependentConcat(
        [dist.Normal(torch.zeros(2), 1.0).to_event(1), dist.Uniform(torch.ones(1), 2.0).to_event(1)]
    )
    x = p.sample((1000,))
    assert x.shape == (1000, 3) and p.event_shape == (3,)
    assert torch.all((x[:, 2] >= 1) & (x[:, 2] <= 2))
    v = torch.tensor([0.3, -0.2, 1.5])
    expected = dist.Normal(0.0, 1.0).log_prob(v[:2]).sum() + torch.log(torch.tensor(1.0))
    torch.testing.assert_close(p.log_prob(v), expected)
    torch.testing.assert_close(p.mean, torch.tensor([0.0, 0.0, 1.5]))
    assert p.expand((4,)).sample().shape == (4, 3)
