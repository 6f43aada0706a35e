"""Empirical NTK: the two implementations agree with each other and a naive loop; kernel statistics."""

import pytest
import torch
from torch import nn

from sciprob.theory.linearisation import empirical_ntk, kernel_distance, kernel_target_alignment

IMPLEMENTATIONS = ("jacobian-contraction", "ntk-vector-products")


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 16, 4)
    ).double()


def _naive_ntk(model, x1, x2):
    """Reference: per example, per output, one autograd backward; then dot products."""
    params = list(model.parameters())

    def jac(x):
        rows = []
        for i in range(x.shape[0]):
            out = model(x[i : i + 1]).reshape(-1)
            rows.append(
                torch.stack(
                    [
                        torch.cat([g.reshape(-1) for g in torch.autograd.grad(o, params, retain_graph=True)])
                        for o in out
                    ]
                )
            )
        return torch.stack(rows)  # (N, O, P)

    return torch.einsum("naf,mbf->nmab", jac(x1), jac(x2))


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(7, 1, 8, 8, generator=g, dtype=torch.float64), torch.randn(
        5, 1, 8, 8, generator=g, dtype=torch.float64
    )


@pytest.mark.parametrize("chunk", [None, 3])
def test_both_implementations_match_the_naive_loop(data, chunk):
    x1, x2 = data
    net = _cnn()
    ref = _naive_ntk(net, x1, x2)
    for impl in IMPLEMENTATIONS:
        full = empirical_ntk(net, x1, x2, implementation=impl, outputs="full", chunk_size=chunk)
        trace = empirical_ntk(net, x1, x2, implementation=impl, outputs="trace", chunk_size=chunk)
        assert full.shape == (7, 5, 4, 4) and trace.shape == (7, 5)
        assert torch.allclose(full, ref, rtol=1e-5, atol=1e-5), impl
        assert torch.allclose(trace, ref.diagonal(dim1=2, dim2=3).sum(-1), rtol=1e-5, atol=1e-5), impl


def test_implementations_agree_in_float32_and_are_symmetric_psd(data):
    x = data[0].float()
    net = _cnn().float()
    kernels = {
        i: empirical_ntk(net, x, implementation=i, outputs="full", chunk_size=4) for i in IMPLEMENTATIONS
    }
    a, b = kernels.values()
    scale = a.abs().max()
    assert ((a - b).abs().max() / scale).item() < 1e-5
    for k in (a, b):
        n, o = k.shape[0], k.shape[2]
        gram = k.permute(0, 2, 1, 3).reshape(n * o, n * o).double()  # (N·O, N·O)
        assert torch.allclose(gram, gram.T, atol=1e-5 * scale)
        assert torch.linalg.eigvalsh((gram + gram.T) / 2).min() > -1e-5 * scale
        tr = k.diagonal(dim1=2, dim2=3).sum(-1).double()
        assert torch.allclose(tr, tr.T, atol=1e-5 * scale)
        assert torch.linalg.eigvalsh((tr + tr.T) / 2).min() > -1e-5 * scale


def test_kernel_at_given_params_and_rejections(data):
    x = data[0]
    net = _cnn()
    moved = {n: p.detach() * 1.5 for n, p in net.named_parameters()}
    k0, k1 = empirical_ntk(net, x), empirical_ntk(net, x, params=moved)
    assert kernel_distance(k0, k1) > 1e-4
    with pytest.raises(ValueError, match="`implementation`"):
        empirical_ntk(net, x, implementation="structured")
    with pytest.raises(ValueError, match="`outputs`"):
        empirical_ntk(net, x, outputs="diagonal")
    with pytest.raises(ValueError, match="`chunk_size`"):
        empirical_ntk(net, x, chunk_size=0)
    with pytest.raises(ValueError, match="differ in shape"):
        empirical_ntk(net, x, torch.randn(2, 1, 4, 4, dtype=torch.float64))
    bn = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), nn.BatchNorm1d(4))
    with pytest.raises(NotImplementedError, match="BatchNorm"):
        empirical_ntk(bn, x.float())


def test_kernel_distance_and_alignment_reference_values():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=g)
    k = a @ a.T
    assert kernel_distance(k, 3.0 * k) == pytest.approx(0.0, abs=1e-12)
    assert kernel_distance(k, -k) == pytest.approx(2.0, abs=1e-12)
    assert 0 < kernel_distance(k, torch.eye(6)) < 1
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    y = nn.functional.one_hot(labels).double()
    assert kernel_target_alignment(y @ y.T, labels) == pytest.approx(1.0)
    assert kernel_target_alignment(y @ y.T, labels, centered=False) == pytest.approx(1.0)
    # a constant kernel is perfectly uninformative once centred
    with pytest.raises(ValueError, match="zero"):
        kernel_target_alignment(torch.ones(6, 6), labels)
    with pytest.raises(ValueError, match="same shape|one shape"):
        kernel_distance(k, k[:3, :3])
    with pytest.raises(ValueError, match="square"):
        kernel_target_alignment(torch.ones(6, 6, 2, 2), labels)
    with pytest.raises(ValueError, match="`targets`"):
        kernel_target_alignment(k, labels[:4])
