"""``python -m recopt.generate``: files, replicates, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recopt.cli.generate import main, output_path
from recopt.data import instance_hash, load
from recopt.generate import chasseray as ch


def test_single_instance_matches_the_api(tmp_path, capsys):
    out = tmp_path / "x.nc"
    rc = main(["--preset", "reference", "--actors", "10", "--days", "2", "--seed", "3",
               "-o", str(out)])
    assert rc == 0
    ds = load(out)
    assert instance_hash(ds) == instance_hash(
        ch.generate("reference", actors=10, days=2, seed=3))
    assert "10 actors x 48 steps" in capsys.readouterr().out


def test_replicates_one_file_per_seed(tmp_path):
    rc = main(["--preset", "10_act_1_d", "--replicates", "3", "--seed", "5",
               "--placement", "uniform", "--set", "tilt=45", "--set",
               'mix={"household": 0.5, "pro1": 0.3, "pro2": 0.2}', "-q",
               "-o", str(tmp_path) + "/"])
    assert rc == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["10_act_1_d_s5.nc", "10_act_1_d_s6.nc", "10_act_1_d_s7.nc"]
    for seed in (5, 6, 7):
        ds = load(tmp_path / f"10_act_1_d_s{seed}.nc")
        assert int(ds.attrs["generator_seed"]) == seed
        s = ch.Settings.from_json(ds.attrs["generator_settings"])
        assert s.tilt == 45 and s.mix == {"household": 0.5, "pro1": 0.3, "pro2": 0.2}
        assert s.placement == "uniform"
        assert instance_hash(ch.regenerate(ds)) == instance_hash(ds)


def test_output_naming():
    assert output_path("a/x.nc", "p", 4, 1).as_posix() == "a/x.nc"
    assert output_path("a/x.nc", "p", 4, 3).as_posix() == "a/x_s4.nc"
    assert output_path("r_{preset}_{seed:03d}.nc", "ref", 4, 3).as_posix() == "r_ref_004.nc"
    assert output_path(None, "ref", 2, 1).as_posix() == "ref_s2.nc"


@pytest.mark.parametrize("argv", [
    ["--preset", "nope"],
    ["--actors", "7"],
    ["--set", "colour=1"],
    ["--replicates", "0"],
])
def test_bad_input_exit_code_2(argv, tmp_path, capsys):
    try:
        code = main([*argv, "-o", str(tmp_path / "x.nc")])
    except SystemExit as exc:  # a checked number flag: argparse's usage error
        code = exc.code
    assert code == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()


def test_list_presets_and_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "recopt.generate", "--list-presets"],
                          capture_output=True, text=True, check=True)
    for name in ch.PRESETS:
        assert name in proc.stdout
    assert "735" in proc.stdout and "8650" in proc.stdout


def test_history_bootstrap_equals_the_api(tmp_path, capsys):
    """--history FILE: the CLI writes exactly seasonal_block_bootstrap(load(FILE), N, seed)."""
    from recopt.data import instance_hash, load, save
    from recopt.generate.bootstrap import seasonal_block_bootstrap
    from recopt.generate.synthetic import synthetic_community

    hist = synthetic_community(3, 24 * (365 * 3 + 1), step_hours=1.0, start="2018-12-01",
                               seed=2)
    src = tmp_path / "history.nc"
    save(hist, src)
    out = tmp_path / "boot.nc"
    assert main(["--history", str(src), "--scenarios", "7", "--seed", "4", "-o", str(out)]) == 0
    got = load(out)
    want = seasonal_block_bootstrap(load(src), 7, seed=4)
    assert got.sizes["scenario"] == 7 and got.sizes["time"] == 365 * 24
    assert instance_hash(got) == instance_hash(want)
    assert "bootstrap years" in capsys.readouterr().out


def test_history_bootstrap_bad_file_is_bad_input(tmp_path, capsys):
    assert main(["--history", str(tmp_path / "missing.nc"), "--scenarios", "2",
                 "-o", str(tmp_path / "x.nc")]) == 2
    assert "missing.nc" in capsys.readouterr().err
