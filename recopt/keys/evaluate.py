"""Evaluation driver: keys x scenarios -> metrics (Ospina §4.3-4.4, §5).

Every key is computed on the whole (scenario, time, member) cube at once
(:mod:`recopt.keys.rules`), settled by the one settlement rule (:mod:`recopt.settle`)
and measured by the metric suite (:func:`recopt.metrics.community.evaluate_arrays`,
with one :class:`~recopt.metrics.community.MetricContext` per block of scenarios shared
by all keys). No loop over time or members; the only loop is over keys and over
blocks of scenarios (``chunk_scenarios``), which bounds memory: an instance backed by
Dask (``xarray.open_dataset(..., chunks={"scenario": 50})``) is loaded one block at a
time, so scenario sets larger than memory work.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import xarray as xr

from recopt.data.schema import SCENARIO
from recopt.errors import ModelError
from recopt.keys.rules import (
    OSPINA_KEYS,
    KeyInputs,
    KeyPlan,
    key_prorata_consumption,
    key_spec,
    make_plan,
    settle_plan,
)
from recopt.metrics.community import (
    METRIC_ATTRS,
    MetricContext,
    across_scenarios,
    evaluate_arrays,
)
from recopt.progress import progress
from recopt.settle import settle_arrays

__all__ = ["evaluate_keys", "summarise", "entitlement", "DEFAULT_METRICS"]

log = logging.getLogger(__name__)

#: Ospina's six criteria (§4.3): SCR, SSR, bill saving, Gini, energy to shift, CO2.
DEFAULT_METRICS = ("self_consumption_rate", "self_sufficiency", "bill_saving", "gini",
                   "energy_to_shift", "co2_avoided")


def entitlement(settled: Mapping[str, np.ndarray], plan: KeyPlan | None = None
                ) -> np.ndarray:
    """Energy a key entitles each member to, kWh per step (for Energy to Shift).

    One round: the allocation ``lambda * G`` (Mustika (5)). Several rounds: what the
    member took in the earlier rounds plus its offer in the last round -- for the
    hybrid key exactly Ospina's ``alpha`` of Algorithm A.5 (an offer a member cannot
    use in an early round is handed on, so it is not the member's to shift into).
    """
    if plan is not None and plan.entitlement is not None:
        return plan.entitlement
    if "round_take" not in settled:
        return settled["alloc"]
    return settled["round_take"][:-1].sum(axis=0) + settled["round_offer"][-1]


def settle_active(inputs: KeyInputs, plan: KeyPlan) -> dict[str, np.ndarray]:
    """What the metrics need of a settled plan: ``comm_in``, ``comm_out``, ``entitlement``.

    The one settlement rule (:func:`recopt.settle.settle_arrays`) through its fast
    entry (``validated=True``: the meter values and the keys' arrays come from the
    library, so they are not re-checked or copied) and computing only ``alloc``,
    ``comm_in`` and ``comm_out`` (Mustika (5), (7), (12)); round plans go through
    :func:`recopt.keys.rules.settle_plan` (checked). ``entitlement`` is the key's
    entitlement (:func:`entitlement`; for one round the allocation, Mustika (5));
    ``taken`` is ``min(entitlement, C+)`` when it is ``comm_in`` (one round, entitlement
    = allocation), for :func:`recopt.metrics.community.energy_to_shift`.
    Equal to :func:`recopt.keys.rules.settle_plan` + :func:`entitlement` (tested).
    """
    if plan.rounds is not None:
        res = settle_plan(inputs, plan)
        return {"comm_in": res["comm_in"], "comm_out": res["comm_out"],
                "entitlement": entitlement(res, plan)}

    res = settle_arrays(inputs.net_consumption, inputs.net_production, keys=plan.keys,
                        allocation=plan.allocation, validated=True,
                        outputs=("alloc", "comm_in", "comm_out"),
                        community_production=inputs.community_production())
    out = {"comm_in": res["comm_in"], "comm_out": res["comm_out"],
           "entitlement": entitlement(res, plan)}
    if plan.entitlement is None:  # entitlement = alloc, so min(alloc, C+) = comm_in (7)
        out["taken"] = res["comm_in"]
    return out


def evaluate_keys(
    instance: xr.Dataset,
    keys: Sequence[str] | str = OSPINA_KEYS,
    *,
    metrics: Sequence[str] | str | None = DEFAULT_METRICS,
    key_params: Mapping[str, Mapping[str, Any]] | None = None,
    co2_intensity=None,
    chunk_scenarios: int | None = 4,
    threads: int = 2,
    checked: bool = False,
    ets_convention: str = "offer",
) -> xr.Dataset:
    """Metrics of several keys on every scenario of an instance.

    Parameters
    ----------
    instance : xarray.Dataset
        A recopt instance; NumPy- or Dask-backed.
    keys : sequence or comma-separated str
        Key names (:data:`recopt.keys.rules.KEYS`), default Ospina's five; an item may
        also be ``(label, rule)`` with ``rule(inputs, **params) -> KeyPlan``.
    metrics : sequence of str, optional
        Metric names of :data:`recopt.metrics.community.METRICS`; default Ospina's six.
        ``co2_avoided`` is skipped (with a log line) when no intensity is given.
    key_params : mapping, optional
        Extra parameters per key name, e.g. ``{"GS": {"shares": [...]}}``.
    co2_intensity : float or array_like, optional
        Grid carbon intensity, g CO2eq/kWh, scalar or per time step ``(T,)``.
    chunk_scenarios : int or None, default 4
        Scenarios per block (None: all at once). Small blocks keep the arrays in
        cache and bound memory (4 x 8760 h x 14 members: ~4 MB per array; 2-10 time
        about the same, 1 pays the per-block overhead, benchmarks/bench_keys.py).
    threads : int, default 2
        Blocks evaluated in parallel threads (NumPy releases the GIL).
    checked : bool, default False
        Settle through the checked entry (:func:`recopt.keys.rules.settle_plan`:
        every array validated, every flow computed) instead of the fast one
        (:func:`settle_active`); same results (tested), slower: the benchmark's
        baseline.

    Returns
    -------
    xarray.Dataset
        The variables of :func:`recopt.metrics.community.evaluate` with a leading
        ``key`` dim: per (key, scenario) and per (key, scenario, member).
    """
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    metrics = list(metrics) if metrics is not None else None
    if metrics is not None and "co2_avoided" in metrics and co2_intensity is None:
        log.info("co2_avoided skipped: no carbon intensity given")
        metrics.remove("co2_avoided")
    params: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (key_params or {}).items()}
    if ets_convention not in ("offer", "ospina"):
        raise ModelError(f"ets_convention must be 'offer' or 'ospina'; got {ets_convention!r}")
    if ets_convention == "ospina":
        for item in keys:
            if isinstance(item, str) and key_spec(item).rule is key_prorata_consumption:
                params.setdefault(item, {}).setdefault("capped", True)
    n_s = instance.sizes[SCENARIO]
    step = chunk_scenarios or n_s
    if step < 1:
        raise ModelError("chunk_scenarios must be >= 1")
    phi = None if co2_intensity is None else np.asarray(co2_intensity, dtype=float)
    rules = {}
    for item in keys:  # a name, or (label, rule(inputs, **params) -> KeyPlan)
        label, rule = (item, item) if isinstance(item, str) else item
        rules[str(label)] = rule
    keys = list(rules)
    # the first block's context and inputs: prices, fees, days, periods are shared
    first: list[tuple[MetricContext, KeyInputs]] = []

    def run(a: int) -> dict[str, dict[str, np.ndarray]]:
        block = instance.isel({SCENARIO: slice(a, a + step)}).load()
        ctx = MetricContext(block, like=first[0][0] if first else None)
        net = {"net_consumption": ctx.net_consumption, "net_production": ctx.net_production,
               "production_total": ctx.community_production}
        if first:  # same time axis and members: billing periods and member data too
            inputs = dataclasses.replace(first[0][1], **net)
        else:
            inputs = KeyInputs.from_instance(block, net=(ctx.net_consumption,
                                                         ctx.net_production),
                                             production_total=ctx.community_production)
            first.append((ctx, inputs))
        out = {}
        for name in keys:
            plan = make_plan(inputs, rules[name], **params.get(name, {}))
            if checked:
                full = settle_plan(inputs, plan)
                res = {"comm_in": full["comm_in"], "comm_out": full["comm_out"],
                       "entitlement": entitlement(full, plan)}
            else:
                res = settle_active(inputs, plan)
            out[name] = evaluate_arrays(ctx, res["comm_in"], res["comm_out"],
                                        allocation=res["entitlement"], metrics=metrics,
                                        co2_intensity=phi, taken=res.get("taken"))
            del res
        return out

    starts = list(range(0, n_s, step))
    with progress(len(starts), "key evaluation", "scenario chunks",
                  enabled=None if len(starts) > 1 else False) as bar:
        done = [run(starts[0])] if starts else []  # the first block sets the shared context
        bar.update(1)
        starts = starts[1:]
        if threads and threads > 1 and len(starts) > 1:  # NumPy releases the GIL
            with ThreadPoolExecutor(threads) as ex:
                for part in ex.map(run, starts):
                    done.append(part)
                    bar.update(1)
        else:
            for a in starts:
                done.append(run(a))
                bar.update(1)
    blocks = {k: [d[k] for d in done] for k in keys}
    coords = {SCENARIO: instance[SCENARIO].values, "member": instance["member"].values}
    data = {}
    for var in blocks[keys[0]][0]:
        stacked = np.stack([np.concatenate([b[var] for b in blocks[k]], axis=0)
                            for k in keys])
        dims = ("key", SCENARIO, "member") if stacked.ndim == 3 else ("key", SCENARIO)
        unit, long_name = METRIC_ATTRS.get(var, ("", var))
        data[var] = (dims, stacked, {"units": unit, "long_name": long_name})
    ds = xr.Dataset(data, coords={**coords, "key": list(keys)})
    ds.attrs = {"description": "metrics per key and scenario (recopt.keys.evaluate)",
                "keys": ",".join(keys)}
    return ds


def summarise(ds: xr.Dataset) -> xr.Dataset:
    """Mean, P10 and P90 over scenarios (:func:`recopt.metrics.community.across_scenarios`)."""
    return across_scenarios(ds)
