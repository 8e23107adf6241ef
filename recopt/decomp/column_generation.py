"""Dantzig-Wolfe column generation for MLCol: loops priced in when the duals pay for them.

Source: Chasseray, Besançon, Lorca, Petitdemange, "Optimisation models for the design of
multiple self-consumption loops in semi-rural areas"
(arXiv 2404.04428, DOI 10.48550/arXiv.2404.04428), Models 8-9 (MLCol): the paper
enumerates every feasible loop and notes that dense neighbourhood graphs make it
intractable (§3.5, §5.3.2); this module generates the loops instead. Model card
``models/MLCol-column-generation.md`` (equations CG1-CG6); the models it drives are
:mod:`recopt.models.loops.master`.

The algorithm
-------------
* **Restricted master** (CG1): MLCol's LP relaxation over the loops found so far,
  compiled once from :func:`~recopt.models.loops.master.build_restricted_master` into
  a kept HiGHS object (:class:`~recopt.solvers.highs.HighsColumnLP`); a new loop is a
  new column (``addCols``), never a rebuild. It starts with **no** loop column: ``z = 0``
  (every actor alone) is feasible, so the first duals already price the pairs. With
  ``master_solver="split"`` (CG1'') the root's master LP is solved by a time-block
  Benders split instead (:class:`SplitMaster`: the step LPs and a small Benders
  master, each kept in HiGHS; the full master stays compiled for the integer designs).
* **Reduced cost** (CG2): ``c̄(S) = −Σ_{i∈S} α_i + Σ_{{i,j}⊆S} β_ij
  + Σ_{ω,t} Σ_{i∈S} (σ_S a_i + (1 − σ_S) b_i)`` with ``a = −γ⁺Ĉ``, ``b = −γ⁻P̂``, from
  the rows' duals. **Certificate**: after every master solve the formula is evaluated
  for every loop column and compared with HiGHS's own reduced cost of that column
  (``col_dual``); a mismatch raises :class:`ReducedCostError`.
* **Pricing**: greedy growth first (from each pair with ``β < 0``, add the common
  neighbour that lowers ``c̄`` most, within the power cap; several distinct negative
  loops per round), then, when it finds nothing, the **exact** pricing MILP
  (:func:`~recopt.models.loops.master.build_pricing` through
  :func:`~recopt.solvers.dispatch.solve_pyomo`), whose proven bound is a lower bound on
  ``min_S c̄(S)``.
* **Lower bound** (CG5), at every round, valid for the LP relaxation of MLCol(all)
  and hence for its integer optimum: ``L(π) = b·π + Σ_fixed min(0, d_j) u_j +
  max(κ min(0, c̄*), Σ_i min(0, w_i))``, with ``κ = ⌊|N'|/2⌋`` (a loop has ≥ 2 members),
  ``c̄*`` the exact pricing's bound (only when it ran) and ``w_i = −α_i + ½ Σ_j min(0, β_ij)``
  (a per-member bound on ``c̄``: every status term is ≥ 0).
* **Stabilisation** (optional, Wentges 1997): price at ``π̃ = θ π̂ + (1 − θ) π``
  (``π̂`` the duals of the best bound so far); when the loops found there do not pay
  at ``π`` (mis-pricing), price at ``π``. The final bound comes from exact pricing at
  the master's own duals, so smoothing never changes it.
* **Integer solutions**: price-and-branch (default: the integer master over the
  generated loops, in the same HiGHS object; its value is the upper bound, the CG
  bound the lower bound) or branch-and-price (Ryan-Foster on member pairs: a node
  forces ``i, j`` together or apart, fixes the violating columns to 0 and prices
  with the decision in the MILP; best-first; exact).

Units: EUR for objectives, bounds and reduced costs; seconds for times.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy import sparse

from recopt.data.view import empty_solution
from recopt.decomp.phase_clock import PhaseClock
from recopt.decomp.registry import register_algorithm
from recopt.errors import ModelError, SolverError
from recopt.models.loops import derive, loop_data
from recopt.models.loops.build import surplus_of_loops
from recopt.models.loops.data import LoopData
from recopt.models.loops.master import (
    build_pricing,
    build_restricted_master,
    loop_column,
    loop_members,
    loop_status,
    pricing_pairs,
)
from recopt.models.loops.solution import operation_arrays, solution_dataset
from recopt.progress import progress
from recopt.solvers.dispatch import solve_pyomo
from recopt.solvers.highs import HighsArrayLP, HighsColumnLP
from recopt.solvers.outcome import relative_gap
from recopt.solvers.record import RunRecord
from recopt.solvers.status import Status

log = logging.getLogger("recopt.colgen")


class ReducedCostError(SolverError):
    """The reduced cost of the formula disagrees with the solver's (wrong duals)."""


@dataclass
class CGOptions:
    """Variants and limits of :func:`solve_column_generation`.

    ``gap`` is the relative gap ``(UB − LB) / max(1, |UB|)`` at which branch-and-price
    stops (and the MIP gap of the price-and-branch master). ``time_limit`` in seconds
    covers everything.
    """

    exact_pricing: bool = True
    """Run the pricing MILP when the heuristic finds nothing (needed for a proof)."""
    branch_and_price: bool = False
    stabilisation: float = 0.0
    """Wentges smoothing factor θ in [0, 1); 0: off."""
    columns_per_round: int = 40
    stall_rounds: int = 5
    """Also run the exact pricing (for its bound) when the master improved by less than
    ``gap/4`` over this many rounds, at most once per this many rounds."""
    lp_gap: float | None = None
    """Stop column generation when ``(RMP − LB) <= lp_gap · max(1, |RMP|)`` (Lagrangian
    early termination); default ``gap / 2`` (the other half for the integer design); 0:
    only when exact pricing finds nothing."""
    max_rounds: int = 10_000
    gap: float = 1e-4
    time_limit: float | None = None
    deadline: PhaseClock | None = None
    """The caller's deadline (overrides ``time_limit``): every phase, set-up included,
    reads the time left from it."""
    pricing_share: float = 0.8
    """Pricing rounds stop at this share of the deadline (the rest for the designs)."""
    threads: int | None = None
    solver: str = "highs"
    """Solver of the pricing MILP (the master is always HiGHS, kept)."""
    reduced_cost_tolerance: float = 1e-6
    """A loop enters when ``c̄ < −tolerance`` (EUR)."""
    check_tolerance: float = 1e-6
    """Relative tolerance of the reduced-cost certificate."""
    max_nodes: int = 100_000
    master_start: str = "warm"
    """How the restricted master is re-solved after new loops (card, CG1 "restart"):
    ``"warm"`` from the previous optimal basis; ``"cold"`` from HiGHS's own start every
    time; ``"auto"``: warm, but capped at ``restart_factor`` times the last cold solve's
    wall time (at least 1 s), then cold. The LP value is the same either way (the
    duals may differ: the master is degenerate; every bound is valid for any duals).
    Default ``"warm"``: ``"auto"`` was faster on one master at 100 x 30 days but gave a
    worse 100 x 180 gap and a slower ``dens_2`` 50 x 7 (card, choice 2). It concerns the
    full master only: ``master_solver="full"`` and the branch-and-price nodes."""
    restart_factor: float = 1.5
    restart_floor: float = 1.0
    """Seconds: the warm solve's cap is ``max(restart_floor, restart_factor × cold)``."""
    master_solver: str = "split"
    """How the root's restricted master LP is solved (card, CG1''): ``"split"`` (the
    default), the time-block Benders split (:class:`SplitMaster`: many small warm step
    LPs instead of one large degenerate one; the branch-and-price nodes still use the
    full LP); ``"full"``, the whole LP in one kept HiGHS object. The split won on every
    case measured (100 x 180, 100 x 30 clustered, ``dens_2`` 50 x 7; benchmarks README,
    issue 15 fifth pass)."""
    split_steps: int = 64
    """``"split"``: decision steps per kept step LP."""
    split_gap: float = 1e-7
    """``"split"``: relative gap at which the split's Benders iterations stop."""
    integer: bool = True
    """False: column generation only (the LP and its bound; MLColExt's Benders then
    works on the generated loops)."""
    progress: bool | None = None
    """Progress report (:mod:`recopt.progress`: a bar on a terminal, log lines
    otherwise); ``None``: unless the command is quiet; False: none."""


