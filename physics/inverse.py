r"""Inverse problems from noisy observations: amortised posteriors and their NUTS ground truth.

Joint model of parameters and data, for a forward map :math:`z \mapsto u(z)`
(an exact solve, or a trained PDDLVM / PINN forward mean) and an observation
operator :math:`H` (:mod:`sciprob.physics.observations`):

.. math::

    p(y, z) = N(y;\, H u(z),\, \varepsilon_y^2 I)\; p(z).

The amortised posterior :math:`q_\phi(z \mid y)` is a Gaussian network on the
data in the unconstrained (logit) coordinates of the box prior, pushed through
:math:`z = a + (b - a)\,\mathrm{sigmoid}(w)`. It is trained on the data ELBO,
the data part of the paper's ``compute_nelbo_post`` [1]_,

.. math::

    \mathcal{L}(\phi) = \mathbb{E}_{y \sim p(y)}\, \mathbb{E}_{q_\phi(z\mid y)}
        \big[\log N(y;\, H u(z),\, \varepsilon_y^2 I) + \log p(z) - \log q_\phi(z \mid y)\big],

averaged over a bank of synthetic data sets drawn from the prior predictive
(``pyro.plate`` subsampling picks a minibatch of them per step), so one network
serves every data set. This reverse KL is mode-seeking: an amortised Gaussian
trained on it is over-confident (``AmortisedPosterior.model``/``guide``).

The second objective (``simulation_model``/``simulation_guide``) is the
forward KL averaged over the prior predictive, the objective of neural posterior
estimation [2]_,

.. math::

    \mathbb{E}_{y \sim p(y)} \mathrm{KL}\big(p(z \mid y)\,\|\,q_\phi(z \mid y)\big)
        = -\mathbb{E}_{(z, y) \sim p(z)\,p(y \mid z)} \log q_\phi(z \mid y) + \text{const},

trained on simulated pairs :math:`(z, y)`, :math:`y = H u(z) + \varepsilon_y\,\xi`
(the same likelihood enters through the simulator). It is mass-covering: where
the network cannot follow the posterior, :math:`q` widens rather than
shrinks, so its intervals stay calibrated on average over data sets. Its draws
can be importance-weighted by :math:`p(y \mid z)\,p(z) / q_\phi(z \mid y)`
(:meth:`AmortisedPosterior.importance_resample`, [3]_): consistent for the exact
posterior, at the cost of one batched forward solve per draw, with the
effective sample size as the diagnostic. :func:`nuts_posterior` samples the
exact posterior of one data set with Pyro's NUTS for comparison.

For linear problems :class:`LinearSolver` gives the exact, differentiable torch
solve :math:`u(z) = A(z)^{-1} b(z)`, from the DOLFINx-assembled residual.

References
----------
.. [1] Vadeboncoeur et al., arXiv:2208.04856; official code ``pddlvm/VEModel.py``
   (``compute_nelbo_post``, ``epsilon_y = 1e-1``).
.. [2] G. Papamakarios and I. Murray, "Fast epsilon-free inference of simulation
   models with Bayesian conditional density estimation", NeurIPS 2016.
.. [3] M. Dax et al., "Neural importance sampling for rapid and reliable
   gravitational-wave inference", Phys. Rev. Lett. 130, 171403 (2023).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions.transforms import AffineTransform, SigmoidTransform
from pyro.nn import PyroModule, pyro_method
from torch import Tensor

from sciprob.physics.observations import ObservationOperator, check_noise
from sciprob.physics.residual import DiscreteProblem
from sciprob.ppl import AmortisedGaussian

Forward = Callable[[Tensor], Tensor]


class LinearSolver(torch.nn.Module):
    r"""Exact batched torch solve of a P1 problem with the linear flux :math:`q = \kappa\nabla u`.

    The residual is :math:`r(u, z) = A(\kappa_z) u - b(z)` with
    :math:`A(\kappa) = \sum_e \kappa_e S_e` on interior rows and identity rows on
    Dirichlet dofs. The per-cell stiffness matrices :math:`S_e` are read off the
    residual once (dense, so for small problems: ``n_cells * n_dofs**2`` entries).

    Parameters
    ----------
    problem : DiscreteProblem
        With ``linear_flux``; at most 2,000 degrees of freedom.

    Examples
    --------
    >>> from sciprob.physics.fem import ObservationMapPoisson1D    # doctest: +SKIP
    >>> problem = ObservationMapPoisson1D().discrete
    >>> u = LinearSolver(problem)(problem.prior().sample((4,)))   # (4, 101)
    """

    def __init__(self, problem: DiscreteProblem) -> None:
        super().__init__()
        n, cells = problem.n_dofs, problem.operator.n_cells
        if n > 2000:
            raise ValueError(f"`problem` has {n} dofs; `LinearSolver` builds dense matrices, use <= 2000")
        op = problem.operator.double()
        eye = torch.eye(n, dtype=torch.float64)
        zero_f = torch.zeros(n, dtype=torch.float64)
        zero_g = torch.zeros(n, op.bc_dofs.numel(), dtype=torch.float64)
        stiff = torch.empty(cells, n, n, dtype=torch.float64)
        for e in range(cells):  # column j of S_e = r(e_j) with kappa = 1 on cell e, f = g = 0
            kappa = torch.zeros(n, cells, dtype=torch.float64)
            kappa[:, e] = 1.0
            stiff[e] = op(eye, kappa, zero_f, zero_g).T
        interior = ~op.is_bc
        stiff[:, ~interior] = 0.0
        self.register_buffer("stiffness", stiff)
        self.register_buffer("bc_rows", torch.diag((~interior).double()))
        self.problem = problem

    def matrix(self, z: Tensor) -> Tensor:
        r"""Return :math:`A(\kappa_z)`, shape (batch, n_dofs, n_dofs)."""
        kappa = self.problem.coefficients.fields(z).kappa
        return torch.einsum("be,eij->bij", kappa.to(self.stiffness), self.stiffness) + self.bc_rows

    def forward(self, z: Tensor) -> Tensor:
        """Solutions :math:`u(z)`, shape (batch, n_dofs), differentiable in ``z``.

        Parameters
        ----------
        z : Tensor of shape (batch, dim_z)
        """
        z = self.problem.coefficients.validate(z)
        zd = z.to(self.stiffness)
        b = -self.problem.residual(torch.zeros(z.shape[0], self.problem.n_dofs).to(zd), zd)
        return torch.linalg.solve(self.matrix(zd), b).to(z.dtype)


class IntervalSolver(torch.nn.Module):
    r"""Closed-form nodal solution of :math:`-(\kappa u')' = f` on an interval, u given at both ends.

    With :math:`\kappa` constant on each cell and :math:`f` constant, the flux is
    :math:`\kappa u' = c - f x` and the P1 solution is nodally exact [1]_, so

    .. math::

        u(x_i) = g_L + \sum_{e < i} \frac{c\, h_e - f (b_e^2 - a_e^2)/2}{\kappa_e},
        \qquad c = \frac{g_R - g_L + f \sum_e (b_e^2 - a_e^2) / (2\kappa_e)}{\sum_e h_e / \kappa_e},

    an :math:`O(n)` differentiable expression: the same numbers as
    :class:`LinearSolver` at a fraction of the cost (NUTS calls it thousands of times).

    Parameters
    ----------
    problem : DiscreteProblem
        A 1D problem with ``linear_flux``, Dirichlet values at both ends, constant forcing.

    References
    ----------
    .. [1] P. Hansbo, "The Finite Element Method and its Applications", 1D nodal
       exactness of P1 Galerkin for two-point boundary value problems.
    """

    def __init__(self, problem: DiscreteProblem) -> None:
        super().__init__()
        x = problem.dof_coordinates.double()
        if x.shape[1] != 1 or problem.operator.bc_dofs.numel() != 2:
            raise ValueError("`problem` must be 1D with Dirichlet values at both ends for `IntervalSolver`")
        order = torch.argsort(x[:, 0])
        xs = x[order, 0]
        mids = problem.coefficients.cell_midpoints[:, 0].double()
        cell_order = torch.argsort(mids)
        self.register_buffer("a", xs[:-1])
        self.register_buffer("b", xs[1:])
        self.register_buffer("order", order)
        self.register_buffer("cell_order", cell_order)
        bc_x = problem.coefficients.bc_coordinates[:, 0]
        self.register_buffer("bc_sort", torch.argsort(bc_x))
        self.problem = problem

    def forward(self, z: Tensor) -> Tensor:
        """Solutions :math:`u(z)`, shape (batch, n_dofs) in the problem's dof order.

        Parameters
        ----------
        z : Tensor of shape (batch, dim_z)
        """
        kappa, f, g = self.problem.coefficients.fields(z)
        kappa = kappa[:, self.cell_order].to(self.a)
        f = f.to(self.a)[:, None]
        g = g[:, self.bc_sort].to(self.a)
        h, sq = self.b - self.a, (self.b**2 - self.a**2) / 2
        c = (g[:, 1:] - g[:, :1] + (f * sq / kappa).sum(-1, keepdim=True)) / (h / kappa).sum(-1, keepdim=True)
        steps = (c * h - f * sq) / kappa
        u_sorted = torch.cat([g[:, :1], g[:, :1] + steps.cumsum(-1)], dim=-1)
        return torch.empty_like(u_sorted).index_copy(1, self.order, u_sorted).to(z.dtype)


def _gaussian_noise(base: dist.TorchDistribution, n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` zero-mean draws of a (low-rank) multivariate or diagonal normal, from ``generator``."""
    shape = (n, *base.batch_shape, *base.event_shape)
    eps = torch.randn(shape, generator=generator, dtype=base.mean.dtype, device=base.mean.device)
    if isinstance(base, dist.LowRankMultivariateNormal):
        rank = base.cov_factor.shape[-1]
        eps_w = torch.randn(
            (n, *base.batch_shape, rank), generator=generator, dtype=eps.dtype, device=eps.device
        )
        return (base.cov_factor @ eps_w[..., None])[..., 0] + base.cov_diag.sqrt() * eps
    return base.stddev * eps


