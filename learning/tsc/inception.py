"""InceptionTime (Ismail Fawaz et al., 2020): one Inception network and the 5-network ensemble.

Configuration of ``hfawaz/InceptionTime`` (``classifiers/inception.py``): six
Inception modules with a residual connection every three, 32 filters per
branch, a bottleneck of 32 channels when the input has more than one channel,
kernels 40/20/10 plus a ``MaxPool(3) -> Conv1d(1)`` branch, batch norm and
ReLU after the concatenation, global average pooling, a linear layer.

Shapes::

    x : (batch, channels, length) -> features : (batch, 128, length) -> logits : (batch, n_classes)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sciprob.learning.tsc.networks import SameConv1d


class InceptionModule(nn.Module):
    """One Inception module: bottleneck, three wide convolutions and a pooling branch.

    Parameters
    ----------
    c_in : int
        Input channels.
    filters : int, default=32
        Filters per branch (the output has ``4 * filters`` channels).
    kernels : tuple of int, default=(40, 20, 10)
        Kernel sizes of the three convolution branches.
    bottleneck : int, default=32
        Bottleneck width, used when ``c_in > 1``.
    """

    def __init__(
        self, c_in: int, filters: int = 32, kernels: tuple[int, ...] = (40, 20, 10), bottleneck: int = 32
    ) -> None:
        super().__init__()
        use_bottleneck = c_in > 1
        self.bottleneck = nn.Conv1d(c_in, bottleneck, 1, bias=False) if use_bottleneck else nn.Identity()
        width = bottleneck if use_bottleneck else c_in
        self.convs = nn.ModuleList(SameConv1d(width, filters, k, bias=False) for k in kernels)
        self.pool_branch = nn.Sequential(
            nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(c_in, filters, 1, bias=False)
        )
        self.norm = nn.BatchNorm1d(filters * (len(kernels) + 1))

    def forward(self, x: Tensor) -> Tensor:
        """Output of shape (batch, 4 * filters, length)."""
        z = self.bottleneck(x)
        out = [conv(z) for conv in self.convs] + [self.pool_branch(x)]
        return torch.relu(self.norm(torch.cat(out, dim=1)))


class InceptionNetwork(nn.Module):
    """One InceptionTime network.

    Parameters
    ----------
    in_channels : int
        Number of variables.
    n_classes : int
        Number of classes.
    depth : int, default=6
        Number of Inception modules.
    filters : int, default=32
        Filters per branch.
    residual_every : int, default=3
        A shortcut ``Conv1d(1) -> BatchNorm`` is added every this many modules.
    """

    def __init__(
        self, in_channels: int, n_classes: int, depth: int = 6, filters: int = 32, residual_every: int = 3
    ) -> None:
        super().__init__()
        width = 4 * filters
        self.modules_ = nn.ModuleList(
            InceptionModule(in_channels if d == 0 else width, filters) for d in range(depth)
        )
        self.residual_every = residual_every
        n_short = depth // residual_every
        self.shortcuts = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(in_channels if s == 0 else width, width, 1, bias=False), nn.BatchNorm1d(width)
            )
            for s in range(n_short)
        )
        self.head = nn.Linear(width, n_classes)

    def features(self, x: Tensor) -> Tensor:
        """Last module's output, shape (batch, 4 * filters, length)."""
        residual = x
        for d, module in enumerate(self.modules_):
            x = module(x)
            if (d + 1) % self.residual_every == 0:
                x = torch.relu(x + self.shortcuts[(d + 1) // self.residual_every - 1](residual))
                residual = x
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, shape (batch, n_classes)."""
        return self.head(self.features(x).mean(dim=-1))


class InceptionTimeEnsemble(nn.Module):
    r"""Average of the class probabilities of several independently trained Inception networks.

    .. math:: p(y \mid x) = \frac{1}{M} \sum_{m=1}^{M} \mathrm{softmax}(f_m(x))

    ``forward`` returns ``log p`` so that ``softmax(forward(x))`` is the
    ensemble's probability; members are trained one by one (see
    :func:`sciprob.learning.tsc.classifiers.fit_classifier`), never jointly.

    Parameters
    ----------
    members : list of InceptionNetwork
        The trained networks (five in the paper).
    """

    def __init__(self, members: list[InceptionNetwork]) -> None:
        super().__init__()
        if not members:
            raise ValueError("`members` must hold at least one InceptionNetwork, got an empty list")
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor) -> Tensor:
        """Log of the averaged probabilities, shape (batch, n_classes)."""
        probs = torch.stack([torch.softmax(m(x), dim=-1) for m in self.members]).mean(dim=0)
        return torch.log(probs.clamp_min(1e-12))
