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
from collections.abc import Iterator

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


def _oracle_price_moves(events: EventTable,
                        params: Params) -> Iterator[tuple[int, tuple | None, tuple[float, float, float] | None]]:
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
#
# Bounded state (about 220 KB): the window's trades are aggregated into cells (time bucket, price
# bin, volume) kept in a ring of MP_CELLS in arrival order; a trade joins a cell of its bucket and
# bin among the newest MP_SEARCH cells, else opens one. A histogram of MP_BINS slots indexed by
# ``bin & (MP_BINS - 1)`` holds the window's volume per bin, with a count of live cells per slot so
# an emptied slot is reset to exactly 0. Cells leaving the window are subtracted; ``lo``/``hi`` (the
# window's lowest/highest bin) are rescanned from the cells when an edge cell leaves. Each slot
# maps to one bin while the window spans at most MP_BINS bins (else the outputs are NaN); when
# more than MP_CELLS cells are live the oldest leaves early.

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
    ("last_px", np.float64), ("last_bin", np.int64), ("edges", np.int64, (3,)), ("val", np.float64, (6,)),
], align=True)


def _mp_init(state: np.ndarray, params: Params) -> None:
    state["head"] = -1
    state["last_px"] = np.nan
    state["edges"] = np.iinfo(np.int64).min  # POC, top and bottom bins of the values in `val`
    state["val"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
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


@njit(cache=True, inline="always", error_model="numpy")
def _mp_bounds_nb(s):
    lo = np.iinfo(np.int64).max
    hi = np.iinfo(np.int64).min
    for j in range(s.c_len):
        k = s.c_bin[(s.c_first + j) % MP_CELLS]
        lo = min(lo, k)
        hi = max(hi, k)
    s.lo = lo
    s.hi = hi


@njit(cache=True, inline="always", error_model="numpy")
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


@njit(cache=True, inline="always", error_model="numpy")
def _mp_values_nb(s, q, delta):
    """POC, value area and the flags from the histogram (NaN when empty or too wide)."""
    if s.c_len == 0 or s.hi - s.lo + 1 > MP_BINS:
        for k in range(6):
            s.val[k] = np.nan
        s.edges[0] = np.iinfo(np.int64).min
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
    if poc != s.edges[0] or up != s.edges[1] or dn != s.edges[2]:  # prices only when the bins move
        s.edges[0] = poc
        s.edges[1] = up
        s.edges[2] = dn
        s.val[0] = 0.5 * (np.exp(poc * delta) + np.exp((poc + 1) * delta))
        s.val[1] = np.exp((up + 1) * delta)
        s.val[2] = np.exp(dn * delta)
    vah = s.val[1]
    val = s.val[2]
    px = s.last_px
    s.val[3] = 1.0 if abs(px - vah) < q.edge_tol * vah else 0.0
    s.val[4] = 1.0 if abs(px - val) < q.edge_tol * val else 0.0
    s.val[5] = 1.0 if val < px < vah else 0.0


@njit(cache=True, inline="always", error_model="numpy")
def profile_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Volume profile of the trades of ``inst`` in the bucketed window; POC, VAH, VAL and flags.

    The window holds (bucket, price bin) cells in arrival order; cells leaving the window are
    subtracted from a histogram indexed by ``bin mod MP_BINS`` (exact while the window spans at
    most ``MP_BINS`` bins, else NaN).

    Speed: inlined into its batch loop with the numpy error model (nothing here can raise) and
    every event array read before a branch, as in :mod:`emerald.signals._flow_common`."""
    s = state[0]
    q = p[0]
    t, k, ins, price, qty = ts[i], kind[i], inst[i], f[0, i], f[1, i]  # read every array before a branch
    nb = q.window_ns // q.bucket_ns
    delta = np.log1p(q.bin_bps * 1e-4)
    b = t // q.bucket_ns
    changed = False
    if b > s.head:
        s.head = b
        rescan = False
        while s.c_len > 0 and s.c_bucket[s.c_first] <= b - nb:
            rescan = _mp_pop_nb(s) or rescan
            changed = True
        if rescan and s.c_len > 0:
            _mp_bounds_nb(s)
    if k == TRADES and ins == q.inst:
        if np.isfinite(price) and price > 0.0 and np.isfinite(qty) and qty > 0.0:
            if price != s.last_px:  # trades repeat prices: skip the log
                s.last_bin = np.int64(np.floor(np.log(price) / delta))
            _mp_add_nb(s, s.last_bin, qty)
            s.last_px = price
            changed = True
    if changed:
        _mp_values_nb(s, q, delta)
    for j in range(6):
        out[i, j] = s.val[j]


@njit(cache=True, error_model="numpy", nogil=True)
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


@njit(cache=True, inline="always", error_model="numpy")
def _zone_strength_nb(z):
    t = z[Z_TESTS]
    base = 100.0 if t == 0 else (70.0 if t <= 2 else 40.0)
    return base * z[Z_FACTOR]


@njit(cache=True, inline="always", error_model="numpy")
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


@njit(cache=True, inline="always", error_model="numpy")
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



@njit(cache=True, inline="always", error_model="numpy")
def _zone_distance_nb(s, k, px):
    return max(s.zones[k, Z_LOW] - px, px - s.zones[k, Z_HIGH], 0.0)


@njit(cache=True, inline="always", error_model="numpy")
def _zone_before_nb(s, j, k, px):
    """Zone ``j`` ranks before zone ``k``: nearer the price, then stronger, then newer."""
    dj = _zone_distance_nb(s, j, px)
    dk = _zone_distance_nb(s, k, px)
    if dj != dk:
        return dj < dk
    sj = _zone_strength_nb(s.zones[j])
    sk = _zone_strength_nb(s.zones[k])
    if sj != sk:
        return sj > sk
    return j > k


@njit(cache=True, inline="always", error_model="numpy")
def _sdz_values_nb(s):
    """Nearest demand (low, high, strength), nearest supply (same), in-zone flags, fresh/tested counts."""
    px = s.last_px
    for k in range(6):
        s.val[k] = np.nan
    for k in range(6, 12):
        s.val[k] = 0.0
    bd = -1
    bs = -1
    for k in range(s.n_zones):
        z = s.zones[k]
        inside = 1.0 if z[Z_LOW] <= px <= z[Z_HIGH] else 0.0
        fresh = z[Z_TESTS] == 0.0
        if z[Z_SIDE] > 0:
            s.val[6] = max(s.val[6], inside)
            s.val[8 if fresh else 9] += 1.0
            if bd < 0 or _zone_before_nb(s, k, bd, px):
                bd = k
        else:
            s.val[7] = max(s.val[7], inside)
            s.val[10 if fresh else 11] += 1.0
            if bs < 0 or _zone_before_nb(s, k, bs, px):
                bs = k
    if bd >= 0:
        s.val[0] = s.zones[bd, Z_LOW]
        s.val[1] = s.zones[bd, Z_HIGH]
        s.val[2] = _zone_strength_nb(s.zones[bd])
    if bs >= 0:
        s.val[3] = s.zones[bs, Z_LOW]
        s.val[4] = s.zones[bs, Z_HIGH]
        s.val[5] = _zone_strength_nb(s.zones[bs])


@njit(cache=True, inline="always", error_model="numpy")
def sdz_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Supply and demand zones formed by rejection-wick bars with a volume spike (see the registry)."""
    s = state[0]
    q = p[0]
    changed = False
    if bar_step_nb(s, ts, kind, inst, f, i, q.inst, q.bar_ns, q.source):
        hist_push_nb(s)
        if q.source == SOURCE_TAPE:  # the bar is the price path since the previous bar
            _zones_move_nb(s, s.bar_low, s.bar_high, s.bar_close)
            s.last_px = s.bar_close
            s.seen = 1
        _zones_form_nb(s, q)
        changed = True
    if q.source != SOURCE_TAPE and kind[i] == TRADES and inst[i] == q.inst:
        px, qty = f[0, i], f[1, i]
        if np.isfinite(px) and px > 0.0 and np.isfinite(qty) and qty > 0.0:
            _zones_move_nb(s, px, px, px)
            s.last_px = px
            s.seen = 1
            changed = True
    if changed and s.seen:
        _sdz_values_nb(s)
    for k in range(12):
        out[i, k] = s.val[k]


@njit(cache=True, error_model="numpy", nogil=True)
def sdz_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        sdz_step_nb(state, p, ts, kind, inst, row, f, i, out)


def sdz_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Zones as a list of dicts; bars from :func:`_oracle_bars`; outputs recomputed at every event."""
    out = np.full((len(events), 12), np.nan)
    zones: list[dict] = []
    vols: list[float] = []
    last = None

    def strength(z: dict) -> float:
        return (100.0 if z["tests"] == 0 else 70.0 if z["tests"] <= 2 else 40.0) * z["factor"]

    def move(lo: float, hi: float, px: float) -> None:
        for z in list(zones):
            if (z["side"] == 1 and lo < z["low"]) or (z["side"] == -1 and hi > z["high"]):
                zones.remove(z)
                continue
            touched = lo <= z["high"] if z["side"] == 1 else hi >= z["low"]
            if touched and not z["inside"]:
                z["tests"] += 1
            z["inside"] = z["low"] <= px <= z["high"]

    for i, bar, path in _oracle_price_moves(events, params):
        if bar is not None:
            if params.source == SOURCE_TAPE:
                assert path is not None  # a tape bar is its own price path
                move(*path)
                last = path[2]
            o, h, lo, c, v, _ = bar
            prev = vols[-params.vol_bars:]
            vols.append(v)
            if len(prev) == params.vol_bars and h > lo:
                avg = float(np.mean(prev))
                body, rng = abs(c - o), h - lo
                zone = None
                if avg > 0 and v >= params.spike_mult * avg:
                    if min(o, c) - lo > params.wick_ratio * body and (c - lo) >= (1 - params.close_frac) * rng:
                        zone = {"side": 1, "low": lo, "high": min(o, c)}
                    elif h - max(o, c) > params.wick_ratio * body and (h - c) >= (1 - params.close_frac) * rng:
                        zone = {"side": -1, "low": max(o, c), "high": h}
                if zone is not None:
                    zone.update(tests=0, inside=zone["low"] <= c <= zone["high"],
                                factor=min(1.0, v / (2 * params.spike_mult * avg)))
                    if len(zones) >= params.max_zones:
                        zones.pop(0)
                    zones.append(zone)
        if params.source != SOURCE_TAPE and path is not None:
            move(*path)
            last = path[2]
        if last is None:
            continue
        row = [np.nan] * 6 + [0.0] * 6
        for side, base in ((1, 0), (-1, 3)):
            mine = [(n, z) for n, z in enumerate(zones) if z["side"] == side]
            if mine:
                # nearest, then strongest, then newest
                _, z = min(mine, key=lambda nz: (max(nz[1]["low"] - last, last - nz[1]["high"], 0.0),
                                                 -strength(nz[1]), -nz[0]))
                row[base:base + 3] = [z["low"], z["high"], strength(z)]
            flag, fresh_col = (6, 8) if side == 1 else (7, 10)
            row[flag] = float(any(z["low"] <= last <= z["high"] for _, z in mine))
            row[fresh_col] = float(sum(z["tests"] == 0 for _, z in mine))
            row[fresh_col + 1] = float(sum(z["tests"] > 0 for _, z in mine))
        out[i] = row
    return out


register(MetricSpec(
    name="supply_demand_zones",
    family="zones",
    inputs=("trades", "bars"),
    outputs=("demand_low", "demand_high", "demand_strength", "supply_low", "supply_high", "supply_strength",
             "in_demand_zone", "in_supply_zone", "demand_fresh", "demand_tested", "supply_fresh", "supply_tested"),
    params=(INST, SOURCE_PARAM, BAR_NS,
            Param("wick_ratio", "x body", 2.0, 0.0, 100.0, "rejection wick: the wick must exceed wick_ratio x body"),
            Param("close_frac", "fraction", 0.2, 0.0, 1.0,
                  "rejection wick: close within this top (demand) / bottom (supply) share of the range"),
            Param("vol_bars", "bars", 20, 1, MAX_VOL_BARS, "bars in the average for the volume spike", integer=True),
            Param("spike_mult", "x average", 1.5, 0.0, 100.0, "volume spike: bar volume >= spike_mult x average"),
            Param("max_zones", "zones", MAX_ZONES, 1, MAX_ZONES, "zones kept (the oldest is dropped)", integer=True)),
    state_dtype=SDZ_STATE,
    step_nb=sdz_step_nb,
    batch_nb=sdz_batch_nb,
    init_state=_sdz_init,
    oracle=sdz_oracle,
    oracle_tolerance=1e-9,
    definition=("a closed bar with range > 0 and volume v >= spike_mult x the mean volume of the vol_bars bars before "
                "it forms a demand zone [low, min(open, close)] when its lower wick > wick_ratio x body and it closes "
                "in the top close_frac of its range (a supply zone [max(open, close), high] mirrored); a trade below a "
                "demand zone's low (above a supply zone's high) breaks and removes it; entering a zone from outside "
                "is a test; strength = 100 (fresh) / 70 (1-2 tests) / 40 (3+) x min(1, v / (2 x spike_mult x mean)); "
                "nearest = least distance from the last price (then strongest, then newest); at most max_zones "
                "zones (the oldest is dropped); with source=1 each tape bar's low/high/close is the price path"),
    source=DESIGN + ": Demand/Supply Zones (rejection wicks + volume spike, fresh vs tested, strength 100/70/40 and "
                    "formation volume, broken zones deleted, max 50 per pair)",
    warmup="first valid price of inst (counts 0, flags 0, nearest zone NaN until a zone forms after vol_bars bars)",
))

# ------------------------------------------------------------------------------ fair_value_gaps

MAX_FVG = 1536  # open gaps held; at most one gap forms per bar, so expiry_ns / bar_ns + 2 must fit
G_LOW, G_HIGH, G_SIDE, G_FILL, G_CREATED = range(5)


def _check_fvg(values: dict) -> None:
    need = values["expiry_ns"] // values["bar_ns"] + 2
    if need > MAX_FVG:
        raise ConfigError(f"`expiry_ns` / `bar_ns` must be <= {MAX_FVG - 2} bars (the gaps held), was "
                          f"{values['expiry_ns'] // values['bar_ns']}; shorten expiry_ns or lengthen bar_ns")


FVG_STATE = np.dtype([
    *bar_fields(), *hist_fields(3),
    ("g_first", np.int64), ("g_len", np.int64), ("gaps", np.float64, (MAX_FVG, 5)),
    ("seen", np.int64), ("last_px", np.float64), ("val", np.float64, (7,)),
], align=True)


def _fvg_init(state: np.ndarray, params: Params) -> None:
    bar_init(state)
    state["last_px"] = np.nan
    state["val"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def _fvg_move_nb(s, lo, hi):
    """Fill the open gaps with a price path segment; a gap filled to its far edge is removed."""
    k = 0
    while k < s.g_len:
        g = s.gaps[(s.g_first + k) % MAX_FVG]
        width = g[G_HIGH] - g[G_LOW]
        if g[G_SIDE] > 0:
            if lo <= g[G_LOW]:
                _fvg_remove_nb(s, k)
                continue
            if lo < g[G_HIGH]:
                g[G_FILL] = max(g[G_FILL], (g[G_HIGH] - lo) / width)
        else:
            if hi >= g[G_HIGH]:
                _fvg_remove_nb(s, k)
                continue
            if hi > g[G_LOW]:
                g[G_FILL] = max(g[G_FILL], (hi - g[G_LOW]) / width)
        k += 1


@njit(cache=True, inline="always", error_model="numpy")
def _fvg_remove_nb(s, k):
    """Remove the k-th open gap (creation order kept)."""
    for m in range(k, s.g_len - 1):
        a = (s.g_first + m) % MAX_FVG
        b = (s.g_first + m + 1) % MAX_FVG
        for c in range(5):
            s.gaps[a, c] = s.gaps[b, c]
    s.g_len -= 1


@njit(cache=True, inline="always", error_model="numpy")
def _fvg_form_nb(s, q):
    """Check the last three closed bars for a gap between bar 1 and bar 3."""
    if s.bar_count < 3:
        return
    h1 = hist_get_nb(s, 2, H_HIGH)
    l1 = hist_get_nb(s, 2, H_LOW)
    h3 = hist_get_nb(s, 0, H_HIGH)
    l3 = hist_get_nb(s, 0, H_LOW)
    if l3 > h1:
        side, gl, gh = 1.0, h1, l3
    elif h3 < l1:
        side, gl, gh = -1.0, h3, l1
    else:
        return
    if (gh - gl) / gl * 100.0 < q.min_gap_pct:
        return
    if s.g_len == MAX_FVG:  # cannot happen when the validation holds; keep memory bounded anyway
        s.g_first = (s.g_first + 1) % MAX_FVG
        s.g_len -= 1
    g = s.gaps[(s.g_first + s.g_len) % MAX_FVG]
    g[G_LOW] = gl
    g[G_HIGH] = gh
    g[G_SIDE] = side
    g[G_FILL] = 0.0
    g[G_CREATED] = s.bar_end
    s.g_len += 1


@njit(cache=True, inline="always", error_model="numpy")
def _fvg_values_nb(s):
    """Open bullish/bearish counts, nearest gap (low, high, side, fill) and the in-gap flag."""
    px = s.last_px
    s.val[0] = 0.0
    s.val[1] = 0.0
    for k in range(2, 6):
        s.val[k] = np.nan
    s.val[4] = 0.0
    s.val[6] = 0.0
    best = -1
    best_d = np.inf
    for k in range(s.g_len):
        g = s.gaps[(s.g_first + k) % MAX_FVG]
        s.val[0 if g[G_SIDE] > 0 else 1] += 1.0
        d = max(g[G_LOW] - px, px - g[G_HIGH], 0.0)
        if d == 0.0:
            s.val[6] = 1.0
        if d <= best_d:  # ties: the newest
            best_d = d
            best = k
    if best >= 0:
        g = s.gaps[(s.g_first + best) % MAX_FVG]
        s.val[2] = g[G_LOW]
        s.val[3] = g[G_HIGH]
        s.val[4] = g[G_SIDE]
        s.val[5] = g[G_FILL]


@njit(cache=True, inline="always", error_model="numpy")
def fvg_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Fair value gaps: 3-bar pattern, fill tracking, expiry (see the registry)."""
    s = state[0]
    q = p[0]
    changed = False
    while s.g_len > 0 and ts[i] - s.gaps[s.g_first, G_CREATED] >= q.expiry_ns:
        s.g_first = (s.g_first + 1) % MAX_FVG
        s.g_len -= 1
        changed = True
    if bar_step_nb(s, ts, kind, inst, f, i, q.inst, q.bar_ns, q.source):
        hist_push_nb(s)
        if q.source == SOURCE_TAPE:  # the bar is the price path since the previous bar
            _fvg_move_nb(s, s.bar_low, s.bar_high)
            s.last_px = s.bar_close
            s.seen = 1
        _fvg_form_nb(s, q)
        changed = True
    if q.source != SOURCE_TAPE and kind[i] == TRADES and inst[i] == q.inst:
        px, qty = f[0, i], f[1, i]
        if np.isfinite(px) and px > 0.0 and np.isfinite(qty) and qty > 0.0:
            _fvg_move_nb(s, px, px)
            s.last_px = px
            s.seen = 1
            changed = True
    if changed and s.seen:
        _fvg_values_nb(s)
    for k in range(7):
        out[i, k] = s.val[k]


@njit(cache=True, error_model="numpy", nogil=True)
def fvg_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        fvg_step_nb(state, p, ts, kind, inst, row, f, i, out)


def fvg_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Gaps as a list of dicts; bars from :func:`_oracle_bars`; outputs recomputed at every event."""
    out = np.full((len(events), 7), np.nan)
    gaps: list[dict] = []
    bars: list[tuple] = []
    last = None

    def move(lo: float, hi: float) -> None:
        for g in list(gaps):
            width = g["high"] - g["low"]
            if g["side"] == 1:
                if lo <= g["low"]:
                    gaps.remove(g)
                elif lo < g["high"]:
                    g["fill"] = max(g["fill"], (g["high"] - lo) / width)
            else:
                if hi >= g["high"]:
                    gaps.remove(g)
                elif hi > g["low"]:
                    g["fill"] = max(g["fill"], (hi - g["low"]) / width)

    for i, bar, path in _oracle_price_moves(events, params):
        ts = int(events.ts[i])
        gaps = [g for g in gaps if ts - g["created"] < params.expiry_ns]
        if bar is not None:
            if params.source == SOURCE_TAPE:
                assert path is not None  # a tape bar is its own price path
                move(path[0], path[1])
                last = path[2]
            bars.append(bar)
            if len(bars) >= 3:
                (_, h1, l1, *_), (_, h3, l3, *_) = bars[-3], bars[-1]
                gap = (1, h1, l3) if l3 > h1 else (-1, h3, l1) if h3 < l1 else None
                if gap is not None and (gap[2] - gap[1]) / gap[1] * 100 >= params.min_gap_pct:
                    gaps.append({"side": gap[0], "low": gap[1], "high": gap[2], "fill": 0.0, "created": bar[5]})
        if params.source != SOURCE_TAPE and path is not None:
            move(path[0], path[1])
            last = path[2]
        if last is None:
            continue
        row = [sum(g["side"] == 1 for g in gaps), sum(g["side"] == -1 for g in gaps), np.nan, np.nan, 0.0, np.nan,
               0.0]
        if gaps:
            dist = [max(g["low"] - last, last - g["high"], 0.0) for g in gaps]
            k = max(range(len(gaps)), key=lambda n: (-dist[n], n))  # nearest, then newest
            g = gaps[k]
            row[2:6] = [g["low"], g["high"], g["side"], g["fill"]]
            row[6] = float(min(dist) == 0.0)
        out[i] = row
    return out


register(MetricSpec(
    name="fair_value_gaps",
    family="zones",
    inputs=("trades", "bars"),
    outputs=("bullish_open", "bearish_open", "nearest_low", "nearest_high", "nearest_side", "nearest_fill", "in_fvg"),
    params=(INST, SOURCE_PARAM, BAR_NS,
            Param("min_gap_pct", "%", 0.2, 0.0, 100.0, "smallest gap, (high - low) / low x 100"),
            Param("expiry_ns", "ns", DAY_NS, MINUTE_NS, 30 * DAY_NS, "unfilled gaps are dropped this long after they "
                  "form", integer=True)),
    state_dtype=FVG_STATE,
    step_nb=fvg_step_nb,
    batch_nb=fvg_batch_nb,
    init_state=_fvg_init,
    validate=_check_fvg,
    oracle=fvg_oracle,
    oracle_tolerance=1e-9,
    definition=("on each bar close, the last three closed bars 1, 2, 3 form a bullish gap [high1, low3] when low3 > "
                "high1, a bearish gap [high3, low1] when high3 < low1, if (high - low) / low >= min_gap_pct %; a "
                "gap's fill is the deepest share of it that later prices reached (0..1); it is removed when price "
                "reaches its far edge (filled) or expiry_ns after the close of bar 3; outputs the open counts, the "
                "gap nearest the last price (distance 0 inside; ties: newest) with side +1 bullish / -1 bearish and "
                "its fill, and in_fvg = the price is inside an open gap; with source=1 each tape bar's low/high/close "
                "is the price path"),
    source=DESIGN + ": Fair Value Gap Detector (3-candle pattern, minimum gap 0.2 %, delete filled FVGs immediately, "
                    "unfilled after 24 hours)",
    warmup="first valid price of inst (counts 0, nearest gap NaN until a gap forms)",
))
