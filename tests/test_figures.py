"""The project's figures: style, sizes that do not grow with the data, what is drawn.

Figures are rendered to files (``RECOPT_FIGURES_DIR=/some/dir`` keeps a copy of each
to look at) for 1, 14 and 100 members and for one and many scenarios, on small
horizons so that the suite stays fast.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct

import numpy as np
import pandas as pd
import pytest

from recopt.cli.solve import main as solve_main
from recopt.data.instance import make_instance
from recopt.errors import ModelError
from recopt.keys.evaluate import evaluate_keys
from recopt.metrics import plots, style
from recopt.metrics.figures import convergence_figure, iteration_log, result_figures
from recopt.solve import solve

KEEP = os.environ.get("RECOPT_FIGURES_DIR")


def png_size(path) -> tuple[int, int]:
    """Width and height of a PNG from its IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def keep(path):
    if KEEP:
        os.makedirs(KEEP, exist_ok=True)
        shutil.copy(path, os.path.join(KEEP, path.name))
    return path


def community(u: int, s: int, t: int = 24, seed: int = 0):
    """``u`` members (a quarter of them PV producers), ``s`` scenarios, ``t`` 15-min steps."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2023-06-01 06:00", periods=t, freq="15min")
    hour = np.asarray(time.hour + time.minute / 60)
    sun = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None)
    c = rng.uniform(0.05, 0.4, (s, t, u))
    p = np.zeros((s, t, u))
    n_pv = max(1, u // 4)
    p[:, :, :n_pv] = sun[None, :, None] * rng.uniform(0.2, 0.8, (s, t, n_pv))
    return make_instance(c, p, price_grid_buy=0.25, price_grid_sell=0.05,
                         price_community_buy=0.15, price_community_sell=0.1, time=time,
                         time_step_hours=0.25)


def key_results(u: int, s: int):
    ds = evaluate_keys(community(u, s), ["ES", "PR", "HEP"], co2_intensity=250.0)
    return {str(k): ds.sel(key=k, drop=True) for k in ds["key"].values}


# --------------------------------------------------------------------------- the style
def test_colours_are_fixed_per_name_and_stable():
    assert style.colour_of("LP1") == style.COLOURS["LP1"]
    assert style.colour_of("LP3-proportional") == style.COLOURS["LP3"]  # a label of LP3
    assert style.colour_of("LP1 (highs)") == style.COLOURS["LP1"]
    assert style.colour_of("some key") == style.colour_of("some key")  # hashed, stable
    models = ["LP1", "LP2", "LP3", "KoR8", "KoR9", "KoR10", "SLCpct", "SLExt", "MLCpct",
              "MLCol", "MLColExt"]
    assert len({style.colour_of(m) for m in models}) == len(models)  # never two models alike
    picked = style.colours(["ES-base", "ES-bess"])  # same head: the second gets a free one
    assert picked["ES-base"] != picked["ES-bess"]


def test_axis_labels_spell_units():
    assert style.axis_label("wall time", "s") == "wall time (seconds)"
    assert style.axis_label("bill_saving", "EUR") == "bill saving (euros)"
    assert style.axis_label("self_sufficiency", "%") == "self-sufficiency rate (percent)"
    assert style.unit_words("kWh") == "kilowatt-hours"
    assert style.unit_words("EUR/kWh") == "euros per kilowatt-hour"


# --------------------------------------------------------------------------- keys
@pytest.mark.parametrize("scenarios", [1, 12])
def test_key_figures_keep_their_size_for_1_14_100_members(tmp_path, scenarios):
    sizes = set()
    for u in (1, 14, 100):
        res = key_results(u, scenarios)
        png = keep(plots.member_figure(res, tmp_path / f"members_{u}m_{scenarios}s.png"))
        sizes.add(png_size(png))
        if u == 14:  # one panel per metric: its size does not depend on the members
            png = keep(plots.key_comparison(res, tmp_path / f"keys_{u}m_{scenarios}s.png"))
            assert png_size(png) == tuple(int(v * style.DPI) for v in style.SIZES["grid"])
        if u == 100 and scenarios > 1:
            png = keep(plots.bands(res, tmp_path / f"bands_{u}m_{scenarios}s.png"))
            assert png_size(png) == tuple(int(v * style.DPI) for v in style.SIZES["grid"])
        elif u == 100:
            with pytest.raises(ModelError, match="one scenario"):
                plots.bands(res, tmp_path / "no_band.png")
    # the same pixels whatever the number of members
    assert sizes == {tuple(int(v * style.DPI) for v in style.SIZES["tall"])}


def test_key_comparison_prints_the_values(tmp_path):
    """The dot plot carries every key's mean as text (real values, not a normalised radar)."""
    from matplotlib.figure import Figure

    res = key_results(14, 1)
    captured = {}
    original = Figure.savefig

    def grab(self, *a, **k):
        captured["texts"] = [t.get_text() for ax in self.axes for t in ax.texts]
        return original(self, *a, **k)

    Figure.savefig = grab
    try:
        plots.key_comparison(res, tmp_path / "k.png")
    finally:
        Figure.savefig = original
    scr = {k: float(v["self_consumption_rate"].mean()) * 100 for k, v in res.items()}
    for value in scr.values():
        assert plots.fmt_value(value, "%") in captured["texts"]


