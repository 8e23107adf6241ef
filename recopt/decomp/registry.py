"""The names of the algorithms and diagnoses models point to.

A model that is solved by an algorithm rather than by one solver call says so by
name in its spec (``ModelSpec(algorithm="benders_slext", ...)``); the algorithm
registers under that name here, at import of its module (:mod:`recopt.decomp`
imports them all). The runner looks the name up; the model never imports this
layer.

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

from collections.abc import Callable

from recopt.errors import ModelError

_ALGORITHMS: dict[str, Callable] = {}
_DIAGNOSES: dict[str, Callable] = {}


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
    try:
        return _ALGORITHMS[name]
    except KeyError:
        raise ModelError(f"no algorithm {name!r} is registered; known: "
                         f"{', '.join(sorted(_ALGORITHMS))}") from None


def get_diagnosis(name: str) -> Callable:
    try:
        return _DIAGNOSES[name]
    except KeyError:
        raise ModelError(f"no diagnosis {name!r} is registered; known: "
                         f"{', '.join(sorted(_DIAGNOSES))}") from None
