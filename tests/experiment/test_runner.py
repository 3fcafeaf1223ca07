"""The runner: common random numbers, regret accounting, resume, parallel runs, outputs."""

from __future__ import annotations

import csv
import json
import pickle
from typing import Any

import numpy as np
import pytest

from carousel_env.experiment import RunFailedError, agent_seed, run_experiment
from carousel_env.experiment.results import CSV_COLUMNS
from carousel_env.experiment.runner import checkpoint_path
from carousel_env.vector_env import CarouselVectorEnv

from .helpers import TinyAgent, tiny_factory

SMALL = {"users_per_round": 300, "agent_factory": tiny_factory, "plot": False}


def curves_of(out) -> dict[tuple[str, str], dict[str, list]]:
    """The per-seed curves of results.json without the timings."""
    data = json.loads((out / "results.json").read_text())
    return {
        (agent, seed): {key: curves[key] for key in ("cumulative_regret", "streams")}
        | {"cumulative_expected_regret": curves["cumulative_expected_regret"]}
        for agent, entry in data["agents"].items()
        for seed, curves in entry["per_seed"].items()
    }


class RecordingAgent(TinyAgent):
    """A TinyAgent that logs the users it is shown, round by round."""

    seen: dict[str, list[np.ndarray]] = {}

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        RecordingAgent.seen.setdefault(self.name, []).append(observation["features"].copy())
        return super().act(observation)


class FixedAgent(TinyAgent):
    """Always the same slate (items 0..L-1) for everyone: no randomness of its own."""

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        n = observation["segment"].shape[0]
        return np.tile(np.arange(self.slate_size, dtype=np.int64), (n, 1))


def test_common_random_numbers_same_users_for_every_agent(population, tmp_path):
    RecordingAgent.seen = {}
    run_experiment(
        ["random", "greedy"],
        rounds=4,
        seeds=[5],
        users=population,
        out=tmp_path / "out",
        jobs=1,
        **{**SMALL, "agent_factory": lambda name, **kw: RecordingAgent(name, **kw)},
    )
    random_users, greedy_users = RecordingAgent.seen["random"], RecordingAgent.seen["greedy"]
    assert len(random_users) == len(greedy_users) == 4
    for round_random, round_greedy in zip(random_users, greedy_users, strict=True):
        np.testing.assert_array_equal(round_random, round_greedy)
    # Successive rounds draw new users (300 of 2,000: equal rounds would be a bug).
    assert not np.array_equal(random_users[0], random_users[1])


@pytest.mark.parametrize("jobs", [1, 2], ids=["in-process", "two-processes"])
def test_common_random_numbers_same_clicks_for_the_same_slates(population, tmp_path, jobs):
    # Two agents that show the same slates must meet the same click uniforms, hence get
    # exactly the same streams, whatever process they run in.
    run_experiment(
        ["fixed-a", "fixed-b"],
        rounds=3,
        seeds=[0, 1],
        users=population,
        out=tmp_path / "out",
        jobs=jobs,
        **{**SMALL, "agent_factory": lambda name, **kw: FixedAgent(name, **kw)},
    )
    curves = curves_of(tmp_path / "out")
    for seed in ("0", "1"):
        assert curves["fixed-a", seed] == curves["fixed-b", seed]
    assert curves["fixed-a", "0"] != curves["fixed-a", "1"]


def test_regret_is_optimal_minus_realised_streams(population, tmp_path):
    # Replay the run by hand on a fresh env: same seeds, same agent, same accounting.
    result = run_experiment(
        "greedy", rounds=3, seeds=[7], users=population, out=tmp_path / "out", **SMALL
    )
    env = CarouselVectorEnv(num_envs=300, users=population, max_episode_steps=None)
    agent = TinyAgent(
        "greedy", n_items=env.sim.n_items, slate_size=12, seed=agent_seed(7, "greedy")
    )
    observation, _ = env.reset(seed=7)
    regret, expected, streams = [], [], []
    for _ in range(3):
        slates = agent.act(observation)
        next_observation, rewards, _, _, info = env.step(slates)
        agent.update(observation, slates, info["streams"])
        regret.append(info["optimal_reward"].sum() - rewards.sum())
        expected.append(info["optimal_reward"].sum() - info["expected_reward"].sum())
        streams.append(int(info["streams"].sum()))
        observation = next_observation
    run = result.runs["greedy", 7]
    np.testing.assert_array_equal(run.cumulative_regret, np.cumsum(regret))
    np.testing.assert_array_equal(run.cumulative_expected_regret, np.cumsum(expected))
    np.testing.assert_array_equal(run.streams, streams)


