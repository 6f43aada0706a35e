"""Comparing classifiers over data sets: average ranks and the critical-difference diagram.

The review follows Demšar (2006) with the change of Benavoli et al. (2016):
a Friedman test over all classifiers, then pairwise Wilcoxon signed-rank tests
whose p-values are Holm-corrected; classifiers joined by a thick bar in the
diagram are not significantly different.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairwiseTest:
    """One Wilcoxon signed-rank comparison.

    Attributes
    ----------
    first, second : str
        Classifier names.
    p_value : float
        Two-sided p-value.
    significant : bool
        Rejected by Holm's step-down procedure at the chosen ``alpha``.
    """

    first: str
    second: str
    p_value: float
    significant: bool


@dataclass(frozen=True)
class RankComparison:
    """Result of :func:`compare_classifiers`.

    Attributes
    ----------
    names : list of str
        Classifiers, in input order.
    average_ranks : ndarray of shape (n_classifiers,)
        Mean rank over data sets (1 = best, ties share the mean rank).
    friedman_p : float
        p-value of the Friedman test (NaN with fewer than three classifiers
        or two data sets).
    pairwise : list of PairwiseTest
        Holm-corrected Wilcoxon tests of every pair.
    cliques : list of list of str
        Groups of classifiers, adjacent in rank, with no significant pairwise
        difference (the diagram's bars).
    """

    names: list[str]
    average_ranks: np.ndarray
    friedman_p: float
    pairwise: list[PairwiseTest]
    cliques: list[list[str]]


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """Mean rank of each classifier; rank 1 is the highest score on a data set.

    Parameters
    ----------
    scores : ndarray of shape (n_datasets, n_classifiers)
        Accuracy (higher is better) of each classifier on each data set.

    Returns
    -------
    ndarray of shape (n_classifiers,)
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.size == 0:
        raise ValueError(
            f"`scores` must be a non-empty (n_datasets, n_classifiers) table, got shape {scores.shape}"
        )
    return stats.rankdata(-scores, axis=1).mean(axis=0)


def holm(p_values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Holm's step-down procedure: which hypotheses are rejected.

    Sort the ``m`` p-values increasingly and reject while
    ``p_(i) <= alpha / (m - i)`` (``i`` from 0); stop at the first failure.

    Parameters
    ----------
    p_values : ndarray of shape (m,)
    alpha : float, default=0.05

    Returns
    -------
    ndarray of shape (m,), bool
    """
    p = np.asarray(p_values, dtype=float)
    reject = np.zeros(len(p), dtype=bool)
    for i, k in enumerate(np.argsort(p)):
        if p[k] > alpha / (len(p) - i):
            break
        reject[k] = True
    return reject


def compare_classifiers(scores: np.ndarray, names: list[str], alpha: float = 0.05) -> RankComparison:
    """Friedman test, Holm-corrected pairwise Wilcoxon tests and cliques.

    Parameters
    ----------
    scores : ndarray of shape (n_datasets, n_classifiers)
        Accuracies.
    names : list of str
        Classifier names, one per column.
    alpha : float, default=0.05
        Family-wise significance level.

    Returns
    -------
    RankComparison
    """
    scores = np.asarray(scores, dtype=float)
    ranks = average_ranks(scores)
    if len(names) != scores.shape[1]:
        raise ValueError(f"`names` has {len(names)} entries but `scores` has {scores.shape[1]} columns")
    n_sets, k = scores.shape
    friedman_p = float("nan")
    if k >= 3 and n_sets >= 2 and np.ptp(scores, axis=1).any():
        friedman_p = float(stats.friedmanchisquare(*scores.T).pvalue)
    pairs, pvals = [], []
    for i in range(k):
        for j in range(i + 1, k):
            diff = scores[:, i] - scores[:, j]
            p = (
                1.0
                if not np.any(diff)
                else float(stats.wilcoxon(scores[:, i], scores[:, j], zero_method="pratt").pvalue)
            )
            pairs.append((i, j))
            pvals.append(p)
    reject = holm(np.array(pvals), alpha) if pvals else np.array([], dtype=bool)
    pairwise = [
        PairwiseTest(names[i], names[j], p, bool(r))
        for (i, j), p, r in zip(pairs, pvals, reject, strict=True)
    ]
    significant = {(t.first, t.second) for t in pairwise if t.significant}
    significant |= {(b, a) for a, b in significant}
    order = [names[i] for i in np.argsort(ranks, kind="stable")]
    cliques: list[list[str]] = []
    for start in range(len(order)):
        end = start
        while end + 1 < len(order) and all(
            (order[m], order[end + 1]) not in significant for m in range(start, end + 1)
        ):
            end += 1
        group = order[start : end + 1]
        if len(group) > 1 and not any(set(group) <= set(c) for c in cliques):
            cliques.append(group)
    return RankComparison(list(names), ranks, friedman_p, pairwise, cliques)


def plot_critical_difference(comparison: RankComparison, ax=None):
    """Draw the critical-difference diagram of the review (ranks on an axis, cliques as bars).

    Parameters
    ----------
    comparison : RankComparison
        From :func:`compare_classifiers`.
    ax : matplotlib.axes.Axes, default=None
        Target axes; a new figure is made when ``None``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    k = len(comparison.names)
    order = np.argsort(comparison.average_ranks, kind="stable")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 1.2 + 0.2 * k))
    ax.set_xlim(k + 0.5, 0.5)  # best (rank 1) on the right, as in the review
    ax.set_ylim(-0.5 * ((k + 1) // 2 + 1), 1.0)
    ax.axhline(0, color="k", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.15], color="k", lw=1)
        ax.text(r, 0.3, str(r), ha="center", va="bottom", fontsize=8)
    half = (k + 1) // 2
    for pos, idx in enumerate(order):
        rank = comparison.average_ranks[idx]
        right = pos < half
        level = -(pos + 1) if right else -(k - pos)
        x_text = 0.6 if right else k + 0.4
        ax.plot([rank, rank, x_text], [0, level * 0.5, level * 0.5], color="k", lw=0.8)
        ax.text(
            x_text,
            level * 0.5,
            f" {comparison.names[idx]} ({rank:.2f}) ",
            ha="left" if right else "right",
            va="center",
            fontsize=8,
        )
    for c, clique in enumerate(comparison.cliques):
        rs = [comparison.average_ranks[comparison.names.index(n)] for n in clique]
        ax.plot([min(rs) - 0.03, max(rs) + 0.03], [-0.15 - 0.12 * c] * 2, color="k", lw=3)
    ax.axis("off")
    title = "critical difference (Wilcoxon-Holm)"
    if np.isfinite(comparison.friedman_p):
        title += f", Friedman p = {comparison.friedman_p:.3g}"
    ax.set_title(title, fontsize=9)
    return ax.figure
