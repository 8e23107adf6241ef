"""Hardening (issue 17): lost workers, shared stores, extreme data, hostile suites.

One regression test (or more) per case of the issue's nine classes; the class number
is in each test's docstring. The real Dask case (a separate scheduler and two worker
processes on 127.0.0.1, one killed mid-run) and two full runners on one store are
``slow``. Property-based fuzzing (hypothesis) of make_instance / the CLI number flags
checks "a clear RecoptError or a correct answer, never a traceback".
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recopt.bench.runner import plan
from recopt.bench.store import Store
from recopt.bench.suite import MAX_JOBS, SuiteError, load_suite
from recopt.cli import generate as generate_cli
from recopt.cli import keys as keys_cli
from recopt.cli.solve import build_parser
from recopt.cli.solve import main as solve_main
from recopt.data import load, make_instance, save
from recopt.errors import (
    DimensionError,
    InstanceError,
    ModelError,
    OutputError,
    RecoptError,
    SolverOptionError,
    TimestampError,
)
from recopt.models import registry
from recopt.solve import load_result, save_result, solve
from recopt.solve.result import check_output_path
from recopt.solvers import solve_pyomo
from recopt.solvers.deadline import Deadline, current_deadline, deadline_scope
from recopt.solvers.highs import LPScaling
from recopt.solvers.safety import ALLOW_FILE_OPTIONS_ENV, ALLOW_SOLVERS_ENV, check_solver
from recopt.solvers.status import Status

ROOT = Path(__file__).resolve().parents[1]
VILLENA = str(ROOT / "instances" / "villena_test_case_1.nc")
PRICES = dict(price_grid_buy=0.2, price_grid_sell=0.05, price_community_buy=0.12,
              price_community_sell=0.1)
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def _suite(tmp_path, text: str, name="s.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def _models_block(extra: str = "") -> str:
    return f"""
        [[instances]]
        files = ["{VILLENA}"]

        [[models]]
        name = "LP1"
        {extra}
        """


# =========================================================================== class 5
@pytest.mark.parametrize("name", ["/tmp/evil", "../evil", "a/../../b", ".hidden", "",
                                  "x" * 101, "a b"])
def test_5_suite_name_must_be_a_plain_file_name(tmp_path, name):
    """(5) The suite name is joined into a path: an absolute or ../ name is refused."""
    p = _suite(tmp_path, f'[suite]\nname = {json.dumps(name)}\n' + _models_block())
    with pytest.raises(SuiteError, match="suite name"):
        load_suite(p)
    assert not Path("/tmp/evil.json").exists()


def test_5_store_refuses_an_unsafe_suite_name_too(tmp_path):
    with pytest.raises(SuiteError, match="suite name"):
        Store(tmp_path).write_suite({"name": "../../escape"})
    assert not (tmp_path.parent / "escape.json").exists()


@pytest.mark.parametrize("solver", ["asl:/bin/true", "/usr/bin/cbc", "no_such_solver"])
def test_5_unknown_solver_names_are_refused_everywhere(tmp_path, solver, monkeypatch,
                                                       capsys):
    """(5)+(9) ``asl:/path`` runs any program through Pyomo: solver names are limited
    to known solvers, from the suite, the CLI and the Python API, before any solve
    (no Pyomo traceback)."""
    monkeypatch.delenv(ALLOW_SOLVERS_ENV, raising=False)
    p = _suite(tmp_path, '[suite]\nname = "s"\n' + _models_block(f"solvers = ['{solver}']"))
    with pytest.raises(SuiteError, match="not a known solver"):
        load_suite(p)
    assert solve_main([VILLENA, "--model", "LP1", "--solver", solver]) == 2
    err = capsys.readouterr().err
    assert "not a known solver" in err and "Traceback" not in err
    with pytest.raises(SolverOptionError, match=ALLOW_SOLVERS_ENV):
        solve(VILLENA, "LP1", solver=solver)


def test_5_other_solvers_need_an_explicit_opt_in(monkeypatch, capsys):
    monkeypatch.setenv(ALLOW_SOLVERS_ENV, "my_solver")
    assert check_solver("my_solver") == "my_solver"
    # allowed but not installed: a status, without Pyomo's traceback
    assert solve_main([VILLENA, "--model", "LP1", "--solver", "my_solver"]) == 7
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out and "not available" in out.out
    with pytest.raises(SolverOptionError):
        check_solver("asl:/bin/true")  # the opt-in names solvers exactly


@pytest.mark.parametrize("option", ["solution_file", "write_solution_to_file",
                                    "log_file", "write_model_file", "LogFile"])
def test_5_solver_options_writing_files_are_refused(tmp_path, option, monkeypatch, capsys):
    """(5) HiGHS ``solution_file`` (and every option naming a file) overwrites any file:
    refused from the API, the CLI and a suite unless explicitly allowed."""
    monkeypatch.delenv(ALLOW_FILE_OPTIONS_ENV, raising=False)
    target = tmp_path / "victim.txt"
    target.write_text("precious")
    with pytest.raises(SolverOptionError, match="writes files"):
        solve(VILLENA, "LP1", solver_options={option: str(target)})
    assert solve_main([VILLENA, "--model", "LP1", "--solver-option",
                       f"{option}={target}"]) == 2
    assert "writes files" in capsys.readouterr().err
    p = _suite(tmp_path, '[suite]\nname = "s"\n'
               + _models_block(f"solver_options = {{ {option} = '{target}' }}"))
    with pytest.raises(SuiteError, match="writes files"):
        load_suite(p)
    assert target.read_text() == "precious"


def test_5_file_options_opt_in(tmp_path, monkeypatch):
    monkeypatch.setenv(ALLOW_FILE_OPTIONS_ENV, "1")
    out = tmp_path / "sol.txt"
    r = solve(VILLENA, "LP1", solver_options={"solution_file": str(out),
                                              "write_solution_to_file": True})
    assert r.attrs["status"] == "optimal" and out.is_file()


@pytest.mark.parametrize("block", [
    "replicates = 1e8",
    "replicates = 100000000",
    "grid = { n_members = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12] }\nreplicates = 20000",
])
def test_5_suite_expansion_is_bounded_before_it_runs(tmp_path, block):
    """(5) ``replicates = 1e8`` expanded for minutes into 12 GB: now refused at once."""
    p = _suite(tmp_path, f"""
        [suite]
        name = "big"
        [[instances]]
        generator = "synthetic"
        params = {{ n_steps = 4 }}
        {block}
        [[models]]
        name = "LP1"
        """)
    t0 = time.perf_counter()
    with pytest.raises(SuiteError, match=f"{MAX_JOBS:,}"):
        load_suite(p)
    assert time.perf_counter() - t0 < 2.0


def test_5_jobs_bound_counts_models_solvers_and_repetitions(tmp_path):
    p = _suite(tmp_path, """
        [suite]
        name = "big"
        repetitions = 40000
        [[instances]]
        generator = "synthetic"
        params = { n_steps = 4 }
        replicates = 3
        [[models]]
        name = "LP1"
        """)
    with pytest.raises(SuiteError, match="jobs"):
        load_suite(p)


@pytest.mark.parametrize("extra, match", [
    ("options = 'x'", "options must be a table"),
    ("warmup = 'yes'", "warmup must be true or false"),
    ("timeout = 'abc'", "timeout must be a number"),
    ("time_limit = nan", "time_limit must be a finite number"),
    ("threads = 2.5", "threads must be an integer"),
    ("solvers = [1]", "solvers must be a string"),
    ("solver_options = { threads = [1] }", "must be a number, a string or a bool"),
    ("options = { tolerance = 'abc' }", "tolerance"),
    ("options = { tolerance = nan }", "finite"),
])
def test_9_suite_values_of_the_wrong_type_are_suite_errors(tmp_path, extra, match):
    """(9) Suite values of the wrong type were raw tracebacks (or silently kept)."""
    name = "LP3" if "tolerance" in extra else "LP1"
    p = _suite(tmp_path, f"""
        [suite]
        name = "s"
        [[instances]]
        files = ["{VILLENA}"]
        [[models]]
        name = "{name}"
        {extra}
        """)
    with pytest.raises(SuiteError, match=match):
        load_suite(p)


# =========================================================================== class 6
def _store_with_records(tmp_path) -> tuple[Path, Path]:
    suite = _suite(tmp_path, '[suite]\nname = "st"\n' + _models_block())
    store_dir = tmp_path / "store"
    _, jobs, todo = plan(suite, store_dir)
    assert len(jobs) == len(todo) == 1
    Store(store_dir).write({**jobs[0].to_dict(), "status": "optimal"})
    _, _, todo = plan(suite, store_dir)
    assert todo == []
    return suite, store_dir


@pytest.mark.parametrize("content", ['{"job_id": "x", "stat', "", "[1, 2]", "\xff\xfe",
                                     '{"status": "optimal"}'])
def test_6_a_truncated_record_is_unfinished_and_the_report_survives(tmp_path, content):
    """(6) A truncated record counted as finished, then failed the whole report, and
    ``--rerun`` on it was a raw JSONDecodeError. Now it is no record: its job runs
    again, ``records()`` skips it, ``--rerun`` plans it."""
    suite, store_dir = _store_with_records(tmp_path)
    store = Store(store_dir)
    (path,) = store.records_dir.glob("*.json")
    path.write_text(content, errors="surrogateescape")
    assert store.finished_ids() == set()
    assert store.records() == []
    assert store.bad_records() == [path]
    _, jobs, todo = plan(suite, store_dir)
    assert [j.job_id for j in todo] == [path.stem]
    _, _, todo = plan(suite, store_dir, rerun=("crashed",))
    assert len(todo) == 1
    with pytest.raises(SuiteError, match="no whole record"):
        store.read(path.stem)


def test_6_truncated_index_and_suite_files_are_not_fatal(tmp_path):
    """(6) The store's other JSON files (instance index, expanded suites) truncated:
    the index is a cache and is rebuilt, a suite file is skipped with a warning."""
    suite, store_dir = _store_with_records(tmp_path)
    store = Store(store_dir)
    (store.instances_dir / "index.json").write_text('{"a": ')
    (store.root / "suites").mkdir(exist_ok=True)
    (store.root / "suites" / "x.json").write_text("{")
    assert store.index() == {} and store.suites() == []
    _, jobs, todo = plan(suite, store_dir)
    assert len(jobs) == 1 and todo == []  # the record still counts


def _claim_in_child(store_dir: str, ids: list[str], q, hold: float) -> None:
    store = Store(store_dir)
    q.put([store.claim(i) for i in ids])
    time.sleep(hold)


def test_6_one_runner_owns_a_job(tmp_path):
    """(6) Two runners on one store both ran every job. A claim (under a store flock)
    makes one runner the owner; a dead owner's claim is taken over."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    ids = [f"job{i}" for i in range(20)]
    a = ctx.Process(target=_claim_in_child, args=(str(tmp_path), ids[:12], q, 30.0))
    a.start()
    assert q.get(timeout=60) == [True] * 12
    store = Store(tmp_path)
    got = [store.claim(i) for i in ids]
    assert got == [False] * 12 + [True] * 8  # the live runner's jobs are left to it
    a.kill()
    a.join()
    assert [store.claim(i) for i in ids] == [True] * 20  # a dead runner's are taken over
    store.release("job0")
    assert not (store.claims_dir / "job0.claim").exists()


