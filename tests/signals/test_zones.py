"""Zones: market profile, supply/demand zones and fair value gaps on hand-made trade and bar
tapes, plus the contract on streams long enough to form zones and gaps."""

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
START = T0 - T0 % DAY  # bars are aligned to UTC: time 0 of these tapes opens a bar


def trades(rows: list[tuple[float, float, float]]) -> dict[str, np.ndarray]:
    """Trades ``(seconds after START, price, qty)``."""
    ts = np.array([START + round(t * S) for t, _, _ in rows], dtype=np.int64)
    n = len(rows)
    return {"ts_event": ts, "ts_recv": ts, "price": np.array([r[1] for r in rows], dtype=float),
            "qty": np.array([r[2] for r in rows], dtype=float), "side": np.ones(n, np.int8), "trade_id": np.arange(n)}


def tape(rows, other: list[tuple[float, float, float]] | None = None) -> EventTable:
    items = [("trades", "v", "X", trades(rows))]
    if other:  # trades of another instrument: they move time, never the zones
        items.append(("trades", "v", "Y", trades(other)))
    return EventTable.from_tables(items)


def bars_tape(rows: list[tuple[float, float, float, float, float, float]], bar_ns: int = MIN) -> EventTable:
    """Bars ``(open time in seconds after START, open, high, low, close, volume)``."""
    ts = np.array([START + round(r[0] * S) for r in rows], dtype=np.int64)
    n = len(rows)
    col = {name: np.array([r[k + 1] for r in rows], dtype=float)
           for k, name in enumerate(("open", "high", "low", "close", "volume"))}
    tab = {"ts_event": ts, "interval_ns": np.full(n, bar_ns), **col, "buy_volume": col["volume"] / 2,
           "sell_volume": col["volume"] / 2, "trades": np.ones(n, np.int64)}
    return EventTable.from_tables([("bars", "v", "X", tab)])


def run(name: str, ev: EventTable, **params) -> np.ndarray:
    spec = get_spec(name)
    p = spec.make_params(**params)
    check_contract(spec, ev, p)  # every hand-made case also passes the four contract checks
    return Metric(spec, p).run(ev)


# --------------------------------------------------------------------------------- market profile

D = math.log(1.001)  # bin width at bin_bps = 10
K0 = math.floor(math.log(100.0) / D)


def px(j: float) -> float:
    """A price in the middle of bin K0 + j."""
    return math.exp((K0 + j + 0.5) * D)


def edge(j: int) -> float:
    return math.exp((K0 + j) * D)


def profile(rows, **params) -> np.ndarray:
    return run("market_profile", tape(rows), bin_bps=10.0, **params)


def test_profile_poc_and_value_area_grow_toward_the_heavier_side() -> None:
    # volumes by bin 0..4: 1, 2, 5, 3, 1 -> total 12, 70 % = 8.4
    # POC bin 2 (5); next 3 (3) beats 1 (2): 8; then 1 (2) beats 4 (1): 10 >= 8.4 -> bins 1..3
    out = profile([(1, px(2), 5.0), (2, px(1), 2.0), (3, px(3), 3.0), (4, px(0), 1.0), (5, px(4), 1.0)])
    poc, vah, val, at_vah, at_val, inside = out[-1]
    assert poc == pytest.approx((edge(2) + edge(3)) / 2, rel=1e-12)
    assert vah == pytest.approx(edge(4), rel=1e-12) and val == pytest.approx(edge(1), rel=1e-12)
    # the last price sits half a bin (0.05 %) above VAH: within 0.1 % of it, outside the value area
    assert (at_vah, at_val, inside) == (1.0, 0.0, 0.0)
    # after the first trade alone, the value area is its bin and the price is in the middle
    assert out[0, 1:].tolist() == pytest.approx([edge(3), edge(2), 1.0, 1.0, 1.0], rel=1e-12)


