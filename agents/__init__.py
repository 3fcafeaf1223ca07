"""Classic bandit agents for the carousel problem, working on plain NumPy arrays.

The twelve presets of Bendada, Salha and Bontempelli, "Carousel Personalization in Music
Streaming Apps with Contextual Bandits" (RecSys 2020, arXiv:2009.06546), plus LinUCB,
CascadeKL-UCB and a greedy linear baseline. Build one by name::

    import agents
    agent = agents.make_agent("ts-seg-pessimistic", n_items=862, seed=0)
    slates = agent.act(observation)            # (n_users, 12) item indices
    agent.update(observation, slates, streams)

See docs/agents.md for every agent's rule, parameters and default feedback reading.
"""

from agents.base import FEEDBACK_READINGS, Agent, LearningAgent, display_masks
from agents.buffered import BufferedAgent
from agents.linear import LinearGreedy, LinearThompson, LinUCB
from agents.registry import (
    PAPER_PRESETS,
    Preset,
    list_agents,
    make_agent,
    register_agent,
)
from agents.segment import (
    EpsilonGreedySegment,
    ExploreThenCommitSegment,
    RandomAgent,
    SegmentAgent,
)
from agents.thompson import ThompsonSegment, beta_top_l
from agents.ucb import CascadeKLUCB, KLUCBSegment, kl_ucb_index

load_agent = Agent.load

__all__ = [
    "FEEDBACK_READINGS",
    "PAPER_PRESETS",
    "Agent",
    "BufferedAgent",
    "CascadeKLUCB",
    "EpsilonGreedySegment",
    "ExploreThenCommitSegment",
    "KLUCBSegment",
    "LearningAgent",
    "LinUCB",
    "LinearGreedy",
    "LinearThompson",
    "Preset",
    "RandomAgent",
    "SegmentAgent",
    "ThompsonSegment",
    "beta_top_l",
    "display_masks",
    "kl_ucb_index",
    "list_agents",
    "load_agent",
    "make_agent",
    "register_agent",
]