def test_6_a_starting_runner_leaves_another_runners_temporary_files(tmp_path):
    """(6) A starting runner deleted the other runner's temporary files."""
    store = Store(tmp_path)
    store.records_dir.mkdir(parents=True)
    ctx = mp.get_context("fork")
    holder = ctx.Process(target=time.sleep, args=(30,))
    holder.start()
    try:
        from recopt.bench.store import HOST

        theirs = store.records_dir / f"j.json.tmp-{HOST}-{holder.pid}-abc123"
        theirs.write_text("{half")
        store.clean()
        assert theirs.exists()
    finally:
        holder.kill()
        holder.join()
    store.clean()
    assert not theirs.exists()


# =========================================================================== class 2
def _writer(path: str, result_path: str, n: int) -> None:
    r = load_result(result_path)
    for _ in range(n):
        save_result(r, path)


def test_2_concurrent_output_to_one_path(tmp_path):
    """(2) Three writers of one ``--output``: two died with BlockingIOError on the fixed
    ``path + ".tmp"`` and the file left could not be read. Now every writer succeeds,
    the file is a whole Result, and no temporary file is left."""
    r = solve(VILLENA, "LP1")
    src = tmp_path / "src.nc"
    save_result(r, src)
    out = tmp_path / "out.nc"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(out), str(src), 4)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    back = load_result(out)
    assert back.attrs["objective"] == pytest.approx(r.attrs["objective"])
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.nc", "src.nc"]


