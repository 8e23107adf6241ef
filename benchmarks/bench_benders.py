"""Benchmark the Benders decompositions SLExt and MLColExt (Chasseray et al. §5, Fig. 3a).

Instances: ``recopt.generate.chasseray.generate(actors=n, days=d, seed=s)`` (hourly
steps, clustered placement); every solve through :func:`recopt.solve.solve` with HiGHS,
``time_limit=--time-limit`` and ``mip_gap=--mip-gap`` (HiGHS's relative MIP gap for
SLCpct, the Benders stopping gap ``(UB - LB) / max(1, |UB|)`` for SLExt / MLColExt).
Three parts, selected with ``--part`` (default ``all``):

1. ``horizon`` (the paper's Fig. 3a): 10 actors x ``--days`` (default 30 60 90 180 360)
   x ``--seeds``; SLCpct and SLExt on the same instance in the same process,
   ``--repeats`` times, the order alternating from one (seed, repeat) run to the next;
   per run: status, objective, bound, gap, build / compile / solve seconds, wall time
   (measured around ``solve``, and the Result's ``wall_seconds``), SLExt's Benders
   attrs and per-iteration history. ``same_optimum``: when both are optimal,
   ``|obj_SLCpct - obj_SLExt| <= (1e-4 + gap_SLCpct + gap_SLExt) * max(1, |obj|)``
   (both gaps relative to ``max(1, |obj|)``); in every case each model's bound must not
   exceed the other's objective by more than that (``bounds_consistent``). Table: median
   wall per model, the ratio SLCpct / SLExt end to end and "solve only" (SLCpct
   compile + solve against SLExt's master + sub-problem + cut seconds), one row per
   horizon; the issue's target, SLExt >= 5x faster than SLCpct (wall) at 90 days.
   A time-limited run is not repeated; its ratio is then only a bound (marked ``>=``
   or ``<=``).
2. ``pareto``: on ``--pareto-sizes`` (default ``10x30 10x90 20x30``, actors x days),
   SLExt and MLColExt (``enumeration=maximal``) with plain multi-cuts, with Pareto
   cuts (``pareto=True``) and with one aggregated cut per iteration (``cuts=aggregated``,
   no Pareto); iterations, cuts, Pareto cuts, master / sub-problem / cut seconds, wall;
   table: do Pareto cuts save iterations (ratio plain / Pareto of iterations and of wall).
3. ``headline``: MLColExt on ``--headline`` (default ``100x180``) with
   ``--headline-enumeration`` (default ``maximal``), ``--headline-time-limit`` (default
   1800 s) and ``--mip-gap`` (default 1e-4): everything, the per-iteration history (LB,
   UB, gap, cuts, master (its compile part) / sub-problem / cut seconds) and where the
   time goes (build incl. Benders set-up, master incl. its compiles, sub-problems, cuts,
   extract, rest; seconds and % of wall);
   whether a gap <= ``--mip-gap`` was proven within 30 min.

A warm-up solve of each model on a tiny instance (imports, HiGHS's first load) comes
first and is not recorded. Records go one JSON line each to
``benchmarks/results/benders_<UTC stamp>.jsonl``; the first line describes the machine
(``recopt.bench.record.machine_info``: load averages, versions, the recopt commit), and
every run records the 1-min load average and the CPU seconds other processes used
during it (``cpu_seconds_foreign``, as in ``bench_lp.py``: the machine may be shared).
Markdown tables are printed at the end. The exit code is 1 when a correctness check
fails (a run raising, two models or variants disagreeing on the optimum, inconsistent
bounds), else 0; nothing is gated on time.

    python benchmarks/bench_benders.py                 # all three parts (hours on 2 cores)
    python benchmarks/bench_benders.py --quick         # smoke (~15 s): 10x2 10x4, 6x2, 12x3
    python benchmarks/bench_benders.py --part horizon --days 30 60 90 --repeats 3
    python benchmarks/bench_benders.py --part pareto --pareto-sizes 10x30 20x30
    python benchmarks/bench_benders.py --part headline --headline 100x180 \\
        --headline-enumeration all

The full run takes hours (SLCpct alone may use the 1800 s limit at 180 and 360 days):
run it in the background on an otherwise idle machine (``nohup ... > out.md 2> log &``);
progress goes to stderr, the tables to stdout. ``--quick`` (horizons 2 and 4 days,
pareto 6x2, headline 12x3, 1 repeat, 120 s per horizon / pareto solve) only checks that
the script works; explicit options override its sizes.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from recopt.bench.record import CpuAccount, Recorder, describe, log, machine_info, results_path
from recopt.generate.chasseray import generate
from recopt.solve import solve

HERE = Path(__file__).resolve().parent

PARTS = ("horizon", "pareto", "headline")
HORIZON_ACTORS = 10
HORIZON_MODELS = ("SLCpct", "SLExt")
TARGET_DAYS = 90
TARGET_SPEEDUP = 5.0
HEADLINE_SECONDS = 1800.0
#: relative tolerance of the same-optimum checks, on top of the runs' own gaps
SAME_TOL = 1e-4
#: (label, options) of the pareto part, in run order
VARIANTS = (("plain", {"cuts": "multi", "pareto": False}),
            ("pareto", {"cuts": "multi", "pareto": True}),
            ("aggregated", {"cuts": "aggregated", "pareto": False}))
PARETO_MODELS = (("SLExt", {}), ("MLColExt", {"enumeration": "maximal"}))
ATTR_KEYS = ("status", "message", "has_solution", "objective", "bound", "gap",
             "build_seconds", "compile_seconds", "solve_seconds", "extract_seconds",
             "wall_seconds", "n_variables", "n_constraints", "n_integer", "blocks",
             "n_loops", "n_enumerated_loops", "n_graph_edges", "solver_version",
             "benders_iterations", "benders_cuts", "benders_pareto_cuts",
             "benders_master_seconds", "benders_sub_seconds", "benders_cut_seconds",
             "benders_setup_seconds")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def size(text: str) -> tuple[int, int]:
    """``"10x30"`` -> ``(10, 30)`` (actors, days)."""
    try:
        a, d = text.lower().split("x")
        out = int(a), int(d)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected ACTORSxDAYS such as 10x30, got {text!r}") from None
    if min(out) < 1:
        raise argparse.ArgumentTypeError(f"actors and days must be >= 1, got {text!r}")
    return out


def num(x) -> float:
    """A float for an attr that may be missing, empty ('' for None in netCDF) or NaN."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def med(values) -> float:
    vals = [num(v) for v in values]
    vals = [v for v in vals if math.isfinite(v)]
    return statistics.median(vals) if vals else math.nan


