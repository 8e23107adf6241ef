"""Benchmark the evaluation-under-uncertainty blocks: bootstrap, battery, metrics, N*.

Issue 3's target: 500 bootstrap years x 8760 h x 14 members x the 5 Ospina keys x 6
metrics in <= 10 s. The keys themselves are the keys helper's (``recopt.keys``); this
script times the blocks they call, each apart, on a seasonal block bootstrap of a
synthetic 14-member community (5 years of hourly history):

1. ``bootstrap``: :func:`seasonal_block_bootstrap`, N years in memory;
2. ``bootstrap_dask``: the same with ``chunks=`` (graph) and then loading every chunk
   through :func:`iter_scenario_chunks`;
3. ``context``: :class:`MetricContext` (meter values, baseline bills, ...), once per
   instance;
4. ``settle_<key>``: :func:`recopt.settle.settle_arrays` for equal sharing (ES) and
   prorata of the need (PR) -- the baseline every key pays, not part of the metrics;
5. ``metrics_<key>``: :func:`evaluate_arrays` with the six Ospina metrics (SCR, SSR,
   bill saving, Gini, energy to shift, CO2) plus collective bill, surplus, bound;
6. ``battery``: :func:`recopt.generate.battery.dispatch` over N x 8760 and
   :func:`add_community_battery`;
7. ``convergence``: N* over 5 keys x 6 metrics x N scenarios.

Each step ``--repeats`` times (median, min, max). Every record goes as a JSON line to
``benchmarks/results/metrics_<UTC stamp>.jsonl`` with the 1-min load average before the
step; a table is printed at the end. ``--quick``: 50 years. Peak RSS of the process is
reported (``resource.getrusage``).

Usage: ``python benchmarks/bench_metrics.py [--quick] [--scenarios N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import functools
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from recopt.bench.record import Recorder, machine_info, results_path
from recopt.generate.battery import add_community_battery, dispatch
from recopt.generate.bootstrap import iter_scenario_chunks, seasonal_block_bootstrap
from recopt.generate.synthetic import synthetic_community
from recopt.metrics import MetricContext, evaluate_arrays
from recopt.metrics.convergence import convergence
from recopt.settle import prorata_need, settle_arrays

HERE = Path(__file__).resolve().parent

OSPINA6 = ["self_consumption_rate", "self_sufficiency", "bill_saving", "gini",
           "energy_to_shift", "co2_avoided"]


def timed(fn, repeats):
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50 years instead of 500")
    ap.add_argument("--scenarios", type=int, default=None)
    ap.add_argument("--members", type=int, default=14)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=50, help="scenarios per Dask chunk")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    n = args.scenarios or (50 if args.quick else 500)
    rec = Recorder(results_path(args.out, "metrics"))
    path = rec.path
    try:
        rec.add({"kind": "machine", **machine_info(), "scenarios": n,
                 "members": args.members, "repeats": args.repeats})
        record = functools.partial(rec.timing, digits=3)

        print(f"history: {args.members} members, 5 years hourly; bootstrap N = {n}", flush=True)
        hist = synthetic_community(args.members, 24 * (365 * 5 + 1), step_hours=1.0,
                                   start="2018-12-01", seed=0)
        boot, t = timed(lambda: seasonal_block_bootstrap(hist, n, seed=1), args.repeats)
        record("bootstrap", t)

        def lazy():
            ds = seasonal_block_bootstrap(hist, n, seed=1, chunks=args.chunk)
            return sum(float(p.consumption.sum()) for p in iter_scenario_chunks(ds, args.chunk))

        _, t = timed(lazy, args.repeats)
        record("bootstrap_dask", t, chunk=args.chunk)

        ctx, t = timed(lambda: MetricContext(boot), args.repeats)
        record("context", t)
        cp = ctx.net_consumption
        pm = np.maximum(boot.production.transpose("scenario", "time", "member").values
                        - boot.consumption.transpose("scenario", "time", "member").values, 0)
        u = cp.shape[-1]
        phi = np.full(cp.shape[1], 200.0)
        results = {}
        for key, keys in (("ES", np.full((1, 1, u), 1 / u)), ("PR", None)):
            def run_settle(keys=keys):
                k = prorata_need(cp, None) if keys is None else keys
                return settle_arrays(cp, pm, keys=k)

            res, t = timed(run_settle, args.repeats)
            record(f"settle_{key}", t)
            out, t = timed(lambda res=res: evaluate_arrays(
                ctx, res["comm_in"], res["comm_out"], allocation=res["alloc"],
                co2_intensity=phi), args.repeats)
            record(f"metrics_{key}", t, metrics=len(OSPINA6))
            results[key] = out
            del res
        g = ctx.community_production
        _, t = timed(lambda: dispatch(g, cp.sum(-1), 30.0, 15.0, 1.0), args.repeats)
        record("battery_dispatch", t)
        _, t = timed(lambda: add_community_battery(boot, 30.0, 15.0), 1)
        record("battery_instance", t)

        import xarray as xr
        names = ["self_consumption_rate", "self_sufficiency_mean", "bill_saving_mean", "gini",
                 "energy_to_shift_total", "co2_avoided"]
        rng = np.random.default_rng(0)
        dsets = {}
        for i, key in enumerate(["GS", "ES", "PR", "HEP", "CA"]):
            base = results["ES" if i < 2 else "PR"]
            dsets[key] = xr.Dataset({m: ("scenario", base[m] * (1 + 0.01 * rng.normal(size=n)))
                                     for m in names})
        tol = {"self_consumption_rate": 0.005, "self_sufficiency_mean": 0.005,
               "bill_saving_mean": 2.0, "gini": 0.005, "energy_to_shift_total": 20.0,
               "co2_avoided": 0.01}
        conv, t = timed(lambda: convergence(dsets, tol), args.repeats)
        record("convergence", t, n_star=conv.attrs["n_star"])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        rec.add({"peak_rss_gib": peak})
    finally:
        rec.close()
    rows = rec.timings()
    per_key = statistics.median([r["median_s"] for r in rows if r["step"].startswith("metrics_")])
    print("\n| step | median s | min s | max s | load |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | "
              f"{r['loadavg_1min']:.2f} |")
    print(f"\nN = {n} years x 8760 h x {u} members; metrics per key {per_key:.2f} s "
          f"(x 5 keys = {5 * per_key:.2f} s, context once {rows[2]['median_s']:.2f} s); "
          f"peak RSS {peak:.2f} GiB; records: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
