r"""Experiment ``teacher-student``: GLM limits, GAMP and NUTS on two-layer teachers.

Over a grid of :math:`\alpha = n/d`: the GLM state-evolution curves (generalisation
error and mutual information) of the linear, sign and ReLU channels; GAMP on
finite d with error bars over repetitions; and NUTS Bayes-optimal estimates for
two-layer teachers of growing width p at small d, next to the curve of the GLM
they are Gaussian-equivalent to (Camilli, Tieplova & Barbier 2023).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sciprob.config import param
from sciprob.experiments import RunContext, experiment

_SIGN_LARGE_ALPHA = 0.442  # alpha * eps -> 0.442 for the Bayes-optimal perceptron (Opper & Haussler 1991)
_SIGN_LARGE_ALPHA_AT = 1000.0


@dataclass(frozen=True)
class TeacherStudentConfig:
    """Grids, channels and sampler settings of the teacher-student study."""

    alphas: tuple[float, ...] = param(
        (0.5, 1.0, 2.0, 4.0), "alpha = n/d values where SE and GAMP are reported"
    )
    curve_alpha_max: float = param(10.0, "largest alpha of the plotted state-evolution curves")
    curve_points: int = param(30, "log-spaced alpha values of the curves, from alpha_max/100")
    channels: tuple[str, ...] = param(("linear", "sign", "relu"), "GLM channels: linear, sign, relu")
    noise: float = param(0.1, "noise variance Delta of the linear and ReLU channels")
    sign_noise: float = param(0.0, "Gaussian pre-activation noise variance of the sign channel")
    sign_flip: float = param(0.0, "label-flip probability of the sign channel")
    relu_nodes: int = param(96, "Gauss-Hermite nodes per dimension of the ReLU channel")
    amp_d: int = param(2000, "input dimension d of the GAMP runs")
    amp_repeats: int = param(3, "GAMP runs (fresh teacher and data) per alpha, for error bars")
    amp_iter: int = param(60, "GAMP iteration cap")
    activation: Literal["erf", "tanh", "relu", "identity"] = param("erf", "hidden activation of the teachers")
    nuts_d: int = param(8, "input dimension d of the NUTS teachers")
    nuts_widths: tuple[int, ...] = param((1, 4, 16), "hidden widths p of the NUTS teachers")
    nuts_alphas: tuple[float, ...] = param((2.0,), "alpha values of the NUTS runs")
    nuts_noise: float = param(0.1, "output noise variance Delta of the two-layer teachers")
    nuts_teachers: int = param(1, "teachers (data sets) averaged per (p, alpha)")
    nuts_samples: int = param(100, "NUTS draws kept per chain")
    nuts_warmup: int = param(100, "NUTS warm-up steps per chain")
    nuts_chains: int = param(2, "NUTS chains (>= 2 for R-hat)")
    nuts_tree_depth: int = param(6, "NUTS maximum tree depth")
    nuts_jit: bool = param(True, "compile the NUTS potential with the PyTorch JIT")
    nuts_test: int = param(2000, "test inputs of the NUTS predictors")
    svi_steps: int = param(0, "SVI (mean-field) steps per NUTS setting; 0 skips SVI")

    def __post_init__(self) -> None:
        from sciprob.theory.teacher_student.channels import CHANNELS

        for key in ("alphas", "nuts_alphas"):
            bad = [a for a in getattr(self, key) if not (math.isfinite(a) and a > 0)]
            if bad or not getattr(self, key):
                raise ValueError(f"`{key}` must be non-empty, finite and > 0, got {getattr(self, key)}")
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r} in `channels`; choose from {sorted(CHANNELS)}")
        for key in ("noise", "nuts_noise"):
            if not (math.isfinite(getattr(self, key)) and getattr(self, key) > 0):
                raise ValueError(f"`{key}` must be finite and > 0, got {getattr(self, key)!r}")
        if not (math.isfinite(self.sign_noise) and self.sign_noise >= 0):
            raise ValueError(f"`sign_noise` must be finite and >= 0, got {self.sign_noise!r}")
        if not 0 <= self.sign_flip < 0.5:
            raise ValueError(f"`sign_flip` must lie in [0, 0.5), got {self.sign_flip!r}")
        if self.nuts_chains < 2:
            raise ValueError(f"`nuts_chains` must be >= 2 so that R-hat exists, got {self.nuts_chains}")
        for key, low in [
            ("curve_points", 2),
            ("amp_d", 2),
            ("amp_repeats", 2),
            ("amp_iter", 1),
            ("nuts_d", 1),
            ("nuts_teachers", 1),
            ("nuts_samples", 4),
            ("nuts_warmup", 0),
            ("nuts_test", 1),
            ("nuts_tree_depth", 1),
            ("relu_nodes", 2),
            ("svi_steps", 0),
        ]:
            if getattr(self, key) < low:
                raise ValueError(f"`{key}` must be >= {low}, got {getattr(self, key)}")
        if not self.nuts_widths or min(self.nuts_widths) < 1:
            raise ValueError(f"`nuts_widths` must be positive integers, got {self.nuts_widths}")


def _channel(cfg: TeacherStudentConfig, name: str):
    from sciprob.theory.teacher_student.channels import make_channel

    if name == "sign":
        return make_channel("sign", noise=cfg.sign_noise, flip=cfg.sign_flip)
    if name == "relu":
        return make_channel("relu", noise=cfg.noise, n_nodes=cfg.relu_nodes)
    return make_channel(name, noise=cfg.noise)


def _key(a: float) -> str:
    return f"alpha={a:g}"


def _glm_part(cfg: TeacherStudentConfig, ctx: RunContext, metrics: dict[str, float], plt) -> None:
    """State evolution curves and GAMP on finite d."""
    from sciprob.runtime import ProgressBar
    from sciprob.theory.teacher_student.gamp import gamp, sample_glm
    from sciprob.theory.teacher_student.state_evolution import state_evolution

    curve = np.geomspace(cfg.curve_alpha_max / 100, cfg.curve_alpha_max, cfg.curve_points)
    grid = np.unique(np.concatenate([curve, cfg.alphas]))
    rng = np.random.default_rng(ctx.seed)
    fig, (ax_err, ax_mi) = plt.subplots(1, 2, figsize=(10, 4))
    se_rows = [
        "| channel | alpha | q | weight MSE | gen. error | MI/d (nats) | iterations |",
        "|---|---|---|---|---|---|---|",
    ]
    amp_rows = [
        "| channel | alpha | GAMP gen. error (mean ± std) | SE | iterations | converged |",
        "|---|---|---|---|---|---|",
    ]
    reports = []
    trajectory = None
    with ProgressBar(len(cfg.channels) * (1 + len(cfg.alphas) * cfg.amp_repeats), "GLM: SE + GAMP") as bar:
        for name in cfg.channels:
            ch = _channel(cfg, name)
            with ctx.timer(f"se_seconds/{name}"):
                se = state_evolution(ch, grid)
            reports.append(f"- `{name}`: {se.convergence_report()}")
            bar.update(channel=name)
            at = {float(a): i for i, a in enumerate(se.alpha)}
            for a in cfg.alphas:
                i = at[float(a)]
                metrics[f"se_gen_error/{name}/{_key(a)}"] = float(se.gen_error[i])
                metrics[f"mutual_info/{name}/{_key(a)}"] = float(se.mutual_info[i])
                se_rows.append(
                    f"| {name} | {a:g} | {se.q[i]:.4f} | {se.mse[i]:.4f} | {se.gen_error[i]:.4f} "
                    f"| {se.mutual_info[i]:.4f} | {se.iterations[i]} |"
                )
                errs, iters, conv = [], [], []
                for _ in range(cfg.amp_repeats):
                    data = sample_glm(ch, int(round(a * cfg.amp_d)), cfg.amp_d, rng)
                    with ctx.timer(f"gamp_seconds/{name}"):
                        res = gamp(data.X, data.y, ch, w_star=data.w_star, max_iter=cfg.amp_iter)
                    errs.append(res.gen_error[-1])
                    iters.append(len(res.gen_error))
                    conv.append(res.converged)
                    if name == "sign" and trajectory is None and a >= 1:
                        trajectory = (a, res)
                    bar.update(channel=name, alpha=a)
                metrics[f"amp_gen_error/{name}/{_key(a)}"] = float(np.mean(errs))
                metrics[f"amp_gen_error_std/{name}/{_key(a)}"] = float(np.std(errs, ddof=1))
                amp_rows.append(
                    f"| {name} | {a:g} | {np.mean(errs):.4f} ± {np.std(errs, ddof=1):.4f} | "
                    f"{se.gen_error[i]:.4f} | {max(iters)} | {sum(conv)}/{len(conv)} |"
                )
                ax_err.errorbar(
                    [a],
                    [np.mean(errs)],
                    yerr=[np.std(errs, ddof=1)],
                    fmt="o",
                    color=f"C{len(reports) - 1}",
                    capsize=3,
                )
            c = f"C{len(reports) - 1}"
            ax_err.plot(se.alpha, se.gen_error, "-", color=c, label=f"{name} (SE; dots: GAMP d={cfg.amp_d})")
            ax_mi.plot(se.alpha, se.mutual_info, "-", color=c, label=name)
            if name == "sign" and cfg.sign_noise == 0 and cfg.sign_flip == 0:
                big = state_evolution(ch, _SIGN_LARGE_ALPHA_AT)
                key = f"se_alpha_times_error/sign/{_key(_SIGN_LARGE_ALPHA_AT)}"
                metrics[key] = float(big.alpha[0] * big.gen_error[0])
                ctx.anchor(
                    key,
                    _SIGN_LARGE_ALPHA,
                    "large-alpha limit of alpha*eps for the Bayes-optimal "
                    "perceptron (Opper & Haussler 1991; Engel & Van den Broeck 2001, ch. 3)",
                )
    for ax, label in [
        (ax_err, "Bayes-optimal generalisation error"),
        (ax_mi, "mutual information per variable"),
    ]:
        ax.set_xscale("log")
        ax.set_xlabel("alpha = n/d")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    ctx.savefig(
        fig,
        "glm_curves.png",
        "State-evolution curves (lines) with GAMP at finite d (dots: mean ± std "
        "over repetitions), and the mutual information per variable.",
    )
    ctx.table("State evolution (fixed point of largest free entropy)", "\n".join(se_rows))
    ctx.table("GAMP at finite d against state evolution", "\n".join(amp_rows))
    ctx.note(
        "State-evolution convergence (damped iteration, tol 1e-13, both initialisations):\n"
        + "\n".join(reports)
        + "\n\nGeneralisation error is the test MSE on a fresh noisy label "
        f"(noise Delta = {cfg.noise:g} included) for linear and ReLU, and the misclassification rate "
        "for sign."
    )
    if trajectory is not None:
        a, res = trajectory
        fig, ax = plt.subplots(figsize=(5, 3.6))
        t = np.arange(1, len(res.overlap) + 1)
        ax.plot(t, res.overlap, "o", label=f"GAMP overlap, d={cfg.amp_d}")
        ax.plot(t, res.se_q, "-", label="state evolution q_t")
        ax.set_xlabel("iteration t")
        ax.set_ylabel("overlap")
        ax.set_title(f"sign channel, alpha={a:g}")
        ax.legend(fontsize=8)
        ctx.savefig(
            fig, "gamp_trajectory.png", "GAMP's overlap per iteration against its state-evolution prediction."
        )


def _nuts_part(cfg: TeacherStudentConfig, ctx: RunContext, metrics: dict[str, float], plt) -> None:
    """NUTS (and optionally SVI) Bayes-optimal estimates for two-layer teachers of growing width."""
    import torch

    from sciprob.runtime import ProgressBar, load_checkpoint, save_checkpoint
    from sciprob.theory.teacher_student.equivalence import equivalent_glm
    from sciprob.theory.teacher_student.state_evolution import state_evolution
    from sciprob.theory.teacher_student.two_layer import (
        TwoLayerNetwork,
        nuts_posterior,
        sample_teacher_data,
        svi_posterior,
    )

    glm = equivalent_glm(cfg.activation, "linear", cfg.nuts_noise)
    k = glm.coefficients
    se = state_evolution(glm.channel, cfg.nuts_alphas)
    done = (load_checkpoint(ctx.checkpoint_path) or {}).get("runs", {}) if ctx.resume else {}
    rows = [
        "| p | alpha | teacher | NUTS test MSE | equiv. GLM (SE) | overlap m | q | R-hat (inv.) | ESS (inv.) "
        "| R-hat raw W | divergences | mixed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    not_mixed = []
    results: dict[tuple[int, float], list[float]] = {}
    jobs = [(p, a, t) for p in cfg.nuts_widths for a in cfg.nuts_alphas for t in range(cfg.nuts_teachers)]
    with ProgressBar(len(jobs), "NUTS teachers") as bar:
        for p, a, t in jobs:
            tag = f"p={p}/{_key(a)}/teacher={t}"
            if tag not in done:
                net = TwoLayerNetwork(cfg.nuts_d, p, cfg.activation, "linear", cfg.nuts_noise)
                gen = torch.Generator().manual_seed(ctx.seed * 100_003 + 7919 * p + 31 * t + int(1000 * a))
                data = sample_teacher_data(net, max(1, int(round(a * cfg.nuts_d))), cfg.nuts_test, gen)
                with ctx.timer("nuts_seconds"):
                    est = nuts_posterior(
                        net,
                        data,
                        num_samples=cfg.nuts_samples,
                        warmup_steps=cfg.nuts_warmup,
                        num_chains=cfg.nuts_chains,
                        seed=ctx.seed + t,
                        max_tree_depth=cfg.nuts_tree_depth,
                        jit_compile=cfg.nuts_jit,
                    )
                diag = est.diagnostics
                row = {
                    "err": est.test_error,
                    "m": est.overlap,
                    "q": est.self_overlap,
                    "rhat": est.r_hat_invariant,
                    "ess": est.ess_invariant,
                    "rhat_raw": diag.r_hat["W"],
                    "div": sum(diag.divergences),
                    "mixed": est.mixed(),
                    "svi": float("nan"),
                }
                if cfg.svi_steps:
                    with ctx.timer("svi_seconds"):
                        row["svi"] = svi_posterior(
                            net, data, steps=cfg.svi_steps, seed=ctx.seed + t
                        ).test_error
                done[tag] = row
                save_checkpoint(ctx.checkpoint_path, {"runs": done})
            r = done[tag]
            results.setdefault((p, a), []).append(r["err"])
            if cfg.svi_steps:
                results.setdefault((p, a, "svi"), []).append(r["svi"])
            i = list(se.alpha).index(a)
            rows.append(
                f"| {p} | {a:g} | {t} | {r['err']:.4f} | {se.gen_error[i]:.4f} | {r['m']:.3f} | {r['q']:.3f} "
                f"| {r['rhat']:.3f} | {r['ess']:.0f} | {r['rhat_raw']:.2f} | {r['div']} "
                f"| {'yes' if r['mixed'] else '**NO**'} |"
            )
            if not r["mixed"]:
                not_mixed.append(f"{tag} (R-hat {r['rhat']:.3f}, ESS {r['ess']:.0f})")
            metrics[f"nuts_r_hat/p={p}/{_key(a)}"] = max(
                metrics.get(f"nuts_r_hat/p={p}/{_key(a)}", 0.0), r["rhat"]
            )
            bar.update(p=p, alpha=a, err=r["err"])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    grid = np.geomspace(min(cfg.nuts_alphas) / 2, max(cfg.nuts_alphas) * 2, 40)
    ax.plot(grid, state_evolution(glm.channel, grid).gen_error, "k-", label="equivalent GLM (SE)")
    for j, p in enumerate(cfg.nuts_widths):
        for a in cfg.nuts_alphas:
            errs = results[(p, a)]
            metrics[f"nuts_gen_error/p={p}/{_key(a)}"] = float(np.mean(errs))
            if cfg.svi_steps:
                metrics[f"svi_gen_error/p={p}/{_key(a)}"] = float(np.mean(results[(p, a, "svi")]))
            ax.errorbar(
                [a * (1 + 0.04 * j)],
                [np.mean(errs)],
                yerr=[np.std(errs)] if len(errs) > 1 else None,
                fmt="o",
                color=f"C{j}",
                capsize=3,
                label=f"NUTS p={p}" if a == cfg.nuts_alphas[0] else None,
            )
    for i, a in enumerate(se.alpha):
        metrics[f"se_gen_error/equivalent-{cfg.activation}/{_key(a)}"] = float(se.gen_error[i])
    ax.set_xscale("log")
    ax.set_xlabel("alpha = n/d")
    ax.set_ylabel("test MSE (with noise)")
    ax.set_title(f"two-layer {cfg.activation} teachers, d={cfg.nuts_d}")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    ctx.savefig(
        fig,
        "nuts_vs_glm.png",
        "NUTS Bayes-optimal test error of two-layer teachers of width p against "
        "the state-evolution curve of their Gaussian-equivalent GLM.",
    )
    ctx.table(
        "NUTS on two-layer teachers (invariant diagnostics on test outputs and v = W^T a / sqrt p)",
        "\n".join(rows),
    )
    ctx.note(
        f"Equivalent GLM of the `{cfg.activation}` teacher: kappa0 = {k.kappa0:.4f}, "
        f"kappa1 = {k.kappa1:.4f}, kappa* = {k.kappa_star:.4f}; y = kappa1 v.x/sqrt(d) + noise of "
        "variance Delta + kappa*^2. Its curve is the d -> infinity limit, while NUTS runs at "
        f"d = {cfg.nuts_d} with {cfg.nuts_teachers} teacher(s) per "
        "point, so finite-d and teacher-to-teacher fluctuations (the teacher's |v|^2/d itself fluctuates at "
        "small p) are of the same order as the gap being shown. R-hat of the raw weights W is reported but "
        "not used for 'mixed': hidden-unit permutations and (for odd activations) sign flips make equivalent "
        "modes that chains need not visit."
    )
    if not_mixed:
        ctx.note(
            "**Chains did not mix** (invariant R-hat > 1.05 or ESS < 100) for: "
            + "; ".join(not_mixed)
            + ". Their errors are shown but are not reliable Bayes-optimal estimates; rerun with more "
            "warm-up/draws."
        )
    else:
        ctx.note("All NUTS runs mixed on the invariant quantities (R-hat <= 1.05, ESS >= 100).")


@experiment(
    "teacher-student",
    config=TeacherStudentConfig,
    presets={
        "tiny": {
            "alphas": (0.5, 2.0),
            "curve_points": 6,
            "channels": ("linear", "sign", "relu"),
            "relu_nodes": 24,
            "amp_d": 200,
            "amp_repeats": 2,
            "amp_iter": 30,
            "nuts_d": 4,
            "nuts_widths": (2,),
            "nuts_alphas": (2.0,),
            "nuts_samples": 20,
            "nuts_warmup": 20,
            "nuts_tree_depth": 4,
            "nuts_test": 200,
            "svi_steps": 50,
        },
        "quick": {"relu_nodes": 64, "amp_d": 1000, "nuts_samples": 200, "nuts_warmup": 150, "svi_steps": 300},
        "paper": {
            "alphas": (0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
            "curve_points": 60,
            "amp_d": 4000,
            "amp_repeats": 10,
            "nuts_d": 20,
            "nuts_widths": (1, 4, 16, 64),
            "nuts_alphas": (0.5, 1.0, 2.0, 4.0),
            "nuts_teachers": 4,
            "nuts_samples": 500,
            "nuts_warmup": 500,
            "nuts_chains": 4,
            "nuts_tree_depth": 8,
            "svi_steps": 3000,
        },
    },
    paper="Camilli, Tieplova & Barbier 2023, Fundamental limits of overparametrized shallow neural networks "
    "(arXiv:2307.05635); GLM formulas of Barbier et al., PNAS 2019",
    summary="Bayes-optimal error and mutual information of GLMs (state evolution, GAMP) and of two-layer "
    "teachers (NUTS) against their Gaussian-equivalent GLM.",
)
def run(cfg: TeacherStudentConfig, ctx: RunContext) -> dict[str, float]:
    """State evolution and GAMP for each channel, then NUTS on two-layer teachers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics: dict[str, float] = {}
    _glm_part(cfg, ctx, metrics, plt)
    _nuts_part(cfg, ctx, metrics, plt)
    ctx.note(
        "Camilli et al. give bounds, not numbers: no figure or table of theirs is reproduced digit by digit "
        "(their exact constants were not available to us). What is checked is the ordering their bounds "
        "imply: the two-layer Bayes error approaching the equivalent-GLM curve as p grows."
    )
    return metrics
