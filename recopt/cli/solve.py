"""``python -m recopt.solve INSTANCE --model NAME``: solve one instance from the shell.

Prints a short summary (status, objective, gap, times, headline metrics), writes
the Result to netCDF with ``--output`` and its figures with ``--plot DIR`` (loop map,
convergence of Benders / column generation, storage schedules), and exits with the status's code
(:data:`recopt.solvers.status.EXIT_CODES`): 0 optimal, 3 feasible with a gap,
4 infeasible, 5 unbounded, 6 time limit, 7 solver unavailable, 2 bad input,
1 solver error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import textwrap

import psutil

from recopt.cli.args import nonnegative_float, positive_float, positive_int
from recopt.data.instance import load
from recopt.errors import RecoptError
from recopt.models import all_models
from recopt.solve import save_result, solve, summary
from recopt.solve.result import check_output_dir, check_output_path
from recopt.solvers.safety import ALLOW_FILE_OPTIONS_ENV, ALLOW_SOLVERS_ENV, allowed_extra_solvers
from recopt.solvers.status import EXIT_CODES, Status

log = logging.getLogger("recopt.cli")

#: The figures (:func:`recopt.metrics.figures.result_figures`) are imported only for
#: ``--plot``: a plain solve does not load the figure modules (start-up, issue 19).
FIGURES_MODULE = "recopt.metrics.figures"


def _parse_option(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option takes name=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _coerce(value: str):
    """Best-effort typing of ``--solver-option`` values (HiGHS wants ints/floats/strings)."""
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _process_start() -> float | None:
    """When this process started (``time.time()``): ``--time-limit`` counts from there,
    imports and loading included (None if the system cannot say)."""
    try:
        return psutil.Process().create_time()
    except (psutil.Error, OSError):
        return None


def list_models_text() -> str:
    lines = []
    for spec in sorted(all_models(), key=lambda s: (s.family, s.name)):
        lines.append(f"{spec.name:<10} [{spec.family}] {spec.description}")
        for opt in spec.all_options:
            choices = f" (one of {', '.join(map(str, opt.choices))})" if opt.choices else ""
            lines.append(textwrap.fill(
                f"--option {opt.name}=... default {opt.default!r}{choices}: {opt.help}",
                width=100, initial_indent=" " * 11, subsequent_indent=" " * 13))
        if spec.card:
            lines.append(" " * 11 + f"model card: {spec.card}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m recopt.solve",
        description="Solve a recopt model on an instance (netCDF) and report the Result.",
        epilog="Exit codes: " + ", ".join(f"{c} {s.value}" for s, c in
                                          sorted(EXIT_CODES.items(), key=lambda kv: kv[1])),
    )
    p.add_argument("instance", nargs="?", help="instance file (.nc)")
    p.add_argument("--model", "-m", default=None, help="registered model name (see --list-models)")
    p.add_argument("--solver", default="highs",
                   help="highs (default, embedded), gurobi, cplex, cbc, glpk, scip, xpress, "
                   "mosek, appsi_highs; another Pyomo solver needs --allow-solver NAME")
    p.add_argument("--allow-solver", action="append", default=[], metavar="NAME",
                   help="allow this solver name, not a known one (runs what Pyomo runs "
                   "for it)")
    p.add_argument("--allow-file-options", action="store_true",
                   help="allow --solver-option values that read or write files")
    p.add_argument("--time-limit", type=positive_float, default=None,
                   help="wall-clock seconds for the whole run (build and compile count)")
    p.add_argument("--mip-gap", type=nonnegative_float, default=None,
                   help="relative MIP gap (>= 0)")
    p.add_argument("--threads", type=positive_int, default=None, help="solver threads")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler address: SLExt / MLColExt solve their Benders "
                        "sub-problem parts on its workers (the master stays here)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes for separable models (default: all cores)")
    p.add_argument("--output", "-o", default=None, help="write the Result to this .nc file")
    p.add_argument("--option", action="append", type=_parse_option, default=[],
                   metavar="NAME=VALUE", help="model option (repeatable)")
    p.add_argument("--solver-option", action="append", type=_parse_option, default=[],
                   metavar="NAME=VALUE", help="option passed to the solver as is (repeatable)")
    p.add_argument("--plot", default=None, metavar="DIR",
                   help="draw the Result's figures into DIR (PNG + PDF): the loop map of "
                        "loop models, Benders / column-generation convergence, storage "
                        "schedules")
    p.add_argument("--list-models", action="store_true", help="list the models and exit")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="-v: progress, -vv: solver log")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("recopt").setLevel(level)

    if args.list_models:
        print(list_models_text())
        return 0
    if not args.instance or not args.model:
        parser.print_usage(sys.stderr)
        print("error: give an INSTANCE and --model NAME (or --list-models)", file=sys.stderr)
        return EXIT_CODES[Status.BAD_INPUT]

    if args.allow_solver:  # the opt-in of recopt.solvers.safety, for this run
        extra = allowed_extra_solvers() | set(args.allow_solver)
        os.environ[ALLOW_SOLVERS_ENV] = ",".join(sorted(extra))
    if args.allow_file_options:
        os.environ[ALLOW_FILE_OPTIONS_ENV] = "1"
    try:
        if args.output:  # before the solve: a result is never computed only to be lost
            check_output_path(args.output)
        if args.plot:
            check_output_dir(args.plot)
        result = solve(
            args.instance, args.model, solver=args.solver, time_limit=args.time_limit,
            mip_gap=args.mip_gap, threads=args.threads, workers=args.workers,
            scheduler=args.scheduler,
            solver_options={k: _coerce(v) for k, v in args.solver_option} or None,
            started_at=_process_start(), **dict(args.option),
        )
        print(summary(result))
        if args.output:
            save_result(result, args.output)
            print(f"result     written to {args.output}")
        if args.plot:
            figures = importlib.import_module(FIGURES_MODULE)
            paths = figures.result_figures(load(args.instance), result, args.plot)
            print("figures    " + (", ".join(str(p) for p in paths) if paths
                                  else "none: this Result has no map, iteration log or schedule"))
    except RecoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CODES[Status.BAD_INPUT]
    except OSError as exc:  # any other I/O failure: one line, not a traceback
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CODES[Status.BAD_INPUT]
    return Status(result.attrs["status"]).exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
