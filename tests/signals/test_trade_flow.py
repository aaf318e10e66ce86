"""Trade-flow metrics on hand-made trade tapes (expectations computed by hand in the comments),
plus the four contract checks on dense random streams where every output is mostly defined."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals import Metric, get_spec
from emerald.testing.contract import check_contract
from emerald.testing.strategies import make_event_table
from emerald.testing.tapes import T0

S = 1_000_000_000
MIN = 60 * S
DAY = 24 * 3600 * S
START = T0 - T0 % DAY  # 00:00 UTC: buckets and sessions start here
NAN = math.nan


def trades(rows: list[tuple]) -> dict[str, np.ndarray]:
    """Trades ``(seconds after START, price, qty, side)``."""
    ts = np.array([START + round(r[0] * S) for r in rows], dtype=np.int64)
    return {"ts_event": ts, "ts_recv": ts, "price": np.array([r[1] for r in rows], dtype=float),
            "qty": np.array([r[2] for r in rows], dtype=float), "side": np.array([r[3] for r in rows], np.int8),
            "trade_id": np.arange(len(rows))}


def tape(rows: list[tuple], probes: list[float] = ()) -> EventTable:
    """Trades of instrument 0 (``v:X``); ``probes`` are trades of another instrument at those
    seconds: they only move stream time, so they show a metric's value "as of" that time."""
    items = [("trades", "v", "X", trades(rows))]
    if probes:
        items.append(("trades", "v", "Y", trades([(t, 1.0, 1.0, 1) for t in probes])))
    return EventTable.from_tables(items)


def run(name: str, ev: EventTable, **params) -> np.ndarray:
    spec = get_spec(name)
    p = spec.make_params(**params)
    check_contract(spec, ev, p)  # every hand-made case also passes the four contract checks
    return Metric(spec, p).run(ev)


def at(ev: EventTable, out: np.ndarray, seconds: float, inst: int = 0) -> np.ndarray:
    """The outputs at the (last) event of ``inst`` at ``seconds``."""
    hit = np.flatnonzero((ev.ts == START + round(seconds * S)) & (ev.inst == inst))
    assert hit.size, f"no event of inst {inst} at {seconds} s"
    return out[hit[-1]]


# ------------------------------------------------------------------------- trade-flow imbalance


def test_trade_flow_imbalance_reference_is_unchanged() -> None:
    ev = tape([(0, 100.0, 3.0, 1), (1, 100.0, 1.0, -1), (2, 1.0, 1.0, -1)])  # the last: notional 1
    out = run("trade_flow_imbalance", ev, min_notional=10.0)
    assert out[:, 0].tolist() == [1.0, 0.5, 0.5]  # (3-0)/3, (3-1)/4; the 1-notional sell is ignored


# ------------------------------------------------------------------------------- buy/sell ratio


def test_buy_sell_ratio_by_hand() -> None:
    rows = [(0, 100.0, 3.0, 1), (1, 100.0, 1.0, -1), (2, 100.0, 1.0, 1), (3, 1.0, 5.0, -1),  # notional 5
            (4, math.nan, 9.0, -1)]  # a NaN price is skipped, not summed
    ev = tape(rows, probes=[30.5, 31.5, 32.5, 33.5])
    out = run("buy_sell_ratio", ev, window_ns=30 * S, min_notional=10.0, cap=50.0)
    assert at(ev, out, 0)[0] == 50.0  # buys and no sell: the cap
    assert at(ev, out, 1)[0] == 3.0
    assert at(ev, out, 3)[0] == 4.0  # (3 + 1) / 1; the 5-notional sell is under min_notional
    assert at(ev, out, 4)[0] == 4.0
    assert at(ev, out, 30.5, inst=1)[0] == 1.0  # buckets 1..30: the t=0 buy left the window
    assert at(ev, out, 31.5, inst=1)[0] == 50.0  # the sell left too: buys only
    assert math.isnan(at(ev, out, 32.5, inst=1)[0])  # empty window


def test_buy_sell_ratio_caps_and_zero() -> None:
    ev = tape([(0, 100.0, 1000.0, 1), (0.1, 100.0, 1.0, -1), (40, 100.0, 2.0, -1), (40.5, 100.0, 0.0, 1)])
    out = run("buy_sell_ratio", ev)  # cap 100, window 30 s
    assert out[1, 0] == 100.0  # 1000 / 1 capped
    assert out[2, 0] == 0.0 and out[3, 0] == 0.0  # sells only (a 0-qty buy adds no volume)


# ----------------------------------------------------------------------- cumulative volume delta


