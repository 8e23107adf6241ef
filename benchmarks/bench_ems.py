"""Benchmark Stage 1 of Mustika's two-stage method (EMS1-EMS4) and the 4 x 10 grid.

Measures (nothing is gated on time; every record is one JSON line in
``benchmarks/results/ems_<UTC timestamp>.jsonl``, the first describing the machine):

1. EMS3 / EMS4 on the shipped Le Cailar-like case (1488 steps x 7 members) through
   :func:`recopt.solve.solve`, end to end, with the build / compile / solve split,
   ``--repeats`` times. EMS3 also with ``complementarity=report`` (the LP alone: its
   optimum burns surplus in simultaneous charge/discharge, so the default then solves
   the exact MILP, capped by ``--milp-time-limit``). Target: <= 2 s.
2. EMS4 with the lexicographic penalty on a synthetic community of ``--members`` members
   (40 % with a 5 kW / 10 kWh battery, 20 % with an 11 kW / 40 kWh EV), hourly, for each
   horizon of ``--horizons`` days (the issue's target is one year: 100 x 8760 <= 60 s,
   <= 4 GiB); peak RSS sampled.
3. EMS1 / EMS2 over ``--years`` bootstrap years x 8760 h x 14 members (the NumPy core
   :func:`recopt.ems.rules.run_rules`, in chunks of ``--chunk`` scenarios so that memory
   stays bounded); target <= 20 s.
4. All EMS x KoR1-KoR10 (40 combinations) on the shipped case with
   :func:`recopt.solve.two_stage.run_two_stage`; target <= 30 s.
5. ``days`` (only when asked: ``--skip shipped,large,rules,grid --days``): an evaluation
   of a day-block decomposition of EMS3's exact MILP (complementarity by binaries) on
   the shipped case. Blocks run from one day's first step with PV to the next; per
   block a lower bound (block MILP with free boundary SoC: a relaxation, as the full
   problem restricted to the block is feasible for it) and an upper bound (boundary
   SoC fixed at SoC_min, so the stitched blocks are feasible for the full MILP), each
   capped at ``--block-time-limit``; sum LB = sum UB would prove the stitched schedule
   optimal.

    nice -n 10 python benchmarks/bench_ems.py            # see --help for sizes
    nice -n 10 python benchmarks/bench_ems.py --quick
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from recopt.bench.record import CpuAccount, PeakMemory, Recorder, log, machine_info
from recopt.data import load, make_instance
from recopt.ems.rules import Battery, run_rules
from recopt.ems.storage import PowerData, StorageUnits
from recopt.generate.synthetic import synthetic_community
from recopt.models.ems import build
from recopt.solve import solve
from recopt.solve.two_stage import run_two_stage
from recopt.solvers.dispatch import solve_pyomo

HERE = Path(__file__).resolve().parent

SHIPPED = HERE.parent / "instances" / "le_cailar_march.nc"
SPLIT = ("build_seconds", "compile_seconds", "solve_seconds", "extract_seconds")


def timed(rec, section, case, fn, **extra):
    gc.collect()
    with CpuAccount() as cpu, PeakMemory(0.05) as mem:
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
    r = dict(section=section, case=case, wall_seconds=wall, peak_rss_bytes=mem.peak,
             cpu_own=cpu.own, cpu_foreign=cpu.foreign, loadavg=cpu.loadavg, **extra)
    attrs = getattr(out, "attrs", {})
    for k in (*SPLIT, "status", "objective", "stages", "milp", "n_variables",
              "n_constraints", "n_integer", "gap", "variation"):
        if k in attrs:
            r[k] = attrs[k]
    rec.add(r)
    log(f"{section} {case}: {wall:.2f} s" + "".join(
        f", {k.split('_')[0]} {r[k]:.2f}" for k in SPLIT if k in r)
        + (f", {r['status']}" if "status" in r else "") + f", peak {mem.peak / 2**30:.2f} GiB")
    return out, r


def big_community(members: int, days: int, seed: int = 0):
    base = synthetic_community(members, 24 * days, step_hours=1.0, start="2023-01-01",
                               seed=seed, prices="flat")
    rng = np.random.default_rng(seed)
    U = members
    order = rng.permutation(U)
    bat = np.zeros(U)
    ev = np.zeros(U)
    bat[order[: int(0.4 * U)]] = 1
    ev[order[int(0.4 * U): int(0.6 * U)]] = 1
    hours = base["time"].to_index().hour
    away = (hours >= 8) & (hours < 18)
    avail = np.ones((24 * days, U), bool)
    avail[np.ix_(away, ev > 0)] = False
    return make_instance(
        base["consumption"], base["production"],
        price_grid_buy=base["price_grid_buy"], price_grid_sell=base["price_grid_sell"],
        price_community_buy=base["price_community_buy"],
        price_community_sell=base["price_community_sell"],
        battery={"power_kw": 5.0 * bat, "energy_kwh": 10.0 * bat, "soc_min": 10,
                 "efficiency": 0.95},
        ev={"power_kw": 11.0 * ev, "energy_kwh": 40.0 * ev, "soc_min": 20,
            "efficiency": 0.95},
        # Mustika's LP has no curtailment: a subscription below a member's PV peak is
        # infeasible (18), so each member subscribes 12 kW or 1.2 x its own peak
        ev_available=avail, subscribed_power_kw=np.maximum(12.0, 1.2 * np.maximum(
            base["consumption"].max(("scenario", "time")).values,
            base["production"].max(("scenario", "time")).values)),
        attrs={"storage_efficiency_convention": "round_trip"})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--members", type=int, default=100)
    p.add_argument("--horizons", default="30,91", help="days, comma-separated (365: a year)")
    p.add_argument("--years", type=int, default=500)
    p.add_argument("--chunk", type=int, default=50)
    p.add_argument("--milp-time-limit", type=float, default=60.0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--target-only", action="store_true",
                   help="shipped section: only the two cases with the <= 2 s target (EMS4, "
                        "EMS3 complementarity=report)")
    p.add_argument("--penalty-only", action="store_true",
                   help="large section: only EMS4 with the lexicographic penalty (the target)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="large section: time limit of each solve, s")
    p.add_argument("--full-lp", action="store_true",
                   help="large section: the array path on the full LP (not the projection "
                        "onto the storage; recopt.decomp.ems.PROJECTED off), for pairing")
    p.add_argument("--skip", default="", help="sections to skip: shipped,large,rules,grid")
    p.add_argument("--days", action="store_true",
                   help="also section 5: EMS3's MILP by day blocks (LB / UB per block)")
    p.add_argument("--block-time-limit", type=float, default=20.0)
    p.add_argument("--ems3-option", action="append", default=[], metavar="NAME=VALUE",
                   help="grid section: an option of EMS3 (e.g. room_cuts=true, "
                        "mode_start=true); repeatable")
    p.add_argument("--mode-start", action="store_true",
                   help="also section 6: a C6-feasible start for EMS3's MILP from the "
                        "room-cut relaxation (modes fixed: an LP), then the MILP from it")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.members, args.horizons, args.years = 1, 20, "7", 20
    skip = set(args.skip.split(","))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    rec = Recorder(HERE / "results" / f"ems_{stamp}.jsonl")
    rec.add({"machine": machine_info(), "args": vars(args)})
    inst = load(SHIPPED)

    if "shipped" not in skip:
        cases = [("EMS4", {}), ("EMS3", {"complementarity": "report"}),
                 ("EMS4", {"penalty": "lexicographic"})]
        for model, opts in cases[:2] if args.target_only else cases:
            walls = []
            for r in range(args.repeats):
                _, row = timed(rec, "shipped", f"{model} {opts}", lambda m=model, o=opts:
                               solve(inst, m, **o), repeat=r)
                walls.append(row["wall_seconds"])
            log(f"shipped {model} {opts}: median {statistics.median(walls):.2f} s")
        if not args.target_only:
            timed(rec, "shipped", "EMS3 default (fix: exact MILP)", lambda: solve(
                inst, "EMS3", time_limit=args.milp_time_limit))

    if "large" not in skip:
        if args.full_lp:
            import recopt.decomp.ems as staged

            staged.PROJECTED = False
        for days in (int(d) for d in args.horizons.split(",")):
            big = big_community(args.members, days)
            timed(rec, "large", f"EMS4 lexicographic penalty {args.members} x {24 * days} h",
                  lambda b=big: solve(b, "EMS4", penalty="lexicographic",
                                      time_limit=args.time_limit),
                  members=args.members, steps=24 * days, projected=not args.full_lp)
            if not args.penalty_only:
                timed(rec, "large", f"EMS4 no penalty {args.members} x {24 * days} h",
                      lambda b=big: solve(b, "EMS4", time_limit=args.time_limit),
                      members=args.members, steps=24 * days, projected=not args.full_lp)
            del big

    if "rules" not in skip:
        year = synthetic_community(14, 8760, step_hours=1.0, start="2023-01-01", seed=1)
        rng = np.random.default_rng(1)
        bat_members = {"power_kw": np.where(np.arange(14) % 3 == 0, 5.0, 0.0)}
        year = make_instance(
            year["consumption"], year["production"], price_grid_buy=0.2,
            price_grid_sell=0.05, price_community_buy=0.1, price_community_sell=0.08,
            time=year["time"].values,
            battery={**bat_members, "energy_kwh": 2 * bat_members["power_kw"],
                     "soc_min": 10, "efficiency": 0.95})
        pw = PowerData.from_instance(year)
        bat = Battery.of(StorageUnits.from_instance(year, kinds=("battery",)), 14)
        for community in (False, True):
            def run(c=community):
                for start in range(0, args.years, args.chunk):
                    n = min(args.chunk, args.years - start)
                    # bootstrap years: each scenario resamples whole days of the base year
                    days = rng.integers(0, 365, size=(n, 365))
                    idx = (days[:, :, None] * 24 + np.arange(24)).reshape(n, -1)
                    load_kw = pw.load_kw[0][idx]
                    pv_kw = pw.pv_kw[0][idx]
                    run_rules(load_kw, pv_kw, bat, 1.0, c)
            timed(rec, "rules", f"{'EMS2' if community else 'EMS1'} {args.years} years x "
                  f"8760 h x 14", run, years=args.years)

    if "grid" not in skip:
        keys = ("KoR1", "KoR2", "KoR3", "KoR4", "KoR5", "KoR6", "KoR7", "KoR8", "KoR9",
                "KoR10")
        ems3 = {k: v.lower() in ("1", "true", "yes") for k, v in
                (o.split("=", 1) for o in args.ems3_option)}
        out, row = timed(rec, "grid", "EMS1-EMS4 x KoR1-KoR10", lambda: run_two_stage(
            inst, keys=keys, time_limit=args.milp_time_limit, mip_gap=1e-3,
            ems_options={"EMS3": ems3} if ems3 else None), ems3_options=ems3)
        sec = {str(k): v for k, v in out.seconds.items()}
        stage1 = {e: {k: sch.attrs[k] for k in ("status", "objective", "bound", "gap",
                                                 "complementarity_violations",
                                                 "mode_start_start_objective")
                      if k in sch.attrs} for e, sch in out.schedules.items()}
        rec.add({"section": "grid", "case": "split", "seconds": sec, "stage1": stage1,
                 "table3": out.table3().to_pandas().round(2).to_dict()})
        if "EMS3" in stage1:
            log(f"grid: EMS3 {stage1['EMS3']}")
        log("grid: " + ", ".join(f"{k} {v:.2f}" for k, v in sec.items()
                                 if not k.startswith("(")))
    if args.days:
        ems3_day_blocks(rec, inst, args.block_time_limit)
    if args.mode_start:
        ems3_mode_start(rec, inst, args.milp_time_limit)
    log(f"records in {rec.path}")
    return 0


def ems3_day_blocks(rec, inst, time_limit: float) -> None:
    """Section 5: EMS3's exact MILP by day blocks, a lower and an upper bound per block."""
    inst = inst.isel(scenario=[0])
    units = StorageUnits.from_instance(inst)
    peak = PowerData.from_instance(inst).peak_load_kw[0]
    pv = PowerData.from_instance(inst).pv_kw[0].sum(axis=1)
    per_day = int(round(24 / float(inst.attrs["time_step_hours"])))
    T = pv.size
    cuts = [0] + [d * per_day + int(np.flatnonzero(pv[d * per_day:(d + 1) * per_day] > 0)[0])
                  if (pv[d * per_day:(d + 1) * per_day] > 0).any() else d * per_day
                  for d in range(1, T // per_day)] + [T]

    def block(a, b, first, last, fixed):
        m = build(inst.isel(time=slice(a, b)), ems="EMS3", binaries=True)
        for var in m.grid_import.values():  # (19) uses the whole horizon's peak load
            var.setub(float(peak[var.index()[0]]))
        m.soc_initial.deactivate()
        m.soc_final.deactivate()
        for k, (n, j) in enumerate(m.UNITS):
            if first:
                m.soc[n, j, 0].fix(float(units.soc_init[k]))
            elif fixed:
                m.soc[n, j, 0].fix(float(units.soc_min[k]))
            if last:
                m.soc[n, j, b - a].setlb(float(units.soc_init[k]))
            elif fixed:
                m.soc[n, j, b - a].fix(float(units.soc_min[k]))
        t0 = time.perf_counter()
        out = solve_pyomo(m, solver="highs", mip_gap=1e-6, time_limit=time_limit)
        return out, time.perf_counter() - t0

    totals = {"lb": 0.0, "ub": 0.0, "seconds": 0.0}
    t_all = time.perf_counter()
    for i in range(len(cuts) - 1):
        a, b = cuts[i], cuts[i + 1]
        first, last = i == 0, i == len(cuts) - 2
        lo, s_lo = block(a, b, first, last, fixed=False)
        up, s_up = block(a, b, first, last, fixed=True)
        row = dict(section="days", case=f"EMS3 block {a}-{b}", lb=lo.bound, ub=up.objective,
                   lb_status=lo.status.value, ub_status=up.status.value,
                   lb_seconds=s_lo, ub_seconds=s_up)
        rec.add(row)
        totals["lb"] += lo.bound
        totals["ub"] += up.objective
        log(f"days {a}-{b}: LB {lo.bound:.4f} ({lo.status.value}, {s_lo:.1f} s), "
            f"UB {up.objective:.4f} ({up.status.value}, {s_up:.1f} s)")
    totals["seconds"] = time.perf_counter() - t_all
    rec.add({"section": "days", "case": "EMS3 day blocks total", "blocks": len(cuts) - 1,
             **totals})
    log(f"days: {len(cuts) - 1} blocks, sum LB {totals['lb']:.3f} kWh, sum UB "
        f"{totals['ub']:.3f} kWh, {totals['seconds']:.1f} s")


def ems3_mode_start(rec, inst, time_limit: float) -> None:
    """Section 6: a primal heuristic for EMS3's exact MILP (binaries + ``room_cuts``).

    1. The MILP's LP relaxation with the C6 room cuts (a valid lower bound on f1).
    2. Modes: each (unit, step) takes the direction of the relaxation's net power; at a
       step where k >= 2 units both charge and discharge, one of them (rotating with the
       step) discharges and the other k - 1 charge, so the burning moves *across* units,
       which C6 allows; a lone overlapping unit charges.
    3. The binaries fixed at these modes: an LP whose optimum is feasible for the MILP
       (C6 is re-checked on it): an upper bound.
    4. The MILP from that start (HiGHS ``setSolution``), capped at ``time_limit``.
    """
    import pyomo.environ as pyo

    inst = inst.isel(scenario=[0])
    dt = float(inst.attrs["time_step_hours"])
    m = build(inst, ems="EMS3", binaries=True, room_cuts=True)
    units = list(m.UNITS)

    def flows():
        c = np.array([[m.charge[n, j, t].value for (n, j) in units] for t in m.STEPS])
        d = np.array([[m.discharge[n, j, t].value for (n, j) in units] for t in m.STEPS])
        return c, d

    t0 = time.perf_counter()
    for v in m.charging.values():
        v.domain = pyo.UnitInterval
    relax = solve_pyomo(m, solver="highs")
    t_relax = time.perf_counter() - t0
    c, d = flows()
    b_relax = np.array([[m.charging[n, j, t].value for (n, j) in units] for t in m.STEPS])
    eps = 1e-6
    overlap = (c > eps) & (d > eps)
    mode = np.where(c > d + eps, 1, np.where(d > c + eps, 0, (b_relax >= 0.5).astype(int)))
    for t in range(len(mode)):
        idx = np.flatnonzero(overlap[t])
        if len(idx) >= 2:
            for k, u in enumerate(np.roll(idx, t)):
                mode[t, u] = int(k != 0)
        elif len(idx) == 1:
            mode[t, idx[0]] = 1
    for v in m.charging.values():
        v.domain = pyo.Binary
    for t in m.STEPS:
        for k, (n, j) in enumerate(units):
            m.charging[n, j, t].fix(int(mode[t, k]))
    fixed = solve_pyomo(m, solver="highs")
    t_fixed = time.perf_counter() - t0
    c, d = flows()
    c6 = int(((c * dt > 1e-6) & (d * dt > 1e-6)).sum())
    for v in m.charging.values():
        v.unfix()
    left = max(1.0, time_limit - (time.perf_counter() - t0))
    milp = solve_pyomo(m, solver="highs", mip_gap=1e-3, time_limit=left, warm_start=True)
    t_all = time.perf_counter() - t0
    c, d = flows()
    c6_milp = int(((c * dt > 1e-6) & (d * dt > 1e-6)).sum())
    row = dict(section="mode_start", case="EMS3 mode start + MILP (room cuts)",
               relaxation_bound=relax.objective, relaxation_seconds=t_relax,
               relaxation_overlaps=int(overlap.sum()),
               start_objective=fixed.objective, start_status=fixed.status.value,
               start_c6_violations=c6, start_seconds=t_fixed,
               milp_objective=milp.objective, milp_bound=milp.bound,
               milp_status=milp.status.value, milp_c6_violations=c6_milp,
               wall_seconds=t_all, loadavg=list(__import__("os").getloadavg()))
    rec.add(row)
    log(f"mode start: relaxation {relax.objective:.3f} kWh ({t_relax:.1f} s), start "
        f"{fixed.objective:.3f} kWh (C6 violations {c6}, {t_fixed:.1f} s), MILP "
        f"{milp.objective:.3f} / bound {milp.bound:.3f} ({milp.status.value}, C6 {c6_milp}), "
        f"{t_all:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
