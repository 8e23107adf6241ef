"""recopt: declarative optimisation models for renewable energy communities.

Sub-packages, bottom to top (each imports only those before it; see
ARCHITECTURE.md): :mod:`recopt.errors`, :mod:`recopt.data` (the instance and its
array view), :mod:`recopt.settle` (the settlement rule), :mod:`recopt.generate`
(instance generators), :mod:`recopt.metrics`, :mod:`recopt.keys` (rule-based keys
and searches), :mod:`recopt.models` (declarative Pyomo models and their registry),
:mod:`recopt.solvers` (solver adapters), :mod:`recopt.decomp` (algorithms),
:mod:`recopt.solve` (the runner and the Result), :mod:`recopt.bench` (benchmark
suites), :mod:`recopt.cli` (the ``recopt`` console script).
"""

__version__ = "0.1.0"
