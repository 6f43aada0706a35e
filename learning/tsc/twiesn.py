r"""Time-warping invariant echo state network (Tanisaro & Heidemann 2016), as in dl-4-tsc.

A fixed random leaky reservoir reads the series,

.. math::

    h_t = (1 - \alpha) h_{t-1} + \alpha \tanh(W_{in} u_t + W h_{t-1}),

and a ridge regression maps ``[u_t, h_t]`` at **every** time step to the
one-hot label. A series' class scores are the read-out averaged over time.
``W_in`` is uniform in ``[-1, 1] / (2 s)`` (dl-4-tsc divides by the input
scale ``s``), ``W`` is sparse uniform in ``[-0.5, 0.5]`` rescaled to spectral
radius ``rho``; the leak rate is ``alpha = 0.1``. dl-4-tsc searches the four
reservoir configurations of :data:`TWIESN_CONFIGS` times the radii of
:data:`TWIESN_RHOS` on a 20 % validation split (:func:`fit_twiesn`).

Cost: ``O(n L N_x^2)`` for the states and ``O(n L (N_x + C)^2)`` for the read-out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

#: (reservoir size, connectivity, input scale, ridge lambda) of dl-4-tsc.
TWIESN_CONFIGS: tuple[tuple[int, float, float, float], ...] = (
    (250, 0.5, 1.0, 0.0),
    (250, 0.5, 2.0, 0.05),
    (500, 0.1, 2.0, 0.05),
    (800, 0.1, 2.0, 0.05),
)
#: Spectral radii searched by dl-4-tsc.
TWIESN_RHOS: tuple[float, ...] = (0.55, 0.9, 2.0, 5.0)


class TWIESN(nn.Module):
    """Echo state network with a per-time-step ridge read-out.

    Parameters
    ----------
    in_channels : int
        Number of variables ``C``.
    n_classes : int
        Number of classes.
    reservoir : int, default=250
        Reservoir size ``N_x``.
    connectivity : float, default=0.5
        Density of ``W``.
    input_scale : float, default=1.0
        ``s`` in ``W_in ~ U[-1, 1] / (2 s)``.
    rho : float, default=0.9
        Spectral radius of ``W``.
    ridge : float, default=0.0
        Ridge penalty ``lambda`` of the read-out.
    leak : float, default=0.1
        Leak rate ``alpha``.
    rng : numpy.random.Generator, default=None
        Source of the reservoir weights.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        reservoir: int = 250,
        connectivity: float = 0.5,
        input_scale: float = 1.0,
        rho: float = 0.9,
        ridge: float = 0.0,
        leak: float = 0.1,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng()
        w_in = (2.0 * rng.random((reservoir, in_channels)) - 1.0) / (2.0 * input_scale)
        w = rng.random((reservoir, reservoir)) * (rng.random((reservoir, reservoir)) < connectivity)
        w[w > 0] -= 0.5
        radius = np.max(np.abs(np.linalg.eigvals(w)))
        w = w * (rho / radius) if radius > 0 else w
        self.leak, self.ridge = float(leak), float(ridge)
        self.register_buffer("w_in", torch.as_tensor(w_in, dtype=torch.float64))
        self.register_buffer("w", torch.as_tensor(w, dtype=torch.float64))
        self.register_buffer("w_out", torch.zeros(in_channels + reservoir, n_classes, dtype=torch.float64))
        self.register_buffer("b_out", torch.zeros(n_classes, dtype=torch.float64))

    def states(self, x: Tensor) -> Tensor:
        """Features ``[u_t, h_t]`` of shape (batch, length, channels + reservoir)."""
        x = x.to(self.w.dtype)
        h = x.new_zeros(x.shape[0], self.w.shape[0])
        out = []
        for t in range(x.shape[-1]):
            h = (1 - self.leak) * h + self.leak * torch.tanh(x[..., t] @ self.w_in.T + h @ self.w.T)
            out.append(torch.cat([x[..., t], h], dim=-1))
        return torch.stack(out, dim=1)

    @torch.no_grad()
    def fit_readout(self, x: Tensor, y: Tensor) -> TWIESN:
        """Fit the ridge read-out on every time step of ``x`` (n, channels, length) with labels ``y`` (n,)."""
        feats = self.states(x)
        n, length, d = feats.shape
        F = feats.reshape(n * length, d)
        Y = nn.functional.one_hot(y.long(), self.w_out.shape[1]).to(F.dtype).repeat_interleave(length, dim=0)
        f_mean, y_mean = F.mean(0), Y.mean(0)
        Fc, Yc = F - f_mean, Y - y_mean
        if self.ridge > 0:
            gram = Fc.T @ Fc + self.ridge * torch.eye(d, dtype=F.dtype, device=F.device)
            w_out = torch.linalg.solve(gram, Fc.T @ Yc)
        else:  # minimum-norm least squares, as sklearn's Ridge(alpha=0)
            w_out = torch.linalg.lstsq(Fc.cpu(), Yc.cpu(), driver="gelsd").solution.to(F.device)
        self.w_out.copy_(w_out)
        self.b_out.copy_(y_mean - f_mean @ w_out)
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Time-averaged read-out scores, shape (batch, n_classes), used as logits."""
        return (self.states(x) @ self.w_out + self.b_out).mean(dim=1).float()


@dataclass(frozen=True)
class TWIESNSearch:
    """Result of :func:`fit_twiesn`.

    Attributes
    ----------
    model : TWIESN
        The best reservoir with its read-out refitted on the training part.
    config : tuple
        ``(reservoir, connectivity, input_scale, ridge, rho)`` of the best model.
    validation_accuracy : float
        Its accuracy on the validation split.
    """

    model: TWIESN
    config: tuple[int, float, float, float, float]
    validation_accuracy: float


def fit_twiesn(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    rng: np.random.Generator,
    configs: tuple[tuple[int, float, float, float], ...] = TWIESN_CONFIGS,
    rhos: tuple[float, ...] = TWIESN_RHOS,
    device: torch.device | str = "cpu",
) -> TWIESNSearch:
    """Grid search of dl-4-tsc: fit each reservoir on 80 % of the data, keep the best on the other 20 %.

    Parameters
    ----------
    X : ndarray of shape (n, channels, length)
        Training series.
    y : ndarray of shape (n,), int
        Class indices.
    n_classes : int
        Number of classes.
    rng : numpy.random.Generator
        Split and reservoir randomness.
    configs, rhos : tuple
        The grid (default: the review's).
    device : torch.device or str, default="cpu"
        Where to compute.

    Returns
    -------
    TWIESNSearch
    """
    perm = rng.permutation(len(X))
    n_val = max(1, int(0.2 * len(X))) if len(X) > 1 else 0
    val, tr = perm[:n_val], perm[n_val:] if n_val else perm
    if n_val == 0:
        val = tr
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float64), device=device)
    yt = torch.as_tensor(np.asarray(y), device=device)
    if len(X) > 1000:  # dl-4-tsc limits the search on big data sets
        configs = tuple((100, c, s, lam) for _, c, s, lam in configs[:3])
    best: TWIESNSearch | None = None
    for reservoir, connectivity, scale, lam in configs:
        for rho in rhos:
            model = TWIESN(Xt.shape[1], n_classes, reservoir, connectivity, scale, rho, lam, rng=rng).to(
                device
            )
            model.fit_readout(Xt[tr], yt[tr])
            with torch.no_grad():
                acc = float((model(Xt[val]).argmax(-1) == yt[val]).double().mean())
            if best is None or acc > best.validation_accuracy:
                best = TWIESNSearch(model, (reservoir, connectivity, scale, lam, rho), acc)
    assert best is not None
    return best
