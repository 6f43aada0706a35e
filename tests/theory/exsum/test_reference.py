"""Vectorised metrics against a per-FEU transcription of the official ``CompositionNode``/``get_metrics``."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sciprob.theory.exsum import (
    ExplanationSummary,
    FEUData,
    Parameter,
    Rule,
    RuleUnion,
    UniformMeasure,
    rulesets,
)

FORMULAS = ["A > B > C", "A & B & C", "(A > B) & C", "A > (B & C)", "(A & C) > B", "C > A & B"]


def rules(t_a, t_b, t_c, ranges):
    (la, ha), (lb, hb), (lc, hc) = ranges
    mk = lambda n, f, t, lo, hi: Rule(  # noqa: E731
        n, f, rulesets.constant_range, [Parameter("threshold", -3, 3, t)],
        [Parameter("lo", -1, 1, lo), Parameter("hi", -1, 1, hi)],
    )  # fmt: skip
    return [mk("A", rulesets.feature_above, t_a, la, ha), mk("B", rulesets.feature_below, t_b, lb, hb),
            mk("C", rulesets.level_above, t_c, lc, hc)]  # fmt: skip


def reference(union: RuleUnion, data: FEUData, measure: UniformMeasure, selected: str):
    """One FEU at a time with interval lists, as the official tool computes it."""
    p = {r.name: r.values() for r in union.rules}

    def leaf(name, i):
        v, lev = data.features["value"][i], data.features["level"][i]
        t = p[name]["threshold"]
        a = {"A": v > t, "B": v < t, "C": lev > t}[name]
        return bool(a), [(p[name]["lo"], p[name]["hi"])]

    def inter(b1, b2):
        return [
            (max(x[0], y[0]), min(x[1], y[1])) for x in b1 for y in b2 if max(x[0], y[0]) <= min(x[1], y[1])
        ]

    def node(s, i):
        if isinstance(s, str):
            a, b = leaf(s, i)
            return a, b, (s,) if a else ()
        (a1, b1, r1), op, (a2, b2, r2) = node(s[0], i), s[1], node(s[2], i)
        if op == "&" and a1 and a2:
            return True, inter(b1, b2), r1 + r2
        if a1:
            return True, b1, r1
        if a2:
            return True, b2, r2
        return False, b1 + b2, ()

    def mu(b, e):
        m = sum(measure.interval_measure(lo, hi) for lo, hi in b)  # disjoint here
        return m - (measure.zero_pmf if e == 0 and any(lo <= 0 <= hi for lo, hi in b) else 0.0)

    def metrics(struct, sel):
        w, e = data.weight, data.explanation
        rows = []
        for i in range(data.n):
            a, b, rs = node(struct, i)
            own = leaf(sel, i)[1] if sel else b
            cov = (sel in rs) if sel else a
            rows.append((w[i], cov, any(lo <= e[i] <= hi for lo, hi in own), 1 - mu(own, e[i])))
        W, A, V, S = map(np.array, zip(*rows, strict=True))
        wa = W * A
        if wa.sum() == 0:
            return 0.0, np.nan, np.nan
        return wa.sum() / W.sum(), (wa * V).sum() / wa.sum(), (wa * S).sum() / wa.sum()

    return metrics(union.composition, None), metrics(union.composition, selected)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    formula=st.sampled_from(FORMULAS),
    thresholds=st.tuples(*[st.floats(-1.5, 1.5)] * 3),
    ranges=st.lists(st.tuples(st.floats(-1, 1), st.floats(0, 1)), min_size=3, max_size=3),
    selected=st.sampled_from("ABC"),
)
def test_vectorised_equals_per_feu_reference(seed, formula, thresholds, ranges, selected):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 7, size=8)
    n = int(lengths.sum())
    e = np.round(rng.uniform(-1, 1, n), 1)  # ties and exact zeros on purpose
    data = FEUData(
        e, np.repeat(np.arange(8), lengths), {"value": rng.normal(size=n), "level": rng.normal(size=n)}
    )
    ranges = [(lo, min(1.0, lo + width)) for lo, width in ranges]
    union = RuleUnion(rules(*thresholds, ranges), formula)
    measure = UniformMeasure(-1, 1, zero_pmf=0.15)
    s = ExplanationSummary(union, data, measure)
    ref_union, ref_sel = reference(union, data, measure, selected)
    got_union, got_sel = s.union_metrics(), s.rule_metrics(selected)
    for got, ref in ((got_union, ref_union), (got_sel, ref_sel)):
        if got.coverage == 0:
            assert ref[0] == 0
            continue
        np.testing.assert_allclose(tuple(got), ref, atol=1e-12)


@pytest.mark.slow
def test_hundred_thousand_feus_update_in_under_half_a_second():
    rng = np.random.default_rng(0)
    n = 100_000
    data = FEUData(np.tanh(rng.normal(size=n)), np.repeat(np.arange(n // 25), 25),
                   {"value": rng.normal(size=n), "level": rng.normal(size=n)})  # fmt: skip
    s = ExplanationSummary(
        RuleUnion(rules(1.0, -1.0, 0.0, [(0, 1), (-1, 0), (-0.5, 0.5)]), "A > (B & C)"), data
    )
    s.metrics("B")
    times = []
    for k in range(3):
        s.set_parameter("B", "threshold", -0.5 - 0.1 * k)
        t0 = time.perf_counter()
        s.metrics("B")
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 0.5
