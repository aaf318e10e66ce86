"""Dynamic thresholds as kernels, so every driver (backtest, recorder, paper, live) derives the
same threshold from the same events.

Sources: ``cto-review-revised-direction.md`` (AdaptiveThresholds: the 90th percentile of a
metric's last 1000 values once 100 are known), ``intelligence-prd-v2.md`` (DynamicThresholdEngine:
session multipliers asian 0.7 / european 0.9 / us 1.0 / weekend 0.5; volatility multiplier
clipped to 0.5x-2x).

**Input of a threshold kernel.** A threshold is computed over a series that another metric or
the tape produces. The registered metrics read that series from a field of the event stream:
``f[field]`` of the events of kind ``input_kind`` of instrument ``inst`` (e.g. trade qty,
``input_kind=6, field=1``; the funding rate, ``input_kind=0, field=0``). Strategies that need the
percentile of a derived series (e.g. another metric's output) call the plain kernel
:func:`rolling_percentile_step_nb` on it, with a state from :func:`new_percentile_state`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals._asof import (
    LAG_CAPACITY,
    PRICE_DOC,
    PX_TRADE,
    bucket_closes,
    lag_advance_nb,
    lag_fields,
    lag_init,
    lag_return_nb,
    price_update_nb,
)
from emerald.signals.base import DAY_NS, HOUR_NS, MINUTE_NS, SECOND_NS, MetricSpec, Param, Params, register

F8 = np.float64
I8 = np.int64
PERCENTILE_CAPACITY = 2048

# ------------------------------------------------------------------------- exact rolling percentile
#
# The window's last N values sit in a ring (arrival order) and, sorted, in blocks of at most
# PC_BLOCK values: blocks are listed in ascending order (``pc_order`` holds block ids by position,
# with each position's count and largest value in ``pc_cnt`` / ``pc_max``), so finding a value's
# block is a count of the positions whose maximum is below it, and an update shifts at most one
# block (O(N / PC_BLOCK + PC_BLOCK) per value instead of O(N)). A full block splits into two
# halves; a block left empty is freed; when every block is in use the values are laid out again in
# half-full blocks. Exact at any time (no histogram, no approximation): the order statistics are
# those of the sorted window, so values are the same as with one sorted array.

PC_BLOCK = 32  # values per block
PC_BLOCKS = PERCENTILE_CAPACITY // (PC_BLOCK // 2) + 32  # after a re-layout into half-full blocks 32 stay free
M_NB, M_NALLOC, M_NFREE = range(3)  # pc_meta: blocks in use, block ids handed out, ids on the free stack

PERCENTILE_FIELDS = [("pc_n", I8), ("pc_head", I8), ("pc_window", I8), ("pc_meta", I8, (3,)),
                     ("pc_ring", F8, (PERCENTILE_CAPACITY,)), ("pc_order", I8, (PC_BLOCKS,)),
                     ("pc_cnt", I8, (PC_BLOCKS,)), ("pc_max", F8, (PC_BLOCKS,)), ("pc_free", I8, (PC_BLOCKS,)),
                     ("pc_vals", F8, (PC_BLOCKS, PC_BLOCK)), ("pc_tmp", F8, (PERCENTILE_CAPACITY,))]
PERCENTILE_STATE = np.dtype(PERCENTILE_FIELDS, align=True)


def new_percentile_state(window: int) -> np.ndarray:
    """A 1-element state for :func:`rolling_percentile_step_nb` over the last ``window`` values.

    Examples
    --------
    >>> st = new_percentile_state(4)
    >>> [round(float(rolling_percentile_step_nb(st, x, 50.0)), 2) for x in (1.0, 3.0, 2.0, 10.0, 0.0)]
    [1.0, 2.0, 2.0, 2.5, 2.5]
    """
    if not 1 <= int(window) <= PERCENTILE_CAPACITY:
        raise ConfigError(f"`window` must be in [1, {PERCENTILE_CAPACITY}] values, was {window!r}")
    state = np.zeros(1, dtype=PERCENTILE_STATE)
    state["pc_window"] = int(window)
    return state


def percentile_window_sorted(state: np.ndarray) -> np.ndarray:
    """The values in the window of a percentile state, ascending (a copy; for inspection)."""
    s = state[0]
    nb = int(s["pc_meta"][M_NB])
    return np.concatenate([s["pc_vals"][s["pc_order"][p], :s["pc_cnt"][p]] for p in range(nb)] or [np.empty(0)])


@njit(cache=True, inline="always", error_model="numpy")
def _pc_below(a, m, x):
    """How many of ``a[:m]`` are < ``x`` (branch-free count)."""
    c = 0
    for j in range(m):
        c += 1 if a[j] < x else 0
    return c


@njit(cache=True, inline="always", error_model="numpy")
def _pc_not_above(a, m, x):
    """How many of ``a[:m]`` are <= ``x`` (branch-free count)."""
    c = 0
    for j in range(m):
        c += 1 if a[j] <= x else 0
    return c


@njit(cache=True, inline="always", error_model="numpy")
def _pc_remove_nb(vals, order, cnt, mx, free, meta, old):
    """Remove one value equal to ``old`` (present in the window)."""
    nb = meta[M_NB]
    p = _pc_below(mx, nb, old)  # the first block whose largest value is >= old holds old
    b = order[p]
    m = cnt[p]
    for t in range(_pc_below(vals[b], m, old), m - 1):
        vals[b, t] = vals[b, t + 1]
    m -= 1
    if m > 0:
        cnt[p] = m
        mx[p] = vals[b, m - 1]
        return
    free[meta[M_NFREE]] = b
    meta[M_NFREE] += 1
    for t in range(p, nb - 1):
        order[t] = order[t + 1]
        cnt[t] = cnt[t + 1]
        mx[t] = mx[t + 1]
    meta[M_NB] = nb - 1


@njit(cache=True, inline="always", error_model="numpy")
def _pc_split_nb(vals, order, cnt, mx, free, meta, tmp, p):
    """Split the full block at position ``p`` in two halves, or, when every block id is in use,
    lay all values out again in half-full blocks."""
    half = PC_BLOCK // 2
    nb = meta[M_NB]
    if meta[M_NFREE] > 0:
        meta[M_NFREE] -= 1
        b2 = free[meta[M_NFREE]]
    elif meta[M_NALLOC] < PC_BLOCKS:
        b2 = meta[M_NALLOC]
        meta[M_NALLOC] += 1
    else:
        k = 0
        for p2 in range(nb):
            b = order[p2]
            for t in range(cnt[p2]):
                tmp[k] = vals[b, t]
                k += 1
        m = (k + half - 1) // half
        for p2 in range(m):
            c = min(half, k - p2 * half)
            for t in range(c):
                vals[p2, t] = tmp[p2 * half + t]
            order[p2] = p2
            cnt[p2] = c
            mx[p2] = vals[p2, c - 1]
        meta[M_NB] = m
        meta[M_NALLOC] = m
        meta[M_NFREE] = 0
        return
    b = order[p]
    for t in range(half):
        vals[b2, t] = vals[b, half + t]
    for t in range(nb, p + 1, -1):
        order[t] = order[t - 1]
        cnt[t] = cnt[t - 1]
        mx[t] = mx[t - 1]
    order[p + 1] = b2
    cnt[p + 1] = PC_BLOCK - half
    mx[p + 1] = mx[p]
    cnt[p] = half
    mx[p] = vals[b, half - 1]
    meta[M_NB] = nb + 1


@njit(cache=True, inline="always", error_model="numpy")
def _pc_insert_nb(vals, order, cnt, mx, free, meta, tmp, x):
    """Insert ``x`` after the values equal to it; returns its block position and offset."""
    if meta[M_NB] == 0:
        if meta[M_NFREE] > 0:
            meta[M_NFREE] -= 1
            b = free[meta[M_NFREE]]
        else:  # no block was ever freed, so none is in use: ids from 0 on
            b = meta[M_NALLOC]
            meta[M_NALLOC] += 1
        order[0] = b
        cnt[0] = 0
        meta[M_NB] = 1
    nb = meta[M_NB]
    p = min(_pc_below(mx, nb, x), nb - 1)  # the first block whose largest value is >= x, else the last
    if cnt[p] == PC_BLOCK:
        _pc_split_nb(vals, order, cnt, mx, free, meta, tmp, p)
        nb = meta[M_NB]
        p = min(_pc_below(mx, nb, x), nb - 1)
    b = order[p]
    m = cnt[p]
    j = _pc_not_above(vals[b], m, x)
    for t in range(m, j, -1):
        vals[b, t] = vals[b, t - 1]
    vals[b, j] = x
    cnt[p] = m + 1
    mx[p] = vals[b, m]
    return p, j


@njit(cache=True, inline="always", error_model="numpy")
def _pct_push_nb(ring, vals, order, cnt, mx, free, meta, tmp, n, head, window, x):
    """Insert ``x`` (finite) into the window; returns the new ``(n, head)`` and the block
    position and offset of ``x``. A full window first removes its oldest value."""
    if n == window:
        _pc_remove_nb(vals, order, cnt, mx, free, meta, ring[head])
    else:
        n += 1
    p, j = _pc_insert_nb(vals, order, cnt, mx, free, meta, tmp, x)
    ring[head] = x
    head = head + 1
    if head == window:
        head = 0
    return n, head, p, j


@njit(cache=True, inline="always", error_model="numpy")
def _pct_value_nb(vals, order, cnt, nb, n, q):
    """Percentile ``q`` (0-100) with linear interpolation between order statistics
    (``numpy.percentile(method="linear")``); NaN when empty."""
    if n == 0:
        return np.nan
    h = (n - 1) * (q / 100.0)
    lo = int(np.floor(h))
    hi = min(lo + 1, n - 1)
    # position p and offset j of order statistic lo, walking from the nearer end
    if 2 * lo < n:
        c = 0
        p = 0
        while c + cnt[p] <= lo:
            c += cnt[p]
            p += 1
    else:
        c = n
        p = nb
        while c > lo:
            p -= 1
            c -= cnt[p]
    j = lo - c
    b = order[p]
    x_lo = vals[b, j]
    if hi == lo:
        x_hi = x_lo
    elif j + 1 < cnt[p]:
        x_hi = vals[b, j + 1]
    else:
        x_hi = vals[order[p + 1], 0]
    return x_lo + (h - lo) * (x_hi - x_lo)


@njit(cache=True, inline="always", error_model="numpy")
def _pct_rank_at_nb(vals, order, cnt, mx, nb, n, p, j):
    """:func:`_pct_rank_nb` of the value just inserted at block position ``p``, offset ``j``
    (after its equals): the values before it are <= it, the values after it in its block are
    greater, so only when it ends its block may later blocks hold equal values."""
    if j + 1 == cnt[p] and p + 1 < nb:
        return _pct_rank_nb(vals, order, cnt, mx, nb, n, vals[order[p], j])
    c = j + 1
    for t in range(p):
        c += cnt[t]
    return c / n


@njit(cache=True, inline="always", error_model="numpy")
def _pct_rank_nb(vals, order, cnt, mx, nb, n, x):
    """Share of the window's values <= ``x``."""
    p = _pc_not_above(mx, nb, x)  # blocks wholly <= x; the next one holds the rest of them
    c = 0
    for t in range(p):
        c += cnt[t]
    if p < nb:
        c += _pc_not_above(vals[order[p]], cnt[p], x)
    return c / n


