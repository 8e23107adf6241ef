"""LP1 through recopt's fast path against a blocked matrix straight into highspy and linopy.

Issue 19's speed rows (``models/LP1-LP3.md``): LP1 (de Villena (8)-(16)) at T x U
steps x members, each contestant a *whole process* on the same generated ``.nc``
(imports, load, build, solve, objective), runs interleaved (recopt, matrix, linopy,
recopt, ...), ``--repeats`` times; wall (``time.perf_counter`` around the process)
and CPU (``resource.getrusage(RUSAGE_CHILDREN)`` deltas: user + system) medians and
ratios; the objectives are compared (relative difference <= 1e-7).

* ``recopt``: ``recopt.solve.solve(path, "LP1")`` (the fast path: one 100-step block
  compiled once into HiGHS, re-parameterised per block);
* ``matrix``: the same LP built with NumPy from the ``.nc`` (xarray, NumPy, highspy
  only), one ``HighsLp`` passed per 100-step block, presolve off: the floor of a
  blocked matrix generator;
* ``linopy``: the same LP (the whole horizon) written with linopy, solved by HiGHS
  (``io_api="direct"``); ``pip install recopt[bench]``.

The instances are made by the project's generator (``synthetic_community``, seed 0)
into a temporary directory; nothing big is kept. One JSON line per process run goes to
``benchmarks/results/step_lp_<UTC timestamp>.jsonl`` (the first line describes the
machine, load averages included); a Markdown table is printed at the end.

    python benchmarks/bench_step_lp.py --sizes 2880x100 35040x100 --repeats 5
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
import tempfile
import time
from pathlib import Path

BLOCK = 100
CONTESTANTS = ("recopt", "matrix", "linopy")


# --------------------------------------------------------------------------------------
# the contestants, each run as `python bench_step_lp.py --worker NAME FILE`
# --------------------------------------------------------------------------------------
def lp1_arrays(path):
    """C+, P-, prices and probabilities of the .nc as (S, T, U) arrays (xarray + NumPy)."""
    import numpy as np
    import xarray as xr

    ds = xr.open_dataset(path).load()
    like = ds["consumption"].transpose("scenario", "time", "member")
    C, P = like.values, ds["production"].transpose(*like.dims).values
    cp, pm = np.maximum(C - P, 0.0), np.maximum(P - C, 0.0)
    price = {n: ds[n].broadcast_like(like).transpose(*like.dims).values
             for n in ("price_grid_buy", "price_grid_sell", "price_community_buy",
                       "price_community_sell")}
    w = ds["scenario_probability"].values[:, None, None]
    return cp, pm, price, w


def run_matrix(path) -> float:
    """LP1 in 100-step blocks: per block one HighsLp (v, y per step; (10) per step)."""
    import highspy
    import numpy as np

    cp, pm, pr, w = lp1_arrays(path)
    S, T, U = cp.shape
    cost_v = w * (pr["price_community_buy"] - pr["price_grid_buy"])
    cost_y = w * (pr["price_grid_sell"] - pr["price_community_sell"])
    total = float((w * (pr["price_grid_buy"] * cp - pr["price_grid_sell"] * pm)).sum())
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")
    for s in range(S):
        for t0 in range(0, T, BLOCK):
            t1 = min(T, t0 + BLOCK)
            L = t1 - t0
            lp = highspy.HighsLp()
            lp.num_col_, lp.num_row_ = 2 * U * L, L
            lp.col_cost_ = np.concatenate((cost_v[s, t0:t1], cost_y[s, t0:t1]), axis=1).ravel()
            lp.col_lower_ = np.zeros(2 * U * L)
            lp.col_upper_ = np.concatenate((cp[s, t0:t1], pm[s, t0:t1]), axis=1).ravel()
            lp.row_lower_ = lp.row_upper_ = np.zeros(L)
            lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
            lp.a_matrix_.start_ = np.arange(2 * U * L + 1, dtype=np.int32)
            lp.a_matrix_.index_ = np.repeat(np.arange(L, dtype=np.int32), 2 * U)
            lp.a_matrix_.value_ = np.tile(np.r_[np.ones(U), -np.ones(U)], L)
            h.passModel(lp)
            h.run()
            assert h.getModelStatus().name == "kOptimal", h.getModelStatus().name
            total += float(h.getInfo().objective_function_value)
    return total


def run_linopy(path) -> float:
    """LP1 over the whole horizon in linopy (labelled arrays), HiGHS through io_api=direct."""
    import linopy
    import numpy as np
    import xarray as xr

    cp, pm, pr, w = lp1_arrays(path)
    dims = ("scenario", "time", "member")
    coords = [np.arange(n) for n in cp.shape]
    da = lambda a: xr.DataArray(a, coords=coords, dims=dims)  # noqa: E731
    m = linopy.Model()
    v = m.add_variables(lower=0, upper=da(cp), name="v")
    y = m.add_variables(lower=0, upper=da(pm), name="y")
    m.add_constraints(v.sum("member") - y.sum("member") == 0, name="sales_balance")
    cost_v = da(w * (pr["price_community_buy"] - pr["price_grid_buy"]))
    cost_y = da(w * (pr["price_grid_sell"] - pr["price_community_sell"]))
    m.add_objective((cost_v * v).sum() + (cost_y * y).sum())
    status, condition = m.solve("highs", io_api="direct", output_flag=False)
    assert status == "ok", (status, condition)
    const = float((w * (pr["price_grid_buy"] * cp - pr["price_grid_sell"] * pm)).sum())
    return float(m.objective.value) + const


def run_recopt(path) -> float:
    from recopt.solve import solve

    r = solve(path, "LP1")
    assert r.attrs["status"] == "optimal", r.attrs["status"]
    return float(r.attrs["objective"])


def worker(name: str, path: str) -> None:
    t0 = time.perf_counter()
    objective = {"recopt": run_recopt, "matrix": run_matrix, "linopy": run_linopy}[name](path)
    print(json.dumps({"objective": objective, "inner_seconds": time.perf_counter() - t0}))


# --------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------
def one_process(name: str, path: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--worker", name, str(path)],
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rec = {"contestant": name, "wall": wall, "cpu": cpu, "load_before": load,
           "returncode": out.returncode,
           "peak_rss_mib": (after.ru_maxrss / 1024)}
    if out.returncode == 0:
        rec.update(json.loads(out.stdout.strip().splitlines()[-1]))
    else:
        rec["error"] = out.stderr[-2000:]
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["2880x100"], help="TxU")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--contestants", nargs="+", default=list(CONTESTANTS))
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0

    from recopt.bench.record import Recorder, machine_info, results_path
    from recopt.data.instance import save
    from recopt.generate.synthetic import synthetic_community

    rec = Recorder(results_path(Path(__file__).parent / "results", "step_lp"))
    rec.add({"kind": "machine", **machine_info()})
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            T, U = (int(x) for x in size.lower().split("x"))
            path = Path(tmp) / f"lp1_{T}x{U}.nc"
            save(synthetic_community(U, T, seed=0), path)
            runs: dict[str, list[dict]] = {c: [] for c in args.contestants}
            for k in range(args.repeats):
                order = args.contestants if k % 2 == 0 else args.contestants[::-1]
                for c in order:
                    r = one_process(c, path)
                    r.update(kind="run", size=size, repeat=k)
                    rec.add(r)
                    runs[c].append(r)
                    print(f"{size} {c:<7} wall {r['wall']:.2f} s cpu {r['cpu']:.2f} s "
                          f"load {r['load_before']:.1f} obj {r.get('objective')}",
                          file=sys.stderr)
            med = {c: {"wall": statistics.median(r["wall"] for r in rs),
                       "cpu": statistics.median(r["cpu"] for r in rs),
                       "objective": rs[0].get("objective", math.nan),
                       "failed": sum(r["returncode"] != 0 for r in rs)}
                   for c, rs in runs.items()}
            ref = med.get("matrix", {}).get("objective", math.nan)
            for c, m in med.items():
                m["objective_rel_diff"] = abs(m["objective"] - ref) / max(1.0, abs(ref))
                ok &= m["failed"] == 0 and not m["objective_rel_diff"] > 1e-7
            summary = {"kind": "summary", "size": size, "medians": med}
            rec.add(summary)
            rows.append(summary)
    print("| LP1 T x U | contestant | wall s | CPU s | wall / matrix | CPU / matrix | "
          "objective rel. diff |\n|---|---|---|---|---|---|---|")
    for s in rows:
        base = s["medians"].get("matrix")
        for c, m in s["medians"].items():
            rw = m["wall"] / base["wall"] if base else math.nan
            rc = m["cpu"] / base["cpu"] if base else math.nan
            print(f"| {s['size']} | {c} | {m['wall']:.2f} | {m['cpu']:.2f} | {rw:.2f} | "
                  f"{rc:.2f} | {m['objective_rel_diff']:.1e} |")
    print(f"records: {rec.path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
