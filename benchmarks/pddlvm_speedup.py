"""Speed-up of the PDDLVM forward map over DOLFINx solves, by mesh size: 2D Poisson or a 3D shell.

For each mesh it times DOLFINx solves one at a time with compiled forms
(update the coefficients, assemble, LU) and the PDDLVM forward map on the whole
test batch at once, in one process on one device, and prints the ratios: for
the mean nodal solution (network mean and basis product, what the experiments'
``speedup`` times) and for the whole predictive distribution (with the nodal
standard deviations, ``speedup_distribution``). The cost of the forward map does not depend
on the network's weights, so the networks are not trained here (training is
what ``sciprob run pddlvm-poisson-2d`` / ``pddlvm-shell-3d`` does).

Problems and their default sizes, networks and precision (those of the paper presets):

* ``poisson-2d``: n x n squares (2 n^2 P1 triangles), 8^2 Chebyshev coordinates,
  3 x 128 hidden, float32; n = 8 ... 128.
* ``scordelis-lo`` / ``hemisphere``: n x n x 1 solid Q2 bricks (``3 * 3 (2n+1)^2``
  dofs), degree-7 Chebyshev trial functions meeting the clamps (at most
  7^3 x 3 = 1029 coordinates), 3 x 1024 hidden, float64 (the shell preset's
  training precision); n = 4, 8, 16, 24 (24: the paper preset).

Usage::

    python benchmarks/pddlvm_speedup.py [--problem poisson-2d] [--sizes 8 16 32 64 128] [--batch 200]
    python benchmarks/pddlvm_speedup.py --problem scordelis-lo [--sizes 4 8 16 24] [--dtype float32]
"""

from __future__ import annotations

import argparse
import time

import torch

from sciprob.physics import PDDLVM, ReducedBasis
from sciprob.physics.pddlvm_experiments import model_seconds_per_solution
from sciprob.runtime import resolve_device, seed_everything

#: problem -> (default sizes, basis degree, hidden widths, dtype, FEM solves timed, test batch)
DEFAULTS = {
    "poisson-2d": ([8, 16, 32, 64, 128], 8, (128, 128, 128), torch.float32, 20, 200),
    "scordelis-lo": ([4, 8, 16, 24], 7, (1024, 1024, 1024), torch.float64, 5, 100),
    "hemisphere": ([4, 8, 16, 24], 7, (1024, 1024, 1024), torch.float64, 5, 100),
}


def build(name: str, n: int, degree: int):
    """The DOLFINx problem, its torch side and reduced basis, as the experiment builds them."""
    if name == "poisson-2d":
        from sciprob.physics.fem import Poisson2D

        problem = Poisson2D(n)
        return problem, problem.discrete, ReducedBasis.chebyshev(problem.discrete, degree)
    from sciprob.physics.fem.shells import PinchedHemisphere, ScordelisLoRoof

    problem = (ScordelisLoRoof if name == "scordelis-lo" else PinchedHemisphere)(n)
    basis, discrete = ReducedBasis.galerkin(problem.discrete, degree)  # as pddlvm-shell-3d trains it
    return problem, discrete, basis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=sorted(DEFAULTS), default="poisson-2d")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="meshes (see above)")
    parser.add_argument("--batch", type=int, default=None, help="test parameters per batch")
    parser.add_argument("--fem-solves", type=int, default=None, help="timed DOLFINx solves per size")
    parser.add_argument("--degree", type=int, default=None, help="Chebyshev polynomials per direction")
    parser.add_argument("--dtype", choices=["float32", "float64"], default=None, help="of the forward map")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    sizes, degree, hidden, dtype, fem_solves, batch = DEFAULTS[args.problem]
    sizes = args.sizes or sizes
    degree = args.degree or degree
    fem_solves = args.fem_solves or fem_solves
    batch = args.batch or batch
    dtype = getattr(torch, args.dtype) if args.dtype else dtype
    if min(sizes) < 1 or degree < 2 or fem_solves < 1 or batch < 1:
        parser.error(
            "need sizes >= 1, degree >= 2, fem-solves and batch >= 1; "
            f"got {sizes}, {degree}, {fem_solves}, {batch}"
        )
    device = resolve_device(args.device)
    seed_everything(0)  # a script, not a library: the runtime helper seeds the global RNGs
    print(
        f"problem={args.problem}  device={device}  batch={batch}  hidden={hidden}  {dtype}  "
        "(wall-clock times; other load inflates them)"
    )
    print(
        f"{'n':>5} {'dofs':>7} {'coords':>7} {'FEM s/solve':>12} {'mean s/solution':>16} {'speed-up':>9} "
        f"{'with std s/sol.':>16} {'speed-up':>9}"
    )
    for n in sizes:
        problem, discrete, basis = build(args.problem, n, degree)
        z = problem.prior().sample((max(batch, fem_solves),))
        problem.solve_fem(z[0])  # warm-up: the first solve sets up PETSc and the LU
        start = time.perf_counter()
        problem.solve_fem(z[:fem_solves])
        fem = (time.perf_counter() - start) / fem_solves

        discrete.to(device=device, dtype=dtype)
        basis.to(device=device, dtype=dtype)
        model = PDDLVM(discrete, basis, hidden=hidden).to(device=device, dtype=dtype)
        zb = z[:batch].to(device, dtype)
        mean = model_seconds_per_solution(model, zb, device)
        full = model_seconds_per_solution(model, zb, device, with_std=True)
        print(
            f"{n:>5} {discrete.n_dofs:>7} {basis.size:>7} {fem:>12.3e} {mean:>16.3e} {fem / mean:>9.1f} "
            f"{full:>16.3e} {fem / full:>9.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
