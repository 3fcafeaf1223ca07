"""Stable-Baselines3 algorithms behind the bandit agent interface: ``ppo``, ``a2c``, ``sac``.

:class:`SB3Agent` lets the experiment runner train an SB3 algorithm online, round after
round, on exactly the users the bandit agents see. The carousel problem is a contextual
bandit, so every user visit is treated as an episode of length one:

- ``act(observation)`` runs the policy (stochastic) on every user of the round, turns each
  action into a slate with an action adapter (:mod:`carousel_env.wrappers`) and records
  what the algorithm will need: observations, actions, and for PPO/A2C the values and
  log-probabilities;
- ``update(observation, slates, streams)`` sets each visit's reward to 1.0 if the user
  streamed (``streams.any(axis=1)``) and feeds the round to SB3's own training code:
  PPO/A2C get a rollout buffer of one step for ``n_users`` parallel episodes, each
  starting and ending there (return = reward, advantage = reward - value), then
  ``model.train()``; SAC gets the visits appended to its replay buffer (``done`` = 1, so
  the critic's target is the reward), then ``model.train(gradient_steps, batch_size)``.

Action adapters: ``"score"`` (one score per item; the slate is the top ``slate_size`` of
the *unclipped* sample, so there are no ties at the Box bounds) for all three
algorithms; ``"multidiscrete"`` (one item per slot, repeats repaired) for PPO and A2C.

Reproducibility: torch's sampling and SB3's minibatch shuffles draw from the agent's own
streams. Around every SB3 call the agent swaps its own torch generator state into torch's
global one and back (torch distributions sample only from the global generator), and the
buffers built here shuffle with the agent's NumPy generator (SB3's own buffers use the
global ``np.random``). Same seed, same slates, bit for bit; ``state_dict`` holds the
model (``model.save`` bytes), the torch generator state and, for SAC, the replay buffer.

Threads: ``torch_threads`` (default 1) is passed to ``torch.set_num_threads``, which is
process-wide. One thread is the right choice when the runner plays two runs on two cores,
and measured faster on a busy 2-core machine even alone.

Not applicable here: the feedback readings of the paper's agents (``feedback=``), which
decide what a segment agent counts as displayed; an RL agent learns from the visit's
reward only. The argument is accepted (the runner passes it) and ignored.

Importing this module needs Stable-Baselines3 and PyTorch (``pip install
"carousel-env[sb3]"``); ``agents.make_agent("ppo", ...)`` imports it on demand.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

try:
    import torch as th
    from gymnasium import spaces
    from stable_baselines3 import A2C, PPO, SAC
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.buffers import DictReplayBuffer, DictRolloutBuffer
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.type_aliases import (
        DictReplayBufferSamples,
        DictRolloutBufferSamples,
    )

    from carousel_env.sb3_vec import FastMultiInputPolicy
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "agents.sb3 (the ppo, a2c and sac agents) needs Stable-Baselines3 and PyTorch, "
        f'which are not installed ({error}); pip install "carousel-env[sb3]" fixes it'
    ) from error

from agents.base import FEEDBACK_READINGS, Agent, check_int
from agents.registry import register_agent
from carousel_env.wrappers import ACTION_ADAPTERS, adapter_action_space, repair_slates
from carousel_env.wrappers import scores_to_slates as _scores_to_slates

__all__ = ["ALGORITHMS", "DEFAULTS", "SB3Agent"]

logger = logging.getLogger(__name__)

#: The SB3 algorithm class of each agent name.
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "sac": SAC}

#: Hyper-parameters that differ from SB3's defaults (any constructor argument of the
#: algorithm can be overridden through ``make_agent(..., name=value)``). A round of
#: 20,000 users is one rollout. PPO makes one large step per round, on the whole round:
#: with the 862-dimensional score action, further clipped epochs or smaller minibatches
#: learned more slowly in every setting tried (docs/sb3.md has the figures).
DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {
        "learning_rate": 0.02,
        "n_epochs": 1,
        "batch_size": 20_000,
        "policy_kwargs": {"net_arch": [64, 64], "log_std_init": 0.0},
    },
    "a2c": {
        "learning_rate": 3e-3,
        "normalize_advantage": True,
        "policy_kwargs": {"net_arch": [64, 64], "log_std_init": 0.0},
    },
    "sac": {
        "learning_rate": 1e-3,
        "buffer_size": 40_000,
        "batch_size": 512,
        "gradient_steps": 50,
        "policy_kwargs": {"net_arch": [64, 64]},
    },
}

#: Constructor arguments the agent sets itself (the rest are hyper-parameters).
_RESERVED = frozenset(
    {
        "self",
        "policy",
        "env",
        "n_steps",
        "seed",
        "device",
        "verbose",
        "tensorboard_log",
        "_init_setup_model",
        "rollout_buffer_class",
        "rollout_buffer_kwargs",
        "replay_buffer_class",
        "replay_buffer_kwargs",
        "train_freq",
        "learning_starts",
        "optimize_memory_usage",
        "monitor_wrapper",
        "stats_window_size",
    }
)

#: Names accepted for ``policy_kwargs["activation_fn"]`` (a string keeps params JSON-able).
_ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "elu": "ELU", "leaky_relu": "LeakyReLU"}


class _RoundRolloutBuffer(DictRolloutBuffer):
    """One round of visits as a rollout of one step in ``n_users`` parallel envs.

    Minibatches are shuffled with the agent's generator (SB3's ``get`` uses the global
    ``np.random``).
    """

    rng: np.random.Generator

    def get(self, batch_size: int | None = None) -> Iterator[DictRolloutBufferSamples]:
        if not self.full:
            raise RuntimeError("the round's rollout buffer is empty; nothing to train on")
        if not self.generator_ready:
            for key, array in self.observations.items():
                self.observations[key] = self.swap_and_flatten(array)
            for name in ("actions", "values", "log_probs", "advantages", "returns"):
                setattr(self, name, self.swap_and_flatten(getattr(self, name)))
            self.generator_ready = True
        total = self.buffer_size * self.n_envs
        size = total if batch_size is None else batch_size
        order = self.rng.permutation(total)
        for start in range(0, total, size):
            yield self._get_samples(order[start : start + size])


class _RoundReplayBuffer(DictReplayBuffer):
    """SAC's replay buffer, filled a round at a time and sampled with the agent's generator.

    Every visit is a whole episode (``done`` = 1), so the next observation never enters a
    critic target: ``next_observations`` shares the arrays of ``observations`` instead of
    holding a second copy.
    """

    rng: np.random.Generator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.next_observations = self.observations
        self.rng = np.random.default_rng()

    def size(self) -> int:
        return self.buffer_size if self.full else self.pos

    def extend(
        self, observation: Mapping[str, np.ndarray], actions: np.ndarray, rewards: np.ndarray
    ) -> None:
        """Append a round of visits (oldest overwritten once full), with array copies."""
        n = len(rewards)
        if n > self.buffer_size:  # only the newest visits fit
            observation = {key: value[-self.buffer_size :] for key, value in observation.items()}
            actions, rewards, n = (
                actions[-self.buffer_size :],
                rewards[-self.buffer_size :],
                self.buffer_size,
            )
        slots = (self.pos + np.arange(n)) % self.buffer_size
        for key, array in self.observations.items():
            array[slots, 0] = np.asarray(observation[key]).reshape(n, *array.shape[2:])
        self.actions[slots, 0] = actions.reshape(n, -1)
        self.rewards[slots, 0] = rewards
        self.dones[slots, 0] = 1.0
        self.timeouts[slots, 0] = 0.0
        self.full = self.full or self.pos + n >= self.buffer_size
        self.pos = int((self.pos + n) % self.buffer_size)

    def sample(self, batch_size: int, env: Any = None) -> DictReplayBufferSamples:
        rows = self.rng.integers(0, self.size(), size=batch_size)
        return self._get_samples(rows, env=env)

    def stored(self) -> dict[str, np.ndarray]:
        """The filled part of the buffer, oldest first, for a state dict."""
        n = self.size()
        order = (self.pos + np.arange(n)) % self.buffer_size if self.full else np.arange(n)
        state = {f"replay.{key}": array[order, 0] for key, array in self.observations.items()}
        state["replay.actions"] = self.actions[order, 0]
        state["replay.rewards"] = self.rewards[order, 0]
        return state

    def restore(self, state: Mapping[str, np.ndarray]) -> None:
        self.pos, self.full = 0, False
        observation = {
            key.removeprefix("replay."): value
            for key, value in state.items()
            if key.startswith("replay.") and key not in ("replay.actions", "replay.rewards")
        }
        if len(state["replay.rewards"]):
            self.extend(observation, state["replay.actions"], state["replay.rewards"])


class SB3Agent(Agent):
    """A Stable-Baselines3 algorithm trained online, one round of users per update.

    See the module docstring for the protocol. The policy is SB3's ``MultiInputPolicy``
    (PPO and A2C: :class:`~carousel_env.sb3_vec.FastMultiInputPolicy`, the same policy with
    its Gaussian computed in fewer passes, about twice as fast a round)
    on ``Dict(features=Box(n_features,), segment=Discrete(n_segments))``: the user's taste
    vector and the one-hot segment, concatenated.

    Args:
        n_items, slate_size, n_segments, l_init, seed: see :class:`agents.Agent`.
        algorithm: ``"ppo"``, ``"a2c"`` or ``"sac"``.
        action: the action adapter, ``"score"`` or ``"multidiscrete"`` (PPO and A2C only).
        n_features: length of a user's taste vector (97 for the Deezer data).
        torch_threads: passed to ``torch.set_num_threads`` (process-wide), or None to
            leave torch's setting alone.
        fixed_log_std: PPO and A2C with the score adapter: keep the policy's per-item log
            standard deviation at ``policy_kwargs["log_std_init"]`` instead of learning it
            (no effect on SAC or the multidiscrete adapter). A learned one moves all 862
            log-densities at once: a shift of 0.1 makes PPO's probability ratio overflow
            float32 (NaN weights) as soon as a round is trained in several epochs or
            minibatches. With the default single step per round the ratio is exactly 1
            and learning it is safe (and learned faster in our runs); set True for
            multi-epoch settings. Only the ranking of the scores matters, so a fixed noise
            scale loses little: exploration fades as the learned score gaps grow.
        feedback: accepted for the runner's sake and ignored (see the module docstring).
        **hyperparams: constructor arguments of the SB3 algorithm (``learning_rate``,
            ``n_epochs``, ``batch_size``, ``ent_coef``, ``policy_kwargs``, ...; for SAC
            also ``gradient_steps`` per round and ``buffer_size``), over :data:`DEFAULTS`.
            They must be JSON-serialisable (give ``policy_kwargs["activation_fn"]`` as
            ``"relu"``, ``"tanh"``, ``"elu"`` or ``"leaky_relu"``).

    Attributes:
        model: the SB3 algorithm object (``model.policy`` is the torch policy).

    Limitations: ``update`` must follow the ``act`` that produced its slates (the
    algorithm needs the action behind each slate, not just the slate); a ``state_dict``
    taken between the two drops the pending round. The SAC replay buffer is saved in
    full (about 3.9 KB per visit with 862 items: ``buffer_size=40_000`` is about 155 MB).
    """

    uses: ClassVar[tuple[str, ...]] = ("features", "segment")

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        algorithm: str = "ppo",
        action: str = "score",
        n_features: int = 97,
        torch_threads: int | None = 1,
        fixed_log_std: bool = False,
        feedback: str | None = None,
        **hyperparams: Any,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(
                f"`algorithm` must be one of {', '.join(map(repr, ALGORITHMS))}; got {algorithm!r}"
            )
        if action not in ACTION_ADAPTERS:
            raise ValueError(
                f"`action` must be one of {', '.join(map(repr, ACTION_ADAPTERS))}; got {action!r}"
            )
        if algorithm == "sac" and action != "score":
            raise ValueError(
                f"SAC needs a continuous action: `action` must be 'score' for algorithm "
                f"'sac'; got {action!r}"
            )
        if feedback is not None and feedback not in FEEDBACK_READINGS:
            raise ValueError(
                f"`feedback` must be one of {', '.join(map(repr, FEEDBACK_READINGS))} or "
                f"None; got {feedback!r}"
            )
        n_features = check_int("n_features", n_features, minimum=1)
        if torch_threads is not None:
            torch_threads = check_int("torch_threads", torch_threads, minimum=1)
        if not isinstance(fixed_log_std, bool | np.bool_):
            raise TypeError(f"`fixed_log_std` must be a bool; got {fixed_log_std!r}")
        self.hyperparams = _check_hyperparams(algorithm, hyperparams)
        self.algorithm = algorithm
        self.action = action
        self.n_features = n_features
        self.fixed_log_std = bool(fixed_log_std)
        if torch_threads is not None:
            th.set_num_threads(torch_threads)
        super().__init__(
            n_items,
            slate_size,
            n_segments=n_segments,
            l_init=l_init,
            seed=seed,
            algorithm=algorithm,
            action=action,
            n_features=n_features,
            torch_threads=torch_threads,
            fixed_log_std=self.fixed_log_std,
            feedback=feedback,
            **self.hyperparams,
        )

    # -- building the model ---------------------------------------------------------------

    @property
    def observation_space(self) -> spaces.Dict:
        box = spaces.Box(-np.inf, np.inf, shape=(self.n_features,), dtype=np.float32)
        return spaces.Dict({"features": box, "segment": spaces.Discrete(self.n_segments)})

    @property
    def action_space(self) -> spaces.Space:
        return adapter_action_space(self.action, self.n_items, self.slate_size)

    def _init_learning(self) -> None:
        torch_seed = int(self.rng.integers(0, 2**63))
        self._torch_state = th.Generator().manual_seed(torch_seed).get_state()
        self._pending: dict[str, Any] | None = None
        self.skipped_updates = 0
        with self._own_torch_rng():
            self.model = self._build_model()
        self._attach()

    def _build_model(self) -> BaseAlgorithm:
        settings = {**DEFAULTS[self.algorithm], **self.hyperparams}
        policy_kwargs = dict(settings.pop("policy_kwargs", None) or {})
        if isinstance(policy_kwargs.get("activation_fn"), str):
            policy_kwargs["activation_fn"] = getattr(
                th.nn, _ACTIVATIONS[policy_kwargs["activation_fn"]]
            )
        if self.algorithm == "sac":
            settings["replay_buffer_class"] = _RoundReplayBuffer
            # SAC's "auto" target entropy (minus the action dimension) reads it from an env.
            if settings.get("target_entropy", "auto") == "auto":
                settings["target_entropy"] = -float(self.action_space.shape[0])
        else:
            settings["n_steps"] = 1  # the model's own buffer is unused: keep it tiny
        # PPO/A2C: the same policy and actions as SB3's, a leaner Gaussian (no effect on
        # the multidiscrete adapter, which keeps SB3's categorical distributions).
        policy = "MultiInputPolicy" if self.algorithm == "sac" else FastMultiInputPolicy
        model = ALGORITHMS[self.algorithm](
            policy,
            env=None,
            policy_kwargs=policy_kwargs,
            device="cpu",
            _init_setup_model=False,
            **settings,
        )
        # No env: give the model its spaces, as SB3's own ``load`` does.
        model.observation_space = self.observation_space
        model.action_space = self.action_space
        model.n_envs = 1
        model._setup_model()
        return model

    def _attach(self) -> None:
        """Give the model a silent logger and the buffers the agent's generator."""
        self.model.set_logger(Logger(folder=None, output_formats=[]))
        log_std = getattr(self.model.policy, "log_std", None)
        if self.fixed_log_std and isinstance(log_std, th.nn.Parameter):
            # No gradient, so the optimiser leaves it at log_std_init (see the class doc).
            log_std.requires_grad_(False)
        if self.algorithm == "sac":
            self.model.replay_buffer.rng = self.rng

    @contextlib.contextmanager
    def _own_torch_rng(self) -> Iterator[None]:
        """Run torch code on this agent's generator state, then put the global one back."""
        outer = th.random.get_rng_state()
        th.random.set_rng_state(self._torch_state)
        try:
            yield
        finally:
            self._torch_state = th.random.get_rng_state()
            th.random.set_rng_state(outer)

    # -- acting and learning --------------------------------------------------------------

    def _tensors(self, features: np.ndarray, segment: np.ndarray) -> dict[str, th.Tensor]:
        return {
            "features": th.as_tensor(np.asarray(features, dtype=np.float32)),
            "segment": th.as_tensor(segment),
        }

    def _to_slates(self, actions: np.ndarray) -> np.ndarray:
        if self.action == "score":
            return _scores_to_slates(actions, self.slate_size)
        return repair_slates(actions.astype(np.int64), self.n_items)

    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        features = np.array(batch["features"], dtype=np.float32)
        segment = batch["segment"]
        n_users = features.shape[0]
        if n_users == 0:
            return np.zeros((0, self.slate_size), dtype=np.int64)
        obs = self._tensors(features, segment)

        self.model.policy.set_training_mode(False)
        with th.no_grad(), self._own_torch_rng():
            if self.algorithm == "sac":
                actions = self.model.actor(obs, deterministic=False)
                values = log_probs = None
            else:
                actions, values, log_probs = self.model.policy(obs)
        actions = actions.numpy()
        slates = self._to_slates(actions)

        self._pending = {
            "features": features,
            "segment": segment.copy(),
            "actions": actions,
            "values": values,
            "log_probs": log_probs,
            "slates": slates,
        }
        return slates

    def predict_slates(self, observation: Mapping[str, Any]) -> np.ndarray:
        """The policy's deterministic slates (mean action); records nothing for update.

        Args:
            observation: either form of :meth:`act`'s observation.

        Returns:
            int64 (n_users, slate_size), or (slate_size,) for one user.
        """
        batch, single = self._read_observation(observation)
        obs = self._tensors(batch["features"], batch["segment"])
        self.model.policy.set_training_mode(False)
        with th.no_grad():
            actions = self.model.policy._predict(obs, deterministic=True).numpy()
        slates = self._to_slates(actions)
        return slates[0] if single else slates

    def _update_batch(self, batch: dict[str, Any], slates: np.ndarray, streams: np.ndarray):
        pending, self._pending = self._pending, None
        if (
            pending is None
            or pending["slates"].shape != slates.shape
            or not np.array_equal(pending["slates"], slates)
            or not np.array_equal(pending["segment"], batch["segment"])
            or not np.array_equal(pending["features"], np.asarray(batch["features"], np.float32))
        ):
            raise ValueError(
                f"{self.name}: update() must receive the observation and the slates of the "
                "last act() call (the algorithm learns from the action behind each slate); "
                + ("no act() is pending" if pending is None else "they differ")
            )
        n_users = slates.shape[0]
        if n_users == 0:
            return
        rewards = streams.any(axis=1).astype(np.float32)
        observation = {"features": pending["features"], "segment": pending["segment"]}

        with self._own_torch_rng():
            if self.algorithm == "sac":
                buffer = self.model.replay_buffer
                buffer.extend(observation, pending["actions"], rewards)
                if buffer.size() >= self.model.batch_size:
                    self._train_safely(self.model.gradient_steps, self.model.batch_size)
            else:
                self.model.rollout_buffer = self._round_buffer(observation, pending, rewards)
                # A2C normalises advantages by their std, NaN for a single visit (PPO skips
                # that case itself): a lone visit trains on its raw advantage instead.
                normalize = getattr(self.model, "normalize_advantage", False)
                if self.algorithm == "a2c" and n_users < 2:
                    self.model.normalize_advantage = False
                try:
                    self._train_safely()
                finally:
                    self.model.normalize_advantage = normalize
                # The round's buffer (n_users x n_items floats) is not needed any more.
                self.model.rollout_buffer = None
        self.model.num_timesteps += n_users

    def _train_safely(self, *args: Any) -> None:
        """``model.train(*args)``, undone if it leaves a non-finite parameter.

        Too large a step can overflow the log-probabilities of an 862-dimensional action
        (PPO's probability ratio is their exponentiated difference) and turn every weight
        into NaN, which nothing recovers from. The round's update is then dropped, with a
        warning in the log, and the agent carries on with its previous weights.
        """
        before = copy.deepcopy(self.model.get_parameters())
        entropy_coef = getattr(self.model, "log_ent_coef", None)  # SAC's, outside the policy
        entropy_before = None if entropy_coef is None else entropy_coef.detach().clone()
        self.model.train(*args)
        tensors = [
            *self.model.policy.parameters(),
            *([] if entropy_coef is None else [entropy_coef]),
        ]
        if all(bool(th.isfinite(tensor).all()) for tensor in tensors):
            return
        self.model.set_parameters(before, exact_match=True)
        if entropy_coef is not None:
            with th.no_grad():
                entropy_coef.copy_(entropy_before)
        self.skipped_updates += 1
        logger.warning(
            "%s: a training step produced non-finite weights; the update of this round was "
            "undone (%d so far). A smaller learning_rate or fewer n_epochs avoids it.",
            self.name,
            self.skipped_updates,
        )

    def _round_buffer(
        self, observation: dict[str, np.ndarray], pending: dict[str, Any], rewards: np.ndarray
    ) -> _RoundRolloutBuffer:
        """A filled rollout buffer: one step of n_users one-visit episodes."""
        n_users = len(rewards)
        model = self.model
        buffer = _RoundRolloutBuffer(
            1,
            model.observation_space,
            model.action_space,
            device="cpu",
            gamma=model.gamma,
            gae_lambda=model.gae_lambda,
            n_envs=n_users,
        )
        buffer.rng = self.rng
        starts = np.ones(n_users, dtype=np.float32)
        buffer.add(
            observation,
            pending["actions"],
            rewards,
            starts,
            pending["values"],
            pending["log_probs"],
        )
        # Every visit ends its episode: return = reward, advantage = reward - value.
        buffer.compute_returns_and_advantage(last_values=th.zeros(n_users), dones=starts)
        return buffer

    # -- saving ---------------------------------------------------------------------------

    def _learned_state(self) -> dict[str, np.ndarray]:
        raw = io.BytesIO()
        self.model.save(raw)
        state = {
            "model": np.frombuffer(raw.getvalue(), dtype=np.uint8),
            "torch_rng": self._torch_state.numpy(),
            "skipped_updates": np.array(self.skipped_updates, dtype=np.int64),
        }
        if self.algorithm == "sac":
            state.update(self.model.replay_buffer.stored())
        return state

    def _load_learned_state(self, state: dict[str, np.ndarray]) -> None:
        algorithm = ALGORITHMS[self.algorithm]
        with self._own_torch_rng():
            self.model = algorithm.load(io.BytesIO(state["model"].tobytes()), device="cpu")
        self._torch_state = th.from_numpy(np.array(state["torch_rng"], dtype=np.uint8))
        self._pending = None
        self.skipped_updates = int(state["skipped_updates"])
        self._attach()
        if self.algorithm == "sac":
            self.model.replay_buffer.restore(state)


