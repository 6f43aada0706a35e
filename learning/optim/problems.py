r"""Benchmark problems of the ``update-rules`` experiment, batched over many independent runs.

Every problem maps a parameter tensor ``theta`` of shape ``(..., dim)`` to one
loss per leading index, shape ``(...)``. Because SGD, Adam, Adagrad and
RMSprop act element-wise, optimising ``loss(theta).sum()`` runs all leading
indices as independent trajectories at once: a whole grid of learning rates
(one parameter group each), initialisation scales and starting points costs
one batched step.

Convex problems (Kirtas et al. 2024 use convex toys, no settings given):

* logistic regression on scikit-learn's breast-cancer data (569 x 30,
  standardised, bias column, small L2 penalty so the optimum is unique);
* least squares :math:`\frac{1}{2n}\|A\theta - b\|^2` on a fixed random design.

Non-convex test functions (global minimum value 0):

.. math::

    f_{\text{Rosenbrock}} = \sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, \quad
    f_{\text{Rastrigin}} = 10 n + \sum_i x_i^2 - 10\cos(2\pi x_i),

    f_{\text{Ackley}} = -20 e^{-0.2\sqrt{\overline{x^2}}} - e^{\overline{\cos 2\pi x}} + 20 + e .
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Loss = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Problem:
    """A batched minimisation problem.

    Attributes
    ----------
    name : str
        Metric name, e.g. ``"rosenbrock"``.
    dim : int
        Number of parameters of one run.
    loss : callable
        ``theta`` of shape ``(..., dim)`` to losses of shape ``(...)``.
    target : float
        A run "reaches the target" when its loss is at most this value.
    init : str
        ``"normal"``: start at ``scale * N(0, 1)``; ``"box"``: start uniform in
        ``scale * [-radius, radius]``.
    radius : float
        Half-width of the box of ``"box"`` starts.
    """

    name: str
    dim: int
    loss: Loss
    target: float
    init: str = "normal"
    radius: float = 1.0

    def initial(
        self, scales: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator
    ) -> torch.Tensor:
        """Draw starting points for a grid of initialisation scales.

        Parameters
        ----------
        scales : Tensor of shape (n_scales,)
            Initialisation scales.
        shape : tuple of int
            Leading shape ``(n_lr, n_scales, n_starts)``.
        generator : torch.Generator
            Source of randomness.

        Returns
        -------
        Tensor of shape (*shape, dim), dtype float64
        """
        if self.init == "normal":
            z = torch.randn(*shape, self.dim, generator=generator, dtype=torch.float64)
        else:
            z = self.radius * (2 * torch.rand(*shape, self.dim, generator=generator, dtype=torch.float64) - 1)
        return z * scales.to(torch.float64).view(1, -1, 1, 1)


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    """Rosenbrock's valley; ``x`` of shape (..., n >= 2), minimum 0 at all ones."""
    return (100 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1 - x[..., :-1]) ** 2).sum(-1)


def rastrigin(x: torch.Tensor) -> torch.Tensor:
    """Rastrigin's function; ``x`` of shape (..., n), minimum 0 at the origin, local minima near integers."""
    return 10 * x.shape[-1] + (x**2 - 10 * torch.cos(2 * math.pi * x)).sum(-1)


def ackley(x: torch.Tensor) -> torch.Tensor:
    """Ackley's function; ``x`` of shape (..., n), minimum 0 at the origin."""
    r = torch.sqrt((x**2).mean(-1) + 1e-300)  # the guard only matters exactly at the optimum
    return -20 * torch.exp(-0.2 * r) - torch.exp(torch.cos(2 * math.pi * x).mean(-1)) + 20 + math.e


def _minimum(loss: Loss, dim: int) -> float:
    """Minimum of a smooth convex ``loss`` by L-BFGS in float64 (to set the target)."""
    from scipy.optimize import minimize

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        value = loss(t)
        value.backward()
        return float(value.detach()), t.grad.numpy()

    res = minimize(
        fun, np.zeros(dim), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "maxiter": 10_000}
    )
    return float(res.fun)


