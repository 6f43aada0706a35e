"""ReLoRA: optimizer reset, jagged cosine schedule, restarts, warm start and the high-rank claim."""

import math

import pytest
import torch
from torch import nn

from sciprob.learning.lowrank import (
    JaggedCosineLR,
    LlamaConfig,
    LlamaLM,
    ReLoRA,
    effective_weights,
    inject_lora,
    load_full_rank,
    lora_parameters,
    random_windows,
    reset_optimizer_state,
    update_spectra,
)


def _reference_multiplier(
    current_step,
    *,
    num_training_steps,
    first_warmup_steps,
    restart_warmup_steps,
    restart_every,
    min_lr_ratio,
    adjust_step,
):
    """Transcription of ``_get_cosine_schedule_with_multiple_warmups_lambda`` (Guitaricet/relora 176f376)."""
    if current_step < first_warmup_steps:
        return float(current_step) / float(max(1, first_warmup_steps))
    _current_step = current_step + adjust_step
    restart_step = _current_step % restart_every
    restart_number = _current_step // restart_every
    if restart_step < restart_warmup_steps and current_step >= restart_every:
        end_of_warmup_progress = float(
            restart_number * restart_every + restart_warmup_steps - first_warmup_steps
        ) / float(max(1, num_training_steps - first_warmup_steps))
        _cosine_decay = 0.5 * (1.0 + math.cos(math.pi * end_of_warmup_progress))
        warmup_lr_multiplier = min_lr_ratio + (1.0 - min_lr_ratio) * _cosine_decay
        return float(restart_step) / float(max(1, restart_warmup_steps)) * warmup_lr_multiplier
    progress = float(_current_step - first_warmup_steps) / float(
        max(1, num_training_steps - first_warmup_steps)
    )
    cosine_decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr_ratio + (1.0 - min_lr_ratio) * cosine_decay


@pytest.mark.parametrize("adjust", [0, 50])
def test_scheduler_reproduces_reference_multiplier(adjust):
    kw = dict(
        num_training_steps=1000,
        first_warmup_steps=40,
        restart_warmup_steps=20,
        restart_every=200,
        min_lr_ratio=0.1,
        adjust_step=adjust,
    )
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(3))], lr=2e-3)
    sched = JaggedCosineLR(
        opt,
        total_steps=1000,
        warmup_steps=40,
        restart_every=200,
        restart_warmup_steps=20,
        min_lr_ratio=0.1,
        adjust_step=adjust,
    )
    chosen = {0, 1, 20, 39, 40, 41, 199, 200, 201, 210, 219, 220, 221, 399, 400, 405, 600, 777, 999}
    seen = {}
    for step in range(1000):
        seen[step] = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
    for step in sorted(chosen):
        assert seen[step] == pytest.approx(2e-3 * _reference_multiplier(step, **kw), rel=1e-12, abs=1e-15), (
            step
        )
    if adjust == 0:
        assert seen[200] == seen[400] == 0.0  # the rate restarts from zero at every reset
        assert seen[220] == pytest.approx(
            2e-3 * _reference_multiplier(221, **kw), rel=0.02
        )  # back on the cosine


def test_scheduler_rejects_bad_arguments_and_round_trips():
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="`restart_warmup_steps`"):
        JaggedCosineLR(opt, 100, 10, 20, 20)
    with pytest.raises(ValueError, match="`warmup_steps`"):
        JaggedCosineLR(opt, 100, 30, 20, 5)
    with pytest.raises(ValueError, match="`min_lr_ratio`"):
        JaggedCosineLR(opt, 100, 10, 20, 5, min_lr_ratio=0.0)
    sched = JaggedCosineLR(opt, 100, 10, 20, 5)
    for _ in range(33):
        opt.step()
        sched.step()
    opt2 = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched2 = JaggedCosineLR(opt2, 100, 10, 20, 5)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == sched.get_last_lr()


def _adam_with_state(optimizer_cls=torch.optim.AdamW, **kw):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 40), nn.Linear(40, 8))
    inject_lora(model, ["1"], r=4)
    model[1].lora_B.data.normal_()  # non-zero B so that A gets gradients too
    opt = optimizer_cls(model.parameters(), lr=1e-2, **kw)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(16, 32)).pow(2).mean().backward()
        opt.step()
    return model, opt


