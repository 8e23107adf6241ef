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

VILLENA = str(Path(__file__).resolve().parents[1] / "instances" / "villena_test_case_1.nc")


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


def test_python_dash_m_recopt_solves():
    proc = subprocess.run([sys.executable, "-m", "recopt", "solve", VILLENA, "--model", "LP1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "status     optimal" in proc.stdout
