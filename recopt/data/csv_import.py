"""Import smart-meter CSV exports into a validated instance.

A data file has one timestamp column and one column per member consumption and per
generator production (a member may have both)::

    timestamp;Alice_consumption;Bob_consumption;Bob_production;PV_production
    2023-03-26T01:45:00+01:00;0,25;0,10;0,00;0,00
    ...

Prices and static member data (fees, installed power, coordinates, category, ...) come
from a dict or from a small side CSV with a ``member`` column. See :func:`read_csv`.

Any problem raises one :class:`~recopt.errors.InstanceError` subclass whose message
names the file, and the column and line where it applies; nothing is half-loaded.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data.instance import NS_PER_HOUR, check_time_axis, make_instance
from recopt.data.meter_import import dst_hint
from recopt.data.schema import ENERGY_VARIABLES, PRICE_VARIABLES, VARIABLES
from recopt.errors import (
    CSVFormatError,
    InstanceError,
    MissingVariableError,
    NegativeEnergyError,
    NonFiniteError,
    TimestampError,
    UnitError,
)

__all__ = ["read_csv", "ENERGY_UNITS", "POWER_UNITS"]

#: Energy units and their factor to kWh.
ENERGY_UNITS = {"kWh": 1.0, "Wh": 1e-3, "MWh": 1e3, "kwh": 1.0, "wh": 1e-3}
#: Power units and their factor to kW (energy per step = power x step hours).
POWER_UNITS = {"kW": 1.0, "W": 1e-3, "MW": 1e3, "kw": 1.0, "w": 1e-3}

#: Column names recognised as the timestamp column (lower case) when none is given.
TIMESTAMP_NAMES = ("timestamp", "time", "datetime", "date_time", "date", "utc",
                   "time_utc", "datetime_utc", "start", "interval_start", "period_start")
#: Variables that may come through ``prices`` (dict or side CSV), per member.
MEMBER_DATA = tuple(n for n, s in VARIABLES.items() if s.dims == ("member",)) + PRICE_VARIABLES
_KIND_SUFFIX = {"consumption": "_consumption", "production": "_production"}
_OFFSET_RE = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_SEPARATORS = (";", ",", "\t", "|")


# ======================================================================================
# low-level reading
# ======================================================================================
class _Table:
    """A parsed CSV: header, string cells per column and the file line of every row."""

    def __init__(self, path: Path, header: list[str], cols: dict[str, np.ndarray],
                 lines: np.ndarray, sep: str, body: str | None = None):
        self.path = path
        self.header = header
        self.cols = cols
        self.lines = lines
        self.sep = sep
        self.body = body  # the data rows as plain text (fast path), or None

    def where(self, i: int, column: str | None = None) -> str:
        s = f"{self.path}: line {int(self.lines[i])}"
        return s + (f", column '{column}'" if column is not None else "")


def _read_text(path: Path) -> str:
    if not path.exists():
        raise CSVFormatError(f"CSV file '{path}' does not exist")
    if path.is_dir():
        raise CSVFormatError(f"'{path}' is a folder, not a CSV file")
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise CSVFormatError(f"'{path}' is a binary file, not a CSV text file")
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")  # pragma: no cover - latin-1 decodes anything


def _sniff_sep(path: Path, header_line: str, sep: str | None) -> str:
    if sep is not None:
        if not isinstance(sep, str) or len(sep) != 1:
            raise CSVFormatError(f"{path}: sep must be one character, got {sep!r}", "sep")
        return sep
    counts = {s: header_line.count(s) for s in _SEPARATORS}
    best = max(counts, key=lambda s: counts[s])
    if counts[best] == 0:
        raise CSVFormatError(
            f"{path}: cannot find the separator in the header line {header_line[:80]!r}; "
            "the file needs a timestamp column and at least one data column; pass "
            "sep=';' or sep=','",
            "sep",
        )
    return best


def _parse_table(path: Path, sep: str | None) -> _Table:
    text = _read_text(path)
    first = next((ln for ln in text.splitlines() if ln.strip()), None)
    if first is None:
        raise CSVFormatError(f"{path}: the file is empty")
    sep = _sniff_sep(path, first, sep)
    fast = _split_fast(text, sep)
    if fast is not None:
        fast_header, cells, lines_arr, header_line, body = fast
        _check_header(path, fast_header, header_line, sep)
        cols = {name: cells[:, j] for j, name in enumerate(fast_header)}
        return _Table(path, fast_header, cols, lines_arr, sep, body)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if header is None:
                header = [c.strip() for c in row]
                header_line = reader.line_num
                while header and header[-1] == "" and len(header) > 1:
                    header.pop()  # trailing separator
                continue
            if len(row) > len(header) and all(not c.strip() for c in row[len(header):]):
                row = row[: len(header)]
            if len(row) != len(header):
                raise CSVFormatError(
                    f"{path}: line {reader.line_num} has {len(row)} fields but the header "
                    f"has {len(header)} (separator '{sep}'); fix the row or pass sep=",
                    None,
                )
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise CSVFormatError(f"{path}: line {reader.line_num}: {exc}") from None
    assert header is not None
    _check_header(path, header, header_line, sep)
    if not rows:
        raise CSVFormatError(f"{path}: the file has a header but no data rows")
    cells = np.array(rows, dtype=object)
    cols = {name: cells[:, j] for j, name in enumerate(header)}
    return _Table(path, header, cols, np.asarray(lines, dtype=np.int64), sep)


def _check_header(path: Path, header: list[str], header_line: int, sep: str) -> None:
    for j, name in enumerate(header):
        if not name:
            raise CSVFormatError(f"{path}: column {j + 1} of the header (line {header_line}) "
                                 "has no name", None)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise CSVFormatError(f"{path}: column '{name}' appears twice in the header",
                                 name)
        seen.add(name)
    if len(header) < 2:
        raise CSVFormatError(
            f"{path}: the header has a single column ({header[0]!r}) with separator "
            f"'{sep}'; the file needs a timestamp column and data columns (pass sep=?)",
            None,
        )


def _split_fast(text: str, sep: str):
    """Split a plain file (no quotes, same field count everywhere) with pandas' C parser.

    Returns ``(header, cells, line_numbers, header_line, body)`` or None when the file
    needs the careful :mod:`csv` path (quotes, ragged rows, odd line breaks), which
    also produces the precise error messages.
    """
    if '"' in text:
        return None
    text = text.replace("\r\n", "\n")
    if any(ch in text for ch in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        return None
    lines = text.split("\n")
    keep = [i for i, ln in enumerate(lines) if ln.replace(sep, "").strip()]
    if len(keep) < 2:
        return None
    header = [c.strip() for c in lines[keep[0]].split(sep)]
    while header and header[-1] == "" and len(header) > 1:
        header.pop()
    ncol = len(header)
    data = keep[1:]
    if any(lines[i].count(sep) != ncol - 1 for i in data):
        return None
    body = "\n".join(lines[i] for i in data)
    try:
        df = pd.read_csv(io.StringIO(body), sep=sep, header=None, dtype=str, na_filter=False,
                         engine="c", skip_blank_lines=False, quoting=csv.QUOTE_NONE)
    except Exception:  # noqa: BLE001 - the csv path will report the problem
        return None
    if df.shape != (len(data), ncol):
        return None
    cells = df.to_numpy(dtype=object)
    return header, cells, np.asarray(data, dtype=np.int64) + 1, keep[0] + 1, body


def _numbers_many(table: _Table, columns: Sequence[str], decimal: str) -> dict[str, np.ndarray]:
    """Parse several numeric columns; C-speed when the file is clean."""
    if table.body is not None and columns:
        pos = [table.header.index(c) for c in columns]
        try:
            df = pd.read_csv(io.StringIO(table.body), sep=table.sep, header=None,
                             usecols=pos, dtype=dict.fromkeys(pos, np.float64),
                             decimal=decimal, na_filter=False, engine="c",
                             skip_blank_lines=False, quoting=csv.QUOTE_NONE)
            values = {c: df[p].to_numpy(dtype=np.float64) for c, p in zip(columns, pos,
                                                                          strict=True)}
            if all(v.shape == table.lines.shape and np.isfinite(v).all()
                   for v in values.values()):
                if decimal == "," and any("." in "".join(table.cols[c].tolist())
                                          for c in columns):
                    raise ValueError("decimal point in a decimal-comma file")
                return values
        except (ValueError, TypeError):
            pass
    return {c: _numbers(table, c, decimal) for c in columns}


def _sniff_decimal(table: _Table, columns: Sequence[str], decimal: str | None) -> str:
    if decimal is not None:
        if decimal not in (".", ","):
            raise CSVFormatError(f"{table.path}: decimal must be '.' or ',', got {decimal!r}",
                                 "decimal")
        if decimal == table.sep:
            raise CSVFormatError(
                f"{table.path}: the decimal mark and the separator are both '{decimal}'",
                "decimal")
        return decimal
    if table.sep == ",":
        return "."
    for c in columns:
        if any("," in str(v) for v in table.cols[c]):
            return ","
    return "."


def _fast_numbers(cells: np.ndarray, decimal: str) -> np.ndarray | None:
    """Vectorised parse of a clean column; None when any cell needs a closer look."""
    texts: list[str] = cells.tolist()
    if decimal == ",":
        joined = "\x00".join(texts)
        if "." in joined:
            return None
        texts = joined.replace(",", ".").split("\x00")
    try:
        values = np.array(texts, dtype=np.float64)
    except (ValueError, TypeError):
        return None
    if values.shape != (len(texts),) or not np.isfinite(values).all():
        return None
    return values


def _numbers(table: _Table, column: str, decimal: str, *, what: str = "number") -> np.ndarray:
    fast = _fast_numbers(table.cols[column], decimal)
    if fast is not None:
        return fast
    raw = [str(v).strip() for v in table.cols[column]]
    if decimal == ",":
        # a cell with a '.' or several ',' is not a decimal-comma number: make it fail
        text = [v.replace(",", ".") if v.count(",") <= 1 and "." not in v else "?"
                for v in raw]
    else:
        text = raw
    values = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        cell = raw[i]
        n_bad = int(bad.sum())
        tail = f" ({n_bad} bad cell{'s' if n_bad > 1 else ''} in this column)"
        if cell == "" or cell.lower() in ("nan", "na", "n/a", "null", "none") or \
                np.isinf(values[i]):
            why = "is empty" if cell == "" else f"is {cell!r}, not a finite {what}"
            raise NonFiniteError(
                f"{table.where(i, column)}: the value {why}; fill the missing value "
                f"(or drop the row){tail}", column)
        alt = "," if decimal == "." else "."
        raise CSVFormatError(
            f"{table.where(i, column)}: {cell!r} is not a {what}; fix the cell (the "
            f"decimal mark in use is '{decimal}'; pass decimal='{alt}' if the file uses "
            f"'{alt}'){tail}", column)
    return values


# ======================================================================================
# timestamps
# ======================================================================================
def _step_hours(time_step: Any, path: Path) -> float | None:
    if time_step is None:
        return None
    if isinstance(time_step, int | float | np.integer | np.floating) and not isinstance(
            time_step, bool):
        hours = float(time_step)
    else:
        try:
            hours = pd.Timedelta(time_step).total_seconds() / 3600.0
        except (ValueError, TypeError):
            raise TimestampError(
                f"{path}: time_step {time_step!r} is neither hours nor a duration such as "
                "'15min' or '1h'", "time_step") from None
    if not np.isfinite(hours) or hours <= 0:
        raise TimestampError(f"{path}: time_step must be positive, got {time_step!r}",
                             "time_step")
    return hours


def _timestamps(table: _Table, column: str, timezone: str | None,
                fmt: str | None) -> np.ndarray:
    raw = pd.Series([str(v).strip() for v in table.cols[column]], dtype=object)
    empty = (raw == "").to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise TimestampError(f"{table.where(i, column)}: the timestamp is empty", column)
    has_offset = raw.str.contains(_OFFSET_RE).to_numpy()
    if fmt is not None:
        parsed = pd.to_datetime(raw, format=fmt, errors="coerce", utc=bool(has_offset.all()))
    elif has_offset.all():
        parsed = pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=True)
    elif not has_offset.any():
        parsed = pd.to_datetime(raw, format="ISO8601", errors="coerce")
    else:
        i = int(np.flatnonzero(has_offset != has_offset[0])[0])
        raise TimestampError(
            f"{table.where(i, column)}: timestamp {raw[i]!r} "
            f"{'has' if has_offset[i] else 'has no'} UTC offset while line "
            f"{int(table.lines[0])} {'has' if has_offset[0] else 'has none'}; use one "
            "convention throughout",
            column,
        )
    nat = parsed.isna().to_numpy()
    if nat.any():
        i = int(np.flatnonzero(nat)[0])
        hint = ("pass timestamp_format (e.g. '%d/%m/%Y %H:%M')" if fmt is None
                else f"it does not match timestamp_format {fmt!r}")
        raise TimestampError(
            f"{table.where(i, column)}: cannot read timestamp {raw[i]!r} "
            f"({int(nat.sum())} unreadable); use ISO 8601 (2023-03-26T01:45:00+01:00) or "
            f"{hint}",
            column,
        )
    idx = pd.DatetimeIndex(parsed)
    if idx.tz is None and timezone is not None:
        idx = _localize(table, column, idx, timezone)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.values.astype("datetime64[ns]")


def _localize(table: _Table, column: str, idx: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    try:
        pd.Timestamp("2000-01-01").tz_localize(tz)
    except Exception:  # noqa: BLE001 - zoneinfo/pytz raise various types
        raise TimestampError(
            f"{table.path}: unknown time zone {tz!r}; use an IANA name such as "
            "'Europe/Brussels' or 'UTC'", "timezone") from None
    n = len(idx)
    # rows that do not exist locally (spring gap): NaT when ambiguity is settled
    nonexist = np.asarray(idx.tz_localize(tz, ambiguous=np.zeros(n, dtype=bool),
                                          nonexistent="NaT").isna())
    # rows that exist twice locally (autumn hour): NaT when the gap is settled
    ambiguous_rows = np.asarray(idx.tz_localize(tz, ambiguous="NaT",
                                                nonexistent="shift_forward").isna())
    gap = nonexist
    if gap.any():
        i = int(np.flatnonzero(gap)[0])
        raise TimestampError(
            f"{table.where(i, column)}: local time {idx[i]} does not exist in {tz} "
            "(clocks jump forward there); drop that row or give timestamps with UTC "
            "offsets",
            column,
        )
    try:
        return idx.tz_localize(tz, ambiguous="infer", nonexistent="raise")
    except Exception as exc:  # noqa: BLE001
        amb = np.flatnonzero(ambiguous_rows)
        where = table.where(int(amb[0]), column) if amb.size else str(table.path)
        raise TimestampError(
            f"{where}: cannot tell which repeated local hour of the autumn DST change "
            f"each row is ({exc}); the repeated hour must appear twice in order, or give "
            "timestamps with UTC offsets",
            column,
        ) from None


# ======================================================================================
# columns to members
# ======================================================================================
def _column_map(spec, kind: str, header: list[str], member_of_column: Mapping[str, str],
                path: Path) -> list[tuple[str, str]]:
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = [spec]
    pairs: list[tuple[str, str]] = []
    items = spec.items() if isinstance(spec, Mapping) else ((c, None) for c in spec)
    for col, member in items:
        if col not in header:
            raise CSVFormatError(
                f"{path}: {kind} column '{col}' is not in the file; columns are "
                f"{', '.join(header)}",
                col,
            )
        if member is None:
            member = member_of_column.get(col)
        if member is None:
            suffix = _KIND_SUFFIX[kind]
            member = col[: -len(suffix)] if col.lower().endswith(suffix) and \
                len(col) > len(suffix) else col
        pairs.append((col, str(member)))
    return pairs


def _default_columns(header: list[str], ts_col: str, member_of_column: Mapping[str, str],
                     path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    cons: list[tuple[str, str]] = []
    prod: list[tuple[str, str]] = []
    unknown: list[str] = []
    for col in header:
        if col == ts_col or col in PRICE_VARIABLES:
            continue
        low = col.lower()
        for kind, suffix in _KIND_SUFFIX.items():
            if low.endswith(suffix) and len(col) > len(suffix):
                member = member_of_column.get(col, col[: -len(suffix)])
                (cons if kind == "consumption" else prod).append((col, str(member)))
                break
        else:
            unknown.append(col)
    if unknown:
        raise CSVFormatError(
            f"{path}: column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(c) for c in unknown)} follow{'' if len(unknown) > 1 else 's'} "
            "no convention: name data columns '<member>_consumption' / "
            "'<member>_production', or pass consumption_columns= and production_columns= "
            "(lists, or dicts {column: member}) to pick the columns explicitly",
            unknown[0],
        )
    if not cons and not prod:
        raise CSVFormatError(
            f"{path}: no column ends in '_consumption' or '_production'; pass "
            "consumption_columns= / production_columns=",
            None,
        )
    return cons, prod


def _timestamp_column(table: _Table, name: str | None) -> str:
    if name is not None:
        if name not in table.header:
            raise CSVFormatError(
                f"{table.path}: timestamp column '{name}' is not in the file; columns are "
                f"{', '.join(table.header)}",
                name,
            )
        return name
    for col in table.header:
        if col.lower() in TIMESTAMP_NAMES:
            return col
    return table.header[0]


def _unit_factor(unit: str, step_hours: float, column: str, path: Path) -> float:
    if unit in ENERGY_UNITS:
        return ENERGY_UNITS[unit]
    if unit in POWER_UNITS:
        return POWER_UNITS[unit] * step_hours
    raise UnitError(
        f"{path}: unknown unit {unit!r} for column '{column}'; use an energy per step "
        "(kWh, Wh, MWh) or a mean power over the step (kW, W, MW)",
        column,
    )


# ======================================================================================
# prices and member data
# ======================================================================================
def _side_csv(path: Path, members: list[str], sep: str | None,
              decimal: str | None) -> dict[str, Any]:
    table = _parse_table(path, sep)
    if "member" not in table.header:
        raise CSVFormatError(
            f"{path}: the member data file needs a 'member' column; it has "
            f"{', '.join(table.header)}",
            "member",
        )
    unknown = [c for c in table.header if c != "member" and c not in MEMBER_DATA]
    if unknown:
        raise CSVFormatError(
            f"{path}: unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(c) for c in unknown)}; the member data file may hold "
            f"{', '.join(MEMBER_DATA)}",
            unknown[0],
        )
    names = [str(v).strip() for v in table.cols["member"]]
    seen: set[str] = set()
    for i, m in enumerate(names):
        if m in seen:
            raise CSVFormatError(f"{table.where(i, 'member')}: member '{m}' is listed twice",
                                 "member")
        if m not in members:
            raise CSVFormatError(
                f"{table.where(i, 'member')}: member '{m}' has no data column in the "
                f"data file (members: {', '.join(members)})",
                "member",
            )
        seen.add(m)
    numeric = [c for c in table.header if c not in ("member", "category", "role")]
    dec = _sniff_decimal(table, numeric, decimal)
    out: dict[str, Any] = {}
    for col in table.header:
        if col == "member":
            continue
        if col in ("category", "role"):
            values = [str(v).strip() for v in table.cols[col]]
        else:
            values = _numbers(table, col, dec).tolist()
        out[col] = dict(zip(names, values, strict=True))
    missing = [m for m in members if m not in seen]
    if missing and out:
        first = next(iter(out))
        raise MissingVariableError(
            f"{path}: member{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"{'have' if len(missing) > 1 else 'has'} no row, so {first} (and the other "
            "columns) has no value for them; add a row per member",
            first,
        )
    return out


def _missing_price_message(path: Path, name: str) -> str:
    return (
        f"{path}: {name} is missing ({VARIABLES[name].description}, EUR/kWh); give it "
        f"as prices={{'{name}': 0.1}} (a scalar, or {{member: value}}), as a column "
        f"'{name}' of a member data CSV passed as prices='members.csv', or as a column "
        f"'{name}' of the data file (one price per step)"
    )


# ======================================================================================
# read_csv
# ======================================================================================
def read_csv(
    path,
    *,
    consumption_columns: Sequence[str] | Mapping[str, str] | None = None,
    production_columns: Sequence[str] | Mapping[str, str] | None = None,
    member_of_column: Mapping[str, str] | None = None,
    timestamp_column: str | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    timezone: str | None = None,
    timestamp_format: str | None = None,
    timestamp_label: str = "start",
    unit: str | Mapping[str, str] = "kWh",
    time_step: float | str | pd.Timedelta | None = None,
    prices: Mapping[str, Any] | str | Path | None = None,
    members: Sequence[str] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Read a smart-meter CSV export into a validated single-scenario instance.

    Parameters
    ----------
    path : str or os.PathLike
        The data file: one timestamp column, one column per member consumption and
        per production. Blank lines are skipped; UTF-8 (with or without BOM) or
        Windows-1252 text.
    consumption_columns, production_columns : list of str or dict, optional
        The columns to read, as a list (member name = column name without a
        ``_consumption``/``_production`` suffix, or ``member_of_column[column]``) or
        a dict ``{column: member}``. When both are None, the default convention
        applies: every column named ``<member>_consumption`` or
        ``<member>_production`` (case-insensitive suffix), and any other column
        (except the timestamp and price columns) is an error. When one of them is
        given, only the listed columns are read (the other list defaults to empty).
        Several columns mapped to the same member and kind are added together.
    member_of_column : dict, optional
        ``{column: member}`` naming the member of a column (for lists and for the
        default convention).
    timestamp_column : str, optional
        Default: the first column named ``timestamp``, ``time``, ``datetime``,
        ``date``, ``utc``, ... (case-insensitive), else the first column.
    sep : str, optional
        Field separator; sniffed from the header (``;``, ``,``, tab or ``|``).
    decimal : {".", ","}, optional
        Decimal mark; ``"."`` for comma-separated files, otherwise sniffed (``","``
        when any data cell contains a comma).
    timezone : str, optional
        IANA zone (e.g. ``"Europe/Brussels"``) of *naive* local timestamps. Spring
        gaps and the repeated autumn hour are resolved with
        ``tz_localize(ambiguous="infer")``, so each row becomes a distinct UTC step.
        Ignored for timestamps carrying UTC offsets (``+01:00``, ``Z``), which are
        exact. Naive timestamps without ``timezone`` are taken as UTC.
    timestamp_format : str, optional
        strftime format for non-ISO timestamps (e.g. ``"%d/%m/%Y %H:%M"``).
    timestamp_label : {"start", "end"}, default "start"
        Whether a row's timestamp is the start or the end of its metering interval;
        instances store starts, so ``"end"`` shifts all times back by one step.
    unit : str or dict, default "kWh"
        Unit of the energy columns, or ``{column: unit}``: an energy per step
        ``kWh``, ``Wh``, ``MWh`` (kept / scaled) or a mean power over the step
        ``kW``, ``W``, ``MW`` (multiplied by the step length in hours).
    time_step : float, str or pandas.Timedelta, optional
        Step length (hours, or a duration such as ``"15min"``); default: the
        constant spacing of the timestamps (required for a one-row file).
    prices : dict or path, optional
        Prices (EUR/kWh) and member data. A dict ``{name: value}`` where name is a
        price (``price_grid_buy``, ``price_grid_sell``, ``price_community_buy``,
        ``price_community_sell``) or a member variable (``subscription_fee``,
        ``installed_power``, ``x_km``, ``y_km``, ``lat``, ``lon``, ``investment``,
        ``category``) and value a scalar, a dict ``{member: value}``, or (prices
        only) the name of a data-file column holding one price per step. Or the path
        of a side CSV with a ``member`` column and any of those names as columns. A
        data-file column named exactly like a price is read as a per-step price.
    members : list of str, optional
        Order of the members; must name exactly the members found in the columns.
    attrs : dict, optional
        Instance attributes (``max_distance_km``, ``billing_period``, ...). The
        ``billing_timezone`` defaults to ``timezone`` when one is given, so billing
        periods start at local midnight (:func:`recopt.data.billing_period_index`).

    Returns
    -------
    xarray.Dataset
        The validated instance (one scenario ``s0``), time in UTC (tz-naive),
        energies in kWh per step; members with only production get consumption 0 and
        vice versa.

    Raises
    ------
    CSVFormatError
        The file cannot be read, a column is missing or unknown, a cell is not a
        number (the message names the line and column).
    TimestampError
        Unreadable, duplicate, unsorted or irregular timestamps, non-existent local
        times, an unresolvable autumn hour.
    UnitError
        Unknown unit.
    NegativeEnergyError, NonFiniteError
        A negative or non-finite energy (line and column named).
    MissingVariableError
        A price is missing (the message says how to give it).
    """
    path = Path(path)
    member_of_column = dict(member_of_column or {})
    table = _parse_table(path, sep)
    ts_col = _timestamp_column(table, timestamp_column)

    # --- columns ------------------------------------------------------------------------
    if consumption_columns is None and production_columns is None:
        cons_map, prod_map = _default_columns(table.header, ts_col, member_of_column, path)
    else:
        cons_map = _column_map(consumption_columns, "consumption", table.header,
                               member_of_column, path)
        prod_map = _column_map(production_columns, "production", table.header,
                               member_of_column, path)
    used = [c for c, _ in cons_map] + [c for c, _ in prod_map]
    both = sorted({c for c in used if used.count(c) > 1})
    if both:
        raise CSVFormatError(f"{path}: column '{both[0]}' is used twice", both[0])
    if ts_col in used:
        raise CSVFormatError(f"{path}: column '{ts_col}' is the timestamp column and a "
                             "data column", ts_col)

    # --- members --------------------------------------------------------------------------
    found: list[str] = []
    for _, m in cons_map + prod_map:
        if m not in found:
            found.append(m)
    if members is not None:
        members = [str(m) for m in members]
        extra = [m for m in found if m not in members]
        absent = [m for m in members if m not in found]
        if extra or absent or len(set(members)) != len(members):
            raise CSVFormatError(
                f"{path}: members={members} does not match the members of the columns "
                f"({', '.join(found)})" + (f"; not listed: {', '.join(extra)}" if extra else "")
                + (f"; no column: {', '.join(absent)}" if absent else ""),
                "members",
            )
    else:
        members = found

    # --- prices from the data file ---------------------------------------------------------
    prices_dict: dict[str, Any]
    if prices is None:
        prices_dict = {}
    elif isinstance(prices, str | Path):
        prices_dict = _side_csv(Path(prices), members, None, None)
    elif isinstance(prices, Mapping):
        prices_dict = dict(prices)
        unknown = [k for k in prices_dict if k not in MEMBER_DATA]
        if unknown:
            raise InstanceError(
                f"{path}: prices has unknown name{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)}; known: {', '.join(MEMBER_DATA)}",
                unknown[0],
            )
    else:
        raise InstanceError(
            f"{path}: prices must be a dict or the path of a member data CSV, got "
            f"{type(prices).__name__}", "prices")
    price_cols: dict[str, str] = {}
    for name in PRICE_VARIABLES:
        if name in table.header and name not in used:
            if name in prices_dict:
                raise CSVFormatError(
                    f"{path}: {name} is given both as a column of the data file and in "
                    "prices; keep one", name)
            price_cols[name] = name
    for name, value in list(prices_dict.items()):
        if isinstance(value, str) and name in PRICE_VARIABLES:
            if value not in table.header:
                raise CSVFormatError(
                    f"{path}: prices['{name}'] names column '{value}', which is not in the "
                    f"file; columns are {', '.join(table.header)}", name)
            if value in used or value == ts_col:
                raise CSVFormatError(
                    f"{path}: prices['{name}'] names column '{value}', which is already "
                    "used", name)
            price_cols[name] = value
            del prices_dict[name]
    for name in PRICE_VARIABLES:
        if name not in prices_dict and name not in price_cols:
            raise MissingVariableError(_missing_price_message(path, name), name)

    if isinstance(unit, Mapping):
        stray = [c for c in unit if c not in used]
        if stray:
            raise CSVFormatError(
                f"{path}: unit names column{'s' if len(stray) > 1 else ''} "
                f"{', '.join(repr(c) for c in stray)}, which {'are' if len(stray) > 1 else 'is'}"
                f" not an energy column read from the file", stray[0])

    # --- numbers ----------------------------------------------------------------------------
    number_cols = used + list(price_cols.values())
    dec = _sniff_decimal(table, number_cols, decimal)
    values = _numbers_many(table, number_cols, dec)

    # --- time ---------------------------------------------------------------------------------
    if timestamp_label not in ("start", "end"):
        raise InstanceError(f"{path}: timestamp_label must be 'start' or 'end', got "
                            f"{timestamp_label!r}", "timestamp_label")
    times = _timestamps(table, ts_col, timezone, timestamp_format)
    given_hours = _step_hours(time_step, path)
    labels = [f"line {int(n)}" for n in table.lines]
    try:
        spacing = check_time_axis(times, given_hours, where=str(path), labels=labels)
    except TimestampError as exc:
        text = str(exc).replace("time_step_hours", "time_step")
        if timezone is None and "duplicate" in text:
            ts = pd.Series(times)
            hint = dst_hint(ts[ts.duplicated(keep=False)].unique())
            if hint:  # the export is local time: name the timezone, do not drop an hour
                text = text.replace("; drop or aggregate the repeated steps", "") + hint
        raise TimestampError(text, ts_col) from None
    if given_hours is not None:
        step_hours = given_hours
    elif spacing is not None:
        step_hours = spacing / NS_PER_HOUR
    else:
        raise TimestampError(f"{path}: a single row cannot tell the step length; pass "
                             "time_step= (hours or e.g. '15min')", "time_step")
    if timestamp_label == "end":
        times = times - np.timedelta64(int(round(step_hours * NS_PER_HOUR)), "ns")

    # --- energies --------------------------------------------------------------------------
    T, U = times.size, len(members)
    col_index = {m: j for j, m in enumerate(members)}
    energy = {"consumption": np.zeros((T, U)), "production": np.zeros((T, U))}
    for kind, mapping in (("consumption", cons_map), ("production", prod_map)):
        for col, member in mapping:
            u = unit.get(col, "kWh") if isinstance(unit, Mapping) else unit
            v = values[col] * _unit_factor(str(u), step_hours, col, path)
            neg = v < 0
            if neg.any():
                i = int(np.flatnonzero(neg)[0])
                raise NegativeEnergyError(
                    f"{table.where(i, col)}: {kind} is negative ({values[col][i]:g}; "
                    f"{int(neg.sum())} negative cells in this column); give {kind} as a "
                    "positive energy (put injections in a '_production' column)",
                    col,
                )
            energy[kind][:, col_index[member]] += v

    # --- prices and member data -------------------------------------------------------------
    kwargs: dict[str, Any] = {}
    for name, col in price_cols.items():
        kwargs[name] = xr.DataArray(values[col], dims=("time",), coords={"time": times})
    kwargs.update(prices_dict)
    for name in ENERGY_VARIABLES:
        kwargs.pop(name, None)
    attrs = dict(attrs or {})
    if timezone is not None and attrs.get("billing_timezone") is None:
        attrs["billing_timezone"] = timezone  # bills per local period (recopt.data.roles)
    try:
        return make_instance(
            energy["consumption"],
            energy["production"],
            time=times,
            members=members,
            time_step_hours=step_hours,
            attrs=attrs,
            **kwargs,
        )
    except InstanceError as exc:
        raise type(exc)(f"{path}: {exc}", exc.variable) from None
