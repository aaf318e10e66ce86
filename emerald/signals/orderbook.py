"""Order-book metrics from full-depth snapshots (``book`` events of instrument ``inst``).

Every metric here sets ``needs_book=True``: its kernels get the depth arrays of ``inst``
(``bid_px, bid_qty, ask_px, ask_qty``, shape ``(n_snapshots, depth)``) as four extra arguments,
indexed by the event's ``row``.

**Levels read.** "The top N levels" of a side are the positions ``0 .. min(n_levels, depth) - 1``
of the snapshot; of those, a level is *valid* when its price and quantity are finite and the
quantity is > 0 (the tape stores empty tail levels as price NaN, qty 0). When ``n_levels``
exceeds the available depth the metric uses what exists. The *touch* of a side is its first valid
level (``book_spread`` searches the whole depth for it, the others the levels they read); the
*mid* is ``(best bid + best ask) / 2`` and is NaN when either side is empty.

**As-of.** Values change only at a snapshot of ``inst`` and are repeated at every other event;
windowed outputs (spoofing, iceberg) also move with event time. Everything is NaN before the
first snapshot of ``inst``.

Sources: ``emerald-gameplan.md`` (order book imbalance over the top 10 levels; section 2.1
microstructure: spoofing, iceberg orders, walls moving), ``intelligence-prd-v2.md``
(``OrderBookSnapshot``: bid/ask volume, spread in bps), ``cto-review-revised-direction.md``
(imbalance tests: balanced -> 0, all bids -> +1, all asks -> -1).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.model.enums import Kind
from emerald.signals._ring import RING_CAPACITY, ring_add_nb, ring_advance_nb, ring_fields
from emerald.signals.base import SECOND_NS, MetricSpec, Param, Params, register

BOOK = int(Kind.BOOK)
TRADES = int(Kind.TRADES)
MAX_LEVELS = 50  # most levels per side a book metric reads

INST = Param("inst", "index", 0, 0, 1023, "instrument index in the event table (its book is read)", integer=True)
N_LEVELS = Param("n_levels", "levels", 10, 1, MAX_LEVELS, "levels read per side (fewer if the book is shallower)",
                 integer=True)
SOURCE = ("emerald-gameplan.md: order book imbalance (top 10 levels) and 2.1 order book microstructure "
          "(spoofing, iceberg orders, walls moving); intelligence-prd-v2.md: OrderBookSnapshot (spread_bps)")


def _levels_fields() -> list[tuple]:
    """Valid levels of one snapshot, compacted (see :func:`load_side_nb`)."""
    return [("bpx", np.float64, (MAX_LEVELS,)), ("bq", np.float64, (MAX_LEVELS,)), ("nb", np.int64),
            ("apx", np.float64, (MAX_LEVELS,)), ("aq", np.float64, (MAX_LEVELS,)), ("na", np.int64)]


@njit(cache=True, inline="always", error_model="numpy")
def load_side_nb(px, qty, r, n, out_px, out_q):
    """Copy the valid levels among the first ``n`` of snapshot ``r`` into ``out_px``/``out_q``
    (order kept); returns how many."""
    m = 0
    for lv in range(min(n, px.shape[1])):
        x = px[r, lv]
        q = qty[r, lv]
        if np.isfinite(x) and np.isfinite(q) and q > 0.0:
            out_px[m] = x
            out_q[m] = q
            m += 1
    return m


@njit(cache=True, inline="always", error_model="numpy")  # typed per caller's record (no record subtyping)
def load_book_nb(s, r, n, bid_px, bid_qty, ask_px, ask_qty):
    s.nb = load_side_nb(bid_px, bid_qty, r, n, s.bpx, s.bq)
    s.na = load_side_nb(ask_px, ask_qty, r, n, s.apx, s.aq)


@njit(cache=True, inline="always", error_model="numpy")  # typed per caller's record (no record subtyping)
def mid_nb(s):
    if s.nb == 0 or s.na == 0:
        return np.nan
    return 0.5 * (s.bpx[0] + s.apx[0])


@njit(cache=True, inline="always", error_model="numpy")  # typed per caller's record (no record subtyping)
def median_qty_nb(s, scratch):
    """Median quantity over the valid levels of both sides (mean of the two middle values for
    an even count, as ``np.median``); NaN when the book is empty. ``scratch`` is state memory."""
    m = 0
    for k in range(s.nb):
        scratch[m] = s.bq[k]
        m += 1
    for k in range(s.na):
        scratch[m] = s.aq[k]
        m += 1
    if m == 0:
        return np.nan
    for a in range(1, m):  # insertion sort: at most 2 * MAX_LEVELS values, no allocation
        x = scratch[a]
        b = a - 1
        while b >= 0 and scratch[b] > x:
            scratch[b + 1] = scratch[b]
            b -= 1
        scratch[b + 1] = x
    h = m // 2
    if m % 2 == 1:
        return scratch[h]
    return 0.5 * (scratch[h - 1] + scratch[h])


@njit(cache=True, inline="always", error_model="numpy")
def qty_at_nb(pxs, qs, m, price):
    """Quantity at ``price`` among ``m`` compacted levels (0 when absent)."""
    for k in range(m):
        if pxs[k] == price:
            return qs[k]
    return 0.0


Levels = tuple[list[float], list[float]]  # oracle: (prices, qtys) of one side's valid levels


def _oracle_side(px: np.ndarray, qty: np.ndarray, n: int) -> Levels:
    """Valid levels of one side of one snapshot (oracle helper, plain Python)."""
    ps, qs = [], []
    for lv in range(min(n, len(px))):
        x, q = float(px[lv]), float(qty[lv])
        if math.isfinite(x) and math.isfinite(q) and q > 0.0:
            ps.append(x)
            qs.append(q)
    return ps, qs


def _oracle_snapshots(events: EventTable, params: Params, n: int) -> Iterator[tuple[int, bool, Levels, Levels]]:
    """Yield ``(i, is_snapshot, bids, asks)`` for every event; bids/asks are the ``(prices, qtys)``
    of the valid levels among the first ``n`` (empty unless the event is a snapshot of ``inst``)."""
    for i in range(len(events)):
        if events.kind[i] == BOOK and events.inst[i] == params.inst:
            book, r = events.books[int(params.inst)], int(events.row[i])
            yield i, True, _oracle_side(book.bid_px[r], book.bid_qty[r], n), \
                _oracle_side(book.ask_px[r], book.ask_qty[r], n)
        else:
            yield i, False, ([], []), ([], [])


# ------------------------------------------------------------------------------ book_imbalance

IMB_STATE = np.dtype([*_levels_fields(), ("val", np.float64, (4,))], align=True)


def _nan_init(state: np.ndarray, params: Params) -> None:
    state["val"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def imbalance_step_nb(state, p, ts, kind, inst, row, f, i, out, bid_px, bid_qty, ask_px, ask_qty):
    """Quantity imbalance ``(B - A) / (B + A)`` over the top ``n_levels`` of each side, and the
    distance-weighted variant with level weights ``exp(-d / decay_bps)``, ``d`` = the level's
    distance from the mid in bps. Outputs: imbalance, weighted_imbalance, bid_qty, ask_qty."""
    s = state[0]
    q = p[0]
    if kind[i] == BOOK and inst[i] == q.inst:
        load_book_nb(s, row[i], q.n_levels, bid_px, bid_qty, ask_px, ask_qty)
        b = 0.0
        for k in range(s.nb):
            b += s.bq[k]
        a = 0.0
        for k in range(s.na):
            a += s.aq[k]
        s.val[0] = (b - a) / (b + a) if b + a > 0.0 else np.nan
        mid = mid_nb(s)
        if np.isfinite(mid) and mid > 0.0:
            wb = 0.0
            for k in range(s.nb):
                wb += s.bq[k] * np.exp(-abs(s.bpx[k] - mid) / mid * 1e4 / q.decay_bps)
            wa = 0.0
            for k in range(s.na):
                wa += s.aq[k] * np.exp(-abs(s.apx[k] - mid) / mid * 1e4 / q.decay_bps)
            s.val[1] = (wb - wa) / (wb + wa) if wb + wa > 0.0 else np.nan
        else:
            s.val[1] = np.nan
        s.val[2] = b
        s.val[3] = a
    for k in range(4):
        out[i, k] = s.val[k]


@njit(cache=True, error_model="numpy", nogil=True)
def imbalance_batch_nb(state, p, ts, kind, inst, row, f, out, bid_px, bid_qty, ask_px, ask_qty):
    for i in range(ts.shape[0]):
        imbalance_step_nb(state, p, ts, kind, inst, row, f, i, out, bid_px, bid_qty, ask_px, ask_qty)


def imbalance_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 4), np.nan)
    cur = [np.nan] * 4
    for i, snap, bids, asks in _oracle_snapshots(events, params, params.n_levels):
        if snap:
            b, a = float(np.sum(bids[1])), float(np.sum(asks[1]))
            imb = (b - a) / (b + a) if b + a > 0 else np.nan
            w_imb = np.nan
            if bids[0] and asks[0]:
                mid = (bids[0][0] + asks[0][0]) / 2
                wb = sum(qq * math.exp(-abs(pp - mid) / mid * 1e4 / params.decay_bps) for pp, qq in zip(*bids, strict=True))
                wa = sum(qq * math.exp(-abs(pp - mid) / mid * 1e4 / params.decay_bps) for pp, qq in zip(*asks, strict=True))
                w_imb = (wb - wa) / (wb + wa) if wb + wa > 0 else np.nan
            cur = [imb, w_imb, b, a]
        out[i] = cur
    return out


register(MetricSpec(
    name="book_imbalance",
    family="orderbook",
    inputs=("book",),
    outputs=("imbalance", "weighted_imbalance", "bid_qty", "ask_qty"),
    params=(INST, N_LEVELS,
            Param("decay_bps", "bps", 5.0, 0.01, 1e4, "weighted variant: weight exp(-distance_from_mid_bps / decay)")),
    state_dtype=IMB_STATE,
    step_nb=imbalance_step_nb,
    batch_nb=imbalance_batch_nb,
    init_state=_nan_init,
    oracle=imbalance_oracle,
    oracle_tolerance=1e-9,
    needs_book=True,
    definition=("(B - A) / (B + A) of the summed quantity B (bids) and A (asks) over the top n_levels valid levels "
                "(+1 all bids, -1 all asks, NaN if both sides are empty); weighted_imbalance weights each level by "
                "exp(-d / decay_bps), d = |price - mid| / mid in bps (NaN without a two-sided touch); bid_qty and "
                "ask_qty are B and A in base units"),
    source=SOURCE,
    warmup="first book snapshot of inst",
))

# ------------------------------------------------------------------------------ book_spread

SPREAD_STATE = np.dtype([("val", np.float64, (4,))], align=True)


@njit(cache=True, inline="always", error_model="numpy")
def touch_nb(px, qty, r):
    """Index of the first valid level of snapshot ``r`` (the touch), or -1 for an empty side."""
    for lv in range(px.shape[1]):
        if np.isfinite(px[r, lv]) and np.isfinite(qty[r, lv]) and qty[r, lv] > 0.0:
            return lv
    return -1


@njit(cache=True, inline="always", error_model="numpy")
def spread_step_nb(state, p, ts, kind, inst, row, f, i, out, bid_px, bid_qty, ask_px, ask_qty):
    """Touch spread in bps of the mid, the mid, the microprice
    ``(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)`` and its offset from the mid in bps."""
    s = state[0]
    q = p[0]
    if kind[i] == BOOK and inst[i] == q.inst:
        r = row[i]
        kb = touch_nb(bid_px, bid_qty, r)
        ka = touch_nb(ask_px, ask_qty, r)
        for k in range(4):
            s.val[k] = np.nan
        if kb >= 0 and ka >= 0:
            b, a, bq, aq = bid_px[r, kb], ask_px[r, ka], bid_qty[r, kb], ask_qty[r, ka]
            mid = 0.5 * (b + a)
            if mid > 0.0:
                micro = (b * aq + a * bq) / (bq + aq)
                s.val[0] = (a - b) / mid * 1e4
                s.val[1] = mid
                s.val[2] = micro
                s.val[3] = (micro - mid) / mid * 1e4
    for k in range(4):
        out[i, k] = s.val[k]


@njit(cache=True, error_model="numpy", nogil=True)
def spread_batch_nb(state, p, ts, kind, inst, row, f, out, bid_px, bid_qty, ask_px, ask_qty):
    for i in range(ts.shape[0]):
        spread_step_nb(state, p, ts, kind, inst, row, f, i, out, bid_px, bid_qty, ask_px, ask_qty)


def spread_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 4), np.nan)
    cur = [np.nan] * 4
    depth = events.books[int(params.inst)].bid_px.shape[1] if int(params.inst) in events.books else 0
    for i, snap, bids, asks in _oracle_snapshots(events, params, depth):
        if snap:
            cur = [np.nan] * 4
            if bids[0] and asks[0] and bids[0][0] + asks[0][0] > 0:
                b, a, bq, aq = bids[0][0], asks[0][0], bids[1][0], asks[1][0]
                mid = (a + b) / 2
                micro = (b * aq + a * bq) / (bq + aq)
                cur = [(a - b) / mid * 1e4, mid, micro, (micro - mid) / mid * 1e4]
        out[i] = cur
    return out


register(MetricSpec(
    name="book_spread",
    family="orderbook",
    inputs=("book",),
    outputs=("spread_bps", "mid", "microprice", "microprice_offset_bps"),
    params=(INST,),
    state_dtype=SPREAD_STATE,
    step_nb=spread_step_nb,
    batch_nb=spread_batch_nb,
    init_state=_nan_init,
    oracle=spread_oracle,
    oracle_tolerance=1e-9,
    needs_book=True,
    definition=("spread_bps = (ask - bid) / mid * 1e4 at the touch (negative when crossed); microprice = "
                "(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty), the touch mid weighted toward the thinner "
                "side; microprice_offset_bps = (microprice - mid) / mid * 1e4; all NaN without a two-sided touch"),
    source=SOURCE,
    warmup="first book snapshot of inst with both sides",
))

# ------------------------------------------------------------------------------ book_walls

WALL_STATE = np.dtype([*_levels_fields(), ("scratch", np.float64, (2 * MAX_LEVELS,)),
                       ("seen", np.int64), ("prev_mid", np.float64),
                       ("prev_px", np.float64, (2,)), ("prev_q", np.float64, (2,)),  # side 0 bid, 1 ask; NaN: none
                       ("follow", np.int64, (2,)), ("val", np.float64, (6,))], align=True)


def _walls_init(state: np.ndarray, params: Params) -> None:
    state["val"] = np.nan
    state["prev_px"] = np.nan
    state["prev_q"] = np.nan
    state["prev_mid"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def _side_wall_nb(pxs, qs, m, thr):
    """Index of the largest level with qty > thr (ties: nearest the touch), or -1."""
    best = -1
    for k in range(m):
        if qs[k] > thr and (best < 0 or qs[k] > qs[best]):
            best = k
    return best


@njit(cache=True, inline="always", error_model="numpy")
def _follow_nb(streak, p0, q0, p1, q1, m0, m1, size_ratio):
    """New follow streak of one side's wall (see ``book_walls``)."""
    if not (np.isfinite(p0) and np.isfinite(p1) and np.isfinite(m0) and np.isfinite(m1)):
        return 0
    if q1 > size_ratio * q0 or q0 > size_ratio * q1:
        return 0  # a different order, not the same wall moving
    dp = p1 - p0
    dm = m1 - m0
    if dp == 0.0 and dm == 0.0:
        return streak  # nothing moved: no evidence either way
    if dp != 0.0 and dm != 0.0 and (dp > 0.0) == (dm > 0.0):
        d = 1 if dp > 0.0 else -1
        return streak + d if streak * d > 0 else d
    return 0


