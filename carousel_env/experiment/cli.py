"""``carousel-env run``: the paper's experiment (or any part of it) from the command line.

With no option it runs the paper's experiment: the twelve presets, 100 rounds of 20,000
synthetic users, seed 0, and writes ``results.json``, ``curves.csv`` and ``regret.png``
into ``results/<timestamp>``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

__all__ = ["add_run_arguments", "run_from_args"]


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``carousel-env run`` to ``parser``."""
    parser.description = (
        "Run agents on the carousel environment and write their regret curves "
        "(results.json, curves.csv, regret.png). With no option: the paper's experiment."
    )
    try:
        import agents

        names = f"; names: {', '.join(agents.list_agents())}"
    except ImportError:  # the agents package ships with carousel-env; a broken install
        names = ""
    what = parser.add_argument_group("what to run")
    what.add_argument(
        "--agents",
        default="paper",
        metavar="NAMES",
        help=f"comma-separated agent names, or 'paper' for the twelve presets (default){names}",
    )
    what.add_argument(
        "--rounds", type=int, default=100, metavar="N", help="rounds per run (default 100)"
    )
    what.add_argument(
        "--users-per-round",
        type=int,
        default=20_000,
        metavar="N",
        help="users per round (default 20000)",
    )
    what.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        metavar="SEED",
        help="one or several run seeds, e.g. --seeds 0 1 2 (default 0); several give bands",
    )
    what.add_argument(
        "--feedback",
        choices=["paper", "published-code"],
        default=None,
        help="the agents' feedback reading (default: each agent's own)",
    )

    env = parser.add_argument_group("environment")
    env.add_argument(
        "--users",
        default="synthetic",
        metavar="USERS",
        help="population: synthetic (default), deezer-small, deezer, or a user file",
    )
    env.add_argument(
        "--n-users",
        type=int,
        default=None,
        metavar="N",
        help="synthetic population size (default 974960)",
    )
    env.add_argument(
        "--population-seed", type=int, default=0, metavar="SEED", help="seed of synthetic users"
    )
    env.add_argument("--click-model", choices=["cascade", "swipe"], default="cascade")
    env.add_argument(
        "--swipe-probability",
        type=float,
        default=0.8,
        metavar="P",
        help="swipe model only (default 0.8)",
    )
    env.add_argument(
        "--slate-size", type=int, default=12, metavar="L", help="cards per slate (default 12)"
    )
    env.add_argument(
        "--l-init", type=int, default=3, metavar="L", help="cards on screen (default 3)"
    )
    env.add_argument(
        "--data-dir", default=None, metavar="DIR", help="cache folder for downloaded data"
    )

    output = parser.add_argument_group("output and execution")
    output.add_argument(
        "--out", default=None, metavar="DIR", help="output folder (default results/<timestamp>)"
    )
    output.add_argument(
        "--resume", action="store_true", help="continue the experiment already in --out"
    )
    output.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="parallel processes (default min(2, runs))",
    )
    output.add_argument("--no-plot", action="store_true", help="do not write regret.png")
    output.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the experiment ``args`` describes, print the summary table; return the exit code."""
    from carousel_env.experiment.parallel import RunFailedError
    from carousel_env.experiment.runner import default_out, run_experiment

    out = Path(args.out) if args.out is not None else default_out()
    try:
        result = run_experiment(
            args.agents,
            rounds=args.rounds,
            users_per_round=args.users_per_round,
            seeds=args.seeds,
            users=args.users,
            n_users=args.n_users,
            population_seed=args.population_seed,
            click_model=args.click_model,
            swipe_probability=args.swipe_probability,
            slate_size=args.slate_size,
            l_init=args.l_init,
            feedback=args.feedback,
            out=out,
            resume=args.resume,
            jobs=args.jobs,
            plot=not args.no_plot,
            progress=not args.no_progress,
            data_dir=args.data_dir,
        )
    except KeyboardInterrupt:
        print(
            f"carousel-env run: interrupted; every finished round is kept in {out}\n"
            f"continue with the same command and: --resume --out {shlex.quote(str(out))}",
            file=sys.stderr,
        )
        return 130
    except RunFailedError as error:
        print(f"carousel-env run: error: {error}", file=sys.stderr)
        return 1

    print(result.summary_table())
    written = ["results.json", "curves.csv"] + ([] if args.no_plot else ["regret.png"])
    print(f"wrote {', '.join(written)} to {out}")
    return 0
