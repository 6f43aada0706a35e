"""The experiment registry, the contexts an experiment sees, and ``run_experiment``.

An experiment is a grid of independent **units of work** plus a step that
combines their results (DESIGN §3):

- ``units(cfg) -> list[dict]`` lists each unit's key of named coordinates;
- the registered function ``run_unit(cfg, unit) -> UnitResult`` computes one
  unit, seeded by the engine from the run seed and the key;
- ``combine(cfg, results, ctx) -> dict[str, float]`` turns the units' results
  into metrics, tables, notes and figures.

Without ``units`` an experiment is one unit with key ``{}``; without
``combine`` its metrics are that unit's. The engine (:mod:`sciprob.engine`)
owns seeding, caching, resume and scheduling.

Examples
--------
>>> from dataclasses import dataclass
>>> from sciprob.config import param
>>> @dataclass(frozen=True)
... class DemoConfig:
...     steps: int = param(10, "number of steps")
>>> @experiment("demo-doc", config=DemoConfig, presets={"quick": {"steps": 2}},
...             paper="none", summary="doctest demo")
... def demo(cfg, unit):
...     return UnitResult(metrics={"steps": float(cfg.steps)})
>>> REGISTRY["demo-doc"].build_config("quick").steps
2
>>> REGISTRY["demo-doc"].unit_keys(REGISTRY["demo-doc"].build_config("quick"))
[{}]
>>> del REGISTRY["demo-doc"]
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import platform
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from sciprob.config import apply_overrides
from sciprob.runtime.atomic import save_figure
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


def _single_unit(cfg: Any) -> list[dict[str, Any]]:
    return [{}]


@dataclass(frozen=True)
class ExperimentSpec:
    """A registered experiment.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"fem-poisson-convergence"``.
    func : callable
        ``run_unit(cfg, unit: UnitContext) -> UnitResult`` (a dict of metrics is accepted too).
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
    units : callable
        ``units(cfg) -> list[dict]``: the grid of unit keys (default: one unit, ``{}``).
    combine : callable or None
        ``combine(cfg, results, ctx) -> dict[str, float]``; ``None`` takes the
        single unit's metrics.
    devices : tuple of str
        Device types the experiment runs on (``"cpu"``, ``"cuda"``).
    """

    name: str
    func: Callable[..., Any]
    config: type
    presets: dict[str, dict[str, Any]]
    paper: str
    summary: str
    anchors: dict[str, Anchor]
    units: Callable[[Any], list[dict[str, Any]]] = _single_unit
    combine: Callable[..., Mapping[str, float]] | None = None
    devices: tuple[str, ...] = ("cpu", "cuda")

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

    def unit_keys(self, cfg: Any) -> list[dict[str, Any]]:
        """Return the grid of unit keys for ``cfg``, checked (named scalars, no duplicates).

        Raises
        ------
        TypeError
            A key is not a dict of names to str/int/float/bool.
        ValueError
            The grid is empty or holds a key twice.
        """
        from sciprob.engine.keys import canonical_key

        keys = [canonical_key(k, self.name) for k in self.units(cfg)]
        if not keys:
            raise ValueError(f"experiment {self.name!r} has no units for this config")
        seen: set[str] = set()
        for key in keys:
            text = repr(sorted(key.items()))
            if text in seen:
                raise ValueError(f"experiment {self.name!r} lists unit {key!r} twice")
            seen.add(text)
        return keys


def experiment(
    name: str,
    *,
    config: type,
    presets: Mapping[str, Mapping[str, Any]],
    paper: str,
    summary: str,
    anchors: Mapping[str, Anchor | tuple[float, str]] | None = None,
    units: Callable[[Any], list[dict[str, Any]]] | None = None,
    combine: Callable[..., Mapping[str, float]] | None = None,
    devices: tuple[str, ...] = ("cpu", "cuda"),
) -> Callable[[Callable], Callable]:
    """Register ``run_unit(cfg, unit)`` as experiment ``name``.

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
    units : callable, default=None
        ``units(cfg) -> list[dict]``, the grid of unit keys; default one unit ``{}``.
    combine : callable, default=None
        ``combine(cfg, results: list[UnitResult], ctx: RunContext) -> dict[str, float]``,
        run after every unit (results in grid order); default: the single unit's metrics.
    devices : tuple of str, default=("cpu", "cuda")
        Device types supported; ``--device cuda`` on a CPU-only experiment is refused.

    Raises
    ------
    TypeError
        ``config`` is not a frozen dataclass.
    ValueError
        Duplicate name, missing ``quick`` preset, a preset that does not build,
        an unknown device, or a grid without ``combine``.
    """
    if not (dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen):
        raise TypeError(f"`config` of experiment {name!r} must be a frozen dataclass, got {config!r}")
    if "quick" not in presets:
        raise ValueError(f"experiment {name!r} needs a 'quick' preset (the tour runs it)")
    if not devices or any(d not in ("cpu", "cuda") for d in devices):
        raise ValueError(
            f"`devices` of experiment {name!r} must be a subset of ('cpu', 'cuda'), got {devices}"
        )
    if units is not None and combine is None:
        raise ValueError(f"experiment {name!r} declares `units` and so needs a `combine` step")

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
            units=units or _single_unit,
            combine=combine,
            devices=tuple(devices),
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
class UnitResult:
    """What one unit of work returns; the engine stores it in the run folder.

    Attributes
    ----------
    metrics : dict of str to float
        Deterministic numbers (identical for one seed).
    rows : list of dict
        Table rows (JSON scalars) for the combining step.
    artifacts : dict
        Anything JSON-able the combining step needs (curves, arrays as lists).
    timings : dict of str to float
        Measurements (seconds, speed-ups, memory): they vary between runs.
    key : dict
        The unit's key (set by the engine).
    seconds : float
        Wall time of the unit (set by the engine).
    dir : Path or None
        The unit's own folder, for files it wrote (set by the engine).
    report : dict
        Anchors, notes, tables and figures the unit added through its context
        (set by the engine).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    key: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    dir: Path | None = None
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Reporting:
    """Anchors, figures, notes, tables and timings gathered for the report."""

    name: str
    preset: str
    device: Any
    out_dir: Path
    anchors: dict[str, Anchor] = field(default_factory=dict)
    figures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

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
        self.figures = [f for f in self.figures if f[0] != filename] + [(filename, caption)]
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

    def report_parts(self) -> dict[str, Any]:
        """Return the gathered anchors, figures, notes and tables as JSON-ready data."""
        return {
            "anchors": {k: {"value": a.value, "source": a.source} for k, a in self.anchors.items()},
            "figures": [list(f) for f in self.figures],
            "notes": list(self.notes),
            "tables": [list(t) for t in self.tables],
        }


