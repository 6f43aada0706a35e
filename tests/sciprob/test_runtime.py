"""Seeding, device choice, atomic writes, checkpoints, progress."""

import json
import logging
import os
import random

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

from sciprob.runtime import (
    ProgressBar,
    atomic_write_json,
    atomic_write_text,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
    seed_everything,
    track,
)


def _draws():
    return (random.random(), float(np.random.rand()), float(torch.rand(())),
            float(pyro.sample("x", dist.Normal(0.0, 1.0))))


def test_seed_everything_repeats_every_generator():
    seed_everything(123)
    first = _draws()
    seed_everything(123)
    assert _draws() == first
    seed_everything(124)
    assert _draws() != first


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(seed)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="tpu"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"a": np.float32(1.5), "b": torch.tensor([1, 2]), "c": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [1, 2], "c": "nan"}


def test_interrupted_json_write_keeps_previous_file(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"metric": 1.0})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"metric": 2.0, "bad": object()})
    assert json.loads(path.read_text()) == {"metric": 1.0}
    assert os.listdir(tmp_path) == ["results.json"]


def test_write_killed_before_rename_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "report.md"
    atomic_write_text(path, "old report")

    def interrupted(src, dst):
        raise KeyboardInterrupt  # the process is stopped between writing and renaming

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "new report " * 1000)
    monkeypatch.undo()
    assert path.read_text() == "old report"
    assert os.listdir(tmp_path) == ["report.md"]


def test_checkpoint_round_trip_restores_state_and_rng(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": net.state_dict(), "optim": opt.state_dict(), "step": 7})
    expected_next = torch.rand(5)

    torch.manual_seed(99)
    net2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(net2.parameters(), lr=0.1)
    state = load_checkpoint(path)
    net2.load_state_dict(state["model"])
    opt2.load_state_dict(state["optim"])
    assert state["step"] == 7 and "_rng" not in state
    for p, q in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(p, q)
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], opt2.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(torch.rand(5), expected_next)
    assert load_checkpoint(tmp_path / "missing.pt") is None


def test_progress_logs_lines_off_terminal(caplog):
    logger = logging.getLogger("sciprob")
    logger.propagate = True
    with caplog.at_level(logging.INFO, logger="sciprob"):
        with ProgressBar(40, "fit", enabled=False) as bar:
            for i in range(40):
                bar.update(loss=1.0 / (i + 1))
        assert list(track(range(3), "small", enabled=False)) == [0, 1, 2]
    lines = [r.getMessage() for r in caplog.records if "fit" in r.getMessage()]
    assert len(lines) == 20 and "40/40" in lines[-1] and "loss=0.025" in lines[-1]