# --------------------------------------------------------------------------- files
@pytest.mark.vector_copies
def test_a_pdf_is_written_beside_each_png_by_default(tmp_path, monkeypatch):
    res = key_results(3, 1)
    png = plots.key_comparison(res, tmp_path / "keys.png")
    assert png.with_suffix(".pdf").stat().st_size > 1000
    assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    monkeypatch.setenv(style.VECTOR_ENV, "svg")
    png = plots.key_comparison(res, tmp_path / "svg" / "keys.png")
    assert b"<svg" in png.with_suffix(".svg").read_bytes()[:2000]
    monkeypatch.setenv(style.VECTOR_ENV, "none")
    png = plots.key_comparison(res, tmp_path / "none" / "keys.png")
    assert sorted(p.name for p in png.parent.iterdir()) == ["keys.png"]
    monkeypatch.setenv(style.VECTOR_ENV, "eps")
    with pytest.raises(ValueError, match="RECOPT_FIGURE_VECTOR='eps'"):
        plots.key_comparison(res, tmp_path / "eps" / "keys.png")


# --------------------------------------------------------------------------- results
@pytest.mark.vector_copies
def test_solve_plot_draws_the_loop_map_and_the_convergence(loop_instance, tmp_path, capsys):
    inst = loop_instance(3, n=7, S=2, T=5)
    path = tmp_path / "inst.nc"
    inst.to_netcdf(path)
    out = tmp_path / "figs"
    code = solve_main([str(path), "--model", "MLCol", "--option", "enumeration=generate",
                       "--plot", str(out)])
    assert code in (0, 3)  # optimal, or a design with a gap left to the bound
    text = capsys.readouterr().out
    assert "figures" in text and "MLCol_loops.png" in text
    for name in ("MLCol_loops", "MLCol_convergence"):
        png = keep(out / f"{name}.png")
        assert png.stat().st_size > 10_000 and (out / f"{name}.pdf").is_file()
    assert png_size(out / "MLCol_loops.png") == tuple(int(v * style.DPI)
                                                       for v in style.SIZES["map"])


def test_loop_map_keeps_its_size_for_7_and_100_actors(loop_instance, tmp_path):
    """The map of a big community: same size, 12 loops (the legend lists 10 and sums the
    rest), no names beyond MAX_NAMED_ACTORS."""
    import xarray as xr

    from recopt.metrics.loops import plot_loops

    small = loop_instance(3, n=7, S=1, T=3)
    r_small = solve(small, "MLCpct")
    rng = np.random.default_rng(1)
    n, k = 100, 12
    big = make_instance(rng.uniform(0, 2, (1, 3, n)), rng.uniform(0, 3, (1, 3, n)),
                        price_grid_buy=0.2, price_grid_sell=0.05, price_community_buy=0.1,
                        price_community_sell=0.1, installed_power=rng.uniform(0, 9, n),
                        x_km=rng.uniform(0, 10, n), y_km=rng.uniform(0, 10, n),
                        attrs={"max_distance_km": 2.0, "max_loop_power_kw": 100.0})
    member = rng.integers(-1, k, n)  # -1: in no loop
    membership = xr.DataArray((member[:, None] == np.arange(k)[None, :]).astype(int),
                              dims=("member", "loop"),
                              coords={"member": big["member"].values,
                                      "loop": [f"loop{j + 1}" for j in range(k)]})
    r_big = xr.Dataset({"membership": membership}, attrs={"model": "MLCol"})
    a = keep(plot_loops(small, r_small, tmp_path / "map_7.png"))
    b = keep(plot_loops(big, r_big, tmp_path / "map_100.png", disks="loops"))
    assert png_size(a) == png_size(b) == tuple(int(v * style.DPI) for v in style.SIZES["map"])


