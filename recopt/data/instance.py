"""The instance: construction, validation, netCDF I/O, hashing and small helpers.

An instance is an :class:`xarray.Dataset` following :mod:`recopt.data.schema`:

* dims ``scenario``, ``time``, ``member`` (a single-scenario instance keeps a
  ``scenario`` dim of length 1);
* ``time`` is a ``datetime64[ns]`` coordinate, tz-naive and meaning UTC, holding the
  *start* of each step; ``member`` and ``scenario`` are string coordinates;
* ``consumption`` and ``production`` have dims exactly ``(scenario, time, member)``
  in kWh per step;
* the four prices (EUR/kWh) may use any subset of ``(scenario, time, member)`` and
  are kept as given (use :func:`broadcast_price` to get the full cube);
* per-member variables have dim ``(member,)``, ``scenario_probability`` has dim
  ``(scenario,)``;
* attributes ``time_step_hours`` (h), ``max_distance_km`` (km),
  ``max_loop_power_kw`` (kW), ``billing_period`` (pandas frequency) and
  ``schema_version``.

Every function that accepts an instance from outside goes through :func:`validate`,
which either returns a normalised copy or raises one
:class:`~recopt.errors.InstanceError` subclass whose message names the variable,
says what is wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
import uuid
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data.roles import billing_period_index, check_billing_timezone, check_roles
from recopt.data.schema import (
    ATTRIBUTES,
    DIMS,
    EFFICIENCY_CONVENTIONS,
    ENERGY_VARIABLES,
    MEMBER,
    PRICE_VARIABLES,
    SCENARIO,
    SCHEMA_VERSION,
    STORAGE_FIELDS,
    STORAGE_KINDS,
    TIME,
    VARIABLES,
    storage_variable,
)
from recopt.errors import (
    DimensionError,
    InstanceError,
    MissingVariableError,
    NegativeEnergyError,
    NonFiniteError,
    ProbabilityError,
    SchemaVersionError,
    TimestampError,
    UnitError,
)

__all__ = [
    "make_instance",
    "validate",
    "load",
    "save",
    "instance_hash",
    "broadcast_price",
    "broadcast_price_values",
    "billing_period_index",
    "time_step_ns",
    "format_timestamp",
    "check_time_axis",
    "one_way_efficiency",
]

log = logging.getLogger(__name__)

#: Variables whose values are text, not numbers.
TEXT_VARIABLES = ("category", "role")
#: Variables whose values are booleans (stored as such; 0/1 numbers are accepted).
BOOL_VARIABLES = ("ev_available",)
#: Attributes that are positive real numbers.
#: The largest energy per step (kWh) and price (EUR/kWh) an instance may hold. Below
#: them every model is solved on data scaled to order one (the magnitude ladder
#: x1e-9 ... x1e12 of tests/test_hardening.py gives the unscaled optimum); above them
#: the double-precision solvers lose the small entries next to the large ones.
MAX_ENERGY_KWH = 1e14
MAX_PRICE_EUR_KWH = 1e6
MAGNITUDE_LIMITS = {"kwh": MAX_ENERGY_KWH, "eur/kwh": MAX_PRICE_EUR_KWH}

_POSITIVE_ATTRS = ("time_step_hours", "max_distance_km", "max_loop_power_kw")
#: Absolute tolerance on the sum of scenario probabilities.
PROBABILITY_TOL = 1e-9
NS_PER_HOUR = 3_600_000_000_000
_STEP_TOL_NS = 1_000  # 1 microsecond: tolerance between spacing and time_step_hours
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


# ======================================================================================
# small helpers
# ======================================================================================
def format_timestamp(t: Any) -> str:
    """Format one timestamp compactly (``2017-03-01T00:15``; seconds only if non-zero).

    Parameters
    ----------
    t : numpy.datetime64, pandas.Timestamp or str
        The timestamp.

    Returns
    -------
    str
    """
    try:
        ts = pd.Timestamp(t)
    except (ValueError, TypeError):
        return str(t)
    if ts is pd.NaT:
        return "NaT"
    if ts.nanosecond or ts.microsecond:
        return ts.isoformat()
    if ts.second:
        return ts.strftime("%Y-%m-%dT%H:%M:%S")
    return ts.strftime("%Y-%m-%dT%H:%M")


def time_step_ns(hours: float) -> int:
    """Length of a time step of ``hours`` hours in integer nanoseconds."""
    return int(round(float(hours) * NS_PER_HOUR))


def _fmt_hours(ns: int | float) -> str:
    """Human form of a duration in nanoseconds (``15 min``, ``1 h``, ``2 days``)."""
    return str(pd.Timedelta(int(ns), unit="ns")).replace("0 days ", "")


def _coord_label(values: np.ndarray, i: int) -> str:
    v = values[i]
    if np.issubdtype(np.asarray(values).dtype, np.datetime64):
        return format_timestamp(v)
    return str(v)


def _locate(var: xr.Variable, coords: Mapping[str, np.ndarray], mask: np.ndarray) -> str:
    """Describe the first True entry of ``mask`` (shaped like ``var``) by coordinates."""
    flat = int(np.flatnonzero(mask)[0])
    if var.ndim == 0:
        return "scalar"
    idx = np.unravel_index(flat, mask.shape)
    parts = []
    for dim, i in zip(var.dims, idx, strict=True):
        if dim in coords:
            parts.append(f"{dim}={_coord_label(coords[str(dim)], int(i))}")
        else:
            parts.append(f"{dim}#{int(i)}")
    return ", ".join(parts)


def _is_real_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)


def _norm_unit(u: Any) -> str:
    s = str(u).strip().lower().replace("€", "eur").replace(" ", "").replace("·", "")
    s = s.replace("*", "")
    if s in ("", "1", "-", "dimensionless", "none", "unitless"):
        return "1"
    return s


def _dims_text(dims: Sequence[Hashable]) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


# ======================================================================================
# validate
# ======================================================================================
def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check an instance against the schema and return a normalised copy.

    The caller's dataset is never modified. The returned copy has the energies and
    all numeric schema variables as float64, dims in schema order
    (``scenario, time, member``; prices keep their own subset, in that order),
    ``time`` as ``datetime64[ns]``, ``member``/``scenario`` as strings, a ``units``
    attribute on every schema variable, the optional attributes filled with their
    schema defaults, and ``schema_version`` set. Variables the schema does not know
    are kept unchanged. No encoding is carried over.

    Parameters
    ----------
    ds : xarray.Dataset
        The candidate instance.

    Returns
    -------
    xarray.Dataset
        The validated, normalised instance.

    Raises
    ------
    MissingVariableError
        A required variable, coordinate or attribute is absent.
    DimensionError
        A variable has dims the schema does not allow, a dim is empty, or a member
        or scenario name is duplicated.
    NonFiniteError
        A numeric schema variable holds NaN or inf.
    NegativeEnergyError
        An energy or another non-negative variable (fee, installed power, investment)
        is negative. Prices may be negative.
    TimestampError
        ``time`` is not datetime, has NaT, duplicates, is unsorted, irregular, or does
        not match ``time_step_hours`` (which must be > 0).
    ProbabilityError
        Scenario probabilities are negative or do not sum to 1 (tolerance 1e-9).
    UnitError
        A variable carries a ``units`` attribute different from the schema's.
    SchemaVersionError
        ``schema_version`` is not one this recopt can read.
    InstanceError
        Anything else (not a Dataset, non-numeric values, bad billing period, ...).
    """
    if not isinstance(ds, xr.Dataset):
        raise InstanceError(
            f"an instance must be an xarray.Dataset, got {type(ds).__name__}; "
            "build one with recopt.data.make_instance(...) or read one with "
            "recopt.data.load(path) / recopt.data.read_csv(path)"
        )

    # Schema variables stored as non-index coordinates become data variables.
    promote = [n for n in ds.coords if n in VARIABLES and n not in ds.dims]
    if promote:
        ds = ds.reset_coords(promote)

    attrs = _validate_attrs(ds.attrs)

    # --- required variables -------------------------------------------------------
    for name, spec in VARIABLES.items():
        if spec.required and name not in ds.variables:
            raise MissingVariableError(_missing_message(name), name)

    # --- dims of every schema variable ----------------------------------------------
    for name, spec in VARIABLES.items():
        if name in ds.data_vars:
            _check_dims(name, tuple(str(d) for d in ds[name].dims), spec)

    # --- coordinates ----------------------------------------------------------------
    coords: dict[str, np.ndarray] = {}
    for dim in DIMS:
        if dim not in ds.dims:  # pragma: no cover - caught by the dims check above
            raise DimensionError(f"the instance has no '{dim}' dim", dim)
        if ds.sizes[dim] == 0:
            raise DimensionError(
                f"the '{dim}' dim is empty; an instance needs at least one {dim}", dim
            )
        if dim not in ds.coords:
            raise MissingVariableError(
                f"the '{dim}' dim has no coordinate; assign one with "
                f"ds.assign_coords({dim}=[...])"
                + (" (datetime64, UTC)" if dim == TIME else " (names as strings)"),
                dim,
            )
    coords[TIME] = _validate_time(ds[TIME].values, attrs["time_step_hours"])
    for dim in (MEMBER, SCENARIO):
        coords[dim] = _validate_names(dim, ds[dim].values)

    # --- values -------------------------------------------------------------------------
    new_vars: dict[str, xr.Variable] = {}
    for name, spec in VARIABLES.items():
        if name not in ds.data_vars:
            continue
        var = ds[name].variable
        order = tuple(d for d in DIMS if d in var.dims)
        var = var.transpose(*order)
        old_units = var.attrs.get("units")
        if old_units is not None and _norm_unit(old_units) != _norm_unit(spec.unit):
            raise UnitError(
                f"{name} has units '{old_units}' but the schema wants '{spec.unit}'; "
                f"convert the values to {spec.unit} and set attrs['units'] = '{spec.unit}'",
                name,
            )
        if name in TEXT_VARIABLES:
            data = _validate_text(name, var, coords)
        elif name in BOOL_VARIABLES:
            data = _validate_bool(name, var, coords)
        else:
            # prices may be negative (negative market prices exist), whatever the spec says
            # (negative probabilities are a ProbabilityError, checked below)
            nonneg = spec.nonnegative and name not in PRICE_VARIABLES + ("scenario_probability",)
            data = _validate_numeric(name, var, coords, nonneg)
        new_attrs = dict(var.attrs)
        new_attrs["units"] = spec.unit
        new_vars[name] = xr.Variable(order, data, attrs=new_attrs)

    if "role" in new_vars:
        new_vars["role"] = xr.Variable(
            new_vars["role"].dims, check_roles(new_vars["role"].values, coords[MEMBER]),
            attrs=new_vars["role"].attrs)
    _validate_probability(new_vars["scenario_probability"].values, coords[SCENARIO])
    _validate_latlon(new_vars, coords)
    _validate_storage(new_vars, coords, attrs)

    # --- assemble the normalised copy ---------------------------------------------------
    # (one construction: adding the variables one by one cost a merge each, about a
    # tenth of a short LP1 command)
    data_vars = {name: new_vars[name] for name in VARIABLES if name in new_vars}
    # variables and coordinates the schema does not know: kept as they are
    data_vars.update({name: ds[name].variable.copy(deep=True)
                      for name in map(str, ds.data_vars) if name not in VARIABLES})
    out = xr.Dataset(
        data_vars=data_vars,
        coords={
            SCENARIO: xr.Variable(SCENARIO, coords[SCENARIO], dict(ds[SCENARIO].attrs)),
            TIME: xr.Variable(TIME, coords[TIME], _time_attrs(ds[TIME].attrs)),
            MEMBER: xr.Variable(MEMBER, coords[MEMBER], dict(ds[MEMBER].attrs)),
        },
        attrs=attrs,
    )
    extra_coords = [str(c) for c in ds.coords if c not in DIMS and c not in out.variables]
    for name in extra_coords:
        out = out.assign_coords({name: ds[name].variable.copy(deep=True)})
    return out


