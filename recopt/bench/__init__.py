"""Benchmark suites: run many (instance, model, solver) jobs on Dask, store, resume, report.

::

    python -m recopt.bench run SUITE.toml --store DIR [--workers N] [--scheduler ADDR]
                                          [--force] [--rerun timeout,crashed]
                                          [--models A,B] [--dry-run]
    python -m recopt.bench report DIR

* :mod:`recopt.bench.suite` — the TOML suite format, expansion into jobs, stable job ids;
* :mod:`recopt.bench.runner` — Dask execution, one process group per job, timeouts;
* :mod:`recopt.bench.job` — what runs in a job process; :mod:`recopt.bench.preload`
  warms the fork server the job processes are forked from;
* :mod:`recopt.bench.store` — one JSON record per job, written atomically;
* :mod:`recopt.bench.report` — tables, plots, Markdown/HTML summary.
"""

from recopt.bench.report import report
from recopt.bench.runner import plan, run_suite
from recopt.bench.store import Store
from recopt.bench.suite import Job, Suite, SuiteError, expand, load_suite

__all__ = ["Job", "Store", "Suite", "SuiteError", "expand", "load_suite", "plan", "report",
           "run_suite"]
