"""Benders decomposition of a two-stage MILP whose second stage is an LP.

Used by SLExt and MLColExt (Chasseray et al., arXiv 2404.04428, Models 3-5 and
10-11; reconstruction in ``docs/reconstruction/loop-design.md``; model card
``models/SLExt-MLColExt.md``), but knows nothing about loops: it works on any
:class:`TwoStage` problem given as Pyomo models and on any solver
:func:`recopt.solvers.solve_pyomo` can call that returns LP duals.

The problem
-----------
``min_x  Σ_b Φ_b(x)  s.t. x in X`` (the *master* constraints, integer ``x``), where
block ``b``'s value ``Φ_b(x) = min { c_b·y : W_b y (sense) h_b − H_b x, y >= 0 }`` is an
LP in which ``x`` enters only the right-hand sides. The second stage is given as one
Pyomo model holding every block (block-diagonal) in which the first stage appears as
**fixed Vars**; each row and column of the second stage names its block through its
index (``block_of``). The second stage must have no finite variable bounds other
than ``y >= 0`` (state implied bounds as rows or leave them out): then LP duality
reads ``Φ_b(x̄) = Σ_{r in b} λ_r (h_r − H_r x̄)`` over the rows alone.

The algorithm (multi-cut L-shaped method)
-----------------------------------------
* set-up: the second stage is compiled once with the first stage *free*
  (Pyomo's ``LinearStandardFormCompiler``), which gives every row's ``h_r`` and the
  matrix ``H`` of its first-stage coefficients;
* master: the first-stage model plus one ``θ_b >= θ_b^low`` per block (or one θ per
  group of blocks with ``cuts="grouped"``, one for all with ``cuts="aggregated"``; a
  group's cut is the sum of its blocks' cuts), objective ``Σ θ``; solved as a MILP, warm-started
  from the incumbent ``(x*, θ = Φ(x*))``; its proven bound is the lower bound LB;
* sub-problem: all blocks at the master point ``x̄`` as one LP (the fixed Vars take
  ``x̄``), duals read per row through the model's ``dual`` Suffix;
* cut of block ``b``: ``θ_b >= Σ_{r in b} λ_r (h_r − H_r x)``; **every cut is checked
  tight at its generating point** (value at ``x̄`` = ``Φ_b(x̄)`` from the primal
  solution, within ``check_tolerance``); a failed check raises :class:`CutError` —
  it is how a dual-sign mistake of any solver interface shows up;
* only cuts violated at the master's ``θ̄`` are added; UB = best ``Σ_b Φ_b(x̄)``;
  stop when ``(UB − LB) / max(1, |UB|) <= gap``, at the iteration or time limit.

Pareto-optimal cuts (``pareto=True``): Magnanti & Wong (1981) ask, among the
optimal duals at ``x̄``, for one maximising the cut at a core point ``x⁰`` (relative
interior of the first stage's convex hull). Because the dual feasible region does
not depend on ``x``, the duals of the sub-problem at ``x^ε = (1−ε) x̄ + ε x⁰`` are,
for small ε, such a dual (the rhs ``h − H x^ε`` is ``(r̄ + μ r⁰)/(1+μ)``, the
perturbation of Sherali & Lunday 2013); we check the resulting cut tight at ``x^ε``
(error if not) *and* at ``x̄`` (falling back to the plain cut of that block if ε was
too large). It costs a second sub-problem solve per iteration.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from recopt.decomp.parallel import DaskWorkers, LocalWorkers, StatefulWorkers
from recopt.errors import ModelError, SolverError
from recopt.lazy import pyomo_module
from recopt.progress import progress
from recopt.solvers.dispatch import solve_pyomo
from recopt.solvers.highs import HighsParametricLP, compile_standard_form
from recopt.solvers.status import Status

if TYPE_CHECKING:
    import pyomo.environ as pyo
    import pyomo.repn as pyomo_repn
else:
    pyo = pyomo_module("pyomo.environ")
    pyomo_repn = pyomo_module("pyomo.repn")

log = logging.getLogger("recopt.benders")

CUT_FORMS = ("multi", "grouped", "aggregated")


class CutError(SolverError):
    """A Benders cut is not tight at the point that generated it (wrong duals)."""


class TwoStage:
    """A two-stage problem as :func:`solve_benders` needs it.

    Attributes
    ----------
    master : pyomo ConcreteModel
        First-stage variables and constraints, no objective (θ, cuts and the
        objective are added to it).
    first_stage : list of VarData
        The master's first-stage variables, in a fixed order.
    sub : pyomo ConcreteModel
        The second stage of every block, one objective (the sum of the blocks'
        values), the first stage as Vars (fixed by the algorithm). Given, or built on
        first use by ``build_sub``.
    sub_first_stage : list of VarData
        The sub-problem's first-stage Vars, in the order of ``first_stage``.
    block_of : callable
        ``index -> block key`` for the index of every second-stage row and column.
    theta_lower : dict
        ``block key -> valid lower bound`` of ``Φ_b`` (the θ's bounds).
    core_point : numpy array, optional
        A point of the relative interior of the first stage's convex hull at which
        the sub-problem is feasible (Pareto cuts).
    initial_point : numpy array, optional
        A feasible first stage evaluated before the first master solve (first UB
        and cuts).
    constant : float
        Objective part independent of every decision (blocks left out), added to UB,
        LB and the master's objective.
    group_of : callable, optional
        ``block key -> group key`` for ``cuts="grouped"`` (one θ and cut per group).
    coupling_rows : tuple of str, optional
        Names of the sub-problem's Constraint components that hold first-stage
        variables (every other row must hold none). Given, :class:`SecondStage`
        compiles the sub-problem with the first stage fixed at 0 and reads ``H`` row
        by row from those components alone: the compile then holds no first-stage
        term (MLColExt: its memory no longer grows with the number of loops, issue
        19). None: the first stage is unfixed for the compile and ``H`` is read from
        the compiled matrix.
    build_sub : callable, optional
        ``() -> (sub, sub_first_stage)``: builds the Pyomo second stage when ``sub``
        is first read (not given: ``sub`` must be).
    matrix : callable, optional
        ``() -> arrays``: the second stage's standard form assembled without Pyomo
        (``A``, ``H``, ``h``, ``sense``, ``cost``, ``offset``, ``row_block``,
        ``col_block``, ``blocks``, ``n_rows``, ``n_columns``; e.g.
        :class:`recopt.models.loops.arrays.SecondStageMatrix`), exactly what
        :class:`SecondStage` reads from the compiled ``sub`` (rows in its order,
        columns permuted). Used instead of the compile on the HiGHS persistent route
        (:func:`array_route`); the Pyomo ``sub`` is then never built.
    """

    def __init__(self, master, first_stage: list, sub=None, sub_first_stage=None, *,
                 block_of: Callable[[tuple], Hashable], theta_lower: dict,
                 core_point: np.ndarray | None = None,
                 initial_point: np.ndarray | None = None, constant: float = 0.0,
                 group_of: Callable[[Hashable], Hashable] | None = None,
                 coupling_rows: tuple[str, ...] | None = None,
                 build_sub: Callable[[], tuple] | None = None,
                 matrix: Callable[[], Any] | None = None):
        if sub is None and build_sub is None:
            raise ModelError("a TwoStage problem needs its second stage: sub or build_sub")
        self.master = master
        self.first_stage = first_stage
        self._sub = sub
        self._sub_first_stage = sub_first_stage
        self.block_of = block_of
        self.theta_lower = theta_lower
        self.core_point = core_point
        self.initial_point = initial_point
        self.constant = constant
        self.group_of = group_of
        self.coupling_rows = coupling_rows
        self.build_sub = build_sub
        self.matrix = matrix

    def _built(self) -> None:
        if self._sub is None:
            assert self.build_sub is not None  # checked in __init__
            self._sub, self._sub_first_stage = self.build_sub()

    @property
    def sub(self):
        """The Pyomo second stage (built on first use when ``build_sub`` is given)."""
        self._built()
        return self._sub

    @property
    def sub_first_stage(self) -> list:
        """The sub-problem's first-stage Vars, in the order of ``first_stage``."""
        self._built()
        return list(self._sub_first_stage or [])

    @property
    def sub_is_built(self) -> bool:
        """Whether the Pyomo second stage exists (given or built)."""
        return self._sub is not None


def array_route(problem: TwoStage, opts: BendersOptions) -> bool:
    """Whether :class:`SecondStage` takes ``problem.matrix`` instead of compiling the
    Pyomo sub-problem: the problem gives one and the sub-problem is kept in HiGHS
    (``solver="highs"``, ``persistent``), the route that needs only arrays."""
    return (problem.matrix is not None and opts.solver.lower() == "highs"
            and opts.persistent)


@dataclass
class BendersOptions:
    """Stopping rules and variants of :func:`solve_benders`.

    ``gap`` is relative: ``(UB − LB) / max(1, |UB|)``. ``master_gap`` is the MIP gap
    asked of each master solve (default ``gap / 10``; the master's proven bound is
    the LB whatever it is). ``time_limit`` in seconds covers set-up, masters and
    sub-problems.
    """

    solver: str = "highs"
    gap: float = 1e-4
    master_gap: float | None = None
    max_iterations: int = 500
    time_limit: float | None = None
    threads: int | None = None
    cuts: str = "multi"
    pareto: bool = False
    pareto_epsilon: float = 1e-3
    check_tolerance: float = 1e-6
    master_options: dict | None = None
    sub_options: dict | None = None
    progress: bool | None = None
    """Progress report (:mod:`recopt.progress`: a bar on a terminal, log lines
    otherwise); ``None``: unless the command is quiet; False: none."""
    core_cuts: bool = True
    """Before the first master, also add the cuts of the sub-problem at the problem's
    core point (when it gives one)."""
    persistent: bool = True
    """HiGHS only: keep the sub-problem LP in HiGHS between iterations (see
    :meth:`SecondStage.solve`); False re-solves the Pyomo model each time."""
    workers: int = 1
    """HiGHS, persistent: split the sub-problem's blocks into this many parts, each
    kept in its own worker process (:class:`~recopt.decomp.parallel.StatefulWorkers`)
    and solved at the same time; the master stays in this process."""
    scheduler: str | None = None
    """HiGHS, persistent: the address of a Dask scheduler; the sub-problem's parts
    (``max(workers, 2)`` of them) are solved as tasks on its workers
    (:class:`~recopt.decomp.parallel.DaskWorkers`)."""
    parts: int | None = None
    """HiGHS, persistent, one worker: split the sub-problem's blocks into this many
    parts, each kept in its own HiGHS object in this process and solved one after
    the other (:class:`~recopt.decomp.parallel.LocalWorkers`): the same LP as
    independent smaller LPs. None: about one part per :data:`SUB_ROWS_PER_PART` rows
    (one LP when the blocks cannot be told apart)."""


@dataclass
class BendersResult:
    """What :func:`solve_benders` found; times in seconds, values in the objective's units."""

    status: Status
    message: str
    upper_bound: float
    lower_bound: float
    gap: float
    iterations: int
    n_cuts: int
    best_point: np.ndarray | None
    setup_seconds: float = 0.0
    master_seconds: float = 0.0
    sub_seconds: float = 0.0
    cut_seconds: float = 0.0
    pareto_cuts: int = 0
    history: list[dict] = field(default_factory=list)
    n_blocks: int = 0
    solver_version: str = ""
    second_stage: SecondStage | None = None
    """Holds the sub-problem; ``second_stage.load(best_point, options)`` puts the best
    point's second stage into its Pyomo Vars."""

    @property
    def has_solution(self) -> bool:
        return self.best_point is not None


# --------------------------------------------------------------------------------------
# the second stage, compiled once
# --------------------------------------------------------------------------------------
def _coupling_matrix(rows: list, components: tuple[str, ...], first: list,
                     pos: dict) -> sp.csr_matrix:
    """``H`` (rows x first stage): the first-stage coefficients of the bodies of the
    ``rows`` that belong to ``components``, one row's linear representation at a time
    (Pyomo's :func:`generate_standard_repn`, the compiler's own reading of a body)."""
    names = set(components)
    r_idx: list[int] = []
    c_idx: list[int] = []
    vals: list[float] = []
    for v in first:
        v.unfix()
    try:
        for r, con in enumerate(rows):
            if con.parent_component().local_name not in names:
                continue
            repn = pyomo_repn.generate_standard_repn(con.body, compute_values=True, quadratic=False)
            for var, coef in zip(repn.linear_vars, repn.linear_coefs, strict=True):
                k = pos.get(id(var), -1)
                if k >= 0 and coef != 0:
                    r_idx.append(r)
                    c_idx.append(k)
                    vals.append(float(coef))
    finally:
        for v in first:
            v.fix()
    return sp.csr_matrix((np.asarray(vals, float), (np.asarray(r_idx, np.int64),
                                                    np.asarray(c_idx, np.int64))),
                         shape=(len(rows), len(first)))


class _PartLPs:
    """Independent parts of a sub-problem, each kept in HiGHS (one worker's share of
    :meth:`SecondStage._solve_parts`); :meth:`solve` takes one rhs per part."""

    def __init__(self, pieces, threads=None, options=None):
        self._lps = [HighsParametricLP(A, c, sense, threads=threads, options=options)
                     for A, c, sense in pieces]

    def solve(self, rhs_list, time_limit=None) -> list:
        return [lp.solve(r, time_limit) for lp, r in zip(self._lps, rhs_list, strict=True)]


#: The one-process HiGHS route splits the sub-problem into parts of about this many
#: rows (``BendersOptions.parts=None``): the same LP as independent smaller LPs, each
#: kept warm in its own HiGHS object. MLColExt 100 actors x 180 days (699,570 rows,
#: 2251 blocks), three sub-problem solves: 36.0 s as one LP, 15.6 s in 4 parts, 9.9 s
#: in 64 (model card ``models/SLExt-MLColExt.md``, choice 15).
SUB_ROWS_PER_PART = 10_000


class SecondStage:
    """The sub-problem and its rows' affine dependence on the first stage.

    ``rows[r]`` is a ConstraintData, ``h[r]`` its constant right-hand side,
    ``H[r, k]`` the coefficient of first-stage variable ``k`` in its body (so the
    right-hand side at ``x`` is ``h − H x``), ``row_block[r]`` its block position.
    """

    def __init__(self, problem: TwoStage, matrix=None):
        self._lp: HighsParametricLP | None = None  # HiGHS kept between solves (see solve)
        self._workers: StatefulWorkers | DaskWorkers | LocalWorkers | None = None  # parts
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.best: tuple[np.ndarray, np.ndarray] | None = None  # (x, y) of the incumbent
        self.solver_version = ""
        self._n_local: int | None = None  # parts of the one-process route (_local_parts)
        self._groups: list[list[int]] = []  # parts held by each worker (_solve_parts)
        if matrix is not None:
            self._from_matrix(matrix)
            return
        sub = problem.sub
        self.model = sub
        self.matrix = None
        self.first: list | None = list(problem.sub_first_stage)
        if not hasattr(sub, "dual"):
            sub.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        pos = {id(v): k for k, v in enumerate(self.first)}
        coupled = problem.coupling_rows
        if coupled is None:
            for v in self.first:
                v.unfix()
            try:
                sf = compile_standard_form(sub)
            finally:
                for v in self.first:
                    v.fix()
        else:  # the first stage as constants 0: the rows' constants are h, H comes after
            values = [v.value for v in self.first]
            for v in self.first:
                v.fix(0.0)
            try:
                sf = compile_standard_form(sub)
            finally:
                for v, val in zip(self.first, values, strict=True):
                    v.fix(val)
        col_first = np.array([pos.get(id(v), -1) for v in sf.columns])
        second = np.nonzero(col_first < 0)[0]
        first = np.nonzero(col_first >= 0)[0]
        A = sf.A.tocsc()
        self.rows: list | None = [row.constraint for row in sf.rows]
        if len({id(c) for c in self.rows}) != len(self.rows):
            raise ModelError("a second-stage constraint is ranged (two rows); Benders needs "
                             "one row per constraint to read its dual")
        self.h = np.asarray(sf.rhs, dtype=float)
        if coupled is None:
            # H[:, k] = column of A for first-stage variable k (zero if it is in no row)
            place = sp.csr_matrix((np.ones(len(first)),
                                   (np.arange(len(first)), col_first[first])),
                                  shape=(len(first), len(self.first)))
            self.H = (A[:, first] @ place).tocsr()
        else:
            self.H = _coupling_matrix(self.rows, coupled, self.first, pos)
        for j in second:
            lb, ub = sf.columns[j].bounds
            if ub is not None or (lb is not None and lb != 0):
                raise ModelError(
                    f"second-stage variable {sf.columns[j].name} has bounds {(lb, ub)}; "
                    "Benders cuts need y >= 0 only (build the sub-problem with "
                    "bounded=False)")
        self.columns: list | None = [sf.columns[j] for j in second]
        self.A = A[:, second]
        self.sense = np.fromiter((row.bound_type for row in sf.rows), dtype=np.int8,
                                 count=len(sf.rows))
        c = sf.c.toarray().ravel() if sf.c.shape[0] else np.zeros(len(sf.columns))
        self.cost = c[second]
        self.offset = float(sf.c_offset[0]) if len(sf.c_offset) else 0.0
        if not np.allclose(c[first], 0.0):
            raise ModelError("the first stage has a cost in the sub-problem's objective; "
                             "put it in the master")
        keys: dict[Hashable, int] = {}
        self.row_block = np.array([keys.setdefault(problem.block_of(con.index()), len(keys))
                                   for con in self.rows], dtype=np.int64)
        self.col_block = np.array([keys.setdefault(problem.block_of(v.index()), len(keys))
                                   for v in self.columns], dtype=np.int64)
        self.blocks = list(keys)
        self.n_rows, self.n_columns = len(self.rows), len(self.columns)
        self._block_sums()

    def _from_matrix(self, M) -> None:
        """The second stage given as arrays (``TwoStage.matrix``): no Pyomo model; the
        rows and columns are positions (``model``, ``first``, ``rows``, ``columns``
        are None)."""
        self.model = None
        self.first = None
        self.rows = self.columns = None
        self.matrix = M
        self.A = sp.csc_matrix(M.A)
        self.H = sp.csr_matrix(M.H)
        self.h = np.asarray(M.h, dtype=float)
        self.sense = np.asarray(M.sense, dtype=np.int8)
        self.cost = np.asarray(M.cost, dtype=float)
        self.offset = float(M.offset)
        self.row_block = np.asarray(M.row_block, dtype=np.int64)
        self.col_block = np.asarray(M.col_block, dtype=np.int64)
        self.blocks = list(M.blocks)
        self.n_rows, self.n_columns = self.A.shape
        if self.H.shape[0] != self.n_rows or len(self.h) != self.n_rows:
            raise ModelError(f"the second stage's arrays disagree: A has {self.n_rows} rows, "
                             f"H {self.H.shape[0]}, h {len(self.h)}")
        self._block_sums()

    @property
    def n_first(self) -> int:
        """Number of first-stage variables (columns of ``H``)."""
        return int(self.H.shape[1])

    def _block_sums(self) -> None:
        nb, nr = len(self.blocks), self.n_rows
        self.B = sp.csr_matrix((np.ones(nr), (self.row_block, np.arange(nr))), shape=(nb, nr))

    def rhs(self, x: np.ndarray) -> np.ndarray:
        return self.h - self.H @ x

    def solve(self, x: np.ndarray, opts: BendersOptions, time_limit):
        """``(phi, lam, y, status, message)``: Φ per block (from the primal solution),
        the rows' duals and the second-stage values; ``phi`` is None at a time limit.

        With ``solver="highs"`` and ``opts.persistent`` the LP is kept in HiGHS and only
        its right-hand sides ``h − H x`` change (warm-started dual simplex, nothing
        recompiled); otherwise the sub-problem's first-stage Vars are fixed at ``x``
        and the Pyomo model is solved by :func:`solve_pyomo`, duals read from its
        ``dual`` Suffix. Both give the same Φ and valid duals (tested).
        """
        if not self.n_rows:  # every block was left out: nothing depends on x here
            return np.zeros(0), np.zeros(0), np.zeros(0), Status.OPTIMAL, "empty"
        if self.model is None and not (opts.solver.lower() == "highs" and opts.persistent):
            raise ModelError("this second stage was built as arrays (TwoStage.matrix): it "
                             "solves with HiGHS kept between solves only; build it from "
                             "the Pyomo model for solver "
                             f"{opts.solver!r}, persistent={opts.persistent}")
        if opts.solver.lower() == "highs" and opts.persistent and (
                opts.workers > 1 or opts.scheduler or self._local_parts(opts) > 1):
            status, message, y, lam = self._solve_parts(self.rhs(x), opts, time_limit)
        elif opts.solver.lower() == "highs" and opts.persistent:
            if self._lp is None:
                self._lp = HighsParametricLP(self.A, self.cost, self.sense,
                                             threads=opts.threads, options=opts.sub_options)
                self.solver_version = self._lp.version
            status, message, y, lam, _ = self._lp.solve(self.rhs(x), time_limit)
        else:
            assert self.first is not None and self.rows is not None \
                and self.columns is not None  # a Pyomo stage (checked above)
            for v, val in zip(self.first, x.tolist(), strict=True):
                v.fix(val)
            out = solve_pyomo(self.model, opts.solver, time_limit=time_limit,
                              threads=opts.threads, options=opts.sub_options)
            self.solver_version = out.solver_version
            status, message = out.status, out.message
            if status == Status.OPTIMAL:
                dual = self.model.dual
                try:
                    lam = np.fromiter((dual[c] for c in self.rows), dtype=float,
                                      count=len(self.rows))
                except KeyError as exc:
                    raise SolverError(
                        f"solver {opts.solver} returned no dual for row {exc}; Benders "
                        "needs an LP solver that returns duals") from None
                y = np.fromiter((0.0 if v.value is None else v.value for v in self.columns),
                                dtype=float, count=len(self.columns))
        if status == Status.TIME_LIMIT:
            return None, None, None, status, message
        if status != Status.OPTIMAL:
            raise SolverError(
                f"the Benders sub-problem is {status.value} at a master point "
                f"({message}); the master misses a condition that makes the second "
                "stage feasible, or the solver failed")
        phi = np.bincount(self.col_block, weights=self.cost * y, minlength=len(self.blocks))
        return phi, lam, y, status, message

    def _local_parts(self, opts: BendersOptions) -> int:
        """How many parts the one-process HiGHS route splits the LP into (see
        ``BendersOptions.parts``); decided at the first solve and kept."""
        if self._n_local is None:
            n = opts.parts
            if n is None:  # about SUB_ROWS_PER_PART rows a part, if the blocks allow it
                n = max(1, min(len(self.blocks), round(self.n_rows / SUB_ROWS_PER_PART)))
                if n > 1:
                    try:
                        self.parts(n)
                    except ModelError:
                        n = 1
            self._n_local = max(1, int(n))
        return self._n_local

    def parts(self, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(rows, columns)`` of ``n`` parts of contiguous blocks with about as many
        rows each; a part's rows use only its own columns (the blocks are independent
        given x: checked, a ModelError otherwise)."""
        n = max(1, min(int(n), len(self.blocks)))
        cuts = np.searchsorted(np.cumsum(np.bincount(self.row_block,
                                                     minlength=len(self.blocks))),
                               np.linspace(0, self.n_rows, n + 1)[1:-1], side="left")
        edges = np.r_[0, cuts + 1, len(self.blocks)]
        part_of_block = np.zeros(len(self.blocks), dtype=np.int64)
        for k in range(n):
            part_of_block[edges[k]:edges[k + 1]] = k
        row_part = part_of_block[self.row_block]
        col_part = part_of_block[self.col_block]
        coo = self.A.tocoo()
        if (row_part[coo.row] != col_part[coo.col]).any():
            raise ModelError("the sub-problem's blocks share columns; they cannot be solved "
                             "apart (workers=1)")
        return [(np.nonzero(row_part == k)[0], np.nonzero(col_part == k)[0])
                for k in range(n) if (row_part == k).any() or (col_part == k).any()]

    def _solve_parts(self, rhs: np.ndarray, opts: BendersOptions, time_limit):
        """The sub-problem solved as independent parts: kept in this process one after
        the other (``parts``), in worker processes (``workers``: each holds a run of
        consecutive parts, as many as the one-process rule would make, at least one)
        or rebuilt per call on Dask workers: ``(status, message, y, lam)``."""
        processes = opts.workers > 1 and not opts.scheduler
        if self._workers is None:
            if opts.scheduler:
                n = max(2, opts.workers)
            elif processes:
                n = max(opts.workers, self._local_parts(opts))
            else:
                n = self._local_parts(opts)
            self._parts = self.parts(n)
            A = self.A.tocsr()
            pieces = [(A[rows][:, cols].tocsc(), self.cost[cols], self.sense[rows])
                      for rows, cols in self._parts]
            kw = {"threads": opts.threads, "options": opts.sub_options}
            if processes:
                n_w = min(opts.workers, len(pieces))
                edges = np.linspace(0, len(pieces), n_w + 1).round().astype(int)
                self._groups = [list(range(edges[k], edges[k + 1])) for k in range(n_w)]
                self._workers = StatefulWorkers([(_PartLPs, ([pieces[i] for i in g],), kw)
                                                 for g in self._groups])
            else:
                self._groups = [[i] for i in range(len(pieces))]
                states = [(HighsParametricLP, piece, kw) for piece in pieces]
                self._workers = (DaskWorkers(opts.scheduler, states) if opts.scheduler
                                 else LocalWorkers(states))
        if processes:
            nested = self._workers.call("solve", [
                ([rhs[self._parts[i][0]] for i in g], time_limit) for g in self._groups])
            answers = [a for group in nested for a in group]
        else:
            answers = self._workers.call("solve", [(rhs[rows], time_limit)
                                                   for rows, _ in self._parts])
        y = np.zeros(self.n_columns)
        lam = np.zeros(self.n_rows)
        status, message = Status.OPTIMAL, ""
        for (rows, cols), (st, msg, y_k, lam_k, _) in zip(self._parts, answers, strict=True):
            if st != Status.OPTIMAL:
                status, message = st, msg
                continue
            y[cols] = y_k
            lam[rows] = lam_k
        self.solver_version = self.solver_version or "highs"
        return status, message, y, lam

    def close(self) -> None:
        """Stop the worker processes of :meth:`_solve_parts` (if any)."""
        if self._workers is not None:
            self._workers.close()
            self._workers = None

    def release(self) -> None:
        """Stop the workers and drop the arrays and HiGHS objects (``A``, ``H``, ``B``,
        the kept LPs, the incumbent's values): what a caller that has read the
        incumbent's second stage no longer needs (the counts ``n_rows``,
        ``n_columns`` stay). MLColExt with all loops frees them before building its
        Result (issue 19)."""
        self.close()
        self._lp = None
        self._parts = []
        self.best = None
        empty = sp.csr_matrix((0, 0))
        self.A = self.H = self.B = empty
        self.h = self.cost = np.zeros(0)

    def values(self, x: np.ndarray, opts: BendersOptions) -> np.ndarray:
        """The second stage's values ``y`` at ``x`` (the incumbent's when ``x`` is the
        incumbent, else solved again)."""
        if self.best is not None and np.array_equal(self.best[0], x):
            return self.best[1]
        return self.solve(x, opts, None)[2]

    def load(self, x: np.ndarray, opts: BendersOptions) -> np.ndarray:
        """Leave the second stage at ``x`` in the sub-problem's Vars (the incumbent's
        solution when ``x`` is the incumbent, else solved again); returns ``y``. An
        array-built stage has no Vars: only ``y`` is returned."""
        y = self.values(x, opts)
        if self.model is None:
            return y
        assert self.first is not None and self.columns is not None  # a Pyomo stage
        for v, val in zip(self.first, x.tolist(), strict=True):
            v.fix(val)
        for v, val in zip(self.columns, y.tolist(), strict=True):
            v.set_value(val, skip_validation=True)
        return y

    def cuts(self, lam: np.ndarray):
        """Per block: constant ``Σ λ h`` and coefficients ``−(λ ∘ H)`` summed per block."""
        const = np.bincount(self.row_block, weights=lam * self.h, minlength=len(self.blocks))
        return const, self.cut_coefficients(lam)  # θ_b >= const_b + coef_b·x

    def cut_coefficients(self, lam: np.ndarray, group: np.ndarray | None = None,
                         n_groups: int | None = None,
                         keep: np.ndarray | None = None) -> sp.csr_matrix:
        """``−Σ_{r in g} λ_r H_r`` for every group ``g`` of blocks (``group``: each
        block's group, ``n_groups`` of them; without: one per block), as the product
        ``(−R_λ) H`` with ``R_λ`` (groups x rows) holding ``λ_r`` at (group of r, r):
        neither ``λ ∘ H`` nor the per-block cuts are formed (MLColExt with all loops,
        issue 19: ``H`` holds about 1230 entries per loop). ``keep`` (per group): only
        these groups' rows (the others empty)."""
        nr = self.n_rows
        g = self.row_block if group is None else np.asarray(group)[self.row_block]
        ng = len(self.blocks) if group is None else int(n_groups or 0)
        use = lam != 0
        if keep is not None:
            use &= np.asarray(keep, bool)[g]
        r = np.nonzero(use)[0]
        R = sp.csr_matrix((-lam[r], (g[r], r)), shape=(ng, nr))
        return (R @ self.H).tocsr()

    def check(self, lam, x, phi, tol):
        """Every block's cut value at ``x`` against ``phi``: the per-block misfit."""
        terms = lam * self.rhs(x)
        value = np.bincount(self.row_block, weights=terms, minlength=len(self.blocks))
        scale = np.bincount(self.row_block, weights=np.abs(terms), minlength=len(self.blocks))
        err = np.abs(value - phi)
        bad = err > tol * (1.0 + scale + np.abs(phi))
        return value, err, bad


# --------------------------------------------------------------------------------------
# the algorithm
# --------------------------------------------------------------------------------------
#: Loosest MIP gap asked of a master while the Benders gap is wide.
MASTER_GAP_CAP = 1e-2


def _gap(ub: float, lb: float) -> float:
    """Relative gap ``(UB − LB) / max(1, |UB|)`` (inf without both bounds)."""
    if not (math.isfinite(ub) and math.isfinite(lb)):
        return math.inf
    return (ub - lb) / max(1.0, abs(ub))


def _clean(master_vars, x: np.ndarray) -> np.ndarray:
    """The master's point with integer variables rounded, solver noise (1e-6) around
    integers removed and every value clipped to its variable's bounds."""
    out = np.where(np.abs(x - np.round(x)) < 1e-6, np.round(x), x)
    for k, v in enumerate(master_vars):
        if v.is_integer():
            out[k] = round(out[k])
        lb, ub = v.bounds
        if lb is not None and out[k] < lb:
            out[k] = lb
        if ub is not None and out[k] > ub:
            out[k] = ub
    return out


class Benders:
    """Benders decomposition of ``problem`` as an object whose steps can be driven.

    ``Benders(problem, options)`` does the set-up (the second stage compiled once, θ,
    the cut list and the objective added to the master); then

    * :meth:`evaluate` ``(x, theta_bar)`` solves the sub-problem at a first-stage
      point, checks every cut tight at it (:class:`CutError` otherwise), adds the
      cuts violated at ``theta_bar`` (all when None) and updates the incumbent (UB);
    * :meth:`solve_master` ``(mip_gap)`` solves the master (warm-started from the
      incumbent), raises LB to its proven bound and returns ``(outcome, x, theta)``;
    * :meth:`add_cuts` adds given cut coefficients (what :meth:`evaluate` calls);
    * :meth:`run` is the whole algorithm (the stopping rules of the module docstring),
      and :func:`solve_benders` is ``Benders(problem, options).run()``.

    ``result`` (a :class:`BendersResult`) holds the bounds, the incumbent, counts and
    the per-iteration ``history`` as the steps go.
    """

    def __init__(self, problem: TwoStage, options: BendersOptions | None = None):
        opts = options or BendersOptions()
        if opts.cuts not in CUT_FORMS:
            raise ModelError(f"cuts must be one of {', '.join(CUT_FORMS)}; got {opts.cuts!r}")
        self.problem = problem
        self.options = opts
        t_start = time.perf_counter()
        self.deadline = None if opts.time_limit is None else t_start + float(opts.time_limit)
        matrix = problem.matrix() if problem.matrix is not None and array_route(
            problem, opts) else None
        sub = SecondStage(problem, matrix)
        self.sub = sub
        nb = len(sub.blocks)
        master = problem.master
        self.master = master
        self.xs = list(problem.first_stage)
        if len(self.xs) != sub.n_first:
            raise ModelError("first_stage and sub_first_stage differ in length")
        lows = np.array([problem.theta_lower[b] for b in sub.blocks], dtype=float)
        # θ groups: one per block (multi-cut), one for all (aggregated) or the problem's
        # groups of blocks (grouped, e.g. the hours of a day); a group's cut is the sum
        # of its blocks' cuts
        if opts.cuts == "multi":
            group = np.arange(nb)
        elif opts.cuts == "aggregated":
            group = np.zeros(nb, dtype=np.int64)
        else:
            if problem.group_of is None:
                raise ModelError("cuts='grouped' needs the problem's group_of")
            gkeys: dict[Hashable, int] = {}
            group = np.array([gkeys.setdefault(problem.group_of(b), len(gkeys))
                              for b in sub.blocks], dtype=np.int64)
        ng = int(group.max()) + 1 if nb else 0
        self.group = group  # each block's θ group
        self.to_group = sp.csr_matrix((np.ones(nb), (group, np.arange(nb))), shape=(ng, nb))
        self.theta_keys = list(range(ng))
        theta_low = (self.to_group @ lows).tolist()
        self.theta_low = theta_low
        master.BENDERS_THETA = pyo.Set(initialize=self.theta_keys, ordered=True)
        master.theta = pyo.Var(master.BENDERS_THETA,
                               bounds=lambda m, k: (theta_low[k], None),
                               doc="θ: value of a group of blocks' second stage (multi-cut: "
                                   "one block)")
        master.benders_cuts = pyo.ConstraintList(doc="(B-CUT) θ >= Σ_r λ_r (h_r − H_r x)")
        self.constant = float(problem.constant) + sub.offset
        master.benders_objective = pyo.Objective(
            expr=pyo.quicksum(master.theta.values()) + self.constant, sense=pyo.minimize,
            doc="(3a) min Σ θ (+ the blocks that depend on no decision)")
        self.master_gap = opts.gap / 10 if opts.master_gap is None else opts.master_gap
        self.result = BendersResult(Status.ERROR, "", math.inf, -math.inf, math.inf, 0, 0,
                                    None, setup_seconds=time.perf_counter() - t_start,
                                    n_blocks=nb, second_stage=sub)
        # (3c): valid before any master solve
        self.result.lower_bound = float(lows.sum()) + self.constant
        self.best_phi: np.ndarray | None = None
        self.core = None
        if opts.pareto:
            if problem.core_point is None:
                raise ModelError("Pareto cuts need a core point; this problem gives none")
            self.core = np.asarray(problem.core_point, dtype=float)

    # ---- helpers ---------------------------------------------------------------------
    def remaining(self) -> float | None:
        """Seconds left of the time limit (None without one)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.perf_counter())

    def new_log(self, it: int) -> dict:
        """An empty record of iteration ``it`` for ``result.history``."""
        return dict(iteration=it, lower_bound=self.result.lower_bound, upper_bound=math.nan,
                    gap=math.nan, cuts_added=0, pareto_cuts=0, master_seconds=0.0,
                    master_compile_seconds=0.0, master_gap=math.nan,
                    sub_seconds=0.0, cut_seconds=0.0, master_status="")

    # ---- the steps -------------------------------------------------------------------
    def add_cuts(self, const, coef, phi, theta_bar, pareto_used=None) -> tuple[int, int]:
        """Add the cuts violated at the master's θ̄ (all when θ̄ is None); returns the
        number added and how many of them came from Pareto duals.

        ``const`` (per block), ``coef`` (blocks x first stage, sparse) and ``phi`` (per
        block) are block-wise; they are summed into θ groups here.
        """
        if self.options.cuts != "multi":
            const = self.to_group @ const
            coef = (self.to_group @ coef).tocsr()
            phi = self.to_group @ phi
            if pareto_used is not None:
                pareto_used = (self.to_group @ pareto_used.astype(float)) > 0
        return self._add_group_cuts(const, coef, phi, theta_bar, pareto_used)

    def _violated(self, phi, theta_bar) -> np.ndarray:
        """Per θ group: whether θ̄ is below Φ (all when θ̄ is None)."""
        if theta_bar is None:
            return np.ones(len(phi), bool)
        return ~(np.asarray(theta_bar) >= phi - 1e-9 * (1 + np.abs(phi)))

    def _add_group_cuts(self, const, coef, phi, theta_bar, pareto_used) -> tuple[int, int]:
        """:meth:`add_cuts` on cuts already summed per θ group."""
        added = pareto = 0
        master, xs = self.master, self.xs
        for b in np.nonzero(self._violated(phi, theta_bar))[0].tolist():
            row = coef.getrow(b)
            expr = master.theta[self.theta_keys[b]] - pyo.quicksum(
                float(a) * xs[k] for k, a in zip(row.indices.tolist(), row.data.tolist(),
                                                 strict=True) if a != 0.0)
            master.benders_cuts.add(expr >= float(const[b]))
            added += 1
            pareto += int(pareto_used is not None and bool(pareto_used[b]))
        return added, pareto

    def add_dual_cuts(self, lam, phi, theta_bar, pareto_used=None) -> tuple[int, int]:
        """:meth:`add_cuts` from the rows' duals ``lam`` (and the blocks' ``phi``):
        each θ group's cut ``θ_g >= Σ_{r in g} λ_r (h_r − H_r x)`` computed for the
        violated groups only, straight from ``lam`` and ``H``
        (:meth:`SecondStage.cut_coefficients`): the same cuts as :meth:`add_cuts` of
        ``SecondStage.cuts(lam)``, without the per-block coefficients (tested)."""
        sub = self.sub
        const = np.bincount(sub.row_block, weights=lam * sub.h, minlength=len(sub.blocks))
        if self.options.cuts != "multi":
            const = self.to_group @ const
            phi = self.to_group @ phi
            if pareto_used is not None:
                pareto_used = (self.to_group @ pareto_used.astype(float)) > 0
        keep = self._violated(phi, theta_bar)
        coef = sub.cut_coefficients(lam, self.group, len(phi), keep)
        return self._add_group_cuts(const, coef, phi, theta_bar, pareto_used)

    def evaluate(self, x, theta_bar=None, it_log: dict | None = None,
                 incumbent: bool = True) -> np.ndarray | None:
        """Sub-problem(s) at x, cut checks, cuts; returns Φ (per block) or None on time out.

        ``incumbent=False`` for a fractional point (the core point): cuts only."""
        opts, sub, res = self.options, self.sub, self.result
        it_log = self.new_log(res.iterations) if it_log is None else it_log
        x = np.asarray(x, dtype=float)
        t0 = time.perf_counter()
        phi, lam, y, _, _ = sub.solve(x, opts, self.remaining())
        res.solver_version = res.solver_version or sub.solver_version
        solving = time.perf_counter() - t0
        if phi is None:
            it_log["sub_seconds"] += solving
            return None
        _, err, bad = sub.check(lam, x, phi, opts.check_tolerance)
        if bad.any():
            b = int(np.argmax(err))
            raise CutError(
                f"Benders cut of block {sub.blocks[b]} is not tight at its generating point: "
                f"cut value differs from the sub-problem value {phi[b]:.9g} by {err[b]:.3g} "
                f"({int(bad.sum())} blocks fail); the duals returned by {opts.solver} have "
                "the wrong sign or are not optimal")
        lam_cut = lam  # the duals the cuts come from: lam, or per block Pareto's
        use = None  # blocks whose cut comes from Pareto duals
        if self.core is not None and incumbent:
            eps = opts.pareto_epsilon
            xe = (1 - eps) * x + eps * self.core
            t2 = time.perf_counter()
            phi_e, lam_e, _, _, _ = sub.solve(xe, opts, self.remaining())
            solving += time.perf_counter() - t2
            if phi_e is not None:
                _, err_e, bad_e = sub.check(lam_e, xe, phi_e, opts.check_tolerance)
                if bad_e.any():
                    b = int(np.argmax(err_e))
                    raise CutError(
                        f"Pareto cut of block {sub.blocks[b]} is not tight at its generating "
                        f"point x^ε (misfit {err_e[b]:.3g})")
                _, _, not_tight = sub.check(lam_e, x, phi, opts.check_tolerance)
                use = ~not_tight
                lam_cut = np.where(use[sub.row_block], lam_e, lam)
        n_added, n_pareto = self.add_dual_cuts(lam_cut, phi, theta_bar, use)
        res.pareto_cuts += n_pareto
        it_log["pareto_cuts"] += n_pareto
        it_log["sub_seconds"] += solving
        # checks, cut coefficients and adding the cuts to the master
        it_log["cut_seconds"] += time.perf_counter() - t0 - solving
        it_log["cuts_added"] += n_added
        res.n_cuts += n_added
        value = float(phi.sum()) + self.constant
        if incumbent and value < res.upper_bound:
            res.upper_bound = value
            res.best_point = x.copy()
            sub.best = (x.copy(), y.copy())
            self.best_phi = phi.copy()
        return phi

    def initial_cuts(self) -> None:
        """Evaluate the problem's initial point (first UB and cuts) and, with
        ``core_cuts``, add the cuts at its core point, before the first master."""
        problem, opts, res = self.problem, self.options, self.result
        if problem.initial_point is None and not (opts.core_cuts
                                                  and problem.core_point is not None):
            return
        it_log = self.new_log(0)
        if problem.initial_point is not None:
            self.evaluate(np.asarray(problem.initial_point, dtype=float), None, it_log)
        if opts.core_cuts and problem.core_point is not None:
            # cuts at an interior point: supporting planes of every Φ_b away from
            # the initial point's face (a known warm start for the first master)
            self.evaluate(np.asarray(problem.core_point, dtype=float), None, it_log,
                          incumbent=False)
        it_log["upper_bound"] = res.upper_bound
        it_log["gap"] = _gap(res.upper_bound, res.lower_bound)
        res.history.append(it_log)

    def solve_master(self, mip_gap: float | None = None, it_log: dict | None = None):
        """Solve the master (warm start: the incumbent with θ = Φ(x*)); returns
        ``(outcome, x, theta)`` (x, theta None without a solution) and raises LB to
        the master's proven bound."""
        opts, res, master, xs = self.options, self.result, self.master, self.xs
        it_log = self.new_log(res.iterations) if it_log is None else it_log
        if res.best_point is not None:
            for v, val in zip(xs, res.best_point.tolist(), strict=True):
                v.set_value(val, skip_validation=True)
            th = (self.to_group @ self.best_phi).tolist()
            for k, val in zip(self.theta_keys, th, strict=True):
                master.theta[k].set_value(max(val, self.theta_low[k]), skip_validation=True)
        gap = self.master_gap if mip_gap is None else mip_gap
        it_log["master_gap"] = gap
        t0 = time.perf_counter()
        mo = solve_pyomo(master, opts.solver, time_limit=self.remaining(),
                         threads=opts.threads, mip_gap=gap, options=opts.master_options,
                         warm_start=res.best_point is not None)
        it_log["master_seconds"] = time.perf_counter() - t0
        it_log["master_compile_seconds"] = mo.compile_seconds
        it_log["master_status"] = mo.status.value
        if not mo.has_solution:
            return mo, None, None
        if math.isfinite(mo.bound):
            res.lower_bound = max(res.lower_bound, mo.bound)
        x = _clean(xs, np.array([0.0 if v.value is None else v.value for v in xs]))
        theta = np.array([master.theta[k].value for k in self.theta_keys], dtype=float)
        return mo, x, theta

    # ---- the algorithm ---------------------------------------------------------------
    def run(self) -> BendersResult:
        """Iterate master / evaluate until the gap, iteration or time limit.

        Never raises for solver outcomes that carry a status (time limit, infeasible
        master); raises :class:`CutError` when a cut is not tight at its generating
        point and :class:`~recopt.errors.SolverError` when a sub-problem fails.
        """
        opts, res = self.options, self.result
        bar = progress(None, "Benders", "iterations",
                       enabled=None if opts.progress is None else bool(opts.progress))
        try:
            self.initial_cuts()
            status, message = Status.FEASIBLE, "iteration limit"
            tightened = False
            adaptive = opts.master_gap is None  # loose master gaps while the gap is wide
            for it in range(1, opts.max_iterations + 1):
                left = self.remaining()
                if left is not None and left <= 0:
                    status, message = Status.TIME_LIMIT, "time limit"
                    break
                it_log = self.new_log(it)
                # master MIP gap: loose while the Benders gap is wide (its point only has
                # to yield cuts; its bound is valid whatever the gap), then gap/10
                this_gap = self.master_gap
                if adaptive:
                    open_gap = _gap(res.upper_bound, res.lower_bound)
                    this_gap = min(MASTER_GAP_CAP, max(self.master_gap, 0.1 * open_gap))
                mo, x, tv = self.solve_master(this_gap, it_log)
                if x is None:
                    if mo.status == Status.TIME_LIMIT:
                        status, message = Status.TIME_LIMIT, "time limit in the master"
                    else:
                        status = (Status.INFEASIBLE if mo.status == Status.INFEASIBLE
                                  else mo.status)
                        message = f"master: {mo.status.value} ({mo.message})"
                    res.history.append(it_log)
                    break
                phi = self.evaluate(x, tv, it_log)
                res.iterations = it
                it_log["lower_bound"] = res.lower_bound
                it_log["upper_bound"] = res.upper_bound
                res.gap = _gap(res.upper_bound, res.lower_bound)
                it_log["gap"] = res.gap
                res.history.append(it_log)
                log.info("benders it %3d  LB %.6g  UB %.6g  gap %.2e  cuts +%d  master "
                         "%.2fs (compile %.2fs)  sub %.2fs  cuts %.2fs", it, res.lower_bound,
                         res.upper_bound, res.gap, it_log["cuts_added"],
                         it_log["master_seconds"], it_log["master_compile_seconds"],
                         it_log["sub_seconds"], it_log["cut_seconds"])
                bar.update(1, LB=f"{res.lower_bound:.6g}", UB=f"{res.upper_bound:.6g}",
                           gap=f"{res.gap:.1e}")
                if phi is None:
                    status, message = Status.TIME_LIMIT, "time limit in a sub-problem"
                    break
                if res.gap <= opts.gap:
                    status, message = Status.OPTIMAL, f"gap {res.gap:.2e} <= {opts.gap:g}"
                    break
                if mo.status == Status.TIME_LIMIT:
                    status, message = Status.TIME_LIMIT, "time limit in the master"
                    break
                if it_log["cuts_added"] == 0:
                    # θ̄ >= Φ(x̄): the master is as good as its MIP gap allows
                    if adaptive and this_gap > self.master_gap:
                        # no cut, but the master's bound is now within this_gap of UB:
                        # the open gap shrank tenfold and the next master asks 0.1 of it
                        continue
                    if self.master_gap > 0 and not tightened:
                        self.master_gap, tightened, adaptive = 0.0, True, False
                        continue
                    status, message = Status.FEASIBLE, (
                        f"no violated cut at gap {res.gap:.2e}: the master's bound is the "
                        "solver's precision limit")
                    break
        except BaseException:
            self.sub.close()  # worker processes of a parallel sub-problem
            raise
        finally:
            bar.close()
        return self.finish(status, message)

    def finish(self, status: Status, message: str) -> BendersResult:
        """Set the final status and the summed times of ``result`` and return it."""
        res = self.result
        res.status, res.message = status, message
        if not math.isfinite(res.gap):  # stopped before any master point was evaluated
            res.gap = _gap(res.upper_bound, res.lower_bound)
        res.master_seconds = sum(h["master_seconds"] for h in res.history)
        res.sub_seconds = sum(h["sub_seconds"] for h in res.history)
        res.cut_seconds = sum(h["cut_seconds"] for h in res.history)
        return res


def solve_benders(problem: TwoStage, options: BendersOptions | None = None) -> BendersResult:
    """Solve ``problem`` by Benders decomposition (see the module docstring):
    ``Benders(problem, options).run()``."""
    return Benders(problem, options).run()


__all__ = ["TwoStage", "array_route", "Benders", "BendersOptions", "BendersResult", "SecondStage",
           "CutError", "CUT_FORMS", "solve_benders"]
