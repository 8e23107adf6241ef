"""The one benchmark recording helper (recopt.bench.record) and the scripts that use it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from recopt.bench.record import (
    CpuAccount,
    PeakMemory,
    Recorder,
    describe,
    machine_info,
    results_path,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


def test_machine_info_describes_the_machine_and_the_code():
    m = machine_info()
    json.dumps(m)  # JSON-ready as it is
    assert m["cores"] == os.cpu_count() and m["cores_physical"] >= 1
    assert m["memory_total_bytes"] > 0 and m["ram_gib"] > 0
    assert len(m["loadavg"]) == 3
    assert m["cpu"] and m["python"] and m["platform"]
    for pkg in ("recopt", "pyomo", "highspy", "numpy", "xarray"):
        assert m["packages"][pkg], pkg
    head = None
    if shutil.which("git"):
        done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=False)
        head = done.stdout.strip() if done.returncode == 0 else None
    assert m["recopt_commit"] == head  # None outside a git checkout
    if head is not None:
        assert re.fullmatch("[0-9a-f]{40}", head) and isinstance(m["recopt_dirty"], bool)
    line = describe(m)
    assert line.startswith(f"Machine: {os.cpu_count()} logical CPUs") and m["cpu"] in line


def test_recorder_writes_flushed_json_lines(tmp_path):
    path = results_path(tmp_path / "out", "demo")
    assert re.fullmatch(r"demo_\d{8}T\d{6}Z\.jsonl", path.name) and path.parent.is_dir()
    with Recorder(path) as rec:
        rec.add({"kind": "machine", "x": np.float64(1.5), "n": np.int64(3)})
        rec.timing("step", [3.0, 1.0, 2.0], extra=1)
        lines = path.read_text().splitlines()  # readable before the file is closed
        assert len(lines) == 2
    first, second = (json.loads(s) for s in lines)
    assert first == {"kind": "machine", "x": 1.5, "n": 3}
    assert (second["median_s"], second["min_s"], second["max_s"]) == (2.0, 1.0, 3.0)
    assert second["extra"] == 1 and "loadavg_1min" in second
    assert rec.timings() == [rec.records[1]]


def test_cpu_account_and_peak_memory_measure_this_process():
    with CpuAccount() as cpu, PeakMemory(interval=0.01) as mem:
        block = np.ones(4_000_000)  # 32 MB, touched
        float(np.sqrt(block).sum())
    assert cpu.own > 0 and cpu.busy >= 0 and cpu.foreign >= 0
    d = mem.as_dict()
    assert d["peak_rss_tree_bytes"] >= d["rss_before_bytes"] > 0 and d["memory_samples"] >= 2


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_scripts_use_the_package_helper(script):
    text = script.read_text(encoding="utf-8")
    assert "sys.path" not in text, "no path hacks: import the package"
    assert not re.search(r"^\s*(from|import) bench_", text, re.M), "a script imports another"
    assert "from recopt.bench.record import" in text
    spec = importlib.util.spec_from_file_location(f"_bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports resolve (main() is not run)
    assert callable(module.main)
