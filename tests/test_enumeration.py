"""Loop enumeration (recopt.models.loops.enumeration) against brute force and hand cases."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from recopt.errors import ModelError
from recopt.models.loops.enumeration import (
    enumerate_loops,
    haversine_distances,
    neighbourhood_graph,
    planar_distances,
)


def _random_case(seed: int, n: int):
    r = np.random.default_rng(seed)
    x, y = r.uniform(0, 3, n), r.uniform(0, 3, n)
    power = np.where(r.random(n) < 0.5, r.uniform(1, 5, n), 0.0)
    g = neighbourhood_graph(planar_distances(x, y), power, 1.5, 8.0)
    useful = r.random((n, n)) < 0.5
    np.fill_diagonal(useful, False)
    return g, power, useful


def _brute_force(g, power, wmax, useful):
    out = []
    for size in range(2, g.number_of_nodes() + 1):
        for c in itertools.combinations(sorted(g), size):
            if power[list(c)].sum() > wmax + 1e-9:
                continue
            if not all(g.has_edge(i, j) for i, j in itertools.combinations(c, 2)):
                continue
            if not useful[np.ix_(c, c)].any():
                continue
            out.append(c)
    return sorted(out, key=lambda c: (len(c), c))


@pytest.mark.parametrize("seed", range(8))
def test_all_is_every_feasible_clique(seed):
    g, power, useful = _random_case(seed, n=8)
    loops = enumerate_loops(g, power, 8.0, useful, strategy="all")
    assert loops == _brute_force(g, power, 8.0, useful)
    maximal = enumerate_loops(g, power, 8.0, useful, strategy="maximal")
    assert set(maximal) <= set(loops)  # so MLCol(maximal) is never better


def test_maximal_splits_an_over_cap_clique_by_knapsack_vertices():
    # a 5-clique: producers 0, 1, 2 (4, 3, 2 kW), consumers 3, 4; cap 6 kW
    g = nx.complete_graph(5)
    power = np.array([4.0, 3.0, 2.0, 0.0, 0.0])
    useful = np.zeros((5, 5), bool)
    useful[:3, 3:] = True
    loops = enumerate_loops(g, power, 6.0, useful, strategy="maximal")
    # maximal producer subsets within 6 kW: {0,2} (6), {1,2} (5); {0} alone is not maximal
    assert sorted(loops) == [(0, 2, 3, 4), (1, 2, 3, 4)]
    # the within-cap clique is used as is
    assert enumerate_loops(g, power, 10.0, useful, strategy="maximal") == [(0, 1, 2, 3, 4)]


def test_maximal_grows_cliques_from_producers_only():
    g = nx.Graph([(0, 1), (1, 2), (2, 3)])  # a path; 3 is the only producer
    power = np.array([0.0, 0.0, 0.0, 2.0])
    useful = np.zeros((4, 4), bool)
    useful[3, :3] = True
    assert enumerate_loops(g, power, 5.0, useful, strategy="maximal") == [(2, 3)]
    assert enumerate_loops(g, power, 5.0, useful, strategy="all") == [(2, 3)]


def test_limit_refuses_with_a_clear_message():
    g = nx.complete_graph(12)
    power = np.ones(12)
    useful = ~np.eye(12, dtype=bool)
    with pytest.raises(ModelError, match=r"more than max_loops=100 loops.*enumeration=maximal"):
        enumerate_loops(g, power, 100.0, useful, strategy="all", max_loops=100)
    assert len(enumerate_loops(g, power, 100.0, useful, strategy="all",
                               max_loops=10_000)) == 2**12 - 12 - 1
    with pytest.raises(ModelError, match="enumeration must be"):
        enumerate_loops(g, power, 100.0, useful, strategy="greedy")


def test_graph_rules_and_distances():
    d = planar_distances([0, 3, 0], [0, 4, 1])
    assert d[0, 1] == pytest.approx(5.0)
    g = neighbourhood_graph(d, [1.0, 1.0, 9.5], 5.0, 10.0)
    assert {frozenset(e) for e in g.edges} == {frozenset((0, 1))}
    assert g.has_edge(0, 1)  # 5 km <= 5 km, 2 kW
    assert not g.has_edge(0, 2)  # 1 km but 10.5 kW > 10 kW
    assert not g.has_edge(1, 2)
    h = haversine_distances([50.0, 51.0, 50.0], [5.0, 5.0, 6.0])
    assert h[0, 1] == pytest.approx(111.195, rel=1e-4)  # one degree of latitude
    assert h[0, 2] == pytest.approx(111.195 * np.cos(np.radians(50.0)), rel=2e-3)
    assert np.allclose(h, h.T) and np.allclose(np.diag(h), 0)


def test_maximal_knapsack_subsets_against_brute_force():
    from recopt.models.loops.enumeration import _maximal_knapsack_subsets

    r = np.random.default_rng(0)
    for _ in range(150):
        k = int(r.integers(1, 9))
        w = np.round(r.uniform(0, 5, k), 1)
        w[r.random(k) < 0.2] = 0.0
        cap = float(r.uniform(0, 12))
        brute = []
        for size in range(k + 1):
            for c in itertools.combinations(range(k), size):
                load = w[list(c)].sum()
                if load <= cap + 1e-9 and all(load + w[j] > cap + 1e-9
                                              for j in range(k) if j not in c):
                    brute.append(c)
        assert sorted(_maximal_knapsack_subsets(list(range(k)), w, cap)) == sorted(brute)
    # two large producers and many small ones: 2 maximal subsets, found without 2^27 work
    w = np.array([2000.0, 1900.0] + [5.0] * 25)
    assert len(_maximal_knapsack_subsets(list(range(27)), w, 3000.0)) == 2
