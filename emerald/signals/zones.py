"""Zones: the market profile of a trade window, supply/demand zones and fair value gaps.

All three watch the price of instrument ``inst``. "The price" is the last valid trade (finite price
> 0, finite qty > 0; other trades are skipped so NaN never enters a state). Supply/demand zones and
fair value gaps are formed from time bars kept in the kernel state by
:mod:`emerald.signals._bar_state` (built from trades, ``source=0``, or read from the bars tape,
``source=1``; empty intervals make no bar, a bar becomes known at the first event at or after its
end). With ``source=1`` the price path between two bars is the bar itself: its low/high are the
prices reached and its close is the last price.

Sources: ``algo-engine-design.md`` (market profile: 15-minute window, value area holding 70 % of
volume, POC, "at VAH/VAL" = within 0.1 % of it; demand/supply zones from rejection wicks with a
volume spike, fresh vs tested, strength 100/70/40 adjusted by formation volume, broken zones
deleted, at most 50 per symbol; fair value gaps: 3-candle pattern, minimum gap 0.2 %, filled gaps
deleted, unfilled ones after 24 h).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.model.enums import Kind
from emerald.signals._bar_state import (
    H_CLOSE,
    H_HIGH,
    H_LOW,
    H_OPEN,
    H_VOLUME,
    SOURCE_TAPE,
    bar_fields,
    bar_init,
    bar_step_nb,
    hist_fields,
    hist_get_nb,
    hist_push_nb,
)
from emerald.signals.base import DAY_NS, MINUTE_NS, SECOND_NS, MetricSpec, Param, Params, register

TRADES = int(Kind.TRADES)
BARS = int(Kind.BARS)

INST = Param("inst", "index", 0, 0, 1023, "instrument index in the event table", integer=True)
SOURCE_PARAM = Param("source", "enum", 0, 0, 1, "bars: 0 = built from trades, 1 = read from the bars tape",
                     integer=True)
BAR_NS = Param("bar_ns", "ns", 15 * MINUTE_NS, SECOND_NS, DAY_NS, "bar length (the 15M zone timeframe)",
               integer=True)
DESIGN = "algo-engine-design.md"


def _valid_trade(events: EventTable, i: int, inst: int) -> bool:
    """Oracle helper: a trade of ``inst`` with a finite price > 0 and a finite qty > 0."""
    if events.kind[i] != TRADES or events.inst[i] != inst:
        return False
    px, qty = float(events.f[0, i]), float(events.f[1, i])
    return math.isfinite(px) and px > 0 and math.isfinite(qty) and qty > 0


def _oracle_bars(events: EventTable, params: Params) -> dict[int, tuple]:
    """Oracle helper, independent of :mod:`_bar_state`: ``{event index: (o, h, l, c, v, end)}`` for
    each bar, keyed by the event at which it becomes known."""
    closes: dict[int, tuple] = {}
    bar_ns = params.bar_ns
    if params.source == SOURCE_TAPE:
        last_end = None
        for i in range(len(events)):
            if events.kind[i] != BARS or events.inst[i] != params.inst or events.f[7, i] != bar_ns:
                continue
            o, h, lo, c, v = (float(x) for x in events.f[:5, i])
            end = int(events.ts[i])
            ok = all(math.isfinite(x) and x > 0 for x in (o, h, lo, c)) and math.isfinite(v) and v >= 0
            if ok and (last_end is None or end > last_end):
                closes[i] = (o, h, lo, c, v, end)
                last_end = end
        return closes
    # group valid trades by bar id, then find the first event at or after each bar's end
    groups: dict[int, list[tuple[float, float]]] = {}
    for i in range(len(events)):
        if _valid_trade(events, i, params.inst):
            groups.setdefault(int(events.ts[i]) // bar_ns, []).append((float(events.f[0, i]), float(events.f[1, i])))
    for k, trades in groups.items():
        end = (k + 1) * bar_ns
        j = int(np.searchsorted(events.ts, end, side="left"))
        if j < len(events):
            px = [t[0] for t in trades]
            closes[j] = (px[0], max(px), min(px), px[-1], float(sum(t[1] for t in trades)), end)
    return closes


def _oracle_price_moves(events: EventTable, params: Params):
    """Oracle helper: per event, ``(bar or None, (low, high, last) or None)`` of the price path."""
    bars = _oracle_bars(events, params)
    for i in range(len(events)):
        bar = bars.get(i)
        if params.source == SOURCE_TAPE:
            yield i, bar, ((bar[2], bar[1], bar[3]) if bar is not None else None)
        elif _valid_trade(events, i, params.inst):
            px = float(events.f[0, i])
            yield i, bar, (px, px, px)
        else:
            yield i, bar, None


# ------------------------------------------------------------------------------ market_profile

MP_CELLS = 8192  # (bucket, price bin) cells held for the window
MP_BINS = 1024  # histogram slots: the window's price range may span at most this many bins
MP_MASK = MP_BINS - 1
MP_SEARCH = 32  # newest cells searched for the trade's (bucket, bin) before opening a new cell


def _check_profile(values: dict) -> None:
    w, b = values["window_ns"], values["bucket_ns"]
    if w % b:
        raise ConfigError(f"`window_ns` must be a multiple of `bucket_ns` ({b}), was {w}")


MP_STATE = np.dtype([
    ("head", np.int64), ("c_first", np.int64), ("c_len", np.int64),
    ("c_bucket", np.int64, (MP_CELLS,)), ("c_bin", np.int64, (MP_CELLS,)), ("c_vol", np.float64, (MP_CELLS,)),
    ("hist", np.float64, (MP_BINS,)), ("cnt", np.int64, (MP_BINS,)), ("lo", np.int64), ("hi", np.int64),
    ("last_px", np.float64), ("val", np.float64, (6,)),
], align=True)


def _mp_init(state: np.ndarray, params: Params) -> None:
    state["head"] = -1
    state["last_px"] = np.nan
    state["val"] = np.nan


@njit(cache=True)
def _mp_pop_nb(s):
    """Drop the oldest cell; True when it sat on the window's lowest or highest bin."""
    j = s.c_first
    k = s.c_bin[j]
    slot = k & MP_MASK
    s.hist[slot] -= s.c_vol[j]
    s.cnt[slot] -= 1
    if s.cnt[slot] == 0:
        s.hist[slot] = 0.0  # no rounding residue survives an empty bin
    s.c_first = (s.c_first + 1) % MP_CELLS
    s.c_len -= 1
    return k == s.lo or k == s.hi


