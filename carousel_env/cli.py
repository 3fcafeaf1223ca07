"""The ``carousel-env`` command: ``info``, ``download`` and ``run``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _info(args: argparse.Namespace) -> int:
    from carousel_env.core import CarouselSimulator

    sim = CarouselSimulator(
        args.users,
        slate_size=args.slate_size,
        l_init=args.l_init,
        click_model=args.click_model,
        population_seed=args.population_seed,
        data_dir=args.data_dir,
    )
    summary = sim.describe()
    if args.optimum:
        optimal = sim.optimal_reward
        summary["mean_optimal_reward"] = round(float(optimal.mean()), 6)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    meta = summary.pop("population_meta")
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")
    if meta:
        print("population parameters:")
        for key, value in meta.items():
            print(f"  {key:<{width - 2}}  {value}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from carousel_env.data.download import USERS_URL, download_users

    folder = download_users(
        args.url or USERS_URL, cache_dir=args.cache_dir, force=args.force, progress=True
    )
    print(f"users ready in {folder}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from carousel_env.experiment.cli import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carousel-env",
        description="Deezer's carousel recommendation problem as a Gymnasium environment.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser(
        "info", help="print the population, catalog and click model an env would use"
    )
    info.add_argument("--users", default="synthetic", help="population (default: synthetic)")
    info.add_argument("--slate-size", type=int, default=12)
    info.add_argument("--l-init", type=int, default=3)
    info.add_argument("--click-model", default="cascade", choices=["cascade", "swipe"])
    info.add_argument("--population-seed", type=int, default=0)
    info.add_argument("--data-dir", default=None, help="cache folder for downloaded data")
    info.add_argument(
        "--optimum", action="store_true", help="also compute the mean user-optimal reward"
    )
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=_info)

    download = commands.add_parser(
        "download", help="fetch the full 974,960-user file from Zenodo into the cache"
    )
    download.add_argument("--url", default=None, help="source URL (default: the Zenodo record)")
    download.add_argument(
        "--cache-dir", default=None, help="cache folder (default: $CAROUSEL_ENV_DATA_DIR)"
    )
    download.add_argument("--force", action="store_true", help="download again")
    download.set_defaults(handler=_download)

    try:
        from carousel_env.experiment.cli import add_run_arguments
    except ImportError:  # the runner is part of the package; this guards a broken install
        add_run_arguments = None
    if add_run_arguments is not None:
        run = commands.add_parser(
            "run", help="run agents on the environment and write regret curves"
        )
        add_run_arguments(run)
        run.set_defaults(handler=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"carousel-env {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"carousel-env {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
