"""Brute force over a region's standard keys and over multi-round key grids.

OptimCE's "Algorithm 1" (OptimCE 2026, docs/references.md): replay the data
through every candidate key, compute its metrics, rank (by default by the collective
self-consumption rate, SCR) and report the winner, the runners-up and -- next to every
ranking -- the theoretical upper bound ``sum_t min(G, sum_i C+) / sum_t G``, the most
any key can share (:func:`recopt.metrics.community.sharing_upper_bound`).

Candidates:

* the region's catalogue (:mod:`recopt.keys.catalogues`), each settled by
  :mod:`recopt.settle` and measured by :func:`recopt.metrics.community.evaluate_arrays`;
* for regions accepting iterative keys (Wallonia, Brussels), the **round grid**: every
  ``n_rounds``-round key whose round shares of ``G`` lie on a grid of step ``step``
  summing to 1, with one rule per round among ``rules`` (default ``equal``, ``fixed``
  (specific shares), ``prorata`` of the remaining need; leftovers carried to the next
  round). With 3 rounds, step 0.1 and 3 rules that is ``66 * 3**3 = 1,782`` candidates,
  OptimCE's count.

The round grid is streamed: only numbers per candidate are kept (per-member and
per-scenario sums), never a candidate's time series. Candidates that share their first
rounds share that computation (a depth-first walk of the round tree), restricted to the
steps where something can be shared (``G > 0`` and some need). The round arithmetic is
the settlement rule's (:func:`recopt.settle.round_step` semantics; the prorata round in
closed form ``take = need * min(1, A / sum need)``, the same number); the test suite
checks every grid candidate against :func:`recopt.settle.settle_rounds`, and the winner
and runners-up are re-settled with :func:`recopt.settle.settle` for their report.
"""

from __future__ import annotations

import itertools
import logging
import time as _time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data.schema import SCENARIO
from recopt.errors import ModelError
from recopt.keys.catalogues import ITERATIVE_REGIONS, catalogue, specific_shares
from recopt.keys.multiround import RoundSpec, multiround_plan, share_lattice
from recopt.keys.rules import KeyInputs, KeyPlan, settle_key, settle_plan
from recopt.metrics.community import METRIC_ATTRS, MetricContext, evaluate_arrays
from recopt.progress import progress, track
from recopt.settle.kernels import prorata_fraction, round_leftover, round_take, sales_ratio

__all__ = ["RANK_METRICS", "round_grid", "BruteForceResult", "brute_force"]

log = logging.getLogger(__name__)

#: Metrics a ranking may use (scalar per scenario) and whether larger is better.
RANK_METRICS = {
    "self_consumption_rate": True,
    "self_sufficiency_mean": True,
    "bill_saving_mean": True,
    "collective_saving_ratio": True,
    "gini": False,
    "collective_bill": False,
    "surplus_injected": False,
}
_ALIASES = {"scr": "self_consumption_rate", "ssr": "self_sufficiency_mean",
            "saving": "bill_saving_mean", "bill_saving": "bill_saving_mean",
            "self_sufficiency": "self_sufficiency_mean", "surplus": "surplus_injected"}
_EVAL = ("self_consumption_rate", "self_sufficiency", "bill_saving", "saving_ratio", "gini",
         "collective_bill", "surplus_injected", "sharing_upper_bound")
DEFAULT_RULES = ("equal", "fixed", "prorata")
#: Units of the ranked figures (for printed tables).
METRIC_UNITS = {name: unit for name, (unit, _) in METRIC_ATTRS.items()}


def _rank_metric(name: str) -> str:
    name = _ALIASES.get(str(name).lower(), str(name))
    if name not in RANK_METRICS:
        raise ModelError(f"cannot rank by {name!r}; choose one of {', '.join(RANK_METRICS)}")
    return name


def round_grid(n_rounds: int = 3, step: float = 0.1,
               rules: Sequence[str] = DEFAULT_RULES) -> list[tuple[tuple[float, ...],
                                                                   tuple[str, ...]]]:
    """Every (round shares, round rules) of the grid; shares on ``step`` summing to 1.

    ``round_grid()`` has ``66 * 27 = 1782`` entries (OptimCE's three-round candidates).
    """
    k = round(1.0 / step)
    if not np.isclose(k * step, 1.0) or n_rounds < 1:
        raise ModelError("step must divide 1 (e.g. 0.1, 0.25) and n_rounds must be >= 1")
    out = []
    for parts in share_lattice(n_rounds, k):
        shares = tuple(int(p) / k for p in parts)
        for rr in itertools.product(rules, repeat=n_rounds):
            out.append((shares, tuple(rr)))
    return out


