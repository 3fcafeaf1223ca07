"""``CarouselEnv``: one user at a time browses a swipeable carousel of playlists."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

from carousel_env.click_models import ClickModel
from carousel_env.core import CarouselSimulator
from carousel_env.data import Catalog, Population
from carousel_env.spaces import SlateSpace, validate_slates

__all__ = ["CarouselEnv"]


class CarouselEnv(gym.Env[dict[str, Any], np.ndarray]):
    """Deezer's carousel recommendation problem, one user visit per step.

    ## Description

    Each step a user arrives, drawn uniformly at random with replacement from a population
    of users. The agent shows them a carousel: a slate of ``slate_size`` distinct
    playlists (items) out of the catalog's K = 862. The user browses it left to right and
    streams at most one card. This is the simulation of Bendada, Salha and Bontempelli,
    "Carousel Personalization in Music Streaming Apps with Contextual Bandits", RecSys
    2020 (arXiv:2009.06546).

    The ground truth, hidden from the agent: user u streams item i, if they look at its
    card, with probability ``p(u, i) = sigmoid(x_u . theta_i)``, where x_u is the user's
    97-float taste vector (the last entry is the constant 1.0) and theta_i the item's
    weight vector.

    Browsing follows the click model (``click_model=``):

    - ``"cascade"`` (the paper's): the user reads every card from the left and streams
      card j with probability p_j, stopping at the first stream.
      ``P(stream at j) = p_j prod_{k<j}(1 - p_k)``; ``E[reward] = 1 - prod_j (1 - p_j)``.
    - ``"swipe"``: only the first ``l_init`` cards are on screen; after each further card
      reached without a stream the user swipes on with probability ``swipe_probability``
      (s), so later cards may never be seen.
      ``P(stream at j) = s^max(0, j - l_init) p_j prod_{k<j}(1 - p_k)``.

    See :mod:`carousel_env.click_models` for the derivations.

    ## Action Space

    :class:`~carousel_env.spaces.SlateSpace`: an int64 array of shape (slate_size,) of
    distinct item indices in [0, K), leftmost slot first. ``sample()`` draws valid slates;
    ``contains()`` rejects repeats. ``step`` raises ``ValueError`` for a slate of the wrong
    shape or dtype, with an item out of range, or with a repeated item.

    ## Observation Space

    ``Dict(features=Box(low, high, (97,), float32), segment=Discrete(n_segments))``:
    the arriving user's taste vector and their segment. ``features`` is what a fully
    personalised agent (linear Thompson sampling, an RL policy) needs; ``segment`` is the
    cluster index that the paper's semi-personalised agents pool their statistics by.
    Both are given so that every agent of the paper runs on one observation. The Box
    bounds are symmetric, finite and hold every user: ``[-b, b]`` with b one more than
    the smallest integer at or above the population's largest absolute feature.

    ## Rewards

    1.0 if the user streamed a card, else 0.0 (a Python float).

    ## Starting State

    ``reset`` draws the first user. The users are i.i.d., so a step's action never
    changes which user comes next.

    ## Episode End

    Never terminated. Truncated after ``max_episode_steps`` visits (100 as registered,
    the length of the paper's experiment in rounds), by Gymnasium's ``TimeLimit``.

    ## Info

    Every step: ``streams`` (int8, shape (slate_size,), at most one 1), ``expected_reward``
    (exact, for the click model in use), ``optimal_reward`` (the user's best possible
    expected reward), ``regret`` (``optimal_reward - reward``, the paper's per-visit
    regret), ``expected_regret`` (``optimal_reward - expected_reward``), ``user_index``
    and ``segment``. ``reset`` gives ``user_index`` and ``segment`` of the first user.

    ## Arguments

    - ``users``: ``"synthetic"`` (default, Deezer-like, no download), ``"deezer-small"``
      (the 9 real users), ``"deezer"`` (974,960 real users after ``carousel-env
      download``), a CSV/.npy/.npz path, or a :class:`~carousel_env.data.Population`.
    - ``slate_size``: L, the number of cards (default 12).
    - ``l_init``: cards on screen before any swipe (default 3).
    - ``click_model``: ``"cascade"`` (default), ``"swipe"`` or a ``ClickModel``.
    - ``catalog``: ``"deezer"`` (the 862 real playlists), a path, an array or a
      :class:`~carousel_env.data.Catalog`.
    - ``swipe_probability``: s of the ``"swipe"`` model (default 0.8).
    - ``population_seed``: seed of the synthetic users (and of k-means for files without
      segments); independent of ``reset(seed=...)``.
    - ``n_users``: size of the synthetic population (default 974,960).
    - ``data_dir``: cache folder for downloads and k-means segments.
    - ``render_mode``: ``None`` or ``"ansi"`` (a text line per step).

    ## Limitations

    Users do not change over time, visits are independent, and the same user can be drawn
    again in the same episode. The optimum is computed once for the whole population when
    the first episode starts (a few seconds for 974,960 users), then shared by every
    environment built on the same population object.

    ## Version History

    - v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
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
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"`render_mode` must be None or one of {self.metadata['render_modes']}; "
                f"got {render_mode!r}"
            )
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
        self.render_mode = render_mode
        self.slate_size = self.sim.slate_size
        self.l_init = self.sim.l_init
        self.observation_space = self.sim.single_observation_space
        self.action_space = SlateSpace(self.sim.n_items, self.slate_size)
        self._users: np.ndarray | None = None
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def population(self) -> Population:
        return self.sim.population

    @property
    def catalog(self) -> Catalog:
        return self.sim.catalog

    @property
    def click_model(self) -> ClickModel:
        return self.sim.click_model

    def _observation(self) -> dict[str, Any]:
        user = self._users[0]
        return {
            "features": np.array(self.sim.population.features[user]),
            "segment": self.sim.population.segments[user],
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self.sim.optimal_reward  # noqa: B018  (computes the optimum once, before the clock)
        self._users = self.sim.draw_users(self.np_random, 1)
        self._last = None
        observation = self._observation()
        return observation, {
            "user_index": int(self._users[0]),
            "segment": int(observation["segment"]),
        }

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self._users is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        slate = validate_slates(action, self.sim.n_items, self.slate_size)

        served = self.sim.serve(self._users, slate[None, :], self.np_random)
        user = int(self._users[0])
        info = {
            "streams": served["streams"][0],
            "expected_reward": float(served["expected_reward"][0]),
            "optimal_reward": float(served["optimal_reward"][0]),
            "regret": float(served["regret"][0]),
            "expected_regret": float(served["expected_regret"][0]),
            "user_index": user,
            "segment": int(self.sim.population.segments[user]),
        }
        reward = float(served["reward"][0])
        self._last = (slate, info["streams"])

        self._users = self.sim.draw_users(self.np_random, 1)
        return self._observation(), reward, False, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._last is None:
            return f"user {int(self._users[0])}: waiting for a slate"
        slate, streams = self._last
        cells = [
            f"[{item}]" if streamed else f" {item} "
            for item, streamed in zip(slate, streams, strict=True)
        ]
        return "slate: " + " ".join(cells) + ("  (streamed)" if streams.any() else "")
