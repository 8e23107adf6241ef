"""Chasseray et al.'s loop-design MILPs: SLCpct, MLCpct and MLCol.

Source: Chasseray, Besançon, Lorca, Petitdemange, "Optimisation models for the design of
multiple self-consumption loops in semi-rural areas" (arXiv:2404.04428), Models 1, 7,
8-9; reconstructed formulas in ``docs/reconstruction/loop-design.md``; model card
``models/SLCpct-MLCpct-MLCol.md``.

* :mod:`.data` — :class:`LoopData` (net energies, prices, graph) from an instance;
* :mod:`.build` — the Pyomo builders, assembled from first-stage, second-stage and
  linking pieces shared with the Benders decompositions;
* :mod:`.solution` — extraction onto the instance's dims and :func:`check_solution`;
* :mod:`.enumeration` — the neighbourhood graph and the loop (clique) enumeration.

Registered as ``SLCpct``, ``MLCpct``, ``MLCol`` (family ``loops``), and ``SLExt``,
``MLColExt``, whose Benders algorithm is :mod:`recopt.decomp.loop_benders`.
"""

from __future__ import annotations

import math

import xarray as xr

from recopt.metrics.loops import kpi_summary, loop_kpis
from recopt.models.loops.build import (
    ROW_FORMS,
    add_column_choice,
    add_column_rules,
    add_operation,
    add_single_loop_design,
    add_single_loop_rules,
    build_mlcol,
    build_mlcpct,
    build_slcpct,
    column_arcs,
    fixed_columns,
    fixed_single_loop,
    loop_set,
    surplus_of_loops,
)
from recopt.models.loops.data import METRICS, LoopData, distance_matrix
from recopt.models.loops.enumeration import DEFAULT_MAX_LOOPS, STRATEGIES
from recopt.models.loops.solution import (
    check_solution,
    loops_of_columns,
    loops_of_compact,
    objective_of,
    operation_arrays,
    solution_dataset,
)
from recopt.models.options import Option, Tuning
from recopt.models.registry import ModelSpec, register

CARD = "models/SLCpct-MLCpct-MLCol.md"

__all__ = [
    "LoopData", "distance_matrix", "build_slcpct", "build_mlcpct", "build_mlcol",
    "add_operation", "add_single_loop_design", "add_single_loop_rules", "add_column_choice",
    "add_column_rules", "fixed_single_loop", "fixed_columns", "column_arcs", "loop_set",
    "surplus_of_loops", "check_solution", "objective_of", "loop_data", "builder", "extract",
    "derive", "COMMON_OPTIONS", "BENDERS_OPTIONS", "BENDERS_CUTS", "MASTER_TUNING",
    "GENERATION_OPTIONS",
]


#: Options of ``enumeration=generate`` (column generation, MLCol and MLColExt).
GENERATION_OPTIONS = (
    Option("exact_pricing", bool, True,
           "enumeration=generate: prove with the pricing MILP that no loop pays (else stop "
           "when the greedy pricing finds nothing; the bound is then weaker)"),
    Option("branch_and_price", bool, False,
           "enumeration=generate: Ryan-Foster branch-and-price to the proven optimum "
           "(default: price-and-branch, the integer master over the generated loops)"),
    Option("stabilisation", float, 0.0,
           "enumeration=generate: Wentges dual smoothing factor in [0, 1) (0: off)"),
    Option("columns_per_round", int, 40,
           "enumeration=generate: at most this many loops enter per round"),
    Option("master_solver", str, "split",
           "enumeration=generate: the restricted master LP solved whole (full) or "
           "by a time-block Benders split into small warm step LPs (split)",
           choices=("full", "split")),
)


def loop_data(instance: xr.Dataset, *, self_consumption: bool = True,
              distance: str = "auto", **_ignored) -> LoopData:
    """:class:`LoopData` of ``instance`` for the given model options."""
    return LoopData.of(instance, self_consumption=self_consumption, distance=distance)


def builder(kind: str):
    """The build function of ``SLCpct``, ``MLCpct`` or ``MLCol``."""

    def build(instance: xr.Dataset, *, self_consumption: bool = True, distance: str = "auto",
              enumeration: str = "all", max_loops: int = DEFAULT_MAX_LOOPS,
              rows: str = "aggregated", internal_price: float = math.nan, **_generation):
        d = loop_data(instance, self_consumption=self_consumption, distance=distance)
        if kind == "SLCpct":
            m = build_slcpct(d)
        elif kind == "MLCpct":
            m = build_mlcpct(d)
        else:
            m = build_mlcol(d, loop_set(d, enumeration, max_loops), rows)
        m.recopt_data = d
        return m

    return build


def extract(model, instance: xr.Dataset, **options) -> xr.Dataset:
    d: LoopData = model.recopt_data
    if model.name == "MLCol":
        loops, surplus = loops_of_columns(model, d)
    else:
        loops, surplus = loops_of_compact(model, d)
    f, gb, gs = operation_arrays(model, d)
    sol = solution_dataset(instance, d, loops, surplus, f, gb, gs)
    sol.attrs["n_graph_edges"] = len(d.edges)
    if model.name == "MLCol":
        sol.attrs["n_enumerated_loops"] = len(model.recopt_loops)
    return sol


def derive(instance: xr.Dataset, solution: xr.Dataset, **options) -> xr.Dataset:
    kpis = loop_kpis(instance, solution, self_consumption=options.get("self_consumption", True),
                     internal_price=options.get("internal_price"))
    out = xr.merge([solution, kpis], compat="override", join="outer", combine_attrs="drop")
    out.attrs.update(solution.attrs)
    out.attrs.update(kpis.attrs)
    text = kpi_summary(out)
    if "n_enumerated_loops" in solution.attrs:
        text += (f"\ncolumns    {solution.attrs['n_enumerated_loops']} enumerated loops "
                 f"({options.get('enumeration', 'all')})")
    out.attrs["summary_text"] = text
    return out


