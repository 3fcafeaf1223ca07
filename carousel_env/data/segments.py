"""User segments: k-means clusters of taste vectors, computed once and cached.

Bendada, Salha and Bontempelli ("Carousel Personalization in Music Streaming Apps with
Contextual Bandits", RecSys 2020, arXiv:2009.06546) split their users into 100 segments by
k-means on the embeddings; the semi-personalised agents learn one model per segment. The
published user file carries those segments. This module recomputes segments for users
that come without them (a file without the ``segment`` column, a synthetic population).

The algorithm is Lloyd's k-means with k-means++ seeding (Arthur and Vassilvitskii, "k-means++:
the advantages of careful seeding", SODA 2007). Distances are computed block by block as
``|x|^2 - 2 x.c + |c|^2`` with one float32 matrix product per block of users; cluster sums
come from one sparse one-hot product. Labels are cached on disk, keyed by a hash of the
features.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np
from scipy import sparse

from carousel_env.data.io import atomic_write

logger = logging.getLogger(__name__)

# Bump when the algorithm changes, so that old cached labels are not reused.
_ALGORITHM_VERSION = 1
# Users per block in the assignment step: the (block, n_clusters) float32 distance matrix
# stays near 32 MB whatever n_clusters is.
_BLOCK_ELEMENTS = 1 << 23


def kmeans_segments(
    features: np.ndarray,
    n_clusters: int = 100,
    *,
    seed: int = 0,
    cache_dir: Path | None = None,
    max_iter: int = 50,
) -> np.ndarray:
    """Cluster users into segments with k-means, reusing cached labels when possible.

    Lloyd's iterations stop when no label changes or after ``max_iter`` assignment
    steps, whichever comes first; the labels returned are the last assignment (each user
    in the segment of the nearest centre of that step). A segment left empty during the
    iterations is re-seeded at the user farthest from its centre, so every label in
    ``[0, n_clusters)`` is normally used. Same features, ``n_clusters``, ``seed`` and
    ``max_iter``: same labels, bit for bit on a given machine (the float32 matrix
    products may round differently on other BLAS builds).

    Every column takes part in the distances; a constant column such as the bias adds
    nothing to them, so features with or without the bias give the same segments.

    Args:
        features: real array, shape (n_users, n_features), finite. Float32 input (also
            a read-only memory map) is used without a copy.
        n_clusters: number of segments k, at most ``n_users``.
        seed: seeds the k-means++ draws (the only randomness).
        cache_dir: folder of the label cache. Default: ``segments/`` under the data
            cache folder (see ``carousel_env.data.download.cache_dir``). The cache key is
            the SHA-256 of the feature bytes (with dtype and shape), ``n_clusters``,
            ``seed`` and ``max_iter``. A cache that cannot be written only warns.
        max_iter: maximum number of Lloyd iterations. On the 974,960 Deezer users one
            iteration costs about a second on two cores.

    Returns:
        int64 array, shape (n_users,), values in [0, n_clusters).

    Raises:
        ValueError: bad arguments, non-finite features, or fewer users than clusters.
    """
    data = _check_features(features)
    n_clusters = _check_int("n_clusters", n_clusters, minimum=1)
    seed = _check_int("seed", seed, minimum=0)
    max_iter = _check_int("max_iter", max_iter, minimum=1)
    n_users = data.shape[0]
    if n_users < n_clusters:
        raise ValueError(
            f"k-means needs at least as many users as clusters: `features` has {n_users} "
            f"users but `n_clusters` is {n_clusters}"
        )

    path = _cache_path(data, n_clusters, seed, max_iter, cache_dir)
    labels = _load_cached(path, n_users, n_clusters)
    if labels is not None:
        logger.info("k-means segments loaded from %s", path)
        return labels

    labels = _kmeans(data, n_clusters, np.random.default_rng(seed), max_iter)
    try:
        with atomic_write(path) as handle:
            np.save(handle, labels)
    except OSError as err:
        warnings.warn(
            f"k-means segments computed but not cached: cannot write {path}: {err}",
            stacklevel=2,
        )
    return labels


# --- validation and cache ------------------------------------------------------------


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int; got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}; got {value}")
    return int(value)


def _check_features(features: np.ndarray) -> np.ndarray:
    data = features if isinstance(features, np.ndarray) else np.asarray(features)
    if data.ndim != 2 or data.shape[0] < 1 or data.shape[1] < 1:
        raise ValueError(
            f"`features` must be a 2-D array (n_users, n_features); got shape {data.shape}"
        )
    if data.dtype.kind not in "fiu":
        raise TypeError(f"`features` must hold real numbers; got dtype {data.dtype}")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        row, col = np.argwhere(~np.isfinite(data))[0]
        raise ValueError(
            f"`features` must be finite; user {row}, column {col} is {data[row, col]}"
        )
    return data


def _cache_path(
    data: np.ndarray, n_clusters: int, seed: int, max_iter: int, cache_dir: Path | None
) -> Path:
    if cache_dir is None:
        # Imported here: the download module imports this one.
        from carousel_env.data.download import cache_dir as data_cache_dir

        folder = data_cache_dir() / "segments"
    else:
        folder = Path(os.fspath(cache_dir)).expanduser()

    digest = hashlib.sha256()
    header = f"kmeans v{_ALGORITHM_VERSION} {data.dtype.str} {data.shape} {max_iter}"
    digest.update(header.encode())
    digest.update(memoryview(np.ascontiguousarray(data)).cast("B"))
    return folder / f"kmeans-k{n_clusters}-seed{seed}-{digest.hexdigest()[:24]}.npy"


def _load_cached(path: Path, n_users: int, n_clusters: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        labels = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        logger.warning("ignoring unreadable k-means cache %s: %s", path, err)
        return None
    valid = (
        isinstance(labels, np.ndarray)
        and labels.shape == (n_users,)
        and labels.dtype == np.int64
        and (labels.size == 0 or (labels.min() >= 0 and labels.max() < n_clusters))
    )
    if not valid:
        logger.warning("ignoring k-means cache %s: it does not fit these features", path)
        return None
    return labels


# --- the algorithm -------------------------------------------------------------------


def _kmeans(
    data: np.ndarray, n_clusters: int, rng: np.random.Generator, max_iter: int
) -> np.ndarray:
    """Lloyd's k-means from a k-means++ start; returns int64 labels, shape (n_users,)."""
    points = np.ascontiguousarray(data, dtype=np.float32)
    sq_norms = _row_sq_norms(points)
    centres = _kmeans_plus_plus(points, sq_norms, n_clusters, rng)

    labels = np.full(points.shape[0], -1, dtype=np.int64)
    for iteration in range(1, max_iter + 1):
        new_labels, sq_dist, sums, counts = _assign(points, sq_norms, centres)
        n_changed = int(np.count_nonzero(new_labels != labels))
        labels = new_labels
        logger.debug(
            "k-means iteration %d: %d labels changed, inertia %.6g",
            iteration,
            n_changed,
            sq_dist.sum(),
        )
        if n_changed == 0:
            break
        centres = _update_centres(points, sums, counts, sq_dist, centres)

    logger.info(
        "k-means: %d users, %d clusters, %d iterations, %d labels changed in the last one",
        points.shape[0],
        n_clusters,
        iteration,
        n_changed,
    )
    return labels


