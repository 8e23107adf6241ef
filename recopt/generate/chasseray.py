"""Instances of the Chasseray et al. test protocol (arXiv 2404.04428, §4.1-4.2).

:func:`generate` builds a validated instance (:func:`recopt.data.make_instance`) of
``n`` prosumer actors for the loop-design models (SLCpct ... MLColExt):

* **actors** (Table 6): profiles ``household`` (0-6 kW PV, 40 %), ``pro1`` (6-12 kW,
  40 %) and ``pro2`` (1-3 MW, 20 %); the counts are the rates times ``n`` rounded by
  largest remainder, assigned to actors in a random order, and each actor's installed
  power is uniform in its profile's range (:data:`PROFILES`);
* **consumption** (§4.1.1): the category's reference profile (BDEW 2025 ``H25`` for
  households, ``G25`` for professionals, in place of the Enedis references), a
  3-step rolling mean and a per-actor, per-step uniform variation of ±30 %
  (:mod:`recopt.generate.consumption`);
* **production** (§4.1.2): PV of each actor's installed power at the preset's tilt and
  azimuth, solar geometry and clear-sky irradiance per 10 km² tile with pvlib, a
  seeded stochastic cloudiness (:mod:`recopt.generate.pv`);
* **prices** (Tables 3-4): selling price by installed power band, buying price by
  tariff category, peak/off-peak hour and season, per step
  (:mod:`recopt.generate.prices`);
* **geography** (§4.1.4): uniform or clustered (clusters of 4-6 actors) placement at
  the preset's density in km coordinates (:mod:`recopt.generate.geography`); the
  legal distance and loop power cap are the ``max_distance_km`` and
  ``max_loop_power_kw`` attributes;
* **scenarios**: ``scenarios`` equiprobable realisations of the consumption variation
  and the cloudiness over the same actors (the first-stage design data are common to
  all scenarios; scenario ``s`` of an instance with more scenarios equals scenario
  ``s`` of any other instance with the same seed and settings); or, with
  ``scenario_method="bootstrap"``, synthetic years drawn by the seasonal block
  bootstrap (:func:`recopt.generate.bootstrap.seasonal_block_bootstrap`, the one
  implementation shared with the keys work) from a generated ``history_years``-year
  history of the same actors.

The paper's configurations (Table 5 and the sizes of Table 7) are :data:`PRESETS`.
Every instance carries its full settings (JSON) and seed in its attributes and is a
deterministic function of them (:func:`regenerate`).

Energies are kWh per step, prices EUR/kWh, powers kW, coordinates km.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data import make_instance
from recopt.generate.bootstrap import seasonal_block_bootstrap
from recopt.generate.consumption import actor_consumption, reference_profile
from recopt.generate.geography import (
    GeneratorError,
    km_to_latlon,
    place_clustered,
    place_uniform,
    region_side_km,
    tile_index,
)
from recopt.generate.prices import buying_price, selling_price
from recopt.generate.profiles import PERFORMANCE_RATIO, to_meter_resolution
from recopt.generate.pv import (
    MONTHLY_CLEAR_SKY_INDEX,
    actor_production,
    clear_sky_index,
    plane_of_array,
    tile_geometry,
)

__all__ = [
    "ActorProfile",
    "PROFILES",
    "Settings",
    "PRESETS",
    "GeneratorError",
    "settings_for",
    "generate",
    "generate_from_settings",
    "regenerate",
    "profile_counts",
]

GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class ActorProfile:
    """One actor profile of Table 6.

    Attributes
    ----------
    reference : str
        Reference consumption profile (``household`` or ``professional``).
    tariff : str
        Buying tariff (key of :data:`recopt.generate.prices.BUY_TARIFFS`).
    power_kw : tuple of float
        Installed PV power range (kW), drawn uniformly.
    annual_kwh : float
        Annual consumption of the category's average site (kWh/year); an assumption,
        the paper gives none (see ``models/generator.md``).
    """

    reference: str
    tariff: str
    power_kw: tuple[float, float]
    annual_kwh: float


#: Table 6 profiles. Household: Enedis "Household (P <= 36 kVA)" reference, 0-6 kW;
#: Pro1: "Pro (P <= 36 kVA)", 6-12 kW; Pro2: "Pro (P > 36 kVA)", 1-3 MW.
PROFILES: dict[str, ActorProfile] = {
    "household": ActorProfile("household", "household_le36kva", (0.0, 6.0), 4_500.0),
    "pro1": ActorProfile("professional", "pro_le36kva", (6.0, 12.0), 10_000.0),
    "pro2": ActorProfile("professional", "pro_gt36kva", (1_000.0, 3_000.0), 1_000_000.0),
}


@dataclass(frozen=True)
class Settings:
    """Every setting of the generator (defaults: the paper's ``reference`` case).

    Attributes
    ----------
    actors : int
        Number of actors ``n``.
    days : int
        Horizon in days.
    start : str
        Local date (``timezone``) of the first step.
    step_minutes : int
        Step length (15, 30 or 60 min; Table 7's integer counts imply hourly steps).
    timezone : str
        Local time zone of load profiles and tariff hours.
    latitude, longitude, altitude_m : float
        South-west corner of the region (degrees) and site altitude (m).
    placement : {"clustered", "uniform"}
        §4.1.4 placements.
    density : float
        Actors per km² (Table 5).
    cluster_size : tuple of int
        Allowed cluster sizes (min, max), §5.1: 4-6.
    cluster_radius_km : float
        Radius of the disc holding a cluster's actors, km.
    tile_area_km2 : float
        Tile sharing one solar geometry, km² (§4.1.2: 10).
    tilt, azimuth : float
        Panel tilt and azimuth, degrees (180 = South, 0 = North; Table 5).
    albedo, performance_ratio : float
        Ground reflectance; PV performance ratio.
    max_distance_km, max_loop_power_kw : float
        Legal distance between loop members (km) and loop installed-power cap (kW).
    mix : dict
        Profile name -> rate (Table 6: 0.4 / 0.4 / 0.2); rates sum to 1.
    annual_kwh, power_kw : dict
        Per-profile overrides of :data:`PROFILES` (annual consumption, power range).
    variation : float
        Relative half-width of the per-step uniform consumption variation (0.3).
    rolling_window : int
        Rolling-mean window of the reference profiles in steps (3).
    scenarios : int
        Number of equiprobable scenarios.
    scenario_method : {"independent", "bootstrap"}
        ``independent``: each scenario is a fresh draw of the consumption variation and
        the cloudiness. ``bootstrap``: a ``history_years``-year history is drawn once
        and the scenarios are synthetic years of its seasonal block bootstrap
        (:func:`recopt.generate.bootstrap.seasonal_block_bootstrap`, Ospina §4.4.2); the
        horizon must then lie within one 1 Dec - 30 Nov non-leap year.
    history_years : int
        Length of the bootstrap history in years.
    internal_price : float
        Price of energy exchanged inside a loop (EUR/kWh), written as both community
        prices; the loop models do not use it (§3.2.5), the KPIs may.
    cloud_concentration, cloud_sigma, cloud_tau_hours : float
        Cloudiness model (:func:`recopt.generate.pv.clear_sky_index`).
    monthly_clear_sky_index : tuple of float
        Mean daily clear-sky index per month.
    off_peak_hours : tuple of int
        Local off-peak window (start, end) hours.
    winter_months : tuple of int
        Months of the tariff winter season.
    """

    actors: int = 15
    days: int = 30
    start: str = "2022-03-01"
    step_minutes: int = 60
    timezone: str = "Europe/Paris"
    latitude: float = 46.6
    longitude: float = 2.4
    altitude_m: float = 150.0
    placement: str = "clustered"
    density: float = 0.5
    cluster_size: tuple[int, int] = (4, 6)
    cluster_radius_km: float = 0.5
    tile_area_km2: float = 10.0
    tilt: float = 30.0
    azimuth: float = 180.0
    albedo: float = 0.2
    performance_ratio: float = PERFORMANCE_RATIO
    max_distance_km: float = 2.0
    max_loop_power_kw: float = 3000.0
    mix: dict[str, float] = field(
        default_factory=lambda: {"household": 0.4, "pro1": 0.4, "pro2": 0.2})
    annual_kwh: dict[str, float] = field(default_factory=dict)
    power_kw: dict[str, tuple[float, float]] = field(default_factory=dict)
    variation: float = 0.3
    rolling_window: int = 3
    scenarios: int = 1
    scenario_method: str = "independent"
    history_years: int = 5
    internal_price: float = 0.15
    cloud_concentration: float = 4.0
    cloud_sigma: float = 0.10
    cloud_tau_hours: float = 3.0
    monthly_clear_sky_index: tuple[float, ...] = MONTHLY_CLEAR_SKY_INDEX
    off_peak_hours: tuple[int, int] = (22, 6)
    winter_months: tuple[int, ...] = (11, 12, 1, 2, 3)

    # ---- derived ---------------------------------------------------------------------
    @property
    def step_hours(self) -> float:
        return self.step_minutes / 60.0

    @property
    def n_steps(self) -> int:
        return self.days * 1440 // self.step_minutes

    def profile(self, name: str) -> ActorProfile:
        """:data:`PROFILES` entry with this setting's overrides."""
        p = PROFILES[name]
        low, high = self.power_kw.get(name, p.power_kw)
        return dataclasses.replace(
            p,
            annual_kwh=float(self.annual_kwh.get(name, p.annual_kwh)),
            power_kw=(float(low), float(high)),
        )

    def to_json(self) -> str:
        """The settings as canonical JSON (sorted keys)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return _make_settings(json.loads(text))


_TUPLE_FIELDS = ("cluster_size", "monthly_clear_sky_index", "off_peak_hours",
                 "winter_months")
_FIELDS = {f.name for f in dataclasses.fields(Settings)}


def _make_settings(values: Mapping[str, Any]) -> Settings:
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise GeneratorError(
            f"unknown generator setting(s) {unknown}; known: {sorted(_FIELDS)}")
    v = dict(values)
    for f in dataclasses.fields(Settings):  # canonical types: the JSON (and hash) of
        if f.name not in v or isinstance(v[f.name], bool):  # equal settings are equal
            continue
        number = isinstance(v[f.name], int | np.integer | float)
        if f.type in ("int", int, "float", float) and not number:
            raise GeneratorError(f"setting {f.name}={v[f.name]!r} must be a number")
        if f.type in ("int", int) and number:
            if not math.isfinite(float(v[f.name])) or float(v[f.name]) != int(v[f.name]):
                raise GeneratorError(f"setting {f.name}={v[f.name]!r} must be an integer")
            v[f.name] = int(v[f.name])
        elif f.type in ("float", float) and number:
            if not math.isfinite(float(v[f.name])):
                raise GeneratorError(f"setting {f.name}={v[f.name]!r} must be finite")
            v[f.name] = float(v[f.name])
    try:  # containers: the shapes the docstring gives, or an error naming the setting
        for name in _TUPLE_FIELDS:
            if name in v:
                v[name] = tuple(v[name])
        if "power_kw" in v:
            v["power_kw"] = {k: tuple(float(x) for x in r)
                             for k, r in dict(v["power_kw"]).items()}
        for name in ("mix", "annual_kwh"):
            if name in v:
                if not isinstance(v[name], Mapping):
                    raise TypeError("a table {profile: number} is expected")
                v[name] = {k: float(x) for k, x in dict(v[name]).items()}
    except (TypeError, ValueError) as exc:
        bad = next((n for n in (*_TUPLE_FIELDS, "power_kw", "mix", "annual_kwh")
                    if n in values and not isinstance(v[n], tuple | dict)), None)
        raise GeneratorError(f"setting {bad or 'mix/annual_kwh/power_kw'}="
                             f"{values.get(bad) if bad else ''!r} has the wrong shape: {exc}"
                             ) from None
    s = Settings(**v)
    _check(s)
    return s


def _check(s: Settings) -> None:
    def bad(name, why):
        raise GeneratorError(f"setting {name}={getattr(s, name)!r}: {why}")

    for name in ("actors", "days", "scenarios", "rolling_window", "history_years"):
        val = getattr(s, name)
        if isinstance(val, bool) or not isinstance(val, int | np.integer) or val < 1:
            bad(name, "must be an integer >= 1")
    if s.step_minutes not in (15, 30, 60):
        bad("step_minutes", "must be 15, 30 or 60")
    if s.placement not in ("clustered", "uniform"):
        bad("placement", "must be 'clustered' or 'uniform'")
    if s.scenario_method not in ("independent", "bootstrap"):
        bad("scenario_method", "must be 'independent' or 'bootstrap'")
    for name in ("density", "tile_area_km2", "max_distance_km", "max_loop_power_kw",
                 "cloud_concentration", "cloud_tau_hours"):
        if not float(getattr(s, name)) > 0:
            bad(name, "must be > 0")
    if not 0 <= s.variation < 1:
        bad("variation", "must be in [0, 1)")
    if not 0 <= s.tilt <= 90:
        bad("tilt", "must be in [0, 90] degrees")
    if not 0 <= s.azimuth < 360:
        bad("azimuth", "must be in [0, 360) degrees (180 = South)")
    unknown = sorted((set(s.mix) | set(s.annual_kwh) | set(s.power_kw)) - set(PROFILES))
    if unknown:
        raise GeneratorError(f"unknown actor profile(s) {unknown}; known: {sorted(PROFILES)}")
    rates = np.array(list(s.mix.values()), dtype=float)
    if (rates < 0).any() or abs(rates.sum() - 1.0) > 1e-9:
        bad("mix", "rates must be >= 0 and sum to 1")
    for name in PROFILES:
        lo, hi = s.profile(name).power_kw
        if not 0 <= lo <= hi:
            raise GeneratorError(f"power_kw[{name!r}] = {(lo, hi)}: need 0 <= min <= max")
    if len(s.monthly_clear_sky_index) != 12 or not all(
            0 < m < 1 for m in s.monthly_clear_sky_index):
        bad("monthly_clear_sky_index", "needs 12 values in (0, 1)")
    try:
        pd.Timestamp(s.start)
    except (ValueError, TypeError):
        bad("start", "is not a date")


#: The paper's configurations: Table 5 (reference, dens_0_1, dens_2, period_sum,
#: power_1000/2000/5000, config_wc; 15 actors x 30 days, which gives Table 7's 735
#: SLCpct integer variables = n + steps) and the size series of Table 7 (10 actors over
#: 1...360 days; 10/15/20/30 actors over 7 days). Values override :class:`Settings`.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {},
    "dens_0_1": {"density": 0.1},
    "dens_2": {"density": 2.0},
    "period_sum": {"start": "2022-07-01"},
    "power_1000": {"max_loop_power_kw": 1000.0},
    "power_2000": {"max_loop_power_kw": 2000.0},
    "power_5000": {"max_loop_power_kw": 5000.0},
    "config_wc": {"azimuth": 0.0, "tilt": 60.0},
    **{f"10_act_{d}_d": {"actors": 10, "days": d}
       for d in (1, 7, 10, 14, 30, 60, 90, 180, 270, 360)},
    **{f"{n}_act_7_d": {"actors": n, "days": 7} for n in (15, 20, 30)},
    # stress cases of the loop enumeration (§5.1, §5.3.2, Fig. 7: dense graphs make
    # MLCol intractable): uniform placement at high density, and complete graphs
    # (every pair within the legal distance and the power cap: every subset of >= 2
    # actors with a possible flow is a loop)
    "dens_2_uniform": {"density": 2.0, "placement": "uniform"},
    "dens_5_uniform": {"density": 5.0, "placement": "uniform"},
    "dens_10_uniform": {"density": 10.0, "placement": "uniform"},
    "complete": {"placement": "uniform", "max_distance_km": 1.0e4,
                 "max_loop_power_kw": 1.0e7},
}


def settings_for(preset: str = "reference", **overrides) -> Settings:
    """The :class:`Settings` of a preset with overrides (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise GeneratorError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return _make_settings(values)


def profile_counts(n: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Actors per profile: ``n * rate`` rounded by largest remainder (ties: mix order)."""
    names = list(mix)
    exact = np.array([n * mix[k] for k in names], dtype=float)
    base = np.floor(exact + 1e-9).astype(int)
    left = n - int(base.sum())
    order = sorted(range(len(names)), key=lambda i: (-(exact[i] - base[i]), i))
    for i in order[:left]:
        base[i] += 1
    return {k: int(c) for k, c in zip(names, base, strict=True)}


def generate(preset: str = "reference", actors: int | None = None, days: int | None = None,
             seed: int = 0, placement: str | None = None, scenarios: int = 1,
             **overrides) -> xr.Dataset:
    """An instance of the Chasseray test protocol.

    Parameters
    ----------
    preset : str, default "reference"
        A key of :data:`PRESETS` (Table 5 configurations and Table 7 sizes).
    actors, days : int, optional
        Number of actors and horizon in days; default: the preset's (the Table 5
        configurations: 15 actors, 30 days).
    seed : int, default 0
        Seed of every random draw.
    placement : {"clustered", "uniform"}, optional
        Geographical distribution (§4.1.4); default: the preset's (``clustered`` but
        for the ``*_uniform`` and ``complete`` stress presets).
    scenarios : int, default 1
        Number of equiprobable stochastic realisations (consumption variation and
        cloudiness) over the same actors; with ``scenario_method="bootstrap"`` they are
        synthetic years of the seasonal block bootstrap of a generated history.
    **overrides
        Any other :class:`Settings` field (``density``, ``tilt``, ``azimuth``,
        ``max_loop_power_kw``, ``start``, ``step_minutes``, ``mix``, ...).

    Returns
    -------
    xarray.Dataset
        A validated instance: ``consumption``/``production`` (kWh per step, rounded to
        1 Wh), ``price_grid_buy`` (time, member), ``price_grid_sell`` (member),
        community prices (the ``internal_price``), ``installed_power`` (kW), ``x_km``,
        ``y_km``, ``category`` (profile name), ``cluster`` (member, clustered placement
        only); attrs ``max_distance_km``, ``max_loop_power_kw``, ``generator``,
        ``generator_preset``, ``generator_seed``, ``generator_settings`` (JSON).

    Examples
    --------
    >>> ds = generate("30_act_7_d", seed=3)
    >>> ds.sizes["member"], ds.sizes["time"]
    (30, 168)
    """
    s = settings_for(preset, actors=actors, days=days, placement=placement,
                     scenarios=scenarios, **overrides)
    return generate_from_settings(s, seed=seed, preset=preset)


def regenerate(ds: xr.Dataset) -> xr.Dataset:
    """Rebuild an instance from the settings and seed in its attributes."""
    try:
        text = ds.attrs["generator_settings"]
        seed = int(ds.attrs["generator_seed"])
    except KeyError:
        raise GeneratorError("this instance carries no generator settings/seed "
                             "(attrs generator_settings, generator_seed)") from None
    return generate_from_settings(Settings.from_json(text), seed=seed,
                                  preset=str(ds.attrs.get("generator_preset", "custom")))


def _time_axis(s: Settings) -> pd.DatetimeIndex:
    start = pd.Timestamp(s.start).tz_localize(s.timezone).tz_convert("UTC").tz_localize(None)
    return pd.date_range(start, periods=s.n_steps, freq=pd.Timedelta(minutes=s.step_minutes))


@dataclass
class _Actors:
    """The first-stage data of one instance: who, where, how much PV."""

    category: np.ndarray
    kwp: np.ndarray
    x: np.ndarray
    y: np.ndarray
    cluster: np.ndarray | None
    side_km: float


def _draw_actors(s: Settings, r_actor: np.random.Generator,
                 r_place: np.random.Generator) -> _Actors:
    # Table 6: counts by largest remainder, random order, power uniform in the range
    counts = profile_counts(s.actors, s.mix)
    category = np.array([k for k, c in counts.items() for _ in range(c)])
    category = category[r_actor.permutation(s.actors)]
    lo = np.array([s.profile(c).power_kw[0] for c in category])
    hi = np.array([s.profile(c).power_kw[1] for c in category])
    kwp = np.round(r_actor.uniform(lo, hi), 2)
    # §4.1.4
    side = region_side_km(s.actors, s.density)
    if s.placement == "clustered":
        x, y, cluster = place_clustered(s.actors, side, r_place, size_range=s.cluster_size,
                                        radius_km=s.cluster_radius_km)
    else:
        x, y = place_uniform(s.actors, side, r_place)
        cluster = None
    return _Actors(category, kwp, np.round(x, 3), np.round(y, 3), cluster, side)


class _Series:
    """Consumption and production of fixed actors on one time axis (seed-free parts
    computed once: reference profiles and solar geometry, themselves cached)."""

    def __init__(self, s: Settings, a: _Actors, times: pd.DatetimeIndex):
        self.s, self.a = s, a
        T = times.size
        start_ns = int(times[0].value)
        local_mid = (times + pd.Timedelta(minutes=s.step_minutes) / 2).tz_localize(
            "UTC").tz_convert(s.timezone)
        local_day = local_mid.normalize().tz_localize(None)
        self.day = np.unique(local_day.values, return_inverse=True)[1].ravel()
        self.month = local_mid.month.to_numpy()
        # §4.1.1 reference profiles (cached per category and time axis)
        profiles = {c: s.profile(c) for c in np.unique(a.category)}
        ref = {p.reference: reference_profile(p.reference, start_ns, T, s.step_minutes,
                                              s.timezone, s.rolling_window)
               for p in profiles.values()}
        self.ref_kw = np.stack([ref[profiles[c].reference] for c in a.category], axis=1)
        self.annual = np.array([profiles[c].annual_kwh for c in a.category])
        # §4.1.2 solar geometry per 10 km2 tile (cached per tile and time axis)
        tiles = tile_index(a.x, a.y, s.tile_area_km2)
        uniq, tile_of = np.unique(tiles, axis=0, return_inverse=True)
        self.tile_of = tile_of.ravel()
        self.n_tiles = len(uniq)
        tside = float(np.sqrt(s.tile_area_km2))
        tlat, tlon = km_to_latlon((uniq[:, 0] + 0.5) * tside, (uniq[:, 1] + 0.5) * tside,
                                  s.latitude, s.longitude)
        geos = [tile_geometry(round(float(la), 6), round(float(lo), 6), start_ns, T,
                              s.step_minutes, float(s.altitude_m))
                for la, lo in zip(tlat, tlon, strict=True)]
        self.geometry = {k: np.stack([g[k] for g in geos], axis=1) for k in geos[0]}

    def draw(self, r_cons: np.random.Generator, r_weather: np.random.Generator):
        """One realisation: ``(consumption, production)``, each ``(T, n)`` kWh per step."""
        s = self.s
        cons = actor_consumption(self.ref_kw, self.annual, s.step_hours, s.variation, r_cons)
        k = clear_sky_index(self.day, self.month, self.n_tiles, s.step_hours, r_weather,
                            concentration=s.cloud_concentration, sigma=s.cloud_sigma,
                            tau_hours=s.cloud_tau_hours, monthly=s.monthly_clear_sky_index)
        poa = plane_of_array(self.geometry, k, s.tilt, s.azimuth, s.albedo)
        prod = actor_production(poa, self.tile_of, self.a.kwp, s.step_hours,
                                s.performance_ratio)
        return cons, prod


def generate_from_settings(s: Settings, *, seed: int = 0, preset: str = "custom") -> xr.Dataset:
    """:func:`generate` from a :class:`Settings` (see there)."""
    seed = int(seed)
    if seed < 0:
        raise GeneratorError(f"seed must be >= 0, got {seed}")
    S = s.scenarios
    # independent streams; adding streams at the end never changes the earlier ones
    ss_actor, ss_place, ss_cons, ss_weather, ss_boot = np.random.SeedSequence(seed).spawn(5)
    actors = _draw_actors(s, np.random.default_rng(ss_actor), np.random.default_rng(ss_place))
    times = _time_axis(s)
    extra: dict[str, xr.DataArray] = {}
    if s.scenario_method == "independent":
        series = _Series(s, actors, times)
        cons = np.empty((S, times.size, s.actors))
        prod = np.empty_like(cons)
        for k, (c, w) in enumerate(zip(ss_cons.spawn(S), ss_weather.spawn(S), strict=True)):
            cons[k], prod[k] = series.draw(np.random.default_rng(c), np.random.default_rng(w))
    else:
        cons, prod, extra = _bootstrap_energies(s, actors, times, ss_cons, ss_weather, ss_boot)
    return _assemble(s, seed, preset, actors, times, cons, prod, extra)


def _bootstrap_year(s: Settings, times: pd.DatetimeIndex) -> int:
    """The synthetic year (1 Dec ``Y-1`` ... 30 Nov ``Y``, UTC) holding the horizon."""
    first, last = times[0], times[-1]
    year = first.year + (1 if first.month == 12 else 0)
    lo = pd.Timestamp(f"{year - 1}-12-01")
    hi = pd.Timestamp(f"{year}-12-01")
    if not (lo <= first and last < hi):
        raise GeneratorError(
            f"scenario_method='bootstrap' needs the horizon ({first} ... {last} UTC) inside "
            f"one synthetic year 1 Dec {year - 1} ... 30 Nov {year} (UTC); shorten days or "
            "move start")
    if pd.Timestamp(year=year, month=1, day=1).is_leap_year:
        raise GeneratorError(f"scenario_method='bootstrap' needs a non-leap synthetic year, "
                             f"the horizon falls in {year}; move start")
    return year


def _bootstrap_energies(s, actors, times, ss_cons, ss_weather, ss_boot):
    """Scenarios by the seasonal block bootstrap of a generated multi-year history.

    The history is ``history_years`` years (1 Dec ``Y - history_years`` ... 30 Nov
    ``Y``) of one realisation for the same actors; the bootstrap
    (:func:`recopt.generate.bootstrap.seasonal_block_bootstrap`, Ospina §4.4.2) draws
    ``scenarios`` synthetic years from its seasonal blocks, and the horizon is cut
    out of each.
    """
    year = _bootstrap_year(s, times)
    step = pd.Timedelta(minutes=s.step_minutes)
    hist_times = pd.date_range(pd.Timestamp(f"{year - s.history_years}-12-01"),
                               pd.Timestamp(f"{year}-12-01"), freq=step, inclusive="left")
    series = _Series(s, actors, hist_times)
    c, w = ss_cons.spawn(1)[0], ss_weather.spawn(1)[0]
    h_cons, h_prod = series.draw(np.random.default_rng(c), np.random.default_rng(w))
    members = _member_names(s.actors)
    history = make_instance(h_cons, h_prod, price_grid_buy=0.0, price_grid_sell=0.0,
                            price_community_buy=0.0, price_community_sell=0.0,
                            time=hist_times, members=members,
                            time_step_hours=s.step_hours)
    boot_seed = int(ss_boot.generate_state(1)[0])
    boot = seasonal_block_bootstrap(history, s.scenarios, seed=boot_seed, year=year)
    window = boot.sel(time=slice(times[0], times[-1]))
    if window.sizes["time"] != times.size:  # pragma: no cover - guarded by _bootstrap_year
        raise GeneratorError("the bootstrap year does not cover the horizon")
    extra = {name: window[name].rename({"season": "bootstrap_season"})
             for name in ("bootstrap_block_consumption", "bootstrap_block_production")}
    for da in extra.values():
        da.attrs["bootstrap_seed"] = boot_seed
    return (window["consumption"].values, window["production"].values, extra)


def _member_names(n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"A{i:0{width}d}" for i in range(1, n + 1)]


def _assemble(s: Settings, seed: int, preset: str, a: _Actors, times: pd.DatetimeIndex,
              cons: np.ndarray, prod: np.ndarray, extra) -> xr.Dataset:
    """The validated instance (prices of Tables 3-4, attributes, extra variables)."""
    n, S = s.actors, cons.shape[0]
    tariffs = [s.profile(c).tariff for c in a.category]
    buy = buying_price(times, tariffs, timezone=s.timezone,
                       off_peak_hours=s.off_peak_hours, winter_months=s.winter_months)
    sell = selling_price(a.kwp)
    members = _member_names(n)
    buy_da = xr.DataArray(buy, dims=("time", "member"),
                          coords={"time": times.values, "member": members})
    ds = make_instance(
        to_meter_resolution(cons),
        to_meter_resolution(prod),
        price_grid_buy=buy_da,
        price_grid_sell=dict(zip(members, sell.tolist(), strict=True)),
        price_community_buy=float(s.internal_price),
        price_community_sell=float(s.internal_price),
        time=times,
        members=members,
        scenarios=[f"s{k}" for k in range(S)],
        time_step_hours=s.step_hours,
        installed_power=a.kwp,
        x_km=a.x,
        y_km=a.y,
        category=a.category.tolist(),
        attrs={
            "max_distance_km": float(s.max_distance_km),
            "max_loop_power_kw": float(s.max_loop_power_kw),
            "title": f"Chasseray protocol '{preset}': {n} actors, {s.days} days of "
                     f"{s.step_minutes} min from {s.start} ({s.timezone}), {S} scenario(s) "
                     f"({s.scenario_method}), seed {seed}",
            "source": "recopt.generate.chasseray.generate; Chasseray et al. (arXiv "
                      "2404.04428) §4.1-4.2, Tables 3-6; see models/generator.md",
            "generator": "recopt.generate.chasseray",
            "generator_version": GENERATOR_VERSION,
            "generator_preset": preset,
            "generator_seed": seed,
            "generator_settings": s.to_json(),
            "region_side_km": float(a.side_km),
        },
    )
    if a.cluster is not None:
        ds["cluster"] = xr.DataArray(a.cluster.astype(np.int64), dims=("member",),
                                     attrs={"description": "cluster of the actor "
                                                           "(clustered placement)"})
    for name, da in extra.items():
        ds[name] = da.assign_coords(scenario=ds["scenario"].values)
    return ds
