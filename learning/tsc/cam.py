r"""Class activation maps (Zhou et al. 2016; Wang et al. 2017) for the GAP networks.

For a network whose last convolution gives feature maps ``A_k(t)`` that are
averaged over time and fed to a linear layer with weights ``w_{c,k}``, the
contribution of time step ``t`` to class ``c`` is

.. math:: \mathrm{CAM}_c(t) = \sum_k w_{c,k} A_k(t),

and ``mean_t CAM_c(t) + b_c`` is the logit of class ``c``. FCN, ResNet and
InceptionTime (each member, averaged) qualify.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sciprob.learning.tsc.inception import InceptionTimeEnsemble


def _single_cam(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if not (hasattr(model, "features") and isinstance(getattr(model, "head", None), nn.Linear)):
        raise TypeError(
            f"class activation maps need a GAP network with `features` and a linear `head` "
            f"(FCN, ResNet, InceptionNetwork, InceptionTimeEnsemble), got {type(model).__name__}"
        )
    feats = model.features(x)  # (n, K, L)
    weights = model.head.weight[target]  # (n, K)
    return torch.einsum("nk,nkl->nl", weights, feats)


@torch.no_grad()
def class_activation_map(
    model: nn.Module,
    X: np.ndarray,
    target: np.ndarray | int | None = None,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """CAM of each series for its target class.

    Parameters
    ----------
    model : nn.Module
        FCN, ResNet, InceptionNetwork or InceptionTimeEnsemble.
    X : ndarray of shape (n, channels, length)
        Normalised series.
    target : int or ndarray of shape (n,), default=None
        Class index per series; default the predicted class.
    device : torch.device or str, default="cpu"
        Where to compute.

    Returns
    -------
    ndarray of shape (n, length)
        ``CAM_target(t)``; its time average plus the bias is the target logit.

    Raises
    ------
    TypeError
        The model has no GAP head.
    """
    model.eval().to(device)
    x = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
    if target is None:
        target_t = model(x).argmax(-1)
    else:
        target_t = torch.as_tensor(
            np.broadcast_to(np.asarray(target), (len(x),)).copy(), device=device
        ).long()
    members = list(model.members) if isinstance(model, InceptionTimeEnsemble) else [model]
    cams = torch.stack([_single_cam(m, x, target_t) for m in members]).mean(0)
    return cams.cpu().numpy()


def plot_cam(ax, series: np.ndarray, cam: np.ndarray, title: str = ""):
    """Draw one series coloured by its (min-max scaled) CAM, as in the review's figures.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Target axes.
    series : ndarray of shape (length,)
        One channel of one series.
    cam : ndarray of shape (length,)
        Its class activation map.
    title : str, default=""
        Axes title.

    Returns
    -------
    matplotlib.collections.PathCollection
        The coloured points (for a colour bar).
    """
    span = cam.max() - cam.min()
    scaled = (cam - cam.min()) / span if span > 0 else np.zeros_like(cam)
    t = np.arange(len(series))
    ax.plot(t, series, color="0.7", lw=0.8, zorder=1)
    points = ax.scatter(t, series, c=scaled, cmap="jet", s=12, vmin=0, vmax=1, zorder=2)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("time step")
    return points