#: Readings of a ``fixed`` round after the first (:func:`effective_rule`).
FIXED_READINGS = ("keep", "optimce")


def effective_rule(rule: str, depth: int, fixed_reading: str = "keep") -> str:
    """The settled rule of round ``depth`` (0-based) of a grid candidate.

    ``fixed_reading="keep"`` (recopt's default): a ``fixed`` round keys everyone
    with the fixed shares ``s``, so a satisfied member's offer is left over (and
    carried). ``"optimce"``: OptimCE's multi-round reading, rounds 2-3 re-weight the
    shares on the members that still have a need, ``lambda_i = s_i [need_i > 0] /
    sum_j s_j [need_j > 0]`` (the ``fixed_needy`` round rule).
    """
    if fixed_reading not in FIXED_READINGS:
        raise ModelError(f"fixed_reading must be one of {', '.join(FIXED_READINGS)}; got "
                         f"{fixed_reading!r}")
    if rule == "fixed" and depth > 0 and fixed_reading == "optimce":
        return "fixed_needy"
    return rule


def _label(shares, rules) -> str:
    return " + ".join(f"{round(100 * s)}% {r}" for s, r in zip(shares, rules, strict=True))


# ---------------------------------------------------------------------------------
# the streamed round tree
# ---------------------------------------------------------------------------------
@dataclass
class _State:
    need: np.ndarray | None  # (S, n, U) remaining need on the chunk's steps
    total_need: np.ndarray | None  # (S, n)
    pool: np.ndarray  # (S, n) energy left by earlier rounds (carried)
    taken_member: np.ndarray  # (S, U) sum over the chunk's steps of takes
    taken_step: np.ndarray  # (S, n) sum over members of takes


class _Chunk:
    """The round arithmetic on one chunk of active steps (cache-sized arrays)."""

    def __init__(self, need0, g, p_inj, const, dtype):
        self.need0, self.g, self.p_inj, self.const = need0, g, p_inj, const
        self.dtype = dtype
        self.ones_u = np.ones(need0.shape[-1], dtype=dtype)

    def root(self) -> _State:
        s, n, u = self.need0.shape
        return _State(self.need0, self.need0 @ self.ones_u, np.zeros((s, n), self.dtype),
                      np.zeros((s, u), self.dtype), np.zeros((s, n), self.dtype))

    def step(self, st: _State, share: float, rule: str, leaf: bool) -> _State:
        need_in, total_in = st.need, st.total_need
        assert need_in is not None and total_in is not None  # only a leaf has no need
        avail = self.g * self.dtype.type(share) + st.pool
        if rule == "prorata":  # take = need * min(1, A / N): prorata_need in closed form
            f = prorata_fraction(avail, total_in)
            step_take = total_in * f
            member = np.matmul(f[:, None, :], need_in)[:, 0, :]
            need = None if leaf else need_in * (1.0 - f)[..., None]
        elif rule == "fixed_needy":  # OptimCE's reading: shares re-weighted on the needy
            w = np.where(need_in > 0, self.const["fixed"], self.dtype.type(0.0))
            tot = w.sum(axis=-1, keepdims=True)
            lam = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0)
            take = round_take(lam, avail, need_in)
            step_take = take @ self.ones_u
            member = take.sum(axis=1)
            need = None if leaf else need_in - take
        elif rule in self.const:  # take = min(lambda * A, need), Mustika (5) and (7)
            take = round_take(self.const[rule], avail, need_in)
            step_take = take @ self.ones_u
            member = take.sum(axis=1)
            need = None if leaf else need_in - take
        else:
            raise ModelError(f"round rule {rule!r} is not in the grid engine "
                             "(equal, fixed, prorata)")
        total = None if leaf else st.total_need - step_take
        return _State(need, total, round_leftover(avail, step_take),
                      st.taken_member + member, st.taken_step + step_take)

    def sales(self, st: _State) -> np.ndarray:
        """Sales of the injectors summed over the chunk: Mustika (11)-(12)."""
        ratio = sales_ratio(st.taken_step, self.g)
        return np.matmul(ratio[:, None, :], self.p_inj)[:, 0, :]


