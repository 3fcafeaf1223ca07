"""A Stable-Baselines3 ``VecEnv`` over the native batched environment.

SB3's own ``DummyVecEnv`` steps one Python environment per user. :class:`CarouselSB3VecEnv`
instead steps a whole round of users of a :class:`~carousel_env.vector_env.CarouselVectorEnv`
with array operations, and turns the policy's actions into slates in one batched call
(:func:`~carousel_env.wrappers.scores_to_slates` or
:func:`~carousel_env.wrappers.repair_slates`)::

    from stable_baselines3 import PPO
    from carousel_env.sb3_vec import CarouselSB3VecEnv

    venv = CarouselSB3VecEnv(num_envs=4_096, action="score", n_users=50_000)
    model = PPO("MultiInputPolicy", venv, n_steps=1, batch_size=1_024,
                policy_kwargs={"log_std_init": -2.0})
    model.learn(total_timesteps=200_000)

Importing this module needs Stable-Baselines3 and PyTorch (``pip install
"carousel-env[sb3]"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

try:
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvStepReturn
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "carousel_env.sb3_vec needs Stable-Baselines3 and PyTorch, which are not "
        f'installed ({error}); pip install "carousel-env[sb3]" fixes it'
    ) from error

from carousel_env.vector_env import CarouselVectorEnv
from carousel_env.wrappers import actions_to_slates, adapter_action_space

__all__ = ["CarouselSB3VecEnv"]


class CarouselSB3VecEnv(VecEnv):
    """SB3's vectorised-environment protocol for a round of carousel users at a time.

    Episodes: each user visit is an episode of length one, *terminated* (not truncated).
    The carousel problem is a contextual bandit: the slate shown to a user does not change
    who comes next, so no reward should flow from one visit to the next. Every step
    therefore returns ``dones`` all True, and SB3 computes each visit's return as its own
    reward (no bootstrapping, whatever ``gamma``); the returned observation is the next
    round's users, which is also the first observation of their new episodes. The
    horizon of the wrapped environment (``max_episode_steps``) plays no part.

    Per SB3's conventions every info dict holds ``"terminal_observation"`` (the
    observation the finished one-visit episode was played on: the served user's
    ``{"features", "segment"}``, views into the round's arrays) and
    ``"TimeLimit.truncated": False``. The round's full info arrays (``streams``,
    ``expected_reward``, ``optimal_reward``, ``regret``, ...) are in :attr:`last_info`,
    for callbacks; per-user copies would cost more than the step.

    Observation: the environment's ``Dict(features=Box(97,), segment=Discrete)`` (SB3's
    ``MultiInputPolicy`` takes it as it is). Action: one user's adapter space,
    ``Box(-1, 1, (n_items,))`` for ``action="score"`` or ``MultiDiscrete([n_items] *
    slate_size)`` for ``"multidiscrete"`` (see :mod:`carousel_env.wrappers`).
    Rewards are float32 (num_envs,), 1.0 where the user streamed.

    Args:
        env: the batched environment to drive (a ``CarouselVectorEnv``, possibly inside
            Gymnasium vector wrappers). If None, one is built from ``env_kwargs`` with
            ``max_episode_steps=None``.
        action: the action adapter, ``"score"`` (default) or ``"multidiscrete"``.
        **env_kwargs: arguments of :class:`~carousel_env.vector_env.CarouselVectorEnv`
            (``num_envs``, ``users``, ``n_users``, ``slate_size``, ...), only without
            ``env``.

    Limitations: one generator drives the whole round, so ``seed(s)`` seeds the round
    (the per-environment seeds ``s + i`` that SB3 hands out are not used separately), and
    ``env_method``/``set_attr`` act once on the shared environment whatever ``indices``.
    """

    def __init__(
        self, env: gym.vector.VectorEnv | None = None, *, action: str = "score", **env_kwargs: Any
    ) -> None:
        if env is None:
            env_kwargs.setdefault("max_episode_steps", None)
            env = CarouselVectorEnv(**env_kwargs)
        elif env_kwargs:
            raise ValueError(
                f"give either `env` or the environment's arguments, not both; got env and "
                f"{sorted(env_kwargs)}"
            )
        if not isinstance(env, gym.vector.VectorEnv) or not isinstance(
            env.unwrapped, CarouselVectorEnv
        ):
            raise TypeError(
                f"`env` must be a CarouselVectorEnv (or a vector wrapper around one); got "
                f"{type(env).__name__}"
            )
        self.env = env
        carousel = env.unwrapped
        self.n_items = int(carousel.sim.n_items)
        self.slate_size = int(carousel.slate_size)
        self.action = action
        action_space = adapter_action_space(action, self.n_items, self.slate_size)
        super().__init__(env.num_envs, carousel.single_observation_space, action_space)

        self.last_info: dict[str, Any] = {}
        self._actions: np.ndarray | None = None
        self._observation: dict[str, np.ndarray] | None = None
        self._dones = np.ones(self.num_envs, dtype=bool)
        self._dones.setflags(write=False)

    # -- the stepping protocol ------------------------------------------------------------

    def reset(self) -> dict[str, np.ndarray]:
        """Draw a round of users; uses the seed given to :meth:`seed`, if any, once."""
        seed = self._seeds[0]
        observation, info = self.env.reset(seed=None if seed is None else int(seed))
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._observation = observation
        self.last_info = info
        return observation

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Serve the round; every visit ends its episode (see the class docstring).

        Returns:
            ``(observation, rewards, dones, infos)``: the next round's observation (dict
            of (num_envs, ...) arrays), float32 (num_envs,), bool (num_envs,) all True,
            and a list of num_envs dicts.
        """
        actions, self._actions = self._actions, None
        if self._observation is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if actions is None:
            raise RuntimeError("step_wait() called without a pending step_async(actions)")
        slates = actions_to_slates(self.action, actions, self.n_items, self.slate_size)

        served = self._observation
        observation, rewards, _, _, info = self.env.step(slates)
        self._observation = observation
        self.last_info = info

        # SB3 reads these per user (Python loops inside its collect_rollouts): one small
        # dict each is the least it needs; the features are views, not copies.
        features = served["features"]
        infos = [
            {
                "terminal_observation": {"features": features[i], "segment": segment},
                "TimeLimit.truncated": False,
            }
            for i, segment in enumerate(served["segment"].tolist())
        ]
        return observation, rewards.astype(np.float32), self._dones.copy(), infos

    def close(self) -> None:
        self.env.close()

    # -- attribute access: one shared environment -----------------------------------------

    def _indices(self, indices: None | int | Iterable[int]) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int | np.integer):
            return [int(indices)]
        return list(indices)

    def get_attr(self, attr_name: str, indices: None | int | Iterable[int] = None) -> list[Any]:
        """The shared environment's attribute, once per index."""
        value = getattr(self.env.unwrapped, attr_name)
        return [value] * len(self._indices(indices))

    def set_attr(
        self, attr_name: str, value: Any, indices: None | int | Iterable[int] = None
    ) -> None:
        """Set the attribute on the shared environment (once, whatever ``indices``)."""
        setattr(self.env.unwrapped, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: None | int | Iterable[int] = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call the method once on the shared environment; its result once per index."""
        result = getattr(self.env.unwrapped, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._indices(indices))

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: None | int | Iterable[int] = None
    ) -> list[bool]:
        """Always False: there are no per-user Gymnasium environments to wrap."""
        return [False] * len(self._indices(indices))
