"""AutoTune (first feasible value; linear and binary) and the joint optimiser."""

import itertools

import numpy as np
import pytest

from sciprob.theory.exsum import (
    ExplanationSummary,
    FEUData,
    Parameter,
    Rule,
    RuleUnion,
    UniformMeasure,
    autotune,
    optimise_rule,
    rulesets,
)


def summary(tiny):
    return ExplanationSummary(RuleUnion([tiny.rule_above()]), tiny.data(), UniformMeasure(-1, 1))


def test_linear_autotune_returns_first_feasible_value(tiny):
    s = summary(tiny)
    res = autotune(s, "R1", "threshold", -3.0, 3.0, 0.1, minimum=0.9, metric="validity")
    grid = np.linspace(-3.0, 3.0, 61)
    # by hand: validity reaches 1 once only FEU 4 (value 3) applies, i.e. threshold >= 2
    assert res.found and res.value == grid[50] and res.metric == 1.0
    assert s.parameters()["R1"]["threshold"] == grid[50]
    assert res.evaluations == 51
    for v in grid[:50]:  # every earlier value is infeasible
        s.set_parameter("R1", "threshold", v)
        assert not s.rule_metrics("R1").validity >= 0.9


def test_binary_autotune_brackets_the_threshold(tiny):
    s = summary(tiny)
    res = autotune(s, "R1", "threshold", -3.0, 2.9, 1e-6, minimum=0.9, method="binary")
    assert res.found and 2.0 <= res.value <= 2.0 + 1e-6
    s.set_parameter("R1", "threshold", res.value - 2e-6)
    assert s.rule_metrics("R1").validity < 0.9


def test_autotune_failure_restores_value(tiny):
    s = summary(tiny)
    res = autotune(s, "R1", "threshold", -3.0, 3.0, 0.5, minimum=0.99, metric="sharpness", scope="union")
    assert not res.found and s.parameters()["R1"]["threshold"] == 0.8
    res = autotune(s, "R1", "threshold", -3.0, 0.0, 0.1, minimum=0.9, method="binary")
    assert not res.found and "stop value" in res.message and s.parameters()["R1"]["threshold"] == 0.8


def test_autotune_bad_arguments(tiny):
    s = summary(tiny)
    with pytest.raises(ValueError, match="outside its range"):
        autotune(s, "R1", "threshold", -5.0, 3.0, 0.1, minimum=0.9)
    with pytest.raises(ValueError, match="`precision`"):
        autotune(s, "R1", "threshold", -3.0, 3.0, 0.0, minimum=0.9)
    with pytest.raises(ValueError, match="`metric`"):
        autotune(s, "R1", "threshold", -3.0, 3.0, 0.1, minimum=0.9, metric="cov")


def synthetic(seed=0, n=400):
    """Explanation ~ 0.5 * value + noise on instances of 4 units."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(-2, 2, n)
    e = np.clip(0.25 * v + rng.normal(0, 0.05, n), -1, 1)
    return FEUData(e, np.repeat(np.arange(n // 4), 4), {"value": v})


def test_joint_optimiser_beats_a_coarse_exhaustive_grid():
    data = synthetic()
    rule = Rule(
        "R1",
        rulesets.feature_above,
        rulesets.constant_range,
        [Parameter("threshold", -2.0, 2.0, -2.0)],
        [Parameter("lo", -1.0, 1.0, -1.0), Parameter("hi", -1.0, 1.0, 1.0)],
    )
    s = ExplanationSummary(RuleUnion([rule]), data)
    before = s.rule_metrics("R1")
    res = optimise_rule(s, "R1", min_validity=0.9, min_coverage=0.2, seed=0)
    assert res.feasible
    m = s.rule_metrics("R1")
    assert m == res.metrics and m.validity >= 0.9 and m.coverage >= 0.2
    assert m.sharpness > before.sharpness + 0.3
    best = -1.0
    for t, lo, hi in itertools.product(np.linspace(-2, 2, 9), np.linspace(-1, 1, 9), np.linspace(-1, 1, 9)):
        if lo > hi:
            continue
        for k, v in (("threshold", t), ("lo", lo), ("hi", hi)):
            rule.set(k, v)
        g = s.rule_metrics("R1")
        if g.validity >= 0.9 and g.coverage >= 0.2:
            best = max(best, g.sharpness)
    assert res.metrics.sharpness >= best


def test_optimiser_reports_infeasible_and_restores(tiny):
    # |value| < tau <= 3 never covers FEU 4 (value 3): coverage 1 is out of reach
    s = ExplanationSummary(RuleUnion([tiny.rule_small()]), tiny.data(), UniformMeasure(-1, 1))
    res = optimise_rule(s, "R2", min_validity=0.5, min_coverage=1.0, n_random=8, grid=5, rounds=1)
    assert not res.feasible and s.parameters()["R2"] == {"tau": 0.6, "h": 0.3}
    assert res.metrics == s.rule_metrics("R2")
