"""``kill -9`` in the middle of ``carousel-env run``: finished rounds survive, resume is exact."""

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


@pytest.mark.skipif(sys.platform != "linux", reason="kill -9 of a process tree, Linux")
def test_kill_9_then_resume_gives_the_uninterrupted_curves(tmp_path, capsys):
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "carousel_env.cli", "run", *ARGS, "--out", str(killed)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while min(rounds_played(killed)) < 3 and process.poll() is None:
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    at_kill = rounds_played(killed)
    assert min(at_kill) >= 3 and max(at_kill) < ROUNDS, f"killed too late: {at_kill}"
    time.sleep(0.5)
    # The children died with their parent: nothing advances after the kill.
    assert rounds_played(killed) == at_kill
    assert not (killed / "results.json").exists()

    assert main(["run", *ARGS, "--out", str(killed), "--resume"]) == 0
    assert main(["run", *ARGS, "--out", str(tmp_path / "straight")]) == 0
    assert curves(killed) == curves(tmp_path / "straight")
