r"""Parameter-to-field maps :math:`z \mapsto (\kappa, f, g)` of the parametric Poisson problems.

Each map owns the prior :math:`p(z)` and turns a batch of parameters into the
cell-wise diffusivity :math:`\kappa` (DG0: evaluated at cell midpoints), the
spatially constant forcing :math:`f` and the Dirichlet values :math:`g`. The maps
are torch code, differentiable in ``z``; the DOLFINx problems in
:mod:`sciprob.physics.fem` copy the same fields into ``fem.Function`` objects.

============================  ======  ===================================================
map                           dim z   fields
============================  ======  ===================================================
:class:`SoftplusConstant`     1       kappa = softplus(z), f = 1, u(-1) = 0, u(1) = 0.5
:class:`ChebyshevSoftplus`    7       kappa = softplus(sum_i z_i T_i(x)) + 1, f = z_5, u(1) = z_6
:class:`CosineExpansion2D`    8       kappa = exp(sum_k z_k a_k(x, y)), f = 10, g = 0
:class:`ObservationMapCoefficients`  7  kappa = softplus(sum z_i T_i) + 1, f = z_4, u(-1), u(1) = z_5, z_6
============================  ======  ===================================================
"""

from __future__ import annotations

import math
from typing import NamedTuple

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import Tensor

from sciprob.ppl.distributions import IndependentConcat

#: the (i, j) order of the 2D cosine modes, fixed by issue #4
COSINE_MODES: tuple[tuple[int, int], ...] = (
    (1, 0), (0, 1), (1, 1), (2, 0), (0, 2), (2, 1), (1, 2), (2, 2),
)  # fmt: skip


class Fields(NamedTuple):
    """Discrete data of one batch of problems.

    Attributes
    ----------
    kappa : Tensor of shape (batch, n_cells)
        Diffusivity on each cell.
    forcing : Tensor of shape (batch,)
        Constant source term.
    bc_values : Tensor of shape (batch, n_bc)
        Dirichlet values at the boundary degrees of freedom.
    """

    kappa: Tensor
    forcing: Tensor
    bc_values: Tensor


def chebyshev(x: Tensor, n: int) -> Tensor:
    """Chebyshev polynomials :math:`T_0..T_{n-1}` by the three-term recurrence.

    Parameters
    ----------
    x : Tensor of shape (m,)
        Points in [-1, 1].
    n : int
        Number of polynomials.

    Returns
    -------
    Tensor of shape (m, n)
    """
    cols = [torch.ones_like(x), x]
    for _ in range(2, n):
        cols.append(2 * x * cols[-1] - cols[-2])
    return torch.stack(cols[:n], dim=-1)


class CoefficientMap(torch.nn.Module):
    """Base class: prior over ``z`` and the map to :class:`Fields`.

    Parameters
    ----------
    cell_midpoints : Tensor of shape (n_cells, gdim)
        Where the diffusivity is evaluated.
    bc_coordinates : Tensor of shape (n_bc, gdim)
        Coordinates of the Dirichlet degrees of freedom.

    Attributes
    ----------
    dim_z : int
        Number of parameters.
    """

    dim_z: int

    def __init__(self, cell_midpoints: Tensor, bc_coordinates: Tensor) -> None:
        super().__init__()
        self.register_buffer("cell_midpoints", cell_midpoints)
        self.register_buffer("bc_coordinates", bc_coordinates)

    def prior(self) -> dist.TorchDistribution:
        """Return the prior :math:`p(z)` with event shape ``(dim_z,)``."""
        raise NotImplementedError

    def validate(self, z: Tensor) -> Tensor:
        """Check the shape and finiteness of ``z``; return it as a 2-D tensor.

        Parameters
        ----------
        z : Tensor of shape (batch, dim_z) or (dim_z,)

        Returns
        -------
        Tensor of shape (batch, dim_z)

        Raises
        ------
        TypeError
            If ``z`` is not a tensor.
        ValueError
            Wrong trailing dimension or a non-finite entry.
        """
        if not isinstance(z, Tensor):
            raise TypeError(f"`z` must be a torch.Tensor, got {type(z).__name__}")
        z2 = z.unsqueeze(0) if z.dim() == 1 else z
        if z2.dim() != 2 or z2.shape[-1] != self.dim_z:
            raise ValueError(
                f"`z` must have shape (batch, {self.dim_z}) or ({self.dim_z},), got {tuple(z.shape)}"
            )
        if not torch.isfinite(z2).all():
            bad = (~torch.isfinite(z2)).nonzero()[0].tolist()
            raise ValueError(f"`z` must be finite, got {z2[tuple(bad)].item()} at index {bad}")
        return z2

    def fields(self, z: Tensor) -> Fields:
        """Map parameters to fields.

        Parameters
        ----------
        z : Tensor of shape (batch, dim_z)

        Returns
        -------
        Fields
        """
        raise NotImplementedError

    def kappa_field(self, z: Tensor) -> Tensor:
        """Just the diffusivity, shape (batch, n_cells)."""
        return self.fields(z).kappa


