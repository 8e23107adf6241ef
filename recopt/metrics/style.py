"""The one figure style of recopt: fonts, sizes, colours, axis labels, files.

Every figure recopt draws (key comparisons, per-member figures, the loop map, Benders
and column-generation convergence, EMS storage schedules, the benchmark report) is
made with :func:`figure` and written with :func:`save`, so that they fit a paper
together:

* fonts and line widths from :data:`RC` (9 pt text, 8 pt ticks and legends, no top or
  right spines, a light grid), applied while a figure is drawn and saved
  (:func:`styled`), without touching matplotlib's global state;
* a fixed size per kind (:data:`SIZES`, inches; a double-column width of 7.2 in):
  a figure does not grow with the data -- where the data grows (members, loops,
  series) the callers facet, rank or show the top N and write the full table;
* one colour per model, key or series name across every figure
  (:func:`colour_of`: a fixed table for recopt's models and keys, a stable hash into
  the Okabe-Ito / tab20 palette for other names);
* axis labels with the unit spelled out in words (:func:`axis_label`,
  :data:`UNIT_WORDS`): "wall time (seconds)", not "wall [s]";
* PNG (200 dpi) plus a vector copy (PDF by default, SVG on request) of each figure.

matplotlib is imported only when a figure is drawn (Agg canvas, no pyplot).
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["RC", "SIZES", "DPI", "UNIT_WORDS", "NAMES", "COLOURS", "PALETTE", "colour_of",
           "colours", "axis_label", "unit_words", "pretty", "styled", "figure", "save",
           "percent_metric"]

#: matplotlib rc parameters of every recopt figure.
RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.titlesize": 10.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "lines.markersize": 5,
    "axes.prop_cycle": None,  # set in styled(): the palette
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "pdf.fonttype": 42,  # TrueType in PDFs (editable text)
    "svg.fonttype": "none",
}

#: Figure sizes in inches (width, height), by kind. Never scaled with the data.
SIZES = {
    "wide": (7.2, 3.6),   # one row of panels
    "grid": (7.2, 5.4),   # 2 x 3 small multiples
    "tall": (7.2, 6.6),   # stacked panels on a shared x axis
    "square": (6.0, 6.0),
    "map": (7.2, 5.4),    # a map with its legend on the right
}
#: Raster resolution of the PNG copies.
DPI = 200

#: Okabe & Ito (2008) colour-blind-safe palette, then tab20's distinct extras.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#9467BD", "#C49C94",
           "#FFBB78", "#98DF8A", "#FF9896", "#C5B0D5")

#: Fixed colours of recopt's models, keys and series (same colour in every figure).
COLOURS = {
    # repartition models (de Villena) and KoR (Mustika)
    "LP1": "#0072B2", "LP2": "#E69F00", "LP3": "#009E73",
    "KoR8": "#D55E00", "KoR9": "#CC79A7", "KoR10": "#56B4E9",
    # loop models (Chasseray): colours of their own, so that a report mixing them with
    # the repartition models never gives two models one colour
    "SLCpct": "#8C564B", "SLExt": "#C49C94", "MLCpct": "#9467BD", "MLCol": "#17BECF",
    "MLColExt": "#BCBD22",
    # EMS (Mustika)
    "EMS1": "#0072B2", "EMS2": "#E69F00", "EMS3": "#009E73", "EMS4": "#D55E00",
    # keys (Ospina, the regions' catalogues)
    "GS": "#0072B2", "ES": "#E69F00", "PR": "#009E73", "HEP": "#D55E00", "CA": "#CC79A7",
    "equal": "#E69F00", "prorata": "#009E73", "fixed": "#0072B2",
    # series of the convergence figures
    "lower bound": "#0072B2", "upper bound": "#D55E00", "gap": "#000000",
    "published": "#7F7F7F",
}

#: Unit symbols (as in the schema's ``units`` attributes) spelled out in words.
UNIT_WORDS = {
    "s": "seconds", "h": "hours", "min": "minutes", "days": "days", "d": "days",
    "kWh": "kilowatt-hours", "MWh": "megawatt-hours", "kW": "kilowatts", "kWp": "kilowatts peak",
    "EUR": "euros", "EUR/kWh": "euros per kilowatt-hour", "km": "kilometres",
    "%": "percent", "1": "fraction", "": "", "MiB": "mebibytes", "GiB": "gibibytes",
    "kgCO2eq": "kilograms of CO2 equivalent", "gCO2eq": "grams of CO2 equivalent",
    "gCO2eq/kWh": "grams of CO2 equivalent per kilowatt-hour",
    "kg": "kilograms", "g": "grams", "tCO2eq": "tonnes of CO2 equivalent",
}

#: Readable names of the metrics and variables drawn (instead of the variable names).
NAMES = {
    "self_consumption_rate": "self-consumption rate",
    "scr_upper_bound": "self-consumption upper bound",
    "self_sufficiency": "self-sufficiency rate",
    "self_sufficiency_mean": "mean self-sufficiency rate",
    "bill_saving": "bill saving",
    "bill_saving_mean": "mean bill saving",
    "saving_ratio": "saving ratio",
    "gini": "Gini index of savings",
    "energy_to_shift": "energy to shift",
    "energy_to_shift_total": "energy to shift",
    "co2_avoided": "CO2 avoided",
    "collective_bill": "collective bill",
    "surplus_injected": "surplus injected",
    "sharing_upper_bound": "sharing upper bound",
    "covered_consumption": "covered consumption",
    "benefit": "benefit against no loop",
}

#: Metrics shown in percent (rates in [0, 1] stored as fractions).
PERCENT = {"self_consumption_rate", "scr_upper_bound", "self_sufficiency",
           "self_sufficiency_mean", "saving_ratio", "collective_self_consumption_rate",
           "self_production_rate"}


def percent_metric(name: str) -> bool:
    """Whether ``name`` (a rate stored as a fraction) is drawn in percent."""
    return name in PERCENT or name.endswith("_rate")


def pretty(name: str) -> str:
    """A metric's or variable's readable name (:data:`NAMES`; else underscores to spaces)."""
    return NAMES.get(name, name.replace("_", " "))


def unit_words(unit: str | None) -> str:
    """A unit symbol spelled out (:data:`UNIT_WORDS`); unknown symbols are kept."""
    unit = "" if unit is None else str(unit)
    return UNIT_WORDS.get(unit, unit)


def axis_label(what: str, unit: str | None = None) -> str:
    """``"what (unit in words)"``; ``what`` may be a variable name (:func:`pretty`)."""
    words = unit_words(unit)
    text = pretty(what)
    return f"{text} ({words})" if words else text


def colour_of(name: str) -> str:
    """The colour of a model, key or series ``name``: :data:`COLOURS`, else a stable
    hash of the name into :data:`PALETTE` (the same name gets the same colour in every
    figure and every run). Labels such as ``"LP3-proportional"`` or ``"LP1 (highs)"``
    take their model's colour when the exact label has none."""
    name = str(name)
    if name in COLOURS:
        return COLOURS[name]
    for sep in (" (", "-", " ", "_"):
        head = name.split(sep, 1)[0]
        if head != name and head in COLOURS:
            return COLOURS[head]
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def colours(names: Iterable[str]) -> dict[str, str]:
    """``{name: colour}``, fixed colours first; names that would share a hashed colour
    with an earlier one in the same figure take the next free palette colour."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for n in names:
        c = colour_of(n)
        if c in used and n not in COLOURS:
            free = [p for p in PALETTE if p not in used]
            c = free[0] if free else c
        out[n] = c
        used.add(c)
    return out


@contextlib.contextmanager
def styled() -> Iterator[None]:
    """matplotlib's rc parameters set to :data:`RC` inside the block (restored after)."""
    import matplotlib
    from matplotlib.rcsetup import cycler

    rc: dict[str, Any] = dict(RC)
    rc["axes.prop_cycle"] = cycler(color=list(PALETTE))
    with matplotlib.rc_context(rc):  # type: ignore[arg-type]
        yield


