"""Experiment ``gpide-tracking``: history encoders for robust tracking (Char & Schneider, NeurIPS 2023).

For each environment, train SAC with each history encoder over seeds on one
parameter range, then score it on held-out systems of the training range and
of the shifted range of the reference's protocol (fixed -> large,
small -> large, sim -> real), beside a tuned PID controller and doing nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sciprob.config import param
from sciprob.experiments import RunContext, UnitContext, UnitResult, experiment

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
    encoders: tuple[str, ...] = param(
        ("pid", "gpide"), "encoders: none, pid, gpide, gpide-ess, gru, transformer"
    )
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
    history_batch: int = param(32, "windows per update for history encoders (32 in the paper)")
    lr: float = param(3e-4, "Adam learning rate of every network (3e-4 in the paper)")
    precision: Literal["float32", "bfloat16"] = param(
        "float32",
        "matrix products of the update (bfloat16: autocast, ~2.5x faster GPIDE updates on AVX-512 BF16)",
    )
    eval_every: int = param(0, "env steps between learning-curve evaluations (0: end only)")
    eval_episodes: int = param(32, "held-out systems per evaluation range")
    pid_tune_iters: int = param(30, "differential-evolution generations for the PID gains")
    pid_tune_episodes: int = param(32, "training-range systems used to tune the PID gains")

    def __post_init__(self) -> None:
        bad = [e for e in self.envs if e not in ENVIRONMENTS]
        if not self.envs or bad:
            raise ValueError(f"`envs` must be a non-empty subset of {list(ENVIRONMENTS)}, got {self.envs}")
        allowed = ("none", "pid", "gpide", "gpide-ess", "gru", "transformer")
        if not self.encoders or any(e not in allowed for e in self.encoders):
            raise ValueError(f"`encoders` must be a non-empty subset of {list(allowed)}, got {self.encoders}")
        for name in (
            "seeds",
            "steps",
            "window",
            "num_envs",
            "eval_episodes",
            "history_batch",
            "pid_tune_iters",
            "pid_tune_episodes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"`lr` must be > 0, got {self.lr}")
        if self.learning_starts < 0 or self.eval_every < 0:
            raise ValueError(
                f"`learning_starts` and `eval_every` must be >= 0, got "
                f"{self.learning_starts}, {self.eval_every}"
            )
        if self.history_steps is not None and self.history_steps < 1:
            raise ValueError(f"`history_steps` must be >= 1, got {self.history_steps}")


def protocol(env: str, train_range: str) -> tuple[str, list[str]]:
    """Training range and evaluation ranges of the reference's table for ``env``."""
    if env == "Navigation":
        return "sim", ["sim", "real"]
    if env == "Tokamak":
        return "sim", ["sim"]  # the reference's "real" Tokamak needs a non-public simulator
    return train_range, [train_range] if train_range == "large" else [train_range, "large"]


def _units(cfg: GPIDETrackingConfig) -> list[dict]:
    """One PID-tuning unit per environment, one training unit per (environment, encoder, run)."""
    keys: list[dict] = []
    for env in cfg.envs:
        keys.append({"env": env, "method": "tuned-pid"})
        keys += [{"env": env, "method": enc, "run": r} for enc in cfg.encoders for r in range(cfg.seeds)]
    return keys


def _trajectory(res) -> dict:
    """System 0 of an :class:`EvalResult`, JSON-able."""
    return {
        "observations": res.observations[0].tolist(),
        "actions": res.actions[0].tolist(),
        "return": float(res.returns[0]),
    }


