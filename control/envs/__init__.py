"""Tracking environments of the GPIDE paper, registered with Gymnasium on import.

=====================================  ======================  ========================
id                                     params                  action
=====================================  ======================  ========================
``sciprob/MassSpringDamper-v0``        fixed/small/med/large   change of force
``sciprob/DoubleMassSpringDamper-v0``  fixed/small/med/large   change of 2 forces
``sciprob/Navigation-v0``              sim/real                2-D force
``sciprob/Tokamak-v0``                 sim                     change of beam power
=====================================  ======================  ========================

Each id has a ``vector_entry_point``: ``gymnasium.make_vec(id, num_envs=64)``
returns a :class:`BatchedTrackingEnv` stepping all systems in one numpy call.
"""

import gymnasium as gym

from sciprob.control.envs.base import BatchedTrackingEnv, PIDSpec, TrackingDynamics, TrackingEnv
from sciprob.control.envs.navigation import BatchedNavigationEnv, NavigationEnv
from sciprob.control.envs.springs import (
    BatchedDoubleMassSpringDamperEnv,
    BatchedMassSpringDamperEnv,
    DoubleMassSpringDamperEnv,
    MassSpringDamperEnv,
)
from sciprob.control.envs.tokamak import BatchedTokamakEnv, TokamakEnv

EPISODE_STEPS = 100

ENV_IDS = {
    "MassSpringDamper": "sciprob/MassSpringDamper-v0",
    "DoubleMassSpringDamper": "sciprob/DoubleMassSpringDamper-v0",
    "Navigation": "sciprob/Navigation-v0",
    "Tokamak": "sciprob/Tokamak-v0",
}

_CLASSES = {
    "MassSpringDamper": (MassSpringDamperEnv, BatchedMassSpringDamperEnv),
    "DoubleMassSpringDamper": (DoubleMassSpringDamperEnv, BatchedDoubleMassSpringDamperEnv),
    "Navigation": (NavigationEnv, BatchedNavigationEnv),
    "Tokamak": (TokamakEnv, BatchedTokamakEnv),
}

for _name, (_single, _batched) in _CLASSES.items():
    if ENV_IDS[_name] not in gym.registry:
        gym.register(
            id=ENV_IDS[_name],
            entry_point=_single,
            vector_entry_point=_batched,
            # the environment truncates itself after its `episode_steps` argument (default 100)
            max_episode_steps=None,
        )

__all__ = [
    "ENV_IDS",
    "EPISODE_STEPS",
    "BatchedDoubleMassSpringDamperEnv",
    "BatchedMassSpringDamperEnv",
    "BatchedNavigationEnv",
    "BatchedTokamakEnv",
    "BatchedTrackingEnv",
    "DoubleMassSpringDamperEnv",
    "MassSpringDamperEnv",
    "NavigationEnv",
    "PIDSpec",
    "TokamakEnv",
    "TrackingDynamics",
    "TrackingEnv",
]
