"""The solver-agnostic runner: instance + model name -> Result.

``solve(instance, "LP1")`` builds the registered Pyomo model, solves it with the
chosen solver (HiGHS by default), reads the solution back onto the instance's
dims, derives bills and metrics through :mod:`recopt.settle`, and returns a Result
(:mod:`recopt.solve.result`). It never raises for a solver outcome: infeasible,
unbounded, time limit and missing solver are statuses of the Result. It raises
:class:`~recopt.errors.RecoptError` only for bad input (instance, model name or
option), before anything is solved.

Separable models (``ModelSpec.separable``) are solved in blocks
(:mod:`recopt.decomp.blocks`): a block is a slice of steps (``"time"``) or one
scenario (``"scenario"``); blocks are independent problems whose sum is the
model, so solving them apart and stitching the solutions is exact. Blocks run in
worker processes when there are several and more than one core; the Pyomo model
stays the declarative source of truth in every block. Models with an
``algorithm`` are handed to it (:mod:`recopt.decomp.registry`). Every Result is
written by :func:`recopt.solve.result.write_result` from one
:class:`~recopt.solvers.record.RunRecord`.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import os
import time
from concurrent.futures.process import BrokenProcessPool
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, cast

import numpy as np
import xarray as xr

from recopt.data.instance import instance_hash, load, validate
from recopt.decomp import registry as algorithms
from recopt.decomp.blocks import (
    Block,
    block_record,
    solve_blocks,
    solve_model_block,
    solve_step_blocks,
    step_block_length,
    stitch,
    time_blocks,
)
from recopt.errors import ModelError, RecoptError, SolverError, SolverUnavailableError
from recopt.models import registry
from recopt.solve.result import write_result
from recopt.solvers.deadline import Deadline, check_time_limit, deadline_scope
from recopt.solvers.dispatch import tuned_options
from recopt.solvers.record import RunRecord
from recopt.solvers.safety import check_solver, check_solver_options
from recopt.solvers.status import Status

log = logging.getLogger("recopt.solve")

#: Below this many (scenario, step, member) cells the fast path solves in this process
#: unless ``workers`` is given: its HiGHS work is a small part of the run and a pool
#: pickles the numbers to the workers (LP1 35040 x 100, whole process, busy 2-core
#: machine: 6.0-6.5 s CPU and 14-17 s wall in-process, 7.2-7.6 s CPU and 19-22 s wall
#: with 2 workers).
POOL_MIN_STEP_CELLS = 20_000_000

#: Benefit sharing (cooperative games: Benders, the loop models) is loaded by name on
#: first use, so a plain solve does not import it.
SHARING_MODULE = "recopt.solve.sharing"


def recopt_version() -> str:
    """The installed recopt version ("unknown" when not installed)."""
    try:
        return version("recopt")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def as_instance(instance) -> xr.Dataset:
    """A validated instance from a Dataset or a netCDF path."""
    if isinstance(instance, str | Path):
        return load(instance)
    if not isinstance(instance, xr.Dataset):
        raise RecoptError(
            f"instance must be an xarray.Dataset or a path to a .nc file, not "
            f"{type(instance).__name__}"
        )
    return validate(instance)


def _failure(exc: Exception) -> tuple[Status, str]:
    """Status and message of a solver failure that is not the user's input."""
    status = (Status.SOLVER_UNAVAILABLE if isinstance(exc, SolverUnavailableError)
              else Status.ERROR)
    if isinstance(exc, BrokenProcessPool):
        return status, (f"a worker process died ({exc}); out of memory? retry with "
                        "--workers 1 or smaller blocks")
    return status, str(exc)


