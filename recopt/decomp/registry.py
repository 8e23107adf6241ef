"""The names of the algorithms and diagnoses models point to.

A model that is solved by an algorithm rather than by one solver call says so by
name in its spec (``ModelSpec(algorithm="benders_slext", ...)``); the algorithm
registers under that name here, at import of its module. The modules are loaded
on first use: :data:`ALGORITHM_MODULES` and :data:`DIAGNOSIS_MODULES` name the
module of each name, imported (:func:`importlib.import_module`) the first time the
runner asks for it, so an LP1 solve never loads Benders, column generation or the
games. The runner looks the name up; the model never imports this layer.

An algorithm is called as ``fn(instance, *, model, time_limit, seed, solver, mip_gap,
threads, options, **model_options)`` (``options``: the solver options, tuning
included) and returns ``(solution, record)``: the solution Dataset on the
instance's dims (``None`` without a solution) and a
:class:`~recopt.solvers.record.RunRecord` of what happened; the runner adds the
run's bookkeeping and writes the Result (:func:`recopt.solve.result.write_result`).

A diagnosis is called as ``fn(instance, solver, **model_options)`` when a solve is
infeasible and returns ``(message, extra_attrs)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from recopt.errors import ModelError

_ALGORITHMS: dict[str, Callable] = {}
_DIAGNOSES: dict[str, Callable] = {}

#: The module that registers each algorithm, imported on first use. A new algorithm
#: module adds its name here (``tests/test_options_and_console.py`` checks the table).
ALGORITHM_MODULES: dict[str, str] = {
    "ems_stages": "recopt.decomp.ems",
    "kor_periods": "recopt.decomp.kor_periods",
    "lexicographic_tie_break": "recopt.decomp.tie_break",
    "logaas_search": "recopt.decomp.logaas",
    "loop_benders": "recopt.decomp.loop_benders",
    "mlcol_colgen": "recopt.decomp.column_generation",
}
#: The module that registers each infeasibility diagnosis, imported on first use.
DIAGNOSIS_MODULES: dict[str, str] = {
    "lp2_max_uniform_ssr": "recopt.decomp.lp2_diagnosis",
}


def load_all() -> None:
    """Import every algorithm and diagnosis module (they register)."""
    for module in dict.fromkeys([*ALGORITHM_MODULES.values(), *DIAGNOSIS_MODULES.values()]):
        importlib.import_module(module)


def _lookup(table: dict[str, Callable], modules: dict[str, str], name: str, what: str
            ) -> Callable:
    if name not in table and name in modules:
        importlib.import_module(modules[name])
    if name not in table:
        load_all()
    try:
        return table[name]
    except KeyError:
        raise ModelError(f"no {what} {name!r} is registered; known: "
                         f"{', '.join(sorted(table))}") from None


def register_algorithm(name: str):
    """Decorator: register ``fn`` as the algorithm ``name``."""

    def deco(fn: Callable) -> Callable:
        if name in _ALGORITHMS:
            raise ValueError(f"algorithm {name} is registered twice")
        _ALGORITHMS[name] = fn
        return fn

    return deco


def register_diagnosis(name: str):
    """Decorator: register ``fn`` as the infeasibility diagnosis ``name``."""

    def deco(fn: Callable) -> Callable:
        if name in _DIAGNOSES:
            raise ValueError(f"diagnosis {name} is registered twice")
        _DIAGNOSES[name] = fn
        return fn

    return deco


def get_algorithm(name: str) -> Callable:
    """The algorithm registered as ``name`` (its module imported on first use)."""
    return _lookup(_ALGORITHMS, ALGORITHM_MODULES, name, "algorithm")


def get_diagnosis(name: str) -> Callable:
    """The diagnosis registered as ``name`` (its module imported on first use)."""
    return _lookup(_DIAGNOSES, DIAGNOSIS_MODULES, name, "diagnosis")