def figure(kind: str = "wide", **kw):
    """A Figure of the fixed size ``SIZES[kind]`` on the Agg canvas, constrained layout.

    Call it (and draw, and :func:`save`) inside :func:`styled`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if kind not in SIZES:
        raise ValueError(f"unknown figure kind {kind!r}; one of {', '.join(SIZES)}")
    kw.setdefault("layout", "constrained")
    fig = Figure(figsize=SIZES[kind], **kw)
    FigureCanvasAgg(fig)
    return fig


#: Environment variable naming the vector copy :func:`save` writes beside each PNG:
#: ``pdf`` (the default), ``svg`` or ``none`` (PNG only; a PDF costs about as much as
#: its PNG, mostly in font subsetting).
VECTOR_ENV = "RECOPT_FIGURE_VECTOR"
VECTOR_FORMATS = ("pdf", "svg")


def vector_format() -> str | None:
    """The vector copy asked for by :data:`VECTOR_ENV` (``"pdf"`` when unset).

    Raises ValueError naming the variable and its value when it is none of
    ``pdf``, ``svg``, ``none``.
    """
    raw = os.environ.get(VECTOR_ENV, "pdf").strip().lower()
    if raw in ("none", ""):
        return None
    if raw not in VECTOR_FORMATS:
        raise ValueError(f"{VECTOR_ENV}={raw!r}: use one of pdf, svg, none")
    return raw


def save(fig, path, vector: str | None = "env") -> Path:
    """Write ``fig`` to ``path`` as PNG (:data:`DPI`) and a vector copy beside it
    (``vector``: ``"pdf"``, ``"svg"``, None, or ``"env"``: as :func:`vector_format`
    reads :data:`VECTOR_ENV`, PDF when unset). The PNG has exactly the figure's size
    (no tight bounding box: every figure of a kind has the same pixels). Returns the
    PNG path."""
    if vector == "env":
        vector = vector_format()
    elif vector is not None and vector not in VECTOR_FORMATS:
        raise ValueError(f"vector copy {vector!r}: use one of pdf, svg or None")
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    if vector:
        fig.savefig(path.with_suffix(f".{vector}"))
    return path
