"""recopt: declarative optimisation models for renewable energy communities.

Sub-packages: :mod:`recopt.data` (the instance), :mod:`recopt.settle` (the
settlement rule), :mod:`recopt.models` (Pyomo models and their registry),
:mod:`recopt.solve` (runner, Result, CLI), :mod:`recopt.metrics`.
"""

__version__ = "0.1.0"