@njit(cache=True, inline="always", error_model="numpy")
def rolling_percentile_step_nb(state, x, q):
    """Push ``x`` into the rolling window of ``state`` (see :func:`new_percentile_state`) and
    return percentile ``q`` (0-100, linear interpolation) of the last ``window`` values,
    ``x`` included. Non-finite ``x`` is skipped (the window is unchanged)."""
    s = state[0]
    if np.isfinite(x):
        s.pc_n, s.pc_head, _, _ = _pct_push_nb(s.pc_ring, s.pc_vals, s.pc_order, s.pc_cnt, s.pc_max, s.pc_free,
                                               s.pc_meta, s.pc_tmp, s.pc_n, s.pc_head, s.pc_window, x)
    return _pct_value_nb(s.pc_vals, s.pc_order, s.pc_cnt, s.pc_meta[M_NB], s.pc_n, q)


@njit(cache=True, inline="always", error_model="numpy")
def rolling_percentile_rank_nb(state, x):
    """Share of the values in the window of ``state`` that are <= ``x`` (NaN when empty)."""
    s = state[0]
    if s.pc_n == 0:
        return np.nan
    return _pct_rank_nb(s.pc_vals, s.pc_order, s.pc_cnt, s.pc_max, s.pc_meta[M_NB], s.pc_n, x)


