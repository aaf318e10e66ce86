"""Trade-flow metrics over bucketed time windows (see :mod:`emerald.signals._ring`).

Sources: ``emerald-gameplan.md`` (trade flow, whales), ``intelligence-prd-v2.md`` (volume delta),
``cto-review-revised-direction.md`` (flow toxicity).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emerald.events.table import EventTable
from emerald.model.enums import Kind
from emerald.signals._ring import RING_CAPACITY, ring_add_nb, ring_advance_nb, ring_fields
from emerald.signals.base import MINUTE_NS, SECOND_NS, MetricSpec, Param, Params, register

TRADES = int(Kind.TRADES)


def _check_window(values: dict) -> None:
    from emerald.errors import ConfigError

    w, b = values["window_ns"], values["bucket_ns"]
    if w % b:
        raise ConfigError(f"`window_ns` must be a multiple of `bucket_ns` ({b}), was {w}")
    if w // b > RING_CAPACITY:
        raise ConfigError(f"`window_ns` / `bucket_ns` must be <= {RING_CAPACITY} buckets, was {w // b}")


WINDOW_PARAMS = (
    Param("inst", "index", 0, 0, 1023, "instrument index in the event table", integer=True),
    Param("window_ns", "ns", MINUTE_NS, SECOND_NS, 7 * 24 * 3600 * SECOND_NS, "window length", integer=True),
    Param("bucket_ns", "ns", SECOND_NS, 1_000_000, 3600 * SECOND_NS, "window resolution", integer=True),
)

# ------------------------------------------------------------------------- trade-flow imbalance

TFI_STATE = np.dtype(ring_fields("w", 3), align=True)  # sums: buy qty, sell qty, count


def _tfi_init(state: np.ndarray, params: Params) -> None:
    state["w_head"] = -1


@njit(cache=True)
def tfi_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Trade-flow imbalance ``(B - S) / (B + S)`` of aggressive base volume over the window,
    counting trades with notional >= ``min_notional``; NaN while the window holds no such trade.

    pandas equivalent (oracle): bucket ``ts // bucket_ns``, sum buy and sell qty per bucket,
    rolling sum over the last ``window_ns // bucket_ns`` buckets (by bucket id, gaps included).
    """
    s = state[0]
    q = p[0]
    nb = q.window_ns // q.bucket_ns
    # the window moves with stream time (every event), so the value at time t is the flow in
    # the window ending at t whichever other inputs share the stream
    s.w_head = ring_advance_nb(s.w_slots, s.w_sum, s.w_head, ts[i] // q.bucket_ns, nb, 2)
    if inst[i] == q.inst and kind[i] == TRADES:
        price, qty, side = f[0, i], f[1, i], f[2, i]
        if price * qty >= q.min_notional:
            ring_add_nb(s.w_slots, s.w_sum, s.w_head, 0 if side > 0 else 1, qty, nb)
            ring_add_nb(s.w_slots, s.w_sum, s.w_head, 2, 1.0, nb)
    buy, sell = s.w_sum[0], s.w_sum[1]
    tot = buy + sell
    out[i, 0] = (buy - sell) / tot if tot > 0.0 else np.nan


@njit(cache=True)
def tfi_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        tfi_step_nb(state, p, ts, kind, inst, row, f, i, out)


def tfi_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Plain-Python loop over the definition (independent of the ring)."""
    n = len(events)
    out = np.full((n, 1), np.nan)
    nbk = params.window_ns // params.bucket_ns
    buckets: dict[int, list[float]] = {}
    last_bucket = None
    for i in range(n):
        b = int(events.ts[i]) // params.bucket_ns
        last_bucket = b if last_bucket is None else max(last_bucket, b)
        if events.inst[i] == params.inst and events.kind[i] == TRADES:
            price, qty, side = events.f[0, i], events.f[1, i], events.f[2, i]
            if price * qty >= params.min_notional:
                acc = buckets.setdefault(b, [0.0, 0.0])
                acc[0 if side > 0 else 1] += qty
        if last_bucket is None:
            continue
        buy = sum(v[0] for k, v in buckets.items() if last_bucket - nbk < k <= last_bucket)
        sell = sum(v[1] for k, v in buckets.items() if last_bucket - nbk < k <= last_bucket)
        if buy + sell > 0:
            out[i, 0] = (buy - sell) / (buy + sell)
    return out


register(MetricSpec(
    name="trade_flow_imbalance",
    family="trade_flow",
    inputs=("trades",),
    outputs=("imbalance",),
    params=(*WINDOW_PARAMS,
            Param("min_notional", "quote", 0.0, 0.0, 1e9, "ignore trades with price*qty below this")),
    state_dtype=TFI_STATE,
    step_nb=tfi_step_nb,
    batch_nb=tfi_batch_nb,
    init_state=_tfi_init,
    validate=_check_window,
    oracle=tfi_oracle,
    oracle_tolerance=1e-9,
    definition="(aggressive buy qty - aggressive sell qty) / (buy + sell) over the window, trades >= min_notional",
    source="emerald-gameplan.md: trade flow imbalance",
    warmup="first qualifying trade; NaN when the window is empty",
))
