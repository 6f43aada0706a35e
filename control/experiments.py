"""Experiment ``gpide-tracking``: history encoders for robust tracking (Char & Schneider, NeurIPS 2023).

For each environment, train SAC with each history encoder over seeds on one
parameter range, then score it on held-out systems of the training range and
of the shifted range of the reference's protocol (fixed -> large,
small -> large, sim -> real), beside a tuned PID controller and doing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from sciprob.config import param
from sciprob.experiments import RunContext, experiment

ENVIRONMENTS = ("MassSpringDamper", "DoubleMassSpringDamper", "Navigation", "Tokamak")
HISTORY_FREE = ("none", "pid")

# Tuned-PID and do-nothing returns of the reference (env_constants.py of github.com/IanChar/GPIDE).
PID_REFERENCE = {
    ("MassSpringDamper", "fixed", "fixed"): -6.14,
    ("MassSpringDamper", "fixed", "large"): -11.39,
    ("MassSpringDamper", "small", "small"): -7.49,
    ("MassSpringDamper", "large", "large"): -11.12,
    ("DoubleMassSpringDamper", "fixed", "fixed"): -15.33,
    ("DoubleMassSpringDamper", "fixed", "large"): -27.59,
    ("Navigation", "sim", "sim"): -17.23,
    ("Navigation", "sim", "real"): -23.87,
    ("Tokamak", "sim", "sim"): -8.09,
}
NO_ACTION_REFERENCE = {"MassSpringDamper": -79.0, "DoubleMassSpringDamper": -154.0, "Navigation": -67.0}
SOURCE = "Char & Schneider 2023, official code env_constants.py"


@dataclass(frozen=True)
class GPIDETrackingConfig:
    """Environments, encoders, budgets and evaluation of the robustness protocol."""

    envs: tuple[str, ...] = param(("MassSpringDamper",), "environments: " + ", ".join(ENVIRONMENTS))
    train_range: Literal["fixed", "small", "med", "large"] = param(
        "fixed", "training range of the spring tasks (Navigation and Tokamak train on 'sim')"
    )
    encoders: tuple[str, ...] = param(("pid", "gpide"), "encoders: none, pid, gpide, gru, transformer")
    seeds: int = param(1, "training seeds per encoder")
    steps: int = param(5000, "environment steps per training run")
    updates_per_step: float = param(
        1.0, "gradient steps per env step, history-free encoders (1 in the paper)"
    )
    history_updates_per_step: float = param(1.0, "gradient steps per env step, history encoders")
    history_steps: int | None = param(None, "env steps for history encoders (default: `steps`)")
    window: int = param(100, "history window of the history encoders (100 in the paper)")
    num_envs: int = param(8, "systems collected in parallel")
    learning_starts: int = param(1000, "random-action steps before learning")
    eval_every: int = param(0, "env steps between learning-curve evaluations (0: end only)")
    eval_episodes: int = param(32, "held-out systems per evaluation range")
    pid_tune_iters: int = param(30, "differential-evolution generations for the PID gains")
    pid_tune_episodes: int = param(32, "training-range systems used to tune the PID gains")

    def __post_init__(self) -> None:
        bad = [e for e in self.envs if e not in ENVIRONMENTS]
        if not self.envs or bad:
            raise ValueError(f"`envs` must be a non-empty subset of {list(ENVIRONMENTS)}, got {self.envs}")
        allowed = ("none", "pid", "gpide", "gru", "transformer")
        if not self.encoders or any(e not in allowed for e in self.encoders):
            raise ValueError(f"`encoders` must be a non-empty subset of {list(allowed)}, got {self.encoders}")
        for name in (
            "seeds",
            "steps",
            "window",
            "num_envs",
            "eval_episodes",
            "pid_tune_iters",
            "pid_tune_episodes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")


def protocol(env: str, train_range: str) -> tuple[str, list[str]]:
    """Training range and evaluation ranges of the reference's table for ``env``."""
    if env == "Navigation":
        return "sim", ["sim", "real"]
    if env == "Tokamak":
        return "sim", ["sim"]  # the reference's "real" Tokamak needs a non-public simulator
    return train_range, [train_range] if train_range == "large" else [train_range, "large"]


