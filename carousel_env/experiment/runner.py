"""Run agents on the carousel environment and record their regret, resumably.

:func:`run_experiment` plays every (agent, seed) run of an :class:`ExperimentConfig`:
``rounds`` rounds of the paper's protocol (MODEL.md, "One round") on a
:class:`~carousel_env.vector_env.CarouselVectorEnv` reset with the run's seed. Because the
environment draws a fixed number of random numbers per round whatever the slates, every
agent of one seed sees the same users and the same click uniforms in every round (common
random numbers): differences between agents are not sampling noise of the users.

After every round each run atomically replaces its checkpoint, one pickle holding the
agent's ``state_dict()``, the environment's generator state and pending users, and the
curves so far. A run that is stopped (Ctrl-C, ``kill -9``, a crash) keeps every finished
round, and ``resume=True`` continues it to exactly the curves an uninterrupted run gives.

Independent runs go to ``jobs`` child processes (:mod:`carousel_env.experiment.parallel`).
Every run computes with one BLAS thread, in a child or in this process, so the curves do
not depend on ``jobs``.

Output folder layout::

    config.json                         what was run (compared on resume)
    checkpoints/<agent>--seed-<s>.pkl   one per run, replaced after every round
    results.json, curves.csv            written when every run has finished
    regret.png                          the cumulative regret figure
    .lock                               held while a run uses the folder

Limitations: checkpoints are pickles; load only folders you trust.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import pickle
import platform
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from carousel_env.core import CarouselSimulator
from carousel_env.data import Catalog, Population, load_catalog, load_population
from carousel_env.experiment.config import AgentFactory, ExperimentConfig, agent_seed
from carousel_env.experiment.parallel import blas_threads, run_in_processes
from carousel_env.experiment.results import ExperimentResult, RunCurves, atomic_write_bytes
from carousel_env.vector_env import CarouselVectorEnv

__all__ = ["checkpoint_path", "default_out", "prepare_output", "run_experiment"]

logger = logging.getLogger(__name__)

#: Format version of checkpoints and ``config.json``.
FORMAT_VERSION = 1

#: The per-round arrays a checkpoint keeps.
CURVE_FIELDS = ("regret", "expected_regret", "streams", "act_s", "update_s", "env_s", "cpu_s")


def default_out(now: datetime.datetime | None = None) -> Path:
    """``results/<YYYYmmdd-HHMMSS>`` under the current folder."""
    now = now or datetime.datetime.now()
    return Path("results") / now.strftime("%Y%m%d-%H%M%S")


def checkpoint_path(out: str | os.PathLike, agent: str, seed: int) -> Path:
    """Where the checkpoint of the run (agent, seed) lives in the folder ``out``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", agent)
    return Path(out) / "checkpoints" / f"{safe}--seed-{seed}.pkl"


def _read_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    with path.open("rb") as file:
        state = pickle.load(file)  # noqa: S301  (our own file; see the module's limitations)
    if state.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {path} has format {state.get('format')!r}; this version reads "
            f"format {FORMAT_VERSION}"
        )
    return state


def _population_fingerprint(population: Population, catalog: Catalog) -> str:
    """A digest of the users and items a run is played on, to refuse a mismatched resume."""
    digest = hashlib.blake2b(digest_size=16)
    for array in (population.features, population.segments, catalog.weights):
        array = np.ascontiguousarray(array)
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(memoryview(array).cast("B"))
    digest.update(str(population.n_segments).encode())
    return digest.hexdigest()


