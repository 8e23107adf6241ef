"""Where MLColExt's set-up holds its memory per loop (issue 19: 60,021 loops in <= 8 GiB).

For a generated instance (``--actors`` x ``--days``, seed 0, the generator's default
clustered placement) and each loop count K of ``--loops`` (the first K loops of
``enumeration=all``), one fresh process builds MLColExt's Benders problem stage by
stage and records the resident memory (``psutil`` RSS, after ``gc.collect()``) after
each stage:

1. ``loops``: the instance loaded, :func:`loop_data` and the K loops;
2. ``pyomo``: :func:`recopt.decomp.loop_benders.mlcolext_problem` (master + the
   second stage as Pyomo models; ``--compile coupled`` or ``plain``, see ``SecondStage``);
3. ``compiled``: :class:`recopt.decomp.benders.SecondStage` (the standard-form
   compile: the matrices ``A``, ``H``, ``B`` and the row / column lists);
4. ``highs``: the sub-problem passed to HiGHS once (``HighsParametricLP``).

The slope of each stage's RSS over K (least squares) is its memory per loop; the
script prints them in MiB per loop and per loop and day, and the extrapolation to
``--target-loops`` loops over ``--target-days`` days (linear in the days: the rows and
non-zeros of a loop are per step). One JSON line per stage and K goes to
``benchmarks/results/loop_memory_<UTC timestamp>.jsonl``.

    python benchmarks/bench_loop_memory.py --actors 30 --days 14 --loops 200 400 800

``--solve ENUMERATION`` instead runs the whole ``solve(path, "MLColExt",
enumeration=ENUMERATION)`` on the instance, once with the second stage compiled as
MLColExt does (``TwoStage.coupling_rows``) and once with the plain compile (the first
stage unfixed, as before), each in a fresh process, interleaved ``--repeats`` times:
peak RSS (:class:`recopt.bench.record.PeakMemory`), wall, CPU, objective.

    python benchmarks/bench_loop_memory.py --actors 100 --days 180 --solve maximal

``--phases`` (with ``--solve``): one run, MLColExt's own compile, in a fresh process
whose thread samples ``psutil`` RSS every 0.05 s and charges it to the step of
:data:`PHASES` running then (the innermost; ``solve`` is everything outside them):
the peak RSS per step, wall, CPU, objective. ``--instance FILE.nc`` takes that file
instead of generating ``--actors`` x ``--days``.

    python benchmarks/bench_loop_memory.py --actors 100 --days 180 --solve all --phases
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

STAGES = ("loops", "pyomo", "compiled", "highs")


def worker(path: str, n_loops: int, coupled: bool) -> None:
    import psutil

    from recopt.data.instance import load
    from recopt.decomp.benders import SecondStage
    from recopt.decomp.loop_benders import mlcolext_problem
    from recopt.models.loops import loop_data
    from recopt.models.loops.build import loop_set
    from recopt.solvers.highs import HighsParametricLP

    proc = psutil.Process()

    def rss() -> int:
        gc.collect()
        return int(proc.memory_info().rss)

    out = {"start": rss()}
    d = loop_data(load(path))
    loops = loop_set(d, "all")[:n_loops]
    out["loops"] = rss()
    problem = mlcolext_problem(d, loops, coupled_compile=coupled)
    out["pyomo"] = rss()
    stage = SecondStage(problem)
    out["compiled"] = rss()
    lp = HighsParametricLP(stage.A, stage.cost, stage.sense)
    out["highs"] = rss()
    out.update(n_loops=len(loops), steps=int(d.shape[1]), rows=len(stage.rows),
               columns=len(stage.columns), nnz_A=int(stage.A.nnz), nnz_H=int(stage.H.nnz))
    del lp
    print(json.dumps(out))


def solve_worker(path: str, enumeration: str, coupled: bool) -> None:
    import resource
    import time

    from recopt.bench.record import PeakMemory
    from recopt.decomp import loop_benders
    from recopt.solve import solve

    # the run as MLColExt does it (coupled: its default from 1000 loops on) or with the
    # plain compile (the first stage unfixed, as before TwoStage.coupling_rows)
    loop_benders.COUPLED_COMPILE_MIN_LOOPS = 0 if coupled else 10**12
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        r = solve(path, "MLColExt", enumeration=enumeration, workers=1)
    use = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"coupled": coupled, "wall": time.perf_counter() - t0,
                      "cpu": use.ru_utime + use.ru_stime, "peak_rss_mib": mem.peak / 2**20,
                      "objective": float(r.attrs["objective"]), "status": r.attrs["status"],
                      "n_loops": int(r.attrs.get("n_enumerated_loops", -1)),
                      "build_seconds": float(r.attrs.get("build_seconds", float("nan")))}))


#: The steps of an MLColExt solve whose peak RSS ``--phases`` reports (``module:qualname``;
#: nested calls count in the innermost step).
PHASES = (
    "recopt.decomp.loop_benders:mlcolext_problem",
    "recopt.decomp.benders:Benders.__init__",
    "recopt.decomp.benders:SecondStage.solve",
    "recopt.decomp.benders:SecondStage.check",
    "recopt.decomp.benders:SecondStage.cuts",
    "recopt.decomp.benders:Benders.add_cuts",
    "recopt.decomp.benders:Benders.add_dual_cuts",
    "recopt.decomp.benders:SecondStage.cut_coefficients",
    "recopt.decomp.benders:Benders.solve_master",
    "recopt.decomp.loop_benders:loops_of_choice",
    "recopt.decomp.loop_benders:solution_dataset",
    "recopt.decomp.loop_benders:derive",
    "recopt.decomp.loop_benders:history_dataset",
)


def phase_worker(path: str, enumeration: str, interval: float = 0.05) -> None:
    """One MLColExt solve with the peak RSS of each step of :data:`PHASES` (a thread
    samples ``psutil`` RSS every ``interval`` s and charges it to the step running)."""
    import functools
    import importlib
    import resource
    import threading
    import time

    import psutil

    from recopt.solve import solve

    proc = psutil.Process()
    stack = ["start"]
    peak: dict[str, int] = {}
    calls: dict[str, int] = {}

    def sample() -> None:
        rss = int(proc.memory_info().rss)
        key = stack[-1]
        peak[key] = max(peak.get(key, 0), rss)

    def wrap(fn, name):
        @functools.wraps(fn)
        def inner(*a, **k):
            sample()
            stack.append(name)
            calls[name] = calls.get(name, 0) + 1
            try:
                return fn(*a, **k)
            finally:
                sample()
                stack.pop()
        return inner

    for spec in PHASES:
        mod_name, qual = spec.split(":")
        mod = importlib.import_module(mod_name)
        owner, attr = (mod, qual) if "." not in qual else (
            getattr(mod, qual.split(".")[0]), qual.split(".")[1])
        setattr(owner, attr, wrap(getattr(owner, attr), qual))
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            sample()
            stop.wait(interval)

    thread = threading.Thread(target=run, daemon=True)
    t0 = time.perf_counter()
    thread.start()
    stack.append("solve")
    r = solve(path, "MLColExt", enumeration=enumeration, workers=1)
    stack.pop()
    stop.set()
    thread.join()
    use = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": time.perf_counter() - t0, "cpu": use.ru_utime + use.ru_stime,
                      "peak_rss_mib": use.ru_maxrss / 1024,
                      "phase_peak_mib": {k: v / 2**20 for k, v in peak.items()},
                      "calls": calls, "objective": float(r.attrs["objective"]),
                      "status": r.attrs["status"],
                      "n_loops": int(r.attrs.get("n_enumerated_loops", -1)),
                      "build_seconds": float(r.attrs.get("build_seconds", float("nan")))}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--actors", type=int, default=30)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--loops", type=int, nargs="+", default=[200, 400, 800])
    ap.add_argument("--target-loops", type=int, default=60021)
    ap.add_argument("--target-days", type=int, default=180)
    ap.add_argument("--solve", default=None, metavar="ENUMERATION",
                    help="time and measure the whole MLColExt solve, coupled vs plain")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--compile", choices=("coupled", "plain"), default="coupled",
                    help="the second stage compiled with the first stage fixed (coupled, "
                         "MLColExt's from 1000 loops on) or unfixed (plain)")
    ap.add_argument("--phases", action="store_true",
                    help="with --solve: one run (MLColExt's own compile) with the peak RSS "
                         "of each of its steps (PHASES)")
    ap.add_argument("--instance", default=None, metavar="FILE.nc",
                    help="use this instance instead of generating --actors x --days")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--phase-worker", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--solve-worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2] == "coupled")
        return 0
    if args.phase_worker:
        phase_worker(*args.phase_worker)
        return 0
    if args.solve_worker:
        solve_worker(args.solve_worker[0], args.solve_worker[1], args.solve_worker[2] == "1")
        return 0

    from recopt.bench.record import Recorder, machine_info, results_path

    rec = Recorder(results_path(Path(__file__).parent / "results", "loop_memory"))
    rec.add({"kind": "machine", **machine_info(), "actors": args.actors, "days": args.days})
    root = Path(__file__).resolve().parents[1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loops.nc"
        if args.instance:
            path = Path(args.instance).resolve()
        else:
            subprocess.run([sys.executable, "-m", "recopt.generate", "--actors",
                            str(args.actors), "--days", str(args.days), "--seed", "0", "-o",
                            str(path)], check=True, capture_output=True, cwd=root)
        if args.solve and args.phases:
            res = subprocess.run([sys.executable, __file__, "--phase-worker", str(path),
                                  args.solve], stdout=subprocess.PIPE, text=True, check=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            r.update(kind="phases", enumeration=args.solve, actors=args.actors,
                     days=args.days, load=os.getloadavg())
            rec.add(r)
            print(json.dumps(r, indent=1))
            print(f"records: {rec.path}")
            return 0
        if args.solve:
            for rep in range(args.repeats):
                for coupled in ((1, 0) if rep % 2 == 0 else (0, 1)):
                    res = subprocess.run([sys.executable, __file__, "--solve-worker",
                                          str(path), args.solve, str(coupled)],
                                         capture_output=True, text=True, check=True)
                    r = json.loads(res.stdout.strip().splitlines()[-1])
                    r.update(kind="solve", enumeration=args.solve, repeat=rep)
                    rec.add(r)
                    print(json.dumps(r))
            print(f"records: {rec.path}")
            return 0
        for k in args.loops:
            res = subprocess.run([sys.executable, __file__, "--worker", str(path), str(k),
                                  args.compile],
                                 capture_output=True, text=True, check=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            r.update(kind="stages", requested_loops=k, compile=args.compile)
            rec.add(r)
            rows.append(r)
            print(f"K={r['n_loops']}: " + ", ".join(
                f"{s} {r[s] / 2**20:.0f} MiB" for s in ("start", *STAGES))
                + f"; rows {r['rows']}, nnz A {r['nnz_A']}, nnz H {r['nnz_H']}",
                file=sys.stderr)
    K = np.array([r["n_loops"] for r in rows], float)
    print(f"| stage | MiB per loop ({args.actors} actors x {args.days} days) | MiB per loop "
          f"and day | {args.target_loops} loops x {args.target_days} days, GiB (linear in "
          "days, these loops' sizes) |\n|---|---|---|---|")
    prev = None
    total = {}
    for s in STAGES:
        y = np.array([r[s] for r in rows], float)
        if prev is not None:
            y = y - prev
        slope = float(np.polyfit(K, y, 1)[0]) / 2**20 if len(K) > 1 else float("nan")
        total[s] = slope
        per_day = slope / args.days
        print(f"| {s} | {slope:.4f} | {per_day:.5f} | "
              f"{per_day * args.target_days * args.target_loops / 1024:.1f} |")
        prev = np.array([r[s] for r in rows], float)
    summary = {"kind": "summary", "mib_per_loop": total,
               "mib_per_loop_day": {s: v / args.days for s, v in total.items()},
               "nnz_H_per_loop": float(np.polyfit(K, [r["nnz_H"] for r in rows], 1)[0])
               if len(K) > 1 else None}
    rec.add(summary)
    print(f"nnz of H per loop: {summary['nnz_H_per_loop']}")
    print(f"records: {rec.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
