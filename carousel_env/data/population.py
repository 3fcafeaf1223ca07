"""The two data objects every environment is built from: a user population and a catalog.

Both are plain, immutable containers around NumPy arrays. They validate themselves on
construction, so an environment, an agent or a test can trust their shapes and dtypes.

Vocabulary: an *item* is a playlist (a card), a *user* has a taste vector whose last
coordinate is the constant bias 1.0, and a *segment* is the user's cluster index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Length of a user's taste vector and of an item's weight vector (96 + bias).
N_FEATURES = 97


def _describe(array: np.ndarray) -> str:
    return f"array of shape {array.shape} and dtype {array.dtype}"


@dataclass(frozen=True, eq=False)
class Catalog:
    """The items a slate is drawn from.

    Attributes:
        weights: float64 array, shape (n_items, n_features). Row i is theta_i; the last
            column multiplies the user's constant bias term.
        name: a short label shown by ``carousel-env info`` and in results files.
    """

    weights: np.ndarray
    name: str = "custom"

    def __post_init__(self) -> None:
        weights = np.asarray(self.weights)
        if weights.ndim != 2 or weights.shape[0] < 1 or weights.shape[1] < 2:
            raise ValueError(
                f"catalog `weights` must be a 2-D array (n_items, n_features) with at least "
                f"one item; got {_describe(weights)}"
            )
        if not np.issubdtype(weights.dtype, np.number) or np.issubdtype(
            weights.dtype, np.complexfloating
        ):
            raise TypeError(f"catalog `weights` must be real numbers; got {_describe(weights)}")
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        if not np.isfinite(weights).all():
            bad = np.argwhere(~np.isfinite(weights))[0]
            raise ValueError(
                f"catalog `weights` must be finite; item {bad[0]}, column {bad[1]} is "
                f"{weights[tuple(bad)]}"
            )
        weights.setflags(write=False)
        object.__setattr__(self, "weights", weights)

    @property
    def n_items(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[1])


@dataclass(frozen=True, eq=False)
class Population:
    """The users an environment samples from.

    Attributes:
        features: float32 array, shape (n_users, n_features). Each row is a user's taste
            vector; by convention the last column is the constant bias 1.0. The
            environment computes the ground truth from exactly these float32 values, so
            what an agent observes is what the simulator uses.
        segments: int64 array, shape (n_users,), values in [0, n_segments).
        n_segments: the number of segments (may exceed the largest segment seen).
        name: a short label shown by ``carousel-env info`` and in results files.
        meta: free-form provenance (generator parameters, source file, ...).
    """

    features: np.ndarray
    segments: np.ndarray
    n_segments: int
    name: str = "custom"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        features = self.features
        if not isinstance(features, np.ndarray):
            features = np.asarray(features)
        if features.ndim != 2 or features.shape[0] < 1:
            raise ValueError(
                f"population `features` must be a 2-D array (n_users, n_features) with at "
                f"least one user; got {_describe(features)}"
            )
        if not np.issubdtype(features.dtype, np.number) or np.issubdtype(
            features.dtype, np.complexfloating
        ):
            raise TypeError(
                f"population `features` must be real numbers; got {_describe(features)}"
            )
        if features.dtype != np.float32:
            features = features.astype(np.float32)
        # A memory-mapped file stays memory-mapped: only make an in-memory copy read-only.
        if isinstance(features, np.memmap):
            pass
        elif features.flags.writeable:
            features = features.view()
            features.setflags(write=False)

        segments = np.asarray(self.segments)
        if segments.shape != (features.shape[0],):
            raise ValueError(
                f"population `segments` must have shape ({features.shape[0]},), one per user; "
                f"got {_describe(segments)}"
            )
        if segments.size and not np.issubdtype(segments.dtype, np.integer):
            if not np.all(np.mod(segments, 1) == 0):
                raise TypeError(
                    f"population `segments` must be integers; got {_describe(segments)}"
                )
        segments = np.ascontiguousarray(segments, dtype=np.int64)
        if isinstance(self.n_segments, bool) or not isinstance(self.n_segments, int | np.integer):
            raise TypeError(f"`n_segments` must be an int; got {self.n_segments!r}")
        n_segments = int(self.n_segments)
        if n_segments < 1:
            raise ValueError(f"`n_segments` must be at least 1; got {n_segments}")
        if segments.min() < 0 or segments.max() >= n_segments:
            raise ValueError(
                f"population `segments` must lie in [0, {n_segments}); got values from "
                f"{segments.min()} to {segments.max()}"
            )
        segments.setflags(write=False)

        object.__setattr__(self, "features", features)
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "n_segments", n_segments)

    @property
    def n_users(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    def check_compatible(self, catalog: Catalog) -> None:
        """Raise ``ValueError`` unless users and items have the same vector length."""
        if self.n_features != catalog.n_features:
            raise ValueError(
                f"user/item dimension mismatch: population {self.name!r} has "
                f"{self.n_features} features per user but catalog {catalog.name!r} has "
                f"{catalog.n_features} per item"
            )
