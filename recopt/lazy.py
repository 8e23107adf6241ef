"""Third-party modules imported on first use: :func:`lazy_module`, :func:`pyomo_module`.

A command imports only what it uses (issue 19, start-up). ``python -m recopt.solve
instance.nc --model LP1`` solves by the step LP (arrays straight into HiGHS) and never
touches Pyomo, whose import costs 0.5-0.7 s on this project's machine -- a third of the
whole command. So every recopt module names Pyomo once, at its top, through this
module::

    if TYPE_CHECKING:                      # the type checker sees the real module
        import pyomo.environ as pyo
    else:
        pyo = pyomo_module("pyomo.environ")

and the real module is imported on the first attribute read (``pyo.ConcreteModel``).
Attribute writes go to the real module too (``constraint.TEMPLATIZE_CONSTRAINTS = …``).
Nothing is cached but the module itself, so what a reader sees is always the module's
current attribute.

Pyomo's SciPy hook
------------------
Pyomo (``pyomo.common.dependencies``) watches for SciPy: when SciPy is first imported
(by anything) or first asked for, its hook imports ``scipy.stats``, ``scipy.integrate``
and ``scipy.spatial`` besides ``scipy.sparse`` -- about 0.5-1 s for the Benders and
column-generation runs, which use ``scipy.sparse`` only (recopt uses no ``scipy.stats``).
SciPy loads its sub-packages on first attribute access, so :func:`defer_scipy_stats`
drops the hook's eager imports; :func:`pyomo_module` applies it before Pyomo is first
imported through recopt (and at once if Pyomo was already imported by the caller).

This is the one place recopt defers a *required* dependency; optional ones (plotting,
generators, Dask, Gurobi) are imported inside the functions that need them (see the
layering test).
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["LazyModule", "defer_scipy_stats", "lazy_module", "pyomo_module", "load_pyomo"]

_LOCK = threading.RLock()


class LazyModule(ModuleType):
    """Stands for the module ``name`` until one of its attributes is read or written; then
    runs ``prepare()`` (if given) and imports it. ``loaded`` says whether it has been."""

    def __init__(self, name: str, prepare: Callable[[], object] | None = None):
        super().__init__(name)
        object.__setattr__(self, "_lazy_prepare", prepare)
        object.__setattr__(self, "_lazy_module", None)

    def _lazy_load(self) -> ModuleType:
        module = object.__getattribute__(self, "_lazy_module")
        if module is None:
            with _LOCK:
                module = object.__getattribute__(self, "_lazy_module")
                if module is None:
                    prepare = object.__getattribute__(self, "_lazy_prepare")
                    if prepare is not None:
                        prepare()
                    module = importlib.import_module(self.__name__)
                    object.__setattr__(self, "_lazy_module", module)
        return module

    @property
    def loaded(self) -> bool:
        return object.__getattribute__(self, "_lazy_module") is not None

    def __getattr__(self, attr: str) -> Any:  # called only for names not set here
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # copy/pickle/inspect probes do not import
        return getattr(self._lazy_load(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._lazy_load(), attr, value)

    def __dir__(self) -> list[str]:
        return dir(self._lazy_load())

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded yet"
        return f"<lazy module {self.__name__!r} ({state})>"


def lazy_module(name: str, prepare: Callable[[], object] | None = None) -> ModuleType:
    """The module ``name`` if it is imported already, else a :class:`LazyModule` that
    imports it (after ``prepare()``) on first use."""
    module = sys.modules.get(name)
    if module is not None and not isinstance(module, LazyModule):
        return module
    return LazyModule(name, prepare)


def defer_scipy_stats() -> bool:
    """Drop the eager sub-package imports of Pyomo's SciPy hook if SciPy has not been
    resolved yet; returns whether they were dropped (False on a Pyomo without the hook,
    or once SciPy is resolved). Needs ``pyomo.common.dependencies`` imported."""
    dependencies = sys.modules.get("pyomo.common.dependencies")
    indicator = getattr(getattr(dependencies, "scipy", None), "_indicator_flag", None)
    finalize = getattr(dependencies, "_finalize_scipy", None)
    if (indicator is None or finalize is None or getattr(indicator, "_module", True) is not None
            or getattr(indicator, "_callback", None) is not finalize):
        return False
    indicator._callback = None
    return True


def load_pyomo() -> ModuleType:
    """Import ``pyomo.environ`` (all of Pyomo's plugins) with :func:`defer_scipy_stats`
    applied first; what every :func:`pyomo_module` runs before its own import."""
    with _LOCK:
        if "pyomo.common.dependencies" not in sys.modules:
            # Pyomo resolves SciPy (and runs its hook) at once if SciPy is imported
            # already -- e.g. scipy.sparse by the loop arrays; so it is not shown SciPy
            # while its dependency table is set up, and SciPy resolves on first use.
            scipy = sys.modules.pop("scipy", None)
            try:
                importlib.import_module("pyomo.common.dependencies")
            finally:
                if scipy is not None:
                    sys.modules["scipy"] = scipy
        defer_scipy_stats()
        return importlib.import_module("pyomo.environ")


def pyomo_module(name: str) -> ModuleType:
    """A Pyomo module (``"pyomo.environ"``, ``"pyomo.repn.plugins.standard_form"``…)
    imported on first use, after :func:`load_pyomo`."""
    if not name.split(".")[0] == "pyomo":
        raise ValueError(f"pyomo_module: {name!r} is not a Pyomo module")
    if "pyomo.common.dependencies" in sys.modules:
        defer_scipy_stats()  # Pyomo imported by the caller: still spare scipy.stats
    return lazy_module(name, load_pyomo)
