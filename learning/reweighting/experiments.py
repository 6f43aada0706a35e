"""Experiment ``famus-noisy-labels``: meta-reweighting under label noise, exact and FaMUS.

Cross-entropy, MW-Net, MW-Net + FaMUS, L2RW, L2RW + FaMUS and Bayesian data
reweighting on scikit-learn's digits (a small CNN) and on the UCR/UEA
JapaneseVowels data (the TSC review's FCN, through :mod:`sciprob.learning.tsc`),
under symmetric and class-pair label noise with a small clean meta set. One
unit per (data, noise, method, run). The report states, with this run's
numbers, whether each claim of Xu et al. (2021)'s abstract holds here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sciprob.config import param
from sciprob.experiments import UnitContext, UnitResult, experiment
from sciprob.learning.reweighting._report import METHODS, NOISES, combine

__all__ = ["FaMUSNoiseConfig", "run_unit"]


@dataclass(frozen=True)
class FaMUSNoiseConfig:
    """Data, noise settings, methods, training length and FaMUS settings of the comparison."""

    datasets: tuple[str, ...] = param(("digits", "JapaneseVowels"), "'digits' and/or one UCR/UEA name")
    noises: tuple[str, ...] = param(tuple(NOISES), "noise settings: " + ", ".join(NOISES))
    symmetric_kind: Literal["uniform", "flip"] = param(
        "uniform", "symmetric noise: 'uniform' (official, some land on the true class) or 'flip'"
    )
    methods: tuple[str, ...] = param(METHODS, "methods: " + ", ".join(METHODS))
    seeds: int = param(3, "independent runs (data split, noise draw, initialisation)")
    epochs: int = param(60, "training epochs on digits")
    ucr_epochs: int = param(100, "training epochs on the UCR/UEA data set")
    meta_per_class: int = param(10, "clean meta examples per class on digits")
    ucr_meta_per_class: int = param(3, "clean meta examples per class on the UCR/UEA data set")
    test_size: int = param(500, "held-out digits test images")
    batch_size: int = param(100, "training batch size on digits (official MW-Net: 100)")
    ucr_batch_size: int = param(32, "training batch size on the UCR/UEA data set")
    lr: float = param(0.1, "digits CNN: SGD learning rate (Nesterov 0.9, wd 5e-4, MW-Net recipe)")
    ucr_lr: float = param(1e-3, "FCN: Adam learning rate (the TSC review's recipe)")
    vnet_lr: float = param(1e-3, "MW-Net weight network Adam learning rate (official 1e-3)")
    famus_k: int = param(1, "FaMUS target layers K on the 4-layer digits CNN (paper: 4 of WRN-28-10's 29)")
    ucr_famus_k: int = param(2, "FaMUS target layers K on the 7-layer FCN")
    famus_scope: Literal["all", "last"] = param("all", "FaMUS samplers: 'all' (paper) or 'last' (released)")
    famus_gate: Literal["released", "kept_only"] = param(
        "kept_only", "FaMUS gating of rejected layers: 'kept_only' (paper's g') or 'released' ((1-act)*grad)"
    )
    diag_batches: int = param(8, "batches for the meta-gradient cosine and variance")
    max_train: int | None = param(None, "cap on training examples (tests)")
    data_seed: int = param(0, "seed of the split and the noise draw, shared by every method of a run")

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ValueError(f"`methods` must be a non-empty subset of {METHODS}, got {self.methods}")
        bad = [n for n in self.noises if n not in NOISES]
        if bad or not self.noises:
            raise ValueError(f"`noises` must be a non-empty subset of {tuple(NOISES)}, got {self.noises}")
        if not self.datasets:
            raise ValueError("`datasets` must name at least one data set")
        for name in (
            "seeds",
            "epochs",
            "ucr_epochs",
            "meta_per_class",
            "ucr_meta_per_class",
            "test_size",
            "batch_size",
            "ucr_batch_size",
            "famus_k",
            "ucr_famus_k",
            "diag_batches",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)}")
        if not (self.lr > 0 and self.ucr_lr > 0 and self.vnet_lr > 0):
            raise ValueError(
                f"`lr`, `ucr_lr` and `vnet_lr` must be positive, got {self.lr}, {self.ucr_lr}, {self.vnet_lr}"
            )
        if self.max_train is not None and self.max_train < 20:
            raise ValueError(f"`max_train` must be at least 20 or none, got {self.max_train}")


# ---------------------------------------------------------------------- data and models
def _digits_cnn(n_classes: int):
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 2 * 2, 128), nn.ReLU(), nn.Linear(128, n_classes),
    )  # fmt: skip


def _load(cfg: FaMUSNoiseConfig, dataset: str, noise: str, run: int) -> dict:
    """Split, clean set and noisy labels of one (data, noise, run); every method sees the same."""
    from sciprob.learning.reweighting.noise import clean_split, corrupt_labels

    # one generator per (data seed, run): the same split and noise for every method of the run
    rng = np.random.default_rng([cfg.data_seed, run, *dataset.encode()])
    if dataset == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        X = (data.images / 16.0).astype(np.float32)[:, None]
        y = data.target.astype(np.int64)
        perm = rng.permutation(len(y))
        test, pool = perm[: cfg.test_size], perm[cfg.test_size :]
        Xt, yt, X, y = X[test], y[test], X[pool], y[pool]
        per_class = cfg.meta_per_class
    else:
        from sciprob.learning.tsc import load_ucr

        train, test = load_ucr(dataset, "train"), load_ucr(dataset, "test")
        length = int(max(train.lengths.max(), test.lengths.max()))
        X, Xt = (d.to_array(normalize=True, length=length) for d in (train, test))
        classes = np.unique(train.labels)
        y, yt = np.searchsorted(classes, train.labels), np.searchsorted(classes, test.labels)
        per_class = cfg.ucr_meta_per_class
    k = int(y.max()) + 1
    meta_idx, train_idx = clean_split(y, per_class, n_classes=k, rng=rng)
    if cfg.max_train is not None:
        train_idx = train_idx[: cfg.max_train]
    kind, rate = NOISES[noise]
    noisy = corrupt_labels(
        y[train_idx], rate, kind=cfg.symmetric_kind if kind == "sym" else "pair", n_classes=k, rng=rng
    )
    return {
        "X": X[train_idx], "y": noisy.labels, "noisy": noisy.noisy, "rate": noisy.rate, "requested": rate,
        "Xm": X[meta_idx], "ym": y[meta_idx], "Xt": Xt, "yt": yt, "k": k,
    }  # fmt: skip


def _build(cfg: FaMUSNoiseConfig, dataset: str, k: int, in_channels: int, device):
    import torch

    if dataset == "digits":
        model = _digits_cnn(k).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
        # MW-Net's schedule (x0.1 at 2/3 and 5/6 of training: epochs 80 and 100 of 120)
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=[max(1, 2 * cfg.epochs // 3), max(1, 5 * cfg.epochs // 6)], gamma=0.1
        )
        return model, opt, sched, cfg.epochs, cfg.batch_size, cfg.famus_k
    from sciprob.learning.tsc import FCN

    model = FCN(in_channels, k).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.ucr_lr)
    return model, opt, None, cfg.ucr_epochs, cfg.ucr_batch_size, cfg.ucr_famus_k


def _histogram(weights: np.ndarray, noisy: np.ndarray) -> dict:
    top = float(max(weights.max(), 1e-12))
    edges = np.linspace(0.0, top, 21)
    return {
        "edges": edges.tolist(),
        "clean": np.histogram(weights[~noisy], edges)[0].tolist(),
        "noisy": np.histogram(weights[noisy], edges)[0].tolist(),
    }


def _units(cfg: FaMUSNoiseConfig) -> list[dict]:
    """One unit per (data set, noise, method, run)."""
    return [
        {"dataset": d, "noise": n, "method": m, "run": r}
        for d in cfg.datasets
        for n in cfg.noises
        for m in cfg.methods
        for r in range(cfg.seeds)
    ]


@experiment(
    "famus-noisy-labels",
    config=FaMUSNoiseConfig,
    presets={
        "tiny": {
            "datasets": ("digits",),
            "noises": ("sym60",),
            "seeds": 1,
            "epochs": 2,
            "max_train": 200,
            "test_size": 100,
            "meta_per_class": 3,
            "diag_batches": 2,
        },
        "quick": {
            "datasets": ("digits", "JapaneseVowels"),
            "noises": ("sym60",),
            "seeds": 1,
            "epochs": 30,
            "max_train": 500,
            "ucr_epochs": 10,
            "diag_batches": 4,
        },
        "paper": {},
    },
    paper="Xu, Zhu, Jiang, Yang 2021, Faster meta update strategy for noise-robust deep learning (CVPR)",
    summary="MW-Net / L2RW with exact and FaMUS meta-gradients vs cross-entropy and Bayesian reweighting.",
    units=_units,
    combine=combine,
)
def run_unit(cfg: FaMUSNoiseConfig, unit: UnitContext) -> UnitResult:
    """Train one method on one noisy data set; accuracy per epoch, weights, meta-gradient agreement."""
    import torch

    from sciprob.learning.reweighting import (
        FaMUS,
        LearningToReweight,
        MetaReweightTrainer,
        MetaWeightNet,
        fit_bayesian_reweighting,
        meta_gradient_agreement,
        weight_auc,
    )

    ds, noise, method, run = (unit.key[k] for k in ("dataset", "noise", "method", "run"))
    d = _load(cfg, ds, noise, run)
    dev = unit.device
    X, y = torch.as_tensor(d["X"], device=dev), torch.as_tensor(d["y"], device=dev)
    Xm, ym = torch.as_tensor(d["Xm"], device=dev), torch.as_tensor(d["ym"], device=dev)
    Xt, yt = torch.as_tensor(d["Xt"], device=dev), torch.as_tensor(d["yt"], device=dev)
    model, opt, sched, epochs, bs, famus_k = _build(cfg, ds, d["k"], X.shape[1], dev)
    gen = unit.generator(torch.device("cpu"))
    loop = {
        "checkpoint_path": unit.checkpoint_path,
        "checkpoint_every": 5,
        "resume": unit.resume,
        "description": f"{ds}/{noise}/{method}/{run}",
    }
    start = time.perf_counter()
    agreement = None
    if method == "bayes":
        result, _ = fit_bayesian_reweighting(
            model, opt, X, y, epochs=epochs, batch_size=bs, eval_data=(Xt, yt), scheduler=sched,
            generator=gen, **loop,
        )  # fmt: skip
    else:
        weighting = None
        if method.startswith("mwnet"):
            weighting = MetaWeightNet(lr=cfg.vnet_lr).to(dev)
        elif method.startswith("l2rw"):
            weighting = LearningToReweight()
        famus = (
            FaMUS(model, k=famus_k, scope=cfg.famus_scope, gate=cfg.famus_gate).to(dev)
            if method.endswith("_famus")
            else None
        )
        trainer = MetaReweightTrainer(model, opt, weighting, famus=famus, generator=gen)
        result = trainer.fit(
            X, y, Xm, ym, epochs=epochs, batch_size=bs, meta_batch_size=100, eval_data=(Xt, yt),
            scheduler=sched, n_classes=d["k"], **loop,
        )  # fmt: skip
        if famus is not None:
            order = torch.randperm(X.shape[0], generator=gen).split(bs)[: cfg.diag_batches]
            batches = [(X[i.to(dev)], y[i.to(dev)], Xm, ym) for i in order if len(i) > 1]
            agreement = meta_gradient_agreement(trainer, batches)
    seconds = time.perf_counter() - start
    unit.checkpoint_path.unlink(missing_ok=True)
    acc = result.history["accuracy"]
    metrics = {"best_accuracy": result.best_accuracy, "last_accuracy": result.last_accuracy}
    artifacts = {"accuracy": acc, "realised_rate": d["rate"], "requested_rate": d["requested"]}
    if method != "ce":
        metrics["weight_auc"] = weight_auc(result.weights, d["noisy"])
        artifacts["histogram"] = _histogram(result.weights, d["noisy"])
    if agreement is not None:
        metrics.update(
            meta_grad_cosine=agreement.cosine,
            meta_grad_var_exact=agreement.exact_variance,
            meta_grad_var_famus=agreement.famus_variance,
            kept_fraction=agreement.kept_fraction,
        )
        artifacts["layer_keep_rate"] = result.layer_keep_rate.tolist()
    unit.log.info(
        "%s/%s/%s/%d: best %.4f, last %.4f",
        ds,
        noise,
        method,
        run,
        result.best_accuracy,
        result.last_accuracy,
    )
    return UnitResult(
        metrics=metrics,
        artifacts=artifacts,
        timings={"ms_per_iteration": result.ms_per_iteration, "train_seconds": seconds},
    )
