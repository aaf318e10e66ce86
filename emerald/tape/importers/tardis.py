"""Tardis.dev downloadable CSV files (https://docs.tardis.dev/downloadable-csv-files), plain or gzip.

Every file starts with ``exchange,symbol,timestamp,local_timestamp`` (times in µs since the epoch,
UTC; ``timestamp`` is the exchange's, ``local_timestamp`` the arrival time). The data type comes
from the file name (``deribit_trades_2019-11-01_BTC-PERPETUAL.csv.gz``) and the header columns,
which must agree; ``data_type=`` overrides the name. ``trades`` and ``liquidations`` share their
columns, so one of them needs the name or the option. The venue is the ``exchange`` column and the
symbol the ``symbol`` column unless ``--venue`` / ``--symbol`` override them; a file holding
several symbols is written as one group per ``(exchange, symbol)``.

| data type | columns after the common four | tape kind |
|---|---|---|
| trades | ``id,side,price,amount`` | trades |
| quotes, book_ticker | ``ask_amount,ask_price,bid_price,bid_amount`` | quotes |
| book_snapshot_5 / _25 | ``asks[0].price,asks[0].amount,bids[0].price,bids[0].amount,...`` | book (depth 5 / 25) |
| incremental_book_L2 | ``is_snapshot,side,price,amount`` | book_delta |
| derivative_ticker | ``funding_timestamp,funding_rate,predicted_funding_rate,open_interest,last_price,index_price,mark_price`` | prices, open_interest, funding |
| liquidations | ``id,side,price,amount`` | liquidations |

Mapping decisions:

- ``ts_event`` = ``timestamp``, ``ts_recv`` = ``local_timestamp``.
- trades ``side`` is the aggressor: ``buy`` +1, ``sell`` -1; ``unknown`` is never guessed: the
  line is rejected (``unknown_side``). A numeric ``id`` is the trade id; any other (BitMEX UUIDs) is
  mapped to the top 63 bits of its 8-byte blake2b digest (stable across runs). A trade without an
  id gets the digest of its line text plus the number of identical lines before it in its block.
- liquidations ``side`` is the side of the liquidation order (Tardis docs: ``sell`` = a long
  position was liquidated): ``sell`` -1, ``buy`` +1.
- Empty quote or book fields: price NaN (book quantity 0, quote quantity NaN).
- ``amount`` is in the exchange's own unit. For an instrument the registry
  (:func:`~emerald.model.instruments.get_instrument`, looked up with the Tardis exchange and
  symbol) lists as an inverse perp, amounts count contracts and become base units as
  ``amount x contract_size / price``; Deribit, whose inverse amounts are already USD ("for perpetual
  and inverse futures the amount is in USD units", Deribit API), uses ``amount / price``. For an
  instrument the registry lacks, amounts are kept as given and a note says so.
- derivative_ticker: one ``prices`` row (mark, index) per line holding either; one
  ``open_interest`` row per line holding ``open_interest`` (linear: ``oi_qty``, ``oi_notional``
  NaN; inverse: ``oi_notional`` = the exact quote value, ``oi_qty`` = that / mark price); one
  ``funding`` row (``is_settlement`` False, ``rate = funding_rate``, ``next_funding_ts =
  funding_timestamp`` or -1) per line holding ``funding_rate``. Each time ``funding_timestamp``
  advances, a settlement row is added at the previous ``funding_timestamp`` with the last
  ``funding_rate`` seen while it was current (the rule that reproduces Binance's own funding
  history; the state carries across blocks and across files of one run, in the order given).
  ``last_price`` and ``predicted_funding_rate`` have no tape column: their non-empty values are
  counted in ``unhandled``; lines lacking a field get no row of that kind and are counted in notes.
  ``interval_ns`` comes from ``funding_interval_hours=``, else the registry, else the step between
  two ``funding_timestamp`` values of the file.
- incremental_book_L2: side ``bid`` +1 / ``ask`` -1, ``qty = amount`` (0 removes the level),
  ``update_id`` -1. Rows before the first snapshot (Tardis: updates buffered before a reconnect's
  snapshot) are kept and counted in ``report.book['book_delta']``: a reader must start from a
  snapshot.

Lines that do not parse are rejected with their line number and kept under
``_quarantine/_lines``; ``lines_in`` counts data lines (the header is not one).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from emerald.errors import ConfigError, DataError
from emerald.model.enums import InstrumentKind
from emerald.model.instruments import InstrumentSpec, get_instrument
from emerald.tape.importers.base import ImportReport, LineRejects, add_note, count_unhandled, stable_id
from emerald.tape.importers.csvblocks import Col, csv_lines, open_source, parse_columns, reject_rows
from emerald.tape.timeutil import check_zone
from emerald.tape.writer import TapeWriter

FORMAT = "tardis"
US = 1_000
HOUR_NS = 3_600_000_000_000
COMMON = ("exchange", "symbol", "timestamp", "local_timestamp")
_TRADE_COLUMNS = ("id", "side", "price", "amount")
_QUOTE_COLUMNS = ("ask_amount", "ask_price", "bid_price", "bid_amount")
_HEADERS: dict[str, tuple[str, ...]] = {
    "trades": _TRADE_COLUMNS,
    "liquidations": _TRADE_COLUMNS,
    "quotes": _QUOTE_COLUMNS,
    "book_ticker": _QUOTE_COLUMNS,
    "incremental_book_L2": ("is_snapshot", "side", "price", "amount"),
    "derivative_ticker": ("funding_timestamp", "funding_rate", "predicted_funding_rate", "open_interest",
                          "last_price", "index_price", "mark_price"),
}
DATA_TYPES = ("trades", "liquidations", "quotes", "book_ticker", "book_snapshot_5", "book_snapshot_25",
              "incremental_book_L2", "derivative_ticker")
_NAME_TOKENS = ("incremental_book_l2", "book_snapshot_25", "book_snapshot_5", "derivative_ticker", "liquidations",
                "book_ticker", "quotes", "trades")
# Exchanges whose inverse-contract `amount` is already in quote currency (Deribit API: "for
# perpetual and inverse futures the amount is in USD units"); the others count contracts.
_INVERSE_AMOUNT_IN_QUOTE = frozenset({"deribit"})


def _snapshot_header(depth: int) -> tuple[str, ...]:
    return tuple(f"{side}[{i}].{what}" for i in range(depth) for side in ("asks", "bids")
                 for what in ("price", "amount"))


def type_from_header(columns: list[str]) -> str | None:
    """The data type a header describes (``trades`` for the trades/liquidations layout), or None."""
    if tuple(columns[:4]) != COMMON:
        return None
    rest = tuple(columns[4:])
    if rest and len(rest) % 4 == 0 and rest == _snapshot_header(len(rest) // 4):
        return f"book_snapshot_{len(rest) // 4}"
    for name, cols in _HEADERS.items():
        if rest == cols:
            return name
    return None


def type_from_name(name: str) -> str | None:
    """The data type a Tardis file name carries (``deribit_trades_2019-11-01_BTC-PERPETUAL.csv.gz``)."""
    low = name.lower()
    for token in _NAME_TOKENS:
        if token in low:
            return "incremental_book_L2" if token == "incremental_book_l2" else token
    return None


def _same_layout(a: str, b: str) -> bool:
    return a == b or _HEADERS.get(a, ()) == _HEADERS.get(b, (None,))


# --------------------------------------------------------------------------------------------
# units


@dataclass
class _Group:
    """What one ``(exchange, symbol)`` needs: the amount unit and, across blocks, its state."""

    exchange: str
    symbol: str
    spec: InstrumentSpec | None
    amount_unit: str  # base, contracts, quote, as_given
    last_fts: int | None = None  # derivative_ticker: current funding_timestamp (µs) ...
    last_rate: float = np.nan    # ... and the last funding_rate seen while it was current
    seen_snapshot: bool = False
    empty: Counter[str] = field(default_factory=Counter)


def _make_group(exchange: str, symbol: str, report: ImportReport) -> _Group:
    try:
        spec: InstrumentSpec | None = get_instrument(exchange, symbol)
    except ConfigError:
        spec = None
    if spec is None:
        unit = "as_given"
        add_note(report, f"{exchange}:{symbol} is not in the instrument registry: amounts are kept as given "
                         "(units as the exchange publishes them)")
    elif spec.kind != InstrumentKind.INVERSE_PERP:
        unit = "base"
    elif exchange in _INVERSE_AMOUNT_IN_QUOTE:
        unit = "quote"
        add_note(report, f"{exchange}:{symbol} is inverse and {exchange} amounts are in quote currency: "
                         "qty = amount / price")
    else:
        unit = "contracts"
        add_note(report, f"{exchange}:{symbol} is inverse: amounts count contracts, "
                         f"qty = amount x {spec.contract_size:g} / price")
    return _Group(exchange, symbol, spec, unit)


def _quote_value(g: _Group, amount: np.ndarray) -> np.ndarray:
    """Quote-currency value of inverse amounts (contracts x contract size, or already quote)."""
    assert g.spec is not None
    return amount * g.spec.contract_size if g.amount_unit == "contracts" else amount


def _to_base(g: _Group, amount: np.ndarray, price: np.ndarray) -> np.ndarray:
    if g.amount_unit in ("base", "as_given"):
        return amount
    with np.errstate(divide="ignore", invalid="ignore"):
        return _quote_value(g, amount) / price


# --------------------------------------------------------------------------------------------
# mappings: parsed rows of one group -> tape tables


def _f64(df: pl.DataFrame, name: str) -> np.ndarray:
    return df[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _times(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return df["timestamp"].to_numpy() * US, df["local_timestamp"].to_numpy() * US


def _trade_ids(df: pl.DataFrame) -> np.ndarray:
    """Numeric ids as they are; other ids hashed; missing ids hashed from the line and its repeat count."""
    numeric = df["id"].cast(pl.Int64, strict=False)
    keys = (df.select(pl.when(pl.col("id").is_null())
                      .then(pl.col("line") + "#" + pl.int_range(pl.len()).over("line").cast(pl.String))
                      .otherwise(pl.col("id")).alias("k"))["k"])
    need = numeric.is_null().to_numpy()
    ids = numeric.fill_null(0).to_numpy().astype(np.int64)
    if need.any():
        ids[need] = [stable_id(k) for k in keys.filter(pl.Series(need)).to_list()]
    return ids


def _map_trades(g: _Group, df: pl.DataFrame) -> dict[str, np.ndarray]:
    """``binance-futures,BTCUSDT,1582329602111000,1582329602418379,42377944,buy,9682,0.132`` ->
    trade 42377944 at 2020-02-22T00:00:02.111Z, +1, 0.132 BTC."""
    ts, recv = _times(df)
    price = _f64(df, "price")
    return {"ts_event": ts, "ts_recv": recv, "price": price, "qty": _to_base(g, _f64(df, "amount"), price),
            "side": df["side_code"].to_numpy().astype(np.int8), "trade_id": _trade_ids(df)}


def _map_liquidations(g: _Group, df: pl.DataFrame) -> dict[str, np.ndarray]:
    """``binance-futures,BTCUSDT,1598918403696000,1598918403810979,,sell,11600.5,0.25`` -> a long
    liquidated (forced sell, side -1)."""
    ts, _ = _times(df)
    price = _f64(df, "price")
    return {"ts_event": ts, "side": df["side_code"].to_numpy().astype(np.int8), "price": price,
            "qty": _to_base(g, _f64(df, "amount"), price)}


def _map_quotes(g: _Group, df: pl.DataFrame) -> dict[str, np.ndarray]:
    """``huobi-dm-swap,BTC-USD,1588291201099000,1588291201234268,5494,8629.3,8629.2,806`` -> ask
    5494 contracts at 8629.3 (x 100 / 8629.3 = 63.67 BTC), bid 806 contracts at 8629.2."""
    ts, recv = _times(df)
    bid_px, ask_px = _f64(df, "bid_price"), _f64(df, "ask_price")
    return {"ts_event": ts, "ts_recv": recv, "bid_px": bid_px, "bid_qty": _to_base(g, _f64(df, "bid_amount"), bid_px),
            "ask_px": ask_px, "ask_qty": _to_base(g, _f64(df, "ask_amount"), ask_px)}


def _map_book(g: _Group, df: pl.DataFrame, depth: int) -> dict[str, np.ndarray]:
    """``...,11657.08,1.714,11657.07,10.896,...`` (asks[0].price, asks[0].amount, bids[0].price,
    bids[0].amount, asks[1]...) -> top-``depth`` book; empty levels: price NaN, qty 0."""
    ts, recv = _times(df)
    out: dict[str, np.ndarray] = {"ts_event": ts, "ts_recv": recv}
    for side, name in (("bids", "bid"), ("asks", "ask")):
        px = np.column_stack([_f64(df, f"{side}[{i}].price") for i in range(depth)])
        amount = np.column_stack([_f64(df, f"{side}[{i}].amount") for i in range(depth)])
        qty = _to_base(g, amount, px)
        out[f"{name}_px"] = px
        out[f"{name}_qty"] = np.where(np.isnan(px), 0.0, qty)
    return out


def _map_book_delta(g: _Group, df: pl.DataFrame, report: ImportReport) -> dict[str, np.ndarray]:
    """``deribit,BTC-PERPETUAL,1585699200245000,1585699200355684,true,ask,6421.5,18640`` -> ask
    level 6421.5 of 18640 USD = 2.9027 BTC, part of a snapshot."""
    ts, recv = _times(df)
    price = _f64(df, "price")
    is_snapshot = df["is_snapshot"].to_numpy().astype(bool)
    if not g.seen_snapshot:
        first = int(np.argmax(is_snapshot)) if is_snapshot.any() else len(is_snapshot)
        if first:
            stats = report.book.setdefault("book_delta", {"rows_before_first_snapshot": 0})
            stats["rows_before_first_snapshot"] += first
            add_note(report, f"{g.exchange}:{g.symbol}: incremental_book_L2 rows before the first snapshot are "
                             "kept (counted in book.book_delta); rebuild books from a snapshot")
        g.seen_snapshot = bool(is_snapshot.any())
    return {"ts_event": ts, "ts_recv": recv, "side": df["side_code"].to_numpy().astype(np.int8), "price": price,
            "qty": _to_base(g, _f64(df, "amount"), price), "is_snapshot": is_snapshot,
            "update_id": np.full(len(ts), -1, dtype=np.int64)}


def _settlements(g: _Group, fts: np.ndarray, rate: np.ndarray, report: ImportReport) -> tuple[np.ndarray, ...]:
    """Settlements where ``funding_timestamp`` advances: ``(ts, rate, next_ts)`` in µs.

    ``fts`` holds the lines' funding timestamps in file order (no empty ones) and ``rate`` their
    funding rates (NaN when empty). The settled rate at T is the last rate published while T was the
    next funding time; the group state carries the current T and that rate across calls.
    """
    if g.last_fts is not None:
        fts = np.concatenate([[g.last_fts], fts])
        rate = np.concatenate([[g.last_rate], rate])
    if fts.size == 0:
        return np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], fts[1:] != fts[:-1]]))
    # last non-NaN rate of each run of equal funding_timestamp
    idx = np.where(np.isnan(rate), -1, np.arange(rate.size))
    last_valid = np.maximum.accumulate(idx)
    ends = np.concatenate([starts[1:], [fts.size]]) - 1
    run_rate = np.where(last_valid[ends] >= starts, rate[np.maximum(last_valid[ends], 0)], np.nan)
    g.last_fts, g.last_rate = int(fts[-1]), float(run_rate[-1])
    prev_ts, next_ts, settled = fts[starts[:-1]], fts[starts[1:]], run_rate[:-1]
    backwards = next_ts < prev_ts
    if backwards.any():
        add_note(report, f"{g.exchange}:{g.symbol}: funding_timestamp went backwards {int(backwards.sum())} time(s) "
                         "(files out of order?): no settlement emitted there")
    unknown = ~backwards & np.isnan(settled)
    if unknown.any():
        add_note(report, f"{g.exchange}:{g.symbol}: {int(unknown.sum())} funding period(s) ended without any "
                         "funding_rate: no settlement emitted")
    keep = ~backwards & ~unknown
    return prev_ts[keep], settled[keep], next_ts[keep]


def _funding_interval(g: _Group, fts: np.ndarray, forced_hours: float | None, source: str,
                      report: ImportReport) -> int:
    if forced_hours is not None:
        return int(round(forced_hours * HOUR_NS))
    if g.spec is not None and g.spec.funding_interval_ns > 0:
        return g.spec.funding_interval_ns
    steps, counts = np.unique(np.diff(np.unique(fts)), return_counts=True)
    if steps.size:
        add_note(report, f"{g.exchange}:{g.symbol}: funding interval taken from the funding_timestamp step")
        return int(steps[np.argmax(counts)]) * US
    raise ConfigError(f"funding interval of {g.exchange}:{g.symbol} is unknown (not in the instrument registry, "
                      f"and file {source} shows no funding_timestamp step); give funding_interval_hours=")


def _map_derivative_ticker(g: _Group, df: pl.DataFrame, report: ImportReport, forced_hours: float | None,
                           source: str) -> list[tuple[str, dict[str, np.ndarray]]]:
    """``binance-futures,BTCUSDT,1680652800010000,1680652800120000,1680681600000000,0.0001,,
    79421.2,28173.5,28150.1,28165.3`` -> prices (mark 28165.3, index 28150.1), open interest
    79421.2 BTC, funding 1e-4 published for 2023-04-05T08:00Z."""
    ts, _ = _times(df)
    mark, index = _f64(df, "mark_price"), _f64(df, "index_price")
    oi, rate = _f64(df, "open_interest"), _f64(df, "funding_rate")
    fts_col = df["funding_timestamp"]
    for column in ("last_price", "predicted_funding_rate"):
        count_unhandled(report, f"derivative_ticker.{column}", int(df[column].is_not_null().sum()))
    out: list[tuple[str, dict[str, np.ndarray]]] = []

    has_price = ~(np.isnan(mark) & np.isnan(index))
    g.empty["mark_price and index_price"] += int((~has_price).sum())
    out.append(("prices", {"ts_event": ts[has_price], "mark": mark[has_price], "index": index[has_price],
                           "spot_ref": np.full(int(has_price.sum()), np.nan)}))

    has_oi = ~np.isnan(oi)
    g.empty["open_interest"] += int((~has_oi).sum())
    if g.amount_unit in ("contracts", "quote"):
        notional = _quote_value(g, oi[has_oi])
        with np.errstate(divide="ignore", invalid="ignore"):
            oi_qty = notional / mark[has_oi]
        add_note(report, f"{g.exchange}:{g.symbol}: open interest is contracts/quote: oi_notional exact, "
                         "oi_qty = oi_notional / mark price")
    else:
        oi_qty, notional = oi[has_oi], np.full(int(has_oi.sum()), np.nan)
    out.append(("open_interest", {"ts_event": ts[has_oi], "oi_qty": oi_qty, "oi_notional": notional}))

    has_fts = fts_col.is_not_null().to_numpy()
    fts = fts_col.fill_null(-1).to_numpy().astype(np.int64)
    has_rate = ~np.isnan(rate)
    g.empty["funding_rate"] += int((~has_rate).sum())
    if has_rate.any() or has_fts.any():
        interval = _funding_interval(g, fts[has_fts], forced_hours, source, report)
        next_ts = np.where(has_fts, fts * US, -1)[has_rate]
        rows = {"ts_event": ts[has_rate], "rate": rate[has_rate], "interval_ns": np.full(next_ts.size, interval),
                "next_funding_ts": next_ts, "is_settlement": np.zeros(next_ts.size, dtype=bool)}
        s_ts, s_rate, s_next = _settlements(g, fts[has_fts], rate[has_fts], report)
        settle = {"ts_event": s_ts * US, "rate": s_rate, "interval_ns": np.full(s_ts.size, interval),
                  "next_funding_ts": s_next * US, "is_settlement": np.ones(s_ts.size, dtype=bool)}
        out.append(("funding", {k: np.concatenate([rows[k], settle[k]]) for k in rows}))
    return out


# --------------------------------------------------------------------------------------------
# driver


def _columns(data_type: str, header: list[str]) -> list[Col]:
    cols = [Col("exchange", 0, "str"), Col("symbol", 1, "str"), Col("timestamp", 2, "int"),
            Col("local_timestamp", 3, "int")]
    rest = header[4:]
    if data_type.startswith("book_snapshot"):
        return cols + [Col(n, i + 4, "float", required=False) for i, n in enumerate(rest)]
    kinds = {"id": ("str", False), "side": ("str", True), "price": ("float", True), "amount": ("float", True),
             "is_snapshot": ("bool", True)}
    for i, n in enumerate(rest):
        kind, required = kinds.get(n, ("float", False))  # quotes and ticker fields may be empty
        if data_type == "derivative_ticker" and n == "funding_timestamp":
            kind = "int"
        cols.append(Col(n, i + 4, kind, required))
    return cols


_SIDES = {"trades": {"buy": 1, "sell": -1}, "liquidations": {"buy": 1, "sell": -1},
          "incremental_book_L2": {"bid": 1, "ask": -1}}


def _side_codes(data_type: str, good: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Add ``side_code``; lines with another side go to the rejects (``unknown`` -> ``unknown_side``)."""
    if data_type not in _SIDES:
        return good, None
    code = pl.col("side").replace_strict(_SIDES[data_type], default=None, return_dtype=pl.Int8)
    good = good.with_columns(code.alias("side_code"))
    bad = (good.filter(pl.col("side_code").is_null())
           .select("line_no", "line", pl.when(pl.col("side") == "unknown").then(pl.lit("unknown_side"))
                   .otherwise(pl.lit("unparseable.side")).alias("reason")))
    return good.filter(pl.col("side_code").is_not_null()), bad


