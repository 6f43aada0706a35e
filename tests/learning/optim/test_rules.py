"""UpdateRule: exactness against the base optimizer and the reference formulas, properties, errors."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sciprob.learning.optim import (
    HMSGD,
    MSGD,
    HAdagrad,
    HAdam,
    HRMSprop,
    MAdagrad,
    MAdam,
    MRMSprop,
    UpdateRule,
)

BASES = {
    "sgd": lambda p, lr=0.05: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda p, lr=0.05: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True),
    "adam": lambda p, lr=0.01: torch.optim.Adam(p, lr=lr),
    "adamw": lambda p, lr=0.01: torch.optim.AdamW(p, lr=lr, weight_decay=0.1),
    "adagrad": lambda p, lr=0.05: torch.optim.Adagrad(p, lr=lr),
    "rmsprop": lambda p, lr=0.01: torch.optim.RMSprop(p, lr=lr),
    "rmsprop_momentum": lambda p, lr=0.01: torch.optim.RMSprop(p, lr=lr, momentum=0.5),
}


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(32, 6, generator=gen), torch.randint(0, 3, (32,), generator=gen)


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: int = 12) -> list[torch.Tensor]:
    x, y = _data()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", sorted(BASES))
def test_hybrid_with_g_zero_reproduces_the_base_optimizer(name):
    reference = _train(m := _model(), BASES[name](m.parameters()))
    for rule in ("additive", "hybrid"):
        wrapped = _train(m := _model(), UpdateRule(BASES[name](m.parameters()), rule, g=0.0, lr_out=0.1))
        for a, b in zip(reference, wrapped, strict=True):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", sorted(BASES))
def test_hybrid_with_g_one_equals_multiplicative(name):
    hybrid = _train(m := _model(), UpdateRule(BASES[name](m.parameters()), "hybrid", g=1.0, lr_out=0.05))
    mult = _train(m := _model(), UpdateRule(BASES[name](m.parameters()), "multiplicative", lr_out=0.05))
    plain = _train(m := _model(), BASES[name](m.parameters()))
    for a, b, c in zip(hybrid, mult, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    assert any((b - c).abs().max() > 1e-3 for b, c in zip(mult, plain, strict=True))


def _one_param(values, grads_seq, opt_factory):
    w = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))
    opt = opt_factory([w])
    for grad in grads_seq:
        w.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
    return w.detach()


def test_sgd_momentum_matches_the_reference_formula():
    # reference M_ABS on HMSGD: theta -= lr_out |theta| tanh(lr_in * buf), buf = momentum buffer
    theta0, grads = [0.8, -0.3, 1.5], [[0.2, -1.0, 3.0], [0.5, 0.1, -2.0], [-0.4, 0.7, 1.0]]
    lr_in, lr_out, mom = 2.0, 0.3, 0.9
    got = _one_param(theta0, grads, lambda p: MSGD(p, lr_in=lr_in, lr_out=lr_out, momentum=mom))
    theta, buf = torch.tensor(theta0, dtype=torch.float64), None
    for grad in grads:
        grad = torch.tensor(grad, dtype=torch.float64)
        buf = grad.clone() if buf is None else mom * buf + grad
        theta = theta - lr_out * theta.abs() * torch.tanh(lr_in * buf)
    torch.testing.assert_close(got, theta, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("g", [0.3, 1.0])
def test_hybrid_adagrad_matches_the_reference_formula(g):
    # reference H_ABS on HAdagrad: d = grad / (sqrt(sum) + eps)
    theta0, grads = [0.8, -0.3, 0.0], [[0.2, -1.0, 3.0], [0.5, 0.1, -2.0]]
    lr, lr_in, lr_out, eps = 0.1, 1.5, 0.2, 1e-10
    got = _one_param(theta0, grads, lambda p: HAdagrad(p, lr=lr, lr_in=lr_in, lr_out=lr_out, g=g))
    theta = torch.tensor(theta0, dtype=torch.float64)
    acc = torch.zeros(3, dtype=torch.float64)
    for grad in grads:
        grad = torch.tensor(grad, dtype=torch.float64)
        acc += grad**2
        d = grad / (acc.sqrt() + eps)
        theta = theta - g * lr_out * theta.abs() * torch.tanh(lr_in * d) - (1 - g) * lr * d
    torch.testing.assert_close(got, theta, rtol=1e-12, atol=1e-14)


def test_adam_direction_is_the_bias_corrected_step():
    # documented: d = m_hat / (sqrt(v_hat) + eps) with m_hat = m / c1, v_hat = v / c2
    theta0, grad = [0.8, -0.3], [0.2, -1.0]
    got = _one_param(theta0, [grad], lambda p: MAdam(p, lr_in=3.0, lr_out=0.1))
    g = torch.tensor(grad, dtype=torch.float64)
    m, v = 0.1 * g, 0.001 * g**2
    d = (m / 0.1) / ((v / 0.001).sqrt() + 1e-8)
    theta = torch.tensor(theta0, dtype=torch.float64)
    torch.testing.assert_close(got, theta - 0.1 * theta.abs() * torch.tanh(3.0 * d), rtol=1e-12, atol=1e-14)


@settings(max_examples=60, deadline=None)
@given(
    theta=st.lists(st.one_of(st.just(0.0), st.floats(-10, 10)), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
    lr_in=st.floats(0.0, 1e3),
    lr_out=st.floats(0.0, 1.0),
    name=st.sampled_from(sorted(BASES)),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_multiplicative_never_flips_a_sign_and_keeps_zeros(theta, seed, lr_in, lr_out, name, scale):
    start = torch.tensor(theta, dtype=torch.float32)
    w = torch.nn.Parameter(start.clone())
    opt = UpdateRule(BASES[name]([w]), "multiplicative", lr_in=lr_in, lr_out=lr_out)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(5):
        w.grad = scale * torch.randn(w.shape, generator=gen)
        opt.step()
        assert torch.isfinite(w).all()
        assert (w[start == 0] == 0).all()
        assert (w * start >= 0).all(), (w, start)


def test_hybrid_moves_zero_weights_and_can_change_signs():
    w = torch.nn.Parameter(torch.tensor([0.0, 0.01]))
    opt = UpdateRule(torch.optim.SGD([w], lr=0.1), "hybrid", g=0.5, lr_out=0.5)
    for _ in range(3):
        w.grad = torch.tensor([1.0, 1.0])
        opt.step()
    assert w[0] < 0 and w[1] < 0


def test_closure_is_evaluated_once_and_its_loss_returned():
    m = _model()
    x, y = _data()
    opt = UpdateRule(torch.optim.Adam(m.parameters(), lr=0.01), "hybrid", g=0.5, lr_out=0.01)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(30)]
    assert len(calls) == 30
    assert losses[-1] < 0.8 * losses[0]


def test_lbfgs_is_rejected_with_a_clear_error():
    with pytest.raises(NotImplementedError, match="LBFGS"):
        UpdateRule(torch.optim.LBFGS(_model().parameters()))


def test_state_dict_round_trip_continues_the_same_trajectory():
    x, y = _data()
    m1 = _model()
    opt1 = UpdateRule(
        torch.optim.RMSprop(m1.parameters(), lr=0.01, momentum=0.5), "hybrid", g=0.3, lr_out=0.05
    )
    _train(m1, opt1, steps=4)
    m2 = copy.deepcopy(m1)
    state = copy.deepcopy(opt1.state_dict())
    assert state["param_groups"][0]["rule"] == "hybrid" and state["param_groups"][0]["g"] == 0.3
    opt2 = UpdateRule(torch.optim.RMSprop(m2.parameters(), lr=0.5, momentum=0.5), "additive")
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["rule"] == "hybrid" and opt2.param_groups[0]["lr"] == 0.01
    assert opt2.state is opt2.base.state and opt2.param_groups is opt2.base.param_groups
    a, b = _train(m1, opt1, steps=4), _train(m2, opt2, steps=4)
    for p, q in zip(a, b, strict=True):
        # exact by construction: identical state and inputs run the identical sequence of operations
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_parameter_groups_keep_their_own_rules_and_rates():
    m, ref = _model(), _model()
    layer0, layer1 = list(m[0].parameters()), list(m[2].parameters())
    base = torch.optim.SGD(
        [{"params": layer0, "lr_out": 0.2}, {"params": layer1, "rule": "additive"}], lr=0.05
    )
    opt = UpdateRule(base, "multiplicative", lr_out=0.01)
    assert [gr["lr_out"] for gr in opt.param_groups] == [0.2, 0.01]
    assert [gr["rule"] for gr in opt.param_groups] == ["multiplicative", "additive"]
    after = _train(m, opt, steps=5)
    plain = _train(ref, torch.optim.SGD(ref.parameters(), lr=0.05), steps=5)
    assert (after[0] - plain[0]).abs().max() > 1e-3
    # the additive group follows the base optimizer; its gradients depend on layer 0,
    # so compare one step from identical parameters instead of whole trajectories
    m2 = copy.deepcopy(m)
    opt_a = UpdateRule(torch.optim.SGD([{"params": list(m[2].parameters())}], lr=0.05), "additive")
    opt_b = torch.optim.SGD(m2[2].parameters(), lr=0.05)
    one_a, one_b = _train(m, opt_a, steps=1), _train(m2, opt_b, steps=1)
    # exact by construction: an additive group skips the wrapper, so the base optimizer's own step runs
    torch.testing.assert_close(one_a[2], one_b[2], rtol=0, atol=0)


def test_lr_scheduler_drives_the_additive_rate():
    m = _model()
    opt = UpdateRule(torch.optim.SGD(m.parameters(), lr=0.1), "hybrid", g=0.5)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    _train(m, opt, steps=1)
    sched.step()
    assert opt.base.param_groups[0]["lr"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("cls", "kwargs", "rule", "lr_out", "lr"),
    [
        (MSGD, {"lr_in": 1.0, "lr_out": 0.1}, "multiplicative", 0.1, 1.0),
        (HMSGD, {"lr": 0.1, "lr_in": 1.0, "lr_out": 0.1}, "hybrid", 0.1, 0.1),
        (MAdam, {}, "multiplicative", 1e-3, 1.0),
        (HAdam, {}, "hybrid", 1e-3, 1e-3),
        (MAdagrad, {}, "multiplicative", 1e-2, 1.0),
        (HAdagrad, {}, "hybrid", 1e-2, 1e-2),
        (MRMSprop, {}, "multiplicative", 1e-2, 1.0),
        (HRMSprop, {}, "hybrid", 1e-2, 1e-2),
    ],
)
def test_shortcuts_use_the_reference_defaults(cls, kwargs, rule, lr_out, lr):
    opt = cls(_model().parameters(), **kwargs)
    group = opt.param_groups[0]
    assert isinstance(opt, UpdateRule) and cls.__name__ in repr(type(opt))
    assert (group["rule"], group["lr_out"], group["lr"], group["lr_in"]) == (rule, lr_out, lr, 1.0)
    if rule == "hybrid":
        assert group["g"] == 1.0


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: HMSGD(p, lr=-0.1, lr_in=1.0, lr_out=0.1), ValueError, r"`lr` must be >= 0, got -0.1"),
        (lambda p: HAdam(p, g=1.5), ValueError, r"`g` .* must be \[0, 1\], got 1.5"),
        (lambda p: UpdateRule(torch.optim.SGD(p, lr=0.1), "hybrid", g=-0.2), ValueError, r"`g`.*-0.2"),
        (
            lambda p: UpdateRule(torch.optim.SGD(p, lr=0.1), "multiplictive"),
            ValueError,
            r"`rule`.*'multiplictive'",
        ),
        (
            lambda p: UpdateRule(torch.optim.SGD(p, lr=0.1), lr_out=2.0),
            ValueError,
            r"`lr_out`.*sign|`lr_out`.*2.0",
        ),
        (lambda p: UpdateRule(torch.optim.SGD(p, lr=0.1), lr_in=-1.0), ValueError, r"`lr_in`.*-1.0"),
        (lambda p: UpdateRule(torch.optim.SGD(p, lr=0.0)), ValueError, r"`lr` of parameter group 0 is 0"),
        (lambda p: UpdateRule(p), TypeError, r"`optimizer` must be a torch.optim.Optimizer"),
    ],
)
def test_bad_input_gives_a_clear_error(make, error, match):
    with pytest.raises(error, match=match):
        make(list(_model().parameters()))


def test_a_negative_lr_set_later_is_caught_at_the_next_step():
    m = _model()
    opt = UpdateRule(torch.optim.SGD(m.parameters(), lr=0.1), "hybrid")
    opt.param_groups[0]["lr"] = -0.1
    with pytest.raises(ValueError, match=r"`lr` of parameter group 0 must be >= 0, got -0.1"):
        _train(m, opt, steps=1)


def test_compiled_model_trains_with_the_wrapper():
    # aot_eager traces forward and backward like inductor does, without the C++ build time
    torch._dynamo.reset()
    m = _model()
    compiled = torch.compile(m, backend="aot_eager")
    opt = MAdam(compiled.parameters(), lr_out=0.05)
    x, y = _data()
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(compiled(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.slow
def test_inductor_compiled_model_trains_with_the_wrapper():
    torch._dynamo.reset()
    m = _model()
    compiled = torch.compile(m)
    opt = HAdam(compiled.parameters(), lr=0.01, lr_out=0.05, g=0.5)
    x, y = _data()
    first = last = None
    for _ in range(25):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(compiled(x), y)
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
        last = float(loss.detach())
    assert last < 0.8 * first


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", ["sgd", "adam", "adagrad", "rmsprop"])
def test_cuda_tensors_match_the_cpu(name):
    cpu = _model()
    gpu = copy.deepcopy(cpu).cuda()
    x, y = _data()
    outs = []
    for model, (xx, yy) in [(cpu, (x, y)), (gpu, (x.cuda(), y.cuda()))]:
        opt = UpdateRule(BASES[name](model.parameters()), "hybrid", g=0.5, lr_out=0.05)
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xx), yy).backward()
            opt.step()
        outs.append([p.detach().cpu() for p in model.parameters()])
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_compiled_rule_matches_the_foreach_rule(name):
    # compiles one element-wise kernel (seconds on CPU), hence slow
    runs = []
    for compiled in (False, True):
        m = _model()
        runs.append(
            _train(m, UpdateRule(BASES[name](m.parameters()), "hybrid", g=0.7, lr_out=0.2, compiled=compiled))
        )
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    w = torch.nn.Parameter(torch.tensor([0.0, 1e-3, -2.0, 5.0]))
    opt = UpdateRule(torch.optim.SGD([w], lr=1.0), "multiplicative", lr_in=1e3, lr_out=1.0, compiled=True)
    for grad in ([1.0, 1.0, -1.0, 1.0], [-1.0, 5.0, 3.0, -2.0]):
        w.grad = torch.tensor(grad)
        opt.step()
        assert w[0] == 0 and (w[1:] * torch.tensor([1.0, -1.0, 1.0]) >= 0).all()


def test_auto_uses_the_kernel_only_for_large_groups(monkeypatch):
    from sciprob.learning.optim import rules

    monkeypatch.setattr(rules, "_COMPILE_FAILED", [])
    small, large = torch.zeros(10), torch.zeros(rules._AUTO_KERNEL_NUMEL)
    auto = UpdateRule(torch.optim.SGD([small], lr=0.1))
    assert auto.compiled == "auto"
    assert not auto.uses_kernel([small]) and auto.uses_kernel([large])
    assert UpdateRule(torch.optim.SGD([small], lr=0.1), compiled=True).uses_kernel([small])
    assert not UpdateRule(torch.optim.SGD([small], lr=0.1), compiled=False).uses_kernel([large])
    with pytest.raises(ValueError, match=r"`compiled` must be True, False or 'auto', got 'yes'"):
        UpdateRule(torch.optim.SGD([small], lr=0.1), compiled="yes")


def test_auto_falls_back_to_the_passes_when_compiling_fails(monkeypatch):
    from sciprob.learning.optim import rules

    def broken(*args):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(rules, "_COMPILED_KERNEL", [broken])
    monkeypatch.setattr(rules, "_COMPILE_FAILED", [])
    monkeypatch.setattr(rules, "_AUTO_KERNEL_NUMEL", 1)
    reference = _train(m := _model(), UpdateRule(BASES["adam"](m.parameters()), "hybrid", compiled=False))
    with pytest.warns(RuntimeWarning, match="compiling the update kernel failed.*no C\\+\\+ compiler"):
        fallback = _train(m := _model(), UpdateRule(BASES["adam"](m.parameters()), "hybrid"))
    for a, b in zip(reference, fallback, strict=True):
        # exact by construction: after the failed compile the same _foreach code path runs
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    strict = UpdateRule(BASES["adam"](_model().parameters()), "hybrid", compiled=True)
    for p in strict.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        strict.step()
