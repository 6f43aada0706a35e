"""The update-rules experiment: problems, batched runs, the loop contract, config errors, the tiny preset."""

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
from sciprob.learning.optim.trials import run_grid, train_digits
from sciprob.runtime import NonFiniteLossError


def test_test_functions_have_their_known_minima():
    # exact by construction: every term is (1 - 1)^2, (1 - 1^2)^2 or 10 - 10 cos(0) with cos(0) == 1.0
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


def _small_digits():
    x_train, y_train, x_test, y_test = digits_split(0.0, seed=0)
    return x_train[:256], y_train[:256], x_test[:100], y_test[:100]


def _digits(data, epochs, **kwargs):
    return train_digits(
        "adam",
        "hybrid",
        3e-3,
        0.03,
        data,
        epochs=epochs,
        batch_size=64,
        lr_in=1.0,
        g=0.5,
        momentum=0.9,
        **kwargs,
    )


def test_digits_training_resumed_from_its_checkpoint_continues_the_same_run(tmp_path):
    data = _small_digits()
    whole = _digits(data, 3, generator=torch.Generator().manual_seed(5))
    ckpt = tmp_path / "digits.pt"
    first = _digits(data, 1, generator=torch.Generator().manual_seed(5), checkpoint_path=ckpt)
    # a fresh generator in another state: the checkpoint's generator state must win
    rest = _digits(data, 3, generator=torch.Generator().manual_seed(99), checkpoint_path=ckpt, resume=True)
    assert len(rest.train_loss) == 4
    np.testing.assert_allclose(rest.train_loss[:2], first.train_loss, rtol=1e-12)
    # same arithmetic in the same order; the tolerance only allows for round-off
    np.testing.assert_allclose(rest.train_loss, whole.train_loss, rtol=1e-9)
    assert abs(rest.test_accuracy - whole.test_accuracy) < 1e-9
    # the generator, not the global RNG, fixes the initialisation
    torch.manual_seed(123)
    again = _digits(data, 1, generator=torch.Generator().manual_seed(5))
    np.testing.assert_allclose(again.train_loss, first.train_loss, rtol=1e-9)
    other = _digits(data, 1, generator=torch.Generator().manual_seed(6))
    assert abs(other.train_loss[0] - first.train_loss[0]) > 1e-6


def test_a_non_finite_input_stops_digits_training_with_an_error_naming_the_run():
    x_train, y_train, x_test, y_test = _small_digits()
    x_train = x_train.clone()
    x_train[7, 0, 3, 3] = math.inf
    with pytest.raises(NonFiniteLossError, match=r"digits CNN \(adam/hybrid\)"):
        _digits((x_train, y_train, x_test, y_test), 1, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match="digits CNN"):
        _digits((x_train, y_train, x_test, y_test), 1, generator=torch.Generator(), on_nonfinite="warn")


def test_grid_resume_and_the_all_diverged_policy(tmp_path):
    problem = nonconvex_problems(2)[0]
    theta0 = problem.initial(torch.tensor([0.5, 1.0]), (2, 2, 3), torch.Generator().manual_seed(1))
    args = ("adam", "multiplicative", theta0, (0.01, 0.1), 0, 30)
    kw = {"lr_in": 1.0, "g": 0.5, "momentum": 0.9}
    whole = run_grid(problem, *args, **kw)
    ckpt = tmp_path / "grid.pt"
    with pytest.raises(ValueError, match="checkpoint_path"):
        run_grid(problem, *args, **kw, checkpoint_every=10)
    run_grid(problem, *args[:-1], 30, **kw, checkpoint_path=ckpt, checkpoint_every=10)
    resumed = run_grid(problem, *args, **kw, checkpoint_path=ckpt, resume=True)
    np.testing.assert_allclose(resumed.final_loss, whole.final_loss, rtol=1e-12)
    np.testing.assert_array_equal(resumed.steps_to_target, whole.steps_to_target)  # integers
    # every trajectory diverges at lr 10 on SGD: the policy decides
    start = problem.initial(torch.tensor([1.0]), (1, 1, 3), torch.Generator().manual_seed(0))
    with pytest.raises(NonFiniteLossError, match="rosenbrock/sgd/additive grid"):
        run_grid(problem, "sgd", "additive", start, (10.0,), 0, 20, **kw)
    with pytest.warns(UserWarning, match="rosenbrock/sgd/additive grid"):
        res = run_grid(problem, "sgd", "additive", start, (10.0,), 0, 20, **kw, on_nonfinite="warn")
    assert np.isinf(res.final_loss).all() and (res.steps_to_target == res.budget).all()


