"""Multi-timeframe trade-flow metrics: the order-flow cascade and VWAP alignment.

Each timeframe is a bucketed rolling window of trades (:mod:`emerald.signals._ring`, with the
conventions of :mod:`emerald.signals._flow_common`), not a candle: at every event the fast, mid
and slow windows all end at that event's time. Defaults are the design's 1 m / 5 m / 15 m.

Sources: ``algo-engine-design.md`` 2.3.3 (cascade), 2.6.1 (cascade reversal);
``emerald-gameplan.md`` multi-timeframe confluence (VWAP alignment, > +1 % / < -1 %).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals._flow_common import (
    TRADES,
    check_windows,
    greater,
    init_rings,
    oracle_ratio,
    oracle_trades,
    oracle_window_bounds,
    ratio_nb,
    valid_trade,
    zero_if_empty,
)
from emerald.signals._ring import ring_fields, ring_move_nb, ring_put_nb
from emerald.signals.base import DAY_NS, MINUTE_NS, SECOND_NS, MetricSpec, Param, Params, register

TIMEFRAMES = ("fast_ns", "mid_ns", "slow_ns")

TIMEFRAME_PARAMS = (
    Param("inst", "index", 0, 0, 1023, "instrument index in the event table", integer=True),
    Param("fast_ns", "ns", MINUTE_NS, SECOND_NS, DAY_NS, "fastest window (design: 1m)", integer=True),
    Param("mid_ns", "ns", 5 * MINUTE_NS, SECOND_NS, DAY_NS, "middle window (design: 5m)", integer=True),
    Param("slow_ns", "ns", 15 * MINUTE_NS, SECOND_NS, DAY_NS, "slowest window (design: 15m)", integer=True),
    Param("bucket_ns", "ns", SECOND_NS, 1_000_000, 3600 * SECOND_NS, "window resolution", integer=True),
)


# -------------------------------------------------------------------------------- flow cascade

CASCADE_STATE = np.dtype([*ring_fields("f", 4), *ring_fields("m", 4), *ring_fields("s", 4),
                          ("edge", np.int64), ("long_seen", np.int64), ("long_ts", np.int64),
                          ("short_seen", np.int64), ("short_ts", np.int64)], align=True)
# each ring: buy qty, sell qty, n buy, n sell (trades with qty > 0)


def _cascade_init(state: np.ndarray, params: Params) -> None:
    init_rings(state, "f", "m", "s")


def _cascade_validate(values: dict) -> None:
    check_windows(values, TIMEFRAMES, increasing=True)
    if not values["short_ratio"] < 1.0 < values["long_ratio"] < values["cap"]:
        raise ConfigError(f"need short_ratio < 1 < long_ratio < cap, was short_ratio={values['short_ratio']}, "
                          f"long_ratio={values['long_ratio']}, cap={values['cap']}")


@njit(cache=True, inline="always", error_model="numpy")
def _advance3(s, q, b):
    nb = q.fast_ns // q.bucket_ns
    s.f_head, s.f_slot = ring_move_nb(s.f_slots, s.f_sum, s.f_head, b, nb, -1)
    nb = q.mid_ns // q.bucket_ns
    s.m_head, s.m_slot = ring_move_nb(s.m_slots, s.m_sum, s.m_head, b, nb, -1)
    nb = q.slow_ns // q.bucket_ns
    s.s_head, s.s_slot = ring_move_nb(s.s_slots, s.s_sum, s.s_head, b, nb, -1)


@njit(cache=True, inline="always", error_model="numpy")
def cascade_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Buy/sell volume ratio ``min(B / S, cap)`` on the fast, mid and slow windows and the
    cascade: +1 when ``r_fast > r_mid > r_slow`` and ``r_fast > long_ratio`` (buying accelerates
    into the short timeframes), -1 when ``r_fast < r_mid < r_slow`` and ``r_fast < short_ratio``,
    else 0; NaN while any ratio is undefined (a window without trades). The orderings use a
    relative tolerance of 1e-9 (:func:`~emerald.signals._flow_common.greater`): windows holding
    the same trades have equal ratios, whatever the rounding of their running sums.

    Reversal (the design's exit "smoking gun"): ``reversal_of_long`` is 1 while the short
    pattern holds and the long pattern held at some event within the last ``memory_ns`` (the
    long cascade has turned into the short one); ``reversal_of_short`` mirrors it. The design's
    per-position check (while long: exit on the short pattern) is ``cascade == -1``; the
    reversal outputs add that a long cascade preceded it recently, which the metric can know
    without a position.
    pandas equivalent (oracle): three bucketed rolling sums per side.
    """
    s = state[0]
    q = p[0]
    t = ts[i]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    if t >= s.edge:
        b = t // q.bucket_ns
        _advance3(s, q, b)
        for j in range(2):
            zero_if_empty(s.f_sum, j, j + 2)
            zero_if_empty(s.m_sum, j, j + 2)
            zero_if_empty(s.s_sum, j, j + 2)
        s.edge = (b + 1) * q.bucket_ns
    if k == TRADES and ins == q.inst:
        if valid_trade(price, qty, side) and qty > 0.0 and price * qty >= q.min_notional:
            j = 0 if side > 0.0 else 1
            ring_put_nb(s.f_slots, s.f_sum, s.f_slot, j, qty)
            ring_put_nb(s.f_slots, s.f_sum, s.f_slot, j + 2, 1.0)
            ring_put_nb(s.m_slots, s.m_sum, s.m_slot, j, qty)
            ring_put_nb(s.m_slots, s.m_sum, s.m_slot, j + 2, 1.0)
            ring_put_nb(s.s_slots, s.s_sum, s.s_slot, j, qty)
            ring_put_nb(s.s_slots, s.s_sum, s.s_slot, j + 2, 1.0)
    r1 = ratio_nb(s.f_sum[0], s.f_sum[1], s.f_sum[2], s.f_sum[3], q.cap)
    r2 = ratio_nb(s.m_sum[0], s.m_sum[1], s.m_sum[2], s.m_sum[3], q.cap)
    r3 = ratio_nb(s.s_sum[0], s.s_sum[1], s.s_sum[2], s.s_sum[3], q.cap)
    out[i, 0] = r1
    out[i, 1] = r2
    out[i, 2] = r3
    # non-short-circuit `&`: these comparisons flip at random, branches on them would mispredict
    undefined = (r1 != r1) | (r2 != r2) | (r3 != r3)
    up = greater(r1, r2) & greater(r2, r3) & (r1 > q.long_ratio)  # False when a ratio is NaN
    down = greater(r2, r1) & greater(r3, r2) & (r1 < q.short_ratio)
    if up:
        s.long_seen = 1
        s.long_ts = t
    elif down:
        s.short_seen = 1
        s.short_ts = t
    reversal_of_long = down & (s.long_seen == 1) & (t - s.long_ts <= q.memory_ns)
    reversal_of_short = up & (s.short_seen == 1) & (t - s.short_ts <= q.memory_ns)
    out[i, 3] = np.nan if undefined else (1.0 if up else (-1.0 if down else 0.0))
    out[i, 4] = np.nan if undefined else (1.0 if reversal_of_long else 0.0)
    out[i, 5] = np.nan if undefined else (1.0 if reversal_of_short else 0.0)


