r"""Multiplicative and hybrid update rules for any PyTorch optimizer.

:class:`UpdateRule` wraps any ``torch.optim.Optimizer`` (SGD, Adam, Adagrad,
RMSprop, ...) and turns its step direction into an additive, multiplicative
(:math:`\theta \leftarrow \theta - \eta_{out}|\theta|\tanh(\eta_{in} d)`) or
hybrid update (Kirtas, Passalis, Tefas 2024). ``MSGD``, ``MAdam``, ``MAdagrad``,
``MRMSprop`` and the hybrid ``HMSGD``, ``HAdam``, ``HAdagrad``, ``HRMSprop``
are one-line shortcuts; the ``*GSchedule`` classes schedule the hybrid
mixing weight ``g``.
"""

from sciprob.learning.optim.rules import (
    HMSGD,
    MSGD,
    RULES,
    HAdagrad,
    HAdam,
    HRMSprop,
    MAdagrad,
    MAdam,
    MRMSprop,
    UpdateRule,
    check_group,
)
from sciprob.learning.optim.schedules import ExponentialGSchedule, GSchedule, LinearGSchedule, RandomGSchedule

__all__ = [
    "RULES",
    "ExponentialGSchedule",
    "GSchedule",
    "HAdagrad",
    "HAdam",
    "HMSGD",
    "HRMSprop",
    "LinearGSchedule",
    "MAdagrad",
    "MAdam",
    "MRMSprop",
    "MSGD",
    "RandomGSchedule",
    "UpdateRule",
    "check_group",
]
