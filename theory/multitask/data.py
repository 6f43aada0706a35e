r"""Multi-index binary classification tasks sharing one r-dimensional subspace.

The data model of Collins et al. (2024) [1]_ as reconstructed here (the paper's
Section 2 was not available; see ``docs/multitask.md``):

.. math::

    x \sim \mathcal N(0, I_d), \qquad z = M^\top x \in \mathbb R^r, \qquad
    y_t = \operatorname{sign} g_t(z) \quad (t = 1, \dots, T),

with :math:`M \in \mathbb R^{d\times r}` orthonormal (:math:`M^\top M = I_r`) and
:math:`g_t` drawn independently from a family:

============  ===========================================================================
family        :math:`g_t(z)`
============  ===========================================================================
linear        :math:`\beta_t^\top z`, :math:`\beta_t` uniform on the unit sphere of R^r
two-layer     :math:`\sum_{j=1}^k v_{tj}\,(\mathrm{relu}(u_{tj}^\top z) - \|u_{tj}\|/\sqrt{2\pi})`,
              :math:`u_{tj}` uniform on the sphere, :math:`v_{tj}\sim\mathcal N(0, 1)`
xor           :math:`(a_t^\top z)(b_t^\top z)`, :math:`(a_t, b_t)` a random orthonormal pair
============  ===========================================================================

The centring of the two-layer family makes :math:`E[g_t(z)] = 0` (labels roughly
balanced). Labels flip independently with probability ``noise``. Since the labels
depend on x only through :math:`M^\top x`, rotating x inside the orthogonal
complement of span(M) leaves every label unchanged.

References
----------
.. [1] L. Collins, H. Hassani, M. Soltanolkotabi, A. Mokhtari, S. Shakkottai,
   "Provable Multi-Task Representation Learning by Two-Layer ReLU Neural Networks",
   ICML 2024, arXiv:2307.06887.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

FAMILIES = ("linear", "two-layer", "xor")
_TWO_LAYER_WIDTH = 4  # hidden units k of each two-layer task


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}; pass {name} >= {minimum}")
    return value


def check_dimensions(d: int, r: int) -> tuple[int, int]:
    """Check ``1 <= r < d`` and return ``(d, r)``.

    Raises
    ------
    TypeError
        A dimension is not an int.
    ValueError
        ``r < 1`` or ``r >= d``.
    """
    _check_int("d", d, 2)
    _check_int("r", r, 1)
    if r >= d:
        raise ValueError(
            f"`r` must be smaller than the ambient dimension d={d}, got r={r}; "
            "the tasks need a proper subspace (choose r < d)"
        )
    return d, r


def check_family(family: str) -> str:
    """Return ``family`` if it is one of :data:`FAMILIES`, else raise ``ValueError`` naming it."""
    if family not in FAMILIES:
        raise ValueError(f"`family` must be one of {FAMILIES}, got {family!r}")
    return family


def _sphere(n: int, r: int, generator: torch.Generator) -> Tensor:
    u = torch.randn(n, r, generator=generator, dtype=torch.float64)
    return u / u.norm(dim=-1, keepdim=True)


def random_subspace(d: int, r: int, *, generator: torch.Generator) -> Tensor:
    r"""Draw an orthonormal basis of a uniformly random r-dimensional subspace of R^d.

    Parameters
    ----------
    d, r : int
        Ambient and subspace dimensions, ``1 <= r < d``.
    generator : torch.Generator
        Source of randomness (CPU).

    Returns
    -------
    Tensor of shape (d, r), float64
        :math:`M` with :math:`M^\top M = I_r`.
    """
    check_dimensions(d, r)
    q, rr = torch.linalg.qr(torch.randn(d, r, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(rr))  # Haar: fix the QR sign ambiguity


@dataclass(frozen=True)
class MultiIndexTasks:
    r"""T binary tasks whose labels depend on x only through :math:`z = M^\top x`.

    Build with :func:`make_tasks`; draw data with :meth:`sample`.

    Attributes
    ----------
    M : Tensor of shape (d, r), float64
        Orthonormal basis of the ground-truth subspace.
    family : str
        One of :data:`FAMILIES`.
    params : dict of str to Tensor
        Task parameters: ``beta`` (T, r) for ``linear``; ``u`` (T, k, r) and
        ``v`` (T, k) for ``two-layer``; ``a`` and ``b`` (T, r) for ``xor``.
    noise : float
        Label-flip probability in [0, 0.5).
    """

    M: Tensor
    family: str
    params: dict[str, Tensor]
    noise: float = 0.0

    @property
    def d(self) -> int:
        """Ambient dimension."""
        return self.M.shape[0]

    @property
    def r(self) -> int:
        """Subspace dimension."""
        return self.M.shape[1]

    @property
    def T(self) -> int:  # noqa: N802 - the paper's symbol
        """Number of tasks."""
        return next(iter(self.params.values())).shape[0]

    def scores(self, z: Tensor) -> Tensor:
        r"""Evaluate :math:`g_t(z)` for every task.

        Parameters
        ----------
        z : Tensor of shape (..., T, n, r)
            Projected inputs :math:`M^\top x` (task axis second to last but one).

        Returns
        -------
        Tensor of shape (..., T, n)
        """
        p = {k: v.to(device=z.device, dtype=z.dtype) for k, v in self.params.items()}
        if self.family == "linear":
            return torch.einsum("...tnr,tr->...tn", z, p["beta"])
        if self.family == "xor":
            return torch.einsum("...tnr,tr->...tn", z, p["a"]) * torch.einsum("...tnr,tr->...tn", z, p["b"])
        pre = torch.einsum("...tnr,tkr->...tnk", z, p["u"])
        centre = p["u"].norm(dim=-1) / math.sqrt(2.0 * math.pi)  # E relu(u^T z) for z ~ N(0, I)
        return torch.einsum("...tnk,tk->...tn", torch.relu(pre) - centre[:, None, :], p["v"])

    def clean_labels(self, x: Tensor) -> Tensor:
        r"""Noise-free labels :math:`\operatorname{sign} g_t(M^\top x)` in {-1, +1}.

        Parameters
        ----------
        x : Tensor of shape (T, n, d)
            Inputs of each task.

        Returns
        -------
        Tensor of shape (T, n), dtype of ``x``
        """
        if x.ndim != 3 or x.shape[0] != self.T or x.shape[-1] != self.d:
            raise ValueError(f"`x` must have shape (T={self.T}, n, d={self.d}), got {tuple(x.shape)}")
        g = self.scores(x @ self.M.to(device=x.device, dtype=x.dtype))
        return torch.where(g >= 0, 1.0, -1.0).to(x.dtype)

    def sample(
        self, n: int, *, generator: torch.Generator, dtype: torch.dtype = torch.float32
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n`` fresh samples per task.

        Parameters
        ----------
        n : int
            Samples per task, >= 1.
        generator : torch.Generator
            Source of randomness (CPU).
        dtype : torch.dtype, default=torch.float32
            Dtype of the returned tensors.

        Returns
        -------
        x : Tensor of shape (T, n, d)
        y : Tensor of shape (T, n)
            Labels in {-1, +1}, flipped with probability :attr:`noise`.
        """
        _check_int("n", n, 1)
        x = torch.randn(self.T, n, self.d, generator=generator, dtype=torch.float64)
        y = self.clean_labels(x)
        if self.noise > 0:
            flip = torch.rand(self.T, n, generator=generator, dtype=torch.float64) < self.noise
            y = torch.where(flip, -y, y)
        return x.to(dtype), y.to(dtype)


