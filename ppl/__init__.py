"""Pyro building blocks shared by sciprob's probabilistic methods.

Amortised Gaussian networks, ELBO helpers and SVI/MCMC training loops. This
package depends on torch, pyro and :mod:`sciprob.runtime` only.
"""

from sciprob.ppl.distributions import IndependentConcat
from sciprob.ppl.gaussian import AmortisedGaussian, mlp
from sciprob.ppl.mcmc import MCMCResult, mcmc_diagnostics, run_nuts
from sciprob.ppl.svi import SVIHistory, train_svi

__all__: list[str] = [
    "AmortisedGaussian",
    "IndependentConcat",
    "MCMCResult",
    "SVIHistory",
    "mcmc_diagnostics",
    "mlp",
    "run_nuts",
    "train_svi",
]
