"""The arrays every allocation model reads from an instance: :class:`CommunityArrays`.

Built on the one array view (:class:`recopt.data.view.InstanceArrays`) and the one
settlement rule's meter values (:func:`recopt.settle.meter_flows`), so LP1-LP3 and
KoR8-KoR10 see the same ``C+``, ``P-``, ``G`` and active steps.

Units: energies in kWh per step, prices in EUR/kWh.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import xarray as xr

from recopt.data.view import InstanceArrays
from recopt.metrics import covered_consumption
from recopt.settle import meter_flows


@dataclass
class CommunityArrays:
    """Energies and prices (S, T, U) of one (sub-)instance, its meter values and
    active steps."""

    consumption: np.ndarray  # C
    production: np.ndarray  # P
    net_consumption: np.ndarray  # C+ (de Villena (1), Mustika Pmeter+)
    net_production: np.ndarray  # P- (de Villena (2), Mustika Pmeter-)
    G: np.ndarray  # (S, T) community production sum_i P- (Mustika (4))
    prices: dict  # name -> (S, T, U), EUR/kWh
    probability: np.ndarray  # (S,)
    active: np.ndarray  # (S, T) bool: G > 0 and some net consumption

    @classmethod
    def of(cls, instance: xr.Dataset, **extra):
        """The arrays of ``instance``; ``extra`` fills a subclass's own fields."""
        a = InstanceArrays.of(instance)
        cp, pm = meter_flows(a.consumption, a.production)
        G = pm.sum(axis=-1)
        active = (G > 0) & (cp.sum(axis=-1) > 0)
        return cls(consumption=a.consumption, production=a.production, net_consumption=cp,
                   net_production=pm, G=G, prices=a.prices, probability=a.probability,
                   active=active, **extra)

    def base_fields(self) -> dict:
        """The :class:`CommunityArrays` fields of this object (for a subclass's ``of``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(CommunityArrays)}

    @property
    def own_coverage(self) -> np.ndarray:
        """``sum_t min(P, C)`` per (scenario, member), kWh: de Villena (17)/(20) without ``v``."""
        return covered_consumption(self.consumption, self.production, 0.0).sum(axis=1)

    @property
    def total_consumption(self) -> np.ndarray:
        """``sum_t C`` per (scenario, member), kWh: the denominator of de Villena (17)."""
        return self.consumption.sum(axis=1)
