"""Declarative Pyomo models and the registry of the names users type.

>>> from recopt.models import build, get, all_models
>>> m = build("LP1", instance)      # a Pyomo ConcreteModel; extend it, then
>>> recopt.solve.solve(instance, "LP1", pyomo_model=m)   # doctest: +SKIP
"""

from recopt.models.registry import ModelSpec, Option, all_models, build, get, register

__all__ = ["ModelSpec", "Option", "all_models", "build", "get", "register"]