def _grid_order(n_rounds: int, k: int, rules: tuple[str, ...]):
    """Candidates in depth-first order: (parts, rules) with parts summing to k."""
    return [(tuple(p), rr) for p, rr in
            ((parts + (k - sum(parts),), rr)
             for parts in itertools.product(range(k + 1), repeat=n_rounds - 1)
             if sum(parts) <= k
             for rr in itertools.product(rules, repeat=n_rounds))]


def _grid_sums(inputs: KeyInputs, shares, n_rounds, k, rules, dtype, threads,
               chunk_steps: int = 512, fixed_reading: str = "keep"):
    """Per candidate: community intake and sales summed over time, (K, S, U) each.

    Walks the round tree once per chunk of active steps (``G > 0`` and some need) so
    that the arrays stay in cache, and sums the chunks (threads over chunks).
    """
    c, p = inputs.net_consumption, inputs.net_production
    dt = np.dtype(dtype)
    g = p.sum(axis=-1)
    active = np.flatnonzero(((g > 0) & (c.sum(axis=-1) > 0)).any(axis=0))
    injectors = np.flatnonzero(p.sum(axis=(0, 1)) > 0)
    u = c.shape[-1]
    const = {"equal": np.asarray(inputs.equal_shares(), dtype=dt),  # 1/M, plants 0
             "fixed": np.asarray(shares, dtype=dt)}
    order = _grid_order(n_rounds, k, rules)
    index = {cand: i for i, cand in enumerate(order)}
    n_s = c.shape[0]

    def run(sl):
        steps = active[sl]
        ch = _Chunk(np.ascontiguousarray(c[:, steps, :], dtype=dt),
                    np.ascontiguousarray(g[:, steps], dtype=dt),
                    np.ascontiguousarray(p[:, steps][:, :, injectors], dtype=dt), const, dt)
        cin = np.zeros((len(order), n_s, u))
        cout = np.zeros((len(order), n_s, injectors.size))

        def walk(st, depth, used, parts, rr):
            last = depth == n_rounds - 1
            for part in ([k - used] if last else range(k - used + 1)):
                first_zero = depth == 0 and part == 0
                for rule in (rules[:1] if first_zero else rules):
                    nxt = ch.step(st, part / k, effective_rule(rule, depth, fixed_reading),
                                  leaf=last)
                    pp, r2 = parts + (part,), rr + (rule,)
                    if last:
                        i = index[(pp, r2)]
                        cin[i] = nxt.taken_member
                        cout[i] = ch.sales(nxt)
                    else:
                        walk(nxt, depth + 1, used + part, pp, r2)
        walk(ch.root(), 0, 0, (), ())
        # nothing is on the table in a first round of share 0: its rule is irrelevant
        for (pp, rr), i in index.items():
            if pp[0] == 0 and rr[0] != rules[0]:
                j = index[(pp, (rules[0],) + rr[1:])]
                cin[i], cout[i] = cin[j], cout[j]
        return cin, cout

    slices = [slice(a, a + chunk_steps) for a in range(0, active.size, chunk_steps)]
    cin = np.zeros((len(order), n_s, u))
    cout_inj = np.zeros((len(order), n_s, injectors.size))
    with progress(len(slices), f"brute force ({len(order)} candidates)",
                  "step chunks") as bar:
        if threads and threads > 1 and len(slices) > 1:
            with ThreadPoolExecutor(threads) as ex:
                parts = ex.map(run, slices)
                for a, b in parts:
                    cin += a
                    cout_inj += b
                    bar.update(1)
        else:
            for sl in slices:
                a, b = run(sl)
                cin += a
                cout_inj += b
                bar.update(1)
    cout = np.zeros((len(order), n_s, u))
    cout[:, :, injectors] = cout_inj
    # round-off guards (float32 sums): 0 <= intake <= sum C+, 0 <= sales <= sum P-
    cin = np.clip(cin, 0.0, c.sum(axis=1))
    cout = np.clip(cout, 0.0, p.sum(axis=1))
    cands = [(tuple(x / k for x in pp), rr) for pp, rr in order]
    return cands, cin, cout


