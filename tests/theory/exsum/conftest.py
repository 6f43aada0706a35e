"""A tiny hand-computable FEU data set and rules shared by the ExSum tests."""

from types import SimpleNamespace

import numpy as np
import pytest

from sciprob.theory.exsum import FEUData, Parameter, Rule, rulesets

# FEU:          0     1     2     3    4     5     6
INSTANCE = [0, 0, 1, 2, 2, 2, 2]  # weights 1/2, 1/2, 1, 1/4 x 4; total weight 3
VALUE = [1.0, -1.0, 2.0, 0.5, 3.0, -2.0, 0.2]
EXPL = [0.2, -0.4, 0.6, 0.0, 0.1, -0.9, 0.5]


def tiny_data() -> FEUData:
    return FEUData(
        np.array(EXPL),
        np.array(INSTANCE),
        {"value": np.array(VALUE)},
        label=[1, 0, 1],
        prediction=[0.9, 0.2, 0.7],
    )


def rule_above(name="R1", threshold=0.8, lo=0.0, hi=0.5) -> Rule:
    """value > threshold  ->  e in [lo, hi]."""
    return Rule(
        name,
        rulesets.feature_above,
        rulesets.constant_range,
        [Parameter("threshold", -3.0, 3.0, threshold)],
        [Parameter("lo", -1.0, 1.0, lo), Parameter("hi", -1.0, 1.0, hi)],
        description="large values get attribution in [lo, hi]",
    )


def rule_small(name="R2", tau=0.6, h=0.3) -> Rule:
    """|value| < tau  ->  e in [-h, h]."""
    return Rule(
        name,
        rulesets.abs_value_below,
        rulesets.symmetric_range,
        [Parameter("tau", 0.0, 3.0, tau)],
        [Parameter("h", 0.0, 1.0, h)],
    )


@pytest.fixture
def tiny():
    """The hand-computable example: ``tiny.data()``, ``tiny.rule_above(...)``, ``tiny.rule_small(...)``."""
    return SimpleNamespace(data=tiny_data, rule_above=rule_above, rule_small=rule_small)
