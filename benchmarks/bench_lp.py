"""Benchmark de Villena's LP1 and LP3 through recopt's runner, against a naive Pyomo model.

Measures, in one process run (see ``benchmarks/README.md``):

1. LP1 and LP3 (``tolerance=0.1, initial_keys="proportional"``) at T x U (default
   2880 x 100, 15 min, de Villena Table 6's largest case) through
   :func:`recopt.solve.solve`: end-to-end wall time of the call (build + solve +
   Result) and the build / compile / solve / extract split of the Result's attrs,
   ``--repeats`` times; medians, min and max;
2. the naive LP1 (``benchmarks/naive_lp1.py``: dense T x J, rule-based rows, Pyomo's
   ``appsi_highs``) at the same size, build and solve timed apart; ratio naive / ours;
3. LP1's objective against the exact greedy oracle ``lp1_greedy`` (relative
   difference <= 1e-7) and the naive objective against ours;
4. ``--year``: LP1 over one year at 15 min (35040 steps) x U: wall time and peak
   memory of the whole process tree (this process plus its worker processes);
5. ``--presolve-study``: LP1 and LP3 with HiGHS ``presolve="on"`` against ``"off"``, both
   given explicitly (the model's own default may be either: the Result's
   ``solver_options`` attr says which was used); runs interleaved: on, off, on, off, ...;
6. ``--threads-study``: LP1 and LP3 with one HiGHS thread per block (``threads=1``)
   against the default, interleaved likewise.

Every run's record goes as one JSON line to ``benchmarks/results/lp_<UTC timestamp>.jsonl``
(the first line describes the machine); a Markdown summary is printed at the end.
Nothing is gated on time. The exit code is 1 when a correctness check fails (a solve
not optimal, the oracle or the naive objective disagreeing), else 0.

Peak memory: a background thread sums the resident set size (RSS) of this process and
all its descendants every ``--mem-interval`` s (psutil) and keeps the maximum. Forked
workers share pages with the parent copy-on-write, which RSS counts in every process:
the sum is an upper bound of the physical memory used.

Contention: every run records the 1-min load average before it and the CPU seconds
that *other* processes used during it (machine busy time minus this process tree's),
so that a run disturbed by something else on the machine can be told apart.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
from pathlib import Path

from recopt.bench.record import (
    GIB,
    CpuAccount,
    PeakMemory,
    Recorder,
    describe,
    log,
    machine_info,
    results_path,
)
from recopt.generate.synthetic import synthetic_community
from recopt.models.repartition_oracle import lp1_greedy
from recopt.solve import solve

HERE = Path(__file__).resolve().parent
ORACLE_TOL = 1e-7
NAIVE_TOL = 1e-6
LP3_OPTIONS = {"tolerance": 0.1, "initial_keys": "proportional"}
ATTR_KEYS = ("status", "objective", "build_seconds", "compile_seconds", "solve_seconds",
             "extract_seconds", "wall_seconds", "blocks", "workers", "n_variables",
             "n_constraints")
#: A run is flagged as contended when other processes used more than this share of one
#: core during it (its timings then measure the machine's load as much as recopt).
CONTENDED = 0.2
PARTS = ("build_seconds", "compile_seconds", "solve_seconds", "extract_seconds")


# ======================================================================================
# measurement (the helpers are recopt.bench.record's)
# ======================================================================================
def timed_solve(rec: Recorder, instance, model: str, *, section: str, case: str, repeat: int,
                mem_interval: float, solve_kw: dict, options: dict) -> dict:
    """One ``recopt.solve.solve`` call, timed end to end, with peak memory and CPU use."""
    gc.collect()
    with CpuAccount() as cpu, PeakMemory(mem_interval) as mem:
        t0 = time.perf_counter()
        result = solve(instance, model, **solve_kw, **options)
        wall = time.perf_counter() - t0
    attrs = {k: result.attrs.get(k) for k in ATTR_KEYS}
    effective = result.attrs.get("solver_options", {})
    if isinstance(effective, str):
        try:
            effective = json.loads(effective)
        except ValueError:
            pass
    del result
    record = {"kind": "run", "section": section, "case": case, "model": model,
              "n_steps": instance.sizes["time"], "n_members": instance.sizes["member"],
              "repeat": repeat, "options": options,
              "solver_options": solve_kw.get("solver_options") or {},
              "effective_solver_options": effective, "threads": solve_kw.get("threads"),
              "wall_measured_seconds": wall, **attrs,
              **mem.as_dict(), **cpu.as_dict()}
    log(f"{case} #{repeat}: {attrs['status']}, wall {wall:.2f} s (build "
        f"{attrs['build_seconds']:.2f}, compile {attrs['compile_seconds']:.2f}, solve "
        f"{attrs['solve_seconds']:.2f}, extract {attrs['extract_seconds']:.2f}; "
        f"{attrs['blocks']} blocks / {attrs['workers']} workers), peak tree "
        f"{mem.peak / GIB:.2f} GiB, CPU {cpu.own:.1f} s (other processes {cpu.foreign:.1f} s)")
    return rec.add(record)


def summarize(rec: Recorder, runs: list[dict], case: str) -> dict:
    walls = [r["wall_measured_seconds"] for r in runs]
    summary = {
        "kind": "summary", "case": case, "model": runs[0]["model"],
        "n_steps": runs[0]["n_steps"], "n_members": runs[0]["n_members"],
        "repeats": len(runs), "options": runs[0]["options"],
        "solver_options": runs[0]["solver_options"],
        "effective_solver_options": runs[0]["effective_solver_options"],
        "wall_median": statistics.median(walls), "wall_min": min(walls),
        "wall_max": max(walls),
        **{f"{p}_median": statistics.median(r[p] for r in runs) for p in PARTS},
        "objective": runs[0]["objective"],
        "objective_spread": max(r["objective"] for r in runs)
        - min(r["objective"] for r in runs),
        "statuses": sorted({r["status"] for r in runs}),
        "blocks": runs[0]["blocks"], "workers": runs[0]["workers"],
        "n_variables": runs[0]["n_variables"], "n_constraints": runs[0]["n_constraints"],
        "peak_rss_tree_bytes": max(r["peak_rss_tree_bytes"] for r in runs),
        "peak_rss_self_bytes": max(r["peak_rss_self_bytes"] for r in runs),
        "peak_rss_children_bytes": max(r["peak_rss_children_bytes"] for r in runs),
        "cpu_seconds_tree_median": statistics.median(r["cpu_seconds_tree"] for r in runs),
        "cpu_seconds_foreign_max": max(r["cpu_seconds_foreign"] for r in runs),
        "contended_runs": sum(contended(r) for r in runs),
    }
    return rec.add(summary)


def contended(run: dict) -> bool:
    """Other processes took more than CONTENDED of one core during the run."""
    return run["cpu_seconds_foreign"] > CONTENDED * run["wall_measured_seconds"]


def verdict(met: bool, summary: dict) -> str:
    text = "met" if met else "NOT met"
    if summary.get("contended_runs"):
        text += f" ({summary['contended_runs']} of {summary['repeats']} runs contended)"
    return text


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


# ======================================================================================
# the benchmark sections
# ======================================================================================
def bench_runner(rec, instance, args, *, section) -> dict:
    """LP1 and LP3 through the runner, ``args.repeats`` times each."""
    out = {}
    T, U = instance.sizes["time"], instance.sizes["member"]
    for model, options in (("LP1", {}), ("LP3", LP3_OPTIONS)):
        case = f"{model} {T}x{U}"
        runs = [timed_solve(rec, instance, model, section=section, case=case, repeat=i,
                            mem_interval=args.mem_interval, solve_kw=base_kw(args),
                            options=options)
                for i in range(args.repeats)]
        out[model] = summarize(rec, runs, case)
    return out


def base_kw(args) -> dict:
    return {"workers": args.workers, "threads": args.threads}


def bench_study(rec, instance, args, *, name: str, base: tuple[str, dict],
                variant: tuple[str, dict]) -> dict:
    """LP1 and LP3 under two settings ``(label, solve kwargs)``, runs interleaved."""
    T, U = instance.sizes["time"], instance.sizes["member"]
    settings = {"base": base, "variant": variant}
    out = {}
    for model, options in (("LP1", {}), ("LP3", LP3_OPTIONS)):
        cases = {k: f"{model} {T}x{U} [{name}: {label}]" for k, (label, _) in settings.items()}
        runs: dict[str, list] = {"base": [], "variant": []}
        for i in range(args.repeats):
            for which, (_, kw) in settings.items():
                runs[which].append(timed_solve(
                    rec, instance, model, section=name, case=cases[which], repeat=i,
                    mem_interval=args.mem_interval, solve_kw={**base_kw(args), **kw},
                    options=options))
        b = summarize(rec, runs["base"], cases["base"])
        v = summarize(rec, runs["variant"], cases["variant"])
        same = rel_diff(v["objective"], b["objective"])
        comp = rec.add({
            "kind": "comparison", "comparison": name, "base": base[0], "variant": variant[0],
            "model": model,
            "wall_median_variant": v["wall_median"], "wall_median_base": b["wall_median"],
            "wall_ratio_variant_over_base": v["wall_median"] / b["wall_median"],
            "solve_median_variant": v["solve_seconds_median"],
            "solve_median_base": b["solve_seconds_median"],
            "solve_ratio_variant_over_base":
                v["solve_seconds_median"] / max(b["solve_seconds_median"], 1e-12),
            "objective_rel_diff": same,
            "ok": same <= ORACLE_TOL and b["statuses"] == v["statuses"] == ["optimal"]})
        out[model] = (b, v, comp)
    return out


def bench_naive(rec, instance, args) -> dict:
    from naive_lp1 import build_naive_lp1, solve_naive

    T, U = instance.sizes["time"], instance.sizes["member"]
    runs = []
    for i in range(args.naive_repeats):
        gc.collect()
        stages: dict = {}
        with CpuAccount() as cpu, PeakMemory(args.mem_interval) as mem:
            t0 = time.perf_counter()
            model = build_naive_lp1(instance)
            t1 = time.perf_counter()
            log(f"naive LP1 #{i}: built in {t1 - t0:.1f} s; solving with appsi_highs")
            objective = solve_naive(model, stages)
            t2 = time.perf_counter()
            n_var = model.nvariables()
            n_con = model.nconstraints()
            del model
            gc.collect()
        r = rec.add({"kind": "run", "section": "naive", "case": f"naive LP1 {T}x{U}",
                     "model": "naive LP1", "n_steps": T, "n_members": U, "repeat": i,
                     "build_seconds": t1 - t0, "solve_seconds": t2 - t1,
                     "wall_measured_seconds": t2 - t0, "objective": objective,
                     "n_variables": n_var, "n_constraints": n_con,
                     **{f"solve_{k}_seconds": v for k, v in stages.items()},
                     **mem.as_dict(), **cpu.as_dict()})
        log(f"naive LP1 #{i}: build {t1 - t0:.1f} s, solve {t2 - t1:.1f} s "
            f"({', '.join(f'{k} {v:.1f} s' for k, v in stages.items())}), objective "
            f"{objective:.6f}, peak tree {mem.peak / GIB:.2f} GiB, other processes' CPU "
            f"{cpu.foreign:.1f} s")
        runs.append(r)
    walls = [r["wall_measured_seconds"] for r in runs]
    return rec.add({
        "kind": "summary", "case": f"naive LP1 {T}x{U}", "model": "naive LP1",
        "n_steps": T, "n_members": U, "repeats": len(runs),
        "wall_median": statistics.median(walls), "wall_min": min(walls), "wall_max": max(walls),
        "build_seconds_median": statistics.median(r["build_seconds"] for r in runs),
        "solve_seconds_median": statistics.median(r["solve_seconds"] for r in runs),
        **{f"solve_{k}_seconds_median": statistics.median(r[f"solve_{k}_seconds"]
                                                          for r in runs)
           for k in ("set_instance", "optimize", "load_solution")
           if all(f"solve_{k}_seconds" in r for r in runs)},
        "objective": runs[0]["objective"], "n_variables": runs[0]["n_variables"],
        "n_constraints": runs[0]["n_constraints"],
        "peak_rss_tree_bytes": max(r["peak_rss_tree_bytes"] for r in runs),
        "cpu_seconds_foreign_max": max(r["cpu_seconds_foreign"] for r in runs),
    })


def oracle_check(rec, instance, lp1_objective: float, case: str) -> dict:
    t0 = time.perf_counter()
    greedy = lp1_greedy(instance)["objective"]
    seconds = time.perf_counter() - t0
    diff = rel_diff(lp1_objective, greedy)
    log(f"oracle {case}: LP1 {lp1_objective:.9f} vs greedy {greedy:.9f}, rel diff {diff:.2e}")
    return rec.add({"kind": "check", "check": "lp1_vs_greedy", "case": case,
                    "lp1_objective": lp1_objective, "greedy_objective": greedy,
                    "rel_diff": diff, "tolerance": ORACLE_TOL, "ok": diff <= ORACLE_TOL,
                    "greedy_seconds": seconds})


# ======================================================================================
# Markdown
# ======================================================================================
def _s(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def markdown(machine: dict, summaries: dict, checks: list[dict], extra: dict) -> str:
    lines = [
        describe(machine),
        "",
        "| case | runs | wall median [min, max] s | build | compile | solve | extract "
        "| blocks / workers | CPU s (tree) | other CPU s (max) | peak RSS tree GiB "
        "| objective EUR |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries.values():
        if s["model"] == "naive LP1":
            stages = ""
            if "solve_set_instance_seconds_median" in s:
                stages = (f" (set_instance {_s(s['solve_set_instance_seconds_median'])}, "
                          f"HiGHS {_s(s['solve_optimize_seconds_median'])}, load "
                          f"{_s(s['solve_load_solution_seconds_median'])})")
            lines.append(
                f"| {s['case']} (appsi_highs) | {s['repeats']} | {_s(s['wall_median'])} "
                f"[{_s(s['wall_min'])}, {_s(s['wall_max'])}] | {_s(s['build_seconds_median'])} "
                f"| (in solve) | {_s(s['solve_seconds_median'])}{stages} | – | 1 / 1 | – "
                f"| {_s(s['cpu_seconds_foreign_max'])} "
                f"| {s['peak_rss_tree_bytes'] / GIB:.2f} | {s['objective']:.6f} |")
            continue
        lines.append(
            f"| {s['case']} | {s['repeats']} | {_s(s['wall_median'])} "
            f"[{_s(s['wall_min'])}, {_s(s['wall_max'])}] | {_s(s['build_seconds_median'])} "
            f"| {_s(s['compile_seconds_median'])} | {_s(s['solve_seconds_median'])} "
            f"| {_s(s['extract_seconds_median'])} | {s['blocks']} / {s['workers']} "
            f"| {_s(s['cpu_seconds_tree_median'])} | {_s(s['cpu_seconds_foreign_max'])}"
            f"{' (contended: ' + str(s['contended_runs']) + ')' if s['contended_runs'] else ''} "
            f"| {s['peak_rss_tree_bytes'] / GIB:.2f} | {s['objective']:.6f} |")
    lines += ["", "build / compile / solve / extract: medians of the Result attrs, summed "
              "over blocks (seconds across workers, so they may add up to more than the "
              "wall time). CPU s (tree): median CPU seconds of this process and its workers; "
              "other CPU s: the most CPU seconds other processes took during one run; "
              f"'contended: n' counts the runs where they took over {CONTENDED:.0%} of a "
              "core (do not trust those timings).", ""]
    if checks or extra:
        lines += ["| check | value | verdict |", "|---|---|---|"]
        for c in checks:
            if c["check"] == "lp1_vs_greedy":
                lines.append(f"| {c['case']}: LP1 vs lp1_greedy, relative difference | "
                             f"{c['rel_diff']:.1e} | {'ok' if c['ok'] else 'FAIL'} "
                             f"(<= {c['tolerance']:g}) |")
            elif c["check"] == "naive_vs_lp1":
                lines.append(f"| naive LP1 vs LP1, relative difference | {c['rel_diff']:.1e} "
                             f"| {'ok' if c['ok'] else 'FAIL'} (<= {c['tolerance']:g}) |")
        for name, (value, verdict) in extra.items():
            lines.append(f"| {name} | {value} | {verdict} |")
    return "\n".join(lines)


# ======================================================================================
# main
# ======================================================================================
def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Benchmark LP1/LP3 (de Villena 2022) through recopt's runner against "
                    "a naive Pyomo formulation; JSON lines to benchmarks/results/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=2880, help="T, 15-min steps")
    p.add_argument("--members", type=int, default=100, help="U, members")
    p.add_argument("--repeats", type=int, default=3, help="runs of LP1 and LP3 per setting")
    p.add_argument("--naive-repeats", type=int, default=1, help="runs of the naive LP1")
    p.add_argument("--skip-naive", action="store_true", help="skip the naive LP1 (~3 min)")
    p.add_argument("--year", action="store_true",
                   help="also LP1 over one year at 15 min: wall time and peak memory")
    p.add_argument("--year-steps", type=int, default=35040, help="T of the --year run")
    p.add_argument("--year-repeats", type=int, default=1, help="runs of the --year case")
    p.add_argument("--presolve-study", action="store_true",
                   help="also LP1 and LP3 with HiGHS presolve='on' vs 'off' (explicit)")
    p.add_argument("--threads-study", action="store_true",
                   help="also LP1 and LP3 with threads=1 (one HiGHS thread per block) vs "
                        "the default")
    p.add_argument("--threads", type=int, default=None,
                   help="HiGHS threads per block for every run (default: HiGHS's)")
    p.add_argument("--workers", type=int, default=None,
                   help="runner worker processes (default: the runner's, = cores)")
    p.add_argument("--seed", type=int, default=0, help="seed of synthetic_community")
    p.add_argument("--mem-interval", type=float, default=0.05,
                   help="memory sampling interval, s")
    p.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rec = Recorder(results_path(args.out, "lp"))
    machine = rec.add({"kind": "machine", **machine_info()})
    log(f"writing {rec.path}")
    summaries: dict[str, dict] = {}
    checks: list[dict] = []
    extra: dict[str, tuple[str, str]] = {}
    ok = True

    # warm-up: imports, the fork pool's first start (not recorded as a measurement)
    warm = synthetic_community(12, 96, seed=args.seed)
    solve(warm, "LP1", **base_kw(args))
    solve(warm, "LP3", **base_kw(args), **LP3_OPTIONS)

    # 4. the year (first, while this process is small: its RSS counts in the peak)
    if args.year:
        log(f"year instance: {args.year_steps} x {args.members}")
        year = synthetic_community(args.members, args.year_steps, start="2023-01-01",
                                   seed=args.seed)
        case = f"LP1 year {args.year_steps}x{args.members}"
        runs = [timed_solve(rec, year, "LP1", section="year", case=case, repeat=i,
                            mem_interval=args.mem_interval, solve_kw=base_kw(args),
                            options={})
                for i in range(args.year_repeats)]
        s = summaries[case] = summarize(rec, runs, case)
        c = oracle_check(rec, year, s["objective"], case)
        checks.append(c)
        ok &= c["ok"] and s["statuses"] == ["optimal"]
        extra["LP1 year: wall median <= 120 s"] = (
            f"{s['wall_median']:.1f} s", verdict(s["wall_median"] <= 120, s))
        extra["LP1 year: peak RSS of the process tree <= 4 GiB"] = (
            f"{s['peak_rss_tree_bytes'] / GIB:.2f} GiB (this process "
            f"{s['peak_rss_self_bytes'] / GIB:.2f}, workers "
            f"{s['peak_rss_children_bytes'] / GIB:.2f})",
            verdict(s["peak_rss_tree_bytes"] <= 4 * GIB, s))
        del year
        gc.collect()

    # 1. LP1 and LP3 at T x U
    log(f"instance: {args.steps} x {args.members}")
    inst = synthetic_community(args.members, args.steps, seed=args.seed)
    main_runs = bench_runner(rec, inst, args, section="runner")
    for model, s in main_runs.items():
        summaries[s["case"]] = s
        ok &= s["statuses"] == ["optimal"]
        extra[f"{model} {args.steps}x{args.members}: wall median <= 10 s"] = (
            f"{s['wall_median']:.2f} s", verdict(s["wall_median"] <= 10, s))
    lp1 = main_runs["LP1"]
    extra["HiGHS options the runner used by default (LP1 / LP3)"] = (
        f"{json.dumps(lp1['effective_solver_options'])} / "
        f"{json.dumps(main_runs['LP3']['effective_solver_options'])}", "–")
    extra["LP3 objective - LP1 objective (>= 0 expected)"] = (
        f"{main_runs['LP3']['objective'] - lp1['objective']:.6f} EUR",
        "ok" if main_runs["LP3"]["objective"] >= lp1["objective"] - 1e-6 else "FAIL")

    # 3. oracle
    c = oracle_check(rec, inst, lp1["objective"], lp1["case"])
    checks.append(c)
    ok &= c["ok"]

    # 5. presolve study, 6. threads study
    studies = []
    if args.presolve_study:
        studies.append(("presolve", ("on", {"solver_options": {"presolve": "on"}}),
                        ("off", {"solver_options": {"presolve": "off"}})))
    if args.threads_study:
        studies.append(("threads", ("HiGHS default", {}), ("threads=1", {"threads": 1})))
    for name, base, variant in studies:
        for model, (b, v, comp) in bench_study(rec, inst, args, name=name, base=base,
                                               variant=variant).items():
            summaries[b["case"]] = b
            summaries[v["case"]] = v
            ok &= comp["ok"]
            extra[f"{model} {name} {variant[0]} / {base[0]}: wall (solve) median ratio"] = (
                f"{comp['wall_ratio_variant_over_base']:.2f} "
                f"({comp['solve_ratio_variant_over_base']:.2f})",
                f"objectives agree to {comp['objective_rel_diff']:.0e}")

    # 2. the naive LP1 (last: its ~GiB-sized Pyomo model need not disturb the others)
    if not args.skip_naive and args.naive_repeats > 0:
        s = bench_naive(rec, inst, args)
        summaries[s["case"]] = s
        diff = rel_diff(s["objective"], lp1["objective"])
        c = rec.add({"kind": "check", "check": "naive_vs_lp1", "case": s["case"],
                     "naive_objective": s["objective"], "lp1_objective": lp1["objective"],
                     "rel_diff": diff, "tolerance": NAIVE_TOL, "ok": diff <= NAIVE_TOL})
        checks.append(c)
        ok &= c["ok"]
        ratio = s["wall_median"] / lp1["wall_median"]
        rec.add({"kind": "comparison", "comparison": "naive_over_ours", "model": "LP1",
                 "naive_wall_median": s["wall_median"],
                 "naive_build_median": s["build_seconds_median"],
                 "naive_solve_median": s["solve_seconds_median"],
                 "ours_wall_median": lp1["wall_median"], "ratio": ratio})
        extra["naive LP1 (build + solve) / recopt LP1 (wall), medians"] = (
            f"{s['wall_median']:.1f} s / {lp1['wall_median']:.2f} s = {ratio:.1f}x", "–")

    table = markdown(machine, summaries, checks, extra)
    rec.add({"kind": "markdown", "text": table, "ok": bool(ok)})
    rec.close()
    print(table)
    print(f"\nrecords: {rec.path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