@pytest.mark.parametrize("jobs", [1, 2], ids=["in-process", "two-processes"])
def test_resume_equals_uninterrupted(population, tmp_path, jobs):
    common = {"seeds": [0, 3], "users": population, "jobs": jobs, **SMALL}
    run_experiment(["random", "greedy"], rounds=6, out=tmp_path / "straight", **common)
    run_experiment(["random", "greedy"], rounds=3, out=tmp_path / "resumed", **common)
    first = curves_of(tmp_path / "resumed")
    assert all(len(curves["streams"]) == 3 for curves in first.values())
    run_experiment(["random", "greedy"], rounds=6, out=tmp_path / "resumed", resume=True, **common)

    assert curves_of(tmp_path / "resumed") == curves_of(tmp_path / "straight")
    for seed in (0, 3):
        for path in ("straight", "resumed"):
            state = pickle.loads(checkpoint_path(tmp_path / path, "greedy", seed).read_bytes())
            assert state["round"] == 6
        straight = pickle.loads(
            checkpoint_path(tmp_path / "straight", "greedy", seed).read_bytes()
        )
        np.testing.assert_array_equal(state["agent"]["streams"], straight["agent"]["streams"])
        assert state["env"]["bit_generator"] == straight["env"]["bit_generator"]


def crashing_factory(crash_round: int):
    """Agents that raise in ``update`` of round ``crash_round`` (a stand-in for a kill)."""

    class Crashing(TinyAgent):
        rounds = 0

        def update(self, observation: dict, slates: np.ndarray, streams: np.ndarray) -> None:
            self.rounds += 1
            if self.name == "greedy" and self.rounds == crash_round:
                raise RuntimeError("simulated crash")
            super().update(observation, slates, streams)

    def factory(name: str, **kwargs: Any) -> TinyAgent:
        return Crashing(name, **kwargs)

    return factory


@pytest.mark.parametrize(
    ("jobs", "error"),
    [(1, RuntimeError), (2, RunFailedError)],
    ids=["in-process", "two-processes"],
)
def test_crashed_run_keeps_finished_rounds_and_resumes_exactly(population, tmp_path, jobs, error):
    common = {"seeds": [1], "users": population, "jobs": jobs, **SMALL}
    run_experiment(["random", "greedy"], rounds=5, out=tmp_path / "straight", **common)
    crashing = {**common, "agent_factory": crashing_factory(crash_round=4)}
    with pytest.raises(error, match="simulated crash"):
        run_experiment(["random", "greedy"], rounds=5, out=tmp_path / "crashed", **crashing)

    state = pickle.loads(checkpoint_path(tmp_path / "crashed", "greedy", 1).read_bytes())
    assert state["round"] == 3
    assert len(state["curves"]["regret"]) == 3
    # What a kill in the middle of a write leaves (here, faked): resume removes it.
    stale = tmp_path / "crashed" / "checkpoints" / ".greedy--seed-1.pkl.x1y2.tmp"
    stale.write_bytes(b"half a pickle")

    run_experiment(["random", "greedy"], rounds=5, out=tmp_path / "crashed", resume=True, **common)
    assert curves_of(tmp_path / "crashed") == curves_of(tmp_path / "straight")
    assert not stale.exists()


