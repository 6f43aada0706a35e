r"""How many elements each layer keeps: uniform, Erdős–Rényi and Erdős–Rényi-Kernel.

For an overall density :math:`d` over layers :math:`l` with :math:`n_l`
elements, each allocation chooses per-layer densities :math:`d_l \le 1` with
:math:`\sum_l d_l n_l = d \sum_l n_l`:

- *uniform*: :math:`d_l = d`;
- *Erdős–Rényi* (SET, Mocanu et al. 2018 [1]_):
  :math:`d_l = \varepsilon\, (c_\text{in} + c_\text{out}) / (c_\text{in} c_\text{out})`;
- *Erdős–Rényi-Kernel* (RigL, Evci et al. 2020 [2]_): for a kernel
  :math:`c_\text{out} \times c_\text{in} \times k_1 \times \dots`,
  :math:`d_l = \varepsilon\, (c_\text{in} + c_\text{out} + \sum k_i) / (c_\text{in} c_\text{out} \prod k_i)`.

:math:`\varepsilon` is solved for; a layer whose density would exceed one is
made dense and :math:`\varepsilon` solved again for the rest (the procedure of
RigL's ``sparse_utils.get_sparsities``). The *global* allocation has no
per-layer densities: one threshold on the scores of all layers decides.

References
----------
.. [1] D. C. Mocanu et al., "Scalable training of artificial neural networks with
   adaptive sparse connectivity inspired by network science", Nat. Commun. 9, 2383 (2018).
.. [2] U. Evci, T. Gale, J. Menick, P. S. Castro, E. Elsen, "Rigging the Lottery:
   Making All Tickets Winners", ICML 2020, arXiv:1911.11134.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

ALLOCATIONS = ("uniform", "global", "er", "erk")


def _raw_density(shape: tuple[int, ...], kind: str) -> float:
    if len(shape) < 2:
        return 1.0
    c_out, c_in, *kernel = shape
    if kind == "er":
        return (c_in + c_out) / (c_in * c_out)
    return (c_in + c_out + sum(kernel)) / (c_in * c_out * math.prod(kernel))


def layer_densities(
    shapes: Mapping[str, tuple[int, ...]], density: float, allocation: str
) -> dict[str, float]:
    """Per-layer densities reaching an overall ``density``.

    Parameters
    ----------
    shapes : mapping of str to tuple of int
        Weight shape of each layer, ``(out, in, *kernel)``.
    density : float in (0, 1]
        Kept fraction over all layers.
    allocation : {"uniform", "er", "erk"}

    Returns
    -------
    dict of str to float
        Density of each layer, each in [0, 1]; ``sum(d_l * n_l) = density * sum(n_l)``
        up to rounding.

    Raises
    ------
    ValueError
        Unknown ``allocation`` (``"global"`` has no per-layer densities) or
        ``density`` outside (0, 1].
    """
    if allocation not in ("uniform", "er", "erk"):
        raise ValueError(
            f"`allocation` must be 'uniform', 'er' or 'erk' for per-layer densities, got {allocation!r}"
        )
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"`density` must lie in [0, 1], got {density!r}")
    if allocation == "uniform" or density >= 1.0:
        return {name: float(density) for name in shapes}
    sizes = {name: math.prod(s) for name, s in shapes.items()}
    raw = {name: _raw_density(tuple(s), allocation) for name, s in shapes.items()}
    dense: set[str] = set()
    while True:
        budget = density * sum(sizes.values()) - sum(sizes[n] for n in dense)
        divisor = sum(raw[n] * sizes[n] for n in shapes if n not in dense)
        eps = budget / divisor if divisor > 0 else 0.0
        over = [n for n in shapes if n not in dense and eps * raw[n] > 1.0]
        if not over:
            break
        # make the layers with the largest raw density dense, then re-solve
        top = max(raw[n] for n in over)
        dense.update(n for n in over if raw[n] == top)
    return {n: 1.0 if n in dense else eps * raw[n] for n in shapes}