@dataclass
class Duals:
    """The master's duals in the card's orientation (CG2)."""

    alpha: np.ndarray
    beta: np.ndarray
    """(n, n), symmetric, 0 off the link pairs."""
    a: np.ndarray
    """−γ⁺ Ĉ >= 0, (S, T, n)."""
    b: np.ndarray
    """−γ⁻ P̂ >= 0, (S, T, n)."""
    pi: np.ndarray
    """The raw row duals (the solver's rows)."""

    def combine(self, other: Duals, theta: float) -> Duals:
        """``θ self + (1 − θ) other``."""
        return Duals(*(theta * getattr(self, k) + (1 - theta) * getattr(other, k)
                       for k in ("alpha", "beta", "a", "b", "pi")))


@dataclass
class CGResult:
    """What :func:`solve_column_generation` found (EUR, seconds)."""

    status: Status
    message: str
    objective: float
    """Best integer design's value (UB); NaN without one."""
    bound: float
    """Valid lower bound on MLCol(all)'s optimum."""
    lp_value: float
    """Root restricted master value at the end of column generation."""
    lp_bound: float
    """Root lower bound on MLCol(all)'s LP relaxation."""
    loops: list
    """Every generated loop."""
    chosen: list
    """Loops of the best design."""
    col_value: np.ndarray | None
    """The master's fixed columns (operation) at the best design."""
    master: RestrictedMaster | None = None
    solver: Any = None
    """The run's column-generation state (:func:`resume_column_generation`)."""
    converged: bool = False
    """Column generation proved the LP optimum over all loops (root)."""
    rounds: int = 0
    nodes: int = 0
    exact_pricings: int = 0
    history: list[dict] = field(default_factory=list)
    setup_seconds: float = 0.0
    master_seconds: float = 0.0
    pricing_seconds: float = 0.0
    integer_seconds: float = 0.0

    @property
    def gap(self) -> float:
        return relative_gap(self.objective, self.bound)

    @property
    def has_solution(self) -> bool:
        return self.col_value is not None


