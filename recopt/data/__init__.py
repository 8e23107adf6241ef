"""The instance: schema, validation, netCDF and CSV input/output.

Public API
----------
make_instance
    Build a validated instance from arrays.
validate
    Check an instance and return a normalised copy, or raise one clear error.
load, save
    netCDF-4 input/output (validated; exact round trip).
read_csv
    Import a smart-meter CSV export (with prices and member data).
instance_hash
    SHA-256 of a canonical form of an instance (stable across save/load).
broadcast_price
    A price broadcast to (scenario, time, member).
billing_period_index
    Billing-period number of every time step.
stm, price, price_cube, InstanceArrays
    The one array view of an instance (:mod:`recopt.data.view`).
"""

from recopt.data.csv_import import read_csv
from recopt.data.instance import (
    billing_period_index,
    broadcast_price,
    instance_hash,
    load,
    make_instance,
    save,
    validate,
)
from recopt.data.schema import (
    ATTRIBUTES,
    DIMS,
    ENERGY_VARIABLES,
    MEMBER,
    PRICE_VARIABLES,
    SCENARIO,
    SCHEMA_VERSION,
    TIME,
    VARIABLES,
)
from recopt.data.view import (
    InstanceArrays,
    coords_of,
    empty_solution,
    price,
    price_cube,
    stm,
)

__all__ = [
    "make_instance",
    "validate",
    "load",
    "save",
    "read_csv",
    "instance_hash",
    "broadcast_price",
    "billing_period_index",
    "InstanceArrays",
    "coords_of",
    "empty_solution",
    "price",
    "price_cube",
    "stm",
    "ATTRIBUTES",
    "DIMS",
    "ENERGY_VARIABLES",
    "MEMBER",
    "PRICE_VARIABLES",
    "SCENARIO",
    "SCHEMA_VERSION",
    "TIME",
    "VARIABLES",
]
