"""Experiments of the physics area.

``fem-poisson-convergence``: the reference FEM solver's convergence rates on a
manufactured solution; every later PDE result is measured against this solver.
One unit of work per (degree, mesh) solve; the combining step fits the rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sciprob.config import param
from sciprob.experiments import RunContext, UnitContext, UnitResult, experiment

#: bytes per stored double, and a generous fill-in factor of the sparse LU of a 2D Lagrange matrix
_DOUBLE = 8
_LU_FILL = 60


@dataclass(frozen=True)
class PoissonConvergenceConfig:
    """Mesh sequence and fit window of the convergence study."""

    levels: tuple[int, ...] = param((4, 8, 16, 32, 64), "cells per side of each mesh, increasing")
    degrees: tuple[int, ...] = param((1, 2), "Lagrange element degrees to study")
    fit_levels: int = param(3, "number of finest meshes the rates are fitted over")

    def __post_init__(self) -> None:
        if len(self.levels) < 2 or any(n < 2 for n in self.levels):
            raise ValueError(f"`levels` needs at least two meshes of >= 2 cells per side, got {self.levels}")
        if list(self.levels) != sorted(set(self.levels)):
            raise ValueError(f"`levels` must be strictly increasing, got {self.levels}")
        if not self.degrees or min(self.degrees) < 1 or len(set(self.degrees)) != len(self.degrees):
            raise ValueError(f"`degrees` must be distinct positive integers, got {self.degrees}")
        if not 2 <= self.fit_levels <= len(self.levels):
            raise ValueError(f"`fit_levels` must lie in [2, {len(self.levels)}], got {self.fit_levels}")

    def estimated_bytes(self) -> int:
        """Peak memory of the largest solve, an upper estimate in bytes.

        The ``(k n + 1)^2`` degrees of freedom of the finest mesh at the highest
        degree ``k``, times the nonzeros per row of the matrix and a sparse-LU
        fill-in factor that grows like ``log N`` (nested dissection in 2D).
        """
        n, k = max(self.levels), max(self.degrees)
        dofs = (k * n + 1) ** 2
        per_row = (2 * k + 1) ** 2
        return int(dofs * _DOUBLE * (per_row + _LU_FILL * math.log2(max(dofs, 2))))


def observed_rate(h: np.ndarray, error: np.ndarray) -> float:
    """Least-squares slope of ``log(error)`` against ``log(h)``.

    Parameters
    ----------
    h : ndarray of shape (levels,)
        Mesh sizes.
    error : ndarray of shape (levels,)
        Errors at those sizes (positive).

    Returns
    -------
    float
        The observed order ``p`` in ``error ~ C h^p``.
    """
    slope, _ = np.polyfit(np.log(h), np.log(error), 1)
    return float(slope)


def _suffix(degree: int) -> str:
    return "" if degree == 1 else f"_p{degree}"


def convergence_units(cfg: PoissonConvergenceConfig) -> list[dict]:
    """One unit per (degree, cells per side)."""
    return [{"degree": d, "n": n} for d in cfg.degrees for n in cfg.levels]


def combine_convergence(cfg: PoissonConvergenceConfig, results: list[UnitResult], ctx: RunContext) -> dict:
    """Fit the rates over the finest levels, tabulate and plot."""
    from matplotlib.figure import Figure

    by_key = {(r.key["degree"], r.key["n"]): r for r in results}
    metrics: dict[str, float] = {}
    rows = ["| degree | n | dofs | L2 error | H1 error | solve s |", "|---|---|---|---|---|---|"]
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    for degree in cfg.degrees:
        sols = [by_key[degree, n] for n in cfg.levels]
        h = np.array([s.metrics["h"] for s in sols])
        l2 = np.array([s.metrics["l2_error"] for s in sols])
        h1 = np.array([s.metrics["h1_error"] for s in sols])
        window = slice(-cfg.fit_levels, None)
        sfx = _suffix(degree)
        metrics[f"l2_rate{sfx}"] = observed_rate(h[window], l2[window])
        metrics[f"h1_rate{sfx}"] = observed_rate(h[window], h1[window])
        metrics[f"l2_error_finest{sfx}"] = float(l2[-1])
        metrics[f"h1_error_finest{sfx}"] = float(h1[-1])
        ctx.anchor(f"l2_rate{sfx}", degree + 1, f"a-priori estimate: L2 error = O(h^{degree + 1})")
        ctx.anchor(f"h1_rate{sfx}", degree, f"a-priori estimate: H1 seminorm error = O(h^{degree})")
        for n, s in zip(cfg.levels, sols, strict=True):
            seconds = s.timings["solve_seconds"]
            ctx.timings[f"solve_seconds/P{degree}/n={n}"] = seconds
            rows.append(
                f"| P{degree} | {n} | {int(s.metrics['n_dofs'])} | {s.metrics['l2_error']:.3e} "
                f"| {s.metrics['h1_error']:.3e} | {seconds:.4f} |"
            )
        ax.loglog(h, l2, "o-", label=f"P{degree} L2 (rate {metrics[f'l2_rate{sfx}']:.2f})")
        ax.loglog(h, h1, "s--", label=f"P{degree} H1 (rate {metrics[f'h1_rate{sfx}']:.2f})")
    ax.set_xlabel("mesh size h")
    ax.set_ylabel("error")
    ax.set_title("Poisson on the unit square, manufactured solution")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ctx.savefig(fig, "convergence.png", "Log-log convergence of the L2 and H1 errors against h.")
    ctx.table("Errors per mesh", "\n".join(rows))
    ctx.note(
        f"Rates are least-squares slopes over the {cfg.fit_levels} finest meshes. Solve times "
        "(assembly + LU) are in the timings, not the metrics, so that two runs with one seed "
        "give identical metrics."
    )
    return metrics


@experiment(
    "fem-poisson-convergence",
    config=PoissonConvergenceConfig,
    presets={
        "tiny": {"levels": (4, 8, 16), "degrees": (1,), "fit_levels": 2},
        "quick": {},
        "paper": {"levels": (4, 8, 16, 32, 64, 128, 256)},
    },
    paper="Finite element a-priori estimates (Ciarlet 1978; Brenner & Scott 2008, Thm 5.4.8)",
    summary="DOLFINx Pk solves of -Δu = f with u = sin(πx)sin(πy): L2 and H1 error rates.",
    units=convergence_units,
    combine=combine_convergence,
    devices=("cpu",),
)
def solve_unit(cfg: PoissonConvergenceConfig, unit: UnitContext) -> UnitResult:
    """One DOLFINx solve on the unit's mesh and degree."""
    from sciprob.physics.fem import solve_manufactured_poisson

    sol = solve_manufactured_poisson(unit.key["n"], unit.key["degree"])
    return UnitResult(
        metrics={"h": sol.h, "n_dofs": float(sol.n_dofs), "l2_error": sol.l2_error, "h1_error": sol.h1_error},
        timings={"solve_seconds": sol.solve_seconds},
    )
