"""The ground truth the agents never see: stream probabilities, user optima, segment optima.

Everything is computed with array operations over chunks of users, never with a Python
loop over users, and cached per (population, catalog) pair so that every environment built
on the same objects shares one computation.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.special import expit

from carousel_env.data.population import Catalog, Population

__all__ = ["GroundTruth", "ground_truth", "stream_probabilities"]

logger = logging.getLogger(__name__)

#: Users per chunk: a (chunk, 862) float32 block is about 100 MB at this size.
CHUNK_USERS = 32_768


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """The logistic function, numerically stable (SciPy's ufunc), in the input's dtype."""
    return expit(logits)


def stream_probabilities(
    features: np.ndarray, weights: np.ndarray, slates: np.ndarray, chunk: int = 64
) -> np.ndarray:
    """p(u, slate_j) = sigmoid(x_u . theta_{slate_j}) in float64, exactly.

    Args:
        features: float array, shape (n_users, n_features).
        weights: float64 array, shape (n_items, n_features).
        slates: int array, shape (n_users, slate_size).
        chunk: users per block: 64 users gather about 600 kB of item vectors, which stay
            in the L2 cache (measured about 1.5 times faster than 1,024-user blocks).

    Returns:
        float64 array, shape (n_users, slate_size).
    """
    n_users, slate_size = slates.shape
    logits = np.empty((n_users, slate_size))
    for start in range(0, n_users, chunk):  # a loop over blocks of users, not over users
        stop = start + chunk
        x = np.asarray(features[start:stop], dtype=np.float64)
        logits[start:stop] = np.matmul(weights[slates[start:stop]], x[:, :, None])[..., 0]
    return _sigmoid(logits)


class GroundTruth:
    """Lazily computed optima of one population against one catalog.

    Attributes:
        population: the users.
        catalog: the items.
    """

    def __init__(self, population: Population, catalog: Catalog) -> None:
        population.check_compatible(catalog)
        self.population = population
        self.catalog = catalog
        self._top: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._segment_means: np.ndarray | None = None

    def top_items(self, slate_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Each user's ``slate_size`` most likely items, most likely first.

        Returns:
            ``(items, probs)``: int16/int32 array and float64 array, both shape
            (n_users, slate_size). ``probs`` are recomputed in float64 from the chosen
            items, so they are exact even though the search runs in float32.
        """
        if slate_size > self.catalog.n_items:
            raise ValueError(
                f"`slate_size` ({slate_size}) exceeds the number of items ({self.catalog.n_items})"
            )
        if slate_size not in self._top:
            self._top[slate_size] = self._compute_top(slate_size)
        return self._top[slate_size]

    def _compute_top(self, slate_size: int) -> tuple[np.ndarray, np.ndarray]:
        features = self.population.features
        n_users = features.shape[0]
        n_items = self.catalog.n_items
        weights32 = self.catalog.weights.T.astype(np.float32)
        index_dtype = np.int16 if n_items < 2**15 else np.int32
        items = np.empty((n_users, slate_size), dtype=index_dtype)
        logger.info("computing the best %d items of %d users", slate_size, n_users)

        for start in range(0, n_users, CHUNK_USERS):
            stop = min(start + CHUNK_USERS, n_users)
            logits = np.asarray(features[start:stop]) @ weights32
            if slate_size < n_items:
                top = np.argpartition(logits, n_items - slate_size, axis=1)[:, -slate_size:]
            else:
                top = np.broadcast_to(np.arange(n_items), logits.shape)
            order = np.argsort(-np.take_along_axis(logits, top, axis=1), axis=1, kind="stable")
            items[start:stop] = np.take_along_axis(top, order, axis=1)

        probs = stream_probabilities(features, self.catalog.weights, items.astype(np.intp))
        # float32 search, float64 scores: re-sort so that ties broken in float32 stay ordered.
        order = np.argsort(-probs, axis=1, kind="stable")
        items = np.take_along_axis(items, order, axis=1)
        probs = np.take_along_axis(probs, order, axis=1)
        items.setflags(write=False)
        probs.setflags(write=False)
        return items, probs

    def segment_mean_probabilities(self) -> np.ndarray:
        """Mean of p(u, i) over the users of each segment.

        Returns:
            float64 array, shape (n_segments, n_items). Rows of empty segments are NaN.
        """
        if self._segment_means is None:
            self._segment_means = self._compute_segment_means()
        return self._segment_means

    def _compute_segment_means(self) -> np.ndarray:
        population = self.population
        n_segments, n_items = population.n_segments, self.catalog.n_items
        weights32 = self.catalog.weights.T.astype(np.float32)
        sums = np.zeros((n_segments, n_items))
        for start in range(0, population.n_users, CHUNK_USERS):
            stop = start + CHUNK_USERS
            probs = _sigmoid(np.asarray(population.features[start:stop]) @ weights32)
            segments = population.segments[start:stop]
            # Sum the rows of each segment: sort the chunk by segment, then reduce runs.
            order = np.argsort(segments, kind="stable")
            sorted_segments = segments[order]
            starts = np.flatnonzero(np.r_[True, sorted_segments[1:] != sorted_segments[:-1]])
            sums[sorted_segments[starts]] += np.add.reduceat(
                probs[order], starts, axis=0, dtype=np.float64
            )
        counts = np.bincount(population.segments, minlength=n_segments).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts[:, None]
        means.setflags(write=False)
        return means

    def segment_best_slates(self, slate_size: int) -> np.ndarray:
        """Each segment's best slate: its top ``slate_size`` items by mean probability.

        Returns:
            int64 array, shape (n_segments, slate_size), best item first.
        """
        means = np.nan_to_num(self.segment_mean_probabilities(), nan=-1.0)
        return np.argsort(-means, axis=1, kind="stable")[:, :slate_size]


def ground_truth(population: Population, catalog: Catalog) -> GroundTruth:
    """The shared :class:`GroundTruth` of this population and catalog (built once).

    The cache lives on the population object, so it goes away with the population.
    """
    cache = population.__dict__.setdefault("_ground_truth", {})
    if id(catalog) not in cache or cache[id(catalog)].catalog is not catalog:
        cache[id(catalog)] = GroundTruth(population, catalog)
    return cache[id(catalog)]
