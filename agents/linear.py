"""Fully personalised agents on the users' taste vectors: linear TS, its greedy twin, LinUCB.

References:
    O. Chapelle, L. Li, "An Empirical Evaluation of Thompson Sampling", NeurIPS 2011
    (online Bayesian logistic regression with a diagonal Laplace posterior).
    L. Li, W. Chu, J. Langford, R. E. Schapire, "A Contextual-Bandit Approach to
    Personalized News Article Recommendation", WWW 2010 (disjoint LinUCB).
    W. Bendada, G. Salha, T. Bontempelli, RecSys 2020 (arXiv:2009.06546), section 3.3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from agents._logistic import GroupedRows, fit_map
from agents._selection import top_l, top_l_random_ties
from agents.base import LearningAgent, check_float, check_int


class _LinearAgent(LearningAgent):
    """Shared parts: the ``n_features`` param, the features of a batch, the display rows."""

    uses = ("features",)

    def _display_rows(
        self, batch: dict[str, Any], slates: np.ndarray, streams: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(features float64 (n, d), items int64 (n,), streamed bool (n,)) per display."""
        displayed, streamed = self.displays(streams)
        visit, slot = np.nonzero(displayed)
        features = np.asarray(batch["features"], dtype=np.float64)[visit]
        return features, slates[visit, slot], streamed[visit, slot]


