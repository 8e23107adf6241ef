"""The builders are composed from named pieces, as the cards say: LP2 = LP1 + (20),
LP3 = LP1 with initial keys and deviation (21)-(28), KoR9/KoR10 = KoR8's flows with
bills per period and (46) / (47)."""

from __future__ import annotations

from pathlib import Path

import pyomo.environ as pyo
import pytest

from recopt.data import load
from recopt.models import kor, repartition

INSTANCE = Path(__file__).resolve().parents[1] / "instances" / "villena_test_case_1.nc"


@pytest.fixture(scope="module")
def inst():
    return load(INSTANCE)


def _components(m):
    return {c.local_name for c in m.component_objects(descend_into=False)}


def test_lp2_is_lp1_plus_min_ssr(inst):
    lp1 = repartition.build_lp1(inst)
    lp2 = repartition.build_lp2(inst, min_ssr=0.2)
    assert _components(lp2) - _components(lp1) == {
        "SSR_MEMBERS", "CONSUMING_STEPS", "own_coverage", "ssr_target", "no_intake", "min_ssr"}
    assert _components(lp1) <= _components(lp2)
    assert len(lp2.min_ssr) > 0


def test_lp3_adds_initial_keys_and_deviation(inst):
    lp1 = repartition.build_lp1(inst, formulation="paper")
    lp3 = repartition.build_lp3(inst, tolerance=0.1)
    assert _components(lp3) - _components(lp1) == {
        "K", "deviation_up", "deviation_down", "allocation_above_initial",
        "allocation_below_initial", "deviation_cost"}


def test_kor_models_share_their_pieces(inst):
    k8, k9, k10 = (kor.build_kor8(inst), kor.build_kor9(inst), kor.build_kor10(inst))
    flows = {"MEMBERS", "STEPS", "CONSUMERS", "CONSUMERS_AT", "community_intake",
             "self_consumption", "collective_self_consumption"}
    assert flows <= _components(k8) and flows <= _components(k9) and flows <= _components(k10)
    assert "equal_saving_ratio" in _components(k9) - _components(k10)
    assert "min_saving" in _components(k10) - _components(k9)
    assert kor.build(inst, variant="KoR9").name == "KoR9"


@pytest.mark.parametrize("builder", [repartition.build_lp1, repartition.build_lp2,
                                     repartition.build_lp3, kor.build_kor8, kor.build_kor9,
                                     kor.build_kor10])
def test_every_component_has_a_doc(inst, builder):
    m = builder(inst)
    missing = [c.local_name for c in m.component_objects((pyo.Set, pyo.Param, pyo.Var,
                                                           pyo.Constraint, pyo.Expression,
                                                           pyo.Objective), descend_into=False)
               if not c.doc and not c.local_name.endswith("_index")]
    assert not missing, f"{builder.__name__}: no doc= on {missing}"
