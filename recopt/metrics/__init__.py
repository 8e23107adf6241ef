"""Metrics shared by every model and key family.

* :mod:`recopt.metrics.community` -- allocation-key metrics (SCR, SSR, savings,
  Gini, energy to shift, CO2, ...), per scenario and across scenarios;
* :mod:`recopt.metrics.loops` -- loop-design KPIs (Chasseray et al. section 4.3).
"""

from recopt.metrics.community import covered_consumption, self_sufficiency
from recopt.metrics.loops import kpi_summary, loop_kpis, plot_loops, standalone_cost

__all__ = [
    "covered_consumption", "self_sufficiency", "loop_kpis", "kpi_summary", "plot_loops",
    "standalone_cost",
]
