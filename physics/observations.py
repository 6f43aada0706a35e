r"""Observation operators and the Gaussian data likelihood of inverse problems.

Data are noisy linear functionals of the solution at sensors,

.. math::

    y = H u + \eta, \quad \eta \sim N(0, \varepsilon_y^2 I), \quad H \in \mathbb{R}^{n_{obs} \times n_{dofs}},

where a row of :math:`H` is a point value (the P1 interpolation weights of a
location) or an average over a window. :class:`ObservationOperator` holds
:math:`H` and its sensors; :func:`gaussian_log_likelihood` is
:math:`\log N(y;\, Hu,\, \varepsilon_y^2 I)`, the data term of the paper's
``compute_nelbo_post`` objective [1]_. For a neural field (the PINN residual)
the operator is its sensor locations, evaluated by the network directly.

References
----------
.. [1] Vadeboncoeur et al., arXiv:2208.04856; official code ``pddlvm/VEModel.py``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _as_points(name: str, locations, dim: int) -> Tensor:
    loc = torch.as_tensor(locations, dtype=torch.float64)
    if loc.dim() == 1 and dim == 1:
        loc = loc[:, None]
    if loc.dim() != 2 or loc.shape[1] != dim or loc.shape[0] == 0:
        raise ValueError(f"`{name}` must have shape (n_obs, {dim}) with n_obs >= 1, got {tuple(loc.shape)}")
    if not torch.isfinite(loc).all():
        raise ValueError(f"`{name}` must be finite, got {loc.tolist()}")
    return loc


def check_noise(noise: float, name: str = "noise") -> float:
    """Return ``noise`` as a float if it is a positive finite number, else raise naming ``name``."""
    if (
        isinstance(noise, bool)
        or not isinstance(noise, (int, float))
        or not math.isfinite(noise)
        or noise <= 0
    ):
        raise ValueError(f"`{name}` (observation noise standard deviation) must be positive, got {noise!r}")
    return float(noise)


def check_in_box(name: str, points: Tensor, low: Tensor, high: Tensor) -> None:
    """Raise ``ValueError`` naming ``name`` if a point lies outside the box ``[low, high]``."""
    outside = ((points < low - 1e-12) | (points > high + 1e-12)).any(-1)
    if outside.any():
        bad = points[outside.nonzero()[0, 0]].tolist()
        raise ValueError(
            f"`{name}` must lie inside the domain [{low.tolist()}, {high.tolist()}], got {bad}; "
            "move the sensor inside"
        )


class ObservationOperator(nn.Module):
    r"""A linear observation operator :math:`y = H u` on nodal values.

    Parameters
    ----------
    matrix : Tensor of shape (n_obs, n_dofs)
        :math:`H`.
    locations : Tensor of shape (n_obs, gdim)
        Where each sensor sits (the window centre for averages); for reports.

    Attributes
    ----------
    n_obs, n_dofs : int

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(0, 1, 5)[:, None]
    >>> H = ObservationOperator.point_values(x, [0.1, 0.5])
    >>> H(torch.stack([x[:, 0], 2 * x[:, 0]])).tolist()
    [[0.1, 0.5], [0.2, 1.0]]
    """

    def __init__(self, matrix: Tensor, locations: Tensor) -> None:
        super().__init__()
        if matrix.dim() != 2 or locations.dim() != 2 or locations.shape[0] != matrix.shape[0]:
            raise ValueError(
                f"`matrix` (n_obs, n_dofs) and `locations` (n_obs, gdim) disagree: "
                f"{tuple(matrix.shape)} and {tuple(locations.shape)}"
            )
        self.register_buffer("matrix", matrix)
        self.register_buffer("locations", locations)
        self.n_obs, self.n_dofs = matrix.shape

    @classmethod
    def point_values(cls, coordinates: Tensor, locations) -> ObservationOperator:
        """Point values of a 1D P1 function at ``locations`` (linear interpolation between nodes).

        Parameters
        ----------
        coordinates : Tensor of shape (n_dofs, 1)
            Node coordinates (any order).
        locations : sequence of float or Tensor of shape (n_obs,) or (n_obs, 1)

        Returns
        -------
        ObservationOperator

        Raises
        ------
        ValueError
            A location outside ``[min(coordinates), max(coordinates)]``.
        """
        x = _as_points("coordinates", coordinates, 1)[:, 0]
        loc = _as_points("locations", locations, 1)
        check_in_box("locations", loc, x.min()[None], x.max()[None])
        order = torch.argsort(x)
        xs = x[order]
        right = torch.searchsorted(xs, loc[:, 0].contiguous()).clamp(1, xs.numel() - 1)
        left = right - 1
        w = (loc[:, 0] - xs[left]) / (xs[right] - xs[left])
        matrix = torch.zeros(loc.shape[0], x.numel(), dtype=torch.float64)
        rows = torch.arange(loc.shape[0])
        matrix[rows, order[left]] += 1 - w
        matrix[rows, order[right]] += w
        return cls(matrix, loc)

    @classmethod
    def averages(cls, coordinates: Tensor, windows, n_quad: int = 257) -> ObservationOperator:
        """Averages of a 1D P1 function over windows ``[a, b]``.

        The average is integrated with the trapezoidal rule on ``n_quad`` points
        of each window, exact up to :math:`O(h^2 / n_{quad}^2)` kinks.

        Parameters
        ----------
        coordinates : Tensor of shape (n_dofs, 1)
        windows : sequence of (a, b) with a < b
        n_quad : int, default=257

        Returns
        -------
        ObservationOperator
        """
        w = _as_points("windows", windows, 2)
        if not (w[:, 1] > w[:, 0]).all():
            raise ValueError(f"`windows` need a < b in every (a, b), got {w.tolist()}")
        x = _as_points("coordinates", coordinates, 1)
        check_in_box("windows", w.reshape(-1, 1), x.min()[None], x.max()[None])
        t = torch.linspace(0, 1, n_quad, dtype=torch.float64)
        weights = torch.full((n_quad,), 1.0 / (n_quad - 1), dtype=torch.float64)
        weights[[0, -1]] *= 0.5
        rows = []
        for a, b in w.tolist():
            pts = cls.point_values(x, a + (b - a) * t)
            rows.append(weights @ pts.matrix)
        return cls(torch.stack(rows), w.mean(-1, keepdim=True))

    def forward(self, u: Tensor) -> Tensor:
        """Apply :math:`H`.

        Parameters
        ----------
        u : Tensor of shape (batch, n_dofs)

        Returns
        -------
        Tensor of shape (batch, n_obs)
        """
        if u.shape[-1] != self.n_dofs:
            raise ValueError(
                f"`u` must have {self.n_dofs} entries per row (n_dofs), got shape {tuple(u.shape)}"
            )
        return u @ self.matrix.T.to(u)

    def check_data(self, y: Tensor) -> Tensor:
        """Check that data ``y`` fit this operator: shape (batch, n_obs) or (n_obs,), finite.

        Returns
        -------
        Tensor of shape (batch, n_obs)
        """
        if not isinstance(y, Tensor):
            raise TypeError(f"`y` must be a torch.Tensor, got {type(y).__name__}")
        y2 = y[None] if y.dim() == 1 else y
        if y2.dim() != 2 or y2.shape[-1] != self.n_obs:
            raise ValueError(
                f"`y` must have shape (batch, {self.n_obs}) to match the observation operator's "
                f"{self.n_obs} sensors, got {tuple(y.shape)}"
            )
        if not torch.isfinite(y2).all():
            raise ValueError("`y` must be finite; drop or impute missing observations first")
        return y2


def gaussian_log_likelihood(y: Tensor, predicted: Tensor, noise: float) -> Tensor:
    r"""Log-density :math:`\log N(y;\, \hat y,\, \varepsilon_y^2 I)` of data given predicted observations.

    .. math::

        -\frac{1}{2\varepsilon_y^2}\|y - \hat y\|^2 - n_{obs}\log\varepsilon_y - \frac{n_{obs}}{2}\log 2\pi

    Parameters
    ----------
    y, predicted : Tensor of shape (batch, n_obs)
    noise : float
        :math:`\varepsilon_y > 0`.

    Returns
    -------
    Tensor of shape (batch,)
    """
    noise = check_noise(noise)
    if y.shape != predicted.shape:
        raise ValueError(f"`y` {tuple(y.shape)} and `predicted` {tuple(predicted.shape)} must have one shape")
    n = y.shape[-1]
    return (
        -0.5 * ((y - predicted) ** 2).sum(-1) / noise**2
        - n * math.log(noise)
        - 0.5 * n * math.log(2 * math.pi)
    )