def _row_sq_norms(points: np.ndarray) -> np.ndarray:
    """Squared Euclidean norm of each row, float64, shape (n_users,)."""
    out = np.empty(points.shape[0], dtype=np.float64)
    step = max(1, _BLOCK_ELEMENTS // points.shape[1])
    for start in range(0, points.shape[0], step):
        block = points[start : start + step].astype(np.float64)
        out[start : start + step] = np.einsum("ij,ij->i", block, block)
    return out


def _kmeans_plus_plus(
    points: np.ndarray, sq_norms: np.ndarray, n_clusters: int, rng: np.random.Generator
) -> np.ndarray:
    """k-means++ seeding: float64 centres, shape (n_clusters, n_features).

    Each new centre is a user drawn with probability proportional to the squared distance
    to the nearest centre chosen so far.
    """
    n_users = points.shape[0]
    centres = np.empty((n_clusters, points.shape[1]), dtype=np.float64)
    first = int(rng.integers(n_users))
    centres[0] = points[first]
    nearest = _sq_dist_to(points, sq_norms, points[first])

    # One pass over the users per centre: each draw depends on all the previous centres.
    for j in range(1, n_clusters):
        cumulative = np.cumsum(nearest)
        if cumulative[-1] > 0:
            pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], "right"))
            pick = min(pick, n_users - 1)
        else:
            # Every user coincides with a centre: fewer distinct users than clusters.
            pick = int(rng.integers(n_users))
        centres[j] = points[pick]
        np.minimum(nearest, _sq_dist_to(points, sq_norms, points[pick]), out=nearest)
    return centres