def test_cvd_resets_at_midnight_utc_and_rolls_over_15_minutes() -> None:
    rows = [(-600, 100.0, 2.0, 1), (-5, 100.0, 0.5, -1), (1, 100.0, 1.0, 1), (400, 100.0, 0.25, -1)]
    ev = tape(rows, probes=[-900, 0.5, 300.5, 901.5])
    out = run("cumulative_volume_delta", ev)
    assert np.isnan(at(ev, out, -900, inst=1)).all()  # before the first trade
    assert at(ev, out, -5).tolist() == [1.5, 1.5]  # 2 - 0.5, both in the session and the window
    assert at(ev, out, 0.5, inst=1).tolist() == [0.0, 1.5]  # 00:00 passed: new session, no trade yet
    assert at(ev, out, 1).tolist() == [1.0, 2.5]
    assert at(ev, out, 300.5, inst=1).tolist() == [1.0, 0.5]  # buckets -599..300: the -600 buy left
    assert at(ev, out, 400).tolist() == [0.75, 0.25]
    assert at(ev, out, 901.5, inst=1).tolist() == [0.75, -0.25]  # buckets 2..901: the t=1 buy left


def test_cvd_session_offset_and_notional() -> None:
    rows = [(-600, 100.0, 2.0, 1), (1, 200.0, 1.0, -1)]
    ev = tape(rows)
    out = run("cumulative_volume_delta", ev, session_offset_ns=8 * 3600 * S, notional=1)
    assert out[:, 0].tolist() == [200.0, 0.0]  # sessions start 08:00 UTC: midnight is no reset; quote notional


def test_cvd_rejects_offset_beyond_session() -> None:
    with pytest.raises(ConfigError, match="session_offset_ns"):
        Metric("cumulative_volume_delta", session_ns=3600 * S, session_offset_ns=3600 * S)


# --------------------------------------------------------------------------------- large trades


def test_large_trades_and_whales() -> None:
    rows = [(0, 50_000.0, 1.0, 1), (1, 50_000.0, 1.0, -1), (2, 50_000.0, 1.0, 1), (3, 50_000.0, 1.0, -1),
            (4, 50_000.0, 10.0, 1),  # 10 > 10 x 1: no (strict)
            (5, 50_000.0, 30.0, -1)]  # mean of the earlier 5: 14 / 5 = 2.8 -> 30 > 28: large, and a whale
    ev = tape(rows, probes=[299.5, 300.5, 305.5])
    out = run("large_trades", ev)
    assert math.isnan(out[0, 0])  # no earlier trade in the window
    assert out[1:5, 0].tolist() == [0.0] * 4
    assert at(ev, out, 4)[[1, 3, 4]].tolist() == [0.0, 0.0, 0.0]  # 500k notional is not > 500k
    assert at(ev, out, 5).tolist() == [1.0, 1.0, 1_500_000.0, 1.0, 1_500_000.0]
    assert at(ev, out, 299.5, inst=1).tolist() == [1.0, 1.0, 1_500_000.0, 1.0, 1_500_000.0]
    assert at(ev, out, 305.5, inst=1).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]  # buckets 6..305: all left


def test_large_trades_equal_sizes_are_not_large() -> None:
    ev = tape([(t, 100.0, 0.1, 1) for t in range(6)])  # mean 0.1 up to rounding: 0.1 > 1 x mean is false
    out = run("large_trades", ev, k=1.0)
    assert out[1:, 0].tolist() == [0.0] * 5


# ----------------------------------------------------------------------------------- exhaustion


def test_exhaustion_by_hand() -> None:
    rows = [(0, 100.0, 1.0, 1), (100, 100.0, 6.0, 1), (150, 100.0, 4.0, -1), (200, 100.0, 2.0, 1),
            (290, 100.0, 0.3, 1), (301, 100.0, 5.0, -1)]
    ev = tape(rows, probes=[299.5, 300.5])
    out = run("exhaustion", ev)  # 30 s vs 5 min, threshold 0.5
    assert np.isnan(at(ev, out, 299.5, inst=1)).all()  # warm-up: 5 min after the first trade
    # t=300.5: long window buckets 1..300 (buy 8.3, sell 4), short 271..300 (buy 0.3)
    r = at(ev, out, 300.5, inst=1)
    assert r[0] == pytest.approx(0.3 / (12.3 * 0.1), rel=1e-12) and r[1] == 1.0
    assert r[2] == pytest.approx(0.3 / (8.3 * 0.1), rel=1e-12) and r[3] == 1.0
    assert r[4] == 0.0 and r[5] == 1.0
    # t=301: + sell 5 -> long buy 8.3 sell 9, short buy 0.3 sell 5
    r = at(ev, out, 301)
    assert r[0] == pytest.approx(5.3 / 1.73, rel=1e-12) and r[1] == 0.0
    assert r[2] == pytest.approx(0.3 / 0.83, rel=1e-12) and r[3] == 1.0  # buyers exhausted
    assert r[4] == pytest.approx(5.0 / 0.9, rel=1e-12) and r[5] == 0.0


