"""Speed and memory of the environment, printed as medians over several runs.

Usage::

    python benchmarks/bench_env.py            # full size (about a minute)
    python benchmarks/bench_env.py --quick    # fewer repeats

Figures and targets:

- single env through ``gym.make``: steps per second with random valid slates
  (target: at least 25,000);
- vector env: one round of 20,000 users, and user-visits per second (target: under 30 ms);
- the default 974,960-user synthetic population and its optimum: seconds to build and
  peak memory of a fresh process (targets: under 15 s and 1.5 GB).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import gymnasium as gym

import carousel_env  # noqa: F401  (registers CarouselEnv-v0)

_BUILD_SCRIPT = """
import json, resource, time
t0 = time.perf_counter()
import carousel_env
from carousel_env.core import CarouselSimulator
t1 = time.perf_counter()
sim = CarouselSimulator("synthetic")
t2 = time.perf_counter()
optimal = sim.optimal_reward
t3 = time.perf_counter()
print(json.dumps({
    "import_s": t1 - t0, "population_s": t2 - t1, "optimum_s": t3 - t2,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "mean_optimal_reward": float(optimal.mean()),
}))
"""


def bench_single(repeats: int, steps: int) -> dict[str, float]:
    env = gym.make("CarouselEnv-v0")
    env.reset(seed=0)
    env.action_space.seed(0)
    slates = [env.action_space.sample() for _ in range(steps)]
    pre_sampled, sampled_inside = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for slate in slates:
            env.step(slate)
        pre_sampled.append(steps / (time.perf_counter() - start))
        start = time.perf_counter()
        for _ in range(steps):
            env.step(env.action_space.sample())
        sampled_inside.append(steps / (time.perf_counter() - start))
    return {
        "single_steps_per_s": statistics.median(pre_sampled),
        "single_steps_per_s_with_sampling": statistics.median(sampled_inside),
    }


def bench_vector(repeats: int, num_envs: int = 20_000) -> dict[str, float]:
    envs = gym.make_vec("CarouselEnv-v0", num_envs=num_envs)
    envs.reset(seed=0)
    rounds = [envs.action_space.sample() for _ in range(repeats)]
    times = []
    for slates in rounds:
        start = time.perf_counter()
        envs.step(slates)
        times.append(time.perf_counter() - start)
    sample_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        envs.action_space.sample()
        sample_times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "vector_round_ms": 1000 * median,
        "vector_user_visits_per_s": num_envs / median,
        "vector_sample_slates_ms": 1000 * statistics.median(sample_times),
    }


def bench_build(repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _BUILD_SCRIPT], check=True, capture_output=True, text=True
        )
        runs.append(json.loads(out.stdout))
    keys = runs[0].keys()
    result = {f"build_{key}": statistics.median(run[key] for run in runs) for key in keys}
    result["build_total_s"] = statistics.median(
        run["population_s"] + run["optimum_s"] for run in runs
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7

    figures: dict[str, float] = {}
    figures.update(bench_build(3 if args.quick else 5))
    figures.update(bench_single(repeats, 20_000))
    figures.update(bench_vector(4 * repeats))
    figures["bench_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    if args.json:
        print(json.dumps(figures, indent=2))
        return
    targets = {
        "single_steps_per_s": ">= 25,000",
        "vector_round_ms": "< 30",
        "build_total_s": "< 15",
        "build_peak_rss_mb": "< 1,536",
    }
    print(f"{'figure (median)':<38} {'value':>14}  target")
    for key, value in figures.items():
        print(f"{key:<38} {value:>14,.3f}  {targets.get(key, '')}")


if __name__ == "__main__":
    main()
