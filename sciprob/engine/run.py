"""``run_experiment``: resolve the request, run the missing units, combine, write the folder.

Order of events (every user error surfaces in steps 1–2, before any work):

1. resolve experiment, preset, ``--set`` overrides, seed, device, executor and
   output folder; check the config's memory estimate against the machine;
2. open the run folder: a fresh folder, ``--resume`` of a folder made with the
   same experiment, preset, seed and config, or ``--overwrite``;
3. list the units, reuse the stored ones whose hash matches, run the rest
   (each stored as soon as it finishes);
4. combine, then write ``results.json`` and ``report.md`` (rebuilt from it).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sciprob.config import ConfigError, config_to_dict
from sciprob.engine.executors import EXECUTORS, UnitTask, available_cores, execute
from sciprob.engine.keys import seed_of, unit_hash, unit_seed_sequence
from sciprob.engine.store import RunFolder, check_out_dir, latest_run_dir, manifest_of
from sciprob.runtime.atomic import _jsonable, atomic_write_json, atomic_write_text
from sciprob.runtime.progress import ProgressBar, get_logger

#: Run seeds are 32-bit so that every library's seeding accepts them unchanged.
MAX_RUN_SEED = 2**32 - 1


def default_out_dir(name: str, root: Path | str = "runs") -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` (a suffix is added if it exists)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def check_seed(seed: Any) -> int:
    """Return the run seed or raise :class:`ConfigError` naming it (``[0, 2**32)``)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_RUN_SEED:
        raise ConfigError(f"`--seed` must be an integer in [0, 2**32), got {seed!r}")
    return seed


