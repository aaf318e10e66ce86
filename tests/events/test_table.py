from __future__ import annotations

import numpy as np
import pytest

from emerald.errors import ConfigError
from emerald.events import EventTable, asof_index, field_index, iter_events
from emerald.model.enums import Kind
from emerald.tape.writer import TapeWriter
from emerald.testing.tapes import T0, make_trades

S = 1_000_000_000


def _trades(ts, price):
    n = len(ts)
    return {"ts_event": np.array(ts), "ts_recv": np.array(ts), "price": np.array(price, float), "qty": np.ones(n),
            "side": np.ones(n, np.int8), "trade_id": np.arange(n)}


def _quotes(ts, bid):
    n = len(ts)
    bid = np.array(bid, float)
    return {"ts_event": np.array(ts), "ts_recv": np.array(ts), "bid_px": bid, "bid_qty": np.ones(n),
            "ask_px": bid + 1, "ask_qty": np.ones(n)}


def test_tie_break_ts_then_kind_priority_then_instrument_then_row() -> None:
    ev = EventTable.from_tables([
        ("trades", "p", "BTC", _trades([T0, T0, T0 + 1], [10, 11, 12])),
        ("quotes", "s", "BTC", _quotes([T0, T0 + 1], [9, 9.5])),
        ("funding", "p", "BTC", {"ts_event": np.array([T0 + 1]), "rate": np.array([1e-4]),
                                 "interval_ns": np.array([8 * 3600 * S]), "next_funding_ts": np.array([T0]),
                                 "is_settlement": np.array([True])}),
        ("trades", "s", "BTC", _trades([T0], [9.7])),
    ])
    got = list(zip(ev.ts - T0, ev.kind, ev.inst, ev.row, strict=True))
    Q, TR, F = int(Kind.QUOTES), int(Kind.TRADES), int(Kind.FUNDING)
    assert got == [(0, Q, 1, 0), (0, TR, 0, 0), (0, TR, 0, 1), (0, TR, 1, 0),
                   (1, F, 0, 0), (1, Q, 1, 1), (1, TR, 0, 2)]
    assert ev.instruments == [("p", "BTC"), ("s", "BTC")]
    assert ev.f[field_index("trades", "price"), 1] == 10.0
    assert ev.f[field_index("funding", "rate"), 4] == 1e-4


def test_bars_become_events_at_their_close() -> None:
    iv = 60 * S
    ev = EventTable.from_tables([("bars", "v", "s", {
        "ts_event": np.array([T0]), "interval_ns": np.array([iv]), "open": [1.0], "high": [2.0], "low": [0.5],
        "close": [1.5], "volume": [3.0], "buy_volume": [1.0], "sell_volume": [2.0], "trades": [4]}),
        ("trades", "v", "s", _trades([T0 + iv - 1, T0 + iv], [1, 2]))])
    order = [(t - T0, k) for t, k in zip(ev.ts, ev.kind, strict=True)]
    assert order == [(iv - 1, Kind.TRADES), (iv, Kind.TRADES), (iv, Kind.BARS)]
    assert ev.f[7, 2] == iv and ev.ts[2] - ev.f[7, 2] == T0  # open time recoverable


def test_iterator_yields_the_same_events_as_the_table() -> None:
    ev = EventTable.from_tables([("trades", "v", "s", make_trades(50)), ("quotes", "v", "s", _quotes(
        make_trades(30, seed=3)["ts_event"], np.linspace(100, 101, 30)))])
    rows = list(iter_events(ev))
    assert len(rows) == len(ev) == 80
    assert [r.ts for r in rows] == ev.ts.tolist()
    np.testing.assert_array_equal(np.array([r.f for r in rows]).T, ev.f)
    assert list(iter_events(ev, start=78))[0].ts == ev.ts[78]


def test_asof_matches_stream_order() -> None:
    left = np.array([T0, T0 + 5, T0 + 10])
    right = np.array([T0, T0 + 7])
    assert asof_index(left, right).tolist() == [0, 0, 1]
    assert asof_index(left, right, right_first_on_ties=False).tolist() == [-1, 0, 1]


def test_from_tape_and_books(tmp_path) -> None:
    depth = 3
    ts = T0 + np.arange(4) * S
    with TapeWriter(tmp_path) as w:
        w.write("trades", "v", "s", make_trades(10))
        w.write("book", "v", "s", {"ts_event": ts, "ts_recv": ts, "bid_px": np.tile([100.0, 99, 98], (4, 1)),
                                   "bid_qty": np.ones((4, depth)), "ask_px": np.tile([101.0, 102, 103], (4, 1)),
                                   "ask_qty": np.full((4, depth), 2.0)})
    ev = EventTable.from_tape(tmp_path, [("v", "s")])
    assert ev.kinds_present() == {"trades", "book"}
    book = ev.books[0]
    assert book.bid_px.shape == (4, depth)
    i = int(np.flatnonzero(ev.kind == Kind.BOOK)[2])
    assert ev.row[i] == 2 and ev.f[0, i] == book.bid_px[2, 0] == 100.0 and ev.f[3, i] == 2.0
    with pytest.raises(ConfigError, match="no data for v:nope"):
        EventTable.from_tape(tmp_path, [("v", "nope")])
