"""Liquidation metrics: windowed liquidation notional, long/short ratio, cascades, and estimated
liquidation-cluster levels from open interest x leverage brackets.

Sources: ``intelligence-prd-v2.md`` (liquidation thresholds and cascades, LiquidationPredictor:
brackets 5/10/15/20/25/50x, long level ``price x (1 - 1/L - fees)`` below, short level above, a
0-10 risk score that is highest within 5 % of a cluster), ``emerald-gameplan.md`` (liquidation
cascade detection).

``liquidations.side`` is the side of the liquidation order: -1 is a forced sell, i.e. a **long**
was liquidated; +1 a forced buy (a short was liquidated). Notional = price x qty (quote); events
with a non-positive or NaN notional or a side other than +-1 are skipped.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals._asof import (
    LIQUIDATIONS,
    OPEN_INTEREST,
    PRICE_DOC,
    check_window,
    price_at,
    price_update_nb,
)
from emerald.signals._ring import ring_add_nb, ring_advance_nb, ring_fields
from emerald.signals.base import DAY_NS, HOUR_NS, MINUTE_NS, SECOND_NS, MetricSpec, Param, Params, register

F8 = np.float64
INST = Param("inst", "index", 0, 0, 1023, "perp instrument index in the event table", integer=True)


def _window_params(window_ns: int) -> tuple[Param, ...]:
    return (INST,
            Param("window_ns", "ns", window_ns, SECOND_NS, DAY_NS, "window length", integer=True),
            Param("bucket_ns", "ns", SECOND_NS, 1_000_000, HOUR_NS, "window resolution", integer=True))


def _rows(events: EventTable):
    return zip(events.ts.tolist(), events.kind.tolist(), events.inst.tolist(), events.f.T, strict=True)


def _liq_notional(kind: int, inst: int, fields: np.ndarray, want: int) -> tuple[int, float]:
    """Oracle side: (0 long liquidated / 1 short liquidated / -1 not counted, notional)."""
    if inst != want or kind != LIQUIDATIONS:
        return -1, 0.0
    price, qty, side = fields[0], fields[1], fields[2]
    if not (price > 0 and qty > 0 and math.isfinite(price * qty)) or side not in (1.0, -1.0):
        return -1, 0.0
    return (0 if side < 0 else 1), float(price * qty)


# sums per bucket: long notional, short notional, long count, short count, count
LIQ_STATE = np.dtype(ring_fields("w", 5), align=True)


def _liq_init(state: np.ndarray, params: Params) -> None:
    state["w_head"] = -1


@njit(cache=True, inline="always", error_model="numpy")
def _liq_window_nb(slots, sums, head, ts, kind, inst, f, i, want_inst, window_ns, bucket_ns):
    """Advance the window to event ``i`` and add it if it is a counted liquidation; returns the
    new head. Notional sums are read through their counts (exact zero when none is left)."""
    nb = window_ns // bucket_ns
    head = ring_advance_nb(slots, sums, head, ts[i] // bucket_ns, nb, 4)
    if inst[i] == want_inst and kind[i] == LIQUIDATIONS:
        price, qty, side = f[0, i], f[1, i], f[2, i]
        notional = price * qty
        if price > 0.0 and qty > 0.0 and np.isfinite(notional) and (side == 1.0 or side == -1.0):
            j = 0 if side < 0.0 else 1
            ring_add_nb(slots, sums, head, j, notional, nb)
            ring_add_nb(slots, sums, head, 2 + j, 1.0, nb)
            ring_add_nb(slots, sums, head, 4, 1.0, nb)
    return head


# ------------------------------------------------------------------------- notional and ratio


@njit(cache=True, inline="always", error_model="numpy")
def liquidation_notional_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Liquidated notional in the window (total, longs, shorts) and the long/short ratio
    ``min(long / short, ratio_cap)``: ``ratio_cap`` when only longs were liquidated, 0 when only
    shorts, NaN when none."""
    s = state[0]
    q = p[0]
    s.w_head = _liq_window_nb(s.w_slots, s.w_sum, s.w_head, ts, kind, inst, f, i, q.inst, q.window_ns, q.bucket_ns)
    lc, sc = s.w_sum[2], s.w_sum[3]
    long_n = s.w_sum[0] if lc > 0.0 else 0.0
    short_n = s.w_sum[1] if sc > 0.0 else 0.0
    out[i, 0] = long_n + short_n
    out[i, 1] = long_n
    out[i, 2] = short_n
    if lc == 0.0 and sc == 0.0:
        out[i, 3] = np.nan
    elif sc == 0.0:
        out[i, 3] = q.ratio_cap
    else:
        out[i, 3] = min(long_n / short_n, q.ratio_cap)


