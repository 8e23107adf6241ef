"""KoR7: Shapley keys of the per-step self-consumption game (Mustika §3.2.7).

The value of a coalition ``S`` at step ``t`` is the energy it could share,
``v_t(S) = min(sum_{i in S} P-_i, sum_{i in S} C+_i)`` (Mustika (42), read with the
production and consumption sums of ``S``). The Shapley value (43) is computed

* exactly, by enumerating the ``2^|N|`` coalitions (vectorised over steps), when
  ``|N| <= exact_max``;
* otherwise by permutation sampling: the mean marginal contribution over
  ``n_permutations`` random orders of the members (seeded; the same orders for
  every step), an unbiased estimator of (43).

Keys follow (44): negative values clipped to 0, then normalised to sum 1 (0 at a
step where every value is 0). ``v_t`` is monotone, so marginals are never negative
and the clipping never binds for this game; it is kept as the paper states it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from recopt.errors import ModelError

__all__ = ["shapley_values", "shapley_keys", "normalise_shapley"]

#: Steps per chunk, so that the (steps x coalitions) arrays stay small.
_CHUNK_CELLS = 4_000_000


def _exact(c: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Exact Shapley values (43) for steps ``(n, U)`` by coalition enumeration."""
    n, u = c.shape
    codes = np.arange(2 ** u)
    masks = ((codes[:, None] >> np.arange(u)) & 1).astype(float)  # (2^U, U)
    size = masks.sum(axis=1).astype(int)
    fact = np.array([math.factorial(k) for k in range(u + 1)], dtype=float)
    weight = fact[size] * fact[u - size - 1 + (size == u)] / fact[u]  # |S|!(U-|S|-1)!/U!
    out = np.empty((n, u))
    step = max(1, _CHUNK_CELLS // (2 ** u))
    for a in range(0, n, step):
        b = min(n, a + step)
        v = np.minimum(p[a:b] @ masks.T, c[a:b] @ masks.T)  # (chunk, 2^U)
        for i in range(u):
            without = codes[(codes >> i) & 1 == 0]
            out[a:b, i] = (v[:, without | (1 << i)] - v[:, without]) @ weight[without]
    return out


def _sampled(c: np.ndarray, p: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """Mean marginal contribution over the given member orders ``perms (K, U)``."""
    n, u = c.shape
    k = perms.shape[0]
    out = np.zeros((n, u))
    inv = np.argsort(perms, axis=1)  # position of each member in each order
    step = max(1, _CHUNK_CELLS // (k * u))
    for a in range(0, n, step):
        b = min(n, a + step)
        cp = np.cumsum(c[a:b][:, perms], axis=-1)  # (chunk, K, U) prefix sums by order
        pp = np.cumsum(p[a:b][:, perms], axis=-1)
        v = np.minimum(cp, pp)
        marg = np.diff(v, axis=-1, prepend=0.0)  # marginal of the member at position j
        out[a:b] = np.take_along_axis(marg, np.broadcast_to(inv, marg.shape), -1).mean(axis=1)
    return out


def shapley_values(net_consumption, net_production, *, exact_max: int = 12,
                   n_permutations: int = 500, seed: int = 0,
                   permutations: np.ndarray | str | None = None) -> np.ndarray:
    """Shapley values ``phi_{i,t}`` of ``v_t(S) = min(P-_S, C+_S)`` (Mustika (43)), kWh.

    Parameters
    ----------
    net_consumption, net_production : array_like
        ``C+`` and ``P-``, kWh per step, shape ``(..., member)``.
    exact_max : int, default 12
        Largest community computed exactly (``2^|N|`` coalitions per step).
    n_permutations : int, default 500
        Random member orders sampled beyond ``exact_max``.
    seed : int, default 0
        Seed of the sampled orders.
    permutations : array (K, U), "all" or None
        Use these member orders instead (``"all"``: every order, exact for small
        ``|N|``); forces the sampling estimator.

    Returns
    -------
    numpy.ndarray
        ``phi`` with the shape of the inputs, kWh per step; ``sum_i phi = v_t(N)``.
    """
    c = np.maximum(np.asarray(net_consumption, dtype=float), 0.0)
    p = np.maximum(np.asarray(net_production, dtype=float), 0.0)
    c, p = np.broadcast_arrays(c, p)
    shape = c.shape
    u = shape[-1]
    c2, p2 = c.reshape(-1, u), p.reshape(-1, u)
    if permutations is None and u <= exact_max:
        return _exact(c2, p2).reshape(shape)
    if isinstance(permutations, str):
        if permutations != "all":
            raise ModelError("permutations must be an array of member orders or 'all'")
        if u > 9:
            raise ModelError("permutations='all' is for |N| <= 9 (|N|! orders)")

        perms = np.array(list(itertools.permutations(range(u))))
    elif permutations is not None:
        perms = np.asarray(permutations, dtype=int)
    else:
        if n_permutations < 1:
            raise ModelError("n_permutations must be >= 1")
        rng = np.random.default_rng(seed)
        perms = np.array([rng.permutation(u) for _ in range(n_permutations)])
    if perms.ndim != 2 or perms.shape[1] != u or np.any(np.sort(perms, 1) != np.arange(u)):
        raise ModelError(f"permutations must be orders of the {u} members")
    return _sampled(c2, p2, perms).reshape(shape)


def normalise_shapley(phi: np.ndarray) -> np.ndarray:
    """Mustika (44): clip negative values to 0 and normalise to sum 1 per step."""
    phi = np.maximum(np.asarray(phi, dtype=float), 0.0)
    total = phi.sum(axis=-1, keepdims=True)
    out = np.zeros(phi.shape)
    np.divide(phi, total, out=out, where=total > 0)
    return out


def shapley_keys(net_consumption, net_production, **kw) -> np.ndarray:
    """KoR7 keys: :func:`normalise_shapley` of :func:`shapley_values` (Mustika (43)-(44))."""
    return normalise_shapley(shapley_values(net_consumption, net_production, **kw))