def _pid_unit(cfg: GPIDETrackingConfig, unit: UnitContext) -> UnitResult:
    """Tune the PID gains on the training range; score tuned PID and doing nothing on every range."""
    from sciprob.control.envs import ENV_IDS
    from sciprob.control.pid import tune_pid
    from sciprob.control.training import ZeroPolicy, evaluate

    env = unit.key["env"]
    env_id = ENV_IDS[env]
    tr, ranges = protocol(env, cfg.train_range)
    start = time.perf_counter()
    tuned = tune_pid(env_id, tr, episodes=cfg.pid_tune_episodes, maxiter=cfg.pid_tune_iters, seed=unit.seed)
    tune_seconds = time.perf_counter() - start
    unit.log.info(
        "%s: tuned PID gains %s (tuning return %.2f)", env, np.round(tuned.gains, 3), tuned.train_return
    )
    act_dim = _dynamics(env).ACT_DIM
    methods = {"tuned-pid": tuned.controller, "do-nothing": ZeroPolicy(act_dim)}
    metrics, artifacts = {}, {"gains": tuned.gains.tolist(), "trajectories": {}}
    for name, policy in methods.items():
        for r in ranges:
            res = evaluate(policy, env_id, r, cfg.eval_episodes)
            metrics[f"return/{env}/{name}/{tr}->{r}"] = res.mean
            metrics[f"return_over_systems_std/{env}/{name}/{tr}->{r}"] = res.std
            if r == ranges[-1]:
                artifacts["trajectories"][name] = _trajectory(res)
    return UnitResult(metrics=metrics, artifacts=artifacts, timings={f"pid_tune_seconds/{env}": tune_seconds})


def _train_unit(cfg: GPIDETrackingConfig, unit: UnitContext) -> UnitResult:
    """Train one encoder once, with learning-curve evaluations, and score it on every range."""
    from sciprob.control.envs import ENV_IDS
    from sciprob.control.training import evaluate, train

    env, enc = unit.key["env"], unit.key["method"]
    env_id = ENV_IDS[env]
    tr, ranges = protocol(env, cfg.train_range)
    free = enc in HISTORY_FREE
    steps = cfg.steps if free or cfg.history_steps is None else cfg.history_steps
    sac = _sac_config(cfg, free)
    res = train(
        env_id,
        enc,
        steps,
        params=tr,
        seed=unit.seed,
        window=None if free else cfg.window,
        config=sac,
        num_envs=cfg.num_envs,
        eval_every=cfg.eval_every,
        eval_params={r: r for r in ranges},
        eval_episodes=cfg.eval_episodes,
        log_csv=unit.dir / "log.csv",
        device=unit.device,
        checkpoint_path=unit.checkpoint_path,
        checkpoint_every=max(steps // 4, 1),
        resume=unit.resume,
    )
    unit.checkpoint_path.unlink(missing_ok=True)  # the unit is finished: the engine caches its result
    metrics, artifacts = {}, {"history": res.history}
    for r in ranges:
        ev = evaluate(res.agent, env_id, r, cfg.eval_episodes)
        metrics[f"return/{env}/{enc}/{tr}->{r}"] = ev.mean
        if r == ranges[-1]:
            artifacts["trajectory"] = _trajectory(ev)
    return UnitResult(
        metrics=metrics, artifacts=artifacts, timings={f"train_seconds/{env}/{enc}": res.seconds}
    )


def _sac_config(cfg: GPIDETrackingConfig, free: bool):
    from sciprob.control.sac import SACConfig

    return SACConfig(
        batch_size=256 if free else cfg.history_batch,
        lr=cfg.lr,
        learning_starts=cfg.learning_starts,
        gradient_steps=cfg.updates_per_step if free else cfg.history_updates_per_step,
        precision=cfg.precision,
    )


def _plots(ctx: RunContext, env: str, ranges: list[str], by_method: dict, baselines: dict, encoders) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ranges), figsize=(5 * len(ranges), 3.6), squeeze=False)
    for ax, r in zip(axes[0], ranges, strict=True):
        for enc in encoders:
            hist = [u.artifacts["history"] for u in by_method[enc]]
            steps = [row["step"] for row in hist[0]]
            vals = np.array([[row[f"eval/{r}"] for row in h] for h in hist])
            ax.plot(steps, vals.mean(0), "o-", label=enc)
        for name, value in baselines.items():
            ax.axhline(value[r], ls="--", color="k" if name == "tuned-pid" else "0.6", label=name)
        ax.set_title(f"{env}: eval on {r}")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("return")
        ax.legend(fontsize=7)
    ctx.savefig(fig, f"curves_{env}.png", f"{env}: held-out returns during training (mean over seeds).")
    plt.close(fig)


def _trajectory_plot(ctx: RunContext, env: str, shift: str, trajectories: dict) -> None:
    import matplotlib.pyplot as plt

    fig, (ax_x, ax_u) = plt.subplots(2, 1, figsize=(6.5, 5), sharex=True)
    target = _dynamics(env).PID.target[0]
    for name, tr in trajectories.items():
        obs, act = np.asarray(tr["observations"]), np.asarray(tr["actions"])
        line = ax_x.plot(obs[:, 0], label=f"{name} ({tr['return']:.1f})")[0]
        ax_u.plot(act[:, 0], color=line.get_color())
    ax_x.plot(obs[:, target], "k:", label="target")
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


