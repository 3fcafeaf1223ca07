"""A tiny stand-in agent for the runner tests: the runner only needs the agent protocol."""

from __future__ import annotations

from typing import Any

import numpy as np


class TinyAgent:
    """Random slates, plus a per-item stream counter so that its state changes each round.

    With ``greedy``, a user gets the items with the most streams so far (ties broken by
    the agent's generator): a learner whose slates depend on its history, which is what a
    resume must reproduce exactly.
    """

    def __init__(self, name: str, *, n_items: int, slate_size: int, seed: int, **_: Any):
        self.name = name
        self.n_items = n_items
        self.slate_size = slate_size
        self.rng = np.random.default_rng(seed)
        self.streams = np.zeros(n_items)
        self.greedy = name.startswith("greedy")

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        n = observation["segment"].shape[0]
        keys = self.rng.random((n, self.n_items))
        if self.greedy:
            keys += self.streams
        return np.argsort(-keys, axis=1)[:, : self.slate_size].astype(np.int64)

    def update(self, observation: dict, slates: np.ndarray, streams: np.ndarray) -> None:
        np.add.at(self.streams, slates[streams.astype(bool)], 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "streams": self.streams.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.streams = np.array(state["streams"])


def tiny_factory(name: str, **kwargs: Any) -> TinyAgent:
    return TinyAgent(name, **kwargs)