# --------------------------------------------------------------------------------------
# the restricted master, kept in HiGHS
# --------------------------------------------------------------------------------------
class RestrictedMaster:
    """MLCol's restricted master LP (CG1) and its loop columns."""

    def __init__(self, d: LoopData, threads=None, reduce: bool = True):
        t0 = time.perf_counter()
        self.d = d
        m = build_restricted_master(d, reduce=reduce)
        self.model = m
        self.build_seconds = time.perf_counter() - t0
        lp = HighsColumnLP(m, threads=threads, options={"presolve": "off"})
        self.lp = lp
        S, T, n = d.shape
        self.n_members = len(loop_members(d))

        def row_and_sign(con, var):
            r = lp.row_of[id(con)]
            sign = lp.coefficient(r, lp.col_of[id(var)])
            if sign not in (1.0, -1.0):
                raise SolverError(f"unexpected compiled coefficient {sign} in {con.name}")
            return r, sign

        self.one_row = np.full(n, -1)
        self.one_sign = np.zeros(n)
        for i in m.COVERED:
            self.one_row[i], self.one_sign[i] = row_and_sign(m.one_loop[i], m.idle[i])
        self.pairs = list(m.PAIRS)
        self.pair_set = set(self.pairs)
        self.pair_row = {}
        self.pair_sign = {}
        for p in self.pairs:
            self.pair_row[p], self.pair_sign[p] = row_and_sign(m.pair_link[p],
                                                               m.pair_active[p])
        self.buy_row = np.full((S, T, n), -1)
        self.buy_sign = np.zeros((S, T, n))
        for k in m.BUY_ROWS:
            self.buy_row[k], self.buy_sign[k] = row_and_sign(m.buy_rule[k], m.grid_buy[k])
        self.sell_row = np.full((S, T, n), -1)
        self.sell_sign = np.zeros((S, T, n))
        for k in m.SELL_ROWS:
            self.sell_row[k], self.sell_sign[k] = row_and_sign(m.sell_rule[k], m.grid_sell[k])
        # bounds every solution of MLCol(all)'s LP relaxation satisfies (the master's
        # operation columns are unbounded so that the duals sit on the rows): f <= M,
        # g⁺ <= Ĉ, g⁻ <= P̂ (implied by (9b), (9c), (8a)), idle <= 1, y <= 1 (8b)
        implied = np.full(lp.n_cols, np.inf)
        bounds: list[tuple[Any, Callable[..., Any]]] = [
            (m.flow, lambda s, t, i, j: min(d.P[s, t, i], d.C[s, t, j])),
            (m.grid_buy, lambda s, t, i: d.C[s, t, i]), (m.grid_sell, lambda s, t, i: d.P[s, t, i]),
            (m.idle, lambda i: 1.0), (m.pair_active, lambda i, j: 1.0)]
        for var, ub in bounds:
            for k, v in var.items():
                col = lp.col_of.get(id(v))
                if col is not None:
                    implied[col] = float(ub(*k) if isinstance(k, tuple) else ub(k))
        self.implied_upper = np.minimum(implied, lp.col_upper)
        # the no-loop design (every actor alone: idle = 1, buy Ĉ, sell P̂, no flow, no
        # pair), feasible for the master whatever its columns: the incumbent of last
        # resort, known without a solve
        point = np.zeros(lp.n_cols)
        for var, val in bounds[1:4]:  # g⁺ = Ĉ, g⁻ = P̂, idle = 1
            for k, v in var.items():
                col = lp.col_of.get(id(v))
                if col is not None:
                    point[col] = float(val(*k) if isinstance(k, tuple) else val(k))
        self.no_loop = point
        self.loops: list[tuple[int, ...]] = []
        self.index: dict[tuple[int, ...], int] = {}
        self.cols = np.zeros(0, dtype=np.int64)
        self.last_added = sparse.csc_matrix((len(lp.row_lower), 0))
        """The loop columns of the last :meth:`add` (rows of ``lp``, CSC)."""
        self.setup_seconds = time.perf_counter() - t0

    def operation(self, col_value) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``flow``, ``grid_buy``, ``grid_sell`` (kWh) of a master solution, with the
        standalone operation (no flow, buy Ĉ, sell P̂) at the steps the master leaves
        out (CG1')."""
        self.lp.load(col_value)
        f, gb, gs = operation_arrays(self.model, self.d)
        out = ~self.model.kept_steps
        gb[out], gs[out] = self.d.C[out], self.d.P[out]
        return f, gb, gs

    # ---- columns -----------------------------------------------------------------------
    def add(self, loops) -> int:
        """Add the loops not yet in the master; returns how many were added."""
        d = self.d
        new = []
        for S in loops:
            S = tuple(sorted(int(i) for i in S))
            if S not in self.index:
                self.index[S] = -1
                new.append(S)
        if not new:
            return 0
        starts: list[int] = []
        idx: list[int] = []
        val: list[float] = []
        for S in new:
            starts.append(len(idx))
            col = loop_column(d, S, self.pair_set)
            for i in S:
                if self.one_row[i] >= 0:
                    idx.append(int(self.one_row[i]))
                    val.append(float(self.one_sign[i]))
            for p in col.pairs:
                idx.append(self.pair_row[p])
                val.append(-float(self.pair_sign[p]))
            sig = col.surplus
            for i in S:
                br, bs = self.buy_row[:, :, i], self.buy_sign[:, :, i]
                mask = sig & (br >= 0)
                idx += br[mask].tolist()
                val += (bs[mask] * d.C[:, :, i][mask]).tolist()
                sr, ss = self.sell_row[:, :, i], self.sell_sign[:, :, i]
                mask = ~sig & (sr >= 0)
                idx += sr[mask].tolist()
                val += (ss[mask] * d.P[:, :, i][mask]).tolist()
        k = len(new)
        # no upper bound: z <= 1 follows from (8b), and an upper bound would let a column
        # sit at it with a negative reduced cost (exact pricing would return it forever)
        cols = self.lp.add_columns(np.zeros(k), np.zeros(k), np.full(k, np.inf), starts, idx,
                                   val)
        self.last_added = sparse.csc_matrix(
            (np.asarray(val, float), np.asarray(idx, np.int64),
             np.r_[starts, len(idx)].astype(np.int64)), shape=(len(self.lp.row_lower), k))
        for S in new:
            self.index[S] = len(self.loops)
            self.loops.append(S)
        self.cols = np.r_[self.cols, cols]
        self._status = None
        return k

    # ---- duals and reduced costs ---------------------------------------------------------
    def duals(self, row_dual: np.ndarray) -> Duals:
        """The card's α, β, a = −γ⁺Ĉ, b = −γ⁻P̂ from the solver's row duals."""
        d = self.d
        n = d.n
        pi = np.asarray(row_dual, float)
        # project onto the dual signs (a <= row's dual <= 0, a >= row's >= 0): the
        # solver's round-off (~1e-14 of the wrong sign) would make CG5's b·π infinite
        lp = self.lp
        pi = np.where(np.isfinite(lp.row_lower) | (pi <= 0), pi, 0.0)
        pi = np.where(np.isfinite(lp.row_upper) | (pi >= 0), pi, 0.0)
        alpha = np.zeros(n)
        ok = self.one_row >= 0
        alpha[ok] = pi[self.one_row[ok]] * self.one_sign[ok]
        beta = np.zeros((n, n))
        for p in self.pairs:
            beta[p] = beta[p[::-1]] = pi[self.pair_row[p]] * self.pair_sign[p]
        a = np.zeros(d.shape)
        ok = self.buy_row >= 0
        a[ok] = -pi[self.buy_row[ok]] * self.buy_sign[ok] * d.C[ok]
        b = np.zeros(d.shape)
        ok = self.sell_row >= 0
        b[ok] = -pi[self.sell_row[ok]] * self.sell_sign[ok] * d.P[ok]
        return Duals(alpha, beta, a, b, pi)

    def fixed_reduced_costs(self, pi: np.ndarray) -> np.ndarray:
        """``c − Aᵀπ`` of the fixed (operation) columns."""
        return self.lp.cost - self.lp.A.T @ pi

    def lagrangian_base(self, duals: Duals, tol: float) -> float:
        """``b·π + Σ_fixed min(0, d_j) u_j`` (CG5 without the loop term), ``u_j`` the
        column's bound implied in every solution of MLCol(all)'s LP (``implied_upper``);
        −inf when a column without one has ``d_j < −tol`` (π not dual feasible)."""
        lp = self.lp
        pi = duals.pi
        rhs = np.where(pi < 0, lp.row_upper, np.where(pi > 0, lp.row_lower, 0.0))
        rhs = np.where(lp.row_lower == lp.row_upper, lp.row_lower, rhs)
        if not np.isfinite(rhs[pi != 0]).all():
            return -math.inf
        base = float(rhs @ pi) + lp.offset
        dj = self.fixed_reduced_costs(pi)
        neg = dj < 0
        upper = self.implied_upper
        if (neg & ~np.isfinite(upper)).any():
            if dj[neg & ~np.isfinite(upper)].min() < -tol:
                return -math.inf
        fin = neg & np.isfinite(upper)
        base += float((dj[fin] * upper[fin]).sum())
        low = neg & np.isfinite(lp.col_lower) & (lp.col_lower != 0)
        if low.any():  # pragma: no cover - the master's fixed columns all have lb 0
            base += float(-(dj[low] * lp.col_lower[low]).sum())
        return base

    def reduced_costs(self, duals: Duals, loops=None) -> np.ndarray:
        """c̄(S) of CG2 for ``loops`` (default: every column), EUR."""
        loops = self.loops if loops is None else loops
        return np.array([reduced_cost(self.d, duals, S) for S in loops])

    def check(self, duals: Duals, col_dual: np.ndarray, tol: float) -> float:
        """Compare CG2 with HiGHS's reduced cost of every loop column (certificate)."""
        if not self.loops:
            return 0.0
        mine = self.reduced_costs(duals)
        theirs = col_dual[self.cols]
        err = np.abs(mine - theirs)
        scale = 1.0 + np.abs(theirs) + np.abs(duals.alpha).max(initial=0.0)
        worst = int(np.argmax(err / scale))
        if err[worst] > tol * scale[worst]:
            raise ReducedCostError(
                f"reduced cost of loop {self.loops[worst]}: formula {mine[worst]:.9g} EUR, "
                f"HiGHS {theirs[worst]:.9g} EUR (dual sign or row orientation wrong)")
        return float(err.max())


class SplitMaster:
    """The restricted master LP (CG1) solved by a time-block Benders split (card, CG1'').

    Given the loop columns ``z`` and the pair activities ``y`` (with the ``idle``
    slacks: the *global* columns), the master's operation separates by decision step:
    each step's rows ((9b), (9c), (8a) with ``y``, (9d)/(9e) with ``z``) hold only that
    step's ``f, g⁺, g⁻``. So the master LP is solved as an LP Benders decomposition:

    * a small **Benders master** in one kept HiGHS object: the global columns, one
      free ``θ_t`` per step, the loop columns ``z``; rows (8b), the pair links and the
      optimality cuts ``θ_t >= π_t·(r_t − B_t (y, z))``;
    * the **step LPs**, ``chunk_steps`` steps per kept HiGHS object (block-diagonal),
      re-solved for the right-hand sides of the master's point (warm dual simplex).

    Every master point ``(y = Σ z, z)`` has a feasible operation (the operation of each
    loop alone, weighted by its ``z`` and the rest standalone, satisfies every step row),
    so no feasibility cut is needed. The duals handed to pricing are the full master's:
    those of (8b) and the links from the Benders master, and at each step
    ``Σ_k λ_tk π_t^k`` (the cut duals, ``Σ_k λ_tk = 1`` since ``θ_t`` is free): a dual
    feasible point of the full restricted master, optimal when the split has converged,
    and a valid Lagrangian bound (CG5) in any case. A new loop column enters the Benders
    master with its coefficients in (8b), the links and every kept cut (``π^k`` times its
    step rows), never a rebuild; the step LPs only see it through their right-hand sides.
    Stops when the point's full value and the Benders master's value agree within
    ``gap`` (relative) or no cut is violated.

    Source: Chasseray et al. (arXiv 2404.04428), Models 8-9 (MLCol's rows (8a), (8b),
    (9a)-(9e)); the split is recopt's (card ``models/MLCol-column-generation.md``,
    CG1''). Units: θ, values and bounds EUR; the step rows' right-hand sides kWh.
    """

    def __init__(self, master: RestrictedMaster, threads=None, chunk_steps: int = 64,
                 gap: float = 1e-7):
        t0 = time.perf_counter()
        self.master = master
        self.gap = float(gap)
        m, lp = master.model, master.lp
        A = lp.A.tocsr()
        nrow, ncol = A.shape
        self.nrow = nrow
        step_of = {st: k for k, st in enumerate(m.STEPS)}
        self.n_steps = len(step_of)
        row_step = np.full(nrow, -1)
        for comp in (m.kirchhoff, m.no_transit, m.loop_flow, m.buy_rule, m.sell_rule):
            for k, con in comp.items():
                r = lp.row_of.get(id(con))
                if r is not None:
                    row_step[r] = step_of[tuple(k[:2])]
        col_step = np.full(ncol, -1)
        for var in (m.flow, m.grid_buy, m.grid_sell):
            for k, v in var.items():
                c = lp.col_of.get(id(v))
                if c is not None:
                    col_step[c] = step_of[tuple(k[:2])]
        self.glob_rows = np.flatnonzero(row_step < 0)
        self.glob_cols = np.flatnonzero(col_step < 0)
        known = {lp.col_of[id(v)] for var in (m.idle, m.pair_active) for v in var.values()
                 if id(v) in lp.col_of}
        if set(self.glob_cols.tolist()) != known:
            raise SolverError("split master: a column of the restricted master belongs to "
                              "no step and is neither idle nor pair_active")
        if A[self.glob_rows][:, col_step >= 0].nnz:
            raise SolverError("split master: a row of (8b) or a pair link holds an "
                              "operation column")
        pos = {int(c): k for k, c in enumerate(self.glob_cols)}
        self.idle_pos = {i: pos[lp.col_of[id(m.idle[i])]] for i in m.COVERED}
        self.pair_pos = {p: pos[lp.col_of[id(m.pair_active[p])]] for p in m.PAIRS}
        self.member_of: list[list[int]] = []  # loop k -> its actors with a (8b) row
        self.pairs_of: list[list[int]] = []  # loop k -> positions of its pairs' y
        rl, ru = lp.row_lower, lp.row_upper
        self.rl, self.ru = rl, ru
        cost = lp.cost
        self.chunks = []
        order = np.arange(self.n_steps)
        for first in range(0, self.n_steps, max(1, int(chunk_steps))):
            steps = order[first:first + max(1, int(chunk_steps))]
            in_chunk = np.zeros(self.n_steps + 1, bool)
            in_chunk[steps] = True
            R = np.flatnonzero(in_chunk[row_step])  # row_step -1 -> the last (False) entry
            X = np.flatnonzero(in_chunk[col_step])
            AR = A[R]
            other = np.ones(ncol, bool)
            other[X] = False
            other[self.glob_cols] = False
            if AR[:, other].nnz:
                raise SolverError("split master: a step row holds another step's column")
            sub = AR[:, X]
            G = AR[:, self.glob_cols].tocsr()
            local = row_step[R] - first
            E_rows = sparse.csr_matrix((np.ones(len(R)), (local, np.arange(len(R)))),
                                       shape=(len(steps), len(R)))
            E_cols = sparse.csr_matrix((np.ones(len(X)), (col_step[X] - first,
                                                          np.arange(len(X)))),
                                       shape=(len(steps), len(X)))
            h = HighsArrayLP(sub, cost[X], lp.col_lower[X], lp.col_upper[X], rl[R], ru[R],
                             threads=threads)
            self.chunks.append(dict(first=first, steps=steps, R=R, X=X, G=G, E_rows=E_rows,
                                    E_cols=E_cols, lp=h, cost=cost[X],
                                    Z=sparse.csc_matrix((len(R), 0))))
        # the Benders master: global columns, θ (one per step), loop columns
        ng = len(self.glob_cols)
        Ag = A[self.glob_rows][:, self.glob_cols]
        Abm = sparse.hstack([Ag, sparse.csr_matrix((len(self.glob_rows), self.n_steps))])
        self.theta0 = ng
        self.z0 = ng + self.n_steps
        self.bm = HighsArrayLP(
            Abm, np.r_[cost[self.glob_cols], np.ones(self.n_steps)],
            np.r_[lp.col_lower[self.glob_cols], np.full(self.n_steps, -np.inf)],
            np.r_[lp.col_upper[self.glob_cols], np.full(self.n_steps, np.inf)],
            rl[self.glob_rows], ru[self.glob_rows], offset=lp.offset, threads=threads)
        self.K = 0
        self.cut_pi: list = []  # sparse rows over the full master's rows
        self.Pi = sparse.csr_matrix((0, nrow))
        self.n_cuts = 0
        self.iterations = 0
        w0 = np.zeros(ng)
        self._cuts(w0, np.zeros(0), theta=np.full(self.n_steps, -np.inf), clock=None)
        self.setup_seconds = time.perf_counter() - t0

    def add(self, Z_new) -> None:
        """New loop columns (rows of the full master, CSC): into the Benders master (with
        their coefficients in every kept cut) and the step LPs' right-hand sides."""
        k = Z_new.shape[1]
        if not k:
            return
        Z_new = Z_new.tocsr()
        self._flush()
        col = sparse.vstack([Z_new[self.glob_rows], self.Pi @ Z_new]).tocsc()
        self.bm.add_columns(np.zeros(k), np.zeros(k), np.full(k, np.inf), col)
        for c in self.chunks:
            c["Z"] = sparse.hstack([c["Z"], Z_new[c["R"]]]).tocsc()
        for S in self.master.loops[self.K:self.K + k]:
            self.member_of.append([i for i in S if i in self.idle_pos])
            self.pairs_of.append([self.pair_pos[p] for p in itertools.combinations(S, 2)
                                  if p in self.pair_pos])
        self.K += k

    def feasible_point(self, wg, z):
        """The master's point made exactly feasible for (8b) and the links (the solver's
        round-off, ~1e-7 on ``Σ z <= 1``, times ``Ĉ`` up to hundreds of kWh, would make a
        step LP infeasible): ``z >= 0``, each loop scaled by ``1 / max(1, Σ_{S∋i} z)``
        of its most covered member, ``y = Σ z``, ``idle = 1 − Σ z``."""
        z = np.maximum(z, 0.0)
        n = max(self.idle_pos, default=-1) + 1
        cover = np.zeros(n)
        for k, mem in enumerate(self.member_of):
            cover[mem] += z[k]
        scale = 1.0 / np.maximum(1.0, cover)
        for k, mem in enumerate(self.member_of):
            if mem:
                z[k] *= scale[mem].min()
        wg = np.zeros_like(wg)
        cover[:] = 0.0
        for k, (mem, prs) in enumerate(zip(self.member_of, self.pairs_of, strict=True)):
            cover[mem] += z[k]
            wg[prs] += z[k]
        for i, q in self.idle_pos.items():
            wg[q] = max(0.0, 1.0 - cover[i])
        return wg, z

    def _flush(self) -> None:
        if self.cut_pi:
            self.Pi = sparse.vstack([self.Pi] + self.cut_pi).tocsr()
            self.cut_pi = []

    def _cuts(self, wg, z, theta, clock):
        """Solve the step LPs at the point ``(wg, z)``; add the cuts that ``theta``
        violates. Returns ``(full value, x by chunk, cuts added)`` or None (time)."""
        xs = []
        total = 0.0
        rows, lower, upper = [], [], []
        added = 0
        for c in self.chunks:
            shift = c["G"] @ wg
            if c["Z"].shape[1]:
                shift = shift + c["Z"] @ z
            R = c["R"]
            c["lp"].set_row_bounds(np.arange(len(R)), self.rl[R] - shift, self.ru[R] - shift)
            status, message, _, x, _, pi, = c["lp"].solve(
                time_limit=None if clock is None else clock.remaining())
            if status != Status.OPTIMAL or x is None or pi is None:
                if status == Status.TIME_LIMIT:
                    return None
                raise SolverError(f"split master: a step LP is {message} (it cannot be: "
                                  "every master point has a feasible operation)")
            xs.append(x)
            rlR, ruR = self.rl[R], self.ru[R]
            pi = np.where(np.isfinite(rlR) | (pi <= 0), pi, 0.0)
            pi = np.where(np.isfinite(ruR) | (pi >= 0), pi, 0.0)
            bnd = np.where(rlR == ruR, rlR, np.where(pi < 0, ruR, np.where(pi > 0, rlR, 0.0)))
            D = c["E_rows"] @ sparse.diags(pi)
            q = c["E_cols"] @ (c["cost"] * x)
            total += float(q.sum())
            const = D @ bnd
            th = theta[c["steps"]]
            viol = q - th > 1e-9 * (1.0 + np.abs(q))
            if not viol.any():
                continue
            Dv = D[np.flatnonzero(viol)].tocsr()
            coef_g = Dv @ c["G"]
            coef_z = Dv @ c["Z"] if c["Z"].shape[1] else sparse.csr_matrix((Dv.shape[0], 0))
            nv = Dv.shape[0]
            th_cols = sparse.csr_matrix(
                (np.ones(nv), (np.arange(nv), self.theta0 + c["steps"][viol])),
                shape=(nv, self.z0 + self.K))
            g_part = sparse.hstack([coef_g, sparse.csr_matrix((nv, self.n_steps))])
            row = sparse.hstack([g_part, coef_z]).tocsr() if self.K else g_part.tocsr()
            rows.append(row + th_cols)
            lower.append(const[viol])
            upper.append(np.full(nv, np.inf))
            # the cut's dual over the full master's rows (for new columns and π)
            full = sparse.csr_matrix((Dv.data, R[Dv.indices], Dv.indptr), shape=(nv, self.nrow))
            self.cut_pi.append(full)
            added += nv
        if rows:
            self.bm.add_rows(np.concatenate(lower), np.concatenate(upper),
                             sparse.vstack(rows))
            self.n_cuts += added
        return total + self.master.lp.offset, xs, added

    def solve(self, clock: PhaseClock | None = None):
        """The restricted master LP: the same tuple as :meth:`HighsColumnLP.solve`
        (``(status, message, value, x, col_dual, row_dual, bound)``) with the full
        master's columns and rows; ``value`` is the full value of the point returned
        (an upper bound on the LP, within ``gap`` of it unless the time ran out)."""
        lp = self.master.lp
        ng = len(self.glob_cols)
        best = None
        while True:
            status, message, lb, v, cd, rd = self.bm.solve(
                time_limit=None if clock is None else clock.remaining())
            if status != Status.OPTIMAL or v is None:
                if status == Status.TIME_LIMIT:
                    return best if best is not None else (Status.TIME_LIMIT, message,
                                                          math.nan, None, None, None, math.nan)
                raise SolverError(f"split master: the Benders master is {message}")
            self.iterations += 1
            wg, z = self.feasible_point(v[:ng], v[self.z0:])
            theta = v[ng:self.z0]
            n_before = self.n_cuts
            got = self._cuts(wg, z, theta, clock)
            if got is None:
                return best if best is not None else (Status.TIME_LIMIT, "time limit",
                                                      math.nan, None, None, None, math.nan)
            value, xs, added = got
            self._flush()
            pi = np.zeros(self.nrow)
            pi[self.glob_rows] = rd[:len(self.glob_rows)]
            lam = np.maximum(rd[len(self.glob_rows):], 0.0)
            pi += self.Pi[:n_before].T @ lam
            x = np.zeros(lp.n_cols)
            for c, xc in zip(self.chunks, xs, strict=True):
                x[c["X"]] = xc
            x[self.glob_cols] = wg
            x[self.master.cols] = z
            col_dual = np.zeros(lp.n_cols)
            col_dual[self.master.cols] = cd[self.z0:]
            best = (Status.OPTIMAL, "optimal (split)", value, x, col_dual, pi, value)
            done = value - lb <= self.gap * max(1.0, abs(value)) or added == 0
            log.debug("split master: iteration %d, LB %.10g, value %.10g, %d cuts",
                      self.iterations, lb, value, added)
            if done or (clock is not None and clock.expired()):
                return best


def reduced_cost(d: LoopData, duals: Duals, S) -> float:
    """CG2: ``−Σ α + Σ β + Σ_{ω,t} Σ_{i∈S} (σ a + (1−σ) b)`` for loop ``S``, EUR."""
    S = list(S)
    sig = loop_status(d, S)
    pen = np.where(sig, duals.a[:, :, S].sum(axis=2), duals.b[:, :, S].sum(axis=2)).sum()
    sub = duals.beta[np.ix_(S, S)]
    return float(-duals.alpha[S].sum() + np.triu(sub, 1).sum() + pen)


# --------------------------------------------------------------------------------------
# pricing
# --------------------------------------------------------------------------------------
def _respects(S, together, apart) -> bool:
    s = set(S)
    for i, j in together:
        if (i in s) != (j in s):
            return False
    return not any(i in s and j in s for i, j in apart)


def _grow(d: LoopData, duals: Duals, S: list, adj, net) -> tuple[list, float]:
    """Local search from loop ``S``: the best single add (a common neighbour within the
    power cap) or drop (keeping two members) while one lowers ``c̄``; ``(S, c̄(S))``."""
    tol_w = 1e-9
    value = reduced_cost(d, duals, S)
    while True:
        load = d.power[S].sum()
        netS = net[:, :, S].sum(axis=2)
        aS = duals.a[:, :, S].sum(axis=2)
        bS = duals.b[:, :, S].sum(axis=2)
        base = -duals.alpha[S].sum() + np.triu(duals.beta[np.ix_(S, S)], 1).sum()
        cand = set.intersection(*(adj[i] for i in S)) - set(S)
        V = np.array(sorted(v for v in cand if load + d.power[v] <= d.wmax + tol_w), int)
        best_val, best_move = value, None
        if len(V):
            add = -duals.alpha[V] + duals.beta[np.ix_(S, V)].sum(axis=0)
            nets = netS[None] + np.moveaxis(net[:, :, V], 2, 0)
            pen = np.where(nets >= 0, aS[None] + np.moveaxis(duals.a[:, :, V], 2, 0),
                           bS[None] + np.moveaxis(duals.b[:, :, V], 2, 0)).sum(axis=(1, 2))
            vals = base + add + pen
            k = int(np.argmin(vals))
            if vals[k] < best_val - 1e-12:
                best_val, best_move = float(vals[k]), ("add", int(V[k]))
        if len(S) > 2:  # every drop at once: S − u for each member u
            Sa = np.array(S)
            pairs_in = duals.beta[np.ix_(Sa, Sa)].sum(axis=1)  # Σ_{v∈S} β_uv (β_uu = 0)
            nets = netS[None] - np.moveaxis(net[:, :, Sa], 2, 0)
            pen = np.where(nets >= 0, aS[None] - np.moveaxis(duals.a[:, :, Sa], 2, 0),
                           bS[None] - np.moveaxis(duals.b[:, :, Sa], 2, 0)).sum(axis=(1, 2))
            vals = base + duals.alpha[Sa] - pairs_in + pen
            k = int(np.argmin(vals))
            if vals[k] < best_val - 1e-12:
                best_val, best_move = float(vals[k]), ("drop", int(Sa[k]))
        if best_move is None:
            return S, value
        kind, v = best_move
        S = sorted(S + [v]) if kind == "add" else [w for w in S if w != v]
        value = best_val


def greedy_pricing(d: LoopData, duals: Duals, k: int, tol: float, together=(), apart=(),
                   skip=frozenset(), seeds=None, deadline: PhaseClock | None = None
                   ) -> list[tuple[tuple[int, ...], float]]:
    """Up to ``k`` distinct loops with ``c̄ < −tol`` by local search (cheap heuristic).

    From each pair with ``β_ij < 0`` (most negative first; or from the loops
    ``seeds``): add the common neighbour within the power cap, or drop the member,
    that lowers ``c̄`` most, while one does (:func:`_grow`). Loops violating the
    branching decisions or in ``skip`` are left out. The search stops early (with
    what it found) when ``deadline`` expires.
    """
    net = d.P - d.C
    adj = [set(d.graph[i]) for i in range(d.n)]
    if seeds is None:
        iu, ju = np.nonzero(np.triu(duals.beta < -tol, 1))
        order = np.argsort(duals.beta[iu, ju], kind="stable")
        seeds = [[int(iu[q]), int(ju[q])] for q in order[:2000]]
    found: dict[tuple[int, ...], float] = {}
    for S0 in seeds:
        if deadline is not None and deadline.expired():
            break
        S0 = sorted(S0)
        if d.power[S0].sum() > d.wmax + 1e-9:
            continue
        S, value = _grow(d, duals, list(S0), adj, net)
        key = tuple(S)
        if value < -tol and key not in skip and key not in found and _respects(
                key, together, apart):
            found[key] = reduced_cost(d, duals, key)  # CG2 itself, not the search's sums
        if len(found) >= 3 * k:
            break
    return sorted(((S, c) for S, c in found.items() if c < -tol), key=lambda kv: kv[1])[:k]


def _neighbours(d: LoopData, S) -> list[list[int]]:
    """Seeds for a local search around loop ``S``: S without one member, S with one
    more (a common neighbour)."""
    S = list(S)
    out = [[v for v in S if v != u] for u in S] if len(S) > 2 else []
    common = set.intersection(*(set(d.graph[i]) for i in S)) - set(S)
    return out + [S + [v] for v in sorted(common)]


def exact_pricing(d: LoopData, duals: Duals, opts: CGOptions, together=(), apart=(),
                  deadline: PhaseClock | None = None, shift: float = 0.0
                  ) -> tuple[tuple[int, ...] | None, float, float]:
    """The pricing MILP (CG4): ``(loop or None, its c̄ from CG2, proven bound)``.

    With ``shift`` λ <= 0 (card, CG5'), the MILP minimises ``c̄(S) − λ|S|`` (every
    member's ``α_i`` shifted by λ) and the bound is one on ``min(0, min_S c̄(S) − λ|S|)``;
    λ = 0 is the plain pricing, whose bound is ``<= min(0, min_S c̄(S))``. The bound is
    the MILP's dual bound (valid also when the solve stopped early); the loop is
    returned only when it has at least two members, with its true ``c̄`` (λ = 0).
    ``deadline``: the MILP gets the time left after its build; none left: no solve,
    bound −inf.
    """
    if shift > 0:
        raise ModelError(f"pricing shift must be <= 0; got {shift!r}")
    alpha = duals.alpha.copy()
    if shift:
        alpha[loop_members(d)] += shift
    beta = {p: float(duals.beta[p]) for p in pricing_pairs(d)}
    m = build_pricing(d, alpha, beta, duals.a, duals.b, together, apart, tol=1e-12)
    time_limit = None if deadline is None else deadline.remaining()
    if time_limit is not None and time_limit <= 0:
        return None, math.nan, -math.inf
    out = solve_pyomo(m, opts.solver, time_limit=time_limit, threads=opts.threads,
                      options={"mip_abs_gap": opts.reduced_cost_tolerance / 10,
                               "mip_rel_gap": 1e-6}
                      if opts.solver.lower() == "highs" else None)
    if not math.isfinite(out.bound):
        return None, math.nan, -math.inf
    bound = min(0.0, out.bound)
    if not out.has_solution:
        return None, math.nan, bound
    S = tuple(i for i in range(d.n) if (m.member[i].value or 0) > 0.5)
    if len(S) < 2:
        return None, 0.0, bound
    cbar = reduced_cost(d, duals, S)
    return S, cbar, min(bound, cbar - shift * len(S))


# --------------------------------------------------------------------------------------
# the algorithm
# --------------------------------------------------------------------------------------
@dataclass
class _Node:
    together: tuple = ()
    apart: tuple = ()
    bound: float = -math.inf


class _Solver:
    """One run of column generation (and branching) on a :class:`RestrictedMaster`."""

    def __init__(self, d: LoopData, opts: CGOptions):
        self.d = d
        self.opts = opts
        # one deadline for every phase (set-up included); pricing rounds stop at
        # ``pricing_share`` of it, the rest is kept for the integer designs
        self.clock = opts.deadline if opts.deadline is not None else PhaseClock(opts.time_limit)
        self.cg_clock = self.clock.share(opts.pricing_share)
        self.master = RestrictedMaster(d, threads=opts.threads)
        if opts.master_solver not in ("full", "split"):
            raise ModelError(f"master_solver must be 'full' or 'split'; got "
                             f"{opts.master_solver!r}")
        self.split = (SplitMaster(self.master, threads=opts.threads,
                                  chunk_steps=opts.split_steps, gap=opts.split_gap)
                      if opts.master_solver == "split" else None)
        self.kappa = self.master.n_members // 2
        self.rounds = 0
        self.exact = 0
        self.timed_out = False
        """Column generation stopped at its share of the time limit."""
        self.history: list[dict] = []
        self.master_seconds = 0.0
        self.pricing_seconds = 0.0
        self.cold_seconds: float | None = None
        """Wall time of the last master solve without a kept basis (``master_start``)."""
        self.restarts = 0
        if opts.master_start not in ("auto", "warm", "cold"):
            raise ModelError(f"master_start must be 'auto', 'warm' or 'cold'; got "
                             f"{opts.master_start!r}")
        self.bar = progress(None, "column generation", "rounds",
                            enabled=None if opts.progress is None else bool(opts.progress))

    def _solve_master(self, clock: PhaseClock | None = None, root: bool = True):
        clock = clock or self.clock
        t0 = time.perf_counter()
        mode = self.opts.master_start
        first = self.cold_seconds is None and self.rounds == 0
        if self.split is not None and root:
            got = self.split.solve(clock)
        elif mode == "cold" or first:
            got = self.master.lp.solve(time_limit=clock.remaining(), cold=True)
            self.cold_seconds = time.perf_counter() - t0
        elif mode == "warm" or self.cold_seconds is None:
            got = self.master.lp.solve(time_limit=clock.remaining())
        else:  # auto: warm, capped; then cold
            left = clock.remaining()
            cap = max(self.opts.restart_floor, self.opts.restart_factor * self.cold_seconds)
            capped = left is None or cap < left
            got = self.master.lp.solve(time_limit=cap if capped else left)
            if got[0] == Status.TIME_LIMIT and capped and not clock.expired():
                self.restarts += 1
                t1 = time.perf_counter()
                log.info("colgen: warm master solve over %.1f s: cold re-solve", cap)
                got = self.master.lp.solve(time_limit=clock.remaining(), cold=True)
                self.cold_seconds = time.perf_counter() - t1
        status, message, obj, x, col_dual, row_dual, _ = got
        self.master_seconds += time.perf_counter() - t0
        if status != Status.OPTIMAL:
            if status == Status.TIME_LIMIT:
                return None
            raise SolverError(f"restricted master LP: {message}")
        duals = self.master.duals(row_dual)
        self.master.check(duals, col_dual, self.opts.check_tolerance)
        return obj, x, duals

    def column_generation(self, node: _Node):
        """CG at ``node`` to optimality (or the limits). Returns ``(value, bound, x,
        converged)``; value None when the time ran out before a master solve."""
        opts, d, master = self.opts, self.d, self.master
        tol = opts.reduced_cost_tolerance
        # the root stops at the pricing share of the limit; a branch-and-price node
        # (which only runs when the root is done) may use the whole of it
        clock = self.cg_clock if not (node.together or node.apart) else self.clock
        best_lb, center = -math.inf, None
        value, x = None, None
        values: list[float] = []
        last_exact = -10**9
        root = not (node.together or node.apart)
        while True:
            got = self._solve_master(clock, root)
            if got is None:  # the master's time ran out
                self.timed_out = True
                return value, best_lb, x, False
            value, x, duals = got
            self.rounds += 1
            base = master.lagrangian_base(duals, 1e-7)
            w = -duals.alpha + 0.5 * np.minimum(duals.beta, 0).sum(axis=1)
            best_lb = max(best_lb, base + float(np.minimum(w, 0).sum()))
            t0 = time.perf_counter()
            price = duals
            smoothed = opts.stabilisation > 0 and center is not None
            if smoothed:
                assert center is not None  # smoothed implies a centre
                price = center.combine(duals, opts.stabilisation)
            skip = frozenset(master.index)
            cols = greedy_pricing(d, price, opts.columns_per_round, tol, node.together,
                                  node.apart, skip, deadline=clock)
            kind = "greedy"
            if smoothed and cols and min(reduced_cost(d, duals, S) for S, _ in cols) >= -tol:
                cols, price, smoothed = [], duals, False  # mis-pricing: price at π
                cols = greedy_pricing(d, price, opts.columns_per_round, tol, node.together,
                                      node.apart, skip, deadline=clock)
            exact_bound, proof, shift = None, None, 0.0
            values.append(value)
            stalled = (len(values) > opts.stall_rounds and values[-opts.stall_rounds - 1]
                       - value <= opts.gap / 4 * max(1.0, abs(value)))
            if (opts.exact_pricing and not clock.expired()
                    and (not cols or (stalled and self.rounds - last_exact
                                      >= opts.stall_rounds))):
                last_exact = self.rounds
                # Dinkelbach-like shift (CG5'): the best ratio c̄/|S| the heuristic found
                shift = min([0.0] + [c / len(S) for S, c in cols])
                S, cbar, bound = exact_pricing(d, price, opts, node.together, node.apart,
                                               clock, shift=shift)
                self.exact += 1
                kind = "exact"
                exact_bound = bound
                proof = bound if shift == 0.0 else None  # min c̄ >= bound: convergence test
                if S is not None and cbar < -tol and S not in master.index and cols:
                    if all(S != c[0] for c in cols):
                        cols = cols + [(S, cbar)]
                elif S is not None and cbar < -tol and S not in master.index:
                    cols = [(S, cbar)] + [c for c in greedy_pricing(
                        d, price, opts.columns_per_round, tol, node.together, node.apart,
                        skip | {S}, seeds=_neighbours(d, S), deadline=clock) if c[0] != S]
                lb_here = (master.lagrangian_base(price, 1e-7) + shift * master.n_members
                           + self.kappa * bound)
                if lb_here > best_lb:
                    best_lb, center = lb_here, price
                if smoothed and not cols:  # nothing pays at π̃: try the master's own duals
                    S, cbar, bound = exact_pricing(d, duals, opts, node.together, node.apart,
                                                   clock)
                    self.exact += 1
                    exact_bound = proof = bound
                    shift = 0.0
                    if S is not None and cbar < -tol and S not in master.index:
                        cols = [(S, cbar)]
                    best_lb = max(best_lb, base + self.kappa * bound)
            self.pricing_seconds += time.perf_counter() - t0
            lp_gap = opts.gap / 2 if opts.lp_gap is None else opts.lp_gap
            early = bool(cols) and lp_gap > 0 and value - best_lb <= lp_gap * max(1.0,
                                                                                 abs(value))
            added = 0 if early else master.add([S for S, _ in cols])
            if added and self.split is not None:
                self.split.add(master.last_added)
            rec = dict(round=self.rounds, value=value, bound=best_lb, columns=len(master.loops),
                       added=added, pricing=kind,
                       min_reduced_cost=min((c for _, c in cols), default=0.0),
                       exact_bound=math.nan if exact_bound is None else exact_bound,
                       pricing_shift=shift,
                       seconds=self.clock.elapsed())
            self.history.append(rec)
            log.info("colgen round %4d  RMP %.8g  LB %.8g  loops %d (+%d, %s)  min c̄ %.3g  "
                     "%.1fs", self.rounds, value, best_lb, len(master.loops), added, kind,
                     rec["min_reduced_cost"], rec["seconds"])
            self.bar.update(1, RMP=f"{value:.6g}", LB=f"{best_lb:.6g}",
                            loops=len(master.loops))
            if early:
                log.info("colgen: LB within %.1e of the master: early termination", lp_gap)
                return value, min(best_lb, value), x, True
            if added == 0:
                converged = opts.exact_pricing and proof is not None and proof >= -tol
                if converged:  # the split's value is its point's, within split_gap
                    best_lb = max(best_lb, (base if self.split is not None and root
                                            else value) - self.kappa * tol)
                else:  # nothing added and no proof: the clock stopped the exact pricing
                    self.timed_out |= clock.expired()
                return value, min(best_lb, value), x, converged
            if clock.expired() or self.rounds >= opts.max_rounds:
                self.timed_out |= clock.expired()
                return value, min(best_lb, value), x, False

    # ---- integer designs ---------------------------------------------------------------
    def z_of(self, x) -> np.ndarray:
        """Loop values of a master solution ``x`` (0 for columns added after it)."""
        cols = self.master.cols
        if len(x) < self.master.lp.n_cols:
            x = np.r_[x, np.zeros(self.master.lp.n_cols - len(x))]
        return x[cols]

    def chosen(self, x) -> list[tuple[int, ...]]:
        z = self.z_of(x)
        return [S for S, v in zip(self.master.loops, z.tolist(), strict=True) if v > 0.5]

    def round_design(self, x, node: _Node | None = None):
        """A design from a master solution: loops by decreasing ``z``, disjoint, fixed at
        1 (the others at 0), the operation LP solved. ``(value, x)`` or ``(None, None)``."""
        z = self.z_of(x)
        loops = self.master.loops
        used: set[int] = set()
        up = np.zeros(len(loops))
        for k in np.argsort(-z, kind="stable").tolist():
            if z[k] <= 1e-6:
                break
            S = loops[k]
            if used.intersection(S) or (node is not None
                                        and not _respects(S, node.together, node.apart)):
                continue
            used.update(S)
            up[k] = 1.0
        cols = self.master.cols
        self.master.lp.set_bounds(cols, up, up)
        status, _, obj, xr_, _, _, _ = self.master.lp.solve(time_limit=self.clock.remaining())
        if node is None:
            self.release()
        else:
            self.node_bounds(node)
        if status != Status.OPTIMAL or xr_ is None:
            return None, None
        return obj, xr_

    def integer_master(self, gap, start=None):
        """Price-and-branch: MLCol over the generated loops in the kept HiGHS object
        (``start``: a design's full solution, the MIP start)."""
        lp = self.master.lp
        self.release()
        if start is not None and len(start) < lp.n_cols:
            start = None
        status, message, obj, x, _, _, bound = lp.solve(
            time_limit=self.clock.remaining(), integer=self.master.cols, mip_gap=gap,
            start=start)
        if x is None:
            return None, None, message
        return obj, x, message

    def node_bounds(self, node: _Node) -> None:
        """Fix to 0 the columns that violate the node's decisions, free the others."""
        cols = self.master.cols
        up = np.array([np.inf if _respects(S, node.together, node.apart) else 0.0
                       for S in self.master.loops])
        self.master.lp.set_bounds(cols, np.zeros(len(cols)), up)

    def release(self) -> None:
        """Every loop column free again (``z >= 0``)."""
        cols = self.master.cols
        self.master.lp.set_bounds(cols, np.zeros(len(cols)), np.full(len(cols), np.inf))

    def fractional_pair(self, x):
        """The member pair whose pair sum Σ_{S∋i,j} z is most fractional, or None."""
        z = self.z_of(x)
        pair_sum: dict[tuple[int, int], float] = {}
        for S, v in zip(self.master.loops, z.tolist(), strict=True):
            if v > 1e-9:
                for p in itertools.combinations(S, 2):
                    pair_sum[p] = pair_sum.get(p, 0.0) + v
        best, score = None, 1e-6
        for p, v in pair_sum.items():
            s = min(v, 1 - v)
            if s > score:
                best, score = p, s
        return best


def solve_column_generation(d: LoopData, options: CGOptions | None = None) -> CGResult:
    """Column generation for MLCol on ``d``, then price-and-branch or branch-and-price."""
    opts = options or CGOptions()
    sv = _Solver(d, opts)
    master = sv.master
    setup = master.setup_seconds
    value, lb, x, converged = sv.column_generation(_Node())
    root_value, root_lb = value, lb
    res = CGResult(status=Status.TIME_LIMIT, message="", objective=math.nan, bound=lb,
                   lp_value=math.nan if value is None else value, lp_bound=lb, loops=[],
                   chosen=[], col_value=None, master=master, setup_seconds=setup)
    ub, best_x, best_chosen = math.inf, None, []
    t0 = time.perf_counter()
    if value is not None and opts.integer:
        obj, xr_ = sv.round_design(x)
        if xr_ is not None:
            ub, best_x, best_chosen = obj, xr_, sv.chosen(xr_)
            log.info("colgen: rounded design %.8g (gap %.2e to the bound)", ub,
                     relative_gap(ub, lb))
        if relative_gap(ub, lb) > opts.gap and not sv.clock.expired():
            obj, xi, message = sv.integer_master(opts.gap / 2, start=best_x)
            if xi is not None and obj < ub:
                ub, best_x, best_chosen = obj, xi, sv.chosen(xi)
    res.integer_seconds = time.perf_counter() - t0
    nodes = 1
    if (opts.branch_and_price and opts.integer and value is not None
            and relative_gap(ub, lb) > opts.gap):
        heap: list = []
        counter = itertools.count()
        root = _Node(bound=lb)
        pair = sv.fractional_pair(x)
        if pair is None:  # the root LP is integral: its value is the optimum
            if value < ub:
                ub, best_x, best_chosen = value, x, sv.chosen(x)
        else:
            for child in (_Node(root.together + (pair,), root.apart, lb),
                          _Node(root.together, root.apart + (pair,), lb)):
                heapq.heappush(heap, (child.bound, next(counter), child))
        while heap and not sv.clock.expired() and nodes < opts.max_nodes:
            global_lb = min(heap[0][0], ub)
            if relative_gap(ub, global_lb) <= opts.gap:
                break
            bound, _, node = heapq.heappop(heap)
            if bound >= ub - opts.gap * max(1.0, abs(ub)):
                continue
            nodes += 1
            sv.node_bounds(node)
            v, nlb, nx_, conv = sv.column_generation(node)
            if v is None:
                heapq.heappush(heap, (bound, next(counter), node))
                break
            nlb = max(nlb, bound)
            if not conv:  # limits hit inside the node: keep its bound, stop
                heapq.heappush(heap, (nlb, next(counter), node))
                break
            if nlb >= ub - 1e-9 * max(1.0, abs(ub)):
                continue  # the node cannot beat the incumbent
            pair = sv.fractional_pair(nx_)
            if pair is None:
                if v < ub:
                    ub, best_x, best_chosen = v, nx_.copy(), sv.chosen(nx_)
                continue
            ro, rx = sv.round_design(nx_, node)
            if ro is not None and ro < ub:
                ub, best_x, best_chosen = ro, rx, sv.chosen(rx)
            for child in (_Node(node.together + (pair,), node.apart, nlb),
                          _Node(node.together, node.apart + (pair,), nlb)):
                heapq.heappush(heap, (child.bound, next(counter), child))
        lb = min(ub, heap[0][0]) if heap else (ub if math.isfinite(ub) else lb)
        lb = max(lb, root_lb)
        sv.release()
    sv.bar.close()
    if not math.isfinite(lb):  # no master solved in time: every actor sells all, buys nothing
        lb = float(-(d.probability[:, None, None] * d.sell * d.P).sum())
    if best_x is None:  # the no-loop design is always feasible: the incumbent of last resort
        x0 = np.r_[master.no_loop, np.zeros(master.lp.n_cols - len(master.no_loop))]
        ub = float(master.lp.cost @ master.no_loop) + master.lp.offset  # loops cost 0
        best_x, best_chosen = x0, []
    res.objective = ub if best_x is not None else math.nan
    res.bound = min(lb, ub) if math.isfinite(ub) else lb
    res.col_value = best_x
    res.chosen = best_chosen
    res.loops = list(master.loops)
    res.rounds, res.nodes, res.exact_pricings = sv.rounds, nodes, sv.exact
    res.history = sv.history
    res.solver, res.converged = sv, bool(converged)
    res.master_seconds, res.pricing_seconds = sv.master_seconds, sv.pricing_seconds
    res.lp_value = math.nan if root_value is None else root_value
    res.lp_bound = root_lb
    if not opts.integer:
        res.status = Status.OPTIMAL if converged else (
            Status.TIME_LIMIT if sv.clock.expired() or sv.timed_out else Status.FEASIBLE)
        res.message = "column generation " + ("converged" if converged else "stopped early")
        return res
    proven = relative_gap(res.objective, res.bound) <= opts.gap + 1e-12  # the bound is always valid
    if best_x is None:
        res.status = Status.TIME_LIMIT if sv.clock.expired() else Status.ERROR
        res.message = "no integer design found"
    elif proven:
        res.status = Status.OPTIMAL
        res.message = "optimal within the gap"
    elif sv.clock.expired() or sv.timed_out:
        res.status = Status.TIME_LIMIT
        res.message = "time limit: incumbent and bound"
    else:
        res.status = Status.FEASIBLE
        res.message = ("gap to the column-generation bound left (use "
                       "branch_and_price=true to close it)" if not opts.branch_and_price
                       else "branch-and-price stopped at a limit")
    log.info("colgen: %s; UB %.8g LB %.8g gap %.2e; %d loops, %d rounds, %d nodes",
             res.message, res.objective, res.bound, res.gap, len(res.loops), res.rounds,
             res.nodes)
    return res




def resume_column_generation(res: CGResult, deadline: PhaseClock) -> int:
    """More root pricing rounds of an LP-only run (``integer=False``) until ``deadline``,
    in the same kept master: MLColExt goes back to pricing when Benders on the loops
    generated so far left time (card ``models/SLExt-MLColExt.md``). Updates ``res``
    (loops, bound = the best of the old and the new valid bounds, LP value, counts,
    history, status); returns the number of loops added."""
    sv = res.solver
    if sv is None or res.converged:
        return 0
    before = len(sv.master.loops)
    sv.clock = sv.cg_clock = deadline
    sv.timed_out = False
    value, lb, _, converged = sv.column_generation(_Node())
    if value is not None:
        res.lp_value = value
    res.bound = res.lp_bound = max(res.bound, lb)
    res.converged = bool(converged)
    res.loops = list(sv.master.loops)
    res.rounds, res.exact_pricings = sv.rounds, sv.exact
    res.history = sv.history
    res.master_seconds, res.pricing_seconds = sv.master_seconds, sv.pricing_seconds
    res.status = Status.OPTIMAL if converged else (
        Status.TIME_LIMIT if deadline.expired() or sv.timed_out else Status.FEASIBLE)
    res.message = "column generation " + ("converged" if converged else "stopped early")
    return len(sv.master.loops) - before


# --------------------------------------------------------------------------------------
# MLCol with enumeration=generate: the runner's algorithm
# --------------------------------------------------------------------------------------
def cg_options(time_limit=None, mip_gap=None, threads=None, exact_pricing=True,
               branch_and_price=False, stabilisation=0.0, columns_per_round=40,
               max_rounds=10_000, progress=None, solver="highs",
               master_solver="split") -> CGOptions:
    """:class:`CGOptions` from the model options (``mip_gap``: the target gap, 1e-4)."""
    if not 0.0 <= float(stabilisation) < 1.0:
        raise ModelError(f"stabilisation must be in [0, 1); got {stabilisation!r}")
    return CGOptions(exact_pricing=bool(exact_pricing), branch_and_price=bool(branch_and_price),
                     stabilisation=float(stabilisation),
                     columns_per_round=max(1, int(columns_per_round)),
                     max_rounds=int(max_rounds), gap=1e-4 if mip_gap is None else float(mip_gap),
                     time_limit=None if time_limit is None else float(time_limit),
                     threads=threads, solver=solver, progress=progress,
                     master_solver=str(master_solver))


def cg_history(res: CGResult) -> xr.Dataset:
    """The column-generation round log as variables on ``cg_round`` (``cg_value``: the
    restricted master LP's value, ``cg_bound``: the Lagrangian bound, ...)."""
    keys = ("value", "bound", "columns", "added", "min_reduced_cost", "exact_bound",
            "pricing_shift", "seconds")
    data = {f"cg_{k}": (("cg_round",), np.array([h[k] for h in res.history], dtype=float))
            for k in keys}
    return xr.Dataset(data, coords={"cg_round": np.array([h["round"] for h in res.history])})


def cg_record(res: CGResult, extract_seconds: float = 0.0) -> RunRecord:
    """The run's record of a column-generation run (status, bounds, sizes, timings)."""
    master = res.master
    assert master is not None  # set by solve_column_generation
    lp = master.lp
    kind = "branch-and-price" if res.nodes > 1 else "price-and-branch"
    return RunRecord(
        status=res.status,
        message=(f"column generation ({kind}): {res.message}; {len(res.loops)} loops "
                 f"generated, {res.rounds} rounds, {res.exact_pricings} exact pricings, "
                 f"{res.nodes} nodes"),
        has_solution=res.has_solution, objective=res.objective, bound=res.bound,
        gap=res.gap, solver_version=lp.version, build_seconds=master.build_seconds,
        compile_seconds=lp.compile_seconds,
        solve_seconds=res.master_seconds + res.pricing_seconds + res.integer_seconds,
        extract_seconds=extract_seconds, blocks=1, workers=1, n_variables=lp.n_cols,
        n_constraints=len(lp.row_lower), n_integer=len(res.loops),
        extra=dict(cg_rounds=res.rounds, cg_nodes=res.nodes,
                   cg_exact_pricings=res.exact_pricings, cg_lp_value=res.lp_value,
                   cg_lp_bound=res.lp_bound, cg_master_seconds=res.master_seconds,
                   cg_pricing_seconds=res.pricing_seconds,
                   cg_integer_seconds=res.integer_seconds,
                   n_generated_loops=len(res.loops)),
    )


@register_algorithm("mlcol_colgen")
def solve_mlcol_generated(instance, *, model="MLCol", time_limit=None, seed=None,
                          solver="highs", mip_gap=None, threads=None, options=None,
                          self_consumption=True, distance="auto", internal_price=math.nan,
                          exact_pricing=True, branch_and_price=False, stabilisation=0.0,
                          columns_per_round=40, progress=None, master_solver="split",
                          **_enumeration_options):
    """``MLCol --option enumeration=generate``: the solution and the run's record."""
    d = loop_data(instance, self_consumption=self_consumption, distance=distance)
    opts = cg_options(time_limit, mip_gap, threads, exact_pricing, branch_and_price,
                      stabilisation, columns_per_round, progress=progress, solver=solver,
                      master_solver=master_solver)
    res = solve_column_generation(d, opts)
    t1 = time.perf_counter()
    if res.has_solution:
        assert res.master is not None  # a solution comes from the master
        f, gb, gs = res.master.operation(res.col_value)
        chosen = res.chosen
        u = (np.moveaxis(surplus_of_loops(d, chosen), 0, -1).astype(float) if chosen
             else np.zeros(d.shape[:2] + (0,)))
        sol = solution_dataset(instance, d, chosen, u, f, gb, gs)
        sol.attrs["n_graph_edges"] = len(d.edges)
        sol.attrs["n_enumerated_loops"] = len(res.loops)
        out = derive(instance, sol, self_consumption=self_consumption,
                     internal_price=internal_price, enumeration="generate")
        out = xr.merge([out, cg_history(res)], combine_attrs="override")
        if "summary_text" in out.attrs:
            out.attrs["summary_text"] += (
                f"\ncolgen     {res.rounds} rounds, {res.exact_pricings} exact pricings, "
                f"{res.nodes} nodes; LP {res.lp_value:.6g}, bound {res.bound:.6g}")
    else:
        out = xr.merge([empty_solution(instance), cg_history(res)])
    return out, cg_record(res, time.perf_counter() - t1)


__all__ = ["CGOptions", "CGResult", "RestrictedMaster", "SplitMaster", "ReducedCostError", "Duals",
           "reduced_cost", "greedy_pricing", "exact_pricing", "solve_column_generation",
           "resume_column_generation",
           "solve_mlcol_generated", "cg_options", "cg_record", "cg_history"]
