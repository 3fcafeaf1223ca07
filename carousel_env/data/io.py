"""Reading user and item (playlist) files, and writing cache files atomically.

The file formats are those Deezer published with the RecSys 2020 paper "Carousel
Personalization in Music Streaming Apps with Contextual Bandits" (Bendada, Salha and
Bontempelli, arXiv:2009.06546):

* a user file holds an optional ``segment`` column (the user's k-means cluster, a
  non-negative integer) and the 96 columns ``dim_0`` ... ``dim_95`` of the user's taste
  embedding. The constant bias 1.0 is not stored: it is appended on reading, as the last
  of 97 features;
* a playlist (item) file holds the 97 columns ``dim_0`` ... ``dim_96`` of theta_i, where
  ``dim_96`` multiplies the user's bias.

Besides CSV (plain or gzip-compressed), both readers accept NumPy ``.npy`` files, and the
user reader accepts ``.npz`` archives, so a converted copy loads without parsing text.
Every problem found in a file is reported as a ``ValueError`` that names the file and
says what is wrong and where (column and line of a CSV, row and column of an array).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from carousel_env.data.population import N_FEATURES

logger = logging.getLogger(__name__)

#: Length of the published user embedding; the bias makes it ``N_FEATURES``.
N_USER_DIMS = N_FEATURES - 1
#: Feature columns of a user file, in published order.
USER_COLUMNS = tuple(f"dim_{j}" for j in range(N_USER_DIMS))
#: Weight columns of a playlist file, in published order (the last one is the bias weight).
PLAYLIST_COLUMNS = tuple(f"dim_{j}" for j in range(N_FEATURES))
#: Name of the optional column holding a user's segment.
SEGMENT_COLUMN = "segment"
#: ``.npy`` files at least this large are memory-mapped instead of read into memory.
MMAP_MIN_BYTES = 64 * 2**20

SHIPPED_PLAYLISTS = "playlist_features.csv.gz"
SHIPPED_USERS = "user_features_small.csv.gz"

# Rows parsed per pandas chunk: bounds the float64 temporaries to about 50 MB.
_CSV_CHUNK_ROWS = 65_536
# Rows checked per block when scanning a (possibly memory-mapped) array.
_SCAN_ROWS = 262_144
# Deezer's published playlist file names its last (bias weight) column "96", not "dim_96".
_PLAYLIST_ALIASES = {str(N_USER_DIMS): f"dim_{N_USER_DIMS}"}
_USER_SUFFIXES = (".csv", ".csv.gz", ".npy", ".npz")
_PLAYLIST_SUFFIXES = (".csv", ".csv.gz", ".npy")


def read_user_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a user file into taste vectors with the bias appended.

    Accepted formats, chosen by the file name's ending:

    * ``.csv`` / ``.csv.gz``: columns ``dim_0`` ... ``dim_95`` and optionally ``segment``,
      in any order, nothing else (a saved DataFrame index such as ``Unnamed: 0`` is an
      unexpected column);
    * ``.npy``: a 2-D real array of shape (n_users, 96) without bias, or (n_users, 97)
      whose last column is all 1.0. A file of at least ``MMAP_MIN_BYTES`` that is already
      float32 with the bias column is memory-mapped read-only rather than loaded; any
      other array is copied (to add the bias or change the dtype);
    * ``.npz``: key ``features`` (as for ``.npy``) and optional key ``segments``.

    Args:
        path: the file to read.

    Returns:
        ``(features, segments)``: features is float32, shape (n_users, 97), last column
        1.0; segments is int64, shape (n_users,), or None when the file has none.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file name has an unknown ending, or its content is not a valid
            user file (the message names the file and the problem).
    """
    path = _existing_file(path, "user")
    kind = _kind(path, "user", _USER_SUFFIXES)

    if kind == "csv":
        values, segments = _read_csv(
            path, "user", USER_COLUMNS, optional=SEGMENT_COLUMN, dtype=np.float32, bias=True
        )
        return values, segments
    if kind == "npy":
        array = _load_npy(path, "user", mmap=True)
        return _user_features(array, f"user file {path}"), None

    with _open_npz(path, "user") as archive:
        unexpected = sorted(set(archive.files) - {"features", "segments"})
        if "features" not in archive.files or unexpected:
            raise ValueError(
                f"user file {path}: an .npz user file must hold the key 'features' and "
                f"optionally 'segments'; found keys {sorted(archive.files)}"
            )
        features = _user_features(archive["features"], f"user file {path} (key 'features')")
        segments = None
        if "segments" in archive.files:
            segments = _segments(
                archive["segments"], features.shape[0], f"user file {path} (key 'segments')"
            )
    return features, segments


