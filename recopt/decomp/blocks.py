"""Independent blocks of an instance, solved apart and stitched back: written once.

A block is a slice of scenarios and of time steps (a billing period's steps, for
the period models) on which a model is an independent problem; the model's value
is the sum over blocks, so solving the blocks apart and stitching the solutions is
exact. The runner solves time- and scenario-separable models this way
(:func:`time_blocks`); KoR9/KoR10 solve one (scenario, billing period) at a time
(:func:`period_blocks`). Both go through :func:`solve_blocks` (in worker processes
by :func:`recopt.decomp.parallel.map_in_workers`), :func:`stitch` and
:func:`block_record`.

A time-separable model that gives its one-step LP (``ModelSpec.step_lp``,
:class:`~recopt.models.step_lp.StepLP`) takes the fast path :func:`solve_step_blocks`:
one block is compiled once into HiGHS (:class:`~recopt.solvers.highs.HighsStepLP`)
and re-parameterised for every block of the same length from NumPy arrays, the
solutions go straight into ``(scenario, time, column)`` arrays; per worker process,
one contiguous run of steps.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import xarray as xr

from recopt.data.instance import billing_period_index
from recopt.data.schema import DIMS, SCENARIO, TIME
from recopt.data.view import coords_of
from recopt.decomp.parallel import map_in_workers
from recopt.models import registry
from recopt.models.step_lp import StepLP
from recopt.progress import progress
from recopt.solvers.dispatch import solve_pyomo
from recopt.solvers.highs import HighsStepLP
from recopt.solvers.outcome import SolveOutcome
from recopt.solvers.record import RunRecord
from recopt.solvers.status import Status

#: Target size of one block, in (scenario, step, member) cells: about 100 steps of
#: 100 members. HiGHS's simplex time grows faster than linearly with the block
#: (LP1 2880 x 100 in one process: 7.7 s of solver time in 2 blocks of 1440 steps,
#: 1.9 s in blocks of 192), while Pyomo build and compile time barely change.
BLOCK_CELLS = 10_000
#: Below this many cells, solving in one block in-process is faster than a pool.
POOL_MIN_CELLS = 40_000


@dataclass(frozen=True)
class Block:
    """Positions of one block: scenarios (a slice), steps (a slice or an index array)
    and, for billing-period blocks, the period's position (``period`` dim)."""

    scenario: slice = field(default_factory=lambda: slice(None))
    time: slice | np.ndarray = field(default_factory=lambda: slice(None))
    period: int | None = None

    @property
    def whole(self) -> bool:
        return (self.scenario == slice(None) and isinstance(self.time, slice)
                and self.time == slice(None))

    def of(self, instance: xr.Dataset) -> xr.Dataset:
        """The block's sub-instance (the instance itself for the whole block)."""
        return instance if self.whole else instance.isel(scenario=self.scenario,
                                                         time=self.time)


@dataclass
class BlockResult:
    """What solving one block gave: its solution (None without one), the solver
    outcomes (several for a lexicographic second stage), build and extract times."""

    solution: xr.Dataset | None
    outcomes: list[SolveOutcome] = field(default_factory=list)
    build_seconds: float = 0.0
    extract_seconds: float = 0.0


def time_blocks(instance: xr.Dataset, separable: str | None, workers: int,
                block_steps: int | None) -> list[Block]:
    """The blocks of a model that is separable by ``"time"``, ``"scenario"`` or not."""
    S, T, U = (instance.sizes[d] for d in DIMS)
    if separable is None:
        return [Block()]
    if separable == "scenario":
        if S == 1:
            return [Block()]
        return [Block(slice(s, s + 1)) for s in range(S)]
    # separable by time (and scenario)
    cells = S * T * U
    if block_steps is None:
        n = max(1, math.ceil(cells / BLOCK_CELLS))
        if cells >= POOL_MIN_CELLS and workers > 1:
            n = max(n, workers)
        n_time = max(1, math.ceil(n / S))
        block_steps = math.ceil(T / n_time)
    block_steps = max(1, int(block_steps))
    return [Block(slice(s, s + 1), slice(t, min(T, t + block_steps)))
            for s in range(S) for t in range(0, T, block_steps)]


def period_blocks(instance: xr.Dataset) -> list[Block]:
    """One block per (scenario, billing period), periods in chronological order."""
    per = np.asarray(billing_period_index(instance)).astype(int)
    return [Block(slice(s, s + 1), np.nonzero(per == k)[0], period=p)
            for s in range(instance.sizes[SCENARIO]) for p, k in enumerate(np.unique(per))]


