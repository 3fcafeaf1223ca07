"""Tests for carousel_env.data.segments: k-means user segments and their cache."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from carousel_env.data import segments


def _blobs(
    n_clusters: int = 6, per_cluster: int = 150, n_dims: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian clusters: float32 points and their true cluster.

    Centres are drawn with standard deviation 50 per coordinate and points scatter with
    standard deviation 1, so the closest two centres are hundreds of noise widths apart.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 50.0, (n_clusters, n_dims))
    truth = np.repeat(np.arange(n_clusters), per_cluster)
    points = centres[truth] + rng.normal(0.0, 1.0, (truth.size, n_dims))
    order = rng.permutation(truth.size)
    return points[order].astype(np.float32), truth[order]


def _forbid_compute(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("k-means was recomputed although the labels are cached")

    monkeypatch.setattr(segments, "_kmeans", fail)


def test_labels_are_int64_in_range(tmp_path: Path) -> None:
    points, _ = _blobs()
    labels = segments.kmeans_segments(points, 6, cache_dir=tmp_path)
    assert labels.dtype == np.int64 and labels.shape == (points.shape[0],)
    assert labels.min() >= 0 and labels.max() < 6


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    points = np.random.default_rng(5).normal(size=(2_000, 8)).astype(np.float32)
    first = segments.kmeans_segments(points, 20, seed=3, cache_dir=tmp_path / "a")
    second = segments.kmeans_segments(points, 20, seed=3, cache_dir=tmp_path / "b")
    np.testing.assert_array_equal(first, second)


def test_recovers_well_separated_clusters(tmp_path: Path) -> None:
    points, truth = _blobs()
    labels = segments.kmeans_segments(points, 6, seed=0, cache_dir=tmp_path)

    # Each true cluster carries a single label, and different clusters different labels.
    label_of = {int(c): np.unique(labels[truth == c]) for c in range(6)}
    assert all(found.size == 1 for found in label_of.values()), label_of
    assert len({int(found[0]) for found in label_of.values()}) == 6


def test_bias_column_does_not_change_segments(tmp_path: Path) -> None:
    points, _ = _blobs()
    with_bias = np.hstack([points, np.ones((points.shape[0], 1), np.float32)])
    np.testing.assert_array_equal(
        segments.kmeans_segments(points, 6, cache_dir=tmp_path),
        segments.kmeans_segments(with_bias, 6, cache_dir=tmp_path),
    )


def test_second_call_loads_the_cache(tmp_path: Path, monkeypatch) -> None:
    points, _ = _blobs()
    first = segments.kmeans_segments(points, 6, seed=1, cache_dir=tmp_path)
    cached = list(tmp_path.glob("kmeans-k6-seed1-*.npy"))
    assert len(cached) == 1

    _forbid_compute(monkeypatch)
    second = segments.kmeans_segments(points, 6, seed=1, cache_dir=tmp_path)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize(
    "change",
    ["n_clusters", "seed", "max_iter", "one-value", "dtype"],
    ids=str,
)
def test_cache_key_covers(tmp_path: Path, monkeypatch, change: str) -> None:
    points, _ = _blobs()
    segments.kmeans_segments(points, 6, cache_dir=tmp_path)
    kwargs = {"n_clusters": 6, "seed": 0, "max_iter": 50}
    if change == "one-value":
        points = points.copy()
        points[0, 0] += 1.0
    elif change == "dtype":
        points = points.astype(np.float64)
    else:
        kwargs[change] += 1

    _forbid_compute(monkeypatch)
    with pytest.raises(AssertionError, match="recomputed"):
        segments.kmeans_segments(points, cache_dir=tmp_path, **kwargs)


def test_default_cache_folder_is_under_the_data_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CAROUSEL_ENV_DATA_DIR", str(tmp_path))
    points, _ = _blobs()
    segments.kmeans_segments(points, 6)
    assert len(list((tmp_path / "segments").glob("kmeans-k6-seed0-*.npy"))) == 1


def test_corrupt_cache_is_recomputed(tmp_path: Path, monkeypatch) -> None:
    points, _ = _blobs()
    first = segments.kmeans_segments(points, 6, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*.npy")
    cached.write_bytes(b"not an npy file")

    calls = []
    compute = segments._kmeans
    monkeypatch.setattr(segments, "_kmeans", lambda *a: calls.append(1) or compute(*a))
    np.testing.assert_array_equal(segments.kmeans_segments(points, 6, cache_dir=tmp_path), first)
    assert calls == [1]
    np.testing.assert_array_equal(np.load(cached), first)


def test_unwritable_cache_only_warns(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    points, _ = _blobs()
    with pytest.warns(UserWarning, match="computed but not cached: cannot write"):
        labels = segments.kmeans_segments(points, 6, cache_dir=blocker / "segments")
    assert labels.shape == (points.shape[0],)


def test_read_only_memory_map_input(tmp_path: Path) -> None:
    points, _ = _blobs()
    np.save(tmp_path / "points.npy", points)
    mapped = np.load(tmp_path / "points.npy", mmap_mode="r")
    np.testing.assert_array_equal(
        segments.kmeans_segments(mapped, 6, cache_dir=tmp_path / "a"),
        segments.kmeans_segments(points, 6, cache_dir=tmp_path / "b"),
    )


def test_fewer_distinct_users_than_clusters(tmp_path: Path) -> None:
    points = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 12 users, 3 distinct
    labels = segments.kmeans_segments(points, 5, cache_dir=tmp_path)
    assert labels.min() >= 0 and labels.max() < 5
    # Identical users share a label.
    assert all(np.unique(labels[k * 4 : k * 4 + 4]).size == 1 for k in range(3))


def test_empty_cluster_restarts_at_the_farthest_user() -> None:
    points = np.array([[0.0], [1.0], [10.0]], dtype=np.float32)
    sums = np.array([[1.0], [0.0]])
    counts = np.array([3, 0])
    sq_dist = np.array([1.0, 0.0, 81.0])
    centres = segments._update_centres(points, sums, counts, sq_dist, np.zeros((2, 1)))
    np.testing.assert_array_equal(centres, [[1.0 / 3.0], [10.0]])


def test_too_few_users(tmp_path: Path) -> None:
    points = np.zeros((50, 4), np.float32)
    message = (
        "k-means needs at least as many users as clusters: `features` has 50 users but "
        "`n_clusters` is 100"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        segments.kmeans_segments(points, 100, cache_dir=tmp_path)


_nan = np.ones((5, 3), np.float32)
_nan[2, 1] = np.nan

INVALID = [
    ("n_clusters-zero", {"n_clusters": 0}, ValueError, "`n_clusters` must be at least 1; got 0"),
    ("n_clusters-float", {"n_clusters": 2.5}, TypeError, "`n_clusters` must be an int; got 2.5"),
    ("n_clusters-bool", {"n_clusters": True}, TypeError, "`n_clusters` must be an int; got True"),
    ("seed-negative", {"seed": -1}, ValueError, "`seed` must be at least 0; got -1"),
    ("max_iter-zero", {"max_iter": 0}, ValueError, "`max_iter` must be at least 1; got 0"),
    (
        "features-1d",
        {"features": np.ones(5)},
        ValueError,
        "`features` must be a 2-D array (n_users, n_features); got shape (5,)",
    ),
    (
        "features-bool",
        {"features": np.ones((5, 3), bool)},
        TypeError,
        "`features` must hold real numbers; got dtype bool",
    ),
    (
        "features-nan",
        {"features": _nan},
        ValueError,
        "`features` must be finite; user 2, column 1 is nan",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict, error: type, message: str) -> None:
    arguments = {"features": np.ones((5, 3), np.float32), "n_clusters": 2, **kwargs}
    features = arguments.pop("features")
    with pytest.raises(error, match=re.escape(message)):
        segments.kmeans_segments(features, cache_dir=tmp_path, **arguments)