def _check_hyperparams(algorithm: str, hyperparams: dict[str, Any]) -> dict[str, Any]:
    """Keep only constructor arguments of the algorithm, in JSON form (lists, not tuples)."""
    accepted = set(inspect.signature(ALGORITHMS[algorithm].__init__).parameters) - _RESERVED
    unknown = sorted(set(hyperparams) - accepted)
    if unknown:
        raise TypeError(
            f"{algorithm} takes no hyper-parameter {', '.join(map(repr, unknown))}; its "
            f"hyper-parameters: {', '.join(sorted(accepted))}"
        )
    try:
        normalised = json.loads(json.dumps(hyperparams))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{algorithm} hyper-parameters must be JSON-serialisable so that the agent can "
            f"be saved ({error}); give activation_fn as a name such as 'relu'"
        ) from None
    activation = (normalised.get("policy_kwargs") or {}).get("activation_fn")
    if activation is not None and activation not in _ACTIVATIONS:
        raise ValueError(
            f"policy_kwargs['activation_fn'] must be one of {sorted(_ACTIVATIONS)}; got "
            f"{activation!r}"
        )
    return normalised


def _factory(algorithm: str):
    def build(**kwargs: Any) -> SB3Agent:
        agent = SB3Agent(algorithm=algorithm, **kwargs)
        agent.name = algorithm
        return agent

    build.__name__ = f"make_{algorithm}_agent"
    build.__doc__ = f"Build the {algorithm.upper()} agent (see :class:`SB3Agent`)."
    return build


for _name in ALGORITHMS:
    register_agent(_name, _factory(_name), overwrite=True)
