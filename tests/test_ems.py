"""Stage 1 of Mustika et al. (2022): EMS1-EMS4, checks C1-C11 of models/EMS1-EMS4.md.

Default tests run on the first two days of the shipped Le Cailar-like instance (96
half-hours, 7 houses, 3 batteries, 1 EV) and on tiny hand-made instances; the whole
month is behind ``slow``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from recopt.data import load, make_instance
from recopt.ems.rules import ems1, ems2
from recopt.ems.stage2 import (
    check_schedule,
    complementarity_violations,
    grid_scr,
    grid_ssr,
    stage2_instance,
)
from recopt.ems.storage import StorageUnits
from recopt.keys.rules import settle_key
from recopt.models import build
from recopt.solve import solve

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "instances" / "le_cailar_march.nc"
TOL = 1e-6


@pytest.fixture(scope="module")
def month():
    return load(SHIPPED)


@pytest.fixture(scope="module")
def two_days(month):
    return month.isel(time=slice(0, 96))


@pytest.fixture(scope="module")
def schedules(two_days):
    out = {"EMS1": ems1(two_days), "EMS2": ems2(two_days)}
    for name in ("EMS3", "EMS4"):
        out[name] = solve(two_days, name)
        assert out[name].attrs["status"] == "optimal", out[name].attrs["message"]
    return out


def _total(s, name):
    return float(s[name].sum())


# ---------------------------------------------------------------------------------------
# C1-C4: balances, storage dynamics, limits
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("ems", ["EMS1", "EMS2", "EMS3", "EMS4"])
def test_c1_c3_member_balance_and_storage_dynamics(two_days, schedules, ems):
    c = check_schedule(two_days, schedules[ems])
    assert c["balance"] < TOL  # C1
    assert c["meter_complementarity"] == 0
    for key in ("soc_dynamics", "soc_initial", "energy_identity", "ev_away_power"):
        assert c[key] < TOL, key  # C3
    assert c["soc_bounds"] < TOL and c["power_bounds"] < TOL
    if ems in ("EMS3", "EMS4"):
        assert c["soc_final"] > -TOL  # (24) as printed
        assert c["subs_import"] < TOL and c["subs_export"] < TOL  # C4 (17)-(18)
        assert c["peak_import"] < TOL  # (19)


def test_c2_community_balance(schedules):
    for ems in ("EMS3", "EMS4"):
        s = schedules[ems]
        np.testing.assert_allclose(s["community_import"].sum("member"),
                                   s["community_export"].sum("member"), atol=TOL)
    assert _total(schedules["EMS1"], "community_import") == 0.0
    e2 = schedules["EMS2"]
    # what EMS2 charges from the community at t never exceeds the injection at t
    assert bool((e2["community_import"].sum("member")
                 <= e2["meter_export"].sum("member") + TOL).all())
    assert _total(e2, "community_import") > 0  # the rule does share on this instance
    # community energy only charges batteries: xi <= battery charge, member by member
    assert bool((e2["community_import"] <= e2["battery_charge"] + TOL).all())


def test_c3_ev_is_idle_while_away_and_soc_held(two_days, schedules):
    s = schedules["EMS4"]
    away = ~two_days["ev_available"].sel(member="house1").values
    assert away.any()
    ch = s["ev_charge"].sel(member="house1").values[0]
    dis = s["ev_discharge"].sel(member="house1").values[0]
    assert np.abs(ch[away]).max() == 0 and np.abs(dis[away]).max() == 0
    soc = s["ev_soc"].sel(member="house1").values[0]
    np.testing.assert_allclose(soc[1:][away], soc[:-1][away], atol=1e-9)


# ---------------------------------------------------------------------------------------
# C5: EMS1 priorities
# ---------------------------------------------------------------------------------------
def test_c5_ems1_rule_priorities(two_days, schedules):
    s = schedules["EMS1"]
    units = StorageUnits.from_instance(two_days, kinds=("battery",))
    dt = two_days.attrs["time_step_hours"]
    for k in range(units.size):
        n = units.member[k]
        soc = s["battery_soc"].values[0, 1:, n]  # after the step (energy-limited: at a bound)
        dis = s["battery_discharge"].values[0, :, n] / dt
        ch = s["battery_charge"].values[0, :, n] / dt
        imports = s["grid_import"].values[0, :, n] > TOL
        could_discharge = (soc > units.soc_min[k] + 1e-6) & (dis < units.power_kw[k] - 1e-6)
        assert not (imports & could_discharge).any()
        exports = s["grid_export"].values[0, :, n] > TOL
        could_charge = (soc < units.soc_max[k] - 1e-6) & (ch < units.power_kw[k] - 1e-6)
        assert not (exports & could_charge).any()
    net = (two_days["consumption"] - two_days["production"]).values
    meter = (s["meter_import"] - s["meter_export"]).values
    without = [i for i in range(two_days.sizes["member"]) if i not in units.member]
    np.testing.assert_allclose(meter[..., without], net[..., without], atol=1e-12)


def test_ems1_ems2_are_deterministic_and_vectorised_over_scenarios(two_days):
    doubled = xr.concat([two_days, two_days], dim="scenario", data_vars="minimal",
                        coords="minimal", compat="override").assign_coords(scenario=["a", "b"])
    doubled["scenario_probability"] = ("scenario", [0.5, 0.5])
    assert doubled["battery_power_kw"].dims == ("member",)
    for rule in (ems1, ems2):
        one, two = rule(two_days), rule(doubled)
        for name in ("meter_import", "meter_export", "battery_soc"):
            np.testing.assert_array_equal(two[name].values[0], one[name].values[0])
            np.testing.assert_array_equal(two[name].values[1], one[name].values[0])
        xr.testing.assert_identical(rule(two_days), one)


# ---------------------------------------------------------------------------------------
# C6: complementarity
# ---------------------------------------------------------------------------------------
def _burner(T=8):
    """Sunny steps, a full small battery: EMS3's LP lowers export by burning in losses."""
    t = pd.date_range("2021-03-01 10:00", periods=T, freq="30min")
    return make_instance(
        np.full((T, 2), 0.25), np.column_stack([np.full(T, 2.0), np.zeros(T)]),
        price_grid_buy=0.13, price_grid_sell=0.065, price_community_buy=0.075,
        price_community_sell=0.07, time=t,
        battery={"power_kw": [3.0, 0.0], "energy_kwh": [2.0, 0.0], "soc_min": 10,
                 "soc_max": 100, "soc_init": 90, "efficiency": 0.9})


