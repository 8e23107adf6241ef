"""Rule-based repartition keys, regional catalogues and brute-force key search.

* :mod:`recopt.keys.rules` -- Mustika KoR1-KoR7 and Ospina GS/ES/PR/HEP/CA (one
  implementation per key, paper differences as parameters), :func:`settle_key`;
* :mod:`recopt.keys.shapley` -- KoR7, exact or seeded permutation sampling;
* :mod:`recopt.keys.multiround`, :mod:`recopt.keys.fixed` -- multi-round and user keys;
* :mod:`recopt.keys.catalogues`, :mod:`recopt.keys.brute_force` -- regional standard keys
  and the brute force (OptimCE's 1,782 three-round candidates);
* :mod:`recopt.keys.evaluate` -- keys x scenarios -> metrics;
* ``python -m recopt.keys`` -- the command line (:mod:`recopt.cli.keys`).

Every key is settled by :mod:`recopt.settle` and measured by :mod:`recopt.metrics`.
Cards: ``models/keys-rule-based.md``, ``models/keys-regional-catalogues.md``.
"""

from recopt.keys.brute_force import brute_force, round_grid
from recopt.keys.catalogues import catalogue
from recopt.keys.evaluate import evaluate_keys, summarise
from recopt.keys.rules import KEYS, KeyInputs, KeyPlan, make_plan, settle_key, settle_plan

__all__ = ["KEYS", "KeyInputs", "KeyPlan", "make_plan", "settle_plan", "settle_key",
           "catalogue", "brute_force", "round_grid", "evaluate_keys", "summarise"]
