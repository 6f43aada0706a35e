"""ExSum metrics after a parameter change: vectorised sciprob vs a per-FEU loop like the official tool.

Builds ``--n`` FEUs (instances of 5-60 units, three features) and a three-rule union
``R1 > (R2 & R3)``, builds the KDE measure once (timed), then changes one parameter of the selected
rule and recomputes the union, selected and counterfactual metrics. The baseline, measured in the
same run on the same data, evaluates rules one FEU at a time with Python interval objects and a
scipy ``interp1d`` CDF, as ``exsum.Model.get_metrics`` does; both must agree to 1e-9. One core
(``OMP_NUM_THREADS=1`` is set before numpy loads).

    python benchmarks/exsum_metrics.py                 # 10^5 FEUs; acceptance: < 0.5 s
    python benchmarks/exsum_metrics.py --n 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def _data(n: int, seed: int):
    import numpy as np

    from sciprob.theory.exsum import FEUData

    rng = np.random.default_rng(seed)
    lengths = []
    while sum(lengths) < n:
        lengths.append(int(rng.integers(5, 61)))
    lengths[-1] -= sum(lengths) - n
    inst = np.repeat(np.arange(len(lengths)), lengths)
    value = rng.normal(size=n)
    level = rng.uniform(-1, 1, n)
    e = np.tanh(0.6 * value + 0.3 * level + rng.normal(0, 0.2, n))
    e[rng.random(n) < 0.05] = 0.0
    return FEUData(e, inst, {"value": value, "level": level})


def _union():
    from sciprob.theory.exsum import Parameter, Rule, RuleUnion, rulesets

    r1 = Rule(
        "R1",
        rulesets.feature_above,
        rulesets.constant_range,
        [Parameter("threshold", -3, 3, 1.0)],
        [Parameter("lo", -1, 1, 0.2), Parameter("hi", -1, 1, 1.0)],
    )
    r2 = Rule(
        "R2",
        rulesets.abs_value_below,
        rulesets.symmetric_range,
        [Parameter("tau", 0, 3, 0.5)],
        [Parameter("h", 0, 1, 0.4)],
    )
    r3 = Rule(
        "R3",
        rulesets.level_above,
        rulesets.constant_range,
        [Parameter("threshold", -1, 1, 0.0)],
        [Parameter("lo", -1, 1, -0.2), Parameter("hi", -1, 1, 0.6)],
    )
    return RuleUnion([r1, r2, r3], "R1 > (R2 & R3)")


def _loop_metrics(union, data, measure, selected):
    """Per-FEU evaluation in the style of the official ``get_metrics`` (rules called on one FEU at a time)."""
    import numpy as np
    from scipy.interpolate import interp1d

    cdf = interp1d(measure._xs, measure._cdf)
    lo_s, hi_s = measure.support
    p0 = measure.zero_pmf

    def mu(intervals, e):
        m = 0.0
        for lo, hi in intervals:
            c_lo = 0.0 if lo <= lo_s else float(cdf(lo))
            c_hi = 1 - p0 if hi >= hi_s else float(cdf(hi))
            m += max(c_hi - c_lo, 0.0) + (p0 if lo <= 0 <= hi else 0.0)
        if p0 and e == 0 and any(lo <= 0 <= hi for lo, hi in intervals):
            m -= p0
        return m

    def inter(a, b):
        out = [(max(x[0], y[0]), min(x[1], y[1])) for x in a for y in b]
        return [iv for iv in out if iv[0] <= iv[1]]

    vals = {r.name: r.values() for r in union.rules}

    def rule_ab(name, i):
        p = vals[name]
        one = data.features["value"][i], data.features["level"][i]
        if name == "R1":
            return one[0] > p["threshold"], [(p["lo"], p["hi"])]
        if name == "R2":
            return abs(one[0]) < p["tau"], [(-p["h"], p["h"])]
        return one[1] > p["threshold"], [(p["lo"], p["hi"])]

    def node(struct, i):
        if isinstance(struct, str):
            a, b = rule_ab(struct, i)
            return a, b, (struct,) if a else ()
        (a1, b1, r1), op, (a2, b2, r2) = node(struct[0], i), struct[1], node(struct[2], i)
        if op == ">":
            return (True, b1, r1) if a1 else ((True, b2, r2) if a2 else (False, b1 + b2, ()))
        if a1 and a2:
            return True, inter(b1, b2), r1 + r2
        return (True, b1, r1) if a1 else ((True, b2, r2) if a2 else (False, b1 + b2, ()))

    def metrics(struct, sel):
        cov = val = shp = tot = 0.0
        cs = vs = ss = 0.0
        for i in range(data.n):
            w, e = data.weight[i], data.explanation[i]
            tot += w
            if struct is not None:
                a, b, rs = node(struct, i)
                if a:
                    cov += w
                    val += w * any(lo <= e <= hi for lo, hi in b)
                    shp += w * (1 - mu(b, e))
            if sel is not None and sel in rs:
                _, b = rule_ab(sel, i)
                cs += w
                vs += w * any(lo <= e <= hi for lo, hi in b)
                ss += w * (1 - mu(b, e))
        out = [(cov / tot, val / cov, shp / cov)]
        if sel is not None:
            out.append((cs / tot, vs / cs, ss / cs))
        return out

    union_m, selected_m = metrics(union.composition, selected)
    rest = union.without(selected)
    (cf,) = metrics(rest.composition, None)
    return np.array([union_m, selected_m, cf])


def main() -> None:
    """Run the benchmark and print times and the speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of FEUs")
    parser.add_argument("--repeats", type=int, default=5, help="timed parameter changes (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np

    from sciprob.theory.exsum import ExplanationSummary

    data = _data(args.n, args.seed)
    t0 = time.perf_counter()
    summary = ExplanationSummary(_union(), data, zero_mass=True)
    build = time.perf_counter() - t0
    summary.metrics("R2")  # warm caches of the untouched rules
    times = []
    for k in range(args.repeats):
        summary.set_parameter("R2", "h", 0.3 + 0.05 * k)
        t0 = time.perf_counter()
        rep = summary.metrics("R2")
        times.append(time.perf_counter() - t0)
    fast = float(np.median(times))
    ours = np.array([rep.union, rep.selected, rep.counterfactual])
    t0 = time.perf_counter()
    ref = _loop_metrics(summary.rules, data, summary.measure, "R2")
    slow = time.perf_counter() - t0
    err = float(np.max(np.abs(ours - ref)))
    print(f"FEUs: {data.n} in {data.n_instances} instances; rules {summary.rules.formula}")
    print(f"measure build (KDE, 1000-point grid, once): {build:.3f} s")
    print(f"metrics after a parameter change (union + selected + counterfactual), median of {args.repeats}:")
    print(
        f"  sciprob vectorised : {fast * 1e3:9.2f} ms   "
        f"(acceptance: < 500 ms -> {'PASS' if fast < 0.5 else 'FAIL'})"
    )
    print(f"  per-FEU loop       : {slow * 1e3:9.2f} ms")
    print(f"  speed-up           : {slow / fast:9.1f} x")
    print(f"  max |difference| of the 9 metrics: {err:.2e} ({'agree' if err < 1e-9 else 'DISAGREE'})")
    print("  union      cov/val/shp: " + " ".join(f"{x:.6f}" for x in ours[0]))


if __name__ == "__main__":
    main()
