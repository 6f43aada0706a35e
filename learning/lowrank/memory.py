"""Peak training memory of one LLaMA configuration, from the allocator's own events.

CPU torch has no counter like ``torch.cuda.max_memory_allocated``, and a
process's resident set mixes tensors with the libraries' one-time buffers and
freed heap pages. :func:`peak_training_memory` therefore runs model building and
a few AdamW steps under :mod:`torch.profiler` with ``profile_memory=True``,
which records every tensor allocation and free (``[memory]`` events, signed
byte counts), and returns the maximum of their running sum: the high-water mark
of live tensor bytes (weights, gradients, optimizer state, activations and
temporaries), exact to the byte, with no sampling. On CUDA it reads
``torch.cuda.max_memory_allocated`` instead. ``benchmarks/relora_memory.py``
prints this number beside the peak resident set of child processes.
"""

from __future__ import annotations

from typing import Literal

import torch


def _peak_of_events(prof: torch.profiler.profile) -> int:
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return peak


def peak_training_memory(
    *,
    dim: int,
    n_layers: int,
    n_heads: int,
    hidden_dim: int,
    seq_len: int,
    batch_size: int,
    method: Literal["full-rank", "lora"],
    rank: int = 8,
    steps: int = 2,
    device: torch.device | str = "cpu",
) -> int:
    """Peak live tensor bytes of building a :class:`LlamaLM` and training it for ``steps`` AdamW steps.

    Parameters
    ----------
    dim, n_layers, n_heads, hidden_dim, seq_len : int
        The :class:`~sciprob.learning.lowrank.LlamaConfig` (``max_seq_len = seq_len``).
    batch_size : int
        Sequences per step.
    method : {"full-rank", "lora"}
        ``"lora"``: rank-``rank`` adapters on every attention and MLP layer
        (what ReLoRA trains between restarts), with a restart after the first
        step so that its merge is included.
    rank : int, default=8
    steps : int, default=2
    device : torch.device or str, default="cpu"

    Returns
    -------
    int
        Bytes.

    Notes
    -----
    The weights are drawn from torch's global generator (as any model
    construction does); memory does not depend on their values.
    """
    from sciprob.learning.lowrank import LlamaConfig, LlamaLM, ReLoRA, inject_lora

    if method not in ("full-rank", "lora"):
        raise ValueError(f"`method` must be 'full-rank' or 'lora', got {method!r}")
    device = torch.device(device)

    def train() -> None:
        model = LlamaLM(
            LlamaConfig(
                dim=dim, n_layers=n_layers, n_heads=n_heads, hidden_dim=hidden_dim, max_seq_len=seq_len
            )
        ).to(device)
        if method == "lora":
            inject_lora(model, ("attn", "mlp"), r=rank, alpha=float(rank))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        relora = ReLoRA(model, opt, reset_every=1) if method == "lora" else None
        batch = torch.randint(0, 256, (batch_size, seq_len + 1), generator=torch.Generator()).to(device)
        for _ in range(steps):
            loss = model.loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if relora is not None:
                relora.step()

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        train()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - start
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
    ) as prof:
        train()
    return _peak_of_events(prof)
