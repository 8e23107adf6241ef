"""The result store: one JSON record per job, written atomically.

Layout of a store directory::

    STORE/
      records/<job_id>.json     one per finished job (any status, including timeout)
      instances/<hash>.nc       every instance of the suite, as run (generated ones too)
      instances/index.json      generator spec -> instance hash (no regeneration on resume)
      suites/<name>.json        the suite as expanded (models, options, compare pairs)
      claims/<job_id>.claim     the runner (host, pid) running a job now

A record is written to ``<job_id>.json.tmp-<host>-<pid>-<random>`` then renamed with
:func:`os.replace`, so a reader (or a runner killed at any moment) sees either no
record or a whole one. A job with a whole record (:func:`validate_record`: a JSON
object with its ``job_id``, a ``status`` and a ``record_version``) is *finished*:
rerunning the suite skips it (``--force`` reruns); a file that is not a whole record
(truncated by a full disk, copied half) is reported and its job run again.

Several runners may share a store: a runner claims each job before it submits it
(``claims/<job_id>.claim``, made under a store-wide ``flock``) and skips the jobs a
live runner holds; a dead runner's claims are taken over. A starting runner removes
only the temporary files of writers that are gone.

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

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import socket
import time
import uuid
from pathlib import Path

from recopt.bench.suite import SuiteError, check_suite_name

RECORD_VERSION = 1
#: Temporary files of another host (or in a foreign naming) older than this are stale.
STALE_TMP_SECONDS = 24 * 3600.0

log = logging.getLogger("recopt.bench")
HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40] or "host"
_TMP_RE = re.compile(r"\.tmp-([A-Za-z0-9_.]+)-(\d+)-[0-9a-f]+$")


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


def tmp_name(path: Path) -> Path:
    """A temporary name next to ``path``, unique to this host, process and call:
    ``<name>.tmp-<host>-<pid>-<random>`` (two writers never share one; :meth:`Store.clean`
    reads the owner back and leaves a live owner's files alone)."""
    return path.with_name(f"{path.name}.tmp-{HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}")


def write_json_atomic(path, data) -> None:
    """Write JSON to ``path`` through a uniquely named temporary file and
    :func:`os.replace` (a reader sees no file or a whole one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    try:
        with open(tmp, "w") as fh:
            json.dump(_clean(data), fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _tmp_owner_alive(p: Path) -> bool:
    """Whether the process that writes temporary file ``p`` may still be writing it."""
    m = _TMP_RE.search(p.name)
    if m is None:  # not our naming: leave it unless it is old
        return time.time() - p.stat().st_mtime < STALE_TMP_SECONDS
    host, pid = m.group(1), int(m.group(2))
    if host != HOST:  # another machine's runner on a shared store: age decides
        return time.time() - p.stat().st_mtime < STALE_TMP_SECONDS
    return _pid_alive(pid)


def validate_record(data, job_id: str | None = None) -> str | None:
    """Why ``data`` (a parsed record file) is not a whole record, or None if it is.

    A record is a JSON object with a string ``job_id`` (the file's name), a string
    ``status`` and a ``record_version``; anything else (a truncated file, an
    interrupted copy, a hand-edited file) is not a record and its job is unfinished.
    """
    if not isinstance(data, dict):
        return f"not a JSON object ({type(data).__name__})"
    if not isinstance(data.get("job_id"), str):
        return "no job_id"
    if job_id is not None and data["job_id"] != job_id:
        return f"job_id {data['job_id']!r} does not match its file name {job_id!r}"
    if not isinstance(data.get("status"), str) or not data["status"]:
        return "no status"
    if "record_version" not in data:
        return "no record_version"
    return None


class Store:
    """A result store directory (created on first use)."""

    def __init__(self, root):
        self.root = Path(root)
        self.records_dir = self.root / "records"
        self.instances_dir = self.root / "instances"
        self.claims_dir = self.root / "claims"

    # records ------------------------------------------------------------------------
    def record_path(self, job_id: str) -> Path:
        return self.records_dir / f"{job_id}.json"

    def has(self, job_id: str) -> bool:
        """Whether the job has a whole record (:func:`validate_record`)."""
        return self.read_valid(job_id) is not None

    def read_valid(self, job_id: str) -> dict | None:
        """The job's record, or None when it has none or its file is not a whole record
        (then the job is unfinished and is run again; a warning names the file)."""
        path = self.record_path(job_id)
        try:
            with open(path) as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError
            log.warning("record %s is unreadable (%s): its job will be run again", path,
                        exc)
            return None
        why = validate_record(data, job_id)
        if why is not None:
            log.warning("record %s is not a whole record (%s): its job will be run again",
                        path, why)
            return None
        return data

    def finished_ids(self) -> set[str]:
        """Ids of the jobs with a whole record (a corrupt file does not count)."""
        if not self.records_dir.is_dir():
            return set()
        return {p.stem for p in self.records_dir.glob("*.json")
                if self.read_valid(p.stem) is not None}

    def bad_records(self) -> list[Path]:
        """Record files that are not whole records (their jobs are unfinished)."""
        if not self.records_dir.is_dir():
            return []
        return [p for p in sorted(self.records_dir.glob("*.json"))
                if self.read_valid(p.stem) is None]

    def write(self, record: dict) -> Path:
        record = {**record, "record_version": RECORD_VERSION}
        path = self.record_path(record["job_id"])
        write_json_atomic(path, record)
        return path

    def read(self, job_id: str) -> dict:
        """The job's whole record; a SuiteError naming the file when it has none."""
        rec = self.read_valid(job_id)
        if rec is None:
            raise SuiteError(f"no whole record for job {job_id} in {self.records_dir}")
        return rec

    def records(self) -> list[dict]:
        """Every whole record (sorted by job id). A file that is not one (truncated,
        foreign) is skipped with a warning naming it (see :meth:`bad_records`): its job
        is unfinished, and the next run redoes it."""
        if not self.records_dir.is_dir():
            return []
        out = (self.read_valid(p.stem) for p in sorted(self.records_dir.glob("*.json")))
        return [r for r in out if r is not None]

    def leftover_tmp(self) -> list[Path]:
        """Temporary files of interrupted writes (harmless; removed by :meth:`clean`)."""
        out: list[Path] = []
        for d in (self.records_dir, self.instances_dir, self.root / "suites"):
            if d.is_dir():
                out.extend(d.glob("*.tmp-*"))
        return sorted(out)

    def clean(self) -> None:
        """Remove temporary files whose writer is gone (its pid on this host is dead, or
        the file is a day old); a live runner's files are left alone."""
        for p in self.leftover_tmp():
            try:
                if not _tmp_owner_alive(p):
                    p.unlink(missing_ok=True)
            except FileNotFoundError:  # its owner renamed it meanwhile
                pass

    # claims: one runner at a time owns a job --------------------------------------
    @contextlib.contextmanager
    def _claims_lock(self):
        self.claims_dir.mkdir(parents=True, exist_ok=True)
        with open(self.claims_dir / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def claim(self, job_id: str) -> bool:
        """Claim a job for this process; False when a live runner holds it already.

        A claim is ``claims/<job_id>.claim`` naming the owner (host, pid); it is made
        under a store-wide ``flock``, so two runners never both claim a job. A claim
        whose owner is dead (same host, pid gone) is taken over; one from another host
        is honoured for :data:`STALE_TMP_SECONDS`.
        """
        path = self.claims_dir / f"{job_id}.claim"
        with self._claims_lock():
            if path.is_file():
                try:
                    owner = json.loads(path.read_text())
                    host, pid = str(owner["host"]), int(owner["pid"])
                except (OSError, ValueError, KeyError, TypeError):
                    host, pid = "", -1
                mine = host == HOST and pid == os.getpid()
                if mine:
                    return True
                stale = (not _pid_alive(pid)) if host == HOST else \
                    time.time() - path.stat().st_mtime > STALE_TMP_SECONDS
                if not stale:
                    return False
            write_json_atomic(path, {"host": HOST, "pid": os.getpid(),
                                     "claimed_at": time.time()})
            return True

    def release(self, job_id: str) -> None:
        """Drop this process's claim of a job (another's is left alone)."""
        path = self.claims_dir / f"{job_id}.claim"
        with self._claims_lock():
            try:
                owner = json.loads(path.read_text())
            except (OSError, ValueError):
                return
            if owner.get("host") == HOST and owner.get("pid") == os.getpid():
                path.unlink(missing_ok=True)

    # instances and suites ----------------------------------------------------------
    def instance_path(self, instance_hash: str) -> Path:
        return self.instances_dir / f"{instance_hash[:32]}.nc"

    def index(self) -> dict:
        """Generator spec -> instance (a cache: an unreadable index is rebuilt)."""
        p = self.instances_dir / "index.json"
        if not p.is_file():
            return {}
        try:
            with open(p) as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            log.warning("instance index %s is unreadable (%s): instances are regenerated",
                        p, exc)
            return {}
        return data if isinstance(data, dict) else {}

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
            try:
                with open(p) as fh:
                    data = json.load(fh)
            except (OSError, ValueError) as exc:  # a truncated file: reported, skipped
                log.warning("suite file %s is unreadable (%s): skipped", p, exc)
                continue
            if isinstance(data, dict):
                out.append(data)
        return out
