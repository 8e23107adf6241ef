"""``recopt import``: wide and long meter exports, every problem at once, DST."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recopt.cli import main as recopt_main
from recopt.data import billing_period_index, instance_hash, load
from recopt.data.meter_import import ImportProblems, read_meter_export

TZ = "Europe/Brussels"
MEMBERS = "member;meter;role;price_grid_buy;price_grid_sell;subscription_fee\n" \
          "Alice;EAN1;consumer;0,30;0,05;2\nBob;EAN2;prosumer;0,31;0,04;2\n" \
          "Plant;EAN3;plant;0,30;0,06;0\n"
PRICES = {"price_community_buy": 0.2, "price_community_sell": 0.1}


def local_axis():
    # local quarter hours over the autumn DST change (the repeated 02:00-02:59 hour)
    utc = pd.date_range("2023-10-28 22:00", "2023-10-29 04:00", freq="15min",
                        inclusive="left", tz="UTC")
    return utc.tz_convert(TZ).tz_localize(None)  # naive local, with repeated hour


def data(n):
    rng = np.random.default_rng(1)
    return {("Alice", "consumption"): np.round(rng.uniform(0, 1, n), 3),
            ("Bob", "consumption"): np.round(rng.uniform(0, 1, n), 3),
            ("Bob", "production"): np.round(rng.uniform(0, 1, n), 3),
            ("Plant", "production"): np.round(rng.uniform(0, 3, n), 3)}


def write_wide(path, local, vals):
    lines = ["date;time;" + ";".join(f"{m}_{k}" for m, k in vals)]
    for i, t in enumerate(local):
        cells = [f"{v[i]:.3f}".replace(".", ",") for v in vals.values()]
        lines.append(f"{t:%d/%m/%Y};{t:%H:%M};" + ";".join(cells))
    path.write_text("\n".join(lines) + "\n")


def write_long(path, local, vals):
    meters = {"Alice": "EAN1", "Bob": "EAN2", "Plant": "EAN3"}
    reg = {"consumption": "Afname", "production": "Injectie"}
    lines = ["Van (datum);Van (tijdstip);EAN;Register;Volume;Eenheid"]
    for (m, k), v in vals.items():  # one block per meter point and register
        for i, t in enumerate(local):
            lines.append(f"{t:%d-%m-%Y};{t:%H:%M:%S};{meters[m]};{reg[k]};"
                         f"{v[i] * 1000:.0f};Wh")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def files(tmp_path):
    local = local_axis()
    vals = data(local.size)
    members = tmp_path / "members.csv"
    members.write_text(MEMBERS)
    write_wide(tmp_path / "wide.csv", local, vals)
    write_long(tmp_path / "long.csv", local, vals)
    return tmp_path, members, vals


def test_long_and_wide_exports_give_identical_instances(files):
    tmp, members, vals = files
    wide = read_meter_export(tmp / "wide.csv", timezone=TZ, members_file=members,
                             prices=PRICES)
    long = read_meter_export(tmp / "long.csv", timezone=TZ, members_file=members,
                             prices=PRICES)
    assert instance_hash(wide) == instance_hash(long)
    # the repeated hour became 8 distinct UTC quarter hours: 24 steps over 6 h
    assert wide.sizes["time"] == 24 and wide.attrs["time_step_hours"] == 0.25
    assert pd.Timestamp(wide.time.values[0]) == pd.Timestamp("2023-10-28 22:00")
    np.testing.assert_allclose(wide.consumption.sel(member="Alice").values[0],
                               vals[("Alice", "consumption")])
    assert wide.attrs["billing_timezone"] == TZ
    assert wide.role.values.tolist() == ["consumer", "prosumer", "plant"]


def test_every_problem_is_reported_with_file_line_and_column(files):
    tmp, members, _ = files
    text = (tmp / "long.csv").read_text().splitlines()
    text[3] = text[3].replace(";Wh", ";Wh").rsplit(";", 2)[0] + ";abc;Wh"  # line 4: value
    text[5] = "32-13-2023;01:00:00" + text[5][text[5].index(";EAN"):]  # line 6: date
    text[7] = text[7].replace("Afname", "Verbruik?")  # line 8: register
    text[9] = text[9].rsplit(";", 2)[0] + ";-5;Wh"  # line 10: negative
    (tmp / "bad.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(ImportProblems) as err:
        read_meter_export(tmp / "bad.csv", timezone=TZ, members_file=members)  # no prices
    msg = str(err.value)
    where = [(p.line, p.column) for p in err.value.problems]
    assert (4, "Volume") in where  # not a number
    assert (6, "Van (datum) + Van (tijdstip)") in where  # unreadable date
    assert (8, "Register") in where  # unknown register
    assert (10, "Volume") in where  # negative energy
    assert "price_community_buy is missing" in msg and "--price-community-buy" in msg
    assert all(str(p).startswith(str(tmp)) for p in err.value.problems)
    assert len(err.value.problems) >= 6


def test_member_file_problems_are_located(files):
    tmp, _, _ = files
    bad = tmp / "m.csv"
    bad.write_text("member;meter;price_grid_buy;colour\nAlice;EAN1;x;red\n"
                   "Alice;EAN2;0.3;blue\n")
    with pytest.raises(ImportProblems) as err:
        read_meter_export(tmp / "long.csv", timezone=TZ, members_file=bad, prices=PRICES)
    where = {(p.path, p.line, p.column) for p in err.value.problems}
    assert (str(bad), 1, "colour") in where  # unknown column
    assert (str(bad), 2, "price_grid_buy") in where  # not a number
    assert (str(bad), 3, "member") in where  # listed twice
    assert any("EAN3" in str(p) for p in err.value.problems)  # meter of no member


def test_duplicates_on_a_dst_change_hint_at_the_timezone(files):
    tmp, members, _ = files
    with pytest.raises(ImportProblems) as err:
        read_meter_export(tmp / "wide.csv", members_file=members, prices=PRICES)
    dups = [p for p in err.value.problems if "given again" in p.message]
    assert dups and all("--timezone Europe/Brussels" in p.message for p in dups)
    assert dups[0].line is not None and "date + time" in str(dups[0].column)


def test_missing_steps_are_reported(files):
    tmp, members, _ = files
    lines = (tmp / "wide.csv").read_text().splitlines()
    (tmp / "gap.csv").write_text("\n".join(lines[:5] + lines[6:]) + "\n")
    with pytest.raises(ImportProblems, match="no value for 1 step") as err:
        read_meter_export(tmp / "gap.csv", timezone=TZ, members_file=members, prices=PRICES)
    gaps = [q for q in err.value.problems if "no value" in q.message]
    assert len(gaps) == 4 and all(q.line == 5 and q.column == "date + time" for q in gaps)


def test_brussels_export_across_both_dst_changes_bills_local_months(tmp_path):
    local = pd.date_range("2023-03-25", "2023-11-02", freq="h", inclusive="left",
                          tz=TZ)
    naive = local.tz_localize(None)
    lines = ["timestamp;A_consumption;B_consumption;B_production"]
    for t in naive:
        lines.append(f"{t:%Y-%m-%d %H:%M};1;0,5;0,25")
    src = tmp_path / "year.csv"
    src.write_text("\n".join(lines) + "\n")
    inst = read_meter_export(src, timezone=TZ, prices={
        "price_grid_buy": 0.3, "price_grid_sell": 0.05, "price_community_buy": 0.2,
        "price_community_sell": 0.1})
    assert inst.sizes["time"] == local.size  # spring gap and autumn repeat both right
    idx = billing_period_index(inst)
    starts = pd.DatetimeIndex(inst.time.values)[np.r_[0, np.flatnonzero(np.diff(idx)) + 1]]
    loc = starts.tz_localize("UTC").tz_convert(TZ)
    assert [(t.day, t.hour) for t in loc[1:]] == [(1, 0)] * (len(loc) - 1)
    assert len(loc) == 9  # March stub, April ... October, November stub


def test_import_command_writes_an_instance_solve_and_keys_accept(files, capsys):
    tmp, members, _ = files
    out = tmp / "c.nc"
    code = recopt_main(["import", str(tmp / "long.csv"), "--members", str(members),
                        "--timezone", TZ, "--price-community-buy", "0.2",
                        "--price-community-sell", "0.1", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "members    3 (1 consumer, 1 prosumer, 1 plant)" in capsys.readouterr().out
    inst = load(out)
    assert inst.sizes["member"] == 3
    assert recopt_main(["keys", str(out), "--keys", "ES,PR", "--no-plots"]) == 0
    assert recopt_main(["solve", str(out), "--model", "LP1"]) == 0
    # bad input: exit 2 and every problem on stderr
    capsys.readouterr()
    assert recopt_main(["import", str(tmp / "long.csv"), "-o", str(tmp / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert "price_grid_buy is missing" in err and "price_community_sell is missing" in err


def test_read_csv_duplicates_on_dst_change_name_the_timezone(tmp_path):
    from recopt.data import read_csv
    from recopt.errors import TimestampError
    local = local_axis()
    lines = ["timestamp;A_consumption"] + [f"{t:%Y-%m-%d %H:%M};1" for t in local]
    src = tmp_path / "a.csv"
    src.write_text("\n".join(lines) + "\n")
    prices = {"price_grid_buy": 0.3, "price_grid_sell": 0.05, "price_community_buy": 0.2,
              "price_community_sell": 0.1}
    with pytest.raises(TimestampError, match="--timezone Europe/Brussels") as err:
        read_csv(src, prices=prices)
    assert "drop or aggregate" not in str(err.value)
    inst = read_csv(src, prices=prices, timezone=TZ)
    assert inst.sizes["time"] == local.size and inst.attrs["billing_timezone"] == TZ


def test_wide_export_with_per_step_prices(tmp_path):
    lines = ["timestamp;A_consumption;B_production;price_grid_buy"]
    for h in range(4):
        lines.append(f"2023-06-01 {h:02d}:00;1;0,5;0,{30 + h}")
    src = tmp_path / "p.csv"
    src.write_text("\n".join(lines) + "\n")
    inst = read_meter_export(src, timezone=TZ, prices={
        "price_grid_sell": 0.05, "price_community_buy": 0.2, "price_community_sell": 0.1})
    np.testing.assert_allclose(inst.price_grid_buy.values, [0.30, 0.31, 0.32, 0.33])
    lines[2] = lines[2].replace("0,31", "cheap")
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportProblems) as err:
        read_meter_export(src, timezone=TZ, prices={
            "price_grid_sell": 0.05, "price_community_buy": 0.2, "price_community_sell": 0.1})
    assert [(q.line, q.column) for q in err.value.problems] == [(3, "price_grid_buy")]
