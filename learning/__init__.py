"""Learning: ReLoRA, sparsity, time-series classifiers, update rules, FaMUS.

Each method lives in its own sub-package (:mod:`sciprob.learning.tsc`,
:mod:`sciprob.learning.lowrank`, :mod:`sciprob.learning.optim`); import from
there.
"""

__all__: list[str] = []
