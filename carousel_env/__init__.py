"""carousel-env: Deezer's swipeable-carousel recommendation problem as a Gymnasium env.

Importing the package registers ``CarouselEnv-v0`` (single user per step, with the batched
:class:`CarouselVectorEnv` as its vector entry point)::

    import gymnasium as gym
    import carousel_env

    env = gym.make("CarouselEnv-v0")
    envs = gym.make_vec("CarouselEnv-v0", num_envs=20_000)
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from carousel_env.click_models import CascadeClickModel, ClickModel, SwipeClickModel
from carousel_env.data import Catalog, Population, load_catalog, load_population
from carousel_env.env import CarouselEnv
from carousel_env.spaces import SlateSpace
from carousel_env.vector_env import CarouselVectorEnv

__version__ = "0.1.0"

#: Visits per episode of the single env, rounds per episode of the vector env: the paper's
#: experiment is 100 rounds.
MAX_EPISODE_STEPS = 100

__all__ = [
    "MAX_EPISODE_STEPS",
    "CarouselEnv",
    "CarouselVectorEnv",
    "CascadeClickModel",
    "Catalog",
    "ClickModel",
    "Population",
    "SlateSpace",
    "SwipeClickModel",
    "load_catalog",
    "load_population",
]

if "CarouselEnv-v0" not in registry:
    register(
        id="CarouselEnv-v0",
        entry_point="carousel_env.env:CarouselEnv",
        vector_entry_point="carousel_env.vector_env:CarouselVectorEnv",
        max_episode_steps=MAX_EPISODE_STEPS,
    )
