"""KL-UCB indices against an independent root finder; the two readings' re-scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

import agents
from agents import kl_ucb_index


def kl(p: float, q: float) -> float:
    """Bernoulli KL divergence, written out independently of the package."""
    eps = 1e-15
    p, q = min(max(p, eps), 1 - eps), min(max(q, eps), 1 - eps)
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def reference_index(s: int, n: int, t: float) -> float:
    if n == 0:
        return 1.0
    p, level = s / n, math.log(t) / n
    if kl(p, 1 - 1e-12) <= level:
        return 1.0
    return brentq(lambda q: kl(p, q) - level, p, 1 - 1e-12, xtol=1e-12)


CELLS = [(0, 1), (0, 50), (1, 3), (3, 10), (7, 7), (2, 1000), (40, 100), (0, 0), (5, 0)]


@pytest.mark.parametrize("t", [2.0, 100.0, 1e6], ids=["t=2", "t=100", "t=1e6"])
def test_index_matches_root_of_kl(t):
    s = np.array([c[0] for c in CELLS])
    n = np.array([c[1] for c in CELLS])
    got = kl_ucb_index(s, n, math.log(t))
    expected = [reference_index(si, ni, t) for si, ni in CELLS]
    # Bisection to a bracket of 1e-6 returns the bracket's midpoint: within 5e-7.
    np.testing.assert_allclose(got, expected, atol=5.1e-7, rtol=0)


def test_never_displayed_scores_one():
    assert kl_ucb_index(np.array([0]), np.array([0]), 3.0)[0] == 1.0


def _two_rounds(feedback: str) -> agents.KLUCBSegment:
    agent = agents.KLUCBSegment(4, 2, n_segments=1, l_init=1, seed=0, feedback=feedback)
    seg = {"segment": np.zeros(1, dtype=int)}
    agent.update(seg, np.array([[0, 1]]), np.array([[0, 1]]))  # items 0, 1 displayed
    agent.update(seg, np.array([[2, 3]]), np.array([[1, 0]]))  # item 2 only (cascade)
    return agent


@pytest.mark.parametrize("feedback", ["paper", "published-code"])
def test_rescoring_by_reading(feedback):
    agent = _two_rounds(feedback)
    # displays: item 0: 1 (no stream), 1: 1 (stream), 2: 1 (stream), 3: 0; t = 3 after.
    assert agent.displays_count.tolist() == [[1, 1, 1, 0]]
    now = kl_ucb_index(np.array([0, 1, 1]), np.array([1, 1, 1]), math.log(3))
    then = kl_ucb_index(np.array([0, 1]), np.array([1, 1]), math.log(2))
    if feedback == "paper":
        np.testing.assert_array_equal(agent.index[0, :3], now)
    else:
        # the published code re-scores only the cells displayed in the round
        np.testing.assert_array_equal(agent.index[0, :2], then)
        assert agent.index[0, 2] == now[2]
    assert agent.index[0, 3] == 1.0


def test_cascade_kl_ucb_uses_segment_visits():
    agent = agents.CascadeKLUCB(4, 2, n_segments=2, l_init=1, seed=0, c=0.0)
    obs = {"segment": np.array([0, 0, 0, 1])}
    slates = np.array([[0, 1], [0, 1], [0, 1], [2, 3]])
    agent.update(obs, slates, np.array([[0, 1], [0, 0], [1, 0], [0, 0]]))
    assert agent.visits.tolist() == [3, 1]
    # Segment 0, item 0: 3 displays and 1 stream, level log 3 (3 visits of segment 0).
    expected = kl_ucb_index(np.array([1]), np.array([3]), math.log(3))[0]
    assert agent.index[0, 0] == expected
