"""The SB3 agents (ppo, a2c, sac): interface, protocol, seeding, saving, runner, learning."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

import torch as th  # noqa: E402

import agents  # noqa: E402
from carousel_env import CarouselVectorEnv  # noqa: E402
from carousel_env.data import Catalog, Population, make_synthetic_population  # noqa: E402

ALGORITHMS = ["ppo", "a2c", "sac"]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ppo_vs_bandits.py"

#: Small, fast settings for SAC (its defaults train 50 steps of 512 visits per round).
FAST = {"sac": {"gradient_steps": 2, "batch_size": 32, "buffer_size": 500}}


@pytest.fixture(scope="module")
def sb3():
    """agents.sb3, imported inside the tests: importing it registers ppo/a2c/sac, which
    must not leak into the other agent tests' parametrisation at collection time."""
    import agents.sb3

    return agents.sb3


def make(name: str, world, seed: int = 0, **overrides):
    kwargs = {
        "n_items": world.n_items,
        "slate_size": world.slate_size,
        "n_segments": world.n_segments,
        "l_init": world.l_init,
        "n_features": world.n_features,
        "seed": seed,
    }
    return agents.make_agent(name, **kwargs, **{**FAST.get(name, {}), **overrides})


def play(agent, world, rounds: int, users: int = 40) -> list[np.ndarray]:
    seen = []
    for _ in range(rounds):
        observation = world.observe(users)
        slates = agent.act(observation)
        agent.update(observation, slates, world.streams(observation, slates))
        seen.append(slates)
    return seen


# -- building ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALGORITHMS)
def test_make_agent_builds_each_algorithm(sb3, name, make_world):
    world = make_world(0)
    agent = make(name, world)
    assert isinstance(agent, sb3.SB3Agent) and agent.name == name
    assert type(agent.model) is sb3.ALGORITHMS[name]
    assert name in agents.list_agents()

    observation = world.observe(25)
    slates = agent.act(observation)
    assert slates.shape == (25, world.slate_size) and slates.dtype == np.int64
    assert all(len(set(row)) == world.slate_size for row in slates.tolist())
    assert ((slates >= 0) & (slates < world.n_items)).all()

    one = {"features": observation["features"][0], "segment": int(observation["segment"][0])}
    single = agent.act(one)
    assert single.shape == (world.slate_size,)
    agent.update(one, single, np.ones(world.slate_size, dtype=np.int8))
    parameters = [p.detach() for p in agent.model.policy.parameters()]
    assert all(th.isfinite(p).all() for p in parameters)  # one visit: no NaN from its std


@pytest.mark.parametrize("name", ["ppo", "a2c"])
def test_multidiscrete_adapter_gives_valid_slates(sb3, name, make_world):
    world = make_world(0)
    agent = make(name, world, action="multidiscrete")
    assert agent.model.action_space.nvec.tolist() == [world.n_items] * world.slate_size
    for slates in play(agent, world, 2):
        assert all(len(set(row)) == world.slate_size for row in slates.tolist())


def test_overrides_reach_the_model(sb3, make_world):
    world = make_world(0)
    agent = make(
        "ppo",
        world,
        learning_rate=0.01,
        n_epochs=3,
        batch_size=16,
        policy_kwargs={"net_arch": (8,), "activation_fn": "tanh", "log_std_init": -1.0},
    )
    model = agent.model
    assert (model.learning_rate, model.n_epochs, model.batch_size) == (0.01, 3, 16)
    assert model.policy.optimizer.param_groups[0]["lr"] == 0.01
    assert model.policy.activation_fn is th.nn.Tanh
    assert model.policy.net_arch == [8]
    np.testing.assert_allclose(model.policy.log_std.detach().numpy(), -1.0)
    # Tuples become lists: the params survive a JSON round trip unchanged.
    assert agent.params["policy_kwargs"]["net_arch"] == [8]
    sac = make("sac", world, gradient_steps=7, buffer_size=300, tau=0.01)
    assert (sac.model.gradient_steps, sac.model.buffer_size, sac.model.tau) == (7, 300, 0.01)
    assert sac.model.replay_buffer.buffer_size == 300