@njit(cache=True, error_model="numpy", nogil=True)
def liquidation_notional_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        liquidation_notional_step_nb(state, p, ts, kind, inst, row, f, i, out)


def _window_sums(events: EventTable, params: Params):
    """Oracle: per event, the (long notional, short notional, long count, short count) of the
    buckets ``(last - n, last]``, from a plain list of counted liquidations."""
    nbk = params.window_ns // params.bucket_ns
    seen: list[tuple[int, int, float]] = []
    last = None
    for t, k, ins, fields in _rows(events):
        b = t // params.bucket_ns
        last = b if last is None else max(last, b)
        j, notional = _liq_notional(k, ins, fields, params.inst)
        if j >= 0:
            seen.append((b, j, notional))
        inside = [(j, x) for bb, j, x in seen if last - nbk < bb <= last]
        yield (sum(x for j, x in inside if j == 0), sum(x for j, x in inside if j == 1),
               sum(1 for j, _ in inside if j == 0), sum(1 for j, _ in inside if j == 1))


def liquidation_notional_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 4), np.nan)
    for i, (lo, sh, lc, sc) in enumerate(_window_sums(events, params)):
        out[i, :3] = lo + sh, lo, sh
        if lc or sc:
            out[i, 3] = params.ratio_cap if sc == 0 else min(lo / sh, params.ratio_cap)
    return out


register(MetricSpec(
    name="liquidation_notional",
    family="liquidations",
    inputs=("liquidations",),
    outputs=("notional", "long_notional", "short_notional", "long_short_ratio"),
    params=(*_window_params(5 * MINUTE_NS),
            Param("ratio_cap", "ratio", 100.0, 1.0, 1e9, "long/short ratio cap (value when no short was "
                  "liquidated)")),
    state_dtype=LIQ_STATE,
    step_nb=liquidation_notional_step_nb,
    batch_nb=liquidation_notional_batch_nb,
    init_state=_liq_init,
    validate=lambda v: check_window(v, "window_ns", "bucket_ns"),
    oracle=liquidation_notional_oracle,
    definition="liquidated notional (price x qty) in the window (5 min): total, longs (side -1, forced sells), "
               "shorts (side +1), and long/short = min(long / short, ratio_cap) (ratio_cap when only longs, NaN "
               "when none)",
    source="intelligence-prd-v2.md: liquidation stream, single_liquidation_usd / cascade thresholds",
    warmup="none: 0 notional while the window holds no liquidation",
))

# ------------------------------------------------------------------------- cascade


