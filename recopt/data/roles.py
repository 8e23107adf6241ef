"""Member roles and the billing calendar of an instance.

Roles
-----
The optional ``role`` variable (dim ``member``, text) says what each entry of the
``member`` dim is:

``consumer``
    a member that only consumes;
``prosumer``
    a member that consumes and produces;
``producer``
    a member that only produces (it still holds a key share and gets a bill);
``plant``
    a generator owned by the community (Ospina Lopez 2026, §4: the Guzmán
    community is 14 members plus a plant the community owns). A plant is *not* a
    member: it takes no key share (the equal-sharing key ES divides ``G`` by the
    number of members ``M``, Ospina eq. (16), Algorithms A.3 and A.5), it has no
    bill of its own, it is left out of every per-member figure (Gini, mean saving,
    mean SSR) and what it earns (its sales to the members and to the grid, minus
    its own purchases and fees) is the community's account
    (:func:`recopt.settle.bills`, ``community_account``).

Without a ``role`` variable every entry is a member; :func:`member_roles` then
names them consumer / prosumer / producer from their energies. A community
battery added by :func:`recopt.generate.battery.add_community_battery`
(``attrs["battery_member"]``) is a shared asset too: it is not counted in the
member aggregates either (:func:`aggregate_mask`).

Billing calendar
----------------
Time is stored in UTC. Bills are per billing period (``attrs["billing_period"]``,
a pandas frequency, default ``"MS"`` = calendar month) in the *billing timezone*
``attrs["billing_timezone"]`` (an IANA name, default ``"UTC"``;
:func:`recopt.data.read_csv` sets it from its ``timezone``). A Brussels-time
community is billed from local midnight of the 1st to local midnight of the next
1st, whatever the DST offset (:func:`billing_period_index`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data.schema import ATTRIBUTES, MEMBER, TIME
from recopt.errors import InstanceError

__all__ = [
    "ROLES",
    "MEMBER_ROLES",
    "member_roles",
    "member_mask",
    "plant_mask",
    "aggregate_mask",
    "with_roles",
    "check_roles",
    "billing_timezone",
    "check_billing_timezone",
    "local_time_index",
    "billing_period_index",
]

#: Values of the ``role`` variable.
ROLES = ("consumer", "prosumer", "producer", "plant")
#: Roles that are members of the community (hold a key share, get a bill).
MEMBER_ROLES = ("consumer", "prosumer", "producer")


# ======================================================================================
# roles
# ======================================================================================
def check_roles(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Check ``role`` values (one of :data:`ROLES` each, at least one member).

    Returns the roles as lower-case strings; raises :class:`InstanceError` naming
    the member with an unknown role.
    """
    out = np.array([str(v).strip().lower() for v in np.asarray(values).ravel()], dtype=object)
    for i, r in enumerate(out):
        if r not in ROLES:
            raise InstanceError(
                f"role of member '{members[i]}' is {values[i]!r}; a role is one of "
                f"{', '.join(ROLES)} (plant: a community-owned generator, not a member)",
                "role",
            )
    if not np.isin(out, MEMBER_ROLES).any():
        raise InstanceError("every entry has role 'plant': a community needs at least one "
                            "member (consumer, prosumer or producer)", "role")
    return out.astype(str)


def member_roles(ds: xr.Dataset) -> np.ndarray:
    """The role of every entry of the ``member`` dim, shape ``(member,)``.

    The ``role`` variable when the instance has one; otherwise each entry is a
    consumer (no production), a producer (no consumption) or a prosumer, from its
    energies summed over scenarios and time.
    """
    if "role" in ds:
        return np.asarray(ds["role"].values).astype(str)
    others = [d for d in ds["consumption"].dims if d != MEMBER]
    cons = ds["consumption"].sum(others).transpose(MEMBER).values > 0
    prod = ds["production"].sum(others).transpose(MEMBER).values > 0
    return np.where(cons & prod, "prosumer", np.where(prod, "producer", "consumer")).astype(str)


def plant_mask(ds: xr.Dataset) -> np.ndarray:
    """``True`` for community-owned plants (role ``plant``), shape ``(member,)``."""
    if "role" not in ds:
        return np.zeros(ds.sizes[MEMBER], dtype=bool)
    return np.asarray(ds["role"].values).astype(str) == "plant"


def member_mask(ds: xr.Dataset) -> np.ndarray:
    """``True`` for entries that are members (hold key shares, get bills), ``(member,)``."""
    return ~plant_mask(ds)


