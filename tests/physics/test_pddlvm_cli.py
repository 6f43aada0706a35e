"""The PDDLVM experiments through the command line (tiny presets) and their config errors."""

from __future__ import annotations

import pytest

from sciprob.physics.pddlvm_experiments import NonlinearPDDLVMConfig, PDDLVMConfig, Poisson2DConfig

METRICS = {
    "forward_nme",
    "inverse_nme",
    "forward_coverage_95",
    "forward_coverage_95_uncalibrated",
    "forward_nll",
    "forward_nll_uncalibrated",
    "forward_calibration_scale",
    "forward_nme_untrained",
}
TIMINGS = {"speedup", "train_seconds", "fem_seconds_per_solve", "model_seconds_per_solution"}


@pytest.mark.parametrize("name", ["pddlvm-poisson-1d", "pddlvm-nonlinear-poisson-1d", "pddlvm-poisson-2d"])
def test_tiny_preset_writes_results(run_cli, name):
    res = run_cli("run", name, "--preset", "tiny", "--device", "cpu", out=name)
    assert res.returncode == 0, res.stderr[-3000:]
    results = res.results()
    metrics, timings = results["metrics"], results["timings"]
    assert set(metrics) == METRICS  # measurements never leak into the metrics
    assert TIMINGS <= set(timings)
    # the speed-up is the ratio of the two per-solution times it is made of
    ratio = timings["fem_seconds_per_solve"] / timings["model_seconds_per_solution"]
    assert timings["speedup"] == pytest.approx(ratio, rel=1e-12)
    if name == "pddlvm-poisson-1d":  # the other tiny presets check the plumbing only
        assert metrics["forward_nme"] < 0.5 * metrics["forward_nme_untrained"]
    # the calibrated band is the variational one widened (scale > 1) or narrowed (scale < 1)
    calibrated, variational = metrics["forward_coverage_95"], metrics["forward_coverage_95_uncalibrated"]
    if metrics["forward_calibration_scale"] >= 1.0:
        assert calibrated >= variational
    else:
        assert calibrated <= variational
    assert (res.out / "report.md").read_text().count("forward_nme") >= 1
    for png in ("forward.png", "inverse.png", "elbo.png", "coverage.png"):
        assert (res.out / png).stat().st_size > 1000


def test_two_runs_with_one_seed_give_identical_metrics(run_cli):
    first = run_cli("run", "pddlvm-poisson-1d", "--preset", "tiny", "--device", "cpu", out="a")
    second = run_cli("run", "pddlvm-poisson-1d", "--preset", "tiny", "--device", "cpu", out="b")
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    # same seed, same process layout, same CPU kernels: bitwise equal by construction
    assert first.results()["metrics"] == second.results()["metrics"]


def test_mesh_below_two_fails_before_training(run_cli):
    res = run_cli(
        "run", "pddlvm-poisson-2d", "--preset", "tiny", "--device", "cpu", "--set", "mesh=1", out="bad"
    )
    assert res.returncode != 0
    assert "mesh" in res.stderr + res.stdout
    assert not (res.out / "results.json").exists()


def test_mesh_too_large_for_memory_is_refused(run_cli):
    res = run_cli(
        "run", "pddlvm-poisson-2d", "--preset", "tiny", "--device", "cpu", "--set", "mesh=20000", out="huge"
    )
    assert res.returncode != 0
    assert "available" in res.stderr + res.stdout
    assert not (res.out / "results.json").exists()


@pytest.mark.parametrize("cls", [PDDLVMConfig, NonlinearPDDLVMConfig, Poisson2DConfig])
def test_memory_estimate_grows_with_mesh_and_batch(cls):
    base = cls()
    assert cls(mesh=4 * base.mesh).estimated_bytes() > base.estimated_bytes()
    assert cls(batch_size=8 * base.batch_size).estimated_bytes() > base.estimated_bytes()
    assert base.estimated_bytes() < 2**30
    # 10^8 elements in 1D or 10^4 squares per side in 2D need far more than 24 GiB
    huge = 10**8 if cls.gdim == 1 else 10**4
    assert cls(mesh=huge).estimated_bytes() > 24 * 2**30
