"""Distributions that Pyro lacks and sciprob's models need.

:class:`IndependentConcat` joins independent blocks with event shape ``(k_i,)``
into one vector-valued distribution with event shape ``(sum k_i,)``, e.g. the
prior ``N(0, I_5) x U(1, 2) x U(0.5, 1)`` of the nonlinear Poisson problem.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from torch import Tensor
from torch.distributions import constraints


class IndependentConcat(dist.TorchDistribution):
    """Concatenation of independent vector-valued distributions.

    Parameters
    ----------
    parts : sequence of TorchDistribution
        Each with ``event_shape == (k_i,)`` and the same ``batch_shape``.

    Examples
    --------
    >>> import pyro.distributions as dist, torch
    >>> p = IndependentConcat([dist.Normal(torch.zeros(2), 1.0).to_event(1),
    ...                        dist.Uniform(torch.ones(1), 2.0).to_event(1)])
    >>> p.sample((4,)).shape
    torch.Size([4, 3])
    """

    arg_constraints: dict = {}
    support = constraints.real_vector

    def __init__(self, parts, validate_args=None) -> None:
        parts = list(parts)
        if not parts or any(len(p.event_shape) != 1 for p in parts):
            raise ValueError("`parts` must be a non-empty list of distributions with event_shape (k,)")
        batch_shape = parts[0].batch_shape
        if any(p.batch_shape != batch_shape for p in parts):
            raise ValueError("`parts` must share one batch_shape")
        self.parts = parts
        self.sizes = [p.event_shape[0] for p in parts]
        super().__init__(batch_shape, torch.Size([sum(self.sizes)]), validate_args=validate_args)

    @property
    def has_rsample(self) -> bool:  # noqa: D102
        return all(p.has_rsample for p in self.parts)

    @property
    def mean(self) -> Tensor:  # noqa: D102
        return torch.cat([p.mean for p in self.parts], dim=-1)

    @property
    def variance(self) -> Tensor:  # noqa: D102
        return torch.cat([p.variance for p in self.parts], dim=-1)

    def sample(self, sample_shape=torch.Size()) -> Tensor:  # noqa: D102
        return torch.cat([p.sample(sample_shape) for p in self.parts], dim=-1)

    def rsample(self, sample_shape=torch.Size()) -> Tensor:  # noqa: D102
        return torch.cat([p.rsample(sample_shape) for p in self.parts], dim=-1)

    def log_prob(self, value: Tensor) -> Tensor:  # noqa: D102
        blocks = value.split(self.sizes, dim=-1)
        return sum(p.log_prob(v) for p, v in zip(self.parts, blocks, strict=True))

    def expand(self, batch_shape, _instance=None):  # noqa: D102
        return IndependentConcat([p.expand(batch_shape) for p in self.parts])
