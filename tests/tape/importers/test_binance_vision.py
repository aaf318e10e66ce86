"""Binance Vision importer: the real ADABTC klines, and fixtures laid out as Binance publishes them.

Fixtures (tests/data/binance_vision/README.md) follow the column lists of
binance/binance-public-data README.md; several hold real values taken from the WebSocket
captures in ../shared/data/real/binance-raw. Expected values here are read from the raw text by
the tests themselves, never from the importer.
"""

from __future__ import annotations

import csv
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from emerald.errors import ConfigError, DataError
from emerald.tape.importers import binance_vision, run_import
from emerald.testing.tapes import iso_ns as ns
from emerald.testing.tapes import read_partitions as read

DATA = Path(__file__).resolve().parents[2] / "data" / "binance_vision"
MS = 1_000_000
HOUR_NS = 3_600_000_000_000




def raw_rows(path: Path, header: bool = False) -> list[list[str]]:
    rows = list(csv.reader(path.read_text().splitlines()))
    return rows[1:] if header else rows


def balanced(report) -> bool:  # type: ignore[no-untyped-def]
    return (report.lines_in == report.lines_parsed + sum(report.lines_rejected.values())
            and report.write is not None and report.write.balanced)


# --------------------------------------------------------------------------------------------
# real data: Binance spot ADABTC 1m klines, no header