def test_profile_ties_and_empty_bins() -> None:
    # a tie between the next bins takes both: 2, 5, 2 -> all three bins
    out = profile([(1, px(0), 2.0), (2, px(1), 5.0), (3, px(2), 2.0)])
    assert out[-1, 1:3].tolist() == pytest.approx([edge(3), edge(0)], rel=1e-12)
    # a POC tie goes to the lowest bin
    out = profile([(1, px(0), 4.0), (2, px(1), 1.0), (3, px(2), 4.0)])
    assert out[-1, 0] == pytest.approx((edge(0) + edge(1)) / 2, rel=1e-12)
    # empty bins between traded ones are crossed: 2, 0, 0, 3 with 70 % of 5 = 3.5 -> bins 0..3
    out = profile([(1, px(0), 2.0), (2, px(3), 3.0)])
    assert out[-1, 0:3].tolist() == pytest.approx([(edge(3) + edge(4)) / 2, edge(4), edge(0)], rel=1e-12)
    # the value-area share is a parameter: at 50 % the POC bin alone (3 of 5) is enough
    out = profile([(1, px(0), 2.0), (2, px(3), 3.0)], value_area=0.5)
    assert out[-1, 1:3].tolist() == pytest.approx([edge(4), edge(3)], rel=1e-12)


def test_profile_window_expires_and_moves_with_any_event() -> None:
    rows = [(1, px(0), 10.0), (30, px(1), 1.0)]
    ev = tape(rows, other=[(61.5, 5.0, 1.0), (100, 5.0, 1.0)])
    out = run("market_profile", ev, bin_bps=10.0, window_ns=60 * S)
    assert out[1, 0] == pytest.approx((edge(0) + edge(1)) / 2, rel=1e-12)
    # at 61.5 s the window covers the buckets of seconds 2..61: the 10-lot at 1 s is gone
    assert out[2, 0] == pytest.approx((edge(1) + edge(2)) / 2, rel=1e-12)
    assert np.isnan(out[3]).all()  # at 100 s nothing is left


def test_profile_low_prices_and_too_wide_ranges() -> None:
    out = run("market_profile", tape([(1, 0.5, 1.0), (2, 0.5, 3.0)]))  # negative bin numbers
    d = math.log(1.0005)
    k = math.floor(math.log(0.5) / d)
    assert k < 0 and out[-1, 0] == pytest.approx((math.exp(k * d) + math.exp((k + 1) * d)) / 2, rel=1e-12)
    # 0.01 bp bins: 100 and 100.2 are ~2000 bins apart (> 1024) -> NaN until the first leaves
    ev = tape([(1, 100.0, 1.0), (50, 100.2, 1.0), (70, 100.2, 1.0)])
    out = run("market_profile", ev, bin_bps=0.01, window_ns=60 * S)
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all() and np.isfinite(out[2]).all()


def test_profile_skips_bad_trades() -> None:
    ev = tape([(1, px(0), 1.0), (2, math.nan, 5.0), (3, px(2), 0.0), (4, px(1), math.nan)])
    out = run("market_profile", ev, bin_bps=10.0)
    assert (out[1:] == out[0]).all()


# --------------------------------------------------------------------------------- supply / demand

BASE = [(10, 100.0, 0.5), (20, 100.1, 0.5), (70, 100.1, 0.5), (80, 100.2, 0.5)]  # two 1-lot bars
DEMAND_PIN = [(130, 100.0, 1.0), (140, 98.0, 1.0), (150, 100.25, 1.0), (170, 100.2, 1.0)]
ZONE = {"bar_ns": MIN, "vol_bars": 2}


