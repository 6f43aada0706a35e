import numpy as np
import pytest

from sciprob.learning.reweighting import check_clean_set, clean_split, corrupt_labels


@pytest.mark.parametrize("kind", ["flip", "pair"])
@pytest.mark.parametrize("rate", [0.0, 0.2, 0.4, 0.6])
def test_flip_and_pair_reach_the_requested_rate(kind, rate):
    y = np.repeat(np.arange(10), 137)
    noisy = corrupt_labels(y, rate, kind=kind, rng=np.random.default_rng(1))
    assert noisy.rate == pytest.approx(round(rate * y.size) / y.size, abs=1e-12)
    assert np.array_equal(noisy.noisy, noisy.labels != y)
    if kind == "pair":
        assert np.all(noisy.labels[noisy.noisy] == (y[noisy.noisy] + 1) % 10)


def test_uniform_noise_has_the_official_semantics():
    # a share p is redrawn over all K classes, so about p (K-1)/K labels change
    y = np.repeat(np.arange(10), 1000)
    noisy = corrupt_labels(y, 0.4, kind="uniform", rng=np.random.default_rng(2))
    assert noisy.rate == pytest.approx(0.4 * 9 / 10, abs=0.01)  # binomial sd of the rate ~0.002
    # the redrawn labels are uniform over the other classes too
    counts = np.bincount((noisy.labels[noisy.noisy] - y[noisy.noisy]) % 10, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 0.8 * counts[1:].mean()


def test_noise_is_seeded_and_leaves_the_input_alone():
    y = np.repeat(np.arange(5), 40)
    before = y.copy()
    a = corrupt_labels(y, 0.3, kind="flip", rng=7)
    b = corrupt_labels(y, 0.3, kind="flip", rng=7)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(y, before)


def test_clean_set_is_balanced_disjoint_and_untouched_by_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, size=600)
    meta, train = clean_split(y, 4, rng=rng)
    assert np.intersect1d(meta, train).size == 0 and meta.size + train.size == y.size
    assert np.array_equal(np.bincount(y[meta], minlength=6), np.full(6, 4))
    y_noisy = y.copy()
    y_noisy[train] = corrupt_labels(y[train], 0.6, kind="flip", n_classes=6, rng=rng).labels
    assert np.array_equal(y_noisy[meta], y[meta])  # the clean set keeps its true labels
    assert np.mean(y_noisy[train] != y[train]) == pytest.approx(0.6, abs=1 / train.size)
    check_clean_set(y[meta], 6, meta_idx=meta, train_idx=train)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), True])
def test_bad_rate_is_refused(rate):
    with pytest.raises(ValueError, match="`rate`"):
        corrupt_labels(np.arange(10) % 3, rate)


def test_bad_clean_sets_are_refused():
    with pytest.raises(ValueError, match=r"no example of classes \[2\]"):
        check_clean_set(np.array([0, 1, 1, 0]), 3)
    with pytest.raises(ValueError, match="share 1 examples"):
        check_clean_set(np.array([0, 1]), 2, meta_idx=np.array([3, 4]), train_idx=np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="too few for `per_class`"):
        clean_split(np.array([0, 0, 0, 1]), 1)
    with pytest.raises(ValueError, match="`kind`"):
        corrupt_labels(np.arange(4) % 2, 0.1, kind="asym")
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        corrupt_labels(np.array([0, 1, 5]), 0.1, n_classes=2)
