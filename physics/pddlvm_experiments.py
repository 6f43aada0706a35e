"""PDDLVM experiments: forward and inverse maps of parametric Poisson problems.

``pddlvm-poisson-1d`` and ``pddlvm-nonlinear-poisson-1d`` are the linear and
nonlinear 1D set-ups of Vadeboncoeur et al. (arXiv:2208.04856, official code
``apps/poisson1DLinear``, ``apps/poisson1DNonLinear``); ``pddlvm-poisson-2d``
is issue #4's 2D problem (beyond the paper). Each trains a :class:`PDDLVM`
on the DOLFINx-assembled residual (no PDE solves), then compares it on a
held-out set of prior draws with DOLFINx solves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from sciprob.config import param
from sciprob.experiments import RunContext, UnitContext, UnitResult, experiment
from sciprob.physics.calibration import coverage_curve, gaussian_nll
from sciprob.physics.pddlvm_plots import plot_coverage, plot_elbo, plot_forward, plot_inverse

PAPER = "Vadeboncoeur et al. 2023, Fully probabilistic deep models for forward and inverse problems in parametric PDEs (arXiv:2208.04856)"  # noqa: E501


@dataclass(frozen=True)
class PDDLVMConfig:
    """Discretisation, networks, ELBO and training budget of a PDDLVM run."""

    mesh: int = param(20, "elements (1D) or squares per side (2D); >= 2")
    basis_degree: int = param(
        5, "Chebyshev polynomials per direction representing u (the paper's dimU in 1D)"
    )
    hidden: tuple[int, ...] = param((50, 50, 50), "hidden widths of the forward network q(u|z)")
    inverse_hidden: tuple[int, ...] = param((50, 50, 50), "hidden widths of the inverse network p(z|u)")
    covariance: Literal["diagonal", "lowrank"] = param("diagonal", "covariance family of both networks")
    rank: int = param(2, "rank of the low-rank covariance factor")
    epsilon: float = param(1e-2, "residual noise scale epsilon (paper: 1e-2)")
    steps: int = param(2000, "SVI steps")
    batch_size: int = param(32, "prior draws of z per step (paper: 1)")
    lr: float = param(1e-2, "initial Adam learning rate")
    lr_halve_every: int = param(500, "steps per halving of the learning rate (smooth per-step decay)")
    clip: float = param(10.0, "elementwise gradient clipping of ClippedAdam")
    n_test: int = param(100, "held-out parameter draws from the prior")
    n_calibration: int = param(20, "FEM solves (other prior draws) that calibrate the forward map's scale")
    jit: bool = param(True, "use JitTrace_ELBO (the model structure is static)")
    checkpoint_every: int = param(1000, "steps between checkpoints")
    dtype: Literal["float32", "float64"] = param("float32", "floating point type of training")
    n_plot: int = param(3, "test cases shown in the figures")

    def __post_init__(self) -> None:
        checks = {
            "mesh": (self.mesh >= 2, "an integer >= 2"),
            "basis_degree": (self.basis_degree >= 2, "an integer >= 2"),
            "hidden": (len(self.hidden) > 0 and min(self.hidden) > 0, "positive widths"),
            "inverse_hidden": (
                len(self.inverse_hidden) > 0 and min(self.inverse_hidden) > 0,
                "positive widths",
            ),
            "rank": (self.rank >= 1, "an integer >= 1"),
            "epsilon": (self.epsilon > 0, "positive"),
            "steps": (self.steps >= 0, "an integer >= 0"),
            "batch_size": (self.batch_size >= 1, "an integer >= 1"),
            "lr": (self.lr > 0, "positive"),
            "lr_halve_every": (self.lr_halve_every >= 1, "an integer >= 1"),
            "clip": (self.clip > 0, "positive"),
            "n_test": (self.n_test >= 1, "an integer >= 1"),
            "n_calibration": (self.n_calibration >= 1, "an integer >= 1"),
            "checkpoint_every": (self.checkpoint_every >= 1, "an integer >= 1"),
            "n_plot": (1 <= self.n_plot <= self.n_test, "between 1 and `n_test`"),
        }
        for key, (ok, rule) in checks.items():
            if not ok:
                raise ValueError(f"`{key}` must be {rule}, got {getattr(self, key)!r}")

    gdim: ClassVar[int] = 1  # geometric dimension of the problem the config is for

    def estimated_bytes(self) -> int:
        """Peak memory of a run, an upper estimate in bytes.

        Dominant terms: the residual's autograd tape for one batch (about 40
        doubles per cell and sample, for gathers, fluxes and scatters with their
        gradients), the dense reduced basis and its pseudo-inverse and
        Jacobian product (``n_dofs x m``, several copies), the DOLFINx LU factor
        of the reference solves, and the network activations.
        """
        n_dofs = (self.mesh + 1) ** self.gdim
        n_cells = self.mesh if self.gdim == 1 else 2 * self.mesh**2
        m = self.basis_degree**self.gdim
        width = max(*self.hidden, *self.inverse_hidden)
        tape = 40 * self.batch_size * (n_cells + n_dofs)
        basis = 6 * n_dofs * m + 3 * m * m
        lu = 60 * n_dofs * max(1.0, math.log2(n_dofs))
        nets = 10 * max(self.batch_size, self.n_test) * width * (len(self.hidden) + len(self.inverse_hidden))
        tests = 4 * (self.n_test + self.n_calibration) * (n_dofs + n_cells) + 200 * self.n_plot * n_cells
        return int(8 * (tape + basis + lu + nets + tests))


@dataclass(frozen=True)
class NonlinearPDDLVMConfig(PDDLVMConfig):
    """As :class:`PDDLVMConfig`, defaults of the paper's nonlinear 1D problem."""

    mesh: int = param(60, "elements; >= 2")
    basis_degree: int = param(10, "Chebyshev polynomials representing u (the paper's dimU)")
    hidden: tuple[int, ...] = param((100, 100, 100, 100), "hidden widths of q(u|z)")
    inverse_hidden: tuple[int, ...] = param((100, 100, 100, 100), "hidden widths of p(z|u)")


