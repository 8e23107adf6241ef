"""read_csv: separators, decimal marks, units, DST, prices, and errors naming the cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recopt.data import DIMS, read_csv
from recopt.errors import (
    CSVFormatError,
    InstanceError,
    MissingVariableError,
    NegativeEnergyError,
    NonFiniteError,
    TimestampError,
    UnitError,
)

PRICES = {"price_grid_buy": 0.30, "price_grid_sell": 0.05, "price_community_buy": 0.20,
          "price_community_sell": 0.10}

COMMA_POINT = """timestamp,Alice_consumption,Bob_consumption,Bob_production,PV_production
2023-06-01T10:00:00Z,0.25,0.10,0.05,1.50
2023-06-01T10:15:00Z,0.30,0.12,0.06,1.60
2023-06-01T10:30:00Z,0.20,0.11,0.07,1.70
"""

EXPECTED_C = np.array([[0.25, 0.10, 0.0], [0.30, 0.12, 0.0], [0.20, 0.11, 0.0]])
EXPECTED_P = np.array([[0.0, 0.05, 1.50], [0.0, 0.06, 1.60], [0.0, 0.07, 1.70]])


def write(tmp_path: Path, text: str, name: str = "meter.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def utc(values) -> list[pd.Timestamp]:
    return [pd.Timestamp(v) for v in values]


# ======================================================================================
# formats
# ======================================================================================
def test_comma_separated_point_decimal(tmp_path):
    ds = read_csv(write(tmp_path, COMMA_POINT), prices=PRICES)
    assert ds.member.values.tolist() == ["Alice", "Bob", "PV"]
    assert ds.consumption.dims == DIMS
    np.testing.assert_allclose(ds.consumption.values[0], EXPECTED_C)
    np.testing.assert_allclose(ds.production.values[0], EXPECTED_P)
    assert ds.attrs["time_step_hours"] == 0.25
    assert utc(ds.time.values)[0] == pd.Timestamp("2023-06-01 10:00")


def test_semicolon_separated_comma_decimal(tmp_path):
    text = COMMA_POINT.replace(",", ";").replace(".", ",")
    ds = read_csv(write(tmp_path, text), prices=PRICES)
    np.testing.assert_allclose(ds.consumption.values[0], EXPECTED_C)
    np.testing.assert_allclose(ds.production.values[0], EXPECTED_P)


def test_explicit_sep_and_decimal_and_bom_and_blank_lines(tmp_path):
    text = "\ufeff" + COMMA_POINT.replace(",", "\t").replace("\n2023-06-01T10:15",
                                                              "\n\n2023-06-01T10:15")
    ds = read_csv(write(tmp_path, text), sep="\t", decimal=".", prices=PRICES)
    np.testing.assert_allclose(ds.consumption.values[0], EXPECTED_C)


def test_member_with_both_consumption_and_production(tmp_path):
    ds = read_csv(write(tmp_path, COMMA_POINT), prices=PRICES)
    bob = ds.sel(member="Bob")
    assert (bob.consumption > 0).all() and (bob.production > 0).all()
    # members with only production get consumption 0 and vice versa
    assert float(ds.consumption.sel(member="PV").sum()) == 0.0
    assert float(ds.production.sel(member="Alice").sum()) == 0.0


def test_explicit_columns_and_member_mapping(tmp_path):
    text = """time;meter 1;meter 2;pv
2023-01-01 00:00;1;2;0
2023-01-01 01:00;1;2;3
"""
    ds = read_csv(write(tmp_path, text), consumption_columns={"meter 1": "A", "meter 2": "A"},
                  production_columns=["pv"], member_of_column={"pv": "A"}, prices=PRICES)
    assert ds.member.values.tolist() == ["A"]
    np.testing.assert_allclose(ds.consumption.values[0, :, 0], [3.0, 3.0])
    np.testing.assert_allclose(ds.production.values[0, :, 0], [0.0, 3.0])
    assert ds.attrs["time_step_hours"] == 1.0


def test_unrecognised_column_under_the_default_convention(tmp_path):
    text = "timestamp,A_consumption,total\n2023-01-01T00:00,1,1\n2023-01-01T01:00,1,1\n"
    with pytest.raises(CSVFormatError, match="'total'.*consumption_columns"):
        read_csv(write(tmp_path, text), prices=PRICES)


# ======================================================================================
# steps and units
# ======================================================================================
def test_quarter_hour_and_hourly_files(tmp_path):
    hourly = """timestamp,A_consumption
