"""recopt.generate.chasseray: the Chasseray et al. test protocol (arXiv 2404.04428 §4.1-4.2).

Checks against the paper's tables (Tables 3-7) and against independent computations
(pvlib solar position, the demandlib reference profiles), never against stored outputs.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from recopt.data import instance_hash, load, save, validate
from recopt.generate import chasseray as ch
from recopt.generate.consumption import reference_profile
from recopt.generate.geography import GeneratorError, cluster_sizes, region_side_km
from recopt.generate.prices import selling_price

# Table 7 of the paper: SLCpct integer-variable counts (n + |T|, hourly steps).
TABLE7_SLCPCT_INTEGERS = {
    "reference": 735, "dens_0_1": 735, "dens_2": 735, "period_sum": 735,
    "power_1000": 735, "power_5000": 735, "config_wc": 735,
    "10_act_1_d": 34, "10_act_10_d": 250, "10_act_14_d": 346, "10_act_30_d": 730,
    "10_act_60_d": 1450, "10_act_90_d": 2170, "10_act_180_d": 4330,
    "10_act_270_d": 6490, "10_act_360_d": 8650,
    "10_act_7_d": 178, "15_act_7_d": 183, "20_act_7_d": 188, "30_act_7_d": 198,
}
# Table 5 of the paper: orientation (azimuth), tilt, density (actors/km2), power limit (kW).
TABLE5 = {
    "reference": (180, 30, 0.5, 3000), "dens_0_1": (180, 30, 0.1, 3000),
    "dens_2": (180, 30, 2.0, 3000), "period_sum": (180, 30, 0.5, 3000),
    "power_1000": (180, 30, 0.5, 1000), "power_2000": (180, 30, 0.5, 2000),
    "power_5000": (180, 30, 0.5, 5000), "config_wc": (0, 60, 0.5, 3000),
}
# Table 6: profile -> (installed power range kW, rate)
TABLE6 = {"household": ((0, 6), 0.4), "pro1": ((6, 12), 0.4), "pro2": ((1000, 3000), 0.2)}


@pytest.fixture(scope="module")
def week30():
    return ch.generate("30_act_7_d", seed=3)


# --------------------------------------------------------------------------------------
# reproducibility
# --------------------------------------------------------------------------------------
def test_same_seed_same_instance_other_seed_differs(week30):
    again = ch.generate("30_act_7_d", seed=3)
    xr.testing.assert_identical(week30, again)
    assert instance_hash(week30) == instance_hash(again)
    other = ch.generate("30_act_7_d", seed=4)
    for name in ("consumption", "production", "installed_power", "x_km"):
        assert not np.array_equal(week30[name].values, other[name].values), name


def test_saved_files_are_byte_identical_and_regenerate_from_attrs(tmp_path):
    a = ch.generate("10_act_7_d", seed=11, scenarios=2, placement="uniform")
    b = ch.generate("10_act_7_d", seed=11, scenarios=2, placement="uniform")
    save(a, tmp_path / "a.nc")
    save(b, tmp_path / "b.nc")
    da = hashlib.sha256((tmp_path / "a.nc").read_bytes()).hexdigest()
    db = hashlib.sha256((tmp_path / "b.nc").read_bytes()).hexdigest()
    assert da == db
    loaded = load(tmp_path / "a.nc")
    assert instance_hash(loaded) == instance_hash(a)
    assert int(loaded.attrs["generator_seed"]) == 11
    assert loaded.attrs["generator_preset"] == "10_act_7_d"
    again = ch.regenerate(loaded)
    assert instance_hash(again) == instance_hash(a)


def test_settings_json_round_trip():
    s = ch.settings_for("config_wc", mix={"household": 0.5, "pro1": 0.3, "pro2": 0.2},
                        power_kw={"pro2": (500, 900)}, cluster_size=(3, 5))
    assert ch.Settings.from_json(s.to_json()) == s


def test_scenarios_share_actors_and_extend_the_single_scenario_instance():
    one = ch.generate("10_act_7_d", seed=2)
    three = ch.generate("10_act_7_d", seed=2, scenarios=3)
    assert three.sizes["scenario"] == 3
    np.testing.assert_allclose(three["scenario_probability"].values, 1 / 3)
    for name in ("installed_power", "x_km", "y_km", "category", "price_grid_sell"):
        np.testing.assert_array_equal(one[name].values, three[name].values)
    np.testing.assert_array_equal(one["consumption"].values[0], three["consumption"].values[0])
    np.testing.assert_array_equal(one["production"].values[0], three["production"].values[0])
    c = three["consumption"].values
    p = three["production"].values
    assert not np.array_equal(c[0], c[1]) and not np.array_equal(p[1], p[2])


# --------------------------------------------------------------------------------------
# actors: Table 6
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [10, 15, 20, 30])
def test_profile_mix_counts(n):
    ds = ch.generate("reference", actors=n, days=1, seed=n, placement="uniform")
    cat = ds["category"].values.tolist()
    for name, (_, rate) in TABLE6.items():
        assert abs(cat.count(name) - rate * n) < 1, (name, cat.count(name))
    assert len(cat) == n


def test_installed_power_in_table6_ranges_and_spread():
    ds = ch.generate("reference", actors=200, days=1, seed=0, placement="uniform")
    kw = ds["installed_power"].values
    cat = ds["category"].values
    for name, ((lo, hi), _) in TABLE6.items():
        v = kw[cat == name]
        assert v.size > 20
        assert v.min() >= lo and v.max() <= hi, name
        # uniform draws fill the range
        assert v.min() < lo + 0.2 * (hi - lo) and v.max() > hi - 0.2 * (hi - lo), name


def test_profile_counts_largest_remainder():
    assert ch.profile_counts(15, {"household": 0.4, "pro1": 0.4, "pro2": 0.2}) == {
        "household": 6, "pro1": 6, "pro2": 3}
    assert ch.profile_counts(7, {"household": 0.4, "pro1": 0.4, "pro2": 0.2}) == {
        "household": 3, "pro1": 3, "pro2": 1}
    assert sum(ch.profile_counts(13, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}).values()) == 13


# --------------------------------------------------------------------------------------
# consumption: reference profile, rolling mean, +/-30 % variation
# --------------------------------------------------------------------------------------
def test_consumption_within_variation_of_reference(week30):
    s = ch.Settings.from_json(week30.attrs["generator_settings"])
    start_ns = int(pd.Timestamp(week30["time"].values[0]).value)
    T = week30.sizes["time"]
    cons = week30["consumption"].isel(scenario=0).values
    ratios = []
    for i, cat in enumerate(week30["category"].values):
        prof = s.profile(cat)
        ref = reference_profile(prof.reference, start_ns, T, 60)
        expected = ref * prof.annual_kwh / 1e6 * 1.0  # kWh per hourly step
        r = cons[:, i] / expected
        ratios.append(r)
        # +/- 30 % around the reference (+ 1 Wh meter rounding)
        assert (cons[:, i] >= 0.7 * expected - 6e-4).all()
        assert (cons[:, i] <= 1.3 * expected + 6e-4).all()
    r = np.concatenate(ratios)
    assert abs(r.mean() - 1.0) < 0.02  # uniform variation has mean 0
    assert r.std() > 0.15  # and really varies (uniform on [0.7, 1.3]: std 0.173)


def test_rolling_mean_of_three_steps():
    start = pd.Timestamp("2022-03-01 12:00")
    step = pd.Timedelta(hours=1)
    raw = reference_profile("household", int((start - step).value), 50, 60, window=1)
    smooth = reference_profile("household", int(start.value), 48, 60, window=3)
    expected = (raw[:-2] + raw[1:-1] + raw[2:]) / 3.0
    np.testing.assert_allclose(smooth, expected, rtol=1e-12)
    assert not np.allclose(smooth, raw[1:-1])


def test_reference_profiles_differ_by_category():
    start = int(pd.Timestamp("2022-03-05 23:00").value)  # a local Sunday, 00:00 Paris
    house = reference_profile("household", start, 24, 60)
    pro = reference_profile("professional", start, 24 * 8, 60)
    # a professional site consumes much less on Sunday than on the next Monday
    assert pro[:24].mean() < 0.8 * pro[24:48].mean()
    assert not np.allclose(house / house.mean(), pro[:24] / pro[:24].mean())
    # BDEW 2025: ~1 GWh a year -> about 114 kW of mean power
    assert 50 < house.mean() < 250


# --------------------------------------------------------------------------------------
# production
# --------------------------------------------------------------------------------------
def test_pv_zero_at_night_and_bounded(week30):
    from pvlib.solarposition import get_solarposition

    times = pd.DatetimeIndex(week30["time"].values).tz_localize("UTC")
    s = ch.Settings.from_json(week30.attrs["generator_settings"])
    # sun below the horizon during the whole step (start and end), at the region corner
    el0 = get_solarposition(times, s.latitude, s.longitude)["elevation"].to_numpy()
    el1 = get_solarposition(times + pd.Timedelta(hours=1), s.latitude,
                            s.longitude)["elevation"].to_numpy()
    night = (el0 < -1.0) & (el1 < -1.0)
    assert night.sum() > 50
    prod = week30["production"].values
    assert (prod[:, night, :] == 0).all()
    assert (prod[:, ~night, :].sum(axis=1) > 0)[:, week30["installed_power"].values > 0].all()
    # never more than the installed power times one hour
    kw = week30["installed_power"].values
    assert (prod <= kw[None, None, :] * 1.0 + 1e-3).all()


def test_best_exposition_produces_more_than_worst():
    best = ch.generate("reference", actors=10, days=7, seed=5)
    worst = ch.generate("config_wc", actors=10, days=7, seed=5)
    # same actors and weather, only the exposition differs
    np.testing.assert_array_equal(best["installed_power"].values,
                                  worst["installed_power"].values)
    np.testing.assert_array_equal(best["consumption"].values, worst["consumption"].values)
    kw = best["installed_power"].values
    pb = best["production"].sum(("scenario", "time")).values
    pw = worst["production"].sum(("scenario", "time")).values
    has = kw > 0.5
    assert (pb[has] > 1.5 * pw[has]).all()
    # specific yield in early March at 30 deg South: ~1.5-5 kWh/kWp/day
    daily = pb[has].sum() / kw[has].sum() / 7
    assert 1.0 < daily < 5.5


def test_tile_geometry_matches_pvlib_location():
    from pvlib.location import Location

    from recopt.generate.pv import tile_geometry

    start = pd.Timestamp("2022-06-20 22:00")
    g = tile_geometry(46.63, 2.47, int(start.value), 48, 60, 150.0)
    mid = pd.date_range(start + pd.Timedelta(minutes=30), periods=48, freq="h", tz="UTC")
    loc = Location(46.63, 2.47, tz="UTC", altitude=150.0)
    cs = loc.get_clearsky(mid, model="ineichen")
    sp = loc.get_solarposition(mid)
    np.testing.assert_allclose(g["ghi_clear"], cs["ghi"].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(g["zenith"], sp["apparent_zenith"].to_numpy(), atol=1e-9)
    assert g["ghi_clear"].max() > 700  # midsummer noon, clear sky
    assert (g["ghi_clear"][g["zenith"] > 90] == 0).all()


def test_paper_section_5_4_orderings():
    """§5.4: with the best exposition production exceeds consumption (March and July),
    with the worst it falls below; July / March production < 2 ("less than 2")."""
    tot = {}
    for preset in ("reference", "config_wc", "period_sum"):
        tot[preset] = [sum(float(ch.generate(preset, seed=s)[v].sum()) for s in range(3))
                       for v in ("consumption", "production")]
    (c_ref, p_best), (_, p_worst), (c_sum, p_sum) = (tot["reference"], tot["config_wc"],
                                                     tot["period_sum"])
    assert p_worst < c_ref < p_best
    assert c_sum < p_sum
    assert 1.0 < p_sum / p_best < 2.0


def test_solar_geometry_is_shared_per_tile():
    ds = ch.generate("reference", actors=30, days=2, seed=1, placement="uniform",
                     cloud_sigma=0.0)
    from recopt.generate.geography import tile_index

    tiles = tile_index(ds["x_km"].values, ds["y_km"].values, 10.0)
    kw = ds["installed_power"].values
    spec = ds["production"].isel(scenario=0).values / np.where(kw > 0, kw, np.nan)
    keys = [tuple(t) for t in tiles]
    # actors of one tile: identical production per kWp (up to 1 Wh rounding)
    for key in set(keys):
        idx = [i for i, k in enumerate(keys) if k == key and kw[i] > 1.0]
        if len(idx) >= 2:
            np.testing.assert_allclose(spec[:, idx[1:]], spec[:, [idx[0]]] *
                                       np.ones((1, len(idx) - 1)), atol=1e-3)
    assert len(set(keys)) >= 3


# --------------------------------------------------------------------------------------
# geography
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["reference", "dens_0_1", "dens_2"])
def test_clustered_placement_clusters_and_density(preset):
    for seed in range(3):
        ds = ch.generate(preset, actors=30, days=1, seed=seed)
        n = ds.sizes["member"]
        s = ch.Settings.from_json(ds.attrs["generator_settings"])
        side = math.sqrt(n / s.density)
        assert ds.attrs["region_side_km"] == pytest.approx(side)
        assert n / side**2 == pytest.approx(TABLE5[preset][2])
        x, y = ds["x_km"].values, ds["y_km"].values
        assert (x >= 0).all() and (x <= side).all() and (y >= 0).all() and (y <= side).all()
        labels = ds["cluster"].values
        sizes = np.bincount(labels)
        assert ((sizes >= 4) & (sizes <= 6)).all() and sizes.sum() == n
        for c in range(sizes.size):
            px, py = x[labels == c], y[labels == c]
            d = np.hypot(px[:, None] - px[None, :], py[:, None] - py[None, :])
            assert d.max() <= 2 * s.cluster_radius_km + 2e-3


def test_uniform_placement_density():
    ds = ch.generate("dens_2", actors=400, days=1, seed=0, placement="uniform")
    side = region_side_km(400, 2.0)
    x, y = ds["x_km"].values, ds["y_km"].values
    assert (x >= 0).all() and (x <= side).all()
    # roughly uniform: each quadrant holds about a quarter of the actors
    q = np.histogram2d(x, y, bins=2, range=[[0, side], [0, side]])[0]
    assert (np.abs(q - 100) < 35).all()
    assert "cluster" not in ds


def test_cluster_sizes_partition():
    rng = np.random.default_rng(0)
    for n in [4, 5, 6, 8, 9, 10, 11, 12, 13, 17, 30, 61]:
        sizes = cluster_sizes(n, rng)
        assert sum(sizes) == n and all(4 <= s <= 6 for s in sizes)
    for n in [1, 2, 3, 7]:
        with pytest.raises(GeneratorError, match="cannot be split"):
            cluster_sizes(n, rng)


def test_legal_limits_are_attributes():
    for preset, (az, tilt, dens, wmax) in TABLE5.items():
        s = ch.settings_for(preset)
        assert (s.azimuth, s.tilt, s.density, s.max_loop_power_kw) == (az, tilt, dens, wmax)
    ds = ch.generate("power_1000", days=1, seed=0)
    assert ds.attrs["max_loop_power_kw"] == 1000.0
    assert ds.attrs["max_distance_km"] == 2.0


# --------------------------------------------------------------------------------------
# prices: Tables 3 and 4
# --------------------------------------------------------------------------------------
def test_selling_price_bands_table3():
    kw = [0.0, 2.0, 3.0, 3.01, 9.0, 9.01, 36.0, 36.5, 100.0, 100.5, 2500.0]
    cents = [13.39, 13.39, 13.39, 13.39, 13.39, 14.58, 14.58, 12.68, 12.68, 13.12, 13.12]
    np.testing.assert_allclose(selling_price(kw), np.array(cents) / 100)


def test_prices_follow_tables(week30):
    kw = week30["installed_power"].values
    np.testing.assert_allclose(week30["price_grid_sell"].values, selling_price(kw))
    assert week30["price_grid_buy"].dims == ("time", "member")
    local = pd.DatetimeIndex(week30["time"].values).tz_localize("UTC").tz_convert(
        "Europe/Paris")
    noon = np.flatnonzero(local.hour == 12)[0]
    night = np.flatnonzero(local.hour == 23)[0]
    early = np.flatnonzero(local.hour == 5)[0]
    buy = week30["price_grid_buy"]
    march = {"household": (0.2040, 0.1513), "pro1": (0.1984, 0.1607),
             "pro2": (0.2726, 0.1516)}  # March = tariff winter
    for i, cat in enumerate(week30["category"].values):
        peak, off = march[str(cat)]
        assert buy.values[noon, i] == pytest.approx(peak)
        assert buy.values[night, i] == pytest.approx(off)
        assert buy.values[early, i] == pytest.approx(off)
    # every step's price is one of the two of its tariff
    for cat, pair in march.items():
        v = buy.values[:, week30["category"].values == cat]
        assert np.isin(np.round(v, 6), np.round(pair, 6)).all()
        # 8 off-peak hours a day
        assert np.isclose(v[:, 0], pair[1]).sum() == 8 * 7


def test_summer_prices_of_large_professionals():
    ds = ch.generate("period_sum", actors=10, days=2, seed=0)
    local = pd.DatetimeIndex(ds["time"].values).tz_localize("UTC").tz_convert("Europe/Paris")
    assert (local.month == 7).all()
    pro2 = ds["category"].values == "pro2"
    v = ds["price_grid_buy"].values[:, pro2]
    off = (local.hour >= 22) | (local.hour < 6)
    np.testing.assert_allclose(v[off], 0.0758)
    np.testing.assert_allclose(v[~off], 0.1363)


# --------------------------------------------------------------------------------------
# presets: Table 5 and Table 7 sizes
# --------------------------------------------------------------------------------------
def test_presets_cover_the_paper():
    assert set(TABLE7_SLCPCT_INTEGERS) | set(TABLE5) <= set(ch.PRESETS)


@pytest.mark.parametrize("preset", sorted(TABLE7_SLCPCT_INTEGERS))
def test_preset_sizes_match_table7(preset):
    s = ch.settings_for(preset)
    assert s.actors + s.n_steps == TABLE7_SLCPCT_INTEGERS[preset]
    if s.n_steps <= 24 * 30:
        ds = ch.generate(preset, seed=0)
        assert ds.sizes["member"] + ds.sizes["time"] * ds.sizes["scenario"] == \
            TABLE7_SLCPCT_INTEGERS[preset]


@pytest.mark.slow
def test_longest_preset_generates():
    ds = ch.generate("10_act_360_d", seed=0)
    assert ds.sizes["time"] == 8640
    validate(ds)


def test_instance_validates_and_carries_settings(week30):
    out = validate(week30)
    assert out.sizes == week30.sizes
    assert week30.attrs["generator"] == "recopt.generate.chasseray"
    s = ch.Settings.from_json(week30.attrs["generator_settings"])
    assert (s.actors, s.days, s.placement) == (30, 7, "clustered")
    assert week30.attrs["time_step_hours"] == 1.0


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"preset": "nope"}, "unknown preset"),
    ({"colour": "red"}, "unknown generator setting"),
    ({"mix": {"household": 0.5, "pro1": 0.4}}, "sum to 1"),
    ({"mix": {"household": 0.5, "robot": 0.5}}, "unknown actor profile"),
    ({"step_minutes": 20}, "15, 30 or 60"),
    ({"actors": 7}, "cannot be split"),
    ({"placement": "random"}, "clustered"),
    ({"density": 0}, "> 0"),
])
def test_bad_settings_raise_generator_error(kwargs, match):
    with pytest.raises(GeneratorError, match=match):
        ch.generate(**{"days": 1, **kwargs})


# --------------------------------------------------------------------------------------
# scenarios by seasonal block bootstrap of a generated history (Ospina §4.4.2)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def boot():
    # 5-7 March: inside the (UTC) MAM block; local midnight of 1 March is still in DJF
    return ch.generate("10_act_1_d", days=3, start="2022-03-05", seed=4, scenarios=6,
                       scenario_method="bootstrap", history_years=3)


def test_bootstrap_scenarios_are_blocks_of_the_history(boot):
    assert boot.sizes["scenario"] == 6
    np.testing.assert_allclose(boot["scenario_probability"].values, 1 / 6)
    validate(boot)
    # the horizon (early March) lies in the MAM block: scenarios that drew the same
    # MAM season-year have identical energies, different years differ
    seasons = list(boot["bootstrap_season"].values)
    yc = boot["bootstrap_block_consumption"].values[:, seasons.index("MAM")]
    yp = boot["bootstrap_block_production"].values[:, seasons.index("MAM")]
    assert set(yc) <= {2020, 2021, 2022} and set(yp) <= {2020, 2021, 2022}
    c, p = boot["consumption"].values, boot["production"].values
    for i in range(6):
        for j in range(i + 1, 6):
            assert np.array_equal(c[i], c[j]) == (yc[i] == yc[j])
            assert np.array_equal(p[i], p[j]) == (yp[i] == yp[j])
    assert len(set(yc)) > 1 or len(set(yp)) > 1


def test_bootstrap_keeps_actors_and_is_reproducible(boot):
    plain = ch.generate("10_act_1_d", days=3, start="2022-03-05", seed=4)
    for name in ("installed_power", "x_km", "category", "price_grid_sell", "price_grid_buy"):
        np.testing.assert_array_equal(plain[name].values, boot[name].values)
    assert instance_hash(ch.regenerate(boot)) == instance_hash(boot)
    # prefix-stable: the first 3 scenarios of 6 are the 3-scenario instance
    three = ch.generate("10_act_1_d", days=3, start="2022-03-05", seed=4, scenarios=3,
                        scenario_method="bootstrap", history_years=3)
    np.testing.assert_array_equal(three["consumption"].values, boot["consumption"].values[:3])


def test_bootstrap_horizon_must_fit_one_synthetic_year():
    with pytest.raises(GeneratorError, match="synthetic year"):
        ch.generate("10_act_1_d", days=3, start="2022-11-29", seed=0,
                    scenario_method="bootstrap", history_years=2)
    with pytest.raises(GeneratorError, match="non-leap"):
        ch.generate("10_act_1_d", days=3, start="2024-03-01", seed=0,
                    scenario_method="bootstrap", history_years=2)