def read_playlist_file(path: str | os.PathLike) -> np.ndarray:
    """Read a playlist (item) file of weight vectors theta_i.

    Accepted formats: ``.csv`` / ``.csv.gz`` with exactly the columns ``dim_0`` ...
    ``dim_96`` (any order; the last may be spelled ``96``, as in the file Deezer
    published), or ``.npy`` holding a 2-D real array of shape (n_items, 97).

    Returns:
        float64 array, shape (n_items, 97); the last column multiplies the user's bias.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown file ending, or content that is not a valid playlist file.
    """
    path = _existing_file(path, "playlist")
    kind = _kind(path, "playlist", _PLAYLIST_SUFFIXES)

    if kind == "csv":
        weights, _ = _read_csv(
            path, "playlist", PLAYLIST_COLUMNS, aliases=_PLAYLIST_ALIASES, dtype=np.float64
        )
        return weights

    source = f"playlist file {path}"
    array = _load_npy(path, "playlist", mmap=False)
    _check_matrix(array, source, widths=(N_FEATURES,))
    return _finite(np.array(array, dtype=np.float64), source)


def load_shipped_playlists() -> np.ndarray:
    """The 862 playlists Deezer released with the paper: float64, shape (862, 97)."""
    with _shipped(SHIPPED_PLAYLISTS) as path:
        return read_playlist_file(path)


