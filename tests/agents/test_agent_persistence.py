"""Determinism, save/load round trips that continue bit for bit, reset, BufferedAgent."""

from __future__ import annotations

import numpy as np
import pytest

import agents


def play(agent, world, rounds: int, users: int = 60) -> list[np.ndarray]:
    slates_seen = []
    for _ in range(rounds):
        observation = world.observe(users)
        slates = agent.act(observation)
        agent.update(observation, slates, world.streams(observation, slates))
        slates_seen.append(slates)
    return slates_seen


@pytest.mark.parametrize("name", agents.list_agents())
def test_same_seed_same_slates(name, kwargs_for, make_world):
    first = play(agents.make_agent(name, seed=7, **kwargs_for(name)), make_world(1), 3)
    second = play(agents.make_agent(name, seed=7, **kwargs_for(name)), make_world(1), 3)
    for a, b in zip(first, second, strict=False):
        np.testing.assert_array_equal(a, b)


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["params"] == sb["params"] and sa["rng"] == sb["rng"]
    assert sa["state"].keys() == sb["state"].keys()
    for key in sa["state"]:
        np.testing.assert_array_equal(sa["state"][key], sb["state"][key])
        assert sa["state"][key].dtype == sb["state"][key].dtype


@pytest.mark.parametrize("name", agents.list_agents())
def test_save_load_continues_bit_for_bit(name, kwargs_for, make_world, tmp_path):
    agent = agents.make_agent(name, seed=3, **kwargs_for(name))
    play(agent, make_world(2), 2)
    path = tmp_path / "agent.npz"
    agent.save(path)
    loaded = agents.load_agent(path)
    assert type(loaded) is type(agent) and loaded.name == name
    _assert_same_state(agent, loaded)
    after_original = play(agent, make_world(5), 2)
    after_loaded = play(loaded, make_world(5), 2)
    for a, b in zip(after_original, after_loaded, strict=False):
        np.testing.assert_array_equal(a, b)
    _assert_same_state(agent, loaded)


def test_save_is_atomic_and_leaves_no_temp(tmp_path):
    agent = agents.make_agent("kl-ucb-seg", n_items=10, slate_size=3, n_segments=2)
    agent.save(tmp_path / "a.npz")
    agent.save(tmp_path / "a.npz")  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_class_load_checks_type(tmp_path):
    agents.make_agent("random", n_items=10, slate_size=3).save(tmp_path / "r.npz")
    with pytest.raises(TypeError, match="not a ThompsonSegment"):
        agents.ThompsonSegment.load(tmp_path / "r.npz")


@pytest.mark.parametrize("name", ["ts-seg-naive", "ts-lin-naive", "kl-ucb-seg"])
def test_reset_forgets_and_replays(name, kwargs_for, make_world):
    agent = agents.make_agent(name, seed=11, **kwargs_for(name))
    first = play(agent, make_world(3), 2)
    agent.reset()
    again = play(agent, make_world(3), 2)
    for a, b in zip(first, again, strict=False):
        np.testing.assert_array_equal(a, b)


def test_buffered_agent_updates_every_n(world):
    inner = agents.make_agent(
        "ts-seg-pessimistic", seed=0, n_items=20, slate_size=3, n_segments=2, l_init=2
    )
    reference = agents.make_agent(
        "ts-seg-pessimistic", seed=0, n_items=20, slate_size=3, n_segments=2, l_init=2
    )
    buffered = agents.BufferedAgent(inner, update_every=3)
    observation = world.observe(3)
    slates = reference.act(observation)
    streams = world.streams(observation, slates)
    for u in range(3):
        single = {"features": observation["features"][u], "segment": observation["segment"][u]}
        buffered.update(single, slates[u], streams[u])
        assert inner.displays_count.sum() == (
            0 if u < 2 else reference.displays(streams.astype(bool))[0].sum()
        )
    reference.update(observation, slates, streams)
    np.testing.assert_array_equal(inner.displays_count, reference.displays_count)
    np.testing.assert_array_equal(inner.streams_count, reference.streams_count)
    assert buffered.n_buffered == 0


def test_buffered_agent_flush_and_save(world, tmp_path):
    buffered = agents.BufferedAgent(
        agents.make_agent("kl-ucb-seg", seed=0, n_items=20, slate_size=3, n_segments=2),
        update_every=10,
    )
    observation = world.observe(4)
    slates = buffered.act(observation)
    buffered.update(observation, slates, world.streams(observation, slates))
    assert buffered.n_buffered == 4 and buffered.agent.displays_count.sum() == 0
    buffered.save(tmp_path / "b.npz")
    loaded = agents.load_agent(tmp_path / "b.npz")
    assert isinstance(loaded, agents.BufferedAgent) and loaded.n_buffered == 4
    buffered.flush()
    loaded.flush()
    np.testing.assert_array_equal(buffered.agent.displays_count, loaded.agent.displays_count)
    assert buffered.agent.displays_count.sum() > 0
    obs = world.observe(5)
    np.testing.assert_array_equal(buffered.act(obs), loaded.act(obs))


def test_buffered_agent_rejects_bad_every():
    with pytest.raises(ValueError, match="`update_every` must be at least 1; got 0"):
        agents.BufferedAgent(agents.make_agent("random", n_items=5, slate_size=2, l_init=1), 0)
