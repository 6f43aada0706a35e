"""The reference FEM solver converges at the a-priori rates; the experiment's CLI contract."""

import pytest

from sciprob.physics.fem import solve_manufactured_poisson


def test_quick_preset_rates_and_files(run_cli):
    res = run_cli("run", "fem-poisson-convergence", "--preset", "quick", "--device", "cpu", out="fpc")
    assert res.returncode == 0, res.stderr
    m = res.results()["metrics"]
    assert abs(m["l2_rate"] - 2) <= 0.15
    assert abs(m["h1_rate"] - 1) <= 0.15
    assert abs(m["l2_rate_p2"] - 3) <= 0.2
    assert abs(m["h1_rate_p2"] - 2) <= 0.2
    assert (res.out / "report.md").exists() and (res.out / "convergence.png").exists()
    again = run_cli("run", "fem-poisson-convergence", "--seed", "0", "--device", "cpu", out="fpc2")
    assert again.results()["metrics"] == m


def test_p2_is_far_more_accurate_than_p1():
    p1, p2 = solve_manufactured_poisson(16, 1), solve_manufactured_poisson(16, 2)
    assert p2.l2_error < p1.l2_error / 20 and p1.n_dofs == 17**2 and p2.n_dofs == 33**2


@pytest.mark.parametrize(("n", "degree"), [(1, 1), (2.5, 1), (4, 0)])
def test_bad_mesh_or_degree(n, degree):
    with pytest.raises(ValueError, match="n|degree"):
        solve_manufactured_poisson(n, degree)
