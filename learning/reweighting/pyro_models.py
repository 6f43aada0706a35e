r"""The Pyro form: per-example likelihood weights and Bayesian data reweighting.

:class:`WeightedLikelihood` writes the weighted training objective as a Pyro
model, each example's likelihood scaled by its weight inside a ``pyro.plate``,

.. math::

    \log p_w(y \mid x, \phi) = \sum_i w_i \log \mathrm{Cat}(y_i \mid f_\phi(x_i)),

with a MAP guide (the network parameters are point estimates, so the guide has
no sample sites and the ELBO is the negative weighted log-likelihood). Called
as ``objective(model, x, y, weights)`` it is the actual-step loss of
:class:`~sciprob.learning.reweighting.MetaReweightTrainer`.

:class:`BayesianReweighting` is the reweighted probabilistic model of Wang,
Kucukelbir & Blei (2017), a baseline that needs no clean set: every training
example has a latent weight :math:`w_i \sim \mathrm{Beta}(a, b)` raising its
likelihood to the power :math:`w_i`; the weights (mean-field Beta posteriors)
and the network (MAP) are fitted by stochastic variational inference on
mini-batches. With :math:`b = 1` the optimum of one weight is about
:math:`\min(1, (a - 1)/\mathrm{NLL}_i)`, so examples the network cannot fit
(often the mislabelled ones) are down-weighted.

The objectives are evaluated with ``Trace_ELBO().differentiable_loss`` and
optimised with torch optimisers, so nothing touches Pyro's global parameter
store.

References
----------
.. [1] Wang, Kucukelbir, Blei, "Robust probabilistic modeling with Bayesian
   data reweighting", ICML 2017.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import numpy as np
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.infer import Trace_ELBO
from torch import Tensor, nn

from sciprob.learning.reweighting.trainer import FitResult, accuracy
from sciprob.runtime import ProgressBar, check_finite, load_checkpoint, save_checkpoint

__all__ = ["BayesianReweighting", "WeightedLikelihood", "fit_bayesian_reweighting"]


def _scaled_likelihood(logits: Tensor, y: Tensor, weights: Tensor) -> None:
    # poutine.scale needs a positive scale under validation: zero weights are masked instead
    positive = weights > 0
    with (
        poutine.mask(mask=positive),
        poutine.scale(scale=torch.where(positive, weights, torch.ones_like(weights))),
    ):
        pyro.sample("obs", dist.Categorical(logits=logits), obs=y)


class WeightedLikelihood:
    """The weighted classification likelihood as a Pyro model with a MAP guide.

    Parameters
    ----------
    mean : bool, default=True
        Divide the ELBO by the batch size, so that the objective equals the
        trainer's ``(weights * cross_entropy).sum() / n``.

    Examples
    --------
    >>> net = nn.Linear(3, 4)
    >>> x, y, w = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0]), torch.rand(5)
    >>> loss = WeightedLikelihood()(net, x, y, w)
    >>> hand = (w * F.cross_entropy(net(x), y, reduction="none")).sum() / 5
    >>> bool(torch.isclose(loss, hand))
    True
    """

    def __init__(self, mean: bool = True) -> None:
        self.mean = bool(mean)
        self._elbo = Trace_ELBO()

    @staticmethod
    def model(net: nn.Module, x: Tensor, y: Tensor, weights: Tensor) -> None:
        """``y_i ~ Categorical(logits=net(x_i))`` scaled by ``weights_i``, inside ``pyro.plate("data")``."""
        with pyro.plate("data", x.shape[0]):
            _scaled_likelihood(net(x), y, weights)

    @staticmethod
    def guide(net: nn.Module, x: Tensor, y: Tensor, weights: Tensor) -> None:
        """MAP guide: the network's parameters are point estimates, no latent site."""
        return None

    def __call__(self, net: nn.Module, x: Tensor, y: Tensor, weights: Tensor) -> Tensor:
        """Negative weighted log-likelihood (differentiable in ``net``'s parameters), a scalar."""
        loss = self._elbo.differentiable_loss(self.model, self.guide, net, x, y, weights.detach())
        return loss / x.shape[0] if self.mean else loss