@njit(cache=True)
def _mp_bounds_nb(s):
    lo = np.iinfo(np.int64).max
    hi = np.iinfo(np.int64).min
    for j in range(s.c_len):
        k = s.c_bin[(s.c_first + j) % MP_CELLS]
        lo = min(lo, k)
        hi = max(hi, k)
    s.lo = lo
    s.hi = hi


@njit(cache=True)
def _mp_add_nb(s, k, qty):
    """Add ``qty`` at bin ``k`` in the newest bucket (``s.head``)."""
    slot = k & MP_MASK
    for back in range(min(s.c_len, MP_SEARCH)):
        j = (s.c_first + s.c_len - 1 - back) % MP_CELLS
        if s.c_bucket[j] != s.head:
            break
        if s.c_bin[j] == k:
            s.c_vol[j] += qty
            s.hist[slot] += qty
            return
    rescan = False
    if s.c_len == MP_CELLS:  # full: the oldest cell leaves the window early (documented)
        rescan = _mp_pop_nb(s)
    j = (s.c_first + s.c_len) % MP_CELLS
    s.c_bucket[j] = s.head
    s.c_bin[j] = k
    s.c_vol[j] = qty
    s.hist[slot] += qty
    s.cnt[slot] += 1
    s.c_len += 1
    if s.c_len == 1:
        s.lo = k
        s.hi = k
    elif rescan:
        _mp_bounds_nb(s)
    else:
        s.lo = min(s.lo, k)
        s.hi = max(s.hi, k)


@njit(cache=True)
def _mp_values_nb(s, q, delta):
    """POC, value area and the flags from the histogram (NaN when empty or too wide)."""
    if s.c_len == 0 or s.hi - s.lo + 1 > MP_BINS:
        for k in range(6):
            s.val[k] = np.nan
        return
    total = 0.0
    best = -1.0
    poc = s.lo
    for k in range(s.lo, s.hi + 1):
        v = s.hist[k & MP_MASK]
        total += v
        if v > best:
            best = v
            poc = k
    target = q.value_area * total
    up = poc
    dn = poc
    va = s.hist[poc & MP_MASK]
    while va < target:
        vu = s.hist[(up + 1) & MP_MASK] if up < s.hi else -1.0
        vd = s.hist[(dn - 1) & MP_MASK] if dn > s.lo else -1.0
        if vu < 0.0 and vd < 0.0:
            break
        if vu > vd:
            up += 1
            va += vu
        elif vd > vu:
            dn -= 1
            va += vd
        else:  # tie: take both sides
            up += 1
            dn -= 1
            va += vu + vd
    vah = np.exp((up + 1) * delta)
    val = np.exp(dn * delta)
    px = s.last_px
    s.val[0] = 0.5 * (np.exp(poc * delta) + np.exp((poc + 1) * delta))
    s.val[1] = vah
    s.val[2] = val
    s.val[3] = 1.0 if abs(px - vah) < q.edge_tol * vah else 0.0
    s.val[4] = 1.0 if abs(px - val) < q.edge_tol * val else 0.0
    s.val[5] = 1.0 if val < px < vah else 0.0


