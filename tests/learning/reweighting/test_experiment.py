import json

import numpy as np

from sciprob.experiments import get_experiment
from sciprob.learning.reweighting._report import METHODS


def test_tiny_preset_through_the_cli(run_cli):
    res = run_cli(
        "run",
        "famus-noisy-labels",
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--executor",
        "serial",
        out="famus",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    results = res.results()
    metrics, timings = results["metrics"], results["timings"]
    units = [json.loads(p.read_text()) for p in (res.out / "units").glob("*.json")]
    assert sorted(u["key"]["method"] for u in units) == sorted(METHODS)
    for unit in units:
        m, r = unit["key"]["method"], unit["result"]
        # one run: the reported accuracy is that unit's best epoch, counted over the 100 test digits
        acc = metrics[f"accuracy/digits/sym60/{m}"]
        assert acc == r["metrics"]["best_accuracy"] == max(r["artifacts"]["accuracy"])
        assert abs(acc * 100 - round(acc * 100)) < 1e-9
        assert metrics[f"last_accuracy/digits/sym60/{m}"] == r["artifacts"]["accuracy"][-1]
        assert f"ms_per_iteration/digits/{m}" in timings and f"ms_per_iteration/digits/{m}" not in metrics
        # uniform noise at 60 % changes about 54 % of the labels of 10 classes
        assert abs(r["artifacts"]["realised_rate"] - 0.54) < 0.1
        if m != "ce":
            assert 0.0 <= metrics[f"weight_auc/digits/sym60/{m}"] <= 1.0
    for m in ("mwnet_famus", "l2rw_famus"):
        assert -1.0 <= metrics[f"meta_grad_cosine/digits/{m}"] <= 1.0
    report = (res.out / "report.md").read_text()
    assert "judged on this run" in report and "best epoch / last epoch" in report
    ratio = timings["ms_per_iteration/digits/mwnet_famus"] / timings["ms_per_iteration/digits/mwnet"]
    assert f"FaMUS takes {ratio:.2f}x" in report  # the verdict quotes this run's own timing
    for png in ("accuracy_vs_noise.png", "weight_histograms.png", "time_per_iteration.png"):
        assert (res.out / png).stat().st_size > 1000

    again = run_cli(
        "run", "famus-noisy-labels", "--preset", "tiny", "--device", "cpu", "--resume", out="famus"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.results()["metrics"] == metrics


def test_presets_and_config_checks():
    spec = get_experiment("famus-noisy-labels")
    paper = spec.build_config("paper")
    assert paper.seeds == 3 and set(paper.noises) == {"sym20", "sym40", "sym60", "asym40"}
    assert len(spec.unit_keys(paper)) == 2 * 4 * 6 * 3
    for bad in ({"methods": ("ce", "sgd")}, {"noises": ("sym90",)}, {"epochs": 0}):
        try:
            spec.build_config("tiny", bad)
        except ValueError as err:
            assert next(iter(bad)) in str(err)
        else:  # pragma: no cover - the config must refuse it
            raise AssertionError(f"{bad} was accepted")
    assert np.isfinite(paper.lr)