@njit(cache=True, inline="always", error_model="numpy")
def walls_step_nb(state, p, ts, kind, inst, row, f, i, out, bid_px, bid_qty, ask_px, ask_qty):
    """Largest level with qty > wall_mult * median level qty, per side and overall, and how many
    consecutive snapshots each side's wall has followed the mid (signed)."""
    s = state[0]
    q = p[0]
    if kind[i] == BOOK and inst[i] == q.inst:
        load_book_nb(s, row[i], q.n_levels, bid_px, bid_qty, ask_px, ask_qty)
        med = median_qty_nb(s, s.scratch)
        thr = q.wall_mult * med if np.isfinite(med) else np.inf
        kb = _side_wall_nb(s.bpx, s.bq, s.nb, thr)
        ka = _side_wall_nb(s.apx, s.aq, s.na, thr)
        mid = mid_nb(s)
        pb = s.bpx[kb] if kb >= 0 else np.nan
        qb = s.bq[kb] if kb >= 0 else np.nan
        pa = s.apx[ka] if ka >= 0 else np.nan
        qa = s.aq[ka] if ka >= 0 else np.nan
        if s.seen:
            s.follow[0] = _follow_nb(s.follow[0], s.prev_px[0], s.prev_q[0], pb, qb, s.prev_mid, mid, q.size_ratio)
            s.follow[1] = _follow_nb(s.follow[1], s.prev_px[1], s.prev_q[1], pa, qa, s.prev_mid, mid, q.size_ratio)
        s.prev_px[0], s.prev_q[0], s.prev_px[1], s.prev_q[1], s.prev_mid = pb, qb, pa, qa, mid
        s.seen = 1
        if kb >= 0 and (ka < 0 or qb >= qa):
            wp, wside, wq = pb, 1.0, qb
        elif ka >= 0:
            wp, wside, wq = pa, -1.0, qa
        else:
            wp, wside, wq = np.nan, 0.0, np.nan
        s.val[0] = wp
        s.val[1] = wside
        s.val[2] = wq
        s.val[3] = abs(wp - mid) / mid * 1e4 if wside != 0.0 and np.isfinite(mid) and mid > 0.0 else np.nan
        s.val[4] = s.follow[0]
        s.val[5] = s.follow[1]
    for k in range(6):
        out[i, k] = s.val[k]


