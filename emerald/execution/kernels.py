"""Execution kernels: fills, fees, slippage, funding, positions, exits, sizing and portfolio risk.

One model, used identically by every driver: the event-mode and bar-mode loops of
:mod:`emerald.backtest` call these functions inside their compiled loop, and the paper broker
calls the same step functions once per event. Everything is explicit state in numpy record
arrays; no clock, no I/O, no allocation in the step functions.

State
-----
``params``  1-element :data:`EXEC_PARAMS` record: fill model, sizing, exits, risk limits.
``insts``   one :data:`INST_DTYPE` record per instrument: kind, contract size, fees, leverage.
``pos``     one :data:`POS_DTYPE` record per instrument: the open position and its exit state.
``ords``    one :data:`ORDER_STATE` record per instrument: the working order (at most one).
``acct``    1-element :data:`ACCOUNT_DTYPE` record: cash, equity, the day's breaker state, counters.
``out``     the output buffers ``(fills, orders, trades, equity, refusals, positions, rets, decisions,
            firings)``; the drivers grow
            them when :func:`room_nb` says they are nearly full (the state is explicit, so a run
            resumes where it stopped and gives the same result as one uninterrupted run).

Accounting
----------
Money is in the account currency (the instruments' quote currency). Every instrument is
margined: ``cash`` changes by realised price PnL, fees and funding; ``equity = cash + Σ
unrealised PnL``. For spot this equals holding the coins (cash spent + value held). Linear
instruments: ``PnL = qty × (exit − entry)``; inverse perps (qty in contracts of ``contract_size``
quote units): ``PnL = qty × cs × (1/entry − 1/exit)`` coins, converted at the exit price; the
average entry of an inverse position is the harmonic mean. Fees: ``qty × price × rate`` (inverse:
``qty × cs × rate``). Funding at each settlement: ``qty × mark × rate`` (inverse ``qty × cs × rate``)
paid by longs when the rate is positive, received when negative; shorts the mirror.

Fill model (the assumptions listed in every report)
---------------------------------------------------
* An order decided at event time ``t`` becomes eligible at ``t + latency`` and fills at the first
  event of its instrument strictly after that time that carries a tradable price: a trade (its
  price), a quote or book snapshot (the touch: ask to buy, bid to sell; optionally walking the
  top ``book_levels`` levels of a book snapshot for the order's size), or a bar (its open when the
  bar opened at or after the eligible time, else its close). Never a price seen at or before the
  decision.
* Market orders pay the taker fee and ``slippage_bps`` against that reference price; limit orders
  fill at their limit price, maker fee, when a trade goes strictly through it (bars: when the bar's
  range does), never against the touch they were placed at.
* Entry orders expire ``expiry_ns`` after their signal and, with ``decay`` on, fill
  ``qty × (1 − age / expiry)``. Exit orders never expire.
* Event mode: stops (initial, trailing, ATR), adverse-move counts, cascade reversal, maximum hold
  and the forex session close are checked at every price event of the instrument; the first that
  holds (priority: cascade reversal > adverse moves > trailing stop > initial stop > max hold >
  session close) sends a market exit, which fills like any market order (latency, slippage).
  Bar mode: stops are checked against each bar's open, low and high with the trailing level of the
  bars before it, and fill at the stop level (at the open when the bar opens through it), like
  resting stop orders; the trailing level then moves with the bar's high (longs) or low (shorts).
* Not modelled: queue position and partial fills of limit orders, market impact beyond the
  walked book levels, borrow costs of short spot (refused unless allowed), forex swaps, venue
  outages; funding is settled exactly at the tape's settlement events.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

DAY_NS = 86_400_000_000_000
NAN = math.nan

# ------------------------------------------------------------------------------------ codes
SPOT, LINEAR, INVERSE, FOREX = 0, 1, 2, 3

# actions of an intent
HOLD, LONG, SHORT, CLOSE = 0, 1, 2, 3
# order types
MARKET, LIMIT = 0, 1
# sizing modes
SIZE_FRACTION, SIZE_RISK, SIZE_ALL_CASH, SIZE_QTY = 0, 1, 2, 3
# order status
ST_FILLED, ST_EXPIRED, ST_CANCELLED = 0, 1, 2

REASONS = (
    "signal",            # 0 the strategy's decision
    "stop",              # 1 initial / ATR stop
    "trailing_stop",     # 2
    "cascade_reversal",  # 3
    "adverse_moves",     # 4
    "max_hold",          # 5
    "session_close",     # 6 forex: Friday 23:30 UTC
    "breaker_worst_half",  # 7 daily drawdown >= level 2
    "breaker_close_all",   # 8 daily drawdown >= level 3 or 4
    "liquidation",       # 9 isolated margin exhausted
    "end_of_run",        # 10 positions open at the end are marked, not closed (used for refusals only)
    "notional_below_min",  # 11
    "notional_above_max",  # 12
    "stop_too_close",    # 13
    "stop_too_far",      # 14
    "max_positions",     # 15
    "gross_exposure",    # 16
    "correlated_exposure",  # 17
    "breaker_halt",      # 18
    "leverage_cap",      # 19
    "spot_short",        # 20
    "expired",           # 21
    "no_price",          # 22
    "breaker_alert",     # 23 daily drawdown >= level 1 (recorded, nothing closed)
    "order_pending",     # 24 a working order on the instrument already
    "zero_size",         # 25
    "market_closed",     # 26 forex weekend
    "health_low",        # 27 portfolio health below the entry floor
)
R_SIGNAL, R_STOP, R_TRAIL, R_CASCADE, R_ADVERSE, R_MAX_HOLD, R_SESSION = 0, 1, 2, 3, 4, 5, 6
R_BRK_HALF, R_BRK_ALL, R_LIQ, R_END = 7, 8, 9, 10
R_MIN_NOTIONAL, R_MAX_NOTIONAL, R_STOP_CLOSE, R_STOP_FAR, R_MAX_POS, R_GROSS, R_CORR = 11, 12, 13, 14, 15, 16, 17
R_HALT, R_LEVERAGE, R_SPOT_SHORT, R_EXPIRED, R_NO_PRICE, R_ALERT, R_PENDING, R_ZERO = 18, 19, 20, 21, 22, 23, 24, 25
R_CLOSED_MKT, R_HEALTH = 26, 27

# ------------------------------------------------------------------------------------ dtypes
EXEC_PARAMS = np.dtype([
    ("latency_ns", np.int64),
    ("slippage_bps", np.float64),
    ("book_levels", np.int64),        # 0: fill at the touch; k: walk the top k levels of a book snapshot
    ("sizing", np.int64),             # SIZE_* mode
    ("fraction", np.float64),         # SIZE_FRACTION: notional = fraction x equity (x intent size)
    ("risk_fraction", np.float64),    # SIZE_RISK: equity share lost at the stop
    ("conf_low", np.float64), ("conf_med", np.float64), ("conf_high", np.float64),
    ("min_notional", np.float64),
    ("max_notional_frac", np.float64),  # of equity
    ("min_stop_pct", np.float64), ("max_stop_pct", np.float64),
    ("stop_pct", np.float64),         # default initial stop distance, %; NaN: none
    ("trail_pct", np.float64),        # trailing stop, %; NaN: off
    ("atr_low", np.float64), ("atr_med", np.float64), ("atr_high", np.float64),
    ("adverse_exits", np.bool_),
    ("adverse_window_ns", np.int64),
    ("cascade_long_col", np.int64),   # signal column that flags a reversal against longs; -1: none
    ("cascade_short_col", np.int64),
    ("expiry_ns", np.int64),
    ("decay", np.bool_),
    ("max_hold_ns", np.int64),        # 0: off
    ("session_close", np.bool_),      # forex: close Friday 23:30 UTC, no entries until Sunday 22:00
    ("max_positions", np.int64),
    ("max_gross", np.float64),        # gross notional / equity
    ("corr_limit", np.float64),       # notional of positions correlated > corr_threshold, / equity; inf: off
    ("corr_threshold", np.float64),
    ("corr_window", np.int64),        # equity samples in the rolling correlation
    ("breaker", np.bool_),
    ("dd_alert", np.float64), ("dd_half", np.float64), ("dd_all", np.float64), ("dd_halt", np.float64),
    ("health_floor", np.float64),     # no new entries below this portfolio health score; 0: off
    ("allow_spot_short", np.bool_),
    ("equity_interval_ns", np.int64),
    ("initial_equity", np.float64),
], align=True)

INST_DTYPE = np.dtype([
    ("kind", np.int64),
    ("contract_size", np.float64),
    ("maker_fee", np.float64),   # fraction (bps / 1e4)
    ("taker_fee", np.float64),
    ("leverage", np.float64),    # maximum leverage of a position on it (isolated margin = notional / leverage)
    ("maint_margin", np.float64),  # maintenance margin rate
], align=True)

POS_DTYPE = np.dtype([
    ("qty", np.float64),       # signed; base units (contracts for inverse)
    ("avg", np.float64),       # average entry (harmonic for inverse)
    ("entry_ts", np.int64),
    ("entry_px", np.float64),  # first fill of the round trip
    ("trade_qty", np.float64),  # largest |qty| of the round trip
    ("direction", np.int64),
    ("stop", np.float64),      # initial / ATR stop level; NaN: none
    ("trail", np.float64),     # trailing distance, fraction; NaN: off
    ("best", np.float64),      # best price since entry (trailing anchor)
    ("risk", np.float64),      # money lost at the initial stop (for R multiples)
    ("margin", np.float64),    # isolated margin
    ("last", np.float64),      # last price (marks the position)
    ("bid", np.float64), ("ask", np.float64),
    ("mark", np.float64),      # mark price from `prices` events; NaN: use last
    ("upnl", np.float64),
    ("fees", np.float64), ("funding", np.float64), ("slip", np.float64), ("price_pnl", np.float64),
    ("signal", np.int64),
    ("trade_id", np.int64),
    ("prev_tick", np.float64),
    ("adv_ts", np.int64, (8,)),  # times of the current run of adverse ticks (ring)
    ("adv_n", np.int64),
    ("ret_last", np.float64),  # price at the previous equity sample (for rolling correlation)
    ("mem", np.float64, (8,)),  # the strategy's own per-instrument state (its decide kernel documents the slots)
], align=True)

ORDER_STATE = np.dtype([
    ("active", np.bool_),
    ("order_id", np.int64),
    ("side", np.int64),
    ("qty", np.float64),        # inf: resolve at fill (all cash / whole position)
    ("otype", np.int64),
    ("limit", np.float64),
    ("ts_decision", np.int64), ("ts_eligible", np.int64), ("signal_ts", np.int64),
    ("reason", np.int64),
    ("exit", np.bool_),         # closes the position (size resolved at fill)
    ("stop", np.float64), ("trail", np.float64), ("risk_per_unit", np.float64),
    ("signal", np.int64),
    ("row", np.int64),          # row in the orders output
], align=True)

ACCOUNT_DTYPE = np.dtype([
    ("cash", np.float64),
    ("equity", np.float64),
    ("upnl", np.float64),
    ("gross", np.float64),
    ("day", np.int64),
    ("day_start", np.float64),
    ("breaker", np.int64),      # highest level reached today (0..4)
    ("halted", np.bool_),
    ("next_sample", np.int64),
    ("n_open", np.int64),
    ("order_seq", np.int64), ("fill_seq", np.int64), ("trade_seq", np.int64),
    ("n_fills", np.int64), ("n_orders", np.int64), ("n_trades", np.int64), ("n_equity", np.int64),
    ("n_refusals", np.int64),
    ("n_samples", np.int64),    # equity samples taken (rolling-correlation ring position)
    ("n_decisions", np.int64),
    ("mem", np.float64, (32,)),  # the strategy's own state and counters (e.g. rejections per filter level)
    ("fire", np.float64, (16,)),  # last direction of each scored trigger (signal firings are its changes)
    ("n_firings", np.int64),
    ("n_events", np.int64),     # events applied so far (the stream position; firings carry it)
    ("ts", np.int64),           # time of the last event seen
], align=True)

FILL_DTYPE = np.dtype([
    ("fill_id", np.int64), ("order_id", np.int64), ("ts", np.int64), ("inst", np.int64), ("side", np.int64),
    ("qty", np.float64), ("price", np.float64), ("fee", np.float64), ("maker", np.bool_), ("slippage", np.float64),
    ("reason", np.int64),
], align=True)

ORDER_DTYPE = np.dtype([
    ("order_id", np.int64), ("ts_decision", np.int64), ("ts_eligible", np.int64), ("inst", np.int64),
    ("side", np.int64), ("qty", np.float64), ("otype", np.int64), ("limit_px", np.float64), ("status", np.int64),
    ("reason", np.int64), ("ts_done", np.int64),
], align=True)

TRADE_DTYPE = np.dtype([
    ("trade_id", np.int64), ("inst", np.int64), ("direction", np.int64), ("entry_ts", np.int64),
    ("exit_ts", np.int64), ("entry_px", np.float64), ("exit_px", np.float64), ("qty", np.float64),
    ("pnl_price", np.float64), ("fees", np.float64), ("funding", np.float64), ("slippage", np.float64),
    ("pnl", np.float64), ("notional", np.float64), ("risk", np.float64), ("exit_reason", np.int64),
    ("signal", np.int64),
], align=True)

EQUITY_DTYPE = np.dtype([
    ("ts", np.int64), ("equity", np.float64), ("cash", np.float64), ("unrealized", np.float64),
    ("gross_exposure", np.float64), ("net_exposure", np.float64), ("positions", np.int64), ("health", np.float64),
], align=True)

REFUSAL_DTYPE = np.dtype([
    ("ts", np.int64), ("inst", np.int64), ("action", np.int64), ("reason", np.int64), ("value", np.float64),
    ("count", np.int64), ("last_ts", np.int64),
], align=True)

INTENT_DTYPE = np.dtype([
    ("inst", np.int64),        # instrument index
    ("action", np.int64),      # HOLD / LONG / SHORT / CLOSE
    ("size", np.float64),      # multiplier of the sizing rule (1.0 = as configured); SIZE_QTY: quantity
    ("stop", np.float64),      # stop level; NaN: the configured rules
    ("atr", np.float64),       # ATR for conviction-scaled stops; NaN: none
    ("conviction", np.int64),  # 0 low, 1 medium, 2 high; -1: none (multiplier 1)
    ("otype", np.int64),
    ("limit", np.float64),
    ("signal", np.int64),      # index of the strategy signal that fired (attribution)
    ("reason", np.int64),      # for CLOSE: the exit reason code
    ("score", np.float64),     # the decision's score (weighted-score strategies), NaN otherwise
    ("contrib", np.float64, (16,)),  # per-signal contributions to the score (first n_signals used)
], align=True)

N_CONTRIB = 16
FIRING_DTYPE = np.dtype([
    ("ts", np.int64), ("event", np.int64), ("inst", np.int64), ("trigger", np.int64), ("direction", np.int64),
    ("value", np.float64), ("threshold", np.float64), ("weight", np.float64), ("score_long", np.float64),
    ("score_short", np.float64),
], align=True)
DECISION_DTYPE = np.dtype([
    ("ts", np.int64), ("inst", np.int64), ("action", np.int64), ("order_id", np.int64), ("score", np.float64),
    ("price", np.float64), ("stop", np.float64), ("signal", np.int64), ("contrib", np.float64, (16,)),
    ("event", np.int64),
], align=True)

N_OUT_MARGIN = 16  # rows per instrument an event may write at most (drivers keep this much room)


def new_intents(n: int) -> np.ndarray:
    it = np.zeros(n, INTENT_DTYPE)
    it["inst"] = -1
    it["score"] = np.nan
    it["stop"] = np.nan
    it["atr"] = np.nan
    it["limit"] = np.nan
    it["conviction"] = -1
    it["size"] = 1.0
    return it


# ------------------------------------------------------------------------------------ helpers


@njit(cache=True, inline="always")
def weekday_nb(ts):
    """0 = Monday ... 6 = Sunday (UTC). 1970-01-01 was a Thursday."""
    return (ts // DAY_NS + 3) % 7


@njit(cache=True, inline="always")
def forex_closed_nb(ts):
    """Forex week: closed from Friday 23:30 UTC to Sunday 22:00 UTC."""
    wd = weekday_nb(ts)
    tod = ts % DAY_NS
    if wd == 4:
        return tod >= 84_600_000_000_000  # 23:30
    if wd == 5:
        return True
    if wd == 6:
        return tod < 79_200_000_000_000  # 22:00
    return False


@njit(cache=True, inline="always")
def upnl_nb(kind, cs, qty, avg, px):
    if qty == 0.0 or not (px > 0.0):
        return 0.0
    if kind == INVERSE:
        return qty * cs * (1.0 / avg - 1.0 / px) * px
    return qty * (px - avg)


@njit(cache=True, inline="always")
def notional_nb(kind, cs, qty, px):
    if kind == INVERSE:
        return abs(qty) * cs
    return abs(qty) * px


@njit(cache=True, inline="always")
def fee_nb(kind, cs, qty, px, rate):
    if kind == INVERSE:
        return qty * cs * rate
    return qty * px * rate


@njit(cache=True, inline="always")
def mark_of(p):
    return p.mark if p.mark > 0.0 else p.last


@njit(cache=True)
def room_nb(acct, out, n_inst):
    """True when every output buffer has room for one more event's worth of rows."""
    need = N_OUT_MARGIN * (n_inst + 1)
    a = acct[0]
    return (a.n_fills + need <= out[0].shape[0] and a.n_orders + need <= out[1].shape[0]
            and a.n_trades + need <= out[2].shape[0] and a.n_equity + need <= out[3].shape[0]
            and a.n_refusals + need <= out[4].shape[0] and a.n_decisions + need <= out[7].shape[0]
            and a.n_firings + need <= out[8].shape[0])


