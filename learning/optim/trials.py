"""Training runs of the ``update-rules`` experiment: batched grids on toy problems, a CNN on digits.

Each run builds the base optimizer (SGD with momentum, Adam, Adagrad or
RMSprop) and wraps it in :class:`~sciprob.learning.optim.UpdateRule` with the
rule under test, so the three rules share everything but the update form.
The additive rate ``lr`` and the outer rate ``lr_out`` are set to the same
value (capped at 1 for ``lr_out``); ``lr_in`` is fixed.

Both loops follow the project's loop contract: ``checkpoint_path`` /
``checkpoint_every`` / ``resume`` (the checkpoint also holds the finished
result, so resuming a finished trial returns at once) and ``on_nonfinite``.
Neither touches the global random-number generators: randomness comes from
the ``generator`` argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from sciprob.learning.optim.problems import DigitsCNN, Problem
from sciprob.learning.optim.rules import UpdateRule
from sciprob.runtime import check_finite, load_checkpoint, save_checkpoint
from sciprob.runtime.numerics import check_policy


def _check_contract(checkpoint_path, checkpoint_every: int, resume: bool, on_nonfinite: str) -> None:
    """Validate the loop-contract arguments before any work."""
    check_policy(on_nonfinite)
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 0:
        raise ValueError(f"`checkpoint_every` must be an integer >= 0, got {checkpoint_every!r}")
    if (checkpoint_every or resume) and checkpoint_path is None:
        raise ValueError(
            "`checkpoint_path` is None but `checkpoint_every`/`resume` ask for checkpoints; give a path"
        )


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
    checkpoint_path: Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    on_nonfinite: Literal["raise", "warn"] = "raise",
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
    checkpoint_path : Path or None, default=None
        Where to write checkpoints (parameters, optimizer state, loss history).
    checkpoint_every : int, default=0
        Steps between checkpoints; ``0``: only at the end (if a path is given).
    resume : bool, default=False
        Continue from ``checkpoint_path`` if it exists.
    on_nonfinite : {"raise", "warn"}, default="raise"
        A single diverged trajectory is an outcome this grid measures (it is
        frozen and counts as not reaching the target); the policy applies when
        *every* trajectory of the grid has become non-finite.

    Returns
    -------
    GridResult

    Raises
    ------
    NonFiniteLossError
        Every trajectory diverged and ``on_nonfinite="raise"``.
    """
    _check_contract(checkpoint_path, checkpoint_every, resume, on_nonfinite)
    if theta0.dim() != 4 or theta0.shape[0] != len(lrs):
        raise ValueError(
            f"`theta0` must have shape (n_lr={len(lrs)}, n_scales, n_starts, dim), got {tuple(theta0.shape)}"
        )
    params = [torch.nn.Parameter(theta0[i].clone()) for i in range(len(lrs))]
    groups = [{"params": [p], "lr": lr, "lr_out": min(lr, 1.0)} for p, lr in zip(params, lrs, strict=True)]
    opt = make_optimizer(optimizer, groups, rule, lr_in=lr_in, g=g, momentum=momentum)
    history = np.empty((steps + 1, *theta0.shape[:-1]))
    start = 0
    saved = load_checkpoint(checkpoint_path, restore_rng=False) if resume else None
    if saved is not None:
        if saved.get("kind") != "run_grid" or saved["history"].shape != history.shape:
            raise ValueError(f"checkpoint {checkpoint_path} is not of this grid run; delete it")
        with torch.no_grad():
            for p, value in zip(params, saved["params"], strict=True):
                p.copy_(value)
        opt.load_state_dict(saved["optimizer"])
        start = saved["step"]
        history[:start] = saved["history"][:start]

    def save(step: int) -> None:
        state = {"optimizer": opt.state_dict(), "params": [p.detach().clone() for p in params]}
        save_checkpoint(
            checkpoint_path, {"kind": "run_grid", "step": step, "history": history, **state}, rng=False
        )

    all_diverged_reported = False
    for step in range(start, steps + 1):
        opt.zero_grad()
        losses = torch.stack([problem.loss(p) for p in params])  # (n_lr, n_scales, n_starts)
        history[step] = losses.detach().numpy()
        if not all_diverged_reported and not torch.isfinite(losses).any():
            all_diverged_reported = True
            check_finite(
                float("nan"), step=step, policy=on_nonfinite, where=f"{problem.name}/{optimizer}/{rule} grid"
            )
        if step == steps:
            break
        # diverged runs (inf/NaN) are frozen so that they cannot poison the batch's arithmetic
        torch.nan_to_num(losses, nan=0.0, posinf=0.0, neginf=0.0).sum().backward()
        for p in params:
            p.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        opt.step()
        if checkpoint_every and (step + 1) % checkpoint_every == 0:
            save(step + 1)
    if checkpoint_path is not None:
        save(steps + 1)
    history = np.where(np.isnan(history), np.inf, history)  # NaN = diverged; keep +inf as inf
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
    generator: torch.Generator,
    checkpoint_path: Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    on_nonfinite: Literal["raise", "warn"] = "raise",
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
    generator : torch.Generator
        CPU generator of the initialisation and the batch order; pass generators
        in the same state to give every rule the same start and batches.
    checkpoint_path : Path or None, default=None
        Where to write checkpoints (model, optimizer, generator state, losses).
    checkpoint_every : int, default=0
        **Epochs** between checkpoints; ``0``: only at the end (if a path is given).
    resume : bool, default=False
        Continue from ``checkpoint_path`` if it exists.
    on_nonfinite : {"raise", "warn"}, default="raise"
        What a non-finite mini-batch loss does.

    Returns
    -------
    DigitsResult

    Raises
    ------
    NonFiniteLossError
        A mini-batch loss became NaN or infinite and ``on_nonfinite="raise"``.
    """
    _check_contract(checkpoint_path, checkpoint_every, resume, on_nonfinite)
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"`epochs` and `batch_size` must be >= 1, got {epochs} and {batch_size}")
    x_train, y_train, x_test, y_test = data
    model = DigitsCNN()
    with torch.no_grad():  # re-initialise from `generator` (the default init uses the global RNG)
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                bound = 1.0 / float(module.weight[0].numel()) ** 0.5
                module.weight.uniform_(-bound, bound, generator=generator)
                module.bias.uniform_(-bound, bound, generator=generator)
    opt = make_optimizer(
        optimizer,
        [{"params": list(model.parameters()), "lr": lr, "lr_out": lr_out}],
        rule,
        lr_in=lr_in,
        g=g,
        momentum=momentum,
    )
    gen = generator
    n = len(y_train)
    steps_per_epoch = -(-n // batch_size)

    def train_loss() -> float:
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(model(x_train), y_train))

    saved = load_checkpoint(checkpoint_path, restore_rng=False) if resume else None
    if saved is not None:
        if saved.get("kind") != "train_digits":
            raise ValueError(f"checkpoint {checkpoint_path} is not of a digits run; delete it")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        gen.set_state(saved["generator"])
        losses = list(saved["losses"])
    else:
        losses = [train_loss()]

    def save() -> None:
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state()}
        save_checkpoint(checkpoint_path, {"kind": "train_digits", "losses": losses, **state}, rng=False)

    for epoch in range(len(losses) - 1, epochs):
        order = torch.randperm(n, generator=gen)
        for i, start in enumerate(range(0, n, batch_size)):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            check_finite(
                loss.detach(),
                step=epoch * steps_per_epoch + i,
                policy=on_nonfinite,
                where=f"digits CNN ({optimizer}/{rule})",
            )
            loss.backward()
            opt.step()
        losses.append(train_loss())
        if checkpoint_path is not None and checkpoint_every and (epoch + 1) % checkpoint_every == 0:
            save()
    if checkpoint_path is not None:
        save()
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
    return DigitsResult(np.where(np.isnan(losses), np.inf, np.array(losses)), steps_per_epoch, accuracy)
