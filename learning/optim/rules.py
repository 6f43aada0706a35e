r"""Additive, multiplicative and hybrid update rules on top of any PyTorch optimizer.

:class:`UpdateRule` wraps a :class:`torch.optim.Optimizer` and replaces the
*form* of its parameter update while keeping the optimizer's own state
(momentum buffers, second moments, step counts) and its own code. This is
the GOFAU framework of Kirtas, Passalis and Tefas [1]_.

How the direction is read
-------------------------
For each parameter group the wrapper

1. snapshots the parameters :math:`\theta_{t-1}` that have a gradient,
2. runs the base optimizer's ``step()`` unchanged, which moves them by the
   displacement :math:`\Delta_t = \theta^{\text{base}}_t - \theta_{t-1}`,
3. reads the step direction as the displacement per unit learning rate,
   :math:`d_t = -\Delta_t / \eta` (:math:`\eta` = the group's ``lr``),
4. undoes the step and applies the chosen rule to :math:`d_t`:

.. math::

    \theta_t = \theta_{t-1} - g\,\eta_{\text{out}}\,|\theta_{t-1}|
                \tanh(\eta_{\text{in}} d_t) - (1 - g)\,\eta\, d_t ,

with :math:`g = 0` (additive: exactly the base optimizer, which is then not
touched at all), :math:`g = 1` (multiplicative) or a user-chosen
:math:`g \in [0, 1]` (hybrid, optionally scheduled, see
:mod:`sciprob.learning.optim.schedules`).

For the reference optimizers this :math:`d_t` is the reference code's
direction [2]_: SGD's (Nesterov-)momentum buffer (the gradient without
momentum, L2 weight decay included), Adagrad's and RMSprop's normalised steps
``grad / (sqrt(sum) + eps)`` and ``grad / (sqrt(avg) + eps)`` (or RMSprop's
momentum buffer). For Adam the reference divides both rates by the first
bias correction :math:`c_t = 1 - \beta_1^t` and uses
:math:`\hat d_t = m_t / (\sqrt{\hat v_t} + \epsilon)`, so its step is
:math:`(\eta_{\text{out}}/c_t)|\theta|\tanh(\eta_{\text{in}} \hat d_t)`;
here :math:`d_t = \hat d_t / c_t`, giving
:math:`\eta_{\text{out}}|\theta|\tanh(\eta_{\text{in}} \hat d_t / c_t)`.
The two agree to first order in :math:`\eta_{\text{in}} d` and exactly once
:math:`c_t \to 1` (:math:`c_{50} = 0.995` for :math:`\beta_1 = 0.9`); the
form used here keeps :math:`\eta_{\text{out}}|\tanh| \le \eta_{\text{out}}`,
which is what guarantees that no weight changes sign. Decoupled weight decay
(AdamW) is part of the displacement and therefore of :math:`d_t`.

Cost: a persistent snapshot of the parameters, then either one fused kernel
from :func:`torch.compile` (``compiled=True``, and by default for parameter
groups of 2**20 elements or more) or seven element-wise passes (eight for the
hybrid rule; ``torch._foreach_*`` kernels, one launch per list on CUDA, run on
CPU in cache-sized blocks) with a second scratch copy for :math:`|\theta|`;
the additive rule adds nothing (``benchmarks/update_rules_overhead.py``).

References
----------
.. [1] Kirtas, Passalis, Tefas, "Multiplicative update rules for accelerating
   deep learning training and increasing robustness", Neurocomputing 576:127352
   (2024), arXiv:2307.07189.
.. [2] Official code ``cidl-auth/torch_mult_optim``, ``updates.py`` (``M_ABS``,
   ``H_ABS``) and the ``mult/``, ``hybrid/`` optimizers.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from torch.optim import Optimizer

Rule = Literal["additive", "multiplicative", "hybrid"]
RULES: tuple[str, ...] = ("additive", "multiplicative", "hybrid")

# group keys this wrapper adds to (and reads from) the base optimizer's groups
_RULE_KEYS = ("rule", "lr_in", "lr_out", "g")


def _check_number(name: str, value: Any, low: float, high: float | None = None, where: str = "") -> float:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"`{name}`{where} must be a number, got {value!r}")
    value = float(value)
    if not (value >= low and (high is None or value <= high)):  # also rejects NaN
        bound = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"`{name}`{where} must be {bound}, got {value!r}")
    return value


def check_group(group: dict[str, Any], index: int = 0) -> float:
    r"""Validate one parameter group's rule settings; return its mixing weight ``g``.

    Parameters
    ----------
    group : dict
        A parameter group holding ``lr``, ``rule``, ``lr_in``, ``lr_out`` and ``g``.
    index : int, default=0
        The group's position, named in error messages.

    Returns
    -------
    float
        The effective mixing weight: 0 for ``"additive"``, 1 for
        ``"multiplicative"``, ``group["g"]`` for ``"hybrid"``.

    Raises
    ------
    ValueError
        Unknown rule, negative ``lr``, ``lr_in`` or ``lr_out``, ``lr_out > 1``
        (the factor :math:`1 - \eta_{out}\tanh(\cdot)` could then change a
        weight's sign), ``g`` outside [0, 1], or ``lr == 0`` where the
        direction ``-displacement / lr`` is needed.
    """
    where = f" of parameter group {index}"
    rule = group["rule"]
    if rule not in RULES:
        raise ValueError(f"`rule`{where} must be one of {RULES}, got {rule!r}")
    lr = _check_number("lr", group["lr"], 0.0, where=where)
    _check_number("lr_in", group["lr_in"], 0.0, where=where)
    _check_number("lr_out", group["lr_out"], 0.0, 1.0, where=where)
    g = _check_number("g", group["g"], 0.0, 1.0, where=where)
    g = {"additive": 0.0, "multiplicative": 1.0}.get(rule, g)
    if g > 0.0 and lr == 0.0:
        raise ValueError(
            f"`lr`{where} is 0, but the {rule} rule reads the base optimizer's direction as "
            "displacement / lr; give the base optimizer a positive lr (for a purely "
            "multiplicative rule its value does not matter, e.g. 1.0)"
        )
    return g


class UpdateRule(Optimizer):
    r"""Apply the additive, multiplicative or hybrid rule to any optimizer's direction.

    The wrapper shares the base optimizer's ``param_groups`` and ``state``;
    each group carries its own ``rule``, ``lr_in``, ``lr_out`` and ``g``
    (keys already present in a group, e.g. given when the base optimizer was
    built, are kept; the arguments here fill the missing ones). LR schedulers
    act on ``lr`` (the additive rate :math:`\eta`) as usual.

    .. math::

        \theta_t = \theta_{t-1} - g\,\eta_{out}\,|\theta_{t-1}|
                    \tanh(\eta_{in} d_t) - (1 - g)\,\eta\,d_t,
        \qquad d_t = -(\theta^{base}_t - \theta_{t-1}) / \eta

    See the module docstring for how :math:`d_t` relates to the reference
    optimizers.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The base optimizer (SGD, Adam, AdamW, Adagrad, RMSprop, ...), already
        built on the parameters. Not LBFGS (its step evaluates the closure
        many times and searches along a line).
    rule : {"additive", "multiplicative", "hybrid"}, default="multiplicative"
        Update form for groups that do not set their own ``rule``.
    lr_in : float, default=1.0
        Inner rate :math:`\eta_{in} \ge 0` inside the ``tanh``.
    lr_out : float, default=1e-3
        Outer rate :math:`\eta_{out} \in [0, 1]`: at most this fraction of
        :math:`|\theta|` moves per step.
    g : float, default=0.5
        Hybrid mixing weight in [0, 1] (1 = multiplicative, 0 = additive);
        used by groups whose rule is ``"hybrid"``.
    compiled : bool or "auto", default="auto"
        ``True``: re-apply the step with one element-wise kernel built by
        :func:`torch.compile` (reads the parameters and the snapshot once;
        on CPU about 1.5x less overhead than the ``_foreach`` passes). The
        first step compiles it: 2-20 s, and it needs a C++ compiler (CPU) or
        Triton (CUDA). ``False``: always the ``_foreach`` passes. ``"auto"``:
        the kernel for groups of at least 2**20 elements (where it saves more
        than the compile costs within a few thousand steps), the passes for
        smaller ones and, with one warning, wherever compiling fails.

    Attributes
    ----------
    base : torch.optim.Optimizer
        The wrapped optimizer.

    Raises
    ------
    TypeError
        ``optimizer`` is not a ``torch.optim.Optimizer``, or a group has no ``lr``.
    NotImplementedError
        ``optimizer`` is LBFGS.
    ValueError
        Bad ``rule``, ``lr``, ``lr_in``, ``lr_out`` or ``g`` (see :func:`check_group`).

    Examples
    --------
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([0.5, -2.0]))
    >>> opt = UpdateRule(torch.optim.Adam([w], lr=1e-2), rule="multiplicative", lr_out=0.1)
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = (w**2).sum()
    ...     loss.backward()
    ...     return loss
    >>> float(opt.step(closure))
    4.25
    >>> bool((w.sign() == torch.tensor([1.0, -1.0])).all())  # signs never change
    True
    """

    def __init__(
        self,
        optimizer: Optimizer,
        rule: Rule = "multiplicative",
        *,
        lr_in: float = 1.0,
        lr_out: float = 1e-3,
        g: float = 0.5,
        compiled: bool | Literal["auto"] = "auto",
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"`optimizer` must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if isinstance(optimizer, torch.optim.LBFGS):
            raise NotImplementedError(
                "`optimizer` LBFGS is not supported: its step() re-evaluates the closure and runs a "
                "line search, so it has no single direction to reshape; use SGD, Adam, Adagrad, RMSprop, ..."
            )
        if isinstance(optimizer, UpdateRule):
            raise TypeError("`optimizer` is already an UpdateRule; wrap the base optimizer once")
        rule_defaults = {"rule": rule, "lr_in": lr_in, "lr_out": lr_out, "g": g}
        check_group({"lr": 1.0, **rule_defaults}, 0)
        self.base = optimizer
        if compiled not in (True, False, "auto"):
            raise ValueError(f"`compiled` must be True, False or 'auto', got {compiled!r}")
        self.compiled = compiled
        self._rule_defaults = rule_defaults
        # Optimizer.__init__ would rebuild the groups; share the base's instead and
        # set up the bookkeeping (hooks, patched step) that Optimizer methods expect.
        self.defaults = {**optimizer.defaults, **rule_defaults}
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        self._patch_step_function()
        self._share_base()

    def _share_base(self) -> None:
        self.param_groups = self.base.param_groups
        self.state = self.base.state
        for index, group in enumerate(self.param_groups):
            if "lr" not in group:
                raise TypeError(
                    f"parameter group {index} of {type(self.base).__name__} has no `lr`; "
                    "UpdateRule needs a learning-rate based optimizer"
                )
            for key in _RULE_KEYS:
                group.setdefault(key, self._rule_defaults[key])
            check_group(group, index)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the base optimizer, with this wrapper's rule defaults for missing keys."""
        self.base.add_param_group(param_group)
        self._share_base()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict (of this wrapper or of a plain base optimizer) into the base optimizer."""
        self.base.load_state_dict(state_dict)
        self._share_base()

    def state_dict(self) -> dict[str, Any]:
        """Return the base optimizer's state dict (groups also hold rule, lr_in, lr_out, g)."""
        return self.base.state_dict()

    def __repr__(self) -> str:
        return f"UpdateRule({self.base!r})"

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """Evaluate ``closure`` (if given) once, run the base step, re-apply it per rule.

        Parameters
        ----------
        closure : callable, default=None
            Re-evaluates the model, calls ``backward`` and returns the loss.

        Returns
        -------
        Tensor or None
            The closure's loss.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        plans = []
        for index, group in enumerate(self.param_groups):
            g = check_group(group, index)
            if g == 0.0:
                continue  # additive: the base step is the update, bit for bit
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if p.grad.is_sparse or p.is_complex():
                    raise NotImplementedError(
                        f"parameter group {index}: the {group['rule']} rule needs dense real "
                        "parameters and gradients"
                    )
            fused = self.uses_kernel(params)
            previous, magnitude = self._scratch_for(params, fused)
            torch._foreach_copy_(previous, params)
            plans.append((group, g, params, previous, magnitude, fused))
        self.base.step()
        for group, g, params, previous, magnitude, fused in plans:
            if fused:
                _apply_rule_compiled(params, previous, g, group, strict=self.compiled is True)
            else:
                _apply_rule(params, previous, magnitude, g, group)
        return loss

    def uses_kernel(self, params: list[torch.Tensor]) -> bool:
        """Whether a group with these parameters is updated by the compiled kernel (see ``compiled``)."""
        if self.compiled == "auto":
            return not _COMPILE_FAILED and sum(p.numel() for p in params) >= _AUTO_KERNEL_NUMEL
        return self.compiled

    def _scratch_for(
        self, params: list[torch.Tensor], fused: bool
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        # two persistent buffers per parameter (snapshot, |snapshot|): allocating them every
        # step costs more than the arithmetic on CPU; they are not part of the state dict
        scratch = self.__dict__.setdefault("_scratch", {})
        pairs = []
        for p in params:
            pair = scratch.get(p)
            if (
                pair is None
                or pair[0].shape != p.shape
                or pair[0].dtype != p.dtype
                or pair[0].device != p.device
                or (not fused and pair[1].shape != p.shape)  # the kernel needs no |snapshot|
            ):
                magnitude = p.new_empty(0) if fused else torch.empty_like(p)
                pair = scratch[p] = (torch.empty_like(p), magnitude)
            pairs.append(pair)
        return [a for a, _ in pairs], [b for _, b in pairs]


def _half_tanh_(tensors: list[torch.Tensor], scale: float) -> None:
    r"""In place ``tanh(scale * x) / 2``, computed as ``sigmoid(2 scale x) - 1/2``.

    CPU ``sigmoid`` is about ten times faster than CPU ``tanh``, and returning
    half the value saves the ``2 s - 1`` pass (the caller doubles its factor).
    The result lies in [-1/2, 1/2] (the subtraction is exact for ``s >= 1/4``
    and rounds monotonically below), so :func:`_apply_rule` never moves a
    weight by more than :math:`\eta_{out}|\theta|`; it differs from tanh/2 by
    at most half an ulp of 1.
    """
    torch._foreach_mul_(tensors, 2.0 * scale)
    torch._foreach_sigmoid_(tensors)
    torch._foreach_add_(tensors, -0.5)


# CPU work is done in blocks of about this many elements, so that the six passes of
# _apply_rule after the first read hit the cache instead of main memory (4.2M-parameter
# MLP, one thread: 6.6 ms per step against 8.7 ms for whole tensors; 2^16: 8.0, 2^19: 6.7).
_CPU_BLOCK = 1 << 18


def _blocks(tensors: list[list[torch.Tensor]]) -> list[list[list[torch.Tensor]]]:
    """Cut parallel lists of same-shape tensors into groups of 1-D views of about ``_CPU_BLOCK`` elements.

    Small tensors are grouped together (one ``_foreach`` call per group); large
    contiguous ones are cut into slices. Off the CPU one group holds everything.
    """
    if tensors[0][0].device.type != "cpu":
        return [tensors]
    groups: list[list[list[torch.Tensor]]] = []
    current: list[list[torch.Tensor]] = [[] for _ in tensors]
    size = 0
    for parts in zip(*tensors, strict=True):
        if all(t.is_contiguous() for t in parts):
            n = parts[0].numel()
            pieces = [[t.view(-1)[b : b + _CPU_BLOCK] for t in parts] for b in range(0, n, _CPU_BLOCK)]
        else:
            pieces = [list(parts)]
        for piece in pieces:
            for out, t in zip(current, piece, strict=True):
                out.append(t)
            size += piece[0].numel()
            if size >= _CPU_BLOCK:
                groups.append(current)
                current, size = [[] for _ in tensors], 0
    if current[0]:
        groups.append(current)
    return groups


def _apply_rule(
    params: list[torch.Tensor],
    previous: list[torch.Tensor],
    magnitude: list[torch.Tensor],
    g: float,
    group: dict,
) -> None:
    """Replace the base step ``params - previous`` by the hybrid rule with weight ``g``, in place.

    ``previous`` holds the parameters before the base step; it and ``magnitude``
    are scratch. The parameters themselves serve as the work buffer. With the
    snapshot copy in :meth:`UpdateRule.step` that makes seven element-wise passes
    over the parameters (eight when ``g < 1``), run block by block (see
    :func:`_blocks`); ``out=`` calls replace copy-then-modify pairs.
    """
    scale = -float(group["lr_in"]) / float(group["lr"])
    value = -2.0 * g * float(group["lr_out"])
    for ps, qs, ms in _blocks([params, previous, magnitude]):
        torch._foreach_sub_(ps, qs)  # params now hold Delta = -lr * d
        for q, m in zip(qs, ms, strict=True):
            torch.abs(q, out=m)
        if g < 1.0:
            torch._foreach_add_(qs, ps, alpha=1.0 - g)  # additive part: -(1-g) lr d
        _half_tanh_(ps, scale)  # tanh(lr_in * d) / 2
        for p, q, m in zip(ps, qs, ms, strict=True):
            torch.addcmul(q, m, p, value=value, out=p)


def _rule_kernel(param: torch.Tensor, previous: torch.Tensor, k: float, c: float, a: float) -> None:
    """``param <- previous + a (param - previous) - c |previous| tanh(k (param - previous))`` on 1-D views."""
    step = param - previous
    tanh = 2.0 * torch.sigmoid((2.0 * k) * step) - 1.0  # as in _half_tanh_: fast on CPU
    param.copy_(previous + a * step - c * previous.abs() * tanh)


_COMPILED_KERNEL: list[Callable] = []  # built on first use: compiling costs seconds
_COMPILE_FAILED: list[str] = []  # set once compiling failed under compiled="auto"
_AUTO_KERNEL_NUMEL = 1 << 20  # compiled="auto" uses the kernel from this many elements per group


def _apply_rule_compiled(
    params: list[torch.Tensor], previous: list[torch.Tensor], g: float, group: dict, strict: bool
) -> None:
    """Apply :func:`_apply_rule`'s update with one fused kernel per parameter (dynamic shapes).

    Non-contiguous parameters take the ``_foreach`` passes. If the kernel
    cannot be compiled, ``strict`` re-raises; otherwise it warns once and
    the passes take over (compiling fails before the kernel writes anything).
    """
    if not _COMPILED_KERNEL:
        _COMPILED_KERNEL.append(torch.compile(_rule_kernel, dynamic=True, fullgraph=True))
    kernel = _COMPILED_KERNEL[0]
    k = -float(group["lr_in"]) / float(group["lr"])
    c = g * float(group["lr_out"])
    for p, q in zip(params, previous, strict=True):
        if p.is_contiguous() and not (_COMPILE_FAILED and not strict):
            try:
                kernel(p.view(-1), q.view(-1), k, c, 1.0 - g)
                continue
            except Exception as err:  # compiler missing or broken: any backend error
                if strict:
                    raise
                _COMPILE_FAILED.append(repr(err))
                warnings.warn(
                    f"UpdateRule: compiling the update kernel failed ({err!r}); using the _foreach "
                    "passes from now on (pass compiled=False to skip the attempt)",
                    RuntimeWarning,
                    stacklevel=4,
                )
        _apply_rule([p], [q], [q.abs()], g, group)


def _base_kwargs(kwargs: dict[str, Any], lr: float) -> dict[str, Any]:
    _check_number("lr", lr, 0.0)
    return {"lr": lr, **kwargs}


class MSGD(UpdateRule):
    """Multiplicative SGD (with optional momentum): ``UpdateRule(SGD(...), "multiplicative")``.

    Parameters
    ----------
    params : iterable of Tensor or dict
        Parameters or parameter groups.
    lr_in, lr_out : float
        Inner and outer rates (required, as in the reference ``MSGD``).
    **kwargs
        Passed to :class:`torch.optim.SGD` (``momentum``, ``dampening``,
        ``weight_decay``, ``nesterov``). Its ``lr`` is fixed at 1 and only
        carries the direction.
    """

    def __init__(self, params: Iterable, lr_in: float, lr_out: float, **kwargs: Any) -> None:
        super().__init__(
            torch.optim.SGD(params, **_base_kwargs(kwargs, 1.0)), "multiplicative", lr_in=lr_in, lr_out=lr_out
        )


class HMSGD(UpdateRule):
    """Hybrid SGD: ``UpdateRule(SGD(params, lr), "hybrid", lr_in, lr_out, g)``.

    Parameters
    ----------
    params : iterable of Tensor or dict
        Parameters or parameter groups.
    lr, lr_in, lr_out : float
        Additive, inner and outer rates (required, as in the reference ``HMSGD``).
    g : float, default=1.0
        Mixing weight in [0, 1].
    **kwargs
        Passed to :class:`torch.optim.SGD`.
    """

    def __init__(
        self, params: Iterable, lr: float, lr_in: float, lr_out: float, g: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(
            torch.optim.SGD(params, **_base_kwargs(kwargs, lr)), "hybrid", lr_in=lr_in, lr_out=lr_out, g=g
        )


def _make_shortcuts(base: type[Optimizer], name: str, lr_out: float) -> tuple[type, type]:
    """Build the multiplicative and hybrid shortcut classes of ``base`` with the reference defaults."""

    def m_init(self, params: Iterable, lr_in: float = 1.0, lr_out: float = lr_out, **kwargs: Any) -> None:
        UpdateRule.__init__(
            self, base(params, **_base_kwargs(kwargs, 1.0)), "multiplicative", lr_in=lr_in, lr_out=lr_out
        )

    def h_init(
        self,
        params: Iterable,
        lr_in: float = 1.0,
        lr_out: float = lr_out,
        lr: float = lr_out,
        g: float = 1.0,
        **kwargs: Any,
    ) -> None:
        UpdateRule.__init__(
            self, base(params, **_base_kwargs(kwargs, lr)), "hybrid", lr_in=lr_in, lr_out=lr_out, g=g
        )

    doc = (
        "{kind} {name}: ``UpdateRule(torch.optim.{name}(params, lr={lr}, **kwargs), {rule!r}, ...)``.\n\n"
        "Parameters\n----------\nparams : iterable of Tensor or dict\n    Parameters or parameter groups.\n"
        "lr_in : float, default=1.0\n    Inner rate.\nlr_out : float, "
        "default={lr_out:g}\n    Outer rate in [0, 1].\n"
        "{extra}**kwargs\n    Passed to :class:`torch.optim.{name}`.\n"
    )
    hybrid_extra = (
        f"lr : float, default={lr_out:g}\n    Additive rate.\n"
        "g : float, default=1.0\n    Mixing weight in [0, 1].\n"
    )
    classes = []
    for prefix, init, kind, lr, rule, extra in (
        ("M", m_init, "Multiplicative", "1 (direction carrier)", "multiplicative", ""),
        ("H", h_init, "Hybrid", "lr", "hybrid", hybrid_extra),
    ):
        text = doc.format(kind=kind, name=name, lr=lr, rule=rule, lr_out=lr_out, extra=extra)
        cls = type(f"{prefix}{name}", (UpdateRule,), {"__init__": init, "__doc__": text})
        cls.__module__ = __name__
        classes.append(cls)
    m_cls, h_cls = classes
    return m_cls, h_cls


# reference defaults: MAdam/HAdam lr_out = lr = 1e-3; MAdagrad/HAdagrad, MRMSprop/HRMSprop 1e-2
MAdam, HAdam = _make_shortcuts(torch.optim.Adam, "Adam", 1e-3)
MAdagrad, HAdagrad = _make_shortcuts(torch.optim.Adagrad, "Adagrad", 1e-2)
MRMSprop, HRMSprop = _make_shortcuts(torch.optim.RMSprop, "RMSprop", 1e-2)
