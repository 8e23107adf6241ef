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

from recopt.bench.report import report
from recopt.bench.runner import _instance_file, execute, run_suite
from recopt.bench.store import HOST, Store, write_json_atomic
from recopt.bench.suite import SuiteError, expand, load_suite

ROOT = Path(__file__).resolve().parents[1]
VILLENA = ROOT / "instances" / "villena_test_case_1.nc"
YEAR = ROOT / "instances" / "community_24_year_15min.nc"


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
    later = BASE + '\n[[models]]\nname = "NoSuchModel"\n'
    with pytest.raises(SuiteError, match="unknown model 'NoSuchModel'"):
        load_suite(_suite(tmp_path, later, "later.toml"))
    part = load_suite(_suite(tmp_path, later, "later.toml"), models=["LP1", "LP3"])
    assert [j.job_id for j in expand(part)] == [j.job_id for j in jobs]


@pytest.mark.parametrize("change, message", [
    (('name = "LP3"', 'name = "NoSuchModel"'), "unknown model 'NoSuchModel'"),
    (("tolerance = 0.2", "tolerence = 0.2"), "no option tolerence"),
    (('generator = "synthetic"', 'generator = "nope"'), "unknown generator 'nope'"),
    (('generator = "synthetic"', 'generator = "chasseray"\npreset = "reference"'),
     "chasseray"),
    ((str(VILLENA), "/nonexistent/*.nc"), "nothing matches"),
    (("repetitions = 2", "repetitions = 2\nrepetitoins = 3"), "unknown key"),
    (("repetitions = 2", "repetitions = 0"), "must be positive"),
    (("n_steps = 4", "n_stepz = 4"), "n_stepz"),
    (("n_members = [3, 4]", "n_members = [1]"), r"instance synthetic\(n_members=1"),
])
def test_bad_suites_fail_before_any_job(tmp_path, change, message):
    path = _suite(tmp_path, BASE.replace(*change))
    with pytest.raises(SuiteError, match=message):
        expand(load_suite(path))


def test_cli_bad_suite_exit_code(tmp_path):
    path = _suite(tmp_path, BASE.replace('name = "LP3"', 'name = "NoSuchModel"'))
    proc = subprocess.run([sys.executable, "-m", "recopt.bench", "run", str(path), "--store",
                           str(tmp_path / "store"), "--dry-run"], capture_output=True,
                          text=True, env=_env(), timeout=120)
    assert proc.returncode == 2
    assert "unknown model 'NoSuchModel'" in proc.stderr
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


def test_plan_skips_finished_jobs_unless_forced(tmp_path):
    from recopt.bench.runner import plan

    path = _suite(tmp_path, BASE)
    suite, jobs, todo = plan(path, tmp_path / "store")
    assert todo == jobs and len(jobs) == 20
    store = Store(tmp_path / "store")
    for j in jobs[:3]:
        store.write({"job_id": j.job_id, "status": "optimal"})
    _, jobs2, todo2 = plan(path, tmp_path / "store")
    assert [j.job_id for j in jobs2] == [j.job_id for j in jobs]
    assert [j.job_id for j in todo2] == [j.job_id for j in jobs[3:]]
    assert len(plan(path, tmp_path / "store", force=True)[2]) == 20
    store.write({"job_id": jobs[0].job_id, "status": "timeout"})
    todo3 = plan(path, tmp_path / "store", rerun=["timeout", "crashed"])[2]
    assert [j.job_id for j in todo3] == [jobs[0].job_id] + [j.job_id for j in jobs[3:]]
    # generated instances are written once, then read from the store's index
    index = store.index()
    assert len(index) == 5 and all(store.instance_path(v["hash"]).is_file()
                                   for v in index.values())


def test_root_gap_of_a_milp(tmp_path):
    """``root_gap = true``: the LP relaxation and a root-node solve are run too; both
    bounds are no worse than the MILP optimum (the loop models minimise a cost), the root
    node's no weaker than the bare LP relaxation, and the gaps follow from them."""
    pytest.importorskip("recopt.generate.chasseray")
    from recopt.bench.runner import plan

    path = _suite(tmp_path, """
        [suite]
        root_gap = true
        warmup = false
        [[instances]]
        generator = "chasseray"
        preset = "reference"
        grid = { actors = [6], days = [1] }
        [[models]]
        name = "SLCpct"
        """)
    job = plan(path, tmp_path / "store")[1][0]  # the instance written into the store
    assert job.solve_relaxation
    rec = execute(job.to_dict())
    assert rec["status"] == "optimal" and rec["sizes"]["integers"] > 0
    rel = rec["relaxation"]
    assert rel["lp_status"] == "optimal"
    obj, lp, root = rec["objective"], rec["lp_bound"], rec["root_bound"]
    assert lp <= root + 1e-6 and root <= obj + 1e-6
    assert rec["lp_gap"] == pytest.approx((obj - lp) / abs(obj))
    assert rec["root_gap"] == pytest.approx((obj - root) / abs(obj))