@njit(cache=True, error_model="numpy", nogil=True)
def walls_batch_nb(state, p, ts, kind, inst, row, f, out, bid_px, bid_qty, ask_px, ask_qty):
    for i in range(ts.shape[0]):
        walls_step_nb(state, p, ts, kind, inst, row, f, i, out, bid_px, bid_qty, ask_px, ask_qty)


def walls_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 6), np.nan)
    cur = [np.nan] * 6
    prev: dict | None = None
    follow = {1: 0, -1: 0}

    def wall(side_levels: Levels, thr: float) -> tuple[float, float] | None:
        cands = [(qq, -k, pp) for k, (pp, qq) in enumerate(zip(*side_levels, strict=True)) if qq > thr]
        if not cands:
            return None
        qq, _, pp = max(cands)  # largest qty, then the level nearest the touch
        return pp, qq

    for i, snap, bids, asks in _oracle_snapshots(events, params, params.n_levels):
        if snap:
            allq = bids[1] + asks[1]
            thr = params.wall_mult * float(np.median(allq)) if allq else math.inf
            walls = {1: wall(bids, thr), -1: wall(asks, thr)}
            mid = (bids[0][0] + asks[0][0]) / 2 if bids[0] and asks[0] else math.nan
            if prev is not None:
                for side in (1, -1):
                    w0, w1, m0 = prev["walls"][side], walls[side], prev["mid"]
                    if w0 is None or w1 is None or math.isnan(m0) or math.isnan(mid):
                        follow[side] = 0
                    elif max(w0[1], w1[1]) > params.size_ratio * min(w0[1], w1[1]):
                        follow[side] = 0
                    elif w1[0] == w0[0] and mid == m0:
                        pass
                    elif w1[0] != w0[0] and mid != m0 and np.sign(w1[0] - w0[0]) == np.sign(mid - m0):
                        d = int(np.sign(mid - m0))
                        follow[side] = follow[side] + d if np.sign(follow[side]) == d else d
                    else:
                        follow[side] = 0
            prev = {"walls": walls, "mid": mid}
            bw, aw = walls[1], walls[-1]
            if bw is not None and (aw is None or bw[1] >= aw[1]):
                wp, side, wq = bw[0], 1, bw[1]
            elif aw is not None:
                wp, side, wq = aw[0], -1, aw[1]
            else:
                wp, side, wq = math.nan, 0, math.nan
            dist = abs(wp - mid) / mid * 1e4 if side and not math.isnan(mid) and mid > 0 else math.nan
            cur = [wp, side, wq, dist, follow[1], follow[-1]]
        out[i] = cur
    return out