2023-01-01T00:00,1
2023-01-01T01:00,2
2023-01-01T02:00,3
"""
    ds = read_csv(write(tmp_path, hourly, "h.csv"), prices=PRICES)
    assert ds.attrs["time_step_hours"] == 1.0 and ds.sizes["time"] == 3
    ds15 = read_csv(write(tmp_path, COMMA_POINT, "q.csv"), prices=PRICES)
    assert ds15.attrs["time_step_hours"] == 0.25


@pytest.mark.parametrize(
    "unit,factor",
    [("kWh", 1.0), ("Wh", 1e-3), ("MWh", 1e3), ("kW", 0.25), ("W", 0.25e-3), ("MW", 250.0)],
)
def test_units_are_converted_to_kwh_per_step(tmp_path, unit, factor):
    ds = read_csv(write(tmp_path, COMMA_POINT), unit=unit, prices=PRICES)
    np.testing.assert_allclose(ds.consumption.values[0], EXPECTED_C * factor)
    np.testing.assert_allclose(ds.production.values[0], EXPECTED_P * factor)


def test_kw_hourly_equals_kwh(tmp_path):
    text = "timestamp,A_consumption\n2023-01-01T00:00,2\n2023-01-01T01:00,4\n"
    kw = read_csv(write(tmp_path, text), unit="kW", prices=PRICES)
    np.testing.assert_allclose(kw.consumption.values.ravel(), [2.0, 4.0])


def test_unit_per_column(tmp_path):
    ds = read_csv(write(tmp_path, COMMA_POINT), unit={"PV_production": "kW"}, prices=PRICES)
    np.testing.assert_allclose(ds.production.sel(member="PV").values.ravel(),
                               [0.375, 0.4, 0.425])
    np.testing.assert_allclose(ds.consumption.values[0], EXPECTED_C)


def test_unknown_unit(tmp_path):
    with pytest.raises(UnitError, match="'kVAh'"):
        read_csv(write(tmp_path, COMMA_POINT), unit="kVAh", prices=PRICES)
    with pytest.raises(CSVFormatError, match="'Carol_consumption'"):
        read_csv(write(tmp_path, COMMA_POINT), unit={"Carol_consumption": "kW"}, prices=PRICES)


def test_time_step_given_must_match(tmp_path):
    ds = read_csv(write(tmp_path, COMMA_POINT), time_step="15min", prices=PRICES)
    assert ds.attrs["time_step_hours"] == 0.25
    with pytest.raises(TimestampError, match="time_step"):
        read_csv(write(tmp_path, COMMA_POINT), time_step=1.0, prices=PRICES)


def test_single_row_needs_a_time_step(tmp_path):
    text = "timestamp,A_consumption\n2023-01-01T00:00,2\n"
    with pytest.raises(TimestampError, match="time_step"):
        read_csv(write(tmp_path, text), prices=PRICES)
    ds = read_csv(write(tmp_path, text), time_step=0.25, prices=PRICES)
    assert ds.attrs["time_step_hours"] == 0.25


def test_end_of_interval_labels(tmp_path):
    ds = read_csv(write(tmp_path, COMMA_POINT), timestamp_label="end", prices=PRICES)
    assert utc(ds.time.values)[0] == pd.Timestamp("2023-06-01 09:45")


# ======================================================================================
# DST
# ======================================================================================
SPRING_UTC = ["2023-03-26 00:30", "2023-03-26 00:45", "2023-03-26 01:00", "2023-03-26 01:15"]
AUTUMN_UTC = pd.date_range("2023-10-28 23:30", periods=8, freq="15min").tolist()


def test_spring_forward_with_offsets(tmp_path):
    text = """timestamp;A_consumption
2023-03-26T01:30:00+01:00;0,1
2023-03-26T01:45:00+01:00;0,2
2023-03-26T03:00:00+02:00;0,3
2023-03-26T03:15:00+02:00;0,4
"""
    ds = read_csv(write(tmp_path, text), prices=PRICES)
    assert utc(ds.time.values) == utc(SPRING_UTC)
    np.testing.assert_allclose(ds.consumption.values.ravel(), [0.1, 0.2, 0.3, 0.4])


def test_spring_forward_with_a_timezone_name(tmp_path):
    text = """timestamp;A_consumption
