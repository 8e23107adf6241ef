"""Community metrics shared by every model and key family.

Only what the foundation needs lives here for now (self-sufficiency); the full
metric suite (SCR, savings, Gini, ETS, CO2, ...) grows here, one function each.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def covered_consumption(consumption, production, comm_in) -> np.ndarray:
    """Consumption covered locally per step: ``min(P, C) + v`` (kWh per step).

    de Villena eq. (17) numerator in its linearised form (eq. (20), proven equal in
    the paper's Appendix B): own production used behind the meter plus the
    verified community allocation ``v``.
    """
    return np.minimum(np.asarray(production), np.asarray(consumption)) + np.asarray(comm_in)


def self_sufficiency(instance: xr.Dataset, comm_in) -> xr.DataArray:
    """Self-sufficiency rate per (scenario, member), de Villena eq. (17).

    ``ssr_i = sum_t (min(P, C) + v) / sum_t C``; NaN for a member that consumes
    nothing over the horizon. Dimensionless (0..1).
    """
    c = instance["consumption"].transpose("scenario", "time", "member").values
    p = instance["production"].transpose("scenario", "time", "member").values
    num = covered_consumption(c, p, comm_in).sum(axis=1)
    den = c.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ssr = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return xr.DataArray(
        ssr,
        dims=("scenario", "member"),
        coords={"scenario": instance["scenario"].values, "member": instance["member"].values},
        attrs={"units": "1", "long_name": "self-sufficiency rate (de Villena eq. 17)"},
    )
