r"""Two-layer ReLU network with a shared first layer and per-task heads, and its training.

The network (mean-field scaling) is

.. math::

    f_t(x) = \frac1m \sum_{k=1}^m a_{tk}\,\mathrm{relu}(w_k^\top x), \qquad
    W = (w_1, \dots, w_m)^\top \in \mathbb R^{m\times d},\; A = (a_{tk}) \in \mathbb R^{T\times m},

with per-task losses :math:`L_t = \frac1n\sum_i \ell(y_{ti} f_t(x_{ti}))` (logistic
:math:`\ell(u) = \log(1 + e^{-u})` or hinge :math:`\max(0, 1 - u)`) and the
multi-task loss :math:`L = \frac1T \sum_t L_t`.

**Alternating multi-task step** (reconstruction of the paper's algorithm [1]_; its
algorithm box was not available, see ``docs/multitask.md``): the heads first, then
the representation,

.. math::

    a_t &\leftarrow a_t^{(0)} - \eta_a\, m\, \nabla_{a_t} L_t(W, a_t^{(0)})
        \quad (\text{``head_steps`` times, from } a_t^{(0)} = 0 \text{ if ``reset_heads``}),\
    W &\leftarrow W - \eta\,\bigl(m\, \nabla_W L(W, A) + \lambda W\bigr)
        \quad (A \text{ fixed}).

The heads see the first ``n_1`` samples of every task and the representation step
the remaining ``n_2`` (sample splitting, as the paper's :math:`n_1, n_2`). From
:math:`a_t^{(0)} = 0` one logistic head step gives
:math:`a_t = \frac{\eta_a}{2 n_1}\sum_i y_{ti}\,\mathrm{relu}(W x_{ti})`, so the
representation step descends

.. math::

    \frac1T\sum_t \frac1{n_2}\sum_j \ell\Bigl(\frac{\eta_a}{2 n_1 m}\sum_i
        y_{ti} y_{tj}\, \mathrm{relu}(W x_{ti})^\top \mathrm{relu}(W x_{tj})\Bigr),

the *pseudo-contrastive* loss of [1]_: it rewards features that align points which
share a label across tasks. The factor ``m`` in both steps is the mean-field step
scaling that keeps the dynamics width-independent.

**Joint training** (baseline): heads and W move together by one gradient step of
the same sizes on :math:`L`, heads not reset.

References
----------
.. [1] L. Collins, H. Hassani, M. Soltanolkotabi, A. Mokhtari, S. Shakkottai,
   "Provable Multi-Task Representation Learning by Two-Layer ReLU Neural Networks",
   ICML 2024, arXiv:2307.06887.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sciprob.runtime import ProgressBar, check_finite, load_checkpoint, save_checkpoint
from sciprob.runtime.numerics import check_policy

LOSSES = ("logistic", "hinge")
ALGORITHMS = ("alternating", "joint")


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be at least 1, got {value}")
    return value


def margin_loss(margin: Tensor, loss: str = "logistic") -> Tensor:
    """Per-sample loss of the margins :math:`u = y f(x)`.

    Parameters
    ----------
    margin : Tensor of shape (...)
    loss : {"logistic", "hinge"}, default="logistic"

    Returns
    -------
    Tensor of shape (...)
    """
    if loss == "logistic":
        return F.softplus(-margin)
    if loss == "hinge":
        return torch.relu(1.0 - margin)
    raise ValueError(f"`loss` must be one of {LOSSES}, got {loss!r}")


class MultiTaskReLU(nn.Module):
    r"""Two-layer ReLU network: shared first layer W, one linear head per task.

    Parameters
    ----------
    d : int
        Input dimension.
    m : int
        Hidden width (neurons).
    T : int
        Number of tasks (heads).
    generator : torch.Generator
        Draws :math:`W_{kj} \sim \mathcal N(0, 1/d)` (rows of norm about 1).
    dtype : torch.dtype, default=torch.float32

    Attributes
    ----------
    W : Parameter of shape (m, d)
        Shared representation.
    heads : Parameter of shape (T, m)
        Heads :math:`a_t`, initialised to zero.
    """

    def __init__(
        self,
        d: int,
        m: int,
        T: int,
        *,
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,  # noqa: N803
    ) -> None:
        super().__init__()
        for name, value in (("d", d), ("m", m), ("T", T)):
            _check_positive_int(name, value)
        w = torch.randn(m, d, generator=generator, dtype=torch.float64) / math.sqrt(d)
        self.W = nn.Parameter(w.to(dtype))
        self.heads = nn.Parameter(torch.zeros(T, m, dtype=dtype))

    @property
    def m(self) -> int:
        """Hidden width."""
        return self.W.shape[0]

    def features(self, x: Tensor) -> Tensor:
        r"""Hidden features :math:`\mathrm{relu}(W x)`: (..., d) -> (..., m)."""
        return torch.relu(x @ self.W.T)

    def forward(self, x: Tensor, heads: Tensor | None = None) -> Tensor:
        """Compute every task's outputs on its own inputs.

        Parameters
        ----------
        x : Tensor of shape (T, n, d)
        heads : Tensor of shape (T, m), default=None
            Heads to use instead of :attr:`heads`.

        Returns
        -------
        Tensor of shape (T, n)
        """
        a = self.heads if heads is None else heads
        return torch.einsum("tnm,tm->tn", self.features(x), a) / self.m

    def task_losses(
        self, x: Tensor, y: Tensor, loss: str = "logistic", heads: Tensor | None = None
    ) -> Tensor:
        """Per-task mean losses :math:`L_t`, shape (T,), from ``x`` (T, n, d) and ``y`` (T, n)."""
        return margin_loss(y * self(x, heads), loss).mean(dim=-1)


def head_step(
    model: MultiTaskReLU,
    x: Tensor,
    y: Tensor,
    *,
    lr: float,
    loss: str = "logistic",
    steps: int = 1,
    reset: bool = True,
) -> Tensor:
    r"""Update every head by gradient descent on its own task loss, W fixed.

    Parameters
    ----------
    model : MultiTaskReLU
    x : Tensor of shape (T, n1, d)
    y : Tensor of shape (T, n1)
    lr : float
        Head step size :math:`\eta_a` (the step is ``lr * m * grad``).
    loss : {"logistic", "hinge"}, default="logistic"
    steps : int, default=1
        Gradient steps on the heads.
    reset : bool, default=True
        Start from zero heads (the pseudo-contrastive form) instead of the current ones.

    Returns
    -------
    Tensor of shape (T,)
        The task losses before the last head step.
    """
    with torch.no_grad():
        feats = model.features(x)  # (T, n1, m): W is fixed during the head update
        a = torch.zeros_like(model.heads) if reset else model.heads.detach().clone()
    for _ in range(steps):
        a.requires_grad_(True)
        per_task = margin_loss(y * torch.einsum("tnm,tm->tn", feats, a) / model.m, loss).mean(dim=-1)
        (grad,) = torch.autograd.grad(per_task.sum(), a)  # row t of grad is d L_t / d a_t
        a = (a - lr * model.m * grad).detach()
    with torch.no_grad():
        model.heads.copy_(a)
    return per_task.detach()


def representation_step(
    model: MultiTaskReLU,
    x: Tensor,
    y: Tensor,
    *,
    lr: float,
    loss: str = "logistic",
    weight_decay: float = 0.0,
) -> Tensor:
    r"""One gradient step on W with the heads fixed: ``W -= lr * (m * grad_W L + weight_decay * W)``.

    Parameters
    ----------
    model : MultiTaskReLU
    x : Tensor of shape (T, n2, d)
    y : Tensor of shape (T, n2)
    lr : float
        Step size :math:`\eta`.
    loss : {"logistic", "hinge"}, default="logistic"
    weight_decay : float, default=0.0
        :math:`\lambda`.

    Returns
    -------
    Tensor
        The multi-task loss :math:`L` before the step (0-d).
    """
    value = model.task_losses(x, y, loss, heads=model.heads.detach()).mean()
    (grad,) = torch.autograd.grad(value, model.W)
    with torch.no_grad():
        model.W.sub_(lr * (model.m * grad + weight_decay * model.W))
    return value.detach()


def alternating_step(
    model: MultiTaskReLU,
    x_head: Tensor,
    y_head: Tensor,
    x_rep: Tensor,
    y_rep: Tensor,
    *,
    lr: float,
    head_lr: float,
    loss: str = "logistic",
    head_steps: int = 1,
    reset_heads: bool = True,
    weight_decay: float = 0.0,
) -> Tensor:
    """One round of the alternating algorithm: :func:`head_step`, then :func:`representation_step`.

    Returns
    -------
    Tensor
        The multi-task loss on ``(x_rep, y_rep)`` before the representation step (0-d).
    """
    head_step(model, x_head, y_head, lr=head_lr, loss=loss, steps=head_steps, reset=reset_heads)
    return representation_step(model, x_rep, y_rep, lr=lr, loss=loss, weight_decay=weight_decay)


def joint_step(
    model: MultiTaskReLU,
    x: Tensor,
    y: Tensor,
    *,
    lr: float,
    head_lr: float,
    loss: str = "logistic",
    weight_decay: float = 0.0,
) -> Tensor:
    """One simultaneous gradient step on W and the heads (the plain joint-training baseline)."""
    per_task = model.task_losses(x, y, loss)
    grad_w, grad_a = torch.autograd.grad(per_task.mean(), (model.W, model.heads))
    with torch.no_grad():
        model.W.sub_(lr * (model.m * grad_w + weight_decay * model.W))
        model.heads.sub_(head_lr * model.m * per_task.numel() * grad_a)  # T * dL/da_t = dL_t/da_t
    return per_task.mean().detach()


@dataclass
class TrainHistory:
    """What :func:`train_multitask` recorded.

    Attributes
    ----------
    steps : list of int
        Steps at which ``loss`` (and ``subspace_error``) were logged.
    loss : list of float
        Multi-task loss on the representation samples.
    subspace_error : list of float
        :func:`sciprob.theory.multitask.subspace_error` of W against ``M`` (empty without ``M``).
    """

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    subspace_error: list[float] = field(default_factory=list)


def train_multitask(
    model: MultiTaskReLU,
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    lr: float,
    head_lr: float,
    algorithm: Literal["alternating", "joint"] = "alternating",
    loss: Literal["logistic", "hinge"] = "logistic",
    head_steps: int = 1,
    reset_heads: bool = True,
    weight_decay: float = 0.0,
    head_fraction: float = 0.5,
    M: Tensor | None = None,  # noqa: N803
    log_every: int = 10,
    progress: bool = False,
    checkpoint_path: Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    on_nonfinite: Literal["raise", "warn"] = "raise",
) -> TrainHistory:
    r"""Train ``model`` in place on T tasks by the alternating algorithm or joint training.

    Parameters
    ----------
    model : MultiTaskReLU
    x : Tensor of shape (T, n, d)
    y : Tensor of shape (T, n)
        Labels in {-1, +1}.
    steps : int
        Rounds (alternating) or gradient steps (joint).
    lr, head_lr : float
        Step sizes :math:`\eta` of W and :math:`\eta_a` of the heads (mean-field units).
    algorithm : {"alternating", "joint"}, default="alternating"
    loss : {"logistic", "hinge"}, default="logistic"
    head_steps : int, default=1
        Head gradient steps per round (alternating).
    reset_heads : bool, default=True
        Restart the heads from zero every round (alternating).
    weight_decay : float, default=0.0
        :math:`\lambda` on W.
    head_fraction : float, default=0.5
        Fraction :math:`n_1/n` of every task's samples used by the head step
        (alternating); the rest feed the representation step. Joint training uses all.
    M : Tensor of shape (d, r), default=None
        Ground truth, to log the subspace error every ``log_every`` steps.
    log_every : int, default=10
    progress : bool, default=False
        Show a :class:`sciprob.runtime.ProgressBar`.
    checkpoint_path : Path, default=None
    checkpoint_every : int, default=0
        Steps between checkpoints (0: none).
    resume : bool, default=False
        Continue from ``checkpoint_path`` if it exists.
    on_nonfinite : {"raise", "warn"}, default="raise"

    Returns
    -------
    TrainHistory

    Raises
    ------
    ValueError
        Bad shapes, an unknown ``algorithm`` or ``loss``, ``steps < 1``, non-positive
        step sizes or ``head_fraction`` outside (0, 1) with fewer than 2 samples per part.
    sciprob.runtime.NonFiniteLossError
        The loss became NaN or infinite (``on_nonfinite="raise"``).
    """
    from sciprob.theory.multitask.metrics import subspace_error

    if algorithm not in ALGORITHMS:
        raise ValueError(f"`algorithm` must be one of {ALGORITHMS}, got {algorithm!r}")
    if loss not in LOSSES:
        raise ValueError(f"`loss` must be one of {LOSSES}, got {loss!r}")
    check_policy(on_nonfinite)
    _check_positive_int("steps", steps)
    _check_positive_int("head_steps", head_steps)
    _check_positive_int("log_every", log_every)
    if not (lr > 0 and head_lr > 0 and weight_decay >= 0):
        raise ValueError(
            f"`lr` and `head_lr` must be > 0 and `weight_decay` >= 0, got {lr}, {head_lr}, {weight_decay}"
        )
    T, m = model.heads.shape  # noqa: N806
    if x.ndim != 3 or tuple(x.shape[::2]) != (T, model.W.shape[1]) or tuple(y.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f"`x` must have shape (T={T}, n, d={model.W.shape[1]}) and `y` (T, n); "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    n = x.shape[1]
    n1 = round(head_fraction * n)
    if algorithm == "alternating" and not (0.0 < head_fraction < 1.0 and 1 <= n1 < n):
        raise ValueError(
            f"`head_fraction` must split n={n} samples into two non-empty parts, got {head_fraction}"
        )
    x, y = x.to(model.W.dtype), y.to(model.W.dtype)
    history = TrainHistory()
    start = 0
    if resume and checkpoint_path is not None:
        state = load_checkpoint(checkpoint_path)
        if state is not None:
            model.load_state_dict(state["model"])
            history = TrainHistory(**state["history"])
            start = state["step"]
    with ProgressBar(steps - start, f"multi-task {algorithm}", enabled=None if progress else False) as bar:
        for step in range(start, steps):
            if algorithm == "alternating":
                value = alternating_step(
                    model, x[:, :n1], y[:, :n1], x[:, n1:], y[:, n1:], lr=lr, head_lr=head_lr, loss=loss,
                    head_steps=head_steps, reset_heads=reset_heads, weight_decay=weight_decay,
                )  # fmt: skip
            else:
                value = joint_step(model, x, y, lr=lr, head_lr=head_lr, loss=loss, weight_decay=weight_decay)
            value = check_finite(value, step=step, policy=on_nonfinite, where=f"multi-task {algorithm}")
            if (step + 1) % log_every == 0 or step + 1 == steps:
                history.steps.append(step + 1)
                history.loss.append(value)
                if M is not None:
                    history.subspace_error.append(subspace_error(model.W.detach(), M))
            bar.update(loss=value)
            if checkpoint_path is not None and checkpoint_every > 0 and (step + 1) % checkpoint_every == 0:
                save_checkpoint(
                    checkpoint_path,
                    {"model": model.state_dict(), "history": vars(history), "step": step + 1},
                )
    return history
