"""DOLFINx discretisations. The one place sciprob loads DOLFINx.

The ``dolfinx-solver-real`` wheel bundles a real-scalar PETSc; its
``dolfinx_solver`` module must be imported before ``dolfinx`` so that the
bundled libraries are found. Every sciprob module that needs DOLFINx lives in
this package and imports it after this file has run.
"""

import dolfinx_solver  # noqa: F401, I001 - must precede dolfinx (sets up the bundled PETSc)
import dolfinx  # noqa: F401

from sciprob.physics.fem.forms import (
    AffineResidual,
    AssembledResidual,
    FormCoefficients,
    ParametricProblem,
    PreconditionedResidual,
    boundary_dofs,
    located_dofs,
)
from sciprob.physics.fem.parametric import (
    LinearPoisson1D,
    NonlinearPoisson1D,
    ObservationMapPoisson1D,
    ParametricPoissonProblem,
    Poisson2D,
)
from sciprob.physics.fem.poisson import PoissonSolution, solve_manufactured_poisson

__all__ = [
    "AffineResidual",
    "AssembledResidual",
    "FormCoefficients",
    "ParametricProblem",
    "PreconditionedResidual",
    "boundary_dofs",
    "located_dofs",
    "LinearPoisson1D",
    "NonlinearPoisson1D",
    "ObservationMapPoisson1D",
    "ParametricPoissonProblem",
    "Poisson2D",
    "PoissonSolution",
    "solve_manufactured_poisson",
]