BAD_ARGUMENTS = {
    "ppo-gradient-steps": (
        "ppo",
        {"gradient_steps": 3},
        TypeError,
        r"ppo takes no hyper-parameter 'gradient_steps'; its hyper-parameters: ",
    ),
    "reserved": ("ppo", {"n_steps": 3}, TypeError, r"ppo takes no hyper-parameter 'n_steps'"),
    "sac-multidiscrete": (
        "sac",
        {"action": "multidiscrete"},
        ValueError,
        r"SAC needs a continuous action: `action` must be 'score' for algorithm 'sac'; "
        r"got 'multidiscrete'",
    ),
    "unknown-adapter": (
        "ppo",
        {"action": "ranking"},
        ValueError,
        r"`action` must be one of 'score', 'multidiscrete'; got 'ranking'",
    ),
    "class-in-kwargs": (
        "ppo",
        {"policy_kwargs": {"activation_fn": th.nn.ReLU}},
        TypeError,
        r"ppo hyper-parameters must be JSON-serialisable so that the agent can be saved",
    ),
    "unknown-activation": (
        "ppo",
        {"policy_kwargs": {"activation_fn": "swish"}},
        ValueError,
        r"policy_kwargs\['activation_fn'\] must be one of "
        r"\['elu', 'leaky_relu', 'relu', 'tanh'\]; got 'swish'",
    ),
    "feedback": (
        "ppo",
        {"feedback": "always"},
        ValueError,
        r"`feedback` must be one of 'paper', 'published-code' or None; got 'always'",
    ),
    "threads": ("ppo", {"torch_threads": 0}, ValueError, r"`torch_threads` must be at least 1"),
}


@pytest.mark.parametrize(
    ("name", "overrides", "error", "message"),
    list(BAD_ARGUMENTS.values()),
    ids=list(BAD_ARGUMENTS),
)
def test_bad_arguments(sb3, make_world, name, overrides, error, message):
    with pytest.raises(error, match=message):
        make(name, make_world(0), **overrides)


def test_unknown_algorithm(sb3):
    with pytest.raises(
        ValueError, match=r"`algorithm` must be one of 'ppo', 'a2c', 'sac'; got 'dqn'"
    ):
        sb3.SB3Agent(20, 3, algorithm="dqn")


def test_feedback_is_accepted_and_ignored(sb3, make_world):
    world = make_world(0)
    a, b = make("ppo", world, feedback="paper"), make("ppo", world)
    observation = world.observe(10)
    np.testing.assert_array_equal(a.act(observation), b.act(observation))


# -- the protocol -----------------------------------------------------------------------


def test_update_must_follow_the_act_that_made_the_slates(sb3, make_world):
    world = make_world(0)
    agent = make("ppo", world)
    observation = world.observe(10)
    streams = np.zeros((10, world.slate_size), dtype=np.int8)
    with pytest.raises(ValueError, match=r"ppo: update\(\) must receive .*no act\(\) is pending"):
        agent.update(observation, np.tile(np.arange(3), (10, 1)), streams)
    slates = agent.act(observation)
    with pytest.raises(ValueError, match=r"they differ"):
        agent.update(observation, slates[:, ::-1].copy(), streams)
    slates = agent.act(observation)
    other = world.observe(10)
    with pytest.raises(ValueError, match=r"they differ"):
        agent.update(other, slates, streams)


@pytest.mark.parametrize("name", ["ppo", "a2c"])
def test_on_policy_round_is_one_step_of_one_visit_episodes(sb3, name, make_world, monkeypatch):
    """Return = reward = any stream; advantage = reward - value; every visit starts anew."""
    world = make_world(2)
    agent = make(name, world)
    captured = {}

    def capture():
        buffer = agent.model.rollout_buffer
        captured.update(
            rewards=buffer.rewards.copy(),
            returns=buffer.returns.copy(),
            values=buffer.values.copy(),
            advantages=buffer.advantages.copy(),
            starts=buffer.episode_starts.copy(),
        )

    monkeypatch.setattr(agent.model, "train", capture)
    observation = world.observe(30)
    slates = agent.act(observation)
    streams = world.streams(observation, slates)
    agent.update(observation, slates, streams)

    rewards = streams.any(axis=1).astype(np.float32)
    assert captured["rewards"].shape == (1, 30)
    np.testing.assert_array_equal(captured["rewards"][0], rewards)
    np.testing.assert_allclose(captured["returns"][0], rewards, atol=1e-6)
    np.testing.assert_allclose(
        captured["advantages"][0], rewards - captured["values"][0], atol=1e-6
    )
    assert (captured["starts"] == 1).all()
    assert agent.model.rollout_buffer is None  # the round's buffer is dropped after training
    assert agent.model.num_timesteps == 30


