"""Click models: how a user browses a carousel and when they stream.

A click model turns the probabilities ``p[:, j] = sigmoid(x_u . theta_{slate_j})`` of the
cards in a slate, in slot order, into (a) sampled per-slot streams and (b) the exact
probability of a stream in each slot. Every model here lets a user stream at most one card
per visit, so the expected reward of a slate is the sum of its per-slot stream
probabilities.

Two models are provided:

``cascade`` (:class:`CascadeClickModel`, the paper's)
    The user reads every card from left to right and streams card j with probability
    p_j, stopping at the first stream::

        P(stream at j) = p_j * prod_{k<j} (1 - p_k)
        E[reward]      = 1 - prod_j (1 - p_j)          (independent of the order)

``swipe`` (:class:`SwipeClickModel`, carousel-specific)
    Only the first ``l_init`` cards are on screen when the carousel appears. After a card
    beyond them has been reached without a stream, the user swipes to the next card with
    probability ``swipe_probability`` (``s``), otherwise leaves; so card j (1-based) is
    looked at with probability ``s ** max(0, j - l_init)`` given no earlier stream::

        P(stream at j) = s ** max(0, j - l_init) * p_j * prod_{k<j} (1 - p_k)
        E[reward]      = sum_j P(stream at j)          (depends on the order)

For both models the best slate for a user is their ``slate_size`` most likely items in
decreasing order of p (an exchange argument: the reward increases in every p_j, and with
non-increasing look probabilities a higher p belongs further left).

Sampling uses a fixed number of uniform draws per visit whatever the slate, so two agents
served from the same seed see the same users (common random numbers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = [
    "CLICK_MODELS",
    "CascadeClickModel",
    "ClickModel",
    "SwipeClickModel",
    "make_click_model",
]


def _first_success(success: np.ndarray) -> np.ndarray:
    """Keep only the leftmost True of each row: int8 array of the same shape."""
    # A success is the first of its row exactly when the running count of successes is 1.
    return (success & (np.cumsum(success, axis=-1, dtype=np.int8) == 1)).view(np.int8)


class ClickModel(ABC):
    """How a user browses a slate. Subclasses define ``look_probabilities``.

    The stream probability in slot j is ``look_j * p_j * prod_{k<j} (1 - p_k)``, where
    ``look_j`` is the probability that the user reaches slot j given no earlier stream.
    """

    name: str = "abstract"

    @abstractmethod
    def look_probabilities(self, slate_size: int) -> np.ndarray:
        """float64 array, shape (slate_size,): P(user looks at slot j | no earlier stream)."""

    @property
    def order_matters(self) -> bool:
        """Whether the expected reward of a slate depends on the order of its cards."""
        return True

    def slot_probabilities(self, probs: np.ndarray) -> np.ndarray:
        """Exact probability of a stream in each slot.

        Args:
            probs: float array, shape (..., slate_size): p(u, item) in slot order.

        Returns:
            float64 array, same shape.
        """
        probs = np.asarray(probs, dtype=np.float64)
        reach = np.cumprod(1.0 - probs, axis=-1)
        reach = np.concatenate([np.ones_like(reach[..., :1]), reach[..., :-1]], axis=-1)
        return self.look_probabilities(probs.shape[-1]) * probs * reach

    def expected_reward(self, probs: np.ndarray) -> np.ndarray:
        """Exact expected reward, float64 array of shape ``probs.shape[:-1]``."""
        return self.slot_probabilities(probs).sum(axis=-1)

    def n_uniforms(self, slate_size: int) -> int:
        """How many uniform draws one visit consumes (fixed, for common random numbers)."""
        return slate_size

    def sample(self, probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw the streams of one visit per row.

        Args:
            probs: float array, shape (n_visits, slate_size).
            rng: the environment's generator.

        Returns:
            int8 array, shape (n_visits, slate_size), at most one 1 per row.
        """
        n, slate_size = probs.shape
        uniforms = rng.random((n, self.n_uniforms(slate_size)))
        return self.streams_from_uniforms(probs, uniforms)

    @abstractmethod
    def streams_from_uniforms(self, probs: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Deterministic part of :meth:`sample`, given the uniform draws."""

    def describe(self) -> str:
        return self.name


class CascadeClickModel(ClickModel):
    """The paper's cascade: the user reads every card left to right, stops at a stream."""

    name = "cascade"

    def look_probabilities(self, slate_size: int) -> np.ndarray:
        return np.ones(slate_size)

    @property
    def order_matters(self) -> bool:
        return False

    def expected_reward(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        return -np.expm1(np.log1p(-probs).sum(axis=-1))

    def streams_from_uniforms(self, probs: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        # The leftmost of independent per-slot successes is exactly the cascade's stream.
        return _first_success(uniforms < probs)

    def describe(self) -> str:
        return "cascade (reads every card left to right, stops at the first stream)"


class SwipeClickModel(ClickModel):
    """A carousel where cards beyond the first ``l_init`` need a swipe to be seen.

    Args:
        l_init: number of cards on screen when the carousel appears (all looked at).
        swipe_probability: probability of swiping on to the next card after a card beyond
            the first ``l_init`` was reached without a stream; in [0, 1].
    """

    name = "swipe"

    def __init__(self, l_init: int = 3, swipe_probability: float = 0.8) -> None:
        if isinstance(l_init, bool) or not isinstance(l_init, int | np.integer) or l_init < 1:
            raise ValueError(f"`l_init` must be a positive int; got {l_init!r}")
        if not isinstance(swipe_probability, int | float | np.floating) or not (
            0.0 <= float(swipe_probability) <= 1.0
        ):
            raise ValueError(
                f"`swipe_probability` must be a number in [0, 1]; got {swipe_probability!r}"
            )
        self.l_init = int(l_init)
        self.swipe_probability = float(swipe_probability)

    def look_probabilities(self, slate_size: int) -> np.ndarray:
        beyond = np.maximum(0, np.arange(1, slate_size + 1) - self.l_init)
        return self.swipe_probability**beyond

    def n_uniforms(self, slate_size: int) -> int:
        return 2 * slate_size

    def streams_from_uniforms(self, probs: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        slate_size = probs.shape[-1]
        stream_draws = uniforms[:, :slate_size] < probs
        swipes = uniforms[:, slate_size:] < self.swipe_probability
        swipes[:, : self.l_init] = True
        # A slot is looked at only if every swipe up to it happened.
        looked = np.logical_and.accumulate(swipes, axis=1)
        return _first_success(stream_draws & looked)

    def describe(self) -> str:
        return (
            f"swipe (first {self.l_init} cards on screen, then a swipe to each next card "
            f"with probability {self.swipe_probability:g})"
        )


CLICK_MODELS = ("cascade", "swipe")


def make_click_model(
    click_model: str | ClickModel = "cascade",
    *,
    l_init: int = 3,
    swipe_probability: float = 0.8,
) -> ClickModel:
    """Build a click model from its name, or pass an instance through.

    Args:
        click_model: ``"cascade"``, ``"swipe"`` or a :class:`ClickModel`.
        l_init: cards on screen at first (used by ``"swipe"``).
        swipe_probability: per-card swipe probability (used by ``"swipe"``).
    """
    if isinstance(click_model, ClickModel):
        return click_model
    if click_model == "cascade":
        return CascadeClickModel()
    if click_model == "swipe":
        return SwipeClickModel(l_init=l_init, swipe_probability=swipe_probability)
    raise ValueError(
        f"`click_model` must be one of {list(CLICK_MODELS)} or a ClickModel instance; "
        f"got {click_model!r}"
    )