@dataclass(frozen=True)
class Poisson2DConfig(PDDLVMConfig):
    """As :class:`PDDLVMConfig`, defaults of issue #4's 2D problem."""

    gdim: ClassVar[int] = 2
    mesh: int = param(32, "squares per side of the unit-square triangle mesh; >= 2")
    basis_degree: int = param(8, "Chebyshev polynomials per direction (m = degree**2)")
    hidden: tuple[int, ...] = param((128, 128, 128), "hidden widths of q(u|z)")
    inverse_hidden: tuple[int, ...] = param((128, 128, 128), "hidden widths of p(z|u)")
    epsilon: float = param(1e-3, "residual noise scale epsilon (load entries are ~10 h^2)")
    batch_size: int = param(64, "prior draws of z per step")


def _nme(truth: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Per-case ``||truth - estimate||^2 / ||truth||^2``, shape (batch,)."""
    return ((truth - estimate) ** 2).sum(-1) / (truth**2).sum(-1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_seconds_per_solution(model, z: torch.Tensor, device: torch.device, with_std: bool = False) -> float:
    """Seconds per solution of the batched forward map on ``z`` (shape (n, dim_z)), best of 20.

    ``with_std=False`` times the mean nodal solution (:meth:`~sciprob.physics.PDDLVM.forward_mean`,
    the paper's "NN map + einsum", what a FEM solve returns); ``True`` the whole predictive
    distribution (:meth:`~sciprob.physics.PDDLVM.forward`: mean and nodal standard deviations).
    Other load on the machine only ever adds time, so the minimum is the measurement.
    """
    run = model.forward if with_std else model.forward_mean
    run(z)  # warm-up
    seconds = []
    for _ in range(20):
        _sync(device)
        t0 = time.perf_counter()
        run(z)
        _sync(device)
        seconds.append(time.perf_counter() - t0)
    return min(seconds) / z.shape[0]


#: the forward bands' nominal level, as an anchor of the reports
COVERAGE_ANCHOR = (0.95, "nominal level of the calibrated band (issue #20 accepts 0.85-0.99)")
#: nominal levels of the calibration curves
LEVELS = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99])


def calibrated_forward(
    model, z_cal: torch.Tensor, u_cal: torch.Tensor, z_test: torch.Tensor, u_test: torch.Tensor
):
    """Calibrate the forward map's scale on FEM solves, then measure its bands on the test set.

    Parameters
    ----------
    model : PDDLVM
        Trained; :meth:`~sciprob.physics.PDDLVM.calibrate` sets its ``forward_scale``.
    z_cal, u_cal : Tensor of shape (n_cal, dim_z), (n_cal, n_dofs)
        Calibration parameters and their FEM solutions (not in the test set).
    z_test, u_test : Tensor of shape (n_test, dim_z), (n_test, n_dofs)

    Returns
    -------
    forward : Normal
        The calibrated forward map on ``z_test``.
    metrics : dict
        ``forward_coverage_95`` (calibrated) and ``forward_coverage_95_uncalibrated``,
        ``forward_nll`` and ``forward_nll_uncalibrated`` (nats per free nodal value),
        ``forward_calibration_scale``.
    curves : dict of str to ndarray
        Coverage at :data:`LEVELS` before and after calibration.
    """
    raw = model.forward(z_test)
    scale = model.calibrate(z_cal, u_cal, level=0.95)
    forward = model.forward(z_test)
    curves = {
        "variational": coverage_curve(u_test, raw.mean, raw.stddev, LEVELS),
        f"calibrated on {z_cal.shape[0]} FEM solves": coverage_curve(
            u_test, forward.mean, forward.stddev, LEVELS
        ),
    }
    inside = (u_test - forward.mean).abs() <= 1.96 * forward.stddev
    inside_raw = (u_test - raw.mean).abs() <= 1.96 * raw.stddev
    metrics = {
        "forward_coverage_95": inside.double().mean().item(),
        "forward_coverage_95_uncalibrated": inside_raw.double().mean().item(),
        "forward_nll": gaussian_nll(u_test, forward.mean, forward.stddev),
        "forward_nll_uncalibrated": gaussian_nll(u_test, raw.mean, raw.stddev),
        "forward_calibration_scale": scale,
    }
    return forward, metrics, curves


def evaluate_forward(model, problem, n_calibration: int, z_test: torch.Tensor, u_test: torch.Tensor, timings):
    """After training: calibrate the forward map on new FEM solves and time it against DOLFINx.

    Draws ``n_calibration`` parameter vectors from the prior (after training, so the training's
    random stream is left as it was), solves them with DOLFINx, calibrates with
    :func:`calibrated_forward`, and adds to ``timings``: ``model_seconds_per_solution`` (the
    mean nodal solution) and ``speedup`` (``timings["fem_seconds_per_solve"]`` over it), and
    ``model_seconds_per_distribution`` and ``speedup_distribution`` for the whole predictive
    distribution (mean and standard deviations).

    Returns
    -------
    forward, metrics, curves
        As :func:`calibrated_forward`.
    """
    z_cal = problem.prior().sample((n_calibration,))
    u_cal = problem.solve_fem(z_cal)
    result = calibrated_forward(model, z_cal.to(z_test), u_cal.to(u_test), z_test, u_test)
    for suffix, name, with_std in (("", "solution", False), ("_distribution", "distribution", True)):
        seconds = model_seconds_per_solution(model, z_test, z_test.device, with_std=with_std)
        timings[f"model_seconds_per_{name}"] = seconds
        timings[f"speedup{suffix}"] = timings["fem_seconds_per_solve"] / seconds
    return result


def run_pddlvm(problem_factory: Callable[[int], object], cfg: PDDLVMConfig, unit: UnitContext) -> UnitResult:
    """Build the problem, train the PDDLVM, evaluate it against DOLFINx, plot.

    The engine has seeded the global RNGs with the unit's seed (Pyro's SVI and
    the prior draws use them); the training resumes from ``unit.checkpoint_path``
    if a previous attempt of the unit was killed.

    Parameters
    ----------
    problem_factory : callable
        ``factory(mesh) -> ParametricPoissonProblem``.
    cfg : PDDLVMConfig
    unit : UnitContext

    Returns
    -------
    UnitResult
        Metrics ``forward_nme``, ``inverse_nme``, those of :func:`calibrated_forward` and
        ``forward_nme_untrained``; timings ``speedup``, ``train_seconds``,
        ``setup_seconds``, ``fem_seconds_per_solve`` and ``model_seconds_per_solution``.
    """
    import pyro
    from pyro.optim import ClippedAdam

    from sciprob.physics import PDDLVM, ReducedBasis
    from sciprob.ppl import train_svi

    dtype = getattr(torch, cfg.dtype)
    device = unit.device
    timings: dict[str, float] = {}
    start = time.perf_counter()  # meshes and DOLFINx form compilation
    problem = problem_factory(cfg.mesh)
    basis = ReducedBasis.chebyshev(problem.discrete, cfg.basis_degree)
    timings["setup_seconds"] = time.perf_counter() - start
    discrete = problem.discrete
    z_test = problem.prior().sample((cfg.n_test,))

    start = time.perf_counter()
    u_fem = problem.solve_fem(z_test)  # one compiled-form solve at a time
    fem_seconds = (time.perf_counter() - start) / cfg.n_test
    timings["fem_seconds_per_solve"] = fem_seconds

    discrete.to(device=device, dtype=dtype)
    basis.to(device=device, dtype=dtype)
    pyro.clear_param_store()
    model = PDDLVM(
        discrete,
        basis,
        epsilon=cfg.epsilon,
        hidden=cfg.hidden,
        inverse_hidden=cfg.inverse_hidden,
        covariance=cfg.covariance,
        rank=cfg.rank,
    ).to(device=device, dtype=dtype)
    z_dev, u_dev = z_test.to(device, dtype), u_fem.to(device, dtype)
    untrained = _nme(u_dev, model.forward(z_dev).mean).mean().item()

    optimizer = ClippedAdam({"lr": cfg.lr, "lrd": 0.5 ** (1.0 / cfg.lr_halve_every), "clip_norm": cfg.clip})
    start = time.perf_counter()
    history = train_svi(
        model.model,
        model.guide,
        optimizer,
        steps=cfg.steps,
        model_kwargs={"batch_size": cfg.batch_size},
        jit=cfg.jit,
        checkpoint_path=unit.checkpoint_path,
        checkpoint_every=cfg.checkpoint_every,
        resume=True,  # continues only where a killed attempt left a checkpoint
        description=f"PDDLVM {unit.name}",
    )
    timings["train_seconds"] = time.perf_counter() - start
    forward, calibration, curves = evaluate_forward(model, problem, cfg.n_calibration, z_dev, u_dev, timings)
    inverse = model.inverse(u_dev)

    kappa_true = discrete.coefficients.kappa_field(z_dev)
    kappa_pred = discrete.coefficients.kappa_field(inverse.mean)
    metrics = {
        "forward_nme": _nme(u_dev, forward.mean).mean().item(),
        "inverse_nme": _nme(kappa_true, kappa_pred).mean().item(),
        **calibration,
        "forward_nme_untrained": untrained,
    }

    k = cfg.n_plot
    unit.savefig(
        plot_forward(discrete, u_fem[:k], forward.mean[:k].cpu(), forward.stddev[:k].cpu()),
        "forward.png",
        f"FEM (DOLFINx) vs PDDLVM predictive mean with ±2σ bands, {k} test cases.",
    )
    kappa_samples = discrete.coefficients.kappa_field(
        inverse.sample((200,))[:, :k].reshape(-1, discrete.dim_z)
    ).reshape(200, k, -1)
    unit.savefig(
        plot_inverse(discrete, kappa_true[:k].cpu(), kappa_pred[:k].cpu(), kappa_samples.cpu()),
        "inverse.png",
        "Diffusivity behind each FEM solution: truth vs the inverse map (mean of z, 95% band).",
    )
    unit.savefig(plot_elbo(history.losses), "elbo.png", "ELBO during training.")
    unit.savefig(
        plot_coverage(LEVELS, curves),
        "coverage.png",
        "Calibration of the forward Gaussian on the test set: fraction of FEM nodal values inside central "
        "intervals, before and after scaling the standard deviations on the calibration solves.",
    )
    unit.table(
        "Test set",
        "\n".join(
            [
                "| quantity | value |",
                "|---|---|",
                f"| degrees of freedom | {discrete.n_dofs} |",
                f"| cells | {discrete.operator.n_cells} |",
                f"| reduced coordinates of u | {basis.size} |",
                f"| test cases | {cfg.n_test} |",
                f"| FEM seconds per solve | {fem_seconds:.3e} |",
                f"| model seconds per solution (batched) | {timings['model_seconds_per_solution']:.3e} |",
                f"| forward NME before training | {untrained:.3e} |",
            ]
        ),
    )
    return UnitResult(metrics=metrics, timings=timings, artifacts={"losses": history.losses})


def calibration_note(metrics: dict[str, float]) -> str:
    """Say, with this run's numbers, what the calibration step did to the forward bands."""
    return (
        "Uncertainty of the forward map: the variational Gaussian is diagonal in reduced coordinates, so its "
        "bands reflect the residual noise epsilon, not the network's approximation error; they held "
        f"{metrics['forward_coverage_95_uncalibrated']:.3f} of the test FEM values at nominal 0.95 "
        f"(NLL {metrics['forward_nll_uncalibrated']:.3g} nats per value). A calibration step on FEM solves "
        "of other prior draws (split conformal, one factor for all standard deviations, "
        f"`forward_calibration_scale` = {metrics['forward_calibration_scale']:.3g}) gives "
        f"`forward_coverage_95` = {metrics['forward_coverage_95']:.3f} (issue #20 accepts 0.85-0.99) and "
        f"NLL {metrics['forward_nll']:.3g}; `coverage.png` shows both calibration curves. The calibration "
        "uses FEM solves, so it is reported as such: the trained networks alone give the uncalibrated "
        "numbers."
    )


def _target_notes(
    ctx: RunContext, metrics: dict[str, float], timings: dict[str, float], targets: dict[str, float]
) -> None:
    """Say, with this run's numbers, which of issue #4's paper-preset targets hold."""
    lines = []
    for key, bound in targets.items():
        value = metrics[key] if key in metrics else timings[key]
        holds = value <= bound if key.endswith("nme") else value >= bound
        relation = "<=" if key.endswith("nme") else ">="
        lines.append(
            f"`{key}` = {value:.3g} (target {relation} {bound:g}, set for the paper preset): "
            + ("holds." if holds else "**does not hold** in this run.")
        )
    lines.append(
        "The paper reports relative errors but its table values were not available to us "
        "(../shared/references/scienceml.md: NOT FOUND), so `inverse_nme` "
        f"= {metrics['inverse_nme']:.3g} cannot be compared with a published number. "
        + calibration_note(metrics)
    )
    ctx.note(" ".join(lines))


def _common_notes(ctx: RunContext, metrics_hint: str) -> None:
    ctx.note(
        "Representation of u: reduced Chebyshev coordinates (tensor products in 2D), "
        "re-orthonormalised with the residual Jacobian at the prior mean (our choice; the paper "
        "uses plain Chebyshev coefficients). The residual is the full nodal P1 residual assembled "
        "from DOLFINx operators; the diffusivity is cell-wise (DG0 at cell midpoints). "
        "`inverse_nme` is the NME of the diffusivity field kappa(mean of p(z|u_FEM)). "
        "`speedup` and `train_seconds` are wall-clock timings (they vary between runs), so they are "
        "reported under the timings, not the metrics; "
        "`forward_nme_untrained` is the forward error of the initial networks. " + metrics_hint
    )


def _combine(
    cfg: PDDLVMConfig, results: list[UnitResult], ctx: RunContext, targets: dict[str, float], hint: str
) -> dict[str, float]:
    """Pass the single unit's metrics on; its timings go to the run's timings; notes."""
    (result,) = results
    ctx.timings.update(result.timings)
    _target_notes(ctx, result.metrics, result.timings, targets)
    _common_notes(ctx, hint)
    return dict(result.metrics)


def combine_poisson_1d(cfg: PDDLVMConfig, results: list[UnitResult], ctx: RunContext) -> dict[str, float]:
    """Return the linear 1D run's metrics and add its notes."""
    hint = (
        "Paper budget: 200,000 Adam steps with one sample each, lr 1e-3 halved every 20k, nets 3x50, "
        f"epsilon 1e-2; this run: {cfg.steps} steps of {cfg.batch_size} samples."
    )
    return _combine(cfg, results, ctx, {"forward_nme": 1e-3}, hint)


def combine_nonlinear_poisson_1d(
    cfg: NonlinearPDDLVMConfig, results: list[UnitResult], ctx: RunContext
) -> dict[str, float]:
    """Return the nonlinear 1D run's metrics and add its notes."""
    hint = (
        "Paper budget: 1,000,000 Adam steps, lr 1e-3 halved every 100k, grad clip 1, nets 4x100, "
        f"epsilon 1e-2; this run: {cfg.steps} steps of {cfg.batch_size} samples. The inverse map "
        "also predicts f and the right boundary value (z has 7 entries); `inverse_nme` scores kappa only."
    )
    return _combine(cfg, results, ctx, {"forward_nme": 1e-3}, hint)


def combine_poisson_2d(cfg: Poisson2DConfig, results: list[UnitResult], ctx: RunContext) -> dict[str, float]:
    """Return the 2D run's metrics and add its notes."""
    hint = (
        "The problem is not in the paper, so there is nothing to compare with but the acceptance "
        "targets of issue #4. Epsilon is scaled with the load entries (~10 h^2)."
    )
    return _combine(cfg, results, ctx, {"forward_nme": 5e-3, "speedup": 100.0}, hint)


@experiment(
    "pddlvm-poisson-1d",
    config=PDDLVMConfig,
    presets={
        "tiny": {
            "steps": 60,
            "n_test": 5,
            "n_calibration": 5,
            "hidden": (16, 16),
            "inverse_hidden": (16, 16),
            "batch_size": 8,
        },
        "quick": {"steps": 3000, "lr_halve_every": 600},
        "paper": {"steps": 10000, "lr_halve_every": 2000, "n_test": 200},
    },
    paper=PAPER,
    summary="Linear 1D Poisson (20 P1 cells, kappa = softplus(z)): forward/inverse maps from the residual.",
    anchors={
        "forward_nme": (1e-3, "issue #4 acceptance target (the paper's table values were not available)"),
        "forward_coverage_95": COVERAGE_ANCHOR,
    },
    combine=combine_poisson_1d,
)
def run_poisson_1d(cfg: PDDLVMConfig, unit: UnitContext) -> UnitResult:
    """Run the paper's linear 1D set-up."""
    from sciprob.physics.fem import LinearPoisson1D

    return run_pddlvm(LinearPoisson1D, cfg, unit)


@experiment(
    "pddlvm-nonlinear-poisson-1d",
    config=NonlinearPDDLVMConfig,
    presets={
        "tiny": {
            "steps": 40,
            "n_test": 4,
            "n_calibration": 5,
            "hidden": (16, 16),
            "inverse_hidden": (16, 16),
            "batch_size": 8,
            "mesh": 20,
        },
        "quick": {"steps": 3000, "lr_halve_every": 600},
        "paper": {"steps": 12000, "lr_halve_every": 2400, "batch_size": 64, "n_test": 200},
    },
    paper=PAPER,
    summary="Nonlinear 1D Poisson (60 cells, Chebyshev kappa, random f and BC): PDDLVM forward/inverse maps.",
    anchors={
        "forward_nme": (1e-3, "issue #4 acceptance target (the paper's table values were not available)"),
        "forward_coverage_95": COVERAGE_ANCHOR,
    },
    combine=combine_nonlinear_poisson_1d,
)
def run_nonlinear_poisson_1d(cfg: NonlinearPDDLVMConfig, unit: UnitContext) -> UnitResult:
    """Run the paper's nonlinear 1D set-up."""
    from sciprob.physics.fem import NonlinearPoisson1D

    return run_pddlvm(NonlinearPoisson1D, cfg, unit)


@experiment(
    "pddlvm-poisson-2d",
    config=Poisson2DConfig,
    presets={
        "tiny": {
            "steps": 30,
            "n_test": 4,
            "n_calibration": 5,
            "mesh": 6,
            "basis_degree": 4,
            "hidden": (16, 16),
            "inverse_hidden": (16, 16),
            "batch_size": 8,
        },
        "quick": {"steps": 1500, "lr_halve_every": 300},
        "paper": {"mesh": 64, "steps": 3000, "lr_halve_every": 600, "epsilon": 2.5e-4, "n_test": 200},
    },
    paper=PAPER + " (problem beyond the paper, issue #4)",
    summary="2D Poisson on the unit square, kappa = exp(8 cosine modes): PDDLVM maps, speed-up over DOLFINx.",
    anchors={
        "forward_nme": (5e-3, "issue #4 acceptance target"),
        "speedup": (100.0, "issue #4 acceptance target (paper abstract: up to ~1000x on 3D shells)"),
        "forward_coverage_95": COVERAGE_ANCHOR,
    },
    combine=combine_poisson_2d,
)
def run_poisson_2d(cfg: Poisson2DConfig, unit: UnitContext) -> UnitResult:
    """Run issue #4's 2D problem."""
    from sciprob.physics.fem import Poisson2D

    return run_pddlvm(Poisson2D, cfg, unit)
