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
# The window's last N values sit in a ring (arrival order) and in a sorted array; a new value
# replaces the oldest in the sorted array by an insertion-sort step: O(N) shifts at worst per
# update (about 2 M updates/s at N = 1000 on random values), exact at any time (no histogram, no
# approximation).

PERCENTILE_FIELDS = [("pc_n", I8), ("pc_head", I8), ("pc_window", I8),
                     ("pc_ring", F8, (PERCENTILE_CAPACITY,)), ("pc_sorted", F8, (PERCENTILE_CAPACITY,))]
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


@njit(cache=True)
def _pct_push_nb(ring, sorted_, n, head, window, x):
    """Insert ``x`` (finite) into the window; returns the new ``(n, head)``. A full window
    replaces its oldest value in place: the elements between the old value's position and the
    new value's are shifted by one (an insertion-sort step), so the sorted array stays exact."""
    if n == window:
        old = ring[head]
        lo, hi = 0, n
        while lo < hi:  # leftmost position of `old`
            mid = (lo + hi) // 2
            if sorted_[mid] < old:
                lo = mid + 1
            else:
                hi = mid
        j = lo
        if x >= old:
            while j + 1 < n and sorted_[j + 1] <= x:
                sorted_[j] = sorted_[j + 1]
                j += 1
        else:
            while j > 0 and sorted_[j - 1] > x:
                sorted_[j] = sorted_[j - 1]
                j -= 1
        sorted_[j] = x
    else:
        lo, hi = 0, n
        while lo < hi:  # rightmost insertion point of `x`
            mid = (lo + hi) // 2
            if sorted_[mid] <= x:
                lo = mid + 1
            else:
                hi = mid
        for k in range(n, lo, -1):
            sorted_[k] = sorted_[k - 1]
        sorted_[lo] = x
        n += 1
    ring[head] = x
    head = (head + 1) % window
    return n, head


@njit(cache=True)
def _pct_value_nb(sorted_, n, q):
    """Percentile ``q`` (0-100) with linear interpolation between order statistics
    (``numpy.percentile(method="linear")``); NaN when empty."""
    if n == 0:
        return np.nan
    h = (n - 1) * (q / 100.0)
    lo = int(np.floor(h))
    hi = min(lo + 1, n - 1)
    return sorted_[lo] + (h - lo) * (sorted_[hi] - sorted_[lo])


@njit(cache=True)
def _pct_rank_nb(sorted_, n, x):
    """Share of the window's values <= ``x``."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo / n


@njit(cache=True)
def rolling_percentile_step_nb(state, x, q):
    """Push ``x`` into the rolling window of ``state`` (see :func:`new_percentile_state`) and
    return percentile ``q`` (0-100, linear interpolation) of the last ``window`` values,
    ``x`` included. Non-finite ``x`` is skipped (the window is unchanged)."""
    s = state[0]
    if np.isfinite(x):
        s.pc_n, s.pc_head = _pct_push_nb(s.pc_ring, s.pc_sorted, s.pc_n, s.pc_head, s.pc_window, x)
    return _pct_value_nb(s.pc_sorted, s.pc_n, q)


@njit(cache=True)
def rolling_percentile_rank_nb(state, x):
    """Share of the values in the window of ``state`` that are <= ``x`` (NaN when empty)."""
    s = state[0]
    if s.pc_n == 0:
        return np.nan
    return _pct_rank_nb(s.pc_sorted, s.pc_n, x)


RP_STATE = np.dtype(PERCENTILE_FIELDS + [("thr", F8), ("rank", F8)], align=True)


def _rp_init(state: np.ndarray, params: Params) -> None:
    state["pc_window"] = params.window
    state["thr"] = np.nan
    state["rank"] = np.nan


@njit(cache=True)
def rolling_percentile_metric_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """At each finite ``f[field]`` of an ``input_kind`` event of ``inst``: push it, then the
    percentile ``q`` of the last ``window`` values and the rank of the value in them; other
    events repeat the last values."""
    s = state[0]
    q = p[0]
    if inst[i] == q.inst and kind[i] == q.input_kind:
        x = f[q.field, i]
        if np.isfinite(x):
            s.pc_n, s.pc_head = _pct_push_nb(s.pc_ring, s.pc_sorted, s.pc_n, s.pc_head, s.pc_window, x)
            if s.pc_n >= q.min_count:
                s.thr = _pct_value_nb(s.pc_sorted, s.pc_n, q.q)
                s.rank = _pct_rank_nb(s.pc_sorted, s.pc_n, x)
    out[i, 0] = s.thr
    out[i, 1] = s.rank


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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
