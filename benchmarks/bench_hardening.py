"""Hardening figures: the magnitude ladder, the cost of exact LP scaling, the time limit.

Measures, in one process run (see ``docs/robustness.md``):

1. **The magnitude ladder.** For ``--seeds`` random loop instances (the test suite's
   ``random_loop_instance`` recipe: 3-7 actors, 1-3 scenarios, 2-6 steps) and each of
   LP1, MLCol, MLCpct: the optimum with energies multiplied by 1e-9 ... 1e12 against
   the unscaled optimum times the factor (relative error; pass at <= 1e-6); the
   decisions are recorded beside (LP1 keys within 1e-6, loop memberships equal: a
   model with alternative optima may pick another one of the same objective).
2. **The cost of scaling.** :class:`recopt.solvers.highs.LPScaling` (build + apply)
   against Pyomo's standard-form compile of the same model, on MLCpct for a
   Chasseray instance of 30 actors x 7 days (``--actors``, ``--days``), median of
   ``--repeats``.
3. **The wall-clock time limit.** ``python -m recopt.solve INSTANCE --model MLCpct
   --time-limit 10`` on that instance, as a user runs it: the process's wall time
   (``time.perf_counter`` around it) and CPU time (``resource.getrusage`` of the
   child), the Result's wall time and stage split.

Every record goes as one JSON line to ``benchmarks/results/hardening_<UTC stamp>.jsonl``
(the first line describes the machine). Nothing is gated on time; the exit code is 1
when a ladder case fails. The machine is shared: wall times are noisy, CPU times are
given beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import highspy
import numpy as np
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from recopt.bench.record import machine_info
from recopt.data import make_instance, save
from recopt.generate.chasseray import generate
from recopt.models import build
from recopt.solve import solve
from recopt.solvers.highs import LPScaling, row_bounds

RESULTS = Path(__file__).resolve().parent / "results"
FACTORS = (1e-9, 1e-6, 1e-3, 1e3, 1e6, 1e9, 1e12)


def loop_instance(seed: int):
    """The test suite's random loop instance (tests/conftest.py), same recipe."""
    r = np.random.default_rng(seed)
    n, S, T = int(r.integers(3, 8)), int(r.integers(1, 4)), int(r.integers(2, 7))
    prod = r.random(n) < 0.45
    prod[r.integers(n)] = True
    C = np.round(r.uniform(0, 3, (S, T, n)) * (r.random((S, T, n)) < 0.8), 3)
    P = np.round(r.uniform(0, 5, (S, T, n)) * prod * (r.random((S, T, n)) < 0.9), 3)
    buy = {f"m{i}": float(v) for i, v in enumerate(r.uniform(0.15, 0.3, n))}
    sell = {f"m{i}": float(v) for i, v in enumerate(r.uniform(0.02, 0.1, n))}
    return make_instance(
        C, P, price_grid_buy=buy, price_grid_sell=sell, price_community_buy=0.1,
        price_community_sell=0.1, scenario_probability=r.dirichlet(np.ones(S)),
        installed_power=np.round(np.where(prod, r.uniform(1, 5, n), 0.0), 2),
        x_km=r.uniform(0, 3, n), y_km=r.uniform(0, 3, n),
        attrs={"max_distance_km": float(r.uniform(1.0, 2.5)),
               "max_loop_power_kw": float(r.uniform(4, 10))})


def scaled(inst, f: float):
    s = inst.copy()
    s["consumption"] = inst["consumption"] * f
    s["production"] = inst["production"] * f
    return s


def ladder(seeds: int, emit) -> int:
    failures = 0
    for seed in range(seeds):
        inst = loop_instance(seed)
        for model in ("LP1", "MLCol", "MLCpct"):
            base = solve(inst, model, workers=1)
            obj = base.attrs["objective"]
            for f in FACTORS:
                r = solve(scaled(inst, f), model, workers=1)
                rel = abs(r.attrs["objective"] / f - obj) / max(1.0, abs(obj))
                if model == "LP1":
                    same = bool(np.allclose(r["key"], base["key"], atol=1e-6))
                else:
                    same = bool(r["membership"].shape == base["membership"].shape
                                and (r["membership"].values == base["membership"].values).all())
                # decisions are compared for the record; a model with alternative optima
                # (MLCpct) may break a tie otherwise at another scale: the optimum decides
                ok = r.attrs["status"] == "optimal" and rel <= 1e-6
                failures += not ok
                emit({"item": "ladder", "seed": seed, "model": model, "factor": f,
                      "status": r.attrs["status"], "objective_over_factor":
                      r.attrs["objective"] / f, "unscaled_objective": obj,
                      "relative_error": rel, "same_decisions": same, "ok": ok})
    return failures


def _lp_arrays(model):
    sf = LinearStandardFormCompiler().write(model, mixed_form=True, set_sense=None)
    inf = highspy.kHighsInf
    lo = np.array([-inf if v.lb is None else v.lb for v in sf.columns], float)
    up = np.array([inf if v.ub is None else v.ub for v in sf.columns], float)
    mult = np.fromiter((r.bound_type for r in sf.rows), dtype=np.int8, count=len(sf.rows))
    rl, ru = row_bounds(mult, np.asarray(sf.rhs, float))
    integ = np.array([v.is_integer() for v in sf.columns], np.int8)
    return sf, lo, up, rl, ru, integ


def overhead(inst, repeats: int, emit) -> None:
    for f in (1.0, 1e-9):
        model = build("MLCpct", scaled(inst, f))
        compile_s, scale_s = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            sf, lo, up, rl, ru, integ = _lp_arrays(model)
            t1 = time.perf_counter()
            cost = sf.c.toarray().ravel()
            sc = LPScaling(sf.A, cost, lo, up, rl, ru, integ)
            sc.lp(cost, lo, up, rl, ru, 0.0)
            t2 = time.perf_counter()
            compile_s.append(t1 - t0)
            scale_s.append(t2 - t1)
        emit({"item": "scaling_cost", "model": "MLCpct", "factor": f, "nnz": int(sf.A.nnz),
              "compile_median_s": statistics.median(compile_s),
              "scaling_median_s": statistics.median(scale_s),
              "ratio": statistics.median(scale_s) / statistics.median(compile_s),
              "scaled": bool(sc.scaled)})


def time_limit(path: Path, limit: float, emit) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "recopt.solve", str(path), "--model",
                           "MLCpct", "--time-limit", f"{limit:g}"], capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    emit({"item": "time_limit", "model": "MLCpct", "time_limit_s": limit,
          "process_wall_s": wall,
          "process_cpu_s": (after.ru_utime - before.ru_utime)
          + (after.ru_stime - before.ru_stime),
          "exit_code": done.returncode, "summary": done.stdout.strip().splitlines()})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--actors", type=int, default=30)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--time-limit", type=float, default=10.0)
    args = p.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"hardening_{stamp}.jsonl"
    with open(out, "w") as fh:
        def emit(rec):
            fh.write(json.dumps(rec, default=float) + "\n")
            fh.flush()
            if rec["item"] != "ladder" or not rec["ok"]:
                print(json.dumps(rec, default=float))

        emit({"item": "machine", **machine_info(), "argv": sys.argv[1:]})
        failures = ladder(args.seeds, emit)
        print(f"ladder: {args.seeds * 3 * len(FACTORS)} cases, {failures} failed")
        inst = generate(actors=args.actors, days=args.days, seed=0)
        overhead(inst, args.repeats, emit)
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "inst.nc"
            save(inst, path)
            time_limit(path, args.time_limit, emit)
    print(f"records: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 1 if failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
