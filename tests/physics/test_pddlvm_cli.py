"""The PDDLVM experiments through the command line (tiny presets) and their config errors."""

from __future__ import annotations

import pytest

METRICS = {"forward_nme", "inverse_nme", "forward_coverage_95", "speedup", "train_seconds"}


@pytest.mark.parametrize("name", ["pddlvm-poisson-1d", "pddlvm-nonlinear-poisson-1d", "pddlvm-poisson-2d"])
def test_tiny_preset_writes_results(run_cli, name):
    res = run_cli("run", name, "--preset", "tiny", "--device", "cpu", out=name)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = res.results()["metrics"]
    assert METRICS <= set(metrics)
    assert 0.0 <= metrics["forward_coverage_95"] <= 1.0 and metrics["speedup"] > 0
    # tiny presets check the plumbing; training quality is tested in test_pddlvm.py
    assert 0.0 <= metrics["forward_nme"] < 1.0 and metrics["inverse_nme"] >= 0.0
    assert (res.out / "report.md").read_text().count("forward_nme") >= 1
    for png in ("forward.png", "inverse.png", "elbo.png"):
        assert (res.out / png).stat().st_size > 1000


def test_mesh_below_two_fails_before_training(run_cli):
    res = run_cli(
        "run", "pddlvm-poisson-2d", "--preset", "tiny", "--device", "cpu", "--set", "mesh=1", out="bad"
    )
    assert res.returncode != 0
    assert "mesh" in res.stderr + res.stdout
    assert not (res.out / "results.json").exists()
