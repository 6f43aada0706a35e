r"""The physics-driven deep latent variable model (PDDLVM) of Vadeboncoeur et al. [1]_.

Generative model and variational family, for a discrete residual
:math:`r(u, z) \in \mathbb{R}^N` (:class:`sciprob.physics.residual.DiscreteProblem`):

.. math::

    p(\hat r, u, z) &= N(\hat r;\, r(u, z),\, \varepsilon^2 I)\; p_\beta(z \mid u)\; p(u),
    \qquad p(u) \propto 1, \\
    q(u, z) &= q_\alpha(u \mid z)\, p(z),

with Gaussian networks :math:`q_\alpha(u\mid z)` (forward map) and
:math:`p_\beta(z\mid u)` (inverse map). Training maximises

.. math::

    \mathrm{ELBO} = \mathbb{E}_{p(z)\, q_\alpha(u\mid z)}\big[\log N(0;\, r(u, z), \varepsilon^2 I)
        + \log p_\beta(z\mid u) - \log q_\alpha(u\mid z)\big] + H[p(z)]

on the observation :math:`\hat r = 0`; no PDE is solved. This is the
``compute_nelbo_prior`` objective of the official code (the prior entropy
:math:`H[p(z)]` is a constant). In Pyro the flat :math:`p(u)` is a masked site.

Representation of u
-------------------
The latent ``u`` site holds *reduced coordinates* :math:`c \in \mathbb{R}^m`
and the nodal values are :math:`u = \Psi c` (:class:`ReducedBasis`), as the
paper represents :math:`u` by Chebyshev coefficients. Here :math:`\Psi` spans
Chebyshev polynomials (tensor products in 2D) evaluated at the nodes, and is
re-orthonormalised so that :math:`J_{\mathrm{ref}}\Psi` has orthonormal columns
(times a scale), where :math:`J_{\mathrm{ref}} = \partial r/\partial u` at the
prior-mean parameters: the residual is then well conditioned in :math:`c`,
which makes training far faster than in nodal coordinates (our choice, not
the paper's). The residual itself is always the full nodal FE residual.

References
----------
.. [1] A. Vadeboncoeur, Ö. D. Akyildiz, I. Kazlauskaite, M. Girolami,
   F. Cirak, "Fully probabilistic deep models for forward and inverse problems
   in parametric PDEs", J. Comput. Phys. (2023), arXiv:2208.04856.
"""

from __future__ import annotations

from typing import Literal

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, pyro_method
from torch import Tensor, nn

from sciprob.physics.calibration import conformal_scale
from sciprob.physics.coefficients import chebyshev
from sciprob.physics.residual import DiscreteProblem, GalerkinResidual
from sciprob.ppl import AmortisedGaussian


