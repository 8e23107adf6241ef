"""``python -m recopt.solve``: summary, Result file, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recopt.cli.solve import main
from recopt.solve import EXIT_CODES, Status, load_result

INSTANCES = Path(__file__).resolve().parents[1] / "instances"
VILLENA = str(INSTANCES / "villena_test_case_1.nc")


def test_python_dash_m_solves_and_writes_the_result(tmp_path):
    out = tmp_path / "r.nc"
    proc = subprocess.run(
        [sys.executable, "-m", "recopt.solve", VILLENA, "--model", "LP1", "--output", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "status     optimal" in proc.stdout
    assert "collective" in proc.stdout
    r = load_result(out)
    assert r.attrs["status"] == "optimal"
    assert r.attrs["model"] == "LP1"
    assert len(r.attrs["instance_hash"]) == 64
    assert {"key", "community_intake", "local_sales", "bill", "self_sufficiency"} <= set(r)


def test_list_models(capsys):
    assert main(["--list-models"]) == 0
    text = capsys.readouterr().out
    for name in ("LP1", "LP2", "LP3"):
        assert name in text
    assert "min_ssr" in text and "models/LP1-LP3.md" in text


def test_infeasible_lp2_exit_code_and_message(capsys):
    code = main([VILLENA, "--model", "LP2", "--option", "min_ssr=0.99"])
    assert code == EXIT_CODES[Status.INFEASIBLE] == 4
    assert "highest uniform minimum SSR" in capsys.readouterr().out


def test_options_reach_the_model(capsys):
    code = main([VILLENA, "--model", "LP3", "--option", "tolerance=0.1",
                 "--option", "initial_keys=proportional"])
    assert code == 0
    assert "LP3" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["/no/such/file.nc", "--model", "LP1"], "/no/such/file.nc"),
        ([VILLENA, "--model", "LP42"], "unknown model"),
        ([VILLENA, "--model", "LP1", "--option", "tolerance=0.1"], "no option tolerance"),
        ([VILLENA, "--model", "LP3", "--option", "tolerance=abc"], "tolerance"),
        ([VILLENA], "--model"),
    ],
)
def test_bad_input_exits_2_and_names_the_culprit(argv, fragment, capsys):
    assert main(argv) == EXIT_CODES[Status.BAD_INPUT] == 2
    assert fragment in capsys.readouterr().err


def test_bad_instance_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.nc"
    bad.write_text("not a netcdf file")
    assert main([str(bad), "--model", "LP1"]) == 2
    assert "bad.nc" in capsys.readouterr().err


def test_missing_solver_exit_code(capsys):
    code = main([VILLENA, "--model", "LP1", "--solver", "cplex"])  # known, not installed
    assert code == EXIT_CODES[Status.SOLVER_UNAVAILABLE] == 7
    out = capsys.readouterr()
    assert "cplex" in out.out and "Traceback" not in out.err + out.out


def test_exit_codes_are_distinct():
    assert len(set(EXIT_CODES.values())) == len(Status)


def test_verbose_captures_the_solver_log_into_logging(caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="recopt"):
        assert main([VILLENA, "--model", "LP1", "-vv"]) == 0
    assert any("highs:" in r.getMessage() for r in caplog.records)


def test_rejected_solver_option_is_bad_input(capsys):
    code = main([VILLENA, "--model", "LP1", "--solver-option", "no_such_highs_option=1"])
    assert code == 2
    assert "no_such_highs_option" in capsys.readouterr().err


def test_result_round_trips_through_netcdf(tmp_path):
    from recopt.solve import save_result, solve

    r = solve(VILLENA, "LP2", min_ssr=0.3)
    save_result(r, tmp_path / "r.nc")
    back = load_result(tmp_path / "r.nc")
    for name in r.data_vars:
        np.testing.assert_array_equal(back[name].values, r[name].values)
    for key in ("status", "objective", "instance_hash", "options", "solver_version"):
        assert back.attrs[key] == r.attrs[key]


def test_stdout_carries_no_solver_banner():
    """HiGHS >= 1.12 prints a banner on the C-level stdout at its first object; the
    CLI's stdout must be ours alone (the bench runner's is parsed as JSON)."""
    inst = Path(__file__).resolve().parents[1] / "instances" / "villena_test_case_1.nc"
    proc = subprocess.run([sys.executable, "-m", "recopt.solve", str(inst), "--model", "LP1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Running HiGHS" not in proc.stdout
    assert proc.stdout.startswith("model")
