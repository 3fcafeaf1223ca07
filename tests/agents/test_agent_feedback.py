"""The display rules of both readings, worked by hand, and the shuffle of the first cards."""

from __future__ import annotations

import numpy as np
import pytest

import agents
from agents import display_masks

# Three visits of a slate of 4 cards with l_init = 2:
#   visit 0 streams slot 1; visit 1 streams nothing; visit 2 streams slot 3.
STREAMS = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]], dtype=bool)

CASES = {
    # cascade, paper: visit 1 (no stream) shows only the first l_init = 2 slots
    "cascade-paper": (
        dict(cascade=True, feedback="paper"),
        [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]],
    ),
    # cascade, published code: visit 1 shows all 4 slots
    "cascade-code": (
        dict(cascade=True, feedback="published-code"),
        [[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]],
    ),
    "no-cascade-paper": (
        dict(cascade=False, feedback="paper"),
        [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]],
    ),
    "no-cascade-code": (
        dict(cascade=False, feedback="published-code"),
        [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]],
    ),
}


@pytest.mark.parametrize("rule, expected", CASES.values(), ids=CASES.keys())
def test_display_masks(rule, expected):
    displayed, streamed = display_masks(STREAMS, l_init=2, **rule)
    np.testing.assert_array_equal(displayed, np.array(expected, dtype=bool))
    np.testing.assert_array_equal(streamed, STREAMS)


def test_cascade_ignores_streams_after_the_first():
    streams = np.array([[1, 0, 1, 0]], dtype=bool)
    displayed, streamed = display_masks(streams, cascade=True, feedback="paper", l_init=2)
    np.testing.assert_array_equal(displayed, [[1, 0, 0, 0]])
    np.testing.assert_array_equal(streamed, [[1, 0, 0, 0]])


# Segment counts after one update of an ETC agent (2 segments, 6 items, L = 4, l_init = 2)
# with the visits above: visit 0 (segment 0) slate [5, 4, 3, 2], visit 1 (segment 1)
# slate [0, 1, 2, 3], visit 2 (segment 0) slate [1, 2, 3, 4].
SLATES = np.array([[5, 4, 3, 2], [0, 1, 2, 3], [1, 2, 3, 4]])
SEGMENTS = np.array([0, 1, 0])
COUNTS = {
    "cascade-paper": (
        # segment 0: visit 0 shows 5, 4; visit 2 shows 1, 2, 3, 4. segment 1: 0, 1.
        [[0, 1, 1, 1, 2, 1], [1, 1, 0, 0, 0, 0]],
        [[0, 0, 0, 0, 2, 0], [0, 0, 0, 0, 0, 0]],
    ),
    "cascade-code": (
        # the same, but visit 1 shows all of 0, 1, 2, 3
        [[0, 1, 1, 1, 2, 1], [1, 1, 1, 1, 0, 0]],
        [[0, 0, 0, 0, 2, 0], [0, 0, 0, 0, 0, 0]],
    ),
    "no-cascade-code": (
        # every slot: visit 0 also shows 3, 2
        [[0, 1, 2, 2, 2, 1], [1, 1, 1, 1, 0, 0]],
        [[0, 0, 0, 0, 2, 0], [0, 0, 0, 0, 0, 0]],
    ),
}
# Streams: visit 0 streams item 4 (slot 1), visit 2 streams item 4 (slot 3): both segment 0.


@pytest.mark.parametrize("key", COUNTS, ids=COUNTS)
def test_segment_counts_by_hand(key):
    rule = CASES[key][0]
    agent = agents.ExploreThenCommitSegment(6, 4, n_segments=2, l_init=2, seed=0, **rule)
    agent.update({"segment": SEGMENTS}, SLATES, STREAMS.astype(np.int8))
    displays, streams = COUNTS[key]
    np.testing.assert_array_equal(agent.displays_count, displays)
    np.testing.assert_array_equal(agent.streams_count, streams)


def _ranked_agent(feedback: str) -> agents.ExploreThenCommitSegment:
    """ETC in a state where segment 0 ranks items 0, 1, 2, ... strictly (no ties)."""
    agent = agents.ExploreThenCommitSegment(
        10, 5, n_segments=1, l_init=3, seed=3, m=0, feedback=feedback
    )
    agent.displays_count[:] = 100
    agent.streams_count[0] = np.arange(50, 40, -1)
    return agent


def test_paper_shuffle_permutes_first_slots_of_every_slate():
    agent = _ranked_agent("paper")
    slates = agent.act({"segment": np.zeros(600, dtype=int)})
    np.testing.assert_array_equal(np.sort(slates[:, :3], axis=1), np.tile([0, 1, 2], (600, 1)))
    np.testing.assert_array_equal(slates[:, 3:], np.tile([3, 4], (600, 1)))
    # All 6 orders of the first 3 slots appear; each has probability 1/6, so 600 draws
    # leave a given order out with probability (5/6)^600 < 1e-47.
    assert len({tuple(row) for row in slates[:, :3]}) == 6


def test_code_shuffle_permutes_rows_of_first_users_only():
    agent = _ranked_agent("published-code")
    slates = agent.act({"segment": np.zeros(50, dtype=int)})
    # Every user of the one segment has the same ranked slate, in rank order: permuting
    # the first l_init rows changes nothing and no slot is reordered.
    np.testing.assert_array_equal(slates, np.tile(np.arange(5), (50, 1)))


def test_code_shuffle_moves_whole_rows():
    agent = agents.ExploreThenCommitSegment(
        10, 4, n_segments=3, l_init=3, seed=0, m=0, feedback="published-code"
    )
    agent.displays_count[:] = 100
    agent.streams_count[:] = np.arange(30).reshape(3, 10)  # ranks 9, 8, 7, ... everywhere
    agent.streams_count[1] = agent.streams_count[1, ::-1]  # segment 1 ranks 0, 1, 2, ...
    agent.streams_count[2, [4, 5]] = 99  # segment 2 ranks 4/5 (tied), 9, 8
    segments = np.array([0, 1, 2, 0, 1])
    unshuffled = {0: [9, 8, 7, 6], 1: [0, 1, 2, 3], 2: [4, 5, 9, 8]}
    seen = set()
    for _ in range(40):
        slates = agent.act({"segment": segments})
        np.testing.assert_array_equal(slates[3], unshuffled[0])
        np.testing.assert_array_equal(slates[4], unshuffled[1])
        firsts = tuple(int(row[0]) for row in slates[:3])
        assert sorted(firsts[:3]) in ([0, 4, 9], [0, 5, 9])
        seen.add(tuple(sorted(range(3), key=lambda r: firsts[r])))
    assert len(seen) > 1  # the first three rows do move
