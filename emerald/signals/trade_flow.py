"""Trade-flow metrics over bucketed time windows (see :mod:`emerald.signals._ring`).

``trade_flow_imbalance`` is the reference kernel; the others (buy/sell ratio, cumulative volume
delta, large trades and whales, exhaustion, volume spike, trade rate, consecutive price moves,
flow toxicity) follow the conventions of :mod:`emerald.signals._flow_common`.

Sources: ``emerald-gameplan.md`` (trade flow, whales), ``intelligence-prd-v2.md`` (volume delta,
spikes, whales), ``algo-engine-design.md`` (order-flow analyzer: ratio, CVD, large trades,
exhaustion; consecutive price drops), ``cto-review-revised-direction.md`` (flow toxicity).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.model.enums import Kind
from emerald.signals._flow_common import (
    NO_EDGE,
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
from emerald.signals._ring import RING_CAPACITY, ring_fields, ring_move_nb, ring_put_nb
from emerald.signals.base import DAY_NS, MINUTE_NS, SECOND_NS, MetricSpec, Param, Params, register

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

TFI_STATE = np.dtype([*ring_fields("w", 3), ("edge", np.int64)], align=True)  # sums: buy qty, sell qty, count


def _tfi_init(state: np.ndarray, params: Params) -> None:
    init_rings(state, "w")


@njit(cache=True, inline="always", error_model="numpy")
def tfi_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Trade-flow imbalance ``(B - S) / (B + S)`` of aggressive base volume over the window,
    counting trades with notional >= ``min_notional``; NaN while the window holds no such trade.

    pandas equivalent (oracle): bucket ``ts // bucket_ns``, sum buy and sell qty per bucket,
    rolling sum over the last ``window_ns // bucket_ns`` buckets (by bucket id, gaps included).

    Speed (the shape every windowed kernel copies, see :mod:`emerald.signals._ring`): inlined
    into its batch loop with the numpy error model, every event array read before a branch, the
    ring moved only when an event reaches the end of the current bucket (``edge``) and trades
    added at the cached head slot.
    """
    s = state[0]
    q = p[0]
    t = ts[i]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    # the window moves with stream time (every event), so the value at time t is the flow in
    # the window ending at t whichever other inputs share the stream
    if t >= s.edge:
        b = t // q.bucket_ns
        s.w_head, s.w_slot = ring_move_nb(s.w_slots, s.w_sum, s.w_head, b, q.window_ns // q.bucket_ns, 2)
        s.edge = (b + 1) * q.bucket_ns
    if k == TRADES and ins == q.inst and price * qty >= q.min_notional:
        ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 0 if side > 0 else 1, qty)
        ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 2, 1.0)
    buy, sell = s.w_sum[0], s.w_sum[1]
    tot = buy + sell
    out[i, 0] = (buy - sell) / tot if tot > 0.0 else np.nan


@njit(cache=True, error_model="numpy", nogil=True)
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


# ================================================================================================
# The metrics below share the conventions of :mod:`emerald.signals._flow_common`: usable trades
# (finite positive price, finite qty >= 0, side +1/-1; others skipped), cached ring slots, and an
# ``edge`` at which the next bucket starts (every event of any kind advances the windows there).

INST = WINDOW_PARAMS[0]
BUCKET = WINDOW_PARAMS[2]


def _window(name: str, default: int, doc: str) -> Param:
    return Param(name, "ns", default, SECOND_NS, 7 * DAY_NS, doc, integer=True)


# ------------------------------------------------------------------------- buy/sell volume ratio

BSR_STATE = np.dtype([*ring_fields("w", 4), ("edge", np.int64)], align=True)  # buy, sell, n buy, n sell


def _bsr_init(state: np.ndarray, params: Params) -> None:
    init_rings(state, "w")


@njit(cache=True, inline="always", error_model="numpy")
def bsr_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Aggressive buy qty / sell qty over the window (trades with qty > 0 and notional >=
    ``min_notional``), capped at ``cap``; ``cap`` with buys and no sell, NaN with neither.

    pandas equivalent (oracle): per event, sum buy and sell qty of the trades whose bucket
    ``ts // bucket_ns`` lies in the last ``window_ns // bucket_ns`` buckets; ``min(B / S, cap)``.
    """
    s = state[0]
    q = p[0]
    t = ts[i]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    if t >= s.edge:  # a new bucket: buckets leaving the window are subtracted
        b = t // q.bucket_ns
        s.w_head, s.w_slot = ring_move_nb(s.w_slots, s.w_sum, s.w_head, b, q.window_ns // q.bucket_ns, -1)
        zero_if_empty(s.w_sum, 0, 2)
        zero_if_empty(s.w_sum, 1, 3)
        s.edge = (b + 1) * q.bucket_ns
    if k == TRADES and ins == q.inst:
        if valid_trade(price, qty, side) and qty > 0.0 and price * qty >= q.min_notional:
            j = 0 if side > 0.0 else 1
            ring_put_nb(s.w_slots, s.w_sum, s.w_slot, j, qty)
            ring_put_nb(s.w_slots, s.w_sum, s.w_slot, j + 2, 1.0)
    out[i, 0] = ratio_nb(s.w_sum[0], s.w_sum[1], s.w_sum[2], s.w_sum[3], q.cap)


@njit(cache=True, error_model="numpy", nogil=True)
def bsr_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        bsr_step_nb(state, p, ts, kind, inst, row, f, i, out)


def bsr_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Per event, exact window sums of the qualifying trades (numpy slices, no running sums)."""
    idx, tts, price, qty, side = oracle_trades(events, params.inst)
    keep = (qty > 0) & (price * qty >= params.min_notional)
    idx, tts, qty, side = idx[keep], tts[keep], qty[keep], side[keep]
    lo, hi = oracle_window_bounds(events, idx, tts, params.window_ns, params.bucket_ns)
    out = np.full((len(events), 1), np.nan)
    for i in range(len(events)):
        qs, ss = qty[lo[i]:hi[i]], side[lo[i]:hi[i]]
        out[i, 0] = oracle_ratio(qs[ss > 0].sum(), qs[ss < 0].sum(), params.cap)
    return out


