import numpy as np
import pytest
import torch
from torch import nn

from sciprob.learning.reweighting import (
    FaMUS,
    LearningToReweight,
    MetaReweightTrainer,
    MetaWeightNet,
    clean_split,
    corrupt_labels,
    fit_bayesian_reweighting,
    weight_auc,
)
from sciprob.runtime import NonFiniteLossError


def _blobs(seed=0, n=400, noise=0.4):
    """Four well separated Gaussian blobs in 2-d; labels of the training part flipped."""
    rng = np.random.default_rng(seed)
    centres = np.array([[3, 3], [-3, 3], [3, -3], [-3, -3]], dtype=np.float32)
    y = rng.integers(0, 4, size=n)
    X = (centres[y] + rng.normal(size=(n, 2))).astype(np.float32)
    meta, train = clean_split(y, 5, rng=rng)
    noisy = corrupt_labels(y[train], noise, kind="flip", rng=rng)
    t = torch.as_tensor
    return t(X[train]), t(noisy.labels), noisy.noisy, t(X[meta]), t(y[meta])


def _mlp(seed):
    torch.manual_seed(seed)  # tests may seed globally; library code never does
    return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 4))


@pytest.mark.parametrize(
    ("make", "epochs", "momentum"),
    [(lambda net: (LearningToReweight(), None), 10, 0.0),
     (lambda net: (LearningToReweight(), FaMUS(net, k=1)), 10, 0.0),
     (lambda net: (MetaWeightNet(), None), 40, 0.9)],
    ids=["l2rw", "l2rw_famus", "mwnet"],
)  # fmt: skip
def test_learnt_weights_separate_clean_from_mislabelled_examples(make, epochs, momentum):
    X, y, noisy, Xm, ym = _blobs()
    net = _mlp(0)
    weighting, famus = make(net)
    lr = 0.1 if momentum else 0.05
    trainer = MetaReweightTrainer(
        net, torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum), weighting, famus=famus,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    result = trainer.fit(X, y, Xm, ym, epochs=epochs, batch_size=50, meta_batch_size=20)
    auc = weight_auc(result.weights, noisy)
    assert auc > 0.7, auc  # chance is 0.5 (measured: L2RW 0.84, L2RW + FaMUS 0.76, MW-Net 1.0)
    assert result.iterations == epochs * 8 and result.ms_per_iteration > 0
    if isinstance(weighting, MetaWeightNet):  # the learnt weight function decreases with the loss
        w = weighting.net(torch.tensor([[0.0], [2.0], [6.0]])).detach().reshape(-1)
        assert w[0] > w[1] > w[2]


def test_bayesian_reweighting_downweights_mislabelled_examples():
    X, y, noisy, _, _ = _blobs(1)
    net = _mlp(1)
    result, rw = fit_bayesian_reweighting(
        net, torch.optim.Adam(net.parameters(), lr=1e-2), X, y, epochs=30, batch_size=64,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert weight_auc(result.weights, noisy) > 0.75
    assert np.all((result.weights > 0) & (result.weights < 1))


def test_resume_continues_exactly(tmp_path):
    X, y, _, Xm, ym = _blobs(2, n=120)

    def trainer(seed):
        net = _mlp(seed)
        return MetaReweightTrainer(
            net, torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), MetaWeightNet(),
            famus=FaMUS(net, k=1), generator=torch.Generator().manual_seed(5),
        )  # fmt: skip

    full = trainer(3)
    torch.manual_seed(9)
    ref = full.fit(X, y, Xm, ym, epochs=3, batch_size=40)
    ckpt = tmp_path / "ckpt.pt"
    first = trainer(3)
    torch.manual_seed(9)
    first.fit(X, y, Xm, ym, epochs=2, batch_size=40, checkpoint_path=ckpt, checkpoint_every=1)
    second = trainer(4)  # other initial weights: everything must come from the checkpoint
    torch.manual_seed(123)
    out = second.fit(X, y, Xm, ym, epochs=3, batch_size=40, checkpoint_path=ckpt, resume=True)
    assert out.iterations == 3 and len(out.history["loss"]) == 3
    np.testing.assert_allclose(out.history["loss"], ref.history["loss"], rtol=1e-6)
    for a, b in zip(full.model.parameters(), second.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_nonfinite_loss_raises_or_warns():
    X, y, _, Xm, ym = _blobs(3, n=100)
    X[0, 0] = float("nan")
    net = _mlp(0)
    trainer = MetaReweightTrainer(net, torch.optim.SGD(net.parameters(), lr=0.1))
    with pytest.raises(NonFiniteLossError):
        trainer.fit(X, y, epochs=1, batch_size=50)
    with pytest.warns(Warning, match="not finite|nan"):
        trainer.fit(X, y, epochs=1, batch_size=50, on_nonfinite="warn")