def _time_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    # CF encoding keys must never be attrs of a decoded time coordinate
    return {k: v for k, v in attrs.items() if k not in ("units", "calendar")}


def _missing_message(name: str) -> str:
    spec = VARIABLES[name]
    if name in PRICE_VARIABLES:
        return (
            f"{name} is missing: give the {spec.description} in {spec.unit}, as a scalar "
            f"(ds['{name}'] = 0.1) or on any subset of dims (scenario, time, member)"
        )
    if name == "scenario_probability":
        return (
            "scenario_probability is missing: add one probability per scenario, e.g. "
            "ds['scenario_probability'] = ('scenario', np.full(n, 1 / n)) "
            "(recopt.data.make_instance fills a uniform one)"
        )
    return (
        f"{name} is missing: add the {spec.description} in {spec.unit} with dims "
        f"{_dims_text(spec.dims)}"
    )


def _validate_attrs(raw: Mapping[str, Any]) -> dict[str, Any]:
    attrs = dict(raw)
    # schema version first: a newer file may mean anything
    version = attrs.get("schema_version")
    if version is None:
        attrs["schema_version"] = SCHEMA_VERSION
    else:
        v = version.item() if isinstance(version, np.generic) else version
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if str(v).strip() != SCHEMA_VERSION:
            raise SchemaVersionError(
                f"schema_version is '{version}' but this recopt reads version "
                f"'{SCHEMA_VERSION}'; upgrade recopt, or re-create the instance with "
                "this version's recopt.data.make_instance",
                "schema_version",
            )
        attrs["schema_version"] = SCHEMA_VERSION

    for name, spec in ATTRIBUTES.items():
        if attrs.get(name) is None:
            if spec.required and spec.default is None:
                raise MissingVariableError(
                    f"attribute {name} is missing: set ds.attrs['{name}'] to the "
                    f"{spec.description} in {spec.unit} (e.g. 0.25 for 15-min steps, "
                    "1.0 for hourly)",
                    name,
                )
            if spec.default is not None:
                attrs[name] = spec.default
            else:
                attrs.pop(name, None)

    for name in _POSITIVE_ATTRS:
        if name not in attrs:
            continue
        value = attrs[name]
        if isinstance(value, np.ndarray) and value.size == 1:
            value = value.reshape(()).item()
        if isinstance(value, np.generic):
            value = value.item()
        cls = TimestampError if name == "time_step_hours" else InstanceError
        unit = ATTRIBUTES[name].unit
        if not _is_real_number(value):
            raise cls(
                f"attribute {name} is {value!r}; it must be a positive number in {unit}",
                name,
            )
        if not math.isfinite(value) or value <= 0:
            raise cls(
                f"attribute {name} is {value!r}; it must be a positive finite number in "
                f"{unit}" + (" (e.g. 0.25 for 15-min steps)" if name == "time_step_hours"
                             else ""),
                name,
            )
        attrs[name] = float(value)

    period = attrs.get("billing_period")
    if period is not None:
        if isinstance(period, np.generic):
            period = period.item()
        if not isinstance(period, str):
            raise InstanceError(
                f"attribute billing_period is {period!r}; it must be a pandas frequency "
                "string such as 'MS' (calendar month) or 'QS' (quarter)",
                "billing_period",
            )
        try:
            pd.tseries.frequencies.to_offset(period)
        except (ValueError, TypeError) as exc:
            raise InstanceError(
                f"attribute billing_period is '{period}', which pandas does not know as a "
                f"frequency ({exc}); use e.g. 'MS' (calendar month), 'QS', 'YS' or '7D'",
                "billing_period",
            ) from None
        attrs["billing_period"] = period
    if attrs.get("billing_timezone") is not None:
        attrs["billing_timezone"] = check_billing_timezone(attrs["billing_timezone"])
    # schema attributes first, in schema order, then the others as given
    ordered = {k: attrs[k] for k in ATTRIBUTES if k in attrs}
    ordered.update({k: v for k, v in attrs.items() if k not in ordered})
    return ordered


