"""The reference FEM solver converges at the a-priori rates; the experiment's CLI contract."""

import pytest

from sciprob.physics.experiments import PoissonConvergenceConfig, observed_rate
from sciprob.physics.fem import solve_manufactured_poisson


def test_quick_preset_rates_and_files(run_cli):
    res = run_cli("run", "fem-poisson-convergence", "--preset", "quick", "--device", "cpu", out="fpc")
    assert res.returncode == 0, res.stderr
    results = res.results()
    m = results["metrics"]
    assert abs(m["l2_rate"] - 2) <= 0.15
    assert abs(m["h1_rate"] - 1) <= 0.15
    assert abs(m["l2_rate_p2"] - 3) <= 0.2
    assert abs(m["h1_rate_p2"] - 2) <= 0.2
    assert not any("seconds" in k for k in m)
    assert "solve_seconds/P2/n=64" in results["timings"]
    assert (res.out / "report.md").exists() and (res.out / "convergence.png").exists()


def test_two_runs_give_identical_metrics(run_cli):
    first = run_cli("run", "fem-poisson-convergence", "--preset", "tiny", "--device", "cpu", out="a")
    second = run_cli("run", "fem-poisson-convergence", "--preset", "tiny", "--seed", "0", out="b")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert second.results()["metrics"] == first.results()["metrics"]  # LU of the same matrices: deterministic


def test_p2_is_far_more_accurate_than_p1():
    p1, p2 = solve_manufactured_poisson(16, 1), solve_manufactured_poisson(16, 2)
    assert p2.l2_error < p1.l2_error / 20 and p1.n_dofs == 17**2 and p2.n_dofs == 33**2


def test_observed_rate_of_a_power_law():
    import numpy as np

    h = np.array([0.1, 0.05, 0.025])
    assert observed_rate(h, 3.0 * h**2.5) == pytest.approx(2.5, abs=1e-12)


@pytest.mark.parametrize(("n", "degree"), [(1, 1), (2.5, 1), (4, 0)])
def test_bad_mesh_or_degree(n, degree):
    with pytest.raises(ValueError, match="n|degree"):
        solve_manufactured_poisson(n, degree)


def test_memory_estimate_refuses_huge_meshes(run_cli):
    assert PoissonConvergenceConfig(levels=(4, 8, 100_000)).estimated_bytes() > 24 * 2**30
    assert PoissonConvergenceConfig().estimated_bytes() < 2**30
    res = run_cli(
        "run", "fem-poisson-convergence", "--preset", "tiny", "--set", "levels=4,8,100000", out="huge"
    )
    assert res.returncode != 0 and "available" in res.stderr + res.stdout
    assert not (res.out / "results.json").exists()


def test_duplicate_degrees_are_rejected():
    with pytest.raises(ValueError, match="`degrees`"):
        PoissonConvergenceConfig(degrees=(1, 1))
