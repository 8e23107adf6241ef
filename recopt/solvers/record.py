"""The typed metadata of one run: :class:`RunRecord`.

A run is one ``solve(instance, model)``: one solver call, a set of independent
blocks, or an algorithm (Benders, the KoR period loop, a search). The runner and
the algorithms fill one :class:`RunRecord`; :func:`recopt.solve.result.write_result`
is the one function that turns it into a Result's ``attrs`` (the names of the
table in :mod:`recopt.solve.result`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from recopt.solvers.outcome import SolveOutcome, relative_gap
from recopt.solvers.status import Status, worst


@dataclass
class RunRecord:
    """Status, objective, bound, gap, timings, sizes, solver, options, seed, hash.

    Objective and bound in the model's objective unit (EUR for the bill and loop
    models); times in seconds of wall clock; sizes summed over blocks. ``extra``
    holds a model's or an algorithm's own scalars (``benders_iterations``,
    ``max_uniform_min_ssr``, ...), written next to the others.
    """

    status: Status = Status.ERROR
    message: str = ""
    has_solution: bool = False
    objective: float = math.nan
    bound: float = math.nan
    gap: float = math.nan
    model: str = ""
    solver: str = ""
    solver_version: str = ""
    options: dict = field(default_factory=dict)
    solver_options: dict = field(default_factory=dict)
    time_limit: float | None = None
    mip_gap: float | None = None
    threads: int | None = None
    seed: int | None = None
    instance_hash: str = ""
    recopt_version: str = ""
    build_seconds: float = 0.0
    compile_seconds: float = 0.0
    solve_seconds: float = 0.0
    extract_seconds: float = 0.0
    wall_seconds: float = 0.0
    blocks: int = 1
    workers: int = 1
    n_variables: int = 0
    n_constraints: int = 0
    n_integer: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[SolveOutcome], *, has_solution: bool,
                      **fields) -> RunRecord:
        """The record of independent solves whose objectives add up (blocks of a model).

        Status: the worst; message: the distinct messages; objective and bound: sums
        (objective NaN without a solution); sizes and solver times: sums.
        ``fields`` set or override any other field.
        """
        outs = list(outcomes)
        objective = sum(o.objective for o in outs) if has_solution else math.nan
        bound = sum(o.bound for o in outs)
        base: dict[str, Any] = dict(
            status=worst(o.status for o in outs),
            message="; ".join(sorted({o.message for o in outs if o.message})),
            has_solution=has_solution, objective=objective, bound=bound,
            gap=relative_gap(objective, bound),
            solver_version=outs[0].solver_version if outs else "",
            compile_seconds=sum(o.compile_seconds for o in outs),
            solve_seconds=sum(o.solve_seconds for o in outs),
            n_variables=sum(o.n_variables for o in outs),
            n_constraints=sum(o.n_constraints for o in outs),
            n_integer=sum(o.n_integer for o in outs),
        )
        base.update(fields)
        return cls(**base)

    def replace(self, **fields) -> RunRecord:
        """A copy with ``fields`` changed (``extra`` is merged, not replaced)."""
        extra = {**self.extra, **fields.pop("extra", {})}
        return dataclasses.replace(self, extra=extra, **fields)

    def as_attrs(self) -> dict[str, Any]:
        """The fields as one flat dict (``status`` as its string value, ``extra`` merged)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name != "extra"}
        out["status"] = Status(self.status).value
        out.update(self.extra)
        return out

    @classmethod
    def from_attrs(cls, attrs: dict) -> RunRecord:
        """The record of a Result's ``attrs`` (as written by ``write_result`` or read back
        from netCDF: 0/1 for booleans, JSON for dicts, "" for None); the attrs that are
        not fields go to ``extra`` (``summary_text`` and a model's counts included)."""
        names = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in attrs.items():
            if key not in names:
                extra[key] = value
                continue
            if key == "status":
                value = Status(value)
            elif key == "has_solution":
                value = bool(int(value))
            elif key in ("options", "solver_options"):
                value = json.loads(value) if isinstance(value, str) and value else (
                    value if isinstance(value, dict) else {})
            elif key in ("time_limit", "mip_gap", "threads", "seed") and value == "":
                value = None
            elif isinstance(value, str) and names[key].type in ("float", "int"):
                value = float(value) if names[key].type == "float" else int(value)
            elif hasattr(value, "item"):
                value = value.item()
            values[key] = value
        return cls(**values, extra=extra)
