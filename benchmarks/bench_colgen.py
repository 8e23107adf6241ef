"""Benchmark MLCol with column generation against MLCol(all) and MLCol(maximal).

Chasseray et al. (arXiv 2404.04428, DOI 10.48550/arXiv.2404.04428) enumerate every
loop before solving and report that dense neighbourhood graphs make MLCol intractable
(§5.1, §5.3.2, Fig. 7). This benchmark runs, in the same session and one at a time:

* ``MLCol --option enumeration=all`` (exact, every loop; ``max_loops`` raised so that
  it tries), ``enumeration=maximal`` (the paper's heuristic column set) and
  ``enumeration=generate`` (column generation, price-and-branch; model card
  ``models/MLCol-column-generation.md``), optionally ``MLColExt enumeration=generate``;
* each run in its own process (``python benchmarks/bench_colgen.py --child ...``), so
  that the peak resident memory of the **process tree** (psutil, polled every 0.2 s)
  belongs to that run only; a run passing ``--memory-cap`` GiB is killed and recorded
  as such (the machine is shared);
* on generator instances (``recopt.generate.chasseray.generate``): ``dens_2`` (the
  paper's density 2 actors/km², clustered placement as the paper's Table 5 run) at 50
  and 30 actors x 7 days, the clustered reference ``30_act_7_d``, optionally
  ``dens_2_uniform``;
* medians over seeds of wall time, peak RSS, objective, bound and gap; the objective
  of every method is compared with the others' bounds (no method may beat another's
  proven bound).

Records go one JSON line each to ``benchmarks/results/colgen_<UTC stamp>.jsonl``
through :mod:`recopt.bench.record` (the first line: ``machine_info``); a Markdown table
is printed at the end.

    nice -n 10 python benchmarks/bench_colgen.py --cases dens_2:50 --seeds 1 2 3
    nice -n 10 python benchmarks/bench_colgen.py --cases dens_2:30 30_act_7_d:30 --seeds 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from recopt.bench.record import Recorder, log, machine_info, results_path, tree_rss

HERE = Path(__file__).resolve().parent

METHODS = {
    "all": ("MLCol", {"enumeration": "all", "max_loops": 10_000_000}),
    "maximal": ("MLCol", {"enumeration": "maximal", "max_loops": 10_000_000}),
    "generate": ("MLCol", {"enumeration": "generate"}),
    "generate_bp": ("MLCol", {"enumeration": "generate", "branch_and_price": True}),
    "ext_generate": ("MLColExt", {"enumeration": "generate"}),
    # the restricted master split by time blocks is the default since the fifth pass;
    # *_split names it explicitly (older records), *_full is the whole-LP master
    "ext_generate_split": ("MLColExt", {"enumeration": "generate", "master_solver": "split"}),
    "generate_split": ("MLCol", {"enumeration": "generate", "master_solver": "split"}),
    "ext_generate_full": ("MLColExt", {"enumeration": "generate", "master_solver": "full"}),
    "generate_full": ("MLCol", {"enumeration": "generate", "master_solver": "full"}),
    "ext_all": ("MLColExt", {"enumeration": "all", "max_loops": 10_000_000}),
    "ext_maximal": ("MLColExt", {"enumeration": "maximal"}),
}


def child(args) -> None:
    """Generate the instance, solve it, print the Result's attrs as JSON (last line)."""
    from recopt.generate.chasseray import generate
    from recopt.solve import solve

    preset, actors = args.case.split(":")
    t0 = time.perf_counter()
    inst = generate(preset, actors=int(actors), days=args.days, seed=args.seed)
    t1 = time.perf_counter()
    if args.method == "count":  # the size of MLCol(all)'s loop set, enumerated only
        from recopt.models.loops import loop_data
        from recopt.models.loops.build import loop_set

        n = len(loop_set(loop_data(inst), "all", 10_000_000))
        print(json.dumps({"status": "counted", "n_enumerated_loops": n,
                          "count_seconds": time.perf_counter() - t1}))
        return
    model, opts = METHODS[args.method]
    if args.log:  # the rounds and iterations with their times, kept in the record
        import logging

        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(relativeCreated).0f ms %(name)s %(message)s")
    r = solve(inst, model, time_limit=args.time_limit, mip_gap=args.gap, **opts)
    a = r.attrs
    keep = ("status", "message", "objective", "bound", "gap", "build_seconds",
            "compile_seconds", "solve_seconds", "wall_seconds", "n_variables",
            "n_constraints", "n_integer", "n_enumerated_loops", "n_generated_loops",
            "cg_rounds", "cg_exact_pricings", "cg_nodes", "cg_lp_value", "cg_lp_bound")
    out = {k: (a[k].item() if hasattr(a.get(k), "item") else a.get(k)) for k in keep}
    out["generate_seconds"] = t1 - t0
    print(json.dumps(out, default=str))


