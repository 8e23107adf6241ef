"""Report on a result store: tables, plots (PNG) and a Markdown + HTML summary.

``python -m recopt.bench report STORE [--out DIR]`` (default ``STORE/report``) writes

``report.md`` / ``report.html``
    what was run (suites, machines, statuses), then per model x solver x size
    (members x steps [x scenarios]): jobs, solved (status ``optimal``), other statuses,
    the median and the min-max of the wall time (the Result's ``wall_seconds``: the
    solve call as a user waits, without the job process's Python start-up), of the
    build and of the solver time, the median and max gap, the median peak memory;
``summary.csv``
    that table; ``records.csv`` one row per job;
``time_vs_horizon.png``, ``time_vs_actors.png``
    median wall and solver time (bars: min-max over repetitions and replicates)
    against the horizon (days) for each model x solver x member count, and against
    the member count for each model x solver x horizon, where a series has two
    points or more;
``compact_vs_decomposed.png``
    per instance, median solver time of the compact model (x) against its
    decomposition (y) for each pair of model labels in the suites' ``[report]
    compare`` (default: SLCpct/SLExt, MLCpct/MLCol, MLCpct/MLColExt when present);
    jobs without an optimal solution are drawn at their time limit, hollow;
``root_gaps.png``
    the root-node gap and the LP-relaxation gap of the optimal jobs (suites with
    ``root_gap = true``, or Results with ``root_bound``/``lp_bound`` attrs; definitions
    in :func:`recopt.bench.job.relaxation`) against the horizon per member count and
    against the member count per horizon;
``performance_profile.png``
    Dolan & Moré (2002) performance profiles of the wall time: for each
    configuration (model label x solver), the share of problems (instances on
    which every configuration of the profile ran) solved to optimality within a
    factor tau of the fastest configuration; unsolved = infinite ratio. One panel
    over all configurations and one per compare pair.

A plot whose data is absent is skipped, and the summary says why.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from recopt.bench.store import Store
from recopt.bench.suite import SuiteError

#: (compact, decomposed) pairs plotted when the suites name none.
DEFAULT_PAIRS = [("SLCpct", "SLExt"), ("MLCpct", "MLCol"), ("MLCpct", "MLColExt")]
SOLVED = "optimal"


def records_frame(store: Store) -> pd.DataFrame:
    """One row per record, with the fields the report uses flattened."""
    rows = []
    for r in store.records():
        inst = r.get("instance") or {}
        times = r.get("times") or {}
        sizes = r.get("sizes") or {}
        rows.append({
            "job_id": r["job_id"], "suite": r.get("suite"), "model": r.get("model"),
            "label": r.get("model_label", r.get("model")), "solver": r.get("solver"),
            "solver_version": r.get("solver_version"), "status": r.get("status"),
            "objective": r.get("objective"), "bound": r.get("bound"), "gap": r.get("gap"),
            "root_gap": r.get("root_gap"), "lp_gap": r.get("lp_gap"),
            "repetition": r.get("repetition"),
            "instance_hash": r.get("instance_hash"), "instance": r.get("instance_label"),
            "members": inst.get("members"), "steps": inst.get("steps"),
            "scenarios": inst.get("scenarios", 1), "horizon_days": inst.get("horizon_days"),
            "seed": inst.get("seed"),
            "build": times.get("build"), "compile": times.get("compile"),
            "solve": times.get("solve"), "extract": times.get("extract"),
            "wall": times.get("wall"), "job": times.get("job"),
            "time_limit": r.get("time_limit"), "timeout": r.get("timeout"),
            "variables": sizes.get("variables"), "integers": sizes.get("integers"),
            "peak_rss_mib": r.get("peak_rss_mib"),
            "host": (r.get("machine") or {}).get("host"),
            "finished_at": r.get("finished_at"),
        })
    df = pd.DataFrame(rows)
    if not df.empty:
        for c in ("objective", "bound", "gap", "root_gap", "lp_gap", "build", "compile", "solve",
                  "extract", "wall", "job", "time_limit", "timeout", "peak_rss_mib",
                  "horizon_days"):
            df[c] = pd.to_numeric(df[c], errors="coerce")
        df["size"] = [_size(m, s, k) for m, s, k in zip(df["members"], df["steps"],
                                                        df["scenarios"], strict=True)]
    return df


def _size(members, steps, scenarios) -> str:
    text = f"{members} x {steps}"
    if scenarios and scenarios != 1:
        text += f" x {scenarios} sc."
    return text


def _fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}"


def _spread(s: pd.Series) -> str:
    s = s.dropna()
    if s.empty:
        return "-"
    if len(s) == 1:
        return _fmt(s.iloc[0])
    return f"{_fmt(s.median())} ({_fmt(s.min())}-{_fmt(s.max())})"


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per label x solver x size: counts and the median (min-max) of times, gaps, memory."""
    out = []
    keys = ["label", "solver", "members", "steps", "scenarios"]
    for key, g in df.groupby(keys, sort=True, dropna=False):
        label, solver, members, steps, scenarios = key
        counts = g["status"].value_counts()
        other = ", ".join(f"{k} {v}" for k, v in counts.items() if k != SOLVED)
        ok = g[g["status"] == SOLVED]
        out.append({
            "model": label, "solver": solver, "size (U x T)": _size(members, steps, scenarios),
            "jobs": len(g), "solved": int(counts.get(SOLVED, 0)), "other": other or "-",
            "wall s": _spread(ok["wall"]), "build s": _spread(ok["build"]),
            "solver s": _spread(ok["solve"]),
            "gap med/max": (f"{_fmt(g['gap'].median())}/{_fmt(g['gap'].max())}"
                            if g["gap"].notna().any() else "-"),
            "peak MiB": _fmt(g["peak_rss_mib"].median(), 4),
        })
    return pd.DataFrame(out)