def solve_only(r: dict) -> float:
    """SLCpct: compile + solve; Benders: master + sub-problems + cuts (seconds)."""
    if r.get("benders_iterations") is not None:
        return (num(r.get("benders_master_seconds")) + num(r.get("benders_sub_seconds"))
                + num(r.get("benders_cut_seconds")))
    return num(r.get("compile_seconds")) + num(r.get("solve_seconds"))


def make_instance(rec: Recorder, actors: int, days: int, seed: int, part: str):
    t0 = time.perf_counter()
    inst = generate(actors=actors, days=days, seed=seed)
    seconds = time.perf_counter() - t0
    rec.add({"kind": "instance", "part": part, "actors": actors, "days": days, "seed": seed,
             "n_steps": int(inst.sizes["time"]), "n_scenarios": int(inst.sizes["scenario"]),
             "max_loop_power_kw": num(inst.attrs.get("max_loop_power_kw")),
             "max_distance_km": num(inst.attrs.get("max_distance_km")),
             "generate_seconds": seconds})
    log(f"{part}: instance {actors} actors x {days} days, seed {seed} "
        f"({inst.sizes['time']} steps, generated in {seconds:.1f} s)")
    return inst


def history(result) -> dict:
    """The Benders per-iteration data variables as lists (iteration 0: the initial point)."""
    if "benders_iteration" not in result.coords:
        return {}
    out = {"iteration": [int(i) for i in result["benders_iteration"].values]}
    for name in result.data_vars:
        if name.startswith("benders_") and result[name].dims == ("benders_iteration",):
            out[name.removeprefix("benders_")] = [float(v) for v in result[name].values]
    return out


