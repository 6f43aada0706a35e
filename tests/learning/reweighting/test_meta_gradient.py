import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sciprob.learning.reweighting import (
    FaMUS,
    LearningToReweight,
    MetaReweightTrainer,
    MetaWeightNet,
    WeightedLikelihood,
    flat_cosine,
    meta_gradient_agreement,
)


def _tiny(seed=0, bn=False):
    gen = torch.Generator().manual_seed(seed)
    layers = [nn.Linear(3, 5)] + ([nn.BatchNorm1d(5)] if bn else []) + [nn.Tanh(), nn.Linear(5, 4)]
    net = nn.Sequential(*layers).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.7)
    x = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (12,), generator=gen)
    xm = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    ym = torch.randint(0, 4, (8,), generator=gen)
    return net, x, y, xm, ym


def _meta_loss_by_hand(net, vnet_params, vnet, x, y, xm, ym, alpha, detach=()):
    """L_val(w - alpha * grad_w mean(V(l) * l)) with plain autograd, no torch.func."""
    params = dict(net.named_parameters())
    losses = F.cross_entropy(net(x), y, reduction="none")
    v = functional_call(vnet, vnet_params, (losses.detach().reshape(-1, 1),)).reshape(-1)
    grads = torch.autograd.grad((v * losses).sum() / x.shape[0], list(params.values()), create_graph=True)
    new = {
        k: p - alpha * (g.detach() if k in detach else g)
        for (k, p), g in zip(params.items(), grads, strict=True)
    }
    return F.cross_entropy(functional_call(net, new, (xm,)), ym)


def test_torch_func_meta_gradient_equals_finite_differences():
    net, x, y, xm, ym = _tiny()
    mw = MetaWeightNet(hidden=6).double()
    alpha = 0.3
    trainer = MetaReweightTrainer(net, torch.optim.SGD(net.parameters(), lr=alpha), mw)
    grad = trainer.meta_gradient(x, y, xm, ym).weighting
    base = {k: v.detach().clone() for k, v in mw.net.named_parameters()}
    h = 1e-6
    for name, value in base.items():
        fd = torch.zeros_like(value)
        for i in range(value.numel()):
            plus, minus = dict(base), dict(base)
            e = torch.zeros_like(value).reshape(-1)
            e[i] = h
            plus[name], minus[name] = value + e.reshape(value.shape), value - e.reshape(value.shape)
            lp = _meta_loss_by_hand(net, plus, mw.net, x, y, xm, ym, alpha).item()
            lm = _meta_loss_by_hand(net, minus, mw.net, x, y, xm, ym, alpha).item()
            fd.reshape(-1)[i] = (lp - lm) / (2 * h)
        torch.testing.assert_close(grad[name], fd, rtol=1e-5, atol=1e-9)
    assert sum(float(g.abs().sum()) for g in grad.values()) > 1e-6  # not a trivially zero gradient


def test_l2rw_gradient_is_the_negative_gradient_alignment():
    # at eps = 0 the virtual step is zero, and dL_val/deps_i = -(alpha/n) grad L_i . grad L_val
    net, x, y, xm, ym = _tiny(1)
    alpha = 0.2
    trainer = MetaReweightTrainer(net, torch.optim.SGD(net.parameters(), lr=alpha), LearningToReweight())
    got = trainer.meta_gradient(x, y, xm, ym).weighting["eps"]
    params = list(net.parameters())
    g_val = torch.autograd.grad(F.cross_entropy(net(xm), ym), params)
    want = []
    for i in range(x.shape[0]):
        g_i = torch.autograd.grad(F.cross_entropy(net(x[i : i + 1]), y[i : i + 1]), params)
        want.append(-alpha / x.shape[0] * sum((a * b).sum() for a, b in zip(g_i, g_val, strict=True)))
    torch.testing.assert_close(got, torch.stack(want), rtol=1e-10, atol=1e-12)
    w = LearningToReweight().train_weights({"eps": got}, torch.zeros(12))
    assert torch.all(w >= 0) and w.sum().item() == pytest.approx(12.0)


def _forced_famus(net, keep_all=True, lambda_grad=0.0):
    famus = FaMUS(net, k=1, lambda_grad=lambda_grad).double()
    with torch.no_grad():
        for s in famus.samplers:
            s.fc2.weight.zero_()
            s.fc2.bias.copy_(torch.tensor([-1e3, 1e3] if keep_all else [1e3, -1e3], dtype=torch.float64))
    return famus


