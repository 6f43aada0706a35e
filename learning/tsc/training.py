"""Training as in the review: per-model recipes, the batch rule, model selection, checkpoints.

dl-4-tsc trains every network with Keras ``fit`` (shuffled mini-batches) and
keeps the weights of the epoch with the **lowest training loss**
(``ModelCheckpoint(monitor='loss', save_best_only=True)``); the "validation
data" passed to Keras is the test set and is only monitored. MCDCNN (33 % of
the training set, ``val_loss``) and MCNN (20 %, voted validation error) select
on a held-out part of the training set instead. :data:`RECIPES` lists each
network's optimiser, learning-rate schedule, batch rule and epochs.

Keras conventions kept here: Adam/Adadelta ``epsilon=1e-7``; Keras ``decay``
is inverse-time decay per update, ``lr_t = lr / (1 + decay * t)``;
``ReduceLROnPlateau(monitor='loss', factor=0.5)`` compares the epoch's mean
training loss with an absolute ``min_delta`` of ``1e-4``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from sciprob.runtime import ProgressBar, check_finite, get_logger, load_checkpoint, save_checkpoint
from sciprob.runtime.numerics import check_policy

_log = get_logger("tsc")


@dataclass(frozen=True)
class TrainingRecipe:
    """How one network is trained in the review (dl-4-tsc).

    Attributes
    ----------
    optimizer : {"adam", "adadelta", "sgd"}
        Optimiser (Keras defaults; ``epsilon=1e-7``).
    lr : float
        Initial learning rate.
    epochs : int
        Number of epochs in the review.
    batch_size : int
        Batch size, or its cap under ``batch_rule="tenth"``.
    batch_rule : {"tenth", "fixed"}
        ``"tenth"``: ``int(min(N / 10, batch_size))`` as for MLP, FCN, ResNet
        and InceptionTime; ``"fixed"``: ``min(batch_size, N)``.
    momentum : float, default=0.0
        SGD momentum.
    lr_decay : float, default=0.0
        Keras inverse-time decay per update step.
    plateau_patience : int or None, default=None
        ``ReduceLROnPlateau`` on the training loss (factor 0.5) with this
        patience in epochs; ``None`` for a constant rate.
    min_lr : float, default=1e-4
        Floor of the plateau schedule.
    loss : {"cross_entropy", "mse"}, default="cross_entropy"
        ``"mse"``: mean squared error of ``sigmoid(logits)`` against one-hot
        labels (Time-CNN).
    selection : {"train_loss", "validation"}, default="train_loss"
        Keep the epoch with the lowest training loss, or the lowest score on a
        held-out ``validation_fraction`` of the training set.
    validation_fraction : float, default=0.0
        Held-out share of the training set for ``selection="validation"``.
    """

    optimizer: Literal["adam", "adadelta", "sgd"]
    lr: float
    epochs: int
    batch_size: int
    batch_rule: Literal["tenth", "fixed"] = "fixed"
    momentum: float = 0.0
    lr_decay: float = 0.0
    plateau_patience: int | None = None
    min_lr: float = 1e-4
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    selection: Literal["train_loss", "validation"] = "train_loss"
    validation_fraction: float = 0.0

    def batch_for(self, n_train: int) -> int:
        """Mini-batch size for ``n_train`` training cases."""
        if self.batch_rule == "tenth":
            return max(1, int(min(n_train / 10, self.batch_size)))
        return max(1, min(self.batch_size, n_train))


_PLATEAU = {"plateau_patience": 50, "min_lr": 1e-4}

#: The review's recipes (dl-4-tsc ``classifiers/*.py``; InceptionTime from ``hfawaz/InceptionTime``).
RECIPES: dict[str, TrainingRecipe] = {
    # Adadelta(lr=1.0) of Keras 2 (TF 1.14); TF2's default of 1e-3 would not train in 5000 epochs
    "mlp": TrainingRecipe("adadelta", 1.0, 5000, 16, "tenth", plateau_patience=200, min_lr=0.1),
    "fcn": TrainingRecipe("adam", 1e-3, 2000, 16, "tenth", **_PLATEAU),
    "resnet": TrainingRecipe("adam", 1e-3, 1500, 64, "tenth", **_PLATEAU),
    "encoder": TrainingRecipe("adam", 1e-5, 100, 12),
    "mcnn": TrainingRecipe("adam", 0.1, 200, 256, selection="validation", validation_fraction=0.2),
    "tlenet": TrainingRecipe("adam", 0.01, 1000, 256, lr_decay=0.005),
    "mcdcnn": TrainingRecipe(
        "sgd", 0.01, 120, 16, momentum=0.9, lr_decay=5e-4, selection="validation", validation_fraction=0.33
    ),
    "timecnn": TrainingRecipe("adam", 1e-3, 2000, 16, loss="mse"),
    "inception": TrainingRecipe("adam", 1e-3, 1500, 64, "tenth", **_PLATEAU),
}


@dataclass
class TrainingResult:
    """What :func:`train_network` returns.

    Attributes
    ----------
    model : nn.Module
        The network with the selected epoch's weights loaded.
    best_epoch : int
        Selected epoch (1-based).
    history : dict of str to list of float
        Per epoch: ``"loss"`` (mean training loss), ``"lr"``, ``"train_accuracy"``;
        ``"selection_score"`` under validation selection; ``"monitor_epoch"`` /
        ``"monitor_accuracy"`` when a monitor set was given.
    seconds : float
        Wall time of the epochs run in this call.
    samples_seen : int
        Training cases processed in this call.
    """

    model: nn.Module
    best_epoch: int
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    samples_seen: int = 0


def _make_optimizer(recipe: TrainingRecipe, params) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, eps=1e-7)
    if recipe.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=recipe.lr, rho=0.95, eps=1e-7)
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum)


def loss_fn(recipe: TrainingRecipe, logits: Tensor, target: Tensor) -> Tensor:
    """Training loss of ``logits`` (batch, classes) against integer ``target`` (batch,)."""
    if recipe.loss == "mse":
        onehot = torch.nn.functional.one_hot(target, logits.shape[-1]).to(logits.dtype)
        return torch.nn.functional.mse_loss(torch.sigmoid(logits), onehot)
    return torch.nn.functional.cross_entropy(logits, target)


def scores_to_proba(recipe: TrainingRecipe, logits: Tensor) -> Tensor:
    """Class probabilities (batch, classes): softmax, or normalised sigmoids for ``loss="mse"``."""
    if recipe.loss == "mse":
        s = torch.sigmoid(logits)
        return s / s.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.softmax(logits, dim=-1)


@torch.no_grad()
def predict_logits(
    model: nn.Module, X: Tensor | np.ndarray, device: torch.device | str = "cpu", batch_size: int = 256
) -> Tensor:
    """Evaluation-mode logits of ``X`` (n, channels, length) in batches; returned on the CPU."""
    model.eval()
    X = torch.as_tensor(np.asarray(X, dtype=np.float32)) if not isinstance(X, Tensor) else X
    out = [model(X[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(X), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def train_network(
    model: nn.Module,
    recipe: TrainingRecipe,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
    selection_score: Callable[[nn.Module], float] | None = None,
    monitor: tuple[np.ndarray, np.ndarray] | None = None,
    monitor_every: int = 10,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 50,
    on_nonfinite: Literal["raise", "warn"] = "raise",
    resume: bool = False,
    description: str = "train",
) -> TrainingResult:
    """Train ``model`` with ``recipe`` and keep the selected epoch's weights.

    Parameters
    ----------
    model : nn.Module
        Maps (batch, channels, length) to logits (batch, classes).
    recipe : TrainingRecipe
        Optimiser, schedule, batch rule, loss and selection rule.
    X : ndarray of shape (n, channels, length)
        Training series (already normalised).
    y : ndarray of shape (n,), int
        Class indices in ``[0, classes)``.
    epochs : int, default=None
        Overrides ``recipe.epochs``.
    batch_size : int, default=None
        Overrides the recipe's batch rule.
    device : torch.device or str, default="cpu"
        Where to train.
    selection_score : callable, default=None
        ``model -> float`` (lower is better) evaluated after every epoch when
        ``recipe.selection == "validation"``; otherwise the epoch's mean
        training loss selects.
    monitor : (ndarray, ndarray), default=None
        ``(X, y)`` whose accuracy is recorded every ``monitor_every`` epochs
        for the training curves; it never influences selection.
    monitor_every : int, default=10
        Epochs between monitor evaluations.
    checkpoint_path : path, default=None
        Save the full training state here every ``checkpoint_every`` epochs
        and at the end.
    checkpoint_every : int, default=50
        Epochs between checkpoints.
    resume : bool, default=False
        Continue from ``checkpoint_path`` if it exists.
    on_nonfinite : {"raise", "warn"}, default="raise"
        A NaN or infinite epoch loss raises :class:`~sciprob.runtime.NonFiniteLossError`
        (or warns and goes on).
    description : str, default="train"
        Label of the progress bar.

    Returns
    -------
    TrainingResult

    Raises
    ------
    ValueError
        Empty or mismatched ``X`` / ``y``, or non-positive ``epochs``.
    """
    check_policy(on_nonfinite)
    n_epochs = int(recipe.epochs if epochs is None else epochs)
    if n_epochs < 1:
        raise ValueError(f"`epochs` must be a positive integer, got {epochs!r}")
    if len(X) == 0 or len(X) != len(y):
        raise ValueError(f"`X` and `y` must be non-empty and of equal length, got {len(X)} and {len(y)}")
    if recipe.selection == "validation" and selection_score is None:
        raise ValueError("`selection_score` is required when `recipe.selection` is 'validation'")
    device = torch.device(device)
    model.to(device)
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)
    n = len(Xt)
    bs = int(batch_size or recipe.batch_for(n))
    if bs * Xt.shape[-1] < 2 and n > 1:
        bs = 2  # batch norm needs two values per channel: length-1 series cannot train one by one
    optimizer = _make_optimizer(recipe, model.parameters())
    plateau = None
    if recipe.plateau_patience is not None:
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=0.5,
            patience=recipe.plateau_patience,
            threshold=1e-4,
            threshold_mode="abs",
            min_lr=recipe.min_lr,
        )
    state = {
        "epoch": 0,
        "step": 0,
        "best_score": math.inf,
        "best_epoch": 0,
        "best_state": None,
        "history": {"loss": [], "lr": [], "train_accuracy": []},
    }
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if resume and ckpt is not None and ckpt.exists():
        saved = load_checkpoint(ckpt, map_location=device)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if plateau is not None:
            plateau.load_state_dict(saved["plateau"])
        state = saved["state"]
        _log.info("%s: resumed at epoch %d from %s", description, state["epoch"], ckpt)

    def save() -> None:
        if ckpt is not None:
            save_checkpoint(
                ckpt,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "plateau": plateau.state_dict() if plateau is not None else None,
                    "state": state,
                },
            )

    history = state["history"]
    start, seen = time.perf_counter(), 0
    with ProgressBar(n_epochs - state["epoch"], description) as bar:
        while state["epoch"] < n_epochs:
            model.train()
            batches = list(torch.randperm(n, device=device).split(bs))
            if len(batches) > 1 and len(batches[-1]) == 1:
                # batch norm cannot train on one length-1 case: fold it into the previous batch
                batches[-2:] = [torch.cat(batches[-2:])]
            total, correct = 0.0, 0
            for idx in batches:
                if recipe.lr_decay:
                    for group in optimizer.param_groups:
                        group["lr"] = recipe.lr / (1.0 + recipe.lr_decay * state["step"])
                logits = model(Xt[idx])
                loss = loss_fn(recipe, logits, yt[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                state["step"] += 1
                total += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(-1) == yt[idx]).sum())
                seen += len(idx)
            epoch_loss = total / n
            check_finite(epoch_loss, step=state["epoch"] + 1, policy=on_nonfinite, where=description)
            state["epoch"] += 1
            history["loss"].append(epoch_loss)
            history["lr"].append(optimizer.param_groups[0]["lr"])
            history["train_accuracy"].append(correct / n)
            if plateau is not None:
                plateau.step(epoch_loss)
            score = epoch_loss
            if recipe.selection == "validation":
                score = float(selection_score(model))
                history.setdefault("selection_score", []).append(score)
            if score < state["best_score"] or state["best_state"] is None:
                state["best_score"], state["best_epoch"] = score, state["epoch"]
                state["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if monitor is not None and (state["epoch"] % monitor_every == 0 or state["epoch"] == n_epochs):
                pred = predict_logits(model, monitor[0], device).argmax(-1).numpy()
                history.setdefault("monitor_epoch", []).append(state["epoch"])
                history.setdefault("monitor_accuracy", []).append(float(np.mean(pred == monitor[1])))
            if state["epoch"] % checkpoint_every == 0:
                save()
            bar.update(loss=epoch_loss, best=state["best_epoch"])
    seconds = time.perf_counter() - start
    save()
    model.load_state_dict(state["best_state"])
    model.eval()
    return TrainingResult(model, state["best_epoch"], history, seconds, seen)
