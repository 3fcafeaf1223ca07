"""The default synthetic population reproduces the paper's two published regret figures.

Calibration targets (MODEL.md, "Published results"), with the agents' published-code
feedback, after 100 rounds of 20,000 users: cumulative regret about 1,310,000 for
``random`` and about 160,000 for ``ts-seg-pessimistic``, about 13,000 in round 1. The
population seed is 0 (the default); see docs/population.md for how the defaults of
:class:`~carousel_env.data.SyntheticConfig` were fitted.

The fast tests use a reduced run: 20 rounds of 20,000 users on 200,000 users of the
default shape (same seed, so the same segment centres and sizes as the default 974,960).
"""

from __future__ import annotations

import numpy as np
import pytest

from carousel_env.data import SyntheticConfig, load_catalog, make_synthetic_population
from carousel_env.experiment import run_experiment
from carousel_env.ground_truth import ground_truth, stream_probabilities

TARGET_RANDOM = 1_310_000.0
TARGET_TS_SEG = 160_000.0
TARGET_ROUND_1 = 13_000.0
#: The calibration's promise: both cumulative targets within 5% (MODEL.md reads the
#: published figure to about 3%).
TOLERANCE = 0.05

ROUNDS, USERS_PER_ROUND = 100, 20_000
REDUCED_ROUNDS, REDUCED_POPULATION = 20, 200_000

#: ts-seg-pessimistic's cumulative regret after REDUCED_ROUNDS rounds of the reduced run,
#: measured for run seeds 0 to 4 (published-code feedback): 73,178, 74,916, 73,025,
#: 74,122, 74,748; mean 74,000, sample sd 870 (the full-size runs of the calibration give
#: 74,200 at round 20, mean of seeds 0-2). The paper gives no figure at round 20, so this
#: reference comes from the calibrated population itself; the full-size test below ties
#: the calibrated population to the published 160,000.
TS_SEG_REDUCED_MEAN, TS_SEG_REDUCED_SD = 74_000.0, 870.0


@pytest.fixture(scope="module")
def reduced_population():
    return make_synthetic_population(SyntheticConfig(n_users=REDUCED_POPULATION), seed=0)


@pytest.fixture(scope="module")
def reduced_run(reduced_population, tmp_path_factory):
    """random and ts-seg-pessimistic, REDUCED_ROUNDS rounds of 20,000 users, run seed 0."""
    return run_experiment(
        ["random", "ts-seg-pessimistic"],
        rounds=REDUCED_ROUNDS,
        users_per_round=USERS_PER_ROUND,
        seeds=0,
        users=reduced_population,
        feedback="published-code",
        out=tmp_path_factory.mktemp("calibration"),
        jobs=1,
        plot=False,
    )


def test_random_regret_per_round_without_simulation(reduced_population):
    """random's expected regret per round, 20,000 * mean(opt(u) - E[random slate]).

    Estimated on 20,000 sampled users with 2 random slates each: the per-user difference
    has an sd of about 0.3, so the estimate's sd is about 20,000 * 0.3 / sqrt(20,000) = 42
    a round, 0.3% of the target, far inside the 5% tolerance.
    """
    catalog = load_catalog("deezer")
    _, top = ground_truth(reduced_population, catalog).top_items(12)
    optimal = -np.expm1(np.log1p(-top).sum(axis=1))

    rng = np.random.default_rng(0)
    users = rng.integers(0, reduced_population.n_users, size=20_000)
    random_reward = np.zeros(users.shape[0])
    for _ in range(2):  # two slates per user, each an array operation over all users
        slates = np.argpartition(rng.random((users.shape[0], catalog.n_items)), 12, axis=1)
        probs = stream_probabilities(
            reduced_population.features[users], catalog.weights, slates[:, :12]
        )
        random_reward += -np.expm1(np.log1p(-probs).sum(axis=1)) / 2

    total = ROUNDS * USERS_PER_ROUND * (optimal[users] - random_reward).mean()
    assert total == pytest.approx(TARGET_RANDOM, rel=TOLERANCE)


@pytest.mark.parametrize("agent", ["random", "ts-seg-pessimistic"], ids=["random", "ts_seg"])
def test_round_1_regret_is_about_13000(reduced_run, agent):
    # One round's regret is a sum over 20,000 visits of opt(u) - reward, each with an sd
    # below 0.5: its sd is below 0.5 * sqrt(20,000) = 71, 0.5% of 13,000.
    assert reduced_run.runs[agent, 0].regret[0] == pytest.approx(TARGET_ROUND_1, rel=TOLERANCE)


def test_random_cumulative_regret_scales_to_the_target(reduced_run):
    # random's curve is a straight line (it never learns), so the target scales with the
    # rounds: 1,310,000 * 20 / 100 = 262,000. Twenty rounds of regret have an sd of about
    # 71 * sqrt(20) = 320, 0.1% of the scaled target.
    final = reduced_run.runs["random", 0].cumulative_regret[-1]
    assert final == pytest.approx(TARGET_RANDOM * REDUCED_ROUNDS / ROUNDS, rel=TOLERANCE)


def test_ts_seg_reduced_run_matches_the_calibrated_curve(reduced_run):
    # Within 4 sample sds of the mean over seeds 0-4 (4 * 870 = 3,480, 4.7%): a seed drawn
    # from the same spread misses by chance with probability well under 1%; a change that
    # moves the learning curve by more than that fails.
    final = reduced_run.runs["ts-seg-pessimistic", 0].cumulative_regret[-1]
    assert abs(final - TS_SEG_REDUCED_MEAN) <= 4 * TS_SEG_REDUCED_SD


@pytest.mark.slow
def test_full_size_calibration(tmp_path):
    """The published figures themselves: 974,960 users, 100 rounds, run seeds 0, 1, 2.

    The mean over 3 seeds must be within 5% of each target. Measured at the calibration:
    random 1,319,200 (sample sd over seeds 800, +0.7%) and ts-seg-pessimistic 156,400 (sd
    1,700, -2.2%); the sd of a 3-seed mean, 1,700 / sqrt(3) = 1,000 (0.6% of 160,000),
    leaves the mean well inside the tolerance.
    """
    result = run_experiment(
        ["random", "ts-seg-pessimistic"],
        rounds=ROUNDS,
        users_per_round=USERS_PER_ROUND,
        seeds=[0, 1, 2],
        feedback="published-code",
        out=tmp_path / "out",
        plot=False,
    )
    for agent, target in (("random", TARGET_RANDOM), ("ts-seg-pessimistic", TARGET_TS_SEG)):
        finals = [result.runs[agent, seed].cumulative_regret[-1] for seed in (0, 1, 2)]
        firsts = [result.runs[agent, seed].regret[0] for seed in (0, 1, 2)]
        assert np.mean(finals) == pytest.approx(target, rel=TOLERANCE), agent
        assert np.mean(firsts) == pytest.approx(TARGET_ROUND_1, rel=TOLERANCE), agent
