"""ExSum rules and rule unions, vectorised over FEUs, saved as readable JSON or TOML.

A rule is an applicability function ``a(data, params) -> bool array (n,)`` and a behaviour function
``b(data, params) -> Intervals | (lo, hi)`` over all FEUs at once, with named bounded parameters.
Rules compose into a union by **precedence** ``>`` (the first applicable rule decides) and
**intersection** ``&`` (where both apply, the behaviour is the intersection of their ranges; where
only one applies, its range) (Zhou et al. 2022; official ``CompositionNode``).
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sciprob.theory.exsum.data import FEUData
from sciprob.theory.exsum.intervals import Intervals

__all__ = [
    "Parameter",
    "Rule",
    "RuleUnion",
    "UnionOutput",
    "function_path",
    "load_rule_file",
    "resolve_function",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FORMAT = "sciprob.exsum/1"

Structure = str | tuple  # rule name, or (left, op, right)


@dataclass
class Parameter:
    """A named rule parameter with a closed range.

    Parameters
    ----------
    name : str
        Identifier, unique within its rule.
    lo, hi : float
        Allowed range, ``lo <= hi``.
    default : float
        Starting value, inside the range.
    value : float, default=None
        Current value; default ``default``.

    Raises
    ------
    ValueError
        An empty range or a value outside it.
    """

    name: str
    lo: float
    hi: float
    default: float
    value: float | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"`name` must be an identifier, got {self.name!r}.")
        for f in ("lo", "hi", "default"):
            v = float(getattr(self, f))
            if not math.isfinite(v):
                raise ValueError(f"parameter {self.name!r}: `{f}` must be finite, got {v}.")
            setattr(self, f, v)
        if self.lo > self.hi:
            raise ValueError(f"parameter {self.name!r}: range lo={self.lo} > hi={self.hi}; give lo <= hi.")
        self.check(self.default)
        self.value = self.default if self.value is None else self.check(self.value)

    def check(self, value: float) -> float:
        """Return ``float(value)``, or raise ValueError if it is outside ``[lo, hi]``."""
        v = float(value)
        if not (self.lo <= v <= self.hi):
            raise ValueError(
                f"parameter `{self.name}` = {v} is outside its range [{self.lo}, {self.hi}]; "
                "choose a value inside it (or widen the range)."
            )
        return v


def function_path(func: Callable) -> str:
    """Return the import path ``"module:qualname"`` of a module-level function."""
    qual = getattr(func, "__qualname__", "")
    mod = getattr(func, "__module__", None)
    if not mod or not qual or "<" in qual or mod == "__main__":
        raise ValueError(
            f"rule function {func!r} has no import path (lambda, local function or __main__); "
            "define it at module level in an importable module to save the rule set."
        )
    return f"{mod}:{qual}"


def resolve_function(path: str) -> Callable:
    """Import ``"module:qualname"``."""
    if not isinstance(path, str) or ":" not in path:
        raise ValueError(f"function path must look like 'package.module:function', got {path!r}.")
    mod, qual = path.split(":", 1)
    obj: Any = importlib.import_module(mod)
    for part in qual.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{path!r} is not callable.")
    return obj


class Rule:
    """One ExSum rule.

    Parameters
    ----------
    name : str
        Identifier used in formulas and metric names (e.g. ``"R1"`` or ``"worst_size"``).
    applicability : callable
        ``applicability(data: FEUData, params: dict[str, float]) -> bool ndarray of shape (n,)``.
    behaviour : callable
        ``behaviour(data, params) -> Intervals`` or ``(lo, hi)`` with arrays of shape (n,) or (n, k)
        (NaN marks an unused slot) or scalars.
    a_params, b_params : sequence of Parameter, default=()
        Parameters of the applicability and behaviour functions.
    description : str, default=""
        Human-readable statement of the rule.

    Notes
    -----
    Outputs are cached on the data object and parameter values, so after one parameter changes only
    the function that reads it is re-evaluated.
    """

    def __init__(
        self,
        name: str,
        applicability: Callable,
        behaviour: Callable,
        a_params: Sequence[Parameter] = (),
        b_params: Sequence[Parameter] = (),
        description: str = "",
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"`name` must be an identifier like 'R1', got {name!r}.")
        if not callable(applicability) or not callable(behaviour):
            raise TypeError("`applicability` and `behaviour` must be callables f(data, params).")
        self.name = name
        self.applicability = applicability
        self.behaviour = behaviour
        self.a_params = [p if isinstance(p, Parameter) else Parameter(**p) for p in a_params]
        self.b_params = [p if isinstance(p, Parameter) else Parameter(**p) for p in b_params]
        names = [p.name for p in self.a_params + self.b_params]
        if len(set(names)) != len(names):
            raise ValueError(f"rule {name!r}: parameter names must be unique, got {names}.")
        self.description = description
        self._cache: dict[str, tuple[Any, Any, Any]] = {}

    @property
    def parameters(self) -> list[Parameter]:
        """All parameters (applicability first)."""
        return self.a_params + self.b_params

    def parameter(self, name: str) -> Parameter:
        """Return the parameter called ``name``."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise ValueError(
            f"rule {self.name!r} has no parameter `{name}`; "
            f"choose one of {[p.name for p in self.parameters]}."
        )

    def set(self, name: str, value: float) -> None:
        """Set parameter ``name`` (range-checked)."""
        p = self.parameter(name)
        p.value = p.check(value)

    def values(self) -> dict[str, float]:
        """Return current parameter values by name."""
        return {p.name: float(p.value) for p in self.parameters}

    def reset(self) -> None:
        """Set every parameter back to its default."""
        for p in self.parameters:
            p.value = p.default

    def _eval(self, which: str, data: FEUData) -> Any:
        params = self.a_params if which == "a" else self.b_params
        key = tuple(p.value for p in params)
        hit = self._cache.get(which)
        # the cache holds the data object itself, so an identity check cannot be fooled by a reused id()
        if hit is not None and hit[0] is data and hit[1] == key:
            return hit[2]
        vals = {p.name: float(p.value) for p in params}
        if which == "a":
            out = np.asarray(self.applicability(data, vals))
            if out.shape != (data.n,):
                raise ValueError(
                    f"rule {self.name!r}: applicability returned shape {out.shape}, expected ({data.n},)."
                )
            out = out.astype(bool)
        else:
            out = Intervals.coerce(self.behaviour(data, vals), data.n)
        self._cache[which] = (data, key, out)
        return out

    def evaluate(self, data: FEUData) -> tuple[np.ndarray, Intervals]:
        """Applicability (bool, shape (n,)) and behaviour range of every FEU."""
        return self._eval("a", data), self._eval("b", data)

    def to_dict(self) -> dict[str, Any]:
        """Readable description with the functions' import paths."""

        def plist(ps: list[Parameter]) -> list[dict[str, Any]]:
            return [
                {"name": p.name, "lo": p.lo, "hi": p.hi, "default": p.default, "value": p.value} for p in ps
            ]

        return {
            "name": self.name,
            "description": self.description,
            "applicability": function_path(self.applicability),
            "behaviour": function_path(self.behaviour),
            "a_params": plist(self.a_params),
            "b_params": plist(self.b_params),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rule:
        """Inverse of :meth:`to_dict`."""
        return cls(
            d["name"],
            resolve_function(d["applicability"]),
            resolve_function(d["behaviour"]),
            [Parameter(**p) for p in d.get("a_params", [])],
            [Parameter(**p) for p in d.get("b_params", [])],
            d.get("description", ""),
        )

    def __repr__(self) -> str:
        return f"Rule({self.name!r}, {self.values()})"


class UnionOutput(NamedTuple):
    """A rule union evaluated on ``n`` FEUs."""

    applicable: np.ndarray
    """bool (n,): some rule applies."""
    behaviour: Intervals
    """the union's behaviour range per FEU (meaningless where not applicable)."""
    responsible: dict[str, np.ndarray]
    """rule name -> bool (n,): the rule decides this FEU (applies and is not pre-empted)."""


def _tokenize(formula: str) -> list[str]:
    tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[()>&]|\S", formula)
    for t in tokens:
        if not (_NAME.match(t) or t in "()>&"):
            raise ValueError(
                f"`composition` {formula!r} has an unknown symbol {t!r}; use names, '>', '&', '(', ')'."
            )
    return tokens


def parse_formula(formula: str) -> Structure:
    """Parse ``"R1 > (R2 & R3)"`` into nested ``(left, op, right)`` tuples ('&' binds tighter)."""
    tokens = _tokenize(formula)
    pos = 0

    def fail(msg: str) -> ValueError:
        return ValueError(f"`composition` {formula!r}: {msg}; write e.g. 'R1 > (R2 & R3)'.")

    def atom() -> Structure:
        nonlocal pos
        if pos >= len(tokens):
            raise fail("ends early")
        t = tokens[pos]
        pos += 1
        if t == "(":
            node = expr()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise fail("missing ')'")
            pos += 1
            return node
        if _NAME.match(t):
            return t
        raise fail(f"unexpected {t!r}")

    def chain(sub: Callable[[], Structure], op: str) -> Callable[[], Structure]:
        def parse() -> Structure:
            nonlocal pos
            node = sub()
            while pos < len(tokens) and tokens[pos] == op:
                pos += 1
                node = (node, op, sub())
            return node

        return parse

    term = chain(atom, "&")
    expr = chain(term, ">")
    node = expr()
    if pos != len(tokens):
        raise fail(f"unexpected {tokens[pos]!r}")
    return node


def _normalise(structure: Structure) -> Structure:
    if isinstance(structure, str):
        return parse_formula(structure) if not _NAME.match(structure) else structure
    if isinstance(structure, (tuple, list)) and len(structure) == 3 and structure[1] in (">", "&"):
        return (_normalise(structure[0]), structure[1], _normalise(structure[2]))
    raise ValueError(
        f"`composition` must be a formula string or nested (left, '>'|'&', right) tuples, got {structure!r}."
    )


def _leaves(structure: Structure) -> list[str]:
    if isinstance(structure, str):
        return [structure]
    return _leaves(structure[0]) + _leaves(structure[2])


def _render(structure: Structure, top: bool = True) -> str:
    if isinstance(structure, str):
        return structure
    left, op, right = structure
    # a left child with the same operator needs no parentheses (both operators are left-associative)
    lhs = _render(left, isinstance(left, tuple) and left[1] == op)
    s = f"{lhs} {op} {_render(right, False)}"
    return s if top else f"({s})"


def _without(structure: Structure, name: str) -> Structure | None:
    if isinstance(structure, str):
        return None if structure == name else structure
    left, op, right = structure
    left2, right2 = _without(left, name), _without(right, name)
    if left2 is None:
        return right2
    if right2 is None:
        return left2
    return (left2, op, right2)


@dataclass
class RuleUnion:
    """Rules composed by precedence ``>`` and intersection ``&``.

    Parameters
    ----------
    rules : sequence of Rule
        Each rule used exactly once in ``composition``.
    composition : str or tuple, default=None
        A formula such as ``"R1 > (R2 & R3)"`` ('&' binds tighter than '>') or nested
        ``(left, op, right)`` tuples of rule names; default the rules by precedence in order.

    Raises
    ------
    ValueError
        Duplicate names, unknown or repeated rules in the composition, or rules left out of it.

    Examples
    --------
    >>> import numpy as np
    >>> from sciprob.theory.exsum import rulesets
    >>> r1 = Rule("R1", rulesets.feature_above, rulesets.constant_range,
    ...           [Parameter("threshold", -5, 5, 1.0)],
    ...           [Parameter("lo", -1, 1, 0.0), Parameter("hi", -1, 1, 1.0)])
    >>> RuleUnion([r1]).formula
    'R1'
    """

    rules: Sequence[Rule]
    composition: Structure | None = None
    _by_name: dict[str, Rule] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rules = list(self.rules)
        if not self.rules:
            raise ValueError("`rules` is empty; a rule union needs at least one Rule.")
        for r in self.rules:
            if not isinstance(r, Rule):
                raise TypeError(f"`rules` must contain Rule objects, got {type(r).__name__}.")
        self._by_name = {r.name: r for r in self.rules}
        if len(self._by_name) != len(self.rules):
            raise ValueError(f"rule names must be unique, got {[r.name for r in self.rules]}.")
        if self.composition is None:
            self.composition = " > ".join(r.name for r in self.rules)
        self.composition = _normalise(self.composition)
        leaves = _leaves(self.composition)
        unknown = [x for x in leaves if x not in self._by_name]
        if unknown:
            raise ValueError(f"`composition` names unknown rules {unknown}; known: {list(self._by_name)}.")
        if len(set(leaves)) != len(leaves) or set(leaves) != set(self._by_name):
            raise ValueError(
                f"`composition` {_render(self.composition)!r} must use each rule exactly once; "
                f"rules: {list(self._by_name)}."
            )

    @property
    def formula(self) -> str:
        """The composition as a formula string."""
        return _render(self.composition)

    @property
    def names(self) -> list[str]:
        """Rule names in order."""
        return [r.name for r in self.rules]

    def rule(self, name: str) -> Rule:
        """Return the rule called ``name``."""
        try:
            return self._by_name[name]
        except KeyError:
            raise ValueError(f"no rule `{name}` in this union; choose one of {self.names}.") from None

    def without(self, name: str) -> RuleUnion | None:
        """Return the union with rule ``name`` removed (``None`` when it was the only rule)."""
        self.rule(name)
        rest = _without(self.composition, name)
        if rest is None:
            return None
        return RuleUnion([r for r in self.rules if r.name != name], rest)

    def evaluate(self, data: FEUData) -> UnionOutput:
        """Applicability, behaviour range and responsible rules of every FEU (vectorised)."""

        def go(node: Structure) -> UnionOutput:
            if isinstance(node, str):
                a, b = self._by_name[node].evaluate(data)
                return UnionOutput(a, b, {node: a})
            left, op, right = node
            a1, b1, r1 = go(left)
            a2, b2, r2 = go(right)
            if op == ">":
                a = a1 | a2
                b = b1.select(a1, b2)
                resp = dict(r1)
                resp.update({k: v & ~a1 for k, v in r2.items()})
            else:
                both = a1 & a2
                a = a1 | a2
                b = b1.intersection(b2).select(both, b1.select(a1, b2.select(a2, b1.union(b2))))
                resp = {**r1, **r2}
            return UnionOutput(a, b, resp)

        return go(self.composition)

    def reset(self) -> None:
        """Every parameter of every rule back to its default."""
        for r in self.rules:
            r.reset()

    def to_dict(self) -> dict[str, Any]:
        """Readable form: format tag, formula and rules."""
        return {"format": FORMAT, "composition": self.formula, "rules": [r.to_dict() for r in self.rules]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RuleUnion:
        """Inverse of :meth:`to_dict`."""
        if d.get("format") != FORMAT:
            raise ValueError(f"rule file format must be {FORMAT!r}, got {d.get('format')!r}.")
        return cls([Rule.from_dict(r) for r in d["rules"]], d["composition"])

    def save(self, path: str | Path, *, data_file: str | Path | None = None, zero_mass: bool = False) -> Path:
        """Write the rule set as JSON (``.json``) or TOML (``.toml``).

        Parameters
        ----------
        path : str or Path
            Target file; the suffix picks the format.
        data_file : str or Path, default=None
            An FEU ``.npz`` file (:meth:`FEUData.save`) to record, relative to the rule file if possible.
        zero_mass : bool, default=False
            Recorded measure option (point mass at zero) for :func:`load_rule_file`.

        Returns
        -------
        Path
        """
        path = Path(path)
        d = self.to_dict()
        d["measure"] = {"zero_mass": bool(zero_mass)}
        if data_file is not None:
            df = Path(data_file)
            try:
                df = df.resolve().relative_to(path.resolve().parent)
            except ValueError:
                df = df.resolve()
            d["data"] = str(df)
        if path.suffix == ".json":
            text = json.dumps(d, indent=2)
        elif path.suffix == ".toml":
            text = _to_toml(d)
        else:
            raise ValueError(f"`path` must end in .json or .toml, got {path.name!r}.")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> RuleUnion:
        """Read a file written by :meth:`save`."""
        return load_rule_file(path)[0]


def load_rule_file(path: str | Path) -> tuple[RuleUnion, Path | None, dict[str, Any]]:
    """Read a rule file: the union, the FEU data file it names (or None) and its measure options."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"rule file {str(path)!r} does not exist; pass a .json or .toml file saved by RuleUnion.save."
        )
    if path.suffix == ".json":
        d = json.loads(path.read_text())
    elif path.suffix == ".toml":
        import tomllib

        d = tomllib.loads(path.read_text())
    else:
        raise ValueError(f"`path` must end in .json or .toml, got {path.name!r}.")
    union = RuleUnion.from_dict(d)
    data = d.get("data")
    data_path = None if data is None else (path.parent / data if not Path(data).is_absolute() else Path(data))
    return union, data_path, dict(d.get("measure", {}))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(float(v)) if isinstance(v, float) else str(v)
    if isinstance(v, str):
        return json.dumps(v)
    raise TypeError(f"cannot write {v!r} to TOML")


def _to_toml(d: dict[str, Any]) -> str:
    lines = [f"format = {_toml_value(d['format'])}", f"composition = {_toml_value(d['composition'])}"]
    if "data" in d:
        lines.append(f"data = {_toml_value(d['data'])}")
    lines += ["", "[measure]"] + [f"{k} = {_toml_value(v)}" for k, v in d["measure"].items()]
    for r in d["rules"]:
        lines += ["", "[[rules]]"]
        lines += [f"{k} = {_toml_value(r[k])}" for k in ("name", "description", "applicability", "behaviour")]
        for kind in ("a_params", "b_params"):
            items = ", ".join(
                "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in p.items()) + " }" for p in r[kind]
            )
            lines.append(f"{kind} = [{items}]")
    return "\n".join(lines) + "\n"
