"""What an experiment runs: a frozen, self-validating configuration.

An experiment is a grid of independent runs, one per (agent, seed). Every run plays
``rounds`` rounds of ``users_per_round`` users on its own
:class:`~carousel_env.vector_env.CarouselVectorEnv`, reset with the run's seed, so all
agents of one seed meet the same users and the same click uniforms (common random
numbers). The agent's own seed is derived from the run seed and the agent's name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carousel_env.click_models import CLICK_MODELS
from carousel_env.data import POPULATIONS, Population

__all__ = [
    "FEEDBACKS",
    "ExperimentConfig",
    "agent_seed",
    "resolve_agent_names",
]

#: The two readings of the agents' feedback (see MODEL.md, "Two readings").
FEEDBACKS = ("paper", "published-code")

#: Fields that may change between a run and its ``--resume``: the number of rounds may
#: grow, and how the work is spread or shown does not change any result.
RESUMABLE_FIELDS = ("rounds",)


def agent_seed(seed: int, agent: str) -> int:
    """The seed of ``agent`` in the run of ``seed``: stable across processes and versions.

    Python's ``hash`` of a string changes from process to process, so the name enters
    through SHA-256 instead; ``SeedSequence`` mixes it with the run seed.

    Returns:
        An int in [0, 2**64).
    """
    name_key = int.from_bytes(hashlib.sha256(agent.encode("utf-8")).digest()[:8], "little")
    return int(np.random.SeedSequence([int(seed), name_key]).generate_state(1, np.uint64)[0])


def _known_agents() -> tuple[tuple[str, ...], tuple[str, ...]]:
    import agents
    from agents.registry import LAZY_SB3

    # The SB3 names load on demand (they need the sb3 extra), so list_agents() omits them.
    names = tuple(agents.list_agents())
    return names + tuple(name for name in LAZY_SB3 if name not in names), tuple(
        agents.PAPER_PRESETS
    )


def resolve_agent_names(
    spec: str | Sequence[str], known: Sequence[str] | None = None
) -> tuple[str, ...]:
    """Turn ``"paper"``, ``"a,b"`` or ``["a", "b"]`` into a tuple of agent names.

    Args:
        spec: ``"paper"`` for the twelve presets of MODEL.md, a comma-separated string or a
            sequence of names (``"paper"`` may appear inside it).
        known: the valid names; None means :func:`agents.list_agents`. Pass an empty
            sequence to skip the check (custom agent factories).

    Raises:
        ValueError: an empty list, a repeated name or an unknown name; the message lists
            the valid names.
    """
    if isinstance(spec, str):
        names = [part.strip() for part in spec.split(",")]
    elif isinstance(spec, Sequence) and all(isinstance(name, str) for name in spec):
        names = [name.strip() for name in spec]
    else:
        raise TypeError(f"`agents` must be a string or a sequence of strings; got {spec!r}")
    if not names or any(not name for name in names):
        raise ValueError(
            f"`agents` must name at least one agent, with no empty names; got {spec!r}"
        )

    check = known is None or len(known) > 0
    valid, presets = _known_agents() if known is None else (tuple(known), ())
    expanded: list[str] = []
    for name in names:
        if name == "paper" and known is None:
            expanded.extend(presets)
        else:
            expanded.append(name)
    if check:
        unknown = [name for name in expanded if name not in valid]
        if unknown:
            raise ValueError(
                f"unknown agent {unknown[0]!r} in `agents`; valid names: {', '.join(valid)}"
                + (" (or 'paper' for the twelve paper presets)" if known is None else "")
            )
    repeated = sorted({name for name in expanded if expanded.count(name) > 1})
    if repeated:
        raise ValueError(f"`agents` names {repeated[0]!r} more than once; got {spec!r}")
    return tuple(expanded)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"`{name}` must be an int; got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be at least 1; got {value}")
    return int(value)


def _seeds(value: Any) -> tuple[int, ...]:
    seeds = (value,) if isinstance(value, int | np.integer) else value
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence) or not seeds:
        raise TypeError(f"`seeds` must be an int or a non-empty sequence of ints; got {value!r}")
    out = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"`seeds` must be non-negative ints; got {seed!r} in {value!r}")
        out.append(int(seed))
    if len(set(out)) != len(out):
        raise ValueError(f"`seeds` must be distinct; got {list(out)}")
    return tuple(out)


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: which agents, how long, on which users. Validated on creation.

    Attributes:
        agents: agent names, in the order of the results (``"paper"`` expands to the twelve
            presets when the config is built through :meth:`build`).
        rounds: rounds per run (the paper: 100).
        users_per_round: users per round (the paper: 20,000).
        seeds: run seeds; each seed gives every agent the same users and click draws.
        users: the population, as for the environment (a name, a file path or a
            :class:`~carousel_env.data.Population`).
        n_users: size of the synthetic population (None: the default 974,960).
        population_seed: seed of the synthetic users (and of k-means for files without
            segments); independent of the run seeds.
        click_model: ``"cascade"`` (the paper's) or ``"swipe"``.
        swipe_probability: the swipe model's per-card swipe probability.
        slate_size: L, cards per slate.
        l_init: cards on screen before a swipe; at most ``slate_size``.
        feedback: ``"paper"``, ``"published-code"`` or None (each agent's default).
        data_dir: cache folder for downloaded users and cached segments.
        agent_overrides: extra keyword arguments for every agent.
    """

    agents: tuple[str, ...]
    rounds: int = 100
    users_per_round: int = 20_000
    seeds: tuple[int, ...] = (0,)
    users: str | os.PathLike | Population = "synthetic"
    n_users: int | None = None
    population_seed: int = 0
    click_model: str = "cascade"
    swipe_probability: float = 0.8
    slate_size: int = 12
    l_init: int = 3
    feedback: str | None = None
    data_dir: str | None = None
    agent_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.agents or not all(isinstance(name, str) and name for name in self.agents):
            raise ValueError(f"`agents` must be a non-empty tuple of names; got {self.agents!r}")
        object.__setattr__(self, "agents", tuple(self.agents))
        for name in ("rounds", "users_per_round", "slate_size", "l_init"):
            object.__setattr__(self, name, _positive_int(name, getattr(self, name)))
        if self.l_init > self.slate_size:
            raise ValueError(
                f"`l_init` ({self.l_init}) must not exceed `slate_size` ({self.slate_size})"
            )
        object.__setattr__(self, "seeds", _seeds(self.seeds))
        if self.n_users is not None:
            object.__setattr__(self, "n_users", _positive_int("n_users", self.n_users))
        if (
            isinstance(self.population_seed, bool)
            or not isinstance(self.population_seed, int | np.integer)
            or self.population_seed < 0
        ):
            raise ValueError(
                f"`population_seed` must be a non-negative int; got {self.population_seed!r}"
            )
        if self.click_model not in CLICK_MODELS:
            raise ValueError(
                f"`click_model` must be one of {list(CLICK_MODELS)}; got {self.click_model!r}"
            )
        if not isinstance(self.swipe_probability, int | float) or not (
            0.0 <= self.swipe_probability <= 1.0
        ):
            raise ValueError(
                f"`swipe_probability` must be a number in [0, 1]; got {self.swipe_probability!r}"
            )
        if self.feedback is not None and self.feedback not in FEEDBACKS:
            raise ValueError(
                f"`feedback` must be one of {list(FEEDBACKS)} or None (each agent's default); "
                f"got {self.feedback!r}"
            )
        self._check_users()

    def _check_users(self) -> None:
        users = self.users
        if isinstance(users, Population):
            if self.n_users is not None:
                raise ValueError("`n_users` applies to users='synthetic' only, not a Population")
            return
        if not isinstance(users, str | os.PathLike):
            raise TypeError(
                f"`users` must be one of {list(POPULATIONS)}, a file path or a Population; "
                f"got {type(users).__name__} {users!r}"
            )
        if self.n_users is not None and users != "synthetic":
            raise ValueError(f"`n_users` applies to users='synthetic' only; got users={users!r}")
        if users not in POPULATIONS and not os.path.exists(os.fspath(users)):
            raise ValueError(
                f"`users` must be one of {list(POPULATIONS)} or an existing file; "
                f"got {os.fspath(users)!r} (no such file)"
            )

    @classmethod
    def build(
        cls,
        agents: str | Sequence[str] = "paper",
        *,
        known_agents: Sequence[str] | None = None,
        **fields: Any,
    ) -> ExperimentConfig:
        """Build a config, expanding and checking agent names first.

        Args:
            agents: ``"paper"``, a comma-separated string or a sequence of names.
            known_agents: valid names (None: the ``agents`` package's; empty: no check).
            **fields: the other attributes.
        """
        return cls(agents=resolve_agent_names(agents, known_agents), **fields)

    @property
    def n_runs(self) -> int:
        return len(self.agents) * len(self.seeds)

    def runs(self) -> list[tuple[str, int]]:
        """Every (agent, seed) pair, seed-major, in the order of ``agents``."""
        return [(agent, seed) for seed in self.seeds for agent in self.agents]

    def users_label(self) -> str:
        users = self.users
        return users.name if isinstance(users, Population) else os.fspath(users)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (a Population appears by its name)."""
        return {
            "agents": list(self.agents),
            "rounds": self.rounds,
            "users_per_round": self.users_per_round,
            "seeds": list(self.seeds),
            "users": self.users_label(),
            "n_users": self.n_users,
            "population_seed": self.population_seed,
            "click_model": self.click_model,
            "swipe_probability": self.swipe_probability,
            "slate_size": self.slate_size,
            "l_init": self.l_init,
            "feedback": self.feedback,
            "agent_overrides": {key: repr(value) for key, value in self.agent_overrides.items()},
        }

    def differences(self, stored: dict[str, Any]) -> list[str]:
        """Fields where a stored config (from ``config.json``) differs from this one.

        ``rounds`` may differ (a resumed run can be extended) and is skipped.

        Returns:
            Lines such as ``"slate_size: 12 in the folder, 10 now"``.
        """
        current = self.to_dict()
        lines = []
        for key in sorted(set(current) | set(stored)):
            if key in RESUMABLE_FIELDS:
                continue
            if stored.get(key) != current.get(key):
                lines.append(f"{key}: {stored.get(key)!r} in the folder, {current.get(key)!r} now")
        return lines


#: The type of a factory that builds one agent (the signature of ``agents.make_agent``).
AgentFactory = Callable[..., Any]
