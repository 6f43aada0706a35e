"""Training throughput (samples/second) of FCN, ResNet and InceptionTime on GunPoint.

Usage::

    python benchmarks/tsc_throughput.py                 # CPU only
    python benchmarks/tsc_throughput.py --device cuda   # CPU and CUDA, with the CUDA/CPU speed ratio

Each model trains with the review's recipe and batch rule (GunPoint: 50
series of length 150, batch 5) for ``--epochs`` timed epochs after one
warm-up epoch. Ratios are against FCN on the CPU measured in this process,
and (with CUDA) CUDA against CPU for the same model.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sciprob.learning.tsc import RECIPES, get_architecture, load_ucr, train_network
from sciprob.runtime import get_logger, resolve_device, seed_everything


def throughput(
    model: str, X: np.ndarray, y: np.ndarray, device: torch.device, epochs: int, batch: int | None
) -> float:
    """Training samples per second of one network after a warm-up epoch."""
    seed_everything(0)
    recipe_name = "inception" if model == "inceptiontime" else model
    net = get_architecture(recipe_name).build(X.shape[1], X.shape[2], int(y.max()) + 1)
    train_network(
        net, RECIPES[recipe_name], X, y, epochs=1, batch_size=batch, device=device, description="warm-up"
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    res = train_network(
        net,
        RECIPES[recipe_name],
        X,
        y,
        epochs=epochs,
        batch_size=batch,
        device=device,
        description=f"{model} {device.type}",
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return res.samples_seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per model")
    parser.add_argument("--batch-size", type=int, default=None, help="override the review's batch rule")
    parser.add_argument(
        "--models",
        default="fcn,resnet,inceptiontime",
        help="comma-separated; inceptiontime times one member network",
    )
    args = parser.parse_args()
    get_logger().setLevel("WARNING")
    devices = [torch.device("cpu")]
    target = resolve_device(args.device)
    if target.type == "cuda":
        devices.append(target)
    train = load_ucr("GunPoint", "train")
    X, y = train.to_array(), np.searchsorted(np.unique(train.labels), train.labels)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    print(f"GunPoint train: {X.shape}, {args.epochs} timed epochs, torch threads {torch.get_num_threads()}")
    rates: dict[tuple[str, str], float] = {}
    for device in devices:
        for model in models:
            rates[model, device.type] = throughput(model, X, y, device, args.epochs, args.batch_size)
    base = rates.get(("fcn", "cpu")) or next(iter(rates.values()))
    print(f"{'model':<14}{'device':<8}{'samples/s':>12}{'vs FCN cpu':>12}{'cuda/cpu':>10}")
    for (model, dev), rate in rates.items():
        speedup = f"{rate / rates[model, 'cpu']:.2f}" if dev == "cuda" else ""
        print(f"{model:<14}{dev:<8}{rate:>12.1f}{rate / base:>12.2f}{speedup:>10}")


if __name__ == "__main__":
    main()
