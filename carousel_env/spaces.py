"""The slate action space and the checks every slate goes through."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = ["SlateSpace", "validate_slates"]


class SlateSpace(spaces.MultiDiscrete):
    """Slates of ``slate_size`` distinct items out of ``n_items``, for one user or a batch.

    A ``MultiDiscrete`` whose every entry is an item index in [0, n_items), with two
    differences: :meth:`sample` returns only valid slates (no item twice in a row) and
    :meth:`contains` rejects slates with a repeated item. Shape (slate_size,) for one user,
    (batch_size, slate_size) for a round of users.

    Args:
        n_items: number of items in the catalog (K).
        slate_size: number of slots (L), at most ``n_items``.
        batch_size: number of users per step, or None for a single user.
        seed: seed of the space's own generator (used by :meth:`sample`).
    """

    def __init__(
        self,
        n_items: int,
        slate_size: int,
        batch_size: int | None = None,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if slate_size > n_items:
            raise ValueError(
                f"`slate_size` ({slate_size}) must not exceed the number of items ({n_items})"
            )
        shape = (slate_size,) if batch_size is None else (batch_size, slate_size)
        super().__init__(np.full(shape, n_items, dtype=np.int64), dtype=np.int64, seed=seed)
        self.n_items = int(n_items)
        self.slate_size = int(slate_size)
        self.batch_size = batch_size

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        """A uniformly random valid slate (or batch of slates), int64.

        Masks and probabilities are not supported: a slate is not a product of
        independent slots.
        """
        if mask is not None or probability is not None:
            raise ValueError("SlateSpace.sample does not take `mask` or `probability`")
        rows = 1 if self.batch_size is None else self.batch_size
        slates = _random_slates(self.np_random, rows, self.n_items, self.slate_size)
        return slates[0] if self.batch_size is None else slates

    def contains(self, x: Any) -> bool:
        if not super().contains(x):
            return False
        rows = np.sort(np.asarray(x).reshape(-1, self.slate_size), axis=1)
        return not bool((rows[:, 1:] == rows[:, :-1]).any())

    def __repr__(self) -> str:
        batch = "" if self.batch_size is None else f", batch_size={self.batch_size}"
        return f"SlateSpace(n_items={self.n_items}, slate_size={self.slate_size}{batch})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, SlateSpace)
            and other.n_items == self.n_items
            and other.slate_size == self.slate_size
            and other.batch_size == self.batch_size
        )

    __hash__ = None  # type: ignore[assignment]


def _random_slates(
    rng: np.random.Generator, n_rows: int, n_items: int, slate_size: int
) -> np.ndarray:
    """Uniform random slates of distinct items, int64 array (n_rows, slate_size)."""
    if 2 * slate_size > n_items:
        # Dense case: rejection would redraw too often, so rank random keys instead.
        keys = rng.random((n_rows, n_items))
        return np.argsort(keys, axis=1)[:, :slate_size].astype(np.int64)
    # Sparse case: draw every slot, redraw whole rows that hold a repeat. Conditioned on
    # having no repeat, a row is uniform over ordered slates of distinct items.
    slates = rng.integers(0, n_items, size=(n_rows, slate_size), dtype=np.int64)
    redo = np.arange(n_rows)
    while redo.size:
        rows = np.sort(slates[redo], axis=1)
        redo = redo[(rows[:, 1:] == rows[:, :-1]).any(axis=1)]
        slates[redo] = rng.integers(0, n_items, size=(redo.size, slate_size), dtype=np.int64)
    return slates


def validate_slates(
    slates: Any, n_items: int, slate_size: int, batch_size: int | None = None
) -> np.ndarray:
    """Check slates and return them as an intp array, or raise ``ValueError``.

    Args:
        slates: one slate, shape (slate_size,), or a batch, shape (batch_size, slate_size).
        n_items: number of items; every entry must lie in [0, n_items).
        slate_size: number of slots.
        batch_size: expected number of rows, or None for a single slate.

    Raises:
        ValueError: wrong shape, a non-integer dtype, an item out of range or a repeated
            item; the message shows the offending slate.
    """
    array = slates if isinstance(slates, np.ndarray) else np.asarray(slates)
    expected = (slate_size,) if batch_size is None else (batch_size, slate_size)
    if array.shape != expected:
        raise ValueError(
            f"slate must have shape {expected} ({'one' if batch_size is None else 'a'} "
            f"slate of {slate_size} items{'' if batch_size is None else ' per user'}); "
            f"got shape {array.shape}"
        )
    if array.dtype.kind not in "iu":
        if array.dtype.kind == "f" and np.isfinite(array).all() and (array % 1 == 0).all():
            kind = "whole numbers stored as floats"
        else:
            kind = "not integers"
        raise ValueError(
            f"slate must hold integer item indices; got dtype {array.dtype} ({kind}): "
            f"{_show(array)}"
        )
    low, high = array.min(), array.max()
    if low < 0 or high >= n_items:
        bad = array[(array < 0) | (array >= n_items)]
        raise ValueError(
            f"slate items must lie in [0, {n_items}); got {bad[:5].tolist()} in {_show(array)}"
        )
    rows = array.reshape(-1, slate_size)
    ordered = np.sort(rows, axis=1)
    repeated = ordered[:, 1:] == ordered[:, :-1]
    if repeated.any():
        row, col = np.argwhere(repeated)[0]
        item = int(ordered[row, col])
        positions = np.flatnonzero(rows[row] == item).tolist()
        where = "" if batch_size is None else f"row {row} of the batch: "
        raise ValueError(
            f"{where}slate has duplicate items [{item}, {item}] at positions "
            f"{' and '.join(map(str, positions))}; a slate must hold {slate_size} distinct "
            f"items: {rows[row].tolist()}"
        )
    return array.astype(np.intp, copy=False)


def _show(array: np.ndarray) -> str:
    text = np.array2string(array.reshape(-1)[:24], separator=", ", threshold=24)
    return text if array.size <= 24 else text[:-1] + ", ...]"
