"""funding-csv importer: the real Binance export and multi-exchange CSV, and hand-written fixtures.

Expected values come from the raw files read here another way (stdlib text, pandas with its own
time-zone rules), from the Binance WebSocket capture of the same night, or are copied by hand.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emerald.errors import ConfigError, DataError
from emerald.tape.importers import get_importer, run_import
from emerald.tape.writer import TapeWriter
from emerald.testing.tapes import assert_import_conserved as _assert_conserved
from emerald.testing.tapes import iso_ns as _ns
from emerald.testing.tapes import read_partitions

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "funding"
H8 = 8 * 3_600_000_000_000




def _read(root: Path, kind: str, venue: str, symbol: str) -> pd.DataFrame:
    return read_partitions(root, kind, venue, symbol).drop("date", strict=False).to_pandas()



# --------------------------------------------------------------------------------------------
# Binance website export


@pytest.fixture(scope="module")
def export_path(real_data: Path) -> Path:
    return real_data / "funding" / "binance_btcusdt_funding_history_export.csv"


@pytest.fixture(scope="module")
def export_rows(export_path: Path) -> list[list[str]]:
    text = export_path.read_bytes().decode("utf-8-sig")
    return [[f.strip('"') for f in line.split(",")] for line in text.splitlines()[1:]]


class _RecordingWriter(TapeWriter):
    """Validates like the real writer and keeps what it was given, but is never committed: a
    commit writes one file per UTC date (1,796 for the export, ~16,000 for all_exchanges.csv),
    too slow for a unit test. Commits are tested on slices and fixtures below."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.rows: dict[tuple[str, str, str], pd.DataFrame] = {}

    def write(self, kind, venue, symbol, data, *, source="<memory>", depth=None) -> None:
        super().write(kind, venue, symbol, data, source=source, depth=depth)
        frame = pd.DataFrame(data)
        key = (kind, venue, symbol)
        self.rows[key] = pd.concat([self.rows[key], frame]) if key in self.rows else frame


def _import_without_commit(path: Path, root: Path, **kwargs):
    writer = _RecordingWriter(root)
    report = get_importer("funding-csv")([path], writer, **kwargs)
    assert report.lines_in == report.lines_parsed + sum(report.lines_rejected.values())
    for key, e in writer.report.entries.items():
        assert e.quarantined == {} and e.rows_in == len(writer.rows[key])
    return report, writer


@pytest.fixture(scope="module")
def export_imported(export_path: Path, tmp_path_factory: pytest.TempPathFactory):
    report, writer = _import_without_commit(export_path, tmp_path_factory.mktemp("export"))
    funding = writer.rows[("funding", "binance-usdm", "BTCUSDT")]
    return funding.sort_values("ts_event").reset_index(drop=True), report


def test_binance_export_every_settlement(export_imported, export_rows: list[list[str]]) -> None:
    f, report = export_imported
    n = len(export_rows)
    # The README says 5,385 settlements: that is `wc -l` minus the header, but the file has no
    # final newline, so it holds 5,386 rows; the 8-hour grid from the first to the last
    # settlement (2019-09-10 08:00Z .. 2024-08-09 08:00Z) has exactly 5,386 slots.
    assert n == 5_386
    assert (_ns("2024-08-09 08:00") - _ns("2019-09-10 08:00")) // H8 + 1 == n
    assert report.lines_in == n and report.lines_parsed == n and report.lines_rejected == {}
    assert any("Europe/London" in note for note in report.notes)
    assert len(f) == n
    # an independent conversion: pandas' own zone rules, the repeated 01:00 read as BST
    local = pd.to_datetime(pd.Series([r[0] for r in export_rows]))
    utc = local.dt.tz_localize("Europe/London", ambiguous=np.ones(n, dtype=bool)).dt.tz_convert("UTC")
    expected = pd.DataFrame({"ts": utc.astype("datetime64[ns, UTC]").astype("int64"),
                             "rate": [float(r[3].rstrip("%") + "e-2") for r in export_rows]}).sort_values("ts")
    np.testing.assert_array_equal(f["ts_event"].to_numpy(), expected["ts"].to_numpy())
    np.testing.assert_array_equal(f["rate"].to_numpy(), expected["rate"].to_numpy())
    assert (f["ts_event"] % H8 == 0).all()
    assert (f["interval_ns"] == H8).all() and (f["next_funding_ts"] == f["ts_event"] + H8).all()
    assert f["is_settlement"].all()