def test_2_9_output_path_is_checked_before_the_solve(tmp_path, capsys, monkeypatch):
    """(2)+(9) ``--output`` onto a folder, under a file: a one-line error before any
    solve (the solve is never run only for its result to be lost)."""
    calls = []
    monkeypatch.setattr("recopt.cli.solve.solve", lambda *a, **k: calls.append(1))
    (tmp_path / "f").write_text("x")
    for target, match in ((tmp_path, "is a folder"), (tmp_path / "f" / "r.nc", "is a file")):
        assert solve_main([VILLENA, "--model", "LP1", "-o", str(target)]) == 2
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert calls == []


@pytest.mark.skipif(ROOT_USER, reason="root may write into a read-only folder")
def test_9_output_into_a_read_only_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert solve_main([VILLENA, "--model", "LP1", "-o", str(ro / "r.nc")]) == 2
        assert "no permission" in capsys.readouterr().err
    finally:
        ro.chmod(0o755)


def test_9_special_output_file_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        check_output_path(fifo)


# =========================================================================== class 8
@pytest.mark.parametrize("flags", [
    ["--mip-gap", "-1"], ["--mip-gap", "nan"], ["--mip-gap", "inf"],
    ["--threads", "-3"], ["--threads", "0"], ["--threads", "1.5"],
    ["--time-limit", "nan"], ["--time-limit", "-5"], ["--time-limit", "0"],
    ["--time-limit", "inf"], ["--workers", "0"],
])
def test_8_bad_flag_values_are_usage_errors(flags, capsys):
    """(8) ``--mip-gap -1``/``nan``, ``--threads -3``, ``--time-limit nan`` exited 0
    with the value ignored; ``--time-limit -5`` exited 6. Now: usage error, exit 2."""
    with pytest.raises(SystemExit) as exc:
        solve_main([VILLENA, "--model", "LP1", *flags])
    assert exc.value.code == 2
    assert flags[1] in capsys.readouterr().err