def box_posterior(base: dist.TorchDistribution, low: Tensor, high: Tensor) -> dist.TorchDistribution:
    """Push a Gaussian on logits through ``z = low + (high - low) sigmoid(w)``."""
    return dist.TransformedDistribution(
        base, [SigmoidTransform(), AffineTransform(low, high - low, event_dim=1)]
    )


class AmortisedPosterior(PyroModule):
    r"""Amortised Gaussian posterior :math:`q_\phi(z \mid y)` of a box-prior inverse problem.

    Parameters
    ----------
    forward : callable
        ``forward(z) -> u``, (batch, dim_z) to (batch, n_dofs), differentiable in ``z``.
    operator : ObservationOperator
    low, high : Tensor of shape (dim_z,)
        The uniform prior's box.
    noise : float
        :math:`\varepsilon_y`, standard deviation of the observation noise (> 0).
    hidden : tuple of int, default=(64, 64, 64)
    covariance : {"diagonal", "lowrank"}, default="lowrank"
        Covariance family of :math:`q` in logit space.
    rank : int, default=None
        Rank of the low-rank factor (default ``dim_z``: a full covariance).
    y_scale : float, default=1.0
        Typical magnitude of the data, to standardise the network's input.
    """

    def __init__(
        self,
        forward: Forward,
        operator: ObservationOperator,
        low: Tensor,
        high: Tensor,
        noise: float,
        *,
        hidden: tuple[int, ...] = (64, 64, 64),
        covariance: str = "lowrank",
        rank: int | None = None,
        y_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.noise = check_noise(noise)
        if low.shape != high.shape or low.dim() != 1 or not (high > low).all():
            raise ValueError(f"`low` and `high` must be vectors with low < high, got {low} and {high}")
        self.forward_map, self.operator = forward, operator
        self.register_buffer("low", low.float())
        self.register_buffer("high", high.float())
        self.dim_z = low.numel()
        self.net = AmortisedGaussian(
            operator.n_obs, self.dim_z, hidden, covariance=covariance, rank=rank or self.dim_z,
            input_scale=torch.full((operator.n_obs,), float(y_scale)), init_var=0.5, var_bounds=(1e-6, 4.0),
        )  # fmt: skip

    def prior(self) -> dist.TorchDistribution:
        """Return the uniform box prior, event shape (dim_z,)."""
        return dist.Uniform(self.low, self.high, validate_args=False).to_event(1)

    @pyro_method
    def model(self, y: Tensor, batch_size: int) -> None:
        """Run the joint :math:`p(y, z)` on ``batch_size`` of the data sets ``y`` (n_sets, n_obs)."""
        with pyro.plate("data", y.shape[0], subsample_size=batch_size) as idx:
            z = pyro.sample("z", self.prior())
            mean = self.operator(self.forward_map(z))
            pyro.sample("y", dist.Normal(mean, self.noise).to_event(1), obs=y[idx])

    @pyro_method
    def guide(self, y: Tensor, batch_size: int) -> None:
        r"""Run the amortised :math:`q_\phi(z \mid y)` on the same minibatch."""
        with pyro.plate("data", y.shape[0], subsample_size=batch_size) as idx:
            pyro.sample("z", self.posterior(y[idx]))

    @pyro_method
    def simulation_model(self, z: Tensor, y: Tensor, batch_size: int) -> None:
        r"""Score :math:`\log q_\phi(z \mid y)` of simulated pairs: the forward-KL objective.

        With the empty :meth:`simulation_guide`, the negative ELBO of this model
        is :math:`-\sum \log q_\phi(z_i \mid y_i)` over a minibatch of
        ``batch_size`` pairs, scaled to the whole bank, i.e. the forward KL
        :math:`\mathbb{E}_{y}\,\mathrm{KL}(p(z\mid y)\,\|\,q_\phi(z\mid y))`
        up to a constant. Train it with :func:`sciprob.ppl.train_svi`.

        Parameters
        ----------
        z : Tensor of shape (n_sets, dim_z)
            Parameters drawn from the prior.
        y : Tensor of shape (n_sets, n_obs)
            Their simulated data (e.g. from :meth:`simulate`).
        batch_size : int
        """
        if z.shape != (y.shape[0], self.dim_z):
            raise ValueError(
                f"`z` must have shape ({y.shape[0]}, {self.dim_z}) to match `y`, got {tuple(z.shape)}"
            )
        with pyro.plate("data", y.shape[0], subsample_size=batch_size) as idx:
            pyro.sample("z", self.posterior(y[idx]), obs=z[idx])

    def simulation_guide(self, z: Tensor, y: Tensor, batch_size: int) -> None:
        """Empty guide of :meth:`simulation_model` (it has no latent site)."""

    def posterior(self, y: Tensor) -> dist.TorchDistribution:
        r"""Return :math:`q_\phi(z \mid y)` for data ``y`` of shape (batch, n_obs); event shape (dim_z,)."""
        y = self.operator.check_data(y).to(self.low)
        return box_posterior(self.net(y), self.low, self.high)

    def log_joint(self, z: Tensor, y: Tensor) -> Tensor:
        r"""Return :math:`\log N(y;\, H u(z),\, \varepsilon_y^2 I) + \log p(z)`.

        Parameters
        ----------
        z : Tensor of shape (..., batch, dim_z)
        y : Tensor of shape (batch, n_obs)

        Returns
        -------
        Tensor of shape (..., batch)
        """
        from sciprob.physics.observations import gaussian_log_likelihood

        y = self.operator.check_data(y).to(self.low)
        flat = z.reshape(-1, self.dim_z)
        predicted = self.operator(self.forward_map(flat)).reshape(*z.shape[:-1], -1)
        log_lik = gaussian_log_likelihood(y.expand_as(predicted), predicted, self.noise)
        return log_lik + self.prior().log_prob(z)

    def importance_resample(
        self, y: Tensor, n_draws: int, *, generator: torch.Generator | None = None, chunk: int = 64
    ) -> tuple[Tensor, Tensor]:
        r"""Draws of :math:`q_\phi(z \mid y)` importance-weighted towards the exact posterior.

        Self-normalised importance sampling with :math:`q_\phi` as the proposal,
        :math:`w \propto p(y \mid z)\,p(z)/q_\phi(z \mid y)`, then multinomial
        resampling of ``n_draws`` draws out of ``n_draws`` proposals. Consistent
        as ``n_draws`` grows when :math:`q_\phi` covers the posterior (the
        forward-KL fit does by construction); the effective sample size
        :math:`(\sum w)^2 / \sum w^2` says how many of the draws carry the weight.

        Parameters
        ----------
        y : Tensor of shape (batch, n_obs)
        n_draws : int
            Proposals, and resampled draws, per data set (>= 2).
        generator : torch.Generator, default=None
        chunk : int, default=64
            Data sets weighted together (bounds the memory of the forward solves).

        Returns
        -------
        draws : Tensor of shape (n_draws, batch, dim_z)
        ess : Tensor of shape (batch,)
            Effective sample size of the weights, in [1, n_draws].
        """
        if n_draws < 2:
            raise ValueError(f"`n_draws` must be >= 2, got {n_draws!r}")
        if chunk < 1:
            raise ValueError(f"`chunk` must be >= 1, got {chunk!r}")
        y = self.operator.check_data(y).to(self.low)
        draws, ess = [], []
        with torch.no_grad():
            for part in y.split(chunk):
                q = self.posterior(part)
                base = q.base_dist
                w_base = base.loc + _gaussian_noise(base, n_draws, generator)
                z = q.transforms[1](q.transforms[0](w_base))
                log_w = self.log_joint(z, part) - q.log_prob(z)  # (n_draws, b)
                log_w = torch.nan_to_num(log_w, nan=-math.inf)
                weights = torch.softmax(log_w, dim=0)
                ess.append(1.0 / (weights**2).sum(0))
                idx = torch.multinomial(weights.T, n_draws, replacement=True, generator=generator)  # (b, n)
                draws.append(torch.gather(z, 0, idx.T[..., None].expand(-1, -1, self.dim_z)))
        return torch.cat(draws, dim=1), torch.cat(ess)

    def simulate(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` synthetic data sets from the prior predictive.

        Returns
        -------
        z : Tensor of shape (n, dim_z)
        y : Tensor of shape (n, n_obs)
        """
        with torch.no_grad():
            u = torch.rand(n, self.dim_z, generator=generator, dtype=self.low.dtype, device=self.low.device)
            z = self.low + (self.high - self.low) * u
            clean = self.operator(self.forward_map(z))
            eps = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device)
        return z, clean + self.noise * eps


def nuts_model(
    forward: Forward,
    operator: ObservationOperator,
    low: Tensor,
    high: Tensor,
    noise: float,
    shift: Tensor | None = None,
    scale_tril: Tensor | None = None,
):
    r"""Build a Pyro model of one data set for :func:`sciprob.ppl.run_nuts`: ``model(y)``, y (n_obs,).

    The latent site ``"v"`` is a whitened logit: :math:`w = m + L v`,
    :math:`z = a + (b - a)\,\mathrm{sigmoid}(w)`, and the model adds
    :math:`\log p(y \mid z) + \log |\partial z / \partial w|` (a flat density in
    :math:`v`, since the box prior is uniform): an exact change of variables, so
    NUTS still targets :math:`p(z \mid y)`. A linear preconditioner
    :math:`(m, L)` (default identity), e.g. the amortised posterior's Gaussian
    in logit space, turns the narrow ridges of these problems into round wells
    (the diagonal mass matrix of :func:`~sciprob.ppl.run_nuts` cannot).
    Map draws back with :func:`whitened_to_z`.
    """
    noise = check_noise(noise)
    dim = low.numel()
    m = torch.zeros(dim, dtype=low.dtype) if shift is None else shift.to(low)
    L = torch.eye(dim, dtype=low.dtype) if scale_tril is None else scale_tril.to(low)

    def model(y: Tensor) -> None:
        flat = dist.Normal(torch.zeros(dim, dtype=low.dtype), 1.0).to_event(1).mask(False)
        v = pyro.sample("v", flat)
        w = m + L @ v
        z = low + (high - low) * torch.sigmoid(w)
        log_jac = (torch.log(high - low) + nn_logsigmoid(w) + nn_logsigmoid(-w)).sum()
        mean = operator(forward(z[None]))[0]
        log_lik = dist.Normal(mean, noise).to_event(1).log_prob(y)
        pyro.factor("posterior", log_lik + log_jac)

    model.to_z = lambda v: low + (high - low) * torch.sigmoid(m + v @ L.T)  # type: ignore[attr-defined]
    return model


class Preconditioner(NamedTuple):
    """A Gaussian in logit coordinates: ``w = shift + scale_tril @ v``.

    Attributes
    ----------
    shift : Tensor of shape (dim_z,)
    scale_tril : Tensor of shape (dim_z, dim_z)
    """

    shift: Tensor
    scale_tril: Tensor


def laplace_preconditioner(
    forward: Forward,
    operator: ObservationOperator,
    low: Tensor,
    high: Tensor,
    noise: float,
    y: Tensor,
    *,
    max_iter: int = 200,
) -> Preconditioner:
    r"""Laplace approximation of :math:`p(w \mid y)` in logit coordinates, for :func:`nuts_posterior`.

    The mode is found with L-BFGS from the centre of the box; the covariance is
    the inverse Hessian of :math:`-\log p(w \mid y)` there (regularised by
    :math:`10^{-8} I`). It only preconditions NUTS, whose target stays exact.

    Parameters
    ----------
    forward, operator, low, high, noise
        As :class:`AmortisedPosterior`.
    y : Tensor of shape (n_obs,)
    max_iter : int, default=200

    Returns
    -------
    Preconditioner
    """
    noise = check_noise(noise)
    y = operator.check_data(y)[0].to(low)

    def neg_log_post(w: Tensor) -> Tensor:
        z = low + (high - low) * torch.sigmoid(w)
        mean = operator(forward(z[None]))[0]
        log_jac = (nn_logsigmoid(w) + nn_logsigmoid(-w)).sum()
        return 0.5 * ((y - mean) ** 2).sum() / noise**2 - log_jac

    w = torch.zeros_like(low, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-10)

    def closure():
        opt.zero_grad()
        loss = neg_log_post(w)
        loss.backward()
        return loss

    opt.step(closure)
    mode = w.detach()
    hess = torch.autograd.functional.hessian(neg_log_post, mode)
    hess = 0.5 * (hess + hess.T) + 1e-8 * torch.eye(mode.numel(), dtype=mode.dtype)
    evals, evecs = torch.linalg.eigh(hess)
    cov = evecs @ torch.diag(1.0 / evals.clamp_min(1e-8)) @ evecs.T  # a saddle still gives a usable scale
    return Preconditioner(mode, torch.linalg.cholesky(0.5 * (cov + cov.T)))


def nn_logsigmoid(x: Tensor) -> Tensor:
    """``log(sigmoid(x))``, stable for large ``|x|``."""
    return torch.nn.functional.logsigmoid(x)


def nuts_posterior(
    forward: Forward,
    operator: ObservationOperator,
    low: Tensor,
    high: Tensor,
    noise: float,
    y: Tensor,
    *,
    seed: int,
    shift: Tensor | None = None,
    scale_tril: Tensor | None = None,
    num_samples: int = 500,
    warmup_steps: int = 500,
    num_chains: int = 2,
    max_tree_depth: int = 8,
):
    r"""Sample the exact posterior :math:`p(z \mid y)` of one data set with NUTS.

    Pyro's NUTS draws from the global RNGs; :func:`sciprob.ppl.run_nuts` runs each
    chain inside :func:`sciprob.runtime.isolated_rng`, so the sampling is
    reproducible from ``seed`` and the caller's random streams are left as they were.

    Parameters
    ----------
    forward, operator, low, high, noise
        As :class:`AmortisedPosterior`.
    y : Tensor of shape (n_obs,)
    seed : int
    shift, scale_tril : Tensor of shape (dim_z,) and (dim_z, dim_z), default=None
        Linear preconditioner in logit space (see :func:`nuts_model`).
    num_samples, warmup_steps, num_chains, max_tree_depth : int

    Returns
    -------
    z : Tensor of shape (chains, draws, dim_z)
        Posterior draws.
    result : sciprob.ppl.MCMCResult
        Draws of the whitened site ``"v"`` with their R-hat, ESS and divergences.
    """
    from sciprob.ppl import run_nuts

    y = operator.check_data(y)[0].to(low)
    model = nuts_model(forward, operator, low, high, noise, shift, scale_tril)
    result = run_nuts(
        model,
        y,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        seed=seed,
        max_tree_depth=max_tree_depth,
    )
    return model.to_z(result.samples["v"]), result


class PosteriorComparison(NamedTuple):
    """An approximate posterior against a reference one (e.g. NUTS), per coordinate.

    Attributes
    ----------
    mean_error : Tensor of shape (dim_z,)
        ``|mean_q - mean_ref| / std_ref``.
    std_ratio : Tensor of shape (dim_z,)
        ``std_q / std_ref``.
    """

    mean_error: Tensor
    std_ratio: Tensor


def compare_posteriors(samples: Tensor, reference: Tensor) -> PosteriorComparison:
    """Compare draws (n, dim_z) of an approximation with reference draws (m, dim_z)."""
    ref_std = reference.std(0)
    return PosteriorComparison(
        (samples.mean(0) - reference.mean(0)).abs() / ref_std, samples.std(0) / ref_std
    )


def interval_coverage(samples: Tensor, truth: Tensor, level: float = 0.95) -> Tensor:
    """Whether each true coordinate lies in the central ``level`` interval of the draws.

    Parameters
    ----------
    samples : Tensor of shape (n_draws, batch, dim_z)
    truth : Tensor of shape (batch, dim_z)
    level : float, default=0.95

    Returns
    -------
    Tensor of shape (batch, dim_z), bool
    """
    if not 0 < level < 1:
        raise ValueError(f"`level` must lie in (0, 1), got {level!r}")
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=samples.dtype, device=samples.device)
    lo, hi = torch.quantile(samples, q, dim=0)
    return (truth >= lo) & (truth <= hi)
