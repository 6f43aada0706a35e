r"""Iterative linearised training: gradient steps on ``f_lin``, features moved every ``K`` steps.

Reconstruction of Goldwaser & Ge [1]_ (their algorithm box was not available;
see ``docs/linearisation.md``): keep a linearisation point ``θ̃``, take
optimiser steps on the loss of the Taylor model

.. math::

    f_{\mathrm{lin}}(x; θ) = f(x; \tilde θ) + J(x; \tilde θ)(θ - \tilde θ)

and every ``K`` steps set ``θ̃ ← θ`` (a *feature update*: the tangent
features ``J(x; θ̃)`` and so the empirical NTK change only then). ``K = 1`` is
ordinary training, ``K = None`` never moves the point (training in the
finite-width NTK regime around the initialisation).

References
----------
.. [1] Goldwaser & Ge, "Learning Deep Neural Networks by Iterative
   Linearisation", NeurIPS 2022 OPT workshop, arXiv:2211.12345.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sciprob.theory.linearisation.linearise import LinearisedModel, linearise
from sciprob.theory.linearisation.ntk import (
    Implementation,
    empirical_ntk,
    kernel_distance,
    kernel_target_alignment,
)

__all__ = ["IterativeLinearisedTrainer", "KernelTracker"]


@dataclass
class KernelTracker:
    """Records how the model's empirical NTK moves on a fixed probe set.

    The kernel is the one the linearised model uses, ``J(X; θ̃)J(X; θ̃)ᵀ``
    (traced over outputs), so it changes only at feature updates.

    Parameters
    ----------
    probe_x : Tensor of shape (M, ...)
        Probe inputs (a fixed subset of the training set).
    probe_y : Tensor of shape (M,) or (M, C)
        Their targets, for the kernel–target alignment.
    implementation : {"jacobian-contraction", "ntk-vector-products"}, default="jacobian-contraction"
        eNTK implementation.
    chunk_size : int, default=None
        Passed to :func:`empirical_ntk`.

    Attributes
    ----------
    steps, distance, alignment : list
        Step of each record, ``1 − cos(K₀, K_t)`` and the centred alignment.
    """

    probe_x: Tensor
    probe_y: Tensor
    implementation: Implementation = "jacobian-contraction"
    chunk_size: int | None = None
    steps: list[int] = field(default_factory=list)
    distance: list[float] = field(default_factory=list)
    alignment: list[float] = field(default_factory=list)
    _k0: Tensor | None = field(default=None, repr=False)

    def record(self, step: int, model: LinearisedModel) -> None:
        """Compute the kernel at ``model``'s linearisation point and append the statistics."""
        k = empirical_ntk(
            model.model,
            self.probe_x,
            implementation=self.implementation,
            chunk_size=self.chunk_size,
            params=model.linearisation_point(),
        )
        if self._k0 is None:
            self._k0 = k
        self.steps.append(int(step))
        self.distance.append(kernel_distance(self._k0, k))
        self.alignment.append(kernel_target_alignment(k, self.probe_y))