# ---------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------
@dataclass
class BruteForceResult:
    """Ranking of the candidates, best first.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per candidate: ``rank``, ``candidate``, ``family``, ``round_shares``,
        ``round_rules`` and the metrics (means over scenarios, weighted by
        ``scenario_probability``).
    metric : str
        The ranking metric.
    upper_bound : float
        SCR upper bound (mean over scenarios): no key shares more.
    shares_source : str
        Where the specific shares came from.
    seconds : float
        Wall time of the search.
    settlements : dict of xarray.Dataset
        Full settlements (:func:`recopt.settle.settle`) of the first ``settle_top``
        candidates (default none); :meth:`settle` settles any candidate on demand
        (time series are not kept while ranking).
    """

    table: pd.DataFrame
    metric: str
    upper_bound: float
    shares_source: str
    seconds: float
    settlements: dict[str, xr.Dataset] = field(default_factory=dict)
    _settle: Callable[[str], xr.Dataset] | None = field(default=None, repr=False)

    def settle(self, candidate: str) -> xr.Dataset:
        """Full settlement of a ranked candidate (:func:`recopt.settle.settle`)."""
        if candidate in self.settlements:
            return self.settlements[candidate]
        assert self._settle is not None  # set by brute_force()
        return self._settle(candidate)

    @property
    def winner(self) -> pd.Series:
        return self.table.iloc[0]

    def runners_up(self, n: int = 4) -> pd.DataFrame:
        return self.table.iloc[1:1 + n]

    @property
    def ranking(self) -> pd.DataFrame:
        """The ranking with equivalent candidates collapsed into one row.

        Candidates that give every member the same intake and sales over the horizon
        (judged on 6 significant digits, per scenario and member) have the same
        metrics: they are one allocation under several names (e.g. a zero-share
        round whose rule cannot matter). The row keeps the best-placed name (so the
        winner is unchanged), ``n_equivalent`` counts the names and ``equivalent``
        lists the others ("; "-separated, empty when unique); ``rank`` is renumbered.
        """
        t = self.table
        if "_signature" not in t:
            return t.copy()
        groups: dict[object, list[int]] = {}
        for i, sig in enumerate(t["_signature"]):
            groups.setdefault(sig, []).append(i)
        first = sorted(v[0] for v in groups.values())
        names = t["candidate"].tolist()
        out = t.iloc[first].copy()
        members = {v[0]: v for v in groups.values()}
        out["n_equivalent"] = [len(members[i]) for i in first]
        out["equivalent"] = ["; ".join(names[j] for j in members[i][1:]) for i in first]
        out = out.drop(columns="_signature").reset_index(drop=True)
        out["rank"] = np.arange(1, len(out) + 1)
        return out

    def tidy(self, collapsed: bool = True) -> pd.DataFrame:
        """The ranking as a tidy numeric table (for CSV): one column per figure.

        ``round_shares`` / ``round_rules`` tuples become ``round_<r>_share`` (a number)
        and ``round_<r>_rule`` (a rule name) columns, empty beyond a candidate's rounds.
        """
        df = self.ranking if collapsed else self.table.drop(columns="_signature",
                                                            errors="ignore")
        n = max(len(x) for x in df["round_shares"]) if len(df) else 0
        for r in range(n):
            df[f"round_{r + 1}_share"] = [float(x[r]) if r < len(x) else np.nan
                                          for x in df["round_shares"]]
            df[f"round_{r + 1}_rule"] = [str(x[r]) if r < len(x) else ""
                                         for x in df["round_rules"]]
        return df.drop(columns=["round_shares", "round_rules"])

    def to_dataset(self) -> xr.Dataset:
        """The collapsed ranking as a Dataset on dim ``candidate`` (for netCDF)."""
        df = self.tidy(collapsed=True)
        ds = xr.Dataset.from_dataframe(df.set_index("candidate"))
        ds.attrs = {"metric": self.metric, "scr_upper_bound": self.upper_bound,
                    "shares_source": self.shares_source, "seconds": self.seconds}
        return ds

    def summary(self, n: int = 5) -> str:
        """The first ``n`` rows of the collapsed ranking, with units and 6 digits."""
        ranking = self.ranking
        cols = ["rank", "candidate", self.metric]
        extra = [c for c in ("self_consumption_rate", "self_sufficiency_mean",
                             "bill_saving_mean", "gini") if c in ranking and c not in cols]
        head = ranking.head(n)[cols + extra].rename(columns={
            c: f"{c} [{METRIC_UNITS.get(c, '1')}]" for c in cols[2:] + extra})
        text = head.to_string(index=False, float_format=lambda x: f"{x:.6g}")
        aliases = [f"  #{int(r['rank'])} {r['candidate']} = {r['equivalent']}"
                   for _, r in ranking.head(n).iterrows()
                   if "equivalent" in ranking and r["equivalent"]]
        if aliases:
            text += "\nsame allocation under other names:\n" + "\n".join(aliases)
        return (text
                + f"\nSCR upper bound (min(G, sum C+) per step): {self.upper_bound:.6g}"
                + f"\n{len(self.table)} candidates ({len(ranking)} distinct allocations) in "
                  f"{self.seconds:.2f} s")