def test_outputs_are_written_and_readable(population, tmp_path):
    from matplotlib import image

    out = tmp_path / "out"
    result = run_experiment(
        ["random", "greedy"],
        rounds=4,
        seeds=[0, 1, 2],
        users=population,
        out=out,
        **{**SMALL, "plot": True},
    )
    assert sorted(p.name for p in out.iterdir()) == [
        ".lock",
        "checkpoints",
        "config.json",
        "curves.csv",
        "regret.png",
        "results.json",
    ]

    data = json.loads((out / "results.json").read_text())
    assert set(data) == {"config", "rounds", "seeds", "band", "agents", "meta"}
    assert data["rounds"] == [1, 2, 3, 4]
    assert data["band"] == {"method": "student-t", "level": 0.95, "over": "seeds"}
    assert data["config"]["agents"] == ["random", "greedy"]
    assert list(data["agents"]) == ["random", "greedy"]
    entry = data["agents"]["greedy"]
    assert set(entry) == {
        "cumulative_regret",
        "cumulative_regret_band",
        "cumulative_expected_regret",
        "cumulative_expected_regret_band",
        "streams",
        "final",
        "timings",
        "per_seed",
    }
    assert set(entry["per_seed"]) == {"0", "1", "2"}
    assert set(entry["timings"]) == {
        "act_s_per_round",
        "update_s_per_round",
        "env_s_per_round",
        "cpu_s_per_round",
        "seconds_per_round",
    }
    per_seed = np.array([entry["per_seed"][s]["cumulative_regret"] for s in "012"])
    np.testing.assert_allclose(entry["cumulative_regret"], per_seed.mean(axis=0))
    assert entry["final"]["cumulative_regret"] == entry["cumulative_regret"][-1]

    with (out / "curves.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 2 * 3 * 4
    last = [r for r in rows if r["agent"] == "greedy" and r["seed"] == "2" and r["round"] == "4"]
    assert float(last[0]["cumulative_regret"]) == entry["per_seed"]["2"]["cumulative_regret"][-1]

    picture = image.imread(out / "regret.png")
    assert picture.ndim == 3 and picture.shape[0] > 200 and picture.shape[1] > 300
    assert "greedy" in result.summary_table()


def test_several_seeds_give_student_t_bands(population, tmp_path):
    from scipy import stats

    result = run_experiment(
        "greedy", rounds=3, seeds=[0, 1, 2, 3], users=population, out=tmp_path / "a", **SMALL
    )
    mean, low, high = result.curve("greedy")
    finals = np.array([result.runs["greedy", s].cumulative_regret[-1] for s in range(4)])
    # 95% Student-t interval with n - 1 = 3 degrees of freedom, worked out directly.
    half = stats.t.ppf(0.975, 3) * finals.std(ddof=1) / 2.0
    assert mean[-1] == pytest.approx(finals.mean())
    assert (high[-1] - mean[-1]) == pytest.approx(half)
    assert (mean[-1] - low[-1]) == pytest.approx(half)
    assert np.all(low <= mean) and np.all(mean <= high)

    single = run_experiment(
        "greedy", rounds=3, seeds=[0], users=population, out=tmp_path / "b", **SMALL
    )
    data = json.loads((tmp_path / "b" / "results.json").read_text())
    assert data["agents"]["greedy"]["cumulative_regret_band"] is None
    assert single.summary()[0]["cumulative_regret_half_width"] is None


def test_same_seed_same_curves_different_seed_different(population, tmp_path):
    for name, seeds in (("a", [4]), ("b", [4]), ("c", [9])):
        run_experiment(
            "greedy", rounds=3, seeds=seeds, users=population, out=tmp_path / name, **SMALL
        )
    a, b, c = (curves_of(tmp_path / name) for name in "abc")
    assert a == b
    assert a["greedy", "4"] != c["greedy", "9"]


def test_resume_of_a_finished_run_only_rewrites_the_outputs(population, tmp_path):
    common = {"seeds": [0], "users": population, **SMALL}
    run_experiment("greedy", rounds=3, out=tmp_path / "out", **common)
    before = curves_of(tmp_path / "out")
    result = run_experiment("greedy", rounds=3, out=tmp_path / "out", resume=True, **common)
    assert curves_of(tmp_path / "out") == before
    assert result.meta["resumed"] is True
