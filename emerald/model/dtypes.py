"""numpy record dtypes for the event kinds of ARCHITECTURE section 3.

One dtype per tape kind, ``align=True`` (hftbacktest ``event_dtype`` style). Column names and
types match ``emerald.tape.schema`` exactly; ``tests/model/test_dtypes.py`` checks that.
All timestamps are int64 nanoseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import numpy as np

DEFAULT_BOOK_DEPTH = 20

TRADE_DTYPE = np.dtype(
    [
        ("ts_event", np.int64),
        ("ts_recv", np.int64),
        ("price", np.float64),
        ("qty", np.float64),
        ("side", np.int8),
        ("trade_id", np.int64),
    ],
    align=True,
)

BOOK_DELTA_DTYPE = np.dtype(
    [
        ("ts_event", np.int64),
        ("ts_recv", np.int64),
        ("side", np.int8),
        ("price", np.float64),
        ("qty", np.float64),
        ("is_snapshot", np.bool_),
        ("update_id", np.int64),
    ],
    align=True,
)

QUOTE_DTYPE = np.dtype(
    [
        ("ts_event", np.int64),
        ("ts_recv", np.int64),
        ("bid_px", np.float64),
        ("bid_qty", np.float64),
        ("ask_px", np.float64),
        ("ask_qty", np.float64),
    ],
    align=True,
)

PRICE_DTYPE = np.dtype(
    [("ts_event", np.int64), ("mark", np.float64), ("index", np.float64), ("spot_ref", np.float64)],
    align=True,
)

FUNDING_DTYPE = np.dtype(
    [
        ("ts_event", np.int64),
        ("rate", np.float64),
        ("interval_ns", np.int64),
        ("next_funding_ts", np.int64),
        ("is_settlement", np.bool_),
    ],
    align=True,
)

OPEN_INTEREST_DTYPE = np.dtype(
    [("ts_event", np.int64), ("oi_qty", np.float64), ("oi_notional", np.float64)], align=True
)

LIQUIDATION_DTYPE = np.dtype(
    [("ts_event", np.int64), ("side", np.int8), ("price", np.float64), ("qty", np.float64)], align=True
)

BAR_DTYPE = np.dtype(
    [
        ("ts_event", np.int64),
        ("interval_ns", np.int64),
        ("open", np.float64),
        ("high", np.float64),
        ("low", np.float64),
        ("close", np.float64),
        ("volume", np.float64),
        ("buy_volume", np.float64),
        ("sell_volume", np.float64),
        ("trades", np.int64),
    ],
    align=True,
)


def book_dtype(depth: int = DEFAULT_BOOK_DEPTH) -> np.dtype:
    """Record dtype of a top-``depth`` book snapshot (empty levels: price NaN, qty 0)."""
    return np.dtype(
        [
            ("ts_event", np.int64),
            ("ts_recv", np.int64),
            ("bid_px", np.float64, (depth,)),
            ("bid_qty", np.float64, (depth,)),
            ("ask_px", np.float64, (depth,)),
            ("ask_qty", np.float64, (depth,)),
        ],
        align=True,
    )


BOOK_DTYPE = book_dtype(DEFAULT_BOOK_DEPTH)

DTYPES: dict[str, np.dtype] = {
    "trades": TRADE_DTYPE,
    "book": BOOK_DTYPE,
    "book_delta": BOOK_DELTA_DTYPE,
    "quotes": QUOTE_DTYPE,
    "prices": PRICE_DTYPE,
    "funding": FUNDING_DTYPE,
    "open_interest": OPEN_INTEREST_DTYPE,
    "liquidations": LIQUIDATION_DTYPE,
    "bars": BAR_DTYPE,
}
