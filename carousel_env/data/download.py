"""Fetching the full Deezer user file and converting it once into memory-mappable arrays.

Deezer published the embeddings of 974,960 users with the RecSys 2020 paper "Carousel
Personalization in Music Streaming Apps with Contextual Bandits" (Bendada, Salha and
Bontempelli, arXiv:2009.06546) on Zenodo, record 4048678. The CSV is about 1.8 GB; parsing
it takes seconds, so it is parsed once and kept as NumPy arrays that every later run
memory-maps:

* ``<cache>/user_features.csv``: the downloaded file (kept; ``.part`` while incomplete);
* ``<cache>/users/features.npy``: float32, shape (n_users, 97), the bias 1.0 last;
* ``<cache>/users/segments.npy``: int64, shape (n_users,);
* ``<cache>/users/meta.json``: row count, source URL, SHA-256 of the CSV. It is written
  last, so its presence means the conversion is complete.

The cache folder ``<cache>`` is chosen by :func:`cache_dir`.

Limitation: two processes downloading into the same cache folder at the same time wait
for each other only on systems with ``fcntl`` (Linux, macOS); elsewhere, don't.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from carousel_env.data.io import atomic_write, read_user_file
from carousel_env.data.population import N_FEATURES
from carousel_env.data.segments import kmeans_segments

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, see the module docstring
    fcntl = None

logger = logging.getLogger(__name__)

#: Where the full user file is published (Zenodo record 4048678).
USERS_URL = "https://zenodo.org/record/4048678/files/user_features.csv?download=1"
#: Number of users in the full file.
FULL_N_USERS = 974_960
#: Environment variable naming the data cache folder.
CACHE_ENV_VAR = "CAROUSEL_ENV_DATA_DIR"
#: Number of k-means segments computed for a user file that has none (as in the paper).
N_SEGMENTS = 100

CSV_NAME = "user_features.csv"
USERS_FOLDER = "users"
_USER_AGENT = "carousel-env (python urllib)"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder where downloaded and derived data is kept (not created here).

    Chosen in this order: ``path`` when given; else the environment variable
    ``CAROUSEL_ENV_DATA_DIR`` when set and not empty; else ``carousel-env`` under
    ``$XDG_CACHE_HOME`` when that is an absolute path; else ``~/.cache/carousel-env``.
    """
    return _resolve_cache_dir(path)


def _resolve_cache_dir(path: str | os.PathLike | None) -> Path:
    # `download_users` and `load_downloaded_users` call this: their `cache_dir` argument
    # hides the public function of the same name.
    if path is not None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"`cache_dir` must be a str or os.PathLike; got {path!r}")
        if not os.fspath(path):
            raise ValueError("`cache_dir` must not be an empty string; pass None for the default")
        return Path(os.fspath(path)).expanduser()
    from_env = os.environ.get(CACHE_ENV_VAR, "")
    if from_env:
        return Path(from_env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "carousel-env"
    return Path.home() / ".cache" / "carousel-env"


def download_users(
    url: str = USERS_URL,
    *,
    cache_dir: str | os.PathLike | None = None,
    expected_rows: int | None = FULL_N_USERS,
    force: bool = False,
    progress: bool = True,
    chunk_size: int = 1 << 20,
    timeout: float = 60.0,
) -> Path:
    """Download the user file, check it, and convert it to arrays; return their folder.

    The transfer streams into ``<cache>/user_features.csv.part`` and resumes where it
    stopped: when the ``.part`` exists, an HTTP ``Range`` request asks for the rest and the
    answer is appended if the server sends 206 (partial content); on a 200 the transfer
    restarts from zero. The file is renamed to ``user_features.csv`` only once every byte
    announced by ``Content-Length`` has arrived. A complete ``user_features.csv`` already in
    the cache is reused without downloading.

    The CSV is then read with :func:`carousel_env.data.io.read_user_file` (all 96
    embedding columns present, nothing else, finite numbers) and, when ``expected_rows`` is
    not None, must have that many rows. Users without a ``segment`` column get k-means
    segments (``N_SEGMENTS`` = 100 clusters, seed 0). The arrays are written atomically to
    ``<cache>/users/``, ``meta.json`` last.

    Args:
        url: ``http://``, ``https://`` or ``file://`` URL of a user CSV.
        cache_dir: the cache folder; see :func:`cache_dir` for the default.
        expected_rows: the number of users the file must hold; None accepts any.
        force: download and convert again even if a converted copy exists.
        progress: show a progress bar (tqdm, on stderr).
        chunk_size: bytes read per network call.
        timeout: seconds to wait for the server on connecting and on each read.

    Returns:
        The folder ``<cache>/users`` holding ``features.npy``, ``segments.npy`` and
        ``meta.json``; load it with :func:`load_downloaded_users`.

    Raises:
        ConnectionError: the server could not be reached, answered with an HTTP error, or
            the transfer stopped early. The ``.part`` file is kept: call again to resume.
        FileNotFoundError: a ``file://`` URL names a missing file.
        ValueError: bad arguments, or a complete download that is not a valid user file
            (wrong columns, non-numeric or missing values, wrong row count). That file is
            moved to ``user_features.csv.corrupt``, so the next call fetches it afresh,
            and nothing is converted.
    """
    url = _check_url(url)
    if expected_rows is not None:
        expected_rows = _check_positive_int("expected_rows", expected_rows)
    chunk_size = _check_positive_int("chunk_size", chunk_size)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"`timeout` must be a positive number of seconds; got {timeout!r}")

    root = _resolve_cache_dir(cache_dir)
    folder = root / USERS_FOLDER
    if not force and _is_converted(folder):
        logger.info("users already converted in %s", folder)
        return folder

    root.mkdir(parents=True, exist_ok=True)
    with _exclusive(root / ".download.lock"):
        # Another process may have finished the same work while this one waited.
        if not force and _is_converted(folder):
            return folder
        csv_path = root / CSV_NAME
        part_path = root / (CSV_NAME + ".part")
        if force:
            # meta.json first: without it the converted folder no longer counts as complete.
            for name in ("meta.json", "features.npy", "segments.npy"):
                (folder / name).unlink(missing_ok=True)
            csv_path.unlink(missing_ok=True)
            part_path.unlink(missing_ok=True)

        if csv_path.is_file():
            logger.info("using the complete download %s", csv_path)
        else:
            _fetch(url, part_path, csv_path, chunk_size, timeout, progress)
        return _convert(csv_path, folder, url, expected_rows)


