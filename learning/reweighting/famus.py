r"""FaMUS: layer-wise gradient samplers that choose which meta-gradient terms are computed.

The exact meta-gradient decomposes over layers :math:`l` (Xu et al. 2021, Eq. 6),

.. math::

    g \propto -\frac{\alpha}{nm}\sum_l\sum_i\Big(\sum_j G_{ijl}\Big)
    \frac{\partial V_i}{\partial\theta},\qquad
    G_{ijl} = \Big(\frac{\partial L_j^{val}}{\partial\hat w_l}\Big)^\top
    \frac{\partial L_i^{tra}}{\partial w_l}.

FaMUS keeps only the layers whose sampler says :math:`r_l = 1`: the virtual
step of the other layers is taken with a detached gradient, so the second-order
backward skips them (the released ``grad_operator_layer.py`` does the same).
Each sampler is ``FC -> PReLU -> FC -> straight-through Gumbel-softmax`` on the
average-pooled weighted training gradient of its layer, and the samplers and
the meta-model are trained on

.. math::

    L = L_c + \lambda_1\Big(\sum_l r_l - K\Big)^2 + \lambda_2 L_g,

with :math:`K = 4`, :math:`\lambda_1 = \lambda_2 = 0.1`; :math:`L_c` is the
clean-set loss after the virtual step and :math:`L_g` matches the last layer's
weighted training gradient to its clean-set gradient after the virtual step
(as released: the mean squared difference of the per-row mean and standard
deviation).

Gating follows the released code: a kept layer steps with ``act * grad`` and a
rejected one with ``(1 - act) * grad.detach()``; ``act`` is the hard 0/1
sample, so the step's value is always the exact virtual step and the samplers
receive :math:`\partial L_c/\partial r_l` through ``act``.

References
----------
.. [1] Xu, Zhu, Jiang, Yang, "Faster meta update strategy for noise-robust deep
   learning", CVPR 2021 (code ``youjiangxu/FaMUS``).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ["FaMUS", "Layer", "LayerSampler", "famus_layers", "gradient_matching_loss", "layer_count_loss"]


class Layer(NamedTuple):
    """One layer: a module with its own trainable parameters.

    Attributes
    ----------
    name : str
        Module name in ``model.named_modules()``.
    params : tuple of str
        Full names of its trainable parameters.
    out_features : int
        Leading dimension of its first parameter (the sampler's input size).
    """

    name: str
    params: tuple[str, ...]
    out_features: int


def famus_layers(model: nn.Module) -> list[Layer]:
    """List the layers of ``model`` in parameter order (modules owning trainable parameters).

    Raises
    ------
    ValueError
        If ``model`` has no trainable parameter.
    """
    layers = []
    for mod_name, module in model.named_modules():
        own = [(n, p) for n, p in module.named_parameters(recurse=False) if p.requires_grad]
        if own:
            prefix = f"{mod_name}." if mod_name else ""
            layers.append(Layer(mod_name, tuple(prefix + n for n, _ in own), int(own[0][1].shape[0])))
    if not layers:
        raise ValueError(
            f"`model` ({type(model).__name__}) has no trainable parameters; "
            "give a classifier with parameters that require grad"
        )
    return layers


def pooled_gradient(grad: Tensor) -> Tensor:
    """Average-pool a layer gradient over all but its output dimension and z-normalise it, shape (out,)."""
    x = grad.reshape(grad.shape[0], -1).mean(dim=1) if grad.dim() > 1 else grad
    std = x.std() if x.numel() > 1 else x.new_zeros(())
    return (x - x.mean()) / std if float(std) > 0 else torch.zeros_like(x)


def layer_count_loss(acts: Tensor, k: int, weight: float = 0.1) -> Tensor:
    r""":math:`\lambda_1 (\sum_l r_l - K)^2` of the sampled gates ``acts`` (L,)."""
    return weight * (acts.sum() - k) ** 2


def gradient_matching_loss(g_train: Tensor, g_val: Tensor, weight: float = 0.1) -> Tensor:
    r""":math:`\lambda_2 L_g`: MSE of the per-row mean and std of two last-layer gradients (out, ...)."""
    a, b = g_train.reshape(g_train.shape[0], -1), g_val.reshape(g_val.shape[0], -1)
    stats_a = torch.cat([a.mean(1), a.std(1, unbiased=False)])
    stats_b = torch.cat([b.mean(1), b.std(1, unbiased=False)])
    return weight * torch.mean((stats_a - stats_b) ** 2)


class LayerSampler(nn.Module):
    """Gradient sampler of one layer: ``FC -> PReLU -> FC(2)`` logits of (reject, keep).

    Parameters
    ----------
    in_features : int
        The layer's output dimension (length of its pooled gradient).
    hidden : int, default=128
        Hidden units (the paper's 128).
    """

    def __init__(self, in_features: int, hidden: int = 128) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.act = nn.PReLU()
        self.fc2 = nn.Linear(hidden, 2)

    def forward(self, features: Tensor) -> Tensor:
        """Logits, shape (2,), of pooled gradient ``features`` (in_features,)."""
        return self.fc2(self.act(self.fc1(features)))


class FaMUS(nn.Module):
    r"""The FaMUS samplers of one model, their optimiser and their loss terms.

    Parameters
    ----------
    model : nn.Module
        The classifier whose layers are sampled (read only, for the layer list).
    k : int, default=4
        Target number of sampled layers :math:`K`.
    lambda_count : float, default=0.1
        :math:`\lambda_1`.
    lambda_grad : float, default=0.1
        :math:`\lambda_2`.
    hidden : int, default=128
        Hidden units of each sampler.
    temperature : float, default=5.0
        Gumbel-softmax temperature (the released code's 5).
    scope : {"all", "last"}, default="all"
        ``"all"``: the paper, one sampler per layer. ``"last"``: the released
        code, samplers over the ``last_layers`` layers before the final one,
        the final layer always kept, every earlier layer always detached.
    last_layers : int, default=6
        Sampled layers under ``scope="last"`` (the released ``[-15:-2]``
        parameter slice is 13 tensors, about 6 weight/bias layers).
    lr : float, default=0.1
        Sampler SGD learning rate (paper: 0.1, momentum 0.9).
    momentum : float, default=0.9
        Sampler SGD momentum.
    gate : {"released", "kept_only"}, default="released"
        ``"released"``: rejected layers step with ``(1 - act) * grad.detach()``,
        so the samplers also learn from them, at the price of a clean-set
        backward through every layer. ``"kept_only"``: rejected layers step
        with ``grad.detach()`` (the paper's :math:`g'` sums over kept layers
        only) and the clean-set backward stops at the lowest kept layer.

    Attributes
    ----------
    layers : list of Layer
        Every layer of ``model``.
    sampled : list of int
        Indices into ``layers`` that have a sampler.
    always : list of int
        Indices of layers always kept (``scope="last"``: the final layer).
    samplers : nn.ModuleList
        One :class:`LayerSampler` per sampled layer.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        k: int = 4,
        lambda_count: float = 0.1,
        lambda_grad: float = 0.1,
        hidden: int = 128,
        temperature: float = 5.0,
        scope: Literal["all", "last"] = "all",
        last_layers: int = 6,
        lr: float = 0.1,
        momentum: float = 0.9,
        gate: Literal["released", "kept_only"] = "released",
    ) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"`k` must be a positive integer number of layers, got {k!r}")
        if scope not in ("all", "last"):
            raise ValueError(f"`scope` must be 'all' or 'last', got {scope!r}")
        if gate not in ("released", "kept_only"):
            raise ValueError(f"`gate` must be 'released' or 'kept_only', got {gate!r}")
        self.gate = gate
        if not temperature > 0:
            raise ValueError(f"`temperature` must be positive, got {temperature!r}")
        self.layers = famus_layers(model)
        n = len(self.layers)
        if scope == "all":
            self.sampled, self.always = list(range(n)), []
        else:
            if isinstance(last_layers, bool) or not isinstance(last_layers, int) or last_layers < 1:
                raise ValueError(f"`last_layers` must be a positive integer, got {last_layers!r}")
            self.sampled, self.always = list(range(max(0, n - 1 - last_layers), n - 1)), [n - 1]
        self.k, self.scope = k, scope
        self.lambda_count, self.lambda_grad = float(lambda_count), float(lambda_grad)
        self.temperature = float(temperature)
        self.samplers = nn.ModuleList(LayerSampler(self.layers[i].out_features, hidden) for i in self.sampled)
        self.optimizer = torch.optim.SGD(self.samplers.parameters(), lr=lr, momentum=momentum)

    def meta_parameters(self) -> dict[str, Tensor]:
        """Return the samplers' parameters, detached (inputs of the meta-gradient)."""
        return {k: v.detach() for k, v in self.samplers.named_parameters()}

    def draw_noise(self, generator: torch.Generator | None = None) -> Tensor:
        """Gumbel noise, shape (n_sampled, 2), on the samplers' device."""
        device = next(self.samplers.parameters()).device if len(self.samplers) else torch.device("cpu")
        # drawn where the generator lives (a CPU generator by default), then moved
        gen_device = generator.device if generator is not None else torch.device("cpu")
        u = torch.rand((len(self.sampled), 2), generator=generator, device=gen_device).to(device)
        return -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))

    def gates(
        self, meta: dict[str, Tensor], features: list[Tensor], noise: Tensor
    ) -> tuple[Tensor, list[bool]]:
        """Straight-through gates of the sampled layers.

        Parameters
        ----------
        meta : dict of str to Tensor
            Sampler parameters (``meta_parameters()`` or their functional stand-ins).
        features : list of Tensor of shape (out_features_l,)
            Pooled gradients of the sampled layers, in ``sampled`` order.
        noise : Tensor of shape (n_sampled, 2)
            Gumbel noise from :meth:`draw_noise`.

        Returns
        -------
        acts : Tensor of shape (n_sampled,)
            Hard 0/1 values with the soft sample's gradient.
        kept : list of bool
            Whether each sampled layer is kept.
        """
        if not self.sampled:
            return noise.new_zeros(0), []
        logits = torch.stack([self._logits(meta, i, f) for i, f in enumerate(features)])
        soft = torch.softmax((logits + noise) / self.temperature, dim=-1)
        hard = torch.nn.functional.one_hot(soft.detach().argmax(-1), 2).to(soft.dtype)
        acts = (hard - soft.detach() + soft)[:, 1]
        return acts, [bool(h) for h in hard[:, 1].tolist()]

    def _logits(self, meta: dict[str, Tensor], i: int, features: Tensor) -> Tensor:
        prefix = f"{i}."
        sub = {k[len(prefix) :]: v for k, v in meta.items() if k.startswith(prefix)}
        return functional_call(self.samplers[i], sub, (features,))

    def loss_terms(self, acts: Tensor, g_train_last: Tensor, g_val_last: Tensor) -> Tensor:
        r""":math:`\lambda_1(\sum r_l - K)^2 + \lambda_2 L_g` (a scalar)."""
        count = layer_count_loss(acts, self.k, self.lambda_count) if acts.numel() else acts.new_zeros(())
        return count + gradient_matching_loss(g_train_last, g_val_last, self.lambda_grad)

    def update(self, meta_grad: dict[str, Tensor]) -> None:
        """One optimiser step of the samplers on their meta-gradient."""
        self.optimizer.zero_grad(set_to_none=True)
        for name, p in self.samplers.named_parameters():
            p.grad = meta_grad[name].detach().clone()
        self.optimizer.step()
