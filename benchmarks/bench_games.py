"""Benchmark of the cooperative games (model card ``models/benefit-sharing.md``).

Measures, on synthetic communities (``synthetic_community(U, T, seed=0,
n_producers=3)``, 15-min steps):

1. ``v(S)`` evaluation: the coalition LP compiled once (build), then per coalition
   (first solve, cached re-query), and a batch of coalitions serial vs in worker
   processes (``--workers``);
2. exact Shapley at 10 / 12 / 14 members (``2^n`` LPs, in workers);
3. least core and nucleolus by row generation at 10 / 20 / 50 members, against the
   same LPs over all ``2^n - 2`` coalitions where that fits (10 members), with the
   number of coalitions generated; a time budget per case (``--budget``);
4. sampled Shapley (1 % half-width at 95 %) at 20 members;
5. ``--case sampled100``: the closed form of ``v(S)`` (``community_game(fast=True)``,
   :mod:`recopt.decomp.community_values`) against the coalition LP per coalition at
   20 members x one month (values checked equal), its cost per permutation at
   100 members x one day and x one month, and sampled Shapley to 1 % (95 %) at
   100 members x one day (the same seeded stopping rule, up to 200,000 permutations);
6. ``--case multilinear``: sampled Shapley to 1 % (95 %) at 100 members by
   ``method="multilinear"`` (stratified antithetic multilinear sampling, heavy players
   enumerated) x one month, beside the permutation sampler's cost per permutation
   at one month (its baseline, 10 permutations) and the multilinear sampler at one day;
   wall and CPU seconds, 1-min load before and after;
7. ``--case compare``: the user path's choice of sampler — ``method="permutation"``
   and ``method="multilinear"`` on the same closed-form game at each of ``--sizes``
   (e.g. ``100x96,30x672``), to the same 1 % (95 %) tolerance, in one run: wall and
   CPU seconds, samples, worst half-width / tolerance, 1-min load; and the largest
   difference between the two estimates over their combined half-widths;
8. ``--case rowgen-fast``: least core and nucleolus by row generation on the closed
   form (``community_game()`` default: closed-form values and cuts, local search,
   exact master kept in one HiGHS object), at ``--sizes``, each under ``--budget``
   seconds; coalitions generated, separations, master MILPs and master (re)builds
   counted.

Items 1-4 evaluate ``v(S)`` by the coalition LP (``community_game(fast=False)``).
Every case checks its result (efficiency; row generation = enumeration). Prints one
JSON line per measurement, a Markdown table at the end, and writes the JSON lines to
``benchmarks/results/games_<UTC>.jsonl``. Run it niced on a shared machine::

    nice -n 10 python benchmarks/bench_games.py
    nice -n 10 python benchmarks/bench_games.py --quick      # small sizes only
    nice -n 10 python benchmarks/bench_games.py --case sampled100
    nice -n 10 python benchmarks/bench_games.py --case rowgen-fast --sizes 20x96
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from recopt.bench.record import Recorder, machine_info, results_path
from recopt.decomp import games as G
from recopt.decomp.community_values import CommunityValues
from recopt.errors import SolverError
from recopt.generate.synthetic import synthetic_community

RESULTS = Path(__file__).parent / "results"


def emit(rows: list, **record) -> None:
    rows.append(record)
    print(json.dumps(record, default=float), flush=True)


def bench_values(rows, n: int, T: int, workers: int, batch: int, repeats: int) -> None:
    inst = synthetic_community(n, T, seed=0, n_producers=3)
    builds, firsts, cached = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        g = G.community_game(inst, workers=1, fast=False)
        builds.append(time.perf_counter() - t0)
        masks = [int(m) for m in np.random.default_rng(0).integers(1, g.grand, 20)]
        t0 = time.perf_counter()
        g.values(masks)
        firsts.append((time.perf_counter() - t0) / len(masks))
        t0 = time.perf_counter()
        g.values(masks)
        cached.append((time.perf_counter() - t0) / len(masks))
    emit(rows, case="v(S)", members=n, steps=T, build_s=statistics.median(builds),
         lp_per_coalition_s=statistics.median(firsts),
         cached_per_coalition_s=statistics.median(cached), repeats=repeats)
    masks = [int(m) for m in np.random.default_rng(1).integers(1, 1 << n, batch)]
    times = {}
    values = {}
    for w in (1, workers):
        g = G.community_game(inst, workers=w, fast=False)
        t0 = time.perf_counter()
        values[w] = g.values(masks)
        times[w] = time.perf_counter() - t0
    assert np.allclose(values[1], values[workers], atol=1e-7)
    emit(rows, case="v(S) batch", members=n, steps=T, coalitions=batch,
         serial_s=times[1], parallel_s=times[workers], workers=workers,
         speedup=times[1] / times[workers])


def bench_shapley(rows, n: int, T: int, workers: int) -> None:
    inst = synthetic_community(n, T, seed=0, n_producers=3)
    g = G.community_game(inst, workers=workers, fast=False)
    t0 = time.perf_counter()
    phi = G.shapley_exact(g)
    wall = time.perf_counter() - t0
    emit(rows, case="exact Shapley", members=n, steps=T, coalitions=1 << n, wall_s=wall,
         workers=workers, efficiency_gap=float(phi.sum() - g.value(g.grand)))


def bench_sampled(rows, n: int, T: int, workers: int) -> None:
    inst = synthetic_community(n, T, seed=0, n_producers=3)
    g = G.community_game(inst, workers=workers, fast=False)
    est = G.shapley_sampled(g, seed=0, rel_tol=0.01, batch=100)
    emit(rows, case="sampled Shapley 1%", members=n, steps=T, wall_s=est.seconds,
         permutations=est.n_permutations, converged=est.converged,
         coalitions=len(g.cache) - 1, max_half_width=float(est.half_width.max()),
         workers=workers)


def bench_closed_form(rows, n: int, T: int, coalitions: int, repeats: int) -> None:
    """The closed form against the coalition LP, per coalition (values checked equal)."""
    inst = synthetic_community(n, T, seed=0, n_producers=3)
    masks = [int(m) for m in np.random.default_rng(2).integers(1, 1 << n, coalitions)]
    lp = G.community_game(inst, workers=1, fast=False)
    t0 = time.perf_counter()
    v_lp = lp.values(masks)
    lp_s = (time.perf_counter() - t0) / len(masks)
    builds, per = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        g = G.community_game(inst, workers=1)
        builds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        v = g.values(masks)
        per.append((time.perf_counter() - t0) / len(masks))
    diff = float(np.abs(v - v_lp).max() / max(1.0, np.abs(v_lp).max()))
    assert diff <= 1e-7, diff
    emit(rows, case="v(S) closed form vs LP", members=n, steps=T, coalitions=coalitions,
         game_build_s=statistics.median(builds), closed_per_coalition_s=statistics.median(per),
         lp_per_coalition_s=lp_s, ratio=lp_s / statistics.median(per),
         max_rel_diff=diff, repeats=repeats)


def bench_prefix_cost(rows, n: int, T: int, permutations: int) -> None:
    """Seconds per permutation of the closed form's prefix values."""
    t0 = time.perf_counter()
    closed = CommunityValues(synthetic_community(n, T, seed=0, n_producers=3))
    build = time.perf_counter() - t0
    perms = np.argsort(np.random.default_rng(0).random((permutations, n)), axis=1)
    times = []
    for order in perms:
        t0 = time.perf_counter()
        closed.prefix_values(order[None])
        times.append(time.perf_counter() - t0)
    emit(rows, case="prefix values per permutation", members=n, steps=T,
         tables_build_s=build, lp_rows=closed.n_rows, keys=closed.n_keys,
         per_permutation_s=statistics.median(times), permutations=permutations)