def _detect(path: Path, header: list[str], forced: str | None) -> str:
    from_header = type_from_header(header)
    if from_header is None:
        raise DataError("not a Tardis CSV header (expected exchange,symbol,timestamp,local_timestamp and the "
                        "columns of one data type)", path=str(path), field="header", value=",".join(header)[:200])
    named = forced or type_from_name(path.name)
    if named is None:
        if from_header == "trades":
            raise ConfigError(f"{path.name}: trades and liquidations files share their columns and the name "
                              "says neither; give data_type=trades or data_type=liquidations")
        return from_header
    if not _same_layout(named, from_header):
        raise DataError(f"the file name or data_type= says {named} but the header is that of {from_header}",
                        path=str(path), field="header", value=",".join(header)[:200])
    return named


def _write_group(data_type: str, g: _Group, rows: pl.DataFrame, writer: TapeWriter, report: ImportReport,
                 venue: str, symbol: str, source: str, forced_hours: float | None) -> None:
    if data_type == "trades":
        tables = [("trades", _map_trades(g, rows))]
    elif data_type == "liquidations":
        tables = [("liquidations", _map_liquidations(g, rows))]
    elif data_type in ("quotes", "book_ticker"):
        tables = [("quotes", _map_quotes(g, rows))]
    elif data_type == "incremental_book_L2":
        tables = [("book_delta", _map_book_delta(g, rows, report))]
    elif data_type == "derivative_ticker":
        tables = _map_derivative_ticker(g, rows, report, forced_hours, source)
    else:
        depth = int(data_type.rsplit("_", 1)[1])
        writer.write("book", venue, symbol, _map_book(g, rows, depth), source=source, depth=depth)
        return
    for kind, data in tables:
        writer.write(kind, venue, symbol, data, source=source)