def test_exhaustion_windows_must_increase() -> None:
    with pytest.raises(ConfigError, match="`short_ns` must be shorter"):
        Metric("exhaustion", short_ns=5 * MIN, long_ns=5 * MIN)


# ---------------------------------------------------------------------------------- volume spike


def test_volume_spike_by_hand() -> None:
    rows = [(0, 100.0, 1.0, 1), (5, 100.0, 2.0, -1), (15, 100.0, 3.0, 1), (25, 100.0, 4.0, -1),
            (35, 100.0, 1.0, 1), (41, 100.0, 10.0, 1)]
    ev = tape(rows, probes=[39.5, 80.5])
    out = run("volume_spike", ev, window_ns=10 * S, periods=3)
    assert math.isnan(at(ev, out, 39.5, inst=1)[0])  # warm-up: 4 windows after the first trade
    # t=41: current buckets 32..41 (1 + 10), preceding 2..31 (2 + 3 + 4): 11 / (9 / 3)
    assert at(ev, out, 41)[0] == pytest.approx(11 / 3, rel=1e-12)
    assert at(ev, out, 80.5, inst=1)[0] == 0.0  # current 71..80 empty, preceding 41..70 holds 10
    with pytest.raises(ConfigError, match="periods"):
        Metric("volume_spike", window_ns=10 * MIN, periods=10)  # 110 min of 1 s buckets > 4096


# ------------------------------------------------------------------------------------ trade rate


def test_trade_rate_by_hand() -> None:
    ev = tape([(0, 100.0, 1.0, 1), (1, 100.0, 1.0, -1), (2, 100.0, 1.0, 1), (3, 100.0, 0.0, 1)],
              probes=[9.5, 10.5])
    out = run("trade_rate", ev, window_ns=10 * S)
    assert math.isnan(at(ev, out, 9.5, inst=1)[0])  # warm-up: one window after the first trade
    assert at(ev, out, 10.5, inst=1)[0] == pytest.approx(0.3)  # buckets 1..10: 3 trades (a 0-qty print counts)


# --------------------------------------------------------------------------- consecutive moves


def test_consecutive_price_drops_design_table() -> None:
    # algo-engine-design.md 2.6.2, visual example (LONG): three drops of $5 after the rise
    prices = [50_000, 50_020, 50_080, 50_150, 50_180, 50_200, 50_195, 50_190, 50_185]
    ev = tape([(2 * k, p, 1.0, 1) for k, p in enumerate(prices)])
    out = run("consecutive_price_moves", ev)
    assert out[:, 0].tolist() == [0, 0, 0, 0, 0, 0, 1, 2, 3]
    assert out[:, 1].tolist() == [0, 1, 2, 3, 4, 5, 0, 0, 0]


def test_consecutive_moves_use_price_not_side_and_skip_unchanged() -> None:
    # the design's "wrong approach": three SELL prints at rising prices are up-ticks
    rows = [(0, 50_300, 1.0, -1), (2, 50_305, 1.0, -1), (4, 50_310, 1.0, -1), (5, 50_310, 1.0, 1),
            (6, 50_300, 1.0, 1), (7, 50_300, 1.0, -1), (8, 50_290, 1.0, 1)]
    ev = tape(rows, probes=[-1])
    out = run("consecutive_price_moves", ev)
    assert np.isnan(out[0]).all()  # the probe before any trade
    assert out[1:, 0].tolist() == [0, 0, 0, 0, 1, 1, 2]
    assert out[1:, 1].tolist() == [0, 1, 2, 2, 0, 0, 0]


# --------------------------------------------------------------------------------- flow toxicity


