"""xarray's tests for Dask arrays without importing Dask: :func:`defer_dask`.

xarray asks, for every Variable it makes, whether the data is a Dask array: it
imports ``dask`` (``is_dask_collection``, about 0.15 s) and ``dask.array``
(``isinstance(data, array_type("dask"))``) when Dask is installed, and
``dask.array`` imports ``scipy.sparse``, after which Pyomo's import hook imports
``scipy.stats`` -- about 1 s of start-up in all on this project's machine, for a
command that uses none of them (issue 19). No object can be a Dask array or
collection before Dask is imported, so until ``dask`` (``dask.array``) is imported
the answer is "no" without importing it; once anything imports them (a Dask-chunked
bootstrap, a cluster), xarray's own tests answer.
"""

from __future__ import annotations

import sys

from xarray.namedarray import pycompat
from xarray.namedarray import utils as namedarray_utils


class _DeferredDask(pycompat.DuckArrayModule):
    """xarray's cache entry for ``"dask"`` until ``dask.array`` is imported."""

    def __init__(self) -> None:  # nothing is probed until asked
        pass

    def _real(self) -> pycompat.DuckArrayModule:
        real = pycompat.DuckArrayModule("dask")
        pycompat._cached_duck_array_modules["dask"] = real
        return real

    @property
    def type(self):  # type: ignore[override]
        if "dask.array" not in sys.modules:  # then nothing can be a Dask array
            return ()
        return self._real().type

    def __getattr__(self, name: str):  # module, version, available: xarray's answer
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._real(), name)


def _deferred_is_dask_collection(xarray_test):
    def is_dask_collection(x: object) -> bool:
        return "dask" in sys.modules and xarray_test(x)

    is_dask_collection.deferred = True  # type: ignore[attr-defined]
    return is_dask_collection


def defer_dask() -> bool:
    """Make xarray's Dask tests import nothing until Dask is imported: its cache entry
    for ``"dask"`` (unless xarray has probed Dask already or ``dask.array`` is loaded)
    and ``is_dask_collection`` (unless ``dask`` is loaded). Returns whether anything
    was deferred (nothing on an xarray without these internals)."""
    done = False
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    if isinstance(cache, dict) and "dask" not in cache and "dask.array" not in sys.modules:
        cache["dask"] = _DeferredDask()
        done = True
    test = getattr(namedarray_utils, "is_dask_collection", None)
    if callable(test) and not getattr(test, "deferred", False) and "dask" not in sys.modules:
        namedarray_utils.is_dask_collection = _deferred_is_dask_collection(test)
        done = True
    return done


defer_dask()  # on import of recopt.data, before it makes any Variable
