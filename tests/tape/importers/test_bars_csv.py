"""bars-csv importer: the real FTX 1-minute file and small inline fixtures.

Expected values are counted or parsed here independently (line counts, pandas parsing, values
copied by hand from the file), never taken from the importer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emerald.errors import ConfigError, DataError
from emerald.tape.importers import run_import
from emerald.testing.tapes import assert_import_conserved as _assert_conserved
from emerald.testing.tapes import iso_ns as _ns
from emerald.testing.tapes import read_partitions

MIN_NS = 60_000_000_000
FTX_OPTIONS = {"time_column": "timestamp", "stamp": "open", "volume_unit": "quote"}




def _read(root: Path, venue: str, symbol: str) -> pd.DataFrame:
    return read_partitions(root, "bars", venue, symbol).drop("date", strict=False).to_pandas()



@pytest.fixture(scope="module")
def ftx_path(real_data: Path) -> Path:
    return real_data / "bars" / "ftx_btc-perp_1m_2022-01.csv"


def test_ftx_real_file(ftx_path: Path, tmp_path: Path) -> None:
    n = len(ftx_path.read_bytes().splitlines()) - 1
    assert n == 45_031  # the data README
    report = run_import("bars-csv", [ftx_path], tmp_path, venue="ftx", symbol="BTC-PERP", tz="UTC", **FTX_OPTIONS)
    _assert_conserved(report)
    assert report.lines_in == n and report.lines_parsed == n
    bars = _read(tmp_path, "ftx", "BTC-PERP")
    assert len(bars) == n
    raw = pd.read_csv(ftx_path)
    expected_ts = pd.to_datetime(raw["timestamp"]).astype("datetime64[ns]").astype("int64").to_numpy()
    np.testing.assert_array_equal(bars["ts_event"].to_numpy(), expected_ts)
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(bars[col].to_numpy(), raw[col].to_numpy())
    # first line by hand: 2021-12-31 23:01:00.000000,46319.0,46385.0,46319.0,46377.0,2300413.7295
    assert bars.loc[0, "ts_event"] == _ns("2021-12-31 23:01")
    assert bars.loc[0, ["open", "high", "low", "close"]].tolist() == [46319.0, 46385.0, 46319.0, 46377.0]
    # FTX volume is quote notional: no exact base volume, so NaN, and the report says why
    assert bars["volume"].isna().all()
    assert any("quote-currency notional" in note for note in report.notes)
    assert (bars["interval_ns"] == MIN_NS).all()
    assert any("1m inferred" in note for note in report.notes)
    assert (bars["trades"] == -1).all() and bars["buy_volume"].isna().all()


def test_naive_times_without_tz_name_file_and_column(ftx_path: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"ftx_btc-perp_1m_2022-01\.csv.*field `timestamp`.*2021-12-31 23:01") as info:
        run_import("bars-csv", [ftx_path], tmp_path, venue="ftx", symbol="BTC-PERP", **FTX_OPTIONS)
    assert info.value.path == str(ftx_path) and info.value.field == "timestamp"


def test_epoch_ms_fixture_with_column_mapping(tmp_path: Path) -> None:
    # Binance-kline-like columns under other names; open time in epoch ms, base volume
    path = tmp_path / "bars.csv"
    path.write_text("open_time,o,h,l,c,base_vol\n"
                    "1680652800000,28155.1,28200.0,28100.0,28180.5,120.5\n"
                    "1680653100000,28180.5,28190.0,28150.0,28160.0,80.25\n"
                    "1680653400000,28160.0,28170.0,28140.0,bad,10.0\n"
                    "16806537x0000,28160.0,28170.0,28140.0,28150.0,10.0\n"
                    "1680654000000,28150.0,28155.0,28120.0,28130.0\n"
                    "1680654000000,28150.0,28155.0,28120.0,28130.0,\n")
    report = run_import("bars-csv", [path], tmp_path / "tape", venue="demo", symbol="BTCUSDT", time_column="open_time",
                        time_unit="ms", stamp="open", interval="5m", volume_unit="base", open_column="o",
                        high_column="h", low_column="l", close_column="c", volume_column="base_vol")
    _assert_conserved(report)
    assert report.lines_in == 6
    assert report.lines_rejected == {"bad_number": 1, "bad_time": 1, "field_count": 1}
    assert not any("inferred" in note for note in report.notes)
    bars = _read(tmp_path / "tape", "demo", "BTCUSDT")
    assert bars["ts_event"].tolist() == [_ns("2023-04-05 00:00"), _ns("2023-04-05 00:05"), _ns("2023-04-05 00:20")]
    assert bars["volume"].tolist()[:2] == [120.5, 80.25] and np.isnan(bars["volume"].iloc[2])
    assert bars["close"].tolist() == [28180.5, 28160.0, 28130.0]
    assert (bars["interval_ns"] == 5 * MIN_NS).all()


def test_close_stamped_times_shift_by_one_interval(tmp_path: Path) -> None:
    path = tmp_path / "close.csv"
    path.write_text("time,open,high,low,close\n"
                    "2024-01-10T01:00:00Z,10,12,9,11\n"
                    "2024-01-10T02:00:00+00:00,11,13,10,12\n"
                    "2024-01-10T04:00:00+01:00,12,12,11,11.5\n")
    report = run_import("bars-csv", [path], tmp_path / "tape", venue="demo", symbol="X", time_column="time",
                        stamp="close")
    _assert_conserved(report)
    bars = _read(tmp_path / "tape", "demo", "X")
    # zone designators are honoured without --tz; 04:00+01:00 = 03:00Z; closes 01,02,03Z -> opens 00,01,02Z
    assert bars["ts_event"].tolist() == [_ns("2024-01-10 00:00"), _ns("2024-01-10 01:00"), _ns("2024-01-10 02:00")]
    assert (bars["interval_ns"] == 60 * MIN_NS).all()
    assert bars["volume"].isna().all() and any("no volume column" in note for note in report.notes)


def test_format_option_in_a_dst_zone(tmp_path: Path) -> None:
    path = tmp_path / "london.csv"
    path.write_text("Date;Open;High;Low;Close;Volume\n"
                    "25/03/2023 23:00;1;2;0.5;1.5;7\n"
                    "26/03/2023 00:00;1.5;2;1;1.8;8\n"
                    "26/03/2023 01:30;1.8;2;1;1.9;9\n"
                    "26/03/2023 02:00;1.9;2;1;1.7;10\n")
    report = run_import("bars-csv", [path], tmp_path / "tape", venue="demo", symbol="X", tz="Europe/London",
                        time_column="Date", format="%d/%m/%Y %H:%M", stamp="open", delimiter=";", volume_unit="base")
    _assert_conserved(report)
    # 01:30 on 2023-03-26 does not exist in London (01:00 GMT -> 02:00 BST)
    assert report.lines_rejected == {"nonexistent_local_time": 1}
    bars = _read(tmp_path / "tape", "demo", "X")
    assert bars["ts_event"].tolist() == [_ns("2023-03-25 23:00"), _ns("2023-03-26 00:00"), _ns("2023-03-26 01:00")]
    assert bars["volume"].tolist() == [7.0, 8.0, 10.0]


def test_repeated_hour_resolved_in_file_order(tmp_path: Path) -> None:
    # London clocks go back at 02:00 BST on 2023-10-29: 01:00-01:59 happens twice
    path = tmp_path / "fallback.csv"
    path.write_text("time,open,high,low,close\n" + "".join(
        f"2023-10-29 {t}:00,1,2,0.5,1.5\n" for t in ("00:30", "01:00", "01:30", "01:00", "01:30", "02:00")))
    report = run_import("bars-csv", [path], tmp_path / "tape", venue="demo", symbol="X", tz="Europe/London",
                        time_column="time", stamp="open")
    _assert_conserved(report)
    assert any("4 times fall in a repeated local hour" in note for note in report.notes)
    bars = _read(tmp_path / "tape", "demo", "X")
    assert bars["ts_event"].tolist() == [_ns(f"2023-10-{t}") for t in (
        "28 23:30", "29 00:00", "29 00:30", "29 01:00", "29 01:30", "29 02:00")]
    assert (bars["interval_ns"] == 30 * MIN_NS).all()


def test_arguments(ftx_path: Path, tmp_path: Path) -> None:
    base = {"venue": "ftx", "symbol": "BTC-PERP", "tz": "UTC"}
    with pytest.raises(ConfigError, match="time_column"):
        run_import("bars-csv", [ftx_path], tmp_path, **base, stamp="open", volume_unit="quote")
    with pytest.raises(ConfigError, match="stamp"):
        run_import("bars-csv", [ftx_path], tmp_path, **base, time_column="timestamp", volume_unit="quote")
    with pytest.raises(ConfigError, match="volume_unit"):
        run_import("bars-csv", [ftx_path], tmp_path, **base, time_column="timestamp", stamp="open")
    with pytest.raises(ConfigError, match="--venue"):
        run_import("bars-csv", [ftx_path], tmp_path, symbol="BTC-PERP", tz="UTC", **FTX_OPTIONS)
    with pytest.raises(ConfigError, match="did you mean 'time_unit'"):
        run_import("bars-csv", [ftx_path], tmp_path, **base, **FTX_OPTIONS, time_units="ms")
    with pytest.raises(DataError, match="field `ts`"):
        run_import("bars-csv", [ftx_path], tmp_path, **base, **{**FTX_OPTIONS, "time_column": "ts"})
    epochs = tmp_path / "epochs.csv"
    epochs.write_text("t,open,high,low,close\n1680652800,1,2,0.5,1.5\n1680652860,1,2,0.5,1.5\n")
    with pytest.raises(ConfigError, match="UTC by definition"):
        run_import("bars-csv", [epochs], tmp_path, venue="d", symbol="X", tz="Europe/London", time_column="t",
                   time_unit="s", stamp="open")
    with pytest.raises(ConfigError, match="time_unit"):
        run_import("bars-csv", [epochs], tmp_path, venue="d", symbol="X", time_column="t", stamp="open")
