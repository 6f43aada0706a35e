"""A resumable language-model training loop shared by the experiment and the benchmark.

The loop is plain PyTorch: sample a batch, ``loss.backward()``, clip,
``optimizer.step()``, ``scheduler.step()``, then ``relora.step()`` when a
:class:`~sciprob.learning.lowrank.ReLoRA` controller is given, and evaluate
every ``eval_every`` steps.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sciprob.learning.lowrank.data import random_windows
from sciprob.learning.lowrank.relora import ReLoRA
from sciprob.runtime import ProgressBar


class NonFiniteLossWarning(RuntimeWarning):
    """A training loss was NaN or infinite; the step was skipped."""


@torch.no_grad()
def evaluate_loss(model: nn.Module, windows: Tensor, batch_size: int, device: torch.device) -> float:
    """Mean next-token cross-entropy (nats per token) over ``windows``.

    Parameters
    ----------
    model : LlamaLM or any module with ``loss(batch)``
    windows : LongTensor of shape (n_windows, seq_len + 1)
    batch_size : int
    device : torch.device

    Returns
    -------
    float
    """
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, windows.shape[0], batch_size):
        chunk = windows[start : start + batch_size].to(device)
        total += float(model.loss(chunk)) * chunk.shape[0]
    model.train(was_training)
    return total / windows.shape[0]


@dataclass
class TrainLog:
    """What a training run recorded.

    Attributes
    ----------
    steps : list of int
        Optimizer steps at which the validation loss was measured.
    val_loss : list of float
        Validation loss (nats per token) at those steps.
    train_loss : list of float
        Mean training loss since the previous evaluation.
    restarts : list of int
        Steps at which ReLoRA merged and restarted.
    seconds : float
        Training wall time, evaluation excluded.
    step : int
        Steps done.
    """

    steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    restarts: list[int] = field(default_factory=list)
    seconds: float = 0.0
    step: int = 0

    def state_dict(self) -> dict[str, Any]:
        """Plain-python copy for checkpoints."""
        return dict(vars(self))

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TrainLog:
        """Inverse of :meth:`state_dict`."""
        return cls(**state)


def train_lm(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    train_tokens: Tensor,
    val_windows: Tensor,
    *,
    steps: int,
    batch_size: int,
    seq_len: int,
    generator: torch.Generator,
    device: torch.device,
    relora: ReLoRA | None = None,
    grad_clip: float = 1.0,
    eval_every: int = 50,
    step_offset: int = 0,
    log: TrainLog | None = None,
    checkpoint: Callable[[TrainLog], None] | None = None,
    checkpoint_every: int = 0,
    description: str = "training",
) -> TrainLog:
    """Train ``model`` for ``steps`` optimizer steps (continuing ``log`` if given).

    Parameters
    ----------
    model : nn.Module with ``loss(batch)``
    optimizer : torch.optim.Optimizer
    scheduler : LRScheduler
        Stepped once per optimizer step.
    train_tokens : LongTensor of shape (n_train,)
    val_windows : LongTensor of shape (n_windows, seq_len + 1)
    steps : int
        Total steps of this run (a resumed ``log`` continues from ``log.step``).
    batch_size, seq_len : int
        Each step sees ``batch_size * seq_len`` predicted tokens.
    generator : torch.Generator
        Batch sampler's source (its state belongs in checkpoints).
    device : torch.device
    relora : ReLoRA, default=None
        Restart controller, stepped after the scheduler.
    grad_clip : float, default=1.0
        Max global gradient norm (reference: 1.0); 0 disables clipping.
    eval_every : int, default=50
        Steps between validation measurements (and one at the end).
    step_offset : int, default=0
        Added to recorded steps (a warm-started run continues the count).
    log : TrainLog, default=None
        Resume from this log.
    checkpoint : callable, default=None
        Called with the log every ``checkpoint_every`` steps.
    checkpoint_every : int, default=0
    description : str, default="training"
        Progress-bar label.

    Returns
    -------
    TrainLog
    """
    log = log or TrainLog()
    if log.step == 0:
        log.steps.append(step_offset)
        log.val_loss.append(evaluate_loss(model, val_windows, batch_size, device))
        log.train_loss.append(float("nan"))
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    running, count = 0.0, 0
    with ProgressBar(steps - log.step, description) as bar:
        while log.step < steps:
            start = time.perf_counter()
            batch = random_windows(train_tokens, batch_size, seq_len, generator).to(device)
            loss = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            if torch.isfinite(loss):
                loss.backward()
                if grad_clip > 0:
                    nn.utils.clip_grad_norm_(params, grad_clip)
                optimizer.step()
                running, count = running + loss.item(), count + 1
            else:
                warnings.warn(
                    f"non-finite loss at step {log.step}; step skipped", NonFiniteLossWarning, stacklevel=2
                )
            scheduler.step()
            if relora is not None and relora.step():
                log.restarts.append(step_offset + log.step + 1)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            log.seconds += time.perf_counter() - start
            log.step += 1
            if log.step % eval_every == 0 or log.step == steps:
                log.steps.append(step_offset + log.step)
                log.val_loss.append(evaluate_loss(model, val_windows, batch_size, device))
                log.train_loss.append(running / count if count else float("nan"))
                running, count = 0.0, 0
            bar.update(loss=loss.item(), val_ppl=math.exp(min(log.val_loss[-1], 50.0)))
            if checkpoint is not None and checkpoint_every and log.step % checkpoint_every == 0:
                checkpoint(log)
    return log