class ReducedBasis(nn.Module):
    r"""Nodal values from reduced coordinates: ``u = c @ matrix.T``.

    Parameters
    ----------
    matrix : Tensor of shape (n_dofs, m)
        The basis :math:`\Psi`.
    reference : Tensor of shape (m,), default=None
        Coordinates of a reference solution (the linearised solution at the
        prior mean for :meth:`chebyshev`); the forward network starts there.
    row_groups : sequence of LongTensor, default=None
        A partition of the dofs ``0 .. n_dofs - 1`` into groups whose rows of ``matrix`` span
        few dimensions (e.g. the dofs of one component of a vector field: a tensor basis with a
        copy per component gives each component's rows rank at most ``m / n_components``).
        :meth:`to_nodal` then maps each group through the truncated SVD of its rows
        (singular values below ``1e-13`` of the group's largest dropped, rows of ``matrix``
        that are exactly zero stay zero), wherever that costs fewer multiply-adds than the
        dense product: about half the time on shells. The stored ``matrix`` is then that
        truncation (a change of about ``1e-13`` relative), so that dense and factored products
        agree to round-off. ``None``: the dense product.

    Attributes
    ----------
    size : int
        ``m``.
    """

    def __init__(
        self, matrix: Tensor, reference: Tensor | None = None, row_groups: list[Tensor] | None = None
    ) -> None:
        super().__init__()
        self.register_buffer("matrix", matrix)
        self.size, self.n_groups = matrix.shape[1], 0
        if row_groups is not None:
            self._factor_groups(row_groups)
        ref = torch.zeros(matrix.shape[1], dtype=matrix.dtype) if reference is None else reference
        self.register_buffer("reference", ref.to(matrix.dtype))
        self.register_buffer("pinv", torch.linalg.pinv(self.matrix))
        self.register_buffer("matrix_sq", self.matrix**2, persistent=False)  # nodal variances

    def _factor_groups(self, row_groups: list[Tensor]) -> None:
        """Factor ``matrix[rows] = left @ right`` (truncated SVD) if that is cheaper for every group."""
        n, m = self.matrix.shape
        rows_all = torch.cat([torch.as_tensor(r, dtype=torch.long).reshape(-1) for r in row_groups])
        if rows_all.numel() != n or not torch.equal(torch.sort(rows_all).values, torch.arange(n)):
            raise ValueError(f"`row_groups` must partition the {n} dofs (each exactly once)")
        factors = []
        for rows in row_groups:
            rows = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
            block = self.matrix[rows].double()
            left, sv, vh = torch.linalg.svd(block, full_matrices=False)
            rank = int((sv > 1e-13 * sv[0]).sum()) if sv.numel() and sv[0] > 0 else 0
            if rank * (rows.numel() + m) >= rows.numel() * m:
                return  # no gain for this partition: keep the dense product
            left = left[:, :rank]
            left[(block == 0).all(dim=1)] = 0.0  # e.g. clamped dofs stay exactly zero
            factors.append((rows, left, sv[:rank, None] * vh[:rank]))
        matrix = self.matrix.clone()
        for k, (rows, left, right) in enumerate(factors):
            matrix[rows] = (left @ right).to(matrix.dtype)
            self.register_buffer(f"_rows{k}", rows, persistent=False)
            self.register_buffer(f"_left{k}", left.to(self.matrix.dtype), persistent=False)
            self.register_buffer(f"_right{k}", right.to(self.matrix.dtype), persistent=False)
        self.matrix, self.n_groups = matrix, len(factors)

    def to_nodal(self, c: Tensor) -> Tensor:
        """``(batch, m) -> (batch, n_dofs)``."""
        if not self.n_groups:
            return c @ self.matrix.T
        out = c.new_zeros(*c.shape[:-1], self.matrix.shape[0])
        for k in range(self.n_groups):
            rows, left, right = (getattr(self, f"_{name}{k}") for name in ("rows", "left", "right"))
            out.index_copy_(-1, rows, (c @ right.T) @ left.T)
        return out

    def coordinates(self, u: Tensor) -> Tensor:
        """Least-squares coordinates of nodal values, ``(batch, n_dofs) -> (batch, m)``."""
        return u @ self.pinv.T

    @classmethod
    def chebyshev(cls, problem: DiscreteProblem, degree: int) -> ReducedBasis:
        r"""Chebyshev basis of the problem's box, preconditioned by the reference Jacobian.

        Parameters
        ----------
        problem : DiscreteProblem
        degree : int
            Polynomials per direction (``m = degree ** gdim``, times the number of
            components of a vector field), at least 2.

        Returns
        -------
        ReducedBasis
            With :math:`J_{\mathrm{ref}}\Psi = s\,Q`, :math:`Q^\top Q = I`, and
            ``s`` chosen so that the reference solution has coordinates of
            magnitude at most 1.
        """
        phi = _chebyshev_features(problem, degree)
        problem64 = problem.to(torch.float64)
        z_ref = problem64.prior().mean.double()[None]
        u0 = torch.zeros(1, phi.shape[0], dtype=torch.float64)
        j_phi = problem64.jacobian_product(u0, z_ref, phi)  # J_ref @ phi
        q, rr = torch.linalg.qr(j_phi)
        psi = torch.linalg.solve_triangular(rr, phi, upper=True, left=False)  # phi @ rr^{-1}
        c_ref = q.T @ (-problem64.residual(u0, z_ref)[0])
        scale = c_ref.abs().max()
        return cls(psi * scale, reference=c_ref / scale)

    @classmethod
    def galerkin(cls, problem: DiscreteProblem, degree: int) -> tuple[ReducedBasis, DiscreteProblem]:
        r"""Chebyshev trial functions that meet the Dirichlet conditions, and the Galerkin residual.

        For problems with a symmetric positive definite Jacobian (elasticity, diffusion) and
        zero Dirichlet values. The Chebyshev span (as in :meth:`chebyshev`) is restricted to
        functions that vanish at the Dirichlet dofs (the null space of their rows), reduced to
        its numerical rank at the nodes (so ``size`` can be below ``degree**gdim`` times the
        components), made
        :math:`\bar J`-orthonormal (:math:`\Psi^\top \bar J \Psi = s^2 I`, :math:`\bar J` the
        Jacobian at the prior mean), and the residual is tested with the same functions:
        :math:`g(c, z) = \Psi^\top r(\Psi c, z) / s^2`. The reduced Jacobian
        :math:`\Psi^\top J(z) \Psi / s^2` is the identity at the prior mean and stays within
        the range of the coefficient ratio :math:`J(z)/\bar J` elsewhere, however stiff the
        nodal problem is (thin shells: the preconditioned nodal residual's Jacobian has
        condition numbers of 10^3 in these coordinates, which stalls training). The
        minimiser of :math:`\|g\|` is the Galerkin (energy-best) solution in the span, not
        the nodal least-squares one; :math:`g` is in units of the coordinates, whose
        reference solution has largest entry 1.

        Parameters
        ----------
        problem : DiscreteProblem
            The nodal problem (its operator has ``bc_dofs``).
        degree : int
            Polynomials per direction, at least 2.

        Returns
        -------
        basis : ReducedBasis
        galerkin : DiscreteProblem
            The same problem with the tested residual (shape (batch, m)).

        Raises
        ------
        ValueError
            If the Dirichlet values at the prior mean are not zero or the reduced Jacobian is
            not symmetric positive definite.
        """
        phi = _chebyshev_features(problem, degree)
        problem64 = problem.to(torch.float64)
        z_ref = problem64.prior().mean.double()[None]
        u0 = torch.zeros(1, phi.shape[0], dtype=torch.float64)
        load = -problem64.residual(u0, z_ref)[0]
        bc = problem.operator.bc_dofs.long().cpu()
        if bc.numel() and load[bc].abs().max() > 1e-12 * max(float(load.abs().max()), 1e-300):
            raise ValueError(
                "`ReducedBasis.galerkin` needs zero Dirichlet values; this problem's are "
                f"{load[bc].abs().max().item():.3g} at most (use `ReducedBasis.chebyshev`)"
            )
        # an orthonormal basis of the span: polynomials of a higher degree than the nodes resolve
        # (e.g. through a thickness of one Q2 brick) are dependent there
        left, sv, _ = torch.linalg.svd(phi, full_matrices=False)
        phi = left[:, sv > 1e-10 * sv[0]]
        if bc.numel():  # its functions that vanish at the Dirichlet dofs (orthonormal columns stay so)
            _, sv, vh = torch.linalg.svd(phi[bc], full_matrices=True)
            rank = int((sv > 1e-8 * sv[0]).sum())
            phi = phi @ vh[rank:].T
            phi[bc] = 0.0  # they were below 1e-8 there; now the clamps hold exactly
        gram = phi.T @ problem64.jacobian_product(u0, z_ref, phi)
        asym = (gram - gram.T).abs().max() / gram.abs().max()
        if asym > 1e-6:  # round-off of stiff problems reaches 1e-8; a non-symmetric form gives O(1)
            raise ValueError(
                f"`ReducedBasis.galerkin` needs a symmetric Jacobian; this one's reduced form is "
                f"asymmetric by {asym.item():.3g} (relative): use `ReducedBasis.chebyshev`"
            )
        chol, info = torch.linalg.cholesky_ex(0.5 * (gram + gram.T))
        if int(info) != 0:
            raise ValueError("`ReducedBasis.galerkin` needs a positive definite Jacobian at the prior mean")
        psi = torch.linalg.solve_triangular(chol, phi.T, upper=False).T  # Psi^T J Psi = I
        components = getattr(problem, "dof_components", None)
        groups = None
        if components is not None and int(components.max()) > 0:  # one group of rows per component
            n_comp = int(components.max()) + 1
            groups = [torch.nonzero(components.cpu() == k).squeeze(1) for k in range(n_comp)]
        psi = cls(psi, row_groups=groups).matrix  # as the factored product evaluates it
        c_ref = psi.T @ load
        scale = c_ref.abs().max()
        tested = DiscreteProblem(
            GalerkinResidual(problem64.operator, psi / scale), problem64.coefficients,
            problem64.dof_coordinates, dof_components=problem64.dof_components,
        )  # fmt: skip
        return cls(psi * scale, reference=c_ref / scale, row_groups=groups), tested


