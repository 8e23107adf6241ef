"""The result store: one JSON record per job, written atomically.

Layout of a store directory::

    STORE/
      records/<job_id>.json     one per finished job (any status, including timeout)
      instances/<hash>.nc       every instance of the suite, as run (generated ones too)
      instances/index.json      generator spec -> instance hash (no regeneration on resume)
      suites/<name>.json        the suite as expanded (models, options, compare pairs)

A record is written to ``<job_id>.json.tmp-<pid>`` then renamed with :func:`os.replace`,
so a reader (or a runner killed at any moment) sees either no record or a whole one.
A job with a record is *finished*: rerunning the suite skips it (``--force`` reruns).

Record fields: ``job_id``, ``suite``, ``instance_hash``, ``instance_label``,
``instance`` (members, steps, scenarios, step_hours, horizon_days, generator params),
``model``, ``model_label``, ``solver``, ``solver_version``, ``options``,
``solver_options``, ``time_limit``, ``mip_gap``, ``threads``, ``job_workers``,
``timeout``, ``repetition``, ``status`` (a :class:`~recopt.solvers.status.Status` value,
or ``"timeout"`` when the job was killed at its timeout, ``"crashed"`` when its process
died), ``message``, ``objective``, ``bound``, ``gap``, ``times`` (``build``,
``compile``, ``solve``, ``extract``, ``wall`` as the Result gives them, in s, and
``job`` = the job's whole process lifetime including imports and loading),
``sizes`` (variables, constraints, integers), ``peak_rss_mib`` (peak resident memory
of the job's process tree, MiB), ``result_attrs`` (every attr of the Result),
``machine`` (:func:`recopt.bench.record.machine_info`: host, CPU, cores, memory, load,
package and solver versions, the recopt commit),
``started_at``/``finished_at`` (UTC ISO), ``record_version``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from recopt.bench.suite import SuiteError, check_suite_name

RECORD_VERSION = 1


def _clean(value):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def write_json_atomic(path, data) -> None:
    """Write JSON to ``path`` through a temporary file and :func:`os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(_clean(data), fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Store:
    """A result store directory (created on first use)."""

    def __init__(self, root):
        self.root = Path(root)
        self.records_dir = self.root / "records"
        self.instances_dir = self.root / "instances"

    # records ------------------------------------------------------------------------
    def record_path(self, job_id: str) -> Path:
        return self.records_dir / f"{job_id}.json"

    def has(self, job_id: str) -> bool:
        return self.record_path(job_id).is_file()

    def finished_ids(self) -> set[str]:
        if not self.records_dir.is_dir():
            return set()
        return {p.stem for p in self.records_dir.glob("*.json")}

    def write(self, record: dict) -> Path:
        record = {**record, "record_version": RECORD_VERSION}
        path = self.record_path(record["job_id"])
        write_json_atomic(path, record)
        return path

    def read(self, job_id: str) -> dict:
        with open(self.record_path(job_id)) as fh:
            return json.load(fh)

    def records(self) -> list[dict]:
        """Every record (sorted by job id); unreadable files are reported, not skipped."""
        out: list[dict] = []
        if not self.records_dir.is_dir():
            return out
        for p in sorted(self.records_dir.glob("*.json")):
            try:
                with open(p) as fh:
                    out.append(json.load(fh))
            except json.JSONDecodeError as exc:
                raise SuiteError(f"corrupt record {p}: {exc}") from exc
        return out

    def leftover_tmp(self) -> list[Path]:
        """Temporary files of interrupted writes (harmless; removed by :meth:`clean`)."""
        if not self.records_dir.is_dir():
            return []
        return sorted(self.records_dir.glob("*.tmp-*"))

    def clean(self) -> None:
        for p in self.leftover_tmp():
            p.unlink(missing_ok=True)

    # instances and suites ----------------------------------------------------------
    def instance_path(self, instance_hash: str) -> Path:
        return self.instances_dir / f"{instance_hash[:32]}.nc"

    def index(self) -> dict:
        p = self.instances_dir / "index.json"
        if not p.is_file():
            return {}
        with open(p) as fh:
            return json.load(fh)

    def write_index(self, index: dict) -> None:
        write_json_atomic(self.instances_dir / "index.json", index)

    def write_suite(self, suite_json: dict) -> None:
        name = check_suite_name(suite_json["name"])  # joined into a path: never ../ or /
        write_json_atomic(self.root / "suites" / f"{name}.json", suite_json)

    def suites(self) -> list[dict]:
        d = self.root / "suites"
        if not d.is_dir():
            return []
        out = []
        for p in sorted(d.glob("*.json")):
            with open(p) as fh:
                out.append(json.load(fh))
        return out
