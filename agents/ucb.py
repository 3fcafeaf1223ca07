"""Upper-confidence-bound agents per segment: KL-UCB (paper preset) and CascadeKL-UCB.

References:
    A. Garivier, O. Cappé, "The KL-UCB Algorithm for Bounded Stochastic Bandits and
    Beyond", COLT 2011.
    B. Kveton, C. Szepesvári, Z. Wen, A. Ashkan, "Cascading Bandits: Learning to Rank in
    the Cascade Model", ICML 2015.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents._selection import ranked_slates
from agents.base import check_float
from agents.segment import SegmentAgent

#: Clipping of Bernoulli parameters inside the KL divergence (as in the published code).
KL_EPS = 1e-15


def bernoulli_kl(p: np.ndarray, q: np.ndarray, eps: float = KL_EPS) -> np.ndarray:
    """kl(p, q) = p log(p/q) + (1-p) log((1-p)/(1-q)), both clipped to [eps, 1 - eps]."""
    p = np.clip(p, eps, 1 - eps)
    q = np.clip(q, eps, 1 - eps)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def kl_ucb_index(
    streams: np.ndarray,
    displays: np.ndarray,
    log_t: float | np.ndarray,
    *,
    precision: float = 1e-6,
    max_iter: int = 50,
) -> np.ndarray:
    """KL-UCB index of every cell at once: the largest q >= s/n with n kl(s/n, q) <= log t.

    Bisection on [s/n, 1] run on all cells together; a cell stops once its bracket is at
    most ``precision`` wide (about 20 halvings) and returns the bracket's midpoint, as the
    published code does cell by cell. Never-displayed cells score 1.

    Args:
        streams, displays: arrays of the same shape (any), counts s and n.
        log_t: the exploration level log t (a scalar or broadcastable to the cells).

    Returns:
        float64 array of the cells' shape.
    """
    streams = np.asarray(streams, dtype=np.float64)
    displays = np.asarray(displays, dtype=np.float64)
    seen = displays > 0
    n = displays[seen]
    p = streams[seen] / n
    threshold = np.broadcast_to(np.asarray(log_t, dtype=np.float64), displays.shape)[seen] / n

    # kl(p, q) = entropy part of p - p log q - (1 - p) log(1 - q), with p, q clipped.
    pc = np.clip(p, KL_EPS, 1 - KL_EPS)
    own = pc * np.log(pc) + (1 - pc) * np.log(1 - pc)
    low, high = p.copy(), np.ones_like(p)
    active = np.flatnonzero(high - low > precision)
    for _ in range(max_iter):
        if active.size == 0:
            break
        mid = 0.5 * (low[active] + high[active])
        qc = np.clip(mid, KL_EPS, 1 - KL_EPS)
        kl = own[active] - pc[active] * np.log(qc) - (1 - pc[active]) * np.log(1 - qc)
        over = kl > threshold[active]
        high[active[over]] = mid[over]
        low[active[~over]] = mid[~over]
        active = active[high[active] - low[active] > precision]

    index = np.ones(displays.shape, dtype=np.float64)
    index[seen] = 0.5 * (low + high)
    return index


class KLUCBSegment(SegmentAgent):
    """KL-UCB per segment (preset ``kl-ucb-seg``).

    Per (segment, item) the index max{q >= s/n : n kl(s/n, q) <= log t}, t being the total
    number of displays so far over all segments; never-displayed items score 1; the
    slate is the ``slate_size`` largest indices of the user's segment, ties at random.
    Bisection to ``precision``.

    Under ``feedback="published-code"`` only the cells displayed in the round are
    re-scored after it (with the new t); the other cells keep the index of their last
    update, as the published code does. Under ``"paper"`` every displayed cell is
    re-scored with the current t after each round.

    Args:
        precision: bisection stops when the bracket is this narrow.
        cascade, feedback: see :class:`agents.base.LearningAgent`.
    """

    name = "kl-ucb-seg"

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        precision: float = 1e-6,
        cascade: bool = True,
        feedback: str = "published-code",
    ) -> None:
        self.precision = check_float("precision", precision, low=0.0, low_open=True)
        super().__init__(
            n_items,
            slate_size,
            n_segments=n_segments,
            l_init=l_init,
            seed=seed,
            cascade=cascade,
            feedback=feedback,
            precision=self.precision,
        )

    def _init_learning(self) -> None:
        super()._init_learning()
        self.index = np.ones((self.n_segments, self.n_items), dtype=np.float64)

    def _after_update(self, batch: dict[str, Any], shown_cells: np.ndarray) -> None:
        total = int(self.displays_count.sum())
        log_t = np.log(total) if total > 0 else -np.inf
        if self.feedback == "published-code":
            cells = np.unique(shown_cells)
        else:
            cells = np.flatnonzero(self.displays_count.ravel() > 0)
        flat = self.index.reshape(-1)
        flat[cells] = kl_ucb_index(
            self.streams_count.ravel()[cells],
            self.displays_count.ravel()[cells],
            log_t,
            precision=self.precision,
        )

    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        slates = ranked_slates(self.rng, (self.index,), batch["segment"], self.slate_size)
        return self.shuffle_first(slates)

    def _learned_state(self) -> dict[str, np.ndarray]:
        return {**super()._learned_state(), "index": self.index}

    def _load_learned_state(self, state: dict[str, np.ndarray]) -> None:
        super()._load_learned_state(state)
        self.index = state["index"].astype(np.float64, copy=True)


class CascadeKLUCB(SegmentAgent):
    """CascadeKL-UCB of Kveton et al. (2015), one cascading bandit per segment.

    Segment-wise: each segment runs its own CascadeKL-UCB, with its own step count
    t_s = number of visits of users of segment s so far. Per (segment, item) the index
    max{q >= s/n : n kl(s/n, q) <= log t_s + c log log t_s} (the log log term is dropped
    while log t_s < 1); never-displayed items score 1; slates rank items by index, ties at
    random. Kveton et al. observe every item up to the first click, and the whole list
    when there is none; here what counts as observed follows the agent's display rule
    (``cascade``/``feedback``), whose ``"published-code"`` cascade rule is exactly
    Kveton's. Every displayed cell is re-scored after each round.

    Args:
        c: weight of the log log t term (3 in the paper's analysis; 0 is a common
            practical choice).
        precision: bisection stops when the bracket is this narrow.
        cascade, feedback: see :class:`agents.base.LearningAgent`.
    """

    name = "cascade-kl-ucb"

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        c: float = 3.0,
        precision: float = 1e-6,
        cascade: bool = True,
        feedback: str = "paper",
    ) -> None:
        self.c = check_float("c", c, low=0.0)
        self.precision = check_float("precision", precision, low=0.0, low_open=True)
        super().__init__(
            n_items,
            slate_size,
            n_segments=n_segments,
            l_init=l_init,
            seed=seed,
            cascade=cascade,
            feedback=feedback,
            c=self.c,
            precision=self.precision,
        )

    def _init_learning(self) -> None:
        super()._init_learning()
        self.visits = np.zeros(self.n_segments, dtype=np.int64)
        self.index = np.ones((self.n_segments, self.n_items), dtype=np.float64)

    def exploration(self) -> np.ndarray:
        """log t_s + c log log t_s per segment, float64 (n_segments,)."""
        log_t = np.log(np.maximum(self.visits, 1).astype(np.float64))
        return log_t + self.c * np.log(np.maximum(log_t, 1.0))

    def _after_update(self, batch: dict[str, Any], shown_cells: np.ndarray) -> None:
        self.visits += np.bincount(batch["segment"], minlength=self.n_segments)
        cells = np.flatnonzero(self.displays_count.ravel() > 0)
        level = np.repeat(self.exploration(), self.n_items)[cells]
        self.index.reshape(-1)[cells] = kl_ucb_index(
            self.streams_count.ravel()[cells],
            self.displays_count.ravel()[cells],
            level,
            precision=self.precision,
        )

    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        slates = ranked_slates(self.rng, (self.index,), batch["segment"], self.slate_size)
        return self.shuffle_first(slates)

    def _learned_state(self) -> dict[str, np.ndarray]:
        return {**super()._learned_state(), "visits": self.visits, "index": self.index}

    def _load_learned_state(self, state: dict[str, np.ndarray]) -> None:
        super()._load_learned_state(state)
        self.visits = state["visits"].astype(np.int64, copy=True)
        self.index = state["index"].astype(np.float64, copy=True)
