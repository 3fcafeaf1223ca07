"""CarouselVectorEnv: make_vec, batched forms, agreement with the single env, determinism."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import carousel_env  # noqa: F401  (registers CarouselEnv-v0)
from carousel_env import CarouselEnv, CarouselVectorEnv


def test_make_vec_builds_the_native_batched_env(small_population):
    envs = gym.make_vec("CarouselEnv-v0", num_envs=64, users=small_population)
    assert isinstance(envs.unwrapped, CarouselVectorEnv)
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    obs, info = envs.reset(seed=0)
    assert obs["features"].shape == (64, 97) and obs["features"].dtype == np.float32
    assert obs["segment"].shape == (64,)
    assert envs.observation_space.contains(obs)
    assert envs.single_observation_space.contains(
        {"features": obs["features"][0], "segment": obs["segment"][0]}
    )
    slates = envs.action_space.sample()
    assert slates.shape == (64, 12) and envs.action_space.contains(slates)
    obs, rewards, terminated, truncated, info = envs.step(slates)
    assert rewards.shape == (64,) and rewards.dtype == np.float64
    assert info["streams"].shape == (64, 12) and info["streams"].dtype == np.int8
    assert (info["streams"].sum(axis=1) <= 1).all()
    np.testing.assert_array_equal(rewards, info["streams"].sum(axis=1))
    np.testing.assert_allclose(info["regret"], info["optimal_reward"] - rewards)
    for key in ("expected_reward", "optimal_reward", "expected_regret", "user_index", "segment"):
        assert info[key].shape == (64,)
    assert not terminated.any() and not truncated.any()


def test_single_and_vector_env_agree_with_one_seed(small_population):
    """num_envs=1 and the same seed: same users, same streams, same exact rewards."""
    single = CarouselEnv(users=small_population)
    vector = CarouselVectorEnv(num_envs=1, users=small_population)
    obs_s, info_s = single.reset(seed=9)
    obs_v, info_v = vector.reset(seed=9)
    rng = np.random.default_rng(1)
    for _ in range(40):
        np.testing.assert_array_equal(obs_s["features"], obs_v["features"][0])
        slate = rng.choice(862, size=12, replace=False)
        obs_s, reward_s, _, _, info_s = single.step(slate)
        obs_v, reward_v, _, _, info_v = vector.step(slate[None, :])
        assert reward_s == reward_v[0]
        np.testing.assert_array_equal(info_s["streams"], info_v["streams"][0])
        assert info_s["expected_reward"] == info_v["expected_reward"][0]
        assert info_s["optimal_reward"] == info_v["optimal_reward"][0]


def test_vector_expected_rewards_equal_single_env_for_the_same_users(small_population):
    vector = CarouselVectorEnv(num_envs=300, users=small_population)
    vector.reset(seed=2)
    slates = vector.action_space.sample()
    _, _, _, _, info = vector.step(slates)
    single = CarouselEnv(users=small_population)
    probs = single.sim.serve(info["user_index"], slates, np.random.default_rng(0))
    np.testing.assert_array_equal(probs["expected_reward"], info["expected_reward"])


def test_same_seed_same_rounds_bit_for_bit(small_population):
    def rounds(seed):
        envs = CarouselVectorEnv(num_envs=500, users=small_population)
        obs, _ = envs.reset(seed=seed)
        out = [obs["features"].copy()]
        for _ in range(5):
            obs, rewards, _, _, info = envs.step(envs.action_space.sample())
            out += [obs["features"].copy(), rewards, info["streams"], info["expected_reward"]]
        return out

    first, second = rounds(4), rounds(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0], rounds(5)[0])


def test_users_do_not_depend_on_the_slates_shown(small_population):
    """Common random numbers: two agents with the same seed meet the same users."""
    a = CarouselVectorEnv(num_envs=200, users=small_population)
    b = CarouselVectorEnv(num_envs=200, users=small_population)
    a.reset(seed=3)
    b.reset(seed=3)
    for _ in range(4):
        _, _, _, _, info_a = a.step(np.tile(np.arange(12), (200, 1)))
        _, _, _, _, info_b = b.step(a.action_space.sample())
        np.testing.assert_array_equal(info_a["user_index"], info_b["user_index"])


def test_truncates_every_user_together_and_autoresets_in_the_same_step(small_population):
    envs = CarouselVectorEnv(num_envs=10, users=small_population, max_episode_steps=3)
    envs.reset(seed=0)
    for step in range(1, 7):
        obs, _, terminated, truncated, info = envs.step(envs.action_space.sample())
        assert not terminated.any()
        assert truncated.all() == (step % 3 == 0) and truncated.any() == truncated.all()
        if truncated.all():
            assert info["final_obs"] is obs and info["_final_obs"].all()
            assert "streams" in info["final_info"]


@pytest.mark.parametrize(
    ("slates", "message"),
    [
        (np.zeros((10, 12), dtype=np.int64), r"row 0 of the batch: slate has duplicate items"),
        (np.tile(np.arange(12), (9, 1)), r"slate must have shape \(10, 12\).*got shape \(9, 12\)"),
        (np.tile(np.arange(12.0), (10, 1)), r"integer item indices; got dtype float64"),
    ],
    ids=["duplicates", "wrong_batch", "floats"],
)
def test_invalid_batches_raise_value_error(small_population, slates, message):
    envs = CarouselVectorEnv(num_envs=10, users=small_population)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        envs.step(slates)


def test_reset_refuses_one_seed_per_user(small_population):
    envs = CarouselVectorEnv(num_envs=3, users=small_population)
    with pytest.raises(TypeError, match="one int for the whole batch"):
        envs.reset(seed=[1, 2, 3])


def test_get_state_then_set_state_continues_bit_for_bit(small_population):
    straight = CarouselVectorEnv(num_envs=50, users=small_population)
    straight.reset(seed=8)
    straight.step(straight.action_space.sample())
    state = straight.get_state()
    slates = np.tile(np.arange(12), (50, 1))
    expected = straight.step(slates)

    resumed = CarouselVectorEnv(num_envs=50, users=small_population)
    resumed.reset(seed=123)
    resumed.set_state(state)
    got = resumed.step(slates)
    np.testing.assert_array_equal(expected[0]["features"], got[0]["features"])
    np.testing.assert_array_equal(expected[4]["streams"], got[4]["streams"])
    with pytest.raises(ValueError, match=r"`state\['users'\]` must hold 50 user indices"):
        resumed.set_state({**state, "users": state["users"][:3]})
