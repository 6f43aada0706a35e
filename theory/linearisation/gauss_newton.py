r"""The damped Gauss–Newton step: iterative linearisation solved exactly.

For the squared loss ``½‖f(X; θ) − Y‖²`` one period of iterative linearised
training minimises the linearised loss around ``θ̃``. With a proximal damping
term ``(λ/2)‖θ − θ̃‖²`` the minimiser has the closed form

.. math::

    θ^\star = \tilde θ - (J^\top J + λ I)^{-1} J^\top r
             = \tilde θ - J^\top (J J^\top + λ I)^{-1} r,
    \qquad r = f(X; \tilde θ) - Y,

the Levenberg–Marquardt / damped Gauss–Newton step. ``J`` is the ``(N·O, P)``
Jacobian at ``θ̃``; the second form (push-through identity) solves in data
space with the full empirical NTK ``JJᵀ`` and is used when ``N·O < P``.
Gradient descent on the same linearised objective converges to ``θ*``; fewer
steps or a smaller learning rate act as extra damping. This link is stated in
the abstract of Goldwaser & Ge (arXiv:2211.12345); the formula is the standard
one, written out in ``shared/references/theory.md`` §1.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev

from sciprob.theory.linearisation.linearise import check_linearisable, trainable_parameters

__all__ = ["damped_gauss_newton_step"]


def damped_gauss_newton_step(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    damping: float,
    *,
    params: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Exact minimiser of the damped linearised squared loss around ``params``.

    Parameters
    ----------
    model : nn.Module
        Maps ``(N, ...)`` to outputs of the shape of ``y``.
    x : Tensor of shape (N, ...)
        Inputs (the whole batch: this is a full-batch step).
    y : Tensor of shape (N, O) or the model's output shape
        Regression targets.
    damping : float
        ``λ > 0``, the weight of ``(λ/2)‖θ − θ̃‖²``.
    params : mapping of str to Tensor, default=None
        The linearisation point ``θ̃``; default the model's parameters.

    Returns
    -------
    dict of str to Tensor
        ``θ*`` by parameter name (detached).

    Raises
    ------
    ValueError
        ``damping`` is not a positive finite number, or ``y`` does not match
        the model output's shape.

    Notes
    -----
    Cost: the ``N·O × P`` Jacobian (``N·O`` backward passes, vectorised) and a
    Cholesky solve of size ``min(N·O, P)``.
    """
    damping = float(damping)
    if not (damping > 0 and torch.isfinite(torch.tensor(damping))):
        raise ValueError(f"`damping` must be a positive finite number, got {damping!r}")
    check_linearisable(model)
    point = {n: p.detach() for n, p in trainable_parameters(model).items()}
    if params is not None:
        point.update({n: p.detach() for n, p in params.items()})

    def f(p: dict[str, Tensor]) -> Tensor:
        return functional_call(model, p, (x,))

    with torch.no_grad():
        out = f(point)
    if out.shape != y.shape:
        raise ValueError(f"`y` has shape {tuple(y.shape)}, the model outputs {tuple(out.shape)}")
    jac = jacrev(f)(point)
    names = list(point)
    j = torch.cat([jac[n].reshape(out.numel(), -1) for n in names], dim=1)  # (N·O, P)
    r = (out - y).reshape(-1)
    n_rows, n_params = j.shape
    if n_params <= n_rows:
        a = j.T @ j + damping * torch.eye(n_params, dtype=j.dtype, device=j.device)
        delta = torch.cholesky_solve((j.T @ r)[:, None], torch.linalg.cholesky(a))[:, 0]
    else:
        a = j @ j.T + damping * torch.eye(n_rows, dtype=j.dtype, device=j.device)
        delta = j.T @ torch.cholesky_solve(r[:, None], torch.linalg.cholesky(a))[:, 0]
    new, offset = {}, 0
    for n in names:
        size = point[n].numel()
        new[n] = (point[n] - delta[offset : offset + size].view_as(point[n])).detach()
        offset += size
    return new