def test_c6_simultaneous_charge_discharge_is_never_silently_accepted():
    inst = _burner()
    lp = solve(inst, "EMS3", complementarity="report")
    assert lp.attrs["status"] == "error"
    assert lp.attrs["complementarity_violations"] > 0
    assert "complementarity" in lp.attrs["message"]
    fixed = solve(inst, "EMS3")  # default: fix (here the MILP is needed)
    assert fixed.attrs["status"] == "optimal"
    assert fixed.attrs["milp"] == 1
    assert sum(complementarity_violations(fixed).values()) == 0
    # the LP is a relaxation: its optimum is a lower bound of the exact one
    assert fixed.attrs["objective"] >= lp.attrs["objective"] - TOL
    exact = solve(inst, "EMS3", complementarity="binary")
    assert exact.attrs["objective"] == pytest.approx(fixed.attrs["objective"], abs=1e-6)


@pytest.mark.slow
def test_c6_exact_fix_under_a_time_limit_keeps_a_proven_bound(month):
    """The shipped month needs the MILP; stopped early it still reports a valid bound:
    at least the LP relaxation's f1, at most the incumbent's f1."""
    lp = solve(month, "EMS3", complementarity="report")
    stopped = solve(month, "EMS3", time_limit=6)
    assert stopped.attrs["status"] in ("time_limit", "feasible")
    assert stopped.attrs["milp"] == 1 and stopped.attrs["has_solution"] == 1
    bound, objective = stopped.attrs["bound"], stopped.attrs["objective"]
    assert np.isfinite(bound)
    assert lp.attrs["objective"] - TOL <= bound <= objective + TOL
    assert stopped.attrs["gap"] == pytest.approx(abs(objective - bound) / max(1.0, objective))


def test_c6_shipped_days_have_no_overlap_after_the_fix(schedules):
    for ems in ("EMS3", "EMS4"):
        assert sum(complementarity_violations(schedules[ems]).values()) == 0


# ---------------------------------------------------------------------------------------
# C7: optimality between the EMSs
# ---------------------------------------------------------------------------------------
def test_c7_ems3_exports_least_ems4_imports_least(schedules):
    e3, e4 = schedules["EMS3"], schedules["EMS4"]
    assert _total(e3, "grid_export") <= _total(e4, "grid_export") * (1 + 1e-6) + TOL
    assert _total(e4, "grid_import") <= _total(e3, "grid_import") * (1 + 1e-6) + TOL


def test_c7_lps_beat_every_rule_schedule_feasible_for_them(two_days):
    # SOC_init = SOC_min makes (24) hold for the rules too; then a rule schedule is a
    # feasible LP point whenever (17)-(19) hold, and the LPs must do at least as well
    inst = two_days.copy()
    inst["battery_soc_init"] = inst["battery_soc_min"].copy()
    inst["ev_soc_init"] = inst["ev_soc_min"].copy()
    e3 = solve(inst, "EMS3")
    e4 = solve(inst, "EMS4")
    checked = 0
    for rule in (ems1, ems2):
        s = rule(inst)
        c = check_schedule(inst, s)
        if max(c["subs_import"], c["subs_export"], c["peak_import"]) > TOL or \
                c["soc_final"] < -TOL:
            continue
        checked += 1
        assert e3.attrs["objective"] <= _total(s, "grid_export") * (1 + 1e-6) + TOL
        assert e4.attrs["objective"] <= _total(s, "grid_import") * (1 + 1e-6) + TOL
    assert checked >= 1  # EMS1 is feasible for the LPs here