2023-03-26 01:30;0,1
2023-03-26 01:45;0,2
2023-03-26 03:00;0,3
2023-03-26 03:15;0,4
"""
    ds = read_csv(write(tmp_path, text), timezone="Europe/Brussels", prices=PRICES)
    assert utc(ds.time.values) == utc(SPRING_UTC)
    assert ds.attrs["time_step_hours"] == 0.25


def test_autumn_repeated_hour_with_offsets(tmp_path):
    local = ["01:30+02:00", "01:45+02:00", "02:00+02:00", "02:15+02:00", "02:30+02:00",
             "02:45+02:00", "02:00+01:00", "02:15+01:00"]
    text = "timestamp,A_consumption\n" + "".join(
        f"2023-10-29T{t},{i}\n" for i, t in enumerate(local))
    ds = read_csv(write(tmp_path, text), prices=PRICES)
    assert utc(ds.time.values) == AUTUMN_UTC


def test_autumn_repeated_hour_with_a_timezone_name(tmp_path):
    local = ["01:30", "01:45", "02:00", "02:15", "02:30", "02:45", "02:00", "02:15"]
    text = "timestamp,A_consumption\n" + "".join(
        f"2023-10-29 {t},{i}\n" for i, t in enumerate(local))
    ds = read_csv(write(tmp_path, text), timezone="Europe/Brussels", prices=PRICES)
    assert utc(ds.time.values) == AUTUMN_UTC
    np.testing.assert_allclose(ds.consumption.values.ravel(), np.arange(8.0))


def test_nonexistent_local_time_is_refused(tmp_path):
    text = "timestamp,A_consumption\n2023-03-26 01:45,1\n2023-03-26 02:00,1\n"
    with pytest.raises(TimestampError, match="line 3.*does not exist"):
        read_csv(write(tmp_path, text), timezone="Europe/Brussels", prices=PRICES)


def test_naive_time_without_timezone_is_utc(tmp_path):
    text = "timestamp,A_consumption\n2023-03-26 01:45,1\n2023-03-26 02:00,1\n"
    ds = read_csv(write(tmp_path, text), prices=PRICES)
    assert utc(ds.time.values)[1] == pd.Timestamp("2023-03-26 02:00")


def test_unknown_timezone(tmp_path):
    with pytest.raises(TimestampError, match="time zone"):
        read_csv(write(tmp_path, COMMA_POINT.replace("Z,", ",")), timezone="Europe/Bxl",
                 prices=PRICES)


# ======================================================================================
# timestamp errors
# ======================================================================================
def test_duplicate_timestamps_name_the_lines(tmp_path):
    text = COMMA_POINT.replace("10:30:00Z", "10:15:00Z")
    with pytest.raises(TimestampError, match=r"meter\.csv has 1 duplicate.*line 3 and line 4"):
        read_csv(write(tmp_path, text), prices=PRICES)


def test_irregular_timestamps_name_the_lines(tmp_path):
    text = COMMA_POINT + "2023-06-01T11:00:00Z,0.2,0.1,0.0,1.0\n"
    with pytest.raises(TimestampError, match=r"irregular.*\(line 4\).*\(line 5\)"):
        read_csv(write(tmp_path, text), prices=PRICES)


def test_unsorted_timestamps(tmp_path):
    text = COMMA_POINT.replace("10:00:00Z", "10:45:00Z")
    with pytest.raises(TimestampError, match="not sorted"):
        read_csv(write(tmp_path, text), prices=PRICES)


def test_unreadable_timestamp(tmp_path):
    text = COMMA_POINT.replace("Z,", ",").replace("2023-06-01T10:15:00", "01/06/2023 10:15")
    with pytest.raises(TimestampError, match="line 3.*timestamp_format"):
        read_csv(write(tmp_path, text), prices=PRICES)


def test_mixed_offsets_and_naive_timestamps(tmp_path):
    text = COMMA_POINT.replace("2023-06-01T10:15:00Z", "2023-06-01T10:15:00")
    with pytest.raises(TimestampError, match="line 3.*no UTC offset"):
        read_csv(write(tmp_path, text), prices=PRICES)


def test_timestamp_format(tmp_path):
    text = "date;A_consumption\n01/06/2023 10:00;1\n01/06/2023 10:15;2\n"
    ds = read_csv(write(tmp_path, text), timestamp_format="%d/%m/%Y %H:%M", prices=PRICES)
    assert utc(ds.time.values)[0] == pd.Timestamp("2023-06-01 10:00")


# ======================================================================================
# cell errors: file, line and column are named
# ======================================================================================
def test_bad_number_names_line_and_column(tmp_path):
    text = COMMA_POINT.replace("0.12,0.06", "0.1x,0.06")
    with pytest.raises(CSVFormatError) as info:
        read_csv(write(tmp_path, text), prices=PRICES)
    msg = str(info.value)
    assert "meter.csv" in msg and "line 3" in msg and "'Bob_consumption'" in msg
    assert "'0.1x'" in msg
    assert info.value.variable == "Bob_consumption"


def test_wrong_decimal_mark_hint(tmp_path):
    text = COMMA_POINT.replace(",", ";")  # decimal point with ';' separator: fine
    assert read_csv(write(tmp_path, text), prices=PRICES).sizes["time"] == 3
    with pytest.raises(CSVFormatError, match="decimal"):
        read_csv(write(tmp_path, text), decimal=",", prices=PRICES)


def test_empty_cell(tmp_path):
    text = COMMA_POINT.replace("0.20,0.11", ",0.11")
    with pytest.raises(NonFiniteError, match="line 4, column 'Alice_consumption'.*empty"):
        read_csv(write(tmp_path, text), prices=PRICES)


def test_negative_energy_names_the_cell(tmp_path):
    text = COMMA_POINT.replace("1.60", "-1.60")
    with pytest.raises(NegativeEnergyError, match="line 3, column 'PV_production'"):
        read_csv(write(tmp_path, text), prices=PRICES)


def test_ragged_row(tmp_path):
    text = COMMA_POINT.replace("0.30,0.12,0.06,1.60", "0.30,0.12,1.60")
    with pytest.raises(CSVFormatError, match="line 3 has 4 fields"):
        read_csv(write(tmp_path, text), prices=PRICES)


def test_missing_file(tmp_path):
    with pytest.raises(CSVFormatError, match="does not exist"):
        read_csv(tmp_path / "nope.csv", prices=PRICES)


def test_missing_explicit_column(tmp_path):
    with pytest.raises(CSVFormatError, match="'Carol'"):
        read_csv(write(tmp_path, COMMA_POINT), consumption_columns=["Carol"], prices=PRICES)


# ======================================================================================
# prices and member data
# ======================================================================================
def test_missing_price_says_which_and_how(tmp_path):
    prices = dict(PRICES)
    del prices["price_community_sell"]
    with pytest.raises(MissingVariableError) as info:
        read_csv(write(tmp_path, COMMA_POINT), prices=prices)
    msg = str(info.value)
    assert "price_community_sell is missing" in msg and "prices=" in msg
    assert info.value.variable == "price_community_sell"


def test_unknown_price_name(tmp_path):
    with pytest.raises(InstanceError, match="'price_grid'"):
        read_csv(write(tmp_path, COMMA_POINT), prices={**PRICES, "price_grid": 0.2})


def test_prices_per_member_dict(tmp_path):
    prices = {**PRICES, "price_grid_buy": {"Alice": 0.3, "Bob": 0.32, "PV": 0.0},
              "installed_power": {"Alice": 0.0, "Bob": 3.0, "PV": 60.0},
              "category": {"Alice": "household", "Bob": "household", "PV": "producer"}}
    ds = read_csv(write(tmp_path, COMMA_POINT), prices=prices)
    assert ds.price_grid_buy.dims == ("member",)
    assert float(ds.price_grid_buy.sel(member="Bob")) == 0.32
    assert ds.category.values.tolist() == ["household", "household", "producer"]
    with pytest.raises(MissingVariableError, match="PV"):
        read_csv(write(tmp_path, COMMA_POINT),
                 prices={**PRICES, "price_grid_buy": {"Alice": 0.3, "Bob": 0.32}})


def test_prices_and_member_data_from_a_side_csv(tmp_path):
    side = """member;price_grid_buy;price_grid_sell;price_community_buy;price_community_sell;\
