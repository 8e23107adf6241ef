"""Multi-round (iterative) keys: per-round share of production, per-round rule.

Wallonia and Brussels allow iterative allocation (docs/reconstruction/allocation-keys.md,
"Multi-round"): round ``r`` puts ``share_r * G`` on the table -- plus, when it carries,
what earlier rounds left unallocated or unused -- and shares it with its own rule;
each member's take is capped by its remaining need. The settlement is
:func:`recopt.settle.settle_rounds` (not re-implemented here); this module only turns
a readable description of the rounds into :class:`recopt.settle.Round` objects.

Round rules (``rule`` names):

``equal``        ``1/|N|`` for every member (egalitarian);
``equal_needy``  ``1/|{need > 0}|`` among members with remaining need;
``fixed``        the given shares ``s_i`` (specific / contract / investment shares);
``fixed_needy``  the shares restricted to members with remaining need, renormalised;
``prorata``      pro rata of the remaining need (dynamic consumption prorata; in round 1
                 the remaining need is ``C+``, i.e. Mustika (37)).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recopt.errors import ModelError
from recopt.keys.rules import KeyInputs, KeyPlan, check_shares, equal_keys, prorata_keys
from recopt.settle import Round, prorata_need

__all__ = ["ROUND_RULES", "RoundSpec", "round_keys", "multiround_plan", "parse_rounds"]

ROUND_RULES = ("equal", "equal_needy", "fixed", "fixed_needy", "prorata")


@dataclass(frozen=True)
class RoundSpec:
    """One round: ``share`` of ``G`` (0..1), a rule name, carry of leftovers, shares.

    ``shares`` (one per member, sum <= 1) is used by the ``fixed`` rules; when None
    the plan's default shares are used.
    """

    share: float
    rule: str
    carry: bool = True
    shares: tuple[float, ...] | None = None


class _Restricted:
    """Round rule: fixed shares restricted to members with remaining need."""

    def __init__(self, shares: np.ndarray):
        self.shares = shares

    def __call__(self, need: np.ndarray, available: np.ndarray) -> np.ndarray:
        return prorata_keys(np.where(need > 0, self.shares, 0.0))


def round_keys(rule: str, n_members: int, shares=None, mask: np.ndarray | None = None):
    """Keys (array) or a rule ``f(remaining_need, available)`` for one round.

    ``mask``: ``(member,)`` True for members, False for community-owned plants
    (no share; equal keys are ``1/M`` over the members).
    """
    if rule == "equal":
        if mask is not None:
            return equal_keys(np.zeros(n_members), "all", mask).copy()
        return np.full(n_members, 1.0 / n_members)
    if rule == "equal_needy":
        return lambda need, available: equal_keys(need, "consumers", mask)
    if rule == "prorata":
        return prorata_need
    if rule in ("fixed", "fixed_needy"):
        if shares is None:
            raise ModelError(f"round rule {rule!r} needs shares (one per member)")
        s = check_shares(shares, n_members)
        return s if rule == "fixed" else _Restricted(s)
    raise ModelError(f"unknown round rule {rule!r}; known: {', '.join(ROUND_RULES)}")


def multiround_plan(inputs: KeyInputs, rounds: Sequence[RoundSpec | tuple],
                    shares=None) -> KeyPlan:
    """A multi-round key as a :class:`KeyPlan` of :class:`recopt.settle.Round`.

    Parameters
    ----------
    inputs : KeyInputs
    rounds : sequence of RoundSpec or (share, rule[, carry])
        The rounds in order; shares of production sum to at most 1.
    shares : array_like, optional
        Default member shares for ``fixed`` rounds.
    """
    out = []
    for r, spec in enumerate(rounds):
        if not isinstance(spec, RoundSpec):
            spec = RoundSpec(*spec)
        sh = spec.shares if spec.shares is not None else shares
        if sh is not None and spec.rule in ("fixed", "fixed_needy"):
            sh = inputs.member_shares(sh, f"shares of round {r + 1}")
        out.append(Round(float(spec.share),
                         round_keys(spec.rule, inputs.n_members, sh, inputs.member_mask),
                         bool(spec.carry), f"round {r + 1}: {spec.rule}"))
    if not out:
        raise ModelError("a multi-round key needs at least one round")
    return KeyPlan(rounds=tuple(out))


def parse_rounds(text: str) -> list[RoundSpec]:
    """Parse ``"0.5:equal,0.3:fixed,0.2:prorata"`` into round specs."""
    specs = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            share, rule = part.split(":")
            specs.append(RoundSpec(float(share), rule.strip()))
        except ValueError:
            raise ModelError(f"cannot read round {part!r}; write share:rule, e.g. 0.5:equal"
                             ) from None
    return specs


def share_lattice(n_rounds: int, resolution: int) -> np.ndarray:
    """Every round-share vector ``k / resolution`` (integers k >= 0 summing to resolution).

    The grid of multi-round brute force (:func:`recopt.keys.brute_force.round_grid`) and
    of the LOGAAS search (:mod:`recopt.keys.logaas`); rows in lexicographic order of the
    first ``n_rounds - 1`` entries.

    Returns an integer array ``(n_points, n_rounds)``; shares are ``row / resolution``.
    """
    if n_rounds < 1 or resolution < 1:
        raise ModelError("n_rounds and resolution must be >= 1")
    pts = [c for c in itertools.product(range(resolution + 1), repeat=n_rounds - 1)
           if sum(c) <= resolution]
    return np.array([(*c, resolution - sum(c)) for c in pts], dtype=int)
