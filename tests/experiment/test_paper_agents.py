"""The twelve paper presets through the runner: resumed runs equal uninterrupted ones."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import agents
from carousel_env.experiment import run_experiment
from carousel_env.experiment.runner import checkpoint_path


def curves(out) -> dict:
    data = json.loads((out / "results.json").read_text())
    return {
        (agent, seed): (
            run["cumulative_regret"],
            run["cumulative_expected_regret"],
            run["streams"],
        )
        for agent, entry in data["agents"].items()
        for seed, run in entry["per_seed"].items()
    }


@pytest.mark.parametrize("feedback", [None, "paper"], ids=["default-feedback", "paper-feedback"])
def test_every_preset_resumes_bit_for_bit(population, tmp_path, feedback):
    common = {
        "users": population,
        "users_per_round": 300,
        "seeds": [1],
        "feedback": feedback,
        "plot": False,
        "jobs": 2,
    }
    # The linear Thompson agents refit 862 regressions a round: few rounds keep this quick.
    run_experiment("paper", rounds=3, out=tmp_path / "straight", **common)
    run_experiment("paper", rounds=1, out=tmp_path / "resumed", **common)
    run_experiment("paper", rounds=3, out=tmp_path / "resumed", resume=True, **common)

    straight, resumed = curves(tmp_path / "straight"), curves(tmp_path / "resumed")
    assert set(straight) == {(name, "1") for name in agents.PAPER_PRESETS}
    for key, value in straight.items():
        assert resumed[key] == value, key
    for name in agents.PAPER_PRESETS:
        a, b = (
            pickle.loads(checkpoint_path(tmp_path / folder, name, 1).read_bytes())["agent"]
            for folder in ("straight", "resumed")
        )
        assert a["rng"] == b["rng"], name
        for key in a["state"]:
            np.testing.assert_array_equal(a["state"][key], b["state"][key], err_msg=name)


def test_agents_get_distinct_seeds_derived_from_the_run_seed(population, tmp_path):
    run_experiment(
        "random,ts-seg-naive",
        rounds=1,
        users_per_round=50,
        seeds=[0, 1],
        users=population,
        out=tmp_path / "out",
        plot=False,
        jobs=1,
    )
    seeds = {
        (name, seed): pickle.loads(checkpoint_path(tmp_path / "out", name, seed).read_bytes())[
            "agent"
        ]["params"]["seed"]
        for name in ("random", "ts-seg-naive")
        for seed in (0, 1)
    }
    assert len(set(seeds.values())) == 4
    from carousel_env.experiment import agent_seed

    assert seeds["random", 1] == agent_seed(1, "random")
