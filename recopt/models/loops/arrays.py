"""The Benders second stages of SLExt and MLColExt assembled as arrays (issue 19).

Source: Chasseray, Besançon, Lorca, Petitdemange (arXiv:2404.04428,
``docs/reconstruction/loop-design.md``): SLExt's second stage (Model 4: (1a)-(1f),
(1j)) and MLColExt's (Model 11: (9a)-(9e), (8a), aggregated rows); model card
``models/SLExt-MLColExt.md`` ("The array-built second stage").

The Pyomo builders :func:`~recopt.models.loops.build.fixed_single_loop` and
:func:`~recopt.models.loops.build.fixed_columns` (``first_stage="vars"``,
``bounded=False``) stay the definition; this module writes the standard form their
compile gives (Pyomo's ``LinearStandardFormCompiler``, mixed form, first stage
unfixed, as :class:`recopt.decomp.benders.SecondStage` reads it) with NumPy and
``scipy.sparse``, without building the model: the same rows in the same order, the
same columns (in the order of the components ``flow``, ``grid_buy``, ``grid_sell``),
the same coefficients, right-hand sides, senses and costs
(``tests/test_loop_arrays.py`` checks it against the compile). Each row reads

    ``A_r y + H_r x  (sense_r)  h_r``,  sense +1 ``<=``, -1 ``>=``, 0 ``==``

with ``y`` the second stage (``>= 0``, no other bound) and ``x`` the first stage in the
order of the problem's ``first_stage`` (SLExt: ``member`` then ``surplus`` per block;
MLColExt: ``choose`` per loop then ``pair_active`` per pair).

Units: energies kWh per step, prices EUR/kWh, costs EUR (expected over scenarios).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recopt.errors import ModelError
from recopt.models.loops.data import LoopData

#: MLColExt's products over (steps x loops) are computed in runs of this many loops.
LOOP_RUN = 4096

#: Column components, in column order (``col_kind`` codes 0, 1, 2).
COLUMN_KINDS = ("flow", "grid_buy", "grid_sell")


@dataclass
class SecondStageMatrix:
    """A Benders second stage as arrays (see the module docstring).

    ``A`` (rows x second-stage columns, CSC), ``H`` (rows x first stage, CSR), ``h``,
    ``sense`` (int8), ``cost`` (EUR per kWh of each column, expected), ``offset`` (the
    objective's constant, EUR). ``row_block`` / ``col_block``: each row's and column's
    position in ``blocks`` (the (scenario, step) pairs in sorted order, as Pyomo's
    compile meets them). ``row_names`` / ``col_kind``: the Pyomo component of each row
    (a position in ``row_components``) and column (in :data:`COLUMN_KINDS`);
    ``row_index`` / ``col_index``: their Pyomo indices, one per line, padded with -1
    (``flow`` ``(s, t, i, j)``; ``grid_buy``, ``grid_sell`` ``(s, t, i, -1)``).
    """

    A: sp.csc_matrix
    H: sp.csr_matrix
    h: np.ndarray
    sense: np.ndarray
    cost: np.ndarray
    offset: float
    row_block: np.ndarray
    col_block: np.ndarray
    blocks: list
    row_components: tuple[str, ...]
    row_names: np.ndarray
    row_index: np.ndarray
    col_kind: np.ndarray
    col_index: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(self.A.shape[0])

    @property
    def n_columns(self) -> int:
        return int(self.A.shape[1])

    def row_keys(self) -> list[tuple[str, tuple[int, ...]]]:
        """``(component, index)`` of every row (as Pyomo names them; for tests)."""
        return [(self.row_components[c], tuple(int(v) for v in idx if v >= 0))
                for c, idx in zip(self.row_names.tolist(), self.row_index, strict=True)]

    def column_keys(self) -> list[tuple[str, tuple[int, ...]]]:
        """``(component, index)`` of every column (as Pyomo names them; for tests)."""
        return [(COLUMN_KINDS[c], tuple(int(v) for v in idx if v >= 0))
                for c, idx in zip(self.col_kind.tolist(), self.col_index, strict=True)]

    def operation(self, y: np.ndarray, d: LoopData) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
        """``flow`` (S, T, n, n), ``grid_buy``, ``grid_sell`` (S, T, n), kWh, from the
        second-stage values ``y`` (zero where the stage has no column; solver noise
        clipped to the bounds, as :func:`~recopt.models.loops.solution.operation_arrays`)."""
        S, T, n = d.shape
        f = np.zeros((S, T, n, n))
        gb = np.zeros((S, T, n))
        gs = np.zeros((S, T, n))
        y = np.asarray(y, dtype=float)
        for code, out in enumerate((f, gb, gs)):
            sel = self.col_kind == code
            idx = self.col_index[sel]
            if code == 0:
                out[idx[:, 0], idx[:, 1], idx[:, 2], idx[:, 3]] = y[sel]
            else:
                out[idx[:, 0], idx[:, 1], idx[:, 2]] = y[sel]
        return np.maximum(f, 0.0), np.clip(gb, 0.0, d.C), np.clip(gs, 0.0, d.P)


class _Rows:
    """Rows collected per component: coefficients on y (A) and x (H), rhs, sense."""

    def __init__(self):
        self.n = 0
        self.a: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.hx: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.rhs: list[np.ndarray] = []
        self.sense: list[np.ndarray] = []
        self.block: list[np.ndarray] = []
        self.name: list[np.ndarray] = []
        self.index: list[np.ndarray] = []
        self.components: list[str] = []

    def add(self, name: str, count: int, rhs, sense: int, block, index) -> int:
        """Declare ``count`` rows of component ``name``; returns their first row."""
        first = self.n
        self.components.append(name)
        self.rhs.append(np.asarray(rhs, dtype=float))
        self.sense.append(np.full(count, sense, dtype=np.int8))
        self.block.append(np.asarray(block, dtype=np.int64))
        self.name.append(np.full(count, len(self.components) - 1, dtype=np.int8))
        idx = np.full((count, 4), -1, dtype=np.int64)
        index = np.asarray(index, dtype=np.int64)
        if count:
            idx[:, :index.shape[1]] = index.reshape(count, -1)
        self.index.append(idx)
        self.n += count
        return first

    def entries(self, target, rows, cols, vals) -> None:
        target.append((np.asarray(rows, np.int64), np.asarray(cols, np.int64),
                       np.asarray(vals, float)))


def _coo(parts, shape) -> sp.coo_matrix:
    if parts:
        r = np.concatenate([p[0] for p in parts])
        c = np.concatenate([p[1] for p in parts])
        v = np.concatenate([p[2] for p in parts])
    else:
        r = c = np.zeros(0, np.int64)
        v = np.zeros(0)
    keep = v != 0
    return sp.coo_matrix((v[keep], (r[keep], c[keep])), shape=shape)


def _operation(d: LoopData, steps, arcs):
    """Columns and the rows (1d) ``kirchhoff``, (1j) ``no_transit`` of
    :func:`~recopt.models.loops.build.add_operation` on ``steps``, as arrays.

    Returns ``(cols, rows, grids)``: ``cols`` the column data, ``rows`` a
    :class:`_Rows` holding (1d), (1j), ``grids`` the positions needed by the linking
    rows (flow steps/arcs, buyer and seller columns per (step, actor))."""
    st = np.asarray(steps, dtype=np.int64).reshape(-1, 2)
    if len({(int(s), int(t)) for s, t in st}) != len(st):
        raise ModelError("the second stage's steps repeat a (scenario, step) pair")
    sidx, tidx = st[:, 0], st[:, 1]
    nst, n = len(st), d.n
    C = d.C[sidx, tidx]  # (nst, n)
    P = d.P[sidx, tidx]
    prod, cons = P > 0, C > 0
    arcs = np.asarray(arcs, dtype=np.int64).reshape(-1, 2)
    ai, aj = arcs[:, 0], arcs[:, 1]
    fk, fa = np.nonzero(prod[:, ai] & cons[:, aj])  # FLOWS: step-major, arcs in order
    fi, fj = ai[fa], aj[fa]
    bk, bi = np.nonzero(cons)  # BUYERS (s, t, i), in step order
    sk, si = np.nonzero(prod)  # SELLERS
    nf, nb, ns = len(fk), len(bk), len(sk)
    buy_col = np.full((nst, n), -1, np.int64)
    buy_col[bk, bi] = nf + np.arange(nb)
    sell_col = np.full((nst, n), -1, np.int64)
    sell_col[sk, si] = nf + nb + np.arange(ns)
    # blocks: the steps in sorted (scenario, step) order that hold a node; Pyomo's
    # NODES (and so the first rows) are sorted, and every row and column sits at a node
    order = np.lexsort((tidx, sidx))
    node = prod | cons
    has = np.asarray(node.any(axis=1), dtype=bool)
    block_of_step = np.full(nst, -1, np.int64)
    kept = order[has[order]]
    block_of_step[kept] = np.arange(len(kept))
    blocks = [(int(sidx[k]), int(tidx[k])) for k in kept]
    w = d.probability[sidx][:, None]
    cost = np.concatenate([np.zeros(nf), (w * d.buy[sidx, tidx])[bk, bi],
                           -(w * d.sell[sidx, tidx])[sk, si]])
    col_kind = np.concatenate([np.zeros(nf, np.int8), np.ones(nb, np.int8),
                               np.full(ns, 2, np.int8)])
    col_index = np.full((nf + nb + ns, 4), -1, np.int64)
    col_index[:nf] = np.c_[sidx[fk], tidx[fk], fi, fj]
    col_index[nf:nf + nb, :3] = np.c_[sidx[bk], tidx[bk], bi]
    col_index[nf + nb:, :3] = np.c_[sidx[sk], tidx[sk], si]
    col_block = block_of_step[np.r_[fk, bk, sk]]

    rows = _Rows()
    # (1d) kirchhoff at NODES (sorted (s, t, i)): ``P̂ + Σ_in f + g⁺ == Ĉ + Σ_out f + g⁻``.
    # Pyomo's compile writes it ``lhs − rhs == 0`` (row sign +1: Σ_in f + g⁺ − Σ_out f
    # − g⁻ == Ĉ − P̂), except where the left side is the constant P̂ alone (no inflow,
    # Ĉ = 0): then ``rhs == P̂`` (sign −1: Σ_out f + g⁻ − Σ_in f − g⁺ == P̂ − Ĉ)
    nk_sorted, ni = np.nonzero(node[order])
    nk = order[nk_sorted]
    node_row = np.full((nst, n), -1, np.int64)
    inflow = np.zeros((nst, n), bool)
    inflow[fk, fj] = True
    sign = np.where(inflow | cons, 1.0, -1.0)  # (nst, n)
    r0 = rows.add("kirchhoff", len(nk), sign[nk, ni] * (C[nk, ni] - P[nk, ni]), 0,
                  block_of_step[nk], np.c_[sidx[nk], tidx[nk], ni])
    node_row[nk, ni] = r0 + np.arange(len(nk))
    fcols = np.arange(nf)
    rows.entries(rows.a, node_row[fk, fj], fcols, sign[fk, fj])  # into j
    rows.entries(rows.a, node_row[fk, fi], fcols, -sign[fk, fi])  # out of i
    rows.entries(rows.a, node_row[bk, bi], buy_col[bk, bi], sign[bk, bi])
    rows.entries(rows.a, node_row[sk, si], sell_col[sk, si], -sign[sk, si])
    # (1j) no_transit at SELLERS: Σ_out f + g⁻ <= P̂
    r0 = rows.add("no_transit", ns, P[sk, si], 1, block_of_step[sk],
                  np.c_[sidx[sk], tidx[sk], si])
    seller_row = np.full((nst, n), -1, np.int64)
    seller_row[sk, si] = r0 + np.arange(ns)
    rows.entries(rows.a, seller_row[fk, fi], fcols, np.ones(nf))
    rows.entries(rows.a, r0 + np.arange(ns), sell_col[sk, si], np.ones(ns))
    grids = dict(st=st, fk=fk, fi=fi, fj=fj, bk=bk, bi=bi, sk=sk, si=si, C=C, P=P,
                 block_of_step=block_of_step, buy_col=buy_col, sell_col=sell_col)
    cols = dict(cost=cost, kind=col_kind, index=col_index, block=col_block, n=nf + nb + ns,
                blocks=blocks)
    return cols, rows, grids


def _finish(cols, rows: _Rows, n_first: int, H_first=None) -> SecondStageMatrix:
    """The arrays of ``rows`` and ``cols``; ``H_first``: the first columns of ``H``
    given as a matrix (MLColExt's ``choose`` columns), ``rows.hx`` then holds the
    others' entries with their positions in the whole ``H``."""
    nr, nc = rows.n, cols["n"]
    A = _coo(rows.a, (nr, nc)).tocsc()
    A.sum_duplicates()
    if H_first is None:
        H = _coo(rows.hx, (nr, n_first)).tocsr()
    else:
        k0 = H_first.shape[1]
        rest = _coo([(r, c - k0, v) for r, c, v in rows.hx], (nr, n_first - k0)).tocsc()
        H = sp.hstack([H_first, rest], format="csc")
        del H_first, rest
        H = H.tocsr()
    H.sum_duplicates()
    cat = np.concatenate
    return SecondStageMatrix(
        A=A, H=H, h=cat(rows.rhs), sense=cat(rows.sense), cost=cols["cost"], offset=0.0,
        row_block=cat(rows.block), col_block=cols["block"], blocks=cols["blocks"],
        row_components=tuple(rows.components), row_names=cat(rows.name),
        row_index=cat(rows.index), col_kind=cols["kind"], col_index=cols["index"])


def single_loop_matrix(d: LoopData, steps) -> SecondStageMatrix:
    """SLExt's second stage (Model 4) on ``steps``: what Pyomo's compile of
    ``fixed_single_loop(d, x, u, steps, first_stage="vars", bounded=False)`` gives.

    First stage: ``member`` x (n) then ``surplus`` u (one per step of ``steps``).
    Rows, in order: (1d) ``kirchhoff``, (1j) ``no_transit``, (1b) ``sender_member``
    ``f − M x_i <= 0``, (1c) ``receiver_member`` ``f − M x_j <= 0``, (1e) ``sell_rule``
    ``g⁻ + P̂ x_i − P̂ u <= P̂``, (1f) ``buy_rule`` ``g⁺ + Ĉ x_i + Ĉ u <= 2 Ĉ``, with
    ``M = min(P̂_i, Ĉ_j)``.
    """
    steps = list(steps)
    cols, rows, g = _operation(d, steps, d.arcs)
    n = d.n
    fk, fi, fj, bk, bi, sk, si = (g[k] for k in ("fk", "fi", "fj", "bk", "bi", "sk", "si"))
    C, P, st, blk = g["C"], g["P"], g["st"], g["block_of_step"]
    nf, nb, ns = len(fk), len(bk), len(sk)
    M = np.minimum(P[fk, fi], C[fk, fj])
    fcols = np.arange(nf)
    flow_idx = np.c_[st[fk], fi, fj]
    for name, who in (("sender_member", fi), ("receiver_member", fj)):
        r0 = rows.add(name, nf, np.zeros(nf), 1, blk[fk], flow_idx)
        rr = r0 + fcols
        rows.entries(rows.a, rr, fcols, np.ones(nf))
        rows.entries(rows.hx, rr, who, -M)
    # (1e) g⁻ − P̂ (1 − x + u) <= 0
    r0 = rows.add("sell_rule", ns, P[sk, si], 1, blk[sk], np.c_[st[sk], si])
    rr = r0 + np.arange(ns)
    rows.entries(rows.a, rr, g["sell_col"][sk, si], np.ones(ns))
    rows.entries(rows.hx, rr, si, P[sk, si])
    rows.entries(rows.hx, rr, n + sk, -P[sk, si])
    # (1f) g⁺ − Ĉ (2 − x − u) <= 0
    r0 = rows.add("buy_rule", nb, 2.0 * C[bk, bi], 1, blk[bk], np.c_[st[bk], bi])
    rr = r0 + np.arange(nb)
    rows.entries(rows.a, rr, g["buy_col"][bk, bi], np.ones(nb))
    rows.entries(rows.hx, rr, bi, C[bk, bi])
    rows.entries(rows.hx, rr, n + bk, C[bk, bi])
    return _finish(cols, rows, n + len(steps))


def column_matrix(d: LoopData, loops, steps, pairs, arcs) -> SecondStageMatrix:
    """MLColExt's second stage (Model 11, aggregated (9d)/(9e)) on ``steps``: what
    Pyomo's compile of ``fixed_columns(d, loops, z, steps, rows="aggregated",
    first_stage="vars", bounded=False)`` gives.

    First stage: ``choose`` z (one per loop) then ``pair_active`` y (one per pair of
    ``pairs``, the sorted pairs inside some loop). ``arcs``: the arcs inside some loop
    (:func:`~recopt.models.loops.build.column_arcs`). Rows, in order: (1d)/(9b)
    ``kirchhoff``, (9c) ``no_transit``, (8a) ``loop_flow`` ``f − M y_ij <= 0``, (9d)
    ``buy_rule`` ``g⁺ + Ĉ Σ_{S∋i,(S,ω,t)∈Λ} z_S <= Ĉ`` at the sorted (ω, t, i) where
    that sum is not empty, (9e) ``sell_rule`` ``g⁻ + P̂ Σ_{S∋i,(S,ω,t)∉Λ} z_S <= P̂``.
    """
    steps = list(steps)
    cols, rows, g = _operation(d, steps, arcs)
    K = len(loops)
    fk, fi, fj, bk, bi, sk, si = (g[k] for k in ("fk", "fi", "fj", "bk", "bi", "sk", "si"))
    C, P, st, blk = g["C"], g["P"], g["st"], g["block_of_step"]
    nf = len(fk)
    nst, n = C.shape
    # (8a) loop_flow: f − M y[min(i,j), max(i,j)] <= 0
    pair_pos = np.full((n, n), -1, np.int64)
    for p, (i, j) in enumerate(pairs):
        pair_pos[i, j] = pair_pos[j, i] = p
    if nf and (pair_pos[fi, fj] < 0).any():
        raise ModelError("a flow arc of the second stage is in no loop's pairs")
    M = np.minimum(P[fk, fi], C[fk, fj])
    fcols = np.arange(nf)
    r0 = rows.add("loop_flow", nf, np.zeros(nf), 1, blk[fk], np.c_[st[fk], fi, fj])
    rows.entries(rows.a, r0 + fcols, fcols, np.ones(nf))
    rows.entries(rows.hx, r0 + fcols, K + pair_pos[fi, fj], -M)
    # Λ at the steps: loop k has a surplus at step q; the (steps x loops) products in
    # runs of LOOP_RUN loops (no (steps x loops) float temporary)
    net = P - C
    member = np.zeros((K, n), bool)
    for k, S in enumerate(loops):
        member[k, list(S)] = True
    surplus = np.empty((nst, K), bool)  # Σ_{i∈S} (P̂ − Ĉ) >= 0
    for a in range(0, K, LOOP_RUN):
        surplus[:, a:a + LOOP_RUN] = (net @ member[a:a + LOOP_RUN].T.astype(float)) >= 0
    order = np.lexsort((st[:, 1], st[:, 0]))
    # the choose columns of H, one loop at a time (CSC: int32 rows, float values)
    col_rows: list[list[np.ndarray]] = [[] for _ in range(K)]
    col_vals: list[list[np.ndarray]] = [[] for _ in range(K)]
    for name, has, value, col, at_surplus in (
            ("buy_rule", C > 0, C, g["buy_col"], True),
            ("sell_rule", P > 0, P, g["sell_col"], False)):
        # (step q, actor i) -> the loops k ∋ i with (k, q) in the set; rows where any
        count = np.zeros((nst, n))
        for a in range(0, K, LOOP_RUN):
            run = surplus[:, a:a + LOOP_RUN]
            count += (run if at_surplus else ~run).astype(float) \
                @ member[a:a + LOOP_RUN].astype(float)
        q_sorted, i_ = np.nonzero((has & (count > 0.5))[order])
        q = order[q_sorted]
        r0 = rows.add(name, len(q), value[q, i_], 1, blk[q], np.c_[st[q], i_])
        row_of = np.full((nst, n), -1, np.int64)
        row_of[q, i_] = r0 + np.arange(len(q))
        rows.entries(rows.a, row_of[q, i_], col[q, i_], np.ones(len(q)))
        for k, S in enumerate(loops):
            qs = np.nonzero(surplus[:, k] == at_surplus)[0]
            if not len(qs):
                continue
            rr = row_of[qs[:, None], np.asarray(S)[None, :]].ravel()
            vv = value[qs[:, None], np.asarray(S)[None, :]].ravel()
            ok = (rr >= 0) & (vv != 0)
            col_rows[k].append(rr[ok].astype(np.int32))
            col_vals[k].append(vv[ok])
    del surplus, member
    counts = np.array([sum(len(r) for r in c) for c in col_rows], dtype=np.int64)
    indptr = np.r_[0, np.cumsum(counts)]
    indices = np.concatenate([r for c in col_rows for r in c] or [np.zeros(0, np.int32)])
    del col_rows
    data = np.concatenate([v for c in col_vals for v in c] or [np.zeros(0)])
    del col_vals
    H_choose = sp.csc_matrix((data, indices, indptr), shape=(rows.n, K))
    del data, indices
    return _finish(cols, rows, K + len(pairs), H_choose)


__all__ = ["SecondStageMatrix", "single_loop_matrix", "column_matrix", "COLUMN_KINDS"]