@njit(cache=True, inline="always", error_model="numpy")
def liquidation_cascade_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Cascade = 1 when the window holds >= ``min_count`` liquidations and >= ``min_notional``;
    side -1 when long liquidations (forced sells) dominate its notional, +1 when shorts do."""
    s = state[0]
    q = p[0]
    s.w_head = _liq_window_nb(s.w_slots, s.w_sum, s.w_head, ts, kind, inst, f, i, q.inst, q.window_ns, q.bucket_ns)
    lc, sc = s.w_sum[2], s.w_sum[3]
    long_n = s.w_sum[0] if lc > 0.0 else 0.0
    short_n = s.w_sum[1] if sc > 0.0 else 0.0
    count = lc + sc
    notional = long_n + short_n
    flag = count >= q.min_count and notional >= q.min_notional and count > 0.0
    out[i, 0] = 1.0 if flag else 0.0
    out[i, 1] = count
    out[i, 2] = notional
    side = 0.0
    if flag:
        if long_n > short_n:
            side = -1.0
        elif short_n > long_n:
            side = 1.0
    out[i, 3] = side


@njit(cache=True, error_model="numpy", nogil=True)
def liquidation_cascade_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        liquidation_cascade_step_nb(state, p, ts, kind, inst, row, f, i, out)


def liquidation_cascade_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.zeros((len(events), 4))
    for i, (lo, sh, lc, sc) in enumerate(_window_sums(events, params)):
        flag = lc + sc >= max(params.min_count, 1) and lo + sh >= params.min_notional
        side = (-1.0 if lo > sh else (1.0 if sh > lo else 0.0)) if flag else 0.0
        out[i] = float(flag), lc + sc, lo + sh, side
    return out


register(MetricSpec(
    name="liquidation_cascade",
    family="liquidations",
    inputs=("liquidations",),
    outputs=("cascade", "count", "notional", "side"),
    params=(*_window_params(MINUTE_NS),
            Param("min_count", "liquidations", 5, 1, 1_000_000, "liquidations in the window for a cascade",
                  integer=True),
            Param("min_notional", "quote", 500_000.0, 0.0, 1e12, "liquidated notional in the window for a "
                  "cascade (per asset: the PRD uses 5 x the single-liquidation threshold)")),
    state_dtype=LIQ_STATE,
    step_nb=liquidation_cascade_step_nb,
    batch_nb=liquidation_cascade_batch_nb,
    init_state=_liq_init,
    validate=lambda v: check_window(v, "window_ns", "bucket_ns"),
    oracle=liquidation_cascade_oracle,
    definition="cascade 1 when the window (60 s) holds >= min_count liquidations totalling >= min_notional, "
               "else 0; count and notional in the window; side -1 long liquidations dominate (forced selling), "
               "+1 shorts dominate (forced buying), 0 otherwise",
    source="intelligence-prd-v2.md: cascade_threshold_usd, cascade_count_threshold; emerald-gameplan.md: "
           "liquidation cascade detection",
    warmup="none: 0 while the window holds no liquidation",
))

# ------------------------------------------------------------------------- liquidation-cluster levels

LEVERAGE = np.array([5.0, 10.0, 15.0, 20.0, 25.0, 50.0])
N_LEV = LEVERAGE.shape[0]
MAX_COHORTS = 256

LEVELS_STATE = np.dtype([
    ("px", F8), ("prev_oi", F8), ("last_cb", np.int64),
    ("c_bucket", np.int64, (MAX_COHORTS,)), ("c_entry", F8, (MAX_COHORTS,)), ("c_added", F8, (MAX_COHORTS,)),
    ("c_long", F8, (MAX_COHORTS, N_LEV)), ("c_short", F8, (MAX_COHORTS, N_LEV)),
    ("out", F8, (3,)),
], align=True)


def _levels_init(state: np.ndarray, params: Params) -> None:
    state["px"] = np.nan
    state["prev_oi"] = np.nan
    state["last_cb"] = -1
    state["c_bucket"] = -1
    state["out"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def _levels_update_nb(c_bucket, c_entry, c_added, c_long, c_short, px, cb_now, n, mm, reach, out):
    """Remove (liquidate) every level the price has reached, then write the nearest alive long
    level below, the nearest alive short level above, and the proximity score."""
    best_long = -np.inf
    best_short = np.inf
    wsum = 0.0
    psum = 0.0
    for c in range(n):
        if c_bucket[c] < 0 or c_bucket[c] <= cb_now - n:
            continue  # empty or expired cohort
        for k in range(N_LEV):
            lev = LEVERAGE[k]
            if c_long[c, k] > 0.0:
                lv = c_entry[c] * (1.0 - 1.0 / lev + mm)
                if px <= lv:
                    c_long[c, k] = 0.0
                else:
                    best_long = max(best_long, lv)
                    wsum += c_long[c, k]
                    psum += c_long[c, k] * max(0.0, 1.0 - (px - lv) / px / reach)
            if c_short[c, k] > 0.0:
                lv = c_entry[c] * (1.0 + 1.0 / lev - mm)
                if px >= lv:
                    c_short[c, k] = 0.0
                else:
                    best_short = min(best_short, lv)
                    wsum += c_short[c, k]
                    psum += c_short[c, k] * max(0.0, 1.0 - (lv - px) / px / reach)
    out[0] = best_long if best_long > -np.inf else np.nan
    out[1] = best_short if best_short < np.inf else np.nan
    out[2] = 10.0 * psum / wsum if wsum > 0.0 else np.nan


@njit(cache=True, inline="always", error_model="numpy")
def liquidation_levels_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Cohorts of positions from open-interest increases (see the registry definition); outputs
    are recomputed when the price, the open interest or the cohort bucket changes."""
    s = state[0]
    q = p[0]
    n = q.horizon_ns // q.cohort_ns
    cb_now = ts[i] // q.cohort_ns
    dirty = cb_now != s.last_cb
    s.last_cb = cb_now
    if inst[i] == q.inst:
        if kind[i] == OPEN_INTEREST:
            x = f[q.oi_field, i]
            if np.isfinite(x) and x > 0.0:
                prev = s.prev_oi
                s.prev_oi = x
                if prev > 0.0 and x > prev and s.px > 0.0:
                    d = (x - prev) * (s.px if q.oi_field == 0 else 1.0)
                    c = cb_now % n
                    if s.c_bucket[c] != cb_now:
                        s.c_bucket[c] = cb_now
                        s.c_entry[c] = s.px
                        s.c_added[c] = 0.0
                        for k in range(N_LEV):
                            s.c_long[c, k] = 0.0
                            s.c_short[c, k] = 0.0
                    s.c_entry[c] = (s.c_entry[c] * s.c_added[c] + s.px * d) / (s.c_added[c] + d)
                    s.c_added[c] += d
                    for k in range(N_LEV):
                        s.c_long[c, k] += d / N_LEV
                        s.c_short[c, k] += d / N_LEV
                    dirty = True
                elif prev > 0.0 and x < prev:
                    factor = x / prev  # positions closed pro rata across cohorts and brackets
                    for c in range(n):
                        if s.c_bucket[c] >= 0 and s.c_bucket[c] > cb_now - n:
                            for k in range(N_LEV):
                                s.c_long[c, k] *= factor
                                s.c_short[c, k] *= factor
                    dirty = True
        else:
            px = price_update_nb(q.price_source, kind, f, i, s.px)
            if px != s.px:
                s.px = px
                dirty = True
    if dirty and s.px > 0.0:
        _levels_update_nb(s.c_bucket, s.c_entry, s.c_added, s.c_long, s.c_short, s.px, cb_now, n,
                          q.maintenance_margin, q.proximity_pct / 100.0, s.out)
    out[i, 0] = s.out[0]
    out[i, 1] = s.out[1]
    out[i, 2] = s.out[2]


