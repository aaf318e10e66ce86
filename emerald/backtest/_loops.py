"""The compiled loops of the backtester and the step the stream drivers call.

This file is a template: :mod:`emerald.backtest.engine` copies it with the line marked
``# DECIDE`` replaced by the import of a strategy's decision kernel, so each strategy gets its
own compiled (and disk-cached) loop that calls its ``decide_nb`` directly. As written here it
runs the "hold" strategy (never trades), which keeps the file importable and testable.

Event mode: :func:`event_step_nb` applies one event (fills, funding, marks, exits, breaker) and
then asks the strategy; :func:`event_loop_nb` is ``for i: event_step_nb(i)``. The stream drivers
(paper broker, recorder) call ``event_step_nb`` on length-1 buffers, so both paths run the same
code. Bar mode: :func:`bar_loop_nb` applies bar after bar of every instrument of a wide OHLC
matrix (it has no step function: see its docstring).
"""

from __future__ import annotations

import math

from numba import njit

from emerald.execution.kernels import (
    DAY_NS,
    FOREX,
    R_STOP,
    R_TRAIL,
    apply_fill_nb,
    breaker_nb,
    check_exits_nb,
    check_liquidation_nb,
    clock_nb,
    equity_row_nb,
    liquidation_due_nb,
    revalue_nb,
    room_nb,
    sample_rets_nb,
    settle_funding_nb,
    submit_nb,
    try_fill_nb,
)
from emerald.strategy.builtin import hold_decide_nb as decide_nb  # DECIDE
from emerald.strategy.score import fire_nb

FUNDING, PRICES, BOOK, QUOTES, TRADES, BARS = 0, 2, 4, 5, 6, 8


@njit(cache=True)
def event_step_nb(i, ts, kind, inst, row, f, sig, decide_kinds, insts, pos, ords, acct, out, params, sparams,
                  fitted, intents, book_inst, bid_px, bid_qty, ask_px, ask_qty, trig):
    """Apply event ``i`` and run the strategy on it."""
    t = ts[i]
    j = inst[i]
    k = kind[i]
    clock_nb(insts, pos, ords, acct, out, params, t)
    p = pos[j]
    has_price = False
    px = math.nan
    ref_buy = math.nan
    ref_sell = math.nan
    trade_px = math.nan
    is_bar = False
    bar_low = math.nan
    bar_high = math.nan
    is_tick = False
    fill_ts = t
    force = False
    if k == TRADES:
        px = f[0, i]
        ref_buy = px
        ref_sell = px
        trade_px = px
        has_price = px > 0.0
        is_tick = True
    elif k == QUOTES or k == BOOK:
        b = f[0, i]
        a = f[2, i]
        if b > 0.0 and a > 0.0:
            p.bid = b
            p.ask = a
            px = 0.5 * (a + b)
            ref_buy = a
            ref_sell = b
            has_price = True
    elif k == BARS:
        o = ords[j]
        open_ts = t - int(f[7, i])
        px = f[3, i]
        ref = px
        if o.active and open_ts >= o.ts_eligible and open_ts >= o.ts_decision:
            ref = f[0, i]  # the open: the first price after the instant the bar opened
            fill_ts = open_ts
            force = True
        ref_buy = ref
        ref_sell = ref
        is_bar = True
        bar_low = f[2, i]
        bar_high = f[1, i]
        has_price = px > 0.0
    elif k == PRICES:
        if f[0, i] > 0.0:
            p.mark = f[0, i]
    elif k == FUNDING:
        if f[3, i] > 0.0:
            settle_funding_nb(insts, pos, acct, j, f[0, i])
    if has_price:
        books_ok = k == BOOK and j == book_inst
        try_fill_nb(insts, pos, ords, acct, out, params, j, fill_ts, ref_buy, ref_sell, trade_px, is_bar, force,
                    bar_low, bar_high, books_ok, bid_px, bid_qty, ask_px, ask_qty, row[i])
        revalue_nb(insts, pos, acct, j, px)
        if not check_liquidation_nb(insts, pos, acct, out, j, t, px):
            check_exits_nb(insts, pos, ords, acct, out, params, j, t, px, sig[i], sig.shape[1] > 0, is_tick)
        breaker_nb(insts, pos, ords, acct, out, params, t)
    if decide_kinds[k]:
        fire_nb(acct, out, trig, fitted, sig[i], t, acct[0].n_events - 1)
        n = decide_nb(i, ts, kind, inst, f, sig[i], pos, ords, acct, sparams, fitted, intents)
        for m in range(n):
            submit_nb(insts, pos, ords, acct, out, params, intents[m], t)


