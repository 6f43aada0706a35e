"""Experiments of the physics area.

``fem-poisson-convergence``: the reference FEM solver's convergence rates on a
manufactured solution; every later PDE result is measured against this solver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sciprob.config import param
from sciprob.experiments import RunContext, experiment


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
        if not self.degrees or any(d < 1 for d in self.degrees):
            raise ValueError(f"`degrees` must be positive integers, got {self.degrees}")
        if not 2 <= self.fit_levels <= len(self.levels):
            raise ValueError(f"`fit_levels` must lie in [2, {len(self.levels)}], got {self.fit_levels}")


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


@experiment(
    "fem-poisson-convergence",
    config=PoissonConvergenceConfig,
    presets={"quick": {}, "paper": {"levels": (4, 8, 16, 32, 64, 128, 256)}},
    paper="Finite element a-priori estimates (Ciarlet 1978; Brenner & Scott 2008, Thm 5.4.8)",
    summary="DOLFINx Pk solves of -Δu = f with u = sin(πx)sin(πy): L2 and H1 error rates.",
)
def run(cfg: PoissonConvergenceConfig, ctx: RunContext) -> dict[str, float]:
    """Solve on each mesh and degree, fit the rates over the finest levels, plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sciprob.physics.fem import solve_manufactured_poisson
    from sciprob.runtime import ProgressBar

    solutions = {}
    with ProgressBar(len(cfg.levels) * len(cfg.degrees), "FEM solves") as bar:
        for degree in cfg.degrees:
            for n in cfg.levels:
                sol = solve_manufactured_poisson(n, degree)
                solutions[degree, n] = sol
                ctx.timings[f"solve_seconds/P{degree}/n={n}"] = sol.solve_seconds
                bar.update(P=degree, n=n, l2=sol.l2_error)

    metrics: dict[str, float] = {}
    rows = ["| degree | n | dofs | L2 error | H1 error | solve s |", "|---|---|---|---|---|---|"]
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for degree in cfg.degrees:
        sols = [solutions[degree, n] for n in cfg.levels]
        h = np.array([s.h for s in sols])
        l2 = np.array([s.l2_error for s in sols])
        h1 = np.array([s.h1_error for s in sols])
        window = slice(-cfg.fit_levels, None)
        sfx = _suffix(degree)
        metrics[f"l2_rate{sfx}"] = observed_rate(h[window], l2[window])
        metrics[f"h1_rate{sfx}"] = observed_rate(h[window], h1[window])
        metrics[f"l2_error_finest{sfx}"] = float(l2[-1])
        metrics[f"h1_error_finest{sfx}"] = float(h1[-1])
        ctx.anchor(f"l2_rate{sfx}", degree + 1, f"a-priori estimate: L2 error = O(h^{degree + 1})")
        ctx.anchor(f"h1_rate{sfx}", degree, f"a-priori estimate: H1 seminorm error = O(h^{degree})")
        for s in sols:
            rows.append(
                f"| P{degree} | {s.n} | {s.n_dofs} | {s.l2_error:.3e} | {s.h1_error:.3e} "
                f"| {s.solve_seconds:.4f} |"
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
