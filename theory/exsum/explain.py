"""Local explanations of any torch model through Captum, and FEU builders for tables and series.

Captum (``pip install captum``) is imported lazily. KernelSHAP and LIME sample perturbations with
torch's global generator, which the experiment engine seeds; Integrated Gradients and Saliency are
deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from sciprob.theory.exsum.data import FEUData

__all__ = ["ATTRIBUTION_METHODS", "explain", "series_feus", "tabular_feus"]

ATTRIBUTION_METHODS = ("integrated_gradients", "saliency", "kernel_shap", "lime")


def explain(
    model: nn.Module,
    inputs: np.ndarray | torch.Tensor,
    target: int | np.ndarray | None = None,
    method: Literal["integrated_gradients", "saliency", "kernel_shap", "lime"] = "integrated_gradients",
    baselines: float | np.ndarray | torch.Tensor = 0.0,
    n_samples: int = 200,
    n_steps: int = 50,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Attribute the ``target`` logit of ``model`` to each input feature with Captum.

    Parameters
    ----------
    model : nn.Module
        Maps a float tensor of shape (batch, ...) to logits of shape (batch, n_classes).
    inputs : ndarray or Tensor of shape (batch, ...)
        Instances to explain.
    target : int or ndarray of shape (batch,), default=None
        Class explained per instance; default the predicted class.
    method : {"integrated_gradients", "saliency", "kernel_shap", "lime"}, default="integrated_gradients"
        Captum's ``IntegratedGradients``, ``Saliency`` (absolute gradient), ``KernelShap`` or ``Lime``.
    baselines : float or array broadcastable to ``inputs``, default=0.0
        Reference input (IG, KernelSHAP, LIME).
    n_samples : int, default=200
        Perturbation samples for KernelSHAP and LIME (Captum's default is 25).
    n_steps : int, default=50
        Integration steps for IG.
    device : torch.device or str, default="cpu"

    Returns
    -------
    ndarray of shape of ``inputs``
        Attributions (logit units).

    Raises
    ------
    ValueError
        Unknown method, or non-finite inputs.
    """
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"`method` must be one of {ATTRIBUTION_METHODS}, got {method!r}.")
    try:
        import captum.attr as ca
    except ImportError as exc:  # pragma: no cover - captum is a dependency
        raise ImportError("explain() needs Captum: pip install captum") from exc
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32) if not torch.is_tensor(inputs) else inputs)
    x = x.to(device=device, dtype=torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError("`inputs` contains NaN or inf; clean the data before explaining it.")
    was_training = model.training
    model.eval().to(device)
    try:
        if target is None:
            with torch.no_grad():
                tgt = model(x).argmax(dim=-1)
        else:
            tgt = torch.as_tensor(
                np.broadcast_to(np.asarray(target), (x.shape[0],)).copy(), device=device
            ).long()
        base = torch.as_tensor(baselines, dtype=torch.float32, device=device)
        if base.ndim == 0:
            base = torch.full_like(x, float(base))
        if method == "integrated_gradients":
            attr = ca.IntegratedGradients(model).attribute(x, baselines=base, target=tgt, n_steps=n_steps)
        elif method == "saliency":
            attr = ca.Saliency(model).attribute(x.clone().requires_grad_(True), target=tgt, abs=True)
        else:  # one surrogate fit per example, as Captum recommends
            algo = ca.KernelShap(model) if method == "kernel_shap" else ca.Lime(model)
            attr = torch.cat(
                [
                    algo.attribute(
                        x[i : i + 1], baselines=base[i : i + 1], target=tgt[i : i + 1], n_samples=n_samples
                    )
                    for i in range(x.shape[0])
                ]
            )
    finally:
        model.train(was_training)
    return attr.detach().cpu().numpy().astype(np.float64)


def tabular_feus(
    X: np.ndarray,
    attributions: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    feature_names: Sequence[str] | None = None,
    feature_set: Sequence[str] = (),
    explained_class: int | np.ndarray = 0,
) -> FEUData:
    """One instance per row, one FEU per (feature, standardised value).

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Standardised inputs (z-scores).
    attributions : ndarray of shape (n_rows, n_features)
        Explanation of each feature.
    labels, predictions : ndarray of shape (n_rows,)
        True class and the model's probability of the explained class.
    feature_names : sequence of str, default=None
        Unit names; default ``"x0", "x1", ...``.
    feature_set : sequence of str, default=()
        Names flagged by the feature ``"in_set"`` (for rules on a group of features).
    explained_class : int or ndarray of shape (n_rows,), default=0

    Returns
    -------
    FEUData
        Features ``"value"`` (the z-score), ``"feature"`` (column index) and ``"in_set"``.
    """
    X = np.asarray(X, dtype=np.float64)
    A = np.asarray(attributions, dtype=np.float64)
    if X.ndim != 2 or A.shape != X.shape:
        raise ValueError(
            f"`X` and `attributions` must both have shape (n_rows, n_features), got {X.shape}, {A.shape}."
        )
    n_rows, n_feat = X.shape
    names = [f"x{j}" for j in range(n_feat)] if feature_names is None else list(map(str, feature_names))
    if len(names) != n_feat:
        raise ValueError(f"`feature_names` must have {n_feat} names, got {len(names)}.")
    flag = np.array([nm in set(feature_set) for nm in names], dtype=float)
    inst = np.repeat(np.arange(n_rows), n_feat)
    col = np.tile(np.arange(n_feat), n_rows)
    ec = np.broadcast_to(np.asarray(explained_class), (n_rows,))[inst]
    return FEUData(
        A.ravel(),
        inst,
        {"value": X.ravel(), "feature": col.astype(float), "in_set": flag[col]},
        np.asarray(labels)[inst],
        np.asarray(predictions, dtype=np.float64)[inst],
        [names[j] for j in col],
        ec,
    )


def series_feus(
    X: np.ndarray,
    explanations: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    stride: int = 1,
    normalise: bool = True,
    explained_class: int | np.ndarray = 0,
) -> FEUData:
    """One instance per series, one FEU per time step, with local shape features.

    Parameters
    ----------
    X : ndarray of shape (n_series, length)
        Univariate (z-normalised) series.
    explanations : ndarray of shape (n_series, length)
        Per-step explanation (e.g. a class activation map).
    labels, predictions : ndarray of shape (n_series,)
        True class and probability of the explained class.
    stride : int, default=1
        Keep every ``stride``-th step (fewer FEUs for long series).
    normalise : bool, default=True
        Divide each series' explanation by its maximum absolute value (CAMs differ in scale).
    explained_class : int or ndarray of shape (n_series,), default=0

    Returns
    -------
    FEUData
        Features ``"level"`` (the value), ``"slope"`` (central difference per step),
        ``"peak_distance"`` (|t - argmax x| / length, in [0, 1]) and ``"time"`` (t / length).
    """
    X = np.asarray(X, dtype=np.float64)
    E = np.asarray(explanations, dtype=np.float64)
    if X.ndim != 2 or E.shape != X.shape:
        raise ValueError(
            f"`X` and `explanations` must both have shape (n_series, length), got {X.shape}, {E.shape}."
        )
    if stride < 1:
        raise ValueError(f"`stride` must be >= 1, got {stride}.")
    n, length = X.shape
    if normalise:
        scale = np.abs(E).max(axis=1, keepdims=True)
        E = E / np.where(scale > 0, scale, 1.0)
    slope = np.gradient(X, axis=1)
    t = np.arange(length)
    peak = np.abs(t[None, :] - X.argmax(axis=1)[:, None]) / length
    keep = t[::stride]
    inst = np.repeat(np.arange(n), keep.size)
    ec = np.broadcast_to(np.asarray(explained_class), (n,))[inst]
    return FEUData(
        E[:, keep].ravel(),
        inst,
        {
            "level": X[:, keep].ravel(),
            "slope": slope[:, keep].ravel(),
            "peak_distance": peak[:, keep].ravel(),
            "time": np.tile(keep / length, n),
        },
        np.asarray(labels)[inst],
        np.asarray(predictions, dtype=np.float64)[inst],
        [f"t={s}" for s in np.tile(keep, n).tolist()],
        ec,
    )
