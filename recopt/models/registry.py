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
* ``algorithm`` — for decompositions and searches: the *name* of the algorithm of
  :mod:`recopt.decomp` that solves the model (``decomp.register_algorithm``); a
  model module never imports the solver or algorithm layers;
* ``diagnosis`` — the name of a :mod:`recopt.decomp` diagnosis the runner calls
  when a solve is infeasible (LP2's highest attainable minimum SSR);
* ``tuning`` — a :class:`~recopt.models.options.Tuning` (solver capabilities such
  as "presolve off"), which the solver adapter turns into its own options;
* ``options`` — the model options with their types, defaults and help, so the CLI
  can parse ``--option name=value`` and ``--list-models`` can document them.

Every model module calls ``register(ModelSpec(...))`` at import. The modules are
loaded on first use: :data:`MODEL_MODULES` names the module of every model, and
:func:`get` imports it (by name, :func:`importlib.import_module`) the first time the
model is asked for, so ``--model LP1`` never loads the loop models (networkx,
scipy) nor the EMS; :func:`all_models` loads them all (this module imports no
model itself).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from recopt.errors import ModelError, UnknownModelError
from recopt.models.options import Option, Tuning, resolve_options

__all__ = ["ModelSpec", "Option", "Tuning", "all_models", "build", "get", "register"]


#: Ways to share a model's benefit among its members (:mod:`recopt.solve.sharing`).
SHARING_CHOICES = ("none", "shapley", "nucleolus", "least_core")
#: Samplers of the sampled Shapley value (``recopt.decomp.games.SHAPLEY_METHODS``).
SHAPLEY_METHOD_CHOICES = ("auto", "multilinear", "permutation")
SHARING_OPTIONS = (
    Option("sharing", str, "none",
           "share the benefit as a cooperative game (card models/benefit-sharing.md): "
           "shapley (exact up to 15 players, sampled beyond), nucleolus or least_core",
           choices=SHARING_CHOICES),
    Option("shapley_method", str, "auto",
           "sampler of the sampled Shapley value: auto (multilinear on the community "
           "game, permutation on loop games), multilinear (Owen's multilinear extension; "
           "community games only) or permutation",
           choices=SHAPLEY_METHOD_CHOICES),
    Option("sharing_seed", int, 0, "seed of the sampled Shapley value"),
    Option("sharing_tolerance", float, 0.01,
           "sampled Shapley: stop when every 95 % CI half-width is below this fraction"),
)


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
    diagnosis: str | None = None
    """Name of a :mod:`recopt.decomp` diagnosis ``(instance, solver, **options) ->
    (message, attrs)`` run when the model is infeasible."""
    separable: str | None = None
    algorithm: str | None = None
    """Name of the :mod:`recopt.decomp` algorithm that solves this model."""
    algorithm_if: tuple = ()
    """``((option, value), ...)``: the runner uses ``algorithm`` only when every option
    has its value (a model with a build *and* an algorithm: MLCol with
    ``enumeration=generate``); empty: always when ``algorithm`` is given."""
    options: tuple[Option, ...] = field(default_factory=tuple)
    tuning: Tuning | None = None
    """Solver capabilities found faster for this model (the user's options override)."""
    step_lp: Callable | None = None
    """``step_lp(instance, **options) -> StepLP or None``: the model as one step's LP
    and every step's numbers (:mod:`recopt.models.step_lp`), for a ``"time"``-separable
    model: the runner's fast path compiles one block once and re-parameterises it per
    block. ``None`` (the function's answer for options it does not cover): the Pyomo
    model is built per block."""
    from_steps: Callable | None = None
    """``from_steps(instance, arrays, **options) -> Dataset``: what ``extract`` gives, from
    the :class:`~recopt.models.step_lp.StepLP` solution's arrays (``name -> (S, T, U)``)
    of the whole instance."""
    card: str = ""
    """Path of the model card, relative to the repository root."""
    objective: str = ""
    """What the Result's ``objective`` is, with its unit (printed by the summary)."""
    game: str | None = None
    """``"community"`` or ``"loop"``: the model's benefit can be shared as that
    cooperative game (option ``sharing``, :mod:`recopt.solve.sharing`)."""

    @property
    def all_options(self) -> tuple[Option, ...]:
        """The model's options, and the sharing options when it has a game."""
        return self.options + (SHARING_OPTIONS if self.game else ())

    def model_options(self, opts: dict) -> dict:
        """``opts`` without the sharing options (what the builder takes)."""
        names = {o.name for o in SHARING_OPTIONS}
        return {k: v for k, v in opts.items() if k not in names}

    def resolve_options(self, given: dict) -> dict:
        """Defaults filled in, values parsed, unknown names refused with a clear error."""
        return resolve_options(self.all_options, given, self.name)


_REGISTRY: dict[str, ModelSpec] = {}

#: The module that registers each model, imported on first use of the name. A new
#: model module adds its names here (``tests/test_options_and_console.py`` checks
#: that the table and the registrations agree).
MODEL_MODULES: dict[str, str] = {
    "LP1": "recopt.models.repartition",
    "LP2": "recopt.models.repartition",
    "LP3": "recopt.models.repartition",
    "KoR8": "recopt.models.kor",
    "KoR9": "recopt.models.kor",
    "KoR10": "recopt.models.kor",
    "EMS3": "recopt.models.ems",
    "EMS4": "recopt.models.ems",
    "LOGAAS": "recopt.models.logaas",
    "SLCpct": "recopt.models.loops",
    "MLCpct": "recopt.models.loops",
    "MLCol": "recopt.models.loops",
    "SLExt": "recopt.models.loops",
    "MLColExt": "recopt.models.loops",
}


def load_all() -> None:
    """Import every model module of :data:`MODEL_MODULES` (they register)."""
    for module in dict.fromkeys(MODEL_MODULES.values()):
        importlib.import_module(module)


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name} is registered twice")
    if spec.algorithm is None and (spec.build is None or spec.extract is None):
        raise ValueError(f"model {spec.name} needs build and extract, or an algorithm")
    _REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> ModelSpec:
    """The spec registered under ``name`` (case-insensitive); its module is imported
    on first use (:data:`MODEL_MODULES`)."""
    for key, spec in _REGISTRY.items():
        if key.lower() == name.lower():
            return spec
    module = next((mod for key, mod in MODEL_MODULES.items()
                   if key.lower() == str(name).lower()), None)
    if module is not None:
        importlib.import_module(module)
        for key, spec in _REGISTRY.items():
            if key.lower() == name.lower():
                return spec
    load_all()  # the known names, for the message (and models registered elsewhere)
    for key, spec in _REGISTRY.items():
        if key.lower() == name.lower():
            return spec
    raise UnknownModelError(
        f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))} "
        "(python -m recopt.solve --list-models)"
    )


def all_models() -> list[ModelSpec]:
    """Every registered model (all model modules are imported)."""
    load_all()
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
    opts = spec.model_options(spec.resolve_options(options))
    if spec.prepare is not None:
        opts = spec.prepare(instance, **opts)
    return spec.build(instance, **opts)
