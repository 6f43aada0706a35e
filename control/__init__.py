"""Control: Gymnasium tracking environments, PID-inspired history encoders, an SB3-style history SAC agent.

Importing this package registers ``sciprob/MassSpringDamper-v0``,
``sciprob/DoubleMassSpringDamper-v0``, ``sciprob/Navigation-v0`` and
``sciprob/Tokamak-v0`` with Gymnasium (numpy only), and the partially observed
MuJoCo tasks ``sciprob/<Hopper|Walker2d|HalfCheetah|Ant>-<P|V>-v0`` (MuJoCo loads
only when one is made); the torch-based parts
(encoders, the :class:`HistorySAC` agent, callbacks, training, PID tuning) load on first access.
"""

from importlib import import_module
from typing import Any

from sciprob.control.envs import (
    ENV_IDS,
    BatchedTrackingEnv,
    DoubleMassSpringDamperEnv,
    MassSpringDamperEnv,
    NavigationEnv,
    PIDSpec,
    TokamakEnv,
    TrackingEnv,
)
from sciprob.control.locomotion import MaskObservation, normalised_score
from sciprob.control.wrappers import PIDFeatures, PIDFeaturesVector

_LAZY = {
    "HistoryEncoder": "encoders",
    "GPIDEConfig": "encoders",
    "GPIDEEncoder": "encoders",
    "GRUEncoder": "encoders",
    "CausalTransformerEncoder": "encoders",
    "NoHistoryEncoder": "encoders",
    "PIDEncoder": "encoders",
    "make_encoder": "encoders",
    "SequenceReplayBuffer": "buffer",
    "HistorySAC": "agent",
    "HistoryState": "agent",
    "make_vec_env": "agent",
    "BaseCallback": "callbacks",
    "EvalCallback": "callbacks",
    "CheckpointCallback": "callbacks",
    "SACConfig": "sac",
    "SACNetworks": "sac",
    "Agent": "training",
    "ZeroPolicy": "training",
    "evaluate": "training",
    "train": "training",
    "PIDController": "pid",
    "tune_pid": "pid",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"sciprob.control.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'sciprob.control' has no attribute {name!r}")


__all__ = [
    "ENV_IDS",
    "BatchedTrackingEnv",
    "DoubleMassSpringDamperEnv",
    "MaskObservation",
    "MassSpringDamperEnv",
    "NavigationEnv",
    "normalised_score",
    "PIDFeatures",
    "PIDFeaturesVector",
    "PIDSpec",
    "TokamakEnv",
    "TrackingEnv",
    *_LAZY,
]
