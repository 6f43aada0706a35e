"""PDDLVM on 3D elastic shells: ``pddlvm-shell-3d``.

The paper's shell case (Vadeboncoeur et al., arXiv:2208.04856; the official
code's Bunny app) on the MacNeal-Harder obstacle-course shells, meshed with Gmsh
as solid Q2 bricks through the thickness (:mod:`sciprob.physics.fem.shells`):
Young's modulus along one axis through three Chebyshev coefficients,
``z ~ U(-2, 2)^3``, softplus + 1; the displacement in a reduced tensor-Chebyshev
basis (``basis_degree**3 x 3`` coordinates; the paper: 7^3 x 3 = 1029).

Units of work: one FEM validation per mesh of ``validation_meshes`` (the
benchmark's reference displacement at ``z = 0``) and one PDDLVM training on
``mesh``. The combining step reports the convergence table and passes the
training unit's metrics on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from sciprob.config import param
from sciprob.experiments import RunContext, UnitContext, UnitResult, experiment
from sciprob.physics.pddlvm_experiments import (
    COVERAGE_ANCHOR,
    LEVELS,
    PAPER,
    _nme,
    calibration_note,
    evaluate_forward,
)
from sciprob.physics.pddlvm_plots import plot_coverage, plot_elbo, plot_shell


@dataclass(frozen=True)
class ShellConfig:
    """Shell, meshes, networks, ELBO and training budget of a PDDLVM shell run."""

    shell: Literal["scordelis-lo", "hemisphere"] = param("scordelis-lo", "obstacle-course shell")
    mesh: int = param(6, "Q2 bricks per in-plane direction of the training mesh (one through the thickness)")
    validation_meshes: tuple[int, ...] = param((4, 8, 16), "meshes of the FEM convergence study, increasing")
    basis_degree: int = param(6, "Chebyshev polynomials per direction of u (paper: 7, i.e. 1029 coordinates)")
    hidden: tuple[int, ...] = param((256, 256, 256), "hidden widths of q(u|z) (paper: 3 x 2500)")
    inverse_hidden: tuple[int, ...] = param((256, 256, 256), "hidden widths of p(z|u)")
    residual: Literal["galerkin", "preconditioned"] = param(
        "galerkin",
        "observed residual: tested with the reduced basis (ReducedBasis.galerkin) or the paper's nodal one "
        "preconditioned by the mean stiffness",
    )
    epsilon_rel: float = param(
        1e-2,
        "residual noise epsilon: in reduced coordinates (galerkin; the reference solution's largest is 1) or "
        "relative to the largest reference displacement (preconditioned)",
    )
    steps: int = param(2000, "SVI steps")
    batch_size: int = param(32, "prior draws of z per step (paper: 1)")
    lr: float = param(1e-3, "initial Adam learning rate")
    lr_halve_every: int = param(500, "steps per halving of the learning rate (smooth per-step decay)")
    clip: float = param(5.0, "elementwise gradient clipping of ClippedAdam (paper: clipnorm 5)")
    n_test: int = param(50, "held-out parameter draws from the prior")
    n_calibration: int = param(20, "FEM solves (other prior draws) that calibrate the forward map's scale")
    checkpoint_every: int = param(500, "steps between checkpoints")
    dtype: Literal["float32", "float64"] = param(
        "float64", "training precision (thin-shell element forces cancel: float32 loses the residual)"
    )

    def __post_init__(self) -> None:
        checks = {
            "mesh": (self.mesh >= 1, "an integer >= 1"),
            "validation_meshes": (
                len(self.validation_meshes) >= 1
                and min(self.validation_meshes) >= 1
                and list(self.validation_meshes) == sorted(set(self.validation_meshes)),
                "increasing integers >= 1",
            ),
            "basis_degree": (self.basis_degree >= 2, "an integer >= 2"),
            "hidden": (len(self.hidden) > 0 and min(self.hidden) > 0, "positive widths"),
            "inverse_hidden": (
                len(self.inverse_hidden) > 0 and min(self.inverse_hidden) > 0,
                "positive widths",
            ),
            "epsilon_rel": (self.epsilon_rel > 0, "positive"),
            "steps": (self.steps >= 0, "an integer >= 0"),
            "batch_size": (self.batch_size >= 1, "an integer >= 1"),
            "lr": (self.lr > 0, "positive"),
            "lr_halve_every": (self.lr_halve_every >= 1, "an integer >= 1"),
            "clip": (self.clip > 0, "positive"),
            "n_test": (self.n_test >= 2, "an integer >= 2"),
            "n_calibration": (self.n_calibration >= 1, "an integer >= 1"),
            "checkpoint_every": (self.checkpoint_every >= 1, "an integer >= 1"),
        }
        for key, (ok, rule) in checks.items():
            if not ok:
                raise ValueError(f"`{key}` must be {rule}, got {getattr(self, key)!r}")
        m = 3 * self.basis_degree**3
        if m > self.n_dofs(self.mesh):
            raise ValueError(
                f"`basis_degree` = {self.basis_degree} gives {m} coordinates, more than the "
                f"{self.n_dofs(self.mesh)} dofs of `mesh` = {self.mesh}; lower it or refine the mesh"
            )

    @staticmethod
    def n_dofs(n: int) -> int:
        """Displacement dofs of the ``n x n x 1`` Q2 brick mesh."""
        return 3 * 3 * (2 * n + 1) ** 2

    def estimated_bytes(self) -> int:
        """Peak memory, an upper estimate in bytes.

        The dense basis, its pseudo-inverse, QR and Jacobian product
        (``n_dofs x m``, about 8 copies); the element matrices (81 x 81 per
        brick) and the residual's autograd tape per batch; the MUMPS LU of the
        finest validation mesh (3D fill-in, ``~ n_dofs^{4/3}`` per dof row);
        network weights and activations.
        """
        n_dofs = self.n_dofs(self.mesh)
        m = 3 * self.basis_degree**3
        cells = self.mesh**2
        basis = 8 * n_dofs * m
        elements = 81 * 81 * cells * 4 + 20 * self.batch_size * cells * 81
        fine = self.n_dofs(max(max(self.validation_meshes), self.mesh))
        lu = 40 * fine * fine ** (1 / 3) + 81 * 81 * max(self.validation_meshes) ** 2 * 30
        width = max(*self.hidden, *self.inverse_hidden)
        nets = 4 * (width * width * (len(self.hidden) + len(self.inverse_hidden)) + 2 * width * m)
        nets += 10 * max(self.batch_size, self.n_test) * (width + m)
        tests = 4 * (self.n_test + self.n_calibration) * n_dofs
        return int(8 * (basis + elements + lu + nets + tests))


def _make_shell(name: str, n: int, route: str = "affine"):
    from sciprob.physics.fem.shells import PinchedHemisphere, ScordelisLoRoof

    cls = ScordelisLoRoof if name == "scordelis-lo" else PinchedHemisphere
    return cls(n, route=route)


def shell_units(cfg: ShellConfig) -> list[dict]:
    """One FEM validation per mesh, then the training unit."""
    return [{"task": "validate", "mesh": n} for n in cfg.validation_meshes] + [
        {"task": "train", "mesh": cfg.mesh}
    ]


def _validate(cfg: ShellConfig, unit: UnitContext) -> UnitResult:
    """FEM at ``z = 0`` (the benchmark's modulus) on one mesh against the published reference."""
    start = time.perf_counter()
    problem = _make_shell(cfg.shell, int(unit.key["mesh"]), route="general")
    setup = time.perf_counter() - start
    start = time.perf_counter()
    u = problem.solve_fem(torch.zeros(problem.dim_z, dtype=torch.float64))
    solve = time.perf_counter() - start
    value = float(problem.quantity_of_interest(u[None])[0])
    row = {
        "mesh": int(unit.key["mesh"]),
        "dofs": problem.n_dofs,
        "value": value,
        "reference": problem.reference,
        "ratio": value / problem.reference,
    }
    return UnitResult(
        metrics={"fem_value": value, "fem_ratio": value / problem.reference},
        rows=[row],
        timings={"setup_seconds": setup, "solve_seconds": solve},
    )


def _galerkin_nme(discrete, basis, z: torch.Tensor, u_fem: torch.Tensor) -> float:
    """Mean NME of the Galerkin solutions (``g(c, z) = 0`` solved exactly) against the FEM ones.

    ``discrete`` holds the Galerkin residual, which is affine in ``c``: one dense
    ``m x m`` solve per parameter vector (float64, CPU).
    """
    zeros = torch.zeros(1, discrete.n_dofs, dtype=torch.float64)
    errors = []
    for k in range(z.shape[0]):
        zk = z[k : k + 1].double()
        A = discrete.jacobian_product(zeros, zk, basis.matrix.double())
        c = torch.linalg.solve(A, -discrete.residual(zeros, zk)[0])
        errors.append(_nme(u_fem[k : k + 1], basis.to_nodal(c[None]))[0].item())
    return float(np.mean(errors))


def _train(cfg: ShellConfig, unit: UnitContext) -> UnitResult:
    """Train the PDDLVM on the shell's residual; compare with DOLFINx on held-out prior draws."""
    import pyro
    from pyro.optim import ClippedAdam

    from sciprob.physics import PDDLVM, ReducedBasis
    from sciprob.ppl import train_svi

    dtype, device = getattr(torch, cfg.dtype), unit.device
    timings: dict[str, float] = {}
    start = time.perf_counter()
    problem = _make_shell(cfg.shell, cfg.mesh)
    if cfg.residual == "galerkin":
        # tested with the trial functions: the reduced Jacobian is ~ the identity for every z
        basis, discrete = ReducedBasis.galerkin(problem.discrete, cfg.basis_degree)
        epsilon = cfg.epsilon_rel
    else:
        # the paper's shell residual: preconditioned by the stiffness at the prior mean (Bunny app)
        discrete = problem.precondition()
        basis = ReducedBasis.chebyshev(discrete, cfg.basis_degree)
        z_ref = discrete.prior().mean[None].double()
        load = -discrete.residual(torch.zeros(1, discrete.n_dofs, dtype=torch.float64), z_ref)[0]
        load[discrete.operator.bc_dofs] = 0.0
        epsilon = cfg.epsilon_rel * float(load.abs().max())
    timings["setup_seconds"] = time.perf_counter() - start

    z_test = problem.prior().sample((cfg.n_test,))
    problem.solve_fem(z_test[0])  # warm-up: the first solve sets up MUMPS
    start = time.perf_counter()
    u_fem = problem.solve_fem(z_test)  # assembly + solve, one at a time, compiled forms
    fem_seconds = (time.perf_counter() - start) / cfg.n_test
    timings["fem_seconds_per_solve"] = fem_seconds
    floor = {}
    if cfg.residual == "galerkin":  # the exact zero of the observed residual: the floor of the forward map
        floor["forward_nme_galerkin"] = _galerkin_nme(discrete, basis, z_test[:5], u_fem[:5])

    discrete.to(device=device, dtype=dtype)
    basis.to(device=device, dtype=dtype)
    pyro.clear_param_store()
    model = PDDLVM(discrete, basis, epsilon=epsilon, hidden=cfg.hidden, inverse_hidden=cfg.inverse_hidden)
    model = model.to(device=device, dtype=dtype)
    z_dev, u_dev = z_test.to(device, dtype), u_fem.to(device, dtype)
    untrained = _nme(u_dev, model.forward(z_dev).mean).mean().item()
    best = _nme(u_dev, basis.to_nodal(basis.coordinates(u_dev))).mean().item()  # the basis' own error

    optimizer = ClippedAdam({"lr": cfg.lr, "lrd": 0.5 ** (1.0 / cfg.lr_halve_every), "clip_norm": cfg.clip})
    start = time.perf_counter()
    history = train_svi(
        model.model,
        model.guide,
        optimizer,
        steps=cfg.steps,
        model_kwargs={"batch_size": cfg.batch_size},
        jit=False,
        checkpoint_path=unit.checkpoint_path,
        checkpoint_every=cfg.checkpoint_every,
        resume=True,
        description=f"PDDLVM shell {unit.name}",
    )
    timings["train_seconds"] = time.perf_counter() - start
    forward, calibration, curves = evaluate_forward(model, problem, cfg.n_calibration, z_dev, u_dev, timings)
    inverse = model.inverse(u_dev)

    E_true = discrete.coefficients.z_map.kappa_field(z_dev)
    E_pred = discrete.coefficients.z_map.kappa_field(inverse.mean)
    metrics = {
        "forward_nme": _nme(u_dev, forward.mean).mean().item(),
        "inverse_nme": _nme(E_true, E_pred).mean().item(),
        **calibration,
        "forward_nme_untrained": untrained,
        "forward_nme_basis": best,
        **floor,
    }

    coords = discrete.dof_coordinates.cpu().double().numpy()[0::3]

    def nodes(t):
        return t[0].detach().cpu().double().numpy().reshape(-1, 3)

    unit.savefig(
        plot_shell(coords, nodes(u_fem), nodes(forward.mean), nodes(forward.stddev)),
        "shell.png",
        "Test case 0 on the FEM-deformed shell: FEM vertical displacement, PDDLVM predictive mean and σ.",
    )
    unit.savefig(
        plot_coverage(LEVELS, curves),
        "coverage.png",
        "Calibration of the forward Gaussian on the test set: fraction of FEM nodal values inside central "
        "intervals, before and after scaling the standard deviations on the calibration solves.",
    )
    unit.savefig(plot_elbo(history.losses), "elbo.png", "ELBO during training.")
    info = {
        "dofs": discrete.n_dofs,
        "cells": int(problem.msh.topology.index_map(3).size_local),
        "coordinates": basis.size,
        "epsilon": epsilon,
    }
    return UnitResult(
        metrics=metrics,
        timings=timings,
        artifacts={
            "losses": history.losses,
            "levels": LEVELS.tolist(),
            **{f"coverage ({label})": c.tolist() for label, c in curves.items()},
            **info,
        },
    )


def combine_shell(cfg: ShellConfig, results: list[UnitResult], ctx: RunContext) -> dict[str, float]:
    """Convergence table of the FEM, the training unit's metrics and timings, notes."""
    *validation, train = results
    rows = [r.rows[0] for r in validation]
    finest = rows[-1]
    reference = finest["reference"]
    table = ["| mesh | dofs | FEM value | reference | ratio |", "|---|---|---|---|---|"]
    table += [
        f"| {r['mesh']} | {r['dofs']} | {r['value']:.5f} | {reference} | {r['ratio']:.4f} |" for r in rows
    ]
    ctx.table("FEM convergence at z = 0 (solid Q2 bricks, one through the thickness)", "\n".join(table))
    a = train.artifacts
    ctx.table(
        "Training problem",
        "\n".join(
            [
                "| quantity | value |",
                "|---|---|",
                f"| shell | {cfg.shell} |",
                f"| Q2 bricks | {a['cells']} |",
                f"| displacement dofs | {a['dofs']} |",
                f"| reduced coordinates of u | {a['coordinates']} |",
                f"| epsilon | {a['epsilon']:.3e} |",
                f"| FEM seconds per solve | {train.timings['fem_seconds_per_solve']:.3e} |",
                f"| model seconds per solution | {train.timings['model_seconds_per_solution']:.3e} |",
                f"| forward NME of the basis itself | {train.metrics['forward_nme_basis']:.3e} |",
                *[
                    f"| forward NME of the exact Galerkin solution | {v:.3e} |"
                    for v in [train.metrics.get("forward_nme_galerkin")]
                    if v is not None
                ],
            ]
        ),
    )
    ctx.timings.update(train.timings)
    error = abs(finest["value"] - reference) / reference
    ctx.note(
        f"FEM validation: on the finest mesh ({finest['mesh']}, {finest['dofs']} dofs) the displacement is "
        f"{finest['value']:.5f} against the thin-shell reference {reference} "
        f"(`fem_reference_error` = {error:.3g}). "
        "Solid bricks converge to the 3D-elasticity solution of the same geometry, which includes transverse "
        "shear and thickness-stretch deformation that the shell theories behind the references neglect, so "
        "a difference of a fraction of a percent (Scordelis-Lo, R/t = 100) to a few percent on coarse meshes "
        "of the thinner hemisphere (R/t = 250, where Q2 bricks are also stiffened by membrane locking until "
        "the mesh is fine) remains."
    )
    ctx.note(
        "Representation of u: tensor Chebyshev polynomials on the bounding box, one copy per component. "
        + (
            "Residual (`residual=galerkin`, our change): the span is restricted to functions that vanish at "
            "the clamped dofs, made orthonormal in the energy of the mean stiffness, and the residual is "
            "tested with the same functions (a Galerkin reduced-order residual), so its Jacobian in the "
            "reduced coordinates stays within the modulus ratio of the identity for every z. The paper's "
            "shell residual (`residual=preconditioned`: the nodal residual preconditioned by the inverse "
            "mean stiffness, Bunny app) is ill conditioned in these coordinates away from the mean and "
            "stalls training (docs/pddlvm.md gives the measured comparison)."
            if cfg.residual == "galerkin"
            else "Residual (`residual=preconditioned`, as the paper's Bunny app): the nodal residual "
            "preconditioned by the inverse stiffness at the prior mean; the basis is re-orthonormalised with "
            "its Jacobian there."
        )
        + " Young's modulus is DG0 (cell midpoints), mirrored at mid-span by the quarter model's symmetry. "
        "`forward_nme_basis` is the error of projecting the FEM solutions on the basis (least squares), "
        "`forward_nme_galerkin` that of the exact zero of the Galerkin residual (5 test cases): the floor "
        "the forward map can reach with this residual. `speedup` = DOLFINx seconds per solve (assembly + "
        "MUMPS LU, one at a time) over model seconds per solution (the mean nodal solution: network mean and "
        'basis product, the paper\'s "NN map + einsum"; whole test set in one batch, same process and '
        "device); `speedup_distribution` times the nodal standard deviations too. Both are timings."
    )
    ctx.note(calibration_note(train.metrics))
    t = train.timings
    ctx.note(
        f"Speed-up: `speedup` = {t['speedup']:.0f} (DOLFINx {t['fem_seconds_per_solve']:.3g} s per solve, "
        f"the forward map {t['model_seconds_per_solution']:.3g} s per mean solution, {cfg.dtype}"
        + (
            f"; with the standard deviations {t['model_seconds_per_distribution']:.3g} s, "
            f"`speedup_distribution` = {t['speedup_distribution']:.0f}"
            if "speedup_distribution" in t
            else ""
        )
        + "). The paper "
        "reports up to three orders of magnitude on shells; issue #20 asks for >= 1000 on the paper preset "
        "on CPU: " + ("holds." if t["speedup"] >= 1000 else "**does not hold** in this run.")
    )
    ctx.anchor("fem_reference_error", 0.05, "issue 20 acceptance: within 5 % of MacNeal & Harder (1985)")
    return {**train.metrics, "fem_reference_error": error}


@experiment(
    "pddlvm-shell-3d",
    config=ShellConfig,
    presets={
        "tiny": {
            "mesh": 3,
            "validation_meshes": (2, 3),
            "basis_degree": 3,
            "hidden": (16, 16),
            "inverse_hidden": (16, 16),
            "steps": 30,
            "batch_size": 4,
            "n_test": 3,
            "n_calibration": 3,
        },
        "quick": {
            "mesh": 6,
            "validation_meshes": (4, 8, 16),
            "basis_degree": 5,
            "steps": 1500,
            "lr_halve_every": 400,
            "n_test": 50,
        },
        "paper": {
            "mesh": 24,
            "validation_meshes": (8, 16, 24, 32),
            "basis_degree": 7,
            "hidden": (1024, 1024, 1024),
            "inverse_hidden": (1024, 1024, 1024),
            "steps": 8000,
            "lr_halve_every": 2000,
            "n_test": 100,
        },
    },
    paper=PAPER + " (shell case; MacNeal & Harder 1985 obstacle course)",
    summary="3D elastic shells (Scordelis-Lo, pinched hemisphere) as solid bricks: PDDLVM maps, FEM check.",
    anchors={
        "fem_reference_error": (0.05, "issue 20 acceptance (reference 0.3024, MacNeal & Harder 1985)"),
        "forward_coverage_95": COVERAGE_ANCHOR,
    },
    units=shell_units,
    combine=combine_shell,
)
def run_shell(cfg: ShellConfig, unit: UnitContext) -> UnitResult:
    """Run one unit: a FEM validation mesh or the PDDLVM training."""
    if unit.key["task"] == "validate":
        return _validate(cfg, unit)
    return _train(cfg, unit)
