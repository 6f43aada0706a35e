"""Captum explanations of a torch model and the FEU builders for tables and series."""

import numpy as np
import pytest
import torch
from torch import nn

from sciprob.theory.exsum import explain, series_feus, tabular_feus


@pytest.fixture
def model():
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return net


def test_integrated_gradients_completeness(model):
    x = np.random.default_rng(0).normal(size=(6, 5))
    attr = explain(model, x, target=2, method="integrated_gradients", n_steps=300)
    with torch.no_grad():
        out = model(torch.as_tensor(x, dtype=torch.float32))[:, 2] - model(torch.zeros(1, 5))[:, 2]
    # completeness: attributions sum to f(x) - f(baseline), up to the Riemann-sum error
    np.testing.assert_allclose(attr.sum(1), out.numpy(), atol=2e-3)


def test_saliency_is_the_absolute_gradient(model):
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
    grad = torch.autograd.grad(model(x)[:, 0].sum(), x)[0].abs().numpy()
    np.testing.assert_allclose(explain(model, x.detach(), target=0, method="saliency"), grad, rtol=1e-5)
    assert model.training  # the model's mode is restored


@pytest.mark.parametrize("method", ["kernel_shap", "lime"])
def test_sampling_methods_run_on_the_predicted_class(model, method):
    x = np.random.default_rng(2).normal(size=(2, 5))
    attr = explain(model, x, method=method, n_samples=40)
    assert attr.shape == (2, 5) and np.all(np.isfinite(attr)) and np.abs(attr).sum() > 0


def test_explain_rejects_bad_input(model):
    with pytest.raises(ValueError, match="`method`"):
        explain(model, np.zeros((1, 5)), method="gradcam")
    with pytest.raises(ValueError, match="NaN"):
        explain(model, np.full((1, 5), np.nan))


def test_tabular_feus():
    X = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.3]])
    A = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    d = tabular_feus(X, A, np.array([1, 0]), np.array([0.9, 0.2]), ["a", "b", "c"], feature_set=["c"])
    assert d.n == 6 and d.n_instances == 2 and d.weight.tolist() == [1 / 3] * 6
    assert d.units == ["a", "b", "c"] * 2 and d.features["in_set"].tolist() == [0, 0, 1, 0, 0, 1]
    assert d.features["value"].tolist() == X.ravel().tolist() and d.label.tolist() == [1, 1, 1, 0, 0, 0]


def test_series_feus_shape_features():
    X = np.array([[0.0, 1.0, 3.0, 2.0, 0.0]])
    cam = np.array([[0.0, 2.0, 4.0, -1.0, 0.0]])
    d = series_feus(X, cam, np.array([0]), np.array([0.8]))
    np.testing.assert_allclose(d.explanation, [0.0, 0.5, 1.0, -0.25, 0.0])
    np.testing.assert_allclose(d.features["slope"], [1.0, 1.5, 0.5, -1.5, -2.0])
    np.testing.assert_allclose(d.features["peak_distance"], [0.4, 0.2, 0.0, 0.2, 0.4])
    d2 = series_feus(X, cam, np.array([0]), np.array([0.8]), stride=2, normalise=False)
    assert d2.units == ["t=0", "t=2", "t=4"] and d2.explanation.tolist() == [0.0, 4.0, 0.0]
