"""Coalitional games of a community or a loop, and their allocations.

Model card ``models/benefit-sharing.md``. A *game* gives the value ``v(S)`` (EUR,
expected over the instance's scenarios, over its horizon) of every coalition ``S``
of its players, a coalition being a bitmask (bit ``i`` = player ``i``). Two
families come from the models (:mod:`recopt.models.sharing`):

* :func:`community_game` — ``v(S)`` = the optimal collective bill saving of ``S``
  alone (LP1 restricted to ``S``, against the members' stand-alone bills);
* :func:`loop_game` — ``v(S)`` = the value of the loop's flow LP with ``S`` as the
  loop (Chasseray's second stage), for the members of one feasible loop.

Both evaluate ``v(S)`` on one model compiled once (the membership ``z`` only moves
right-hand sides: :class:`recopt.decomp.benders.SecondStage`, HiGHS kept between
solves), cache every value per bitmask, and evaluate batches of coalitions in
worker processes (:func:`recopt.solve.runner.map_in_workers`). The community game
evaluates ``v(S)`` by default without a solver, by the exact closed form of
:class:`recopt.decomp.community_values.CommunityValues` (``values_batch``,
``prefix_values``; card, "The fast path"). :class:`TableGame`
holds a textbook game given by a function or a table.

Allocations (each checks its own certificates):

* :func:`shapley_exact` — Shapley (1953), from all ``2^n`` values;
* :func:`shapley_sampled` — permutation sampling (Castro, Gómez, Tejada 2009) with
  a confidence interval per player and a stopping rule on its half-width;
  ``method="multilinear"``: :func:`shapley_multilinear`, sampling of Owen's (1972)
  multilinear extension on games with ``flip_values`` (the default of
  :func:`allocate` on those games, ``shapley_method="auto"``);
* :func:`least_core`, :func:`nucleolus` — the sequence of LPs of Maschler, Peleg,
  Shapley (1979) by constraint generation (Hallefjord, Helming, Jørnsten 1995):
  the LP over allocations holds only generated coalitions; a separation MILP over
  the membership ``z`` finds the most violated one, outside the span of the
  coalitions already fixed; ``method="enumerate"`` solves the same LPs over all
  ``2^n - 2`` coalitions (small ``n``, the tests' oracle);
* :func:`core_check` — is an allocation in the core? (the blocking coalition if not);
* :func:`superadditivity` — ``v(S ∪ T) >= v(S) + v(T)`` for disjoint ``S``, ``T``.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import xarray as xr

from recopt.decomp.benders import BendersOptions, SecondStage, TwoStage
from recopt.decomp.community_values import (
    ClosedFormSeparation,
    CommunityValues,
    SubmodularSeparation,
)
from recopt.decomp.parallel import map_in_workers
from recopt.errors import ModelError, SolverError
from recopt.lazy import pyomo_module
from recopt.models.loops import loop_data
from recopt.models.loops.data import LoopData
from recopt.models.sharing import (
    add_excess_objective,
    add_outside_span,
    build_excess_lp,
    build_separation_master,
    community_coalition,
    loop_coalition,
    loop_status,
    remove_outside_span,
    set_allocation,
)
from recopt.solvers.dispatch import solve_pyomo
from recopt.solvers.highs import HighsArrayLP
from recopt.solvers.status import Status

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")

log = logging.getLogger("recopt.games")

#: Largest number of players :func:`shapley_exact` and ``method="enumerate"`` accept.
EXACT_MAX_PLAYERS = 16
#: Below this many uncached coalitions a batch is evaluated in this process.
PARALLEL_MIN_COALITIONS = 64
#: How a model game finds its most violated coalition (:meth:`ModelGame.separate`).
SEPARATIONS = ("milp", "outer")
#: Start coalitions of the closed-form separation's local search (largest excess).
LOCAL_SEARCH_STARTS = 8
#: Relative tolerance of the certificates (times max(1, |v(N)|)).
TOLERANCE = 1e-7


def mask_vector(mask: int, n: int) -> np.ndarray:
    """0/1 vector of length ``n`` of bitmask ``mask`` (bit i = player i; any ``n``)."""
    return masks_matrix([mask], n)[0].astype(np.int8)


def masks_matrix(masks: Sequence[int], n: int) -> np.ndarray:
    """Boolean membership matrix (len(masks), n) of bitmasks (any ``n``)."""
    if n <= 62:
        m = np.asarray([int(x) for x in masks], dtype=np.int64)
        return ((m[:, None] >> np.arange(n)) & 1).astype(bool)
    return np.array([[(int(x) >> i) & 1 for i in range(n)] for x in masks], dtype=bool)


def vector_mask(z) -> int:
    """Bitmask of a 0/1 vector."""
    return int(sum(1 << i for i, v in enumerate(np.asarray(z).ravel()) if v > 0.5))


def _popcount(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks, dtype=np.int64)
    out = np.zeros(masks.shape, dtype=np.int64)
    m = masks.copy()
    while m.any():
        out += m & 1
        m >>= 1
    return out


# --------------------------------------------------------------------------------------
# games
# --------------------------------------------------------------------------------------
@dataclass
class Separation:
    """The most violated coalition found for an allocation x (EUR).

    ``excess`` = ``v(S) - x(S)`` at the coalition found; ``bound`` a proven upper
    bound of the largest excess over every allowed coalition (= ``excess`` when
    the separation is solved to optimality).
    """

    mask: int
    value: float
    excess: float
    bound: float
    more: list[tuple[int, float]] = field(default_factory=list)
    """Other coalitions found violated beyond the threshold, ``(mask, v)`` (a
    heuristic's by-catch: the row generation adds them too)."""


def best_of(best: Separation | None, mask: int, value: float, excess: float,
            bound: float) -> Separation:
    """One step of a cutting-plane separation: the coalition of largest excess so far
    (``mask`` if it beats ``best``), carrying the master's latest ``bound``."""
    if best is None or excess > best.excess:
        best = Separation(mask, value, excess, bound)
    best.bound = bound
    return best


def separation_done(best: Separation, seen: bool, threshold: float | None,
                    tol: float) -> bool:
    """Whether a cutting-plane separation stops: the master proposed a coalition it
    already had (``seen``), its bound proves ``best`` within ``tol`` (EUR), or ``best``
    already exceeds the caller's ``threshold``."""
    return (seen or best.bound <= best.excess + tol
            or (threshold is not None and best.excess > threshold))


class Game:
    """A coalitional game on ``players``: ``v(S)`` per bitmask, cached.

    Subclasses implement :meth:`_evaluate` (a list of masks -> values) and may
    override :meth:`separate` (default: by enumeration, small ``n`` only).
    A game may carry a vectorised evaluator: ``values_batch`` (a (B, n) boolean
    membership matrix -> B values, used by :meth:`values` instead of
    :meth:`_evaluate`) and ``prefix_values`` (a (k, n) array of permutations -> the
    (k, n) values of their prefixes, used by :func:`shapley_sampled` without the
    cache); ``None`` when the game has none.
    """

    family = "table"

    def __init__(self, players: Sequence[str]):
        self.players = [str(p) for p in players]
        if len(set(self.players)) != len(self.players):
            raise ModelError("players must have distinct names")
        self.cache: dict[int, float] = {0: 0.0}
        self.evaluate_seconds = 0.0
        self.n_evaluated = 0
        self.values_batch: Callable[[np.ndarray], np.ndarray] | None = None
        self.prefix_values: Callable[[np.ndarray], np.ndarray] | None = None
        self.flip_values: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
        """(B, n) coalitions -> ``v`` (B,) and ``v(S xor {i})`` (B, n), uncached (used by
        :func:`shapley_sampled` ``method="multilinear"``); ``None`` when absent."""
        self.n_uncached = 0
        """Coalition values computed by ``prefix_values`` (not cached; repeats counted)."""
        self.deadline: float | None = None
        """``time.perf_counter()`` instant after which a separation stops with an
        error (set by the row generation from its ``time_limit``)."""
        self.initial_complements = False
        """Row generation starts from the complements ``N \\ {i}`` too (set by
        :func:`community_game` on its closed form: one batch, no solver)."""

    @property
    def n(self) -> int:
        return len(self.players)

    @property
    def grand(self) -> int:
        return (1 << self.n) - 1

    def _evaluate(self, masks: list[int]) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, masks: Iterable[int]) -> np.ndarray:
        """``v(S)`` for every mask (EUR), evaluating only the uncached ones."""
        masks = [int(m) for m in masks]
        missing = sorted({m for m in masks if m not in self.cache})
        if any(m < 0 or m > self.grand for m in missing):
            raise ModelError(f"a coalition mask is outside 0..{self.grand}")
        if missing:
            t0 = time.perf_counter()
            found = (self._evaluate(missing) if self.values_batch is None
                     else self.values_batch(masks_matrix(missing, self.n)).tolist())
            for m, v in zip(missing, found, strict=True):
                self.cache[m] = float(v)
            self.evaluate_seconds += time.perf_counter() - t0
            self.n_evaluated += len(missing)
        return np.array([self.cache[m] for m in masks], dtype=float)

    def value(self, mask: int) -> float:
        return float(self.values([mask])[0])

    def members_of(self, mask: int) -> list[str]:
        return [p for i, p in enumerate(self.players) if mask >> i & 1]

    def separate(self, allocation, basis=None, threshold: float | None = None
                 ) -> Separation | None:
        """The coalition of largest excess ``v(S) - x(S)`` (by enumeration here).

        ``basis`` (n, d): only coalitions ``z`` with ``basisᵀ z != 0`` (outside the
        span of the fixed coalitions); ``None``: every coalition but ∅ and N.
        ``threshold``: a separation may return as soon as it has a coalition whose
        excess exceeds it (its ``bound`` is then not a proof); ignored here.
        """
        return enumerate_separation(self, allocation, basis)


