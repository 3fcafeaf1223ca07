"""Child processes: progress, errors, deaths and the one-thread BLAS limit."""

from __future__ import annotations

import ctypes
import os

import pytest

from carousel_env.experiment.parallel import (
    RunFailedError,
    blas_threads,
    run_in_processes,
)


def report_twice(task: int, report) -> None:
    report(task)
    report(task)


def fail_on_three(task: int, report) -> None:
    report(1)
    if task == 3:
        raise ValueError(f"task {task} is bad")


def die(task: int, report) -> None:
    os._exit(9)


def openblas_threads() -> int:
    """Threads of NumPy's OpenBLAS in this process (0 if it cannot be asked)."""
    import numpy  # noqa: F401  (loads OpenBLAS)

    with open("/proc/self/maps", encoding="utf-8") as maps:
        paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    for path in paths:
        library = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads"):
            getter = getattr(library, name, None)
            if getter is not None:
                return int(getter())
    return 0


def report_threads(task: int, report) -> None:
    report(openblas_threads())


@pytest.mark.parametrize("jobs", [1, 2, 5], ids=["one-job", "two-jobs", "more-jobs-than-tasks"])
def test_every_task_runs_and_reports(jobs):
    seen = []
    run_in_processes([1, 2, 3, 4], report_twice, jobs=jobs, on_progress=seen.append)
    assert sorted(seen) == [1, 1, 2, 2, 3, 3, 4, 4]


def test_an_exception_in_a_child_names_the_task_and_shows_its_traceback():
    with pytest.raises(RunFailedError, match=r"run task-3 failed:\n(.|\n)*ValueError: task 3"):
        run_in_processes(
            [1, 2, 3], fail_on_three, jobs=2, on_progress=lambda n: None, label="task-{}".format
        )


def test_a_child_that_dies_is_reported():
    with pytest.raises(RunFailedError, match="run 7 died with exit code 9"):
        run_in_processes([7], die, jobs=1, on_progress=lambda n: None)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_children_use_one_blas_thread():
    if openblas_threads() == 0:
        pytest.skip("NumPy is not linked to a loadable OpenBLAS")
    seen = []
    run_in_processes([0, 1], report_threads, jobs=2, on_progress=seen.append, n_threads=1)
    assert seen == [1, 1]


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_blas_threads_limits_then_restores(monkeypatch):
    before = openblas_threads()
    if before == 0:
        pytest.skip("NumPy is not linked to a loadable OpenBLAS")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with blas_threads(1):
        assert openblas_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == "1"
    assert openblas_threads() == before
    assert "OMP_NUM_THREADS" not in os.environ
