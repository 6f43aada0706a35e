"""Wall time of one CPU-bound grid of eight units: serial against ``processes --workers 2``.

Each unit is a single-threaded, pure-Python Monte Carlo estimate of pi (about
``--seconds`` of work), so the grid's serial time is the sum of the units' and
a perfect two-worker run halves it; the gap to 2x is the engine's overhead
(spawning workers, importing torch there, storing units). Serial and parallel
runs are interleaved after a warm-up, and the median of each is reported, with
the check that both give identical metrics.

Run: ``python benchmarks/executor_scaling.py [--repeats 3] [--seconds 4]``.
Target (issue 13): serial / processes >= 1.7 on two cores.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from dataclasses import dataclass

from sciprob.config import param
from sciprob.experiments import UnitResult, experiment, run_experiment


@dataclass(frozen=True)
class GridConfig:
    """Eight units of fixed CPU work."""

    units: int = param(8, "units in the grid")
    draws: int = param(1_000_000, "Monte Carlo draws per unit")


def _units(cfg: GridConfig) -> list[dict]:
    return [{"unit": i} for i in range(cfg.units)]


def _combine(cfg: GridConfig, results: list[UnitResult], ctx) -> dict[str, float]:
    return {f"pi/{r.key['unit']}": r.metrics["pi"] for r in results}


@experiment(
    "bench-executor-grid",
    config=GridConfig,
    presets={"quick": {}, "paper": {}},
    paper="none (benchmark)",
    summary="CPU-bound pure-Python units",
    units=_units,
    combine=_combine,
    devices=("cpu",),
)
def _pi_unit(cfg: GridConfig, unit) -> UnitResult:
    return UnitResult(metrics={"pi": _estimate_pi(cfg.draws, unit.seed)})


def _estimate_pi(draws: int, seed: int) -> float:
    rng = random.Random(seed)
    inside = sum(1 for _ in range(draws) if rng.random() ** 2 + rng.random() ** 2 < 1.0)
    return 4.0 * inside / draws


def _timed(executor: str, workers: int, draws: int) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        res = run_experiment(
            "bench-executor-grid",
            device="cpu",
            out=f"{tmp}/run",
            executor=executor,
            workers=workers,
            overrides={"draws": str(draws)},
        )
        return time.perf_counter() - start, res.results["metrics"]


def main() -> None:
    """Calibrate the unit size, warm up, then interleave serial and parallel runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="target seconds of work per unit")
    args = parser.parse_args()

    start = time.perf_counter()
    _estimate_pi(500_000, 0)
    per_draw = (time.perf_counter() - start) / 500_000
    draws = max(10_000, int(args.seconds / per_draw))
    _timed("serial", 1, 10_000)
    _timed("processes", 2, 10_000)
    print(f"units: 8 x {draws} draws (about {args.seconds:.1f} s each); warm-up done")

    serial, parallel = [], []
    for _ in range(args.repeats):
        t_serial, m_serial = _timed("serial", 1, draws)
        t_parallel, m_parallel = _timed("processes", 2, draws)
        assert m_serial == m_parallel, "executors disagree on the metrics"
        serial.append(t_serial)
        parallel.append(t_parallel)
        ratio = t_serial / t_parallel
        print(f"  serial {t_serial:6.2f} s   processes x2 {t_parallel:6.2f} s   ratio {ratio:.2f}")
    ratio = statistics.median(serial) / statistics.median(parallel)
    print(
        f"median: serial {statistics.median(serial):.2f} s, processes x2 {statistics.median(parallel):.2f} s"
    )
    print(f"serial / processes --workers 2 = {ratio:.2f}x (target >= 1.7 on 2 cores)")


if __name__ == "__main__":
    main()