@njit(cache=True, error_model="numpy", nogil=True)
def liquidation_levels_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        liquidation_levels_step_nb(state, p, ts, kind, inst, row, f, i, out)


def liquidation_levels_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Plain-Python cohorts keyed by their bucket; every value recomputed at every event."""
    out = np.full((len(events), 3), np.nan)
    n = params.horizon_ns // params.cohort_ns
    mm, reach = params.maintenance_margin, params.proximity_pct / 100.0
    lev = [float(x) for x in LEVERAGE]
    cohorts: dict[int, dict] = {}
    px = prev_oi = math.nan
    for i, (t, k, ins, fields) in enumerate(_rows(events)):
        cb = t // params.cohort_ns
        cohorts = {b: c for b, c in cohorts.items() if b > cb - n}
        if ins == params.inst and k == OPEN_INTEREST:
            x = fields[params.oi_field]
            if math.isfinite(x) and x > 0:
                prev, prev_oi = prev_oi, float(x)
                if prev > 0 and x > prev and px > 0:
                    d = (x - prev) * (px if params.oi_field == 0 else 1.0)
                    c = cohorts.setdefault(cb, {"entry": px, "added": 0.0, "long": [0.0] * len(lev),
                                                "short": [0.0] * len(lev)})
                    c["entry"] = (c["entry"] * c["added"] + px * d) / (c["added"] + d)
                    c["added"] += d
                    c["long"] = [v + d / len(lev) for v in c["long"]]
                    c["short"] = [v + d / len(lev) for v in c["short"]]
                elif prev > 0 and x < prev:
                    for c in cohorts.values():
                        c["long"] = [v * (x / prev) for v in c["long"]]
                        c["short"] = [v * (x / prev) for v in c["short"]]
        elif ins == params.inst:
            y = price_at(k, fields, params.price_source)
            px = y if not math.isnan(y) else px
        if not px > 0:
            continue
        longs, shorts, weights, prox = [], [], 0.0, 0.0
        for c in cohorts.values():
            for j, L in enumerate(lev):
                lv = c["entry"] * (1.0 - 1.0 / L + mm)
                if c["long"][j] > 0 and px <= lv:
                    c["long"][j] = 0.0
                if c["long"][j] > 0:
                    longs.append(lv)
                    weights += c["long"][j]
                    prox += c["long"][j] * max(0.0, 1.0 - (px - lv) / px / reach)
                sv = c["entry"] * (1.0 + 1.0 / L - mm)
                if c["short"][j] > 0 and px >= sv:
                    c["short"][j] = 0.0
                if c["short"][j] > 0:
                    shorts.append(sv)
                    weights += c["short"][j]
                    prox += c["short"][j] * max(0.0, 1.0 - (sv - px) / px / reach)
        out[i] = (max(longs) if longs else math.nan, min(shorts) if shorts else math.nan,
                  10.0 * prox / weights if weights > 0 else math.nan)
    return out


def _levels_validate(v: dict) -> None:
    c, h = v["cohort_ns"], v["horizon_ns"]
    if h % c or not 1 <= h // c <= MAX_COHORTS:
        raise ConfigError(f"`horizon_ns` must be a multiple of `cohort_ns` ({c}) of at most {MAX_COHORTS} cohorts, "
                          f"was {h}")


register(MetricSpec(
    name="liquidation_levels",
    family="liquidations",
    inputs=("open_interest", "prices", "trades", "quotes", "book"),
    outputs=("long_level", "short_level", "risk_score"),
    params=(INST,
            Param("oi_field", "code", 0, 0, 1, "open interest field: 0 = oi_qty (x price = notional), "
                  "1 = oi_notional", integer=True),
            Param("price_source", "code", 0, 0, 2, PRICE_DOC, integer=True),
            Param("maintenance_margin", "fraction", 0.005, 0.0, 0.019, "maintenance margin (and fees) mm in the "
                  "liquidation price; < 1/50 so a 50x position is not liquidated at entry"),
            Param("cohort_ns", "ns", HOUR_NS, MINUTE_NS, DAY_NS, "positions opened within one bucket form one "
                  "cohort", integer=True),
            Param("horizon_ns", "ns", 7 * DAY_NS, MINUTE_NS, 64 * DAY_NS, "cohorts older than this are dropped "
                  "(at most 256 cohorts)", integer=True),
            Param("proximity_pct", "%", 5.0, 0.01, 100.0, "distance at which a level stops adding risk")),
    state_dtype=LEVELS_STATE,
    step_nb=liquidation_levels_step_nb,
    batch_nb=liquidation_levels_batch_nb,
    init_state=_levels_init,
    validate=_levels_validate,
    oracle=liquidation_levels_oracle,
    definition="each open-interest increase opens positions of notional dOI x price on BOTH sides (every contract "
               "has a long and a short) at the as-of price, merged per cohort bucket (notional-weighted entry) and "
               "spread equally over 5/10/15/20/25/50x; a long bracket liquidates at entry x (1 - 1/L + mm), a short "
               "at entry x (1 + 1/L - mm), and is removed once the price reaches it; OI decreases close every "
               "cohort pro rata; the OI present at the first sample has no known entry and is not placed; "
               "outputs the nearest alive long level below, the nearest short level above, and risk = 10 x "
               "notional-weighted mean of max(0, 1 - distance / proximity_pct) over alive levels (0-10)",
    source="intelligence-prd-v2.md: LiquidationPredictor._estimate_from_oi_distribution, "
           "_calculate_composite_risk_score (5 % proximity)",
    warmup="an open-interest increase seen with a known price",
))
