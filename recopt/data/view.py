"""One array view of an instance: NumPy arrays on ``(scenario, time, member)``.

Models, the settlement engine and the metrics read an instance's energies and
prices as arrays; this module is the one place that turns the labelled
:class:`xarray.Dataset` into them (and an empty solution back into a Dataset on
the instance's dims):

* :func:`stm` — one variable as an ``(S, T, U)`` array (kWh per step for energies);
* :func:`price` / :func:`price_cube` — prices broadcast to ``(S, T, U)``, EUR/kWh;
* :class:`InstanceArrays` — consumption, production, the four prices and the
  scenario probabilities of an instance at once;
* :func:`coords_of` / :func:`empty_solution` — the instance's dim coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from recopt.data.instance import broadcast_price_values
from recopt.data.schema import DIMS, PRICE_VARIABLES


def stm(obj: xr.Dataset | xr.DataArray, name: str | None = None) -> np.ndarray:
    """The values of ``obj[name]`` (or of the DataArray ``obj``) in ``DIMS`` order.

    The array has the variable's own dims reordered as ``(scenario, time, member)``
    (a variable on a subset keeps that subset, in that order).
    """
    da = obj[name] if name is not None else obj
    assert isinstance(da, xr.DataArray), "stm(dataset) needs the variable's name"
    return da.transpose(*(d for d in DIMS if d in da.dims), ...).values


def price(instance: xr.Dataset, name: str) -> np.ndarray:
    """Price ``name`` broadcast to ``(S, T, U)``, float64, EUR/kWh (may be a read-only view)."""
    return broadcast_price_values(instance, name)


def price_cube(instance: xr.Dataset, names=PRICE_VARIABLES) -> dict[str, np.ndarray]:
    """``{name: price(instance, name)}`` for the four prices (or ``names``)."""
    return {n: price(instance, n) for n in names}


def coords_of(instance: xr.Dataset) -> dict[str, np.ndarray]:
    """The coordinates of the instance's dims ``scenario``, ``time``, ``member``."""
    return {d: instance[d].values for d in DIMS}


def empty_solution(instance: xr.Dataset) -> xr.Dataset:
    """A Dataset with the instance's dims and no variable (a run without a solution)."""
    return xr.Dataset(coords=coords_of(instance))


@dataclass(frozen=True)
class InstanceArrays:
    """The arrays every model reads: energies ``(S, T, U)`` in kWh per step, prices
    ``(S, T, U)`` in EUR/kWh, scenario probabilities ``(S,)``."""

    consumption: np.ndarray
    production: np.ndarray
    prices: dict[str, np.ndarray]
    probability: np.ndarray

    @classmethod
    def of(cls, instance: xr.Dataset) -> InstanceArrays:
        return cls(
            consumption=stm(instance, "consumption"),
            production=stm(instance, "production"),
            prices=price_cube(instance),
            probability=np.asarray(instance["scenario_probability"].values, dtype=float),
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.consumption.shape
