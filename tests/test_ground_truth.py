"""The optimum, segment means and best slates against brute force on small populations."""

from __future__ import annotations

import numpy as np

from carousel_env import ground_truth as gt_module
from carousel_env.data import Catalog, Population
from carousel_env.ground_truth import ground_truth, stream_probabilities


def _brute_probabilities(population: Population, catalog: Catalog) -> np.ndarray:
    logits = population.features.astype(np.float64) @ catalog.weights.T
    return 1.0 / (1.0 + np.exp(-logits))


def test_top_items_are_each_users_most_likely_items(small_population, monkeypatch):
    # Small chunks exercise the chunk boundaries.
    monkeypatch.setattr(gt_module, "CHUNK_USERS", 777)
    weights = np.random.default_rng(0).normal(0, 0.3, (40, 97))
    weights[:, -1] -= 3.0
    catalog = Catalog(weights)
    truth = gt_module.GroundTruth(small_population, catalog)
    items, probs = truth.top_items(5)
    brute = _brute_probabilities(small_population, catalog)
    expected = -np.sort(-brute, axis=1)[:, :5]
    np.testing.assert_allclose(probs, expected, rtol=1e-12)
    np.testing.assert_allclose(np.take_along_axis(brute, items.astype(int), 1), probs, rtol=1e-12)
    assert (np.diff(probs, axis=1) <= 0).all()


def test_segment_means_and_best_slates(small_population, monkeypatch):
    monkeypatch.setattr(gt_module, "CHUNK_USERS", 1000)
    catalog = Catalog(np.random.default_rng(1).normal(0, 0.3, (30, 97)))
    truth = gt_module.GroundTruth(small_population, catalog)
    brute = _brute_probabilities(small_population, catalog)
    segments = small_population.segments
    expected = np.stack(
        [brute[segments == s].mean(axis=0) for s in range(small_population.n_segments)]
    )
    np.testing.assert_allclose(truth.segment_mean_probabilities(), expected, rtol=1e-5)
    best = truth.segment_best_slates(4)
    np.testing.assert_array_equal(best, np.argsort(-expected, axis=1)[:, :4])


def test_ground_truth_is_shared_per_population_and_catalog(small_population):
    catalog = Catalog(np.zeros((3, 97)))
    assert ground_truth(small_population, catalog) is ground_truth(small_population, catalog)
    assert ground_truth(small_population, Catalog(np.zeros((3, 97)))) is not ground_truth(
        small_population, catalog
    )


def test_stream_probabilities_are_float64_sigmoids(tiny_world):
    population, catalog = tiny_world
    slates = np.array([[0, 1], [2, 3], [4, 5], [1, 0]])
    probs = stream_probabilities(population.features, catalog.weights, slates, chunk=3)
    brute = _brute_probabilities(population, catalog)
    np.testing.assert_allclose(probs, np.take_along_axis(brute, slates, 1), rtol=1e-15)
