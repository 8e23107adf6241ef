"""Meter exports (wide or long CSV) into a validated instance, every problem at once.

Two layouts are read:

* **wide**: one row per time step, a timestamp column (or separate date and time
  columns) and one column per member and energy, named ``<member>_consumption`` /
  ``<member>_production``::

      date;time;Alice_consumption;Bob_consumption;Bob_production
      26/03/2023;01:45;0,25;0,10;0,00

* **long** (as DSO portals export): one row per meter point, register and quarter
  hour, with separate date and time columns, e.g. Fluvius' ``Van (datum);Van
  (tijdstip);...;EAN;...;Register;Volume;Eenheid``::

      date;time;meter;register;value;unit
      26/03/2023;01:45;Alice;consumption;0,25;kWh
      26/03/2023;01:45;Bob;injection;0,00;kWh

  The register says consumption (offtake, afname, prélèvement, 1.8.x, ...) or
  production (injection, injectie, 2.8.x, ...); several registers of the same kind
  (day / night) are added up.

Both layouts go through one path (:func:`read_meter_export`): the cells become
records ``(member, kind, timestamp, value)`` with their file line and column, so
the same data give the same instance whatever the layout (tested). Problems are
*collected*, not raised one at a time: unreadable numbers or dates, negative
energies, unknown registers, duplicates, missing steps, unknown members in the
member file, missing prices -- each with file, line and column -- and raised once as
:class:`ImportProblems`.

Time: naive local timestamps are localised in ``timezone`` (an IANA name). In the
autumn the repeated local hour appears twice for each meter and register; the first
occurrence is taken as summer time, the second as winter time. Without a timezone
naive timestamps are UTC; duplicates that sit on a DST change of a common zone get a
hint naming it. The instance's ``billing_timezone`` is ``timezone``
(:mod:`recopt.data.roles`).

Units: energies in kWh per step (``unit`` kWh, Wh, MWh; or a mean power kW, W, MW
times the step), prices in EUR/kWh, fees in EUR per billing period.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data.instance import NS_PER_HOUR, make_instance
from recopt.data.schema import MEMBER, PRICE_VARIABLES, VARIABLES
from recopt.errors import CSVFormatError, InstanceError

__all__ = ["Problem", "ImportProblems", "read_meter_export", "dst_hint", "REGISTER_WORDS",
           "MEMBER_FILE_COLUMNS"]

#: Words (lower case, matched inside the register text) that name each energy kind.
REGISTER_WORDS = {
    "consumption": ("consumption", "offtake", "afname", "prelevement", "prélèvement",
                    "withdrawal", "import", "1.8."),
    "production": ("production", "injection", "injectie", "export", "generation",
                   "2.8."),
}
#: Energy units (factor to kWh) and power units (factor to kW, times the step).
ENERGY_FACTORS = {"kwh": 1.0, "wh": 1e-3, "mwh": 1e3}
POWER_FACTORS = {"kw": 1.0, "w": 1e-3, "mw": 1e3}
#: Divisors of the units below kWh / kW (x / 1000 is correctly rounded, x * 1e-3 not:
#: 134 Wh gives the same float as "0.134" kWh).
_DIVISORS = {"wh": 1000.0, "w": 1000.0}
#: Header names (lower case) recognised for each role of a column.
_NAMES = {
    "timestamp": ("timestamp", "datetime", "date_time", "time_utc", "utc", "start",
                  "interval_start", "period_start"),
    "date": ("date", "day", "datum", "van (datum)", "from date", "start date",
             "date de début", "date début"),
    "time": ("time", "hour", "tijd", "van (tijdstip)", "from time", "start time",
             "heure", "heure de début", "heure début"),
    "meter": ("meter", "meter_point", "meter point", "ean", "ean code", "ean_code",
              "pod", "compteur", "point", "member"),
    "register": ("register", "registre", "direction", "kind", "type", "energy"),
    "value": ("value", "volume", "quantity", "kwh", "energy_kwh", "waarde", "valeur"),
    "unit": ("unit", "eenheid", "unité", "unite"),
}
#: Columns a member file may hold (besides ``member``, and ``meter`` to map meter
#: points of a long export to members).
MEMBER_FILE_COLUMNS = tuple(n for n, s in VARIABLES.items() if s.dims == (MEMBER,)) \
    + PRICE_VARIABLES
_TEXT_COLUMNS = ("category", "role")
_OFFSET_RE = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
#: Zones checked for the DST hint on duplicates (when no timezone is given).
_HINT_ZONES = ("Europe/Brussels", "Europe/London", "Europe/Lisbon", "Europe/Helsinki",
               "America/New_York", "America/Chicago", "America/Denver",
               "America/Los_Angeles", "Australia/Sydney")
MAX_SHOWN = 40


@dataclass(frozen=True)
class Problem:
    """One problem of an import: where (file, line, column) and what."""

    path: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f": line {self.line}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"


class ImportProblems(CSVFormatError):
    """Every problem found in a meter export, raised once (``problems`` lists them)."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = sorted(problems, key=lambda q: (q.path, q.line is None, q.line or 0))
        shown = [f"  {p}" for p in self.problems[:MAX_SHOWN]]
        more = len(self.problems) - MAX_SHOWN
        text = (f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''} in "
                "the meter export:\n" + "\n".join(shown)
                + (f"\n  ... and {more} more" if more > 0 else ""))
        first = self.problems[0].column if self.problems else None
        super().__init__(text, first)


