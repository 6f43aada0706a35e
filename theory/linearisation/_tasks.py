"""Data sets and networks of the ``iterative-linearisation`` experiment.

All data sets ship with scikit-learn (no download): ``digits`` (1797 8×8
images, 10 classes) for a small CNN; ``breast_cancer`` (569 × 30, 2 classes)
and ``wine`` (178 × 13, 3 classes) for an MLP.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

DatasetName = Literal["digits", "breast_cancer", "wine"]
DATASETS: tuple[str, ...] = ("digits", "breast_cancer", "wine")
#: (examples, features, classes) of each data set, for size estimates before loading
SHAPES: dict[str, tuple[int, int, int]] = {
    "digits": (1797, 64, 10),
    "breast_cancer": (569, 30, 2),
    "wine": (178, 13, 3),
}


class Split(NamedTuple):
    """A stratified train/test split as tensors.

    Attributes
    ----------
    x_train : Tensor of shape (n_train, ...)
    y_train : Tensor of shape (n_train,), int64 labels
    x_test : Tensor of shape (n_test, ...)
    y_test : Tensor of shape (n_test,)
    n_classes : int
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    n_classes: int


def load_split(name: str, test_fraction: float, seed: int) -> Split:
    """Load ``name``, split it stratified, and scale it.

    Digits are standardised with the training set's pixel mean and deviation
    and shaped ``(N, 1, 8, 8)``; tabular features are standardised per column.

    Parameters
    ----------
    name : {"digits", "breast_cancer", "wine"}
        Data set.
    test_fraction : float
        Share of examples held out for testing.
    seed : int
        Seed of the split, any integer in ``[0, 2**64)`` (it goes through
        :class:`numpy.random.SeedSequence`).

    Returns
    -------
    Split
    """
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    loaders = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
    }
    if name not in loaders:
        raise ValueError(f"`datasets` entries must be one of {DATASETS}, got {name!r}")
    x, y = loaders[name](return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x.astype(np.float32),
        y,
        test_size=test_fraction,
        stratify=y,
        random_state=np.random.RandomState(np.random.SeedSequence(seed).generate_state(1)[0]),
    )
    if name == "digits":  # one mean and deviation over all pixels keeps the image structure
        mean, std = x_tr.mean(), x_tr.std()
        x_tr, x_te = (((a - mean) / std).reshape(-1, 1, 8, 8) for a in (x_tr, x_te))
    else:
        mean, std = x_tr.mean(0), x_tr.std(0) + 1e-8
        x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    return Split(
        torch.as_tensor(x_tr, dtype=torch.float32),
        torch.as_tensor(y_tr, dtype=torch.int64),
        torch.as_tensor(x_te, dtype=torch.float32),
        torch.as_tensor(y_te, dtype=torch.int64),
        int(y.max()) + 1,
    )


def n_parameters(name: str, width: int) -> int:
    """Return the number of parameters of :func:`build_network`'s network for ``name`` and ``width``."""
    _, d, k = SHAPES[name]
    if name == "digits":
        return (9 * width + width) + (9 * width * 2 * width + 2 * width) + (8 * width * k + k)
    return (d * width + width) + (width * width + width) + (width * k + k)


def build_network(name: str, split: Split, width: int, generator: torch.Generator | None = None) -> nn.Module:
    """Build the network for data set ``name``: a CNN for images, an MLP for tables.

    Parameters
    ----------
    name : str
        Data set name; ``"digits"`` gets the CNN.
    split : Split
        Gives the input size and number of classes.
    width : int
        CNN: channels of the first convolution (the second has twice as
        many); MLP: hidden units of each of its two hidden layers.
    generator : torch.Generator, default=None
        Draws the initialisation (PyTorch's default distribution, uniform in
        ``±1/sqrt(fan_in)``); ``None`` uses torch's global generator.

    Returns
    -------
    nn.Module
        Maps ``(N, ...)`` inputs to ``(N, n_classes)`` logits.
    """
    net = _architecture(name, split, width)
    if generator is not None:
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, nn.Conv2d | nn.Linear):
                    bound = 1.0 / float(module.weight[0].numel()) ** 0.5
                    module.weight.uniform_(-bound, bound, generator=generator)
                    module.bias.uniform_(-bound, bound, generator=generator)
    return net


def _architecture(name: str, split: Split, width: int) -> nn.Module:
    k = split.n_classes
    if name == "digits":
        return nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),  # 4x4 -> 2x2
            nn.Flatten(),
            nn.Linear(8 * width, k),
        )
    d = split.x_train.shape[1]
    return nn.Sequential(
        nn.Linear(d, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, k)
    )