def bench_sampled_fast(rows, n: int, T: int) -> None:
    inst = synthetic_community(n, T, seed=0, n_producers=3)
    t0 = time.perf_counter()
    g = G.community_game(inst, workers=1)
    build = time.perf_counter() - t0
    est = G.shapley_sampled(g, seed=0, rel_tol=0.01, batch=100, max_permutations=200_000)
    rel = est.half_width / np.maximum(np.abs(est.value), 1e-300)
    emit(rows, case=f"sampled Shapley 1%, {n} members", members=n, steps=T,
         wall_s=est.seconds, game_build_s=build, permutations=est.n_permutations,
         converged=est.converged, max_rel_half_width=float(rel.max()),
         max_half_width_over_tolerance=float((est.half_width / est.tolerance).max()),
         grand_value=g.value(g.grand), min_value=float(est.value.min()),
         efficiency_gap=float(est.value.sum() - g.value(g.grand)))


def bench_multilinear(rows, n: int, T: int, method: str) -> None:
    """Sampled Shapley to 1 % (95 %) by ``method``, wall and CPU seconds, load."""
    load0 = os.getloadavg()[0]
    inst = synthetic_community(n, T, seed=0, n_producers=3)
    t0, c0 = time.perf_counter(), time.process_time()
    g = G.community_game(inst, workers=1)
    build = time.perf_counter() - t0
    est = G.shapley_sampled(g, seed=0, rel_tol=0.01, batch=100, max_permutations=200_000,
                            method=method)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    vN = g.value(g.grand)
    assert abs(est.value.sum() - vN) <= 1e-6 * max(1.0, abs(vN))
    rel = est.half_width / np.maximum(np.abs(est.value), 1e-300)
    emit(rows, case=f"sampled Shapley 1% {method}, {n} members", members=n, steps=T,
         method=method, wall_s=wall, cpu_s=cpu, sampling_s=est.seconds, game_build_s=build,
         permutations=est.n_permutations, heavy=est.heavy, converged=est.converged,
         max_rel_half_width=float(rel.max()),
         max_half_width_over_tolerance=float((est.half_width / est.tolerance).max()),
         grand_value=vN, min_value=float(est.value.min()),
         efficiency_gap=float(est.value.sum() - vN), load_before=load0,
         load_after=os.getloadavg()[0])