installed_power;x_km;category
Alice;0,30;0,05;0,20;0,10;0;0,5;household
Bob;0,31;0,05;0,20;0,10;3,5;-0,25;household
PV;0,00;0,06;0,20;0,11;60;1;producer
"""
    ds = read_csv(write(tmp_path, COMMA_POINT), prices=write(tmp_path, side, "members.csv"))
    assert float(ds.price_grid_buy.sel(member="Bob")) == 0.31
    assert float(ds.x_km.sel(member="Bob")) == -0.25
    assert float(ds.installed_power.sel(member="PV")) == 60.0
    assert ds.category.values.tolist() == ["household", "household", "producer"]


def test_side_csv_missing_a_member(tmp_path):
    side = "member,price_grid_buy,price_grid_sell,price_community_buy,price_community_sell\n" \
           "Alice,0.3,0.05,0.2,0.1\nBob,0.3,0.05,0.2,0.1\n"
    with pytest.raises(MissingVariableError, match="PV"):
        read_csv(write(tmp_path, COMMA_POINT), prices=write(tmp_path, side, "m.csv"))


def test_side_csv_bad_cell(tmp_path):
    side = "member,price_grid_buy\nAlice,0.3\nBob,abc\nPV,0.1\n"
    with pytest.raises(CSVFormatError, match=r"m\.csv: line 3, column 'price_grid_buy'"):
        read_csv(write(tmp_path, COMMA_POINT), prices=write(tmp_path, side, "m.csv"))


def test_price_column_in_the_data_file(tmp_path):
    text = COMMA_POINT.replace("PV_production\n", "PV_production,price_grid_sell\n")
    text = text.replace("1.50\n", "1.50,-0.01\n").replace("1.60\n", "1.60,0.02\n")
    text = text.replace("1.70\n", "1.70,0.03\n")
    prices = {k: v for k, v in PRICES.items() if k != "price_grid_sell"}
    ds = read_csv(write(tmp_path, text), prices=prices)
    assert ds.price_grid_sell.dims == ("time",)
    np.testing.assert_allclose(ds.price_grid_sell.values, [-0.01, 0.02, 0.03])
