"""Turning scores into slates fast: random slates, per-segment rankings, top-L of a matrix.

A full ``np.argpartition`` of a 20,000 x 862 score matrix takes about 0.25 s, more than
the time budget of a whole segment agent's round. The segment agents rank items per
segment, so their slates are built from each segment's ranking: only ties need per-user
randomness, and that costs O(n_users * slate_size), not O(n_users * n_items).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Tie groups up to this size are ordered by argsort of random keys; larger groups by
#: drawing with rejection of repeats (cheap when the group is much larger than the slate).
_SMALL_GROUP = 64


def sample_distinct(
    rng: np.random.Generator, sizes: np.ndarray, counts: np.ndarray, width: int
) -> np.ndarray:
    """Per row, ``counts[u]`` distinct offsets drawn uniformly from ``range(sizes[u])``.

    Every ordered tuple of distinct offsets is equally likely (the draws are symmetric
    in the offsets, so any rejection scheme that redraws repeats keeps that law).

    Args:
        rng: the caller's generator.
        sizes: int array, shape (n,), each at least ``counts[u]``.
        counts: int array, shape (n,), each at most ``width``.
        width: number of columns of the result.

    Returns:
        int64 array, shape (n, width); columns ``>= counts[u]`` of row u are unspecified.
    """
    n = sizes.shape[0]
    out = np.zeros((n, width), dtype=np.int64)
    if n == 0 or width == 0:
        return out
    small = sizes <= _SMALL_GROUP

    rows = np.flatnonzero(small)
    if rows.size:
        span = int(sizes[rows].max())
        keys = rng.random((rows.size, span))
        keys[np.arange(span)[None, :] >= sizes[rows][:, None]] = 2.0
        order = np.argsort(keys, axis=1)[:, :width]
        out[rows, : order.shape[1]] = order

    rows = np.flatnonzero(~small)
    if rows.size:
        high = sizes[rows][:, None]
        draws = rng.integers(0, high, size=(rows.size, width))
        active = np.arange(width)[None, :] < counts[rows][:, None]
        earlier = np.tri(width, k=-1, dtype=bool).T  # earlier[i, j]: column i precedes j
        while True:
            same = (draws[:, :, None] == draws[:, None, :]) & earlier
            repeat = same.any(axis=1) & active
            if not repeat.any():
                break
            bad_rows, bad_cols = np.nonzero(repeat)
            draws[bad_rows, bad_cols] = rng.integers(0, high[bad_rows, 0])
        out[rows] = np.where(active, draws, 0)
    return out


def random_slates(rng: np.random.Generator, n_users: int, n_items: int, slate_size: int):
    """Uniformly random slates: ``slate_size`` distinct items per row, in random order.

    Returns:
        int64 array, shape (n_users, slate_size).
    """
    sizes = np.full(n_users, n_items, dtype=np.int64)
    counts = np.full(n_users, slate_size, dtype=np.int64)
    return sample_distinct(rng, sizes, counts, slate_size)


def ranked_slates(
    rng: np.random.Generator,
    keys: Sequence[np.ndarray],
    segments: np.ndarray,
    slate_size: int,
) -> np.ndarray:
    """Each user's slate: the best ``slate_size`` items of the user's segment, ties at random.

    Items are ranked by ``keys[0]`` (higher first), then ``keys[1]``, and so on; items
    equal on every key are tied, and each user gets an independent uniformly random order
    of every tie group (and a uniform random subset of the group that straddles the last
    slot), exactly as sorting with a random last key per (user, item) would.

    Args:
        rng: the caller's generator.
        keys: arrays of shape (n_segments, n_items), most important first.
        segments: int array, shape (n_users,).
        slate_size: number of slots L.

    Returns:
        int64 array, shape (n_users, slate_size), best first.
    """
    n_users = segments.shape[0]
    if n_users == 0:
        return np.zeros((0, slate_size), dtype=np.int64)
    present, inverse = np.unique(segments, return_inverse=True)
    seg_keys = [np.asarray(key)[present] for key in keys]
    n_items = seg_keys[0].shape[1]

    # One ranking per segment present; tie groups are runs equal on every key.
    order = np.lexsort(tuple(-key for key in reversed(seg_keys)), axis=-1)
    new_group = np.zeros(order.shape, dtype=bool)
    new_group[:, 0] = True
    for key in seg_keys:
        ranked = np.take_along_axis(key, order, axis=1)
        new_group[:, 1:] |= ranked[:, 1:] != ranked[:, :-1]
    group = np.cumsum(new_group, axis=1) - 1
    in_last = group == group[:, slate_size - 1 : slate_size]
    start = in_last.argmax(axis=1)
    stop = n_items - in_last[:, ::-1].argmax(axis=1)

    # Slots before the straddling group: whole groups, shuffled inside each group.
    head = start[inverse]
    slot = np.arange(slate_size)[None, :]
    head_key = group[inverse, :slate_size] + rng.random((n_users, slate_size))
    head_pos = np.argsort(np.where(slot < head[:, None], head_key, np.inf), axis=1)

    # Remaining slots: a random ordered subset of the straddling group.
    picks = sample_distinct(rng, (stop - start)[inverse], slate_size - head, slate_size)
    shifted = np.take_along_axis(picks, np.clip(slot - head[:, None], 0, None), axis=1)
    position = np.where(slot < head[:, None], head_pos, head[:, None] + shifted)
    return order[inverse[:, None], position]


def top_l(scores: np.ndarray, slate_size: int) -> np.ndarray:
    """Indices of the ``slate_size`` largest scores of each row, largest first.

    Args:
        scores: array of floats or integers, shape (n_users, n_items).

    Returns:
        int64 array, shape (n_users, slate_size). Exact ties go to the smaller index
        among those chosen (which tied items are chosen is up to ``np.argpartition``).
    """
    n_items = scores.shape[1]
    if slate_size < n_items:
        chosen = np.argpartition(scores, n_items - slate_size, axis=1)[:, n_items - slate_size :]
    else:
        chosen = np.broadcast_to(np.arange(n_items), scores.shape).copy()
    picked = np.take_along_axis(scores, chosen, axis=1)
    order = np.lexsort((chosen, -picked), axis=1)
    return np.take_along_axis(chosen, order, axis=1).astype(np.int64, copy=False)


def tie_keys(rng: np.random.Generator, scores: np.ndarray) -> np.ndarray:
    """Distinct int64 keys ordered like ``scores``, exact ties ordered at random.

    The float32 score's bits, made sortable as an integer, are followed by the item's rank
    in a random permutation drawn once per call (shared by the rows): every tied item is
    equally likely to come first for each user, and no two keys are equal.
    """
    bits = np.ascontiguousarray(scores, dtype=np.float32).view(np.int32)
    sortable = (bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))).astype(np.int64)
    n_items = scores.shape[1]
    shift = max(1, int(n_items - 1).bit_length())
    return (sortable << shift) | rng.permutation(n_items).astype(np.int64)[None, :]


def top_l_random_ties(rng: np.random.Generator, scores: np.ndarray, slate_size: int) -> np.ndarray:
    """Like :func:`top_l`, with exact ties resolved at random (see :func:`tie_keys`)."""
    return top_l(tie_keys(rng, scores), slate_size)