def prepare_output(
    out: str | os.PathLike | None, config: ExperimentConfig, *, resume: bool
) -> Path:
    """Check the output folder before any work and create it.

    Raises:
        ValueError: the folder cannot be written; it holds files but ``resume`` is False;
            ``resume`` is True but the folder holds no experiment, one with another
            config, or runs already longer than ``config.rounds``.
    """
    out = default_out() if out is None else Path(out).expanduser()
    config_file = out / "config.json"
    if out.exists() and not out.is_dir():
        raise ValueError(f"`out` must be a folder; got {os.fspath(out)!r}, which is a file")

    if resume:
        if not config_file.exists():
            raise ValueError(
                f"cannot resume: {os.fspath(out)!r} holds no experiment (no config.json); "
                "drop --resume to start one there"
            )
        stored = json.loads(config_file.read_text(encoding="utf-8"))
        differences = config.differences(stored.get("config", {}))
        if differences:
            raise ValueError(
                f"cannot resume {os.fspath(out)!r}: it was run with a different config "
                f"(only --rounds may change):\n  " + "\n  ".join(differences)
            )
        for agent, seed in config.runs():
            state = _read_checkpoint(checkpoint_path(out, agent, seed))
            if state is not None and state["round"] > config.rounds:
                raise ValueError(
                    f"cannot resume with `rounds`={config.rounds}: run ({agent}, seed {seed}) "
                    f"in {os.fspath(out)!r} has already played {state['round']} rounds"
                )
    elif out.exists() and any(out.iterdir()):
        raise ValueError(
            f"output folder {os.fspath(out)!r} is not empty; pass --resume (resume=True) to "
            "continue the experiment in it, or choose another --out"
        )

    if resume:
        # Temporary files of writes cut short by a kill: never the latest state.
        for stale in (out / "checkpoints").glob(".*.tmp"):
            stale.unlink(missing_ok=True)
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise ValueError(
            f"cannot write to output folder {os.fspath(out)!r}: {error.strerror or error}"
        ) from None
    return out


@dataclass(frozen=True)
class _Shared:
    """What every run needs: built once in the parent, shared with children by fork."""

    config: ExperimentConfig
    population: Population
    catalog: Catalog
    out: Path
    factory: AgentFactory


@dataclass(frozen=True)
class _Task:
    agent: str
    seed: int
    shared: _Shared

    def __str__(self) -> str:
        return f"({self.agent}, seed {self.seed})"


def _env_state(env: CarouselVectorEnv) -> dict[str, Any]:
    """What the vector env needs to continue bit for bit: generator, pending users, clock."""
    return env.get_state()


