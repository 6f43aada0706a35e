"""The experiment registry and the run engine behind ``sciprob run``.

An experiment is a function ``run(cfg, ctx) -> dict[str, float]`` registered
with :func:`experiment`. The engine resolves the preset and ``--set``
overrides into the frozen config (failing before any work), seeds every RNG,
creates the output folder, calls the function, and writes ``results.json``,
``report.md`` and the figures, all atomically.

Examples
--------
>>> from dataclasses import dataclass
>>> from sciprob.config import param
>>> @dataclass(frozen=True)
... class DemoConfig:
...     steps: int = param(10, "number of steps")
>>> @experiment("demo-doc", config=DemoConfig, presets={"quick": {"steps": 2}},
...             paper="none", summary="doctest demo")
... def demo(cfg, ctx):
...     return {"steps": float(cfg.steps)}
>>> REGISTRY["demo-doc"].build_config("quick").steps
2
>>> del REGISTRY["demo-doc"]
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import importlib
import math
import platform
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from sciprob.config import ConfigError, apply_overrides, config_to_dict
from sciprob.runtime.atomic import atomic_write_json, atomic_write_text, save_figure
from sciprob.runtime.progress import get_logger

REGISTRY: dict[str, ExperimentSpec] = {}

RESULTS_FILE = "results.json"
REPORT_FILE = "report.md"


class ExperimentError(ValueError):
    """A user-facing problem with an experiment request (name, preset, folder)."""


@dataclass(frozen=True)
class Anchor:
    """A published number to compare a metric with.

    Attributes
    ----------
    value : float
        The paper's number (or the theoretical value).
    source : str
        Where it comes from, e.g. ``"Ismail Fawaz et al. 2019, Table 4"``.
    """

    value: float
    source: str


@dataclass(frozen=True)
class ExperimentSpec:
    """A registered experiment.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"fem-poisson-convergence"``.
    func : callable
        ``run(cfg, ctx) -> dict[str, float]``.
    config : type
        Frozen dataclass of the configuration.
    presets : dict of str to dict
        Named overrides; ``"quick"`` must exist (the tour runs it).
    paper : str
        The reproduced paper (short citation).
    summary : str
        One line on what the experiment shows.
    anchors : dict of str to Anchor
        Static anchors; runs may add more with :meth:`RunContext.anchor`.
    """

    name: str
    func: Callable[[Any, RunContext], Mapping[str, float]]
    config: type
    presets: dict[str, dict[str, Any]]
    paper: str
    summary: str
    anchors: dict[str, Anchor]

    def build_config(self, preset: str = "quick", overrides: Mapping[str, Any] | None = None) -> Any:
        """Return the config for ``preset`` with ``overrides`` applied.

        Raises
        ------
        ExperimentError
            Unknown preset.
        ConfigError
            Unknown key or bad value.
        """
        if preset not in self.presets:
            raise ExperimentError(
                f"unknown preset {preset!r} for experiment {self.name!r}; "
                f"choose one of {sorted(self.presets)}"
            )
        cfg = apply_overrides(self.config(), dict(self.presets[preset]))
        return apply_overrides(cfg, dict(overrides or {}))


def experiment(
    name: str,
    *,
    config: type,
    presets: Mapping[str, Mapping[str, Any]],
    paper: str,
    summary: str,
    anchors: Mapping[str, Anchor | tuple[float, str]] | None = None,
) -> Callable[[Callable], Callable]:
    """Register ``run(cfg, ctx)`` as experiment ``name``.

    Parameters
    ----------
    name : str
        Registry name (lower-case, hyphenated); must also be in
        :data:`sciprob.catalog.CATALOG`.
    config : type
        A frozen dataclass whose fields all have defaults.
    presets : mapping
        Preset name to overrides; must contain ``"quick"`` (and normally ``"paper"``).
    paper : str
        Short citation of the reproduced paper.
    summary : str
        What the experiment shows, one line.
    anchors : mapping, default=None
        Metric name to :class:`Anchor` or ``(value, source)``.

    Raises
    ------
    TypeError
        ``config`` is not a frozen dataclass.
    ValueError
        Duplicate name, missing ``quick`` preset, or a preset that does not build.
    """
    if not (dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen):
        raise TypeError(f"`config` of experiment {name!r} must be a frozen dataclass, got {config!r}")
    if "quick" not in presets:
        raise ValueError(f"experiment {name!r} needs a 'quick' preset (the tour runs it)")

    def register(func: Callable) -> Callable:
        if name in REGISTRY and REGISTRY[name].func.__qualname__ != func.__qualname__:
            raise ValueError(f"experiment {name!r} is registered twice")
        spec = ExperimentSpec(
            name=name,
            func=func,
            config=config,
            presets={k: dict(v) for k, v in presets.items()},
            paper=paper,
            summary=summary,
            anchors={k: v if isinstance(v, Anchor) else Anchor(*v) for k, v in (anchors or {}).items()},
        )
        for preset in spec.presets:
            spec.build_config(preset)  # fail at import time, not mid-run
        REGISTRY[name] = spec
        return func

    return register


def get_experiment(name: str) -> ExperimentSpec:
    """Import the module that registers ``name`` and return its spec.

    Raises
    ------
    ExperimentError
        If ``name`` is unknown; the message lists the known names.
    """
    from sciprob.catalog import CATALOG

    if name not in REGISTRY:
        if name not in CATALOG:
            raise ExperimentError(f"unknown experiment {name!r}; known: {', '.join(sorted(CATALOG))}")
        importlib.import_module(CATALOG[name])
        if name not in REGISTRY:
            raise ExperimentError(f"module {CATALOG[name]} does not register experiment {name!r}")
    return REGISTRY[name]


def all_experiments() -> list[ExperimentSpec]:
    """Import every catalogued experiment module and return the specs, sorted by name."""
    from sciprob.catalog import CATALOG

    return [get_experiment(name) for name in sorted(CATALOG)]


@dataclass
class RunContext:
    """What an experiment function gets besides its config.

    Attributes
    ----------
    name : str
        Experiment name.
    preset : str
        Preset name.
    seed : int
        Global seed (already applied).
    device : torch.device
        Where to compute.
    out_dir : Path
        The run folder; figures and checkpoints go here.
    resume : bool
        Whether to resume from ``checkpoint_path`` if it exists.
    """

    name: str
    preset: str
    seed: int
    device: Any
    out_dir: Path
    resume: bool = False
    anchors: dict[str, Anchor] = field(default_factory=dict)
    figures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def checkpoint_path(self) -> Path:
        """Default checkpoint file of this run: ``out_dir / "checkpoint.pt"``."""
        return self.out_dir / "checkpoint.pt"

    @property
    def log(self):
        """Logger for this experiment (``sciprob.<name>``)."""
        return get_logger(self.name)

    def anchor(self, metric: str, value: float, source: str) -> None:
        """Record the paper's ``value`` for ``metric`` (with its ``source``)."""
        self.anchors[metric] = Anchor(float(value), source)

    def savefig(self, fig: Any, filename: str, caption: str = "") -> Path:
        """Save a matplotlib figure as PNG in the run folder and list it in the report."""
        if not filename.endswith(".png"):
            filename += ".png"
        path = save_figure(fig, self.out_dir / filename)
        self.figures.append((filename, caption))
        return path

    def note(self, markdown: str) -> None:
        """Add a paragraph (markdown) to the report, e.g. where a result differs from the paper."""
        self.notes.append(markdown.strip())

    def table(self, title: str, markdown: str) -> None:
        """Add a titled markdown table to the report."""
        self.tables.append((title, markdown.strip()))

    @contextlib.contextmanager
    def timer(self, key: str) -> Iterator[None]:
        """Time the block and store the seconds under ``timings[key]`` (added up on reuse)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_info(device: Any) -> dict[str, Any]:
    """Versions of python and the main dependencies, the device and the git commit."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for dist, key in [
        ("torch", "torch"),
        ("pyro-ppl", "pyro"),
        ("fenics-dolfinx", "dolfinx"),
        ("dolfinx-solver-real", "dolfinx"),
        ("gymnasium", "gymnasium"),
        ("numpy", "numpy"),
    ]:
        if info.get(key):
            continue
        try:
            info[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[key] = None
    info["device"] = str(device)
    info["git_commit"] = _git_commit()
    return info


def _check_metrics(name: str, metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"experiment {name!r} must return a dict of metrics, got {type(metrics).__name__}")
    out: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"metric {key!r} of experiment {name!r} is not a number: {value!r}") from None
    return out


