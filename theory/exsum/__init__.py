"""ExSum: explanation summaries of local attributions, with quality metrics and a browser GUI.

Turn many local explanations (saliency, Integrated Gradients, SHAP, LIME, class activation maps)
into a few global rules and measure each rule's coverage, validity and sharpness (Zhou, Ribeiro &
Shah, NAACL 2022, arXiv:2205.00130). Everything is vectorised over feature-explanation units
(FEUs). See ``docs/exsum.md``.
"""

from sciprob.theory.exsum import rulesets
from sciprob.theory.exsum.data import FEUData
from sciprob.theory.exsum.explain import ATTRIBUTION_METHODS, explain, series_feus, tabular_feus
from sciprob.theory.exsum.intervals import Intervals
from sciprob.theory.exsum.measure import ExplanationMeasure, KDEMeasure, UniformMeasure
from sciprob.theory.exsum.metrics import ExplanationSummary, Metrics, MetricsReport, exsum_metrics
from sciprob.theory.exsum.rules import (
    Parameter,
    Rule,
    RuleUnion,
    UnionOutput,
    function_path,
    load_rule_file,
    parse_formula,
    resolve_function,
)
from sciprob.theory.exsum.tuning import AutoTuneResult, OptimiseResult, autotune, optimise_rule

__all__ = [
    "ATTRIBUTION_METHODS",
    "AutoTuneResult",
    "ExplanationMeasure",
    "ExplanationSummary",
    "FEUData",
    "Intervals",
    "KDEMeasure",
    "Metrics",
    "MetricsReport",
    "OptimiseResult",
    "Parameter",
    "Rule",
    "RuleUnion",
    "UniformMeasure",
    "UnionOutput",
    "autotune",
    "explain",
    "exsum_metrics",
    "function_path",
    "load_rule_file",
    "optimise_rule",
    "parse_formula",
    "resolve_function",
    "rulesets",
    "series_feus",
    "tabular_feus",
]
