"""Metrics shared by every model and key family.

* :mod:`recopt.metrics.community` -- allocation-key metrics (SCR, SSR, savings,
  Gini, energy to shift, CO2, ...), per scenario and across scenarios;
* :mod:`recopt.metrics.convergence` -- Monte Carlo convergence ``N*`` (Ospina (32));
* :mod:`recopt.metrics.plots` -- key comparison with values, per-member figure,
  distributions over scenarios, N* convergence (PNG + PDF);
* :mod:`recopt.metrics.style` -- the one figure style (sizes, fonts, colours, units);
* :mod:`recopt.metrics.figures` -- the figures of a Result (loop map, convergence
  of Benders and column generation, storage schedules);
* :mod:`recopt.metrics.loops` -- loop-design KPIs (Chasseray et al. section 4.3).
"""

from recopt.metrics.community import (
    METRICS,
    MetricContext,
    across_scenarios,
    baseline_bills,
    bill_savings,
    co2_avoided,
    collective_bill,
    covered_consumption,
    day_starts,
    energy_to_shift,
    evaluate,
    evaluate_arrays,
    gini,
    saving_ratio,
    self_consumption_rate,
    self_sufficiency,
    self_sufficiency_rate,
    sharing_upper_bound,
    surplus_injected,
)
from recopt.metrics.loops import kpi_summary, loop_kpis, plot_loops, standalone_cost

__all__ = [
    "METRICS",
    "MetricContext",
    "across_scenarios",
    "baseline_bills",
    "bill_savings",
    "co2_avoided",
    "collective_bill",
    "covered_consumption",
    "day_starts",
    "energy_to_shift",
    "evaluate",
    "evaluate_arrays",
    "gini",
    "saving_ratio",
    "self_consumption_rate",
    "self_sufficiency",
    "self_sufficiency_rate",
    "sharing_upper_bound",
    "surplus_injected",
    "loop_kpis",
    "kpi_summary",
    "plot_loops",
    "standalone_cost",
]
