"""A tiny world for the agent tests: 2 segments, 20 items, slates of 3, a cascade simulator.

The agents never import the environment, so the tests simulate the users themselves:
p(u, i) = sigmoid(x_u . theta_i), and a visit streams the leftmost slot of the slate
whose Bernoulli(p) draw succeeds (at most one stream per visit).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

N_ITEMS, SLATE, N_SEGMENTS, L_INIT, N_FEATURES = 20, 3, 2, 2, 4


class TinyWorld:
    """Users of segment s have taste vectors near e_s; items 0-2 suit segment 0, 10-12
    segment 1 (stream probability about 0.4), every other item about 0.03."""

    n_items, slate_size, n_segments, l_init, n_features = (
        N_ITEMS,
        SLATE,
        N_SEGMENTS,
        L_INIT,
        N_FEATURES,
    )

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        theta = np.zeros((N_ITEMS, N_FEATURES))
        theta[:, -1] = -3.5
        theta[0:3, 0] = 3.1
        theta[10:13, 1] = 3.1
        self.theta = theta
        self.best = {0: {0, 1, 2}, 1: {10, 11, 12}}

    def observe(self, n_users: int) -> dict[str, np.ndarray]:
        segment = self.rng.integers(0, N_SEGMENTS, size=n_users)
        features = np.zeros((n_users, N_FEATURES), dtype=np.float32)
        features[np.arange(n_users), segment] = 1.0
        features[:, 2] = self.rng.normal(0.0, 0.1, size=n_users)
        features[:, -1] = 1.0
        return {"features": features, "segment": segment}

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return expit(np.asarray(features, dtype=np.float64) @ self.theta.T)

    def streams(self, observation: dict, slates: np.ndarray) -> np.ndarray:
        p = np.take_along_axis(self.probabilities(observation["features"]), slates, axis=1)
        success = self.rng.random(p.shape) < p
        first = np.where(success.any(axis=1), success.argmax(axis=1), slates.shape[1])
        return (np.arange(slates.shape[1])[None, :] == first[:, None]).astype(np.int8)

    def pseudo_regret(self, observation: dict, slates: np.ndarray) -> float:
        """Sum over users of opt(u) minus the expected reward of the slate given."""
        p = self.probabilities(observation["features"])
        best = -np.sort(-p, axis=1)[:, :SLATE]
        optimum = 1.0 - np.prod(1.0 - best, axis=1)
        given = 1.0 - np.prod(1.0 - np.take_along_axis(p, slates, axis=1), axis=1)
        return float(np.sum(optimum - given))


@pytest.fixture
def world() -> TinyWorld:
    return TinyWorld(seed=0)


def agent_kwargs(name: str) -> dict:
    """Constructor arguments for the tiny world (linear agents also need n_features)."""
    kwargs = dict(n_items=N_ITEMS, slate_size=SLATE, n_segments=N_SEGMENTS, l_init=L_INIT)
    if name in {"ts-lin-naive", "ts-lin-pessimistic", "linucb", "lin-greedy"}:
        kwargs["n_features"] = N_FEATURES
    return kwargs


@pytest.fixture
def make_world():
    """The TinyWorld class: ``make_world(seed)`` builds one."""
    return TinyWorld


@pytest.fixture
def kwargs_for():
    return agent_kwargs
