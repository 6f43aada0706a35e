"""LoRALinear and inject_lora: merge algebra, function preservation, patterns, errors."""

import pytest
import torch
from torch import nn

from sciprob.learning.lowrank import LlamaConfig, LlamaLM, LoRALinear, inject_lora, lora_parameters


def _random_adapter(layer: LoRALinear, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g, dtype=layer.lora_B.dtype))


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_merge_then_run_equals_unmerged(dtype, atol):
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 12).to(dtype), r=4, alpha=8.0)
    _random_adapter(layer)
    x = torch.randn(5, 3, 16, dtype=dtype)
    y_unmerged = layer(x)
    assert (layer.delta_weight().abs() > 0).any()
    layer.merge()
    torch.testing.assert_close(layer(x), y_unmerged, atol=atol, rtol=0)
    layer.unmerge()
    torch.testing.assert_close(layer(x), y_unmerged, atol=atol, rtol=0)


def test_merge_reinit_keeps_output_and_restarts_adapter():
    torch.manual_seed(1)
    layer = LoRALinear(nn.Linear(10, 6), r=3, alpha=6.0)
    _random_adapter(layer, seed=3)
    x = torch.randn(7, 10)
    before = layer(x)
    w0 = layer.base.weight.clone()
    layer.merge()
    layer.reinit()
    assert not layer.merged and torch.count_nonzero(layer.lora_B) == 0
    torch.testing.assert_close(layer(x), before, atol=1e-6, rtol=0)
    assert not torch.allclose(layer.base.weight, w0)


def test_fresh_adapter_is_identity_and_only_adapter_gets_gradients():
    torch.manual_seed(2)
    base = nn.Linear(8, 5)
    ref = base(torch.ones(2, 8)).detach()
    layer = LoRALinear(base, r=2)
    out = layer(torch.ones(2, 8))
    torch.testing.assert_close(out, ref)
    out.sum().backward()
    assert base.weight.grad is None
    assert layer.lora_B.grad is not None and layer.lora_B.grad.abs().sum() > 0
    # B = 0 at initialisation, so A's gradient vanishes on the first step (as in LoRA).
    assert torch.count_nonzero(layer.lora_A.grad) == 0


def test_lora_forward_gradcheck():
    torch.manual_seed(3)
    layer = LoRALinear(nn.Linear(4, 3).double(), r=2, alpha=2.0)
    _random_adapter(layer)
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp, a, b: layer(inp), (x, layer.lora_A, layer.lora_B))


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"r": 0}, ValueError),
        ({"r": 9}, ValueError),
        ({"r": 2, "alpha": 0.0}, ValueError),
        ({"r": 2, "dropout": 1.0}, ValueError),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error):
    with pytest.raises(error, match="`"):
        LoRALinear(nn.Linear(8, 16), **kwargs)


def test_wrong_base_and_double_merge():
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(2, 2, 1), r=1)
    layer = LoRALinear(nn.Linear(4, 4), r=1)
    layer.merge()
    with pytest.raises(RuntimeError, match="already merged"):
        layer.merge()
    layer.unmerge()
    with pytest.raises(RuntimeError, match="not merged"):
        layer.unmerge()


def _small_lm() -> LlamaLM:
    torch.manual_seed(0)
    return LlamaLM(LlamaConfig(dim=16, n_layers=2, n_heads=2, hidden_dim=24, max_seq_len=8))


def test_inject_by_component_names_matches_reference_choice():
    model = _small_lm()
    tokens = torch.randint(0, 256, (2, 8))
    before = model(tokens).detach()
    summary = inject_lora(model, ("attn", "mlp"), r=2, alpha=4.0)
    assert len(summary.wrapped) == 2 * 7 and "lm_head" not in summary.wrapped
    assert all(isinstance(model.get_submodule(n), LoRALinear) for n in summary.wrapped)
    adapters = sum(p.numel() for p in lora_parameters(model))
    per_layer = 4 * 2 * (16 + 16) + 3 * 2 * (16 + 24)
    assert summary.adapter_params == adapters == 2 * per_layer
    frozen = sum(model.get_submodule(n).base.weight.numel() for n in summary.wrapped)
    assert summary.trainable_params == summary.total_params - frozen
    assert model.embed.weight.requires_grad and model.lm_head.weight.requires_grad
    torch.testing.assert_close(model(tokens), before)  # B = 0: same function
    assert "14 layers" in str(summary)


def test_inject_by_suffix_regex_and_freeze_others():
    model = _small_lm()
    summary = inject_lora(model, ["q_proj", "v_proj"], r=1)
    assert sorted(n.rsplit(".", 1)[1] for n in summary.wrapped) == ["q_proj", "q_proj", "v_proj", "v_proj"]
    model = _small_lm()
    summary = inject_lora(model, r"layers\.0\.mlp\..*", r=2, freeze_others=True)
    assert len(summary.wrapped) == 3
    assert summary.trainable_params == summary.adapter_params
    assert not model.embed.weight.requires_grad


def test_inject_errors_name_the_targets():
    model = _small_lm()
    with pytest.raises(ValueError, match="`targets`.*matches no nn.Linear"):
        inject_lora(model, ("conv",), r=2)
    inject_lora(model, ("attn",), r=2)
    with pytest.raises(ValueError, match="already contains"):
        inject_lora(model, ("mlp",), r=2)
