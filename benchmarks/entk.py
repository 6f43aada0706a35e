"""Empirical NTK: time and peak memory of sciprob's two implementations vs a naive loop.

Each measurement runs in a fresh process, after a warm-up call on two
examples (lazy imports), so that peak memory is its own:
on CPU the rise of the process's peak resident set size (``ru_maxrss``) over
the set-up, on CUDA ``torch.cuda.max_memory_allocated``. The baseline, measured
in the same run, is a naive per-example loop: one forward and ``O`` backward
passes per example, the ``(N, O, P)`` Jacobian stacked, then contracted.

    python benchmarks/entk.py                      # CNN (digits-sized) and MLP, N=64, CPU
    python benchmarks/entk.py --n 128 --device cuda --chunk 32
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

MODELS = ("cnn", "mlp")
METHODS = (  # (label, implementation, outputs, chunked)
    ("naive loop", None, "full", False),
    ("jacobian-contraction", "jacobian-contraction", "full", False),
    ("jacobian-contraction", "jacobian-contraction", "full", True),
    ("ntk-vector-products", "ntk-vector-products", "full", False),
    ("ntk-vector-products", "ntk-vector-products", "full", True),
    ("jacobian-contraction", "jacobian-contraction", "trace", False),
    ("ntk-vector-products", "ntk-vector-products", "trace", False),
)


def _build(model: str, n: int, device: str):
    import torch
    from torch import nn

    from sciprob.runtime import seed_everything

    seed_everything(0, deterministic=False)  # nn layers draw their initialisation from the global RNGs
    if model == "cnn":  # the experiment's digits CNN (width 16)
        net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(128, 10),
        )
        x = torch.randn(n, 1, 8, 8)
    else:  # a wide MLP: many parameters, cheap forward pass
        net = nn.Sequential(nn.Linear(30, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
        x = torch.randn(n, 30)
    return net.to(device), x.to(device)


def _naive(net, x):
    import torch

    params = [p for p in net.parameters() if p.requires_grad]
    jac = []
    for i in range(x.shape[0]):
        out = net(x[i : i + 1]).reshape(-1)
        rows = [torch.autograd.grad(o, params, retain_graph=True) for o in out]
        jac.append(torch.stack([torch.cat([g.reshape(-1) for g in r]) for r in rows]))
    j = torch.stack(jac)  # (N, O, P)
    return torch.einsum("naf,mbf->nmab", j, j)


def _worker(model, impl, outputs, n, chunk, repeats, device, queue):
    import torch

    from sciprob.theory.linearisation import empirical_ntk

    torch.set_num_threads(1) if device == "cpu" else None
    net, x = _build(model, n, device)

    def once(inputs):
        if impl is None:
            k = _naive(net, inputs)
            return k.diagonal(dim1=2, dim2=3).sum(-1) if outputs == "trace" else k
        return empirical_ntk(net, inputs, implementation=impl, outputs=outputs, chunk_size=chunk)

    once(x[:2])  # lazy imports and one-off buffers of torch.func must not count as peak memory

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        k = once(x)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    n_params = sum(p.numel() for p in net.parameters())
    queue.put({"seconds": min(times), "peak_mb": peak / 2**20, "kernel": k.cpu().numpy(), "params": n_params})


def measure(model, impl, outputs, n, chunk, repeats, device):
    """Run one measurement in a fresh process and return its numbers."""
    import torch

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(model, impl, outputs, n, chunk, repeats, device, queue))
    proc.start()
    result = queue.get()
    proc.join()
    result["kernel"] = torch.from_numpy(result["kernel"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="examples (the kernel is N x N)")
    parser.add_argument("--chunk", type=int, default=16, help="chunk_size of the chunked rows")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per method (best is kept)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of cnn,mlp")
    args = parser.parse_args()
    if args.n < 1 or args.repeats < 1:
        parser.error("`--n` and `--repeats` must be >= 1")
    for model in args.models.split(","):
        if model not in MODELS:
            parser.error(f"`--models` entries must be in {MODELS}, got {model!r}")
        results = [
            measure(model, impl, out, args.n, args.chunk if chunked else None, args.repeats, args.device)
            for _, impl, out, chunked in METHODS
        ]
        base = results[0]
        print(f"\n{model}: N={args.n}, P={base['params']}, device={args.device}")
        print("speed-up and memory ratio are against the naive loop of this run")
        print(
            f"{'method':<34}{'outputs':<8}{'seconds':>10}{'speed-up':>10}{'peak MB':>10}{'mem ratio':>11}"
            f"{'max |K - naive|':>17}"
        )
        for (name, _, out, chunked), r in zip(METHODS, results, strict=True):
            name = f"{name} (chunk {args.chunk})" if chunked else name
            ref = base["kernel"] if out == "full" else base["kernel"].diagonal(dim1=2, dim2=3).sum(-1)
            err = (r["kernel"] - ref).abs().max().item()
            mem = r["peak_mb"] / base["peak_mb"] if base["peak_mb"] > 0 else float("nan")
            print(
                f"{name:<34}{out:<8}{r['seconds']:>10.3f}{base['seconds'] / r['seconds']:>10.2f}"
                f"{r['peak_mb']:>10.1f}{mem:>11.2f}{err:>17.2e}"
            )


if __name__ == "__main__":
    main()