def default_out_dir(name: str, root: Path | str = "runs") -> Path:
    """``runs/<name>-<YYYYmmdd-HHMMSS>`` (a suffix is added if it exists)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def latest_run_dir(name: str, root: Path | str = "runs") -> Path | None:
    """Return the newest ``runs/<name>-*`` folder, or ``None``."""
    candidates = sorted(Path(root).glob(f"{name}-2*"), key=lambda p: p.stat().st_mtime)
    return candidates[-1] if candidates else None


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_experiment` produced.

    Attributes
    ----------
    out_dir : Path
        The run folder.
    results : dict
        The content of ``results.json``.
    """

    out_dir: Path
    results: dict[str, Any]


def prepare_run(
    name: str, preset: str = "quick", overrides: Mapping[str, Any] | None = None
) -> tuple[ExperimentSpec, Any]:
    """Resolve ``name``, ``preset`` and ``overrides``; every user error surfaces here."""
    spec = get_experiment(name)
    return spec, spec.build_config(preset, overrides)


def run_experiment(
    name: str,
    *,
    preset: str = "quick",
    seed: int = 0,
    device: str = "auto",
    out: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
) -> RunResult:
    """Run experiment ``name`` and write its results, report and figures.

    Parameters
    ----------
    name : str
        Registered experiment.
    preset : str, default="quick"
        Preset to start from.
    seed : int, default=0
        Global seed.
    device : {"auto", "cpu", "cuda"}, default="auto"
        Compute device.
    out : path, default=None
        Output folder; default ``runs/<name>-<timestamp>`` (with ``resume``,
        the newest existing run folder of ``name``).
    overrides : mapping, default=None
        ``--set`` overrides (dotted keys to strings or values).
    resume : bool, default=False
        Continue from the run folder's checkpoint where the experiment supports it.

    Returns
    -------
    RunResult

    Raises
    ------
    ExperimentError, ConfigError, ValueError
        For an unknown name, preset, key or value, or a bad device/seed, all
        before any work starts.
    """
    from sciprob.report import render_report
    from sciprob.runtime.device import resolve_device
    from sciprob.runtime.seeding import seed_everything

    spec, cfg = prepare_run(name, preset, overrides)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"`--seed` must be a non-negative integer, got {seed!r}")
    torch_device = resolve_device(device)
    if out is None:
        out_dir = (latest_run_dir(name) if resume else None) or default_out_dir(name)
    else:
        out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)

    seed_everything(seed)
    ctx = RunContext(
        name=name,
        preset=preset,
        seed=seed,
        device=torch_device,
        out_dir=out_dir,
        resume=resume,
        anchors=dict(spec.anchors),
    )
    ctx.log.info(
        "running %s (preset %s, seed %d, device %s) -> %s", name, preset, seed, torch_device, out_dir
    )
    start = time.perf_counter()
    metrics = _check_metrics(name, spec.func(cfg, ctx))
    ctx.timings["total_seconds"] = time.perf_counter() - start
    nonfinite = [k for k, v in metrics.items() if not math.isfinite(v)]
    if nonfinite:
        ctx.log.warning("non-finite metrics: %s", ", ".join(nonfinite))
    results = {
        "experiment": name,
        "preset": preset,
        "seed": seed,
        "config": config_to_dict(cfg),
        "metrics": metrics,
        "anchors": {k: {"value": a.value, "source": a.source} for k, a in ctx.anchors.items()},
        "timings": ctx.timings,
        "environment": environment_info(torch_device),
    }
    atomic_write_json(out_dir / RESULTS_FILE, results)
    atomic_write_text(out_dir / REPORT_FILE, render_report(spec, ctx, results))
    return RunResult(out_dir=out_dir, results=results)
