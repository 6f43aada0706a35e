"""The ``sparsity`` experiment: the tiny preset through the CLI, the unit grid and the computed verdicts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sciprob.experiments import RunContext, UnitResult
from sciprob.learning.sparse.experiments import SparsityConfig, sparsity_units
from sciprob.learning.sparse.report import combine_sparsity

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "sparse_speed.py"


def test_tiny_preset_through_cli(run_cli):
    res = run_cli("run", "sparsity", "--preset", "tiny", "--device", "cpu", "--executor", "serial", out="r")
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.results()
    metrics, timings = out["metrics"], out["timings"]
    for model in ("mlp", "cnn"):
        assert f"accuracy/{model}/dense/sparsity=0" in metrics
        assert f"accuracy/{model}/magnitude/sparsity=0.9" in metrics
        assert f"accuracy/{model}/rigl/sparsity=0.9" in metrics
        assert f"accuracy/{model}/structured/sparsity=0.5" in metrics
        assert f"ppe/{model}/rigl" in metrics
        # a trained dense net on 10 classes is far above chance even in 3 epochs
        assert metrics[f"accuracy/{model}/dense/sparsity=0"] > 0.5
        # latencies are measurements: timings only
        assert f"latency_ratio/{model}/structured-50" in timings
        assert f"latency_ratio/{model}/masked-90" in timings
        assert not any(k.startswith("latency") for k in metrics)
    assert "latency_ratio/mlp/csr-95" in timings
    report = (res.out / "report.md").read_text()
    assert "Survey claims checked on this run" in report
    assert (res.out / "accuracy_sparsity.png").stat().st_size > 0
    assert (res.out / "latency_sparsity.png").stat().st_size > 0


def test_units_grid_and_config_errors():
    cfg = SparsityConfig(
        models=("mlp",), methods=("rigl", "structured", "nm"), sparsities=(0.5, 0.9), seeds=2
    )
    units = sparsity_units(cfg)
    keys = {(u["method"], u["sparsity"], u["run"]) for u in units}
    assert ("dense", 0.0, 1) in keys and ("rigl", 0.9, 1) in keys and ("nm", 0.5, 0) in keys
    assert ("structured", 0.5, 0) in keys and ("latency", 0.0, 0) in keys
    assert len(units) == 2 * (1 + 2 + 1 + 1) + 1
    with pytest.raises(ValueError, match="`sparsities`"):
        SparsityConfig(sparsities=(1.0,))
    with pytest.raises(ValueError, match="`methods`"):
        SparsityConfig(methods=("obs",))


def _unit(model, method, s, acc, params=1000, run=0):
    row = {"model": model, "method": method, "sparsity": s, "run": run, "accuracy": acc, "density": 1 - s,
           "params": params}  # fmt: skip
    return UnitResult(rows=[row], key={"model": model, "method": method, "sparsity": s, "run": run})


def _combine(tmp_path, results, **kw):
    cfg = SparsityConfig(
        models=("mlp",), methods=("magnitude", "gmp", "rigl"), sparsities=(0.5, 0.9, 0.98), **kw
    )
    ctx = RunContext(name="sparsity", preset="test", device="cpu", out_dir=tmp_path)
    return combine_sparsity(cfg, results, ctx), ctx


def test_verdicts_follow_the_numbers(tmp_path):
    base = [_unit("mlp", "dense", 0.0, 0.97)]
    good = base + [
        _unit("mlp", m, s, a)
        for m, accs in {
            "magnitude": (0.97, 0.95, 0.6),
            "gmp": (0.97, 0.965, 0.9),
            "rigl": (0.96, 0.966, 0.92),
        }.items()
        for s, a in zip((0.5, 0.9, 0.98), accs, strict=True)
    ]
    lat = UnitResult(timings={"latency_ratio/mlp/masked-90": 1.05, "latency_ratio/mlp/structured-50": 0.4})
    metrics, ctx = _combine(tmp_path, [*good, lat])
    assert metrics["accuracy/mlp/gmp/sparsity=0.9"] == pytest.approx(0.965)
    assert metrics["ppe/mlp/gmp"] == pytest.approx(10.0) and metrics["ppe/mlp/magnitude"] == pytest.approx(
        2.0
    )
    assert ctx.timings["latency_ratio/mlp/structured-50"] == 0.4  # exact: copied through, not computed
    text = "\n".join(ctx.notes)
    assert "up to s=0.9" in text and "falls below from s=0.98" in text
    assert "s=0.98: one-shot magnitude 60.00 %" in text and "**holds**" in text
    assert "masked-90 1.05 → **holds**" in text
    # flip the numbers: one-shot now wins and a masked model is fast -> the verdicts change
    bad = base + [_unit("mlp", "magnitude", s, 0.97) for s in (0.5, 0.9, 0.98)]
    bad += [_unit("mlp", m, s, 0.5) for m in ("gmp", "rigl") for s in (0.5, 0.9, 0.98)]
    lat2 = UnitResult(timings={"latency_ratio/mlp/masked-90": 0.5})
    _, ctx2 = _combine(tmp_path / "b", [*bad, lat2])
    text2 = "\n".join(ctx2.notes)
    assert "no breaking point in this grid" in text2
    assert "s=0.98: one-shot magnitude 97.00 %" in text2 and "**does not hold**" in text2
    assert "masked-90 0.50 → **does not hold**" in text2


def test_benchmark_prints_ratios_against_dense():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--models", "mlp,cnn", "--hidden", "256", "--mlp-batch", "32",
         "--cnn-batch", "4", "--image", "16", "--warmup", "1", "--repeats", "3"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    for variant in ("dense", "masked-50", "masked-90", "structured-50", "csr-90", "csr-99"):
        assert f"  {variant} " in proc.stdout
    assert proc.stdout.count("latency ratio") == 8 + 4  # MLP: 8 variants, CNN: 4 (no CSR)
    assert proc.stdout.count("structured-50 is") == 2