# ======================================================================================
# reading a CSV into cells with their lines
# ======================================================================================
@dataclass
class _Csv:
    path: str
    header: list[str]
    rows: list[list[str]]
    lines: np.ndarray  # file line of every row (header is line 1 when first)
    sep: str = ";"


def _read_csv_cells(path: Path, sep: str | None, problems: list[Problem]) -> _Csv | None:
    p = str(path)
    if not path.is_file():
        problems.append(Problem(p, None, None, "the file does not exist"))
        return None
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        problems.append(Problem(p, None, None, "a binary file, not a CSV text file"))
        return None
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        problems.append(Problem(p, None, None, "the file is empty"))
        return None
    if sep is None:
        counts = {s: lines[first].count(s) for s in (";", ",", "\t", "|")}
        sep = max(counts, key=lambda s: counts[s])
        if counts[sep] == 0:
            problems.append(Problem(p, first + 1, None,
                                    "cannot tell the separator from the header (no ';', "
                                    "',', tab or '|'); pass --sep"))
            return None
    reader = csv.reader(io.StringIO("\n".join(lines[first:])), delimiter=sep)
    header = [h.strip() for h in next(reader)]
    rows, where = [], []
    for k, row in enumerate(reader, start=first + 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            problems.append(Problem(p, k, None, f"{len(row)} fields but the header has "
                                    f"{len(header)} ({sep!r}-separated)"))
            continue
        rows.append([c.strip() for c in row])
        where.append(k)
    return _Csv(p, header, rows, np.asarray(where, dtype=int), sep)


def _find(header: Sequence[str], role: str, given: str | None, csvp: str,
          problems: list[Problem]) -> str | None:
    if given is not None:
        if given not in header:
            problems.append(Problem(csvp, 1, given, f"no such column; columns are "
                                    f"{', '.join(header)}"))
            return None
        return given
    low = {h.lower(): h for h in header}
    for name in _NAMES[role]:
        if name in low:
            return low[name]
    return None


# ======================================================================================
# numbers, timestamps
# ======================================================================================
def _numbers(cells: np.ndarray, decimal: str) -> np.ndarray:
    s = pd.Series(cells, dtype=object).astype(str).str.strip()
    if decimal == ",":
        s = s.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


def _sniff_decimal(cells: np.ndarray, sep: str) -> str:
    if sep == ",":
        return "."
    text = pd.Series(cells, dtype=object).astype(str)
    return "," if text.str.contains(",", regex=False).any() else "."


def _parse_times(text: np.ndarray, fmt: str | None) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Timestamps (naive or UTC) and a mask of the unreadable ones."""
    s = pd.Series(text, dtype=object).astype(str).str.strip()
    has_offset = s.str.contains(_OFFSET_RE)
    utc = bool(has_offset.all()) and len(s) > 0
    if fmt is not None:
        parsed = pd.to_datetime(s, format=fmt, errors="coerce", utc=utc)
    elif s.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        parsed = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=utc)
    else:  # day first (26/03/2023, 26.03.2023, 26-03-2023), as European portals write
        norm = s.str.replace(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})", r"\3-\2-\1", regex=True)
        norm = norm.str.replace(r"^(\d{4})-(\d)-", r"\1-0\2-", regex=True)
        norm = norm.str.replace(r"^(\d{4}-\d{2})-(\d)(\D|$)", r"\1-0\2\3", regex=True)
        parsed = pd.to_datetime(norm, format="ISO8601", errors="coerce", utc=utc)
    bad = parsed.isna().to_numpy()
    idx = pd.DatetimeIndex(parsed)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx, bad


def dst_hint(naive: Sequence[Any]) -> str:
    """A hint for duplicated naive timestamps that sit on an autumn DST change.

    Returns ``"; they sit on the repeated hour of the autumn DST change in
    Europe/Brussels: pass timezone='Europe/Brussels' ..."`` naming the zones where
    every duplicated local time is ambiguous, or ``""``.
    """
    idx = pd.DatetimeIndex(pd.to_datetime(list(naive)))
    if idx.size == 0:
        return ""
    zones = []
    for tz in _HINT_ZONES:
        amb = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").isna()
        if np.asarray(amb).all():
            zones.append(tz)
    if not zones:
        return ""
    return ("; they sit on the repeated hour of the autumn DST change in "
            f"{' / '.join(zones[:3])}: the export is in local time, so give its timezone "
            f"(--timezone {zones[0]}; each repeated hour is then read once as summer and "
            "once as winter time) instead of dropping rows")


def _localize(naive: pd.DatetimeIndex, series_key: np.ndarray, tz: str, csvp: str,
              lines: np.ndarray, col: str, problems: list[Problem]) -> np.ndarray:
    """Naive local times in ``tz`` to UTC; the repeated autumn hour in file order."""
    n = naive.size
    try:
        pd.Timestamp("2000-01-01").tz_localize(tz)
    except Exception:  # noqa: BLE001 - zoneinfo / pytz raise several types
        problems.append(Problem(csvp, None, None, f"unknown timezone {tz!r}; use an IANA "
                                "name such as 'Europe/Brussels' or 'UTC'"))
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    nonexist = np.asarray(naive.tz_localize(tz, ambiguous=np.zeros(n, bool),
                                            nonexistent="NaT").isna())
    for i in np.flatnonzero(nonexist)[:MAX_SHOWN]:
        problems.append(Problem(csvp, int(lines[i]), col,
                                f"local time {naive[i]} does not exist in {tz} (the clocks "
                                "jump forward then); is the timezone right?"))
    amb = np.asarray(naive.tz_localize(tz, ambiguous="NaT",
                                       nonexistent="shift_forward").isna()) & ~nonexist
    flags = np.zeros(n, dtype=bool)
    if amb.any():  # first occurrence of a repeated hour (per series): summer time
        df = pd.DataFrame({"k": series_key[amb], "t": naive[amb]})
        occ = df.groupby(["k", "t"], sort=False).cumcount().to_numpy()
        count = df.groupby(["k", "t"], sort=False)["t"].transform("size").to_numpy()
        flags[amb] = occ == 0
        for j in np.flatnonzero(count != 2)[:MAX_SHOWN]:
            i = int(np.flatnonzero(amb)[j])
            problems.append(Problem(csvp, int(lines[i]), col,
                                    f"local time {naive[i]} is the repeated hour of the DST "
                                    f"change in {tz}; it must appear exactly twice per meter "
                                    f"and register (summer time first), found {count[j]}"))
    local = naive.tz_localize(tz, ambiguous=flags, nonexistent="NaT")
    return np.asarray(local.tz_convert("UTC").tz_localize(None).values,
                      dtype="datetime64[ns]")


# ======================================================================================
# the member file
# ======================================================================================
def _member_file(path: Path, sep: str | None, problems: list[Problem]
                 ) -> tuple[list[str], dict[str, str], dict[str, dict[str, Any]]] | None:
    """Members in file order, ``{meter: member}``, ``{column: {member: value}}``."""
    table = _read_csv_cells(path, sep, problems)
    if table is None:
        return None
    p = table.path
    if "member" not in table.header:
        problems.append(Problem(p, 1, None, "the member file needs a 'member' column; it "
                                f"has {', '.join(table.header)}"))
        return None
    for c in table.header:
        if c not in ("member", "meter") and c not in MEMBER_FILE_COLUMNS:
            problems.append(Problem(p, 1, c, "unknown column; a member file may hold "
                                    f"member, meter, {', '.join(MEMBER_FILE_COLUMNS)}"))
    cols = {c: np.array([r[j] for r in table.rows], dtype=object)
            for j, c in enumerate(table.header)}
    names = [str(v) for v in cols["member"]]
    members: list[str] = []
    for i, m in enumerate(names):
        if not m:
            problems.append(Problem(p, int(table.lines[i]), "member", "empty member name"))
        elif m in members:
            problems.append(Problem(p, int(table.lines[i]), "member",
                                    f"member '{m}' is listed twice"))
        else:
            members.append(m)
    meters: dict[str, str] = {}
    if "meter" in cols:
        for i, (m, meter) in enumerate(zip(names, cols["meter"], strict=True)):
            for one in str(meter).split("+"):  # several meter points of one member
                one = one.strip()
                if one in meters and meters[one] != m:
                    problems.append(Problem(p, int(table.lines[i]), "meter",
                                            f"meter '{one}' is given to {meters[one]} and "
                                            f"{m}"))
                if one:
                    meters[one] = m
    data: dict[str, dict[str, Any]] = {}
    numeric = [c for c in table.header if c in MEMBER_FILE_COLUMNS and c not in _TEXT_COLUMNS]
    dec = _sniff_decimal(np.concatenate([cols[c] for c in numeric]) if numeric
                         else np.array([], dtype=object), table.sep)
    for c in table.header:
        if c not in MEMBER_FILE_COLUMNS:
            continue
        if c in _TEXT_COLUMNS:
            data[c] = dict(zip(names, (str(v) for v in cols[c]), strict=True))
            continue
        vals = _numbers(cols[c], dec)
        for i in np.flatnonzero(~np.isfinite(vals))[:MAX_SHOWN]:
            problems.append(Problem(p, int(table.lines[i]), c,
                                    f"{cols[c][i]!r} is not a number"))
        data[c] = dict(zip(names, vals.tolist(), strict=True))
    return members, meters, data


# ======================================================================================
# the import
# ======================================================================================
def _kind_of_register(text: str, extra: Mapping[str, str]) -> str | None:
    low = text.strip().lower()
    if low in extra:
        return extra[low]
    kinds = {k for k, words in REGISTER_WORDS.items() if any(w in low for w in words)}
    return kinds.pop() if len(kinds) == 1 else None


def read_meter_export(
    path,
    *,
    layout: str = "auto",
    timezone: str | None = None,
    members_file=None,
    prices: Mapping[str, Any] | None = None,
    unit: str = "kWh",
    sep: str | None = None,
    decimal: str | None = None,
    timestamp_format: str | None = None,
    timestamp_label: str = "start",
    time_step: float | str | None = None,
    registers: Mapping[str, str] | None = None,
    columns: Mapping[str, str] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Read a wide or long meter export into a validated single-scenario instance.

    Parameters
    ----------
    path : str or os.PathLike
        The export (CSV; separator and decimal mark sniffed).
    layout : {"auto", "wide", "long"}
        ``auto``: long when a meter column and a value column are found.
    timezone : str, optional
        IANA zone of naive local timestamps (and the billing timezone); default UTC.
        Timestamps with UTC offsets are exact whatever it says.
    members_file : path, optional
        A CSV with a ``member`` column and any of :data:`MEMBER_FILE_COLUMNS`
        (prices in EUR/kWh, ``subscription_fee`` EUR per period, ``role``,
        ``category``, ``installed_power`` kW, ...) and, for long exports, a
        ``meter`` column mapping meter points to members (``EAN1+EAN2`` for several).
        Its order is the member order.
    prices : dict, optional
        ``{name: scalar}`` for names of :data:`MEMBER_FILE_COLUMNS` not in the member
        file (e.g. ``{"price_grid_buy": 0.30}``).
    unit : str, default "kWh"
        Unit of the values when the export has no unit column: kWh, Wh, MWh, or a
        mean power kW, W, MW (times the step length).
    sep, decimal, timestamp_format :
        Override the sniffed separator, decimal mark, timestamp format.
    timestamp_label : {"start", "end"}
        Whether a timestamp starts or ends its interval.
    time_step : float or str, optional
        Step length (hours or e.g. ``"15min"``); default the most common spacing.
    registers : dict, optional
        ``{register text: "consumption" | "production"}`` for registers the built-in
        words (:data:`REGISTER_WORDS`) do not recognise.
    columns : dict, optional
        ``{role: column}`` naming columns whose header is not recognised; roles
        ``timestamp``, ``date``, ``time``, ``meter``, ``register``, ``value``, ``unit``.
    attrs : dict, optional
        Instance attributes (``billing_period``, ...).

    Raises
    ------
    ImportProblems
        Every problem found (file, line, column each), at once.
    """
    problems: list[Problem] = []
    path = Path(path)
    columns = dict(columns or {})
    extra_reg = {str(k).strip().lower(): str(v) for k, v in (registers or {}).items()}
    for k, v in extra_reg.items():
        if v not in REGISTER_WORDS:
            problems.append(Problem(str(path), None, None, f"register {k!r} is mapped to "
                                    f"{v!r}; use consumption or production"))
    table = _read_csv_cells(path, sep, problems)
    member_info = None
    if members_file is not None:
        member_info = _member_file(Path(members_file), None, problems)
    if table is None:
        raise ImportProblems(problems)
    p, header = table.path, table.header
    role_col = {r: _find(header, r, columns.get(r), p, problems) for r in _NAMES}
    if layout not in ("auto", "wide", "long"):
        problems.append(Problem(p, None, None, f"layout {layout!r}; use auto, wide or long"))
        raise ImportProblems(problems)
    if layout == "auto":
        layout = "long" if role_col["meter"] and role_col["value"] else "wide"
    cells = {c: np.array([r[j] for r in table.rows], dtype=object)
             for j, c in enumerate(header)}
    n_rows = len(table.rows)
    # --- timestamps of every row ------------------------------------------------------
    if role_col["timestamp"]:
        ts_cols = [role_col["timestamp"]]
    elif role_col["date"] and role_col["time"]:
        ts_cols = [role_col["date"], role_col["time"]]
    elif role_col["date"]:
        ts_cols = [role_col["date"]]
    else:
        ts_cols = [header[0]]
    text = cells[ts_cols[0]].astype(str)
    if len(ts_cols) == 2:
        text = np.char.add(np.char.add(text.astype(str), " "), cells[ts_cols[1]].astype(str))
    row_times, bad_t = _parse_times(text, timestamp_format)
    ts_label = " + ".join(ts_cols)
    for i in np.flatnonzero(bad_t)[:MAX_SHOWN]:
        problems.append(Problem(p, int(table.lines[i]), ts_label,
                                f"cannot read the date/time {text[i]!r} (ISO 8601 "
                                "2023-03-26 01:45, or day first 26/03/2023 01:45; "
                                "--timestamp-format for others)"))
    if bad_t.sum() > MAX_SHOWN:
        problems.append(Problem(p, None, ts_label, f"{int(bad_t.sum())} unreadable "
                                "date/times in all"))
    # --- records: member, kind, row, value cell, column --------------------------------
    meters_map = member_info[1] if member_info else {}
    rec_member: list[np.ndarray] = []
    rec_kind: list[np.ndarray] = []
    rec_row: list[np.ndarray] = []
    rec_value: list[np.ndarray] = []
    rec_col: list[np.ndarray] = []
    rec_unit: list[np.ndarray] = []
    rows = np.arange(n_rows)
    if layout == "wide":
        skip = set(ts_cols) | set(PRICE_VARIABLES)
        for c in header:
            if c in skip:
                continue
            low = c.lower()
            kind = next((k for k in ("consumption", "production") if low.endswith("_" + k)
                         and len(c) > len(k) + 1), None)
            if kind is None:
                problems.append(Problem(p, 1, c, "a wide export names data columns "
                                        "'<member>_consumption' or '<member>_production'"))
                continue
            member = c[: -len(kind) - 1]
            rec_member.append(np.full(n_rows, member, dtype=object))
            rec_kind.append(np.full(n_rows, kind, dtype=object))
            rec_row.append(rows)
            rec_value.append(cells[c])
            rec_col.append(np.full(n_rows, c, dtype=object))
            rec_unit.append(np.full(n_rows, unit, dtype=object))
    else:
        for role in ("meter", "value"):
            if not role_col[role]:
                problems.append(Problem(p, 1, None, f"a long export needs a {role} column "
                                        f"(e.g. {', '.join(_NAMES[role][:4])}); pass "
                                        f"--column {role}=NAME"))
        if not role_col["meter"] or not role_col["value"]:
            raise ImportProblems(problems)
        meter = cells[role_col["meter"]].astype(str)
        l_member = np.array([meters_map.get(m, m) for m in meter], dtype=object)
        if meters_map:
            unknown = sorted(set(meter) - set(meters_map))
            for m in unknown[:MAX_SHOWN]:
                i = int(np.flatnonzero(meter == m)[0])
                problems.append(Problem(p, int(table.lines[i]), role_col["meter"],
                                        f"meter '{m}' is in no row of the member file's "
                                        "'meter' column"))
        if role_col["register"]:
            reg = cells[role_col["register"]].astype(str)
            uniq = {str(r): _kind_of_register(str(r), extra_reg) for r in set(reg.tolist())}
            l_kind = np.array([uniq[r] for r in reg], dtype=object)
            for r, rk in sorted(uniq.items()):
                if rk is None:
                    i = int(np.flatnonzero(reg == r)[0])
                    problems.append(Problem(p, int(table.lines[i]), role_col["register"],
                                            f"register {r!r} is neither consumption "
                                            f"({', '.join(REGISTER_WORDS['consumption'][:4])}"
                                            f", ...) nor production (injection, ...); pass "
                                            f"--register '{r}=consumption' (or production)"))
        else:
            l_kind = np.full(n_rows, "consumption", dtype=object)
        ok_reg = np.array([k is not None for k in l_kind])
        rec_member.append(l_member[ok_reg])
        rec_kind.append(l_kind[ok_reg])
        rec_row.append(rows[ok_reg])
        rec_value.append(cells[role_col["value"]][ok_reg])
        rec_col.append(np.full(int(ok_reg.sum()), role_col["value"], dtype=object))
        rec_unit.append(cells[role_col["unit"]][ok_reg] if role_col["unit"]
                        else np.full(int(ok_reg.sum()), unit, dtype=object))
    if not rec_member:
        problems.append(Problem(p, 1, None, "no energy column or row found"))
        raise ImportProblems(problems)
    r_member = np.concatenate(rec_member).astype(str)
    r_kind = np.concatenate(rec_kind).astype(str)
    r_row = np.concatenate(rec_row)
    r_col = np.concatenate(rec_col).astype(str)
    r_unit = np.char.lower(np.concatenate(rec_unit).astype(str))
    r_text = np.concatenate(rec_value)
    lines = table.lines[r_row]
    # --- values --------------------------------------------------------------------------
    dec = decimal or _sniff_decimal(r_text, table.sep)
    values = _numbers(r_text, dec)
    bad_v = ~np.isfinite(values)
    for i in np.flatnonzero(bad_v)[:MAX_SHOWN]:
        problems.append(Problem(p, int(lines[i]), str(r_col[i]),
                                f"{r_text[i]!r} is not a number" if str(r_text[i]).strip()
                                else "the value is empty"))
    neg = values < 0
    for i in np.flatnonzero(neg)[:MAX_SHOWN]:
        problems.append(Problem(p, int(lines[i]), str(r_col[i]),
                                f"negative energy {values[i]:g}; give {r_kind[i]} as a "
                                "positive energy (injections in their own register/column)"))
    for u in sorted(set(r_unit) - set(ENERGY_FACTORS) - set(POWER_FACTORS)):
        i = int(np.flatnonzero(r_unit == u)[0])
        problems.append(Problem(p, int(lines[i]), role_col["unit"] or "unit",
                                f"unknown unit {u!r}; use kWh, Wh, MWh (energy per step) or "
                                "kW, W, MW (mean power)"))
    # --- time: localise, step, duplicates, gaps ------------------------------------------
    times = np.asarray(row_times.values, dtype="datetime64[ns]")[r_row]
    good_t = ~bad_t[r_row]
    series = np.char.add(np.char.add(r_member, "\x1f"), r_kind)
    s_reg = (cells[role_col["register"]].astype(str)[r_row]
             if layout == "long" and role_col["register"] else r_kind)
    key = np.char.add(np.char.add(series, "\x1f"), s_reg.astype(str))
    utc_given = bool(pd.Series(text, dtype=object).astype(str).str.contains(_OFFSET_RE).all())
    if timezone is not None and not utc_given and good_t.any():
        loc = _localize(pd.DatetimeIndex(times[good_t]), key[good_t], timezone, p,
                        lines[good_t], ts_label, problems)
        times = times.copy()
        times[good_t] = loc
        good_t &= ~np.isnat(times)
    ok = good_t & ~bad_v
    step_ns = _step_ns(time_step, times[good_t], p, problems)
    if step_ns is not None and timestamp_label == "end":
        times = times - np.timedelta64(step_ns, "ns")
    elif timestamp_label not in ("start", "end"):
        problems.append(Problem(p, None, None, f"timestamp_label {timestamp_label!r}; use "
                                "start or end"))
    df = pd.DataFrame({"key": key[ok], "t": times[ok], "line": lines[ok]})
    dup = df.duplicated(["key", "t"], keep="first").to_numpy()
    if dup.any():
        idx = np.flatnonzero(dup)
        hint = dst_hint(df["t"].to_numpy()[idx]) if timezone is None and not utc_given else ""
        for j in idx[:MAX_SHOWN]:
            first = int(df.loc[(df["key"] == df["key"].iat[j]) & (df["t"] == df["t"].iat[j]),
                               "line"].iat[0])
            member_, kind_, reg_ = str(df["key"].iat[j]).split("\x1f")
            problems.append(Problem(p, int(df["line"].iat[j]), ts_label,
                                    f"{member_} {kind_}"
                                    + (f" (register {reg_})" if reg_ != kind_ else "")
                                    + f" at {pd.Timestamp(df['t'].iat[j])} is given again "
                                    f"(first at line {first})" + hint))
    if step_ns is not None and ok.any():
        grid = np.arange(times[ok].min(), times[ok].max() + np.timedelta64(1, "ns"),
                         np.timedelta64(step_ns, "ns"))
        off = ((times[ok] - times[ok].min()).astype("i8") % step_ns) != 0
        for j in np.flatnonzero(off)[:MAX_SHOWN]:
            problems.append(Problem(p, int(lines[ok][j]), ts_label,
                                    f"{pd.Timestamp(times[ok][j])} is off the "
                                    f"{step_ns / NS_PER_HOUR * 60:g}-minute grid"))
        # a row with a bad value is reported as such, not as a missing step too
        present = pd.DataFrame({"key": key[good_t], "t": times[good_t],
                                "line": lines[good_t]}).drop_duplicates(["key", "t"])
        for k_, grp in present.groupby("key", sort=False):
            missing = np.setdiff1d(grid, grp["t"].to_numpy())
            if missing.size:
                member_, kind_, reg_ = str(k_).split("\x1f")
                before = grp.loc[grp["t"] < missing[0], "line"]  # the row before the gap
                problems.append(Problem(
                    p, int(before.iat[-1]) if len(before) else None, ts_label,
                    f"{member_} {kind_}" + (f" (register {reg_})" if reg_ != kind_ else "")
                    + f" has no value for {missing.size} step(s), first "
                    f"{pd.Timestamp(missing[0])} UTC (after this line)" + (
                        "" if timezone else " (times read as UTC; pass --timezone for a "
                        "local-time export)")))
    # --- members and their data ---------------------------------------------------------
    found = list(dict.fromkeys(r_member.tolist()))
    if member_info is not None:
        order, _, mdata = member_info
        for m in found:
            if m not in order:
                i = int(np.flatnonzero(r_member == m)[0])
                problems.append(Problem(p, int(lines[i]), str(r_col[i]),
                                        f"member '{m}' is not in the member file "
                                        f"{members_file}"))
        for m in order:
            if m not in found:
                problems.append(Problem(str(members_file), None, "member",
                                        f"member '{m}' has no data in {p}"))
        members = [m for m in order if m in found] + [m for m in found if m not in order]
    else:
        mdata = {}
        members = found
    kwargs: dict[str, Any] = {k: v for k, v in mdata.items()}
    # per-step price columns of a wide export (EUR/kWh, one value per row)
    step_prices: dict[str, np.ndarray] = {}
    if layout == "wide":
        for name in PRICE_VARIABLES:
            if name not in header:
                continue
            vals = _numbers(cells[name], dec)
            for i in np.flatnonzero(~np.isfinite(vals))[:MAX_SHOWN]:
                problems.append(Problem(p, int(table.lines[i]), name,
                                        f"{cells[name][i]!r} is not a price (EUR/kWh)"))
            if name in kwargs:
                problems.append(Problem(p, 1, name, "given both as a column of the export "
                                        "and in the member file or options; keep one"))
            step_prices[name] = vals
            kwargs[name] = None  # placeholder: set on the time axis below
    for name, value in (prices or {}).items():
        if name not in MEMBER_FILE_COLUMNS:
            problems.append(Problem(p, None, None, f"unknown member data {name!r}; known: "
                                    f"{', '.join(MEMBER_FILE_COLUMNS)}"))
        elif name in kwargs:
            problems.append(Problem(str(members_file), None, name, "given both in the "
                                    "member file and as an option; keep one"))
        else:
            kwargs[name] = value
    for name in PRICE_VARIABLES:
        if name not in kwargs:
            problems.append(Problem(p, None, None, f"{name} is missing "
                                    f"({VARIABLES[name].description}, EUR/kWh): give it as "
                                    f"a column of the member file or as --{name.replace('_', '-')}"
                                    " VALUE"))
    if problems:
        raise ImportProblems(problems)
    # --- arrays -----------------------------------------------------------------------------
    assert step_ns is not None
    t_axis = np.unique(times[ok])
    hours = step_ns / NS_PER_HOUR
    mult = {u: (1.0 if u in _DIVISORS else ENERGY_FACTORS.get(u, POWER_FACTORS.get(u, 1.0)))
            * (hours if u in POWER_FACTORS else 1.0) for u in set(r_unit)}
    factor = np.array([mult[u] for u in r_unit])
    divisor = np.array([_DIVISORS.get(u, 1.0) for u in r_unit])
    energy = {k: np.zeros((t_axis.size, len(members))) for k in ("consumption", "production")}
    ti = np.searchsorted(t_axis, times)
    mi = {m: j for j, m in enumerate(members)}
    cols_m = np.array([mi[m] for m in r_member])
    for k in energy:
        sel = ok & (r_kind == k)
        np.add.at(energy[k], (ti[sel], cols_m[sel]), values[sel] * factor[sel] / divisor[sel])
    for name, vals in step_prices.items():  # rows -> the time axis (first record per time)
        per = pd.Series(vals[r_row][ok], index=times[ok])
        per = per[~per.index.duplicated(keep="first")].reindex(t_axis)
        kwargs[name] = xr.DataArray(per.to_numpy(), dims=("time",), coords={"time": t_axis})
    attrs = dict(attrs or {})
    if timezone is not None:
        attrs.setdefault("billing_timezone", timezone)
    try:
        return make_instance(energy["consumption"], energy["production"], time=t_axis,
                             members=members, time_step_hours=step_ns / NS_PER_HOUR,
                             attrs=attrs, **kwargs)
    except InstanceError as exc:
        raise ImportProblems([Problem(str(members_file or p), None, exc.variable,
                                      str(exc))]) from None


def _step_ns(time_step, times: np.ndarray, p: str, problems: list[Problem]) -> int | None:
    if time_step is not None:
        try:
            hours = float(time_step) if isinstance(time_step, int | float) else \
                pd.Timedelta(time_step).total_seconds() / 3600.0
        except (TypeError, ValueError):
            problems.append(Problem(p, None, None, f"time step {time_step!r} is neither "
                                    "hours nor a duration such as '15min'"))
            return None
        if not hours > 0:
            problems.append(Problem(p, None, None, f"time step must be > 0, got {time_step!r}"))
            return None
        return int(round(hours * NS_PER_HOUR))
    u = np.unique(times)
    if u.size < 2:
        problems.append(Problem(p, None, None, "a single time step cannot tell the step "
                                "length; pass --time-step (e.g. 15min)"))
        return None
    d = np.diff(u.astype("i8"))
    vals, counts = np.unique(d, return_counts=True)
    return int(vals[np.argmax(counts)])