def make_tasks(
    d: int,
    r: int,
    T: int,  # noqa: N803 - the paper's symbol
    family: str = "linear",
    *,
    generator: torch.Generator,
    M: Tensor | None = None,  # noqa: N803
    noise: float = 0.0,
) -> MultiIndexTasks:
    """Draw T tasks of ``family`` on a random (or the given) r-dimensional subspace of R^d.

    Parameters
    ----------
    d, r : int
        Ambient and subspace dimensions, ``1 <= r < d``.
    T : int
        Number of tasks, >= 1.
    family : {"linear", "two-layer", "xor"}, default="linear"
        Task family (see the module docstring).
    generator : torch.Generator
        Source of randomness (CPU); draws M (unless given), then the tasks.
    M : Tensor of shape (d, r), default=None
        A fixed ground-truth basis (e.g. to draw downstream tasks on the same subspace).
    noise : float, default=0.0
        Label-flip probability in [0, 0.5).

    Returns
    -------
    MultiIndexTasks

    Raises
    ------
    ValueError
        ``r >= d``, ``T < 1``, an unknown ``family``, ``noise`` outside [0, 0.5),
        or ``M`` of the wrong shape or not orthonormal.

    Examples
    --------
    >>> import torch
    >>> tasks = make_tasks(20, 2, 5, "linear", generator=torch.Generator().manual_seed(0))
    >>> x, y = tasks.sample(8, generator=torch.Generator().manual_seed(1))
    >>> tuple(x.shape), tuple(y.shape)
    ((5, 8, 20), (5, 8))
    """
    check_dimensions(d, r)
    _check_int("T", T, 1)
    check_family(family)
    if not (isinstance(noise, int | float) and 0.0 <= noise < 0.5):
        raise ValueError(f"`noise` must be a label-flip probability in [0, 0.5), got {noise!r}")
    if M is None:
        M = random_subspace(d, r, generator=generator)  # noqa: N806
    else:
        M = torch.as_tensor(M, dtype=torch.float64)  # noqa: N806
        if tuple(M.shape) != (d, r):
            raise ValueError(f"`M` must have shape (d={d}, r={r}), got {tuple(M.shape)}")
        if not torch.allclose(M.T @ M, torch.eye(r, dtype=torch.float64), atol=1e-8):
            raise ValueError("`M` must have orthonormal columns (M^T M = I_r); orthonormalise it with QR")
    if family == "linear":
        params = {"beta": _sphere(T, r, generator)}
    elif family == "xor":
        if r < 2:
            raise ValueError(f"`family` 'xor' needs r >= 2 (two directions per task), got r={r}")
        q = torch.linalg.qr(torch.randn(T, r, 2, generator=generator, dtype=torch.float64)).Q
        params = {"a": q[..., 0].contiguous(), "b": q[..., 1].contiguous()}
    else:
        u = _sphere(T * _TWO_LAYER_WIDTH, r, generator).reshape(T, _TWO_LAYER_WIDTH, r)
        params = {"u": u, "v": torch.randn(T, _TWO_LAYER_WIDTH, generator=generator, dtype=torch.float64)}
    return MultiIndexTasks(M=M, family=family, params=params, noise=float(noise))
