"""Low-rank training: LoRA adapters (linear, attention, convolution, embedding) and ReLoRA restarts.

>>> from sciprob.learning.lowrank import LlamaConfig, LlamaLM, inject_lora, ReLoRA, JaggedCosineLR
>>> model = LlamaLM(LlamaConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_seq_len=32))
>>> summary = inject_lora(model, ("attn", "mlp"), r=4, alpha=8.0)
>>> len(summary.wrapped)
14
"""

from sciprob.learning.lowrank.data import (
    CorpusSplit,
    eval_windows,
    load_corpus,
    load_corpus_text,
    random_windows,
)
from sciprob.learning.lowrank.diagnostics import (
    UpdateSpectrum,
    effective_weights,
    mean_update_rank,
    update_spectra,
)
from sciprob.learning.lowrank.lm import ByteTokenizer, LlamaConfig, LlamaLM, RMSNorm
from sciprob.learning.lowrank.lora import (
    LoRAConv,
    LoRAEmbedding,
    LoRALayer,
    LoRALinear,
    LoRAMultiheadAttention,
    LoRASummary,
    count_parameters,
    inject_lora,
    lora_modules,
    lora_parameters,
)
from sciprob.learning.lowrank.relora import (
    JaggedCosineLR,
    ReLoRA,
    ResetStats,
    jagged_cosine_multiplier,
    load_full_rank,
    optimizer_state_bytes,
    reset_optimizer_state,
)
from sciprob.learning.lowrank.training import TrainLog, evaluate_loss, train_lm

__all__ = [
    "ByteTokenizer",
    "CorpusSplit",
    "JaggedCosineLR",
    "LlamaConfig",
    "LlamaLM",
    "LoRAConv",
    "LoRAEmbedding",
    "LoRALayer",
    "LoRALinear",
    "LoRAMultiheadAttention",
    "LoRASummary",
    "RMSNorm",
    "ReLoRA",
    "ResetStats",
    "TrainLog",
    "UpdateSpectrum",
    "count_parameters",
    "effective_weights",
    "eval_windows",
    "evaluate_loss",
    "inject_lora",
    "jagged_cosine_multiplier",
    "load_corpus",
    "load_corpus_text",
    "load_full_rank",
    "lora_modules",
    "lora_parameters",
    "mean_update_rank",
    "optimizer_state_bytes",
    "random_windows",
    "reset_optimizer_state",
    "train_lm",
    "update_spectra",
]
