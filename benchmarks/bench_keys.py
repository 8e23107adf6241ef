"""Benchmark the rule-based keys (issue 3): evaluation under uncertainty and brute force.

(a) ``evaluate``: 500 bootstrap years x 8760 h x 14 members x the 5 Ospina keys (GS with
    the Guzman shares, ES, PR, HEP, CA) x Ospina's 6 metrics (SCR, SSR, bill saving,
    Gini, energy to shift, CO2) with :func:`recopt.keys.evaluate.evaluate_keys`
    (keys + settlement + metrics; target <= 10 s), and the same through the checked
    settlement entry (``checked=True``) as the in-process baseline (ratio, and the
    largest difference of any metric: must be ~1e-12 or less). The years come from
    :func:`recopt.generate.bootstrap.seasonal_block_bootstrap` of a 5-year hourly
    synthetic history (:func:`recopt.generate.synthetic.synthetic_community`); building
    the data is not timed.
(b) ``brute_force``: the Wallonia brute force (3 catalogue keys + OptimCE's 1,782
    three-round candidates) on 1 year x 100 members at 15 min
    (:func:`recopt.keys.brute_force.brute_force`; target <= 30 s and <= 1 GiB peak).
    Run in a child process that loads the instance from netCDF, so that its peak RSS
    is the brute force's own (instance included).

Build and run are timed apart; medians over ``--repeats``; the 1-min load average is
recorded with every timing (the machine may be shared). Results: one JSONL file per
run in ``benchmarks/results/``; a table is printed.

    python benchmarks/bench_keys.py            # full sizes
    python benchmarks/bench_keys.py --quick    # 50 years, 1 month of 15 min
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from recopt.bench.record import Recorder, machine_info, results_path

HERE = Path(__file__).resolve().parent

OSPINA6 = ["self_consumption_rate", "self_sufficiency", "bill_saving", "gini",
           "energy_to_shift", "co2_avoided"]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn, repeats, cpu=None):
    """Wall times of ``repeats`` runs; CPU seconds of each run appended to ``cpu``.

    On a shared machine the CPU time (all threads) is the better guide to the idle
    wall time: idle wall ~ CPU time / threads used in parallel.
    """
    out, times = None, []
    for _ in range(repeats):
        c0, t0 = _cpu(), time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(_cpu() - c0)
    return out, times


def _peak_gib() -> float:
    """Peak RSS of this process image (VmHWM; ru_maxrss survives exec on Linux, so a
    spawned child would report its parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _brute_child(path: str, repeats: int, threads: int, queue) -> None:
    import xarray as xr

    from recopt.keys.brute_force import brute_force

    inst = xr.load_dataset(path)
    cpu: list[float] = []
    res, times = _timed(lambda: brute_force(inst, "wallonia", threads=threads), repeats, cpu)
    peak = _peak_gib()
    queue.put({"times": times, "cpu_s": statistics.median(cpu), "peak_rss_gib": peak,
               "candidates": len(res.table),
               "winner": res.winner["candidate"],
               "winner_scr": float(res.winner["self_consumption_rate"]),
               "upper_bound": res.upper_bound, "active_threads": threads})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="50 bootstrap years; brute force on 1 month")
    ap.add_argument("--scenarios", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=4, help="scenarios per block")
    ap.add_argument("--skip", choices=["evaluate", "brute_force"], default=None)
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the checked-settlement baseline of (a)")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    n = args.scenarios or (50 if args.quick else 500)
    repeats = args.repeats or (3 if args.quick else 1)
    steps = 96 * 30 if args.quick else 96 * 365
    rec = Recorder(results_path(args.out, "keys"))
    path = rec.path
    try:
        rec.add({"kind": "machine", **machine_info(), "scenarios": n,
                 "brute_force_steps": steps, "repeats": repeats,
                 "threads": args.threads, "chunk": args.chunk})
        record = functools.partial(rec.timing, digits=2)

        from recopt.generate.synthetic import synthetic_community

        if args.skip != "evaluate":
            from recopt.generate.bootstrap import seasonal_block_bootstrap
            from recopt.keys.evaluate import evaluate_keys

            t0 = time.perf_counter()
            hist = synthetic_community(14, 24 * (365 * 5 + 1), step_hours=1.0,
                                       start="2018-12-01", seed=0)
            boot = seasonal_block_bootstrap(hist, n, seed=1)
            record("build_bootstrap", [time.perf_counter() - t0], scenarios=n,
                   data="seasonal_block_bootstrap of a 5-year synthetic history")
            rng = np.random.default_rng(0)  # a seeded hourly carbon-intensity series
            phi = 200.0 + 50.0 * rng.standard_normal(boot.sizes["time"]).clip(-3, 3)
            def run(checked, chunk):
                return evaluate_keys(boot, ["GS", "ES", "PR", "HEP", "CA"], metrics=OSPINA6,
                                     key_params={"GS": {"shares": "guzman"}},
                                     co2_intensity=phi, chunk_scenarios=chunk,
                                     threads=args.threads, checked=checked)

            cpu: list[float] = []
            fast, t = _timed(lambda: run(False, args.chunk), repeats, cpu)
            record("evaluate_5keys_6metrics", t, scenarios=n, steps=boot.sizes["time"],
                   members=14, target_s=10.0, cpu_s=statistics.median(cpu))
            if not args.no_baseline:  # the checked settlement entry, in the same process
                cpu_b: list[float] = []
                slow, t_b = _timed(lambda: run(True, args.chunk), 1, cpu_b)
                diff = max(float(np.nanmax(np.abs(fast[v] - slow[v]))) for v in fast.data_vars)
                record("evaluate_checked_baseline", t_b, scenarios=n,
                       cpu_s=statistics.median(cpu_b),
                       ratio=round(statistics.median(t) / statistics.median(t_b), 3),
                       cpu_ratio=round(statistics.median(cpu) / statistics.median(cpu_b), 3),
                       max_abs_diff=diff)
            del boot, hist
        if args.skip != "brute_force":
            t0 = time.perf_counter()
            inst = synthetic_community(100, steps, seed=0, start="2023-01-01")
            record("build_100_members", [time.perf_counter() - t0], steps=steps)
            with tempfile.TemporaryDirectory() as tmp:
                f = Path(tmp) / "c100.nc"
                inst.to_netcdf(f)
                ctx = mp.get_context("spawn")
                queue = ctx.Queue()
                proc = ctx.Process(target=_brute_child,
                                   args=(str(f), repeats, args.threads, queue))
                proc.start()
                got = queue.get()
                proc.join()
            t = got.pop("times")
            record("brute_force_wallonia", t, steps=steps, members=100, target_s=30.0,
                   target_peak_gib=1.0, **got)
    finally:
        rec.close()
    rows = rec.timings()
    print("\n| step | median s | min s | max s | load | notes |\n|---|---|---|---|---|---|")
    for r in rows:
        notes = ", ".join(f"{k}={v}" for k, v in r.items()
                          if k in ("cpu_s", "candidates", "peak_rss_gib", "scenarios",
                                   "winner", "target_s", "ratio", "cpu_ratio",
                                   "max_abs_diff"))
        print(f"| {r['step']} | {r['median_s']:.2f} | {r['min_s']:.2f} | {r['max_s']:.2f} | "
              f"{r['loadavg_1min']:.2f} | {notes} |")
    print(f"\nrecords: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
