"""Tests for carousel_env.data.io: reading user and playlist files, atomic writes."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carousel_env.data import io

USER_DIMS = [f"dim_{j}" for j in range(96)]
PLAYLIST_DIMS = [f"dim_{j}" for j in range(97)]

# From /work/shared/data/deezer/SOURCE.md: checksums of the decompressed published files.
PLAYLISTS_SHA256 = "d24c22054c74a5e7d49e7f9e2e3f8425be7f42cbc07cb5ab3dda0745a7a36090"
USERS_SHA256 = "d27bb040366ca1875284c0456067b876a706d18f5112aee664b0e3de05c17408"


def _embeddings(n_users: int, seed: int = 0) -> np.ndarray:
    """float32 embeddings, shape (n_users, 96), scaled like Deezer's (sd about 1.3)."""
    return (np.random.default_rng(seed).normal(0.0, 1.3, (n_users, 96))).astype(np.float32)


def _csv_text(header: list[str], rows: list[list[object]]) -> str:
    lines = [",".join(header)] + [",".join(str(cell) for cell in row) for row in rows]
    return "\n".join(lines) + "\n"


def _user_rows(n_users: int = 4, segments: bool = True) -> tuple[list[str], list[list[object]]]:
    """Header and rows of a valid user CSV; float32 values written as Python floats."""
    values = _embeddings(n_users).astype(np.float64)
    header = (["segment"] if segments else []) + USER_DIMS
    rows = [([u % 3] if segments else []) + list(values[u]) for u in range(n_users)]
    return header, rows


def _playlist_rows(n_items: int = 4) -> tuple[list[str], list[list[object]]]:
    values = np.random.default_rng(1).normal(0.0, 0.05, (n_items, 97))
    return list(PLAYLIST_DIMS), [list(row) for row in values]


def _write(path: Path, text: str | bytes) -> Path:
    data = text.encode() if isinstance(text, str) else text
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


# --- invalid user files ----------------------------------------------------------------


def _user_csv(edit: Callable[[list[str], list[list[object]]], None], name="users.csv"):
    """A file factory: a valid user CSV changed in place by ``edit(header, rows)``."""

    def make(tmp_path: Path) -> Path:
        header, rows = _user_rows()
        edit(header, rows)
        return _write(tmp_path / name, _csv_text(header, rows))

    return make


def _set(row: int, column: str, value: object):
    def edit(header, rows):
        rows[row][header.index(column)] = value

    return edit


def _drop_column(column: str):
    def edit(header, rows):
        at = header.index(column)
        del header[at]
        for row in rows:
            del row[at]

    return edit


def _add_column(name: str, value: object = 0.5, first: bool = False):
    def edit(header, rows):
        at = 0 if first else len(header)
        header.insert(at, name)
        for u, row in enumerate(rows):
            row.insert(at, u if first else value)

    return edit


def _cut_last_row(n_fields: int):
    def edit(header, rows):
        rows[-1] = rows[-1][:n_fields]

    return edit


def _npy(array: np.ndarray, name: str = "users.npy"):
    def make(tmp_path: Path) -> Path:
        np.save(tmp_path / name, array)
        return tmp_path / name

    return make


def _npz(name: str = "users.npz", **arrays: np.ndarray):
    def make(tmp_path: Path) -> Path:
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    return make


def _raw(data: bytes, name: str):
    def make(tmp_path: Path) -> Path:
        (tmp_path / name).write_bytes(data)
        return tmp_path / name

    return make


def _truncated_gzip(tmp_path: Path) -> Path:
    header, rows = _user_rows(200)
    data = gzip.compress(_csv_text(header, rows).encode())
    path = tmp_path / "users.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def _with_bias(n_users: int = 4) -> np.ndarray:
    return np.hstack([_embeddings(n_users), np.ones((n_users, 1), np.float32)])


_no_bias = _with_bias()
_no_bias[2, -1] = 0.5
_nan_npy = _embeddings(3)
_nan_npy[1, 4] = np.nan

