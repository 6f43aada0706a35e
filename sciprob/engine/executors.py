"""Running units: in this process, on local processes, or as Ray tasks.

Every executor calls :func:`run_unit_task` on each task and hands the finished
record to ``on_done`` in the main process, which stores it. A unit's result does
not depend on where it ran: its seed comes with the task, and the global RNGs
are seeded with it right before the unit starts.

Threads: ``workers × threads ≤ cores``. Serial runs keep the process's thread
count; each process or Ray worker gets ``max(1, cores // workers)`` torch/BLAS
threads.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Executor = Literal["serial", "processes", "ray"]
EXECUTORS: tuple[str, ...] = ("serial", "processes", "ray")

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class UnitError(RuntimeError):
    """A unit of work failed; the message names the experiment and the unit's key."""


@dataclass(frozen=True)
class UnitTask:
    """Everything a worker needs to compute one unit (picklable).

    Attributes
    ----------
    experiment, module : str
        Experiment name and the module that registers it.
    preset : str
        Preset name (for the unit's context).
    config : dataclass instance
        The run's frozen config.
    key : dict
        The unit's key.
    digest : str
        The unit's hash.
    seed : int
        The unit's 64-bit seed.
    device : str
        Torch device string.
    out_dir, unit_dir : str
        Run folder and the unit's own folder.
    """

    experiment: str
    module: str
    preset: str
    config: Any
    key: dict[str, Any]
    digest: str
    seed: int
    device: str
    out_dir: str
    unit_dir: str


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Torch/BLAS threads for each of ``workers`` workers so that the product fits the cores."""
    return max(1, available_cores() // max(1, workers))


def _spec(task: UnitTask):
    from sciprob.experiments import REGISTRY, get_experiment

    if task.experiment not in REGISTRY:
        importlib.import_module(task.module)
    return REGISTRY[task.experiment] if task.experiment in REGISTRY else get_experiment(task.experiment)


def _check_numbers(what: str, values: Any, task: UnitTask) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise TypeError(f"{what} of unit {task.key!r} must be a dict, got {type(values).__name__}")
    out = {}
    for name, value in values.items():
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{what} {name!r} of unit {task.key!r} is not a number: {value!r}") from None
    return out


def run_unit_task(task: UnitTask) -> dict[str, Any]:
    """Seed the global RNGs with the task's seed, compute the unit, return its record.

    Raises
    ------
    UnitError
        Whatever the unit raised, with the experiment and key in the message.
    """
    import numpy as np
    import torch

    from sciprob.engine.keys import unit_seed_sequence
    from sciprob.experiments import UnitContext, UnitResult
    from sciprob.runtime.atomic import _jsonable
    from sciprob.runtime.seeding import seed_everything

    spec = _spec(task)
    seed_everything(task.seed)
    ctx = UnitContext(
        name=task.experiment,
        preset=task.preset,
        device=torch.device(task.device),
        out_dir=Path(task.out_dir),
        anchors={},
        key=dict(task.key),
        seed=task.seed,
        rng=np.random.default_rng(unit_seed_sequence(task.seed, task.key)),
        dir=Path(task.unit_dir),
    )
    start = time.perf_counter()
    try:
        out = spec.func(task.config, ctx)
        if not isinstance(out, UnitResult):
            out = UnitResult(metrics=dict(_check_numbers("metrics", out, task)))
        record = {
            "hash": task.digest,
            "key": dict(task.key),
            "seed": task.seed,
            "seconds": time.perf_counter() - start,
            "result": {
                "metrics": _check_numbers("metrics", out.metrics, task),
                "rows": list(out.rows),
                "artifacts": dict(out.artifacts),
                "timings": {**ctx.timings, **_check_numbers("timings", out.timings, task)},
                "report": ctx.report_parts(),
            },
        }
        record = json.loads(json.dumps(_jsonable(record)))  # fail here, naming the unit, not when storing
    except Exception as exc:
        raise UnitError(
            f"unit {dict(task.key)!r} of {task.experiment!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return record


def _init_worker(threads: int) -> None:
    """Process-pool initialiser: limit threads and switch progress to log lines."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    os.environ["SCIPROB_PROGRESS"] = "lines"
    import torch

    torch.set_num_threads(threads)


def _run_serial(tasks: list[UnitTask], on_done: Callable[[dict[str, Any]], None]) -> None:
    for task in tasks:
        on_done(run_unit_task(task))


def _run_processes(tasks: list[UnitTask], workers: int, on_done: Callable[[dict[str, Any]], None]) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # spawn, not fork: torch's thread pools and DOLFINx's MPI do not survive a fork
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads_per_worker(workers),),
    )
    try:
        pending = {pool.submit(run_unit_task, task) for task in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_done(future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ray_unit(task: UnitTask, threads: int) -> dict[str, Any]:
    _init_worker(threads)
    return run_unit_task(task)


def _run_ray(
    tasks: list[UnitTask], workers: int, address: str | None, on_done: Callable[[dict[str, Any]], None]
) -> None:
    try:
        import ray
    except ImportError:
        raise ImportError("`--executor ray` needs Ray: pip install 'ray[default]'") from None
    started = False
    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=True)
        else:
            ray.init(address=address, log_to_driver=True)
        started = True
    threads = threads_per_worker(workers) if address is None else 1
    remote = ray.remote(num_cpus=threads)(_ray_unit)
    try:
        pending = [remote.remote(task, threads) for task in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    on_done(ray.get(ref))
                except ray.exceptions.RayTaskError as exc:
                    cause = exc.cause if isinstance(exc.cause, UnitError) else exc
                    for ref_left in pending:
                        ray.cancel(ref_left, force=True)
                    raise UnitError(str(cause).splitlines()[0]) from None
    finally:
        if started:
            ray.shutdown()


def execute(
    tasks: list[UnitTask],
    *,
    executor: Executor,
    workers: int,
    address: str | None,
    on_done: Callable[[dict[str, Any]], None],
) -> None:
    """Run ``tasks`` with ``executor`` and ``workers``, calling ``on_done(record)`` as each finishes.

    Raises
    ------
    UnitError
        The first unit that failed (finished units have been handed to ``on_done``).
    """
    if not tasks:
        return
    if executor == "serial" or (executor == "processes" and workers == 1 and len(tasks) == 1):
        _run_serial(tasks, on_done)
    elif executor == "processes":
        _run_processes(tasks, min(workers, len(tasks)), on_done)
    else:
        _run_ray(tasks, workers, address, on_done)
