"""Pyro building blocks shared by sciprob's probabilistic methods.

Amortised Gaussian networks, ELBO helpers and SVI/MCMC training loops. This
package depends on torch, pyro and :mod:`sciprob.runtime` only.
"""

__all__: list[str] = []