register(MetricSpec(
    name="buy_sell_ratio",
    family="trade_flow",
    inputs=("trades",),
    outputs=("ratio",),
    params=(INST, _window("window_ns", 30 * SECOND_NS, "window length (design: last 30 s of trades)"), BUCKET,
            Param("min_notional", "quote", 0.0, 0.0, 1e9, "ignore trades with price*qty below this"),
            Param("cap", "ratio", 100.0, 1.0, 1e6, "value when sell volume is 0 (and upper bound of the ratio)")),
    state_dtype=BSR_STATE,
    step_nb=bsr_step_nb,
    batch_nb=bsr_batch_nb,
    init_state=_bsr_init,
    validate=lambda v: check_windows(v, ("window_ns",)),
    oracle=bsr_oracle,
    definition="min(aggressive buy qty / aggressive sell qty, cap) over the window (trades >= min_notional); "
               "cap when the window holds buys but no sell, 0 with sells but no buy",
    source="algo-engine-design.md: Order Flow Analyzer (buy_volume / sell_volume, 30 s, > 2.5:1)",
    warmup="first qualifying trade; NaN while the window holds no trade with qty > 0",
))

# ------------------------------------------------------------------------ cumulative volume delta

CVD_STATE = np.dtype([*ring_fields("w", 2), ("edge", np.int64), ("session_end", np.int64),
                      ("session_sum", np.float64), ("started", np.int64)], align=True)  # ring: delta, count


def _cvd_init(state: np.ndarray, params: Params) -> None:
    init_rings(state, "w")
    state["session_end"] = NO_EDGE


def _cvd_validate(values: dict) -> None:
    check_windows(values, ("window_ns",))
    if not 0 <= values["session_offset_ns"] < values["session_ns"]:
        raise ConfigError(f"`session_offset_ns` must be in [0, session_ns={values['session_ns']}), "
                          f"was {values['session_offset_ns']}")


@njit(cache=True, inline="always", error_model="numpy")
def cvd_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Signed aggressive volume (+ buys, - sells; base qty, or quote notional with
    ``notional=1``) summed since the session start (``cvd_session``) and over the rolling window
    (``cvd_rolling``).

    Sessions start at ``session_offset_ns + k * session_ns`` (default 00:00 UTC daily); the first
    event of any kind at or after a boundary resets ``cvd_session`` to 0.
    pandas equivalent (oracle): ``d.groupby(session_id).cumsum()`` and the bucketed rolling sum.
    """
    s = state[0]
    q = p[0]
    t = ts[i]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    if t >= s.edge:
        b = t // q.bucket_ns
        s.w_head, s.w_slot = ring_move_nb(s.w_slots, s.w_sum, s.w_head, b, q.window_ns // q.bucket_ns, 1)
        s.edge = (b + 1) * q.bucket_ns
    if t >= s.session_end:
        sid = (t - q.session_offset_ns) // q.session_ns
        s.session_end = (sid + 1) * q.session_ns + q.session_offset_ns
        s.session_sum = 0.0
    if k == TRADES and ins == q.inst:
        if valid_trade(price, qty, side):
            d = qty * price if q.notional else qty
            d = d if side > 0.0 else -d
            ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 0, d)
            ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 1, 1.0)
            s.session_sum += d
            s.started = 1
    if s.started:
        out[i, 0] = s.session_sum
        out[i, 1] = s.w_sum[0]
    else:
        out[i, 0] = np.nan
        out[i, 1] = np.nan


@njit(cache=True, error_model="numpy", nogil=True)
def cvd_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        cvd_step_nb(state, p, ts, kind, inst, row, f, i, out)


def cvd_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Plain loop: session id of every event, exact sums over the trades of that session and
    over the window."""
    idx, tts, price, qty, side = oracle_trades(events, params.inst)
    d = np.where(side > 0, 1.0, -1.0) * (qty * price if params.notional else qty)
    lo, hi = oracle_window_bounds(events, idx, tts, params.window_ns, params.bucket_ns)
    sess_ev = (events.ts - params.session_offset_ns) // params.session_ns
    sess_tr = (tts - params.session_offset_ns) // params.session_ns
    out = np.full((len(events), 2), np.nan)
    for i in range(len(events)):
        if hi[i] == 0:
            continue
        seen = slice(0, hi[i])
        out[i, 0] = d[seen][sess_tr[seen] == sess_ev[i]].sum()
        out[i, 1] = d[lo[i]:hi[i]].sum()
    return out


