"""Gaussian-equivalence coefficients against closed forms, and the equivalent GLM."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sciprob.theory.teacher_student import (
    NoisyLinearChannel,
    SignChannel,
    closed_form_coefficients,
    equivalence_coefficients,
    equivalent_glm,
    state_evolution,
)


@pytest.mark.parametrize("activation", ["relu", "erf", "sign", "identity"])
@pytest.mark.parametrize("r", [1.0, 0.3, 2.5])
def test_numerical_coefficients_match_closed_forms(activation, r):
    num = equivalence_coefficients(activation, r)
    ref = closed_form_coefficients(activation, r)
    np.testing.assert_allclose(num, ref, rtol=1e-9, atol=1e-10)


def test_known_values_at_unit_variance():
    # (kappa0, kappa1, kappa*) at r = 1, as tabulated by Cui, Krzakala & Zdeborova (2023)
    table = {
        "relu": (1 / math.sqrt(2 * math.pi), 0.5, math.sqrt((math.pi - 2) / (4 * math.pi))),
        "erf": (0.0, 2 / math.sqrt(3 * math.pi), 0.200364),
        "tanh": (0.0, 0.605706, 0.165576),
        "sign": (0.0, math.sqrt(2 / math.pi), math.sqrt(1 - 2 / math.pi)),
        "identity": (0.0, 1.0, 0.0),
    }
    for name, ref in table.items():
        np.testing.assert_allclose(equivalence_coefficients(name), ref, atol=1e-6)


def test_callable_activation_and_errors():
    c = equivalence_coefficients(lambda h: h**2 - 1)  # pure second Hermite: no linear part
    np.testing.assert_allclose(c, (0.0, 0.0, math.sqrt(2)), atol=1e-9)
    with pytest.raises(ValueError, match="unknown activation 'softsign'"):
        equivalence_coefficients("softsign")
    with pytest.raises(ValueError, match="`r`"):
        equivalence_coefficients("erf", r=-1.0)
    with pytest.raises(ValueError, match="kappa1 = 0"):
        equivalent_glm(lambda h: h**2 - 1)
    with pytest.raises(ValueError, match="noise"):
        equivalent_glm("erf", noise=float("nan"))
    with pytest.raises(ValueError, match="output"):
        equivalent_glm("erf", output="relu")


def test_equivalent_glm_matches_the_regression_formula():
    # q_hat = alpha k1^2 / (Delta + k1^2 (1 - q) + k*^2), eps_g = k1^2 (1 - q) + k*^2 (+ Delta)
    delta, alpha = 0.1, 2.0
    glm = equivalent_glm("tanh", "linear", delta)
    k = glm.coefficients
    assert isinstance(glm.channel, NoisyLinearChannel)
    q = 0.0
    for _ in range(2000):
        q_hat = alpha * k.kappa1**2 / (delta + k.kappa1**2 * (1 - q) + k.kappa_star**2)
        q = 0.5 * q + 0.5 * q_hat / (1 + q_hat)
    se = state_evolution(glm.channel, alpha)
    assert se.q[0] == pytest.approx(q, abs=1e-10)
    assert se.gen_error[0] == pytest.approx(delta + k.kappa1**2 * (1 - q) + k.kappa_star**2, abs=1e-10)


def test_equivalent_glm_sign_output():
    glm = equivalent_glm("erf", "sign", 0.2)
    k = glm.coefficients
    assert isinstance(glm.channel, SignChannel)
    assert glm.channel.noise == pytest.approx((0.2 + k.kappa_star**2) / k.kappa1**2)