def test_binance_export_known_rows(export_imported) -> None:
    f = export_imported[0].set_index("ts_event")
    # "2023-04-05 01:00:00" (BST) = 00:00Z, "0.002760%"; the settled rate in the WebSocket capture too
    assert f.loc[_ns("2023-04-05 00:00"), "rate"] == 2.760e-05
    # "2023-10-29 01:00:00", the repeated hour: 00:00Z is the settlement; then "08:00:00" GMT = 08:00Z
    assert f.loc[_ns("2023-10-29 00:00"), "rate"] == 1e-4
    assert _ns("2023-10-29 08:00") in f.index and _ns("2023-10-29 01:00") not in f.index
    # "2024-08-09 09:00:00","0.002184%" (last row, BST) and "2019-09-10 09:00:00" (first row)
    assert f.loc[_ns("2024-08-09 08:00"), "rate"] == 2.184e-05
    assert f.index.min() == _ns("2019-09-10 08:00")


def test_binance_export_fixture_rules(tmp_path: Path) -> None:
    report = run_import("funding-csv", [FIXTURES / "binance_export_sample.csv"], tmp_path)
    _assert_conserved(report)
    # by hand, from tests/data/funding/README.md
    assert report.lines_in == 12
    assert report.lines_rejected == {"off_schedule": 1, "bad_number": 2, "bad_interval": 1, "field_count": 1,
                                     "bad_contract": 1}
    btc = _read(tmp_path, "funding", "binance-usdm", "BTCUSDT")
    assert btc["ts_event"].tolist() == [_ns(t) for t in ("2023-10-28 16:00", "2023-10-29 00:00", "2023-10-29 08:00",
                                                         "2024-01-10 08:00", "2024-01-10 16:00")]
    assert btc["rate"].tolist() == [5e-05, 7.5e-05, 1e-04, -3e-05, 1.2345e-04]
    eth = _read(tmp_path, "funding", "binance-usdm", "ETHUSDT")
    assert eth["ts_event"].tolist() == [_ns("2023-07-01 08:00")]


def test_explicit_tz_and_later_instant_of_a_repeated_hour(tmp_path: Path) -> None:
    # 01:00 on 2023-11-05 happens twice in New York: 05:00Z (EDT) and 06:00Z (EST); with a 2 h
    # interval only 06:00Z is on the schedule, so the later instant is the settlement
    path = tmp_path / "export.csv"
    path.write_text('"Time","Contracts","Funding Interval","Funding Rate"\n'
                    '"2023-11-05 01:00:00","SOLUSDT Perpetual","2h","0.001000%"\n'
                    '"2023-11-05 02:00:00","SOLUSDT Perpetual","2h","0.002000%"\n')
    report = run_import("funding-csv", [path], tmp_path / "tape", tz="America/New_York", venue="binance-test")
    _assert_conserved(report)
    assert not any("Europe/London" in note for note in report.notes)
    assert report.lines_rejected == {"off_schedule": 1}  # 02:00 EST = 07:00Z, off a 2 h grid
    f = _read(tmp_path / "tape", "funding", "binance-test", "SOLUSDT")
    assert f["ts_event"].tolist() == [_ns("2023-11-05 06:00")]
    assert f["next_funding_ts"].tolist() == [_ns("2023-11-05 08:00")]


# --------------------------------------------------------------------------------------------
# multi-exchange 8-hourly CSV

SERIES = {  # (exchange, pair) -> (venue, symbol), the mapping documented in funding_csv
    ("binance", "BTC/USDT"): ("binance-spot", "BTCUSDT"), ("binance", "BTCUSDT"): ("binance-usdm", "BTCUSDT"),
    ("binance", "BTCUSDCM"): ("binance-coinm", "BTCUSD_PERP"), ("binance", "ETH/USDT"): ("binance-spot", "ETHUSDT"),
    ("binance", "ETHUSDT"): ("binance-usdm", "ETHUSDT"), ("binance", "ETHUSDCM"): ("binance-coinm", "ETHUSD_PERP"),
    ("bybit", "BTC/USDT"): ("bybit-spot", "BTCUSDT"), ("bybit", "BTCUSDT"): ("bybit-linear", "BTCUSDT"),
    ("bybit", "BTCUSDCM"): ("bybit-inverse", "BTCUSD"), ("bybit", "ETH/USDT"): ("bybit-spot", "ETHUSDT"),
    ("bybit", "ETHUSDT"): ("bybit-linear", "ETHUSDT"), ("bybit", "ETHUSDCM"): ("bybit-inverse", "ETHUSD"),
    ("okx", "BTC/USDT"): ("okx-spot", "BTC-USDT"), ("okx", "BTCUSDT"): ("okx-swap", "BTC-USDT-SWAP"),
    ("okx", "BTCUSDCM"): ("okx-swap", "BTC-USD-SWAP"), ("okx", "ETH/USDT"): ("okx-spot", "ETH-USDT"),
    ("okx", "ETHUSDT"): ("okx-swap", "ETH-USDT-SWAP"), ("okx", "ETHUSDCM"): ("okx-swap", "ETH-USD-SWAP"),
}


