"""Tests for carousel_env.data.download against a local HTTP server and file:// URLs.

The server (http.server on 127.0.0.1, a free port) serves a small user file in the
published format, answers ``Range: bytes=N-`` with 206 unless told to ignore it, and can
drop the connection half-way through one transfer. No test touches the network or the
real cache in the home folder.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carousel_env.data import download

N_USERS = 500


@dataclass
class _State:
    payload: bytes
    honour_range: bool = True
    drop_after: int | None = None  # bytes of the next response body sent before closing
    reset: bool = False  # close that connection with a TCP reset rather than normally
    wrong_range: bool = False  # answer a range request with 206 but from byte 0
    ranges: list = field(default_factory=list)  # the Range header of every request


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        state: _State = self.server.state
        if self.path != "/user_features.csv":
            self.send_error(404)
            return
        requested = self.headers.get("Range")
        state.ranges.append(requested)

        body, start = state.payload, 0
        if requested and state.honour_range:
            start = 0 if state.wrong_range else int(re.fullmatch(r"bytes=(\d+)-", requested)[1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()

        if state.drop_after is not None:
            # Send part of the body, then close the connection (HTTP/1.0: no keep-alive).
            cut, state.drop_after = state.drop_after, None
            self.wfile.write(body[start : start + cut])
            if state.reset:
                self.wfile.flush()
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            return
        self.wfile.write(body[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve():
    """Start a local server for a payload; returns (url, state)."""
    servers = []

    def start(payload: bytes, **options) -> tuple[str, _State]:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.state = _State(payload, **options)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/user_features.csv", server.state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _no_home_cache(tmp_path: Path, monkeypatch) -> None:
    """Point every default cache location into tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(download.CACHE_ENV_VAR, raising=False)


def _users(n_users: int = N_USERS) -> tuple[np.ndarray, np.ndarray]:
    """float32 embeddings, shape (n_users, 96), and segments, shape (n_users,)."""
    rng = np.random.default_rng(7)
    features = rng.normal(0.04, 1.31, (n_users, 96)).astype(np.float32)
    return features, rng.integers(0, 100, n_users)


def _payload(n_users: int = N_USERS, segments: bool = True) -> bytes:
    features, labels = _users(n_users)
    frame = pd.DataFrame(features.astype(np.float64), columns=[f"dim_{j}" for j in range(96)])
    if segments:
        frame.insert(0, "segment", labels)
    return frame.to_csv(index=False).encode()


PAYLOAD = _payload()


def _assert_converted(folder: Path, payload: bytes = PAYLOAD) -> None:
    features, segments = download.load_downloaded_users(folder.parent)
    assert isinstance(features, np.memmap) and isinstance(segments, np.memmap)
    assert features.dtype == np.float32 and segments.dtype == np.int64
    expected, labels = _users()
    np.testing.assert_array_equal(features[:, :96], expected)
    np.testing.assert_array_equal(features[:, 96], 1.0)
    np.testing.assert_array_equal(segments, labels)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["rows"] == N_USERS and meta["columns"] == 97
    assert meta["csv_sha256"] == hashlib.sha256(payload).hexdigest()


def _get(url: str, cache: Path, **kwargs) -> Path:
    return download.download_users(
        url,
        cache_dir=cache,
        expected_rows=kwargs.pop("expected_rows", N_USERS),
        progress=False,
        **kwargs,
    )


def test_full_download_conversion_and_memory_map(tmp_path: Path, serve) -> None:
    url, state = serve(PAYLOAD)
    folder = _get(url, tmp_path / "cache")

    assert folder == tmp_path / "cache" / "users"
    _assert_converted(folder)
    assert state.ranges == [None]
    assert (tmp_path / "cache" / "user_features.csv").read_bytes() == PAYLOAD
    assert not (tmp_path / "cache" / "user_features.csv.part").exists()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["source_url"] == url and meta["segments"] == "file"


def test_converted_copy_is_reused_unless_forced(tmp_path: Path, serve) -> None:
    url, state = serve(PAYLOAD)
    _get(url, tmp_path)
    assert _get(url, tmp_path) == tmp_path / "users"
    assert len(state.ranges) == 1
    _get(url, tmp_path, force=True)
    assert len(state.ranges) == 2
    _assert_converted(tmp_path / "users")