def solve(instance, model: str = "LP1", *, solver: str = "highs",
          time_limit: float | None = None, mip_gap: float | None = None,
          threads: int | None = None, solver_options: dict | None = None,
          workers: int | None = None, block_steps: int | None = None,
          pyomo_model=None, seed: int | None = None, started_at: float | None = None,
          fast: bool = True, scheduler: str | None = None,
          **model_options) -> xr.Dataset:
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
        Wall-clock seconds for the whole call, from now: loading, preparing, building
        and compiling count, and the solver gets what is left
        (:mod:`recopt.solvers.deadline`; algorithms read ``current_deadline()``).
        A positive finite number.
    mip_gap : float, optional
        Relative MIP gap (finite, >= 0).
    threads : int, optional
        Solver threads (per block), >= 1.
    solver_options : dict, optional
        Passed to the solver (options that read or write files are refused unless
        allowed, :mod:`recopt.solvers.safety`).
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
    started_at : float, optional
        ``time.time()`` from which ``time_limit`` counts (default: now); the CLI passes
        its process's start, so ``--time-limit`` is the command's wall-clock limit.
    scheduler : str, optional
        The address of a Dask scheduler (``tcp://host:8786``): an algorithm that can use
        a cluster (SLExt / MLColExt's Benders sub-problems) solves its parts on its
        workers; the master stays in this process.
    fast : bool
        For a time-separable model that gives its one-step LP (``ModelSpec.step_lp``)
        solved with HiGHS: compile one block once and re-parameterise it per block
        (:func:`recopt.decomp.blocks.solve_step_blocks`). ``False`` builds the Pyomo
        model per block (the plain path; always taken with another solver or a
        ``pyomo_model``). Both give the same optimum (``tests/test_step_lp.py``).
    **model_options
        The model's options (see ``--list-models``).

    Returns
    -------
    xarray.Dataset
        The Result (see :mod:`recopt.solve.result`).
    """
    t_start = time.perf_counter()
    # the wall-clock limit starts now: loading, preparing, building and compiling count
    deadline = Deadline.after(None if time_limit is None else check_time_limit(time_limit),
                              start=started_at)
    time_limit, mip_gap, threads, workers = check_run_numbers(time_limit, mip_gap, threads,
                                                              workers)
    check_solver(solver)
    solver_options = check_solver_options(solver_options) or None
    spec = registry.get(model)
    all_opts = spec.resolve_options(model_options)
    opts = spec.model_options(all_opts)
    inst = as_instance(instance)
    with deadline_scope(deadline):
        run_opts = spec.prepare(inst, **opts) if spec.prepare is not None else opts
        result = _solve_model(spec, inst, opts, run_opts, all_opts, solver=solver,
                              mip_gap=mip_gap, threads=threads,
                              solver_options=solver_options, time_limit=time_limit,
                              seed=seed, workers=workers, block_steps=block_steps,
                              pyomo_model=pyomo_model, t_start=t_start, deadline=deadline,
                              fast=fast, scheduler=scheduler)
    if all_opts.get("sharing", "none") != "none" and int(result.attrs.get("has_solution", 0)):
        share = importlib.import_module(SHARING_MODULE).share
        result = share(inst, spec, result, opts, method=all_opts["sharing"],
                       seed=all_opts["sharing_seed"], rel_tol=all_opts["sharing_tolerance"],
                       solver=solver, workers=workers,
                       shapley_method=all_opts["shapley_method"])
    return result


#: The largest energy per step (kWh) an instance may have for the decomposition
#: algorithms (Benders, column generation): their cut, pricing and gap tolerances are
#: absolute, so far below or above these magnitudes they return wrong optima or fail
#: (measured: benchmarks/bench_hardening.py, docs/robustness.md). The compact models
#: are scaled exactly by the HiGHS adapter and have no such range.
ALGORITHM_ENERGY_RANGE = (1e-2, 1e9)


#: The largest energy per step (kWh) for which the fast path of time-separable models
#: (:class:`~recopt.solvers.highs.HighsStepLP`, not scaled) is taken; outside it the
#: plain path runs, which the HiGHS adapter scales exactly (``LPScaling``).
STEP_LP_ENERGY_RANGE = (1e-2, 1e7)


def peak_energy(inst) -> float:
    """The instance's largest consumption or production in one step (kWh)."""
    return max(float(np.abs(inst[v].values).max(initial=0.0))
               for v in ("consumption", "production"))


def check_algorithm_magnitude(inst, model: str, algorithm: str) -> None:
    """A ModelError when the instance's largest energy per step is outside
    :data:`ALGORITHM_ENERGY_RANGE` (a decomposition algorithm would not be exact)."""
    peak = peak_energy(inst)
    lo, hi = ALGORITHM_ENERGY_RANGE
    if peak and not lo <= peak <= hi:
        raise ModelError(
            f"{model} runs the decomposition algorithm {algorithm}, exact for instances "
            f"whose largest energy per step is between {lo:g} and {hi:g} kWh; this one's "
            f"is {peak:g} kWh. Check the unit (Wh or MWh given as kWh?), rescale the "
            "energies, or use a compact model (MLCol enumeration=all, MLCpct, SLCpct), "
            "which is solved at any magnitude")


def check_run_numbers(time_limit, mip_gap, threads, workers):
    """The run's numbers checked: ``time_limit`` > 0 finite (s), ``mip_gap`` >= 0 finite,
    ``threads`` and ``workers`` integers >= 1 (None: unset); a RecoptError names the
    first bad one."""
    if time_limit is not None:
        time_limit = check_time_limit(time_limit)
    if mip_gap is not None:
        try:
            gap = float(mip_gap)
        except (TypeError, ValueError):
            raise ModelError(f"mip_gap must be a number, got {mip_gap!r}") from None
        if not math.isfinite(gap) or gap < 0:
            raise ModelError(f"mip_gap must be a finite number >= 0 (relative gap), got "
                             f"{mip_gap!r}")
        mip_gap = gap
    out = []
    for name, value in (("threads", threads), ("workers", workers)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | np.integer) \
                    or int(value) < 1:
                raise ModelError(f"{name} must be an integer >= 1, got {value!r}")
            value = int(value)
        out.append(value)
    return time_limit, mip_gap, out[0], out[1]


def _solve_model(spec, inst, opts, run_opts, all_opts, *, solver, mip_gap, threads,
                 solver_options, time_limit, seed, workers, block_steps, pyomo_model,
                 t_start, deadline: Deadline, fast=True, scheduler=None) -> xr.Dataset:
    """The body of :func:`solve` once the options are resolved: the model's Result."""
    effective_solver_options = {**tuned_options(solver, spec.tuning), **(solver_options or {})}
    solver_kw = dict(solver=solver, mip_gap=mip_gap, threads=threads,
                     options=effective_solver_options or None)
    run: dict[str, Any] = dict(model=spec.name, solver=solver, options=all_opts,
                               solver_options=effective_solver_options, time_limit=time_limit,
                               mip_gap=mip_gap, threads=threads, seed=seed,
                               instance_hash=instance_hash(inst),
                               recopt_version=recopt_version())

    by_algorithm = spec.algorithm is not None and all(opts.get(k) == v
                                                      for k, v in spec.algorithm_if)
    algorithm = algorithms.get_algorithm(spec.algorithm) if by_algorithm else None
    takes = inspect.signature(algorithm).parameters if algorithm is not None else {}
    if scheduler is not None and "scheduler" not in takes:
        raise RecoptError(f"{spec.name} cannot use a Dask scheduler (--scheduler is for the "
                          "Benders models SLExt and MLColExt)")
    if algorithm is not None:
        check_algorithm_magnitude(inst, spec.name, str(spec.algorithm))
        parallel = {k: v for k, v in (("workers", workers), ("scheduler", scheduler))
                    if k in takes and v is not None}
        try:  # the algorithm gets what is left of the wall-clock limit (and the scope)
            solution, record = algorithm(inst, model=spec.name,
                                         time_limit=deadline.clip(time_limit), seed=seed,
                                         **solver_kw, **parallel,
                                         **opts)
        except (SolverUnavailableError, SolverError) as exc:
            # a missing solver, a failed solver, a Benders cut that is not tight: a status
            log.debug("algorithm failed", exc_info=True)
            status, message = _failure(exc)
            solution, record = None, RunRecord(status=status, message=message)
        record = record.replace(wall_seconds=time.perf_counter() - t_start, **run)
        return write_result(inst, solution, record)

    ncpu = os.cpu_count() or 1
    pool_by_size = workers is None  # the default: a pool only where it pays
    workers = ncpu if workers is None else max(1, int(workers))
    t_step = time.perf_counter()
    step_lp = (spec.step_lp(inst, **run_opts)
               if fast and str(solver).lower() == "highs" and pyomo_model is None
               and spec.separable == "time" and spec.step_lp is not None
               and STEP_LP_ENERGY_RANGE[0] <= peak_energy(inst) <= STEP_LP_ENERGY_RANGE[1]
               else None)
    if step_lp is not None:
        run["build_seconds"] = time.perf_counter() - t_step
        return _solve_steps(spec, inst, step_lp, run_opts, solver_kw, deadline.at, workers,
                            block_steps, run, t_start, pool_by_size)
    blocks = ([Block()] if pyomo_model is not None
              else time_blocks(inst, spec.separable, workers, block_steps))
    workers = min(workers, len(blocks))

    try:
        if len(blocks) == 1:
            parts = [solve_model_block(inst, spec, run_opts, solver_kw, deadline.at,
                                       pyomo_model)]
        else:  # a spec's callables need not be picklable: workers look it up by name
            parts = solve_blocks(solve_model_block, inst, blocks,
                                 (spec if workers == 1 else spec.name, run_opts, solver_kw,
                                  deadline.at), workers, desc=f"{spec.name} blocks")
    except (SolverUnavailableError, SolverError, BrokenProcessPool) as exc:
        log.debug("solve failed", exc_info=True)
        status, message = _failure(exc)
        record = RunRecord(status=status, message=message, blocks=len(blocks), workers=workers,
                           wall_seconds=time.perf_counter() - t_start, **run)
        return write_result(inst, None, record)

    record = block_record(parts, workers=workers, **run)
    t_extract = time.perf_counter()
    result = None
    if record.has_solution:
        solution = stitch(inst, blocks, cast(list[xr.Dataset], [p.solution for p in parts]))
        result = spec.derive(inst, solution, **run_opts) if spec.derive else solution
    if record.status == Status.INFEASIBLE and spec.diagnosis is not None:
        try:
            text, extra = algorithms.get_diagnosis(spec.diagnosis)(inst, solver, **run_opts)
            record = record.replace(message=text, extra=extra)
        except RecoptError as exc:  # the explanation is a bonus; keep the status
            log.warning("could not explain the infeasibility: %s", exc)
    record = record.replace(
        extract_seconds=record.extract_seconds + time.perf_counter() - t_extract,
        wall_seconds=time.perf_counter() - t_start)
    log.info("%s on %s: %s, objective %s, wall %.2f s", spec.name, solver, record.status.value,
             record.objective, record.wall_seconds)
    return write_result(inst, result, record)


def _solve_steps(spec, inst, step_lp, run_opts, solver_kw, deadline, workers, block_steps,
                 run, t_start, pool_by_size) -> xr.Dataset:
    """The fast path of a time-separable model (:func:`solve_step_blocks`): its Result."""
    length = step_block_length(inst, block_steps, step_lp)
    n_blocks = inst.sizes["scenario"] * math.ceil(inst.sizes["time"] / length)
    cells = inst.sizes["scenario"] * inst.sizes["time"] * inst.sizes["member"]
    if pool_by_size and cells < POOL_MIN_STEP_CELLS:  # a pool costs more than it saves
        workers = 1
    workers = min(workers, n_blocks)
    try:
        solution, record = solve_step_blocks(inst, spec, step_lp, run_opts, solver_kw,
                                             deadline, workers, length,
                                             desc=f"{spec.name} blocks")
    except (SolverUnavailableError, SolverError, BrokenProcessPool) as exc:
        log.debug("solve failed", exc_info=True)
        status, message = _failure(exc)
        record = RunRecord(status=status, message=message, blocks=n_blocks, workers=workers,
                           wall_seconds=time.perf_counter() - t_start, **run)
        return write_result(inst, None, record)
    build = run.pop("build_seconds")
    record = record.replace(build_seconds=record.build_seconds + build, **run)
    t_derive = time.perf_counter()
    result = None
    if record.has_solution and solution is not None:
        result = spec.derive(inst, solution, **run_opts) if spec.derive else solution
    record = record.replace(
        extract_seconds=record.extract_seconds + time.perf_counter() - t_derive,
        wall_seconds=time.perf_counter() - t_start)
    log.info("%s on highs (one block compiled, re-parameterised): %s, objective %s, "
             "wall %.2f s", spec.name, record.status.value, record.objective,
             record.wall_seconds)
    return write_result(inst, result, record)
