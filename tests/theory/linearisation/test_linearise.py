"""The Taylor model: exactness at the point, finite differences, K=1 = ordinary training, BatchNorm."""

import copy

import pytest
import torch
from torch import nn

from sciprob.theory.linearisation import IterativeLinearisedTrainer, linearise


def _mlp(dtype=torch.float64):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 12), nn.Tanh(), nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 3)).to(
        dtype
    )


def _cnn():
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 16, 5),
    )


def _shift(model, direction, h):
    with torch.no_grad():
        for p, d in zip(model.parameters(), direction, strict=True):
            p.add_(h * d)


def test_linearised_output_equals_model_at_the_point_and_is_linear_in_theta():
    net = _mlp()
    lin = linearise(net)
    x = torch.randn(7, 4, dtype=torch.float64)
    assert torch.allclose(lin(x), net(x), atol=1e-12)
    base = lin(x).detach()
    direction = [torch.randn_like(p) for p in net.parameters()]
    _shift(net, direction, 0.3)
    one = lin(x).detach()
    _shift(net, direction, 0.3)
    two = lin(x).detach()
    assert torch.allclose(two - base, 2 * (one - base), atol=1e-10)  # affine in θ
    assert not torch.allclose(net(x), two, atol=1e-3)  # while f itself is not


def test_linearised_output_matches_finite_differences_of_the_network():
    net = _mlp()
    point = copy.deepcopy(net)
    lin = linearise(net)
    x = torch.randn(5, 4, dtype=torch.float64)
    direction = [torch.randn_like(p) for p in net.parameters()]
    t = 1e-3
    _shift(net, direction, t)
    jd_lin = (lin(x) - point(x)).detach() / t  # = J(θ̃) d exactly
    h = 1e-5
    _shift(point, direction, h)
    plus = point(x).detach()
    _shift(point, direction, -2 * h)
    minus = point(x).detach()
    jd_fd = (plus - minus) / (2 * h)
    assert torch.allclose(jd_lin, jd_fd, rtol=1e-6, atol=1e-8)


def test_linearised_gradient_matches_finite_differences_away_from_the_point():
    net = _mlp()
    lin = linearise(net)
    _shift(net, [torch.randn_like(p) for p in net.parameters()], 0.2)  # θ ≠ θ̃
    x, y = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)

    def loss():
        return ((lin(x) - y) ** 2).sum() + lin(x).sin().sum()

    grads = torch.autograd.grad(loss(), list(net.parameters()))
    for _ in range(3):
        direction = [torch.randn_like(p) for p in net.parameters()]
        analytic = sum((g * d).sum() for g, d in zip(grads, direction, strict=True))
        h = 1e-5
        _shift(net, direction, h)
        plus = loss().item()
        _shift(net, direction, -2 * h)
        minus = loss().item()
        _shift(net, direction, h)
        assert analytic.item() == pytest.approx((plus - minus) / (2 * h), rel=1e-6, abs=1e-8)


def test_gradcheck_through_the_jvp():
    net = _mlp()
    lin = linearise(net)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: lin(inp), (x,))


@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adam"])
def test_period_one_reproduces_ordinary_training_over_20_steps(optimizer):
    ref, net = _cnn(), _cnn()
    net.load_state_dict(ref.state_dict())

    def make(model):
        if optimizer == "adam":
            return torch.optim.Adam(model.parameters(), lr=1e-3)
        return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    opt_ref = make(ref)
    trainer = IterativeLinearisedTrainer(net, period=1, optimizer=make(net))
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        x, y = torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 5, (16,), generator=g)
        loss = nn.functional.cross_entropy(ref(x), y)
        opt_ref.zero_grad()
        loss.backward()
        opt_ref.step()
        trainer.step(x, y)
    assert trainer.feature_updates == 19
    moved = max((p - q).abs().max().item() for p, q in zip(ref.parameters(), _cnn().parameters()))
    gap = max((p - q).abs().max().item() for p, q in zip(ref.parameters(), net.parameters()))
    assert moved > 1e-2  # training did something
    assert gap < 1e-6


def test_batchnorm_in_training_mode_is_rejected_with_the_reason():
    net = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    with pytest.raises(NotImplementedError, match=r"BatchNorm.*'1'.*batch.*eval\(\)"):
        linearise(net)
    lin_eval = linearise(net.eval())
    net[1].train()  # switched back after wrapping: caught at call time
    with pytest.raises(NotImplementedError, match="training mode"):
        lin_eval(torch.randn(4, 3))


def test_batchnorm_in_eval_mode_works():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    with torch.no_grad():
        net(torch.randn(32, 3) * 3 + 1)  # non-trivial running statistics
    net.eval()
    ref = copy.deepcopy(net)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    opt, opt_ref = (torch.optim.SGD(m.parameters(), lr=0.5) for m in (net, ref))
    trainer = IterativeLinearisedTrainer(net, period=1, optimizer=opt)
    assert torch.allclose(trainer.linearised(x), net(x), atol=1e-6)
    losses = []
    for _ in range(30):
        losses.append(trainer.step(x, y))
        opt_ref.zero_grad()
        nn.functional.cross_entropy(ref(x), y).backward()
        opt_ref.step()
    assert losses[-1] < 0.7 * losses[0]
    assert max((p - q).abs().max().item() for p, q in zip(ref.parameters(), net.parameters())) < 1e-6


def test_relinearise_moves_only_the_point():
    net = _mlp()
    lin = linearise(net)
    _shift(net, [torch.ones_like(p) for p in net.parameters()], 0.1)
    theta = [p.detach().clone() for p in net.parameters()]
    assert lin.proximal_term().item() > 0
    lin.relinearise()
    assert lin.proximal_term().item() == 0  # exact: θ̃ is a copy of θ, so θ - θ̃ is 0.0 bit for bit
    assert all(torch.equal(a, b) for a, b in zip(theta, net.parameters()))
    assert all(torch.equal(lin.linearisation_point()[n], p) for n, p in net.named_parameters())


def test_bad_inputs_are_rejected():
    net = _mlp()
    with pytest.raises(TypeError, match="`model`"):
        linearise("not a module")
    point = {n: p.detach() for n, p in net.named_parameters()}
    with pytest.raises(ValueError, match="missing"):
        linearise(net, {k: v for k, v in point.items() if k != "0.bias"})
    with pytest.raises(ValueError, match=r"point\['0.weight'\].*shape"):
        linearise(net, {**point, "0.weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="non-finite"):
        linearise(net, {**point, "0.bias": torch.full((12,), float("nan"))})
