"""Benchmark Mustika's KoR8/KoR9/KoR10 and the LOGAAS round LP / searches.

Measures, in one process run (pattern of ``bench_lp.py``; nothing is gated on time):

1. KoR8 at T x U (default 2880 x 100, 15 min, ``synthetic_community(U, T, seed=0)``)
   through :func:`recopt.solve.solve`: end-to-end wall time and the build / compile /
   solve / extract split, ``--repeats`` times; baseline in the same process: LP1 with
   ``producer_sales="pro_rata"`` (the same energy bill, Mustika's surplus rule), whose
   objective must equal KoR8's; ratio KoR8 / LP1. Target: KoR8 <= 10 s.
2. KoR10 (``fairness_then_bill``) and KoR9 (``exclude``) on one billing period of the
   same instance (2880 steps = April), ``--period-members`` members (default 100).
3. LOGAAS: one round at T x U, the exact fast path ``round_split`` against the Pyomo
   round LP solved by HiGHS (build and solve timed apart; equal surplus required), and
   grid vs GA searches (3 rounds, ``--resolution``) on a ``--search-members`` x 672
   slice: evaluations, wall time, best objective (grid <= GA required).

Every record goes as one JSON line to ``benchmarks/results/kor_<UTC timestamp>.jsonl``
(the first line describes the machine, with the 1-min load average); a Markdown table
is printed at the end. Exit code 1 when a correctness check fails.

    python benchmarks/bench_kor.py            # ~2-4 min on 2 idle cores
    python benchmarks/bench_kor.py --quick    # 960 x 30, 1 repeat, small searches
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from recopt.bench.record import CpuAccount, Recorder, log, machine_info, results_path
from recopt.generate.synthetic import synthetic_community
from recopt.keys.logaas import Evaluator, ga_search, grid_search, round_split
from recopt.models.logaas import build_round
from recopt.settle import meter_flows
from recopt.solve import solve
from recopt.solvers import solve_pyomo

HERE = Path(__file__).resolve().parent

PARTS = ("build_seconds", "compile_seconds", "solve_seconds", "extract_seconds")


def run_model(rec, inst, model, section, repeat, **options) -> dict:
    with CpuAccount() as cpu:
        t0 = time.perf_counter()
        r = solve(inst, model, **options)
        wall = time.perf_counter() - t0
    record = {"kind": "run", "section": section, "model": model, "repeat": repeat,
              "options": options, "wall_seconds": wall, "status": r.attrs["status"],
              "objective": r.attrs["objective"], **{k: r.attrs.get(k) for k in PARTS},
              "blocks": r.attrs.get("blocks"), "n_variables": r.attrs.get("n_variables"),
              "collective_bill": float(r["collective_bill"].sum()) if "collective_bill" in r
              else None, **cpu.as_dict()}
    if "saving_ratio" in r:
        record["min_saving_ratio"] = float(np.nanmin(r["saving_ratio"].values))
        record["gini"] = float(r["gini"].values[0])
    log(f"{section} {model} #{repeat}: {r.attrs['status']} wall {wall:.2f} s")
    return rec.add(record)


def median(records, key):
    vals = [r[key] for r in records if r.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 repeat")
    ap.add_argument("--steps", type=int, default=2880)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--period-members", type=int, default=100)
    ap.add_argument("--search-members", type=int, default=30)
    ap.add_argument("--resolution", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    if a.quick:
        a.steps, a.members, a.period_members, a.search_members = 960, 30, 20, 10
        a.resolution, a.repeats = 10, 1
    rec = Recorder(results_path(HERE / "results", "kor"))
    rec.add({"kind": "machine", **machine_info(), "args": vars(a)})
    ok = True
    table = []

    # 1. KoR8 and its same-process baseline LP1 (pro-rata sales)
    inst = synthetic_community(a.members, a.steps, seed=0)
    kor8, lp1 = [], []
    for rep in range(a.repeats):
        kor8.append(run_model(rec, inst, "KoR8", "kor8", rep))
        lp1.append(run_model(rec, inst, "LP1", "kor8", rep, producer_sales="pro_rata"))
    diff = abs(kor8[0]["objective"] - lp1[0]["objective"]) / max(1.0, abs(lp1[0]["objective"]))
    ok &= diff <= 1e-7 and all(r["status"] == "optimal" for r in kor8 + lp1)
    for name, runs in (("KoR8", kor8), ("LP1 pro_rata (baseline)", lp1)):
        table.append((f"{name} {a.steps}x{a.members}", median(runs, "wall_seconds"),
                      *(median(runs, k) for k in PARTS), runs[0]["status"]))
    ratio = median(kor8, "wall_seconds") / median(lp1, "wall_seconds")

    # 2. KoR10 / KoR9 on one billing period
    sub = inst  # with fewer members, keep the PV plant (the last member)
    if a.period_members < a.members:
        sub = inst.isel(member=list(range(a.period_members - 1)) + [a.members - 1])
    for model, opts in (("KoR10", {"order": "fairness_then_bill"}),
                        ("KoR10", {"order": "bill_then_fairness"}),
                        ("KoR9", {"nonpositive_baseline": "exclude"})):
        r = run_model(rec, sub, model, "period", 0, **opts)
        ok &= r["status"] == "optimal"
        table.append((f"{model} {opts} {a.steps}x{a.period_members}", r["wall_seconds"],
                      *(r[k] for k in PARTS), r["status"]))

    # 3. LOGAAS: one round, fast path vs Pyomo LP; searches
    cp, pm = meter_flows(inst["consumption"].values, inst["production"].values)
    G = pm.sum(-1)
    t0 = time.perf_counter()
    split, taken = round_split(G, cp)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = build_round(G, cp)
    t_build = time.perf_counter() - t0
    out = solve_pyomo(m)
    t_solve = out.compile_seconds + out.solve_seconds
    same = abs(out.objective - (G.sum() - taken)) <= 1e-6 * max(1.0, G.sum())
    ok &= bool(same)
    rec.add({"kind": "run", "section": "round", "fast_seconds": t_fast,
             "lp_build_seconds": t_build, "lp_solve_seconds": t_solve,
             "lp_surplus": out.objective, "fast_surplus": float(G.sum() - taken),
             "equal": bool(same), "loadavg_1min": os.getloadavg()[0]})
    table.append((f"LOGAAS round fast path {a.steps}x{a.members}", t_fast, None, None, t_fast,
                  None, "equal" if same else "DIFFERENT"))
    table.append((f"LOGAAS round LP (Pyomo+HiGHS) {a.steps}x{a.members}", t_build + t_solve,
                  t_build, out.compile_seconds, out.solve_seconds, None, out.status.value))

    small = inst.isel(time=slice(0, 672), member=list(range(a.search_members - 1))
                      + [a.members - 1])
    results = {}
    for method in ("grid", "ga"):
        ev = Evaluator(small, "surplus")
        t0 = time.perf_counter()
        res = (grid_search(small, resolution=a.resolution, evaluator=ev) if method == "grid"
               else ga_search(small, resolution=a.resolution, evaluator=ev, seed=0))
        wall = time.perf_counter() - t0
        best = float(res.ranking["objective"].iloc[0])
        results[method] = best
        rec.add({"kind": "run", "section": "search", "method": method, "wall_seconds": wall,
                 "evaluations": res.evaluations, "best_surplus_kwh": best,
                 "best_shares": res.ranking["shares"].iloc[0],
                 "loadavg_1min": os.getloadavg()[0]})
        table.append((f"LOGAAS {method} 3 rounds 1/{a.resolution}, 672x{a.search_members} "
                      f"({res.evaluations} evals, best {best:.3f} kWh)", wall, None, None, None,
                      None, "ok"))
    ok &= results["grid"] <= results["ga"] + 1e-9

    print(f"\nbench_kor, load average {os.getloadavg()}, results in {rec.path}\n")
    print("| case | wall s (median) | build | compile | solve | extract | status |")
    print("|---|---|---|---|---|---|---|")
    for row in table:
        cells = [f"{v:.2f}" if isinstance(v, float) else ("" if v is None else str(v))
                 for v in row]
        print("| " + " | ".join(cells) + " |")
    print(f"\nKoR8 / LP1(pro_rata) wall ratio: {ratio:.2f}; objectives differ by "
          f"{diff:.1e} (relative); checks {'passed' if ok else 'FAILED'}")
    rec.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
