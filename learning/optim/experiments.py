"""Experiment ``update-rules``: additive vs multiplicative vs hybrid updates on four optimizers.

Kirtas, Passalis and Tefas (2024) claim that their multiplicative and hybrid
rules (i) accelerate training and (ii) give more robust models. This
experiment measures both on convex problems, non-convex test functions and a
small CNN, for SGD with momentum, Adam, Adagrad and RMSprop, each wrapped in
:class:`~sciprob.learning.optim.UpdateRule`:

* speed: steps to a target loss at each rule's best learning rate of a grid
  (median over starts), and the final loss;
* robustness: the fraction of a grid of learning rates x initialisation
  scales x starts that reaches the target, and the test accuracy of the CNN
  trained on labels with 20% noise.

Units: one per (problem, optimizer); ``digits`` adds the units
``digits``/``digits_noisy``. A unit runs all three rules from the same starts
(toys) or the same initialisation and batches (CNN), drawn from the unit's
generator, so every rule comparison is paired. The combine step builds the
figures, tables and the claim-by-claim verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sciprob.config import param
from sciprob.experiments import RunContext, UnitContext, UnitResult, experiment
from sciprob.learning.optim.report import claim_summary, loss_curve_figure, robustness_figure, tables
from sciprob.learning.optim.rules import RULES
from sciprob.learning.optim.trials import OPTIMIZERS, run_grid, sustained_hit, train_digits

#: memory the grid runs may use: a fraction of this machine's RAM (see ``estimated_bytes``)
_DIGITS_BYTES = 64 * 2**20  # digits split, the CNN and its optimizer state, with room to spare

TOY_PROBLEMS: tuple[str, ...] = ("logreg", "least_squares", "rosenbrock", "rastrigin", "ackley")
PROBLEMS: tuple[str, ...] = (*TOY_PROBLEMS, "digits")


@dataclass(frozen=True)
class UpdateRulesConfig:
    """Problems, optimizers, grids and training lengths of the comparison."""

    problems: tuple[str, ...] = param(PROBLEMS, f"problems to run, from {PROBLEMS}")
    optimizers: tuple[str, ...] = param(OPTIMIZERS, f"base optimizers, from {OPTIMIZERS}")
    steps: int = param(600, "optimiser steps on each toy problem")
    lrs: tuple[float, ...] = param(
        (1e-3, 1e-2, 1e-1, 1.0), "learning-rate grid (lr = lr_out, lr_out capped at 1)"
    )
    init_scales: tuple[float, ...] = param(
        (0.1, 0.3, 1.0),
        "initialisation scales: std of N(0, s^2) starts (convex), fraction of the box (test functions)",
    )
    default_scale: float = param(
        0.3, "scale (one of init_scales) at which steps_to_target and final_loss are taken"
    )
    starts: int = param(8, "random starts per (lr, scale) cell")
    lr_in: float = param(1.0, "inner rate eta_in of the multiplicative term")
    hybrid_g: float = param(0.5, "mixing weight g of the hybrid rule")
    momentum: float = param(0.9, "SGD momentum")
    convex_tolerance: float = param(0.01, "convex target: f* + tolerance * (f(0) - f*)")
    function_dim: int = param(2, "dimension of Rosenbrock, Rastrigin and Ackley")
    cnn_epochs: int = param(10, "CNN training epochs on digits")
    cnn_batch: int = param(64, "CNN mini-batch size")
    cnn_lrs: tuple[float, ...] = param(
        (0.05, 3e-3, 0.03, 1e-3), "CNN additive lr of sgd, adam, adagrad, rmsprop"
    )
    cnn_lr_outs: tuple[float, ...] = param(
        (0.2, 0.03, 0.3, 0.01), "CNN outer lr_out of sgd, adam, adagrad, rmsprop"
    )
    cnn_target: float = param(0.1, "CNN target: training cross-entropy (clean labels) at most this")
    label_noise: float = param(0.2, "fraction of CNN training labels replaced by a wrong class")

    def __post_init__(self) -> None:
        for name, chosen, allowed in [
            ("problems", self.problems, PROBLEMS),
            ("optimizers", self.optimizers, OPTIMIZERS),
        ]:
            bad = [c for c in chosen if c not in allowed]
            if not chosen or bad or len(set(chosen)) != len(chosen):
                raise ValueError(f"`{name}` must be distinct names from {allowed}, got {chosen}")
        if (
            self.steps < 1
            or self.starts < 1
            or self.cnn_epochs < 1
            or self.cnn_batch < 1
            or self.function_dim < 2
        ):
            raise ValueError(
                "`steps`, `starts`, `cnn_epochs`, `cnn_batch` must be >= 1 and `function_dim` >= 2"
            )
        if not self.lrs or any(lr <= 0 for lr in self.lrs):
            raise ValueError(f"`lrs` must be positive, got {self.lrs}")
        if not self.init_scales or any(s <= 0 for s in self.init_scales):
            raise ValueError(f"`init_scales` must be positive, got {self.init_scales}")
        if self.default_scale not in self.init_scales:
            raise ValueError(
                f"`default_scale` must be one of `init_scales` {self.init_scales}, got {self.default_scale}"
            )
        if not 0.0 <= self.hybrid_g <= 1.0:
            raise ValueError(f"`hybrid_g` must lie in [0, 1], got {self.hybrid_g}")
        if self.lr_in < 0:
            raise ValueError(f"`lr_in` must be >= 0, got {self.lr_in}")
        if not 0.0 < self.convex_tolerance < 1.0:
            raise ValueError(
                f"`convex_tolerance` must lie in (0, 1) (a fraction of f(0) - f*), "
                f"got {self.convex_tolerance}"
            )
        if self.cnn_target <= 0:
            raise ValueError(f"`cnn_target` must be > 0 (a cross-entropy), got {self.cnn_target}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"`momentum` must lie in [0, 1), got {self.momentum}")
        for name, values, high in [("cnn_lrs", self.cnn_lrs, None), ("cnn_lr_outs", self.cnn_lr_outs, 1.0)]:
            if len(values) != len(OPTIMIZERS) or any(v <= 0 or (high and v > high) for v in values):
                raise ValueError(
                    f"`{name}` needs {len(OPTIMIZERS)} positive values (one per {OPTIMIZERS}), got {values}"
                )
        if not 0.0 <= self.label_noise < 0.9:
            raise ValueError(f"`label_noise` must lie in [0, 0.9), got {self.label_noise}")

    def estimated_bytes(self) -> int:
        """Peak memory of the largest unit, in bytes (the engine refuses configs that do not fit).

        A toy unit holds the float64 loss history ``(steps + 1, n_lr, n_scales, starts)``
        and, per parameter, the batch of parameters with about six same-sized buffers
        (gradient, optimizer moments, the wrapper's snapshots), for the largest dimension.
        """
        cells = len(self.lrs) * len(self.init_scales) * self.starts
        toys = [p for p in self.problems if p in TOY_PROBLEMS]
        dims = [30 + 1 if p == "logreg" else 20 if p == "least_squares" else self.function_dim for p in toys]
        toy = 8 * cells * (self.steps + 1) + 8 * 8 * cells * max(dims, default=0) if toys else 0
        return int(max(toy, _DIGITS_BYTES if "digits" in self.problems else 0))


def _toy_problem(name: str, cfg: UpdateRulesConfig):
    from sciprob.learning.optim import problems

    if name == "logreg":
        return problems.logistic_regression(cfg.convex_tolerance)
    if name == "least_squares":
        return problems.least_squares(cfg.convex_tolerance)
    return {p.name: p for p in problems.nonconvex_problems(cfg.function_dim)}[name]


def _summarise_grid(result, lrs: tuple[float, ...], scale_index: int) -> dict:
    """Best lr at the default scale (fewest median steps, then lowest median final loss) and its numbers."""
    steps = np.median(result.steps_to_target[:, scale_index], axis=-1)  # (n_lr,)
    final = np.median(result.final_loss[:, scale_index], axis=-1)
    best = min(range(len(lrs)), key=lambda i: (steps[i], np.nan_to_num(final[i], nan=np.inf)))
    return {
        "steps_to_target": float(steps[best]),
        "final_loss": float(final[best]),
        "best_lr": float(lrs[best]),
        "reached": float((result.steps_to_target < result.budget).mean()),
        "curve": _jsonable_curve(result.curves[best]),
        "heat": (result.steps_to_target < result.budget).mean(-1).tolist(),  # (n_lr, n_scales)
        "budget": result.budget,
    }


def _jsonable_curve(curve) -> list[float | None]:
    """Return a loss curve as JSON: non-finite entries (diverged runs) become ``None``, read back as NaN."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(curve, dtype=float)]


def _read_curve(curve: list) -> np.ndarray:
    return np.array([np.inf if v is None else float(v) for v in curve], dtype=float)


def update_rules_units(cfg: UpdateRulesConfig) -> list[dict]:
    """One unit per (problem, optimizer); ``digits`` gives the clean and the noisy-label problem."""
    problems = [p for p in cfg.problems if p in TOY_PROBLEMS]
    if "digits" in cfg.problems:
        problems += ["digits", "digits_noisy"]
    return [{"problem": p, "optimizer": o} for p in problems for o in cfg.optimizers]


def _metric_names(problem: str, opt: str, rule: str, out: dict) -> dict[str, float]:
    tail = f"{problem}/{opt}/{rule}"
    metrics: dict[str, float] = {}
    if problem != "digits_noisy":
        metrics[f"steps_to_target/{tail}"] = out["steps_to_target"]
        metrics[f"final_loss/{tail}"] = out["final_loss"]
    if "accuracy" in out:
        metrics[f"accuracy/{tail}"] = out["accuracy"]
    if "heat" in out:
        metrics[f"lr_robustness/{tail}"] = out["reached"]
    return metrics


def update_rules_combine(
    cfg: UpdateRulesConfig, results: list[UnitResult], ctx: RunContext
) -> dict[str, float]:
    """Merge the units' metrics; build the loss-curve and robustness figures, the tables and the verdict."""
    done: dict[tuple[str, str, str], dict] = {}
    metrics: dict[str, float] = {}
    for res in results:
        problem, opt = res.key["problem"], res.key["optimizer"]
        for rule in RULES:
            out = dict(res.artifacts[rule])
            out["curve"] = _read_curve(out["curve"])
            for name in ("steps_to_target", "final_loss", "best_lr", "reached", "accuracy", "target"):
                if name in out:  # stored as JSON: a diverged run's "inf" comes back as a string
                    out[name] = float(out[name])
            done[problem, opt, rule] = out
        metrics.update(res.metrics)
        name = f"train_seconds/{problem}"
        ctx.timings[name] = ctx.timings.get(name, 0.0) + res.timings.get("train_seconds", 0.0)
    units = [(k["problem"], k["optimizer"], r) for k in update_rules_units(cfg) for r in RULES]
    problems_run = list(dict.fromkeys(p for p, _, _ in units))
    ctx.savefig(
        loss_curve_figure(done, problems_run, cfg.optimizers),
        "loss_curves.png",
        "Median loss over starts (toys: at each rule's best learning rate and the default scale; "
        "digits: training cross-entropy per epoch) against optimiser steps; dashed: target.",
    )
    for name in problems_run:
        if "heat" not in done[name, cfg.optimizers[0], RULES[0]]:
            continue  # the CNN runs at fixed rates: no learning-rate grid to map
        ctx.savefig(
            robustness_figure(done, name, cfg.optimizers, cfg.lrs, cfg.init_scales),
            f"robustness_{name}.png",
            f"{name}: fraction of starts reaching the target per learning rate and initialisation scale.",
        )
    for title, table in tables(done, units, cfg):
        ctx.table(title, table)
    for paragraph in claim_summary(done, units):
        ctx.note(paragraph)
    return metrics


@experiment(
    "update-rules",
    config=UpdateRulesConfig,
    presets={
        "tiny": {
            "problems": ("logreg", "rosenbrock", "digits"),
            "optimizers": ("sgd", "adam"),
            "steps": 30,
            "lrs": (1e-2, 1e-1),
            "init_scales": (0.3, 1.0),
            "starts": 2,
            "cnn_epochs": 1,
        },
        "quick": {},
        "paper": {
            "steps": 3000,
            "starts": 32,
            "lrs": (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
            "init_scales": (0.03, 0.1, 0.3, 1.0),
            "function_dim": 10,
            "cnn_epochs": 60,
        },
    },
    paper="Kirtas, Passalis, Tefas 2024, Multiplicative update rules for accelerating deep learning "
    "training and increasing robustness (Neurocomputing 576:127352; arXiv 2307.07189)",
    summary="Additive vs multiplicative vs hybrid updates of SGD/Adam/Adagrad/RMSprop: speed and robustness.",
    units=update_rules_units,
    combine=update_rules_combine,
    devices=("cpu",),
)
def run_unit(cfg: UpdateRulesConfig, unit: UnitContext) -> UnitResult:
    """Run the three rules of one (problem, optimizer) from the same starts; summarise each."""
    import time

    from sciprob.learning.optim.problems import digits_split

    problem_name, opt = unit.key["problem"], unit.key["optimizer"]
    scale_index = cfg.init_scales.index(cfg.default_scale)
    summaries: dict[str, dict] = {}
    start = time.perf_counter()
    if problem_name in TOY_PROBLEMS:
        problem = _toy_problem(problem_name, cfg)
        scales = torch.tensor(cfg.init_scales)
        starts = problem.initial(scales, (1, len(scales), cfg.starts), unit.generator("cpu"))
        theta0 = starts.expand(len(cfg.lrs), -1, -1, -1)
        for rule in RULES:
            result = run_grid(
                problem,
                opt,
                rule,
                theta0,
                cfg.lrs,
                scale_index,
                cfg.steps,
                lr_in=cfg.lr_in,
                g=cfg.hybrid_g,
                momentum=cfg.momentum,
                # a diverged trajectory is a measured outcome (robustness), not a failure of the unit
                on_nonfinite="warn",
            )
            summaries[rule] = _summarise_grid(result, cfg.lrs, scale_index) | {"target": problem.target}
    else:
        noisy = problem_name == "digits_noisy"
        data = digits_split(cfg.label_noise if noisy else 0.0, int(unit.rng.integers(2**63)))
        i = OPTIMIZERS.index(opt)
        init_state = unit.generator("cpu").get_state()
        for rule in RULES:
            lr_out = cfg.cnn_lr_outs[i] if rule != "additive" else cfg.cnn_lrs[i]
            gen = torch.Generator().set_state(init_state)  # same init and batches for every rule
            ckpt = unit.dir / f"checkpoint_{rule}.pt"
            res = train_digits(
                opt,
                rule,
                cfg.cnn_lrs[i],
                lr_out,
                data,
                epochs=cfg.cnn_epochs,
                batch_size=cfg.cnn_batch,
                lr_in=cfg.lr_in,
                g=cfg.hybrid_g,
                momentum=cfg.momentum,
                generator=gen,
                checkpoint_path=ckpt,
                checkpoint_every=1,
                resume=ckpt.exists(),
            )
            budget = cfg.cnn_epochs * res.steps_per_epoch + 1
            epoch = int(sustained_hit(res.train_loss, cfg.cnn_target))
            summaries[rule] = {
                "steps_to_target": float(
                    epoch * res.steps_per_epoch if epoch < len(res.train_loss) else budget
                ),
                "final_loss": float(res.train_loss[-1]),
                "accuracy": res.test_accuracy,
                "curve": _jsonable_curve(res.train_loss),
                "steps_per_epoch": res.steps_per_epoch,
                "budget": budget,
                "target": cfg.cnn_target,
            }
            unit.log.info("%s/%s/%s: test accuracy %.3f", problem_name, opt, rule, res.test_accuracy)
        for ckpt in unit.dir.glob("checkpoint_*.pt"):  # the unit's result is stored by the engine now
            ckpt.unlink()
    metrics: dict[str, float] = {}
    for rule, out in summaries.items():
        metrics.update(_metric_names(problem_name, opt, rule, out))
    return UnitResult(
        metrics=metrics, artifacts=summaries, timings={"train_seconds": time.perf_counter() - start}
    )