def test_benders_convergence_reads_the_iteration_log(loop_instance, tmp_path):
    inst = loop_instance(5, n=6, S=1, T=4)
    r = solve(inst, "SLExt")
    algo, it, lo, up = iteration_log(r)
    assert algo == "Benders" and len(it) == r.attrs["benders_iterations"] + int(it[0] == 0)
    assert np.all(np.diff(lo[np.isfinite(lo)]) >= -1e-9)  # the master's bound only rises
    assert np.all(np.diff(up[np.isfinite(up)]) <= 1e-9)  # the incumbent only improves
    paths = result_figures(inst, r, tmp_path)
    assert {p.name for p in paths} == {"SLExt_loops.png", "SLExt_convergence.png"}
    keep(tmp_path / "SLExt_convergence.png")
    lp = solve(community(3, 1, t=4), "LP1")
    assert iteration_log(lp) is None
    with pytest.raises(ModelError, match="no Benders or column-generation"):
        convergence_figure(lp, tmp_path / "none.png")


# --------------------------------------------------------------------------- progress
def test_progress_logs_lines_off_a_terminal(caplog):
    from recopt.progress import Progress, track

    with caplog.at_level(logging.INFO, logger="recopt"):
        items = list(track(range(5), "demo loop", "steps", bar=False, interval=0.0))
    assert items == list(range(5))
    lines = [r.getMessage() for r in caplog.records if r.name == "recopt.progress"]
    assert lines and lines[-1].startswith("demo loop: 5/5 steps (100 %)")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recopt"):
        p = Progress(3, "silent", enabled=False, bar=False, interval=0.0)
        p.update(3)
        p.close()
    assert not [r for r in caplog.records if r.name == "recopt.progress"]


def test_progress_respects_a_quiet_logger(caplog):
    from recopt.progress import Progress

    logger = logging.getLogger("recopt")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        assert not Progress(3, "q", bar=False).enabled
    finally:
        logger.setLevel(old)


def test_time_blocks_report_progress(caplog, monkeypatch):
    """A separable model's blocks go through the one progress reporter (log lines here:
    the test's stderr is not a terminal), one step per block."""
    from recopt import progress as progress_module

    monkeypatch.setattr(progress_module, "LOG_INTERVAL", 0.0)
    inst = community(6, 1, t=96)
    with caplog.at_level(logging.INFO, logger="recopt"):
        r = solve(inst, "LP1", workers=1, block_steps=24)
    assert r.attrs["blocks"] == 4
    lines = [m.getMessage() for m in caplog.records if m.name == "recopt.progress"]
    assert [line.split(",")[0] for line in lines[:4]] == [
        f"LP1 blocks: {k}/4 jobs ({25 * k} %)" for k in range(1, 5)]


# --------------------------------------------------------------------------- bench report
def _villena_store(root):
    """A store with fake LP1-LP3 records at two de Villena sizes, the villena suite (its
    published Table 6) and a loop suite whose compare pair is MLCpct / MLCol."""
    from pathlib import Path

    from recopt.bench.record import machine_info
    from recopt.bench.store import Store, write_json_atomic
    from recopt.bench.suite import load_suite

    suite = load_suite(Path(__file__).resolve().parents[1] / "benchmarks" / "suites"
                       / "villena_table6.toml")
    store = Store(root)
    write_json_atomic(root / "suites" / "villena.json", {**suite.to_json(), "jobs": 18})
    write_json_atomic(root / "suites" / "loops.json",
                      {"name": "loops", "description": "compact against decomposed",
                       "compare": [["MLCpct", "MLCol"]], "jobs": 4})
    machine = {**machine_info(), "loadavg": [1.5, 1.0, 1.0]}
    for label, f in (("LP1", 1.0), ("LP2", 1.1), ("LP3", 1.6)):
        for steps in (1440, 2880):
            for members in (10, 50):
                for rep in range(3):
                    w = 1e-4 * steps * members * f * (1 + 0.05 * rep)
                    h = f"syn-{members}-{steps}"
                    store.write({
                        "job_id": f"{label}-{h}-{rep}", "suite": "villena-table6",
                        "model": label, "model_label": label, "solver": "highs",
                        "status": "optimal", "instance_hash": h, "instance_label": h,
                        "repetition": rep, "objective": 1.0, "bound": 1.0, "gap": 0.0,
                        "instance": {"members": members, "steps": steps, "scenarios": 1,
                                     "horizon_days": steps / 96, "step_hours": 0.25},
                        "times": {"wall": w, "solve": w / 3, "build": w / 2},
                        "time_limit": 900.0, "timeout": 1000.0, "peak_rss_mib": 200.0,
                        "machine": machine})
    for label, w in (("MLCpct", 5.0), ("MLCol", 2.0)):
        for seed in range(2):
            h = f"loops-{seed}"
            store.write({
                "job_id": f"{label}-{h}", "suite": "loops", "model": label,
                "model_label": label, "solver": "highs", "status": "optimal",
                "instance_hash": h, "instance_label": h, "repetition": 0, "objective": 1.0,
                "bound": 1.0, "gap": 0.0,
                "instance": {"members": 10, "steps": 168, "scenarios": 1,
                             "horizon_days": 7.0, "step_hours": 1.0},
                "times": {"wall": w + seed, "solve": w, "build": 0.1}, "time_limit": 60.0,
                "timeout": 100.0, "peak_rss_mib": 150.0, "machine": machine})
    return store


