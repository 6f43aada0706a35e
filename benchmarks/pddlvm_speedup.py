"""Speed-up of the PDDLVM forward map over DOLFINx solves on the 2D Poisson problem, by mesh size.

For each mesh (n x n squares, 2 n^2 triangles) it times DOLFINx solves one at a
time with compiled forms (update kappa, assemble, LU) and the PDDLVM forward
map (mean and nodal standard deviations) on the whole test batch at once,
in one process on one device, and prints the ratio. The cost of the forward
map does not depend on the network's weights, so the networks are not
trained here (training is what ``sciprob run pddlvm-poisson-2d`` does).

Usage::

    python benchmarks/pddlvm_speedup.py [--sizes 8 16 32 64 128] [--batch 200] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from sciprob.physics import PDDLVM, ReducedBasis
from sciprob.physics.fem import Poisson2D
from sciprob.runtime import resolve_device, seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--batch", type=int, default=200, help="test parameters per batch")
    parser.add_argument("--fem-solves", type=int, default=20, help="timed DOLFINx solves per size")
    parser.add_argument("--degree", type=int, default=8, help="Chebyshev polynomials per direction")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    seed_everything(0)  # a script, not a library: the runtime helper seeds the global RNGs
    print(
        f"device={device}  batch={args.batch}  (wall-clock times; other load inflates them)"
    )
    print(f"{'n':>5} {'dofs':>7} {'FEM s/solve':>12} {'model s/solution':>17} {'speed-up':>9}")
    for n in args.sizes:
        problem = Poisson2D(n)
        basis = ReducedBasis.chebyshev(problem.discrete, args.degree)
        z = problem.prior().sample((max(args.batch, args.fem_solves),))
        problem.solve_fem(z[0])  # warm-up: first solve sets up PETSc
        start = time.perf_counter()
        problem.solve_fem(z[: args.fem_solves])
        fem = (time.perf_counter() - start) / args.fem_solves

        discrete = problem.discrete.to(device=device, dtype=torch.float32)
        model = PDDLVM(discrete, basis.to(device=device, dtype=torch.float32), hidden=(128, 128, 128))
        model = model.to(device=device, dtype=torch.float32)
        zb = z[: args.batch].to(device, torch.float32)
        model.forward(zb)
        best = float("inf")
        for _ in range(20):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model.forward(zb)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
        per = best / args.batch
        print(f"{n:>5} {discrete.n_dofs:>7} {fem:>12.3e} {per:>17.3e} {fem / per:>9.1f}")


if __name__ == "__main__":
    main()