class SoftplusConstant(CoefficientMap):
    r"""The paper's linear 1D set-up: :math:`\kappa = \mathrm{softplus}(z)`, :math:`z \sim N(0, 1)`.

    ``f = 1``, ``u(-1) = 0``, ``u(1) = 0.5`` (official code, ``apps/poisson1DLinear``).
    """

    dim_z = 1

    def prior(self) -> dist.TorchDistribution:  # noqa: D102
        zero = torch.zeros(1, dtype=self.cell_midpoints.dtype, device=self.cell_midpoints.device)
        return dist.Normal(zero, 1.0).to_event(1)

    def fields(self, z: Tensor) -> Fields:  # noqa: D102
        batch = z.shape[0]
        kappa = F.softplus(z[:, :1]).expand(batch, self.cell_midpoints.shape[0])
        forcing = torch.ones(batch, dtype=z.dtype, device=z.device)
        right = (self.bc_coordinates[:, 0] > 0).to(z.dtype)
        return Fields(kappa, forcing, 0.5 * right.expand(batch, -1))


class ChebyshevSoftplus(CoefficientMap):
    r"""The paper's nonlinear 1D set-up.

    :math:`\kappa(x) = \mathrm{softplus}(\sum_{i<5} z_i T_i(x)) + 1`,
    :math:`z_{0:5} \sim N(0, I_5)`, :math:`f = z_5 \sim U(1, 2)`,
    :math:`u(-1) = 0`, :math:`u(1) = z_6 \sim U(0.5, 1)`
    (official code, ``apps/poisson1DNonLinear``).
    """

    n_kappa = 5
    dim_z = 7

    def __init__(self, cell_midpoints: Tensor, bc_coordinates: Tensor) -> None:
        super().__init__(cell_midpoints, bc_coordinates)
        self.register_buffer("basis", chebyshev(cell_midpoints[:, 0], self.n_kappa))

    def prior(self) -> dist.TorchDistribution:  # noqa: D102
        opts = dict(dtype=self.cell_midpoints.dtype, device=self.cell_midpoints.device)
        return IndependentConcat(
            [
                dist.Normal(torch.zeros(self.n_kappa, **opts), 1.0).to_event(1),
                dist.Uniform(torch.ones(1, **opts), 2.0).to_event(1),
                dist.Uniform(torch.full((1,), 0.5, **opts), 1.0).to_event(1),
            ]
        )

    def fields(self, z: Tensor) -> Fields:  # noqa: D102
        kappa = F.softplus(z[:, : self.n_kappa] @ self.basis.T) + 1.0
        right = (self.bc_coordinates[:, 0] > 0).to(z.dtype)
        return Fields(kappa, z[:, self.n_kappa], z[:, self.n_kappa + 1 : self.n_kappa + 2] * right)