register(MetricSpec(
    name="cumulative_volume_delta",
    family="trade_flow",
    inputs=("trades",),
    outputs=("cvd_session", "cvd_rolling"),
    params=(INST, _window("window_ns", 15 * MINUTE_NS, "rolling window of cvd_rolling"), BUCKET,
            Param("session_ns", "ns", DAY_NS, MINUTE_NS, 7 * DAY_NS, "session length (cvd_session resets)",
                  integer=True),
            Param("session_offset_ns", "ns", 0, 0, 7 * DAY_NS,
                  "session start after 00:00 UTC (epoch-aligned); 0 = midnight UTC", integer=True),
            Param("notional", "flag", 0, 0, 1, "0: base qty; 1: quote notional price*qty", integer=True)),
    state_dtype=CVD_STATE,
    step_nb=cvd_step_nb,
    batch_nb=cvd_batch_nb,
    init_state=_cvd_init,
    validate=_cvd_validate,
    oracle=cvd_oracle,
    definition="running sum of signed aggressive volume (+buy, -sell) since the last session boundary "
               "(default 00:00 UTC), and its rolling sum over the window",
    source="intelligence-prd-v2.md: volume delta tracker (running delta, session reset); "
           "algo-engine-design.md: CVD over the last 15 minutes",
    warmup="first usable trade of the instrument; afterwards 0 when the session/window holds no trade",
))

# -------------------------------------------------------------------- large trades and whales

LARGE_STATE = np.dtype([*ring_fields("w", 6), ("edge", np.int64), ("last_large", np.float64),
                        ("started", np.int64)], align=True)
# ring sums: qty, trades, large trades, large notional, whale trades, whale notional


def _large_init(state: np.ndarray, params: Params) -> None:
    init_rings(state, "w")
    state["last_large"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def large_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """A trade is *large* when its qty > ``k`` x the mean qty of the trades already in the
    window (before it; relative tolerance 1e-9 against rounding); *whale* when its notional > ``whale_notional``. Outputs: whether the
    latest trade was large (NaN when the window held no earlier trade), and the count and
    notional of large and of whale trades in the window.

    pandas equivalent (oracle): per trade, mean qty of the earlier trades in its window; per
    event, sums over the window of the flags and notionals.
    """
    s = state[0]
    q = p[0]
    t = ts[i]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    if t >= s.edge:
        b = t // q.bucket_ns
        s.w_head, s.w_slot = ring_move_nb(s.w_slots, s.w_sum, s.w_head, b, q.window_ns // q.bucket_ns, 1)
        s.edge = (b + 1) * q.bucket_ns
    if k == TRADES and ins == q.inst:
        if valid_trade(price, qty, side):
            n = s.w_sum[1]
            large = False
            if n > 0.0:
                # clamp: the qty sum of a window of zero-size trades may carry a negative residue
                large = greater(qty, q.k * (max(s.w_sum[0], 0.0) / n))
                s.last_large = 1.0 if large else 0.0
            else:
                s.last_large = np.nan
            notional = price * qty
            ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 0, qty)
            ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 1, 1.0)
            if large:
                ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 2, 1.0)
                ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 3, notional)
            if notional > q.whale_notional:
                ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 4, 1.0)
                ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 5, notional)
            s.started = 1
    if s.started:
        out[i, 0] = s.last_large
        out[i, 1] = s.w_sum[2]
        out[i, 2] = s.w_sum[3]
        out[i, 3] = s.w_sum[4]
        out[i, 4] = s.w_sum[5]
    else:
        for j in range(5):
            out[i, j] = np.nan


@njit(cache=True, error_model="numpy", nogil=True)
def large_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        large_step_nb(state, p, ts, kind, inst, row, f, i, out)


def large_oracle(events: EventTable, params: Params) -> np.ndarray:
    idx, tts, price, qty, side = oracle_trades(events, params.inst)
    lo, hi = oracle_window_bounds(events, idx, tts, params.window_ns, params.bucket_ns)
    notional = price * qty
    flag = np.full(len(idx), np.nan)
    for j, e in enumerate(idx):
        earlier = qty[lo[e]:j]  # the trades in the window as of trade j, before it
        if earlier.size:
            threshold = params.k * earlier.mean()
            flag[j] = float(qty[j] - threshold > 1e-9 * threshold)
    large = flag == 1.0
    whale = notional > params.whale_notional
    out = np.full((len(events), 5), np.nan)
    for i in range(len(events)):
        if hi[i] == 0:
            continue
        w = slice(lo[i], hi[i])
        out[i] = (flag[hi[i] - 1], large[w].sum(), notional[w][large[w]].sum(), whale[w].sum(),
                  notional[w][whale[w]].sum())
    return out


