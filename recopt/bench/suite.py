"""Benchmark suite files: what to run, expanded into jobs with stable ids.

A suite is a TOML file (read with :mod:`tomllib`)::

    [suite]
    name = "villena-table6"
    description = "de Villena et al. (2022) Table 6 sizes"
    repetitions = 3            # each (instance, model, solver) this many times
    solvers = ["highs"]        # default for every model
    time_limit = 600           # s, the solver's limit (passed to recopt.solve.solve)
    timeout = 1200             # s, hard wall-clock limit of one job (process group killed)
    job_workers = 1            # worker processes inside one job (solve(workers=...))
    warmup = true              # solve the first steps untimed first (fresh-process imports)
    root_gap = false           # MILPs: also solve the LP relaxation, record the root gap

    [[instances]]              # files or globs, relative to the suite file
    files = ["../../instances/*.nc"]

    [[instances]]              # a generator x grid x replicates
    generator = "synthetic"    # recopt.generate.synthetic.synthetic_community
    grid = { n_members = [10, 50, 100], n_steps = [1440, 2880] }
    params = { step_hours = 0.25 }
    replicates = 1             # seeds seed0 .. seed0 + replicates - 1
    seed0 = 0
    models = ["LP1"]           # optional: only these model labels on these instances

    [[models]]
    name = "LP1"               # a registered model (python -m recopt.solve --list-models)
    label = "LP1"              # optional, default the name; labels must be unique
    options = { tolerance = 0.1 }
    solver_options = {}
    solvers = ["highs"]        # optional, overrides [suite]
    time_limit = 600           # optional, overrides [suite]; also mip_gap, threads, timeout

    [report]
    compare = [["SLCpct", "SLExt"]]   # (compact, decomposed) label pairs for the plots

Generators (``generator = ...``):

``synthetic``
    :func:`recopt.generate.synthetic.synthetic_community`; ``grid``/``params`` are its
    keyword arguments (``n_members``, ``n_steps``, ``step_hours``, ...), ``seed`` the
    replicate's seed.
``chasseray``
    ``recopt.generate.chasseray.generate(preset=, actors=, days=, seed=)`` (Chasseray et
    al. test protocol, §4.2); ``preset = "reference"`` or a list of presets.

Everything is checked by :func:`expand` before any job runs: unknown models, model
options, generators, presets and empty globs are :class:`SuiteError` naming the culprit.

A job's id is the first 16 hex digits of the SHA-256 of (instance hash, model, solver,
options, repetition), where *options* holds the model's resolved options, the solver
options and the limits (``time_limit``, ``mip_gap``, ``threads``, ``job_workers``,
``warmup``): the
same job in two suites, or in a rerun, has the same id, and the store skips it.
"""

from __future__ import annotations

import glob
import hashlib
import importlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr

from recopt.data import instance_hash, load
from recopt.errors import RecoptError
from recopt.generate.synthetic import synthetic_community
from recopt.models import registry
from recopt.solvers.safety import check_solver, check_solver_options

__all__ = ["SuiteError", "Suite", "Job", "InstanceSpec", "load_suite", "expand", "job_id",
           "GENERATORS"]

#: Default hard per-job wall-clock limit when neither ``timeout`` nor ``time_limit`` is set.
DEFAULT_TIMEOUT = 3600.0
#: A suite expands into at most this many jobs (and instances): checked on the counts
#: before anything is expanded, so ``replicates = 1e8`` is refused at once.
MAX_JOBS = 100_000
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


class SuiteError(RecoptError):
    """The suite file is malformed or names something that does not exist."""


# --------------------------------------------------------------------------- generators
def _gen_synthetic(seed: int, **params) -> xr.Dataset:
    try:
        return synthetic_community(seed=seed, **params)
    except TypeError as exc:  # unknown keyword
        raise SuiteError(f"generator 'synthetic': {exc}") from exc


def _chasseray_module():
    try:
        return importlib.import_module("recopt.generate.chasseray")
    except ImportError as exc:
        raise SuiteError(
            "generator 'chasseray' needs recopt.generate.chasseray (the Chasseray instance "
            f"generator), which this recopt does not have ({exc})"
        ) from exc


