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

A plot whose data is absent is left out (the log says why, at INFO). Every figure is
drawn in the project style (:mod:`recopt.metrics.style`: fixed sizes, one colour per
model label in every figure, units in words, PNG + PDF).

``report.html`` is self-contained (the CSS inline, every figure a ``data:`` URI): it
can be mailed or archived as one file. Both reports give the suites' descriptions, the
machine(s) the jobs ran on (CPU model, cores, memory, load over the jobs, Python,
Pyomo and solver versions, recopt commit: :func:`recopt.bench.record.describe`) and,
when a suite declares the paper's figures (``[report.published]``, e.g.
``benchmarks/suites/villena_table6.toml``: de Villena Table 6), the published times
beside ours with their ratio, also drawn beside our series in the scaling figures.

``summary.csv`` is tidy: one row per model x solver x size, numbers only
(``wall_median``, ``wall_min``, ``wall_max``, ``wall_n``, the same for build, solver
time, gap and peak memory, a count column per status, ``published_*_s`` and
``*_ratio`` = ours / published). Performance profiles are drawn only across
configurations that solve the same problem: a model label with several solvers, and
the labels joined by the suites' ``compare`` pairs (a compact model and its
decomposition); never across different models (LP1, LP2 and LP3 are different
problems).
"""

from __future__ import annotations

import base64
import html
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from recopt.bench.record import describe
from recopt.bench.store import Store
from recopt.bench.suite import PUBLISHED_TIMES, SuiteError
from recopt.metrics.style import colour_of, figure, save, styled

log = logging.getLogger("recopt.bench.report")

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
            "step_hours": inst.get("step_hours"),
            "seed": inst.get("seed"),
            "build": times.get("build"), "compile": times.get("compile"),
            "solve": times.get("solve"), "extract": times.get("extract"),
            "wall": times.get("wall"), "job": times.get("job"),
            "time_limit": r.get("time_limit"), "timeout": r.get("timeout"),
            "variables": sizes.get("variables"), "integers": sizes.get("integers"),
            "peak_rss_mib": r.get("peak_rss_mib"),
            "host": (r.get("machine") or {}).get("host"),
            "load_1min": ((r.get("machine") or {}).get("loadavg") or [math.nan])[0],
            "finished_at": r.get("finished_at"),
        })
    df = pd.DataFrame(rows)
    if not df.empty:
        for c in ("objective", "bound", "gap", "root_gap", "lp_gap", "build", "compile", "solve",
                  "extract", "wall", "job", "time_limit", "timeout", "peak_rss_mib",
                  "horizon_days", "step_hours", "load_1min"):
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


# --------------------------------------------------------------------------- tidy table
#: Numeric columns summarised per row of ``summary.csv`` (over the optimal jobs; the gap
#: over every job with one).
TIDY = (("wall", "wall"), ("build", "build"), ("solve", "solve"), ("peak_rss_mib", "peak_rss_mib"))


def published_frame(suites: list[dict]) -> pd.DataFrame:
    """The suites' ``[report.published]`` rows, one per (label, size): columns label,
    members / steps / scenarios (those quoted), ``published_<time>_s`` and ``source``."""
    rows = []
    for s in suites:
        pub = s.get("published")
        if not pub:
            continue
        for values in pub["rows"]:
            rec = dict(zip(pub["columns"], values, strict=True))
            for label in pub["models"]:
                row = {"label": label, "source": pub["source"]}
                for c, v in rec.items():
                    if c in PUBLISHED_TIMES:
                        row[f"published_{c}"] = v
                    else:
                        row[c] = int(v)
                rows.append(row)
    return pd.DataFrame(rows)


def tidy_summary(df: pd.DataFrame, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per label x solver x size: counts and median / min / max / n of the times, gap
    and memory, numbers only; with ``published``, the paper's times and ours / theirs."""
    out = []
    keys = ["label", "solver", "members", "steps", "scenarios"]
    statuses = sorted(df["status"].dropna().unique())
    for key, g in df.groupby(keys, sort=True, dropna=False):
        row = dict(zip(["model", "solver", "members", "steps", "scenarios"], key, strict=True))
        row["horizon_days"] = g["horizon_days"].median()
        row["jobs"] = len(g)
        for st in statuses:
            row[f"n_{st}"] = int((g["status"] == st).sum())
        ok = g[g["status"] == SOLVED]
        for col, name in TIDY:
            v = ok[col].dropna()
            row[f"{name}_median"] = v.median() if len(v) else math.nan
            row[f"{name}_min"] = v.min() if len(v) else math.nan
            row[f"{name}_max"] = v.max() if len(v) else math.nan
            row[f"{name}_n"] = len(v)
        gap = g["gap"].dropna()
        row["gap_median"] = gap.median() if len(gap) else math.nan
        row["gap_max"] = gap.max() if len(gap) else math.nan
        row["load_1min_median"] = g["load_1min"].median()
        out.append(row)
    t = pd.DataFrame(out)
    if published is not None and not published.empty and not t.empty:
        on = ["model"] + [c for c in ("members", "steps", "scenarios") if c in published]
        pub = published.rename(columns={"label": "model"}).drop(columns=["source"])
        t = t.merge(pub, on=on, how="left")
        for c, ours in PUBLISHED_TIMES.items():
            if f"published_{c}" in t:
                t[f"{ours}_ratio"] = t[f"{ours}_median"] / t[f"published_{c}"]
        if "published_build_s" in t and "published_solve_s" in t:  # the paper's total
            t["wall_vs_published_total_ratio"] = t["wall_median"] / (
                t["published_build_s"] + t["published_solve_s"])
    return t


