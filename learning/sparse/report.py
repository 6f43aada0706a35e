"""The ``sparsity`` experiment's combining step: metrics, PPE, tables, figures and the survey's claims.

Every verdict is computed from the numbers of the run it reports on; none is
written in advance. Accuracies are test accuracies (fractions) averaged over
the run's seeds; latencies come from the run's latency units and are
measurements, so they go to ``timings`` (metrics must be identical for one seed).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from sciprob.learning.sparse.ppe import pruned_parameter_efficiency

GRADUAL = ("gmp", "movement", "lottery")
DYNAMIC = ("set", "rigl")
ONE_SHOT = ("magnitude",)


def _fmt(s: float) -> str:
    return f"{s:g}"


def accuracy_metric(model: str, method: str, sparsity: float) -> str:
    """Metric name ``accuracy/<model>/<method>/sparsity=<s>``."""
    return f"accuracy/{model}/{method}/sparsity={_fmt(sparsity)}"


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _accuracy_table(model: str, acc: dict, spread: dict, methods: list[str], grid: list[float]) -> str:
    head = "| method | " + " | ".join(f"s={_fmt(s)}" for s in grid) + " |"
    lines = [head, "|" + "---|" * (len(grid) + 1)]
    for method in methods:
        cells = []
        for s in grid:
            key = (model, method, s)
            if key in acc:
                sd = spread.get(key)
                cells.append(_pct(acc[key]) + (f" ± {100 * sd:.2f}" if sd is not None else ""))
            else:
                cells.append("")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot_accuracy(ctx, cfg, acc, models, methods) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        dense = acc.get((model, "dense", 0.0))
        for method in methods:
            pts = sorted((s, a) for (m, me, s), a in acc.items() if m == model and me == method)
            if pts:
                ax.plot([100 * s for s, _ in pts], [100 * a for _, a in pts], "o-", label=method, ms=3)
        if dense is not None:
            ax.axhline(100 * dense, color="k", ls="--", lw=1, label="dense")
            ax.axhline(100 * (dense - cfg.tolerance), color="grey", ls=":", lw=1, label="dense − tolerance")
        ax.set_xlabel("sparsity of the pruned layers (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{model} on digits")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    ctx.savefig(fig, "accuracy_sparsity.png", "Test accuracy against sparsity, mean over seeds, per method")
    plt.close(fig)


def _plot_latency(ctx, latency: dict[str, dict[str, float]]) -> None:
    import matplotlib.pyplot as plt

    if not latency:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, ratios in latency.items():
        for kind, style in (("masked", "o-"), ("csr", "s--")):
            pts = sorted((int(k.split("-")[1]), v) for k, v in ratios.items() if k.startswith(kind + "-"))
            if pts:
                ax.plot([p for p, _ in pts], [v for _, v in pts], style, label=f"{model} {kind}")
        for k, v in ratios.items():
            if k.startswith("structured-"):
                ax.plot([int(k.split("-")[1])], [v], "*", ms=12, label=f"{model} {k} (channels)")
    ax.axhline(1.0, color="k", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel("latency / dense latency")
    ax.set_title("CPU inference latency (median, interleaved)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.savefig(fig, "latency_sparsity.png", "Measured CPU latency over the dense model's; below 1 is faster")
    plt.close(fig)


def _claim_generalise(cfg, acc, models, methods, grid) -> list[str]:
    out = []
    for model in models:
        dense = acc.get((model, "dense", 0.0))
        if dense is None:
            continue
        best = {s: max((acc[(model, m, s)], m) for m in methods if (model, m, s) in acc) for s in grid
                if any((model, m, s) in acc for m in methods)}  # fmt: skip
        if not best:
            continue
        ok = [s for s in sorted(best) if best[s][0] >= dense - cfg.tolerance]
        broken = [s for s in sorted(best) if best[s][0] < dense - cfg.tolerance]
        top = max(best)
        if ok and broken and max(ok) < min(broken):
            verdict = (
                f"**holds**: the best method stays within {100 * cfg.tolerance:g} point of dense up to "
                f"s={_fmt(max(ok))} ({_pct(best[max(ok)][0])} % by {best[max(ok)][1]}) and falls below from "
                f"s={_fmt(min(broken))} ({_pct(best[min(broken)][0])} % by {best[min(broken)][1]})"
            )
        elif ok and broken:
            verdict = (
                f"**holds with a non-monotone edge**: within tolerance at s={', '.join(map(_fmt, ok))}, "
                f"below at s={', '.join(map(_fmt, broken))}"
            )
        elif ok:
            verdict = (
                f"**holds, no breaking point in this grid**: even at s={_fmt(top)} the best method "
                f"({best[top][1]}) reaches {_pct(best[top][0])} %"
            )
        else:
            verdict = (
                f"**does not hold here**: already at s={_fmt(min(best))} the best method reaches only "
                f"{_pct(best[min(best)][0])} %"
            )
        out.append(f"- {model} (dense {_pct(dense)} %): {verdict}.")
    return out


def _claim_gradual(acc, models, methods, grid) -> list[str]:
    out = []
    high = [s for s in grid if s >= 0.9]
    if not high or "magnitude" not in methods:
        return ["- not tested: needs the `magnitude` method and a sparsity of at least 0.9."]
    for model in models:
        for s in high:
            base = acc.get((model, "magnitude", s))
            if base is None:
                continue
            gradual = {m: acc[(model, m, s)] for m in GRADUAL if (model, m, s) in acc}
            dynamic = {m: acc[(model, m, s)] for m in DYNAMIC if (model, m, s) in acc}
            if not gradual and not dynamic:
                continue
            parts = ", ".join(f"{m} {_pct(a)}" for m, a in {**gradual, **dynamic}.items())
            g_win = bool(gradual) and max(gradual.values()) > base
            d_win = bool(dynamic) and max(dynamic.values()) > base
            families = [name for name, fam in (("gradual", gradual), ("dynamic", dynamic)) if fam]
            if all((g_win if f == "gradual" else d_win) for f in families):
                verdict = "holds"
            elif g_win or d_win:
                verdict = "holds in part (" + ("gradual" if g_win else "dynamic") + " only)"
            else:
                verdict = "does not hold"
            out.append(
                f"- {model}, s={_fmt(s)}: one-shot magnitude {_pct(base)} % vs {parts} % → **{verdict}**."
            )
    return out


def _claim_speed(latency: dict[str, dict[str, float]]) -> list[str]:
    out = []
    for model, ratios in latency.items():
        masked = {k: v for k, v in ratios.items() if k.startswith("masked-")}
        struct = {k: v for k, v in ratios.items() if k.startswith("structured-")}
        csr = {k: v for k, v in ratios.items() if k.startswith("csr-")}
        if not masked:
            continue
        best_key = min(masked, key=masked.get)
        best = masked[best_key]
        ideal = 1.0 - int(best_key.split("-")[1]) / 100
        listed = ", ".join(f"{k} {v:.2f}" for k, v in masked.items())
        if best >= 0.9:
            verdict = "**holds** (no masked model faster than 0.9× dense)"
        elif best >= 0.75:
            verdict = (f"**holds approximately**: the fastest, {best_key}, runs at {best:.2f}× dense, "
                       f"far from the {ideal:.2f}× its density would allow with sparse kernels")  # fmt: skip
        else:
            verdict = f"**does not hold**: {best_key} runs at {best:.2f}× dense"
        text = f"- {model}: masked latency ratios {listed} → {verdict}"
        if struct:
            text += "; dense kernels on fewer channels: " + ", ".join(
                f"{k} {v:.2f}" for k, v in struct.items()
            )
        if csr:
            text += "; CSR kernels on the linear layers: " + ", ".join(f"{k} {v:.2f}" for k, v in csr.items())
        out.append(text + ".")
    return out


def combine_sparsity(cfg: Any, results: list, ctx: Any) -> dict[str, float]:
    """Average the units over seeds, compute PPE, write tables, figures and the claims' verdicts.

    Returns
    -------
    dict of str to float
        ``accuracy/<model>/<method>/sparsity=<s>`` (mean test accuracy) and
        ``ppe/<model>/<method>`` (our PPE reconstruction, see
        :mod:`sciprob.learning.sparse.ppe`).
    """
    per_cell: dict[tuple, list[float]] = defaultdict(list)
    params: dict[tuple, list[int]] = defaultdict(list)
    latency: dict[str, dict[str, float]] = {}
    for r in results:
        for row in r.rows:
            key = (row["model"], row["method"], float(row["sparsity"]))
            per_cell[key].append(float(row["accuracy"]))
            params[key].append(int(row["params"]))
        for k, v in r.timings.items():
            if k.startswith(("latency_ratio/", "latency_ms/")):
                ctx.timings[k] = float(v)
                if k.startswith("latency_ratio/"):
                    _, model, variant = k.split("/")
                    latency.setdefault(model, {})[variant] = float(v)
        if "train_seconds" in r.timings:
            ctx.timings["train_seconds"] = ctx.timings.get("train_seconds", 0.0) + float(
                r.timings["train_seconds"]
            )
    acc = {k: statistics.fmean(v) for k, v in per_cell.items()}
    spread = {k: statistics.stdev(v) for k, v in per_cell.items() if len(v) > 1}
    metrics = {accuracy_metric(*k): v for k, v in sorted(acc.items())}
    models = [m for m in cfg.models if (m, "dense", 0.0) in acc]
    methods = [m for m in cfg.methods if any(k[1] == m for k in acc)]
    grid = sorted({float(s) for s in cfg.sparsities})

    ppe_rows = [
        "| model | method | PPE (compression within tolerance) | parameters kept |",
        "|---|---|---|---|",
    ]
    for model in models:
        dense = acc[(model, "dense", 0.0)]
        dense_params = statistics.fmean(params[(model, "dense", 0.0)])
        for method in methods:
            cells = {k[2]: v for k, v in acc.items() if k[0] == model and k[1] == method}
            if not cells:
                continue
            if method == "structured":
                # the channel ratio is not a weight sparsity: use the parameters really removed
                kept = statistics.fmean(params[(model, method, next(iter(cells)))]) / dense_params
                cells = {1.0 - kept: next(iter(cells.values()))}
            ppe = pruned_parameter_efficiency(cells, dense, cfg.tolerance)
            metrics[f"ppe/{model}/{method}"] = ppe
            kept_txt = ", ".join(f"{100 * (1 - s):.1f} %" for s in sorted(cells))
            ppe_rows.append(f"| {model} | {method} | {ppe:.2f}× | {kept_txt} |")

    for model in models:
        table_methods = ["dense"] + methods
        cols = sorted({0.0, *grid, *(k[2] for k in acc if k[0] == model)})
        ctx.table(
            f"Test accuracy (%) on digits, {model}", _accuracy_table(model, acc, spread, table_methods, cols)
        )
    ctx.table("Pruned parameter efficiency (our reconstruction; see docs/sparsity.md)", "\n".join(ppe_rows))
    if latency:
        variants = sorted({v for r in latency.values() for v in r})
        lines = ["| variant | " + " | ".join(latency) + " |", "|---|" + "---|" * len(latency)]
        for v in variants:
            lines.append(
                f"| {v} | " + " | ".join(f"{latency[m].get(v, float('nan')):.3f}" for m in latency) + " |"
            )
        ms = ", ".join(
            f"{m} {ctx.timings.get(f'latency_ms/{m}/dense', float('nan')):.3f} ms" for m in latency
        )
        ctx.table(
            f"CPU latency / dense latency (median; dense: {ms}); a measurement, in timings", "\n".join(lines)
        )

    _plot_accuracy(ctx, cfg, acc, models, ["dense"] + [m for m in methods if m not in ("structured", "nm")])
    _plot_latency(ctx, latency)

    notes = [f"**Survey claims checked on this run** ({len(results)} units, {cfg.seeds} seed(s), tolerance "
             f"{100 * cfg.tolerance:g} point; accuracies are means over seeds):"]  # fmt: skip
    notes.append("\n1. *Sparse networks generalise as well as dense ones, up to a point.*")
    notes += _claim_generalise(cfg, acc, models, [m for m in methods if m not in ("structured",)], grid)
    notes.append("\n2. *Gradual and dynamic methods beat one-shot pruning at high sparsity.*")
    notes += _claim_gradual(acc, models, methods, grid)
    notes.append(
        "\n3. *Masked sparsity gives no speed-up without sparse kernels* (latency / dense; < 1 is faster)."
    )
    notes += _claim_speed(latency) or ["- not tested: no latency units in this run."]
    for model in models:
        key = (model, "structured", float(cfg.channel_ratio))
        if key in acc:
            gap = acc[(model, "dense", 0.0)] - acc[key]
            within = "within" if gap <= cfg.tolerance else "not within"
            notes.append(
                f"\nStructured pruning of {_fmt(100 * cfg.channel_ratio)} % of the channels of the {model}, "
                f"after fine-tuning: {_pct(acc[key])} % vs dense {_pct(acc[(model, 'dense', 0.0)])} % "
                f"(dense minus structured: {100 * gap:+.2f} points, {within} {100 * cfg.tolerance:g} point)."
            )
    ctx.note("\n".join(notes))
    ctx.note(
        "PPE: the survey's formula was not found in any available text; `ppe/<model>/<method>` is our "
        "reconstruction, the largest compression 1/(1-s) among the tested sparsities whose accuracy stays "
        "within the tolerance of dense (1 = none does). Latency ratios are measurements (warm-up, "
        "interleaved repeats, median) and are stored under `timings`, not `metrics`."
    )
    return metrics
