"""Regional catalogues: hand-computed Flemish and Brussels rules, shares sources."""

import numpy as np
import pytest

from recopt.errors import ModelError
from recopt.keys.catalogues import REGIONS, catalogue, specific_shares
from recopt.keys.rules import KeyInputs, make_plan, settle_plan

# one step: A, B, C consume [0.5, 1.0, 3.5], D injects 3 kWh; specific shares
# [0.4, 0.1, 0.1, 0.4]
C_PLUS = np.array([[[0.5, 1.0, 3.5, 0.0]]])
P_MINUS = np.array([[[0.0, 0.0, 0.0, 3.0]]])
SHARES = np.array([0.4, 0.1, 0.1, 0.4])


def take(region, name):
    inp = KeyInputs(C_PLUS, P_MINUS)
    cand = {c.name: c for c in catalogue(region)}[name]
    return settle_plan(inp, cand.build(inp, SHARES))["comm_in"][0, 0]


def test_flemish_rules_hand_computed():
    # vaste: offers [1.2, .3, .3, 1.2] -> takes [.5, .3, .3, 0]
    np.testing.assert_allclose(take("flanders", "vaste (specific)"), [0.5, 0.3, 0.3, 0])
    # relatieve: leftover 1.9 re-shared once among unsaturated B, C pro rata .1/.1:
    # .95 each, B needs only .7 more -> [.5, 1.0, 1.25, 0] (0.25 kWh exported)
    np.testing.assert_allclose(take("flanders", "relatieve (specific)"), [0.5, 1.0, 1.25, 0])
    # optimale: redistribution until consumed: weighted water-filling -> C gets the rest
    np.testing.assert_allclose(take("flanders", "optimale (specific)"), [0.5, 1.0, 1.5, 0])
    # equal variants: vaste 3/4 each; optimale (equal) = cascade: A .5, B 1, C 1.5
    np.testing.assert_allclose(take("flanders", "vaste (equal)"), [0.5, 0.75, 0.75, 0])
    np.testing.assert_allclose(take("flanders", "optimale (equal)"), [0.5, 1.0, 1.5, 0])
    inp = KeyInputs(C_PLUS, P_MINUS)
    np.testing.assert_allclose(take("flanders", "optimale (equal)"),
                               settle_plan(inp, make_plan(inp, "CA"))["comm_in"][0, 0])


def test_brussels_rules_hand_computed():
    # fixed multi-round: round 2 as relatieve, round 3 hands the last 0.25 to C
    np.testing.assert_allclose(take("brussels", "fixed multi-round specific"),
                               [0.5, 1.0, 1.5, 0])
    # hybrid: equal .75 capped at need -> [.5, .75, .75, 0]; leftover .25 (A) + .75 (D)
    # = 1.0 pro rata of the remaining need [0, .25, 2.75, 0] (sum 3)
    np.testing.assert_allclose(take("brussels", "hybrid"),
                               [0.5, 0.75 + 0.25 / 3.0, 0.75 + 2.75 / 3.0, 0])
    np.testing.assert_allclose(take("brussels", "prorata"), 3 * C_PLUS[0, 0] / 5.0)


def test_wallonia_catalogue_and_regions():
    assert [c.name for c in catalogue("Wallonie")] == [
        "egalitarian fixed", "specific fixed", "dynamic consumption prorata"]
    assert set(REGIONS) == {"wallonia", "brussels", "flanders"}
    with pytest.raises(ModelError, match="unknown region"):
        catalogue("luxembourg")


def test_specific_shares_sources():
    inp = KeyInputs(np.array([[[1.0, 3.0]]]), np.array([[[0.0, 0.0]]]))
    s, src = specific_shares(inp)
    np.testing.assert_allclose(s, [0.25, 0.75])
    assert "consumption" in src
    inp.member_data["investment"] = np.array([300.0, 100.0])
    s, src = specific_shares(inp)
    np.testing.assert_allclose(s, [0.75, 0.25])
    assert src == "investment"
    s, src = specific_shares(inp, [0.5, 0.2])
    assert src == "given"
    with pytest.raises(ModelError):
        specific_shares(inp, [0.9, 0.2])
