"""Hypothesis strategies for event streams: gaps, NaN fields, duplicate timestamps, zero
volume, bursts and several instruments (like ``polars.testing.parametric``)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from emerald.events.table import EventTable
from emerald.testing.tapes import T0

ALL_KINDS = ("trades", "quotes", "book", "prices", "funding", "open_interest", "liquidations", "bars")
DEPTH = 5


def _times(rng: np.random.Generator, n: int, *, gap_p: float, dup_p: float, burst_p: float, span_ns: int) -> np.ndarray:
    step = rng.exponential(span_ns / max(n, 1), n)
    step[rng.random(n) < dup_p] = 0.0  # duplicate timestamps
    gaps = rng.random(n) < gap_p
    step[gaps] += rng.exponential(span_ns / 4, int(gaps.sum()))  # holes
    bursts = rng.random(n) < burst_p
    step[bursts] = rng.integers(0, 5_000_000, int(bursts.sum()))  # bursts: a few ms apart
    return T0 + np.cumsum(step.astype(np.int64))


def make_event_table(seed: int, *, n_instruments: int = 2, n_events: int = 200, kinds: tuple[str, ...] = ALL_KINDS,
                     gap_p: float = 0.02, dup_p: float = 0.05, burst_p: float = 0.1, nan_p: float = 0.05,
                     zero_p: float = 0.05, span_ns: int = 3_600_000_000_000) -> EventTable:
    """A seeded random event stream over ``n_instruments`` instruments (inst 0 is a perp with
    funding, OI and liquidations; inst 1 its spot market; more are other perps)."""
    rng = np.random.default_rng(seed)
    items = []
    for inst in range(n_instruments):
        venue, symbol = ("demo-perp", f"X{inst}USDT") if inst != 1 else ("demo-spot", "X0USDT")
        base = 100.0 * (1 + inst)
        for kind in kinds:
            if kind in ("funding", "open_interest", "liquidations") and inst == 1:
                continue
            n = max(1, int(rng.poisson(n_events / len(kinds))))
            ts = _times(rng, n, gap_p=gap_p, dup_p=dup_p, burst_p=burst_p, span_ns=span_ns)
            walk = base * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
            nan = rng.random(n) < nan_p
            zero = rng.random(n) < zero_p
            if kind == "trades":
                qty = np.where(zero, 0.0, rng.lognormal(0, 1, n))
                tab = {"ts_event": ts, "ts_recv": ts, "price": walk, "qty": qty,
                       "side": np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8), "trade_id": np.arange(n)}
            elif kind == "quotes":
                half = walk * 1e-4
                tab = {"ts_event": ts, "ts_recv": ts, "bid_px": np.where(nan, np.nan, walk - half),
                       "bid_qty": rng.lognormal(0, 1, n), "ask_px": walk + half,
                       "ask_qty": np.where(zero, 0.0, rng.lognormal(0, 1, n))}
            elif kind == "book":
                lv = np.arange(DEPTH)
                bid = walk[:, None] * (1 - 1e-4 * (1 + lv))
                ask = walk[:, None] * (1 + 1e-4 * (1 + lv))
                bq = rng.lognormal(0, 1, (n, DEPTH))
                aq = rng.lognormal(0, 1, (n, DEPTH))
                cut = rng.integers(1, DEPTH + 1, n)  # partial books: empty tail levels
                empty = lv[None, :] >= cut[:, None]
                bid[empty], bq[empty] = np.nan, 0.0
                tab = {"ts_event": ts, "ts_recv": ts, "bid_px": bid, "bid_qty": bq, "ask_px": ask, "ask_qty": aq}
            elif kind == "prices":
                tab = {"ts_event": ts, "mark": np.where(nan, np.nan, walk), "index": walk * (1 - 5e-4),
                       "spot_ref": np.full(n, np.nan)}
            elif kind == "funding":
                tab = {"ts_event": ts, "rate": rng.normal(1e-4, 2e-4, n), "interval_ns": np.full(n, 8 * 3600 * 10**9),
                       "next_funding_ts": ts + 3600 * 10**9, "is_settlement": rng.random(n) < 0.3}
            elif kind == "open_interest":
                tab = {"ts_event": ts, "oi_qty": np.where(nan, np.nan, 1e4 * np.exp(np.cumsum(rng.normal(0, .01, n)))),
                       "oi_notional": np.full(n, np.nan)}
            elif kind == "liquidations":
                tab = {"ts_event": ts, "side": np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8), "price": walk,
                       "qty": rng.lognormal(0, 1, n)}
            elif kind == "bars":
                iv = 60 * 10**9
                bts = (T0 // iv + np.arange(n)) * iv  # consecutive 1-minute bars
                bts[rng.random(n) < gap_p] += iv  # ... with holes
                bts = np.maximum.accumulate(bts + np.cumsum(rng.random(n) < gap_p) * iv)
                o = walk
                c = walk * np.exp(rng.normal(0, 0.002, n))
                h = np.maximum(o, c) * (1 + rng.exponential(1e-3, n))
                lo = np.minimum(o, c) * (1 - rng.exponential(1e-3, n))
                v = np.where(zero, 0.0, rng.lognormal(2, 1, n))
                buy = v * rng.random(n)
                tab = {"ts_event": bts, "interval_ns": np.full(n, iv), "open": o, "high": h, "low": lo, "close": c,
                       "volume": v, "buy_volume": np.where(nan, np.nan, buy), "sell_volume": v - buy,
                       "trades": rng.integers(0, 100, n)}
            else:  # pragma: no cover
                raise ValueError(kind)
            items.append((kind, venue, symbol, tab))
    return EventTable.from_tables(items)


@st.composite
def event_tables(draw: st.DrawFn, *, kinds: tuple[str, ...] = ALL_KINDS, max_instruments: int = 3,
                 max_events: int = 300) -> EventTable:
    """Random event streams; shrinking acts on the structure (size, fault rates, seed)."""
    return make_event_table(
        draw(st.integers(0, 2**32 - 1)),
        n_instruments=draw(st.integers(1, max_instruments)),
        n_events=draw(st.integers(1, max_events)),
        kinds=kinds,
        gap_p=draw(st.sampled_from([0.0, 0.02, 0.2])),
        dup_p=draw(st.sampled_from([0.0, 0.05, 0.5])),
        burst_p=draw(st.sampled_from([0.0, 0.1, 0.5])),
        nan_p=draw(st.sampled_from([0.0, 0.05, 0.5])),
        zero_p=draw(st.sampled_from([0.0, 0.05, 0.5])),
        span_ns=draw(st.sampled_from([60 * 10**9, 3600 * 10**9, 3 * 24 * 3600 * 10**9])),
    )
