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
    Billing-period number of every time step (local periods of the billing timezone).
member_roles, member_mask, plant_mask, aggregate_mask, with_roles
    Member roles (consumer, prosumer, producer, community-owned plant).
stm, price, price_cube, InstanceArrays
    The one array view of an instance (:mod:`recopt.data.view`).
"""

from typing import Any

from recopt.data import lazy_dask  # noqa: F401  (before any Variable is made)
from recopt.data.instance import (
    billing_period_index,
    broadcast_price,
    instance_hash,
    load,
    make_instance,
    one_way_efficiency,
    save,
    validate,
)
from recopt.data.roles import (
    ROLES,
    aggregate_mask,
    billing_timezone,
    local_time_index,
    member_mask,
    member_roles,
    plant_mask,
    with_roles,
)
from recopt.data.schema import (
    ATTRIBUTES,
    DIMS,
    ENERGY_VARIABLES,
    MEMBER,
    PRICE_VARIABLES,
    SCENARIO,
    SCHEMA_VERSION,
    STORAGE_FIELDS,
    STORAGE_KINDS,
    TIME,
    VARIABLES,
    storage_variable,
)
from recopt.data.view import (
    InstanceArrays,
    coords_of,
    empty_solution,
    price,
    price_cube,
    stm,
)
from recopt.lazy import lazy_module

#: The CSV importer (and the meter-export reader it uses) loads on first use of
#: ``read_csv``: a solve from a netCDF file never needs it (start-up, issue 19).
CSV_IMPORT_MODULE = "recopt.data.csv_import"
_csv_import = lazy_module(CSV_IMPORT_MODULE)


def __getattr__(name: str) -> Any:
    if name == "read_csv":
        return _csv_import.read_csv
    raise AttributeError(f"module 'recopt.data' has no attribute {name!r}")


__all__ = [
    "make_instance",
    "validate",
    "load",
    "save",
    "read_csv",
    "instance_hash",
    "broadcast_price",
    "billing_period_index",
    "billing_timezone",
    "local_time_index",
    "ROLES",
    "aggregate_mask",
    "member_mask",
    "member_roles",
    "plant_mask",
    "with_roles",
    "one_way_efficiency",
    "storage_variable",
    "STORAGE_FIELDS",
    "STORAGE_KINDS",
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
