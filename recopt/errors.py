"""The recopt error family.

Every error a user can cause (bad input data, unknown model or option, a solver
that is not installed) is a :class:`RecoptError` with a message that names the
culprit and says what to do. The CLI maps each family to its own exit code
(see :mod:`recopt.solvers.status`).
"""

from __future__ import annotations


class RecoptError(Exception):
    """Base class of every error recopt raises on purpose."""


# --- bad input data -------------------------------------------------------------------
class InstanceError(RecoptError):
    """The instance (xarray Dataset, netCDF or CSV input) is malformed.

    Attributes
    ----------
    variable : str or None
        The variable, coordinate, column or attribute at fault.
    """

    def __init__(self, message: str, variable: str | None = None):
        super().__init__(message)
        self.variable = variable


class MissingVariableError(InstanceError):
    """A required variable, coordinate or attribute is absent."""


class DimensionError(InstanceError):
    """A variable has dimensions the schema does not allow, or a missing dim."""


class NonFiniteError(InstanceError):
    """A variable holds NaN or infinite values."""


class NegativeEnergyError(InstanceError):
    """Consumption or production (or another non-negative quantity) is negative."""


class TimestampError(InstanceError):
    """Timestamps are duplicated, unsorted, irregular or unparsable."""


class ProbabilityError(InstanceError):
    """Scenario probabilities are negative or do not sum to 1."""


class UnitError(InstanceError):
    """A unit is unknown or inconsistent (e.g. a power given where energy is expected)."""


class SchemaVersionError(InstanceError):
    """The file was written with a schema version this recopt cannot read."""


class CSVFormatError(InstanceError):
    """A CSV file cannot be parsed (separator, decimal mark, header, columns)."""


# --- bad model requests ---------------------------------------------------------------
class ModelError(RecoptError):
    """A model name, option or option value is not valid for this instance."""


class UnknownModelError(ModelError):
    """No model is registered under the requested name."""


class ModelInfeasibleError(ModelError):
    """A model is infeasible for a reason recopt can explain (e.g. LP2's minimum SSR).

    Attributes
    ----------
    detail : dict
        Numbers that explain the infeasibility (e.g. ``{"max_uniform_ssr": 0.42}``).
    """

    def __init__(self, message: str, detail: dict | None = None):
        super().__init__(message)
        self.detail = detail or {}


# --- solver trouble -------------------------------------------------------------------
class SolverError(RecoptError):
    """A solver failed in a way that is not a status of the model (crash, bad option)."""


class SolverOptionError(RecoptError):
    """The solver refused an option the user passed (bad input, not solver trouble)."""


class SolverUnavailableError(SolverError):
    """The requested solver is not installed or not licensed on this machine."""


# --- output ---------------------------------------------------------------------------
class OutputError(RecoptError):
    """A file or folder recopt was asked to write cannot be written (a folder given as
    a file, a read-only folder, a parent that is a file); raised before any solve."""
