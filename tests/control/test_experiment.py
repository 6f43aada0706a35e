import numpy as np
import pytest

from sciprob.experiments import get_experiment


def test_gpide_tracking_tiny_through_cli(run_cli):
    res = run_cli("run", "gpide-tracking", "--preset", "tiny", "--device", "cpu", out="gt")
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = res.results()["metrics"]
    for method in ("pid", "gpide", "tuned-pid", "do-nothing"):
        for cell in ("fixed->fixed", "fixed->large"):
            assert f"return/MassSpringDamper/{method}/{cell}" in metrics
    # the tuned PID is a real controller even in the tiny preset
    assert metrics["return/MassSpringDamper/tuned-pid/fixed->fixed"] > -20
    assert metrics["return/MassSpringDamper/do-nothing/fixed->fixed"] < -40
    report = (res.out / "report.md").read_text()
    assert "tuned-pid" in report and "Held-out returns" in report
    assert (res.out / "curves_MassSpringDamper.png").stat().st_size > 0
    assert (res.out / "trajectory_MassSpringDamper.png").stat().st_size > 0
    logs = sorted(res.out.glob("units/*/log.csv"))  # one learning-curve log per training unit
    assert len(logs) == 2 and all(p.read_text().startswith("step,") for p in logs)
    assert not list(res.out.glob("units/*/checkpoint.pt"))  # finished units keep no checkpoint
    timings = res.results()["timings"]
    assert timings["train_seconds/MassSpringDamper/gpide"] > 0


def test_bad_settings_fail_before_work(run_cli):
    res = run_cli("run", "gpide-tracking", "--preset", "tiny", "--set", "envs=Pendulum", out="bad")
    assert res.returncode != 0 and "envs" in res.stderr
    with pytest.raises(ValueError, match="window"):
        get_experiment("gpide-tracking").build_config("tiny", {"window": "0"})


@pytest.mark.parametrize("name", ["gpide-tracking", "gpide-locomotion"])
def test_precision_setting_reaches_the_agent_config(name):
    from sciprob.control.experiments import _locomotion_sac_config, _sac_config

    spec = get_experiment(name)
    assert spec.build_config("tiny", {}).precision == "float32"
    cfg = spec.build_config("tiny", {"precision": "bfloat16"})
    assert cfg.precision == "bfloat16"
    make = _sac_config if name == "gpide-tracking" else _locomotion_sac_config
    assert make(cfg, free=True).precision == make(cfg, free=False).precision == "bfloat16"
    with pytest.raises(ValueError, match="precision"):
        spec.build_config("tiny", {"precision": "float16"})


@pytest.mark.slow
def test_every_environment_and_encoder_runs(run_cli):
    res = run_cli(
        "run",
        "gpide-tracking",
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--set",
        "envs=MassSpringDamper,DoubleMassSpringDamper,Navigation,Tokamak",
        "--set",
        "encoders=none,pid,gpide,gru,transformer",
        out="all",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = res.results()["metrics"]
    assert "return/Navigation/gru/sim->real" in metrics
    assert "return/Tokamak/transformer/sim->sim" in metrics
    assert "return/DoubleMassSpringDamper/none/fixed->large" in metrics


def test_gpide_locomotion_tiny_through_cli(run_cli):
    res = run_cli("run", "gpide-locomotion", "--preset", "tiny", "--device", "cpu", out="gl")
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = res.results()["metrics"]
    # the memoryless agent is the Markovian reference: its normalised score is 0 by construction
    assert metrics["normalised/Hopper-P/mlp"] == 0.0  # exact: (R - R) / (O - R)
    oracle, mlp = metrics["return/Hopper-P/oracle"], metrics["return/Hopper-P/mlp"]
    ess = metrics["return/Hopper-P/gpide-ess"]
    np.testing.assert_allclose(metrics["normalised/Hopper-P/gpide-ess"], 100 * (ess - mlp) / (oracle - mlp))
    assert all(r > 0 for r in (oracle, mlp, ess))  # Hopper pays an alive bonus every step
    report = (res.out / "report.md").read_text()
    assert "normalised" in report and "PyBullet" in report
    assert (res.out / "curves_locomotion.png").stat().st_size > 0


def test_locomotion_bad_settings_fail_before_work():
    spec = get_experiment("gpide-locomotion")
    with pytest.raises(ValueError, match="tasks"):
        spec.build_config("tiny", {"tasks": "Humanoid-P"})
    with pytest.raises(ValueError, match="mlp"):
        spec.build_config("tiny", {"encoders": "gru"})
    assert {"tiny", "quick", "cpu", "paper"} <= set(spec.presets)
