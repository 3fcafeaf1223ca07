"""Linear agents: sampled scores against the posterior, the fits, both precision readings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit

import agents
from agents._logistic import GroupedRows, fit_map


def _agent(**kw) -> agents.LinearThompson:
    agent = agents.LinearThompson(3, 2, n_segments=1, l_init=1, seed=0, n_features=3, **kw)
    agent.mean[:] = [[0.5, -1.0, -2.0], [0.0, 0.3, -1.0], [1.0, 1.0, 0.0]]
    agent.precision[:] = [[1.0, 4.0, 2.0], [10.0, 0.5, 1.0], [3.0, 3.0, 3.0]]
    return agent


def test_sampled_scores_follow_posterior():
    agent = _agent()
    n = 40_000
    x = np.array([0.7, -1.2, 1.0], dtype=np.float32)
    scores = agent.scores(np.tile(x, (n, 1))).astype(np.float64)
    mean = agent.mean @ x
    var = (x.astype(np.float64) ** 2) @ (1.0 / agent.precision).T
    # Sample mean: standard error sqrt(var / n); sample variance of normals: relative
    # standard error sqrt(2 / (n - 1)). Allow 5 standard errors each.
    np.testing.assert_array_less(np.abs(scores.mean(0) - mean), 5 * np.sqrt(var / n))
    np.testing.assert_array_less(np.abs(scores.var(0, ddof=1) / var - 1), 5 * np.sqrt(2 / n))
    # Items are sampled independently: correlations near 0 (standard error 1 / sqrt(n)).
    corr = np.corrcoef(scores.T)
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 5 / np.sqrt(n))


def test_greedy_scores_are_the_means():
    agent = agents.LinearGreedy(3, 2, n_segments=1, l_init=1, seed=0, n_features=3)
    agent.mean[:] = _agent().mean
    x = np.array([[0.7, -1.2, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(agent.scores(x)[0], agent.mean @ x[0], rtol=1e-6)


def _objective(w, x, y, m, q):
    reg = 0.5 * np.sum(q[:-1] * (w[:-1] - m[:-1]) ** 2)
    z = y * (x @ w)
    grad = np.r_[q[:-1] * (w[:-1] - m[:-1]), 0.0] - x.T @ (y * expit(-z))
    return reg + np.sum(np.logaddexp(0, -z)), grad


def test_batched_fit_matches_scipy_per_item():
    rng = np.random.default_rng(0)
    n, d = 300, 4
    x = np.c_[rng.normal(size=(n, d - 1)), np.ones(n)]
    items = rng.integers(0, 3, size=n)
    truth = np.array([[1.0, -1.0, 0.5, -1.0], [0.0, 2.0, 0.0, 0.5], [-1.0, 0.0, 1.0, 0.0]])
    y = np.where(rng.random(n) < expit(np.einsum("nd,nd->n", x, truth[items])), 1.0, -1.0)
    rows = GroupedRows.build(x, y, items)
    m = rng.normal(0, 0.1, size=(3, d))
    q = rng.uniform(0.5, 2.0, size=(3, d))
    fitted = fit_map(rows, m, m, q, max_iter=200)
    for g, item in enumerate(rows.items):
        sel = items == item
        ref = minimize(
            _objective,
            m[g],
            args=(x[sel], y[sel], m[g], q[g]),
            jac=True,
            method="L-BFGS-B",
            options={"gtol": 1e-10, "maxiter": 1000},
        ).x
        np.testing.assert_allclose(fitted[g], ref, atol=1e-4)


@pytest.mark.parametrize("feedback, offset", [("paper", 0.0), ("published-code", 1.0)])
def test_precision_update_by_reading(feedback, offset):
    agent = agents.LinearThompson(
        3, 2, n_segments=1, l_init=1, seed=0, n_features=2, feedback=feedback
    )
    x = np.array([[0.5, 1.0], [-1.0, 1.0], [2.0, 1.0]], dtype=np.float32)
    slates = np.array([[0, 1], [0, 2], [1, 0]])
    streams = np.array([[0, 1], [1, 0], [0, 0]])
    agent.update({"features": x}, slates, streams)
    # Displays of item 0: visit 0 slot 0 (fail), visit 1 slot 0 (stream), and visit 2
    # slot 1 only under the published-code reading (no stream: all slots count).
    users = [0, 1, 2] if feedback == "published-code" else [0, 1]
    xs = x[users].astype(np.float64)
    p = expit(xs @ agent.mean[0] - offset)
    np.testing.assert_allclose(agent.precision[0], 1.0 + (p * (1 - p)) @ xs**2, rtol=1e-12)
    assert np.all(agent.precision[2] == 1.0) if feedback == "paper" else True


def test_linucb_scores_by_formula():
    agent = agents.LinUCB(
        3, 2, n_segments=1, l_init=1, seed=0, n_features=2, alpha=0.5, feedback="published-code"
    )
    x = np.array([[1.0, 1.0], [0.5, 1.0], [-1.0, 1.0]], dtype=np.float32)
    agent.update(
        {"features": x}, np.array([[0, 1], [1, 2], [2, 0]]), np.array([[1, 0], [0, 1], [0, 0]])
    )
    # Item 0 is displayed to user 0 (stream) and, as the visit of user 2 has no stream
    # (published-code reading: every slot), to user 2.
    xs = x[[0, 2]].astype(np.float64)
    gram = np.eye(2) + xs.T @ xs
    theta = np.linalg.solve(gram, xs.T @ np.array([1.0, 0.0]))
    u = np.array([0.3, 1.0])
    expected = u @ theta + 0.5 * np.sqrt(u @ np.linalg.solve(gram, u))
    got = agent.scores(u[None, :].astype(np.float32))[0, 0]
    assert got == pytest.approx(expected, rel=1e-5)
