"""Progress reporting: a rich bar on a terminal, periodic log lines otherwise.

Long loops use :class:`ProgressBar` (or :func:`track`). When standard error is
a terminal a live bar is drawn; otherwise (CI, files, notebooks piping output)
one log line is written every ``log_every`` steps and at the end, carrying the
latest metrics, so a log shows the run's course without flooding.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_LOGGER_NAME = "sciprob"


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the ``sciprob`` logger (or a child), writing to stderr once configured.

    A handler is attached on first use if neither this logger nor the root has
    one, so messages appear in scripts without any logging set-up.
    """
    base = logging.getLogger(_LOGGER_NAME)
    if not base.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        base.addHandler(handler)
        base.setLevel(logging.INFO)
        base.propagate = False
    return base if name is None else base.getChild(name)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class ProgressBar:
    """Progress over a known number of steps.

    Parameters
    ----------
    total : int
        Number of steps.
    description : str, default="working"
        Label shown before the bar and in log lines.
    log_every : int, default=None
        Steps between log lines when not on a terminal; default gives about
        20 lines per loop (at least one every step for short loops).
    enabled : bool, default=None
        Force the live bar on or off; default is on when stderr is a terminal
        and ``SCIPROB_PROGRESS`` is not ``lines`` (the engine's workers set it).

    Examples
    --------
    >>> with ProgressBar(total=3, description="demo", enabled=False) as bar:
    ...     for step in range(3):
    ...         bar.update(loss=1.0 / (step + 1))
    """

    def __init__(
        self,
        total: int,
        description: str = "working",
        *,
        log_every: int | None = None,
        enabled: bool | None = None,
    ) -> None:
        if total < 0:
            raise ValueError(f"`total` must be non-negative, got {total}")
        self.total = int(total)
        self.description = description
        self.log_every = log_every or max(1, math.ceil(self.total / 20))
        if enabled is None:
            # worker processes of the engine log lines: several live bars on one terminal garble
            enabled = sys.stderr.isatty() and os.environ.get("SCIPROB_PROGRESS") != "lines"
        self.live = enabled
        self.n = 0
        self.metrics: dict[str, Any] = {}
        self._logger = get_logger("progress")
        self._progress = None
        self._task = None
        self._start = time.perf_counter()

    def __enter__(self) -> ProgressBar:
        self._start = time.perf_counter()
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, metrics="")
        return self

    def update(self, advance: int = 1, **metrics: Any) -> None:
        """Advance by ``advance`` steps and record the latest ``metrics``."""
        self.n += advance
        self.metrics.update(metrics)
        text = " ".join(f"{k}={_fmt(v)}" for k, v in self.metrics.items())
        if self._progress is not None:
            self._progress.update(self._task, advance=advance, metrics=text)
        elif self.n % self.log_every == 0 or self.n == self.total:
            rate = self.n / max(time.perf_counter() - self._start, 1e-9)
            eta = (self.total - self.n) / rate if rate > 0 else math.inf
            self._logger.info(
                "%s %d/%d (%.3g it/s, eta %.0f s) %s", self.description, self.n, self.total, rate, eta, text
            )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def track(
    iterable: Iterable[T], description: str = "working", *, total: int | None = None, **kwargs: Any
) -> Iterator[T]:
    """Iterate over ``iterable`` with a :class:`ProgressBar`.

    Parameters
    ----------
    iterable : Iterable
        Items to yield.
    description : str, default="working"
        Label.
    total : int, default=None
        Number of items; taken from ``len(iterable)`` when possible.
    **kwargs
        Passed to :class:`ProgressBar`.
    """
    if total is None:
        total = len(iterable)  # type: ignore[arg-type]
    with ProgressBar(total, description, **kwargs) as bar:
        for item in iterable:
            yield item
            bar.update()
