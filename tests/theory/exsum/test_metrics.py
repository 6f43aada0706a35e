"""ExSum metrics on a hand-computed example (coverage, validity, sharpness to 1e-9)."""

import math

import numpy as np
import pytest

from sciprob.theory.exsum import ExplanationSummary, Intervals, Metrics, RuleUnion, UniformMeasure

TOL = 1e-9


def close(m: Metrics, cov, val, shp):
    assert m.coverage == pytest.approx(cov, abs=TOL)
    assert m.validity == pytest.approx(val, abs=TOL)
    assert m.sharpness == pytest.approx(shp, abs=TOL)


def summary(tiny, union, p0=0.0):
    return ExplanationSummary(union, tiny.data(), UniformMeasure(-1.0, 1.0, zero_pmf=p0))


def test_weights_are_one_over_length(tiny):
    d = tiny.data()
    assert d.weight.tolist() == [0.5, 0.5, 1.0, 0.25, 0.25, 0.25, 0.25]
    assert d.position.tolist() == [0, 1, 0, 0, 1, 2, 3]
    assert d.label.tolist() == [1, 1, 0, 1, 1, 1, 1]


def test_single_rules_by_hand(tiny):
    # R1 applies to FEUs 0, 2, 4 (weights .5 + 1 + .25); valid: 0 (0.2) and 4 (0.1); mu([0, .5]) = 1/4
    close(summary(tiny, RuleUnion([tiny.rule_above()])).union_metrics(), 1.75 / 3, 0.75 / 1.75, 0.75)
    # R2 applies to FEUs 3, 6 (weights .25 each); valid: 3 (0.0); mu([-.3, .3]) = 0.3
    close(summary(tiny, RuleUnion([tiny.rule_small()])).union_metrics(), 0.5 / 3, 0.5, 0.7)


def test_zero_point_mass_excluded_for_zero_explanations(tiny):
    # with p0 = 0.2: mu([0, .5]) = .8 * .25 + .2 = .4 -> sharpness .6 (no FEU of R1 has e = 0)
    close(summary(tiny, RuleUnion([tiny.rule_above()]), 0.2).union_metrics(), 1.75 / 3, 0.75 / 1.75, 0.6)
    # R2: mu([-.3, .3]) = .8 * .3 + .2 = .44; FEU 3 has e = 0 in range -> its mu drops the .2 point mass
    close(summary(tiny, RuleUnion([tiny.rule_small()]), 0.2).union_metrics(), 0.5 / 3, 0.5, (0.76 + 0.56) / 2)


def test_precedence_first_applicable_rule_decides(tiny):
    r3 = tiny.rule_above("R3", threshold=1.5, lo=0.5, hi=0.9)  # applies to FEUs 2, 4
    s = summary(tiny, RuleUnion([tiny.rule_above(), r3], "R3 > R1"))
    rep = s.metrics("R1")
    # union: 0 -> R1 [0, .5] valid; 2 -> R3 [.5, .9] valid (.6); 4 -> R3 invalid (.1)
    close(rep.union, 1.75 / 3, 1.5 / 1.75, (0.5 * 0.75 + 1 * 0.8 + 0.25 * 0.8) / 1.75)
    close(rep.selected, 0.5 / 3, 1.0, 0.75)  # R1 is responsible for FEU 0 only
    close(rep.counterfactual, 1.25 / 3, 1 / 1.25, 0.8)  # the union without R1 is R3 alone
    close(s.counterfactual_metrics("R3"), 1.75 / 3, 0.75 / 1.75, 0.75)
    # the other order: R1 pre-empts R3 everywhere
    s2 = summary(tiny, RuleUnion([tiny.rule_above(), r3], "R1 > R3"))
    sel = s2.rule_metrics("R3")
    assert sel.coverage == 0.0 and math.isnan(sel.validity) and math.isnan(sel.sharpness)


def test_intersection_uses_both_ranges_where_both_apply(tiny):
    r3 = tiny.rule_above("R3", threshold=1.5, lo=0.5, hi=0.9)
    s = summary(tiny, RuleUnion([tiny.rule_above(), r3], "R1 & R3"))
    # FEU 0: only R1 -> [0, .5]; FEUs 2, 4: [0, .5] & [.5, .9] = [.5, .5] (measure 0, both invalid)
    close(s.union_metrics(), 1.75 / 3, 0.5 / 1.75, (0.5 * 0.75 + 1.25) / 1.75)
    close(s.rule_metrics("R3"), 1.25 / 3, 1 / 1.25, 0.8)  # both rules are responsible on 2, 4
    close(s.rule_metrics("R1"), 1.75 / 3, 0.75 / 1.75, 0.75)


def test_disjoint_union_and_nested_formula(tiny):
    s = summary(tiny, RuleUnion([tiny.rule_above(), tiny.rule_small()]))
    assert s.rules.formula == "R1 > R2"
    close(s.union_metrics(), 2.25 / 3, 1.0 / 2.25, (1.75 * 0.75 + 0.5 * 0.7) / 2.25)
    r3 = tiny.rule_above("R3", threshold=1.5, lo=0.5, hi=0.9)
    u = RuleUnion([tiny.rule_above(), tiny.rule_small(), r3], "R3 & R1 > R2")
    assert u.composition == (("R3", "&", "R1"), ">", "R2")
    assert u.without("R1").formula == "R3 > R2"
    assert RuleUnion([tiny.rule_above()]).without("R1") is None
    close(summary(tiny, RuleUnion([tiny.rule_above()])).counterfactual_metrics("R1"), 0.0, 0.0, 0.0)


def test_parameter_change_updates_metrics(tiny):
    s = summary(tiny, RuleUnion([tiny.rule_above()]))
    s.set_parameter("R1", "threshold", 2.5)  # only FEU 4 (value 3, e .1)
    close(s.union_metrics(), 0.25 / 3, 1.0, 0.75)
    s.set_parameter("R1", "hi", 1.0)  # [0, 1]: mu = .5
    close(s.union_metrics(), 0.25 / 3, 1.0, 0.5)
    s.reset()
    close(s.union_metrics(), 1.75 / 3, 0.75 / 1.75, 0.75)


def test_measure_of_overlapping_unions_counts_overlap_once():
    m = UniformMeasure(-1.0, 1.0, zero_pmf=0.1)
    nan = np.nan
    iv = Intervals(
        np.array([[-0.5, 0.0, nan], [0.2, nan, nan], [-3.0, 0.5, nan]]),
        np.array([[0.2, 0.5, nan], [0.4, nan, nan], [-0.5, 3.0, nan]]),
    )
    # [-.5, .5] -> .9 * .5 + .1; [.2, .4] -> .9 * .1; [-1, -.5] u [.5, 1] -> .9 * .5 (no zero)
    np.testing.assert_allclose(m.measure(iv), [0.55, 0.09, 0.45], atol=TOL)
    assert iv.contains(np.array([0.1, 0.5, 0.0])).tolist() == [True, False, False]


def test_multiple_intervals_in_behaviour_and_intersection():
    a = Intervals(np.array([[-1.0, 0.5]]), np.array([[-0.5, 1.0]]))
    b = Intervals(np.array([[-0.7]]), np.array([[0.7]]))
    c = a.intersection(b)
    assert c.row(0) == [(-0.7, -0.5), (0.5, 0.7)]
    assert UniformMeasure(-1, 1).measure(c)[0] == pytest.approx(0.2, abs=TOL)
