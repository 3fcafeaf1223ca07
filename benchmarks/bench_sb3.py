"""Stable-Baselines3 throughput: the batched VecEnv adapter against DummyVecEnv.

Usage::

    python benchmarks/bench_sb3.py                 # throughput, median of 5 runs
    python benchmarks/bench_sb3.py --quick         # 3 runs, smaller rounds
    python benchmarks/bench_sb3.py --policy sb3    # SB3's own MultiInputPolicy only
    python benchmarks/bench_sb3.py --paper-run     # also PPO, 100 rounds of 20,000 users

Figures, in user-visits per second (a visit is one user shown one slate):

- ``PPO.learn``: SB3's own training loop, rollouts plus gradient steps, on
  :class:`~carousel_env.sb3_vec.CarouselSB3VecEnv` (one native batched environment,
  ``--users`` users per step) and on ``DummyVecEnv`` over single ``CarouselEnv`` instances
  inside ``ScoreSlateWrapper``, for each width in ``--dummy-envs``. Every set-up collects
  the same number of visits per rollout (``n_steps`` x envs) and trains with the same
  policy, hyper-parameters, minibatches and epochs, so their gradient work is identical;
- ``rollouts``: the rollout-collection part of the same ``learn`` calls (timed by a
  callback), where they differ;
- ``VecEnv.step``: stepping with fixed random score actions, no policy.

Each policy in ``--policy`` is measured on every set-up: ``fast``
(:class:`~carousel_env.sb3_vec.FastMultiInputPolicy`, the same Gaussian computed in fewer
passes) and ``sb3`` (SB3's ``MultiInputPolicy``). The per-visit breakdown of the batched
set-up is printed too: environment step, the rest of the rollout (policy forward,
sampling, SB3's clipping and buffer), and training.

``--paper-run`` plays PPO beside ``random`` and ``ts-seg-pessimistic`` through the experiment
runner for 100 rounds of 20,000 users on the default population and prints the final
cumulative regrets and PPO's hyper-parameters (tens of minutes on 2 cores).

Torch runs on one thread (``torch.set_num_threads(1)``), the agents' default.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

try:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv
except ImportError as error:
    sys.exit(
        f'bench_sb3 needs Stable-Baselines3 and PyTorch ({error}): pip install "carousel-env[sb3]"'
    )

from carousel_env import CarouselEnv
from carousel_env.data import make_synthetic_population
from carousel_env.sb3_vec import CarouselSB3VecEnv, FastMultiInputPolicy
from carousel_env.wrappers import ScoreSlateWrapper

#: The policies compared, by their --policy names.
POLICIES = {"fast": FastMultiInputPolicy, "sb3": "MultiInputPolicy"}


class RolloutTimer(BaseCallback):
    """Adds up the wall time SB3 spends collecting rollouts."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self._start = 0.0

    def _on_rollout_start(self) -> None:
        self._start = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self.seconds += time.perf_counter() - self._start

    def _on_step(self) -> bool:
        return True


def learn_throughput(venv, policy, n_steps: int, rollouts: int, ppo_params: dict[str, Any]):
    """Visits per second of PPO.learn and of its rollouts, after one warm-up rollout.

    The heap is collected first: SB3 models hold reference cycles, so the models of
    earlier runs (hundreds of MB of buffers at 8,192 visits a rollout) stay until a full
    collection, and in their presence the same run measured up to a third slower.
    """
    gc.collect()
    model = PPO(policy, venv, n_steps=n_steps, seed=0, device="cpu", **ppo_params)
    per_rollout = n_steps * venv.num_envs
    model.learn(per_rollout)
    timer = RolloutTimer()
    start = time.perf_counter()
    model.learn(per_rollout * rollouts, callback=timer, reset_num_timesteps=False)
    elapsed = time.perf_counter() - start
    visits = per_rollout * rollouts
    return visits / elapsed, visits / timer.seconds


