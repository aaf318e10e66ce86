"""histdata and mt5 importers: the real HistData EURUSD files and hand-written MT5 exports.

Expected values are counted or parsed here independently (line counts, pandas parsing of the raw
file, values copied by hand), never taken from the importer.
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

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "mt5"
MIN_NS = 60_000_000_000




def _read(root: Path, kind: str, venue: str, symbol: str) -> pd.DataFrame:
    return read_partitions(root, kind, venue, symbol).drop("date", strict=False).to_pandas()



# --------------------------------------------------------------------------------------------
# HistData


@pytest.fixture(scope="module")
def histdata_files(real_data: Path) -> list[Path]:
    files = sorted((real_data / "bars").glob("DAT_ASCII_EURUSD_M1_2017*.csv"))
    assert len(files) == 6
    return files


def test_histdata_six_months_total_and_first_bar(histdata_files: list[Path], tmp_path: Path) -> None:
    n_lines = sum(len(p.read_bytes().splitlines()) for p in histdata_files)
    assert n_lines == 186_348  # the data README
    report = run_import("histdata", histdata_files, tmp_path, tz="UTC-05:00")
    _assert_conserved(report)
    assert report.lines_in == n_lines and report.lines_parsed == n_lines
    entry = report.write.entries[("bars", "histdata", "EURUSD")]
    assert entry.rows_written == n_lines
    # "20170102 020000" is EST (UTC-5, no daylight saving) -> 07:00Z
    assert entry.first_ts == _ns("2017-01-02 07:00:00")
    # last line of the June file "20170630 165800" -> 21:58Z (still UTC-5 in summer: no DST)
    assert entry.last_ts == _ns("2017-06-30 21:58:00")


def test_histdata_january_every_bar(histdata_files: list[Path], tmp_path: Path) -> None:
    jan = histdata_files[0]
    raw = pd.read_csv(jan, sep=";", header=None, names=["t", "o", "h", "l", "c", "v"], dtype={"t": str})
    local = pd.to_datetime(raw["t"], format="%Y%m%d %H%M%S").astype("datetime64[ns]")
    expected_ts = (local + pd.Timedelta(hours=5)).astype("int64")
    report = run_import("histdata", [jan], tmp_path, tz="UTC-05:00")
    _assert_conserved(report)
    bars = _read(tmp_path, "bars", "histdata", "EURUSD")
    assert len(bars) == len(raw) == 31_500
    np.testing.assert_array_equal(bars["ts_event"].to_numpy(), np.sort(expected_ts.to_numpy()))
    order = np.argsort(expected_ts.to_numpy(), kind="stable")
    for col, name in (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"), ("v", "volume")):
        np.testing.assert_array_equal(bars[name].to_numpy(), raw[col].to_numpy(dtype=float)[order])
    assert (bars["interval_ns"] == MIN_NS).all()
    assert bars["buy_volume"].isna().all() and bars["sell_volume"].isna().all()
    assert (bars["trades"] == -1).all()
    # first line by hand: 20170102 020000;1.051550;1.051970;1.051550;1.051900;0
    assert bars.loc[0, ["open", "high", "low", "close", "volume"]].tolist() == [1.05155, 1.05197, 1.05155, 1.0519, 0.0]


def test_histdata_requires_tz_and_symbol(histdata_files: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--tz.*UTC-05:00"):
        run_import("histdata", histdata_files[:1], tmp_path)
    other = tmp_path / "eurusd.csv"
    other.write_bytes(histdata_files[0].read_bytes()[:200])
    with pytest.raises(ConfigError, match="--symbol"):
        run_import("histdata", [other], tmp_path / "t", tz="UTC-05:00")
    with pytest.raises(ConfigError, match="takes none"):
        run_import("histdata", histdata_files[:1], tmp_path / "t", tz="UTC-05:00", interval="1m")


def test_histdata_bad_lines_rejected(tmp_path: Path) -> None:
    path = tmp_path / "DAT_ASCII_GBPUSD_M1_201701.csv"
    path.write_text("20170102 020000;1.2;1.3;1.1;1.25;0\n"
                    "20170102 0201;1.2;1.3;1.1;1.25;0\n"          # bad time
                    "20170102 020200;1.2;1.3;x;1.25;0\n"           # bad number
                    "20170102 020300;1.2;1.3;1.1;1.25\n"           # five fields
                    "\n"                                           # blank line
                    "20170102 020400;1.2;1.3;1.1;1.25;0\n")
    report = run_import("histdata", [path], tmp_path / "tape", tz="UTC-05:00", symbol="GBPUSD")
    _assert_conserved(report)
    assert report.lines_in == 6
    assert report.lines_rejected == {"bad_time": 1, "bad_number": 1, "field_count": 2}
    bars = _read(tmp_path / "tape", "bars", "histdata", "GBPUSD")
    assert bars["ts_event"].tolist() == [_ns("2017-01-02 07:00"), _ns("2017-01-02 07:04")]


# --------------------------------------------------------------------------------------------
# MetaTrader 5


def test_mt5_ticks_carry_forward(tmp_path: Path) -> None:
    report = run_import("mt5", [FIXTURES / "EURUSD_ticks.csv"], tmp_path, tz="Europe/Athens", symbol="EURUSD")
    _assert_conserved(report)
    # by hand, from tests/data/mt5/README.md
    assert report.lines_in == 11
    assert report.lines_rejected == {"before_two_sided_quote": 1, "bad_number": 1, "field_count": 1,
                                     "nonexistent_local_time": 1}
    assert report.unhandled == {"trade_tick": 1}
    q = _read(tmp_path, "quotes", "mt5", "EURUSD")
    # Europe/Athens is UTC+2 in January, UTC+3 after 2024-03-31 04:00 local
    assert q["ts_event"].tolist() == [_ns(t) for t in (
        "2024-01-01 22:00:00.250", "2024-01-01 22:00:00.311", "2024-01-01 22:00:01.007",
        "2024-01-01 22:00:02.013", "2024-01-01 22:00:03", "2024-03-31 01:00:00")]
    assert q["bid_px"].tolist() == [1.10384, 1.10385, 1.10383, 1.10383, 1.10380, 1.08002]
    assert q["ask_px"].tolist() == [1.10396, 1.10396, 1.10394, 1.10393, 1.10391, 1.10391]
    assert q["bid_qty"].isna().all() and q["ask_qty"].isna().all()
    assert (q["ts_recv"] == q["ts_event"]).all()


def test_mt5_utf16_export_with_fixed_offset(tmp_path: Path) -> None:
    path = tmp_path / "EURUSD_ticks_utf16.csv"
    path.write_bytes((FIXTURES / "EURUSD_ticks.csv").read_text().replace("\n", "\r\n").encode("utf-16"))
    assert path.read_bytes()[:2] == b"\xff\xfe"
    report = run_import("mt5", [path], tmp_path / "tape", tz="UTC+02:00", symbol="EURUSD")
    _assert_conserved(report)
    # a fixed offset has no gap: the 03:30 tick is kept this time
    assert report.lines_rejected == {"before_two_sided_quote": 1, "bad_number": 1, "field_count": 1}
    q = _read(tmp_path / "tape", "quotes", "mt5", "EURUSD")
    assert q["ts_event"].iloc[-2:].tolist() == [_ns("2024-03-31 01:30"), _ns("2024-03-31 02:00")]
    assert q["ask_px"].iloc[-1] == 1.08012  # carried from the 03:30 tick


def test_mt5_bars(tmp_path: Path) -> None:
    report = run_import("mt5", [FIXTURES / "EURUSD_M1_bars.csv"], tmp_path, tz="UTC+02:00", symbol="EURUSD")
    _assert_conserved(report)
    assert report.lines_in == 7 and report.lines_rejected == {"bad_number": 1}
    entry = report.write.entries[("bars", "mt5", "EURUSD")]
    assert entry.quarantined == {"bar_ohlc": 1}  # 00:07: high 1.10370 < open 1.10377
    assert any("<TICKVOL>" in n for n in report.notes)
    assert any("1m inferred" in n for n in report.notes)
    bars = _read(tmp_path, "bars", "mt5", "EURUSD")
    assert bars["ts_event"].tolist() == [_ns(f"2024-01-01 22:0{m}") for m in (0, 1, 2, 4, 5)]
    assert bars["volume"].tolist() == [87.0, 64.0, 71.0, 52.0, 40.0]  # TICKVOL, VOL being 0
    assert bars["close"].tolist() == [1.10402, 1.10415, 1.10391, 1.10388, 1.10372]
    assert (bars["interval_ns"] == MIN_NS).all()


def test_mt5_bars_real_volume_and_interval_option(tmp_path: Path) -> None:
    path = tmp_path / "XAUUSD_H1.csv"
    path.write_text("<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
                    "2024.01.02\t10:00:00\t2060.5\t2065.0\t2058.1\t2063.2\t5120\t0\t25\n"
                    "2024.01.02\t11:00:00\t2063.2\t2070.0\t2061.0\t2069.9\t4870\t312\t25\n")
    report = run_import("mt5", [path], tmp_path / "tape", tz="UTC", symbol="XAUUSD", interval="1h")
    _assert_conserved(report)
    bars = _read(tmp_path / "tape", "bars", "mt5", "XAUUSD")
    assert bars["volume"].tolist() == [0.0, 312.0]  # real volume present: VOL is used
    assert (bars["interval_ns"] == 60 * MIN_NS).all()
    assert not any("inferred" in n for n in report.notes)


def test_mt5_arguments_and_header(tmp_path: Path) -> None:
    ticks = FIXTURES / "EURUSD_ticks.csv"
    with pytest.raises(ConfigError, match="--tz"):
        run_import("mt5", [ticks], tmp_path, symbol="EURUSD")
    with pytest.raises(ConfigError, match="--symbol"):
        run_import("mt5", [ticks], tmp_path, tz="UTC+02:00")
    with pytest.raises(ConfigError, match="interval"):
        run_import("mt5", [ticks], tmp_path, tz="UTC+02:00", symbol="EURUSD", interval="fortnight")
    other = tmp_path / "other.csv"
    other.write_text("DATE,TIME,BID,ASK\n2024.01.02,00:00:00,1.1,1.2\n")
    with pytest.raises(DataError, match=r"other\.csv.*header"):
        run_import("mt5", [other], tmp_path, tz="UTC+02:00", symbol="EURUSD")


def test_mt5_ticks_across_the_autumn_clock_change(tmp_path: Path) -> None:
    # Europe/Athens goes from 04:00 EEST back to 03:00 EET on 2024-10-27: 03:00-03:59 happens twice
    path = tmp_path / "ticks.csv"
    path.write_text("<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>\n"
                    "2024.10.27\t03:59:59.000\t1.1\t1.2\t\t\t6\n"
                    "2024.10.27\t03:00:00.500\t1.11\t\t\t\t2\n"
                    "2024.10.27\t03:30:00.000\t\t1.21\t\t\t4\n"
                    "2024.10.27\t04:00:00.000\t1.12\t\t\t\t2\n")
    report = run_import("mt5", [path], tmp_path / "tape", tz="Europe/Athens", symbol="EURUSD")
    _assert_conserved(report)
    q = _read(tmp_path / "tape", "quotes", "mt5", "EURUSD")
    assert q["ts_event"].tolist() == [_ns(t) for t in ("2024-10-27 00:59:59", "2024-10-27 01:00:00.5",
                                                       "2024-10-27 01:30", "2024-10-27 02:00")]


def test_mt5_ticks_out_of_order_refused(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text("<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>\n"
                    "2024.01.02\t00:00:01.000\t1.1\t1.2\t\t\t6\n"
                    "2024.01.02\t00:00:00.500\t1.11\t\t\t\t2\n")
    with pytest.raises(DataError, match=r"not in time order.*ticks\.csv, line 3"):
        run_import("mt5", [path], tmp_path / "tape", tz="UTC", symbol="EURUSD")
