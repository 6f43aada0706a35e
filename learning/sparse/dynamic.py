r"""Dynamic sparse training: remove and regrow connections at a fixed parameter budget.

Every ``update_every`` optimizer steps until ``end_step``, each masked tensor
with :math:`n` active elements drops the :math:`k = \lfloor \alpha_t n \rceil`
active elements of smallest magnitude and grows :math:`k` elements among
those not kept:

- **SET** (Mocanu et al. 2018 [1]_): grown at random;
- **RigL** (Evci et al. 2020 [2]_): grown where the dense gradient
  :math:`|\partial L / \partial (W \odot M)|` is largest (the gradient of the
  batch of the update step).

:math:`\alpha_t` is the cosine-decayed drop fraction
:math:`\tfrac{\alpha}{2}(1 + \cos(\pi t / T_\text{end}))` (RigL) or constant
(SET). Grown weights start at zero (RigL) and their optimizer state
(momentum, Adam moments: every state tensor of the weight's shape) is zeroed
so that no stale moment moves them. The number of active elements of every
tensor is unchanged by an update.

:class:`DynamicSparseTraining` is an optimizer step post-hook: it works with
any ``torch.optim`` optimizer.

References
----------
.. [1] D. C. Mocanu et al., "Scalable training of artificial neural networks with adaptive
   sparse connectivity inspired by network science", Nat. Commun. 9, 2383 (2018).
.. [2] U. Evci, T. Gale, J. Menick, P. S. Castro, E. Elsen, "Rigging the Lottery: Making All
   Tickets Winners", ICML 2020; code ``google-research/rigl``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from sciprob.learning.sparse.masks import MaskedTensor, masked_tensors
from sciprob.learning.sparse.schedules import CosineDecay


@dataclass(frozen=True)
class MaskUpdate:
    """One mask update of :class:`DynamicSparseTraining`.

    Attributes
    ----------
    step : int
        Optimizer steps done when it happened.
    drop_fraction : float
    changed : int
        Elements dropped (= elements grown) over all tensors.
    active : int
        Active elements over all tensors (unchanged by the update).
    """

    step: int
    drop_fraction: float
    changed: int
    active: int


class DynamicSparseTraining:
    r"""SET or RigL mask updates as an optimizer step post-hook.

    Parameters
    ----------
    model : nn.Module
        A masked model at its starting sparsity (e.g. ``sparsify(model,
        sparsity=0.9, score="random", allocation="erk")``).
    optimizer : torch.optim.Optimizer
        Any optimizer over (among others) the masked weights.
    method : {"rigl", "set"}, default="rigl"
    drop_fraction : float in (0, 1], default=0.3
        Initial drop fraction :math:`\alpha` (RigL's MNIST recipe: 0.3).
    update_every : int, default=100
        Steps between mask updates :math:`\Delta T`.
    end_step : int
        :math:`T_\text{end}`: no updates from this step on (RigL: 75 % of training).
    decay : {"cosine", "constant"}, default="cosine"
    generator : torch.Generator, default=None
        For SET's random growth and tie-breaking.

    Attributes
    ----------
    steps : int
    history : list of MaskUpdate

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    >>> _ = sparsify(net, sparsity=0.8, score="random", allocation="erk")  # doctest: +SKIP
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> dst = DynamicSparseTraining(net, opt, method="rigl", update_every=10, end_step=300)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        method: Literal["rigl", "set"] = "rigl",
        drop_fraction: float = 0.3,
        update_every: int = 100,
        end_step: int = 1000,
        decay: Literal["cosine", "constant"] = "cosine",
        generator: torch.Generator | None = None,
    ) -> None:
        if method not in ("rigl", "set"):
            raise ValueError(f"`method` must be 'rigl' or 'set', got {method!r}")
        if decay not in ("cosine", "constant"):
            raise ValueError(f"`decay` must be 'cosine' or 'constant', got {decay!r}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"`optimizer` must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if isinstance(update_every, bool) or not isinstance(update_every, int) or update_every < 1:
            raise ValueError(f"`update_every` must be a positive integer, got {update_every!r}")
        self._alpha = CosineDecay(drop_fraction, end_step)  # validates both
        self.entries: list[MaskedTensor] = list(masked_tensors(model))
        if not self.entries:
            raise ValueError("`model` has no masks; call `sparsify(model, targets, sparsity)` first")
        opt_params = {id(p) for g in optimizer.param_groups for p in g["params"]}
        missing = [e.name for e in self.entries if id(e.original) not in opt_params]
        if missing:
            raise ValueError(
                f"`optimizer` does not update the masked weights {missing[:4]}; pass model.parameters()"
            )
        self.model, self.optimizer, self.method, self.decay = model, optimizer, method, decay
        self.update_every, self.end_step = update_every, end_step
        self.generator = generator
        self.steps = 0
        self.history: list[MaskUpdate] = []
        self._arm(self._is_update(1))
        self._handle = optimizer.register_step_post_hook(lambda *_: self.step())

    def drop_fraction(self, step: int) -> float:
        """Drop fraction at ``step`` (cosine-decayed or constant, 0 from ``end_step``)."""
        if step >= self.end_step:
            return 0.0
        return self._alpha(step) if self.decay == "cosine" else self._alpha.initial

    def _is_update(self, step: int) -> bool:
        return step % self.update_every == 0 and step < self.end_step

    def _arm(self, on: bool) -> None:
        # RigL needs the dense gradient of the batch of the update step only
        for e in self.entries:
            e.parametrization.record_grad = on and self.method == "rigl"
            e.parametrization.dense_grad = None

    def remove(self) -> None:
        """Detach from the optimizer and stop recording gradients."""
        self._handle.remove()
        self._arm(False)

    def step(self) -> MaskUpdate | None:
        """Count one optimizer step; update the masks if it is an update step (called by the hook)."""
        self.steps += 1
        update = None
        if self._is_update(self.steps):
            update = self.update_masks(self.drop_fraction(self.steps))
        self._arm(self._is_update(self.steps + 1))
        return update

    @torch.no_grad()
    def update_masks(self, fraction: float) -> MaskUpdate:
        """Drop ``fraction`` of each tensor's active elements by magnitude and regrow as many.

        Returns
        -------
        MaskUpdate

        Raises
        ------
        RuntimeError
            RigL without a recorded gradient (no backward pass since the last step).
        """
        changed = 0
        for e in self.entries:
            mask = e.mask
            active = int(mask.sum())
            k = min(round(fraction * active), mask.numel() - active)
            if k <= 0:
                continue
            w = e.original.detach()
            drop_score = torch.where(mask, w.abs().float(), torch.inf).reshape(-1)
            dropped = torch.topk(drop_score, k, largest=False).indices
            remaining = mask.reshape(-1).clone()
            remaining[dropped] = False
            grow_score = self._grow_score(e).reshape(-1)
            grow_score = torch.where(remaining, -torch.inf, grow_score)
            grown = torch.topk(grow_score, k).indices
            new = remaining.clone()
            new[grown] = True
            mask.copy_(new.view_as(mask))
            flat = e.original.data.view(-1)
            flat[dropped] = 0.0
            flat[grown] = 0.0
            self._reset_state(e, grown)
            changed += k
        for e in self.entries:
            e.parametrization.dense_grad = None
        record = MaskUpdate(
            self.steps, float(fraction), changed, sum(int(e.mask.sum()) for e in self.entries)
        )
        self.history.append(record)
        return record

    def _grow_score(self, e: MaskedTensor) -> Tensor:
        if self.method == "set":
            return torch.rand(e.mask.shape, generator=self.generator).to(e.mask.device)
        g = e.parametrization.dense_grad
        if g is None:
            raise RuntimeError(
                f"RigL found no dense gradient for {e.name!r}: run forward and backward before each "
                "optimizer.step() of an update step"
            )
        # a small random term breaks ties among zero gradients reproducibly
        noise = torch.rand(e.mask.shape, generator=self.generator).to(g.device) * 1e-12
        return g.abs().float() + noise

    def _reset_state(self, e: MaskedTensor, grown: Tensor) -> None:
        state = self.optimizer.state.get(e.original)
        if not state:
            return
        for value in state.values():
            if isinstance(value, Tensor) and value.shape == e.original.shape:
                value.view(-1)[grown] = 0