USER_INVALID = [
    ("missing-column", _user_csv(_drop_column("dim_17")), "missing column(s): dim_17; expected"),
    ("extra-column", _user_csv(_add_column("extra")), "unexpected column(s): 'extra'"),
    (
        "index-column",
        _user_csv(_add_column("", first=True)),
        "unexpected column(s): 'Unnamed: 0' (an unnamed column is usually a saved DataFrame "
        "index; write the file with index=False)",
    ),
    (
        "bias-column",
        _user_csv(_add_column("dim_96", 1.0)),
        "unexpected column(s): dim_96; expected dim_0 ... dim_95 and optionally 'segment'; "
        "the bias column is added on reading, not stored",
    ),
    (
        "duplicate-column",
        _user_csv(_add_column("dim_3")),
        "unexpected column(s): dim_3.1 (a name ending in .1, .2, ... is a duplicated column)",
    ),
    (
        "non-numeric",
        _user_csv(_set(2, "dim_5", "abc")),
        "non-numeric value 'abc' in column dim_5 at line 4",
    ),
    (
        "non-numeric-segment",
        _user_csv(_set(0, "segment", "seven")),
        "non-numeric value 'seven' in column segment at line 2",
    ),
    (
        "nan",
        _user_csv(_set(1, "dim_5", "nan")),
        "missing value in column dim_5 at line 3 (an empty cell or a NaN)",
    ),
    (
        "empty-cell",
        _user_csv(_set(3, "dim_0", "")),
        "missing value in column dim_0 at line 5 (an empty cell or a NaN)",
    ),
    ("inf", _user_csv(_set(0, "dim_7", "inf")), "non-finite value inf in column dim_7 at line 2"),
    (
        "minus-inf",
        _user_csv(_set(2, "dim_9", "-inf")),
        "non-finite value -inf in column dim_9 at line 4",
    ),
    (
        "too-large-for-float32",
        _user_csv(_set(1, "dim_2", "1e39")),
        "value in column dim_2 at line 3 is too large for float32",
    ),
    (
        "truncated-mid-row",
        _user_csv(_cut_last_row(40)),
        "missing value in column dim_39 at line 5 (the row ends after 40 of 97 fields, as in "
        "a file cut short)",
    ),
    (
        "long-row",
        _user_csv(_set(1, "dim_95", "0.5,0.5")),
        "is not a well-formed CSV file: Error tokenizing data. C error: Expected 97 fields in "
        "line 3, saw 98",
    ),
    (
        "every-row-long",
        lambda tmp_path: _write(
            tmp_path / "users.csv",
            _csv_text(USER_DIMS, [[0.5] * 97, [0.5] * 97]),
        ),
        "data rows have more fields than the header has columns",
    ),
    (
        "header-only",
        lambda tmp_path: _write(tmp_path / "users.csv", ",".join(USER_DIMS) + "\n"),
        "has a header but no data rows",
    ),
    ("empty-file", _raw(b"", "users.csv"), "is empty (no header, no rows)"),
    (
        "segment-not-integer",
        _user_csv(_set(1, "segment", 1.5)),
        "segments must be non-negative integers; line 3 has 1.5",
    ),
    (
        "segment-negative",
        _user_csv(_set(2, "segment", -1)),
        "segments must be non-negative integers; line 4 has -1.0",
    ),
    ("corrupt-gzip", _truncated_gzip, "is not a readable gzip file: Compressed file ended"),
    (
        "not-gzip",
        _raw(b"segment,dim_0\n1,2\n", "users.csv.gz"),
        "is not a readable gzip file: Not a gzipped file",
    ),
    (
        "binary-csv",
        _raw(bytes(range(128, 256)) * 8, "users.csv"),
        "is not a text CSV file (binary content, or a compressed file without the .gz ending?)",
    ),
    (
        "unknown-extension",
        _raw(b"x", "users.txt"),
        "unknown file extension '.txt'; expected one of .csv, .csv.gz, .npy, .npz",
    ),
    (
        "npy-1d",
        _npy(np.zeros(5, np.float32)),
        "expected a 2-D array of shape (n, 96) or (n, 97); got 1-D shape (5,)",
    ),
    (
        "npy-3d",
        _npy(np.zeros((2, 3, 96), np.float32)),
        "expected a 2-D array of shape (n, 96) or (n, 97); got 3-D shape (2, 3, 96)",
    ),
    (
        "npy-95-columns",
        _npy(np.zeros((3, 95), np.float32)),
        "expected 96 or 97 columns, shape (n, 96) or (n, 97); got 95 columns, shape (3, 95)",
    ),
    (
        "npy-97-columns-no-bias",
        _npy(_no_bias),
        "with 97 columns the last one must be the bias 1.0, but row 2 has 0.5; store (96 "
        "columns) without it to have it added",
    ),
    ("npy-nan", _npy(_nan_npy), "non-finite value nan at row 1, column 4"),
    (
        "npy-float32-overflow",
        _npy(np.full((2, 96), 1e39)),
        "(converted to float32): non-finite value inf at row 0, column 0",
    ),
    ("npy-no-rows", _npy(np.zeros((0, 96), np.float32)), "the array has no rows, shape (0, 96)"),
    ("npy-bool", _npy(np.ones((2, 96), bool)), "expected real numbers; got dtype bool"),
    (
        "npy-corrupt",
        _raw(b"\x93NUMPY\x01\x00garbage", "users.npy"),
        "is not a readable .npy file (corrupt or truncated?)",
    ),
    (
        "npz-no-features",
        _npz(users=_embeddings(3)),
        "an .npz user file must hold the key 'features' and optionally 'segments'; found keys "
        "['users']",
    ),
    (
        "npz-extra-key",
        _npz(features=_embeddings(3), extra=np.zeros(3)),
        "found keys ['extra', 'features']",
    ),
    (
        "npz-segment-not-integer",
        _npz(features=_embeddings(4), segments=np.array([0.0, 1.0, 1.5, 2.0])),
        "(key 'segments'): segments must be non-negative integers; row 2 has 1.5",
    ),
    (
        "npz-segments-wrong-length",
        _npz(features=_embeddings(4), segments=np.zeros(3, np.int64)),
        "(key 'segments'): segments must have shape (4,), one per user; got shape (3,)",
    ),
    (
        "npz-corrupt",
        _raw(b"PK\x03\x04 not really a zip", "users.npz"),
        "is not a readable .npz archive (corrupt or truncated?)",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"),
    [case[1:] for case in USER_INVALID],
    ids=[case[0] for case in USER_INVALID],
)
def test_read_user_file_rejects(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        io.read_user_file(path)
    assert str(path) in str(caught.value)


# --- invalid playlist files ------------------------------------------------------------


def _playlist_csv(edit, name: str = "playlists.csv"):
    def make(tmp_path: Path) -> Path:
        header, rows = _playlist_rows()
        edit(header, rows)
        return _write(tmp_path / name, _csv_text(header, rows))

    return make


def _nothing(header, rows) -> None:
    return None


PLAYLIST_INVALID = [
    (
        "missing-column",
        _playlist_csv(_drop_column("dim_96")),
        "missing column(s): dim_96; expected dim_0 ... dim_96",
    ),
    (
        "extra-column",
        _playlist_csv(_add_column("segment", first=True)),
        "unexpected column(s): 'segment'",
    ),
    (
        "bias-weight-twice",
        _playlist_csv(_add_column("96")),
        "column(s) given twice: 'dim_96' and '96'",
    ),
    (
        "non-numeric",
        _playlist_csv(_set(3, "dim_50", "x1")),
        "non-numeric value 'x1' in column dim_50 at line 5",
    ),
    (
        "nan",
        _playlist_csv(_set(0, "dim_96", "NaN")),
        "missing value in column dim_96 at line 2",
    ),
    ("inf", _playlist_csv(_set(1, "dim_3", "inf")), "non-finite value inf in column dim_3"),
    (
        "header-only",
        lambda tmp_path: _write(tmp_path / "p.csv", ",".join(PLAYLIST_DIMS) + "\n"),
        "has a header but no data rows",
    ),
    ("empty-gzip-file", _raw(b"", "p.csv.gz"), "is empty (no header, no rows)"),
    (
        "corrupt-gzip",
        _raw(gzip.compress(b"dim_0,dim_1\n" * 1000)[:-20], "p.csv.gz"),
        "is not a readable gzip file",
    ),
    (
        "unknown-extension",
        _raw(b"x", "p.npz"),
        "unknown file extension '.npz'; expected one of .csv, .csv.gz, .npy",
    ),
    (
        "npy-1d",
        _npy(np.zeros(97), "p.npy"),
        "expected a 2-D array of shape (n, 97); got 1-D shape (97,)",
    ),
    (
        "npy-96-columns",
        _npy(np.zeros((5, 96)), "p.npy"),
        "expected 97 columns, shape (n, 97); got 96 columns, shape (5, 96)",
    ),
    (
        "npy-inf",
        _npy(np.where(np.eye(3, 97) > 0, np.inf, 0.0), "p.npy"),
        "non-finite value inf at row 0, column 0",
    ),
]


@pytest.mark.parametrize(
    ("make", "message"),
    [case[1:] for case in PLAYLIST_INVALID],
    ids=[case[0] for case in PLAYLIST_INVALID],
)
def test_read_playlist_file_rejects(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        io.read_playlist_file(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("reader", [io.read_user_file, io.read_playlist_file], ids=["user", "pl"])
def test_missing_file(tmp_path: Path, reader) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(FileNotFoundError, match=re.escape(f"file not found: {path}")):
        reader(path)


def test_whole_message_of_a_missing_column(tmp_path: Path) -> None:
    path = _user_csv(_drop_column("dim_17"))(tmp_path)
    with pytest.raises(ValueError) as caught:
        io.read_user_file(path)
    assert str(caught.value) == (
        f"user file {path}: missing column(s): dim_17; expected dim_0 ... dim_95 and "
        f"optionally 'segment'"
    )


def test_non_numeric_cell_is_located_beyond_the_first_chunk(tmp_path, monkeypatch) -> None:
    # Chunks of 3 rows: the bad cell (data row 7, line 9) lies in the third chunk.
    monkeypatch.setattr(io, "_CSV_CHUNK_ROWS", 3)
    header, rows = _user_rows(10)
    rows[7][header.index("dim_60")] = "1.2.3"
    path = _write(tmp_path / "users.csv", _csv_text(header, rows))
    with pytest.raises(ValueError, match=re.escape("'1.2.3' in column dim_60 at line 9")):
        io.read_user_file(path)


# --- round trips -----------------------------------------------------------------------


def _expected_features(n_users: int) -> np.ndarray:
    return np.hstack([_embeddings(n_users), np.ones((n_users, 1), np.float32)])


@pytest.mark.parametrize("name", ["users.csv", "users.csv.gz", "USERS.CSV"], ids=str)
@pytest.mark.parametrize("with_segments", [True, False], ids=["segment", "no-segment"])
def test_user_csv_round_trip(tmp_path: Path, name: str, with_segments: bool) -> None:
    header, rows = _user_rows(5, segments=with_segments)
    features, segments = io.read_user_file(_write(tmp_path / name, _csv_text(header, rows)))

    assert features.dtype == np.float32 and features.shape == (5, 97)
    # The text holds float32 values printed as float64: they read back exactly.
    np.testing.assert_array_equal(features, _expected_features(5))
    if with_segments:
        assert segments.dtype == np.int64
        np.testing.assert_array_equal(segments, np.arange(5) % 3)
    else:
        assert segments is None


def test_user_csv_columns_in_any_order(tmp_path: Path) -> None:
    header, rows = _user_rows(6)
    frame = pd.DataFrame(rows, columns=header)
    shuffled = frame[list(np.random.default_rng(3).permutation(header))]
    shuffled.to_csv(tmp_path / "users.csv", index=False)
    features, segments = io.read_user_file(tmp_path / "users.csv")
    np.testing.assert_array_equal(features, _expected_features(6))
    np.testing.assert_array_equal(segments, np.arange(6) % 3)


def test_user_csv_read_in_several_chunks(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(io, "_CSV_CHUNK_ROWS", 4)
    header, rows = _user_rows(11)
    features, segments = io.read_user_file(_write(tmp_path / "u.csv", _csv_text(header, rows)))
    np.testing.assert_array_equal(features, _expected_features(11))
    np.testing.assert_array_equal(segments, np.arange(11) % 3)


@pytest.mark.parametrize(
    "array",
    [
        _embeddings(4),
        _embeddings(4).astype(np.float64),
        _expected_features(4),
        _expected_features(4).astype(np.float64),
        np.asfortranarray(_expected_features(4)),
    ],
    ids=["96-float32", "96-float64", "97-float32", "97-float64", "97-fortran"],
)
def test_user_npy_round_trip(tmp_path: Path, array: np.ndarray) -> None:
    np.save(tmp_path / "users.npy", array)
    features, segments = io.read_user_file(tmp_path / "users.npy")
    assert features.dtype == np.float32 and features.flags.c_contiguous
    np.testing.assert_array_equal(features, _expected_features(4))
    assert segments is None


def test_large_user_npy_is_memory_mapped(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(io, "MMAP_MIN_BYTES", 0)
    np.save(tmp_path / "users.npy", _expected_features(4))
    features, _ = io.read_user_file(tmp_path / "users.npy")
    assert isinstance(features, np.memmap) and not features.flags.writeable
    np.testing.assert_array_equal(features, _expected_features(4))

    # Without the bias column a copy is needed: an ordinary in-memory array.
    np.save(tmp_path / "short.npy", _embeddings(4))
    features, _ = io.read_user_file(tmp_path / "short.npy")
    assert not isinstance(features, np.memmap)
    np.testing.assert_array_equal(features, _expected_features(4))


@pytest.mark.parametrize("with_segments", [True, False], ids=["segments", "no-segments"])
def test_user_npz_round_trip(tmp_path: Path, with_segments: bool) -> None:
    arrays = {"features": _embeddings(4)}
    if with_segments:
        arrays["segments"] = np.array([3, 0, 2, 3], dtype=np.int32)
    np.savez_compressed(tmp_path / "users.npz", **arrays)
    features, segments = io.read_user_file(tmp_path / "users.npz")
    np.testing.assert_array_equal(features, _expected_features(4))
    if with_segments:
        assert segments.dtype == np.int64
        np.testing.assert_array_equal(segments, [3, 0, 2, 3])
    else:
        assert segments is None


@pytest.mark.parametrize("bias_name", ["dim_96", "96"], ids=["dim_96", "published-96"])
@pytest.mark.parametrize("name", ["p.csv", "p.csv.gz"], ids=str)
def test_playlist_csv_round_trip(tmp_path: Path, name: str, bias_name: str) -> None:
    header, rows = _playlist_rows(6)
    header[-1] = bias_name
    weights = io.read_playlist_file(_write(tmp_path / name, _csv_text(header, rows)))
    assert weights.dtype == np.float64 and weights.shape == (6, 97)
    np.testing.assert_array_equal(weights, np.array(rows, dtype=np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_playlist_npy_round_trip(tmp_path: Path, dtype) -> None:
    values = np.random.default_rng(2).normal(size=(5, 97)).astype(dtype)
    np.save(tmp_path / "p.npy", values)
    weights = io.read_playlist_file(tmp_path / "p.npy")
    assert weights.dtype == np.float64
    np.testing.assert_array_equal(weights, values.astype(np.float64))


# --- shipped files ---------------------------------------------------------------------


def _shipped_sha256(name: str) -> str:
    path = Path(io.__file__).parent / "files" / name
    return hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()


@pytest.mark.parametrize(
    ("name", "digest"),
    [(io.SHIPPED_PLAYLISTS, PLAYLISTS_SHA256), (io.SHIPPED_USERS, USERS_SHA256)],
    ids=["playlists", "users"],
)
def test_shipped_files_are_the_published_ones(name: str, digest: str) -> None:
    assert _shipped_sha256(name) == digest


def test_shipped_playlists() -> None:
    weights = io.load_shipped_playlists()
    assert weights.shape == (862, 97) and weights.dtype == np.float64
    # Bias weights as measured in SOURCE.md: min -8.19, mean -5.42, max -3.08.
    assert weights[:, -1].min() == pytest.approx(-8.19, abs=0.005)
    assert weights[:, -1].mean() == pytest.approx(-5.42, abs=0.005)
    assert weights[:, -1].max() == pytest.approx(-3.08, abs=0.005)


def test_shipped_users() -> None:
    features, segments = io.load_shipped_users()
    assert features.shape == (9, 97) and features.dtype == np.float32
    np.testing.assert_array_equal(features[:, -1], 1.0)
    np.testing.assert_array_equal(segments, np.zeros(9, np.int64))

    # SOURCE.md: the mean stream probability over the 9 x 862 pairs is about 0.0070.
    logits = features.astype(np.float64) @ io.load_shipped_playlists().T
    assert (1.0 / (1.0 + np.exp(-logits))).mean() == pytest.approx(0.0070, abs=5e-5)


# --- atomic writes ---------------------------------------------------------------------


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.npy"
    with io.atomic_write(target) as handle:
        np.save(handle, np.arange(3))
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.npy"]


def test_atomic_write_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "meta.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), io.atomic_write(target, "w") as handle:
        handle.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]
