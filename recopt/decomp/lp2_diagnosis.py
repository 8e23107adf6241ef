"""Why LP2 is infeasible: the highest uniform minimum SSR attainable.

de Villena et al.'s LP2 adds a minimum self-sufficiency rate per member (eq. (20))
to LP1; when it is infeasible the runner calls the diagnosis registered here, which
solves :func:`recopt.models.repartition.build_max_uniform_ssr` and says how far
``min_ssr`` must come down (model card ``models/LP1-LP3.md``).
"""

from __future__ import annotations

import xarray as xr

from recopt.decomp.registry import register_diagnosis
from recopt.models.repartition import build_max_uniform_ssr, min_ssr_vector
from recopt.solvers.dispatch import solve_pyomo


def max_uniform_min_ssr(instance: xr.Dataset, solver: str = "highs", **solve_kw) -> float:
    """Largest ``s`` such that every member can reach ``ssr_i >= s`` (LP1 feasible set).

    NaN when the LP is not solved.
    """
    m = build_max_uniform_ssr(instance)
    out = solve_pyomo(m, solver, **solve_kw)
    return float(m.z.value) if out.has_solution else float("nan")


@register_diagnosis("lp2_max_uniform_ssr")
def explain_lp2(instance: xr.Dataset, solver: str, **options) -> tuple[str, dict]:
    """The message and attrs of an infeasible LP2."""
    z = max_uniform_min_ssr(instance, solver)
    ssr_min = min_ssr_vector(instance, options.get("min_ssr", 0.0))
    return (
        f"LP2 is infeasible: the minimum SSR asked (up to {ssr_min.max():.2%}) cannot be "
        f"reached by every member; the highest uniform minimum SSR attainable on this "
        f"instance is {z:.4%} (de Villena eq. (20)). Lower min_ssr to at most that.",
        {"max_uniform_min_ssr": z},
    )
