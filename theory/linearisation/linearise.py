r"""The first-order Taylor model of a network around a linearisation point.

:func:`linearise` wraps any :class:`torch.nn.Module` ``f(x; θ)`` into

.. math::

    f_{\mathrm{lin}}(x; θ) = f(x; \tilde θ) + J(x; \tilde θ)\,(θ - \tilde θ),
    \qquad J(x; \tilde θ) = \partial_θ f(x; θ)\big|_{θ = \tilde θ},

computed with :func:`torch.func.jvp` over :func:`torch.func.functional_call`
(one forward pass and one Jacobian-vector product per call, no stored
Jacobian), as ``neural_tangents.linearize`` does [1]_. The trainable parameters
``θ`` are the wrapped module's own parameters, so any ``torch.optim`` optimiser
built over ``model.parameters()`` trains the linearised model; the point
``θ̃`` is held in buffers and moved with :meth:`LinearisedModel.relinearise`.

References
----------
.. [1] Novak et al., "Neural Tangents", ICLR 2020; ``neural_tangents/_src/empirical.py``.
.. [2] Goldwaser & Ge, "Learning Deep Neural Networks by Iterative
   Linearisation", NeurIPS 2022 OPT workshop, arXiv:2211.12345.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call, jvp

__all__ = ["LinearisedModel", "check_linearisable", "linearise", "trainable_parameters"]

_POINT_PREFIX = "point__"


def trainable_parameters(model: nn.Module) -> dict[str, Tensor]:
    """Return the parameters ``θ`` a linearisation differentiates (``requires_grad``).

    Parameters
    ----------
    model : nn.Module
        The network.

    Returns
    -------
    dict of str to Tensor
        ``name -> parameter`` (the live parameters, not copies). Frozen
        parameters are constants of ``f`` and are left out.
    """
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def check_linearisable(model: nn.Module) -> None:
    """Reject modules whose output is not a per-example function of ``(x, θ)``.

    BatchNorm in training mode normalises with the statistics of the current
    batch and writes its running statistics in place during the forward pass.
    Then ``f(x_i; θ)`` depends on the other examples of the batch and on hidden
    state outside ``θ``, so neither the Taylor model nor a per-example
    empirical NTK is defined. In evaluation mode BatchNorm uses its fixed
    running statistics and is an affine map, which is supported.

    Parameters
    ----------
    model : nn.Module
        The network.

    Raises
    ------
    NotImplementedError
        If a BatchNorm layer is in training mode; the message names it and
        says how to fix it.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training:
            raise NotImplementedError(
                f"`model` has BatchNorm layer {name or '<root>'!r} ({type(module).__name__}) in "
                "training mode: it normalises each example with the statistics of the whole batch "
                "and updates its running statistics in place, so f(x; θ) is not a function of one "
                "example and θ alone and its linearisation / empirical NTK is not defined. Call "
                "`model.eval()` on the BatchNorm layers (they then apply their fixed running "
                "statistics, an affine map), or replace them with GroupNorm or LayerNorm."
            )


def _point_key(name: str) -> str:
    return _POINT_PREFIX + name.replace(".", "__")


