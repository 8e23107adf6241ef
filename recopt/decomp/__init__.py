"""Algorithms that drive models: blocks, the parallel map, Benders, searches, diagnoses.

* :mod:`.parallel` — :func:`map_in_workers`, the one worker pool;
* :mod:`.blocks` — independent (scenario, time / billing-period) blocks, solved
  apart and stitched (the runner's separable models, KoR9/KoR10);
* :mod:`.benders` — Benders decomposition of any :class:`~.benders.TwoStage` problem;
* :mod:`.loop_benders` — SLExt / MLColExt (algorithm ``loop_benders``);
* :mod:`.ems` — EMS3 / EMS4 in stages (algorithm ``ems_stages``);
* :mod:`.kor_periods` — KoR9 / KoR10 per billing period (algorithm ``kor_periods``);
* :mod:`.logaas` — the LOGAAS key search (algorithm ``logaas_search``);
* :mod:`.lp2_diagnosis` — why LP2 is infeasible (diagnosis ``lp2_max_uniform_ssr``);
* :mod:`.registry` — the names models use to point at an algorithm or diagnosis.

Each algorithm module registers at import; the registry imports it the first time
its name is asked for (:data:`~.registry.ALGORITHM_MODULES`, where a new algorithm
module adds its name), so importing this package loads none of them.
"""

from recopt.decomp.parallel import map_in_workers
from recopt.decomp.registry import (
    get_algorithm,
    get_diagnosis,
    register_algorithm,
    register_diagnosis,
)

__all__ = ["get_algorithm", "get_diagnosis", "map_in_workers", "register_algorithm",
           "register_diagnosis"]
