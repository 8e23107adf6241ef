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

    python benchmarks/bench_step_lp.py --sizes LP1:2880x100 LP3:2880x100 \\
        KoR8:2880x100 LP1:35040x100 --repeats 5 --startup 7

``--startup N`` also times ``python -m recopt.solve instances/villena_test_case_1.nc
--model LP1`` (issue 19's start-up command) against import-only floors, interleaved
(``--sizes`` with no size: the start-up only).

``--slext DAYS [DAYS ...]`` times issue 19's SLExt-vs-SLCpct row: ``python -m
recopt.solve FILE --model SLExt`` and ``--model SLCpct`` as whole processes,
interleaved, ``--slext-repeats`` times, on ``python -m recopt.generate --actors 10
--days DAYS --seed 0`` (the objectives compared within the Benders gap):

    python benchmarks/bench_step_lp.py --sizes --slext 90 360 --slext-repeats 3

``--mlcolext W [W ...]`` times issue 19's MLColExt row: ``python -m recopt.solve FILE
--model MLColExt --option enumeration=maximal --workers W`` as whole processes on
``python -m recopt.generate --actors 100 --days 180 --seed 0`` (clustered), the
settings interleaved, ``--mlcolext-repeats`` times (wall, CPU, peak RSS, objective,
the CLI's build / solve seconds):

    python benchmarks/bench_step_lp.py --sizes --mlcolext 1 2 --mlcolext-repeats 3

``--mlcolext-cluster N`` adds the same command with ``--scheduler ADDRESS`` of a Dask
``distributed.LocalCluster`` of ``N`` one-thread worker processes started by this
script (the setting is named ``dask``; its objective is compared with the others').
The cluster's workers are not children of the timed process, so that setting's CPU
column counts the driver only:

    python benchmarks/bench_step_lp.py --sizes --mlcolext 1 --mlcolext-cluster 2
"""

from __future__ import annotations

import argparse
import compileall
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


def _blocked(h, S, T, block, make) -> float:
    """Sum of the optimal objectives of ``make(s, t0, t1) -> HighsLp`` over the blocks."""
    total = 0.0
    for s in range(S):
        for t0 in range(0, T, block):
            h.passModel(make(s, t0, min(T, t0 + block)))
            h.run()
            assert h.getModelStatus().name == "kOptimal", h.getModelStatus().name
            total += float(h.getInfo().objective_function_value)
    return total


def _highs():
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")
    return h


def run_matrix_kor8(path) -> float:
    """KoR8 in 100-step blocks: per step c_i, X; (9) X - sum c = 0; costs of (16)."""
    import highspy
    import numpy as np

    cp, pm, pr, w = lp1_arrays(path)
    S, T, U = cp.shape
    G = pm.sum(axis=-1)
    share = np.divide(pm, G[:, :, None], out=np.zeros_like(pm), where=G[:, :, None] > 0)
    cost_c = w * (pr["price_community_buy"] - pr["price_grid_buy"])
    cost_x = (w * (pr["price_grid_sell"] - pr["price_community_sell"]) * share).sum(-1)
    n = U + 1

    def make(s, t0, t1):
        L = t1 - t0
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n * L, L
        lp.col_cost_ = np.concatenate((cost_c[s, t0:t1], cost_x[s, t0:t1, None]), 1).ravel()
        lp.col_lower_ = np.zeros(n * L)
        lp.col_upper_ = np.concatenate((cp[s, t0:t1], G[s, t0:t1, None]), 1).ravel()
        lp.row_lower_ = lp.row_upper_ = np.zeros(L)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.arange(n * L + 1, dtype=np.int32)
        lp.a_matrix_.index_ = np.repeat(np.arange(L, dtype=np.int32), n)
        lp.a_matrix_.value_ = np.tile(np.r_[-np.ones(U), 1.0], L)
        return lp

    const = float((w * (pr["price_grid_buy"] * cp - pr["price_grid_sell"] * pm)).sum())
    return const + _blocked(_highs(), S, T, BLOCK, make)


def run_matrix_lp3(path) -> float:
    """LP3 (proportional initial keys, tolerance 0.1, xi_d 0.001) in 100-step blocks:
    per step v, y, k (every member), a+, a-; rows (12), (10), (14), (24), (25)."""
    import highspy
    import numpy as np
    import scipy.sparse as sp

    cp, pm, pr, w = lp1_arrays(path)
    S, T, U = cp.shape
    G = pm.sum(axis=-1)
    demand = cp.sum(axis=(0, 1))
    K = demand / demand.sum()
    klo, kup = np.maximum(0, K * 0.9), np.minimum(1, K * 1.1)
    cost_v = w * (pr["price_community_buy"] - pr["price_grid_buy"])
    cost_y = w * (pr["price_grid_sell"] - pr["price_community_sell"])
    inf = highspy.kHighsInf
    n, m = 3 * U + 2, 3 * U + 2  # columns v, y, k, a+, a-; rows (12), (10), (14), (24), (25)
    u = np.arange(U)
    # one step's entries (row, column, factor of G or constant): COO
    r = np.r_[u, np.full(U, U), np.full(U, U), u, np.full(U, U + 1), U + 2 + u, 2 * U + 2 + u,
              U + 2 + u, 2 * U + 2 + u]
    c = np.r_[u, u, U + u, 2 * U + u, 2 * U + u, 2 * U + u, 2 * U + u,
              np.full(U, 3 * U), np.full(U, 3 * U + 1)]
    unit = np.r_[np.ones(U), np.ones(U), -np.ones(U), np.zeros(U), np.ones(U), np.zeros(U),
                  np.zeros(U), -np.ones(U), -np.ones(U)]
    byg = np.r_[np.zeros(3 * U), -np.ones(U), np.zeros(U), np.ones(U), -np.ones(U),
                np.zeros(2 * U)]

    def make(s, t0, t1):
        L = t1 - t0
        k = np.arange(L)[:, None]
        vals = unit[None, :] + byg[None, :] * G[s, t0:t1, None]
        A = sp.coo_matrix((vals.ravel(), ((r[None, :] + m * k).ravel(),
                                          (c[None, :] + n * k).ravel())),
                          shape=(m * L, n * L)).tocsc()
        gk = G[s, t0:t1, None] * K
        dev = np.full((L, 2), w[s, 0, 0] * 0.001)
        lp = highspy.HighsLp()
        lp.num_row_, lp.num_col_ = A.shape
        lp.col_cost_ = np.concatenate((cost_v[s, t0:t1], cost_y[s, t0:t1], np.zeros((L, U)),
                                       dev), 1).ravel()
        lp.col_lower_ = np.concatenate((np.zeros((L, 2 * U)), np.tile(klo, (L, 1)),
                                        np.zeros((L, 2))), 1).ravel()
        lp.col_upper_ = np.concatenate((cp[s, t0:t1], pm[s, t0:t1], np.tile(kup, (L, 1)),
                                        np.full((L, 2), inf)), 1).ravel()
        lp.row_lower_ = np.concatenate((np.full((L, U), -inf), np.zeros((L, 1)),
                                        np.full((L, 1 + 2 * U), -inf)), 1).ravel()
        lp.row_upper_ = np.concatenate((np.zeros((L, U + 1)), np.ones((L, 1)), gk, -gk),
                                       1).ravel()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = A.indptr.astype(np.int32)
        lp.a_matrix_.index_ = A.indices.astype(np.int32)
        lp.a_matrix_.value_ = A.data.astype(float)
        return lp

    const = float((w * (pr["price_grid_buy"] * cp - pr["price_grid_sell"] * pm)).sum())
    return const + _blocked(_highs(), S, T, BLOCK, make)


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


MODEL_OPTIONS = {"LP1": {}, "KoR8": {},
                 "LP3": {"initial_keys": "proportional", "tolerance": 0.1,
                         "deviation_price": 0.001}}


def run_recopt(path, model="LP1") -> float:
    from recopt.solve import solve

    r = solve(path, model, **MODEL_OPTIONS[model])
    assert r.attrs["status"] == "optimal", r.attrs["status"]
    return float(r.attrs["objective"])


WORKERS = {("recopt", "LP1"): run_recopt, ("matrix", "LP1"): run_matrix,
           ("linopy", "LP1"): run_linopy,
           ("recopt", "LP3"): lambda p: run_recopt(p, "LP3"), ("matrix", "LP3"): run_matrix_lp3,
           ("recopt", "KoR8"): lambda p: run_recopt(p, "KoR8"),
           ("matrix", "KoR8"): run_matrix_kor8}


def worker(name: str, path: str) -> None:
    t0 = time.perf_counter()
    contestant, model = name.split(":")
    objective = WORKERS[(contestant, model)](path)
    print(json.dumps({"objective": objective, "inner_seconds": time.perf_counter() - t0}))


# --------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------
#: Start-up: the command of issue 19 and the floors it is measured against (imports
#: only: what any process that loads xarray + Pyomo (+ HiGHS) pays on this machine;
#: the last one adds what xarray's first Variable pulls in when Dask is installed
#: (dask.array -> scipy.sparse) and what Pyomo's import hook then adds (scipy.stats)).
STARTUP = {
    "recopt_cli": ["-m", "recopt.solve", "instances/villena_test_case_1.nc", "--model", "LP1"],
    "floor_xarray_pyomo": ["-c", "import xarray, pyomo.environ"],
    # what LP1's command imports at the least (xarray, Pyomo, HiGHS), nothing run
    "floor_xarray_pyomo_highspy": ["-c", "import xarray, pyomo.environ, highspy"],
    "floor_xarray_pyomo_highspy_first_variable": [
        "-c", "import xarray as xr, pyomo.environ, highspy, numpy as np; "
              "xr.DataArray(np.zeros(1))"],
    # the same without Pyomo: what an LP1 path that never imports Pyomo would pay
    # (dask.array and scipy.sparse still come, scipy.stats does not)
    "floor_xarray_highspy_load_no_pyomo": [
        "-c", "import xarray as xr, highspy; "
              "xr.load_dataset('instances/villena_test_case_1.nc')"],
    # LP1's command at the least since Pyomo loads on first use (recopt.lazy): xarray
    # with its Dask tests deferred (recopt.data), HiGHS, and reading the instance
    "floor_recopt_data_xarray_highspy_load": [
        "-c", "import recopt.data, xarray as xr, highspy; "
              "xr.load_dataset('instances/villena_test_case_1.nc')"],
}


def cached_bytecode_env(root: Path) -> dict:
    """The environment of the start-up processes: bytecode cached, as a default Python
    has it after a package's first import (pip compiles site-packages on install; an
    editable checkout writes ``__pycache__`` on first run). Without this, a shell with
    ``PYTHONDONTWRITEBYTECODE=1`` recompiles recopt's sources in every process
    (0.15-0.3 s here). recopt is compiled once, before the timed runs."""
    compileall.compile_dir(str(root / "recopt"), quiet=1)
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def startup(rec, repeats: int) -> list[dict]:
    """Interleaved whole-process runs of :data:`STARTUP`; medians."""
    root = Path(__file__).resolve().parents[1]
    env = cached_bytecode_env(root)
    rec.add({"kind": "startup_environment", "bytecode": "cached",
             "python": sys.version.split()[0]})
    runs: dict[str, list[dict]] = {k: [] for k in STARTUP}
    for k in range(repeats):
        for name in (list(STARTUP) if k % 2 == 0 else list(STARTUP)[::-1]):
            r = one_process(name, None, argv=STARTUP[name], cwd=root, env=env)
            r.update(kind="startup", repeat=k)
            rec.add(r)
            runs[name].append(r)
            print(f"startup {name:<42} wall {r['wall']:.2f} s cpu {r['cpu']:.2f} s "
                  f"load {r['load_before']:.1f}", file=sys.stderr)
    out = []
    for name, rs in runs.items():
        out.append({"kind": "startup_summary", "command": name,
                    "wall": statistics.median(r["wall"] for r in rs),
                    "cpu": statistics.median(r["cpu"] for r in rs),
                    "failed": sum(r["returncode"] != 0 for r in rs)})
        rec.add(out[-1])
    return out


SLEXT_MODELS = ("SLExt", "SLCpct")


def slext_vs_slcpct(rec, days_list, repeats: int, tmp: str) -> list[dict]:
    """Whole processes ``python -m recopt.solve FILE --model SLExt|SLCpct`` at 10 actors
    x ``days``, interleaved; medians, the ratio SLCpct / SLExt and the objectives."""
    root = Path(__file__).resolve().parents[1]
    out = []
    for days in days_list:
        path = Path(tmp) / f"loops_10x{days}.nc"
        subprocess.run([sys.executable, "-m", "recopt.generate", "--actors", "10", "--days",
                        str(days), "--seed", "0", "-o", str(path)], check=True,
                       capture_output=True, cwd=root)
        runs: dict[str, list[dict]] = {m: [] for m in SLEXT_MODELS}
        for k in range(repeats):
            for m in (SLEXT_MODELS if k % 2 == 0 else SLEXT_MODELS[::-1]):
                r = one_process(f"cli:{m}", None, cwd=root, argv=[
                    "-m", "recopt.solve", str(path), "--model", m])
                r.update(kind="slext_run", days=days, model=m, repeat=k)
                r.update(_summary_numbers(r.pop("stdout", "")))
                rec.add(r)
                runs[m].append(r)
                print(f"{days} d {m:<7} wall {r['wall']:.2f} s cpu {r['cpu']:.2f} s "
                      f"load {r['load_before']:.1f} obj {r.get('objective')} "
                      f"build {r.get('build')} solve {r.get('solve')}", file=sys.stderr)
        med = {m: {"wall": statistics.median(r["wall"] for r in rs),
                   "cpu": statistics.median(r["cpu"] for r in rs),
                   "build": statistics.median(r.get("build", math.nan) for r in rs),
                   "solve": statistics.median(r.get("solve", math.nan) for r in rs),
                   "objective": rs[0].get("objective", math.nan),
                   "failed": sum(r["returncode"] not in (0, 3) for r in rs)}
               for m, rs in runs.items()}
        a, b = med["SLCpct"], med["SLExt"]
        summary = {"kind": "slext_summary", "days": days, "medians": med,
                   "ratio_wall": a["wall"] / b["wall"], "ratio_cpu": a["cpu"] / b["cpu"],
                   "objective_rel_diff": abs(a["objective"] - b["objective"])
                   / max(1.0, abs(a["objective"]))}
        rec.add(summary)
        out.append(summary)
    return out


def mlcolext_runs(rec, workers_list, repeats: int, tmp: str, actors: int = 100,
                  days: int = 180, cluster: int = 0) -> list[dict]:
    """Whole processes ``python -m recopt.solve FILE --model MLColExt --option
    enumeration=maximal --workers W`` on the clustered ``actors`` x ``days`` instance,
    the settings interleaved; medians per setting. With ``cluster`` > 0 a setting
    ``"dask"`` runs the same command with ``--scheduler`` on a LocalCluster of that
    many one-thread worker processes (started once, for all repeats)."""
    if cluster:
        import distributed
        with distributed.LocalCluster(n_workers=cluster, threads_per_worker=1,
                                      processes=True, dashboard_address=":0") as lc:
            return _mlcolext_runs(rec, [*workers_list, "dask"], repeats, tmp, actors,
                                  days, lc.scheduler_address)
    return _mlcolext_runs(rec, workers_list, repeats, tmp, actors, days, None)


def _mlcolext_runs(rec, settings, repeats, tmp, actors, days, address) -> list[dict]:
    root = Path(__file__).resolve().parents[1]
    path = Path(tmp) / f"loops_{actors}x{days}.nc"
    subprocess.run([sys.executable, "-m", "recopt.generate", "--actors", str(actors),
                    "--days", str(days), "--seed", "0", "-o", str(path)], check=True,
                   capture_output=True, cwd=root)
    runs: dict = {w: [] for w in settings}
    for k in range(repeats):
        for w in (settings if k % 2 == 0 else settings[::-1]):
            where = (["--scheduler", address] if w == "dask" else ["--workers", str(w)])
            r = one_process(f"cli:MLColExt:workers={w}", None, cwd=root, argv=[
                "-m", "recopt.solve", str(path), "--model", "MLColExt", "--option",
                "enumeration=maximal", *where])
            r.update(kind="mlcolext_run", actors=actors, days=days, workers=w, repeat=k)
            r.update(_summary_numbers(r.pop("stdout", "")))
            rec.add(r)
            runs[w].append(r)
            print(f"MLColExt {actors}x{days} workers {w} wall {r['wall']:.2f} s cpu "
                  f"{r['cpu']:.2f} s load {r['load_before']:.1f} obj {r.get('objective')} "
                  f"build {r.get('build')} solve {r.get('solve')} "
                  f"rss {r['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    out = []
    for w, rs in runs.items():
        summary = {"kind": "mlcolext_summary", "actors": actors, "days": days, "workers": w,
                   "wall": statistics.median(r["wall"] for r in rs),
                   "cpu": statistics.median(r["cpu"] for r in rs),
                   "build": statistics.median(r.get("build", math.nan) for r in rs),
                   "solve": statistics.median(r.get("solve", math.nan) for r in rs),
                   "objectives": [r.get("objective", math.nan) for r in rs],
                   "load": [r["load_before"] for r in rs],
                   "failed": sum(r["returncode"] not in (0, 3) for r in rs)}
        rec.add(summary)
        out.append(summary)
    return out


def _summary_numbers(text: str) -> dict:
    """Objective, build and solve seconds from the CLI's summary lines."""
    got: dict = {}
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["objective"] and len(words) > 1:
            got["objective"] = float(words[1].replace(",", ""))
        if words[:1] == ["time"]:
            for key in ("build", "solve"):
                if key in words:
                    got[key] = float(words[words.index(key) + 1])
    return got


def one_process(name: str, path: Path | None, argv=None, cwd=None, env=None) -> dict:
    """One whole process of contestant ``name`` (``"recopt:LP1"``, ...) on ``path``
    (or of ``python *argv``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    cmd = [sys.executable, *argv] if argv else [sys.executable, __file__, "--worker", name,
                                                str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rec = {"contestant": name, "wall": wall, "cpu": cpu, "load_before": load,
           "returncode": out.returncode,
           "peak_rss_mib": (after.ru_maxrss / 1024)}
    if out.returncode == 0 and not argv:
        rec.update(json.loads(out.stdout.strip().splitlines()[-1]))
    elif out.returncode in (0, 3):  # a command: its summary (optimal / within a gap)
        rec["stdout"] = out.stdout
    else:
        rec["error"] = out.stderr[-2000:]
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["LP1:2880x100"],
                    help="MODEL:TxU (LP1, LP3, KoR8)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--contestants", nargs="+", default=list(CONTESTANTS))
    ap.add_argument("--startup", type=int, default=0, metavar="N",
                    help="also time the start-up command and its floors N times")
    ap.add_argument("--slext", type=int, nargs="+", default=[], metavar="DAYS",
                    help="also time SLExt against SLCpct (10 actors) at these horizons")
    ap.add_argument("--slext-repeats", type=int, default=3)
    ap.add_argument("--mlcolext", type=int, nargs="+", default=[], metavar="WORKERS",
                    help="also time MLColExt 100x180 maximal with these --workers settings")
    ap.add_argument("--mlcolext-repeats", type=int, default=3)
    ap.add_argument("--mlcolext-cluster", type=int, default=0, metavar="N",
                    help="also run MLColExt through --scheduler on a LocalCluster of N "
                    "workers")
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
    starts = startup(rec, args.startup) if args.startup else []
    with tempfile.TemporaryDirectory() as tmp:
        mlcol = (mlcolext_runs(rec, args.mlcolext, args.mlcolext_repeats, tmp,
                               cluster=args.mlcolext_cluster)
                 if args.mlcolext or args.mlcolext_cluster else [])
        slext = slext_vs_slcpct(rec, args.slext, args.slext_repeats, tmp)
        for size in args.sizes:
            model, dims = size.split(":")
            T, U = (int(x) for x in dims.lower().split("x"))
            path = Path(tmp) / f"community_{T}x{U}.nc"
            if not path.exists():
                save(synthetic_community(U, T, seed=0), path)
            contestants = [c for c in args.contestants if (c, model) in WORKERS]
            runs: dict[str, list[dict]] = {c: [] for c in contestants}
            for k in range(args.repeats):
                order = contestants if k % 2 == 0 else contestants[::-1]
                for c in order:
                    r = one_process(f"{c}:{model}", path)
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
            for m in med.values():
                m["objective_rel_diff"] = abs(m["objective"] - ref) / max(1.0, abs(ref))
                ok &= m["failed"] == 0 and not m["objective_rel_diff"] > 1e-7
            summary = {"kind": "summary", "size": size, "medians": med}
            rec.add(summary)
            rows.append(summary)
    print("| model T x U | contestant | wall s | CPU s | wall / matrix | CPU / matrix | "
          "objective rel. diff |\n|---|---|---|---|---|---|---|")
    for s in rows:
        base = s["medians"].get("matrix")
        for c, m in s["medians"].items():
            rw = m["wall"] / base["wall"] if base else math.nan
            rc = m["cpu"] / base["cpu"] if base else math.nan
            print(f"| {s['size']} | {c} | {m['wall']:.2f} | {m['cpu']:.2f} | {rw:.2f} | "
                  f"{rc:.2f} | {m['objective_rel_diff']:.1e} |")
    if starts:
        print("\n| start-up command | wall s | CPU s |\n|---|---|---|")
        for st in starts:
            print(f"| {st['command']} | {st['wall']:.2f} | {st['cpu']:.2f} |")
    if slext:
        print("\n| days | SLExt wall / CPU s | SLCpct wall / CPU s | SLCpct / SLExt (wall, CPU) "
              "| SLExt build / solve s | objective rel. diff |\n|---|---|---|---|---|---|")
        for sl in slext:
            e, c = sl["medians"]["SLExt"], sl["medians"]["SLCpct"]
            print(f"| {sl['days']} | {e['wall']:.2f} / {e['cpu']:.2f} | {c['wall']:.2f} / "
                  f"{c['cpu']:.2f} | {sl['ratio_wall']:.2f}, {sl['ratio_cpu']:.2f} | "
                  f"{e['build']:.2f} / {e['solve']:.2f} | {sl['objective_rel_diff']:.1e} |")
            ok &= e["failed"] == 0 and c["failed"] == 0
    if mlcol:
        print("\n| MLColExt 100x180 maximal | wall / CPU s | build / solve s | objectives "
              "| load |\n|---|---|---|---|---|")
        objectives = [o for m in mlcol for o in m["objectives"]]
        spread = (max(objectives) - min(objectives)) / max(1.0, abs(objectives[0]))
        ok &= spread <= 1e-4  # the same optimum within the Benders gap (default 1e-4)
        for m in mlcol:
            where = ("--scheduler (LocalCluster)" if m["workers"] == "dask"
                     else f"--workers {m['workers']}")
            print(f"| {where} | {m['wall']:.2f} / {m['cpu']:.2f} | "
                  f"{m['build']:.2f} / {m['solve']:.2f} | "
                  f"{', '.join(f'{o:.2f}' for o in m['objectives'])} | "
                  f"{min(m['load']):.1f}-{max(m['load']):.1f} |")
            ok &= m["failed"] == 0
        print(f"objectives' relative spread over all settings: {spread:.1e}")
    print(f"records: {rec.path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
