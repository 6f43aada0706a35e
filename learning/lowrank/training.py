"""A resumable language-model training loop (sciprob's loop contract) shared by the experiments.

The loop is plain PyTorch: sample a batch, ``loss.backward()``, clip,
``optimizer.step()``, ``scheduler.step()``, then ``relora.step()`` when a
:class:`~sciprob.learning.lowrank.ReLoRA` controller is given, and evaluate
every ``eval_every`` steps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from sciprob.learning.lowrank.data import random_windows
from sciprob.learning.lowrank.relora import ReLoRA
from sciprob.runtime import ProgressBar, check_finite, load_checkpoint, save_checkpoint


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
    description: str = "training",
    checkpoint_path: Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    on_nonfinite: Literal["raise", "warn"] = "raise",
) -> TrainLog:
    """Train ``model`` for ``steps`` optimizer steps (continuing ``log`` or a checkpoint if given).

    Parameters
    ----------
    model : nn.Module with ``loss(batch)``
    optimizer : torch.optim.Optimizer
    scheduler : LRScheduler
        Stepped once per optimizer step.
    train_tokens : LongTensor of shape (n_train,)
    val_windows : LongTensor of shape (n_windows, seq_len + 1)
    steps : int
        Total steps of this run (a resumed run continues from ``log.step``).
    batch_size, seq_len : int
        Each step sees ``batch_size * seq_len`` predicted tokens.
    generator : torch.Generator
        Batch sampler's source (its state is part of the checkpoint).
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
        Continue this log.
    description : str, default="training"
        Progress-bar label and the name in error messages.
    checkpoint_path : Path, default=None
        Where to save model, optimizer, scheduler, ReLoRA counters, the batch
        generator, the log and the global RNG states (through
        :func:`sciprob.runtime.save_checkpoint`), every ``checkpoint_every``
        steps and at the end.
    checkpoint_every : int, default=0
        0: only at the end.
    resume : bool, default=False
        Continue from ``checkpoint_path`` if it exists (RNG states restored),
        so that the resumed run equals the uninterrupted one.
    on_nonfinite : {"raise", "warn"}, default="raise"
        A NaN or infinite loss raises :class:`sciprob.runtime.NonFiniteLossError`
        naming ``description`` and the step, or warns and skips the step.

    Returns
    -------
    TrainLog
    """
    if checkpoint_every < 0:
        raise ValueError(f"`checkpoint_every` must be >= 0, got {checkpoint_every}")
    log = log or TrainLog()

    def state() -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "relora": relora.state_dict() if relora is not None else None,
            "generator": generator.get_state(),
            "log": log.state_dict(),
        }

    if resume and checkpoint_path is not None:
        saved = load_checkpoint(checkpoint_path)
        if saved is not None:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            if relora is not None:
                relora.load_state_dict(saved["relora"])
            generator.set_state(saved["generator"])
            log = TrainLog.from_state_dict(saved["log"])
    if log.step == 0:
        log.steps.append(step_offset)
        log.val_loss.append(evaluate_loss(model, val_windows, batch_size, device))
        log.train_loss.append(float("nan"))
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    running, count = 0.0, 0
    with ProgressBar(max(0, steps - log.step), description) as bar:
        while log.step < steps:
            start = time.perf_counter()
            batch = random_windows(train_tokens, batch_size, seq_len, generator).to(device)
            loss = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            value = check_finite(
                loss.detach(), step=step_offset + log.step, policy=on_nonfinite, where=description
            )
            if math.isfinite(value):
                loss.backward()
                if grad_clip > 0:
                    nn.utils.clip_grad_norm_(params, grad_clip)
                optimizer.step()
                running, count = running + value, count + 1
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
            bar.update(loss=value, val_ppl=math.exp(min(log.val_loss[-1], 50.0)))
            if checkpoint_path is not None and (
                (checkpoint_every and log.step % checkpoint_every == 0) or log.step == steps
            ):
                save_checkpoint(checkpoint_path, state())
    return log
