"""Time bars kept inside a kernel's state: built from trades, or read from the bars tape.

Any bar-based kernel (:mod:`emerald.signals.bars`, the zones family, ...) reuses this builder:

1. put ``bar_fields()`` (and, if it needs past bars, ``hist_fields(capacity)``) into its state dtype;
2. call :func:`bar_init` from its ``init_state``;
3. call :func:`bar_step_nb` first thing in ``step_nb``, for every event::

       s, q = state[0], p[0]
       if bar_step_nb(s, ts, kind, inst, f, i, q.inst, q.bar_ns, q.source):
           hist_push_nb(s)            # only with hist_fields
           ...                        # a bar closed at this event: read s.bar_open ... s.bar_vwap

The three record-taking functions are inlined (``inline="always"``) into the caller, so each caller is
typed with its own state record: without that, numba's overload resolution compares the records of
every metric that called them and, when one record's fields are a prefix of another's, treats it as a
subtype and raises ``NumbaExperimentalFeatureWarning`` (an error under pytest).

Rules (the same in every driver):

* **Trades** (``source == 0``): bar ``k`` covers ``[k * bar_ns, (k + 1) * bar_ns)`` of event time
  (UTC-aligned; ``bar_ns`` should divide a day). Trades of instrument ``want_inst`` with a finite price
  > 0 and a finite qty > 0 are accumulated into the bar in progress (``cur_*``); other trades are
  skipped, so NaN never enters the state. A bar closes at the **first event of any kind or instrument**
  whose ``ts`` is at or after its end: time passing is enough, no later trade is needed. Only then are
  its values copied to the ``bar_*`` fields, so nothing of a bar is visible before it closes (no
  look-ahead). A trade exactly at the end belongs to the next bar.
* **Bars tape** (``source == 1``): events of kind ``bars`` of ``want_inst`` whose ``interval_ns``
  (``f7``) equals ``bar_ns``; the event time is already the bar close. Bars with a non-finite or
  non-positive open/high/low/close, a non-finite or negative volume, or a close time not after the
  previous accepted bar (duplicates) are skipped.
* **Empty intervals make no bar**: an interval without trades produces nothing, so indicators count
  bars, not clock intervals, and the first bar after a gap follows the last bar before it (its true
  range and return span the gap). This is also what the bars tape gives when it has holes.
* ``bar_vwap`` is the bar's volume-weighted price: ``sum(price * qty) / sum(qty)`` of its trades, or the
  typical price ``(high + low + close) / 3`` for tape bars, which carry no notional.

State fields (``bar_fields``)
-----------------------------
| field | dtype | meaning |
|---|---|---|
| ``cur_start`` | int64 | open time of the bar in progress (trades), -1 when none |
| ``cur_open .. cur_close`` | float64 | OHLC of the bar in progress |
| ``cur_volume``, ``cur_buy_volume``, ``cur_sell_volume`` | float64 | base qty (buy: side > 0, sell: side < 0) |
| ``cur_notional`` | float64 | sum of price * qty |
| ``bar_start``, ``bar_end`` | int64 | open and nominal close time of the last closed bar (ns UTC) |
| ``bar_open .. bar_close`` | float64 | OHLC of the last closed bar |
| ``bar_volume``, ``bar_buy_volume``, ``bar_sell_volume`` | float64 | its volumes (tape buy/sell may be NaN) |
| ``bar_vwap`` | float64 | its volume-weighted (trades) or typical (tape) price |
| ``bar_count`` | int64 | closed bars so far |

``hist_fields(capacity)`` adds ``hist`` float64[capacity, 8], a ring of the last ``capacity`` closed bars
with columns :data:`H_OPEN`, :data:`H_HIGH`, :data:`H_LOW`, :data:`H_CLOSE`, :data:`H_VOLUME`,
:data:`H_VWAP`, :data:`H_BUY`, :data:`H_SELL`; read it with :func:`hist_get_nb`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emerald.model.enums import Kind

TRADES = int(Kind.TRADES)
BARS = int(Kind.BARS)

SOURCE_TRADES = 0
SOURCE_TAPE = 1

H_OPEN, H_HIGH, H_LOW, H_CLOSE, H_VOLUME, H_VWAP, H_BUY, H_SELL = range(8)
N_HIST_COLS = 8

_NO_TIME = np.iinfo(np.int64).min


def bar_fields() -> list[tuple]:
    """dtype fields of the bar builder (see the module docstring)."""
    fields: list[tuple] = [("cur_start", np.int64)]
    fields += [(f"cur_{n}", np.float64) for n in ("open", "high", "low", "close", "volume", "buy_volume",
                                                   "sell_volume", "notional")]
    fields += [("bar_start", np.int64), ("bar_end", np.int64)]
    fields += [(f"bar_{n}", np.float64) for n in ("open", "high", "low", "close", "volume", "buy_volume",
                                                   "sell_volume", "vwap")]
    fields += [("bar_count", np.int64)]
    return fields


def hist_fields(capacity: int) -> list[tuple]:
    """dtype field of a ring holding the last ``capacity`` closed bars."""
    return [("hist", np.float64, (capacity, N_HIST_COLS))]


def bar_init(state: np.ndarray) -> None:
    """Initial values of the builder fields (call from ``init_state``)."""
    state["cur_start"] = -1
    state["bar_start"] = _NO_TIME
    state["bar_end"] = _NO_TIME
    for name in ("open", "high", "low", "close", "volume", "buy_volume", "sell_volume", "vwap"):
        state[f"bar_{name}"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def _positive(x):
    return x > 0.0 and x < np.inf


@njit(cache=True, inline="always", error_model="numpy")
def bar_step_nb(s, ts, kind, inst, f, i, want_inst, bar_ns, source):
    """Advance the builder in record ``s`` by event ``i``; True when a bar closed at this event.

    Parameters
    ----------
    s : state record (holding :func:`bar_fields`)
    ts, kind, inst, f : event arrays of :mod:`emerald.events.table`; ``i`` the event index
    want_inst : int, instrument whose bars are built
    bar_ns : int, bar length in ns
    source : int, 0 = build from trades, 1 = read the bars tape
    """
    t = ts[i]
    if source == SOURCE_TAPE:
        if kind[i] != BARS or inst[i] != want_inst or f[7, i] != bar_ns or t <= s.bar_end:
            return False
        o, h, lo, c, v = f[0, i], f[1, i], f[2, i], f[3, i], f[4, i]
        if not (_positive(o) and _positive(h) and _positive(lo) and _positive(c) and v >= 0.0 and v < np.inf):
            return False
        s.bar_start = t - bar_ns
        s.bar_end = t
        s.bar_open, s.bar_high, s.bar_low, s.bar_close, s.bar_volume = o, h, lo, c, v
        s.bar_buy_volume, s.bar_sell_volume = f[5, i], f[6, i]
        s.bar_vwap = (h + lo + c) / 3.0
        s.bar_count += 1
        return True
    closed = False
    if s.cur_start >= 0 and t >= s.cur_start + bar_ns:  # time has passed the end: the bar is final
        s.bar_start = s.cur_start
        s.bar_end = s.cur_start + bar_ns
        s.bar_open, s.bar_high, s.bar_low, s.bar_close = s.cur_open, s.cur_high, s.cur_low, s.cur_close
        s.bar_volume, s.bar_buy_volume, s.bar_sell_volume = s.cur_volume, s.cur_buy_volume, s.cur_sell_volume
        s.bar_vwap = s.cur_notional / s.cur_volume
        s.bar_count += 1
        s.cur_start = -1
        closed = True
    if kind[i] == TRADES and inst[i] == want_inst:
        price, qty, side = f[0, i], f[1, i], f[2, i]
        if _positive(price) and _positive(qty):
            if s.cur_start < 0:
                s.cur_start = t - t % bar_ns
                s.cur_open = price
                s.cur_high = price
                s.cur_low = price
                s.cur_volume = 0.0
                s.cur_buy_volume = 0.0
                s.cur_sell_volume = 0.0
                s.cur_notional = 0.0
            if price > s.cur_high:
                s.cur_high = price
            if price < s.cur_low:
                s.cur_low = price
            s.cur_close = price
            s.cur_volume += qty
            s.cur_notional += price * qty
            if side > 0:
                s.cur_buy_volume += qty
            elif side < 0:
                s.cur_sell_volume += qty
    return closed


@njit(cache=True, inline="always", error_model="numpy")
def hist_push_nb(s):
    """Append the bar just closed (``s.bar_*``) to the ``hist`` ring; call once per closed bar."""
    r = (s.bar_count - 1) % s.hist.shape[0]
    s.hist[r, H_OPEN] = s.bar_open
    s.hist[r, H_HIGH] = s.bar_high
    s.hist[r, H_LOW] = s.bar_low
    s.hist[r, H_CLOSE] = s.bar_close
    s.hist[r, H_VOLUME] = s.bar_volume
    s.hist[r, H_VWAP] = s.bar_vwap
    s.hist[r, H_BUY] = s.bar_buy_volume
    s.hist[r, H_SELL] = s.bar_sell_volume


@njit(cache=True, inline="always", error_model="numpy")
def hist_get_nb(s, back, col):
    """Column ``col`` of the closed bar ``back`` bars ago (0 = the last closed bar); the caller keeps
    ``back < min(s.bar_count, capacity)``."""
    return s.hist[(s.bar_count - 1 - back) % s.hist.shape[0], col]