register(MetricSpec(
    name="large_trades",
    family="trade_flow",
    inputs=("trades",),
    outputs=("is_large", "large_count", "large_notional", "whale_count", "whale_notional"),
    params=(INST, _window("window_ns", 5 * MINUTE_NS, "window of the mean size and of the counts"), BUCKET,
            Param("k", "x mean size", 10.0, 1.0, 1e4, "large: qty > k x mean qty of the earlier trades in the window"),
            Param("whale_notional", "quote", 500_000.0, 0.0, 1e12, "whale: trade notional above this")),
    state_dtype=LARGE_STATE,
    step_nb=large_step_nb,
    batch_nb=large_batch_nb,
    init_state=_large_init,
    validate=lambda v: check_windows(v, ("window_ns",)),
    oracle=large_oracle,
    oracle_tolerance=1e-9,
    definition="large trade: qty > k x mean qty of the earlier trades in the window (is_large: the latest "
               "trade); count and notional of large trades and of whale trades (notional > whale_notional) "
               "in the window",
    source="algo-engine-design.md: large trade detection (> 10x average size, last 5 minutes); "
           "intelligence-prd-v2.md: whale trade > $500k",
    warmup="first usable trade; is_large NaN for a trade whose window holds no earlier trade",
))

# -------------------------------------------------------------------------------------- exhaustion

EXH_STATE = np.dtype([*ring_fields("s", 4), *ring_fields("l", 4), ("edge", np.int64),
                      ("first_ts", np.int64), ("started", np.int64)], align=True)  # buy, sell, n buy, n sell


def _exh_init(state: np.ndarray, params: Params) -> None:
    init_rings(state, "s", "l")


def _exh_validate(values: dict) -> None:
    check_windows(values, ("short_ns", "long_ns"), increasing=True)


@njit(cache=True, inline="always", error_model="numpy")
def _exhaustion_ratio(short, long_, n_long, scale):
    """``short / (long * scale)``; NaN when the long window holds no volume (``n_long == 0``)."""
    return short / (long_ * scale) if n_long > 0.0 else np.nan


@njit(cache=True, inline="always", error_model="numpy")
def _flag(x, threshold):
    return np.nan if np.isnan(x) else (1.0 if x < threshold else 0.0)


