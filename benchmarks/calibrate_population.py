"""Fit the synthetic population's defaults to the paper's two published regret curves.

Usage::

    python benchmarks/calibrate_population.py            # the search, then 3 full-size seeds
    python benchmarks/calibrate_population.py --quick    # a small search, no full-size check
    python benchmarks/calibrate_population.py --plausibility   # only the 9-real-user check

Targets (MODEL.md, "Published results"; nothing else from the paper is used): after 100
rounds of 20,000 users, with the agents' published-code feedback, cumulative regret about
1,310,000 for ``random`` and about 160,000 for ``ts-seg-pessimistic``, about 13,000 in
round 1. The population seed is 0 throughout (the default); run seeds are fixed.

The search has two stages, from cheap to dear:

1. every candidate of a grid over (centre_scale, centre_spread, user_spread) is drawn with
   fewer users (same seed, so the same segment centres and sizes) and scored without any
   simulation: ``random``'s expected regret per round is 20,000 times the mean over users
   of opt(u) minus the expected reward of a uniformly random slate (estimated from random
   slates for a fixed sample of users); the asymptotic part of a segment agent's regret
   is 20,000 times the mean of opt(u) minus the reward of the segment's best slate;
2. the candidates whose ``random`` figure is within 2% of its target are simulated with
   ``ts-seg-pessimistic`` through the experiment runner (100 rounds of 20,000 users on a
   smaller population of the same shape); the chosen candidate is the one whose larger
   relative error of the two targets is smallest.

Then (unless ``--quick`` or ``--no-verify``) the chosen parameters are run at full size,
974,960 users, ``random`` and ``ts-seg-pessimistic`` for run seeds 0, 1 and 2, and the
means and standard deviations over seeds are printed next to the targets. Finally the
synthetic users are compared with the 9 real users (segment-free): the distribution of
opt(u) and of the stream probabilities p(u, i).

Every figure printed depends only on the fixed seeds here (and not on ``--jobs``).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from carousel_env.data import SyntheticConfig, load_catalog, load_population
from carousel_env.data.population import Catalog, Population
from carousel_env.data.synthetic import make_synthetic_population
from carousel_env.experiment import run_experiment
from carousel_env.ground_truth import ground_truth, stream_probabilities

#: The published figures (MODEL.md): cumulative regret after 100 rounds, round-1 regret.
TARGET_RANDOM = 1_310_000.0
TARGET_TS_SEG = 160_000.0
TARGET_ROUND_1 = 13_000.0
#: The tolerance the calibration must meet on both cumulative targets.
TOLERANCE = 0.05

ROUNDS = 100
USERS_PER_ROUND = 20_000
SLATE_SIZE = 12
FEEDBACK = "published-code"
VERIFY_SEEDS = (0, 1, 2)
#: Stage 2 simulates the candidates whose static ``random`` figure is this close to target.
RANDOM_WINDOW = 0.02

#: The full search grid (stage 1); size_concentration stays at its default 1.0, which the
#: exploration behind this script found to matter less than user_spread (more unequal
#: segments learn faster in the large ones and *lower* the TS-seg regret).
GRID = {
    "centre_scale": (1.2, 1.3, 1.4, 1.5),
    "centre_spread": (2.0, 2.2),
    "user_spread": (0.5, 0.6, 0.7, 0.8),
}
QUICK_GRID = {
    "centre_scale": (1.2, 1.4),
    "centre_spread": (2.0,),
    "user_spread": (0.5, 0.7),
}


def random_slate_reward(
    population: Population,
    catalog: Catalog,
    users: np.ndarray,
    rng: np.random.Generator,
    n_slates: int = 4,
) -> np.ndarray:
    """Expected reward of a uniformly random slate for each given user, by Monte Carlo.

    Args:
        users: int array (n,), user indices.
        n_slates: random slates averaged per user.

    Returns:
        float64 array (n,): the mean over ``n_slates`` slates of 1 - prod(1 - p).
    """
    total = np.zeros(users.shape[0])
    for _ in range(n_slates):  # a handful of repeats, each an array operation over users
        keys = rng.random((users.shape[0], catalog.n_items))
        slates = np.argpartition(keys, SLATE_SIZE, axis=1)[:, :SLATE_SIZE]
        probs = stream_probabilities(population.features[users], catalog.weights, slates)
        total += -np.expm1(np.log1p(-probs).sum(axis=1))
    return total / n_slates


def static_figures(
    population: Population, catalog: Catalog, *, sample: int = 50_000, seed: int = 1
) -> dict[str, float]:
    """The figures of a population that need no simulation.

    Returns:
        ``mean_opt`` (mean of opt(u)), ``random_per_round`` (expected regret of ``random``
        in one round of 20,000 users), ``segment_gap_per_round`` (20,000 times the mean of
        opt(u) minus the reward of the user's segment's best slate: the regret per round
        of a segment agent that has learnt everything).
    """
    truth = ground_truth(population, catalog)
    _, top = truth.top_items(SLATE_SIZE)
    optimal = -np.expm1(np.log1p(-top).sum(axis=1))

    rng = np.random.default_rng(seed)
    users = rng.integers(0, population.n_users, size=min(sample, population.n_users))
    random_reward = random_slate_reward(population, catalog, users, rng)

    best = truth.segment_best_slates(SLATE_SIZE)[population.segments]
    segment_probs = stream_probabilities(population.features, catalog.weights, best)
    segment_reward = -np.expm1(np.log1p(-segment_probs).sum(axis=1))
    return {
        "mean_opt": float(optimal.mean()),
        "random_per_round": USERS_PER_ROUND * float((optimal[users] - random_reward).mean()),
        "segment_gap_per_round": USERS_PER_ROUND * float((optimal - segment_reward).mean()),
    }


def simulate(
    population: Population, agents: Sequence[str], seeds: Sequence[int], jobs: int
) -> dict[str, dict[str, np.ndarray]]:
    """Run agents on a population with the experiment runner (published-code feedback).

    Returns:
        Per agent: ``final`` (cumulative regret after ROUNDS rounds) and ``round_1``
        (regret of round 1), float64 arrays (n_seeds,) in the order of ``seeds``.
    """
    with tempfile.TemporaryDirectory(prefix="calibrate-") as out:
        result = run_experiment(
            list(agents),
            rounds=ROUNDS,
            users_per_round=USERS_PER_ROUND,
            seeds=list(seeds),
            users=population,
            feedback=FEEDBACK,
            out=out,
            jobs=jobs,
            plot=False,
        )
    figures = {}
    for agent in agents:
        runs = [result.runs[agent, seed] for seed in seeds]
        figures[agent] = {
            "final": np.array([run.cumulative_regret[-1] for run in runs]),
            "round_1": np.array([run.regret[0] for run in runs]),
        }
    return figures


def _fmt(params: dict[str, float]) -> str:
    return ", ".join(f"{key}={value:g}" for key, value in params.items())


def search(
    grid: dict[str, Sequence[float]],
    *,
    static_users: int,
    simulated_users: int,
    seeds: Sequence[int],
    jobs: int,
) -> dict[str, float]:
    """Stages 1 and 2 (see the module docstring); returns the chosen parameters."""
    catalog = load_catalog("deezer")
    names = list(grid)
    candidates = [
        dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())
    ]

    print(f"stage 1: {len(candidates)} candidates, {static_users:,} users each, no simulation")
    print(f"  {'parameters':<52} {'mean opt':>8} {'random/round':>12} {'seg gap/round':>13}")
    scored = []
    for params in candidates:
        population = make_synthetic_population(n_users=static_users, seed=0, **params)
        figures = static_figures(population, catalog)
        scored.append((params, figures))
        print(
            f"  {_fmt(params):<52} {figures['mean_opt']:8.3f} "
            f"{figures['random_per_round']:12,.0f} {figures['segment_gap_per_round']:13,.0f}"
        )

    per_round = TARGET_RANDOM / ROUNDS
    scored.sort(key=lambda item: abs(item[1]["random_per_round"] / per_round - 1))
    chosen_for_simulation = [
        (params, figures)
        for params, figures in scored
        if abs(figures["random_per_round"] / per_round - 1) <= RANDOM_WINDOW
    ]
    print(
        f"\nstage 2: ts-seg-pessimistic on the {len(chosen_for_simulation)} candidates within "
        f"{RANDOM_WINDOW:.0%} of {per_round:,.0f} random regret a round; {simulated_users:,} "
        f"users, seeds {list(seeds)}, {ROUNDS} rounds of {USERS_PER_ROUND:,}"
    )
    if not chosen_for_simulation:
        raise SystemExit("no candidate is close enough to the random target: widen the grid")
    best, best_error = None, np.inf
    for params, figures in chosen_for_simulation:
        started = time.perf_counter()
        population = make_synthetic_population(n_users=simulated_users, seed=0, **params)
        ts = simulate(population, ["ts-seg-pessimistic"], seeds, jobs)["ts-seg-pessimistic"]
        random_total = ROUNDS * figures["random_per_round"]
        errors = (random_total / TARGET_RANDOM - 1, ts["final"].mean() / TARGET_TS_SEG - 1)
        worst = max(abs(error) for error in errors)
        print(
            f"  {_fmt(params)}: random ≈ {random_total:,.0f} ({errors[0]:+.1%}), "
            f"ts-seg-pessimistic {ts['final'].mean():,.0f} ({errors[1]:+.1%}; seeds "
            f"{', '.join(f'{value:,.0f}' for value in ts['final'])}), round 1 "
            f"{ts['round_1'].mean():,.0f}  [{time.perf_counter() - started:.0f} s]"
        )
        if worst < best_error:
            best, best_error = params, worst
    print(f"\nchosen: {_fmt(best)} (larger relative error {best_error:.1%})")
    return best


def verify(params: dict[str, float], jobs: int) -> None:
    """Full-size check of the chosen parameters over VERIFY_SEEDS."""
    print(
        f"\nverification: {_fmt(params)}, 974,960 users, seeds {list(VERIFY_SEEDS)}, "
        f"{ROUNDS} rounds of {USERS_PER_ROUND:,}, feedback={FEEDBACK}"
    )
    population = make_synthetic_population(seed=0, **params)
    figures = simulate(population, ["random", "ts-seg-pessimistic"], VERIFY_SEEDS, jobs)
    for agent, target in (("random", TARGET_RANDOM), ("ts-seg-pessimistic", TARGET_TS_SEG)):
        final, first = figures[agent]["final"], figures[agent]["round_1"]
        error = final.mean() / target - 1
        print(
            f"  {agent:<20} {final.mean():11,.0f} ± {final.std(ddof=1):7,.0f} (sd)  target "
            f"{target:11,.0f}  {error:+.1%} {'ok' if abs(error) <= TOLERANCE else 'MISSED'}"
            f"   round 1 {first.mean():7,.0f} ± {first.std(ddof=1):4,.0f} (target "
            f"{TARGET_ROUND_1:,.0f})"
        )


def _quantiles(values: np.ndarray) -> str:
    levels = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
    return " ".join(f"{value:7.4f}" for value in np.quantile(values, levels))


def plausibility(n_synthetic: int = 20_000) -> dict[str, dict[str, np.ndarray]]:
    """Compare the default synthetic users with the 9 real ones, ignoring segments.

    Returns:
        ``{"real": ..., "synthetic": ...}``, each with ``opt`` (n_users,), ``p`` (all
        p(u, i), n_users * 862), ``top1`` (n_users,) and ``entries`` (embedding entries).
    """
    catalog = load_catalog("deezer")
    real = load_population("deezer-small")
    synthetic = load_population("synthetic")
    users = np.random.default_rng(2).choice(synthetic.n_users, n_synthetic, replace=False)
    samples = {}
    for name, features in (
        ("real", np.asarray(real.features)),
        ("synthetic", np.asarray(synthetic.features[np.sort(users)])),
    ):
        logits = features.astype(np.float64) @ catalog.weights.T
        p = 1.0 / (1.0 + np.exp(-logits))
        top = -np.sort(-p, axis=1)[:, :SLATE_SIZE]
        samples[name] = {
            "opt": -np.expm1(np.log1p(-top).sum(axis=1)),
            "p": p.ravel(),
            "top1": top[:, 0],
            "entries": features[:, :-1].ravel(),
        }

    print(
        f"\nplausibility: the 9 real users vs {n_synthetic:,} default synthetic users "
        "(no segments)"
    )
    print(
        f"  {'':<32} {'min':>7} {'10%':>7} {'25%':>7} {'50%':>7} {'75%':>7} {'90%':>7} "
        f"{'max':>7} {'mean':>7}"
    )
    for label, key in (
        ("opt(u), 12 cards", "opt"),
        ("best single p(u, i)", "top1"),
        ("p(u, i), all pairs", "p"),
        ("embedding entries", "entries"),
    ):
        for name in ("real", "synthetic"):
            values = samples[name][key]
            print(f"  {label + ', ' + name:<32} {_quantiles(values)} {values.mean():7.4f}")
    for name in ("real", "synthetic"):
        p = samples[name]["p"]
        print(
            f"  share of p(u, i) above 0.05 / 0.2, {name}: {np.mean(p > 0.05):.4f} / "
            f"{np.mean(p > 0.2):.4f}; sd of embedding entries {samples[name]['entries'].std():.3f}"
        )
    return samples


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid, small populations")
    parser.add_argument("--no-verify", action="store_true", help="skip the full-size check")
    parser.add_argument(
        "--plausibility", action="store_true", help="only compare with the 9 real users"
    )
    parser.add_argument("--jobs", type=int, default=2, help="parallel runs (default 2)")
    args = parser.parse_args(argv)

    if args.plausibility:
        plausibility()
        return
    started = time.perf_counter()
    if args.quick:
        chosen = search(
            QUICK_GRID,
            static_users=30_000,
            simulated_users=50_000,
            seeds=(0,),
            jobs=args.jobs,
        )
    else:
        chosen = search(
            GRID,
            static_users=60_000,
            simulated_users=200_000,
            seeds=(0, 1),
            jobs=args.jobs,
        )
    defaults = {name: getattr(SyntheticConfig(), name) for name in chosen}
    print(f"current SyntheticConfig defaults: {_fmt(defaults)}")
    if not args.quick and not args.no_verify:
        verify(chosen, args.jobs)
    plausibility()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