def run(rec: Recorder, instance, model: str, options: dict, args, *, part: str,
        time_limit: float, keep_history: bool = True, **extra) -> dict:
    """One timed ``solve`` call, recorded; an exception is recorded as an error run."""
    gc.collect()
    kw = {"time_limit": time_limit, "mip_gap": args.mip_gap}
    if args.threads is not None:
        kw["threads"] = args.threads
    error = None
    result = None
    with CpuAccount() as cpu:
        t0 = time.perf_counter()
        try:
            result = solve(instance, model, **kw, **options)
        except Exception as exc:  # noqa: BLE001 - a failed run is a finding, not a stop
            error = f"{type(exc).__name__}: {exc}"
            tb = traceback.format_exc()
        wall = time.perf_counter() - t0
    record = {"kind": "run", "part": part, "model": model, "options": options,
              "time_limit": time_limit, "mip_gap": args.mip_gap,
              "n_steps": int(instance.sizes["time"]),
              "n_members": int(instance.sizes["member"]), **extra,
              "wall_measured_seconds": wall, **cpu.as_dict()}
    if error is not None:
        record |= {"status": "exception", "error": error, "traceback": tb,
                   "objective": math.nan, "bound": math.nan, "gap": math.nan}
        log(f"  {model} {options}: EXCEPTION after {wall:.1f} s: {error}")
        return rec.add(record)
    attrs = {k: result.attrs[k] for k in ATTR_KEYS if k in result.attrs}
    for k in ("objective", "bound", "gap"):
        attrs[k] = num(attrs.get(k))
    record |= attrs
    record["solve_only_seconds"] = solve_only(record)
    hist = history(result)
    if "master_compile_seconds" in hist:
        record["benders_master_compile_seconds"] = float(np.nansum(
            hist["master_compile_seconds"]))
    if keep_history:
        record["history"] = hist
    del result
    it = (f", {record['benders_iterations']} it, {record['benders_cuts']} cuts "
          f"(master {record['benders_master_seconds']:.2f} s, sub "
          f"{record['benders_sub_seconds']:.2f} s)"
          if record.get("benders_iterations") is not None else "")
    label = f"{model} {options}" if options else model
    log(f"  {label}: {record['status']} obj {record['objective']:.6f} "
        f"bound {record['bound']:.6f} gap {record['gap']:.1e}; wall {wall:.2f} s (build "
        f"{num(record.get('build_seconds')):.2f}, solve-only {record['solve_only_seconds']:.2f})"
        f"{it}; other CPU {cpu.foreign:.1f} s")
    return rec.add(record)


def agreement(a: dict, b: dict) -> dict:
    """Same optimum (both optimal) and consistent bounds, within the runs' own gaps.

    ``tolerance = 1e-4 * max(1, |obj|) + gap_a * max(1, |obj_a|) + gap_b * max(1, |obj_b|)``
    (the gaps are relative to ``max(1, |objective|)``); a run without a solution counts
    with gap 0. ``bounds_consistent``: neither run's bound exceeds the other's objective
    by more than the tolerance (checked whenever both numbers exist).
    """
    objs = [r["objective"] for r in (a, b) if math.isfinite(r["objective"])]
    if not objs:
        return {"same_optimum": None, "bounds_consistent": None, "objective_diff": math.nan,
                "tolerance": math.nan}

    def slack(r):
        o, g = r["objective"], r["gap"]
        return g * max(1.0, abs(o)) if math.isfinite(o) and math.isfinite(g) else 0.0

    tol = SAME_TOL * max(1.0, abs(objs[0])) + slack(a) + slack(b)
    diff = abs(a["objective"] - b["objective"]) if len(objs) == 2 else math.nan
    same = diff <= tol if a["status"] == b["status"] == "optimal" else None
    consistent = True
    for x, y in ((a, b), (b, a)):  # a bound never exceeds the other model's objective
        if math.isfinite(x["bound"]) and math.isfinite(y["objective"]) \
                and x["bound"] > y["objective"] + tol:
            consistent = False
    return {"same_optimum": same, "bounds_consistent": consistent, "objective_diff": diff,
            "tolerance": tol}


def ratio(num_runs: list[dict], den_runs: list[dict], key) -> tuple[float, str]:
    """Median ratio num / den and its qualifier: '>=' when the numerator hit a limit,
    '<=' when the denominator did ('?' both), '' when both were optimal."""
    n = med([key(r) for r in num_runs])
    d = med([key(r) for r in den_runs])
    value = n / d if d > 0 else math.nan
    capped_n = any(r["status"] != "optimal" for r in num_runs)
    capped_d = any(r["status"] != "optimal" for r in den_runs)
    qual = "?" if capped_n and capped_d else ">=" if capped_n else "<=" if capped_d else ""
    return value, qual


