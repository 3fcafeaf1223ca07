"""The example script runs from any folder on a tiny budget and prints its table."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "run_paper_experiment.py"
TINY = ["--rounds", "2", "--users-per-round", "200", "--n-users", "2000"]


def load_example():
    spec = importlib.util.spec_from_file_location("run_paper_experiment", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_prints_a_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    example = load_example()
    out = tmp_path / "out"
    argv = ["--agents", "random,ts-seg-pessimistic", "--out", str(out), "--jobs", "1", *TINY]
    assert example.main(argv) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].split() == ["agent", "cumulative", "regret", "paper", "(real", "users)"]
    assert lines[1].split()[0] == "random" and lines[2].split()[0] == "ts-seg-pessimistic"
    assert lines[1].split()[-1] == "-"  # no paper figure to compare with on a tiny budget
    assert (out / "regret.png").exists() and (out / "results.json").exists()


def test_example_runs_as_a_script_from_another_folder(tmp_path):
    command = [sys.executable, str(EXAMPLE), "--agents", "random", "--out", "o", *TINY]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[0] == "random"
    assert (tmp_path / "o" / "results.json").exists()
