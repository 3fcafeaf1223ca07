"""Per-item Bayesian logistic regressions fitted together: grouped data and batched L-BFGS.

The linear Thompson sampling agent refits, after every round, one logistic regression
per item that received displays, each on its own rows with its own diagonal Gaussian
prior. The objective is separable across items, so the fits run in lockstep: one
L-BFGS iteration advances every item at once, with per-item memory, per-item step
lengths and per-item stopping, and the only per-item work is two matrix-vector products
on each item's contiguous block of rows (a loop over items: gathering one weight row per
display instead would copy n_displays x n_features floats at every evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit


@dataclass
class GroupedRows:
    """Rows sorted by item: ``features[starts[g]:starts[g + 1]]`` belong to ``items[g]``.

    Attributes:
        features: float64 array, shape (n_rows, n_features).
        labels: float64 array of +1 (stream) / -1 (no stream), shape (n_rows,).
        items: int64 array of distinct item indices, shape (n_groups,).
        starts: int64 array, shape (n_groups + 1,).
    """

    features: np.ndarray
    labels: np.ndarray
    items: np.ndarray
    starts: np.ndarray

    @classmethod
    def build(cls, features: np.ndarray, labels: np.ndarray, items: np.ndarray) -> GroupedRows:
        """Group rows by item (stable: rows keep their order inside an item)."""
        order = np.argsort(items, kind="stable")
        sorted_items = items[order]
        first = np.flatnonzero(np.r_[True, sorted_items[1:] != sorted_items[:-1]])
        return cls(
            features=np.ascontiguousarray(features[order], dtype=np.float64),
            labels=np.asarray(labels, dtype=np.float64)[order],
            items=sorted_items[first].astype(np.int64),
            starts=np.r_[first, sorted_items.size].astype(np.int64),
        )

    @property
    def n_groups(self) -> int:
        return int(self.items.size)

    def dot(self, weights: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """Per row ``x_j . weights[g(j)]`` (rows of groups not in ``groups`` left at 0)."""
        out = np.zeros(self.features.shape[0])
        for g in range(self.n_groups) if groups is None else groups:
            lo, hi = self.starts[g], self.starts[g + 1]
            out[lo:hi] = self.features[lo:hi] @ weights[g]
        return out

    def sum_rows(
        self, coef: np.ndarray, groups: np.ndarray | None = None, *, squared: bool = False
    ) -> np.ndarray:
        """Per group ``sum_j coef_j x_j`` (or ``x_j ** 2``), shape (n_groups, n_features)."""
        out = np.zeros((self.n_groups, self.features.shape[1]))
        for g in range(self.n_groups) if groups is None else groups:
            lo, hi = self.starts[g], self.starts[g + 1]
            block = self.features[lo:hi]
            out[g] = coef[lo:hi] @ (block * block if squared else block)
        return out

    def logistic_terms(
        self, weights: np.ndarray, groups: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per listed group, sum_j log(1 + exp(-y_j x_j . w_g)) and its gradient in w_g.

        One pass over each group's rows (both products while the block is in cache).

        Returns:
            (loss (n_groups,), gradient (n_groups, n_features)); unlisted groups are 0.
        """
        loss = np.zeros(self.n_groups)
        grad = np.zeros((self.n_groups, self.features.shape[1]))
        for g in groups:
            lo, hi = self.starts[g], self.starts[g + 1]
            block, label = self.features[lo:hi], self.labels[lo:hi]
            margin = label * (block @ weights[g])
            loss[g] = -log_expit(margin).sum()
            grad[g] = (label * expit(-margin)) @ block
        grad[groups] *= -1.0
        return loss, grad

    def sum_per_group(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, self.starts[:-1]) if values.size else np.zeros(0)


