"""The Result: an :class:`xarray.Dataset` with the solution on the instance's dims.

Data variables hold the solution (keys, flows, bills, ...); ``attrs`` hold the
bookkeeping, all netCDF-safe scalars or strings:

=================  ==========================================================
``model``          registered model name
``status``         a :class:`~recopt.solvers.status.Status` value
``message``        the solver's / recopt's explanation, for humans
``has_solution``   1 if solution variables are present, else 0
``objective``      objective value (EUR for the bill models); NaN without solution
``bound``          best proven bound; ``gap`` = |objective - bound| / max(1, |objective|)
``build_seconds``  Pyomo model construction (summed over blocks)
``compile_seconds`` conversion to the solver's input (summed over blocks)
``solve_seconds``  inside the solver (summed over blocks)
``extract_seconds`` reading the solution and deriving bills / metrics
``wall_seconds``   end to end, as the user waited
``solver``, ``solver_version``, ``options`` (JSON), ``solver_options`` (JSON),
``time_limit``, ``mip_gap``, ``threads``, ``seed``, ``instance_hash``,
``recopt_version``, ``blocks``, ``workers``, ``n_variables``, ``n_constraints``,
``n_integer``
``summary_text``   optional model-specific lines for :func:`summary` (set by ``derive``)
=================  ==========================================================

The bookkeeping is one typed record, :class:`~recopt.solvers.record.RunRecord`;
:func:`write_result` is the one function that makes a Result from a solution and
its record (the runner calls it for every model and algorithm).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from recopt.data.view import empty_solution
from recopt.errors import InstanceError, OutputError, RecoptError
from recopt.models import registry
from recopt.solvers.record import RunRecord
from recopt.solvers.status import Status


def netcdf_safe(value):
    """A netCDF attribute value: bools as 0/1, containers as JSON, None as ""."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, sort_keys=True)
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_result(instance: xr.Dataset, solution: xr.Dataset | None,
                 record: RunRecord) -> xr.Dataset:
    """The Result of a run: ``solution`` (or an empty Dataset on the instance's dims)
    with the instance's ``scenario_probability`` and the record as ``attrs``.

    The solution's own attrs (``summary_text``, a model's counts) are kept; the
    record's fields are written over them.
    """
    ds = empty_solution(instance) if solution is None else solution
    if "scenario_probability" not in ds:
        ds["scenario_probability"] = instance["scenario_probability"]
    ds.attrs.update({k: netcdf_safe(v) for k, v in record.as_attrs().items()})
    return ds


def status_of(result: xr.Dataset) -> Status:
    return Status(result.attrs["status"])


def check_output_path(path) -> Path:
    """``path`` as a Path if a file can be written there, else :class:`OutputError`.

    Called before a solve (so a result is never computed only to be lost): the path
    must not be a folder nor a special file (FIFO, device), and its nearest existing
    ancestor must be a folder this process may write into.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"output '{path}' is a folder; give a file name (e.g. "
                          f"{path / 'result.nc'})")
    if path.exists() and not path.is_file():
        raise OutputError(f"output '{path}' exists and is not a regular file (a FIFO or a "
                          "device?); give a file name")
    _check_writable_ancestor(path.parent, f"output '{path}'")
    return path


def _check_writable_ancestor(start: Path, what: str) -> None:
    """The nearest existing folder at or above ``start`` is a folder this process may
    write into (what ``mkdir -p`` and a write need), else :class:`OutputError`."""
    parent = start
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what}: '{parent}' is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what}: no permission to write into '{parent}'")


def check_output_dir(path) -> Path:
    """``path`` as a Path if it is, or can be made, a folder this process writes into;
    else :class:`OutputError` (called before any computation)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output folder '{path}' exists and is not a folder")
    _check_writable_ancestor(path, f"output folder '{path}'")
    return path