@njit(cache=True)
def event_loop_nb(start, ts, kind, inst, row, f, sig, decide_kinds, insts, pos, ords, acct, out, params, sparams,
                  fitted, intents, book_inst, bid_px, bid_qty, ask_px, ask_qty, trig):
    """``for i in range(start, n): event_step_nb(i)``; stops early (returning the next index)
    when an output buffer is nearly full, so the driver can grow it and resume."""
    n = ts.shape[0]
    n_inst = pos.shape[0]
    for i in range(start, n):
        if not room_nb(acct, out, n_inst):
            return i
        event_step_nb(i, ts, kind, inst, row, f, sig, decide_kinds, insts, pos, ords, acct, out, params, sparams,
                      fitted, intents, book_inst, bid_px, bid_qty, ask_px, ask_qty, trig)
    return n


@njit(cache=True, inline="always")
def _bar_stop_level_nb(stop, trail, best, is_long):
    """The resting stop level (the tighter of the initial stop and the trailing level from anchor
    ``best``) and its reason code; NaN when there is none."""
    lvl = stop
    reason = R_STOP
    if trail == trail and best > 0.0:
        tl = best * (1.0 - trail) if is_long else best * (1.0 + trail)
        if lvl != lvl or (is_long and tl > lvl) or (not is_long and tl < lvl):
            lvl = tl
            reason = R_TRAIL
    return lvl, reason


@njit(cache=True, inline="always")
def bar_stop_nb(p, bo, bh, bl):
    """Bar mode: position ``p``'s resting stop inside bar ``(bo, bh, bl)``. The open is the bar's
    first price: a stop it opens through fills at the open. Otherwise the open moves the trailing
    anchor, and the rest of the bar (its low for longs, its high for shorts) is checked against the
    stop with that anchor: a touch fills at the stop level. (The bar's high, for longs, or low moves
    the anchor only after the check: their order inside the bar is unknown.)

    Returns ``(reference price of the fill or NaN, reason code, anchor after the open)``."""
    is_long = p.qty > 0
    lvl, reason = _bar_stop_level_nb(p.stop, p.trail, p.best, is_long)
    if lvl == lvl and ((is_long and bo <= lvl) or (not is_long and bo >= lvl)):
        return bo, reason, p.best
    best = p.best
    if (is_long and bo > best) or (not is_long and bo < best):
        best = bo
    lvl, reason = _bar_stop_level_nb(p.stop, p.trail, best, is_long)
    if lvl == lvl and ((is_long and bl <= lvl) or (not is_long and bh >= lvl)):
        return lvl, reason, best
    return math.nan, reason, best


@njit(cache=True)
def bar_stop_fill_nb(insts, pos, acct, out, params, j, ts, ref, reason):
    """Close instrument ``j``'s position at stop reference ``ref`` (market slippage, taker fee)."""
    p = pos[j]
    side = -1 if p.qty > 0 else 1
    px = ref * (1.0 + side * params[0].slippage_bps * 1e-4)
    q = abs(p.qty)
    apply_fill_nb(insts, pos, acct, out, j, ts, side, q, px, insts[j].taker_fee, False, abs(px - ref) * q, reason, -1,
                  math.nan, math.nan, -1)


