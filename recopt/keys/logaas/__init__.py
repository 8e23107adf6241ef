"""Multi-round static keys searched over round shares (OptimCE's LOGAAS, done right).

OptimCE's LOGAAS (Paque & Hiard 2025, described by OptimCE 2026, ``docs/references.md``)
builds keys of up to three allocation rounds: round ``r`` puts a share ``sigma_r`` of the
community production ``G`` on the table (plus, by default, what earlier rounds left),
splits it among the members with a *static* split ``lambda_r`` (one coefficient per
member for the whole horizon) chosen by a linear program that minimises that round's
surplus, and a genetic algorithm with "speciation" (fixed niches of the round-share
simplex) searches the shares. Model card: ``models/LOGAAS.md``.

This module provides

* :func:`round_split` -- the exact fast path of the per-round LP
  (:mod:`recopt.models.logaas` is the LP as a Pyomo model). The LP's objective is
  ``sum_{s,t,i} w_s min(lambda_i A_st, N_sti)``, a sum over members of concave
  piecewise-linear functions of one variable each, coupled only by
  ``sum_i lambda_i <= 1``: a separable concave resource allocation, solved exactly by
  taking the linear pieces of all members in decreasing order of slope until the
  budget 1 is spent (a fractional knapsack over pieces);
* :func:`rounds_for` -- the rounds of a share vector, settled by the one settlement
  rule (:func:`recopt.settle.settle_rounds`, the fast path only supplies the splits);
* :func:`grid_search` -- the deterministic search: every share vector of the lattice
  ``{k / resolution}`` on the simplex, hence the optimum over the lattice and over
  each niche;
* :func:`ga_search` -- the genetic algorithm with niche-based speciation over the
  same lattice (seeded): it can never beat :func:`grid_search`, which is the test;
* objectives: ``"surplus"`` (OptimCE's, kWh, minimised) or a metric of the metric
  suite (:func:`recopt.metrics.community.evaluate`), or any callable;
* :func:`search`: the best keys per niche with their metrics, ranked (the CLI
  ``recopt logaas instance.nc`` / ``python -m recopt.keys.logaas`` is
  :mod:`recopt.cli.logaas`; the ``LOGAAS`` model's algorithm is
  :mod:`recopt.decomp.logaas`).

Units: energies in kWh per step; shares and splits dimensionless.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data.roles import member_mask
from recopt.data.view import stm
from recopt.errors import ModelError
from recopt.keys.multiround import share_lattice as lattice
from recopt.metrics.community import MetricContext, evaluate_arrays
from recopt.progress import track
from recopt.settle import Round, meter_flows, settle, settle_rounds
from recopt.settle.kernels import round_leftover, round_take

__all__ = [
    "OBJECTIVES",
    "round_split",
    "round_surplus",
    "lattice",
    "niche_centres",
    "niche_of",
    "rounds_for",
    "Evaluator",
    "grid_search",
    "ga_search",
    "search",
    "refine_shares",
    "SearchResult",
]

#: Objectives by name: (sense, what). ``"surplus"`` is the final surplus in kWh
#: (probability-weighted over scenarios); the others are variables of
#: :func:`recopt.metrics.community.evaluate` (``min_saving_ratio`` is the minimum over
#: members of ``saving_ratio``), probability-weighted over scenarios.
OBJECTIVES = {
    "surplus": "min",
    "self_consumption_rate": "max",
    "collective_bill": "min",
    "gini": "min",
    "min_saving_ratio": "max",
    "self_sufficiency_mean": "max",
}


# --------------------------------------------------------------------------------------
# the per-round LP, exactly
# --------------------------------------------------------------------------------------
def round_inputs(available, need, weights=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The round LP's data as float arrays ``A (S, T)``, ``N (S, T, U)``, ``w (S,)``.

    A single-scenario ``need (T, U)`` / ``available (T,)`` gets a scenario axis of 1;
    ``weights`` default to 1. Shared by :func:`round_split` and
    :func:`recopt.models.logaas.build_round`.
    """
    A = np.asarray(available, dtype=float)
    N = np.asarray(need, dtype=float)
    if N.ndim == 2:
        N, A = N[None], A[None]
    w = np.ones(N.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    return A, N, w


def round_split(available, need, weights=None) -> tuple[np.ndarray, float]:
    """Static split minimising a round's surplus: the exact solution of the round LP.

    Solves ``max sum_{s,t,i} w_s min(lambda_i A_st, N_sti)`` s.t. ``lambda >= 0``,
    ``sum_i lambda_i <= 1`` (equivalently ``min`` of the round's surplus
    ``sum w (A - sum_i take)``; :mod:`recopt.models.logaas` eqs (L1)-(L5)).

    Parameters
    ----------
    available : array_like, shape (S, T) or (T,)
        Energy on the table in the round, ``A``, kWh per step.
    need : array_like, shape (S, T, U) or (T, U)
        Remaining need ``N`` of each member, kWh per step.
    weights : array_like, shape (S,), optional
        Scenario probabilities (default 1).

    Returns
    -------
    split : numpy.ndarray, shape (U,)
        ``lambda``, with ``sum <= 1`` (less when the members cannot use more).
    taken : float
        The optimal ``sum w min(lambda A, N)``, kWh.
    """
    A, N, w = round_inputs(available, need, weights)
    S, T, U = N.shape
    wa = np.broadcast_to((w[:, None] * A)[:, :, None], N.shape).reshape(-1, U)
    a = np.broadcast_to(A[:, :, None], N.shape).reshape(-1, U)
    n = N.reshape(-1, U)
    valid = (a > 0) & (n > 0) & (wa > 0)
    beta = np.full(n.shape, np.inf)
    np.divide(n, a, out=beta, where=valid)  # lambda_i at which step t's cap binds
    order = np.argsort(beta, axis=0, kind="stable")
    b_sorted = np.take_along_axis(beta, order, axis=0)
    wa_sorted = np.take_along_axis(np.where(valid, wa, 0.0), order, axis=0)
    # slope of piece k (between breakpoints k-1 and k): weight of the steps not yet capped
    slope = np.flip(np.cumsum(np.flip(wa_sorted, axis=0), axis=0), axis=0)
    finite = np.isfinite(b_sorted)
    prev = np.vstack([np.zeros((1, U)), np.where(finite, b_sorted, 0.0)[:-1]])
    length = np.where(finite, b_sorted - prev, 0.0)
    k_idx, member = np.nonzero(finite & (length > 0) & (slope > 0))
    if k_idx.size == 0:
        return np.zeros(U), 0.0
    sl = slope[k_idx, member]
    ln = length[k_idx, member]
    # pieces by decreasing slope; a member's pieces keep their order (slopes decrease)
    pick = np.lexsort((k_idx, member, -sl))
    sl, ln, member = sl[pick], ln[pick], member[pick]
    # budget spent before each piece: an exclusive prefix sum (not cum - ln, which
    # loses the budget to round-off when a piece is huge, e.g. a tiny leftover pool)
    before = np.concatenate([[0.0], np.cumsum(ln)[:-1]])
    take_len = np.clip(1.0 - before, 0.0, ln)
    split = np.bincount(member, weights=take_len, minlength=U)
    return split, float((sl * take_len).sum())


def round_surplus(split, available, need, weights=None) -> float:
    """``sum_{s,t} w_s (A_st - sum_i min(lambda_i A_st, N_sti))``, kWh: a round's surplus."""
    A = np.asarray(available, dtype=float)
    N = np.asarray(need, dtype=float)
    if N.ndim == 2:
        N, A = N[None], A[None]
    w = np.ones(N.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    take = np.minimum(np.asarray(split)[None, None, :] * A[:, :, None], N)
    return float((w[:, None] * (A - take.sum(axis=-1))).sum())


# --------------------------------------------------------------------------------------
# the search space: a lattice on the round-share simplex, and its niches
# --------------------------------------------------------------------------------------
def niche_centres(n_rounds: int, niche_resolution: int = 2) -> np.ndarray:
    """The fixed niche centres: the coarse lattice ``k / niche_resolution`` (as shares)."""
    return lattice(n_rounds, niche_resolution) / niche_resolution


def niche_of(shares: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Niche of each share vector: the nearest centre (Euclidean; ties to the first)."""
    x = np.atleast_2d(np.asarray(shares, dtype=float))
    d = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return np.argmin(np.round(d, 12), axis=1)


# --------------------------------------------------------------------------------------
# a share vector -> rounds -> settlement -> objective
# --------------------------------------------------------------------------------------
def _cube(instance: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    return meter_flows(stm(instance, "consumption"),
                       stm(instance, "production"))


def rounds_for(shares: Sequence[float], net_consumption, net_production, weights=None,
               carry: bool = True, cache: dict | None = None) -> list[Round]:
    """The rounds of a share vector, each with its surplus-minimising static split.

    Round ``r``'s split is :func:`round_split` of the energy it has (``sigma_r G`` plus,
    if ``carry``, what earlier rounds left) and the need remaining after them, exactly
    as :func:`recopt.settle.settle_rounds` settles it. A round with share 0 still
    redistributes what the earlier rounds left when ``carry`` (as the multi-round keys
    of :mod:`recopt.keys.multiround` do), so the objective is continuous at the edges
    of the share simplex: shares ``(1, 0, 0)`` and ``(1 - 2e-9, 1e-9, 1e-9)`` give the
    same key up to 1e-9 G. Without ``carry`` a share-0 round has nothing and is left
    out. ``cache`` (a dict) memoises splits by the prefix of shares.
    """
    cp = np.asarray(net_consumption, dtype=float)
    pm = np.asarray(net_production, dtype=float)
    G = pm.sum(axis=-1)
    need = cp.copy()
    pool = np.zeros(G.shape)
    rounds: list[Round] = []
    prefix: tuple = ()
    for r, sigma in enumerate(shares):
        sigma = max(float(sigma), 0.0)
        if sigma <= 0 and (not carry or not np.any(pool > 0)):
            continue  # nothing on the table in this round
        prefix = (*prefix, round(sigma, 12))
        avail = sigma * G + (pool if carry else 0.0)
        key = (carry, prefix)
        if cache is not None and key in cache:
            split = cache[key]
        else:
            split, _ = round_split(avail, need, weights)
            if cache is not None:
                cache[key] = split
        take = round_take(split, avail, need)
        need = np.maximum(need - take, 0.0)
        left = round_leftover(avail, take.sum(axis=-1))
        pool = left if carry else pool + left
        rounds.append(Round(sigma, np.broadcast_to(split, cp.shape), carry=carry,
                            name=f"round {r + 1}"))
    return rounds


@dataclass
class Evaluator:
    """Objective of a share vector on an instance (cached), to be *minimised*.

    ``objective`` is a name of :data:`OBJECTIVES` or a callable
    ``f(instance, settlement) -> float`` (minimised; ``settlement`` is
    :func:`recopt.settle.settle`'s Dataset). Maximised metrics are negated.
    """

    instance: xr.Dataset
    objective: str | Callable = "surplus"
    carry: bool = True
    evaluations: int = 0
    _values: dict = field(default_factory=dict)
    _splits: dict = field(default_factory=dict)
    _context: MetricContext | None = None

    def __post_init__(self):
        if isinstance(self.objective, str) and self.objective not in OBJECTIVES:
            raise ModelError(f"unknown objective {self.objective!r}; choose one of "
                             f"{', '.join(OBJECTIVES)} or pass a callable")
        self.cp, self.pm = _cube(self.instance)
        members = member_mask(self.instance)
        if not members.all():  # a community-owned plant has no need the keys serve
            self.cp = np.where(members, self.cp, 0.0)
        self.w = np.asarray(self.instance["scenario_probability"].values, dtype=float)

    def rounds(self, shares) -> list[Round]:
        return rounds_for(shares, self.cp, self.pm, self.w, self.carry, self._splits)

    def settlement(self, shares) -> xr.Dataset:
        """The settlement Dataset of the key (through :func:`recopt.settle.settle`)."""
        return settle(self.instance, rounds=self.rounds(shares))

    def metrics(self, shares) -> dict[str, float]:
        """Surplus and the named metrics (probability-weighted over scenarios).

        Computed by the metric suite's NumPy core
        (:func:`recopt.metrics.community.evaluate_arrays`) on the flows of
        :func:`recopt.settle.settle_rounds`.
        """
        if self._context is None:
            self._context = MetricContext(self.instance)
        res = settle_rounds(self.cp, self.pm, self.rounds(shares))
        ev = evaluate_arrays(self._context, res["comm_in"], res["comm_out"],
                             metrics=("self_consumption_rate", "self_sufficiency",
                                      "saving_ratio", "gini", "collective_bill"))
        w = self.w
        out = {"surplus": float((w * res["surplus"].sum(axis=1)).sum())}
        for name in ("self_consumption_rate", "collective_bill", "gini",
                     "self_sufficiency_mean"):
            out[name] = float((w * ev[name]).sum())
        out["min_saving_ratio"] = float((w * np.nanmin(ev["saving_ratio"], axis=-1)).sum())
        return out

    def __call__(self, shares) -> float:
        key = tuple(np.round(np.asarray(shares, dtype=float), 12))
        if key in self._values:
            return self._values[key]
        self.evaluations += 1
        if callable(self.objective):
            value = float(self.objective(self.instance, self.settlement(shares)))
        elif self.objective == "surplus":
            res = settle_rounds(self.cp, self.pm, self.rounds(shares))
            value = float((self.w * res["surplus"].sum(axis=1)).sum())
        else:
            v = self.metrics(shares)[self.objective]
            value = -v if OBJECTIVES[self.objective] == "max" else v
        self._values[key] = value
        return value


# --------------------------------------------------------------------------------------
# searches
# --------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """Best share vector per niche, ranked (best first).

    ``ranking``: a DataFrame with ``rank``, ``niche``, ``shares`` (tuple), ``objective``
    (the minimised value), ``evaluations`` and, after :meth:`with_metrics`, the metrics.
    """

    method: str
    objective: str
    n_rounds: int
    resolution: int
    ranking: pd.DataFrame
    evaluations: int
    evaluator: Evaluator

    def best_rounds(self, rank: int = 1) -> list[Round]:
        return self.evaluator.rounds(self.ranking.iloc[rank - 1]["shares"])

    def settlement(self, rank: int = 1) -> xr.Dataset:
        """Settle the key of the given rank (1 = best) on the instance."""
        return self.evaluator.settlement(self.ranking.iloc[rank - 1]["shares"])

    def with_metrics(self) -> SearchResult:
        rows = [self.evaluator.metrics(s) for s in self.ranking["shares"]]
        metrics = pd.DataFrame(rows, index=self.ranking.index)
        splits = [[np.round(np.asarray(r.keys)[0, 0], 6).tolist() for r in
                   self.evaluator.rounds(s)] for s in self.ranking["shares"]]
        ranking = pd.concat([self.ranking, metrics], axis=1).assign(splits=splits)
        return SearchResult(self.method, self.objective, self.n_rounds, self.resolution,
                            ranking, self.evaluations, self.evaluator)


def _rank(best: dict[int, tuple[float, tuple]], method, objective, n_rounds, resolution,
          ev: Evaluator) -> SearchResult:
    rows = [{"niche": k, "shares": s, "objective": v} for k, (v, s) in best.items()]
    df = pd.DataFrame(rows).sort_values(["objective", "niche"], kind="stable")
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    df = df.reset_index(drop=True)
    name = objective if isinstance(objective, str) else getattr(objective, "__name__", "custom")
    return SearchResult(method, name, n_rounds, resolution, df, ev.evaluations, ev)


def grid_search(instance: xr.Dataset, *, n_rounds: int = 3, resolution: int = 20,
                objective="surplus", carry: bool = True, niche_resolution: int = 2,
                evaluator: Evaluator | None = None) -> SearchResult:
    """Deterministic search: every share vector of the lattice, best per niche.

    Exact over the lattice ``k / resolution`` (the GA's search space), so it is never
    worse than :func:`ga_search` with the same ``n_rounds``/``resolution``, overall and
    in each niche.
    """
    ev = evaluator or Evaluator(instance, objective, carry)
    centres = niche_centres(n_rounds, niche_resolution)
    pts = lattice(n_rounds, resolution)
    niches = niche_of(pts / resolution, centres)
    best: dict[int, tuple[float, tuple]] = {}
    for p, k in track(zip(pts, niches.tolist(), strict=True), "LOGAAS grid", "share vectors",
                      total=len(pts)):
        shares = tuple((p / resolution).tolist())
        v = ev(shares)
        if k not in best or v < best[k][0] - 1e-12:
            best[k] = (v, shares)
    return _rank(best, "grid", objective, n_rounds, resolution, ev)


def ga_search(instance: xr.Dataset, *, n_rounds: int = 3, resolution: int = 20,
              objective="surplus", carry: bool = True, niche_resolution: int = 2,
              population: int = 6, generations: int = 15, mutation: float = 0.3,
              seed: int = 0, evaluator: Evaluator | None = None) -> SearchResult:
    """Genetic algorithm with niche-based speciation over the round shares (seeded).

    Genes: integer compositions of ``resolution`` into ``n_rounds`` parts (shares
    ``k / resolution``). Niches: the Voronoi cells of :func:`niche_centres` (fixed).
    Each niche keeps ``population`` individuals; per generation and niche, parents are
    drawn by binary tournament *within the niche*, crossed (random convex combination,
    rounded back to the lattice, largest remainder) and mutated (move up to
    ``resolution // 4`` units between two rounds, with probability ``mutation``); a
    child joins the niche it falls into (migration), and each niche keeps its best
    distinct individuals (elitist). An empty niche is re-seeded at random in its cell.
    """
    rng = np.random.default_rng(seed)
    ev = evaluator or Evaluator(instance, objective, carry)
    centres = niche_centres(n_rounds, niche_resolution)
    n_niches = len(centres)

    def niche(g):
        return int(niche_of(np.asarray(g) / resolution, centres)[0])

    def random_in(k, tries=200):
        for _ in range(tries):
            g = rng.multinomial(resolution, rng.dirichlet(np.ones(n_rounds)))
            if niche(g) == k:
                return tuple(int(x) for x in g)
        # fall back on the lattice point nearest the centre
        g = _to_lattice(centres[k], resolution)
        return tuple(int(x) for x in g)

    def fitness(g):
        return ev(tuple((np.asarray(g) / resolution).tolist()))

    pops: dict[int, list[tuple]] = {k: [] for k in range(n_niches)}
    for k in range(n_niches):
        seen = set()
        for _ in range(population * 3):
            g = random_in(k)
            if g not in seen:
                seen.add(g)
                pops[k].append(g)
            if len(pops[k]) >= population:
                break

    def tournament(pop):
        a, b = rng.integers(len(pop), size=2)
        return pop[a] if fitness(pop[a]) <= fitness(pop[b]) else pop[b]

    for _ in track(range(generations), "LOGAAS genetic search", "generations"):
        children: dict[int, list[tuple]] = {k: [] for k in range(n_niches)}
        for k, pop in pops.items():
            if not pop:
                pop.append(random_in(k))
            for _ in range(population):
                p1, p2 = np.asarray(tournament(pop)), np.asarray(tournament(pop))
                alpha = rng.uniform()
                child = _to_lattice((alpha * p1 + (1 - alpha) * p2) / resolution, resolution)
                if rng.uniform() < mutation and n_rounds > 1:
                    i, j = rng.choice(n_rounds, size=2, replace=False)
                    step = int(min(child[i], rng.integers(1, max(2, resolution // 4 + 1))))
                    child[i] -= step
                    child[j] += step
                g = tuple(int(x) for x in child)
                children[niche(g)].append(g)
        for k in range(n_niches):
            pool = list(dict.fromkeys(pops[k] + children[k]))
            pool.sort(key=fitness)
            pops[k] = pool[:population]
    best = {}
    for k, pop in pops.items():
        if pop:
            g = min(pop, key=fitness)
            best[k] = (fitness(g), tuple((np.asarray(g) / resolution).tolist()))
    return _rank(best, "ga", objective, n_rounds, resolution, ev)


def refine_shares(ev: Evaluator, shares: Sequence[float], step: float,
                  min_step: float = 1e-6, max_evaluations: int = 2000,
                  within: Callable[[np.ndarray], bool] | None = None
                  ) -> tuple[tuple[float, ...], float]:
    """Continuous local search over the share simplex from a lattice point.

    A compass (pattern) search on the simplex ``{sigma >= 0, sum sigma = 1}``: from
    the current shares try moving ``delta`` from round ``i`` to round ``j`` for every
    ordered pair (``sigma_i >= delta``; a move that empties a round ends exactly at
    0); accept the best improving move, keep ``delta`` while moves improve, halve it
    when none does, stop below ``min_step`` (or after ``max_evaluations``). Starting
    at ``step`` = the lattice spacing it searches the lattice cell's neighbourhood
    continuously, so the 1/20 lattice no longer caps the key quality; it never
    returns anything worse than its start (monotone). Each evaluation is the full
    settlement of the key (:meth:`Evaluator.__call__`).

    ``within``: a predicate on share vectors; moves outside it are not tried (the
    niche refinement keeps each niche's best in its niche).

    Returns the refined shares and their (minimised) objective.
    """
    x = np.asarray(shares, dtype=float)
    best = ev(tuple(x.tolist()))
    n = x.size
    delta = float(step)
    used = 0
    while delta >= min_step and used < max_evaluations and n > 1:
        cand_best, cand_x = best, None
        for i in range(n):
            if x[i] <= 0:
                continue
            d = min(delta, x[i])
            for j in range(n):
                if j == i:
                    continue
                y = x.copy()
                y[i] -= d
                y[j] += d
                if y[i] < 1e-15:
                    y[i] = 0.0
                if within is not None and not within(y):
                    continue
                v = ev(tuple(y.tolist()))
                used += 1
                if v < cand_best - 1e-12 * max(1.0, abs(cand_best)):
                    cand_best, cand_x = v, y
        if cand_x is None:
            delta /= 2.0
        else:
            best, x = cand_best, cand_x
    return tuple(x.tolist()), best


def _refine_ranking(res: SearchResult, top: int | None, resolution: int,
                    min_step: float, niche_resolution: int = 2) -> SearchResult:
    """Refine the best shares of the first ``top`` niches (all if None) continuously,
    each within its niche (so the ranking keeps one key per niche)."""
    df = res.ranking.copy()
    rows = range(len(df)) if top is None else range(min(top, len(df)))
    centres = niche_centres(res.n_rounds, niche_resolution)
    refined = []
    for r in rows:
        k = int(df.iloc[r]["niche"])

        def inside(y, k=k):
            return int(niche_of(y, centres)[0]) == k

        shares, value = refine_shares(res.evaluator, df.iloc[r]["shares"], 1.0 / resolution,
                                      min_step, within=inside)
        refined.append((r, shares, value))
    for r, shares, value in refined:
        df.at[df.index[r], "shares"] = shares
        df.at[df.index[r], "objective"] = value
    df["refined"] = [i in {r for r, _, _ in refined} for i in range(len(df))]
    df = df.sort_values(["objective", "niche"], kind="stable").reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    return SearchResult(res.method + "+refine", res.objective, res.n_rounds, res.resolution,
                        df, res.evaluator.evaluations, res.evaluator)


def _to_lattice(shares: np.ndarray, resolution: int) -> np.ndarray:
    """Nearest composition of ``resolution`` (largest-remainder rounding)."""
    x = np.asarray(shares, dtype=float) * resolution
    base = np.floor(x + 1e-9).astype(int)
    rest = resolution - int(base.sum())
    if rest > 0:
        base[np.argsort(-(x - base), kind="stable")[:rest]] += 1
    return base


def search(instance: xr.Dataset, method: str = "grid", *, metrics: bool = True,
           refine: bool = True, refine_top: int | None = None, refine_min_step: float = 1e-6,
           **kwargs) -> SearchResult:
    """Run ``"grid"`` (:func:`grid_search`) or ``"ga"`` (:func:`ga_search`), then refine.

    ``refine`` (default True): each niche's best lattice point (the first
    ``refine_top`` niches when given) is refined by :func:`refine_shares`, a
    continuous local search over the share simplex down to ``refine_min_step``; the
    ranking is re-sorted (``method`` becomes e.g. ``"grid+refine"``, column
    ``refined``). With ``metrics``, the ranking carries every metric of each niche's
    best key.
    """
    if method not in ("grid", "ga"):
        raise ModelError(f"method must be 'grid' or 'ga'; got {method!r}")
    res = (grid_search if method == "grid" else ga_search)(instance, **kwargs)
    if refine:
        res = _refine_ranking(res, refine_top, res.resolution, refine_min_step,
                              int(kwargs.get("niche_resolution", 2)))
    return res.with_metrics() if metrics else res
