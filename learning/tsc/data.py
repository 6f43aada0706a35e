"""Readers for the UCR/UEA archive formats, z-normalisation and unequal lengths.

Two file formats are read:

* ``.ts`` (sktime/aeon): ``#`` comments, ``@key value`` header lines, then
  ``@data`` and one case per line, ``dim_1:dim_2:...:label`` with each
  dimension a comma-separated list of numbers. ``?`` and ``NaN`` mark missing
  values, as the format (and the UCR ``.tsv`` NaN padding) defines them; they are
  kept as NaN and z-normalisation ignores them, then sets them to the series
  mean. Infinite values and dimensions with no value at all are rejected.
* UCR 2018 ``.tsv``: one case per line, the label first, then the values
  separated by tabs; unequal-length series are padded with trailing ``NaN``.

Both give a :class:`TimeSeriesData` holding a list of ``(channels, length_i)``
arrays, so unequal lengths survive reading. :meth:`TimeSeriesData.to_array`
turns them into one ``(n, channels, length)`` array by z-normalising each
series (as the review does) and resampling every series to a common length
(the choice of dl-4-tsc for its multivariate archive), or by zero padding.

Every malformed file raises :class:`TimeSeriesFormatError` naming the file and
the line.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

_SPLITS = ("train", "test")
_BOOL = {"true": True, "false": False}


class TimeSeriesFormatError(ValueError):
    """A ``.ts`` or ``.tsv`` file does not follow its format; the message names file and line."""

    def __init__(self, path: str | os.PathLike, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class TimeSeriesData:
    """Series and labels of one split of a data set.

    Attributes
    ----------
    series : list of ndarray of shape (channels, length_i)
        One float64 array per case; lengths may differ.
    labels : ndarray of shape (n,), dtype str
        Class label of each case, as written in the file.
    name : str
        Problem name (``@problemName`` or the file stem).
    path : str
        The file that was read.
    """

    series: list[np.ndarray]
    labels: np.ndarray
    name: str
    path: str

    def __len__(self) -> int:
        return len(self.series)

    @property
    def n_channels(self) -> int:
        """Number of dimensions (variables) per case."""
        return int(self.series[0].shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """Length of each case, ndarray of shape (n,)."""
        return np.array([s.shape[1] for s in self.series])

    @property
    def equal_length(self) -> bool:
        """Whether all cases have the same length."""
        return bool(np.all(self.lengths == self.lengths[0]))

    def to_array(
        self,
        *,
        normalize: bool = True,
        length: int | None = None,
        method: Literal["resample", "pad"] = "resample",
    ) -> np.ndarray:
        """Stack the cases into one float32 array.

        Parameters
        ----------
        normalize : bool, default=True
            z-normalise each channel of each case over its own length
            (:func:`znormalize`) before equalising lengths.
        length : int, default=None
            Target length; default is the longest case.
        method : {"resample", "pad"}, default="resample"
            ``"resample"`` linearly interpolates each case to ``length``
            points; ``"pad"`` appends zeros (the mean after normalisation)
            and truncates longer cases.

        Returns
        -------
        ndarray of shape (n, channels, length), dtype float32
        """
        target = int(length or self.lengths.max())
        if target < 1:
            raise ValueError(f"`length` must be a positive integer, got {length!r}")
        out = np.empty((len(self), self.n_channels, target), dtype=np.float32)
        for i, s in enumerate(self.series):
            s = znormalize(s) if normalize else s
            out[i] = equalize_length(s, target, method=method)
        return out


def znormalize(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    r"""z-normalise each series along its last axis, as dl-4-tsc does.

    .. math:: \tilde x_t = (x_t - \bar x) / s, \qquad s = \mathrm{std}(x)

    Missing values (NaN) are ignored in the mean and standard deviation and
    replaced by 0 (the mean) afterwards. A constant series (``s < eps``) is
    only centred.

    Parameters
    ----------
    x : ndarray of shape (..., length)
        Series; every leading index is one series.
    eps : float, default=1e-8
        Standard deviations below this count as zero.

    Returns
    -------
    ndarray of shape (..., length)
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(x, axis=-1, keepdims=True) if x.shape[-1] else x
        std = np.nanstd(x, axis=-1, keepdims=True) if x.shape[-1] else x
    mean = np.nan_to_num(mean)
    std = np.where(np.nan_to_num(std) < eps, 1.0, std)
    return np.nan_to_num((x - mean) / std)