@pytest.mark.parametrize("optimizer_cls", [torch.optim.Adam, torch.optim.AdamW])
def test_magnitude_reset_prunes_documented_fraction_and_leaves_other_state(optimizer_cls):
    model, opt = _adam_with_state(optimizer_cls)
    adapters = list(lora_parameters(model))
    others = [p for p in model.parameters() if all(p is not a for a in adapters)]
    before_other = {id(p): {k: v.clone() for k, v in opt.state[p].items()} for p in others}
    before_adapter = {id(p): {k: v.clone() for k, v in opt.state[p].items()} for p in adapters}
    stats = reset_optimizer_state(opt, adapters, mode="magnitude", ratio=0.9)
    for p in others:
        for k, v in opt.state[p].items():
            assert torch.equal(v, before_other[id(p)][k])
    for p in adapters:
        assert torch.equal(opt.state[p]["step"], before_adapter[id(p)]["step"])
        for key in ("exp_avg", "exp_avg_sq"):
            old, new = before_adapter[id(p)][key], opt.state[p][key]
            k = round(0.9 * old.numel())
            assert int((new == 0).sum()) == k
            kept = new != 0
            assert torch.equal(new[kept], old[kept])  # survivors untouched
            assert old.abs()[kept].min() >= old.abs()[~kept].max()  # and they are the largest
    assert stats.fraction == pytest.approx(0.9, abs=0.01)


def test_random_and_zero_resets():
    model, opt = _adam_with_state()
    adapters = list(lora_parameters(model))
    stats = reset_optimizer_state(
        opt, adapters, mode="random", ratio=0.5, generator=torch.Generator().manual_seed(0)
    )
    n = stats.total
    assert abs(stats.zeroed - 0.5 * n) < 4 * math.sqrt(0.25 * n)
    stats = reset_optimizer_state(opt, adapters, mode="zero")
    assert stats.zeroed == stats.total > 0


def test_reset_errors():
    model = nn.Linear(3, 3)
    with pytest.raises(NotImplementedError, match="SGD"):
        reset_optimizer_state(torch.optim.SGD(model.parameters(), lr=0.1), model.parameters())
    opt = torch.optim.Adam(model.parameters())
    with pytest.raises(ValueError, match="`ratio`"):
        reset_optimizer_state(opt, model.parameters(), ratio=1.5)
    with pytest.raises(ValueError, match="`mode`"):
        reset_optimizer_state(opt, model.parameters(), mode="prune")


def test_controller_restarts_on_schedule_and_keeps_function():
    model, opt = _adam_with_state()
    relora = ReLoRA(model, opt, reset_every=3, prune_ratio=0.9)
    x = torch.randn(4, 32)
    for step in range(1, 7):
        before = model(x).detach()
        restarted = relora.step()
        assert restarted == (step % 3 == 0)
        torch.testing.assert_close(model(x), before, atol=1e-5, rtol=0)
    assert relora.restarts == [3, 6] and relora.last_reset.fraction >= 0.9
    assert torch.count_nonzero(model[1].lora_B) == 0
    with pytest.raises(ValueError, match="not in `optimizer`"):
        ReLoRA(model, torch.optim.Adam(model[0].parameters()), reset_every=3)
    with pytest.raises(ValueError, match="no LoRALinear"):
        ReLoRA(nn.Linear(2, 2), torch.optim.Adam(nn.Linear(2, 2).parameters()), reset_every=3)
    with pytest.raises(ValueError, match="`reset_every`"):
        ReLoRA(model, opt, reset_every=0)


def test_load_full_rank_maps_plain_keys_onto_wrapped_layers():
    torch.manual_seed(0)
    cfg = LlamaConfig(dim=16, n_layers=1, n_heads=2, hidden_dim=24, max_seq_len=8)
    trained = LlamaLM(cfg)
    target = LlamaLM(cfg)
    inject_lora(target, ("attn", "mlp"), r=2)
    load_full_rank(target, trained.state_dict())
    tokens = torch.randint(0, 256, (2, 8))
    torch.testing.assert_close(target(tokens), trained(tokens))
    with pytest.raises(ValueError, match="does not fit"):
        load_full_rank(target, {"nonsense.weight": torch.zeros(1)})