class BayesianReweighting(nn.Module):
    r"""Variational parameters and model of Bayesian data reweighting (Wang et al. 2017).

    Parameters
    ----------
    n_train : int
        Number of training examples (one latent weight each).
    concentration1 : float, default=2.0
        Prior :math:`a` of :math:`w_i \sim \mathrm{Beta}(a, b)` (our choice).
    concentration0 : float, default=1.0
        Prior :math:`b`.

    Attributes
    ----------
    alpha_raw, beta_raw : nn.Parameter of shape (n_train,)
        Unconstrained (softplus) parameters of the Beta posteriors.
    """

    def __init__(self, n_train: int, concentration1: float = 2.0, concentration0: float = 1.0) -> None:
        super().__init__()
        if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1:
            raise ValueError(f"`n_train` must be a positive integer, got {n_train!r}")
        if not (concentration1 > 0 and concentration0 > 0):
            raise ValueError(
                f"Beta prior concentrations must be positive, got ({concentration1!r}, {concentration0!r})"
            )
        self.n_train, self.a, self.b = n_train, float(concentration1), float(concentration0)
        self.alpha_raw = nn.Parameter(torch.full((n_train,), 2.0))
        self.beta_raw = nn.Parameter(torch.full((n_train,), 0.0))

    def posterior(self) -> tuple[Tensor, Tensor]:
        """Beta posterior concentrations, each of shape (n_train,)."""
        return F.softplus(self.alpha_raw) + 1e-3, F.softplus(self.beta_raw) + 1e-3

    def posterior_mean(self) -> Tensor:
        """:math:`E_q[w_i]`, shape (n_train,)."""
        a, b = self.posterior()
        return (a / (a + b)).detach()

    def model(self, net: nn.Module, x: Tensor, y: Tensor, idx: Tensor) -> None:
        """Model: ``w_i ~ Beta(a, b)``, ``y_i ~ Categorical(net(x_i))`` to the power ``w_i``."""
        with pyro.plate("data", self.n_train, subsample=idx):
            w = pyro.sample("w", dist.Beta(x.new_tensor(self.a), x.new_tensor(self.b)))
            with poutine.scale(scale=w):
                pyro.sample("obs", dist.Categorical(logits=net(x)), obs=y)

    def guide(self, net: nn.Module, x: Tensor, y: Tensor, idx: Tensor) -> None:
        """Mean-field ``q(w_i) = Beta(alpha_i, beta_i)``; the network is a point estimate (MAP)."""
        a, b = self.posterior()
        with pyro.plate("data", self.n_train, subsample=idx):
            pyro.sample("w", dist.Beta(a[idx], b[idx]))

    def loss(self, net: nn.Module, x: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        """Negative ELBO of the mini-batch ``idx`` scaled to the full data, divided by ``n_train``."""
        return Trace_ELBO().differentiable_loss(self.model, self.guide, net, x, y, idx) / self.n_train


def fit_bayesian_reweighting(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    X: Tensor,
    y: Tensor,
    *,
    epochs: int,
    batch_size: int = 100,
    prior: tuple[float, float] = (2.0, 1.0),
    guide_lr: float = 0.05,
    eval_data: tuple[Tensor, Tensor] | None = None,
    scheduler=None,
    generator: torch.Generator | None = None,
    description: str = "bayesian reweighting",
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    on_nonfinite: Literal["raise", "warn"] = "raise",
) -> tuple[FitResult, BayesianReweighting]:
    """Fit a classifier and its per-example weights by SVI (no clean set needed).

    Parameters
    ----------
    net : nn.Module
        Classifier, inputs (n, ...) to logits (n, n_classes); trained in place (MAP).
    optimizer : torch.optim.Optimizer
        Optimiser of ``net``'s parameters.
    X : Tensor of shape (n, ...)
        Training inputs.
    y : Tensor of shape (n,), dtype long
        Noisy labels.
    epochs : int
        Passes over the data.
    batch_size : int, default=100
        Mini-batch size.
    prior : (float, float), default=(2.0, 1.0)
        Beta prior concentrations :math:`(a, b)`.
    guide_lr : float, default=0.05
        Adam learning rate of the Beta posteriors.
    eval_data : (Tensor, Tensor), default=None
        Test data; accuracy recorded per epoch.
    scheduler : LRScheduler, default=None
        Stepped once per epoch.
    generator : torch.Generator, default=None
        Batch order.
    description : str, default="bayesian reweighting"
        Progress label.
    checkpoint_path, checkpoint_every, resume, on_nonfinite
        The project's loop contract (see :meth:`MetaReweightTrainer.fit`).

    Returns
    -------
    result : FitResult
        History, posterior-mean weights, timing.
    reweighting : BayesianReweighting
        The fitted variational posteriors.
    """
    if not isinstance(net, nn.Module) or not any(p.requires_grad for p in net.parameters()):
        raise ValueError("`net` must be an nn.Module with trainable parameters")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be a positive integer, got {epochs!r}")
    if y.dim() != 1 or y.shape[0] != X.shape[0] or y.dtype != torch.long:
        raise ValueError(
            f"`y` must be a long tensor of shape ({X.shape[0]},), got {tuple(y.shape)} {y.dtype}"
        )
    n = X.shape[0]
    gen = generator if generator is not None else torch.Generator()
    rw = BayesianReweighting(n, *prior).to(X.device)
    guide_opt = torch.optim.Adam(rw.parameters(), lr=guide_lr)
    state = {"epoch": 0, "history": {"loss": [], "accuracy": []}}
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if resume and ckpt is not None and ckpt.exists():
        saved = load_checkpoint(ckpt, map_location=X.device)
        net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        rw.load_state_dict(saved["reweighting"])
        guide_opt.load_state_dict(saved["guide_optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        gen.set_state(saved["generator"])
        state = saved["state"]

    def save() -> None:
        if ckpt is not None:
            save_checkpoint(
                ckpt,
                {
                    "net": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "reweighting": rw.state_dict(),
                    "guide_optimizer": guide_opt.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "generator": gen.get_state(),
                    "state": state,
                },
            )

    seconds, iters = 0.0, 0
    with ProgressBar(epochs - state["epoch"], description) as bar:
        while state["epoch"] < epochs:
            net.train()
            total = 0.0
            for idx in torch.randperm(n, generator=gen).split(batch_size):
                if len(idx) < 2 and n > 1:
                    continue
                idx_d = idx.to(X.device)
                start = time.perf_counter()
                loss = rw.loss(net, X[idx_d], y[idx_d], idx_d)
                optimizer.zero_grad(set_to_none=True)
                guide_opt.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                guide_opt.step()
                seconds += time.perf_counter() - start
                iters += 1
                total += float(loss.detach()) * len(idx) / n
            state["epoch"] += 1
            state["history"]["loss"].append(
                check_finite(total, step=state["epoch"], policy=on_nonfinite, where=description)
            )
            if eval_data is not None:
                state["history"]["accuracy"].append(accuracy(net, *eval_data))
            if scheduler is not None:
                scheduler.step()
            if checkpoint_every and state["epoch"] % checkpoint_every == 0:
                save()
            bar.update(loss=total)
    save()
    hist = {k: list(v) for k, v in state["history"].items() if v}
    result = FitResult(hist, rw.posterior_mean().cpu().double().numpy(), iters, seconds, np.zeros(0))
    return result, rw