def test_demand_zone_forms_is_tested_weakens_and_breaks() -> None:
    # bar 3: open 100, high 100.25, low 98, close 100.2, volume 4 (>= 1.5 x mean 1):
    # lower wick 2 > 2 x body 0.2, close in the top 20 % -> demand zone [98, 100]
    rows = BASE + DEMAND_PIN + [(185, 100.5, 1.0), (190, 99.5, 1.0), (200, 101.0, 1.0), (210, 100.0, 1.0),
                                (220, 100.3, 1.0), (230, 99.0, 1.0), (245, 97.9, 1.0)]
    out = run("supply_demand_zones", tape(rows), **ZONE)
    at = {t: out[k] for k, (t, _, _) in enumerate(rows)}
    assert np.isnan(at[170][:6]).all() and at[170][6:].tolist() == [0.0] * 6
    # the 185 s trade closes bar 3: the zone is fresh, strength 100 x min(1, 4 / (2 x 1.5 x 1))
    assert at[185][[0, 1, 2, 6, 8, 9]].tolist() == [98.0, 100.0, 100.0, 0.0, 1.0, 0.0]
    assert at[190][[2, 6, 8, 9]].tolist() == [70.0, 1.0, 0.0, 1.0]  # first test
    assert at[200][[2, 6]].tolist() == [70.0, 0.0]
    assert at[210][[2, 6]].tolist() == [70.0, 1.0]  # second test (the edge counts as inside)
    assert at[230][2] == 40.0  # third test
    assert np.isnan(at[245][:6]).all() and at[245][6:].tolist() == [0.0] * 6  # broken below 98: removed
    assert np.isnan(at[230][3:6]).all()  # never a supply zone


def test_supply_zone_strength_scales_with_formation_volume() -> None:
    # bar 3: open 100.2, high 102.5, low 100, close 100, volume 2: upper wick 2.3, close at the low
    pin = [(130, 100.2, 1.0), (140, 102.5, 0.5), (150, 100.0, 0.5)]
    rows = BASE + pin + [(181, 99.8, 1.0), (190, 102.6, 1.0)]
    out = run("supply_demand_zones", tape(rows), **ZONE)
    assert out[-2, 3:6].tolist() == pytest.approx([100.2, 102.5, 100 * 2 / 3], rel=1e-12)
    assert out[-2, [7, 10, 11]].tolist() == [0.0, 1.0, 0.0]
    assert np.isnan(out[-1, 3:6]).all()  # broken above 102.5
    # the same bar with volume 1.4 < 1.5 x mean is no spike: no zone
    quiet = BASE + [(130, 100.2, 0.9), (140, 102.5, 0.25), (150, 100.0, 0.25), (181, 99.8, 1.0)]
    assert run("supply_demand_zones", tape(quiet), **ZONE)[-1, 10] == 0.0


SECOND_PIN = [(190, 101.0, 2.0), (200, 99.5, 2.0), (210, 101.3, 1.0), (230, 101.25, 1.0), (241, 101.5, 1.0)]


def test_nearest_zone_and_the_zone_cap() -> None:
    # bar 4: open 101, high 101.3, low 99.5, close 101.25, volume 6 >= 1.5 x mean(1, 4): demand [99.5, 101],
    # strength 100 x 6 / 7.5; its low at 99.5 tested the first zone [98, 100]
    rows = BASE + DEMAND_PIN + SECOND_PIN
    out = run("supply_demand_zones", tape(rows), **ZONE)[-1]
    assert out[[0, 1, 2, 8, 9]].tolist() == pytest.approx([99.5, 101.0, 80.0, 1.0, 1.0], rel=1e-12)
    capped = run("supply_demand_zones", tape(rows), **ZONE, max_zones=1)[-1]
    assert capped[[0, 1, 8, 9]].tolist() == [99.5, 101.0, 1.0, 0.0]  # the oldest zone made room


