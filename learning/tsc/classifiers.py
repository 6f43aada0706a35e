"""One entry point to train any of the review's classifiers: :func:`fit_classifier`.

Each model name maps to an :class:`Architecture` strategy that knows how to
build the network, which :class:`~sciprob.learning.tsc.training.TrainingRecipe`
trains it, and whether training needs augmentation (t-LeNet, MCNN), a held-out
split (MCDCNN, MCNN), a grid search (MCNN, TWIESN) or several members
(InceptionTime). Every fitted classifier answers ``predict_proba(X)``.

Model names: ``mlp, fcn, resnet, encoder, mcnn, tlenet, mcdcnn, timecnn,
twiesn, inception`` (one network) and ``inceptiontime`` (the 5-network
ensemble).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from sciprob.learning.tsc.augment import tlenet_plan, warp_and_slice, window_slices
from sciprob.learning.tsc.inception import InceptionNetwork, InceptionTimeEnsemble
from sciprob.learning.tsc.mcnn import MCNN, MCNN_GRID, mcnn_slice_ratio
from sciprob.learning.tsc.networks import FCN, MCDCNN, MLP, Encoder, ResNet, TimeCNN, TLeNet
from sciprob.learning.tsc.training import (
    RECIPES,
    TrainingRecipe,
    predict_logits,
    scores_to_proba,
    train_network,
)
from sciprob.learning.tsc.twiesn import fit_twiesn

MODEL_NAMES: tuple[str, ...] = (
    "mlp",
    "fcn",
    "resnet",
    "encoder",
    "mcnn",
    "tlenet",
    "mcdcnn",
    "timecnn",
    "twiesn",
    "inception",
    "inceptiontime",
)


@dataclass
class FitOptions:
    """Options shared by every architecture's ``fit``.

    Attributes
    ----------
    epochs : int or None
        Overrides the recipe's epochs (``None``: the review's).
    batch_size : int or None
        Overrides the recipe's batch rule.
    device : torch.device
        Where to train.
    checkpoint_dir : Path or None
        Folder for per-network training checkpoints.
    resume : bool
        Continue from those checkpoints.
    monitor : (ndarray, ndarray) or None
        Series and labels whose accuracy is logged for training curves.
    description : str
        Progress label.
    rng : numpy.random.Generator
        Splits and reservoirs.
    on_nonfinite : {"raise", "warn"}
        What a NaN or infinite training loss does (see :func:`sciprob.runtime.check_finite`).
    """

    epochs: int | None = None
    batch_size: int | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    checkpoint_dir: Path | None = None
    resume: bool = False
    monitor: tuple[np.ndarray, np.ndarray] | None = None
    description: str = "train"
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    on_nonfinite: Literal["raise", "warn"] = "raise"

    def checkpoint(self, tag: str) -> Path | None:
        """Checkpoint file for member ``tag``."""
        return None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / f"{tag}.pt"


@dataclass
class FittedClassifier:
    """A trained classifier.

    Attributes
    ----------
    name : str
        Model name.
    model : nn.Module
        The trained network (for InceptionTime the ensemble).
    architecture : Architecture
        The strategy that built and trained it.
    history : dict of str to list of float
        Training curves of the (first) network.
    info : dict
        Selected epoch or grid point, training seconds and samples seen.
    """

    name: str
    model: nn.Module
    architecture: Architecture
    history: dict[str, list[float]]
    info: dict

    def predict_proba(self, X: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
        """Class probabilities, ndarray of shape (n, n_classes), of ``X`` (n, channels, length)."""
        return self.architecture.predict_proba(
            self.model, np.asarray(X, dtype=np.float32), torch.device(device)
        )


class Architecture:
    """Strategy for one model: build, train, predict. Subclasses override what differs.

    Attributes
    ----------
    name : str
        Model name.
    recipe : TrainingRecipe
        The review's training recipe.
    """

    name = ""
    recipe: TrainingRecipe

    def build(self, in_channels: int, length: int, n_classes: int) -> nn.Module:
        """Build a fresh, untrained network for series of ``in_channels`` x ``length``."""
        raise NotImplementedError

    def fit(self, X: np.ndarray, y: np.ndarray, n_classes: int, opts: FitOptions) -> FittedClassifier:
        """Train on ``X`` (n, channels, length) with integer labels ``y`` (n,)."""
        net = self.build(X.shape[1], X.shape[2], n_classes)
        res = train_network(
            net,
            self.recipe,
            X,
            y,
            epochs=opts.epochs,
            batch_size=opts.batch_size,
            device=opts.device,
            monitor=opts.monitor,
            checkpoint_path=opts.checkpoint(self.name),
            resume=opts.resume,
            on_nonfinite=opts.on_nonfinite,
            description=opts.description,
        )
        info = {"best_epoch": res.best_epoch, "train_seconds": res.seconds, "samples_seen": res.samples_seen}
        return FittedClassifier(self.name, res.model, self, res.history, info)

    def predict_proba(self, model: nn.Module, X: np.ndarray, device: torch.device) -> np.ndarray:
        """Probabilities (n, n_classes) of ``X`` (n, channels, length)."""
        model.to(device)
        return scores_to_proba(self.recipe, predict_logits(model, X, device)).numpy()


class _Simple(Architecture):
    def __init__(self, name: str, factory) -> None:
        self.name, self.recipe, self._factory = name, RECIPES[name], factory

    def build(self, in_channels: int, length: int, n_classes: int) -> nn.Module:
        return self._factory(in_channels, length, n_classes)


def _validation_split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    n_val = min(n - 1, max(1, int(fraction * n))) if n > 1 else 0
    return perm[n_val:], perm[:n_val] if n_val else perm


class MCDCNNArchitecture(_Simple):
    """MCDCNN: keeps the epoch with the lowest loss on 33 % of the training set."""

    def __init__(self) -> None:
        super().__init__("mcdcnn", MCDCNN)

    def fit(self, X, y, n_classes, opts):
        """Train on 67 % of the data, selecting the epoch by the loss on the other 33 %."""
        tr, va = _validation_split(len(X), self.recipe.validation_fraction, opts.rng)
        xv, yv = torch.as_tensor(X[va]), torch.as_tensor(y[va], dtype=torch.long)

        def val_loss(model: nn.Module) -> float:
            logits = predict_logits(model, xv, opts.device)
            return float(nn.functional.cross_entropy(logits, yv))

        net = self.build(X.shape[1], X.shape[2], n_classes)
        res = train_network(
            net,
            self.recipe,
            X[tr],
            y[tr],
            epochs=opts.epochs,
            batch_size=opts.batch_size,
            device=opts.device,
            selection_score=val_loss,
            monitor=opts.monitor,
            checkpoint_path=opts.checkpoint(self.name),
            resume=opts.resume,
            on_nonfinite=opts.on_nonfinite,
            description=opts.description,
        )
        info = {"best_epoch": res.best_epoch, "train_seconds": res.seconds, "samples_seen": res.samples_seen}
        return FittedClassifier(self.name, res.model, self, res.history, info)


class _SlicedArchitecture(Architecture):
    """Networks trained on slices; a series' probabilities are its slices' mean."""

    def _slices(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def predict_proba(self, model, X, device):
        """Mean probabilities of each series' slices, shape (n, n_classes)."""
        slices, owner = self._slices(X)
        proba = super().predict_proba(model, slices, device)
        out = np.zeros((len(X), proba.shape[1]))
        np.add.at(out, owner, proba)
        return out / np.bincount(owner, minlength=len(X))[:, None]


