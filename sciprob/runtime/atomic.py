"""Atomic file writes: a reader sees either the old file or the complete new one.

Every writer goes to a temporary file in the target's folder, flushes and
``fsync``s it, then ``os.replace``s it over the target. If anything fails before
the rename (an exception while serialising, a killed process), the previous
file is left untouched and the temporary file is removed.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

_UMASK: int | None = None


def _file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open()`` would give a new file."""
    global _UMASK
    if _UMASK is None:
        # the umask can only be read by setting it; set it straight back (once per process)
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


def _atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write`` on a temporary binary file, then rename it to ``path``.

    The file gets the mode a plain ``open()`` would give it (``mkstemp`` alone
    would leave it ``0600``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fchmod(fh.fileno(), _file_mode())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path : str or PathLike
        Target file; parent folders are created.
    data : bytes
        Content.

    Returns
    -------
    Path
        The written path.
    """
    return _atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays, paths and non-finite floats for JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return _jsonable(obj.tolist())
    raise TypeError(f"`atomic_write_json` cannot serialise a {type(obj).__name__}: {obj!r}")


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> Path:
    """Serialise ``obj`` as JSON and write it atomically.

    Numpy and torch scalars/arrays become numbers/lists; non-finite floats
    become the strings ``"nan"``, ``"inf"``, ``"-inf"`` so the file stays
    valid JSON. The whole document is serialised before the file is touched.

    Raises
    ------
    TypeError
        If ``obj`` holds a value that has no JSON form; the old file is kept.
    """
    text = json.dumps(_jsonable(obj), indent=indent, sort_keys=False) + "\n"
    return atomic_write_text(path, text)


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG atomically and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or PathLike
        Target ``.png`` file.
    dpi : int, default=120
        Resolution.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
