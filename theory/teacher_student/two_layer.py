r"""The two-layer teacher-student pair as a Pyro model, sampled with NUTS or fitted by SVI.

The student has the teacher's architecture and priors on both layers
(n samples, d inputs, p hidden units):

.. math::

    W_{ij} \sim \mathcal N(0, 1), \quad a_i \sim \mathcal N(0, 1), \quad
    f(x) = \frac{1}{\sqrt p}\, a^\top \sigma\!\left(\frac{W x}{\sqrt d}\right), \quad
    y \mid x \sim \begin{cases}
        \mathcal N(f(x), \Delta) & \text{linear output} \\
        \pm 1 \text{ with } P(y = 1) = \Phi(f(x)/\sqrt\Delta) & \text{sign output.}
    \end{cases}

Since the student's prior and likelihood are the teacher's, the posterior mean
:math:`\mathbb E[f(x) \mid \mathcal D]` is the Bayes-optimal predictor (of the label
probability, for sign outputs), so its test error *is* the Bayes-optimal error
that Camilli, Tieplova and Barbier bound by the equivalent GLM's
(:mod:`~sciprob.theory.teacher_student.equivalence`). Overlaps are measured on
the permutation- and sign-invariant vector :math:`v = W^\top a/\sqrt p`, the
GLM weight of the Gaussian equivalence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoNormal
from pyro.nn import PyroModule, PyroSample, pyro_method

from sciprob.ppl.mcmc import MCMCResult, mcmc_diagnostics, run_nuts
from sciprob.runtime import NonFiniteLossError, isolated_rng
from sciprob.runtime.progress import ProgressBar

TORCH_ACTIVATIONS = {
    "relu": torch.relu,
    "erf": torch.erf,
    "tanh": torch.tanh,
    "sign": torch.sign,
    "identity": lambda h: h,
}
"""Activations by name (torch twins of ``equivalence.ACTIVATIONS``)."""


def _check_int(name: str, value: int, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"`{name}` must be an integer >= {low}, got {value!r}")


class TwoLayerNetwork(PyroModule):
    r"""Two-layer network with standard Gaussian priors on both layers (see the module docstring).

    Parameters
    ----------
    d : int
        Input dimension.
    p : int
        Hidden units.
    activation : {"erf", "tanh", "relu", "sign", "identity"}, default="erf"
        Hidden activation :math:`\sigma` (NUTS needs a differentiable one: not "sign").
    output : {"linear", "sign"}, default="linear"
        Output channel.
    noise : float, default=0.1
        Noise variance :math:`\Delta > 0` (for sign outputs, the probit width).

    Attributes
    ----------
    W : PyroSample of shape (p, d)
    a : PyroSample of shape (p,)
    """

    def __init__(
        self, d: int, p: int, activation: str = "erf", output: str = "linear", noise: float = 0.1
    ) -> None:
        super().__init__()
        _check_int("d", d)
        _check_int("p", p)
        if activation not in TORCH_ACTIVATIONS:
            raise ValueError(
                f"unknown `activation` {activation!r}; choose one of {sorted(TORCH_ACTIVATIONS)}"
            )
        if output not in ("linear", "sign"):
            raise ValueError(f"unknown `output` {output!r}; choose 'linear' or 'sign'")
        if not (isinstance(noise, int | float) and math.isfinite(noise) and noise > 0):
            raise ValueError(
                f"`noise` must be finite and > 0 (a likelihood NUTS can differentiate), got {noise!r}"
            )
        self.d, self.p = d, p
        self.activation, self.output, self.noise = activation, output, float(noise)
        self.W = PyroSample(dist.Normal(0.0, 1.0).expand([p, d]).to_event(2))
        self.a = PyroSample(dist.Normal(0.0, 1.0).expand([p]).to_event(1))

    def predict_f(self, x: torch.Tensor, W: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Network output :math:`f(x)` for given weights, batched over draws.

        Parameters
        ----------
        x : Tensor of shape (n, d)
        W : Tensor of shape (*draws, p, d)
        a : Tensor of shape (*draws, p)

        Returns
        -------
        Tensor of shape (*draws, n)
        """
        h = TORCH_ACTIVATIONS[self.activation](x @ W.transpose(-1, -2) / math.sqrt(self.d))
        return (h @ a.unsqueeze(-1)).squeeze(-1) / math.sqrt(self.p)

    @pyro_method
    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Sample ``y`` given ``x`` (observed when ``y`` is given).

        Parameters
        ----------
        x : Tensor of shape (n, d)
        y : Tensor of shape (n,), default=None
            Real labels (linear output) or labels in {-1, +1} (sign output).

        Returns
        -------
        Tensor of shape (n,)
            The labels.
        """
        f = self.predict_f(x, self.W, self.a)
        with pyro.plate("data", x.shape[0]):
            if self.output == "linear":
                return pyro.sample("y", dist.Normal(f, math.sqrt(self.noise)), obs=y)
            probs = dist.Normal(0.0, 1.0).cdf(f / math.sqrt(self.noise)).clamp(1e-7, 1 - 1e-7)
            obs = None if y is None else (y > 0).to(f.dtype)
            return 2.0 * pyro.sample("y", dist.Bernoulli(probs), obs=obs) - 1.0


@dataclass(frozen=True)
class TeacherData:
    """A teacher and its training and test sets.

    Attributes
    ----------
    W : Tensor of shape (p, d)
    a : Tensor of shape (p,)
    x, y : Tensors of shapes (n, d) and (n,)
        Training set.
    x_test : Tensor of shape (n_test, d)
        Test inputs (their errors are computed in expectation over the label noise).
    """

    W: torch.Tensor
    a: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor


def sample_teacher_data(
    network: TwoLayerNetwork, n: int, n_test: int, generator: torch.Generator
) -> TeacherData:
    """Draw a teacher from the prior, n training pairs and n_test test inputs.

    Parameters
    ----------
    network : TwoLayerNetwork
        Architecture, channel and priors shared by teacher and student.
    n, n_test : int
        Training and test set sizes.
    generator : torch.Generator
        Source of randomness.

    Returns
    -------
    TeacherData
    """
    _check_int("n", n)
    _check_int("n_test", n_test)
    W = torch.randn(network.p, network.d, generator=generator)
    a = torch.randn(network.p, generator=generator)
    x = torch.randn(n, network.d, generator=generator)
    f = network.predict_f(x, W, a)
    noisy = f + math.sqrt(network.noise) * torch.randn(n, generator=generator)
    y = noisy if network.output == "linear" else torch.where(noisy >= 0, 1.0, -1.0)
    return TeacherData(W=W, a=a, x=x, y=y, x_test=torch.randn(n_test, network.d, generator=generator))


@dataclass(frozen=True)
class PosteriorEstimate:
    r"""Bayes-optimal (posterior-mean) predictor measured against the teacher.

    Attributes
    ----------
    test_error : float
        Test MSE on fresh noisy labels (linear output, :math:`\Delta` included) or
        misclassification rate (sign output), averaged exactly over the label noise.
    overlap : float
        :math:`m = \hat v^\top v^*/d` with :math:`v = W^\top a/\sqrt p`.
    self_overlap : float
        :math:`q = \|\hat v\|^2/d`.
    teacher_norm : float
        :math:`\|v^*\|^2/d`.
    diagnostics : MCMCResult or None
        NUTS draws and per-site diagnostics (None for SVI).
    r_hat_invariant : float
        Worst split R-hat over the invariant quantities (test outputs f and v); NaN for SVI.
    ess_invariant : float
        Smallest ESS over the invariant quantities; NaN for SVI.
    """

    test_error: float
    overlap: float
    self_overlap: float
    teacher_norm: float
    diagnostics: MCMCResult | None = None
    r_hat_invariant: float = float("nan")
    ess_invariant: float = float("nan")

    def mixed(self, r_hat_max: float = 1.05, ess_min: float = 100.0) -> bool:
        """Whether the invariant quantities mixed (always False for SVI, which has no chains)."""
        return self.r_hat_invariant <= r_hat_max and self.ess_invariant >= ess_min


def evaluate_posterior(
    network: TwoLayerNetwork, W: torch.Tensor, a: torch.Tensor, data: TeacherData
) -> PosteriorEstimate:
    """Test error and overlaps of the posterior-mean predictor from posterior draws.

    Parameters
    ----------
    network : TwoLayerNetwork
    W : Tensor of shape (draws, p, d)
    a : Tensor of shape (draws, p)
    data : TeacherData

    Returns
    -------
    PosteriorEstimate
    """
    f_star = network.predict_f(data.x_test, data.W, data.a)
    f_draws = network.predict_f(data.x_test, W, a)  # (draws, n_test)
    if network.output == "linear":
        err = float(((f_draws.mean(0) - f_star) ** 2).mean()) + network.noise
    else:
        normal = dist.Normal(0.0, 1.0)
        p_plus = normal.cdf(f_draws / math.sqrt(network.noise)).mean(0)
        p_true = normal.cdf(f_star / math.sqrt(network.noise))
        err = float(torch.where(p_plus >= 0.5, 1.0 - p_true, p_true).mean())
    v_star = data.W.T @ data.a / math.sqrt(network.p)
    v_hat = (W.transpose(-1, -2) @ a.unsqueeze(-1)).squeeze(-1).mean(0) / math.sqrt(network.p)
    d = network.d
    return PosteriorEstimate(
        test_error=err,
        overlap=float(v_hat @ v_star) / d,
        self_overlap=float(v_hat @ v_hat) / d,
        teacher_norm=float(v_star @ v_star) / d,
    )


def nuts_posterior(
    network: TwoLayerNetwork,
    data: TeacherData,
    *,
    num_samples: int = 500,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    max_tree_depth: int = 8,
    jit_compile: bool = False,
    progress: bool = False,
) -> PosteriorEstimate:
    """Sample the student's posterior with NUTS and evaluate the posterior mean.

    Diagnostics are computed both per raw site (``W``, ``a``: these carry the
    permutation symmetry of hidden units, so chains may sit in different but
    equivalent modes) and on the invariant quantities that the errors depend on.

    Parameters
    ----------
    network : TwoLayerNetwork
    data : TeacherData
    num_samples, warmup_steps, num_chains, seed, max_tree_depth, jit_compile, progress
        See :func:`sciprob.ppl.run_nuts`.

    Returns
    -------
    PosteriorEstimate
    """
    res = run_nuts(
        network,
        data.x,
        data.y,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        seed=seed,
        max_tree_depth=max_tree_depth,
        jit_compile=jit_compile,
        progress=progress,
    )
    W, a = res.samples["W"], res.samples["a"]  # (chains, draws, ...)
    invariant = {
        "f_test": network.predict_f(data.x_test, W, a),
        "v": (W.transpose(-1, -2) @ a.unsqueeze(-1)).squeeze(-1) / math.sqrt(network.p),
    }
    r_hat, ess = mcmc_diagnostics(invariant)
    est = evaluate_posterior(network, res.flat("W"), res.flat("a"), data)
    return PosteriorEstimate(
        **{
            **est.__dict__,
            "diagnostics": res,
            "r_hat_invariant": max(r_hat.values()),
            "ess_invariant": min(ess.values()),
        }
    )


def svi_posterior(
    network: TwoLayerNetwork,
    data: TeacherData,
    *,
    steps: int = 2000,
    lr: float = 0.02,
    num_draws: int = 500,
    seed: int = 0,
    progress: bool = False,
) -> PosteriorEstimate:
    """Mean-field Gaussian variational posterior (``AutoNormal``, Adam on the ELBO).

    Faster than NUTS but not Bayes-optimal: the factorised guide under-estimates
    the posterior's spread and ignores its symmetric modes.

    Parameters
    ----------
    network : TwoLayerNetwork
    data : TeacherData
    steps : int, default=2000
        Adam steps.
    lr : float, default=0.02
        Adam learning rate.
    num_draws : int, default=500
        Draws from the guide for the posterior mean.
    seed : int, default=0
        Seed of the initialisation and of the draws; the global generators are
        seeded with it only inside this call (:func:`sciprob.runtime.isolated_rng`)
        and restored afterwards.
    progress : bool, default=False
        Show a progress bar with the ELBO.

    Returns
    -------
    PosteriorEstimate

    Raises
    ------
    NonFiniteLossError
        If the ELBO becomes non-finite (a ``FloatingPointError``).
    """
    _check_int("steps", steps)
    _check_int("num_draws", num_draws)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"`lr` must be a finite number > 0, got {lr!r}")
    pyro.clear_param_store()
    # Pyro's SVI and Predictive draw from the global generators: seed them for this call only
    with isolated_rng(seed):
        guide = AutoNormal(network, init_scale=0.1)
        svi = SVI(network, guide, pyro.optim.Adam({"lr": lr}), Trace_ELBO())
        bar = ProgressBar(steps, "SVI") if progress else None
        for step in range(steps):
            loss = svi.step(data.x, data.y)
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    f"SVI: the ELBO loss is {loss} at step {step} (try a smaller `lr`, now {lr})"
                )
            if bar is not None:
                bar.update(elbo=-loss)
        draws = Predictive(network, guide=guide, num_samples=num_draws, return_sites=["W", "a"])(data.x)
    pyro.clear_param_store()
    W = draws["W"].detach().reshape(num_draws, network.p, network.d)
    return evaluate_posterior(network, W, draws["a"].detach().reshape(num_draws, network.p), data)
