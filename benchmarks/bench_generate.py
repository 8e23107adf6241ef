"""Benchmark the Chasseray-protocol instance generator (issue 7's speed target).

Target: generating 100 replicates of the 30-actor x 7-day preset (``30_act_7_d``) takes
<= 60 s on the 2-core reference machine.

Measures, in one process run:

1. ``first``: the first :func:`recopt.generate.chasseray.generate` call of the process
   (imports of pvlib/demandlib, cold caches);
2. ``generate``: ``--replicates`` calls (seeds 0..N-1) with warm caches: total, median,
   min, max per instance, and the share spent in :func:`recopt.data.make_instance`
   (assembly and validation of the xarray instance, shared code) measured by wrapping
   it in this process;
3. ``generate+save``: the same replicates written with :func:`recopt.data.save` to a
   temporary folder: total, and the median of the save part;
4. ``cold`` (the baseline, same process): ``--cold`` calls with every seed-independent
   cache cleared before each call (BDEW reference profiles, solar geometry per tile,
   Linke turbidity, time terms), i.e. what the generator would cost without caching;
   ratio cold / warm medians;
5. ``--cli``: ``python -m recopt.generate --replicates N --workers 2`` end to end
   (process start-up, imports, generation and files), wall time.

Every measurement goes as one JSON line to
``benchmarks/results/generate_<UTC timestamp>.jsonl`` (the first line describes the
machine and the 1-min load average); a Markdown table is printed at the end. Timings on
a loaded machine are contended: the load average is recorded before each phase.

Usage::

    python benchmarks/bench_generate.py            # 100 replicates, 10 cold calls
    python benchmarks/bench_generate.py --quick    # 20 replicates, 3 cold calls
    python benchmarks/bench_generate.py --cli      # also the CLI with 2 workers
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recopt.bench.record import Recorder, machine_info, results_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_SECONDS = 60.0
PRESET = "30_act_7_d"


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _clear_caches() -> None:
    from recopt.generate import consumption, pv

    consumption.reference_profile.cache_clear()
    pv.tile_geometry.cache_clear()
    pv._time_axis_terms.cache_clear()
    pv._LINKE_CACHE.clear()


def _stats(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "total_s": round(sum(xs), 4),
            "median_s": round(statistics.median(xs), 5),
            "min_s": round(min(xs), 5), "max_s": round(max(xs), 5)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicates", type=int, default=100)
    p.add_argument("--cold", type=int, default=10, help="cold-cache baseline calls")
    p.add_argument("--quick", action="store_true", help="20 replicates, 3 cold calls")
    p.add_argument("--cli", action="store_true", help="also time the CLI with 2 workers")
    p.add_argument("--preset", default=PRESET)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    if args.quick:
        args.replicates, args.cold = 20, 3
    recorder = Recorder(results_path(args.out, "generate"))
    path = recorder.path
    records = recorder.records
    record = recorder.add
    record({"kind": "machine", **machine_info(), "load_1min": _load(), "preset": args.preset})

    # 1. first call of the process --------------------------------------------------------
    load0 = _load()
    t0 = time.perf_counter()
    from recopt.generate import chasseray as ch

    ch.generate(args.preset, seed=10_000)
    first = time.perf_counter() - t0
    record({"kind": "first", "seconds": round(first, 4), "load_1min": load0})

    # 2. warm generate, with the make_instance share ------------------------------------
    spent = []
    real_make = ch.make_instance

    def timed_make(*a, **k):
        t = time.perf_counter()
        try:
            return real_make(*a, **k)
        finally:
            spent.append(time.perf_counter() - t)

    ch.make_instance = timed_make
    load0 = _load()
    times, datasets = [], []
    try:
        for seed in range(args.replicates):
            t = time.perf_counter()
            datasets.append(ch.generate(args.preset, seed=seed))
            times.append(time.perf_counter() - t)
    finally:
        ch.make_instance = real_make
    gen = _stats(times)
    gen.update(kind="generate", load_1min=load0, make_instance_share=round(
        sum(spent) / sum(times), 3), target_s=TARGET_SECONDS,
        meets_target=sum(times) <= TARGET_SECONDS)
    record(gen)

    # 3. generate + save -----------------------------------------------------------------
    from recopt.data import save

    load0 = _load()
    save_times, both = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.replicates):
            t = time.perf_counter()
            ds = ch.generate(args.preset, seed=seed)
            t1 = time.perf_counter()
            save(ds, Path(tmp) / f"r{seed}.nc")
            t2 = time.perf_counter()
            save_times.append(t2 - t1)
            both.append(t2 - t)
    gs = _stats(both)
    gs.update(kind="generate+save", load_1min=load0,
              save_median_s=round(statistics.median(save_times), 5),
              meets_target=sum(both) <= TARGET_SECONDS)
    record(gs)

    # 4. cold-cache baseline --------------------------------------------------------------
    load0 = _load()
    cold = []
    for seed in range(args.cold):
        _clear_caches()
        t = time.perf_counter()
        ch.generate(args.preset, seed=seed)
        cold.append(time.perf_counter() - t)
    cs = _stats(cold)
    cs.update(kind="cold", load_1min=load0,
              ratio_cold_over_warm=round(statistics.median(cold) / gen["median_s"], 2))
    record(cs)

    # 5. the CLI with 2 workers ------------------------------------------------------------
    if args.cli:
        load0 = _load()
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ)
            env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "recopt.generate", "--preset", args.preset,
                            "--replicates", str(args.replicates), "--workers", "2", "-q",
                            "-o", tmp + "/"], check=True, env=env)
            wall = time.perf_counter() - t
        record({"kind": "cli_2_workers", "n": args.replicates, "total_s": round(wall, 3),
                "load_1min": load0, "meets_target": wall <= TARGET_SECONDS})

    # table ---------------------------------------------------------------------------------
    print(f"\nChasseray generator, preset {args.preset}, {args.replicates} replicates "
          f"({path.relative_to(ROOT) if path.is_relative_to(ROOT) else path})\n")
    print("| phase | n | total s | median s/instance | notes | load (1 min) |")
    print("|---|---:|---:|---:|---|---:|")
    print(f"| first call (imports, cold) | 1 | {first:.2f} | | | "
          f"{records[1]['load_1min']} |")
    print(f"| generate (warm) | {gen['n']} | {gen['total_s']:.2f} | {gen['median_s']:.4f} | "
          f"make_instance {100 * gen['make_instance_share']:.0f} %; target <= "
          f"{TARGET_SECONDS:.0f} s: {'met' if gen['meets_target'] else 'MISSED'} | "
          f"{gen['load_1min']} |")
    print(f"| generate + save | {gs['n']} | {gs['total_s']:.2f} | {gs['median_s']:.4f} | "
          f"save median {gs['save_median_s']:.4f} s | {gs['load_1min']} |")
    print(f"| cold caches (baseline) | {cs['n']} | {cs['total_s']:.2f} | "
          f"{cs['median_s']:.4f} | cold / warm = {cs['ratio_cold_over_warm']:.1f}x | "
          f"{cs['load_1min']} |")
    if args.cli:
        r = records[-1]
        print(f"| CLI, 2 workers, files | {r['n']} | {r['total_s']:.2f} | | end to end | "
              f"{r['load_1min']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
