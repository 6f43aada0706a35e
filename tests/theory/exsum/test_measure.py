"""The KDE explanation measure: total mass 1, agreement with scipy's KDE, point mass at zero."""

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import gaussian_kde

from sciprob.theory.exsum import Intervals, KDEMeasure


@pytest.fixture
def sample():
    rng = np.random.default_rng(0)
    e = np.concatenate([rng.normal(0.3, 0.2, 300), rng.normal(-0.5, 0.1, 100)])
    w = rng.uniform(0.1, 1.0, e.size)
    return e, w


def test_measure_integrates_to_one(sample):
    e, w = sample
    m = KDEMeasure(e, w)
    assert m.interval_measure(-np.inf, np.inf) == pytest.approx(1.0, abs=1e-12)
    assert m.interval_measure(e.min() - 1, e.max() + 1) == pytest.approx(1.0, abs=1e-12)
    total, _ = integrate.quad(m.pdf, *m.support, limit=200)
    assert total == pytest.approx(1.0, abs=1e-7)


def test_matches_truncated_weighted_scipy_kde(sample):
    e, w = sample
    m = KDEMeasure(e, w, grid=4000)
    kde = gaussian_kde(e, weights=w / w.sum())
    norm = kde.integrate_box_1d(e.min(), e.max())
    for lo, hi in [(-0.6, -0.4), (0.0, 0.35), (-2.0, 0.1), (0.5, 5.0)]:
        ref = kde.integrate_box_1d(max(lo, e.min()), min(hi, e.max())) / norm
        assert m.interval_measure(lo, hi) == pytest.approx(ref, abs=2e-6)


def test_zero_point_mass(sample):
    e, w = sample
    e = e.copy()
    e[:50] = 0.0
    m = KDEMeasure(e, w, zero_mass=True)
    p0 = w[:50].sum() / w.sum()
    assert m.zero_pmf == pytest.approx(p0, abs=1e-12)
    assert m.interval_measure(-np.inf, np.inf) == pytest.approx(1.0, abs=1e-12)
    assert m.interval_measure(0.0, 0.0) == pytest.approx(p0, abs=1e-12)
    just_above = m.measure(Intervals.simple(1e-9, np.inf))[0]
    assert just_above + m.interval_measure(-np.inf, -1e-9) + p0 == pytest.approx(1.0, abs=1e-6)
    total, _ = integrate.quad(m.pdf, *m.support, limit=200)
    assert total == pytest.approx(1.0 - p0, abs=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"explanations": np.array([])}, "empty"),
        ({"explanations": np.array([0.1, np.nan])}, "NaN"),
        ({"explanations": np.array([0.1, 0.2]), "weights": np.array([1.0, -1.0])}, "weights"),
        ({"explanations": np.array([0.0, 0.0, 0.3]), "zero_mass": True}, "two distinct"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KDEMeasure(**kwargs)
