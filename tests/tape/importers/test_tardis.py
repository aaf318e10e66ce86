"""Tardis importer: every real sample in ../shared/data/real/tardis, and hand fixtures for
derivative_ticker and liquidations that follow https://docs.tardis.dev/downloadable-csv-files
(tests/data/tardis/README.md says which values are real). Expected values come from the raw text.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from pathlib import Path

import polars as pl
import pytest

from emerald.errors import ConfigError, DataError
from emerald.tape.importers import binance_vision, run_import
from emerald.testing.tapes import iso_ns as ns
from emerald.testing.tapes import read_partitions as read

DATA = Path(__file__).resolve().parents[2] / "data" / "tardis"
US = 1_000
HOUR_NS = 3_600_000_000_000




def raw(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))


def balanced(report) -> bool:  # type: ignore[no-untyped-def]
    return (report.lines_in == report.lines_parsed + sum(report.lines_rejected.values())
            and report.write is not None and report.write.balanced)


# --------------------------------------------------------------------------------------------
# real samples


def test_real_trades(real_data: Path, tmp_path: Path) -> None:
    path = real_data / "tardis" / "trades.csv"
    rows = raw(path)
    n_lines = len(path.read_text().splitlines()) - 1  # minus the header
    report = run_import("tardis", [path], tmp_path)
    assert report.lines_in == n_lines == len(rows) == 9999
    assert report.lines_parsed == 9999 and balanced(report)
    t = read(tmp_path, "trades", "binance-futures", "BTCUSDT")
    assert t.height == 9999
    assert t["ts_event"].min() == int(rows[0]["timestamp"]) * US == ns("2020-02-22T00:00:02.111")
    assert t["ts_event"].max() == max(int(r["timestamp"]) for r in rows) * US
    assert t["ts_event"].max() == ns("2020-02-22T02:05:47.728")
    first = t.filter(pl.col("trade_id") == int(rows[0]["id"])).row(0, named=True)
    assert (first["price"], first["qty"], first["side"]) == (9682.0, 0.132, 1)
    assert first["ts_recv"] == int(rows[0]["local_timestamp"]) * US
    assert int((t["side"] == -1).sum()) == sum(r["side"] == "sell" for r in rows)
    assert t["qty"].sum() == pytest.approx(sum(float(r["amount"]) for r in rows), rel=1e-12)
    assert sorted(t["trade_id"].to_list()) == sorted(int(r["id"]) for r in rows)


def test_real_quotes(real_data: Path, tmp_path: Path) -> None:
    path = real_data / "tardis" / "quotes.csv"
    rows = raw(path)
    report = run_import("tardis", [path], tmp_path)
    assert report.lines_in == len(path.read_text().splitlines()) - 1 == len(rows) and balanced(report)
    q = read(tmp_path, "quotes", "binance-futures", "BTCUSDT")
    assert q.height == len(rows)
    assert q["ts_event"].min() == int(rows[0]["timestamp"]) * US
    assert q["ts_event"].max() == int(rows[-1]["timestamp"]) * US == ns("2020-02-22T00:03:47.061")
    r0 = q.sort("ts_event").row(0, named=True)  # 0.84,9682,9681.92,0.67
    assert (r0["ask_qty"], r0["ask_px"], r0["bid_px"], r0["bid_qty"]) == (0.84, 9682.0, 9681.92, 0.67)


@pytest.mark.parametrize("depth", [5, 25])
def test_real_book_snapshots(real_data: Path, tmp_path: Path, depth: int) -> None:
    path = real_data / "tardis" / f"binance-futures_book_snapshot_{depth}_BTCUSDT.csv"
    rows = raw(path)
    report = run_import("tardis", [path], tmp_path)
    assert report.lines_in == len(rows) == 10 and balanced(report)
    book = read(tmp_path, "book", "binance-futures", "BTCUSDT").sort("ts_event")
    assert book.schema["bid_px"] == pl.Array(pl.Float64, depth)
    assert book["ts_event"].to_list() == sorted(int(r["timestamp"]) * US for r in rows)
    b0 = book.row(0, named=True)
    assert list(b0["ask_px"]) == [float(rows[0][f"asks[{i}].price"]) for i in range(depth)]
    assert list(b0["bid_qty"]) == [float(rows[0][f"bids[{i}].amount"]) for i in range(depth)]
    assert b0["ts_recv"] == int(rows[0]["local_timestamp"]) * US


def test_real_deribit_incremental_book_in_usd(real_data: Path, tmp_path: Path) -> None:
    path = real_data / "tardis" / "deribit_incremental_book_L2_BTC-PERPETUAL.csv"
    rows = raw(path)
    report = run_import("tardis", [path], tmp_path)
    assert report.lines_in == len(rows) == 15 and balanced(report)
    d = read(tmp_path, "book_delta", "deribit", "BTC-PERPETUAL")
    assert d.height == 15
    assert d["ts_event"].to_list() == [int(r["timestamp"]) * US for r in rows]
    assert d["ts_recv"].to_list() == [int(r["local_timestamp"]) * US for r in rows]
    assert d["is_snapshot"].to_list() == [r["is_snapshot"] == "true" for r in rows]
    assert d["side"].to_list() == [1 if r["side"] == "bid" else -1 for r in rows]
    # Deribit inverse amounts are USD: base = USD / price (6421.5 ask of 18640 USD = 2.9027 BTC)
    assert d["qty"].to_list() == pytest.approx([float(r["amount"]) / float(r["price"]) for r in rows], rel=1e-12)
    assert (d["update_id"] == -1).all()
    assert any("quote currency" in n for n in report.notes)


def test_deltas_before_the_first_snapshot_are_kept_and_counted(real_data: Path, tmp_path: Path) -> None:
    lines = (real_data / "tardis" / "deribit_incremental_book_L2_BTC-PERPETUAL.csv").read_text().splitlines()
    early = "deribit,BTC-PERPETUAL,1585699200100000,1585699200200000,false,bid,6420,500"
    path = tmp_path / "in" / "deribit_incremental_book_L2_2020-04-01_BTC-PERPETUAL.csv"
    path.parent.mkdir()
    path.write_text("\n".join([lines[0], early, *lines[1:]]) + "\n")
    report = run_import("tardis", [path], tmp_path / "tape")
    assert report.lines_in == 16 and balanced(report)
    assert report.book == {"book_delta": {"rows_before_first_snapshot": 1}}
    assert read(tmp_path / "tape", "book_delta", "deribit", "BTC-PERPETUAL").height == 16


def test_real_bitmex_uuid_trades(real_data: Path, tmp_path: Path) -> None:
    path = real_data / "tardis" / "bitmex_trades_XBTUSD.csv"
    rows = raw(path)
    report = run_import("tardis", [path], tmp_path)
    assert report.lines_in == len(rows) == 10 and balanced(report)
    t = read(tmp_path, "trades", "bitmex", "XBTUSD")
    assert t.height == 10  # equal-looking trades keep their distinct UUIDs
    assert t["ts_event"].to_list() == [int(r["timestamp"]) * US for r in rows]
    assert t["ts_event"][-1] == ns("2020-03-01T00:00:03.276")
    expected = {int.from_bytes(hashlib.blake2b(r["id"].encode(), digest_size=8).digest(), "big") >> 1: r
                for r in rows}
    assert set(t["trade_id"].to_list()) == set(expected)
    for row in t.iter_rows(named=True):
        r = expected[row["trade_id"]]
        # XBTUSD: 1 contract = 1 USD, so base = contracts / price
        assert row["qty"] == pytest.approx(float(r["amount"]) / float(r["price"]), rel=1e-12)
        assert row["side"] == (1 if r["side"] == "buy" else -1)
    assert (t["trade_id"] >= 0).all()


def test_real_huobi_quotes_contracts(real_data: Path, tmp_path: Path) -> None:
    path = real_data / "tardis" / "huobi-dm-swap_quotes_BTC-USD.csv"
    rows = raw(path)
    report = run_import("tardis", [path], tmp_path)
    assert report.lines_in == len(rows) == 10 and balanced(report)
    q = read(tmp_path, "quotes", "huobi-dm-swap", "BTC-USD").sort("ts_event")
    r0 = rows[0]  # 5494,8629.3,8629.2,806: BTC-USD contracts are 100 USD
    assert q["ask_qty"][0] == pytest.approx(5494 * 100 / 8629.3, rel=1e-12)
    assert q["bid_qty"][0] == pytest.approx(float(r0["bid_amount"]) * 100 / float(r0["bid_price"]), rel=1e-12)
    assert q["ts_event"].to_list() == [int(r["timestamp"]) * US for r in rows]


def test_gzip_and_small_blocks_give_the_same_tape(real_data: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src = real_data / "tardis" / "trades.csv"
    run_import("tardis", [src], tmp_path / "a")
    gz = tmp_path / "binance-futures_trades_2020-02-22_BTCUSDT.csv.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    monkeypatch.setattr(binance_vision, "BLOCK_BYTES", 16 << 10)  # ~200 lines per block
    report = run_import("tardis", [gz], tmp_path / "b")
    assert report.lines_in == 9999 and balanced(report)
    assert read(tmp_path / "b", "trades", "binance-futures", "BTCUSDT").equals(
        read(tmp_path / "a", "trades", "binance-futures", "BTCUSDT"))


# --------------------------------------------------------------------------------------------
# hand fixtures: derivative_ticker, liquidations


def test_derivative_ticker_prices_open_interest_funding(tmp_path: Path) -> None:
    path = DATA / "binance-futures_derivative_ticker_2023-04-05_BTCUSDT.csv"
    rows = raw(path)
    report = run_import("tardis", [path], tmp_path)
    assert report.lines_in == len(rows) == 10 and report.lines_parsed == 10 and balanced(report)
    v, s = "binance-futures", "BTCUSDT"
    prices = read(tmp_path, "prices", v, s).sort("ts_event")
    assert prices.height == 10
    assert prices["mark"].to_list() == [float(r["mark_price"]) for r in rows]
    assert prices["index"].to_list() == [float(r["index_price"]) for r in rows]
    assert prices["spot_ref"].is_nan().all()
    oi = read(tmp_path, "open_interest", v, s).sort("ts_event")
    with_oi = [r for r in rows if r["open_interest"]]
    assert oi.height == len(with_oi) == 8
    assert oi["oi_qty"].to_list() == [float(r["open_interest"]) for r in with_oi]
    assert oi["oi_notional"].is_nan().all()
    assert "binance-futures:BTCUSDT: 2 derivative_ticker line(s) without open_interest (no row of that kind " \
           "for them)" in report.notes
    assert report.unhandled == {"derivative_ticker.last_price": sum(bool(r["last_price"]) for r in rows)}

    funding = read(tmp_path, "funding", v, s).sort("ts_event")
    published = funding.filter(~pl.col("is_settlement"))
    assert published.height == 10
    assert published["rate"].to_list() == [float(r["funding_rate"]) for r in rows]
    assert published["next_funding_ts"].to_list() == [int(r["funding_timestamp"]) * US for r in rows]
    assert (funding["interval_ns"] == 8 * HOUR_NS).all()
    # funding_timestamp moves from 00:00 to 08:00 once: one settlement at 00:00 with the last rate
    # published for it (the 00:00:00.010 message), 2.760e-05 as in Binance's own funding history
    settled = funding.filter(pl.col("is_settlement"))
    assert settled.height == 1
    assert settled.row(0, named=True) == {"ts_event": ns("2023-04-05T00:00"), "rate": 2.76e-05,
                                          "interval_ns": 8 * HOUR_NS, "next_funding_ts": ns("2023-04-05T08:00"),
                                          "is_settlement": True}


def test_derivative_ticker_settlement_across_blocks_and_files(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lines = (DATA / "binance-futures_derivative_ticker_2023-04-05_BTCUSDT.csv").read_text().splitlines()
    header, body = lines[0], lines[1:]
    first = tmp_path / "in" / "binance-futures_derivative_ticker_2023-04-04_BTCUSDT.csv"
    second = tmp_path / "in" / "binance-futures_derivative_ticker_2023-04-05_BTCUSDT.csv"
    first.parent.mkdir()
    first.write_text("\n".join([header, *body[:6]]) + "\n")   # ends on the 00:00:00.010 line
    second.write_text("\n".join([header, *body[6:]]) + "\n")  # starts with funding_timestamp 08:00
    monkeypatch.setattr(binance_vision, "BLOCK_BYTES", 256)  # about two lines per block
    report = run_import("tardis", [first, second], tmp_path / "tape")
    assert report.lines_in == 10 and balanced(report)
    settled = read(tmp_path / "tape", "funding", "binance-futures", "BTCUSDT").filter(pl.col("is_settlement"))
    assert settled["ts_event"].to_list() == [ns("2023-04-05T00:00")]
    assert settled["rate"].to_list() == [2.76e-05]


def test_derivative_ticker_empty_fields(tmp_path: Path) -> None:
    path = tmp_path / "bitmex_derivative_ticker_2020-03-01_XBTUSD.csv"
    path.write_text(
        "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,predicted_funding_rate,"
        "open_interest,last_price,index_price,mark_price\n"
        "bitmex,XBTUSD,1583020800500000,1583020800600000,1583049600000000,,,,,,\n"
        "bitmex,XBTUSD,1583020801500000,1583020801600000,1583049600000000,0.0001,0.000089,1001500000,8531.5,"
        "8530.11,8530.45\n")
    report = run_import("tardis", [path], tmp_path / "tape")
    assert report.lines_in == report.lines_parsed == 2 and balanced(report)
    notes = "\n".join(report.notes)
    for what in ("funding_rate", "mark_price and index_price", "open_interest"):
        assert f"1 derivative_ticker line(s) without {what}" in notes
    assert report.unhandled == {"derivative_ticker.last_price": 1, "derivative_ticker.predicted_funding_rate": 1}
    oi = read(tmp_path / "tape", "open_interest", "bitmex", "XBTUSD")
    # XBTUSD open interest counts 1-USD contracts: notional exact, base at the mark price
    assert oi["oi_notional"].to_list() == [1001500000.0]
    assert oi["oi_qty"].to_list() == pytest.approx([1001500000 / 8530.45], rel=1e-12)
    assert read(tmp_path / "tape", "funding", "bitmex", "XBTUSD").height == 1


def test_liquidations_multi_symbol(tmp_path: Path) -> None:
    path = DATA / "binance-futures_liquidations_2023-04-05_PERPETUALS.csv"
    rows = raw(path)
    report = run_import("tardis", [path], tmp_path)
    assert report.lines_in == len(rows) == 4 and balanced(report)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        mine = [r for r in rows if r["symbol"] == symbol]
        liq = read(tmp_path, "liquidations", "binance-futures", symbol).sort("ts_event")
        assert liq["ts_event"].to_list() == [int(r["timestamp"]) * US for r in mine]
        assert liq["side"].to_list() == [-1 if r["side"] == "sell" else 1 for r in mine]  # sell = long liquidated
        assert liq["price"].to_list() == [float(r["price"]) for r in mine]
    assert any("ETHUSDT is not in the instrument registry" in n for n in report.notes)
    with pytest.raises(ConfigError, match="several symbols"):
        run_import("tardis", [path], tmp_path / "b", symbol="BTCUSDT")


def test_venue_and_symbol_overrides(real_data: Path, tmp_path: Path) -> None:
    report = run_import("tardis", [real_data / "tardis" / "bitmex_trades_XBTUSD.csv"], tmp_path,
                        venue="bitmex-archive", symbol="XBT-PERP")
    assert report.lines_parsed == 10
    # the units still come from the Tardis exchange and symbol (XBTUSD contracts)
    assert read(tmp_path, "trades", "bitmex-archive", "XBT-PERP")["qty"].max() < 1.0


# --------------------------------------------------------------------------------------------
# rejected lines and detection


def test_unknown_side_and_bad_values_are_rejected(real_data: Path, tmp_path: Path) -> None:
    lines = (real_data / "tardis" / "trades.csv").read_text().splitlines()[:11]
    lines[2] = lines[2].replace(",buy,", ",unknown,")   # never guessed
    lines[4] = lines[4].replace(",9682.19,", ",9682.1x,")  # price
    lines[6] = lines[6] + ",extra"                      # field count
    path = tmp_path / "in" / "binance-futures_trades_2020-02-22_BTCUSDT.csv"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    report = run_import("tardis", [path], tmp_path / "tape")
    assert report.lines_rejected == {"unknown_side": 1, "unparseable.price": 1, "field_count": 1}
    assert report.lines_in == 10 and report.lines_parsed == 7 and balanced(report)
    assert read(tmp_path / "tape", "trades", "binance-futures", "BTCUSDT").height == 7
    with pytest.raises(DataError, match=r"unknown_side.*line 3"):
        run_import("tardis", [path], tmp_path / "strict", strict=True)


def test_trades_and_liquidations_need_the_name_or_the_option(real_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "in" / "btc.csv"
    path.parent.mkdir()
    path.write_bytes((DATA / "binance-futures_liquidations_2023-04-05_PERPETUALS.csv").read_bytes())
    with pytest.raises(ConfigError, match="data_type"):
        run_import("tardis", [path], tmp_path / "a")
    report = run_import("tardis", [path], tmp_path / "a", data_type="liquidations")
    assert report.write is not None and report.write.by_kind()["liquidations"]["rows_written"] == 4
    with pytest.raises(DataError, match="says quotes but the header is that of trades"):
        run_import("tardis", [path], tmp_path / "b", data_type="quotes")


def test_not_a_tardis_file(real_data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a Tardis CSV header"):
        run_import("tardis", [real_data / "bars" / "ftx_btc-perp_1m_2022-01.csv"], tmp_path)


@pytest.mark.parametrize("options, match", [
    ({"colour": "red"}, "unknown option"),
    ({"tz": "Europe/London"}, "UTC"),
    ({"data_type": "candles"}, "data_type"),
    ({"funding_interval_hours": 0}, "funding_interval_hours"),
])
def test_bad_options(real_data: Path, tmp_path: Path, options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run_import("tardis", [real_data / "tardis" / "trades.csv"], tmp_path, **options)
