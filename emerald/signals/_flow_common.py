"""Helpers shared by the trade-flow and multi-timeframe kernels (private to those two modules).

Windows are the bucketed rings of :mod:`emerald.signals._ring` (its ``ring_advance_nb`` does all
expiry). These kernels follow the reference kernel ``trade_flow_imbalance`` and its speed rules
(measured on 10 M trades, a one-ring update such as ``buy_sell_ratio`` runs at 100+ M events/s;
written as a plain call per event to non-inlined ring functions, the same update ran at ~24 M):

* step kernels are compiled with ``inline="always"``: inlined into their batch loop (and into a
  :class:`~emerald.signals.metric_set.MetricSet`) instead of a call that passes every event array
  by value (the larger part of the gain);
* a step reads all its event arrays (``kind[i]``, ``inst[i]``, ``f[:, i]``) before any branch
  and, like every helper it inlines, uses ``error_model="numpy"`` and calls nothing that can
  raise (the ring advance is inlined too): otherwise numba keeps reference counting of the
  arrays inside the per-event loop, an atomic increment and decrement per event;
* each ring caches its head slot (``<prefix>_slot`` = ``head % n_buckets``), recomputed only when
  the head moves, so adding a trade (:func:`~emerald.signals._ring.ring_put_nb`) costs no integer
  division; a kernel keeps the stream time at which the current bucket ends (``edge``) and
  advances its rings only when an event reaches it (:func:`~emerald.signals._ring.ring_move_nb`).

No kernel divides by zero (every division is guarded), so the numpy error model changes no value.

Trades a kernel uses (:func:`valid_trade`): finite positive price, finite non-negative quantity,
side +1 (aggressive buy) or -1 (aggressive sell); any other trade row is skipped, so a bad print
cannot poison running sums.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.model.enums import Kind
from emerald.signals._ring import RING_CAPACITY

TRADES = int(Kind.TRADES)
INF = np.inf
NO_EDGE = np.iinfo(np.int64).min  # initial ``edge``: the first event advances the rings
REL_TOL = 1e-9  # see greater()


def init_rings(state: np.ndarray, *prefixes: str) -> None:
    """Empty rings (head -1) and no bucket edge yet."""
    for prefix in prefixes:
        state[f"{prefix}_head"] = -1
    state["edge"] = NO_EDGE


@njit(cache=True, inline="always", error_model="numpy")
def valid_trade(price, qty, side):
    """A trade row the kernels use (see module docstring); False for any NaN field."""
    return 0.0 < price < INF and 0.0 <= qty < INF and (side > 0.0 or side < 0.0)


@njit(cache=True, inline="always", error_model="numpy")
def greater(x, y):
    """``x > y`` beyond a relative tolerance of :data:`REL_TOL`. Running sums of different windows
    round differently, so two windows holding the same trades give ratios a few ulps apart;
    orderings between such values (fast > mid > slow, size > k x mean) use this comparison."""
    return x > y + REL_TOL * abs(y)


@njit(cache=True, inline="always", error_model="numpy")
def zero_if_empty(sums, value_j, count_j):
    """Reset running sum ``value_j`` to exactly 0 when its count ``count_j`` is 0.

    Exact, not an approximation: with no counted entry left in the window every in-window slot of
    ``value_j`` is 0.0, so only rounding residue of the running sum is discarded."""
    if sums[count_j] == 0.0:
        sums[value_j] = 0.0


@njit(cache=True, inline="always", error_model="numpy")
def ratio_nb(buy, sell, n_buy, n_sell, cap):
    """Buy/sell volume ratio capped at ``cap``: ``cap`` when the window holds buys and no sell,
    0 with sells and no buy, NaN when it holds neither. ``n_*`` count trades with qty > 0, so a
    side with count 0 has volume exactly 0 whatever residue its running sum carries."""
    if n_sell == 0.0:
        return cap if n_buy > 0.0 else np.nan
    if n_buy == 0.0:
        return 0.0
    r = buy / sell
    return r if r < cap else cap


def check_windows(values: dict[str, Any], names: tuple[str, ...], *, bucket: str = "bucket_ns",
                  increasing: bool = False) -> None:
    """Each window in ``names`` is a multiple of the bucket and spans at most
    :data:`RING_CAPACITY` buckets; with ``increasing`` the windows must be strictly increasing."""
    b = values[bucket]
    for name in names:
        w = values[name]
        if w % b:
            raise ConfigError(f"`{name}` must be a multiple of `{bucket}` ({b}), was {w}")
        if w // b > RING_CAPACITY:
            raise ConfigError(f"`{name}` / `{bucket}` must be <= {RING_CAPACITY} buckets, was {w // b}")
    if increasing:
        for lo, hi in zip(names, names[1:], strict=False):
            if values[lo] >= values[hi]:
                raise ConfigError(f"`{lo}` must be shorter than `{hi}` ({values[hi]}), was {values[lo]}")


# --------------------------------------------------------------------------------- oracle side
# Plain numpy, independent of the rings: the window of event i holds the trades j <= i whose
# bucket lies in (B_i - n_buckets, B_i], B_i the newest bucket seen at event i.


def oracle_trades(events: Any, inst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Event indices, ts, price, qty and side of the usable trades of ``inst`` (definition in the
    module docstring), written out again rather than calling :func:`valid_trade`."""
    k = np.flatnonzero((events.kind == TRADES) & (events.inst == inst))
    price, qty, side = events.f[0, k], events.f[1, k], events.f[2, k]
    with np.errstate(invalid="ignore"):
        ok = (price > 0) & (price < np.inf) & (qty >= 0) & (qty < np.inf) & ((side > 0) | (side < 0))
    k = k[ok]
    return k, events.ts[k], price[ok], qty[ok], side[ok]


def oracle_ratio(buy: float, sell: float, cap: float) -> float:
    """The capped buy/sell ratio of :func:`ratio_nb` on exact sums."""
    if sell > 0:
        return min(buy / sell, cap)
    return cap if buy > 0 else np.nan


def oracle_window_bounds(events: Any, trade_idx: np.ndarray, trade_ts: np.ndarray, window_ns: int,
                         bucket_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """For every event, the trade range ``[lo, hi)`` (into the trade arrays) inside its window."""
    newest = np.maximum.accumulate(events.ts // bucket_ns) if len(events) else np.empty(0, np.int64)
    nb = window_ns // bucket_ns
    hi = np.searchsorted(trade_idx, np.arange(len(events)), side="right")
    lo = np.searchsorted(trade_ts // bucket_ns, newest - nb, side="right")
    return np.minimum(lo, hi), hi