def step_throughput(venv, steps: int, seed: int = 0) -> float:
    """Visits per second of VecEnv.step with fixed random scores (no policy)."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(venv.num_envs, *venv.action_space.shape))
    actions = actions.astype(np.float32)
    gc.collect()
    venv.reset()
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(actions)
    return steps * venv.num_envs / (time.perf_counter() - start)


def bench_throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of every set-up, median of ``args.runs`` rounds.

    Each round measures every set-up once, in turn, so that a change of load on the
    machine during the benchmark falls on all of them alike.
    """
    population = make_synthetic_population(n_users=args.population)
    ppo_params = {"batch_size": args.batch_size, "n_epochs": args.n_epochs}
    ppo_params["policy_kwargs"] = {"log_std_init": -2.0}
    users = args.users
    for dummies in args.dummy_envs:
        if users % dummies:
            raise SystemExit(f"--users ({users}) must be a multiple of --dummy-envs ({dummies})")
    load_before = os.getloadavg()[0]

    setups = {"batched": (CarouselSB3VecEnv(num_envs=users, users=population), 1)}
    for dummies in args.dummy_envs:
        venv = DummyVecEnv(
            [lambda: ScoreSlateWrapper(CarouselEnv(users=population)) for _ in range(dummies)]
        )
        setups[f"dummy-{dummies}"] = (venv, users // dummies)

    samples: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(args.runs):
        for name, (venv, n_steps) in setups.items():
            steps = max(1, args.step_visits // venv.num_envs)
            samples.setdefault(("", name, "step"), []).append(step_throughput(venv, steps))
            for policy in args.policy:
                learn, rollouts = learn_throughput(
                    venv, POLICIES[policy], n_steps, args.rollouts, ppo_params
                )
                samples.setdefault((policy, name, "learn"), []).append(learn)
                samples.setdefault((policy, name, "rollouts"), []).append(rollouts)
    table = {
        policy: {
            name: {
                "learn": statistics.median(samples[policy, name, "learn"]),
                "rollouts": statistics.median(samples[policy, name, "rollouts"]),
                "step": statistics.median(samples["", name, "step"]),
            }
            for name in setups
        }
        for policy in args.policy
    }
    return {
        "settings": {
            "users_per_step_batched": users,
            "dummy_envs": args.dummy_envs,
            "visits_per_rollout": users,
            "rollouts_timed": args.rollouts,
            "ppo": ppo_params,
            "runs": args.runs,
            "population": args.population,
            "torch_threads": torch.get_num_threads(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0],
        },
        "visits_per_second": table,
    }


def breakdown(row: dict[str, float]) -> dict[str, float]:
    """Microseconds a visit: environment step, rest of the rollout, training."""
    step, rollout, learn = (1e6 / row[key] for key in ("step", "rollouts", "learn"))
    return {"env step": step, "policy in rollout": rollout - step, "training": learn - rollout}


def paper_run(args: argparse.Namespace) -> dict[str, Any]:
    """PPO, random and ts-seg-pessimistic: 100 rounds of 20,000 users, default population."""
    import agents.sb3
    from carousel_env.experiment import run_experiment

    out = args.out or tempfile.mkdtemp(prefix="carousel-ppo-paper-")
    result = run_experiment(
        "ppo,random,ts-seg-pessimistic", rounds=100, out=out, progress=True, jobs=args.jobs
    )
    return {
        "out": out,
        "ppo_hyperparameters": agents.sb3.DEFAULTS["ppo"],
        "summary": result.summary(),
        "table": result.summary_table(),
    }


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive ints; got {text!r}")
    return values


def _policy_list(text: str) -> list[str]:
    values = text.split(",")
    unknown = [value for value in values if value not in POLICIES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICIES)}"
        )
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs, 4,096 users per step")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--users", type=int, default=8_192, help="users per batched step")
    parser.add_argument(
        "--dummy-envs",
        type=_int_list,
        default=[8, 64, 256],
        help="envs in the DummyVecEnv, comma-separated widths (default 8,64,256)",
    )
    parser.add_argument(
        "--policy",
        type=_policy_list,
        default=["fast", "sb3"],
        help="policies, comma-separated: fast (FastMultiInputPolicy), sb3 (MultiInputPolicy)",
    )
    parser.add_argument("--rollouts", type=int, default=3, help="rollouts timed per run")
    parser.add_argument("--batch-size", type=int, default=2_048, help="PPO minibatch")
    parser.add_argument("--n-epochs", type=int, default=1, help="PPO epochs per rollout")
    parser.add_argument("--step-visits", type=int, default=40_000, help="visits per step figure")
    parser.add_argument("--population", type=int, default=100_000, help="synthetic users")
    parser.add_argument("--paper-run", action="store_true", help="also the 100-round PPO run")
    parser.add_argument("--jobs", type=int, default=None, help="processes for --paper-run")
    parser.add_argument("--out", default=None, help="output folder for --paper-run")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.users, args.step_visits = 3, 4_096, 20_000
    torch.set_num_threads(1)

    report = bench_throughput(args)
    for policy, rows in report["visits_per_second"].items():
        print(f"\npolicy {policy}: user-visits per second (ratio: batched / DummyVecEnv)")
        dummies = [name for name in rows if name != "batched"]
        header = "".join(f"{name:>18}" for name in dummies)
        print(f"{'':<14}{'batched':>10}{header}")
        for key, label in (
            ("learn", "PPO.learn"),
            ("rollouts", "rollouts"),
            ("step", "VecEnv.step"),
        ):
            batched = rows["batched"][key]
            cells = "".join(
                f"{rows[name][key]:>10,.0f} ({batched / rows[name][key]:>4.1f}x)"
                for name in dummies
            )
            print(f"{label:<14}{batched:>10,.0f}{cells}")
        parts = ", ".join(f"{k} {v:.1f}" for k, v in breakdown(rows["batched"]).items())
        print(f"batched, us a visit: {parts}")
    print(json.dumps(report["settings"]))

    if args.paper_run:
        result = paper_run(args)
        print(result["table"])
        print(f"PPO hyper-parameters: {json.dumps(result['ppo_hyperparameters'])}")
        print(f"results in {result['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
