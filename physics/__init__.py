"""Physics: FEniCSx (DOLFINx) discretisations and the physics-driven deep latent variable model.

DOLFINx is loaded only by :mod:`sciprob.physics.fem` (importing this package
does not load it). The PDDLVM works on the torch side of a discretisation
(:class:`DiscreteProblem`), which a DOLFINx problem produces as ``problem.discrete``.
"""

from sciprob.physics.pddlvm import PDDLVM, ReducedBasis
from sciprob.physics.residual import (
    DiscreteProblem,
    GalerkinResidual,
    ResidualOperator,
    linear_flux,
    sigmoid_flux,
)

__all__: list[str] = [
    "PDDLVM",
    "DiscreteProblem",
    "GalerkinResidual",
    "ReducedBasis",
    "ResidualOperator",
    "linear_flux",
    "sigmoid_flux",
]