class TLeNetArchitecture(_SlicedArchitecture):
    """t-LeNet: trained on warped and sliced copies, predicts by averaging over the same views.

    dl-4-tsc's vote pools the predictions of the whole test set (``np.unique``
    over all slices), a bug; here each series is voted on separately.
    """

    name, recipe = "tlenet", RECIPES["tlenet"]

    def build(self, in_channels, length, n_classes):
        """Build t-LeNet for slices of ``length`` steps."""
        return TLeNet(in_channels, length, n_classes)

    def _slices(self, X):
        return warp_and_slice(X, self._ratios, self._slice_length)

    def fit(self, X, y, n_classes, opts):
        """Train on the warped and sliced training set."""
        self._ratios, self._slice_length = tlenet_plan(X.shape[-1], len(X))
        slices, owner = self._slices(X)
        net = self.build(X.shape[1], self._slice_length, n_classes)
        res = train_network(
            net,
            self.recipe,
            slices,
            y[owner],
            epochs=opts.epochs,
            batch_size=opts.batch_size,
            device=opts.device,
            checkpoint_path=opts.checkpoint(self.name),
            resume=opts.resume,
            on_nonfinite=opts.on_nonfinite,
            description=opts.description,
        )
        info = {
            "best_epoch": res.best_epoch,
            "train_seconds": res.seconds,
            "samples_seen": res.samples_seen,
            "slice_length": self._slice_length,
        }
        return FittedClassifier(self.name, res.model, self, res.history, info)


