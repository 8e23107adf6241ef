"""``recopt import``: turn meter exports (CSV) into an instance file (netCDF).

Examples::

    recopt import export.csv --members members.csv --timezone Europe/Brussels -o community.nc
    recopt import fluvius.csv --members members.csv --timezone Europe/Brussels \\
        --price-grid-buy 0.32 --price-grid-sell 0.04 -o community.nc
    recopt import wide.csv --timezone Europe/Paris --price-grid-buy 0.25 \\
        --price-grid-sell 0.05 --price-community-buy 0.15 --price-community-sell 0.10 \\
        -o community.nc
    recopt solve community.nc --model LP1        # then any model, or
    recopt keys community.nc                     # the key comparison

The export is *wide* (a timestamp or a date and a time column, then one column
``<member>_consumption`` / ``<member>_production`` per member and energy) or *long*
(one row per meter point, register and quarter hour, separate date and time
columns, as DSO portals export). The member file has a ``member`` column and any of
``meter`` (meter points of the member, ``EAN1+EAN2``), ``role`` (consumer,
prosumer, producer, plant), ``category``, the four prices (EUR/kWh),
``subscription_fee`` (EUR per billing period), ``installed_power`` (kW), ...
Every problem is reported at once, each with file, line and column; exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from recopt.data import member_roles, save
from recopt.data.meter_import import MEMBER_FILE_COLUMNS, read_meter_export
from recopt.data.schema import PRICE_VARIABLES
from recopt.errors import RecoptError

EXIT_OK, EXIT_BAD_INPUT = 0, 2

_SCALAR_OPTIONS = PRICE_VARIABLES + ("subscription_fee",)


def _pair(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    a, b = text.split("=", 1)
    return a.strip(), b.strip()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recopt import", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("Examples::", 1)[1])
    p.add_argument("export", help="the meter export (CSV, wide or long)")
    p.add_argument("-o", "--output", required=True, help="instance file to write (.nc)")
    p.add_argument("--members", default=None,
                   help="member file (CSV: member[, meter, role, category, prices, fee, ...])")
    p.add_argument("--timezone", default=None,
                   help="IANA timezone of naive local timestamps and of the billing "
                        "calendar, e.g. Europe/Brussels (default UTC)")
    p.add_argument("--layout", choices=("auto", "wide", "long"), default="auto")
    p.add_argument("--unit", default="kWh",
                   help="unit of the values without a unit column: kWh, Wh, MWh, kW, W, MW")
    p.add_argument("--sep", default=None, help="field separator (default: sniffed)")
    p.add_argument("--decimal", default=None, choices=(".", ","),
                   help="decimal mark (default: sniffed)")
    p.add_argument("--timestamp-format", default=None,
                   help="strftime format of the date/time, e.g. '%%d/%%m/%%Y %%H:%%M'")
    p.add_argument("--timestamp-label", choices=("start", "end"), default="start",
                   help="a timestamp starts (default) or ends its interval")
    p.add_argument("--time-step", default=None, help="step length, e.g. 15min or 0.25")
    p.add_argument("--register", type=_pair, action="append", default=[],
                   metavar="TEXT=KIND", help="a register's kind (consumption|production)")
    p.add_argument("--column", type=_pair, action="append", default=[],
                   metavar="ROLE=NAME", help="name a column: timestamp, date, time, meter, "
                                             "register, value, unit")
    for name in _SCALAR_OPTIONS:
        unit = "EUR/kWh" if name in PRICE_VARIABLES else "EUR per billing period"
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=None,
                       help=f"{name} for every member, {unit} (unless in the member file)")
    p.add_argument("--billing-period", default=None,
                   help="pandas frequency of billing periods (default MS: calendar month)")
    return p


def _summary(inst, path: Path) -> str:
    t = pd.DatetimeIndex(inst.time.values)
    roles = member_roles(inst)
    counts = ", ".join(f"{int((roles == r).sum())} {r}" for r in dict.fromkeys(roles))
    tz = inst.attrs.get("billing_timezone", "UTC")
    cons = float(inst.consumption.sum())
    prod = float(inst.production.sum())
    step_min = inst.attrs["time_step_hours"] * 60
    return "\n".join([
        f"wrote {path}",
        f"members    {inst.sizes['member']} ({counts})",
        f"time       {t.size} steps of {step_min:g} min, {t[0]} to {t[-1]} UTC "
        f"(billing timezone {tz})",
        f"energy     consumption {cons:,.3f} kWh, production {prod:,.3f} kWh",
        f"next       recopt solve {path} --model LP1   |   recopt keys {path}",
    ])


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    prices = {name: getattr(args, name) for name in _SCALAR_OPTIONS
              if getattr(args, name) is not None}
    attrs = {"billing_period": args.billing_period} if args.billing_period else {}
    assert set(prices) <= set(MEMBER_FILE_COLUMNS)
    try:
        inst = read_meter_export(
            args.export, layout=args.layout, timezone=args.timezone,
            members_file=args.members, prices=prices, unit=args.unit, sep=args.sep,
            decimal=args.decimal, timestamp_format=args.timestamp_format,
            timestamp_label=args.timestamp_label, time_step=args.time_step,
            registers=dict(args.register), columns=dict(args.column), attrs=attrs)
        out = Path(args.output)
        if out.parent and not out.parent.exists():
            out.parent.mkdir(parents=True)
        save(inst, out)
    except RecoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(_summary(inst, out))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