def atomic_write(path, write) -> Path:
    """Write a file through a uniquely named temporary file next to it and an atomic
    rename: concurrent writers of one path never share a temporary file, a reader sees
    a whole file (the last rename wins), and a failed write leaves no temporary behind.
    ``write(tmp_path)`` writes the content. I/O failures are one-line :class:`OutputError`.
    """
    path = check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write '{path}': {exc.strerror or exc}") from None
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write '{path}': {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_result(result: xr.Dataset, path) -> None:
    """Write a Result to netCDF (h5netcdf engine, compressed floats), atomically
    (:func:`atomic_write`: a unique temporary name, then a rename)."""
    out = result.copy()
    out.attrs = {k: netcdf_safe(v) for k, v in out.attrs.items()}
    encoding = {name: {"zlib": True, "complevel": 4} for name, var in out.data_vars.items()
                if var.dtype.kind == "f"}
    atomic_write(path, lambda tmp: out.to_netcdf(tmp, engine="h5netcdf", encoding=encoding))


def load_result(path) -> xr.Dataset:
    path = Path(path)
    if not path.exists():
        raise InstanceError(f"no result file at {path}", variable=str(path))
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def _fmt_money(x) -> str:
    return f"{x:,.6g} EUR" if x is not None and math.isfinite(x) else "n/a"


#: What the objective is for models whose spec does not say (by family).
FAMILY_OBJECTIVES = {
    "loops": "expected grid cost, EUR (Chasseray (1a)/(7a)/(9a))",
    "ems": "f1, kWh: total grid export (EMS3) or import (EMS4), or the EMS's own "
           "objective (plus the weighted variation penalty when set)",
}


def objective_text(model: str) -> str:
    """What a model's ``objective`` is, with its unit (its spec, else its family's)."""
    try:
        spec = registry.get(model)
    except RecoptError:
        return ""
    return spec.objective or FAMILY_OBJECTIVES.get(spec.family, "")


def headline_metrics(result: xr.Dataset) -> dict[str, float]:
    """A few numbers for the summary: bills, savings, SSR, community self-consumption."""
    out: dict[str, float] = {}
    w = None
    if "scenario_probability" in result:
        w = result["scenario_probability"]
    if "collective_bill" in result and "baseline_collective_bill" in result:
        cb = result["collective_bill"]
        base = result["baseline_collective_bill"]
        if w is not None:
            cb, base = (cb * w).sum("scenario"), (base * w).sum("scenario")
        else:
            cb, base = cb.mean("scenario"), base.mean("scenario")
        out["collective_bill_eur"] = float(cb)
        out["baseline_collective_bill_eur"] = float(base)
        if abs(float(base)) > 0:
            out["collective_saving_ratio"] = float((base - cb) / abs(base))
    if "self_sufficiency" in result:
        ssr = result["self_sufficiency"]
        out["mean_member_ssr"] = float(ssr.mean(skipna=True))
        out["min_member_ssr"] = float(ssr.min(skipna=True))
    if "community_intake" in result and "community_production" in result:
        g = float(result["community_production"].sum())
        if g > 0:
            out["community_self_consumption_rate"] = float(result["community_intake"].sum()) / g
    return out


def summary(result: xr.Dataset) -> str:
    """A short human summary of a Result (what the CLI prints)."""
    a = result.attrs
    lines = [
        f"model      {a.get('model', '?')}  (solver {a.get('solver', '?')} "
        f"{a.get('solver_version', '')})",
        f"status     {a.get('status', '?')}" + (f" - {a['message']}" if a.get("message") else ""),
    ]
    if int(a.get("has_solution", 0)):
        what = objective_text(str(a.get("model", "")))
        lines.append(f"objective  {a.get('objective', float('nan')):,.9g}   bound "
                     f"{a.get('bound', float('nan')):,.9g}   gap {a.get('gap', float('nan')):.3g}"
                     + (f"   [{what}]" if what else ""))
    elif isinstance(a.get("bound"), int | float) and math.isfinite(a["bound"]):
        lines.append(f"bound      {a['bound']:,.9g}   (no solution found)")
    lines.append(
        "time       build {b:.2f} s, compile {c:.2f} s, solve {s:.2f} s, extract {e:.2f} s, "
        "wall {w:.2f} s ({n} block(s), {k} worker(s))".format(
            b=a.get("build_seconds", 0.0), c=a.get("compile_seconds", 0.0),
            s=a.get("solve_seconds", 0.0), e=a.get("extract_seconds", 0.0),
            w=a.get("wall_seconds", 0.0), n=a.get("blocks", 1), k=a.get("workers", 1)))
    if a.get("n_variables"):
        lines.append(f"size       {a['n_variables']:,} variables, {a['n_constraints']:,} "
                     f"constraints, {a.get('n_integer', 0):,} integer")
    m = headline_metrics(result)
    if "collective_bill_eur" in m:
        line = (f"bills      collective {_fmt_money(m['collective_bill_eur'])} vs "
                f"{_fmt_money(m['baseline_collective_bill_eur'])} without community")
        if "collective_saving_ratio" in m:
            line += f" (saving {m['collective_saving_ratio']:.1%})"
        lines.append(line)
    if "mean_member_ssr" in m:
        lines.append(f"SSR        mean {m['mean_member_ssr']:.1%}, min {m['min_member_ssr']:.1%}"
                     " per member")
    if "community_self_consumption_rate" in m:
        lines.append(f"sharing    {m['community_self_consumption_rate']:.1%} of community "
                     "production consumed in the community")
    if a.get("summary_text") and int(a.get("has_solution", 0)):
        lines.append(str(a["summary_text"]))  # model-specific lines set by its derive()
    return "\n".join(lines)
