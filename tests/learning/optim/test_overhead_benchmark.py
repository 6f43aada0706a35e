"""The overhead benchmark script runs and prints a ratio for every optimizer and rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "update_rules_overhead.py"


def test_benchmark_prints_every_ratio():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--width", "32", "--depth", "1", "--repeats", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("sgd", "adam", "adagrad", "rmsprop"):
        assert f"\n{name}: base step" in proc.stdout
    # a 1.1K-parameter model is below compiled="auto"'s threshold: nothing is compiled
    assert proc.stdout.count("default rows use the _foreach passes") == 4
    ratio_lines = [
        line for line in proc.stdout.splitlines() if line.strip().startswith(("additive", "multi", "hybrid"))
    ]
    assert len(ratio_lines) == 20 and all(line.count("x") >= 2 for line in ratio_lines)
