"""Command line: compare keys on an instance, or brute-force a region's catalogue.

Examples::

    python -m recopt.keys instance.nc --keys ES,PR,HEP,CA --co2 250 --out results/
    python -m recopt.keys instance.nc --keys GS,ES --shares shares.csv
    python -m recopt.keys instance.nc --keys ES --rounds 0.5:equal,0.5:prorata
    python -m recopt.keys instance.nc --brute-force --region wallonia --rank-by scr

Prints a comparison table (means over scenarios, with P10/P90 when there are several)
and writes ``metrics.nc``, ``summary.csv``, ``members.csv`` and figures (PNG + PDF:
``keys.png`` the metrics per key with their values, ``members.png`` per member,
``bands.png`` the distribution over scenarios when there are several) into
``--out``; the brute force writes ``ranking.csv`` and ``ranking.nc``. Exit code 0 on
success, 2 on bad input (the message names the culprit).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from recopt.cli.args import positive_float, positive_int
from recopt.data.instance import load
from recopt.data.roles import plant_mask
from recopt.errors import RecoptError
from recopt.keys.brute_force import brute_force
from recopt.keys.catalogues import REGIONS
from recopt.keys.evaluate import evaluate_keys, summarise
from recopt.keys.fixed import fixed_plan, read_shares_csv
from recopt.keys.multiround import multiround_plan, parse_rounds
from recopt.keys.rules import GUZMAN_SHARES, KEYS, OSPINA_KEYS
from recopt.metrics import plots
from recopt.metrics.community import METRIC_ATTRS
from recopt.solve.result import check_output_dir

TABLE_METRICS = ("self_consumption_rate", "scr_upper_bound", "self_sufficiency_mean",
                 "bill_saving_mean", "gini", "energy_to_shift_total", "co2_avoided",
                 "collective_bill", "surplus_injected")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recopt.keys", description=__doc__.split("\n")[0])
    p.add_argument("instance", nargs="?", help="instance file (.nc)")
    p.add_argument("--keys", default=None,
                   help="comma-separated key names (default: Ospina's five, GS only "
                        "with --shares)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metrics (default: Ospina's six + bills)")
    p.add_argument("--co2", type=float, default=None,
                   help="grid carbon intensity, g CO2eq/kWh (enables co2_avoided)")
    p.add_argument("--shares", default=None,
                   help="fixed shares for GS/fixed: CSV (member + one column per round), "
                        "'guzman' or 'investment'")
    p.add_argument("--ets-convention", choices=("offer", "ospina"), default="offer",
                   help="energy to shift of PR: 'offer' (recopt: the uncapped offer "
                        "lambda*G may exceed the need, ETS >= 0) or 'ospina' (her A.4 caps "
                        "PR's allocation at the demand: ETS = 0)")
    p.add_argument("--fixed-reading", choices=("keep", "optimce"), default="keep",
                   help="brute force: fixed rounds 2-3 key with the shares as they are "
                        "('keep') or re-weighted on members with remaining need "
                        "('optimce')")
    p.add_argument("--rounds", default=None,
                   help="add a multi-round key, e.g. 0.5:equal,0.3:fixed,0.2:prorata")
    p.add_argument("--chunk-scenarios", type=positive_int, default=None,
                   help="scenarios per block (bounds memory)")
    p.add_argument("--brute-force", action="store_true",
                   help="rank the region's standard keys (+ round grid)")
    p.add_argument("--region", default="wallonia", help="wallonia, brussels or flanders")
    p.add_argument("--rank-by", default="self_consumption_rate",
                   help="ranking metric (scr, ssr, saving, gini, collective_bill, ...)")
    p.add_argument("--top", type=positive_int, default=5, help="winner + runners-up shown")
    p.add_argument("--step", type=positive_float, default=0.1, help="round-share grid step")
    p.add_argument("--n-rounds", type=positive_int, default=3, help="rounds of the grid")
    p.add_argument("--no-grid", action="store_true", help="catalogue only, no round grid")
    p.add_argument("--out", default=None, help="directory for results and plots")
    p.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")
    p.add_argument("--list-keys", action="store_true", help="list the keys and exit")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _list_keys() -> str:
    lines = [f"{k:<6} {s.kind:<8} {s.description}  [{s.source}]" for k, s in KEYS.items()]
    lines.append("")
    for region, cands in REGIONS.items():
        lines.append(f"{region}: " + "; ".join(c.name for c in cands))
    return "\n".join(lines)


def _shares(arg, instance):
    if arg is None:
        return None
    if arg in ("guzman", "investment"):
        return arg

    names = np.asarray(instance["member"].values).astype(str)
    plant = plant_mask(instance)
    return read_shares_csv(arg, names[~plant].tolist(), plants=names[plant].tolist())


def _table(summary, keys, several: bool) -> str:
    """Metrics (rows, with units) by key (columns), 6 significant digits."""
    cols = [m for m in TABLE_METRICS if m in summary]
    rows = []
    for k in keys:
        row = {"key": k}
        for m in cols:
            da = summary[m].sel(key=k)
            mean = float(da.sel(stat="mean"))
            label = f"{m} [{METRIC_ATTRS.get(m, ('1', ''))[0]}]"
            row[label] = (f"{mean:.6g} [{float(da.sel(stat='p10')):.6g}, "
                          f"{float(da.sel(stat='p90')):.6g}]") if several else f"{mean:.6g}"
        rows.append(row)
    head = "mean over scenarios [P10, P90]\n" if several else ""
    return head + pd.DataFrame(rows).set_index("key").T.to_string()


def _tidy_summary(summary) -> pd.DataFrame:
    """One row per (key, stat), one numeric column per figure (scalars per scenario)."""
    scalar = [v for v in summary.data_vars if set(summary[v].dims) == {"key", "stat"}]
    return summary[scalar].to_dataframe().reset_index()


def _compare(args, instance) -> int:
    shares = _shares(args.shares, instance)
    if args.keys is None:  # Ospina's five; GS needs shares, so only with --shares
        names = list(OSPINA_KEYS) if shares is not None else [
            k for k in OSPINA_KEYS if k != "GS"]
        if shares is None:
            print("note: GS left out of the default comparison (it needs --shares: a CSV "
                  "of shares per member, 'guzman' or 'investment')", file=sys.stderr)
    else:
        names = [k.strip() for k in args.keys.split(",") if k.strip()]
    params: dict = {}
    items: list = []
    for name in names:
        if name.lower() in ("gs", "fixed") and shares is not None:
            if isinstance(shares, str):
                params[name] = {"shares": shares}
                items.append(name)
            else:
                table = shares
                items.append((name, lambda inputs, t=table: fixed_plan(inputs, t)))
        elif name.lower() in ("gs", "fixed"):
            raise RecoptError(f"{name} needs shares: pass --shares FILE.csv (a 'member' "
                              "column and one column of shares), --shares guzman or "
                              "--shares investment")
        else:
            items.append(name)
    if args.rounds:
        specs = parse_rounds(args.rounds)
        sh = shares if shares is not None and not isinstance(shares, str) else None
        items.append((f"rounds({args.rounds})",
                      lambda inputs: multiround_plan(inputs, specs,
                                                     shares=None if sh is None else sh[0])))
    metrics = args.metrics
    if metrics is None:
        metrics = ["self_consumption_rate", "self_sufficiency", "bill_saving", "gini",
                   "energy_to_shift", "collective_bill", "surplus_injected",
                   "sharing_upper_bound"] + (["co2_avoided"] if args.co2 is not None else [])
    ds = evaluate_keys(instance, items, metrics=metrics, key_params=params,
                       co2_intensity=args.co2, chunk_scenarios=args.chunk_scenarios,
                       ets_convention=args.ets_convention)
    summary = summarise(ds)
    keys = [str(k) for k in ds["key"].values]
    print(_table(summary, keys, ds.sizes["scenario"] > 1))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        ds.to_netcdf(out / "metrics.nc")
        _tidy_summary(summary).to_csv(out / "summary.csv", index=False)
        written = [out / "metrics.nc", out / "summary.csv"]
        per_member = [v for v in ds.data_vars if "member" in ds[v].dims]
        # members only: a community-owned plant holds no key share and has no bill
        members = np.flatnonzero(~plant_mask(instance))
        if per_member:  # the full per-member table behind members.png (tidy, numeric)
            summary[per_member].isel(member=members).to_dataframe().to_csv(
                out / "members.csv")
            written.append(out / "members.csv")
        if not args.no_plots:
            results = {k: ds.sel(key=k, drop=True).isel(member=members) for k in keys}
            figures: list[tuple[Callable[..., Path], str]] = [
                (plots.key_comparison, "keys.png"), (plots.member_figure, "members.png")]
            if ds.sizes["scenario"] > 1:  # one scenario has no distribution to draw
                figures.append((plots.bands, "bands.png"))
            for fn, name in figures:
                try:
                    written.append(fn(results, out / name))
                except RecoptError as exc:
                    logging.getLogger(__name__).warning("%s not drawn: %s", name, exc)
        print("wrote " + ", ".join(str(w) for w in written))
    return 0


def _brute(args, instance) -> int:
    shares = _shares(args.shares, instance)
    if isinstance(shares, str) and shares == "guzman":
        shares = GUZMAN_SHARES
    elif isinstance(shares, str):  # "investment": the default source of specific shares
        shares = None
    elif shares is not None:  # a CSV table: its first column of shares
        shares = np.asarray(shares)[0]
    res = brute_force(instance, args.region, metric=args.rank_by,
                      grid=False if args.no_grid else None, n_rounds=args.n_rounds,
                      step=args.step, shares=shares, top=args.top,
                      fixed_reading=args.fixed_reading)
    print(f"brute force, region {args.region}, ranked by {res.metric} "
          f"(specific shares from {res.shares_source})")
    print(res.summary(args.top))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        res.tidy().to_csv(out / "ranking.csv", index=False)
        res.to_dataset().to_netcdf(out / "ranking.nc")
        print(f"wrote {out / 'ranking.csv'}, {out / 'ranking.nc'}")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose:  # recopt's progress and INFO lines, not every library's
        logging.getLogger("recopt").setLevel(logging.INFO)
    if args.list_keys:
        print(_list_keys())
        return 0
    if not args.instance:
        print("error: give an instance file (or --list-keys)", file=sys.stderr)
        return 2
    try:
        if args.out:  # before any computation: results are never computed only to be lost
            check_output_dir(args.out)
        instance = load(args.instance)
        return _brute(args, instance) if args.brute_force else _compare(args, instance)
    except RecoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # any other I/O failure: one line, not a traceback
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
