r"""PINN residuals for the PDDLVM: a neural field differentiated at collocation points.

The forward map is a pointwise Gaussian neural field [1]_

.. math::

    q_\alpha(u \mid z) = \prod_{p} N\big(u_p;\, m_\alpha(x_p, t_p, z),\, s^2_\alpha(x_p, t_p, z)\big),

over collocation points :math:`p` in three sets (interior, initial, boundary).
A sample :math:`u_p = m + s\,\xi_p` is a differentiable function of the point,
so its derivatives come from automatic differentiation, and the residual of a
time-dependent PDE (:class:`HeatEquation`) at each point is an observation of
zero with its own noise level,

.. math::

    p(\hat r \mid u, z) = \prod_{S \in \{\mathrm{int}, \mathrm{ic}, \mathrm{bc}\}}
        N(0;\, r_S(u, z),\, \varepsilon_S^2 I).

:class:`PINNPDDLVM` is the PDDLVM of :mod:`sciprob.physics.pddlvm` with this
residual: the same ``model``/``guide`` structure (flat :math:`p(u)`, inverse map
:math:`p_\beta(z \mid u)`, guide :math:`q_\alpha(u\mid z)\,p(z)`), the inverse map a
CNN on the field sampled on the collocation grid.

References
----------
.. [1] Vadeboncoeur et al., arXiv:2208.04856, official code ``apps/PINN``:
   forward net 4x100 with pointwise mean and log-variance, inverse CNN
   (Conv2D 8/16/32, kernel 4, stride 2; Dense 500), eps = 1e-2 inside, 1e-3 on IC/BC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, pyro_method
from torch import Tensor, nn

from sciprob.ppl import mlp


@dataclass(frozen=True)
class HeatEquation:
    r"""The paper's PINN case, :math:`u_t = \gamma^{-1}\partial_x(\mu(u)\partial_x u)`.

    With :math:`\mu(u) = (u\kappa^2+1)/\kappa`

    on :math:`x \in [0, L]`, :math:`t \in [0, T]`, :math:`u(x, 0) = \sin x + 1`,
    :math:`u = 1` at both ends, :math:`z = (\gamma, \kappa) \sim U([1, 5]^2)`.

    Attributes
    ----------
    length, t_end : float
    low, high : tuple of float
        The prior box of :math:`(\gamma, \kappa)`.
    """

    length: float = 2 * math.pi
    t_end: float = 2.0
    low: tuple[float, float] = (1.0, 1.0)
    high: tuple[float, float] = (5.0, 5.0)

    def initial(self, x: Tensor) -> Tensor:
        r"""Return the initial condition :math:`u_0(x) = \sin x + 1`."""
        return torch.sin(x) + 1.0

    def boundary(self, x: Tensor, t: Tensor) -> Tensor:
        """Return the Dirichlet value :math:`g = 1`."""
        return torch.ones_like(x)

    def interior(self, u: Tensor, u_t: Tensor, u_x: Tensor, u_xx: Tensor, z: Tensor) -> Tensor:
        r"""Strong residual :math:`u_t - \gamma^{-1}(\kappa u_x^2 + \mu(u) u_{xx})`, as :math:`\mu' = \kappa`.

        Parameters
        ----------
        u, u_t, u_x, u_xx : Tensor of shape (batch, n_points)
        z : Tensor of shape (batch, 2)
            :math:`(\gamma, \kappa)`.

        Returns
        -------
        Tensor of shape (batch, n_points)
        """
        gamma, kappa = z[:, :1], z[:, 1:2]
        mu = (u * kappa**2 + 1.0) / kappa
        return u_t - (kappa * u_x**2 + mu * u_xx) / gamma

    def prior(self, dtype=torch.float32, device=None) -> dist.TorchDistribution:
        r"""Return the uniform prior of :math:`z = (\gamma, \kappa)`, event shape (2,)."""
        low = torch.tensor(self.low, dtype=dtype, device=device)
        return dist.Uniform(low, torch.tensor(self.high, dtype=dtype, device=device)).to_event(1)


class CollocationGrid(NamedTuple):
    r"""Collocation points of a uniform ``nx x nt`` space-time grid, split into the three sets.

    Attributes
    ----------
    points : Tensor of shape (n_points, 2)
        ``(x, t)`` of the interior points, then the initial ones, then the boundary ones.
    n_interior, n_initial, n_boundary : int
    nx, nt : int
        Grid size; the interior points form an ``(nt - 1) x (nx - 2)`` image (t rows).
    epsilon : Tensor of shape (n_points,)
        Residual noise per point.
    """

    points: Tensor
    n_interior: int
    n_initial: int
    n_boundary: int
    nx: int
    nt: int
    epsilon: Tensor

    @classmethod
    def uniform(
        cls,
        pde: HeatEquation,
        nx: int,
        nt: int,
        eps_interior: float = 1e-2,
        eps_initial: float = 1e-3,
        eps_boundary: float = 1e-3,
    ) -> CollocationGrid:
        """Build the grid ``x_i = i L / (nx - 1)``, ``t_j = j T / (nt - 1)``.

        Raises
        ------
        ValueError
            ``nx < 4`` or ``nt < 3``, or a noise level that is not positive.
        """
        if nx < 4 or nt < 3:
            raise ValueError(f"`nx` must be >= 4 and `nt` >= 3, got nx={nx}, nt={nt}")
        for name, eps in (
            ("eps_interior", eps_interior),
            ("eps_initial", eps_initial),
            ("eps_boundary", eps_boundary),
        ):
            if not (math.isfinite(eps) and eps > 0):
                raise ValueError(f"`{name}` (residual noise level) must be positive, got {eps!r}")
        x = torch.linspace(0.0, pde.length, nx, dtype=torch.float64)
        t = torch.linspace(0.0, pde.t_end, nt, dtype=torch.float64)
        tt, xx = torch.meshgrid(t[1:], x[1:-1], indexing="ij")
        interior = torch.stack([xx.reshape(-1), tt.reshape(-1)], -1)
        initial = torch.stack([x, torch.zeros_like(x)], -1)
        ends = torch.tensor([0.0, pde.length], dtype=torch.float64)
        tb, xb = torch.meshgrid(t[1:], ends, indexing="ij")
        boundary = torch.stack([xb.reshape(-1), tb.reshape(-1)], -1)
        points = torch.cat([interior, initial, boundary])
        eps = torch.cat(
            [
                torch.full((interior.shape[0],), eps_interior, dtype=torch.float64),
                torch.full((initial.shape[0],), eps_initial, dtype=torch.float64),
                torch.full((boundary.shape[0],), eps_boundary, dtype=torch.float64),
            ]
        ).double()
        return cls(points, interior.shape[0], initial.shape[0], boundary.shape[0], nx, nt, eps)

    def full_grid(self, values: Tensor) -> Tensor:
        """Assemble values at the points, shape (batch, n_points), into the ``(batch, nt, nx)`` grid."""
        b = values.shape[0]
        out = values.new_empty(b, self.nt, self.nx)
        i0, i1 = self.n_interior, self.n_interior + self.n_initial
        out[:, 1:, 1:-1] = values[:, :i0].reshape(b, self.nt - 1, self.nx - 2)
        out[:, 0, :] = values[:, i0:i1]
        out[:, 1:, [0, -1]] = values[:, i1:].reshape(b, self.nt - 1, 2)
        return out


class NeuralField(nn.Module):
    r"""Pointwise Gaussian field :math:`(x, t, z) \mapsto (m, s^2)`, an MLP with SiLU (swish) units.

    Parameters
    ----------
    pde : HeatEquation
        For the input scaling of x, t and z to [-1, 1].
    hidden : tuple of int, default=(100, 100, 100, 100)
    var_bounds : tuple of float, default=(1e-8, 1e-2)
        Bounds of :math:`s^2` (sigmoid of the second output), as the paper bounds its variances.
    """

    def __init__(
        self,
        pde: HeatEquation,
        hidden: tuple[int, ...] = (100, 100, 100, 100),
        var_bounds: tuple[float, float] = (1e-8, 1e-2),
    ) -> None:
        super().__init__()
        self.net = mlp(4, 2, hidden, "silu")
        low = torch.tensor([0.0, 0.0, *pde.low])
        high = torch.tensor([pde.length, pde.t_end, *pde.high])
        self.register_buffer("shift", (low + high) / 2)
        self.register_buffer("scale", (high - low) / 2)
        self.var_bounds = var_bounds
        with torch.no_grad():  # start with small variances: the residual dominates the first steps
            self.net[-1].bias[1] = -4.0

    def forward(self, points: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance at points.

        Parameters
        ----------
        points : Tensor of shape (batch, n_points, 2)
        z : Tensor of shape (batch, 2)

        Returns
        -------
        mean, var : Tensor of shape (batch, n_points)
        """
        zz = z[:, None, :].expand(-1, points.shape[1], -1)
        h = self.net((torch.cat([points, zz], -1) - self.shift) / self.scale)
        lo, hi = self.var_bounds
        return h[..., 0] + 1.0, lo + (hi - lo) * torch.sigmoid(h[..., 1])


