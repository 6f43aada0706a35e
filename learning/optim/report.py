"""Figures, tables and the claim-by-claim verdict of the ``update-rules`` experiment.

All inputs are the per-run summaries ``done[(problem, optimizer, rule)]``
that the combine step of :mod:`sciprob.learning.optim.experiments` collects
from the units; every number in
the text is computed from them.
"""

from __future__ import annotations

import numpy as np

from sciprob.learning.optim.rules import RULES

_COLORS = {"additive": "tab:blue", "multiplicative": "tab:red", "hybrid": "tab:green"}


def _subplots(nrows: int, ncols: int, **kwargs):
    """Return a new :class:`matplotlib.figure.Figure` and its axes grid (no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=kwargs.pop("figsize"), layout=kwargs.pop("layout", None))
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def loss_curve_figure(done: dict, problems: list[str], optimizers: tuple[str, ...]):
    """Loss against steps, one panel per (problem, optimizer), one line per rule."""
    fig, axes = _subplots(
        len(problems), len(optimizers), figsize=(3.2 * len(optimizers), 2.4 * len(problems))
    )
    for i, problem in enumerate(problems):
        for j, opt in enumerate(optimizers):
            ax = axes[i, j]
            target = None
            for rule in RULES:
                out = done.get((problem, opt, rule))
                if out is None:
                    continue
                curve = np.clip(np.asarray(out["curve"], dtype=float), 1e-12, 1e12)
                x = np.arange(len(curve)) * out.get("steps_per_epoch", 1)
                label = rule if "best_lr" not in out else f"{rule} (lr {out['best_lr']:g})"
                ax.plot(x, curve, color=_COLORS[rule], label=label, lw=1.2)
                target = out["target"]
            if target is not None:
                ax.axhline(max(target, 1e-12), color="k", ls="--", lw=0.8)
            ax.set_yscale("log")
            ax.set_title(f"{problem} / {opt}", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6)
            if i == len(problems) - 1:
                ax.set_xlabel("step", fontsize=8)
    fig.tight_layout()
    return fig


def robustness_figure(done: dict, problem: str, optimizers: tuple[str, ...], lrs, scales):
    """Heat-maps of the fraction of starts reaching the target, rows optimizers, columns rules."""
    fig, axes = _subplots(
        len(optimizers),
        len(RULES),
        figsize=(3.0 * len(RULES) + 1.0, 2.8 * len(optimizers)),
        layout="constrained",
    )
    image = None
    for i, opt in enumerate(optimizers):
        for j, rule in enumerate(RULES):
            ax = axes[i, j]
            heat = np.asarray(done[(problem, opt, rule)]["heat"])  # (n_lr, n_scales)
            image = ax.imshow(heat, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
            for (a, b), value in np.ndenumerate(heat):
                ax.text(
                    b,
                    a,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="w" if value < 0.6 else "k",
                )
            ax.set_xticks(range(len(scales)), [f"{s:g}" for s in scales], fontsize=7)
            ax.set_yticks(range(len(lrs)), [f"{lr:g}" for lr in lrs], fontsize=7)
            ax.set_title(f"{opt} / {rule}", fontsize=9)
            if j == 0:
                ax.set_ylabel("learning rate", fontsize=8)
            if i == len(optimizers) - 1:
                ax.set_xlabel("init scale", fontsize=8)
    fig.suptitle(f"{problem}: fraction reaching the target", fontsize=10)
    fig.colorbar(image, ax=axes, shrink=0.6)
    return fig


def tables(done: dict, units: list[tuple[str, str, str]], cfg) -> list[tuple[str, str]]:
    """Markdown tables: toy problems (steps, final loss, robustness) and the digits CNN."""
    out = []
    rows = [
        "| problem | optimizer | " + " | ".join(f"{r}: steps (lr) / final / robust" for r in RULES) + " |",
        "|---|---|" + "---|" * len(RULES),
    ]
    keys = sorted(
        {(p, o) for p, o, _ in units if (p, o, "additive") in done and "heat" in done[p, o, "additive"]},
        key=lambda k: [u[:2] for u in units].index(k),
    )
    for problem, opt in keys:
        cells = []
        for rule in RULES:
            r = done[problem, opt, rule]
            steps = f"{r['steps_to_target']:.0f}" if r["steps_to_target"] < r["budget"] else "never"
            cells.append(f"{steps} ({r['best_lr']:g}) / {r['final_loss']:.3g} / {r['reached']:.2f}")
        rows.append(f"| {problem} | {opt} | " + " | ".join(cells) + " |")
    if len(rows) > 2:
        out.append(
            (
                f"Toy problems: median steps to the target at the best "
                f"learning rate (init scale {cfg.default_scale:g}), "
                "median final loss there, and the fraction of the whole "
                "lr x scale x start grid reaching the target",
                "\n".join(rows),
            )
        )
    if any(p == "digits" for p, _, _ in units):
        rows = [
            "| optimizer | rule | steps to target | final train loss | test acc (clean labels) | "
            f"test acc ({cfg.label_noise:.0%} noisy labels) |",
            "|---|---|---|---|---|---|",
        ]
        for opt in cfg.optimizers:
            for rule in RULES:
                clean, noisy = done[("digits", opt, rule)], done[("digits_noisy", opt, rule)]
                steps = (
                    f"{clean['steps_to_target']:.0f}"
                    if clean["steps_to_target"] < clean["budget"]
                    else "never"
                )
                rows.append(
                    f"| {opt} | {rule} | {steps} | {clean['final_loss']:.3f} | {clean['accuracy']:.3f} | "
                    f"{noisy['accuracy']:.3f} |"
                )
        out.append(("Digits CNN", "\n".join(rows)))
    return out


def _verdict(wins: int, losses: int, n: int) -> str:
    if n == 0:
        return "not measured"
    if wins > n / 2:
        return "supported"
    if losses > n / 2:
        return "not supported"
    return "mixed (neither wins a majority)"


def _compare(pairs: list[tuple[float, float]], better_low: bool, tol: float = 0.0) -> tuple[int, int, int]:
    wins = sum((a < b - tol) if better_low else (a > b + tol) for a, b in pairs)
    losses = sum((a > b + tol) if better_low else (a < b - tol) for a, b in pairs)
    return wins, losses, len(pairs) - wins - losses


def claim_summary(done: dict, units: list[tuple[str, str, str]]) -> list[str]:
    """One paragraph per claim of the abstract, with the measured numbers and a verdict.

    Parameters
    ----------
    done : dict
        Per-run summaries keyed by ``(problem, optimizer, rule)``.
    units : list of tuple
        The runs of this configuration.

    Returns
    -------
    list of str
        Markdown paragraphs.
    """
    cases = sorted(
        {(p, o) for p, o, _ in units if p != "digits_noisy"}, key=lambda k: [u[:2] for u in units].index(k)
    )
    paragraphs = [
        "The paper gives no numeric tables or per-experiment rates (see the references file), so the claims "
        "are checked qualitatively: each rule against the additive rule of the same optimizer, on the same "
        "starts, each at its best learning rate of the grid (toys) or at fixed hand-set rates (CNN)."
    ]
    for rule in ("multiplicative", "hybrid"):
        pairs, ratios = [], []
        for problem, opt in cases:
            a, b = done[problem, opt, rule], done[problem, opt, "additive"]
            if a["steps_to_target"] >= a["budget"] and b["steps_to_target"] >= b["budget"]:
                continue  # neither reached the target: no speed comparison
            pairs.append((a["steps_to_target"], b["steps_to_target"]))
            if a["steps_to_target"] < a["budget"] and b["steps_to_target"] < b["budget"]:
                ratios.append(max(a["steps_to_target"], 1) / max(b["steps_to_target"], 1))
        wins, losses, ties = _compare(pairs, better_low=True)
        ratio = (
            f"median step ratio {rule}/additive {np.median(ratios):.2f} "
            f"over the {len(ratios)} cases both reached"
            if ratios
            else "no case where both reached the target"
        )
        paragraphs.append(
            f"**Claim 1, faster training ({rule}): {_verdict(wins, losses, len(pairs))}.** Of {len(pairs)} "
            f"(problem, optimizer) cases where at least one rule reached "
            f"the target, the {rule} rule needed fewer "
            f"steps in {wins}, more in {losses}, as many in {ties}; {ratio}."
        )
    for rule in ("multiplicative", "hybrid"):
        rob = [
            (done[p, o, rule]["reached"], done[p, o, "additive"]["reached"])
            for p, o in cases
            if "heat" in done[p, o, "additive"]
        ]
        acc = [
            (done["digits_noisy", o, rule]["accuracy"], done["digits_noisy", o, "additive"]["accuracy"])
            for p, o in cases
            if p == "digits"
        ]
        text = f"**Claim 2, more robust models ({rule}):** "
        if rob:
            wins, losses, ties = _compare(rob, better_low=False, tol=1e-9)
            text += (
                f"learning-rate/initialisation robustness {_verdict(wins, losses, len(rob))}: "
                f"the {rule} rule "
                f"reached the target on a larger fraction of the grid "
                f"in {wins} of {len(rob)} cases, a smaller one "
                f"in {losses} (mean fraction {np.mean([a for a, _ in rob]):.2f} vs additive "
                f"{np.mean([b for _, b in rob]):.2f}). "
            )
        if acc:
            wins, losses, ties = _compare(acc, better_low=False, tol=0.005)
            text += (
                f"Label-noise robustness {_verdict(wins, losses, len(acc))}: "
                f"clean test accuracy after training on "
                f"noisy labels was higher (by > 0.5 points) for {wins} "
                f"of {len(acc)} optimizers, lower for {losses} "
                f"(mean {np.mean([a for a, _ in acc]):.3f} vs additive {np.mean([b for _, b in acc]):.3f})."
            )
        paragraphs.append(text)
    paragraphs.append(
        "Reading the toys: Rastrigin and Ackley have their minimum "
        "at the origin, the point every multiplicative "
        "update shrinks towards, which favours that rule there; "
        "conversely a purely multiplicative rule can never "
        "reach an optimum whose coordinates have the opposite sign "
        "of the start (the convex optima, Rosenbrock's "
        "(1, ..., 1) from negative starts), because it never changes "
        "a weight's sign. That is what the hybrid's "
        "additive term is for."
    )
    return paragraphs
