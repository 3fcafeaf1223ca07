"""Train PPO online on the carousel problem beside two bandit presets, and compare regrets.

PPO (Stable-Baselines3, through :class:`agents.sb3.SB3Agent`) learns round after round
from exactly the users the bandit agents see: each round it scores the 862 playlists for
every user, shows the 12 best of its sampled scores, and trains on the round's streams.
``random`` and ``ts-seg-pessimistic`` (the paper's best semi-personalised agent) run on
the same users. The default budget takes a few minutes on a laptop CPU:

    python examples/ppo_vs_bandits.py
    python examples/ppo_vs_bandits.py --rounds 100 --users-per-round 20000 --n-users 974960

Needs ``pip install "carousel-env[sb3]"``. Prints the cumulative regrets and PPO's
hyper-parameters, and writes ``regret.png``, ``results.json`` and ``curves.csv``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import agents
import agents.sb3  # registers ppo, a2c and sac (needs torch and SB3)
from carousel_env.experiment import run_experiment

BANDITS = ("random", "ts-seg-pessimistic")


def build_agent(name: str, *, ppo_params: dict[str, Any], **kwargs: Any) -> agents.Agent:
    """The runner's agent factory: PPO gets the command line's hyper-parameters."""
    if name == "ppo":
        return agents.make_agent(name, **kwargs, **ppo_params)
    return agents.make_agent(name, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    budget = parser.add_argument_group("budget")
    budget.add_argument("--rounds", type=int, default=50, help="rounds (default 50)")
    budget.add_argument(
        "--users-per-round", type=int, default=20_000, help="users per round (default 20000)"
    )
    budget.add_argument(
        "--n-users", type=int, default=200_000, help="synthetic population (default 200000)"
    )
    budget.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    ppo = parser.add_argument_group("PPO hyper-parameters (default: agents.sb3.DEFAULTS)")
    ppo.add_argument("--learning-rate", type=float, default=None)
    ppo.add_argument("--n-epochs", type=int, default=None)
    ppo.add_argument("--batch-size", type=int, default=None)
    ppo.add_argument("--log-std-init", type=float, default=None)
    run = parser.add_argument_group("execution")
    run.add_argument("--jobs", type=int, default=None, help="parallel processes (default 2)")
    run.add_argument("--out", default=None, help="output folder (default: a temp folder)")
    args = parser.parse_args(argv)

    ppo_params: dict[str, Any] = {
        key: value
        for key, value in (
            ("learning_rate", args.learning_rate),
            ("n_epochs", args.n_epochs),
            ("batch_size", args.batch_size),
        )
        if value is not None
    }
    if args.log_std_init is not None:
        policy_kwargs = dict(agents.sb3.DEFAULTS["ppo"]["policy_kwargs"])
        ppo_params["policy_kwargs"] = {**policy_kwargs, "log_std_init": args.log_std_init}

    out = args.out or tempfile.mkdtemp(prefix="carousel-ppo-")
    result = run_experiment(
        ["ppo", *BANDITS],
        rounds=args.rounds,
        users_per_round=args.users_per_round,
        seeds=args.seed,
        n_users=args.n_users,
        jobs=args.jobs,
        out=out,
        progress=True,
        agent_factory=functools.partial(build_agent, ppo_params=ppo_params),
    )

    print(result.summary_table())
    used = {**agents.sb3.DEFAULTS["ppo"], **ppo_params}
    print(f"PPO hyper-parameters: {json.dumps(used)}")
    print(f"curves, table and figure in {out} (results.json, curves.csv, regret.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
