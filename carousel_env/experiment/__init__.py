"""The experiment runner: agents against the carousel environment, regret curves out.

::

    from carousel_env.experiment import run_experiment

    result = run_experiment("random,ts-seg-pessimistic", rounds=10, seeds=[0, 1], out="out")
    print(result.summary_table())

The same from the command line: ``carousel-env run --agents random,ts-seg-pessimistic
--rounds 10 --seeds 0 1 --out out``. See :mod:`carousel_env.experiment.runner` for the
protocol, the checkpoints and the output folder.
"""

from __future__ import annotations

from carousel_env.experiment.config import ExperimentConfig, agent_seed
from carousel_env.experiment.parallel import RunFailedError
from carousel_env.experiment.plot import plot_regret
from carousel_env.experiment.results import ExperimentResult, RunCurves
from carousel_env.experiment.runner import run_experiment

__all__ = [
    "ExperimentConfig",
    "ExperimentResult",
    "RunCurves",
    "RunFailedError",
    "agent_seed",
    "plot_regret",
    "run_experiment",
]