@njit(cache=True)
def refuse_nb(acct, out, ts, inst, action, reason, value):
    """Record a refused or forced action. A repeat of the previous row (same instrument, action and
    reason: a strategy asking again while halted) increments that row's ``count`` and ``last_ts``."""
    r = out[4]
    k = acct[0].n_refusals
    if k > 0 and r[k - 1].inst == inst and r[k - 1].action == action and r[k - 1].reason == reason:
        r[k - 1].count += 1
        r[k - 1].last_ts = ts
        return
    r[k].count = 1
    r[k].last_ts = ts
    r[k].ts = ts
    r[k].inst = inst
    r[k].action = action
    r[k].reason = reason
    r[k].value = value
    acct[0].n_refusals = k + 1


@njit(cache=True)
def revalue_nb(insts, pos, acct, j, px):
    """Mark instrument ``j`` at ``px`` and keep the account's unrealised PnL, gross exposure and
    equity current (O(1): only ``j`` changes)."""
    p = pos[j]
    if not (px > 0.0):
        return
    old = p.last
    p.last = px
    if p.qty != 0.0:
        ins = insts[j]
        new = upnl_nb(ins.kind, ins.contract_size, p.qty, p.avg, px)
        a = acct[0]
        a.upnl += new - p.upnl
        if ins.kind != INVERSE and old > 0.0:
            a.gross += abs(p.qty) * (px - old)
        p.upnl = new
        a.equity = a.cash + a.upnl