def _train_runs(
    cfg: GPIDETrackingConfig, ctx: RunContext, env: str, env_id: str, tr: str, ranges: list[str]
) -> dict:
    from sciprob.control.training import evaluate, train

    runs: dict = {}
    for enc in cfg.encoders:
        free = enc in HISTORY_FREE
        steps = cfg.steps if free or cfg.history_steps is None else cfg.history_steps
        for seed in range(cfg.seeds):
            tag = f"{env}-{enc}-s{seed}"
            with ctx.timer(f"train_seconds/{env}/{enc}"):
                res = train(
                    env_id,
                    enc,
                    steps,
                    params=tr,
                    seed=ctx.seed * 1000 + seed,
                    window=None if free else cfg.window,
                    num_envs=cfg.num_envs,
                    updates_per_step=cfg.updates_per_step if free else cfg.history_updates_per_step,
                    learning_starts=cfg.learning_starts,
                    eval_every=cfg.eval_every,
                    eval_params={r: r for r in ranges},
                    eval_episodes=cfg.eval_episodes,
                    checkpoint=ctx.out_dir / "checkpoints" / f"{tag}.pt",
                    resume=ctx.resume,
                    log_csv=ctx.out_dir / "logs" / f"{tag}.csv",
                    device=ctx.device,
                )
            runs[enc, seed] = (res, {r: evaluate(res.agent, env_id, r, cfg.eval_episodes) for r in ranges})
    return runs


def _plots(ctx: RunContext, env: str, ranges: list[str], runs: dict, baselines: dict, encoders) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ranges), figsize=(5 * len(ranges), 3.6), squeeze=False)
    for ax, r in zip(axes[0], ranges, strict=True):
        for enc in encoders:
            hist = [res.history for (e, _), (res, _) in runs.items() if e == enc]
            steps = [row["step"] for row in hist[0]]
            vals = np.array([[row[f"eval/{r}"] for row in h] for h in hist])
            ax.plot(steps, vals.mean(0), "o-", label=enc)
        for name, res in baselines.items():
            ax.axhline(res[r].mean, ls="--", color="k" if name == "tuned-pid" else "0.6", label=name)
        ax.set_title(f"{env}: eval on {r}")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("return")
        ax.legend(fontsize=7)
    ctx.savefig(fig, f"curves_{env}.png", f"{env}: held-out returns during training (mean over seeds).")
    plt.close(fig)

    shift = ranges[-1]
    fig, (ax_x, ax_u) = plt.subplots(2, 1, figsize=(6.5, 5), sharex=True)
    first = {"tuned-pid": baselines["tuned-pid"][shift]}
    first.update({enc: runs[enc, 0][1][shift] for enc in encoders})
    for name, res in first.items():
        line = ax_x.plot(res.observations[0, :, 0], label=f"{name} ({res.returns[0]:.1f})")[0]
        ax_u.plot(res.actions[0, :, 0], color=line.get_color())
    ax_x.plot(res.observations[0, :, _dynamics(env).PID.target[0]], "k:", label="target")
    ax_x.set_ylabel("first observed quantity")
    ax_u.set_ylabel("action[0] (PID: force; SAC: change)")
    ax_u.set_xlabel("step")
    ax_x.legend(fontsize=7)
    ax_x.set_title(f"{env}: one held-out '{shift}' system")
    ctx.savefig(
        fig, f"trajectory_{env}.png", f"{env}: trajectory and actions on held-out system 0 of '{shift}'."
    )
    plt.close(fig)


def _dynamics(env: str):
    import gymnasium as gym

    from sciprob.control.envs import ENV_IDS

    return gym.spec(ENV_IDS[env]).entry_point.dynamics_cls