def aggregate_mask(ds: xr.Dataset) -> np.ndarray:
    """Members counted in per-member aggregates (Gini, means), shape ``(member,)``.

    Members only (no plant), and not the community battery named by
    ``attrs["battery_member"]``.
    """
    names = np.asarray(ds[MEMBER].values).astype(str)
    mask = member_mask(ds)
    battery = ds.attrs.get("battery_member")
    if battery is not None:
        mask = mask & (names != str(battery))
    return mask


def with_roles(ds: xr.Dataset, roles: Sequence[str] | Mapping[str, str] | str) -> xr.Dataset:
    """A copy of ``ds`` with the ``role`` variable set.

    ``roles``: one role per member (in member order), a dict ``{member: role}``
    (members not named keep the role :func:`member_roles` gives them), or one role
    for all.
    """
    names = np.asarray(ds[MEMBER].values).astype(str)
    current = member_roles(ds)
    if isinstance(roles, str):
        values = np.full(names.size, roles, dtype=object)
    elif isinstance(roles, Mapping):
        unknown = sorted(set(map(str, roles)) - set(names))
        if unknown:
            raise InstanceError(f"roles names unknown member(s) {unknown}; members: "
                                f"{', '.join(names)}", "role")
        values = np.array([roles.get(m, current[i]) for i, m in enumerate(names)],
                          dtype=object)
    else:
        values = np.asarray(list(roles), dtype=object)
        if values.shape != names.shape:
            raise InstanceError(f"roles must hold one value per member ({names.size}); got "
                                f"{values.size}", "role")
    checked = check_roles(values, names)
    out = ds.copy()
    out["role"] = xr.DataArray(checked, dims=(MEMBER,), coords={MEMBER: ds[MEMBER]},
                               attrs={"units": "1"})
    return out


# ======================================================================================
# billing calendar
# ======================================================================================
def check_billing_timezone(tz: Any) -> str:
    """Check an IANA timezone name (``"Europe/Brussels"``, ``"UTC"``) and return it."""
    if isinstance(tz, np.generic):
        tz = tz.item()
    if not isinstance(tz, str) or not tz.strip():
        raise InstanceError(f"attribute billing_timezone is {tz!r}; it must be an IANA "
                            "timezone name such as 'Europe/Brussels' or 'UTC'",
                            "billing_timezone")
    try:
        pd.Timestamp("2000-01-01", tz="UTC").tz_convert(tz.strip())
    except Exception:  # noqa: BLE001 - zoneinfo / pytz raise several types
        raise InstanceError(f"attribute billing_timezone is {tz!r}, which is not a known "
                            "timezone; use an IANA name such as 'Europe/Brussels' or 'UTC'",
                            "billing_timezone") from None
    return tz.strip()


def billing_timezone(ds: xr.Dataset) -> str:
    """The instance's billing timezone (``attrs["billing_timezone"]``, default UTC)."""
    tz = ds.attrs.get("billing_timezone")
    return "UTC" if tz is None else check_billing_timezone(tz)


def local_time_index(ds: xr.Dataset) -> pd.DatetimeIndex:
    """The step start times in the billing timezone (tz-aware)."""
    return pd.DatetimeIndex(ds[TIME].values).tz_localize("UTC").tz_convert(
        billing_timezone(ds))


def billing_period_index(ds: xr.Dataset) -> np.ndarray:
    """Which billing period each time step falls in.

    Periods follow ``ds.attrs["billing_period"]`` (a pandas frequency, default
    ``"MS"``: calendar months) in the billing timezone
    ``ds.attrs["billing_timezone"]`` (default UTC), anchored like
    :meth:`pandas.Series.resample` on the local times: with ``"MS"`` and
    ``"Europe/Brussels"`` a period runs from local midnight of the 1st (22:00 or
    23:00 UTC of the day before, by DST) to local midnight of the next 1st. A step
    belongs to the period containing its start time.

    Returns
    -------
    numpy.ndarray of int64
        Shape ``(T,)``, values ``0 .. n_periods - 1`` in chronological order
        (periods without any step are skipped, so the numbering has no gaps).
    """
    freq = ds.attrs.get("billing_period") or ATTRIBUTES["billing_period"].default
    times = local_time_index(ds)
    try:
        groups = pd.Series(np.arange(times.size), index=times).groupby(
            pd.Grouper(freq=freq)).ngroup()
    except (ValueError, TypeError) as exc:
        raise InstanceError(
            f"billing_period '{freq}' is not a pandas frequency ({exc}); use e.g. 'MS'",
            "billing_period",
        ) from None
    _, inverse = np.unique(groups.to_numpy(), return_inverse=True)
    return inverse.astype(np.int64).reshape(times.size)
