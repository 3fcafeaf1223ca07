"""Regret curves of an experiment: per run, aggregated over seeds, and written to disk.

Files written in the output folder (each atomically: a temporary file, then
``os.replace``):

- ``results.json``: ``config``, ``rounds`` (1..R), ``band`` (how the bands are made) and
  ``agents``, a mapping from agent name to ``cumulative_regret`` (per-round cumulative
  regret, mean over seeds), ``cumulative_regret_band`` (``{"low": [...], "high": [...]}``,
  or null with one seed), ``cumulative_expected_regret`` and its band, ``streams`` (mean
  streams per round), ``final`` (the last round's figures), ``timings`` (mean seconds per
  round of ``act``, ``update`` and the environment step) and ``per_seed`` (every seed's
  curves and timings, keyed by the seed as a string).
- ``curves.csv``: one row per (agent, seed, round).

Bands are 95% Student-t confidence intervals of the mean over seeds, round by round:
``mean ± t(0.975, n - 1) · sd / sqrt(n)`` with the sample standard deviation.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BAND_LEVEL",
    "CSV_COLUMNS",
    "ExperimentResult",
    "RunCurves",
    "atomic_write_bytes",
    "mean_band",
]

#: Confidence level of the bands.
BAND_LEVEL = 0.95

#: Columns of ``curves.csv``.
CSV_COLUMNS = (
    "agent",
    "seed",
    "round",
    "cumulative_regret",
    "cumulative_expected_regret",
    "streams",
    "act_s",
    "update_s",
    "env_s",
    "cpu_s",
)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new, never half.

    The bytes go to a temporary file in the same folder, are flushed to disk, then the
    temporary file replaces ``path`` (``os.replace`` is atomic on POSIX and Windows).
    """
    path = Path(path)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def mean_band(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Mean over seeds and its 95% Student-t confidence band, round by round.

    Args:
        curves: float array, shape (n_seeds, n_rounds).

    Returns:
        ``(mean, low, high)``, each float64 (n_rounds,); ``low`` and ``high`` are None with a
        single seed (no spread to estimate).
    """
    curves = np.asarray(curves, dtype=np.float64)
    mean = curves.mean(axis=0)
    n = curves.shape[0]
    if n < 2:
        return mean, None, None
    from scipy import stats

    half = stats.t.ppf(0.5 + BAND_LEVEL / 2, n - 1) * curves.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class RunCurves:
    """The record of one (agent, seed) run, one entry per round played.

    Attributes:
        agent: the agent's name.
        seed: the run seed.
        regret: float64 (rounds,), per-round regret: sum of the users' optimal expected
            rewards minus the number of users who streamed (the paper's regret).
        expected_regret: float64 (rounds,), sum of optimal minus sum of expected rewards.
        streams: int64 (rounds,), users who streamed in the round.
        act_s: float64 (rounds,), seconds in ``agent.act``.
        update_s: float64 (rounds,), seconds in ``agent.update``.
        env_s: float64 (rounds,), seconds in ``env.step``.
        cpu_s: float64 (rounds,), CPU seconds of the process over the whole round (act,
            step and update): unlike the wall-clock times above, it hardly grows when
            other programs compete for the cores.
    """

    agent: str
    seed: int
    regret: np.ndarray
    expected_regret: np.ndarray
    streams: np.ndarray
    act_s: np.ndarray
    update_s: np.ndarray
    env_s: np.ndarray
    cpu_s: np.ndarray

    @property
    def n_rounds(self) -> int:
        return int(self.regret.shape[0])

    @property
    def cumulative_regret(self) -> np.ndarray:
        return np.cumsum(self.regret)

    @property
    def cumulative_expected_regret(self) -> np.ndarray:
        return np.cumsum(self.expected_regret)

    @classmethod
    def from_arrays(cls, agent: str, seed: int, arrays: Mapping[str, np.ndarray]) -> RunCurves:
        """Curves from per-round arrays; ``cpu_s`` may be missing (checkpoints written
        before CPU time was recorded), and is then NaN."""
        regret = np.asarray(arrays["regret"], dtype=np.float64)
        cpu_s = arrays.get("cpu_s")
        return cls(
            agent=agent,
            seed=seed,
            regret=regret,
            expected_regret=np.asarray(arrays["expected_regret"], dtype=np.float64),
            streams=np.asarray(arrays["streams"], dtype=np.int64),
            act_s=np.asarray(arrays["act_s"], dtype=np.float64),
            update_s=np.asarray(arrays["update_s"], dtype=np.float64),
            env_s=np.asarray(arrays["env_s"], dtype=np.float64),
            cpu_s=(
                np.full(regret.shape, np.nan)
                if cpu_s is None
                else np.asarray(cpu_s, dtype=np.float64)
            ),
        )

    def truncated(self, rounds: int) -> RunCurves:
        """The first ``rounds`` rounds of this run."""
        fields = ("regret", "expected_regret", "streams", "act_s", "update_s", "env_s", "cpu_s")
        return RunCurves.from_arrays(
            self.agent, self.seed, {name: getattr(self, name)[:rounds] for name in fields}
        )

    def to_dict(self) -> dict[str, list]:
        return {
            "cumulative_regret": self.cumulative_regret.tolist(),
            "cumulative_expected_regret": self.cumulative_expected_regret.tolist(),
            "streams": self.streams.tolist(),
            "act_s": self.act_s.tolist(),
            "update_s": self.update_s.tolist(),
            "env_s": self.env_s.tolist(),
            "cpu_s": self.cpu_s.tolist(),
        }


def _nan_to_none(value: Any) -> Any:
    """``value`` (nested dicts and lists) with NaN floats as None, i.e. JSON ``null``: CPU
    times of runs resumed from checkpoints that predate them are unknown."""
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(item) for item in value]
    return value


def _band_dict(low: np.ndarray | None, high: np.ndarray | None) -> dict[str, list] | None:
    return None if low is None else {"low": low.tolist(), "high": high.tolist()}


def _half_width(low: np.ndarray | None, high: np.ndarray | None) -> float | None:
    return None if low is None else float((high[-1] - low[-1]) / 2)


class ExperimentResult:
    """All runs of an experiment, with their means and bands over seeds.

    Args:
        config: the experiment's JSON-ready config (``ExperimentConfig.to_dict()``).
        runs: one :class:`RunCurves` per (agent, seed), all of the same length.
        out: the folder the files were written to, if any.
        meta: free-form facts about the run (wall time, versions, population fingerprint).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        runs: Mapping[tuple[str, int], RunCurves],
        out: Path | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        lengths = {run.n_rounds for run in runs.values()}
        if len(lengths) != 1:
            raise ValueError(f"every run must have the same number of rounds; got {lengths}")
        self.config = dict(config)
        self.runs = dict(runs)
        self.out = out
        self.meta = dict(meta or {})
        self.n_rounds = lengths.pop()
        self.agents = list(dict.fromkeys(agent for agent, _ in self.runs))
        self.seeds = list(dict.fromkeys(seed for _, seed in self.runs))

    def _matrix(self, agent: str, name: str) -> np.ndarray:
        """Stack one curve of ``agent`` over seeds: shape (n_seeds, n_rounds)."""
        return np.stack([getattr(self.runs[agent, seed], name) for seed in self.seeds])

    def curve(
        self, agent: str, name: str = "cumulative_regret"
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Mean over seeds and 95% band of a curve: see :func:`mean_band`.

        Args:
            agent: an agent of the experiment.
            name: ``"cumulative_regret"``, ``"cumulative_expected_regret"`` or ``"streams"``.
        """
        if agent not in self.agents:
            raise ValueError(f"`agent` must be one of {self.agents}; got {agent!r}")
        return mean_band(self._matrix(agent, name))

    def timings(self, agent: str) -> dict[str, float]:
        """Mean seconds per round of ``act``, ``update``, the env step, their sum, and CPU."""
        act = float(self._matrix(agent, "act_s").mean())
        update = float(self._matrix(agent, "update_s").mean())
        env = float(self._matrix(agent, "env_s").mean())
        cpu = float(self._matrix(agent, "cpu_s").mean())
        return {
            "act_s_per_round": act,
            "update_s_per_round": update,
            "env_s_per_round": env,
            "cpu_s_per_round": cpu,
            "seconds_per_round": act + update + env,
        }

    def summary(self) -> list[dict[str, Any]]:
        """One row per agent: final cumulative regrets (mean, 95% half-width) and timings."""
        rows = []
        for agent in self.agents:
            regret, low, high = self.curve(agent, "cumulative_regret")
            expected, e_low, e_high = self.curve(agent, "cumulative_expected_regret")
            rows.append(
                {
                    "agent": agent,
                    "cumulative_regret": float(regret[-1]),
                    "cumulative_regret_half_width": _half_width(low, high),
                    "cumulative_expected_regret": float(expected[-1]),
                    "cumulative_expected_regret_half_width": _half_width(e_low, e_high),
                    **self.timings(agent),
                }
            )
        return rows

    def summary_table(self) -> str:
        """The summary as aligned text, for a terminal."""

        def spread(value: float, half: float | None) -> str:
            return f"{value:,.0f}" + ("" if half is None else f" ± {half:,.0f}")

        header = ("agent", "cumulative regret", "expected regret", "s/round", "act s", "update s")
        lines = [
            (
                row["agent"],
                spread(row["cumulative_regret"], row["cumulative_regret_half_width"]),
                spread(
                    row["cumulative_expected_regret"],
                    row["cumulative_expected_regret_half_width"],
                ),
                f"{row['seconds_per_round']:.3f}",
                f"{row['act_s_per_round']:.3f}",
                f"{row['update_s_per_round']:.3f}",
            )
            for row in self.summary()
        ]
        widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]

        def fmt(line: tuple[str, ...]) -> str:
            cells = [line[0].ljust(widths[0])] + [
                cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)
            ]
            return "  ".join(cells)

        seeds = len(self.seeds)
        note = (
            f"after {self.n_rounds} rounds; mean over {seeds} seeds ± 95% Student-t half-width"
            if seeds > 1
            else f"after {self.n_rounds} rounds; one seed"
        )
        rule = "-" * len(fmt(header))
        return "\n".join([fmt(header), rule, *map(fmt, lines), rule, note])

    def to_dict(self) -> dict[str, Any]:
        """The content of ``results.json`` (see the module docstring)."""
        agents: dict[str, Any] = {}
        for agent, row in zip(self.agents, self.summary(), strict=True):
            regret, low, high = self.curve(agent, "cumulative_regret")
            expected, e_low, e_high = self.curve(agent, "cumulative_expected_regret")
            streams, _, _ = self.curve(agent, "streams")
            agents[agent] = {
                "cumulative_regret": regret.tolist(),
                "cumulative_regret_band": _band_dict(low, high),
                "cumulative_expected_regret": expected.tolist(),
                "cumulative_expected_regret_band": _band_dict(e_low, e_high),
                "streams": streams.tolist(),
                "final": {
                    key: row[key]
                    for key in (
                        "cumulative_regret",
                        "cumulative_regret_half_width",
                        "cumulative_expected_regret",
                        "cumulative_expected_regret_half_width",
                    )
                },
                "timings": self.timings(agent),
                "per_seed": {str(seed): self.runs[agent, seed].to_dict() for seed in self.seeds},
            }
        return {
            "config": self.config,
            "rounds": list(range(1, self.n_rounds + 1)),
            "seeds": self.seeds,
            "band": {"method": "student-t", "level": BAND_LEVEL, "over": "seeds"},
            "agents": agents,
            "meta": self.meta,
        }

    def csv_text(self) -> str:
        """The content of ``curves.csv``: long format, one row per (agent, seed, round)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for agent in self.agents:
            for seed in self.seeds:
                run = self.runs[agent, seed]
                columns = zip(
                    run.cumulative_regret.tolist(),
                    run.cumulative_expected_regret.tolist(),
                    run.streams.tolist(),
                    run.act_s.tolist(),
                    run.update_s.tolist(),
                    run.env_s.tolist(),
                    run.cpu_s.tolist(),
                    strict=True,
                )
                for number, values in enumerate(columns, start=1):
                    writer.writerow((agent, seed, number, *values))
        return buffer.getvalue()

    def write(self, out: str | os.PathLike) -> dict[str, Path]:
        """Write ``results.json`` and ``curves.csv`` into ``out``; return their paths."""
        out = Path(out)
        paths = {"json": out / "results.json", "csv": out / "curves.csv"}
        text = json.dumps(_nan_to_none(self.to_dict()), indent=1, allow_nan=False)
        atomic_write_bytes(paths["json"], text.encode("utf-8"))
        atomic_write_bytes(paths["csv"], self.csv_text().encode("utf-8"))
        self.out = out
        return paths
