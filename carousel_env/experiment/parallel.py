"""Independent runs on several cores: one child process per run, at most ``jobs`` at a time.

On Linux the children are forked, so they share the parent's population and its
precomputed optimum copy-on-write (no pickling, no second copy). Elsewhere they are
spawned and receive the shared data pickled once per run.

Each child limits BLAS and OpenMP to one thread, so that ``jobs`` children on ``jobs``
cores do not oversubscribe them. A child ignores Ctrl-C: the parent catches it, stops
every child and lets the caller report what was kept (checkpoints are written
atomically, so a child stopped mid-round loses only that round).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

__all__ = ["RunFailedError", "blas_threads", "limit_threads", "run_in_processes"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Variables read by BLAS/OpenMP libraries when they load (for libraries a child loads
#: later, e.g. torch imported by an agent).
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class RunFailedError(RuntimeError):
    """A run raised an exception or its process died; the message names the run."""


def _loaded_openblas() -> list[ctypes.CDLL]:
    """The OpenBLAS libraries loaded in this process (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return []
    libraries = []
    for path in sorted(paths):
        try:
            libraries.append(ctypes.CDLL(path))
        except OSError:
            continue
    return libraries


def _openblas_call(library: ctypes.CDLL, action: str, *args: int) -> int | None:
    """Call ``<prefix>openblas_<action>_num_threads<suffix>``, whichever this build has."""
    for prefix, suffix in (("", ""), ("", "64_"), ("scipy_", "64_"), ("scipy_", "")):
        function = getattr(library, f"{prefix}openblas_{action}_num_threads{suffix}", None)
        if function is not None:
            return function(*(ctypes.c_int(arg) for arg in args))
    return None


def _set_threads(n_threads: int | dict) -> dict:
    """Set BLAS/OpenMP/torch thread counts; return the previous ones (for a restore).

    ``n_threads`` is one count for everything, or a dict returned by an earlier call.
    """
    previous: dict[str, Any] = {"env": {}, "openblas": [], "torch": None}
    restore = n_threads if isinstance(n_threads, dict) else None
    for variable in _THREAD_VARIABLES:
        previous["env"][variable] = os.environ.get(variable)
        value = restore["env"][variable] if restore else str(n_threads)
        if value is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = value
    for number, library in enumerate(_loaded_openblas()):
        previous["openblas"].append(_openblas_call(library, "get"))
        counts = restore["openblas"] if restore else None
        count = counts[number] if counts and number < len(counts) else n_threads
        if isinstance(count, int):
            _openblas_call(library, "set", count)
    torch = sys.modules.get("torch")
    if torch is not None:
        previous["torch"] = torch.get_num_threads()
        count = restore["torch"] if restore else n_threads
        if count is not None:
            torch.set_num_threads(count)
    return previous


def limit_threads(n_threads: int = 1) -> None:
    """Keep BLAS, OpenMP and torch thread pools of this process to ``n_threads`` threads.

    Sets the loaded OpenBLAS libraries (the builds NumPy and SciPy ship) directly and
    torch's intra-op pool if torch is loaded; sets the environment variables too, for
    libraries loaded afterwards. With ``threadpoolctl`` installed, it limits every pool
    that it knows (MKL, BLIS, OpenMP runtimes) as well.
    """
    _set_threads(n_threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=n_threads)


@contextlib.contextmanager
def blas_threads(n_threads: int = 1) -> Iterator[None]:
    """:func:`limit_threads` for the duration of a ``with`` block, then restore."""
    previous = _set_threads(n_threads)
    try:
        yield
    finally:
        _set_threads(previous)


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), e.g. by ``kill -9``.

    Without it, children of a killed parent would play on and write checkpoints that a
    ``--resume`` started meanwhile also writes.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _child(
    connection: Connection,
    worker: Callable[[T, Callable[[int], None]], None],
    task: T,
    n_threads: int | None,
    parent: int,
) -> None:
    _die_with_parent(parent)
    # The parent handles Ctrl-C for everyone; a child must not die half-way through it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent stops children with SIGTERM: exit through Python, so that a checkpoint
    # being written removes its temporary file.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if n_threads is not None:
        limit_threads(n_threads)
    try:
        worker(task, lambda rounds: connection.send(("progress", rounds)))
    except BaseException:
        connection.send(("error", traceback.format_exc()))
    else:
        connection.send(("done", None))
    finally:
        connection.close()


def default_context() -> multiprocessing.context.BaseContext:
    """``fork`` where available (shares memory, starts in milliseconds), else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def run_in_processes(
    tasks: Sequence[T],
    worker: Callable[[T, Callable[[int], None]], None],
    *,
    jobs: int,
    on_progress: Callable[[int], None],
    label: Callable[[T], str] = str,
    n_threads: int | None = 1,
    context: Any = None,
) -> None:
    """Run ``worker(task, report)`` for every task, ``jobs`` processes at a time.

    Args:
        tasks: the work items, started in this order.
        worker: called in a child process; calls ``report(n)`` after every ``n`` rounds.
        jobs: the most children alive at once.
        on_progress: called in this process with every ``n`` a child reports.
        label: names a task in error messages.
        n_threads: BLAS/OpenMP threads per child (None: leave as inherited).
        context: a multiprocessing context (default: :func:`default_context`).

    Raises:
        RunFailedError: a worker raised or its process died; every other child is stopped.
        KeyboardInterrupt: after stopping every child.
    """
    context = context or default_context()
    pending = list(tasks)
    running: list[_Child] = []

    try:
        while pending or running:
            while pending and len(running) < jobs:
                running.append(_Child.start(context, worker, pending.pop(0), n_threads))

            open_pipes = [child.receiver for child in running if not child.closed]
            wait(open_pipes + [child.process.sentinel for child in running])
            for child in running:
                child.drain(on_progress)

            for child in [child for child in running if not child.process.is_alive()]:
                running.remove(child)
                child.process.join()
                child.drain(on_progress)
                child.receiver.close()
                if child.status == "error":
                    raise RunFailedError(f"run {label(child.task)} failed:\n{child.message}")
                if child.status != "done":
                    raise RunFailedError(
                        f"run {label(child.task)} died with exit code {child.process.exitcode} "
                        "(killed by the system, e.g. out of memory?); finished rounds are kept, "
                        "rerun with --resume to continue"
                    )
    finally:
        for child in running:
            if child.process.is_alive():
                child.process.terminate()
        for child in running:
            child.process.join()
            child.receiver.close()


class _Child:
    """One child process and the receiving end of its pipe."""

    def __init__(self, process: Any, receiver: Connection, task: Any) -> None:
        self.process = process
        self.receiver = receiver
        self.task = task
        self.closed = False
        self.status = ""
        self.message = ""

    @classmethod
    def start(
        cls,
        context: Any,
        worker: Callable[[Any, Callable[[int], None]], None],
        task: Any,
        n_threads: int | None,
    ) -> _Child:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_child, args=(sender, worker, task, n_threads, os.getpid()), daemon=True
        )
        process.start()
        sender.close()  # the child holds the only sending end: EOF when it exits
        return cls(process, receiver, task)

    def drain(self, on_progress: Callable[[int], None]) -> None:
        """Read every message waiting in the pipe."""
        if self.closed:
            return
        try:
            while self.receiver.poll():
                kind, value = self.receiver.recv()
                if kind == "progress":
                    on_progress(value)
                else:
                    self.status, self.message = kind, value or ""
        except (EOFError, OSError):
            self.closed = True
