"""The lazy top-L Beta sampler has the law of sorting independent Beta draws."""

from __future__ import annotations

import numpy as np
import pytest

import agents
from agents._selection import top_l
from agents.thompson import beta_top_l

N_DRAWS = 60_000
L = 3


def _posterior() -> tuple[np.ndarray, np.ndarray]:
    """2 segments x 24 items mixing every path of the sampler: a = 1 items (closed-form
    inversion), a != 1 items with small exceedance probability (betainccinv) and with
    large exceedance probability (direct draws)."""
    alpha = np.ones((2, 24))
    beta = np.full((2, 24), 99.0)
    beta[0, :8] = [40, 60, 80, 120, 300, 20, 99, 150]
    alpha[0, 8:14] = [3, 2, 5, 1.5, 8, 2]
    beta[0, 8:14] = [150, 90, 400, 60, 300, 500]
    alpha[1, :6] = [4, 9, 2, 6, 3, 0.7]
    beta[1, :6] = [200, 700, 300, 250, 90, 80]
    return alpha, beta


def _frequencies(slates: np.ndarray, n_items: int) -> np.ndarray:
    """Share of draws with item i in slot j, shape (L, n_items)."""
    return np.stack([np.bincount(slates[:, j], minlength=n_items) for j in range(L)]) / len(slates)


@pytest.mark.parametrize(
    "oversample, dense_level",
    [(2.0, 0.15), (1.0, 0.15), (1.0, 1.1), (4.0, 0.01)],
    ids=["default", "many-fallbacks", "no-dense", "mostly-dense"],
)
def test_lazy_sampler_matches_direct_draws(oversample, dense_level):
    alpha, beta = _posterior()
    segments = np.repeat([0, 1], N_DRAWS // 2)
    lazy = beta_top_l(
        np.random.default_rng(1),
        alpha,
        beta,
        segments,
        L,
        oversample=oversample,
        dense_level=dense_level,
        min_items=0,
    )
    rng = np.random.default_rng(2)
    direct = top_l(rng.beta(alpha[segments], beta[segments]), L)
    for seg in (0, 1):
        rows = segments == seg
        f_lazy = _frequencies(lazy[rows], 24)
        f_direct = _frequencies(direct[rows], 24)
        # Two independent samples of n = 30,000: the difference of two shares has
        # standard deviation sqrt(2 p (1 - p) / n); allow 5 of them (plus a floor for
        # p near 0), over 72 cells per segment.
        sd = np.sqrt(2 * np.maximum(f_direct * (1 - f_direct), 1e-4) / rows.sum())
        assert np.all(np.abs(f_lazy - f_direct) <= 5 * sd)


def test_lazy_sampler_slates_are_distinct_and_ordered():
    alpha, beta = _posterior()
    segments = np.repeat([0, 1], 500)
    slates = beta_top_l(np.random.default_rng(0), alpha, beta, segments, L, min_items=0)
    assert slates.shape == (1000, L)
    assert all(len(set(row)) == L for row in slates)


def test_agent_posterior():
    agent = agents.ThompsonSegment(5, 2, n_segments=1, l_init=1, prior_alpha=1, prior_beta=99)
    agent.update(
        {"segment": np.zeros(2, int)}, np.array([[0, 1], [0, 2]]), np.array([[0, 1], [0, 0]])
    )
    alpha, beta = agent.posterior()
    # published-code reading: the visit without stream counts both slots.
    np.testing.assert_array_equal(alpha, [[1, 2, 1, 1, 1]])
    np.testing.assert_array_equal(beta, [[101, 99, 100, 99, 99]])
