"""The simulation shared by the single-user environment and its batched twin.

:class:`CarouselSimulator` holds the population, the catalog, the click model and the
ground truth, and serves a batch of users a batch of slates with array operations. The
environments add the Gymnasium protocol around it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from gymnasium import spaces

from carousel_env.click_models import ClickModel, make_click_model
from carousel_env.data import Catalog, Population, load_catalog, load_population
from carousel_env.ground_truth import ground_truth, stream_probabilities

__all__ = ["CarouselSimulator"]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int; got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be at least 1; got {value}")
    return int(value)


class CarouselSimulator:
    """Users, items and browsing; no Gymnasium protocol. See :class:`CarouselEnv` for args."""

    def __init__(
        self,
        users: str | os.PathLike | Population = "synthetic",
        *,
        catalog: str | os.PathLike | np.ndarray | Catalog = "deezer",
        slate_size: int = 12,
        l_init: int = 3,
        click_model: str | ClickModel = "cascade",
        swipe_probability: float = 0.8,
        population_seed: int = 0,
        n_users: int | None = None,
        data_dir: str | os.PathLike | None = None,
    ) -> None:
        self.slate_size = _positive_int("slate_size", slate_size)
        self.l_init = _positive_int("l_init", l_init)
        if self.l_init > self.slate_size:
            raise ValueError(
                f"`l_init` ({self.l_init}) must not exceed `slate_size` ({self.slate_size})"
            )
        self.catalog = load_catalog(catalog)
        self.population = load_population(
            users, seed=population_seed, n_users=n_users, cache_dir=data_dir
        )
        self.population.check_compatible(self.catalog)
        if self.slate_size > self.catalog.n_items:
            raise ValueError(
                f"`slate_size` ({self.slate_size}) must not exceed the number of items "
                f"({self.catalog.n_items})"
            )
        self.click_model = make_click_model(
            click_model, l_init=self.l_init, swipe_probability=swipe_probability
        )
        self.truth = ground_truth(self.population, self.catalog)
        self._optimal_reward: np.ndarray | None = None

        # Finite, symmetric bounds that hold every user: the smallest integer above the
        # largest |feature| (a per-dimension min/max would pin the bias column to [1, 1]).
        features = self.population.features
        largest = max(float(features.max()), -float(features.min()))
        bound = np.float32(np.ceil(largest) + 1.0)
        low = np.full(self.population.n_features, -bound, dtype=np.float32)
        high = np.full(self.population.n_features, bound, dtype=np.float32)
        self.single_observation_space = spaces.Dict(
            {
                "features": spaces.Box(low, high, dtype=np.float32),
                "segment": spaces.Discrete(self.population.n_segments),
            }
        )

    @property
    def n_items(self) -> int:
        return self.catalog.n_items

    @property
    def optimal_reward(self) -> np.ndarray:
        """Each user's best possible expected reward, float64 array (n_users,)."""
        if self._optimal_reward is None:
            _, probs = self.truth.top_items(self.slate_size)
            self._optimal_reward = self.click_model.expected_reward(probs)
            self._optimal_reward.setflags(write=False)
        return self._optimal_reward

    def draw_users(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n users drawn uniformly with replacement: intp array (n,)."""
        return rng.integers(0, self.population.n_users, size=n, dtype=np.intp)

    def observe(self, users: np.ndarray) -> dict[str, np.ndarray]:
        """The batched observation of these users."""
        return {
            "features": np.asarray(self.population.features[users]),
            "segment": self.population.segments[users],
        }

    def serve(
        self, users: np.ndarray, slates: np.ndarray, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Show each user their slate and simulate the visit.

        Args:
            users: intp array (n,), user indices.
            slates: intp array (n, slate_size), already validated.
            rng: the environment's generator (consumes a fixed number of draws).

        Returns:
            The info arrays: ``streams`` int8 (n, slate_size), ``reward`` float64 (n,),
            ``expected_reward``, ``optimal_reward``, ``regret``, ``expected_regret``
            float64 (n,), ``user_index`` int64 (n,).
        """
        probs = stream_probabilities(self.population.features[users], self.catalog.weights, slates)
        streams = self.click_model.sample(probs, rng)
        reward = streams.any(axis=1).astype(np.float64)
        expected = self.click_model.expected_reward(probs)
        optimal = self.optimal_reward[users]
        return {
            "streams": streams,
            "reward": reward,
            "expected_reward": expected,
            "optimal_reward": optimal,
            "regret": optimal - reward,
            "expected_regret": optimal - expected,
            "user_index": users.astype(np.int64),
        }

    def describe(self) -> dict[str, Any]:
        """A summary of what this simulator runs on (printed by ``carousel-env info``)."""
        population = self.population
        sizes = np.bincount(population.segments, minlength=population.n_segments)
        return {
            "population": population.name,
            "n_users": population.n_users,
            "n_features": population.n_features,
            "n_segments": population.n_segments,
            "non_empty_segments": int((sizes > 0).sum()),
            "population_meta": population.meta,
            "catalog": self.catalog.name,
            "n_items": self.catalog.n_items,
            "slate_size": self.slate_size,
            "l_init": self.l_init,
            "click_model": self.click_model.describe(),
        }
