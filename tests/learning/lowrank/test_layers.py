"""Adapters for torch's own layers: function at init, merge algebra, restarts, memory, atomic injection."""

import copy

import pytest
import torch
from torch import nn

from sciprob.learning.lowrank import (
    LoRAConv,
    LoRAEmbedding,
    LoRALayer,
    LoRALinear,
    LoRAMultiheadAttention,
    ReLoRA,
    effective_weights,
    inject_lora,
    load_full_rank,
    lora_modules,
    lora_parameters,
)


def _perturb(model: nn.Module, seed: int = 0) -> None:
    """Give every adapter factor random values, so that the update is non-zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lora_parameters(model):
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _mha(**kw):
    return nn.MultiheadAttention(12, 3, **kw)


class _TaggedLinear(nn.Linear):
    """A Linear subclass that keeps nn.Linear's forward (as torch's NonDynamicallyQuantizableLinear)."""


class _ScaledLinear(nn.Linear):
    """A Linear subclass with its own forward: not y = x W^T + b, so a merge could not keep it."""

    def forward(self, x):
        return 2.0 * super().forward(x)


def _reads_weight_directly():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(10, 7)

        def forward(self, x):
            return torch.nn.functional.linear(x, self.proj.weight, self.proj.bias).tanh()

    return Head()


# (constructor of the base layer, input, adapter class); float64 so that the 1e-6 check has margin.
CASES = {
    "linear": (lambda: nn.Linear(10, 7), lambda: torch.randn(4, 3, 10), LoRALinear),
    "linear_subclass": (lambda: _TaggedLinear(10, 7), lambda: torch.randn(4, 3, 10), LoRALinear),
    "conv1d": (
        lambda: nn.Conv1d(3, 5, 3, padding=1, stride=2, padding_mode="reflect"),
        lambda: torch.randn(2, 3, 11),
        LoRAConv,
    ),
    "conv2d": (lambda: nn.Conv2d(3, 6, (3, 2), dilation=(1, 2)), lambda: torch.randn(2, 3, 8, 9), LoRAConv),
    "embedding": (
        lambda: nn.Embedding(20, 6, padding_idx=0),
        lambda: torch.randint(0, 20, (3, 7), generator=torch.Generator().manual_seed(5)),
        LoRAEmbedding,
    ),
}


def _build(kind):
    torch.manual_seed(0)
    make_base, make_input, cls = CASES[kind]
    base = make_base().double()
    x = make_input()
    return base, (x.double() if x.is_floating_point() else x), cls


@pytest.mark.parametrize("kind", list(CASES))
def test_adapter_equals_base_at_init_merges_and_restarts(kind):
    base, x, cls = _build(kind)
    reference = base(x).detach()
    layer = inject_model = nn.Sequential(base)
    summary = inject_lora(inject_model, ["0"], r=2, alpha=3.0)
    layer = inject_model[0]
    assert isinstance(layer, cls) and summary.wrapped == ("0",)
    torch.testing.assert_close(layer(x), reference, rtol=0, atol=1e-12)  # fresh update is exactly zero
    _perturb(layer)
    unmerged = layer(x).detach()
    assert (unmerged - reference).abs().max() > 1e-3  # the perturbed adapter does change the output
    w0 = layer.base.weight.clone()
    layer.merge()
    torch.testing.assert_close(layer(x), unmerged, rtol=0, atol=1e-6)
    torch.testing.assert_close(layer.base.weight - w0, layer.delta_weight(), rtol=0, atol=1e-12)
    layer.unmerge()
    torch.testing.assert_close(layer.base.weight, w0, rtol=0, atol=1e-12)
    torch.testing.assert_close(layer(x), unmerged, rtol=0, atol=1e-6)
    layer.merge()
    layer.reinit()  # one ReLoRA restart
    assert not layer.merged and torch.count_nonzero(layer.delta_weight()) == 0
    torch.testing.assert_close(layer(x), unmerged, rtol=0, atol=1e-6)
    # Matrix view: the applied weight is W + delta in the layout of the table in layers.py.
    torch.testing.assert_close(layer.effective_matrix(), layer._unfold(layer.base.weight), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", list(CASES))
def test_only_adapters_and_biases_get_gradients(kind):
    base, x, _ = _build(kind)
    model = nn.Sequential(base)
    inject_lora(model, ["0"], r=2)
    _perturb(model)
    model(x).pow(2).sum().backward()
    layer = model[0]
    assert layer.base.weight.grad is None and not layer.base.weight.requires_grad
    assert layer.lora_A.grad.abs().sum() > 0 and layer.lora_B.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["linear", "conv2d", "embedding"])
def test_adapter_gradients_match_finite_differences(kind):
    base, x, _ = _build(kind)
    if kind == "embedding":
        base.padding_idx = None  # the padding column gets no gradient by design (next test)
    model = nn.Sequential(base)
    inject_lora(model, ["0"], r=2)
    _perturb(model)
    layer = model[0]
    inputs = (x.clone().requires_grad_(True),) if x.is_floating_point() else ()

    def f(*args):
        return layer(args[0] if inputs else x)

    assert torch.autograd.gradcheck(lambda *a: f(*a), inputs + (layer.lora_A, layer.lora_B))


def test_embedding_padding_vector_never_moves():
    base, x, _ = _build("embedding")
    model = nn.Sequential(base)
    inject_lora(model, ["0"], r=3)
    opt = torch.optim.SGD(lora_parameters(model), lr=0.5)
    pad_before = base.weight[0].clone()
    for _ in range(3):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    model[0].merge()
    torch.testing.assert_close(base.weight[0], pad_before, rtol=0, atol=0)  # exactly: zero column of A
    assert not torch.allclose(base.weight[1:], _build("embedding")[0].weight[1:])


MHA_CASES = [
    dict(kw={"batch_first": True}, cross=False, masks=False, need_weights=True),
    dict(kw={}, cross=True, masks=True, need_weights=True),
    dict(
        kw={"batch_first": True, "add_bias_kv": True, "add_zero_attn": True},
        cross=True,
        masks=True,
        need_weights=False,
    ),
    dict(kw={"batch_first": True, "bias": False}, cross=False, masks=True, need_weights=False),
]


def _mha_inputs(kw, cross):
    g = torch.Generator().manual_seed(3)
    n, length, s, e = 2, 5, 6 if cross else 5, 12
    shape_q = (n, length, e) if kw.get("batch_first") else (length, n, e)
    shape_k = (n, s, e) if kw.get("batch_first") else (s, n, e)
    q = torch.randn(shape_q, generator=g, dtype=torch.float64)
    if not cross:
        return q, q, q, n, length, s
    return (
        q,
        torch.randn(shape_k, generator=g, dtype=torch.float64),
        torch.randn(shape_k, generator=g, dtype=torch.float64),
        n,
        length,
        s,
    )


@pytest.mark.parametrize("case", range(len(MHA_CASES)))
def test_attention_adapter_reproduces_torch_and_merges(case):
    spec = MHA_CASES[case]
    torch.manual_seed(0)
    mha = _mha(**spec["kw"]).double().eval()
    q, k, v, n, length, s = _mha_inputs(spec["kw"], spec["cross"])
    kwargs = {"need_weights": spec["need_weights"], "average_attn_weights": case % 2 == 0}
    if spec["masks"]:
        kpm = torch.zeros(n, s, dtype=torch.float64)
        kpm[1, -2:] = float("-inf")
        kwargs["key_padding_mask"] = kpm
        kwargs["attn_mask"] = torch.randn(
            length, s, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
        )
    ref_out, ref_w = mha(q, k, v, **kwargs)
    plain = copy.deepcopy(mha)
    lora = LoRAMultiheadAttention(mha, r=3, alpha=2.0)
    out, w = lora(q, k, v, **kwargs)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-10)
    if spec["need_weights"]:
        torch.testing.assert_close(w, ref_w, rtol=0, atol=1e-10)
    else:
        assert w is None and ref_w is None
    _perturb(lora)
    unmerged = lora(q, k, v, **kwargs)[0].detach()
    assert (unmerged - ref_out).abs().max() > 1e-3
    lora.merge()
    assert lora.merged and lora.out_proj.merged
    torch.testing.assert_close(lora(q, k, v, **kwargs)[0], unmerged, rtol=0, atol=1e-6)
    # The merged weights are plain MHA weights: torch's own module with them gives the same output.
    plain.in_proj_weight.data.copy_(lora.base.in_proj_weight)
    plain.out_proj.weight.data.copy_(lora.out_proj.base.weight)
    torch.testing.assert_close(plain(q, k, v, **kwargs)[0], unmerged, rtol=0, atol=1e-6)
    lora.reinit()
    assert not lora.merged and not lora.out_proj.merged
    torch.testing.assert_close(lora(q, k, v, **kwargs)[0], unmerged, rtol=0, atol=1e-6)


def test_attention_adapter_unbatched_and_bool_attn_mask():
    torch.manual_seed(0)
    mha = _mha().double().eval()
    x = torch.randn(5, 12, dtype=torch.float64)
    causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)
    ref = mha(x, x, x, attn_mask=causal, is_causal=True)
    lora = LoRAMultiheadAttention(mha, r=2)
    out = lora(x, x, x, attn_mask=causal, is_causal=True)
    torch.testing.assert_close(out[0], ref[0], rtol=0, atol=1e-10)
    torch.testing.assert_close(out[1], ref[1], rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="`is_causal`"):
        lora(x, x, x, is_causal=True)


def test_parent_reading_the_weight_directly_sees_the_update():
    torch.manual_seed(0)
    model = _reads_weight_directly().double()
    x = torch.randn(5, 10, dtype=torch.float64)
    ref = model(x).detach()
    inject_lora(model, ["proj"], r=2)
    torch.testing.assert_close(model(x), ref, rtol=0, atol=1e-12)
    _perturb(model)
    unmerged = model(x).detach()
    assert (unmerged - ref).abs().max() > 1e-3
    model.proj.merge()
    torch.testing.assert_close(model(x), unmerged, rtol=0, atol=1e-6)
    model.proj.reinit()
    torch.testing.assert_close(model(x), unmerged, rtol=0, atol=1e-6)


def test_attention_out_proj_alone_works_through_the_weight_property():
    """Targeting only `out_proj` inside an unwrapped MHA: torch reads `.weight`, which includes the update."""
    torch.manual_seed(0)
    model = nn.Sequential(_mha(batch_first=True).double())
    x = torch.randn(2, 4, 12, dtype=torch.float64)
    ref = model[0](x, x, x)[0].detach()
    summary = inject_lora(model, ["out_proj"], r=2)
    assert summary.wrapped == ("0.out_proj",)
    torch.testing.assert_close(model[0](x, x, x)[0], ref, rtol=0, atol=1e-12)
    _perturb(model)
    unmerged = model[0](x, x, x)[0].detach()
    model[0].out_proj.merge()
    torch.testing.assert_close(model[0](x, x, x)[0], unmerged, rtol=0, atol=1e-6)


def _encoder(batch_first=True):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=batch_first)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=batch_first)


def test_encoder_inference_fast_path_does_not_bypass_adapters():
    model = _encoder().double()
    x = torch.randn(3, 6, 16, dtype=torch.float64)
    kpm = torch.zeros(3, 6, dtype=torch.bool)
    kpm[0, -2:] = True
    inject_lora(model, ".*", r=2)
    _perturb(model)
    model.eval()
    with torch.no_grad():
        adapted = model(x, src_key_padding_mask=kpm)
        for _, module in lora_modules(model):
            module.merge()
        merged = model(x, src_key_padding_mask=kpm)
    keep = ~kpm  # padded positions are undefined (zeros on the nested-tensor path)
    torch.testing.assert_close(adapted[keep], merged[keep], rtol=0, atol=1e-6)


class _Net(nn.Module):
    """A torch transformer as a sequence-to-sequence map of (batch, seq, 16) inputs."""

    def __init__(self, arch: str):
        super().__init__()
        torch.manual_seed(0)
        self.arch = arch
        if arch == "encoder":
            self.net = _encoder()
        else:
            self.net = nn.Transformer(16, 4, 1, 1, 32, dropout=0.0, batch_first=True)

    def forward(self, x):
        return self.net(x) if self.arch == "encoder" else self.net(x, x)


@pytest.mark.parametrize("arch", ["encoder", "transformer"])
def test_transformers_train_end_to_end_with_adapters_on_every_linear_layer(arch):
    model = _Net(arch)
    summary = inject_lora(model, ".*", r=4, alpha=8.0, freeze_others=True)
    attention = [n for n, m in model.named_modules() if isinstance(m, LoRAMultiheadAttention)]
    linear = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    n_attn = 2 if arch == "encoder" else 3  # two encoder layers; or one encoder + one decoder (self + cross)
    assert len(attention) == n_attn and len(linear) == n_attn + 2 * 2  # each out_proj; linear1/2 per layer
    unwrapped = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not n.endswith(".base")]
    assert unwrapped == []  # every linear layer, attention projections included, carries an adapter
    assert summary.trainable_params == summary.adapter_params
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k}
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 6, 16, generator=g)
    target = x.flip(1)
    opt = torch.optim.AdamW(lora_parameters(model), lr=1e-2)
    relora = ReLoRA(model, opt, reset_every=15, reset_mode="zero")
    losses = []
    for _ in range(30):
        loss = (model(x) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        relora.step()
        losses.append(loss.item())
        if len(losses) == 10:  # B has moved from zero, so every A gets a gradient now
            for name, module in model.named_modules():
                if isinstance(module, LoRALayer):
                    assert module.lora_A.grad.abs().sum() > 0, name
    assert relora.restarts == [15, 30]
    assert losses[-1] < 0.7 * losses[0], losses
    changed = [k for k, v in model.state_dict().items() if "lora_" not in k and not torch.equal(v, frozen[k])]
    # Only the frozen weights that received merges changed: packed projections and linear weights.
    assert changed and all(k.endswith(("in_proj_weight", "base.weight")) for k in changed), changed


def test_restart_keeps_transformer_output_and_warm_start_maps_attention_keys():
    plain = _encoder(batch_first=False).double()
    adapted = copy.deepcopy(plain)
    inject_lora(adapted, ".*", r=2)
    x = torch.randn(6, 3, 16, dtype=torch.float64)
    _perturb(adapted)
    before = adapted(x).detach()
    opt = torch.optim.Adam(lora_parameters(adapted))
    ReLoRA(adapted, opt, reset_every=1).restart()
    torch.testing.assert_close(adapted(x), before, rtol=0, atol=1e-6)
    fresh = copy.deepcopy(plain)
    inject_lora(fresh, ".*", r=2)
    load_full_rank(fresh, plain.state_dict())
    torch.testing.assert_close(fresh(x), plain(x), rtol=0, atol=1e-12)
    keys = set(effective_weights(fresh, ".*"))
    assert keys == set(effective_weights(plain, ".*"))
    assert "layers.0.self_attn.in_proj" in keys and "layers.0.self_attn.out_proj" in keys


def test_adapter_keeps_only_the_rank_r_intermediate_for_backward():
    """Saved-for-backward bytes of a LoRALinear: the input (shared) plus (n, r); no output-width tensor."""
    torch.manual_seed(0)
    x = torch.randn(64, 256, requires_grad=True)
    layer = LoRALinear(nn.Linear(256, 512), r=4)
    params = {p.untyped_storage().data_ptr() for p in layer.parameters()}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params and storage.data_ptr() != x.untyped_storage().data_ptr():
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = layer(x)
    assert sum(saved.values()) == 64 * 4 * 4  # exactly h = x A^T in float32
    y.sum().backward()
    assert layer.base.weight.grad is None and layer.base.bias.grad is not None


# --- atomic injection ------------------------------------------------------------------------------


def _state(model):
    def copy_of(v):
        return None if isinstance(v, nn.parameter.UninitializedParameter) else v.clone()

    return {k: (copy_of(v), v.requires_grad) for k, v in model.named_parameters()}, repr(model)


@pytest.mark.parametrize(
    "build,targets,r,needle",
    [
        (lambda: nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 3)), ".*", 4, r"`1` \(Linear\).*`r`=4"),
        (lambda: nn.Sequential(nn.Linear(8, 8), nn.Conv3d(2, 2, 3)), ".*", 2, r"`1` \(Conv3d\)"),
        (lambda: nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)), ".*", 1, r"`0` \(Conv2d\).*groups=2"),
        (lambda: nn.Sequential(nn.MultiheadAttention(8, 2, kdim=4, vdim=4)), ".*", 2, r"kdim=4"),
        (lambda: nn.Sequential(nn.Embedding(10, 4, max_norm=1.0)), ".*", 2, r"max_norm"),
        (lambda: nn.Sequential(nn.LazyLinear(4)), ".*", 2, r"lazy"),
        (
            lambda: nn.Sequential(nn.Linear(6, 6), _ScaledLinear(6, 6)),
            ".*",
            2,
            r"`1` \(_ScaledLinear\).*forward",
        ),
    ],
)
def test_unadaptable_layers_are_rejected_before_any_change(build, targets, r, needle):
    model = build()
    before, text = _state(model)
    with pytest.raises(ValueError, match=needle):
        inject_lora(model, targets, r=r, freeze_others=True)
    after, text_after = _state(model)
    assert text_after == text and before.keys() == after.keys()
    for key, (value, grad) in before.items():
        assert after[key][1] == grad, key
        assert (value is None and after[key][0] is None) or torch.equal(after[key][0], value), key
    # A retry that fixes the problem works on the untouched model.
    if r == 4:
        assert len(inject_lora(model, targets, r=3).wrapped) == 2


def test_tied_weights_and_the_model_itself_are_rejected():
    emb, head = nn.Embedding(20, 8), nn.Linear(8, 20, bias=False)
    head.weight = emb.weight
    model = nn.ModuleDict({"emb": emb, "head": head})
    with pytest.raises(ValueError, match=r"`head` \(Linear\).*tied"):
        inject_lora(model, ["head"], r=2)
    assert isinstance(model["head"], nn.Linear) and model["head"].weight.requires_grad
    with pytest.raises(ValueError, match="the model itself is a Linear"):
        inject_lora(nn.Linear(4, 4), ".*", r=1)
    with pytest.raises(ValueError, match="`r`"):
        inject_lora(nn.Sequential(nn.Linear(4, 4)), ".*", r=0)
    with pytest.raises(ValueError, match="`alpha`"):
        inject_lora(nn.Sequential(nn.Linear(4, 4)), ".*", r=1, alpha=float("nan"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_adapters_on_cuda_match_cpu_and_save_memory():
    from sciprob.learning.lowrank.memory import peak_training_memory

    model = _Net("encoder")
    inject_lora(model, ".*", r=4)
    _perturb(model)
    x = torch.randn(4, 6, 16)
    cpu = model(x).detach()
    gpu = model.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-5)
    kw = dict(
        dim=256, n_layers=2, n_heads=4, hidden_dim=688, seq_len=16, batch_size=2, rank=16, device="cuda"
    )
    assert peak_training_memory(method="lora", **kw) < 0.7 * peak_training_memory(method="full-rank", **kw)
