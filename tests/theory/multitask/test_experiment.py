"""The ``multitask-features`` experiment: tiny preset through the CLI, unit grid, computed verdicts."""

from __future__ import annotations

import pytest

from sciprob.experiments import RunContext, UnitResult
from sciprob.theory.multitask.experiments import MultitaskConfig, evaluates_downstream, multitask_units
from sciprob.theory.multitask.report import combine_multitask


def test_tiny_preset_through_cli(run_cli):
    res = run_cli(
        "run", "multitask-features", "--preset", "tiny", "--device", "cpu", "--executor", "serial", out="r"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = res.results()["metrics"]
    for t in (1, 3, 12):
        assert f"subspace_error/T={t}/d=20" in metrics
    assert "subspace_error/T=12/d=40" in metrics
    assert "subspace_error/joint/T=12/d=20" in metrics
    for feats in ("learnt", "random"):
        for d in (20, 40):
            for n in (10, 40, 160):
                assert 0.0 <= metrics[f"downstream_error/{feats}/d={d}/n={n}"] <= 1.0
    assert "single_task_recovered_dims" in metrics
    # even the tiny run learns: 12 tasks beat one, learnt features beat random ones downstream
    assert metrics["subspace_error/T=12/d=20"] < metrics["subspace_error/T=1/d=20"] - 0.2
    assert metrics["downstream_error/learnt/d=40/n=160"] < metrics["downstream_error/random/d=40/n=160"]
    report = (res.out / "report.md").read_text()
    assert "Claims of the abstract checked on this run" in report
    assert "Reconstructed choices" in report
    for name in ("recovery_vs_tasks.png", "downstream_samples.png", "energy_spectrum.png"):
        assert (res.out / name).stat().st_size > 0


def test_unit_grid_has_every_sweep_once():
    cfg = MultitaskConfig(tasks=(1, 5, 20), d_ref=40, dims=(20, 40, 80), widths=(16,), seeds=2)
    units = multitask_units(cfg)
    cells = {(u["T"], u["d"], u["m"], u["algorithm"]) for u in units}
    assert cells == {
        (1, 40, 64, "alternating"),
        (5, 40, 64, "alternating"),
        (20, 40, 64, "alternating"),  # shared by the T and d sweeps
        (20, 20, 64, "alternating"),
        (20, 80, 64, "alternating"),
        (20, 40, 16, "alternating"),
        (20, 40, 64, "joint"),
    }
    assert len(units) == 2 * len(cells)
    downstream = {(u["T"], u["d"]) for u in units if evaluates_downstream(cfg, u)}
    assert downstream == {(20, 20), (20, 40), (20, 80)}


@pytest.mark.parametrize(
    ("field", "value"),
    [("tasks", (0, 3)), ("dims", (3,)), ("r", 0), ("downstream_sizes", (40, 20)), ("target_error", 1.5)],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        MultitaskConfig(**{field: value})


def _cfg():
    return MultitaskConfig(
        r=3, tasks=(1, 3, 10, 30), d_ref=40, dims=(20, 40, 80), joint_baseline=False,
        downstream_sizes=(10, 40, 160, 640),
    )  # fmt: skip


def _result(T, d, err, dims, learnt=None, random=None):  # noqa: N803
    row = {"T": T, "d": d, "m": 64, "algorithm": "alternating", "run": 0, "n": 8 * d}
    row |= {"subspace_error": err, "energy": 1 - err, "recovered_dims": dims}
    row |= {"init_subspace_error": 0.99, "final_loss": 0.4}
    art = {"spectrum": [0.3, 0.3, 0.3, 0.1], "init_spectrum": [0.25] * 4}
    if learnt is not None:
        art["downstream_learnt"], art["downstream_random"] = learnt, random
    return UnitResult(rows=[row], artifacts=art, key={k: row[k] for k in ("T", "d", "m", "algorithm", "run")})


def _combine(tmp_path, t_errs, single_dims, learnt, random):
    cfg = _cfg()
    results = [
        _result(t, 40, e, single_dims if t == 1 else 3) for t, e in zip(cfg.tasks, t_errs, strict=True)
    ]
    results += [
        _result(30, d, t_errs[-1], 3, learnt[i], random[i]) for i, d in enumerate(cfg.dims) if d != 40
    ]
    results[3] = _result(30, 40, t_errs[-1], 3, learnt[1], random[1])
    ctx = RunContext(name="multitask-features", preset="test", device="cpu", out_dir=tmp_path)
    metrics = combine_multitask(cfg, results, ctx)
    claims = dict(ctx.tables)["Claims of the abstract checked on this run"]
    return metrics, [line.split("|")[2].strip() for line in claims.splitlines()[2:]]


def test_verdicts_follow_the_numbers(tmp_path):
    flat = [[0.3, 0.12, 0.08, 0.05]] * 3
    growing = [[0.3, 0.14, 0.1, 0.08], [0.45, 0.35, 0.2, 0.12], [0.5, 0.45, 0.4, 0.3]]
    metrics, verdicts = _combine(tmp_path / "a", [0.99, 0.9, 0.3, 0.12], 1, flat, growing)
    assert verdicts == ["**holds**"] * 3
    assert metrics["subspace_error/T=30/d=40"] == pytest.approx(0.12)
    assert metrics["downstream_error/random/d=80/n=640"] == pytest.approx(0.3)
    assert metrics["single_task_recovered_dims"] == 1
    # bad numbers: no recovery, learnt features needing more samples with d, one task enough
    worse = [[0.3, 0.12, 0.08, 0.05], [0.4, 0.3, 0.14, 0.1], [0.45, 0.4, 0.3, 0.14]]
    _, verdicts = _combine(tmp_path / "b", [0.99, 0.95, 0.9, 0.85], 3, worse, growing)
    assert verdicts == ["**does not hold**"] * 3
    # flat learnt features but random features that do not get worse with d
    _, verdicts = _combine(tmp_path / "c", [0.99, 0.9, 0.3, 0.12], 1, flat, [growing[0]] * 3)
    assert verdicts[1] == "**does not hold**"
    assert (tmp_path / "c" / "downstream_samples.png").stat().st_size > 0


@pytest.mark.slow
def test_quick_preset_supports_the_three_claims(run_cli):
    res = run_cli("run", "multitask-features", "--preset", "quick", "--device", "cpu", out="q", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = res.results()["metrics"]
    assert metrics["subspace_error/T=40/d=40"] < 0.25 < 0.9 < metrics["subspace_error/T=1/d=40"]
    assert metrics["single_task_recovered_dims"] < 3
    for d in (20, 40, 80, 160):
        assert metrics[f"downstream_error/learnt/d={d}/n=640"] < 0.1
    random = [metrics[f"downstream_error/random/d={d}/n=640"] for d in (20, 160)]
    assert random[1] > random[0] + 0.1
    report = (res.out / "report.md").read_text()
    assert report.count("| **holds** |") == 3