def run(case: str, method: str, seed: int, args) -> dict:
    import psutil

    cmd = [sys.executable, __file__, "--child", "--case", case, "--method", method,
           "--seed", str(seed), "--days", str(args.days), "--time-limit", str(args.time_limit),
           "--gap", str(args.gap)] + (["--log"] if args.log else [])
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = psutil.Process(p.pid)
    peak, killed = 0, None
    hard = args.time_limit + args.grace
    while p.poll() is None:
        peak = max(peak, tree_rss(proc))
        if peak > args.memory_cap * 2**30:
            killed = f"memory cap {args.memory_cap} GiB"
        elif time.perf_counter() - t0 > hard:
            killed = f"wall {hard:.0f} s"
        if killed:
            for c in proc.children(recursive=True):
                c.kill()
            p.kill()
            break
        time.sleep(0.2)
    out_text, err_text = p.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child and its children
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rec = {"case": case, "method": method, "seed": seed, "days": args.days,
           "wall_process_seconds": wall, "cpu_process_seconds": cpu,
           "peak_rss_gib": peak / 2**30, "killed": killed, "load_average_before": load0}
    if args.log:  # the solver's log lines (column-generation rounds, Benders iterations)
        rec["log"] = [ln for ln in err_text.splitlines() if " recopt." in ln][-200:]
    if killed is None:
        try:
            rec.update(json.loads(out_text.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError):
            rec["error"] = err_text.strip().splitlines()[-1] if err_text.strip() else "?"
    return rec


def _med(values):
    v = [x for x in values if isinstance(x, int | float) and math.isfinite(x)]
    return statistics.median(v) if v else math.nan


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--method", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--cases", nargs="+", default=["dens_2:50", "dens_2:30", "30_act_7_d:30"],
                   help="preset:actors (generator preset and number of actors)")
    p.add_argument("--methods", nargs="+", default=["generate", "all", "maximal"],
                   choices=sorted(METHODS) + ["count"],
                   help="count: only enumerate MLCol(all)'s loops (the curve's x axis)")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--log", action="store_true",
                   help="keep the solver's INFO log lines (rounds, iterations) in the record")
    p.add_argument("--time-limit", type=float, default=120.0)
    p.add_argument("--gap", type=float, default=1e-4, help="target relative gap (mip_gap)")
    p.add_argument("--memory-cap", type=float, default=3.0,
                   help="GiB of the process tree at which a run is killed")
    p.add_argument("--grace", type=float, default=60.0,
                   help="seconds past the time limit before a run is killed")
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return
    path = results_path(HERE / "results", "colgen")
    records = []
    with Recorder(path) as out:
        out.add({"machine": machine_info(), "argv": sys.argv[1:]})
        for case in args.cases:
            for seed in args.seeds:
                for method in args.methods:
                    rec = run(case, method, seed, args)
                    rec["load_average"] = os.getloadavg()
                    records.append(out.add(rec))
                    log(f"{case} seed {seed} {method}: {rec.get('status', rec.get('killed'))}"
                        f" obj {rec.get('objective')} bound {rec.get('bound')} gap "
                        f"{rec.get('gap')} wall {rec['wall_process_seconds']:.1f} s cpu "
                        f"{rec['cpu_process_seconds']:.1f} s peak "
                        f"{rec['peak_rss_gib']:.2f} GiB")
    # same-optimum / bound consistency: no objective below another method's bound
    for case in args.cases:
        for seed in args.seeds:
            rs = [r for r in records if r["case"] == case and r["seed"] == seed
                  and isinstance(r.get("objective"), float) and math.isfinite(r["objective"])]
            for a in rs:
                for b in rs:
                    if (isinstance(b.get("bound"), float) and math.isfinite(b["bound"])
                            and a["objective"] < b["bound"] - 1e-6 * max(1, abs(b["bound"]))):
                        print(f"INCONSISTENT: {case} seed {seed}: {a['method']} objective "
                              f"{a['objective']} < {b['method']} bound {b['bound']}")
    print(f"\nresults: {path}\n")
    print("| case | method | runs | solved | median wall s | median peak RSS GiB | "
          "median objective | median gap | loops (enumerated / generated) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        for method in args.methods:
            rs = [r for r in records if r["case"] == case and r["method"] == method]
            ok = [r for r in rs if r.get("status") in ("optimal", "feasible", "time_limit")
                  and r.get("objective") is not None
                  and math.isfinite(float(r["objective"]))]
            loops = _med([r.get("n_generated_loops") or r.get("n_enumerated_loops")
                          for r in ok])
            killed = sorted({r["killed"] for r in rs if r.get("killed")})
            errs = sorted({str(r.get("error") or r.get("message"))[:60] for r in rs
                           if r not in ok and not r.get("killed")})
            note = "; ".join(killed + errs)
            print(f"| {case} x {args.days} d | {method} | {len(rs)} | {len(ok)}"
                  f"{' (' + note + ')' if note else ''} | "
                  f"{_med([r['wall_process_seconds'] for r in rs]):.1f} | "
                  f"{_med([r['peak_rss_gib'] for r in rs]):.2f} | "
                  f"{_med([float(r['objective']) for r in ok]):.2f} | "
                  f"{_med([float(r['gap']) for r in ok]):.2e} | {loops:.0f} |")


if __name__ == "__main__":
    main()