# --------------------------------------------------------------------------- store
def test_atomic_write_and_store(tmp_path):
    store = Store(tmp_path)
    store.write({"job_id": "abc", "status": "optimal", "objective": float("nan")})
    rec = store.read("abc")
    assert rec["objective"] is None and rec["record_version"] == 1
    assert store.finished_ids() == {"abc"}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that is gone: its temporary file is stale
    host = HOST
    (store.records_dir / f"abd.json.tmp-{host}-{dead.pid}-0a1b").write_text("{trunc")
    live = store.records_dir / f"abe.json.tmp-{host}-{os.getpid()}-0a1c"
    live.write_text("{being written")  # a live writer's file is left alone
    assert store.finished_ids() == {"abc"}  # a half-written temp file is no record
    store.clean()
    assert store.leftover_tmp() == [live]
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
    job["options"] = "two"  # the job process dies with a Python error (dict("two"))
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
        time_limit = 60
        warmup = false     # fewer seconds per job; LP3 keeps its warm-up

        [[instances]]
        files = ["{VILLENA}"]
        models = ["LP1", "LP2", "LP3"]

        [[instances]]
        generator = "synthetic"
        grid = {{ n_members = [3] }}
        params = {{ n_steps = 4, step_hours = 1.0 }}
        models = ["LP1"]

        [[instances]]
        files = ["{YEAR}"]
        models = ["LP1-short"]

        [[models]]
        name = "LP1"

        [[models]]
        name = "LP2"

        [[models]]
        name = "LP3"
        warmup = true

        [[models]]
        name = "LP1"
        label = "LP1-short"
        options = {{ formulation = "paper" }}
        timeout = 1.0      # LP1 over a year of 15-min steps in one process: far longer
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
        assert not alive, "processes survived the runner: " + "; ".join(
            f"{p.pid} ppid {p.ppid()} {' '.join(p.cmdline())[:150]}" for p in alive
            if p.is_running())
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
        runner.communicate()

    n_jobs = 5
    before = {p.name: p.read_bytes() for p in records.glob("*.json")}
    assert 2 <= len(before) < n_jobs, "the runner was not killed midway"
    for name, data in before.items():
        rec = json.loads(data)  # no corrupt record
        assert rec["job_id"] + ".json" == name and rec["status"]

    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["jobs"] == n_jobs
    assert summary["skipped"] == len(before)
    assert summary["ran"] == n_jobs - len(before)
    after = {p.name: p.read_bytes() for p in records.glob("*.json")}
    assert len(after) == n_jobs
    for name, data in before.items():  # finished jobs were not redone
        assert after[name] == data
    recs = {(r["model_label"], r["instance"]["members"]): r
            for r in map(json.loads, after.values())}
    short = recs[("LP1-short", 24)]
    assert short["status"] == "timeout" and short["returncode"] == -signal.SIGKILL
    for key in [("LP1", 4), ("LP2", 4), ("LP3", 4), ("LP1", 3)]:
        r = recs[key]
        assert r["status"] == "optimal", r
        assert r["times"]["solve"] > 0 and r["times"]["wall"] >= r["times"]["build"]
        assert r["peak_rss_mib"] > 10 and r["solver_version"]
        assert r["machine"]["packages"]["pyomo"]
    assert recs[("LP3", 4)]["times"]["warmup"] > 0 == recs[("LP1", 4)]["times"]["warmup"]
    # LP2 with its default min_ssr = 0 is LP1; LP3 (keys tied to initial keys) costs no less
    assert recs[("LP2", 4)]["objective"] == pytest.approx(recs[("LP1", 4)]["objective"])
    assert recs[("LP3", 4)]["objective"] >= recs[("LP1", 4)]["objective"] - 1e-9

    # a third run does nothing (and starts no cluster)
    assert run_suite(suite, store_dir, progress=False)["ran"] == 0

    # the report of this store
    md = report(store_dir).read_text()
    assert "| LP1-short | highs | 24 x 35040 | 1 | 0 | timeout 1 |" in md
    assert "LP1-short" in (store_dir / "report" / "report.html").read_text()


