"""The paper-scale reports kept in docs/results are rebuilt byte for byte from their results.json."""

import json
from pathlib import Path

import pytest

from sciprob.report import render_report

FOLDERS = sorted(
    p.parent for p in (Path(__file__).resolve().parents[2] / "docs" / "results").glob("*/results.json")
)


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_report_is_rebuilt_from_results(folder):
    results = json.loads((folder / "results.json").read_text())
    assert render_report(results) == (folder / "report.md").read_text()
    for filename, _ in results["report"]["figures"]:
        assert (folder / filename).is_file()
    assert not any(k.startswith("tokens_per_second/") for k in results["metrics"])


def test_relora_report_shows_its_real_compute_time():
    results = json.loads((FOLDERS[0].parent / "relora-lm-paper" / "results.json").read_text())
    train = sum(v for k, v in results["timings"].items() if k.startswith("train_seconds/"))
    assert results["timings"]["compute_seconds"] >= train > 2000  # 50 min of training, not "1.1 s"
    assert "*compute time:* 49.7 min" in (FOLDERS[0].parent / "relora-lm-paper" / "report.md").read_text()
