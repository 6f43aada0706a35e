"""Per-step time of the additive / multiplicative / hybrid rules relative to the base optimizer.

For each base optimizer (SGD with momentum, Adam, Adagrad, RMSprop) and each
rule of :class:`sciprob.learning.optim.UpdateRule`, times

* ``optimizer.step()`` alone, and
* a whole training step (forward, backward, ``step``) on a batch,

with the default ``compiled="auto"`` (at this size: one fused kernel from
:func:`torch.compile`; its one-off compile is part of the warm-up and not
timed) and with ``compiled=False`` (the ``_foreach`` passes, rows "+passes"),

on an MLP with a few million parameters, and prints each time divided by the
plain base optimizer's time measured in the same process (target: at most
1.3x). Timings are medians over repeats, interleaved between the variants so
that machine load affects them alike.

Usage::

    python benchmarks/update_rules_overhead.py [--width 1024] [--depth 4] [--batch 64]
        [--repeats 30] [--device cpu|cuda] [--compiled auto|false]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from sciprob.learning.optim import UpdateRule
from sciprob.runtime import seed_everything

OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=1e-2),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-3),
}
VARIANTS = ("base", "additive", "multiplicative", "hybrid", "multiplicative+passes", "hybrid+passes")


def _build(variant: str, name: str, params, compiled: bool | str) -> torch.optim.Optimizer:
    base = OPTIMIZERS[name](params)
    if variant == "base":
        return base
    rule, _, passes = variant.partition("+")
    return UpdateRule(base, rule, lr_out=1e-3, g=0.5, compiled=False if passes else compiled)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    """Parse arguments, time every (optimizer, rule) pair and print the ratio table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--compiled",
        choices=("auto", "false"),
        default="auto",
        help="`compiled` of the default rows; false also drops the +passes rows (then the same)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    seed_everything(0, deterministic=False)  # nn layers draw their initialisation from the global RNGs
    layers: list[torch.nn.Module] = []
    for _ in range(args.depth):
        layers += [torch.nn.Linear(args.width, args.width), torch.nn.ReLU()]
    template = torch.nn.Sequential(*layers, torch.nn.Linear(args.width, 10)).to(device)
    n_params = sum(p.numel() for p in template.parameters())
    x = torch.randn(args.batch, args.width, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    print(
        f"model: MLP {args.depth}x{args.width}, {n_params / 1e6:.2f}M parameters, batch {args.batch}, "
        f"device {device}, torch threads {torch.get_num_threads()}"
    )

    compiled = "auto" if args.compiled == "auto" else False
    variants = [v for v in VARIANTS if compiled or not v.endswith("passes")]
    for name in OPTIMIZERS:
        runs = {}
        for variant in variants:
            model = copy.deepcopy(template)
            runs[variant] = (model, _build(variant, name, model.parameters(), compiled))
        step_times = {v: [] for v in variants}
        train_times = {v: [] for v in variants}
        for repeat in range(args.repeats + 3):
            for variant, (model, opt) in runs.items():
                opt.zero_grad(set_to_none=False)
                _sync(device)
                t0 = time.perf_counter()
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                _sync(device)
                t1 = time.perf_counter()
                opt.step()
                _sync(device)
                t2 = time.perf_counter()
                if repeat >= 3:  # warm-up: state allocation, first-call overheads
                    step_times[variant].append(t2 - t1)
                    train_times[variant].append(t2 - t0)
        base_step = statistics.median(step_times["base"])
        base_train = statistics.median(train_times["base"])
        model, opt = runs["multiplicative"]
        path = "compiled kernel" if opt.uses_kernel(list(model.parameters())) else "_foreach passes"
        print(
            f"\n{name}: base step {1e3 * base_step:.2f} ms, base train step {1e3 * base_train:.2f} ms; "
            f"default rows use the {path}"
        )
        print(f"  {'rule':<24} {'step ms':>8} {'step ratio':>11} {'train ms':>9} {'train ratio':>12}")
        for variant in variants[1:]:
            s = statistics.median(step_times[variant])
            t = statistics.median(train_times[variant])
            print(
                f"  {variant:<24} {1e3 * s:8.2f} {s / base_step:10.2f}x "
                f"{1e3 * t:9.2f} {t / base_train:11.2f}x"
            )


if __name__ == "__main__":
    main()