# ---------------------------------------------------------------------------------------
# C8: penalty behaviour in alpha
# ---------------------------------------------------------------------------------------
def _rho_of(schedule, inst):
    """sum over units of (34), recomputed from the schedule's powers."""
    units = StorageUnits.from_instance(inst)
    dt = inst.attrs["time_step_hours"]
    T = inst.sizes["time"]
    total = 0.0
    for k in range(units.size):
        kind, n = units.kind[k], units.member[k]
        p = (schedule[f"{kind}_discharge"] - schedule[f"{kind}_charge"]).values[0, :, n] / dt
        total += np.abs(np.diff(p)).sum() / (T * units.power_kw[k])
    return total


def test_c8_penalty_monotone_in_alpha_and_f1_unchanged_up_to_a_threshold(two_days):
    inst = two_days.isel(time=slice(12, 40))  # 06:00-20:00 UTC: sun and evening
    base = solve(inst, "EMS4")
    f1, rho = [], []
    for alpha in (1e-4, 1e-2, 1.0, 100.0, 1e4):
        r = solve(inst, "EMS4", penalty="weighted", alpha=alpha)
        assert r.attrs["status"] == "optimal"
        f1.append(r.attrs["objective"])
        rho.append(r.attrs["variation"])
        # Delta P+ + Delta P- = |P_t - P_{t-1}| at the optimum for alpha > 0
        assert r.attrs["variation"] == pytest.approx(_rho_of(r, inst), rel=1e-5, abs=1e-7)
    # (up to the LP tolerance: HiGHS's 1e-7 per row over ~10^3 rows)
    assert all(b >= a - 1e-6 * max(1.0, a) for a, b in zip(f1, f1[1:], strict=False))
    assert all(b <= a + 1e-6 for a, b in zip(rho, rho[1:], strict=False))
    assert f1[0] == pytest.approx(base.attrs["objective"], rel=1e-6)  # below alpha-bar
    assert f1[-1] > base.attrs["objective"] + 1e-3  # a large alpha does cost grid import
    lex = solve(inst, "EMS4", penalty="lexicographic")
    assert lex.attrs["objective"] == pytest.approx(base.attrs["objective"], rel=1e-6)
    assert lex.attrs["variation"] <= rho[0] + 1e-6  # the alpha -> 0+ limit


# ---------------------------------------------------------------------------------------
# C10: Stage 2 on the Stage 1 output
# ---------------------------------------------------------------------------------------
def test_c10_stage2_instance_and_kor8_is_the_best_key(two_days, schedules):
    for ems in ("EMS1", "EMS4"):
        inst2 = stage2_instance(two_days, schedules[ems])
        np.testing.assert_array_equal(inst2["consumption"], schedules[ems]["meter_import"])
        assert inst2.attrs["stage1_ems"] == ems
        bills = {k: float(settle_key(inst2, k)["collective_bill"][0])
                 for k in ("KoR1", "KoR2", "KoR3", "KoR4", "KoR5", "KoR6", "KoR7")}
        base = float(settle_key(inst2, "KoR1")["baseline_collective_bill"][0])
        kor8 = float(solve(inst2, "KoR8")["collective_bill"][0])
        kor9 = float(solve(inst2, "KoR9")["collective_bill"][0])
        kor10 = float(solve(inst2, "KoR10", order="bill_then_fairness")["collective_bill"][0])
        assert all(kor8 <= b + 1e-6 for b in bills.values())
        assert kor9 >= kor8 - 1e-6
        assert kor10 == pytest.approx(kor8, abs=1e-5)
        assert all(b <= base + 1e-6 for b in bills.values())  # community prices are better


def test_headline_arithmetic_of_table_3():
    assert (563 - 497) / 563 == pytest.approx(0.117, abs=5e-4)
    assert (538 - 497) / 538 == pytest.approx(0.076, abs=5e-4)


# ---------------------------------------------------------------------------------------
# C11: units at 15 and 30 min
# ---------------------------------------------------------------------------------------
def _to_15_min(inst):
    """Each 30-min step as two 15-min steps of the same power (energies halved)."""
    t = pd.DatetimeIndex(inst["time"].values)
    t15 = t.repeat(2) + pd.to_timedelta(np.tile([0, 15], t.size), unit="min")
    out = inst.isel(time=np.repeat(np.arange(t.size), 2)).assign_coords(time=t15.values)
    for name in ("consumption", "production"):
        out[name] = out[name] / 2
    out.attrs["time_step_hours"] = 0.25
    return out


