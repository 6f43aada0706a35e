import copy

import pytest
import torch
from torch import nn

from sciprob.learning.reweighting import FaMUS, LearningToReweight, MetaReweightTrainer, MetaWeightNet


def _setup():
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
    X, y = torch.randn(30, 2), torch.arange(30) % 3
    Xm, ym = torch.randn(6, 2), torch.arange(6) % 3
    return net, X, y, Xm, ym


def test_model_without_trainable_parameters_is_refused():
    frozen = nn.Linear(2, 3).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        MetaReweightTrainer(frozen, torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), MetaWeightNet())
    with pytest.raises(ValueError, match="no trainable parameters"):
        FaMUS(nn.ReLU())


def test_wrong_kinds_are_refused():
    net, *_ = _setup()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="`model`"):
        MetaReweightTrainer(lambda x: x, opt)
    with pytest.raises(TypeError, match="`optimizer`"):
        MetaReweightTrainer(net, "sgd")
    with pytest.raises(TypeError, match="`weighting`"):
        MetaReweightTrainer(net, opt, "mwnet")
    with pytest.raises(ValueError, match="needs a `weighting`"):
        MetaReweightTrainer(net, opt, famus=FaMUS(net))
    with pytest.raises(ValueError, match="another model"):
        MetaReweightTrainer(net, opt, MetaWeightNet(), famus=FaMUS(nn.Linear(2, 3)))
    with pytest.raises(ValueError, match="not `model`'s"):
        MetaReweightTrainer(net, torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1))


@pytest.mark.parametrize("weighting", [MetaWeightNet, LearningToReweight])
def test_bad_clean_sets_fail_before_training(weighting):
    net, X, y, Xm, ym = _setup()
    before = copy.deepcopy(net.state_dict())
    trainer = MetaReweightTrainer(net, torch.optim.SGD(net.parameters(), lr=0.1), weighting())
    with pytest.raises(ValueError, match=r"no example of classes \[2\]"):
        trainer.fit(X, y, Xm, ym % 2, epochs=1)
    overlapping = torch.cat([Xm, X[:2]])
    with pytest.raises(ValueError, match="shares 2 examples"):
        trainer.fit(X, y, overlapping, torch.cat([ym, y[:2]]), epochs=1)
    with pytest.raises(ValueError, match="clean meta set"):
        trainer.fit(X, y, epochs=1)
    with pytest.raises(ValueError, match="`epochs`"):
        trainer.fit(X, y, Xm, ym, epochs=0)
    with pytest.raises(ValueError, match="`y`"):
        trainer.fit(X, y.float(), Xm, ym, epochs=1)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_bad_famus_settings_are_refused():
    net, *_ = _setup()
    with pytest.raises(ValueError, match="`k`"):
        FaMUS(net, k=0)
    with pytest.raises(ValueError, match="`scope`"):
        FaMUS(net, scope="top")
    assert FaMUS(net, scope="last", last_layers=1).always == [1]