register(MetricSpec(
    name="book_walls",
    family="orderbook",
    inputs=("book",),
    outputs=("wall_price", "wall_side", "wall_qty", "wall_distance_bps", "bid_wall_follow", "ask_wall_follow"),
    params=(INST, N_LEVELS,
            Param("wall_mult", "x median", 5.0, 1.0, 1e6, "a wall is a level with qty > wall_mult x median level qty"),
            Param("size_ratio", "ratio", 2.0, 1.0, 1e6,
                  "consecutive walls are the same order when their sizes differ by at most this factor")),
    state_dtype=WALL_STATE,
    step_nb=walls_step_nb,
    batch_nb=walls_batch_nb,
    init_state=_walls_init,
    oracle=walls_oracle,
    oracle_tolerance=1e-9,
    needs_book=True,
    definition=("a side's wall is its largest level (ties: nearest the touch) with qty > wall_mult x the median qty "
                "of all valid levels read on both sides; wall_* describe the larger of the two walls (bid on ties; "
                "side +1 bid, -1 ask, 0 none with NaN price/qty); <side>_wall_follow counts consecutive snapshots in "
                "which that side's wall price moved in the same direction as the mid (+n up, -n down), keeping its "
                "value when neither moved and resetting to 0 when the wall is missing, stays while the mid moves, "
                "moves against it, or changes size by more than size_ratio (a different order)"),
    source=SOURCE,
    warmup="first book snapshot of inst",
))