def test_zones_from_the_bars_tape_match_zones_from_trades() -> None:
    bars = [(0, 100.0, 100.1, 100.0, 100.1, 1.0), (60, 100.1, 100.2, 100.1, 100.2, 1.0),
            (120, 100.0, 100.25, 98.0, 100.2, 4.0), (180, 101.0, 101.3, 99.5, 101.25, 6.0)]
    out = run("supply_demand_zones", bars_tape(bars), **ZONE, source=1)
    assert out[2, [0, 1, 2, 8]].tolist() == [98.0, 100.0, 100.0, 1.0]
    assert out[3, [0, 1, 2, 8, 9]].tolist() == pytest.approx([99.5, 101.0, 80.0, 1.0, 1.0], rel=1e-12)
    # a bar of another length is not read
    assert np.isnan(run("supply_demand_zones", bars_tape(bars, bar_ns=2 * MIN), **ZONE, source=1)).all()


# --------------------------------------------------------------------------------- fair value gaps

BULL = [(10, 100.0, 1.0), (20, 101.0, 1.0), (70, 101.5, 1.0), (80, 103.0, 1.0), (130, 103.0, 1.0),
        (140, 102.0, 1.0)]  # bar 1 high 101, bar 3 low 102


def test_bullish_gap_forms_fills_and_is_removed() -> None:
    rows = BULL + [(185, 102.5, 1.0), (190, 101.5, 1.0), (200, 101.8, 1.0), (210, 101.0, 1.0)]
    out = run("fair_value_gaps", tape(rows), bar_ns=MIN)
    assert out[5].tolist()[:2] == [0.0, 0.0] and np.isnan(out[5, 2])
    assert out[6].tolist() == [1.0, 0.0, 101.0, 102.0, 1.0, 0.0, 0.0]  # 0.99 % gap, nothing filled
    assert out[7].tolist() == [1.0, 0.0, 101.0, 102.0, 1.0, 0.5, 1.0]  # 101.5: half filled, inside
    assert out[8, 5] == 0.5 and out[8, 6] == 1.0  # the fill is the deepest reached
    assert out[9].tolist()[:2] == [0.0, 0.0] and np.isnan(out[9, 2:4]).all()  # 101 reached: filled


def test_bearish_gap_expires_after_24_hours() -> None:
    rows = [(10, 100.0, 1.0), (20, 99.0, 1.0), (70, 98.5, 1.0), (80, 97.0, 1.0), (130, 97.5, 1.0), (140, 98.0, 1.0),
            (185, 97.0, 1.0)]
    created = 180  # the close of bar 3
    other = [(created + 86400 - 1e-6, 5.0, 1.0), (created + 86400, 5.0, 1.0)]
    out = run("fair_value_gaps", tape(rows, other=other), bar_ns=MIN)
    assert out[6].tolist() == [0.0, 1.0, 98.0, 99.0, -1.0, 0.0, 0.0]
    assert out[7, 1] == 1.0 and out[8, 1] == 0.0 and np.isnan(out[8, 2])


def test_gap_size_threshold_and_bars_across_empty_intervals() -> None:
    small = [(10, 100.0, 1.0), (20, 101.0, 1.0), (70, 101.5, 1.0), (130, 101.1, 1.0), (185, 101.2, 1.0)]
    assert run("fair_value_gaps", tape(small), bar_ns=MIN)[-1, 0] == 0.0  # 0.099 % < 0.2 %
    assert run("fair_value_gaps", tape(small), bar_ns=MIN, min_gap_pct=0.05)[-1, 0] == 1.0
    # no trade from 60 s to 180 s: the three bars are the last three non-empty ones
    spaced = [(10, 100.0, 1.0), (20, 101.0, 1.0), (190, 101.5, 1.0), (200, 103.0, 1.0), (250, 102.0, 1.0),
              (305, 102.5, 1.0)]
    assert run("fair_value_gaps", tape(spaced), bar_ns=MIN)[-1, [0, 2, 3]].tolist() == [1.0, 101.0, 102.0]