class FieldCNN(nn.Module):
    """The paper's inverse CNN: Conv2D 8/16/32 (kernel 4, stride 2, padding 1), Dense, Gaussian head.

    Parameters
    ----------
    height, width : int
        Image size (``nt - 1`` time rows by ``nx - 2`` interior columns); at least 8 each.
    dim_z : int
    dense : int, default=500
    z_shift, z_scale : Tensor of shape (dim_z,)
        The output is ``shift + scale * network`` (the prior's centre and half-width).
    """

    def __init__(
        self, height: int, width: int, dim_z: int, dense: int, z_shift: Tensor, z_scale: Tensor
    ) -> None:
        super().__init__()
        if min(height, width) < 8:
            raise ValueError(f"`FieldCNN` needs images of at least 8 x 8, got {height} x {width}")
        self.conv = nn.Sequential(
            nn.Conv2d(1, 8, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(8, 16, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.SiLU(),
            nn.Flatten(),
        )  # fmt: skip
        with torch.no_grad():
            n_flat = self.conv(torch.zeros(1, 1, height, width)).shape[1]
        self.head = nn.Sequential(nn.Linear(n_flat, dense), nn.SiLU(), nn.Linear(dense, 2 * dim_z))
        self.dim_z = dim_z
        self.register_buffer("z_shift", z_shift)
        self.register_buffer("z_scale", z_scale)

    def forward(self, image: Tensor) -> dist.TorchDistribution:
        """Gaussian over z for images of shape (batch, height, width); event shape (dim_z,)."""
        h = self.head(self.conv((image - 1.0).unsqueeze(1)))
        loc = self.z_shift + self.z_scale * h[:, : self.dim_z]
        var = 1e-6 + (1.0 - 1e-6) * torch.sigmoid(h[:, self.dim_z :])
        return dist.Normal(loc, self.z_scale * var.sqrt()).to_event(1)


def pinn_residual(pde: HeatEquation, grid: CollocationGrid, u: Tensor, points: Tensor, z: Tensor) -> Tensor:
    r"""Residuals of a field ``u`` at the collocation points, by automatic differentiation.

    Parameters
    ----------
    pde : HeatEquation
    grid : CollocationGrid
        Tells which points are interior, initial and boundary.
    u : Tensor of shape (batch, n_points)
        Field values, a differentiable function of ``points`` with ``u[b, p]``
        depending on ``points[b, p]`` only (a pointwise network).
    points : Tensor of shape (batch, n_points, 2), requires grad
    z : Tensor of shape (batch, 2)

    Returns
    -------
    Tensor of shape (batch, n_points)
        PDE residual inside, :math:`u - u_0` on the initial set, :math:`u - g` on the boundary set.
    """
    (grad,) = torch.autograd.grad(u.sum(), points, create_graph=True)
    u_x, u_t = grad[..., 0], grad[..., 1]
    (grad_x,) = torch.autograd.grad(u_x.sum(), points, create_graph=True)
    u_xx = grad_x[..., 0]
    i0, i1 = grid.n_interior, grid.n_interior + grid.n_initial
    interior = pde.interior(u[:, :i0], u_t[:, :i0], u_x[:, :i0], u_xx[:, :i0], z)
    initial = u[:, i0:i1] - pde.initial(points[:, i0:i1, 0])
    boundary = u[:, i1:] - pde.boundary(points[:, i1:, 0], points[:, i1:, 1])
    return torch.cat([interior, initial, boundary], dim=1)


class PINNPDDLVM(PyroModule):
    r"""PDDLVM with a PINN residual on a space-time collocation grid.

    Parameters
    ----------
    pde : HeatEquation
    grid : CollocationGrid
    hidden : tuple of int, default=(100, 100, 100, 100)
        Forward field network (paper: 4 x 100).
    dense : int, default=500
        Dense layer of the inverse CNN (paper: 500).

    Notes
    -----
    The collocation points of each batch size are one leaf tensor that both
    ``model`` and ``guide`` use, so the sampled field of the guide stays a
    differentiable function of the points inside the model's residual.
    """

    def __init__(
        self,
        pde: HeatEquation,
        grid: CollocationGrid,
        hidden: tuple[int, ...] = (100, 100, 100, 100),
        dense: int = 500,
    ) -> None:
        super().__init__()
        self.pde, self.grid = pde, grid
        self.field = NeuralField(pde, hidden)
        low, high = torch.tensor(pde.low), torch.tensor(pde.high)
        self.inverse_net = FieldCNN(grid.nt - 1, grid.nx - 2, 2, dense, (low + high) / 2, (high - low) / 2)
        self.register_buffer("points", grid.points.float())
        self.register_buffer("epsilon", grid.epsilon.float())
        self._leaves: dict[tuple, Tensor] = {}

    def _leaf(self, batch_size: int) -> Tensor:
        p = self.points
        key = (batch_size, p.dtype, p.device)
        if key not in self._leaves:
            self._leaves = {key: p.expand(batch_size, -1, -1).clone().requires_grad_(True)}
        return self._leaves[key]

    def _image(self, u: Tensor) -> Tensor:
        g = self.grid
        return u[:, : g.n_interior].reshape(-1, g.nt - 1, g.nx - 2)

    @pyro_method
    def model(self, batch_size: int) -> None:
        """Run the generative model: flat field, inverse map p(z | u), residual observations of zero."""
        points = self._leaf(batch_size)
        n = points.shape[1]
        flat = (
            dist.Normal(torch.zeros(n, dtype=points.dtype, device=points.device), 1.0).to_event(1).mask(False)
        )
        with pyro.plate("batch", batch_size):
            u = pyro.sample("u", flat)
            z = pyro.sample("z", self.inverse_net(self._image(u)))
            r = pinn_residual(self.pde, self.grid, u, points, z)
            pyro.sample("r", dist.Normal(r, self.epsilon).to_event(1), obs=torch.zeros_like(r))

    @pyro_method
    def guide(self, batch_size: int) -> None:
        """Variational family q(u | z) p(z), u the pointwise Gaussian field at the collocation points."""
        points = self._leaf(batch_size)
        with pyro.plate("batch", batch_size):
            z = pyro.sample("z", self.pde.prior(points.dtype, points.device).expand([batch_size]))
            mean, var = self.field(points, z)
            pyro.sample("u", dist.Normal(mean, var.sqrt()).to_event(1))

    @torch.no_grad()
    def forward(self, z: Tensor, points: Tensor | None = None) -> dist.Normal:
        """Forward map: the pointwise predictive of the field.

        Parameters
        ----------
        z : Tensor of shape (batch, 2)
        points : Tensor of shape (n_points, 2), default=None
            Where to evaluate (default: the collocation points).

        Returns
        -------
        Normal with batch shape (batch, n_points)
        """
        z = self._check_z(z)
        p = self.points if points is None else points.to(self.points)
        mean, var = self.field(p.expand(z.shape[0], -1, -1), z)
        return dist.Normal(mean, var.sqrt())

    def mean_at(self, points: Tensor):
        """Return a differentiable map ``z -> mean field at points`` (for an ``AmortisedPosterior``)."""
        p = points.to(self.points)

        def forward(z: Tensor) -> Tensor:
            return self.field(p.expand(z.shape[0], -1, -1), z.to(p))[0]

        return forward

    @torch.no_grad()
    def inverse(self, field_grid: Tensor) -> dist.TorchDistribution:
        """Inverse map from fields on the grid, shape (batch, nt, nx), to a Gaussian over z."""
        g = self.grid
        if field_grid.dim() != 3 or field_grid.shape[1:] != (g.nt, g.nx):
            raise ValueError(
                f"`field_grid` must have shape (batch, {g.nt}, {g.nx}), got {tuple(field_grid.shape)}"
            )
        return self.inverse_net(field_grid[:, 1:, 1:-1].to(self.points))

    def residual_of_mean(self, z: Tensor) -> Tensor:
        """PDE residuals of the predictive mean at the collocation points, shape (batch, n_points)."""
        z = self._check_z(z)
        points = self.points.expand(z.shape[0], -1, -1).clone().requires_grad_(True)
        mean, _ = self.field(points, z)
        return pinn_residual(self.pde, self.grid, mean, points, z).detach()

    def _check_z(self, z: Tensor) -> Tensor:
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != 2:
            raise ValueError(
                f"`z` must be a tensor of shape (batch, 2) of (gamma, kappa), got {getattr(z, 'shape', z)}"
            )
        if not torch.isfinite(z).all() or (z <= 0).any():
            raise ValueError("`z` = (gamma, kappa) must be positive and finite")
        return z.to(self.points)
