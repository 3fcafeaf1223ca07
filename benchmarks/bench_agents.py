"""Time each agent's act and update on paper-sized rounds (20,000 users, 862 items, L = 12).

Items are the shipped Deezer playlists (``carousel_env/data/files/playlist_features.csv.gz``,
read with pandas); users are synthetic taste vectors (entries N(0.04, 1.31^2) like the
real embeddings, then a bias 1.0) in 100 segments. Each agent first plays ``--warmup``
rounds against a cascade simulation (p = sigmoid(x . theta), leftmost Bernoulli success),
so that it is timed in a learned state, then ``--repeats`` timed rounds; the medians are
printed. The agents never see the simulation, only observations, slates and streams.

Usage::

    python benchmarks/bench_agents.py                      # every registered agent
    python benchmarks/bench_agents.py --agents kl-ucb-seg ts-seg-pessimistic --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import agents  # noqa: E402

PLAYLISTS = ROOT / "carousel_env" / "data" / "files" / "playlist_features.csv.gz"


def load_items(n_items: int, rng: np.random.Generator) -> np.ndarray:
    """Item weights, float64 (n_items, 97): the shipped playlists, or random look-alikes."""
    if PLAYLISTS.exists():
        weights = pd.read_csv(PLAYLISTS).to_numpy(dtype=np.float64)
        if n_items <= weights.shape[0]:
            return weights[:n_items]
    weights = rng.normal(0.0, 0.05, size=(n_items, 97))
    weights[:, -1] = rng.normal(-5.4, 0.8, size=n_items)
    return weights


def simulate(theta: np.ndarray, features: np.ndarray, slates: np.ndarray, rng) -> np.ndarray:
    """Cascade streams, int8 (n_users, L): the leftmost Bernoulli success of each slate."""
    logits = np.einsum("nd,nld->nl", features.astype(np.float64), theta[slates])
    success = rng.random(logits.shape) < 1.0 / (1.0 + np.exp(-logits))
    first = np.where(success.any(axis=1), success.argmax(axis=1), slates.shape[1])
    return (np.arange(slates.shape[1])[None, :] == first[:, None]).astype(np.int8)


def bench(name: str, args: argparse.Namespace) -> tuple[float, float]:
    rng = np.random.default_rng(args.seed)
    theta = load_items(args.items, rng)
    n_features = theta.shape[1]
    population = rng.normal(0.04, 1.31, size=(args.population, n_features)).astype(np.float32)
    population[:, -1] = 1.0
    segments = rng.integers(0, args.segments, size=args.population)
    agent = agents.make_agent(
        name, n_items=args.items, slate_size=args.slate, n_segments=args.segments, seed=0
    )
    acts, updates = [], []
    for round_ in range(args.warmup + args.repeats):
        users = rng.integers(0, args.population, size=args.users)
        observation = {"features": population[users], "segment": segments[users]}
        start = time.perf_counter()
        slates = agent.act(observation)
        middle = time.perf_counter()
        streams = simulate(theta, observation["features"], slates, rng)
        before = time.perf_counter()
        agent.update(observation, slates, streams)
        end = time.perf_counter()
        if round_ >= args.warmup:
            acts.append(middle - start)
            updates.append(end - before)
    return statistics.median(acts), statistics.median(updates)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", nargs="*", default=None, help="names (default: all)")
    parser.add_argument("--users", type=int, default=20_000, help="users per round")
    parser.add_argument("--items", type=int, default=862)
    parser.add_argument("--slate", type=int, default=12)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--population", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    names = args.agents or agents.list_agents()
    print(f"{args.users} users x {args.items} items, L={args.slate}; median of {args.repeats}")
    print(f"{'agent':<36}{'act s':>9}{'update s':>10}{'total s':>9}")
    for name in names:
        act, update = bench(name, args)
        print(f"{name:<36}{act:>9.3f}{update:>10.3f}{act + update:>9.3f}", flush=True)


if __name__ == "__main__":
    main()
