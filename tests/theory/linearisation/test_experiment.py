"""The iterative-linearisation experiment through the command line."""

import pytest

KEYS = ("test_accuracy", "kernel_distance", "feature_updates", "kernel_alignment")


def test_tiny_preset_writes_results_report_and_figures(run_cli):
    res = run_cli("run", "iterative-linearisation", "--preset", "tiny", "--device", "cpu", out="il")
    assert res.returncode == 0, res.stderr
    metrics = res.results()["metrics"]
    expected = {
        f"{pre}{key}/K={k}" for pre in ("", "breast_cancer/") for key in KEYS for k in ("1", "10", "never")
    }
    assert set(metrics) == expected  # the digits/CNN run keeps issue #9's names, others are prefixed
    # 24 steps: K=1 moves the point before steps 1..23, K=10 before steps 10 and 20 (exact counts)
    assert metrics["feature_updates/K=1"] == 23 and metrics["feature_updates/K=10"] == 2
    # K=never: the kernel at the unmoved point, up to float64 round-off of the cosine distance
    assert metrics["feature_updates/K=never"] == 0 and abs(metrics["kernel_distance/K=never"]) < 1e-12
    for pre in ("", "breast_cancer/"):
        assert metrics[f"{pre}kernel_distance/K=1"] > 1e-6
        # K=10 moves its point at a subset of K=1's moves, from the same start and batches
        assert metrics[f"{pre}kernel_distance/K=1"] > metrics[f"{pre}kernel_distance/K=10"] > 1e-9
    report = (res.out / "report.md").read_text()
    assert "Claim 1" in report and "claim 2" in report
    for png in ("accuracy_vs_feature_updates.png", "kernel_curves.png"):
        assert (res.out / png).stat().st_size > 1000 and png in report
    assert res.results()["timings"]["train_seconds/digits/K=1"] > 0
    # --resume reuses the finished units and reproduces the metrics without training again
    again = run_cli(
        "run", "iterative-linearisation", "--preset", "tiny", "--device", "cpu", "--resume", out="il"
    )
    assert again.returncode == 0, again.stderr
    assert again.results()["metrics"] == metrics
    assert "K=1 " not in again.stderr  # no training progress lines


def test_units_are_paired_within_a_data_set_and_seeded_by_the_engine():
    from sciprob.experiments import get_experiment

    spec = get_experiment("iterative-linearisation")
    cfg = spec.build_config("tiny", {"datasets": "wine,breast_cancer"})
    assert spec.unit_keys(cfg) == [{"dataset": "wine"}, {"dataset": "breast_cancer"}]
    assert cfg.estimated_bytes() < spec.build_config("paper").estimated_bytes() < 2**31


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("periods=10,none", "periods"),
        ("periods=1,0", "periods"),
        ("datasets=digits,mnist", "datasets"),
        ("lr=nan", "lr"),
        ("n_probe=5000", "n_probe"),
        ("n_probe=100000000", "n_probe"),
        ("mlp_width=1000000", "GiB"),
    ],
)
def test_bad_settings_fail_before_work(run_cli, setting, named):
    res = run_cli("run", "iterative-linearisation", "--preset", "tiny", "--set", setting, out="bad")
    assert res.returncode != 0 and named in res.stderr and "Traceback" not in res.stderr
    assert not res.out.exists()
