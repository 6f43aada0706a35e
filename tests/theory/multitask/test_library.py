"""Data model, metrics and the alternating algorithm of sciprob.theory.multitask."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciprob.runtime import NonFiniteLossError
from sciprob.theory.multitask import (
    FAMILIES,
    MultiTaskReLU,
    alternating_step,
    downstream_errors,
    energy_in_subspace,
    head_step,
    make_tasks,
    principal_angles,
    random_subspace,
    recovered_dims,
    samples_needed,
    subspace_error,
    train_multitask,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _complement(M: torch.Tensor) -> torch.Tensor:  # noqa: N803
    """Orthonormal basis (d, d - r) of the orthogonal complement of span(M)."""
    q, _ = torch.linalg.qr(torch.cat([M, torch.eye(M.shape[0], dtype=M.dtype)], dim=1))
    return q[:, M.shape[1] : M.shape[0]]


# ----------------------------------------------------------------------------- data model


@pytest.mark.parametrize("family", FAMILIES)
def test_labels_invariant_to_rotations_of_the_orthogonal_complement(family):
    d, r, T = 12, 3, 6  # noqa: N806
    tasks = make_tasks(d, r, T, family, generator=_gen(0))
    x, y = tasks.sample(500, generator=_gen(1), dtype=torch.float64)
    B = _complement(tasks.M)  # noqa: N806
    Q, _ = torch.linalg.qr(torch.randn(d - r, d - r, generator=_gen(2), dtype=torch.float64))  # noqa: N806
    rotation = tasks.M @ tasks.M.T + B @ Q @ B.T  # identity on span(M), Q on its complement
    x_rot = x @ rotation.T
    assert (x_rot - x).abs().max() > 0.5  # the rotation really moves the inputs
    assert torch.equal(tasks.clean_labels(x_rot), y)
    # ... whereas moving x inside span(M) changes labels: they do depend on M^T x
    shift = torch.randn(T, 500, r, generator=_gen(3), dtype=torch.float64) @ tasks.M.T
    assert (tasks.clean_labels(x + 2 * shift) != y).float().mean() > 0.2
    # roughly balanced labels in every task
    assert ((y == 1).float().mean(dim=1) - 0.5).abs().max() < 0.3


def test_subspace_is_orthonormal_and_seeded():
    M = random_subspace(30, 4, generator=_gen(5))  # noqa: N806
    np.testing.assert_allclose(M.T @ M, np.eye(4), atol=1e-12)
    assert torch.equal(M, random_subspace(30, 4, generator=_gen(5)))
    assert not torch.equal(M, random_subspace(30, 4, generator=_gen(6)))


def test_label_noise_flips_the_requested_fraction():
    tasks = make_tasks(10, 2, 4, "linear", generator=_gen(0), noise=0.2)
    x, y = tasks.sample(5000, generator=_gen(1), dtype=torch.float64)
    flipped = (y != tasks.clean_labels(x)).double().mean()
    assert abs(float(flipped) - 0.2) < 0.02


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"d": 5, "r": 5, "T": 3}, "`r`"),
        ({"d": 5, "r": 7, "T": 3}, "`r`"),
        ({"d": 5, "r": 2, "T": 0}, "`T`"),
        ({"d": 5, "r": 2, "T": 3, "family": "quadratic"}, "`family`"),
        ({"d": 5, "r": 2, "T": 3, "noise": 0.5}, "`noise`"),
        ({"d": 5, "r": 1, "T": 3, "family": "xor"}, "xor"),
    ],
)
def test_bad_task_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_tasks(generator=_gen(0), **kwargs)


def test_bad_sample_size_and_types():
    tasks = make_tasks(6, 2, 2, generator=_gen(0))
    with pytest.raises(ValueError, match="`n`"):
        tasks.sample(0, generator=_gen(1))
    with pytest.raises(TypeError, match="`T`"):
        make_tasks(6, 2, 2.5, generator=_gen(0))
    with pytest.raises(ValueError, match="`M`"):
        make_tasks(6, 2, 2, generator=_gen(0), M=torch.ones(6, 2))


# ----------------------------------------------------------------------------- metrics


def test_principal_angle_metric_extremes_and_a_known_angle():
    d, r, m = 15, 3, 20  # noqa: N806
    M = random_subspace(d, r, generator=_gen(0))  # noqa: N806
    B = _complement(M)  # noqa: N806
    A = torch.randn(m, r, generator=_gen(1), dtype=torch.float64)  # noqa: N806
    inside = A @ M.T
    assert subspace_error(inside, M) < 1e-7
    assert principal_angles(inside, M).abs().max() < 1e-6
    assert energy_in_subspace(inside, M) == pytest.approx(1.0, abs=1e-12)
    assert recovered_dims(inside, M) == r
    outside = A @ B[:, :r].T
    assert subspace_error(outside, M) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(principal_angles(outside, M), [math.pi / 2] * r, atol=1e-6)
    assert energy_in_subspace(outside, M) == pytest.approx(0.0, abs=1e-12)
    assert recovered_dims(outside, M) == 0
    # tilt the last basis vector by theta towards the complement: error sin(theta), one angle theta
    theta = 0.3
    tilted = M.clone()
    tilted[:, -1] = math.cos(theta) * M[:, -1] + math.sin(theta) * B[:, 0]
    W = A @ tilted.T  # noqa: N806
    assert subspace_error(W, M) == pytest.approx(math.sin(theta), abs=1e-9)
    np.testing.assert_allclose(principal_angles(W, M), [0, 0, theta], atol=1e-6)


def test_ridge_classifier_matches_scikit_learn_and_learnt_features_beat_random():
    from sklearn.linear_model import RidgeClassifier
    from sklearn.preprocessing import StandardScaler

    d, r, m = 60, 2, 32  # noqa: N806
    tasks = make_tasks(d, r, 3, "linear", generator=_gen(0))
    W_true = torch.randn(m, r, generator=_gen(1), dtype=torch.float64) @ tasks.M.T  # noqa: N806
    W_rand = torch.randn(m, d, generator=_gen(2), dtype=torch.float64) / math.sqrt(d)  # noqa: N806
    err_true = downstream_errors(W_true, tasks, [10, 200], n_test=2000, generator=_gen(3), ridge=5.0)
    err_rand = downstream_errors(W_rand, tasks, [10, 200], n_test=2000, generator=_gen(3), ridge=5.0)
    assert err_true.shape == (2, 3)
    assert err_true[1].mean() < 0.1 < 0.25 < err_rand[1].mean()
    # same predictions as scikit-learn's RidgeClassifier on the same samples
    x, y = tasks.sample(200 + 2000, generator=_gen(3), dtype=torch.float64)
    feats = torch.relu(x @ W_true.T).numpy()
    sk = []
    for t in range(3):
        scaler = StandardScaler().fit(feats[t, :200])
        clf = RidgeClassifier(alpha=5.0).fit(scaler.transform(feats[t, :200]), y[t, :200].numpy())
        sk.append(np.mean(clf.predict(scaler.transform(feats[t, -2000:])) != y[t, -2000:].numpy()))
    np.testing.assert_allclose(err_true[1], sk, atol=1e-3)


def test_samples_needed():
    assert samples_needed([10, 20, 40], [0.3, 0.1, 0.05], 0.15) == 20
    assert samples_needed([10, 20, 40], [0.3, 0.2, 0.16], 0.15) is None


# ----------------------------------------------------------------------------- algorithm


def _small_problem(T=4, d=8, m=6, n=40):  # noqa: N803
    tasks = make_tasks(d, 2, T, "linear", generator=_gen(0))
    x, y = tasks.sample(n, generator=_gen(1), dtype=torch.float64)
    net = MultiTaskReLU(d, m, T, generator=_gen(2), dtype=torch.float64)
    return tasks, x, y, net


def test_head_step_from_zero_is_the_pseudo_contrastive_head():
    _, x, y, net = _small_problem()
    head_step(net, x, y, lr=0.7, steps=1, reset=True)
    # logistic l'(0) = -1/2, so a_t = lr * m * (1/n) sum_i (1/2) y_i relu(W x_i) / m
    expected = 0.7 / (2 * x.shape[1]) * torch.einsum("tn,tnm->tm", y, torch.relu(x @ net.W.detach().T))
    torch.testing.assert_close(net.heads.detach(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_alternating_update_with_heads_fixed_is_a_plain_gradient_step_on_W(loss):  # noqa: N802
    _, x, y, net = _small_problem()
    x_h, y_h, x_r, y_r = x[:, :20], y[:, :20], x[:, 20:], y[:, 20:]
    head_step(net, x_h, y_h, lr=0.5, loss=loss)  # the heads the round will use
    A = net.heads.detach().clone()  # noqa: N806
    W = net.W.detach().clone()  # noqa: N806
    lr, wd = 0.3, 0.01
    # analytic gradient of L = (1/T) sum_t (1/n) sum_i l(y f_t(x)), f_t = a_t^T relu(W x) / m
    T, n, m = x_r.shape[0], x_r.shape[1], W.shape[0]  # noqa: N806
    pre = x_r @ W.T  # (T, n, m)
    u = y_r * torch.einsum("tnm,tm->tn", torch.relu(pre), A) / m
    dl = -torch.sigmoid(-u) if loss == "logistic" else -(u < 1).double()
    coef = (dl * y_r)[..., None] * A[:, None, :] / m * (pre > 0)  # (T, n, m)
    grad = torch.einsum("tnm,tnd->md", coef, x_r) / (T * n)
    expected = W - lr * (m * grad + wd * W)
    # the round's second half, with the same heads (head step repeated from zero on the same data)
    alternating_step(net, x_h, y_h, x_r, y_r, lr=lr, head_lr=0.5, loss=loss, weight_decay=wd)
    torch.testing.assert_close(net.heads.detach(), A, rtol=0, atol=0)
    torch.testing.assert_close(net.W.detach(), expected, rtol=1e-10, atol=1e-12)
    # and torch.optim.SGD on the same objective takes the same step
    W2 = torch.nn.Parameter(W.clone())  # noqa: N806
    opt = torch.optim.SGD([W2], lr=lr * m, weight_decay=wd / m)
    out = torch.einsum("tnm,tm->tn", torch.relu(x_r @ W2.T), A) / m
    obj = torch.nn.functional.softplus(-y_r * out) if loss == "logistic" else torch.relu(1 - y_r * out)
    obj.mean().backward()
    opt.step()
    torch.testing.assert_close(net.W.detach(), W2.detach(), rtol=1e-10, atol=1e-12)


def test_many_tasks_recover_the_subspace_and_one_task_does_not():
    d, r, m, n = 30, 2, 32, 300  # noqa: N806
    errors, dims = {}, {}
    for T in (1, 30):  # noqa: N806
        tasks = make_tasks(d, r, T, "linear", generator=_gen(10))
        x, y = tasks.sample(n, generator=_gen(11))
        net = MultiTaskReLU(d, m, T, generator=_gen(12))
        start = subspace_error(net.W, tasks.M)
        hist = train_multitask(net, x, y, steps=150, lr=5.0, head_lr=1.0, weight_decay=0.005, M=tasks.M)
        errors[T], dims[T] = subspace_error(net.W, tasks.M), recovered_dims(net.W, tasks.M)
        assert start > 0.9  # random initialisation is far from span(M) in d = 30
        assert hist.subspace_error[-1] == pytest.approx(errors[T], abs=1e-6)
        if T == 30:
            assert energy_in_subspace(net.W, tasks.M) > 0.9
    assert errors[30] < 0.3  # sin of the largest angle: all r directions within ~17 degrees
    assert dims[30] == r
    assert dims[1] < r and errors[1] > 0.8


def test_joint_training_learns_too_and_loss_decreases():
    tasks = make_tasks(20, 2, 10, "linear", generator=_gen(0))
    x, y = tasks.sample(200, generator=_gen(1))
    net = MultiTaskReLU(20, 16, 10, generator=_gen(2))
    hist = train_multitask(net, x, y, steps=100, lr=5.0, head_lr=1.0, algorithm="joint", log_every=10)
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    assert subspace_error(net.W, tasks.M) < 0.6


def test_resume_from_checkpoint_gives_the_same_weights(tmp_path):
    tasks, x, y, _ = _small_problem()

    def fresh():
        return MultiTaskReLU(8, 6, 4, generator=_gen(2), dtype=torch.float64)

    kw = dict(lr=2.0, head_lr=1.0, weight_decay=0.01, M=tasks.M, log_every=5)
    straight = fresh()
    h1 = train_multitask(straight, x, y, steps=30, **kw)
    ckpt = tmp_path / "ckpt.pt"
    part = fresh()
    train_multitask(part, x, y, steps=15, checkpoint_path=ckpt, checkpoint_every=15, **kw)
    resumed = fresh()
    h2 = train_multitask(
        resumed, x, y, steps=30, checkpoint_path=ckpt, checkpoint_every=15, resume=True, **kw
    )
    torch.testing.assert_close(resumed.W, straight.W, rtol=0, atol=0)
    assert h2.steps == h1.steps and h2.subspace_error == pytest.approx(h1.subspace_error)


def test_bad_training_arguments():
    tasks, x, y, net = _small_problem()
    with pytest.raises(ValueError, match="`algorithm`"):
        train_multitask(net, x, y, steps=2, lr=1.0, head_lr=1.0, algorithm="maml")
    with pytest.raises(ValueError, match="`loss`"):
        train_multitask(net, x, y, steps=2, lr=1.0, head_lr=1.0, loss="squared")
    with pytest.raises(ValueError, match="`steps`"):
        train_multitask(net, x, y, steps=0, lr=1.0, head_lr=1.0)
    with pytest.raises(ValueError, match="`x`"):
        train_multitask(net, x[:2], y[:2], steps=2, lr=1.0, head_lr=1.0)
    with pytest.raises(ValueError, match="`head_fraction`"):
        train_multitask(net, x, y, steps=2, lr=1.0, head_lr=1.0, head_fraction=1.0)
    with pytest.raises(ValueError, match="`m`"):
        MultiTaskReLU(8, 0, 4, generator=_gen(0))
    with pytest.raises(ValueError, match="`W`"):
        subspace_error(torch.ones(1, 8), tasks.M)
    with pytest.raises(NonFiniteLossError):
        train_multitask(net, x * float("nan"), y, steps=2, lr=1.0, head_lr=1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_recovers_the_subspace():
    tasks = make_tasks(30, 2, 30, "linear", generator=_gen(10))
    x, y = tasks.sample(300, generator=_gen(11))
    assert torch.equal(tasks.clean_labels(x.double().cuda()).cpu(), tasks.clean_labels(x.double()))
    net = MultiTaskReLU(30, 32, 30, generator=_gen(12)).cuda()
    hist = train_multitask(
        net, x.cuda(), y.cuda(), steps=150, lr=5.0, head_lr=1.0, weight_decay=0.005, M=tasks.M
    )
    assert net.W.is_cuda and hist.subspace_error[-1] < 0.3
