"""The agent interface, the two feedback readings, and what every agent shares.

An agent works on plain arrays: it never imports the environment. It sees an
observation (the users' taste vectors and segments), returns one slate per user, and
learns from the per-slot streams of those slates.

Observation forms accepted by :meth:`Agent.act` and :meth:`Agent.update`:

* batched (the vector environment, one round): ``{"features": float32 (n_users, n_features),
  "segment": int (n_users,)}``; ``act`` returns int64 ``(n_users, slate_size)``;
* single user: ``{"features": (n_features,), "segment": int or 0-d array}``; ``act``
  returns int64 ``(slate_size,)``.

The two readings (``feedback=``) of the RecSys 2020 paper (Bendada, Salha, Bontempelli,
"Carousel Personalization in Music Streaming Apps with Contextual Bandits",
arXiv:2009.06546) and of the code published with it:

1. Visits without a stream, under the cascade update: ``"paper"`` counts only the first
   ``l_init`` slots as failed displays; ``"published-code"`` counts all ``slate_size``
   slots (the code's test for "no stream" never fires).
2. The shuffle of the first ``l_init`` cards: ``"paper"`` puts the first ``l_init`` slots
   of every slate in random order in ``act``; ``"published-code"`` permutes the slates
   of the first ``l_init`` users of the batch among those users, as the code's
   ``np.random.shuffle(recos[0:l_init])`` does (it shuffles rows, not slots), so no
   slate is reordered.
3. Linear Thompson sampling's precision update: ``"paper"`` uses P = sigmoid(x . m),
   ``"published-code"`` uses P = sigmoid(x . m - 1).
"""

from __future__ import annotations

import abc
import io
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

FEEDBACK_READINGS = ("paper", "published-code")

#: Version of the file layout written by :meth:`Agent.save`.
_FORMAT = 1

#: Every concrete agent class by class name, filled by ``Agent.__init_subclass__``; used by
#: :meth:`Agent.load` to rebuild an agent from a file.
AGENT_CLASSES: dict[str, type[Agent]] = {}


# ----------------------------------------------------------------------------------------
# argument checks


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming the argument and the value given."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int; got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}; got {value}")
    return value


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """Return ``value`` as a float in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"`{name}` must be a number; got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        side = f"greater than {low}" if low_open else f"at least {low}"
        raise ValueError(f"`{name}` must be {side}; got {value}")
    if high is not None and value > high:
        raise ValueError(f"`{name}` must be at most {high}; got {value}")
    return value


def check_feedback(feedback: Any) -> str:
    if feedback not in FEEDBACK_READINGS:
        raise ValueError(
            f"`feedback` must be one of {', '.join(map(repr, FEEDBACK_READINGS))}; "
            f"got {feedback!r}"
        )
    return str(feedback)


# ----------------------------------------------------------------------------------------
# the display rule (what the agent counts as seen)


def display_masks(
    streams: np.ndarray, *, cascade: bool, feedback: str, l_init: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which slots count as displays and which as streams, for a batch of visits.

    Args:
        streams: bool array, shape (n_visits, slate_size); True where the user streamed.
        cascade: the cascade update (slots up to and including the first stream) if True,
            else the no-cascade update (every slot of every visit).
        feedback: ``"paper"`` or ``"published-code"``; decides the visits without a stream
            under the cascade update: the first ``l_init`` slots (paper) or all slots
            (published code).
        l_init: number of cards on screen before any swipe.

    Returns:
        ``(displayed, streamed)``, two bool arrays of shape (n_visits, slate_size);
        ``streamed`` is ``streams & displayed`` (a stream after the first one of a visit is
        not counted under the cascade update).
    """
    n_visits, slate_size = streams.shape
    if not cascade:
        displayed = np.ones((n_visits, slate_size), dtype=bool)
        return displayed, streams.copy()

    has_stream = streams.any(axis=1)
    unseen_last = l_init - 1 if feedback == "paper" else slate_size - 1
    last = np.where(has_stream, streams.argmax(axis=1), unseen_last)
    displayed = np.arange(slate_size)[None, :] <= last[:, None]
    return displayed, streams & displayed


# ----------------------------------------------------------------------------------------
# the agent


