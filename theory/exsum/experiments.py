"""Experiment ``exsum``: explanation summaries of a tabular MLP (Integrated Gradients) and an FCN (CAMs).

Two units, one per domain (Zhou, Ribeiro & Shah 2022 use two NLP domains; these are the issue's):

- ``breast_cancer``: an MLP on scikit-learn's breast-cancer data, Integrated Gradients (Captum) of
  the benign class on the test rows; one instance per row, one FEU per (feature, z-score);
- ``ucr``: the review's FCN on a UCR data set (``sciprob.learning.tsc``), class activation maps of
  the predicted class on the test series; one FEU per time step with local shape features (level,
  slope, distance to the series' peak).

Explanations are divided by their largest absolute value (as the official ``Data(normalize=True)``),
so behaviour ranges live in [-1, 1]. Each domain has a small hand-written rule set; its metrics
``coverage|validity|sharpness/<domain>/<rule>`` (``union`` for the whole set) are reported with
the hand-set parameters and after tuning every rule in precedence order with the joint optimiser
(``.../tuned``: maximal sharpness subject to ``min_validity`` and ``min_coverage``). Each unit
writes its tuned rule file and FEU data (``rules.json``, ``feus.npz`` in the unit folder) for
``sciprob exsum serve``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sciprob.config import param
from sciprob.experiments import RunContext, UnitContext, UnitResult, experiment
from sciprob.theory.exsum import rulesets
from sciprob.theory.exsum.data import FEUData
from sciprob.theory.exsum.metrics import ExplanationSummary
from sciprob.theory.exsum.rules import Parameter, Rule, RuleUnion
from sciprob.theory.exsum.tuning import optimise_rule

PAPER = (
    "Zhou, Ribeiro & Shah 2022, ExSum: From Local Explanations to Model Understanding "
    "(NAACL, arXiv:2205.00130)"
)
DOMAINS = ("breast_cancer", "ucr")
WORST_SIZE = ("worst area", "worst radius", "worst perimeter", "worst concave points")
METRICS = ("coverage", "validity", "sharpness")


@dataclass(frozen=True)
class ExSumConfig:
    """Domains, models, explanations and the tuning constraints."""

    domains: tuple[Literal["breast_cancer", "ucr"], ...] = param(DOMAINS, "domains (one unit each)")
    attribution: Literal["integrated_gradients", "saliency", "kernel_shap", "lime"] = param(
        "integrated_gradients", "Captum attribution for the breast-cancer MLP"
    )
    mlp_hidden: int = param(32, "hidden units of the breast-cancer MLP")
    mlp_epochs: int = param(300, "full-batch Adam epochs of the MLP")
    test_fraction: float = param(0.3, "share of breast-cancer rows held out (and explained)")
    ucr_dataset: str = param(
        "GunPoint", "UCR data set for the FCN (shipped with aeon or under $SCIPROB_DATA)"
    )
    ig_steps: int = param(50, "integration steps of Integrated Gradients")
    fcn_epochs: int = param(60, "FCN training epochs (the review uses 2000)")
    max_series: int = param(150, "test series explained at most")
    stride: int = param(2, "keep every stride-th time step as an FEU")
    min_validity: float = param(0.85, "tuning: minimum validity of each rule")
    min_coverage: float = param(0.03, "tuning: minimum coverage of each rule (where it is responsible)")
    n_random: int = param(64, "tuning: random starting points per rule")
    grid: int = param(13, "tuning: grid points per coordinate scan (and per axis of pair scans)")
    rounds: int = param(2, "tuning: coordinate-search rounds")

    def __post_init__(self) -> None:
        if not self.domains or len(set(self.domains)) != len(self.domains):
            raise ValueError(f"`domains` must be distinct names from {DOMAINS}, got {self.domains}")
        for name in ("mlp_hidden", "mlp_epochs", "ig_steps", "fcn_epochs", "max_series", "stride", "grid"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {getattr(self, name)}")
        if self.grid < 2:
            raise ValueError(f"`grid` must be at least 2, got {self.grid}")
        if not 0.05 <= self.test_fraction <= 0.9:
            raise ValueError(f"`test_fraction` must be in [0.05, 0.9], got {self.test_fraction}")
        for name in ("min_validity", "min_coverage"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"`{name}` must be in [0, 1], got {getattr(self, name)}")


# --- rule sets -----------------------------------------------------------------------------------
# (rule, the feature its figure plots against)


def _rules_breast_cancer() -> tuple[RuleUnion, dict[str, str]]:
    a, b = Parameter, Parameter
    rules = [
        Rule("worst_size", rulesets.in_feature_set_above, rulesets.constant_range,
             [a("threshold", -2.0, 3.0, 0.5)], [b("lo", -1.0, 1.0, -1.0), b("hi", -1.0, 1.0, 0.0)],
             "large worst area/radius/perimeter/concave points lower the benign logit"),
        Rule("small_z", rulesets.abs_value_below, rulesets.symmetric_range,
             [a("tau", 0.0, 3.0, 0.5)], [b("h", 0.0, 1.0, 0.1)],
             "features near their mean get small attributions"),
        Rule("high_z", rulesets.feature_above, rulesets.constant_range,
             [a("threshold", -1.0, 4.0, 1.0)], [b("lo", -1.0, 1.0, -0.5), b("hi", -1.0, 1.0, 0.05)],
             "other high values push towards malignant"),
        Rule("low_z", rulesets.feature_below, rulesets.constant_range,
             [a("threshold", -4.0, 1.0, -1.0)], [b("lo", -1.0, 1.0, -0.05), b("hi", -1.0, 1.0, 0.5)],
             "low values push towards benign"),
    ]  # fmt: skip
    return RuleUnion(rules, "worst_size > small_z > (high_z & low_z)"), {
        "worst_size": "value", "small_z": "value", "high_z": "value", "low_z": "value"}  # fmt: skip


def _rules_ucr() -> tuple[RuleUnion, dict[str, str]]:
    a, b = Parameter, Parameter
    rules = [
        Rule("near_peak", rulesets.near_peak, rulesets.constant_range,
             [a("radius", 0.0, 0.5, 0.1)], [b("lo", -1.0, 1.0, 0.0), b("hi", -1.0, 1.0, 1.0)],
             "steps close to the series' peak get a positive class activation"),
        Rule("high_level", rulesets.level_above, rulesets.constant_range,
             [a("threshold", -2.0, 3.0, 1.0)], [b("lo", -1.0, 1.0, -0.2), b("hi", -1.0, 1.0, 1.0)],
             "high values are evidence for the predicted class"),
        Rule("steep", rulesets.slope_above, rulesets.constant_range,
             [a("threshold", -0.5, 0.5, 0.05)], [b("lo", -1.0, 1.0, -0.5), b("hi", -1.0, 1.0, 1.0)],
             "rising parts of the series"),
        Rule("rest", rulesets.everything, rulesets.constant_range,
             [], [b("lo", -1.0, 1.0, -1.0), b("hi", -1.0, 1.0, 0.5)],
             "everything else"),
    ]  # fmt: skip
    return RuleUnion(rules, "near_peak > high_level > steep > rest"), {
        "near_peak": "peak_distance", "high_level": "level", "steep": "slope", "rest": "time"}  # fmt: skip


# --- domains -------------------------------------------------------------------------------------


def _breast_cancer_feus(cfg: ExSumConfig, unit: UnitContext) -> tuple[FEUData, dict[str, float]]:
    import torch
    from sklearn.datasets import load_breast_cancer
    from torch import nn

    from sciprob.runtime import check_finite
    from sciprob.theory.exsum.explain import explain, tabular_feus

    ds = load_breast_cancer()
    X, y = ds.data.astype(np.float64), ds.target.astype(np.int64)  # target 1 = benign
    perm = unit.rng.permutation(len(y))
    n_test = int(round(cfg.test_fraction * len(y)))
    test, train = perm[:n_test], perm[n_test:]
    mu, sd = X[train].mean(0), X[train].std(0)
    Z = (X - mu) / np.where(sd > 0, sd, 1.0)
    net = nn.Sequential(nn.Linear(Z.shape[1], cfg.mlp_hidden), nn.ReLU(), nn.Linear(cfg.mlp_hidden, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)
    xt = torch.as_tensor(Z[train], dtype=torch.float32)
    yt = torch.as_tensor(y[train])
    t0 = time.perf_counter()
    for step in range(cfg.mlp_epochs):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(xt), yt)
        check_finite(loss.detach(), step=step, where="exsum breast-cancer MLP")
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - t0
    net.eval()
    with torch.no_grad():
        proba = torch.softmax(net(torch.as_tensor(Z[test], dtype=torch.float32)), -1).numpy()
    acc = float(np.mean(proba.argmax(1) == y[test]))
    t0 = time.perf_counter()
    attr = explain(net, Z[test], target=1, method=cfg.attribution, n_steps=cfg.ig_steps)
    explain_s = time.perf_counter() - t0
    attr = attr / np.abs(attr).max()
    data = tabular_feus(
        Z[test], attr, y[test], proba[:, 1], list(ds.feature_names), WORST_SIZE, explained_class=1
    )
    unit.log.info("breast_cancer: MLP test accuracy %.4f, %d FEUs", acc, data.n)
    return data, {"accuracy": acc, "train_seconds": train_s, "explain_seconds": explain_s}


def _ucr_feus(cfg: ExSumConfig, unit: UnitContext) -> tuple[FEUData, dict[str, float]]:
    from sciprob.learning.tsc import class_activation_map, fit_classifier, load_ucr

    tr, te = load_ucr(cfg.ucr_dataset, "train"), load_ucr(cfg.ucr_dataset, "test")
    classes = np.unique(tr.labels)
    X, Xt = tr.to_array(), te.to_array(length=tr.to_array().shape[-1])
    if X.shape[1] != 1:
        raise ValueError(f"`ucr_dataset` must be univariate, {cfg.ucr_dataset!r} has {X.shape[1]} channels")
    y = np.searchsorted(classes, tr.labels)
    yt = np.searchsorted(classes, te.labels)
    t0 = time.perf_counter()
    fitted = fit_classifier(
        "fcn", X, y, len(classes), epochs=cfg.fcn_epochs, device=unit.device, checkpoint_dir=unit.dir,
        resume=unit.resume or any(unit.dir.glob("*.pt")), rng=unit.rng,
        description=f"exsum/{cfg.ucr_dataset}/fcn",
    )  # fmt: skip
    train_s = time.perf_counter() - t0
    for stale in unit.dir.glob("*.pt"):  # the network's training checkpoints are done with
        stale.unlink()
    keep = np.sort(unit.rng.permutation(len(yt))[: cfg.max_series])
    Xt, yt = Xt[keep], yt[keep]
    proba = fitted.predict_proba(Xt, unit.device)
    pred = proba.argmax(1)
    acc = float(np.mean(pred == yt))
    t0 = time.perf_counter()
    cam = class_activation_map(fitted.model, Xt, target=pred, device=unit.device)
    explain_s = time.perf_counter() - t0
    data = _series(Xt[:, 0, :], cam, yt, proba[np.arange(len(pred)), pred], cfg.stride, pred)
    unit.log.info("ucr/%s: FCN test accuracy %.4f, %d FEUs", cfg.ucr_dataset, acc, data.n)
    return data, {"accuracy": acc, "train_seconds": train_s, "explain_seconds": explain_s}


def _series(
    X: np.ndarray, cam: np.ndarray, y: np.ndarray, p: np.ndarray, stride: int, pred: np.ndarray
) -> FEUData:
    from sciprob.theory.exsum.explain import series_feus

    return series_feus(X, cam, y, p, stride=stride, normalise=True, explained_class=pred)


# --- the unit --------------------------------------------------------------------------------------


def _all_metrics(s: ExplanationSummary, suffix: str, domain: str) -> dict[str, float]:
    out: dict[str, float] = {}
    rows = [("union", s.union_metrics())] + [(n, s.rule_metrics(n)) for n in s.rules.names]
    for name, m in rows:
        for k in METRICS:
            v = getattr(m, k)
            out[f"{k}/{domain}/{name}{suffix}"] = float(v) if np.isfinite(v) else 0.0
    return out


def _figure_data(
    s: ExplanationSummary, feature_of: dict[str, str], rng: np.random.Generator
) -> dict[str, Any]:
    out = s.rules.evaluate(s.data)
    fig: dict[str, Any] = {}
    for name in s.rules.names:
        idx = np.flatnonzero(out.responsible[name])
        if idx.size > 1500:
            idx = np.sort(rng.choice(idx, 1500, replace=False))
        b = s.rules.rule(name).evaluate(s.data)[1]
        fig[name] = {
            "feature": feature_of[name],
            "x": s.data.features[feature_of[name]][idx].tolist(),
            "e": s.data.explanation[idx].tolist(),
            "lo": np.nanmin(b.lo[idx], axis=1).tolist() if idx.size else [],
            "hi": np.nanmax(b.hi[idx], axis=1).tolist() if idx.size else [],
            "valid": b.contains(s.data.explanation)[idx].astype(int).tolist(),
        }
    return fig


def _units(cfg: ExSumConfig) -> list[dict[str, Any]]:
    return [{"domain": d} for d in cfg.domains]


def _combine(cfg: ExSumConfig, results: list[UnitResult], ctx: RunContext) -> dict[str, float]:
    metrics: dict[str, float] = {}
    lines = [
        "| domain | rule | coverage | validity | sharpness | tuned cov. | tuned val. | tuned shp. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        d = r.key["domain"]
        metrics.update(r.metrics)
        for name in ["union"] + list(r.artifacts["rules"]):
            vals = [r.metrics[f"{k}/{d}/{name}{sfx}"] for sfx in ("", "/tuned") for k in METRICS]
            lines.append(f"| {d} | {name} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
        for k, v in r.artifacts["model"].items():
            ctx.timings[f"{d}/{k}"] = v
        ctx.note(
            f"**{d}**: {r.artifacts['description']}; "
            f"model test accuracy {r.artifacts['model']['accuracy']:.3f}; "
            f"{r.artifacts['n_feus']} FEUs in {r.artifacts['n_instances']} instances. Rules "
            f"`{r.artifacts['formula']}`; tuned values: {r.artifacts['tuned_values']}. "
            f"Rule file for the GUI: `{r.dir / 'rules.json'}` (`sciprob exsum serve` on it)."
        )
        _plot(ctx, d, r.artifacts["figure"])
    ctx.table("ExSum metrics before and after tuning", "\n".join(lines))
    empty = [k.split("/", 1)[1] for k, v in metrics.items() if k.startswith("coverage/") and v == 0.0]
    if empty:
        ctx.note(
            "No FEU left for " + ", ".join(f"`{e}`" for e in empty) + " (earlier rules pre-empt it); "
            "its validity and sharpness are undefined and reported as 0."
        )
    ctx.note(
        "The paper reports metrics for NLP rule sets (SST, QQP) only; these domains have no published "
        "numbers to compare with. Explanations are scaled to [-1, 1] by their largest absolute value."
    )
    return metrics


def _plot(ctx: RunContext, domain: str, fig_data: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    names = list(fig_data)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        f = fig_data[name]
        x, e, v = np.asarray(f["x"]), np.asarray(f["e"]), np.asarray(f["valid"], dtype=bool)
        if x.size:
            order = np.argsort(x)
            lo, hi = np.asarray(f["lo"])[order], np.asarray(f["hi"])[order]
            ax.fill_between(
                x[order], lo, hi, color="tab:green", alpha=0.2, step="mid", label="behaviour range"
            )
            ax.scatter(x[v], e[v], s=4, color="tab:blue", label="valid")
            ax.scatter(x[~v], e[~v], s=4, color="tab:red", label="invalid")
        ax.set_title(f"{name} (tuned)", fontsize=9)
        ax.set_xlabel(f["feature"])
        ax.set_ylim(-1.05, 1.05)
    axes[0][0].set_ylabel("explanation (scaled)")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    ctx.savefig(
        fig, f"behaviour_{domain}.png", f"{domain}: FEUs each tuned rule is responsible for, with its range"
    )
    plt.close(fig)


@experiment(
    "exsum",
    config=ExSumConfig,
    presets={
        "tiny": {
            "mlp_epochs": 40,
            "ig_steps": 10,
            "fcn_epochs": 2,
            "max_series": 12,
            "stride": 10,
            "n_random": 8,
            "grid": 5,
            "rounds": 1,
            "ucr_dataset": "ItalyPowerDemand",
            "mlp_hidden": 16,
        },
        "quick": {},
        "paper": {
            "fcn_epochs": 500,
            "max_series": 1000,
            "stride": 1,
            "n_random": 256,
            "grid": 33,
            "rounds": 5,
        },
    },  # fmt: skip
    paper=PAPER,
    summary="ExSum rules with coverage/validity/sharpness for an MLP (IG) and an FCN (CAM), tuned",
    units=_units,
    combine=_combine,
    devices=("cpu", "cuda"),
)
def exsum_unit(cfg: ExSumConfig, unit: UnitContext) -> UnitResult:
    """Explain one domain's model, summarise with its rule set, tune every rule, save the rule file."""
    domain = unit.key["domain"]
    if domain == "breast_cancer":
        data, model = _breast_cancer_feus(cfg, unit)
        union, feature_of = _rules_breast_cancer()
        desc = f"MLP on breast cancer, {cfg.attribution} of the benign class"
    else:
        data, model = _ucr_feus(cfg, unit)
        union, feature_of = _rules_ucr()
        desc = f"FCN on {cfg.ucr_dataset}, CAM of the predicted class"
    t0 = time.perf_counter()
    s = ExplanationSummary(union, data)
    model["measure_seconds"] = time.perf_counter() - t0
    metrics = _all_metrics(s, "", domain)
    t0 = time.perf_counter()
    for name in union.names:
        optimise_rule(
            s, name, min_validity=cfg.min_validity, min_coverage=cfg.min_coverage,
            n_random=cfg.n_random, grid=cfg.grid, rounds=cfg.rounds, seed=unit.rng,
        )  # fmt: skip
    model["tune_seconds"] = time.perf_counter() - t0
    metrics.update(_all_metrics(s, "/tuned", domain))
    s.save(unit.dir / "rules.json", data_file=unit.dir / "feus.npz")
    tuned = {r: {k: round(v, 4) for k, v in vals.items()} for r, vals in s.parameters().items()}
    return UnitResult(
        metrics=metrics,
        artifacts={
            "rules": union.names,
            "formula": union.formula,
            "description": desc,
            "model": {k: float(v) for k, v in model.items()},
            "n_feus": data.n,
            "n_instances": data.n_instances,
            "tuned_values": tuned,
            "figure": _figure_data(s, feature_of, unit.rng),
        },
        timings={k: float(v) for k, v in model.items() if k != "accuracy"},
    )