@njit(cache=True)
def recompute_account_nb(insts, pos, acct):
    """Exact unrealised PnL, gross exposure and equity from the positions (after fills)."""
    a = acct[0]
    u = 0.0
    g = 0.0
    n = 0
    for j in range(pos.shape[0]):
        p = pos[j]
        if p.qty != 0.0:
            ins = insts[j]
            p.upnl = upnl_nb(ins.kind, ins.contract_size, p.qty, p.avg, p.last)
            u += p.upnl
            g += notional_nb(ins.kind, ins.contract_size, p.qty, p.last)
            n += 1
        else:
            p.upnl = 0.0
    a.upnl = u
    a.gross = g
    a.n_open = n
    a.equity = a.cash + u


# ------------------------------------------------------------------------------------ fills


@njit(cache=True)
def _close_trade_nb(pos, acct, out, j, ts, px, reason, kind, cs):
    p = pos[j]
    t = out[2]
    k = acct[0].n_trades
    t[k].trade_id = p.trade_id
    t[k].inst = j
    t[k].direction = p.direction
    t[k].entry_ts = p.entry_ts
    t[k].exit_ts = ts
    t[k].entry_px = p.entry_px
    t[k].exit_px = px
    t[k].qty = p.trade_qty
    t[k].pnl_price = p.price_pnl
    t[k].fees = p.fees
    t[k].funding = p.funding
    t[k].slippage = p.slip
    t[k].pnl = p.price_pnl - p.fees - p.funding
    t[k].notional = notional_nb(kind, cs, p.trade_qty, p.entry_px)
    t[k].risk = p.risk
    t[k].exit_reason = reason
    t[k].signal = p.signal
    acct[0].n_trades = k + 1


