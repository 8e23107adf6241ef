"""``recopt two-stage INSTANCE``: Mustika's Stage 1 (EMS) then Stage 2 (keys), Table 3.

::

    recopt two-stage instances/le_cailar_march.nc --ems EMS1,EMS2,EMS3,EMS4 \\
        --keys KoR1,KoR2,KoR3,KoR4,KoR5,KoR6,KoR7,KoR8,KoR9,KoR10 --out results/

Prints Table 3 (collective bill per EMS x key with each EMS's own baseline), the Stage 1
indicators (Mustika's grid-based SCR (29) / SSR (31) beside recopt's community ratios)
and the members' bill reductions (Fig. 8); ``--out`` writes them as CSV with the
schedules (netCDF) and the storage plots (PNG). Exit code 0 when every step is optimal,
3 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys

from recopt.cli.args import nonnegative_float, positive_float
from recopt.errors import RecoptError
from recopt.solve.result import check_output_dir
from recopt.solve.two_stage import (
    EMS_NAMES,
    MUSTIKA_KEYS_ALL,
    format_tables,
    run_two_stage,
    write_outputs,
)
from recopt.solvers.status import EXIT_CODES, Status


def _options(items: list[str]) -> dict[str, dict]:
    """``EMS4.penalty=lexicographic`` -> {"EMS4": {"penalty": "lexicographic"}}."""
    out: dict[str, dict] = {}
    for text in items:
        if "=" not in text or "." not in text.split("=", 1)[0]:
            raise argparse.ArgumentTypeError(f"options take NAME.option=value, got {text!r}")
        left, value = text.split("=", 1)
        name, option = left.split(".", 1)
        out.setdefault(name.strip(), {})[option.strip()] = value.strip()
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recopt two-stage", description=__doc__.splitlines()[0])
    p.add_argument("instance", help="instance file (.nc) with storage and prices")
    p.add_argument("--ems", default=",".join(EMS_NAMES), help="comma-separated EMS1..EMS4")
    p.add_argument("--keys", default=",".join(MUSTIKA_KEYS_ALL),
                   help="comma-separated keys: KoR1-KoR7 and other rule keys, KoR8-KoR10, LP1")
    p.add_argument("--option", action="append", default=[], metavar="NAME.OPTION=VALUE",
                   help="an EMS's or key's option, e.g. EMS4.penalty=lexicographic or "
                        "KoR10.order=bill_then_fairness (repeatable)")
    p.add_argument("--solver", default="highs")
    p.add_argument("--time-limit", type=positive_float, default=None, help="seconds per solve")
    p.add_argument("--mip-gap", type=nonnegative_float, default=None,
                   help="relative MIP gap (EMS3/EMS4 complementarity MILP)")
    p.add_argument("--out", default=None, help="folder for CSV, netCDF and PNG outputs")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logger = logging.getLogger("recopt")
    level = logger.level
    if args.quiet:  # no progress bar either (recopt.progress)
        logger.setLevel(logging.ERROR)
    try:
        return _run(args)
    finally:
        logger.setLevel(level)


def _run(args) -> int:
    try:
        if args.out:  # before the solves: results are never computed only to be lost
            check_output_dir(args.out)
        opts = _options(args.option)
        ems = [e.strip() for e in args.ems.split(",") if e.strip()]
        keys = [k.strip() for k in args.keys.split(",") if k.strip()]
        result = run_two_stage(
            args.instance, ems, keys,
            ems_options={k: v for k, v in opts.items() if k.upper().startswith("EMS")},
            key_options={k: v for k, v in opts.items() if not k.upper().startswith("EMS")},
            solver=args.solver, time_limit=args.time_limit, mip_gap=args.mip_gap,
            progress=None if args.quiet else (lambda line: print(line, file=sys.stderr)))
    except (RecoptError, argparse.ArgumentTypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CODES[Status.BAD_INPUT]
    print(format_tables(result))
    if args.out:
        try:
            for path in write_outputs(result, args.out, plots=not args.no_plots):
                print(f"written    {path}")
        except OSError as exc:  # an I/O failure: one line, not a traceback
            print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_CODES[Status.BAD_INPUT]
    ok = all(v == Status.OPTIMAL.value for v in result.statuses.values()) and all(
        v == Status.OPTIMAL.value for v in result.ems_status.values())
    return 0 if ok else EXIT_CODES[Status.FEASIBLE]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
