"""The run folder: its manifest, the finished units, and the checks that keep runs apart.

Layout of a run folder::

    run.json            experiment, preset, seed, config and the list of invocations
    units/<hash>.json   one finished unit: key, seed, metrics, rows, artifacts, timings
    units/<hash>/       that unit's own files (its checkpoint while it runs)
    results.json        everything the report needs (written after the combining step)
    report.md, *.png    rebuilt from results.json and the figures

``<hash>`` is :func:`sciprob.engine.keys.unit_hash` of (experiment, config, seed,
key), so a unit file is reused only by a run that would compute the same unit.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sciprob.runtime.atomic import atomic_write_json

MANIFEST_FILE = "run.json"
UNITS_DIR = "units"
#: What ``--overwrite`` removes: every file a run writes (figures are ``*.png``).
_RUN_FILES = (MANIFEST_FILE, "results.json", "report.md")


class RunFolderError(ValueError):
    """A run folder cannot be used as asked (wrong kind, another run's, unreadable file)."""


def check_out_dir(out: Any) -> Path:
    """Validate ``--out`` before any work: not empty, not a file, writable.

    Raises
    ------
    RunFolderError
        For the empty string, an existing file, or a folder (or nearest existing
        parent) that cannot be written.
    """
    if out is None or str(out).strip() == "":
        raise RunFolderError("`--out` must name a folder, got an empty string")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"`--out` {str(path)!r} is an existing file, not a folder; choose a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    # root passes os.access everywhere: a folder with no write bit is read-only by its owner's choice
    if not os.access(probe, os.W_OK | os.X_OK) or not probe.stat().st_mode & 0o222:
        raise RunFolderError(
            f"`--out` {str(path)!r} cannot be written (no write permission on {str(probe)!r})"
        )
    return path


def read_json(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON object written by sciprob; one-line error naming the file otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(
            f"{what} {str(path)!r} cannot be read ({type(exc).__name__}); delete it"
        ) from None
    if not isinstance(data, dict):
        raise RunFolderError(f"{what} {str(path)!r} is not a sciprob {what} (holds {type(data).__name__})")
    return data


def manifest_of(experiment: str, preset: str, seed: int, config: Mapping[str, Any]) -> dict[str, Any]:
    """Return what identifies a run: the fields a resumed run must match."""
    return {"experiment": experiment, "preset": preset, "seed": int(seed), "config": dict(config)}


def _differences(found: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    diffs = []
    for field in ("experiment", "preset", "seed"):
        if found.get(field) != wanted[field]:
            diffs.append(f"{field} {found.get(field)!r} (folder) vs {wanted[field]!r} (asked)")
    old, new = found.get("config") or {}, wanted["config"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            diffs.append(f"config `{key}` {old.get(key)!r} (folder) vs {new.get(key)!r} (asked)")
    return diffs


class RunFolder:
    """One run folder: opened for a fresh run, a resumed run, or an overwrite.

    Parameters
    ----------
    path : Path
        The folder (created if missing).
    manifest : dict
        From :func:`manifest_of`.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.invocations: list[dict[str, Any]] = []

    @property
    def units_dir(self) -> Path:
        """``units/`` inside the run folder."""
        return self.path / UNITS_DIR

    def holds_a_run(self) -> bool:
        """Whether the folder already has a run's manifest or results."""
        return any((self.path / name).exists() for name in (MANIFEST_FILE, "results.json"))

    def open(self, *, resume: bool, overwrite: bool) -> None:
        """Check the folder against the request and write the manifest.

        Raises
        ------
        RunFolderError
            A folder of another run without ``--resume``/``--overwrite``, or a
            resumed folder whose experiment, preset, seed or config differ (named in
            the message). Nothing is changed in either case.
        """
        manifest_path = self.path / MANIFEST_FILE
        if resume and manifest_path.exists():
            found = read_json(manifest_path, "run manifest")
            diffs = _differences(found, self.manifest)
            if diffs:
                raise RunFolderError(
                    f"cannot resume {str(self.path)!r}: it was made with " + "; ".join(diffs)
                )
            self.invocations = list(found.get("invocations", []))
        elif self.holds_a_run() and not resume:
            if not overwrite:
                raise RunFolderError(
                    f"{str(self.path)!r} already holds a run; pass --resume to continue it, "
                    "--overwrite to replace it, or another --out"
                )
            self.clear()
        elif resume and self.holds_a_run():
            raise RunFolderError(f"cannot resume {str(self.path)!r}: it has results but no {MANIFEST_FILE}")
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_manifest()

    def clear(self) -> None:
        """Remove what a run wrote (manifest, results, report, figures, units)."""
        for name in _RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        for png in self.path.glob("*.png"):
            png.unlink()
        shutil.rmtree(self.units_dir, ignore_errors=True)

    def write_manifest(self) -> None:
        """Write ``run.json`` (manifest plus invocations) atomically."""
        atomic_write_json(self.path / MANIFEST_FILE, {**self.manifest, "invocations": self.invocations})

    def unit_file(self, digest: str) -> Path:
        """``units/<hash>.json``."""
        return self.units_dir / f"{digest}.json"

    def unit_dir(self, digest: str) -> Path:
        """``units/<hash>/``, the unit's own folder (created)."""
        path = self.units_dir / digest
        path.mkdir(parents=True, exist_ok=True)
        return path

    def load_unit(self, digest: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """Return the stored record of a finished unit, or ``None``.

        Raises
        ------
        RunFolderError
            If the file is unreadable or belongs to another unit.
        """
        path = self.unit_file(digest)
        if not path.exists():
            return None
        record = read_json(path, "unit file")
        if record.get("hash") != digest or record.get("key") != dict(key) or "result" not in record:
            raise RunFolderError(f"unit file {str(path)!r} does not hold unit {dict(key)!r}; delete it")
        return record

    def store_unit(self, record: dict[str, Any]) -> None:
        """Write a finished unit's record and drop its checkpoint (no longer needed)."""
        atomic_write_json(self.unit_file(record["hash"]), record)
        unit_dir = self.units_dir / record["hash"]
        (unit_dir / "checkpoint.pt").unlink(missing_ok=True)
        if unit_dir.is_dir() and not any(unit_dir.iterdir()):
            unit_dir.rmdir()


def latest_run_dir(name: str, preset: str, root: Path | str = "runs") -> Path | None:
    """Return the newest ``runs/<name>-*`` folder made with ``preset`` (by its manifest), or ``None``."""
    found = []
    for path in Path(root).glob(f"{name}-2*"):
        manifest = path / MANIFEST_FILE
        if not manifest.is_file():
            continue
        try:
            data = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("experiment") == name and data.get("preset") == preset:
            found.append((manifest.stat().st_mtime, path))
    return max(found)[1] if found else None
