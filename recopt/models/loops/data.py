"""The data of the loop-design models, read once from an instance.

Chasseray et al. (arXiv 2404.04428) §3.1-3.2; spec ``docs/reconstruction/loop-design.md``
("Data"); model card ``models/SLCpct-MLCpct-MLCol.md``.

Units: energies kWh per step, prices EUR/kWh, powers kW, distances km.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from recopt.data.view import price, stm
from recopt.errors import ModelError
from recopt.metrics.loops import standalone_cost
from recopt.models.loops.enumeration import (
    graph_of,
    haversine_distances,
    neighbourhood_adjacency,
    planar_distances,
)
from recopt.settle import meter_flows

if TYPE_CHECKING:  # networkx loads on first use of LoopData.graph
    import networkx as nx

log = logging.getLogger(__name__)

METRICS = ("auto", "km", "haversine")


def distance_matrix(instance: xr.Dataset, metric: str = "auto") -> np.ndarray:
    """Distances between members, km, shape ``(n, n)``.

    ``"km"``: Euclidean on ``x_km``, ``y_km``; ``"haversine"``: great circle on
    ``lat``, ``lon``; ``"auto"``: ``km`` when planar coordinates are present, else
    ``haversine``.
    """
    has_km = "x_km" in instance and "y_km" in instance
    has_ll = "lat" in instance and "lon" in instance
    if metric not in METRICS:
        raise ModelError(f"distance metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if metric == "auto":
        metric = "km" if has_km else "haversine"
    if metric == "km":
        if not has_km:
            raise ModelError(
                "the loop models need member coordinates: x_km and y_km (distance=km)"
                + (" — the instance has lat/lon: use --option distance=haversine"
                   if has_ll else "")
            )
        return planar_distances(instance["x_km"].values, instance["y_km"].values)
    if not has_ll:
        raise ModelError(
            "distance=haversine needs lat and lon per member"
            + (" — the instance has x_km/y_km: use --option distance=km" if has_km else "")
        )
    return haversine_distances(instance["lat"].values, instance["lon"].values)


def installed_power(instance: xr.Dataset) -> np.ndarray:
    """``W`` per member, kW: ``installed_power``, or, when the instance has none, the
    peak production power ``max P / Δt`` over scenarios and steps (logged)."""
    if "installed_power" in instance:
        w = np.asarray(instance["installed_power"].values, float)
        if np.isnan(w).any():
            raise ModelError("installed_power has missing values; give 0 for non-producers")
        return w
    dt = float(instance.attrs["time_step_hours"])
    w = stm(instance, "production").max(axis=(0, 1)) / dt
    log.info("no installed_power in the instance: using the peak production power max P/dt")
    return np.asarray(w, float)


@dataclass
class LoopData:
    """Arrays of one instance for the loop models (positions ``0..n-1`` for members).

    Attributes
    ----------
    members : list of str
    C, P : ndarray (S, T, n)
        ``Ĉ``, ``P̂``: net (individual self-consumption forced) or raw consumption
        and production, kWh per step.
    buy, sell : ndarray (S, T, n)
        ``b``, ``s``: grid buying and selling prices, EUR/kWh.
    probability : ndarray (S,)
    power : ndarray (n,)
        ``W``, kW.
    distance : ndarray (n, n)
        ``d``, km.
    dmax, wmax : float
        ``Dmax`` (km), ``Wmax`` (kW).
    self_consumption : bool
    """

    members: list
    C: np.ndarray
    P: np.ndarray
    buy: np.ndarray
    sell: np.ndarray
    probability: np.ndarray
    power: np.ndarray
    distance: np.ndarray
    dmax: float
    wmax: float
    self_consumption: bool
    adjacency: np.ndarray = field(repr=False)
    """``E`` as a symmetric boolean (n, n) matrix (no diagonal)."""

    @classmethod
    def of(cls, instance: xr.Dataset, *, self_consumption: bool = True,
           distance: str = "auto") -> LoopData:
        c = stm(instance, "consumption").astype(float)
        p = stm(instance, "production").astype(float)
        if self_consumption:
            c, p = meter_flows(c, p)  # Ĉ = max(0, C - P), P̂ = max(0, P - C)
        buy = price(instance, "price_grid_buy")
        sell = price(instance, "price_grid_sell")
        w = installed_power(instance)
        d = distance_matrix(instance, distance)
        dmax = float(instance.attrs["max_distance_km"])
        wmax = float(instance.attrs["max_loop_power_kw"])
        adj = neighbourhood_adjacency(d, w, dmax, wmax)
        return cls(
            members=[str(m) for m in instance["member"].values],
            C=np.ascontiguousarray(c), P=np.ascontiguousarray(p), buy=buy, sell=sell,
            probability=np.asarray(instance["scenario_probability"].values, float),
            power=w, distance=d, dmax=dmax, wmax=wmax,
            self_consumption=bool(self_consumption), adjacency=adj,
        )

    # ---- sizes -----------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return self.C.shape

    @property
    def n(self) -> int:
        return self.C.shape[2]

    @cached_property
    def steps(self) -> list[tuple[int, int]]:
        """Every (scenario, step) position."""
        S, T, _ = self.shape
        return [(s, t) for s in range(S) for t in range(T)]

    # ---- graph -----------------------------------------------------------------------
    @cached_property
    def graph(self) -> nx.Graph:
        """``G = (N, E)`` as a networkx graph (imported on first use; node attribute
        ``power``: ``W``, kW)."""
        return graph_of(self.adjacency, self.power)

    @cached_property
    def arcs(self) -> list[tuple[int, int]]:
        """``A``: ordered pairs ``(i, j)``, ``i != j``, ``{i, j} in E``, sorted."""
        i, j = np.nonzero(self.adjacency)
        return list(zip(i.tolist(), j.tolist(), strict=True))

    @cached_property
    def edges(self) -> list[tuple[int, int]]:
        """``E`` as sorted pairs ``(i, j)``, ``i < j``."""
        i, j = np.nonzero(np.triu(self.adjacency, k=1))
        return list(zip(i.tolist(), j.tolist(), strict=True))

    @cached_property
    def non_edges(self) -> list[tuple[int, int]]:
        """Pairs ``i < j`` not in ``E`` (distance or pair power rule)."""
        e = set(self.edges)
        return [(i, j) for i in range(self.n) for j in range(i + 1, self.n) if (i, j) not in e]

    def big_m(self, i: int, j: int) -> np.ndarray:
        """``M[i,j,ω,t] = min(P̂[i], Ĉ[j])``, kWh, shape (S, T)."""
        return np.minimum(self.P[:, :, i], self.C[:, :, j])

    @cached_property
    def useful(self) -> np.ndarray:
        """``useful[i, j]``: ``M[i,j,ω,t] > 0`` somewhere (``i != j``), shape (n, n)."""
        prod = self.P > 0
        cons = self.C > 0
        u = np.einsum("sti,stj->ij", prod.astype(np.int64), cons.astype(np.int64)) > 0
        np.fill_diagonal(u, False)
        return u

    # ---- the flow arcs actually carrying a bound > 0 ---------------------------------
    def flow_index(self, steps=None) -> list[tuple[int, int, int, int]]:
        """``(s, t, i, j)`` with ``(i, j) in A`` and ``M[i,j,s,t] > 0``, in ``steps``."""
        steps = self.steps if steps is None else steps
        out = []
        prod = self.P > 0
        cons = self.C > 0
        arcs = self.arcs
        for s, t in steps:
            ps, cs = prod[s, t], cons[s, t]
            out += [(s, t, i, j) for i, j in arcs if ps[i] and cs[j]]
        return out

    def decision_steps(self, arcs=None) -> list[tuple[int, int]]:
        """(scenario, step) pairs whose operation can depend on the loop design.

        A step is kept when some arc (of ``arcs``, default ``A``) has ``M > 0`` there,
        or some actor has both ``Ĉ > 0`` and ``P̂ > 0`` (possible only without forced
        individual self-consumption). At any other step every actor's cost is its
        standalone cost ``b Ĉ − s P̂`` for *every* feasible design: no flow is
        possible, and a loop (a clique) in surplus then has no member that needs
        energy, one in deficit no member with energy to sell, so the collective rules
        never bind (card ``models/SLExt-MLColExt.md``, choice 7).
        """
        prod = self.P > 0
        cons = self.C > 0
        both = (prod & cons).any(axis=2)
        arcs = self.arcs if arcs is None else list(arcs)
        if arcs:
            i = np.array([a for a, _ in arcs])
            j = np.array([b for _, b in arcs])
            flow = (prod[:, :, i] & cons[:, :, j]).any(axis=2)
        else:
            flow = np.zeros(both.shape, bool)
        keep = np.asarray(flow | both)
        return [(s, t) for s, t in self.steps if keep[s, t]]

    # ---- reference costs ---------------------------------------------------------------
    def standalone_cost(self) -> np.ndarray:
        """Each actor's cost outside every loop, EUR per (scenario, step, member)
        (:func:`recopt.metrics.loops.standalone_cost`)."""
        return standalone_cost(self.C, self.P, self.buy, self.sell)

    def no_loop_cost(self) -> float:
        """Expected cost of the zero-loop configuration, EUR (property 4's bound)."""
        return float((self.probability[:, None, None] * self.standalone_cost()).sum())