def _combine(cfg: GPIDETrackingConfig, results: list[UnitResult], ctx: RunContext) -> dict[str, float]:
    """Means over seeds, the table against the reference, plots and notes on the paper's claims."""
    metrics: dict[str, float] = {}
    rows = [
        "| env | method | " + " | ".join(["train -> eval", "return (mean ± std over seeds)", "paper"]) + " |",
        "|---|---|---|---|---|",
    ]
    for res in results:
        for key, value in res.timings.items():
            ctx.timings[key] = ctx.timings.get(key, 0.0) + value
    for env in cfg.envs:
        tr, ranges = protocol(env, cfg.train_range)
        pid_unit = next(r for r in results if r.key == {"env": env, "method": "tuned-pid"})
        by_method = {
            enc: [r for r in results if r.key.get("env") == env and r.key.get("method") == enc]
            for enc in cfg.encoders
        }
        baselines: dict[str, dict[str, float]] = {"tuned-pid": {}, "do-nothing": {}}
        for r in ranges:
            cell = f"{tr}->{r}"
            for name in baselines:
                mean = pid_unit.metrics[f"return/{env}/{name}/{cell}"]
                std = pid_unit.metrics[f"return_over_systems_std/{env}/{name}/{cell}"]
                baselines[name][r] = mean
                metrics[f"return/{env}/{name}/{cell}"] = mean
                ref = PID_REFERENCE.get((env, tr, r)) if name == "tuned-pid" else NO_ACTION_REFERENCE.get(env)
                if ref is not None:
                    ctx.anchor(f"return/{env}/{name}/{cell}", ref, SOURCE)
                rows.append(
                    f"| {env} | {name} | {cell} | {mean:.2f} (± {std:.2f} over systems) "
                    f"| {'' if ref is None else ref} |"
                )
            for enc in cfg.encoders:
                vals = np.array([u.metrics[f"return/{env}/{enc}/{cell}"] for u in by_method[enc]])
                metrics[f"return/{env}/{enc}/{cell}"] = float(vals.mean())
                metrics[f"return_std/{env}/{enc}/{cell}"] = float(vals.std())
                rows.append(f"| {env} | {enc} | {cell} | {vals.mean():.2f} ± {vals.std():.2f} | n/a |")
        _plots(ctx, env, ranges, by_method, baselines, cfg.encoders)
        trajectories = {"tuned-pid": pid_unit.artifacts["trajectories"]["tuned-pid"]}
        trajectories.update({enc: by_method[enc][0].artifacts["trajectory"] for enc in cfg.encoders})
        _trajectory_plot(ctx, env, ranges[-1], trajectories)
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
            # GPIDE with a 16-step window, lr 1e-3 and half an update per step reaches about -20
            # (do-nothing: about -73) within 3,200 steps; the paper's window of 100 and lr 3e-4
            # need far more steps than a quick preset has
            "steps": 3200,
            "history_steps": 3200,
            "updates_per_step": 0.5,
            "history_updates_per_step": 0.5,
            "window": 16,
            "lr": 1e-3,
            "learning_starts": 400,
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
    units=_units,
    combine=_combine,
    devices=("cpu", "cuda"),
)
def run_unit(cfg: GPIDETrackingConfig, unit: UnitContext) -> UnitResult:
    """One unit: the PID tuning of an environment, or one training run of an encoder."""
    import sciprob.control  # noqa: F401 - registers the environments

    if unit.key["method"] == "tuned-pid":
        return _pid_unit(cfg, unit)
    return _train_unit(cfg, unit)


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


# ---------------------------------------------------------------------------------------------------
# gpide-locomotion: the partially observed locomotion suite on MuJoCo v5
# ---------------------------------------------------------------------------------------------------