RP_STATE = np.dtype(PERCENTILE_FIELDS + [("thr", F8), ("rank", F8)], align=True)


def _rp_init(state: np.ndarray, params: Params) -> None:
    state["pc_window"] = params.window
    state["thr"] = np.nan
    state["rank"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def rolling_percentile_metric_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """At each finite ``f[field]`` of an ``input_kind`` event of ``inst``: push it, then the
    percentile ``q`` of the last ``window`` values and the rank of the value in them; other
    events repeat the last values."""
    s = state[0]
    q = p[0]
    k, ins, x = kind[i], inst[i], f[q.field, i]  # read every array before a branch
    if ins == q.inst and k == q.input_kind:
        if np.isfinite(x):
            s.pc_n, s.pc_head, bp, bj = _pct_push_nb(s.pc_ring, s.pc_vals, s.pc_order, s.pc_cnt, s.pc_max,
                                                     s.pc_free, s.pc_meta, s.pc_tmp, s.pc_n, s.pc_head, s.pc_window, x)
            if s.pc_n >= q.min_count:
                nb = s.pc_meta[M_NB]
                s.thr = _pct_value_nb(s.pc_vals, s.pc_order, s.pc_cnt, nb, s.pc_n, q.q)
                s.rank = _pct_rank_at_nb(s.pc_vals, s.pc_order, s.pc_cnt, s.pc_max, nb, s.pc_n, bp, bj)
    out[i, 0] = s.thr
    out[i, 1] = s.rank


@njit(cache=True, error_model="numpy", nogil=True)
def rolling_percentile_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        rolling_percentile_metric_step_nb(state, p, ts, kind, inst, row, f, i, out)


def rolling_percentile_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 2), np.nan)
    hist: list[float] = []
    thr = rank = math.nan
    for i in range(len(events)):
        if events.inst[i] == params.inst and events.kind[i] == params.input_kind:
            x = float(events.f[params.field, i])
            if math.isfinite(x):
                hist.append(x)
                win = np.asarray(hist[-params.window:])
                if len(win) >= params.min_count:
                    thr = float(np.percentile(win, params.q))
                    rank = float(np.mean(win <= x))
        out[i] = thr, rank
    return out