def _check_chasseray(params: dict) -> None:
    mod = _chasseray_module()
    presets = getattr(mod, "PRESETS", None)
    preset = params.get("preset")
    if preset is None:
        raise SuiteError("generator 'chasseray' needs a preset (e.g. preset = \"reference\")")
    if presets is not None and preset not in presets:
        raise SuiteError(f"generator 'chasseray' has no preset {preset!r}; presets: "
                         + ", ".join(sorted(presets)))


def _gen_chasseray(seed: int, **params) -> xr.Dataset:
    mod = _chasseray_module()
    try:
        return mod.generate(seed=seed, **params)
    except TypeError as exc:
        raise SuiteError(f"generator 'chasseray': {exc}") from exc


#: name -> (generate(seed, **params) -> instance, check(params) run before generating or None)
GENERATORS: dict[str, tuple[Callable[..., xr.Dataset], Callable[[dict], None] | None]] = {
    "synthetic": (_gen_synthetic, None),
    "chasseray": (_gen_chasseray, _check_chasseray),
}


# --------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class InstanceSpec:
    """One instance of a suite: a file, or a generator call with its parameters and seed."""

    source: str
    """``"file"`` or a generator name."""
    path: str | None = None
    params: tuple = ()
    """Generator parameters as sorted (name, value) pairs (hashable)."""
    seed: int | None = None
    models: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        """A stable text key of the spec (cache key of the generated instance)."""
        return json.dumps({"source": self.source, "path": self.path,
                           "params": [list(p) for p in self.params], "seed": self.seed},
                          sort_keys=True, default=str)

    @property
    def label(self) -> str:
        if self.source == "file":
            assert self.path is not None  # a file instance always has its path
            return Path(self.path).name
        args = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.source}({args},seed={self.seed})"

    def materialize(self) -> xr.Dataset:
        """The validated instance (file read or generated)."""
        if self.source == "file":
            return load(self.path)
        gen, _ = GENERATORS[self.source]
        return gen(self.seed, **dict(self.params))


@dataclass(frozen=True)
class ModelRun:
    label: str
    name: str
    options: dict
    solver_options: dict
    solvers: tuple[str, ...]
    time_limit: float | None
    mip_gap: float | None
    threads: int | None
    timeout: float
    job_workers: int
    warmup: bool = True
    solve_relaxation: bool = False


@dataclass
class Suite:
    name: str
    path: str
    description: str
    repetitions: int
    instances: list[InstanceSpec]
    models: list[ModelRun]
    compare: list[tuple[str, str]] = field(default_factory=list)
    published: dict | None = None
    """The paper's figures the report shows beside ours (``[report.published]``):
    ``source``, ``models`` (labels compared), ``columns`` and ``rows``."""

    def to_json(self) -> dict:
        return {"name": self.name, "path": self.path, "description": self.description,
                "repetitions": self.repetitions, "compare": [list(p) for p in self.compare],
                "published": self.published,
                "models": [asdict(m) for m in self.models],
                "instances": [s.label for s in self.instances]}


@dataclass
class Job:
    """One (instance, model, solver, options, repetition) run; plain data (picklable)."""

    job_id: str
    suite: str
    instance_hash: str
    instance_label: str
    instance_meta: dict
    model: str
    model_label: str
    solver: str
    options: dict
    """Model options (resolved: defaults filled in)."""
    solver_options: dict
    time_limit: float | None
    mip_gap: float | None
    threads: int | None
    job_workers: int
    timeout: float
    repetition: int
    warmup: bool = True
    solve_relaxation: bool = False
    """Suite key ``root_gap``: also solve the LP relaxation of a MILP (root bound)."""
    instance_path: str | None = None
    """Where the instance file is (in the store, or the suite's own file)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Job:
        return cls(**d)


def job_id(instance_hash: str, model: str, solver: str, options: dict, repetition: int) -> str:
    """Stable id of a job: SHA-256 (16 hex digits) of its defining parts."""
    text = json.dumps([instance_hash, model, solver.lower(), options, int(repetition)],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def instance_meta(ds: xr.Dataset, spec: InstanceSpec) -> dict:
    """Sizes and provenance of an instance, for the report's tables and plots."""
    steps = int(ds.sizes["time"])
    step_hours = float(ds.attrs.get("time_step_hours", float("nan")))
    meta = {
        "members": int(ds.sizes["member"]), "steps": steps,
        "scenarios": int(ds.sizes["scenario"]), "step_hours": step_hours,
        "horizon_days": steps * step_hours / 24.0,
        "source": spec.source, "seed": spec.seed,
    }
    if spec.path:
        meta["path"] = spec.path
    meta.update({f"param_{k}": v for k, v in spec.params})
    return meta


