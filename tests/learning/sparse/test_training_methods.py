"""Lottery tickets, dynamic sparse training, channel pruning, N:M and sparse inference."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from sciprob.learning.sparse import (
    DynamicSparseTraining,
    LotteryTicket,
    SparseLinear,
    accuracy_per_parameter,
    apply_nm,
    density,
    is_nm_sparse,
    iterative_magnitude_pruning,
    masked_tensors,
    prune_channels,
    pruned_parameter_efficiency,
    remove_masks,
    sparsify,
    to_semi_structured,
    to_sparse_inference,
)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def _init(net, gen, scale=0.3):
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return net


def _mlp(gen):
    return _init(
        nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10)), gen
    )


def _cnn(gen):
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )
    _init(net, gen)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return net


def _train(net, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()


@pytest.mark.parametrize("method", ["rigl", "set"])
@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
def test_dynamic_sparse_training_keeps_count_and_resets_state(gen, method, opt_name):
    net = _mlp(gen)
    sparsify(net, sparsity=0.9, score="random", allocation="erk", generator=gen)
    counts = {e.name: int(e.mask.sum()) for e in masked_tensors(net)}
    opt = (
        torch.optim.Adam(net.parameters(), lr=1e-2)
        if opt_name == "adam"
        else torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    )
    dst = DynamicSparseTraining(
        net, opt, method=method, drop_fraction=0.3, update_every=5, end_step=40, generator=gen
    )
    x, y = torch.randn(32, 64, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    old_masks = {e.name: e.mask.clone() for e in masked_tensors(net)}
    _train(net, opt, x, y, 5)
    assert len(dst.history) == 1 and dst.history[0].changed > 0
    for e in masked_tensors(net):
        assert int(e.mask.sum()) == counts[e.name]
        grown = e.mask & ~old_masks[e.name]
        assert grown.any()
        # regrown weights start at zero with zeroed optimizer state
        assert (e.original[grown] == 0).all()
        for v in opt.state[e.original].values():
            if torch.is_tensor(v) and v.shape == e.mask.shape:
                assert (v[grown] == 0).all()
    _train(net, opt, x, y, 45)
    assert [u.step for u in dst.history] == [5, 10, 15, 20, 25, 30, 35]
    fracs = [u.drop_fraction for u in dst.history]
    assert all(b < a for a, b in zip(fracs, fracs[1:], strict=False))  # cosine decay
    for u in dst.history:
        assert u.active == sum(counts.values())
    for e in masked_tensors(net):
        assert int(e.mask.sum()) == counts[e.name]
        assert (e.module.weight[~e.mask] == 0).all()


def test_rigl_grows_where_dense_gradient_is_largest(gen):
    net = _mlp(gen)
    sparsify(net, sparsity=0.8, score="random", generator=gen)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)  # lr 0: weights fixed, gradient known
    x, y = torch.randn(32, 64, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    e = next(masked_tensors(net))
    DynamicSparseTraining(net, opt, method="rigl", drop_fraction=0.2, update_every=1, end_step=10)
    mask0 = e.mask.clone()
    with parametrize.cached():
        w = e.module.weight
        dense_grad = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), [w])[0]
    opt.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    grown = e.mask & ~mask0
    candidates = ~mask0 | (mask0 & ~e.mask)
    g = dense_grad.abs()
    k = int(grown.sum())
    assert k > 0
    # every grown position has a gradient at least as large as every candidate not grown
    assert g[grown].min() >= g[candidates & ~e.mask].max() - 1e-12


def test_dynamic_rejects_bad_input(gen):
    net = _mlp(gen)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="no masks"):
        DynamicSparseTraining(net, opt)
    sparsify(net, sparsity=0.5)
    with pytest.raises(ValueError, match="`method`"):
        DynamicSparseTraining(net, opt, method="snfs")
    with pytest.raises(ValueError, match="`optimizer` does not update"):
        DynamicSparseTraining(net, torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1))


@pytest.mark.parametrize("rewind_step", [0, 3])
def test_lottery_rewinding_restores_saved_survivors(gen, rewind_step):
    net = _mlp(gen)
    sparsify(net, sparsity=0.0)
    x, y = torch.randn(32, 64, generator=gen), torch.randint(0, 10, (32,), generator=gen)
    saved = {}

    def train(model, ticket):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(1, 9):
            _train(model, opt, x, y, 1)
            ticket.observe(step)
            if step == rewind_step or (rewind_step == 0 and not saved):
                saved.setdefault(
                    "w", {e.name: e.module.weight.detach().clone() for e in masked_tensors(model)}
                )

    if rewind_step == 0:
        saved["w"] = {e.name: e.module.weight.detach().clone() for e in masked_tensors(net)}
    ticket = LotteryTicket(net, rewind_step=rewind_step)
    train(net, ticket)
    trained = {e.name: e.module.weight.detach().clone() for e in masked_tensors(net)}
    ticket.prune_and_rewind(0.7)
    for e in masked_tensors(net):
        w = e.module.weight.detach()
        assert torch.equal(w[e.mask], saved["w"][e.name][e.mask])
        assert (w[~e.mask] == 0).all()
        assert not torch.equal(saved["w"][e.name], trained[e.name])
    assert abs(density(net).global_density - 0.3) < 1e-3


def test_iterative_magnitude_pruning_rounds(gen):
    net = _mlp(gen)
    sparsify(net, sparsity=0.0)
    x, y = torch.randn(32, 64, generator=gen), torch.randint(0, 10, (32,), generator=gen)

    def train(model, ticket):
        _train(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, 5)

    out = iterative_magnitude_pruning(net, train, sparsity=0.875, rounds=3)
    assert [round(1 - s.global_density, 3) for s in out] == [0.5, 0.75, 0.875]


def test_structured_pruning_shrinks_and_matches_masked_forward(gen):
    net = _cnn(gen).eval()
    x = torch.randn(4, 1, 16, 16, generator=gen)
    twin = copy.deepcopy(net)
    y_dense = net(x)
    s_rm = prune_channels(net, x, 0.5, mode="remove")
    s_mk = prune_channels(twin, x, 0.5, mode="mask")
    assert net(x).shape == y_dense.shape == (4, 10)
    assert net[0].out_channels == 4 and net[3].out_channels == 8 and net[8].out_features == 16
    assert s_rm.params_after < 0.4 * s_rm.params_before
    assert s_rm.macs_after < 0.5 * s_rm.macs_before
    assert s_mk.params_after == s_rm.params_after
    twin.eval()
    assert torch.allclose(net(x), twin(x), atol=1e-5)
    assert not torch.allclose(net(x), y_dense, atol=1e-3)


def test_structured_bad_input(gen):
    net = _cnn(gen)
    x = torch.randn(2, 1, 16, 16, generator=gen)
    with pytest.raises(ValueError, match="`ratio`"):
        prune_channels(net, x, 1.0)
    sparsify(net, sparsity=0.5)
    with pytest.raises(ValueError, match="already has masks"):
        prune_channels(net, x, 0.5)


def test_nm_masks_and_errors(gen):
    net = _mlp(gen)
    summary = apply_nm(net, n=2, m=4)
    assert summary.global_density == pytest.approx(0.5)
    for e in masked_tensors(net):
        assert is_nm_sparse(e.module.weight.detach(), 2, 4)
        kept = e.original.detach().abs().reshape(e.mask.shape[0], -1, 4)
        m = e.mask.reshape(kept.shape)
        assert (
            kept[m].reshape(*kept.shape[:2], 2).min(-1).values
            >= kept[~m].reshape(*kept.shape[:2], 2).max(-1).values
        ).all()
    cnn = _cnn(gen)
    state = {k: v.clone() for k, v in cnn.state_dict().items()}
    with pytest.raises(TypeError, match="nn.Linear layers only.*Conv2d"):
        apply_nm(cnn, targets=("0", "8"))
    assert not list(masked_tensors(cnn)) and set(cnn.state_dict()) == set(state)
    with pytest.raises(ValueError, match="`n` and `m`"):
        apply_nm(_mlp(gen), n=4, m=4)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            to_semi_structured(net)
        assert list(masked_tensors(net))  # nothing changed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="semi-structured kernels need CUDA")
def test_semi_structured_on_cuda(gen):
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("needs compute capability 8.0")
    net = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 64))
    _init(net, gen, 0.1)
    apply_nm(net)
    net = net.cuda().half()
    x = torch.randn(64, 128, generator=gen).cuda().half()
    ref = net(x)
    names = to_semi_structured(net)
    assert names == ["0", "2"]
    assert torch.allclose(net(x), ref, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("layout", ["csr", "bsr"])
def test_sparse_inference_matches_dense(gen, layout):
    net = _mlp(gen)
    sparsify(net, sparsity=0.95)
    x = torch.randn(7, 64, generator=gen)
    ref = net(x).detach()
    replaced = to_sparse_inference(net, min_sparsity=0.9, layout=layout, blocksize=(2, 2))
    assert replaced == ["0", "2", "4"]
    assert all(isinstance(net[i], SparseLinear) for i in (0, 2, 4))
    assert torch.allclose(net(x), ref, atol=1e-5)
    dense = _mlp(gen)
    assert to_sparse_inference(dense, min_sparsity=0.5) == []


def test_ppe_reconstruction():
    acc = {0.5: 0.97, 0.9: 0.965, 0.98: 0.90}
    assert pruned_parameter_efficiency(acc, 0.97) == pytest.approx(10.0)
    assert pruned_parameter_efficiency(acc, 0.99) == 1.0  # exact: the floor 1.0 is returned as is
    assert pruned_parameter_efficiency(acc, 0.97, tolerance=0.1) == pytest.approx(50.0)
    a = accuracy_per_parameter(acc, 0.97)
    assert 0.9 / 0.97 < a < 1.0
    with pytest.raises(ValueError, match="outside"):
        pruned_parameter_efficiency({1.0: 0.5}, 0.9)


def test_remove_masks_then_sparse_inference_keeps_function(gen):
    net = _mlp(gen)
    sparsify(net, sparsity=0.92, allocation="global")
    x = torch.randn(3, 64, generator=gen)
    ref = net(x).detach()
    remove_masks(net)
    to_sparse_inference(net, min_sparsity=0.5)
    assert torch.allclose(net(x), ref, atol=1e-5)
