"""Binary masks on any model through :mod:`torch.nn.utils.parametrize`.

A masked tensor ``weight`` of a module becomes ``original ⊙ mask``: the
module's ``weight`` attribute is recomputed from
``module.parametrizations.weight.original`` and the :class:`WeightMask`
buffer ``mask`` at every access. Gradients reach ``original`` only where the
mask is one, so masked elements stay exactly zero through any optimizer; the
mask is a persistent buffer, so it is part of ``state_dict``; and the product is
plain tensor code, so it traces under :func:`torch.compile`.

Unlike ``torch.nn.utils.prune`` (a forward pre-hook that rewrites an attribute,
no longer maintained) the parametrization composes with other
parametrizations and is removed with
:func:`torch.nn.utils.parametrize.remove_parametrizations`, which
:func:`remove_masks` calls to make the zeros permanent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from sciprob.learning.sparse.allocation import ALLOCATIONS, layer_densities

PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
SCORES = ("magnitude", "random")

ScoreSpec = str | Mapping[str, Tensor] | Callable[[], Mapping[str, Tensor]]


class WeightMask(nn.Module):
    r"""Parametrization ``W ↦ W ⊙ M`` with a fixed binary mask ``M``.

    Parameters
    ----------
    mask : Tensor of the weight's shape
        Non-zero entries are kept. Stored as a boolean buffer ``mask``.

    Attributes
    ----------
    mask : BoolTensor of the weight's shape
    record_grad : bool
        When True, the gradient of the loss with respect to the *masked*
        (effective) weight, dense at every position, is stored in
        ``dense_grad`` during backward (RigL's growth criterion needs it).
    dense_grad : Tensor or None
    """

    def __init__(self, mask: Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.bool).clone())
        self.record_grad = False
        self.dense_grad: Tensor | None = None

    def forward(self, weight: Tensor) -> Tensor:
        """Return ``weight * mask``, a tensor of the weight's shape."""
        out = weight * self.mask
        if self.record_grad and out.requires_grad:
            out.register_hook(self._store_grad)
        return out

    def _store_grad(self, grad: Tensor) -> None:
        self.dense_grad = grad.detach().clone() if self.dense_grad is None else self.dense_grad + grad

    def extra_repr(self) -> str:
        """Describe the mask in ``repr(model)``."""
        return f"density={self.mask.float().mean().item():.4f}"


@dataclass(frozen=True)
class MaskedTensor:
    """One masked tensor of a model.

    Attributes
    ----------
    name : str
        Dotted name of the effective tensor, e.g. ``"features.0.weight"``.
    module : nn.Module
        The module holding it.
    tensor_name : str
        Attribute name on ``module`` (``"weight"``).
    parametrization : WeightMask
    """

    name: str
    module: nn.Module
    tensor_name: str
    parametrization: WeightMask

    @property
    def original(self) -> nn.Parameter:
        """The trainable tensor behind the mask (``parametrizations.<name>.original``)."""
        return getattr(self.module.parametrizations, self.tensor_name).original

    @property
    def mask(self) -> Tensor:
        """The boolean mask buffer (shared, not a copy)."""
        return self.parametrization.mask

    def effective(self) -> Tensor:
        """Return the masked tensor ``original ⊙ mask``, detached."""
        return (self.original * self.mask).detach()


@dataclass(frozen=True)
class DensityReport:
    """Fraction of non-zero mask entries.

    Attributes
    ----------
    layers : dict of str to float
        Density of each masked tensor, by dotted name.
    global_density : float
        Kept elements over all elements of the masked tensors.
    overall_density : float
        Kept elements over all parameters of the model (unmasked ones count as dense).
    kept : int
        Kept elements of the masked tensors.
    total : int
        Elements of the masked tensors.
    """

    layers: dict[str, float]
    global_density: float
    overall_density: float
    kept: int
    total: int


@dataclass(frozen=True)
class SparsitySummary:
    """What :func:`sparsify` or :func:`prune` did.

    Attributes
    ----------
    masked : tuple of str
        Dotted names of the masked tensors.
    densities : dict of str to float
        Density of each after the call.
    global_density : float
        Kept over total elements of the masked tensors.
    """

    masked: tuple[str, ...]
    densities: dict[str, float]
    global_density: float


def _matches(name: str, targets: str | Sequence[str]) -> bool:
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    parts = name.split(".")
    return any(t == name or t in parts for t in targets)


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    """Validate a sparsity in [0, 1) and return it as float.

    Raises
    ------
    TypeError
        Not a real number.
    ValueError
        Outside [0, 1) or not finite.
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, int | float):
        raise TypeError(f"`{name}` must be a float in [0, 1), got {type(sparsity).__name__} {sparsity!r}")
    if not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(
            f"`{name}` must lie in [0, 1) (the fraction of elements set to zero), got {sparsity!r}; "
            "a sparsity of 1 would remove every element"
        )
    return float(sparsity)


def match_modules(
    model: nn.Module,
    targets: str | Sequence[str] | None,
    layer_types: tuple[type[nn.Module], ...] = PRUNABLE_TYPES,
) -> list[str]:
    """Names of the sub-modules of ``model`` of ``layer_types`` matching ``targets``.

    Parameters
    ----------
    model : nn.Module
    targets : str, sequence of str or None
        A string is a regular expression matched against the whole dotted
        module name; a sequence matches names equal to an item or containing it
        as a dot-separated component (the convention of ``inject_lora``); None
        matches every module of ``layer_types``.
    layer_types : tuple of type, default=(Linear, Conv1d, Conv2d, Conv3d)

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        ``targets`` is malformed or matches no module of ``layer_types``.
    """
    if targets is not None and not isinstance(targets, str):
        if isinstance(targets, bytes) or not targets or not all(isinstance(t, str) for t in targets):
            raise ValueError(
                "`targets` must be None, a regex string or a non-empty sequence of module names, "
                f"got {targets!r}"
            )
    candidates = [n for n, m in model.named_modules() if isinstance(m, layer_types)]
    names = [n for n in candidates if targets is None or _matches(n, targets)]
    if not names:
        kinds = ", ".join(t.__name__ for t in layer_types)
        raise ValueError(
            f"`targets`={targets!r} matches no {kinds} module of the model; its candidates are "
            f"{candidates[:8]}{' ...' if len(candidates) > 8 else ''}"
        )
    return names


def masked_tensors(model: nn.Module) -> Iterator[MaskedTensor]:
    """Yield every tensor of ``model`` masked by a :class:`WeightMask`, in module order."""
    for mod_name, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for tensor_name, plist in module.parametrizations.items():
            for p in plist:
                if isinstance(p, WeightMask):
                    full = f"{mod_name}.{tensor_name}" if mod_name else tensor_name
                    yield MaskedTensor(full, module, tensor_name, p)
                    break


def add_mask(module: nn.Module, tensor_name: str = "weight", mask: Tensor | None = None) -> WeightMask:
    """Mask ``module.<tensor_name>``; combine with an existing mask by logical AND.

    Parameters
    ----------
    module : nn.Module
    tensor_name : str, default="weight"
    mask : Tensor of the tensor's shape, default=None
        None adds an all-ones mask.

    Returns
    -------
    WeightMask
        The (new or existing) parametrization.
    """
    current = getattr(module, tensor_name)
    if not isinstance(current, Tensor):
        raise TypeError(
            f"`{tensor_name}` of {type(module).__name__} is not a tensor, got {type(current).__name__}"
        )
    if mask is not None and mask.shape != current.shape:
        raise ValueError(
            f"`mask` must have the shape {tuple(current.shape)} of `{tensor_name}`, got {tuple(mask.shape)}"
        )
    if parametrize.is_parametrized(module, tensor_name):
        for p in getattr(module.parametrizations, tensor_name):
            if isinstance(p, WeightMask):
                if mask is not None:
                    p.mask &= mask.to(device=p.mask.device, dtype=torch.bool)
                return p
    init = torch.ones_like(current, dtype=torch.bool) if mask is None else mask.to(current.device)
    wm = WeightMask(init)
    parametrize.register_parametrization(module, tensor_name, wm)
    return wm


def _score_tensors(
    entries: list[MaskedTensor], score: ScoreSpec, generator: torch.Generator | None
) -> dict[str, Tensor]:
    if callable(score) and not isinstance(score, str):
        score = score()
    if isinstance(score, str):
        if score == "magnitude":
            return {e.name: e.effective().abs() for e in entries}
        if score == "random":
            return {
                e.name: torch.rand(e.mask.shape, generator=generator, device="cpu").to(e.mask.device)
                for e in entries
            }
        raise ValueError(
            f"`score` must be one of {SCORES}, a mapping of tensors or a callable, got {score!r}"
        )
    out = {}
    for e in entries:
        if e.name not in score:
            raise ValueError(
                f"`score` has no entry for the masked tensor {e.name!r}; it has {sorted(score)[:6]}"
            )
        s = score[e.name]
        if s.shape != e.mask.shape:
            raise ValueError(
                f"`score[{e.name!r}]` has shape {tuple(s.shape)}, expected {tuple(e.mask.shape)}"
            )
        out[e.name] = s.detach()
    return out


def _topk_mask(scores: Tensor, k: int) -> Tensor:
    flat = scores.reshape(-1).float()
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        mask[torch.topk(flat, k, sorted=False).indices] = True
    return mask.view_as(scores)


def _validate_common(allocation: str, score: ScoreSpec) -> None:
    if allocation not in ALLOCATIONS:
        raise ValueError(f"`allocation` must be one of {ALLOCATIONS}, got {allocation!r}")
    if isinstance(score, str) and score not in SCORES:
        raise ValueError(
            f"`score` must be one of {SCORES} (or a mapping name -> tensor from `scores`), got {score!r}"
        )


@torch.no_grad()
def prune(
    model: nn.Module,
    sparsity: float,
    *,
    score: ScoreSpec = "magnitude",
    allocation: str = "uniform",
    cumulative: bool = True,
    generator: torch.Generator | None = None,
) -> SparsitySummary:
    """Recompute the masks of an already masked model to reach ``sparsity``.

    Parameters
    ----------
    model : nn.Module
        A model with masks (see :func:`sparsify`).
    sparsity : float in [0, 1)
        Overall fraction of zeros among the masked tensors.
    score : {"magnitude", "random"}, mapping or callable, default="magnitude"
        Higher scores are kept. ``"magnitude"`` is ``|W ⊙ M|``; a mapping gives
        a tensor per masked tensor name (from :mod:`sciprob.learning.sparse.scores`);
        a callable returns such a mapping.
    allocation : {"uniform", "global", "er", "erk"}, default="uniform"
        How the kept elements are shared between tensors: the same density in
        each, one threshold over all scores, or Erdős–Rényi(-Kernel) densities.
    cumulative : bool, default=True
        Elements already masked stay masked (their score is −∞), so pruning
        only removes; False lets any element come back.
    generator : torch.Generator, default=None
        For ``score="random"``.

    Returns
    -------
    SparsitySummary

    Raises
    ------
    ValueError
        Bad ``sparsity``, ``score`` or ``allocation``, or no masks in ``model``.
    """
    sparsity = check_sparsity(sparsity)
    _validate_common(allocation, score)
    entries = list(masked_tensors(model))
    if not entries:
        raise ValueError("`model` has no masks; call `sparsify(model, targets, sparsity)` first")
    scores = _score_tensors(entries, score, generator)
    density = 1.0 - sparsity
    if cumulative:
        scores = {e.name: torch.where(e.mask, scores[e.name].float(), -torch.inf) for e in entries}
    if allocation == "global":
        total = sum(e.mask.numel() for e in entries)
        k = round(density * total)
        flat = torch.cat([scores[e.name].reshape(-1).float().cpu() for e in entries])
        keep = _topk_mask(flat, k)
        offset = 0
        for e in entries:
            n = e.mask.numel()
            e.mask.copy_(keep[offset : offset + n].view_as(e.mask))
            offset += n
    else:
        shapes = {e.name: tuple(e.mask.shape) for e in entries}
        dens = layer_densities(shapes, density, allocation)
        for e in entries:
            e.mask.copy_(_topk_mask(scores[e.name], round(dens[e.name] * e.mask.numel())))
    for e in entries:
        # hygiene: the hidden weights of removed elements are zeroed too, so a
        # later regrowth starts them from zero and weight decay sees nothing
        e.original.mul_(e.mask)
    return _summary(entries)


def _summary(entries: list[MaskedTensor]) -> SparsitySummary:
    kept = sum(int(e.mask.sum()) for e in entries)
    total = sum(e.mask.numel() for e in entries)
    return SparsitySummary(
        masked=tuple(e.name for e in entries),
        densities={e.name: float(e.mask.float().mean()) for e in entries},
        global_density=kept / max(1, total),
    )


def sparsify(
    model: nn.Module,
    targets: str | Sequence[str] | None = None,
    sparsity: float = 0.0,
    *,
    score: ScoreSpec = "magnitude",
    allocation: str = "uniform",
    layer_types: tuple[type[nn.Module], ...] = PRUNABLE_TYPES,
    generator: torch.Generator | None = None,
) -> SparsitySummary:
    """Mask the weights of the matching layers of ``model`` in place and prune them to ``sparsity``.

    Parameters
    ----------
    model : nn.Module
        Any model.
    targets : str, sequence of str or None, default=None
        Which layers, by dotted module name (see :func:`match_modules`); None
        masks every layer of ``layer_types``.
    sparsity : float in [0, 1), default=0.0
        Fraction of zeros among the masked weights; 0 adds all-ones masks
        (for dynamic sparse training or later gradual pruning).
    score, allocation, generator
        As in :func:`prune`.
    layer_types : tuple of type, default=(Linear, Conv1d, Conv2d, Conv3d)

    Returns
    -------
    SparsitySummary

    Raises
    ------
    ValueError
        ``sparsity`` outside [0, 1), ``targets`` matching nothing, unknown
        ``score`` or ``allocation``; raised before the model is changed.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    >>> round(sparsify(net, sparsity=0.9).global_density, 3)
    0.1
    """
    sparsity = check_sparsity(sparsity)
    _validate_common(allocation, score)
    names = match_modules(model, targets, layer_types)
    if not isinstance(score, str) and not callable(score):
        missing = [
            f"{n}.weight" if n else "weight" for n in names if (f"{n}.weight" if n else "weight") not in score
        ]
        if missing:
            raise ValueError(f"`score` has no entry for {missing[:4]}; give one tensor per masked weight")
    for name in names:
        add_mask(model.get_submodule(name), "weight")
    if sparsity == 0.0 and score in SCORES:
        return _summary(list(masked_tensors(model)))
    return prune(model, sparsity, score=score, allocation=allocation, generator=generator)


def masks(model: nn.Module) -> dict[str, Tensor]:
    """Return the boolean mask of every masked tensor, by dotted name (copies)."""
    return {e.name: e.mask.clone() for e in masked_tensors(model)}


def set_masks(model: nn.Module, new_masks: Mapping[str, Tensor]) -> None:
    """Overwrite the masks named in ``new_masks`` (shapes must match) and zero the removed weights."""
    entries = {e.name: e for e in masked_tensors(model)}
    for name, m in new_masks.items():
        if name not in entries:
            raise ValueError(
                f"`new_masks` names {name!r}, which is not masked; masked: {sorted(entries)[:6]}"
            )
        if m.shape != entries[name].mask.shape:
            raise ValueError(
                f"`new_masks[{name!r}]` has shape {tuple(m.shape)}, "
                f"expected {tuple(entries[name].mask.shape)}"
            )
    with torch.no_grad():
        for name, m in new_masks.items():
            e = entries[name]
            e.mask.copy_(m.to(torch.bool))
            e.original.mul_(e.mask)


def density(model: nn.Module) -> DensityReport:
    """Densities of the masked tensors of ``model``, per layer and global.

    Returns
    -------
    DensityReport
    """
    entries = list(masked_tensors(model))
    kept = sum(int(e.mask.sum()) for e in entries)
    total = sum(e.mask.numel() for e in entries)
    masked_ids = {id(e.original) for e in entries}
    other = sum(p.numel() for p in model.parameters() if id(p) not in masked_ids)
    return DensityReport(
        layers={e.name: float(e.mask.float().mean()) for e in entries},
        global_density=kept / total if total else 1.0,
        overall_density=(kept + other) / (total + other) if total + other else 1.0,
        kept=kept,
        total=total,
    )


def remove_masks(model: nn.Module) -> list[str]:
    """Make the zeros permanent: replace every masked tensor by the plain tensor ``original ⊙ mask``.

    Other parametrizations on the same tensor are folded in too.

    Returns
    -------
    list of str
        Names of the tensors unmasked.
    """
    entries = list(masked_tensors(model))
    for e in entries:
        parametrize.remove_parametrizations(e.module, e.tensor_name, leave_parametrized=True)
    return [e.name for e in entries]


def load_sparse_state_dict(
    model: nn.Module, state_dict: Mapping[str, Tensor], strict: bool = True
) -> list[str]:
    """Load a state dict saved from a masked model into ``model``, masked or not.

    Masks are added to ``model`` for every ``<module>.parametrizations.<tensor>.0.mask``
    entry that ``model`` lacks, then :meth:`nn.Module.load_state_dict` copies
    weights and masks.

    Returns
    -------
    list of str
        Tensors that received a new mask.
    """
    pattern = re.compile(r"^(?:(.*)\.)?parametrizations\.([^.]+)\.\d+\.mask$")
    added = []
    plan = []
    for key, value in state_dict.items():
        m = pattern.match(key)
        if m is None:
            continue
        mod_name, tensor_name = m.group(1) or "", m.group(2)
        try:
            module = model.get_submodule(mod_name)
        except AttributeError as exc:
            raise ValueError(
                f"`state_dict` key {key!r} names a module {mod_name!r} that `model` lacks"
            ) from exc
        plan.append((module, tensor_name, value, f"{mod_name}.{tensor_name}" if mod_name else tensor_name))
    for module, tensor_name, value, full in plan:
        if not parametrize.is_parametrized(module, tensor_name):
            add_mask(module, tensor_name, value.to(torch.bool))
            added.append(full)
    model.load_state_dict(state_dict, strict=strict)
    return added
