r"""Experiment ``multitask-features``: the ground-truth subspace recovered from many tasks.

Collins et al. (ICML 2024) [1]_: T binary tasks whose labels depend on x only
through :math:`M^\top x` (r directions in R^d) train a two-layer ReLU network with
a shared first layer W and per-task heads by the alternating algorithm (heads
first, then one gradient step on W). Each unit trains one network at one
(T, d, m, algorithm, run):

=========  ====================================================  ==========================================
sweep      units                                                 metrics
=========  ====================================================  ==========================================
tasks      T in ``tasks``, d = ``d_ref``, m = ``width``          ``subspace_error/T=<t>/d=<d>``
dims       d in ``dims``, T = max(``tasks``), m = ``width``;     ``subspace_error/T=<t>/d=<d>``,
           evaluated downstream (learnt and random features)     ``downstream_error/<features>/d=<d>/n=<n>``
widths     m in ``widths``, T = max(``tasks``), d = ``d_ref``    ``subspace_error/T=<t>/d=<d>/m=<m>``
joint      joint training, T = max(``tasks``), d = ``d_ref``     ``subspace_error/joint/T=<t>/d=<d>``
=========  ====================================================  ==========================================

The single-task unit (T = 1) gives ``single_task_recovered_dims``: how many of the r
principal angles have cosine >= ``cos_threshold``. Pre-training uses
``n = samples_per_dim * d`` samples per task (the pre-training cost may grow with d;
the claim is about the downstream cost). Random features are the same network's
W at initialisation. The combining step averages over runs and states, for each
claim of the abstract, whether it holds in this run, from the numbers of this run.

References
----------
.. [1] L. Collins, H. Hassani, M. Soltanolkotabi, A. Mokhtari, S. Shakkottai,
   "Provable Multi-Task Representation Learning by Two-Layer ReLU Neural Networks",
   ICML 2024, arXiv:2307.06887.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from sciprob.config import param
from sciprob.experiments import UnitContext, UnitResult, experiment
from sciprob.theory.multitask.data import FAMILIES, make_tasks
from sciprob.theory.multitask.metrics import (
    downstream_errors,
    energy_in_subspace,
    energy_spectrum,
    principal_angles,
    recovered_dims,
    subspace_error,
)
from sciprob.theory.multitask.model import MultiTaskReLU, train_multitask
from sciprob.theory.multitask.report import combine_multitask

PAPER = "Collins, Hassani, Soltanolkotabi, Mokhtari, Shakkottai, ICML 2024 (arXiv:2307.06887)"
_SPECTRUM_KEEP = 12  # leading singular values of W kept for the energy-spectrum figure


@dataclass(frozen=True)
class MultitaskConfig:
    """Data model, network, alternating algorithm, sweeps and downstream evaluation."""

    r: int = param(3, "dimension r of the ground-truth subspace")
    family: Literal["linear", "two-layer", "xor"] = param(
        "linear", f"pre-training task family, from {FAMILIES}"
    )
    downstream_family: Literal["linear", "two-layer", "xor"] = param(
        "linear", "family of the downstream tasks"
    )
    noise: float = param(0.0, "label-flip probability of the pre-training tasks")
    tasks: tuple[int, ...] = param((1, 2, 3, 5, 10, 20, 40), "numbers of tasks T (sweep at d = d_ref)")
    d_ref: int = param(40, "ambient dimension of the T and width sweeps")
    dims: tuple[int, ...] = param((20, 40, 80, 160), "ambient dimensions d (sweep at T = max(tasks))")
    width: int = param(64, "hidden width m of every sweep but the width sweep")
    widths: tuple[int, ...] = param((), "extra widths m (sweep at T = max(tasks), d = d_ref)")
    joint_baseline: bool = param(True, "add a plain joint-training unit at T = max(tasks), d = d_ref")
    samples_per_dim: float = param(8.0, "pre-training samples per task n = samples_per_dim * d")
    head_fraction: float = param(0.5, "fraction n1/n of each task's samples used by the head step")
    steps: int = param(200, "rounds of the alternating algorithm (steps of joint training)")
    lr: float = param(5.0, "step size of W (mean-field units: W -= lr (m grad + wd W))")
    head_lr: float = param(1.0, "step size of the heads (mean-field units)")
    head_steps: int = param(1, "head gradient steps per round, from zero heads")
    weight_decay: float = param(0.005, "weight decay lambda on W")
    loss: Literal["logistic", "hinge"] = param("logistic", "training loss")
    downstream_tasks: int = param(10, "fresh downstream tasks per evaluated network")
    downstream_sizes: tuple[int, ...] = param(
        (10, 20, 40, 80, 160, 320, 640), "downstream training-set sizes n"
    )
    n_test: int = param(1000, "downstream test points per task")
    ridge: float = param(30.0, "ridge penalty of the downstream linear classifier")
    target_error: float = param(0.15, "downstream test error defining 'samples needed'")
    recovery_tolerance: float = param(0.25, "subspace error counted as 'small' at T = max(tasks)")
    cos_threshold: float = param(0.9, "cosine of a principal angle counted as a recovered direction")
    flat_ratio: float = param(2.0, "largest ratio of samples needed across d still counted as flat")
    checkpoint_every: int = param(50, "rounds between checkpoints of a unit (0: none)")
    seeds: int = param(1, "independent runs of every unit")

    def __post_init__(self) -> None:
        """Check the fields (ValueError naming the field)."""
        for name in ("r", "width", "steps", "head_steps", "downstream_tasks", "n_test", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1, got {getattr(self, name)!r}")
        if not self.tasks or min(self.tasks) < 1:
            raise ValueError(f"`tasks` must be non-empty numbers T >= 1, got {self.tasks!r}")
        if not self.dims:
            raise ValueError("`dims` must list at least one ambient dimension")
        for d in (self.d_ref, *self.dims):
            if d <= self.r:
                raise ValueError(f"`dims` and `d_ref` must exceed r={self.r}, got d={d}")
        if any(m < self.r for m in (self.width, *self.widths)):
            raise ValueError(f"`width` and `widths` must be at least r={self.r}")
        if not self.downstream_sizes or min(self.downstream_sizes) < 2:
            raise ValueError(f"`downstream_sizes` must be sizes >= 2, got {self.downstream_sizes!r}")
        if list(self.downstream_sizes) != sorted(set(self.downstream_sizes)):
            raise ValueError(f"`downstream_sizes` must be strictly increasing, got {self.downstream_sizes!r}")
        if not 0.0 <= self.noise < 0.5:
            raise ValueError(f"`noise` must lie in [0, 0.5), got {self.noise!r}")
        if not 0.0 < self.head_fraction < 1.0:
            raise ValueError(f"`head_fraction` must lie in (0, 1), got {self.head_fraction!r}")
        if round(self.head_fraction * self.samples_per_dim * min(self.d_ref, *self.dims)) < 1:
            raise ValueError("`samples_per_dim` too small: the smallest d leaves no sample for a step")
        for name in ("lr", "head_lr", "samples_per_dim", "ridge"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be positive, got {getattr(self, name)!r}")
        if self.weight_decay < 0 or self.checkpoint_every < 0:
            raise ValueError("`weight_decay` and `checkpoint_every` must be >= 0")
        for name in ("target_error", "recovery_tolerance", "cos_threshold"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"`{name}` must lie in (0, 1), got {getattr(self, name)!r}")
        if self.flat_ratio < 1.0:
            raise ValueError(f"`flat_ratio` must be >= 1, got {self.flat_ratio!r}")
        if "xor" in (self.family, self.downstream_family) and self.r < 2:
            raise ValueError("`family` 'xor' needs r >= 2")

    @property
    def max_tasks(self) -> int:
        """T of the dimension, width and joint sweeps."""
        return max(self.tasks)

    def samples(self, d: int) -> int:
        """Pre-training samples per task at ambient dimension ``d``."""
        return max(2, round(self.samples_per_dim * d))


def multitask_units(cfg: MultitaskConfig) -> list[dict]:
    """List the grid: T sweep, d sweep, width sweep and joint baseline, each for every run (no duplicates)."""
    cells: list[tuple[int, int, int, str]] = [(t, cfg.d_ref, cfg.width, "alternating") for t in cfg.tasks]
    cells += [(cfg.max_tasks, d, cfg.width, "alternating") for d in cfg.dims]
    cells += [(cfg.max_tasks, cfg.d_ref, m, "alternating") for m in cfg.widths]
    if cfg.joint_baseline:
        cells.append((cfg.max_tasks, cfg.d_ref, cfg.width, "joint"))
    unique = list(dict.fromkeys(cells))
    return [
        {"T": t, "d": d, "m": m, "algorithm": alg, "run": run}
        for t, d, m, alg in unique
        for run in range(cfg.seeds)
    ]


def evaluates_downstream(cfg: MultitaskConfig, key: dict) -> bool:
    """Whether the unit ``key`` is a point of the dimension sweep (evaluated downstream)."""
    return (
        key["T"] == cfg.max_tasks
        and key["d"] in cfg.dims
        and key["m"] == cfg.width
        and key["algorithm"] == "alternating"
    )


@experiment(
    "multitask-features",
    config=MultitaskConfig,
    presets={
        "tiny": {
            "tasks": (1, 3, 12),
            "d_ref": 20,
            "dims": (20, 40),
            "width": 32,
            "samples_per_dim": 6.0,
            "steps": 80,
            "downstream_tasks": 4,
            "downstream_sizes": (10, 40, 160),
            "n_test": 300,
            "checkpoint_every": 40,
        },
        "quick": {"widths": (16, 128)},
        "paper": {
            "tasks": (1, 2, 3, 5, 10, 20, 50, 100),
            "d_ref": 50,
            "dims": (20, 50, 100, 200, 500),
            "width": 64,
            "widths": (16, 256),
            "steps": 300,
            "downstream_tasks": 20,
            "downstream_sizes": (10, 20, 40, 80, 160, 320, 640, 1280),
            "n_test": 2000,
            "seeds": 5,
        },
    },
    paper=PAPER,
    summary="subspace recovery vs number of tasks; downstream samples vs d, learnt vs random features",
    units=multitask_units,
    combine=combine_multitask,
    devices=("cpu", "cuda"),
)
def multitask_unit(cfg: MultitaskConfig, unit: UnitContext) -> UnitResult:
    """Pre-train one network on T tasks, measure its subspace recovery and (d sweep) its downstream errors."""
    import torch

    key = unit.key
    T, d, m, algorithm = int(key["T"]), int(key["d"]), int(key["m"]), str(key["algorithm"])  # noqa: N806
    gen = unit.generator("cpu")
    tasks = make_tasks(d, cfg.r, T, cfg.family, generator=gen, noise=cfg.noise)
    x, y = tasks.sample(cfg.samples(d), generator=gen)
    net = MultiTaskReLU(d, m, T, generator=gen)
    w_init = net.W.detach().clone()
    net.to(unit.device)
    t0 = time.perf_counter()
    history = train_multitask(
        net, x.to(unit.device), y.to(unit.device), steps=cfg.steps, lr=cfg.lr, head_lr=cfg.head_lr,
        algorithm=algorithm, loss=cfg.loss, head_steps=cfg.head_steps, weight_decay=cfg.weight_decay,
        head_fraction=cfg.head_fraction, M=tasks.M, log_every=max(1, cfg.steps // 20),
        checkpoint_path=unit.checkpoint_path if cfg.checkpoint_every else None,
        checkpoint_every=cfg.checkpoint_every, resume=unit.resume,
    )  # fmt: skip
    train_seconds = time.perf_counter() - t0
    W = net.W.detach().cpu()  # noqa: N806
    row = {
        "T": T, "d": d, "m": m, "algorithm": algorithm, "run": int(key["run"]), "n": cfg.samples(d),
        "subspace_error": subspace_error(W, tasks.M), "energy": energy_in_subspace(W, tasks.M),
        "recovered_dims": recovered_dims(W, tasks.M, cfg.cos_threshold),
        "init_subspace_error": subspace_error(w_init, tasks.M),
        "final_loss": history.loss[-1],
    }  # fmt: skip
    artifacts: dict = {
        "angles": principal_angles(W, tasks.M).tolist(),
        "spectrum": energy_spectrum(W, _SPECTRUM_KEEP).tolist(),
        "init_spectrum": energy_spectrum(w_init, _SPECTRUM_KEEP).tolist(),
        "history": {"steps": history.steps, "loss": history.loss, "subspace_error": history.subspace_error},
    }
    timings = {"train_seconds": train_seconds}
    if evaluates_downstream(cfg, key):
        t1 = time.perf_counter()
        down = make_tasks(d, cfg.r, cfg.downstream_tasks, cfg.downstream_family, generator=gen, M=tasks.M)
        state = gen.get_state()  # learnt and random features see the same downstream samples
        for name, weights in (("learnt", W), ("random", w_init)):
            same = torch.Generator()
            same.set_state(state)
            errors = downstream_errors(
                weights, down, cfg.downstream_sizes, n_test=cfg.n_test, generator=same, ridge=cfg.ridge
            )
            artifacts[f"downstream_{name}"] = errors.mean(axis=1).tolist()
        timings["downstream_seconds"] = time.perf_counter() - t1
    return UnitResult(rows=[row], artifacts=artifacts, timings=timings)


__all__ = ["MultitaskConfig", "evaluates_downstream", "multitask_unit", "multitask_units"]
