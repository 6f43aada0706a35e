"""Training runs of the ``update-rules`` experiment: batched grids on toy problems, a CNN on digits.

Each run builds the base optimizer (SGD with momentum, Adam, Adagrad or
RMSprop) and wraps it in :class:`~sciprob.learning.optim.UpdateRule` with the
rule under test, so the three rules share everything but the update form.
The additive rate ``lr`` and the outer rate ``lr_out`` are set to the same
value (capped at 1 for ``lr_out``); ``lr_in`` is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sciprob.learning.optim.problems import DigitsCNN, Problem
from sciprob.learning.optim.rules import UpdateRule

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adagrad", "rmsprop")


def make_optimizer(
    name: str, groups: list[dict], rule: str, *, lr_in: float, g: float, momentum: float = 0.9
) -> UpdateRule:
    """Build base optimizer ``name`` on ``groups`` (each with ``params``, ``lr``, ``lr_out``) under ``rule``.

    Parameters
    ----------
    name : {"sgd", "adam", "adagrad", "rmsprop"}
        Base optimizer; SGD uses ``momentum``, the others torch's defaults.
    groups : list of dict
        Parameter groups.
    rule : {"additive", "multiplicative", "hybrid"}
        Update form.
    lr_in : float
        Inner rate of the multiplicative term.
    g : float
        Hybrid mixing weight.
    momentum : float, default=0.9
        SGD momentum.

    Returns
    -------
    UpdateRule
    """
    if name == "sgd":
        base = torch.optim.SGD(groups, lr=0.1, momentum=momentum)
    elif name == "adam":
        base = torch.optim.Adam(groups)
    elif name == "adagrad":
        base = torch.optim.Adagrad(groups)
    elif name == "rmsprop":
        base = torch.optim.RMSprop(groups)
    else:
        raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}, got {name!r}")
    return UpdateRule(base, rule, lr_in=lr_in, g=g)


def sustained_hit(history: np.ndarray, target: float) -> np.ndarray:
    """Index from which each trajectory stays at or below ``target``; ``len(history)`` if it ends above.

    Parameters
    ----------
    history : ndarray of shape (steps + 1, ...)
        Losses at steps 0..steps (``inf`` for diverged runs).
    target : float
        Target loss.

    Returns
    -------
    ndarray of int, shape (...)
        A run that touches the target and leaves it again is not counted as
        having reached it at the touch.

    Examples
    --------
    >>> sustained_hit(np.array([[3.0, 3.0], [0.5, 2.0], [2.0, 0.5], [0.5, 2.0]]), 1.0).tolist()
    [3, 4]
    """
    above = history > target
    n = len(history)
    last_above = n - 1 - np.argmax(above[::-1], axis=0)
    return np.where(above[-1], n, np.where(above.any(0), last_above + 1, 0))


@dataclass(frozen=True)
class GridResult:
    """Outcome of one batched grid run.

    Attributes
    ----------
    steps_to_target : ndarray of shape (n_lr, n_scales, n_starts)
        Step from which on the loss stays at most the target (see :func:`sustained_hit`);
        ``budget`` where it does not end there.
    final_loss : ndarray of shape (n_lr, n_scales, n_starts)
        Loss after the last step (``inf`` where the run diverged).
    curves : ndarray of shape (n_lr, steps + 1)
        Median loss over starts at the default scale, per learning rate.
    budget : int
        Number of steps run plus one: the "not reached" marker.
    """

    steps_to_target: np.ndarray
    final_loss: np.ndarray
    curves: np.ndarray
    budget: int


def run_grid(
    problem: Problem,
    optimizer: str,
    rule: str,
    theta0: torch.Tensor,
    lrs: tuple[float, ...],
    default_scale_index: int,
    steps: int,
    *,
    lr_in: float,
    g: float,
    momentum: float,
) -> GridResult:
    """Run every (learning rate, scale, start) of ``theta0`` as one batched optimisation.

    Parameters
    ----------
    problem : Problem
        The batched loss.
    optimizer, rule : str
        See :func:`make_optimizer`.
    theta0 : Tensor of shape (n_lr, n_scales, n_starts, dim)
        Starting points (identical across the learning-rate axis).
    lrs : tuple of float, length n_lr
        One parameter group per learning rate; ``lr_out = min(lr, 1)``.
    default_scale_index : int
        Scale index whose median curves are kept.
    steps : int
        Optimiser steps.
    lr_in, g, momentum : float
        See :func:`make_optimizer`.

    Returns
    -------
    GridResult
    """
    params = [torch.nn.Parameter(theta0[i].clone()) for i in range(len(lrs))]
    groups = [{"params": [p], "lr": lr, "lr_out": min(lr, 1.0)} for p, lr in zip(params, lrs, strict=True)]
    opt = make_optimizer(optimizer, groups, rule, lr_in=lr_in, g=g, momentum=momentum)
    history = np.empty((steps + 1, *theta0.shape[:-1]))
    for step in range(steps + 1):
        opt.zero_grad()
        losses = torch.stack([problem.loss(p) for p in params])  # (n_lr, n_scales, n_starts)
        history[step] = losses.detach().numpy()
        if step == steps:
            break
        # diverged runs (inf/NaN) are frozen so that they cannot poison the batch's arithmetic
        torch.nan_to_num(losses, nan=0.0, posinf=0.0, neginf=0.0).sum().backward()
        for p in params:
            p.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        opt.step()
    history = np.nan_to_num(history, nan=np.inf)
    first = sustained_hit(history, problem.target)
    with np.errstate(over="ignore", invalid="ignore"):  # diverged runs are inf by design
        curves = np.median(history[:, :, default_scale_index], axis=-1).T
    return GridResult(first, history[-1], curves, steps + 1)


@dataclass(frozen=True)
class DigitsResult:
    """Outcome of one CNN training run on digits.

    Attributes
    ----------
    train_loss : ndarray of shape (epochs + 1,)
        Mean cross-entropy on the (possibly noisy) training set after each epoch (0 = at start).
    steps_per_epoch : int
        Optimiser steps per epoch.
    test_accuracy : float
        Accuracy on the clean test labels after the last epoch.
    """

    train_loss: np.ndarray
    steps_per_epoch: int
    test_accuracy: float


def train_digits(
    optimizer: str,
    rule: str,
    lr: float,
    lr_out: float,
    data: tuple[torch.Tensor, ...],
    *,
    epochs: int,
    batch_size: int,
    lr_in: float,
    g: float,
    momentum: float,
    seed: int,
) -> DigitsResult:
    """Train :class:`DigitsCNN` with ``optimizer`` under ``rule``; same init and batches for every rule.

    Parameters
    ----------
    optimizer, rule : str
        See :func:`make_optimizer`.
    lr, lr_out : float
        Additive and outer rates.
    data : tuple of Tensor
        ``(x_train, y_train, x_test, y_test)`` from :func:`~sciprob.learning.optim.problems.digits_split`.
    epochs, batch_size : int
        Training length and mini-batch size.
    lr_in, g, momentum : float
        See :func:`make_optimizer`.
    seed : int
        Seed of the initialisation and the batch order.

    Returns
    -------
    DigitsResult
    """
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    model = DigitsCNN()
    opt = make_optimizer(
        optimizer,
        [{"params": list(model.parameters()), "lr": lr, "lr_out": lr_out}],
        rule,
        lr_in=lr_in,
        g=g,
        momentum=momentum,
    )
    gen = torch.Generator().manual_seed(seed)
    n = len(y_train)
    steps_per_epoch = -(-n // batch_size)

    def train_loss() -> float:
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(model(x_train), y_train))

    losses = [train_loss()]
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
        losses.append(train_loss())
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
    return DigitsResult(np.nan_to_num(np.array(losses), nan=np.inf), steps_per_epoch, accuracy)
