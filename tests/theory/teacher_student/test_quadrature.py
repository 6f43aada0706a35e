"""Gauss-Hermite rules and the channels' Gaussian expectations against adaptive quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import dblquad, quad
from scipy.special import log_ndtr, ndtr

from sciprob.theory.teacher_student import ReLUChannel, SignChannel, gauss_hermite, gaussian_expectation


def test_gauss_hermite_moments():
    t, w = gauss_hermite(20)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    for k in range(0, 39, 2):  # even moments (k-1)!!, exact up to degree 2n - 1 = 39
        assert np.sum(w * t**k) == pytest.approx(math.prod(range(k - 1, 0, -2)), rel=1e-10)
    np.testing.assert_allclose(t, -t[::-1], atol=1e-12)  # odd moments vanish by symmetry
    assert gaussian_expectation(np.cos) == pytest.approx(math.exp(-0.5), rel=1e-12)
    # a peak of width k = 1e-3: the plain rule misses it, the rescaled one is exact
    k = 1e-3
    exact = k / math.sqrt(1 + k**2)
    peak = lambda x: np.exp(-0.5 * x**2 / k**2)  # noqa: E731
    assert abs(gaussian_expectation(peak) / exact - 1) > 0.1
    assert gaussian_expectation(peak, scale=exact) == pytest.approx(exact, rel=1e-12)
    with pytest.raises(ValueError, match="nodes"):
        gauss_hermite(1000)


def _split_quad(f, k):
    pieces = [(-np.inf, -40 * k), (-40 * k, 0.0), (0.0, 40 * k), (40 * k, np.inf)]
    return sum(quad(f, a, b, epsabs=1e-15, epsrel=1e-12, limit=400)[0] for a, b in pieces)


@pytest.mark.parametrize("ch", [SignChannel(), SignChannel(flip=0.1), SignChannel(noise=0.3)])
@pytest.mark.parametrize("q", [0.3, 0.99, 1 - 1e-6])
def test_sign_expectations_match_adaptive_quadrature(ch, q):
    s2 = 1 - q + ch.noise
    eps = ch.flip

    def fisher(xi):
        tot = 0.0
        for y in (1, -1):
            u = y * math.sqrt(q) * xi / math.sqrt(s2)
            log_z = np.logaddexp(math.log(eps) if eps else -np.inf, math.log(1 - 2 * eps) + log_ndtr(u))
            tot += (1 - 2 * eps) ** 2 / s2 * math.exp(-u * u - math.log(2 * math.pi) - log_z)
        return tot * math.exp(-xi * xi / 2) / math.sqrt(2 * math.pi)

    def psi(xi):
        tot = 0.0
        for y in (1, -1):
            z = eps + (1 - 2 * eps) * ndtr(y * math.sqrt(q) * xi / math.sqrt(s2))
            tot += z * math.log(z) if z > 0 else 0.0
        return tot * math.exp(-xi * xi / 2) / math.sqrt(2 * math.pi)

    k = math.sqrt(s2 / q)
    assert ch.fisher(np.array([q]))[0] == pytest.approx(_split_quad(fisher, k), rel=1e-10)
    assert ch.psi_out(np.array([q]))[0] == pytest.approx(_split_quad(psi, k), rel=1e-10, abs=1e-13)


def test_relu_z_out_and_fisher_match_direct_integration():
    ch = ReLUChannel(0.1)
    y, om, V = 0.4, -0.3, 0.5
    z_ref = quad(
        lambda w: (
            math.exp(-w * w / 2 - (y - max(om + math.sqrt(V) * w, 0)) ** 2 / 0.2)
            / (2 * math.pi * math.sqrt(0.1))
        ),
        -np.inf,
        np.inf,
        epsabs=1e-13,
    )[0]
    log_z, g = ch._parts(np.array(y), np.array(om), V)
    assert math.exp(log_z) == pytest.approx(z_ref, rel=1e-7)
    h = 1e-6
    fd = (ch._parts(np.array(y), np.array(om + h), V)[0] - ch._parts(np.array(y), np.array(om - h), V)[0]) / (
        2 * h
    )
    assert g == pytest.approx(fd, rel=1e-6)

    q = 0.5

    def integrand(yy, xi):
        lz, gg = ch._parts(np.array(yy), np.array(math.sqrt(q) * xi), 1 - q)
        return math.exp(-xi * xi / 2 + lz) / math.sqrt(2 * math.pi) * gg * gg

    ref = dblquad(integrand, -8, 8, -5, 9, epsabs=1e-9, epsrel=1e-8)[0]
    assert ch.fisher(np.array([q]))[0] == pytest.approx(ref, rel=1e-5)
