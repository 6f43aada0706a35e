r"""Lottery tickets: iterative magnitude pruning with rewinding (Frankle & Carbin 2019 [1]_).

Train, prune the smallest surviving weights, reset the survivors to their
values at initialisation (``rewind_step=0``) or at an early step :math:`k`
(Frankle et al. 2020 [2]_), and train again; after :math:`n` rounds the density
is :math:`(1 - s)` with each round keeping :math:`(1 - s)^{1/n}` of the survivors.

References
----------
.. [1] J. Frankle, M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse, Trainable
   Neural Networks", ICLR 2019.
.. [2] J. Frankle, G. K. Dziugaite, D. Roy, M. Carbin, "Linear Mode Connectivity and the
   Lottery Ticket Hypothesis", ICML 2020.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from sciprob.learning.sparse.masks import SparsitySummary, check_sparsity, masked_tensors, prune


class LotteryTicket:
    """Saved weights to rewind to, and the prune-and-rewind step.

    Parameters
    ----------
    model : nn.Module
        A masked model.
    rewind_step : int, default=0
        0 saves the weights now (reset to initialisation); ``k > 0`` saves them
        when :meth:`observe` is called with ``step == k`` (call it after each
        optimizer step with the number of steps done).

    Attributes
    ----------
    saved : dict of str to Tensor or None
        Copies of every parameter (the hidden weights behind masks included)
        and floating buffers other than masks, by ``state_dict`` key.
    """

    def __init__(self, model: nn.Module, rewind_step: int = 0) -> None:
        if isinstance(rewind_step, bool) or not isinstance(rewind_step, int) or rewind_step < 0:
            raise ValueError(f"`rewind_step` must be a non-negative integer, got {rewind_step!r}")
        if not any(True for _ in masked_tensors(model)):
            raise ValueError("`model` has no masks; call `sparsify(model, targets)` first")
        self.model = model
        self.rewind_step = rewind_step
        self.saved: dict[str, Tensor] | None = None
        if rewind_step == 0:
            self.snapshot()

    def snapshot(self) -> None:
        """Save the current weights as the rewind point."""
        self.saved = {
            k: v.detach().clone()
            for k, v in self.model.state_dict().items()
            if not k.endswith(".mask") and v.is_floating_point()
        }

    def observe(self, step: int) -> None:
        """Save the weights if ``step`` equals ``rewind_step`` and nothing is saved yet."""
        if self.saved is None and step == self.rewind_step:
            self.snapshot()

    @torch.no_grad()
    def prune_and_rewind(self, sparsity: float, allocation: str = "global") -> SparsitySummary:
        """Magnitude-prune the survivors to ``sparsity`` and rewind them to the saved weights.

        Parameters
        ----------
        sparsity : float in [0, 1)
            Target overall sparsity of the masked tensors after this round.
        allocation : {"global", "uniform", "er", "erk"}, default="global"

        Returns
        -------
        SparsitySummary

        Raises
        ------
        RuntimeError
            Nothing saved yet (``rewind_step`` not reached).
        """
        check_sparsity(sparsity)
        if self.saved is None:
            raise RuntimeError(
                f"no weights saved to rewind to: call `observe(step)` up to step {self.rewind_step}"
            )
        summary = prune(self.model, sparsity, score="magnitude", allocation=allocation)
        state = self.model.state_dict()
        for k, v in self.saved.items():
            state[k].copy_(v)
        for e in masked_tensors(self.model):
            e.original.mul_(e.mask)
        return summary


def iterative_magnitude_pruning(
    model: nn.Module,
    train: Callable[[nn.Module, LotteryTicket], None],
    sparsity: float,
    rounds: int,
    rewind_step: int = 0,
    allocation: str = "global",
) -> list[SparsitySummary]:
    r"""Lottery-ticket IMP: ``rounds`` times train, prune to :math:`1-(1-s)^{r/n}` and rewind, then train.

    Parameters
    ----------
    model : nn.Module
        A masked model at initialisation.
    train : callable
        ``train(model, ticket)`` trains the model for one round; with
        ``rewind_step > 0`` it must call ``ticket.observe(step)`` after each
        optimizer step in the first round.
    sparsity : float in [0, 1)
        Final sparsity.
    rounds : int
        Prune–rewind rounds (the model is trained ``rounds + 1`` times).
    rewind_step : int, default=0
    allocation : str, default="global"

    Returns
    -------
    list of SparsitySummary
        One per round.
    """
    check_sparsity(sparsity)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"`rounds` must be a positive integer, got {rounds!r}")
    ticket = LotteryTicket(model, rewind_step)
    summaries = []
    for r in range(1, rounds + 1):
        train(model, ticket)
        summaries.append(ticket.prune_and_rewind(1.0 - (1.0 - sparsity) ** (r / rounds), allocation))
    train(model, ticket)
    return summaries
