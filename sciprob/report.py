"""Markdown reports: one per run (``report.md``) and one for a tour."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sciprob.experiments import ExperimentSpec, RunContext


def format_number(value: float) -> str:
    """Four significant digits, scientific notation for very small or large values."""
    if not math.isfinite(value):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def metrics_table(metrics: dict[str, float], anchors: dict[str, dict[str, Any]]) -> str:
    """Markdown table: metric | value | paper | ratio | source."""
    lines = ["| metric | this run | paper | this run / paper | source |", "|---|---|---|---|---|"]
    for key, value in metrics.items():
        anchor = anchors.get(key)
        if anchor is None:
            lines.append(f"| `{key}` | {format_number(value)} | | | |")
            continue
        ref = float(anchor["value"])
        ratio = format_number(value / ref) if ref != 0 else "-"
        lines.append(
            f"| `{key}` | {format_number(value)} | {format_number(ref)} | {ratio} | {anchor['source']} |"
        )
    missing = [k for k in anchors if k not in metrics]
    for key in missing:
        a = anchors[key]
        lines.append(f"| `{key}` | (not measured) | {format_number(float(a['value']))} | | {a['source']} |")
    return "\n".join(lines)


def render_report(spec: ExperimentSpec, ctx: RunContext, results: dict[str, Any]) -> str:
    """Render ``report.md`` for one run."""
    env = results["environment"]
    parts = [
        f"# {spec.name}",
        "",
        f"{spec.summary}",
        "",
        f"*Paper:* {spec.paper}  ",
        f"*Preset:* `{results['preset']}` · *seed:* {results['seed']} · *device:* {env['device']} · "
        f"*total time:* {results['timings'].get('total_seconds', float('nan')):.1f} s  ",
        f"*Versions:* python {env['python']}, torch {env.get('torch')}, pyro {env.get('pyro')}, "
        f"dolfinx {env.get('dolfinx')}, gymnasium {env.get('gymnasium')}; commit `{env.get('git_commit')}`",
        "",
        "## Metrics",
        "",
        metrics_table(results["metrics"], results["anchors"]),
        "",
    ]
    for title, table in ctx.tables:
        parts += [f"## {title}", "", table, ""]
    if ctx.notes:
        parts += ["## Notes", ""]
        for note in ctx.notes:
            parts += [note, ""]
    if ctx.figures:
        parts += ["## Figures", ""]
        for filename, caption in ctx.figures:
            parts += [f"![{caption or filename}]({filename})", ""]
            if caption:
                parts += [f"*{caption}*", ""]
    timings = {k: v for k, v in results["timings"].items()}
    if timings:
        parts += ["## Timings (seconds)", "", "| what | seconds |", "|---|---|"]
        parts += [f"| {k} | {v:.3f} |" for k, v in timings.items()]
        parts += [""]
    parts += ["## Configuration", "", "```json", json.dumps(results["config"], indent=2), "```", ""]
    return "\n".join(parts)


def render_tour(rows: list[dict[str, Any]]) -> str:
    """Render the tour's combined report from each run's results (or error)."""
    parts = ["# sciprob tour", "", "Every experiment's `quick` preset, run in one go.", ""]
    parts += ["| experiment | status | seconds | report |", "|---|---|---|---|"]
    for row in rows:
        link = f"[report]({Path(row['dir']).name}/report.md)" if row.get("ok") else ""
        status = "ok" if row.get("ok") else f"failed: {row.get('error', '')}"
        parts.append(f"| `{row['name']}` | {status} | {row.get('seconds', float('nan')):.1f} | {link} |")
    parts.append("")
    for row in rows:
        if not row.get("ok"):
            continue
        res = row["results"]
        parts += [f"## {row['name']}", "", metrics_table(res["metrics"], res["anchors"]), ""]
    return "\n".join(parts)
