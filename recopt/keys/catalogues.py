"""Regional catalogues of standard keys (Belgium: Wallonia, Brussels, Flanders).

The candidate sets of OptimCE's brute force (OptimCE 2026, docs/references.md,
"Algorithm 1"): the standard keys each regulator accepts. Each candidate is built from
the rule-based building blocks of :mod:`recopt.keys.rules` and
:mod:`recopt.keys.multiround` (no second implementation) and settled by
:mod:`recopt.settle`. The card ``models/keys-regional-catalogues.md`` states each rule
and what was assumed.

Wallonia (CWaPE): egalitarian fixed, specific fixed (investment or contract shares),
dynamic consumption prorata, and iterative allocation in up to three rounds (the
round grid of :mod:`recopt.keys.brute_force`).
Brussels (BRUGEL): fixed single-round (equal or specific), fixed multi-round, prorata,
hybrid.
Flanders (VREG/Fluvius): vaste (fixed), relatieve (fixed + one redistribution of the
unused part among unsaturated members, pro rata of their shares), optimale (the
redistribution iterated until the quarter-hour's injection is consumed or every
member is saturated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recopt.errors import ModelError
from recopt.keys.multiround import RoundSpec, multiround_plan
from recopt.keys.rules import (
    KeyInputs,
    KeyPlan,
    key_cascade,
    key_equal,
    key_hybrid,
    key_prorata_consumption,
    prorata_keys,
)

__all__ = ["Candidate", "REGIONS", "ITERATIVE_REGIONS", "catalogue", "specific_shares"]

#: Regions whose regulator accepts iterative (multi-round) keys: the round grid is
#: part of their brute force.
ITERATIVE_REGIONS = ("wallonia", "brussels")


def specific_shares(inputs: KeyInputs, shares=None) -> tuple[np.ndarray, str]:
    """Shares of the *specific* fixed key and where they came from.

    ``shares`` if given (one per member, sum <= 1); else pro rata of the instance's
    ``investment``; else pro rata of each member's total net consumption over the
    data (contract shares proportional to the expected off-take -- an assumption:
    the regulators leave the contract shares to the community).
    """
    if shares is not None:
        return inputs.member_shares(shares, "specific shares"), "given"
    inv = inputs.member_data.get("investment")
    if inv is not None and np.sum(inv) > 0:
        return prorata_keys(np.where(inputs.mask, np.asarray(inv, dtype=float), 0.0)), \
            "investment"
    use = inputs.net_consumption.sum(axis=tuple(range(inputs.net_consumption.ndim - 1)))
    if use.sum() <= 0:
        raise ModelError("no member consumes: specific shares cannot be derived; give shares")
    return prorata_keys(use), "net consumption (contract shares)"


@dataclass(frozen=True)
class Candidate:
    """A standard key of a region: name, family and how to build its plan."""

    name: str
    region: str
    family: str
    description: str
    build: Callable[[KeyInputs, np.ndarray], KeyPlan]


def _fixed(inputs, shares):
    return KeyPlan(keys=np.broadcast_to(shares, inputs.net_consumption.shape))


def _redistribute(n_rounds: int):
    """Fixed shares, then ``n_rounds - 1`` rounds re-sharing the unused part among
    members with remaining need, pro rata of their shares (carry)."""
    def build(inputs, shares):
        specs = [RoundSpec(1.0, "fixed", True, tuple(shares))]
        specs += [RoundSpec(0.0, "fixed_needy", True, tuple(shares))] * (n_rounds - 1)
        return multiround_plan(inputs, specs)
    return build


def _optimale(inputs, shares):
    return key_cascade(inputs, weights=shares)


def _with_equal(build):
    def wrapped(inputs, shares):
        return build(inputs, inputs.equal_shares())
    return wrapped


REGIONS: dict[str, list[Candidate]] = {
    "wallonia": [
        Candidate("egalitarian fixed", "wallonia", "fixed", "1/|N| to every member",
                  lambda i, s: key_equal(i, "all")),
        Candidate("specific fixed", "wallonia", "fixed",
                  "fixed shares (investment or contract shares)", _fixed),
        Candidate("dynamic consumption prorata", "wallonia", "dynamic",
                  "prorata of net consumption per quarter-hour",
                  lambda i, s: key_prorata_consumption(i)),
    ],
    "brussels": [
        Candidate("fixed single-round equal", "brussels", "fixed", "1/|N|, one round",
                  lambda i, s: key_equal(i, "all")),
        Candidate("fixed single-round specific", "brussels", "fixed",
                  "specific shares, one round", _fixed),
        Candidate("fixed multi-round specific", "brussels", "fixed",
                  "specific shares, then two rounds re-sharing the unused part among "
                  "members with need, pro rata of their shares", _redistribute(3)),
        Candidate("fixed multi-round equal", "brussels", "fixed",
                  "equal shares, then two rounds re-sharing the unused part equally "
                  "among members with need", _with_equal(_redistribute(3))),
        Candidate("prorata", "brussels", "dynamic", "prorata of net consumption",
                  lambda i, s: key_prorata_consumption(i)),
        Candidate("hybrid", "brussels", "hybrid",
                  "equal share capped at need, remainder prorata of remaining need",
                  lambda i, s: key_hybrid(i, "all")),
    ],
    "flanders": [
        Candidate("vaste (equal)", "flanders", "fixed", "fixed 1/|N|",
                  lambda i, s: key_equal(i, "all")),
        Candidate("vaste (specific)", "flanders", "fixed", "fixed specific shares", _fixed),
        Candidate("relatieve (equal)", "flanders", "relative",
                  "equal shares + one redistribution among unsaturated members",
                  _with_equal(_redistribute(2))),
        Candidate("relatieve (specific)", "flanders", "relative",
                  "specific shares + one redistribution among unsaturated members "
                  "pro rata of their shares", _redistribute(2)),
        Candidate("optimale (equal)", "flanders", "optimal",
                  "equal shares, redistributed until the injection is consumed "
                  "(= cascade)", lambda i, s: key_cascade(i)),
        Candidate("optimale (specific)", "flanders", "optimal",
                  "specific shares, redistributed until the injection is consumed "
                  "(weighted water-filling)", _optimale),
    ],
}


def catalogue(region: str) -> list[Candidate]:
    """The standard keys of ``region`` (case-insensitive)."""
    key = str(region).strip().lower()
    aliases = {"wallonie": "wallonia", "bruxelles": "brussels", "brussel": "brussels",
               "vlaanderen": "flanders"}
    key = aliases.get(key, key)
    if key not in REGIONS:
        raise ModelError(f"unknown region {region!r}; known: {', '.join(REGIONS)}")
    return list(REGIONS[key])
