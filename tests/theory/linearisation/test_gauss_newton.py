"""Damped Gauss-Newton: the closed form, and K GD steps on the linearised model converging to it."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from sciprob.theory.linearisation import IterativeLinearisedTrainer, damped_gauss_newton_step


def _problem(n=6, width=5):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, width), nn.Tanh(), nn.Linear(width, 2)).double()
    x = torch.randn(n, 3, dtype=torch.float64)
    y = torch.randn(n, 2, dtype=torch.float64)
    return net, x, y


def _flat(params):
    return torch.cat([p.reshape(-1) for p in params.values()])


def _jacobian(net, x):
    point = {k: v.detach() for k, v in net.named_parameters()}
    jac = jacrev(lambda p: functional_call(net, p, (x,)))(point)
    return torch.cat([j.reshape(x.shape[0] * 2, -1) for j in jac.values()], dim=1), point


@pytest.mark.parametrize("n", [4, 40])  # P = 27 > N·O = 8 (data-space solve) and P < N·O = 80
def test_closed_form_is_the_levenberg_marquardt_step(n):
    net, x, y = _problem(n=n)
    lam = 0.3
    j, point = _jacobian(net, x)
    r = (net(x) - y).detach().reshape(-1)
    expected = _flat(point) - torch.linalg.solve(
        j.T @ j + lam * torch.eye(j.shape[1], dtype=j.dtype), j.T @ r
    )
    got = _flat(damped_gauss_newton_step(net, x, y, lam))
    assert torch.allclose(got, expected, atol=1e-10)
    # stationarity of ½‖f_lin − y‖² + (λ/2)‖θ − θ̃‖²
    delta = got - _flat(point)
    assert (j.T @ (r + j @ delta) + lam * delta).abs().max() < 1e-10


def test_gd_steps_on_the_linearised_model_approach_the_gauss_newton_step():
    net, x, y = _problem()
    j, _ = _jacobian(net, x)
    top = torch.linalg.eigvalsh(j.T @ j).max().item()
    lam = 0.05 * top  # GD contracts by 1 - λ/(top + λ) per step along null(J)
    curvature = top + lam
    target = _flat(damped_gauss_newton_step(net, x, y, lam))
    init = {k: v.detach().clone() for k, v in net.state_dict().items()}
    errors = {}
    for k in (1, 10, 100, 1000):
        net.load_state_dict(init)
        opt = torch.optim.SGD(net.parameters(), lr=1.0 / curvature)
        trainer = IterativeLinearisedTrainer(
            net,
            period=None,
            optimizer=opt,
            loss_fn=lambda out, t: 0.5 * (out - t).square().sum(),
            damping=lam,
        )
        for _ in range(k):
            trainer.step(x, y)
        errors[k] = (
            _flat(dict(net.named_parameters())).detach() - target
        ).norm().item() / target.norm().item()
    assert errors[1] > errors[10] > errors[100] > errors[1000]
    assert errors[1] > 1e-2
    assert errors[1000] < 1e-6


def test_bad_damping_and_targets_are_rejected():
    net, x, y = _problem()
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="`damping`"):
            damped_gauss_newton_step(net, x, y, bad)
    with pytest.raises(ValueError, match="`y`"):
        damped_gauss_newton_step(net, x, y[:, :1], 0.1)