def test_c11_units_at_15_and_30_min(two_days, schedules):
    inst = two_days.isel(time=slice(0, 48))
    i15 = _to_15_min(inst)
    s30 = solve(inst, "EMS4")
    s15 = solve(i15, "EMS4")
    # the 30-min optimum, held constant over each half, is feasible at 15 min: the LP
    # there is at least as good, and the piecewise-constant schedule keeps its energies
    # (the complementarity stage may give up lex_tolerance = 1e-7 of f1, relative)
    assert s15.attrs["objective"] <= s30.attrs["objective"] * (1 + 1e-6)
    assert s15.attrs["objective"] == pytest.approx(s30.attrs["objective"], rel=0.05)
    rep = {}
    for name, var in s30.data_vars.items():
        if var.dims == ("scenario", "time", "member"):
            v = var.isel(time=np.repeat(np.arange(inst.sizes["time"]), 2)) / 2
            rep[name] = v.assign_coords(time=i15["time"].values)
    soc = {}
    for kind in ("battery", "ev"):
        s = s30[f"{kind}_soc"].values
        mid = (s[:, :-1] + s[:, 1:]) / 2
        full = np.empty((s.shape[0], 2 * (s.shape[1] - 1) + 1, s.shape[2]))
        full[:, 0::2], full[:, 1::2] = s, mid
        soc[f"{kind}_soc"] = (("scenario", "time_boundary", "member"), full)
    sched15 = xr.Dataset(rep).assign(soc)
    c = check_schedule(i15, sched15)
    assert c["balance"] < TOL and c["soc_dynamics"] < 1e-9 and c["energy_identity"] < 1e-9
    for name in ("grid_import", "grid_export", "battery_charge", "ev_discharge"):
        assert float(sched15[name].sum()) == pytest.approx(float(s30[name].sum()), abs=1e-9)
    # the rules see powers: EMS1 at 15 min on the halved data has the same energies
    # whenever no SoC limit is hit inside a step; the SoC recursion holds at both steps
    for rule in (ems1, ems2):
        assert check_schedule(i15, rule(i15))["soc_dynamics"] < 1e-9


# ---------------------------------------------------------------------------------------
# model, CLI
# ---------------------------------------------------------------------------------------
def test_model_rows_are_named_after_the_equations(two_days):
    m = build("EMS4", two_days, penalty="weighted")
    for name in ("subs_import", "subs_export", "soc_dynamics", "soc_initial", "soc_final",
                 "supply_balance", "demand_balance", "community_balance", "variation",
                 "penalty"):
        assert hasattr(m, name), name
    import pyomo.environ as pyo

    for comp in m.component_objects((pyo.Var, pyo.Constraint, pyo.Param, pyo.Set,
                                     pyo.Objective, pyo.Expression)):
        if comp.local_name in ("UNITS_OF",) or comp.local_name.endswith("_index"):
            continue
        assert comp.doc, comp.local_name
    assert len(m.soc) == 4 * (two_days.sizes["time"] + 1)  # SoC on |T|+1 points


def test_solve_cli_runs_ems3(tmp_path, two_days):
    from recopt.cli.solve import main
    from recopt.data import save

    path = tmp_path / "day.nc"
    save(two_days.isel(time=slice(12, 40)), path)
    assert main([str(path), "--model", "EMS3", "--output", str(tmp_path / "r.nc")]) == 0


def test_two_stage_cli_writes_table_3_and_plots(tmp_path, two_days):
    from recopt.cli.two_stage import main
    from recopt.data import save

    path = tmp_path / "d.nc"
    save(two_days.isel(time=slice(12, 40)), path)
    code = main([str(path), "--ems", "EMS1,EMS4", "--keys", "KoR1,KoR2,KoR8", "--out",
                 str(tmp_path / "out"), "-q", "--no-plots"])
    assert code == 0
    t3 = pd.read_csv(tmp_path / "out" / "table3_collective_bills.csv", index_col=0)
    assert list(t3.index) == ["EMS1", "EMS4"]
    assert (t3["KoR8"] <= t3[["KoR1", "KoR2"]].min(axis=1) + 1e-6).all()
    red = pd.read_csv(tmp_path / "out" / "bill_reductions.csv")
    assert set(red["key"]) == {"KoR1", "KoR2", "KoR8"}


