"""Bad arguments fail before any work, with a message that names the argument and the value."""

from __future__ import annotations

import re
import sys

import pytest

from carousel_env.experiment import ExperimentConfig, run_experiment
from carousel_env.experiment.config import resolve_agent_names

from .helpers import tiny_factory

SMALL = {"users_per_round": 100, "rounds": 2, "agent_factory": tiny_factory, "plot": False}

INVALID = [
    ({"rounds": 0}, ValueError, "`rounds` must be at least 1; got 0"),
    ({"rounds": -3}, ValueError, "`rounds` must be at least 1; got -3"),
    ({"rounds": 2.5}, TypeError, "`rounds` must be an int; got float 2.5"),
    ({"users_per_round": 0}, ValueError, "`users_per_round` must be at least 1; got 0"),
    ({"users_per_round": -5}, ValueError, "`users_per_round` must be at least 1; got -5"),
    ({"l_init": 5, "slate_size": 4}, ValueError, "`l_init` (5) must not exceed `slate_size` (4)"),
    ({"slate_size": 0}, ValueError, "`slate_size` must be at least 1; got 0"),
    ({"seeds": [-1]}, ValueError, "`seeds` must be non-negative ints; got -1 in [-1]"),
    ({"seeds": [1, 1]}, ValueError, "`seeds` must be distinct; got [1, 1]"),
    ({"seeds": []}, TypeError, "`seeds` must be an int or a non-empty sequence of ints; got []"),
    (
        {"click_model": "zigzag"},
        ValueError,
        "`click_model` must be one of ['cascade', 'swipe']; got 'zigzag'",
    ),
    (
        {"feedback": "code"},
        ValueError,
        "`feedback` must be one of ['paper', 'published-code'] or None (each agent's default); "
        "got 'code'",
    ),
    ({"swipe_probability": 1.5}, ValueError, "`swipe_probability` must be a number in [0, 1]"),
    ({"jobs": 0}, ValueError, "`jobs` must be an int of at least 1; got 0"),
    (
        {"users": "no/such/users.csv"},
        ValueError,
        "`users` must be one of ['synthetic', 'deezer-small', 'deezer'] or an existing file; "
        "got 'no/such/users.csv' (no such file)",
    ),
    (
        {"users": "deezer-small", "n_users": 10},
        ValueError,
        "`n_users` applies to users='synthetic' only; got users='deezer-small'",
    ),
    ({"n_users": 0}, ValueError, "`n_users` must be at least 1; got 0"),
    ({"population_seed": -2}, ValueError, "`population_seed` must be a non-negative int; got -2"),
]


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    INVALID,
    ids=[
        "rounds-zero",
        "rounds-negative",
        "rounds-float",
        "users-zero",
        "users-negative",
        "l-init-above-slate",
        "slate-zero",
        "seed-negative",
        "seeds-repeated",
        "seeds-empty",
        "click-model",
        "feedback",
        "swipe-probability",
        "jobs-zero",
        "users-missing-file",
        "n-users-not-synthetic",
        "n-users-zero",
        "population-seed",
    ],
)
def test_invalid_arguments_fail_before_any_work(tmp_path, overrides, error, message):
    out = tmp_path / "out"
    with pytest.raises(error, match=re.escape(message)):
        run_experiment("random", out=out, **{**SMALL, **overrides})
    assert not out.exists()