@njit(cache=True)
def apply_fill_nb(insts, pos, acct, out, j, ts, side, qty, px, fee_rate, maker, slip_cost, reason, order_id,
                  stop, trail, signal):
    """Book a fill of ``qty`` (> 0) on side ``side`` at ``px``: fees, realised PnL, round trips
    (a fill through zero closes the trade and opens the opposite one with the remainder)."""
    ins = insts[j]
    p = pos[j]
    a = acct[0]
    kind, cs = ins.kind, ins.contract_size
    fee = fee_nb(kind, cs, qty, px, fee_rate)
    f = out[0]
    k = a.n_fills
    f[k].fill_id = a.fill_seq
    f[k].order_id = order_id
    f[k].ts = ts
    f[k].inst = j
    f[k].side = side
    f[k].qty = qty
    f[k].price = px
    f[k].fee = fee
    f[k].maker = maker
    f[k].slippage = slip_cost
    f[k].reason = reason
    a.n_fills = k + 1
    a.fill_seq += 1
    a.cash -= fee
    signed = side * qty
    remaining = qty
    if p.qty != 0.0 and (p.qty > 0.0) != (signed > 0.0):
        close_q = min(qty, abs(p.qty))
        share = close_q / qty
        realised = upnl_nb(kind, cs, -side * close_q, p.avg, px)
        a.cash += realised
        p.price_pnl += realised
        p.fees += fee * share
        p.slip += slip_cost * share
        p.qty += side * close_q
        if abs(p.qty) <= 1e-12 * max(1.0, close_q):
            p.qty = 0.0
            _close_trade_nb(pos, acct, out, j, ts, px, reason, kind, cs)
            p.avg = 0.0
        remaining = qty - close_q
        fee = fee * (1.0 - share)
        slip_cost = slip_cost * (1.0 - share)
    if remaining > 0.0:
        if p.qty == 0.0:
            p.entry_ts = ts
            p.entry_px = px
            p.direction = side
            p.trade_qty = 0.0
            p.fees = 0.0
            p.funding = 0.0
            p.slip = 0.0
            p.price_pnl = 0.0
            p.trade_id = a.trade_seq
            a.trade_seq += 1
            p.signal = signal
            p.best = px
            p.adv_n = 0
            p.prev_tick = px
            p.stop = stop
            p.trail = trail
            p.risk = abs(px - stop) * remaining if stop == stop else NAN
            if kind == INVERSE and stop == stop:
                p.risk = remaining * cs * abs(1.0 / px - 1.0 / stop) * px
            lev = ins.leverage if ins.leverage > 0 else 1.0
            p.margin = 0.0
            p.avg = px
            p.qty = side * remaining
            p.margin = notional_nb(kind, cs, remaining, px) / lev
        else:
            old = abs(p.qty)
            if kind == INVERSE:
                p.avg = (old + remaining) / (old / p.avg + remaining / px)
            else:
                p.avg = (p.avg * old + px * remaining) / (old + remaining)
            p.qty += side * remaining
            lev = ins.leverage if ins.leverage > 0 else 1.0
            p.margin += notional_nb(kind, cs, remaining, px) / lev
        p.fees += fee
        p.slip += slip_cost
        if abs(p.qty) > p.trade_qty:
            p.trade_qty = abs(p.qty)
    p.last = px
    recompute_account_nb(insts, pos, acct)
    pr = out[5]  # positions after each fill: ts, inst, qty, avg
    pr[k, 0] = ts
    pr[k, 1] = j
    pr[k, 2] = p.qty
    pr[k, 3] = p.avg


@njit(cache=True)
def settle_funding_nb(insts, pos, acct, j, rate):
    """Funding settlement on instrument ``j`` at ``rate`` (positive: longs pay shorts)."""
    p = pos[j]
    if p.qty == 0.0 or rate != rate:
        return 0.0
    ins = insts[j]
    if ins.kind == INVERSE:
        pay = p.qty * ins.contract_size * rate
    else:
        pay = p.qty * mark_of(p) * rate
    p.funding += pay
    acct[0].cash -= pay
    acct[0].equity = acct[0].cash + acct[0].upnl
    return pay


# ------------------------------------------------------------------------------------ orders


@njit(cache=True)
def _order_row_nb(acct, out, o, j):
    r = out[1]
    k = acct[0].n_orders
    r[k].order_id = o.order_id
    r[k].ts_decision = o.ts_decision
    r[k].ts_eligible = o.ts_eligible
    r[k].inst = j
    r[k].side = o.side
    r[k].qty = o.qty
    r[k].otype = o.otype
    r[k].limit_px = o.limit
    r[k].status = -1
    r[k].reason = o.reason
    r[k].ts_done = -1
    acct[0].n_orders = k + 1
    return k