@pytest.mark.vector_copies
def test_storage_schedule_plot(tmp_path, schedules):
    from recopt.metrics.storage_plot import storage_schedule

    path = storage_schedule(schedules["EMS4"], tmp_path / "s.png", days=1)
    assert path.stat().st_size > 10_000 and path.with_suffix(".pdf").exists()
    import os
    import shutil
    if os.environ.get("RECOPT_FIGURES_DIR"):  # keep a copy to look at
        shutil.copy(path, os.path.join(os.environ["RECOPT_FIGURES_DIR"], "storage_EMS4.png"))


# ---------------------------------------------------------------------------------------
# C9: the paper's qualitative findings on the shipped month (slow)
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_c9_qualitative_findings_on_the_shipped_month(month):
    from recopt.solve.two_stage import run_two_stage

    out = run_two_stage(month, keys=("KoR1", "KoR2", "KoR5", "KoR6", "KoR8", "KoR10"),
                        time_limit=120, mip_gap=1e-3)
    s = out.schedules
    assert _total(s["EMS1"], "community_import") == 0.0
    assert _total(s["EMS2"], "grid_import") <= _total(s["EMS1"], "grid_import")
    assert _total(s["EMS2"], "grid_export") <= _total(s["EMS1"], "grid_export")
    scr = {e: float(grid_scr(month, s[e])[0]) for e in s}
    ssr = {e: float(grid_ssr(month, s[e])[0]) for e in s}
    for rule in ("EMS1", "EMS2"):
        for lp in ("EMS3", "EMS4"):
            assert scr[rule] < scr[lp] and ssr[rule] < ssr[lp]
    t3 = out.table3()
    for e in t3["ems"].values:
        row = t3.sel(ems=e)
        assert float(row.sel(column="KoR8")) <= float(row.drop_sel(column="baseline").min()) \
            + 1e-6
        assert (row.drop_sel(column="baseline") < row.sel(column="baseline")).all()


@pytest.mark.parametrize("ems, options", [("EMS4", {}), ("EMS3", {"complementarity": "report"}),
                                          ("EMS3", {})])
def test_fast_path_objective_matches_plain_pyomo_path(two_days, ems, options):
    """Issue 14 speed work: the fast path (templated rows, direct HiGHS, staged solve)
    reaches the objective of the plain path (ordinary Pyomo rows, no templates, solved by
    Pyomo's SolverFactory ``appsi_highs``), i.e. the speed-ups changed no optimum."""
    import pyomo.environ as pyo

    from recopt.solvers.dispatch import solve_pyomo, solver_available

    if not solver_available("appsi_highs"):
        pytest.skip("Pyomo's appsi_highs is not available here")
    fast = solve(two_days, ems, **options)
    from recopt.models.ems import build as build_ems

    plain = build_ems(two_days, ems=ems, templates=False,
                      binaries=options.get("complementarity", "fix") == "fix")
    out = solve_pyomo(plain, "appsi_highs", mip_gap=0.0)
    assert out.has_solution, out.message
    ref = float(pyo.value(plain.first_objective))
    assert fast.attrs["objective"] == pytest.approx(ref, rel=1e-7, abs=1e-6)


# ---------------------------------------------------------------------------------------
# The array assembly of EMS3/EMS4 (the large-instance path) against the Pyomo model
# ---------------------------------------------------------------------------------------
def _pyomo_lp_in_matrix_order(model, M):
    """The Pyomo model's compiled LP (standard-form compiler), columns put in the order
    of :func:`recopt.models.ems.matrix`; rows as canonical sorted tuples."""
    from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

    sf = LinearStandardFormCompiler().write(model, mixed_form=True, set_sense=None)
    T, U, K = M.shape_TUK
    units = list(model.UNITS)

    def position(v):
        comp, i = v.parent_component().name, v.index()
        block = M.columns[comp].start
        if comp in ("grid_import", "grid_export", "community_import", "community_export",
                    "self_consumption"):
            return block + i[0] * T + i[1]
        if comp == "variation_ratio":
            return block + units.index(i)
        k = units.index(i[:2])
        width = {"soc": T + 1, "ramp_up": T - 1, "ramp_down": T - 1}.get(comp, T)
        return block + k * width + i[2] - (comp in ("ramp_up", "ramp_down"))

    perm = np.array([position(v) for v in sf.columns])
    A = sf.A.tocsc()[:, np.argsort(perm)]
    rhs = np.asarray(sf.rhs, float)
    kind = np.array([r.bound_type for r in sf.rows])
    lower = np.where(kind <= 0, rhs, -np.inf)
    upper = np.where(kind >= 0, rhs, np.inf)
    lb = np.array([-np.inf if v.lb is None else v.lb for v in sf.columns])
    ub = np.array([np.inf if v.ub is None else v.ub for v in sf.columns])
    cost = sf.c.toarray().ravel()
    return perm, A, lower, upper, lb, ub, cost