class IterativeLinearisedTrainer:
    """Train the linearised model, moving the linearisation point every ``period`` steps.

    Parameters
    ----------
    model : nn.Module
        The network; its parameters are ``θ`` and are updated in place.
    period : int or None
        ``K``, the number of optimiser steps between feature updates
        (``θ̃ ← θ`` before step ``K, 2K, ...``). ``1`` is ordinary training;
        ``None`` never moves ``θ̃`` (no feature learning).
    optimizer : torch.optim.Optimizer
        Any optimiser over (a subset of) ``model.parameters()``.
    loss_fn : callable, default=torch.nn.functional.cross_entropy
        ``loss_fn(output, target) -> scalar``.
    damping : float, default=0.0
        ``λ ≥ 0``: adds ``(λ/2)‖θ − θ̃‖²`` to the loss (the damping of the
        Gauss–Newton view, see :func:`damped_gauss_newton_step`).
    tracker : KernelTracker, default=None
        Records the eNTK at initialisation and every ``track_every`` steps.
    track_every : int, default=100
        Steps between tracker records.

    Attributes
    ----------
    linearised : LinearisedModel
        The trained Taylor model; ``linearised(x)`` is the predictor.
    steps : int
        Optimiser steps taken.
    feature_updates : int
        Times the linearisation point was moved after initialisation
        (``⌊(steps − 1)/K⌋`` for ``steps ≥ 1``; 0 for ``K = None``).

    Raises
    ------
    TypeError
        ``optimizer`` is not a ``torch.optim.Optimizer`` or ``period`` is not an int.
    ValueError
        ``period < 1``, ``damping < 0``, ``track_every < 1``, or the optimiser
        holds tensors that are not parameters of ``model``.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> trainer = IterativeLinearisedTrainer(net, period=10, optimizer=opt)
    >>> x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    >>> for _ in range(25):
    ...     loss = trainer.step(x, y)
    >>> trainer.feature_updates
    2
    """

    def __init__(
        self,
        model: nn.Module,
        period: int | None,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        *,
        damping: float = 0.0,
        tracker: KernelTracker | None = None,
        track_every: int = 100,
    ) -> None:
        if period is not None and (isinstance(period, bool) or not isinstance(period, int)):
            raise TypeError(f"`period` must be a positive int or None, got {period!r}")
        if period is not None and period < 1:
            raise ValueError(f"`period` must be >= 1 (1 = ordinary training) or None, got {period}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"`optimizer` must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        own = {id(p) for p in model.parameters()}
        if any(id(p) not in own for g in optimizer.param_groups for p in g["params"]):
            raise ValueError("`optimizer` must be built over `model.parameters()`; it holds other tensors")
        if not (math.isfinite(damping) and damping >= 0):
            raise ValueError(f"`damping` must be a finite number >= 0, got {damping!r}")
        if isinstance(track_every, bool) or not isinstance(track_every, int) or track_every < 1:
            raise ValueError(f"`track_every` must be a positive int, got {track_every!r}")
        self.linearised = linearise(model)
        self.period = period
        self.optimizer = optimizer
        self.loss_fn = loss_fn or nn.functional.cross_entropy
        self.damping = float(damping)
        self.tracker = tracker
        self.track_every = track_every
        self.steps = 0
        self.feature_updates = 0
        if tracker is not None and not tracker.steps:
            tracker.record(0, self.linearised)

    def step(self, x: Tensor, y: Tensor) -> float:
        """One optimiser step on the linearised loss (moving ``θ̃`` first when due).

        Parameters
        ----------
        x : Tensor of shape (batch, ...)
            Inputs.
        y : Tensor
            Targets accepted by ``loss_fn``.

        Returns
        -------
        float
            The loss before the step.

        Raises
        ------
        FloatingPointError
            The loss is not finite; nothing is changed (lower the learning rate).
        """
        if self.period is not None and self.steps > 0 and self.steps % self.period == 0:
            self.linearised.relinearise()
            self.feature_updates += 1
        loss = self.loss_fn(self.linearised(x), y)
        if self.damping:
            loss = loss + self.damping * self.linearised.proximal_term()
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss {loss.item()} at step {self.steps} (period {self.period}); "
                "lower the learning rate"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        if self.tracker is not None and self.steps % self.track_every == 0:
            self.tracker.record(self.steps, self.linearised)
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 1024) -> Tensor:
        """Evaluate the linearised model (the trained predictor) in batches.

        Parameters
        ----------
        x : Tensor of shape (N, ...)
            Inputs.
        batch_size : int, default=1024
            Evaluate this many at once.

        Returns
        -------
        Tensor of shape (N, ...)
            ``f_lin(x; θ)``.
        """
        return torch.cat([self.linearised(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])

    def state_dict(self) -> dict[str, Any]:
        """Model, linearisation point, optimiser state and counters, for checkpoints."""
        return {
            "linearised": self.linearised.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "steps": self.steps,
            "feature_updates": self.feature_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.linearised.load_state_dict(state["linearised"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = int(state["steps"])
        self.feature_updates = int(state["feature_updates"])