@njit(cache=True)
def done_order_nb(out, o, status, ts, qty):
    r = out[1]
    r[o.row].status = status
    r[o.row].ts_done = ts
    if qty == qty:
        r[o.row].qty = qty
    o.active = False


@njit(cache=True)
def place_nb(ords, acct, out, j, ts, side, qty, otype, limit, reason, is_exit, stop, trail, signal, latency):
    """Start a working order on instrument ``j`` (the previous one is cancelled)."""
    o = ords[j]
    if o.active:
        done_order_nb(out, o, ST_CANCELLED, ts, NAN)
    a = acct[0]
    o.active = True
    o.order_id = a.order_seq
    a.order_seq += 1
    o.side = side
    o.qty = qty
    o.otype = otype
    o.limit = limit
    o.ts_decision = ts
    o.ts_eligible = ts + latency
    o.signal_ts = ts
    o.reason = reason
    o.exit = is_exit
    o.stop = stop
    o.trail = trail
    o.signal = signal
    o.row = _order_row_nb(acct, out, o, j)


@njit(cache=True)
def exit_market_nb(pos, ords, acct, out, params, j, ts, reason):
    """Send a market order that closes instrument ``j``'s position (unless one is working)."""
    o = ords[j]
    if o.active and o.exit:
        return
    p = pos[j]
    if p.qty == 0.0:
        return
    side = -1 if p.qty > 0 else 1
    place_nb(ords, acct, out, j, ts, side, math.inf, MARKET, NAN, reason, True, NAN, NAN, -1, params[0].latency_ns)


@njit(cache=True)
def book_walk_nb(side, qty, bid_px, bid_qty, ask_px, ask_qty, row, levels):
    """Average price of taking ``qty`` from the top ``levels`` of one book snapshot; the rest at the
    last level walked. NaN without a touch."""
    if side > 0:
        px_arr, q_arr = ask_px, ask_qty
    else:
        px_arr, q_arr = bid_px, bid_qty
    left = qty
    cost = 0.0
    last = NAN
    for k in range(min(levels, px_arr.shape[1])):
        lp = px_arr[row, k]
        lq = q_arr[row, k]
        if not (lp > 0.0) or not (lq > 0.0):
            break
        take = min(left, lq)
        cost += take * lp
        left -= take
        last = lp
        if left <= 0.0:
            break
    if last != last:
        return NAN
    if left > 0.0:
        cost += left * last
    return cost / qty


@njit(cache=True)
def resolve_qty_nb(insts, pos, acct, params, j, o, px, fee_rate):
    """Quantity of a working order at fill time: whole position for exits, all free cash for
    SIZE_ALL_CASH entries (minus the fee; a reversal: the position plus what the equity left after
    closing it at ``px``, less the closing fee, buys), the planned size otherwise, decayed with the
    signal's age."""
    p = pos[j]
    if o.exit:
        return abs(p.qty)
    q = o.qty
    if q == math.inf:
        ins = insts[j]
        free = acct[0].equity
        reverse = p.qty != 0.0 and (p.qty > 0) != (o.side > 0)
        if reverse:
            free += (upnl_nb(ins.kind, ins.contract_size, p.qty, p.avg, px) - p.upnl
                     - fee_nb(ins.kind, ins.contract_size, abs(p.qty), px, fee_rate))
        if ins.kind == INVERSE:
            q = free / (ins.contract_size * (1.0 + fee_rate))
        else:
            q = free / (px * (1.0 + fee_rate))
        if reverse:
            q += abs(p.qty)
    return q


@njit(cache=True)
def try_fill_nb(insts, pos, ords, acct, out, params, j, ts, ref_buy, ref_sell, trade_px, is_bar, force,
                bar_low, bar_high, books_ok, bid_px, bid_qty, ask_px, ask_qty, row):
    """Fill instrument ``j``'s working order at this price event if it is eligible.

    ``ref_buy`` / ``ref_sell``: the price a market buy / sell takes here (trade price, touch, or bar
    open/close); ``trade_px``: the trade price (NaN when the event is no trade) for limit orders.
    An event is eligible when it comes strictly after the decision and at or after
    ``decision + latency``; ``force``: the caller checked (a bar's open, which is the first price
    after the instant the bar opened).
    """
    o = ords[j]
    if not o.active or (not force and (ts <= o.ts_decision or ts < o.ts_eligible)):
        return False
    pr = params[0]
    ins = insts[j]
    age = ts - o.signal_ts
    if not o.exit and pr.expiry_ns > 0 and age > pr.expiry_ns:
        done_order_nb(out, o, ST_EXPIRED, ts, NAN)
        refuse_nb(acct, out, ts, j, o.side, R_EXPIRED, age / 1e9)
        return False
    if o.otype == LIMIT:
        if is_bar:
            hit = (o.side > 0 and bar_low < o.limit) or (o.side < 0 and bar_high > o.limit)
        else:
            hit = trade_px == trade_px and ((o.side > 0 and trade_px < o.limit) or (o.side < 0 and trade_px > o.limit))
        if not hit:
            return False
        px = o.limit
        fee_rate = ins.maker_fee
        q = resolve_qty_nb(insts, pos, acct, params, j, o, px, fee_rate)
        maker = True
        slip = 0.0
    else:
        ref = ref_buy if o.side > 0 else ref_sell
        if not (ref > 0.0):
            return False
        fee_rate = ins.taker_fee
        q = resolve_qty_nb(insts, pos, acct, params, j, o, ref * (1.0 + o.side * pr.slippage_bps * 1e-4), fee_rate)
        if books_ok and pr.book_levels > 0 and q > 0.0 and q < math.inf:
            walked = book_walk_nb(o.side, q, bid_px, bid_qty, ask_px, ask_qty, row, pr.book_levels)
            if walked == walked:
                ref = walked
        px = ref * (1.0 + o.side * pr.slippage_bps * 1e-4)
        maker = False
        slip = abs(px - ref) * q if ins.kind != INVERSE else abs(1.0 / ref - 1.0 / px) * q * ins.contract_size * px
    if not o.exit and pr.decay and pr.expiry_ns > 0 and age > 0:
        q *= max(0.0, 1.0 - age / pr.expiry_ns)
    if not (q > 0.0):
        done_order_nb(out, o, ST_CANCELLED, ts, 0.0)
        if not o.exit:  # an exit whose position is already gone (stopped, liquidated) just lapses
            refuse_nb(acct, out, ts, j, o.side, R_ZERO, q)
        return False
    stop = o.stop
    done_order_nb(out, o, ST_FILLED, ts, q)
    apply_fill_nb(insts, pos, acct, out, j, ts, o.side, q, px, fee_rate, maker, slip, o.reason, o.order_id, stop,
                  o.trail, o.signal)
    return True


