"""Fixtures for the experiment runner tests: a tiny population."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from carousel_env.data import make_synthetic_population

# pytest puts tests/ on sys.path, where the folder tests/agents would shadow the `agents`
# package as a namespace package: put the repository root first and forget such a shadow.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
if getattr(sys.modules.get("agents"), "__file__", "") is None:
    del sys.modules["agents"]


@pytest.fixture(scope="session")
def population():
    """2,000 synthetic users in 10 segments: the optimum takes milliseconds."""
    return make_synthetic_population(n_users=2000, n_segments=10, seed=3)
