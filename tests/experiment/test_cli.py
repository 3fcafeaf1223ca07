"""``carousel-env run`` end to end, through ``carousel_env.cli.main``."""

from __future__ import annotations

import json
import re

import pytest

import agents
from carousel_env.cli import build_parser, main

TINY = ["--rounds", "2", "--users-per-round", "200", "--n-users", "2000", "--no-progress"]


def test_defaults_are_the_paper_experiment():
    args = build_parser().parse_args(["run"])
    assert args.agents == "paper"
    assert (args.rounds, args.users_per_round, args.seeds) == (100, 20_000, [0])
    assert (args.users, args.click_model, args.slate_size, args.l_init) == (
        "synthetic",
        "cascade",
        12,
        3,
    )
    assert args.feedback is None and args.out is None and not args.resume
    assert args.jobs is None and not args.no_plot


def test_run_writes_results_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["run", "--agents", "random,ts-seg-pessimistic", "--seeds", "0", "1", "--out", str(out)]
        + TINY
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert re.search(r"^random\s+[\d,]+ ± [\d,]+", printed, re.MULTILINE)
    assert "ts-seg-pessimistic" in printed and "mean over 2 seeds" in printed
    assert f"to {out}" in printed
    data = json.loads((out / "results.json").read_text())
    assert list(data["agents"]) == ["random", "ts-seg-pessimistic"]
    assert data["config"]["users_per_round"] == 200 and data["config"]["n_users"] == 2000
    assert (out / "regret.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "curves.csv").read_text().splitlines()) == 1 + 2 * 2 * 2


def test_run_then_resume_equals_a_straight_run(tmp_path, capsys):
    agents_arg = ["--agents", "epsilon-greedy-explore,ts-seg-naive", "--feedback", "paper"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["run", *agents_arg, "--out", str(straight), *TINY, "--rounds", "4"]) == 0
    assert main(["run", *agents_arg, "--out", str(resumed), *TINY, "--no-plot"]) == 0
    assert not (resumed / "regret.png").exists()
    assert (
        main(["run", *agents_arg, "--out", str(resumed), *TINY, "--rounds", "4", "--resume"]) == 0
    )

    def curves(out):
        data = json.loads((out / "results.json").read_text())
        return {
            agent: (entry["cumulative_regret"], entry["cumulative_expected_regret"])
            for agent, entry in data["agents"].items()
        }

    assert curves(resumed) == curves(straight)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--agents", "random,nope"],
            "unknown agent 'nope' in `agents`; valid names: " + ", ".join(agents.list_agents()),
        ),
        (["--rounds", "0"], "`rounds` must be at least 1; got 0"),
        (["--users-per-round", "-1"], "`users_per_round` must be at least 1; got -1"),
        (["--l-init", "5", "--slate-size", "4"], "`l_init` (5) must not exceed `slate_size` (4)"),
        (["--seeds", "1", "1"], "`seeds` must be distinct; got [1, 1]"),
        (["--jobs", "0"], "`jobs` must be an int of at least 1; got 0"),
        (["--resume"], "cannot resume: '{out}' holds no experiment (no config.json)"),
    ],
    ids=["unknown-agent", "rounds", "users", "l-init", "seeds", "jobs", "resume-nothing"],
)
def test_bad_arguments_exit_2_with_the_message(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    code = main(["run", "--agents", "random", "--out", str(out), *TINY, *extra])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("carousel-env run: error: ")
    assert message.format(out=out) in error
    assert not (out / "checkpoints").exists()


def test_existing_results_are_not_overwritten(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--agents", "random", "--out", str(out), *TINY]) == 0
    before = (out / "results.json").read_bytes()
    assert main(["run", "--agents", "random", "--out", str(out), *TINY]) == 2
    assert "is not empty; pass --resume" in capsys.readouterr().err
    assert (
        main(
            [
                "run",
                "--agents",
                "random",
                "--out",
                str(out),
                *TINY,
                "--resume",
                "--slate-size",
                "10",
            ]
        )
        == 2
    )
    assert "slate_size: 12 in the folder, 10 now" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before


def test_bad_choices_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--feedback", "code"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'code' (choose from" in capsys.readouterr().err


def test_run_accepts_the_sb3_agent_names(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    code = main(
        [
            "run",
            "--agents",
            "a2c,random",
            "--rounds",
            "2",
            "--users-per-round",
            "200",
            "--users",
            "synthetic",
            "--n-users",
            "500",
            "--jobs",
            "1",
            "--no-progress",
            "--no-plot",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    assert "a2c" in capsys.readouterr().out
