import pyro
import pytest
import torch
import torch.nn.functional as F
from pyro import poutine
from torch import nn

from sciprob.learning.reweighting import BayesianReweighting, WeightedLikelihood


def _data():
    gen = torch.Generator().manual_seed(0)
    net = nn.Linear(3, 4)
    x = torch.randn(7, 3, generator=gen)
    y = torch.randint(0, 4, (7,), generator=gen)
    w = torch.tensor([0.5, 0.0, 1.0, 2.0, 0.0, 0.25, 1.5])  # zeros go through poutine.mask
    return net, x, y, w


def test_pyro_scaled_objective_equals_the_hand_weighted_loss():
    net, x, y, w = _data()
    hand = (w * F.cross_entropy(net(x), y, reduction="none")).sum()
    torch.testing.assert_close(WeightedLikelihood(mean=False)(net, x, y, w), hand, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(WeightedLikelihood()(net, x, y, w), hand / 7, rtol=1e-6, atol=1e-7)
    # the gradient flows to the network's parameters
    grads = torch.autograd.grad(WeightedLikelihood()(net, x, y, w), list(net.parameters()))
    want = torch.autograd.grad(hand / 7, list(net.parameters()))
    for a, b in zip(grads, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_the_likelihood_site_is_scaled_inside_the_plate():
    net, x, y, w = _data()
    trace = poutine.trace(WeightedLikelihood.model).get_trace(net, x, y, w)
    site = trace.nodes["obs"]
    assert site["cond_indep_stack"][0].name == "data"
    torch.testing.assert_close(site["scale"], torch.where(w > 0, w, torch.ones_like(w)))
    assert torch.equal(site["mask"], w > 0)


def test_bayesian_reweighting_elbo_matches_its_definition():
    # one-sample ELBO with the guide's sample replayed: -(log Beta prior - log q + sum w_i log p_i) N/b
    net, x, y, _ = _data()
    rw = BayesianReweighting(n_train=14, concentration1=2.0, concentration0=1.0)
    idx = torch.arange(7)
    guide_trace = poutine.trace(rw.guide).get_trace(net, x, y, idx)
    w = guide_trace.nodes["w"]["value"]
    model_trace = poutine.trace(poutine.replay(rw.model, trace=guide_trace)).get_trace(net, x, y, idx)
    got = -(model_trace.log_prob_sum() - guide_trace.log_prob_sum())
    a, b = rw.posterior()
    log_lik = -F.cross_entropy(net(x), y, reduction="none")
    prior = pyro.distributions.Beta(2.0, 1.0).log_prob(w)
    q = pyro.distributions.Beta(a[idx], b[idx]).log_prob(w)
    want = -(14 / 7) * (prior - q + w * log_lik).sum()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert torch.all((rw.posterior_mean() > 0) & (rw.posterior_mean() < 1))
