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
    units = [json.loads(p.read_text()) for p in (res.out / "units").glob("*.json")]
    assert sorted((u["key"]["dataset"], u["key"]["model"]) for u in units) == sorted(
        (d, m) for d in ("GunPoint", "ItalyPowerDemand") for m in ("fcn", "mlp")
    )
    report = (res.out / "report.md").read_text()
    for unit in units:
        ds, model = unit["key"]["dataset"], unit["key"]["model"]
        acc = metrics[f"accuracy/{ds}/{model}"]
        assert acc == unit["result"]["metrics"]["accuracy"]  # one run: the mean is that run's value
        assert abs(acc * 40 - round(acc * 40)) < 1e-9  # counted over exactly the 40 test cases kept
        assert f"accuracy_std/{ds}/{model}" not in metrics  # one run has no spread
        anchor = results["anchors"].get(f"accuracy/{ds}/{model}")
        if anchor is not None:  # the table shows the gap computed from this run and the review's value
            assert f"{100 * (acc - anchor['value']):+.2f}" in report
    assert "Test accuracy" in report and "Reduced training" in report
    for png in ("cam.png", "critical_difference.png", "training_curves.png"):
        assert (res.out / png).stat().st_size > 1000

    # resuming a finished run trains nothing and reproduces the metrics
    again = run_cli("run", "tsc", "--preset", "tiny", "--device", "cpu", "--resume", out="tsc")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.results()["metrics"] == metrics
    assert again.results()["invocations"][-1]["units_run"] == 0
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
