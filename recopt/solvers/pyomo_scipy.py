"""Pyomo's SciPy import hook without ``scipy.stats``: :func:`defer_scipy_stats`.

Pyomo (``pyomo.common.dependencies``) watches for SciPy: when SciPy is first imported
(by anything) or first asked for, its hook imports ``scipy.stats``, ``scipy.integrate``
and ``scipy.spatial`` besides ``scipy.sparse`` -- about 0.5-1 s of start-up on this
project's machine (issue 19) for the Benders and column-generation runs, which use
``scipy.sparse`` only (recopt uses no ``scipy.stats``). SciPy loads its sub-packages on
first attribute access (``scipy.stats`` works on a module that has not imported it),
so the hook's eager imports are dropped: SciPy is resolved exactly as before, and
each sub-package is imported when something first uses it.
"""

from __future__ import annotations

import pyomo.common.dependencies as pyomo_dependencies


def defer_scipy_stats() -> bool:
    """Drop the eager sub-package imports of Pyomo's SciPy hook if SciPy has not been
    resolved yet; returns whether they were dropped (nothing on a Pyomo without the
    hook)."""
    indicator = getattr(getattr(pyomo_dependencies, "scipy", None), "_indicator_flag", None)
    finalize = getattr(pyomo_dependencies, "_finalize_scipy", None)
    if (indicator is None or finalize is None or getattr(indicator, "_module", True) is not None
            or getattr(indicator, "_callback", None) is not finalize):
        return False
    indicator._callback = None
    return True


defer_scipy_stats()  # on import of recopt.solvers, before anything imports SciPy
