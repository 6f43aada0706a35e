"""State evolution: closed forms, the sign channel's limits, mutual information, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sciprob.theory.teacher_student import (
    NoisyLinearChannel,
    ReLUChannel,
    SignChannel,
    make_channel,
    noisy_linear_mse,
    state_evolution,
)

ALPHAS = np.array([0.05, 0.3, 0.8, 1.0, 1.2, 2.0, 5.0, 20.0])


@pytest.mark.parametrize("noise", [0.01, 0.1, 0.5, 2.0])
def test_noisy_linear_matches_closed_form(noise):
    se = state_evolution(NoisyLinearChannel(noise), ALPHAS)
    m = noisy_linear_mse(ALPHAS, noise)
    assert se.converged.all()
    # m = 1 - q is the weight MSE and solves m^2 + (Delta + alpha - 1) m - Delta = 0
    np.testing.assert_allclose(m**2 + (noise + ALPHAS - 1) * m - noise, 0.0, atol=1e-14)
    np.testing.assert_allclose(se.mse, m, rtol=0, atol=1e-8)
    np.testing.assert_allclose(se.gen_error, noise + m, rtol=0, atol=1e-8)


def test_gain_gives_the_rescaled_closed_form():
    # y = g z + sqrt(D) xi is y/g = z + sqrt(D/g^2) xi: same weight MSE, label error scaled by g^2
    g, noise = 0.65, 0.14
    se = state_evolution(NoisyLinearChannel(noise, gain=g), ALPHAS)
    m = noisy_linear_mse(ALPHAS, noise / g**2)
    np.testing.assert_allclose(se.mse, m, atol=1e-8)
    np.testing.assert_allclose(se.gen_error, noise + g**2 * m, atol=1e-8)


def test_linear_mutual_information_matches_finite_d_log_det():
    # I(w; Y | X) = 1/2 E log det(I + X X^T / (d Delta)) for the Gaussian linear model
    d, noise, alpha = 300, 0.2, 1.5
    rng = np.random.default_rng(0)
    vals = []
    for _ in range(3):
        X = rng.standard_normal((int(alpha * d), d))
        eig = np.linalg.eigvalsh(X.T @ X / d)
        vals.append(0.5 * np.sum(np.log1p(eig / noise)) / d)
    se = state_evolution(NoisyLinearChannel(noise), alpha)
    assert se.mutual_info[0] == pytest.approx(np.mean(vals), abs=5e-3)


def test_sign_channel_limits():
    alphas = np.array([1e-6, 1e-3, 0.1, 0.5, 1, 2, 5, 10, 100, 1000])
    se = state_evolution(SignChannel(), alphas)
    assert se.converged.all()
    assert se.gen_error[0] == pytest.approx(0.5, abs=1e-3)
    # small alpha: q ~ 2 alpha / pi, so 0.5 - eps ~ sqrt(q) / pi
    assert (0.5 - se.gen_error[0]) * math.pi / math.sqrt(2e-6 / math.pi) == pytest.approx(1.0, rel=1e-2)
    assert np.all(np.diff(se.gen_error) < 0)
    # Bayes-optimal perceptron: alpha * eps -> 0.442 (Opper & Haussler 1991)
    assert alphas[-1] * se.gen_error[-1] == pytest.approx(0.442, abs=2e-3)
    assert np.all(np.diff(se.mutual_info) > 0)
    # noiseless labels: I/d <= alpha ln 2 (one bit per label at most)
    assert np.all(se.mutual_info <= alphas * math.log(2) + 1e-12)


def test_sign_channel_with_flips_and_preactivation_noise():
    flip = state_evolution(SignChannel(flip=0.1), [1e-6, 1.0, 1e4])
    assert flip.gen_error[0] == pytest.approx(0.5, abs=1e-3)
    assert flip.gen_error[-1] == pytest.approx(0.1, abs=5e-3)  # cannot beat the flip rate
    noisy = state_evolution(SignChannel(noise=0.5), [1e4])
    bayes = math.acos(1 / math.sqrt(1.5)) / math.pi  # error of sign(z) against sign(z + noise)
    assert noisy.gen_error[0] == pytest.approx(bayes, abs=5e-3)


def test_relu_channel_is_sane():
    se = state_evolution(ReLUChannel(0.1, n_nodes=48), [0.2, 1.0, 4.0])
    assert se.converged.all()
    assert np.all(np.diff(se.gen_error) < 0) and np.all(np.diff(se.mutual_info) > 0)
    # below the prior-mean predictor's error Delta + Var(relu(z)) and above the noise floor
    assert np.all(se.gen_error < 0.1 + 0.5 - 1 / (2 * math.pi)) and np.all(se.gen_error > 0.1)


def test_convergence_report_flags_non_convergence():
    se = state_evolution(SignChannel(), [0.5, 2.0], max_iter=3)
    assert not se.converged.any()
    assert "NOT converged" in se.convergence_report()


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        state_evolution(SignChannel(), [1.0, alpha])


@pytest.mark.parametrize("noise", [float("nan"), float("inf"), -0.1])
def test_bad_noise(noise):
    for name in ("linear", "relu", "sign"):
        with pytest.raises(ValueError, match="noise"):
            make_channel(name, noise=noise)
    with pytest.raises(ValueError, match="noise"):
        NoisyLinearChannel(0.0)


def test_unknown_channel_and_bad_flip():
    with pytest.raises(ValueError, match="unknown channel 'probit'"):
        make_channel("probit", noise=0.1)
    with pytest.raises(ValueError, match="flip"):
        SignChannel(flip=0.5)
    with pytest.raises(ValueError, match="damping"):
        state_evolution(SignChannel(), 1.0, damping=1.0)