class CosineExpansion2D(CoefficientMap):
    r"""The 2D problem of issue #4: :math:`\kappa = \exp(\sum_k z_k a_k)`, :math:`z \sim N(0, I_8)`.

    :math:`a_k(x, y) = \cos(i\pi x)\cos(j\pi y) / (1 + i^2 + j^2)` with
    :math:`(i, j)` running through :data:`COSINE_MODES`; ``f = 10``; ``u = 0``
    on ``x = 0`` and ``x = 1``.
    """

    dim_z = len(COSINE_MODES)

    def __init__(self, cell_midpoints: Tensor, bc_coordinates: Tensor) -> None:
        super().__init__(cell_midpoints, bc_coordinates)
        x, y = cell_midpoints[:, 0], cell_midpoints[:, 1]
        modes = [
            torch.cos(i * math.pi * x) * torch.cos(j * math.pi * y) / (1 + i * i + j * j)
            for i, j in COSINE_MODES
        ]
        self.register_buffer("basis", torch.stack(modes, dim=-1))

    def prior(self) -> dist.TorchDistribution:  # noqa: D102
        zero = torch.zeros(self.dim_z, dtype=self.cell_midpoints.dtype, device=self.cell_midpoints.device)
        return dist.Normal(zero, 1.0).to_event(1)

    def fields(self, z: Tensor) -> Fields:  # noqa: D102
        batch = z.shape[0]
        kappa = torch.exp(z @ self.basis.T)
        forcing = torch.full((batch,), 10.0, dtype=z.dtype, device=z.device)
        return Fields(
            kappa, forcing, torch.zeros(batch, self.bc_coordinates.shape[0], dtype=z.dtype, device=z.device)
        )


class ObservationMapCoefficients(CoefficientMap):
    r"""The paper's observation-map (inverse) 1D set-up, every parameter uniform.

    :math:`\kappa(x) = \mathrm{softplus}(\sum_{i<4} z_i T_i(x)) + 1` with
    :math:`z_{0:4} \sim U(-1, 1)^4`, :math:`f = z_4 \sim U(1, 5)`,
    :math:`u(-1) = z_5 \sim U(-0.5, 0.5)`, :math:`u(1) = z_6 \sim U(-0.5, 0.5)`
    (official code, ``apps/poisson1DObsMapInvLik``: 100 elements, dimK = 4). The
    references do not give that app's bijector; the ``softplus + 1`` of the
    nonlinear app is used (it keeps :math:`\kappa \geq 1`).
    """

    n_kappa = 4
    dim_z = 7

    def __init__(self, cell_midpoints: Tensor, bc_coordinates: Tensor) -> None:
        super().__init__(cell_midpoints, bc_coordinates)
        self.register_buffer("basis", chebyshev(cell_midpoints[:, 0], self.n_kappa))

    def bounds(self) -> tuple[Tensor, Tensor]:
        """Lower and upper ends of the uniform prior, each of shape (7,)."""
        opts = dict(dtype=self.cell_midpoints.dtype, device=self.cell_midpoints.device)
        low = torch.tensor([-1.0] * self.n_kappa + [1.0, -0.5, -0.5], **opts)
        high = torch.tensor([1.0] * self.n_kappa + [5.0, 0.5, 0.5], **opts)
        return low, high

    def prior(self) -> dist.TorchDistribution:  # noqa: D102
        low, high = self.bounds()
        return dist.Uniform(low, high, validate_args=False).to_event(1)

    def fields(self, z: Tensor) -> Fields:  # noqa: D102
        kappa = F.softplus(z[:, : self.n_kappa] @ self.basis.T) + 1.0
        right = (self.bc_coordinates[:, 0] > 0).to(z.dtype)
        bc = z[:, 5:6] * (1 - right) + z[:, 6:7] * right
        return Fields(kappa, z[:, self.n_kappa], bc)