@experiment(
    "gpide-tracking",
    config=GPIDETrackingConfig,
    presets={
        "tiny": {
            "steps": 200,
            "num_envs": 2,
            "learning_starts": 100,
            "window": 8,
            "eval_episodes": 4,
            "pid_tune_iters": 2,
            "pid_tune_episodes": 4,
            "eval_every": 100,
        },
        "quick": {
            "steps": 4800,
            "history_steps": 2400,
            "history_updates_per_step": 0.5,
            "window": 32,
            "learning_starts": 800,
            "eval_every": 1600,
        },
        "paper": {
            "envs": ENVIRONMENTS,
            "encoders": ("none", "pid", "gpide", "gru", "transformer"),
            "seeds": 3,
            "steps": 1_000_000,
            "num_envs": 10,
            "eval_every": 50_000,
            "pid_tune_iters": 100,
            "pid_tune_episodes": 100,
        },
    },
    paper="Char & Schneider 2023, PID-Inspired Inductive Biases for Deep RL in Partially Observable Control",
    summary="SAC with PID / GPIDE / GRU / transformer history encoders; robustness to shifted parameters.",
)
def run(cfg: GPIDETrackingConfig, ctx: RunContext) -> dict[str, float]:
    """Tune PID, train every encoder over seeds, evaluate on the protocol's ranges, report and plot."""
    import sciprob.control  # noqa: F401 - registers the environments
    from sciprob.control.envs import ENV_IDS
    from sciprob.control.pid import tune_pid
    from sciprob.control.training import ZeroPolicy, evaluate

    metrics: dict[str, float] = {}
    rows = [
        "| env | method | " + " | ".join(["train -> eval", "return (mean ± std over seeds)", "paper"]) + " |",
        "|---|---|---|---|---|",
    ]
    for env in cfg.envs:
        env_id = ENV_IDS[env]
        tr, ranges = protocol(env, cfg.train_range)
        with ctx.timer(f"pid_tune_seconds/{env}"):
            tuned = tune_pid(
                env_id,
                tr,
                episodes=cfg.pid_tune_episodes,
                maxiter=cfg.pid_tune_iters,
                seed=ctx.seed + 2_000_000,
            )
        ctx.log.info(
            "%s: tuned PID gains %s (tuning return %.2f)", env, np.round(tuned.gains, 3), tuned.train_return
        )
        act_dim = _dynamics(env).ACT_DIM
        baselines = {
            "tuned-pid": {r: evaluate(tuned.controller, env_id, r, cfg.eval_episodes) for r in ranges},
            "do-nothing": {r: evaluate(ZeroPolicy(act_dim), env_id, r, cfg.eval_episodes) for r in ranges},
        }
        runs = _train_runs(cfg, ctx, env, env_id, tr, ranges)
        for r in ranges:
            cell = f"{tr}->{r}"
            for name, res in baselines.items():
                metrics[f"return/{env}/{name}/{cell}"] = res[r].mean
                ref = PID_REFERENCE.get((env, tr, r)) if name == "tuned-pid" else NO_ACTION_REFERENCE.get(env)
                if ref is not None:
                    ctx.anchor(f"return/{env}/{name}/{cell}", ref, SOURCE)
                rows.append(
                    f"| {env} | {name} | {cell} | {res[r].mean:.2f} (± {res[r].std:.2f} over systems) "
                    f"| {'' if ref is None else ref} |"
                )
            for enc in cfg.encoders:
                vals = np.array([runs[enc, s][1][r].mean for s in range(cfg.seeds)])
                metrics[f"return/{env}/{enc}/{cell}"] = float(vals.mean())
                metrics[f"return_std/{env}/{enc}/{cell}"] = float(vals.std())
                rows.append(f"| {env} | {enc} | {cell} | {vals.mean():.2f} ± {vals.std():.2f} | n/a |")
        _plots(ctx, env, ranges, runs, baselines, cfg.encoders)
        _compare(cfg, ctx, env, tr, ranges, metrics)
    ctx.table("Held-out returns (higher is better)", "\n".join(rows))
    ctx.note(
        "Choices of ours (the paper body was not available): held-out systems are seeds "
        "1,000,000 + i of each range (the reference used pickled sets); PID gains are tuned by "
        "differential evolution, not Bayesian optimisation; the policy observation embedding is 16 wide; "
        "the PID-feature agent is the reference's PIDE (features appended to the observation, MLP SAC). "
        "The paper's per-encoder tracking numbers were not available, so encoders are compared with the "
        "tuned PID and with each other, not with paper cells."
    )
    if ctx.preset != "paper":
        ctx.note(
            f"Preset '{ctx.preset}' trains for {cfg.steps} steps "
            f"({cfg.history_steps or cfg.steps} for history encoders, window {cfg.window}) instead of the "
            "paper's 1,000,000 (window 100): encoder comparisons here are not the paper's."
        )
    return metrics


def _compare(
    cfg: GPIDETrackingConfig, ctx: RunContext, env: str, tr: str, ranges: list[str], metrics: dict[str, float]
) -> None:
    """Add notes on the paper's claims for this environment, with the gaps."""
    shifted = ranges[-1]
    cell = f"{tr}->{shifted}"
    pid = metrics[f"return/{env}/tuned-pid/{cell}"]
    if "gpide" in cfg.encoders:
        gp = metrics[f"return/{env}/gpide/{cell}"]
        ctx.note(
            f"{env} {cell}: GPIDE {gp:.2f} vs tuned PID {pid:.2f} (gap {gp - pid:+.2f}); the paper "
            "claims GPIDE is within reach of the tuned PID on the shifted ranges."
        )
        if "gru" in cfg.encoders:
            gru = metrics[f"return/{env}/gru/{cell}"]
            verdict = "holds" if gp >= gru else "does not hold"
            ctx.note(
                f"{env} {cell}: GPIDE {gp:.2f} vs GRU {gru:.2f}: the claim 'GPIDE at least as good as "
                f"GRU on the shifted range' {verdict} in this run."
            )
    for name in ("tuned-pid", "do-nothing"):
        ref_key = f"return/{env}/{name}/{cell}"
        if ref_key in ctx.anchors:
            ref = ctx.anchors[ref_key].value
            ctx.note(
                f"{env} {cell} {name}: {metrics[ref_key]:.2f} here vs {ref:.2f} in the reference "
                f"({100 * (metrics[ref_key] - ref) / abs(ref):+.0f}%)."
            )
