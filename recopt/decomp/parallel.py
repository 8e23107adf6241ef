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
