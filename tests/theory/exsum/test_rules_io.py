"""Rule files (JSON and TOML, functions by import path) and bad-input errors."""

import json

import numpy as np
import pytest

from sciprob.theory.exsum import (
    ExplanationSummary,
    FEUData,
    Parameter,
    Rule,
    RuleUnion,
    load_rule_file,
    parse_formula,
    rulesets,
)


def all_metrics(s: ExplanationSummary):
    out = {"union": s.union_metrics()}
    for name in s.rules.names:
        rep = s.metrics(name)
        out[name] = (rep.selected, rep.counterfactual)
    return out


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_round_trip_reproduces_every_metric(tiny, tmp_path, suffix):
    r3 = tiny.rule_above("R3", threshold=1.5, lo=0.5, hi=0.9)
    s = ExplanationSummary(
        RuleUnion([tiny.rule_above(), tiny.rule_small(), r3], "(R3 & R1) > R2"), tiny.data()
    )
    s.set_parameter("R2", "h", 0.45)
    s.set_parameter("R1", "threshold", 0.3)
    path = s.save(tmp_path / f"rules{suffix}", data_file=tmp_path / "feus.npz")
    text = path.read_text()
    assert "sciprob.theory.exsum.rulesets:feature_above" in text and "pickle" not in text
    loaded = ExplanationSummary.load(path)
    assert loaded.rules.formula == "(R3 & R1) > R2"
    assert loaded.parameters() == s.parameters()
    assert loaded.rules.rule("R1").parameter("threshold").default == 0.8  # defaults kept too
    np.testing.assert_array_equal(loaded.data.explanation, s.data.explanation)
    assert loaded.data.units == s.data.units
    assert all_metrics(loaded) == all_metrics(s)


def test_json_file_is_readable(tiny, tmp_path):
    path = RuleUnion([tiny.rule_above()]).save(tmp_path / "r.json")
    d = json.loads(path.read_text())
    assert d["composition"] == "R1" and d["rules"][0]["b_params"][1] == {
        "name": "hi",
        "lo": -1.0,
        "hi": 1.0,
        "default": 0.5,
        "value": 0.5,
    }
    union, data_path, options = load_rule_file(path)
    assert data_path is None and options == {"zero_mass": False}


def test_lambda_cannot_be_saved(tmp_path):
    r = Rule("R1", lambda d, p: np.ones(d.n, bool), rulesets.constant_range)
    with pytest.raises(ValueError, match="module level"):
        RuleUnion([r]).save(tmp_path / "r.json")


def test_formula_parsing():
    assert parse_formula("A > B & C > D") == (("A", ">", ("B", "&", "C")), ">", "D")
    assert parse_formula("(A > B) & C") == (("A", ">", "B"), "&", "C")
    for bad in ("A >", "A B", "(A > B", "A | B"):
        with pytest.raises(ValueError, match="composition"):
            parse_formula(bad)


def test_composition_must_use_each_rule_once(tiny):
    with pytest.raises(ValueError, match="unknown rules"):
        RuleUnion([tiny.rule_above()], "R1 > R9")
    with pytest.raises(ValueError, match="exactly once"):
        RuleUnion([tiny.rule_above(), tiny.rule_small()], "R1")


# --- bad input named in the issue -------------------------------------------------------------


def test_parameter_outside_range(tiny):
    s = ExplanationSummary(RuleUnion([tiny.rule_above()]), tiny.data())
    with pytest.raises(ValueError, match=r"`threshold` = 7.0 is outside its range \[-3.0, 3.0\]"):
        s.set_parameter("R1", "threshold", 7.0)
    assert s.parameters()["R1"]["threshold"] == 0.8  # unchanged
    with pytest.raises(ValueError, match="outside its range"):
        Parameter("h", 0.0, 1.0, 1.5)
    with pytest.raises(ValueError, match="no parameter `tau`"):
        s.set_parameter("R1", "tau", 0.1)


def test_interval_with_lo_above_hi(tiny):
    s = ExplanationSummary(RuleUnion([tiny.rule_above()]), tiny.data())
    s.set_parameter("R1", "lo", 0.6)  # hi is 0.5
    with pytest.raises(ValueError, match=r"lo > hi: \[0.6, 0.5\]"):
        s.union_metrics()


def test_empty_data_set():
    with pytest.raises(ValueError, match="`explanation` is empty"):
        FEUData(np.array([]), np.array([], dtype=int))
    with pytest.raises(ValueError, match="empty"):
        FEUData.from_instances([[], []])


def test_nan_explanations():
    with pytest.raises(ValueError, match=r"`explanation` has 1 non-finite values \(first at FEU 1: nan\)"):
        FEUData(np.array([0.1, np.nan, 0.3]), np.array([0, 0, 1]))


def test_columns_must_match(tiny):
    with pytest.raises(ValueError, match=r"features\['value'\]"):
        FEUData(np.zeros(3), np.array([0, 0, 1]), {"value": np.zeros(2)})


def test_from_instances_of_any_length():
    d = FEUData.from_instances(
        [[0.1, 0.2, 0.3], [0.5]],
        [{"v": [1, 2, 3]}, {"v": [4]}],
        labels=[2, 0],
        predictions=[0.3, 0.9],
        units=[["a", "b", "c"], ["d"]],
    )
    assert d.n == 4 and d.n_instances == 2 and d.weight.tolist() == [1 / 3] * 3 + [1.0]
    assert d.label.tolist() == [2, 2, 2, 0] and d.units == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(d.instance_indices(0), [0, 1, 2])
