"""The regret figure: cumulative regret per agent against rounds, as in the paper's Figure 2.

Drawn with Matplotlib's Agg canvas directly (no ``pyplot``), so it works without a
display and leaves the caller's backend alone.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from carousel_env.experiment.results import ExperimentResult, atomic_write_bytes

__all__ = ["plot_regret"]

#: Line styles cycled with the colours, so that many curves stay distinguishable.
_STYLES = ("-", "-.", ":")

#: Suffix of the presets that differ from another only by the no-cascade update.
_VARIANT = "-no-cascade"


def _style(agent: str, agents: list[str]) -> tuple[str, str]:
    """Colour and line style: a no-cascade variant is its twin's colour, dashed."""
    base = agent.removesuffix(_VARIANT)
    bases = list(dict.fromkeys(name.removesuffix(_VARIANT) for name in agents))
    number = bases.index(base)
    colour = f"C{number % 10}"
    if agent.endswith(_VARIANT) and base in agents:
        return colour, "--"
    return colour, _STYLES[(number // 10) % len(_STYLES)]


def _as_dict(results: ExperimentResult | Mapping[str, Any] | str | os.PathLike) -> dict:
    if isinstance(results, ExperimentResult):
        return results.to_dict()
    if isinstance(results, Mapping):
        return dict(results)
    path = Path(results)
    if path.is_dir():
        path = path / "results.json"
    return json.loads(path.read_text(encoding="utf-8"))


def plot_regret(
    results: ExperimentResult | Mapping[str, Any] | str | os.PathLike,
    path: str | os.PathLike,
    *,
    curve: str = "cumulative_regret",
    title: str | None = None,
) -> Path:
    """Draw the cumulative regret of every agent and save it as a PNG.

    Args:
        results: an :class:`ExperimentResult`, the dict of ``results.json``, or the path
            of that file or of its folder.
        path: the PNG to write (atomically).
        curve: ``"cumulative_regret"`` (the paper's) or ``"cumulative_expected_regret"``.
        title: the figure title (default: the experiment's size).

    Returns:
        The path written. With several seeds each line is the mean over seeds and the
        shaded area its 95% Student-t band.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if curve not in ("cumulative_regret", "cumulative_expected_regret"):
        raise ValueError(
            f"`curve` must be 'cumulative_regret' or 'cumulative_expected_regret'; got {curve!r}"
        )
    data = _as_dict(results)
    rounds = np.asarray(data["rounds"])
    config = data.get("config", {})

    figure = Figure(figsize=(10.0, 5.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    # Every curve starts at (0, 0): no regret before the first round.
    x = np.concatenate([[0], rounds])
    for agent, entry in data["agents"].items():
        colour, style = _style(agent, list(data["agents"]))
        y = np.concatenate([[0.0], entry[curve]])
        axes.plot(x, y, color=colour, linestyle=style, lw=1.6, label=agent)
        band = entry.get(f"{curve}_band")
        if band is not None:
            low = np.concatenate([[0.0], band["low"]])
            high = np.concatenate([[0.0], band["high"]])
            axes.fill_between(x, low, high, color=colour, alpha=0.18, lw=0)

    seeds = data.get("seeds", [])
    if title is None:
        title = (
            f"{config.get('users', '?')} users, {config.get('users_per_round', '?'):,} per "
            f"round, {len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
            + (" (mean, 95% band)" if len(seeds) > 1 else "")
        )
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("Round")
    axes.set_ylabel("Cumulative regret" if curve == "cumulative_regret" else "Expected regret")
    axes.set_xlim(0, rounds[-1])
    axes.set_ylim(bottom=0)
    axes.ticklabel_format(axis="y", style="plain")
    axes.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path