# --------------------------------------------------------------------------- loading
_SUITE_KEYS = {"name", "description", "repetitions", "solvers", "time_limit", "timeout",
               "mip_gap", "threads", "job_workers", "warmup", "root_gap"}
_MODEL_KEYS = {"name", "label", "options", "solver_options", "solvers", "time_limit",
               "timeout", "mip_gap", "threads", "job_workers", "warmup", "root_gap"}
_INST_KEYS = {"files", "generator", "grid", "params", "replicates", "seed0", "models",
              "preset"}


def _unknown(where: str, given: dict, known: set) -> None:
    bad = sorted(set(given) - known)
    if bad:
        raise SuiteError(f"{where}: unknown key(s) {', '.join(bad)}; known: "
                         + ", ".join(sorted(known)))


def _as_list(value, where: str) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, str | int | float):
        return [value]
    raise SuiteError(f"{where} must be a value or a list, not {type(value).__name__}")


def _number(value, where: str, kind=float, positive=True, maximum=None):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SuiteError(f"{where} must be a number, got {value!r} "
                         f"({type(value).__name__})")
    if not math.isfinite(value):
        raise SuiteError(f"{where} must be a finite number, got {value!r}")
    if kind is int and value != int(value):
        raise SuiteError(f"{where} must be an integer, got {value!r}")
    out = kind(value)
    if positive and out <= 0:
        raise SuiteError(f"{where} must be positive, got {value!r}")
    if maximum is not None and out > maximum:
        raise SuiteError(f"{where} is {value!r}; at most {maximum:,} (a suite expands into "
                         f"at most {MAX_JOBS:,} jobs)")
    return out