def _canonical_rows(A, lower, upper):
    A = A.tocsr()
    out = []
    for i in range(A.shape[0]):
        lo, hi = A.indptr[i], A.indptr[i + 1]
        order = np.argsort(A.indices[lo:hi])
        out.append((tuple(A.indices[lo:hi][order].tolist()),
                    tuple(np.round(A.data[lo:hi][order], 12).tolist()),
                    float(np.round(lower[i], 9)), float(np.round(upper[i], 9))))
    return sorted(out)


@pytest.mark.parametrize("ems, penalty, final_soc", [
    ("EMS4", "lexicographic", "at_least"), ("EMS3", "weighted", "equal"),
    ("EMS4", "none", "at_least")])
def test_array_assembly_equals_the_compiled_pyomo_model(two_days, ems, penalty, final_soc):
    import pyomo.environ as pyo

    from recopt.models.ems import build as build_ems
    from recopt.models.ems import matrix

    inst = two_days.isel(time=slice(0, 30))
    m = build_ems(inst, ems=ems, penalty=penalty, alpha=0.3, final_soc=final_soc)
    M = matrix(inst, ems=ems, penalty=penalty, alpha=0.3, final_soc=final_soc)
    assert M.A.shape == (len(list(m.component_data_objects(pyo.Constraint))),
                         m.nvariables())
    perm, A, lower, upper, lb, ub, cost = _pyomo_lp_in_matrix_order(m, M)
    assert sorted(perm.tolist()) == list(range(M.A.shape[1]))  # every column, once
    np.testing.assert_array_equal(M.col_lower[perm], lb)
    np.testing.assert_array_equal(M.col_upper[perm], ub)
    np.testing.assert_allclose(M.cost[perm], cost, rtol=1e-12)
    assert _canonical_rows(A, lower, upper) == _canonical_rows(M.A, M.row_lower,
                                                               M.row_upper)


@pytest.mark.parametrize("ems, penalty", [("EMS4", "lexicographic"), ("EMS3", "none"),
                                          ("EMS4", "none")])
def test_array_path_reaches_the_pyomo_paths_objectives(two_days, monkeypatch, ems, penalty):
    import recopt.decomp.ems as staged

    inst = two_days.isel(time=slice(0, 48))
    # the array path's lexicographic stage runs on f1's optimal face (f1 exactly kept),
    # the Pyomo path's keeps f1 <= f1* (1 + lex_tolerance): with the default tolerance
    # the Pyomo path may buy a little rho with f1, so they are compared at 1e-10
    tol = {"lex_tolerance": 1e-10}
    monkeypatch.setattr(staged, "FAST_PATH_CELLS", 10**12)
    plain = solve(inst, ems, penalty=penalty, **tol)
    monkeypatch.setattr(staged, "FAST_PATH_CELLS", 1)
    fast = solve(inst, ems, penalty=penalty, **tol)
    for r in (plain, fast):
        assert r.attrs["status"] == "optimal", r.attrs["message"]
        assert r.attrs["complementarity_violations"] == 0
    assert fast.attrs["objective"] == pytest.approx(plain.attrs["objective"], rel=1e-8,
                                                    abs=1e-6)
    assert fast.attrs["variation"] == pytest.approx(plain.attrs["variation"], rel=1e-6,
                                                    abs=1e-8)
    if penalty == "lexicographic":  # the stage did work: storage moved, rho > 0
        assert fast.attrs["variation"] > 1e-3
    c = check_schedule(inst, fast)
    assert c["balance"] < TOL and c["soc_dynamics"] < TOL and c["peak_import"] < TOL


def test_array_path_face_fallback_keeps_f1(two_days, monkeypatch):
    """If the optimal face were left too large (here: nothing fixed at all), minimising
    sum rho alone would give up f1; the array path then adds the kept row and re-runs,
    reaching the face's result."""
    import recopt.decomp.ems as staged
    from recopt.solvers.highs import HighsStagedLP

    inst = two_days.isel(time=slice(0, 48))
    monkeypatch.setattr(staged, "FAST_PATH_CELLS", 1)
    face = solve(inst, "EMS4", penalty="lexicographic", lex_tolerance=1e-10)
    kept = []
    keep = HighsStagedLP.keep
    monkeypatch.setattr(HighsStagedLP, "optimal_face",
                        lambda self, eps=1e-9: (*self._bounds, 0, 0))
    monkeypatch.setattr(HighsStagedLP, "keep",
                        lambda self, cost, value: (kept.append(value), keep(self, cost, value)))
    loose = solve(inst, "EMS4", penalty="lexicographic", lex_tolerance=1e-10)
    assert len(kept) >= 1  # the fallback ran
    assert loose.attrs["status"] == "optimal", loose.attrs["message"]
    assert loose.attrs["objective"] == pytest.approx(face.attrs["objective"], rel=1e-8)
    assert loose.attrs["variation"] == pytest.approx(face.attrs["variation"], rel=1e-6,
                                                     abs=1e-8)


