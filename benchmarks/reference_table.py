"""The reference results: the twelve paper presets on the calibrated default population.

Usage::

    # run both readings (twelve presets x seeds 0 1 2, 100 rounds of 20,000 users), then
    # print the table and draw the figures; resumes whatever is already in --runs
    python benchmarks/reference_table.py --run --runs /work/runs/reference

    # only the table and the figures, from folders already run (finished runs only)
    python benchmarks/reference_table.py --runs /work/runs/reference --docs docs

``--runs`` holds one runner output folder per reading, ``published-code/`` and ``paper/``,
as ``carousel-env run --agents paper --seeds 0 1 2 --feedback <reading> --out <folder>``
writes it. The table is built from ``results.json`` when the experiment has finished and
otherwise from the runs whose checkpoint has all the rounds, so a table can be published
while a long experiment is still going; the missing (agent, seed) runs are listed.

Figures written to ``--docs``: ``regret_published_code.png`` and ``regret_paper.png``
(mean cumulative regret over seeds with 95% Student-t bands, the runner's own plot).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from agents import PAPER_PRESETS
from carousel_env.experiment import ExperimentResult, RunCurves, plot_regret, run_experiment
from carousel_env.experiment.runner import checkpoint_path

READINGS = ("published-code", "paper")
SEEDS = (0, 1, 2)
ROUNDS = 100
USERS_PER_ROUND = 20_000

#: The calibration targets (MODEL.md, "Published results"), for the published-code reading.
TARGETS = {"random": 1_310_000, "ts-seg-pessimistic": 160_000}


def run_reading(runs: Path, reading: str) -> None:
    """Play (or resume) one reading's experiment into ``runs/<reading>``."""
    out = runs / reading
    run_experiment(
        "paper",
        rounds=ROUNDS,
        users_per_round=USERS_PER_ROUND,
        seeds=list(SEEDS),
        feedback=reading,
        out=out,
        resume=(out / "config.json").exists(),
        progress=True,
    )


def finished_runs(folder: Path) -> tuple[dict[tuple[str, int], RunCurves], dict]:
    """The finished runs of a runner folder, and its config.

    Returns:
        ``(runs, config)``: every (agent, seed) run with all of its rounds, and the stored
        config (empty if the folder holds none).
    """
    config_file = folder / "config.json"
    if not config_file.exists():
        return {}, {}
    config = json.loads(config_file.read_text(encoding="utf-8"))["config"]
    runs = {}
    for seed in config["seeds"]:
        for agent in config["agents"]:
            path = checkpoint_path(folder, agent, seed)
            if not path.exists():
                continue
            with path.open("rb") as file:
                state = pickle.load(file)  # noqa: S301  (our own runner's checkpoints)
            if state["round"] >= config["rounds"]:
                runs[agent, seed] = _curves(agent, seed, state["curves"], config["rounds"])
    return runs, config


def _curves(agent: str, seed: int, stored: dict, rounds: int) -> RunCurves:
    """A checkpoint's curves as RunCurves; a curve an older runner did not record is NaN."""
    names = [f.name for f in dataclasses.fields(RunCurves) if f.name not in ("agent", "seed")]
    missing = np.full(rounds, np.nan)
    arrays = {name: stored[name][:rounds] if name in stored else missing for name in names}
    return RunCurves.from_arrays(agent, seed, arrays)


def _cell(values: list[float]) -> str:
    if not values:
        return "not finished"
    mean = np.mean(values)
    if len(values) == 1:
        return f"{mean:,.0f} (1 seed)"
    return f"{mean:,.0f} ± {np.std(values, ddof=1):,.0f}" + (
        "" if len(values) == len(SEEDS) else f" ({len(values)} seeds)"
    )


def table(results: dict[str, dict[tuple[str, int], RunCurves]]) -> tuple[str, list[str]]:
    """The Markdown table of final cumulative regrets, and the list of missing runs."""
    lines = [
        "| preset | published-code reading | paper reading | published (Figure 2) |",
        "| --- | ---: | ---: | ---: |",
    ]
    missing = []
    for agent in PAPER_PRESETS:
        cells = []
        for reading in READINGS:
            runs = results.get(reading, {})
            values = [runs[agent, s].cumulative_regret[-1] for s in SEEDS if (agent, s) in runs]
            missing += [f"{agent}, seed {s}, {reading}" for s in SEEDS if (agent, s) not in runs]
            cells.append(_cell(values))
        target = f"about {TARGETS[agent]:,}" if agent in TARGETS else ""
        lines.append(f"| `{agent}` | {cells[0]} | {cells[1]} | {target} |")

    first = [run.regret[0] for reading in READINGS for run in results.get(reading, {}).values()]
    if first:
        lines.append("")
        lines.append(
            f"Regret in round 1, every preset, both readings: mean {np.mean(first):,.0f}, "
            f"from {np.min(first):,.0f} to {np.max(first):,.0f} (published: about 13,000)."
        )
    return "\n".join(lines), missing


def draw(reading: str, runs: dict[tuple[str, int], RunCurves], config: dict, path: Path) -> None:
    """The runner's regret figure for the agents whose seeds have all finished."""
    complete = [a for a in PAPER_PRESETS if all((a, s) in runs for s in SEEDS)]
    if not complete:
        return
    chosen = {(a, s): runs[a, s] for a in complete for s in SEEDS}
    result = ExperimentResult(config, chosen)
    title = (
        f"calibrated synthetic population, {USERS_PER_ROUND:,} users a round, "
        f"{reading} reading, seeds {', '.join(map(str, SEEDS))} (mean, 95% band)"
    )
    plot_regret(result, path, title=title)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="folder of the two readings")
    parser.add_argument("--docs", type=Path, default=None, help="where to write the figures")
    parser.add_argument("--run", action="store_true", help="play (or resume) the runs first")
    args = parser.parse_args(argv)

    if args.run:
        for reading in READINGS:
            run_reading(args.runs, reading)

    results, configs = {}, {}
    for reading in READINGS:
        results[reading], configs[reading] = finished_runs(args.runs / reading)
    text, missing = table(results)
    print(text)
    print("\nmissing runs: " + ("none" if not missing else "; ".join(missing)))

    if args.docs is not None:
        for reading in READINGS:
            name = f"regret_{reading.replace('-', '_')}.png"
            draw(reading, results[reading], configs[reading], args.docs / name)


if __name__ == "__main__":
    main()
