"""Fixtures for the experiment runner tests: a tiny population."""

from __future__ import annotations

import pytest

from carousel_env.data import make_synthetic_population


@pytest.fixture(scope="session")
def population():
    """2,000 synthetic users in 10 segments: the optimum takes milliseconds."""
    return make_synthetic_population(n_users=2000, n_segments=10, seed=3)