# ------------------------------------------------------------------------------ book_spoofing

SPOOF_SLOTS = 128  # prices tracked; > 2 * MAX_LEVELS so a present large order always has a slot
SPOOF_BUCKETS = 256  # most buckets a spoofing window may span


def _check_spoof(values: dict) -> None:
    w, b = values["window_ns"], values["bucket_ns"]
    if w % b:
        raise ConfigError(f"`window_ns` must be a multiple of `bucket_ns` ({b}), was {w}")
    if w // b > SPOOF_BUCKETS:
        raise ConfigError(f"`window_ns` / `bucket_ns` must be <= {SPOOF_BUCKETS} buckets, was {w // b}")


SPOOF_STATE = np.dtype([
    *_levels_fields(), ("scratch", np.float64, (2 * MAX_LEVELS,)), ("seen", np.int64), ("n_snap", np.int64),
    ("c_head", np.int64), ("c_slots", np.float64, (SPOOF_BUCKETS, SPOOF_SLOTS)), ("c_sum", np.float64, (SPOOF_SLOTS,)),
    ("t_side", np.int64, (SPOOF_SLOTS,)),  # 0 free, +1 bid, -1 ask
    ("t_px", np.float64, (SPOOF_SLOTS,)), ("t_present", np.int64, (SPOOF_SLOTS,)),
    ("t_last_seen", np.int64, (SPOOF_SLOTS,)), ("t_last_cancel", np.int64, (SPOOF_SLOTS,)),
    ("tr_min", np.float64), ("tr_max", np.float64), ("val", np.float64, (4,)),
], align=True)


def _spoof_init(state: np.ndarray, params: Params) -> None:
    state["c_head"] = -1
    state["val"] = np.nan
    state["tr_min"] = np.inf
    state["tr_max"] = -np.inf


@njit(cache=True, inline="always", error_model="numpy")
def _spoof_slot_nb(s, side, price, nbk):
    """Slot tracking (side, price): existing, else a free one, else the absent one seen least
    recently (its cancel counts are cleared)."""
    free = -1
    lru = -1
    for j in range(SPOOF_SLOTS):
        if s.t_side[j] == side and s.t_px[j] == price:
            return j
        if s.t_side[j] == 0:
            if free < 0:
                free = j
        elif s.t_present[j] == 0 and (lru < 0 or s.t_last_seen[j] < s.t_last_seen[lru]):
            lru = j
    j = free if free >= 0 else lru
    if s.t_side[j] != 0:
        for b in range(nbk):
            s.c_slots[b, j] = 0.0
        s.c_sum[j] = 0.0
    s.t_side[j] = side
    s.t_px[j] = price
    s.t_present[j] = 0
    s.t_last_cancel[j] = -1
    return j


@njit(cache=True, inline="always", error_model="numpy")
def _spoof_better_nb(s, j, k):
    """Whether slot j ranks before slot k among equal counts: latest cancel, then bid, then nearer the touch."""
    if s.t_last_cancel[j] != s.t_last_cancel[k]:
        return s.t_last_cancel[j] > s.t_last_cancel[k]
    if s.t_side[j] != s.t_side[k]:
        return s.t_side[j] > s.t_side[k]
    return s.t_px[j] > s.t_px[k] if s.t_side[j] > 0 else s.t_px[j] < s.t_px[k]