def fit_map(
    rows: GroupedRows,
    start: np.ndarray,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    *,
    max_iter: int = 15,
    memory: int = 10,
    gtol: float = 1e-5,
    ftol: float = 1e7 * np.finfo(float).eps,
    regularize_last: bool = False,
) -> np.ndarray:
    """Minimise, for every group g at once, the negative log posterior

        0.5 * sum_d q_gd (w_d - m_gd)^2  +  sum_j log(1 + exp(-y_j x_j . w))

    (the sum over d skips the last, bias, coordinate unless ``regularize_last``) by
    L-BFGS with ``memory`` correction pairs and a backtracking Armijo line search, at most
    ``max_iter`` iterations per group. A group stops early, like scipy's L-BFGS-B with
    default settings, when its largest gradient entry is at most ``gtol`` or its relative
    decrease is at most ``ftol``. The first step has unit length along -gradient.

    Args:
        rows: the data grouped by item.
        start, prior_mean, prior_precision: float arrays, shape (n_groups, n_features).

    Returns:
        float64 array, shape (n_groups, n_features): the fitted weights.
    """
    n_groups, dim = start.shape
    reg = np.ones(dim)
    if not regularize_last:
        reg[-1] = 0.0
    q = prior_precision * reg

    def evaluate(w: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Loss and gradient of the listed groups (other entries are left at 0)."""
        loss, grad = rows.logistic_terms(w, groups)
        diff = w[groups] - prior_mean[groups]
        loss[groups] += 0.5 * np.einsum("gd,gd->g", q[groups] * diff, diff)
        grad[groups] += q[groups] * diff
        return loss, grad

    w = np.array(start, dtype=np.float64)
    everyone = np.arange(n_groups)
    f, g = evaluate(w, everyone)
    s_hist = np.zeros((n_groups, memory, dim))
    y_hist = np.zeros((n_groups, memory, dim))
    rho = np.zeros((n_groups, memory))
    n_pairs = np.zeros(n_groups, dtype=np.int64)
    active = np.abs(g).max(axis=1) > gtol

    for _ in range(max_iter):
        act = np.flatnonzero(active)
        if act.size == 0:
            break

        # Two-loop recursion over the stored pairs (newest first), all groups at once.
        direction = -g[act]
        alphas = np.zeros((act.size, memory))
        slots = (n_pairs[act][:, None] - 1 - np.arange(memory)[None, :]) % memory
        valid = np.arange(memory)[None, :] < np.minimum(n_pairs[act], memory)[:, None]
        for k in range(memory):
            slot = slots[:, k]
            s_k = s_hist[act, slot]
            y_k = y_hist[act, slot]
            r_k = np.where(valid[:, k], rho[act, slot], 0.0)
            alphas[:, k] = r_k * np.einsum("gd,gd->g", s_k, direction)
            direction -= alphas[:, k, None] * y_k
        newest = slots[:, 0]
        s_new, y_new = s_hist[act, newest], y_hist[act, newest]
        yy = np.einsum("gd,gd->g", y_new, y_new)
        gamma = np.where(
            n_pairs[act] > 0, np.einsum("gd,gd->g", s_new, y_new) / np.where(yy > 0, yy, 1.0), 1.0
        )
        direction *= gamma[:, None]
        for k in reversed(range(memory)):
            slot = slots[:, k]
            r_k = np.where(valid[:, k], rho[act, slot], 0.0)
            beta = r_k * np.einsum("gd,gd->g", y_hist[act, slot], direction)
            direction += (alphas[:, k] - beta)[:, None] * s_hist[act, slot]

        # Backtracking line search with per-group step lengths.
        slope = np.einsum("gd,gd->g", g[act], direction)
        uphill = slope >= 0
        direction[uphill] = -g[act][uphill]
        slope[uphill] = -np.einsum("gd,gd->g", g[act][uphill], g[act][uphill])
        step = np.where(n_pairs[act] > 0, 1.0, 1.0 / np.linalg.norm(direction, axis=1))
        new_w = w.copy()
        new_f, new_g = f.copy(), g.copy()
        searching = np.ones(act.size, dtype=bool)
        for _trial in range(20):
            idx = np.flatnonzero(searching)
            if idx.size == 0:
                break
            groups = act[idx]
            trial = w.copy()
            trial[groups] = w[groups] + step[idx, None] * direction[idx]
            tf, tg = evaluate(trial, groups)
            ok = tf[groups] <= f[groups] + 1e-4 * step[idx] * slope[idx]
            done = groups[ok]
            new_w[done], new_f[done], new_g[done] = trial[done], tf[done], tg[done]
            searching[idx[ok]] = False
            # Shrink by the minimiser of the quadratic through f(0), f'(0), f(step),
            # kept within [0.1, 0.5] of the step (safeguarded backtracking).
            bad = idx[~ok]
            t = step[bad]
            excess = tf[act[bad]] - f[act[bad]] - slope[bad] * t
            with np.errstate(divide="ignore", invalid="ignore"):
                guess = -slope[bad] * t * t / (2.0 * excess)
            guess = np.where(np.isfinite(guess), guess, 0.5 * t)
            step[bad] = np.clip(guess, 0.1 * t, 0.5 * t)
        failed = act[searching]

        # Curvature pairs, convergence tests, next iterate.
        moved = act[~searching]
        s_vec = new_w[moved] - w[moved]
        y_vec = new_g[moved] - g[moved]
        sy = np.einsum("gd,gd->g", s_vec, y_vec)
        keep = sy > np.finfo(float).eps * np.einsum("gd,gd->g", y_vec, y_vec)
        upd = moved[keep]
        slot = n_pairs[upd] % memory
        s_hist[upd, slot] = s_vec[keep]
        y_hist[upd, slot] = y_vec[keep]
        rho[upd, slot] = 1.0 / sy[keep]
        n_pairs[upd] += 1
        decrease = (f[moved] - new_f[moved]) / np.maximum(
            np.maximum(np.abs(f[moved]), np.abs(new_f[moved])), 1.0
        )
        w, f, g = new_w, new_f, new_g
        active[failed] = False
        active[moved[decrease <= ftol]] = False
        active[moved[np.abs(g[moved]).max(axis=1) <= gtol]] = False
    return w