class MCNNArchitecture(_SlicedArchitecture):
    """MCNN: grid search over (pool factor, filter size), each trained on slices of 80 % of the data."""

    name, recipe = "mcnn", RECIPES["mcnn"]

    def __init__(self, grid: tuple[tuple[int, float], ...] = MCNN_GRID) -> None:
        self.grid = grid

    def _slices(self, X):
        slices, k = window_slices(X, self._slice_length)
        return slices, np.repeat(np.arange(len(X)), k)

    def fit(self, X, y, n_classes, opts):
        """Search the grid on a 20 % validation split; keep the lowest voted validation error."""
        length = X.shape[-1]
        self._slice_length = max(1, int(length * mcnn_slice_ratio(length)))
        tr, va = _validation_split(len(X), self.recipe.validation_fraction, opts.rng)
        slices, owner = self._slices(X[tr])
        k = len(slices) // len(tr)
        # dl-4-tsc: 10 batches per epoch, at most 256 slices each
        batch = opts.batch_size or max(1, min(256, len(slices) // 10))
        best = None
        for pool_factor, filter_size in self.grid:
            net = MCNN(X.shape[1], self._slice_length, n_classes, length, pool_factor, filter_size)

            def val_error(model: nn.Module) -> float:
                return float(np.mean(self.predict_proba(model, X[va], opts.device).argmax(1) != y[va]))

            tag = f"mcnn-p{pool_factor}-f{filter_size}"
            res = train_network(
                net,
                self.recipe,
                slices,
                y[tr][owner],
                epochs=opts.epochs,
                batch_size=batch,
                device=opts.device,
                selection_score=val_error,
                checkpoint_path=opts.checkpoint(tag),
                resume=opts.resume,
                on_nonfinite=opts.on_nonfinite,
                description=f"{opts.description} {tag}",
            )
            score = min(res.history["selection_score"])
            if best is None or score < best[0]:
                best = (score, res, pool_factor, filter_size)
        score, res, pool_factor, filter_size = best
        info = {
            "best_epoch": res.best_epoch,
            "pool_factor": pool_factor,
            "filter_size": filter_size,
            "validation_error": score,
            "slices_per_case": k,
        }
        return FittedClassifier(self.name, res.model, self, res.history, info)


class TWIESNArchitecture(Architecture):
    """TWIESN: reservoir grid search with ridge read-outs (no gradient training)."""

    name = "twiesn"
    recipe = TrainingRecipe("adam", 0.0, 1, 1)  # unused: read-outs are solved in closed form

    def fit(self, X, y, n_classes, opts):
        """Search the reservoir grid (:func:`~sciprob.learning.tsc.twiesn.fit_twiesn`)."""
        search = fit_twiesn(X, y, n_classes, rng=opts.rng, device=opts.device)
        info = {"config": search.config, "validation_accuracy": search.validation_accuracy}
        return FittedClassifier(self.name, search.model, self, {}, info)

    def predict_proba(self, model, X, device):
        """Softmax of the time-averaged ridge read-out, shape (n, n_classes)."""
        model.to(device)
        return torch.softmax(predict_logits(model, X, device), -1).numpy()


class InceptionTimeArchitecture(Architecture):
    """InceptionTime: ``n_members`` Inception networks trained independently, probabilities averaged."""

    name, recipe = "inceptiontime", RECIPES["inception"]

    def __init__(self, n_members: int = 5) -> None:
        self.n_members = n_members

    def build(self, in_channels, length, n_classes):
        """Build one Inception network."""
        return InceptionNetwork(in_channels, n_classes)

    def fit(self, X, y, n_classes, opts):
        """Train ``n_members`` networks independently and wrap them in an ensemble."""
        members, histories, info = [], [], {"best_epoch": [], "train_seconds": 0.0, "samples_seen": 0}
        for m in range(self.n_members):
            res = train_network(
                self.build(X.shape[1], X.shape[2], n_classes),
                self.recipe,
                X,
                y,
                epochs=opts.epochs,
                batch_size=opts.batch_size,
                device=opts.device,
                monitor=opts.monitor if m == 0 else None,
                checkpoint_path=opts.checkpoint(f"inception-{m}"),
                resume=opts.resume,
                on_nonfinite=opts.on_nonfinite,
                description=f"{opts.description} member {m + 1}/{self.n_members}",
            )
            members.append(res.model)
            histories.append(res.history)
            info["best_epoch"].append(res.best_epoch)
            info["train_seconds"] += res.seconds
            info["samples_seen"] += res.samples_seen
        return FittedClassifier(self.name, InceptionTimeEnsemble(members), self, histories[0], info)


def _fcn(in_channels: int, length: int, n_classes: int) -> FCN:
    return FCN(in_channels, n_classes)


def _resnet(in_channels: int, length: int, n_classes: int) -> ResNet:
    return ResNet(in_channels, n_classes)


def _inception(in_channels: int, length: int, n_classes: int) -> InceptionNetwork:
    return InceptionNetwork(in_channels, n_classes)


def get_architecture(name: str) -> Architecture:
    """Return the strategy object for model ``name`` (see :data:`MODEL_NAMES`).

    Raises
    ------
    ValueError
        Unknown name; the message lists the known ones.
    """
    simple = {
        "mlp": MLP,
        "fcn": _fcn,
        "resnet": _resnet,
        "encoder": Encoder,
        "timecnn": TimeCNN,
        "inception": _inception,
    }
    if name in simple:
        return _Simple(name, simple[name])
    special = {
        "mcdcnn": MCDCNNArchitecture,
        "tlenet": TLeNetArchitecture,
        "mcnn": MCNNArchitecture,
        "twiesn": TWIESNArchitecture,
        "inceptiontime": InceptionTimeArchitecture,
    }
    if name not in special:
        raise ValueError(f"`model` must be one of {list(MODEL_NAMES)}, got {name!r}")
    return special[name]()


def fit_classifier(
    name: str, X: np.ndarray, y: np.ndarray, n_classes: int | None = None, **options
) -> FittedClassifier:
    """Train the review's classifier ``name`` on ``X`` (n, channels, length) and labels ``y`` (n,).

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    X : ndarray of shape (n, channels, length)
        Normalised training series.
    y : ndarray of shape (n,), int
        Class indices in ``[0, n_classes)``.
    n_classes : int, default=None
        Number of classes (default ``y.max() + 1``).
    **options
        Fields of :class:`FitOptions` (``epochs``, ``device``, ``checkpoint_dir``, ...).

    Returns
    -------
    FittedClassifier

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(8, 1, 16)).astype("float32")
    >>> clf = fit_classifier("fcn", X, np.arange(8) % 2, epochs=1)
    >>> clf.predict_proba(X).shape
    (8, 2)
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise ValueError(f"`X` must have shape (n, channels, length), got {X.shape}")
    y = np.asarray(y, dtype=np.int64)
    arch = get_architecture(name)
    opts = FitOptions(**options)
    opts.device = torch.device(opts.device)
    return arch.fit(X, y, int(n_classes or y.max() + 1), replace(opts))
