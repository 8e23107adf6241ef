"""The community game's ``v(S)`` in closed form, for batches of coalitions (NumPy, no solver).

Model card ``models/benefit-sharing.md`` ("The fast path"). The coalition LP of
:func:`recopt.models.sharing.community_coalition` (de Villena LP1, IEEE Access 2022,
doi:10.1109/ACCESS.2022.3191804, eqs (8)-(16), keys projected out) has no row linking
two (scenario, step) pairs: ``v(S) = Σ_r v_r(S)`` over the rows ``r = (ω, t)``, each

    v_r(S) = max Σ_i a_i v_i + Σ_j c_j y_j   s.t.  Σ_i v_i = Σ_j y_j          (10)
                 0 <= v_i <= C+_i z_i  (13),   0 <= y_j <= P-_j z_j         (11)

with ``a_i = π_ω (b - cb)_i`` and ``c_j = π_ω (cs - s)_j`` (EUR/kWh, the builder's
objective coefficients), at active steps only. It is a one-node transportation
problem. Its LP dual (one free price ``λ`` for (10)) is

    v_r(S) = min_λ g_S(λ),  g_S(λ) = Σ_i z_i C+_i (a_i - λ)^+ + Σ_j z_j P-_j (c_j + λ)^+

(strong duality: ``v = y = 0`` is feasible and the value is bounded). ``g_S`` is convex
and piecewise linear with breakpoints among the keys ``{a_i} ∪ {-c_j}`` of the row
(the same for every coalition), non-decreasing right of the largest key and
non-increasing left of the smallest, so the minimum is attained at a key:
``v_r(S) = min_k Σ_m z_m h_m(λ_k)``. With ``H[m, r, k] = h_m(λ_{r,k})`` precomputed,
a batch of coalitions is a tensor product and a minimum; the prefixes of a permutation
are a cumulative sum over the permutation's order. Every term of ``g`` is
non-negative, so the sums are well conditioned (no cancellation).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from recopt.errors import ModelError
from recopt.models.repartition import RepartitionData

#: Largest number of float64 entries of one intermediate array (chunking).
CHUNK_ENTRIES = 20_000_000


class CommunityValues:
    """The tables ``H[m, r, k]`` (EUR) of an instance's community game.

    ``n`` members; rows ``r`` are the (scenario, step) pairs whose grand-coalition value
    is not 0 (a row worth 0 to ``N`` is worth 0 to every ``S``: ``v_r`` grows with
    ``S``, the feasible set does); ``k`` runs over the row's distinct keys (padded by
    repeating one, harmless for a minimum).
    """

    def __init__(self, instance: xr.Dataset):
        d = RepartitionData.of(instance)
        cp, pm = d.net_consumption, d.net_production
        act = d.active[:, :, None]
        w = d.probability[:, None, None]
        b, sp = d.prices["price_grid_buy"], d.prices["price_grid_sell"]
        cb, cs = d.prices["price_community_buy"], d.prices["price_community_sell"]
        cons = act & (cp > 0)
        prod = act & (pm > 0)
        C = np.where(cons, cp, 0.0)
        P = np.where(prod, pm, 0.0)
        a = np.broadcast_to(w * (b - cb), cp.shape)
        c = np.broadcast_to(w * (cs - sp), pm.shape)
        n = cp.shape[2]
        self.n = n
        rows = (cons.any(axis=2) & prod.any(axis=2)).ravel()
        C, P = C.reshape(-1, n)[rows], P.reshape(-1, n)[rows]
        a, c = a.reshape(-1, n)[rows], c.reshape(-1, n)[rows]
        cons, prod = cons.reshape(-1, n)[rows], prod.reshape(-1, n)[rows]
        # the keys of each row: {a_i : C+_i > 0} ∪ {-c_j : P-_j > 0}, distinct, padded
        keys = np.sort(np.concatenate([np.where(cons, a, np.nan),
                                       np.where(prod, -c, np.nan)], axis=1), axis=1)
        dup = np.zeros(keys.shape, bool)
        dup[:, 1:] = keys[:, 1:] == keys[:, :-1]
        keys = np.sort(np.where(dup, np.nan, keys), axis=1)
        K = int(np.max((~np.isnan(keys)).sum(axis=1), initial=0))
        keys = keys[:, :max(K, 1)]
        keys = np.where(np.isnan(keys), keys[:, :1], keys)
        H = (C.T[:, :, None] * np.maximum(a.T[:, :, None] - keys[None], 0.0)
             + P.T[:, :, None] * np.maximum(c.T[:, :, None] + keys[None], 0.0))
        grand = H.sum(axis=0).min(axis=1)
        keep = grand > 0
        self.H = np.ascontiguousarray(H[:, keep, :])  # (n, R, K)
        self.keys = keys[keep]
        self.n_rows, self.n_keys = self.H.shape[1], self.H.shape[2]

    def values(self, members) -> np.ndarray:
        """``v(S)`` (EUR) of each row of ``members`` (B, n) (booleans or 0/1)."""
        Z = np.asarray(members, dtype=float)
        if Z.ndim != 2 or Z.shape[1] != self.n:
            raise ModelError(f"coalitions must be a (B, {self.n}) membership matrix")
        out = np.zeros(Z.shape[0])
        if self.n_rows == 0:
            return out
        step = max(1, CHUNK_ENTRIES // (self.n_rows * self.n_keys))
        flat = self.H.reshape(self.n, -1)
        for lo in range(0, Z.shape[0], step):
            g = (Z[lo:lo + step] @ flat).reshape(-1, self.n_rows, self.n_keys)
            out[lo:lo + step] = g.min(axis=2).sum(axis=1)
        return out

    def prefix_values(self, permutations) -> np.ndarray:
        """``v`` of every prefix of every permutation, (k, n): entry ``[p, q]`` is the
        value of the first ``q + 1`` players of permutation ``p`` (EUR)."""
        perms = np.asarray(permutations, dtype=np.int64)
        if perms.ndim != 2 or perms.shape[1] != self.n:
            raise ModelError(f"permutations must be a (k, {self.n}) array")
        out = np.zeros(perms.shape, dtype=float)
        if self.n_rows == 0:
            return out
        g = np.empty_like(self.H)  # (n, R, K): g of each prefix, one buffer reused
        for p, order in enumerate(perms):
            np.take(self.H, order, axis=0, out=g)
            np.cumsum(g, axis=0, out=g)
            out[p] = g.min(axis=2).sum(axis=1)
        return out
