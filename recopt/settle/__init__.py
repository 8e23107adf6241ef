"""The settlement rule: keys -> energy flows -> bills, one engine for every key and model.

* :mod:`recopt.settle.engine` — the rule: :func:`meter_flows`, :func:`settle_arrays`,
  :func:`settle_rounds`, :func:`bill_components`, :func:`bills`, :func:`settle`;
* :mod:`recopt.settle.kernels` — its vectorised round kernels (:func:`round_step`,
  :func:`round_take`, :func:`round_leftover`, :func:`prorata_fraction`,
  :func:`sales_ratio`, ...), which the brute force, LOGAAS and KoR's extraction call.

Every name is importable from ``recopt.settle`` as before.
"""

from recopt.settle.engine import (
    ENERGY_ATOL,
    FLOW_OUTPUTS,
    KEY_SUM_TOL,
    KeyRule,
    Round,
    bill_components,
    bills,
    community_production,
    meter_flows,
    settle,
    settle_arrays,
    settle_rounds,
    stm_input,
)
from recopt.settle.kernels import (
    cap_offer,
    member_sum,
    prorata_fraction,
    prorata_need,
    round_leftover,
    round_step,
    round_take,
    sales_ratio,
    step_product,
)

__all__ = [
    "ENERGY_ATOL",
    "FLOW_OUTPUTS",
    "KEY_SUM_TOL",
    "KeyRule",
    "Round",
    "bill_components",
    "bills",
    "cap_offer",
    "community_production",
    "member_sum",
    "meter_flows",
    "prorata_fraction",
    "prorata_need",
    "round_leftover",
    "round_step",
    "round_take",
    "sales_ratio",
    "settle",
    "settle_arrays",
    "settle_rounds",
    "step_product",
    "stm_input",
]
