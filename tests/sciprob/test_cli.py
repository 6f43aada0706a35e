"""Command-line error paths: one line naming the problem, non-zero exit, no work done."""

import subprocess
import sys

import pytest

BAD_RUNS = [
    (["run", "no-such-experiment"], "no-such-experiment"),
    (["run", "fem-poisson-convergence", "--preset", "huge"], "huge"),
    (["run", "fem-poisson-convergence", "--set", "nonsense=3"], "nonsense"),
    (["run", "fem-poisson-convergence", "--set", "fit_levels=three"], "fit_levels"),
    (["run", "fem-poisson-convergence", "--set", "levels=4,x"], "levels"),
    (["run", "fem-poisson-convergence", "--set", "levels"], "levels"),
    (["run", "fem-poisson-convergence", "--set", "fit_levels=9"], "fit_levels"),
    (["run", "fem-poisson-convergence", "--device", "tpu"], "tpu"),
    (["tour", "--only", "fem-poisson-convergence,bogus"], "bogus"),
]


@pytest.mark.parametrize(("args", "named"), BAD_RUNS, ids=[" ".join(a) for a, _ in BAD_RUNS])
def test_user_errors_are_one_line_and_do_no_work(run_cli, tmp_path, args, named):
    res = run_cli(*args, out="out")
    assert res.returncode != 0
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error:") and named in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists(), "an output folder was created before the error"


def test_negative_seed_is_rejected(run_cli):
    res = run_cli("run", "fem-poisson-convergence", "--seed", "-1", out="out")
    assert res.returncode != 0 and "seed" in res.stderr and "Traceback" not in res.stderr


def test_list_names_every_catalogued_experiment(run_cli):
    from sciprob.catalog import CATALOG

    res = run_cli("list")
    assert res.returncode == 0, res.stderr
    for name in CATALOG:
        assert name in res.stdout


def test_show_lists_config_keys_with_help(run_cli):
    res = run_cli("show", "fem-poisson-convergence")
    assert res.returncode == 0, res.stderr
    assert "fit_levels (int, default 3): number of finest meshes" in res.stdout
    assert "paper:" in res.stdout


def test_help_does_not_load_torch_or_dolfinx():
    code = "import sys, sciprob.cli; print('torch' in sys.modules, 'dolfinx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_tour_runs_selected_experiments(run_cli):
    res = run_cli("tour", "--only", "fem-poisson-convergence", "--device", "cpu", out="tour")
    assert res.returncode == 0, res.stderr
    assert "tour report:" in res.stdout
    tour = (res.out / "tour.md").read_text()
    assert "fem-poisson-convergence" in tour and "| ok |" in tour
    assert (res.out / "fem-poisson-convergence" / "results.json").exists()
