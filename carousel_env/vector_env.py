"""``CarouselVectorEnv``: a whole round of users per step, with array operations only."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from carousel_env.click_models import ClickModel
from carousel_env.core import CarouselSimulator, _positive_int
from carousel_env.data import Catalog, Population
from carousel_env.spaces import SlateSpace, validate_slates

__all__ = ["CarouselVectorEnv"]


class CarouselVectorEnv(VectorEnv):
    """The batched twin of :class:`~carousel_env.env.CarouselEnv`.

    One ``step`` serves ``num_envs`` users at once: the paper's round (20,000 users a
    round, all slates chosen before any feedback). It is the vector entry point of
    ``CarouselEnv-v0``, so ``gym.make_vec("CarouselEnv-v0", num_envs=20_000)`` builds it.

    Observations, actions and infos are the batched forms of the single environment's:

    - observation: ``{"features": float32 (num_envs, 97), "segment": int64 (num_envs,)}``;
    - action: int array (num_envs, slate_size), one slate of distinct items per user
      (:class:`~carousel_env.spaces.SlateSpace` with ``batch_size=num_envs``);
    - reward: float64 (num_envs,), 1.0 where the user streamed;
    - info: ``streams`` int8 (num_envs, slate_size), and float64 (num_envs,) arrays
      ``expected_reward``, ``optimal_reward``, ``regret``, ``expected_regret``, plus int64
      ``user_index`` and ``segment``.

    The users of a step are independent of the slates shown before, so every agent run
    with the same seed sees the same users (common random numbers). With ``num_envs=1``
    and the same seed, it draws the same users and streams as the single environment.

    All sub-environments are truncated together after ``max_episode_steps`` rounds
    (default 100, the paper's experiment), and reset in the same step (autoreset mode
    ``SAME_STEP``): the returned observation is the first of the next episode and
    ``info["final_obs"]`` is the same batch, since a reset only draws new users.

    Args:
        num_envs: users per round.
        max_episode_steps: rounds per episode, or None for no truncation.
        Every other argument is that of :class:`~carousel_env.env.CarouselEnv`.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 20_000,
        users: str | os.PathLike | Population = "synthetic",
        slate_size: int = 12,
        l_init: int = 3,
        click_model: str | ClickModel = "cascade",
        *,
        catalog: str | os.PathLike | np.ndarray | Catalog = "deezer",
        swipe_probability: float = 0.8,
        population_seed: int = 0,
        n_users: int | None = None,
        data_dir: str | os.PathLike | None = None,
        max_episode_steps: int | None = 100,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"CarouselVectorEnv does not render; got render_mode={render_mode!r}")
        self.num_envs = _positive_int("num_envs", num_envs)
        if max_episode_steps is not None:
            max_episode_steps = _positive_int("max_episode_steps", max_episode_steps)
        self.max_episode_steps = max_episode_steps
        self.sim = CarouselSimulator(
            users,
            catalog=catalog,
            slate_size=slate_size,
            l_init=l_init,
            click_model=click_model,
            swipe_probability=swipe_probability,
            population_seed=population_seed,
            n_users=n_users,
            data_dir=data_dir,
        )
        self.slate_size = self.sim.slate_size
        self.l_init = self.sim.l_init
        self.render_mode = None

        self.single_observation_space = self.sim.single_observation_space
        self.single_action_space = SlateSpace(self.sim.n_items, self.slate_size)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = SlateSpace(self.sim.n_items, self.slate_size, self.num_envs)

        self._users: np.ndarray | None = None
        self._elapsed = 0

    @property
    def population(self) -> Population:
        return self.sim.population

    @property
    def catalog(self) -> Catalog:
        return self.sim.catalog

    @property
    def click_model(self) -> ClickModel:
        return self.sim.click_model

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is not None and not isinstance(seed, int | np.integer):
            raise TypeError(
                f"`seed` must be one int for the whole batch (one generator); got {seed!r}"
            )
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.seed(int(seed))
        self.sim.optimal_reward  # noqa: B018  (computes the optimum once, before the clock)
        self._users = self.sim.draw_users(self.np_random, self.num_envs)
        self._elapsed = 0
        observation = self.sim.observe(self._users)
        return observation, {
            "user_index": self._users.astype(np.int64),
            "segment": observation["segment"],
        }

    def get_state(self) -> dict[str, Any]:
        """What the env needs to continue bit for bit: generator, pending users, clock.

        Together with :meth:`set_state` this lets a long experiment be checkpointed and
        resumed to exactly the result of an uninterrupted run.
        """
        if self._users is None:
            raise gym.error.ResetNeeded("call reset() before get_state()")
        return {
            "bit_generator": self.np_random.bit_generator.state,
            "users": self._users.copy(),
            "elapsed": self._elapsed,
        }

    def set_state(self, state: dict[str, Any]) -> dict[str, np.ndarray]:
        """Restore a :meth:`get_state` snapshot; returns the pending users' observation."""
        users = np.asarray(state["users"], dtype=np.intp)
        if users.shape != (self.num_envs,) or not (
            0 <= users.min() and users.max() < self.sim.population.n_users
        ):
            raise ValueError(
                f"`state['users']` must hold {self.num_envs} user indices in "
                f"[0, {self.sim.population.n_users}); got shape {users.shape}"
            )
        self.np_random.bit_generator.state = state["bit_generator"]
        self._users = users.copy()
        self._elapsed = int(state["elapsed"])
        return self.sim.observe(self._users)

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._users is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        slates = validate_slates(actions, self.sim.n_items, self.slate_size, self.num_envs)

        info = self.sim.serve(self._users, slates, self.np_random)
        rewards = info.pop("reward")
        info["segment"] = self.sim.population.segments[self._users]

        self._elapsed += 1
        ended = self.max_episode_steps is not None and self._elapsed >= self.max_episode_steps
        truncated = np.full(self.num_envs, ended)
        terminated = np.zeros(self.num_envs, dtype=bool)

        self._users = self.sim.draw_users(self.np_random, self.num_envs)
        observation = self.sim.observe(self._users)
        if ended:
            # Same-step autoreset: new users are the next episode's first observation.
            self._elapsed = 0
            info["final_info"] = dict(info)
            info["_final_info"] = truncated.copy()
            info["final_obs"] = observation
            info["_final_obs"] = truncated.copy()
        return observation, rewards, terminated, truncated, info
