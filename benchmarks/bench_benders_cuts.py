"""Which Benders cut form is fastest? SLExt / MLColExt with multi, daily and aggregated cuts.

The decompositions' ``cuts`` option (card ``models/SLExt-MLColExt.md``): ``multi`` (one θ
and cut per (scenario, step), the paper's multi-cut), ``daily`` (one per scenario and
day, the sum of its steps' cuts), ``aggregated`` (one θ, one cut per iteration; the
default) and ``aggregated`` with Pareto cuts. For each size (``actors x days``) and seed
(generator instances, ``recopt.generate.chasseray.generate``), every variant is solved
through :func:`recopt.solve.solve` with HiGHS in the same process, the variants' order
rotating from one seed to the next; recorded per run: status, objective, bound, wall
(around ``solve``), build / master / sub-problem / cut seconds, iterations, cuts, the
1-min load. Table: median wall per variant and the ratio multi / variant; the check
that every variant reaches the same optimum (within the runs' gaps + 1e-4 relative);
exit code 1 if it fails.

    python benchmarks/bench_benders_cuts.py                  # SLExt 10x90 (5 seeds), 20x30 (3)
    python benchmarks/bench_benders_cuts.py --model MLColExt --sizes 100x180 --seeds 0
    python benchmarks/bench_benders_cuts.py --quick          # smoke: 6x2, 1 seed

Records: ``benchmarks/results/benders_cuts_<UTC stamp>.jsonl`` (first line: machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from recopt.bench.record import Recorder, machine_info, results_path
from recopt.generate.chasseray import generate
from recopt.solve import solve

HERE = Path(__file__).resolve().parent
VARIANTS = (("multi", {"cuts": "multi"}), ("daily", {"cuts": "daily"}),
            ("aggregated", {"cuts": "aggregated"}),
            ("aggregated+Pareto", {"cuts": "aggregated", "pareto": True}))
KEYS = ("status", "objective", "bound", "gap", "build_seconds", "benders_iterations",
        "benders_cuts", "benders_master_seconds", "benders_sub_seconds",
        "benders_cut_seconds")


def size(text: str) -> tuple[int, int]:
    a, d = text.lower().split("x")
    return int(a), int(d)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("SLExt", "MLColExt"), default="SLExt")
    p.add_argument("--sizes", type=size, nargs="+", default=None,
                   help="actors x days (default 10x90 20x30)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="default: 0-4 for 10 actors, 0-2 otherwise")
    p.add_argument("--time-limit", type=float, default=1800.0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    sizes = args.sizes or ([(6, 2)] if args.quick else [(10, 90), (20, 30)])
    opts = {"enumeration": "maximal"} if args.model == "MLColExt" else {}
    rec = Recorder(results_path(args.out, "benders_cuts"))
    rec.add({"kind": "machine", **machine_info(), "args": {**vars(args), "out": str(args.out),
                                                          "sizes": sizes}})
    ok = True
    rows = []
    for actors, days in sizes:
        seeds = args.seeds or ([0] if args.quick else (list(range(5)) if actors <= 10
                                                       else list(range(3))))
        walls = {name: [] for name, _ in VARIANTS}
        iters = {name: [] for name, _ in VARIANTS}
        for k, seed in enumerate(seeds):
            inst = generate(actors=actors, days=days, seed=seed)
            order = VARIANTS[k % len(VARIANTS):] + VARIANTS[:k % len(VARIANTS)]
            values = {}
            for name, variant in order:
                t0 = time.perf_counter()
                r = solve(inst, args.model, time_limit=args.time_limit, **opts, **variant)
                wall = time.perf_counter() - t0
                attrs = {key: r.attrs.get(key) for key in KEYS}
                rec.add({"size": f"{actors}x{days}", "seed": seed, "variant": name,
                         "wall_s": wall, "loadavg_1min": os.getloadavg()[0], **attrs})
                print(f"{actors}x{days} seed {seed} {name:<18} {attrs['status']:<8} "
                      f"obj {attrs['objective']:.6f} wall {wall:6.2f} s, "
                      f"{attrs['benders_iterations']} it", file=sys.stderr, flush=True)
                walls[name].append(wall)
                iters[name].append(attrs["benders_iterations"])
                values[name] = attrs
            best = min(v["objective"] for v in values.values())
            for name, v in values.items():
                tol = (1e-4 + max(v["gap"], 0.0)) * max(1.0, abs(best))
                if v["status"] != "optimal" or v["objective"] - best > tol:
                    ok = False
                    print(f"  {name}: not at the optimum ({v['status']}, "
                          f"{v['objective']} vs {best})", file=sys.stderr)
        med = {name: statistics.median(w) for name, w in walls.items()}
        rows.append((f"{actors}x{days}", len(seeds), med,
                     {name: statistics.median(i) for name, i in iters.items()}))
    print(f"### {args.model}: Benders cut forms (HiGHS; medians over seeds)\n")
    names = [name for name, _ in VARIANTS]
    print("| size | seeds | " + " | ".join(f"{n} wall s (it)" for n in names)
          + " | multi / aggregated |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for label, n, med, it in rows:
        cells = " | ".join(f"{med[name]:.2f} ({it[name]:g})" for name in names)
        print(f"| {label} | {n} | {cells} | {med['multi'] / med['aggregated']:.2f}x |")
    print(f"\nsame optimum in every run: {ok}; records: {rec.path}")
    rec.close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
