"""CarouselSB3VecEnv: SB3's VecEnv protocol over a round of users, and SB3 learning on it."""

from __future__ import annotations

import gc
import io
import warnings

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import torch as th  # noqa: E402
from stable_baselines3 import A2C, PPO, SAC  # noqa: E402
from stable_baselines3.common.distributions import (  # noqa: E402
    DiagGaussianDistribution,
    MultiCategoricalDistribution,
    StateDependentNoiseDistribution,
)
from stable_baselines3.common.vec_env import VecMonitor  # noqa: E402

from carousel_env import CarouselVectorEnv  # noqa: E402
from carousel_env.sb3_vec import (  # noqa: E402
    CarouselSB3VecEnv,
    FastDiagGaussianDistribution,
    FastMultiInputPolicy,
)
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
    assert infos == [{"TimeLimit.truncated": False}] * N_ENVS
    for key in ("features", "segment"):  # the terminal observations, as whole arrays
        np.testing.assert_array_equal(venv.served_observation[key], served[key])
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


def test_info_dicts_are_distinct_and_untracked_by_the_garbage_collector(venv):
    venv.reset()
    _, _, _, infos = venv.step(np.zeros((N_ENVS, 862), dtype=np.float32))
    assert len({id(info) for info in infos}) == N_ENVS  # wrappers may write into one
    assert not any(gc.is_tracked(info) for info in infos)
    infos[0]["note"] = 1
    assert "note" not in infos[1]


def test_terminal_observations_on_request(small_population):
    venv = CarouselSB3VecEnv(num_envs=N_ENVS, users=small_population, terminal_observations=True)
    served = {key: value.copy() for key, value in venv.reset().items()}
    _, _, _, infos = venv.step(np.zeros((N_ENVS, 862), dtype=np.float32))
    for i, info in enumerate(infos):
        assert set(info) == {"terminal_observation", "TimeLimit.truncated"}
        assert info["TimeLimit.truncated"] is False
        np.testing.assert_array_equal(
            info["terminal_observation"]["features"], served["features"][i]
        )
        assert info["terminal_observation"]["segment"] == served["segment"][i]


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
        (
            {"terminal_observations": "yes", "num_envs": 2},
            TypeError,
            r"`terminal_observations` must be a bool; got 'yes'",
        ),
    ],
    ids=["not-a-vector-env", "unknown-adapter", "terminal-observations-not-bool"],
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


# -- FastMultiInputPolicy -------------------------------------------------------------------


def _twin_policies(venv, **policy_kwargs):
    """SB3's MultiInputPolicy and FastMultiInputPolicy with the same weights."""
    kwargs = {"n_steps": 1, "seed": 0, "device": "cpu", "policy_kwargs": policy_kwargs}
    stock = PPO("MultiInputPolicy", venv, **kwargs)
    fast = PPO(FastMultiInputPolicy, venv, **kwargs)
    fast.policy.load_state_dict(stock.policy.state_dict())
    return stock.policy, fast.policy


# float32 log-densities of 862 scores are sums of 862 terms, each rounded to a relative
# 6e-8: the two computations may differ by about 862 * 6e-8 of the total (5e-5 relative).
LOG_PROB_TOLERANCE = {"rtol": 1e-4, "atol": 1e-3}


def test_fast_policy_samples_sb3s_actions_with_sb3s_log_probabilities(venv):
    stock, fast = _twin_policies(venv, log_std_init=-1.0)
    assert type(fast.action_dist) is FastDiagGaussianDistribution
    venv.seed(0)
    obs = stock.obs_to_tensor(venv.reset())[0]
    with th.no_grad():
        th.manual_seed(3)
        stock_actions, stock_values, stock_log_probs = stock(obs)
        th.manual_seed(3)
        fast_actions, fast_values, fast_log_probs = fast(obs)
    # Same generator state, same torch call: bit for bit the same actions.
    assert th.equal(stock_actions, fast_actions) and th.equal(stock_values, fast_values)
    np.testing.assert_allclose(fast_log_probs, stock_log_probs, **LOG_PROB_TOLERANCE)
    with th.no_grad():
        deterministic = fast._predict(obs, deterministic=True)
    assert th.equal(deterministic, stock._predict(obs, deterministic=True))


