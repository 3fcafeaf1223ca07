"""Aggregation over seeds, the summary table, the files and the figure, on hand-made runs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from carousel_env.experiment import ExperimentResult, RunCurves, plot_regret
from carousel_env.experiment.plot import _style
from carousel_env.experiment.results import atomic_write_bytes, mean_band


def run(agent: str, seed: int, regret: list[float]) -> RunCurves:
    n = len(regret)
    return RunCurves.from_arrays(
        agent,
        seed,
        {
            "regret": regret,
            "expected_regret": [r - 1.0 for r in regret],
            "streams": [10] * n,
            "act_s": [0.5] * n,
            "update_s": [0.25] * n,
            "env_s": [0.125] * n,
            "cpu_s": [0.75] * n,
        },
    )


def test_curves_without_cpu_time_read_as_nan():
    """Checkpoints written before CPU time was recorded still load (and resume)."""
    arrays = {name: [1.0, 2.0] for name in ("regret", "expected_regret", "act_s")}
    arrays.update(streams=[3, 4], update_s=[0.1, 0.1], env_s=[0.2, 0.2])
    curves = RunCurves.from_arrays("a", 0, arrays)
    assert np.isnan(curves.cpu_s).all() and curves.cpu_s.shape == (2,)
    np.testing.assert_array_equal(curves.cumulative_regret, [1.0, 3.0])


def test_unknown_cpu_time_is_written_as_json_null(tmp_path):
    arrays = {name: [1.0, 2.0] for name in ("regret", "expected_regret", "act_s")}
    arrays.update(streams=[3, 4], update_s=[0.1, 0.1], env_s=[0.2, 0.2])
    paths = ExperimentResult({}, {("a", 0): RunCurves.from_arrays("a", 0, arrays)}).write(tmp_path)
    data = json.loads(paths["json"].read_text())
    text = json.dumps(data)
    assert "NaN" not in text and "null" in text


@pytest.fixture
def result() -> ExperimentResult:
    runs = {
        ("a", 0): run("a", 0, [100.0, 100.0]),
        ("a", 1): run("a", 1, [120.0, 80.0]),
        ("a", 2): run("a", 2, [110.0, 130.0]),
        ("b-no-cascade", 0): run("b-no-cascade", 0, [1000.0, 2000.0]),
        ("b-no-cascade", 1): run("b-no-cascade", 1, [1000.0, 2000.0]),
        ("b-no-cascade", 2): run("b-no-cascade", 2, [1000.0, 2000.0]),
    }
    return ExperimentResult({"users": "synthetic", "users_per_round": 50}, runs)


def test_mean_band_by_hand():
    # Final cumulative regrets 200, 200, 240: mean 213.33, sd 23.094, t(0.975, 2) = 4.3027.
    mean, low, high = mean_band(np.array([[100.0, 200.0], [120.0, 200.0], [110.0, 240.0]]))
    assert mean[-1] == pytest.approx(640 / 3)
    assert (high[-1] - mean[-1]) == pytest.approx(4.302653 * 23.094011 / np.sqrt(3), rel=1e-6)
    assert mean[-1] - low[-1] == pytest.approx(high[-1] - mean[-1])
    mean, low, high = mean_band(np.array([[1.0, 2.0]]))
    assert low is None and high is None and mean.tolist() == [1.0, 2.0]


def test_summary_and_table(result):
    rows = {row["agent"]: row for row in result.summary()}
    assert rows["a"]["cumulative_regret"] == pytest.approx(640 / 3)
    assert rows["a"]["cumulative_expected_regret"] == pytest.approx(640 / 3 - 2)
    assert rows["a"]["seconds_per_round"] == pytest.approx(0.875)
    # Identical seeds: a band of width zero.
    assert rows["b-no-cascade"]["cumulative_regret_half_width"] == 0.0

    table = result.summary_table().splitlines()
    assert table[0].split() == [
        "agent", "cumulative", "regret", "expected", "regret", "s/round", "act", "s", "update", "s"
    ]  # fmt: skip
    assert re.fullmatch(r"a\s+213 ± 57\s+211 ± 57\s+0\.875\s+0\.500\s+0\.250", table[2])
    assert table[-1] == "after 2 rounds; mean over 3 seeds ± 95% Student-t half-width"


def test_runs_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same number of rounds"):
        ExperimentResult({}, {("a", 0): run("a", 0, [1.0]), ("a", 1): run("a", 1, [1.0, 2.0])})


def test_write_and_plot_from_the_written_file(result, tmp_path):
    paths = result.write(tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["agents"]["a"]["per_seed"]["1"]["cumulative_regret"] == [120.0, 200.0]
    assert paths["csv"].read_text().splitlines()[1] == "a,0,1,100.0,99.0,10,0.5,0.25,0.125,0.75"

    for source in (result, data, tmp_path, paths["json"]):
        png = plot_regret(source, tmp_path / "figure.png", curve="cumulative_expected_regret")
        assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="`curve` must be 'cumulative_regret' or"):
        plot_regret(result, tmp_path / "x.png", curve="streams")


def test_no_cascade_twins_share_the_colour_dashed():
    agents = ["random", "eps", "eps-no-cascade", "lonely-no-cascade"]
    assert _style("eps", agents) == ("C1", "-")
    assert _style("eps-no-cascade", agents) == ("C1", "--")
    assert _style("lonely-no-cascade", agents) == ("C2", "-")
    many = [f"agent{i}" for i in range(12)]
    assert _style("agent10", many) == ("C0", "-.")


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    atomic_write_bytes(path, b"old")

    def disk_full(descriptor: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("carousel_env.experiment.results.os.fsync", disk_full)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
