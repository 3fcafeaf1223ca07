"""Action adapters that let general-purpose RL algorithms choose slates.

A slate is ``slate_size`` *distinct* items out of ``n_items``. No standard Gymnasium space
says "distinct", so an off-the-shelf algorithm (PPO, A2C, SAC, TD3 from Stable-Baselines3)
cannot act in :class:`~carousel_env.spaces.SlateSpace` directly. The two adapters here
give it a standard action space and turn its action into a valid slate:

- :class:`ScoreSlateWrapper`: the action is ``Box(-1, 1, (n_items,), float32)``, one
  score per item; the slate is the ``slate_size`` highest-scoring items, highest first.
- :class:`MultiDiscreteSlateWrapper`: the action is ``MultiDiscrete([n_items] *
  slate_size)``, one item per slot; an item repeated in a later slot is replaced by the
  repair rule below.

Trade-offs:

- **Scores** work with every algorithm that handles a ``Box`` (on- and off-policy). Every
  action is a valid slate and similar actions give similar slates. The price: the action
  has ``n_items`` (862) dimensions, and many score vectors give the same slate, so the
  policy's probability of a slate is spread over all of them (noisier credit
  assignment). Ties are broken by item index, lower first (a stable sort). Beware of
  clipping: SB3's PPO and A2C clip a Gaussian sample to the bounds before ``step``, so
  entries beyond +1 all become 1.0 and tie; with the default initial standard deviation
  (1.0) about one item in six is clipped to 1.0 and the slate is then the lowest-indexed
  of them. Start with a small standard deviation (``policy_kwargs={"log_std_init": -2}``)
  when training through ``learn()``; :class:`agents.sb3.SB3Agent` ranks the unclipped
  sample and has no such ties.
- **One item per slot** has far fewer output dimensions per slot and lets each slot
  learn its own item, but the slots are chosen independently: a policy that has found
  the single best item wants it in every slot. The repair rule keeps the action valid,
  but the items it fills in are arbitrary (the lowest free indices), so the policy
  learns about them only through the rewards they happen to earn. Only for discrete
  algorithms (PPO, A2C).

The repair rule of :class:`MultiDiscreteSlateWrapper`, deterministic and vectorised: an
item keeps the leftmost slot it appears in; every later slot that repeats an earlier
item gets, from left to right, the lowest-indexed items that appear nowhere in the
action. For example, with ``n_items=10``, ``[4, 0, 4, 4, 2]`` becomes ``[4, 0, 1, 3, 2]``.

No observation adapter is needed: SB3's ``MultiInputPolicy`` takes the environment's
``Dict(features=Box, segment=Discrete)`` observation as it is (it one-hot encodes the
segment and concatenates it to the features).

The same conversions, batched over a round of users, are :func:`scores_to_slates` and
:func:`repair_slates`; :class:`carousel_env.sb3_vec.CarouselSB3VecEnv` uses them. This
module needs neither torch nor Stable-Baselines3.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = [
    "ACTION_ADAPTERS",
    "MultiDiscreteSlateWrapper",
    "ScoreSlateWrapper",
    "actions_to_slates",
    "adapter_action_space",
    "repair_slates",
    "scores_to_slates",
]

#: Names of the action adapters, as accepted by :func:`adapter_action_space`.
ACTION_ADAPTERS = ("score", "multidiscrete")


def _check_adapter(adapter: Any) -> str:
    if adapter not in ACTION_ADAPTERS:
        raise ValueError(
            f"`action` adapter must be one of {', '.join(map(repr, ACTION_ADAPTERS))}; "
            f"got {adapter!r}"
        )
    return str(adapter)


def _check_sizes(n_items: Any, slate_size: Any) -> tuple[int, int]:
    for name, value in (("n_items", n_items), ("slate_size", slate_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"`{name}` must be an int; got {type(value).__name__} {value!r}")
        if value < 1:
            raise ValueError(f"`{name}` must be at least 1; got {value}")
    if slate_size > n_items:
        raise ValueError(
            f"`slate_size` ({slate_size}) must not exceed `n_items` ({n_items}): a slate "
            "holds distinct items"
        )
    return int(n_items), int(slate_size)


def adapter_action_space(adapter: str, n_items: int, slate_size: int) -> spaces.Space:
    """The action space of one user under an adapter.

    Args:
        adapter: ``"score"`` or ``"multidiscrete"``.
        n_items: K, the number of items.
        slate_size: L, the number of slots.

    Returns:
        ``Box(-1, 1, (n_items,), float32)`` or ``MultiDiscrete([n_items] * slate_size)``
        (int64; a plain ``MultiDiscrete``, not a ``SlateSpace``: repeats are allowed).
    """
    adapter = _check_adapter(adapter)
    n_items, slate_size = _check_sizes(n_items, slate_size)
    if adapter == "score":
        return spaces.Box(-1.0, 1.0, shape=(n_items,), dtype=np.float32)
    return spaces.MultiDiscrete(np.full(slate_size, n_items, dtype=np.int64), dtype=np.int64)


def scores_to_slates(scores: Any, slate_size: int) -> np.ndarray:
    """The ``slate_size`` highest-scoring items of each row, highest first.

    Ties are broken by item index, lower first, exactly as a stable descending sort of
    the whole row would; but the work is one ``partition`` per row (to find the
    ``slate_size``-th highest score), a comparison, and a sort of the ``slate_size``
    winners. Only the rows with a tie at the selection boundary (the ``slate_size``-th
    highest score shared with an item left out) take a slower exact path.

    Args:
        scores: finite real array, shape (n_items,) for one user or (n_users, n_items).
            Values outside [-1, 1] are ranked as they are.
        slate_size: L, at most ``n_items``.

    Returns:
        int64 array of distinct item indices, shape (slate_size,) or (n_users, slate_size).

    Raises:
        ValueError: wrong number of dimensions, non-numeric or non-finite scores, or a
            ``slate_size`` larger than the number of items.
    """
    array = np.asarray(scores)
    if array.ndim not in (1, 2) or array.shape[-1] < 1:
        raise ValueError(
            f"`scores` must have shape (n_items,) or (n_users, n_items); got shape {array.shape}"
        )
    if array.dtype.kind not in "fiu":
        raise ValueError(f"`scores` must be real numbers; got dtype {array.dtype}")
    _check_sizes(array.shape[-1], slate_size)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0].tolist()
        raise ValueError(
            f"`scores` must be finite; got {array[tuple(bad)]} at index {bad} of an array "
            f"of shape {array.shape}"
        )
    single = array.ndim == 1
    rows = np.atleast_2d(array)
    if rows.dtype.kind != "f":
        rows = rows.astype(np.float64)  # negating an unsigned int would wrap around
    n_users, n_items = rows.shape

    # The slate_size-th highest score of each row: the items scoring at least that much
    # are the winners, unless an item left out shares it (a tie at the boundary). A
    # partition of the values is about twice as fast as an argpartition of the indices.
    cut = n_items - slate_size
    threshold = np.partition(rows, cut, axis=1)[:, cut]
    chosen = rows >= threshold[:, None]
    tied = np.count_nonzero(chosen, axis=1) > slate_size
    if tied.all():  # as after clipping a wide Gaussian: no row copies
        chosen = _first_by_index(rows, threshold, slate_size)
    elif tied.any():
        chosen[tied] = _first_by_index(rows[tied], threshold[tied], slate_size)

    # Exactly slate_size winners a row, in index order; then highest first, and a
    # stable sort of index-ordered winners puts the lower index first among equals.
    winners = np.flatnonzero(chosen).reshape(n_users, slate_size) % n_items
    winner_scores = np.take_along_axis(rows, winners, axis=1)
    order = np.argsort(-winner_scores, axis=1, kind="stable")
    slates = np.take_along_axis(winners, order, axis=1).astype(np.int64, copy=False)
    return slates[0] if single else slates


def _first_by_index(rows: np.ndarray, threshold: np.ndarray, slate_size: int) -> np.ndarray:
    """For rows with ties at ``threshold``: every item above it, then the lowest-indexed
    items equal to it, as many as fit. Returns the chosen items as a bool mask, (n, K)."""
    above = rows > threshold[:, None]
    equal = rows == threshold[:, None]
    room = slate_size - np.count_nonzero(above, axis=1)
    # int32 counts: a bool cumsum into int64 is several times slower in NumPy.
    rank = np.cumsum(equal, axis=1, dtype=np.int32)
    return above | (equal & (rank <= room[:, None]))


def repair_slates(actions: Any, n_items: int) -> np.ndarray:
    """Make every row a slate of distinct items by replacing repeated items.

    The rule: an item keeps the leftmost slot it appears in; the later slots that repeat
    an earlier item get, from left to right, the lowest-indexed items that appear nowhere
    in the row. Rows without repeats are returned unchanged.

    Args:
        actions: int array, shape (slate_size,) or (n_users, slate_size), items in
            [0, n_items).
        n_items: K, at least ``slate_size``.

    Returns:
        int64 array of the same shape, distinct items in every row.

    Raises:
        ValueError: wrong number of dimensions, non-integer values or items out of range.
    """
    array = np.asarray(actions)
    if array.ndim not in (1, 2) or array.shape[-1] < 1:
        raise ValueError(
            f"`actions` must have shape (slate_size,) or (n_users, slate_size); got shape "
            f"{array.shape}"
        )
    if array.dtype.kind not in "iu":
        raise ValueError(f"`actions` must hold integer item indices; got dtype {array.dtype}")
    n_items, slate_size = _check_sizes(n_items, array.shape[-1])
    if array.size and (array.min() < 0 or array.max() >= n_items):
        bad = array[(array < 0) | (array >= n_items)]
        raise ValueError(f"`actions` items must lie in [0, {n_items}); got {bad[:5].tolist()}")
    single = array.ndim == 1
    slates = np.atleast_2d(array).astype(np.int64)

    # A slot repeats an earlier item when, in a stable sort of its row, the value before
    # it is the same: the leftmost copy sorts first and is the one kept.
    order = np.argsort(slates, axis=1, kind="stable")
    ordered = np.take_along_axis(slates, order, axis=1)
    repeat_sorted = np.zeros_like(ordered, dtype=bool)
    repeat_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    repeat = np.empty_like(repeat_sorted)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)
    rows = np.flatnonzero(repeat.any(axis=1))
    if rows.size == 0:
        return slates[0] if single else slates

    # A row with d repeats holds L - d distinct items, so at least d of the items
    # 0 .. L-1 are free: the replacements never need an index beyond L - 1.
    broken, repeat = slates[rows], repeat[rows]
    candidates = np.arange(slate_size)
    used = (broken[:, :, None] == candidates[None, None, :]).any(axis=1)
    free = np.argsort(used, axis=1, kind="stable")
    nth_repeat = np.cumsum(repeat, axis=1) - 1
    fill = np.take_along_axis(free, np.maximum(nth_repeat, 0), axis=1)
    slates[rows] = np.where(repeat, fill, broken)
    return slates[0] if single else slates


def actions_to_slates(adapter: str, actions: Any, n_items: int, slate_size: int) -> np.ndarray:
    """Turn a batch of adapter actions into slates, int64 (n_users, slate_size).

    Args:
        adapter: ``"score"`` or ``"multidiscrete"``.
        actions: float (n_users, n_items) scores, or int (n_users, slate_size) items.
        n_items: K.
        slate_size: L.
    """
    adapter = _check_adapter(adapter)
    n_items, slate_size = _check_sizes(n_items, slate_size)
    array = np.asarray(actions)
    if adapter == "score":
        if array.ndim != 2 or array.shape[1] != n_items:
            raise ValueError(
                f"score actions must have shape (n_users, {n_items}); got shape {array.shape}"
            )
        return scores_to_slates(array, slate_size)
    if array.ndim != 2 or array.shape[1] != slate_size:
        raise ValueError(
            f"multidiscrete actions must have shape (n_users, {slate_size}); got shape "
            f"{array.shape}"
        )
    if array.dtype.kind == "f" and np.isfinite(array).all() and (array % 1 == 0).all():
        # SB3 hands MultiDiscrete actions over as whole-number floats in some code paths.
        array = array.astype(np.int64)
    return repair_slates(array, n_items)


class _SlateActionWrapper(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """What both adapters share: the sizes, checked against the wrapped environment.

    Recording the constructor arguments lets ``env.spec.make()`` rebuild a wrapped
    ``gym.make`` environment (Gymnasium's checker does).
    """

    adapter: str = ""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        slate_space = env.action_space
        n_items = getattr(slate_space, "n_items", None)
        slate_size = getattr(slate_space, "slate_size", None)
        if n_items is None or slate_size is None or getattr(slate_space, "batch_size", None):
            raise TypeError(
                f"{type(self).__name__} wraps a single-user carousel environment whose "
                f"action space is a SlateSpace; got action space {slate_space!r}"
            )
        self.n_items, self.slate_size = int(n_items), int(slate_size)
        self.action_space = adapter_action_space(self.adapter, self.n_items, self.slate_size)


class ScoreSlateWrapper(_SlateActionWrapper):
    """Act with one score per item; the slate is the ``slate_size`` highest, highest first.

    Action space: ``Box(-1, 1, (n_items,), float32)``. Ties go to the lower item index.
    Scores outside [-1, 1] are ranked as they are (SB3 clips them before they arrive).
    See the module docstring for the trade-offs and the clipping caveat.

    Args:
        env: a single-user carousel environment (``CarouselEnv``, possibly wrapped).
    """

    adapter = "score"

    def action(self, action: Any) -> np.ndarray:
        scores = np.asarray(action)
        if scores.shape != (self.n_items,):
            raise ValueError(
                f"action must be {self.n_items} scores, shape ({self.n_items},); got shape "
                f"{scores.shape}"
            )
        return scores_to_slates(scores, self.slate_size)


class MultiDiscreteSlateWrapper(_SlateActionWrapper):
    """Act with one item per slot; repeated items are replaced by the repair rule.

    Action space: ``MultiDiscrete([n_items] * slate_size)`` (int64). An item keeps its
    leftmost slot; later repeats get the lowest-indexed unused items, left to right. See
    the module docstring for the trade-offs.

    Args:
        env: a single-user carousel environment (``CarouselEnv``, possibly wrapped).
    """

    adapter = "multidiscrete"

    def action(self, action: Any) -> np.ndarray:
        items = np.asarray(action)
        if items.shape != (self.slate_size,):
            raise ValueError(
                f"action must be {self.slate_size} item indices, shape ({self.slate_size},); "
                f"got shape {items.shape}"
            )
        return repair_slates(items, self.n_items)