LOCOMOTION_TASKS = tuple(f"{t}-{k}" for t in ("Hopper", "Walker2d", "HalfCheetah", "Ant") for k in ("P", "V"))
LOCOMOTION_ENCODERS = ("mlp", "gru", "transformer", "gpide", "gpide-ess")
_ENCODER_NAMES = {
    "mlp": "none",
    "gru": "gru",
    "transformer": "transformer",
    "gpide": "gpide-locomotion",
    "gpide-ess": "gpide-ess-locomotion",
}
LOCOMOTION_EVAL_SEED = 1_000_000
# PyBullet *BLT raw returns of GPIDE-ESS (as re-reported by RESeL, Luo et al. 2024) and the
# pomdp-baselines normalisation constants (Oracle; Markovian P, V) used by the paper's code.
_BLT_GPIDE_ESS = {
    "Ant-P": 2597,
    "Ant-V": 1017,
    "HalfCheetah-P": 2466,
    "HalfCheetah-V": 1886,
    "Hopper-P": 2373,
    "Hopper-V": 2537,
    "Walker2d-P": 1502,
    "Walker2d-V": 1701,
}
_BLT_ORACLE = {"Ant": 3394, "HalfCheetah": 2994, "Hopper": 2434, "Walker2d": 2225}
_BLT_MARKOVIAN = {
    ("Ant", "P"): 1132.9,
    ("Ant", "V"): 645.1,
    ("HalfCheetah", "P"): 870.5,
    ("HalfCheetah", "V"): 517.9,
    ("Hopper", "P"): 477.9,
    ("Hopper", "V"): 228.4,
    ("Walker2d", "P"): 471.8,
    ("Walker2d", "V"): 214.5,
}
BLT_SOURCE = "Char & Schneider 2023 via RESeL (Luo et al. 2024) raw returns; pomdp-baselines constants"


