r"""Batched P1 finite element residuals in torch, built from operators DOLFINx assembled.

For a P1 (piecewise linear) discretisation the gradient of :math:`u_h` is
constant on each cell, and with a cell-wise constant (DG0) diffusivity every
flux law :math:`q = q(\nabla u, \kappa)` is constant on each cell too. The weak
residual

.. math::

    r_i(u, z) = \int_\Omega q(\nabla u_h, \kappa_z) \cdot \nabla \phi_i \,dx
               - f_z \int_\Omega \phi_i \,dx

is then exactly

.. math::

    r_i = \sum_{e \ni i} |e|\, q_e \cdot G_{e, a(i)} - f_z\, \ell_i,
    \qquad \nabla u_e = \sum_a G_{e,a}\, u_{\mathrm{dofs}(e, a)},

with the per-cell gradient operators :math:`G_{e,a} = \nabla\phi_a|_e`, the
cell volumes :math:`|e|` and the load :math:`\ell_i = \int \phi_i`, all
extracted from matrices and vectors that DOLFINx assembles once
(:mod:`sciprob.physics.fem.parametric`). Rows of Dirichlet degrees of freedom
are replaced by :math:`u_i - g_i`, DOLFINx's convention for nonlinear residuals
(``bc.set(b, x0=u, alpha=-1)``).

The evaluation is a gather, two small ``einsum`` and a scatter-add, so it runs
on CPU or CUDA, for a whole batch at once, and is differentiable (to any order)
in ``u`` and in the fields ``kappa``, ``forcing``, ``bc_values``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

FluxLaw = Callable[[Tensor, Tensor], Tensor]


def linear_flux(grad_u: Tensor, kappa: Tensor) -> Tensor:
    r"""Fourier/Fick flux :math:`q = \kappa \nabla u`.

    Parameters
    ----------
    grad_u : Tensor of shape (batch, n_cells, gdim)
    kappa : Tensor of shape (batch, n_cells)

    Returns
    -------
    Tensor of shape (batch, n_cells, gdim)
    """
    return kappa.unsqueeze(-1) * grad_u


def sigmoid_flux(grad_u: Tensor, kappa: Tensor) -> Tensor:
    r"""Evaluate the paper's nonlinear law :math:`q = \frac{\sigma(|u'|) + 5\kappa}{10}\, u'` [1]_.

    Parameters
    ----------
    grad_u : Tensor of shape (batch, n_cells, gdim)
        ``gdim`` is 1 for the paper's problem; for ``gdim > 1`` the Euclidean
        norm replaces :math:`|u'|`.
    kappa : Tensor of shape (batch, n_cells)

    Returns
    -------
    Tensor of shape (batch, n_cells, gdim)

    References
    ----------
    .. [1] Vadeboncoeur et al., arXiv:2208.04856; official code
       ``pddlvm/poisson1DSolver.py`` (``stress_strain``).
    """
    norm = grad_u.abs().squeeze(-1) if grad_u.shape[-1] == 1 else grad_u.norm(dim=-1)
    return ((torch.sigmoid(norm) + 5.0 * kappa) / 10.0).unsqueeze(-1) * grad_u


class ResidualOperator(nn.Module):
    r"""The discrete residual ``r(u; kappa, forcing, bc_values)`` of a P1 problem.

    Parameters
    ----------
    cell_dofs : Tensor of shape (n_cells, n_local) of int64
        Degrees of freedom of each cell (DOLFINx dofmap).
    grad_ops : Tensor of shape (n_cells, n_local, gdim)
        Gradient of each local basis function on its cell.
    volumes : Tensor of shape (n_cells,)
        Cell volumes.
    load : Tensor of shape (n_dofs,)
        :math:`\int \phi_i\,dx` (load of a unit forcing).
    bc_dofs : Tensor of shape (n_bc,) of int64
        Dirichlet degrees of freedom.
    flux : callable
        ``flux(grad_u, kappa)`` with shapes (batch, n_cells, gdim), (batch, n_cells).

    Attributes
    ----------
    n_dofs, n_cells, gdim : int
    """

    def __init__(
        self,
        cell_dofs: Tensor,
        grad_ops: Tensor,
        volumes: Tensor,
        load: Tensor,
        bc_dofs: Tensor,
        flux: FluxLaw,
    ) -> None:
        super().__init__()
        self.n_cells, n_local, self.gdim = grad_ops.shape
        self.n_dofs = load.shape[0]
        assert cell_dofs.shape == (self.n_cells, n_local), "dofmap and gradient operators disagree"
        self.flux = flux
        self.register_buffer("cell_dofs", cell_dofs.long())
        self.register_buffer("grad_ops", grad_ops)
        # local-index-major copies: one gather / scatter per local dof keeps the batch loops dense
        self.register_buffer(
            "_dofs_t", cell_dofs.long().T.contiguous(), persistent=False
        )  # (n_local, n_cells)
        self.register_buffer(
            "_grad_t", grad_ops.permute(1, 2, 0).contiguous(), persistent=False
        )  # (n_local, gdim, n_cells)
        self.register_buffer("volumes", volumes)
        self.register_buffer("load", load)
        self.register_buffer("bc_dofs", bc_dofs.long())
        is_bc = torch.zeros(self.n_dofs, dtype=torch.bool)
        is_bc[bc_dofs.long()] = True
        self.register_buffer("is_bc", is_bc)

    def cell_gradients(self, u: Tensor) -> Tensor:
        """Gradient of ``u`` on every cell.

        Parameters
        ----------
        u : Tensor of shape (batch, n_dofs)

        Returns
        -------
        Tensor of shape (batch, n_cells, gdim)
        """
        grad = sum(u[:, dofs].unsqueeze(1) * g for dofs, g in zip(self._dofs_t, self._grad_t, strict=True))
        return grad.transpose(1, 2)

    def forward(self, u: Tensor, kappa: Tensor, forcing: Tensor, bc_values: Tensor) -> Tensor:
        """Evaluate the residual for a batch.

        Parameters
        ----------
        u : Tensor of shape (batch, n_dofs)
            Nodal values.
        kappa : Tensor of shape (batch, n_cells)
            Cell-wise diffusivity.
        forcing : Tensor of shape (batch,)
            Spatially constant source :math:`f`.
        bc_values : Tensor of shape (batch, n_bc)
            Dirichlet values at ``bc_dofs``.

        Returns
        -------
        Tensor of shape (batch, n_dofs)
        """
        q = self.flux(self.cell_gradients(u), kappa)  # (batch, n_cells, gdim)
        q = (q * self.volumes[:, None]).transpose(1, 2)  # (batch, gdim, n_cells)
        interior = -forcing[:, None] * self.load
        for dofs, g in zip(self._dofs_t, self._grad_t, strict=True):  # r_i += |e| q_e . grad phi_a
            interior = interior.index_add(1, dofs, (q * g).sum(1))
        g = torch.zeros_like(interior).index_copy(1, self.bc_dofs, bc_values.to(u.dtype))
        return torch.where(self.is_bc, u - g, interior)


class GalerkinResidual(nn.Module):
    r"""The residual tested with a reduced basis: :math:`g(u, w) = W^\top r(u, w)`, shape (batch, m).

    With trial functions :math:`u = \Psi c` and test matrix :math:`W \propto \Psi`, the
    observation ":math:`g = 0`" is the Galerkin projection of the FE equations onto the
    reduced space (a reduced-order model's residual); built by
    :meth:`sciprob.physics.ReducedBasis.galerkin`, which makes the reduced Jacobian the
    identity at the reference parameters.

    Parameters
    ----------
    operator : nn.Module
        The nodal residual operator (with ``n_dofs`` and ``bc_dofs``).
    test_matrix : Tensor of shape (n_dofs, m)
        :math:`W`.
    """

    def __init__(self, operator: nn.Module, test_matrix: Tensor) -> None:
        super().__init__()
        if test_matrix.dim() != 2 or test_matrix.shape[0] != operator.n_dofs:
            raise ValueError(
                f"`test_matrix` must have shape ({operator.n_dofs}, m), got {tuple(test_matrix.shape)}"
            )
        self.operator = operator
        self.register_buffer("test_matrix", test_matrix)

    @property
    def n_dofs(self) -> int:
        """Nodal values the residual takes."""
        return self.operator.n_dofs

    @property
    def bc_dofs(self) -> Tensor:
        """Dirichlet dofs of the wrapped operator."""
        return self.operator.bc_dofs

    def forward(self, u: Tensor, *fields: Tensor) -> Tensor:
        """Return the tested residual, shape (batch, m)."""
        return self.operator(u, *fields) @ self.test_matrix.to(u.dtype)

    def jacobian_product(self, u: Tensor, fields, tangents: Tensor) -> Tensor:
        r"""Return :math:`W^\top J(u, w)\, T`, shape (m, k), for tangents of shape (n_dofs, k)."""
        jt = operator_jacobian_product(self.operator, u, fields, tangents)
        return self.test_matrix.to(jt.dtype).T @ jt


def operator_jacobian_product(operator: nn.Module, u: Tensor, fields, tangents: Tensor) -> Tensor:
    r"""Products :math:`\partial r/\partial u\,(u, w)\; T` of a residual operator, one state, many tangents.

    Uses the operator's own ``jacobian_product`` or sparse ``jacobian`` when it has one,
    forward-mode autodiff otherwise.

    Parameters
    ----------
    operator : nn.Module
        Called as ``operator(u, *fields)``.
    u : Tensor of shape (1, n_dofs)
    fields : sequence of Tensor, each of batch size 1
    tangents : Tensor of shape (n_dofs, k)

    Returns
    -------
    Tensor of shape (n_out, k)
    """
    if hasattr(operator, "jacobian_product"):
        return operator.jacobian_product(u, fields, tangents)
    if hasattr(operator, "jacobian"):
        return torch.sparse.mm(operator.jacobian(u, *fields).to(tangents.dtype), tangents)
    k = tangents.shape[1]
    with torch.autograd.forward_ad.dual_level():  # one tangent per batch row
        dual = torch.autograd.forward_ad.make_dual(u.expand(k, -1).contiguous(), tangents.T.contiguous())
        r = operator(dual, *(f.expand(k, *f.shape[1:]) for f in fields))
        return torch.autograd.forward_ad.unpack_dual(r).tangent.T


class DiscreteProblem(nn.Module):
    """A parametric problem in torch: prior, fields and residual, no DOLFINx needed.

    Produced by :class:`sciprob.physics.fem.ParametricPoissonProblem` and
    :class:`sciprob.physics.fem.ParametricProblem` (``problem.discrete``) and
    consumed by :class:`sciprob.physics.PDDLVM`; move it with ``.to(device)``.

    Parameters
    ----------
    operator : nn.Module
        The discrete operator, called as ``operator(u, *coefficients.fields(z))``
        (:class:`ResidualOperator`, or the routes of :mod:`sciprob.physics.fem.forms`).
    coefficients : nn.Module
        Prior and parameter-to-field map (``prior()``, ``fields(z)``, ``dim_z``).
    dof_coordinates : Tensor of shape (n_dofs, gdim)
        Coordinates of the degrees of freedom.
    dof_components : Tensor of shape (n_dofs,) of int64, default=None
        Vector component of each degree of freedom (``None``: a scalar field).
    """

    def __init__(
        self, operator: nn.Module, coefficients, dof_coordinates: Tensor, dof_components: Tensor | None = None
    ) -> None:
        super().__init__()
        self.operator = operator
        self.coefficients = coefficients
        self.register_buffer("dof_coordinates", dof_coordinates)
        if dof_components is None:
            dof_components = torch.zeros(dof_coordinates.shape[0], dtype=torch.long)
        self.register_buffer("dof_components", dof_components.long())

    @property
    def dim_z(self) -> int:
        """Number of parameters."""
        return self.coefficients.dim_z

    @property
    def n_dofs(self) -> int:
        """Number of nodal values."""
        return self.operator.n_dofs

    @property
    def n_components(self) -> int:
        """Number of vector components (1 for a scalar field)."""
        return int(self.dof_components.max().item()) + 1

    def prior(self):
        """Return the prior :math:`p(z)`, event shape ``(dim_z,)``."""
        return self.coefficients.prior()

    def residual(self, u: Tensor, z: Tensor) -> Tensor:
        """Residual ``r(u, z)`` for a batch.

        Parameters
        ----------
        u : Tensor of shape (batch, n_dofs)
        z : Tensor of shape (batch, dim_z)

        Returns
        -------
        Tensor of shape (batch, n_dofs)
        """
        return self.operator(u, *self.coefficients.fields(z))

    def jacobian_product(self, u: Tensor, z: Tensor, tangents: Tensor) -> Tensor:
        r"""Products :math:`\partial r/\partial u\,(u, z)\; T` for one state and many tangents.

        See :func:`operator_jacobian_product`.

        Parameters
        ----------
        u : Tensor of shape (1, n_dofs)
        z : Tensor of shape (1, dim_z)
        tangents : Tensor of shape (n_dofs, m)

        Returns
        -------
        Tensor of shape (n_dofs, m)
        """
        return operator_jacobian_product(self.operator, u, self.coefficients.fields(z), tangents)
