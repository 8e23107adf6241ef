"""One benchmark job in its own process.

The runner's Dask task forks the job process from a warm fork server
(:mod:`recopt.bench.preload`) and runs :func:`child` in it: the process becomes the
leader of a new process group, which the task kills at the job's timeout, so a
crashing or hanging solver takes only its job down. The process asks the kernel to
kill it when its parent dies (``PR_SET_PDEATHSIG``, as :mod:`recopt.decomp.parallel`
does for its block workers). ``python -m recopt.bench.job JOB.json OUT.json`` runs a
job by hand.

It solves the job with :func:`recopt.solve.solve` and writes ``OUT.json``: the
Result's attrs, the peak RSS of this process and of its waited-for children
(MiB, from ``getrusage``), and the machine description
(:func:`recopt.bench.record.machine_info`, the one every benchmark record uses).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import resource
import signal
import sys
import time

from recopt.bench.record import machine_info
from recopt.bench.store import write_json_atomic
from recopt.data import load
from recopt.errors import RecoptError
from recopt.solve import solve
from recopt.solve.bounds import root_bounds
from recopt.solvers import reset_highs_pool


def die_with_parent(expected_ppid: int | None = None) -> None:
    """Linux: SIGKILL this process when its parent (thread) exits."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PDEATHSIG
        except OSError:  # pragma: no cover - exotic libc
            pass
    if expected_ppid is not None and os.getppid() != expected_ppid:
        os._exit(3)  # the parent died before prctl took effect


def _maxrss_mib(who) -> float:
    r = resource.getrusage(who).ru_maxrss  # KiB on Linux, bytes on macOS
    return r / 1024.0 if sys.platform != "darwin" else r / 2**20


#: Steps of the job's own instance solved once, untimed, before the timed solve.
WARMUP_STEPS = 4


def run(job: dict, instance_path: str) -> dict:
    """Load the instance, warm up, then solve the job (timed by the Result).

    A fresh interpreter pays about 2 s of lazy imports on its first solve (Pyomo
    plug-ins, dask.array through xarray, ...). Unless ``job["warmup"]`` is false, the
    model is first solved, untimed, on the first :data:`WARMUP_STEPS` steps of the
    job's own instance, so the Result's times are those of a warm process (as a
    researcher's notebook or script running many solves sees them).
    """
    t0 = time.perf_counter()
    instance = load(instance_path)
    t1 = time.perf_counter()
    kw = dict(solver=job["solver"], time_limit=job["time_limit"], mip_gap=job["mip_gap"],
              threads=job["threads"], solver_options=job["solver_options"] or None,
              **dict(job["options"]))
    warm = 0.0
    if job.get("warmup", True):
        try:
            small = instance.isel(time=slice(0, min(WARMUP_STEPS, instance.sizes["time"])))
            solve(small, job["model"], workers=1, **kw)
        except Exception as exc:  # the warm-up is a courtesy; the timed solve decides
            logging.getLogger("recopt.bench").warning("warm-up failed: %s", exc)
        warm = time.perf_counter() - t1
    result = solve(instance, job["model"], workers=job["job_workers"], **kw)
    out = {"attrs": dict(result.attrs), "load_seconds": t1 - t0, "warmup_seconds": warm,
           "solve_call_seconds": time.perf_counter() - t1 - warm}
    if job.get("solve_relaxation") and int(result.attrs.get("n_integer") or 0) > 0:
        out["relaxation"] = relaxation(job, instance)
    return out


#: Solver options that stop a MIP solve after its root node (root LP, cuts, heuristics).
def relaxation(job: dict, instance) -> dict:
    """Root bounds of the job's MILP (:func:`recopt.solve.bounds.root_bounds`), solved
    untimed after the timed solve; the runner turns them into ``lp_gap`` and ``root_gap``
    = (objective - bound) / |objective| (Chasseray Fig. 4)."""
    return root_bounds(instance, job["model"], solver=job["solver"],
                       time_limit=job["time_limit"], threads=job["threads"],
                       solver_options=job["solver_options"], **dict(job["options"]))


def run_files(job_file: str, out_file: str) -> None:
    """Run the job described in ``job_file`` and write ``out_file`` (JSON)."""
    with open(job_file) as fh:
        spec = json.load(fh)

    try:
        out = run(spec["job"], spec["instance_path"])
    except RecoptError as exc:  # bad input: a status, like recopt.solve's CLI
        out = {"attrs": {"status": "bad_input", "message": str(exc)}}
    out["peak_rss_mib_self"] = _maxrss_mib(resource.RUSAGE_SELF)
    out["peak_rss_mib_children"] = _maxrss_mib(resource.RUSAGE_CHILDREN)
    out["machine"] = machine_info()

    write_json_atomic(out_file, out)


def child(job_file: str, out_file: str, err_file: str) -> None:
    """Entry point of a job process forked by the runner's fork server.

    Makes the process the leader of a new process group (the runner kills the group
    at the timeout), sends its stderr to ``err_file``, dies with its parent, and
    restarts HiGHS's thread pool (a forked child inherits its state, not its threads).
    """
    os.setsid()
    fd = os.open(err_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
    die_with_parent()
    reset_highs_pool()
    run_files(job_file, out_file)


def main(argv=None) -> int:
    """``python -m recopt.bench.job JOB.json OUT.json [PPID]``: run one job by hand."""
    argv = sys.argv[1:] if argv is None else argv
    die_with_parent(int(argv[2]) if len(argv) > 2 else None)
    run_files(argv[0], argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
