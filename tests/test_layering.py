"""The package's imports go only downward through the layers of ARCHITECTURE.md.

Parsed from the source (``ast``), nothing is imported. The rules:

1. no upward import: a module imports only modules of its own layer or below, in
   the order of :data:`LAYERS`;
2. no private name (``_name``) imported from another module, nor read as an
   attribute of an imported recopt module (``registry._load_all``);
3. no import inside a function, except of the optional dependencies of
   :data:`OPTIONAL_DEPENDENCIES` (features a solve never needs: plotting, the PV and
   demand generators, Dask clusters, alternative netCDF engines, Gurobi);
4. no import cycle among the package's modules (module-level imports);
5. no solver name in the code of ``models/`` (a model declares a ``Tuning``);
6. a recopt module named by a module-level constant for loading on first use
   (``importlib.import_module``: the lazy registries' tables ``MODEL_MODULES``,
   ``ALGORITHM_MODULES``, ``DIAGNOSIS_MODULES``, ``SHARING_MODULE``) exists and is in
   the naming module's layer or below.

``__main__.py`` modules are entry points: they belong to the ``cli`` layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recopt"

#: Bottom to top; a module may import from its own layer and the layers before it.
LAYERS = (
    "errors",
    "lazy",
    "progress",
    "data",
    "settle",
    "generate",
    "metrics",
    "keys",
    "ems",
    "models",
    "solvers",
    "decomp",
    "solve",
    "bench",
    "cli",
)
RANK = {name: i for i, name in enumerate(LAYERS)}

#: Third-party packages that may be imported inside a function (optional at run time).
OPTIONAL_DEPENDENCIES = frozenset({
    "gurobipy",  # optional solver (pip install recopt[gurobi])
    "netCDF4",  # optional netCDF engine when h5py is missing
    "h5py",  # probed to choose the netCDF engine
    "matplotlib",  # figures only (metrics.style and the figures that use it, bench reports)
    "pvlib",  # PV profiles of the instance generator only
    "demandlib",  # load profiles of the instance generator only
    "dask",  # bootstrap chunks and benchmark clusters only
    "distributed",  # benchmark clusters only
    "tqdm",  # progress bars on a terminal only (recopt.progress)
    "networkx",  # the loop models' graph, on first use (models.loops.enumeration, issue 19)
})


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> str | None:
    """The layer of a recopt module (None for the package root ``recopt``)."""
    parts = module.split(".")
    if parts[-1] == "__main__":
        return "cli"
    return parts[1] if len(parts) > 1 else None


def _resolve(node: ast.ImportFrom | ast.Import, alias: ast.alias) -> tuple[str, str | None]:
    """(target module, imported name or None) of one alias of an import statement."""
    if isinstance(node, ast.Import):
        return alias.name, None
    module = node.module or ""
    candidate = f"{module}.{alias.name}"
    if candidate in MODULES:  # ``from recopt.models import kor``: the submodule
        return candidate, None
    return module, alias.name


def _imports():
    """(importer, target, name, lineno, in_function) of every import of the package."""
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        functions = [n for n in ast.walk(tree)
                     if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        nested = {id(n) for f in functions for n in ast.walk(f)
                  if isinstance(n, ast.Import | ast.ImportFrom)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{module}:{node.lineno}: relative import; use "
                                     "absolute recopt.* imports")
            for alias in node.names:
                target, name = _resolve(node, alias)
                yield module, target, name, node.lineno, id(node) in nested


IMPORTS = list(_imports())


def test_the_package_is_parsed():
    assert {"recopt.models.registry", "recopt.solvers.highs", "recopt.decomp.blocks",
            "recopt.solve.runner", "recopt.cli"} <= set(MODULES)
    assert {_layer(m) for m in MODULES} - {None} == set(LAYERS)


def test_no_upward_import():
    bad = []
    for importer, target, _name, line, _nested in IMPORTS:
        if not target.startswith("recopt.") or _layer(importer) is None:
            continue
        src, dst = _layer(importer), _layer(target)
        if RANK[dst] > RANK[src]:
            bad.append(f"{importer}:{line} ({src}) imports {target} ({dst})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_private_name_crosses_modules():
    bad = [f"{importer}:{line} imports {name} from {target}"
           for importer, target, name, line, _nested in IMPORTS
           if target.startswith("recopt") and name is not None and name.startswith("_")
           and not name.startswith("__") and target != importer]
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_no_private_attribute_of_another_module():
    """``module._name`` on an imported recopt module is a private name crossing too."""
    bad = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    target, name = _resolve(node, a)
                    if name is None and target.startswith("recopt"):
                        aliases[a.asname or a.name] = target
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("recopt") and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                bad.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, "private attributes of other modules:\n" + "\n".join(bad)


def test_imports_inside_functions_are_optional_dependencies_only():
    bad = [f"{importer}:{line} imports {target} inside a function"
           for importer, target, _name, line, nested in IMPORTS
           if nested and target.split(".")[0] not in OPTIONAL_DEPENDENCIES]
    assert not bad, ("imports inside functions (move them to the top of the module, or "
                     "add a truly optional dependency to OPTIONAL_DEPENDENCIES):\n"
                     + "\n".join(bad))


def test_no_import_cycle():
    g = nx.DiGraph()
    for importer, target, _name, _line, nested in IMPORTS:
        if nested or not target.startswith("recopt"):
            continue
        # importing recopt.a.b also runs recopt.a's __init__; its own submodules do not
        # count as importing it (that is how a package registers its members)
        if target in MODULES and target != importer:
            g.add_edge(importer, target)
    cycles = [c for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


@pytest.mark.parametrize("importer, target, expected", [
    ("recopt.models.kor", "recopt.solve.runner", False),
    ("recopt.decomp.blocks", "recopt.models.registry", True),
    ("recopt.solvers.highs", "recopt.decomp.benders", False),
    ("recopt.keys.__main__", "recopt.cli.keys", True),
])
def test_the_rule_itself(importer, target, expected):
    """The layer order says what it should (a guard against a mis-edited LAYERS)."""
    assert (RANK[_layer(target)] <= RANK[_layer(importer)]) is expected


#: Solver names a declarative model must not mention in code (docstrings may).
SOLVER_NAMES = ("highs", "gurobi", "cplex", "cbc", "glpk", "scip", "appsi")


def test_models_name_no_solver():
    """Models declare a Tuning; only the solver adapters know solver names."""
    bad = []
    for module, path in MODULES.items():
        if _layer(module) != "models":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef)
                      and n.body and isinstance(n.body[0], ast.Expr)
                      and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings):
                text = node.value.lower()
                bad += [f"{module}:{node.lineno} names {name!r}" for name in SOLVER_NAMES
                        if name in text]
    assert not bad, "solver names in models/:\n" + "\n".join(bad)


def _lazy_targets():
    """(module, target, line) of the recopt modules named by module-level constants:
    the tables of the lazy registries (``MODEL_MODULES``, ``ALGORITHM_MODULES``,
    ``DIAGNOSIS_MODULES``) and single names (``SHARING_MODULE``), imported on first use
    by :func:`importlib.import_module`."""
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if value is None:
                continue
            strings = ([value] if isinstance(value, ast.Constant)
                       else list(value.values) if isinstance(value, ast.Dict) else [])
            for s in strings:
                if (isinstance(s, ast.Constant) and isinstance(s.value, str)
                        and s.value.startswith("recopt.")):
                    yield module, s.value, node.lineno


LAZY = list(_lazy_targets())


def test_lazy_imports_go_down_too():
    """A module loaded by name on first use is a real module of the importer's layer or
    below (the lazy registries keep the layering)."""
    assert {t for _m, t, _l in LAZY} >= {"recopt.models.loops", "recopt.decomp.loop_benders",
                                         "recopt.solve.sharing"}
    bad = [f"{m}:{line} names {t}" for m, t, line in LAZY
           if t not in MODULES or RANK[_layer(t)] > RANK[_layer(m)]]
    assert not bad, "lazy imports that are missing or go up:\n" + "\n".join(bad)
