"""The `teacher-student` experiment through the command line."""

from __future__ import annotations


def test_tiny_preset_writes_results_report_and_figures(run_cli):
    res = run_cli("run", "teacher-student", "--preset", "tiny", "--device", "cpu", out="ts")
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = res.results()["metrics"]
    for channel in ("linear", "sign", "relu"):
        for a in ("0.5", "2"):
            for kind in ("se_gen_error", "amp_gen_error", "mutual_info"):
                assert f"{kind}/{channel}/alpha={a}" in metrics
    assert "nuts_gen_error/p=2/alpha=2" in metrics
    assert 0.1 < metrics["nuts_gen_error/p=2/alpha=2"] < 2.0
    assert abs(metrics["se_gen_error/sign/alpha=2"] - 0.1745) < 1e-3
    report = (res.out / "report.md").read_text()
    assert "R-hat" in report and ("did not mix" in report or "All NUTS runs mixed" in report)
    for png in ("glm_curves.png", "nuts_vs_glm.png", "gamp_trajectory.png"):
        assert (res.out / png).stat().st_size > 1000


def test_bad_settings_fail_before_work(run_cli):
    for setting, word in [("channels=linear,probit", "probit"), ("alphas=0,1", "alphas")]:
        res = run_cli("run", "teacher-student", "--preset", "tiny", "--set", setting, out="bad")
        assert res.returncode != 0
        assert word in res.stderr