class LinearThompson(_LinearAgent):
    """Linear Thompson sampling with one Bayesian logistic regression per item.

    Each item i has a diagonal Gaussian posterior N(m_i, diag(1 / q_i)) over its weight
    vector. For a user x, x . theta_i ~ N(x . m_i, sum_d x_d^2 / q_id), so one normal
    draw per (user, item) gives the sampled score; the slate is the ``slate_size``
    largest scores. After a round, every item with new displays is refitted on that
    round's displays (label +1 for the streamed slot, -1 for the others) by at most
    ``lbfgs_steps`` L-BFGS iterations of the negative log posterior with the current
    posterior as prior (the bias coordinate, the last, is not regularised), starting from
    m_i; then m_i is the fit and q_i += sum P (1 - P) x^2 over the item's displays, with
    P = sigmoid(x . m_i) (``feedback="paper"``) or sigmoid(x . m_i - 1)
    (``"published-code"``, as that code does). All items are fitted together (see
    :mod:`agents._logistic`); scores are computed in float32.

    Presets: ``ts-lin-naive`` (prior_bias_mean 0), ``ts-lin-pessimistic`` (-5);
    ``feedback="published-code"``.

    Limitations: the published code starts each item's first fit from a random draw of
    the prior and runs scipy's L-BFGS-B (Moré-Thuente line search); here the first fit
    starts from the prior mean and the line search is backtracking, so the fits follow
    the same objective and iteration budget but not the same path.

    Args:
        n_features: length of a taste vector (the last entry is the bias 1.0).
        prior_bias_mean: prior mean of the bias weight (the other weights start at 0).
        prior_precision: prior precision q of every weight.
        lbfgs_steps: L-BFGS iterations per refit.
        cascade, feedback: see :class:`agents.base.LearningAgent`.
    """

    name = "ts-lin"
    sample = True

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        n_features: int = 97,
        prior_bias_mean: float = 0.0,
        prior_precision: float = 1.0,
        lbfgs_steps: int = 15,
        cascade: bool = True,
        feedback: str = "published-code",
    ) -> None:
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.prior_bias_mean = check_float("prior_bias_mean", prior_bias_mean)
        self.prior_precision = check_float(
            "prior_precision", prior_precision, low=0.0, low_open=True
        )
        self.lbfgs_steps = check_int("lbfgs_steps", lbfgs_steps, minimum=1)
        super().__init__(
            n_items,
            slate_size,
            n_segments=n_segments,
            l_init=l_init,
            seed=seed,
            cascade=cascade,
            feedback=feedback,
            n_features=self.n_features,
            prior_bias_mean=self.prior_bias_mean,
            prior_precision=self.prior_precision,
            lbfgs_steps=self.lbfgs_steps,
        )

    def _init_learning(self) -> None:
        self.mean = np.zeros((self.n_items, self.n_features))
        self.mean[:, -1] = self.prior_bias_mean
        self.precision = np.full((self.n_items, self.n_features), self.prior_precision)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Sampled (or, for the greedy twin, mean) scores x . theta, float32 (n, n_items)."""
        x = np.asarray(features, dtype=np.float32)
        scores = x @ self.mean.T.astype(np.float32)
        if self.sample:
            spread = np.square(x) @ (1.0 / self.precision).T.astype(np.float32)
            np.sqrt(spread, out=spread)
            spread *= self.rng.standard_normal(spread.shape, dtype=np.float32)
            scores += spread
        return scores

    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        slates = top_l(self.scores(batch["features"]), self.slate_size)
        return self.shuffle_first(slates)

    def _update_batch(self, batch: dict[str, Any], slates: np.ndarray, streams: np.ndarray):
        features, items, streamed = self._display_rows(batch, slates, streams)
        if items.size == 0:
            return
        rows = GroupedRows.build(features, np.where(streamed, 1.0, -1.0), items)
        fitted = fit_map(
            rows,
            self.mean[rows.items],
            self.mean[rows.items],
            self.precision[rows.items],
            max_iter=self.lbfgs_steps,
        )
        offset = 1.0 if self.feedback == "published-code" else 0.0
        prob = expit(rows.dot(fitted) - offset)
        self.mean[rows.items] = fitted
        self.precision[rows.items] += rows.sum_rows(prob * (1.0 - prob), squared=True)

    def _learned_state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "precision": self.precision}

    def _load_learned_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean = state["mean"].astype(np.float64, copy=True)
        self.precision = state["precision"].astype(np.float64, copy=True)


class LinearGreedy(LinearThompson):
    """Greedy twin of :class:`LinearThompson` (registered as ``lin-greedy``).

    Same per-item Bayesian logistic regressions and updates, but the slate is the
    ``slate_size`` largest posterior-mean scores x . m_i: no sampling, so no exploration
    beyond what the prior and the ties give (exact ties, as at the start, are broken by a
    random permutation of the items drawn once per round). A fully personalised baseline
    that uses no oracle. Default ``feedback="paper"``.
    """

    name = "lin-greedy"
    sample = False

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        n_features: int = 97,
        prior_bias_mean: float = 0.0,
        prior_precision: float = 1.0,
        lbfgs_steps: int = 15,
        cascade: bool = True,
        feedback: str = "paper",
    ) -> None:
        super().__init__(
            n_items,
            slate_size,
            n_segments=n_segments,
            l_init=l_init,
            seed=seed,
            n_features=n_features,
            prior_bias_mean=prior_bias_mean,
            prior_precision=prior_precision,
            lbfgs_steps=lbfgs_steps,
            cascade=cascade,
            feedback=feedback,
        )

    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        slates = top_l_random_ties(self.rng, self.scores(batch["features"]), self.slate_size)
        return self.shuffle_first(slates)


class LinUCB(_LinearAgent):
    """Disjoint LinUCB (Li et al., 2010): one ridge regression per item.

    Per item i: A_i = ridge * I + sum x x^T and b_i = sum r x over the item's displays
    (r = 1 for the streamed slot, 0 otherwise); the score of user x is
    x . A_i^{-1} b_i + alpha * sqrt(x^T A_i^{-1} x); the slate is the ``slate_size``
    largest scores, exact ties broken by a random permutation of the items per round.

    Cost: the confidence widths need n_users * n_items * n_features^2 operations, about
    160 G multiply-adds for a round of 20,000 users, 862 items and 97 features (seconds
    per round); the other agents are far cheaper. Default ``feedback="paper"``.

    Args:
        n_features: length of a taste vector.
        alpha: width multiplier of the confidence bound. With stream rates near 0.01 and
            taste vectors of norm about 13, the textbook alpha = 1 explores for a very
            long time; 0.1 is the default here.
        ridge: the ridge (prior precision) lambda.
        cascade, feedback: see :class:`agents.base.LearningAgent`.
    """

    name = "linucb"
    #: items per chunk when computing the confidence widths (bounds the memory use)
    _chunk = 16

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        n_features: int = 97,
        alpha: float = 0.1,
        ridge: float = 1.0,
        cascade: bool = True,
        feedback: str = "paper",
    ) -> None:
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.alpha = check_float("alpha", alpha, low=0.0)
        self.ridge = check_float("ridge", ridge, low=0.0, low_open=True)
        super().__init__(
            n_items,
            slate_size,
            n_segments=n_segments,
            l_init=l_init,
            seed=seed,
            cascade=cascade,
            feedback=feedback,
            n_features=self.n_features,
            alpha=self.alpha,
            ridge=self.ridge,
        )

    def _init_learning(self) -> None:
        d = self.n_features
        self.gram = np.broadcast_to(self.ridge * np.eye(d), (self.n_items, d, d)).copy()
        self.target = np.zeros((self.n_items, d))
        self._refresh(np.arange(self.n_items))

    def _refresh(self, items: np.ndarray) -> None:
        if items.size == 0:
            return
        if not hasattr(self, "inverse"):
            self.inverse = np.empty_like(self.gram)
            self.theta = np.empty_like(self.target)
        self.inverse[items] = np.linalg.inv(self.gram[items])
        self.theta[items] = np.einsum("kde,ke->kd", self.inverse[items], self.target[items])

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Upper confidence bounds, float32 (n_users, n_items)."""
        x = np.asarray(features, dtype=np.float32)
        n, d = x.shape
        scores = x @ self.theta.T.astype(np.float32)
        if self.alpha > 0:
            inverse = self.inverse.astype(np.float32)
            for lo in range(0, self.n_items, self._chunk):
                block = inverse[lo : lo + self._chunk]
                projected = (x @ block.transpose(1, 0, 2).reshape(d, -1)).reshape(n, -1, d)
                width = np.einsum("nkd,nd->nk", projected, x)
                scores[:, lo : lo + self._chunk] += self.alpha * np.sqrt(np.maximum(width, 0))
        return scores

    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        slates = top_l_random_ties(self.rng, self.scores(batch["features"]), self.slate_size)
        return self.shuffle_first(slates)

    def _update_batch(self, batch: dict[str, Any], slates: np.ndarray, streams: np.ndarray):
        features, items, streamed = self._display_rows(batch, slates, streams)
        if items.size == 0:
            return
        rows = GroupedRows.build(features, streamed.astype(np.float64), items)
        for g, item in enumerate(rows.items):
            # One small Gram update per item: the rows of an item are contiguous.
            block = rows.features[rows.starts[g] : rows.starts[g + 1]]
            self.gram[item] += block.T @ block
        self.target[rows.items] += rows.sum_rows(rows.labels)
        self._refresh(rows.items)

    def _learned_state(self) -> dict[str, np.ndarray]:
        return {
            "gram": self.gram,
            "target": self.target,
            "inverse": self.inverse,
            "theta": self.theta,
        }

    def _load_learned_state(self, state: dict[str, np.ndarray]) -> None:
        for key in ("gram", "target", "inverse", "theta"):
            setattr(self, key, state[key].astype(np.float64, copy=True))
