"""Physics: FEniCSx (DOLFINx) discretisations and the physics-driven deep latent variable model.

DOLFINx is loaded only by :mod:`sciprob.physics.fem` (importing this package
does not load it).
"""

__all__: list[str] = []
