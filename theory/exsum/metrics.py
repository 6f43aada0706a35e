r"""ExSum quality metrics (coverage, validity, sharpness) and the :class:`ExplanationSummary`.

With FEU weight :math:`w(u) = 1/L` (each instance weighs 1), applicability :math:`a(u)`, behaviour
range :math:`b(u)` and explanation measure :math:`\mu` (Zhou et al. 2022; official ``get_metrics``):

.. math::

    \mathrm{cov} = \frac{\sum_u w\,a}{\sum_u w},\quad
    \mathrm{val} = \frac{\sum_u w\,a\,[e(u) \in b(u)]}{\sum_u w\,a},\quad
    \mathrm{shp} = \frac{\sum_u w\,a\,(1 - \mu(b(u)) + p_0 [e(u) = 0 \in b(u)])}{\sum_u w\,a}

(the point mass :math:`p_0` at zero is left out of :math:`\mu(b(u))` for an FEU whose own
explanation is that zero). For a **selected** rule, :math:`a` is replaced by "the rule is
responsible" (applies and is not pre-empted) and :math:`b` by the rule's own range; the
**counterfactual** metrics are those of the union without the rule. Validity and sharpness of a
zero-coverage set are NaN; the metrics of an empty union are 0 (as in the official tool).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sciprob.theory.exsum.data import FEUData
from sciprob.theory.exsum.intervals import Intervals
from sciprob.theory.exsum.measure import ExplanationMeasure, KDEMeasure
from sciprob.theory.exsum.rules import RuleUnion, load_rule_file

__all__ = ["ExplanationSummary", "Metrics", "MetricsReport", "exsum_metrics"]


class Metrics(NamedTuple):
    """Coverage, validity and sharpness, each in [0, 1]."""

    coverage: float
    validity: float
    sharpness: float


@dataclass(frozen=True)
class MetricsReport:
    """Metrics of the union, of the selected rule, and of the union without it."""

    union: Metrics
    selected: Metrics | None = None
    counterfactual: Metrics | None = None

    def to_dict(self) -> dict[str, dict[str, float] | None]:
        """JSON-able form."""
        return {k: (None if m is None else m._asdict()) for k, m in vars(self).items()}


def exsum_metrics(
    applicable: np.ndarray,
    behaviour: Intervals,
    data: FEUData,
    measure: ExplanationMeasure,
) -> Metrics:
    """Coverage, validity and sharpness of one set of (applicability, behaviour) values.

    Parameters
    ----------
    applicable : bool ndarray of shape (n,)
        a(u) (or "responsible" for a selected rule).
    behaviour : Intervals
        b(u) for each of the ``n`` FEUs.
    data : FEUData
        Explanations and weights 1/L.
    measure : ExplanationMeasure
        μ for sharpness.

    Returns
    -------
    Metrics
    """
    w = data.weight
    e = data.explanation
    a = np.asarray(applicable, dtype=bool)
    wa = w * a
    total, covered = float(w.sum()), float(wa.sum())
    if covered == 0.0:
        return Metrics(0.0, float("nan"), float("nan"))
    valid = behaviour.contains(e)
    mu = measure.measure(behaviour)
    if measure.zero_pmf > 0:
        mu = mu - measure.zero_pmf * ((e == 0) & behaviour.contains_zero())
    mu = np.clip(mu, 0.0, 1.0)
    # the ratios are fractions of ``covered``; sums in a different order can exceed it by one ulp
    return Metrics(
        min(covered / total, 1.0),
        min(float(wa @ valid) / covered, 1.0),
        min(float(wa @ (1.0 - mu)) / covered, 1.0),
    )


class ExplanationSummary:
    """A rule union on FEU data with its explanation measure: metrics, parameter updates, files.

    Parameters
    ----------
    rules : RuleUnion
        The summary (its rules' parameters are changed in place by :meth:`set_parameter`).
    data : FEUData
        The FEUs.
    measure : ExplanationMeasure, default=None
        μ; default ``KDEMeasure(data.explanation, data.weight, zero_mass=zero_mass)``, built once.
    zero_mass : bool, default=False
        Point mass at zero for the default measure.

    Examples
    --------
    >>> import numpy as np
    >>> from sciprob.theory.exsum import FEUData, Parameter, Rule, RuleUnion, UniformMeasure, rulesets
    >>> data = FEUData(np.array([0.2, -0.4, 0.6]), np.array([0, 0, 1]), {"value": np.array([1.0, -1.0, 2.0])})
    >>> rule = Rule("R1", rulesets.feature_above, rulesets.constant_range,
    ...             [Parameter("threshold", -3, 3, 0.0)],
    ...             [Parameter("lo", -1, 1, 0.0), Parameter("hi", -1, 1, 1.0)])
    >>> s = ExplanationSummary(RuleUnion([rule]), data, UniformMeasure(-1, 1))
    >>> s.metrics().union
    Metrics(coverage=0.75, validity=1.0, sharpness=0.5)
    """

    def __init__(
        self,
        rules: RuleUnion,
        data: FEUData,
        measure: ExplanationMeasure | None = None,
        zero_mass: bool = False,
    ) -> None:
        if not isinstance(rules, RuleUnion):
            raise TypeError(f"`rules` must be a RuleUnion, got {type(rules).__name__}.")
        if not isinstance(data, FEUData):
            raise TypeError(f"`data` must be FEUData, got {type(data).__name__}.")
        self.rules = rules
        self.data = data
        self.zero_mass = bool(zero_mass)
        self.measure = (
            KDEMeasure(data.explanation, data.weight, zero_mass=zero_mass) if measure is None else measure
        )
        self._without: dict[str, RuleUnion | None] = {}

    def set_parameter(self, rule: str, name: str, value: float) -> None:
        """Set one parameter (range-checked before anything changes)."""
        self.rules.rule(rule).set(name, value)

    def parameters(self) -> dict[str, dict[str, float]]:
        """Return current values: rule name -> parameter name -> value."""
        return {r.name: r.values() for r in self.rules.rules}

    def reset(self) -> None:
        """All parameters back to their defaults."""
        self.rules.reset()

    def union_metrics(self) -> Metrics:
        """Metrics of the whole union."""
        out = self.rules.evaluate(self.data)
        return exsum_metrics(out.applicable, out.behaviour, self.data, self.measure)

    def rule_metrics(self, name: str) -> Metrics:
        """Metrics of rule ``name`` where it is responsible, with its own behaviour range."""
        rule = self.rules.rule(name)
        out = self.rules.evaluate(self.data)
        _, b = rule.evaluate(self.data)
        return exsum_metrics(out.responsible[name], b, self.data, self.measure)

    def counterfactual_metrics(self, name: str) -> Metrics:
        """Metrics of the union without rule ``name`` (zeros if it is the only rule)."""
        if name not in self._without:
            self._without[name] = self.rules.without(name)
        rest = self._without[name]
        if rest is None:
            return Metrics(0.0, 0.0, 0.0)
        out = rest.evaluate(self.data)
        return exsum_metrics(out.applicable, out.behaviour, self.data, self.measure)

    def metrics(self, selected: str | None = None) -> MetricsReport:
        """Union metrics, plus the selected rule's and the counterfactual ones when ``selected`` is given."""
        if selected is None:
            return MetricsReport(self.union_metrics())
        return MetricsReport(
            self.union_metrics(), self.rule_metrics(selected), self.counterfactual_metrics(selected)
        )

    def feu_status(self, selected: str | None = None) -> dict[str, np.ndarray]:
        """Per FEU: applicable (and responsible for ``selected``), valid, and the responsible rule's index.

        Returns
        -------
        dict
            ``applicable``, ``valid`` (bool (n,)) and ``rule`` (int (n,), index into ``rules.names`` of the
            first responsible rule, -1 for none).
        """
        out = self.rules.evaluate(self.data)
        if selected is None:
            app, b = out.applicable, out.behaviour
        else:
            app = out.responsible[selected]
            b = self.rules.rule(selected).evaluate(self.data)[1]
        rule = np.full(self.data.n, -1)
        for i, name in reversed(list(enumerate(self.rules.names))):
            rule = np.where(out.responsible[name], i, rule)
        return {"applicable": app, "valid": b.contains(self.data.explanation), "rule": rule}

    def save(self, path: str | Path, data_file: str | Path | None = None) -> Path:
        """Save the rule set (and optionally the FEU data next to it, as ``data_file`` ``.npz``)."""
        if data_file is not None:
            self.data.save(data_file)
        return self.rules.save(path, data_file=data_file, zero_mass=self.zero_mass)

    @classmethod
    def load(cls, path: str | Path, data: FEUData | None = None) -> ExplanationSummary:
        """Load a rule file; the FEU data come from ``data`` or from the file the rule file names."""
        rules, data_path, options = load_rule_file(path)
        if data is None:
            if data_path is None:
                raise ValueError(
                    f"rule file {str(path)!r} names no FEU data; pass `data=` or save with `data_file=`."
                )
            data = FEUData.load(data_path)
        return cls(rules, data, zero_mass=bool(options.get("zero_mass", False)))
