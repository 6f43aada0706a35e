"""Experiment ``tsc``: the review's classifiers on UCR/UEA data sets, ranks and explanations.

Trains every configured model ``runs`` times on each data set (test accuracy
of the network selected by the review's rule), reports the mean and standard
deviation next to the review's numbers, the average ranks with a
critical-difference diagram, class activation maps and training curves.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sciprob.config import param
from sciprob.experiments import RunContext, UnitContext, UnitResult, experiment
from sciprob.learning.tsc.classifiers import MODEL_NAMES

# the paper preset's models: every classifier but the single Inception network
_ALL_MODELS = tuple(name for name in MODEL_NAMES if name != "inception")
_GAP_MODELS = ("fcn", "resnet", "inception", "inceptiontime")
_CAM_MODEL = "cam_model.pt"  # run 0's trained GAP network, kept in its unit folder for the CAM figure
_REVIEW_EPOCHS = {
    "mlp": 5000,
    "fcn": 2000,
    "resnet": 1500,
    "encoder": 100,
    "mcnn": 200,
    "tlenet": 1000,
    "mcdcnn": 120,
    "timecnn": 2000,
    "inception": 1500,
    "inceptiontime": 1500,
}

_UCR18 = "Ismail Fawaz et al. 2019, dl-4-tsc results-ucr-128.csv (UCR 2018, 5 runs)"
_MTS = "Ismail Fawaz et al. 2019, dl-4-tsc results-mts-avg-std.csv (10 runs)"
_INC = "Ismail Fawaz et al. 2020 (InceptionTime), results-inception-128.csv, single network, 5 runs"
_INC_MTS = "Ismail Fawaz et al. 2020 (InceptionTime), results-mts.csv at commit 0d623a3"
#: (dataset, model) -> (mean accuracy, std or None, source); ../shared/references/learning.md §3.
REVIEW_ACCURACY: dict[tuple[str, str], tuple[float, float | None, str]] = {
    ("GunPoint", "mlp"): (0.928, 0.010, _UCR18),
    ("GunPoint", "fcn"): (1.000, 0.0, _UCR18),
    ("GunPoint", "resnet"): (0.9907, 0.0076, _UCR18),
    ("GunPoint", "encoder"): (0.784, 0.022, _UCR18),
    ("ItalyPowerDemand", "mlp"): (0.9534, None, _UCR18),
    ("ItalyPowerDemand", "fcn"): (0.9629, None, _UCR18),
    ("ItalyPowerDemand", "resnet"): (0.9615, None, _UCR18),
    ("ItalyPowerDemand", "encoder"): (0.9638, None, _UCR18),
    ("JapaneseVowels", "mlp"): (0.976, 0.002, _MTS),
    ("JapaneseVowels", "fcn"): (0.993, 0.002, _MTS),
    ("JapaneseVowels", "resnet"): (0.992, 0.003, _MTS),
    ("JapaneseVowels", "encoder"): (0.976, 0.006, _MTS),
    ("GunPoint", "inceptiontime"): (1.000, None, _INC),
    ("ItalyPowerDemand", "inceptiontime"): (0.9642, None, _INC),
    ("JapaneseVowels", "inceptiontime"): (0.9919, None, _INC_MTS),
    ("BasicMotions", "inceptiontime"): (1.000, None, _INC_MTS),
}


@dataclass(frozen=True)
class TSCConfig:
    """Data sets, models, runs and training length of the TSC comparison."""

    datasets: tuple[str, ...] = param(
        ("GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels"),
        "UCR/UEA data set names (load_ucr)",
    )
    models: tuple[str, ...] = param(_ALL_MODELS, "models: " + ", ".join(_ALL_MODELS) + ", inception")
    runs: int = param(5, "independent training runs per data set and model")
    epoch_fraction: float = param(1.0, "share of each model's review epochs to train (1 = the review's)")
    epochs: int | None = param(None, "fixed epochs for every network (overrides epoch_fraction)")
    model_epochs: tuple[str, ...] = param(
        (), "per-model epochs as model=epochs, e.g. resnet=50 (wins over both)"
    )
    inception_members: int = param(5, "networks in the InceptionTime ensemble")
    length_method: Literal["resample", "pad"] = param("resample", "how unequal-length series are equalised")
    normalize: Literal["review", "always", "never"] = param(
        "review", "z-normalise each series: review = univariate only (dl-4-tsc leaves its MTS archive raw)"
    )
    max_train: int | None = param(None, "use at most this many training cases (stratified-free head; tests)")
    max_test: int | None = param(None, "use at most this many test cases (tests)")
    data_root: str | None = param(None, "folder searched first for <name>/<name>_TRAIN.ts")
    monitor_every: int = param(10, "epochs between test-accuracy points of the training curves")

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in _ALL_MODELS + ("inception",)]
        if unknown or not self.models:
            raise ValueError(
                f"`models` must be a non-empty subset of {[*_ALL_MODELS, 'inception']}, got {self.models}"
            )
        if not self.datasets:
            raise ValueError("`datasets` must name at least one data set")
        if self.runs < 1:
            raise ValueError(f"`runs` must be >= 1, got {self.runs}")
        if not 0 < self.epoch_fraction <= 1:
            raise ValueError(f"`epoch_fraction` must lie in (0, 1], got {self.epoch_fraction}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"`epochs` must be a positive integer or none, got {self.epochs}")
        for item in self.model_epochs:
            model, _, count = item.partition("=")
            if model not in _REVIEW_EPOCHS or not count.isdigit() or int(count) < 1:
                raise ValueError(
                    f"`model_epochs` items must read model=epochs with a known model and epochs >= 1, "
                    f"got {item!r}"
                )
        for key in ("inception_members", "monitor_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be >= 1, got {getattr(self, key)}")
        for key in ("max_train", "max_test"):
            value = getattr(self, key)
            if value is not None and value < 2:
                raise ValueError(f"`{key}` must be >= 2 or none, got {value}")

    def epochs_for(self, model: str) -> int | None:
        """Epochs one network of ``model`` trains (``None`` for TWIESN, which has no epochs)."""
        if model not in _REVIEW_EPOCHS:
            return None
        per_model = dict(item.split("=") for item in self.model_epochs)
        if model in per_model:
            return int(per_model[model])
        if self.epochs is not None:
            return self.epochs
        return max(1, round(_REVIEW_EPOCHS[model] * self.epoch_fraction))


def _load(name: str, cfg: TSCConfig):
    from sciprob.learning.tsc.data import load_ucr

    train, test = load_ucr(name, "train", cfg.data_root), load_ucr(name, "test", cfg.data_root)
    length = int(max(train.lengths.max(), test.lengths.max()))
    norm = cfg.normalize == "always" or (cfg.normalize == "review" and train.n_channels == 1)
    X, Xt = (d.to_array(normalize=norm, length=length, method=cfg.length_method) for d in (train, test))
    classes = np.unique(train.labels)
    unseen = set(test.labels) - set(classes)
    if unseen:
        raise ValueError(
            f"data set {name!r}: test labels {sorted(unseen)} do not occur in the training split"
        )
    y, yt = np.searchsorted(classes, train.labels), np.searchsorted(classes, test.labels)
    if cfg.max_train is not None:
        X, y = X[: cfg.max_train], y[: cfg.max_train]
    if cfg.max_test is not None:
        Xt, yt = Xt[: cfg.max_test], yt[: cfg.max_test]
    return X, y, Xt, yt, classes, not (train.equal_length and test.equal_length)


def _plot_curves(curves: dict, datasets: tuple[str, ...]):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(datasets), figsize=(4.2 * len(datasets), 6), squeeze=False)
    for col, ds in enumerate(datasets):
        for (d, model), hist in curves.items():
            if d != ds or not hist.get("loss"):
                continue
            (line,) = axes[0, col].semilogy(np.arange(1, len(hist["loss"]) + 1), hist["loss"], label=model)
            if hist.get("monitor_epoch"):
                axes[1, col].plot(
                    hist["monitor_epoch"], hist["monitor_accuracy"], color=line.get_color(), label=model
                )
        axes[0, col].set_title(ds)
        axes[0, col].set_ylabel("training loss")
        axes[1, col].set_ylabel("test accuracy (monitor)")
        axes[1, col].set_xlabel("epoch")
        axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _plot_cams(model, X: np.ndarray, y: np.ndarray, classes: np.ndarray, title: str):
    import matplotlib.pyplot as plt

    from sciprob.learning.tsc.cam import class_activation_map, plot_cam

    picks = [int(np.flatnonzero(y == c)[0]) for c in range(len(classes)) if np.any(y == c)]
    cams = class_activation_map(model, X[picks], target=y[picks])
    fig, axes = plt.subplots(1, len(picks), figsize=(3.6 * len(picks), 3), squeeze=False)
    for ax, i, cam in zip(axes[0], picks, cams, strict=True):
        points = plot_cam(ax, X[i, 0], cam, f"class {classes[y[i]]}")
    fig.colorbar(points, ax=axes[0].tolist(), label="CAM (scaled)")
    fig.suptitle(title, fontsize=10)
    return fig


def _units(cfg: TSCConfig) -> list[dict]:
    """One unit per (data set, model, run)."""
    return [
        {"dataset": ds, "model": model, "run": run}
        for ds in cfg.datasets
        for model in cfg.models
        for run in range(cfg.runs)
    ]


def _combine(cfg: TSCConfig, results: list[UnitResult], ctx: RunContext) -> dict[str, float]:
    """Tabulate accuracy over runs beside the review, rank, explain and plot."""
    import torch

    from sciprob.learning.tsc.ranking import compare_classifiers, plot_critical_difference

    by_key = {(r.key["dataset"], r.key["model"], r.key["run"]): r for r in results}
    data = {ds: _load(ds, cfg) for ds in cfg.datasets}
    curves = {(ds, m): by_key[ds, m, 0].artifacts["history"] for ds in cfg.datasets for m in cfg.models}
    for (ds, model, _), r in by_key.items():
        key = f"train_seconds/{ds}/{model}"
        ctx.timings[key] = ctx.timings.get(key, 0.0) + r.timings["train_seconds"]
    metrics: dict[str, float] = {}
    table = np.zeros((len(cfg.datasets), len(cfg.models)))
    rows = ["| data set | model | accuracy (mean ± std) | review | gap (points) |", "|---|---|---|---|---|"]
    gaps = []
    for i, ds in enumerate(cfg.datasets):
        for j, model in enumerate(cfg.models):
            accs = np.array([by_key[ds, model, r].metrics["accuracy"] for r in range(cfg.runs)])
            mean = float(accs.mean())
            metrics[f"accuracy/{ds}/{model}"] = mean
            if len(accs) > 1:  # a spread needs two runs; one run has none (not zero)
                std = float(accs.std(ddof=1))
                metrics[f"accuracy_std/{ds}/{model}"] = std
            table[i, j] = mean
            ref = REVIEW_ACCURACY.get((ds, model))
            review, gap = "", ""
            if ref is not None:
                ctx.anchor(f"accuracy/{ds}/{model}", ref[0], ref[2])
                if ref[1] is not None and len(accs) > 1:
                    ctx.anchor(f"accuracy_std/{ds}/{model}", ref[1], ref[2])
                review, gap = f"{100 * ref[0]:.2f}", f"{100 * (mean - ref[0]):+.2f}"
                if abs(mean - ref[0]) > 0.02 + 1e-9:
                    gaps.append(f"{model} on {ds}: {100 * mean:.2f} vs {100 * ref[0]:.2f} ({gap} points)")
            spread = f" ± {100 * std:.2f}" if len(accs) > 1 else " (1 run)"
            rows.append(f"| {ds} | {model} | {100 * mean:.2f}{spread} | {review} | {gap} |")
    ctx.table("Test accuracy (%) over runs", "\n".join(rows))

    reduced = [m for m in cfg.models if m in _REVIEW_EPOCHS and cfg.epochs_for(m) < _REVIEW_EPOCHS[m]]
    if reduced:
        ctx.note(
            "Reduced training: "
            + ", ".join(f"{m} {cfg.epochs_for(m)} of {_REVIEW_EPOCHS[m]} epochs" for m in reduced)
            + "; the review's numbers assume the full count."
        )
    if gaps:
        ctx.note("**Not reproduced within 2 accuracy points:** " + "; ".join(gaps) + ".")
    if cfg.max_train is not None or cfg.max_test is not None:
        ctx.note(
            "Only a subset of the cases was used (`max_train`/`max_test`): not comparable with the review."
        )
    if "inceptiontime" in cfg.models and cfg.inception_members != 5:
        ctx.note(f"InceptionTime used {cfg.inception_members} member network(s) instead of the paper's 5.")
    if {"resnet", "inceptiontime"} <= set(cfg.models):
        inc, res = (table[:, cfg.models.index(m)].mean() for m in ("inceptiontime", "resnet"))
        ctx.note(
            f"Average accuracy: InceptionTime {100 * inc:.2f} %, ResNet {100 * res:.2f} % "
            f"({'at least as good as ResNet, as' if inc >= res else '**worse** than ResNet, unlike'} "
            "in the InceptionTime paper)."
        )
    if any(d[5] for d in data.values()):
        ctx.note(
            f"Unequal-length data sets were equalised by `{cfg.length_method}` to the longest series of "
            f"train and test; z-normalisation: `{cfg.normalize}` (review: univariate series only)."
        )
    ctx.note(
        "Model selection follows dl-4-tsc: the epoch with the lowest training loss (MCDCNN: lowest loss "
        "on 33 % of the training set; MCNN: lowest voted error on 20 %; TWIESN: best of its grid on 20 %). "
        "Accuracy std is the sample std over runs (ddof=1, as pandas in dl-4-tsc); with one run it is not "
        "reported."
    )

    if len(cfg.models) >= 2:
        comparison = compare_classifiers(table, list(cfg.models))
        ranks = " · ".join(
            f"{n} {r:.2f}" for n, r in zip(comparison.names, comparison.average_ranks, strict=True)
        )
        ctx.table("Average ranks (1 = best)", f"| ranks |\n|---|\n| {ranks} |")
        ctx.savefig(
            plot_critical_difference(comparison),
            "critical_difference.png",
            "Average ranks over the data sets; bars join models without a significant difference "
            "(Wilcoxon signed-rank, Holm-corrected, alpha 0.05).",
        )
    ctx.savefig(
        _plot_curves(curves, cfg.datasets),
        "training_curves.png",
        "Training loss per epoch and monitored test accuracy (run 0).",
    )
    gap_models = [m for m in cfg.models if m in _GAP_MODELS]
    if gap_models:
        ds, model = cfg.datasets[0], gap_models[0]
        net = torch.load(by_key[ds, model, 0].dir / _CAM_MODEL, weights_only=False)
        X, y, Xt, yt, classes, _ = data[ds]
        ctx.savefig(
            _plot_cams(net, Xt, yt, classes, f"{model} on {ds} (test series, true class)"),
            "cam.png",
            f"Class activation maps of {model} on one {ds} test series per class (first channel).",
        )
    return metrics


@experiment(
    "tsc",
    config=TSCConfig,
    presets={
        "tiny": {
            "datasets": ("GunPoint", "ItalyPowerDemand"),
            "models": ("fcn", "mlp"),
            "runs": 1,
            "epochs": 2,
            "max_train": 20,
            "max_test": 40,
            "monitor_every": 1,
        },
        "quick": {
            "datasets": ("GunPoint", "ItalyPowerDemand"),
            "models": ("fcn", "resnet", "inceptiontime"),
            "runs": 1,
            "epoch_fraction": 0.05,
            "model_epochs": ("resnet=50", "inceptiontime=40"),
            "inception_members": 1,
        },
        "paper": {},
    },
    paper="Ismail Fawaz et al. 2019, Deep learning for time series classification: a review (DMKD 33)",
    summary="The review's deep classifiers and InceptionTime on UCR/UEA data: accuracy, ranks, CAMs.",
    units=_units,
    combine=_combine,
)
def fit_unit(cfg: TSCConfig, unit: UnitContext) -> UnitResult:
    """Train one network (or ensemble) and measure its test accuracy; keep run 0's GAP model for CAMs."""
    import torch

    from sciprob.learning.tsc.classifiers import FitOptions, InceptionTimeArchitecture, get_architecture
    from sciprob.runtime import atomic_write_bytes

    ds, model, run = unit.key["dataset"], unit.key["model"], unit.key["run"]
    X, y, Xt, yt, classes, _ = _load(ds, cfg)
    arch = (
        InceptionTimeArchitecture(cfg.inception_members)
        if model == "inceptiontime"
        else get_architecture(model)
    )
    opts = FitOptions(
        epochs=cfg.epochs_for(model),
        device=unit.device,
        checkpoint_dir=unit.dir,
        resume=unit.resume or any(unit.dir.glob("*.pt")),
        monitor=(Xt, yt) if run == 0 else None,
        description=f"{ds}/{model}/{run}",
        rng=unit.rng,
    )
    start = time.perf_counter()
    fitted = arch.fit(X, y, len(classes), opts)
    seconds = time.perf_counter() - start
    acc = float(np.mean(fitted.predict_proba(Xt, unit.device).argmax(1) == yt))
    unit.log.info("%s/%s/%d: test accuracy %.4f", ds, model, run, acc)
    for stale in unit.dir.glob("*.pt"):  # the networks' training checkpoints are done with
        stale.unlink()
    if run == 0 and model in _GAP_MODELS:
        buf = io.BytesIO()
        torch.save(fitted.model.cpu(), buf)
        atomic_write_bytes(unit.dir / _CAM_MODEL, buf.getvalue())
    return UnitResult(
        metrics={"accuracy": acc},
        artifacts={"history": {k: [float(v) for v in vals] for k, vals in fitted.history.items()}},
        timings={"train_seconds": seconds},
    )
