"""Peak memory and throughput of full-rank vs ReLoRA training of one LLaMA size.

Usage::

    python benchmarks/relora_memory.py                     # CUDA if present, else CPU
    python benchmarks/relora_memory.py --dim 512 --layers 8 --steps 20 --device cpu

Each method trains the same model for ``--steps`` AdamW steps on random byte
sequences (throughput does not depend on the text). On CUDA, peak memory is
``torch.cuda.max_memory_allocated`` per method in this process; on CPU each
method runs in its own child process and its peak resident set size
(``ru_maxrss``) is read with ``os.wait4``, next to that of a child that only
builds the model (the baseline the training adds to). The exact bytes of
parameters, gradients and optimizer state are counted from the tensors.
Ratios are ReLoRA / full-rank, measured in this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from sciprob.learning.lowrank import LlamaConfig, LlamaLM, ReLoRA, inject_lora, optimizer_state_bytes


def _train(args: argparse.Namespace, method: str, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    model = LlamaLM(
        LlamaConfig(
            dim=args.dim,
            n_layers=args.layers,
            n_heads=args.heads,
            hidden_dim=args.hidden,
            max_seq_len=args.seq_len,
        )
    )
    if method == "relora":
        inject_lora(model, ("attn", "mlp"), r=args.rank, alpha=float(args.rank))
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    out = {"param_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}
    if method == "build-only":
        return out
    opt = torch.optim.AdamW(params, lr=1e-3)
    relora = ReLoRA(model, opt, reset_every=max(1, args.steps // 2)) if method == "relora" else None
    batch = torch.randint(0, 256, (args.batch, args.seq_len + 1), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elapsed = 0.0
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        loss = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if relora is not None:
            relora.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= args.warmup:
            elapsed += time.perf_counter() - start
    out["grad_bytes"] = sum(p.numel() * p.element_size() for p in params)
    out["optimizer_state_bytes"] = optimizer_state_bytes(opt)
    out["tokens_per_second"] = args.steps * args.batch * args.seq_len / elapsed
    if device.type == "cuda":
        out["peak_bytes"] = torch.cuda.max_memory_allocated(device)
    return out


def _child(method: str) -> dict[str, float]:
    """Run one method in a fresh process; add its peak RSS (bytes) from ``os.wait4``."""
    argv = [sys.executable, __file__, *sys.argv[1:], "--worker", method, "--device", "cpu"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {method!r} failed with exit code {proc.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_bytes"] = usage.ru_maxrss * 1024  # Linux reports kilobytes
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=688)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--worker", choices=("full-rank", "relora", "build-only"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    if args.worker:
        print(json.dumps(_train(args, args.worker, torch.device("cpu"))))
        return
    device = torch.device("cuda" if use_cuda else "cpu")
    print(
        f"device {device}; dim {args.dim}, layers {args.layers}, seq {args.seq_len}, batch {args.batch}, "
        f"rank {args.rank}, {args.steps} timed steps"
    )
    if use_cuda:
        results = {m: _train(args, m, device) for m in ("full-rank", "relora")}
    else:
        base = _child("build-only")["peak_bytes"]
        results = {m: _child(m) for m in ("full-rank", "relora")}
        print(f"baseline peak RSS (model built, no training): {base / 2**20:.1f} MiB")
    mib = 2**20
    print(f"{'':24s}{'full-rank':>14s}{'relora':>14s}{'ratio':>9s}")
    for key, scale, unit in [
        ("peak_bytes", mib, "MiB"),
        ("grad_bytes", mib, "MiB"),
        ("optimizer_state_bytes", mib, "MiB"),
        ("tokens_per_second", 1, "tok/s"),
    ]:
        a, b = results["full-rank"][key], results["relora"][key]
        print(f"{key + ' (' + unit + ')':24s}{a / scale:14.2f}{b / scale:14.2f}{b / a:9.3f}")


if __name__ == "__main__":
    main()
