"""As-of helpers shared by the derivatives, liquidation, threshold and cross-asset kernels.

**Price sources.** A metric that needs "the price of an instrument" declares where it comes
from with an integer code (:data:`PRICE_SOURCES`): the mark or the index of ``prices`` events,
the price of the last trade, or the mid of the last ``quotes``/``book`` touch. The as-of price
is the value carried by the last such event of that instrument; NaN, infinite or non-positive
values are skipped (the previous price stays), so one bad row never poisons a kernel.

**Lagged values** (:func:`lag_advance_nb`). "The value h ago" is read from a ring holding, for
each bucket of ``bucket_ns``, the as-of value at the *end* of that bucket. With
``n = h // bucket_ns``, the lagged value at event time ``t`` is the value known at the end of
bucket ``t // bucket_ns - n``, i.e. carried by the last update with
``ts < (t // bucket_ns - n + 1) * bucket_ns``: a lag between ``h - bucket_ns`` and ``h``, at the
ring's resolution, in fixed memory (``LAG_CAPACITY`` buckets). A bucket is written once the
stream has moved past it, so a lagged value never sees the event being processed.

**Bucket log returns** (:func:`lag_return_nb`): ``log(v_b / v_{b-1})`` from the same ring's
bucket-end values, for completed buckets only (empty buckets carry the price and give 0).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.model.enums import Kind
from emerald.signals._ring import RING_CAPACITY

LAG_CAPACITY = 4096  # buckets a lag ring holds: 7 d at 5 min = 2016, 8 h at 1 min = 480

FUNDING = int(Kind.FUNDING)
OPEN_INTEREST = int(Kind.OPEN_INTEREST)
PRICES = int(Kind.PRICES)
BOOK = int(Kind.BOOK)
QUOTES = int(Kind.QUOTES)
TRADES = int(Kind.TRADES)
LIQUIDATIONS = int(Kind.LIQUIDATIONS)

PX_MARK = 0
PX_TRADE = 1
PX_MID = 2
PX_INDEX = 3
PRICE_SOURCES = {PX_MARK: "mark (prices.mark)", PX_TRADE: "last trade price", PX_MID: "mid of quotes/book touch",
                 PX_INDEX: "index (prices.index)"}
PRICE_DOC = "price source: 0 = mark (prices.mark), 1 = last trade, 2 = mid of the quotes/book touch"


@njit(cache=True, inline="always", error_model="numpy")
def price_update_nb(code, kind, f, i, cur):
    """The as-of price after event ``i`` (already known to belong to the instrument):
    ``cur`` unless the event carries a valid price of source ``code``."""
    x = np.nan
    k = kind[i]
    if code == PX_MARK:
        if k == PRICES:
            x = f[0, i]
    elif code == PX_TRADE:
        if k == TRADES:
            x = f[0, i]
    elif code == PX_MID:
        if k == QUOTES or k == BOOK:
            bid, ask = f[0, i], f[2, i]
            if bid > 0.0 and ask > 0.0 and np.isfinite(bid) and np.isfinite(ask):
                x = 0.5 * (bid + ask)
    elif code == PX_INDEX:
        if k == PRICES:
            x = f[1, i]
    if np.isfinite(x) and x > 0.0:
        return x
    return cur


def price_at(kind: int, fields: np.ndarray, code: int) -> float:
    """Plain-Python twin of :func:`price_update_nb` for oracles: the price an event carries (NaN if none)."""
    x = float("nan")
    if code == PX_MARK and kind == PRICES:
        x = fields[0]
    elif code == PX_TRADE and kind == TRADES:
        x = fields[0]
    elif code == PX_MID and kind in (QUOTES, BOOK):
        if fields[0] > 0 and fields[2] > 0 and np.isfinite(fields[0]) and np.isfinite(fields[2]):
            x = 0.5 * (fields[0] + fields[2])
    elif code == PX_INDEX and kind == PRICES:
        x = fields[1]
    return float(x) if np.isfinite(x) and x > 0 else float("nan")


def lag_fields(prefix: str, k: int) -> list[tuple]:
    """dtype fields of one lag ring of ``k`` series: newest bucket, bucket-end values, current values."""
    return [(f"{prefix}_head", np.int64), (f"{prefix}_vals", np.float64, (LAG_CAPACITY, k)),
            (f"{prefix}_cur", np.float64, (k,))]


def lag_init(state: np.ndarray, prefix: str) -> None:
    state[f"{prefix}_head"] = -1
    state[f"{prefix}_vals"] = np.nan
    state[f"{prefix}_cur"] = np.nan


def check_window(values: dict, window_key: str, bucket_key: str) -> None:
    """A bucketed window (:mod:`emerald.signals._ring`) must be a whole number of buckets that fits the ring."""
    w, b = values[window_key], values[bucket_key]
    if w % b:
        raise ConfigError(f"`{window_key}` must be a multiple of `{bucket_key}` ({b}), was {w}")
    if w // b > RING_CAPACITY:
        raise ConfigError(f"`{window_key}` / `{bucket_key}` must be <= {RING_CAPACITY} buckets, was {w // b}")


def check_lags(values: dict, bucket_key: str, *lag_keys: str) -> None:
    """Lags must be positive multiples of the bucket that fit the ring."""
    b = values[bucket_key]
    for key in lag_keys:
        w = values[key]
        if w % b:
            raise ConfigError(f"`{key}` must be a multiple of `{bucket_key}` ({b}), was {w}")
        if not 1 <= w // b <= LAG_CAPACITY - 1:
            raise ConfigError(f"`{key}` / `{bucket_key}` must be in [1, {LAG_CAPACITY - 1}] buckets, was {w // b}")


@njit(cache=True, inline="always", error_model="numpy")
def lag_advance_nb(vals, head, bucket, cur):
    """Move the ring to ``bucket``: every bucket from ``head`` up to ``bucket - 1`` ends with the
    values ``cur`` (the state *before* the current event). Returns the new head."""
    if head < 0:
        return bucket
    if bucket <= head:
        return head
    cap = vals.shape[0]
    start = head if bucket - head <= cap else bucket - cap
    k = cur.shape[0]
    for b in range(start, bucket):
        s = b % cap
        for j in range(k):
            vals[s, j] = cur[j]
    return bucket


@njit(cache=True, inline="always", error_model="numpy")
def lag_value_nb(vals, head, n, j):
    """Series ``j`` as of the end of bucket ``head - n`` (``1 <= n < LAG_CAPACITY``); NaN if unknown."""
    return vals[(head - n) % vals.shape[0], j]


@njit(cache=True, inline="always", error_model="numpy")
def lag_return_nb(vals, head, n, j):
    """Log return of series ``j`` over bucket ``head - n``: ``log(v[head-n] / v[head-n-1])``."""
    a = lag_value_nb(vals, head, n, j)
    b = lag_value_nb(vals, head, n + 1, j)
    return np.log(a / b)


# -------------------------------------------------------------------------------------- oracles


class AsofSeries:
    """Oracle helper: the as-of value of a series at any cut time, from its (ts, value) updates."""

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.vals: list[float] = []

    def add(self, ts: int, value: float) -> None:
        self.ts.append(ts)
        self.vals.append(value)

    def before(self, cut: int) -> float:
        """The last value with ``ts < cut`` (NaN if none)."""
        k = int(np.searchsorted(np.asarray(self.ts, dtype=np.int64), cut, side="left")) if self.ts else 0
        return self.vals[k - 1] if k > 0 else float("nan")

    def lagged(self, t_bucket: int, n: int, bucket_ns: int, first_bucket: int) -> float:
        """Value at the end of bucket ``t_bucket - n`` (NaN before the stream's first bucket)."""
        tb = t_bucket - n
        if tb < first_bucket:
            return float("nan")
        return self.before((tb + 1) * bucket_ns)


def bucket_closes(events: Any, inst: int, price_source: int, bucket_ns: int) -> tuple[int, np.ndarray]:
    """Oracle helper: ``(first_bucket, closes)`` where ``closes[b - first_bucket]`` is the last valid
    price of ``inst`` with ``ts < (b + 1) * bucket_ns`` (NaN if none), for every bucket of the stream."""
    first = int(events.ts[0]) // bucket_ns
    last = int(events.ts[-1]) // bucket_ns
    ts_upd, px_upd = [], []
    for t, k, ins, fields in zip(events.ts.tolist(), events.kind.tolist(), events.inst.tolist(), events.f.T,
                                 strict=True):
        if ins == inst:
            x = price_at(k, fields, price_source)
            if not math.isnan(x):
                ts_upd.append(t)
                px_upd.append(x)
    ends = (np.arange(first, last + 1, dtype=np.int64) + 1) * bucket_ns
    idx = np.searchsorted(np.asarray(ts_upd, dtype=np.int64), ends, side="left") - 1
    closes = np.where(idx >= 0, np.asarray(px_upd + [np.nan])[idx], np.nan)
    return first, closes