# ------------------------------------------------------------------------------------ exits


@njit(cache=True)
def adverse_threshold_nb(profit_pct):
    """Consecutive adverse moves that end a trade, by its current profit (%): 5 below 0.3 %,
    3 below 1 %, 2 below 2 %, 1 above (algo-engine-design.md 2.6.2)."""
    if profit_pct < 0.3:
        return 5
    if profit_pct < 1.0:
        return 3
    if profit_pct < 2.0:
        return 2
    return 1


@njit(cache=True)
def track_adverse_nb(p, ts, px, window_ns):
    """Count consecutive tick-to-tick moves against the position within ``window_ns`` (a move in
    favour or an unchanged price ends the run). Returns the count."""
    prev = p.prev_tick
    p.prev_tick = px
    if not (prev > 0.0) or p.qty == 0.0:
        return 0
    against = (px < prev) if p.qty > 0 else (px > prev)
    if against:
        p.adv_ts[p.adv_n % 8] = ts
        p.adv_n += 1
    else:
        p.adv_n = 0
        return 0
    n = 0
    for k in range(min(p.adv_n, 8)):
        if p.adv_ts[(p.adv_n - 1 - k) % 8] >= ts - window_ns:
            n += 1
        else:
            break
    return n


@njit(cache=True)
def stop_level_nb(p):
    """The effective stop: the tighter of the initial stop and the trailing level (NaN: none)."""
    lvl = p.stop
    if p.trail == p.trail and p.best > 0.0:
        t = p.best * (1.0 - p.trail) if p.qty > 0 else p.best * (1.0 + p.trail)
        if lvl != lvl:
            lvl = t
        elif p.qty > 0:
            lvl = max(lvl, t)
        else:
            lvl = min(lvl, t)
    return lvl


@njit(cache=True)
def check_exits_nb(insts, pos, ords, acct, out, params, j, ts, px, sig, has_sig, is_tick):
    """Event mode: decide whether instrument ``j``'s position exits at this price event, by the
    priority cascade reversal > adverse moves > trailing stop > initial stop > max hold > session
    close. Sends a market exit and returns its reason code, or -1."""
    p = pos[j]
    if p.qty == 0.0 or not (px > 0.0):
        return -1
    pr = params[0]
    reason = -1
    if has_sig:
        c = pr.cascade_long_col if p.qty > 0 else pr.cascade_short_col
        if c >= 0 and sig[c] > 0.0:
            reason = R_CASCADE
    if is_tick and pr.adverse_exits:
        n = track_adverse_nb(p, ts, px, pr.adverse_window_ns)
        if reason < 0:
            profit = (px / p.avg - 1.0) * 100.0 if p.qty > 0 else (1.0 - px / p.avg) * 100.0
            if n >= adverse_threshold_nb(profit):
                reason = R_ADVERSE
    if reason < 0:
        trail_lvl = NAN
        if p.trail == p.trail and p.best > 0.0:
            trail_lvl = p.best * (1.0 - p.trail) if p.qty > 0 else p.best * (1.0 + p.trail)
        if trail_lvl == trail_lvl and ((p.qty > 0 and px <= trail_lvl) or (p.qty < 0 and px >= trail_lvl)):
            reason = R_TRAIL
        elif p.stop == p.stop and ((p.qty > 0 and px <= p.stop) or (p.qty < 0 and px >= p.stop)):
            reason = R_STOP
        elif pr.max_hold_ns > 0 and ts - p.entry_ts >= pr.max_hold_ns:
            reason = R_MAX_HOLD
        elif pr.session_close and insts[j].kind == FOREX and forex_closed_nb(ts):
            reason = R_SESSION
    # the trailing anchor moves after the check (only tightens)
    if p.qty > 0 and px > p.best:
        p.best = px
    elif p.qty < 0 and px < p.best:
        p.best = px
    if reason >= 0:
        exit_market_nb(pos, ords, acct, out, params, j, ts, reason)
    return reason


@njit(cache=True)
def liquidation_due_nb(insts, pos, j, px):
    """Isolated margin: True when margin + unrealised PnL of instrument ``j``'s position at ``px``
    has fallen to the maintenance margin (the test of :func:`check_liquidation_nb`, without ``out``,
    so the bar loop calls it every bar at no cost)."""
    p = pos[j]
    if p.qty == 0.0 or not (px > 0.0):
        return False
    ins = insts[j]
    if ins.kind == SPOT:
        return False
    return p.margin + p.upnl <= ins.maint_margin * notional_nb(ins.kind, ins.contract_size, p.qty, px)


@njit(cache=True)
def check_liquidation_nb(insts, pos, acct, out, j, ts, px):
    """Isolated margin: close at ``px`` when margin + unrealised PnL falls to the maintenance margin."""
    if not liquidation_due_nb(insts, pos, j, px):
        return False
    p = pos[j]
    ins = insts[j]
    side = -1 if p.qty > 0 else 1
    apply_fill_nb(insts, pos, acct, out, j, ts, side, abs(p.qty), px, ins.taker_fee, False, 0.0, R_LIQ, -1, NAN,
                  NAN, -1)
    return True


# ------------------------------------------------------------------------------------ risk


@njit(cache=True, inline="always")  # inlined: the bar loop computes it every bar
def health_nb(insts, pos, acct, params, ts):
    """Portfolio health score 0-100 (algo-engine-design.md, Portfolio Health Scoring), from what
    the engine knows: unrealised PnL share of equity (30: -5 % -> 0, +5 % -> 30), today's drawdown
    against the 00:00 UTC equity (25: 0 % -> 25, the halt level -> 0), concentration (20: minus 5
    per open position beyond 3), hold time (15: minus 5 per position held over 24 h), gross exposure
    (10: 0 x -> 10, the max-gross limit -> 0)."""
    a = acct[0]
    pr = params[0]
    eq = a.equity if a.equity > 0 else 1e-12
    u = a.upnl / eq * 100.0
    s_u = min(30.0, max(0.0, (u + 5.0) * 3.0))
    dd = (1.0 - a.equity / a.day_start) if a.day_start > 0 else 0.0
    s_d = 25.0 * max(0.0, 1.0 - dd / pr.dd_halt) if pr.dd_halt > 0 else 25.0
    s_c = max(0.0, 20.0 - 5.0 * max(0, a.n_open - 3))
    old = 0
    for j in range(pos.shape[0]):
        if pos[j].qty != 0.0 and ts - pos[j].entry_ts > DAY_NS:
            old += 1
    s_h = max(0.0, 15.0 - 5.0 * old)
    s_g = 10.0
    if pr.max_gross > 0 and pr.max_gross < math.inf:
        s_g = 10.0 * max(0.0, 1.0 - a.gross / eq / pr.max_gross)
    return s_u + s_d + s_c + s_h + s_g


