"""The lexicographic tie-break of LP1-LP3 and KoR8: members' bills independent of the
formulation and of the solver's method (de Villena's test case 1, where LP1's optimum
is not unique)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recopt.data import load
from recopt.errors import ModelError
from recopt.solve import solve

VILLENA = Path(__file__).resolve().parents[1] / "instances" / "villena_test_case_1.nc"
SETTINGS = [("projected", "simplex"), ("projected", "ipm"), ("paper", "simplex"),
            ("paper", "ipm")]


def bills(model, tie_break, **options):
    inst = load(VILLENA)
    out = []
    for form, method in SETTINGS:
        kw = {"formulation": form} if model in ("LP1", "LP2") else {}
        r = solve(inst, model, tie_break=tie_break, solver_options={"solver": method},
                  **kw, **options)
        assert r.attrs["status"] == "optimal"
        out.append((r.attrs["objective"], r["bill"].values.copy(), r))
    return out


def test_lp1_bills_depend_on_the_vertex_without_the_tie_break():
    runs = bills("LP1", "none")
    objectives = [o for o, _, _ in runs]
    assert max(objectives) - min(objectives) < 1e-9  # the collective optimum is unique
    spread = max(np.abs(b - runs[0][1]).max() for _, b, _ in runs)
    assert spread > 1e-3  # ... members' bills are not (what the tie-break is for)


@pytest.mark.parametrize("model", ["LP1", "LP2", "LP3", "KoR8"])
def test_tie_break_gives_identical_bills_for_every_formulation_and_method(model):
    plain = bills(model, "none")[0][0]
    runs = bills(model, "proportional")
    for objective, bill, r in runs:
        assert objective == pytest.approx(plain, rel=1e-7, abs=1e-9)  # optimum kept
        np.testing.assert_allclose(bill, runs[0][1], atol=1e-7)
        assert r.attrs["tie_break"] == "proportional" and r.attrs["solves"] == 2


def test_tie_break_picks_the_allocation_closest_to_proportional():
    inst = load(VILLENA)
    r = solve(inst, "LP1", tie_break="proportional")
    # among LP1's optima, period 2's two consumers are covered as evenly as possible
    # (the L1 distance to C+ min(1, G / sum C+) is the reported tie-break distance)
    assert r.attrs["tie_break_distance_kwh"] >= 0.0
    cin = r["community_intake"].isel(scenario=0).values
    net = np.maximum(inst.consumption.values[0] - inst.production.values[0], 0)
    share = np.divide(cin, net, out=np.zeros_like(cin), where=net > 0)
    t = 1
    users = np.flatnonzero(net[t] > 0)
    assert np.ptp(share[t, users]) == pytest.approx(0.0, abs=1e-9)


def test_unknown_tie_break_is_refused():
    with pytest.raises(ModelError, match="tie_break"):
        solve(load(VILLENA), "LP1", tie_break="coin")
