"""The instance schema: the only place that names instance variables, dims and units.

An instance is an :class:`xarray.Dataset` with dims ``scenario``, ``time``,
``member`` (a single-scenario instance keeps a ``scenario`` dim of length 1).

Units: energies in kWh per time step, prices in EUR/kWh, fees in EUR per billing
period, powers in kW (kWp for PV), distances in km, coordinates in km or degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = "1"

SCENARIO, TIME, MEMBER = "scenario", "time", "member"
DIMS = (SCENARIO, TIME, MEMBER)


@dataclass(frozen=True)
class VariableSpec:
    """How one instance variable looks.

    Attributes
    ----------
    name : str
        Variable name in the Dataset.
    unit : str
        Unit written into ``attrs["units"]``.
    dims : tuple of str
        The full dims; ``broadcastable`` variables may use any subset of them.
    required : bool
        Whether :func:`recopt.data.validate` refuses an instance without it.
    broadcastable : bool
        Whether any subset of ``dims`` is accepted (prices).
    nonnegative : bool
        Whether negative values are refused.
    default : float or None
        Value used by :func:`recopt.data.make_instance` when the caller omits it.
    description : str
        One line for humans.
    """

    name: str
    unit: str
    dims: tuple[str, ...]
    required: bool
    broadcastable: bool = False
    nonnegative: bool = True
    default: float | None = None
    description: str = ""


_STM = (SCENARIO, TIME, MEMBER)

#: Storage kinds a member may own (stationary battery, electric vehicle).
STORAGE_KINDS = ("battery", "ev")
#: Fields of one storage, name suffix -> (unit, default filled by validate, description).
#: ``power_kw`` and ``energy_kwh`` are required once any field of the kind is given;
#: a member with ``power_kw = 0`` owns no storage of that kind.
STORAGE_FIELDS: dict[str, tuple[str, float | None, str]] = {
    "power_kw": ("kW", None, "charge = discharge power limit (0: no storage)"),
    "energy_kwh": ("kWh", None, "usable energy capacity"),
    "soc_min": ("%", 0.0, "lowest state of charge, percent of the capacity"),
    "soc_max": ("%", 100.0, "highest state of charge, percent of the capacity"),
    "soc_init": ("%", 50.0, "state of charge at the start of the horizon, percent"),
    "efficiency": ("1", 1.0, "efficiency, one way (or round trip, see the "
                   "storage_efficiency_convention attribute)"),
}
#: Values of the ``storage_efficiency_convention`` attribute.
EFFICIENCY_CONVENTIONS = ("one_way", "round_trip")


def storage_variable(kind: str, field: str) -> str:
    """Name of a storage variable, e.g. ``storage_variable("ev", "soc_min") == "ev_soc_min"``."""
    return f"{kind}_{field}"


def _storage_specs(kind: str) -> list[VariableSpec]:
    label = {"battery": "stationary battery", "ev": "electric vehicle"}[kind]
    return [VariableSpec(storage_variable(kind, f), unit, (MEMBER,), False, default=dflt,
                         description=f"{label}: {text}")
            for f, (unit, dflt, text) in STORAGE_FIELDS.items()]

VARIABLES: dict[str, VariableSpec] = {
    v.name: v
    for v in [
        VariableSpec("consumption", "kWh", _STM, True,
                     description="energy consumed per member and step (before netting)"),
        VariableSpec("production", "kWh", _STM, True,
                     description="energy produced per member and step (before netting)"),
        VariableSpec("price_grid_buy", "EUR/kWh", _STM, True, broadcastable=True,
                     nonnegative=False,
                     description="retail price of energy bought from the supplier (xi_b)"),
        VariableSpec("price_grid_sell", "EUR/kWh", _STM, True, broadcastable=True,
                     nonnegative=False,
                     description="price of energy sold to the supplier (xi_s)"),
        VariableSpec("price_community_buy", "EUR/kWh", _STM, True, broadcastable=True,
                     nonnegative=False,
                     description="price of energy bought from the community (xi_l-)"),
        VariableSpec("price_community_sell", "EUR/kWh", _STM, True, broadcastable=True,
                     nonnegative=False,
                     description="price of energy sold to the community (xi_l+)"),
        VariableSpec("subscription_fee", "EUR", (MEMBER,), False, default=0.0,
                     description="fixed subscription per member and billing period"),
        VariableSpec("installed_power", "kW", (MEMBER,), False,
                     description="installed production power (kWp for PV)"),
        VariableSpec("x_km", "km", (MEMBER,), False, nonnegative=False,
                     description="planar x coordinate"),
        VariableSpec("y_km", "km", (MEMBER,), False, nonnegative=False,
                     description="planar y coordinate"),
        VariableSpec("lat", "degrees_north", (MEMBER,), False, nonnegative=False,
                     description="latitude"),
        VariableSpec("lon", "degrees_east", (MEMBER,), False, nonnegative=False,
                     description="longitude"),
        VariableSpec("investment", "EUR", (MEMBER,), False,
                     description="member's investment in shared assets"),
        VariableSpec("category", "1", (MEMBER,), False, nonnegative=False,
                     description="member category (text, e.g. household, pro1, pro2)"),
        VariableSpec("role", "1", (MEMBER,), False, nonnegative=False,
                     description="consumer, prosumer, producer, or plant (a community-"
                     "owned generator: no key share, no bill; see recopt.data.roles)"),
        VariableSpec("scenario_probability", "1", (SCENARIO,), True,
                     description="probability of each scenario; sums to 1"),
        *[spec for kind in ("battery", "ev") for spec in _storage_specs(kind)],
        VariableSpec("ev_available", "1", (TIME, MEMBER), False,
                     description="EV plugged in at home (boolean; default: always)"),
        VariableSpec("subscribed_power_kw", "kW", (MEMBER,), False,
                     description="subscribed power per member (kVA taken as kW); "
                     "caps meter withdrawal and injection (Mustika (17)-(18))"),
    ]
}

PRICE_VARIABLES = ("price_grid_buy", "price_grid_sell", "price_community_buy",
                   "price_community_sell")
ENERGY_VARIABLES = ("consumption", "production")


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    unit: str
    required: bool
    default: object = None
    description: str = ""


ATTRIBUTES: dict[str, AttributeSpec] = {
    a.name: a
    for a in [
        AttributeSpec("time_step_hours", "h", True,
                      description="length of one time step (0.25 for 15 min)"),
        AttributeSpec("max_distance_km", "km", False, default=2.0,
                      description="legal maximal distance between loop members"),
        AttributeSpec("max_loop_power_kw", "kW", False, default=3000.0,
                      description="legal cap on a loop's installed power"),
        AttributeSpec("billing_period", "", False, default="MS",
                      description="pandas frequency of billing periods (MS = month)"),
        AttributeSpec("billing_timezone", "", False,
                      description="IANA timezone of the billing calendar (default UTC); "
                      "billing periods start at local midnight"),
        AttributeSpec("storage_efficiency_convention", "", False,
                      description="how battery_efficiency / ev_efficiency are given: "
                      "'one_way' (the mu of Mustika (22), default) or 'round_trip' "
                      "(mu = sqrt of it)"),
        AttributeSpec("schema_version", "", True, default=SCHEMA_VERSION,
                      description="version of this schema the instance follows"),
    ]
}