def test_c6_room_cuts_are_valid_and_tighten_the_relaxation():
    """The SoC-room rows of the MILP hold at every complementary point (the exact MILP
    optimum is the same with and without them) and cut off the LP's burning: the LP
    relaxation of the MILP rises above the plain LP."""
    import pyomo.environ as pyo

    import recopt.models.ems as model_ems
    from recopt.solvers.dispatch import solve_pyomo

    inst = _burner()
    with_cuts = solve(inst, "EMS3", complementarity="binary", room_cuts=True)
    without = solve(inst, "EMS3", complementarity="binary", room_cuts=False)
    assert with_cuts.attrs["status"] == without.attrs["status"] == "optimal"
    assert with_cuts.attrs["objective"] == pytest.approx(without.attrs["objective"],
                                                         abs=1e-6)
    lp = solve(inst, "EMS3", complementarity="report").attrs["objective"]
    assert not hasattr(model_ems.build(inst, ems="EMS3", binaries=True), "charge_room")
    m = model_ems.build(inst, ems="EMS3", binaries=True, room_cuts=True)
    for b in m.charging.values():
        b.domain = pyo.UnitInterval
    relaxed = solve_pyomo(m).objective
    assert lp + 1e-6 < relaxed <= with_cuts.attrs["objective"] + 1e-6