def bench_compare(rows, n: int, T: int) -> None:
    """Both samplers on the same game and tolerance (item 7), permutation first."""
    ests = {}
    for method in ("permutation", "multilinear"):
        load0 = os.getloadavg()[0]
        inst = synthetic_community(n, T, seed=0, n_producers=3)
        t0, c0 = time.perf_counter(), time.process_time()
        g = G.community_game(inst, workers=1)
        est = G.shapley_sampled(g, seed=0, rel_tol=0.01, batch=100,
                                max_permutations=200_000, method=method)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        vN = g.value(g.grand)
        assert abs(est.value.sum() - vN) <= 1e-6 * max(1.0, abs(vN))
        ests[method] = est
        emit(rows, case=f"compare: sampled Shapley 1% {method}, {n} members", members=n,
             steps=T, method=method, wall_s=wall, cpu_s=cpu, sampling_s=est.seconds,
             samples=est.n_permutations, heavy=est.heavy, converged=est.converged,
             max_half_width_over_tolerance=float((est.half_width / est.tolerance).max()),
             grand_value=vN, efficiency_gap=float(est.value.sum() - vN),
             load_before=load0, load_after=os.getloadavg()[0])
    a, b = ests["permutation"], ests["multilinear"]
    gap = np.abs(a.value - b.value) / np.maximum(np.hypot(a.half_width, b.half_width), 1e-300)
    emit(rows, case=f"compare: permutation vs multilinear gap, {n} members",
         members=n, steps=T, max_gap_over_half_width=float(gap.max()),
         max_abs_difference=float(np.abs(a.value - b.value).max()),
         wall_ratio=rows[-2]["wall_s"] / rows[-1]["wall_s"])


def bench_rowgen(rows, n: int, T: int, budget: float, enumerate_too: bool) -> None:
    inst = synthetic_community(n, T, seed=0, n_producers=3)
    for what, fn in (("least core", G.least_core), ("nucleolus", G.nucleolus)):
        g = G.community_game(inst, workers=1, fast=False)
        t0 = time.perf_counter()
        try:
            res = fn(g, time_limit=budget)
        except SolverError as exc:
            emit(rows, case=f"{what} rowgen", members=n, steps=T, wall_s=time.perf_counter()
                 - t0, finished=False, message=str(exc), lps=g.n_evaluated,
                 masters=g.n_separations)
            continue
        wall = time.perf_counter() - t0
        rec = dict(case=f"{what} rowgen", members=n, steps=T, wall_s=wall, finished=True,
                   coalitions_generated=res.n_coalitions, stages=len(res.stages),
                   epsilon=res.epsilon, lps=g.n_evaluated, masters=g.n_separations,
                   lp_s=g.evaluate_seconds, separation_s=g.separation_seconds,
                   all_coalitions=(1 << n) - 2)
        if enumerate_too:
            e = G.community_game(inst, workers=2, fast=False)
            t0 = time.perf_counter()
            ref = fn(e, method="enumerate")
            rec["enumerate_s"] = time.perf_counter() - t0
            if what == "nucleolus":
                rec["max_diff"] = float(np.abs(ref.allocation - res.allocation).max())
                assert rec["max_diff"] < 1e-5
            else:
                rec["eps_diff"] = abs(ref.epsilon - res.epsilon)
                assert rec["eps_diff"] < 1e-6
        emit(rows, **rec)


