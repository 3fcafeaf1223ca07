"""Registry, observation forms, and the invalid-input table."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

import agents


def test_presets_in_paper_order():
    assert len(agents.PAPER_PRESETS) == 12
    assert agents.list_agents()[:12] == list(agents.PAPER_PRESETS)
    assert {"linucb", "cascade-kl-ucb", "lin-greedy"} <= set(agents.list_agents())


PRESET_PARAMS = {
    "etc-seg-explore": (agents.ExploreThenCommitSegment, {"m": 100, "cascade": True}),
    "etc-seg-exploit": (agents.ExploreThenCommitSegment, {"m": 20}),
    "epsilon-greedy-explore": (agents.EpsilonGreedySegment, {"epsilon": 0.1}),
    "epsilon-greedy-exploit": (agents.EpsilonGreedySegment, {"epsilon": 0.01}),
    "kl-ucb-seg": (agents.KLUCBSegment, {"precision": 1e-6}),
    "ts-seg-naive": (agents.ThompsonSegment, {"prior_alpha": 1.0, "prior_beta": 1.0}),
    "ts-seg-pessimistic": (agents.ThompsonSegment, {"prior_alpha": 1.0, "prior_beta": 99.0}),
    "ts-lin-naive": (agents.LinearThompson, {"prior_bias_mean": 0.0, "lbfgs_steps": 15}),
    "ts-lin-pessimistic": (agents.LinearThompson, {"prior_bias_mean": -5.0}),
    "epsilon-greedy-explore-no-cascade": (
        agents.EpsilonGreedySegment,
        {"epsilon": 0.1, "cascade": False},
    ),
    "ts-seg-pessimistic-no-cascade": (
        agents.ThompsonSegment,
        {"prior_beta": 99.0, "cascade": False},
    ),
}


@pytest.mark.parametrize("name", PRESET_PARAMS, ids=PRESET_PARAMS)
def test_preset_params(name):
    cls, params = PRESET_PARAMS[name]
    agent = agents.make_agent(name, n_items=30)
    assert type(agent) is cls and agent.name == name
    assert agent.feedback == "published-code"
    for key, value in params.items():
        assert agent.params[key] == value


def test_overrides_and_feedback():
    agent = agents.make_agent("epsilon-greedy-explore", n_items=30, epsilon=0.3, feedback="paper")
    assert agent.epsilon == 0.3 and agent.feedback == "paper"


def test_register_agent():
    def factory(**kwargs):
        return agents.RandomAgent(**kwargs)

    agents.register_agent("test-random-copy", factory, overwrite=True)
    assert agents.make_agent("test-random-copy", n_items=10, slate_size=3).slate_size == 3
    with pytest.raises(ValueError, match="already registered"):
        agents.register_agent("test-random-copy", factory)


def test_lazy_sb3_raises_import_error(monkeypatch):
    monkeypatch.delitem(agents.registry._REGISTRY, "ppo", raising=False)
    monkeypatch.setitem(sys.modules, "agents.sb3", None)  # as if torch/SB3 were missing
    with pytest.raises(ImportError):
        agents.make_agent("ppo", n_items=10)


def test_single_user_form():
    agent = agents.make_agent("ts-seg-pessimistic", n_items=30, slate_size=4, n_segments=2)
    slate = agent.act({"features": np.ones(97, np.float32), "segment": np.int64(1)})
    assert slate.shape == (4,) and slate.dtype == np.int64 and len(set(slate)) == 4
    agent.update({"segment": 1}, slate, np.array([0, 1, 0, 0], np.int8))
    assert agent.displays_count[1].sum() == 2 and agent.streams_count[1].sum() == 1


def test_batched_form_dtype():
    agent = agents.make_agent("random", n_items=30, slate_size=5)
    slates = agent.act({"segment": np.zeros(7, int), "features": np.ones((7, 97))})
    assert slates.shape == (7, 5) and slates.dtype == np.int64
    assert all(len(set(row)) == 5 for row in slates)


def _make(name, **kw):
    return lambda: agents.make_agent(name, **{"n_items": 10, "slate_size": 3, **kw})


OBS = {"segment": np.array([0, 1]), "features": np.ones((2, 97), np.float32)}
GOOD = np.array([[0, 1, 2], [3, 4, 5]])
ZEROS = np.zeros((2, 3), np.int8)

INVALID = {
    "unknown name": (
        _make("nope"),
        ValueError,
        "unknown agent 'nope'; valid names: random, etc-seg-explore",
    ),
    "unknown override": (
        _make("kl-ucb-seg", epsilon=0.1),
        TypeError,
        "agent 'kl-ucb-seg' takes no parameter 'epsilon'",
    ),
    "l_init > slate_size": (
        _make("random", l_init=4),
        ValueError,
        "`l_init` must be at most `slate_size` (3); got l_init=4",
    ),
    "slate_size > n_items": (
        _make("random", slate_size=11),
        ValueError,
        "`slate_size` must be at most `n_items` (10): a slate holds distinct items; got "
        "slate_size=11",
    ),
    "epsilon > 1": (
        _make("epsilon-greedy-explore", epsilon=1.5),
        ValueError,
        "`epsilon` must be at most 1.0; got 1.5",
    ),
    "epsilon < 0": (
        _make("epsilon-greedy-explore", epsilon=-0.1),
        ValueError,
        "`epsilon` must be at least 0.0; got -0.1",
    ),
    "unknown feedback": (
        _make("ts-seg-naive", feedback="book"),
        ValueError,
        "`feedback` must be one of 'paper', 'published-code'; got 'book'",
    ),
    "n_items not int": (
        _make("random", n_items=10.5),
        TypeError,
        "`n_items` must be an int; got 10.5",
    ),
    "bad prior": (
        _make("ts-seg-naive", prior_beta=0),
        ValueError,
        "`prior_beta` must be greater than 0.0; got 0.0",
    ),
}


@pytest.mark.parametrize("build, error, message", INVALID.values(), ids=INVALID.keys())
def test_invalid_construction(build, error, message):
    with pytest.raises(error, match=re.escape(message)):
        build()


CALLS = {
    "segment out of range": (
        lambda a: a.act({"segment": np.array([0, 5])}),
        "observation['segment'] must lie in [0, 2) (n_segments=2); got values from 0 to 5",
    ),
    "segment 2-D": (
        lambda a: a.act({"segment": np.zeros((2, 2), int)}),
        "observation['segment'] must be an int or a 1-D array (n_users,); got shape (2, 2)",
    ),
    "missing key": (
        lambda a: a.act({"features": np.ones((2, 97))}),
        "`observation` lacks ['segment']",
    ),
    "slates bad shape": (
        lambda a: a.update(OBS, GOOD[:, :2], ZEROS),
        "`slates` must have shape (2, 3); got shape (2, 2)",
    ),
    "slates out of range": (
        lambda a: a.update(OBS, GOOD + 5, ZEROS),
        "`slates` must hold item indices in [0, 10); got values from 5 to 10",
    ),
    "streams bad shape": (
        lambda a: a.update(OBS, GOOD, ZEROS[:1]),
        "`streams` must have the shape of `slates` (2, 3); got shape (1, 3)",
    ),
    "streams not 0/1": (
        lambda a: a.update(OBS, GOOD, ZEROS + 2),
        "`streams` must hold 0/1 stream indicators; got dtype int8 with values [2]",
    ),
}


@pytest.mark.parametrize("call, message", CALLS.values(), ids=CALLS.keys())
def test_invalid_calls(call, message):
    agent = agents.make_agent("kl-ucb-seg", n_items=10, slate_size=3, n_segments=2)
    with pytest.raises(ValueError, match=re.escape(message)):
        call(agent)


def test_linear_feature_width_checked():
    agent = agents.make_agent("ts-lin-naive", n_items=10, slate_size=3, n_features=5)
    with pytest.raises(ValueError, match=re.escape("must have 5 columns (n_features); got")):
        agent.act({"features": np.ones((2, 97), np.float32), "segment": np.zeros(2, int)})
