"""The SVI loop: it reaches a known posterior, runs under JIT, checkpoints and resumes."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.optim import Adam, ClippedAdam

from sciprob.ppl import train_svi


def model(n: int) -> None:
    x = pyro.sample("x", dist.Normal(0.0, 1.0))
    with pyro.plate("data", n):
        pyro.sample("y", dist.Normal(x, 1.0), obs=torch.full((n,), 2.0))


def guide(n: int) -> None:
    loc = pyro.param("loc", torch.tensor(0.0))
    scale = pyro.param("scale", torch.tensor(1.0), constraint=dist.constraints.positive)
    pyro.sample("x", dist.Normal(loc, scale))


@pytest.mark.parametrize("jit", [False, True])
def test_reaches_conjugate_posterior(jit):
    # x ~ N(0,1), y_i ~ N(x,1), y = 2 (n = 3 times)  =>  posterior N(6/4, 1/4)
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    hist = train_svi(
        model,
        guide,
        ClippedAdam({"lr": 0.05, "lrd": 0.99}),
        steps=500,
        model_kwargs={"n": 3},
        jit=jit,
        num_particles=4,
    )
    assert len(hist.losses) == 500 and hist.steps == 500
    assert abs(pyro.param("loc").item() - 1.5) < 0.1
    assert abs(pyro.param("scale").item() - 0.5) < 0.1


def test_checkpoint_and_resume(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    pyro.clear_param_store()
    train_svi(
        model,
        guide,
        Adam({"lr": 0.05}),
        steps=30,
        model_kwargs={"n": 3},
        checkpoint_path=ckpt,
        checkpoint_every=10,
    )
    loc_30 = pyro.param("loc").item()
    pyro.clear_param_store()
    hist = train_svi(
        model, guide, Adam({"lr": 0.05}), steps=30, model_kwargs={"n": 3}, checkpoint_path=ckpt, resume=True
    )
    assert hist.steps == 30 and len(hist.losses) == 30  # nothing left to do
    assert pyro.param("loc").item() == pytest.approx(loc_30)
    hist = train_svi(
        model, guide, Adam({"lr": 0.05}), steps=40, model_kwargs={"n": 3}, checkpoint_path=ckpt, resume=True
    )
    assert hist.steps == 40 and len(hist.losses) == 40


def test_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        train_svi(model, guide, Adam({"lr": 0.05}), steps=-1)
    with pytest.raises(ValueError, match="checkpoint_every"):
        train_svi(model, guide, Adam({"lr": 0.05}), steps=1, checkpoint_every=0)
