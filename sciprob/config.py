"""Typed experiment configurations: frozen dataclasses, ``--set`` parsing, JSON round trip.

Every experiment's configuration is a frozen :func:`dataclasses.dataclass`.
Each field's help text lives in one place, its metadata, written with
:func:`param`; ``sciprob show NAME`` and the docs read it from there.

Overrides are strings ``key=value`` (``--set`` on the command line) or
already-typed values (presets). Keys may be dotted to reach nested
sub-configs (``model.hidden=64``). Values are converted to the field's
annotated type:

=====================  ==========================================
annotation             accepted text
=====================  ==========================================
``int``, ``float``     ``3``, ``1e-3`` (``nan`` and ``inf`` are refused)
``bool``               ``true/false/1/0/yes/no``
``str``                anything
``Literal[...]``       one of the choices
``tuple[T, ...]``      comma-separated items, each parsed as ``T``
``X | None``           ``none`` or a value of ``X``
=====================  ==========================================

An unknown key or a value that does not parse raises :class:`ConfigError`
naming the key, before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names it."""


def param(default: Any, help: str, **kwargs: Any) -> Any:  # noqa: A002 - mirrors argparse
    """Declare a config field with its help text.

    Parameters
    ----------
    default : Any
        Default value (tuples for sequences: fields are immutable).
    help : str
        One-line description with units; shown by ``sciprob show``.
    **kwargs
        Passed to :func:`dataclasses.field`.
    """
    metadata = dict(kwargs.pop("metadata", {}), help=help)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_value(key: str, text: Any, annotation: Any) -> Any:
    """Convert ``text`` (a string or an already-typed value) to ``annotation``."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text is None or (isinstance(text, str) and text.lower() == "none"):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse_value(key, text, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"`{key}`: cannot parse {text!r}")
    if origin is Literal:
        for choice in args:
            if text == choice or (isinstance(text, str) and str(choice) == text):
                return choice
        raise ConfigError(f"`{key}` must be one of {list(args)}, got {text!r}")
    if origin in (tuple, list):
        item_type = args[0] if args else str
        if isinstance(text, str):
            items = [t.strip() for t in text.split(",") if t.strip()]
        elif isinstance(text, (list, tuple)):
            items = list(text)
        else:
            raise ConfigError(f"`{key}` expects a comma-separated list, got {text!r}")
        if origin is tuple and len(args) > 1 and args[1] is not Ellipsis:
            if len(items) != len(args):
                raise ConfigError(f"`{key}` expects {len(args)} items, got {len(items)}: {text!r}")
            return tuple(_parse_value(key, t, a) for t, a in zip(items, args, strict=True))
        return tuple(_parse_value(key, t, item_type) for t in items)
    if annotation is bool:
        if isinstance(text, bool):
            return text
        if isinstance(text, str) and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ConfigError(f"`{key}` expects true or false, got {text!r}")
    if annotation is int:
        if isinstance(text, bool):
            raise ConfigError(f"`{key}` expects an integer, got {text!r}")
        if isinstance(text, int):
            return text
        try:
            return int(str(text))
        except ValueError:
            raise ConfigError(f"`{key}` expects an integer, got {text!r}") from None
    if annotation is float:
        if isinstance(text, bool):
            raise ConfigError(f"`{key}` expects a number, got {text!r}")
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise ConfigError(f"`{key}` expects a number, got {text!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"`{key}` must be a finite number, got {text!r}")
        return value
    if annotation is str:
        if not isinstance(text, str):
            raise ConfigError(f"`{key}` expects text, got {text!r}")
        return text
    if dataclasses.is_dataclass(annotation) and isinstance(text, dict):
        return apply_overrides(annotation(), text, prefix=f"{key}.")
    raise ConfigError(f"`{key}` has an unsupported type {annotation!r} for override {text!r}")


def apply_overrides(cfg: Any, overrides: dict[str, Any], *, prefix: str = "") -> Any:
    """Return a copy of the frozen dataclass ``cfg`` with ``overrides`` applied.

    Parameters
    ----------
    cfg : dataclass instance
        The base configuration.
    overrides : dict of str to Any
        Dotted keys to values (strings are parsed by the field's type).
    prefix : str, default=""
        Prefix of ``cfg`` in dotted keys, for error messages.

    Raises
    ------
    ConfigError
        Unknown key, unparsable value, or a ``__post_init__`` check failing.
    """
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    hints = _hints(type(cfg))
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown config key `{prefix}{key}`; known keys: {known}")
        if rest:
            sub = getattr(cfg, head)
            if not dataclasses.is_dataclass(sub):
                raise ConfigError(f"config key `{prefix}{head}` has no sub-keys (got `{prefix}{key}`)")
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = _parse_value(prefix + head, value, hints[head])
    for head, sub_overrides in nested.items():
        direct[head] = apply_overrides(getattr(cfg, head), sub_overrides, prefix=f"{prefix}{head}.")
    try:
        return dataclasses.replace(cfg, **direct)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid config{' ' + prefix.rstrip('.') if prefix else ''}: {exc}") from None


def parse_set_options(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Split ``["a=1", "b.c=x"]`` into ``{"a": "1", "b.c": "x"}``.

    Raises
    ------
    ConfigError
        If an item has no ``=`` or an empty key.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"`--set` expects key=value, got {item!r}")
        out[key.strip()] = value
    return out


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Return a JSON-ready nested dict of a config (tuples become lists)."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config of type ``cls`` from :func:`config_to_dict` output."""
    return apply_overrides(cls(), _flatten(data))


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def describe_config(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """List ``(key, type, default, help)`` rows for every (nested) field of ``cls``."""
    rows = []
    hints = _hints(cls)
    default = cls()
    for f in dataclasses.fields(cls):
        value = getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(describe_config(type(value), prefix=f"{prefix}{f.name}."))
            continue
        type_name = getattr(hints[f.name], "__name__", None) or str(hints[f.name]).replace("typing.", "")
        rows.append((prefix + f.name, type_name, repr(value), f.metadata.get("help", "")))
    return rows
