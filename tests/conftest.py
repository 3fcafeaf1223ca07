"""Shared fixtures: small populations that make every test fast."""

from __future__ import annotations

import numpy as np
import pytest

from carousel_env.data import Catalog, Population, make_synthetic_population


@pytest.fixture(scope="session")
def small_population() -> Population:
    """3,000 synthetic users in 10 segments: big enough for statistics, quick to build."""
    return make_synthetic_population(n_users=3_000, n_segments=10, seed=0)


@pytest.fixture(scope="session")
def tiny_world() -> tuple[Population, Catalog]:
    """4 users, 6 items, 3 features, with probabilities that are easy to write down.

    Item i has logit bias b_i and users differ only by one taste coordinate.
    """
    features = np.array(
        [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.5, 0.5, 1.0], [-1.0, 2.0, 1.0]], dtype=np.float32
    )
    weights = np.array(
        [
            [2.0, -1.0, -1.0],
            [-1.0, 2.0, -1.0],
            [0.0, 0.0, -2.0],
            [1.0, 1.0, -3.0],
            [0.5, -0.5, 0.0],
            [-2.0, 0.0, 0.5],
        ]
    )
    population = Population(features, np.array([0, 1, 0, 1]), 2, name="tiny")
    return population, Catalog(weights, name="tiny")
