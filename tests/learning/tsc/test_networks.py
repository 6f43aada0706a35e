import numpy as np
import pytest
import torch

from sciprob.learning.tsc import (
    FCN,
    MCDCNN,
    MCNN,
    MLP,
    RECIPES,
    TWIESN,
    Encoder,
    InceptionNetwork,
    InceptionTimeEnsemble,
    ResNet,
    TimeCNN,
    TLeNet,
    class_activation_map,
    fit_classifier,
    get_architecture,
    train_network,
    warp_and_slice,
    window_slices,
    window_warp,
)
from sciprob.learning.tsc.augment import tlenet_plan


def _nets(c, length, k):
    return {
        "mlp": MLP(c, length, k),
        "fcn": FCN(c, k),
        "resnet": ResNet(c, k),
        "encoder": Encoder(c, length, k),
        "timecnn": TimeCNN(c, length, k),
        "mcdcnn": MCDCNN(c, length, k),
        "tlenet": TLeNet(c, length, k),
        "mcnn": MCNN(c, length, k, original_length=length),
        "inception": InceptionNetwork(c, k),
    }


@pytest.mark.parametrize(("channels", "length"), [(1, 150), (6, 24)])
def test_every_network_maps_series_to_logits(channels, length):
    torch.manual_seed(0)
    x = torch.randn(3, channels, length)
    for name, net in _nets(channels, length, 4).items():
        net.eval()
        out = net(x)
        assert out.shape == (3, 4), name
        assert torch.isfinite(out).all(), name


def test_review_configurations():
    fcn = FCN(1, 2)
    assert [m.out_channels for m in fcn.modules() if isinstance(m, torch.nn.Conv1d)] == [128, 256, 128]
    assert [m.kernel_size[0] for m in fcn.modules() if isinstance(m, torch.nn.Conv1d)] == [8, 5, 3]
    inc = InceptionNetwork(3, 2)
    assert len(inc.modules_) == 6 and len(inc.shortcuts) == 2
    assert [c.kernel_size[0] for c in inc.modules_[0].convs] == [40, 20, 10]
    assert isinstance(
        InceptionNetwork(1, 2).modules_[0].bottleneck, torch.nn.Identity
    )  # no bottleneck for 1 channel
    assert RECIPES["fcn"].batch_for(50) == 5 and RECIPES["resnet"].batch_for(1000) == 64
    assert RECIPES["mlp"].batch_for(67) == 6 and RECIPES["encoder"].batch_for(5) == 5