COMMON_OPTIONS = (
    Option("self_consumption", bool, True,
           "force individual self-consumption (work on net values Ĉ, P̂); false: raw C, P"),
    Option("distance", str, "auto",
           "distance metric: km (x_km, y_km), haversine (lat, lon) or auto (km if present)",
           choices=METRICS),
    Option("internal_price", float, math.nan,
           "price of internal flows for the per-actor benefit KPIs, EUR/kWh (default: "
           "midpoint of mean grid buy and sell prices); not in the objective"),
)

#: HiGHS's presolve costs far more than it saves on MLCol's many-column MIPs: generator
#: instance 15 actors x 7 days (seed 0, 2743 loops): solve 11.6 / 10.7 s with presolve
#: off vs 73 / 92 s on (alternating runs, load ~7); 10 actors (437 loops): 4.3 vs 9.8 s.
MLCOL_TUNING = Tuning(presolve=False)

register(ModelSpec(
    name="SLCpct", game="loop",
    description="Chasseray Model 1: one self-consumption loop (membership, loop status, "
                "flows; distance and power rules)",
    family="loops", build=builder("SLCpct"), extract=extract, derive=derive,
    separable=None, options=COMMON_OPTIONS, card=CARD,
))
register(ModelSpec(
    name="MLCpct", game="loop",
    description="Chasseray Model 7: up to n/2 disjoint loops, compact (pair variables, "
                "symmetry breaking)",
    family="loops", build=builder("MLCpct"), extract=extract, derive=derive,
    separable=None, options=COMMON_OPTIONS, card=CARD,
))
register(ModelSpec(
    name="MLCol", game="loop",
    description="Chasseray Models 8-9: choice among enumerated feasible loops "
                "(Dantzig-Wolfe columns; loop status from data)",
    family="loops", build=builder("MLCol"), extract=extract, derive=derive,
    separable=None, tuning=MLCOL_TUNING,
    options=COMMON_OPTIONS + (
        Option("enumeration", str, "all",
               "all: every feasible loop (exact, = MLCpct); maximal: the paper's maximal "
               "cliques from producers, split over the power cap; generate: column "
               "generation (loops priced in from the LP duals, models/"
               "MLCol-column-generation.md)", choices=STRATEGIES + ("generate",)),
        Option("max_loops", int, DEFAULT_MAX_LOOPS,
               "refuse when the enumeration makes more loops than this"),
        Option("rows", str, "aggregated",
               "(9d)/(9e): aggregated, one row per (scenario, step, member) (default, same "
               "integer solutions, tighter, smaller) or per_loop (the spec's form)",
               choices=ROW_FORMS),
    ) + GENERATION_OPTIONS,
    algorithm="mlcol_colgen", algorithm_if=(("enumeration", "generate"),),
    card=CARD,
))

# SLExt and MLColExt: Benders decompositions of SLCpct and MLCol, solved by the
# algorithm "loop_benders" (recopt.decomp.loop_benders)
BENDERS_CUTS = ("multi", "daily", "aggregated")
BENDERS_OPTIONS = (
    Option("cuts", str, "aggregated",
           "aggregated: one θ, one cut per iteration (default: fastest measured, see "
           "the card); daily: one per scenario and day; multi: one per (scenario, "
           "step), the paper's multi-cut", choices=BENDERS_CUTS),
    Option("pareto", bool, False,
           "Magnanti-Wong Pareto-optimal cuts (a second sub-problem solve per iteration)"),
    Option("max_iterations", int, 500, "Benders iteration limit"),
    Option("reduce", bool, True,
           "leave out the (scenario, step) blocks where no flow is possible (their "
           "cost is the standalone cost for every design; exact, see the card)"),
)
#: HiGHS options for the Benders master MILPs (the user's ``--solver-option`` override
#: them). Presolve off: 10 actors x 180 days (seed 0), master time over 3 iterations
#: 2.4 s with it off vs 5.3 s on; 90 days 0.9 vs 1.8 s (same iterations and optimum).
MASTER_TUNING = Tuning(presolve=False)
BENDERS_CARD = "models/SLExt-MLColExt.md"

register(ModelSpec(
    name="SLExt", game="loop",
    description="Chasseray Models 3-5: Benders decomposition of SLCpct (master: "
                "membership and loop status; one LP block per scenario and step)",
    family="loops", algorithm="loop_benders", options=COMMON_OPTIONS + BENDERS_OPTIONS,
    card=BENDERS_CARD,
))
register(ModelSpec(
    name="MLColExt", game="loop",
    description="Chasseray Models 10-11: Benders decomposition of MLCol (master: loop "
                "choices; one LP block per scenario and step)",
    family="loops", algorithm="loop_benders",
    options=COMMON_OPTIONS + BENDERS_OPTIONS + (
        Option("enumeration", str, "all",
               "all: every feasible loop (exact); maximal: the paper's maximal cliques; "
               "generate: the loops column generation prices in (its LP bound is the "
               "Result's bound)", choices=STRATEGIES + ("generate",)),
        Option("max_loops", int, DEFAULT_MAX_LOOPS,
               "refuse when the enumeration makes more loops than this"),
        Option("rows", str, "aggregated", "(9d)/(9e) row form (see MLCol)",
               choices=ROW_FORMS),
    ) + tuple(o for o in GENERATION_OPTIONS if o.name != "branch_and_price"),
    card=BENDERS_CARD,
))
