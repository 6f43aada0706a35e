"""The non-finite loss policy shared by every training loop.

Every long loop in sciprob takes ``on_nonfinite: Literal["raise", "warn"] = "raise"``
and calls :func:`check_finite` on its loss: by default a NaN or infinite loss
stops the loop with :class:`NonFiniteLossError` naming where and when, so a
diverged run never reports a "successful" result at chance level.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

NONFINITE_POLICIES = ("raise", "warn")


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite."""


class NonFiniteLossWarning(UserWarning):
    """A training loss became NaN or infinite and the loop goes on (``on_nonfinite="warn"``)."""


def check_policy(policy: Any) -> str:
    """Return ``policy`` if it is ``"raise"`` or ``"warn"``, else raise ``ValueError`` naming it."""
    if policy not in NONFINITE_POLICIES:
        raise ValueError(f"`on_nonfinite` must be 'raise' or 'warn', got {policy!r}")
    return policy


def check_finite(
    value: Any, *, step: int, policy: Literal["raise", "warn"] = "raise", where: str = "training"
) -> float:
    """Return ``value`` as a float, raising or warning if it is not finite.

    Parameters
    ----------
    value : float or 0-d tensor
        The loss of one step.
    step : int
        The step (or epoch) number, for the message.
    policy : {"raise", "warn"}, default="raise"
        What to do with a non-finite value.
    where : str, default="training"
        What is being trained, for the message (e.g. ``"SVI"``, ``"fcn on GunPoint"``).

    Raises
    ------
    NonFiniteLossError
        If the value is NaN or infinite and ``policy == "raise"``.
    """
    out = float(value)
    if not math.isfinite(out):
        message = f"{where}: the loss is {out} at step {step}"
        if check_policy(policy) == "raise":
            raise NonFiniteLossError(message + " (pass on_nonfinite='warn' to go on)")
        warnings.warn(message, NonFiniteLossWarning, stacklevel=2)
    return out
