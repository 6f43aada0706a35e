"""The LLaMA-style model, the byte tokenizer, the corpus split and the spectrum diagnostics."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sciprob.learning.lowrank import (
    ByteTokenizer,
    LlamaConfig,
    LlamaLM,
    RMSNorm,
    eval_windows,
    load_corpus,
    load_corpus_text,
    random_windows,
    update_spectra,
)
from sciprob.learning.lowrank.data import split_tokens
from sciprob.learning.lowrank.lm import apply_rotary, rotary_tables

CFG = LlamaConfig(dim=16, n_layers=2, n_heads=2, hidden_dim=24, max_seq_len=12)


def test_model_is_causal_and_untrained_loss_is_near_uniform():
    torch.manual_seed(0)
    model = LlamaLM(CFG)
    a = torch.randint(0, 256, (2, 12))
    b = a.clone()
    b[:, 7:] = torch.randint(0, 256, (2, 5))
    torch.testing.assert_close(model(a)[:, :7], model(b)[:, :7])
    assert not torch.allclose(model(a)[:, 7:], model(b)[:, 7:])
    # N(0, 0.02) weights: logits near zero, loss near log(256).
    assert abs(model.loss(torch.randint(0, 256, (4, 13))).item() - math.log(256)) < 0.05
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, 13, dtype=torch.long))


def test_rotary_scores_depend_only_on_relative_position():
    cos, sin = rotary_tables(20, 8)
    q, k = torch.randn(8), torch.randn(8)

    def score(i, j):
        qi = apply_rotary(q.expand(1, 1, 20, 8), cos, sin)[0, 0, i]
        kj = apply_rotary(k.expand(1, 1, 20, 8), cos, sin)[0, 0, j]
        return float(qi @ kj)

    assert score(5, 2) == pytest.approx(score(13, 10), rel=1e-5)
    assert score(0, 0) == pytest.approx(float(q @ k), rel=1e-5)  # position 0 is the identity
    assert score(5, 2) != pytest.approx(score(5, 3), rel=1e-3)


def test_rmsnorm_output_has_unit_rms():
    x = torch.randn(3, 5, 32) * 7.0
    y = RMSNorm(32, eps=0.0)(x)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(3, 5))


def test_config_errors():
    with pytest.raises(ValueError, match="`dim`"):
        LlamaConfig(dim=18, n_heads=4)
    with pytest.raises(ValueError, match="`n_layers`"):
        LlamaConfig(n_layers=0)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=50))
def test_byte_tokenizer_round_trips(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids.dtype == torch.long and all(0 <= i < 256 for i in ids.tolist())
    assert tok.decode(ids) == text


def test_corpus_split_is_deterministic_disjoint_and_english():
    text = load_corpus_text()
    assert len(text) > 300_000 and "the" in text and "lambda" in text
    a, b = load_corpus(), load_corpus()
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val)
    total = len(text.encode("utf-8")) // 4096 * 4096
    assert a.train.numel() + a.val.numel() == total
    assert 0.09 < a.val.numel() / total < 0.11
    toy = split_tokens(torch.arange(100), block_size=10, val_every=5)
    assert toy.val.tolist() == list(range(40, 50)) + list(range(90, 100))
    with pytest.raises(ValueError, match="`val_every`"):
        split_tokens(torch.arange(100), block_size=10, val_every=1)


def test_windows_shapes_and_reproducibility():
    tokens = torch.arange(1000)
    w1 = random_windows(tokens, 4, 16, torch.Generator().manual_seed(0))
    w2 = random_windows(tokens, 4, 16, torch.Generator().manual_seed(0))
    assert w1.shape == (4, 17) and torch.equal(w1, w2)
    assert torch.equal(w1[:, 1:] - w1[:, :-1], torch.ones(4, 16, dtype=torch.long))
    ev = eval_windows(tokens, 16, max_windows=10)
    assert ev.shape == (10, 17) and ev[0, 0] == 0


def test_update_spectra_rank_of_known_low_rank_update():
    torch.manual_seed(0)
    w0 = {"a": torch.randn(20, 12)}
    u, v = torch.randn(20, 3), torch.randn(3, 12)
    (spec,) = update_spectra(w0, {"a": w0["a"] + u @ v})
    assert spec.rank() == 3
    assert spec.count_below(0.1) == 12 - 3
    (zero,) = update_spectra(w0, w0)
    assert zero.rank() == 0
    with pytest.raises(ValueError, match="shapes"):
        update_spectra(w0, {"a": torch.zeros(3, 3)})