def _rp_validate(v: dict) -> None:
    if v["min_count"] > v["window"]:
        raise ConfigError(f"`min_count` must be <= `window` ({v['window']}), was {v['min_count']}")


register(MetricSpec(
    name="rolling_percentile",
    family="thresholds",
    inputs=("trades", "quotes", "book", "prices", "funding", "open_interest", "liquidations", "bars"),
    outputs=("threshold", "rank"),
    params=(Param("inst", "index", 0, 0, 1023, "instrument index in the event table", integer=True),
            Param("input_kind", "kind", 6, 0, 8, "event kind carrying the series (Kind value: 0 funding, 1 "
                  "open_interest, 2 prices, 4 book, 5 quotes, 6 trades, 7 liquidations, 8 bars)", integer=True),
            Param("field", "index", 1, 0, 7, "field f<k> of that kind (emerald/events/table.py), e.g. trades "
                  "1 = qty", integer=True),
            Param("window", "values", 1000, 1, PERCENTILE_CAPACITY, "values in the window", integer=True),
            Param("q", "percent", 90.0, 0.0, 100.0, "percentile"),
            Param("min_count", "values", 100, 1, PERCENTILE_CAPACITY, "values needed before a threshold is given",
                  integer=True)),
    state_dtype=RP_STATE,
    step_nb=rolling_percentile_metric_step_nb,
    batch_nb=rolling_percentile_batch_nb,
    init_state=_rp_init,
    validate=_rp_validate,
    oracle=rolling_percentile_oracle,
    definition="exact percentile q (linear interpolation, numpy.percentile) of the last `window` finite values of "
               "f[field] of input_kind events of inst, the current value included, and the share of them <= the "
               "current value; updated at input events, as-of elsewhere",
    source="cto-review-revised-direction.md: AdaptiveThresholds (np.percentile(values, 90), deque(maxlen=1000), "
           ">= 100 values)",
    warmup="min_count input values",
))

# ------------------------------------------------------------------------- volatility-adjusted threshold

VOL_STATE = np.dtype(lag_fields("v", 1) + [("v_ret", F8, (LAG_CAPACITY,)), ("last_head", I8), ("thr", F8),
                                           ("ratio", F8)], align=True)
# v_ret[b % LAG_CAPACITY]: log return of completed bucket b, computed once when b completes


