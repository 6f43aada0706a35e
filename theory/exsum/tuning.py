"""Tuning rule parameters: the official AutoTune and a joint optimiser over all of a rule's parameters.

AutoTune (official ``Model.auto_tune``): for one parameter, scan ``start -> stop`` linearly at a given
precision, or bisect (``stop`` must be feasible), for the first value whose target metric (of the
union or of the selected rule) reaches a minimum. The joint optimiser is new: it maximises the
selected rule's sharpness over all its parameters subject to minimum validity and coverage, by
random search in the parameter box followed by cyclic coordinate search on a grid (the metrics are
piecewise constant in the parameters, so no gradients).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sciprob.theory.exsum.metrics import ExplanationSummary, Metrics

__all__ = ["AutoTuneResult", "OptimiseResult", "autotune", "optimise_rule"]

MetricName = Literal["coverage", "validity", "sharpness"]


@dataclass(frozen=True)
class AutoTuneResult:
    """Outcome of :func:`autotune`.

    Attributes
    ----------
    found : bool
        A feasible value was found (and set); otherwise the old value was restored.
    value : float
        The value now set.
    metric : float
        The target metric at ``value``.
    evaluations : int
        Metric evaluations used.
    message : str
        What happened, for the GUI.
    """

    found: bool
    value: float
    metric: float
    evaluations: int
    message: str


def _metric_of(summary: ExplanationSummary, rule: str, scope: str, metric: str) -> float:
    m = summary.union_metrics() if scope == "union" else summary.rule_metrics(rule)
    return float(getattr(m, metric))


def autotune(
    summary: ExplanationSummary,
    rule: str,
    parameter: str,
    start: float,
    stop: float,
    precision: float,
    minimum: float,
    metric: MetricName = "validity",
    scope: Literal["union", "selected"] = "selected",
    method: Literal["linear", "binary"] = "linear",
) -> AutoTuneResult:
    """Set ``parameter`` of ``rule`` to the first value from ``start`` towards ``stop`` that is feasible.

    Feasible means ``metric`` (of the union or of the selected rule) is at least ``minimum``.

    Parameters
    ----------
    summary : ExplanationSummary
        Changed in place on success.
    rule, parameter : str
        What to tune.
    start, stop : float
        Scan limits, inside the parameter's range (``start > stop`` scans downwards).
    precision : float
        Step of the linear scan, final bracket width of the binary search; positive.
    minimum : float
        Target, in [0, 1].
    metric : {"coverage", "validity", "sharpness"}, default="validity"
    scope : {"union", "selected"}, default="selected"
    method : {"linear", "binary"}, default="linear"
        Binary search assumes feasibility is monotone and needs ``stop`` feasible.

    Returns
    -------
    AutoTuneResult

    Raises
    ------
    ValueError
        Unknown rule/parameter/metric/scope/method, ``start``/``stop`` outside the range, a
        non-positive ``precision`` or ``minimum`` outside [0, 1].
    """
    p = summary.rules.rule(rule).parameter(parameter)
    p.check(start)
    p.check(stop)
    if metric not in ("coverage", "validity", "sharpness"):
        raise ValueError(f"`metric` must be 'coverage', 'validity' or 'sharpness', got {metric!r}.")
    if scope not in ("union", "selected"):
        raise ValueError(f"`scope` must be 'union' or 'selected', got {scope!r}.")
    if method not in ("linear", "binary"):
        raise ValueError(f"`method` must be 'linear' or 'binary', got {method!r}.")
    if not (precision > 0 and math.isfinite(precision)):
        raise ValueError(f"`precision` must be positive and finite, got {precision}.")
    if not 0.0 <= minimum <= 1.0:
        raise ValueError(f"`minimum` must be in [0, 1], got {minimum}.")
    old = p.value
    count = 0
    last = float("nan")

    def feasible(v: float) -> bool:
        nonlocal count, last
        p.value = float(v)
        count += 1
        last = _metric_of(summary, rule, scope, metric)
        return last >= minimum  # NaN (zero coverage) is infeasible

    if method == "linear":
        n = int(np.floor(abs(stop - start) / precision + 1e-9)) + 1
        for v in np.linspace(start, stop, n):
            if feasible(v):
                return AutoTuneResult(True, float(v), last, count, f"AutoTune found {parameter} = {v:.6g}.")
        p.value = old
        return AutoTuneResult(
            False, old, _metric_of(summary, rule, scope, metric), count, "AutoTune found no solution."
        )
    if feasible(start):
        return AutoTuneResult(True, float(start), last, count, f"AutoTune found {parameter} = {start:.6g}.")
    if not feasible(stop):
        p.value = old
        return AutoTuneResult(
            False,
            old,
            _metric_of(summary, rule, scope, metric),
            count,
            "Binary search needs the stop value to be feasible, but it is not.",
        )
    left, right = float(start), float(stop)
    while abs(right - left) > precision:
        mid = 0.5 * (left + right)
        if feasible(mid):
            right = mid
        else:
            left = mid
    feasible(right)
    return AutoTuneResult(True, right, last, count, f"AutoTune found {parameter} = {right:.6g}.")


@dataclass(frozen=True)
class OptimiseResult:
    """Outcome of :func:`optimise_rule`.

    Attributes
    ----------
    feasible : bool
        Constraints met (parameters set to the best point); otherwise parameters restored.
    values : dict of str to float
        Parameter values now set.
    metrics : Metrics
        The rule's selected metrics at ``values``.
    evaluations : int
        Metric evaluations used.
    """

    feasible: bool
    values: dict[str, float]
    metrics: Metrics
    evaluations: int


def optimise_rule(
    summary: ExplanationSummary,
    rule: str,
    min_validity: float = 0.9,
    min_coverage: float = 0.05,
    scope: Literal["union", "selected"] = "selected",
    n_random: int = 64,
    grid: int = 17,
    rounds: int = 3,
    seed: int | np.random.Generator = 0,
) -> OptimiseResult:
    r"""Maximise sharpness over all parameters of ``rule`` subject to minimum validity and coverage.

    .. math::

        \max_{\theta \in \Theta} \mathrm{shp}(\theta)\quad\text{s.t.}\quad
        \mathrm{val}(\theta) \ge v_{min},\ \mathrm{cov}(\theta) \ge c_{min}

    The best of the current values and ``n_random`` uniform points of the box starts a search in
    rounds: scan every parameter on ``grid`` points with the others fixed (and every pair on a
    ``grid x grid`` lattice when the rule has 2-4 parameters), then try ``n_random`` Gaussian steps
    around the best point with a radius shrinking each round. Points are ranked by (feasible,
    sharpness, coverage), infeasible ones by total constraint violation. The metrics are piecewise
    constant in the parameters, hence no gradients; cost ``O(rounds (p grid + p^2 grid^2 + n_random))`` metric
    evaluations of ``O(n)`` each.

    Parameters
    ----------
    summary : ExplanationSummary
        Changed in place when a feasible point is found.
    rule : str
        Rule to tune.
    min_validity, min_coverage : float, default=0.9, 0.05
        Constraints, in [0, 1], on the rule's metrics (``scope="selected"``) or the union's.
    scope : {"union", "selected"}, default="selected"
    n_random : int, default=64
        Random starting points.
    grid : int, default=17
        Points per coordinate scan (>= 2).
    rounds : int, default=3
        Coordinate-search rounds.
    seed : int or numpy Generator, default=0
        For the random points.

    Returns
    -------
    OptimiseResult
    """
    r = summary.rules.rule(rule)
    for name, v in (("min_validity", min_validity), ("min_coverage", min_coverage)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1], got {v}.")
    if scope not in ("union", "selected"):
        raise ValueError(f"`scope` must be 'union' or 'selected', got {scope!r}.")
    if grid < 2 or n_random < 0 or rounds < 0:
        raise ValueError(
            f"need `grid` >= 2, `n_random` >= 0, `rounds` >= 0, got {grid}, {n_random}, {rounds}."
        )
    params = r.parameters
    if not params:
        raise ValueError(f"rule {rule!r} has no parameters to optimise.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    old = [p.value for p in params]
    lo = np.array([p.lo for p in params])
    hi = np.array([p.hi for p in params])
    count = 0

    def score(x: np.ndarray) -> tuple[float, float, float, Metrics | None]:
        nonlocal count
        for p, v in zip(params, x, strict=True):
            p.value = float(v)
        count += 1
        try:
            m = summary.union_metrics() if scope == "union" else summary.rule_metrics(rule)
        except ValueError:  # e.g. lo > hi in a behaviour range: not a valid point
            return -math.inf, -math.inf, -math.inf, None
        val = 0.0 if math.isnan(m.validity) else m.validity
        viol = max(0.0, min_validity - val) + max(0.0, min_coverage - m.coverage)
        if viol > 0:
            return -1.0, -viol, 0.0, m
        # equal sharpness (to round-off): prefer the larger coverage
        return 0.0, round(m.sharpness, 12), m.coverage, m

    best_x = np.array(old, dtype=float)
    best = score(best_x)
    for x in rng.uniform(lo, hi, size=(n_random, len(params))):
        s = score(x)
        if s[:3] > best[:3]:
            best, best_x = s, x.copy()
    # coordinate (and, for few parameters, pairwise) grid scans, then a shrinking local random search
    axes = [np.linspace(lo[j], hi[j], grid) for j in range(len(params))]
    blocks: list[tuple[int, ...]] = [(j,) for j in range(len(params))]
    if 2 <= len(params) <= 4:
        blocks += [(i, j) for i in range(len(params)) for j in range(i + 1, len(params))]
    for rnd in range(rounds):
        improved = False
        for block in blocks:
            for vals in itertools.product(*(axes[j] for j in block)):
                x = best_x.copy()
                x[list(block)] = vals
                s = score(x)
                if s[:3] > best[:3]:
                    best, best_x, improved = s, x, True
        radius = 0.1 * (hi - lo) / (rnd + 1)
        for _ in range(n_random):
            x = np.clip(best_x + rng.normal(0.0, 1.0, len(params)) * radius, lo, hi)
            s = score(x)
            if s[:3] > best[:3]:
                best, best_x, improved = s, x, True
        if not improved:
            break
    if best[0] == 0.0:
        for p, v in zip(params, best_x, strict=True):
            p.value = float(v)
        return OptimiseResult(True, r.values(), best[3], count)
    for p, v in zip(params, old, strict=True):
        p.value = v
    m = summary.union_metrics() if scope == "union" else summary.rule_metrics(rule)
    return OptimiseResult(False, r.values(), m, count)