def _relative_target(loss: Loss, dim: int, tolerance: float) -> float:
    """Return ``f* + tolerance (f(0) - f*)``: the gap of the origin to the optimum, shrunk."""
    f_star = _minimum(loss, dim)
    f_zero = float(loss(torch.zeros(dim, dtype=torch.float64)))
    return f_star + tolerance * (f_zero - f_star)


def logistic_regression(tolerance: float = 0.01, l2: float = 1e-3) -> Problem:
    """L2-penalised logistic regression on scikit-learn's breast-cancer data (bias included)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    x = torch.tensor(np.hstack([x, np.ones((len(x), 1))]), dtype=torch.float64)
    y = torch.tensor(data.target, dtype=torch.float64)

    def loss(theta: torch.Tensor) -> torch.Tensor:
        logits = theta @ x.T  # (..., n)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y.expand_as(logits), reduction="none"
        ).mean(-1)
        return bce + 0.5 * l2 * (theta[..., :-1] ** 2).sum(-1)

    return Problem("logreg", x.shape[1], loss, _relative_target(loss, x.shape[1], tolerance))


def least_squares(tolerance: float = 0.01, n: int = 200, dim: int = 20, seed: int = 0) -> Problem:
    """Least squares on a fixed Gaussian design with a dense true parameter and noise 0.1."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    truth = torch.randn(dim, generator=gen, dtype=torch.float64)
    b = a @ truth + 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)

    def loss(theta: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((theta @ a.T - b) ** 2).mean(-1)

    return Problem("least_squares", dim, loss, _relative_target(loss, dim, tolerance))


def nonconvex_problems(dim: int = 2) -> list[Problem]:
    """Rosenbrock (target 1e-2, box 2), Rastrigin (target 0.5, box 5.12), Ackley (target 0.5, box 5).

    The Rastrigin and Ackley targets lie below every local minimum but the
    global one, so reaching them means finding the global basin.
    """
    return [
        Problem("rosenbrock", dim, rosenbrock, 1e-2, "box", 2.0),
        Problem("rastrigin", dim, rastrigin, 0.5, "box", 5.12),
        Problem("ackley", dim, ackley, 0.5, "box", 5.0),
    ]


def digits_split(noise: float, seed: int) -> tuple[torch.Tensor, ...]:
    """scikit-learn's 8x8 digits, 75/25 stratified split, ``noise`` of training labels flipped.

    Parameters
    ----------
    noise : float
        Fraction of training labels replaced by a uniformly drawn *different* class.
    seed : int
        Seed of the split and of the noise (two independent streams spawned from
        ``numpy.random.SeedSequence(seed)``).

    Returns
    -------
    x_train : Tensor of shape (1347, 1, 8, 8)
    y_train : Tensor of shape (1347,)
        Possibly noisy labels.
    x_test : Tensor of shape (450, 1, 8, 8)
    y_test : Tensor of shape (450,)
        Clean labels.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target)
    if not 0.0 <= noise < 0.9:
        raise ValueError(f"`noise` must lie in [0, 0.9), got {noise!r}")
    split_seq, noise_seq = np.random.SeedSequence(seed).spawn(2)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)),
        test_size=0.25,
        stratify=data.target,
        random_state=np.random.RandomState(split_seq.generate_state(1)[0]),
    )
    y_train = y[idx_train].clone()
    gen = torch.Generator().manual_seed(int(noise_seq.generate_state(1, np.uint64)[0]))
    flip = torch.rand(len(y_train), generator=gen) < noise
    shift = torch.randint(1, 10, (int(flip.sum()),), generator=gen)
    y_train[flip] = (y_train[flip] + shift) % 10
    return x[idx_train], y_train, x[idx_test], y[idx_test]


class DigitsCNN(torch.nn.Module):
    """Two 3x3 convolution blocks and a linear read-out for 8x8 digits (about 6k parameters).

    Input ``x`` of shape (batch, 1, 8, 8); output logits of shape (batch, 10).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),  # (16, 4, 4)
            torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),  # (32, 2, 2)
        )
        self.head = torch.nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.head(self.features(x).flatten(1))
