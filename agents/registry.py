"""Agents by name: the twelve paper presets, the extra agents, and registered factories."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from agents.base import Agent
from agents.linear import LinearGreedy, LinearThompson, LinUCB
from agents.segment import EpsilonGreedySegment, ExploreThenCommitSegment, RandomAgent
from agents.thompson import ThompsonSegment
from agents.ucb import CascadeKLUCB, KLUCBSegment

#: The paper's twelve presets, in the order of its section 3.3 (and of MODEL.md).
PAPER_PRESETS: tuple[str, ...] = (
    "random",
    "etc-seg-explore",
    "etc-seg-exploit",
    "epsilon-greedy-explore",
    "epsilon-greedy-exploit",
    "kl-ucb-seg",
    "ts-seg-naive",
    "ts-seg-pessimistic",
    "ts-lin-naive",
    "ts-lin-pessimistic",
    "epsilon-greedy-explore-no-cascade",
    "ts-seg-pessimistic-no-cascade",
)

#: Names that ``make_agent`` loads on demand from ``agents.sb3`` (needs torch and SB3).
LAZY_SB3 = ("ppo", "a2c", "sac")

Factory = Callable[..., Agent]


class Preset:
    """A class with fixed parameters; calling it builds the agent and names it.

    Args:
        name: registry name given to the agents built.
        cls: the agent class.
        params: the preset's parameters (overridable by ``make_agent``'s ``**overrides``).
    """

    def __init__(self, name: str, cls: type[Agent], **params: Any) -> None:
        self.name, self.cls, self.params = name, cls, params

    def accepted(self) -> list[str]:
        return [p for p in inspect.signature(self.cls.__init__).parameters if p != "self"]

    def __call__(self, **kwargs: Any) -> Agent:
        agent = self.cls(**{**self.params, **kwargs})
        agent.name = self.name
        return agent

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.cls.__name__}({shown})"


_REGISTRY: dict[str, Factory] = {}


def register_agent(name: str, factory: Factory, *, overwrite: bool = False) -> None:
    """Make ``make_agent(name, ...)`` call ``factory``.

    Args:
        name: the registry name.
        factory: called as ``factory(n_items=..., slate_size=..., n_segments=...,
            l_init=..., seed=..., [feedback=...,] **overrides)``; returns an Agent.
        overwrite: replace an existing entry instead of raising ValueError.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"agent `name` must be a non-empty str; got {name!r}")
    if not callable(factory):
        raise TypeError(f"`factory` for agent {name!r} must be callable; got {factory!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"an agent named {name!r} is already registered")
    _REGISTRY[name] = factory


def list_agents() -> list[str]:
    """Registered names: the paper presets in the paper's order, then the others."""
    others = [name for name in _REGISTRY if name not in PAPER_PRESETS]
    return [*PAPER_PRESETS, *others]


def make_agent(
    name: str,
    *,
    n_items: int,
    slate_size: int = 12,
    n_segments: int = 100,
    l_init: int = 3,
    seed: int | None = None,
    feedback: str | None = None,
    **overrides: Any,
) -> Agent:
    """Build the agent registered as ``name``.

    Args:
        name: one of :func:`list_agents` (or ``"ppo"``, ``"a2c"``, ``"sac"``, loaded on
            demand from ``agents.sb3``, which needs ``pip install "carousel-env[sb3]"``).
        n_items, slate_size, n_segments, l_init, seed: see :class:`agents.Agent`.
        feedback: ``"paper"`` or ``"published-code"``; None keeps the agent's default
            (``"published-code"`` for the paper presets).
        **overrides: the agent's own parameters (e.g. ``epsilon=0.05``).

    Raises:
        ValueError: unknown name (the message lists the valid ones).
        TypeError: an override the agent does not take.
    """
    if name not in _REGISTRY and name in LAZY_SB3:
        importlib.import_module("agents.sb3")
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown agent {name!r}; valid names: {', '.join(list_agents())} (and "
            f"{', '.join(LAZY_SB3)} with the sb3 extra)"
        )
    factory = _REGISTRY[name]
    kwargs: dict[str, Any] = dict(
        n_items=n_items, slate_size=slate_size, n_segments=n_segments, l_init=l_init, seed=seed
    )
    if feedback is not None:
        kwargs["feedback"] = feedback
    accepted = _accepted(factory)
    if accepted is not None:
        unknown = [key for key in [*overrides, *kwargs] if key not in accepted]
        if unknown:
            raise TypeError(
                f"agent {name!r} takes no parameter {', '.join(map(repr, unknown))}; its "
                f"parameters: {', '.join(a for a in accepted if a not in kwargs)}"
            )
    return factory(**kwargs, **overrides)


def _accepted(factory: Factory) -> list[str] | None:
    """Parameter names a factory takes, or None if it takes ``**kwargs``."""
    if isinstance(factory, Preset):
        return factory.accepted()
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters]


_BUILTIN = (
    Preset("random", RandomAgent),
    Preset("etc-seg-explore", ExploreThenCommitSegment, m=100),
    Preset("etc-seg-exploit", ExploreThenCommitSegment, m=20),
    Preset("epsilon-greedy-explore", EpsilonGreedySegment, epsilon=0.1),
    Preset("epsilon-greedy-exploit", EpsilonGreedySegment, epsilon=0.01),
    Preset("kl-ucb-seg", KLUCBSegment),
    Preset("ts-seg-naive", ThompsonSegment, prior_alpha=1.0, prior_beta=1.0),
    Preset("ts-seg-pessimistic", ThompsonSegment, prior_alpha=1.0, prior_beta=99.0),
    Preset("ts-lin-naive", LinearThompson, prior_bias_mean=0.0),
    Preset("ts-lin-pessimistic", LinearThompson, prior_bias_mean=-5.0),
    Preset("epsilon-greedy-explore-no-cascade", EpsilonGreedySegment, epsilon=0.1, cascade=False),
    Preset(
        "ts-seg-pessimistic-no-cascade",
        ThompsonSegment,
        prior_alpha=1.0,
        prior_beta=99.0,
        cascade=False,
    ),
    Preset("linucb", LinUCB),
    Preset("cascade-kl-ucb", CascadeKLUCB),
    Preset("lin-greedy", LinearGreedy),
)
for _preset in _BUILTIN:
    register_agent(_preset.name, _preset)
