r"""Per-example weighting strategies: Meta-Weight-Net and Learning-to-Reweight.

A strategy maps the per-example training losses to weights that depend on
meta-parameters :math:`\theta`; the trainer
(:class:`~sciprob.learning.reweighting.MetaReweightTrainer`) differentiates
the clean-set loss after a virtual step with respect to :math:`\theta`,

.. math::

    \hat w(\theta) = w - \frac{\alpha}{n}\sum_i V_i(\theta)\,\nabla_w L_i^{tra}(w),
    \qquad g = \nabla_\theta \frac{1}{m}\sum_j L_j^{val}(\hat w(\theta)),

and hands :math:`g` back to :meth:`Weighting.train_weights`, which updates the
strategy and returns the weights of the actual step
:math:`w' = w - \alpha \frac{1}{n}\sum_i V_i \nabla_w L_i^{tra}`.

References
----------
.. [1] Shu et al., "Meta-Weight-Net: Learning an explicit mapping for sample
   weighting", NeurIPS 2019 (official code ``xjtushujun/meta-weight-net``).
.. [2] Ren et al., "Learning to reweight examples for robust deep learning",
   ICML 2018.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["LearningToReweight", "MetaWeightNet", "VNet", "Weighting"]


class Weighting(nn.Module):
    """Base class of the weighting strategies (an ``nn.Module`` so it moves with ``.to``)."""

    def meta_parameters(
        self, n: int, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> dict[str, Tensor]:
        r"""Return the current meta-parameters :math:`\theta` (detached), the inputs of the meta-gradient."""
        raise NotImplementedError

    def weights(self, meta: dict[str, Tensor], losses: Tensor) -> Tensor:
        r"""Return weights :math:`V_i(\theta)` (n,) of ``losses`` (n,), differentiable in ``meta``."""
        raise NotImplementedError

    def train_weights(self, meta_grad: dict[str, Tensor], losses: Tensor) -> Tensor:
        """Update the strategy with the meta-gradient; return the actual step's weights, shape (n,).

        The actual loss is ``(weights * losses).sum() / n``.
        """
        raise NotImplementedError


class VNet(nn.Module):
    """The MW-Net weight network ``Linear(1, hidden) -> ReLU -> Linear(hidden, 1) -> sigmoid``.

    Parameters
    ----------
    hidden : int, default=100
        Hidden units (the official ``VNet(1, 100, 1)``).
    """

    def __init__(self, hidden: int = 100) -> None:
        super().__init__()
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"`hidden` must be a positive integer, got {hidden!r}")
        self.linear1 = nn.Linear(1, hidden)
        self.linear2 = nn.Linear(hidden, 1)

    def forward(self, loss: Tensor) -> Tensor:
        """Weights in (0, 1), shape (n, 1), of losses of shape (n, 1)."""
        return torch.sigmoid(self.linear2(torch.relu(self.linear1(loss))))


class MetaWeightNet(Weighting):
    """Meta-Weight-Net: a small network maps each example's loss to its weight [1]_.

    Parameters
    ----------
    hidden : int, default=100
        Hidden units of :class:`VNet`.
    lr : float, default=1e-3
        Learning rate of the weight network (official: Adam 1e-3).
    weight_decay : float, default=1e-4
        Weight decay of the weight network (official: 1e-4).
    normalize : bool, default=False
        Divide the weights by their batch mean. The official code does not
        (its loss is ``sum(cost * w) / n``), so neither does the default.
    optimizer : callable, default=None
        ``optimizer(params) -> torch.optim.Optimizer`` for the weight network;
        default ``Adam(lr, weight_decay)``.

    Attributes
    ----------
    net : VNet
        The weight network.
    optimizer : torch.optim.Optimizer
        Its optimiser.
    """

    def __init__(
        self,
        hidden: int = 100,
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        normalize: bool = False,
        optimizer: Callable[[Any], torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__()
        if not (isinstance(lr, int | float) and lr > 0):
            raise ValueError(f"`lr` must be a positive learning rate, got {lr!r}")
        self.net = VNet(hidden)
        self.normalize = bool(normalize)
        self.optimizer = (
            optimizer(self.net.parameters())
            if optimizer is not None
            else torch.optim.Adam(self.net.parameters(), lr=lr, weight_decay=weight_decay)
        )

    def meta_parameters(
        self, n: int, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> dict[str, Tensor]:
        """See :class:`Weighting`."""
        return {k: v.detach() for k, v in self.net.named_parameters()}

    def _weights(self, out: Tensor) -> Tensor:
        w = out.reshape(-1)
        if self.normalize:
            w = w / w.mean().clamp_min(1e-12)
        return w

    def weights(self, meta: dict[str, Tensor], losses: Tensor) -> Tensor:
        """See :class:`Weighting`."""
        return self._weights(functional_call(self.net, meta, (losses.detach().reshape(-1, 1),)))

    def train_weights(self, meta_grad: dict[str, Tensor], losses: Tensor) -> Tensor:
        """See :class:`Weighting`."""
        self.optimizer.zero_grad(set_to_none=True)
        for name, p in self.net.named_parameters():
            p.grad = meta_grad[name].detach().clone()
        self.optimizer.step()
        with torch.no_grad():
            return self._weights(self.net(losses.detach().reshape(-1, 1)))

    def extra_state(self) -> dict[str, Any]:
        """Optimiser state for checkpoints."""
        return {"optimizer": self.optimizer.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state`."""
        self.optimizer.load_state_dict(state["optimizer"])


class LearningToReweight(Weighting):
    r"""Learning-to-Reweight: weights from the clean-set gradient at zero weights [2]_.

    The meta-parameters are per-example perturbations :math:`\epsilon_i`
    (initialised at ``eps_init``); the weights of the actual step are
    :math:`\tilde w_i = \max(-\partial L^{val}/\partial\epsilon_i, 0)`
    normalised to sum to one (all zero if every :math:`\tilde w_i` is), times
    ``n`` because the trainer divides the weighted loss by ``n``.

    Parameters
    ----------
    eps_init : float, default=0.0
        Where the perturbation is evaluated (Ren et al.: 0). At 0 the virtual
        step is zero but still carries the graph needed for the gradient.
    """

    def __init__(self, eps_init: float = 0.0) -> None:
        super().__init__()
        self.eps_init = float(eps_init)

    def meta_parameters(
        self, n: int, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> dict[str, Tensor]:
        """See :class:`Weighting`."""
        return {"eps": torch.full((n,), self.eps_init, device=device, dtype=dtype)}

    def weights(self, meta: dict[str, Tensor], losses: Tensor) -> Tensor:
        """See :class:`Weighting`."""
        return meta["eps"]

    def train_weights(self, meta_grad: dict[str, Tensor], losses: Tensor) -> Tensor:
        """See :class:`Weighting`."""
        w = torch.clamp(-meta_grad["eps"].detach(), min=0.0)
        total = w.sum()
        return w / total * w.numel() if total > 0 else w

    def extra_state(self) -> dict[str, Any]:
        """See :class:`Weighting`."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """See :class:`Weighting`."""
        return None