class LinearisedModel(nn.Module):
    r"""A network replaced by its first-order Taylor expansion around ``θ̃``.

    .. math::

        f_{\mathrm{lin}}(x; θ) = f(x; \tilde θ) + J(x; \tilde θ)(θ - \tilde θ)

    Parameters
    ----------
    model : nn.Module
        The network ``f``; its parameters (those with ``requires_grad``) are
        the trainable ``θ`` of the linearised model (shared, not copied).
    point : mapping of str to Tensor, default=None
        The linearisation point ``θ̃`` by parameter name; default is the
        model's current parameters.

    Attributes
    ----------
    model : nn.Module
        The wrapped network.
    parameter_names : tuple of str
        Names of the linearised parameters.

    Raises
    ------
    TypeError
        ``model`` is not an ``nn.Module`` or ``point`` holds non-tensors.
    ValueError
        ``point`` misses or adds names, has a wrong shape, or is not finite.
    NotImplementedError
        ``model`` has a BatchNorm layer in training mode (see
        :func:`check_linearisable`).

    Notes
    -----
    Cost per call: one forward pass with forward-mode tangents (about two to
    three forward passes); the backward pass runs through the JVP
    (reverse-over-forward). The output must be a single tensor.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
    >>> lin = linearise(net)
    >>> x = torch.randn(5, 3)
    >>> torch.allclose(lin(x), net(x))   # at θ = θ̃ the two agree
    True
    >>> opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    >>> lin(x).square().sum().backward(); opt.step()
    >>> lin.relinearise()                  # move θ̃ to the current θ
    """

    def __init__(self, model: nn.Module, point: Mapping[str, Tensor] | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
        check_linearisable(model)
        super().__init__()
        self.model = model
        theta = trainable_parameters(model)
        if not theta:
            raise ValueError("`model` has no parameters with requires_grad=True to linearise")
        self.parameter_names = tuple(theta)
        if point is None:
            point = {n: p.detach() for n, p in theta.items()}
        self._validate_point(point)
        for name in self.parameter_names:
            self.register_buffer(_point_key(name), point[name].detach().clone().to(theta[name]))

    def _validate_point(self, point: Mapping[str, Tensor]) -> None:
        if not isinstance(point, Mapping):
            raise TypeError(f"`point` must map parameter names to tensors, got {type(point).__name__}")
        theta = trainable_parameters(self.model)
        missing, extra = set(theta) - set(point), set(point) - set(theta)
        if missing or extra:
            raise ValueError(
                f"`point` must name exactly the trainable parameters of `model`; missing "
                f"{sorted(missing)}, unknown {sorted(extra)}"
            )
        for name, value in point.items():
            if not isinstance(value, Tensor):
                raise TypeError(f"`point[{name!r}]` must be a Tensor, got {type(value).__name__}")
            if value.shape != theta[name].shape:
                raise ValueError(
                    f"`point[{name!r}]` has shape {tuple(value.shape)}, the parameter has "
                    f"{tuple(theta[name].shape)}"
                )
            if not torch.isfinite(value).all():
                raise ValueError(f"`point[{name!r}]` has non-finite entries")

    def linearisation_point(self) -> dict[str, Tensor]:
        """Return the point ``θ̃`` as ``name -> tensor`` (the stored buffers; do not modify)."""
        return {name: getattr(self, _point_key(name)) for name in self.parameter_names}

    @torch.no_grad()
    def relinearise(self, point: Mapping[str, Tensor] | None = None) -> None:
        """Move the linearisation point: ``θ̃ ← θ`` (or ``θ̃ ← point``).

        ``θ`` itself is not changed, so optimiser state (momentum, Adam
        moments) carries over.

        Parameters
        ----------
        point : mapping of str to Tensor, default=None
            New point; default is the current parameters.
        """
        theta = trainable_parameters(self.model)
        if point is None:
            point = theta
        else:
            self._validate_point(point)
        for name in self.parameter_names:
            getattr(self, _point_key(name)).copy_(point[name])

    def displacement(self) -> dict[str, Tensor]:
        """``θ − θ̃`` by parameter name (differentiable in ``θ``)."""
        point = self.linearisation_point()
        theta = trainable_parameters(self.model)
        return {name: theta[name] - point[name] for name in self.parameter_names}

    def proximal_term(self) -> Tensor:
        """``½‖θ − θ̃‖²``, the damping term of the Gauss–Newton view (a scalar tensor)."""
        return 0.5 * sum(d.square().sum() for d in self.displacement().values())

    def forward(self, *args: object, **kwargs: object) -> Tensor:
        """Evaluate ``f(x; θ̃) + J(x; θ̃)(θ − θ̃)``.

        Parameters
        ----------
        *args, **kwargs
            The inputs of the wrapped model, e.g. ``x : Tensor of shape (batch, ...)``.

        Returns
        -------
        Tensor
            Same shape as the wrapped model's output.
        """
        check_linearisable(self.model)
        point = self.linearisation_point()

        def f(params: dict[str, Tensor]) -> Tensor:
            out = functional_call(self.model, params, args, kwargs)
            if not isinstance(out, Tensor):
                raise TypeError(
                    f"linearised models need a single-tensor output, `model` returned {type(out).__name__}"
                )
            return out

        out, tangent_out = jvp(f, (point,), (self.displacement(),))
        return out + tangent_out


def linearise(model: nn.Module, params: Mapping[str, Tensor] | None = None) -> LinearisedModel:
    """Return the first-order Taylor model of ``model`` around ``params``.

    Parameters
    ----------
    model : nn.Module
        The network ``f(x; θ)``. Its trainable parameters become the
        parameters of the returned module (shared).
    params : mapping of str to Tensor, default=None
        Linearisation point ``θ̃`` by parameter name; default is the current
        parameters, so that initially ``f_lin = f``.

    Returns
    -------
    LinearisedModel
        ``f_lin(x; θ) = f(x; θ̃) + J(x; θ̃)(θ − θ̃)``; train it with any
        ``torch.optim`` optimiser over its (or the model's) parameters.

    See Also
    --------
    LinearisedModel : for the errors raised and the cost.
    """
    return LinearisedModel(model, params)