def test_fast_policy_evaluates_actions_and_gradients_as_sb3s(venv):
    stock, fast = _twin_policies(venv, log_std_init=-0.5)
    obs = stock.obs_to_tensor(venv.reset())[0]
    actions = th.from_numpy(_random_actions(venv.action_space, N_ENVS, 5))
    outputs = [policy.evaluate_actions(obs, actions) for policy in (stock, fast)]
    (_, stock_log_prob, stock_entropy), (_, fast_log_prob, fast_entropy) = outputs
    np.testing.assert_allclose(
        fast_log_prob.detach(), stock_log_prob.detach(), **LOG_PROB_TOLERANCE
    )
    assert fast_entropy.shape == (N_ENVS,)
    np.testing.assert_allclose(fast_entropy.detach(), stock_entropy.detach(), rtol=1e-5)

    for _, log_prob, entropy in outputs:
        (log_prob.mean() + 0.1 * entropy.mean()).backward()
    for (name, stock_param), fast_param in zip(
        stock.named_parameters(), fast.parameters(), strict=True
    ):
        if stock_param.grad is None:  # the value network: not in this loss
            assert fast_param.grad is None, name
            continue
        # Gradients are averages over the batch of the same float32 terms.
        np.testing.assert_allclose(
            fast_param.grad, stock_param.grad, rtol=1e-4, atol=1e-6, err_msg=name
        )


def test_fast_log_probability_gradient_is_exact():
    """The hand-written backward against finite differences, in float64."""
    from carousel_env.sb3_vec import _GaussianLogProb

    generator = th.Generator().manual_seed(0)
    inputs = [th.randn(shape, generator=generator, dtype=th.float64) for shape in ((5, 4), (5, 4))]
    inputs.append(0.3 * th.randn(4, generator=generator, dtype=th.float64))
    for tensor in inputs:
        tensor.requires_grad_(True)
    assert th.autograd.gradcheck(_GaussianLogProb.apply, tuple(inputs))


def test_fast_distribution_reparametrises_and_exposes_the_torch_normal():
    dist = FastDiagGaussianDistribution(3)
    mean = th.zeros(4, 3, requires_grad=True)
    log_std = th.tensor([0.0, -1.0, 1.0], requires_grad=True)
    dist.proba_distribution(mean, log_std)
    actions = dist.sample()
    actions.sum().backward()  # d(mean + eps * std) / d mean = 1
    np.testing.assert_array_equal(mean.grad, np.ones((4, 3)))

    normal = dist.distribution
    np.testing.assert_allclose(
        dist.log_prob(actions).detach(), normal.log_prob(actions).sum(1).detach(), rtol=1e-6
    )
    np.testing.assert_allclose(
        dist.entropy().detach(), normal.entropy().sum(1).detach(), rtol=1e-6
    )
    # Any other action, and one broadcast against the batch (the plain expression).
    for other in (actions.detach() + 0.5, actions.detach()[0]):
        np.testing.assert_allclose(
            dist.log_prob(other).detach(), normal.log_prob(other).sum(-1).detach(), rtol=1e-6
        )
    assert th.equal(dist.mode(), mean)


def test_fast_policy_keeps_sb3s_distribution_elsewhere(small_population):
    multidiscrete = CarouselSB3VecEnv(num_envs=4, action="multidiscrete", users=small_population)
    model = PPO(FastMultiInputPolicy, multidiscrete, n_steps=1, batch_size=4, device="cpu")
    assert type(model.policy.action_dist) is MultiCategoricalDistribution
    score = CarouselSB3VecEnv(num_envs=4, users=small_population)
    model = PPO(FastMultiInputPolicy, score, n_steps=1, batch_size=4, device="cpu", use_sde=True)
    assert type(model.policy.action_dist) is StateDependentNoiseDistribution
    assert not isinstance(model.policy.action_dist, DiagGaussianDistribution)


@pytest.mark.parametrize(
    ("algorithm", "kwargs"),
    [(PPO, {"batch_size": N_ENVS, "n_epochs": 2}), (A2C, {})],
    ids=["ppo", "a2c"],
)
def test_fast_policy_learns_saves_and_loads(small_population, algorithm, kwargs):
    venv = CarouselSB3VecEnv(num_envs=N_ENVS, users=small_population)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = algorithm(FastMultiInputPolicy, venv, n_steps=1, seed=0, device="cpu", **kwargs)
        model.learn(total_timesteps=4 * N_ENVS)
    assert all(bool(th.isfinite(p).all()) for p in model.policy.parameters())

    saved = io.BytesIO()
    model.save(saved)
    saved.seek(0)
    loaded = algorithm.load(saved, device="cpu")
    assert type(loaded.policy) is FastMultiInputPolicy
    obs = venv.reset()
    np.testing.assert_array_equal(
        loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0]
    )
