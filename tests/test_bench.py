"""recopt.bench: suites, job ids, the Dask runner (kill + resume, timeout), the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from recopt.bench.runner import _instance_file, execute
from recopt.bench.store import Store, write_json_atomic
from recopt.bench.suite import SuiteError, expand, load_suite

ROOT = Path(__file__).resolve().parents[1]
VILLENA = ROOT / "instances" / "villena_test_case_1.nc"


def _suite(tmp_path, text: str, name="s.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --------------------------------------------------------------------------- suite files
BASE = f"""
[suite]
name = "t"
repetitions = 2

[[instances]]
files = ["{VILLENA}"]

[[instances]]
generator = "synthetic"
grid = {{ n_members = [3, 4] }}
params = {{ n_steps = 4, step_hours = 1.0 }}
replicates = 2

[[models]]
name = "LP1"

[[models]]
name = "LP3"
options = {{ tolerance = 0.2 }}
"""


def test_expansion_counts_and_stable_ids(tmp_path):
    suite = load_suite(_suite(tmp_path, BASE))
    jobs = expand(suite)
    # (1 file + 2 sizes x 2 seeds) instances x 2 models x 2 repetitions
    assert len(jobs) == 5 * 2 * 2
    assert len({j.job_id for j in jobs}) == len(jobs)
    assert len({j.instance_hash for j in jobs}) == 5
    again = expand(load_suite(_suite(tmp_path, BASE, "again.toml")))
    assert [j.job_id for j in again] == [j.job_id for j in jobs]
    # the model options are resolved (defaults filled in) and part of the id
    lp3 = next(j for j in jobs if j.model == "LP3")
    assert lp3.options["tolerance"] == 0.2 and len(lp3.options) > 1
    changed = expand(load_suite(_suite(tmp_path, BASE.replace("0.2", "0.3"), "c.toml")))
    ids_lp1 = {j.job_id for j in jobs if j.model == "LP1"}
    assert ids_lp1 == {j.job_id for j in changed if j.model == "LP1"}
    assert not ({j.job_id for j in jobs if j.model == "LP3"}
                & {j.job_id for j in changed if j.model == "LP3"})
    # --models keeps a subset with the same ids
    only = expand(suite, models=["LP1"])
    assert {j.job_id for j in only} == ids_lp1
    with pytest.raises(SuiteError, match="no model labelled LP9"):
        expand(suite, models=["LP9"])
    with pytest.raises(SuiteError, match="no model labelled LP9"):
        load_suite(_suite(tmp_path, BASE), models=["LP9"])
    # a model this recopt does not have is not looked up when filtered out
    later = BASE + '\n[[models]]\nname = "MLColExt"\n'
    with pytest.raises(SuiteError, match="unknown model 'MLColExt'"):
        load_suite(_suite(tmp_path, later, "later.toml"))
    part = load_suite(_suite(tmp_path, later, "later.toml"), models=["LP1", "LP3"])
    assert [j.job_id for j in expand(part)] == [j.job_id for j in jobs]


@pytest.mark.parametrize("change, message", [
    (('name = "LP3"', 'name = "SLExt"'), "unknown model 'SLExt'"),
    (("tolerance = 0.2", "tolerence = 0.2"), "no option tolerence"),
    (('generator = "synthetic"', 'generator = "nope"'), "unknown generator 'nope'"),
    (('generator = "synthetic"', 'generator = "chasseray"\npreset = "reference"'),
     "chasseray"),
    ((str(VILLENA), "/nonexistent/*.nc"), "nothing matches"),
    (("repetitions = 2", "repetitions = 2\nrepetitoins = 3"), "unknown key"),
    (("repetitions = 2", "repetitions = 0"), "must be positive"),
    (("n_steps = 4", "n_stepz = 4"), "n_stepz"),
])
def test_bad_suites_fail_before_any_job(tmp_path, change, message):
    path = _suite(tmp_path, BASE.replace(*change))
    with pytest.raises(SuiteError, match=message):
        expand(load_suite(path))


def test_cli_bad_suite_exit_code(tmp_path):
    path = _suite(tmp_path, BASE.replace('name = "LP3"', 'name = "MLCol"'))
    proc = subprocess.run([sys.executable, "-m", "recopt.bench", "run", str(path), "--store",
                           str(tmp_path / "store"), "--dry-run"], capture_output=True,
                          text=True, env=_env(), timeout=120)
    assert proc.returncode == 2
    assert "unknown model 'MLCol'" in proc.stderr
    assert not (tmp_path / "store" / "records").exists()


def test_papers_suites_load():
    """The shipped suites parse; models/presets of other branches give SuiteError only."""
    suites = sorted((ROOT / "benchmarks" / "suites").glob("*.toml"))
    assert suites
    for p in suites:
        try:
            s = load_suite(p)
        except SuiteError as exc:
            assert "unknown model" in str(exc) or "chasseray" in str(exc), (p, exc)
            continue
        assert s.models and s.instances


# --------------------------------------------------------------------------- store
def test_atomic_write_and_store(tmp_path):
    store = Store(tmp_path)
    store.write({"job_id": "abc", "status": "optimal", "objective": float("nan")})
    rec = store.read("abc")
    assert rec["objective"] is None and rec["record_version"] == 1
    assert store.finished_ids() == {"abc"}
    (store.records_dir / "abd.json.tmp-1").write_text("{trunc")
    assert store.finished_ids() == {"abc"}  # a half-written temp file is no record
    store.clean()
    assert not store.leftover_tmp()
    write_json_atomic(tmp_path / "x.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1, 2]}


def test_instance_bytes_for_remote_workers(tmp_path):
    job = {"instance_path": "/nonexistent/x.nc", "instance_hash": "f" * 64 + str(time.time_ns())}
    path = _instance_file(job, VILLENA.read_bytes(), tmp_path)
    try:
        assert Path(path).read_bytes() == VILLENA.read_bytes()
    finally:
        Path(path).unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError):
        _instance_file(job, None, tmp_path)


def test_a_crashing_job_is_recorded_as_crashed(tmp_path):
    suite = load_suite(_suite(tmp_path, BASE))
    job = expand(suite, models=["LP1"])[0].to_dict()
    job["job_workers"] = "two"  # the job process dies with a Python error
    rec = execute(job)
    assert rec["status"] == "crashed"
    assert rec["returncode"] == 1
    assert "ValueError" in rec["stderr_tail"]
    assert rec["machine"]["cores"] == os.cpu_count()


# --------------------------------------------------------------------------- the runner
def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_kill_runner_midway_then_resume(tmp_path):
    """SIGKILL the runner (2 Dask workers) midway: no process survives, no record is
    corrupt, and the rerun does only the missing jobs; a job past its timeout is
    recorded as ``timeout``."""
    suite = _suite(tmp_path, f"""
        [suite]
        name = "killme"
        repetitions = 2
        time_limit = 60

        [[instances]]
        files = ["{VILLENA}"]

        [[models]]
        name = "LP1"

        [[models]]
        name = "LP2"

        [[models]]
        name = "LP3"

        [[models]]
        name = "LP1"
        label = "LP1-short"
        options = {{ formulation = "paper" }}
        timeout = 0.5      # less than the job process needs to start: always exceeded
        """)
    store_dir = tmp_path / "store"
    cmd = [sys.executable, "-m", "recopt.bench", "run", str(suite), "--store", str(store_dir),
           "--workers", "2", "--no-progress"]
    runner = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
    records = store_dir / "records"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if records.is_dir() and len(list(records.glob("*.json"))) >= 2:
                break
            assert runner.poll() is None, runner.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("no record after 120 s")
        children = _descendants(runner.pid)
        assert len(children) >= 2  # the Dask worker processes (and job processes)
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        gone, alive = psutil.wait_procs(children, timeout=20)
        assert not alive, f"processes survived the runner: {alive}"
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
        runner.communicate()

    before = {p.name: p.read_bytes() for p in records.glob("*.json")}
    assert 2 <= len(before) < 8, "the runner was not killed midway"
    for name, data in before.items():
        rec = json.loads(data)  # no corrupt record
        assert rec["job_id"] + ".json" == name and rec["status"]

    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["jobs"] == 8
    assert summary["skipped"] == len(before)
    assert summary["ran"] == 8 - len(before)
    after = {p.name: p.read_bytes() for p in records.glob("*.json")}
    assert len(after) == 8
    for name, data in before.items():  # finished jobs were not redone
        assert after[name] == data
    recs = [json.loads(d) for d in after.values()]
    by_label = {}
    for r in recs:
        by_label.setdefault(r["model_label"], []).append(r)
    assert [r["status"] for r in by_label["LP1-short"]] == ["timeout", "timeout"]
    assert all(r["returncode"] == -signal.SIGKILL for r in by_label["LP1-short"])
    for label in ("LP1", "LP2", "LP3"):
        assert [r["status"] for r in by_label[label]] == ["optimal", "optimal"]
        for r in by_label[label]:
            assert r["times"]["solve"] > 0 and r["times"]["wall"] >= r["times"]["build"]
            assert r["peak_rss_mib"] > 10 and r["solver_version"]
            assert r["machine"]["packages"]["pyomo"]
    # LP2 with its default min_ssr = 0 is LP1; LP3 (keys tied to initial keys) costs no
    # less; both repetitions give the same objective
    objs = {label: {r["objective"] for r in by_label[label]} for label in ("LP1", "LP2", "LP3")}
    assert len(objs["LP1"]) == 1 and objs["LP1"] == objs["LP2"]
    assert min(objs["LP3"]) >= max(objs["LP1"]) - 1e-9

    # a third run does nothing (no cluster started)
    again = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert json.loads(again.stdout)["ran"] == 0

    # the report of this store
    rep = subprocess.run([sys.executable, "-m", "recopt.bench", "report", str(store_dir)],
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    md = (store_dir / "report" / "report.md").read_text()
    assert "| LP1-short | highs | 4 x 2 | 2 | 0 | timeout 2 |" in md
    assert (store_dir / "report" / "performance_profile.png").stat().st_size > 1000
    assert (store_dir / "report" / "report.html").is_file()