@njit(cache=True, inline="always", error_model="numpy")
def exh_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Aggressive volume of the last ``short_ns`` relative to its average per ``short_ns`` over
    the last ``long_ns`` (the long window includes the short one): ``ratio = V_short /
    (V_long * short_ns / long_ns)``; exhausted when ``ratio < threshold``. Computed for all
    aggressive volume and for each side (``buy_*`` / ``sell_*``: that side's volume only).

    pandas equivalent (oracle): two bucketed rolling sums of qty, per side.
    """
    s = state[0]
    q = p[0]
    t = ts[i]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    if t >= s.edge:
        b = t // q.bucket_ns
        s.s_head, s.s_slot = ring_move_nb(s.s_slots, s.s_sum, s.s_head, b, q.short_ns // q.bucket_ns, -1)
        s.l_head, s.l_slot = ring_move_nb(s.l_slots, s.l_sum, s.l_head, b, q.long_ns // q.bucket_ns, -1)
        for j in range(2):
            zero_if_empty(s.s_sum, j, j + 2)
            zero_if_empty(s.l_sum, j, j + 2)
        s.edge = (b + 1) * q.bucket_ns
    if k == TRADES and ins == q.inst:
        if valid_trade(price, qty, side):
            if not s.started:
                s.started = 1
                s.first_ts = t
            if qty > 0.0:
                j = 0 if side > 0.0 else 1
                ring_put_nb(s.s_slots, s.s_sum, s.s_slot, j, qty)
                ring_put_nb(s.s_slots, s.s_sum, s.s_slot, j + 2, 1.0)
                ring_put_nb(s.l_slots, s.l_sum, s.l_slot, j, qty)
                ring_put_nb(s.l_slots, s.l_sum, s.l_slot, j + 2, 1.0)
    if s.started and t - s.first_ts >= q.long_ns:
        scale = q.short_ns / q.long_ns
        tot = _exhaustion_ratio(s.s_sum[0] + s.s_sum[1], s.l_sum[0] + s.l_sum[1], s.l_sum[2] + s.l_sum[3], scale)
        buy = _exhaustion_ratio(s.s_sum[0], s.l_sum[0], s.l_sum[2], scale)
        sell = _exhaustion_ratio(s.s_sum[1], s.l_sum[1], s.l_sum[3], scale)
        out[i, 0] = tot
        out[i, 1] = _flag(tot, q.threshold)
        out[i, 2] = buy
        out[i, 3] = _flag(buy, q.threshold)
        out[i, 4] = sell
        out[i, 5] = _flag(sell, q.threshold)
    else:
        for j in range(6):
            out[i, j] = np.nan


@njit(cache=True, error_model="numpy", nogil=True)
def exh_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        exh_step_nb(state, p, ts, kind, inst, row, f, i, out)


def exh_oracle(events: EventTable, params: Params) -> np.ndarray:
    idx, tts, price, qty, side = oracle_trades(events, params.inst)
    s_lo, hi = oracle_window_bounds(events, idx, tts, params.short_ns, params.bucket_ns)
    l_lo, _ = oracle_window_bounds(events, idx, tts, params.long_ns, params.bucket_ns)
    scale = params.short_ns / params.long_ns
    out = np.full((len(events), 6), np.nan)
    for i in range(len(events)):
        if hi[i] == 0 or events.ts[i] - tts[0] < params.long_ns:
            continue
        row_ = []
        for sel in (side != 0, side > 0, side < 0):
            short = qty[s_lo[i]:hi[i]][sel[s_lo[i]:hi[i]]].sum()
            long_ = qty[l_lo[i]:hi[i]][sel[l_lo[i]:hi[i]]].sum()
            r = short / (long_ * scale) if long_ > 0 else np.nan
            row_ += [r, np.nan if np.isnan(r) else float(r < params.threshold)]
        out[i] = row_
    return out


register(MetricSpec(
    name="exhaustion",
    family="trade_flow",
    inputs=("trades",),
    outputs=("ratio", "exhausted", "buy_ratio", "buy_exhausted", "sell_ratio", "sell_exhausted"),
    params=(INST, _window("short_ns", 30 * SECOND_NS, "recent window"),
            _window("long_ns", 5 * MINUTE_NS, "average window (includes the recent one)"), BUCKET,
            Param("threshold", "ratio", 0.5, 0.0, 1.0, "exhausted when recent volume < threshold x its average")),
    state_dtype=EXH_STATE,
    step_nb=exh_step_nb,
    batch_nb=exh_batch_nb,
    init_state=_exh_init,
    validate=_exh_validate,
    oracle=exh_oracle,
    definition="ratio = aggressive volume of the last short_ns / (volume of the last long_ns x short_ns/long_ns); "
               "exhausted = ratio < threshold; for all trades and per side (buy_*, sell_*: that side only)",
    source="algo-engine-design.md: exhaustion detection (aggressive volume drops < 50% of 5-min average)",
    warmup="long_ns of stream time after the first usable trade; NaN while the long window holds no volume "
           "(of that side)",
))

# -------------------------------------------------------------------------- volume spike multiplier

SPIKE_STATE = np.dtype([*ring_fields("c", 2), *ring_fields("l", 2), ("edge", np.int64),
                        ("first_ts", np.int64), ("started", np.int64)], align=True)  # qty, n trades qty > 0


def _spike_init(state: np.ndarray, params: Params) -> None:
    init_rings(state, "c", "l")


def _spike_validate(values: dict) -> None:
    check_windows(values, ("window_ns",))
    span = (values["periods"] + 1) * values["window_ns"]
    if span // values["bucket_ns"] > RING_CAPACITY:
        raise ConfigError(f"(`periods` + 1) x `window_ns` / `bucket_ns` must be <= {RING_CAPACITY} buckets, "
                          f"was {span // values['bucket_ns']}")


@njit(cache=True, inline="always", error_model="numpy")
def spike_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Volume (base qty) of the last ``window_ns`` divided by the mean volume per ``window_ns``
    of the ``periods`` windows before it: ``V_now / (V_prev / periods)``.

    Two rings: the current window and the current plus the preceding ``periods`` windows; the
    preceding volume is their difference. NaN when the preceding windows hold no volume.
    pandas equivalent (oracle): bucketed rolling sums over ``window_ns`` and ``(periods+1) x window_ns``.
    """
    s = state[0]
    q = p[0]
    t = ts[i]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    if t >= s.edge:
        b = t // q.bucket_ns
        nb = q.window_ns // q.bucket_ns
        s.c_head, s.c_slot = ring_move_nb(s.c_slots, s.c_sum, s.c_head, b, nb, 1)
        s.l_head, s.l_slot = ring_move_nb(s.l_slots, s.l_sum, s.l_head, b, nb * (q.periods + 1), 1)
        s.edge = (b + 1) * q.bucket_ns
    if k == TRADES and ins == q.inst:
        if valid_trade(price, qty, side):
            if not s.started:
                s.started = 1
                s.first_ts = t
            if qty > 0.0:
                ring_put_nb(s.c_slots, s.c_sum, s.c_slot, 0, qty)
                ring_put_nb(s.c_slots, s.c_sum, s.c_slot, 1, 1.0)
                ring_put_nb(s.l_slots, s.l_sum, s.l_slot, 0, qty)
                ring_put_nb(s.l_slots, s.l_sum, s.l_slot, 1, 1.0)
    if s.started and t - s.first_ts >= (q.periods + 1) * q.window_ns and s.l_sum[1] > s.c_sum[1]:
        out[i, 0] = s.c_sum[0] * q.periods / (s.l_sum[0] - s.c_sum[0])
    else:
        out[i, 0] = np.nan


@njit(cache=True, error_model="numpy", nogil=True)
def spike_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        spike_step_nb(state, p, ts, kind, inst, row, f, i, out)


def spike_oracle(events: EventTable, params: Params) -> np.ndarray:
    idx, tts, price, qty, side = oracle_trades(events, params.inst)
    c_lo, hi = oracle_window_bounds(events, idx, tts, params.window_ns, params.bucket_ns)
    l_lo, _ = oracle_window_bounds(events, idx, tts, (params.periods + 1) * params.window_ns, params.bucket_ns)
    out = np.full((len(events), 1), np.nan)
    for i in range(len(events)):
        if hi[i] == 0 or events.ts[i] - tts[0] < (params.periods + 1) * params.window_ns:
            continue
        prev = qty[l_lo[i]:c_lo[i]].sum()
        if prev > 0:
            out[i, 0] = qty[c_lo[i]:hi[i]].sum() / (prev / params.periods)
    return out


register(MetricSpec(
    name="volume_spike",
    family="trade_flow",
    inputs=("trades",),
    outputs=("multiplier",),
    params=(INST, _window("window_ns", MINUTE_NS, "current window (one period)"), BUCKET,
            Param("periods", "windows", 20, 1, 4095, "number of preceding windows averaged", integer=True)),
    state_dtype=SPIKE_STATE,
    step_nb=spike_step_nb,
    batch_nb=spike_batch_nb,
    init_state=_spike_init,
    validate=_spike_validate,
    oracle=spike_oracle,
    oracle_tolerance=1e-9,
    definition="volume of the last window / mean volume per window over the `periods` windows before it "
               "(base qty of all aggressive trades)",
    source="algo-engine-design.md: volume_spike = current_volume / avg_volume_20periods; "
           "intelligence-prd-v2.md: spike multipliers 2.5-5x",
    warmup="(periods + 1) x window_ns of stream time after the first usable trade; NaN while the preceding "
           "windows hold no volume",
))

# --------------------------------------------------------------------------------------- trade rate

RATE_STATE = np.dtype([*ring_fields("w", 1), ("edge", np.int64), ("first_ts", np.int64),
                       ("started", np.int64)], align=True)  # trades


def _rate_init(state: np.ndarray, params: Params) -> None:
    init_rings(state, "w")


@njit(cache=True, inline="always", error_model="numpy")
def rate_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Usable trades (any size) in the window divided by its length in seconds.

    pandas equivalent (oracle): bucketed rolling count / (window_ns / 1e9).
    """
    s = state[0]
    q = p[0]
    t = ts[i]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    if t >= s.edge:
        b = t // q.bucket_ns
        s.w_head, s.w_slot = ring_move_nb(s.w_slots, s.w_sum, s.w_head, b, q.window_ns // q.bucket_ns, 0)
        s.edge = (b + 1) * q.bucket_ns
    if k == TRADES and ins == q.inst and valid_trade(price, qty, side):
        if not s.started:
            s.started = 1
            s.first_ts = t
        ring_put_nb(s.w_slots, s.w_sum, s.w_slot, 0, 1.0)
    if s.started and t - s.first_ts >= q.window_ns:
        out[i, 0] = s.w_sum[0] * 1e9 / q.window_ns
    else:
        out[i, 0] = np.nan


@njit(cache=True, error_model="numpy", nogil=True)
def rate_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        rate_step_nb(state, p, ts, kind, inst, row, f, i, out)


def rate_oracle(events: EventTable, params: Params) -> np.ndarray:
    idx, tts, _, _, _ = oracle_trades(events, params.inst)
    lo, hi = oracle_window_bounds(events, idx, tts, params.window_ns, params.bucket_ns)
    out = np.full((len(events), 1), np.nan)
    ok = (hi > 0) & (events.ts - (tts[0] if len(tts) else 0) >= params.window_ns)
    out[ok, 0] = (hi - lo)[ok] / (params.window_ns / 1e9)
    return out


register(MetricSpec(
    name="trade_rate",
    family="trade_flow",
    inputs=("trades",),
    outputs=("trades_per_s",),
    params=(INST, _window("window_ns", MINUTE_NS, "window length"), BUCKET),
    state_dtype=RATE_STATE,
    step_nb=rate_step_nb,
    batch_nb=rate_batch_nb,
    init_state=_rate_init,
    validate=lambda v: check_windows(v, ("window_ns",)),
    oracle=rate_oracle,
    definition="number of trades (any size) in the window / window length in seconds",
    source="issue (trade rate); algo-engine-design.md: Order Flow Analyzer needs >= 5 trades in its window",
    warmup="window_ns of stream time after the first usable trade",
))

# ------------------------------------------------------------------------- consecutive price moves

CONSEC_STATE = np.dtype([("last_price", np.float64), ("down", np.float64), ("up", np.float64),
                         ("started", np.int64)], align=True)


@njit(cache=True, inline="always", error_model="numpy")
def consec_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Length of the current run of trade-price down-ticks and up-ticks. A trade below the
    previous trade price adds one down-tick and ends any up run (up = 0), and the mirror for a
    trade above; a trade at the previous price changes neither count. Trade sides are ignored:
    this is PRICE direction (a LONG reads ``down_ticks`` as adverse moves, a SHORT ``up_ticks``).
    Every trade counts, including the fills of one sweep at one timestamp; no time window.

    pandas equivalent (oracle): sign of ``price.diff()`` with zeros dropped, run lengths.
    """
    s = state[0]
    q = p[0]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    if k == TRADES and ins == q.inst and valid_trade(price, qty, side):
        if s.started:
            if price < s.last_price:
                s.down += 1.0
                s.up = 0.0
            elif price > s.last_price:
                s.up += 1.0
                s.down = 0.0
        s.started = 1
        s.last_price = price
    if s.started:
        out[i, 0] = s.down
        out[i, 1] = s.up
    else:
        out[i, 0] = np.nan
        out[i, 1] = np.nan


@njit(cache=True, error_model="numpy", nogil=True)
def consec_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        consec_step_nb(state, p, ts, kind, inst, row, f, i, out)


def consec_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Walk back from each trade over the earlier trade prices (independent of the run state)."""
    idx, _, price, _, _ = oracle_trades(events, params.inst)
    runs = np.zeros((len(idx), 2))
    for j in range(len(idx)):
        moves = np.sign(np.diff(price[: j + 1]))
        moves = moves[moves != 0]
        if moves.size:
            last = moves[-1]
            n = len(moves) - (np.flatnonzero(moves != last)[-1] + 1 if (moves != last).any() else 0)
            runs[j, 0 if last < 0 else 1] = n
    out = np.full((len(events), 2), np.nan)
    hi = np.searchsorted(idx, np.arange(len(events)), side="right")
    out[hi > 0] = runs[hi[hi > 0] - 1]
    return out


register(MetricSpec(
    name="consecutive_price_moves",
    family="trade_flow",
    inputs=("trades",),
    outputs=("down_ticks", "up_ticks"),
    params=(INST,),
    state_dtype=CONSEC_STATE,
    step_nb=consec_step_nb,
    batch_nb=consec_batch_nb,
    oracle=consec_oracle,
    definition="number of consecutive trade-price decreases (down_ticks) / increases (up_ticks) up to now, "
               "unchanged prices ignored; price direction, not trade side",
    source="algo-engine-design.md 2.6.2: consecutive price drops against the position (price, not sides)",
    warmup="first usable trade (then 0)",
))

# ----------------------------------------------------------------------------------- flow toxicity

MAX_INTERVALS = 1024
TOX_STATE = np.dtype([
    ("started", np.int64), ("cur", np.int64), ("first_iv", np.int64), ("iv_end", np.int64),
    ("cur_vol", np.float64), ("close", np.float64), ("prev_close", np.float64),
    ("vol_hist", np.float64, (MAX_INTERVALS + 1,)),  # interval volumes by interval index % (N + 1)
    ("imp_hist", np.float64, (MAX_INTERVALS,)),  # impacts by interval index % N
    ("imp_ok", np.int64, (MAX_INTERVALS,)),
    ("tox", np.float64), ("mean", np.float64), ("std", np.float64),
], align=True)


def _tox_init(state: np.ndarray, params: Params) -> None:
    state["close"] = np.nan
    state["prev_close"] = np.nan
    state["tox"] = np.nan
    state["mean"] = np.nan
    state["std"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def _tox_close_nb(s, q):
    """Close interval ``s.cur``: its impact from the previous close and the preceding volumes."""
    n = q.n_intervals
    c = s.cur
    ok = 0
    impact = 0.0
    if c - n >= s.first_iv and s.prev_close == s.prev_close:  # N full intervals of history, a previous close
        prev_vol = 0.0
        for k in range(1, n + 1):
            prev_vol += s.vol_hist[(c - k) % (n + 1)]
        if prev_vol > 0.0:
            rel_vol = s.cur_vol / (prev_vol / n)  # normalised by the PRECEDING intervals only
            if rel_vol > q.min_volume_ratio:
                impact = abs(s.close - s.prev_close) / s.prev_close / rel_vol
                ok = 1
    s.imp_hist[c % n] = impact
    s.imp_ok[c % n] = ok
    s.vol_hist[c % (n + 1)] = s.cur_vol
    s.cur_vol = 0.0
    s.prev_close = s.close


@njit(cache=True, inline="always", error_model="numpy")
def _tox_roll_nb(s, q, new_iv):
    """Close every interval before ``new_iv`` and refresh the statistics. After N + 1 empty
    intervals every history slot is 0 / invalid, so longer gaps are not walked."""
    n = q.n_intervals
    todo = min(new_iv - s.cur, n + 2)
    for _ in range(todo):
        _tox_close_nb(s, q)
        s.cur += 1
    s.cur = new_iv
    s.iv_end = (new_iv + 1) * q.interval_ns
    m = 0
    total = 0.0
    for k in range(n):
        if s.imp_ok[k]:
            m += 1
            total += s.imp_hist[k]
    s.mean = total / m if m > 0 else np.nan
    if m >= 2:
        ss = 0.0
        for k in range(n):
            if s.imp_ok[k]:
                ss += (s.imp_hist[k] - s.mean) ** 2
        s.std = np.sqrt(ss / m)
        s.tox = s.mean / s.std if s.std > 0.0 else np.nan
    else:
        s.std = np.nan
        s.tox = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def tox_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Flow toxicity over the last ``n_intervals`` completed intervals of ``interval_ns``
    (epoch-aligned). Per interval c: ``r_c = |P_c - P_{c-1}| / P_{c-1}`` (P = last trade price
    at the interval's end), volume ratio ``v_c / mean(v_{c-N} .. v_{c-1})`` (the N PRECEDING
    intervals, so nothing after c enters), impact ``r_c / ratio`` when ratio > ``min_volume_ratio``
    (else the interval has no impact). Outputs mean, population std and mean/std of the valid
    impacts; values change only when an interval completes (first event in a later interval).

    pandas equivalent (oracle): per-interval volume and forward-filled close, then the formulas.
    """
    s = state[0]
    q = p[0]
    t = ts[i]
    k, ins, price, qty, side = kind[i], inst[i], f[0, i], f[1, i], f[2, i]  # read every array before a branch
    if s.started and t >= s.iv_end:
        _tox_roll_nb(s, q, t // q.interval_ns)
    if k == TRADES and ins == q.inst:
        if valid_trade(price, qty, side):
            if not s.started:
                s.started = 1
                s.cur = t // q.interval_ns
                s.first_iv = s.cur
                s.iv_end = (s.cur + 1) * q.interval_ns
            s.cur_vol += qty
            s.close = price
    out[i, 0] = s.tox
    out[i, 1] = s.mean
    out[i, 2] = s.std


@njit(cache=True, error_model="numpy", nogil=True)
def tox_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        tox_step_nb(state, p, ts, kind, inst, row, f, i, out)


def tox_oracle(events: EventTable, params: Params) -> np.ndarray:
    n_iv, iv_ns = params.n_intervals, params.interval_ns
    idx, tts, price, qty, _ = oracle_trades(events, params.inst)
    out = np.full((len(events), 3), np.nan)
    if not len(idx):
        return out
    first = tts[0] // iv_ns
    last = max(int(events.ts.max()) // iv_ns, first)
    m = last - first + 1
    pos = tts // iv_ns - first
    vol = np.zeros(m)
    np.add.at(vol, pos, qty)
    close = np.full(m, np.nan)
    last_of_iv = np.flatnonzero(np.r_[pos[1:] != pos[:-1], True])
    close[pos[last_of_iv]] = price[last_of_iv]
    for c in range(1, m):  # forward fill
        if np.isnan(close[c]):
            close[c] = close[c - 1]
    impact = np.full(m, np.nan)
    for c in range(n_iv, m):
        base = vol[c - n_iv:c].mean()
        if base > 0 and vol[c] / base > params.min_volume_ratio:
            impact[c] = abs(close[c] - close[c - 1]) / close[c - 1] / (vol[c] / base)
    newest = np.maximum.accumulate(events.ts) // iv_ns - first
    for i in range(idx[0], len(events)):
        cur = newest[i]  # the completed intervals are those before the current one
        x = impact[max(cur - n_iv, 0):cur]
        x = x[~np.isnan(x)]
        if x.size:
            out[i, 1] = x.mean()
        if x.size >= 2:
            out[i, 2] = x.std()
            out[i, 0] = out[i, 1] / out[i, 2] if out[i, 2] > 0 else np.nan
    return out


register(MetricSpec(
    name="flow_toxicity",
    family="trade_flow",
    inputs=("trades",),
    outputs=("toxicity", "mean_impact", "std_impact"),
    params=(INST,
            Param("interval_ns", "ns", MINUTE_NS, SECOND_NS, DAY_NS, "interval (candle) length", integer=True),
            Param("n_intervals", "intervals", 10, 2, MAX_INTERVALS, "intervals in the window and in the "
                  "volume normalisation", integer=True),
            Param("min_volume_ratio", "ratio", 0.1, 0.0, 1e3, "intervals with volume ratio <= this have no impact")),
    state_dtype=TOX_STATE,
    step_nb=tox_step_nb,
    batch_nb=tox_batch_nb,
    init_state=_tox_init,
    oracle=tox_oracle,
    oracle_tolerance=1e-9,
    definition="impact_c = |return of interval c| / (volume_c / mean volume of the N preceding intervals); "
               "toxicity = mean / std (population) of the impacts of the last N completed intervals",
    source="cto-review-revised-direction.md: calculate_flow_toxicity (window=10 candles, volume_ratio > 0.1, "
           "toxicity > 2.0); normalised by PRECEDING intervals here, so no candle sees later volume",
    warmup="N + 1 intervals after the first trade's interval for the first impact; mean needs 1 impact, "
           "std and toxicity 2 (NaN when std is 0)",
))
