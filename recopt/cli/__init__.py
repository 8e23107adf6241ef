"""The ``recopt`` console script: one entry point, one subcommand per tool.

::

    recopt solve INSTANCE --model NAME [...]     # = python -m recopt.solve  (recopt-solve)
    recopt keys INSTANCE --keys GS,ES [...]      # = python -m recopt.keys
    recopt logaas INSTANCE --method ga [...]     # = python -m recopt.keys.logaas
    recopt generate --preset 10_act_7_d [...]    # = python -m recopt.generate
    recopt bench run SUITE.toml --store DIR      # = python -m recopt.bench
    recopt two-stage INSTANCE --ems EMS1,EMS4 --keys KoR1,KoR8 --out DIR
    recopt import EXPORT.csv --members members.csv --timezone Europe/Brussels -o x.nc

Each subcommand is a module of this package with a ``main(argv) -> exit code``;
the ``python -m`` forms run the same functions. Only the module of the subcommand
that runs is loaded (by name, :func:`importlib.import_module`), so ``recopt keys``
does not pay for the benchmark runner's start-up.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: subcommand -> one-line help; the subcommand's module is ``recopt.cli.<subcommand>``
COMMANDS: dict[str, str] = {
    "solve": "solve a registered model on an instance (netCDF) and report",
    "keys": "evaluate rule-based repartition keys, brute-force key searches",
    "logaas": "the LOGAAS multi-round static key search",
    "generate": "generate loop-design instances (Chasseray generator)",
    "bench": "run benchmark suites into a store, report on a store",
    "two-stage": "Mustika's two-stage method: EMS1-EMS4 then keys, Table 3",
    "import": "turn meter exports (wide or long CSV) into an instance file",
}
#: subcommands whose module name is not the command's (``import`` is a keyword)
MODULES: dict[str, str] = {"import": "import_meters"}


def usage() -> str:
    lines = ["usage: recopt COMMAND [ARGS...]   (recopt COMMAND --help for its options)", "",
             "commands:"]
    lines += [f"  {name:<9} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``recopt COMMAND ARGS...``: run a subcommand; its exit code is returned."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"recopt: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = MODULES.get(name, name.replace("-", "_"))
    return importlib.import_module(f"recopt.cli.{module}").main(rest)