def _restore_env(env: CarouselVectorEnv, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Put a reset env back in a saved state; return the pending users' observation."""
    return env.set_state(dict(state))


def _make_env(config: ExperimentConfig, population: Population, catalog: Catalog):
    return CarouselVectorEnv(
        num_envs=config.users_per_round,
        users=population,
        slate_size=config.slate_size,
        l_init=config.l_init,
        click_model=config.click_model,
        catalog=catalog,
        swipe_probability=config.swipe_probability,
        max_episode_steps=None,
    )


def _play(task: _Task, report: Callable[[int], None]) -> None:
    """Play one run to ``config.rounds`` rounds from its checkpoint, if any."""
    shared = task.shared
    config = shared.config
    env = _make_env(config, shared.population, shared.catalog)
    agent = shared.factory(
        task.agent,
        n_items=env.sim.n_items,
        slate_size=config.slate_size,
        n_segments=shared.population.n_segments,
        l_init=config.l_init,
        seed=agent_seed(task.seed, task.agent),
        feedback=config.feedback,
        **config.agent_overrides,
    )
    observation, _ = env.reset(seed=task.seed)
    curves: dict[str, list] = {name: [] for name in CURVE_FIELDS}

    path = checkpoint_path(shared.out, task.agent, task.seed)
    state = _read_checkpoint(path)
    if state is not None:
        agent.load_state_dict(state["agent"])
        observation = _restore_env(env, state["env"])
        curves = {name: list(state["curves"][name]) for name in CURVE_FIELDS}

    for _ in range(len(curves["regret"]), config.rounds):
        cpu_start = time.process_time()
        start = time.perf_counter()
        slates = agent.act(observation)
        acted = time.perf_counter()
        next_observation, rewards, _, _, info = env.step(slates)
        stepped = time.perf_counter()
        agent.update(observation, slates, info["streams"])
        updated = time.perf_counter()
        cpu = time.process_time() - cpu_start

        optimal = float(info["optimal_reward"].sum())
        streams = int(np.count_nonzero(rewards))
        curves["regret"].append(optimal - float(rewards.sum()))
        curves["expected_regret"].append(optimal - float(info["expected_reward"].sum()))
        curves["streams"].append(streams)
        curves["act_s"].append(acted - start)
        curves["env_s"].append(stepped - acted)
        curves["update_s"].append(updated - stepped)
        curves["cpu_s"].append(cpu)
        observation = next_observation

        checkpoint = {
            "format": FORMAT_VERSION,
            "agent_name": task.agent,
            "seed": task.seed,
            "round": len(curves["regret"]),
            "agent": agent.state_dict(),
            "env": _env_state(env),
            "curves": curves,
        }
        atomic_write_bytes(path, pickle.dumps(checkpoint, protocol=pickle.HIGHEST_PROTOCOL))
        report(1)


def _default_factory() -> AgentFactory:
    import agents

    return agents.make_agent


def _cost_order(names: Sequence[str]) -> dict[str, int]:
    """Start the slowest runs first so that the last ones to finish are short.

    The fully personalised agents (linear Thompson sampling) cost several times a segment
    agent per round; everything else keeps the configured order.
    """
    return {name: (0 if "lin" in name else 1) for name in names}


def run_experiment(
    agents: str | Sequence[str] = "paper",
    *,
    rounds: int = 100,
    users_per_round: int = 20_000,
    seeds: int | Sequence[int] = 0,
    users: str | os.PathLike | Population = "synthetic",
    n_users: int | None = None,
    population_seed: int = 0,
    click_model: str = "cascade",
    swipe_probability: float = 0.8,
    slate_size: int = 12,
    l_init: int = 3,
    feedback: str | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    jobs: int | None = None,
    plot: bool = True,
    progress: bool = False,
    data_dir: str | os.PathLike | None = None,
    agent_factory: AgentFactory | None = None,
    agent_overrides: Mapping[str, Any] | None = None,
) -> ExperimentResult:
    """Run every agent for every seed and write the regret curves.

    The defaults are the paper's experiment: the twelve presets, 100 rounds of 20,000
    users, the synthetic population, seed 0.

    Args:
        agents: ``"paper"`` (the twelve presets), a comma-separated string or a list of
            names from :func:`agents.list_agents`.
        rounds: rounds per run (at least 1).
        users_per_round: users per round (at least 1).
        seeds: one seed or several; each seed is one run per agent.
        users: the population, as for the environment: ``"synthetic"``,
            ``"deezer-small"``, ``"deezer"``, a file path or a Population.
        n_users: size of the synthetic population (default 974,960).
        population_seed: seed of the synthetic users; independent of ``seeds``.
        click_model: ``"cascade"`` or ``"swipe"``.
        swipe_probability: the swipe model's per-card swipe probability.
        slate_size: L, cards per slate.
        l_init: cards on screen before a swipe (at most ``slate_size``).
        feedback: ``"paper"``, ``"published-code"`` or None (each agent's default).
        out: the output folder (default ``results/<timestamp>``); must be empty or absent
            unless ``resume``.
        resume: continue the experiment in ``out`` (same config; ``rounds`` may grow).
        jobs: runs in parallel processes (default: ``min(2, runs, cpus)``; 1 runs
            everything in this process).
        plot: also write ``regret.png``.
        progress: show a progress bar (on stderr).
        data_dir: cache folder for downloaded users and cached segments.
        agent_factory: builds an agent from a name and the keyword arguments of
            ``agents.make_agent``; default ``agents.make_agent``. With a custom factory the
            names are not checked against ``agents.list_agents()``.
        agent_overrides: extra keyword arguments given to every agent.

    Returns:
        The :class:`ExperimentResult`, already written to ``out``.

    Raises:
        ValueError, TypeError: a bad argument, before any work (the message names it).
    """
    config = ExperimentConfig.build(
        agents,
        known_agents=None if agent_factory is None else (),
        rounds=rounds,
        users_per_round=users_per_round,
        seeds=seeds,
        users=users,
        n_users=n_users,
        population_seed=population_seed,
        click_model=click_model,
        swipe_probability=swipe_probability,
        slate_size=slate_size,
        l_init=l_init,
        feedback=feedback,
        data_dir=None if data_dir is None else os.fspath(data_dir),
        agent_overrides=dict(agent_overrides or {}),
    )
    if jobs is None:
        jobs = max(1, min(2, config.n_runs, os.cpu_count() or 1))
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"`jobs` must be an int of at least 1; got {jobs!r}")
    out = prepare_output(out, config, resume=resume)
    with _folder_lock(out):
        return _run_in_folder(
            config,
            out,
            jobs=jobs,
            resume=resume,
            plot=plot,
            progress=progress,
            data_dir=data_dir,
            agent_factory=agent_factory,
        )


