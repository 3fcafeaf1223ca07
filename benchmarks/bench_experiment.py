"""Wall time and peak memory of ``carousel-env run``, printed as medians over repeats.

Usage::

    python benchmarks/bench_experiment.py                  # the paper's experiment (minutes)
    python benchmarks/bench_experiment.py --quick          # 10 rounds of 2,000 users
    python benchmarks/bench_experiment.py --repeat 3 --jobs 1

Each repeat runs the command in a fresh process, exactly as a user would, and samples the
memory of its whole process tree (the command and its worker processes) every 0.1 s:

- summed PSS: the tree's real footprint (pages shared between the parent and its forked
  workers are split among them, so they are counted once);
- summed RSS: an upper bound (shared pages counted once per process).

Targets for the paper's experiment (twelve presets, 100 rounds of 20,000 users, 974,960
synthetic users) on two cores: under 5 minutes and under 3 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="utf-8") as file:
            return [int(child) for child in file.read().split()]
    except OSError:
        return []


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        stack.extend(_children(current))
    return pids


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; zeros if it has gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as file:
            fields = dict(line.split(":", 1) for line in file if ":" in line)
    except OSError:
        return 0, 0
    return int(fields["Rss"].split()[0]), int(fields["Pss"].split()[0])


class TreeSampler(threading.Thread):
    """Samples the memory of a process tree until stopped; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss_kb = self.peak_pss_kb = self.peak_processes = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            pids = _tree(self.pid)
            usage = [_memory_kb(pid) for pid in pids]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(rss for rss, _ in usage))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(pss for _, pss in usage))
            self.peak_processes = max(self.peak_processes, len(pids))
            self.stopped.wait(self.interval)


def run_once(arguments: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-experiment-") as folder:
        out = Path(folder) / "out"
        command = [sys.executable, "-m", "carousel_env.cli", "run", *arguments]
        command += ["--out", str(out), "--no-progress"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        sampler = TreeSampler(process.pid)
        sampler.start()
        stdout, _ = process.communicate()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        sampler.stopped.set()
        sampler.join()
        if process.returncode != 0:
            raise SystemExit(f"command failed ({process.returncode}): {' '.join(command)}")
        results = json.loads((out / "results.json").read_text())
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "setup_s": results["meta"]["setup_s"],
        "peak_pss_mb": sampler.peak_pss_kb / 1024,
        "peak_rss_sum_mb": sampler.peak_rss_kb / 1024,
        "processes": sampler.peak_processes,
        "seconds_per_round": {
            agent: entry["timings"] for agent, entry in results["agents"].items()
        },
        "table": stdout,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 rounds of 2,000 users")
    parser.add_argument("--repeat", type=int, default=1, help="repeats (default 1)")
    parser.add_argument("--agents", default="paper")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--users-per-round", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--n-users", type=int, default=None)
    args = parser.parse_args(argv)

    rounds = args.rounds or (10 if args.quick else 100)
    users = args.users_per_round or (2_000 if args.quick else 20_000)
    arguments = ["--agents", args.agents, "--rounds", str(rounds)]
    arguments += ["--users-per-round", str(users)]
    if args.jobs is not None:
        arguments += ["--jobs", str(args.jobs)]
    if args.n_users is not None:
        arguments += ["--n-users", str(args.n_users)]
    print(f"carousel-env run {' '.join(arguments)}  ({os.cpu_count()} cpus)")
    # Other work on the machine slows every figure below: show how busy it was.
    load_before = os.getloadavg()[0]

    repeats = [run_once(arguments) for _ in range(args.repeat)]
    print(repeats[-1]["table"])

    def median(key: str) -> float:
        return statistics.median(r[key] for r in repeats)

    print(f"repeats:                     {len(repeats)}")
    print(f"load average (1 min):        {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"wall time, median:           {median('wall_s'):.1f} s  (target < 300 s)")
    print(f"  of which setup (users, optimum): {median('setup_s'):.1f} s")
    cpus = os.cpu_count() or 1
    print(
        f"CPU time of the process tree: {median('cpu_s'):.1f} s  (on {cpus} idle cores the "
        f"wall time could not be below {median('cpu_s') / cpus:.1f} s)"
    )
    print(f"peak memory, summed PSS:     {median('peak_pss_mb'):,.0f} MB  (target < 3,000 MB)")
    print(f"peak memory, summed RSS:     {median('peak_rss_sum_mb'):,.0f} MB  (upper bound)")
    print(f"processes at most:           {max(r['processes'] for r in repeats)}")
    print("\nseconds per round, median over repeats (wall: act + env step + update; and CPU):")
    agents = list(repeats[0]["seconds_per_round"])
    width = max(map(len, agents))
    keys = ("seconds_per_round", "act_s_per_round", "update_s_per_round", "env_s_per_round")
    keys += ("cpu_s_per_round",)
    print(
        f"  {'agent':<{width}}  "
        + "  ".join(f"{h:>7}" for h in ("total", "act", "update"))
        + f"  {'env':>7}  {'cpu':>7}"
    )
    cpu_per_round = {}
    for agent in agents:
        cells = [
            statistics.median(r["seconds_per_round"][agent][key] for r in repeats) for key in keys
        ]
        cpu_per_round[agent] = cells[-1]
        print(f"  {agent:<{width}}  " + "  ".join(f"{cell:7.3f}" for cell in cells))

    # What the same work would take on idle cores: each run costs its CPU time, and runs go
    # to the first free worker, longest first (close to the runner's order).
    jobs = args.jobs or min(2, len(agents))
    workers = [0.0] * jobs
    for cost in sorted((c * rounds for c in cpu_per_round.values()), reverse=True):
        workers[workers.index(min(workers))] += cost
    print(
        f"\nestimated wall time on {jobs} idle cores, from the CPU times: "
        f"{median('setup_s') + max(workers):.0f} s (setup included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