@pytest.mark.parametrize("name", ALGORITHMS)
def test_an_update_that_breaks_the_weights_is_undone(sb3, name, make_world, caplog):
    world = make_world(8)
    agent = make(name, world, **({"batch_size": 8} if name == "sac" else {}))
    play(agent, world, 1)
    before = [p.detach().clone() for p in agent.model.policy.parameters()]
    real_train = agent.model.train

    def poisoned_train(*args):
        real_train(*args)
        with th.no_grad():
            next(agent.model.policy.parameters()).fill_(float("nan"))

    agent.model.train = poisoned_train
    with caplog.at_level("WARNING", logger="agents.sb3"):
        play(agent, world, 1)
    after = list(agent.model.policy.parameters())
    assert all(th.equal(a, b) for a, b in zip(before, after, strict=True))
    assert agent.skipped_updates == 1
    assert "the update of this round was undone (1 so far)" in caplog.text
    agent.model.train = real_train
    play(agent, world, 1)  # and it carries on
    assert agent.state_dict()["state"]["skipped_updates"] == 1


def test_sac_replay_buffer_fills_a_round_at_a_time_and_wraps(sb3, make_world):
    world = make_world(3)
    agent = make("sac", world, buffer_size=100, batch_size=16)
    buffer = agent.model.replay_buffer
    assert buffer.next_observations is buffer.observations  # one copy: no bootstrapping
    for round_, users in enumerate([40, 40, 40]):
        observation = world.observe(users)
        slates = agent.act(observation)
        streams = world.streams(observation, slates)
        agent.update(observation, slates, streams)
        assert buffer.size() == min(100, 40 * (round_ + 1))
    assert buffer.full and buffer.pos == 20
    # The newest visits sit just before pos; every stored visit is done with no timeout.
    np.testing.assert_array_equal(
        buffer.rewards[:20, 0], streams.any(axis=1)[20:].astype(np.float32)
    )
    assert (buffer.dones == 1).all() and (buffer.timeouts == 0).all()


# -- seeding and saving -----------------------------------------------------------------


@pytest.mark.parametrize("name", ALGORITHMS)
def test_same_seed_same_slates_and_global_generators_untouched(sb3, name, make_world):
    # The global generators are only read here: the agents must leave them as they were.
    torch_before = th.random.get_rng_state()
    numpy_before = np.random.get_state()  # noqa: NPY002

    first = play(make(name, make_world(1), seed=5), make_world(1), 3)
    second = play(make(name, make_world(1), seed=5), make_world(1), 3)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    other = play(make(name, make_world(1), seed=6), make_world(1), 3)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))

    assert th.equal(th.random.get_rng_state(), torch_before)
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == numpy_before[0] and np.array_equal(after[1], numpy_before[1])
    assert after[2:] == numpy_before[2:]


@pytest.mark.parametrize("name", ALGORITHMS)
def test_save_load_continues_bit_for_bit(sb3, name, make_world, tmp_path):
    world = make_world(4)
    agent = make(name, world, seed=9)
    play(agent, world, 2)
    agent.save(tmp_path / "agent.npz")
    loaded = agents.load_agent(tmp_path / "agent.npz")
    assert isinstance(loaded, sb3.SB3Agent) and loaded.name == name
    assert loaded.params == agent.params

    twin_a, twin_b = make_world(5), make_world(5)
    for a, b in zip(play(agent, twin_a, 2), play(loaded, twin_b, 2), strict=True):
        np.testing.assert_array_equal(a, b)


def test_state_dict_round_trip_and_reset(sb3, make_world):
    world = make_world(6)
    agent = make("ppo", world, seed=2)
    fresh_slates = agent.act(world.observe(5))
    play(agent, world, 2)
    state = agent.state_dict()
    assert json.loads(json.dumps(state["params"])) == state["params"]
    assert state["state"]["model"].dtype == np.uint8

    copy = make("ppo", world, seed=2)
    copy.load_state_dict(state)
    probe = world.observe(8)
    np.testing.assert_array_equal(agent.predict_slates(probe), copy.predict_slates(probe))

    agent.reset()
    np.testing.assert_array_equal(agent.act(make_world(6).observe(5)), fresh_slates)


def test_predict_slates_is_deterministic_and_records_nothing(sb3, make_world):
    world = make_world(7)
    agent = make("ppo", world)
    observation = world.observe(6)
    np.testing.assert_array_equal(
        agent.predict_slates(observation), agent.predict_slates(observation)
    )
    with pytest.raises(ValueError, match=r"no act\(\) is pending"):
        agent.update(observation, agent.predict_slates(observation), np.zeros((6, 3), np.int8))


# -- through the experiment runner ------------------------------------------------------


@pytest.fixture(scope="module")
def runner_population():
    return make_synthetic_population(n_users=2_000, n_segments=10, seed=1)


def _run(out, agents_spec, population, rounds, **kwargs):
    from carousel_env.experiment import run_experiment

    return run_experiment(
        agents_spec,
        rounds=rounds,
        users_per_round=200,
        users=population,
        out=out,
        plot=False,
        **kwargs,
    )


def _cumulative(out) -> dict[str, list[float]]:
    data = json.loads((out / "results.json").read_text())
    return {
        agent: entry["per_seed"]["0"]["cumulative_regret"]
        for agent, entry in data["agents"].items()
    }


