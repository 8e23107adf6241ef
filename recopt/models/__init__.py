"""Declarative Pyomo models and the registry of the names users type.

>>> from recopt.models import build, get, all_models
>>> m = build("LP1", instance)      # a Pyomo ConcreteModel; extend it, then
>>> recopt.solve.solve(instance, "LP1", pyomo_model=m)   # doctest: +SKIP

Each model module calls :func:`~recopt.models.registry.register` at import; the
registry imports a model's module the first time its name is asked for
(:data:`~recopt.models.registry.MODEL_MODULES`, where a new model module adds its
names), so importing this package loads no model.
"""

from recopt.models.options import Option, Tuning, parse_bool
from recopt.models.registry import MODEL_MODULES, ModelSpec, all_models, build, get, register

__all__ = ["MODEL_MODULES", "ModelSpec", "Option", "Tuning", "all_models", "build", "get",
           "parse_bool", "register"]
