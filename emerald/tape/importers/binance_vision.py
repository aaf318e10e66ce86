"""Binance Vision bulk files (https://data.binance.vision): CSV, or a ZIP holding one CSV.

The file type comes from the Binance file name (``file_type=`` overrides it with the name's middle
part: ``trades``, ``aggTrades``, ``1m`` or ``klines-1m``, ``markPriceKlines-1h`` ...); the symbol
comes from the name unless ``--symbol`` is given. ``--venue`` is required and tells the market,
whose column layouts and units differ: ``binance-spot``, ``binance-usdm``, ``binance-coinm`` (for
another venue name, give ``market=spot|um|cm``). Futures files gained a header row in 2022; a file
has one when its first field is not a number (for metrics and bookDepth, whose first column is a
date-time string: when it is the column's name). Header names are checked against Binance's (a
mismatch is noted; a COIN-M ``base_qty`` header on a USD-M trades file, or the reverse, is an error).

| file name | columns (positional) | tape kind |
|---|---|---|
| ``BTCUSDT-trades-2023-04-05.zip`` | spot ``id, price, qty, quoteQty, time, isBuyerMaker, isBestMatch``; USD-M ``id, price, qty, quote_qty, time, is_buyer_maker``; COIN-M ``..., base_qty, ...`` | trades |
| ``BTCUSDT-aggTrades-2023-04-05.zip`` | ``agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time, is_buyer_maker`` (+ ``is_best_match`` on spot) | trades, ``trade_id`` = aggregate id |
| ``BTCUSDT-bookTicker-2023-04-05.zip`` | ``update_id, best_bid_price, best_bid_qty, best_ask_price, best_ask_qty, transaction_time, event_time`` | quotes |
| ``BTCUSDT-1m-2021-11-27.zip`` | ``open_time, open, high, low, close, volume, close_time, quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore`` (COIN-M: ``base_volume`` and ``taker_buy_base_volume`` at positions 7 and 10) | bars |
| ``BTCUSDT-markPriceKlines-1m-...`` / ``indexPriceKlines`` | kline columns | prices (mark / index) |
| ``BTCUSDT-fundingRate-2023-04.zip`` | ``calc_time, funding_interval_hours, last_funding_rate`` | funding (settlements) |
| ``BTCUSDT-metrics-2023-04-05.zip`` | ``create_time, symbol, sum_open_interest, sum_open_interest_value, count_toptrader_long_short_ratio, sum_toptrader_long_short_ratio, count_long_short_ratio, sum_taker_long_short_vol_ratio`` | open_interest |
| ``BTCUSDT-bookDepth-...``, ``premiumIndexKlines`` | | not mapped: counted in ``report.unhandled`` |

Mapping decisions (each is also written to ``report.notes`` when it applies):

- Times are epoch integers: milliseconds, except spot files from 2025-01-01 on, which Binance
  writes in microseconds. The unit is detected per file from the magnitude
  (:func:`~emerald.tape.timeutil.guess_int_unit`) and noted. ``metrics.create_time`` is a naive
  ``YYYY-MM-DD HH:MM:SS`` string that Binance publishes in UTC; it is read as UTC.
- The files carry no receive clock: ``ts_recv = ts_event`` (bookTicker ``event_time``, the venue's
  send time, is not kept).
- ``isBuyerMaker`` true means the seller was the aggressor: side -1.
- Klines: ``ts_event`` = open time, the interval comes from the file name and every row is checked
  against ``close_time - open_time + 1`` time unit (a mismatch rejects the line,
  ``interval_mismatch``). ``volume`` and ``buy_volume`` are base units: ``volume`` and
  ``taker_buy_volume`` on spot and USD-M; on COIN-M ``volume`` counts contracts, so the base
  columns (position 7, base asset volume, and 10, taker buy base volume) are used instead.
  ``sell_volume = volume - buy_volume``.
- Mark and index price klines become ``prices`` rows holding the kline **close**, stamped at the
  kline's end (``close_time + 1`` unit): the close is known only then, so stamping it at the open
  would leak the future. Mark and index files give separate rows (the other column NaN).
  Premium index klines have no tape column: counted in ``unhandled``.
- fundingRate rows are settlements: ``rate = last_funding_rate`` at ``calc_time``,
  ``interval_ns`` from ``funding_interval_hours``, ``next_funding_ts = calc_time + interval``.
- metrics: ``oi_qty = sum_open_interest`` (base), ``oi_notional = sum_open_interest_value``
  (quote). The four long/short ratios have no tape column: their non-empty values are counted in
  ``unhandled`` under ``metrics.<column>``. On COIN-M ``sum_open_interest`` counts contracts:
  ``oi_notional = contracts x contract_size`` (exact, quote currency) and ``oi_qty`` is NaN.
- bookDepth holds cumulative depth within +-1..5 % of the mid (``percentage, depth, notional``):
  no level prices, so it cannot become ``book`` rows without inventing prices; counted in
  ``unhandled``.
- COIN-M quantities in contracts (aggTrades ``quantity``, bookTicker sizes) are converted to base
  with ``qty = contracts x contract_size / price`` from the instrument registry; for an instrument
  the registry lacks they are kept as given and a note says so. COIN-M trades use ``base_qty``.

Lines that do not parse (wrong field count, a field that is not a number) are rejected with their
line number and kept under ``_quarantine/_lines``; ``lines_in`` counts data lines (a header row is
not one).

Examples
--------
>>> from emerald.tape.importers.binance_vision import file_type_of
>>> file_type_of("BTCUSDT-markPriceKlines-1h-2023-04-05.zip")
('markPriceKlines', '1h', 'BTCUSDT')
>>> file_type_of("ADABTC-1m-2021-11-27.csv")
('klines', '1m', 'ADABTC')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from emerald.errors import ConfigError, DataError
from emerald.model.enums import InstrumentKind
from emerald.model.instruments import InstrumentSpec, get_instrument
from emerald.tape.importers.base import ImportReport, LineRejects, add_note, count_unhandled
from emerald.tape.importers.csvblocks import Col, csv_lines, open_source, parse_columns, reject_rows
from emerald.tape.timeutil import NS, check_zone, guess_int_unit
from emerald.tape.writer import TapeWriter

FORMAT = "binance-vision"
BLOCK_BYTES = 32 << 20  # ~400k lines of trades per block
HOUR_NS = 3_600_000_000_000

# --------------------------------------------------------------------------------------------
# Binance Vision file types

_VENUE_MARKETS = {"binance-spot": "spot", "binance-usdm": "um", "binance-coinm": "cm"}
MARKETS = ("spot", "um", "cm")
_INTERVAL_NS = {
    "1s": 1_000_000_000, "1m": 60_000_000_000, "3m": 180_000_000_000, "5m": 300_000_000_000,
    "15m": 900_000_000_000, "30m": 1_800_000_000_000, "1h": HOUR_NS, "2h": 2 * HOUR_NS, "4h": 4 * HOUR_NS,
    "6h": 6 * HOUR_NS, "8h": 8 * HOUR_NS, "12h": 12 * HOUR_NS, "1d": 24 * HOUR_NS, "3d": 72 * HOUR_NS,
    "1w": 168 * HOUR_NS,
}
MONTH_INTERVAL = "1mo"  # calendar month: its length is taken per bar
_KLINE_TYPES = ("klines", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines")
_PLAIN_TYPES = ("trades", "aggTrades", "bookTicker", "bookDepth", "fundingRate", "metrics")
_FUTURES_ONLY = ("bookTicker", "bookDepth", "fundingRate", "metrics", "markPriceKlines", "indexPriceKlines",
                 "premiumIndexKlines")
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9_]+)-(?P<body>[A-Za-z0-9-]+?)-(?P<date>\d{4}-\d{2}(?:-\d{2})?)$")

_KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
                  "taker_buy_volume", "taker_buy_quote_volume", "ignore")
_METRICS_RATIOS = ("count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio", "count_long_short_ratio",
                   "sum_taker_long_short_vol_ratio")
_COLUMNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("trades", "spot"): ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
    ("trades", "um"): ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker"),
    ("trades", "cm"): ("id", "price", "qty", "base_qty", "time", "is_buyer_maker"),
    ("aggTrades", "spot"): ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
                            "is_buyer_maker", "is_best_match"),
    ("aggTrades", "futures"): ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
                               "transact_time", "is_buyer_maker"),
    ("bookTicker", "futures"): ("update_id", "best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty",
                                "transaction_time", "event_time"),
    ("bookDepth", "futures"): ("timestamp", "percentage", "depth", "notional"),
    ("fundingRate", "futures"): ("calc_time", "funding_interval_hours", "last_funding_rate"),
    ("metrics", "futures"): ("create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
                             *_METRICS_RATIOS),
    ("klines", "cm"): ("open_time", "open", "high", "low", "close", "volume", "close_time", "base_volume", "count",
                       "taker_buy_volume", "taker_buy_base_volume", "ignore"),
    **{(t, "any"): _KLINE_COLUMNS for t in _KLINE_TYPES},
}
# the columns each file type reads, with their types; every other column is left as text
_PARSED: dict[str, dict[str, str]] = {
    "trades": {"id": "int", "price": "float", "qty": "float", "base_qty": "float", "time": "int",
               "is_buyer_maker": "bool"},
    "aggTrades": {"agg_trade_id": "int", "price": "float", "quantity": "float", "transact_time": "int",
                  "is_buyer_maker": "bool"},
    "bookTicker": {"best_bid_price": "float", "best_bid_qty": "float", "best_ask_price": "float",
                   "best_ask_qty": "float", "transaction_time": "int"},
    "fundingRate": {"calc_time": "int", "funding_interval_hours": "int", "last_funding_rate": "float"},
    "metrics": {"create_time": "datetime", "sum_open_interest": "float",
                "sum_open_interest_value": "float", **{r: "str" for r in _METRICS_RATIOS}},
    "klines": {"open_time": "int", "open": "float", "high": "float", "low": "float", "close": "float",
               "volume": "float", "close_time": "int", "count": "int", "taker_buy_volume": "float",
               "base_volume": "float", "taker_buy_base_volume": "float"},
    **{t: {"open_time": "int", "close": "float", "close_time": "int"} for t in ("markPriceKlines",
                                                                              "indexPriceKlines")},
}
_OPTIONAL = frozenset(_METRICS_RATIOS)  # not mapped, only counted: never a reason to reject a line
_TIME_COLUMN = {"trades": "time", "aggTrades": "transact_time", "bookTicker": "transaction_time",
                "fundingRate": "calc_time", **{t: "open_time" for t in _KLINE_TYPES}}


def _parse_body(body: str) -> tuple[str, str | None] | None:
    """``trades`` -> (trades, None); ``1m`` / ``klines-1m`` -> (klines, 1m); ``markPriceKlines-1h`` -> ..."""
    if body in _PLAIN_TYPES:
        return body, None
    head, _, interval = body.rpartition("-")
    if interval not in _INTERVAL_NS and interval != MONTH_INTERVAL:
        return None
    if not head:
        return "klines", interval
    return (head, interval) if head in _KLINE_TYPES else None


def file_type_of(name: str) -> tuple[str, str | None, str] | None:
    """``(file type, kline interval or None, symbol)`` from a Binance Vision file name, or None."""
    stem = name
    for suffix in (".zip", ".csv"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    m = _NAME.match(stem)
    if m is None:
        return None
    parsed = _parse_body(m["body"])
    return None if parsed is None else (parsed[0], parsed[1], m["symbol"])


@dataclass
class _File:
    path: Path
    source: str
    file_type: str
    interval: str | None
    venue: str
    symbol: str
    market: str
    spec: InstrumentSpec | None
    unit: str | None = None


def _layout(file_type: str, market: str, source: str) -> tuple[str, ...]:
    if file_type in _FUTURES_ONLY and market == "spot":
        raise ConfigError(f"{file_type} files exist for futures only, but the market is spot (from --venue); "
                          f"file {source}")
    for key in ((file_type, market), (file_type, "futures"), (file_type, "any")):
        if key in _COLUMNS:
            return _COLUMNS[key]
    raise AssertionError(f"no column layout for {file_type}/{market}")


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "")


def _is_header(file_type: str, first_field: str, first_name: str) -> bool:
    if file_type in ("metrics", "bookDepth"):  # data lines start with 'YYYY-MM-DD HH:MM:SS'
        return _norm(first_field) == _norm(first_name)
    try:
        float(first_field)
    except ValueError:
        return True
    return False


def _check_first_line(f: _File, fields: list[str], names: tuple[str, ...], is_header: bool,
                      report: ImportReport) -> None:
    """The first line must have the layout's field count; a header must name the market's columns."""
    what = "header" if is_header else "first line"
    if len(fields) != len(names):
        raise DataError(f"{f.file_type} file for market {f.market} has {len(names)} columns {list(names)}, its "
                        f"{what} has {len(fields)}; check --venue/market= and file_type=", path=f.source,
                        field="columns", value=",".join(fields)[:200])
    if not is_header:
        return
    if f.file_type == "trades" and f.market != "spot" and _norm(fields[3]) != _norm(names[3]):
        # USD-M and COIN-M trades differ only here: quote_qty vs base_qty
        raise DataError(f"column 4 of {f.market} trades is {names[3]}, the header says {fields[3]}; check --venue",
                        path=f.source, field="header", value=",".join(fields)[:200])
    differ = [f"{got} (expected {want})" for got, want in zip(fields, names, strict=True) if _norm(got) != _norm(want)]
    if differ:
        add_note(report, f"{f.path.name}: header names differ from Binance's documented columns: "
                         f"{', '.join(differ)}; columns are read by position")


# --------------------------------------------------------------------------------------------
# row mappings: parsed frame -> tape table


def _ns(f: _File, values: np.ndarray) -> np.ndarray:
    assert f.unit is not None
    return np.asarray(values, dtype=np.int64) * NS[f.unit]


def _contracts_to_base(f: _File, report: ImportReport, qty: np.ndarray, price: np.ndarray) -> np.ndarray:
    """COIN-M sizes count contracts: base = contracts x contract_size / price (kept when unknown)."""
    if f.market != "cm":
        return qty
    if f.spec is None or f.spec.kind != InstrumentKind.INVERSE_PERP:
        add_note(report, f"{f.venue}:{f.symbol} is not an inverse perp in the instrument registry: COIN-M sizes "
                         "are kept in contracts, as given")
        return qty
    add_note(report, f"{f.venue}:{f.symbol}: COIN-M sizes converted from contracts to base units "
                     f"(x {f.spec.contract_size:g} / price)")
    with np.errstate(divide="ignore", invalid="ignore"):
        return qty * f.spec.contract_size / price


def _side(is_buyer_maker: pl.Series) -> np.ndarray:
    # buyer is the maker -> the seller hit the bid -> seller aggressor
    return np.where(is_buyer_maker.to_numpy(), -1, 1).astype(np.int8)


def _map_trades(f: _File, df: pl.DataFrame, report: ImportReport) -> dict[str, np.ndarray]:
    """Trades and aggTrades.

    ``53425,27000.1,0.010,270.001,1680652800123,true`` (USD-M trades: id, price, qty, quote_qty,
    time, is_buyer_maker) -> ts_event 1680652800123 ms, side -1.
    """
    is_agg = f.file_type == "aggTrades"
    ts = _ns(f, df["transact_time" if is_agg else "time"].to_numpy())
    price = df["price"].to_numpy()
    if is_agg:
        qty = _contracts_to_base(f, report, df["quantity"].to_numpy(), price)
    else:
        qty = df["base_qty" if f.market == "cm" else "qty"].to_numpy()
    return {"ts_event": ts, "ts_recv": ts, "price": price, "qty": qty, "side": _side(df["is_buyer_maker"]),
            "trade_id": df["agg_trade_id" if is_agg else "id"].to_numpy()}


def _map_book_ticker(f: _File, df: pl.DataFrame, report: ImportReport) -> dict[str, np.ndarray]:
    """``1234,27000.1,1.5,27000.2,0.8,1680652800001,1680652800005`` -> quotes at transaction_time."""
    ts = _ns(f, df["transaction_time"].to_numpy())
    bid_px, ask_px = df["best_bid_price"].to_numpy(), df["best_ask_price"].to_numpy()
    return {"ts_event": ts, "ts_recv": ts, "bid_px": bid_px,
            "bid_qty": _contracts_to_base(f, report, df["best_bid_qty"].to_numpy(), bid_px),
            "ask_px": ask_px, "ask_qty": _contracts_to_base(f, report, df["best_ask_qty"].to_numpy(), ask_px)}


def _kline_lengths(f: _File, open_ns: np.ndarray) -> np.ndarray:
    if f.interval == MONTH_INTERVAL:
        month_start = open_ns.astype("datetime64[ns]").astype("datetime64[M]")
        return ((month_start + 1).astype("datetime64[ns]").astype(np.int64) - open_ns).astype(np.int64)
    assert f.interval is not None
    return np.full(open_ns.shape, _INTERVAL_NS[f.interval], dtype=np.int64)


def _check_intervals(f: _File, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    """Keep klines whose ``close_time - open_time + 1`` unit equals the interval of the file name."""
    open_ns = _ns(f, df["open_time"].to_numpy())
    length = _kline_lengths(f, open_ns)
    assert f.unit is not None
    ok = _ns(f, df["close_time"].to_numpy()) + NS[f.unit] - open_ns == length
    mask = pl.Series(ok)
    bad = df.filter(~mask).select("line_no", "line").with_columns(pl.lit("interval_mismatch.close_time")
                                                                  .alias("reason"))
    return df.filter(mask), bad, length[ok]


def _map_bars(f: _File, df: pl.DataFrame, length: np.ndarray) -> dict[str, np.ndarray]:
    """``1637971200000,0.00002853,0.00002854,0.00002851,0.00002854,36304.2,1637971259999,1.03547608,79,
    19523.0,0.55694227,0`` -> bar at 2021-11-27T00:00Z, 1 min, volume 36304.2, buy 19523.0, 79 trades.
    """
    if f.market == "cm":  # volume and taker_buy_volume count contracts; positions 7 and 10 are base
        volume, buy = df["base_volume"].to_numpy(), df["taker_buy_base_volume"].to_numpy()
    else:
        volume, buy = df["volume"].to_numpy(), df["taker_buy_volume"].to_numpy()
    return {"ts_event": _ns(f, df["open_time"].to_numpy()), "interval_ns": length,
            "open": df["open"].to_numpy(), "high": df["high"].to_numpy(), "low": df["low"].to_numpy(),
            "close": df["close"].to_numpy(), "volume": volume, "buy_volume": buy, "sell_volume": volume - buy,
            "trades": df["count"].to_numpy()}


def _map_price_klines(f: _File, df: pl.DataFrame, length: np.ndarray) -> dict[str, np.ndarray]:
    """Mark / index klines -> the close, stamped when the kline closes (its value is unknown before)."""
    close_at = _ns(f, df["open_time"].to_numpy()) + length
    close = df["close"].to_numpy()
    nan = np.full(close.shape, np.nan)
    is_mark = f.file_type == "markPriceKlines"
    return {"ts_event": close_at, "mark": close if is_mark else nan, "index": nan if is_mark else close,
            "spot_ref": nan}


def _map_funding(f: _File, df: pl.DataFrame) -> dict[str, np.ndarray]:
    """``1680652800000,8,0.00002760`` -> settlement of 2.76e-5 at 2023-04-05T00:00Z, next at 08:00Z."""
    ts = _ns(f, df["calc_time"].to_numpy())
    interval = df["funding_interval_hours"].to_numpy().astype(np.int64) * HOUR_NS
    return {"ts_event": ts, "rate": df["last_funding_rate"].to_numpy(), "interval_ns": interval,
            "next_funding_ts": ts + interval, "is_settlement": np.ones(ts.shape, dtype=bool)}


def _map_metrics(f: _File, df: pl.DataFrame, report: ImportReport) -> dict[str, np.ndarray]:
    """``2023-04-05 00:05:00,BTCUSDT,79421.0,2.2e9,1.2,1.3,1.1,0.9`` -> open interest at 00:05:00 UTC."""
    for ratio in _METRICS_RATIOS:
        count_unhandled(report, f"metrics.{ratio}", int(df[ratio].is_not_null().sum()))
    add_note(report, "metrics: the four long/short ratios have no tape column; their non-empty values are "
                     "counted in unhandled")
    oi = df["sum_open_interest"].to_numpy()
    if f.market == "cm":
        oi_qty = np.full(oi.shape, np.nan)
        if f.spec is not None and f.spec.kind == InstrumentKind.INVERSE_PERP:
            notional = oi * f.spec.contract_size
        else:
            notional = np.full(oi.shape, np.nan)
            add_note(report, f"{f.venue}:{f.symbol}: COIN-M open interest counts contracts and the instrument "
                             "registry has no contract size: open_interest rows are empty")
        add_note(report, "COIN-M metrics: oi_notional = contracts x contract_size, oi_qty NaN "
                         "(sum_open_interest_value is not imported)")
    else:
        oi_qty, notional = oi, df["sum_open_interest_value"].to_numpy()
    return {"ts_event": df["create_time"].to_numpy(), "oi_qty": oi_qty, "oi_notional": notional}


# --------------------------------------------------------------------------------------------
# driver


def _import_file(f: _File, writer: TapeWriter, report: ImportReport, rejects: LineRejects) -> None:
    names = _layout(f.file_type, f.market, f.source)
    parsed_types = _PARSED.get(f.file_type, {})
    cols = [Col(n, i, parsed_types[n], required=n not in _OPTIONAL) for i, n in enumerate(names)
            if n in parsed_types]
    header: bool | None = None
    with open_source(f.path) as stream:
        for lines in csv_lines(stream, path=f.source):
            if header is None:
                first = lines["line"][0].split(",")
                header = _is_header(f.file_type, first[0], names[0])
                _check_first_line(f, first, names, header, report)
                if header:
                    lines = lines.slice(1)
                add_note(report, f"{f.path.name}: {f.file_type}"
                                 + (f" {f.interval}" if f.interval else "")
                                 + (", header row" if header else ", no header row"))
            report.lines_in += lines.height
            if f.file_type in ("bookDepth", "premiumIndexKlines"):
                report.lines_parsed += lines.height
                count_unhandled(report, f.file_type, lines.height)
                continue
            good, bad = parse_columns(lines, len(names), cols)
            if good.height:
                if f.unit is None and f.file_type in _TIME_COLUMN:
                    f.unit = guess_int_unit(good[_TIME_COLUMN[f.file_type]].to_numpy())
                    add_note(report, f"{f.path.name}: times in {f.unit}")
                kind, data, more_bad = _map_block(f, good, report)
                bad = pl.concat([bad, more_bad]).sort("line_no")
                report.lines_parsed += len(data["ts_event"])
                writer.write(kind, f.venue, f.symbol, data, source=f.source)
            reject_rows(rejects, bad, f.source)
    if f.file_type == "bookDepth":
        add_note(report, "bookDepth (cumulative depth within +-1..5 % of the mid) has no level prices: not "
                         "mapped to book, counted in unhandled")
    if f.file_type == "premiumIndexKlines":
        add_note(report, "premiumIndexKlines: the premium index has no tape column; counted in unhandled")


def _map_block(f: _File, good: pl.DataFrame, report: ImportReport) -> tuple[str, dict[str, np.ndarray], pl.DataFrame]:
    """``(tape kind, table, lines rejected by a row check)`` for one block of parsed lines."""
    none = good.clear().select("line_no", "line").with_columns(pl.lit(None, pl.String).alias("reason"))
    if f.file_type in ("trades", "aggTrades"):
        return "trades", _map_trades(f, good, report), none
    if f.file_type == "bookTicker":
        return "quotes", _map_book_ticker(f, good, report), none
    if f.file_type == "fundingRate":
        return "funding", _map_funding(f, good), none
    if f.file_type == "metrics":
        return "open_interest", _map_metrics(f, good, report), none
    kept, bad, length = _check_intervals(f, good)
    if f.file_type == "klines":
        return "bars", _map_bars(f, kept, length), bad
    add_note(report, "mark/index price klines: prices row = the kline close, stamped at the kline close "
                     "(close_time + 1 unit), never at its open")
    return "prices", _map_price_klines(f, kept, length), bad


def run(paths: list[Path], writer: TapeWriter, *, venue: str | None = None, symbol: str | None = None,
        tz: str | None = None, strict: bool = False, **options: Any) -> ImportReport:
    """Import Binance Vision CSV/ZIP files into ``writer`` (not committed).

    Parameters
    ----------
    paths
        Files named as Binance names them (``BTCUSDT-trades-2023-04-05.zip``), or any name with
        ``file_type=`` and ``--symbol``.
    venue
        Required: ``binance-spot``, ``binance-usdm`` or ``binance-coinm`` (any other name with
        ``market=spot|um|cm``).
    symbol
        Overrides the symbol of the file names.
    tz
        Binance Vision times are UTC; only ``UTC`` (or nothing) is accepted.
    strict
        Raise on the first line that does not parse instead of rejecting it.
    options
        ``file_type`` (the middle part of a Binance file name: ``trades``, ``aggTrades``, ``1m``,
        ``klines-1m``, ``markPriceKlines-1h``, ``fundingRate``, ...) and ``market``.

    Raises
    ------
    ConfigError
        Missing ``--venue``, an undetectable file type or symbol, an unknown option.
    DataError
        A file whose columns do not match its type and market.
    """
    unknown = sorted(set(options) - {"file_type", "market"})
    if unknown:
        raise ConfigError(f"unknown option for format {FORMAT}, was {unknown[0]!r}; known: file_type, market")
    if tz is not None and check_zone(tz) != "UTC":
        raise ConfigError(f"Binance Vision times are UTC; --tz must be UTC or omitted, was {tz!r}")
    if venue is None:
        raise ConfigError("format binance-vision needs --venue (binance-spot, binance-usdm or binance-coinm)")
    market = options.get("market") or _VENUE_MARKETS.get(venue)
    if market not in MARKETS:
        raise ConfigError(f"cannot tell the Binance market of venue {venue!r}: use binance-spot, binance-usdm or "
                          f"binance-coinm, or give market=spot|um|cm (was {options.get('market')!r})")
    forced = options.get("file_type")
    forced_type = _parse_body(forced) if forced is not None else None
    if forced is not None and forced_type is None:
        raise ConfigError(f"file_type must be one of {', '.join(_PLAIN_TYPES)}, an interval (1m) or "
                          f"<kline type>-<interval> (markPriceKlines-1h), was {forced!r}")
    report = ImportReport(format=FORMAT)
    rejects = LineRejects(report, strict=strict)
    for path in paths:
        detected = file_type_of(path.name)
        file_type, interval = forced_type or (detected[:2] if detected else (None, None))
        if file_type is None:
            raise ConfigError(f"cannot tell the Binance Vision file type from the name {path.name!r}; give "
                              "file_type= (trades, aggTrades, 1m, markPriceKlines-1h, ...)")
        sym = symbol or (detected[2] if detected else None)
        if sym is None:
            raise ConfigError(f"cannot tell the symbol from the name {path.name!r}; give --symbol")
        try:
            spec: InstrumentSpec | None = get_instrument(venue, sym)
        except ConfigError:
            spec = None
        f = _File(path=path, source=str(path), file_type=file_type, interval=interval, venue=venue, symbol=sym,
                  market=market, spec=spec)
        _import_file(f, writer, report, rejects)
    rejects.flush(writer)
    return report