def test_flow_toxicity_by_hand() -> None:
    # 10 s intervals, N = 2: intervals 0..4 with one trade each
    rows = [(1, 100.0, 1.0, 1), (11, 100.0, 1.0, -1), (21, 101.0, 2.0, 1), (31, 99.99, 0.5, -1),
            (41, 99.99, 10.0, 1)]
    ev = tape(rows, probes=[51])
    out = run("flow_toxicity", ev, interval_ns=10 * S, n_intervals=2)
    # interval 2: r = 1/100, volume 2 / mean(1, 1) = 2 -> impact 0.005
    # interval 3: r = 1.01/101 = 0.01, volume 0.5 / mean(1, 2) = 1/3 -> impact 0.03
    # interval 4: r = 0, volume 10 / mean(2, 0.5) = 8 -> impact 0
    assert np.isnan(at(ev, out, 21)).all()  # completed: 0, 1 (no impact: too little history)
    t31 = at(ev, out, 31)  # window: intervals 1, 2 -> one impact
    assert math.isnan(t31[0]) and t31[1] == pytest.approx(0.005) and math.isnan(t31[2])
    t41 = at(ev, out, 41)  # intervals 2, 3: mean 0.0175, population std 0.0125
    assert t41[1:].tolist() == pytest.approx([0.0175, 0.0125]) and t41[0] == pytest.approx(1.4)
    t51 = at(ev, out, 51, inst=1)  # intervals 3, 4: mean 0.015, std 0.015
    assert t51.tolist() == pytest.approx([1.0, 0.015, 0.015])


def test_flow_toxicity_normalises_by_preceding_volume_only() -> None:
    # intervals 0..3 as above; interval 4 has volume 0.01 instead of 10. Interval 3's impact stays
    # 0.03: its volume is normalised by intervals 1 and 2 only. The design's candle code divides
    # by the mean over the whole window, which would give 0.01 / (0.5 / mean(0.5, 0.01)) = 0.0051.
    rows = [(1, 100.0, 1.0, 1), (11, 100.0, 1.0, -1), (21, 101.0, 2.0, 1), (31, 99.99, 0.5, -1),
            (41, 99.99, 0.01, 1)]
    ev = tape(rows, probes=[51])
    out = run("flow_toxicity", ev, interval_ns=10 * S, n_intervals=2)
    t51 = at(ev, out, 51, inst=1)  # interval 4: volume ratio 0.01 / mean(2, 0.5) = 0.008 <= 0.1: no impact
    assert t51[1] == pytest.approx(0.03) and math.isnan(t51[2]) and math.isnan(t51[0])


def test_flow_toxicity_gap_clears_history() -> None:
    rows = [(1, 100.0, 1.0, 1), (11, 100.0, 1.0, -1), (21, 101.0, 2.0, 1), (31, 99.99, 0.5, -1),
            (41, 99.99, 10.0, 1), (1001, 99.0, 1.0, 1)]
    out = run("flow_toxicity", tape(rows), interval_ns=10 * S, n_intervals=2)
    assert np.isnan(out[-1]).all()  # 95 empty intervals: nothing valid left in the window


# ----------------------------------------------------------------------- contract on dense streams

DENSE = {
    "buy_sell_ratio": {"window_ns": 20 * S, "min_notional": 50.0},
    "cumulative_volume_delta": {"window_ns": 60 * S, "session_ns": 5 * MIN, "session_offset_ns": 7 * S},
    "large_trades": {"window_ns": 60 * S, "k": 2.0, "whale_notional": 300.0},
    "exhaustion": {"short_ns": 10 * S, "long_ns": 60 * S, "threshold": 0.7},
    "volume_spike": {"window_ns": 10 * S, "periods": 5},
    "trade_rate": {"window_ns": 30 * S},
    "consecutive_price_moves": {},
    "flow_toxicity": {"interval_ns": 5 * S, "n_intervals": 6, "min_volume_ratio": 0.05},
}


@pytest.mark.parametrize("seed", [11, 12])
@pytest.mark.parametrize("name", sorted(DENSE))
def test_contract_on_dense_streams(name: str, seed: int) -> None:
    """About 750 trades per instrument in 10 minutes, with quotes, duplicate timestamps, bursts
    and zero sizes (long gaps: the hypothesis streams): windows are mostly non-empty, so the
    oracle comparison is not vacuous."""
    ev = make_event_table(seed, n_instruments=2, n_events=1500, kinds=("trades", "quotes"), span_ns=10 * MIN,
                          gap_p=0.0)
    spec = get_spec(name)
    params = spec.make_params(**DENSE[name])
    check_contract(spec, ev, params, cuts=(0.25, 0.6))
    out = Metric(spec, params).run(ev)
    assert np.isfinite(out).all(axis=1).mean() > 0.5, "most values should be defined on a dense stream"
    assert (np.nanstd(out, axis=0) > 0).all(), "every output should vary"