def _sq_dist_to(points: np.ndarray, sq_norms: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Squared distances of all users to one centre, float64, shape (n_users,)."""
    centre = centre.astype(np.float32)
    dist = sq_norms - 2.0 * (points @ centre) + float(centre.astype(np.float64) @ centre)
    return np.maximum(dist, 0.0, out=dist)


def _assign(
    points: np.ndarray, sq_norms: np.ndarray, centres: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nearest centre of every user, block by block.

    Returns:
        labels: int64, shape (n_users,); sq_dist: float64, shape (n_users,), squared
        distance to that centre; sums: float64, shape (n_clusters, n_features), sum of the
        users of each cluster; counts: int64, shape (n_clusters,).
    """
    n_users = points.shape[0]
    n_clusters = centres.shape[0]
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; the |x|^2 term does not change the nearest centre.
    minus_two_centres = np.ascontiguousarray((-2.0 * centres).astype(np.float32).T)
    centre_sq = np.einsum("ij,ij->i", centres, centres).astype(np.float32)

    labels = np.empty(n_users, dtype=np.int64)
    partial_min = np.empty(n_users, dtype=np.float32)
    step = max(1, _BLOCK_ELEMENTS // n_clusters)
    for start in range(0, n_users, step):
        partial = points[start : start + step] @ minus_two_centres
        partial += centre_sq
        nearest = partial.argmin(axis=1)
        labels[start : start + step] = nearest
        partial_min[start : start + step] = np.take_along_axis(partial, nearest[:, None], 1)[:, 0]
    sq_dist = np.maximum(partial_min + sq_norms, 0.0)

    # Cluster sums as one sparse one-hot (n_clusters, n_users) product. It accumulates in
    # float32, the precision the assignment step works in; the error is negligible there.
    one_hot = sparse.csc_matrix(
        (np.ones(n_users, dtype=np.float32), labels, np.arange(n_users + 1)),
        shape=(n_clusters, n_users),
    )
    sums = np.asarray(one_hot @ points, dtype=np.float64)
    counts = np.bincount(labels, minlength=n_clusters)
    return labels, sq_dist, sums, counts


def _update_centres(
    points: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    sq_dist: np.ndarray,
    centres: np.ndarray,
) -> np.ndarray:
    """Means of the clusters; an empty cluster restarts at a user far from its centre."""
    centres = centres.copy()
    filled = counts > 0
    centres[filled] = sums[filled] / counts[filled, None]

    empty = np.flatnonzero(~filled)
    if empty.size:
        # The users worst served by the current centres, farthest first.
        far = np.argpartition(sq_dist, -empty.size)[-empty.size :]
        far = far[np.argsort(-sq_dist[far], kind="stable")]
        centres[empty] = points[far]
        logger.debug("k-means: re-seeded %d empty clusters", empty.size)
    return centres
