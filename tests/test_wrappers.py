"""Action adapters: both environment checkers, the ranking and repair rules, bad input."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import carousel_env  # noqa: F401  (registers CarouselEnv-v0)
from carousel_env import CarouselEnv
from carousel_env.wrappers import (
    MultiDiscreteSlateWrapper,
    ScoreSlateWrapper,
    actions_to_slates,
    adapter_action_space,
    repair_slates,
    scores_to_slates,
)

WRAPPERS = [ScoreSlateWrapper, MultiDiscreteSlateWrapper]
WRAPPER_IDS = ["score", "multidiscrete"]

#: Gymnasium's checker always advises checking the unwrapped env when given a wrapper;
#: that advice is the only warning these tests allow.
WRAPPED_ADVICE = ".*is different from the unwrapped version"


def _make(how: str, click_model: str = "cascade") -> gym.Env:
    if how == "direct":
        return CarouselEnv(users="deezer-small", click_model=click_model)
    return gym.make("CarouselEnv-v0", users="deezer-small", click_model=click_model)


def _stable_top(scores: np.ndarray, slate_size: int) -> np.ndarray:
    """The reference: a stable descending sort of each whole row."""
    return np.argsort(-scores, axis=-1, kind="stable")[..., :slate_size]


def _repair_by_hand(row: np.ndarray, n_items: int) -> list[int]:
    """The repair rule, one slot at a time."""
    free = iter(item for item in range(n_items) if item not in set(row.tolist()))
    seen: set[int] = set()
    out = []
    for item in row.tolist():
        out.append(next(free) if item in seen else item)
        seen.add(item)
    return out


# -- the checkers -----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["direct", "gym.make"])
@pytest.mark.parametrize("click_model", ["cascade", "swipe"])
@pytest.mark.parametrize("wrapper", WRAPPERS, ids=WRAPPER_IDS)
def test_gymnasium_check_env_passes_with_warnings_as_errors(wrapper, click_model, how):
    env = wrapper(_make(how, click_model))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=WRAPPED_ADVICE)
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("how", ["direct", "gym.make"])
@pytest.mark.parametrize("click_model", ["cascade", "swipe"])
@pytest.mark.parametrize("wrapper", WRAPPERS, ids=WRAPPER_IDS)
def test_sb3_check_env_passes_with_warnings_as_errors(wrapper, click_model, how):
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env = wrapper(_make(how, click_model))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_checker.check_env(env, warn=True)


# -- the wrappers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrapper", "expected"),
    [
        (ScoreSlateWrapper, spaces.Box(-1.0, 1.0, shape=(862,), dtype=np.float32)),
        (MultiDiscreteSlateWrapper, spaces.MultiDiscrete(np.full(12, 862), dtype=np.int64)),
    ],
    ids=WRAPPER_IDS,
)
def test_action_spaces(wrapper, expected):
    env = wrapper(CarouselEnv(users="deezer-small"))
    assert env.action_space == expected
    assert type(env.action_space) is type(expected)  # a plain MultiDiscrete, not a SlateSpace
    assert env.observation_space == env.unwrapped.observation_space


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=WRAPPER_IDS)
def test_every_sampled_action_gives_a_valid_slate_and_the_same_visit(wrapper):
    """The wrapper's step is the base env's step on the converted slate, same seed."""
    wrapped = wrapper(CarouselEnv(users="deezer-small"))
    plain = CarouselEnv(users="deezer-small")
    wrapped.reset(seed=5)
    plain.reset(seed=5)
    wrapped.action_space.seed(5)
    for _ in range(50):
        action = wrapped.action_space.sample()
        slate = wrapped.action(action)
        assert slate.shape == (12,) and slate.dtype == np.int64
        assert plain.action_space.contains(slate)
        obs_w, reward_w, _, _, info_w = wrapped.step(action)
        obs_p, reward_p, _, _, info_p = plain.step(slate)
        assert reward_w == reward_p
        np.testing.assert_array_equal(info_w["streams"], info_p["streams"])
        np.testing.assert_array_equal(obs_w["features"], obs_p["features"])


def test_score_wrapper_ranks_highest_first():
    env = ScoreSlateWrapper(CarouselEnv(users="deezer-small"))
    scores = np.zeros(862, dtype=np.float32)
    scores[[500, 3, 861, 42]] = [0.9, 0.5, 1.0, 0.7]
    slate = env.action(scores)
    # The four scored items first, by score; then the ties at 0.0 by index, lower first.
    assert slate.tolist() == [861, 500, 42, 3, 0, 1, 2, 4, 5, 6, 7, 8]


@pytest.mark.parametrize(
    ("wrapper", "action", "message"),
    [
        (
            ScoreSlateWrapper,
            np.zeros(12),
            r"action must be 862 scores, shape \(862,\); got shape \(12,\)",
        ),
        (ScoreSlateWrapper, np.zeros((2, 862)), r"got shape \(2, 862\)"),
        (
            ScoreSlateWrapper,
            np.full(862, np.nan),
            r"`scores` must be finite; got nan at index \[0\]",
        ),
        (
            MultiDiscreteSlateWrapper,
            np.arange(11),
            r"action must be 12 item indices, shape \(12,\); got shape \(11,\)",
        ),
        (
            MultiDiscreteSlateWrapper,
            np.arange(12) + 851,
            r"items must lie in \[0, 862\); got \[862\]",
        ),
        (
            MultiDiscreteSlateWrapper,
            np.arange(12) - 1.0,
            r"must hold integer item indices; got dtype float64",
        ),
    ],
    ids=["score-short", "score-batch", "score-nan", "md-short", "md-range", "md-float"],
)
def test_invalid_actions_raise_value_error(wrapper, action, message):
    env = wrapper(CarouselEnv(users="deezer-small"))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=WRAPPER_IDS)
def test_wrapping_something_else_is_a_type_error(wrapper):
    with pytest.raises(TypeError, match=r"wraps a single-user carousel environment"):
        wrapper(gym.make("CartPole-v1"))


# -- scores to slates -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["continuous", "few-values", "clipped", "integers"])
def test_scores_to_slates_equals_a_stable_descending_sort(kind):
    rng = np.random.default_rng(11)
    for _ in range(60):
        n_users, n_items = int(rng.integers(1, 30)), int(rng.integers(1, 40))
        slate_size = int(rng.integers(1, n_items + 1))
        if kind == "continuous":
            scores = rng.standard_normal((n_users, n_items))
        elif kind == "few-values":  # many ties, inside and at the edge of the slate
            scores = rng.integers(-2, 3, size=(n_users, n_items)).astype(np.float32)
        elif kind == "clipped":  # what SB3 hands over after clipping a wide Gaussian
            scores = np.clip(2 * rng.standard_normal((n_users, n_items)), -1, 1)
        else:
            scores = rng.integers(0, 4, size=(n_users, n_items)).astype(np.uint8)
        got = scores_to_slates(scores, slate_size)
        np.testing.assert_array_equal(got, _stable_top(scores.astype(np.float64), slate_size))
        assert got.dtype == np.int64


def test_scores_to_slates_single_row_and_ties_by_index():
    assert scores_to_slates(np.array([0.5, 1.0, 0.5, 1.0, 0.5]), 3).tolist() == [1, 3, 0]
    assert scores_to_slates(np.ones(6), 6).tolist() == [0, 1, 2, 3, 4, 5]
    assert scores_to_slates(np.array([[0.0, 2.0]]), 1).tolist() == [[1]]
    # Zero and minus zero are equal scores: the lower index first.
    assert scores_to_slates(np.array([0.0, -0.0, 1.0, -0.0]), 3).tolist() == [2, 0, 1]


@pytest.mark.parametrize("tied_rows", ["every", "some", "none"])
def test_scores_to_slates_with_ties_at_the_boundary(tied_rows):
    """Scores clipped at 1.0: rows with more than slate_size items at the top tie."""
    rng = np.random.default_rng(5)
    scale = {"every": 3.0, "some": 0.8, "none": 0.1}[tied_rows]
    scores = np.clip(scale * rng.standard_normal((50, 40)), -1, 1).astype(np.float32)
    tied = np.count_nonzero(scores == 1.0, axis=1) > 6
    assert {"every": tied.all(), "some": 0 < tied.sum() < 50, "none": not tied.any()}[tied_rows]
    np.testing.assert_array_equal(scores_to_slates(scores, 6), _stable_top(scores, 6))


def test_scores_to_slates_of_no_users():
    slates = scores_to_slates(np.zeros((0, 10), dtype=np.float32), 3)
    assert slates.shape == (0, 3) and slates.dtype == np.int64


@pytest.mark.parametrize(
    ("scores", "slate_size", "error", "message"),
    [
        (
            np.zeros((2, 3, 4)),
            2,
            ValueError,
            r"`scores` must have shape \(n_items,\) or \(n_users, n_items\); "
            r"got shape \(2, 3, 4\)",
        ),
        (np.zeros(5), 6, ValueError, r"`slate_size` \(6\) must not exceed `n_items` \(5\)"),
        (
            np.array([0.0, np.inf]),
            1,
            ValueError,
            r"`scores` must be finite; got inf at index \[1\]",
        ),
        (np.array(["a", "b"]), 1, ValueError, r"`scores` must be real numbers; got dtype <U1"),
        (np.zeros(5), 0, ValueError, r"`slate_size` must be at least 1; got 0"),
        (np.zeros(5), 2.0, TypeError, r"`slate_size` must be an int; got float 2.0"),
    ],
    ids=["3-d", "too-long", "inf", "strings", "zero-slots", "float-size"],
)
def test_scores_to_slates_bad_input(scores, slate_size, error, message):
    with pytest.raises(error, match=message):
        scores_to_slates(scores, slate_size)


# -- the repair rule --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ([4, 0, 4, 4, 2], [4, 0, 1, 3, 2]),  # the docstring's example
        ([7, 7, 7], [7, 0, 1]),
        ([0, 0, 1], [0, 2, 1]),  # item 1 is used later in the row, so the fill skips it
        ([9, 8, 7], [9, 8, 7]),  # nothing to repair: unchanged
        ([2, 1, 0, 2, 1, 0], [2, 1, 0, 3, 4, 5]),
    ],
    ids=["docstring", "all-same", "skip-used", "distinct", "all-repeated-once"],
)
def test_repair_rule_by_hand(action, expected):
    assert repair_slates(np.array(action), 10).tolist() == expected


def test_repair_matches_the_rule_slot_by_slot_on_random_actions():
    rng = np.random.default_rng(3)
    for n_items, slate_size in [(5, 5), (10, 3), (20, 12), (862, 12)]:
        actions = rng.integers(0, min(n_items, 2 * slate_size), size=(200, slate_size))
        repaired = repair_slates(actions, n_items)
        assert repaired.shape == actions.shape and repaired.dtype == np.int64
        for row, original in zip(repaired, actions, strict=True):
            assert row.tolist() == _repair_by_hand(original, n_items)
            assert len(set(row.tolist())) == slate_size


def test_repair_keeps_valid_rows_and_is_deterministic():
    rng = np.random.default_rng(4)
    valid = np.argsort(rng.random((50, 862)), axis=1)[:, :12]
    np.testing.assert_array_equal(repair_slates(valid, 862), valid)
    actions = rng.integers(0, 30, size=(50, 12))
    np.testing.assert_array_equal(repair_slates(actions, 862), repair_slates(actions, 862))


@pytest.mark.parametrize(
    ("actions", "n_items", "message"),
    [
        (
            np.zeros((2, 2, 2), dtype=int),
            5,
            r"`actions` must have shape \(slate_size,\) or \(n_users, slate_size\); "
            r"got shape \(2, 2, 2\)",
        ),
        (np.array([0.0, 1.0]), 5, r"`actions` must hold integer item indices; got dtype float64"),
        (np.array([0, 5]), 5, r"`actions` items must lie in \[0, 5\); got \[5\]"),
        (np.array([0, -1]), 5, r"`actions` items must lie in \[0, 5\); got \[-1\]"),
        (np.array([0, 1, 2]), 2, r"`slate_size` \(3\) must not exceed `n_items` \(2\)"),
    ],
    ids=["3-d", "floats", "too-high", "negative", "longer-than-catalog"],
)
def test_repair_bad_input(actions, n_items, message):
    with pytest.raises(ValueError, match=message):
        repair_slates(actions, n_items)


# -- the batched entry point ------------------------------------------------------------


def test_actions_to_slates_both_adapters():
    rng = np.random.default_rng(8)
    scores = rng.uniform(-1, 1, size=(7, 30)).astype(np.float32)
    np.testing.assert_array_equal(
        actions_to_slates("score", scores, 30, 4), _stable_top(scores, 4)
    )
    items = rng.integers(0, 6, size=(7, 4))
    np.testing.assert_array_equal(
        actions_to_slates("multidiscrete", items, 30, 4), repair_slates(items, 30)
    )
    # Whole-number floats (as some SB3 code paths hand MultiDiscrete actions over).
    np.testing.assert_array_equal(
        actions_to_slates("multidiscrete", items.astype(np.float32), 30, 4),
        repair_slates(items, 30),
    )


@pytest.mark.parametrize(
    ("adapter", "actions", "message"),
    [
        (
            "ranking",
            np.zeros((2, 4)),
            r"`action` adapter must be one of 'score', 'multidiscrete'; got 'ranking'",
        ),
        (
            "score",
            np.zeros((2, 4)),
            r"score actions must have shape \(n_users, 30\); got shape \(2, 4\)",
        ),
        (
            "multidiscrete",
            np.zeros((2, 30), dtype=int),
            r"multidiscrete actions must have shape \(n_users, 4\); got shape \(2, 30\)",
        ),
    ],
    ids=["unknown-adapter", "score-shape", "multidiscrete-shape"],
)
def test_actions_to_slates_bad_input(adapter, actions, message):
    with pytest.raises(ValueError, match=message):
        actions_to_slates(adapter, actions, 30, 4)


def test_adapter_action_space_checks_its_sizes():
    assert adapter_action_space("score", 5, 2).shape == (5,)
    assert adapter_action_space("multidiscrete", 5, 2).nvec.tolist() == [5, 5]
    with pytest.raises(ValueError, match=r"`slate_size` \(6\) must not exceed `n_items` \(5\)"):
        adapter_action_space("score", 5, 6)


def test_wrappers_module_needs_no_torch():
    """wrappers.py must import in an interpreter where torch cannot be imported."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['stable_baselines3'] = None\n"
        "import carousel_env.wrappers, agents\n"
        "try:\n"
        "    import carousel_env.sb3_vec\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "try:\n"
        "    import agents.sb3\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    assert all('pip install "carousel-env[sb3]" fixes it' in line for line in lines)
