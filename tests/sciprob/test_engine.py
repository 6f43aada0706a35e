"""The run engine: units, seeds, cache and resume, run folders, reports rebuilt from disk."""

import json
import os
import stat
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from sciprob.config import ConfigError, param
from sciprob.engine.executors import UnitError
from sciprob.engine.keys import seed_of, unit_hash, unit_seed_sequence
from sciprob.engine.store import RunFolderError
from sciprob.experiments import REGISTRY, UnitResult, experiment, run_experiment
from sciprob.report import rebuild_report
from sciprob.runtime import NonFiniteLossError, check_finite

CALLS: list[dict] = []


@dataclass(frozen=True)
class GridConfig:
    n: int = param(4, "draws per unit")
    groups: tuple[str, ...] = param(("a", "b", "c"), "group names")
    fail_group: str = param("", "group whose unit diverges (tests)")

    def estimated_bytes(self) -> int:
        return self.n * 8


def _units(cfg):
    return [{"group": g, "run": r} for g in cfg.groups for r in range(2)]


def _combine(cfg, results, ctx):
    import matplotlib.figure

    fig = matplotlib.figure.Figure()
    fig.add_subplot().plot([r.metrics["draw"] for r in results])
    ctx.savefig(fig, "draws", "every unit's first draw")
    ctx.table(
        "Draws",
        "| unit | draw |\n|---|---|\n" + "\n".join(f"| {r.key} | {r.metrics['draw']:.4f} |" for r in results),
    )
    ctx.note("combined from the units")
    ctx.timings["slowest_unit"] = max(r.seconds for r in results)
    return {f"draw/{r.key['group']}/{r.key['run']}": r.metrics["draw"] for r in results} | {
        "mean": float(np.mean([r.artifacts["values"] for r in results]))
    }


@experiment(
    "test-grid",
    config=GridConfig,
    presets={"quick": {}, "paper": {"n": 64}},
    paper="none (engine test)",
    summary="random draws per unit",
    anchors={"mean": (0.5, "uniform mean")},
    units=_units,
    combine=_combine,
    devices=("cpu",),
)
def _grid_unit(cfg, unit):
    CALLS.append(dict(unit.key))
    if unit.key["group"] == cfg.fail_group:
        check_finite(float("nan"), step=3, where=f"unit {unit.key}")
    x = torch.rand(cfg.n)
    return UnitResult(
        metrics={"draw": float(x[0]), "numpy": float(unit.rng.random())},
        artifacts={"values": x.tolist()},
        timings={"seconds_inside": 0.0},
    )


def _run(tmp_path, name="a", **kwargs):
    kwargs.setdefault("executor", "serial")
    return run_experiment("test-grid", device="cpu", out=tmp_path / name, **kwargs)


def _snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_results_schema_and_report_rebuilt_byte_for_byte(tmp_path):
    res = _run(tmp_path, seed=3)
    out = tmp_path / "a"
    data = json.loads((out / "results.json").read_text())
    assert {
        "experiment",
        "preset",
        "seed",
        "config",
        "metrics",
        "anchors",
        "timings",
        "environment",
        "report",
        "invocations",
    } == set(data)
    assert data["experiment"] == "test-grid" and data["seed"] == 3 and data["config"]["n"] == 4
    assert data["anchors"]["mean"] == {"value": 0.5, "source": "uniform mean"}
    assert data["environment"]["device"] == "cpu"
    assert "slowest_unit" in data["timings"] and "slowest_unit" not in data["metrics"]
    units_seconds = sum(json.loads(p.read_text())["seconds"] for p in (out / "units").glob("*.json"))
    assert data["timings"]["compute_seconds"] >= units_seconds
    report = (out / "report.md").read_text()
    assert (
        "| `mean` |" in report
        and "uniform mean" in report
        and "![every unit's first draw](draws.png)" in report
    )
    assert "## Draws" in report and "combined from the units" in report and "## Invocations" in report
    assert (out / "draws.png").stat().st_size > 1000
    assert res.results["metrics"] == data["metrics"]
    (out / "report.md").write_text("stale")
    rebuild_report(out)
    assert (out / "report.md").read_text() == report


def test_unit_seeds_come_from_the_key_not_the_position():
    a = seed_of(unit_seed_sequence(0, {"dataset": "GunPoint", "run": 1}))
    b = seed_of(unit_seed_sequence(0, {"run": 1, "dataset": "GunPoint"}))
    assert a == b  # the key's order does not matter, only its content
    grid = [{"dataset": d, "run": r} for d in ("GunPoint", "ItalyPowerDemand") for r in range(50)]
    seeds = [seed_of(unit_seed_sequence(1000, k)) for k in grid]
    assert len(set(seeds)) == len(seeds)
    other_run_seed = {seed_of(unit_seed_sequence(0, k)) for k in grid}
    assert not other_run_seed & set(seeds)  # `--seed 1000` shares no unit seed with `--seed 0`


def test_adding_a_unit_keeps_the_others_metrics(tmp_path):
    two = _run(tmp_path, "two", overrides={"groups": "a,c"}).results["metrics"]
    three = _run(tmp_path, "three").results["metrics"]
    for key in ("draw/a/0", "draw/a/1", "draw/c/0", "draw/c/1"):
        assert two[key] == three[key]  # exact: the same seed gives the same bits
    assert three["draw/a/0"] != three["draw/a/1"] != three["draw/b/0"]


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path):
    a = _run(tmp_path, "a", seed=5).results["metrics"]
    b = _run(tmp_path, "b", seed=5).results["metrics"]
    c = _run(tmp_path, "c", seed=6).results["metrics"]
    assert a == b and a["draw/a/0"] != c["draw/a/0"]


