"""Reproduce the experiment of the RecSys 2020 carousel paper (its Figure 2), at any budget.

Bendada, Salha and Bontempelli, "Carousel Personalization in Music Streaming Apps with
Contextual Bandits", RecSys 2020 (arXiv:2009.06546): twelve agents, 100 rounds of 20,000
users each, cumulative regret per round. This script runs it on the synthetic population
(no download needed) and prints the final regrets beside the two values read off the
paper's figure.

    python examples/run_paper_experiment.py                      # the full experiment
    python examples/run_paper_experiment.py --rounds 10 --users-per-round 2000 \\
        --agents random,ts-seg-pessimistic --seeds 0 1

The paper's figure is on the 974,960 real users; the synthetic users are only Deezer-like,
so compare orders of magnitude and the ranking of agents, not the digits.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence

from carousel_env.experiment import run_experiment

#: Cumulative regret after 100 rounds of 20,000 users, read off the paper's Figure 2.
PAPER_FIGURE_2 = {"random": 1_310_000, "ts-seg-pessimistic": 160_000}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="paper", help="names, or 'paper' (the twelve)")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--users-per-round", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-users", type=int, default=None, help="synthetic population size")
    parser.add_argument("--jobs", type=int, default=None, help="parallel processes")
    parser.add_argument("--out", default=None, help="output folder (default: a temp folder)")
    args = parser.parse_args(argv)

    out = args.out or tempfile.mkdtemp(prefix="carousel-paper-")
    result = run_experiment(
        args.agents,
        rounds=args.rounds,
        users_per_round=args.users_per_round,
        seeds=args.seeds,
        n_users=args.n_users,
        jobs=args.jobs,
        out=out,
        progress=True,
    )

    full_budget = args.rounds == 100 and args.users_per_round == 20_000
    print(f"{'agent':<36}{'cumulative regret':>20}{'paper (real users)':>20}")
    for row in result.summary():
        paper = PAPER_FIGURE_2.get(row["agent"])
        reference = f"~{paper:,}" if paper is not None and full_budget else "-"
        print(f"{row['agent']:<36}{row['cumulative_regret']:>20,.0f}{reference:>20}")
    print(f"\ncurves, table and figure in {out} (results.json, curves.csv, regret.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