def equalize_length(
    x: np.ndarray, length: int, method: Literal["resample", "pad"] = "resample"
) -> np.ndarray:
    """Bring one case to ``length`` time steps.

    Parameters
    ----------
    x : ndarray of shape (channels, n_steps)
        One case.
    length : int
        Target number of steps.
    method : {"resample", "pad"}, default="resample"
        Linear interpolation onto ``length`` equally spaced points of the
        original time axis, or zero padding at the end (truncation if longer).

    Returns
    -------
    ndarray of shape (channels, length)
    """
    n_steps = x.shape[1]
    if n_steps == length:
        return x
    if method == "pad":
        out = np.zeros((x.shape[0], length), dtype=x.dtype)
        out[:, : min(n_steps, length)] = x[:, :length]
        return out
    if method != "resample":
        raise ValueError(f"`method` must be 'resample' or 'pad', got {method!r}")
    if n_steps == 1:
        return np.repeat(x, length, axis=1)
    old = np.linspace(0.0, 1.0, n_steps)
    new = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(new, old, row) for row in x])


def _parse_values(text: str, path: Path, lineno: int) -> np.ndarray:
    out = []
    for token in text.split(","):
        token = token.strip()
        if token in ("?", ""):
            if token == "" and text.strip():
                raise TimeSeriesFormatError(path, lineno, "empty value between commas")
            out.append(np.nan)
            continue
        try:
            value = float(token)
        except ValueError:
            raise TimeSeriesFormatError(path, lineno, f"non-numeric value {token!r}") from None
        if math.isinf(value):
            raise TimeSeriesFormatError(
                path, lineno, f"infinite value {token!r} (missing values are written '?' or NaN)"
            )
        out.append(value)
    row = np.asarray(out, dtype=np.float64)
    if row.size and np.isnan(row).all():
        raise TimeSeriesFormatError(path, lineno, "a dimension has only missing values")
    return row


def _header_flag(header: dict[str, str], key: str, path: Path, default: bool) -> bool:
    if key not in header:
        return default
    value = header[key].split()[0].lower() if header[key] else ""
    if value not in _BOOL:
        raise TimeSeriesFormatError(path, None, f"@{key} must be true or false, got {header[key]!r}")
    return _BOOL[value]