def test_resume_reuses_exactly_the_finished_units(tmp_path):
    first = _run(tmp_path, seed=1).results["metrics"]
    stored = sorted((tmp_path / "a" / "units").glob("*.json"))
    stored[0].unlink()  # as if the run had been killed before this unit finished
    CALLS.clear()
    again = _run(tmp_path, seed=1, resume=True).results
    assert len(CALLS) == 1 and again["metrics"] == first
    assert [inv["units_run"] for inv in again["invocations"]] == [6, 1]
    assert again["invocations"][1]["units_reused"] == 5


@pytest.mark.parametrize(
    ("change", "named"),
    [({"seed": 2}, "seed"), ({"preset": "paper"}, "preset"), ({"overrides": {"n": "5"}}, "`n`")],
)
def test_resume_of_another_run_is_refused_and_touches_nothing(tmp_path, change, named):
    _run(tmp_path, seed=1)
    before = _snapshot(tmp_path / "a")
    kwargs = {"seed": 1, **change}
    with pytest.raises(RunFolderError, match=named):
        _run(tmp_path, resume=True, **kwargs)
    assert _snapshot(tmp_path / "a") == before


def test_a_finished_folder_is_not_overwritten_without_asking(tmp_path):
    _run(tmp_path)
    before = _snapshot(tmp_path / "a")
    with pytest.raises(RunFolderError, match="--overwrite"):
        _run(tmp_path)
    assert _snapshot(tmp_path / "a") == before
    (tmp_path / "a" / "stale_figure.png").write_bytes(b"old")
    _run(tmp_path, overwrite=True)
    assert not (tmp_path / "a" / "stale_figure.png").exists() and (tmp_path / "a" / "draws.png").exists()


def test_bad_output_folders_are_refused_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(stat.S_IRUSR | stat.S_IXUSR)
    CALLS.clear()
    try:
        for out, match in [
            (tmp_path / "file", "is an existing file"),
            ("", "empty"),
            (readonly / "run", "cannot be written"),
        ]:
            with pytest.raises(RunFolderError, match=match):
                run_experiment("test-grid", device="cpu", out=out, executor="serial")
    finally:
        readonly.chmod(stat.S_IRWXU)
    assert CALLS == []


def test_bad_seed_memory_and_device_are_refused_before_any_work(tmp_path):
    CALLS.clear()
    with pytest.raises(ConfigError, match="seed"):
        _run(tmp_path, seed=2**32)
    with pytest.raises(ConfigError, match="GiB"):
        _run(tmp_path, overrides={"n": str(2**62)})
    with pytest.raises(ConfigError, match="cpu only"):
        run_experiment("test-grid", device="cuda", out=tmp_path / "b")
    assert CALLS == [] and not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_unreadable_unit_file_names_the_file(tmp_path):
    _run(tmp_path)
    victim = sorted((tmp_path / "a" / "units").glob("*.json"))[0]
    for content in (b"", b'{"trunc', os.urandom(64), b'["foreign"]'):
        victim.write_bytes(content)
        with pytest.raises(RunFolderError, match=victim.name):
            _run(tmp_path, resume=True)


def test_a_diverging_unit_stops_the_run_naming_it_and_keeps_finished_units(tmp_path):
    with pytest.raises(UnitError, match=r"'group': 'b'.*NonFiniteLossError"):
        _run(tmp_path, overrides={"fail_group": "b"})
    assert len(list((tmp_path / "a" / "units").glob("*.json"))) == 2  # group a's two runs
    assert not (tmp_path / "a" / "results.json").exists()
    assert not list((tmp_path / "a").rglob("*.tmp"))


def test_check_finite_policy():
    assert check_finite(1.5, step=1) == 1.5
    with pytest.raises(NonFiniteLossError, match="step 7"):
        check_finite(float("inf"), step=7)
    with pytest.warns(UserWarning, match="nan"):
        check_finite(float("nan"), step=1, policy="warn")
    with pytest.raises(ValueError, match="on_nonfinite"):
        check_finite(float("nan"), step=1, policy="ignore")


def test_outputs_get_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        from sciprob.runtime import atomic

        atomic._UMASK = None
        atomic.atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
        atomic._UMASK = None
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o640
    _run(tmp_path)
    expected = 0o666 & ~old
    for name in ("results.json", "report.md", "run.json", "draws.png"):
        assert stat.S_IMODE((tmp_path / "a" / name).stat().st_mode) == expected


def test_resume_without_out_never_picks_another_presets_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    quick = run_experiment("test-grid", device="cpu", executor="serial").out_dir
    paper = run_experiment("test-grid", preset="paper", device="cpu", executor="serial", resume=True).out_dir
    assert paper != quick and json.loads((paper / "run.json").read_text())["preset"] == "paper"
    again = run_experiment("test-grid", device="cpu", executor="serial", resume=True)
    assert again.out_dir == quick and again.results["invocations"][-1]["units_run"] == 0


def test_unit_hash_changes_with_every_part():
    base = unit_hash("x", {"a": 1}, 0, {"k": 1})
    assert (
        len(
            {
                base,
                unit_hash("y", {"a": 1}, 0, {"k": 1}),
                unit_hash("x", {"a": 2}, 0, {"k": 1}),
                unit_hash("x", {"a": 1}, 1, {"k": 1}),
                unit_hash("x", {"a": 1}, 0, {"k": 2}),
            }
        )
        == 5
    )


def teardown_module():
    REGISTRY.pop("test-grid", None)