def _chebyshev_features(problem: DiscreteProblem, degree: int) -> Tensor:
    """Tensor Chebyshev polynomials on the dofs' bounding box, one copy per vector component.

    Returns
    -------
    Tensor of shape (n_dofs, degree**gdim * n_components), float64
    """
    if degree < 2:
        raise ValueError(f"`degree` (basis polynomials per direction) must be >= 2, got {degree}")
    x = problem.dof_coordinates.double()
    lo, hi = x.min(dim=0).values, x.max(dim=0).values
    xhat = 2 * (x - lo) / (hi - lo) - 1
    per_dim = [chebyshev(xhat[:, d], degree) for d in range(x.shape[1])]
    phi = per_dim[0]
    for t in per_dim[1:]:
        phi = (phi[:, :, None] * t[:, None, :]).reshape(x.shape[0], -1)
    components = getattr(problem, "dof_components", None)
    if components is not None and int(components.max()) > 0:  # vector field: one copy per component
        onehot = torch.nn.functional.one_hot(components.long()).to(phi)
        phi = (phi[:, :, None] * onehot[:, None, :]).reshape(x.shape[0], -1)
    return phi


class PDDLVM(PyroModule):
    r"""Forward and inverse Gaussian maps of a parametric PDE, trained on its residual.

    Parameters
    ----------
    problem : DiscreteProblem
        Prior, fields and batched residual (torch).
    basis : ReducedBasis
        Representation of ``u``.
    epsilon : float, default=1e-2
        Residual noise scale :math:`\varepsilon` (the paper's ``epsilon_r``).
    hidden : tuple of int, default=(50, 50, 50)
        Hidden widths of the forward network.
    inverse_hidden : tuple of int, default=None
        Hidden widths of the inverse network (default: ``hidden``).
    covariance : {"diagonal", "lowrank"}, default="diagonal"
        Covariance family of both networks.
    rank : int, default=2
        Rank for ``covariance="lowrank"``.
    var_bounds : tuple of float, default=(1e-8, 1.0)
        Variance bounds of the networks (in standardised units).
    init_var : float, default=1e-4
        Initial variances (standardised units); small values keep the first
        steps' Monte Carlo noise from swamping the residual.

    Examples
    --------
    >>> from sciprob.physics.fem import LinearPoisson1D   # doctest: +SKIP
    >>> problem = LinearPoisson1D().discrete.float()
    >>> model = PDDLVM(problem, ReducedBasis.chebyshev(problem, 5).float())
    >>> history = train_svi(model.model, model.guide, ClippedAdam({"lr": 1e-3}),
    ...                     steps=2000, model_kwargs={"batch_size": 32})
    >>> model.forward(problem.prior().sample((4,))).mean.shape
    torch.Size([4, 21])
    """

    def __init__(
        self,
        problem: DiscreteProblem,
        basis: ReducedBasis,
        *,
        epsilon: float = 1e-2,
        hidden: tuple[int, ...] = (50, 50, 50),
        inverse_hidden: tuple[int, ...] | None = None,
        covariance: Literal["diagonal", "lowrank"] = "diagonal",
        rank: int = 2,
        var_bounds: tuple[float, float] = (1e-8, 1.0),
        init_var: float = 1e-4,
    ) -> None:
        super().__init__()
        if not epsilon > 0:
            raise ValueError(f"`epsilon` (residual noise scale) must be positive, got {epsilon!r}")
        if basis.matrix.shape[0] != problem.n_dofs:
            raise ValueError(
                f"`basis` has {basis.matrix.shape[0]} rows but the problem has {problem.n_dofs} dofs"
            )
        self.problem, self.basis, self.epsilon = problem, basis, float(epsilon)
        prior = problem.prior()
        z_mean, z_std = prior.mean.float(), prior.variance.sqrt().float()
        opts = dict(covariance=covariance, rank=rank, var_bounds=var_bounds, init_var=init_var)
        self.forward_net = AmortisedGaussian(
            problem.dim_z, basis.size, hidden, input_shift=z_mean, input_scale=z_std,
            output_shift=basis.reference.float(), **opts,
        )  # fmt: skip
        self.inverse_net = AmortisedGaussian(
            basis.size, problem.dim_z, inverse_hidden or hidden,
            output_shift=z_mean, output_scale=z_std, **opts,
        )  # fmt: skip
        # factor of the forward map's standard deviations, set by :meth:`calibrate` (1: the variational ones)
        self.register_buffer("forward_scale", torch.ones((), dtype=basis.matrix.dtype))

    @pyro_method
    def model(self, batch_size: int) -> None:
        """Run the generative model; ``batch_size`` residual observations (static under JIT)."""
        m = self.basis.size
        dtype, device = self.basis.matrix.dtype, self.basis.matrix.device
        flat = dist.Normal(torch.zeros(m, dtype=dtype, device=device), 1.0).to_event(1).mask(False)
        with pyro.plate("batch", batch_size):
            c = pyro.sample("u", flat)  # p(u) = const: the masked site adds nothing to the ELBO
            z = pyro.sample("z", self.inverse_net(c))
            r = self.problem.residual(self.basis.to_nodal(c), z)
            pyro.sample("r", dist.Normal(r, self.epsilon).to_event(1), obs=torch.zeros_like(r))

    @pyro_method
    def guide(self, batch_size: int) -> None:
        """Variational family ``q(u|z) p(z)``."""
        with pyro.plate("batch", batch_size):
            z = pyro.sample("z", self.problem.prior().expand([batch_size]))
            pyro.sample("u", self.forward_net(z))

    def _check(self, name: str, x: Tensor, dim: int) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[-1] != dim:
            raise ValueError(f"`{name}` must have shape (batch, {dim}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"`{name}` must be finite, got non-finite entries")
        return x.to(self.basis.matrix)

    @torch.no_grad()
    def forward(self, z: Tensor) -> dist.Normal:
        r"""Forward map: the predictive distribution of the nodal solution.

        Parameters
        ----------
        z : Tensor of shape (batch, dim_z)

        Returns
        -------
        Normal with batch shape (batch, n_dofs)
            Mean :math:`\Psi\mu_\alpha(z)` and the exact nodal marginal
            standard deviations of :math:`\Psi c`, :math:`c \sim q_\alpha(c\mid z)`.
        """
        q = self.forward_net(self._check("z", z, self.problem.dim_z))
        psi = self.basis.matrix
        mean = self.basis.to_nodal(q.mean)
        if isinstance(q, dist.LowRankMultivariateNormal):
            var = q.cov_diag @ self.basis.matrix_sq.T + (psi @ q.cov_factor).pow(2).sum(-1)
        else:
            var = q.variance @ self.basis.matrix_sq.T
        # values the basis fixes (e.g. clamped dofs of ReducedBasis.galerkin) have zero variance: keep
        # the Normal valid with the smallest positive scale
        std = (var.sqrt() * self.forward_scale).clamp_min(torch.finfo(var.dtype).tiny)
        return dist.Normal(mean, std)

    @torch.no_grad()
    def forward_mean(self, z: Tensor) -> Tensor:
        r"""Return the forward map's mean nodal solution :math:`\Psi\mu_\alpha(z)` alone.

        Equal to ``self.forward(z).mean`` without the standard deviations: the network's mean
        head and one basis product, what a solver's caller gets (the paper's "NN map + einsum"
        that its speed-up times).

        Parameters
        ----------
        z : Tensor of shape (batch, dim_z)

        Returns
        -------
        Tensor of shape (batch, n_dofs)
        """
        return self.basis.to_nodal(self.forward_net.mean(self._check("z", z, self.problem.dim_z)))

    @torch.no_grad()
    def calibrate(self, z: Tensor, u: Tensor, level: float = 0.95) -> float:
        """Scale the forward map's standard deviations on reference solves (split conformal).

        Sets :attr:`forward_scale` so that the central ``level`` band of :meth:`forward` holds
        a fraction ``level`` of new nodal values (:func:`sciprob.physics.calibration.conformal_scale`).
        Use reference solves that are not in the test set.

        Parameters
        ----------
        z : Tensor of shape (n, dim_z)
            Calibration parameters.
        u : Tensor of shape (n, n_dofs)
            Their reference (FEM) nodal solutions.
        level : float, default=0.95

        Returns
        -------
        float
            The new :attr:`forward_scale`.
        """
        u = self._check("u", u, self.problem.n_dofs)
        self.forward_scale.fill_(1.0)
        q = self.forward(z)
        self.forward_scale.fill_(conformal_scale(u, q.mean, q.stddev, level))
        return float(self.forward_scale)

    @torch.no_grad()
    def inverse(self, u: Tensor) -> dist.TorchDistribution:
        """Inverse map: the distribution of the parameters behind nodal values ``u``.

        Parameters
        ----------
        u : Tensor of shape (batch, n_dofs)
            Nodal values (projected onto the basis by least squares).

        Returns
        -------
        Normal (event shape (dim_z,)) or LowRankMultivariateNormal
        """
        c = self.basis.coordinates(self._check("u", u, self.problem.n_dofs))
        return self.inverse_net(c)
