"""Experiment ``relora-lm``: full-rank vs LoRA-only vs ReLoRA pre-training of a small LLaMA.

All three methods see the same number of tokens (``total_steps * batch_size *
seq_len``); each method is one unit of work of the engine, with its own seed
(its own initial weights and batches):

- ``full-rank``: AdamW on every parameter, cosine schedule with warm-up;
- ``lora-only``: rank-r adapters on every attention and MLP linear layer from
  step 0, other parameters trainable (the reference's LoRA baseline);
- ``relora``: ``warm_start_steps`` of full-rank training (the reference starts
  from its full-rank run's checkpoint; here the unit trains that warm start
  itself), then rank-r adapters merged and restarted every ``reset_every``
  steps with a partial optimizer reset and the jagged cosine schedule.

The scaling study ``relora-scaling`` (:mod:`sciprob.learning.lowrank.scaling`)
runs the same three methods at several model sizes; importing this module
registers both experiments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from sciprob.config import param
from sciprob.experiments import RunContext, UnitContext, UnitResult, experiment

METHODS = ("full-rank", "lora-only", "relora")
TARGETS = ("attn", "mlp")
LAYER_KINDS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
GALORE = "Zhao et al. 2024 (GaLore), Table 2, 60M LLaMA on C4 (quoted in learning.md §1)"


@dataclass(frozen=True)
class ReLoRALMConfig:
    """Model, budget and ReLoRA settings of the comparison."""

    dim: int = param(64, "model width")
    n_layers: int = param(2, "transformer blocks")
    n_heads: int = param(4, "attention heads (head size must be even)")
    hidden_dim: int = param(172, "SwiGLU inner width")
    seq_len: int = param(64, "tokens (bytes) per training sequence")
    batch_size: int = param(16, "sequences per optimizer step")
    total_steps: int = param(400, "optimizer steps of every method (equal tokens)")
    warm_start_steps: int = param(100, "full-rank steps ReLoRA starts from (its first low-rank step follows)")
    lr: float = param(2e-3, "peak learning rate of full-rank training")
    lora_lr: float = param(
        4e-3, "peak learning rate of LoRA-only and ReLoRA (reference: 2x the full-rank rate)"
    )
    warmup_steps: int = param(20, "linear warm-up of full-rank and LoRA-only")
    relora_warmup_steps: int = param(10, "linear warm-up at the start of ReLoRA's low-rank phase")
    min_lr_ratio: float = param(0.1, "floor of the cosine schedules, fraction of the peak rate")
    weight_decay: float = param(0.0, "AdamW weight decay (reference: 0)")
    grad_clip: float = param(1.0, "max global gradient norm, 0 disables (reference: 1.0)")
    lora_r: int = param(8, "adapter rank r")
    lora_alpha: float = param(8.0, "adapter scale numerator (update scaled by alpha / r)")
    lora_dropout: float = param(0.0, "dropout on the adapters' input (reference: 0.1)")
    reset_every: int = param(100, "ReLoRA steps between merge-and-restart")
    restart_warmup_steps: int = param(10, "learning-rate warm-up after each restart")
    reset_mode: Literal["magnitude", "random", "zero"] = param(
        "zero", "optimizer reset of the adapters at a restart (reference default: random pruning at 0.999)"
    )
    prune_ratio: float = param(0.9, "fraction of the adapters' Adam moments pruned at a restart")
    eval_every: int = param(25, "steps between validation measurements")
    eval_windows: int = param(64, "validation sequences per measurement (spread over the validation split)")
    include_stdlib: bool = param(False, "add standard-library sources to the pydoc topics corpus")
    rank_rtol: float = param(1e-3, "numerical rank: singular values above rank_rtol * the largest")
    checkpoint_every: int = param(
        0, "steps between checkpoints within a unit (0: only at the end of each phase)"
    )
    on_nonfinite: Literal["raise", "warn"] = param(
        "raise", "a NaN/inf training loss stops the unit (raise) or skips the step (warn)"
    )

    def __post_init__(self) -> None:
        positive = (
            "dim",
            "n_layers",
            "n_heads",
            "hidden_dim",
            "seq_len",
            "batch_size",
            "total_steps",
            "reset_every",
            "eval_every",
            "eval_windows",
            "lora_r",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.dim % self.n_heads or (self.dim // self.n_heads) % 2:
            raise ValueError(
                f"`dim`={self.dim} must be a multiple of `n_heads`={self.n_heads} with an even head size"
            )
        if not 0 < self.warm_start_steps < self.total_steps:
            raise ValueError(
                f"`warm_start_steps` must lie in (0, total_steps={self.total_steps}), "
                f"got {self.warm_start_steps}"
            )
        if not 0 <= self.warmup_steps <= self.warm_start_steps:
            raise ValueError(f"`warmup_steps` must lie in [0, warm_start_steps], got {self.warmup_steps}")
        relora_steps = self.total_steps - self.warm_start_steps
        if not 0 <= self.relora_warmup_steps <= min(self.reset_every, relora_steps):
            raise ValueError(
                f"`relora_warmup_steps` must lie in [0, min(reset_every, total_steps - warm_start_steps)], "
                f"got {self.relora_warmup_steps}"
            )
        if not 0 <= self.restart_warmup_steps < self.reset_every:
            raise ValueError(
                f"`restart_warmup_steps` must lie in [0, reset_every), got {self.restart_warmup_steps}"
            )
        if self.lora_r > min(self.dim, self.hidden_dim):
            raise ValueError(
                f"`lora_r` must be <= min(dim, hidden_dim) = {min(self.dim, self.hidden_dim)}, "
                f"got {self.lora_r}"
            )
        for name in ("lr", "lora_lr", "lora_alpha"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be positive, got {getattr(self, name)}")
        if not 0.0 < self.min_lr_ratio <= 1.0:
            raise ValueError(f"`min_lr_ratio` must lie in (0, 1], got {self.min_lr_ratio}")
        if not 0.0 <= self.prune_ratio <= 1.0:
            raise ValueError(f"`prune_ratio` must lie in [0, 1], got {self.prune_ratio}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"`lora_dropout` must lie in [0, 1), got {self.lora_dropout}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.checkpoint_every < 0:
            raise ValueError("`weight_decay`, `grad_clip` and `checkpoint_every` must be non-negative")
        if not 0 < self.rank_rtol < 1:
            raise ValueError(f"`rank_rtol` must lie in (0, 1), got {self.rank_rtol}")


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "dim": 32,
        "n_layers": 1,
        "n_heads": 2,
        "hidden_dim": 64,
        "seq_len": 32,
        "batch_size": 4,
        "total_steps": 20,
        "warm_start_steps": 5,
        "warmup_steps": 2,
        "relora_warmup_steps": 1,
        "reset_every": 5,
        "restart_warmup_steps": 1,
        "lora_r": 2,
        "lora_alpha": 2.0,
        "eval_every": 5,
        "eval_windows": 8,
    },
    "quick": {},
    # Reference 130M/250M recipes scaled to about an hour on one machine: width/rank 6 (as 768/128),
    # warm start and reset period a quarter of the budget (5000 of 20000), restart warm-up 5 % of a period;
    # the standard-library sources double the corpus so that 4.9M tokens are about 5 passes, not 10.
    "paper": {
        "dim": 192,
        "n_layers": 4,
        "n_heads": 6,
        "hidden_dim": 512,
        "seq_len": 128,
        "batch_size": 32,
        "total_steps": 1200,
        "warm_start_steps": 300,
        "warmup_steps": 50,
        "relora_warmup_steps": 15,
        "reset_every": 300,
        "restart_warmup_steps": 15,
        "lora_r": 32,
        "lora_alpha": 32.0,
        "lr": 1e-3,
        "lora_lr": 2e-3,
        "eval_every": 50,
        "eval_windows": 256,
        "checkpoint_every": 100,
        "include_stdlib": True,
    },
}


def _build_model(cfg: ReLoRALMConfig) -> torch.nn.Module:
    """Build the LLaMA-style model of ``cfg``, freshly initialised from torch's global RNG.

    The engine has seeded that generator for the unit; nothing here reseeds it.
    """
    from sciprob.learning.lowrank import LlamaConfig, LlamaLM

    return LlamaLM(
        LlamaConfig(
            dim=cfg.dim,
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            hidden_dim=cfg.hidden_dim,
            max_seq_len=cfg.seq_len,
        )
    )


def _optimizer(model: torch.nn.Module, lr: float, cfg: ReLoRALMConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)


def _finite_or_none(values: list[float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


def train_method(method: str, cfg: ReLoRALMConfig, unit: UnitContext, label: str = "") -> dict[str, Any]:
    """Train one method of the comparison in one unit of work and describe the result.

    ``full-rank`` and ``lora-only`` train ``cfg.total_steps`` steps from a fresh
    initialisation. ``relora`` first trains full-rank for ``cfg.warm_start_steps``
    (the reference's warm start; its own steps, on the full-rank schedule),
    then injects the adapters into those weights and trains the remaining
    steps with restarts. Both phases checkpoint in the unit's folder and resume
    from there; the checkpoints are deleted once the unit is done.

    Parameters
    ----------
    method : {"full-rank", "lora-only", "relora"}
    cfg : ReLoRALMConfig
    unit : UnitContext
        Device, generators and folder of the unit (global RNGs seeded by the engine).
    label : str, default=""
        Prefix of the progress-bar description (the scaling study passes the size).

    Returns
    -------
    dict
        ``val_ppl``, ``trainable_params``, ``optimizer_state_bytes``,
        ``update_rank``, ``tokens_per_second``, ``train_seconds``, ``log``
        (steps, val_loss, train_loss, restarts: JSON-ready), ``spectra``
        (layer name -> singular values of ``W_T - W_0``) and ``peak_bytes``
        (CUDA peak memory, 0 on CPU).
    """
    from sciprob.learning.lowrank import (
        JaggedCosineLR,
        ReLoRA,
        count_parameters,
        effective_weights,
        eval_windows,
        inject_lora,
        load_corpus,
        optimizer_state_bytes,
        train_lm,
        update_spectra,
    )

    corpus = load_corpus(cfg.include_stdlib)
    val_windows = eval_windows(corpus.val, cfg.seq_len, cfg.eval_windows)
    device = unit.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = _build_model(cfg).to(device)
    generator = unit.generator("cpu")  # batches are drawn on the CPU, where the corpus lives
    common: dict[str, Any] = dict(
        batch_size=cfg.batch_size,
        seq_len=cfg.seq_len,
        generator=generator,
        device=device,
        grad_clip=cfg.grad_clip,
        eval_every=cfg.eval_every,
        checkpoint_every=cfg.checkpoint_every,
        resume=True,
        on_nonfinite=cfg.on_nonfinite,
    )
    name = f"{label}{method}"
    warm_log = None
    if method == "relora":
        optimizer = _optimizer(model, cfg.lr, cfg)
        # The full-rank run's schedule, of which the warm start is the first part.
        scheduler = JaggedCosineLR(
            optimizer, cfg.total_steps, cfg.warmup_steps, cfg.total_steps, 0, cfg.min_lr_ratio
        )
        warm_log = train_lm(
            model,
            optimizer,
            scheduler,
            corpus.train,
            val_windows,
            steps=cfg.warm_start_steps,
            description=f"{name} warm start",
            checkpoint_path=unit.dir / "warm_start.pt",
            **common,
        )
    if method != "full-rank":
        inject_lora(model, TARGETS, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
    start_weights = effective_weights(model, TARGETS)
    optimizer = _optimizer(model, cfg.lr if method == "full-rank" else cfg.lora_lr, cfg)
    relora = None
    if method == "relora":
        steps, offset = cfg.total_steps - cfg.warm_start_steps, cfg.warm_start_steps
        scheduler = JaggedCosineLR(
            optimizer,
            steps,
            cfg.relora_warmup_steps,
            cfg.reset_every,
            cfg.restart_warmup_steps,
            cfg.min_lr_ratio,
        )
        relora = ReLoRA(
            model,
            optimizer,
            cfg.reset_every,
            reset_mode=cfg.reset_mode,
            prune_ratio=cfg.prune_ratio,
            generator=torch.Generator().manual_seed(int(unit.rng.integers(2**63))),
        )
    else:
        steps, offset = cfg.total_steps, 0
        # One period as long as the run: a plain cosine with warm-up.
        scheduler = JaggedCosineLR(optimizer, steps, cfg.warmup_steps, steps, 0, cfg.min_lr_ratio)
    log = train_lm(
        model,
        optimizer,
        scheduler,
        corpus.train,
        val_windows,
        steps=steps,
        relora=relora,
        step_offset=offset,
        description=name,
        checkpoint_path=unit.checkpoint_path,
        **common,
    )
    spectra = update_spectra(start_weights, effective_weights(model, TARGETS))
    ranks = [s.rank(cfg.rank_rtol) for s in spectra]
    curve = {"steps": list(log.steps), "val_loss": list(log.val_loss), "train_loss": list(log.train_loss)}
    if warm_log is not None:  # the low-rank phase's first point repeats the warm start's last one
        curve = {k: list(getattr(warm_log, k)) + v[1:] for k, v in curve.items()}
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    for stale in (unit.dir / "warm_start.pt", unit.checkpoint_path):
        stale.unlink(missing_ok=True)
    return {
        "val_ppl": math.exp(log.val_loss[-1]),
        "trainable_params": float(count_parameters(model, trainable_only=True)),
        "optimizer_state_bytes": float(optimizer_state_bytes(optimizer)),
        "update_rank": sum(ranks) / len(ranks),
        "tokens_per_second": steps * cfg.batch_size * cfg.seq_len / log.seconds,
        "train_seconds": log.seconds + (warm_log.seconds if warm_log is not None else 0.0),
        "log": {
            "steps": curve["steps"],
            "val_loss": _finite_or_none(curve["val_loss"]),
            "train_loss": _finite_or_none(curve["train_loss"]),
            "restarts": list(log.restarts),
        },
        "spectra": {s.name: s.singular_values.tolist() for s in spectra},
        "peak_bytes": float(peak),
    }


def _units(cfg: ReLoRALMConfig) -> list[dict[str, Any]]:
    return [{"method": m} for m in METHODS]


def _combine(cfg: ReLoRALMConfig, results: list[UnitResult], ctx: RunContext) -> dict[str, float]:
    """Compare the three methods: metrics, ratios, the table, figures and notes."""
    records = {r.key["method"]: r.artifacts for r in results}
    metrics: dict[str, float] = {}
    for r in results:
        metrics.update(r.metrics)
        ctx.timings.update(r.timings)
    rows = [
        "| method | val ppl | trainable params | optimizer state (MB) | tokens/s | update rank | "
        + " | ".join(f"#σ<0.1 {k}" for k in LAYER_KINDS)
        + " |",
        "|---" * (6 + len(LAYER_KINDS)) + "|",
    ]
    for method, rec in records.items():
        spectra = rec["spectra"]
        below = [
            sum(sum(1 for v in s if v < 0.1) for n, s in spectra.items() if n.endswith(k))
            for k in LAYER_KINDS
        ]
        rows.append(
            f"| {method} | {metrics[f'val_ppl/{method}']:.3f} | "
            f"{metrics[f'trainable_params/{method}']:,.0f} | "
            f"{metrics[f'optimizer_state_bytes/{method}'] / 2**20:.2f} | "
            f"{ctx.timings[f'tokens_per_second/{method}']:.0f} | "
            f"{metrics[f'update_rank/{method}']:.1f} | " + " | ".join(map(str, below)) + " |"
        )
    for method in ("relora", "lora-only"):
        metrics[f"val_ppl_ratio/{method}"] = metrics[f"val_ppl/{method}"] / metrics["val_ppl/full-rank"]
    ctx.table("Methods at equal tokens", "\n".join(rows))
    _figures(cfg, ctx, records)
    from sciprob.learning.lowrank import load_corpus

    corpus = load_corpus(cfg.include_stdlib)
    _notes(cfg, ctx, metrics, records, corpus_bytes=corpus.train.numel() + corpus.val.numel())
    return metrics


def _figures(cfg: ReLoRALMConfig, ctx: RunContext, records: dict[str, dict[str, Any]]) -> None:
    import matplotlib.pyplot as plt

    colors = {"full-rank": "tab:blue", "lora-only": "tab:orange", "relora": "tab:green"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, start in zip(axes, (0, cfg.warm_start_steps)):
        for method, rec in records.items():
            steps, losses = rec["log"]["steps"], rec["log"]["val_loss"]
            shown = [(s, math.exp(v)) for s, v in zip(steps, losses, strict=True) if s >= start]
            ax.plot(*zip(*shown, strict=True), "-", color=colors[method], label=method)
        for i, step in enumerate(records["relora"]["log"]["restarts"]):
            ax.axvline(step, color=colors["relora"], ls=":", lw=1, label="ReLoRA restart" if i == 0 else None)
        ax.axvline(cfg.warm_start_steps, color="gray", ls="--", lw=1, label="ReLoRA warm start")
        ax.set_xlabel(f"optimizer step ({cfg.batch_size * cfg.seq_len} tokens each)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("validation perplexity (bytes)")
    axes[0].set_title("whole run")
    axes[1].set_title("from ReLoRA's warm start (linear scale)")
    axes[0].legend(fontsize=8)
    ctx.savefig(
        fig,
        "val_ppl.png",
        "Validation perplexity per byte; right: the low-rank phase enlarged. Dotted lines: ReLoRA "
        "merge-and-restart steps.",
    )
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (title, kinds) in zip(
        axes, [("attention (q, k, v, o)", LAYER_KINDS[:4]), ("MLP (gate, up, down)", LAYER_KINDS[4:])]
    ):
        for method, rec in records.items():
            svs = [s for name, s in rec["spectra"].items() if name.rsplit(".", 1)[-1] in kinds]
            mean = torch.tensor(svs, dtype=torch.float64).mean(0)
            ax.semilogy(range(1, mean.numel() + 1), mean.clamp_min(1e-12), color=colors[method], label=method)
        ax.axvline(cfg.lora_r, color="gray", ls="--", lw=1, label=f"r = {cfg.lora_r}")
        ax.set_title(title)
        ax.set_xlabel("singular value index")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("singular value of W_T - W_0 (mean over layers)")
    axes[0].legend(fontsize=8)
    ctx.savefig(
        fig, "update_spectra.png", "Singular values of the learnt update of the attention and MLP weights."
    )
    plt.close(fig)


@experiment(
    "relora-lm",
    config=ReLoRALMConfig,
    presets=PRESETS,
    paper="Lialin et al. 2024, ReLoRA: High-Rank Training Through Low-Rank Updates (ICLR)",
    summary="Byte-level LLaMA on Python docs: ReLoRA vs full-rank vs LoRA-only at equal tokens; update rank.",
    anchors={
        "val_ppl_ratio/relora": (37.04 / 34.06, GALORE + ": ReLoRA 37.04 / full-rank 34.06"),
        "val_ppl_ratio/lora-only": (34.99 / 34.06, GALORE + ": LoRA 34.99 / full-rank 34.06"),
    },
    units=_units,
    combine=_combine,
)
def run_unit(cfg: ReLoRALMConfig, unit: UnitContext) -> UnitResult:
    """Train one method (the unit's ``method``) and return its metrics, curve and update spectra."""
    method = unit.key["method"]
    rec = train_method(method, cfg, unit)
    return UnitResult(
        metrics={
            f"{k}/{method}": rec[k]
            for k in ("val_ppl", "trainable_params", "optimizer_state_bytes", "update_rank")
        },
        artifacts={"log": rec["log"], "spectra": rec["spectra"]},
        timings={
            f"tokens_per_second/{method}": rec["tokens_per_second"],
            f"train_seconds/{method}": rec["train_seconds"],
        },
    )


def _notes(
    cfg: ReLoRALMConfig, ctx: RunContext, m: dict[str, float], records: dict[str, Any], corpus_bytes: int
) -> None:
    rel, lora = m["val_ppl_ratio/relora"], m["val_ppl_ratio/lora-only"]
    passes = cfg.total_steps * cfg.batch_size * cfg.seq_len / corpus_bytes
    corpus_name = "Python's pydoc topics" + (" and standard-library sources" if cfg.include_stdlib else "")
    within = "holds" if rel <= 1.10 else "does not hold"
    better = "holds" if m["val_ppl/relora"] < m["val_ppl/lora-only"] else "does not hold"
    restarts = records["relora"]["log"]["restarts"]
    ctx.note(
        f"Equal tokens: {cfg.total_steps} steps x {cfg.batch_size} x {cfg.seq_len} bytes for every method; "
        f"ReLoRA's first {cfg.warm_start_steps} steps are full-rank training (its warm start, trained in "
        "its own unit with its own seed), then "
        f"{len(restarts)} restarts at steps {restarts}. Each method is one unit of work with its own "
        "initial weights and batches (seeded by the engine from the run seed and the method). "
        "Trainable parameters, optimizer state, throughput "
        "and update rank of ReLoRA refer to its low-rank phase; its update rank is that of W_T minus the "
        "warm-start weights."
    )
    ctx.note(
        f"Paper claim 'ReLoRA within 10 % of full-rank perplexity': ratio {rel:.3f} here, so it {within}. "
        f"'ReLoRA better than LoRA-only at the same rank': {m['val_ppl/relora']:.3f} vs "
        f"{m['val_ppl/lora-only']:.3f}, it {better} (LoRA-only/full-rank ratio {lora:.3f}). The published "
        "comparison (GaLore Table 2, C4, 60M to 1B) has ReLoRA/full-rank ratios 1.09, 1.17, 1.55, 1.18 and "
        "LoRA/full-rank 1.03, 1.35, 1.36, 1.23; the ReLoRA abstract reports performance comparable to "
        "full-rank training (its perplexity table was not available to us). This model has "
        f"{m['trainable_params/full-rank']:,.0f} parameters and trains on bytes of a "
        f"{corpus_bytes / 1e6:.2f} MB corpus ({passes:.1f} training tokens per corpus byte), so "
        "absolute perplexities are not comparable with C4 numbers and only the ratios are anchored."
    )
    ctx.note(
        "Changes from the reference recipes (130M/250M LLaMA on C4): byte tokens (vocabulary 256) on "
        f"{corpus_name} instead of a 32K SentencePiece vocabulary on C4; width "
        f"{cfg.dim}, {cfg.n_layers} layers "
        f"instead of 768 and 12-24; {cfg.total_steps} steps of {cfg.batch_size * cfg.seq_len} tokens instead "
        f"of 20K steps of about 0.3-0.6M; rank {cfg.lora_r} (reference 128 at width 768); warm start after "
        f"{cfg.warm_start_steps} and restarts every {cfg.reset_every} steps (reference: 5000 and 5000 of "
        f"20000); restart warm-up {cfg.restart_warmup_steps} (reference 100); optimizer reset "
        f"'{cfg.reset_mode}' (reference default: random pruning at 0.999); LoRA dropout {cfg.lora_dropout} "
        f"(reference 0.1); learning rates {cfg.lr:g} full-rank and {cfg.lora_lr:g} LoRA/ReLoRA (reference "
        "1e-3 and 2x). Kept: AdamW (0.9, 0.999), no weight decay, gradient clipping 1.0, min_lr_ratio 0.1, "
        "adapters on every attention and MLP linear layer with embeddings, norms and head trainable."
    )
    ctx.note(
        f"Rank evidence: mean numerical rank (singular values above {cfg.rank_rtol:g} of the largest) of "
        f"W_T - W_0 over attention and MLP layers: full-rank {m['update_rank/full-rank']:.1f}, LoRA-only "
        f"{m['update_rank/lora-only']:.1f} (at most r = {cfg.lora_r}), ReLoRA {m['update_rank/relora']:.1f}. "
        "The reference's counts of singular values below 0.1 (130M, 12 layers, Q/K/V/up/down) are full-rank "
        "1173/1203/2641/0/0, ReLoRA 5693/5723/6050/4884/4942, LoRA 7680/7680/7681/7680/7680; the table "
        "gives this run's counts."
    )


# Registers ``relora-scaling`` (the catalog maps it to this module); it builds on train_method above.
from sciprob.learning.lowrank import scaling as _scaling  # noqa: E402, F401
