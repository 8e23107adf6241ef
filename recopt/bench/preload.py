"""Imported once by each Dask worker's fork server, before it forks job processes.

A fresh interpreter spends about 1.3 s importing recopt's stack (Pyomo, highspy,
xarray, dask.array, scipy) and about 2 s more on its first solve (lazily loaded
Pyomo plug-ins and code paths). The runner's fork server imports this module once
(``multiprocessing`` forkserver preload): it imports the stack and solves a tiny
synthetic LP1 untimed, so every job process forked afterwards starts warm, in a few
milliseconds. A failure here only costs speed: the job processes import what they need.
"""

from __future__ import annotations

import logging

from recopt.bench.job import die_with_parent

# the fork server dies with its Dask worker even while it is still warming up (it
# only notices its parent's death in its main loop, after this module)
die_with_parent()

try:
    import recopt.data  # noqa: F401
    import recopt.models  # noqa: F401  (registers every model)
    import recopt.solve  # noqa: F401
    from recopt.generate.synthetic import synthetic_community

    recopt.solve.solve(synthetic_community(3, 4, step_hours=1.0, seed=0), "LP1", workers=1)
except Exception as exc:  # pragma: no cover - depends on the environment
    logging.getLogger("recopt.bench").warning("fork-server warm-up failed: %s", exc)
