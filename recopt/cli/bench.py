"""``python -m recopt.bench``: run benchmark suites into a store, and report on a store.

::

    python -m recopt.bench run SUITE.toml --store DIR [--workers N] [--scheduler ADDR]
                                          [--force] [--rerun timeout,crashed]
                                          [--models LP1,LP3] [--dry-run]
    python -m recopt.bench report DIR [--out DIR]

``run`` exits 0 when every job of the suite has a record (whatever its status),
2 for a bad suite file (nothing runs), 1 otherwise: jobs whose Dask task failed
three times (``"lost"`` in the printed summary; the next run retries them) or that
another live runner of the same store holds (``"claimed_elsewhere"``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from recopt.bench.report import report
from recopt.bench.runner import plan, run_suite
from recopt.cli.args import positive_int
from recopt.errors import RecoptError

log = logging.getLogger("recopt.bench")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recopt.bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a suite's jobs (finished ones are skipped)")
    r.add_argument("suite", help="suite TOML file")
    r.add_argument("--store", required=True, help="result store directory")
    r.add_argument("--workers", type=positive_int, default=None,
                   help="local Dask worker processes (default: the machine's cores)")
    r.add_argument("--scheduler", default=None, help="Dask scheduler address, tcp://host:8786")
    r.add_argument("--force", action="store_true", help="rerun jobs that have a record")
    r.add_argument("--rerun", default=None, metavar="STATUSES",
                   help="rerun jobs whose record has one of these statuses, e.g. "
                   "timeout,crashed (after raising the suite's timeout)")
    r.add_argument("--models", default=None, help="only these model labels (comma-separated)")
    r.add_argument("--dry-run", action="store_true",
                   help="expand the suite, write its instances, list the jobs; run nothing")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("-v", "--verbose", action="store_true")
    q = sub.add_parser("report", help="tables, plots and a Markdown/HTML summary of a store")
    q.add_argument("store", help="result store directory")
    q.add_argument("--out", default=None, help="output directory (default STORE/report)")
    q.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.verbose:  # recopt's progress and INFO lines, not every library's
        logging.getLogger("recopt").setLevel(logging.INFO)
    try:
        if args.command == "run":
            models = [m.strip() for m in args.models.split(",")] if args.models else None
            rerun = [x.strip() for x in args.rerun.split(",")] if args.rerun else ()
            if args.dry_run:
                suite, jobs, todo = plan(args.suite, args.store, models=models, force=args.force,
                                         rerun=rerun)
                for j in jobs:
                    mark = "todo" if j in todo else "done"
                    print(f"{j.job_id}  {mark}  {j.model_label:10s} {j.solver:8s} "
                          f"rep {j.repetition}  {j.instance_label}")
                print(f"{len(jobs)} jobs, {len(todo)} to run, "
                      f"{len({j.instance_hash for j in jobs})} instances")
                return 0

            summary = run_suite(args.suite, args.store, workers=args.workers,
                                scheduler=args.scheduler, force=args.force, models=models,
                                progress=not args.no_progress, rerun=rerun)
            print(json.dumps(summary, indent=1))
            done = summary["skipped"] + summary["ran"]
            return 0 if done == summary["jobs"] else 1

        out = report(args.store, out=args.out)
        print(f"report written to {out}")
        return 0
    except RecoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an I/O failure: one line, not a traceback
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
