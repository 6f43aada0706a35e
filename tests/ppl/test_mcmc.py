"""NUTS runner: a conjugate posterior, diagnostics that catch chains that did not mix, bad input."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch

from sciprob.ppl.mcmc import MCMCResult, mcmc_diagnostics, run_nuts


def _conjugate_model(y):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", y.shape[0]):
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def test_nuts_recovers_a_conjugate_posterior():
    y = torch.tensor([0.3, 1.1, 0.8, 1.6, 0.9, 1.2, 0.4, 1.0, 1.3])
    n = y.numel()
    res = run_nuts(_conjugate_model, y, num_samples=300, warmup_steps=200, num_chains=2, seed=3)
    assert isinstance(res, MCMCResult)
    assert tuple(res.samples["mu"].shape) == (2, 300)
    draws = res.flat("mu")
    post_mean, post_sd = float(y.sum()) / (n + 1), (1.0 / (n + 1)) ** 0.5
    assert float(draws.mean()) == pytest.approx(post_mean, abs=4 * post_sd / 300**0.5 + 0.01)
    assert float(draws.std()) == pytest.approx(post_sd, rel=0.15)
    assert res.r_hat["mu"] < 1.05 and res.ess["mu"] > 100
    assert res.mixed() and res.divergences == [0, 0]


def test_diagnostics_flag_chains_that_did_not_mix():
    g = torch.Generator().manual_seed(0)
    good = torch.randn(4, 500, 3, generator=g)
    stuck = good + torch.tensor([0.0, 0.0, 3.0, 3.0]).view(4, 1, 1)  # two chains in another mode
    r_hat, ess = mcmc_diagnostics({"good": good, "stuck": stuck})
    assert r_hat["good"] < 1.02 and ess["good"] > 1000
    assert r_hat["stuck"] > 1.5 and ess["stuck"] < 100
    sticky = torch.cumsum(torch.randn(2, 500, generator=g), dim=1)  # random walk: tiny ESS
    assert mcmc_diagnostics({"x": sticky})[1]["x"] < 50
    res = MCMCResult(samples={"stuck": stuck}, r_hat=r_hat, ess=ess, divergences=[0], accept_prob=[0.8])
    assert not res.mixed(sites=["stuck"]) and res.mixed(sites=["good"])


def test_single_chain_has_no_r_hat_and_bad_input_is_rejected():
    r_hat, _ = mcmc_diagnostics({"x": torch.randn(1, 50)})
    assert r_hat["x"] != r_hat["x"]  # NaN
    with pytest.raises(ValueError, match="draws"):
        mcmc_diagnostics({"x": torch.randn(2, 3)})
    with pytest.raises(ValueError, match="num_chains"):
        run_nuts(_conjugate_model, torch.zeros(3), num_chains=0)
    with pytest.raises(ValueError, match="target_accept_prob"):
        run_nuts(_conjugate_model, torch.zeros(3), target_accept_prob=1.5)