@pytest.fixture(scope="module")
def all_path(real_data: Path) -> Path:
    return real_data / "funding" / "all_exchanges.csv"


@pytest.fixture(scope="module")
def all_frame(all_path: Path) -> pd.DataFrame:
    return pd.read_csv(all_path, dtype={"time": str})


def test_all_exchanges_full_file(all_path: Path, all_frame: pd.DataFrame, tmp_path: Path) -> None:
    report, writer = _import_without_commit(all_path, tmp_path)
    entries = writer.report.entries
    assert report.lines_in == len(all_frame) == 29_556
    assert report.lines_parsed == len(all_frame) and report.lines_rejected == {}
    counts = all_frame.groupby(["exchange", "pair"]).size()
    assert set(counts) == {1642}  # the data README: 1,642 rows per series
    for (exchange, pair), n in counts.items():
        venue, symbol = SERIES[(exchange, pair)]
        assert entries[("bars", venue, symbol)].rows_in == n
        has_rate = all_frame[(all_frame.exchange == exchange) & (all_frame.pair == pair)]["funding rate"].notna()
        key = ("funding", venue, symbol)
        assert (entries[key].rows_in if key in entries else 0) == int(has_rate.sum())
    assert {k for k in entries if k[0] == "bars"} == {("bars", *v) for v in SERIES.values()}


def test_all_exchanges_fixed_utc_plus_one_puts_winter_rows_off_schedule(all_path: Path, all_frame: pd.DataFrame,
                                                                        tmp_path: Path) -> None:
    # The data README says "treat as UTC+1"; the file's winter rows are stamped 00/08/16, which
    # UTC+1 maps to 23/07/15Z, off the funding schedule. Every such row is rejected, none shifted.
    hours = all_frame["time"].str[11:13].astype(int)
    winter = int(hours.isin([0, 8, 16]).sum())
    assert winter == 12_870
    report, _ = _import_without_commit(all_path, tmp_path, tz="UTC+01:00")
    assert report.lines_rejected == {"off_schedule": winter}
    assert report.lines_parsed == len(all_frame) - winter


