"""Cross-asset metrics: rolling return correlation between two instruments (e.g. a coin vs BTC).

Sources: ``algo-engine-design.md`` (CorrelationMonitor: Pearson correlation of 1-minute returns
with the leader; > 0.7 high, 0.4-0.7 moderate, < 0.4 low), ``cto-review-revised-direction.md``
(correlation limits before going multi-asset).
"""

from __future__ import annotations

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
from emerald.signals.base import DAY_NS, MINUTE_NS, SECOND_NS, MetricSpec, Param, Params, register

CORR_STATE = np.dtype(lag_fields("c", 2) + [("last_head", np.int64), ("corr", np.float64)], align=True)


def _corr_init(state: np.ndarray, params: Params) -> None:
    lag_init(state, "c")
    state["last_head"] = -1
    state["corr"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def _pearson_nb(vals, head, n):
    """Pearson correlation of the last ``n`` completed bucket log returns of series 0 and 1
    (two-pass); NaN if a return is unknown or a series is constant over the window."""
    mx = 0.0
    my = 0.0
    for j in range(1, n + 1):
        x = lag_return_nb(vals, head, j, 0)
        y = lag_return_nb(vals, head, j, 1)
        if np.isnan(x) or np.isnan(y):
            return np.nan
        mx += x
        my += y
    mx /= n
    my /= n
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    x0 = lag_return_nb(vals, head, 1, 0)
    y0 = lag_return_nb(vals, head, 1, 1)
    const_x = True
    const_y = True
    for j in range(1, n + 1):
        x = lag_return_nb(vals, head, j, 0)
        y = lag_return_nb(vals, head, j, 1)
        const_x = const_x and x == x0
        const_y = const_y and y == y0
        dx = x - mx
        dy = y - my
        sxx += dx * dx
        syy += dy * dy
        sxy += dx * dy
    if const_x or const_y:
        return np.nan
    return sxy / np.sqrt(sxx * syy)


@njit(cache=True, inline="always", error_model="numpy")
def return_correlation_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Correlation of the two instruments' bucket log returns over the last ``window`` completed
    buckets; recomputed when a bucket completes, constant within a bucket."""
    s = state[0]
    q = p[0]
    s.c_head = lag_advance_nb(s.c_vals, s.c_head, ts[i] // q.bucket_ns, s.c_cur)
    if inst[i] == q.inst:
        s.c_cur[0] = price_update_nb(q.price_source, kind, f, i, s.c_cur[0])
    elif inst[i] == q.ref_inst:
        s.c_cur[1] = price_update_nb(q.price_source, kind, f, i, s.c_cur[1])
    if s.c_head != s.last_head:
        s.last_head = s.c_head
        s.corr = _pearson_nb(s.c_vals, s.c_head, q.window)
    out[i, 0] = s.corr


@njit(cache=True, error_model="numpy", nogil=True)
def return_correlation_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        return_correlation_step_nb(state, p, ts, kind, inst, row, f, i, out)


def return_correlation_oracle(events: EventTable, params: Params) -> np.ndarray:
    """numpy.corrcoef over returns computed from bucket closes (a separate as-of join)."""
    out = np.full((len(events), 1), np.nan)
    if len(events) == 0:
        return out
    first, cx = bucket_closes(events, params.inst, params.price_source, params.bucket_ns)
    _, cy = bucket_closes(events, params.ref_inst, params.price_source, params.bucket_ns)
    rx, ry = np.diff(np.log(cx)), np.diff(np.log(cy))  # r[k] = return of bucket first + k + 1
    n = params.window
    for i, t in enumerate(events.ts.tolist()):
        cur = t // params.bucket_ns - first
        if cur - 1 - n < 0:
            continue
        x, y = rx[cur - 1 - n:cur - 1], ry[cur - 1 - n:cur - 1]
        if np.isnan(x).any() or np.isnan(y).any() or np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        out[i, 0] = np.corrcoef(x, y)[0, 1]
    return out


def _corr_validate(v: dict) -> None:
    if v["inst"] == v["ref_inst"]:
        raise ConfigError(f"`ref_inst` must differ from `inst`, was {v['ref_inst']}")


register(MetricSpec(
    name="return_correlation",
    family="cross_asset",
    inputs=("trades", "prices", "quotes", "book"),
    outputs=("correlation",),
    params=(Param("inst", "index", 0, 0, 1023, "instrument index in the event table", integer=True),
            Param("ref_inst", "index", 1, 0, 1023, "leader instrument index (e.g. BTC)", integer=True),
            Param("price_source", "code", PX_TRADE, 0, 2, PRICE_DOC, integer=True),
            Param("bucket_ns", "ns", MINUTE_NS, SECOND_NS, DAY_NS, "return sampling interval", integer=True),
            Param("window", "buckets", 60, 3, LAG_CAPACITY - 2, "returns in the window", integer=True)),
    state_dtype=CORR_STATE,
    step_nb=return_correlation_step_nb,
    batch_nb=return_correlation_batch_nb,
    init_state=_corr_init,
    validate=_corr_validate,
    oracle=return_correlation_oracle,
    instruments=2,
    definition="Pearson correlation of the log returns of inst and ref_inst between consecutive bucket closes (as-of "
               "price at each 1-min bucket end; empty buckets return 0) over the last `window` (60) completed "
               "buckets; NaN while a return is unknown or a series is constant in the window",
    source="algo-engine-design.md: CorrelationMonitor (Pearson, 1-minute returns vs the leader)",
    warmup="window + 1 bucket closes after both prices are known",
))
