"""The run engine: results.json schema, report, determinism, resume folder."""

import json
from dataclasses import dataclass

import torch

from sciprob.config import param
from sciprob.experiments import REGISTRY, experiment, run_experiment


@dataclass(frozen=True)
class NoiseConfig:
    n: int = param(16, "number of draws")


@experiment("test-noise", config=NoiseConfig, presets={"quick": {}, "paper": {"n": 64}},
            paper="none (engine test)", summary="random draws", anchors={"mean": (0.5, "uniform mean")})
def _noise(cfg, ctx):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = torch.rand(cfg.n)
    fig, ax = plt.subplots()
    ax.plot(x.numpy())
    ctx.savefig(fig, "draws", "the draws")
    ctx.note("a note")
    return {"mean": x.mean(), "first": x[0]}


def test_results_schema_and_report(tmp_path):
    res = run_experiment("test-noise", seed=3, device="cpu", out=tmp_path / "a")
    data = json.loads((tmp_path / "a" / "results.json").read_text())
    assert set(data) == {"experiment", "preset", "seed", "config", "metrics", "anchors", "timings",
                         "environment"}
    assert data["experiment"] == "test-noise" and data["seed"] == 3 and data["config"] == {"n": 16}
    assert data["anchors"]["mean"] == {"value": 0.5, "source": "uniform mean"}
    env_keys = {"python", "torch", "pyro", "dolfinx", "gymnasium", "device", "git_commit"}
    assert env_keys <= set(data["environment"])
    report = (tmp_path / "a" / "report.md").read_text()
    assert "| `mean` |" in report and "uniform mean" in report and "![the draws](draws.png)" in report
    assert (tmp_path / "a" / "draws.png").stat().st_size > 1000
    assert res.results["metrics"] == data["metrics"]


def test_same_seed_same_metrics(tmp_path):
    a = run_experiment("test-noise", seed=5, device="cpu", out=tmp_path / "a").results["metrics"]
    b = run_experiment("test-noise", seed=5, device="cpu", out=tmp_path / "b").results["metrics"]
    c = run_experiment("test-noise", seed=6, device="cpu", out=tmp_path / "c").results["metrics"]
    assert a == b and a != c


def teardown_module():
    REGISTRY.pop("test-noise", None)