def _table(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SuiteError(f"{where} must be a table {{name = value}}, got {value!r}")
    return dict(value)


def _text(value, where: str) -> str:
    if not isinstance(value, str):
        raise SuiteError(f"{where} must be a string, got {value!r}")
    return value


def _flag(value, where: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SuiteError(f"{where} must be true or false, got {value!r}")
    return value


def check_suite_name(name) -> str:
    """A suite name usable as a file name in the store: letters, digits, ``.``, ``_``,
    ``-`` (not starting with ``.``, at most 100), or a SuiteError: the name is joined
    into a path, so ``../x`` or ``/etc/x`` must never reach it."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise SuiteError(f"suite name {name!r} must be 1-100 letters, digits, '.', '_' or "
                         "'-', not starting with '.' and without '..' (it names a file)")
    return name


def _timeout(cfg: dict, time_limit: float | None, where: str) -> float:
    if cfg.get("timeout") is not None:
        return _number(cfg["timeout"], f"{where}.timeout")
    if time_limit is not None:
        # the solver's limit plus room for loading, building and writing the Result
        return 2.0 * time_limit + 60.0
    return DEFAULT_TIMEOUT


def load_suite(path, models: list[str] | None = None) -> Suite:
    """Read and check a suite file (models and options checked; instances not generated).

    ``models``: keep only these model labels; the others are not looked up, so a suite
    naming models this recopt does not have yet can run its available part.
    """
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"no suite file at {path}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: not valid TOML ({exc})") from exc
    _unknown(f"{path}", raw, {"suite", "instances", "models", "report"})
    top = _table(raw.get("suite", {}), f"{path} [suite]")
    _unknown(f"{path} [suite]", top, _SUITE_KEYS)
    name = check_suite_name(top.get("name", path.stem))
    repetitions = int(_number(top.get("repetitions", 1), "[suite].repetitions", int,
                              maximum=MAX_JOBS))
    if not isinstance(raw.get("models", []), list) or not isinstance(raw.get("instances", []),
                                                                      list):
        raise SuiteError(f"{path}: [[models]] and [[instances]] must be arrays of tables")

    runs: list[ModelRun] = []
    if not raw.get("models"):
        raise SuiteError(f"{path}: no [[models]]")
    labels = []
    for i, m in enumerate(raw["models"]):
        where = f"{path} [[models]] #{i + 1}"
        m = _table(m, where)
        _unknown(where, m, _MODEL_KEYS)
        if "name" not in m:
            raise SuiteError(f"{where}: needs a name (a registered model)")
        labels.append(_text(m.get("label", _text(m["name"], f"{where}.name")),
                            f"{where}.label"))
        if models and labels[-1] not in models:
            continue
        try:
            spec = registry.get(m["name"])
            options = spec.resolve_options(_table(m.get("options"), f"{where}.options"))
            solver_options = check_solver_options(
                _table(m.get("solver_options"), f"{where}.solver_options"))
        except RecoptError as exc:
            raise SuiteError(f"{where}: {exc}") from exc
        cfg = {k: m.get(k, top.get(k)) for k in ("solvers", "time_limit", "mip_gap", "threads",
                                                  "timeout", "job_workers", "warmup", "root_gap")}
        time_limit = _number(cfg["time_limit"], f"{where}.time_limit")
        solvers = tuple(_text(s, f"{where}.solvers")
                        for s in _as_list(cfg["solvers"] or ["highs"], f"{where}.solvers"))
        for solver in solvers:  # a name like asl:/path runs a program: known solvers only
            try:
                check_solver(solver)
            except RecoptError as exc:
                raise SuiteError(f"{where}.solvers: {exc}") from exc
        runs.append(ModelRun(
            label=labels[-1], name=spec.name, options=options,
            solver_options=solver_options, solvers=solvers,
            time_limit=time_limit, mip_gap=_number(cfg["mip_gap"], f"{where}.mip_gap",
                                                   positive=False),
            threads=_number(cfg["threads"], f"{where}.threads", int),
            timeout=_timeout(cfg, time_limit, where),
            job_workers=int(_number(cfg["job_workers"] or 1, f"{where}.job_workers", int)),
            warmup=_flag(cfg["warmup"], f"{where}.warmup", True),
            solve_relaxation=_flag(cfg["root_gap"], f"{where}.root_gap", False),
        ))
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise SuiteError(f"{path}: model labels must be unique (give a label = ...): "
                         + ", ".join(dup))
    if models:
        bad = sorted(set(models) - set(labels))
        if bad:
            raise SuiteError(f"{path}: no model labelled {', '.join(bad)}; its models: "
                             + ", ".join(labels))

    instances: list[InstanceSpec] = []
    if not raw.get("instances"):
        raise SuiteError(f"{path}: no [[instances]]")
    for i, block in enumerate(raw["instances"]):
        where = f"{path} [[instances]] #{i + 1}"
        instances.extend(_instance_block(_table(block, where), where, path.parent,
                                         set(labels), MAX_JOBS - len(instances)))
    per_instance = sum(len(r.solvers) for r in runs) * repetitions
    if len(instances) * per_instance > MAX_JOBS:
        raise SuiteError(f"{path}: {len(instances):,} instances x {per_instance:,} runs each "
                         f"is more than {MAX_JOBS:,} jobs; split the suite")

    report = _table(raw.get("report", {}), f"{path} [report]")
    _unknown(f"{path} [report]", report, {"compare", "published"})
    compare = []
    for pair in report.get("compare", []):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise SuiteError(f"{path} [report].compare: pairs [compact, decomposed], got {pair!r}")
        compare.append((str(pair[0]), str(pair[1])))
    published = _published(report.get("published"), f"{path} [report.published]")
    return Suite(name=name, path=str(path),
                 description=_text(top.get("description", ""), f"{path} [suite].description"),
                 repetitions=repetitions, instances=instances, models=runs, compare=compare,
                 published=published)


#: Size columns of ``[report.published]`` (matched to the records' instance sizes) and
#: the time columns it may quote (seconds, compared with the records' times).
PUBLISHED_SIZES = ("members", "steps", "scenarios")
PUBLISHED_TIMES = {"build_s": "build", "solve_s": "solve", "wall_s": "wall"}


def _published(raw, where: str) -> dict | None:
    """Check ``[report.published]``: the paper's times per size, for the report.

    ``source`` (text), ``models`` (the model labels they are compared with),
    ``columns`` (size columns among :data:`PUBLISHED_SIZES`, time columns among
    :data:`PUBLISHED_TIMES`) and ``rows`` (one list of numbers per size).
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: a table with source, models, columns, rows")
    _unknown(where, raw, {"source", "models", "columns", "rows"})
    missing = [k for k in ("source", "models", "columns", "rows") if k not in raw]
    if missing:
        raise SuiteError(f"{where}: missing {', '.join(missing)}")
    cols = [str(c) for c in raw["columns"]]
    bad = [c for c in cols if c not in PUBLISHED_SIZES and c not in PUBLISHED_TIMES]
    if bad:
        raise SuiteError(f"{where}.columns: unknown {', '.join(bad)}; sizes "
                         f"{', '.join(PUBLISHED_SIZES)}, times {', '.join(PUBLISHED_TIMES)}")
    if not any(c in PUBLISHED_TIMES for c in cols) or not any(c in PUBLISHED_SIZES
                                                               for c in cols):
        raise SuiteError(f"{where}.columns: need at least one size and one time column")
    rows = []
    for i, row in enumerate(raw["rows"]):
        if not (isinstance(row, list) and len(row) == len(cols)
                and all(isinstance(v, int | float) for v in row)):
            raise SuiteError(f"{where}.rows[{i}]: {len(cols)} numbers ({', '.join(cols)}), "
                             f"got {row!r}")
        rows.append([float(v) for v in row])
    models = raw["models"]
    if isinstance(models, str):
        models = [models]
    return {"source": str(raw["source"]), "models": [str(m) for m in models],
            "columns": cols, "rows": rows}


def _instance_block(block: dict, where: str, base: Path, labels: set,
                    room: int = MAX_JOBS) -> list[InstanceSpec]:
    """The block's instance specs; ``room``: how many more the suite may have."""
    _unknown(where, block, _INST_KEYS)
    only = block.get("models")
    if only is not None:
        only = tuple(str(x) for x in _as_list(only, f"{where}.models"))
        bad = sorted(set(only) - labels)
        if bad:
            raise SuiteError(f"{where}.models: no [[models]] labelled {', '.join(bad)}")
    if ("files" in block) == ("generator" in block):
        raise SuiteError(f"{where}: give either files = [...] or generator = \"...\"")
    if "files" in block:
        out: list[InstanceSpec] = []
        for pattern in _as_list(block["files"], f"{where}.files"):
            pattern = _text(pattern, f"{where}.files")
            full = pattern if Path(pattern).is_absolute() else str(base / pattern)
            hits = sorted(glob.glob(full))
            if not hits:
                raise SuiteError(f"{where}.files: nothing matches {pattern!r} (looked for {full})")
            out.extend(InstanceSpec("file", path=str(Path(h).resolve()), models=only)
                       for h in hits)
        return out
    gen = _text(block["generator"], f"{where}.generator")
    if gen not in GENERATORS:
        raise SuiteError(f"{where}: unknown generator {gen!r}; generators: "
                         + ", ".join(sorted(GENERATORS)))
    params = _table(block.get("params"), f"{where}.params")
    grid = _table(block.get("grid"), f"{where}.grid")
    if "preset" in block:
        grid["preset"] = block["preset"]
    both = sorted(set(params) & set(grid))
    if both:
        raise SuiteError(f"{where}: {', '.join(both)} in both grid and params")
    replicates = int(_number(block.get("replicates", 1), f"{where}.replicates", int,
                             maximum=MAX_JOBS))
    seed0 = int(_number(block.get("seed0", 0), f"{where}.seed0", int, positive=False))
    names = sorted(grid)
    values = [_as_list(grid[n], f"{where}.grid.{n}") for n in names]
    count = replicates * math.prod(len(v) for v in values)  # before expanding anything
    if count > room:
        raise SuiteError(f"{where}: {count:,} instances (grid x replicates) is more than the "
                         f"{room:,} a suite may still have (at most {MAX_JOBS:,} jobs)")
    _, check = GENERATORS[gen]
    out = []
    for combo in itertools.product(*values):
        p = {**params, **dict(zip(names, combo, strict=True))}
        if check is not None:
            check(p)
        for r in range(replicates):
            out.append(InstanceSpec(gen, params=tuple(sorted(p.items())), seed=seed0 + r,
                                    models=only))
    return out


# --------------------------------------------------------------------------- expansion
def expand(suite: Suite, materialize: Callable[[InstanceSpec], tuple[str, str | None, dict]]
           | None = None, models: list[str] | None = None) -> list[Job]:
    """The suite's jobs, in a deterministic order.

    Parameters
    ----------
    suite : Suite
    materialize : callable, optional
        ``spec -> (instance_hash, instance_path, meta)``; the runner passes one that
        writes each instance into the store once. Default: build it in memory and hash it.
    models : list of str, optional
        Only these model labels (a subset of the suite's); unknown labels are an error.
    """
    chosen = suite.models
    if models:
        known = {m.label for m in suite.models}
        bad = sorted(set(models) - known)
        if bad:
            raise SuiteError(f"suite {suite.name} has no model labelled {', '.join(bad)}; its "
                             f"models: {', '.join(sorted(known))}")
        chosen = [m for m in suite.models if m.label in set(models)]

    def default(spec: InstanceSpec):
        ds = spec.materialize()
        return instance_hash(ds), spec.path, instance_meta(ds, spec)

    materialize = materialize or default
    jobs: list[Job] = []
    seen: set[str] = set()
    for spec in suite.instances:
        runs = [m for m in chosen if spec.models is None or m.label in spec.models]
        if not runs:
            continue
        try:
            h, ipath, meta = materialize(spec)
        except SuiteError:
            raise
        except Exception as exc:  # a generator's own error: name the instance, run nothing
            raise SuiteError(f"instance {spec.label}: {type(exc).__name__}: {exc}") from exc
        for m in runs:
            for solver in m.solvers:
                for rep in range(suite.repetitions):
                    opts = {"model": m.options, "solver": m.solver_options,
                            "time_limit": m.time_limit, "mip_gap": m.mip_gap,
                            "threads": m.threads, "job_workers": m.job_workers,
                            "warmup": m.warmup}
                    if m.solve_relaxation:  # only when asked, so older job ids stay valid
                        opts["root_gap"] = True
                    jid = job_id(h, m.name, solver, opts, rep)
                    if jid in seen:  # the same instance listed twice
                        continue
                    seen.add(jid)
                    jobs.append(Job(
                        job_id=jid, suite=suite.name, instance_hash=h,
                        instance_label=spec.label, instance_meta=meta, model=m.name,
                        model_label=m.label, solver=solver, options=m.options,
                        solver_options=m.solver_options, time_limit=m.time_limit,
                        mip_gap=m.mip_gap, threads=m.threads, job_workers=m.job_workers,
                        timeout=m.timeout, repetition=rep, warmup=m.warmup,
                        solve_relaxation=m.solve_relaxation,
                        instance_path=ipath))
    return jobs


def describe(jobs: list[Job]) -> dict[str, Any]:
    """Counts for a dry run."""
    return {"jobs": len(jobs), "instances": len({j.instance_hash for j in jobs}),
            "models": sorted({j.model_label for j in jobs}),
            "solvers": sorted({j.solver for j in jobs})}