@njit(cache=True)
def sample_rets_nb(pos, out, acct, window):
    """At each equity sample, push every instrument's return since the previous sample into the
    rolling-correlation ring ``out[6]`` (window x n_inst)."""
    rets = out[6]
    k = acct[0].n_samples % window
    for j in range(pos.shape[0]):
        p = pos[j]
        if p.ret_last > 0.0 and p.last > 0.0:
            rets[k, j] = p.last / p.ret_last - 1.0
        else:
            rets[k, j] = NAN
        if p.last > 0.0:
            p.ret_last = p.last
    acct[0].n_samples += 1


@njit(cache=True)
def corr_nb(rets, n_rows, a, b):
    """Pearson correlation of columns ``a`` and ``b`` over rows where both are finite."""
    sx = sy = sxx = syy = sxy = 0.0
    n = 0
    for k in range(n_rows):
        x = rets[k, a]
        y = rets[k, b]
        if x == x and y == y:
            sx += x
            sy += y
            sxx += x * x
            syy += y * y
            sxy += x * y
            n += 1
    if n < 3:
        return NAN
    vx = sxx - sx * sx / n
    vy = syy - sy * sy / n
    if vx <= 0.0 or vy <= 0.0:
        return NAN
    return (sxy - sx * sy / n) / math.sqrt(vx * vy)


@njit(cache=True)
def equity_sample_nb(insts, pos, acct, out, params, ts):
    equity_row_nb(insts, pos, acct, out[3], params, ts)


@njit(cache=True, inline="always")  # inlined: called every bar in bar mode
def equity_row_nb(insts, pos, acct, e, params, ts):
    """Append the account's state at ``ts`` to the equity buffer ``e`` (``out[3]``; the bar loop
    passes the buffer, not ``out``: a call that passes the tuple costs more than a bar's work)."""
    a = acct[0]
    k = a.n_equity
    net = 0.0
    for j in range(pos.shape[0]):
        p = pos[j]
        if p.qty != 0.0:
            ins = insts[j]
            net += notional_nb(ins.kind, ins.contract_size, p.qty, p.last) * (1.0 if p.qty > 0 else -1.0)
    e[k].ts = ts
    e[k].equity = a.equity
    e[k].cash = a.cash
    e[k].unrealized = a.upnl
    e[k].gross_exposure = a.gross
    e[k].net_exposure = net
    e[k].positions = a.n_open
    e[k].health = health_nb(insts, pos, acct, params, ts)
    a.n_equity = k + 1


@njit(cache=True)
def clock_nb(insts, pos, ords, acct, out, params, ts):
    """Advance the account clock to ``ts`` (before the event is applied): equity samples at each
    ``equity_interval_ns`` boundary crossed (the values as of that boundary), and the day roll at
    00:00 UTC that re-bases the drawdown breaker."""
    a = acct[0]
    pr = params[0]
    if pr.equity_interval_ns > 0 and ts >= a.next_sample:
        if a.next_sample > 0:
            boundary = ts - ts % pr.equity_interval_ns
            equity_sample_nb(insts, pos, acct, out, params, boundary)
            if pr.corr_limit < math.inf:
                sample_rets_nb(pos, out, acct, pr.corr_window)
        a.next_sample = ts - ts % pr.equity_interval_ns + pr.equity_interval_ns
    a.n_events += 1
    day = ts // DAY_NS
    if day != a.day:
        a.day = day
        a.day_start = a.equity
        a.breaker = 0
        a.halted = False
    a.ts = ts


@njit(cache=True)
def breaker_nb(insts, pos, ords, acct, out, params, ts):
    """Daily drawdown breaker against the 00:00 UTC equity: level 1 (2 %) alert, level 2 (3 %)
    close the worse half of the open positions, level 3 (4 %) close all, level 4 (5 %) close all
    and halt new entries until the next UTC day. Each level acts once a day."""
    pr = params[0]
    a = acct[0]
    if not pr.breaker or a.day_start <= 0.0:
        return
    dd = 1.0 - a.equity / a.day_start
    level = 0
    if dd >= pr.dd_halt:
        level = 4
    elif dd >= pr.dd_all:
        level = 3
    elif dd >= pr.dd_half:
        level = 2
    elif dd >= pr.dd_alert:
        level = 1
    if level <= a.breaker:
        return
    for lv in range(a.breaker + 1, level + 1):
        refuse_nb(acct, out, ts, -1, 0, R_ALERT if lv == 1 else (R_BRK_HALF if lv == 2 else (R_BRK_ALL if lv == 3
                                                                                                   else R_HALT)), dd * 100)
    a.breaker = level
    if level >= 4:
        a.halted = True
    if level >= 3:
        for j in range(pos.shape[0]):
            if pos[j].qty != 0.0:
                exit_market_nb(pos, ords, acct, out, params, j, ts, R_BRK_ALL)
    elif level == 2:
        # close the worse half (by unrealised PnL, ties by instrument order)
        n = 0
        for j in range(pos.shape[0]):
            if pos[j].qty != 0.0:
                n += 1
        to_close = (n + 1) // 2
        done = np.zeros(pos.shape[0], np.bool_)
        for _ in range(to_close):
            worst = -1
            for j in range(pos.shape[0]):
                if pos[j].qty != 0.0 and not done[j] and (worst < 0 or pos[j].upnl < pos[worst].upnl):
                    worst = j
            if worst < 0:
                break
            done[worst] = True
            exit_market_nb(pos, ords, acct, out, params, worst, ts, R_BRK_HALF)


# ------------------------------------------------------------------------------------ intents


