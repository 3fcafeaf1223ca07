"""CarouselEnv: the Gymnasium contract, exact rewards, statistics and determinism."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

import carousel_env  # noqa: F401  (registers CarouselEnv-v0)
from carousel_env import CarouselEnv
from carousel_env.data.io import load_shipped_playlists

SHARED = "carousel_env/data/files"


def _independent_probabilities() -> np.ndarray:
    """p(u, i) for the 9 real users, from the published CSV files, in float64.

    Written independently of the package: read the CSVs, append the bias, apply the
    logistic function. The features go through float32 first because that is the
    precision the environment stores (and shows the agent).
    """
    users = pd.read_csv(f"{SHARED}/user_features_small.csv.gz")
    items = pd.read_csv(f"{SHARED}/playlist_features.csv.gz").to_numpy()
    x = users[[f"dim_{d}" for d in range(96)]].to_numpy().astype(np.float32).astype(np.float64)
    x = np.hstack([x, np.ones((len(x), 1))])
    return 1.0 / (1.0 + np.exp(-(x @ items.T)))


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch, request):
    monkeypatch.chdir(request.config.rootpath)


def test_make_reset_step_matches_the_readme_contract():
    env = gym.make("CarouselEnv-v0", users="deezer-small")
    obs, info = env.reset(seed=42)
    assert set(obs) == {"features", "segment"}
    assert obs["features"].dtype == np.float32 and obs["features"].shape == (97,)
    assert obs["features"][-1] == 1.0
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert isinstance(reward, float) and reward in (0.0, 1.0)
    assert terminated is False and truncated is False
    assert info["streams"].dtype == np.int8 and info["streams"].shape == (12,)
    assert info["streams"].sum() == reward
    assert info["regret"] == pytest.approx(info["optimal_reward"] - reward)
    assert 0.0 <= info["expected_reward"] <= info["optimal_reward"] <= 1.0


def test_episode_truncates_at_registered_horizon():
    env = gym.make("CarouselEnv-v0", users="deezer-small")
    assert env.spec.max_episode_steps == carousel_env.MAX_EPISODE_STEPS
    env.reset(seed=0)
    for step in range(1, carousel_env.MAX_EPISODE_STEPS + 1):
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        assert truncated == (step == carousel_env.MAX_EPISODE_STEPS)


@pytest.mark.parametrize("click_model", ["cascade", "swipe"])
def test_gymnasium_check_env_passes_with_warnings_as_errors(click_model):
    env = CarouselEnv(users="deezer-small", click_model=click_model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("click_model", ["cascade", "swipe"])
def test_sb3_check_env_passes_with_warnings_as_errors(click_model):
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env = CarouselEnv(users="deezer-small", click_model=click_model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_checker.check_env(env, warn=True)


def test_shipped_playlists_are_the_published_file():
    published = pd.read_csv(f"{SHARED}/playlist_features.csv.gz").to_numpy()
    np.testing.assert_array_equal(load_shipped_playlists(), published)


@pytest.mark.parametrize("click_model", ["cascade", "swipe"])
def test_expected_and_optimal_reward_are_the_model_formulas_on_real_users(click_model):
    probs = _independent_probabilities()
    env = CarouselEnv(users="deezer-small", click_model=click_model, swipe_probability=0.7)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    served = set()
    for _ in range(60):
        slate = rng.choice(862, size=12, replace=False)
        _, _, _, _, info = env.step(slate)
        user = info["user_index"]
        served.add(user)
        p = probs[user, slate]
        p_best = np.sort(probs[user])[::-1][:12]
        if click_model == "cascade":
            expected = 1.0 - np.prod(1.0 - p)
            optimal = 1.0 - np.prod(1.0 - p_best)
        else:
            # Slot j (1-based) is looked at with probability 0.7 ** max(0, j - 3).
            look = 0.7 ** np.maximum(0, np.arange(1, 13) - 3)
            reach = np.concatenate([[1.0], np.cumprod(1.0 - p)[:-1]])
            reach_best = np.concatenate([[1.0], np.cumprod(1.0 - p_best)[:-1]])
            expected = np.sum(look * p * reach)
            optimal = np.sum(look * p_best * reach_best)
        assert info["expected_reward"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert info["optimal_reward"] == pytest.approx(optimal, rel=1e-12, abs=1e-15)
    assert len(served) == 9


def test_real_users_optimum_matches_source_facts():
    # SOURCE.md: the 9 users' best 12-card carousel is worth 0.34 to 0.94.
    env = CarouselEnv(users="deezer-small")
    env.reset(seed=0)
    optimal = env.unwrapped.sim.optimal_reward
    assert optimal.min() == pytest.approx(0.338, abs=0.005)
    assert optimal.max() == pytest.approx(0.944, abs=0.005)


@pytest.mark.parametrize("click_model", ["cascade", "swipe"])
def test_stream_rate_per_slot_matches_the_exact_probabilities(tiny_world, click_model):
    population, catalog = tiny_world
    env = CarouselEnv(
        users=population,
        catalog=catalog,
        slate_size=4,
        l_init=2,
        click_model=click_model,
        swipe_probability=0.5,
    )
    env.reset(seed=11)
    slate = np.array([2, 4, 0, 1])
    n_steps = 12_000
    streams = np.zeros((4, 4))
    visits = np.zeros(4)
    expected = np.zeros((4, 4))
    for _ in range(n_steps):
        user = int(env.unwrapped._users[0])
        _, _, _, _, info = env.step(slate)
        streams[user] += info["streams"]
        visits[user] += 1
    features = population.features.astype(np.float64)
    probs = 1.0 / (1.0 + np.exp(-(features @ catalog.weights[slate].T)))
    expected = env.unwrapped.click_model.slot_probabilities(probs)
    rate = streams / visits[:, None]
    # Each rate is a mean of Bernoulli(q) over ~3,000 visits: allow 4.5 standard errors,
    # so the 16 checks together fail by chance less than once in 10,000 runs.
    tolerance = 4.5 * np.sqrt(expected * (1 - expected) / visits[:, None]) + 1e-9
    assert np.all(np.abs(rate - expected) <= tolerance), (rate, expected)


def test_same_seed_same_trajectory_bit_for_bit(small_population):
    def trajectory(seed):
        env = gym.make("CarouselEnv-v0", users=small_population)
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        out = [obs["features"].copy()]
        for _ in range(50):
            obs, reward, _, _, info = env.step(env.action_space.sample())
            out += [obs["features"].copy(), np.array([reward, info["expected_reward"]])]
            out.append(info["streams"].copy())
        return out

    first, second, other = trajectory(5), trajectory(5), trajectory(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_population_seed_is_independent_of_reset_seed():
    a = CarouselEnv(users="synthetic", n_users=500, population_seed=1)
    b = CarouselEnv(users="synthetic", n_users=500, population_seed=1)
    c = CarouselEnv(users="synthetic", n_users=500, population_seed=2)
    assert np.array_equal(a.population.features, b.population.features)
    assert not np.array_equal(a.population.features, c.population.features)


_BAD_SLATES = [
    (
        "duplicate",
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2],
        r"slate has duplicate items \[2, 2\] at positions 2 and 11; a slate must hold 12",
    ),
    ("too_short", list(range(11)), r"slate must have shape \(12,\).*got shape \(11,\)"),
    ("two_dims", np.arange(24).reshape(2, 12), r"got shape \(2, 12\)"),
    ("out_of_range_high", list(range(11)) + [862], r"must lie in \[0, 862\); got \[862\]"),
    ("negative", [-1] + list(range(1, 12)), r"must lie in \[0, 862\); got \[-1\]"),
    (
        "float",
        np.arange(12, dtype=np.float64) + 0.5,
        r"integer item indices; got dtype float64 "
        r"\(not integers\)",
    ),
    ("whole_floats", np.arange(12, dtype=np.float64), r"whole numbers stored as floats"),
    ("strings", [str(i) for i in range(12)], r"integer item indices; got dtype <U"),
]


@pytest.mark.parametrize(
    ("slate", "message"), [case[1:] for case in _BAD_SLATES], ids=[c[0] for c in _BAD_SLATES]
)
def test_invalid_slates_raise_value_error_with_the_problem(slate, message):
    env = CarouselEnv(users="deezer-small")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(slate)
    assert not env.action_space.contains(np.asarray(slate)) or message.startswith("integer")


_BAD_ARGUMENTS = [
    (
        "l_init_above_slate",
        {"slate_size": 3, "l_init": 4},
        ValueError,
        r"`l_init` \(4\) must not exceed `slate_size` \(3\)",
    ),
    (
        "slate_above_items",
        {"slate_size": 900},
        ValueError,
        r"`slate_size` \(900\) must not exceed the number of items \(862\)",
    ),
    ("zero_slate", {"slate_size": 0}, ValueError, r"`slate_size` must be at least 1; got 0"),
    ("float_slate", {"slate_size": 12.0}, TypeError, r"`slate_size` must be an int; got float"),
    (
        "click_model",
        {"click_model": "dbn"},
        ValueError,
        r"`click_model` must be one of \['cascade', 'swipe'\].*got 'dbn'",
    ),
    (
        "swipe_prob",
        {"click_model": "swipe", "swipe_probability": 1.5},
        ValueError,
        r"`swipe_probability` must be a number in \[0, 1\]; got 1.5",
    ),
    (
        "users_name",
        {"users": "deezer-big"},
        ValueError,
        r"`users` must be one of \['synthetic', 'deezer-small', 'deezer'\].*'deezer-big'",
    ),
    ("users_type", {"users": 3}, TypeError, r"`users` must be one of .*got int 3"),
    ("render_mode", {"render_mode": "human"}, ValueError, r"`render_mode` must be None or"),
    (
        "n_users_not_synthetic",
        {"users": "deezer-small", "n_users": 10},
        ValueError,
        r"`n_users` applies to users='synthetic' only",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [case[1:] for case in _BAD_ARGUMENTS],
    ids=[case[0] for case in _BAD_ARGUMENTS],
)
def test_invalid_arguments_are_rejected_with_a_clear_message(kwargs, error, message):
    kwargs = {"users": "deezer-small", **kwargs}
    with pytest.raises(error, match=message):
        CarouselEnv(**kwargs)


def test_step_before_reset_is_an_error():
    env = CarouselEnv(users="deezer-small")
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.arange(12))


def test_action_space_samples_valid_slates_and_rejects_repeats():
    env = CarouselEnv(users="deezer-small", slate_size=12)
    env.action_space.seed(0)
    for _ in range(500):
        slate = env.action_space.sample()
        assert env.action_space.contains(slate)
        assert len(set(slate.tolist())) == 12
    assert not env.action_space.contains(np.array([1] * 12))


def test_ansi_render_marks_the_streamed_card():
    env = CarouselEnv(users="deezer-small", render_mode="ansi")
    env.reset(seed=0)
    assert "waiting" in env.render()
    env.step(np.arange(12))
    assert env.render().startswith("slate: ")