class TableGame(Game):
    """A game given by ``value(mask) -> float`` or by a table of ``2^n`` values."""

    def __init__(self, players: Sequence[str], value: Callable[[int], float] | Sequence[float]):
        super().__init__(players)
        if callable(value):
            self._fn = value
        else:
            table = np.asarray(value, dtype=float)
            if table.shape != (1 << self.n,):
                raise ModelError(f"a table game needs 2^{self.n} values, got {table.size}")
            self._fn = lambda m: float(table[m])
        self.cache[0] = float(self._fn(0))

    def _evaluate(self, masks):
        return [float(self._fn(m)) for m in masks]


def enumerate_separation(game: Game, allocation, basis=None) -> Separation | None:
    """Brute-force separation over all coalitions (the oracle of the tests)."""
    n = game.n
    if n > EXACT_MAX_PLAYERS:
        raise ModelError(f"enumeration over 2^{n} coalitions refused (n > {EXACT_MAX_PLAYERS})")
    masks = np.arange(1, game.grand, dtype=np.int64)
    Z = ((masks[:, None] >> np.arange(n)) & 1).astype(float)
    if basis is not None:
        keep = np.abs(Z @ np.asarray(basis, float)).sum(axis=1) > 0.5
        masks, Z = masks[keep], Z[keep]
    if len(masks) == 0:
        return None
    v = game.values(masks.tolist())
    e = v - Z @ np.asarray(allocation, float)
    k = int(np.argmax(e))
    return Separation(int(masks[k]), float(v[k]), float(e[k]), float(e[k]))


# ---- evaluators compiled once, shared with forked workers ---------------------------
_EVALUATORS: dict[int, _CoalitionLP] = {}


class _CoalitionLP:
    """The fixed-membership model compiled once; ``v(S)`` by right-hand sides only."""

    def __init__(self, model, first_stage: list, first_vector: Callable[[np.ndarray], np.ndarray],
                 solver: str, threads: int | None):
        problem = TwoStage(master=None, first_stage=[], sub=model, sub_first_stage=first_stage,
                           block_of=lambda index: 0, theta_lower={})
        self.second = SecondStage(problem)
        self.first_vector = first_vector
        self.options = BendersOptions(solver=solver, threads=threads,
                                      sub_options={"presolve": "off"}
                                      if solver.lower() == "highs" else None)
        self.pid = os.getpid()

    def value(self, z: np.ndarray, cut: bool = False):
        """``v(z)``, EUR; with ``cut``: ``(v, a, g)``, the LP-duality cut
        ``v(z') <= a + g·z'`` (valid when ``z`` is the whole first stage; checked tight)."""
        if self.pid != os.getpid():  # a forked worker: its own HiGHS object
            self.second._lp = None
            self.pid = os.getpid()
        x = self.first_vector(np.asarray(z, float))
        phi, lam, _y, status, message = self.second.solve(x, self.options, None)
        if phi is None:
            raise SolverError(f"coalition LP: {status.value} ({message})")
        v = -(float(phi.sum()) + self.second.offset)
        if not cut:
            return v
        a = -self.second.offset - float(lam @ self.second.h)
        g = np.asarray(self.second.H.T @ lam, float)
        if abs(a + g @ x - v) > 1e-7 * (1.0 + abs(v) + float(np.abs(lam * self.second.h).sum())):
            raise SolverError(f"coalition LP: duality cut not tight ({a + g @ x:.9g} vs "
                              f"v = {v:.9g}); the solver's duals are wrong")
        return v, a, g


def _evaluate_chunk(key: int, masks: list[int], n: int, cut: bool = False) -> list:
    ev = _EVALUATORS[key]
    return [ev.value(mask_vector(m, n), cut) for m in masks]


