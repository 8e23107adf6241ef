"""The README's Python example runs as written (from the repository root)."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(capsys):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for code in blocks:
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "optimal" in out


def test_readme_set_up_commands_name_real_things():
    text = (ROOT / "README.md").read_text()
    assert "pip install -e . && python -m recopt.solve instances/villena_test_case_1.nc" in text
    assert "pip install -e '.[test]' && python -m pytest" in text
    assert (ROOT / "instances" / "villena_test_case_1.nc").exists()