def test_famus_with_every_layer_sampled_equals_the_exact_meta_gradient():
    net, x, y, xm, ym = _tiny(2, bn=True)
    mw = MetaWeightNet(hidden=6).double()
    exact = MetaReweightTrainer(net, torch.optim.SGD(net.parameters(), lr=0.3), mw).meta_gradient(
        x, y, xm, ym
    )
    trainer = MetaReweightTrainer(
        net, torch.optim.SGD(net.parameters(), lr=0.3), mw, famus=_forced_famus(net)
    )
    approx = trainer.meta_gradient(x, y, xm, ym)
    assert approx.kept == (True, True, True)
    for k in exact.weighting:
        torch.testing.assert_close(approx.weighting[k], exact.weighting[k], rtol=1e-12, atol=1e-15)
    agreement = meta_gradient_agreement(trainer, [(x, y, xm, ym)])
    assert agreement.cosine == pytest.approx(1.0, abs=1e-12) and agreement.kept_fraction == 1.0


def test_famus_with_layers_rejected_detaches_their_terms():
    net, x, y, xm, ym = _tiny(3)
    mw = MetaWeightNet(hidden=6).double()
    trainer = MetaReweightTrainer(net, torch.optim.SGD(net.parameters(), lr=0.3), mw)
    got = trainer.meta_gradient(x, y, xm, ym, keep=[False, True]).weighting
    vparams = {k: v.detach().clone().requires_grad_() for k, v in mw.net.named_parameters()}
    loss = _meta_loss_by_hand(net, vparams, mw.net, x, y, xm, ym, 0.3, detach={"0.weight", "0.bias"})
    want = dict(zip(vparams, torch.autograd.grad(loss, list(vparams.values())), strict=True))
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-10, atol=1e-14)
    exact = trainer.meta_gradient(x, y, xm, ym).weighting
    assert flat_cosine(got, exact) < 1 - 1e-6  # a genuine approximation


def test_meta_gradient_leaves_the_model_and_its_batch_norm_buffers_alone():
    net, x, y, xm, ym = _tiny(4, bn=True)
    before = copy.deepcopy(net.state_dict())
    trainer = MetaReweightTrainer(net, torch.optim.SGD(net.parameters(), lr=0.1), MetaWeightNet().double())
    trainer.meta_gradient(x, y, xm, ym)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(m.track_running_stats for m in net.modules() if isinstance(m, nn.BatchNorm1d))


def test_pyro_objective_trains_exactly_like_the_hand_weighted_loss():
    net_a, x, y, xm, ym = _tiny(5)
    net_b = copy.deepcopy(net_a)
    mw_a = MetaWeightNet(hidden=6).double()
    mw_b = copy.deepcopy(mw_a)
    mw_b.optimizer = torch.optim.Adam(mw_b.net.parameters(), lr=1e-3, weight_decay=1e-4)
    ta = MetaReweightTrainer(net_a, torch.optim.SGD(net_a.parameters(), lr=0.2, momentum=0.9), mw_a)
    tb = MetaReweightTrainer(
        net_b, torch.optim.SGD(net_b.parameters(), lr=0.2, momentum=0.9), mw_b, objective=WeightedLikelihood()
    )
    for _ in range(3):
        ia, ib = ta.step(x, y, xm, ym), tb.step(x, y, xm, ym)
        assert ia.loss == pytest.approx(ib.loss, rel=1e-12)
    for pa, pb in zip(net_a.parameters(), net_b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-12, atol=1e-14)


def test_released_scope_keeps_the_last_layer_and_detaches_the_early_ones():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 4)).double()
    famus = FaMUS(net, scope="last", last_layers=1).double()
    assert famus.sampled == [1] and famus.always == [2]
    _, x, y, xm, ym = _tiny(6)
    trainer = MetaReweightTrainer(
        net, torch.optim.SGD(net.parameters(), lr=0.1), MetaWeightNet().double(), famus=famus
    )
    for _ in range(3):
        kept = trainer.meta_gradient(x, y, xm, ym).kept
        assert kept[0] is False and kept[2] is True


def test_famus_loss_terms():
    from sciprob.learning.reweighting import gradient_matching_loss, layer_count_loss

    acts = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    assert layer_count_loss(acts, 4, 0.1).item() == pytest.approx(0.1)  # 0.1 * (5 - 4)^2
    g = torch.randn(4, 6)
    assert gradient_matching_loss(g, g).item() == 0.0  # exact: equal statistics subtracted
    shifted = gradient_matching_loss(g, g + 1.0).item()  # row means differ by 1, stds agree
    assert shifted == pytest.approx(0.1 * 0.5, rel=1e-6)