@njit(cache=True, inline="always", error_model="numpy")
def spoof_step_nb(state, p, ts, kind, inst, row, f, i, out, bid_px, bid_qty, ask_px, ask_qty):
    """Cancels of large resting orders per price over a window (see ``book_spoofing``)."""
    s = state[0]
    q = p[0]
    nbk = q.window_ns // q.bucket_ns
    head = s.c_head
    s.c_head = ring_advance_nb(s.c_slots, s.c_sum, s.c_head, ts[i] // q.bucket_ns, nbk, -1)
    dirty = s.c_head != head
    if inst[i] == q.inst and kind[i] == TRADES:
        px, qty = f[0, i], f[1, i]
        if np.isfinite(px) and np.isfinite(qty) and qty > 0.0:
            s.tr_min = min(s.tr_min, px)
            s.tr_max = max(s.tr_max, px)
    elif inst[i] == q.inst and kind[i] == BOOK:
        load_book_nb(s, row[i], q.n_levels, bid_px, bid_qty, ask_px, ask_qty)
        med = median_qty_nb(s, s.scratch)
        thr = q.large_mult * med if np.isfinite(med) else np.inf
        s.n_snap += 1
        for j in range(SPOOF_SLOTS):  # large orders of the previous snapshot: still there?
            if s.t_side[j] == 0 or s.t_present[j] == 0:
                continue
            price = s.t_px[j]
            if s.t_side[j] > 0:
                if qty_at_nb(s.bpx, s.bq, s.nb, price) > thr:
                    continue
                # gone: a cancel unless it scrolled out of the levels read or trades reached it
                visible = s.nb > 0 and price >= s.bpx[s.nb - 1]
                cancelled = visible and not (s.tr_min <= price)
            else:
                if qty_at_nb(s.apx, s.aq, s.na, price) > thr:
                    continue
                visible = s.na > 0 and price <= s.apx[s.na - 1]
                cancelled = visible and not (s.tr_max >= price)
            s.t_present[j] = 0
            if cancelled:
                ring_add_nb(s.c_slots, s.c_sum, s.c_head, j, 1.0, nbk)
                s.t_last_cancel[j] = ts[i]
        for k in range(s.nb):
            if s.bq[k] > thr:
                j = _spoof_slot_nb(s, 1, s.bpx[k], nbk)
                s.t_present[j] = 1
                s.t_last_seen[j] = s.n_snap
        for k in range(s.na):
            if s.aq[k] > thr:
                j = _spoof_slot_nb(s, -1, s.apx[k], nbk)
                s.t_present[j] = 1
                s.t_last_seen[j] = s.n_snap
        s.tr_min = np.inf
        s.tr_max = -np.inf
        s.seen = 1
        dirty = True
    if dirty and s.seen:
        best = -1
        for j in range(SPOOF_SLOTS):
            if s.t_side[j] != 0 and s.c_sum[j] > 0.0:
                if best < 0 or s.c_sum[j] > s.c_sum[best] or (s.c_sum[j] == s.c_sum[best]
                                                             and _spoof_better_nb(s, j, best)):
                    best = j
        if best >= 0:
            n = s.c_sum[best]
            s.val[0] = n
            s.val[1] = 1.0 if n >= q.min_cancels else 0.0
            s.val[2] = s.t_px[best]
            s.val[3] = s.t_side[best]
        else:
            s.val[0] = 0.0
            s.val[1] = 0.0
            s.val[2] = np.nan
            s.val[3] = 0.0
    for k in range(4):
        out[i, k] = s.val[k]


@njit(cache=True, error_model="numpy", nogil=True)
def spoof_batch_nb(state, p, ts, kind, inst, row, f, out, bid_px, bid_qty, ask_px, ask_qty):
    for i in range(ts.shape[0]):
        spoof_step_nb(state, p, ts, kind, inst, row, f, i, out, bid_px, bid_qty, ask_px, ask_qty)


def spoof_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Dicts keyed by (side, price) holding cancel bucket ids; the window is recounted at every event."""
    out = np.full((len(events), 4), np.nan)
    nbk = params.window_ns // params.bucket_ns
    cancels: dict[tuple[int, float], list[tuple[int, int]]] = {}  # (side, price) -> [(bucket, ts)]
    present: set[tuple[int, float]] = set()
    tr: list[float] = []
    seen = False
    head = None
    for i, snap, bids, asks in _oracle_snapshots(events, params, params.n_levels):
        ts = int(events.ts[i])
        b = ts // params.bucket_ns
        head = b if head is None else max(head, b)
        if events.kind[i] == TRADES and events.inst[i] == params.inst:
            px, qty = events.f[0, i], events.f[1, i]
            if math.isfinite(px) and math.isfinite(qty) and qty > 0:
                tr.append(px)
        if snap:
            allq = bids[1] + asks[1]
            thr = params.large_mult * float(np.median(allq)) if allq else math.inf
            book = {1: dict(zip(*bids, strict=True)), -1: dict(zip(*asks, strict=True))}
            for side, price in sorted(present):
                if book[side].get(price, 0.0) > thr:
                    continue
                levels = bids[0] if side == 1 else asks[0]
                if not levels:
                    continue
                if side == 1 and price >= levels[-1] and not any(t <= price for t in tr):
                    cancels.setdefault((side, price), []).append((head, ts))
                if side == -1 and price <= levels[-1] and not any(t >= price for t in tr):
                    cancels.setdefault((side, price), []).append((head, ts))
            present = {(1, pp) for pp, qq in zip(*bids, strict=True) if qq > thr} | {(-1, pp) for pp, qq in zip(*asks, strict=True) if qq > thr}
            tr = []
            seen = True
        if not seen:
            continue
        ranked = []
        for (side, price), lst in cancels.items():
            n = sum(1 for bk, _ in lst if head - nbk < bk <= head)
            if n:
                closeness = price if side == 1 else -price
                ranked.append((n, max(t for _, t in lst), side, closeness, price))
        if ranked:
            n, _, side, _, price = max(ranked)
            out[i] = [n, float(n >= params.min_cancels), price, side]
        else:
            out[i] = [0.0, 0.0, np.nan, 0.0]
    return out


register(MetricSpec(
    name="book_spoofing",
    family="orderbook",
    inputs=("book", "trades"),
    outputs=("max_cancels", "spoofing", "spoof_price", "spoof_side"),
    params=(INST, N_LEVELS,
            Param("large_mult", "x median", 5.0, 1.0, 1e6, "a large order is a level with qty > large_mult x median"),
            Param("min_cancels", "count", 3, 1, 1000, "cancels at one price within the window that flag spoofing",
                  integer=True),
            Param("window_ns", "ns", 60 * SECOND_NS, SECOND_NS, 3600 * SECOND_NS, "window length", integer=True),
            Param("bucket_ns", "ns", SECOND_NS, 1_000_000, 3600 * SECOND_NS, "window resolution", integer=True)),
    state_dtype=SPOOF_STATE,
    step_nb=spoof_step_nb,
    batch_nb=spoof_batch_nb,
    init_state=_spoof_init,
    validate=_check_spoof,
    oracle=spoof_oracle,
    oracle_tolerance=1e-9,
    needs_book=True,
    definition=("a large order (level qty > large_mult x median level qty of the snapshot) at (side, price) that is "
                "no longer large in the next snapshot is a cancel when that price is still inside the levels read on "
                "its side (not scrolled out) and no trade of inst since the previous snapshot reached it (bid: a "
                "trade at or below it; ask: at or above): a fill is not a cancel. max_cancels is the most cancels at "
                "one price within the bucketed window (resolution bucket_ns, as trade_flow_imbalance); spoofing = "
                "max_cancels >= min_cancels; spoof_price/side name that price (ties: latest cancel, bid, nearer the "
                "touch). Up to 128 prices are tracked; beyond that the absent price seen least recently is forgotten"),
    source=SOURCE + "; '100 BTC order appearing/disappearing 10x in 60s = spoof'",
    warmup="first book snapshot of inst",
))

# ------------------------------------------------------------------------------ book_iceberg

ICE_STATE = np.dtype([
    *_levels_fields(), ("seen", np.int64),
    ("ppx", np.float64, (2, MAX_LEVELS)), ("pq", np.float64, (2, MAX_LEVELS)), ("pn", np.int64, (2,)),
    ("traded", np.float64, (2, MAX_LEVELS)),  # qty traded at each previous level since that snapshot
    *ring_fields("w", 2),  # sums: refill count, hidden qty
    ("last_px", np.float64), ("last_side", np.float64),
], align=True)


def _check_window(values: dict) -> None:
    w, b = values["window_ns"], values["bucket_ns"]
    if w % b:
        raise ConfigError(f"`window_ns` must be a multiple of `bucket_ns` ({b}), was {w}")
    if w // b > RING_CAPACITY:
        raise ConfigError(f"`window_ns` / `bucket_ns` must be <= {RING_CAPACITY} buckets, was {w // b}")


def _ice_init(state: np.ndarray, params: Params) -> None:
    state["w_head"] = -1
    state["last_px"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def ice_step_nb(state, p, ts, kind, inst, row, f, i, out, bid_px, bid_qty, ask_px, ask_qty):
    """Refills of book levels after trades at their price (see ``book_iceberg``)."""
    s = state[0]
    q = p[0]
    nbk = q.window_ns // q.bucket_ns
    s.w_head = ring_advance_nb(s.w_slots, s.w_sum, s.w_head, ts[i] // q.bucket_ns, nbk, 0)
    if inst[i] == q.inst and kind[i] == TRADES:
        px, qty = f[0, i], f[1, i]
        if s.seen and np.isfinite(px) and np.isfinite(qty) and qty > 0.0:
            for side in range(2):
                for k in range(s.pn[side]):
                    if s.ppx[side, k] == px:
                        s.traded[side, k] += qty
                        break
    elif inst[i] == q.inst and kind[i] == BOOK:
        load_book_nb(s, row[i], q.n_levels, bid_px, bid_qty, ask_px, ask_qty)
        best = 0.0
        for side in range(2):
            for k in range(s.pn[side]):
                price, q0, vol = s.ppx[side, k], s.pq[side, k], s.traded[side, k]
                if vol <= 0.0 or vol < q.refill_frac * q0:
                    continue
                q1 = qty_at_nb(s.bpx, s.bq, s.nb, price) if side == 0 else qty_at_nb(s.apx, s.aq, s.na, price)
                hidden = q1 - max(q0 - vol, 0.0)
                if hidden > 0.0 and hidden >= q.refill_frac * q0:
                    ring_add_nb(s.w_slots, s.w_sum, s.w_head, 0, 1.0, nbk)
                    ring_add_nb(s.w_slots, s.w_sum, s.w_head, 1, hidden, nbk)
                    if hidden > best:
                        best = hidden
                        s.last_px = price
                        s.last_side = 1.0 if side == 0 else -1.0
        for k in range(s.nb):
            s.ppx[0, k] = s.bpx[k]
            s.pq[0, k] = s.bq[k]
            s.traded[0, k] = 0.0
        for k in range(s.na):
            s.ppx[1, k] = s.apx[k]
            s.pq[1, k] = s.aq[k]
            s.traded[1, k] = 0.0
        s.pn[0] = s.nb
        s.pn[1] = s.na
        s.seen = 1
    if s.seen:
        n = s.w_sum[0]
        out[i, 0] = n
        out[i, 1] = s.w_sum[1]
        out[i, 2] = s.last_px if n > 0.0 else np.nan
        out[i, 3] = s.last_side if n > 0.0 else 0.0
    else:
        for k in range(4):
            out[i, k] = np.nan


@njit(cache=True, error_model="numpy", nogil=True)
def ice_batch_nb(state, p, ts, kind, inst, row, f, out, bid_px, bid_qty, ask_px, ask_qty):
    for i in range(ts.shape[0]):
        ice_step_nb(state, p, ts, kind, inst, row, f, i, out, bid_px, bid_qty, ask_px, ask_qty)


def ice_oracle(events: EventTable, params: Params) -> np.ndarray:
    """Plain loop: previous snapshot as dicts, trades since it as a list, refills as a list."""
    out = np.full((len(events), 4), np.nan)
    nbk = params.window_ns // params.bucket_ns
    prev: dict[int, dict[float, float]] | None = None
    trades: list[tuple[float, float]] = []
    refills: list[tuple[int, float]] = []  # (bucket, hidden)
    last = (math.nan, 0)
    head = None
    for i, snap, bids, asks in _oracle_snapshots(events, params, params.n_levels):
        b = int(events.ts[i]) // params.bucket_ns
        head = b if head is None else max(head, b)
        if events.kind[i] == TRADES and events.inst[i] == params.inst and prev is not None:
            px, qty = events.f[0, i], events.f[1, i]
            if math.isfinite(px) and math.isfinite(qty) and qty > 0:
                trades.append((px, qty))
        if snap:
            cur = {1: dict(zip(*bids, strict=True)), -1: dict(zip(*asks, strict=True))}
            if prev is not None:
                best = 0.0
                for side in (1, -1):
                    for price, q0 in prev[side].items():
                        vol = sum(qq for pp, qq in trades if pp == price)
                        if vol <= 0 or vol < params.refill_frac * q0:
                            continue
                        hidden = cur[side].get(price, 0.0) - max(q0 - vol, 0.0)
                        if hidden > 0 and hidden >= params.refill_frac * q0:
                            refills.append((head, hidden))
                            if hidden > best:
                                best, last = hidden, (price, side)
            prev, trades = cur, []
        if prev is None:
            continue
        live = [h for bk, h in refills if head - nbk < bk <= head]
        out[i] = [len(live), sum(live) if live else 0.0, last[0] if live else np.nan, last[1] if live else 0.0]
    return out


register(MetricSpec(
    name="book_iceberg",
    family="orderbook",
    inputs=("book", "trades"),
    outputs=("refills", "hidden_qty", "iceberg_price", "iceberg_side"),
    params=(INST, N_LEVELS,
            Param("refill_frac", "fraction", 0.5, 0.01, 100.0,
                  "trades at the level and the reappearing qty must each be >= this x its displayed qty"),
            Param("window_ns", "ns", 60 * SECOND_NS, SECOND_NS, 24 * 3600 * SECOND_NS, "window length", integer=True),
            Param("bucket_ns", "ns", SECOND_NS, 1_000_000, 3600 * SECOND_NS, "window resolution", integer=True)),
    state_dtype=ICE_STATE,
    step_nb=ice_step_nb,
    batch_nb=ice_batch_nb,
    init_state=_ice_init,
    validate=_check_window,
    oracle=ice_oracle,
    oracle_tolerance=1e-9,
    needs_book=True,
    definition=("a refill: a level (side, price, displayed qty q0) of the previous snapshot that traded V >= "
                "refill_frac x q0 at exactly its price (trades of inst between the two snapshots) and shows q1 in "
                "the new snapshot with hidden = q1 - max(q0 - V, 0) >= refill_frac x q0 (and > 0): the displayed "
                "size came back after being consumed. refills and hidden_qty count and sum refills within the "
                "bucketed window; iceberg_price/side (+1 bid, -1 ask) is the largest refill of the latest snapshot "
                "that had one (NaN/0 when the window holds none). A new order joining the level looks the same"),
    source=SOURCE + "; '50 BTC order at $67,800 that refills instantly after fills = iceberg'",
    warmup="first book snapshot of inst",
))