def _markdown_table(t: pd.DataFrame) -> str:
    if t.empty:
        return "(no data)\n"
    cols = list(t.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in t.iterrows():
        lines.append("| " + " | ".join(str(row[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plots
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series_plot(df, x, group, path, xlabel, title) -> str | None:
    """Median wall and solver time vs ``x`` per series; None if no series has 2 points."""
    ok = df[df["status"] == SOLVED]
    series = []
    for key, g in ok.groupby(["label", "solver", group], sort=True):
        agg = g.groupby(x)[["wall", "solve"]].agg(["median", "min", "max"])
        if len(agg) >= 2:
            series.append((key, agg))
    if not series:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for (label, solver, gval), agg in series:
        name = f"{label} ({solver}), {group}={gval:g}"
        for ax, col in zip(axes, ("wall", "solve"), strict=True):
            med = agg[(col, "median")]
            err = np.vstack([med - agg[(col, "min")], agg[(col, "max")] - med])
            ax.errorbar(agg.index, med, yerr=err, marker="o", capsize=3, label=name)
    for ax, what in zip(axes, ("wall time (solve call)", "solver time"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{what} [s]")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _pairs(store: Store, df: pd.DataFrame) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for s in store.suites():
        pairs.extend((p[0], p[1]) for p in s.get("compare", []))
    pairs = pairs or DEFAULT_PAIRS
    labels = set(df["label"])
    seen, out = set(), []
    for p in pairs:
        if p[0] in labels and p[1] in labels and p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _per_instance(df: pd.DataFrame, label: str, col: str) -> pd.DataFrame:
    g = df[df["label"] == label]
    solved = g["status"] == SOLVED
    cap = g["time_limit"].fillna(g["timeout"])
    t = g[col].where(solved, cap)
    return (pd.DataFrame({"inst": g["instance_hash"], "solver": g["solver"], "t": t,
                          "solved": solved})
            .groupby(["inst", "solver"]).agg(t=("t", "median"), solved=("solved", "all")))


def _compare_plot(df, pairs, path) -> str | None:
    if not pairs:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 4.4), squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs, strict=True):
        ta, tb = _per_instance(df, a, "solve"), _per_instance(df, b, "solve")
        both = ta.add_suffix("_a").join(tb.add_suffix("_b"), how="inner")
        both = both.dropna(subset=["t_a", "t_b"])
        if both.empty:
            ax.set_title(f"{a} vs {b}: no common instance")
            continue
        full = both["solved_a"] & both["solved_b"]
        ax.scatter(both.loc[full, "t_a"], both.loc[full, "t_b"], label="both optimal")
        if (~full).any():
            ax.scatter(both.loc[~full, "t_a"], both.loc[~full, "t_b"], facecolors="none",
                       edgecolors="red", label="not solved (at its limit)")
        lo = max(1e-3, float(np.nanmin(both[["t_a", "t_b"]].to_numpy())) / 2)
        hi = float(np.nanmax(both[["t_a", "t_b"]].to_numpy())) * 2
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"{a} (compact) solver time [s]")
        ax.set_ylabel(f"{b} (decomposed) solver time [s]")
        ax.set_title(f"{a} vs {b} ({len(both)} instances)")
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _root_gap_plot(df, path) -> str | None:
    """Median (min-max) root-node and LP-relaxation gaps of the optimal jobs vs horizon
    (per member count) and vs member count (per horizon)."""
    ok = df[df["status"] == SOLVED]
    rows = [(c, t) for c, t in (("root_gap", "root-node gap"), ("lp_gap", "LP relaxation gap"))
            if ok[c].notna().any()]
    if not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 4.2 * len(rows)), squeeze=False)
    for (col, title), ax_row in zip(rows, axes, strict=True):
        g = ok[ok[col].notna()]
        for ax, x, other, xl in ((ax_row[0], "horizon_days", "members", "horizon [days]"),
                                 (ax_row[1], "members", "horizon_days", "members (actors)")):
            for (label, solver, o), s in g.groupby(["label", "solver", other]):
                agg = s.groupby(x)[col].agg(["median", "min", "max"])
                err = np.vstack([agg["median"] - agg["min"], agg["max"] - agg["median"]])
                ax.errorbar(agg.index, agg["median"], yerr=err, marker="o", capsize=3,
                            label=f"{label} ({solver}), {other}={o:g}")
            ax.set_xlabel(xl)
            ax.set_ylabel(f"{title} (objective - bound) / |objective|")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _config(label, solver) -> str:
    return f"{label} ({solver})"


def performance_profile(df: pd.DataFrame, configs: list[tuple[str, str]] | None = None):
    """Dolan-Moré ratios: DataFrame problems x configurations of t / min t (inf if unsolved).

    ``configs`` are (label, solver) pairs (default: all); columns are named
    ``"label (solver)"``. Problems are the instances on
    which every configuration ran; the time of a configuration on a problem is its median
    wall time over repetitions, infinite unless every repetition was optimal.
    """
    d = df.copy()
    d["config"] = [_config(a, b) for a, b in zip(d["label"], d["solver"], strict=True)]
    if configs is not None:
        d = d[d["config"].isin([_config(a, b) for a, b in configs])]
    t = d.assign(ok=d["status"] == SOLVED).groupby(["instance_hash", "config"]).agg(
        t=("wall", "median"), ok=("ok", "all"))
    t["t"] = t["t"].where(t["ok"], np.inf)
    table = t["t"].unstack("config").dropna()  # instances where every config ran
    if table.empty or table.shape[1] < 2:
        return None
    best = table.min(axis=1)
    ratios = table.div(best.replace(0, np.nan), axis=0).where(np.isfinite(best), np.inf)
    return ratios.fillna(np.inf)


def _profile_plot(df, pairs, path) -> str | None:
    panels = []
    allr = performance_profile(df)
    if allr is not None:
        panels.append(("all configurations", allr))
    for a, b in pairs:
        cf = [c for c in set(zip(df["label"], df["solver"], strict=True)) if c[0] in (a, b)]
        r = performance_profile(df, cf)
        if r is not None and not (allr is not None and set(r.columns) == set(allr.columns)):
            panels.append((f"{a} vs {b}", r))
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, ratios) in zip(axes[0], panels, strict=True):
        finite = ratios.to_numpy()[np.isfinite(ratios.to_numpy())]
        tmax = max(2.0, float(finite.max()) * 1.1) if finite.size else 2.0
        taus = np.logspace(0, np.log2(tmax), 200, base=2.0)
        for cfg in ratios.columns:
            r = ratios[cfg].to_numpy()
            rho = [(r <= tau).mean() for tau in taus]
            ax.step(taus, rho, where="post", label=cfg)
        ax.set_xscale("log", base=2)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("tau (time / best time)")
        ax.set_ylabel("share of problems solved within tau")
        ax.set_title(f"{title} ({len(ratios)} problems)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


# --------------------------------------------------------------------------- the report
def report(store_dir, out=None) -> Path:
    """Write the report of a store; returns the path of ``report.md``."""
    store = Store(store_dir)
    df = records_frame(store)
    if df.empty:
        raise SuiteError(f"no records in {store.root / 'records'}: run a suite first "
                         "(python -m recopt.bench run SUITE.toml --store DIR)")
    out = Path(out) if out else store.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    table = summary_table(df)
    table.to_csv(out / "summary.csv", index=False)
    df.to_csv(out / "records.csv", index=False)
    pairs = _pairs(store, df)

    plots, skipped = [], []
    for fname, make, why in (
        ("time_vs_horizon.png",
         lambda p: _series_plot(df, "horizon_days", "members", p, "horizon [days]",
                                "Time vs horizon"),
         "no model x solver x member count has two horizons solved"),
        ("time_vs_actors.png",
         lambda p: _series_plot(df, "members", "steps", p, "members (actors)",
                                "Time vs number of members"),
         "no model x solver x horizon has two member counts solved"),
        ("compact_vs_decomposed.png", lambda p: _compare_plot(df, pairs, p),
         "no compact/decomposed pair of model labels in the store"),
        ("root_gaps.png", lambda p: _root_gap_plot(df, p), "no record carries a root gap"),
        ("performance_profile.png", lambda p: _profile_plot(df, pairs, p),
         "fewer than two configurations ran on common instances"),
    ):
        path = out / fname
        made = make(path)
        if made:
            plots.append(made)
        else:
            path.unlink(missing_ok=True)
            skipped.append((fname, why))

    statuses = df["status"].value_counts()
    suites = store.suites()
    machines = sorted({h for h in df["host"].dropna()})
    md = [f"# Benchmark report: {store.root}", ""]
    md.append(f"{len(df)} job records; statuses: "
              + ", ".join(f"{k} {v}" for k, v in statuses.items()) + ".")
    for s in suites:
        md.append(f"- suite **{s['name']}** ({s.get('jobs', '?')} jobs): "
                  f"{s.get('description', '')}")
    md.append(f"- machines: {', '.join(machines) or '-'}")
    md += ["", "Times in seconds: median (min-max) over the optimal jobs of each row; "
           "`wall` is the Result's wall_seconds (the solve call), `solver` the time inside "
           "the solver, `build` the Pyomo construction.", "", _markdown_table(table)]
    for p in plots:
        md += [f"![{p}]({p})", ""]
    if skipped:
        md.append("Plots not drawn:")
        md += [f"- {f}: {why}" for f, why in skipped]
    text = "\n".join(md) + "\n"
    (out / "report.md").write_text(text)
    body = [f"<h1>Benchmark report: {html.escape(str(store.root))}</h1>",
            f"<p>{len(df)} job records; statuses: "
            + html.escape(", ".join(f"{k} {v}" for k, v in statuses.items())) + "</p>",
            table.to_html(index=False, border=0)]
    body += [f'<p><img src="{p}" alt="{p}"></p>' for p in plots]
    body += [f"<p>not drawn: {html.escape(f)}: {html.escape(w)}</p>" for f, w in skipped]
    (out / "report.html").write_text("<!doctype html><meta charset='utf-8'><title>recopt "
                                     "benchmark report</title>\n" + "\n".join(body) + "\n")
    return out / "report.md"
