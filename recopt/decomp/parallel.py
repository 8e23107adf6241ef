"""The one worker pool of recopt: :func:`map_in_workers`.

Time blocks of separable models, billing periods of KoR9/KoR10 and any other
independent jobs of an algorithm go through it. Suites of whole solves use Dask
(:mod:`recopt.bench`).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from recopt.progress import progress
from recopt.solvers.highs import reset_highs_pool


def worker_init(level: int) -> None:
    """Set up a worker process: die with the parent, log at ``level``, fresh HiGHS pool."""
    if sys.platform.startswith("linux"):  # die with the parent (no orphaned solvers)
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG
        except OSError:  # pragma: no cover - exotic libc
            pass
    logging.basicConfig(level=level)
    logging.getLogger("recopt").setLevel(level)
    # A forked child inherits HiGHS's thread-pool state without its threads:
    # start a fresh scheduler before the first solve.
    reset_highs_pool()


def map_in_workers(fn, jobs: list[tuple], workers: int, desc: str | None = None) -> list:
    """``[fn(*job) for job in jobs]``, in ``workers`` processes when ``workers > 1``.

    Fork where available (no re-import of the user's ``__main__``, so scripts need no
    main guard, and the model modules are already loaded), spawn elsewhere; every
    worker dies with its parent and starts a fresh HiGHS scheduler
    (:func:`worker_init`). Results come back in the order of ``jobs``. ``fn`` and the
    jobs must be picklable when ``workers > 1`` (pass a model's registered name, not
    its spec). ``desc``: name of the jobs for the progress report
    (:mod:`recopt.progress`), one step per finished job; None: no report.
    """
    workers = max(1, min(int(workers), len(jobs)))
    bar = progress(len(jobs), desc or "", "jobs", enabled=None if desc else False)
    if workers == 1:
        with bar:
            out = []
            for job in jobs:
                out.append(fn(*job))
                bar.update(1)
            return out
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_init,
                             initargs=(logging.getLogger("recopt").getEffectiveLevel(),)
                             ) as pool:
        futures = [pool.submit(fn, *job) for job in jobs]
        with bar:
            for _ in as_completed(futures):
                bar.update(1)
        return [f.result() for f in futures]


def _serve(conn, factory, args: tuple, kwargs: dict, level: int) -> None:
    """A :class:`StatefulWorkers` process: make the state, then answer method calls."""
    worker_init(level)
    try:
        state = factory(*args, **kwargs)
        conn.send((True, None))
    except Exception as exc:  # noqa: BLE001 - reported to the driver
        conn.send((False, exc))
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        name, call_args = msg
        try:
            conn.send((True, getattr(state, name)(*call_args)))
        except Exception as exc:  # noqa: BLE001 - reported to the driver
            conn.send((False, exc))


class StatefulWorkers:
    """Worker processes that each keep one object between calls (a compiled LP).

    ``StatefulWorkers([(factory, args, kwargs), ...])`` starts one process per entry
    (fork where available, like :func:`map_in_workers`; every worker dies with its
    parent and starts a fresh HiGHS scheduler); worker ``k`` holds
    ``factory(*args, **kwargs)``. :meth:`call` runs one method on every worker at once
    (``state.method(*args_k)``) and returns the answers in order; an exception raised
    in a worker is raised again here. :meth:`close` (or ``with``) stops them.
    """

    def __init__(self, states: list[tuple]):
        ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        level = logging.getLogger("recopt").getEffectiveLevel()
        self._conns = []
        self._procs = []
        for factory, args, kwargs in states:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(child, factory, args, kwargs, level),
                            daemon=True)
            p.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(p)
        try:
            self._answers()
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self._conns)

    def _answers(self) -> list:
        out = []
        error = None
        for conn in self._conns:
            try:
                ok, value = conn.recv()
            except EOFError:
                ok, value = False, RuntimeError("a worker process died (out of memory?)")
            if not ok and error is None:
                error = value
            out.append(value)
        if error is not None:
            raise error
        return out

    def call(self, method: str, args: list[tuple]) -> list:
        """``[state_k.method(*args[k]) for k]``, every worker at the same time."""
        for conn, a in zip(self._conns, args, strict=True):
            conn.send((method, a))
        return self._answers()

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
                conn.close()
            except (OSError, BrokenPipeError):
                pass
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._conns, self._procs = [], []

    def __enter__(self) -> StatefulWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalWorkers:
    """:class:`StatefulWorkers`' interface in this process: the states are made here
    and :meth:`call` runs the method on each in turn (an LP split into independent
    parts solved one after the other, each part kept with its own warm start)."""

    def __init__(self, states: list[tuple]):
        self._states = [factory(*args, **kwargs) for factory, args, kwargs in states]

    def __len__(self) -> int:
        return len(self._states)

    def call(self, method: str, args: list[tuple]) -> list:
        """``[state_k.method(*args[k]) for k]``, one after the other."""
        return [getattr(state, method)(*a)
                for state, a in zip(self._states, args, strict=True)]

    def close(self) -> None:
        self._states = []

    def __enter__(self) -> LocalWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _call_fresh(factory, args: tuple, kwargs: dict, method: str, call_args: tuple):
    """On a Dask worker: make the state and run one method (Dask keeps no state)."""
    return getattr(factory(*args, **kwargs), method)(*call_args)


class DaskWorkers:
    """:class:`StatefulWorkers`' interface on a Dask cluster (``address`` of its
    scheduler): each state's arguments are scattered to the cluster once; each call
    makes the state afresh on a worker and runs the method there (a Dask task keeps
    no state, so a kept LP loses its warm start: the price of using a cluster)."""

    def __init__(self, address: str, states: list[tuple]):
        import distributed  # optional: clusters only

        self._client = distributed.Client(address, set_as_default=False)
        self._states = [(factory, self._client.scatter([args], broadcast=True)[0], kwargs)
                        for factory, args, kwargs in states]

    def __len__(self) -> int:
        return len(self._states)

    def call(self, method: str, args: list[tuple]) -> list:
        futures = [self._client.submit(_call_fresh, factory, sargs, kwargs, method, a,
                                       pure=False)
                   for (factory, sargs, kwargs), a in zip(self._states, args, strict=True)]
        return self._client.gather(futures)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> DaskWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