def _published_table(t: pd.DataFrame) -> pd.DataFrame:
    """The rows of the tidy summary that have published figures, formatted for reading."""
    cols = [c for c in t.columns if c.startswith("published_")]
    if not cols:
        return pd.DataFrame()
    r = t[t[cols].notna().any(axis=1)]
    out = pd.DataFrame({"model": r["model"], "solver": r["solver"],
                        "size (U x T)": [_size(m, s, k) for m, s, k in
                                         zip(r["members"], r["steps"], r["scenarios"],
                                             strict=True)]})
    for c, ours in PUBLISHED_TIMES.items():
        if f"published_{c}" in r:
            what = {"build": "build", "solve": "solver", "wall": "wall"}[ours]
            out[f"{what} s (ours)"] = [_fmt(v) for v in r[f"{ours}_median"]]
            out[f"{what} s (paper)"] = [_fmt(v) for v in r[f"published_{c}"]]
            out[f"{what} ours / paper"] = [_fmt(v, 2) for v in r[f"{ours}_ratio"]]
    return out


# --------------------------------------------------------------------------- plots
#: Short names of the series' group columns in legends (U members, T steps).
SHORT = {"members": "U", "steps": "T", "horizon_days": "days"}
SOLVER_MARKERS = ("o", "s", "^", "D", "v", "P")
SOLVER_LINES = ("-", "--", ":", "-.")


def _solver_style(solvers: list[str]) -> dict[str, tuple[str, str]]:
    return {s: (SOLVER_MARKERS[i % len(SOLVER_MARKERS)], SOLVER_LINES[i % len(SOLVER_LINES)])
            for i, s in enumerate(sorted(solvers))}


