"""The ``exsum`` experiment through the command line (tiny preset), and its config checks."""

import math

import pytest

from sciprob.theory.exsum import ExplanationSummary

RULES = {
    "breast_cancer": ("worst_size", "small_z", "high_z", "low_z"),
    "ucr": ("near_peak", "high_level", "steep", "rest"),
}


def test_tiny_preset_writes_metrics_figures_and_rule_files(run_cli):
    res = run_cli("run", "exsum", "--preset", "tiny", "--device", "cpu", out="ex")
    assert res.returncode == 0, res.stderr
    metrics = res.results()["metrics"]
    for domain, rules in RULES.items():
        for rule in ("union", *rules):
            for sfx in ("", "/tuned"):
                for k in ("coverage", "validity", "sharpness"):
                    assert math.isfinite(metrics[f"{k}/{domain}/{rule}{sfx}"])
        # the union covers at least as much as any one rule where it is responsible, and the shares add up
        for sfx in ("", "/tuned"):
            shares = sum(metrics[f"coverage/{domain}/{r}{sfx}"] for r in rules)
            assert metrics[f"coverage/{domain}/union{sfx}"] <= shares + 1e-9
    # the tuned worst-size rule keeps the tuning constraints (validity >= 0.85, coverage >= 0.03)
    assert metrics["validity/breast_cancer/worst_size/tuned"] >= 0.85
    assert metrics["coverage/breast_cancer/worst_size/tuned"] >= 0.03
    report = (res.out / "report.md").read_text()
    for png in ("behaviour_breast_cancer.png", "behaviour_ucr.png"):
        assert (res.out / png).stat().st_size > 5000 and png in report
    assert "ExSum metrics before and after tuning" in report
    # each unit's saved rule file reproduces its tuned metrics
    files = sorted(res.out.glob("units/*/rules.json"))
    assert len(files) == 2
    for path in files:
        s = ExplanationSummary.load(path)
        domain = "breast_cancer" if "worst_size" in s.rules.names else "ucr"
        assert s.union_metrics().coverage == pytest.approx(
            metrics[f"coverage/{domain}/union/tuned"], abs=1e-12
        )
        assert s.union_metrics().validity == pytest.approx(
            metrics[f"validity/{domain}/union/tuned"], abs=1e-12
        )
        assert s.union_metrics().sharpness == pytest.approx(
            metrics[f"sharpness/{domain}/union/tuned"], abs=1e-12
        )


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("min_validity=1.5", "min_validity"),
        ("domains=breast_cancer,breast_cancer", "domains"),
    ],
)
def test_bad_settings_fail_before_work(run_cli, setting, named):
    res = run_cli("run", "exsum", "--preset", "tiny", "--set", setting, out="bad")
    assert res.returncode != 0 and named in res.stderr and "Traceback" not in res.stderr
    assert not res.out.exists()