@pytest.mark.parametrize("jobs", [1, 2], ids=["in-process", "forked"])
def test_runner_trains_ppo_and_a2c_beside_random(sb3, runner_population, tmp_path, jobs):
    result = _run(tmp_path / "out", "ppo,a2c,random", runner_population, 3, jobs=jobs)
    assert [row["agent"] for row in result.summary()] == ["ppo", "a2c", "random"]
    assert all(len(curve) == 3 for curve in _cumulative(tmp_path / "out").values())


def test_runner_trains_sac(sb3, runner_population, tmp_path):
    overrides = {"gradient_steps": 2, "batch_size": 64, "buffer_size": 1_000}
    _run(tmp_path / "out", "sac", runner_population, 3, jobs=1, agent_overrides=overrides)
    assert len(_cumulative(tmp_path / "out")["sac"]) == 3


def test_runner_resume_equals_uninterrupted(sb3, runner_population, tmp_path):
    _run(tmp_path / "straight", "ppo", runner_population, 4, jobs=1)
    _run(tmp_path / "resumed", "ppo", runner_population, 2, jobs=1)
    _run(tmp_path / "resumed", "ppo", runner_population, 4, jobs=1, resume=True)
    assert _cumulative(tmp_path / "straight") == _cumulative(tmp_path / "resumed")


# -- learning ---------------------------------------------------------------------------


def _three_good_items() -> tuple[Population, Catalog]:
    """300 users and 20 items, of which 5, 11 and 17 have bias +0.5 and the rest -3.0:
    whatever the user, p is about 0.6 for the three and about 0.05 for the others, so the
    best slate of 3 is nearly the same for everyone."""
    rng = np.random.default_rng(0)
    n_users, n_features, n_items = 300, 5, 20
    taste = rng.normal(0.0, 1.0, (n_users, n_features - 1))
    features = np.concatenate([taste, np.ones((n_users, 1))], axis=1).astype(np.float32)
    population = Population(features, rng.integers(0, 4, n_users), 4, name="learn")
    weights = np.concatenate(
        [rng.normal(0.0, 0.3, (n_items, n_features - 1)), np.full((n_items, 1), -3.0)], axis=1
    )
    weights[[5, 11, 17], -1] = 0.5
    return population, Catalog(weights, name="three-good")


def _cumulative_expected_regret(agent, population, catalog, rounds=30, users=200) -> float:
    env = CarouselVectorEnv(
        num_envs=users, users=population, catalog=catalog, slate_size=3, max_episode_steps=None
    )
    observation, _ = env.reset(seed=0)  # the same users for every agent
    total = 0.0
    for _ in range(rounds):
        slates = agent.act(observation)
        next_observation, _, _, _, info = env.step(slates)
        agent.update(observation, slates, info["streams"])
        observation = next_observation
        total += float(info["expected_regret"].sum())
    return total


def test_ppo_beats_random_on_an_easy_instance(sb3):
    """Measured with seed 0: PPO 490 and random 3,380 (expected regret, 30 rounds of 200
    users). Expected regret carries no click noise, and both agents see the same users, so
    the only randomness left is the agents' own. Random's round is a sum of 200 visits'
    regrets of about 0.56 each, with a standard deviation of about 0.1 per visit, so its
    30-round total varies by about sqrt(6,000) x 0.1 = 8: the bound 0.5 x random = 1,690
    sits far from both figures."""
    population, catalog = _three_good_items()
    kwargs = {"n_items": 20, "slate_size": 3, "n_segments": 4, "seed": 0}
    random_regret = _cumulative_expected_regret(
        agents.make_agent("random", **kwargs), population, catalog
    )
    ppo_regret = _cumulative_expected_regret(
        agents.make_agent("ppo", n_features=5, **kwargs), population, catalog
    )
    assert ppo_regret < 0.5 * random_regret, (ppo_regret, random_regret)


# -- the example ------------------------------------------------------------------------


def _load_example():
    spec = importlib.util.spec_from_file_location("ppo_vs_bandits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--rounds", "2", "--users-per-round", "200", "--n-users", "2000", "--jobs", "1"]


def test_example_prints_its_table_and_saves_the_plot(sb3, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _load_example().main([*TINY, "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    agents_listed = [line.split()[0] for line in lines[2:5]]
    assert agents_listed == ["ppo", "random", "ts-seg-pessimistic"]
    assert (tmp_path / "out" / "regret.png").exists()


def test_example_runs_as_a_script_from_another_folder(tmp_path):
    command = [sys.executable, str(EXAMPLE), *TINY, "--out", "o"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "results.json").exists()