@pytest.mark.parametrize("kw", [dict(mip_gap=-1.0), dict(mip_gap=float("nan")),
                                dict(threads=-3), dict(threads=True), dict(workers=0),
                                dict(time_limit=float("nan")), dict(time_limit=-5)])
def test_8_bad_numbers_in_the_python_api(kw):
    with pytest.raises(RecoptError):
        solve(VILLENA, "LP1", **kw)


def test_8_lp2_min_ssr_nan_or_unknown_member():
    """(8) LP2 ``min_ssr=nan`` or an unknown member name ran with no constraint."""
    with pytest.raises(ModelError, match="finite|min_ssr"):
        solve(VILLENA, "LP2", min_ssr="nan")
    with pytest.raises(ModelError, match="names no member"):
        solve(VILLENA, "LP2", min_ssr="NoSuchUser:0.5")


def test_8_typed_model_options_refuse_non_numbers():
    spec = registry.get("LP3")
    for bad in ("abc", float("nan"), float("inf"), [1], True):
        with pytest.raises(ModelError, match="tolerance"):
            spec.resolve_options({"tolerance": bad})


# =========================================================================== class 9
def test_9_fifo_and_unreadable_instances(tmp_path, capsys):
    """(9) A FIFO given as instance blocked forever; an unreadable file was a
    traceback."""
    fifo = tmp_path / "inst.nc"
    os.mkfifo(fifo)
    t0 = time.perf_counter()
    assert solve_main([str(fifo), "--model", "LP1"]) == 2
    assert time.perf_counter() - t0 < 10
    assert "not a regular file" in capsys.readouterr().err
    if not ROOT_USER:
        f = tmp_path / "locked.nc"
        f.write_bytes(Path(VILLENA).read_bytes())
        f.chmod(0)
        assert solve_main([str(f), "--model", "LP1"]) == 2
        assert "cannot read" in capsys.readouterr().err


def test_9_time_step_hours_inf_is_a_timestamp_error():
    with pytest.raises(TimestampError, match="finite"):
        make_instance(np.ones((2, 2)), np.ones((2, 2)), **PRICES,
                      time_step_hours=float("inf"))


@pytest.mark.parametrize("argv, match", [
    (["-o", "{seed}{oops}.nc"], "pattern"),
    (["--set", "mix=oops"], "setting mix"),
    (["--set", "tilt=abc"], "setting tilt"),
    (["--set", "tilt=NaN"], "setting tilt"),
])
def test_9_generate_bad_values_are_one_line_errors(tmp_path, argv, match, capsys):
    """(9) ``generate -o '{seed}{oops}.nc'`` and ``generate --set mix=...`` were raw
    tracebacks."""
    argv = [a if not a.startswith("{") else str(tmp_path / a) for a in argv]
    code = generate_cli.main(["--actors", "6", "--days", "1", "-q", *argv]
                             + ([] if "-o" in argv else ["-o", str(tmp_path / "x.nc")]))
    err = capsys.readouterr().err
    assert code == 2 and match in err and "Traceback" not in err


