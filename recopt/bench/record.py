"""The one benchmark recording helper: machine record, JSON-lines results, CPU and memory.

Every script in ``benchmarks/`` and every job of a suite (:mod:`recopt.bench.job`)
describes the machine with :func:`machine_info` and writes its records through
:class:`Recorder`, so that all results files carry the same machine description::

    from recopt.bench.record import Recorder, machine_info, results_path

    rec = Recorder(results_path(out_dir, "lp"))        # out_dir/lp_<UTC stamp>.jsonl
    rec.add({"kind": "machine", **machine_info(), "args": vars(args)})
    rec.timing("build", [1.2, 1.1, 1.3])                # median, min, max, 1-min load

:class:`CpuAccount` separates the CPU seconds of this process tree from those that
other processes took meanwhile (a run on a shared machine can then be told apart);
:class:`PeakMemory` samples the summed RSS of this process and its descendants.
Nothing here decides what is measured: each script documents that itself.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

#: Python packages whose versions go into every machine record (absent ones are left
#: out). ``highspy`` and ``gurobipy`` are the solvers' versions.
PACKAGES = ("recopt", "pyomo", "highspy", "gurobipy", "numpy", "scipy", "pandas", "xarray",
            "networkx", "dask", "distributed", "pvlib", "demandlib")

GIB = 1024**3


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each of ``packages`` (those not installed are left out)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def recopt_commit() -> dict[str, Any]:
    """The git commit of the recopt source tree in use, and whether it has local changes.

    ``{"commit": None, "dirty": None}`` when recopt is not imported from a git checkout
    (an installed wheel) or git is not available.
    """
    root = Path(__file__).resolve().parents[2]
    none: dict[str, Any] = {"commit": None, "dirty": None}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root:
        return none
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def machine_info() -> dict[str, Any]:
    """Host, CPU model, cores, memory, load, platform, Python, package and solver
    versions, and the recopt git commit, as one JSON-ready dict."""
    try:
        load = list(os.getloadavg())
    except OSError:  # pragma: no cover - platform without a load average
        load = None
    mem = psutil.virtual_memory().total
    git = recopt_commit()
    return {
        "host": platform.node(),
        "utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "memory_total_bytes": mem,
        "ram_gib": round(mem / GIB, 2),
        "loadavg": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "recopt_commit": git["commit"],
        "recopt_dirty": git["dirty"],
        "argv": list(sys.argv),
    }


def describe(machine: dict[str, Any]) -> str:
    """One Markdown line describing a :func:`machine_info` record (for report headers)."""
    pk = machine.get("packages", {})
    load = machine.get("loadavg")
    commit = machine.get("recopt_commit")
    code = "recopt commit unknown" if not commit else (
        f"recopt {commit[:10]}{' + local changes' if machine.get('recopt_dirty') else ''}")
    return (f"Machine: {machine.get('cores')} logical CPUs ({machine.get('cpu')}), "
            f"{machine.get('ram_gib')} GiB, {machine.get('platform')}; Python "
            f"{machine.get('python')}, Pyomo {pk.get('pyomo', '-')}, highspy "
            f"{pk.get('highspy', '-')}; {code}; {machine.get('utc')}"
            + (f"; load average {' '.join(f'{x:.2f}' for x in load)}" if load else "") + ".")


def utc_stamp() -> str:
    """The current UTC time as ``YYYYmmddTHHMMSSZ`` (the results files' suffix)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def results_path(out_dir: Path | str, prefix: str, suffix: str = ".jsonl") -> Path:
    """``out_dir/<prefix>_<UTC stamp><suffix>`` (the directory is created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{prefix}_{utc_stamp()}{suffix}"


def loadavg_1min() -> float:
    """The 1-min load average (0.0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return 0.0


def log(msg: str) -> None:
    """A time-stamped progress line on stderr."""
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _json_default(obj):
    if hasattr(obj, "item"):  # NumPy scalars
        return obj.item()
    return str(obj)


class Recorder:
    """Writes JSON records, one per line, to ``path`` (flushed at once) and keeps them.

    A context manager (closes the file on exit).
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.records: list[dict] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("w", encoding="utf-8")

    def add(self, record: dict) -> dict:
        """Append ``record`` to the file and to :attr:`records`; return it."""
        self.records.append(record)
        self._fh.write(json.dumps(record, default=_json_default) + "\n")
        self._fh.flush()
        return record

    def timing(self, step: str, times: list[float], *, digits: int = 2, **extra) -> dict:
        """Add and print one timed step: median, min and max of ``times`` (s), 1-min load."""
        rec = self.add({"step": step, "median_s": statistics.median(times),
                        "min_s": min(times), "max_s": max(times),
                        "loadavg_1min": loadavg_1min(), **extra})
        print(f"  {step:<24} {rec['median_s']:8.{digits}f} s  "
              f"(load {rec['loadavg_1min']:.2f})", flush=True)
        return rec

    def timings(self) -> list[dict]:
        """The records added by :meth:`timing`, in order."""
        return [r for r in self.records if "step" in r and "median_s" in r]

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CpuAccount:
    """CPU seconds of this process tree and of the rest of the machine over a block.

    ``own``: this process and its reaped children (``os.times``); ``busy``: the whole
    machine (``psutil.cpu_times``); ``foreign = busy - own``: what other processes took.
    """

    def __enter__(self) -> CpuAccount:
        self._own0 = self._own()
        self._busy0 = self._busy()
        self.loadavg = loadavg_1min()
        return self

    def __exit__(self, *exc) -> None:
        self.own = self._own() - self._own0
        self.busy = self._busy() - self._busy0
        self.foreign = max(0.0, self.busy - self.own)

    @staticmethod
    def _own() -> float:
        t = os.times()  # children: the reaped worker processes
        return t.user + t.system + t.children_user + t.children_system

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return sum(getattr(t, f) for f in ("user", "nice", "system", "irq", "softirq",
                                           "steal") if hasattr(t, f))

    def as_dict(self) -> dict:
        return {"loadavg_1min_before": self.loadavg, "cpu_seconds_tree": self.own,
                "cpu_seconds_machine": self.busy, "cpu_seconds_foreign": self.foreign}


def children_rss(proc: psutil.Process) -> int:
    """Resident bytes of the descendants of ``proc`` (those that end meanwhile count 0)."""
    try:
        children = proc.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for child in children:
        try:
            total += child.memory_info().rss
        except psutil.Error:  # ended between the listing and the read
            pass
    return total


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of a process and its descendants (0 when it is gone)."""
    try:
        own = proc.memory_info().rss
    except psutil.Error:
        return 0
    return own + children_rss(proc)


class PeakMemory:
    """Peak of the summed RSS of this process and all its descendants (bytes).

    Use as a context manager; a daemon thread samples every ``interval`` s. ``peak`` is
    the maximum of the sum, ``peak_self`` / ``peak_children`` the maxima of each part
    (not necessarily at the same instant). Pages shared copy-on-write with forked
    workers count in every process: the sum is an upper bound of the memory used.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.proc = psutil.Process()
        self.peak = self.peak_self = self.peak_children = 0
        self.baseline = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        own = self.proc.memory_info().rss
        kids = children_rss(self.proc)
        self.peak_self = max(self.peak_self, own)
        self.peak_children = max(self.peak_children, kids)
        self.peak = max(self.peak, own + kids)
        self.samples += 1
        return own + kids

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.baseline = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def as_dict(self) -> dict:
        return {"peak_rss_tree_bytes": self.peak, "peak_rss_self_bytes": self.peak_self,
                "peak_rss_children_bytes": self.peak_children,
                "rss_before_bytes": self.baseline, "memory_samples": self.samples}
