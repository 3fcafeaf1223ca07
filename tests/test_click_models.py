"""Click models: exact formulas worked by hand, and the optimality of sorted slates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from carousel_env.click_models import (
    CascadeClickModel,
    SwipeClickModel,
    make_click_model,
)


def test_cascade_slot_probabilities_by_hand():
    # p = (0.5, 0.2, 0.1): stream at slot 1 = 0.5, slot 2 = 0.5 * 0.2, slot 3 = 0.5 * 0.8 * 0.1
    model = CascadeClickModel()
    np.testing.assert_allclose(model.slot_probabilities([0.5, 0.2, 0.1]), [0.5, 0.1, 0.04])
    assert model.expected_reward(np.array([0.5, 0.2, 0.1])) == pytest.approx(0.64)


def test_swipe_slot_probabilities_by_hand():
    # l_init = 1, s = 0.5: slot 2 is seen half the time, slot 3 a quarter of the time.
    model = SwipeClickModel(l_init=1, swipe_probability=0.5)
    np.testing.assert_allclose(
        model.slot_probabilities([0.5, 0.2, 0.1]), [0.5, 0.5 * 0.5 * 0.2, 0.25 * 0.5 * 0.8 * 0.1]
    )


def test_swipe_with_certain_swipes_is_the_cascade():
    probs = np.random.default_rng(0).random((50, 12)) * 0.3
    swipe = SwipeClickModel(l_init=3, swipe_probability=1.0)
    np.testing.assert_allclose(
        swipe.expected_reward(probs), CascadeClickModel().expected_reward(probs), rtol=1e-12
    )


def test_cascade_reward_ignores_order_but_swipe_reward_does_not():
    probs = np.array([0.05, 0.3, 0.1, 0.2])
    cascade, swipe = CascadeClickModel(), SwipeClickModel(l_init=1, swipe_probability=0.6)
    assert cascade.expected_reward(probs) == pytest.approx(cascade.expected_reward(probs[::-1]))
    assert swipe.expected_reward(np.sort(probs)[::-1]) > swipe.expected_reward(np.sort(probs))


@pytest.mark.parametrize(
    "model",
    [CascadeClickModel(), SwipeClickModel(l_init=1, swipe_probability=0.4)],
    ids=["cascade", "swipe"],
)
def test_the_best_slate_is_the_top_items_in_decreasing_order(model):
    """Exhaustive check on 7 items and 3 slots: no ordered slate beats the sorted top 3."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        p = rng.random(7) * rng.random()
        best = max(
            model.expected_reward(p[list(slate)]) for slate in itertools.permutations(range(7), 3)
        )
        assert model.expected_reward(np.sort(p)[::-1][:3]) == pytest.approx(best, rel=1e-12)


def test_sampling_keeps_only_the_leftmost_success():
    model = CascadeClickModel()
    probs = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    streams = model.sample(probs, np.random.default_rng(0))
    np.testing.assert_array_equal(streams, [[0, 1, 0], [0, 0, 0], [1, 0, 0]])
    assert streams.dtype == np.int8


def test_swipe_sampling_never_streams_an_unseen_card():
    model = SwipeClickModel(l_init=2, swipe_probability=0.0)
    streams = model.sample(np.ones((100, 5)) * np.array([0, 0, 1, 1, 1]), np.random.default_rng(0))
    assert streams.sum() == 0


def test_make_click_model_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"one of \['cascade', 'swipe'\].*got 'pbm'"):
        make_click_model("pbm")
    model = SwipeClickModel()
    assert make_click_model(model) is model