@pytest.fixture(scope="module")
def villena_report(tmp_path_factory):
    """(store, report directory) of :func:`_villena_store`, reported once."""
    from recopt.bench.report import report

    root = tmp_path_factory.mktemp("villena-store")
    store = _villena_store(root)
    report(root)
    return store, root / "report"


def test_report_is_self_contained_tidy_and_quotes_the_paper(villena_report):
    from html.parser import HTMLParser

    from recopt.bench.report import problem_groups, records_frame

    store, out = villena_report
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.imgs, self.refs, self.styles = [], [], 0

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "img":
                self.imgs.append(a.get("src", ""))
            if tag in ("link", "script", "a", "iframe", "object", "source"):
                self.refs.append((tag, a))
            if tag == "style":
                self.styles += 1

    p = Links()
    p.feed(page)
    assert len(p.imgs) >= 3 and all(s.startswith("data:image/png;base64,") for s in p.imgs)
    assert not p.refs and p.styles == 1  # no external sheet, script or link; CSS inline
    assert "http" not in page.replace("http-equiv", "")
    assert "not drawn" not in page and "not drawn" not in md  # no internal notes
    # the suites' descriptions and the machine line
    assert "de Villena et al. 2022 Table 6 sizes" in page and "compact against decomposed" in md
    assert "logical CPUs" in md and "GiB" in md and "Python" in md and "highspy" in md
    assert "load average over the jobs 1.50 to 1.50" in md
    # tidy CSV: numbers only, one column per statistic, the paper's times and the ratio
    t = pd.read_csv(out / "summary.csv")
    text_cols = {"model", "solver"}
    for c in t.columns:
        if c not in text_cols:
            assert pd.api.types.is_numeric_dtype(t[c]), c
    assert {"wall_median", "wall_min", "wall_max", "wall_n", "n_optimal",
            "published_build_s", "published_solve_s", "build_ratio", "solve_ratio"} <= set(t)
    row = t[(t["model"] == "LP1") & (t["members"] == 10) & (t["steps"] == 1440)].iloc[0]
    assert row["published_solve_s"] == 5.96 and row["published_build_s"] == 5.01
    assert row["solve_ratio"] == pytest.approx(row["solve_median"] / 5.96)
    assert row["wall_n"] == 3
    assert "Published figures" in md and "Table 6" in md
    # performance profiles only within one problem: MLCpct with MLCol, never LP1 with LP2
    groups = problem_groups(records_frame(store), [("MLCpct", "MLCol")])
    assert groups == [[("MLCol", "highs"), ("MLCpct", "highs")]]
    assert (out / "performance_profile.png").is_file()
    for png in ("time_vs_horizon.png", "time_vs_actors.png"):
        keep(out / png)
        assert png_size(out / png) == tuple(int(v * style.DPI) for v in style.SIZES["wide"])


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="no chromium binary on this machine (apt-get install chromium "
                           "to run the headless-browser check of the HTML report)")
def test_report_opens_in_a_headless_browser(villena_report, tmp_path):
    """chromium renders report.html with its images (no network: they are data URIs)."""
    import subprocess
    import tempfile

    from matplotlib.image import imread

    page = villena_report[1] / "report.html"
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
             "--window-size=1200,3000", f"--screenshot={shot}", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    keep(shot)
    img = imread(shot)
    rgb = img[..., :3]
    # the page shows figures: many pixels that are neither white nor grey text
    colourful = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.2
    assert colourful.mean() > 0.005, colourful.mean()