def run(paths: list[Path], writer: TapeWriter, *, venue: str | None = None, symbol: str | None = None,
        tz: str | None = None, strict: bool = False, **options: Any) -> ImportReport:
    """Import Tardis CSV files (plain or gzip) into ``writer`` (not committed).

    Parameters
    ----------
    paths
        Tardis CSV files, named as Tardis names them or with ``data_type=``.
    venue, symbol
        Override the ``exchange`` / ``symbol`` columns (``symbol`` only for single-symbol files).
    tz
        Tardis times are UTC; only ``UTC`` (or nothing) is accepted.
    strict
        Raise on the first line that does not parse instead of rejecting it.
    options
        ``data_type`` (one of :data:`DATA_TYPES`) and ``funding_interval_hours`` (derivative_ticker
        for instruments the registry lacks).

    Raises
    ------
    ConfigError
        An unknown option, an undetectable data type, ``--symbol`` on a multi-symbol file.
    DataError
        A header that is not Tardis', or that disagrees with the file name.
    """
    unknown = sorted(set(options) - {"data_type", "funding_interval_hours"})
    if unknown:
        raise ConfigError(f"unknown option for format {FORMAT}, was {unknown[0]!r}; known: data_type, "
                          "funding_interval_hours")
    if tz is not None and check_zone(tz) != "UTC":
        raise ConfigError(f"Tardis times are UTC; --tz must be UTC or omitted, was {tz!r}")
    forced = options.get("data_type")
    if forced is not None and forced not in DATA_TYPES:
        raise ConfigError(f"data_type must be one of {', '.join(DATA_TYPES)}, was {forced!r}")
    hours = options.get("funding_interval_hours")
    forced_hours = float(hours) if hours is not None else None
    if forced_hours is not None and not forced_hours > 0:
        raise ConfigError(f"funding_interval_hours must be > 0, was {hours!r}")
    report = ImportReport(format=FORMAT)
    rejects = LineRejects(report, strict=strict)
    groups: dict[tuple[str, str], _Group] = {}
    for path in paths:
        source = str(path)
        data_type = ""
        cols: list[Col] = []
        n_fields = 0
        file_symbols: set[str] = set()
        with open_source(path) as stream:
            for lines in csv_lines(stream, path=source):
                if not cols:
                    header = lines["line"][0].split(",")
                    data_type = _detect(path, header, forced)
                    cols, n_fields = _columns(data_type, header), len(header)
                    add_note(report, f"{path.name}: Tardis {data_type}")
                    lines = lines.slice(1)
                report.lines_in += lines.height
                good, bad = parse_columns(lines, n_fields, cols)
                good, bad_side = _side_codes(data_type, good)
                reject_rows(rejects, bad if bad_side is None else pl.concat([bad, bad_side]).sort("line_no"),
                            source)
                report.lines_parsed += good.height
                by_group = good.partition_by(["exchange", "symbol"], as_dict=True, maintain_order=True)
                file_symbols.update(str(s) for _, s in by_group)
                if symbol is not None and len(file_symbols) > 1:
                    raise ConfigError(f"--symbol {symbol!r} given but {path.name} holds several symbols "
                                      f"{sorted(file_symbols)}")
                for (exchange, sym), rows in by_group.items():
                    key = (str(exchange), str(sym))
                    if key not in groups:
                        groups[key] = _make_group(*key, report)
                    _write_group(data_type, groups[key], rows, writer, report, venue or key[0], symbol or key[1],
                                 source, forced_hours)
    for g in groups.values():
        for what, n in sorted(g.empty.items()):
            if n:
                add_note(report, f"{g.exchange}:{g.symbol}: {n} derivative_ticker line(s) without {what} "
                                 "(no row of that kind for them)")
    rejects.flush(writer)
    return report