# --------------------------------------------------------------------------- the report
def _fake_record(store, label, solver, members, days, seed, wall, status="optimal",
                 root_gap=None):
    steps = days * 24
    h = f"inst-{members}-{days}-{seed}"
    rec = {"job_id": f"{label}-{solver}-{h}", "suite": "fake", "model": label,
           "model_label": label, "solver": solver, "status": status, "instance_hash": h,
           "instance_label": h, "repetition": 0, "objective": 1.0, "bound": 1.0, "gap": 0.0,
           "instance": {"members": members, "steps": steps, "scenarios": 1,
                        "horizon_days": float(days), "step_hours": 1.0},
           "times": {"wall": wall, "solve": wall / 2, "build": wall / 4},
           "time_limit": 100.0, "timeout": 300.0, "peak_rss_mib": 100.0,
           "machine": {"host": "h"}}
    if root_gap is not None:
        rec["root_gap"] = root_gap
    store.write(rec)


def test_report_tables_and_plots(tmp_path):
    store = Store(tmp_path)
    write_json_atomic(tmp_path / "suites" / "fake.json",
                      {"name": "fake", "compare": [["CPT", "DEC"]], "description": "d"})
    for seed in range(3):
        for days in (1, 7, 30):  # horizon series at 10 members
            _fake_record(store, "CPT", "highs", 10, days, seed, wall=days * (1 + seed),
                         root_gap=0.1 / days)
            _fake_record(store, "DEC", "highs", 10, days, seed, wall=5.0 + seed)
        for members in (15, 20):  # actor series at 7 days
            _fake_record(store, "CPT", "highs", members, 7, seed, wall=members * 1.0,
                         status="optimal" if members < 20 else "timeout")
            _fake_record(store, "DEC", "highs", members, 7, seed, wall=2.0)
    md = report(tmp_path).read_text()
    out = tmp_path / "report"
    for png in ("time_vs_horizon.png", "time_vs_actors.png", "compact_vs_decomposed.png",
                "root_gaps.png", "performance_profile.png"):
        assert (out / png).stat().st_size > 5000, png
        assert f"]({png})" in md
    # CPT at 10 members x 30 days: walls 30, 60, 90 -> median 60 (30-90)
    assert "| CPT | highs | 10 x 720 | 3 | 3 | - | 60 (30-90) |" in md
    assert "| CPT | highs | 20 x 168 | 3 | 0 | timeout 3 |" in md
    assert (out / "summary.csv").is_file() and (out / "report.html").is_file()


def test_performance_profile_ratios():
    import pandas as pd

    from recopt.bench.report import performance_profile

    rows = []
    for inst, ta, tb, ok_b in (("p1", 1.0, 2.0, True), ("p2", 4.0, 1.0, True),
                               ("p3", 3.0, 9.0, False)):
        rows += [{"label": "A", "solver": "s", "instance_hash": inst, "wall": ta,
                  "status": "optimal"},
                 {"label": "B", "solver": "s", "instance_hash": inst, "wall": tb,
                  "status": "optimal" if ok_b else "timeout"}]
    rows.append({"label": "C", "solver": "s", "instance_hash": "p1", "wall": 1.0,
                 "status": "optimal"})  # C ran on p1 only
    r = performance_profile(pd.DataFrame(rows), [("A", "s"), ("B", "s")])
    assert r.loc["p1", "A (s)"] == 1.0 and r.loc["p1", "B (s)"] == 2.0
    assert r.loc["p2", "A (s)"] == 4.0 and r.loc["p2", "B (s)"] == 1.0
    assert r.loc["p3", "A (s)"] == 1.0 and r.loc["p3", "B (s)"] == float("inf")
    common = performance_profile(pd.DataFrame(rows))  # p1 is the one problem all three ran
    assert list(common.index) == ["p1"]
    assert list(common.loc["p1"]) == [1.0, 2.0, 1.0]
    assert performance_profile(pd.DataFrame(rows[:2])) is not None
    assert performance_profile(pd.DataFrame(rows[:1])) is None  # one configuration


def test_remote_scheduler_daemonic_workers(tmp_path):
    """``scheduler=``: a cluster the runner did not start (workers daemonic, dask's
    default, so jobs run in fresh interpreters) gets the instance as bytes."""
    import logging

    from distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    suite = _suite(tmp_path, f"""
        [[instances]]
        files = ["{VILLENA}"]
        [[models]]
        name = "LP1"
        warmup = false
        """)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        summary = run_suite(suite, tmp_path / "store", scheduler=cluster.scheduler_address,
                            progress=False)
    assert summary["statuses"] == {"optimal": 1}
    rec = Store(tmp_path / "store").records()[0]
    assert rec["job_process"] == "subprocess" and rec["status"] == "optimal"
