"""Peak training memory and throughput of ReLoRA against full-rank training, at three LLaMA sizes.

Usage::

    python benchmarks/relora_memory.py                 # CUDA if present, else CPU
    python benchmarks/relora_memory.py --device cpu --steps 4 --sizes small,medium

Each size trains the same model with AdamW for ``--warmup`` untimed and
``--steps`` timed steps on random byte sequences (throughput does not depend on
the text), once full-rank and once with rank-r adapters on every attention and
MLP layer. ReLoRA's restart (merge, re-initialisation, optimizer reset) falls in
the untimed warm-up and is timed on its own (in training it comes once every
``reset_every`` steps, thousands in the reference). Throughput is the best of
``--repeats`` interleaved runs per method (the machine may be shared), both per
wall-clock second and per second of the process's CPU time
(``time.process_time``); with one torch thread the two agree on an idle
machine, and on a loaded one the CPU-time figure is the one not inflated by
other jobs. Ratios are ReLoRA / full-rank, measured in this one run.

How peak memory is measured
---------------------------
CPU: every (size, method) runs in a fresh child process, and its peak resident
set size is read from ``os.wait4``'s ``ru_maxrss`` (the kernel's high-water
mark, no sampling, no Python-level tracing). The children run with
``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc serves every block of 64 KiB or
more (every tensor of interest) with its own ``mmap`` and returns it to the
system when freed: the resident set then follows the live tensors instead of
keeping freed heap pages, and the high-water mark is the peak of live memory.
A child that imports the same modules and builds nothing gives the baseline
(interpreter, torch, libraries); "training peak" is the child's peak minus that
baseline, so it counts weights, gradients, optimizer state, activations and
temporaries. CUDA: ``torch.cuda.max_memory_allocated`` around each method, in
this process. The exact bytes of gradients and optimizer state are also
counted from the tensors.
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

# name: (dim, layers, heads, hidden, rank, batch, seq_len); rank about dim / 6, as the reference's 128 of 768.
SIZES = {
    "small": (256, 4, 4, 688, 32, 16, 128),
    "medium": (512, 6, 8, 1376, 64, 8, 128),
    "large": (768, 8, 12, 2048, 128, 4, 128),
}
METHODS = ("full-rank", "relora")
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "131072"}


def _train(size: str, method: str, steps: int, warmup: int, device: torch.device) -> dict[str, float]:
    dim, layers, heads, hidden, rank, batch, seq_len = SIZES[size]
    g = torch.Generator().manual_seed(0)
    out: dict[str, float] = {}
    if method == "baseline":
        return out
    model = LlamaLM(
        LlamaConfig(dim=dim, n_layers=layers, n_heads=heads, hidden_dim=hidden, max_seq_len=seq_len)
    )
    out["params"] = sum(p.numel() for p in model.parameters())
    if method == "relora":
        inject_lora(model, ("attn", "mlp"), r=rank, alpha=float(rank))
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    # The restart (merge, re-initialisation, optimizer reset) happens once in the untimed warm-up and is
    # timed on its own: in training it comes once per `reset_every` (thousands of) steps.
    relora = ReLoRA(model, opt, reset_every=warmup) if method == "relora" else None
    tokens = torch.randint(0, 256, (batch, seq_len + 1), generator=g).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start_bytes = torch.cuda.memory_allocated(device)
    elapsed = cpu = 0.0
    for step in range(warmup + steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        loss = model.loss(tokens)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if relora is not None and step < warmup:
            restart_start = time.perf_counter()
            if relora.step():
                out["restart_seconds"] = time.perf_counter() - restart_start
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            elapsed += time.perf_counter() - start
            cpu += time.process_time() - start_cpu
    out["grad_bytes"] = sum(p.numel() * p.element_size() for p in params)
    out["optimizer_state_bytes"] = optimizer_state_bytes(opt)
    out["tokens_per_second"] = steps * batch * seq_len / elapsed
    out["tokens_per_cpu_second"] = steps * batch * seq_len / cpu
    if device.type == "cuda":
        # Everything allocated for training, weights included (they were allocated before the reset).
        out["train_peak_bytes"] = (
            torch.cuda.max_memory_allocated(device)
            - start_bytes
            + sum(t.numel() * t.element_size() for t in model.state_dict().values())
        )
        out["peak_bytes"] = torch.cuda.max_memory_allocated(device)
    return out


def _child(size: str, method: str, args: argparse.Namespace, memory: bool) -> dict[str, float]:
    """Run one (size, method) in a fresh process; add its peak RSS (bytes) from ``os.wait4``.

    ``memory=True`` sets :data:`MALLOC_ENV` (exact high-water mark, but one mmap per
    tensor slows training); ``memory=False`` runs with the default allocator for the timing.
    """
    steps = 1 if memory else args.steps
    argv = [sys.executable, __file__, "--worker", f"{size}:{method}", "--steps", str(steps)]
    argv += ["--warmup", str(args.warmup)]
    env = dict(os.environ, **MALLOC_ENV) if memory else dict(os.environ)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"worker {size}:{method} failed with exit code {code}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_bytes"] = usage.ru_maxrss * 1024  # Linux reports kilobytes
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="small,medium,large", help="comma-separated subset of " + ",".join(SIZES)
    )
    parser.add_argument("--steps", type=int, default=4, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (>= 1: the restart)")
    parser.add_argument("--repeats", type=int, default=2, help="timing runs per method (best is kept)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1 or args.repeats < 1:
        parser.error("--warmup, --steps and --repeats must be >= 1")
    if args.worker:
        size, method = args.worker.split(":")
        print(json.dumps(_train(size, method, args.steps, args.warmup, torch.device("cpu"))))
        return
    sizes = args.sizes.split(",")
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"--sizes: unknown {unknown}; choose from {list(SIZES)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    threads = torch.get_num_threads()
    print(f"device {device}, torch threads {threads}, {args.steps} timed steps after {args.warmup}")
    base = 0 if use_cuda else _child(sizes[0], "baseline", args, memory=True)["peak_bytes"]
    if not use_cuda:
        print(f"baseline peak RSS (interpreter, torch, sciprob; nothing built): {base / 2**20:.1f} MiB")
    mib = 2**20
    header = (
        f"{'size':8s}{'params':>8s}{'r':>5s}{'tokens':>7s} | {'train peak MiB full / relora':>29s}"
        f"{'ratio':>7s} | {'process peak ratio':>18s} | {'grad+opt MiB full / relora':>27s} | "
        f"{'tok/s full / relora':>20s}{'ratio':>7s} | {'tok/CPU-s ratio':>15s} | restart s"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        if use_cuda:
            res = {}
            for m in METHODS:
                res[m] = _train(size, m, args.steps, args.warmup, device)
                torch.cuda.empty_cache()
        else:
            res = {m: _child(size, m, args, memory=True) for m in METHODS}
            for m in METHODS:
                res[m]["train_peak_bytes"] = res[m]["peak_bytes"] - base
            # Throughput: the best of --repeats runs per method, interleaved, against load from other jobs.
            for m in METHODS:
                res[m]["tokens_per_second"] = res[m]["tokens_per_cpu_second"] = 0.0
            for _ in range(args.repeats):
                for m in METHODS:
                    timed = _child(size, m, args, memory=False)
                    for key in ("tokens_per_second", "tokens_per_cpu_second"):
                        res[m][key] = max(res[m][key], timed[key])
                    res[m]["restart_seconds"] = timed.get("restart_seconds", 0.0)
        f, r = res["full-rank"], res["relora"]
        dim, _, _, _, rank, batch, seq_len = SIZES[size]
        state_f = (f["grad_bytes"] + f["optimizer_state_bytes"]) / mib
        state_r = (r["grad_bytes"] + r["optimizer_state_bytes"]) / mib
        print(
            f"{size:8s}{f['params'] / 1e6:7.1f}M{rank:5d}{batch * seq_len:7d} | "
            f"{f['train_peak_bytes'] / mib:14.1f} / {r['train_peak_bytes'] / mib:10.1f}"
            f"{r['train_peak_bytes'] / f['train_peak_bytes']:7.3f} | "
            f"{r['peak_bytes'] / f['peak_bytes']:18.3f} | {state_f:12.1f} / {state_r:12.1f} | "
            f"{f['tokens_per_second']:9.0f} / {r['tokens_per_second']:8.0f}"
            f"{r['tokens_per_second'] / f['tokens_per_second']:7.3f} | "
            f"{r['tokens_per_cpu_second'] / f['tokens_per_cpu_second']:15.3f} | "
            f"{r.get('restart_seconds', 0.0):9.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
