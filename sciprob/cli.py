"""The ``sciprob`` command line: ``list``, ``show``, ``run``, ``report``, ``tour`` and ``exsum serve``.

User errors (unknown experiment, preset or ``--set`` key, a value of the wrong
type, a bad device) print one line starting with ``error:`` and exit with
status 2 before any work starts. Set ``SCIPROB_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from sciprob.config import ConfigError, parse_set_options

app = typer.Typer(
    name="sciprob",
    help="Probabilistic and scientific ML experiments that reproduce their papers.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _user_errors():
    """Exceptions shown as one line (unless SCIPROB_DEBUG is set)."""
    from sciprob.experiments import ExperimentError

    return (ExperimentError, ConfigError, ValueError, TypeError, FileNotFoundError, NotImplementedError)


@app.command("list")
def list_command() -> None:
    """List every experiment, its presets and its paper."""
    from sciprob.experiments import all_experiments

    for spec in all_experiments():
        presets = ", ".join(spec.presets)
        typer.echo(f"{spec.name}\n    presets: {presets}\n    paper:   {spec.paper}\n    {spec.summary}")


@app.command("show")
def show_command(name: Annotated[str, typer.Argument(help="Experiment name.")]) -> None:
    """Show an experiment's config keys (for --set), defaults, help and presets."""
    from sciprob.config import describe_config
    from sciprob.experiments import get_experiment

    try:
        spec = get_experiment(name)
    except _user_errors() as exc:
        _fail(str(exc))
    devices = " and ".join(spec.devices) + (" only" if len(spec.devices) == 1 else "")
    typer.echo(f"{spec.name}: {spec.summary}\npaper: {spec.paper}\nruns on: {devices}\n\nconfig keys:")
    for key, type_name, default, help_text in describe_config(spec.config):
        typer.echo(f"  {key} ({type_name}, default {default}): {help_text}")
    typer.echo("\npresets:")
    for preset, overrides in spec.presets.items():
        shown = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "(defaults)"
        typer.echo(f"  {preset}: {shown}")


@app.command("run")
def run_command(
    name: Annotated[str, typer.Argument(help="Experiment name (see `sciprob list`).")],
    preset: Annotated[str, typer.Option(help="Preset: quick or paper.")] = "quick",
    seed: Annotated[int, typer.Option(help="Run seed in [0, 2**32).")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    out: Annotated[str | None, typer.Option(help="Output folder (default runs/NAME-TIME).")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Config override key=value (repeatable).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Reuse the folder's finished units (same config, preset and seed).")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a run already in --out.")] = False,
    executor: Annotated[
        str | None, typer.Option(help="serial, processes or ray (default: processes when several units).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Parallel units (default: one per core).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --executor ray).")] = None,
) -> None:
    """Run one experiment and write results.json, report.md and figures."""
    from sciprob.engine.executors import UnitError
    from sciprob.experiments import run_experiment

    try:
        overrides = parse_set_options(set_ or [])
        result = run_experiment(
            name,
            preset=preset,
            seed=seed,
            device=device,
            out=out,
            overrides=overrides,
            resume=resume,
            overwrite=overwrite,
            executor=executor,
            workers=workers,
            address=address,
        )
    except _user_errors() as exc:
        if os.environ.get("SCIPROB_DEBUG"):
            raise
        _fail(str(exc).splitlines()[0])
    except (UnitError, ImportError, OSError, RuntimeError) as exc:
        if os.environ.get("SCIPROB_DEBUG"):
            raise
        _fail(f"{str(exc).splitlines()[0]} (set SCIPROB_DEBUG=1 for the traceback)", code=1)
    typer.echo(f"results: {result.out_dir / 'results.json'}\nreport:  {result.out_dir / 'report.md'}")


@app.command("report")
def report_command(run_dir: Annotated[Path, typer.Argument(help="A finished run (or tour) folder.")]) -> None:
    """Rebuild report.md (or a tour's tour.md) from the folder's results alone."""
    from sciprob.report import rebuild_report

    try:
        path = rebuild_report(run_dir)
    except _user_errors() as exc:
        _fail(str(exc))
    typer.echo(f"report:  {path}")


@app.command("tour")
def tour_command(
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/tour-TIME).")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated experiment names.")] = None,
    seed: Annotated[int, typer.Option(help="Run seed.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
    executor: Annotated[str | None, typer.Option(help="serial, processes or ray.")] = None,
    workers: Annotated[int | None, typer.Option(help="Parallel units per experiment.")] = None,
) -> None:
    """Run every experiment's quick preset and write one combined report."""
    from sciprob.catalog import CATALOG
    from sciprob.engine.run import default_out_dir
    from sciprob.experiments import prepare_run, run_experiment
    from sciprob.report import render_tour
    from sciprob.runtime.atomic import atomic_write_json, atomic_write_text
    from sciprob.runtime.device import resolve_device

    names = sorted(CATALOG) if only is None else [n.strip() for n in only.split(",") if n.strip()]
    try:
        resolve_device(device)
        for name in names:
            prepare_run(name, "quick")
    except _user_errors() as exc:
        _fail(str(exc))
    root = out or default_out_dir("tour")
    rows, stored = [], []
    for name in names:
        start = time.perf_counter()
        row = {"name": name, "dir": str(root / name)}
        try:
            result = run_experiment(
                name,
                preset="quick",
                seed=seed,
                device=device,
                out=root / name,
                overwrite=True,
                executor=executor,
                workers=workers,
            )
            row.update(ok=True, results=result.results)
        except Exception as exc:  # the tour goes on and reports the failure
            if os.environ.get("SCIPROB_DEBUG"):
                raise
            row.update(ok=False, error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            typer.echo(f"{name} failed: {row['error']}", err=True)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        stored.append({k: v for k, v in row.items() if k != "results"})
        atomic_write_json(root / "tour.json", {"seed": seed, "rows": stored})
    report = atomic_write_text(root / "tour.md", render_tour(rows))
    typer.echo(f"tour report: {report}")
    if not all(r["ok"] for r in rows):
        raise typer.Exit(1)


exsum_app = typer.Typer(help="ExSum explanation summaries: the browser GUI.", no_args_is_help=True)
app.add_typer(exsum_app, name="exsum")


@exsum_app.command("serve")
def exsum_serve_command(
    rules_file: Annotated[Path, typer.Argument(help="Rule file (JSON or TOML) saved with its FEU data.")],
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1.")] = 8000,
) -> None:
    """Serve the ExSum GUI for RULES_FILE on http://127.0.0.1:PORT until interrupted."""
    if not 0 < port < 65536:
        _fail(f"`--port` must lie in 1..65535, got {port}")
    if not rules_file.is_file():
        _fail(f"rule file {str(rules_file)!r} does not exist")
    from sciprob.theory.exsum.server import serve

    try:
        serve(rules_file, port=port)
    except (*_user_errors(), OSError) as exc:
        _fail(str(exc).splitlines()[0])


def main() -> None:
    """Entry point of the ``sciprob`` script."""
    app(prog_name="sciprob")


if __name__ == "__main__":
    main()