def load_downloaded_users(
    cache_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Memory-map the users converted by :func:`download_users`.

    Returns:
        ``(features, segments)``: read-only memory maps, float32 of shape (n_users, 97)
        with the bias last, and int64 of shape (n_users,).

    Raises:
        FileNotFoundError: nothing converted in the cache folder yet.
        ValueError: the converted files are inconsistent (re-run with ``--force``).
    """
    root = _resolve_cache_dir(cache_dir)
    folder = root / USERS_FOLDER
    if not _is_converted(folder):
        raise FileNotFoundError(
            f"the full Deezer user file is not in the cache folder {root} (no converted "
            f"users in {folder}); run `carousel-env download` to fetch it (about 1.8 GB), "
            f"or choose another cache folder with --cache-dir or the environment variable "
            f"{CACHE_ENV_VAR}"
        )

    features = np.load(folder / "features.npy", mmap_mode="r", allow_pickle=False)
    segments = np.load(folder / "segments.npy", mmap_mode="r", allow_pickle=False)
    if (
        features.ndim != 2
        or features.shape[1] != N_FEATURES
        or features.dtype != np.float32
        or segments.shape != (features.shape[0],)
        or segments.dtype != np.int64
    ):
        raise ValueError(
            f"converted users in {folder} are inconsistent: features {features.dtype} "
            f"{features.shape}, segments {segments.dtype} {segments.shape}; run "
            f"`carousel-env download --force`"
        )
    return features, segments


# --- arguments and state -------------------------------------------------------------


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise TypeError(f"`url` must be a str; got {url!r}")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise ValueError(f"`url` must be an http://, https:// or file:// URL; got {url!r}")
    return url


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int; got {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be at least 1; got {value}")
    return int(value)


def _is_converted(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("meta.json", "features.npy", "segments.npy"))


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``lock_path`` (released by the OS if the process dies)."""
    if fcntl is None:
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- transfer ------------------------------------------------------------------------


def _fetch(
    url: str, part: Path, dest: Path, chunk_size: int, timeout: float, progress: bool
) -> None:
    """Stream ``url`` into ``part`` (resuming it), then rename it to ``dest``."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "file":
        source = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        if not source.is_file():
            raise FileNotFoundError(f"user file not found: {source} (from {url})")

    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset and scheme != "file":
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            # Nothing left to send from `offset`: the .part is whole, or longer than the file.
            total = _range_total(err.headers.get("Content-Range"))
            if total == offset:
                os.replace(part, dest)
                return
            logger.info("discarding %s: it does not match the file on the server", part)
            part.unlink()
            return _fetch(url, part, dest, chunk_size, timeout, progress)
        raise ConnectionError(
            f"download of {url} failed: HTTP {err.code} {err.reason}{_kept(part)}"
        ) from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise ConnectionError(f"cannot download {url}: {reason}{_kept(part)}") from err

    with response:
        status = getattr(response, "status", None)  # None for file:// URLs
        if status == 206:
            start = _range_start(response.headers.get("Content-Range"))
            if start != offset:
                if offset == 0:
                    raise ConnectionError(
                        f"download of {url}: the server sent partial content (from byte "
                        f"{start}) without being asked for it"
                    )
                logger.info("the server sent the wrong range: restarting from zero")
                response.close()
                part.unlink()
                return _fetch(url, part, dest, chunk_size, timeout, progress)
            total = _range_total(response.headers.get("Content-Range"))
            mode = "ab"
            logger.info("resuming %s at byte %d", url, offset)
        else:
            if offset:
                logger.info("the server ignored the range request: restarting from zero")
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        _stream(response, part, mode, offset, total, url, chunk_size, progress)

    size = part.stat().st_size
    if total is not None and size != total:
        raise ConnectionError(
            f"download of {url} is incomplete: {size:,} of {total:,} bytes arrived before the "
            f"connection closed{_kept(part)}"
        )
    os.replace(part, dest)
    logger.info("downloaded %s (%d bytes) to %s", url, size, dest)


def _stream(
    response: http.client.HTTPResponse,
    part: Path,
    mode: str,
    offset: int,
    total: int | None,
    url: str,
    chunk_size: int,
    progress: bool,
) -> None:
    received = 0
    with (
        open(part, mode) as handle,
        tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=CSV_NAME,
            disable=not progress,
        ) as bar,
    ):
        while True:
            try:
                block = response.read(chunk_size)
            except (OSError, http.client.HTTPException) as err:
                handle.flush()
                raise ConnectionError(
                    f"download of {url} interrupted after {offset + received:,} bytes: "
                    f"{err!r}{_kept(part)}"
                ) from err
            if not block:
                return
            handle.write(block)
            received += len(block)
            bar.update(len(block))


def _kept(part: Path) -> str:
    if part.is_file() and part.stat().st_size:
        return f"; the partial file {part} is kept: run the same command again to resume"
    return ""


def _range_start(header: str | None) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", header or "")
    return int(match[1]) if match else None


def _range_total(header: str | None) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*", header or "")
    return int(match[1]) if match else None


# --- conversion ----------------------------------------------------------------------


def _convert(csv_path: Path, folder: Path, url: str, expected_rows: int | None) -> Path:
    """Validate the CSV and write the arrays and ``meta.json`` into ``folder``."""
    try:
        features, segments = read_user_file(csv_path)
        if expected_rows is not None and features.shape[0] != expected_rows:
            raise ValueError(
                f"user file {csv_path}: expected {expected_rows:,} users but the file has "
                f"{features.shape[0]:,} rows (pass expected_rows=None to accept any count)"
            )
    except ValueError as err:
        corrupt = csv_path.with_name(CSV_NAME + ".corrupt")
        os.replace(csv_path, corrupt)
        raise ValueError(
            f"{err}. The download is not a valid user file: nothing was converted, and it was "
            f"moved to {corrupt} so that the next call downloads it again"
        ) from err

    if segments is None:
        logger.info("the user file has no segments: computing %d k-means segments", N_SEGMENTS)
        segments = kmeans_segments(features, N_SEGMENTS, cache_dir=folder.parent / "segments")
        segments_source = f"k-means, {N_SEGMENTS} clusters, seed 0"
        n_segments = N_SEGMENTS
    else:
        segments_source = "file"
        n_segments = int(segments.max()) + 1

    meta = {
        "rows": int(features.shape[0]),
        "columns": int(features.shape[1]),
        "source_url": url,
        "csv_sha256": _sha256(csv_path),
        "segments": segments_source,
        "n_segments": n_segments,
    }
    (folder / "meta.json").unlink(missing_ok=True)
    with atomic_write(folder / "features.npy") as handle:
        np.save(handle, features)
    with atomic_write(folder / "segments.npy") as handle:
        np.save(handle, segments)
    with atomic_write(folder / "meta.json", "w") as handle:
        json.dump(meta, handle, indent=2)
    logger.info("converted %d users into %s", meta["rows"], folder)
    return folder


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()
