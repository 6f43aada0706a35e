"""The review's discriminative networks as ``torch.nn.Module`` s.

Every network maps a batch of series to class scores::

    x : (batch, channels, length)  ->  logits : (batch, n_classes)

The configurations follow the official code of Ismail Fawaz et al. [1]_
(``hfawaz/dl-4-tsc``, ``classifiers/*.py``); Keras ``padding='same'`` is
``padding="same"`` here. The networks with global average pooling (FCN,
ResNet, and :class:`~sciprob.learning.tsc.inception.InceptionNetwork`) expose
``features(x) -> (batch, filters, length)`` and a linear ``head`` so that class
activation maps can be computed (:mod:`sciprob.learning.tsc.cam`).

References
----------
.. [1] H. Ismail Fawaz, G. Forestier, J. Weber, L. Idoumghar, P.-A. Muller,
   "Deep learning for time series classification: a review", Data Mining and
   Knowledge Discovery 33, 917-963 (2019).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SameConv1d(nn.Conv1d):
    """``nn.Conv1d`` with Keras' ``padding='same'``: output length equals input length.

    The input is zero-padded by ``(k - 1) // 2`` steps on the left and the rest on
    the right, as Keras and torch's own ``padding="same"`` do; padding explicitly
    avoids the warning torch gives for the review's even kernels (8, 40, 20, 10).

    Parameters
    ----------
    in_channels, out_channels, kernel_size : int
        As for :class:`torch.nn.Conv1d` (stride 1, dilation 1).
    **kwargs
        Other :class:`torch.nn.Conv1d` arguments except ``padding``, ``stride`` and ``dilation``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=0, **kwargs)
        self._pad = ((kernel_size - 1) // 2, kernel_size - 1 - (kernel_size - 1) // 2)

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` of shape (batch, in_channels, length) to (batch, out_channels, length)."""
        return super().forward(F.pad(x, self._pad))


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [SameConv1d(c_in, c_out, kernel), nn.BatchNorm1d(c_out)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """Multilayer perceptron of Wang et al. (2017): three dense layers of 500 units.

    ``Dropout(0.1) -> [Linear(500), ReLU, Dropout(p)] x 3 with p = 0.2, 0.2, 0.3
    -> Linear(n_classes)``, on the flattened series.

    Parameters
    ----------
    in_channels : int
        Number of variables ``C``.
    length : int
        Series length ``L`` (the input layer has ``C * L`` units).
    n_classes : int
        Number of classes.
    """

    def __init__(self, in_channels: int, length: int, n_classes: int) -> None:
        super().__init__()
        dims, drops = [in_channels * length, 500, 500, 500], [0.2, 0.2, 0.3]
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(0.1)]
        for d_in, d_out, p in zip(dims[:-1], dims[1:], drops, strict=True):
            layers += [nn.Linear(d_in, d_out), nn.ReLU(), nn.Dropout(p)]
        layers.append(nn.Linear(500, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, shape (batch, n_classes), of ``x`` (batch, channels, length)."""
        return self.net(x)


class _GlobalPoolingClassifier(nn.Module):
    """Convolutional ``body``, global average pooling over time, linear ``head`` (the CAM models)."""

    def __init__(self, body: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.body = body
        self.head = head

    def features(self, x: Tensor) -> Tensor:
        """Last feature maps, shape (batch, head.in_features, length)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, shape (batch, n_classes)."""
        return self.head(self.features(x).mean(dim=-1))


class FCN(_GlobalPoolingClassifier):
    """Fully convolutional network of Wang et al. (2017).

    Three blocks ``Conv1d(k) -> BatchNorm -> ReLU`` with 128/256/128 filters and
    kernels 8/5/3, global average pooling over time, then a linear layer.

    Parameters
    ----------
    in_channels : int
        Number of variables.
    n_classes : int
        Number of classes.
    """

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__(
            nn.Sequential(
                _conv_bn_relu(in_channels, 128, 8), _conv_bn_relu(128, 256, 5), _conv_bn_relu(256, 128, 3)
            ),
            nn.Linear(128, n_classes),
        )


class _ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            _conv_bn_relu(c_in, c_out, 8),
            _conv_bn_relu(c_out, c_out, 5),
            _conv_bn_relu(c_out, c_out, 3, relu=False),
        )
        # dl-4-tsc: 1x1 conv + BN when the width changes, BN only otherwise
        if c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1), nn.BatchNorm1d(c_out))
        else:
            self.shortcut = nn.BatchNorm1d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.convs(x) + self.shortcut(x))


class ResNet(_GlobalPoolingClassifier):
    """Residual network of Wang et al. (2017): three residual blocks of 64/128/128 filters.

    Each block has three ``Conv1d -> BatchNorm (-> ReLU)`` layers with kernels
    8/5/3 and a shortcut added before the last ReLU; global average pooling and
    a linear layer follow.

    Parameters
    ----------
    in_channels : int
        Number of variables.
    n_classes : int
        Number of classes.
    """

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__(
            nn.Sequential(_ResidualBlock(in_channels, 64), _ResidualBlock(64, 128), _ResidualBlock(128, 128)),
            nn.Linear(128, n_classes),
        )


class Encoder(nn.Module):
    """Encoder of Serrà et al. (2018): convolutions with instance norm, PReLU and attention.

    Convolutions of 128/256/512 filters (kernels 5/11/21), each followed by
    instance normalisation, PReLU and dropout 0.2 (the first two also by max
    pooling 2). The last 512 channels split into data ``D`` (first 256) and
    attention weights ``A`` (last 256, softmax over channels, as Keras'
    ``Softmax()`` does on the last axis); ``D * A`` passes a time-distributed
    ``Linear(256)`` with sigmoid, instance normalisation, and a linear layer
    on the flattened result.

    Parameters
    ----------
    in_channels : int
        Number of variables.
    length : int
        Series length (the output layer sees ``256 * (length // 4)`` units).
    n_classes : int
        Number of classes.

    Notes
    -----
    Keras-contrib's ``InstanceNormalization()`` (``axis=None``) normalises all
    values of an instance together; :class:`torch.nn.GroupNorm` with one group
    does the same, with a per-channel rather than a scalar affine map.
    """

    def __init__(self, in_channels: int, length: int, n_classes: int) -> None:
        super().__init__()
        if length < 4:
            raise ValueError(f"`Encoder` requires `length` >= 4 (two max-poolings of 2), got {length}")

        def block(c_in: int, c_out: int, kernel: int, pool: bool) -> list[nn.Module]:
            layers = [
                SameConv1d(c_in, c_out, kernel),
                nn.GroupNorm(1, c_out),
                nn.PReLU(c_out),
                nn.Dropout(0.2),
            ]
            return layers + [nn.MaxPool1d(2)] if pool else layers

        self.body = nn.Sequential(
            *block(in_channels, 128, 5, True), *block(128, 256, 11, True), *block(256, 512, 21, False)
        )
        self.attention_dense = nn.Linear(256, 256)
        self.attention_norm = nn.GroupNorm(1, 256)
        self.head = nn.Linear(256 * (length // 4), n_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, shape (batch, n_classes)."""
        h = self.body(x)  # (batch, 512, length // 4)
        data, weights = h[:, :256], torch.softmax(h[:, 256:], dim=1)
        z = torch.sigmoid(self.attention_dense((data * weights).transpose(1, 2))).transpose(1, 2)
        return self.head(self.attention_norm(z).flatten(1))


class TimeCNN(nn.Module):
    """Time-CNN of Zhao et al. (2017): two sigmoid convolutions with average pooling.

    ``Conv1d(6, k7) -> sigmoid -> AvgPool(3) -> Conv1d(12, k7) -> sigmoid ->
    AvgPool(3) -> Linear(n_classes)``. Padding is ``valid`` unless the series
    is shorter than 60 steps (then ``same``), as in dl-4-tsc. The review trains
    it with a mean squared error on ``sigmoid(logits)`` against one-hot labels.

    Parameters
    ----------
    in_channels : int
        Number of variables.
    length : int
        Series length.
    n_classes : int
        Number of classes.
    """

    def __init__(self, in_channels: int, length: int, n_classes: int) -> None:
        super().__init__()
        padding = "same" if length < 60 else "valid"
        self.body = nn.Sequential(
            nn.Conv1d(in_channels, 6, 7, padding=padding),
            nn.Sigmoid(),
            nn.AvgPool1d(3),
            nn.Conv1d(6, 12, 7, padding=padding),
            nn.Sigmoid(),
            nn.AvgPool1d(3),
            nn.Flatten(),
        )
        n_out = self.body(torch.zeros(1, in_channels, length)).shape[1] if length >= 9 else 0
        if n_out == 0:
            raise ValueError(f"`TimeCNN` requires `length` >= 9, got {length}")
        self.head = nn.Linear(n_out, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (pre-sigmoid scores), shape (batch, n_classes)."""
        return self.head(self.body(x))


class MCDCNN(nn.Module):
    """Multi-channel deep CNN of Zheng et al. (2014, 2016): one CNN per variable.

    Per variable ``Conv1d(8, k5) -> ReLU -> MaxPool(2) -> Conv1d(8, k5) -> ReLU
    -> MaxPool(2)``, concatenated, then ``Linear(732) -> ReLU -> Linear``.
    Padding is ``valid``, ``same`` for series shorter than 60 steps.

    Parameters
    ----------
    in_channels : int
        Number of variables (one branch each).
    length : int
        Series length.
    n_classes : int
        Number of classes.
    """

    def __init__(self, in_channels: int, length: int, n_classes: int) -> None:
        super().__init__()
        padding = "same" if length < 60 else "valid"

        def branch() -> nn.Sequential:
            return nn.Sequential(
                nn.Conv1d(1, 8, 5, padding=padding),
                nn.ReLU(),
                nn.MaxPool1d(2),
                nn.Conv1d(8, 8, 5, padding=padding),
                nn.ReLU(),
                nn.MaxPool1d(2),
                nn.Flatten(),
            )

        if length < 4:
            raise ValueError(f"`MCDCNN` requires `length` >= 4, got {length}")
        self.branches = nn.ModuleList(branch() for _ in range(in_channels))
        n_out = in_channels * self.branches[0](torch.zeros(1, 1, length)).shape[1]
        self.head = nn.Sequential(nn.Linear(n_out, 732), nn.ReLU(), nn.Linear(732, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, shape (batch, n_classes)."""
        feats = [b(x[:, i : i + 1]) for i, b in enumerate(self.branches)]
        return self.head(torch.cat(feats, dim=1))


class TLeNet(nn.Module):
    """Time-LeNet of Le Guennec et al. (2016), applied to slices of a series.

    ``Conv1d(5, k5) -> ReLU -> MaxPool(2) -> Conv1d(20, k5) -> ReLU ->
    MaxPool(4) -> Linear(500) -> ReLU -> Linear``, ``same`` padding. Training
    uses window-warped and window-sliced copies of the series
    (:func:`sciprob.learning.tsc.augment.warp_and_slice`); a series' class is
    the vote of its slices.

    Parameters
    ----------
    in_channels : int
        Number of variables.
    length : int
        Slice length (at least 8).
    n_classes : int
        Number of classes.
    """

    def __init__(self, in_channels: int, length: int, n_classes: int) -> None:
        super().__init__()
        if length < 8:
            raise ValueError(f"`TLeNet` requires slices of `length` >= 8, got {length}")
        self.body = nn.Sequential(
            SameConv1d(in_channels, 5, 5),
            nn.ReLU(),
            nn.MaxPool1d(2),
            SameConv1d(5, 20, 5),
            nn.ReLU(),
            nn.MaxPool1d(4),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(20 * ((length // 2) // 4), 500), nn.ReLU(), nn.Linear(500, n_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, shape (batch, n_classes), of slices (batch, channels, length)."""
        return self.head(self.body(x))