@njit(cache=True)
def submit_nb(insts, pos, ords, acct, out, params, it, ts):
    """Turn one intent into a working order, or a refusal with its reason. Returns True when an
    order was placed."""
    j = it.inst
    if j < 0 or it.action == HOLD:
        return False
    pr = params[0]
    p = pos[j]
    ins = insts[j]
    a = acct[0]
    if it.action == CLOSE:
        if p.qty == 0.0:
            if ords[j].active:  # go flat: a working entry is cancelled
                done_order_nb(out, ords[j], ST_CANCELLED, ts, NAN)
            return False
        exit_market_nb(pos, ords, acct, out, params, j, ts, it.reason)
        return True
    side = 1 if it.action == LONG else -1
    if p.qty != 0.0 and (p.qty > 0) == (side > 0):
        return False  # already positioned this way: hold
    o = ords[j]
    if o.active and o.side == side:
        return False  # the same order is working
    if a.halted:
        refuse_nb(acct, out, ts, j, side, R_HALT, (1.0 - a.equity / a.day_start) * 100)
        return False
    if ins.kind == SPOT and side < 0 and not pr.allow_spot_short and p.qty == 0.0:
        refuse_nb(acct, out, ts, j, side, R_SPOT_SHORT, 0.0)
        return False
    if ins.kind == FOREX and pr.session_close and forex_closed_nb(ts):
        refuse_nb(acct, out, ts, j, side, R_CLOSED_MKT, 0.0)
        return False
    if pr.health_floor > 0.0:
        h = health_nb(insts, pos, acct, params, ts)
        if h < pr.health_floor:
            refuse_nb(acct, out, ts, j, side, R_HEALTH, h)
            return False
    px = p.last
    if not (px > 0.0):
        refuse_nb(acct, out, ts, j, side, R_NO_PRICE, 0.0)
        return False
    if p.qty == 0.0 and a.n_open >= pr.max_positions:
        refuse_nb(acct, out, ts, j, side, R_MAX_POS, a.n_open)
        return False
    conf = 1.0
    if it.conviction == 0:
        conf = pr.conf_low
    elif it.conviction == 1:
        conf = pr.conf_med
    elif it.conviction == 2:
        conf = pr.conf_high
    # stop level: the intent's, else conviction-scaled ATR, else the configured percentage
    stop = it.stop
    if stop != stop and it.atr == it.atr and it.atr > 0.0:
        m = pr.atr_med
        if it.conviction == 2:
            m = pr.atr_high
        elif it.conviction == 0:
            m = pr.atr_low
        stop = px - side * m * it.atr
    if stop != stop and pr.stop_pct == pr.stop_pct:
        stop = px * (1.0 - side * pr.stop_pct / 100.0)
    equity = a.equity
    cs = ins.contract_size
    if pr.sizing == SIZE_ALL_CASH:
        qty = math.inf
        notional = equity
    else:
        if pr.sizing == SIZE_RISK:
            if stop != stop:
                refuse_nb(acct, out, ts, j, side, R_STOP_FAR, NAN)
                return False
            dist = abs(px - stop) / px * 100.0
            if dist < pr.min_stop_pct:
                refuse_nb(acct, out, ts, j, side, R_STOP_CLOSE, dist)
                return False
            if dist > pr.max_stop_pct:
                refuse_nb(acct, out, ts, j, side, R_STOP_FAR, dist)
                return False
            per_unit = abs(px - stop) + 2.0 * px * ins.taker_fee  # fee-adjusted risk per unit
            notional = equity * pr.risk_fraction * conf * it.size / per_unit * px
        elif pr.sizing == SIZE_QTY:
            notional = notional_nb(ins.kind, cs, it.size, px)
        else:
            notional = equity * pr.fraction * conf * it.size
        qty = notional / cs if ins.kind == INVERSE else notional / px
        if notional < pr.min_notional:
            refuse_nb(acct, out, ts, j, side, R_MIN_NOTIONAL, notional)
            return False
        if notional > pr.max_notional_frac * equity:
            refuse_nb(acct, out, ts, j, side, R_MAX_NOTIONAL, notional)
            return False
        lev = ins.leverage if ins.leverage > 0 else 1.0
        if notional > lev * equity * (1.0 + 1e-12):
            refuse_nb(acct, out, ts, j, side, R_LEVERAGE, notional / equity)
            return False
        if a.gross + notional > pr.max_gross * equity * (1.0 + 1e-12):
            refuse_nb(acct, out, ts, j, side, R_GROSS, (a.gross + notional) / equity)
            return False
        if pr.corr_limit < math.inf:
            n_rows = min(acct[0].n_samples, pr.corr_window)
            corr_not = notional
            for k in range(pos.shape[0]):
                if k != j and pos[k].qty != 0.0:
                    c = corr_nb(out[6], n_rows, j, k)
                    same = (pos[k].qty > 0) == (side > 0)
                    if c == c and ((same and c > pr.corr_threshold) or (not same and c < -pr.corr_threshold)):
                        corr_not += notional_nb(insts[k].kind, insts[k].contract_size, pos[k].qty, pos[k].last)
            if corr_not > pr.corr_limit * equity * (1.0 + 1e-12):
                refuse_nb(acct, out, ts, j, side, R_CORR, corr_not / equity)
                return False
        if p.qty != 0.0:
            qty += abs(p.qty)  # reverse: close the open position and open the new one
    trail = pr.trail_pct / 100.0 if pr.trail_pct == pr.trail_pct else NAN
    place_nb(ords, acct, out, j, ts, side, qty, it.otype, it.limit, R_SIGNAL, False, stop, trail, it.signal,
             pr.latency_ns)
    log_decision_nb(acct, out, it, ts, side, ords[j].order_id, px, stop)
    return True


@njit(cache=True)
def log_decision_nb(acct, out, it, ts, side, order_id, px, stop):
    """One row per entry order placed: the score and its per-signal breakdown (explanations,
    attribution)."""
    d = out[7]
    k = acct[0].n_decisions
    d[k].ts = ts
    d[k].inst = it.inst
    d[k].action = side
    d[k].order_id = order_id
    d[k].score = it.score
    d[k].price = px
    d[k].stop = stop
    d[k].signal = it.signal
    d[k].event = acct[0].n_events - 1
    for m in range(N_CONTRIB):
        d[k].contrib[m] = it.contrib[m]
    acct[0].n_decisions = k + 1


@njit(cache=True)
def set_intent_nb(intents, m, inst, action, size=1.0, stop=NAN, atr=NAN, conviction=-1, otype=MARKET, limit=NAN,
                  signal=0, reason=0):
    """Write every field of intent ``m`` (the buffer is reused between events)."""
    it = intents[m]
    it.inst = inst
    it.action = action
    it.size = size
    it.stop = stop
    it.atr = atr
    it.conviction = conviction
    it.otype = otype
    it.limit = limit
    it.signal = signal
    it.reason = reason
    it.score = NAN
