"""Loop enumeration: the columns of the Dantzig-Wolfe model MLCol.

Source: Chasseray et al., "Self-consumption loops" (arXiv 2404.04428), §3.2.3
(neighbourhood graph: loops are cliques of the graph of actors closer than the
legal distance, pairs over the power cap removed) and §3.5 (Assumption 3.6,
Proposition 3.1 and the clique-generation procedure); spec
``docs/reconstruction/loop-design.md``; model card ``models/SLCpct-MLCpct-MLCol.md``.

A *feasible loop* ``S`` is a set of at least two actors that is a clique of the
neighbourhood graph ``G``, whose summed installed power is within ``Wmax``, and
that can carry some internal flow: it contains two different actors ``i != j``
with ``P^[i,w,t] > 0`` and ``C^[j,w,t] > 0`` at some common (scenario, step)
(``useful`` below). A loop carrying no flow is never better than leaving its
actors out of every loop (its members only face the tighter collective rules),
so dropping it is exact.

Strategies
----------
``all``
    every feasible loop: exact (MLCol(all) has MLCpct's optimum). Cliques are
    grown in increasing actor order with capacity pruning (installed powers are
    non-negative, so a clique over the cap has no feasible superset).
``maximal``
    the paper's procedure: the maximal cliques of ``G`` (networkx
    ``find_cliques``) that contain a producer; a clique within the cap is used
    as is; one over the cap is split into the maximal feasible subsets of its
    producers (the maximal vertices of the 0-1 knapsack polytope over the
    producers' installed powers), each taken with every non-producer of the
    clique. Every such loop is also in ``all``, so MLCol(maximal) is never better
    than MLCol(all).

Both count the loops they make and raise :class:`~recopt.errors.ModelError`
once the count passes ``max_loops``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from recopt.errors import ModelError

if TYPE_CHECKING:  # networkx loads on first use (about 0.2-0.5 s of every loop model's start)
    import networkx as nx

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), km, for the haversine distance."""

STRATEGIES = ("all", "maximal")
DEFAULT_MAX_LOOPS = 100_000


# --------------------------------------------------------------------------------------
# distances and the neighbourhood graph
# --------------------------------------------------------------------------------------
def planar_distances(x_km: ArrayLike, y_km: ArrayLike) -> np.ndarray:
    """Euclidean distances between planar points, km, shape ``(n, n)``."""
    x = np.asarray(x_km, float)
    y = np.asarray(y_km, float)
    return np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])


def haversine_distances(lat: ArrayLike, lon: ArrayLike) -> np.ndarray:
    """Great-circle distances between (lat, lon) points in degrees, km, shape ``(n, n)``."""
    la = np.radians(np.asarray(lat, float))
    lo = np.radians(np.asarray(lon, float))
    dla = la[:, None] - la[None, :]
    dlo = lo[:, None] - lo[None, :]
    h = np.sin(dla / 2) ** 2 + np.cos(la)[:, None] * np.cos(la)[None, :] * np.sin(dlo / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def neighbourhood_adjacency(
    distance_km: np.ndarray, installed_power: ArrayLike, max_distance_km: float,
    max_loop_power_kw: float,
) -> np.ndarray:
    """The edges ``E`` of §3.2.3 as a symmetric boolean matrix (no diagonal).

    ``{i, j} in E`` iff ``d[i,j] <= Dmax`` (km) and ``W[i] + W[j] <= Wmax`` (kW).
    """
    d = np.asarray(distance_km, float)
    w = np.asarray(installed_power, float)
    tol = 1e-9
    ok = (d <= max_distance_km + tol) & (w[:, None] + w[None, :] <= max_loop_power_kw + tol)
    ok = np.triu(ok, k=1)
    return ok | ok.T


def graph_of(adjacency: np.ndarray, installed_power: ArrayLike) -> nx.Graph:
    """The networkx graph of an adjacency matrix on positions ``0..n-1``; node attribute
    ``power`` holds ``W`` (kW). networkx is imported here, on first use."""
    import networkx as nx

    w = np.asarray(installed_power, float)
    g = nx.Graph()
    g.add_nodes_from((i, {"power": float(w[i])}) for i in range(len(w)))
    iu, ju = np.nonzero(np.triu(np.asarray(adjacency, bool), k=1))
    g.add_edges_from(zip(iu.tolist(), ju.tolist(), strict=True))
    return g


def neighbourhood_graph(
    distance_km: np.ndarray, installed_power: ArrayLike, max_distance_km: float,
    max_loop_power_kw: float,
) -> nx.Graph:
    """The graph ``G = (N, E)`` of §3.2.3 on actor positions ``0..n-1``
    (:func:`neighbourhood_adjacency`). An actor whose own installed power exceeds
    ``Wmax`` is an isolated node (it can be in no loop). Node attribute ``power``
    holds ``W`` (kW).
    """
    return graph_of(neighbourhood_adjacency(distance_km, installed_power, max_distance_km,
                                            max_loop_power_kw), installed_power)


# --------------------------------------------------------------------------------------
# enumeration
# --------------------------------------------------------------------------------------
def _check_limit(count: int, max_loops: int, strategy: str) -> None:
    if count > max_loops:
        raise ModelError(
            f"loop enumeration ({strategy}) made more than max_loops={max_loops} loops; the "
            "neighbourhood graph is too dense for an eager enumeration. Raise max_loops "
            "(memory and solve time grow with it), use enumeration=maximal, or a compact "
            "model (MLCpct)."
        )


def _cliques_within_cap(g: nx.Graph, power: np.ndarray, wmax: float) -> Iterator[tuple]:
    """Every clique of ``g`` with at least two nodes and summed power <= ``wmax``.

    Depth-first, each clique grown only with larger-numbered common neighbours,
    so each is produced once; pruned as soon as the power exceeds the cap.
    """
    adj = {v: {u for u in g[v] if u > v} for v in g}
    tol = 1e-9

    def grow(clique: list[int], load: float, cand: set[int]):
        for v in sorted(cand):
            new_load = load + power[v]
            if new_load > wmax + tol:
                continue
            clique.append(v)
            yield tuple(clique)
            yield from grow(clique, new_load, cand & adj[v])
            clique.pop()

    for v in sorted(g):
        if power[v] > wmax + tol:
            continue
        for u in sorted(adj[v]):
            if power[v] + power[u] > wmax + tol:
                continue
            yield (v, u)
            yield from grow([v, u], power[v] + power[u], adj[v] & adj[u])


def _maximal_knapsack_subsets(items: list[int], weight: np.ndarray, cap: float) -> list[tuple]:
    """All maximal subsets of ``items`` with summed ``weight`` <= ``cap``.

    Maximal: no item outside the subset fits in the remaining capacity (the
    maximal vertices of the 0-1 knapsack polytope, §3.5). Depth-first over the
    items by decreasing weight; a branch is cut as soon as a skipped item would
    still fit after adding every remaining item (its subsets cannot be maximal),
    so the work follows the number of maximal subsets, not ``2^len(items)``.
    """
    tol = 1e-9
    items = sorted(items, key=lambda v: (-weight[v], v))
    w = [float(weight[v]) for v in items]
    rest = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]]).tolist()  # rest[k] = Σ w[k:]
    out: list[tuple] = []

    def rec(k: int, chosen: list[int], load: float, min_skipped: float):
        if load + rest[k] + min_skipped <= cap + tol:
            return  # a skipped item fits whatever is added: not maximal
        if k == len(items):
            out.append(tuple(sorted(chosen)))
            return
        if load + w[k] <= cap + tol:
            chosen.append(items[k])
            rec(k + 1, chosen, load + w[k], min_skipped)
            chosen.pop()
        rec(k + 1, chosen, load, min(min_skipped, w[k]))

    rec(0, [], 0.0, math.inf)
    return out