def _series_plot(df, x, group, path, xlabel, title, published=None) -> Path | None:
    """Median wall and solver time vs ``x`` per series; None if no series has 2 points.

    A series is a model label x solver x value of ``group``: the colour is the label's,
    the marker the solver's, the line's lightness the group's. Bars: min-max over
    repetitions and replicates. ``published`` rows (the paper's) matching a series'
    label and group are drawn beside it, grey, hollow."""
    ok = df[df["status"] == SOLVED]
    series = []
    for key, g in ok.groupby(["label", "solver", group], sort=True):
        agg = g.groupby(x)[["wall", "solve"]].agg(["median", "min", "max"])
        if len(agg) >= 2:
            series.append((key, agg))
    if not series:
        return None
    sstyle = _solver_style(sorted({k[1] for k, _ in series}))
    groups = sorted({k[2] for k, _ in series})
    shade = {gv: 0.45 + 0.55 * (i + 1) / len(groups) for i, gv in enumerate(groups)}
    with styled():
        fig = figure("wide")
        axes = fig.subplots(1, 2, sharex=True)
        for (label, solver, gval), agg in series:
            name = f"{label} {solver}, {SHORT.get(group, group)}={gval:g}"
            marker, line = sstyle[solver]
            for ax, col in zip(axes, ("wall", "solve"), strict=True):
                med = agg[(col, "median")]
                err = np.vstack([med - agg[(col, "min")], agg[(col, "max")] - med])
                ax.errorbar(agg.index, med, yerr=err, marker=marker, ls=line, capsize=2,
                            color=colour_of(label), alpha=shade[gval], label=name, ms=4)
        sources: set[str] = set()
        if published is not None and not published.empty and group in published:
            pub_x = {"members": "members", "horizon_days": "horizon_days"}.get(x)
            drawn: set = set()
            for (label, _solver, gval), _agg in series:
                rows = published[(published["label"] == label) & (published[group] == gval)]
                if pub_x == "horizon_days" and "steps" in rows and not rows.empty:
                    hours = df.loc[df["label"] == label, "step_hours"].median()
                    rows = rows.assign(horizon_days=rows["steps"] * hours / 24.0)
                if rows.empty or pub_x is None or pub_x not in rows or gval in drawn:
                    continue
                drawn.add(gval)  # the paper's series once per group value
                rows = rows.sort_values(pub_x)
                tot = rows.get("published_build_s", 0) + rows.get("published_solve_s", 0)
                src = str(rows["source"].iloc[0]).split(" (")[0]
                sources.add(src)
                for ax, vals in ((axes[0], tot), (axes[1], rows.get("published_solve_s"))):
                    if vals is None:
                        continue
                    ax.plot(rows[pub_x], vals, marker="o", mfc="white", ls="--",
                            color="0.45", ms=4, alpha=shade[gval],
                            label=f"paper, {SHORT.get(group, group)}={gval:g}")
        for ax, what in zip(axes, ("wall time of the solve call", "time in the solver"),
                            strict=True):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{what} (seconds)")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=7)
        if sources:
            title += (f"\ngrey, dashed: {'; '.join(sorted(sources))} (published; their "
                      "wall = build + solve)")
        fig.suptitle(title, fontsize=9.5)
        return save(fig, path)


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


def _compare_plot(df, pairs, path) -> Path | None:
    if not pairs:
        return None
    shown = pairs[:3]  # a fixed size: at most three pairs side by side
    with styled():
        fig = figure("wide")
        axes = np.atleast_1d(fig.subplots(1, len(shown), squeeze=False)).ravel()
        for ax, (a, b) in zip(axes, shown, strict=True):
            ta, tb = _per_instance(df, a, "solve"), _per_instance(df, b, "solve")
            both = ta.add_suffix("_a").join(tb.add_suffix("_b"), how="inner")
            both = both.dropna(subset=["t_a", "t_b"])
            if both.empty:
                ax.set_title(f"{a} against {b}: no common instance", loc="left")
                continue
            full = both["solved_a"] & both["solved_b"]
            ax.scatter(both.loc[full, "t_a"], both.loc[full, "t_b"], s=14,
                       color=colour_of(b), label="both optimal")
            if (~full).any():
                ax.scatter(both.loc[~full, "t_a"], both.loc[~full, "t_b"], s=14,
                           facecolors="none", edgecolors="#D55E00",
                           label="not solved (drawn at its limit)")
            lo = max(1e-3, float(np.nanmin(both[["t_a", "t_b"]].to_numpy())) / 2)
            hi = float(np.nanmax(both[["t_a", "t_b"]].to_numpy())) * 2
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="equal time")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"{a} (compact) solver time (seconds)")
            ax.set_ylabel(f"{b} (decomposed) solver time (seconds)")
            ax.set_title(f"{a} against {b} ({len(both)} instances)", loc="left")
            ax.legend(loc="upper left")
            ax.grid(True, which="both", alpha=0.3)
        fig.suptitle("Compact model against its decomposition, per instance")
        return save(fig, path)


