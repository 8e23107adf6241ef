"""The registry of model names users type (``--model LP1``).

A :class:`ModelSpec` ties a name to

* ``build(instance, **options) -> pyomo ConcreteModel`` — the declarative model,
  its components named after the equations of the model card in ``models/``;
* ``extract(model, instance, **options) -> xarray.Dataset`` — the model's own
  variables on the instance's dims (for a block of steps: the block's dims);
* ``derive(instance, solution, **options) -> xarray.Dataset`` — what follows from
  the solution on the whole instance (bills through :mod:`recopt.settle`, SSR,
  KPIs); run once, after the blocks are stitched;
* ``separable`` — ``"time"`` when the model is a sum of independent problems, one
  per (scenario, time step): the runner may then build and solve it in blocks of
  steps (in parallel worker processes) and stitch the blocks, which is exact;
  ``"scenario"`` when only scenarios are independent; ``None`` otherwise;
* ``algorithm`` — for decompositions: a callable that drives models itself and
  returns a Result (the runner then only adds the bookkeeping);
* ``options`` — the model options with their types, defaults and help, so the CLI
  can parse ``--option name=value`` and ``--list-models`` can document them.

Later families (KoR8-10, SLCpct, MLCol, SLExt, MLColExt, ...) register here the
same way: ``register(ModelSpec(...))`` at import of their module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recopt.errors import ModelError, UnknownModelError


@dataclass(frozen=True)
class Option:
    """One model option: ``--option name=value`` on the CLI, ``name=value`` in Python."""

    name: str
    type: Callable[[str], Any]
    default: Any
    help: str
    choices: tuple | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    family: str
    build: Callable | None = None
    extract: Callable | None = None
    derive: Callable | None = None
    prepare: Callable | None = None
    """``prepare(instance, **options) -> options``: resolve options that depend on the
    *whole* instance (e.g. LP3's proportional initial keys) before the runner splits
    it into blocks, so every block sees the same values."""
    explain_infeasible: Callable | None = None
    """``explain_infeasible(instance, solver, **options) -> (message, attrs)``."""
    separable: str | None = None
    algorithm: Callable | None = None
    algorithm_when: Callable | None = None
    """``algorithm_when(options) -> bool``: run ``algorithm`` only for these options (a
    model with both ``build`` and ``algorithm``, e.g. MLCol with ``enumeration=generate``);
    None: always when ``algorithm`` is given."""
    options: tuple[Option, ...] = field(default_factory=tuple)
    solver_defaults: dict = field(default_factory=dict)
    """Per-solver default options found faster for this model (the user's override)."""
    card: str = ""
    """Path of the model card, relative to the repository root."""

    def resolve_options(self, given: dict) -> dict:
        """Defaults filled in, values converted, unknown names refused with a clear error."""
        known = {o.name: o for o in self.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ModelError(
                f"model {self.name} has no option {', '.join(unknown)}; its options are: "
                + (", ".join(known) or "none")
            )
        out = {}
        for name, opt in known.items():
            value = given.get(name, opt.default)
            if isinstance(value, str) and opt.type is not str:
                try:
                    value = opt.type(value)
                except (TypeError, ValueError) as exc:
                    raise ModelError(
                        f"option {name} of model {self.name}: cannot read {value!r} "
                        f"({exc})"
                    ) from exc
            if opt.choices is not None and value not in opt.choices:
                raise ModelError(
                    f"option {name} of model {self.name} must be one of "
                    f"{', '.join(map(str, opt.choices))}; got {value!r}"
                )
            out[name] = value
        return out


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name} is registered twice")
    if spec.algorithm is None and (spec.build is None or spec.extract is None):
        raise ValueError(f"model {spec.name} needs build and extract, or an algorithm")
    _REGISTRY[spec.name] = spec
    return spec


def _load_all() -> None:
    # Importing the model modules registers them.
    import recopt.models.kor  # noqa: F401
    import recopt.models.logaas  # noqa: F401
    import recopt.models.loops  # noqa: F401
    import recopt.models.repartition  # noqa: F401


def get(name: str) -> ModelSpec:
    """The spec registered under ``name`` (case-insensitive)."""
    _load_all()
    for key, spec in _REGISTRY.items():
        if key.lower() == name.lower():
            return spec
    raise UnknownModelError(
        f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))} "
        "(python -m recopt.solve --list-models)"
    )


def all_models() -> list[ModelSpec]:
    _load_all()
    return list(_REGISTRY.values())


def build(name: str, instance, **options):
    """Build the Pyomo model registered as ``name`` for ``instance``.

    This is the embedding entry point: add variables, constraints or objective
    terms to the returned model, then pass it to :func:`recopt.solve.solve` with
    ``pyomo_model=``.
    """
    spec = get(name)
    if spec.build is None:
        raise ModelError(f"{name} is an algorithm, not a single Pyomo model")
    opts = spec.resolve_options(options)
    if spec.prepare is not None:
        opts = spec.prepare(instance, **opts)
    return spec.build(instance, **opts)