class ModelGame(Game):
    """A game whose ``v(S)`` is a coalition model's value (community or loop).

    ``workers``: processes for batches of coalitions (default: the machine's cores;
    1 = in this process). Worker processes are forked (they inherit the compiled
    model); where fork is unavailable the batches run in this process.
    """

    def __init__(self, players, *, family: str, fixed_model, first_stage, first_vector,
                 separation_model: Callable[[], pyo.ConcreteModel], solver: str = "highs",
                 workers: int | None = None, threads: int | None = 1, instance=None,
                 separation: str = "milp"):
        super().__init__(players)
        if separation not in SEPARATIONS:
            raise ModelError(f"separation must be one of {', '.join(SEPARATIONS)}; "
                             f"got {separation!r}")
        self.separation = separation
        self.cuts: dict[int, tuple[float, np.ndarray]] = {}
        self.family = family
        self.solver = solver
        self.workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
        self.instance = instance
        self._separation_model = separation_model
        self._separation = None
        self._key = id(self)
        t0 = time.perf_counter()
        _EVALUATORS[self._key] = _CoalitionLP(fixed_model, first_stage, first_vector, solver,
                                              threads)
        self.build_seconds = time.perf_counter() - t0
        self.separation_seconds = 0.0
        self.n_separations = 0
        self.closed_separation: ClosedFormSeparation | None = None
        self.submodular_separation: SubmodularSeparation | None = None
        """Set by :func:`community_game` (``fast``): separation by the closed form."""

    def __del__(self):
        key = getattr(self, "_key", None)
        if key is not None:
            _EVALUATORS.pop(key, None)

    def _evaluate(self, masks):
        fork = "fork" in mp.get_all_start_methods()
        cut = self.separation == "outer"
        if self.workers > 1 and fork and len(masks) >= PARALLEL_MIN_COALITIONS:
            # contiguous runs of sorted masks: neighbouring coalitions share most of
            # their members, so each worker's warm-started LP moves little
            k = self.workers * 2
            ordered = sorted(masks)
            size = -(-len(ordered) // k)
            chunks = [ordered[i:i + size] for i in range(0, len(ordered), size)]
            parts = map_in_workers(_evaluate_chunk,
                                   [(self._key, c, self.n, cut) for c in chunks], self.workers)
            found: dict[int, Any] = {}
            for c, vals in zip(chunks, parts, strict=True):
                found.update(zip(c, vals, strict=True))
            results = [found[m] for m in masks]
        else:
            results = _evaluate_chunk(self._key, masks, self.n, cut)
        if not cut:
            return results
        for m, (_v, a, g) in zip(masks, results, strict=True):
            self.cuts[m] = (a, g)
        return [r[0] for r in results]

    def _ensure_cuts(self, masks: list[int]) -> None:
        """Solve the coalition LP of the masks without a duality cut yet (the outer
        separation needs the cuts; a vectorised ``values_batch`` gives values only).
        Values already cached stay (the two agree to the LP's tolerance, tested)."""
        missing = [m for m in masks if m not in self.cuts]
        if not missing:
            return
        t0 = time.perf_counter()
        for m, v in zip(missing, self._evaluate(missing), strict=True):
            self.cache.setdefault(m, float(v))
        self.evaluate_seconds += time.perf_counter() - t0
        self.n_evaluated += len(missing)

    def separate(self, allocation, basis=None, threshold: float | None = None
                 ) -> Separation | None:
        """The most violated coalition ``max_z v(z) - x·z`` (:mod:`recopt.models.sharing`).

        ``separation="milp"``: the compact MILP (the flow model with binary
        membership); ``v(S)`` of the coalition found is evaluated again by the
        coalition LP (and cached); the excess bound is the MILP's proven bound.
        ``"outer"`` (community game): the same MILP by outer approximation
        (:meth:`_separate_outer`).
        """
        if self.separation == "outer" and self.closed_separation is not None:
            return self._separate_closed(allocation, basis, threshold)
        if self.separation == "outer":
            return self._separate_outer(allocation, basis, threshold)
        t0 = time.perf_counter()
        if self._separation is None:  # built once; allocation and span rows change
            self._separation = self._separation_model()
            add_excess_objective(self._separation, allocation)
        m = self._separation
        assert m is not None  # built just above
        set_allocation(m, allocation)
        remove_outside_span(m)
        if basis is not None:
            add_outside_span(m, basis)
        out = solve_pyomo(m, self.solver, mip_gap=1e-9,
                          options={"mip_abs_gap": 1e-9} if self.solver == "highs" else None)
        self.separation_seconds += time.perf_counter() - t0
        self.n_separations += 1
        if out.status == Status.INFEASIBLE:
            return None
        if out.status != Status.OPTIMAL:
            raise SolverError(f"separation MILP: {out.status.value} ({out.message})")
        z = np.array([pyo.value(m.member[i]) for i in range(self.n)])
        mask = vector_mask(np.round(z))
        v = self.value(mask)
        excess = v - float(np.asarray(allocation, float) @ mask_vector(mask, self.n))
        return Separation(mask, v, excess, -float(out.bound))

    def _separate_outer(self, allocation, basis=None, threshold: float | None = None,
                        tol: float = TOLERANCE) -> Separation | None:
        """Separation by outer approximation (Kelley's cutting planes; Geoffrion's
        generalised Benders decomposition, J. Optim. Theory Appl. 10 (1972) 237-260,
        doi:10.1007/BF00934810).

        ``v`` is concave in ``z``: every coalition LP solved (here or by any earlier
        evaluation: the cuts are kept in ``self.cuts``) gives a valid cut
        ``v(z) <= a + g·z``. The master (:func:`build_separation_master`, a MILP
        in ``z`` and θ only) gives an upper bound of the largest excess; its ``z`` is
        evaluated (one LP, a new cut) until the master's bound is within ``tol`` of
        the best coalition found, or the master proposes an evaluated coalition
        (then its cut is tight there and the bound is reached), or — given a
        ``threshold`` — a coalition of excess above it is found (early return: the
        row generation proves optimality only when nothing exceeds ε).
        """
        t0 = time.perf_counter()
        x = np.asarray(allocation, float)
        n = self.n
        scale = max(1.0, abs(self.value(self.grand)))
        if len(self.cuts) < n + 1:
            self._ensure_cuts([1 << i for i in range(n)])
        best: Separation | None = None
        while True:
            masks = list(self.cuts)
            m = build_separation_master(n, [self.cuts[k][0] for k in masks],
                                        np.array([self.cuts[k][1] for k in masks]), x)
            if basis is not None:
                add_outside_span(m, basis)
            # one thread: these masters are tiny (n binaries), HiGHS's threads cost more
            # than they save (12 players x 128 cuts: 0.06 s vs 0.11 s with 2 threads)
            out = solve_pyomo(m, self.solver, mip_gap=1e-9, threads=1,
                              options={"mip_abs_gap": 1e-9 * scale} if self.solver == "highs"
                              else None)
            self.n_separations += 1
            if out.status == Status.INFEASIBLE:
                best = None
                break
            if out.status != Status.OPTIMAL:
                raise SolverError(f"separation master: {out.status.value} ({out.message})")
            bound = -float(out.bound)
            z = np.round([pyo.value(m.member[i]) for i in range(n)])
            mask = vector_mask(z)
            seen = mask in self.cache and mask in self.cuts
            self._ensure_cuts([mask])
            v = self.value(mask)
            excess = v - float(x @ mask_vector(mask, n))
            best = best_of(best, mask, v, excess, bound)
            if separation_done(best, seen, threshold, tol * scale):
                break
        self.separation_seconds += time.perf_counter() - t0
        return best


    def _separate_closed(self, allocation, basis=None, threshold: float | None = None,
                         tol: float = TOLERANCE) -> Separation | None:
        """Separation by the closed form (:class:`~recopt.decomp.community_values.
        ClosedFormSeparation`): local search from the cached coalitions of largest
        excess (their ascent's local optima), returning early when one exceeds
        ``threshold`` (bound ``inf``: no proof); otherwise the exact outer
        approximation with the closed form's grouped cuts, whose bound is a proof."""
        t0 = time.perf_counter()
        cs = self.closed_separation
        assert cs is not None
        x = np.asarray(allocation, float)
        n = self.n
        scale = max(1.0, abs(self.value(self.grand)))
        Bm = None if basis is None else np.asarray(basis, float)

        def allowed(Z):
            size = Z.sum(axis=1)
            ok = (size >= 1) & (size <= n - 1)
            if Bm is not None:
                ok &= np.abs(Z.astype(float) @ Bm).sum(axis=1) > 0.5
            return ok

        if not cs.slopes:
            cs.add_cuts(np.vstack([np.eye(n, dtype=bool), np.ones((1, n), bool)]))
        cached = [m for m in self.cache if 0 < m < self.grand]
        best: Separation | None = None
        if cached:
            Zc = masks_matrix(cached, n)
            exc = np.array([self.cache[m] for m in cached]) - Zc @ x
            top = np.argsort(-exc)[:LOCAL_SEARCH_STARTS]
            found = cs.local_search(x, Zc[top] > 0.5, allowed)
            for z, v, _e in found:
                self.cache.setdefault(vector_mask(z), float(v))
            if found:
                z, v, e = found[0]
                best = Separation(vector_mask(z), v, e, math.inf)
            if threshold is not None and best is not None and best.excess > threshold:
                best.more = [(vector_mask(z), v) for z, v, e in found[1:] if e > threshold]
                # the master keeps the cuts of the coalitions the row generation adds
                cs.add_cuts(np.array([z for z, _v, e in found if e > threshold]))
                self.separation_seconds += time.perf_counter() - t0
                self.n_separations += 1
                return best
        start = None if best is None else mask_vector(best.mask, n) > 0
        sub = self.submodular_separation
        if sub is not None and sub.ok:
            return self._separate_submodular(sub, x, Bm, threshold, best, start, t0,
                                             1e-9 * scale,
                                             lambda z: cs.local_search(x, z[None], allowed))
        cutoff = threshold
        while True:
            if self.deadline is not None and time.perf_counter() > self.deadline:
                raise SolverError("row generation: time limit reached inside a separation "
                                  f"({cs.masters} separation masters solved)")
            # with a threshold, the master stops at its first coalition above it: the
            # proof (bound <= threshold) is needed only when none is left
            z, bound = cs.master(x, Bm, tol_abs=1e-9 * scale, cutoff=cutoff, start=start)
            self.n_separations += 1
            if z is None:
                if math.isinf(bound):
                    best = None
                elif best is None:  # proven: nothing above the cutoff, none found
                    best = Separation(0, 0.0, -math.inf, bound)
                else:
                    best.bound = bound
                break
            seen = np.packbits(z).tobytes() in cs.seen
            v = float(cs.add_cuts(z[None])[0])
            mask = vector_mask(z)
            self.cache.setdefault(mask, v)
            excess = v - float(x @ z)
            best = best_of(best, mask, v, excess, bound)
            if seen and cutoff is not None and excess <= cutoff:
                # an evaluated coalition above the cutoff only within HiGHS's
                # tolerances: prove the bound by solving the master to optimality
                cutoff = None
                continue
            if separation_done(best, seen, threshold, tol * scale):
                break
            if cutoff is not None:
                # the master's coalition is not violated: climb from it (cheap; the
                # master's next coalition costs a MILP)
                found = [f for f in cs.local_search(x, z[None], allowed) if f[2] > threshold]
                if found:
                    cs.add_cuts(np.array([f[0] for f in found]))
                    for fz, fv, _e in found:
                        self.cache.setdefault(vector_mask(fz), float(fv))
                    fz, fv, fe = found[0]
                    best = Separation(vector_mask(fz), fv, fe, bound)
                    best.more = [(vector_mask(g), gv) for g, gv, _e in found[1:]]
                    break
        self.separation_seconds += time.perf_counter() - t0
        return best


    def _separate_submodular(self, sub: SubmodularSeparation, x, Bm, threshold, best,
                             start, t0: float, tol_abs: float,
                             climb=None) -> Separation | None:
        """The exact phase of :meth:`_separate_closed` by submodular cuts
        (:class:`~recopt.decomp.community_values.SubmodularSeparation`); the local
        search's best coalition (``best``, ``start``) is cut first, its part searched
        first; ``climb``: the local search from a master coalition not violated."""
        if start is not None:
            sub.add_cuts(start[None])
        z, v, e, bound = sub.separate(x, Bm, threshold, tol_abs=tol_abs, first=start,
                                      deadline=self.deadline, climb=climb)
        self.n_separations += 1
        self.separation_seconds += time.perf_counter() - t0
        if z is None:
            return None
        mask = vector_mask(z)
        self.cache.setdefault(mask, v)
        if best is None or e > best.excess:
            best = Separation(mask, v, e, bound)
        best.bound = max(bound, best.excess)
        best.more = []
        for fz, fv, _fe in sub.more:
            self.cache.setdefault(vector_mask(fz), float(fv))
            best.more.append((vector_mask(fz), float(fv)))
        return best


def community_game(instance: xr.Dataset, *, solver: str = "highs",
                   workers: int | None = None, separation: str = "outer",
                   fast: bool = True) -> ModelGame:
    """The community game of ``instance``: players = members, ``v(S)`` = LP1 on ``S``.

    ``v(S)`` (EUR) = expected stand-alone bills of ``S`` minus its optimal collective
    bill (de Villena LP1, free producer sales), fees cancelling. ``separation``:
    ``"outer"`` (default, the separation MILP by outer approximation; measured
    faster from ~10 members) or ``"milp"`` (the compact MILP). ``fast`` (default):
    values by the exact closed form of :class:`recopt.decomp.community_values.
    CommunityValues` (per-step transportation LPs by their dual), in batches;
    ``False``: every value by the coalition LP.
    """
    n = instance.sizes["member"]
    fixed = community_coalition(instance, membership="fixed")
    first = [fixed.member[i] for i in range(n)]
    game = ModelGame(instance["member"].values, family="community", fixed_model=fixed,
                     first_stage=first, first_vector=lambda z: z,
                     separation_model=lambda: community_coalition(instance,
                                                                  membership="binary"),
                     solver=solver, workers=workers, instance=instance,
                     separation=separation)
    if fast:
        closed = CommunityValues(instance)
        game.values_batch = closed.values
        game.prefix_values = closed.prefix_values
        game.flip_values = closed.flip_values
        game.closed_separation = ClosedFormSeparation(closed)
        sub = SubmodularSeparation(closed)
        game.submodular_separation = sub if sub.ok else None
        game.initial_complements = True
    return game


def check_loop(d: LoopData) -> None:
    """Refuse players that are not one feasible loop (a clique within the power cap)."""
    n = d.n
    missing = [(d.members[i], d.members[j]) for i in range(n) for j in range(i + 1, n)
               if not d.graph.has_edge(i, j)]
    if missing:
        a, b = missing[0]
        raise ModelError(f"the loop game needs one feasible loop: members {a} and {b} are "
                         "not neighbours (distance or pair power rule, Chasseray (1k))")
    if float(d.power.sum()) > d.wmax + 1e-9:
        raise ModelError(f"the loop game needs one feasible loop: installed power "
                         f"{d.power.sum():.6g} kW exceeds the cap {d.wmax:.6g} kW (1l)")


def loop_game(instance: xr.Dataset, members: Sequence[str] | None = None, *,
              self_consumption: bool = True, distance: str = "auto", solver: str = "highs",
              workers: int | None = None) -> ModelGame:
    """The game of one loop: players = ``members`` (default: every member of ``instance``).

    ``v(S)`` (EUR) = the players of ``S``'s expected cost outside every loop minus
    their cost when ``S`` alone forms the loop (Chasseray Model 4 with
    ``x = 1_S`` and ``u`` the status of ``S``). The players must form a feasible loop
    (then so does every subset).
    """
    sub = instance if members is None else instance.sel(member=list(members))
    d = loop_data(sub, self_consumption=self_consumption, distance=distance)
    check_loop(d)
    fixed = loop_coalition(d, membership="fixed")
    first = [fixed.member[i] for i in range(d.n)] + list(fixed.surplus.values())

    def first_vector(z):
        return np.concatenate([z, loop_status(d, z).astype(float).ravel()])

    return ModelGame(sub["member"].values, family="loop", fixed_model=fixed, first_stage=first,
                     first_vector=first_vector,
                     separation_model=lambda: loop_coalition(d, membership="binary"),
                     solver=solver, workers=workers, instance=sub)


# --------------------------------------------------------------------------------------
# Shapley value
# --------------------------------------------------------------------------------------
def shapley_exact(game: Game) -> np.ndarray:
    """Shapley value, EUR per player, from all ``2^n`` coalition values.

    ``φ_i = Σ_{S ∌ i} |S|! (n - |S| - 1)! / n! · (v(S ∪ {i}) - v(S))``.
    L. S. Shapley, "A value for n-person games", in Contributions to the Theory of
    Games II (1953), doi:10.1515/9781400881970-018. Checks efficiency
    ``Σ φ = v(N)``.
    """
    n = game.n
    if n > EXACT_MAX_PLAYERS:
        raise ModelError(f"exact Shapley needs 2^{n} values; refused for n > "
                         f"{EXACT_MAX_PLAYERS} (use shapley_sampled)")
    masks = np.arange(1 << n, dtype=np.int64)
    V = game.values(masks.tolist())
    size = _popcount(masks)
    fact = np.array([math.factorial(k) for k in range(n + 1)], dtype=float)
    weight = np.zeros(n + 1)
    weight[:n] = fact[:n] * fact[n - 1::-1] / fact[n]
    phi = np.zeros(n)
    for i in range(n):
        bit = 1 << i
        S = masks[(masks & bit) == 0]
        phi[i] = float((weight[size[S]] * (V[S | bit] - V[S])).sum())
    _check_efficiency(game, phi, "exact Shapley")
    return phi


@dataclass
class ShapleyEstimate:
    """A sampled Shapley value: ``value`` ± ``half_width`` (EUR, at ``confidence``)."""

    value: np.ndarray
    half_width: np.ndarray
    n_permutations: int
    converged: bool
    confidence: float
    tolerance: np.ndarray
    seconds: float = 0.0
    method: str = "permutation"
    """``"permutation"``; ``"multilinear"``: ``n_permutations`` counts the sampled
    coalitions of the light players (each evaluated under every heavy subset)."""
    heavy: list[int] = field(default_factory=list)
    """Multilinear: the players whose membership is enumerated, not sampled."""


#: Multilinear sampling: samples per pair of nodes before the stopping rule may stop
#: (raised to 30 degrees of freedom over the pairs), most heavy players enumerated, and
#: the share of the largest ``v(N) - v(N \\ {i})`` from which a player counts as heavy.
MULTILINEAR_MIN_SAMPLES = 2
MULTILINEAR_MAX_HEAVY = 4
MULTILINEAR_HEAVY_SHARE = 0.25


def shapley_sampled(game: Game, *, seed: int = 0, confidence: float = 0.95,
                    rel_tol: float = 0.01, abs_tol: float | None = None, batch: int = 50,
                    min_permutations: int = 30, max_permutations: int = 20_000,
                    method: str = "permutation") -> ShapleyEstimate:
    """Shapley value by permutation sampling with a stopping rule on its CI.

    Castro, Gómez, Tejada, "Polynomial calculation of the Shapley value based on
    sampling", Computers & Operations Research 36 (2009) 1726-1730,
    doi:10.1016/j.cor.2008.04.004. Each permutation (NumPy generator seeded by
    ``seed``) gives every player its marginal contribution to its predecessors;
    ``φ̂_i`` is their mean and ``z_{(1+c)/2} σ̂_i / √m`` the half-width of its
    confidence interval (normal approximation). Sampling goes on in batches of
    ``batch`` permutations (the batch's new coalitions evaluated in parallel) until,
    for every player, ``half_width <= max(rel_tol |φ̂_i|, abs_tol)`` (``abs_tol``
    default: ``rel_tol |v(N)| / n``, so that a player worth ~0 stops too) after at
    least ``min_permutations``, or ``max_permutations`` is reached
    (``converged=False``). Efficiency holds exactly (every permutation's
    contributions sum to ``v(N)``); it is checked.

    ``method="multilinear"`` (games with ``flip_values``, e.g. the community game's
    closed form): :func:`shapley_multilinear` with the same tolerances
    (``max_permutations`` caps its sampled coalitions).
    """
    if method == "multilinear":
        return shapley_multilinear(game, seed=seed, confidence=confidence, rel_tol=rel_tol,
                                   abs_tol=abs_tol, max_samples=max_permutations)
    if method != "permutation":
        raise ModelError(f"method must be 'permutation' or 'multilinear'; got {method!r}")
    t0 = time.perf_counter()
    n = game.n
    rng = np.random.default_rng(seed)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    vN = game.value(game.grand)
    floor = rel_tol * abs(vN) / max(n, 1) if abs_tol is None else float(abs_tol)
    total = np.zeros(n)
    total_sq = np.zeros(n)
    m = 0
    converged = False
    half = np.full(n, np.inf)
    tol = np.full(n, floor)
    bits = 1 << np.arange(min(n, 63), dtype=np.int64)
    while m < max_permutations:
        k = min(batch, max_permutations - m)
        perms = np.argsort(rng.random((k, n)), axis=1)
        if game.prefix_values is not None:  # vectorised, no cache
            t1 = time.perf_counter()
            vals = game.prefix_values(perms)
            game.evaluate_seconds += time.perf_counter() - t1
            game.n_uncached += vals.size
        else:
            if n > 62:
                raise ModelError(f"sampled Shapley over bitmasks needs n <= 62 (got {n}) "
                                 "or a game with prefix_values")
            prefix = np.cumsum(bits[perms], axis=1)  # coalition after each arrival
            game.values(np.unique(prefix).tolist())
            vals = np.array([[game.cache[int(s)] for s in row] for row in prefix])
        before = np.concatenate([np.zeros((k, 1)), vals[:, :-1]], axis=1)
        contrib = np.zeros((k, n))
        np.put_along_axis(contrib, perms, vals - before, axis=1)
        total += contrib.sum(axis=0)
        total_sq += (contrib ** 2).sum(axis=0)
        m += k
        mean = total / m
        if m >= max(min_permutations, 2):
            var = np.maximum(total_sq / m - mean ** 2, 0.0) * m / (m - 1)
            half = z * np.sqrt(var / m)
            tol = np.maximum(rel_tol * np.abs(mean), floor)
            if (half <= tol).all():
                converged = True
                break
    phi = total / m
    _check_efficiency(game, phi, "sampled Shapley")
    return ShapleyEstimate(phi, half, m, converged, confidence, tol, time.perf_counter() - t0)


def shapley_multilinear(game: Game, *, seed: int = 0, confidence: float = 0.95,
                        rel_tol: float = 0.01, abs_tol: float | None = None,
                        strata: int | None = None,
                        min_samples: int = MULTILINEAR_MIN_SAMPLES,
                        max_samples: int = 20_000, heavy: Sequence[int] | None = None
                        ) -> ShapleyEstimate:
    """Shapley value by stratified, antithetic sampling of Owen's multilinear extension,
    the heavy players' membership enumerated (a conditional expectation).

    Owen, "Multilinear extensions of games", Management Science 18 (1972) P64-P79,
    doi:10.1287/mnsc.18.5.64: ``φ_i = ∫_0^1 e_i(q) dq`` with ``e_i(q) = E[v(S ∪ i) -
    v(S)]``, ``S`` holding every other player independently with probability ``q``
    (sampling estimator: Okhrati, Lipani, "A multilinear sampling algorithm to estimate
    Shapley values", ICPR 2020, arXiv:2010.12082). Here:

    * ``q`` at the ``J = 2⌈n/4⌉ >= n/2`` Gauss-Legendre nodes of [0, 1] (default,
      ``strata=None``): ``e_i`` is a polynomial of degree ``n - 1`` in ``q``, which
      they integrate exactly, so only the coalitions are sampled; or (``strata``)
      one uniform ``q`` in each of ``strata`` equal strata. Node (stratum) ``j`` is
      paired with ``J - 1 - j`` by the antithetic ``(1 - q, complement of S)``;
      each pair is one independent sample of ``w_j D(S, q) + w_{J-1-j} D(N∖S, 1 - q)``
      (unbiased);
    * one coalition ``S`` gives every player's sample at once: ``v(S) - v(S ∖ i)``
      for ``i ∈ S``, ``v(S ∪ i) - v(S)`` otherwise (``game.flip_values``), ``S ∖ i``
      being a ``q``-coalition of the others either way;
    * the *heavy* players (default: those with ``v(N) - v(N ∖ i)`` at least
      :data:`MULTILINEAR_HEAVY_SHARE` of the largest, at most
      :data:`MULTILINEAR_MAX_HEAVY`) are not sampled: every sample is averaged over
      all ``2^h`` subsets of them with their probabilities ``q^|Q| (1-q)^(h-|Q|)``
      (Rao-Blackwell: the same mean, never a larger variance).

    Half-width per player: ``z_{(1+c)/2} (Σ_pairs s²_p / m_p)^{1/2}`` (normal
    approximation, ``s²_p`` the sample variance of pair ``p``), checked after every round
    of one sample per pair from ``min_samples`` on (and from at least 30 degrees of
    freedom, ``P (m - 1) >= 30`` over the ``P`` pairs), with the stopping rule of
    :func:`shapley_sampled`. The raw estimate is not efficient: it is projected onto
    ``Σ φ = v(N)``, ``φ_i = raw_i + s_i (v(N) - Σ_k raw_k)`` with ``s_i`` the players'
    shares of the estimated variance, and the half-width is that of the projected
    estimate (per pair, the variance of ``y_i - s_i Σ_k y_k``, ``s`` held fixed).
    """
    t0 = time.perf_counter()
    flip_values = game.flip_values
    if flip_values is None:
        raise ModelError("multilinear sampling needs a game with flip_values "
                         "(the community game's closed form)")
    if strata is not None and (strata < 2 or strata % 2):
        raise ModelError(f"strata must be even and >= 2 (antithetic pairs); got {strata}")
    n = game.n
    rng = np.random.default_rng(seed)
    zq = NormalDist().inv_cdf(0.5 + confidence / 2)
    vN = game.value(game.grand)
    floor = rel_tol * abs(vN) / max(n, 1) if abs_tol is None else float(abs_tol)
    if heavy is None:
        _v, vx = flip_values(np.ones((1, n), bool))
        drop = np.abs(vN - vx[0])
        order = np.argsort(-drop, kind="stable")
        top = drop[order[0]] if n else 0.0
        heavy = [int(i) for i in order[:min(MULTILINEAR_MAX_HEAVY, n - 1)]
                 if top > 0 and drop[i] >= MULTILINEAR_HEAVY_SHARE * top]
    hv = np.array(sorted(int(i) for i in heavy), dtype=np.int64)
    light = np.setdiff1d(np.arange(n), hv)
    h = len(hv)
    subsets = ((np.arange(1 << h)[:, None] >> np.arange(h)) & 1).astype(bool)  # (2^h, h)
    up = np.array([s | (1 << a) for s in range(1 << h) for a in range(h)]).reshape(-1, h) \
        if h else np.zeros((1, 0), int)

    def sample(zl: np.ndarray, q: float) -> np.ndarray:
        """Every player's marginal contribution, heavy subsets averaged (EUR)."""
        Z = np.zeros((len(subsets), n), bool)
        Z[:, light] = zl
        Z[:, hv] = subsets
        v, vx = flip_values(Z)
        game.n_uncached += Z.size + len(Z)
        p = np.prod(np.where(subsets, q, 1.0 - q), axis=1)          # (2^h,)
        d = np.where(Z, v[:, None] - vx, vx - v[:, None])             # (2^h, n)
        out = p @ d
        for a, j in enumerate(hv):  # heavy j: E over the other heavy players
            without = ~subsets[:, a]
            po = np.prod(np.where(np.delete(subsets, a, axis=1), q, 1.0 - q), axis=1)
            out[j] = float((po[without] * (v[up[without, a]] - v[without])).sum())
        return out

    if strata is None:
        # Gauss-Legendre nodes on [0, 1]: e_i(q) is a polynomial of degree n - 1, which
        # J >= n / 2 nodes integrate exactly (J even: the nodes pair as q, 1 - q)
        J = max(2, 2 * math.ceil(n / 4))
        xg, wg = np.polynomial.legendre.leggauss(J)
        nodes, weights = (xg + 1.0) / 2.0, wg / 2.0
    else:
        J = int(strata)
        nodes, weights = np.zeros(J), np.full(J, 1.0 / J)
    P = J // 2
    # at least 30 degrees of freedom in the variance of the sum over pairs
    min_samples = max(int(min_samples), 2, 1 + math.ceil(30 / P))
    sums = np.zeros((P, n))
    sq = np.zeros((P, n))
    s_tot = np.zeros(P)       # per pair: Σ of Y = Σ_i y_i, of Y², of y_i Y
    s_tot2 = np.zeros(P)
    s_cross = np.zeros((P, n))
    m = 0
    converged = False
    half = np.full(n, np.inf)
    tol = np.full(n, floor)
    phi = np.zeros(n)
    t1 = time.perf_counter()
    while 2 * P * (m + 1) <= max(max_samples, 2 * P * min_samples):
        for p in range(P):
            if strata is None:
                q = float(nodes[p])
            else:
                q = (p + rng.random()) / J
            zl = rng.random(len(light)) < q
            y = weights[p] * sample(zl, q) + weights[J - 1 - p] * sample(~zl, 1.0 - q)
            Y = float(y.sum())
            sums[p] += y
            sq[p] += y * y
            s_tot[p] += Y
            s_tot2[p] += Y * Y
            s_cross[p] += y * Y
        m += 1
        if m < min_samples:
            continue
        c = m / (m - 1)
        mean, mY = sums / m, s_tot / m
        var = np.maximum(sq / m - mean ** 2, 0.0) * c               # (P, n)
        varY = np.maximum(s_tot2 / m - mY ** 2, 0.0) * c             # (P,)
        cov = (s_cross / m - mean * mY[:, None]) * c                 # (P, n)
        raw = mean.sum(axis=0)
        v_raw = var.sum(axis=0) / m
        share = v_raw / v_raw.sum() if v_raw.sum() > 0 else np.full(n, 1.0 / n)
        # φ_i = raw_i + share_i (v(N) - Σ raw): its variance per pair, share held fixed
        v_phi = (var - 2 * share * cov + share ** 2 * varY[:, None]).sum(axis=0) / m
        half = zq * np.sqrt(np.maximum(v_phi, 0.0))
        phi = raw + share * (vN - raw.sum())
        tol = np.maximum(rel_tol * np.abs(phi), floor)
        log.debug("multilinear Shapley: %d samples per pair, worst half-width / tolerance "
                  "%.3g (player %d)", m, float((half / tol).max()), int(np.argmax(half / tol)))
        if (half <= tol).all():
            converged = True
            break
    game.evaluate_seconds += time.perf_counter() - t1
    if m < 2:
        raise ModelError(f"max_samples {max_samples} allows fewer than 2 samples per pair "
                         f"of strata ({P} pairs)")
    _check_efficiency(game, phi, "multilinear Shapley")
    return ShapleyEstimate(phi, half, 2 * P * m, converged, confidence, tol,
                           time.perf_counter() - t0, "multilinear", [int(i) for i in hv])


# --------------------------------------------------------------------------------------
# least core and nucleolus by constraint generation
# --------------------------------------------------------------------------------------
def null_basis(vectors: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Integer basis (n, d) of ``{y : F y = 0}`` for the rows ``vectors`` (exact, Fractions)."""
    M = [[Fraction(int(v)) for v in row] for row in vectors]
    pivots: list[int] = []
    r = 0
    for c in range(n):
        piv = next((k for k in range(r, len(M)) if M[k][c] != 0), None)
        if piv is None:
            continue
        M[r], M[piv] = M[piv], M[r]
        p = M[r][c]
        M[r] = [v / p for v in M[r]]
        for k in range(len(M)):
            if k != r and M[k][c] != 0:
                f = M[k][c]
                M[k] = [a - f * b for a, b in zip(M[k], M[r], strict=True)]
        pivots.append(c)
        r += 1
        if r == len(M):
            break
    basis = []
    for free in (c for c in range(n) if c not in pivots):
        v = [Fraction(0)] * n
        v[free] = Fraction(1)
        for row, pc in enumerate(pivots):
            v[pc] = -M[row][free]
        lcm = math.lcm(*(x.denominator for x in v))
        ints = [int(x * lcm) for x in v]
        g = math.gcd(*ints) or 1
        basis.append([x // g for x in ints])
    return np.array(basis, dtype=np.int64).T.reshape(n, len(basis))


@dataclass
class Stage:
    """One LP of the sequence: its ε (EUR), coalitions generated, separations solved."""

    epsilon: float
    n_rows: int
    n_separations: int
    max_excess_outside: float
    """The certificate: largest excess over the coalitions outside the fixed span
    (MILP bound, or enumeration) — at most ``epsilon`` (+ tolerance)."""
    fixed: list[int] = field(default_factory=list)


@dataclass
class LexResult:
    """Least core / nucleolus: the allocation (EUR per player) and how it was found."""

    allocation: np.ndarray
    epsilon: float
    """ε of the first stage: the least-core value (max excess at the allocation)."""
    stages: list[Stage]
    n_coalitions: int
    """Coalitions generated (rows of the LPs) over the whole run."""
    method: str
    seconds: float = 0.0

    @property
    def epsilons(self) -> list[float]:
        return [s.epsilon for s in self.stages]


def _check_efficiency(game: Game, x, what: str) -> None:
    vN = game.value(game.grand)
    gap = float(np.sum(x)) - vN
    if abs(gap) > 1e-6 * max(1.0, abs(vN)):
        raise SolverError(f"{what}: allocations sum to {np.sum(x):.9g}, v(N) = {vN:.9g}")


class KeptExcessLP:
    """The excess LP of :func:`recopt.models.sharing.build_excess_lp` kept in one
    :class:`~recopt.solvers.highs.HighsArrayLP` for a stage of the row generation: the
    same rows and columns (``x``, ``ε``; efficiency, the fixed coalitions, one row
    ``x(S) + ε >= v(S)`` per generated coalition), each round's new coalitions appended
    as rows so the dual simplex restarts from the last basis instead of a Pyomo model
    rebuilt and solved from scratch. Values in EUR."""

    def __init__(self, n: int, grand_value: float, fixed, eps_floor: float):
        self.n = n
        self.n_rows = 0
        rows = [(np.ones(n), float(grand_value))] + [(np.asarray(v, float), float(b))
                                                     for v, b in fixed]
        A = sp.csr_matrix(np.array([np.r_[vec, 0.0] for vec, _ in rows]))
        b = np.array([v for _, v in rows])
        cost = np.r_[np.zeros(n), 1.0]
        col_lower = np.r_[np.full(n, -np.inf), float(eps_floor)]
        self.offset = len(rows)
        # one thread: the LP is small (n + 1 columns)
        self.lp = HighsArrayLP(A, cost, col_lower, np.full(n + 1, np.inf), b, b,
                               threads=1, options={"presolve": "choose"})

    def add_rows(self, rows) -> None:
        """Append ``x(S) + ε >= v(S)`` for each ``(vector, v(S))``."""
        if not rows:
            return
        A = sp.csr_matrix(np.array([np.r_[np.asarray(vec, float) != 0, 1.0]
                                    for vec, _ in rows], float))
        k = len(rows)
        self.lp.add_rows(np.array([float(v) for _, v in rows]), np.full(k, np.inf), A)
        self.n_rows += k

    def solve(self) -> tuple[np.ndarray, float]:
        """``(x, ε)`` at the optimum (EUR); an error names HiGHS's status otherwise."""
        status, message, _, col, _, row_dual = self.lp.solve()
        if status != Status.OPTIMAL or col is None:
            raise SolverError(f"excess LP: {status.value} ({message})")
        self._row_dual = row_dual
        return col[:self.n].copy(), float(col[self.n])

    def duals(self) -> np.ndarray:
        """Duals of the generated coalitions' rows, in the order they were added."""
        return np.asarray(self._row_dual)[self.offset:].copy()


def _lexicographic(game: Game, method: str, nucleolus: bool, solver: str,
                   tolerance: float, max_separations: int,
                   time_limit: float | None = None) -> LexResult:
    if method not in ("rowgen", "enumerate"):
        raise ModelError(f"method must be 'rowgen' or 'enumerate'; got {method!r}")
    t0 = time.perf_counter()
    game.deadline = None if time_limit is None else t0 + float(time_limit)
    try:
        return _lexicographic_run(game, method, nucleolus, solver, tolerance,
                                  max_separations, time_limit, t0)
    finally:
        game.deadline = None


def _lexicographic_run(game: Game, method: str, nucleolus: bool, solver: str,
                       tolerance: float, max_separations: int, time_limit: float | None,
                       t0: float) -> LexResult:
    """The body of :func:`_lexicographic` (same parameters; ``t0``: its start)."""
    n = game.n
    vN = game.value(game.grand)
    tol = tolerance * max(1.0, abs(vN))
    ones = np.ones(n, dtype=np.int64)
    if n == 1:
        return LexResult(np.array([vN]), 0.0, [], 0, method, time.perf_counter() - t0)
    if method == "enumerate":
        if n > EXACT_MAX_PLAYERS:
            raise ModelError(f"enumeration of 2^{n} coalitions refused (n > "
                             f"{EXACT_MAX_PLAYERS}); use method='rowgen'")
        masks = list(range(1, game.grand))
        pool = dict(zip(masks, game.values(masks).tolist(), strict=True))
    else:
        # warm start: the singletons and, from 3 players on, their complements N \ {i}
        # (the rows a least-core allocation most often meets with equality)
        singles = [1 << i for i in range(n)]
        if n >= 3 and game.initial_complements:
            singles += [game.grand ^ m for m in singles]
        pool = dict(zip(singles, game.values(singles).tolist(), strict=True))
    span = [ones]
    fixed: list[tuple[np.ndarray, float]] = []
    stages: list[Stage] = []
    scale = abs(vN) + sum(abs(v) for v in pool.values()) + 1.0
    floor = -10.0 * scale
    n_sep = 0
    x = np.zeros(n)
    first_eps = math.nan
    kept_lp = method == "rowgen" and solver.lower() == "highs"
    while True:
        B = null_basis(span, n)
        if B.shape[1] == 0:
            break
        outside = {m: v for m, v in pool.items()
                   if np.abs(mask_vector(m, n) @ B).sum() > 0}
        stage_sep = 0
        certificate = math.nan
        kept = KeptExcessLP(n, vN, fixed, floor) if kept_lp else None
        while True:
            keys = list(outside)
            if kept is not None:  # rows added to the LP kept in HiGHS (warm dual simplex)
                kept.add_rows([(mask_vector(m, n), outside[m]) for m in keys[kept.n_rows:]])
                x, eps = kept.solve()
            else:
                lp = build_excess_lp(n, vN, [(mask_vector(m, n), outside[m]) for m in keys],
                                     fixed, eps_floor=floor)
                out = solve_pyomo(lp, solver)
                if out.status != Status.OPTIMAL:
                    raise SolverError(f"excess LP: {out.status.value} ({out.message})")
                x = np.array([pyo.value(lp.x[i]) for i in range(n)])
                eps = float(pyo.value(lp.eps))
            if method == "enumerate":
                e = [outside[m] - x @ mask_vector(m, n) for m in keys]
                certificate = max(e) if e else -math.inf
                break
            if n_sep >= max_separations:
                raise SolverError(f"row generation: {max_separations} separations without "
                                  "convergence")
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                raise SolverError(f"row generation: time limit {time_limit:g} s reached "
                                  f"({len(pool)} coalitions generated, stage "
                                  f"{len(stages) + 1})")
            sep = game.separate(x, None if len(span) == 1 else B, threshold=eps + tol)
            n_sep += 1
            stage_sep += 1
            if sep is None:
                certificate = -math.inf
                break
            certificate = sep.bound
            if sep.bound <= eps + tol:
                break
            if sep.excess <= eps + tol and sep.bound <= eps + 3 * tol:
                break  # certified within the separation's own tolerance
            if sep.excess <= eps + tol:
                raise SolverError(f"separation bound {sep.bound:.9g} above ε {eps:.9g} but "
                                  f"its coalition's excess is {sep.excess:.9g}: MILP gap")
            if sep.mask in outside:
                raise SolverError("row generation cycles: the separation returned a "
                                  "coalition already in the LP (numerical trouble)")
            outside[sep.mask] = sep.value
            pool[sep.mask] = sep.value
            for mask, value in sep.more:  # further violated coalitions found on the way
                if mask not in outside and np.abs(mask_vector(mask, n) @ B).sum() > 0:
                    outside[mask] = value
                    pool[mask] = value
        if eps <= floor + tol:
            raise SolverError("the excess LP stayed at its artificial floor")
        if certificate > eps + tol:
            raise SolverError(f"certificate failed: excess {certificate:.9g} > ε {eps:.9g}")
        stage = Stage(eps, len(outside), stage_sep, certificate)
        stages.append(stage)
        if len(stages) == 1:
            first_eps = eps
        if not nucleolus:
            break
        if kept is not None:
            duals = dict(zip(keys, np.abs(kept.duals()).tolist(), strict=True))
        else:
            duals = {m: abs(lp.dual.get(lp.excess[r], 0.0)) for r, m in enumerate(keys)}
        for m in sorted(duals, key=lambda k: -duals[k]):
            if duals[m] <= 1e-9:
                break
            vec = mask_vector(m, n)
            if np.abs(vec @ B).sum() == 0:  # already in the span
                continue
            fixed.append((vec, outside[m] - eps))
            span.append(vec.astype(np.int64))
            stage.fixed.append(m)
            B = null_basis(span, n)
            if B.shape[1] == 0:
                break
        if not stage.fixed:
            raise SolverError("nucleolus: no coalition with a positive dual to fix")
    if nucleolus and fixed:
        # the point the fixed equalities determine (exact up to the LP's tolerance)
        A = np.array([ones] + [v for v, _ in fixed], float)
        b = np.array([vN] + [val for _, val in fixed])
        x, *_ = np.linalg.lstsq(A, b, rcond=None)
        if np.abs(A @ x - b).max() > 1e-6 * max(1.0, abs(vN)):
            raise SolverError("nucleolus: the fixed coalitions' equalities are inconsistent")
    _check_efficiency(game, x, "least core / nucleolus")
    return LexResult(np.asarray(x, float), first_eps, stages, len(pool), method,
                     time.perf_counter() - t0)


def least_core(game: Game, *, method: str = "rowgen", solver: str = "highs",
               tolerance: float = TOLERANCE, max_separations: int = 10_000,
               time_limit: float | None = None) -> LexResult:
    """A least-core allocation: ``min ε`` s.t. ``x(N) = v(N)``, ``v(S) - x(S) <= ε`` ∀S.

    Maschler, Peleg, Shapley, "Geometric properties of the kernel, nucleolus and
    related solution concepts", Mathematics of Operations Research 4 (1979) 303-338,
    doi:10.1287/moor.4.4.303. ``method="rowgen"``: constraint generation
    (Hallefjord, Helming, Jørnsten, "Computing the nucleolus when the characteristic
    function is given implicitly: a constraint generation approach", International
    Journal of Game Theory 24 (1995) 357-372, doi:10.1007/BF01243038): start from the
    singletons, add the separation's most violated coalition until its proven bound
    is at most ε. ``"enumerate"``: all ``2^n - 2`` rows at once. ``epsilon <= 0``
    means the core is not empty and ``allocation`` is in it.
    """
    return _lexicographic(game, method, False, solver, tolerance, max_separations, time_limit)


def nucleolus(game: Game, *, method: str = "rowgen", solver: str = "highs",
              tolerance: float = TOLERANCE, max_separations: int = 10_000,
              time_limit: float | None = None) -> LexResult:
    """The nucleolus (Schmeidler 1969, doi:10.1137/0117107) by the sequence of LPs.

    Stage k solves ``min ε`` over the allocations that keep the coalitions fixed at
    earlier stages at their excess, with rows ``v(S) - x(S) <= ε`` for the
    coalitions outside the span of the fixed ones (Maschler, Peleg, Shapley 1979,
    doi:10.1287/moor.4.4.303). The coalitions whose row has a positive dual are
    tight at every optimum: they are fixed (at ``v(S) - ε_k``), which raises the
    rank of the fixed family; the sequence ends when it reaches ``n`` and the
    allocation is a single point. Rows by constraint generation (Hallefjord,
    Helming, Jørnsten 1995, doi:10.1007/BF01243038): the separation MILP is
    restricted to coalitions outside the span (:func:`recopt.models.sharing.add_outside_span`).
    """
    return _lexicographic(game, method, True, solver, tolerance, max_separations, time_limit)


# --------------------------------------------------------------------------------------
# core membership and superadditivity
# --------------------------------------------------------------------------------------
@dataclass
class CoreCheck:
    """Whether an allocation is in the core; if not, a coalition that blocks it."""

    in_core: bool
    efficiency_gap: float
    """``x(N) - v(N)``, EUR (the core needs 0)."""
    blocking: list[str] | None
    blocking_value: float
    blocking_payoff: float
    max_excess: float

    def describe(self) -> str:
        if self.in_core:
            return f"in the core (largest excess {self.max_excess:.6g} EUR)"
        if self.blocking is None:
            return f"not efficient: x(N) - v(N) = {self.efficiency_gap:.6g} EUR"
        return (f"blocked by {{{', '.join(self.blocking)}}}: v(S) = {self.blocking_value:.6g} "
                f"EUR > x(S) = {self.blocking_payoff:.6g} EUR")


def core_check(game: Game, allocation, *, tolerance: float = 1e-6) -> CoreCheck:
    """Is ``allocation`` (EUR per player) in the core of ``game``?

    The core (Gillies 1959, doi:10.1515/9781400882168-003) is
    ``{x : x(N) = v(N), x(S) >= v(S) ∀S}``. One separation (the MILP of the model
    games) gives the coalition of largest excess ``v(S) - x(S)``; the allocation is
    in the core iff it is efficient and that excess is <= ``tolerance |v(N)|``.
    """
    x = np.asarray(allocation, float)
    if x.shape != (game.n,):
        raise ModelError(f"allocation has {x.size} values for {game.n} players")
    vN = game.value(game.grand)
    tol = tolerance * max(1.0, abs(vN))
    gap = float(x.sum() - vN)
    sep = game.separate(x, None) if game.n > 1 else None
    excess = -math.inf if sep is None else sep.excess
    if sep is not None and sep.excess > tol:
        return CoreCheck(False, gap, game.members_of(sep.mask), sep.value,
                         sep.value - sep.excess, sep.excess)
    if abs(gap) > tol:
        return CoreCheck(False, gap, None, vN, float(x.sum()), max(excess, -gap))
    return CoreCheck(True, gap, None, math.nan, math.nan, excess)


@dataclass
class Superadditivity:
    """Worst ``v(S) + v(T) - v(S ∪ T)`` over the disjoint pairs checked (EUR)."""

    holds: bool
    worst_violation: float
    worst_pair: tuple[list[str], list[str]] | None
    n_pairs: int
    exhaustive: bool


def superadditivity(game: Game, *, max_exhaustive: int = 10, samples: int = 2000,
                    seed: int = 0, tolerance: float = 1e-6) -> Superadditivity:
    """Check ``v(S ∪ T) >= v(S) + v(T)`` for disjoint ``S``, ``T``.

    Every pair (``3^n``) up to ``max_exhaustive`` players, else ``samples`` random
    pairs (seeded). The community game is superadditive by construction (the
    union of two coalitions' LP1 solutions is feasible for the union); the loop
    game need not be (a loop's collective buy/sell rules, card choice 4).
    """
    n = game.n
    tol = tolerance * max(1.0, abs(game.value(game.grand)))
    pairs: list[tuple[int, int]] = []
    if n <= max_exhaustive:
        for U in range(1, game.grand + 1):
            sub = (U - 1) & U
            while sub:
                T = U ^ sub
                if T and sub < T:
                    pairs.append((sub, T))
                sub = (sub - 1) & U
        exhaustive = True
    else:
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 3, size=(samples, n))
        bits = 1 << np.arange(n, dtype=np.int64)
        for row in labels:
            S, T = int(bits[row == 1].sum()), int(bits[row == 2].sum())
            if S and T:
                pairs.append((S, T))
        exhaustive = False
    if not pairs:
        return Superadditivity(True, 0.0, None, 0, exhaustive)
    first = np.array([p[0] for p in pairs], dtype=np.int64)
    second = np.array([p[1] for p in pairs], dtype=np.int64)
    vals = game.values(np.unique(np.concatenate([first, second, first | second])).tolist())
    del vals
    c = game.cache
    viol = np.array([c[int(a)] + c[int(b)] - c[int(a | b)]
                     for a, b in zip(first, second, strict=True)])
    k = int(np.argmax(viol))
    worst = float(viol[k])
    return Superadditivity(worst <= tol, worst, (game.members_of(int(first[k])),
                                                 game.members_of(int(second[k]))),
                           len(pairs), exhaustive)


# --------------------------------------------------------------------------------------
# one entry point for the wiring
# --------------------------------------------------------------------------------------
SHARING_METHODS = ("shapley", "nucleolus", "least_core")
#: Up to this many players ``allocate(..., "shapley")`` is exact, beyond it is sampled.
SHAPLEY_EXACT_UP_TO = 15
#: Samplers of :func:`allocate`'s sampled Shapley value: ``"auto"`` is ``"multilinear"``
#: on a game with ``flip_values`` (the community game's closed form), ``"permutation"``
#: otherwise (loop games, the community game's LP path). The multilinear sampler is the
#: default there because it reaches the same tolerance faster (``bench_games.py --case
#: compare``, cited in ``benchmarks/README.md``).
SHAPLEY_METHODS = ("auto", "multilinear", "permutation")


def shapley_sampler(game: Game, shapley_method: str = "auto") -> str:
    """The sampler ``allocate`` uses for ``game``: ``"multilinear"`` or ``"permutation"``
    (``shapley_method`` in :data:`SHAPLEY_METHODS`; ``"auto"``: multilinear when the game
    has ``flip_values``)."""
    if shapley_method not in SHAPLEY_METHODS:
        raise ModelError(f"shapley_method must be one of {', '.join(SHAPLEY_METHODS)}; "
                         f"got {shapley_method!r}")
    if shapley_method == "auto":
        return "multilinear" if game.flip_values is not None else "permutation"
    if shapley_method == "multilinear" and game.flip_values is None:
        raise ModelError("shapley_method=multilinear needs a game with flip_values (the "
                         "community game's closed form); this game has none: use "
                         "shapley_method=permutation or auto")
    return shapley_method


@dataclass
class Allocation:
    """An allocation of ``v(N)`` (EUR per player) and how it was computed."""

    method: str
    value: np.ndarray
    grand_value: float
    detail: dict = field(default_factory=dict)
    core: CoreCheck | None = None


def allocate(game: Game, method: str, *, seed: int = 0, rel_tol: float = 0.01,
             solver: str = "highs", check_core: bool = True,
             shapley_method: str = "auto") -> Allocation:
    """``method`` in :data:`SHARING_METHODS`; Shapley is exact up to
    :data:`SHAPLEY_EXACT_UP_TO` players, sampled (seeded, ``rel_tol`` at 95 %) beyond,
    by :func:`shapley_sampler` (``shapley_method``: ``"auto"`` = the multilinear sampler,
    Owen 1972, doi:10.1287/mnsc.18.5.64, on games with ``flip_values``, the
    permutation sampler, Castro et al. 2009, otherwise). ``check_core``: run
    :func:`core_check` on the result."""
    if method not in SHARING_METHODS:
        raise ModelError(f"sharing must be one of none, {', '.join(SHARING_METHODS)}; "
                         f"got {method!r}")
    if shapley_method not in SHAPLEY_METHODS:
        raise ModelError(f"shapley_method must be one of {', '.join(SHAPLEY_METHODS)}; "
                         f"got {shapley_method!r}")
    t0 = time.perf_counter()
    vN = game.value(game.grand)
    detail: dict = {}
    if method == "shapley":
        if game.n <= SHAPLEY_EXACT_UP_TO:
            x = shapley_exact(game)
            detail["shapley"] = "exact"
        else:
            est = shapley_sampled(game, seed=seed, rel_tol=rel_tol,
                                  method=shapley_sampler(game, shapley_method))
            x = est.value
            detail.update(shapley="sampled", sampler=est.method,
                          samples=est.n_permutations, converged=int(est.converged),
                          max_half_width=float(est.half_width.max()),
                          max_half_width_over_tolerance=float(
                              (est.half_width / est.tolerance).max()))
    else:
        res = (nucleolus if method == "nucleolus" else least_core)(game, solver=solver)
        x = res.allocation
        detail.update(epsilon=res.epsilon, stages=len(res.stages),
                      coalitions_generated=res.n_coalitions)
    detail["coalitions_evaluated"] = len(game.cache) - 1 + game.n_uncached
    core = core_check(game, x) if check_core and game.n > 1 else None
    detail["seconds"] = time.perf_counter() - t0
    return Allocation(method, np.asarray(x, float), vN, detail, core)