@njit(cache=True)
def bar_loop_nb(start, bar_ts, interval_ns, bo, bh, bl, bc, funding, sig, insts, pos, ords, acct, out, params,
                sparams, fitted, intents, ts1, kind1, inst1, f1, trig):
    """Bars ``start ..`` of every instrument of the wide OHLC matrices. Each bar: fills of working
    orders at the open, resting stops inside the bar, funding settled at the close, marks, dynamic
    exits at the close, then decisions at the close. ``ts1, kind1, inst1, f1`` are length-1
    scratch buffers in the event layout for the strategy's kernel (kind BARS, f = open, high, low,
    close, NaN...). Stops early (returning the next bar) when an output buffer is nearly full, so
    the driver can grow it and resume; the room is checked once per chunk of bars, for the whole
    chunk (a bar writes at most N_OUT_MARGIN rows per instrument).

    The bar's work is written inline here, not in a step function: a call that passes the ``out``
    tuple (or inlines one that does) costs more than a bar's work, so calls are made only when
    there is something to do."""
    pr = params[0]
    a = acct[0]
    n = bar_ts.shape[0]
    n_inst = pos.shape[0]
    chunk = max(1, 128 // (n_inst + 1))
    dynamic_exits = pr.cascade_long_col >= 0 or pr.cascade_short_col >= 0 or pr.adverse_exits or pr.max_hold_ns > 0
    has_funding = funding.shape[0] > 0
    has_sig = sig.shape[2] > 0
    eq_buf = out[3]
    for t in range(start, n):
        if (t - start) % chunk == 0 and not room_nb(acct, out, (n_inst + 1) * chunk):
            return t
        t_close = bar_ts[t]
        t_open = t_close - interval_ns
        day = t_open // DAY_NS  # the bar opening at 00:00 UTC starts the day (its start equity: the 00:00 close)
        if day != a.day:
            a.day = day
            a.day_start = a.equity
            a.breaker = 0
            a.halted = False
        a.ts = t_close
        for j in range(n_inst):
            c = bc[t, j]
            if not (c > 0.0):
                continue
            o = bo[t, j]
            h = bh[t, j]
            lo = bl[t, j]
            # a working order fills at the open when it was eligible by then, else at the close
            w = ords[j]
            if w.active:
                if t_open >= w.ts_eligible and t_open >= w.ts_decision:
                    try_fill_nb(insts, pos, ords, acct, out, params, j, t_open, o, o, math.nan, True, True, lo, h,
                                False, bc, bc, bc, bc, 0)
                else:
                    try_fill_nb(insts, pos, ords, acct, out, params, j, t_close, c, c, math.nan, True, False, lo, h,
                                False, bc, bc, bc, bc, 0)
            p = pos[j]
            if p.qty != 0.0 and p.entry_ts != t_close:  # (a position opened at the close saw none of the bar)
                ref, reason, p.best = bar_stop_nb(p, o, h, lo)
                if ref == ref:
                    bar_stop_fill_nb(insts, pos, acct, out, params, j, t_open, ref, reason)
                if p.qty > 0 and h > p.best:
                    p.best = h
                elif p.qty < 0 and lo < p.best:
                    p.best = lo
            revalue_nb(insts, pos, acct, j, c)
            if has_funding:
                r = funding[t, j]
                if r == r:
                    settle_funding_nb(insts, pos, acct, j, r)
            if p.qty != 0.0:
                if liquidation_due_nb(insts, pos, j, c):
                    check_liquidation_nb(insts, pos, acct, out, j, t_close, c)
                elif dynamic_exits or (pr.session_close and insts[j].kind == FOREX):
                    # the exits of check_exits_nb other than the stops, which were handled inside the bar
                    save_trail = p.trail
                    save_stop = p.stop
                    p.trail = math.nan
                    p.stop = math.nan
                    check_exits_nb(insts, pos, ords, acct, out, params, j, t_close, c, sig[t, j], has_sig, True)
                    p.trail = save_trail
                    p.stop = save_stop
        if pr.breaker:
            breaker_nb(insts, pos, ords, acct, out, params, t_close)
        for j in range(n_inst):
            c = bc[t, j]
            if not (c > 0.0):
                continue
            ts1[0] = t_close
            inst1[0] = j
            f1[0, 0] = bo[t, j]
            f1[1, 0] = bh[t, j]
            f1[2, 0] = bl[t, j]
            f1[3, 0] = c
            if j == 0 and trig.shape[0] > 0:
                fire_nb(acct, out, trig, fitted, sig[t, j], t_close, t)
            k = decide_nb(0, ts1, kind1, inst1, f1, sig[t, j], pos, ords, acct, sparams, fitted, intents)
            for m in range(k):
                submit_nb(insts, pos, ords, acct, out, params, intents[m], t_close)
        equity_row_nb(insts, pos, acct, eq_buf, params, t_close)
        if pr.corr_limit < math.inf:
            sample_rets_nb(pos, out, acct, pr.corr_window)
    return n