class Agent(abc.ABC):
    """Base class of every agent: batched or single-user act/update, reset, save/load.

    Subclasses implement :meth:`_act_batch`, :meth:`_update_batch`, :meth:`_init_learning`
    and list their learned arrays in :meth:`_learned_state` / :meth:`_load_learned_state`.

    Args:
        n_items: number of items K in the catalog.
        slate_size: number of slots L in a slate (at most ``n_items``).
        n_segments: number of user segments (values of ``observation["segment"]``).
        l_init: number of cards on screen before any swipe (at most ``slate_size``).
        seed: seed of the agent's own random generator (``numpy.random.default_rng``).
        **params: the subclass's own parameters, recorded for :meth:`state_dict`.

    Attributes:
        name: registry name (``make_agent`` sets it, e.g. ``"ts-seg-pessimistic"``).
        rng: the agent's ``numpy.random.Generator``; its state is part of a saved agent.
    """

    name: str = "agent"
    #: observation keys this agent reads
    uses: ClassVar[tuple[str, ...]] = ("segment",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        AGENT_CLASSES[cls.__name__] = cls

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Agent:
        """Build an agent from the ``params`` of a :meth:`state_dict` (constructor kwargs)."""
        return cls(**params)

    @classmethod
    def _from_state(cls, state: Mapping[str, Any]) -> Agent:
        agent = cls.from_params(dict(state["params"]))
        agent.load_state_dict(state)
        return agent

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        **params: Any,
    ) -> None:
        self.n_items = check_int("n_items", n_items, minimum=1)
        self.slate_size = check_int("slate_size", slate_size, minimum=1)
        if self.slate_size > self.n_items:
            raise ValueError(
                f"`slate_size` must be at most `n_items` ({self.n_items}): a slate holds "
                f"distinct items; got slate_size={self.slate_size}"
            )
        self.n_segments = check_int("n_segments", n_segments, minimum=1)
        self.l_init = check_int("l_init", l_init, minimum=1)
        if self.l_init > self.slate_size:
            raise ValueError(
                f"`l_init` must be at most `slate_size` ({self.slate_size}); got "
                f"l_init={self.l_init}"
            )
        if seed is not None:
            seed = check_int("seed", seed, minimum=0)
        self.seed = seed
        self.params: dict[str, Any] = {
            "n_items": self.n_items,
            "slate_size": self.slate_size,
            "n_segments": self.n_segments,
            "l_init": self.l_init,
            "seed": seed,
            **params,
        }
        self.rng = np.random.default_rng(seed)
        self._init_learning()

    # -- the public interface -------------------------------------------------------------

    def act(self, observation: Mapping[str, Any]) -> np.ndarray:
        """Return one slate per user.

        Args:
            observation: batched ``{"features": (n_users, n_features), "segment":
                (n_users,)}`` or one user's ``{"features": (n_features,), "segment": int}``.

        Returns:
            int64 array of distinct item indices per row, shape (n_users, slate_size),
            best first; shape (slate_size,) for a single user.
        """
        batch, single = self._read_observation(observation)
        slates = self._act_batch(batch)
        return slates[0] if single else slates

    def update(
        self, observation: Mapping[str, Any], slates: np.ndarray, streams: np.ndarray
    ) -> None:
        """Learn from the streams of the slates given to the users of ``observation``.

        A batched call is one round of delayed feedback (the paper's protocol).

        Args:
            observation: the observation the slates were computed for (either form).
            slates: int array, shape (n_users, slate_size) (or (slate_size,)).
            streams: int8 or bool array of 0/1, same shape as ``slates``; the environment
                streams at most one card per visit, so a row holds at most one 1. If a row
                holds several, the cascade update uses the first one and the no-cascade
                update counts all.
        """
        batch, single = self._read_observation(observation)
        n_users = batch["n_users"]
        slates = self._check_slates(slates, n_users, single)
        streams = self._check_streams(streams, slates.shape, single)
        self._update_batch(batch, slates, streams)

    def reset(self, seed: int | None = None) -> None:
        """Forget all learning and reseed the generator.

        ``seed=None`` reseeds from the constructor's seed, so ``agent.reset()`` behaves
        exactly like a freshly built agent (fresh entropy if that seed was None too).
        """
        if seed is not None:
            seed = check_int("seed", seed, minimum=0)
            self.seed = seed
            self.params["seed"] = seed
        self.rng = np.random.default_rng(self.seed)
        self._init_learning()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit: params, generator state, learned arrays.

        Returns:
            ``{"format", "class", "name", "params", "rng", "state"}``; ``state`` maps names
            to NumPy arrays (copies), the rest is JSON-serialisable.
        """
        return {
            "format": _FORMAT,
            "class": type(self).__name__,
            "name": self.name,
            "params": dict(self.params),
            "rng": _jsonable(self.rng.bit_generator.state),
            "state": {
                key: np.array(value, copy=True) for key, value in self._learned_state().items()
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (same class and constructor params)."""
        if state.get("class") != type(self).__name__:
            raise ValueError(
                f"state was saved from a {state.get('class')!r} agent; this is a "
                f"{type(self).__name__!r}"
            )
        params = dict(state["params"])
        if params != {**self.params, "seed": params.get("seed")}:
            raise ValueError(
                f"state params {params} differ from this agent's params {self.params}"
            )
        self.name = state.get("name", self.name)
        self.params["seed"] = self.seed = params.get("seed")
        bit_generator = getattr(np.random, state["rng"]["bit_generator"])()
        bit_generator.state = state["rng"]
        self.rng = np.random.Generator(bit_generator)
        self._load_learned_state({key: np.asarray(v) for key, v in state["state"].items()})

    def save(self, path: str | os.PathLike) -> None:
        """Write the agent to ``path`` atomically (a temp file, then ``os.replace``).

        The file is a NumPy ``.npz`` archive (no pickle): the learned arrays plus a JSON
        header holding the class, name, params and generator state.
        """
        state = self.state_dict()
        header = {key: value for key, value in state.items() if key != "state"}
        arrays = {f"state.{key}": value for key, value in state["state"].items()}
        arrays["header.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        _atomic_write(Path(path), arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Agent:
        """Rebuild an agent written by :meth:`save` (``agents.load_agent`` is the same)."""
        with np.load(Path(path), allow_pickle=False) as archive:
            header = json.loads(archive["header.json"].tobytes().decode())
            arrays = {
                key.removeprefix("state."): archive[key]
                for key in archive.files
                if key.startswith("state.")
            }
        state = {**header, "state": arrays}
        return agent_from_state(state, expected=cls)

    # -- what subclasses implement --------------------------------------------------------

    @abc.abstractmethod
    def _init_learning(self) -> None:
        """Set the learned state to the prior (called by ``__init__`` and ``reset``)."""

    @abc.abstractmethod
    def _act_batch(self, batch: dict[str, Any]) -> np.ndarray:
        """Slates for a validated batch, int64 (n_users, slate_size)."""

    @abc.abstractmethod
    def _update_batch(self, batch: dict[str, Any], slates: np.ndarray, streams: np.ndarray):
        """Learn from a validated batch: slates int64 and streams bool, (n_users, slate_size)."""

    def _learned_state(self) -> dict[str, np.ndarray]:
        return {}

    def _load_learned_state(self, state: dict[str, np.ndarray]) -> None:
        return None

    # -- validation -----------------------------------------------------------------------

    def _read_observation(self, observation: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """The batch ``{"n_users", "segment"?, "features"?}`` and whether it was one user."""
        if not isinstance(observation, Mapping):
            raise TypeError(
                f"`observation` must be a dict with keys {list(self.uses)}; got "
                f"{type(observation).__name__}"
            )
        missing = [key for key in self.uses if key not in observation]
        if missing:
            raise ValueError(
                f"`observation` lacks {missing}; {type(self).__name__} needs keys "
                f"{list(self.uses)}, got keys {list(observation)}"
            )
        batch: dict[str, Any] = {}
        single: bool | None = None
        if "segment" in self.uses:
            segment = np.asarray(observation["segment"])
            if segment.ndim not in (0, 1):
                raise ValueError(
                    f"observation['segment'] must be an int or a 1-D array (n_users,); got "
                    f"shape {segment.shape}"
                )
            if segment.size and not np.issubdtype(segment.dtype, np.integer):
                if not np.issubdtype(segment.dtype, np.floating) or np.any(segment % 1):
                    raise ValueError(
                        f"observation['segment'] must hold integers; got {segment.dtype} "
                        f"values {segment.ravel()[:5]}"
                    )
            single = segment.ndim == 0
            segment = np.atleast_1d(segment).astype(np.int64)
            if segment.size and (segment.min() < 0 or segment.max() >= self.n_segments):
                raise ValueError(
                    f"observation['segment'] must lie in [0, {self.n_segments}) "
                    f"(n_segments={self.n_segments}); got values from {segment.min()} to "
                    f"{segment.max()}"
                )
            batch["segment"] = segment
        if "features" in self.uses:
            features = np.asarray(observation["features"])
            if features.ndim not in (1, 2) or not np.issubdtype(features.dtype, np.number):
                raise ValueError(
                    f"observation['features'] must be a numeric (n_features,) or "
                    f"(n_users, n_features) array; got {features.dtype} of shape "
                    f"{features.shape}"
                )
            is_single = features.ndim == 1
            if single is not None and is_single != single:
                raise ValueError(
                    f"observation['features'] of shape {features.shape} and "
                    f"observation['segment'] of shape {np.shape(observation['segment'])} "
                    "disagree on single user vs batch"
                )
            single = is_single
            features = np.atleast_2d(features)
            n_features = self.params.get("n_features")
            if n_features is not None and features.shape[1] != n_features:
                raise ValueError(
                    f"observation['features'] must have {n_features} columns (n_features); "
                    f"got shape {features.shape}"
                )
            batch["features"] = features
        n_users = {len(value) for value in batch.values()}
        if len(n_users) > 1:
            raise ValueError(
                f"observation arrays disagree on the number of users: features "
                f"{batch['features'].shape[0]}, segment {batch['segment'].shape[0]}"
            )
        batch["n_users"] = n_users.pop() if n_users else 0
        return batch, bool(single)

    def _check_slates(self, slates: Any, n_users: int, single: bool) -> np.ndarray:
        slates = np.asarray(slates)
        expected = (self.slate_size,) if single else (n_users, self.slate_size)
        if slates.shape != expected:
            raise ValueError(f"`slates` must have shape {expected}; got shape {slates.shape}")
        if slates.size and not np.issubdtype(slates.dtype, np.integer):
            raise ValueError(f"`slates` must hold integer item indices; got dtype {slates.dtype}")
        slates = np.atleast_2d(slates).astype(np.int64, copy=False)
        if slates.size and (slates.min() < 0 or slates.max() >= self.n_items):
            raise ValueError(
                f"`slates` must hold item indices in [0, {self.n_items}); got values from "
                f"{slates.min()} to {slates.max()}"
            )
        return slates

    def _check_streams(self, streams: Any, shape: tuple[int, int], single: bool) -> np.ndarray:
        streams = np.asarray(streams)
        expected = (shape[1],) if single else shape
        if streams.shape != expected:
            raise ValueError(
                f"`streams` must have the shape of `slates` {expected}; got shape {streams.shape}"
            )
        streams = np.atleast_2d(streams)
        if streams.dtype != bool:
            if not np.issubdtype(streams.dtype, np.number) or not np.isin(streams, (0, 1)).all():
                raise ValueError(
                    f"`streams` must hold 0/1 stream indicators; got dtype {streams.dtype} "
                    f"with values {np.unique(streams)[:5]}"
                )
            streams = streams.astype(bool)
        return streams

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{type(self).__name__}({shown}) [{self.name}]"


class LearningAgent(Agent):
    """An agent that learns from displays; adds the ``cascade`` and ``feedback`` params.

    Args:
        cascade: cascade update (slots up to and including the first stream) if True, else
            the no-cascade update (all slots of every visit are displays).
        feedback: ``"paper"`` or ``"published-code"`` (see the module docstring).
    """

    def __init__(
        self,
        n_items: int,
        slate_size: int = 12,
        *,
        n_segments: int = 100,
        l_init: int = 3,
        seed: int | None = None,
        cascade: bool = True,
        feedback: str = "published-code",
        **params: Any,
    ) -> None:
        if not isinstance(cascade, bool | np.bool_):
            raise TypeError(f"`cascade` must be a bool; got {cascade!r}")
        self.cascade = bool(cascade)
        self.feedback = check_feedback(feedback)
        super().__init__(
            n_items,
            slate_size,
            n_segments=n_segments,
            l_init=l_init,
            seed=seed,
            cascade=self.cascade,
            feedback=self.feedback,
            **params,
        )

    def displays(self, streams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(displayed, streamed)`` bool masks (n_users, slate_size) under this agent's rule."""
        return display_masks(
            streams, cascade=self.cascade, feedback=self.feedback, l_init=self.l_init
        )

    def shuffle_first(self, slates: np.ndarray) -> np.ndarray:
        """Apply the reading's shuffle of the first ``l_init`` cards (in place; returned).

        paper: the first ``l_init`` slots of every slate in random order (random keys,
        argsort per row). published code: the rows of the first ``l_init`` users are
        permuted among themselves, as ``np.random.shuffle(recos[0:l_init])`` does there.
        """
        n_users = slates.shape[0]
        if self.feedback == "paper":
            if self.l_init > 1 and n_users:
                keys = self.rng.random((n_users, self.l_init))
                order = np.argsort(keys, axis=1)
                head = slates[:, : self.l_init]
                slates[:, : self.l_init] = np.take_along_axis(head, order, axis=1)
        else:
            k = min(self.l_init, n_users)
            if k > 1:
                slates[:k] = slates[self.rng.permutation(k)]
        return slates


# ----------------------------------------------------------------------------------------
# files


def agent_from_state(state: Mapping[str, Any], expected: type[Agent] = Agent) -> Agent:
    """Build the agent described by a :meth:`Agent.state_dict` and load that state."""
    if state.get("format") != _FORMAT:
        raise ValueError(f"unknown agent file format {state.get('format')!r}; expected {_FORMAT}")
    class_name = state["class"]
    cls = AGENT_CLASSES.get(class_name)
    if cls is None:
        raise ValueError(
            f"no agent class {class_name!r} is loaded; known: {sorted(AGENT_CLASSES)}"
        )
    if not issubclass(cls, expected):
        raise TypeError(f"file holds a {class_name} agent, not a {expected.__name__}")
    return cls._from_state(state)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def _atomic_write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path = path.expanduser()
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
