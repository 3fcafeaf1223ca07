"""``kill -9`` or Ctrl-C during ``carousel-env run``: finished rounds survive, resume is exact."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

from carousel_env.cli import main
from carousel_env.experiment.runner import checkpoint_path

AGENTS = ("random", "epsilon-greedy-explore")
ROUNDS = 100
ARGS = [
    "--agents",
    ",".join(AGENTS),
    "--users-per-round",
    "500",
    "--n-users",
    "2000",
    "--rounds",
    str(ROUNDS),
    "--no-progress",
    "--no-plot",
    "--jobs",
    "2",
]


def rounds_played(out) -> list[int]:
    rounds = []
    for agent in AGENTS:
        path = checkpoint_path(out, agent, 0)
        rounds.append(pickle.loads(path.read_bytes())["round"] if path.exists() else 0)
    return rounds


def curves(out) -> dict:
    data = json.loads((out / "results.json").read_text())
    return {
        agent: (entry["cumulative_regret"], entry["cumulative_expected_regret"], entry["streams"])
        for agent, entry in data["agents"].items()
    }


@pytest.mark.skipif(sys.platform != "linux", reason="signals to a process tree, Linux")
@pytest.mark.parametrize(
    ("how", "exit_code"),
    [("kill -9", -signal.SIGKILL), ("ctrl-c", 130)],
    ids=["kill-9-parent", "ctrl-c-whole-group"],
)
def test_stopped_run_then_resume_gives_the_uninterrupted_curves(tmp_path, how, exit_code):
    stopped = tmp_path / "stopped"
    command = [sys.executable, "-m", "carousel_env.cli", "run", *ARGS, "--out", str(stopped)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while min(rounds_played(stopped)) < 3 and process.poll() is None:
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.01)
    if how == "kill -9":
        os.kill(process.pid, signal.SIGKILL)  # the parent only, as `kill -9 PID` does
    else:
        os.killpg(process.pid, signal.SIGINT)  # the whole group, as Ctrl-C in a terminal
    _, error = process.communicate(timeout=60)

    assert process.returncode == exit_code
    if how == "ctrl-c":
        assert "interrupted; every finished round is kept in" in error.decode()
        assert "--resume --out" in error.decode()
    at_stop = rounds_played(stopped)
    assert min(at_stop) >= 3 and max(at_stop) < ROUNDS, f"stopped too late: {at_stop}"
    time.sleep(0.5)
    # The children died with their parent: nothing advances after the stop.
    assert rounds_played(stopped) == at_stop
    assert not (stopped / "results.json").exists()

    assert main(["run", *ARGS, "--out", str(stopped), "--resume"]) == 0
    assert main(["run", *ARGS, "--out", str(tmp_path / "straight")]) == 0
    assert curves(stopped) == curves(tmp_path / "straight")
