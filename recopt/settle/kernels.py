"""The vectorised round kernels of the settlement rule (Mustika et al. 2022, (5)-(12)).

Arrays are shaped ``(..., member)`` with the member axis last; energies in kWh per
step. :mod:`recopt.settle.engine` settles keys with them, and so do the fast paths
that must give the same flows without a settlement per candidate: the brute force
(:mod:`recopt.keys.brute_force`), LOGAAS's rounds (:mod:`recopt.keys.logaas`) and
KoR's extraction (:mod:`recopt.models.kor`).

* :func:`round_step` — one round on checked keys: offer (5), capped, take (7);
* :func:`round_take` — ``min(lambda A, need)`` for keys valid by construction;
* :func:`round_leftover` — what a round leaves on the table;
* :func:`prorata_need`, :func:`prorata_fraction` — the pro-rata-of-need rule and
  its closed form;
* :func:`sales_ratio` — the share of each injection sold to the community (11)-(12);
* :func:`member_sum`, :func:`step_product`, :func:`cap_offer` — the primitives.
"""

from __future__ import annotations

import numpy as np


def member_sum(x: np.ndarray) -> np.ndarray:
    """Sum over the member (last) axis of a float array, kWh per step.

    ``einsum`` is several times faster than ``x.sum(axis=-1)`` when there are few
    members (NumPy reduces a short last axis slowly) and, unlike a matrix-vector
    product, never calls a multi-threaded BLAS (which stalls on a busy machine and
    fights the evaluation driver's own threads); equal to ``x.sum(axis=-1)`` up to
    floating-point summation order (~1e-16 relative). ``G`` itself is always summed
    with ``x.sum(axis=-1)``, so that ``keys * G`` is bit-identical to allocations
    users compute the same way.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 0:
        return x.sum(axis=-1)
    return np.einsum("...u->...", x)


def step_product(x: np.ndarray, per_step: np.ndarray, out: np.ndarray | None = None
                 ) -> np.ndarray:
    """``x * per_step[..., None]``: a per-step factor applied to every member.

    Through ``einsum`` (the same single multiplication per element, so the same
    bits), which is faster than broadcasting over a short member axis.
    """
    x = np.asarray(x, dtype=float)
    per_step = np.asarray(per_step, dtype=float)
    if out is not None and np.shares_memory(out, x):  # in place: einsum would be slow
        return np.multiply(x, per_step[..., None], out=out)
    shape = np.broadcast_shapes(x.shape, per_step.shape + (x.shape[-1],))
    return np.einsum("...u,...->...u", np.broadcast_to(x, shape),
                     np.broadcast_to(per_step, shape[:-1]), out=out)


def cap_offer(offer: np.ndarray, available: np.ndarray, inplace: bool = False) -> np.ndarray:
    """Scale offers back where their sum exceeds ``available`` by round-off.

    ``inplace=True`` rescales ``offer`` itself (the caller owns it).
    """
    total = member_sum(offer)
    over = total > available
    if np.any(over):
        factor = np.ones_like(total)
        np.divide(available, total, out=factor, where=over)
        offer = step_product(offer, factor, out=offer if inplace else None)
    return offer


def prorata_need(remaining_need: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Dynamic rule: keys pro rata of the remaining need (0 where no one needs).

    Parameters
    ----------
    remaining_need : numpy.ndarray
        Need still uncovered, kWh per step, member on the last axis.
    available : numpy.ndarray
        Energy available in the round, kWh per step (unused; part of the rule
        signature of :class:`Round`).

    Returns
    -------
    numpy.ndarray
        ``lambda_i = need_i / sum_j need_j``, same shape as ``remaining_need``.
    """
    total = remaining_need.sum(axis=-1, keepdims=True)
    out = np.zeros_like(remaining_need, dtype=float)
    np.divide(remaining_need, total, out=out, where=total > 0)
    return out


def round_step(
    keys: np.ndarray, available: np.ndarray, need: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One allocation round on checked keys (the kernel of :func:`settle_rounds`).

    ``offer = lambda * available`` (Mustika (5), scaled back if round-off makes it
    exceed ``available``), ``take = min(offer, need)`` (Mustika (7)) and the need
    left afterwards. Keys are *not* checked here (callers check them, or generate
    valid keys themselves, e.g. the brute force of :mod:`recopt.keys.brute_force`).

    Parameters
    ----------
    keys : numpy.ndarray
        ``lambda >= 0`` with ``sum_i lambda <= 1``, shape ``(..., member)``.
    available : numpy.ndarray
        Energy on the table in this round, kWh per step, shape ``(...)``.
    need : numpy.ndarray
        Remaining need (net consumption not yet covered), kWh, shape ``(..., member)``.

    Returns
    -------
    offer, take, remaining_need : numpy.ndarray
        kWh per step, shape ``(..., member)``.
    """
    offer = cap_offer(step_product(keys, available), available, inplace=True)
    take = np.minimum(offer, need)
    return offer, take, np.maximum(need - take, 0.0)


def round_take(keys: np.ndarray, available: np.ndarray, need: np.ndarray) -> np.ndarray:
    """``take = min(lambda * available, need)``: Mustika (5) and (7) for valid keys.

    The round kernel for keys valid by construction (``lambda >= 0``, ``sum <= 1``:
    the brute force's lattice, LOGAAS's splits), so no round-off cap is needed;
    :func:`round_step` is the same rule with the cap, for keys from outside.
    ``keys`` broadcasts against ``need`` (``(..., member)``); ``available`` is per
    step (``(...)``); kWh. Keeps the inputs' float dtype.
    """
    take = np.multiply(available[..., None], keys)
    return np.minimum(take, need, out=take)


def round_leftover(available: np.ndarray, taken_total: np.ndarray) -> np.ndarray:
    """What a round leaves on the table: ``max(available - sum_i take, 0)``, kWh per step.

    With ``carry`` it is re-offered in the next carrying round, else it ends in the
    surplus (:func:`settle_rounds`).
    """
    return np.maximum(available - taken_total, 0.0)


def prorata_fraction(available: np.ndarray, total_need: np.ndarray) -> np.ndarray:
    """``min(1, A / N)`` (0 where ``N = 0``): a pro-rata-of-need round in closed form.

    With keys ``lambda = need / N`` (:func:`prorata_need`) every member takes the
    same fraction ``f`` of its need: ``take = need * f``.
    """
    f = np.zeros_like(available)
    np.divide(available, total_need, out=f, where=total_need > 0)
    return np.minimum(f, 1.0, out=f)


def sales_ratio(taken_total: np.ndarray, production_total: np.ndarray) -> np.ndarray:
    """``min(1, X / G)`` (0 where ``G = 0``): the share of each injection sold to the
    community, Mustika (11)-(12): ``comm_out = P- * sales_ratio(sum_i comm_in, G)``."""
    ratio = np.zeros_like(production_total)
    np.divide(taken_total, production_total, out=ratio, where=production_total > 0)
    return np.clip(ratio, 0.0, 1.0, out=ratio)
