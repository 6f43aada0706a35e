"""Runtime helpers shared by every sciprob component.

Seeding, device choice, progress reporting, atomic file writes and
checkpoints. Nothing here imports a sciprob area package.
"""

from sciprob.runtime.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, save_figure
from sciprob.runtime.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from sciprob.runtime.device import resolve_device
from sciprob.runtime.numerics import NonFiniteLossError, NonFiniteLossWarning, check_finite
from sciprob.runtime.progress import ProgressBar, get_logger, track
from sciprob.runtime.seeding import get_rng_state, isolated_rng, seed_everything, set_rng_state

__all__ = [
    "CheckpointError",
    "NonFiniteLossError",
    "NonFiniteLossWarning",
    "ProgressBar",
    "check_finite",
    "isolated_rng",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "get_logger",
    "get_rng_state",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "save_figure",
    "seed_everything",
    "set_rng_state",
    "track",
]
