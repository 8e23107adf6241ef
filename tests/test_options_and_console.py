"""Options are typed once (one boolean / enum parser for every model and the CLI), and
the ``recopt`` console script dispatches to the same tools as ``python -m``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recopt.cli import COMMANDS
from recopt.cli import main as recopt_main
from recopt.errors import ModelError
from recopt.models import all_models, get
from recopt.models.options import Option, parse_bool, resolve_options


@pytest.mark.parametrize("text, value", [
    ("1", True), ("true", True), ("Yes", True), ("ON", True), (" on ", True), (True, True),
    ("0", False), ("false", False), ("No", False), ("off", False), (False, False), (0, False),
])
def test_parse_bool_reads_the_usual_words(text, value):
    assert parse_bool(text) is value


@pytest.mark.parametrize("text", ["nope", "", "2", "maybe", "truee", 2])
def test_parse_bool_refuses_anything_else(text):
    with pytest.raises(ValueError, match="not a yes/no value"):
        parse_bool(text)


@pytest.mark.parametrize("model, option", [("LOGAAS", "carry"), ("SLExt", "pareto"),
                                           ("MLColExt", "reduce"), ("SLCpct", "self_consumption")])
def test_every_boolean_option_reads_the_same_way(model, option):
    spec = get(model)
    assert spec.resolve_options({option: "on"})[option] is True
    assert spec.resolve_options({option: "off"})[option] is False
    with pytest.raises(ModelError, match=f"option {option} of model {model}"):
        spec.resolve_options({option: "nope"})


def test_boolean_options_are_declared_as_bool():
    """No model parses yes/no with its own function (the old carry=on read False)."""
    for spec in all_models():
        for opt in spec.options:
            if isinstance(opt.default, bool):
                assert opt.type is bool, f"{spec.name}.{opt.name}"


def test_enum_and_number_options():
    opts = (Option("method", str, "grid", "", choices=("grid", "ga")),
            Option("rounds", int, 3, ""))
    assert resolve_options(opts, {"rounds": "5"}, "M") == {"method": "grid", "rounds": 5}
    with pytest.raises(ModelError, match="must be one of grid, ga; got 'gaa'"):
        resolve_options(opts, {"method": "gaa"}, "M")
    with pytest.raises(ModelError, match="cannot read 'x'"):
        resolve_options(opts, {"rounds": "x"}, "M")
    with pytest.raises(ModelError, match="has no option colour"):
        resolve_options(opts, {"colour": "red"}, "M")


def test_recopt_console_script_dispatches(capsys):
    assert set(COMMANDS) >= {"solve", "keys", "logaas", "generate", "bench"}
    assert recopt_main(["solve", "--list-models"]) == 0
    assert "LP1" in capsys.readouterr().out
    assert recopt_main(["--help"]) == 0
    assert "generate" in capsys.readouterr().out
    assert recopt_main(["nosuch"]) == 2
    assert "unknown command 'nosuch'" in capsys.readouterr().err


def test_python_dash_m_recopt_runs_the_console_script():
    proc = subprocess.run([sys.executable, "-m", "recopt", "solve", "--list-models"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "MLColExt" in proc.stdout and "LOGAAS" in proc.stdout


def test_run_record_round_trips_through_a_result_file(tmp_path):
    """One typed record: written by write_result, read back from the .nc file."""
    from recopt.data import load
    from recopt.solve import RunRecord, load_result, save_result, solve

    inst = load(Path(__file__).resolve().parents[1] / "instances" / "villena_test_case_1.nc")
    result = solve(inst, "LP1", seed=7)
    save_result(result, tmp_path / "r.nc")
    rec = RunRecord.from_attrs(load_result(tmp_path / "r.nc").attrs)
    assert rec == RunRecord.from_attrs(result.attrs)
    assert rec.status.value == "optimal" and rec.has_solution is True
    assert rec.model == "LP1" and rec.seed == 7 and rec.time_limit is None
    assert rec.options == {"producer_sales": "free", "formulation": "projected",
                           "tie_break": "none", "tie_break_tolerance": 1e-9,
                           "sharing": "none", "shapley_method": "auto", "sharing_seed": 0,
                           "sharing_tolerance": 0.01}
    assert rec.solver_options == {"presolve": "off"}  # LP1's Tuning(presolve=False) on HiGHS
    assert rec.objective == pytest.approx(rec.bound) and rec.gap == 0.0
    assert len(rec.instance_hash) == 64 and rec.n_variables > 0


def test_tuning_is_translated_by_the_adapter_of_the_solver_used():
    from recopt.models.options import Tuning
    from recopt.solvers import tuned_options

    assert tuned_options("highs", Tuning(presolve=False)) == {"presolve": "off"}
    assert tuned_options("HiGHS", Tuning(lp_method="ipm")) == {"solver": "ipm"}
    assert tuned_options("highs", Tuning()) == {} == tuned_options("highs", None)
    assert tuned_options("gurobi", Tuning(presolve=False)) == {}  # not measured: defaults


def test_every_named_algorithm_and_diagnosis_is_registered():
    """Models point at algorithms by name (no upward import); every name resolves."""
    from recopt.decomp import get_algorithm, get_diagnosis

    named = [s for s in all_models() if s.algorithm or s.diagnosis]
    assert {s.name for s in named} >= {"KoR9", "KoR10", "LOGAAS", "SLExt", "MLColExt", "LP2"}
    for spec in named:
        if spec.algorithm:
            assert callable(get_algorithm(spec.algorithm))
        if spec.diagnosis:
            assert callable(get_diagnosis(spec.diagnosis))
    with pytest.raises(ModelError, match="no algorithm 'nosuch'"):
        get_algorithm("nosuch")
