"""The ``relora-lm`` experiment through the command line: files, metric contract, determinism, errors."""

import pytest
import torch

METHODS = ("full-rank", "lora-only", "relora")
CONTRACT = ("val_ppl", "trainable_params", "optimizer_state_bytes", "tokens_per_second", "update_rank")


def test_tiny_preset_writes_results_report_and_figures(run_cli):
    res = run_cli("run", "relora-lm", "--preset", "tiny", "--device", "cpu", "--seed", "3", out="a")
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = res.results()["metrics"]
    for name in CONTRACT:
        for method in METHODS:
            assert f"{name}/{method}" in metrics
    assert metrics["update_rank/lora-only"] <= 2  # tiny preset: r = 2
    assert metrics["update_rank/relora"] > 2  # three restarts of rank 2
    assert metrics["trainable_params/relora"] < metrics["trainable_params/full-rank"]
    assert metrics["optimizer_state_bytes/relora"] < metrics["optimizer_state_bytes/full-rank"]
    for method in METHODS:
        assert 1.0 < metrics[f"val_ppl/{method}"] < 256.0  # trained below the uniform byte model
    report = (res.out / "report.md").read_text()
    assert "val_ppl.png" in report and "update_spectra.png" in report and "within 10 %" in report
    assert (res.out / "val_ppl.png").stat().st_size > 1000
    assert (res.out / "update_spectra.png").stat().st_size > 1000

    # Same seed: every metric but the timing-based throughput is identical. --resume keeps the finished
    # methods of the checkpoint and retrains the missing one (here: as if interrupted before ReLoRA).
    again = run_cli("run", "relora-lm", "--preset", "tiny", "--device", "cpu", "--seed", "3", out="b")
    assert again.returncode == 0, again.stderr[-2000:]
    ckpt = torch.load(res.out / "checkpoint.pt", weights_only=False)
    assert set(ckpt["done"]) == set(METHODS) and ckpt["warm_state"] is not None
    del ckpt["done"]["relora"]
    torch.save(ckpt, res.out / "checkpoint.pt")
    resumed = run_cli(
        "run", "relora-lm", "--preset", "tiny", "--device", "cpu", "--seed", "3", "--resume", out="a"
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "full-rank already trained" in resumed.stderr and "relora already trained" not in resumed.stderr
    for other in (again.results()["metrics"], resumed.results()["metrics"]):
        for key, value in metrics.items():
            if not key.startswith("tokens_per_second/"):
                assert other[key] == value, key


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
