"""A stated tie-break for the repartition-key LPs: a lexicographic second stage.

LP1-LP3 (de Villena et al., IEEE Access 2022, doi:10.1109/ACCESS.2022.3191804,
eqs (8)-(28)) and KoR8 (Mustika et al., Applied Energy 2022,
doi:10.1016/j.apenergy.2021.118484, eq. (45)) minimise the *collective* bill. Their
optimum is often not unique: at a step where members have the same prices, any split
of the shared energy among them is optimal (de Villena's test case 1, period 2: the
paper's 0.15/0.17, or 0.21/0.11, or 0.09/0.23 by formulation and solver). The
collective bill is the same, the members' bills are not. The tie-break fixes the
collective optimum and picks one of the optimal allocations by a stated rule:

``"proportional"`` (stage 2): keep the stage-1 objective ``F`` within
``F* + tolerance * max(1, |F*|)`` and minimise the L1 distance of the community
intake ``v`` to the proportional intake ``v° = C+ min(1, G / sum C+)`` (every member
covered in the same proportion of its net consumption), plus, where producers sell
freely (LP1-LP3 ``producer_sales="free"``), of the local sales ``y`` to the pro-rata
sales ``y° = P- min(1, sum C+ / G)``::

    min  sum |v - v°| + sum |y - y°|    s.t. the model's constraints, F <= F* (1 + tol)

Units: kWh for the distances, the model's objective unit (EUR) for ``F``. The
second stage is an LP; its optimum is unique wherever the proportional target is
reachable or the distance has a unique minimiser, which covers the cases where the
first stage is indifferent among members of equal prices (tested: two formulations
and two HiGHS methods give identical bills on de Villena's test case 1). Model card:
``models/LP1-LP3.md`` ("Tie-break").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from recopt.errors import ModelError
from recopt.lazy import pyomo_module
from recopt.models.options import Option

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")

__all__ = ["TIE_BREAKS", "TIE_BREAK_TOLERANCE", "TIE_BREAK_OPTIONS", "proportional_targets",
           "add_proportional_tie_break", "check_tie_break", "without_tie_break"]

#: Tie-break rules (``"none"``: the solver's vertex, as before).
TIE_BREAKS = ("none", "proportional")
#: Relative slack on the stage-1 optimum kept by stage 2.
TIE_BREAK_TOLERANCE = 1e-9


#: The options every tie-breakable model takes (the builder never sees them).
TIE_BREAK_OPTIONS = (
    Option("tie_break", str, "none",
           "'proportional': a second, lexicographic stage keeps the optimum and picks the "
           "allocation closest (L1) to proportional intake, so members' bills do not "
           "depend on the solver's vertex; 'none': the solver's vertex",
           choices=TIE_BREAKS),
    Option("tie_break_tolerance", float, TIE_BREAK_TOLERANCE,
           "relative slack on the stage-1 optimum kept by the tie-break stage"),
)


def without_tie_break(build: Callable) -> Callable:
    """The builder ``build`` called without the tie-break options."""
    names = {o.name for o in TIE_BREAK_OPTIONS}

    def wrapped(instance, **options):
        return build(instance, **{k: v for k, v in options.items() if k not in names})

    wrapped.__doc__ = build.__doc__
    wrapped.__name__ = getattr(build, "__name__", "build")
    return wrapped


def check_tie_break(rule: str) -> str:
    """``rule`` if it is one of :data:`TIE_BREAKS`, else a :class:`ModelError`."""
    if rule not in TIE_BREAKS:
        raise ModelError(f"tie_break must be one of {', '.join(TIE_BREAKS)}; got {rule!r}")
    return rule


def proportional_targets(net_consumption: np.ndarray, net_production: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``v° = C+ min(1, G / sum C+)`` and ``y° = P- min(1, sum C+ / G)``, kWh per step."""
    cp = np.asarray(net_consumption, dtype=float)
    pm = np.asarray(net_production, dtype=float)
    need = cp.sum(axis=-1)
    G = pm.sum(axis=-1)
    shared = np.minimum(need, G)
    fv = np.divide(shared, need, out=np.zeros_like(need), where=need > 0)
    fy = np.divide(shared, G, out=np.zeros_like(G), where=G > 0)
    return cp * fv[..., None], pm * fy[..., None]


def add_proportional_tie_break(m: pyo.ConcreteModel, best: float, intake: pyo.Var,
                               intake_index: Sequence, intake_target: np.ndarray,
                               sales: pyo.Var | None = None, sales_index: Sequence = (),
                               sales_target: np.ndarray | None = None,
                               tolerance: float = TIE_BREAK_TOLERANCE) -> None:
    """Turn a solved model into the tie-break's second stage (module docstring).

    ``best`` is the stage-1 optimum of ``m.objective`` (minimised); ``intake`` /
    ``sales`` the model's community intake and local-sales variables on
    ``intake_index`` / ``sales_index`` ((scenario, step, member) tuples, in the
    variables' order) with targets ``v°`` / ``y°`` shaped (scenario, step, member).
    Adds ``keep_optimum`` (F <= F* + tol max(1, |F*|)), the deviations
    ``tie_break_deviation`` (>= |x - x°|, two rows each: ``tie_break_above`` /
    ``tie_break_below``) and the objective ``tie_break_objective``.
    """
    pairs = [(intake[i], float(intake_target[i])) for i in intake_index]
    if sales is not None and sales_target is not None:
        pairs += [(sales[j], float(sales_target[j])) for j in sales_index]
    stage1 = m.objective.expr
    m.objective.deactivate()
    m.keep_optimum = pyo.Constraint(
        expr=stage1 <= best + tolerance * max(1.0, abs(best)),
        doc="tie-break stage 2: the stage-1 objective at its optimum F* (+ tolerance)")
    m.TIE_BREAK = pyo.RangeSet(0, len(pairs) - 1) if pairs else pyo.Set(initialize=[])
    m.tie_break_deviation = pyo.Var(m.TIE_BREAK, bounds=(0.0, None),
                                    doc="|x - x°|: distance to the proportional target, kWh")
    m.tie_break_above = pyo.Constraint(
        m.TIE_BREAK, rule=lambda m, k: pairs[k][0] - m.tie_break_deviation[k] <= pairs[k][1],
        doc="x - x° <= d")
    m.tie_break_below = pyo.Constraint(
        m.TIE_BREAK, rule=lambda m, k: -pairs[k][0] - m.tie_break_deviation[k] <= -pairs[k][1],
        doc="x° - x <= d")
    m.tie_break_objective = pyo.Objective(
        expr=pyo.quicksum(m.tie_break_deviation[k] for k in m.TIE_BREAK),
        sense=pyo.minimize,
        doc="tie-break stage 2: min L1 distance to the proportional intake / sales, kWh")