def _vol_init(state: np.ndarray, params: Params) -> None:
    lag_init(state, "v")
    state["v_ret"] = np.nan
    state["last_head"] = -1
    state["thr"] = np.nan
    state["ratio"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def _return_std_nb(ret, head, n):
    """Sample standard deviation (ddof=1) of the last ``n`` completed bucket log returns; NaN if
    one of them is unknown."""
    mean = 0.0
    for j in range(1, n + 1):
        r = ret[(head - j) % LAG_CAPACITY]
        if np.isnan(r):
            return np.nan
        mean += r
    mean /= n
    ss = 0.0
    for j in range(1, n + 1):
        d = ret[(head - j) % LAG_CAPACITY] - mean
        ss += d * d
    return np.sqrt(ss / (n - 1))


@njit(cache=True, inline="always", error_model="numpy")
def vol_adjusted_threshold_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """``base x clip(std_short / std_long, min_mult, max_mult)`` of bucket log returns of the
    as-of price; recomputed when a bucket completes. Each bucket's return is computed once, when
    the bucket completes, into the ``v_ret`` ring (the two standard deviations then read it)."""
    s = state[0]
    q = p[0]
    before = s.v_head
    s.v_head = lag_advance_nb(s.v_vals, s.v_head, ts[i] // q.bucket_ns, s.v_cur)
    if before >= 0:
        for b in range(max(before, s.v_head - LAG_CAPACITY + 1), s.v_head):
            s.v_ret[b % LAG_CAPACITY] = lag_return_nb(s.v_vals, b + 1, 1, 0)  # log(v[b] / v[b - 1])
    if inst[i] == q.inst:
        s.v_cur[0] = price_update_nb(q.price_source, kind, f, i, s.v_cur[0])
    if s.v_head != s.last_head:
        s.last_head = s.v_head
        sd_s = _return_std_nb(s.v_ret, s.v_head, q.short_n)
        sd_l = _return_std_nb(s.v_ret, s.v_head, q.long_n)
        s.ratio = sd_s / sd_l if sd_l > 0.0 else np.nan
        s.thr = q.base * min(max(s.ratio, q.min_mult), q.max_mult) if not np.isnan(s.ratio) else np.nan
    out[i, 0] = s.thr
    out[i, 1] = s.ratio


@njit(cache=True, error_model="numpy", nogil=True)
def vol_adjusted_threshold_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        vol_adjusted_threshold_step_nb(state, p, ts, kind, inst, row, f, i, out)


def vol_adjusted_threshold_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 2), np.nan)
    if len(events) == 0:
        return out
    first, closes = bucket_closes(events, params.inst, params.price_source, params.bucket_ns)
    rets = np.diff(np.log(closes))  # rets[k] = return of bucket first + k + 1
    for i, t in enumerate(events.ts.tolist()):
        cur = t // params.bucket_ns - first  # completed buckets: first .. cur - 1 (offsets)
        short = rets[cur - 1 - params.short_n:cur - 1] if cur - 1 - params.short_n >= 0 else None
        long_ = rets[cur - 1 - params.long_n:cur - 1] if cur - 1 - params.long_n >= 0 else None
        if short is None or long_ is None or np.isnan(long_).any() or np.isnan(short).any():
            continue
        sd_l = float(np.std(long_, ddof=1))
        if sd_l > 0:
            ratio = float(np.std(short, ddof=1)) / sd_l
            out[i] = params.base * min(max(ratio, params.min_mult), params.max_mult), ratio
    return out


def _vol_validate(v: dict) -> None:
    if v["short_n"] > v["long_n"]:
        raise ConfigError(f"`short_n` must be <= `long_n` ({v['long_n']}), was {v['short_n']}")
    if v["min_mult"] > v["max_mult"]:
        raise ConfigError(f"`min_mult` must be <= `max_mult` ({v['max_mult']}), was {v['min_mult']}")


register(MetricSpec(
    name="vol_adjusted_threshold",
    family="thresholds",
    inputs=("trades", "prices", "quotes", "book"),
    outputs=("threshold", "vol_ratio"),
    params=(Param("inst", "index", 0, 0, 1023, "instrument index in the event table", integer=True),
            Param("price_source", "code", PX_TRADE, 0, 2, PRICE_DOC, integer=True),
            Param("bucket_ns", "ns", MINUTE_NS, SECOND_NS, DAY_NS, "return sampling interval", integer=True),
            Param("short_n", "buckets", 60, 2, LAG_CAPACITY - 2, "returns in the current-volatility window",
                  integer=True),
            Param("long_n", "buckets", 1440, 2, LAG_CAPACITY - 2, "returns in the long-run volatility window",
                  integer=True),
            Param("base", "metric unit", 1.0, -1e12, 1e12, "threshold at average volatility"),
            Param("min_mult", "ratio", 0.5, 0.0, 1e3, "lowest volatility multiplier"),
            Param("max_mult", "ratio", 2.0, 0.0, 1e3, "highest volatility multiplier")),
    state_dtype=VOL_STATE,
    step_nb=vol_adjusted_threshold_step_nb,
    batch_nb=vol_adjusted_threshold_batch_nb,
    init_state=_vol_init,
    validate=_vol_validate,
    oracle=vol_adjusted_threshold_oracle,
    oracle_tolerance=1e-9,
    definition="base x clip(vol_short / vol_long, 0.5, 2): vol = sample std of log returns between bucket closes "
               "(as-of price at each bucket end; empty buckets return 0) over the last short_n (60) and long_n "
               "(1440) completed 1-min buckets; vol_ratio unclipped",
    source="intelligence-prd-v2.md: DynamicThresholdEngine volatility_multiplier = max(0.5, min(2.0, volatility))",
    warmup="long_n + 1 bucket closes after the first price",
))