def statuses(runs: list[dict]) -> str:
    return "/".join(sorted({r["status"] for r in runs})) or "–"


def fmt(x: float, digits: int = 2) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def worst_gap(runs: list[dict]) -> float:
    return max((r["gap"] for r in runs if math.isfinite(r["gap"])), default=math.nan)


def sci(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.2e}"


def wall(r: dict) -> float:
    return r["wall_measured_seconds"]


# --------------------------------------------------------------------------------------
# the three parts
# --------------------------------------------------------------------------------------
def bench_horizon(rec: Recorder, args) -> tuple[list[str], bool]:
    ok = True
    rows = []
    for days in args.days:
        runs: dict[str, list[dict]] = {m: [] for m in HORIZON_MODELS}
        checks = []
        k = 0  # run counter across (seed, repeat): alternates the order
        for seed in args.seeds:
            inst = make_instance(rec, HORIZON_ACTORS, days, seed, "horizon")
            done: set[str] = set()  # models that hit a limit: not repeated
            for rep in range(args.repeats):
                order = HORIZON_MODELS if k % 2 == 0 else HORIZON_MODELS[::-1]
                k += 1
                pair = {}
                for model in order:
                    if model in done:
                        continue
                    r = run(rec, inst, model, {}, args, part="horizon",
                            time_limit=args.time_limit, actors=HORIZON_ACTORS, days=days,
                            seed=seed, repeat=rep, order=list(order))
                    ok &= r["status"] != "exception"
                    pair[model] = r
                    if r["status"] != "exception":
                        runs[model].append(r)
                    if r["status"] != "optimal":
                        done.add(model)
                if len(pair) == 2 and "exception" not in {r["status"] for r in pair.values()}:
                    c = agreement(pair["SLCpct"], pair["SLExt"])
                    ok &= c["same_optimum"] is not False and c["bounds_consistent"] is not False
                    checks.append(rec.add({"kind": "check", "part": "horizon",
                                           "check": "SLCpct_vs_SLExt", "days": days,
                                           "seed": seed, "repeat": rep, **c}))
                    log(f"  same optimum: {c['same_optimum']} (|diff| "
                        f"{c['objective_diff']:.2e}, tol {c['tolerance']:.2e}), bounds "
                        f"consistent: {c['bounds_consistent']}")
        cpt, ext = runs["SLCpct"], runs["SLExt"]
        for model, rs in runs.items():
            if rs:
                rec.timing(f"{model} {HORIZON_ACTORS}x{days} wall", [wall(r) for r in rs],
                           part="horizon", model=model, days=days,
                           statuses=sorted({r["status"] for r in rs}))
        if not (cpt and ext):
            rows.append({"days": days, "missing": True})
            continue
        w, wq = ratio(cpt, ext, wall)
        s, sq = ratio(cpt, ext, solve_only)
        sames = [c["same_optimum"] for c in checks]
        row = {
            "days": days, "steps": cpt[0]["n_steps"], "runs": f"{len(cpt)}/{len(ext)}",
            "cpt_status": statuses(cpt), "ext_status": statuses(ext),
            "cpt_build": med(r.get("build_seconds") for r in cpt),
            "cpt_solve": med(solve_only(r) for r in cpt), "cpt_wall": med(map(wall, cpt)),
            "ext_build": med(r.get("build_seconds") for r in ext),
            "ext_solve": med(solve_only(r) for r in ext), "ext_wall": med(map(wall, ext)),
            "ext_iterations": med(r.get("benders_iterations") for r in ext),
            "ext_cuts": med(r.get("benders_cuts") for r in ext),
            "wall_ratio": w, "wall_ratio_qualifier": wq,
            "solve_ratio": s, "solve_ratio_qualifier": sq,
            "same_optimum": (None if not sames or all(x is None for x in sames)
                             else all(x is not False for x in sames)),
            "bounds_consistent": all(c["bounds_consistent"] is not False for c in checks),
            "cpt_gap": worst_gap(cpt), "ext_gap": worst_gap(ext),
            "other_cpu_max": max(r["cpu_seconds_foreign"] for r in cpt + ext),
            "load": os.getloadavg()[0],
        }
        rows.append(rec.add({"kind": "summary", "part": "horizon", **row}))
    lines = [f"### horizon: SLCpct vs SLExt, {HORIZON_ACTORS} actors (medians over seeds "
             f"{' '.join(map(str, args.seeds))} x {args.repeats} repeats)", "",
             "| days | steps | runs | SLCpct status | SLCpct build / solve / wall s "
             "| SLExt status | SLExt build / solve / wall s | SLExt it / cuts "
             "| wall ratio | solve ratio | same opt | bounds ok | other CPU s max | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("missing"):
            lines.append(f"| {r['days']} | – | (a model raised: see the records) |"
                         + " – |" * 11)
            continue
        lines.append(
            f"| {r['days']} | {r['steps']} | {r['runs']} | {r['cpt_status']} "
            f"(gap {sci(r['cpt_gap'])}) | {fmt(r['cpt_build'])} / {fmt(r['cpt_solve'])} / "
            f"{fmt(r['cpt_wall'])} | {r['ext_status']} (gap {sci(r['ext_gap'])}) | "
            f"{fmt(r['ext_build'])} / {fmt(r['ext_solve'])} / {fmt(r['ext_wall'])} | "
            f"{fmt(r['ext_iterations'], 0)} / {fmt(r['ext_cuts'], 0)} | "
            f"{r['wall_ratio_qualifier']}{fmt(r['wall_ratio'], 1)}x | "
            f"{r['solve_ratio_qualifier']}{fmt(r['solve_ratio'], 1)}x | {r['same_optimum']} | "
            f"{r['bounds_consistent']} | {fmt(r['other_cpu_max'], 1)} | {r['load']:.2f} |")
    lines += ["", "solve: SLCpct compile + solve, SLExt Benders master + sub-problems + cuts; "
              "build: SLExt's includes the Benders set-up (second stage compiled once); "
              "wall: measured around solve(). Ratios SLCpct / SLExt of the medians "
              "('>=': SLCpct hit a limit, '<=': SLExt did). Other CPU s: the most CPU "
              "seconds other processes used during one run (the machine may be shared).", ""]
    target = next((r for r in rows if r["days"] == TARGET_DAYS and not r.get("missing")), None)
    if target is None:
        verdict = f"not measured (no {TARGET_DAYS}-day horizon in --days)"
    else:
        met = target["wall_ratio"] >= TARGET_SPEEDUP and target["wall_ratio_qualifier"] != "<="
        verdict = (f"{'met' if met else 'NOT met'}: wall ratio "
                   f"{target['wall_ratio_qualifier']}{fmt(target['wall_ratio'], 1)}x (solve "
                   f"only {target['solve_ratio_qualifier']}{fmt(target['solve_ratio'], 1)}x)")
        if target["other_cpu_max"] > 0.2 * min(target["cpt_wall"], target["ext_wall"]):
            verdict += "; runs contended by other processes, timings unreliable"
    rec.add({"kind": "verdict", "part": "horizon", "target": f"SLExt >= {TARGET_SPEEDUP:g}x "
             f"faster than SLCpct at {TARGET_DAYS} days (wall)", "verdict": verdict})
    lines += [f"Target SLExt >= {TARGET_SPEEDUP:g}x faster than SLCpct at {TARGET_DAYS} "
              f"days (wall): {verdict}.", ""]
    return lines, ok


def bench_pareto(rec: Recorder, args) -> tuple[list[str], bool]:
    ok = True
    rows = []
    seed = args.seeds[0]
    for actors, days in args.pareto_sizes:
        inst = make_instance(rec, actors, days, seed, "pareto")
        for model, base in PARETO_MODELS:
            runs: dict[str, list[dict]] = {label: [] for label, _ in VARIANTS}
            for rep in range(args.repeats):
                order = VARIANTS if rep % 2 == 0 else VARIANTS[::-1]
                for label, opts in order:
                    if runs[label] and runs[label][-1]["status"] != "optimal":
                        continue  # a run that hit a limit (or raised) is not repeated
                    r = run(rec, inst, model, base | opts, args, part="pareto",
                            time_limit=args.time_limit, actors=actors, days=days, seed=seed,
                            repeat=rep, variant=label)
                    ok &= r["status"] != "exception"
                    runs[label].append(r)
            firsts = {label: rs[0] for label, rs in runs.items()
                      if rs and rs[0]["status"] != "exception"}
            checks = {}
            if "plain" in firsts:
                for label in ("pareto", "aggregated"):
                    if label in firsts:
                        c = agreement(firsts["plain"], firsts[label])
                        ok &= (c["same_optimum"] is not False
                               and c["bounds_consistent"] is not False)
                        checks[label] = rec.add({"kind": "check", "part": "pareto",
                                                 "check": f"plain_vs_{label}", "model": model,
                                                 "actors": actors, "days": days, **c})
            good = {label: [r for r in rs if r["status"] != "exception"]
                    for label, rs in runs.items()}
            iters = {label: med(r.get("benders_iterations") for r in rs)
                     for label, rs in good.items()}
            walls = {label: med(map(wall, rs)) for label, rs in good.items()}
            row = {
                "actors": actors, "days": days, "model": model,
                "loops": next((r.get("n_enumerated_loops") for r in firsts.values()), None),
                "status": {label: statuses(rs) for label, rs in runs.items()},
                "iterations": iters, "wall": walls,
                "cuts": {label: med(r.get("benders_cuts") for r in rs)
                         for label, rs in good.items()},
                "pareto_cuts": med(r.get("benders_pareto_cuts") for r in good["pareto"]),
                "master": {label: med(r.get("benders_master_seconds") for r in rs)
                           for label, rs in good.items()},
                "sub": {label: med(r.get("benders_sub_seconds") for r in rs)
                        for label, rs in good.items()},
                "iteration_ratio": iters["plain"] / iters["pareto"]
                if iters["pareto"] > 0 else math.nan,
                "wall_ratio": walls["plain"] / walls["pareto"]
                if walls["pareto"] > 0 else math.nan,
                "same_optimum": {label: c["same_optimum"] for label, c in checks.items()},
                "load": os.getloadavg()[0],
            }
            rows.append(rec.add({"kind": "summary", "part": "pareto", **row}))
    lines = ["### pareto: plain multi-cuts vs Pareto cuts vs one aggregated cut "
             f"(seed {seed}, medians of {args.repeats} repeats)", "",
             "| actors x days | model | loops | status plain / Pareto / aggr "
             "| iterations plain / Pareto / aggr | cuts plain / Pareto / aggr | Pareto cuts "
             "| master s plain / Pareto | sub s plain / Pareto | wall s plain / Pareto / aggr "
             "| iteration ratio plain / Pareto | wall ratio plain / Pareto "
             "| Pareto saves iterations | same opt Pareto / aggr |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    labels = [label for label, _ in VARIANTS]
    for r in rows:
        def three(d, digits=0):
            return " / ".join(fmt(d[x], digits) for x in labels)

        saves = ("–" if not math.isfinite(r["iteration_ratio"])
                 else "yes" if r["iteration_ratio"] > 1 else "no")
        lines.append(
            f"| {r['actors']}x{r['days']} | {r['model']} | {r['loops'] or '–'} | "
            f"{' / '.join(r['status'][x] for x in labels)} | {three(r['iterations'])} | "
            f"{three(r['cuts'])} | {fmt(r['pareto_cuts'], 0)} | "
            f"{fmt(r['master']['plain'])} / {fmt(r['master']['pareto'])} | "
            f"{fmt(r['sub']['plain'])} / {fmt(r['sub']['pareto'])} | {three(r['wall'], 2)} | "
            f"{fmt(r['iteration_ratio'])} | {fmt(r['wall_ratio'])} | {saves} | "
            f"{r['same_optimum'].get('pareto')} / {r['same_optimum'].get('aggregated')} |")
    lines += ["", "MLColExt with enumeration=maximal; ratios > 1: the Pareto variant needs "
              "fewer iterations / less time. Pareto cuts: benders_pareto_cuts, the cuts "
              "added that came from the Magnanti-Wong duals (the others fell back to the "
              "plain cut where the Pareto cut was not tight at the master's point). Each "
              "Pareto iteration solves the sub-problem twice.", ""]
    return lines, ok


def bench_headline(rec: Recorder, args) -> tuple[list[str], bool]:
    actors, days = args.headline
    inst = make_instance(rec, actors, days, args.seeds[0], "headline")
    opts = {"enumeration": args.headline_enumeration}
    r = run(rec, inst, "MLColExt", opts, args, part="headline",
            time_limit=args.headline_time_limit, actors=actors, days=days,
            seed=args.seeds[0])
    ok = r["status"] != "exception"
    title = (f"### headline: MLColExt (enumeration={args.headline_enumeration}) on "
             f"{actors} actors x {days} days, time limit {args.headline_time_limit:g} s, "
             f"gap {args.mip_gap:g}")
    if not ok:
        return [title, "", f"raised: {r['error']}", ""], ok
    w = wall(r)
    h = r.get("history", {})
    parts = {
        "build (loop data, enumeration, master + sub-problem models; incl. Benders set-up)":
            num(r.get("build_seconds")),
        "  of which Benders set-up (second stage compiled once, θ and cuts declared)":
            num(r.get("benders_setup_seconds")),
        "master MILPs": num(r.get("benders_master_seconds")),
        "  of which compiling the master (Pyomo to the solver, every iteration)":
            sum(h.get("master_compile_seconds", [math.nan])),
        "sub-problem LPs": num(r.get("benders_sub_seconds")),
        "cuts (built and added to the master)": num(r.get("benders_cut_seconds")),
        "extract (best point's second stage, Result)": num(r.get("extract_seconds")),
    }
    top = [v for k, v in parts.items() if not k.startswith("  ")]
    parts["rest (runner, attrs; wall minus the above)"] = w - sum(
        v for v in top if math.isfinite(v))
    rec.add({"kind": "time_split", "part": "headline", "wall_seconds": w,
             "seconds": parts, "percent": {k: 100 * v / w for k, v in parts.items()}})
    proven = (r["status"] == "optimal" and math.isfinite(r["gap"])
              and r["gap"] <= args.mip_gap + 1e-12 and w <= HEADLINE_SECONDS)
    verdict = (f"{'yes' if proven else 'NO'}: status {r['status']}, gap {sci(r['gap'])}, "
               f"wall {w:.1f} s")
    rec.add({"kind": "verdict", "part": "headline",
             "target": f"proven gap <= {args.mip_gap:g} within {HEADLINE_SECONDS:g} s",
             "verdict": verdict, "met": proven})
    lines = [title, "",
             "| status | objective EUR | bound EUR | gap | iterations | cuts | loops "
             "enumerated / chosen | n_variables (n_integer) attrs | wall s | other CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|",
             f"| {r['status']} | {r['objective']:.4f} | {r['bound']:.4f} | {sci(r['gap'])} "
             f"| {r.get('benders_iterations')} | {r.get('benders_cuts')} | "
             f"{r.get('n_enumerated_loops', '–')} / {r.get('n_loops', '–')} | "
             f"{r.get('n_variables', '–')} ({r.get('n_integer', '–')}) | {w:.2f} | "
             f"{r['cpu_seconds_foreign']:.1f} |", "",
             "| where the time goes | seconds | % of wall |", "|---|---|---|"]
    lines += [f"| {k} | {fmt(v)} | {fmt(100 * v / w, 1)} |" for k, v in parts.items()]
    if h.get("iteration"):
        compile_s = h.get("master_compile_seconds", [math.nan] * len(h["iteration"]))
        lines += ["", "| iteration | LB | UB | gap | cuts added | master s (compile) | sub s "
                  "| cuts s |", "|---|---|---|---|---|---|---|---|"]
        its = list(range(len(h["iteration"])))
        if len(its) > 12:  # first 5, last 5
            its = its[:5] + [None] + its[-5:]
        for i in its:
            if i is None:
                lines.append("| ... | | | | | | | |")
                continue
            lines.append(
                f"| {h['iteration'][i]} | {fmt(h['lower_bound'][i], 4)} | "
                f"{fmt(h['upper_bound'][i], 4)} | {sci(h['gap'][i])} | "
                f"{fmt(h['cuts_added'][i], 0)} | {fmt(h['master_seconds'][i])} "
                f"({fmt(compile_s[i])}) | {fmt(h['sub_seconds'][i])} | "
                f"{fmt(h['cut_seconds'][i])} |")
    lines += ["", f"Proven gap <= {args.mip_gap:g} within {HEADLINE_SECONDS / 60:g} min: "
              f"{verdict}.", ""]
    return lines, ok


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Benchmark the Benders decompositions SLExt / MLColExt (Chasseray et "
                    "al.) against SLCpct; JSON lines to benchmarks/results/.")
    p.add_argument("--part", choices=(*PARTS, "all"), default="all",
                   help="which part(s) to run (default all)")
    p.add_argument("--days", type=int, nargs="+", default=None,
                   help="horizon part: days (default 30 60 90 180 360; --quick: 2 4)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="instance seeds (default 0; pareto and headline use the first)")
    p.add_argument("--repeats", type=int, default=None,
                   help="runs per model and instance (default 1)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="per solve, horizon and pareto parts, s (default 1800; --quick 120)")
    p.add_argument("--mip-gap", type=float, default=1e-4,
                   help="relative gap of every solve, HiGHS MIP gap / Benders gap "
                        "(default 1e-4)")
    p.add_argument("--threads", type=int, default=None,
                   help="HiGHS threads of every solve, warm-up included (default HiGHS's)")
    p.add_argument("--pareto-sizes", type=size, nargs="+", default=None,
                   help="ACTORSxDAYS (default 10x30 10x90 20x30; --quick: 6x2)")
    p.add_argument("--headline", type=size, default=None,
                   help="ACTORSxDAYS of the headline MLColExt (default 100x180; --quick 12x3)")
    p.add_argument("--headline-enumeration", choices=("all", "maximal"), default="maximal",
                   help="MLColExt's loop enumeration in the headline (default maximal)")
    p.add_argument("--headline-time-limit", type=float, default=HEADLINE_SECONDS,
                   help="s (default 1800)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: days 2 4, pareto 6x2, headline 12x3, 1 repeat")
    p.add_argument("--out", type=Path, default=HERE / "results",
                   help="results folder (default benchmarks/results)")
    args = p.parse_args(argv)
    q = args.quick
    args.days = args.days or ([2, 4] if q else [30, 60, 90, 180, 360])
    args.pareto_sizes = args.pareto_sizes or ([(6, 2)] if q else [(10, 30), (10, 90),
                                                                   (20, 30)])
    args.headline = args.headline or ((12, 3) if q else (100, 180))
    args.repeats = args.repeats or 1
    args.time_limit = args.time_limit or (120.0 if q else 1800.0)
    args.parts = PARTS if args.part == "all" else (args.part,)
    return args


def warm_up(threads: int | None) -> None:
    """Imports and HiGHS's first load, not measured. With the runs' ``threads``: HiGHS
    sizes its global thread scheduler at the first solve of the process, and a later
    solve asking another thread count fails (status error, "Not Set")."""
    tiny = generate(actors=4, days=1, seed=0)
    kw = {} if threads is None else {"threads": threads}
    for model, opts in (("SLCpct", {}), ("SLExt", {}), ("MLColExt", {"enumeration": "maximal"})):
        solve(tiny, model, time_limit=60, **kw, **opts)


def main(argv=None) -> int:
    args = parse_args(argv)
    rec = Recorder(results_path(args.out, "benders"))
    machine = {"kind": "machine", **machine_info()} | {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "numpy_threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS",
                                                              "OPENBLAS_NUM_THREADS")},
    }
    rec.add(machine)
    log(f"writing {rec.path}; parts {', '.join(args.parts)}; load {os.getloadavg()}")
    t0 = time.perf_counter()
    warm_up(args.threads)
    log(f"warm-up {time.perf_counter() - t0:.1f} s")
    ok = True
    out: list[str] = [describe(machine), ""]
    benches = {"horizon": bench_horizon, "pareto": bench_pareto, "headline": bench_headline}
    for part in args.parts:
        log(f"part {part}")
        lines, part_ok = benches[part](rec, args)
        ok &= part_ok
        out += lines
    text = "\n".join(out)
    rec.add({"kind": "markdown", "text": text, "ok": bool(ok),
             "total_seconds": time.perf_counter() - t0,
             "loadavg_end": os.getloadavg()})
    rec.close()
    print(text)
    print(f"\nrecords: {rec.path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
