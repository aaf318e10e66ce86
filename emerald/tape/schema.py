"""Parquet schemas of the nine tape kinds (ARCHITECTURE section 3).

All timestamps are int64 nanoseconds since the Unix epoch, UTC. Venue and symbol are not
columns: they are hive partition keys (``kind/venue=/symbol=/date=``) and the reader adds them.

| kind | column | dtype | unit / notes |
|---|---|---|---|
| trades | ts_event | int64 | ns UTC, venue time of the trade |
| trades | ts_recv | int64 | ns UTC, receive time (= ts_event where the source has no receive clock) |
| trades | price | float64 | quote per base |
| trades | qty | float64 | base units (inverse contracts converted with contract_size / price) |
| trades | side | int8 | +1 buyer aggressor, -1 seller aggressor |
| trades | trade_id | int64 | venue id; non-numeric ids mapped by a stable 63-bit blake2b hash |
| book | bid_px/ask_px | fixed_size_list<float64>[N] | level 0 is the touch; empty level: NaN price, 0 qty |
| book | bid_qty/ask_qty | fixed_size_list<float64>[N] | base units |
| book_delta | side | int8 | +1 bid, -1 ask |
| book_delta | qty | float64 | new size at the level; 0 removes the level |
| book_delta | is_snapshot | bool | row belongs to a full snapshot (a book reset) |
| book_delta | update_id | int64 | venue sequence number (or -1) |
| quotes | bid_px, bid_qty, ask_px, ask_qty | float64 | top of book |
| prices | mark, index, spot_ref | float64 | NaN where the venue publishes none |
| funding | rate | float64 | fraction per interval (0.0001 = 0.01 %) |
| funding | interval_ns | int64 | funding period |
| funding | next_funding_ts | int64 | ns UTC of the next settlement (-1 unknown) |
| funding | is_settlement | bool | True: ts_event is a settlement time and rate the settled rate; False: a published (predicted) rate at ts_event |
| open_interest | oi_qty, oi_notional | float64 | base units, quote (NaN where absent) |
| liquidations | side | int8 | side of the liquidation order: -1 a long was liquidated (forced sell) |
| liquidations | price, qty | float64 | |
| bars | ts_event | int64 | bar **open** time; its values are known only at ts_event + interval_ns |
| bars | interval_ns | int64 | bar length |
| bars | open, high, low, close | float64 | |
| bars | volume, buy_volume, sell_volume | float64 | base units (NaN where the source has no split) |
| bars | trades | int64 | number of trades (-1 unknown) |
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from emerald.model.dtypes import DEFAULT_BOOK_DEPTH, DTYPES, book_dtype

SCHEMA_VERSION = 1

KINDS: tuple[str, ...] = (
    "trades", "book", "book_delta", "quotes", "prices", "funding", "open_interest", "liquidations", "bars",
)

_NUMPY_TO_ARROW = {
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.int8): pa.int8(),
    np.dtype(np.float64): pa.float64(),
    np.dtype(np.bool_): pa.bool_(),
}


def arrow_schema(kind: str, depth: int = DEFAULT_BOOK_DEPTH) -> pa.Schema:
    """The Parquet schema of ``kind``; derived from the numpy record dtype so the two never drift."""
    if kind not in KINDS:
        from emerald.model.enums import Kind

        Kind.parse(kind)  # raises with a did-you-mean
    dtype = book_dtype(depth) if kind == "book" else DTYPES[kind]
    fields_ = []
    for name in dtype.names:
        sub = dtype.fields[name][0]
        if sub.shape:
            fields_.append(pa.field(name, pa.list_(_NUMPY_TO_ARROW[sub.base], sub.shape[0]), nullable=False))
        else:
            fields_.append(pa.field(name, _NUMPY_TO_ARROW[sub], nullable=False))
    meta = {b"emerald.kind": kind.encode(), b"emerald.schema_version": str(SCHEMA_VERSION).encode()}
    if kind == "book":
        meta[b"emerald.book_depth"] = str(depth).encode()
    return pa.schema(fields_, metadata=meta)


@dataclass(frozen=True)
class KindRules:
    """Which columns the row validator checks, per kind."""

    prices: tuple[str, ...] = ()        # finite and > 0
    optional_prices: tuple[str, ...] = ()  # NaN allowed, else finite and > 0
    quantities: tuple[str, ...] = ()    # finite and >= 0
    optional_quantities: tuple[str, ...] = ()  # NaN allowed, else >= 0
    sides: tuple[str, ...] = ()         # in {+1, -1}
    finite: tuple[str, ...] = ()        # finite, any sign (funding rate)
    positive_ints: tuple[str, ...] = ()  # > 0 (interval_ns)
    spike_columns: tuple[str, ...] = ()  # checked against a rolling median
    dedup_key: tuple[str, ...] | None = None  # None: the whole row
    conflict_reason: str = "key_conflict"  # same key, other content: quarantined under this name
    extra: tuple[str, ...] = field(default=())


RULES: dict[str, KindRules] = {
    "trades": KindRules(prices=("price",), quantities=("qty",), sides=("side",), spike_columns=("price",),
                        dedup_key=("trade_id",), conflict_reason="trade_id_conflict"),
    "book": KindRules(extra=("book_levels", "crossed_book")),
    "book_delta": KindRules(prices=("price",), quantities=("qty",), sides=("side",)),
    "quotes": KindRules(optional_prices=("bid_px", "ask_px"), optional_quantities=("bid_qty", "ask_qty"),
                        spike_columns=("bid_px", "ask_px"), extra=("crossed_book", "empty_quote")),
    "prices": KindRules(optional_prices=("mark", "index", "spot_ref"), spike_columns=("mark", "index"),
                        extra=("empty_prices",)),
    "funding": KindRules(finite=("rate",), positive_ints=("interval_ns",), dedup_key=("ts_event", "is_settlement"),
                         conflict_reason="funding_conflict"),
    "open_interest": KindRules(optional_quantities=("oi_qty", "oi_notional"), extra=("empty_open_interest",)),
    "liquidations": KindRules(prices=("price",), quantities=("qty",), sides=("side",)),
    "bars": KindRules(prices=("open", "high", "low", "close"), optional_quantities=("volume", "buy_volume",
                      "sell_volume"), positive_ints=("interval_ns",), spike_columns=("close",),
                      extra=("bar_ohlc",)),
}
