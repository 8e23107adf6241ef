"""Benefit sharing on a Result: ``--option sharing=shapley|nucleolus|least_core``.

Model card ``models/benefit-sharing.md``. After a model is solved, its benefit is
shared as a cooperative game (:mod:`recopt.decomp.games`) and the allocation is
written into the Result beside the model's own settlement:

community models (LP1, KoR8; game: LP1 restricted to each coalition)
    ``sharing_value`` (member): the saving allocated to each member, EUR (expected
    over scenarios, over the horizon); ``shared_bill`` = expected stand-alone bill
    minus it; ``sharing_transfer`` = the model's expected bill minus
    ``shared_bill`` (what the member receives on top of its settled bill; the
    transfers sum to zero when the model reaches ``v(N)``);
loop models (SLCpct, MLCpct, MLCol, SLExt, MLColExt; one game per loop)
    ``sharing_value`` (member): each member's share of its loop's benefit, EUR;
    ``payment``: its expected cost (grid and internal payments) = stand-alone cost
    minus its share; ``internal_payment``: ``payment`` minus its grid cost (> 0:
    pays the loop); per loop ``loop_value`` (= v(loop)), ``implied_internal_price``
    (EUR/kWh, the one price of internal flows closest to the allocation, least
    squares) and ``implied_price_residual`` (EUR: 0 when one price reproduces it).

KPIs on the allocation: ``sharing_benefit_max`` (13a) and ``sharing_benefit_min``
(13b) over the members sharing, ``sharing_gini`` (Ospina (22)) of the shares; the
core check of the allocation, and for communities of the model's own bills and of
every rule key's bills (:data:`CORE_CHECKED_KEYS`, Mustika's KoR1-KoR7): variables
``key_saving`` (rule_key, member) and ``key_in_core`` (rule_key), attr
``sharing_keys_core``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import xarray as xr

from recopt.data import view
from recopt.decomp.games import (
    allocate,
    community_game,
    core_check,
    loop_game,
    superadditivity,
)
from recopt.errors import RecoptError
from recopt.keys.evaluate import evaluate_keys
from recopt.metrics.community import gini
from recopt.settle import meter_flows

#: The rule keys whose bills a community Result checks against the core.
CORE_CHECKED_KEYS = ("KoR1", "KoR2", "KoR3", "KoR4", "KoR5", "KoR6", "KoR7")


def key_core_checks(instance: xr.Dataset, game, keys=CORE_CHECKED_KEYS) -> xr.Dataset:
    """Each rule key's expected bill saving per member and whether it is in the core.

    The keys are settled and billed by the one settlement rule
    (:func:`recopt.keys.evaluate.evaluate_keys`); the saving vector of a key is an
    allocation of *its* collective saving, so a key outside the optimum is never
    efficient for the game's ``v(N)`` and the check then names the grand coalition
    or a blocking coalition (:func:`recopt.decomp.games.core_check`).
    """
    w = instance["scenario_probability"]
    names, savings, flags, text = [], [], [], {}
    for key in keys:
        try:
            ds = evaluate_keys(instance, [key], metrics=["bill_saving"])
        except RecoptError as exc:  # e.g. KoR4 without investments: said, not checked
            text[key] = f"not computed: {exc}"
            continue
        saving = (ds["bill_saving"].isel(key=0) * w).sum("scenario").transpose("member")
        check = core_check(game, saving.values)
        names.append(key)
        savings.append(saving.values)
        flags.append(int(check.in_core))
        text[key] = check.describe()
    U = instance.sizes["member"]
    out = xr.Dataset(
        {"key_saving": (("rule_key", "member"), np.array(savings).reshape(len(names), U),
                        {"units": "EUR", "long_name": "expected bill saving under the key"}),
         "key_in_core": (("rule_key",), np.array(flags, np.int8), {"units": "1"})},
        coords={"rule_key": np.array(names, dtype=object), "member": instance["member"].values})
    out.attrs["sharing_keys_core"] = json.dumps(text)
    return out


def _expect(result: xr.Dataset, name: str, instance: xr.Dataset) -> np.ndarray:
    w = instance["scenario_probability"]
    return (result[name] * w).sum("scenario").transpose("member").values


def share(instance: xr.Dataset, spec, result: xr.Dataset, model_options: dict, *, method: str,
          seed: int = 0, rel_tol: float = 0.01, solver: str = "highs",
          workers: int | None = None, shapley_method: str = "auto") -> xr.Dataset:
    """Add the allocation ``method`` of ``spec.game`` to ``result`` (see the module doc).

    ``shapley_method``: the sampler of a sampled Shapley value
    (:func:`recopt.decomp.games.shapley_sampler`; ``"auto"``: multilinear on the
    community game, permutation on loop games).

    A failure of the sharing (solver trouble) leaves the model's Result as it is,
    with the reason in ``attrs["sharing_message"]``.
    """
    try:
        if spec.game == "community":
            extra = _share_community(instance, result, method, seed, rel_tol, solver, workers,
                                     shapley_method)
        elif spec.game == "loop":
            extra = _share_loops(instance, result, model_options, method, seed, rel_tol,
                                 solver, workers, shapley_method)
        else:
            raise RecoptError(f"model {spec.name} has no cooperative game to share")
    except RecoptError as exc:
        result.attrs["sharing"] = method
        result.attrs["sharing_message"] = f"sharing failed: {exc}"
        return result
    out = result.merge(extra, compat="override", join="outer", combine_attrs="override")
    out.attrs = dict(result.attrs)
    out.attrs.update(extra.attrs)
    text = out.attrs.get("summary_text", "")
    out.attrs["summary_text"] = (text + "\n" if text else "") + extra.attrs["sharing_summary"]
    return out


#: Superadditivity is checked exhaustively in a Result up to this many players (3^n pairs).
SUPERADDITIVITY_UP_TO = 10


def _superadditivity_text(game) -> str:
    if game.n > SUPERADDITIVITY_UP_TO:
        return f"not checked ({game.n} players > {SUPERADDITIVITY_UP_TO})"
    rep = superadditivity(game, max_exhaustive=SUPERADDITIVITY_UP_TO)
    if rep.holds:
        return f"holds ({rep.n_pairs} disjoint pairs)"
    assert rep.worst_pair is not None  # a failing check names its pair
    a, b = rep.worst_pair
    return (f"fails: v({{{', '.join(a)}}}) + v({{{', '.join(b)}}}) exceeds their union's "
            f"value by {rep.worst_violation:.6g} EUR")


def _label(method: str, detail: dict) -> str:
    """``method``, with the sampler when the Shapley value was sampled."""
    if detail.get("shapley") == "sampled":
        return f"{method} (sampled, {detail['sampler']})"
    return method


def _kpis(values: np.ndarray) -> dict:
    return {"sharing_benefit_max": float(values.max()) if values.size else math.nan,
            "sharing_benefit_min": float(values.min()) if values.size else math.nan,
            "sharing_gini": float(gini(values)) if values.size else math.nan}


def _share_community(instance, result, method, seed, rel_tol, solver, workers,
                     shapley_method="auto") -> xr.Dataset:
    game = community_game(instance, solver=solver, workers=workers)
    alloc = allocate(game, method, seed=seed, rel_tol=rel_tol, solver=solver,
                     shapley_method=shapley_method)
    base = _expect(result, "baseline_bill", instance)
    bill = _expect(result, "bill", instance)
    shared = base - alloc.value
    own = core_check(game, base - bill)
    eur = {"units": "EUR"}
    ds = xr.Dataset(
        {"sharing_value": (("member",), alloc.value,
                           {**eur, "long_name": f"saving allocated by {method}"}),
         "shared_bill": (("member",), shared,
                         {**eur, "long_name": "expected bill after the transfers"}),
         "sharing_transfer": (("member",), bill - shared,
                              {**eur, "long_name": "transfer received on top of the "
                               "settled bill"})},
        coords={"member": instance["member"].values})
    kpis = _kpis(alloc.value)
    ds.attrs.update(
        sharing=method, sharing_game="community", sharing_grand_value=alloc.grand_value,
        sharing_in_core=int(alloc.core.in_core) if alloc.core else 1,
        sharing_core=alloc.core.describe() if alloc.core else "one player",
        sharing_model_bills_core=own.describe(),
        sharing_superadditivity=_superadditivity_text(game),
        sharing_detail=json.dumps(alloc.detail, default=float), **kpis)
    keys = key_core_checks(instance, game)
    ds = ds.merge(keys, combine_attrs="override")
    ds.attrs.update(keys.attrs)
    in_core = [str(k) for k, c in zip(keys["rule_key"].values, keys["key_in_core"].values,
                                      strict=True) if c]
    ds.attrs["sharing_summary"] = (
        f"game       {_label(method, alloc.detail)}: v(N) = {alloc.grand_value:,.2f} EUR, "
        f"member shares "
        f"{kpis['sharing_benefit_min']:,.2f} .. {kpis['sharing_benefit_max']:,.2f} EUR "
        f"(Gini {kpis['sharing_gini']:.3f}); allocation {ds.attrs['sharing_core']}; "
        f"the model's own bills: {own.describe()}; rule keys in the core: "
        f"{', '.join(in_core) or 'none'}")
    return ds


def _share_loops(instance, result, options, method, seed, rel_tol, solver,
                 workers, shapley_method="auto") -> xr.Dataset:
    sc = bool(options.get("self_consumption", True))
    distance = options.get("distance", "auto")
    members = [str(m) for m in instance["member"].values]
    pos = {m: i for i, m in enumerate(members)}
    n = len(members)
    w = np.asarray(instance["scenario_probability"].values, float)
    c = view.stm(instance, "consumption").astype(float)
    p = view.stm(instance, "production").astype(float)
    if sc:
        c, p = meter_flows(c, p)
    buy = view.price(instance, "price_grid_buy")
    sell = view.price(instance, "price_grid_sell")
    gb = view.stm(result, "grid_buy")
    gs = view.stm(result, "grid_sell")
    f = result["flow"].transpose("scenario", "time", "member", "receiver").values
    grid_cost = np.tensordot(w, (buy * gb - sell * gs).sum(axis=1), axes=1)
    e_f = np.tensordot(w, f.sum(axis=1), axes=1)
    received = e_f.sum(axis=0) - e_f.sum(axis=1)  # kWh, net internal energy received
    standalone = result["standalone_cost"].transpose("member").values
    share_ = np.zeros(n)
    loops = [str(x) for x in result["loop"].values]
    value = np.full(len(loops), np.nan)
    price = np.full(len(loops), np.nan)
    residual = np.full(len(loops), np.nan)
    in_core = np.zeros(len(loops), np.int8)
    details, cores, superadditive = {}, [], {}
    sharing = np.zeros(n, bool)
    for k, text in enumerate(result["loop_members"].values):
        names = [m for m in str(text).split(",") if m]
        if len(names) < 2:
            continue
        game = loop_game(instance, names, self_consumption=sc, distance=distance,
                         solver=solver, workers=workers)
        alloc = allocate(game, method, seed=seed, rel_tol=rel_tol, solver=solver,
                         shapley_method=shapley_method)
        idx = [pos[m] for m in names]
        share_[idx] = alloc.value
        sharing[idx] = True
        value[k] = alloc.grand_value
        t = standalone[idx] - grid_cost[idx] - alloc.value  # internal payment of each
        r = received[idx]
        denom = float(r @ r)
        if denom > 0:
            price[k] = float(t @ r) / denom
            residual[k] = float(np.abs(t - price[k] * r).max())
        in_core[k] = int(alloc.core.in_core) if alloc.core else 1
        details[loops[k]] = alloc.detail
        cores.append(f"{loops[k]}: {alloc.core.describe() if alloc.core else 'one player'}")
        superadditive[loops[k]] = _superadditivity_text(game)
    payment = standalone - share_
    eur = {"units": "EUR"}
    ds = xr.Dataset(
        {"sharing_value": (("member",), share_,
                           {**eur, "long_name": f"share of the loop's benefit ({method})"}),
         "payment": (("member",), payment,
                     {**eur, "long_name": "expected cost after sharing (grid + internal)"}),
         "internal_payment": (("member",), payment - grid_cost,
                              {**eur, "long_name": "paid to the loop (< 0: received)"}),
         "loop_value": (("loop",), value, {**eur, "long_name": "v(loop): the loop's benefit"}),
         "implied_internal_price": (("loop",), price,
                                    {"units": "EUR/kWh", "long_name": "internal price closest "
                                     "to the allocation (least squares)"}),
         "implied_price_residual": (("loop",), residual,
                                    {**eur, "long_name": "largest misfit of that one price"}),
         "loop_allocation_in_core": (("loop",), in_core, {"units": "1"})},
        coords={"member": instance["member"].values, "loop": result["loop"].values})
    kpis = _kpis(share_[sharing])
    ds.attrs.update(sharing=method, sharing_game="loop", sharing_in_core=int(in_core[
        ~np.isnan(value)].all()) if np.isfinite(value).any() else 1,
        sharing_core="; ".join(cores), sharing_detail=json.dumps(details, default=float),
        sharing_superadditivity=json.dumps(superadditive),
        **kpis)
    prices = ", ".join(f"{loops[k]} {price[k]:.4f}" for k in range(len(loops))
                       if np.isfinite(price[k]))
    ds.attrs["sharing_summary"] = (
        f"game       {method} per loop: member shares {kpis['sharing_benefit_min']:,.2f} .. "
        f"{kpis['sharing_benefit_max']:,.2f} EUR (13b .. 13a, Gini {kpis['sharing_gini']:.3f});"
        f" implied internal prices EUR/kWh: {prices or 'none'}; "
        + ("every allocation in its loop's core" if ds.attrs["sharing_in_core"]
           else "; ".join(cores)))
    return ds