@njit(cache=True, error_model="numpy", nogil=True)
def cascade_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        cascade_step_nb(state, p, ts, kind, inst, row, f, i, out)


def cascade_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Exact window sums per event; the reversal by scanning the times of earlier cascades."""
    idx, tts, price, qty, side = oracle_trades(events, params.inst)
    keep = (qty > 0) & (price * qty >= params.min_notional)
    idx, tts, qty, side = idx[keep], tts[keep], qty[keep], side[keep]
    out = np.full((len(events), 6), np.nan)
    for k, name in enumerate(TIMEFRAMES):
        lo, hi = oracle_window_bounds(events, idx, tts, getattr(params, name), params.bucket_ns)
        for i in range(len(events)):
            qs, ss = qty[lo[i]:hi[i]], side[lo[i]:hi[i]]
            out[i, k] = oracle_ratio(qs[ss > 0].sum(), qs[ss < 0].sum(), params.cap)
    seen: dict[float, list[int]] = {1.0: [], -1.0: []}  # event times of long / short cascades
    for i in range(len(events)):
        r1, r2, r3 = out[i, :3]
        if np.isnan(out[i, :3]).any():
            continue
        def gt(x: float, y: float) -> bool:
            return x - y > 1e-9 * abs(y)

        long_ = gt(r1, r2) and gt(r2, r3) and r1 > params.long_ratio
        short = gt(r2, r1) and gt(r3, r2) and r1 < params.short_ratio
        c = 1.0 if long_ else -1.0 if short else 0.0
        out[i, 3] = c
        if c:
            t = int(events.ts[i])
            out[i, 4 if c < 0 else 5] = float(any(t - u <= params.memory_ns for u in seen[-c]))
            seen[c].append(t)
            out[i, 5 if c < 0 else 4] = 0.0
        else:
            out[i, 4:] = 0.0
    return out


register(MetricSpec(
    name="flow_cascade",
    family="multitimeframe",
    inputs=("trades",),
    outputs=("ratio_fast", "ratio_mid", "ratio_slow", "cascade", "reversal_of_long", "reversal_of_short"),
    params=(*TIMEFRAME_PARAMS,
            Param("min_notional", "quote", 0.0, 0.0, 1e9, "ignore trades with price*qty below this"),
            Param("cap", "ratio", 100.0, 1.0, 1e6, "ratio when a window holds buys but no sell (and its upper bound)"),
            Param("long_ratio", "ratio", 2.0, 1.0, 1e6, "long cascade: fast ratio above this (2:1 buying)"),
            Param("short_ratio", "ratio", 0.5, 0.0, 1.0, "short cascade: fast ratio below this (2:1 selling)"),
            Param("memory_ns", "ns", 15 * MINUTE_NS, 0, 7 * DAY_NS,
                  "a reversal needs the opposite cascade within this time before", integer=True)),
    state_dtype=CASCADE_STATE,
    step_nb=cascade_step_nb,
    batch_nb=cascade_batch_nb,
    init_state=_cascade_init,
    validate=_cascade_validate,
    oracle=cascade_oracle,
    definition="buy/sell volume ratios (capped) on fast/mid/slow windows; cascade +1 when fast > mid > slow and "
               "fast > long_ratio, -1 when fast < mid < slow and fast < short_ratio, else 0; reversal_of_long = 1 "
               "while the short pattern holds and the long one held within memory_ns (reversal_of_short "
               "mirrored)",
    source="algo-engine-design.md 2.3.3 (cascade 3.5 > 2.8 > 1.8, 1m > 2.0 / < 0.5) and 2.6.1 (reversal "
           "0.4 < 0.6 < 0.9 while long)",
    warmup="first qualifying trade; NaN while any window holds no trade with qty > 0 (ratios stay defined "
           "per window)",
))


# ------------------------------------------------------------------------------ VWAP alignment

VWAP_STATE = np.dtype([*ring_fields("f", 3), *ring_fields("m", 3), *ring_fields("s", 3),
                       ("edge", np.int64), ("price", np.float64)], align=True)
# each ring: sum price*qty, sum qty, n trades with qty > 0


def _vwap_init(state: np.ndarray, params: Params) -> None:
    init_rings(state, "f", "m", "s")
    state["price"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def _deviation_pct(price, pq, qty, n):
    """(price - VWAP) / VWAP x 100; NaN without volume in the window."""
    if n == 0.0:
        return np.nan
    vwap = pq / qty
    return (price - vwap) / vwap * 100.0


@njit(cache=True, inline="always", error_model="numpy")
def vwap_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Deviation in % of the last trade price from the rolling VWAP of the fast, mid and slow
    windows, and their alignment: +1 when every deviation > +``threshold_pct``, -1 when every
    deviation < -``threshold_pct``, else 0 (NaN while any deviation is undefined).

    pandas equivalent (oracle): bucketed rolling sums of price*qty and qty per window.
    """
    s = state[0]
    q = p[0]
    t = ts[i]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    if t >= s.edge:
        b = t // q.bucket_ns
        _advance3(s, q, b)
        zero_if_empty(s.f_sum, 1, 2)
        zero_if_empty(s.m_sum, 1, 2)
        zero_if_empty(s.s_sum, 1, 2)
        s.edge = (b + 1) * q.bucket_ns
    if k == TRADES and ins == q.inst:
        if valid_trade(price, qty, side):
            s.price = price
            if qty > 0.0:
                pq = price * qty
                ring_put_nb(s.f_slots, s.f_sum, s.f_slot, 0, pq)
                ring_put_nb(s.f_slots, s.f_sum, s.f_slot, 1, qty)
                ring_put_nb(s.f_slots, s.f_sum, s.f_slot, 2, 1.0)
                ring_put_nb(s.m_slots, s.m_sum, s.m_slot, 0, pq)
                ring_put_nb(s.m_slots, s.m_sum, s.m_slot, 1, qty)
                ring_put_nb(s.m_slots, s.m_sum, s.m_slot, 2, 1.0)
                ring_put_nb(s.s_slots, s.s_sum, s.s_slot, 0, pq)
                ring_put_nb(s.s_slots, s.s_sum, s.s_slot, 1, qty)
                ring_put_nb(s.s_slots, s.s_sum, s.s_slot, 2, 1.0)
    d1 = _deviation_pct(s.price, s.f_sum[0], s.f_sum[1], s.f_sum[2])
    d2 = _deviation_pct(s.price, s.m_sum[0], s.m_sum[1], s.m_sum[2])
    d3 = _deviation_pct(s.price, s.s_sum[0], s.s_sum[1], s.s_sum[2])
    out[i, 0] = d1
    out[i, 1] = d2
    out[i, 2] = d3
    th = q.threshold_pct
    if np.isnan(d1) or np.isnan(d2) or np.isnan(d3):
        out[i, 3] = np.nan
    elif d1 > th and d2 > th and d3 > th:
        out[i, 3] = 1.0
    elif d1 < -th and d2 < -th and d3 < -th:
        out[i, 3] = -1.0
    else:
        out[i, 3] = 0.0