@dataclass
class RunContext(_Reporting):
    """What the combining step gets besides the config and the units' results.

    Attributes
    ----------
    name, preset : str
        Experiment and preset.
    seed : int
        The run seed.
    device : torch.device
        Where the units computed.
    out_dir : Path
        The run folder; figures go here (through :meth:`savefig`).
    """

    seed: int = 0


@dataclass
class UnitContext(_Reporting):
    """What one unit of work gets besides the config.

    The engine has already seeded python's, numpy's, torch's and pyro's global
    generators with :attr:`seed` in whatever process runs the unit.

    Attributes
    ----------
    key : dict
        The unit's named coordinates, e.g. ``{"dataset": "GunPoint", "run": 3}``.
    seed : int
        64-bit seed from ``numpy.random.SeedSequence(run seed, key)``.
    rng : numpy.random.Generator
        Generator from the same seed sequence.
    device : torch.device
        Where to compute.
    out_dir : Path
        The run folder (figures saved with :meth:`savefig` land here).
    dir : Path
        The unit's own folder, for its checkpoint and private files.
    """

    key: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    rng: Any = None
    dir: Path = Path(".")

    @property
    def checkpoint_path(self) -> Path:
        """The unit's checkpoint file: ``dir / "checkpoint.pt"``."""
        return self.dir / "checkpoint.pt"

    @property
    def resume(self) -> bool:
        """Whether a previous attempt of this unit left a checkpoint to continue from."""
        return self.checkpoint_path.exists()

    def generator(self, device: Any = None) -> Any:
        """Return a :class:`torch.Generator` on ``device`` (default: the unit's), seeded from the unit."""
        import torch

        gen = torch.Generator(device=self.device if device is None else device)
        gen.manual_seed(self.seed)
        return gen


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
    """Resolve ``name``, ``preset`` and ``overrides``; every config error surfaces here."""
    spec = get_experiment(name)
    return spec, spec.build_config(preset, overrides)


def run_experiment(name: str, **kwargs: Any) -> RunResult:
    """Run experiment ``name``; see :func:`sciprob.engine.run.run_experiment` for the arguments."""
    from sciprob.engine.run import run_experiment as _run

    return _run(name, **kwargs)