def test_interrupted_transfer_resumes_with_range(tmp_path: Path, serve) -> None:
    cut = len(PAYLOAD) // 2
    url, state = serve(PAYLOAD, drop_after=cut)
    part = tmp_path / "user_features.csv.part"
    message = (
        f"download of {url} is incomplete: {cut:,} of {len(PAYLOAD):,} bytes arrived before "
        f"the connection closed; the partial file {part} is kept: run the same command again "
        f"to resume"
    )
    with pytest.raises(ConnectionError, match=re.escape(message)):
        _get(url, tmp_path)
    assert part.read_bytes() == PAYLOAD[:cut]
    assert not (tmp_path / "users").exists()

    _get(url, tmp_path)
    assert state.ranges == [None, f"bytes={cut}-"]
    _assert_converted(tmp_path / "users")


def test_connection_reset_then_retry(tmp_path: Path, serve) -> None:
    url, _ = serve(PAYLOAD, drop_after=len(PAYLOAD) // 3, reset=True)
    # A reset may reach the client as an error on read or as an early end of data.
    with pytest.raises(
        ConnectionError, match=f"download of {re.escape(url)} (interrupted|is inc)"
    ):
        _get(url, tmp_path)
    assert not (tmp_path / "users").exists()
    _get(url, tmp_path)
    _assert_converted(tmp_path / "users")


def test_server_ignoring_range_restarts_from_zero(tmp_path: Path, serve) -> None:
    url, state = serve(PAYLOAD, honour_range=False)
    (tmp_path / "user_features.csv.part").write_bytes(b"stale bytes from another file")
    _get(url, tmp_path)
    assert state.ranges == ["bytes=29-"]
    _assert_converted(tmp_path / "users")


def test_server_sending_the_wrong_range_restarts_from_zero(tmp_path: Path, serve) -> None:
    url, state = serve(PAYLOAD, wrong_range=True)
    (tmp_path / "user_features.csv.part").write_bytes(PAYLOAD[:100])
    _get(url, tmp_path)
    assert state.ranges == ["bytes=100-", None]
    _assert_converted(tmp_path / "users")


@pytest.mark.parametrize(
    "part", [PAYLOAD, PAYLOAD + b"extra"], ids=["part-already-whole", "part-too-long"]
)
def test_range_not_satisfiable(tmp_path: Path, serve, part: bytes) -> None:
    url, state = serve(PAYLOAD)
    (tmp_path / "user_features.csv.part").write_bytes(part)
    _get(url, tmp_path)
    _assert_converted(tmp_path / "users")
    assert state.ranges[0] == f"bytes={len(part)}-"


def _corrupt_cell(payload: bytes) -> bytes:
    lines = payload.decode().split("\n")
    cells = lines[10].split(",")
    cells[5] = "oops"
    lines[10] = ",".join(cells)
    return "\n".join(lines).encode()


def _renamed_column(payload: bytes) -> bytes:
    return payload.replace(b"dim_42,", b"dim_x,", 1)


def _cut_mid_row(payload: bytes) -> bytes:
    last_line_start = payload.rstrip(b"\n").rfind(b"\n") + 1
    return payload[: last_line_start + 300]


CORRUPT = [
    ("non-numeric-cell", _corrupt_cell, "non-numeric value 'oops' in column dim_4 at line 11"),
    ("wrong-columns", _renamed_column, "missing column(s): dim_42; unexpected column(s): dim_x"),
    (
        "truncated-mid-row",
        _cut_mid_row,
        f"at line {N_USERS + 1} (the row ends after",
    ),
]


@pytest.mark.parametrize(
    ("spoil", "problem"), [case[1:] for case in CORRUPT], ids=[case[0] for case in CORRUPT]
)
def test_corrupt_file_is_rejected_and_not_converted(
    tmp_path: Path, serve, spoil, problem: str
) -> None:
    url, _ = serve(spoil(PAYLOAD))
    csv_path = tmp_path / "user_features.csv"
    with pytest.raises(ValueError) as caught:
        _get(url, tmp_path)

    message = str(caught.value)
    assert message.startswith(f"user file {csv_path}: ")
    assert problem in message
    assert message.endswith(
        f"The download is not a valid user file: nothing was converted, and it was moved to "
        f"{csv_path}.corrupt so that the next call downloads it again"
    )
    assert not csv_path.exists() and Path(f"{csv_path}.corrupt").exists()
    assert not (tmp_path / "users" / "meta.json").exists()
    assert not (tmp_path / "users" / "features.npy").exists()
    with pytest.raises(FileNotFoundError):
        download.load_downloaded_users(tmp_path)


def test_expected_rows_mismatch(tmp_path: Path, serve) -> None:
    url, _ = serve(PAYLOAD)
    message = (
        f"user file {tmp_path / 'user_features.csv'}: expected 974,960 users but the file has "
        f"500 rows (pass expected_rows=None to accept any count)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        _get(url, tmp_path, expected_rows=download.FULL_N_USERS)
    assert not (tmp_path / "users").exists()


def test_expected_rows_none_accepts_any_count(tmp_path: Path, serve) -> None:
    url, _ = serve(PAYLOAD)
    _get(url, tmp_path, expected_rows=None)
    _assert_converted(tmp_path / "users")


def test_file_url(tmp_path: Path) -> None:
    source = tmp_path / "source" / "user_features.csv"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    cache = tmp_path / "cache"
    cache.mkdir()
    # file:// has no ranges: a leftover partial file is overwritten.
    (cache / "user_features.csv.part").write_bytes(PAYLOAD[:100])
    _get(source.as_uri(), cache)
    _assert_converted(cache / "users")


def test_missing_file_url(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.csv"
    with pytest.raises(FileNotFoundError, match=re.escape(f"user file not found: {missing}")):
        _get(missing.as_uri(), tmp_path / "cache")


def test_env_var_chooses_the_cache(tmp_path: Path, serve, monkeypatch) -> None:
    monkeypatch.setenv(download.CACHE_ENV_VAR, str(tmp_path / "from-env"))
    url, _ = serve(PAYLOAD)
    folder = download.download_users(url, expected_rows=N_USERS, progress=False)
    assert folder == tmp_path / "from-env" / "users"
    features, _ = download.load_downloaded_users()
    assert features.shape == (N_USERS, 97)
    assert not (tmp_path / "home").exists() and not (tmp_path / "xdg").exists()


def test_missing_segments_are_computed(tmp_path: Path, serve) -> None:
    payload = _payload(segments=False)
    url, _ = serve(payload)
    folder = _get(url, tmp_path)
    features, segments = download.load_downloaded_users(tmp_path)
    assert segments.shape == (N_USERS,) and 0 <= segments.min() and segments.max() < 100
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["segments"] == "k-means, 100 clusters, seed 0" and meta["n_segments"] == 100
    assert len(list((tmp_path / "segments").glob("kmeans-k100-seed0-*.npy"))) == 1


def test_progress_bar(tmp_path: Path, serve, capsys) -> None:
    url, _ = serve(PAYLOAD)
    download.download_users(url, cache_dir=tmp_path, expected_rows=N_USERS, progress=True)
    assert "user_features.csv" in capsys.readouterr().err


def test_http_error(tmp_path: Path, serve) -> None:
    url, _ = serve(PAYLOAD)
    wrong = url.replace("user_features.csv", "nothing.csv")
    with pytest.raises(ConnectionError, match=re.escape(f"download of {wrong} failed: HTTP 404")):
        _get(wrong, tmp_path)


def test_unreachable_server(tmp_path: Path) -> None:
    # A port that was free a moment ago: nothing listens there now.
    probe = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    port = probe.server_port
    probe.server_close()
    with pytest.raises(ConnectionError, match=re.escape("cannot download http://127.0.0.1")):
        _get(f"http://127.0.0.1:{port}/user_features.csv", tmp_path, timeout=5.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"url": "ftp://host/x.csv"}, ValueError, "`url` must be an http://, https:// or file://"),
        ({"expected_rows": 0}, ValueError, "`expected_rows` must be at least 1; got 0"),
        ({"chunk_size": 0}, ValueError, "`chunk_size` must be at least 1; got 0"),
        ({"timeout": -1}, ValueError, "`timeout` must be a positive number of seconds; got -1"),
    ],
    ids=["url-scheme", "expected-rows", "chunk-size", "timeout"],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict, error: type, message: str) -> None:
    arguments = {"url": "http://127.0.0.1:9/user_features.csv", **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        download.download_users(cache_dir=tmp_path, progress=False, **arguments)


def test_load_without_download_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        download.load_downloaded_users(tmp_path)
    message = str(caught.value)
    assert f"cache folder {tmp_path}" in message
    assert "run `carousel-env download`" in message
    assert download.CACHE_ENV_VAR in message


@pytest.mark.parametrize(
    ("argument", "env", "xdg", "expected"),
    [
        ("arg", "env", "/xdg", "arg"),
        (None, "env", "/xdg", "env"),
        (None, "", "/xdg", "/xdg/carousel-env"),
        (None, "", "relative", "home/.cache/carousel-env"),
        (None, "", "", "home/.cache/carousel-env"),
    ],
    ids=["argument-wins", "env-var", "xdg", "xdg-relative-ignored", "home"],
)
def test_cache_dir_precedence(tmp_path: Path, monkeypatch, argument, env, xdg, expected) -> None:
    monkeypatch.setenv(download.CACHE_ENV_VAR, env and str(tmp_path / env))
    monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    found = download.cache_dir(argument and tmp_path / argument)
    assert found == (Path(expected) if expected.startswith("/") else tmp_path / expected)
