"""Single-user use of a batched agent: updates immediate or buffered every N visits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import Agent, agent_from_state, check_int


class BufferedAgent(Agent):
    """Wrap an agent so that its updates happen every ``update_every`` visits.

    ``act`` is the wrapped agent's. ``update`` (single-user or batched) stores the visits
    and, once at least ``update_every`` visits are stored, passes them all to the wrapped
    agent as one batched update (the paper's delayed batch feedback, with a batch of
    ``update_every`` visits; ``update_every=1`` updates after every visit).
    :meth:`flush` passes on whatever is stored. Saving keeps the stored visits.

    Args:
        agent: the agent to wrap.
        update_every: number of visits per batched update (at least 1).
    """

    def __init__(self, agent: Agent, update_every: int = 1) -> None:
        if not isinstance(agent, Agent):
            raise TypeError(f"`agent` must be an agents.Agent; got {type(agent).__name__}")
        self.agent = agent
        self.update_every = check_int("update_every", update_every, minimum=1)
        self.name = agent.name
        self.uses = agent.uses
        self.n_items, self.slate_size = agent.n_items, agent.slate_size
        self.n_segments, self.l_init = agent.n_segments, agent.l_init
        self.params = {"update_every": self.update_every}
        self._clear()

    @property
    def rng(self) -> np.random.Generator:  # type: ignore[override]
        return self.agent.rng

    @property
    def n_buffered(self) -> int:
        """Number of visits stored and not yet passed to the wrapped agent."""
        return sum(len(part["slates"]) for part in self._parts)

    def _clear(self) -> None:
        self._parts: list[dict[str, np.ndarray]] = []

    def act(self, observation: Mapping[str, Any]) -> np.ndarray:
        return self.agent.act(observation)

    def update(
        self, observation: Mapping[str, Any], slates: np.ndarray, streams: np.ndarray
    ) -> None:
        """Store the visits (validated now); update the wrapped agent every N visits."""
        batch, single = self.agent._read_observation(observation)
        slates = self.agent._check_slates(slates, batch["n_users"], single)
        streams = self.agent._check_streams(streams, slates.shape, single)
        part = {key: np.array(value) for key, value in batch.items() if key != "n_users"}
        part.update(slates=slates.copy(), streams=streams.copy())
        self._parts.append(part)
        if self.n_buffered >= self.update_every:
            self.flush()

    def flush(self) -> None:
        """Pass every stored visit to the wrapped agent as one batched update."""
        if not self._parts:
            return
        joined = {key: np.concatenate([p[key] for p in self._parts]) for key in self._parts[0]}
        self._clear()
        slates, streams = joined.pop("slates"), joined.pop("streams")
        joined["n_users"] = slates.shape[0]
        self.agent._update_batch(joined, slates, streams)

    def reset(self, seed: int | None = None) -> None:
        """Reset the wrapped agent and drop the stored visits."""
        self.agent.reset(seed)
        self._clear()

    def state_dict(self) -> dict[str, Any]:
        inner = self.agent.state_dict()
        stored = {}
        if self._parts:
            keys = self._parts[0]
            stored = {f"buffer.{k}": np.concatenate([p[k] for p in self._parts]) for k in keys}
        return {
            "format": inner["format"],
            "class": type(self).__name__,
            "name": self.name,
            "params": dict(self.params),
            "inner": {key: value for key, value in inner.items() if key != "state"},
            "state": {**{f"inner.{k}": v for k, v in inner["state"].items()}, **stored},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        inner = {**state["inner"], "state": _strip(state["state"], "inner.")}
        self.agent.load_state_dict(inner)
        self.update_every = int(state["params"]["update_every"])
        self.params = {"update_every": self.update_every}
        stored = _strip(state["state"], "buffer.")
        self._clear()
        if stored:
            self._parts.append({key: np.array(value) for key, value in stored.items()})

    @classmethod
    def _from_state(cls, state: Mapping[str, Any]) -> Agent:
        inner = agent_from_state({**state["inner"], "state": _strip(state["state"], "inner.")})
        wrapper = cls(inner, update_every=state["params"]["update_every"])
        wrapper.load_state_dict(state)
        return wrapper

    # The wrapped agent does the work; these are never called on the wrapper.
    def _init_learning(self) -> None:
        return None

    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        return self.agent._act_batch(batch)

    def _update_batch(self, batch: dict[str, Any], slates: np.ndarray, streams: np.ndarray):
        self.agent._update_batch(batch, slates, streams)

    def __repr__(self) -> str:
        return f"BufferedAgent({self.agent!r}, update_every={self.update_every})"


def _strip(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
