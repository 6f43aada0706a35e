"""``pddlvm-pinn-heat``: the PDDLVM with a PINN residual on the paper's nonlinear heat equation.

u_t = (1/γ) ∂x(μ(u) ∂x u), μ(u) = (u κ² + 1)/κ on [0, 2π] × [0, 2], u(x, 0) = sin x + 1,
u = 1 at both ends, z = (γ, κ) ~ U([1, 5]²) (Vadeboncoeur et al., arXiv:2208.04856,
official code ``apps/PINN``). One unit: train the forward field and the inverse CNN
on the residual alone, then compare with the DOLFINx backward-Euler/Newton reference
(:class:`sciprob.physics.fem.heat.HeatReferenceSolver`) at held-out (γ, κ), and map
the residual and σ over (γ, κ) ∈ [0.1, 12]² (extrapolation beyond the prior box).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from sciprob.config import param
from sciprob.experiments import RunContext, UnitContext, UnitResult, experiment

#: parameter pairs of the extrapolation map evaluated together
_MAP_CHUNK = 4

PAPER = "Vadeboncoeur et al. 2023, Fully probabilistic deep models for forward and inverse problems in parametric PDEs (arXiv:2208.04856)"  # noqa: E501


@dataclass(frozen=True)
class PINNHeatConfig:
    """Collocation grid, networks, residual noise, training and evaluation of the PINN run."""

    nx: int = param(100, "grid points in x, ends included (paper: 100)")
    nt: int = param(200, "grid points in t, t = 0 included (paper: 200)")
    hidden: tuple[int, ...] = param((100, 100, 100, 100), "hidden widths of the field network (paper: 4x100)")
    dense: int = param(500, "dense layer of the inverse CNN (paper: 500)")
    eps_interior: float = param(1e-2, "residual noise inside (paper: 1e-2)")
    eps_initial: float = param(1e-3, "residual noise on the initial set (paper: 1e-3)")
    eps_boundary: float = param(1e-3, "residual noise on the boundary set (paper: 1e-3)")
    steps: int = param(20000, "SVI steps (paper: 500,000)")
    batch_size: int = param(1, "prior draws of z per step (paper: 1)")
    lr: float = param(1e-3, "initial Adam learning rate (paper: 1e-3)")
    lr_halve_every: int = param(5000, "steps per halving of the learning rate")
    n_test: int = param(10, "held-out (gamma, kappa) draws compared with DOLFINx")
    reference_refine: int = param(4, "the DOLFINx reference uses this many cells and steps per grid interval")
    n_map: int = param(12, "points per axis of the extrapolation map over [0.1, 12]^2")
    checkpoint_every: int = param(1000, "SVI steps between checkpoints")

    def __post_init__(self) -> None:
        checks = {
            "nx": (self.nx >= 10, "an integer >= 10 (the inverse CNN needs an 8 x 8 image)"),
            "nt": (self.nt >= 9, "an integer >= 9"),
            "hidden": (len(self.hidden) > 0 and min(self.hidden) > 0, "positive widths"),
            "dense": (self.dense >= 1, "an integer >= 1"),
            "eps_interior": (self.eps_interior > 0, "positive"),
            "eps_initial": (self.eps_initial > 0, "positive"),
            "eps_boundary": (self.eps_boundary > 0, "positive"),
            "steps": (self.steps >= 0, "an integer >= 0"),
            "batch_size": (self.batch_size >= 1, "an integer >= 1"),
            "lr": (self.lr > 0, "positive"),
            "lr_halve_every": (self.lr_halve_every >= 1, "an integer >= 1"),
            "n_test": (self.n_test >= 1, "an integer >= 1"),
            "reference_refine": (self.reference_refine >= 1, "an integer >= 1"),
            "n_map": (self.n_map >= 2, "an integer >= 2"),
            "checkpoint_every": (self.checkpoint_every >= 1, "an integer >= 1"),
        }
        for key, (ok, rule) in checks.items():
            if not ok:
                raise ValueError(f"`{key}` must be {rule}, got {getattr(self, key)!r}")

    def estimated_bytes(self) -> int:
        """Peak memory, an upper estimate in bytes.

        The second-order autograd tape of the field network over one batch of
        collocation points (about 12 float32 activations per unit and layer),
        the same for one chunk of the extrapolation map, and the reference
        solutions on the grid.
        """
        points = self.nx * self.nt
        width = sum(self.hidden)
        tape = 12 * 4 * max(self.batch_size, _MAP_CHUNK) * points * width
        cnn = 4 * self.batch_size * points * 8 * 4 + 4 * points * self.dense
        ref = 8 * (self.n_test + 2) * points * self.reference_refine**3
        return int(tape + cnn + ref)


def _relative_l2(truth: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, truth.ndim))
    return np.sqrt(((truth - estimate) ** 2).sum(axes) / (truth**2).sum(axes))


def _figures(unit, x, t, ref, mean, std, z0, axis, res_map, sig_map, history) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 3.4))
    axes = fig.subplots(1, 4)
    extent = (x[0], x[-1], t[0], t[-1])
    for ax, (title, values) in zip(
        axes,
        [("DOLFINx", ref), ("PINN mean", mean), ("|error|", np.abs(ref - mean)), ("σ", std)],
        strict=True,
    ):
        im = ax.imshow(values, origin="lower", aspect="auto", extent=extent)
        fig.colorbar(im, ax=ax)
        ax.set_title(f"{title}, γ={z0[0]:.2f}, κ={z0[1]:.2f}")
        ax.set_xlabel("x")
    axes[0].set_ylabel("t")
    unit.savefig(
        fig, "forward.png", "First held-out case: DOLFINx reference, PINN mean, error and σ on the grid."
    )

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    ext = (axis[0], axis[-1], axis[0], axis[-1])
    for ax, (title, values) in zip(
        axes, [("mean |PDE residual|", res_map), ("mean σ", sig_map)], strict=True
    ):
        im = ax.imshow(np.log10(values.T + 1e-12), origin="lower", extent=ext, aspect="equal")
        fig.colorbar(im, ax=ax, label="log10")
        ax.plot([1, 5, 5, 1, 1], [1, 1, 5, 5, 1], "w--", lw=1)
        ax.set_xlabel("γ")
        ax.set_ylabel("κ")
        ax.set_title(title)
    unit.savefig(
        fig, "extrapolation.png", "Residual and σ over (γ, κ) ∈ [0.1, 12]²; dashed: the training box."
    )

    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    losses = np.asarray(history.losses, dtype=float)
    if losses.size:
        ax.plot(np.arange(1, losses.size + 1), -losses, lw=0.6)
    ax.set_yscale("symlog")
    ax.set_xlabel("step")
    ax.set_ylabel("ELBO")
    unit.savefig(fig, "elbo.png", "ELBO during training.")


def _extrapolation_text(ex: dict) -> str:
    if ex["residual_inside"] is None or ex["residual_outside"] is None:
        return "The extrapolation map has no point on one side of the prior box's edge."
    return (
        f"Extrapolation: mean |PDE residual| of the predictive mean {ex['residual_inside']:.3g} inside the "
        f"prior box [1, 5]^2 vs {ex['residual_outside']:.3g} outside it (figure)."
    )


def combine_pinn_heat(cfg: PINNHeatConfig, results: list[UnitResult], ctx: RunContext) -> dict[str, float]:
    """Pass the unit's metrics on, its timings to the run's; table and the comparisons with the paper."""
    (result,) = results
    ctx.timings.update(result.timings)
    m, tm = result.metrics, result.timings
    lines = ["| γ | κ | rel. L2 | γ̂ | κ̂ |", "|---|---|---|---|---|"]
    for r in result.rows:
        lines.append(
            f"| {r['gamma']:.3f} | {r['kappa']:.3f} | {r['rel_l2']:.3e} "
            f"| {r['gamma_hat']:.3f} | {r['kappa_hat']:.3f} |"
        )
    ctx.table("Held-out parameters", "\n".join(lines))
    holds = m["forward_rel_l2"] <= 2e-2
    ctx.note(
        f"`forward_rel_l2` = {m['forward_rel_l2']:.3g} against the DOLFINx reference "
        "(P1, backward Euler, Newton; "
        f"{cfg.reference_refine}x refined in x and t, sampled on the {cfg.nx} x {cfg.nt} grid): issue #21's "
        "paper-preset target <= 2e-2 " + ("holds" if holds else "**does not hold**") + " in this run. "
        f"Speed-up (timings): {tm['speedup']:.3g}x = {tm['fem_seconds_per_solve']:.3g} s per DOLFINx "
        f"solve over {tm['model_seconds_per_solution']:.3g} s per PINN field on the grid (batched); "
        "the paper's abstract claims "
        f"up to three orders of magnitude (1000x), a ratio of {tm['speedup'] / 1000:.3g} of that claim. "
        + _extrapolation_text(result.artifacts["extrapolation"])
    )
    ctx.note(
        "Differences from the paper: it trains 500,000 Adam steps (a GPU budget); this run trains "
        f"{cfg.steps} steps of {cfg.batch_size} draw(s) on a {cfg.nx} x {cfg.nt} grid (the paper preset: "
        "8,000 steps on the paper's 100 x 200 grid with its 4x100 field, an estimated 1-1.5 hours on two "
        "CPU cores from the measured step cost; the quick preset: a coarse grid and smaller networks). "
        "The residual noise levels, prior, domain, networks (4x100 "
        "field, 8/16/32 CNN with a 500-unit dense layer) follow the paper; the CNN uses padding 1 "
        "(our choice, "
        "so that small grids work)."
    )
    return dict(m)


@experiment(
    "pddlvm-pinn-heat",
    config=PINNHeatConfig,
    presets={
        "tiny": {
            "nx": 12,
            "nt": 12,
            "hidden": (16, 16),
            "dense": 16,
            "steps": 20,
            "batch_size": 2,
            "n_test": 2,
            "reference_refine": 1,
            "n_map": 4,
        },
        "quick": {
            "nx": 26,
            "nt": 41,
            "hidden": (64, 64, 64),
            "dense": 100,
            "steps": 1500,
            "batch_size": 4,
            "lr": 3e-3,
            "lr_halve_every": 500,
            "n_test": 6,
            "reference_refine": 4,
            "n_map": 8,
        },
        "paper": {"steps": 8000, "lr_halve_every": 2000, "n_test": 20, "n_map": 24},
    },  # fmt: skip
    paper=PAPER,
    summary="PINN-residual PDDLVM for the heat equation u_t = (1/γ)(μ(u)u_x)_x vs a DOLFINx reference.",
    anchors={
        "forward_rel_l2": (2e-2, "issue #21 acceptance target for the paper preset"),
        "speedup": (1000.0, "paper abstract: up to three orders of magnitude over FEM"),
    },
    combine=combine_pinn_heat,
    devices=("cpu", "cuda"),
)
def run_pinn_heat(cfg: PINNHeatConfig, unit: UnitContext) -> UnitResult:
    """Train the PINN-PDDLVM, evaluate against DOLFINx, map the extrapolation."""
    import pyro
    from pyro.optim import ClippedAdam

    from sciprob.physics.fem.heat import HeatReferenceSolver, sample_on_grid
    from sciprob.physics.pinn import PINNPDDLVM, CollocationGrid, HeatEquation
    from sciprob.ppl import train_svi

    device = unit.device
    pde = HeatEquation()
    grid = CollocationGrid.uniform(pde, cfg.nx, cfg.nt, cfg.eps_interior, cfg.eps_initial, cfg.eps_boundary)
    pyro.clear_param_store()
    model = PINNPDDLVM(pde, grid, cfg.hidden, cfg.dense).to(device)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    history = train_svi(
        model.model,
        model.guide,
        ClippedAdam({"lr": cfg.lr, "lrd": 0.5 ** (1.0 / cfg.lr_halve_every), "clip_norm": 10.0}),
        steps=cfg.steps,
        model_kwargs={"batch_size": cfg.batch_size},
        checkpoint_path=unit.checkpoint_path,
        checkpoint_every=cfg.checkpoint_every,
        resume=True,  # continues only where a killed attempt left a checkpoint
        description="PINN-PDDLVM heat",
    )
    timings["train_seconds"] = time.perf_counter() - start

    # held-out parameters and the DOLFINx reference on a refined mesh and time step
    gen = unit.generator(torch.device("cpu"))
    low, high = torch.tensor(pde.low), torch.tensor(pde.high)
    z_test = low + (high - low) * torch.rand(cfg.n_test, 2, generator=gen)
    x = np.linspace(0.0, pde.length, cfg.nx)
    t = np.linspace(0.0, pde.t_end, cfg.nt)
    solver = HeatReferenceSolver((cfg.nx - 1) * cfg.reference_refine, (cfg.nt - 1) * cfg.reference_refine)
    refs, seconds = [], []
    for gamma, kappa in z_test.tolist():
        sol = solver.solve(gamma, kappa)
        refs.append(sample_on_grid(sol, x, t))
        seconds.append(sol.seconds)
    u_ref = np.stack(refs)  # (n_test, nt, nx)
    timings["fem_seconds_per_solve"] = float(np.mean(seconds))

    z_dev = z_test.to(device, torch.float32)
    pred = model.forward(z_dev)
    mean = grid.full_grid(pred.mean).cpu().double().numpy()
    std = grid.full_grid(pred.stddev).cpu().double().numpy()
    best = float("inf")
    for _ in range(10):  # best of 10: other load on the machine only ever adds time
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        model.forward(z_dev)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    timings["model_seconds_per_solution"] = best / cfg.n_test
    timings["speedup"] = timings["fem_seconds_per_solve"] / timings["model_seconds_per_solution"]

    inverse = model.inverse(torch.from_numpy(u_ref).float().to(device))
    z_hat = inverse.mean.cpu().double()
    zt = z_test.double()
    rel = _relative_l2(u_ref, mean)
    metrics = {
        "forward_rel_l2": float(rel.mean()),
        "inverse_nme": float((((zt - z_hat) ** 2).sum(-1) / (zt**2).sum(-1)).mean()),
        "forward_coverage_95": float((np.abs(u_ref - mean) <= 1.96 * std).mean()),
    }

    # extrapolation map: mean |PDE residual| of the predictive mean and mean sigma over [0.1, 12]^2
    axis = torch.linspace(0.1, 12.0, cfg.n_map)
    gg, kk = torch.meshgrid(axis, axis, indexing="ij")
    z_map = torch.stack([gg.reshape(-1), kk.reshape(-1)], -1).to(device)
    res_map, sig_map = [], []
    for row in z_map.split(_MAP_CHUNK):  # a few fields at a time: the second-order tape is large
        res = model.residual_of_mean(row)[:, : grid.n_interior].abs().mean(-1)
        res_map.append(res.cpu())
        sig_map.append(model.forward(row).stddev.mean(-1).cpu())
    res_map = torch.cat(res_map).reshape(cfg.n_map, cfg.n_map).double().numpy()
    sig_map = torch.cat(sig_map).reshape(cfg.n_map, cfg.n_map).double().numpy()
    inside = ((gg >= 1) & (gg <= 5) & (kk >= 1) & (kk <= 5)).numpy()
    extrapolation = {
        "residual_inside": float(res_map[inside].mean()) if inside.any() else None,
        "residual_outside": float(res_map[~inside].mean()) if (~inside).any() else None,
    }

    _figures(
        unit, x, t, u_ref[0], mean[0], std[0], z_test[0].tolist(), axis.numpy(), res_map, sig_map, history
    )
    rows = [
        {
            "gamma": float(g),
            "kappa": float(k),
            "rel_l2": float(r),
            "gamma_hat": float(a),
            "kappa_hat": float(b),
        }
        for (g, k), r, (a, b) in zip(z_test.tolist(), rel, z_hat.tolist(), strict=True)
    ]
    return UnitResult(
        metrics=metrics,
        rows=rows,
        timings=timings,
        artifacts={"n_points": int(grid.points.shape[0]), "extrapolation": extrapolation},
    )
