"""The ``relora-lm`` experiment through the command line: files, metric contract, determinism, errors."""

import pytest

METHODS = ("full-rank", "lora-only", "relora")
CONTRACT = ("val_ppl", "trainable_params", "optimizer_state_bytes", "update_rank")
TIMINGS = ("tokens_per_second", "train_seconds")


def test_tiny_preset_writes_results_report_and_figures(run_cli):
    res = run_cli("run", "relora-lm", "--preset", "tiny", "--device", "cpu", "--seed", "3", out="a")
    assert res.returncode == 0, res.stderr[-2000:]
    results = res.results()
    metrics, timings = results["metrics"], results["timings"]
    for method in METHODS:
        for name in CONTRACT:
            assert f"{name}/{method}" in metrics
        for name in TIMINGS:  # measurements live in timings, under the metric names they had
            assert f"{name}/{method}" in timings and f"{name}/{method}" not in metrics
            assert timings[f"{name}/{method}"] > 0
    assert metrics["update_rank/lora-only"] <= 2  # tiny preset: r = 2
    assert metrics["update_rank/relora"] > 2  # three restarts of rank 2
    assert metrics["trainable_params/relora"] < metrics["trainable_params/full-rank"]
    assert metrics["optimizer_state_bytes/relora"] < metrics["optimizer_state_bytes/full-rank"]
    for method in METHODS:
        assert 1.0 < metrics[f"val_ppl/{method}"] < 256.0  # trained below the uniform byte model
    ratio = metrics["val_ppl/relora"] / metrics["val_ppl/full-rank"]
    assert metrics["val_ppl_ratio/relora"] == pytest.approx(ratio, rel=1e-12)
    report = (res.out / "report.md").read_text()
    assert "val_ppl.png" in report and "update_spectra.png" in report and "within 10 %" in report
    assert (res.out / "val_ppl.png").stat().st_size > 1000
    assert (res.out / "update_spectra.png").stat().st_size > 1000
    assert not list(res.out.rglob("*.pt"))  # finished units leave no training checkpoints behind

    # Same seed, another process: identical metrics (the timings are kept apart by construction).
    again = run_cli(
        "run",
        "relora-lm",
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--seed",
        "3",
        "--executor",
        "serial",
        out="b",
    )
    assert again.returncode == 0, again.stderr[-2000:]
    # Exact equality is by construction: same machine, same operations in the same order, same seeds.
    assert again.results()["metrics"] == metrics


@pytest.mark.parametrize(
    "setting,needle",
    [
        ("lora_r=100", "lora_r"),
        ("warm_start_steps=0", "warm_start_steps"),
        ("reset_mode=sometimes", "reset_mode"),
    ],
)
def test_bad_settings_fail_before_work(run_cli, setting, needle):
    res = run_cli("run", "relora-lm", "--preset", "tiny", "--device", "cpu", "--set", setting, out="bad")
    assert res.returncode != 0
    assert needle in res.stderr + res.stdout
    assert not (res.out / "results.json").exists()