def test_real_adabtc_klines_two_days(real_data: Path, tmp_path: Path) -> None:
    paths = [real_data / "bars" / f"ADABTC-1m-2021-11-2{d}.csv" for d in (7, 8)]
    raw = [raw_rows(p) for p in paths]
    report = run_import("binance-vision", paths, tmp_path, venue="binance-spot")
    assert report.lines_in == sum(len(r) for r in raw) == 2880
    assert report.lines_parsed == 2880 and report.lines_rejected == {} and balanced(report)
    assert "ADABTC-1m-2021-11-27.csv: times in ms" in report.notes
    bars = read(tmp_path, "bars", "binance-spot", "ADABTC")
    assert bars.height == 2880
    days = bars.group_by((pl.col("ts_event") // (24 * HOUR_NS)).alias("day")).len().sort("day")
    assert days["len"].to_list() == [1440, 1440]
    assert bars["ts_event"][0] == ns("2021-11-27T00:00")
    assert bars["ts_event"][-1] == ns("2021-11-28T23:59")
    assert (np.diff(bars["ts_event"].to_numpy()) == 60_000_000_000).all()
    assert (bars["interval_ns"] == 60_000_000_000).all()
    first = raw[0][0]  # 1637971200000,0.00002853,0.00002854,0.00002851,0.00002854,36304.20000000,...
    row = bars.row(0, named=True)
    assert (row["open"], row["high"], row["low"], row["close"]) == tuple(float(x) for x in first[1:5])
    assert row["volume"] == float(first[5]) and row["buy_volume"] == float(first[9])
    assert row["sell_volume"] == pytest.approx(float(first[5]) - float(first[9]), rel=1e-12)
    assert row["trades"] == int(first[8])
    last = raw[1][-1]
    assert bars["close"][-1] == float(last[4]) and bars["trades"][-1] == int(last[8])
    assert bars["volume"].sum() == pytest.approx(sum(float(r[5]) for day in raw for r in day), rel=1e-12)


def test_zip_equals_csv(real_data: Path, tmp_path: Path) -> None:
    src = real_data / "bars" / "ADABTC-1m-2021-11-27.csv"
    zipped = tmp_path / "ADABTC-1m-2021-11-27.zip"
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(src, arcname=src.name)
    run_import("binance-vision", [src], tmp_path / "a", venue="binance-spot")
    report = run_import("binance-vision", [zipped], tmp_path / "b", venue="binance-spot")
    assert report.lines_in == 1440 and balanced(report)
    assert read(tmp_path / "b", "bars", "binance-spot", "ADABTC").equals(
        read(tmp_path / "a", "bars", "binance-spot", "ADABTC"))


def test_zip_with_two_members_is_refused(tmp_path: Path) -> None:
    zipped = tmp_path / "BTCUSDT-trades-2023-04-05.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("a.csv", "1,2\n")
        zf.writestr("b.csv", "1,2\n")
    with pytest.raises(DataError, match="exactly one CSV"):
        run_import("binance-vision", [zipped], tmp_path / "t", venue="binance-spot")


def test_small_blocks_give_the_same_tape(real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = real_data / "bars" / "ADABTC-1m-2021-11-28.csv"
    run_import("binance-vision", [src], tmp_path / "a", venue="binance-spot")
    monkeypatch.setattr(binance_vision, "BLOCK_BYTES", 4096)  # ~30 lines per block
    report = run_import("binance-vision", [src], tmp_path / "b", venue="binance-spot")
    assert report.lines_in == 1440 and balanced(report)
    assert read(tmp_path / "b", "bars", "binance-spot", "ADABTC").equals(
        read(tmp_path / "a", "bars", "binance-spot", "ADABTC"))


# --------------------------------------------------------------------------------------------
# trades and aggTrades


def test_spot_trades_no_header_side_and_ids(tmp_path: Path) -> None:
    path = DATA / "spot" / "BTCUSDT-trades-2023-04-05.csv"
    raw = raw_rows(path)
    report = run_import("binance-vision", [path], tmp_path, venue="binance-spot")
    assert report.lines_in == len(raw) == 8 and balanced(report)
    assert any("no header row" in n for n in report.notes)
    t = read(tmp_path, "trades", "binance-spot", "BTCUSDT").sort("trade_id")
    assert t["trade_id"].to_list() == [int(r[0]) for r in raw]
    assert t["price"].to_list() == [float(r[1]) for r in raw]
    assert t["qty"].to_list() == [float(r[2]) for r in raw]
    assert t["ts_event"].to_list() == [int(r[4]) * MS for r in raw]
    assert t["side"].to_list() == [-1 if r[5] == "True" else 1 for r in raw]  # buyer maker -> seller aggressor
    assert (t["ts_recv"] == t["ts_event"]).all()


def test_spot_trades_in_microseconds_2025(tmp_path: Path) -> None:
    path = DATA / "spot" / "BTCUSDT-trades-2025-01-02.csv"
    report = run_import("binance-vision", [path], tmp_path, venue="binance-spot")
    assert "BTCUSDT-trades-2025-01-02.csv: times in us" in report.notes
    t = read(tmp_path, "trades", "binance-spot", "BTCUSDT")
    # 1735776000123456 us = 2025-01-02T00:00:00.123456Z
    assert t["ts_event"][0] == ns("2025-01-02T00:00:00.123456")
    assert t["ts_event"][-1] == ns("2025-01-02T00:00:00.200999")


def test_usdm_trades_with_header(tmp_path: Path) -> None:
    path = DATA / "um" / "BTCUSDT-trades-2023-04-05.csv"
    raw = raw_rows(path, header=True)
    report = run_import("binance-vision", [path], tmp_path, venue="binance-usdm")
    assert report.lines_in == len(raw) == 12 and report.lines_parsed == 12 and balanced(report)
    assert any("header row" in n and "no header" not in n for n in report.notes)
    t = read(tmp_path, "trades", "binance-usdm", "BTCUSDT").sort("trade_id")
    assert t["side"].to_list() == [-1 if r[5] == "true" else 1 for r in raw]
    assert t["qty"].sum() == pytest.approx(sum(float(r[2]) for r in raw), rel=1e-12)
    assert t["ts_event"][0] == ns("2023-04-05T00:00:04.962")


def test_aggtrades_header_and_headerless_give_the_same_rows(tmp_path: Path) -> None:
    path = DATA / "um" / "BTCUSDT-aggTrades-2023-04-05.csv"
    headerless = tmp_path / "in" / path.name
    headerless.parent.mkdir()
    headerless.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    a = run_import("binance-vision", [path], tmp_path / "a", venue="binance-usdm")
    b = run_import("binance-vision", [headerless], tmp_path / "b", venue="binance-usdm")
    assert a.lines_in == b.lines_in == 6 and balanced(a) and balanced(b)
    ta = read(tmp_path / "a", "trades", "binance-usdm", "BTCUSDT")
    assert ta.equals(read(tmp_path / "b", "trades", "binance-usdm", "BTCUSDT"))
    raw = raw_rows(path, header=True)
    assert ta.sort("trade_id")["trade_id"].to_list() == [int(r[0]) for r in raw]  # aggregate ids
    # the aggregates hold the same quantity as the individual trades they were built from
    trades = raw_rows(DATA / "um" / "BTCUSDT-trades-2023-04-05.csv", header=True)
    assert ta["qty"].sum() == pytest.approx(sum(float(r[2]) for r in trades), rel=1e-12)


def test_coinm_trades_aggtrades_in_base_units(tmp_path: Path) -> None:
    paths = [DATA / "cm" / "BTCUSD_PERP-trades-2023-04-05.csv"]
    run_import("binance-vision", paths, tmp_path / "t", venue="binance-coinm")
    t = read(tmp_path / "t", "trades", "binance-coinm", "BTCUSD_PERP").sort("trade_id")
    raw = raw_rows(paths[0], header=True)
    assert t["qty"].to_list() == [float(r[3]) for r in raw]  # base_qty, not contracts
    report = run_import("binance-vision", [DATA / "cm" / "BTCUSD_PERP-aggTrades-2023-04-05.csv"], tmp_path / "a",
                        venue="binance-coinm")
    a = read(tmp_path / "a", "trades", "binance-coinm", "BTCUSD_PERP").sort("trade_id")
    # 3 contracts of 100 USD at 28170.1 and 11 at 28170.2
    assert a["qty"].to_list() == pytest.approx([300 / 28170.1, 1100 / 28170.2], rel=1e-12)
    assert any("contracts to base" in n for n in report.notes)


# --------------------------------------------------------------------------------------------
# quotes, klines, prices, funding, open interest, unmapped types


def test_book_ticker_to_quotes(tmp_path: Path) -> None:
    path = DATA / "um" / "BTCUSDT-bookTicker-2023-04-05.csv"
    raw = raw_rows(path, header=True)
    report = run_import("binance-vision", [path], tmp_path, venue="binance-usdm")
    assert report.lines_in == 10 and balanced(report)
    q = read(tmp_path, "quotes", "binance-usdm", "BTCUSDT")
    assert q.height == 10
    assert q["ts_event"].to_list() == [int(r[5]) * MS for r in raw]  # transaction_time
    assert q["bid_px"].to_list() == [float(r[1]) for r in raw]
    assert q["ask_qty"].to_list() == [float(r[4]) for r in raw]


def test_usdm_hourly_klines(tmp_path: Path) -> None:
    path = DATA / "um" / "BTCUSDT-1h-2023-04-05.csv"
    raw = raw_rows(path, header=True)
    report = run_import("binance-vision", [path], tmp_path, venue="binance-usdm")
    assert report.lines_in == 3 and balanced(report)
    bars = read(tmp_path, "bars", "binance-usdm", "BTCUSDT")
    assert bars["ts_event"].to_list() == [ns("2023-04-05T00:00"), ns("2023-04-05T01:00"), ns("2023-04-05T02:00")]
    assert (bars["interval_ns"] == HOUR_NS).all()
    assert bars["buy_volume"].to_list() == [float(r[9]) for r in raw]
    assert bars["sell_volume"].to_list() == pytest.approx([float(r[5]) - float(r[9]) for r in raw], rel=1e-12)


def test_kline_close_time_must_match_the_interval(tmp_path: Path) -> None:
    lines = (DATA / "um" / "BTCUSDT-1h-2023-04-05.csv").read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("1680659999999", "1680659940000")  # a 59-minute kline in a 1h file
    path = tmp_path / "BTCUSDT-1h-2023-04-05.csv"
    path.write_text("".join(lines))
    report = run_import("binance-vision", [path], tmp_path / "tape", venue="binance-usdm")
    assert report.lines_rejected == {"interval_mismatch.close_time": 1}
    assert report.lines_in == 3 and report.lines_parsed == 2 and balanced(report)
    bars = read(tmp_path / "tape", "bars", "binance-usdm", "BTCUSDT")
    assert ns("2023-04-05T01:00") not in bars["ts_event"].to_list()


def test_mark_and_index_klines_are_stamped_at_the_close(tmp_path: Path) -> None:
    mark = DATA / "um" / "BTCUSDT-markPriceKlines-1h-2023-04-05.csv"
    index = DATA / "um" / "BTCUSDT-indexPriceKlines-1h-2023-04-05.csv"
    premium = DATA / "um" / "BTCUSDT-premiumIndexKlines-1h-2023-04-05.csv"
    report = run_import("binance-vision", [mark, index, premium], tmp_path, venue="binance-usdm")
    assert report.lines_in == 9 and report.lines_parsed == 9 and balanced(report)
    assert report.unhandled == {"premiumIndexKlines": 3}
    p = read(tmp_path, "prices", "binance-usdm", "BTCUSDT").sort("ts_event", "mark")
    closes = {int(r[6]) + 1: float(r[4]) for r in raw_rows(mark, header=True)}  # close_time + 1 ms
    m = p.filter(pl.col("mark").is_not_nan())
    assert dict(zip(m["ts_event"].to_list(), m["mark"].to_list(), strict=True)) == {
        k * MS: v for k, v in closes.items()}
    assert m["index"].is_nan().all()
    i = p.filter(pl.col("index").is_not_nan())
    assert i["index"].to_list() == [float(r[4]) for r in raw_rows(index, header=True)]
    # never at the open: the first value is known at 01:00, not 00:00
    assert p["ts_event"].min() == ns("2023-04-05T01:00")


def test_funding_rate_settlements_match_binance_history(real_data: Path, tmp_path: Path) -> None:
    path = DATA / "um" / "BTCUSDT-fundingRate-2023-04.csv"
    report = run_import("binance-vision", [path], tmp_path, venue="binance-usdm")
    assert report.lines_in == 15 and balanced(report)
    f = read(tmp_path, "funding", "binance-usdm", "BTCUSDT").sort("ts_event")
    assert f["is_settlement"].all() and (f["interval_ns"] == 8 * HOUR_NS).all()
    assert (f["next_funding_ts"] - f["ts_event"] == 8 * HOUR_NS).all()
    # independent source: Binance's website export (Europe/London time, BST = UTC+1 in April 2023)
    export = real_data / "funding" / "binance_btcusdt_funding_history_export.csv"
    expected = {}
    for row in csv.DictReader(export.read_text(encoding="utf-8-sig").splitlines()):
        t = datetime.strptime(row["Time"], "%Y-%m-%d %H:%M:%S") - timedelta(hours=1)
        if datetime(2023, 4, 1) <= t <= datetime(2023, 4, 5, 16):
            key = int(t.replace(tzinfo=UTC).timestamp()) * 1_000_000_000
            expected[key] = float(row["Funding Rate"].rstrip("%")) / 100
    assert len(expected) == 15
    got = dict(zip(f["ts_event"].to_list(), f["rate"].to_list(), strict=True))
    assert got.keys() == expected.keys()
    assert all(got[k] == pytest.approx(v, abs=1e-12) for k, v in expected.items())
    assert got[ns("2023-04-05T00:00")] == pytest.approx(2.760e-05, abs=1e-12)


def test_metrics_open_interest_and_ratios(tmp_path: Path) -> None:
    path = DATA / "um" / "BTCUSDT-metrics-2023-04-05.csv"
    raw = raw_rows(path, header=True)
    report = run_import("binance-vision", [path], tmp_path, venue="binance-usdm")
    assert report.lines_in == 3 and balanced(report)
    oi = read(tmp_path, "open_interest", "binance-usdm", "BTCUSDT")
    # create_time is UTC: '2023-04-05 00:05:00'
    assert oi["ts_event"].to_list() == [ns("2023-04-05T00:05"), ns("2023-04-05T00:10"), ns("2023-04-05T00:15")]
    assert oi["oi_qty"].to_list() == [float(r[2]) for r in raw]
    assert oi["oi_notional"].to_list() == [float(r[3]) for r in raw]
    non_empty = {name: sum(1 for r in raw if r[i]) for i, name in enumerate(
        ("count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio", "count_long_short_ratio",
         "sum_taker_long_short_vol_ratio"), start=4)}
    assert report.unhandled == {f"metrics.{k}": v for k, v in non_empty.items()}
    assert non_empty["sum_taker_long_short_vol_ratio"] == 2


def test_headerless_metrics_keep_their_first_line(tmp_path: Path) -> None:
    # the first field of a metrics line is a date-time, not a number: it must not pass for a header
    src = DATA / "um" / "BTCUSDT-metrics-2023-04-05.csv"
    path = tmp_path / "in" / src.name
    path.parent.mkdir()
    path.write_text("".join(src.read_text().splitlines(keepends=True)[1:]))
    report = run_import("binance-vision", [path], tmp_path / "tape", venue="binance-usdm")
    assert report.lines_in == report.lines_parsed == 3 and balanced(report)
    assert read(tmp_path / "tape", "open_interest", "binance-usdm", "BTCUSDT").height == 3


def test_coinm_klines_and_metrics_use_base_and_contract_values(tmp_path: Path) -> None:
    klines = DATA / "cm" / "BTCUSD_PERP-1m-2023-04-05.csv"
    metrics = DATA / "cm" / "BTCUSD_PERP-metrics-2023-04-05.csv"
    report = run_import("binance-vision", [klines, metrics], tmp_path, venue="binance-coinm")
    assert balanced(report)
    bars = read(tmp_path, "bars", "binance-coinm", "BTCUSD_PERP")
    raw = raw_rows(klines, header=True)
    assert bars["volume"].to_list() == [float(r[7]) for r in raw]  # base asset volume, not contracts
    assert bars["buy_volume"].to_list() == [float(r[10]) for r in raw]
    oi = read(tmp_path, "open_interest", "binance-coinm", "BTCUSD_PERP")
    assert oi["oi_notional"].to_list() == [float(r[2]) * 100 for r in raw_rows(metrics, header=True)]
    assert oi["oi_qty"].is_nan().all()


def test_book_depth_is_counted_not_invented(tmp_path: Path) -> None:
    path = DATA / "um" / "BTCUSDT-bookDepth-2023-04-05.csv"
    report = run_import("binance-vision", [path], tmp_path, venue="binance-usdm")
    n = len(raw_rows(path, header=True))
    assert report.lines_in == report.lines_parsed == n == 10
    assert report.unhandled == {"bookDepth": n}
    assert report.write is not None and report.write.entries == {}
    assert any("bookDepth" in note and "no level prices" in note for note in report.notes)


# --------------------------------------------------------------------------------------------
# rejected lines, strict mode, options


def _broken_spot_trades(tmp_path: Path) -> Path:
    lines = (DATA / "spot" / "BTCUSDT-trades-2023-04-05.csv").read_text().splitlines()
    lines[2] = lines[2].replace("28165.47000000", "28165.4x")      # line 3: price
    lines[4] = ",".join(lines[4].split(",")[:5])                   # line 5: 5 fields
    lines[5] = lines[5].replace("False", "maybe")                  # line 6: isBuyerMaker
    path = tmp_path / "in" / "BTCUSDT-trades-2023-04-05.csv"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_lines_are_rejected_and_conserved(tmp_path: Path) -> None:
    path = _broken_spot_trades(tmp_path)
    report = run_import("binance-vision", [path], tmp_path / "tape", venue="binance-spot")
    assert report.lines_rejected == {"unparseable.price": 1, "field_count": 1, "unparseable.is_buyer_maker": 1}
    assert report.lines_in == 8 and report.lines_parsed == 5 and balanced(report)
    assert read(tmp_path / "tape", "trades", "binance-spot", "BTCUSDT").height == 5
    kept = [json.loads(line) for f in (tmp_path / "tape" / "_quarantine" / "_lines").rglob("*.jsonl")
            for line in f.read_text().splitlines()]
    assert sorted(r["line"] for r in kept) == [3, 5, 6]


def test_file_of_bad_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-trades-2023-04-05.csv"
    path.write_text("3071245455,28165.4x,0.00128000,36.05180160,1680652800001,True,True\n")
    report = run_import("binance-vision", [path], tmp_path / "tape", venue="binance-spot")
    assert report.lines_in == 1 and report.lines_rejected == {"unparseable.price": 1} and balanced(report)


def test_strict_mode_names_file_line_and_field(tmp_path: Path) -> None:
    path = _broken_spot_trades(tmp_path)
    with pytest.raises(DataError, match=r"BTCUSDT-trades-2023-04-05\.csv, line 3, field `price`, was .*28165\.4x"):
        run_import("binance-vision", [path], tmp_path / "tape", venue="binance-spot", strict=True)


def test_venue_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--venue"):
        run_import("binance-vision", [DATA / "um" / "BTCUSDT-trades-2023-04-05.csv"], tmp_path)


@pytest.mark.parametrize("options, match", [
    ({"venue": "binance-usdm", "colour": "red"}, "unknown option"),
    ({"venue": "binance-usdm", "tz": "Europe/London"}, "UTC"),
    ({"venue": "binance-usdm", "file_type": "candles"}, "file_type"),
    ({"venue": "somewhere"}, "market"),
])
def test_bad_options(tmp_path: Path, options: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run_import("binance-vision", [DATA / "um" / "BTCUSDT-trades-2023-04-05.csv"], tmp_path, **options)


def test_renamed_file_needs_file_type_and_symbol(tmp_path: Path) -> None:
    renamed = tmp_path / "in" / "trades.csv"
    renamed.parent.mkdir()
    renamed.write_bytes((DATA / "um" / "BTCUSDT-trades-2023-04-05.csv").read_bytes())
    with pytest.raises(ConfigError, match="file_type"):
        run_import("binance-vision", [renamed], tmp_path / "a", venue="binance-usdm")
    with pytest.raises(ConfigError, match="--symbol"):
        run_import("binance-vision", [renamed], tmp_path / "a", venue="binance-usdm", file_type="trades")
    report = run_import("binance-vision", [renamed], tmp_path / "a", venue="binance-usdm-archive",
                        symbol="BTCUSDT", file_type="trades", market="um")
    assert report.lines_parsed == 12
    assert read(tmp_path / "a", "trades", "binance-usdm-archive", "BTCUSDT").height == 12


def test_wrong_market_is_caught_from_the_columns(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has 7 columns"):  # a USD-M trades file read as spot
        run_import("binance-vision", [DATA / "um" / "BTCUSDT-trades-2023-04-05.csv"], tmp_path, venue="binance-spot")
    with pytest.raises(DataError, match="column 4 of um trades is quote_qty, the header says base_qty"):
        run_import("binance-vision", [DATA / "cm" / "BTCUSD_PERP-trades-2023-04-05.csv"], tmp_path,
                   venue="binance-usdm")
    with pytest.raises(ConfigError, match="futures only"):
        run_import("binance-vision", [DATA / "um" / "BTCUSDT-bookTicker-2023-04-05.csv"], tmp_path,
                   venue="binance-spot")


def test_file_names() -> None:
    assert binance_vision.file_type_of("BTCUSDT-trades-2023-04-05.zip") == ("trades", None, "BTCUSDT")
    assert binance_vision.file_type_of("BTCUSDT-aggTrades-2023-04.zip") == ("aggTrades", None, "BTCUSDT")
    assert binance_vision.file_type_of("BTCUSD_PERP-indexPriceKlines-1mo-2023-04.zip") == (
        "indexPriceKlines", "1mo", "BTCUSD_PERP")
    assert binance_vision.file_type_of("BTCUSDT-fundingRate-2023-04.csv") == ("fundingRate", None, "BTCUSDT")
    assert binance_vision.file_type_of("BTCUSDT-7m-2023-04-05.csv") is None
    assert binance_vision.file_type_of("BTCUSDT-markPriceKlines-7m-2023-04-05.csv") is None
    assert binance_vision.file_type_of("prices.csv") is None


def test_monthly_klines_take_the_calendar_month(tmp_path: Path) -> None:
    # two 1mo klines (February 2023: 28 days; March: 31), times as Binance writes them
    feb, mar, apr = ns("2023-02-01") // MS, ns("2023-03-01") // MS, ns("2023-04-01") // MS
    path = tmp_path / "BTCUSDT-1mo-2023.csv"
    path.write_text(f"{feb},23125.1,25250.0,21351.0,23141.6,9112345.1,{mar - 1},1,1,1,1,0\n"
                    f"{mar},23141.6,29184.6,19549.1,28473.7,11954321.9,{apr - 1},1,1,1,1,0\n")
    report = run_import("binance-vision", [path], tmp_path / "tape", venue="binance-usdm", symbol="BTCUSDT",
                        file_type="1mo")
    assert report.lines_parsed == 2 and balanced(report)
    bars = read(tmp_path / "tape", "bars", "binance-usdm", "BTCUSDT")
    assert bars["interval_ns"].to_list() == [28 * 24 * HOUR_NS, 31 * 24 * HOUR_NS]