def test_bad_configuration_is_rejected_before_running():
    spec = get_experiment("update-rules")
    with pytest.raises((ValueError, ConfigError), match="hybrid_g"):
        spec.build_config("tiny", {"hybrid_g": "1.5"})
    with pytest.raises((ValueError, ConfigError), match="optimizers"):
        spec.build_config("tiny", {"optimizers": "sgd,lbfgs"})
    with pytest.raises((ValueError, ConfigError), match="default_scale"):
        spec.build_config("quick", {"default_scale": "0.5"})
    for key, value in [("convex_tolerance", "-0.01"), ("cnn_target", "0"), ("momentum", "1.5")]:
        with pytest.raises((ValueError, ConfigError), match=key):
            spec.build_config("tiny", {key: value})
    for key, value in [("lrs", "inf"), ("momentum", "nan"), ("lr_in", "nan")]:
        with pytest.raises((ValueError, ConfigError), match=key):
            spec.build_config("tiny", {key: value})


def test_memory_estimate_grows_with_the_grid_and_refuses_an_oversized_one(run_cli):
    spec = get_experiment("update-rules")
    tiny, quick = spec.build_config("tiny"), spec.build_config("quick")
    assert tiny.estimated_bytes() <= quick.estimated_bytes() < 2**30
    toys = spec.build_config("quick", {"problems": "logreg"})
    more = spec.build_config("quick", {"problems": "logreg", "starts": "16"})
    assert 0 < toys.estimated_bytes() < more.estimated_bytes()
    big = spec.build_config("quick", {"starts": str(10**7), "steps": "100000"})
    assert big.estimated_bytes() >= 8 * 4 * 3 * 10**7 * 100_001  # the float64 loss history alone
    res = run_cli(
        "run",
        "update-rules",
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--set",
        "starts=10000000",
        "--set",
        "steps=100000",
        out="big",
    )
    assert res.returncode != 0
    assert "GiB" in res.stderr and "Traceback" not in res.stderr
    assert not (res.out / "results.json").exists()


def test_tiny_preset_through_the_cli(run_cli):
    res = run_cli("run", "update-rules", "--preset", "tiny", "--device", "cpu", out="ur")
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = res.results()["metrics"]
    expected = set()
    for opt in ("sgd", "adam"):
        for rule in ("additive", "multiplicative", "hybrid"):
            for problem in ("logreg", "rosenbrock", "digits"):
                expected |= {f"steps_to_target/{problem}/{opt}/{rule}", f"final_loss/{problem}/{opt}/{rule}"}
            expected |= {f"lr_robustness/{p}/{opt}/{rule}" for p in ("logreg", "rosenbrock")}
            expected |= {f"accuracy/{p}/{opt}/{rule}" for p in ("digits", "digits_noisy")}
    assert set(metrics) == expected
    # one epoch of Adam on digits is already far better than chance (0.1)
    assert metrics["accuracy/digits/adam/additive"] > 0.3
    assert math.isfinite(metrics["final_loss/logreg/adam/hybrid"])
    # robustness is a fraction of the 2 lr x 2 scales x 2 starts = 8 runs of the grid
    for name, value in metrics.items():
        if name.startswith("lr_robustness/"):
            assert abs(value * 8 - round(value * 8)) < 1e-12, name
    # a pure multiplicative rule never changes a weight's sign: from N(0, s^2) starts it cannot reach
    # logistic regression's optimum (mixed signs), so it never gets there within 30 steps
    assert metrics["lr_robustness/logreg/adam/multiplicative"] == 0.0  # a count of 0 out of 8
    report = (res.out / "report.md").read_text()
    assert "Claim 1, faster training" in report and "Claim 2, more robust models" in report
    pngs = sorted(p.name for p in res.out.glob("*.png"))
    assert pngs == ["loss_curves.png", "robustness_logreg.png", "robustness_rosenbrock.png"]
    assert all((res.out / p).stat().st_size > 0 for p in pngs)
    timings = res.results()["timings"]
    assert timings["train_seconds/digits"] > 0 and "train_seconds/digits" not in metrics

    # a rerun with fewer problems over the same folder leaves no stale figure behind
    res = run_cli(
        "run",
        "update-rules",
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--set",
        "problems=logreg",
        "--overwrite",
        out="ur",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in res.out.glob("*.png")) == ["loss_curves.png", "robustness_logreg.png"]
    assert all(name.split("/")[1] == "logreg" for name in res.results()["metrics"])