def _root_gap_plot(df, path) -> Path | None:
    """Median (min-max) root-node and LP-relaxation gaps of the optimal jobs vs horizon
    (per member count) and vs member count (per horizon)."""
    ok = df[df["status"] == SOLVED]
    rows = [(c, t) for c, t in (("root_gap", "root-node gap"), ("lp_gap", "LP relaxation gap"))
            if ok[c].notna().any()]
    if not rows:
        return None
    with styled():
        fig = figure("tall" if len(rows) > 1 else "wide")
        axes = fig.subplots(len(rows), 2, squeeze=False)
        for (col, title), ax_row in zip(rows, axes, strict=True):
            g = ok[ok[col].notna()]
            for ax, x, other, xl in ((ax_row[0], "horizon_days", "members", "horizon (days)"),
                                     (ax_row[1], "members", "horizon_days",
                                      "members (actors)")):
                for (label, solver, o), s in g.groupby(["label", "solver", other]):
                    agg = s.groupby(x)[col].agg(["median", "min", "max"])
                    err = np.vstack([agg["median"] - agg["min"], agg["max"] - agg["median"]])
                    ax.errorbar(agg.index, agg["median"], yerr=err, marker="o", capsize=2,
                                color=colour_of(label), ms=4,
                                label=f"{label} ({solver}), {other} {o:g}")
                ax.set_xlabel(xl)
                ax.set_ylabel(f"{title} (fraction of the objective)")
                ax.set_title(title, loc="left")
                ax.legend(fontsize=7)
        fig.suptitle("Relaxation gaps of the optimal jobs: (objective - bound) / |objective|")
        return save(fig, path)


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


