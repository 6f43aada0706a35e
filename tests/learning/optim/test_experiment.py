"""The update-rules experiment: problems, batched runs, config errors, and the tiny preset end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciprob.config import ConfigError
from sciprob.experiments import get_experiment
from sciprob.learning.optim.problems import (
    ackley,
    digits_split,
    least_squares,
    nonconvex_problems,
    rastrigin,
    rosenbrock,
)
from sciprob.learning.optim.trials import run_grid


def test_test_functions_have_their_known_minima():
    assert float(rosenbrock(torch.ones(3, dtype=torch.float64))) == 0.0
    assert float(rastrigin(torch.zeros(4, dtype=torch.float64))) == 0.0
    assert abs(float(ackley(torch.zeros(2, dtype=torch.float64)))) < 1e-12
    # Rastrigin's nearest local minimum (one coordinate near 1) sits above the target 0.5
    assert float(rastrigin(torch.tensor([0.995, 0.0], dtype=torch.float64))) > 0.9
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ackley(t).sum(), (x,))


def test_least_squares_target_sits_between_optimum_and_origin():
    problem = least_squares(tolerance=0.01)
    a_loss_at_zero = float(problem.loss(torch.zeros(problem.dim, dtype=torch.float64)))
    assert 0 < problem.target < 0.05 * a_loss_at_zero


def test_batched_grid_equals_separate_runs():
    # the batching relies on element-wise optimizers: each start must evolve on its own
    problem = nonconvex_problems(2)[0]
    gen = torch.Generator().manual_seed(0)
    theta0 = problem.initial(torch.tensor([0.5]), (1, 1, 3), gen)
    batched = run_grid(problem, "adam", "hybrid", theta0, (0.01,), 0, 40, lr_in=1.0, g=0.5, momentum=0.9)
    for k in range(3):
        single = run_grid(
            problem, "adam", "hybrid", theta0[:, :, k : k + 1], (0.01,), 0, 40, lr_in=1.0, g=0.5, momentum=0.9
        )
        np.testing.assert_allclose(single.final_loss[0, 0, 0], batched.final_loss[0, 0, k], rtol=1e-12)


def test_label_noise_flips_the_requested_fraction_to_other_classes():
    _, clean, _, test = digits_split(0.0, seed=0)
    _, noisy, _, test2 = digits_split(0.2, seed=0)
    assert torch.equal(test, test2)
    changed = (clean != noisy).float().mean()
    assert abs(float(changed) - 0.2) < 0.03


def test_bad_configuration_is_rejected_before_running():
    spec = get_experiment("update-rules")
    with pytest.raises((ValueError, ConfigError), match="hybrid_g"):
        spec.build_config("tiny", {"hybrid_g": "1.5"})
    with pytest.raises((ValueError, ConfigError), match="optimizers"):
        spec.build_config("tiny", {"optimizers": "sgd,lbfgs"})
    with pytest.raises((ValueError, ConfigError), match="default_scale"):
        spec.build_config("quick", {"default_scale": "0.5"})


def test_tiny_preset_through_the_cli(run_cli):
    res = run_cli("run", "update-rules", "--preset", "tiny", "--device", "cpu", out="ur")
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = res.results()["metrics"]
    for opt in ("sgd", "adam"):
        for rule in ("additive", "multiplicative", "hybrid"):
            for problem in ("logreg", "rosenbrock", "digits"):
                assert f"steps_to_target/{problem}/{opt}/{rule}" in metrics
                assert f"final_loss/{problem}/{opt}/{rule}" in metrics
            assert 0 <= metrics[f"lr_robustness/logreg/{opt}/{rule}"] <= 1
            assert 0 <= metrics[f"accuracy/digits_noisy/{opt}/{rule}"] <= 1
    # one epoch of Adam on digits is already far better than chance (0.1)
    assert metrics["accuracy/digits/adam/additive"] > 0.3
    assert math.isfinite(metrics["final_loss/logreg/adam/hybrid"])
    report = (res.out / "report.md").read_text()
    assert "Claim 1, faster training" in report and "Claim 2, more robust models" in report
    assert (res.out / "loss_curves.png").stat().st_size > 0
    assert (res.out / "robustness_logreg.png").stat().st_size > 0
