"""Sparsity for any PyTorch model: pruning, sparse training and real speed-ups.

Masks, pruning scores and schedules, lottery tickets, dynamic sparse training
(SET, RigL), channel pruning with real speed-ups, N:M masks and CSR/BSR inference:

The method families of Hoefler et al., "Sparsity in Deep Learning" (JMLR 2021), on
``torch.nn.utils.parametrize`` masks:

>>> import torch
>>> from torch import nn
>>> from sciprob.learning.sparse import sparsify, density, remove_masks
>>> net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
>>> summary = sparsify(net, sparsity=0.75, allocation="erk")
>>> round(density(net).global_density, 4)
0.25
>>> remove_masks(net)
['0.weight', '2.weight']
"""

from sciprob.learning.sparse.allocation import ALLOCATIONS, layer_densities
from sciprob.learning.sparse.dynamic import DynamicSparseTraining, MaskUpdate
from sciprob.learning.sparse.inference import SparseLinear, compare_latency, to_sparse_inference
from sciprob.learning.sparse.lottery import LotteryTicket, iterative_magnitude_pruning
from sciprob.learning.sparse.masks import (
    DensityReport,
    MaskedTensor,
    SparsitySummary,
    WeightMask,
    add_mask,
    density,
    load_sparse_state_dict,
    masked_tensors,
    masks,
    match_modules,
    prune,
    remove_masks,
    set_masks,
    sparsify,
)
from sciprob.learning.sparse.nm import apply_nm, is_nm_sparse, nm_mask, to_semi_structured
from sciprob.learning.sparse.ppe import accuracy_per_parameter, pruned_parameter_efficiency
from sciprob.learning.sparse.schedules import (
    CosineDecay,
    Cubic,
    GradualPruner,
    Iterative,
    OneShot,
    SparsitySchedule,
)
from sciprob.learning.sparse.scores import (
    MovementScores,
    grasp_scores,
    magnitude_scores,
    random_scores,
    snip_scores,
    synflow_prune,
    synflow_scores,
)
from sciprob.learning.sparse.structured import StructuredSummary, prune_channels

__all__ = [
    "ALLOCATIONS",
    "CosineDecay",
    "Cubic",
    "DensityReport",
    "DynamicSparseTraining",
    "GradualPruner",
    "Iterative",
    "LotteryTicket",
    "MaskUpdate",
    "MaskedTensor",
    "MovementScores",
    "OneShot",
    "SparseLinear",
    "SparsitySchedule",
    "SparsitySummary",
    "StructuredSummary",
    "WeightMask",
    "accuracy_per_parameter",
    "add_mask",
    "compare_latency",
    "apply_nm",
    "density",
    "grasp_scores",
    "is_nm_sparse",
    "iterative_magnitude_pruning",
    "layer_densities",
    "load_sparse_state_dict",
    "magnitude_scores",
    "masked_tensors",
    "masks",
    "match_modules",
    "nm_mask",
    "prune",
    "prune_channels",
    "pruned_parameter_efficiency",
    "random_scores",
    "remove_masks",
    "set_masks",
    "snip_scores",
    "sparsify",
    "synflow_prune",
    "synflow_scores",
    "to_semi_structured",
    "to_sparse_inference",
]
