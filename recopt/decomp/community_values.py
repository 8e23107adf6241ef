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

import math
import time

import highspy
import numpy as np
import scipy.sparse as sp
import xarray as xr

from recopt.errors import ModelError, SolverError
from recopt.models.repartition import RepartitionData
from recopt.solvers.highs import highs_lp, new_highs, use_highs_threads

#: Largest number of float64 entries of one intermediate array (chunking).
CHUNK_ENTRIES = 20_000_000
#: Entries of one block of :meth:`CommunityValues.flip_values` (n x rows x keys).
FLIP_BLOCK_ENTRIES = 400_000


class CommunityValues:
    """The tables ``H[m, r, k]`` (EUR) of an instance's community game.

    ``n`` members; rows ``r`` are the (scenario, step) pairs whose grand-coalition value
    is not 0 (a row worth 0 to ``N`` is worth 0 to every ``S``: ``v_r`` grows with
    ``S``, the feasible set does); ``k`` runs over the row's distinct keys (padded by
    repeating the row's largest, harmless for a minimum).
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
        # pad by repeating each row's largest key (rows stay sorted: the binary search)
        last = np.maximum((~np.isnan(keys)).sum(axis=1) - 1, 0)
        keys = np.where(np.isnan(keys), keys[np.arange(len(keys)), last][:, None], keys)
        H = (C.T[:, :, None] * np.maximum(a.T[:, :, None] - keys[None], 0.0)
             + P.T[:, :, None] * np.maximum(c.T[:, :, None] + keys[None], 0.0))
        grand = H.sum(axis=0).min(axis=1)
        keep = grand > 0
        self.H = np.ascontiguousarray(H[:, keep, :])  # (n, R, K)
        self.keys = keys[keep]
        self.n_rows, self.n_keys = self.H.shape[1], self.H.shape[2]
        # atoms for the sorted-keys flips: each member's one breakpoint per row
        C, P, a, c = C[keep].T, P[keep].T, a[keep].T, c[keep].T     # (n, R)
        self.sorted_flips = bool(not (cons[keep] & prod[keep]).any())
        """Every (member, row) has at most one key (consumer or producer, not both):
        :meth:`flip_values` uses the sorted keys (``O(n R log K)``)."""
        if self.sorted_flips and self.n_rows:
            R = self.n_rows
            kr = self.keys                                            # (R, K) sorted
            self._Cw, self._Pw = C, P
            self._a, self._b = a, -c
            self._ia = _first_at_least(kr, np.where(C > 0, a, -np.inf))  # key index of a_i
            self._ib = _first_at_least(kr, np.where(P > 0, -c, -np.inf))  # of -c_j
            self._rows = np.arange(R)
            self._cons, self._prod = C > 0, P > 0

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

    def flip_values(self, members, dense: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``v(S)`` and ``v(S xor {i})`` for every player ``i`` of each coalition of
        ``members`` (B, n): returns ``v`` (B,) and ``vx`` (B, n), EUR. With
        ``g = Σ_{m∈S} H[m]`` the flip of ``i`` is ``min_k (g ± H[i])`` per row (``+``
        when ``i ∉ S``): ``n`` coalitions for the price of about one prefix sweep,
        computed by blocks of rows (:data:`FLIP_BLOCK_ENTRIES`, cache-sized) when
        ``dense``; otherwise (when every member has one key per row,
        :attr:`sorted_flips`) by :meth:`_flips_sorted`, ``O(n R log K)``."""
        Z = np.asarray(members, dtype=bool)
        if Z.ndim != 2 or Z.shape[1] != self.n:
            raise ModelError(f"coalitions must be a (B, {self.n}) membership matrix")
        B, n = Z.shape
        v = np.zeros(B)
        vx = np.zeros((B, n))
        if self.n_rows == 0:
            return v, vx
        if self.sorted_flips and not dense:
            for b in range(B):
                v[b], vx[b] = self._flips_sorted(Z[b])
            return v, vx
        R, K = self.n_rows, self.n_keys
        step = max(1, FLIP_BLOCK_ENTRIES // (n * K))
        buf = np.empty((n, min(step, R), K))
        for b in range(B):
            sign = np.where(Z[b], -1.0, 1.0)[:, None, None]
            zf = Z[b].astype(float)
            for lo in range(0, R, step):
                Hb = self.H[:, lo:lo + step]
                gz = np.tensordot(zf, Hb, axes=1)                    # (r, K)
                v[b] += gz.min(axis=1).sum()
                out = buf[:, :Hb.shape[1]]
                np.multiply(Hb, sign, out=out)
                out += gz[None]
                vx[b] += out.min(axis=2).sum(axis=1)
        return v, vx

    def _flips_sorted(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """``v(S)`` and every ``v(S xor {i})`` from the sorted keys (no ``n x R x K`` sum).

        Per row, ``g_S`` at the keys and its right slopes ``s_k = Σ_{j∈S, b_j <= λ_k}
        P_j - Σ_{i∈S, a_i > λ_k} C_i`` (``b_j = -c_j``) by cumulative sums over the
        keys; ``v_r(S) = g_S(λ_{k*})``, ``k*`` the first key with ``s_k >= 0`` (``g``
        convex, all breakpoints at keys). Flipping ``i`` adds (``σ = +1``) or removes
        (``σ = -1``) one breakpoint: a consumer's ``σ C_i (a_i - λ)^+`` changes the
        slopes left of ``a_i`` by ``-σ C_i``, so the new minimiser is ``k_{σC_i}`` (the
        first key with ``s_k >= σ C_i``) if it lies left of ``k(a_i)``, else
        ``max(k(a_i), k*)``; a producer's ``σ P_j (λ - b_j)^+`` changes the slopes from
        ``b_j`` on by ``+σ P_j``: ``k*`` if it lies left of ``k(b_j)``, else
        ``max(k(b_j), k_{-σP_j})``. ``k_x`` by a vectorised binary search. Equal to the
        dense minimum over keys (tested)."""
        zf = np.asarray(z, bool)
        R, K = self.n_rows, self.n_keys
        rows = self._rows
        Cz = self._Cw * zf[:, None]
        Pz = self._Pw * zf[:, None]
        # scatter the members of S onto their keys (bincount over row * K + key)
        flatA = (rows[None, :] * K + self._ia).ravel()
        flatB = (rows[None, :] * K + self._ib).ravel()
        c0 = np.bincount(flatA, Cz.ravel(), R * K).reshape(R, K)
        c1 = np.bincount(flatA, (Cz * self._a).ravel(), R * K).reshape(R, K)
        p0 = np.bincount(flatB, Pz.ravel(), R * K).reshape(R, K)
        p1 = np.bincount(flatB, (Pz * self._b).ravel(), R * K).reshape(R, K)
        # consumers with a_i > λ_k (strict: index > k); producers with b_j <= λ_k
        above0 = c0.sum(axis=1, keepdims=True) - np.cumsum(c0, axis=1)
        above1 = c1.sum(axis=1, keepdims=True) - np.cumsum(c1, axis=1)
        below0 = np.cumsum(p0, axis=1)
        below1 = np.cumsum(p1, axis=1)
        lam = self.keys
        g = (above1 - lam * above0) + (lam * below0 - below1)          # (R, K)
        slope = below0 - above0
        slope[:, -1] = np.inf                       # right of the last key: >= 0
        # first key with s_k >= x for every query of a row, by one searchsorted over
        # the rows laid end to end (each row shifted by its index times a span wider
        # than any slope or query; the last key's slope stands for +inf)
        thr = np.where(zf, -1.0, 1.0)[:, None] * (self._Cw - self._Pw)   # σC or -σP
        finite = slope[:, :-1]
        span = 4.0 * (float(np.abs(finite).max(initial=0.0)) + float(np.abs(thr).max())) + 1.0
        slope[:, -1] = span / 2
        shifted = (slope + (rows * span)[:, None]).ravel()
        kstar = np.searchsorted(shifted, rows * span) - rows * K                 # (R,)
        v = float(g.ravel().take(rows * K + kstar).sum())
        kx = (np.searchsorted(shifted, (thr + (rows * span)[None, :]).ravel())
              .reshape(thr.shape) - (rows * K)[None, :])                          # (n, R)
        ks = kstar[None, :]
        ia, ib = self._ia, self._ib
        k = np.where(self._cons, np.where(kx < ia, kx, np.maximum(ia, ks)),
                     np.where(self._prod, np.where(ks < ib, ks, np.maximum(ib, kx)), ks))
        at = k + (rows * K)[None, :]
        lk = lam.ravel().take(at)
        gk = g.ravel().take(at)
        term = (self._Cw * np.maximum(self._a - lk, 0.0)
                + self._Pw * np.maximum(lk - self._b, 0.0))
        sigma = np.where(zf, -1.0, 1.0)[:, None]
        vx = (gk + sigma * term).sum(axis=1)
        return v, vx

    def cuts(self, members, groups: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """Values and supergradients of a batch of coalitions (no solver).

        For each row ``r`` and coalition ``ẑ`` the key ``k*_r`` minimising
        ``Σ_m ẑ_m H[m, r, k]`` gives ``v_r(z) = min_k Σ_m z_m H[m, r, k] <=
        Σ_m z_m H[m, r, k*_r]`` for every ``z`` in ``[0, 1]^n`` (a minimum is at most
        any of its terms), with equality at ``ẑ``: the LP-duality cut of the
        coalition LP (``λ = λ_{k*}``), with constant 0. ``groups`` (``n_rows`` ints in
        ``0..G-1``): the slopes are summed per group of rows (the cut of each group's
        part of ``v``); ``None``: one group. Returns ``v`` (B,) and slopes
        ``(B, G, n)``, EUR per member.
        """
        Z = np.asarray(members, dtype=float)
        if Z.ndim != 2 or Z.shape[1] != self.n:
            raise ModelError(f"coalitions must be a (B, {self.n}) membership matrix")
        grp = (np.zeros(self.n_rows, dtype=np.int64) if groups is None
               else np.asarray(groups, dtype=np.int64))
        if grp.shape != (self.n_rows,):
            raise ModelError(f"groups must give one group per row ({self.n_rows})")
        G = int(grp.max(initial=-1)) + 1 if self.n_rows else 1
        B = Z.shape[0]
        values = np.zeros(B)
        slopes = np.zeros((B, max(G, 1), self.n))
        if self.n_rows == 0:
            return values, slopes
        flat = self.H.reshape(self.n, -1)
        rows = np.arange(self.n_rows)
        onehot = np.zeros((self.n_rows, slopes.shape[1]))
        onehot[rows, grp] = 1.0
        for b in range(B):
            g = (Z[b] @ flat).reshape(self.n_rows, self.n_keys)
            k = g.argmin(axis=1)
            values[b] = g[rows, k].sum()
            slopes[b] = (self.H[:, rows, k] @ onehot).T  # Σ_{r in group} H[m, r, k*_r]
        return values, slopes


def _first_at_least(sorted_rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per row ``r`` of ``sorted_rows`` (R, K), non-decreasing, and every query
    ``x[m, r]`` (M, R): the first ``k`` with ``sorted_rows[r, k] >= x[m, r]`` (``K`` if
    none). A binary search vectorised over all queries."""
    R, K = sorted_rows.shape
    x = np.asarray(x, float)
    flat = np.ascontiguousarray(sorted_rows).ravel()
    base = np.broadcast_to(np.arange(R, dtype=np.int64) * K, x.shape)
    lo = np.zeros(x.shape, dtype=np.int64)
    hi = np.full(x.shape, K, dtype=np.int64)
    mid = np.empty_like(lo)
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        np.add(lo, hi, out=mid)
        mid //= 2
        val = flat.take(base + np.minimum(mid, K - 1))
        go = open_ & (val < x)
        np.copyto(lo, mid + 1, where=go)
        np.copyto(hi, mid, where=open_ & ~go)


#: Rows of the community game per group of the separation master's θ (the cuts are
#: summed per group). Default: one group, the single aggregated cut per coalition:
#: least core on 10 members x 96 steps took 5.0 s with it, 8.8 s with groups of 48
#: rows and 16.0 s with groups of 8 (more master rows cost more than they save).
ROWS_PER_GROUP = 10**9


class ClosedFormSeparation:
    """``max_z v(z) - x·z`` over coalitions by the closed form (no LP solved).

    Model card ``models/benefit-sharing.md`` ("Separation by the closed form").
    Two phases, both on :class:`CommunityValues`:

    1. *local search* (a heuristic: it proves nothing): from given start coalitions,
       the best single-member flip (all ``n`` flips of a coalition evaluated in one
       tensor sum) until no flip raises the excess;
    2. *outer approximation* (exact): the MILP master ``max Σ_g θ_g - x·z`` over
       binary ``z`` with ``θ_g <= s_g(ẑ)·z`` for every coalition ``ẑ`` given to
       :meth:`add_cuts` (the caller passes the singletons, ``N``, the coalitions it
       keeps and each master proposal; :meth:`CommunityValues.cuts`, summed over groups of
       :data:`ROWS_PER_GROUP` rows), ``1 <= |z| <= n - 1``, and the span rows of
       :func:`recopt.models.sharing.add_outside_span` (same formulation); each master
       ``ẑ`` is evaluated and cut, until the master's bound is within ``tol`` of the
       best excess found. The cuts over-estimate ``v`` everywhere and are exact at
       the evaluated coalitions, so the master's bound is a proven upper bound of the
       largest excess (Kelley / Geoffrion; the same argument as the LP-duality cuts of
       :meth:`recopt.decomp.games.ModelGame._separate_outer`).
    """

    def __init__(self, values: CommunityValues, rows_per_group: int = ROWS_PER_GROUP):
        self.cv = values
        self.n = values.n
        R = values.n_rows
        self.groups = np.arange(R) // max(1, int(rows_per_group))
        self.n_groups = int(self.groups.max(initial=-1)) + 1 if R else 1
        self.slopes: list[np.ndarray] = []  # per evaluated coalition: (G, n)
        self.seen: set[bytes] = set()
        self.masters = 0
        self.master_builds = 0
        self.evaluations = 0
        self.master_seconds = 0.0
        self._h = None
        self._h_key: object = None
        self._h_cuts = 0

    def add_cuts(self, Z) -> np.ndarray:
        """Evaluate coalitions (B, n) and keep their cuts; returns ``v`` (B,)."""
        Z = np.asarray(Z, dtype=bool)
        v, s = self.cv.cuts(Z, self.groups)
        for z, sl in zip(Z, s, strict=True):
            key = np.packbits(z).tobytes()
            if key not in self.seen:
                self.seen.add(key)
                self.slopes.append(sl)
        self.evaluations += len(Z)
        return v

    # ---- phase 1 -------------------------------------------------------------------------
    def local_search(self, x, starts, allowed, max_moves: int = 200) -> list:
        """Best-flip ascent of ``v(z) - x·z`` from each start (B, n); returns
        ``(z, v, excess)`` of every local optimum reached, best first (no cut is
        kept: the caller adds the cuts of those it keeps). ``allowed(Z)``:
        which rows of a (B, n) membership matrix are admissible coalitions."""
        x = np.asarray(x, float)
        found: dict[bytes, tuple] = {}
        for z0 in np.asarray(starts, dtype=bool):
            z = z0.copy()
            if not allowed(z[None])[0]:
                continue
            v = math.nan
            for _ in range(max_moves):
                # every flip of z at once, by cache-sized blocks of rows (flip_values)
                vz, vals = self.cv.flip_values(z[None])
                v = float(vz[0])
                cur = v - float(x @ z)
                sign = np.where(z, -1.0, 1.0)
                exc = vals[0] - (x @ z + sign * x)
                flips = np.eye(self.n, dtype=bool) ^ z[None]
                exc[~allowed(flips)] = -np.inf
                i = int(np.argmax(exc))
                if not exc[i] > cur + 1e-12 * (1.0 + abs(cur)):
                    break
                z[i] = not z[i]
                v = math.nan
            key = np.packbits(z).tobytes()
            if key not in found:
                if math.isnan(v):  # max_moves reached after a flip
                    v = float(self.cv.values(z[None])[0])
                found[key] = (z.copy(), v, v - float(x @ z))
        return sorted(found.values(), key=lambda t: -t[2])

    # ---- phase 2 -------------------------------------------------------------------------
    def _master_lp(self, basis):
        """The master as a ``HighsLp`` over every kept cut (``basis``: the span rows)."""
        n, G = self.n, self.n_groups
        S = np.asarray(self.slopes).reshape(-1, n)          # (C*G, n)
        gi = np.tile(np.arange(G), len(self.slopes))        # group of each cut row
        return _separation_lp(n, G, S, gi, np.zeros(S.shape[0]), basis)

    def _kept_master(self, basis):
        """The master's HiGHS object, kept between separations: rebuilt only when the
        span rows change (a new nucleolus stage), the cuts added since the last call
        appended as rows (``addRows``); the caller changes the costs only."""
        key = None if basis is None else (np.asarray(basis).shape,
                                          np.asarray(basis, np.int64).tobytes())
        if self._h is None or key != self._h_key:
            h = new_highs()
            h.setOptionValue("output_flag", False)
            # one thread: the masters are small (n binaries); threads cost more than
            # they save
            h.setOptionValue("threads", 1)
            h.setOptionValue("mip_rel_gap", 1e-9)
            h.passModel(self._master_lp(basis))
            self._h, self._h_key, self._h_cuts = h, key, len(self.slopes)
            self.master_builds += 1
            return h
        h = self._h
        new = self.slopes[self._h_cuts:]
        if new:
            n, G = self.n, self.n_groups
            S = np.asarray(new).reshape(-1, n)
            C = S.shape[0]
            gi = np.tile(np.arange(G), len(new))
            rows = sp.hstack([-sp.csr_matrix(S), sp.csr_matrix(
                (np.ones(C), (np.arange(C), gi)), shape=(C, G))]).tocsr()
            _check_highs(h.addRows(C, np.full(C, -highspy.kHighsInf), np.zeros(C),
                                   rows.nnz, rows.indptr[:-1].astype(np.int32),
                                   rows.indices.astype(np.int32), rows.data), "addRows")
            self._h_cuts = len(self.slopes)
        return h

    def master(self, x, basis=None, tol_abs: float = 1e-9, cutoff: float | None = None,
               start=None):
        """Solve the master: ``(z, bound)`` (``None, -inf`` when no coalition is
        admissible), ``bound`` a proven upper bound of ``max v(z) - x·z`` (EUR).

        One HiGHS object kept between calls (:meth:`_kept_master`): only the costs of
        ``z`` (the allocation ``x``) change, the new cuts are added as rows.
        ``cutoff``: stop at the first coalition whose master value exceeds it (HiGHS
        ``objective_bound`` and ``mip_max_improving_sols = 1``); ``bound`` is then
        HiGHS's dual bound at that moment (valid, not tight), and when no coalition
        exceeds ``cutoff`` the search ends with a proven ``bound <= cutoff`` (up to
        the gap tolerances). ``start``: a coalition (n booleans) as MIP start."""
        t0 = time.perf_counter()
        n, G = self.n, self.n_groups
        use_highs_threads(1)
        h = self._kept_master(basis)
        _aim_master(h, n, x, tol_abs, cutoff)
        if start is not None and basis is None:
            z0 = np.asarray(start, float)
            S = np.asarray(self.slopes).reshape(-1, G, n)
            theta = (S @ z0).min(axis=0)                     # (G,) the cuts' minimum
            h.setSolution(n + G, np.arange(n + G, dtype=np.int32),
                          np.concatenate([z0, theta]))
        h.run()
        status = h.getModelStatus().name
        self.masters += 1
        self.master_seconds += time.perf_counter() - t0
        if status == "kInfeasible":
            return None, -np.inf
        if status not in ("kOptimal", "kSolutionLimit", "kObjectiveBound"):
            raise SolverError(f"closed-form separation master: {status}")
        info = h.getInfo()
        if info.primal_solution_status != 2:
            if status == "kObjectiveBound":
                return None, -float(info.mip_dual_bound)
            raise SolverError(f"closed-form separation master: {status} without a solution")
        z = np.asarray(h.getSolution().col_value)[:n] > 0.5
        return z, -float(info.mip_dual_bound)


def _separation_lp(n: int, G: int, S: np.ndarray, gi: np.ndarray, rhs: np.ndarray, basis):
    """A separation master as a ``HighsLp``: columns ``z`` (n binaries), ``θ_g`` (G free)
    and, with ``basis``, the span rows' ``p, q, a`` (:func:`recopt.models.sharing.
    add_outside_span`); rows ``θ_{gi[c]} - S[c]·z <= rhs[c]`` (the cuts), ``1 <= |z| <=
    n - 1``; objective ``min x·z - Σ θ`` (the costs of ``z`` set by the caller)."""
    C = S.shape[0]
    blocks = [sp.hstack([-sp.csr_matrix(S), sp.csr_matrix(
        (np.ones(C), (np.arange(C), gi)), shape=(C, G))])]
    lo = [np.full(C, -highspy.kHighsInf)]
    up = [np.asarray(rhs, float)]
    blocks.append(sp.hstack([sp.csr_matrix(np.ones((1, n))), sp.csr_matrix((1, G))]))
    lo.append(np.array([1.0]))
    up.append(np.array([n - 1.0]))
    ncol = n + G
    d = 0
    if basis is not None:
        B = np.asarray(basis, float)
        d = B.shape[1]
        big = np.abs(B).sum(axis=0)
        ncol = n + G + 3 * d
        I, Z0 = sp.identity(d, format="csr"), sp.csr_matrix((d, G))
        zero_nd = sp.csr_matrix((d, n))
        blocks = [sp.hstack([b, sp.csr_matrix((b.shape[0], 3 * d))]) for b in blocks]
        blocks.append(sp.hstack([sp.csr_matrix(B.T), Z0, -I, I, sp.csr_matrix((d, d))]))
        lo.append(np.zeros(d))
        up.append(np.zeros(d))                                    # w = p - q
        blocks.append(sp.hstack([zero_nd, Z0, I, sp.csr_matrix((d, d)), -sp.diags(big)]))
        lo.append(np.full(d, -highspy.kHighsInf))
        up.append(np.zeros(d))                                    # p <= M a
        blocks.append(sp.hstack([zero_nd, Z0, sp.csr_matrix((d, d)), I, sp.diags(big)]))
        lo.append(np.full(d, -highspy.kHighsInf))
        up.append(big)                                            # q <= M (1 - a)
        blocks.append(sp.hstack([sp.csr_matrix((1, n + G)), sp.csr_matrix(np.ones((1, 2 * d))),
                                 sp.csr_matrix((1, d))]))
        lo.append(np.array([1.0]))
        up.append(np.array([highspy.kHighsInf]))                  # Σ (p + q) >= 1
    A = sp.vstack(blocks).tocsc()
    cost = np.zeros(ncol)
    cost[n:n + G] = -1.0
    col_lo = np.zeros(ncol)
    col_up = np.full(ncol, highspy.kHighsInf)
    col_up[:n] = 1.0
    col_lo[n:n + G] = -highspy.kHighsInf
    integer = np.zeros(ncol, bool)
    integer[:n] = True
    if basis is not None:
        col_up[n + G + 2 * d:] = 1.0
        integer[n + G + 2 * d:] = True
    lp = highs_lp(A, cost, col_lo, col_up, np.concatenate(lo), np.concatenate(up))
    lp.integrality_ = [highspy.HighsVarType.kInteger if f else
                       highspy.HighsVarType.kContinuous for f in integer]
    return lp


def _aim_master(h, n: int, x, tol_abs: float, target: float | None) -> None:
    """Point a kept separation master at the allocation ``x`` (the members' columns
    cost ``x``), with absolute gap ``tol_abs`` (EUR); with a ``target`` HiGHS stops at
    its first coalition whose master value is above it."""
    _check_highs(h.changeColsCost(n, np.arange(n, dtype=np.int32), np.asarray(x, float)),
                 "changeColsCost")
    h.setOptionValue("mip_abs_gap", float(tol_abs))
    h.setOptionValue("objective_bound", highspy.kHighsInf if target is None else -float(target))
    h.setOptionValue("mip_max_improving_sols", 2147483647 if target is None else 1)


def _check_highs(status, what: str) -> None:
    if status == highspy.HighsStatus.kError:
        raise SolverError(f"closed-form separation master: HiGHS {what} failed")


#: Most members on the smaller side (producers or consumers) whose subsets
#: :class:`SubmodularSeparation` enumerates (``2^p`` masters).
SUBMODULAR_MAX_SIDE = 6
#: Whether :class:`SubmodularSeparation` keeps the LP-duality cuts beside its own.
DUALITY_CUTS = True


class SubmodularSeparation:
    """Exact ``max_z v(z) - x·z`` by submodular cuts, for one-sided members.

    Model card ``models/benefit-sharing.md`` ("Separation by submodular cuts").
    Applies when every member is on one side in every row (a pure producer or a pure
    consumer: :attr:`ok`) and the smaller side ``E`` has at most
    :data:`SUBMODULAR_MAX_SIDE` members. Each row is a transportation (assignment)
    market, in which two players of the same side are substitutes (L. S. Shapley,
    "Complements and substitutes in the optimal assignment problem", Naval Research
    Logistics Quarterly 9 (1962) 45-48, doi:10.1002/nav.3800090106); a member with
    capacity is a block of unit players, so for a fixed part ``p ⊆ E`` the function
    ``f_p(T) = v(p ∪ T)`` of the other members ``T ⊆ F`` is submodular, and so is the
    sum over rows (tested by enumeration). Submodularity gives, for every evaluated
    ``S = p ∪ T_S``, the valid inequality (G. L. Nemhauser, L. A. Wolsey, "Maximizing
    submodular set functions: formulations and analysis of algorithms", Annals of
    Discrete Mathematics 11 (1981) 279-301, doi:10.1016/S0304-0208(08)73471-6; G. L.
    Nemhauser, L. A. Wolsey, M. L. Fisher, Math. Programming 14 (1978) 265-294,
    doi:10.1007/BF01588971, Prop. 2.1), with ``ρ_j(A) = f(A + j) - f(A)`` (EUR) and
    marginals decreasing along inclusion, the two valid inequalities

        (a) f_p(T) <= f_p(T_S) + Σ_{j∈T \\ T_S} ρ_j(S) - Σ_{j∈T_S \\ T} ρ_j(p ∪ F - j)
        (b) f_p(T) <= f_p(T_S) + Σ_{j∈T \\ T_S} ρ_j(p) - Σ_{j∈T_S \\ T} ρ_j(S - j),

    linear in ``z`` and exact at ``S``; the marginals at ``S`` from one
    :meth:`CommunityValues.flip_values`, those at the part's two ends cached. Unlike
    the LP-duality cuts (homogeneous: ``v(αz) = α v(z)``, so their relaxation cannot
    prove an excess below 0, the case of a non-empty core) these have constants; the
    LP-duality cut of each evaluated coalition is kept beside them
    (:data:`DUALITY_CUTS`). One MILP master per part ``p``
    (``max θ - x·z``, ``z_E`` fixed to ``p``, ``θ`` under the cuts, ``1 <= |z| <= n-1``
    and the span rows), kept in HiGHS between separations (the cuts do not depend on
    ``x``); each master coalition is evaluated and cut (exact there), so a master
    proposes a coalition at most once above its true excess: the loop ends with a
    coalition above the threshold or a proven bound (the masters' dual bounds).
    """

    def __init__(self, values: CommunityValues):
        cv = values
        self.cv = cv
        self.n = cv.n
        self.ok = False
        self.masters = 0
        self.cuts_added = 0
        self.master_seconds = 0.0
        self._cuts: dict[int, list[tuple[np.ndarray, float]]] = {}
        self._seen: set[bytes] = set()
        self._end: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._dual: list[np.ndarray] = []
        self.duality_cuts = DUALITY_CUTS
        self._h: dict[int, highspy.Highs] = {}
        self._h_key: dict[int, object] = {}
        self._h_cuts: dict[int, int] = {}
        if not (cv.sorted_flips and cv.n_rows):
            return
        cons = cv._cons.any(axis=1)
        prod = cv._prod.any(axis=1)
        if (cons & prod).any():
            return
        side = prod if prod.sum() <= cons.sum() else cons
        self.enumerated = np.flatnonzero(side)
        self.free = ~side
        self.ok = len(self.enumerated) <= SUBMODULAR_MAX_SIDE

    def part(self, z) -> int:
        """The index of the part ``p = z ∩ E`` (bits in the order of ``E``)."""
        bits = np.asarray(z, bool)[self.enumerated]
        return int(sum(1 << k for k, b in enumerate(bits) if b))

    def _ends(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        """``ρ_j(p ∪ F - j)`` and ``ρ_j(p)`` for ``j ∈ F`` (0 on ``E``), EUR: the
        marginal values at the two ends of part ``p`` (cached)."""
        if p not in self._end:
            z0 = np.zeros(self.n, bool)
            z0[self.enumerated] = [(p >> k) & 1 for k in range(len(self.enumerated))]
            Z = np.array([z0 | self.free, z0])
            v, vx = self.cv.flip_values(Z)
            self._end[p] = ((v[0] - vx[0]) * self.free, (vx[1] - v[1]) * self.free)
        return self._end[p]

    def add_cuts(self, Z) -> np.ndarray:
        """Evaluate coalitions (B, n), keep their two submodular cuts each (exact at
        the coalition); returns ``v`` (B,)."""
        Z = np.asarray(Z, dtype=bool)
        v, vx = self.cv.flip_values(Z)
        for z, vz, flips in zip(Z, v, vx, strict=True):
            key = np.packbits(z).tobytes()
            if key in self._seen:
                continue
            self._seen.add(key)
            p = self.part(z)
            top, bottom = self._ends(p)
            inside = z & self.free
            rho = np.abs(flips - vz) * self.free       # ρ_j(S) (j ∉ S), ρ_j(S - j) (j ∈ S)
            # (a) with ρ_j(S ∪ T - j) >= ρ_j(p ∪ F - j); (b) with ρ_j(S ∩ T) <= ρ_j(p)
            ga = np.where(inside, top, rho)
            gb = np.where(inside, rho, bottom)
            if p not in self._cuts:  # a new part starts with every LP-duality cut
                self._cuts[p] = [(sl, 0.0) for sl in self._dual]
            cuts = self._cuts[p]
            cuts.append((ga, float(vz - top[inside].sum())))
            cuts.append((gb, float(vz - rho[inside].sum())))
            self.cuts_added += 2
            if self.duality_cuts:
                # the LP-duality cut v(z) <= s(ẑ)·z (CommunityValues.cuts), valid in
                # every part: a tangent of the concave extension, kept beside
                _v, sl = self.cv.cuts(z[None])
                for q in self._cuts:
                    self._cuts[q].append((sl[0, 0], 0.0))
                self._dual.append(sl[0, 0])
                self.cuts_added += 1
        return v

    def _master(self, p: int, basis):
        key = None if basis is None else (np.asarray(basis).shape,
                                          np.asarray(basis, np.int64).tobytes())
        cuts = self._cuts.get(p, [])
        n = self.n
        if p not in self._h or key != self._h_key[p]:
            S = np.array([g for g, _c in cuts]).reshape(-1, n)
            rhs = np.array([c for _g, c in cuts])
            h = new_highs()
            h.setOptionValue("output_flag", False)
            h.setOptionValue("threads", 1)
            h.setOptionValue("mip_rel_gap", 1e-9)
            h.passModel(_separation_lp(n, 1, S, np.zeros(len(S), np.int64), rhs, basis))
            fixed = np.zeros(n, bool)
            fixed[self.enumerated] = True
            val = np.array([(p >> k) & 1 for k in range(len(self.enumerated))], float)
            idx = self.enumerated.astype(np.int32)
            _check_highs(h.changeColsBounds(len(idx), idx, val, val), "changeColsBounds")
            self._h[p], self._h_key[p], self._h_cuts[p] = h, key, len(cuts)
            return h
        h = self._h[p]
        new = cuts[self._h_cuts[p]:]
        if new:
            S = np.array([g for g, _c in new]).reshape(-1, n)
            rows = sp.hstack([-sp.csr_matrix(S), sp.csr_matrix(np.ones((len(S), 1)))]).tocsr()
            _check_highs(h.addRows(len(S), np.full(len(S), -highspy.kHighsInf),
                                   np.array([c for _g, c in new]), rows.nnz,
                                   rows.indptr[:-1].astype(np.int32),
                                   rows.indices.astype(np.int32), rows.data), "addRows")
            self._h_cuts[p] = len(cuts)
        return h

    def _solve(self, h, x, target: float | None, tol_abs: float):
        """One master run: ``(status, z or None, dual bound)``; ``target``: only
        coalitions of master value above it are sought (first one returned)."""
        t0 = time.perf_counter()
        n = self.n
        use_highs_threads(1)
        _aim_master(h, n, x, tol_abs, target)
        h.run()
        self.masters += 1
        self.master_seconds += time.perf_counter() - t0
        status = h.getModelStatus().name
        if status not in ("kOptimal", "kSolutionLimit", "kObjectiveBound", "kInfeasible"):
            raise SolverError(f"submodular separation master: {status}")
        info = h.getInfo()
        if status == "kInfeasible" or info.primal_solution_status != 2:
            return status, None, -float(info.mip_dual_bound)
        z = np.asarray(h.getSolution().col_value)[:n] > 0.5
        return status, z, -float(info.mip_dual_bound)

    def separate(self, x, basis=None, threshold: float | None = None,
                 tol_abs: float = 1e-9, first=None, deadline: float | None = None,
                 climb=None):
        """``(z, v, excess, bound)``: with a ``threshold``, the first coalition found of
        excess above it (``bound`` = inf) or the best found with a proven ``bound <=
        threshold + tol_abs``; without, the most violated coalition and its proven
        bound. ``(None, 0, -inf, -inf)`` when no coalition is admissible. ``first``:
        a coalition whose part is searched first. ``climb(z)``: a heuristic returning
        ``(z, v, excess)`` local optima from a master coalition that is not violated
        (the first above the threshold is returned, bound inf; the others found are in
        :attr:`more`)."""
        self.more: list[tuple] = []
        x = np.asarray(x, float)
        parts = list(range(1 << len(self.enumerated)))
        if first is not None:
            p0 = self.part(first)
            parts.remove(p0)
            parts.insert(0, p0)
        best: tuple | None = None
        bound = -math.inf
        for p in parts:
            if p not in self._cuts:  # seed: the part alone and the part with all of F
                z0 = np.zeros(self.n, bool)
                z0[self.enumerated] = [(p >> k) & 1 for k in range(len(self.enumerated))]
                self.add_cuts(np.array([z0, z0 | self.free]))
            seen_here: set[bytes] = set()
            exact = threshold is None
            while True:
                h = self._master(p, basis)  # with the cuts added since its last run
                if deadline is not None and time.perf_counter() > deadline:
                    raise SolverError("row generation: time limit reached inside a "
                                      f"separation ({self.masters} submodular masters)")
                status, z, b = self._solve(h, x, None if exact else threshold, tol_abs)
                if z is None:
                    if status == "kInfeasible" and exact:
                        b = -math.inf  # no admissible coalition in this part
                    elif not exact and threshold is not None:
                        b = float(threshold)  # proven: nothing above the threshold
                    bound = max(bound, b)
                    break
                key = np.packbits(z).tobytes()
                v = float(self.add_cuts(z[None])[0])
                e = v - float(x @ z)
                if best is None or e > best[2]:
                    best = (z, v, e)
                if threshold is not None and e > threshold:
                    return z, v, e, math.inf
                if climb is not None and threshold is not None:
                    up = [f for f in climb(z) if f[2] > threshold]
                    if up:
                        self.add_cuts(np.array([f[0] for f in up]))
                        self.more = up[1:]
                        return up[0][0], up[0][1], up[0][2], math.inf
                if exact:
                    level = best[2] if threshold is None else max(best[2], threshold)
                    if key in seen_here or b <= level + tol_abs:
                        bound = max(bound, b)  # an optimal master: its bound is proven
                        break
                elif key in seen_here:
                    # a coalition proposed again (its cut is tight there): HiGHS's
                    # tolerances or a kept incumbent; go on with optimal masters
                    exact = True
                seen_here.add(key)
        if best is None:
            return None, 0.0, -math.inf, -math.inf
        return best[0], best[1], best[2], max(bound, best[2])
