"""GAMP on finite d against state evolution and against the exact posterior mean."""

from __future__ import annotations

import numpy as np
import pytest

from sciprob.theory.teacher_student import NoisyLinearChannel, SignChannel, gamp, sample_glm, state_evolution


def test_sign_gamp_at_d2000_matches_state_evolution():
    rng = np.random.default_rng(0)
    ch = SignChannel()
    d = 2000
    for alpha in (0.5, 1.5, 3.0):
        data = sample_glm(ch, int(alpha * d), d, rng)
        res = gamp(data.X, data.y, ch, w_star=data.w_star, max_iter=60)
        se = state_evolution(ch, alpha)
        assert res.converged
        assert abs(res.gen_error[-1] - se.gen_error[0]) < 0.01, alpha
        # per iteration, GAMP follows its state-evolution trajectory
        assert np.max(np.abs(res.overlap - res.se_q)) < 0.03
        assert res.se_q[-1] == pytest.approx(se.q[0], abs=1e-4)


def test_linear_gamp_is_the_exact_posterior_mean():
    rng = np.random.default_rng(1)
    noise, d = 0.1, 300
    ch = NoisyLinearChannel(noise)
    data = sample_glm(ch, 450, d, rng)
    F = data.X / np.sqrt(d)
    w_ridge = np.linalg.solve(F.T @ F + noise * np.eye(d), F.T @ data.y)
    res = gamp(data.X, data.y, ch, w_star=data.w_star, max_iter=200)
    np.testing.assert_allclose(res.w_hat, w_ridge, atol=1e-4)


def test_gamp_bad_input():
    ch = SignChannel()
    with pytest.raises(ValueError, match="shape"):
        gamp(np.zeros((5, 3)), np.ones(4), ch)
    with pytest.raises(ValueError, match="finite"):
        gamp(np.full((5, 3), np.nan), np.ones(5), ch)
    with pytest.raises(ValueError, match="w_star"):
        gamp(np.zeros((5, 3)), np.ones(5), ch, w_star=np.ones(2))
