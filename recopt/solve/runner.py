"""The solver-agnostic runner: instance + model name -> Result.

``solve(instance, "LP1")`` builds the registered Pyomo model, solves it with the
chosen solver (HiGHS by default), reads the solution back onto the instance's
dims, derives bills and metrics through :mod:`recopt.settle`, and returns a Result
(:mod:`recopt.solve.result`). It never raises for a solver outcome: infeasible,
unbounded, time limit and missing solver are statuses of the Result. It raises
:class:`~recopt.errors.RecoptError` only for bad input (instance, model name or
option), before anything is solved.

Separable models (``ModelSpec.separable``) are solved in blocks: a block is a
slice of steps (``"time"``) or one scenario (``"scenario"``); blocks are
independent problems whose sum is the model, so solving them apart and stitching
the solutions is exact. Blocks run in worker processes when there are several
and more than one core; the Pyomo model stays the declarative source of truth in
every block.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from recopt.errors import RecoptError, SolverError, SolverUnavailableError
from recopt.models import registry
from recopt.solve.result import finalize_attrs
from recopt.solve.solvers import SolveOutcome, solve_pyomo
from recopt.solve.status import Status, worst

log = logging.getLogger("recopt.solve")

#: Target size of one block, in (scenario, step, member) cells: about 100 steps of
#: 100 members. HiGHS's simplex time grows faster than linearly with the block
#: (LP1 2880 x 100 in one process: 7.7 s of solver time in 2 blocks of 1440 steps,
#: 1.9 s in blocks of 192), while Pyomo build and compile time barely change.
BLOCK_CELLS = 10_000
#: Below this many cells, solving in one block in-process is faster than a pool.
POOL_MIN_CELLS = 40_000


@dataclass
class _BlockResult:
    solution: xr.Dataset | None
    outcome: SolveOutcome
    build_seconds: float
    extract_seconds: float
    position: tuple


def _recopt_version() -> str:
    try:
        from importlib.metadata import version

        return version("recopt")
    except Exception:  # pragma: no cover
        return "unknown"


def _as_instance(instance) -> xr.Dataset:
    from recopt.data import load, validate

    if isinstance(instance, str | Path):
        return load(instance)
    if not isinstance(instance, xr.Dataset):
        raise RecoptError(
            f"instance must be an xarray.Dataset or a path to a .nc file, not "
            f"{type(instance).__name__}"
        )
    return validate(instance)


def _solve_one(spec, instance, opts, solver_kw, deadline, position, pyomo_model=None):
    """Build, solve and extract one block (runs in a worker process or in-process).

    ``spec`` is a ModelSpec or, in a worker process, its registered name (a spec's
    callables need not be picklable).
    """
    if isinstance(spec, str):
        spec = registry.get(spec)
    t0 = time.perf_counter()
    model = pyomo_model if pyomo_model is not None else spec.build(instance, **opts)
    t1 = time.perf_counter()
    kw = dict(solver_kw)
    if deadline is not None:
        remaining = deadline - time.time()
        if remaining <= 0:
            return _BlockResult(None, SolveOutcome(Status.TIME_LIMIT,
                                                   "time limit reached before this block"),
                                t1 - t0, 0.0, position)
        kw["time_limit"] = remaining
    outcome = solve_pyomo(model, **kw)
    t2 = time.perf_counter()
    solution = spec.extract(model, instance, **opts) if outcome.has_solution else None
    t3 = time.perf_counter()
    return _BlockResult(solution, outcome, t1 - t0, t3 - t2, position)


def _worker_init(level: int) -> None:
    if sys.platform.startswith("linux"):  # die with the parent (no orphaned solvers)
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG
        except OSError:  # pragma: no cover - exotic libc
            pass
    logging.basicConfig(level=level)
    logging.getLogger("recopt").setLevel(level)
    # A forked child inherits HiGHS's thread-pool state without its threads:
    # start a fresh scheduler before the first solve.
    from recopt.solve.solvers import reset_highs_pool

    reset_highs_pool()


def map_in_workers(fn, jobs: list[tuple], workers: int) -> list:
    """``[fn(*job) for job in jobs]``, in ``workers`` processes when ``workers > 1``.

    The one worker pool of recopt (time blocks here, billing periods of KoR9/KoR10):
    fork where available (no re-import of the user's ``__main__``, so scripts need no
    main guard, and the model modules are already loaded), spawn elsewhere; every
    worker dies with its parent and starts a fresh HiGHS scheduler
    (:func:`_worker_init`). Results come back in the order of ``jobs``.
    """
    workers = max(1, min(int(workers), len(jobs)))
    if workers == 1:
        return [fn(*job) for job in jobs]
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(logging.getLogger("recopt").getEffectiveLevel(),)
                             ) as pool:
        futures = [pool.submit(fn, *job) for job in jobs]
        return [f.result() for f in futures]


def _blocks(instance: xr.Dataset, separable: str | None, workers: int,
            block_steps: int | None) -> list[tuple]:
    """(scenario positions, time slice) of each block."""
    S, T, U = (instance.sizes[d] for d in ("scenario", "time", "member"))
    if separable is None:
        return [(slice(None), slice(None))]
    if separable == "scenario":
        if S == 1:
            return [(slice(None), slice(None))]
        return [(slice(s, s + 1), slice(None)) for s in range(S)]
    # separable by time (and scenario)
    cells = S * T * U
    if block_steps is None:
        n = max(1, math.ceil(cells / BLOCK_CELLS))
        if cells >= POOL_MIN_CELLS and workers > 1:
            n = max(n, workers)
        n_time = max(1, math.ceil(n / S))
        block_steps = math.ceil(T / n_time)
    block_steps = max(1, int(block_steps))
    return [(slice(s, s + 1), slice(t, min(T, t + block_steps)))
            for s in range(S) for t in range(0, T, block_steps)]


def _stitch(instance: xr.Dataset, parts: list[_BlockResult]) -> xr.Dataset:
    first = parts[0].solution
    data = {}
    for name, var in first.data_vars.items():
        full_shape = tuple(instance.sizes[d] for d in var.dims)
        arr = np.zeros(full_shape, dtype=var.dtype)
        for part in parts:
            s_sl, t_sl = part.position
            key = tuple(s_sl if d == "scenario" else t_sl if d == "time" else slice(None)
                        for d in var.dims)
            arr[key] = part.solution[name].values
        data[name] = (var.dims, arr, var.attrs)
    coords = {d: instance[d].values for d in ("scenario", "time", "member")}
    return xr.Dataset(data, coords=coords)


def solve(instance, model: str = "LP1", *, solver: str = "highs",
          time_limit: float | None = None, mip_gap: float | None = None,
          threads: int | None = None, solver_options: dict | None = None,
          workers: int | None = None, block_steps: int | None = None,
          pyomo_model=None, seed: int | None = None, **model_options) -> xr.Dataset:
    """Solve a registered model on an instance and return its Result.

    Parameters
    ----------
    instance : xarray.Dataset or path
        A recopt instance (validated here) or a netCDF file.
    model : str
        A registered name (``python -m recopt.solve --list-models``).
    solver : str
        ``"highs"`` (embedded default), ``"gurobi"`` or any Pyomo solver name.
    time_limit : float, optional
        Seconds, for the whole solve (all blocks).
    mip_gap : float, optional
        Relative MIP gap.
    threads : int, optional
        Solver threads (per block).
    solver_options : dict, optional
        Passed to the solver unchanged.
    workers : int, optional
        Worker processes for separable models (default: the machine's cores);
        1 solves every block in this process.
    block_steps : int, optional
        Steps per block for time-separable models (default: automatic).
    pyomo_model : pyomo ConcreteModel, optional
        A model built with :func:`recopt.models.build` for this instance and
        possibly extended by the user; it is solved as is (in one block) and its
        solution read back like the registered model's.
    seed : int, optional
        Recorded in the Result (for models with random choices).
    **model_options
        The model's options (see ``--list-models``).

    Returns
    -------
    xarray.Dataset
        The Result (see :mod:`recopt.solve.result`).
    """
    t_start = time.perf_counter()
    spec = registry.get(model)
    opts = spec.resolve_options(model_options)
    inst = _as_instance(instance)
    from recopt.data import instance_hash

    run_opts = spec.prepare(inst, **opts) if spec.prepare is not None else opts

    effective_solver_options = {**spec.solver_defaults.get(solver.lower(), {}),
                                **(solver_options or {})}
    solver_kw = dict(solver=solver, mip_gap=mip_gap, threads=threads,
                     options=effective_solver_options or None)
    attrs = dict(
        model=spec.name, solver=solver, options=opts, solver_options=effective_solver_options,
        time_limit=time_limit, mip_gap=mip_gap, threads=threads, seed=seed,
        instance_hash=instance_hash(inst), recopt_version=_recopt_version(),
    )
    if spec.algorithm is not None and (spec.algorithm_when is None
                                       or spec.algorithm_when(opts)):
        try:
            result = spec.algorithm(inst, time_limit=time_limit, seed=seed, **solver_kw, **opts)
        except (SolverUnavailableError, SolverError) as exc:
            # a missing solver, a failed solver, a Benders cut that is not tight: a status
            status = (Status.SOLVER_UNAVAILABLE if isinstance(exc, SolverUnavailableError)
                      else Status.ERROR)
            log.debug("algorithm failed", exc_info=True)
            attrs.update(status=status.value, message=str(exc), has_solution=False,
                         objective=math.nan, bound=math.nan, gap=math.nan,
                         wall_seconds=time.perf_counter() - t_start, blocks=1, workers=1)
            return finalize_attrs(xr.Dataset(coords={d: inst[d].values for d in
                                                     ("scenario", "time", "member")}), attrs)
        attrs["wall_seconds"] = time.perf_counter() - t_start
        return finalize_attrs(result, {**attrs, **result.attrs})

    deadline = None if time_limit is None else time.time() + float(time_limit)
    ncpu = os.cpu_count() or 1
    workers = ncpu if workers is None else max(1, int(workers))
    if pyomo_model is not None:
        blocks = [(slice(None), slice(None))]
    else:
        blocks = _blocks(inst, spec.separable, workers, block_steps)
    workers = min(workers, len(blocks))

    try:
        if len(blocks) == 1:
            parts = [_solve_one(spec, inst, run_opts, solver_kw, deadline, blocks[0], pyomo_model)]
        elif workers == 1:
            parts = [_solve_one(spec, inst.isel(scenario=s, time=t), run_opts, solver_kw, deadline,
                                (s, t)) for s, t in blocks]
        else:
            parts = map_in_workers(_solve_one, [
                (spec.name, inst.isel(scenario=s, time=t), run_opts, solver_kw, deadline, (s, t))
                for s, t in blocks], workers)
    except (SolverUnavailableError, SolverError, BrokenProcessPool) as exc:
        status = (Status.SOLVER_UNAVAILABLE if isinstance(exc, SolverUnavailableError)
                  else Status.ERROR)
        message = str(exc) if not isinstance(exc, BrokenProcessPool) else (
            f"a worker process died ({exc}); out of memory? retry with --workers 1 or "
            "smaller blocks")
        log.debug("solve failed", exc_info=True)
        attrs.update(status=status.value, message=message,
                     has_solution=False, objective=math.nan, bound=math.nan, gap=math.nan,
                     wall_seconds=time.perf_counter() - t_start, blocks=len(blocks),
                     workers=workers)
        return finalize_attrs(xr.Dataset(coords={d: inst[d].values for d in
                                                 ("scenario", "time", "member")}), attrs)

    outcomes = [p.outcome for p in parts]
    status = worst(o.status for o in outcomes)
    has_solution = all(p.solution is not None for p in parts)
    messages = sorted({o.message for o in outcomes if o.message})
    t_extract = time.perf_counter()
    if has_solution:
        solution = parts[0].solution if len(parts) == 1 else _stitch(inst, parts)
        result = spec.derive(inst, solution, **run_opts) if spec.derive else solution
    else:
        result = xr.Dataset(coords={d: inst[d].values for d in ("scenario", "time", "member")})
    if "scenario_probability" not in result:
        result["scenario_probability"] = inst["scenario_probability"]
    extract_seconds = sum(p.extract_seconds for p in parts) + time.perf_counter() - t_extract
    message = "; ".join(messages)
    if status == Status.INFEASIBLE and spec.explain_infeasible is not None:
        try:
            text, extra = spec.explain_infeasible(inst, solver, **run_opts)
            message = text
            attrs.update(extra)
        except RecoptError as exc:  # the explanation is a bonus; keep the status
            log.warning("could not explain the infeasibility: %s", exc)
    objective = sum(o.objective for o in outcomes) if has_solution else math.nan
    bound = sum(o.bound for o in outcomes)
    gap = (abs(objective - bound) / max(1.0, abs(objective))
           if math.isfinite(objective) and math.isfinite(bound) else math.nan)
    attrs.update(
        status=status.value, message=message, has_solution=has_solution,
        objective=objective, bound=bound, gap=gap,
        solver_version=outcomes[0].solver_version,
        build_seconds=sum(p.build_seconds for p in parts),
        compile_seconds=sum(o.compile_seconds for o in outcomes),
        solve_seconds=sum(o.solve_seconds for o in outcomes),
        extract_seconds=extract_seconds,
        wall_seconds=time.perf_counter() - t_start,
        blocks=len(blocks), workers=workers,
        n_variables=sum(o.n_variables for o in outcomes),
        n_constraints=sum(o.n_constraints for o in outcomes),
        n_integer=sum(o.n_integer for o in outcomes),
    )
    log.info("%s on %s: %s, objective %s, wall %.2f s", spec.name, solver, status.value,
             objective, attrs["wall_seconds"])
    return finalize_attrs(result, attrs)