def solve_blocks(fn: Callable[..., BlockResult], instance: xr.Dataset, blocks: list[Block],
                 args: tuple, workers: int, desc: str = "blocks") -> list[BlockResult]:
    """``[fn(block.of(instance), *args) for block in blocks]``, in ``workers`` processes
    (progress reported as ``desc``, one step per block)."""
    return map_in_workers(fn, [(b.of(instance), *args) for b in blocks], workers, desc)


def stitch(instance: xr.Dataset, blocks: list[Block],
           parts: list[xr.Dataset]) -> xr.Dataset:
    """Put the blocks' solutions back on the instance's dims (and ``period``).

    Variables on ``scenario`` / ``time`` / ``member`` take each block's slice;
    variables on ``(scenario, period)`` take one value per period block.
    """
    if len(parts) == 1 and blocks[0].whole:
        return parts[0]
    n_periods = max((b.period for b in blocks if b.period is not None), default=-1) + 1
    data = {}
    for name, var in parts[0].data_vars.items():
        shape = tuple(n_periods if d == "period" else instance.sizes[d] for d in var.dims)
        arr = (np.full(shape, np.nan) if "period" in var.dims
               else np.zeros(shape, dtype=var.dtype))
        for block, part in zip(blocks, parts, strict=True):
            key = tuple(block.scenario if d == SCENARIO else block.time if d == TIME
                        else slice(block.period, cast(int, block.period) + 1) if d == "period"
                        else slice(None) for d in var.dims)
            arr[key] = part[name].values
        data[name] = (var.dims, arr, var.attrs)
    return xr.Dataset(data, coords=coords_of(instance))


def block_record(parts: list[BlockResult], **fields) -> RunRecord:
    """The :class:`RunRecord` of solved blocks (objectives and bounds add up)."""
    return RunRecord.from_outcomes(
        [o for p in parts for o in p.outcomes],
        has_solution=all(p.solution is not None for p in parts),
        build_seconds=sum(p.build_seconds for p in parts),
        extract_seconds=sum(p.extract_seconds for p in parts),
        blocks=len(parts), **fields)


