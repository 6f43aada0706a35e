"""Experiment ``sparsity``: accuracy against sparsity for the survey's method families, and real latency.

Every unit trains one model (an MLP 64-300-100-10, RigL's MNIST recipe scaled
to 8×8 digits, or a small CNN) on scikit-learn's digits by one method at one
sparsity, from its own seed. All methods see the same number of epochs
(``epochs + finetune_epochs``) except the lottery ticket, which retrains from
the rewind point once per round:

=============  ========================================================  ============
method         what happens                                              allocation
=============  ========================================================  ============
dense          plain training                                            -
random         random mask at initialisation, then sparse training       uniform
snip / grasp   saliency on one batch at initialisation, then training    global
synflow        iterative data-free SynFlow at initialisation             global
magnitude      dense training, one-shot magnitude pruning, fine-tuning   global
gmp            gradual magnitude pruning, cubic schedule (Zhu & Gupta)   uniform
movement       gradual pruning by movement scores, cubic schedule        uniform
lottery        IMP with rewinding to step k, ``imp_rounds`` rounds        global
set / rigl     dynamic sparse training from a random ERK mask            ERK
nm             dense training, 2:4 magnitude mask, fine-tuning (MLP)     2:4
structured     dense training, 50 % channels removed, fine-tuning        channels
=============  ========================================================  ============

The output layer stays dense (RigL's recipe), and so does the CNN's first
convolution (9 weights per channel); the sparsity of a unit is that of the
other weight layers. For ``structured`` the sparsity is the fraction of
channels removed. ``latency`` units time inference on the CPU of dense,
masked, channel-pruned and CSR models (warm-up, interleaved repeats, median);
their ratios are measurements and go under ``timings``, never ``metrics``.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sciprob.config import param
from sciprob.experiments import UnitContext, UnitResult, experiment
from sciprob.learning.sparse.dynamic import DynamicSparseTraining
from sciprob.learning.sparse.inference import compare_latency, to_sparse_inference
from sciprob.learning.sparse.lottery import LotteryTicket
from sciprob.learning.sparse.masks import density, prune, sparsify
from sciprob.learning.sparse.nm import apply_nm
from sciprob.learning.sparse.report import accuracy_metric, combine_sparsity
from sciprob.learning.sparse.schedules import Cubic, GradualPruner
from sciprob.learning.sparse.scores import MovementScores, grasp_scores, snip_scores, synflow_prune
from sciprob.learning.sparse.structured import prune_channels
from sciprob.runtime import check_finite

MODELS = ("mlp", "cnn")
UNSTRUCTURED = (
    "random",
    "snip",
    "grasp",
    "synflow",
    "magnitude",
    "gmp",
    "movement",
    "lottery",
    "set",
    "rigl",
)
ALL_METHODS = UNSTRUCTURED + ("nm", "structured")
ALLOCATION = {
    "random": "uniform",
    "snip": "global",
    "grasp": "global",
    "synflow": "global",
    "magnitude": "global",
    "gmp": "uniform",
    "movement": "uniform",
    "lottery": "global",
    "set": "erk",
    "rigl": "erk",
}
SURVEY = "Hoefler et al. 2021, Sparsity in Deep Learning (JMLR 22(241))"


@dataclass(frozen=True)
class SparsityConfig:
    """Models, methods, sparsities, training budget and latency measurement."""

    models: tuple[str, ...] = param(MODELS, "models: mlp (64-300-100-10), cnn (3 conv + 2 linear)")
    methods: tuple[str, ...] = param(ALL_METHODS, f"methods, from {ALL_METHODS}")
    sparsities: tuple[float, ...] = param(
        (0.5, 0.8, 0.9, 0.95, 0.98), "weight sparsities of unstructured methods"
    )
    channel_ratio: float = param(0.5, "fraction of channels removed by the structured method")
    seeds: int = param(1, "independent runs of every (model, method, sparsity)")
    epochs: int = param(20, "training epochs before pruning (one-shot/structured/nm) or of the main phase")
    finetune_epochs: int = param(
        10, "fine-tuning epochs; every method trains epochs + finetune_epochs in all"
    )
    batch_size: int = param(64, "mini-batch size")
    lr: float = param(3e-3, "Adam learning rate")
    finetune_lr: float = param(1e-3, "Adam learning rate of fine-tuning after one-shot pruning")
    cnn_width: int = param(16, "channels of the CNN's first convolution (then 2x, 4x)")
    imp_rounds: int = param(3, "lottery-ticket prune-rewind rounds")
    rewind_epochs: float = param(0.5, "lottery-ticket rewind point k, in epochs of the first round")
    synflow_iterations: int = param(100, "SynFlow prune iterations (paper: 100)")
    drop_fraction: float = param(0.3, "SET/RigL initial drop fraction (RigL MNIST: 0.3)")
    update_every: int = param(50, "SET/RigL steps between mask updates")
    latency: bool = param(True, "add one latency unit per model")
    latency_batch: int = param(512, "batch of the latency measurement")
    latency_warmup: int = param(20, "warm-up forwards per variant")
    latency_repeats: int = param(60, "interleaved timed forwards per variant")
    latency_threads: int = param(
        1, "torch threads while timing (1 avoids oversubscription by parallel units)"
    )
    tolerance: float = param(
        0.01, "accuracy loss (fraction) allowed by PPE and the verdicts (0.01 = 1 point)"
    )

    def __post_init__(self) -> None:
        """Check the fields (ValueError naming the field)."""
        if not self.models or any(m not in MODELS for m in self.models):
            raise ValueError(f"`models` must be a non-empty subset of {MODELS}, got {self.models!r}")
        if not self.methods or any(m not in ALL_METHODS for m in self.methods):
            raise ValueError(f"`methods` must be a non-empty subset of {ALL_METHODS}, got {self.methods!r}")
        if not self.sparsities or any(not 0.0 < s < 1.0 for s in self.sparsities):
            raise ValueError(f"`sparsities` must be values in (0, 1), got {self.sparsities!r}")
        if not 0.0 < self.channel_ratio < 1.0:
            raise ValueError(f"`channel_ratio` must lie in (0, 1), got {self.channel_ratio!r}")
        for name in ("seeds", "epochs", "batch_size", "cnn_width", "imp_rounds", "synflow_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)!r}")
        if self.finetune_epochs < 0:
            raise ValueError(f"`finetune_epochs` must be >= 0, got {self.finetune_epochs!r}")
        if self.update_every < 1 or not 0.0 < self.drop_fraction <= 1.0:
            raise ValueError("`update_every` must be >= 1 and `drop_fraction` in (0, 1]")
        if self.lr <= 0 or self.finetune_lr <= 0:
            raise ValueError("`lr` and `finetune_lr` must be positive")
        if not 0.0 <= self.rewind_epochs < self.epochs:
            raise ValueError(f"`rewind_epochs` must lie in [0, epochs), got {self.rewind_epochs!r}")
        if self.latency_batch < 1 or self.latency_repeats < 1 or self.latency_warmup < 0:
            raise ValueError("`latency_batch` and `latency_repeats` must be >= 1, `latency_warmup` >= 0")
        if self.latency_threads < 1:
            raise ValueError(f"`latency_threads` must be >= 1, got {self.latency_threads!r}")
        if not 0.0 <= self.tolerance < 1.0:
            raise ValueError(f"`tolerance` must lie in [0, 1), got {self.tolerance!r}")


# ----------------------------------------------------------------------------- data and models


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Digits as (x_train, y_train, x_test, y_test): 1437/360 stratified split, pixels / 16."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.long)
    # one fixed split shared by every unit (not a seed of the run)
    tr, te = train_test_split(range(len(y)), test_size=0.2, stratify=data.target, random_state=0)
    return x[tr], y[tr], x[te], y[te]


def build_model(name: str, width: int = 32) -> nn.Sequential:
    """Build one of the experiment's models; inputs (batch, 1, 8, 8), outputs (batch, 10)."""
    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(64, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)
        )
    w = width
    return nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * w, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


