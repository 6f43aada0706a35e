"""Multi-scale CNN (MCNN) of Cui et al. (2016) as configured in dl-4-tsc.

The input slice is transformed into several branches: the identity, down-
sampled copies (every 2nd, 3rd, ... step) and a moving average of width 5.
Each branch has ``Conv1d(256, k) -> sigmoid -> max-pool to pool_factor
steps``; the branches are concatenated along channels and pass a second
``Conv1d(256) -> sigmoid -> max-pool``, ``Linear(256) -> sigmoid`` and the
output layer. The transforms run inside ``forward`` so a slice in gives class
scores out::

    x : (batch, channels, slice_length) -> logits : (batch, n_classes)

dl-4-tsc searches ``pool_factor`` in {2, 3, 5} and ``filter_size`` (kernel
as a share of the series length) in {0.05, 0.1, 0.2}, keeping the pair with
the lowest voted validation error (:data:`MCNN_GRID`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sciprob.learning.tsc.networks import SameConv1d

#: dl-4-tsc's grid of (pool_factor, filter_size).
MCNN_GRID: tuple[tuple[int, float], ...] = tuple((p, f) for p in (2, 3, 5) for f in (0.05, 0.1, 0.2))


def mcnn_slice_ratio(length: int) -> float:
    """Slice ratio of dl-4-tsc: 0.9, raised to 0.98 above 500 steps, 0.7 below 16."""
    if length > 500:
        return 0.98
    return 0.7 if length < 16 else 0.9


class MCNN(nn.Module):
    """Multi-scale convolutional network.

    Parameters
    ----------
    in_channels : int
        Number of variables.
    length : int
        Slice length the network sees.
    n_classes : int
        Number of classes.
    original_length : int
        Length of the unsliced series (the kernel is ``filter_size`` of it).
    pool_factor : int, default=2
        Number of steps each branch is pooled down to.
    filter_size : float, default=0.05
        Kernel size as a share of ``original_length``.

    Notes
    -----
    dl-4-tsc pools with ``pool_size = conv_length // pool_factor``, which
    gives ``pool_factor`` steps only when the length divides; adaptive max
    pooling to exactly ``pool_factor`` steps is used here so that the
    branches always concatenate. Down-sampling rates are ``2, 3, ...`` up to
    ``min(4, 5 / pool_factor)`` branches, none for series of 26 steps or
    fewer (JapaneseVowels in dl-4-tsc).
    """

    def __init__(
        self,
        in_channels: int,
        length: int,
        n_classes: int,
        original_length: int,
        pool_factor: int = 2,
        filter_size: float = 0.05,
    ) -> None:
        super().__init__()
        if pool_factor < 1 or not 0 < filter_size <= 1:
            raise ValueError(
                f"`pool_factor` must be >= 1 and `filter_size` in (0, 1], got {pool_factor}, {filter_size}"
            )
        kernel = max(1, int(original_length * filter_size))
        window = max(1, int(length * 0.2))
        n_down = int(min(4, length / (pool_factor * window))) if original_length > 26 else 0
        self.down_rates = [2 + i for i in range(n_down) if 2 + i <= length]
        self.ma_windows = [5] if length >= 5 else []
        n_branches = 1 + len(self.down_rates) + len(self.ma_windows)
        self.pool_factor = pool_factor
        self.branches = nn.ModuleList(
            nn.Sequential(
                SameConv1d(in_channels, 256, kernel),
                nn.Sigmoid(),
                nn.AdaptiveMaxPool1d(pool_factor),
            )
            for _ in range(n_branches)
        )
        self.full = nn.Sequential(
            SameConv1d(256 * n_branches, 256, min(kernel, pool_factor)),
            nn.Sigmoid(),
            nn.Flatten(),
            nn.Linear(256 * pool_factor, 256),
            nn.Sigmoid(),
            nn.Linear(256, n_classes),
        )

    def transforms(self, x: Tensor) -> list[Tensor]:
        """Identity, down-sampled and moving-average views of ``x`` (batch, channels, length)."""
        views = [x] + [x[..., ::rate] for rate in self.down_rates]
        views += [nn.functional.avg_pool1d(x, w, stride=1) for w in self.ma_windows]
        return views

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, shape (batch, n_classes)."""
        feats = [branch(v) for branch, v in zip(self.branches, self.transforms(x), strict=True)]
        return self.full(torch.cat(feats, dim=1))
