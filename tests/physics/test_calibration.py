"""Split-conformal scaling of Gaussian bands, coverage curves and the Gaussian NLL."""

import math

import numpy as np
import pytest
import torch

from sciprob.physics.calibration import conformal_scale, coverage_curve, gaussian_nll


def _draws(n, true_scale, seed):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(n, 50, generator=g, dtype=torch.float64)
    std = 0.1 + torch.rand(n, 50, generator=g, dtype=torch.float64)
    truth = mean + true_scale * std * torch.randn(n, 50, generator=g, dtype=torch.float64)
    return truth, mean, std


@pytest.mark.parametrize("true_scale", [0.3, 1.0, 4.0])
def test_scale_recovers_the_true_spread_and_covers_new_values(true_scale):
    truth, mean, std = _draws(20, true_scale, seed=1)
    s = conformal_scale(truth, mean, std, level=0.95)
    assert s == pytest.approx(true_scale, rel=0.1)
    t2, m2, s2 = _draws(200, true_scale, seed=2)  # new exchangeable values
    coverage = coverage_curve(t2, m2, s * s2, np.array([0.5, 0.95]))
    assert coverage[1] == pytest.approx(0.95, abs=0.01)
    assert coverage[0] == pytest.approx(0.5, abs=0.02)  # one factor fixes every level for Gaussian errors


def test_dirichlet_entries_with_zero_std_are_left_out():
    truth, mean, std = _draws(10, 2.0, seed=3)
    std[:, :5] = 0.0
    truth[:, :5] = mean[:, :5]
    s = conformal_scale(truth, mean, std)
    assert s == pytest.approx(conformal_scale(truth[:, 5:], mean[:, 5:], std[:, 5:]))
    assert math.isfinite(gaussian_nll(truth, mean, std))


def test_nll_matches_torch_normal_and_improves_with_the_right_scale():
    truth, mean, std = _draws(30, 3.0, seed=4)
    expected = -torch.distributions.Normal(mean, std).log_prob(truth).mean().item()
    assert gaussian_nll(truth, mean, std) == pytest.approx(expected, rel=1e-12)
    assert gaussian_nll(truth, mean, 3.0 * std) < gaussian_nll(truth, mean, std)


def test_bad_input_is_named():
    truth, mean, std = _draws(2, 1.0, seed=5)
    with pytest.raises(ValueError, match="`level`"):
        conformal_scale(truth, mean, std, level=1.5)
    with pytest.raises(ValueError, match="one shape"):
        conformal_scale(truth, mean[:1], std)
    with pytest.raises(ValueError, match="zero everywhere"):
        conformal_scale(truth, mean, torch.zeros_like(std))
