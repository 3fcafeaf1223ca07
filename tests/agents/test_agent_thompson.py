"""The lazy top-L Beta sampler has the law of sorting independent Beta draws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

import agents
from agents._selection import top_l
from agents.thompson import _envelopes, beta_top_l

N_DRAWS = 60_000
L = 3


def _posterior() -> tuple[np.ndarray, np.ndarray]:
    """2 segments x 24 items mixing every path of the sampler: a = 1 items (inversion),
    a, b >= 1 items far above or near the threshold (envelope proposals, or direct draws
    when the envelope's mass is large), and items without an envelope (a < 1, b = 1)."""
    alpha = np.ones((2, 24))
    beta = np.full((2, 24), 99.0)
    beta[0, :8] = [40, 60, 80, 120, 300, 20, 99, 150]
    alpha[0, 8:14] = [3, 2, 5, 1.5, 8, 2]
    beta[0, 8:14] = [150, 90, 400, 60, 300, 500]
    alpha[1, :8] = [4, 9, 2, 6, 3, 0.7, 40, 3]
    beta[1, :8] = [200, 700, 300, 250, 90, 80, 1000, 1]
    return alpha, beta


def _frequencies(slates: np.ndarray, n_items: int) -> np.ndarray:
    """Share of draws with item i in slot j, shape (L, n_items)."""
    return np.stack([np.bincount(slates[:, j], minlength=n_items) for j in range(L)]) / len(slates)


@pytest.mark.parametrize(
    "oversample, dense_level",
    [(2.0, 0.3), (1.0, 0.3), (1.0, 1.1), (4.0, 0.01), (2.0, 0.0)],
    ids=["default", "many-fallbacks", "no-dense", "mostly-dense", "all-dense"],
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


@pytest.mark.parametrize("a", [1.5, 3.0, 20.0, 400.0])
@pytest.mark.parametrize("b", [1.5, 40.0, 900.0])
@pytest.mark.parametrize("quantile", [0.3, 0.5, 0.9, 0.999])
def test_envelope_bounds_the_density_above_tau(a, b, quantile):
    """The exponential envelope is above f on [tau, 1], so its mass q >= P(Y > tau), and
    it is not wasteful: q stays within a small factor of P(Y > tau)."""
    tau = special.betaincinv(a, b, quantile)
    q, x1, rate = _envelopes(np.array([a]), np.array([b]), np.array([tau]))
    tail = special.betaincc(a, b, tau)
    assert np.isfinite(q[0])
    assert q[0] >= tail * (1 - 1e-9)
    assert q[0] <= 2.5 * tail
    x = np.linspace(tau, 1.0, 2001)[:-1]
    log_f = stats.beta.logpdf(x, a, b)
    log_h = stats.beta.logpdf(x1[0], a, b) - rate[0] * (x - x1[0])
    assert np.all(log_f <= log_h + 1e-9)


def test_no_envelope_where_log_density_is_not_concave():
    q, _, _ = _envelopes(np.array([0.7, 3.0, 2.0]), np.array([50.0, 0.5, 1.0]), np.full(3, 0.5))
    assert np.all(np.isinf(q))


def test_lazy_sampler_on_a_learned_posterior_matches_direct_draws():
    """A paper-sized posterior (one segment, 862 items, L = 12): a few items well known
    and good, many known bad, the rest never streamed. Share of each item in the slate."""
    rng = np.random.default_rng(5)
    n_items, n_users, slate = 862, 20_000, 12
    displays = rng.integers(0, 400, size=n_items).astype(float)
    rates = rng.beta(1, 40, size=n_items)
    rates[:30] = rng.uniform(0.05, 0.15, size=30)
    streams = np.round(displays * rates)
    streams[rng.random(n_items) < 0.4] = 0
    alpha, beta = (1 + streams)[None, :], (99 + displays - streams)[None, :]
    segments = np.zeros(n_users, dtype=np.int64)
    lazy = beta_top_l(np.random.default_rng(6), alpha, beta, segments, slate)
    direct = top_l(np.random.default_rng(7).beta(alpha[segments], beta[segments]), slate)
    share_lazy = np.bincount(lazy.ravel(), minlength=n_items) / n_users
    share_direct = np.bincount(direct.ravel(), minlength=n_items) / n_users
    # Shares of two independent samples of n users: sd sqrt(2 p (1 - p) / n); 5 of them.
    sd = np.sqrt(2 * np.maximum(share_direct * (1 - share_direct), 1e-4) / n_users)
    assert np.all(np.abs(share_lazy - share_direct) <= 5 * sd)
    assert (share_direct > 0.01).sum() > 20  # the test covers a contested slate


@pytest.mark.parametrize("open_params", [(5, 200), (30, 1200), (2, 60)], ids=str)
def test_envelope_path_against_inversion_path(open_params):
    """100 items drawn through envelope proposals (a > 1) against 100 items of a similar
    mean drawn by inversion (a = 1): the share of slots won by the first kind, in each slot,
    is that of direct draws. Any error in the proposal or acceptance step shifts it."""
    n_users, slate = 30_000, 3
    alpha = np.concatenate([np.full(100, float(open_params[0])), np.ones(100)])[None, :]
    beta_ = np.concatenate([np.full(100, float(open_params[1])), np.full(100, 41.0)])[None, :]
    segments = np.zeros(n_users, dtype=np.int64)
    lazy = beta_top_l(np.random.default_rng(8), alpha, beta_, segments, slate, min_items=0)
    direct = top_l(np.random.default_rng(9).beta(alpha[segments], beta_[segments]), slate)
    share_lazy, share_direct = (lazy < 100).mean(axis=0), (direct < 100).mean(axis=0)
    # Two independent proportions over n users: sd sqrt(2 p (1 - p) / n); 5 of them.
    sd = np.sqrt(2 * share_direct * (1 - share_direct) / n_users)
    assert np.all(np.abs(share_lazy - share_direct) <= 5 * sd)


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
