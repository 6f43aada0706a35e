"""The PINN and inverse-data experiments through the command line (tiny presets), and config errors."""

from __future__ import annotations

import pytest

from sciprob.physics.inverse_experiments import InverseDataConfig
from sciprob.physics.pinn_experiments import PINNHeatConfig


def test_pinn_heat_tiny_preset(run_cli):
    res = run_cli("run", "pddlvm-pinn-heat", "--preset", "tiny", "--device", "cpu", out="pinn")
    assert res.returncode == 0, res.stderr[-3000:]
    results = res.results()
    assert set(results["metrics"]) == {"forward_rel_l2", "inverse_nme", "forward_coverage_95"}
    t = results["timings"]
    ratio = t["fem_seconds_per_solve"] / t["model_seconds_per_solution"]
    assert t["speedup"] == pytest.approx(ratio, rel=1e-12)
    for png in ("forward.png", "extrapolation.png", "elbo.png"):
        assert (res.out / png).stat().st_size > 1000
    report = (res.out / "report.md").read_text()
    assert "three orders of magnitude" in report and "Held-out parameters" in report


def test_inverse_data_tiny_preset(run_cli):
    res = run_cli("run", "pddlvm-inverse-data", "--preset", "tiny", "--device", "cpu", out="inv")
    assert res.returncode == 0, res.stderr[-3000:]
    m = res.results()["metrics"]
    for name in ("posterior_coverage_95", "posterior_std_ratio", "posterior_mean_error"):
        assert name in m and f"{name}/sensors=3/noise=0.01" in m
        # the headline is the forward-KL q; the importance-weighted q and the ELBO q come alongside
        assert f"{name}/importance_weighted" in m and f"{name}/objective=elbo" in m
    assert 1 <= m["importance_ess_median"] <= 200
    assert m["posterior_coverage_95"] == m["posterior_coverage_95/sensors=6/noise=0.01"]
    # 20 data sets x 7 coordinates: the coverage is a count over 140
    assert (m["posterior_coverage_95"] * 140) == pytest.approx(
        round(m["posterior_coverage_95"] * 140), abs=1e-9
    )
    assert (res.out / "posterior_marginals.png").stat().st_size > 1000
    report = (res.out / "report.md").read_text()
    assert "Sensor and noise sweep" in report and "q, forward_kl, importance-weighted" in report


@pytest.mark.parametrize(
    ("cls", "overrides", "field"),
    [
        (InverseDataConfig, {"noise_levels": (0.01, -0.1)}, "noise_levels"),
        (InverseDataConfig, {"sensor_counts": (0,)}, "sensor_counts"),
        (PINNHeatConfig, {"eps_interior": -1e-2}, "eps_interior"),
        (PINNHeatConfig, {"nx": 5}, "nx"),
    ],
)
def test_bad_config_names_the_field(cls, overrides, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        cls(**overrides)


def test_negative_noise_fails_on_the_command_line_before_work(run_cli):
    res = run_cli("run", "pddlvm-inverse-data", "--preset", "tiny", "--set", "noise_levels=-0.1", out="neg")
    assert res.returncode != 0 and "noise_levels" in res.stderr + res.stdout
    assert not (res.out / "results.json").exists()


def test_memory_estimates_refuse_huge_grids():
    assert PINNHeatConfig(nx=100_000, nt=100_000).estimated_bytes() > 24 * 2**30
    assert PINNHeatConfig().estimated_bytes() < 8 * 2**30
    assert InverseDataConfig(n_bank=10**10, batch_size=10).estimated_bytes() > 24 * 2**30
