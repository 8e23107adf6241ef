"""Benchmark MLCol against MLCpct on clustered instances (Chasseray et al. §5, Fig. 3b, Fig. 4).

For each number of actors (default 10, 15, 20, 30) and one week hourly (168 steps):

1. build a clustered instance (clusters of 4-6 actors, one PV producer per cluster,
   the rest consumers; see :func:`clustered_instance`);
2. MLCol (``enumeration=all``, exact) and MLCpct through :func:`recopt.solve.solve`
   with HiGHS, ``--repeats`` times each: build, compile and solve seconds from the
   Result's attrs (timed separately), wall time; medians;
3. check that both reach the same optimum when both are optimal: their
   ``[bound, objective]`` intervals (HiGHS's default relative MIP gap 1e-4) must meet;
   a time-limited MLCpct's bound must not exceed MLCol's optimum;
4. root-node gaps (the paper's Fig. 4), for both models:
   ``lp_gap = (opt - LP relaxation) / |opt|`` (integrality relaxed, solved by HiGHS)
   and ``root_gap = (opt - dual bound after the root node) / |opt|``
   (HiGHS with ``mip_max_nodes=1``: root LP plus HiGHS's root cuts and heuristics);
5. MLCol's enumeration: number of loops; MLCol(maximal) objective for comparison.

Records go one JSON line each to ``benchmarks/results/loops_<UTC stamp>.jsonl``
(the first line describes the machine and the load average), with a map of
MLCol's loops per size (``loops_<stamp>_<n>_actors.png``); a Markdown table is
printed at the end with the speed-up MLCpct / MLCol (solve time and end to end).

    python benchmarks/bench_loops.py            # 10, 15, 20, 30 actors, 3 repeats
    python benchmarks/bench_loops.py --quick    # 10 and 15 actors, 1 repeat, 2 days
    python benchmarks/bench_loops.py --actors 30 --time-limit 1800

Instances: by default the issue-7 generator of the paper's test protocol,
``recopt.generate.chasseray.generate(actors=n, days=d, seed=s, placement="clustered")``
(Table 7 sizes; clustered actors, BDEW profiles, pvlib PV, Tables 3-4 prices);
``--generator builtin`` uses the small clustered builder below (one PV plant per
cluster of 4-6, synthetic profiles; sparser graphs, far fewer loops), the only one
available before the generator was merged.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from recopt.bench.record import Recorder, machine_info, utc_stamp
from recopt.generate.synthetic import synthetic_community
from recopt.metrics import plot_loops
from recopt.solve import solve
from recopt.solve.bounds import root_bounds

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------
# instances
# --------------------------------------------------------------------------------------
def cluster_sizes(n: int, rng: np.random.Generator) -> list[int]:
    """Sizes in 4..6 summing to ``n`` (n >= 4)."""
    sizes: list[int] = []
    left = n
    while left > 0:
        if left <= 6:
            sizes.append(left)
            break
        s = int(rng.integers(4, 7))
        if left - s < 4:  # keep the remainder a valid cluster
            s = left - 4 if left - 4 >= 4 else left
        sizes.append(s)
        left -= s
    return sizes


def clustered_instance(n_actors: int, days: int = 7, seed: int = 0, dmax_km: float = 1.0,
                       wmax_factor: float = 1.6):
    """Clustered community: clusters of 4-6 actors, one PV producer each.

    Profiles, prices and PV sizes from :func:`recopt.generate.synthetic.synthetic_community`
    (hourly, ``n_clusters`` producers); positions re-drawn: cluster centres on a grid
    of spacing ``1.6 Dmax`` (so neighbouring clusters touch at their rims), members
    uniformly in a disc of radius ``0.5 Dmax`` around them. ``Wmax`` =
    ``wmax_factor`` x the largest producer's installed power (two large producers
    cannot share a loop).
    """
    rng = np.random.default_rng(seed)
    sizes = cluster_sizes(n_actors, rng)
    k = len(sizes)
    ds = synthetic_community(n_actors, 24 * days, step_hours=1.0, n_producers=k, seed=seed)
    producers = [i for i, c in enumerate(ds["category"].values) if c == "producer"]
    consumers = [i for i in range(n_actors) if i not in producers]
    rng.shuffle(consumers)
    side = math.ceil(math.sqrt(k))
    x = np.zeros(n_actors)
    y = np.zeros(n_actors)
    start = 0
    for c, size in enumerate(sizes):
        cx = (c % side) * 1.6 * dmax_km + rng.uniform(-0.1, 0.1) * dmax_km
        cy = (c // side) * 1.6 * dmax_km + rng.uniform(-0.1, 0.1) * dmax_km
        members = [producers[c]] + consumers[start:start + size - 1]
        start += size - 1
        r = 0.5 * dmax_km * np.sqrt(rng.random(len(members)))
        a = rng.uniform(0, 2 * np.pi, len(members))
        x[members] = cx + r * np.cos(a)
        y[members] = cy + r * np.sin(a)
    ds["x_km"] = ("member", np.round(x, 4))
    ds["y_km"] = ("member", np.round(y, 4))
    ds.attrs["max_distance_km"] = dmax_km
    ds.attrs["max_loop_power_kw"] = float(wmax_factor * ds["installed_power"].max())
    ds.attrs["title"] = f"clustered loops benchmark: {n_actors} actors, {k} clusters {sizes}"
    return ds


def make_instance(args, n: int):
    if args.generator == "chasseray":
        from recopt.generate.chasseray import generate

        ds = generate(actors=n, days=args.days, seed=args.seed, placement="clustered")
        ds.attrs["title"] = (f"chasseray generator, {n} actors, {args.days} days, seed "
                             f"{args.seed}, clustered")
        return ds
    return clustered_instance(n, days=args.days, seed=args.seed)


# --------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------
def relaxation_bounds(instance, model: str, opts: dict, time_limit: float | None) -> dict:
    """LP-relaxation bound and HiGHS's dual bound after the root node."""
    b = root_bounds(instance, model, time_limit=time_limit, **opts)
    return {"lp_bound": b["lp_bound"], "root_bound": b["root_bound"],
            "root_status": b["root_status"], "root_seconds": b["root_seconds"]}