def solve_model_block(instance: xr.Dataset, spec, opts: dict, solver_kw: dict,
                      deadline: float | None, pyomo_model=None) -> BlockResult:
    """Build, solve and extract one block of a registered model.

    ``spec`` is a ModelSpec or, in a worker process, its registered name (a spec's
    callables need not be picklable). ``deadline``: ``time.time()`` at which the
    whole run's time limit ends.
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
            return BlockResult(None, [SolveOutcome(Status.TIME_LIMIT,
                                                   "time limit reached before this block")],
                               t1 - t0, 0.0)
        kw["time_limit"] = remaining
    outcome = solve_pyomo(model, **kw)
    t2 = time.perf_counter()
    solution = spec.extract(model, instance, **opts) if outcome.has_solution else None
    t3 = time.perf_counter()
    return BlockResult(solution, [outcome], t1 - t0, t3 - t2)


@dataclass
class StepRunResult:
    """What :func:`solve_step_run` gave: the columns' values on the run's steps
    ``(1, steps, n_col)`` (None without a solution in some block) and one
    :class:`SolveOutcome` per block."""

    x: np.ndarray | None
    outcomes: list[SolveOutcome]
    compile_seconds: float = 0.0


def solve_step_run(step_lp: StepLP, block_steps: int, solver_kw: dict,
                   deadline: float | None,
                   on_block: Callable[[], None] | None = None) -> StepRunResult:
    """Solve the steps of a one-scenario :class:`StepLP` in blocks of ``block_steps``,
    one HiGHS object per block length, re-parameterised per block; ``on_block`` is
    called after each block (the progress report of an in-process run)."""
    _, T = step_lp.shape
    kept: dict[int, HighsStepLP] = {}
    x = np.zeros((1, T, step_lp.n_col))
    outcomes: list[SolveOutcome] = []
    ok = True
    compile_seconds = 0.0
    for t0 in range(0, T, block_steps):
        t1 = min(T, t0 + block_steps)
        L = t1 - t0
        remaining = None
        if deadline is not None:
            remaining = deadline - time.time()
            if remaining <= 0:
                outcomes.append(SolveOutcome(Status.TIME_LIMIT,
                                             "time limit reached before this block"))
                ok = False
                continue
        if L not in kept:
            kept[L] = HighsStepLP(step_lp, L, threads=solver_kw.get("threads"),
                                  options=solver_kw.get("options"),
                                  mip_gap=solver_kw.get("mip_gap"))
            compile_seconds += kept[L].compile_seconds
        outcome, col = kept[L].solve(step_lp.block(0, t0, t1), remaining)
        outcomes.append(outcome)
        if on_block is not None:
            on_block()
        if col is None:
            ok = False
        else:
            x[0, t0:t1] = col.reshape(L, step_lp.n_col)
    return StepRunResult(x if ok else None, outcomes, compile_seconds)


def step_runs(step_lp: StepLP, workers: int) -> list[tuple[int, int, int]]:
    """``(scenario, t0, t1)``: contiguous runs of steps, one scenario each, about
    ``workers`` of them in all (at least one per scenario)."""
    S, T = step_lp.shape
    per = max(1, math.ceil(workers / S))
    size = math.ceil(T / per)
    return [(s, t, min(T, t + size)) for s in range(S) for t in range(0, T, size)]


def step_block_length(instance: xr.Dataset, block_steps: int | None,
                      step_lp: StepLP | None = None) -> int:
    """Steps per block of the fast path: ``block_steps``, else the StepLP's
    ``steps_per_block``, else about :data:`BLOCK_CELLS` cells (100 steps of 100
    members)."""
    if block_steps is not None:
        return max(1, int(block_steps))
    if step_lp is not None and step_lp.steps_per_block is not None:
        return max(1, min(instance.sizes[TIME], step_lp.steps_per_block))
    return max(1, min(instance.sizes[TIME], BLOCK_CELLS // max(1, instance.sizes["member"])))


def solve_step_blocks(instance: xr.Dataset, spec, step_lp: StepLP, opts: dict,
                      solver_kw: dict, deadline: float | None, workers: int,
                      block_steps: int, desc: str | None = None
                      ) -> tuple[xr.Dataset | None, RunRecord]:
    """The fast path of a time-separable model with a :class:`StepLP`: its solution on
    the instance (``spec.from_steps``) and the record of its blocks.

    ``step_lp`` is ``spec.step_lp(instance, **opts)``, its numbers computed once on
    the whole instance; each worker takes
    one contiguous run of steps (:func:`step_runs`) and solves it by
    :func:`solve_step_run`; the runs' columns are put back into one
    ``(scenario, time, column)`` array. ``desc`` names the progress report
    (:mod:`recopt.progress`): one step per block in one process, per run in workers.
    """
    t0 = time.perf_counter()
    runs = step_runs(step_lp, workers) if workers > 1 else [
        (s, 0, step_lp.shape[1]) for s in range(step_lp.shape[0])]
    jobs = [(step_lp.steps(s, a, b), block_steps, solver_kw, deadline) for s, a, b in runs]
    t1 = time.perf_counter()
    if workers > 1:
        parts = map_in_workers(solve_step_run, jobs, workers, desc=desc)
    else:  # one process: report every block
        n_blocks = sum(math.ceil((b - a) / block_steps) for _, a, b in runs)
        with progress(n_blocks, desc or "", "jobs", enabled=None if desc else False) as bar:
            parts = [solve_step_run(*job, on_block=bar.update) for job in jobs]
    t2 = time.perf_counter()
    outcomes = [o for p in parts for o in p.outcomes]
    if outcomes:  # the objective's constant, once
        first = outcomes[0]
        outcomes[0] = dataclasses.replace(first, objective=first.objective + step_lp.offset,
                                          bound=first.bound + step_lp.offset)
    has_solution = all(p.x is not None for p in parts)
    solution = None
    if has_solution:
        x = np.empty(step_lp.shape + (step_lp.n_col,))
        for (s, a, b), p in zip(runs, parts, strict=True):
            x[s:s + 1, a:b] = cast(np.ndarray, p.x)
        solution = spec.from_steps(instance, step_lp.scatter(x), **opts)
    t3 = time.perf_counter()
    record = RunRecord.from_outcomes(
        outcomes, has_solution=has_solution, build_seconds=t1 - t0,
        extract_seconds=t3 - t2, blocks=len(outcomes), workers=len(runs) if workers > 1 else 1)
    record = record.replace(compile_seconds=sum(p.compile_seconds for p in parts)
                            + record.compile_seconds, extra={"fast_path": "step_lp"})
    return solution, record
