"""The `teacher-student` experiment through the command line, and its units."""

from __future__ import annotations

import pytest

from sciprob.experiments import get_experiment


def test_tiny_preset_writes_results_report_and_figures(run_cli):
    res = run_cli("run", "teacher-student", "--preset", "tiny", "--device", "cpu", out="ts")
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = res.results()["metrics"]
    expected = {
        f"{kind}/{channel}/alpha={a}"
        for channel in ("linear", "sign", "relu")
        for a in ("0.5", "2")
        for kind in ("se_gen_error", "amp_gen_error", "amp_gen_error_std", "mutual_info")
    }
    expected |= {
        "se_alpha_times_error/sign/alpha=1000",
        "se_gen_error/equivalent-erf/alpha=2",
        "nuts_gen_error/p=2/alpha=2",
        "nuts_r_hat/p=2/alpha=2",
        "svi_gen_error/p=2/alpha=2",
    }
    assert set(metrics) == expected
    assert 0.1 < metrics["nuts_gen_error/p=2/alpha=2"] < 2.0
    assert abs(metrics["se_gen_error/sign/alpha=2"] - 0.1745) < 1e-3
    # the Bayes-optimal perceptron's alpha * error tends to 0.442 (Opper & Haussler 1991)
    assert abs(metrics["se_alpha_times_error/sign/alpha=1000"] - 0.442) < 0.01
    for channel in ("linear", "sign", "relu"):
        # more data, smaller Bayes error and more information per variable
        assert metrics[f"se_gen_error/{channel}/alpha=2"] < metrics[f"se_gen_error/{channel}/alpha=0.5"]
        assert metrics[f"mutual_info/{channel}/alpha=2"] > metrics[f"mutual_info/{channel}/alpha=0.5"]
        # GAMP at d = 200 tracks state evolution within its finite-d spread
        for a in ("0.5", "2"):
            gap = abs(
                metrics[f"amp_gen_error/{channel}/alpha={a}"] - metrics[f"se_gen_error/{channel}/alpha={a}"]
            )
            assert gap < 0.1, (channel, a, gap)
    report = (res.out / "report.md").read_text()
    assert "R-hat" in report and ("did not mix" in report or "All NUTS runs mixed" in report)
    for png in ("glm_curves.png", "nuts_vs_glm.png", "gamp_trajectory.png"):
        assert (res.out / png).stat().st_size > 1000
    timings = res.results()["timings"]
    assert timings["nuts_seconds"] > 0 and not any(k.endswith("_seconds") for k in metrics)


def test_units_cover_the_grid_with_named_coordinates():
    spec = get_experiment("teacher-student")
    cfg = spec.build_config("tiny", {"nuts_teachers": "2"})
    keys = spec.unit_keys(cfg)
    assert keys[:3] == [{"part": "se", "channel": c} for c in ("linear", "sign", "relu")]
    assert {"part": "gamp", "channel": "relu", "alpha": 0.5} in keys
    assert [k for k in keys if k["part"] == "nuts"] == [
        {"part": "nuts", "width": 2, "alpha": 2.0, "teacher": t} for t in (0, 1)
    ]
    assert len(keys) == 3 + 3 * 2 + 2
    assert spec.build_config("tiny").estimated_bytes() < spec.build_config("paper").estimated_bytes() < 2**32


@pytest.mark.parametrize(
    ("setting", "word"),
    [
        ("channels=linear,probit", "probit"),
        ("alphas=0,1", "alphas"),
        ("curve_alpha_max=nan", "curve_alpha_max"),
        ("curve_alpha_max=-1", "curve_alpha_max"),
        ("sign_noise=-0.1", "sign_noise"),
        ("alphas=1,1", "alphas"),
        ("amp_d=10000000", "GiB"),
    ],
)
def test_bad_settings_fail_before_work(run_cli, setting, word):
    res = run_cli("run", "teacher-student", "--preset", "tiny", "--set", setting, out="bad")
    assert res.returncode != 0
    assert word in res.stderr and "Traceback" not in res.stderr
    assert not (res.out / "results.json").exists()
