import json

import pytest

from sciprob.experiments import get_experiment
from sciprob.learning.tsc.data import aeon_data_dir

pytestmark = pytest.mark.skipif(aeon_data_dir() is None, reason="aeon's shipped data sets are needed")


def test_tiny_preset_through_the_cli(run_cli):
    res = run_cli("run", "tsc", "--preset", "tiny", "--device", "cpu", out="tsc")
    assert res.returncode == 0, res.stderr[-3000:]
    results = res.results()
    metrics = results["metrics"]
    for ds in ("GunPoint", "ItalyPowerDemand"):
        for model in ("fcn", "mlp"):
            assert 0.0 <= metrics[f"accuracy/{ds}/{model}"] <= 1.0
            assert metrics[f"accuracy_std/{ds}/{model}"] == 0.0  # one run
    assert results["anchors"]["accuracy/GunPoint/fcn"]["value"] == 1.0
    report = (res.out / "report.md").read_text()
    assert "Test accuracy" in report and "Reduced training" in report
    for png in ("cam.png", "critical_difference.png", "training_curves.png"):
        assert (res.out / png).stat().st_size > 1000
    progress = json.loads((res.out / "tsc_progress.json").read_text())
    assert set(progress) == {f"{d}/{m}/0" for d in ("GunPoint", "ItalyPowerDemand") for m in ("fcn", "mlp")}

    # resuming a finished run trains nothing and reproduces the metrics
    again = run_cli("run", "tsc", "--preset", "tiny", "--device", "cpu", "--resume", out="tsc")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.results()["metrics"] == metrics
    assert "test accuracy" not in again.stderr


def test_bad_model_epochs():
    from sciprob.config import ConfigError

    with pytest.raises(ConfigError, match="model_epochs"):
        get_experiment("tsc").build_config("quick", {"model_epochs": "resnet=0"})


def test_bad_config_fails_before_training(run_cli):
    res = run_cli("run", "tsc", "--preset", "tiny", "--set", "models=fcn,lstm", out="bad")
    assert res.returncode != 0
    assert "models" in res.stderr and "lstm" in res.stderr


def test_presets_build():
    spec = get_experiment("tsc")
    paper = spec.build_config("paper")
    assert paper.runs == 5 and len(paper.models) == 10 and paper.epochs is None
    assert paper.epochs_for("fcn") == 2000 and paper.epochs_for("resnet") == 1500
    assert paper.epochs_for("mlp") == 5000 and paper.epochs_for("twiesn") is None
    quick = spec.build_config("quick")
    assert quick.models == ("fcn", "resnet", "inceptiontime")
    assert [quick.epochs_for(m) for m in quick.models] == [100, 50, 40]