@njit(cache=True)
def profile_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Volume profile of the trades of ``inst`` in the bucketed window; POC, VAH, VAL and flags.

    The window holds (bucket, price bin) cells in arrival order; cells leaving the window are
    subtracted from a histogram indexed by ``bin mod MP_BINS`` (exact while the window spans at
    most ``MP_BINS`` bins, else NaN)."""
    s = state[0]
    q = p[0]
    nb = q.window_ns // q.bucket_ns
    delta = np.log1p(q.bin_bps * 1e-4)
    b = ts[i] // q.bucket_ns
    changed = False
    if b > s.head:
        s.head = b
        rescan = False
        while s.c_len > 0 and s.c_bucket[s.c_first] <= b - nb:
            rescan = _mp_pop_nb(s) or rescan
            changed = True
        if rescan and s.c_len > 0:
            _mp_bounds_nb(s)
    if kind[i] == TRADES and inst[i] == q.inst:
        price, qty = f[0, i], f[1, i]
        if np.isfinite(price) and price > 0.0 and np.isfinite(qty) and qty > 0.0:
            _mp_add_nb(s, np.int64(np.floor(np.log(price) / delta)), qty)
            s.last_px = price
            changed = True
    if changed:
        _mp_values_nb(s, q, delta)
    for k in range(6):
        out[i, k] = s.val[k]


@njit(cache=True)
def profile_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        profile_step_nb(state, p, ts, kind, inst, row, f, i, out)


def profile_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Recompute the profile from the window's trades at every event (dict of bin -> volume)."""
    out = np.full((len(events), 6), np.nan)
    nbk = params.window_ns // params.bucket_ns
    delta = math.log1p(params.bin_bps * 1e-4)
    trades: list[tuple[int, int, float]] = []  # (bucket, bin, qty)
    head = None
    last = math.nan
    for i in range(len(events)):
        b = int(events.ts[i]) // params.bucket_ns
        head = b if head is None else max(head, b)
        if _valid_trade(events, i, params.inst):
            px = float(events.f[0, i])
            trades.append((head, math.floor(math.log(px) / delta), float(events.f[1, i])))
            last = px
        live = [t for t in trades if t[0] > head - nbk]
        if not live:
            continue
        vol: dict[int, float] = {}
        for _, k, qty in live:
            vol[k] = vol.get(k, 0.0) + qty
        lo, hi = min(vol), max(vol)
        if hi - lo + 1 > MP_BINS:
            continue
        total = sum(vol.get(k, 0.0) for k in range(lo, hi + 1))
        poc = max(range(lo, hi + 1), key=lambda k: (vol.get(k, 0.0), -k))
        up = dn = poc
        inside = vol[poc]
        while inside < params.value_area * total and (up < hi or dn > lo):
            vu = vol.get(up + 1, 0.0) if up < hi else -1.0
            vd = vol.get(dn - 1, 0.0) if dn > lo else -1.0
            if vu >= vd:
                up += 1
                inside += vu
            if vd >= vu:
                dn -= 1
                inside += vd
        vah, val = math.exp((up + 1) * delta), math.exp(dn * delta)
        out[i] = [(math.exp(poc * delta) + math.exp((poc + 1) * delta)) / 2, vah, val,
                  float(abs(last - vah) < params.edge_tol * vah), float(abs(last - val) < params.edge_tol * val),
                  float(val < last < vah)]
    return out


register(MetricSpec(
    name="market_profile",
    family="zones",
    inputs=("trades",),
    outputs=("poc", "vah", "val", "at_vah", "at_val", "in_value_area"),
    params=(INST,
            Param("window_ns", "ns", 15 * MINUTE_NS, SECOND_NS, DAY_NS, "profile window", integer=True),
            Param("bucket_ns", "ns", SECOND_NS, 1_000_000, 3600 * SECOND_NS, "window resolution", integer=True),
            Param("bin_bps", "bps", 5.0, 0.01, 1000.0, "price bin width, relative (log-spaced bins)"),
            Param("value_area", "fraction", 0.7, 0.01, 1.0, "share of the window's volume in the value area"),
            Param("edge_tol", "fraction", 0.001, 0.0, 0.1, "at_vah / at_val when |price - edge| < edge_tol x edge")),
    state_dtype=MP_STATE,
    step_nb=profile_step_nb,
    batch_nb=profile_batch_nb,
    init_state=_mp_init,
    validate=_check_profile,
    oracle=profile_oracle,
    oracle_tolerance=1e-9,
    definition=("volume by price bin of the valid trades of inst in the bucketed window (resolution bucket_ns, as "
                "trade_flow_imbalance); bin k = floor(ln(price) / ln(1 + bin_bps / 1e4)) covers [e^(k d), "
                "e^((k+1) d)); poc = middle of the highest-volume bin (ties: the lowest); the value area grows from "
                "the POC one bin at a time toward the side whose next bin holds more volume (both on ties) until it "
                "holds value_area of the volume; vah/val = its upper/lower edge; at_vah = |price - vah| < edge_tol x "
                "vah (at_val alike), in_value_area = val < price < vah, price = last trade. NaN when the window is "
                "empty or spans more than 1024 bins (raise bin_bps). Memory is bounded: 8192 (bucket, bin) cells; "
                "more push the oldest out early"),
    source=DESIGN + ": Market Profile Analyzer (15-minute lookback, value area 70 % of volume, POC, at VAH/VAL)",
    warmup="first valid trade of inst in the window; NaN when the window is empty",
))

