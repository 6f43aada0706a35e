"""Experiment ``relora-scaling``: whether ReLoRA's advantage over LoRA grows with model size.

The ReLoRA abstract [1]_ says "the efficiency of ReLoRA increases with model
size". This study trains full-rank, LoRA-only and ReLoRA (the three methods of
``relora-lm``, :func:`sciprob.learning.lowrank.experiments.train_method`) at
several LLaMA sizes, each for the same number of tokens per parameter, with
the rank a fixed fraction of the width and the warm start, restart period and
warm-ups fixed fractions of the budget. One unit of work per (size, method).
The combining step computes the perplexity ratios per size, their trend
against log10(parameters), the peak-memory ratio (a measurement, in timings),
and puts them beside the independent GaLore numbers at 60M-1B [2]_.

References
----------
.. [1] V. Lialin et al., "ReLoRA: High-Rank Training Through Low-Rank Updates", ICLR 2024.
.. [2] J. Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection",
   ICML 2024, Table 2 (C4 validation perplexity; quoted in learning.md §1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from sciprob.config import param
from sciprob.experiments import RunContext, UnitContext, UnitResult, experiment
from sciprob.learning.lowrank.experiments import METHODS, ReLoRALMConfig, train_method

# GaLore Table 2 (C4 validation perplexity), learning.md §1: size -> (full-rank, LoRA, ReLoRA).
GALORE_TABLE2 = {
    60e6: (34.06, 34.99, 37.04),
    130e6: (25.08, 33.92, 29.37),
    350e6: (18.80, 25.58, 29.08),
    1e9: (15.56, 19.21, 18.33),
}
GALORE = "Zhao et al. 2024 (GaLore), Table 2, LLaMA on C4 (quoted in learning.md §1)"


@dataclass(frozen=True)
class ReLoRAScalingConfig:
    """Model sizes, token budget and the fractions that scale every schedule with it."""

    widths: tuple[int, ...] = param((64, 96, 128), "model widths, one per size (ascending)")
    depths: tuple[int, ...] = param((2, 3, 4), "transformer blocks, one per size")
    head_dim: int = param(32, "width per attention head (even)")
    tokens_per_param: float = param(20.0, "training tokens per model parameter, every size and method")
    rank_fraction: float = param(0.25, "adapter rank as a fraction of the width")
    seq_len: int = param(64, "tokens (bytes) per sequence")
    batch_size: int = param(16, "sequences per optimizer step")
    lr: float = param(2e-3, "peak learning rate of full-rank training")
    lora_lr: float = param(4e-3, "peak learning rate of LoRA-only and ReLoRA (2x, as the reference)")
    warm_start_fraction: float = param(
        0.25, "share of the budget ReLoRA trains full-rank first (reference 1/4)"
    )
    reset_fraction: float = param(0.25, "restart period as a share of the budget (reference 5000 of 20000)")
    warmup_fraction: float = param(0.05, "learning-rate warm-ups as a share of the budget / of a period")
    reset_mode: Literal["magnitude", "random", "zero"] = param("zero", "optimizer reset at a restart")
    eval_points: int = param(16, "validation measurements per run")
    eval_windows: int = param(128, "validation sequences per measurement")
    include_stdlib: bool = param(True, "add standard-library sources to the corpus (about 1 MB in all)")
    measure_memory: bool = param(True, "measure peak training memory per size (profiler, a few steps)")
    on_nonfinite: Literal["raise", "warn"] = param("raise", "a NaN/inf loss stops the unit or skips the step")

    def __post_init__(self) -> None:
        if len(self.widths) < 1 or len(self.widths) != len(self.depths):
            raise ValueError(
                f"`widths` and `depths` must be non-empty and of one length, "
                f"got {self.widths} and {self.depths}"
            )
        if list(self.widths) != sorted(set(self.widths)):
            raise ValueError(f"`widths` must be strictly ascending, got {self.widths}")
        if self.head_dim < 2 or self.head_dim % 2 or any(w % self.head_dim for w in self.widths):
            raise ValueError(f"`head_dim`={self.head_dim} must be even and divide every width {self.widths}")
        if min(self.depths) < 1:
            raise ValueError(f"`depths` must be >= 1, got {self.depths}")
        for name in ("tokens_per_param", "lr", "lora_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be positive, got {getattr(self, name)}")
        for name in ("rank_fraction", "warm_start_fraction", "reset_fraction", "warmup_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"`{name}` must lie in (0, 1), got {getattr(self, name)}")
        for name in ("seq_len", "batch_size", "eval_points", "eval_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        for width, depth in zip(self.widths, self.depths, strict=True):
            self.size_config(width, depth)  # every derived schedule must be valid before any work

    def size_config(self, width: int, depth: int) -> ReLoRALMConfig:
        """Return the ``relora-lm`` configuration of one size (ValueError naming what does not fit)."""
        hidden = 8 * math.ceil(8 * width / 3 / 8)  # LLaMA's 8/3 width, a multiple of 8
        params = _param_count(width, depth, hidden)
        tokens_per_step = self.seq_len * self.batch_size
        total = max(8, math.ceil(self.tokens_per_param * params / tokens_per_step))
        reset_every = max(2, round(self.reset_fraction * total))
        warm_start = min(total - 1, max(1, round(self.warm_start_fraction * total)))
        warmup = max(1, round(self.warmup_fraction * total))
        restart_warmup = max(1, round(self.warmup_fraction * reset_every))
        try:
            return ReLoRALMConfig(
                dim=width,
                n_layers=depth,
                n_heads=width // self.head_dim,
                hidden_dim=hidden,
                seq_len=self.seq_len,
                batch_size=self.batch_size,
                total_steps=total,
                warm_start_steps=warm_start,
                lr=self.lr,
                lora_lr=self.lora_lr,
                warmup_steps=min(warmup, warm_start),
                relora_warmup_steps=min(restart_warmup, total - warm_start),
                reset_every=reset_every,
                restart_warmup_steps=min(restart_warmup, reset_every - 1),
                lora_r=max(1, round(self.rank_fraction * width)),
                lora_alpha=float(max(1, round(self.rank_fraction * width))),
                reset_mode=self.reset_mode,
                eval_every=max(1, total // self.eval_points),
                eval_windows=self.eval_windows,
                include_stdlib=self.include_stdlib,
                on_nonfinite=self.on_nonfinite,
            )
        except ValueError as err:
            raise ValueError(f"size width={width}, depth={depth}: {err}") from None


def _param_count(width: int, depth: int, hidden: int, vocab: int = 256) -> int:
    """Parameters of LlamaLM: embedding and head, per block 4 d^2 + 3 d h + 2 norms, final norm."""
    return 2 * vocab * width + depth * (4 * width * width + 3 * width * hidden + 2 * width) + width


def _r(cfg: ReLoRAScalingConfig, width: int) -> int:
    return max(1, round(cfg.rank_fraction * width))


def _size_name(width: int, depth: int) -> str:
    return f"d{width}x{depth}"


def _units(cfg: ReLoRAScalingConfig) -> list[dict[str, Any]]:
    return [
        {"size": _size_name(w, d), "method": m}
        for w, d in zip(cfg.widths, cfg.depths, strict=True)
        for m in METHODS
    ]


def _sizes(cfg: ReLoRAScalingConfig) -> dict[str, tuple[int, int]]:
    return {_size_name(w, d): (w, d) for w, d in zip(cfg.widths, cfg.depths, strict=True)}


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` against ``xs`` (0 for fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def _combine(cfg: ReLoRAScalingConfig, results: list[UnitResult], ctx: RunContext) -> dict[str, float]:
    """Ratios per size, their trend with size, memory ratios, the figure and the verdict."""
    metrics: dict[str, float] = {}
    by = {(r.key["size"], r.key["method"]): r for r in results}
    sizes = _sizes(cfg)
    params = {s: by[(s, "full-rank")].artifacts["params"] for s in sizes}
    for r in results:
        metrics.update(r.metrics)
        ctx.timings.update(r.timings)
    rows = [
        "| size | params | tokens | rank | full-rank ppl | LoRA ppl | ReLoRA ppl | ReLoRA/LoRA | ReLoRA/full "
        "| LoRA/full | peak memory ReLoRA/full |",
        "|---" * 11 + "|",
    ]
    for s in sizes:
        full, lora, rel = (metrics[f"val_ppl/{s}/{m}"] for m in METHODS)
        metrics[f"relora_vs_lora/{s}"] = rel / lora
        metrics[f"relora_vs_full/{s}"] = rel / full
        metrics[f"lora_vs_full/{s}"] = lora / full
        mem = {m: by[(s, m)].timings.get(f"peak_memory_bytes/{s}/{m}") for m in METHODS}
        if mem["full-rank"] and mem["relora"]:
            ctx.timings[f"peak_memory_ratio/{s}"] = mem["relora"] / mem["full-rank"]
        art = by[(s, "full-rank")].artifacts
        ratio = ctx.timings.get(f"peak_memory_ratio/{s}")
        rows.append(
            f"| {s} | {params[s]:,} | {art['tokens']:,} | {art['rank']} | "
            f"{full:.3f} | {lora:.3f} | {rel:.3f} | "
            f"{rel / lora:.3f} | {rel / full:.3f} | {lora / full:.3f} | "
            + (f"{ratio:.3f}" if ratio is not None else "not measured")
            + " |"
        )
    logp = [math.log10(params[s]) for s in sizes]
    gap = [metrics[f"relora_vs_lora/{s}"] for s in sizes]
    metrics["relora_vs_lora_slope"] = _slope(logp, gap)
    metrics["relora_vs_full_slope"] = _slope(logp, [metrics[f"relora_vs_full/{s}"] for s in sizes])
    galore_logp = [math.log10(n) for n in GALORE_TABLE2]
    galore_gap = [rel / lora for _, lora, rel in GALORE_TABLE2.values()]
    ctx.anchor("relora_vs_lora_slope", _slope(galore_logp, galore_gap), GALORE + ", fit over 60M-1B")
    ctx.table("Methods per size at equal tokens per parameter", "\n".join(rows))
    ctx.table(
        "Published ratios (GaLore Table 2, C4 validation perplexity)",
        "\n".join(
            ["| size | ReLoRA/LoRA | ReLoRA/full | LoRA/full |", "|---|---|---|---|"]
            + [
                f"| {n / 1e6:.0f}M | {rel / lora:.3f} | {rel / full:.3f} | {lora / full:.3f} |"
                for n, (full, lora, rel) in GALORE_TABLE2.items()
            ]
        ),
    )
    _figure(ctx, sizes, params, metrics)
    _verdict(cfg, ctx, sizes, params, metrics, galore_gap)
    return metrics


def _figure(ctx: RunContext, sizes: dict, params: dict, metrics: dict[str, float]) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = [params[s] for s in sizes]
    styles = {
        "relora_vs_lora": ("tab:green", "ReLoRA / LoRA"),
        "relora_vs_full": ("tab:red", "ReLoRA / full"),
        "lora_vs_full": ("tab:orange", "LoRA / full"),
    }
    galore = {
        "relora_vs_lora": [rel / lora for _, lora, rel in GALORE_TABLE2.values()],
        "relora_vs_full": [rel / full for full, _, rel in GALORE_TABLE2.values()],
        "lora_vs_full": [lora / full for full, lora, _ in GALORE_TABLE2.values()],
    }
    for key, (color, label) in styles.items():
        axes[0].plot(
            xs, [metrics[f"{key}/{s}"] for s in sizes], "o-", color=color, label=f"{label} (this run)"
        )
        axes[0].plot(
            list(GALORE_TABLE2), galore[key], "s--", color=color, alpha=0.5, label=f"{label} (GaLore T2)"
        )
    axes[0].axhline(1.0, color="gray", lw=1)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("parameters")
    axes[0].set_ylabel("validation perplexity ratio")
    axes[0].legend(fontsize=7)
    axes[0].grid(True, which="both", alpha=0.3)
    mem = [ctx.timings.get(f"peak_memory_ratio/{s}") for s in sizes]
    if all(m is not None for m in mem):
        axes[1].plot(xs, mem, "o-", color="tab:purple")
    axes[1].axhline(1.0, color="gray", lw=1)
    axes[1].set_xscale("log")
    axes[1].set_xlabel("parameters")
    axes[1].set_ylabel("peak training memory, ReLoRA / full-rank")
    axes[1].grid(True, which="both", alpha=0.3)
    ctx.savefig(
        fig,
        "scaling_ratios.png",
        "Left: perplexity ratios against model size, this run (circles) and GaLore's Table 2 at 60M-1B "
        "(squares). Right: peak training memory of ReLoRA's low-rank phase over full-rank's (measured).",
    )
    plt.close(fig)


def _verdict(cfg, ctx, sizes, params, metrics, galore_gap) -> None:
    names = list(sizes)
    galore_slope = _slope([math.log10(n) for n in GALORE_TABLE2], galore_gap)
    gap = [metrics[f"relora_vs_lora/{s}"] for s in names]
    slope = metrics["relora_vs_lora_slope"]
    falling = all(b < a for a, b in zip(gap, gap[1:], strict=False))
    if len(names) < 2:
        verdict = "cannot be judged from one size"
    elif slope < 0 and falling:
        verdict = "holds at these sizes: ReLoRA/LoRA falls at every step up in size"
    elif slope < 0:
        verdict = "holds only as a trend (negative slope), not at every step up in size"
    else:
        verdict = (
            "does not hold at these sizes: ReLoRA's perplexity relative to LoRA's does not fall with size"
        )
    ctx.note(
        "Claim 'the efficiency of ReLoRA increases with model size', read as: ReLoRA's perplexity "
        "relative to "
        f"LoRA-only's falls as the model grows. ReLoRA/LoRA = {', '.join(f'{g:.3f}' for g in gap)} at "
        f"{', '.join(f'{params[s]:,}' for s in names)} parameters; least-squares slope against log10(params) "
        f"{slope:+.4f} per decade. The claim {verdict}. GaLore's Table 2 (60M, 130M, 350M, 1B) gives "
        f"{', '.join(f'{g:.3f}' for g in galore_gap)} (slope {galore_slope:+.4f}), which does not fall "
        "monotonically with size either. One seed per cell: differences of a few per cent between sizes "
        "may be within the variation between seeds."
    )
    ctx.note(
        f"Budget: {cfg.tokens_per_param:g} tokens per parameter for every size and method "
        "(Chinchilla's 20 in "
        f"the paper preset), sequences of {cfg.seq_len} bytes, batch {cfg.batch_size}; rank "
        f"{cfg.rank_fraction:g} x width; ReLoRA trains full-rank for {cfg.warm_start_fraction:g} "
        "of the budget, "
        f"then restarts every {cfg.reset_fraction:g} of it with the jagged schedule; optimizer reset "
        f"'{cfg.reset_mode}'. Each (size, method) is one unit with its own seed. The models "
        f"({min(params.values()):,}-{max(params.values()):,} parameters, byte tokens, a 0.5-1 MB corpus) are "
        f"{60e6 / max(params.values()):,.0f} times or more smaller than the paper's smallest (60M), so "
        "only the trend with size and the ratios are compared, not perplexities."
    )
    if not any(f"peak_memory_ratio/{s}" in ctx.timings for s in names):
        return
    ctx.note(
        "Peak memory (timings, `peak_memory_ratio/<size>`): the high-water mark of live tensor bytes of "
        "building the model and two AdamW steps of its low-rank phase (LoRA adapters, one restart) over "
        "full-rank's, from torch.profiler's allocation events (profile_memory=True) on CPU, "
        "torch.cuda.max_memory_allocated on CUDA. The peak comes at the end of a forward pass, where "
        "full-rank training's extra is the two Adam moments of each weight (2 d^2 numbers for a d x d "
        "layer) and an adapter's is its saved intermediate (tokens x r) plus its factors and their moments "
        "(6 r d); per d x d layer here: "
        + ", ".join(
            f"{cfg.batch_size * cfg.seq_len * _r(cfg, w) + 6 * _r(cfg, w) * w:,} vs {2 * w * w:,}"
            for w, _ in sizes.values()
        )
        + " (adapter vs full-rank), so the ratio falls below 1 only once the width outgrows "
        "tokens x r (benchmarks/relora_memory.py: 0.65 at 57M parameters)."
    )


@experiment(
    "relora-scaling",
    config=ReLoRAScalingConfig,
    presets={
        "tiny": {
            "widths": (16, 32),
            "depths": (1, 1),
            "head_dim": 8,
            "tokens_per_param": 0.5,
            "seq_len": 16,
            "batch_size": 4,
            "eval_points": 2,
            "eval_windows": 4,
            "include_stdlib": False,
        },
        "quick": {
            "widths": (32, 48, 64),
            "depths": (1, 2, 2),
            "head_dim": 16,
            "tokens_per_param": 2.0,
            "seq_len": 32,
            "eval_points": 4,
            "eval_windows": 32,
            "include_stdlib": False,
        },
        # About 2 hours on one CPU core: 0.13M, 0.38M and 0.86M parameters at 20 tokens per parameter.
        "paper": {},
    },
    paper="Lialin et al. 2024, ReLoRA: High-Rank Training Through Low-Rank Updates (ICLR)",
    summary="Full-rank, LoRA-only and ReLoRA at several sizes, equal tokens per parameter; gap vs size.",
    units=_units,
    combine=_combine,
)
def scaling_unit(cfg: ReLoRAScalingConfig, unit: UnitContext) -> UnitResult:
    """Train one method at one size; measure its peak training memory."""
    size, method = unit.key["size"], unit.key["method"]
    width, depth = _sizes(cfg)[size]
    lm = cfg.size_config(width, depth)
    rec = train_method(method, lm, unit, label=f"{size} ")
    timings = {
        f"tokens_per_second/{size}/{method}": rec["tokens_per_second"],
        f"train_seconds/{size}/{method}": rec["train_seconds"],
    }
    if cfg.measure_memory and method != "lora-only":  # LoRA-only's memory equals ReLoRA's low-rank phase
        from sciprob.learning.lowrank.memory import peak_training_memory

        timings[f"peak_memory_bytes/{size}/{method}"] = float(
            peak_training_memory(
                dim=lm.dim,
                n_layers=lm.n_layers,
                n_heads=lm.n_heads,
                hidden_dim=lm.hidden_dim,
                seq_len=lm.seq_len,
                batch_size=lm.batch_size,
                method="full-rank" if method == "full-rank" else "lora",
                rank=lm.lora_r,
                device=unit.device,
            )
        )
    return UnitResult(
        metrics={
            f"val_ppl/{size}/{method}": rec["val_ppl"],
            f"update_rank/{size}/{method}": rec["update_rank"],
        },
        artifacts={
            "params": _param_count(lm.dim, lm.n_layers, lm.hidden_dim),
            "tokens": lm.total_steps * lm.batch_size * lm.seq_len,
            "rank": lm.lora_r,
            "log": rec["log"],
        },
        timings=timings,
    )
