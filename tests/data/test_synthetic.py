"""The synthetic population: deterministic, any size, Deezer-like, validated parameters."""

from __future__ import annotations

import numpy as np
import pytest

from carousel_env.data import SyntheticConfig, load_catalog, make_synthetic_population
from carousel_env.ground_truth import GroundTruth


def test_same_seed_same_users_bit_for_bit():
    a = make_synthetic_population(n_users=5_000, n_segments=20, seed=3)
    from carousel_env.data.synthetic import _cached_population

    _cached_population.cache_clear()  # rebuild from scratch, not from the cache
    b = make_synthetic_population(n_users=5_000, n_segments=20, seed=3)
    assert a is not b
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.segments, b.segments)
    c = make_synthetic_population(n_users=5_000, n_segments=20, seed=4)
    assert not np.array_equal(a.features, c.features)


def test_shape_dtype_bias_and_provenance():
    population = make_synthetic_population(n_users=1_234, n_segments=7, seed=0)
    assert population.features.shape == (1_234, 97)
    assert population.features.dtype == np.float32
    assert (population.features[:, -1] == 1.0).all()
    assert population.segments.min() >= 0 and population.segments.max() < 7
    assert population.meta["seed"] == 0
    assert population.meta["user_spread"] == SyntheticConfig().user_spread
    with pytest.raises(ValueError, match="read-only"):
        population.features[0, 0] = 1.0


def test_default_population_is_deezer_like():
    """Mean user-optimal reward near 0.76 and stream probabilities near the real ones.

    The parameters were fitted to the paper's random and ts-seg-pessimistic regret, which
    puts the mean optimum near 0.76; the real users' mean stream probability is about
    0.007 (SOURCE.md). 20,000 users estimate a mean within ~0.005.
    """
    population = make_synthetic_population(n_users=20_000, seed=0)
    catalog = load_catalog("deezer")
    truth = GroundTruth(population, catalog)
    _, probs = truth.top_items(12)
    optimal = 1.0 - np.prod(1.0 - probs, axis=1)
    assert 0.66 <= optimal.mean() <= 0.80
    logits = population.features[:2_000].astype(np.float64) @ catalog.weights.T
    mean_p = (1.0 / (1.0 + np.exp(-logits))).mean()
    assert 0.004 <= mean_p <= 0.02


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"n_users": 0}, ValueError, r"`n_users` must be a positive int; got 0"),
        ({"n_segments": 2.5}, ValueError, r"`n_segments` must be a positive int; got 2.5"),
        ({"user_spread": -1.0}, ValueError, r"`user_spread` must be a finite number >= 0"),
        ({"centre_spread": "wide"}, TypeError, r"`centre_spread` must be a number; got 'wide'"),
        ({"size_concentration": 0}, ValueError, r"`size_concentration` must be > 0"),
    ],
    ids=["no_users", "float_segments", "negative_spread", "string_spread", "zero_concentration"],
)
def test_invalid_parameters_are_rejected(params, error, message):
    with pytest.raises(error, match=message):
        SyntheticConfig(**params)


def test_seed_must_be_a_non_negative_int():
    with pytest.raises(ValueError, match=r"`seed` must be a non-negative int; got -1"):
        make_synthetic_population(n_users=10, seed=-1)