# ------------------------------------------------------------------------------ supply_demand_zones

MAX_ZONES = 50
MAX_VOL_BARS = 100
Z_LOW, Z_HIGH, Z_SIDE, Z_TESTS, Z_INSIDE, Z_FACTOR = range(6)  # zone columns; side +1 demand, -1 supply

SDZ_STATE = np.dtype([
    *bar_fields(), *hist_fields(MAX_VOL_BARS + 1),
    ("n_zones", np.int64), ("zones", np.float64, (MAX_ZONES, 6)), ("seen", np.int64), ("last_px", np.float64),
    ("val", np.float64, (12,)),
], align=True)


def _sdz_init(state: np.ndarray, params: Params) -> None:
    bar_init(state)
    state["last_px"] = np.nan
    state["val"] = np.nan


@njit(cache=True)
def _zone_strength_nb(z):
    t = z[Z_TESTS]
    base = 100.0 if t == 0 else (70.0 if t <= 2 else 40.0)
    return base * z[Z_FACTOR]


@njit(cache=True)
def _zones_move_nb(s, lo, hi, last):
    """Apply a price path segment (lowest, highest, last price) to the zones: break, then test."""
    k = 0
    while k < s.n_zones:
        z = s.zones[k]
        if (z[Z_SIDE] > 0 and lo < z[Z_LOW]) or (z[Z_SIDE] < 0 and hi > z[Z_HIGH]):
            for m in range(k, s.n_zones - 1):  # broken: removed, order kept
                for c in range(6):
                    s.zones[m, c] = s.zones[m + 1, c]
            s.n_zones -= 1
            continue
        touched = lo <= z[Z_HIGH] if z[Z_SIDE] > 0 else hi >= z[Z_LOW]
        if touched and z[Z_INSIDE] == 0.0:
            z[Z_TESTS] += 1.0
        z[Z_INSIDE] = 1.0 if z[Z_LOW] <= last <= z[Z_HIGH] else 0.0
        k += 1


@njit(cache=True)
def _zones_form_nb(s, q):
    """Form a zone from the bar just closed when it is a rejection wick with a volume spike."""
    n_prev = min(s.bar_count - 1, MAX_VOL_BARS)
    if n_prev < q.vol_bars:
        return
    avg = 0.0
    for back in range(1, q.vol_bars + 1):
        avg += hist_get_nb(s, back, H_VOLUME)
    avg /= q.vol_bars
    o = hist_get_nb(s, 0, H_OPEN)
    h = hist_get_nb(s, 0, H_HIGH)
    lo = hist_get_nb(s, 0, H_LOW)
    c = hist_get_nb(s, 0, H_CLOSE)
    v = hist_get_nb(s, 0, H_VOLUME)
    rng = h - lo
    if not (rng > 0.0 and avg > 0.0 and v >= q.spike_mult * avg):
        return
    body = abs(c - o)
    if min(o, c) - lo > q.wick_ratio * body and c - lo >= (1.0 - q.close_frac) * rng:
        side, zl, zh = 1.0, lo, min(o, c)
    elif h - max(o, c) > q.wick_ratio * body and h - c >= (1.0 - q.close_frac) * rng:
        side, zl, zh = -1.0, max(o, c), h
    else:
        return
    if s.n_zones >= q.max_zones:  # full: the oldest zone makes room
        for m in range(s.n_zones - 1):
            for col in range(6):
                s.zones[m, col] = s.zones[m + 1, col]
        s.n_zones -= 1
    z = s.zones[s.n_zones]
    z[Z_LOW] = zl
    z[Z_HIGH] = zh
    z[Z_SIDE] = side
    z[Z_TESTS] = 0.0
    z[Z_INSIDE] = 1.0 if zl <= c <= zh else 0.0
    z[Z_FACTOR] = min(1.0, v / (2.0 * q.spike_mult * avg))
    s.n_zones += 1


