"""The figures of one Result: what ``recopt solve --plot DIR`` draws.

* :func:`convergence_figure` -- the bounds per iteration of Benders (SLExt, MLColExt:
  ``benders_lower_bound`` / ``benders_upper_bound`` on ``benders_iteration``,
  recorded by :class:`recopt.decomp.benders.Benders`) and of column generation (MLCol
  with ``enumeration=generate``: the restricted master's value ``cg_value`` and the
  Lagrangian bound ``cg_bound`` on ``cg_round``), with the relative gap on a log
  scale;
* :func:`result_figures` -- every figure a Result supports: the loop map
  (:func:`recopt.metrics.loops.plot_loops`) for loop models, the convergence figure
  when the Result carries an iteration log, the storage schedule
  (:func:`recopt.metrics.storage_plot.storage_schedule`) when it carries states of
  charge.

All in the project style (:mod:`recopt.metrics.style`), PNG + PDF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from recopt.errors import ModelError
from recopt.metrics.loops import plot_loops
from recopt.metrics.storage_plot import storage_schedule
from recopt.metrics.style import COLOURS, figure, save, styled

__all__ = ["convergence_figure", "result_figures", "iteration_log"]


#: The iteration logs a Result may carry, in the order they are drawn.
ALGORITHMS = ("benders", "colgen")


def iteration_log(result: xr.Dataset, algorithm: str | None = None
                  ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(algorithm, iterations, lower, upper)`` of a Result's iteration log, or None.

    Benders: the master's proven bound and the best evaluated point's value per
    iteration (iteration 0: the initial and core-point cuts). Column generation: the
    Lagrangian bound and the restricted master LP's value per round. ``algorithm``
    (``"benders"`` or ``"colgen"``) picks one when a Result has both (MLColExt with
    ``enumeration=generate``); default: the first present.
    """
    if algorithm not in (None, *ALGORITHMS):
        raise ModelError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if (algorithm in (None, "benders") and "benders_iteration" in result.dims
            and "benders_lower_bound" in result):
        return ("Benders", result["benders_iteration"].values,
                result["benders_lower_bound"].values.astype(float),
                result["benders_upper_bound"].values.astype(float))
    if algorithm in (None, "colgen") and "cg_round" in result.dims and "cg_bound" in result:
        return ("column generation", result["cg_round"].values,
                result["cg_bound"].values.astype(float),
                result["cg_value"].values.astype(float))
    return None


def convergence_figure(result: xr.Dataset, path, *, title: str | None = None,
                       algorithm: str | None = None) -> Path:
    """Bounds per iteration and the relative gap of a Benders or column-generation
    Result (see the module). Raises :class:`~recopt.errors.ModelError` when the Result
    has no iteration log."""
    from matplotlib.ticker import MaxNLocator

    got = iteration_log(result, algorithm)
    if got is None:
        raise ModelError("the Result has no Benders or column-generation iteration log")
    algo, it, lo, up = got
    cg = algo == "column generation"
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = (up - lo) / np.maximum(1.0, np.abs(up))
    model = result.attrs.get("model", "")
    with styled():
        fig = figure("wide")
        ax, axg = fig.subplots(1, 2)
        ok_lo, ok_up = np.isfinite(lo), np.isfinite(up)
        ax.plot(it[ok_up], up[ok_up], "-o", ms=2.5, color=COLOURS["upper bound"],
                label="restricted master LP value" if cg else "upper bound (best design)")
        ax.plot(it[ok_lo], lo[ok_lo], "-o", ms=2.5, color=COLOURS["lower bound"],
                label="Lagrangian lower bound" if cg else "lower bound (master)")
        obj = float(result.attrs.get("objective", np.nan))
        if cg and np.isfinite(obj) and "benders_iteration" not in result.dims:
            ax.axhline(obj, color="0.3", ls="--", lw=1, label="integer design")
        ax.set_xlabel("round" if cg else "iteration")
        ax.set_ylabel("objective (euros)")
        ax.legend(loc="best")
        ax.set_title("bounds", loc="left")
        ok = np.isfinite(gap) & (gap > 0)
        if ok.any():
            axg.semilogy(it[ok], gap[ok], "-o", ms=2.5, color=COLOURS["gap"], label="gap")
        closed = np.isfinite(gap) & (gap <= 0)
        if closed.any():  # a zero gap has no place on a log scale: marked at the bottom
            floor = min(float(gap[ok].min()) if ok.any() else 1e-4, 1e-4) / 10
            axg.semilogy(it[closed], np.full(int(closed.sum()), floor), "v", ms=6,
                         color=COLOURS["gap"], label="gap closed (zero)")
        target = result.attrs.get("mip_gap")
        try:
            target_f = float(target) if target not in (None, "") else 1e-4
        except (TypeError, ValueError):
            target_f = 1e-4
        if np.isfinite(target_f) and target_f > 0:
            axg.axhline(target_f, color="#D55E00", ls="--", lw=1,
                        label=f"target gap {target_f:g}")
        if axg.get_legend_handles_labels()[0]:
            axg.legend(loc="best")
        axg.set_xlabel("round" if cg else "iteration")
        for a in (ax, axg):
            a.xaxis.set_major_locator(MaxNLocator(integer=True))
        axg.set_ylabel("relative gap (fraction of the upper bound)")
        axg.set_title("gap", loc="left")
        count = (f"{len(it)} rounds" if cg else
                 f"{int(np.max(it)) if len(it) else 0} iterations"
                 + (" after the initial cuts (0)" if len(it) and it[0] == 0 else ""))
        fig.suptitle(title or f"{model}: {algo} convergence ({count}, status "
                     f"{result.attrs.get('status', '?')})")
        return save(fig, path)


def result_figures(instance: xr.Dataset, result: xr.Dataset, out, *,
                   stem: str | None = None) -> list[Path]:
    """Draw every figure ``result`` supports into the directory ``out`` (see the module).

    Files are named ``<stem>_loops.png``, ``<stem>_convergence.png`` (and
    ``<stem>_colgen.png`` for the column generation that fed Benders' loops),
    ``<stem>_storage.png`` (``stem``: the model's name), each with a PDF beside it.
    Returns the PNG paths (empty when the Result has nothing to draw, e.g. no solution).
    """
    out = Path(out)
    stem = stem or str(result.attrs.get("model", "result"))
    paths = []
    has_xy = "x_km" in instance or ("lat" in instance and "lon" in instance)
    if ("membership" in result and "loop" in result.dims and has_xy
            and "max_distance_km" in instance.attrs and int(result.attrs.get("has_solution", 1))):
        paths.append(plot_loops(instance, result, out / f"{stem}_loops.png"))
    logs = [a for a in ALGORITHMS if iteration_log(result, a) is not None]
    for a in logs:  # <stem>_convergence.png, and <stem>_colgen.png beside Benders'
        name = "convergence" if a == logs[0] else a
        paths.append(convergence_figure(result, out / f"{stem}_{name}.png", algorithm=a))
    if ("time_boundary" in result.dims and "grid_import" in result
            and any(f"{k}_soc" in result for k in ("battery", "ev"))):
        paths.append(storage_schedule(result, out / f"{stem}_storage.png",
                                      title=f"{stem}: storage schedule"))
    return paths