def _check_dims(name: str, dims: tuple[str, ...], spec) -> None:
    allowed = set(spec.dims)
    unknown = [d for d in dims if d not in allowed]
    if spec.broadcastable:
        if unknown:
            raise DimensionError(
                f"{name} has dims {_dims_text(dims)}; a price may only use dims from "
                f"{_dims_text(spec.dims)} (unknown: {', '.join(unknown)}); rename or "
                "drop the extra dims",
                name,
            )
        return
    missing = [d for d in spec.dims if d not in dims]
    if unknown or missing or len(dims) != len(spec.dims):
        what = []
        if missing:
            what.append("missing " + ", ".join(missing))
        if unknown:
            what.append("unexpected " + ", ".join(unknown))
        hint = ""
        if name in ENERGY_VARIABLES and missing == [SCENARIO] and not unknown:
            hint = "; a single-scenario instance still needs it: ds.expand_dims(scenario=['s0'])"
        raise DimensionError(
            f"{name} has dims {_dims_text(dims)} but must have exactly "
            f"{_dims_text(spec.dims)} ({'; '.join(what) or 'repeated dim'}){hint}",
            name,
        )


def _validate_time(values: np.ndarray, step_hours: float) -> np.ndarray:
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.datetime64):
        sample = values.flat[0] if values.size else None
        tz = getattr(sample, "tzinfo", None)
        hint = (
            "convert it to UTC and drop the zone: "
            "pd.DatetimeIndex(t).tz_convert('UTC').tz_localize(None)"
            if tz is not None
            else "convert it with pd.to_datetime(...) (tz-naive values mean UTC)"
        )
        raise TimestampError(
            f"time coordinate has dtype {values.dtype} (first value {sample!r}); it must "
            f"be datetime64[ns]; {hint}",
            TIME,
        )
    t = values.astype("datetime64[ns]")
    nat = np.isnat(t)
    if nat.any():
        i = int(np.flatnonzero(nat)[0])
        raise TimestampError(
            f"time has {int(nat.sum())} missing timestamps (NaT; first at position {i}); "
            "every step needs its start time",
            TIME,
        )
    check_time_axis(t, step_hours, where="time")
    return t


def check_time_axis(t: np.ndarray, step_hours: float | None, *, where: str = "time",
                    labels: Sequence[str] | None = None) -> int | None:
    """Check that datetimes are unique, sorted and regularly spaced.

    Parameters
    ----------
    t : numpy.ndarray of datetime64[ns]
        The step start times.
    step_hours : float or None
        Expected spacing in hours; ``None`` accepts any constant spacing.
    where : str
        Name used in messages (``"time"`` or ``"file.csv"``).
    labels : sequence of str, optional
        How to name position ``i`` in messages (e.g. ``"line 7"``); default
        ``"position i"``.

    Returns
    -------
    int or None
        The constant spacing in nanoseconds (None when there is a single step).

    Raises
    ------
    TimestampError
        On duplicates, unsorted or irregular timestamps, or a spacing that differs from
        ``step_hours``.
    """

    def lab(i: int) -> str:
        return labels[i] if labels is not None else f"position {i}"

    ti = t.astype("datetime64[ns]").view("i8")
    n = ti.size
    if n < 2:
        return None
    # duplicates
    order = np.argsort(ti, kind="stable")
    same = ti[order[1:]] == ti[order[:-1]]
    if same.any():
        dups = np.sort(np.stack([order[1:][same], order[:-1][same]], axis=1), axis=1)
        first = dups[np.argmin(dups[:, 1])]
        a, b = int(first[0]), int(first[1])
        raise TimestampError(
            f"{where} has {int(same.sum())} duplicate timestamps (first: "
            f"{format_timestamp(t[b])} at {lab(a)} and {lab(b)}); drop or aggregate the "
            "repeated steps",
            TIME,
        )
    diff = np.diff(ti)
    bad = diff < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TimestampError(
            f"{where} is not sorted: {format_timestamp(t[i + 1])} at {lab(i + 1)} comes "
            f"after {format_timestamp(t[i])} at {lab(i)}; sort the steps by time",
            TIME,
        )
    if step_hours is None:
        expected = int(np.median(diff))
    else:
        expected = time_step_ns(step_hours)
    off = np.abs(diff - expected) > _STEP_TOL_NS
    if off.any():
        if step_hours is not None and not (diff != diff[0]).any():
            raise TimestampError(
                f"{where} is spaced by {_fmt_hours(diff[0])} but time_step_hours is "
                f"{step_hours:g} ({_fmt_hours(expected)}); set time_step_hours to "
                f"{diff[0] / NS_PER_HOUR:g} or fix the timestamps",
                TIME,
            )
        i = int(np.flatnonzero(off)[0])
        raise TimestampError(
            f"{where} is irregular: {_fmt_hours(diff[i])} between "
            f"{format_timestamp(t[i])} ({lab(i)}) and {format_timestamp(t[i + 1])} "
            f"({lab(i + 1)}) while the step is {_fmt_hours(expected)} "
            f"({int(off.sum())} irregular gap{'s' if off.sum() > 1 else ''}); fill missing "
            "steps or resample to a "
            "constant step",
            TIME,
        )
    return int(expected)


