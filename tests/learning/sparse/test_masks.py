"""Masks, scores, allocations and schedules of sciprob.learning.sparse."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sciprob.learning.sparse import (
    Cubic,
    GradualPruner,
    Iterative,
    MovementScores,
    OneShot,
    density,
    grasp_scores,
    layer_densities,
    load_sparse_state_dict,
    masked_tensors,
    masks,
    prune,
    remove_masks,
    snip_scores,
    sparsify,
    synflow_prune,
    synflow_scores,
)


def _mlp(gen: torch.Generator) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return net


def _cnn(gen: torch.Generator) -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return net


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
def test_masked_weights_stay_zero_through_training(gen, opt_name):
    net = _mlp(gen)
    sparsify(net, sparsity=0.8)
    before = masks(net)
    opt = (
        torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-3)
        if opt_name == "adam"
        else torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    )
    x, y = torch.randn(32, 64, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    w0 = net[0].weight.detach().clone()
    for _ in range(20):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    for e in masked_tensors(net):
        w = e.module.weight
        assert torch.equal(e.mask, before[e.name])
        assert (w[~e.mask] == 0).all()
    # the kept weights did train
    assert not torch.allclose(net[0].weight[before["0.weight"]], w0[before["0.weight"]])


@pytest.mark.parametrize("allocation", ["uniform", "er", "erk"])
@pytest.mark.parametrize("s", [0.5, 0.9, 0.98])
def test_density_equals_target_to_one_element_per_layer(gen, allocation, s):
    net = _cnn(gen)
    sparsify(net, sparsity=s, allocation=allocation)
    rep = density(net)
    shapes = {e.name: tuple(e.mask.shape) for e in masked_tensors(net)}
    target = layer_densities(shapes, 1 - s, allocation)
    for e in masked_tensors(net):
        assert abs(int(e.mask.sum()) - target[e.name] * e.mask.numel()) <= 1.0
    total = sum(math.prod(v) for v in shapes.values())
    assert abs(rep.kept - (1 - s) * total) <= len(shapes)
    if allocation == "uniform":
        for e in masked_tensors(net):
            assert abs(int(e.mask.sum()) - (1 - s) * e.mask.numel()) <= 1.0


def test_global_magnitude_keeps_exact_count_and_largest_weights(gen):
    net = _mlp(gen)
    allw = torch.cat([m.weight.detach().abs().reshape(-1) for m in net if isinstance(m, nn.Linear)])
    sparsify(net, sparsity=0.9, allocation="global")
    rep = density(net)
    assert rep.kept == round(0.1 * allw.numel())
    kept = torch.cat([m.weight.detach().abs().reshape(-1) for m in net if isinstance(m, nn.Linear)])
    thr = torch.sort(allw, descending=True).values[rep.kept - 1]
    assert (kept[kept > 0] >= thr).all()


def test_erk_allocation_properties():
    shapes = {"a": (300, 784), "b": (100, 300), "c": (10, 100)}
    d = layer_densities(shapes, 0.02, "erk")
    sizes = {k: math.prod(v) for k, v in shapes.items()}
    assert sum(d[k] * sizes[k] for k in shapes) == pytest.approx(0.02 * sum(sizes.values()), rel=1e-9)
    assert d["c"] > d["b"] > d["a"]  # smaller layers are denser
    # a budget that would push the small layer over 1 makes it dense
    d2 = layer_densities(shapes, 0.5, "erk")
    assert d2["c"] == 1.0 and all(v <= 1.0 for v in d2.values())
    assert sum(d2[k] * sizes[k] for k in shapes) == pytest.approx(0.5 * sum(sizes.values()), rel=1e-9)


def test_state_dict_round_trip_into_fresh_model(gen):
    net = _cnn(gen)
    sparsify(net, sparsity=0.7)
    sd = net.state_dict()
    fresh = _cnn(torch.Generator().manual_seed(1))
    added = load_sparse_state_dict(fresh, sd)
    assert set(added) == {"0.weight", "3.weight", "7.weight"}
    x = torch.randn(4, 1, 8, 8, generator=gen)
    net.eval(), fresh.eval()
    assert torch.equal(net(x), fresh(x))
    for name, m in masks(net).items():
        assert torch.equal(m, masks(fresh)[name])
    # and into a model that is already masked (plain load_state_dict)
    other = _cnn(torch.Generator().manual_seed(2))
    sparsify(other, sparsity=0.1)
    other.load_state_dict(sd)
    assert torch.equal(other.eval()(x), net(x))


def test_remove_masks_makes_zeros_permanent(gen):
    net = _mlp(gen)
    sparsify(net, sparsity=0.6)
    x = torch.randn(5, 64, generator=gen)
    y = net(x)
    names = remove_masks(net)
    assert names == ["0.weight", "2.weight", "4.weight"]
    assert not list(masked_tensors(net))
    assert isinstance(net[0].weight, nn.Parameter)
    assert torch.allclose(net(x), y)
    assert abs(float((net[0].weight == 0).float().mean()) - 0.6) < 1 / net[0].weight.numel() + 1e-9


def test_compile_keeps_masks(gen):
    net = _mlp(gen)
    sparsify(net, sparsity=0.5)
    x = torch.randn(8, 64, generator=gen)
    compiled = torch.compile(net, backend="eager")
    assert torch.allclose(compiled(x), net(x))
    compiled(x).sum().backward()
    e = next(masked_tensors(net))
    assert (e.original.grad[~e.mask] == 0).all()


@pytest.mark.slow
def test_compile_inductor_keeps_masks(gen):
    net = _mlp(gen)
    sparsify(net, sparsity=0.5)
    x = torch.randn(8, 64, generator=gen)
    assert torch.allclose(torch.compile(net)(x), net(x), atol=1e-6)


def test_synflow_needs_no_data_and_is_iterative(gen):
    net = _cnn(gen)
    sparsify(net, sparsity=0.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sc = synflow_scores(net, (1, 8, 8))
    assert all((v >= 0).all() for v in sc.values())
    # the scoring itself left the model untouched
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    summary = synflow_prune(net, 0.9, (1, 8, 8), iterations=10)
    assert abs(summary.global_density - 0.1) < 1e-3
    # no layer collapses (SynFlow's point: avoid layer collapse)
    assert all(d > 0 for d in summary.densities.values())


def test_snip_and_grasp_scores(gen):
    net = _mlp(gen)
    sparsify(net, sparsity=0.0)
    x, y = torch.randn(64, 64, generator=gen), torch.randint(0, 10, (64,), generator=gen)

    def loss(m):
        return nn.functional.cross_entropy(m(x), y)

    sn = snip_scores(net, loss)
    w = net[0].weight.detach()
    g = torch.autograd.grad(loss(net), net[0].parametrizations.weight.original)[0]
    assert torch.allclose(sn["0.weight"], (g * w).abs())
    gr = grasp_scores(net, loss)
    assert gr["0.weight"].shape == w.shape and torch.isfinite(gr["0.weight"]).all()
    prune(net, 0.8, score=gr)
    assert abs(density(net).global_density - 0.2) < 1e-2


def test_cubic_schedule_values_and_errors():
    sch = Cubic(0.9, start=10, end=110, frequency=10)
    assert sch.sparsity_at(0) == 0.0 and sch.sparsity_at(110) == pytest.approx(0.9)
    assert sch.sparsity_at(60) == pytest.approx(0.9 * (1 - 0.5**3))
    assert sch.is_update_step(10) and sch.is_update_step(20) and not sch.is_update_step(15)
    vals = [sch.sparsity_at(t) for t in range(0, 120)]
    assert all(b >= a for a, b in zip(vals, vals[1:], strict=False))
    with pytest.raises(ValueError, match="ends? before it starts"):
        Cubic(0.9, start=100, end=50)
    with pytest.raises(ValueError, match="`sparsity`"):
        Cubic(1.0, start=0, end=10)
    it = Iterative(0.875, rounds=3, every=5)
    assert [round(it.sparsity_at(t), 6) for t in (0, 5, 10, 100)] == [0.5, 0.75, 0.875, 0.875]
    assert OneShot(0.5, 3).is_update_step(3)


def test_gradual_pruner_reaches_target_with_movement_scores(gen):
    net = _mlp(gen)
    sparsify(net, sparsity=0.0)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    mv = MovementScores(net)
    pruner = GradualPruner(net, Cubic(0.8, start=0, end=40, frequency=10), score=mv).attach(opt)
    x, y = torch.randn(32, 64, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    for _ in range(45):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        mv.update()
        opt.step()
    assert [t for t, _ in pruner.history] == [0, 10, 20, 30, 40]
    assert abs(density(net).global_density - 0.2) < 1e-2
    ss = [s for _, s in pruner.history]
    assert all(b > a for a, b in zip(ss, ss[1:], strict=False))


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan")])
def test_bad_sparsity_rejected_before_change(gen, bad):
    net = _mlp(gen)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match="`sparsity`"):
        sparsify(net, sparsity=bad)
    assert not list(masked_tensors(net))
    assert set(net.state_dict()) == set(before)


def test_targets_matching_nothing_rejected_before_change(gen):
    net = _mlp(gen)
    with pytest.raises(ValueError, match="`targets`.*matches no"):
        sparsify(net, targets=("attn",), sparsity=0.5)
    with pytest.raises(ValueError, match="`targets`"):
        sparsify(net, targets="conv.*", sparsity=0.5)
    assert not list(masked_tensors(net))
    with pytest.raises(ValueError, match="`allocation`"):
        sparsify(net, sparsity=0.5, allocation="nope")
    with pytest.raises(ValueError, match="`score`"):
        sparsify(net, sparsity=0.5, score="taylor")
    assert not list(masked_tensors(net))
