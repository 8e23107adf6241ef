"""Declarative Pyomo models and the registry of the names users type.

>>> from recopt.models import build, get, all_models
>>> m = build("LP1", instance)      # a Pyomo ConcreteModel; extend it, then
>>> recopt.solve.solve(instance, "LP1", pyomo_model=m)   # doctest: +SKIP

Importing this package registers every model: each model module below calls
:func:`~recopt.models.registry.register` at import. A new model module is added
to the imports here.
"""

from recopt.models import kor, logaas, loops, repartition  # noqa: F401  (they register)
from recopt.models.options import Option, Tuning, parse_bool
from recopt.models.registry import ModelSpec, all_models, build, get, register

__all__ = ["ModelSpec", "Option", "Tuning", "all_models", "build", "get", "parse_bool",
           "register"]