def _train_small_lm(mode: str, steps: int, r: int = 2, reset_every: int = 10):
    torch.manual_seed(0)
    model = LlamaLM(LlamaConfig(dim=24, n_layers=1, n_heads=2, hidden_dim=32, max_seq_len=16))
    inject_lora(model, ("attn", "mlp"), r=r, alpha=float(r))
    start = effective_weights(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    relora = ReLoRA(model, opt, reset_every=reset_every, reset_mode="zero") if mode == "relora" else None
    tokens = torch.randint(0, 64, (4096,), generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    for _ in range(steps):
        loss = model.loss(random_windows(tokens, 8, 16, gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if relora is not None:
            relora.step()
    return update_spectra(start, effective_weights(model))


def test_update_rank_exceeds_r_after_restarts_but_not_for_lora():
    """The central claim: a sum of k rank-r updates reaches rank > r; plain LoRA stays at r."""
    r, k = 2, 4
    relora = _train_small_lm("relora", steps=10 * k, r=r)
    lora = _train_small_lm("lora", steps=10 * k, r=r)
    relora_ranks = [s.rank(1e-3) for s in relora]
    assert all(s.rank(1e-6) <= r for s in lora)
    assert all(r < rank <= k * r for rank in relora_ranks), relora_ranks
    assert sum(relora_ranks) / len(relora_ranks) >= 0.75 * k * r


def _relora_run(tokens, val, steps, checkpoint_path=None, resume=False):
    from sciprob.learning.lowrank import train_lm

    torch.manual_seed(0)
    model = LlamaLM(LlamaConfig(dim=16, n_layers=1, n_heads=2, hidden_dim=24, max_seq_len=8))
    inject_lora(model, ("attn", "mlp"), r=2)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    sched = JaggedCosineLR(opt, 12, 2, 4, 1)
    relora = ReLoRA(
        model, opt, reset_every=4, reset_mode="random", generator=torch.Generator().manual_seed(4)
    )
    gen = torch.Generator().manual_seed(1)
    kw = dict(batch_size=2, seq_len=8, generator=gen, device=torch.device("cpu"), relora=relora, eval_every=3)
    log = train_lm(
        model, opt, sched, tokens, val, steps=steps, checkpoint_path=checkpoint_path, resume=resume, **kw
    )
    return model, relora, log


def test_training_loop_resumes_exactly_from_its_checkpoint(tmp_path):
    tokens = torch.randint(0, 256, (500,), generator=torch.Generator().manual_seed(0))
    val = torch.randint(0, 256, (4, 9), generator=torch.Generator().manual_seed(1))
    model, relora, log = _relora_run(tokens, val, 12)
    path = tmp_path / "checkpoint.pt"
    _relora_run(tokens, val, 6, checkpoint_path=path)  # "killed" after step 6 (its last checkpoint)
    assert path.exists()
    model2, relora2, log2 = _relora_run(tokens, val, 12, checkpoint_path=path, resume=True)
    assert relora.restarts == relora2.restarts == [4, 8, 12]
    assert log.steps == log2.steps and log2.step == 12
    # Same arithmetic in the same order, so the values agree to round-off (here: exactly).
    assert log2.val_loss == pytest.approx(log.val_loss, rel=1e-6, abs=0)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(model2.state_dict()[key], value, rtol=1e-6, atol=1e-7)


def test_training_loop_nonfinite_policy():
    from sciprob.learning.lowrank import train_lm
    from sciprob.runtime import NonFiniteLossError, NonFiniteLossWarning

    torch.manual_seed(0)
    model = LlamaLM(LlamaConfig(dim=16, n_layers=1, n_heads=2, hidden_dim=24, max_seq_len=8))
    with torch.no_grad():
        model.norm.weight.fill_(float("nan"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = JaggedCosineLR(opt, 4, 0, 4, 0)
    tokens = torch.randint(0, 256, (500,), generator=torch.Generator().manual_seed(0))
    val = tokens[:18].view(2, 9)
    kw = dict(batch_size=2, seq_len=8, device=torch.device("cpu"), eval_every=2, description="nan-lm")
    with pytest.raises(NonFiniteLossError, match="nan-lm.*step 0"):
        train_lm(model, opt, sched, tokens, val, steps=4, generator=torch.Generator().manual_seed(1), **kw)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(NonFiniteLossWarning, match="nan-lm"):
        log = train_lm(
            model,
            opt,
            sched,
            tokens,
            val,
            steps=4,
            generator=torch.Generator().manual_seed(1),
            on_nonfinite="warn",
            **kw,
        )
    assert log.step == 4  # every step skipped: the weights never moved
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]) or torch.isnan(value).all(), key