@njit(cache=True, error_model="numpy", nogil=True)
def vwap_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        vwap_step_nb(state, p, ts, kind, inst, row, f, i, out)


def vwap_oracle(events: EventTable, params: Params) -> np.ndarray:
    idx, tts, price, qty, _ = oracle_trades(events, params.inst)
    out = np.full((len(events), 4), np.nan)
    last = np.searchsorted(idx, np.arange(len(events)), side="right") - 1  # the latest trade at each event
    vol = qty > 0
    for k, name in enumerate(TIMEFRAMES):
        lo, hi = oracle_window_bounds(events, idx, tts, getattr(params, name), params.bucket_ns)
        for i in range(len(events)):
            w = slice(lo[i], hi[i])
            if vol[w].any():
                vwap = (price[w] * qty[w]).sum() / qty[w].sum()
                out[i, k] = (price[last[i]] - vwap) / vwap * 100.0
    th = params.threshold_pct
    dev = out[:, :3]
    ok = ~np.isnan(dev).any(axis=1)
    out[ok, 3] = np.where((dev[ok] > th).all(axis=1), 1.0, np.where((dev[ok] < -th).all(axis=1), -1.0, 0.0))
    return out


register(MetricSpec(
    name="vwap_alignment",
    family="multitimeframe",
    inputs=("trades",),
    outputs=("dev_fast_pct", "dev_mid_pct", "dev_slow_pct", "alignment"),
    params=(*TIMEFRAME_PARAMS,
            Param("threshold_pct", "%", 1.0, 1e-6, 100.0, "aligned when every deviation is beyond +/- this")),
    state_dtype=VWAP_STATE,
    step_nb=vwap_step_nb,
    batch_nb=vwap_batch_nb,
    init_state=_vwap_init,
    validate=lambda v: check_windows(v, TIMEFRAMES, increasing=True),
    oracle=vwap_oracle,
    definition="deviation % of the last trade price from the rolling VWAP of each window; alignment +1 when all "
               "> +threshold_pct, -1 when all < -threshold_pct, else 0",
    source="emerald-gameplan.md: VWAP multi-timeframe alignment (all > 1% above / below VWAP)",
    warmup="first trade with qty > 0; NaN while any window holds no volume",
))
