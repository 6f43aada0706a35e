import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
from scipy import stats

from sciprob.learning.tsc import average_ranks, compare_classifiers, holm, plot_critical_difference


def test_average_ranks_with_ties():
    scores = np.array([[0.9, 0.8, 0.8], [0.7, 0.9, 0.5]])
    np.testing.assert_allclose(average_ranks(scores), [(1 + 2) / 2, (2.5 + 1) / 2, (2.5 + 3) / 2])
    with pytest.raises(ValueError, match="`scores`"):
        average_ranks(np.array([1.0, 2.0]))


def test_holm_step_down():
    # sorted p = .01, .02, .03, .5 against .05/4, .05/3, .05/2, .05/1:
    # the second fails, so only the first is rejected
    np.testing.assert_array_equal(holm(np.array([0.03, 0.01, 0.5, 0.02])), [False, True, False, False])
    np.testing.assert_array_equal(holm(np.array([0.001, 0.004, 0.02])), [True, True, True])


def test_compare_finds_the_clear_winner_and_groups_the_rest():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.8, size=20)
    scores = np.stack([base + 0.15, base + rng.normal(0, 0.01, 20), base + rng.normal(0, 0.01, 20)], axis=1)
    cmp = compare_classifiers(scores, ["best", "a", "b"])
    assert cmp.average_ranks[0] == 1.0
    assert cmp.friedman_p == pytest.approx(stats.friedmanchisquare(*scores.T).pvalue)
    assert cmp.friedman_p < 1e-5
    sig = {(t.first, t.second): t.significant for t in cmp.pairwise}
    assert sig[("best", "a")] and sig[("best", "b")] and not sig[("a", "b")]
    assert cmp.cliques == [sorted(["a", "b"], key=lambda n: cmp.average_ranks[cmp.names.index(n)])]
    fig = plot_critical_difference(cmp)
    assert fig.axes


def test_identical_classifiers_form_one_clique():
    scores = np.tile([[0.9], [0.8], [0.7]], (1, 3))
    cmp = compare_classifiers(scores, ["x", "y", "z"])
    assert np.isnan(cmp.friedman_p)
    assert cmp.cliques == [["x", "y", "z"]]