def test_unknown_agent_lists_the_valid_names():
    with pytest.raises(ValueError, match=re.escape("unknown agent 'ucb' in `agents`; valid")):
        resolve_agent_names("random,ucb", known=["random", "greedy"])
    with pytest.raises(ValueError, match=re.escape("valid names: random, greedy")):
        resolve_agent_names(["ucb"], known=["random", "greedy"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "`agents` must name at least one agent, with no empty names; got ''"),
        ("random,,greedy", "`agents` must name at least one agent, with no empty names"),
        ("random,random", "`agents` names 'random' more than once; got 'random,random'"),
    ],
    ids=["empty", "empty-name", "repeated"],
)
def test_bad_agent_lists(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_agent_names(spec, known=["random", "greedy"])


def test_agent_names_are_split_and_kept_in_order():
    assert resolve_agent_names(" greedy, random", known=["random", "greedy"]) == (
        "greedy",
        "random",
    )
    assert resolve_agent_names(["a", "b"], known=()) == ("a", "b")


def test_out_must_be_a_folder(population, tmp_path):
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(ValueError, match=re.escape(f"`out` must be a folder; got '{file}'")):
        run_experiment("random", users=population, out=file, **SMALL)


def test_unwritable_out_is_refused(population, tmp_path):
    # A folder below a regular file can never be created (even by root).
    (tmp_path / "file.txt").write_text("x")
    out = tmp_path / "file.txt" / "sub"
    with pytest.raises(ValueError, match=re.escape(f"cannot write to output folder '{out}'")):
        run_experiment("random", users=population, out=out, **SMALL)


def test_non_empty_out_without_resume_is_refused(population, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=re.escape(f"output folder '{out}' is not empty")):
        run_experiment("random", users=population, out=out, **SMALL)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_an_empty_existing_out_is_used(population, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    run_experiment("random", users=population, out=out, **SMALL)
    assert (out / "results.json").exists()


def test_resume_needs_an_experiment(population, tmp_path):
    with pytest.raises(ValueError, match="cannot resume: .* holds no experiment"):
        run_experiment("random", users=population, out=tmp_path, resume=True, **SMALL)


@pytest.mark.parametrize(
    ("overrides", "difference"),
    [
        ({"slate_size": 10}, "slate_size: 12 in the folder, 10 now"),
        ({"seeds": [0, 1]}, "seeds: [0] in the folder, [0, 1] now"),
        (
            {"agents": "random,greedy"},
            "agents: ['random'] in the folder, ['random', 'greedy'] now",
        ),
        ({"users_per_round": 99}, "users_per_round: 100 in the folder, 99 now"),
        ({"feedback": "paper"}, "feedback: None in the folder, 'paper' now"),
    ],
    ids=["slate-size", "seeds", "agents", "users-per-round", "feedback"],
)
def test_resume_with_another_config_is_refused(population, tmp_path, overrides, difference):
    out = tmp_path / "out"
    run_experiment("random", users=population, out=out, seeds=[0], **SMALL)
    arguments = {"agents": "random", "users": population, "out": out, "seeds": [0], **SMALL}
    with pytest.raises(ValueError, match=re.escape(difference)):
        run_experiment(resume=True, **{**arguments, **overrides})


def test_resume_with_another_population_is_refused(population, tmp_path):
    from carousel_env.data import make_synthetic_population

    out = tmp_path / "out"
    run_experiment("random", users=population, out=out, **SMALL)
    other = make_synthetic_population(n_users=2000, n_segments=10, seed=4)
    with pytest.raises(ValueError, match="population fingerprint mismatch"):
        run_experiment("random", users=other, out=out, resume=True, **SMALL)


def test_resume_with_fewer_rounds_than_played_is_refused(population, tmp_path):
    out = tmp_path / "out"
    run_experiment("random", users=population, out=out, **{**SMALL, "rounds": 3})
    with pytest.raises(ValueError, match="has already played 3 rounds"):
        run_experiment("random", users=population, out=out, resume=True, **SMALL)


def test_config_is_frozen_and_describes_itself(population):
    config = ExperimentConfig(agents=("a", "b"), seeds=(0, 1), users=population)
    assert config.n_runs == 4
    assert config.runs() == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    assert config.to_dict()["users"] == "synthetic"
    with pytest.raises(AttributeError):
        config.rounds = 3  # type: ignore[misc]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks")
def test_a_folder_in_use_by_another_run_is_refused(population, tmp_path):
    import fcntl

    out = tmp_path / "out"
    run_experiment("random", users=population, out=out, **SMALL)
    with open(out / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running experiment holds it
        with pytest.raises(ValueError, match="is in use by another carousel-env run"):
            run_experiment("random", users=population, out=out, resume=True, **SMALL)
    run_experiment("random", users=population, out=out, resume=True, **SMALL)
