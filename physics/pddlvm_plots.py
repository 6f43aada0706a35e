"""Figures of the PDDLVM experiments: forward bands, inverse fields, ELBO.

Figures are built as :class:`matplotlib.figure.Figure` objects directly, which
needs no backend and changes no global matplotlib state; matplotlib is imported
inside the functions.
"""

from __future__ import annotations

import numpy as np
import torch

from sciprob.physics.residual import DiscreteProblem


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _figure(figsize: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _triangulation(problem: DiscreteProblem):
    from matplotlib.tri import Triangulation

    xy = _np(problem.dof_coordinates)
    return Triangulation(xy[:, 0], xy[:, 1], problem.operator.cell_dofs.cpu().numpy())


def plot_forward(problem: DiscreteProblem, u_fem: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
    """FEM solutions vs predictive means with ±2σ bands.

    Parameters
    ----------
    problem : DiscreteProblem
    u_fem, mean, std : Tensor of shape (k, n_dofs)

    Returns
    -------
    matplotlib.figure.Figure
        1D: one panel per case. 2D: the midline ``y = 1/2`` of each case, and
        FEM / mean / |error| / σ maps of the first case.
    """
    x = _np(problem.dof_coordinates)
    u_fem, mean, std = _np(u_fem), _np(mean), _np(std)
    k = u_fem.shape[0]
    if x.shape[1] == 1:
        fig = _figure((4 * k, 3.2))
        axes = fig.subplots(1, k, squeeze=False)
        order = np.argsort(x[:, 0])
        for i, ax in enumerate(axes[0]):
            xs = x[order, 0]
            ax.fill_between(
                xs, (mean - 2 * std)[i, order], (mean + 2 * std)[i, order], alpha=0.3, label="±2σ"
            )
            ax.plot(xs, mean[i, order], "C0-", label="PDDLVM mean")
            ax.plot(xs, u_fem[i, order], "k.", ms=4, label="FEM")
            ax.set_xlabel("x")
            ax.set_title(f"test case {i}")
        axes[0, 0].set_ylabel("u")
        axes[0, 0].legend(fontsize=8)
        return fig
    fig = _figure((4 * max(k, 4), 6.5))
    axes = fig.subplots(2, max(k, 4), squeeze=False)
    y_mid = x[np.argmin(np.abs(x[:, 1] - 0.5 * (x[:, 1].min() + x[:, 1].max()))), 1]
    line = np.where(np.abs(x[:, 1] - y_mid) < 1e-8)[0]
    line = line[np.argsort(x[line, 0])]
    for i in range(k):
        ax = axes[0, i]
        xs = x[line, 0]
        ax.fill_between(xs, (mean - 2 * std)[i, line], (mean + 2 * std)[i, line], alpha=0.3, label="±2σ")
        ax.plot(xs, mean[i, line], "C0-", label="PDDLVM mean")
        ax.plot(xs, u_fem[i, line], "k.", ms=3, label="FEM")
        ax.set_title(f"case {i}, midline y = {x[line[0], 1]:.2f}")
    axes[0, 0].legend(fontsize=8)
    for ax in axes[0, k:]:
        ax.axis("off")
    tri = _triangulation(problem)
    panels = [("FEM", u_fem[0]), ("mean", mean[0]), ("|error|", np.abs(u_fem[0] - mean[0])), ("σ", std[0])]
    for ax, (title, values) in zip(axes[1], panels, strict=False):
        im = ax.tripcolor(tri, values, shading="gouraud")
        fig.colorbar(im, ax=ax)
        ax.set_title(f"case 0: {title}")
        ax.set_aspect("equal")
    for ax in axes[1, len(panels) :]:
        ax.axis("off")
    return fig


def plot_inverse(
    problem: DiscreteProblem, kappa_true: torch.Tensor, kappa_pred: torch.Tensor, kappa_samples: torch.Tensor
):
    """Diffusivity recovered by the inverse map.

    Parameters
    ----------
    problem : DiscreteProblem
    kappa_true, kappa_pred : Tensor of shape (k, n_cells)
        Truth and the field of the inverse map's mean parameters.
    kappa_samples : Tensor of shape (n_samples, k, n_cells)
        Fields of parameter samples from the inverse map (for the 95% band).

    Returns
    -------
    matplotlib.figure.Figure
    """
    kt, kp, ks = _np(kappa_true), _np(kappa_pred), _np(kappa_samples)
    mid = _np(problem.coefficients.cell_midpoints)
    k = kt.shape[0]
    if mid.shape[1] == 1:
        order = np.argsort(mid[:, 0])
        lo, hi = np.percentile(ks, [2.5, 97.5], axis=0)
        fig = _figure((4 * k, 3.2))
        axes = fig.subplots(1, k, squeeze=False)
        for i, ax in enumerate(axes[0]):
            xs = mid[order, 0]
            ax.fill_between(xs, lo[i, order], hi[i, order], alpha=0.3, label="95% band")
            ax.plot(xs, kp[i, order], "C1-", label="inverse mean")
            ax.plot(xs, kt[i, order], "k--", label="truth")
            ax.set_xlabel("x")
            ax.set_title(f"test case {i}")
        axes[0, 0].set_ylabel("kappa")
        axes[0, 0].legend(fontsize=8)
        return fig
    tri = _triangulation(problem)
    fig = _figure((11, 3.3 * k))
    axes = fig.subplots(k, 3, squeeze=False)
    for i in range(k):
        vmin, vmax = kt[i].min(), kt[i].max()
        for ax, (title, values) in zip(
            axes[i],
            [("true kappa", kt[i]), ("inverse-map kappa", kp[i]), ("|error|", np.abs(kt[i] - kp[i]))],
            strict=True,
        ):
            lim = {} if title == "|error|" else {"vmin": vmin, "vmax": vmax}
            im = ax.tripcolor(tri, facecolors=values, **lim)
            fig.colorbar(im, ax=ax)
            ax.set_title(f"case {i}: {title}")
            ax.set_aspect("equal")
    return fig


def plot_elbo(losses: list[float]):
    """ELBO (= -loss) per step with a running mean, symmetric-log scale.

    Parameters
    ----------
    losses : list of float
        SVI losses.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure((6, 3.6))
    ax = fig.subplots()
    elbo = -np.asarray(losses, dtype=float)
    if elbo.size:
        ax.plot(np.arange(1, elbo.size + 1), elbo, alpha=0.3, lw=0.6, label="ELBO")
        w = max(1, elbo.size // 50)
        smooth = np.convolve(elbo, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(w, elbo.size + 1), smooth, lw=1.5, label=f"running mean ({w})")
    ax.set_yscale("symlog")
    ax.set_xlabel("step")
    ax.set_ylabel("ELBO")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def plot_shell(
    coordinates: np.ndarray, u_fem: np.ndarray, mean: np.ndarray, std: np.ndarray, component: int = 2
):
    """Deformed 3D shell (nodes as points) coloured by the FEM, the predicted mean and σ of one component.

    Parameters
    ----------
    coordinates : ndarray of shape (n_nodes, 3)
        Node positions.
    u_fem, mean, std : ndarray of shape (n_nodes, 3)
        FEM displacement, predictive mean and standard deviation per node and component.
    component : int, default=2
        Component shown in colour (2: vertical).

    Returns
    -------
    matplotlib.figure.Figure
        Three 3D panels on the FEM-deformed geometry (displacements magnified so that
        the largest is 10 % of the shell's size).
    """
    fig = _figure((15, 4.6))
    size = np.ptp(coordinates, axis=0).max()
    scale = 0.1 * size / max(np.abs(u_fem).max(), 1e-300)
    panels = [("FEM", u_fem, u_fem[:, component]), ("PDDLVM mean", mean, mean[:, component]),
              ("PDDLVM σ", mean, std[:, component])]  # fmt: skip
    lim = (
        min(u_fem[:, component].min(), mean[:, component].min()),
        max(u_fem[:, component].max(), mean[:, component].max()),
    )
    for k, (title, disp, colour) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1, projection="3d")
        x = coordinates + scale * disp
        kw = {"vmin": lim[0], "vmax": lim[1]} if k < 2 else {}
        im = ax.scatter(x[:, 0], x[:, 1], x[:, 2], c=colour, s=6, cmap="viridis", depthshade=False, **kw)
        fig.colorbar(im, ax=ax, shrink=0.55, pad=0.12)
        ax.set_title(f"{title}: u_{'xyz'[component]} (deformed ×{scale:.3g})", fontsize=9)
        ax.set_box_aspect(np.ptp(x, axis=0) + 1e-9)
        ax.view_init(elev=28, azim=-58)
        ax.tick_params(labelsize=6, pad=0)
    return fig


def plot_coverage(levels: np.ndarray, curves: dict[str, np.ndarray]):
    """Calibration curves: empirical coverage of central Gaussian intervals against their nominal level.

    Parameters
    ----------
    levels : ndarray of shape (k,)
        Nominal levels in (0, 1).
    curves : dict of str to ndarray of shape (k,)
        Label -> fraction of FEM values inside the intervals (e.g. before and after calibration).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure((4.2, 4.0))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
    for label, coverage in curves.items():
        ax.plot(levels, coverage, "o-", ms=3, label=label)
    ax.set_xlabel("nominal level")
    ax.set_ylabel("empirical coverage of FEM values")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
