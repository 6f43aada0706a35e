"""scikit-learn conformance and behaviour of TimeSeriesClassifier.

All of scikit-learn's common checks run. They pass 2-D tabular data, read here
as univariate series of length n_features; z-normalising a 2-point "series"
keeps only the sign of x1 - x2, so the checks run with ``normalize=False``
(the review's normalisation is tested below on real series). Epochs are cut
to keep the suite fast; ``check_classifiers_train`` (accuracy > 0.83 on
blobs) needs ten.
"""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sciprob.learning.tsc import TimeSeriesClassifier, load_ucr
from sciprob.learning.tsc.data import aeon_data_dir

_SLOW_CHECKS = {"check_classifiers_train"}


def _checked():
    return [TimeSeriesClassifier(epochs=10, normalize=False, random_state=0)]


@parametrize_with_checks(_checked())
def test_sklearn_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    if name not in _SLOW_CHECKS:
        estimator.set_params(epochs=2)
    check(estimator)


def test_fit_predict_on_three_d_series_with_string_labels():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 40)
    y = np.array(["sine", "square"] * 15)
    base = np.where((y == "sine")[:, None], np.sin(8 * t), np.sign(np.sin(8 * t)))
    X = np.stack([base, -base], axis=1) * 5 + 3 + 0.2 * rng.normal(size=(30, 2, 40))  # normalised away
    clf = TimeSeriesClassifier("fcn", epochs=15, normalize=True, random_state=0).fit(X, y)
    assert clf.input_shape_ == (2, 40) and list(clf.classes_) == ["sine", "square"]
    proba = clf.predict_proba(X)
    assert proba.shape == (30, 2)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert clf.score(X, y) >= 0.9
    again = TimeSeriesClassifier("fcn", epochs=15, normalize=True, random_state=0).fit(X, y)
    np.testing.assert_allclose(again.predict_proba(X), proba, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(aeon_data_dir() is None, reason="aeon's GunPoint is needed")
def test_gunpoint_end_to_end():
    train, test = load_ucr("GunPoint", "train"), load_ucr("GunPoint", "test")
    # FCN after 40 of the review's 2000 epochs depends on its initialisation (seed 0: 0.75, 1: 0.99,
    # 2: 0.97), so the claim is about the average over three seeds
    scores = [
        TimeSeriesClassifier("fcn", epochs=40, random_state=seed)
        .fit(train.to_array(), train.labels)
        .score(test.to_array(), test.labels)
        for seed in range(3)
    ]
    assert np.mean(scores) >= 0.85, scores


def test_bad_parameters_and_shapes():
    X, y = np.zeros((6, 1, 10)), np.array([0, 1] * 3)
    with pytest.raises(ValueError, match="`model` must be one of"):
        TimeSeriesClassifier("transformer").fit(X, y)
    with pytest.raises(ValueError, match="`normalize`"):
        TimeSeriesClassifier(normalize="yes").fit(X, y)
    with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
        TimeSeriesClassifier(epochs=0).fit(X, y)
    clf = TimeSeriesClassifier(epochs=1).fit(X + np.arange(10), y)
    with pytest.raises(ValueError, match="fitted on"):
        clf.predict(np.zeros((2, 1, 12)))