def _targets(net: nn.Sequential) -> tuple[str, ...]:
    """Name the pruned layers: all weight layers but the output one and, in a CNN, the first convolution.

    RigL's MNIST recipe keeps the output layer dense; for convolutional nets the
    survey's and RigL's ImageNet recipes keep the first convolution dense too
    (here 9 weights per channel on one input channel: pruned, it collapses first).
    """
    layers = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    names = [n for n, _ in layers[:-1]]
    if isinstance(layers[0][1], nn.Conv2d):
        names = names[1:]
    return tuple(names)


# ----------------------------------------------------------------------------- training


@dataclass
class _Run:
    """What a method needs: the model, data, config and the unit's generator."""

    net: nn.Sequential
    cfg: SparsityConfig
    gen: torch.Generator
    device: torch.device
    model: str

    @property
    def data(self) -> tuple[Tensor, ...]:
        return tuple(t.to(self.device) for t in _digits())

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(_digits()[1]) / self.cfg.batch_size)

    def optimizer(self, lr: float | None = None) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr if lr is None else lr)

    def fit(
        self,
        epochs: int,
        opt: torch.optim.Optimizer | None = None,
        after_backward: Callable[[], None] | None = None,
        after_step: Callable[[int], None] | None = None,
    ) -> None:
        """Train ``epochs`` epochs of shuffled mini-batches with cross-entropy."""
        x, y, _, _ = self.data
        opt = opt or self.optimizer()
        self.net.train()
        step = 0
        for _ in range(epochs):
            perm = torch.randperm(len(y), generator=self.gen).to(self.device)
            for i in range(0, len(y), self.cfg.batch_size):
                idx = perm[i : i + self.cfg.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(self.net(x[idx]), y[idx])
                check_finite(loss.detach(), step=step, policy="raise", where=f"sparsity/{self.model}")
                loss.backward()
                if after_backward is not None:
                    after_backward()
                opt.step()
                step += 1
                if after_step is not None:
                    after_step(step)

    @torch.no_grad()
    def accuracy(self) -> float:
        _, _, x, y = self.data
        self.net.eval()
        return float((self.net(x).argmax(-1) == y).float().mean())

    def batch_loss(self) -> Callable[[nn.Module], Tensor]:
        """Loss of the first 256 training examples (SNIP's and GraSP's one batch)."""
        x, y, _, _ = self.data
        return lambda m: F.cross_entropy(m(x[:256]), y[:256])

    @property
    def total_epochs(self) -> int:
        return self.cfg.epochs + self.cfg.finetune_epochs


def _m_dense(r: _Run, s: float) -> None:
    r.fit(r.total_epochs)


def _m_random(r: _Run, s: float) -> None:
    sparsify(r.net, _targets(r.net), s, score="random", allocation=ALLOCATION["random"], generator=r.gen)
    r.fit(r.total_epochs)


def _m_at_init(score_fn: Callable[[_Run], dict]) -> Callable[[_Run, float], None]:
    def method(r: _Run, s: float) -> None:
        sparsify(r.net, _targets(r.net), 0.0)
        r.net.eval()  # batch-norm statistics untouched by the saliency passes
        prune(r.net, s, score=score_fn(r), allocation="global")
        r.fit(r.total_epochs)

    return method


def _m_synflow(r: _Run, s: float) -> None:
    sparsify(r.net, _targets(r.net), 0.0)
    synflow_prune(r.net, s, (1, 8, 8), iterations=r.cfg.synflow_iterations)
    r.fit(r.total_epochs)


def _m_magnitude(r: _Run, s: float) -> None:
    r.fit(r.cfg.epochs)
    sparsify(r.net, _targets(r.net), s, score="magnitude", allocation=ALLOCATION["magnitude"])
    r.fit(r.cfg.finetune_epochs, r.optimizer(r.cfg.finetune_lr))


def _cubic(r: _Run, s: float) -> Cubic:
    # prune from 10 % to 100 % of the main phase, then fine-tune at the final sparsity
    start = r.steps_per_epoch * r.cfg.epochs // 10
    end = max(start + 1, r.steps_per_epoch * r.cfg.epochs)
    return Cubic(s, start=start, end=end, frequency=max(1, (end - start) // 20))


def _m_gmp(r: _Run, s: float) -> None:
    sparsify(r.net, _targets(r.net), 0.0)
    opt = r.optimizer()
    GradualPruner(r.net, _cubic(r, s), allocation=ALLOCATION["gmp"]).attach(opt)
    r.fit(r.total_epochs, opt)


def _m_movement(r: _Run, s: float) -> None:
    sparsify(r.net, _targets(r.net), 0.0)
    opt = r.optimizer()
    scores = MovementScores(r.net)
    GradualPruner(r.net, _cubic(r, s), score=scores, allocation=ALLOCATION["movement"]).attach(opt)
    r.fit(r.total_epochs, opt, after_backward=scores.update)


def _m_lottery(r: _Run, s: float) -> None:
    sparsify(r.net, _targets(r.net), 0.0)
    k = int(r.cfg.rewind_epochs * r.steps_per_epoch)
    ticket = LotteryTicket(r.net, rewind_step=k)
    rounds = r.cfg.imp_rounds
    for i in range(1, rounds + 1):
        r.fit(r.cfg.epochs, after_step=ticket.observe)
        ticket.prune_and_rewind(1.0 - (1.0 - s) ** (i / rounds), allocation=ALLOCATION["lottery"])
    r.fit(r.total_epochs)


def _m_dynamic(kind: str) -> Callable[[_Run, float], None]:
    def method(r: _Run, s: float) -> None:
        sparsify(r.net, _targets(r.net), s, score="random", allocation="erk", generator=r.gen)
        opt = r.optimizer()
        total = r.total_epochs * r.steps_per_epoch
        DynamicSparseTraining(
            r.net,
            opt,
            method=kind,
            drop_fraction=r.cfg.drop_fraction,
            update_every=r.cfg.update_every,
            end_step=max(1, int(0.75 * total)),  # RigL: stop updating masks at 3/4 of training
            decay="cosine" if kind == "rigl" else "constant",
            generator=r.gen,
        )
        r.fit(r.total_epochs, opt)

    return method


def _m_nm(r: _Run, s: float) -> None:
    r.fit(r.cfg.epochs)
    linear = [n for n in _targets(r.net) if isinstance(r.net.get_submodule(n), nn.Linear)]
    apply_nm(r.net, linear, n=2, m=4)
    r.fit(r.cfg.finetune_epochs, r.optimizer(r.cfg.finetune_lr))


def _m_structured(r: _Run, s: float) -> None:
    r.fit(r.cfg.epochs)
    x = _digits()[0][:8].to(r.device)
    prune_channels(r.net, x, s, importance="l1", mode="remove")
    r.fit(r.cfg.finetune_epochs, r.optimizer(r.cfg.finetune_lr))


METHODS: dict[str, Callable[[_Run, float], None]] = {
    "dense": _m_dense,
    "random": _m_random,
    "snip": _m_at_init(lambda r: snip_scores(r.net, r.batch_loss())),
    "grasp": _m_at_init(lambda r: grasp_scores(r.net, r.batch_loss())),
    "synflow": _m_synflow,
    "magnitude": _m_magnitude,
    "gmp": _m_gmp,
    "movement": _m_movement,
    "lottery": _m_lottery,
    "set": _m_dynamic("set"),
    "rigl": _m_dynamic("rigl"),
    "nm": _m_nm,
    "structured": _m_structured,
}


# ----------------------------------------------------------------------------- units


def sparsity_units(cfg: SparsityConfig) -> list[dict]:
    """One unit per (model, method, sparsity, run), the dense baseline and one latency unit per model."""
    units = []
    for model in cfg.models:
        cells = [("dense", 0.0)]
        for method in cfg.methods:
            if method == "structured":
                cells.append((method, cfg.channel_ratio))
            elif method == "nm":
                if model == "mlp":  # 2:4 masks cover linear layers only; the CNN's hidden linear is one layer
                    cells.append((method, 0.5))
            else:
                cells += [(method, float(s)) for s in cfg.sparsities]
        units += [
            {"model": model, "method": m, "sparsity": s, "run": run}
            for m, s in cells
            for run in range(cfg.seeds)
        ]
        if cfg.latency:
            units.append({"model": model, "method": "latency", "sparsity": 0.0, "run": 0})
    return units


def _latency_variants(cfg: SparsityConfig, model: str) -> dict[str, nn.Module]:
    dense = build_model(model, cfg.cnn_width).eval()
    variants: dict[str, nn.Module] = {"dense": dense}
    for s in (0.5, 0.9, 0.98):
        masked = copy.deepcopy(dense)
        sparsify(masked, _targets(masked), s)
        variants[f"masked-{round(100 * s)}"] = masked
    structured = copy.deepcopy(dense)
    prune_channels(structured, torch.zeros(8, 1, 8, 8), cfg.channel_ratio)
    variants[f"structured-{round(100 * cfg.channel_ratio)}"] = structured
    linear = [n for n in _targets(dense) if isinstance(dense.get_submodule(n), nn.Linear)]
    for s in (0.5, 0.9, 0.95, 0.98):
        csr = copy.deepcopy(dense)
        sparsify(csr, linear, s)
        to_sparse_inference(csr, linear, min_sparsity=0.0, layout="csr")
        variants[f"csr-{round(100 * s)}"] = csr
    return variants


def _latency_unit(cfg: SparsityConfig, unit: UnitContext) -> UnitResult:
    model = unit.key["model"]
    variants = _latency_variants(cfg, model)
    x = torch.rand(cfg.latency_batch, 1, 8, 8, generator=unit.generator("cpu"))
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.latency_threads)
    try:
        med = compare_latency(variants, x, warmup=cfg.latency_warmup, repeats=cfg.latency_repeats)
    finally:
        torch.set_num_threads(threads)
    timings = {f"latency_ms/{model}/{k}": 1e3 * v for k, v in med.items()}
    timings.update({f"latency_ratio/{model}/{k}": v / med["dense"] for k, v in med.items() if k != "dense"})
    return UnitResult(timings=timings)


@experiment(
    "sparsity",
    config=SparsityConfig,
    presets={
        "tiny": {
            "models": ("mlp", "cnn"),
            "methods": ("magnitude", "rigl", "structured"),
            "sparsities": (0.9,),
            "epochs": 2,
            "finetune_epochs": 1,
            "cnn_width": 8,
            "imp_rounds": 1,
            "synflow_iterations": 5,
            "latency_batch": 64,
            "latency_warmup": 2,
            "latency_repeats": 5,
        },
        "quick": {
            "methods": ("magnitude", "gmp", "synflow", "lottery", "set", "rigl", "structured", "nm"),
            "sparsities": (0.5, 0.9, 0.98),
            "epochs": 10,
            "finetune_epochs": 5,
            "cnn_width": 8,
            "imp_rounds": 2,
            "synflow_iterations": 20,
            "update_every": 25,
            "latency_repeats": 30,
        },
        "paper": {"seeds": 3, "epochs": 20, "finetune_epochs": 10, "cnn_width": 16},
    },
    paper=SURVEY,
    summary="accuracy vs sparsity of pruning and sparse-training families on digits; PPE; CPU latency",
    units=sparsity_units,
    combine=combine_sparsity,
    devices=("cpu", "cuda"),
)
def sparsity_unit(cfg: SparsityConfig, unit: UnitContext) -> UnitResult:
    """Train one model by one method at one sparsity (or measure latencies) and return its test accuracy."""
    key = unit.key
    if key["method"] == "latency":
        return _latency_unit(cfg, unit)
    model, method, s = key["model"], key["method"], float(key["sparsity"])
    net = build_model(model, cfg.cnn_width).to(unit.device)
    run = _Run(net, cfg, unit.generator("cpu"), unit.device, model)
    t0 = time.perf_counter()
    METHODS[method](run, s)
    seconds = time.perf_counter() - t0
    acc = run.accuracy()
    dens = density(net).global_density if method not in ("dense", "structured") else 1.0
    params = sum(p.numel() for p in net.parameters())
    name = accuracy_metric(model, method, s)
    row = {"model": model, "method": method, "sparsity": s, "run": key["run"], "accuracy": acc,
           "density": dens, "params": params}  # fmt: skip
    return UnitResult(metrics={name: acc}, rows=[row], timings={"train_seconds": seconds})