@pytest.fixture(scope="module")
def all_slice(all_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """Rows of three windows (two DST switches and the night of the Binance capture), imported."""
    lines = all_path.read_text().splitlines()
    days = ("2023-03-25", "2023-03-26", "2023-03-27", "2023-04-04", "2023-04-05", "2023-10-28", "2023-10-29",
            "2023-10-30")
    keep = [lines[0]] + [line for line in lines[1:] if line[:10] in days]
    tmp = tmp_path_factory.mktemp("slice")
    path = tmp / "all_exchanges.csv"
    path.write_text("\n".join(keep) + "\n")
    root = tmp / "tape"
    return root, run_import("funding-csv", [path], root), len(keep) - 1


def test_all_exchanges_slice_times_and_dst(all_slice) -> None:
    root, report, n = all_slice
    _assert_conserved(report)
    assert report.lines_in == n == 8 * 3 * 18 and report.lines_rejected == {}
    spot = _read(root, "bars", "binance-spot", "BTCUSDT")
    ts = spot["ts_event"].tolist()
    # local "2023-03-26 00:00" (GMT) -> 00:00Z, "2023-03-26 09:00" (BST) -> 08:00Z,
    # "2023-10-29 01:00" (the repeated hour, BST) -> 00:00Z, "2023-10-29 08:00" (GMT) -> 08:00Z
    for t in ("2023-03-26 00:00", "2023-03-26 08:00", "2023-10-29 00:00", "2023-10-29 08:00"):
        assert _ns(t) in ts
    assert all(t % H8 == 0 for t in ts)
    assert (spot["interval_ns"] == H8).all()
    # bars are contiguous within each window, 8 h apart: each open is within one tick (0.01) of
    # the previous close (the last trade before the boundary vs the first one after it)
    same_window = np.diff(spot["ts_event"].to_numpy()) == H8
    assert same_window.sum() == 8 * 3 - 3
    gap = spot["open"].to_numpy()[1:][same_window] - spot["close"].to_numpy()[:-1][same_window]
    assert np.all(np.abs(gap) <= 0.01 + 1e-9)


def test_all_exchanges_bar_is_open_stamped_and_rate_is_settled(all_slice, real_data: Path,
                                                               export_rows: list[list[str]]) -> None:
    root, _, _ = all_slice
    midnight = _ns("2023-04-05 00:00")
    trades = []
    for name in ("usdm_btcusdt_20230404.dat.gz", "usdm_btcusdt_20230405.dat.gz"):
        with gzip.open(real_data / "binance-raw" / name, "rt") as f:
            for line in f:
                if '@trade"' in line:
                    d = json.loads(line.split(" ", 1)[1])["data"]
                    trades.append((d["T"] * 1_000_000, float(d["p"])))
    trades.sort()
    before = [p for t, p in trades if t < midnight]
    after = [p for t, p in trades if t >= midnight]
    bars = _read(root, "bars", "binance-usdm", "BTCUSDT").set_index("ts_event")
    # the bar stamped 00:00Z opens at the first trade after midnight; the one before closes at
    # the last trade before midnight: the row time is the bar open
    assert bars.loc[midnight, "open"] == after[0] == 28155.1
    assert bars.loc[midnight - H8, "close"] == before[-1] == 28155.2
    assert bars.loc[midnight, "low"] <= min(after) and bars.loc[midnight, "high"] >= max(after)
    funding = _read(root, "funding", "binance-usdm", "BTCUSDT").set_index("ts_event")
    export_rate = next(float(r[3].rstrip("%") + "e-2") for r in export_rows if r[0] == "2023-04-05 01:00:00")
    assert funding.loc[midnight, "rate"] == export_rate == 2.76e-05
    assert funding["is_settlement"].all() and (funding["next_funding_ts"] == funding.index + H8).all()


def test_all_exchanges_fixture_rules(tmp_path: Path) -> None:
    report = run_import("funding-csv", [FIXTURES / "all_exchanges_sample.csv"], tmp_path)
    _assert_conserved(report)
    assert report.lines_in == 9
    assert report.lines_rejected == {"unknown_series": 1, "off_schedule": 1, "funding_on_spot": 1, "bad_number": 1}
    assert any("1 perpetual rows have no funding rate" in note for note in report.notes)
    coinm = _read(tmp_path, "funding", "binance-coinm", "BTCUSD_PERP")
    assert coinm["ts_event"].tolist() == [_ns("2023-01-01 00:00")] and coinm["rate"].tolist() == [-1.609e-05]
    okx = _read(tmp_path, "bars", "okx-swap", "BTC-USDT-SWAP")
    assert okx[["open", "high", "low", "close", "volume"]].iloc[0].tolist() == [16571.9, 16576.4, 16470.1, 16538.1,
                                                                                7214.94]
    inverse = _read(tmp_path, "bars", "bybit-inverse", "ETHUSD")
    assert inverse["ts_event"].tolist() == [_ns("2023-07-01 00:00"), _ns("2023-07-01 08:00")]
    assert len(_read(tmp_path, "funding", "bybit-inverse", "ETHUSD")) == 1
    assert not (tmp_path / "funding" / "venue=binance-spot").exists()


def test_arguments_and_header(tmp_path: Path) -> None:
    sample = FIXTURES / "all_exchanges_sample.csv"
    with pytest.raises(ConfigError, match="--venue"):
        run_import("funding-csv", [sample], tmp_path, venue="binance-usdm")
    with pytest.raises(ConfigError, match="takes none"):
        run_import("funding-csv", [sample], tmp_path, interval="8h")
    other = tmp_path / "funding.csv"
    other.write_text("fundingTime,fundingRate\n1680652800000,0.0000276\n")
    with pytest.raises(DataError, match=r"funding\.csv.*header"):
        run_import("funding-csv", [other], tmp_path)