# ---------------------------------------------------------------------------------------
# The LP projected onto the storage (recopt.models.ems.projected_matrix)
# ---------------------------------------------------------------------------------------
def _tight_instance(seed, T=24, U=6):
    """Random small community with tight subscriptions (1-1.3 x each member's largest
    |load - PV|), strong batteries, one EV away for 4 hours, one member without PV."""
    rng = np.random.default_rng(seed)
    sun = np.clip(np.sin((np.arange(T) % 24 - 6) / 12 * np.pi), 0, None)
    cons = rng.uniform(0.2, 2.0, (T, U))
    prod = rng.uniform(0, 1) * sun[:, None] * rng.uniform(0, 5, (1, U)) \
        * rng.uniform(0.5, 1, (T, U))
    prod[:, U - 1] = 0
    bat = np.zeros(U)
    bat[: U // 2] = rng.uniform(2, 6, U // 2)
    ev = np.zeros(U)
    ev[1] = 7
    avail = np.ones((T, U), bool)
    avail[8:12, 1] = False
    return make_instance(
        cons, prod, price_grid_buy=0.2, price_grid_sell=0.05, price_community_buy=0.1,
        price_community_sell=0.08, time=pd.date_range("2023-01-01", periods=T, freq="h"),
        battery={"power_kw": bat, "energy_kwh": 2 * bat + (bat > 0), "soc_min": 10,
                 "efficiency": 0.9, "soc_init": 90},
        ev={"power_kw": ev, "energy_kwh": 30 * (ev > 0), "soc_min": 20, "efficiency": 0.9},
        ev_available=avail,
        subscribed_power_kw=np.maximum(np.abs(cons - prod).max(0)
                                       * rng.uniform(1.0, 1.3, U), 0.5))


def _lp_optimum(M, drop=()):
    from recopt.solvers.highs import HighsStagedLP

    keep = np.ones(M.A.shape[0], bool)
    for name in drop:
        keep[M.rows[name]] = False
    lp = HighsStagedLP(M.A[keep], M.cost, M.col_lower, M.col_upper, M.row_lower[keep],
                       M.row_upper[keep])
    out, x = lp.solve("simplex")
    assert out.status.value == "optimal", out.message
    return float(M.cost @ x) + getattr(M, "first_objective_offset", 0.0), x


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ems", ["EMS3", "EMS4"])
def test_projected_lp_has_the_full_lps_optimum_and_a_feasible_split(seed, ems):
    """The projection onto the storage is exact: same optimum as the full LP of
    :func:`matrix` (f1 + alpha sum rho with a strong weight, so that the storage moves
    against f1 and the limits (17)-(19) matter), and its point rebuilt into every flow
    is a feasible schedule of the full model with that objective."""
    from recopt.models.ems import extract_parts, matrix, projected_matrix

    inst = _tight_instance(seed)
    opts = dict(ems=ems, final_soc="equal", penalty="weighted", alpha=1000.0)
    full, _ = _lp_optimum(matrix(inst, **opts))
    P = projected_matrix(inst, **opts)
    assert P is not None
    proj, x = _lp_optimum(P)
    assert proj == pytest.approx(full, rel=1e-7, abs=1e-6)
    part = P.split(x)
    sched = extract_parts([part], inst, StorageUnits.from_instance(inst), ems)
    c = check_schedule(inst, sched, final_soc="equal")
    for k in ("balance", "soc_dynamics", "peak_import", "subs_import", "subs_export"):
        assert c[k] < TOL, (k, c[k])
    comm = sched["community_import"].sum("member") - sched["community_export"].sum("member")
    assert float(np.abs(comm).max()) < TOL  # (27)
    for name in ("self_consumption", "grid_import", "grid_export", "community_import",
                 "community_export"):
        assert float(sched[name].min()) >= -TOL
    flow = "grid_export" if ems == "EMS3" else "grid_import"
    f1 = float(sched[flow].sum())
    assert f1 + 1000.0 * float(P.variation_total @ x) == pytest.approx(full, rel=1e-7,
                                                                        abs=1e-6)


def test_projected_lp_capacity_rows_matter():
    """The per-step capacity row (sum_n b_n <= sum_n min(L^_n, X_n)) is not decoration:
    without it the projection's optimum is lower than the full LP's on an instance
    where the weighted penalty charges from the grid."""
    from recopt.models.ems import matrix, projected_matrix

    inst = _tight_instance(17)
    opts = dict(ems="EMS3", final_soc="equal", penalty="weighted", alpha=1000.0)
    full, _ = _lp_optimum(matrix(inst, **opts))
    P = projected_matrix(inst, **opts)
    assert _lp_optimum(P)[0] == pytest.approx(full, rel=1e-7)
    assert _lp_optimum(P, drop=("capacity_total",))[0] < full - 1e-3


@pytest.mark.parametrize("seed", [4, 8, 17])
def test_projected_staged_solve_keeps_f1_and_rho(seed, two_days, monkeypatch):
    """The lexicographic solve (f1, then sum rho on f1's optimal face) reaches the same
    f1 and sum rho on the projection as on the full array LP."""
    import recopt.decomp.ems as staged

    monkeypatch.setattr(staged, "FAST_PATH_CELLS", 1)
    for inst in (_tight_instance(seed), two_days.isel(time=slice(0, 48))):
        got = {}
        for projected in (True, False):
            monkeypatch.setattr(staged, "PROJECTED", projected)
            r = solve(inst, "EMS4", penalty="lexicographic", lex_tolerance=1e-10)
            assert r.attrs["status"] == "optimal", r.attrs["message"]
            assert r.attrs["complementarity_violations"] == 0
            got[projected] = (r.attrs["objective"], r.attrs["variation"])
        assert got[True][0] == pytest.approx(got[False][0], rel=1e-8, abs=1e-6)
        assert got[True][1] == pytest.approx(got[False][1], rel=1e-6, abs=1e-8)
        assert got[True][1] > 1e-3  # the stage did work: the storage moved


def test_start_modes_follow_net_power_and_move_burning_across_units():
    from recopt.decomp.ems import start_modes

    c = np.array([[2.0, 0.0, 0.0], [1.0, 1.0, 0.5], [0.0, 3.0, 0.0], [0.4, 0.0, 0.0]])
    d = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    relaxed = np.array([[1.0, 0.0, 0.7], [0.5, 0.5, 0.5], [0.4, 0.5, 0.2], [1.0, 0.3, 0.6]])
    mode = start_modes(c, d, relaxed)
    assert mode[0].tolist() == [1, 0, 1]  # net charge, net discharge, idle: rounded 0.7
    assert sorted(mode[1].tolist()) == [0, 1, 1]  # three burn at once: one discharges
    assert mode[2].tolist() == [0, 1, 0]  # a lone burning unit charges
    assert mode[3].tolist() == [1, 0, 1]
    # the discharging unit rotates with the step
    c3, d3 = np.ones((3, 2)), np.ones((3, 2))
    rot = start_modes(c3, d3, np.full((3, 2), 0.5))
    assert rot[:, 0].tolist() != rot[0, 0].repeat(3).tolist()
    assert (rot.sum(axis=1) == 1).all()


def test_c6_mode_start_is_feasible_and_keeps_the_exact_optimum():
    """The mode start is a schedule of the MILP (so its f1 is at least the optimum, and
    the relaxation's at most): starting from it changes neither the status nor f1."""
    inst = _burner()
    plain = solve(inst, "EMS3", complementarity="binary", room_cuts=True)
    for comp in ("binary", "fix"):
        started = solve(inst, "EMS3", complementarity=comp, room_cuts=True, mode_start=True)
        assert started.attrs["status"] == plain.attrs["status"] == "optimal"
        assert started.attrs["milp"] == (comp == "fix")
        assert started.attrs["objective"] == pytest.approx(plain.attrs["objective"],
                                                           abs=1e-6)
        assert sum(complementarity_violations(started).values()) == 0
        best = started.attrs["objective"]
        assert started.attrs["mode_start_start_objective"] >= best - 1e-6
        assert started.attrs["mode_start_relaxation_bound"] <= best + 1e-6