def test_9_keys_out_under_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code = keys_cli.main([VILLENA, "--keys", "ES", "--out", str(tmp_path / "f" / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "is a file" in err and "Traceback" not in err


def test_9_known_but_missing_solver_is_a_status_without_traceback(capsys):
    code = solve_main([VILLENA, "--model", "LP1", "--solver", "cplex"])
    out = capsys.readouterr()
    assert code == 7 and "Traceback" not in out.out + out.err


# =========================================================================== class 3
def _labelled(values, members, times):
    return xr.DataArray(np.asarray(values, float), dims=("time", "member"),
                        coords={"time": times, "member": members})


def test_3_make_instance_aligns_by_labels():
    """(3) Production given with members in another order was attached to the wrong
    members. Now energies are matched by label."""
    t = pd.date_range("2024-01-01", periods=3, freq="h")
    c = _labelled([[1, 2], [3, 4], [5, 6]], ["a", "b"], t)
    p = _labelled([[9, 0], [8, 0], [7, 0]], ["a", "b"], t)
    ref = make_instance(c, p, **PRICES)
    swapped = make_instance(c, p.isel(member=[1, 0]), **PRICES)
    shuffled_t = make_instance(c, p.isel(time=[2, 0, 1]), **PRICES)
    for ds in (swapped, shuffled_t):
        xr.testing.assert_equal(ds["production"], ref["production"])
    given = make_instance(c, p, members=["b", "a"], **PRICES)
    assert list(given["member"].values) == ["b", "a"]
    assert given["production"].sel(member="a").values.ravel().tolist() == [9, 8, 7]
    assert given["consumption"].sel(member="b").values.ravel().tolist() == [2, 4, 6]


@pytest.mark.parametrize("change", ["member", "time", "members_kw"])
def test_3_make_instance_refuses_other_labels(change):
    t = pd.date_range("2024-01-01", periods=3, freq="h")
    c = _labelled(np.ones((3, 2)), ["a", "b"], t)
    p = _labelled(np.ones((3, 2)), ["a", "b"], t)
    kw = {}
    if change == "member":
        p = p.assign_coords(member=["a", "z"])
    elif change == "time":
        p = p.assign_coords(time=t + pd.Timedelta("1h"))
    else:
        kw = {"members": ["a", "c"]}
    with pytest.raises(DimensionError, match="matched by label"):
        make_instance(c, p, **PRICES, **kw)


# =========================================================================== class 4
def _ladder_instance():
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import random_loop_instance  # the shared factory, as a function

    return random_loop_instance(3, n=5, S=1, T=4)


LADDER = (1e-9, 1e-6, 1e-3, 1e3, 1e6, 1e9, 1e12)


@pytest.mark.parametrize("model", ["LP1", "MLCol"])
def test_4_magnitude_ladder(model):
    """(4) Energies x1e-9 gave wrong "optimal" objectives (LP1 -216.5e-9 vs -215.8e-9,
    MLCol -835.8e-9 vs -211.2e-9). Now x1e-9 ... x1e12 kWh per step give the unscaled
    optimum times the factor, with the same decisions and bills."""
    inst = _ladder_instance()
    base = solve(inst, model, workers=1)
    assert base.attrs["status"] == "optimal"
    obj = base.attrs["objective"]
    for f in LADDER:
        s = inst.copy()
        s["consumption"] = inst["consumption"] * f
        s["production"] = inst["production"] * f
        r = solve(s, model, workers=1)
        assert r.attrs["status"] == "optimal", f
        assert r.attrs["objective"] / f == pytest.approx(obj, rel=1e-7), f
        if model == "LP1":  # its keys settled again give the same bills
            assert np.allclose(r["key"], base["key"], atol=1e-6), f
            assert float(r["collective_bill"].sum()) / f == pytest.approx(
                float(base["collective_bill"].sum()), rel=1e-7)
        else:
            assert r["membership"].shape == base["membership"].shape
            assert (r["membership"].values == base["membership"].values).all(), f


@pytest.mark.parametrize("model, kw", [("MLColExt", {}), ("SLExt", {}),
                                       ("MLCol", {"enumeration": "generate"})])
@pytest.mark.parametrize("factor", [1e-4, 1e12])
def test_4_decomposition_algorithms_refuse_magnitudes_they_cannot_solve(model, kw, factor):
    """(4) Benders and column generation have absolute tolerances: x1e-4 gave wrong
    optima (MLColExt 0.102 vs -0.135), x1e12 an error. They refuse such instances,
    naming the range and the compact alternative; the compact MLCol solves them."""
    inst = _ladder_instance()
    s = inst.copy()
    s["consumption"] = inst["consumption"] * factor
    s["production"] = inst["production"] * factor
    with pytest.raises(ModelError, match="compact model"):
        solve(s, model, **kw)


@pytest.mark.parametrize("var, value", [("consumption", 1e16), ("production", 1e15),
                                        ("price_grid_buy", 1e7)])
def test_4_magnitudes_beyond_the_stated_range_are_refused(var, value):
    """(4) One cell >= 1e16 gave "optimal - Empty", "unbounded" or "Unknown" (exit 0).
    Beyond 1e14 kWh per step / 1e6 EUR/kWh the instance is refused, naming the cell."""
    inst = _ladder_instance()
    bad = inst.copy(deep=True)
    arr = bad[var].values.copy()
    arr.flat[0] = value
    bad[var] = (bad[var].dims, arr, bad[var].attrs)
    with pytest.raises(InstanceError, match=var):
        solve(bad, "LP1")


def test_4_scaling_is_exact_and_round_trips():
    import scipy.sparse as sp

    r = np.random.default_rng(0)
    A = sp.random(6, 5, density=0.6, random_state=1, format="csc") * 1e-9
    cost = r.uniform(0.1, 0.3, 5)
    lo, up = np.zeros(5), np.full(5, 3e-9)
    rl, ru = np.full(6, -np.inf), r.uniform(1e-9, 2e-9, 6)
    s = LPScaling(A, cost, lo, up, rl, ru, np.zeros(5, np.int8))
    A2, c2, lo2, up2, rl2, ru2, _ = s.lp(cost, lo, up, rl, ru, 0.0)
    assert s.scaled and np.abs(A2.data).max() <= 2 and np.abs(ru2).max() <= 2
    x = r.uniform(0, 3e-9, 5)
    assert np.array_equal(s.values(s.start(x)), x)  # powers of two: exact
    assert np.allclose(A2 @ s.start(x), (A @ x) * s.row)


def test_4_highs_statuses_are_checked(monkeypatch):
    """(4) HiGHS's return status of run() was never read: an error run is an error."""
    import highspy

    real_run = highspy.Highs.run
    monkeypatch.setattr(highspy.Highs, "run",
                        lambda self: (real_run(self), highspy.HighsStatus.kError)[1])
    r = solve(VILLENA, "LP1")
    assert r.attrs["status"] == "error" and "HiGHS run failed" in r.attrs["message"]


# =========================================================================== class 7
def test_7_time_limit_covers_build(monkeypatch):
    """(7) ``--time-limit`` did not count build and compile (MLCpct 30 x 7 with 10 s
    took 17 s). The limit is now wall-clock from the call."""
    spec = registry.get("LP1")
    real_build = spec.build

    def slow_build(*a, **k):
        time.sleep(0.8)
        return real_build(*a, **k)

    real_step_lp = spec.step_lp

    def slow_step_lp(*a, **k):  # the fast path's build (one StepLP for every block)
        time.sleep(0.8)
        return real_step_lp(*a, **k)

    slow = dataclasses.replace(spec, build=slow_build, step_lp=slow_step_lp)
    monkeypatch.setattr(registry, "get", lambda name: slow if name == "LP1" else spec)
    t0 = time.perf_counter()
    r = solve(VILLENA, "LP1", time_limit=0.5, workers=1)
    assert r.attrs["status"] == "time_limit"  # the build alone took longer than the limit
    assert time.perf_counter() - t0 < 2.0


def test_7_bound_is_kept_without_an_incumbent():
    """(7) With no incumbent the MIP's bound was dropped."""
    import pyomo.environ as pyo

    r = np.random.default_rng(0)
    n = 30
    w, v = r.integers(1000, 5000, n), r.integers(1, 100, n)
    m = pyo.ConcreteModel()
    m.y = pyo.Var(range(n), domain=pyo.Binary)
    m.c = pyo.Constraint(expr=sum(int(w[i]) * m.y[i] for i in range(n)) == int(w[:15].sum()))
    m.o = pyo.Objective(expr=sum(int(v[i]) * m.y[i] for i in range(n)))
    o = solve_pyomo(m, options={"mip_max_nodes": 1, "mip_heuristic_effort": 0.0,
                                "presolve": "off"})
    assert not o.has_solution and math.isfinite(o.bound)
    assert 0 < o.bound <= float(v[:15].sum())  # below the feasible point y[:15] = 1


def test_7_deadline_api():
    d = Deadline.after(0.2)
    assert 0 < d.remaining() <= 0.2 and not d.expired()
    assert d.clip(None) <= 0.2 and d.clip(0.05) == 0.05
    assert Deadline.after(None).remaining() is None and Deadline().clip(3.0) == 3.0
    with pytest.raises(RecoptError):
        Deadline.after(float("nan"))
    with deadline_scope(d):
        assert current_deadline() is d
        with deadline_scope(Deadline.after(100)):  # the tighter one stays current
            assert current_deadline() is d
    assert current_deadline().at is None
    with deadline_scope(Deadline(time.time() - 1)):  # expired: solves stop at once
        import pyomo.environ as pyo

        m = pyo.ConcreteModel()
        m.x = pyo.Var(bounds=(0, 1))
        m.o = pyo.Objective(expr=m.x)
        assert solve_pyomo(m).status == Status.TIME_LIMIT


# =========================================================================== fuzzing
_FUZZ = settings(max_examples=15, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])

_cell = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                  st.sampled_from([0.0, 1e-12, 1e13, 1e16, -1.0]))


@_FUZZ
@given(data=st.data())
def test_fuzz_make_instance_is_an_error_or_right(data):
    """make_instance on random shapes, values and label orders: a RecoptError, or an
    instance whose every value sits under its label (never a traceback)."""
    T = data.draw(st.integers(1, 4))
    U = data.draw(st.integers(1, 4))
    cons = np.array(data.draw(st.lists(_cell, min_size=T * U, max_size=T * U))).reshape(T, U)
    prod = np.abs(np.random.default_rng(T * 10 + U).uniform(0, 2, (T, U)))
    names = [f"u{i}" for i in range(U)]
    order = data.draw(st.permutations(range(U)))
    times = pd.date_range("2024-01-01", periods=T, freq="h")
    c = _labelled(cons, names, times)
    p = _labelled(prod, names, times).isel(member=list(order))
    step = data.draw(st.sampled_from([None, 1.0, 0.25, float("inf"), float("nan"), -1.0]))
    try:
        ds = make_instance(c, p, **PRICES,
                           **({} if step is None else {"time_step_hours": step}))
    except RecoptError:
        return
    assert np.isfinite(cons).all() and (cons >= 0).all() and (cons <= 1e14).all()
    for i, n in enumerate(names):
        assert np.array_equal(ds["consumption"].sel(member=n).values.ravel(), cons[:, i])
        assert np.array_equal(ds["production"].sel(member=n).values.ravel(), prod[:, i])


@_FUZZ
@given(flag=st.sampled_from(["--mip-gap", "--threads", "--time-limit", "--workers"]),
       text=st.one_of(st.sampled_from(["nan", "-inf", "inf", "-1", "0", "1e-9", "1e400",
                                       "3", "2.5", "", "x", "-0"]),
                      st.floats(allow_nan=True, allow_infinity=True).map(repr),
                      st.integers(-5, 10**12).map(str)))
def test_fuzz_cli_numbers_are_refused_or_valid(flag, text):
    """Every value of a number flag is a usage error (exit 2) or a valid number."""
    try:
        args = build_parser().parse_args([VILLENA, "--model", "LP1", flag, text])
    except SystemExit as exc:
        assert exc.code == 2
        return
    value = getattr(args, flag[2:].replace("-", "_"))
    assert math.isfinite(value)
    if flag in ("--threads", "--workers"):
        assert isinstance(value, int) and value >= 1
    elif flag == "--mip-gap":
        assert value >= 0
    else:
        assert value > 0


@_FUZZ
@given(data=st.data())
def test_fuzz_validate_after_corruption(data, tmp_path_factory):
    """A saved instance with one value corrupted: loading is a RecoptError or the
    value, never a traceback."""
    inst = make_instance(np.ones((3, 2)), np.full((3, 2), 0.5), **PRICES)
    var = data.draw(st.sampled_from(["consumption", "production", "price_grid_buy"]))
    value = data.draw(_cell)
    bad = inst.copy(deep=True)
    arr = np.broadcast_to(bad[var].values, bad[var].shape).copy()
    arr.flat[0] = value
    bad[var] = (bad[var].dims, arr, bad[var].attrs)
    path = tmp_path_factory.mktemp("v") / "x.nc"
    try:
        save(bad, path)
        back = load(path)
    except RecoptError:
        return
    assert float(back[var].values.flat[0]) == value


@pytest.mark.slow
@pytest.mark.parametrize("test", [test_fuzz_make_instance_is_an_error_or_right,
                                  test_fuzz_cli_numbers_are_refused_or_valid])
def test_fuzz_more_examples(test):
    """The fuzz tests above with 400 examples each (slow)."""
    inner = test.hypothesis.inner_test
    strategies = test.hypothesis._given_kwargs if hasattr(test.hypothesis,
                                                          "_given_kwargs") else None
    if strategies is None:
        pytest.skip("this hypothesis version does not expose the given strategies")
    settings(max_examples=400, deadline=None, derandomize=False,
             suppress_health_check=[HealthCheck.too_slow])(given(**strategies)(inner))()


# =========================================================================== class 1 (slow)
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str):
    t0 = time.time()
    while time.time() - t0 < timeout:
        out = predicate()
        if out:
            return out
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_1_lost_dask_worker_costs_only_its_running_job(tmp_path):
    """(1) A real scheduler and two ``dask worker`` processes on 127.0.0.1; one worker
    is killed mid-run. Before: exit 0 with 6 of 9 records ``crashed`` (the scattered
    instance lived on one worker) and a resume said "0 to run". Now every job ends
    with a real record (the lost one resubmitted), none is "the Dask task failed"."""
    from distributed import Client

    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bindir = Path(sys.executable).parent
    dask = str(bindir / "dask") if (bindir / "dask").exists() else "dask"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        with Client(addr, timeout=60) as client:
            for _ in range(2):
                procs.append(subprocess.Popen(
                    [dask, "worker", addr, "--nthreads", "1", "--nworkers", "1",
                     "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            _wait_for(lambda: len(client.scheduler_info()["workers"]) == 2, 120, "workers")
        suite = _suite(tmp_path, """
            [suite]
            name = "lost"
            warmup = false
            [[instances]]
            generator = "synthetic"
            grid = { n_members = [3, 4, 5] }
            params = { n_steps = 48, step_hours = 1.0 }
            replicates = 3
            [[models]]
            name = "LP1"
            """)
        store = tmp_path / "store"
        runner = subprocess.Popen(
            [sys.executable, "-m", "recopt.bench", "run", str(suite), "--store", str(store),
             "--scheduler", addr, "--no-progress"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        records = store / "records"
        _wait_for(lambda: records.is_dir() and len(list(records.glob("*.json"))) >= 2, 300,
                  "the first records")
        procs[1].kill()  # one worker process dies mid-run (SIGKILL)
        out, err = runner.communicate(timeout=600)
        assert runner.returncode == 0, err[-3000:]
        summary = json.loads(out)
        assert summary["jobs"] == 9 and summary["lost"] == []
        recs = Store(store).records()
        assert len(recs) == 9
        assert all(r["status"] == "optimal" for r in recs), [r["message"] for r in recs]
        _, _, todo = plan(suite, store)
        assert todo == []
    finally:
        for p in procs[::-1]:
            p.kill()
            p.wait()


@pytest.mark.slow
def test_6_two_runners_on_one_store_run_each_job_once(tmp_path):
    """(6) Two runners started together on one store: each job is run by one of them
    (the claims), every job ends with one record."""
    suite = _suite(tmp_path, """
        [suite]
        name = "two"
        warmup = false
        [[instances]]
        generator = "synthetic"
        grid = { n_members = [3, 4] }
        params = { n_steps = 24, step_hours = 1.0 }
        replicates = 3
        [[models]]
        name = "LP1"
        """)
    store = tmp_path / "store"
    plan(suite, store)  # the instances are written once, before the race
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "recopt.bench", "run", str(suite), "--store", str(store),
           "--workers", "1", "--no-progress"]
    runners = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outs = [r.communicate(timeout=600) for r in runners]
    summaries = [json.loads(o) for o, _ in outs]
    assert sum(s["ran"] for s in summaries) == 6, summaries
    recs = Store(store).records()
    assert len(recs) == 6
    assert len({r["runner"]["pid"] for r in recs}) >= 1
