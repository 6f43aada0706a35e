r"""NUTS sampling with convergence diagnostics that are reported, not hidden.

:func:`run_nuts` runs several independent NUTS chains of a Pyro model one after
the other (two CPU cores are better spent on one chain at a time than on
processes fighting over them), stacks the draws as ``(chain, draw, *site_shape)``
and computes, per site, the split Gelman–Rubin :math:`\hat R` [1]_ and the
effective sample size with :mod:`pyro.ops.stats`. :func:`mcmc_diagnostics`
computes the same for any derived quantity (predictions, invariant overlaps),
which matters for models with symmetric modes, where raw sites never mix across
chains while the quantities of interest do.

References
----------
.. [1] A. Gelman, J. Carlin, H. Stern, D. Dunson, A. Vehtari, D. Rubin, "Bayesian Data
   Analysis", 3rd ed., 2013, Section 11.4.
.. [2] M. Hoffman, A. Gelman, "The No-U-Turn Sampler", JMLR 15, 2014.

Examples
--------
>>> import pyro, pyro.distributions as dist, torch
>>> def model():
...     pyro.sample("x", dist.Normal(torch.zeros(2), 1.0).to_event(1))
>>> res = run_nuts(model, num_samples=50, warmup_steps=50, num_chains=2, seed=0)
>>> tuple(res.samples["x"].shape)
(2, 50, 2)
>>> sorted(res.r_hat)
['x']
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer import MCMC, NUTS
from pyro.ops.stats import effective_sample_size, split_gelman_rubin

from sciprob.runtime.progress import ProgressBar
from sciprob.runtime.seeding import isolated_rng

R_HAT_MAX = 1.05
"""Largest split R-hat taken as mixed (Vehtari et al. 2021 recommend 1.01 for final results)."""

ESS_MIN = 100.0
"""Smallest bulk effective sample size (all chains together) taken as enough."""


def mcmc_diagnostics(samples: Mapping[str, torch.Tensor]) -> tuple[dict[str, float], dict[str, float]]:
    r"""Worst split R-hat and smallest ESS of each site over its elements.

    Parameters
    ----------
    samples : mapping of str to Tensor of shape (chains, draws, *shape)
        At least two chains for R-hat (one chain gives NaN) and four draws.

    Returns
    -------
    r_hat : dict of str to float
        Maximum over the site's elements of the split :math:`\hat R`.
    ess : dict of str to float
        Minimum over the site's elements of the effective sample size.

    Raises
    ------
    ValueError
        A site with fewer than 2 dimensions or fewer than 4 draws.
    """
    r_hat, ess = {}, {}
    for name, x in samples.items():
        if x.dim() < 2 or x.shape[1] < 4:
            raise ValueError(f"site {name!r} needs shape (chains, draws >= 4, ...), got {tuple(x.shape)}")
        x = x.detach().double()
        if x.shape[0] >= 2:
            r_hat[name] = float(split_gelman_rubin(x, chain_dim=0, sample_dim=1).max())
        else:
            r_hat[name] = float("nan")
        ess[name] = float(effective_sample_size(x, chain_dim=0, sample_dim=1).min())
    return r_hat, ess


@dataclass(frozen=True)
class MCMCResult:
    """Draws of :func:`run_nuts` and their diagnostics.

    Attributes
    ----------
    samples : dict of str to Tensor of shape (chains, draws, *site_shape)
        Posterior draws per latent site.
    r_hat : dict of str to float
        Worst split R-hat per site.
    ess : dict of str to float
        Smallest effective sample size per site.
    divergences : list of int
        Divergent transitions after warm-up, per chain.
    accept_prob : list of float
        Mean acceptance probability per chain.
    """

    samples: dict[str, torch.Tensor]
    r_hat: dict[str, float]
    ess: dict[str, float]
    divergences: list[int]
    accept_prob: list[float]

    def flat(self, name: str) -> torch.Tensor:
        """Draws of ``name`` with chains merged: shape (chains * draws, *site_shape)."""
        x = self.samples[name]
        return x.reshape(-1, *x.shape[2:])

    def mixed(
        self, r_hat_max: float = R_HAT_MAX, ess_min: float = ESS_MIN, sites: list[str] | None = None
    ) -> bool:
        """Whether every site in ``sites`` (default all) has R-hat <= ``r_hat_max`` and ESS >= ``ess_min``."""
        names = self.r_hat if sites is None else sites
        return all(self.r_hat[n] <= r_hat_max and self.ess[n] >= ess_min for n in names)


def run_nuts(
    model: Callable[..., Any],
    *args: Any,
    num_samples: int = 500,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    max_tree_depth: int = 10,
    target_accept_prob: float = 0.8,
    jit_compile: bool = False,
    progress: bool = False,
    **kwargs: Any,
) -> MCMCResult:
    r"""Sample ``model(*args, **kwargs)`` with NUTS, chain after chain.

    Parameters
    ----------
    model : callable
        A Pyro model (function or ``PyroModule``) with continuous latent sites.
    *args, **kwargs
        Passed to the model (data, observations).
    num_samples : int, default=500
        Kept draws per chain.
    warmup_steps : int, default=500
        Adaptation steps per chain (step size and diagonal mass matrix).
    num_chains : int, default=2
        Independent chains (at least 2 for R-hat).
    seed : int, default=0
        Chain c runs under ``isolated_rng`` seeded from ``SeedSequence([seed, c])``, so the
        caller's global random streams are untouched; initial values are drawn from the prior.
    max_tree_depth : int, default=10
        NUTS tree-depth cap (at most :math:`2^{\rm depth}` gradient steps per draw).
    target_accept_prob : float, default=0.8
        Step-size adaptation target.
    jit_compile : bool, default=False
        Trace the potential energy with the PyTorch JIT (several times faster per
        gradient for small models; needs a model without Python control flow on values).
    progress : bool, default=False
        Show a :class:`~sciprob.runtime.ProgressBar` over all chains' iterations.

    Returns
    -------
    MCMCResult

    Raises
    ------
    ValueError
        Non-positive counts or a ``target_accept_prob`` outside (0, 1).
    """
    for key, value, low in [
        ("num_samples", num_samples, 4),
        ("warmup_steps", warmup_steps, 0),
        ("num_chains", num_chains, 1),
        ("max_tree_depth", max_tree_depth, 1),
    ]:
        if not isinstance(value, int) or value < low:
            raise ValueError(f"`{key}` must be an integer >= {low}, got {value!r}")
    if not 0.0 < target_accept_prob < 1.0:
        raise ValueError(f"`target_accept_prob` must lie in (0, 1), got {target_accept_prob!r}")

    draws: dict[str, list[torch.Tensor]] = {}
    divergences, accept = [], []
    bar = ProgressBar(num_chains * (num_samples + warmup_steps), "NUTS") if progress else None

    def hook(kernel, params, stage, i):  # called by pyro after every iteration
        bar.update(chain=len(divergences), stage=stage)

    with bar or contextlib.nullcontext():
        for chain in range(num_chains):
            chain_seed = int(np.random.SeedSequence([seed, chain]).generate_state(1, np.uint64)[0])
            with isolated_rng(chain_seed):  # NUTS draws from the global generators: restore them after
                kernel = NUTS(
                    model,
                    max_tree_depth=max_tree_depth,
                    target_accept_prob=target_accept_prob,
                    init_strategy=pyro.infer.autoguide.init_to_sample,
                    jit_compile=jit_compile,
                    ignore_jit_warnings=True,
                )
                mcmc = MCMC(
                    kernel,
                    num_samples=num_samples,
                    warmup_steps=warmup_steps,
                    disable_progbar=True,
                    hook_fn=hook if progress else None,
                )
                mcmc.run(*args, **kwargs)
            for name, x in mcmc.get_samples().items():
                draws.setdefault(name, []).append(x.detach())
            diag = mcmc.diagnostics()
            divergences.append(len(diag["divergences"]["chain 0"]))
            accept.append(float(diag["acceptance rate"]["chain 0"]))
    samples = {name: torch.stack(xs) for name, xs in draws.items()}
    r_hat, ess = mcmc_diagnostics(samples)
    return MCMCResult(samples=samples, r_hat=r_hat, ess=ess, divergences=divergences, accept_prob=accept)