def gap(opt: float, bound: float) -> float:
    if not (math.isfinite(opt) and math.isfinite(bound)):
        return math.nan
    return (opt - bound) / max(abs(opt), 1e-9)


def run_one(instance, model: str, opts: dict, args, png: Path | None = None) -> dict:
    t0 = time.perf_counter()
    r = solve(instance, model, time_limit=args.time_limit, **opts)
    wall = time.perf_counter() - t0
    a = r.attrs
    if png is not None and a["has_solution"]:
        plot_loops(instance, r, png)
    return {
        "model": model, "options": opts, "status": a["status"], "objective": a["objective"],
        "bound": a["bound"], "gap": a["gap"], "build_seconds": a["build_seconds"],
        "compile_seconds": a["compile_seconds"], "solve_seconds": a["solve_seconds"],
        "wall_seconds": wall, "n_variables": a["n_variables"],
        "n_constraints": a["n_constraints"], "n_integer": a["n_integer"],
        "n_loops": a.get("n_loops"), "n_enumerated_loops": a.get("n_enumerated_loops"),
        "loadavg_1min": os.getloadavg()[0],
    }


def med(runs, key):
    vals = [r[key] for r in runs if isinstance(r.get(key), int | float)]
    return statistics.median(vals) if vals else math.nan


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--actors", type=int, nargs="+", default=None)
    p.add_argument("--days", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-limit", type=float, default=900.0, help="per solve, s")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-gaps", action="store_true", help="skip the root-gap solves")
    p.add_argument("--generator", choices=("chasseray", "builtin"), default="chasseray")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    if args.actors is None:
        args.actors = [10, 15] if args.quick else [10, 15, 20, 30]
    args.days = args.days or (2 if args.quick else 7)
    args.repeats = args.repeats or (1 if args.quick else 3)
    stamp = utc_stamp()
    path = args.out / f"loops_{stamp}.jsonl"
    rows = []
    ok = True
    with Recorder(path) as recorder:
        recorder.add({"kind": "machine", **machine_info(),
                      "args": vars(args) | {"out": str(args.out)}})
        for n in args.actors:
            inst = make_instance(args, n)
            print(f"# {n} actors: {inst.attrs.get('title', '')}", flush=True)
            results = {}
            for model, opts in (("MLCol", {"enumeration": "all"}), ("MLCpct", {})):
                runs = []
                for rep in range(args.repeats):
                    png = (args.out / f"loops_{stamp}_{n}_actors.png"
                           if model == "MLCol" and rep == 0 else None)
                    rec = run_one(inst, model, opts, args, png) | {
                        "actors": n, "days": args.days, "repeat": rep}
                    recorder.add(rec)
                    print(f"  {model:7s} rep {rep}: {rec['status']} obj {rec['objective']:.4f}"
                          f" build {rec['build_seconds']:.2f} s solve "
                          f"{rec['solve_seconds']:.2f} s (load {rec['loadavg_1min']:.2f})",
                          flush=True)
                    runs.append(rec)
                    if rec["status"] != "optimal":
                        break  # a time-limited run is not repeated
                results[model] = runs
            maxi = run_one(inst, "MLCol", {"enumeration": "maximal"}, args)
            recorder.add(maxi | {"actors": n, "kind": "maximal"})
            col, cpt = results["MLCol"][0], results["MLCpct"][0]
            # Same optimum, up to the solvers' MIP gaps: each model's [bound, objective]
            # interval holds the common optimum, so the two intervals must meet. A
            # time-limited MLCpct is only checked for consistency (its bound <= MLCol's).
            tol = 1e-6 * max(1.0, abs(col["objective"]))
            consistent = (col["bound"] <= cpt["objective"] + tol
                          and cpt["bound"] <= col["objective"] + tol)
            same = consistent if col["status"] == cpt["status"] == "optimal" else None
            ok &= consistent
            opt = col["objective"] if col["status"] == "optimal" else math.nan
            gaps = {}
            if not args.no_gaps:
                for model, opts in (("MLCol", {"enumeration": "all"}), ("MLCpct", {})):
                    b = relaxation_bounds(inst, model, opts, args.time_limit)
                    gaps[model] = b | {"lp_gap": gap(opt, b["lp_bound"]),
                                       "root_gap": gap(opt, b["root_bound"])}
                    recorder.add({"kind": "gaps", "actors": n, "model": model} | gaps[model])
            row = {
                "actors": n, "loops": col["n_enumerated_loops"],
                "col_build": med(results["MLCol"], "build_seconds"),
                "col_solve": med(results["MLCol"], "solve_seconds"),
                "col_wall": med(results["MLCol"], "wall_seconds"),
                "cpt_build": med(results["MLCpct"], "build_seconds"),
                "cpt_solve": med(results["MLCpct"], "solve_seconds"),
                "cpt_wall": med(results["MLCpct"], "wall_seconds"),
                "cpt_status": cpt["status"], "cpt_gap": cpt["gap"],
                "obj": opt, "same": same, "maximal_obj": maxi["objective"],
                "col_lp_gap": gaps.get("MLCol", {}).get("lp_gap", math.nan),
                "cpt_lp_gap": gaps.get("MLCpct", {}).get("lp_gap", math.nan),
                "col_root_gap": gaps.get("MLCol", {}).get("root_gap", math.nan),
                "cpt_root_gap": gaps.get("MLCpct", {}).get("root_gap", math.nan),
                "load": os.getloadavg()[0],
            }
            rows.append(row)
            recorder.add({"kind": "summary"} | row)
    print(f"\nresults: {path}\n")
    print("| actors | loops | MLCol build / solve / wall s | MLCpct build / solve / wall s "
          "| solve ratio | wall ratio | same opt | MLCpct status | LP gap col / cpt "
          "| root gap col / cpt | maximal vs all | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['actors']} | {r['loops']} | {r['col_build']:.2f} / {r['col_solve']:.2f} / "
              f"{r['col_wall']:.2f} | {r['cpt_build']:.2f} / {r['cpt_solve']:.2f} / "
              f"{r['cpt_wall']:.2f} | {r['cpt_solve'] / r['col_solve']:.1f}x | "
              f"{r['cpt_wall'] / r['col_wall']:.1f}x | {r['same']} | {r['cpt_status']} "
              f"(gap {r['cpt_gap']:.2g}) | {r['col_lp_gap']:.2%} / {r['cpt_lp_gap']:.2%} | "
              f"{r['col_root_gap']:.2%} / {r['cpt_root_gap']:.2%} | "
              f"{gap(r['maximal_obj'], r['obj']):+.3%} | {r['load']:.2f} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