def read_ts(path: str | os.PathLike) -> TimeSeriesData:
    """Read a ``.ts`` file (univariate or multivariate, equal or unequal length).

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    TimeSeriesData

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    TimeSeriesFormatError
        Missing ``@data`` or ``@classLabel`` header, a case with the wrong
        number of dimensions, a non-numeric value, an undeclared label, or
        unequal lengths where ``@equalLength true``.
    NotImplementedError
        ``@timeStamps true`` files.
    """
    path = Path(path)
    header: dict[str, str] = {}
    header_lines: dict[str, int] = {}
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    n_dims: int | None = None
    declared: list[str] | None = None
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise TimeSeriesFormatError(
                        path, lineno, "data before the @data header line (missing header?)"
                    )
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    n_dims, declared = _check_header(header, header_lines, path)
                    continue
                header[key] = value.strip()
                header_lines[key] = lineno
                continue
            if line.startswith("@"):
                raise TimeSeriesFormatError(path, lineno, f"header line {line.split()[0]!r} after @data")
            parts = line.split(":")
            *dims, label = parts
            if n_dims is not None and len(dims) != n_dims:
                raise TimeSeriesFormatError(
                    path, lineno, f"case has {len(dims)} dimensions, the header declares {n_dims}"
                )
            if not dims:
                raise TimeSeriesFormatError(path, lineno, "case has no values before the class label")
            rows = [_parse_values(d, path, lineno) for d in dims]
            if len({len(r) for r in rows}) != 1:
                raise TimeSeriesFormatError(
                    path, lineno, f"dimensions of one case differ in length: {[len(r) for r in rows]}"
                )
            label = label.strip()
            if declared is not None and label not in declared:
                raise TimeSeriesFormatError(
                    path, lineno, f"class label {label!r} is not among the declared {declared}"
                )
            if series and len(rows) != series[0].shape[0]:
                raise TimeSeriesFormatError(
                    path, lineno, f"case has {len(rows)} dimensions, earlier cases have {series[0].shape[0]}"
                )
            series.append(np.stack(rows))
            labels.append(label)
    if not in_data:
        raise TimeSeriesFormatError(path, None, "missing header: no @data line")
    if not series:
        raise TimeSeriesFormatError(path, None, "no cases after @data")
    data = TimeSeriesData(
        series, np.asarray(labels, dtype=str), header.get("problemname", path.stem), str(path)
    )
    if _header_flag(header, "equallength", path, True) and not data.equal_length:
        bad = int(np.argmax(data.lengths != data.lengths[0]))
        raise TimeSeriesFormatError(
            path,
            None,
            f"@equalLength true but case {bad} has length {data.lengths[bad]} != {data.lengths[0]}",
        )
    return data


def _check_header(
    header: dict[str, str], lines: dict[str, int], path: Path
) -> tuple[int | None, list[str] | None]:
    """Validate the header at ``@data``; return the dimension count and the declared labels."""
    if _header_flag(header, "timestamps", path, False):
        raise NotImplementedError(
            f"{path}: @timeStamps true files are not supported; export without time stamps"
        )
    if "classlabel" not in header:
        raise TimeSeriesFormatError(
            path, None, "missing header: no @classLabel line (classification files need one)"
        )
    tokens = header["classlabel"].split()
    if not tokens or tokens[0].lower() not in _BOOL:
        raise TimeSeriesFormatError(
            path,
            lines["classlabel"],
            f"@classLabel must start with true or false, got {header['classlabel']!r}",
        )
    if not _BOOL[tokens[0].lower()]:
        raise TimeSeriesFormatError(
            path, lines["classlabel"], "@classLabel false: the file has no class labels"
        )
    declared = tokens[1:] or None
    n_dims: int | None = None
    if "dimensions" in header:
        try:
            n_dims = int(header["dimensions"])
        except ValueError:
            raise TimeSeriesFormatError(
                path, lines["dimensions"], f"@dimensions must be an integer, got {header['dimensions']!r}"
            ) from None
    elif _header_flag(header, "univariate", path, False):
        n_dims = 1
    return n_dims, declared


def read_ucr_tsv(path: str | os.PathLike) -> TimeSeriesData:
    """Read a UCR 2018 ``.tsv`` file (univariate; trailing NaN padding marks shorter series).

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    TimeSeriesData
        Labels are normalised so that ``"1.0"`` reads as ``"1"`` (the ``.ts``
        spelling of the same archive).

    Raises
    ------
    TimeSeriesFormatError
        An empty file, a line without values, or a non-numeric value.
    """
    path = Path(path)
    series, labels = [], []
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            label, *values = raw.rstrip("\n").split("\t")
            if not values:
                raise TimeSeriesFormatError(path, lineno, "expected a label and tab-separated values")
            row = _parse_values(",".join(v if v.strip() else "?" for v in values), path, lineno)
            last = np.flatnonzero(~np.isnan(row))
            row = row[: last[-1] + 1] if last.size else row[:0]
            if row.size == 0:
                raise TimeSeriesFormatError(path, lineno, "case has no values")
            series.append(row[None, :])
            labels.append(_canonical_label(label.strip()))
    if not series:
        raise TimeSeriesFormatError(path, None, "no cases in file")
    return TimeSeriesData(series, np.asarray(labels, dtype=str), path.stem.rsplit("_", 1)[0], str(path))