@contextlib.contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` (POSIX), so that two runs never share a folder.

    The kernel drops the lock when the holder dies, even by ``kill -9``.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out / ".lock", "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"output folder {os.fspath(out)!r} is in use by another carousel-env run; "
                "wait for it to finish or stop it first"
            ) from None
        yield


def _run_in_folder(
    config: ExperimentConfig,
    out: Path,
    *,
    jobs: int,
    resume: bool,
    plot: bool,
    progress: bool,
    data_dir: str | os.PathLike | None,
    agent_factory: AgentFactory | None,
) -> ExperimentResult:
    """The body of :func:`run_experiment`, once the arguments and the folder are checked."""
    started = time.perf_counter()

    # The population and its optimum are built here, once, before any child is forked.
    population = load_population(
        config.users, seed=config.population_seed, n_users=config.n_users, cache_dir=data_dir
    )
    catalog = load_catalog("deezer")
    simulator = CarouselSimulator(
        population,
        catalog=catalog,
        slate_size=config.slate_size,
        l_init=config.l_init,
        click_model=config.click_model,
        swipe_probability=config.swipe_probability,
    )
    simulator.optimal_reward  # noqa: B018  (the expensive part, shared by every run)
    fingerprint = _population_fingerprint(population, catalog)
    _write_or_check_config(out, config, fingerprint, resume)
    setup_s = time.perf_counter() - started

    shared = _Shared(config, population, catalog, out, agent_factory or _default_factory())
    order = _cost_order(config.agents)
    tasks, done = [], 0
    for agent, seed in sorted(config.runs(), key=lambda run: order[run[0]]):
        state = _read_checkpoint(checkpoint_path(out, agent, seed))
        played = 0 if state is None else state["round"]
        done += played
        if played < config.rounds:
            tasks.append(_Task(agent, seed, shared))
    logger.info("%d runs to play in %s (%d rounds already done)", len(tasks), out, done)

    _execute(tasks, jobs, total=config.n_runs * config.rounds, done=done, progress=progress)

    runs = {}
    for agent, seed in config.runs():
        state = _read_checkpoint(checkpoint_path(out, agent, seed))
        runs[agent, seed] = RunCurves.from_arrays(agent, seed, state["curves"])
    meta = {
        "population_fingerprint": fingerprint,
        "population_size": population.n_users,
        "n_segments": population.n_segments,
        "n_items": catalog.n_items,
        "mean_optimal_reward": float(simulator.optimal_reward.mean()),
        "setup_s": setup_s,
        "wall_s": time.perf_counter() - started,
        "jobs": jobs,
        "resumed": bool(resume),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    result = ExperimentResult(config.to_dict(), runs, meta=meta)
    result.write(out)
    if plot:
        from carousel_env.experiment.plot import plot_regret

        plot_regret(result, out / "regret.png")
    return result


def _write_or_check_config(
    out: Path, config: ExperimentConfig, fingerprint: str, resume: bool
) -> None:
    config_file = out / "config.json"
    if resume:
        stored = json.loads(config_file.read_text(encoding="utf-8"))
        if stored.get("population_fingerprint") != fingerprint:
            raise ValueError(
                f"cannot resume {os.fspath(out)!r}: its users or items differ from the ones "
                "given now (population fingerprint mismatch)"
            )
        return
    document = {
        "format": FORMAT_VERSION,
        "config": config.to_dict(),
        "population_fingerprint": fingerprint,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    atomic_write_bytes(config_file, json.dumps(document, indent=1).encode("utf-8"))


def _execute(tasks: list[_Task], jobs: int, *, total: int, done: int, progress: bool) -> None:
    """Play the tasks here (one job) or in child processes, with a progress bar."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        # No monitor thread: children are forked from this process, and forking a process
        # that runs threads can copy a held lock into the child.
        monitor_interval = 0

    with Bar(
        total=total, initial=done, unit="round", desc="carousel-env run", disable=not progress
    ) as bar:
        if jobs == 1 or len(tasks) <= 1:
            # One BLAS thread here too, as in the children: the same arithmetic whatever
            # `jobs` is, and the agents measured no faster with more threads.
            with blas_threads(1):
                for task in tasks:
                    bar.set_postfix_str(f"{task.agent}, seed {task.seed}")
                    _play(task, bar.update)
        else:
            run_in_processes(tasks, _play, jobs=jobs, on_progress=bar.update, label=str)
