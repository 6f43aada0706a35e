r"""Amortised Gaussian networks: :math:`x \mapsto N(\mu(x), \Sigma(x))` with bounded variances.

The mean and the covariance factors are outputs of one multi-layer perceptron.
Two covariance families are offered:

* ``"diagonal"``: :math:`\Sigma = \mathrm{diag}(\sigma^2)`,
  :math:`\sigma^2 = \sigma^2_{\min} + (\sigma^2_{\max} - \sigma^2_{\min})\,\mathrm{sigmoid}(h)`,
  the bounded log-variance head of the PDDLVM code [1]_ (bounds [1e-6, 1] there);
* ``"lowrank"``: :math:`\Sigma = \mathrm{diag}(\sigma^2) + W W^\top` with
  :math:`W = \sqrt{\sigma^2_{\max}/r}\,\tanh(H)` of rank :math:`r`, so every
  variance stays below :math:`2\sigma^2_{\max}`.

References
----------
.. [1] Vadeboncoeur et al., arXiv:2208.04856; code ``pddlvm/NeuralNet.py``.
"""

from __future__ import annotations

import math
from typing import Literal

import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from pyro.nn.module import to_pyro_module_
from torch import Tensor, nn

_ACTIVATIONS = {"silu": nn.SiLU, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


def mlp(in_dim: int, out_dim: int, hidden: tuple[int, ...], activation: str = "silu") -> nn.Sequential:
    """Build a fully connected network ``in_dim -> hidden... -> out_dim`` (He-normal weights).

    Parameters
    ----------
    in_dim, out_dim : int
    hidden : tuple of int
        Widths of the hidden layers.
    activation : {"silu", "tanh", "relu", "gelu"}, default="silu"
        ``silu`` is the swish of the PDDLVM code.

    Returns
    -------
    torch.nn.Sequential
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    widths = (in_dim, *hidden)
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        lin = nn.Linear(a, b)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers += [lin, _ACTIVATIONS[activation]()]
    last = nn.Linear(widths[-1], out_dim)
    nn.init.xavier_normal_(last.weight, gain=0.1)
    nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


class AmortisedGaussian(PyroModule):
    """A conditional Gaussian ``x -> N(mean(x), cov(x))`` parameterised by an MLP.

    Parameters
    ----------
    in_dim : int
        Size of the conditioning input ``x``.
    out_dim : int
        Size of the Gaussian variable.
    hidden : tuple of int, default=(50, 50, 50)
        Hidden widths.
    covariance : {"diagonal", "lowrank"}, default="diagonal"
    rank : int, default=2
        Rank of ``W`` for ``covariance="lowrank"``.
    var_bounds : tuple of float, default=(1e-6, 1.0)
        ``(min, max)`` of the diagonal variances, ``0 < min < max``.
    init_var : float, default=None
        Initial diagonal variance (the variance head's bias is set to give it);
        default is the midpoint of ``var_bounds``.
    activation : str, default="silu"
    input_shift, input_scale : Tensor of shape (in_dim,), default=None
        Inputs are standardised as ``(x - shift) / scale`` (defaults 0 and 1).
    output_shift, output_scale : Tensor of shape (out_dim,), default=None
        The Gaussian is returned in units ``shift + scale * y`` of the network's
        standardised output ``y`` (defaults 0 and 1); variance bounds apply to ``y``.

    Examples
    --------
    >>> import torch
    >>> net = AmortisedGaussian(3, 5, hidden=(8,))
    >>> d = net(torch.randn(4, 3))
    >>> d.batch_shape, d.event_shape
    (torch.Size([4]), torch.Size([5]))
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: tuple[int, ...] = (50, 50, 50),
        covariance: Literal["diagonal", "lowrank"] = "diagonal",
        rank: int = 2,
        var_bounds: tuple[float, float] = (1e-6, 1.0),
        init_var: float | None = None,
        activation: str = "silu",
        input_shift: Tensor | None = None,
        input_scale: Tensor | None = None,
        output_shift: Tensor | None = None,
        output_scale: Tensor | None = None,
    ) -> None:
        super().__init__()
        if covariance not in ("diagonal", "lowrank"):
            raise ValueError(f"`covariance` must be 'diagonal' or 'lowrank', got {covariance!r}")
        lo, hi = var_bounds
        if not 0 < lo < hi:
            raise ValueError(f"`var_bounds` must satisfy 0 < min < max, got {var_bounds}")
        if covariance == "lowrank" and rank < 1:
            raise ValueError(f"`rank` must be >= 1 for a low-rank covariance, got {rank}")
        self.in_dim, self.out_dim, self.covariance = in_dim, out_dim, covariance
        self.rank = rank if covariance == "lowrank" else 0
        self.var_bounds = (float(lo), float(hi))
        self.net = mlp(in_dim, out_dim * (2 + self.rank), hidden, activation)
        if init_var is not None:
            if not lo < init_var < hi:
                raise ValueError(f"`init_var` must lie inside `var_bounds` {var_bounds}, got {init_var}")
            with torch.no_grad():
                frac = (init_var - lo) / (hi - lo)
                self.net[-1].bias[out_dim : 2 * out_dim] = math.log(frac / (1 - frac))
        to_pyro_module_(self.net)
        self.register_buffer("input_shift", torch.zeros(in_dim) if input_shift is None else input_shift)
        self.register_buffer("input_scale", torch.ones(in_dim) if input_scale is None else input_scale)
        self.register_buffer("output_shift", torch.zeros(out_dim) if output_shift is None else output_shift)
        self.register_buffer("output_scale", torch.ones(out_dim) if output_scale is None else output_scale)

    def mean(self, x: Tensor) -> Tensor:
        """Return the Gaussian's mean alone, ``(batch, in_dim) -> (batch, out_dim)``.

        Equal to ``self(x).mean`` but skips the covariance outputs of the last layer.
        """
        h = self.net[:-1]((x - self.input_shift) / self.input_scale)
        last = self.net[-1]
        loc = nn.functional.linear(h, last.weight[: self.out_dim], last.bias[: self.out_dim])
        return self.output_shift + self.output_scale * loc

    def forward(self, x: Tensor) -> dist.TorchDistribution:
        """Return the Gaussian for inputs ``x``.

        Parameters
        ----------
        x : Tensor of shape (batch, in_dim)

        Returns
        -------
        Normal (event shape (out_dim,)) or LowRankMultivariateNormal
            Batch shape (batch,).
        """
        h = self.net((x - self.input_shift) / self.input_scale)
        loc, raw_var = h[..., : self.out_dim], h[..., self.out_dim : 2 * self.out_dim]
        lo, hi = self.var_bounds
        var = lo + (hi - lo) * torch.sigmoid(raw_var)
        loc = self.output_shift + self.output_scale * loc
        if self.covariance == "diagonal":
            return dist.Normal(loc, var.sqrt() * self.output_scale).to_event(1)
        factor = h[..., 2 * self.out_dim :].reshape(*h.shape[:-1], self.out_dim, self.rank)
        factor = math.sqrt(hi / self.rank) * torch.tanh(factor) * self.output_scale[:, None]
        return dist.LowRankMultivariateNormal(loc, factor, var * self.output_scale**2)