def test_gaps_from_the_bars_tape() -> None:
    bars = [(0, 100.0, 101.0, 100.0, 101.0, 2.0), (60, 101.5, 103.0, 101.5, 103.0, 2.0),
            (120, 103.0, 103.0, 102.0, 102.5, 2.0), (180, 102.0, 102.2, 101.5, 101.6, 1.0)]
    out = run("fair_value_gaps", bars_tape(bars), bar_ns=MIN, source=1)
    assert out[2].tolist() == [1.0, 0.0, 101.0, 102.0, 1.0, 0.0, 0.0]
    assert out[3].tolist() == pytest.approx([1.0, 0.0, 101.0, 102.0, 1.0, 0.5, 1.0], rel=1e-12)  # low 101.5


def test_fvg_capacity_is_validated() -> None:
    with pytest.raises(ConfigError, match="expiry_ns"):
        Metric("fair_value_gaps", bar_ns=MIN, expiry_ns=30 * DAY)
    Metric("fair_value_gaps", bar_ns=MIN, expiry_ns=DAY)


# --------------------------------------------------------------------------------- long streams


def random_tape(seed: int, n: int = 1500, hours: float = 3.0) -> EventTable:
    """A random walk with jumps (gaps), zero-qty trades and quotes in between."""
    rng = np.random.default_rng(seed)
    span = int(hours * 3600 * S)
    ts = T0 + np.sort(rng.integers(0, span, n))
    steps = rng.normal(0, 4e-4, n)
    steps[rng.random(n) < 0.01] *= 15
    qty = rng.lognormal(0, 1, n)
    qty[rng.random(n) < 0.02] = 0.0
    tq = T0 + np.sort(rng.integers(0, span, n // 4))
    quotes = {"ts_event": tq, "ts_recv": tq, "bid_px": np.full(n // 4, 99.0), "bid_qty": np.ones(n // 4),
              "ask_px": np.full(n // 4, 101.0), "ask_qty": np.ones(n // 4)}
    tr = {"ts_event": ts, "ts_recv": ts, "price": 100 * np.exp(np.cumsum(steps)), "qty": qty,
          "side": np.ones(n, np.int8), "trade_id": np.arange(n)}
    return EventTable.from_tables([("trades", "v", "X", tr), ("quotes", "v", "X", quotes)])


@pytest.mark.parametrize("seed", [1, 2])
def test_contract_on_long_streams_exercises_every_output(seed: int) -> None:
    ev = random_tape(seed)
    mp = run("market_profile", ev, window_ns=5 * MIN)
    assert np.nanmax(mp[:, 3]) == 1 and np.nanmax(mp[:, 4]) == 1 and np.nanmax(mp[:, 5]) == 1
    z = run("supply_demand_zones", ev, bar_ns=MIN, vol_bars=5, spike_mult=1.0)
    assert np.nanmax(z[:, 8]) >= 1 and np.nanmax(z[:, 9]) >= 1 and np.nanmax(z[:, 10] + z[:, 11]) >= 1
    assert np.nanmax(z[:, 6]) == 1 and np.nanmin(z[:, 2]) < 70
    g = run("fair_value_gaps", ev, bar_ns=MIN, min_gap_pct=0.05, expiry_ns=3600 * S)
    assert np.nanmax(g[:, 0]) >= 1 and np.nanmax(g[:, 1]) >= 1 and np.nanmax(g[:, 6]) == 1
    assert 0 < np.nanmax(g[:, 5]) <= 1


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_contract_reading_the_bars_tape(seed: int) -> None:
    ev = make_event_table(seed, n_events=600, span_ns=3600 * S, kinds=("trades", "bars", "quotes"))
    z = run("supply_demand_zones", ev, source=1, bar_ns=MIN, vol_bars=2, spike_mult=0.5, wick_ratio=0.5,
            close_frac=0.5)
    g = run("fair_value_gaps", ev, source=1, bar_ns=MIN, min_gap_pct=0.0)
    assert np.nanmax(z[:, 8] + z[:, 10]) >= 1 and np.nanmax(g[:, 0] + g[:, 1]) >= 1