def _signature(cin, cout) -> tuple:
    """Per (scenario, member) intake and sales over the horizon, 6 significant digits
    (the ranking's tie precision: the grid is summed in float32, the catalogue in
    float64)."""
    a = np.concatenate([np.asarray(cin, dtype=float).sum(axis=1).ravel(),
                        np.asarray(cout, dtype=float).sum(axis=1).ravel()])
    return tuple(float(f"{x:.6g}") for x in a)


def _metrics_row(ctx: MetricContext, cin, cout, weights) -> dict[str, object]:
    res = evaluate_arrays(ctx, cin, cout, metrics=list(_EVAL))
    row: dict[str, object] = {"_signature": _signature(cin, cout)}
    for name in RANK_METRICS:
        v = np.asarray(res[name], dtype=float)
        row[name] = float(np.nansum(v * weights) / weights[~np.isnan(v)].sum()) \
            if np.any(~np.isnan(v)) else float("nan")
    return row


def brute_force(
    instance: xr.Dataset,
    region: str = "wallonia",
    *,
    metric: str = "self_consumption_rate",
    grid: bool | None = None,
    n_rounds: int = 3,
    step: float = 0.1,
    rules: Sequence[str] = DEFAULT_RULES,
    shares=None,
    top: int = 5,
    dtype: str = "float32",
    threads: int = 2,
    settle_top: int = 0,
    context: MetricContext | None = None,
    fixed_reading: str = "keep",
) -> BruteForceResult:
    """Rank a region's standard keys (and, where allowed, the round grid) on an instance.

    Parameters
    ----------
    instance : xarray.Dataset
        A recopt instance (any number of scenarios; metrics are averaged over them
        with ``scenario_probability``).
    region : {"wallonia", "brussels", "flanders"}
    metric : str, default "self_consumption_rate"
        Ranking metric, one of :data:`RANK_METRICS` (aliases ``scr``, ``ssr``,
        ``saving``); ``gini``, ``collective_bill``, ``surplus_injected`` rank lowest
        first.
    grid : bool, optional
        Include the round grid (default: True for Wallonia and Brussels).
    n_rounds, step, rules :
        The grid (default 3 rounds, 10 % steps, rules equal/fixed/prorata: 1,782).
    shares : array_like, optional
        Specific shares (one per member); default from ``investment`` or net
        consumption (:func:`recopt.keys.catalogues.specific_shares`).
    top : int, default 5
        Winner + runners-up shown by :meth:`BruteForceResult.summary` (CLI).
    dtype : {"float32", "float64"}
        Precision of the streamed grid (the catalogue and the re-settlements are
        float64).
    threads : int, default 2
        Threads walking the grid (NumPy releases the GIL).
    settle_top : int, default 0
        How many of the best candidates to re-settle in full with
        :func:`recopt.settle.settle` right away (``settlements``); any candidate can be
        settled on demand (:meth:`BruteForceResult.settle`). A full settlement holds
        about a dozen time series (0.3 GiB for 100 members x 1 year at 15 min).
    context : MetricContext, optional
        Precomputed metric context of the instance.
    fixed_reading : {"keep", "optimce"}, default "keep"
        How a ``fixed`` round after the first keys the members
        (:func:`effective_rule`): with the shares as they are, or re-weighted on the
        members that still have a need (OptimCE's reading).

    The full candidate list is ``result.table``; ``result.ranking`` collapses
    candidates that are one allocation under several names.
    """
    t0 = _time.perf_counter()
    metric = _rank_metric(metric)
    cands = catalogue(region)
    region = cands[0].region
    inputs = KeyInputs.from_instance(instance)
    spec_shares, source = specific_shares(inputs, shares)
    ctx = context if context is not None else MetricContext(instance)
    weights = scenario_weights(instance)
    rows = []
    plans: dict[str, KeyPlan] = {}
    for cand in track(cands, "brute force catalogue", "keys"):
        plan = cand.build(inputs, spec_shares)
        res = settle_plan(inputs, plan)
        row: dict[str, object] = {"candidate": cand.name, "family": cand.family,
                                  "round_shares": (1.0,), "round_rules": (cand.name,)}
        row.update(_metrics_row(ctx, res["comm_in"], res["comm_out"], weights))
        rows.append(row)
        plans[cand.name] = plan
    if grid is None:
        grid = region in ITERATIVE_REGIONS
    if grid:
        effective_rule(rules[0], 0, fixed_reading)  # checks the reading's name
        rows += _walk_grid(inputs, spec_shares, ctx, weights, n_rounds, step, tuple(rules),
                           dtype, threads, fixed_reading)
    table = pd.DataFrame(rows)
    # rank on 6 significant digits (float32 round-off must not break ties): among equals
    # the catalogue's keys, then the simpler grid keys, come first (stable sort)
    table["_rank_key"] = table[metric].map(lambda x: float(f"{x:.6g}"))
    table = table.sort_values("_rank_key", ascending=not RANK_METRICS[metric], kind="stable",
                              na_position="last").reset_index(drop=True)
    table = table.drop(columns="_rank_key")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    ub = np.asarray(ctx.upper_bound) / np.where(ctx.community_production.sum(-1) > 0,
                                                ctx.community_production.sum(-1), np.nan)
    upper = float(np.nansum(ub * weights) / weights[~np.isnan(ub)].sum()) \
        if np.any(~np.isnan(ub)) else float("nan")
    result = BruteForceResult(table, metric, upper, source, 0.0)

    def settle_candidate(name: str) -> xr.Dataset:
        row = table.loc[table["candidate"] == name]
        if row.empty:
            raise ModelError(f"no candidate named {name!r}")
        row = row.iloc[0]
        plan = plans.get(name)
        if plan is None:
            specs = [RoundSpec(s, effective_rule(r, d, fixed_reading), True) for d, (s, r) in
                     enumerate(zip(row["round_shares"], row["round_rules"], strict=True))]
            plan = multiround_plan(inputs, specs, shares=spec_shares)
        return settle_key(instance, plan)

    result._settle = settle_candidate
    for name in table["candidate"].head(int(settle_top)):
        result.settlements[name] = settle_candidate(name)
    result.seconds = _time.perf_counter() - t0
    return result