def _canonical_label(label: str) -> str:
    try:
        value = float(label)
    except ValueError:
        return label
    return str(int(value)) if value.is_integer() else label


def read_series_file(path: str | os.PathLike) -> TimeSeriesData:
    """Read a ``.ts`` or ``.tsv`` file, chosen by the suffix."""
    path = Path(path)
    if path.suffix.lower() == ".ts":
        return read_ts(path)
    if path.suffix.lower() == ".tsv":
        return read_ucr_tsv(path)
    raise ValueError(f"`path` must end in .ts or .tsv, got {str(path)!r}")


def aeon_data_dir() -> Path | None:
    """Folder of the data sets shipped inside an installed ``aeon`` (without importing aeon)."""
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return folder if folder.is_dir() else None


def data_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched by :func:`load_ucr`, in order: ``root``, ``$SCIPROB_DATA``, aeon's data."""
    roots = [Path(root)] if root is not None else []
    if os.environ.get("SCIPROB_DATA"):
        roots.append(Path(os.environ["SCIPROB_DATA"]))
    shipped = aeon_data_dir()
    if shipped is not None:
        roots.append(shipped)
    return roots


def _candidates(folder: Path, name: str, split: str) -> list[Path]:
    stems = [f"{name}_{split.upper()}", f"{name}_{split.capitalize()}", f"{name}_{split}"]
    return [d / f"{s}{ext}" for d in (folder / name, folder) for s in stems for ext in (".ts", ".tsv")]


def available_datasets(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the data sets with a train split in any of :func:`data_roots`."""
    names = set()
    for folder in data_roots(root):
        if not folder.is_dir():
            continue
        for path in folder.rglob("*_TRAIN.ts*"):
            if path.suffix.lower() in (".ts", ".tsv"):
                names.add(path.name.rsplit("_", 1)[0])
    return sorted(names)


def load_ucr(
    name: str, split: Literal["train", "test"], root: str | os.PathLike | None = None
) -> TimeSeriesData:
    """Load one split of a UCR/UEA data set by name.

    The first match wins, searching ``root``, then ``$SCIPROB_DATA``, then the
    files shipped in ``aeon`` (``aeon/datasets/data``); in each folder both
    ``<name>/<name>_<SPLIT>.ts`` and ``<name>_<SPLIT>.ts`` are tried, ``.ts``
    before ``.tsv``.

    Parameters
    ----------
    name : str
        Data set name, e.g. ``"GunPoint"``.
    split : {"train", "test"}
        Which split.
    root : str or PathLike, default=None
        Extra folder searched first.

    Returns
    -------
    TimeSeriesData

    Raises
    ------
    ValueError
        ``split`` is not train/test.
    FileNotFoundError
        No file for ``name``; the message lists the data sets that were found.

    Examples
    --------
    >>> train = load_ucr("GunPoint", "train")
    >>> train.to_array().shape
    (50, 1, 150)
    """
    split = split.lower() if isinstance(split, str) else split
    if split not in _SPLITS:
        raise ValueError(f"`split` must be 'train' or 'test', got {split!r}")
    roots = data_roots(root)
    for folder in roots:
        for path in _candidates(folder, name, split):
            if path.is_file():
                return read_series_file(path)
    found = available_datasets(root)
    raise FileNotFoundError(
        f"no {split} split of data set `name`={name!r} in {[str(r) for r in roots]}; "
        f"found: {', '.join(found) if found else 'nothing'}. Put <name>/<name>_{split.upper()}.ts "
        "under `root` or $SCIPROB_DATA"
    )
