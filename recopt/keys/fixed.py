"""Fixed keys typed in by a user: a table of shares per member, optionally per round.

A one-round table is the specific fixed key (Ospina GS, (15)). With several rounds,
round 1 shares ``round_shares[0] * G`` by the first column of shares and every later
round re-shares, by its own column, what is left (carry) plus its own
``round_shares[r] * G``; by default ``round_shares = (1, 0, 0, ...)``: later rounds only
redistribute what earlier rounds could not place. Settled by
:func:`recopt.settle.settle_rounds` (one round: :func:`recopt.settle.settle_arrays`).

CSV layout: a ``member`` column and one column of shares per round (any names, in
order, e.g. ``share`` or ``round_1,round_2``); shares are fractions (sum <= 1 per
round) or percentages (sum <= 100, detected when a column sums above 1.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recopt.errors import CSVFormatError, ModelError
from recopt.keys.multiround import RoundSpec, multiround_plan
from recopt.keys.rules import KeyInputs, KeyPlan

__all__ = ["fixed_plan", "read_shares_csv"]


def fixed_plan(inputs: KeyInputs, shares, round_shares: Sequence[float] | None = None
               ) -> KeyPlan:
    """Fixed key from shares ``(member,)`` or ``(round, member)``.

    Parameters
    ----------
    inputs : KeyInputs
    shares : array_like
        One share per member (sum <= 1), or one row per round.
    round_shares : sequence of float, optional
        Share of ``G`` put on the table by each round (default ``(1, 0, ...)``).
    """
    s = np.atleast_2d(np.asarray(shares, dtype=float))
    if s.ndim != 2:
        raise ModelError("shares must be (member,) or (round, member)")
    # one share per member (plants left out or given 0), checked and widened per round
    s = np.stack([inputs.member_shares(s[r], f"shares of round {r + 1}")
                  for r in range(s.shape[0])])
    if s.shape[0] == 1 and round_shares is None:
        return KeyPlan(keys=np.broadcast_to(s[0], inputs.net_consumption.shape))
    rs = list(round_shares) if round_shares is not None else [1.0] + [0.0] * (s.shape[0] - 1)
    if len(rs) != s.shape[0]:
        raise ModelError(f"{len(rs)} round shares for {s.shape[0]} rounds of member shares")
    specs = [RoundSpec(rs[r], "fixed", True, tuple(s[r])) for r in range(s.shape[0])]
    return multiround_plan(inputs, specs)


def read_shares_csv(path, members: Sequence | None = None,
                    plants: Sequence | None = None) -> np.ndarray:
    """Read a shares table; returns ``(round, member)`` fractions in ``members`` order.

    ``plants``: community-owned plants (role ``plant``), which hold no share: a row
    for one is accepted when its shares are 0 and dropped (a positive share is an
    error naming it); a table without them is the usual case.

    Raises :class:`recopt.errors.CSVFormatError` naming the problem (missing
    ``member`` column, unknown or missing members, non-numeric shares).
    """
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - reported with the path
        raise CSVFormatError(f"cannot read shares CSV {path}: {exc}") from None
    if "member" not in df.columns:
        raise CSVFormatError(f"{path}: needs a 'member' column; got {list(df.columns)}")
    cols = [c for c in df.columns if c != "member"]
    if not cols:
        raise CSVFormatError(f"{path}: needs at least one column of shares")
    df["member"] = df["member"].astype(str)
    if df["member"].duplicated().any():
        raise CSVFormatError(f"{path}: duplicated members "
                             f"{sorted(set(df['member'][df['member'].duplicated()]))}")
    plant_rows = df["member"].isin([str(p) for p in (plants or [])])
    if plant_rows.any():
        cols0 = [c for c in df.columns if c != "member"]
        vals = pd.to_numeric(df.loc[plant_rows, cols0].stack(), errors="coerce")
        if (vals.fillna(1.0) != 0).any():
            raise CSVFormatError(f"{path}: the community-owned plant(s) "
                                 f"{sorted(df.loc[plant_rows, 'member'])} take no key share; "
                                 "give them 0 or leave them out")
        df = df.loc[~plant_rows].reset_index(drop=True)
    if members is not None:
        members = [str(m) for m in members]
        missing = sorted(set(members) - set(df["member"]))
        extra = sorted(set(df["member"]) - set(members))
        if missing or extra:
            raise CSVFormatError(f"{path}: members missing {missing}, unknown {extra}")
        df = df.set_index("member").loc[members].reset_index()
    try:
        table = df[cols].to_numpy(dtype=float).T
    except ValueError:
        raise CSVFormatError(f"{path}: shares must be numbers") from None
    if np.isnan(table).any():
        raise CSVFormatError(f"{path}: empty share cells")
    for r in range(table.shape[0]):
        if table[r].sum() > 1.5:
            table[r] = table[r] / 100.0
    return table
