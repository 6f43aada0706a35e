"""CPU inference latency of masked, channel-pruned and CSR models against the dense model, in one run.

Usage::

    python benchmarks/sparse_speed.py                       # both models, 20 warm-ups, 60 repeats
    python benchmarks/sparse_speed.py --models mlp --repeats 10 --hidden 512
    python benchmarks/sparse_speed.py --threads 1   # on a loaded machine: no thread oversubscription

Models (the sizes measured in issue 15): an MLP 784-H-H-10 (H = 2048) at batch
256 and a CNN with convolutions 3-64-128-256-256 on 32×32 images at batch 64.
Variants of each, built from the same dense weights:

- ``masked-<s>``: magnitude masks at sparsity s through ``torch.nn.utils.parametrize``
  (same dense kernels, plus the mask product);
- ``structured-<r>``: r of the channels of every hidden layer removed by
  Torch-Pruning's dependency graph (dense kernels on smaller layers);
- ``csr-<s>`` (MLP): the masked hidden linear layers stored in CSR and
  multiplied by torch's sparse × dense kernel.

All variants are timed in the same interleaved rounds after a common warm-up
(``sciprob.learning.sparse.compare_latency``); each line prints the median
latency and the ratio to the dense model (below 1 is faster). Weights come
from ``sciprob.runtime.seed_everything(seed)``.
"""

from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

from sciprob.learning.sparse import compare_latency, prune_channels, sparsify, to_sparse_inference
from sciprob.runtime import seed_everything


def _mlp(hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)
    )


def _cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(128, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10),
    )  # fmt: skip


def _hidden(net: nn.Module) -> list[str]:
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    return names[:-1]


def variants(dense: nn.Module, example: torch.Tensor, csr: bool) -> dict[str, nn.Module]:
    """Dense, masked, structured and (for MLPs) CSR variants of ``dense``."""
    out: dict[str, nn.Module] = {"dense": dense}
    for s in (0.5, 0.9):
        m = copy.deepcopy(dense)
        sparsify(m, _hidden(m), s)
        out[f"masked-{round(100 * s)}"] = m
    st = copy.deepcopy(dense)
    prune_channels(st, example[:2], 0.5)
    out["structured-50"] = st
    if csr:
        for s in (0.5, 0.9, 0.95, 0.99):
            m = copy.deepcopy(dense)
            sparsify(m, _hidden(m), s)
            to_sparse_inference(m, _hidden(m), min_sparsity=0.0, layout="csr")
            out[f"csr-{round(100 * s)}"] = m
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print one line per variant."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    parser.add_argument("--hidden", type=int, default=2048, help="MLP hidden width")
    parser.add_argument("--mlp-batch", type=int, default=256)
    parser.add_argument("--cnn-batch", type=int, default=64)
    parser.add_argument("--image", type=int, default=32, help="CNN input side (pixels)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in ("mlp", "cnn")]
    if bad:
        parser.error(f"--models: unknown {bad}; choose from mlp, cnn")
    if args.threads < 0:
        parser.error(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.warmup} warm-ups, "
          f"{args.repeats} interleaved repeats, median")  # fmt: skip
    for name in models:
        if name == "mlp":
            dense = _mlp(args.hidden).eval()
            x = torch.randn(args.mlp_batch, 784, generator=gen)
            title = f"MLP 784-{args.hidden}-{args.hidden}-10, batch {args.mlp_batch}"
        else:
            dense = _cnn().eval()
            x = torch.randn(args.cnn_batch, 3, args.image, args.image, generator=gen)
            title = f"CNN conv 64-128-256-256 on {args.image}x{args.image}, batch {args.cnn_batch}"
        models_ = variants(dense, x, csr=name == "mlp")
        med = compare_latency(models_, x, warmup=args.warmup, repeats=args.repeats)
        print(f"\n{title}")
        for k, v in med.items():
            ratio = v / med["dense"]
            print(f"  {k:<14} {1e3 * v:9.3f} ms   latency ratio {ratio:6.3f}   speed-up {1 / ratio:5.2f}x")
        speed = med["dense"] / med["structured-50"]
        verdict = "meets" if speed >= 2.0 else "misses"
        print(f"  structured-50 is {speed:.2f}x faster than dense: {verdict} the 2x target")


if __name__ == "__main__":
    main()