def enumerate_loops(
    graph: nx.Graph,
    installed_power: ArrayLike,
    max_loop_power_kw: float,
    useful: np.ndarray,
    *,
    strategy: str = "all",
    max_loops: int = DEFAULT_MAX_LOOPS,
    producers: Sequence[int] | None = None,
) -> list[tuple[int, ...]]:
    """The feasible loops of the neighbourhood graph, as sorted tuples of positions.

    Parameters
    ----------
    graph : networkx.Graph
        :func:`neighbourhood_graph`.
    installed_power : sequence of float
        ``W`` per actor, kW.
    max_loop_power_kw : float
        ``Wmax``, kW.
    useful : ndarray of bool, shape (n, n)
        ``useful[i, j]``: actor ``i`` can send energy to ``j != i`` at some
        (scenario, step) (``P^[i] > 0`` and ``C^[j] > 0`` together). A loop must
        contain one useful pair.
    strategy : {"all", "maximal"}
    max_loops : int
        Refuse (ModelError) when more loops than this are made.
    producers : sequence of int, optional
        The actors the ``maximal`` strategy grows cliques from and splits over the
        cap (default: the actors with positive installed power or with some
        net production, ``useful[i].any()``).

    Returns
    -------
    list of tuple of int
        Loops in a deterministic order (by size, then lexicographically).
    """
    if strategy not in STRATEGIES:
        raise ModelError(f"enumeration must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    if max_loops is None or (isinstance(max_loops, float) and math.isinf(max_loops)):
        max_loops = 2**62
    max_loops = int(max_loops)
    power = np.asarray(installed_power, float)
    useful = np.asarray(useful, bool)

    def is_useful(loop) -> bool:
        idx = np.asarray(loop)
        sub = useful[np.ix_(idx, idx)]
        return bool(sub.any())  # the diagonal of `useful` is False by construction

    loops: list[tuple[int, ...]] = []
    if strategy == "all":
        for c in _cliques_within_cap(graph, power, max_loop_power_kw):
            if is_useful(c):
                loops.append(c)
                _check_limit(len(loops), max_loops, strategy)
    else:
        if producers is None:
            prod = {i for i in graph if power[i] > 0 or useful[i].any()}
        else:
            prod = set(int(i) for i in producers)
        seen: set[tuple[int, ...]] = set()
        tol = 1e-9
        import networkx as nx  # on first use (see the module's imports)

        for clique in nx.find_cliques(graph):
            if not prod.intersection(clique):
                continue  # grown from net producers only
            clique = sorted(clique)
            if power[clique].sum() <= max_loop_power_kw + tol:
                candidates = [tuple(clique)]
            else:
                ps = [v for v in clique if v in prod]
                rest = [v for v in clique if v not in prod]
                cap = max_loop_power_kw - power[rest].sum()
                candidates = [tuple(sorted(sub + tuple(rest)))
                              for sub in _maximal_knapsack_subsets(ps, power, cap)]
            for c in candidates:
                if len(c) >= 2 and c not in seen and is_useful(c):
                    seen.add(c)
                    loops.append(c)
                    _check_limit(len(loops), max_loops, strategy)
    loops.sort(key=lambda c: (len(c), c))
    log.info("loop enumeration (%s): %d loops", strategy, len(loops))
    return loops
