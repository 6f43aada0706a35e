r"""One meta-reweighting trainer for any ``nn.Module`` classifier and any torch optimiser.

Each iteration takes three steps (Shu et al. 2019; Xu et al. 2021, §3):

1. **Virtual-Train**:
   :math:`\hat w(\theta) = w - \alpha \frac1n\sum_i V_i(\theta)\nabla_w L_i^{tra}(w)`;
2. **Meta-Train**:
   :math:`\theta' = \theta - \beta\,\nabla_\theta\frac1m\sum_j L_j^{val}(\hat w(\theta))`;
3. **Actual-Train**:
   :math:`w' = \mathrm{opt}(w, \frac1n\sum_i V_i(\theta')\nabla_w L_i^{tra}(w))`.

The virtual step is a function of the parameters evaluated with
:func:`torch.func.functional_call` and differentiated with nested
:func:`torch.func.grad`; the model is never copied. It is a plain SGD step
with the optimiser's current learning rate (as in the official MW-Net code),
whatever optimiser takes the actual step. Batch-norm layers use batch
statistics in the virtual and meta passes and their running statistics are
left untouched there (they are updated by the actual step only).

With :class:`~sciprob.learning.reweighting.FaMUS`, rejected layers take their
virtual step with a detached gradient, so the second-order backward of step 2
skips them.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from sciprob.learning.reweighting.famus import FaMUS, famus_layers, pooled_gradient
from sciprob.learning.reweighting.noise import check_clean_set
from sciprob.learning.reweighting.weighting import Weighting
from sciprob.runtime import ProgressBar, check_finite, get_logger, load_checkpoint, save_checkpoint

__all__ = ["FitResult", "MetaGradient", "MetaReweightTrainer", "StepInfo", "WeightedObjective"]

_log = get_logger(__name__)

#: ``objective(model, x, y, weights) -> loss``: the actual step's weighted loss.
WeightedObjective = Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]


class MetaGradient(NamedTuple):
    """The meta-gradient of one batch.

    Attributes
    ----------
    weighting : dict of str to Tensor
        Gradient with respect to the weighting's meta-parameters.
    sampler : dict of str to Tensor
        Gradient with respect to the FaMUS samplers (empty without FaMUS).
    meta_loss : float
        Clean-set loss after the virtual step, :math:`L_c`.
    losses : Tensor of shape (n,)
        Per-example training losses at the current parameters.
    kept : tuple of bool
        For each layer of the model, whether its meta-gradient term was computed.
    """

    weighting: dict[str, Tensor]
    sampler: dict[str, Tensor]
    meta_loss: float
    losses: Tensor
    kept: tuple[bool, ...]


class StepInfo(NamedTuple):
    """What one training iteration did.

    Attributes
    ----------
    loss : float
        The actual step's weighted loss.
    meta_loss : float
        :math:`L_c` (NaN for plain training).
    weights : Tensor of shape (n,)
        The actual step's per-example weights.
    kept : tuple of bool
        Layers whose meta-gradient term was computed.
    """

    loss: float
    meta_loss: float
    weights: Tensor
    kept: tuple[bool, ...]


@dataclass
class FitResult:
    """Outcome of :meth:`MetaReweightTrainer.fit`.

    Attributes
    ----------
    history : dict of str to list of float
        Per epoch: ``loss``, ``meta_loss``, ``kept_fraction`` and, with
        ``eval_data``, ``accuracy``.
    weights : ndarray of shape (n_train,)
        The weight each training example got at its last iteration.
    iterations : int
        Training iterations taken in this call.
    seconds : float
        Wall time of those iterations (evaluation excluded).
    layer_keep_rate : ndarray of shape (n_layers,)
        Share of iterations in which each layer's meta-gradient term was computed.
    """

    history: dict[str, list[float]] = field(default_factory=dict)
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    iterations: int = 0
    seconds: float = 0.0
    layer_keep_rate: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def ms_per_iteration(self) -> float:
        """Milliseconds per training iteration."""
        return 1000.0 * self.seconds / max(self.iterations, 1)

    @property
    def best_accuracy(self) -> float:
        """Highest per-epoch evaluation accuracy (NaN without ``eval_data``)."""
        acc = self.history.get("accuracy", [])
        return float(max(acc)) if acc else float("nan")

    @property
    def last_accuracy(self) -> float:
        """Evaluation accuracy after the last epoch (NaN without ``eval_data``)."""
        acc = self.history.get("accuracy", [])
        return float(acc[-1]) if acc else float("nan")


@contextlib.contextmanager
def _batch_stats_only(model: nn.Module) -> Iterator[None]:
    """Make batch norm use batch statistics and leave its running buffers alone.

    torch.func forbids mutating captured buffers, and the virtual step must not change the model.
    """
    saved = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            saved.append(m)
            m.track_running_stats = False
    try:
        yield
    finally:
        for m in saved:
            m.track_running_stats = True


def _row_hashes(x: Tensor) -> set[bytes]:
    arr = x.detach().cpu().reshape(x.shape[0], -1).numpy()
    return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in arr}


class MetaReweightTrainer:
    r"""Meta-reweighting trainer (MW-Net, L2RW, either with FaMUS; plain weighted training without).

    Parameters
    ----------
    model : nn.Module
        Classifier mapping inputs (n, ...) to logits (n, n_classes); trained in place.
    optimizer : torch.optim.Optimizer
        Optimiser over (a subset of) ``model``'s parameters, for the actual step.
    weighting : Weighting, default=None
        :class:`~sciprob.learning.reweighting.MetaWeightNet` or
        :class:`~sciprob.learning.reweighting.LearningToReweight`; ``None``
        trains on the plain mean cross-entropy.
    famus : FaMUS, default=None
        Layer samplers built on ``model``; needs a ``weighting``.
    virtual_lr : float, default=None
        Learning rate :math:`\alpha` of the virtual step; default the
        optimiser's current learning rate (first parameter group).
    objective : callable, default=None
        ``objective(model, x, y, weights) -> loss`` of the actual step, e.g.
        :class:`~sciprob.learning.reweighting.WeightedLikelihood` (the Pyro
        form); default ``(weights * cross_entropy).sum() / n``.
    generator : torch.Generator, default=None
        Source of the batch order and the Gumbel noise (a CPU generator).

    Raises
    ------
    TypeError
        ``model``, ``optimizer``, ``weighting`` or ``famus`` of the wrong kind.
    ValueError
        A model without trainable parameters, an optimiser over other
        parameters, FaMUS without a weighting or built on another model.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> from sciprob.learning.reweighting import MetaWeightNet
    >>> trainer = MetaReweightTrainer(net, torch.optim.SGD(net.parameters(), lr=0.1), MetaWeightNet())
    >>> x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    >>> info = trainer.step(x, y, x[:6], y[:6])
    >>> info.weights.shape
    torch.Size([16])
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        weighting: Weighting | None = None,
        *,
        famus: FaMUS | None = None,
        virtual_lr: float | None = None,
        objective: WeightedObjective | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
        self.layers = famus_layers(model)  # raises on a model without trainable parameters
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"`optimizer` must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        own = {id(p) for p in model.parameters()}
        foreign = sum(id(p) not in own for g in optimizer.param_groups for p in g["params"])
        if foreign:
            raise ValueError(
                f"`optimizer` holds {foreign} parameters that are not `model`'s; "
                "build it on model.parameters()"
            )
        if weighting is not None and not isinstance(weighting, Weighting):
            raise TypeError(
                f"`weighting` must be a Weighting (MetaWeightNet, LearningToReweight) or None, "
                f"got {type(weighting).__name__}"
            )
        if famus is not None:
            if not isinstance(famus, FaMUS):
                raise TypeError(f"`famus` must be a FaMUS instance or None, got {type(famus).__name__}")
            if weighting is None:
                raise ValueError("`famus` approximates a meta-gradient and needs a `weighting`; pass one")
            if [la.params for la in famus.layers] != [la.params for la in self.layers]:
                raise ValueError("`famus` was built on another model; build it with FaMUS(model)")
        if virtual_lr is not None and not virtual_lr > 0:
            raise ValueError(f"`virtual_lr` must be positive or None, got {virtual_lr!r}")
        self.model, self.optimizer, self.weighting, self.famus = model, optimizer, weighting, famus
        self.virtual_lr, self.objective = virtual_lr, objective
        self.generator = generator if generator is not None else torch.Generator()
        self._last_param = self.layers[-1].params[0]
        self.layers_dtype = dict(model.named_parameters())[self._last_param].dtype

    # ------------------------------------------------------------------ meta-gradient
    def _alpha(self) -> float:
        return float(self.virtual_lr if self.virtual_lr is not None else self.optimizer.param_groups[0]["lr"])

    def _features(self, g: dict[str, Tensor], index: int) -> Tensor:
        name = self.layers[index].params[0]
        grad = g[name].detach()
        if not bool(grad.any()):  # L2RW at eps = 0: fall back to the last actual gradient
            own = dict(self.model.named_parameters())[name].grad
            grad = own.detach() if own is not None else grad
        return pooled_gradient(grad)

    def meta_gradient(
        self,
        x: Tensor,
        y: Tensor,
        x_meta: Tensor,
        y_meta: Tensor,
        *,
        keep: list[bool] | tuple[bool, ...] | None = None,
    ) -> MetaGradient:
        """Meta-gradient of one batch, without changing the model.

        Parameters
        ----------
        x : Tensor of shape (n, ...)
            Training inputs.
        y : Tensor of shape (n,), dtype long
            Their (noisy) labels.
        x_meta : Tensor of shape (m, ...)
            Clean inputs.
        y_meta : Tensor of shape (m,), dtype long
            Their labels.
        keep : sequence of bool of length n_layers, default=None
            Which layers' terms to compute; ``None`` lets the FaMUS samplers
            decide (every layer without FaMUS). Given, the samplers are not used.

        Returns
        -------
        MetaGradient
        """
        if self.weighting is None:
            raise ValueError("`meta_gradient` needs a trainer with a `weighting`")
        if keep is not None and len(keep) != len(self.layers):
            raise ValueError(f"`keep` must have one flag per layer ({len(self.layers)}), got {len(keep)}")
        model, n, alpha = self.model, x.shape[0], self._alpha()
        params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
        use_sampler = self.famus is not None and keep is None
        meta = {"w": self.weighting.meta_parameters(n, x.device, self.layers_dtype)}
        noise = None
        if use_sampler:
            meta["s"] = self.famus.meta_parameters()
            noise = self.famus.draw_noise(self.generator).to(x.device)
        record: dict[str, Any] = {}

        def objective(meta: dict[str, dict[str, Tensor]]) -> tuple[Tensor, Tensor]:
            def inner(p: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
                losses = F.cross_entropy(functional_call(model, p, (x,)), y, reduction="none")
                v = self.weighting.weights(meta["w"], losses.detach())
                return (v * losses).sum() / n, losses.detach()

            g, losses = torch.func.grad(inner, has_aux=True)(params)
            acts: dict[int, Tensor] = {}
            if keep is not None:
                kept = list(keep)
            elif use_sampler:
                feats = [self._features(g, i) for i in self.famus.sampled]
                act_vec, sampled_kept = self.famus.gates(meta["s"], feats, noise)
                kept = [False] * len(self.layers)
                for j, i in enumerate(self.famus.sampled):
                    kept[i], acts[i] = sampled_kept[j], act_vec[j]
                for i in self.famus.always:
                    kept[i] = True
            else:
                kept = [True] * len(self.layers)
            new = {}
            for i, layer in enumerate(self.layers):
                act = acts.get(i)
                for name in layer.params:
                    if kept[i]:
                        step = g[name] if act is None else act * g[name]
                    elif act is None or self.famus.gate == "kept_only":
                        step = g[name].detach()  # FaMUS: no second-order term through this layer
                    else:  # the released gating: the sampler still learns from a rejected layer
                        step = (1.0 - act) * g[name].detach()
                    new[name] = params[name] - alpha * step
            if not use_sampler:
                meta_loss = F.cross_entropy(functional_call(model, new, (x_meta,)), y_meta)
                total = meta_loss
            else:
                last = self._last_param

                def val_loss(p_last: Tensor) -> Tensor:
                    logits = functional_call(model, {**new, last: p_last}, (x_meta,))
                    return F.cross_entropy(logits, y_meta)

                # one clean pass gives L_c and, for L_g, the clean gradient of the last layer at w-hat
                g_val_last, meta_loss = torch.func.grad_and_value(val_loss)(new[last])
                total = meta_loss + self.famus.loss_terms(
                    torch.stack(list(acts.values())) if acts else meta_loss.new_zeros(0),
                    g[last],
                    g_val_last.detach(),
                )
            record["kept"] = tuple(kept)
            return total, (meta_loss.detach(), losses)

        with _batch_stats_only(model):
            grads, (meta_loss, losses) = torch.func.grad(objective, has_aux=True)(meta)
        return MetaGradient(grads["w"], grads.get("s", {}), float(meta_loss), losses, record["kept"])

    # ------------------------------------------------------------------ one iteration
    def _weighted_loss(self, x: Tensor, y: Tensor, weights: Tensor) -> Tensor:
        if self.objective is not None:
            return self.objective(self.model, x, y, weights)
        losses = F.cross_entropy(self.model(x), y, reduction="none")
        return (weights * losses).sum() / x.shape[0]

    def step(
        self, x: Tensor, y: Tensor, x_meta: Tensor | None = None, y_meta: Tensor | None = None
    ) -> StepInfo:
        """One iteration: virtual step, meta step, actual step (just the last without a weighting).

        Parameters
        ----------
        x : Tensor of shape (n, ...)
            Training inputs.
        y : Tensor of shape (n,), dtype long
            Their (noisy) labels.
        x_meta, y_meta : Tensor of shape (m, ...) and (m,), default=None
            A clean batch (needed with a weighting).

        Returns
        -------
        StepInfo
        """
        self.model.train()
        n = x.shape[0]
        if self.weighting is None:
            weights = torch.ones(n, device=x.device)
            return self._apply(self._weighted_loss(x, y, weights), weights, float("nan"), ())
        if x_meta is None or y_meta is None:
            raise ValueError("a weighting needs a clean batch: pass `x_meta` and `y_meta`")
        mg = self.meta_gradient(x, y, x_meta, y_meta)
        if self.famus is not None:
            self.famus.update(mg.sampler)
        if self.objective is None:
            losses = F.cross_entropy(self.model(x), y, reduction="none")
            weights = self.weighting.train_weights(mg.weighting, losses.detach())
            loss = (weights * losses).sum() / n
        else:
            with torch.no_grad(), _batch_stats_only(self.model):
                losses = F.cross_entropy(self.model(x), y, reduction="none")
            weights = self.weighting.train_weights(mg.weighting, losses)
            loss = self._weighted_loss(x, y, weights)
        return self._apply(loss, weights, mg.meta_loss, mg.kept)

    def _apply(self, loss: Tensor, weights: Tensor, meta_loss: float, kept: tuple[bool, ...]) -> StepInfo:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return StepInfo(float(loss.detach()), meta_loss, weights.detach(), kept)

    # ------------------------------------------------------------------ training loop
    def _check_data(
        self, X: Tensor, y: Tensor, X_meta: Tensor | None, y_meta: Tensor | None, n_classes: int | None
    ) -> None:
        for name, t in (("X", X), ("y", y)):
            if not isinstance(t, Tensor):
                raise TypeError(f"`{name}` must be a torch.Tensor, got {type(t).__name__}")
        if y.dim() != 1 or y.shape[0] != X.shape[0] or y.dtype != torch.long:
            raise ValueError(
                f"`y` must be a long tensor of shape ({X.shape[0]},), got {tuple(y.shape)} {y.dtype}"
            )
        if self.weighting is None:
            return
        if X_meta is None or y_meta is None:
            raise ValueError("a weighting needs the clean meta set: pass `X_meta` and `y_meta`")
        if y_meta.dim() != 1 or y_meta.shape[0] != X_meta.shape[0] or y_meta.dtype != torch.long:
            raise ValueError(
                f"`y_meta` must be a long tensor of shape ({X_meta.shape[0]},), "
                f"got {tuple(y_meta.shape)} {y_meta.dtype}"
            )
        k = n_classes if n_classes is not None else int(max(int(y.max()), int(y_meta.max()))) + 1
        check_clean_set(y_meta.cpu().numpy(), k)
        shared = len(_row_hashes(X) & _row_hashes(X_meta))
        if shared:
            raise ValueError(
                f"`X_meta` shares {shared} examples with the training set `X`; "
                "hold the clean meta set out of the training data"
            )

    def fit(
        self,
        X: Tensor,
        y: Tensor,
        X_meta: Tensor | None = None,
        y_meta: Tensor | None = None,
        *,
        epochs: int,
        batch_size: int = 100,
        meta_batch_size: int = 100,
        eval_data: tuple[Tensor, Tensor] | None = None,
        scheduler: Any = None,
        n_classes: int | None = None,
        description: str = "meta-reweighting",
        checkpoint_path: str | Path | None = None,
        checkpoint_every: int = 0,
        resume: bool = False,
        on_nonfinite: Literal["raise", "warn"] = "raise",
    ) -> FitResult:
        """Train for ``epochs`` epochs over shuffled mini-batches.

        Parameters
        ----------
        X : Tensor of shape (n, ...)
            Training inputs, on the model's device.
        y : Tensor of shape (n,), dtype long
            Noisy training labels.
        X_meta : Tensor of shape (m, ...), default=None
            Clean meta inputs (needed with a weighting); must cover every class
            and share no example with ``X``.
        y_meta : Tensor of shape (m,), default=None
            Their labels.
        epochs : int
            Number of passes over ``X``.
        batch_size : int, default=100
            Training batch size (official MW-Net: 100).
        meta_batch_size : int, default=100
            Clean batch size, drawn afresh each iteration.
        eval_data : (Tensor, Tensor), default=None
            Test inputs and labels; their accuracy is recorded after each epoch.
        scheduler : torch.optim.lr_scheduler.LRScheduler, default=None
            Stepped once per epoch.
        n_classes : int, default=None
            Number of classes (default: inferred from the labels).
        description : str, default="meta-reweighting"
            Progress-bar and log label.
        checkpoint_path : path, default=None
            Where to save the full training state.
        checkpoint_every : int, default=0
            Epochs between checkpoints (0: only at the end).
        resume : bool, default=False
            Continue from ``checkpoint_path`` if it exists.
        on_nonfinite : {"raise", "warn"}, default="raise"
            What a non-finite epoch loss does.

        Returns
        -------
        FitResult

        Raises
        ------
        TypeError, ValueError
            Bad data (see :meth:`_check_data`) or arguments, before any training.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"`epochs` must be a positive integer, got {epochs!r}")
        for name, v in (("batch_size", batch_size), ("meta_batch_size", meta_batch_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {v!r}")
        if (
            isinstance(checkpoint_every, bool)
            or not isinstance(checkpoint_every, int)
            or checkpoint_every < 0
        ):
            raise ValueError(f"`checkpoint_every` must be a non-negative integer, got {checkpoint_every!r}")
        self._check_data(X, y, X_meta, y_meta, n_classes)
        n = X.shape[0]
        state: dict[str, Any] = {
            "epoch": 0,
            "history": {"loss": [], "meta_loss": [], "kept_fraction": [], "accuracy": []},
            "weights": np.ones(n),
            "keep_counts": np.zeros(len(self.layers)),
            "meta_iterations": 0,
        }
        ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
        if resume and ckpt is not None and ckpt.exists():
            saved = load_checkpoint(ckpt, map_location=X.device)
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            if self.weighting is not None:
                self.weighting.load_state_dict(saved["weighting"])
                self.weighting.load_extra_state(saved["weighting_extra"])
            if self.famus is not None:
                self.famus.load_state_dict(saved["famus"])
                self.famus.optimizer.load_state_dict(saved["famus_optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved["scheduler"])
            self.generator.set_state(saved["generator"])
            state = saved["state"]
            _log.info("%s: resumed at epoch %d from %s", description, state["epoch"], ckpt)

        def save() -> None:
            if ckpt is None:
                return
            save_checkpoint(
                ckpt,
                {
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "weighting": self.weighting.state_dict() if self.weighting is not None else None,
                    "weighting_extra": self.weighting.extra_state() if self.weighting is not None else None,
                    "famus": self.famus.state_dict() if self.famus is not None else None,
                    "famus_optimizer": self.famus.optimizer.state_dict() if self.famus is not None else None,
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "generator": self.generator.get_state(),
                    "state": state,
                },
            )

        hist, seconds, iters = state["history"], 0.0, 0
        m = X_meta.shape[0] if X_meta is not None else 0
        with ProgressBar(epochs - state["epoch"], description) as bar:
            while state["epoch"] < epochs:
                order = torch.randperm(n, generator=self.generator).split(batch_size)
                total, meta_total, kept_total = 0.0, 0.0, 0.0
                for idx in order:
                    if len(idx) < 2 and n > 1:  # batch norm cannot normalise a single example
                        continue
                    idx_d = idx.to(X.device)
                    xm = ym = None
                    if self.weighting is not None:
                        midx = torch.randperm(m, generator=self.generator)[: min(meta_batch_size, m)]
                        xm, ym = X_meta[midx.to(X.device)], y_meta[midx.to(X.device)]
                    start = time.perf_counter()
                    info = self.step(X[idx_d], y[idx_d], xm, ym)
                    seconds += time.perf_counter() - start
                    iters += 1
                    total += info.loss * len(idx)
                    state["weights"][idx.numpy()] = info.weights.detach().cpu().double().numpy()
                    if info.kept:
                        meta_total += info.meta_loss
                        kept_total += float(np.mean(info.kept))
                        state["keep_counts"] += np.asarray(info.kept, dtype=float)
                        state["meta_iterations"] += 1
                n_batches = max(len(order), 1)
                epoch_loss = check_finite(
                    total / n, step=state["epoch"] + 1, policy=on_nonfinite, where=description
                )
                state["epoch"] += 1
                hist["loss"].append(epoch_loss)
                hist["meta_loss"].append(meta_total / n_batches if self.weighting else float("nan"))
                hist["kept_fraction"].append(kept_total / n_batches if self.weighting else float("nan"))
                if eval_data is not None:
                    hist["accuracy"].append(accuracy(self.model, *eval_data))
                if scheduler is not None:
                    scheduler.step()
                if checkpoint_every and state["epoch"] % checkpoint_every == 0:
                    save()
                bar.update(loss=epoch_loss, acc=hist["accuracy"][-1] if hist["accuracy"] else float("nan"))
        save()
        keep_rate = state["keep_counts"] / max(state["meta_iterations"], 1)
        return FitResult(
            history={k: list(v) for k, v in hist.items() if v},
            weights=state["weights"].copy(),
            iterations=iters,
            seconds=seconds,
            layer_keep_rate=keep_rate,
        )


@torch.no_grad()
def accuracy(model: nn.Module, X: Tensor, y: Tensor, batch_size: int = 512) -> float:
    """Share of ``X`` (n, ...) that ``model`` classifies as ``y`` (n,), in eval mode (restored after)."""
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, X.shape[0], batch_size):
        correct += int((model(X[i : i + batch_size]).argmax(-1) == y[i : i + batch_size]).sum())
    model.train(was)
    return correct / max(X.shape[0], 1)
