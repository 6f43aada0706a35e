"""sciprob: probabilistic and scientific machine learning on Pyro.

The root package holds the experiment registry, the command line, reports and
runtime helpers; the method areas are :mod:`sciprob.ppl`,
:mod:`sciprob.physics`, :mod:`sciprob.control`, :mod:`sciprob.learning` and
:mod:`sciprob.theory`. Importing ``sciprob`` is cheap: it loads neither torch
nor DOLFINx.
"""

from sciprob.config import ConfigError, param
from sciprob.experiments import Anchor, RunContext, experiment, run_experiment

__version__ = "0.1.0"

__all__ = ["Anchor", "ConfigError", "RunContext", "experiment", "param", "run_experiment", "__version__"]
