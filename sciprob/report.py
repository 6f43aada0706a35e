"""Markdown reports: one per run (``report.md``) and one for a tour."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def format_number(value: float) -> str:
    """Four significant digits, scientific notation for very small or large values."""
    if not math.isfinite(value):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def metrics_table(
    metrics: dict[str, float], anchors: dict[str, dict[str, Any]], timings: dict[str, float] | None = None
) -> str:
    """Markdown table: metric | value | paper | ratio | source.

    An anchor whose key is not a metric is looked up in ``timings`` (speed-ups
    and times are measurements, stored apart from the metrics); its row is
    marked "(timing)". Anchors found in neither say "(not measured)".
    """
    timings = timings or {}
    lines = ["| metric | this run | paper | this run / paper | source |", "|---|---|---|---|---|"]

    def row(label: str, value: float, anchor: dict[str, Any] | None) -> str:
        if anchor is None:
            return f"| {label} | {format_number(value)} | | | |"
        ref = float(anchor["value"])
        ratio = format_number(value / ref) if ref != 0 else "-"
        return f"| {label} | {format_number(value)} | {format_number(ref)} | {ratio} | {anchor['source']} |"

    for key, value in metrics.items():
        lines.append(row(f"`{key}`", value, anchors.get(key)))
    for key, anchor in anchors.items():
        if key in metrics:
            continue
        if key in timings:
            lines.append(row(f"`{key}` (timing)", float(timings[key]), anchor))
        else:
            paper = format_number(float(anchor["value"]))
            lines.append(f"| `{key}` | (not measured) | {paper} | | {anchor['source']} |")
    return "\n".join(lines)


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 600 else f"{value / 60:.1f} min"


def render_report(results: dict[str, Any]) -> str:
    """Render ``report.md`` from the content of ``results.json`` alone.

    ``sciprob report RUN_DIR`` calls this on the stored file, so the report of
    a resumed or copied run is the same as the one written when it finished.
    """
    env = results["environment"]
    meta = results.get("report", {})
    timings = results.get("timings", {})
    invocations = results.get("invocations", [])
    compute = timings.get("compute_seconds", float("nan"))
    parts = [
        f"# {results['experiment']}",
        "",
        f"{meta.get('summary', '')}",
        "",
        f"*Paper:* {meta.get('paper', '')}  ",
        f"*Preset:* `{results['preset']}` · *seed:* {results['seed']} · *device:* {env['device']} · "
        f"*compute time:* {_seconds(compute)} (sum over {meta.get('units', 1)} units) · "
        f"*invocations:* {len(invocations)}  ",
        f"*Versions:* python {env['python']}, torch {env.get('torch')}, pyro {env.get('pyro')}, "
        f"dolfinx {env.get('dolfinx')}, gymnasium {env.get('gymnasium')}; commit `{env.get('git_commit')}`",
        "",
        "## Metrics",
        "",
        metrics_table(results["metrics"], results["anchors"], timings),
        "",
    ]
    for title, table in meta.get("tables", []):
        parts += [f"## {title}", "", table, ""]
    if meta.get("notes"):
        parts += ["## Notes", ""]
        for note in meta["notes"]:
            parts += [note, ""]
    if meta.get("figures"):
        parts += ["## Figures", ""]
        for filename, caption in meta["figures"]:
            parts += [f"![{caption or filename}]({filename})", ""]
            if caption:
                parts += [f"*{caption}*", ""]
    if timings:
        units = "Seconds, unless the name says otherwise (speed-ups, ratios, rates)."
        parts += ["## Timings", "", units, "", "| what | value |", "|---|---|"]
        parts += [f"| {k} | {format_number(float(v))} |" for k, v in timings.items()]
        parts += [""]
    if invocations:
        parts += [
            "## Invocations",
            "",
            "| started | command | executor | units run | units reused | wall time |",
            "|---|---|---|---|---|---|",
        ]
        for inv in invocations:
            command = " ".join(inv.get("argv") or []) or "(from Python)"
            wall = _seconds(inv.get("wall_seconds", 0.0))
            parts.append(
                f"| {inv.get('started')} | `{command}` | {inv.get('executor')} x{inv.get('workers')} | "
                f"{inv.get('units_run')} | {inv.get('units_reused')} | {wall} |"
            )
        parts += [""]
    parts += ["## Configuration", "", "```json", json.dumps(results["config"], indent=2), "```", ""]
    return "\n".join(parts)


def rebuild_report(run_dir: str | Path) -> Path:
    """Rewrite ``report.md`` (or a tour's ``tour.md``) from the folder's stored results.

    Raises
    ------
    FileNotFoundError
        If the folder holds neither ``results.json`` nor ``tour.json``.
    ValueError
        If the stored file cannot be read.
    """
    from sciprob.runtime.atomic import atomic_write_text

    run_dir = Path(run_dir)
    if (run_dir / "tour.json").is_file():
        rows = _read(run_dir / "tour.json")["rows"]
        for row in rows:
            if row.get("ok"):
                row["results"] = _read(run_dir / row["name"] / "results.json")
        return atomic_write_text(run_dir / "tour.md", render_tour(rows))
    if not (run_dir / "results.json").is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} holds no results.json (nor tour.json): not a finished run")
    return atomic_write_text(run_dir / "report.md", render_report(_read(run_dir / "results.json")))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(path)!r} cannot be read ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} is not a sciprob results file")
    return data


def render_tour(rows: list[dict[str, Any]]) -> str:
    """Render the tour's combined report from each run's results (or error)."""
    parts = ["# sciprob tour", "", "Every experiment's `quick` preset, run in one go.", ""]
    parts += ["| experiment | status | compute seconds | report |", "|---|---|---|---|"]
    for row in rows:
        link = f"[report]({Path(row['dir']).name}/report.md)" if row.get("ok") else ""
        status = "ok" if row.get("ok") else f"failed: {row.get('error', '')}"
        seconds = (
            row["results"]["timings"].get("compute_seconds", float("nan")) if row.get("ok") else float("nan")
        )
        parts.append(f"| `{row['name']}` | {status} | {seconds:.1f} | {link} |")
    parts.append("")
    for row in rows:
        if not row.get("ok"):
            continue
        res = row["results"]
        table = metrics_table(res["metrics"], res["anchors"], res.get("timings", {}))
        parts += [f"## {row['name']}", "", table, ""]
    return "\n".join(parts)