@dataclass(frozen=True)
class GPIDELocomotionConfig:
    """Masked MuJoCo tasks, encoders, budgets and evaluation of the locomotion suite."""

    tasks: tuple[str, ...] = param(("Hopper-P",), "tasks: " + ", ".join(LOCOMOTION_TASKS))
    encoders: tuple[str, ...] = param(LOCOMOTION_ENCODERS, "encoders: " + ", ".join(LOCOMOTION_ENCODERS))
    seeds: int = param(1, "training seeds per encoder (4 in the paper)")
    steps: int = param(1_500_000, "environment steps per run (1.5M in the paper)")
    window: int = param(64, "history window (64 in the paper)")
    history_batch: int = param(64, "sequences per update for history encoders (64 in the paper)")
    batch: int = param(256, "transitions per update for the memoryless agents")
    history_updates_per_step: float = param(1.0, "gradient steps per env step, history encoders")
    updates_per_step: float = param(1.0, "gradient steps per env step, memoryless agents")
    learning_starts: int = param(10_000, "random-action steps before learning (10,000 in the paper)")
    eval_every: int = param(10_000, "env steps between evaluations")
    eval_episodes: int = param(5, "evaluation episodes")
    score_fraction: float = param(0.2, "final fraction of training whose evaluations are averaged (0.2)")
    precision: Literal["float32", "bfloat16"] = param(
        "float32", "matrix products of the update (see SACConfig)"
    )

    def __post_init__(self) -> None:
        bad = [t for t in self.tasks if t not in LOCOMOTION_TASKS]
        if not self.tasks or bad:
            raise ValueError(
                f"`tasks` must be a non-empty subset of {list(LOCOMOTION_TASKS)}, got {self.tasks}"
            )
        if not self.encoders or any(e not in LOCOMOTION_ENCODERS for e in self.encoders):
            raise ValueError(
                f"`encoders` must be a non-empty subset of {list(LOCOMOTION_ENCODERS)}, got {self.encoders}"
            )
        if "mlp" not in self.encoders:
            raise ValueError("`encoders` must include 'mlp': it is the Markovian reference of the score")
        for name in ("seeds", "steps", "window", "history_batch", "batch", "eval_every", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.learning_starts < 0 or not 0 < self.score_fraction <= 1:
            raise ValueError(
                f"`learning_starts` must be >= 0 and `score_fraction` in (0, 1], got "
                f"{self.learning_starts}, {self.score_fraction}"
            )


def _locomotion_units(cfg: GPIDELocomotionConfig) -> list[dict]:
    """One unit per (task, encoder, run), plus the full-state Oracle per (task, run)."""
    return [
        {"task": t, "encoder": e, "run": r}
        for t in cfg.tasks
        for e in (*cfg.encoders, "oracle")
        for r in range(cfg.seeds)
    ]


def _locomotion_sac_config(cfg: GPIDELocomotionConfig, free: bool):
    """SAC hyper-parameters of a locomotion run (``free``: the memoryless MLP or Oracle agent)."""
    from sciprob.control.sac import SACConfig

    return SACConfig(
        gamma=0.99,
        tau=0.005,
        actor_hidden=(256, 256),
        critic_hidden=(256, 256),
        batch_size=cfg.batch if free else cfg.history_batch,
        learning_starts=cfg.learning_starts,
        gradient_steps=cfg.updates_per_step if free else cfg.history_updates_per_step,
        precision=cfg.precision,
    )


def _locomotion_unit(cfg: GPIDELocomotionConfig, unit: UnitContext) -> UnitResult:
    """Train one agent on a masked task (or the Oracle on the full state) and evaluate it."""
    from sciprob.control.agent import HistorySAC
    from sciprob.control.callbacks import EvalCallback

    task, enc = unit.key["task"], unit.key["encoder"]
    name, kind = task.split("-")
    env_id = f"sciprob/{name}-{'F' if enc == 'oracle' else kind}-v0"
    free = enc in ("mlp", "oracle")
    sac = _locomotion_sac_config(cfg, free)
    agent = HistorySAC(
        env_id,
        "none" if free else _ENCODER_NAMES[enc],
        sac,
        seed=unit.seed,
        device=unit.device,
        window=None if free else cfg.window,
    )
    evals = EvalCallback(
        eval_freq=cfg.eval_every, n_eval_episodes=cfg.eval_episodes, seed=LOCOMOTION_EVAL_SEED
    )
    start = time.perf_counter()
    agent.learn(
        cfg.steps,
        callback=evals,
        checkpoint_path=unit.checkpoint_path,
        checkpoint_every=max(cfg.steps // 10, 1),
        resume=unit.resume,
    )
    if not evals.evaluations or evals.evaluations[-1]["step"] < agent.num_timesteps:
        evals.evaluate_now()
    seconds = time.perf_counter() - start
    unit.checkpoint_path.unlink(missing_ok=True)
    first = (1 - cfg.score_fraction) * cfg.steps
    tail = [e["mean"] for e in evals.evaluations if e["step"] >= first] or [evals.evaluations[-1]["mean"]]
    return UnitResult(
        metrics={f"return/{task}/{enc}": float(np.mean(tail))},
        artifacts={"curve": evals.evaluations},
        timings={f"train_seconds/{task}/{enc}": seconds},
    )


def _locomotion_combine(
    cfg: GPIDELocomotionConfig, results: list[UnitResult], ctx: RunContext
) -> dict[str, float]:
    """Mean returns over runs, normalised scores against this run's Markovian and Oracle agents."""
    import matplotlib.pyplot as plt

    from sciprob.control.locomotion import normalised_score

    metrics: dict[str, float] = {}
    for res in results:
        for key, value in res.timings.items():
            ctx.timings[key] = ctx.timings.get(key, 0.0) + value
    rows = [
        "| task | encoder | return (mean over runs) | normalised (here) | paper GPIDE-ESS, PyBullet |",
        "|---|---|---|---|---|",
    ]
    fig, axes = plt.subplots(1, len(cfg.tasks), figsize=(5 * len(cfg.tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], cfg.tasks, strict=True):
        name, kind = task.split("-")

        def mean_return(enc: str, task: str = task) -> float:
            return float(
                np.mean(
                    [
                        r.metrics[f"return/{task}/{enc}"]
                        for r in results
                        if r.key["task"] == task and r.key["encoder"] == enc
                    ]
                )
            )

        markovian, oracle = mean_return("mlp"), mean_return("oracle")
        metrics[f"return/{task}/oracle"] = oracle
        paper = normalised_score(_BLT_GPIDE_ESS[task], _BLT_MARKOVIAN[name, kind], _BLT_ORACLE[name])
        for enc in cfg.encoders:
            ret = mean_return(enc)
            score = normalised_score(ret, markovian, oracle) + 0.0  # no -0.0 in the report
            metrics[f"return/{task}/{enc}"] = ret
            metrics[f"normalised/{task}/{enc}"] = score
            cell = f"{paper:.1f}" if enc == "gpide-ess" else ""
            rows.append(f"| {task} | {enc} | {ret:.1f} | {score:.1f} | {cell} |")
            curves = [
                r.artifacts["curve"] for r in results if r.key["task"] == task and r.key["encoder"] == enc
            ]
            steps = [e["step"] for e in curves[0]]
            vals = np.array([[e["mean"] for e in c[: len(steps)]] for c in curves])
            ax.plot(steps, vals.mean(0), "o-", ms=3, label=enc)
        rows.append(f"| {task} | oracle (full state) | {oracle:.1f} | 100 by definition | |")
        ax.set_title(task)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return")
        ax.legend(fontsize=7)
        if "gpide-ess" in cfg.encoders:
            rivals = [e for e in ("gru", "transformer") if e in cfg.encoders]
            ess = metrics[f"normalised/{task}/gpide-ess"]
            if rivals:
                beaten = [e for e in rivals if ess > metrics[f"normalised/{task}/{e}"]]
                verdict = "holds" if len(beaten) == len(rivals) else "does not hold"
                ctx.note(
                    f"{task}: GPIDE-ESS normalised {ess:.1f} vs "
                    + ", ".join(f"{e} {metrics[f'normalised/{task}/{e}']:.1f}" for e in rivals)
                    + f"; the paper's claim 'GPIDE-ESS ahead of the recurrent and transformer baselines' "
                    f"{verdict} here (paper, PyBullet {name}BLT-{kind}: GPIDE-ESS {paper:.1f})."
                )
    ctx.savefig(fig, "curves_locomotion.png", "Evaluation returns during training (mean over runs).")
    plt.close(fig)
    ctx.table("Returns and normalised scores (100 (R - MLP) / (Oracle - MLP))", "\n".join(rows))
    ctx.note(
        "Tasks are MuJoCo v5 with observation masks (sciprob.control.locomotion), not the paper's PyBullet "
        "*BLT tasks: raw returns are not comparable with the paper's, and the normalisation uses this "
        "run's own Oracle (SAC on the full state) and Markovian (memoryless SAC on the masked task) at the "
        "same budget. The score averages the evaluations of the last "
        f"{100 * cfg.score_fraction:.0f}% of training, as the paper's table does."
    )
    if ctx.preset != "paper":
        ctx.note(
            f"Preset '{ctx.preset}': {cfg.steps} steps, window {cfg.window}, {cfg.history_batch} sequences "
            f"per update, {cfg.history_updates_per_step} updates per step for history encoders, "
            f"{cfg.seeds} seed(s), instead of the paper's 1.5M steps, window 64, 64 sequences, 1 update per "
            "step and 4 seeds: encoder rankings at this budget are not the paper's."
        )
    return metrics


@experiment(
    "gpide-locomotion",
    config=GPIDELocomotionConfig,
    presets={
        "tiny": {
            "encoders": ("mlp", "gpide-ess"),
            "steps": 300,
            "window": 4,
            "history_batch": 4,
            "batch": 32,
            "learning_starts": 100,
            "eval_every": 150,
            "eval_episodes": 1,
        },
        "quick": {
            "encoders": ("mlp", "gpide-ess"),
            "steps": 4000,
            "window": 16,
            "history_batch": 16,
            "history_updates_per_step": 0.25,
            "learning_starts": 1000,
            "eval_every": 1000,
            "eval_episodes": 3,
            "score_fraction": 0.5,
        },
        "cpu": {
            # sized from measured update rates: about 2 hours with `--workers 2` on two cores
            "tasks": ("Hopper-P", "Hopper-V"),
            "steps": 50_000,
            "window": 32,
            "history_batch": 32,
            "history_updates_per_step": 0.25,
            "learning_starts": 5000,
            "eval_every": 5000,
            "eval_episodes": 5,
        },
        "paper": {"tasks": LOCOMOTION_TASKS, "seeds": 4, "eval_episodes": 10},
    },
    paper="Char & Schneider 2023, PID-Inspired Inductive Biases for Deep RL in Partially Observable Control",
    summary="MLP / GRU / transformer / GPIDE / GPIDE-ESS SAC on position- or velocity-only MuJoCo tasks.",
    units=_locomotion_units,
    combine=_locomotion_combine,
    devices=("cpu", "cuda"),
)
def run_locomotion_unit(cfg: GPIDELocomotionConfig, unit: UnitContext) -> UnitResult:
    """One training run of the locomotion suite."""
    import sciprob.control  # noqa: F401 - registers the environments

    return _locomotion_unit(cfg, unit)
