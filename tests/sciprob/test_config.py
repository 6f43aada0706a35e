"""Typed parsing of --set overrides into frozen dataclass configs."""

from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sciprob.config import (
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    param,
    parse_set_options,
)


@dataclass(frozen=True)
class Inner:
    width: int = param(8, "hidden width")


@dataclass(frozen=True)
class Outer:
    lr: float = param(1e-3, "learning rate")
    flag: bool = param(False, "a switch")
    kind: Literal["a", "b"] = param("a", "choice")
    sizes: tuple[int, ...] = param((1, 2), "sizes")
    limit: int | None = param(None, "optional limit")
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"`lr` must be positive, got {self.lr}")


def test_string_overrides_are_typed():
    cfg = apply_overrides(Outer(), parse_set_options(
        ["lr=0.5", "flag=yes", "kind=b", "sizes=3,4,5", "limit=7", "inner.width=32"]))
    assert cfg == Outer(lr=0.5, flag=True, kind="b", sizes=(3, 4, 5), limit=7, inner=Inner(32))
    assert apply_overrides(cfg, {"limit": "none"}).limit is None


@pytest.mark.parametrize(("key", "value"), [
    ("lr", "fast"), ("flag", "maybe"), ("kind", "c"), ("sizes", "1,x"), ("inner.width", "1.5"),
    ("missing", "1"), ("inner.missing", "1"), ("lr.sub", "1"), ("lr", "-1"),
])
def test_bad_overrides_name_the_key(key, value):
    with pytest.raises(ConfigError) as info:
        apply_overrides(Outer(), {key: value})
    assert key.split(".")[-1] in str(info.value) or key.split(".")[0] in str(info.value)


def test_set_option_needs_equals():
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_options(["lr"])


@given(lr=st.floats(1e-6, 1e3), width=st.integers(1, 10_000), sizes=st.lists(st.integers(0, 99), max_size=5))
def test_json_round_trip(lr, width, sizes):
    cfg = Outer(lr=lr, sizes=tuple(sizes), inner=Inner(width))
    assert config_from_dict(Outer, config_to_dict(cfg)) == cfg


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "Infinity"])
def test_non_finite_numbers_are_refused_naming_the_key(text):
    with pytest.raises(ConfigError, match="`lr` must be a finite number"):
        apply_overrides(Outer(), {"lr": text})
    with pytest.raises(ConfigError, match="finite"):
        apply_overrides(Outer(), {"lr": float(text)})  # presets pass typed values: same rule


def test_run_seeds_outside_32_bits_are_refused():
    from sciprob.engine.run import check_seed

    assert check_seed(2**32 - 1) == 2**32 - 1
    for bad in (2**32, -1, 1.5, True):
        with pytest.raises(ConfigError, match="--seed"):
            check_seed(bad)