def available_memory_bytes() -> int:
    """Memory the machine can still give (``MemAvailable``; physical memory if unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(name: str, cfg: Any) -> None:
    """Refuse a config whose ``estimated_bytes()`` exceeds the available memory.

    Raises
    ------
    ConfigError
        Naming the estimate and what is available.
    """
    estimate = getattr(cfg, "estimated_bytes", None)
    if estimate is None:
        return
    need, have = int(estimate()), available_memory_bytes()
    if need > have:
        raise ConfigError(
            f"config of {name!r} needs about {need / 2**30:.1f} GiB but {have / 2**30:.1f} GiB is available; "
            "choose smaller sizes"
        )


def resolve_executor(executor: str | None, workers: int | None, n_units: int) -> tuple[str, int]:
    """Default: ``processes`` with one worker per core when there are several units, else serial.

    Raises
    ------
    ConfigError
        Unknown executor or ``workers < 1``.
    """
    if executor is not None and executor not in EXECUTORS:
        raise ConfigError(f"`--executor` must be one of {list(EXECUTORS)}, got {executor!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"`--workers` must be a positive integer, got {workers!r}")
    cores = available_cores()
    if executor is None:
        executor = "processes" if n_units > 1 and cores > 1 else "serial"
    if workers is None:
        workers = 1 if executor == "serial" else min(cores, max(1, n_units))
    return executor, workers


def _resolve_device(spec: Any, device: str) -> Any:
    """Return the torch device to use: ``auto`` falls back to what the experiment supports."""
    from sciprob.runtime.device import resolve_device

    wanted = str(device).split(":")[0]
    if device != "auto" and wanted in ("cpu", "cuda") and wanted not in spec.devices:
        raise ConfigError(
            f"experiment {spec.name!r} runs on {' and '.join(spec.devices)} only; got `--device {device}`"
        )
    torch_device = resolve_device(device)
    if torch_device.type not in spec.devices:
        import torch

        return torch.device(spec.devices[0])
    return torch_device


def run_experiment(
    name: str,
    *,
    preset: str = "quick",
    seed: int = 0,
    device: str = "auto",
    out: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    executor: str | None = None,
    workers: int | None = None,
    address: str | None = None,
):
    """Run experiment ``name`` and write its results, report and figures.

    Parameters
    ----------
    name : str
        Registered experiment.
    preset : str, default="quick"
        Preset to start from.
    seed : int, default=0
        Run seed in ``[0, 2**32)``; each unit's seed derives from it and the unit's key.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Compute device; ``auto`` picks CUDA when present and the experiment supports it.
    out : path, default=None
        Output folder; default ``runs/<name>-<timestamp>`` (with ``resume``, the
        newest run folder of ``name`` made with ``preset``).
    overrides : mapping, default=None
        ``--set`` overrides (dotted keys to strings or values).
    resume : bool, default=False
        Reuse the folder's finished units and run the rest (the folder must have
        been made with the same experiment, preset, seed and config).
    overwrite : bool, default=False
        Replace a run already in ``out``.
    executor : {"serial", "processes", "ray"}, default=None
        Where units run; default ``processes`` when there are several units.
    workers : int, default=None
        Parallel units; default one per core (at most the number of units).
    address : str, default=None
        Address of an existing Ray cluster (``executor="ray"``); default a local Ray.

    Returns
    -------
    sciprob.experiments.RunResult

    Raises
    ------
    ExperimentError, ConfigError, RunFolderError, ValueError
        For a bad request, all before any work starts.
    UnitError
        If a unit fails (finished units stay stored for ``--resume``).
    """
    from sciprob.experiments import RunContext, RunResult, environment_info, prepare_run
    from sciprob.report import render_report

    spec, cfg = prepare_run(name, preset, overrides)
    seed = check_seed(seed)
    torch_device = _resolve_device(spec, device)
    check_memory(name, cfg)
    if resume and overwrite:
        raise ConfigError("`--resume` and `--overwrite` exclude each other; choose one")
    keys = spec.unit_keys(cfg)
    executor, workers = resolve_executor(executor, workers, len(keys))
    if out is None:
        out_dir = (latest_run_dir(name, preset) if resume else None) or default_out_dir(name)
    else:
        out_dir = check_out_dir(out)
    config = json.loads(json.dumps(_jsonable(config_to_dict(cfg))))  # as stored: lists, not tuples
    folder = RunFolder(out_dir, manifest_of(name, preset, seed, config))
    folder.open(resume=resume, overwrite=overwrite)
    log = get_logger(name)

    digests = [unit_hash(name, config, seed, key) for key in keys]
    seeds = [seed_of(unit_seed_sequence(seed, key)) for key in keys]
    if len(set(seeds)) != len(seeds):  # 64-bit collision: astronomically rare, but never silent
        raise RuntimeError(f"two units of {name!r} drew the same seed; change --seed")
    records: dict[str, dict[str, Any]] = {}
    for digest, key in zip(digests, keys, strict=True):
        record = folder.load_unit(digest, key) if resume else None
        if record is not None:
            records[digest] = record
    tasks = [
        UnitTask(
            experiment=name,
            module=spec.func.__module__,
            preset=preset,
            config=cfg,
            key=key,
            digest=digest,
            seed=unit_seed,
            device=str(torch_device),
            out_dir=str(out_dir),
            unit_dir=str(folder.unit_dir(digest)),
        )
        for digest, key, unit_seed in zip(digests, keys, seeds, strict=True)
        if digest not in records
    ]
    log.info(
        "running %s (preset %s, seed %d, device %s): %d units, %d reused, executor %s x%d -> %s",
        name,
        preset,
        seed,
        torch_device,
        len(keys),
        len(records),
        executor,
        workers,
        out_dir,
    )
    invocation = {
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
        "argv": list(sys.argv[1:]) if Path(sys.argv[0]).name in ("sciprob", "__main__.py") else [],
        "executor": executor,
        "workers": workers,
        "units_run": len(tasks),
        "units_reused": len(records),
    }
    start = time.perf_counter()
    with ProgressBar(len(keys), f"{name} units") as bar:
        if records:
            bar.update(len(records))

        def on_done(record: dict[str, Any]) -> None:
            folder.store_unit(record)
            records[record["hash"]] = record
            bar.update(unit=str(record["key"] or "-"))

        try:
            execute(tasks, executor=executor, workers=workers, address=address, on_done=on_done)
        finally:
            invocation["wall_seconds"] = time.perf_counter() - start
            folder.invocations.append(invocation)
            folder.write_manifest()

    results = [_unit_result(records[d], folder) for d in digests]
    ctx = RunContext(
        name=name, preset=preset, device=torch_device, out_dir=out_dir, anchors=dict(spec.anchors), seed=seed
    )
    for result in results:  # anchors, notes, tables and figures the units added themselves
        _merge_report(ctx, result.report)
    combine_start = time.perf_counter()
    if spec.combine is None:
        (only,) = results
        metrics = only.metrics
        ctx.timings.update(only.timings)
    else:
        from sciprob.runtime.seeding import seed_everything

        seed_everything(seed_of(unit_seed_sequence(seed, {"__combine__": True})))
        metrics = spec.combine(cfg, results, ctx)
    metrics = _check_metrics(name, metrics)
    combine_seconds = time.perf_counter() - combine_start
    ctx.timings["compute_seconds"] = sum(r.seconds for r in results) + combine_seconds
    nonfinite = [k for k, v in metrics.items() if not math.isfinite(v)]
    if nonfinite:
        log.warning("non-finite metrics: %s", ", ".join(nonfinite))
    folder.invocations[-1]["combine_seconds"] = combine_seconds
    folder.write_manifest()
    parts = ctx.report_parts()
    payload = {
        "experiment": name,
        "preset": preset,
        "seed": seed,
        "config": config,
        "metrics": metrics,
        "anchors": parts.pop("anchors"),
        "timings": ctx.timings,
        "environment": environment_info(torch_device),
        "report": {"paper": spec.paper, "summary": spec.summary, "units": len(keys), **parts},
        "invocations": folder.invocations,
    }
    atomic_write_json(out_dir / "results.json", payload)
    atomic_write_text(out_dir / "report.md", render_report(payload))
    return RunResult(out_dir=out_dir, results=payload)


def _unit_result(record: dict[str, Any], folder: RunFolder):
    from sciprob.experiments import UnitResult

    res = record["result"]
    return UnitResult(
        metrics=dict(res["metrics"]),
        rows=list(res["rows"]),
        artifacts=dict(res["artifacts"]),
        timings=dict(res["timings"]),
        key=dict(record["key"]),
        seconds=float(record["seconds"]),
        dir=folder.units_dir / record["hash"],
        report=dict(res.get("report", {})),
    )


def _merge_report(ctx: Any, report: Mapping[str, Any]) -> None:
    from sciprob.experiments import Anchor

    for metric, anchor in report.get("anchors", {}).items():
        ctx.anchors[metric] = Anchor(float(anchor["value"]), anchor["source"])
    for filename, caption in report.get("figures", []):
        ctx.figures.append((filename, caption))
    ctx.notes.extend(report.get("notes", []))
    ctx.tables.extend(tuple(t) for t in report.get("tables", []))


def _check_metrics(name: str, metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"experiment {name!r} must return a dict of metrics, got {type(metrics).__name__}")
    out: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"metric {key!r} of experiment {name!r} is not a number: {value!r}") from None
    return out
