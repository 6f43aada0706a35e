"""The iterative-linearisation experiment through the command line."""

import pytest

KEYS = ("test_accuracy", "kernel_distance", "feature_updates", "kernel_alignment")


def test_tiny_preset_writes_results_report_and_figures(run_cli):
    res = run_cli("run", "iterative-linearisation", "--preset", "tiny", "--device", "cpu", out="il")
    assert res.returncode == 0, res.stderr
    metrics = res.results()["metrics"]
    for k in ("1", "10", "never"):
        for key in KEYS:
            assert f"{key}/K={k}" in metrics  # the digits/CNN run keeps issue #9's names
            assert f"breast_cancer/{key}/K={k}" in metrics
    assert metrics["feature_updates/K=1"] == 23 and metrics["feature_updates/K=10"] == 2
    assert metrics["feature_updates/K=never"] == 0 and abs(metrics["kernel_distance/K=never"]) < 1e-12
    assert metrics["kernel_distance/K=1"] > 0
    report = (res.out / "report.md").read_text()
    assert "Claim 1" in report and "claim 2" in report
    for png in ("accuracy_vs_feature_updates.png", "kernel_curves.png"):
        assert (res.out / png).stat().st_size > 1000 and png in report
    # every finished (data set, K) run is checkpointed; --resume skips them and reproduces the metrics
    again = run_cli(
        "run", "iterative-linearisation", "--preset", "tiny", "--device", "cpu", "--resume", out="il"
    )
    assert again.returncode == 0, again.stderr
    assert again.results()["metrics"] == metrics
    assert "K=1 " not in again.stderr  # no training progress lines


@pytest.mark.parametrize(
    ("setting", "named"),
    [("periods=10,none", "periods"), ("periods=1,0", "periods"), ("datasets=digits,mnist", "datasets")],
)
def test_bad_settings_fail_before_work(run_cli, setting, named):
    res = run_cli("run", "iterative-linearisation", "--preset", "tiny", "--set", setting, out="bad")
    assert res.returncode != 0 and named in res.stderr and "Traceback" not in res.stderr
    assert not res.out.exists()