def _validate_names(dim: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind == "O":
        bad = [v for v in values if not isinstance(v, str | bytes | np.str_ | np.bytes_)]
        if bad:
            raise DimensionError(
                f"the '{dim}' coordinate must hold names (strings); found {bad[0]!r}",
                dim,
            )
    if values.dtype.kind == "S" or values.dtype.kind == "O":
        names = np.array(
            [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values],
            dtype=str,
        )
    elif values.dtype.kind in "iuU":
        names = values.astype(str)
    else:
        raise DimensionError(
            f"the '{dim}' coordinate has dtype {values.dtype}; it must hold names "
            "(strings)",
            dim,
        )
    uniq, counts = np.unique(names, return_counts=True)
    if (counts > 1).any():
        dup = [str(u) for u in uniq[counts > 1]]
        raise DimensionError(
            f"the '{dim}' coordinate has duplicate names: {', '.join(dup[:5])}"
            f"{' ...' if len(dup) > 5 else ''}; every {dim} needs a unique name",
            dim,
        )
    return names


def _validate_numeric(name: str, var: xr.Variable, coords: Mapping[str, np.ndarray],
                      nonnegative: bool) -> np.ndarray:
    data = np.asarray(var.values)
    if data.dtype.kind not in "fiu":
        raise InstanceError(
            f"{name} has dtype {data.dtype}; it must hold numbers "
            f"(in {VARIABLES[name].unit})",
            name,
        )
    data = data.astype(np.float64, copy=True)
    finite = np.isfinite(data)
    if not finite.all():
        bad = ~finite
        count = int(bad.sum())
        nan = np.isnan(data)
        if not nan.any():
            what = "infinite values"
        elif nan.sum() == count:
            what = "NaN"
        else:
            what = "NaN or infinite values"
        raise NonFiniteError(
            f"{name} has {what} at {count} entr{'y' if count == 1 else 'ies'} "
            f"(first: {_locate(var, coords, bad)}); fill or drop them",
            name,
        )
    limit = MAGNITUDE_LIMITS.get(_norm_unit(VARIABLES[name].unit))
    if limit is not None:
        big = np.abs(data) > limit
        if big.any():
            raise InstanceError(
                f"{name} is {data[big].flat[0]:g} at {_locate(var, coords, big)} "
                f"({int(big.sum())} entr{'y' if big.sum() == 1 else 'ies'} above "
                f"{limit:g} {VARIABLES[name].unit}); recopt solves energies up to "
                f"{MAX_ENERGY_KWH:g} kWh per step and prices up to {MAX_PRICE_EUR_KWH:g} "
                "EUR/kWh (check the unit: Wh or W given as kWh?)", name)
    if nonnegative:
        neg = data < 0
        if neg.any():
            count = int(neg.sum())
            hint = ""
            if name in ENERGY_VARIABLES:
                hint = (
                    "; energies are positive kWh per step: put injections in production "
                    "and withdrawals in consumption"
                )
            raise NegativeEnergyError(
                f"{name} is negative at {count} entr{'y' if count == 1 else 'ies'} "
                f"(first: {_locate(var, coords, neg)}, value {data[neg].flat[0]:g}); "
                f"it must be >= 0{hint}",
                name,
            )
    return data


def _validate_text(name: str, var: xr.Variable, coords: Mapping[str, np.ndarray]) -> np.ndarray:
    data = np.asarray(var.values)
    if data.dtype.kind in "US":
        return data.astype(str)
    if data.dtype.kind == "O":
        ok = np.array([isinstance(v, str | bytes) for v in data.ravel()], dtype=bool)
        if not ok.all():
            bad = ~ok.reshape(data.shape)
            raise InstanceError(
                f"{name} must be text; found {data[bad].flat[0]!r} at "
                f"{_locate(var, coords, bad)}",
                name,
            )
        return np.array(
            [v.decode("utf-8") if isinstance(v, bytes) else v for v in data.ravel()],
            dtype=str,
        ).reshape(data.shape)
    raise InstanceError(f"{name} has dtype {data.dtype}; it must be text", name)


def _validate_bool(name: str, var: xr.Variable, coords: Mapping[str, np.ndarray]) -> np.ndarray:
    data = np.asarray(var.values)
    if data.dtype.kind == "b":
        return data.astype(bool, copy=True)
    if data.dtype.kind not in "fiu":
        raise InstanceError(f"{name} has dtype {data.dtype}; it must hold booleans (or 0/1)",
                            name)
    bad = ~np.isin(data, (0, 1))
    if bad.any():
        raise InstanceError(
            f"{name} must be boolean (0/1); found {data[bad].flat[0]!r} at "
            f"{_locate(var, coords, bad)}", name)
    return data.astype(bool)


def _validate_storage(new_vars: dict[str, xr.Variable], coords: Mapping[str, np.ndarray],
                      attrs: dict[str, Any]) -> None:
    """Storage groups (battery_*, ev_*), EV availability, subscribed power, convention.

    A kind is present as soon as one of its variables is; then ``<kind>_power_kw`` and
    ``<kind>_energy_kwh`` are required and the other fields are filled with their
    schema defaults (SoC 0 / 100 / 50 %, efficiency 1). Members with power 0 own no
    storage of that kind. Fills ``ev_available`` (always plugged in) when EVs exist.
    """
    members = coords[MEMBER]
    for kind in STORAGE_KINDS:
        names = {f: storage_variable(kind, f) for f in STORAGE_FIELDS}
        if not any(n in new_vars for n in names.values()):
            continue
        for f in ("power_kw", "energy_kwh"):
            if names[f] not in new_vars:
                given = ", ".join(n for n in names.values() if n in new_vars)
                raise MissingVariableError(
                    f"{names[f]} is missing: {given} describe(s) a {kind} storage, which "
                    f"also needs {names['power_kw']} (kW) and {names['energy_kwh']} (kWh) "
                    "per member (0 kW for members without one)", names[f])
        for f, (unit, default, _text) in STORAGE_FIELDS.items():
            if names[f] not in new_vars:
                new_vars[names[f]] = xr.Variable(
                    (MEMBER,), np.full(members.size, float(default or 0.0)), {"units": unit})
        v = {f: new_vars[names[f]].values for f in STORAGE_FIELDS}
        owner = v["power_kw"] > 0

        for mask, field, what in (
            (owner & (v["energy_kwh"] <= 0), "energy_kwh",
             f"a member with {names['power_kw']} > 0 needs a positive capacity in kWh"),
            (v["soc_max"] > 100, "soc_max", "a state of charge is a percentage <= 100"),
            (v["soc_min"] > v["soc_max"], "soc_min", f"it must be <= {names['soc_max']}"),
            ((v["soc_init"] < v["soc_min"]) | (v["soc_init"] > v["soc_max"]), "soc_init",
             f"it must lie in [{names['soc_min']}, {names['soc_max']}]"),
            ((v["efficiency"] <= 0) | (v["efficiency"] > 1), "efficiency",
             "an efficiency lies in (0, 1]"),
        ):
            if mask.any():
                i = int(np.flatnonzero(mask)[0])
                raise InstanceError(
                    f"{names[field]} of member {members[i]} is {v[field][i]:g}: {what} "
                    f"({int(mask.sum())} member(s))", names[field])
    if "ev_power_kw" in new_vars and "ev_available" not in new_vars:
        new_vars["ev_available"] = xr.Variable(
            (TIME, MEMBER), np.ones((coords[TIME].size, members.size), bool), {"units": "1"})
    if "subscribed_power_kw" in new_vars:
        sub = new_vars["subscribed_power_kw"].values
        if (sub <= 0).any():
            i = int(np.flatnonzero(sub <= 0)[0])
            raise InstanceError(
                f"subscribed_power_kw of member {members[i]} is {sub[i]:g}; a subscription "
                "must be > 0 kW (leave the variable out for no limit)", "subscribed_power_kw")
    conv = attrs.get("storage_efficiency_convention")
    if conv is not None:
        if isinstance(conv, np.generic):
            conv = conv.item()
        if conv not in EFFICIENCY_CONVENTIONS:
            raise InstanceError(
                f"attribute storage_efficiency_convention is {conv!r}; it must be one of "
                f"{', '.join(EFFICIENCY_CONVENTIONS)}", "storage_efficiency_convention")
        attrs["storage_efficiency_convention"] = conv


def one_way_efficiency(ds: xr.Dataset, kind: str) -> np.ndarray:
    """The one-way efficiency mu of Mustika (22) per member for a storage kind.

    ``<kind>_efficiency`` as given when the instance's ``storage_efficiency_convention``
    is ``"one_way"`` (the default), its square root when ``"round_trip"`` (a round trip
    charges and discharges once: round trip = mu**2).
    """
    eff = np.asarray(ds[storage_variable(kind, "efficiency")].values, float)
    if ds.attrs.get("storage_efficiency_convention", "one_way") == "round_trip":
        return np.sqrt(eff)
    return eff


def _validate_probability(p: np.ndarray, scenarios: np.ndarray) -> None:
    neg = p < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise ProbabilityError(
            f"scenario_probability is negative for scenario {scenarios[i]} ({p[i]:g}); "
            "probabilities must be >= 0 and sum to 1",
            "scenario_probability",
        )
    total = float(p.sum())
    if abs(total - 1.0) > PROBABILITY_TOL:
        raise ProbabilityError(
            f"scenario_probability sums to {total!r}, not 1 (tolerance "
            f"{PROBABILITY_TOL:g}); divide by the sum, or use uniform 1/{p.size}",
            "scenario_probability",
        )


def _validate_latlon(new_vars: Mapping[str, xr.Variable],
                     coords: Mapping[str, np.ndarray]) -> None:
    for name, lim in (("lat", 90.0), ("lon", 180.0)):
        if name in new_vars:
            var = new_vars[name]
            bad = np.abs(var.values) > lim
            if bad.any():
                raise InstanceError(
                    f"{name} is outside [-{lim:g}, {lim:g}] degrees (first: "
                    f"{_locate(var, coords, bad)}); planar coordinates belong in x_km/y_km",
                    name,
                )


# ======================================================================================
# make_instance
# ======================================================================================
def make_instance(
    consumption,
    production,
    *,
    price_grid_buy,
    price_grid_sell,
    price_community_buy,
    price_community_sell,
    time=None,
    members=None,
    scenarios=None,
    scenario_probability=None,
    time_step_hours: float | None = None,
    subscription_fee=None,
    installed_power=None,
    x_km=None,
    y_km=None,
    lat=None,
    lon=None,
    investment=None,
    category=None,
    role=None,
    battery: Mapping[str, Any] | None = None,
    ev: Mapping[str, Any] | None = None,
    ev_available=None,
    subscribed_power_kw=None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Build a validated instance from arrays.

    Parameters
    ----------
    consumption, production : array_like or xarray.DataArray
        Energy per step in kWh, shape ``(T, U)`` (one scenario) or ``(S, T, U)``; a
        DataArray must have dims ``time`` and ``member`` and optionally ``scenario``,
        and its coordinates are used when ``time``/``members``/``scenarios`` are not
        given.
    price_grid_buy, price_grid_sell, price_community_buy, price_community_sell : \
scalar, array_like, dict or xarray.DataArray
        Prices in EUR/kWh. A scalar; a dict ``{member: value}``; a 1-D array of
        length ``U`` (per member), ``T`` (per step) or ``S`` (per scenario) — a
        length shared by two of these dims is refused as ambiguous; a ``(T, U)`` or
        ``(S, T, U)`` array; or a DataArray on any subset of
        ``(scenario, time, member)``. Kept as given (not broadcast).
    time : array_like of datetimes, optional
        Step start times. tz-aware values are converted to UTC; naive ones mean UTC.
        Default: steps of ``time_step_hours`` from 2000-01-01 00:00.
    members, scenarios : sequence of str, optional
        Names; default ``m0, m1, ...`` and ``s0, s1, ...``.
    scenario_probability : array_like or dict, optional
        One probability per scenario; default uniform.
    time_step_hours : float, optional
        Step length in hours. Default: ``attrs['time_step_hours']``, else the spacing
        of ``time``, else 1.0.
    subscription_fee : scalar, sequence or dict, optional
        EUR per member and billing period; default 0.
    installed_power : scalar, sequence or dict, optional
        kW (kWp for PV) per member.
    x_km, y_km : sequence or dict, optional
        Planar coordinates in km.
    lat, lon : sequence or dict, optional
        Geographic coordinates in degrees.
    investment : sequence or dict, optional
        EUR per member.
    category : sequence of str or dict, optional
        Member category (text).
    role : sequence of str or dict, optional
        ``consumer``, ``prosumer``, ``producer`` or ``plant`` per member
        (:mod:`recopt.data.roles`); default: every entry is a member.
    battery, ev : mapping, optional
        A member-owned stationary battery / electric vehicle: ``{field: per-member
        values}`` with fields ``power_kw`` (kW, 0 = none), ``energy_kwh`` (kWh),
        ``soc_min``, ``soc_max``, ``soc_init`` (% of the capacity) and ``efficiency``
        (one way unless ``attrs["storage_efficiency_convention"] = "round_trip"``);
        each value a scalar, a sequence or a dict ``{member: value}``. Omitted SoC
        fields default to 0 / 100 / 50 %, the efficiency to 1.
    ev_available : array_like (time, member) of bool, optional
        Whether each EV is plugged in at home (default: always).
    subscribed_power_kw : scalar, sequence or dict, optional
        Subscribed power per member, kW (kVA taken as kW).
    attrs : mapping, optional
        Extra or overriding attributes (``max_distance_km``, ``billing_period``,
        ``storage_efficiency_convention``, ...).

    Returns
    -------
    xarray.Dataset
        ``validate(ds)`` of the assembled instance.

    Raises
    ------
    DimensionError, MissingVariableError, InstanceError
        When shapes or labels do not fit; see :func:`validate` for the rest.
    """
    cons, c_coords = _as_energy(consumption, "consumption")
    prod, p_coords = _as_energy(production, "production")
    # labels, not positions: a labelled array is put in the order of the given names (or
    # of the other array's labels); different label sets are refused, never misattached
    targets = {MEMBER: members, SCENARIO: scenarios, TIME: time}
    for d in (SCENARIO, TIME, MEMBER):
        target = targets[d]
        if target is None:
            target = c_coords.get(d, p_coords.get(d))
        if target is None:
            continue
        target = _label_values(target, d)
        cons = _reorder(cons, c_coords, d, target, "consumption")
        prod = _reorder(prod, p_coords, d, target, "production")
    if cons.shape != prod.shape:
        raise DimensionError(
            f"production has shape {prod.shape} (scenario, time, member) but consumption "
            f"has {cons.shape}; give both on the same steps and members",
            "production",
        )
    S, T, U = cons.shape
    user_attrs = dict(attrs or {})

    # --- labels ---------------------------------------------------------------------------
    member_names = _labels(members, c_coords.get(MEMBER, p_coords.get(MEMBER)), U, "m",
                           MEMBER)
    scenario_names = _labels(scenarios, c_coords.get(SCENARIO, p_coords.get(SCENARIO)), S,
                             "s", SCENARIO)
    if time is None:
        time = c_coords.get(TIME, p_coords.get(TIME))
    if time_step_hours is None:
        time_step_hours = user_attrs.get("time_step_hours")
    if time is not None:
        times = _to_utc_naive(time)
        if times.size != T:
            raise DimensionError(
                f"time has {times.size} entries but the energies have {T} steps", TIME
            )
        if time_step_hours is None:
            if T >= 2:
                time_step_hours = float(np.diff(times.view("i8"))[0]) / NS_PER_HOUR
            else:
                time_step_hours = 1.0
    else:
        if time_step_hours is None:
            time_step_hours = 1.0
        if not _is_real_number(time_step_hours) or not math.isfinite(time_step_hours) \
                or not time_step_hours > 0:
            raise TimestampError(
                f"time_step_hours is {time_step_hours!r}; it must be a positive finite "
                "number of hours", "time_step_hours")
        times = (np.datetime64("2000-01-01T00:00:00", "ns")
                 + np.arange(T, dtype=np.int64) * time_step_ns(time_step_hours)
                 ).astype("datetime64[ns]")
    coords = {SCENARIO: scenario_names, TIME: times, MEMBER: member_names}

    # --- attributes -----------------------------------------------------------------------
    all_attrs: dict[str, Any] = {
        name: spec.default for name, spec in ATTRIBUTES.items() if spec.default is not None
    }
    all_attrs.update(user_attrs)
    all_attrs["time_step_hours"] = time_step_hours

    ds = xr.Dataset(coords=coords, attrs=all_attrs)
    ds["consumption"] = (DIMS, cons)
    ds["production"] = (DIMS, prod)
    for name, value in (
        ("price_grid_buy", price_grid_buy),
        ("price_grid_sell", price_grid_sell),
        ("price_community_buy", price_community_buy),
        ("price_community_sell", price_community_sell),
    ):
        ds[name] = _as_broadcastable(value, name, coords)

    if scenario_probability is None:
        scenario_probability = np.full(S, 1.0 / S)
    ds["scenario_probability"] = _as_per(scenario_probability, "scenario_probability",
                                         SCENARIO, scenario_names)
    if subscription_fee is None:
        subscription_fee = VARIABLES["subscription_fee"].default
    for name, value in (
        ("subscription_fee", subscription_fee),
        ("installed_power", installed_power),
        ("x_km", x_km),
        ("y_km", y_km),
        ("lat", lat),
        ("lon", lon),
        ("investment", investment),
        ("category", category),
        ("role", role),
        ("subscribed_power_kw", subscribed_power_kw),
    ):
        if value is not None:
            ds[name] = _as_per(value, name, MEMBER, member_names,
                               text=name in TEXT_VARIABLES)
    for kind, fields in (("battery", battery), ("ev", ev)):
        for field, value in (fields or {}).items():
            if field not in STORAGE_FIELDS:
                raise InstanceError(
                    f"{kind} has no field {field!r}; its fields are "
                    f"{', '.join(STORAGE_FIELDS)}", kind)
            name = storage_variable(kind, field)
            ds[name] = _as_per(value, name, MEMBER, member_names)
    if ev_available is not None:
        if isinstance(ev_available, xr.DataArray):
            ds["ev_available"] = _align_labels(ev_available, "ev_available", coords)
        else:
            arr = np.asarray(ev_available)
            if arr.shape != (T, U):
                raise DimensionError(
                    f"ev_available has shape {arr.shape}; it must be (time, member) = "
                    f"({T}, {U})", "ev_available")
            ds["ev_available"] = ((TIME, MEMBER), arr)
    for name in map(str, ds.data_vars):
        ds[name].attrs["units"] = VARIABLES[name].unit
    return validate(ds)


def _as_energy(x, name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    coords: dict[str, np.ndarray] = {}
    if isinstance(x, xr.DataArray):
        unknown = [d for d in x.dims if d not in DIMS]
        missing = [d for d in (TIME, MEMBER) if d not in x.dims]
        if unknown or missing:
            raise DimensionError(
                f"{name} has dims {_dims_text(x.dims)}; it needs (time, member) and "
                "optionally scenario",
                name,
            )
        if SCENARIO not in x.dims:
            x = x.expand_dims(SCENARIO)
        x = x.transpose(*DIMS)
        for d in DIMS:
            if d in x.coords:
                coords[d] = x[d].values
        arr = np.asarray(x.values)
    else:
        arr = np.asarray(x)
        if arr.ndim == 2:
            arr = arr[None, :, :]
        elif arr.ndim != 3:
            raise DimensionError(
                f"{name} has {arr.ndim} dims (shape {arr.shape}); give (time, member) or "
                "(scenario, time, member)",
                name,
            )
    if arr.dtype.kind not in "fiu":
        raise InstanceError(f"{name} has dtype {arr.dtype}; it must hold numbers (kWh)",
                            name)
    return arr.astype(np.float64), coords


def _label_values(values, dim: str) -> np.ndarray:
    """Labels of ``dim`` in one comparable form: UTC-naive datetimes or strings."""
    if dim == TIME:
        return _to_utc_naive(values)
    return np.asarray([str(v) for v in np.asarray(values).ravel()], dtype=str)


def _reorder(arr: np.ndarray, coords: dict, dim: str, target: np.ndarray,
             name: str) -> np.ndarray:
    """``arr`` (scenario, time, member) with its ``dim`` labels (``coords[dim]``, if
    any) put in the order of ``target``; a DimensionError when the labels differ."""
    if dim not in coords:
        return arr
    have = _label_values(coords[dim], dim)
    axis = DIMS.index(dim)
    if have.shape == target.shape and (have == target).all():
        return arr
    if len(np.unique(have)) != have.size or len(np.unique(target)) != target.size:
        raise DimensionError(f"{name} has repeated {dim} labels; they must be unique", name)
    missing = np.setdiff1d(target, have)
    extra = np.setdiff1d(have, target)
    if missing.size or extra.size:
        what = (f"no {dim} {_coord_label(missing, 0)}" if missing.size
                else f"a {dim} {_coord_label(extra, 0)} that is not in the instance")
        raise DimensionError(
            f"{name} has {what} ({missing.size} missing, {extra.size} unknown {dim} "
            f"labels); energies are matched by label, give them on the same {dim}s", name)
    pos = {v: i for i, v in enumerate(have.tolist())}
    coords[dim] = target
    return np.take(arr, [pos[v] for v in target.tolist()], axis=axis)


def _labels(given, from_data, n: int, prefix: str, dim: str) -> np.ndarray:
    if given is None:
        given = from_data
    if given is None:
        return np.array([f"{prefix}{i}" for i in range(n)], dtype=str)
    names = np.asarray([str(v) for v in np.asarray(given).ravel()], dtype=str)
    if names.size != n:
        raise DimensionError(f"{names.size} {dim} names given for {n} {dim}s", dim)
    return names


def _to_utc_naive(time) -> np.ndarray:
    if isinstance(time, xr.DataArray | xr.Variable):
        time = time.values
    if not isinstance(time, pd.Index | pd.Series):
        time = np.asarray(time).ravel()
    try:
        try:
            idx = pd.DatetimeIndex(pd.to_datetime(time))
        except (ValueError, TypeError):  # mixed UTC offsets (e.g. across a DST change)
            idx = pd.DatetimeIndex(pd.to_datetime(time, utc=True))
    except (ValueError, TypeError) as exc:
        raise TimestampError(f"time cannot be read as datetimes: {exc}", TIME) from None
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.values.astype("datetime64[ns]")


def _as_broadcastable(value, name: str, coords: Mapping[str, np.ndarray]) -> xr.DataArray:
    sizes = {d: len(coords[d]) for d in DIMS}
    if isinstance(value, xr.DataArray):
        unknown = [d for d in value.dims if d not in DIMS]
        if unknown:
            raise DimensionError(
                f"{name} has dims {_dims_text(value.dims)}; only a subset of "
                f"{_dims_text(DIMS)} is allowed",
                name,
            )
        return _align_labels(value, name, coords)
    if isinstance(value, Mapping):
        return _as_per(value, name, MEMBER, coords[MEMBER])
    arr = np.asarray(value)
    if arr.ndim == 0:
        return xr.DataArray(arr)
    if arr.ndim == 1:
        n = arr.size
        cands = [d for d in (MEMBER, TIME, SCENARIO) if sizes[d] == n]
        if not cands:
            raise DimensionError(
                f"{name} has {n} values but there are {sizes[MEMBER]} members, "
                f"{sizes[TIME]} steps and {sizes[SCENARIO]} scenarios",
                name,
            )
        if len(cands) > 1 and n > 1:
            raise DimensionError(
                f"{name} has {n} values, which fits both {' and '.join(cands)}; pass an "
                f"xarray.DataArray with named dims (or a dict {{member: value}})",
                name,
            )
        return xr.DataArray(arr, dims=(cands[0],))
    if arr.ndim == 2:
        if arr.shape == (sizes[TIME], sizes[MEMBER]):
            return xr.DataArray(arr, dims=(TIME, MEMBER))
        raise DimensionError(
            f"{name} has shape {arr.shape}; a 2-D price must be (time, member) = "
            f"({sizes[TIME]}, {sizes[MEMBER]}); pass a DataArray for other dims",
            name,
        )
    if arr.ndim == 3 and arr.shape == tuple(sizes[d] for d in DIMS):
        return xr.DataArray(arr, dims=DIMS)
    raise DimensionError(
        f"{name} has shape {arr.shape}; give a scalar, per-member, per-step, "
        "(time, member) or (scenario, time, member) values",
        name,
    )


def _align_labels(da: xr.DataArray, name: str, coords: Mapping[str, np.ndarray]) -> xr.DataArray:
    da = da.copy()
    for d in da.dims:
        target = coords[str(d)]
        if d in da.coords:
            have = da[d].values
            if d == TIME:
                have = _to_utc_naive(have)
            else:
                have = np.asarray([str(v) for v in have], dtype=str)
            da = da.assign_coords({d: have})
            missing = np.setdiff1d(target, have)
            if missing.size:
                raise MissingVariableError(
                    f"{name} has no value for {d} {_coord_label(missing, 0)} "
                    f"({missing.size} missing)",
                    name,
                )
            da = da.sel({d: target})
        elif da.sizes[d] != len(target):
            raise DimensionError(
                f"{name} has {da.sizes[d]} values along {d} but there are {len(target)}",
                name,
            )
        else:
            da = da.assign_coords({d: target})
    return da.drop_vars([c for c in da.coords if c not in da.dims])


def _as_per(value, name: str, dim: str, names: np.ndarray, text: bool = False) -> xr.DataArray:
    n = len(names)
    if isinstance(value, xr.DataArray):
        if value.dims not in ((dim,), ()):
            raise DimensionError(
                f"{name} has dims {_dims_text(value.dims)} but must have ({dim},)", name
            )
        if value.ndim == 0:
            value = value.values.item()
        else:
            return _align_labels(value, name, {dim: names})
    if isinstance(value, Mapping):
        keys = {str(k): v for k, v in value.items()}
        unknown = sorted(set(keys) - set(names.tolist()))
        if unknown:
            raise DimensionError(
                f"{name} names unknown {dim}s: {', '.join(unknown[:5])}", name
            )
        missing = [m for m in names.tolist() if m not in keys]
        if missing:
            raise MissingVariableError(
                f"{name} has no value for {dim} {', '.join(missing[:5])}"
                f"{' ...' if len(missing) > 5 else ''}; give every {dim} a value",
                name,
            )
        arr = np.array([keys[m] for m in names.tolist()], dtype=str if text else None)
    elif isinstance(value, str):
        arr = np.full(n, value, dtype=str)
    else:
        arr = np.asarray(value)
        if arr.ndim == 0:
            arr = np.full(n, arr.item())
        if text:
            arr = arr.astype(str)
    if arr.shape != (n,):
        raise DimensionError(
            f"{name} has shape {arr.shape} but there are {n} {dim}s", name
        )
    return xr.DataArray(arr, dims=(dim,))


# ======================================================================================
# helpers on validated instances
# ======================================================================================
def broadcast_price(ds: xr.Dataset, name: str) -> xr.DataArray:
    """A price broadcast to the full ``(scenario, time, member)`` cube.

    Parameters
    ----------
    ds : xarray.Dataset
        A validated instance.
    name : str
        One of :data:`recopt.data.schema.PRICE_VARIABLES` (or any variable on a
        subset of the instance dims).

    Returns
    -------
    xarray.DataArray
        float64, dims ``(scenario, time, member)``, EUR/kWh. It may be a read-only
        broadcast view of the stored price (no memory is spent on repeats); call
        ``.copy()`` before writing into it.

    Raises
    ------
    MissingVariableError
        The instance has no such variable.
    DimensionError
        The variable uses dims outside ``(scenario, time, member)``.
    """
    values = broadcast_price_values(ds, name)
    return xr.DataArray(values, dims=DIMS, coords={d: ds[d] for d in DIMS},
                        attrs=dict(ds[name].attrs))


def broadcast_price_values(ds: xr.Dataset, name: str) -> np.ndarray:
    """The values of :func:`broadcast_price`: float64, shape ``(S, T, U)``, EUR/kWh,
    a read-only broadcast view where the price repeats; built with NumPy alone (the
    variable's dims reordered, missing ones inserted as length 1), ten times cheaper
    than xarray's broadcast on the short instances where start-up counts (issue 19).
    Same checks and errors as :func:`broadcast_price`."""
    if name not in ds.data_vars:
        raise MissingVariableError(
            f"the instance has no variable {name}"
            + (f"; prices are {', '.join(PRICE_VARIABLES)}" if name.startswith("price")
               else ""),
            name,
        )
    da = ds[name]
    extra = [d for d in da.dims if d not in DIMS]
    if extra:
        raise DimensionError(
            f"{name} has dims {_dims_text(da.dims)}; cannot broadcast to {_dims_text(DIMS)}",
            name,
        )
    own = tuple(d for d in DIMS if d in da.dims)
    values = np.asarray(da.transpose(*own).values, dtype=np.float64)
    shape = tuple(ds.sizes[d] if d in da.dims else 1 for d in DIMS)
    return np.broadcast_to(values.reshape(shape), tuple(ds.sizes[d] for d in DIMS))


# ======================================================================================
# hashing
# ======================================================================================
def _dim_key(d: Hashable) -> tuple[int, str]:
    return (DIMS.index(str(d)), "") if d in DIMS else (len(DIMS), str(d))


def _canonical(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_canonical(v) for v in value.ravel().tolist()] if value.ndim else \
            _canonical(value.item())
    if isinstance(value, np.generic):
        return _canonical(value.item())
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, float):
        return {"__float__": repr(value)}
    return value


def _feed(h, *parts: bytes) -> None:
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)


def _attrs_bytes(attrs: Mapping[str, Any]) -> bytes:
    canon = {str(k): _canonical(v) for k, v in attrs.items()}
    return json.dumps(canon, sort_keys=True, ensure_ascii=True, default=repr).encode()


def _values_bytes(values: np.ndarray) -> tuple[bytes, bytes]:
    kind = values.dtype.kind
    if kind == "f":
        return b"f8", np.ascontiguousarray(values, dtype="<f8").tobytes()
    if kind in "iu":
        return b"i8", np.ascontiguousarray(values, dtype="<i8").tobytes()
    if kind == "b":
        return b"b1", np.ascontiguousarray(values, dtype="u1").tobytes()
    if kind == "M":
        return b"M8", np.ascontiguousarray(values.astype("datetime64[ns]").view("i8"),
                                           dtype="<i8").tobytes()
    if kind == "m":
        return b"m8", np.ascontiguousarray(values.astype("timedelta64[ns]").view("i8"),
                                           dtype="<i8").tobytes()
    if kind == "c":
        return b"c16", np.ascontiguousarray(values, dtype="<c16").tobytes()
    # text (U, S, O): length-prefixed utf-8 of each element
    chunks = []
    for v in values.ravel().tolist():
        b = v if isinstance(v, bytes) else str(v).encode("utf-8")
        chunks.append(len(b).to_bytes(8, "little"))
        chunks.append(b)
    return b"str", b"".join(chunks)


def instance_hash(ds: xr.Dataset) -> str:
    """SHA-256 of a canonical byte form of an instance.

    The digest covers every variable and coordinate (name, dims in schema order,
    shape, values, attributes) and the dataset attributes, independently of variable
    order, dim order, storage dtype width and netCDF encoding: floats are hashed as
    little-endian float64, integers as int64, datetimes as int64 nanoseconds, text as
    UTF-8. It is therefore identical before :func:`save` and after :func:`load` for
    a float64 file. (A file written with ``float32=True`` hashes as the float32-rounded
    values it holds, which differ from the float64 original.)

    Parameters
    ----------
    ds : xarray.Dataset
        An instance (normally validated).

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    h = hashlib.sha256()
    _feed(h, b"recopt-instance-hash-v1", _attrs_bytes(ds.attrs))
    for name in sorted(str(n) for n in ds.variables):
        var = ds.variables[name]
        dims = tuple(sorted(var.dims, key=_dim_key))
        var = var.transpose(*dims)
        values = np.asarray(var.values)
        kind, data = _values_bytes(values)
        role = b"coord" if name in ds.coords else b"data"
        _feed(h, name.encode("utf-8"), role, json.dumps(list(dims)).encode(),
              json.dumps(list(values.shape)).encode(), kind, data, _attrs_bytes(var.attrs))
    return h.hexdigest()


# ======================================================================================
# netCDF I/O
# ======================================================================================
def _h5py_available() -> bool:
    try:
        import h5py  # noqa: F401
    except ImportError:
        return False
    return True


def save(ds: xr.Dataset, path, *, float32: bool = False, complevel: int = 4) -> None:
    """Validate an instance and write it to a netCDF-4 file.

    The file is written with ``engine="h5netcdf"`` (falling back to the ``netcdf4``
    engine when h5py is not installed), zlib compression with shuffle on every
    non-scalar float variable, no fill values, and atomically (a temporary file in
    the same folder is renamed onto ``path``), so a failed write never leaves a
    half-written instance.

    Parameters
    ----------
    ds : xarray.Dataset
        The instance; it is validated first.
    path : str or os.PathLike
        Target file (conventionally ``*.nc``); overwritten if it exists.
    float32 : bool, default False
        Store the variables that have a ``time`` dim (energies, time-varying prices)
        as float32 to halve the file size. :func:`load` returns them as float64 but
        holding the float32-rounded values (relative error about 6e-8), so the
        round trip is then not exact. Per-member and per-scenario variables
        (coordinates, probabilities) always stay float64.
    complevel : int, default 4
        zlib compression level (1-9).

    Raises
    ------
    InstanceError
        The instance is invalid, or the file cannot be written (the message names
        the path).
    """
    ds = validate(ds)
    path = Path(path)
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        enc: dict[str, Any] = {}
        if var.dtype.kind == "f":
            enc["_FillValue"] = None
            if var.ndim >= 1 and var.size > 1:
                enc.update(zlib=True, complevel=int(complevel), shuffle=True)
            if float32 and name not in ds.coords and TIME in var.dims:
                enc["dtype"] = "float32"
        elif var.dtype.kind == "M":
            enc["dtype"] = "int64"
        if enc:
            encoding[str(name)] = enc
    engine: Literal["h5netcdf", "netcdf4"] = "h5netcdf" if _h5py_available() else "netcdf4"
    if engine != "h5netcdf":
        try:
            import netCDF4  # noqa: F401
        except ImportError:
            raise InstanceError(
                f"cannot write instance to '{path}': neither h5py (for the h5netcdf "
                "engine) nor netCDF4 is installed; pip install h5py"
            ) from None
        log.warning("h5py is not installed; writing %s with the netcdf4 engine", path)
    # unique per process and call: two threads (or two hosts on a shared folder) writing
    # one path never share a temporary file
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    try:
        ds.to_netcdf(tmp, engine=engine, encoding=encoding, format="NETCDF4")
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise InstanceError(f"cannot write instance to '{path}': {exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def load(path) -> xr.Dataset:
    """Read an instance from a netCDF file and validate it.

    Parameters
    ----------
    path : str or os.PathLike
        A netCDF file written by :func:`save` (any netCDF file following the schema
        works).

    Returns
    -------
    xarray.Dataset
        The validated instance, fully in memory (the file is closed), energies and
        numeric variables as float64.

    Raises
    ------
    InstanceError
        The file does not exist or is not a readable netCDF file (the message names
        the path); or a subclass from :func:`validate` with the path prefixed to its
        message.
    """
    path = Path(path)
    if not path.exists():
        raise InstanceError(f"instance file '{path}' does not exist")
    if path.is_dir():
        raise InstanceError(f"instance path '{path}' is a folder, not a netCDF file")
    hint = (" (for smart-meter CSV exports use recopt.data.read_csv)"
            if path.suffix.lower() in (".csv", ".txt", ".tsv") else "")
    if not path.is_file():  # a FIFO would block the reader forever, a device worse
        raise InstanceError(f"instance path '{path}' is not a regular file (a FIFO, socket "
                            "or device?); give a netCDF file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(8)
    except OSError as exc:
        raise InstanceError(f"cannot read instance file '{path}': "
                            f"{exc.strerror or exc}") from None
    if not (magic.startswith(_HDF5_MAGIC) or magic[:3] == b"CDF"):
        what = "is empty" if not magic else f"starts with {magic!r}"
        raise InstanceError(
            f"'{path}' is not a readable netCDF instance file: it {what}, not the netCDF "
            f"or HDF5 signature{hint}"
        )
    try:
        raw = xr.load_dataset(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not netCDF"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InstanceError(
            f"'{path}' is not a readable netCDF instance file: {type(exc).__name__}: "
            f"{first}{hint}"
        ) from None
    try:
        return validate(raw)
    except InstanceError as exc:
        raise type(exc)(f"{path}: {exc}", exc.variable) from None
