"""The experiment engine: units of work, their seeds and cache, executors, and the run folder.

An experiment is a grid of independent units (see :func:`sciprob.experiments.experiment`).
The engine gives each unit a seed from :class:`numpy.random.SeedSequence` keyed on
the run seed and the unit's key, stores each finished unit in the run folder under
a hash of (experiment, config, seed, key), reruns only missing units on
``--resume``, and schedules units serially, on local processes or as Ray tasks.
"""

from sciprob.engine.keys import canonical_key, unit_hash, unit_seed_sequence
from sciprob.engine.run import run_experiment

__all__ = ["canonical_key", "run_experiment", "unit_hash", "unit_seed_sequence"]
