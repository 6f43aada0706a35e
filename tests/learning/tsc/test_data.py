import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sciprob.learning.tsc.data import (
    TimeSeriesFormatError,
    aeon_data_dir,
    equalize_length,
    load_ucr,
    read_ts,
    read_ucr_tsv,
    znormalize,
)

SHIPPED = aeon_data_dir()
pytestmark = pytest.mark.skipif(SHIPPED is None, reason="aeon's shipped data sets are needed")

HEADER = (
    "@problemName Toy\n@timeStamps false\n@univariate false\n@dimensions 2\n"
    "@equalLength true\n@classLabel true a b\n"
)


def test_gunpoint_ts_and_tsv_agree():
    ts = read_ts(SHIPPED / "GunPoint" / "GunPoint_TRAIN.ts")
    tsv = read_ucr_tsv(SHIPPED / "GunPoint" / "GunPoint_TRAIN.tsv")
    assert len(ts) == len(tsv) == 50
    np.testing.assert_array_equal(ts.labels, tsv.labels)
    np.testing.assert_allclose(ts.to_array(normalize=False), tsv.to_array(normalize=False), atol=1e-7)
    assert ts.to_array().shape == (50, 1, 150)


def test_load_ucr_shapes_and_labels():
    train, test = load_ucr("GunPoint", "train"), load_ucr("GunPoint", "TEST")
    assert (len(train), len(test)) == (50, 150)
    assert set(train.labels) == {"1", "2"}


def test_basicmotions_is_multivariate_with_string_labels():
    data = load_ucr("BasicMotions", "train")
    X = data.to_array()
    assert X.shape == (40, 6, 100)
    assert set(data.labels) == {"Badminton", "Running", "Standing", "Walking"}
    # every channel of every case is z-normalised on its own
    np.testing.assert_allclose(X.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(-1), 1, atol=1e-4)


def test_japanese_vowels_unequal_lengths():
    data = load_ucr("JapaneseVowels", "train")
    assert data.n_channels == 12 and not data.equal_length
    assert data.lengths.min() == 7 and data.lengths.max() == 26
    resampled = data.to_array(length=29)
    padded = data.to_array(length=29, method="pad")
    assert resampled.shape == padded.shape == (270, 12, 29)
    short = int(np.argmin(data.lengths))
    assert np.all(padded[short, :, data.lengths[short] :] == 0)
    # resampling keeps the end points of each normalised series
    z = znormalize(data.series[short])
    np.testing.assert_allclose(resampled[short, :, 0], z[:, 0], atol=1e-5)
    np.testing.assert_allclose(resampled[short, :, -1], z[:, -1], atol=1e-5)


def test_unknown_name_lists_what_was_found():
    with pytest.raises(FileNotFoundError, match="GunPoint") as info:
        load_ucr("NoSuchData", "train")
    assert "NoSuchData" in str(info.value)


def test_bad_split():
    with pytest.raises(ValueError, match="`split`"):
        load_ucr("GunPoint", "valid")


def test_root_and_env_come_first(tmp_path, monkeypatch):
    folder = tmp_path / "GunPoint"
    folder.mkdir()
    (folder / "GunPoint_TRAIN.ts").write_text(HEADER.replace("Toy", "Mine") + "@data\n1,2,3:4,5,6:a\n")
    assert load_ucr("GunPoint", "train", root=tmp_path).name == "Mine"
    monkeypatch.setenv("SCIPROB_DATA", str(tmp_path))
    assert load_ucr("GunPoint", "train").name == "Mine"
    assert len(load_ucr("GunPoint", "test")) == 150  # falls through to aeon for the missing split


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("1,2,3:4,5,6:a\n", 1, "missing header"),  # no header at all: data on line 1
        (HEADER + "@data\n1,2,3:4,5,6:a\n1,2,3:b\n", 9, "1 dimensions, the header declares 2"),
        (HEADER + "@data\n1,2,3:4,x5,6:a\n", 8, "non-numeric value 'x5'"),
        (HEADER + "@data\n1,2,3:4,5,6:c\n", 8, "class label 'c'"),
        (HEADER + "@data\n1,2,3:4,5:a\n", 8, "differ in length"),
        (HEADER + "@data\n1,2,3:4,5,6:a\n1,inf,3:4,5,6:b\n", 9, "infinite value 'inf'"),
        (HEADER + "@data\n1,2,3:?,?,?:a\n", 8, "only missing values"),
        (HEADER + "@data\n1,2,3:NaN,NaN,NaN:a\n", 8, "only missing values"),
    ],
)
def test_malformed_ts_names_file_and_line(tmp_path, body, line, message):
    path = tmp_path / "bad.ts"
    path.write_text(body)
    with pytest.raises(TimeSeriesFormatError, match=message) as info:
        read_ts(path)
    assert info.value.line == line
    assert str(path) in str(info.value) and f"line {line}" in str(info.value)


def test_missing_data_and_classlabel_headers(tmp_path):
    path = tmp_path / "nodata.ts"
    path.write_text(HEADER)
    with pytest.raises(TimeSeriesFormatError, match="no @data line"):
        read_ts(path)
    path.write_text(HEADER.replace("@classLabel true a b\n", "") + "@data\n1:2:a\n")
    with pytest.raises(TimeSeriesFormatError, match="@classLabel"):
        read_ts(path)


def test_malformed_tsv(tmp_path):
    path = tmp_path / "bad_TRAIN.tsv"
    path.write_text("1\t0.5\t0.25\n2\t0.1\tabc\n")
    with pytest.raises(TimeSeriesFormatError, match="line 2: non-numeric value 'abc'"):
        read_ucr_tsv(path)


def test_tsv_trailing_nan_gives_unequal_lengths(tmp_path):
    path = tmp_path / "x_TRAIN.tsv"
    path.write_text("1.0\t1\t2\t3\n-1\t4\t5\tNaN\n")
    data = read_ucr_tsv(path)
    assert list(data.lengths) == [3, 2]
    assert list(data.labels) == ["1", "-1"]


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (3, 17), elements=st.floats(-1e3, 1e3)))
def test_znormalize_moments(x):
    z = znormalize(x)
    assert np.all(np.isfinite(z))
    np.testing.assert_allclose(z.mean(-1), 0, atol=1e-8)
    std = x.std(-1)
    nonconstant = std > 1e-6 * (1 + np.abs(x).max(-1))
    np.testing.assert_allclose(z.std(-1)[nonconstant], 1, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 40), st.integers(2, 60))
def test_resampling_a_line_stays_a_line(n, length):
    x = np.linspace(-1, 3, n)[None, :]
    out = equalize_length(x, length)
    np.testing.assert_allclose(out[0], np.linspace(-1, 3, length), atol=1e-12)