# ------------------------------------------------------------------------- session multiplier

ASIA, EUROPE, US, WEEKEND = 0, 1, 2, 3
SESSION_STATE = np.dtype([("_unused", I8)], align=True)


@njit(cache=True, inline="always", error_model="numpy")
def session_multiplier_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Session of the event's UTC time and its multiplier."""
    q = p[0]
    t = ts[i]
    day = t // DAY_NS
    hour = (t - day * DAY_NS) // HOUR_NS
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    if weekday >= 5:
        sess, mult = WEEKEND, q.weekend
    elif q.europe_start_hour <= hour < q.us_start_hour:
        sess, mult = EUROPE, q.europe
    elif q.us_start_hour <= hour < q.us_end_hour:
        sess, mult = US, q.us
    else:
        sess, mult = ASIA, q.asia
    out[i, 0] = mult
    out[i, 1] = sess


@njit(cache=True, error_model="numpy", nogil=True)
def session_multiplier_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        session_multiplier_step_nb(state, p, ts, kind, inst, row, f, i, out)


def session_multiplier_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 2), np.nan)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for i, t in enumerate(events.ts.tolist()):
        d = epoch + timedelta(microseconds=t // 1000)
        if d.weekday() >= 5:
            out[i] = params.weekend, WEEKEND
        elif params.europe_start_hour <= d.hour < params.us_start_hour:
            out[i] = params.europe, EUROPE
        elif params.us_start_hour <= d.hour < params.us_end_hour:
            out[i] = params.us, US
        else:
            out[i] = params.asia, ASIA
    return out


def _session_validate(v: dict) -> None:
    if not v["europe_start_hour"] < v["us_start_hour"] < v["us_end_hour"]:
        raise ConfigError("session hours must satisfy europe_start_hour < us_start_hour < us_end_hour, was "
                          f"{v['europe_start_hour']}, {v['us_start_hour']}, {v['us_end_hour']}")


register(MetricSpec(
    name="session_multiplier",
    family="thresholds",
    inputs=("trades", "quotes", "book", "prices", "funding", "open_interest", "liquidations", "bars"),
    outputs=("multiplier", "session"),
    params=(Param("europe_start_hour", "hour UTC", 8, 0, 23, "Europe starts (London open)", integer=True),
            Param("us_start_hour", "hour UTC", 13, 1, 23, "US starts (New York open), Europe ends", integer=True),
            Param("us_end_hour", "hour UTC", 21, 2, 24, "US ends (New York close); Asia until europe_start_hour",
                  integer=True),
            Param("asia", "ratio", 0.7, 0.0, 100.0, "Asia multiplier"),
            Param("europe", "ratio", 0.9, 0.0, 100.0, "Europe multiplier"),
            Param("us", "ratio", 1.0, 0.0, 100.0, "US multiplier"),
            Param("weekend", "ratio", 0.5, 0.0, 100.0, "Saturday/Sunday (UTC) multiplier")),
    state_dtype=SESSION_STATE,
    step_nb=session_multiplier_step_nb,
    batch_nb=session_multiplier_batch_nb,
    validate=_session_validate,
    oracle=session_multiplier_oracle,
    definition="session of the event time (UTC), as trading_session: 3 weekend (Sat/Sun), 1 Europe [08:00, 13:00), "
               "2 US [13:00, 21:00), 0 Asia otherwise; multiplier asia 0.7 / europe 0.9 / us 1.0 / weekend 0.5",
    source="intelligence-prd-v2.md: DynamicThresholdEngine.market_session_multipliers",
    warmup="none",
))