def problem_groups(df: pd.DataFrame, pairs: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Configurations (label, solver) that solve the same problem, one list per problem
    with two configurations or more: the labels joined by ``pairs`` (compact model and
    decomposition) form one problem, with every solver each; a label alone is a problem
    of its own (its solvers compared). Different models are never in one group."""
    parent = {lab: lab for lab in df["label"].dropna().unique()}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    groups: dict[str, set[tuple[str, str]]] = {}
    for lab, sol in set(zip(df["label"], df["solver"], strict=True)):
        if lab in parent:
            groups.setdefault(find(lab), set()).add((lab, sol))
    return [sorted(g) for _, g in sorted(groups.items()) if len(g) >= 2]


def _profile_plot(df, pairs, path) -> Path | None:
    panels = []
    for group in problem_groups(df, pairs):
        r = performance_profile(df, group)
        if r is not None:
            labels = sorted({lab for lab, _ in group})
            panels.append((" vs ".join(labels) if len(labels) > 1 else labels[0], r))
    if not panels:
        return None
    panels = panels[:3]  # fixed size
    with styled():
        fig = figure("wide")
        axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)).ravel()
        for ax, (title, ratios) in zip(axes, panels, strict=True):
            finite = ratios.to_numpy()[np.isfinite(ratios.to_numpy())]
            tmax = max(2.0, float(finite.max()) * 1.1) if finite.size else 2.0
            taus = np.logspace(0, np.log2(tmax), 200, base=2.0)
            solvers = sorted({c.rsplit(" (", 1)[1].rstrip(")") for c in ratios.columns})
            sstyle = _solver_style(solvers)
            for cfg in ratios.columns:
                label, solver = cfg.rsplit(" (", 1)
                r = ratios[cfg].to_numpy()
                rho = [(r <= tau).mean() for tau in taus]
                ax.step(taus, rho, where="post", label=cfg, color=colour_of(label),
                        ls=sstyle[solver.rstrip(")")][1])
            ax.set_xscale("log", base=2)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("tau: time over the best time (ratio)")
            ax.set_ylabel("share of problems solved within tau (fraction)")
            ax.set_title(f"{title} ({len(ratios)} problems)", loc="left")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(loc="lower right")
        fig.suptitle("Performance profiles (Dolan and Moré 2002), wall time, per problem")
        return save(fig, path)


# --------------------------------------------------------------------------- the report
#: The report's stylesheet (inlined into report.html).
CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 14px;
       color: #222; max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #0072B2; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; color: #0072B2; }
p.meta, li.meta { color: #555; font-size: .92em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .86em; }
th, td { padding: .25em .6em; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f2f6fa; border-bottom: 2px solid #9ab; }
td:first-child, th:first-child, td:nth-child(2), th:nth-child(2) { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
.swatch { display: inline-block; width: .8em; height: .8em; margin-right: .35em;
          border-radius: 2px; vertical-align: baseline; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
"""

#: Figures of the report, in order: (file, caption).
FIGURES = (
    ("time_vs_horizon.png", "Median wall and solver time against the horizon, per model, "
     "solver and member count (bars: min to max over repetitions and replicates)."),
    ("time_vs_actors.png", "Median wall and solver time against the number of members, per "
     "model, solver and horizon."),
    ("compact_vs_decomposed.png", "Solver time of the compact model against its "
     "decomposition on each instance (hollow: not solved, drawn at its limit)."),
    ("root_gaps.png", "Root-node and LP-relaxation gaps of the optimal jobs."),
    ("performance_profile.png", "Performance profiles of the wall time, only across "
     "configurations that solve the same problem."),
)


def _machines(store: Store) -> list[str]:
    """One :func:`describe` line per distinct machine x recopt commit of the records,
    with the range of the 1-min load average over the jobs."""
    seen: dict[tuple, dict] = {}
    loads: dict[tuple, list[float]] = {}
    for r in store.records():
        m = r.get("machine") or {}
        if not m:
            continue
        key = (m.get("host"), m.get("cpu"), m.get("recopt_commit"))
        seen.setdefault(key, m)
        la = m.get("loadavg")
        if la:
            loads.setdefault(key, []).append(float(la[0]))
    out = []
    for key, m in seen.items():
        text = describe({k: v for k, v in m.items() if k != "loadavg"}).rstrip(".")
        ls = loads.get(key)
        if ls:
            text += (f"; 1-min load average over the jobs {min(ls):.2f} to {max(ls):.2f} "
                     f"(median {float(np.median(ls)):.2f}) on {m.get('cores')} logical CPUs")
        out.append(f"{m.get('host', '?')}: {text}.")
    return out


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html_table(t: pd.DataFrame, colour_col: str | None = "model") -> str:
    if t.empty:
        return "<p>(no data)</p>"
    cols = list(t.columns)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for _, row in t.iterrows():
        cells = []
        for c in cols:
            text = html.escape(str(row[c]))
            if c == colour_col:
                text = (f'<span class="swatch" style="background:{colour_of(str(row[c]))}">'
                        f"</span>{text}")
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def report(store_dir, out=None) -> Path:
    """Write the report of a store; returns the path of ``report.md``."""
    store = Store(store_dir)
    df = records_frame(store)
    if df.empty:
        raise SuiteError(f"no records in {store.root / 'records'}: run a suite first "
                         "(python -m recopt.bench run SUITE.toml --store DIR)")
    out = Path(out) if out else store.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    suites = store.suites()
    published = published_frame(suites)
    table = summary_table(df)
    tidy = tidy_summary(df, published)
    tidy.to_csv(out / "summary.csv", index=False)
    df.to_csv(out / "records.csv", index=False)
    pairs = _pairs(store, df)
    pub_table = _published_table(tidy)

    makers = {
        "time_vs_horizon.png": lambda p: _series_plot(
            df, "horizon_days", "members", p, "horizon (days)",
            "Time against the horizon", published),
        "time_vs_actors.png": lambda p: _series_plot(
            df, "members", "steps", p, "members (actors)", "Time against the number of members",
            published),
        "compact_vs_decomposed.png": lambda p: _compare_plot(df, pairs, p),
        "root_gaps.png": lambda p: _root_gap_plot(df, p),
        "performance_profile.png": lambda p: _profile_plot(df, pairs, p),
    }
    plots: list[tuple[Path, str]] = []
    for fname, caption in FIGURES:
        path = out / fname
        made = makers[fname](path)
        if made:
            plots.append((made, caption))
        else:
            path.unlink(missing_ok=True)
            path.with_suffix(".pdf").unlink(missing_ok=True)
            log.info("%s not drawn: no data for it in this store", fname)

    statuses = df["status"].value_counts()
    machines = _machines(store)
    title = f"Benchmark report: {', '.join(s['name'] for s in suites) or store.root.name}"
    status_text = (f"{len(df)} job records; statuses: "
                   + ", ".join(f"{k} {v}" for k, v in statuses.items()) + ".")
    times_text = ("Times in seconds: median (min-max) over the optimal jobs of each row; "
                  "wall is the Result's wall_seconds (the solve call), solver the time "
                  "inside the solver, build the Pyomo construction. Wall times are "
                  "contended when other work shares the machine (see the load above).")
    md = [f"# {title}", "", status_text, ""]
    for s in suites:
        md.append(f"- suite **{s['name']}** ({s.get('jobs', '?')} jobs): "
                  f"{s.get('description', '')}")
    md += ["", "## Machine", ""] + [f"- {m}" for m in machines or ["not recorded"]]
    md += ["", "## Results", "", times_text, "", _markdown_table(table)]
    if not pub_table.empty:
        src = "; ".join(sorted(set(published["source"])))
        md += ["## Published figures", "", f"Source: {src}. Ratio = ours / paper "
               "(medians; different machines and solvers).", "", _markdown_table(pub_table)]
    md += ["## Figures", ""]
    for p, caption in plots:
        md += [f"![{p.name}]({p.name})", "", f"*{caption}*", ""]
    (out / "report.md").write_text("\n".join(md) + "\n")

    body = [f"<h1>{html.escape(title)}</h1>", f"<p class='meta'>{html.escape(status_text)}</p>"]
    if suites:
        body.append("<ul>" + "".join(
            f"<li><b>{html.escape(str(s['name']))}</b> ({html.escape(str(s.get('jobs', '?')))}"
            f" jobs): {html.escape(str(s.get('description', '')))}</li>" for s in suites)
            + "</ul>")
    body.append("<h2>Machine</h2><ul>" + "".join(
        f"<li class='meta'>{html.escape(m)}</li>" for m in machines or ["not recorded"])
        + "</ul>")
    body += ["<h2>Results</h2>", f"<p class='meta'>{html.escape(times_text)}</p>",
             _html_table(table)]
    if not pub_table.empty:
        src = "; ".join(sorted(set(published["source"])))
        body += ["<h2>Published figures</h2>",
                 f"<p class='meta'>Source: {html.escape(src)}. Ratio = ours / paper (medians;"
                 " different machines and solvers).</p>", _html_table(pub_table)]
    if plots:
        body.append("<h2>Figures</h2>")
    for p, caption in plots:
        body.append(f"<figure><img src=\"{_data_uri(p)}\" alt=\"{html.escape(p.stem)}\">"
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    (out / "report.html").write_text(
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body) + "\n</body></html>\n")
    return out / "report.md"
