"""Semi-personalised agents: one bandit per user segment, learning display/stream counts.

Every agent here keeps, per (segment, item), the number of displays ``n`` and of streams
``s`` counted with the cascade or no-cascade rule (see :func:`agents.base.display_masks`),
and serves all users of a segment from the same statistics; ties are broken at random,
independently for each user.

Reference: W. Bendada, G. Salha, T. Bontempelli, "Carousel Personalization in Music
Streaming Apps with Contextual Bandits", RecSys 2020 (arXiv:2009.06546), section 3.3.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents._selection import random_slates, ranked_slates
from agents.base import Agent, LearningAgent, check_feedback, check_float, check_int


class RandomAgent(Agent):
    """``slate_size`` distinct items drawn uniformly at random for every user.

    Learns nothing. ``feedback`` is accepted (and checked) so that every agent takes the
    same arguments; it changes nothing here: a random slate needs no shuffle.
    """

    name = "random"

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        feedback: str = "published-code",
    ) -> None:
        self.feedback = check_feedback(feedback)
        super().__init__(
            n_items,
            slate_size,
            n_segments=n_segments,
            l_init=l_init,
            seed=seed,
            feedback=self.feedback,
        )

    uses = ()

    def _init_learning(self) -> None:
        return None

    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        return random_slates(self.rng, batch["n_users"], self.n_items, self.slate_size)

    def _update_batch(self, batch, slates, streams) -> None:
        return None

    def _read_observation(self, observation):
        # Random needs neither key; still accept either observation form.
        if not hasattr(observation, "get"):
            raise TypeError(f"`observation` must be a dict; got {type(observation).__name__}")
        for key in ("segment", "features"):
            if key in observation:
                value = np.asarray(observation[key])
                single = value.ndim == (0 if key == "segment" else 1)
                n_users = 1 if single else int(value.shape[0])
                return {"n_users": n_users}, single
        raise ValueError(
            f"`observation` needs a 'segment' or 'features' entry to count users; got keys "
            f"{list(observation)}"
        )


class SegmentAgent(LearningAgent):
    """Base of the segment agents: the (segment, item) display and stream counts.

    Attributes:
        displays_count: int64 array, shape (n_segments, n_items).
        streams_count: int64 array, shape (n_segments, n_items).
    """

    def _init_learning(self) -> None:
        shape = (self.n_segments, self.n_items)
        self.displays_count = np.zeros(shape, dtype=np.int64)
        self.streams_count = np.zeros(shape, dtype=np.int64)

    def _update_batch(self, batch: dict[str, Any], slates: np.ndarray, streams: np.ndarray):
        displayed, streamed = self.displays(streams)
        cells = batch["segment"][:, None] * self.n_items + slates
        size = self.n_segments * self.n_items
        shape = (self.n_segments, self.n_items)
        shown = cells[displayed]
        self.displays_count += np.bincount(shown, minlength=size).reshape(shape)
        self.streams_count += np.bincount(cells[streamed], minlength=size).reshape(shape)
        self._after_update(batch, shown)

    def _after_update(self, batch: dict[str, Any], shown_cells: np.ndarray) -> None:
        """Hook for agents that cache scores; ``shown_cells`` = segment * n_items + item."""
        return None

    def means(self, unseen: float = 0.0) -> np.ndarray:
        """Observed stream rate ``s / n`` per (segment, item); ``unseen`` where ``n == 0``."""
        return np.divide(
            self.streams_count,
            self.displays_count,
            out=np.full(self.displays_count.shape, unseen, dtype=np.float64),
            where=self.displays_count > 0,
        )

    def _learned_state(self) -> dict[str, np.ndarray]:
        return {"displays_count": self.displays_count, "streams_count": self.streams_count}

    def _load_learned_state(self, state: dict[str, np.ndarray]) -> None:
        self.displays_count = state["displays_count"].astype(np.int64, copy=True)
        self.streams_count = state["streams_count"].astype(np.int64, copy=True)


class ExploreThenCommitSegment(SegmentAgent):
    """Explore-then-commit per segment.

    Items displayed fewer than ``m`` times in the user's segment come first, the most
    under-displayed first (largest ``max(0, m - n)``); then items by observed mean
    ``s / n``, highest first; remaining ties at random.

    Presets: ``etc-seg-explore`` (m=100), ``etc-seg-exploit`` (m=20); cascade update,
    ``feedback="published-code"``.

    Args:
        m: number of displays per (segment, item) before the item is judged by its mean.
        cascade, feedback: see :class:`agents.base.LearningAgent`.
    """

    name = "etc-seg"

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        m: int = 100,
        cascade: bool = True,
        feedback: str = "published-code",
    ) -> None:
        self.m = check_int("m", m, minimum=0)
        super().__init__(
            n_items,
            slate_size,
            n_segments=n_segments,
            l_init=l_init,
            seed=seed,
            cascade=cascade,
            feedback=feedback,
            m=self.m,
        )

    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        deficit = np.maximum(self.m - self.displays_count, 0)
        slates = ranked_slates(
            self.rng, (deficit, self.means()), batch["segment"], self.slate_size
        )
        return self.shuffle_first(slates)


class EpsilonGreedySegment(SegmentAgent):
    """Epsilon-greedy per segment.

    Per user: with probability ``epsilon`` a uniformly random slate, else the items with
    the highest observed mean ``s / n`` in the user's segment; an item never displayed in
    the segment scores 1 (optimistic start); ties at random.

    Presets: ``epsilon-greedy-explore`` (0.1), ``epsilon-greedy-exploit`` (0.01),
    ``epsilon-greedy-explore-no-cascade`` (0.1, ``cascade=False``);
    ``feedback="published-code"``.

    Args:
        epsilon: probability of a random slate, in [0, 1].
        cascade, feedback: see :class:`agents.base.LearningAgent`.
    """

    name = "epsilon-greedy"

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        epsilon: float = 0.1,
        cascade: bool = True,
        feedback: str = "published-code",
    ) -> None:
        self.epsilon = check_float("epsilon", epsilon, low=0.0, high=1.0)
        super().__init__(
            n_items,
            slate_size,
            n_segments=n_segments,
            l_init=l_init,
            seed=seed,
            cascade=cascade,
            feedback=feedback,
            epsilon=self.epsilon,
        )

    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        segments = batch["segment"]
        explore = self.rng.random(segments.shape[0]) < self.epsilon
        slates = np.empty((segments.shape[0], self.slate_size), dtype=np.int64)
        greedy = ~explore
        slates[greedy] = ranked_slates(
            self.rng, (self.means(unseen=1.0),), segments[greedy], self.slate_size
        )
        slates[explore] = random_slates(
            self.rng, int(explore.sum()), self.n_items, self.slate_size
        )
        return self.shuffle_first(slates)