def load_shipped_users() -> tuple[np.ndarray, np.ndarray]:
    """The 9 users shipped with the package, all in segment 0.

    Returns:
        ``(features, segments)``: float32, shape (9, 97) with the bias last; int64,
        shape (9,).
    """
    with _shipped(SHIPPED_USERS) as path:
        features, segments = read_user_file(path)
    if segments is None:
        raise ValueError(f"shipped user file {SHIPPED_USERS} has no `segment` column")
    return features, segments


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path`` and move it onto ``path`` on success.

    Readers never see a half-written file: the data is written to a temporary file in
    the same folder, flushed to disk, and renamed over ``path`` (``os.replace``, atomic on
    one file system) only when the ``with`` block ends without an exception. On an
    exception the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the final file; its folder is created if missing.
        mode: ``"wb"`` (binary) or ``"w"`` (text, UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"`mode` must be 'wb' or 'w'; got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); cache files are meant to be shared.
        os.chmod(tmp, 0o644)
        encoding = None if mode == "wb" else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --- file names and opening ------------------------------------------------------------


def _existing_file(path: str | os.PathLike, what: str) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{what} file `path` must be a str or os.PathLike; got {path!r}")
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: {path}")
    if not path.is_file():
        raise ValueError(f"{what} file {path} is not a regular file")
    return path


def _kind(path: Path, what: str, suffixes: Sequence[str]) -> str:
    name = path.name.lower()
    for suffix in suffixes:
        if name.endswith(suffix):
            return "csv" if suffix.startswith(".csv") else suffix[1:]
    raise ValueError(
        f"{what} file {path}: unknown file extension {''.join(path.suffixes)!r}; expected "
        f"one of {', '.join(suffixes)}"
    )


@contextlib.contextmanager
def _shipped(name: str) -> Iterator[Path]:
    resource = resources.files("carousel_env.data").joinpath("files", name)
    with resources.as_file(resource) as path:
        yield path


def _load_npy(path: Path, what: str, *, mmap: bool) -> np.ndarray:
    mmap_mode = "r" if mmap and path.stat().st_size >= MMAP_MIN_BYTES else None
    try:
        array = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except PermissionError:
        raise
    except (ValueError, EOFError, OSError) as err:
        raise ValueError(
            f"{what} file {path} is not a readable .npy file (corrupt or truncated?): {err}"
        ) from err
    if not isinstance(array, np.ndarray):
        array.close()
        raise ValueError(f"{what} file {path} is an .npz archive, not an .npy array")
    return array


@contextlib.contextmanager
def _open_npz(path: Path, what: str) -> Iterator[np.lib.npyio.NpzFile]:
    # The file is opened here rather than by np.load, which leaves its own handle open
    # when the archive turns out to be corrupt.
    with open(path, "rb") as handle:
        try:
            archive = np.load(handle, allow_pickle=False)
        except (ValueError, EOFError, OSError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"{what} file {path} is not a readable .npz archive (corrupt or truncated?): {err}"
            ) from err
        if isinstance(archive, np.ndarray):
            raise ValueError(f"{what} file {path} is an .npy array, not an .npz archive")
        try:
            with archive:
                yield archive
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise ValueError(f"{what} file {path} is a corrupt .npz archive: {err}") from err


# --- CSV -----------------------------------------------------------------------------


def _read_csv(
    path: Path,
    what: str,
    columns: Sequence[str],
    *,
    optional: str | None = None,
    aliases: dict[str, str] | None = None,
    dtype: type[np.floating],
    bias: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse a CSV in chunks with pandas' C engine.

    ``aliases`` maps a header spelling found in published files to the column it stands
    for; messages about cells use the file's own spelling.

    Returns the ``columns`` as an array of ``dtype``, shape (n_rows, len(columns) + bias),
    with 1.0 in the extra last column when ``bias``, and the ``optional`` column as int64
    (or None when the file lacks it).
    """
    found = _csv_header(path, what)
    names = [(aliases or {}).get(name, name) for name in found]
    _check_columns(found, names, columns, optional, what, path)
    has_optional = optional is not None and optional in names

    # Positions of the wanted columns in the file; a plain slice when already in order.
    where = [names.index(name) for name in columns]
    if where == list(range(where[0], where[0] + len(where))):
        where = slice(where[0], where[0] + len(where))
    optional_at = names.index(optional) if has_optional else None

    blocks: list[np.ndarray] = []
    extras: list[np.ndarray] = []
    n_rows = 0
    try:
        with _csv_guard(path, what):
            reader = pd.read_csv(
                path,
                dtype=np.float64,
                index_col=False,
                skip_blank_lines=False,
                chunksize=_CSV_CHUNK_ROWS,
            )
            with reader:
                for chunk in reader:
                    raw = chunk.to_numpy(np.float64)
                    _check_finite_rows(raw, found, n_rows, what, path)
                    block = np.empty((raw.shape[0], len(columns) + bias), dtype=dtype)
                    # Overflow to inf is reported by _check_overflow below.
                    with np.errstate(over="ignore"):
                        block[:, : len(columns)] = raw[:, where]
                    if bias:
                        block[:, -1] = 1.0
                    _check_overflow(block, columns, n_rows, what, path)
                    blocks.append(block)
                    if optional_at is not None:
                        # A copy: a view would keep the whole float64 chunk alive.
                        extras.append(raw[:, optional_at].copy())
                    n_rows += raw.shape[0]
    except _NonNumeric as err:
        raise _locate_non_numeric(path, what, found, n_rows, err.__cause__) from None

    if n_rows == 0:
        raise ValueError(f"{what} file {path} has a header but no data rows")
    values = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    extra = None
    if has_optional:
        extra = _segments(np.concatenate(extras), n_rows, f"{what} file {path}", csv=True)
    logger.debug("read %s file %s: %d rows", what, path, n_rows)
    return values, extra


class _NonNumeric(Exception):
    """Internal: pandas met a cell it cannot parse as a float."""


@contextlib.contextmanager
def _csv_guard(path: Path, what: str) -> Iterator[None]:
    """Turn pandas, gzip and decoding failures into ``ValueError`` naming the file."""
    try:
        with warnings.catch_warnings():
            # With index_col=False, rows longer than the header only warn and lose data.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield
    except pd.errors.ParserWarning as err:
        raise ValueError(
            f"{what} file {path}: data rows have more fields than the header has columns"
        ) from err
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{what} file {path} is empty (no header, no rows)") from err
    except pd.errors.ParserError as err:
        raise ValueError(
            f"{what} file {path} is not a well-formed CSV file: {str(err).strip()}"
        ) from err
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{what} file {path} is not a text CSV file (binary content, or a compressed "
            f"file without the .gz ending?): {err}"
        ) from err
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ValueError(
            f"{what} file {path} is not a readable gzip file: {err}; it is corrupt or was "
            f"cut short, fetch it again"
        ) from err
    except ValueError as err:
        # The C parser's "could not convert string to float": find the cell in the caller.
        if "could not convert" in str(err):
            raise _NonNumeric() from err
        raise


def _csv_header(path: Path, what: str) -> list[str]:
    with _csv_guard(path, what):
        return [str(name) for name in pd.read_csv(path, nrows=0, index_col=False).columns]


def _check_columns(
    found: Sequence[str],
    names: Sequence[str],
    columns: Sequence[str],
    optional: str | None,
    what: str,
    path: Path,
) -> None:
    """Check the header ``found`` (read as ``names`` once aliases are resolved)."""
    allowed = set(columns) | ({optional} if optional else set())
    missing = [name for name in columns if name not in names]
    unexpected = [
        file_name for file_name, name in zip(found, names, strict=True) if name not in allowed
    ]
    twice = sorted({name for name in names if names.count(name) > 1 and name in allowed})
    if not missing and not unexpected and not twice:
        return

    problems = []
    if twice:
        spellings = [
            " and ".join(repr(f) for f, n in zip(found, names, strict=True) if n == name)
            for name in twice
        ]
        problems.append(f"column(s) given twice: {'; '.join(spellings)}")
    if missing:
        problems.append(f"missing column(s): {_names(missing)}")
    if unexpected:
        text = f"unexpected column(s): {_names(unexpected)}"
        if any(name.startswith("Unnamed:") for name in unexpected):
            text += " (an unnamed column is usually a saved DataFrame index; write the file "
            text += "with index=False)"
        if any(name.rpartition(".")[0] in allowed for name in unexpected):
            text += " (a name ending in .1, .2, ... is a duplicated column)"
        problems.append(text)
    expected = f"{columns[0]} ... {columns[-1]}"
    if optional:
        expected += f" and optionally {optional!r}"
    if what == "user" and "dim_96" in unexpected:
        expected += "; the bias column is added on reading, not stored"
    raise ValueError(f"{what} file {path}: {'; '.join(problems)}; expected {expected}")


def _names(names: Sequence[str], limit: int = 8) -> str:
    shown = [name if name.startswith("dim_") else repr(name) for name in names]
    if len(shown) > limit:
        return ", ".join(shown[:limit]) + f", ... ({len(shown)} in all)"
    return ", ".join(shown)


def _check_finite_rows(
    raw: np.ndarray, file_columns: list[str], first_row: int, what: str, path: Path
) -> None:
    bad = ~np.isfinite(raw)
    if not bad.any():
        return
    row, col = np.argwhere(bad)[0]
    line = first_row + row + 2  # one header line; blank lines are kept as rows
    value = raw[row, col]
    if not np.isnan(value):
        raise ValueError(
            f"{what} file {path}: non-finite value {value} in column {file_columns[col]} at "
            f"line {line}"
        )
    present = np.flatnonzero(~np.isnan(raw[row]))
    if present.size == 0:
        detail = "the line is empty"
    elif present[-1] < col:
        detail = (
            f"the row ends after {present[-1] + 1} of {len(file_columns)} fields, as in a "
            f"file cut short"
        )
    else:
        detail = "an empty cell or a NaN"
    raise ValueError(
        f"{what} file {path}: missing value in column {file_columns[col]} at line {line} "
        f"({detail})"
    )


def _check_overflow(
    block: np.ndarray, columns: Sequence[str], first_row: int, what: str, path: Path
) -> None:
    if block.dtype == np.float64 or np.isfinite(block).all():
        return
    row, col = np.argwhere(~np.isfinite(block))[0]
    raise ValueError(
        f"{what} file {path}: value in column {columns[col]} at line {first_row + row + 2} "
        f"is too large for float32"
    )


def _locate_non_numeric(
    path: Path, what: str, found: Sequence[str], first_row: int, cause: BaseException | None
) -> ValueError:
    """Re-read the failing chunk as text to report the first non-numeric cell."""
    with _csv_guard(path, what):
        text = pd.read_csv(
            path,
            dtype=str,
            index_col=False,
            skip_blank_lines=False,
            skiprows=range(1, first_row + 1),
            nrows=_CSV_CHUNK_ROWS,
        )
    best: tuple[int, int, str] | None = None
    for position, name in enumerate(found):
        cells = text[name]
        numbers = pd.to_numeric(cells, errors="coerce")
        rows = np.flatnonzero(cells.notna().to_numpy() & numbers.isna().to_numpy())
        if rows.size and (best is None or (rows[0], position) < best[:2]):
            best = (int(rows[0]), position, str(cells.iloc[rows[0]]))
    if best is None:
        return ValueError(f"{what} file {path}: non-numeric value ({cause})")
    row, position, value = best
    return ValueError(
        f"{what} file {path}: non-numeric value {value!r} in column {found[position]} at "
        f"line {first_row + row + 2}"
    )


# --- arrays --------------------------------------------------------------------------


def _check_matrix(array: np.ndarray, source: str, *, widths: Sequence[int]) -> None:
    expected = " or ".join(f"(n, {w})" for w in widths)
    if array.ndim != 2:
        raise ValueError(
            f"{source}: expected a 2-D array of shape {expected}; got {array.ndim}-D shape "
            f"{array.shape}"
        )
    if array.shape[1] not in widths:
        raise ValueError(
            f"{source}: expected {' or '.join(map(str, widths))} columns, shape {expected}; "
            f"got {array.shape[1]} columns, shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{source}: the array has no rows, shape {array.shape}")
    kind = array.dtype.kind
    if kind not in "fiu":
        raise ValueError(f"{source}: expected real numbers; got dtype {array.dtype}")


def _finite(array: np.ndarray, source: str) -> np.ndarray:
    """Return ``array`` after checking, block by block, that every value is finite."""
    if array.dtype.kind != "f":
        return array
    for start in range(0, array.shape[0], _SCAN_ROWS):
        block = array[start : start + _SCAN_ROWS]
        bad = ~np.isfinite(block)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise ValueError(
                f"{source}: non-finite value {block[row, col]} at row {start + row}, column {col}"
            )
    return array


def _user_features(array: np.ndarray, source: str) -> np.ndarray:
    """Validate a user array of shape (n, 96) or (n, 97) and return float32 (n, 97)."""
    _check_matrix(array, source, widths=(N_USER_DIMS, N_FEATURES))
    _finite(array, source)

    if array.shape[1] == N_FEATURES:
        bias = np.asarray(array[:, -1])
        off = np.flatnonzero(bias != 1.0)
        if off.size:
            raise ValueError(
                f"{source}: with {N_FEATURES} columns the last one must be the bias 1.0, but "
                f"row {off[0]} has {bias[off[0]]}; store ({N_USER_DIMS} columns) without it "
                f"to have it added"
            )
        if array.dtype == np.float32 and array.flags.c_contiguous:
            return array
        # Values beyond the float32 range become inf and are reported just below.
        with np.errstate(over="ignore"):
            features = np.ascontiguousarray(array, dtype=np.float32)
    else:
        features = np.empty((array.shape[0], N_FEATURES), dtype=np.float32)
        with np.errstate(over="ignore"):
            features[:, :N_USER_DIMS] = array
        features[:, -1] = 1.0
    return _finite(features, source + " (converted to float32)")


def _segments(values: np.ndarray, n_users: int, source: str, *, csv: bool = False) -> np.ndarray:
    """Check that ``values`` are one non-negative integer per user; return int64."""
    values = np.asarray(values)
    if values.shape != (n_users,):
        raise ValueError(
            f"{source}: segments must have shape ({n_users},), one per user; got shape "
            f"{values.shape}"
        )
    if values.dtype.kind in "iu":
        whole = np.ones(n_users, dtype=bool)
    elif values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**53)
    else:
        raise ValueError(f"{source}: segments must be integers; got dtype {values.dtype}")
    bad = np.flatnonzero(~whole | (values < 0))
    if bad.size:
        where = f"line {bad[0] + 2}" if csv else f"row {bad[0]}"
        raise ValueError(
            f"{source}: segments must be non-negative integers; {where} has {values[bad[0]]}"
        )
    return values.astype(np.int64)