def _walk_grid(inputs, shares, ctx, weights, n_rounds, step, rules, dtype, threads,
               fixed_reading="keep"):
    """Stream the round grid; returns one metrics row per candidate."""
    k = round(1.0 / step)
    if not np.isclose(k * step, 1.0) or n_rounds < 1:
        raise ModelError("step must divide 1 (e.g. 0.1, 0.25) and n_rounds must be >= 1")
    rows = []
    if ctx.time_varying_prices:  # bills need the flows per step: settle every candidate
        for sh, rr in round_grid(n_rounds, step, rules):
            plan = multiround_plan(inputs, [RoundSpec(x, effective_rule(r, d, fixed_reading))
                                            for d, (x, r) in enumerate(zip(sh, rr, strict=True))],
                                   shares=shares)
            res = settle_plan(inputs, plan)
            row: dict[str, object] = {"candidate": _label(sh, rr), "family": "multi-round",
                                      "round_shares": sh, "round_rules": rr}
            row.update(_metrics_row(ctx, res["comm_in"], res["comm_out"], weights))
            rows.append(row)
        return rows
    cands, cin, cout = _grid_sums(inputs, shares, n_rounds, k, rules, dtype, threads,
                                  fixed_reading=fixed_reading)
    for (sh, rr), a, b in zip(cands, cin, cout, strict=True):
        row = {"candidate": _label(sh, rr), "family": "multi-round",
               "round_shares": sh, "round_rules": rr}
        row.update(_metrics_row(ctx, a[:, None, :], b[:, None, :], weights))
        rows.append(row)
    return rows


def scenario_weights(instance: xr.Dataset) -> np.ndarray:
    """Scenario probabilities (equal when absent)."""
    if "scenario_probability" in instance:
        return np.asarray(instance["scenario_probability"].values, dtype=float)
    return np.full(instance.sizes[SCENARIO], 1.0 / instance.sizes[SCENARIO])
