"""CarouselSB3VecEnv: SB3's VecEnv protocol over a round of users, and SB3 learning on it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3 import A2C, PPO, SAC  # noqa: E402
from stable_baselines3.common.vec_env import VecMonitor  # noqa: E402

from carousel_env import CarouselVectorEnv  # noqa: E402
from carousel_env.sb3_vec import CarouselSB3VecEnv  # noqa: E402
from carousel_env.wrappers import actions_to_slates  # noqa: E402

N_ENVS = 64


@pytest.fixture
def venv(small_population):
    return CarouselSB3VecEnv(num_envs=N_ENVS, users=small_population)


def _random_actions(space, n: int, seed: int) -> np.ndarray:
    space.seed(seed)
    return np.stack([space.sample() for _ in range(n)])


@pytest.mark.parametrize("action", ["score", "multidiscrete"])
def test_reset_and_step_shapes_and_sb3_conventions(small_population, action):
    venv = CarouselSB3VecEnv(num_envs=N_ENVS, action=action, users=small_population)
    assert venv.num_envs == N_ENVS
    assert venv.observation_space == venv.env.single_observation_space
    expected_shape = (862,) if action == "score" else (12,)
    assert venv.action_space.shape == expected_shape

    venv.seed(1)
    obs = venv.reset()
    assert obs["features"].shape == (N_ENVS, 97) and obs["features"].dtype == np.float32
    assert obs["segment"].shape == (N_ENVS,)
    served = {key: value.copy() for key, value in obs.items()}

    new_obs, rewards, dones, infos = venv.step(_random_actions(venv.action_space, N_ENVS, 2))
    assert rewards.shape == (N_ENVS,) and rewards.dtype == np.float32
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    assert dones.shape == (N_ENVS,) and dones.dtype == bool and dones.all()
    assert isinstance(infos, list) and len(infos) == N_ENVS
    for i, info in enumerate(infos):
        assert info["TimeLimit.truncated"] is False
        np.testing.assert_array_equal(
            info["terminal_observation"]["features"], served["features"][i]
        )
        assert info["terminal_observation"]["segment"] == served["segment"][i]
    # The next round's users are the new episodes' first observations.
    assert new_obs["features"].shape == (N_ENVS, 97)
    assert not np.array_equal(new_obs["features"], served["features"])
    np.testing.assert_array_equal(rewards, venv.last_info["streams"].any(axis=1))
    assert venv.last_info["expected_reward"].shape == (N_ENVS,)


@pytest.mark.parametrize("action", ["score", "multidiscrete"])
def test_steps_are_the_native_envs_steps_on_the_converted_slates(small_population, action):
    venv = CarouselSB3VecEnv(num_envs=N_ENVS, action=action, users=small_population)
    native = CarouselVectorEnv(num_envs=N_ENVS, users=small_population, max_episode_steps=None)
    venv.seed(3)
    obs = venv.reset()
    native_obs, _ = native.reset(seed=3)
    for round_ in range(3):
        np.testing.assert_array_equal(obs["features"], native_obs["features"])
        actions = _random_actions(venv.action_space, N_ENVS, round_)
        obs, rewards, _, _ = venv.step(actions)
        slates = actions_to_slates(action, actions, 862, 12)
        native_obs, native_rewards, _, _, info = native.step(slates)
        np.testing.assert_array_equal(rewards, native_rewards)
        np.testing.assert_array_equal(venv.last_info["streams"], info["streams"])


def test_seed_is_used_once_and_reproduces_the_round(venv):
    venv.seed(7)
    first = venv.reset()["features"].copy()
    unseeded = venv.reset()["features"]  # the seed applies to one reset only
    assert not np.array_equal(first, unseeded)
    venv.seed(7)
    np.testing.assert_array_equal(venv.reset()["features"], first)


def test_wraps_a_given_env_and_ignores_its_horizon(small_population):
    native = CarouselVectorEnv(num_envs=8, users=small_population, max_episode_steps=2)
    venv = CarouselSB3VecEnv(native, action="multidiscrete")
    assert venv.env is native and venv.num_envs == 8
    venv.reset()
    for _ in range(5):  # past the native horizon: every step still ends every episode
        _, _, dones, infos = venv.step(np.tile(np.arange(12), (8, 1)))
        assert dones.all() and not any(info["TimeLimit.truncated"] for info in infos)


def test_attribute_access_has_one_entry_per_user(venv):
    assert venv.get_attr("slate_size") == [12] * N_ENVS
    assert venv.get_attr("num_envs", indices=[0, 5]) == [N_ENVS, N_ENVS]
    assert venv.env_is_wrapped(VecMonitor, indices=3) == [False]
    results = venv.env_method("reset", seed=1, indices=[1])
    assert len(results) == 1 and results[0][0]["features"].shape == (N_ENVS, 97)
    venv.set_attr("label", "x")
    assert venv.get_attr("label", indices=0) == ["x"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"env": "CarouselEnv-v0"},
            TypeError,
            r"`env` must be a CarouselVectorEnv \(or a vector wrapper around one\); got str",
        ),
        (
            {"action": "ranking", "num_envs": 2},
            ValueError,
            r"`action` adapter must be one of 'score', 'multidiscrete'; got 'ranking'",
        ),
    ],
    ids=["not-a-vector-env", "unknown-adapter"],
)
def test_bad_arguments(small_population, kwargs, error, message):
    if "env" not in kwargs:
        kwargs = {**kwargs, "users": small_population}
    with pytest.raises(error, match=message):
        CarouselSB3VecEnv(**kwargs)


def test_env_and_env_arguments_together_is_an_error(small_population):
    native = CarouselVectorEnv(num_envs=2, users=small_population)
    with pytest.raises(ValueError, match=r"give either `env` or the environment's arguments"):
        CarouselSB3VecEnv(native, num_envs=4)


def test_step_before_reset_and_wait_without_async(venv):
    import gymnasium as gym

    venv.step_async(np.zeros((N_ENVS, 862), dtype=np.float32))
    with pytest.raises(gym.error.ResetNeeded):
        venv.step_wait()
    venv.reset()
    with pytest.raises(RuntimeError, match=r"without a pending step_async"):
        venv.step_wait()


def test_vec_monitor_reports_one_visit_episodes(venv):
    monitored = VecMonitor(venv)
    monitored.reset()
    _, rewards, _, infos = monitored.step(np.zeros((N_ENVS, 862), dtype=np.float32))
    assert [info["episode"]["l"] for info in infos] == [1] * N_ENVS
    assert [info["episode"]["r"] for info in infos] == rewards.tolist()


@pytest.mark.parametrize(
    ("algorithm", "action", "kwargs"),
    [
        (PPO, "score", {"n_steps": 2, "batch_size": 64, "n_epochs": 2}),
        (PPO, "multidiscrete", {"n_steps": 2, "batch_size": 64, "n_epochs": 2}),
        (A2C, "score", {"n_steps": 1}),
        (SAC, "score", {"batch_size": 64, "learning_starts": 64, "buffer_size": 1_000}),
    ],
    ids=["ppo-score", "ppo-multidiscrete", "a2c-score", "sac-score"],
)
def test_sb3_learns_on_the_adapter_without_warnings(small_population, algorithm, action, kwargs):
    """SB3's own learn() on the batched adapter: MultiInputPolicy takes the Dict as is."""
    venv = CarouselSB3VecEnv(num_envs=N_ENVS, action=action, users=small_population)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = algorithm("MultiInputPolicy", venv, seed=0, device="cpu", **kwargs)
        model.learn(total_timesteps=4 * N_ENVS)
    assert model.num_timesteps >= 4 * N_ENVS
    actions, _ = model.predict(venv.reset(), deterministic=True)
    assert actions.shape == (N_ENVS, *venv.action_space.shape)