def bench_rowgen_fast(rows, n: int, T: int, budget: float,
                      what_only: str = "both") -> None:
    """Least core and nucleolus by row generation on the closed form (values, cuts and
    separation without a solver but the separation master; ``community_game()``)."""
    inst = synthetic_community(n, T, seed=0, n_producers=3)
    for what, fn in (("least core", G.least_core), ("nucleolus", G.nucleolus)):
        if what_only != "both" and what.replace(" ", "_") != what_only:
            continue
        g = G.community_game(inst, workers=1)
        cs = g.closed_separation
        sub = g.submodular_separation
        subs = {} if sub is None else {"submodular": True}
        load0 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            res = fn(g, time_limit=budget)
        except SolverError as exc:
            emit(rows, case=f"{what} rowgen closed form", members=n, steps=T,
                 wall_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0,
                 finished=False, message=str(exc), coalitions_cached=len(g.cache) - 1,
                 separations=g.n_separations, masters=cs.masters,
                 master_builds=cs.master_builds, master_s=cs.master_seconds,
                 separation_s=g.separation_seconds, budget_s=budget, load_before=load0,
                 load_after=os.getloadavg()[0], **subs, **_sub_counts(sub))
            continue
        emit(rows, case=f"{what} rowgen closed form", members=n, steps=T,
             wall_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0,
             load_before=load0, load_after=os.getloadavg()[0], finished=True,
             coalitions_generated=res.n_coalitions, stages=len(res.stages),
             epsilon=res.epsilon, separations=g.n_separations, masters=cs.masters,
             master_builds=cs.master_builds, master_s=cs.master_seconds,
             closed_form_evaluations=cs.evaluations,
             separation_s=g.separation_seconds, budget_s=budget, **subs, **_sub_counts(sub))


def _sub_counts(sub) -> dict:
    """The submodular separation's counters (none when it does not apply)."""
    if sub is None:
        return {}
    return {"submodular_masters": sub.masters, "submodular_master_s": sub.master_seconds,
            "submodular_cuts": sub.cuts_added}


def table(rows) -> str:
    keys = ["case", "members", "steps", "wall_s", "coalitions_generated", "coalitions",
            "enumerate_s", "lp_per_coalition_s", "serial_s", "parallel_s", "permutations",
            "finished", "separations", "per_permutation_s", "closed_per_coalition_s",
            "max_rel_half_width", "cpu_s", "samples",
            "max_half_width_over_tolerance", "max_gap_over_half_width"]
    used = [k for k in keys if any(k in r for r in rows)]
    out = ["| " + " | ".join(used) + " |", "|" + "---|" * len(used)]
    for r in rows:
        cells = []
        for k in used:
            v = r.get(k, "")
            cells.append(f"{v:.3g}" if isinstance(v, float) else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes only")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--budget", type=float, default=120.0,
                   help="seconds per row-generation case")
    p.add_argument("--case", choices=("all", "sampled100", "multilinear", "compare",
                                      "rowgen-fast"),
                   default="all",
                   help="sampled100: only the closed-form cases (item 5); rowgen-fast: "
                        "least core / nucleolus by row generation on the closed form at "
                        "--sizes")
    p.add_argument("--only", choices=("both", "least_core", "nucleolus"), default="both",
                   help="rowgen-fast: run only one of the two")
    p.add_argument("--sizes", default="10x96,20x96,40x2880",
                   help="rowgen-fast, compare: members x steps, comma-separated")
    args = p.parse_args(argv)
    rows: list = []
    day, month = 96, 2880
    if args.case == "sampled100":
        bench_closed_form(rows, 20, month, coalitions=20, repeats=3)
        bench_prefix_cost(rows, 100, day, permutations=50)
        bench_prefix_cost(rows, 100, month, permutations=10)
        bench_sampled_fast(rows, 100, day)
        return finish(rows)
    if args.case == "multilinear":
        bench_multilinear(rows, 100, month, "multilinear")
        bench_prefix_cost(rows, 100, month, permutations=10)
        bench_multilinear(rows, 100, day, "multilinear")
        return finish(rows)
    if args.case == "compare":
        for size in args.sizes.split(","):
            n, T = (int(v) for v in size.split("x"))
            bench_compare(rows, n, T)
        return finish(rows)
    if args.case == "rowgen-fast":
        for size in args.sizes.split(","):
            n, T = (int(v) for v in size.split("x"))
            bench_rowgen_fast(rows, n, T, args.budget, args.only)
        return finish(rows)
    bench_values(rows, 20, month, args.workers, batch=64 if args.quick else 256, repeats=3)
    for n in ((10,) if args.quick else (10, 12, 14)):
        bench_shapley(rows, n, day, args.workers)
    bench_rowgen(rows, 10, day, args.budget, enumerate_too=True)
    if not args.quick:
        bench_sampled(rows, 20, day, args.workers)
        for n in (20, 50):
            bench_rowgen(rows, n, day, args.budget, enumerate_too=False)
    return finish(rows)


def finish(rows) -> int:
    with Recorder(results_path(RESULTS, "games")) as rec:
        rec.add({"machine": machine_info()})
        for r in rows:
            rec.add(r)
    print(table(rows))
    print(f"wrote {rec.path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