def test_cam_time_average_plus_bias_is_the_logit():
    torch.manual_seed(1)
    x = torch.randn(4, 2, 30)
    for net in (FCN(2, 3), ResNet(2, 3), InceptionNetwork(2, 3)):
        net.eval()
        cam = class_activation_map(net, x.numpy(), target=np.array([0, 1, 2, 1]))
        logits = net(x).detach().numpy()
        expected = logits[np.arange(4), [0, 1, 2, 1]] - net.head.bias.detach().numpy()[[0, 1, 2, 1]]
        np.testing.assert_allclose(cam.mean(1), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(TypeError, match="GAP network"):
        class_activation_map(MLP(2, 30, 3), x.numpy())


def test_ensemble_averages_member_probabilities():
    torch.manual_seed(2)
    members = [InceptionNetwork(1, 3).eval() for _ in range(2)]
    ens = InceptionTimeEnsemble(members).eval()
    x = torch.randn(5, 1, 20)
    expected = (torch.softmax(members[0](x), -1) + torch.softmax(members[1](x), -1)) / 2
    torch.testing.assert_close(torch.softmax(ens(x), -1), expected, rtol=1e-5, atol=1e-6)


def test_window_slices_and_warping():
    X = np.arange(2 * 1 * 6, dtype=float).reshape(2, 1, 6)
    slices, k = window_slices(X, 4)
    assert k == 3 and slices.shape == (6, 1, 4)
    np.testing.assert_array_equal(slices[4, 0], X[1, 0, 1:5])
    assert window_warp(X, 0.5).shape == (2, 1, 12)
    np.testing.assert_allclose(window_warp(X, 2.0)[0, 0], X[0, 0, ::2])
    ratios, slice_len = tlenet_plan(150, 50)
    assert ratios == (0.5, 1.0, 2.0) and slice_len == 15
    _, owner = warp_and_slice(np.zeros((3, 1, 150)), ratios, slice_len)
    assert np.bincount(owner).tolist() == [(300 - 14) + (150 - 14) + (75 - 14)] * 3


def _toy(n=40, length=32, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    y = np.arange(n) % 2
    X = np.where(y[:, None] == 0, np.sin(2 * np.pi * 2 * t), np.sign(np.sin(2 * np.pi * 2 * t)))
    X = X + 0.3 * rng.normal(size=X.shape)
    return X[:, None, :].astype(np.float32), y


def test_selection_keeps_the_lowest_training_loss():
    torch.manual_seed(0)
    X, y = _toy()
    res = train_network(FCN(1, 2), RECIPES["fcn"], X, y, epochs=6)
    assert res.best_epoch == int(np.argmin(res.history["loss"])) + 1
    assert len(res.history["lr"]) == 6


def test_checkpoint_resume_matches_an_uninterrupted_run(tmp_path):
    X, y = _toy()
    torch.manual_seed(3)
    straight = train_network(FCN(1, 2), RECIPES["fcn"], X, y, epochs=4)
    torch.manual_seed(3)
    ckpt = tmp_path / "fcn.pt"
    train_network(FCN(1, 2), RECIPES["fcn"], X, y, epochs=2, checkpoint_path=ckpt, checkpoint_every=1)
    torch.manual_seed(99)  # a resumed run restores the RNG state of the checkpoint
    resumed = train_network(FCN(1, 2), RECIPES["fcn"], X, y, epochs=4, checkpoint_path=ckpt, resume=True)
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], rtol=1e-5)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["fcn", "resnet", "mlp"])
def test_networks_learn_an_easy_problem(name):
    torch.manual_seed(0)
    X, y = _toy()
    Xt, yt = _toy(seed=1)
    clf = fit_classifier(name, X, y, epochs=15, rng=np.random.default_rng(0))
    assert np.mean(clf.predict_proba(Xt).argmax(1) == yt) >= 0.9


@pytest.mark.parametrize("name", ["encoder", "timecnn", "mcdcnn", "tlenet", "inceptiontime"])
def test_other_architectures_fit_and_predict(name):
    torch.manual_seed(0)
    X, y = _toy(n=20)
    arch = get_architecture(name)
    if name == "inceptiontime":
        arch.n_members = 2
    from sciprob.learning.tsc.classifiers import FitOptions

    clf = arch.fit(X, y, 2, FitOptions(epochs=2, rng=np.random.default_rng(0)))
    proba = clf.predict_proba(X)
    assert proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)


def test_mcnn_grid_search_picks_a_grid_point():
    torch.manual_seed(0)
    X, y = _toy(n=20, length=40)
    from sciprob.learning.tsc.classifiers import FitOptions, MCNNArchitecture

    clf = MCNNArchitecture(grid=((2, 0.1), (3, 0.2))).fit(
        X, y, 2, FitOptions(epochs=2, rng=np.random.default_rng(0))
    )
    assert (clf.info["pool_factor"], clf.info["filter_size"]) in {(2, 0.1), (3, 0.2)}
    assert clf.predict_proba(X).shape == (20, 2)


def test_twiesn_ridge_readout_separates_easy_classes():
    X, y = _toy(n=40, length=32)
    Xt, yt = _toy(seed=2)
    esn = TWIESN(
        1,
        2,
        reservoir=100,
        connectivity=0.5,
        input_scale=1.0,
        rho=0.9,
        ridge=0.05,
        rng=np.random.default_rng(0),
    )
    esn.fit_readout(torch.as_tensor(X), torch.as_tensor(y))
    assert float((esn(torch.as_tensor(Xt)).argmax(-1).numpy() == yt).mean()) >= 0.9
    W = esn.w.numpy()
    assert abs(np.max(np.abs(np.linalg.eigvals(W))) - 0.9) < 1e-6  # spectral radius rescaled


def test_unknown_model_name():
    with pytest.raises(ValueError, match="`model` must be one of"):
        get_architecture("lstm")
