"""Slates from rankings: ties at random and uniformly, random slates uniform."""

from __future__ import annotations

import numpy as np

from agents._selection import random_slates, ranked_slates, sample_distinct, top_l


def test_ranked_slates_ties_uniform():
    # Segment 0: item 5 is best, items 0-3 tie next (2 of them fill slots 1-2); segment 1:
    # everything ties. Slates of 3.
    keys = np.zeros((2, 6))
    keys[0] = [1, 1, 1, 1, 0, 2]
    segments = np.repeat([0, 1], 24_000)
    slates = ranked_slates(np.random.default_rng(0), (keys,), segments, 3)
    seg0, seg1 = slates[:24_000], slates[24_000:]
    assert np.all(seg0[:, 0] == 5)
    assert set(np.unique(seg0[:, 1:])) == {0, 1, 2, 3}
    # Each of the 12 ordered pairs from 4 tied items has probability 1/12; each of the
    # 120 ordered triples of 6 items 1/120. Shares within 5 binomial standard errors.
    pairs = np.unique(seg0[:, 1] * 6 + seg0[:, 2], return_counts=True)[1] / 24_000
    assert pairs.size == 12
    assert np.all(np.abs(pairs - 1 / 12) < 5 * np.sqrt(1 / 12 * 11 / 12 / 24_000))
    triples = np.unique(seg1 @ [36, 6, 1], return_counts=True)[1] / 24_000
    assert triples.size == 120
    assert np.all(np.abs(triples - 1 / 120) < 5 * np.sqrt(1 / 120 / 24_000))


def test_ranked_slates_lexicographic_keys():
    primary = np.array([[0, 2, 2, 1, 0]])
    secondary = np.array([[9, 0.1, 0.5, 7, 8]])
    slates = ranked_slates(np.random.default_rng(0), (primary, secondary), np.zeros(5, int), 4)
    np.testing.assert_array_equal(slates, np.tile([2, 1, 3, 0], (5, 1)))


def test_random_slates_uniform_and_distinct():
    slates = random_slates(np.random.default_rng(0), 30_000, 10, 4)
    assert all(len(set(row)) == 4 for row in slates[:2000])
    # Item i in slot j with probability 1/10: 5 standard errors of a share of 30,000.
    for j in range(4):
        share = np.bincount(slates[:, j], minlength=10) / 30_000
        assert np.all(np.abs(share - 0.1) < 5 * np.sqrt(0.09 / 30_000))


def test_sample_distinct_small_and_large_groups():
    sizes = np.array([3, 3, 200, 200])
    counts = np.array([3, 2, 5, 1])
    out = sample_distinct(np.random.default_rng(0), sizes, counts, 5)
    for row, size, count in zip(out, sizes, counts, strict=False):
        picked = row[:count]
        assert len(set(picked)) == count and picked.max() < size


def test_top_l_orders_best_first():
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [3, 2, 1, 0]], dtype=float)
    np.testing.assert_array_equal(top_l(scores, 3), [[1, 3, 2], [0, 1, 2]])
