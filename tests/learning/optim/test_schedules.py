"""Schedules of the hybrid mixing weight g."""

from __future__ import annotations

import pytest
import torch

from sciprob.learning.optim import ExponentialGSchedule, LinearGSchedule, RandomGSchedule, UpdateRule


def _opt(g: float = 0.5) -> UpdateRule:
    w, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(1))
    return UpdateRule(torch.optim.SGD([{"params": [w]}, {"params": [b], "g": 0.8}], lr=0.1), "hybrid", g=g)


def _gs(opt: UpdateRule) -> list[float]:
    return [group["g"] for group in opt.param_groups]


def test_exponential_schedule_follows_g0_to_the_k_after_patience():
    opt = _opt()
    sched = ExponentialGSchedule(opt, patience=2)
    seen = [_gs(opt)]
    for _ in range(4):
        sched.step()
        seen.append(_gs(opt))
    # g0 = 0.5 gives powers of two, exact in binary; 0.8**k is not, hence approx
    assert seen == [
        [1.0, 1.0],
        [1.0, 1.0],
        [0.5, 0.8],
        [0.25, pytest.approx(0.64)],
        [0.125, pytest.approx(0.512)],
    ]


def test_inverse_exponential_schedule_starts_additive():
    opt = _opt()
    sched = ExponentialGSchedule(opt, patience=1, inverse=True)
    assert _gs(opt) == [0.0, 0.0]
    sched.step()
    assert _gs(opt) == [0.5, pytest.approx(0.8)]
    sched.step()
    assert _gs(opt) == [0.75, pytest.approx(0.96)]


def test_linear_schedule_reaches_final_and_stays():
    opt = _opt()
    sched = LinearGSchedule(opt, final=0.0, epochs=2)
    sched.step()
    assert _gs(opt) == [0.25, pytest.approx(0.4)]
    sched.step()
    sched.step()
    assert _gs(opt) == [0.0, 0.0]


def test_random_schedule_state_dict_restores_the_draws():
    opt = _opt()
    sched = RandomGSchedule(opt, patience=1, seed=3)
    assert _gs(opt) == [1.0, 1.0]
    sched.step()
    saved = sched.state_dict()
    current = _gs(opt)
    draws = []
    for _ in range(6):
        sched.step()
        draws.append(_gs(opt))
    assert all(g in (0.0, 1.0) for row in draws for g in row)
    assert len({tuple(row) for row in draws}) > 1
    other = _opt()
    resumed = RandomGSchedule(other, seed=99)
    resumed.load_state_dict(saved)
    assert resumed.optimizer is other and _gs(other) == current
    again = []
    for _ in range(6):
        resumed.step()
        again.append(_gs(other))
    assert again == draws


def test_schedule_errors():
    with pytest.raises(TypeError, match="UpdateRule"):
        ExponentialGSchedule(torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1))
    with pytest.raises(ValueError, match="`final`"):
        LinearGSchedule(_opt(), final=1.5, epochs=3)
    with pytest.raises(ValueError, match="`patience`"):
        ExponentialGSchedule(_opt(), patience=-1)
