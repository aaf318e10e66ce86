"""Bar metrics (emerald/signals/bars.py) and the bar builder (emerald/signals/_bar_state.py).

Expected values are worked out by hand in the comments (or with the standard library's
``statistics``); none are produced by the code under test. The four contract checks run for
every metric in tests/signals/test_contract.py with default parameters; here they also run with
short periods and on the bars tape, so that warmed-up values are compared too.
"""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime

import numpy as np
import pytest
from numba import njit

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals import Metric, get_spec
from emerald.signals._bar_state import bar_fields, bar_init, bar_step_nb
from emerald.testing.contract import check_contract
from emerald.testing.strategies import make_event_table

S = 1_000_000_000
M = 60 * S
T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * S  # Monday 2024-01-01 00:00 UTC
NAN = np.nan


def at(day: int, hour: int, minute: int = 0, second: float = 0.0) -> int:
    """ns of 2024-01-{day} hour:minute:second UTC."""
    return int(datetime(2024, 1, day, hour, minute, tzinfo=UTC).timestamp()) * S + round(second * S)


def trades(ts: list[int], price: list[float], qty: list[float] | None = None,
           side: list[int] | None = None) -> dict[str, np.ndarray]:
    n = len(ts)
    return {"ts_event": np.array(ts, np.int64), "price": np.array(price, float),
            "qty": np.array(qty if qty is not None else [1.0] * n, float),
            "side": np.array(side if side is not None else [1] * n, np.int8)}


def quotes(ts: list[int]) -> dict[str, np.ndarray]:
    n = len(ts)
    return {"ts_event": np.array(ts, np.int64), "bid_px": np.full(n, 99.0), "bid_qty": np.ones(n),
            "ask_px": np.full(n, 101.0), "ask_qty": np.ones(n)}


def tape_bars(ohlcv: list[tuple[float, float, float, float, float]], *, start: int = T0, interval: int = M,
              opens: list[int] | None = None) -> dict[str, np.ndarray]:
    """Bars tape rows (ts_event = bar open); consecutive bars unless ``opens`` is given."""
    a = np.array(ohlcv, float)
    n = len(a)
    ts = np.array(opens if opens is not None else [start + k * interval for k in range(n)], np.int64)
    return {"ts_event": ts, "interval_ns": np.full(n, interval, np.int64), "open": a[:, 0], "high": a[:, 1],
            "low": a[:, 2], "close": a[:, 3], "volume": a[:, 4], "buy_volume": a[:, 4] / 2,
            "sell_volume": a[:, 4] / 2}


def table(*items: tuple[str, dict]) -> EventTable:
    """One instrument's tables, merged into the event stream."""
    return EventTable.from_tables([(kind, "v", "X", data) for kind, data in items])


def closes_tape(closes: list[float]) -> EventTable:
    """One bar per close with open = high = low = close, volume 1."""
    return table(("bars", tape_bars([(c, c, c, c, 1.0) for c in closes])))


def run(name: str, events: EventTable, **params) -> np.ndarray:
    return Metric(name, **params).run(events)


def bar_closes(name: str, events: EventTable, **params) -> np.ndarray:
    """Metric values at the 1-minute bars-tape events (one row per bar, in order)."""
    out = run(name, events, source=1, **{"bar_ns": M, **params})
    return out[events.kind == 8]


# --------------------------------------------------------------------------------------- bar builder


@njit
def _record_closes(state, ts, kind, inst, f, want_inst, bar_ns, source, out):
    s = state[0]
    for i in range(ts.shape[0]):
        closed = bar_step_nb(s, ts, kind, inst, f, i, want_inst, bar_ns, source)
        out[i, 0] = 1.0 if closed else 0.0
        out[i, 1] = s.bar_close
        out[i, 2] = s.bar_volume
        out[i, 3] = s.bar_start
        out[i, 4] = s.bar_count


def builder(events: EventTable, *, bar_ns: int = M, source: int = 0, inst: int = 0) -> np.ndarray:
    """Run the builder alone, as another family (zones) would: closed flag, close, volume, start, count."""
    state = np.zeros(1, np.dtype(bar_fields(), align=True))
    bar_init(state)
    out = np.full((len(events), 5), np.nan)
    _record_closes(state, events.ts, events.kind, events.inst, events.f, inst, bar_ns, source, out)
    return out


def test_bar_closes_at_first_event_after_its_end_of_any_kind() -> None:
    # minute 0: trades 100 (q 1), 102 (q 3); a quote at 0:59.9 does not close it; a quote at 1:00 does
    ev = table(("trades", trades([T0 + 10 * S, T0 + 40 * S], [100.0, 102.0], [1.0, 3.0])),
               ("quotes", quotes([T0 + 59_900_000_000, T0 + M])))
    out = builder(ev)
    assert out[:, 0].tolist() == [0, 0, 0, 1]
    assert out[3, 1] == 102.0 and out[3, 2] == 4.0 and out[3, 3] == T0 and out[3, 4] == 1
    assert np.isnan(out[2, 1])  # the bar in progress is never visible


def test_trade_at_the_bar_end_belongs_to_the_next_bar() -> None:
    ev = table(("trades", trades([T0, T0 + 30 * S, T0 + M, T0 + 2 * M], [100.0, 101.0, 105.0, 90.0])))
    out = builder(ev)
    assert out[:, 0].tolist() == [0, 0, 1, 1]
    assert out[2, 1] == 101.0  # the 01:00 trade (105) is the next bar's open, not this bar's close
    assert out[3, 1] == 105.0 and out[3, 3] == T0 + M


def test_event_of_another_instrument_closes_the_bar() -> None:
    ev = EventTable.from_tables([("trades", "v", "A", trades([T0 + S], [100.0])),
                                 ("trades", "v", "B", trades([T0 + M + S], [7.0]))])
    out = builder(ev)
    assert out[:, 0].tolist() == [0, 1] and out[1, 1] == 100.0


def test_empty_intervals_make_no_bar() -> None:
    # trades in minutes 0 and 5 only: two bars, not six; EMA(2) = mean of the two closes
    ev = table(("trades", trades([T0 + S, T0 + 5 * M + S], [100.0, 110.0])), ("quotes", quotes([T0 + 6 * M])))
    out = builder(ev)
    assert out[:, 4].tolist() == [0, 1, 2]
    assert run("ema", ev, n=2)[-1, 0] == 105.0


def test_invalid_trades_are_skipped() -> None:
    ev = table(("trades", trades([T0 + S, T0 + 2 * S, T0 + 3 * S, T0 + 4 * S, T0 + M],
                                 [100.0, NAN, 200.0, -5.0, 100.0], [1.0, 1.0, 0.0, 1.0, 1.0])))
    out = builder(ev)
    assert out[-1, 1] == 100.0 and out[-1, 2] == 1.0  # NaN price, zero qty and negative price ignored


def test_bars_tape_source() -> None:
    # 1-min bars at 00:00 and 00:01, a 5-min bar (ignored), a repeat of the 00:01 bar (ignored) and a
    # bar with a NaN close (skipped); each becomes known at its close (open + 1 min)
    rows = tape_bars([(10, 11, 9, 10.5, 3), (10.5, 12, 10, 11, 4), (10.5, 12, 10, 11.5, 9), (1, 1, 1, 1, 1),
                      (11, 12, 10, NAN, 1)], opens=[T0, T0 + M, T0 + M, T0 + M, T0 + 2 * M])
    rows["interval_ns"][1] = 5 * M
    ev = table(("bars", rows))
    out = builder(ev, source=1)
    order = np.argsort(ev.row)  # tape rows in event order: known at 1:00, 2:00 (x2), 3:00 and 6:00
    assert ev.ts[order].tolist() == [T0 + M, T0 + 6 * M, T0 + 2 * M, T0 + 2 * M, T0 + 3 * M]
    flags = out[order, 0].tolist()
    assert flags == [1, 0, 1, 0, 0]
    assert out[order[2], 1] == 11.5 and out[order[2], 3] == T0 + M


def test_bars_tape_source_ignores_trades_and_trades_source_ignores_tape() -> None:
    # events: trade 0:01, tape bar known at 1:00, trade 3:00; the tape bar event also closes the trade bar
    ev = table(("trades", trades([T0 + S, T0 + 3 * M], [100.0, 100.0])), ("bars", tape_bars([(5, 6, 4, 5, 1)])))
    tape, own = builder(ev, source=1), builder(ev, source=0)
    assert tape[:, 0].tolist() == [0, 1, 0] and tape[1, 1] == 5.0
    assert own[:, 0].tolist() == [0, 1, 0] and own[1, 1] == 100.0


# --------------------------------------------------------------------------------------- wilder family


ATR_BARS = [(9, 10, 8, 9, 1), (9, 11, 9, 10, 1), (10, 12, 9, 11, 1), (11, 11, 7, 8, 1), (8, 10, 8, 9, 1)]


def test_atr_wilder() -> None:
    # TR from bar 1: max(2,2,0)=2, max(3,2,1)=3, max(4,0,4)=4, max(2,2,0)=2; seed mean(2,3,4)=3,
    # then 3 * 2/3 + 2/3 = 8/3
    out = bar_closes("atr", table(("bars", tape_bars(ATR_BARS))), n=3)[:, 0]
    assert np.isnan(out[:3]).all()
    np.testing.assert_allclose(out[3:], [3.0, 8 / 3], rtol=1e-12)


def test_rsi_wilder_and_flat_market() -> None:
    # changes +1, -0.5, +1.5, -1. Seed: AG = 2.5/3, AL = 0.5/3 -> 100 * 2.5 / 3 = 83.33;
    # then AG = 2/3 * 2.5/3 = 5/9, AL = 2/3 * 0.5/3 + 1/3 = 4/9 -> 55.56
    out = bar_closes("rsi", closes_tape([10, 11, 10.5, 12, 11]), n=3)[:, 0]
    assert np.isnan(out[:3]).all()
    np.testing.assert_allclose(out[3:], [100 * 2.5 / 3, 100 * 5 / 9], rtol=1e-12)
    flat = bar_closes("rsi", closes_tape([10, 10, 10, 10]), n=3)[:, 0]
    assert flat[-1] == 50.0


def test_adx_wilder() -> None:
    # bars (H, L, C): (10,8,9) (12,9,11) (13,10,12) (12,8,9) (11,7,8); n = 2, alpha = 1/2
    # +DM: 2, 1, 0, 0   -DM: 0, 0, 2, 1   TR: 3, 3, 4, 4
    # bar 2: TR_s 3, +DM_s 1.5, -DM_s 0 -> +DI 50, -DI 0, DX 100
    # bar 3: TR_s 3.5, +DM_s .75, -DM_s 1 -> +DI 75/3.5, -DI 100/3.5, DX 100 * .25/1.75; ADX = mean(100, DX)
    # bar 4: TR_s 3.75, +DM_s .375, -DM_s 1 -> +DI 10, -DI 26.67, DX 100 * .625/1.375; ADX = (ADX3 + DX) / 2
    rows = [(9, 10, 8, 9, 1), (9, 12, 9, 11, 1), (11, 13, 10, 12, 1), (12, 12, 8, 9, 1), (9, 11, 7, 8, 1)]
    out = bar_closes("adx", table(("bars", tape_bars(rows))), n=2)
    adx3 = (100 + 100 * 0.25 / 1.75) / 2
    expected = np.array([[NAN, NAN, NAN], [NAN, NAN, NAN], [NAN, 50.0, 0.0],
                         [adx3, 75 / 3.5, 100 / 3.5], [(adx3 + 100 * 0.625 / 1.375) / 2, 10.0, 100 / 3.75]])
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_ema_seeded_by_the_mean() -> None:
    # seed mean(1, 2, 3) = 2; alpha = 2/4: 0.5 * 2 + 0.5 * 4 = 3; 0.5 * 3 + 0.5 * 10 = 6.5
    out = bar_closes("ema", closes_tape([1, 2, 3, 4, 10]), n=3)[:, 0]
    np.testing.assert_allclose(out, [NAN, NAN, 2.0, 3.0, 6.5], rtol=1e-12)


def test_ema_one_is_the_last_close_and_holds_between_bars() -> None:
    ev = table(("trades", trades([T0 + S, T0 + 20 * S, T0 + M + S, T0 + M + 2 * S], [100, 101, 102, 103])),
               ("quotes", quotes([T0 + 30 * S, T0 + 90 * S, T0 + 2 * M])))
    out = run("ema", ev, n=1)[:, 0]
    # events: t1 t20 q30 t61 t62 q90 q120 -> the minute-0 bar closes at 1:01 (a trade)
    np.testing.assert_array_equal(out, [NAN, NAN, NAN, 101, 101, 101, 103])


# --------------------------------------------------------------------------------------- vwap


def test_vwap_session_resets_at_utc_midnight() -> None:
    # 23:57 bar: trades 100 x1, 102 x3 -> pb = 406/4 = 101.5, close 102; 23:58 bar: 104 x2
    # after both: VWAP = (406 + 208) / 6 = 102 1/3; sigma^2 = (4 (5/6)^2 + 2 (5/3)^2) / 6 = 25/18
    # -> z of close 104 = (5/3) / (5 / (3 sqrt 2)) = sqrt 2
    day1 = [at(1, 23, 57, 10), at(1, 23, 57, 40), at(1, 23, 58, 30), at(1, 23, 59, 10), at(2, 0, 0, 10)]
    ev = table(("trades", trades(day1, [100, 102, 104, 103, 110], [1, 3, 2, 1, 1])),
               ("quotes", quotes([at(1, 23, 58, 0), at(2, 0, 0, 5), at(2, 0, 1, 0)])))
    out = run("vwap_session", ev)
    # events: t57:10 t57:40 q58:00 t58:30 t59:10 q00:05 t00:10 q01:00
    np.testing.assert_allclose(out[2], [101.5, (102 - 101.5) / 101.5 * 100, NAN], rtol=1e-12)  # one bar: no sigma
    np.testing.assert_allclose(out[4], [102 + 1 / 3, (5 / 3) / (102 + 1 / 3) * 100, math.sqrt(2)], rtol=1e-12)
    assert np.isnan(out[5:7]).all()  # after midnight the old session is over; no bar of the new day yet
    np.testing.assert_allclose(out[7], [110.0, 0.0, NAN])


def test_vwap_rolling_on_tape_typical_price() -> None:
    # typical prices 10 (v 1), 12 (v 3), 14 (v 0), 9 (v 0); n_bars = 2
    # bar 1: VWAP = (10 + 36) / 4 = 11.5, sigma^2 = (2.25 + 3 * .25) / 4 = 3/4, close 13 -> z = 1.5 / sqrt(.75)
    # bar 2: only bar 1 weighs -> VWAP 12, sigma 0 -> z NaN; bar 3: no volume -> NaN
    rows = [(10, 12, 9, 9, 1), (10, 13, 10, 13, 3), (13, 15, 13, 14, 0), (9, 9, 9, 9, 0)]
    out = bar_closes("vwap_rolling", table(("bars", tape_bars(rows))), n_bars=2)
    expected = [[NAN, NAN, NAN], [11.5, 1.5 / 11.5 * 100, 1.5 / math.sqrt(0.75)], [12.0, 2 / 12 * 100, NAN],
                [NAN, NAN, NAN]]
    np.testing.assert_allclose(out, expected, rtol=1e-12)


# --------------------------------------------------------------------------------------- price z-score


def test_price_zscore_window_and_rebase() -> None:
    # window 10 s: prices 100, 102, 104 -> mean 102, std sqrt(8/3); then 110 (> 0.5 % from the
    # reference: the sums are re-centred) -> mean 104, std sqrt(14), z = 6 / sqrt 14
    ev = table(("trades", trades([T0, T0 + S, T0 + 2 * S, T0 + 3 * S], [100, 102, 104, 110])),
               ("quotes", quotes([T0 + 12 * S, T0 + 13 * S + 500_000_000, T0 + 14 * S])))
    out = run("price_zscore", ev, window_ns=10 * S)
    assert np.isnan(out[0]).all()
    np.testing.assert_allclose(out[2], [2 / math.sqrt(8 / 3), 102, math.sqrt(8 / 3)], rtol=1e-12)
    np.testing.assert_allclose(out[3], [6 / math.sqrt(14), 104, math.sqrt(14)], rtol=1e-12)
    # at 12 s the window holds buckets 3..12: only the 110 trade -> NaN; at 14 s it is empty
    assert np.isnan(out[4:]).all()


def test_price_zscore_quiet_after_volatile_is_nan_not_residue() -> None:
    # 5 s of wild prices, then 20 s of one price: the std must come out as ~0 and the z-score NaN,
    # not a ratio of rounding residues
    rng = np.random.default_rng(3)
    wild = list(60_000 * np.exp(rng.normal(0, 0.01, 50)))
    ts = [T0 + k * 100_000_000 for k in range(250)]
    ev = table(("trades", trades(ts, wild + [60_123.4] * 200)))
    out = run("price_zscore", ev, window_ns=10 * S)
    assert np.isnan(out[-1, 0]) and out[-1, 1] == pytest.approx(60_123.4, rel=1e-14) and out[-1, 2] < 1e-6


# --------------------------------------------------------------------------------------- returns


def test_return_autocorr() -> None:
    alt = bar_closes("return_autocorr", closes_tape([100, 110, 100, 110, 100]), n_returns=4)[:, 0]
    assert np.isnan(alt[:4]).all() and alt[4] == pytest.approx(-1.0, abs=1e-12)
    closes = [100, 101, 103, 102, 104, 107, 106]
    r = [math.log(b / a) for a, b in zip(closes[:-1], closes[1:], strict=True)]
    out = bar_closes("return_autocorr", closes_tape(closes), n_returns=5)[:, 0]
    assert np.isnan(out[:5]).all()
    np.testing.assert_allclose(out[5:], [statistics.correlation(r[0:4], r[1:5]), statistics.correlation(r[1:5], r[2:6])],
                               rtol=1e-12)
    flat = bar_closes("return_autocorr", closes_tape([100] * 6), n_returns=4)[:, 0]
    assert np.isnan(flat).all()  # zero variance


def test_directional_persistence() -> None:
    # returns +, +, -, -, 0, + : pairs (+,+) same, (+,-), (-,-) same; pairs with the 0 are left out -> 2/3
    out = bar_closes("directional_persistence", closes_tape([10, 11, 12, 11, 10, 10, 11]), n_returns=6)[:, 0]
    assert np.isnan(out[:6]).all() and out[6] == pytest.approx(2 / 3, abs=1e-15)
    flat = bar_closes("directional_persistence", closes_tape([10, 10, 10, 10]), n_returns=3)[:, 0]
    assert np.isnan(flat[-1])


def test_hurst_two_lags_by_hand() -> None:
    r = [0.01, 0.02, -0.01, 0.03, 0.0, -0.02, 0.01, 0.02]  # n = 8: lags 1 and 2
    closes = list(100 * np.exp(np.concatenate([[0.0], np.cumsum(r)])))
    v1 = statistics.pvariance(r)
    v2 = statistics.pvariance([a + b for a, b in zip(r[:-1], r[1:], strict=True)])
    out = bar_closes("hurst_exponent", closes_tape(closes), n_returns=8)[:, 0]
    assert np.isnan(out[:8]).all()
    assert out[8] == pytest.approx(0.5 * math.log(v2 / v1) / math.log(2), abs=1e-9)
    alt = bar_closes("hurst_exponent", closes_tape([100, 110] * 5), n_returns=8)[:, 0]
    assert np.isnan(alt[-1])  # 2-bar returns are all 0: V_2 = 0


def test_hurst_separates_random_walk_trend_and_reversion() -> None:
    # same innovations e: random walk, AR(1) returns with phi = 0.6 (persistent), MA(1) e - 0.9 e_prev
    # (anti-persistent); the estimate is noisy, so compare paired series and average the random walks
    h: dict[str, list[float]] = {"random": [], "trending": [], "reverting": []}
    for seed in range(5):
        e = np.random.default_rng(seed).normal(0, 0.001, 513)
        ar = np.zeros(513)
        for k in range(1, 513):
            ar[k] = 0.6 * ar[k - 1] + e[k]
        for name, r in (("random", e), ("trending", ar), ("reverting", e - 0.9 * np.r_[0.0, e[:-1]])):
            closes = list(100 * np.exp(np.cumsum(r)))
            h[name].append(bar_closes("hurst_exponent", closes_tape(closes), n_returns=512)[-1, 0])
    assert abs(np.mean(h["random"]) - 0.5) < 0.05
    assert all(t > r + 0.05 for t, r in zip(h["trending"], h["random"], strict=True))
    assert max(h["reverting"]) < 0.2


def test_mean_reversion_strength_by_hand() -> None:
    # lookback 3, z 1, horizon 2. Displacements (worked out bar by bar):
    # bar 2: [10,10,13] m 11, sd 1.414, up -> close 9 at bar 4 <= 11: reverted, counted at bar 4
    # bar 4: [13,12,9] m 11.33, sd 1.70, down -> 10, 10.5 never >= 11.33: failed, counted at bar 6
    # bar 6: [9,10,10.5] m 9.83, sd .62, up -> 9.5 at bar 7: reverted, counted at bar 8
    # bar 7: [10,10.5,9.5] m 10, sd .41, down -> 10 at bar 8 (>= 10, equality counts): reverted, at bar 9
    closes = [10, 10, 13, 12, 9, 10, 10.5, 9.5, 10, 10]
    out = bar_closes("mean_reversion_strength", closes_tape(closes), lookback=3, z=1.0, horizon=2)
    np.testing.assert_allclose(out[:, 0], [NAN, NAN, NAN, NAN, 1, 1, 0.5, 0.5, 2 / 3, 0.75], rtol=1e-12)
    np.testing.assert_array_equal(out[:, 1], [0, 0, 0, 0, 1, 1, 2, 2, 3, 4])
    # n_bars = 2: only outcomes counted at the last 2 bars
    short = bar_closes("mean_reversion_strength", closes_tape(closes), lookback=3, z=1.0, horizon=2, n_bars=2)
    np.testing.assert_allclose(short[:, 0], [NAN, NAN, NAN, NAN, 1, 1, 0, 0, 1, 1])


# --------------------------------------------------------------------------------------- patterns


def test_hh_hl_structure() -> None:
    rows = [(9, 10, 8, 9, 1), (10, 11, 9, 10, 1), (11, 12, 10, 11, 1), (11, 11, 9, 10, 1), (10, 10, 8, 9, 1),
            (9, 10, 8, 9, 1)]
    out = bar_closes("hh_hl_structure", table(("bars", tape_bars(rows))))[:, 0]
    # (10,8) (11,9) (12,10) -> +1; (11,9) after (12,10) -> 0; (12,10) (11,9) (10,8) -> -1; equal high -> 0
    np.testing.assert_array_equal(out, [NAN, NAN, 1, 0, -1, 0])


def test_pin_bar_golden_examples() -> None:
    rows = [
        (50_240, 50_260, 50_200, 50_255, 1),  # body 15, lower wick 40 > 30, close at 55/60 of the range: +1
        (50_220, 50_260, 50_200, 50_205, 1),  # mirror: upper wick 40 > 30, close 55/60 from the top: -1
        (50_258, 50_260, 50_200, 50_250, 1),  # red hammer: body 8, lower wick 50, close at 50/60: +1 (no colour rule)
        (50_230, 50_260, 50_210, 50_240, 1),  # lower wick 20 = 2 x body, not more: 0
        (50_230, 50_230, 50_230, 50_230, 1),  # no range: 0
    ]
    out = bar_closes("pin_bar", table(("bars", tape_bars(rows))))[:, 0]
    np.testing.assert_array_equal(out, [1, -1, 1, 0, 0])


def test_bid_ask_bounce() -> None:
    # sides + - + + - at 0..4 s: pairs 4, alternating 3 -> 0.75; at 11.5 s (window of buckets 2..11)
    # the pairs ending at 2, 3, 4 s remain: 2 of 3 alternate; at 20 s none
    ev = table(("trades", trades([T0 + k * S for k in range(5)], [100] * 5, side=[1, -1, 1, 1, -1])),
               ("quotes", quotes([T0 + 11_500_000_000, T0 + 20 * S])))
    out = run("bid_ask_bounce", ev, window_ns=10 * S)[:, 0]
    np.testing.assert_allclose(out, [NAN, 1.0, 1.0, 2 / 3, 0.75, 2 / 3, NAN])


def test_volume_filter() -> None:
    # n_bars 3, multiple 1.2: volumes 1 1 1 -> mean 1, not passed; 2 -> mean 4/3, 2 >= 1.6 passed,
    # ratio 1.5; 0 -> mean 1, ratio 0
    rows = [(10, 10, 10, 10, v) for v in (1, 1, 1, 2, 0)]
    out = bar_closes("volume_filter", table(("bars", tape_bars(rows))), n_bars=3)
    np.testing.assert_allclose(out, [[NAN, NAN], [NAN, NAN], [0, 1], [1, 1.5], [0, 0]])


# --------------------------------------------------------------------------------------- sessions


@pytest.mark.parametrize(("when", "session", "liquid"), [
    (at(1, 7, 59, 59), 0, 0), (at(1, 8), 1, 0), (at(1, 11, 59, 59), 1, 0), (at(1, 12), 1, 1), (at(1, 13), 2, 1),
    (at(1, 19, 59, 59), 2, 1), (at(1, 20), 2, 0), (at(1, 21), 0, 0), (at(5, 23, 59, 59), 0, 0),
    (at(6, 0), 3, 0), (at(6, 14), 3, 1), (at(7, 23, 59, 59), 3, 0), (at(8, 0), 0, 0)])
def test_sessions_and_liquid_hours(when: int, session: int, liquid: int) -> None:
    # 2024-01-01 is a Monday, 01-06 a Saturday, 01-07 a Sunday
    ev = table(("quotes", quotes([when])))
    assert run("trading_session", ev)[0, 0] == session
    assert run("high_liquidity_hours", ev)[0, 0] == liquid


# --------------------------------------------------------------------------------------- params


def test_parameter_checks() -> None:
    with pytest.raises(ConfigError, match="bar_ns"):
        get_spec("atr").make_params(bar_ns=7 * M)
    with pytest.raises(ConfigError, match="n_returns"):
        get_spec("hurst_exponent").make_params(n_returns=7)
    with pytest.raises(ConfigError, match="us_start_hour"):
        get_spec("trading_session").make_params(europe_start_hour=14)
    with pytest.raises(ConfigError, match="start_hour"):
        get_spec("high_liquidity_hours").make_params(start_hour=20, end_hour=12)
    with pytest.raises(ConfigError, match="source"):
        get_spec("rsi").make_params(source=2)


# --------------------------------------------------------------------------------------- contract, warmed up

SHORT = {
    "vwap_session": {}, "vwap_rolling": {"n_bars": 5}, "atr": {"n": 3}, "adx": {"n": 3}, "rsi": {"n": 3},
    "ema": {"n": 3}, "return_autocorr": {"n_returns": 4}, "directional_persistence": {"n_returns": 4},
    "hurst_exponent": {"n_returns": 8}, "mean_reversion_strength": {"lookback": 5, "z": 1.0, "horizon": 2},
    "hh_hl_structure": {}, "pin_bar": {}, "volume_filter": {"n_bars": 3},
}


@pytest.mark.parametrize("source", [0, 1])
@pytest.mark.parametrize("name", sorted(SHORT))
def test_contract_with_short_periods(name: str, source: int) -> None:
    """The four contract checks with 1-minute bars and short periods, so values are warmed up."""
    spec = get_spec(name)
    params = spec.make_params(bar_ns=M, source=source, **SHORT[name])
    defined = 0
    for seed in range(3):
        ev = make_event_table(seed, n_instruments=2, n_events=1500, kinds=("trades", "quotes", "bars"),
                              span_ns=6 * 3600 * S)
        check_contract(spec, ev, params, cuts=(0.37, 0.81))
        defined += int(np.isfinite(Metric(spec, params).run(ev)).all(axis=1).sum())
    assert defined > 50, f"{name}: only {defined} warmed-up events; the contract run compares NaN"


@pytest.mark.parametrize(("name", "params"), [("price_zscore", {"window_ns": 5 * M}),
                                              ("bid_ask_bounce", {"window_ns": 5 * M})])
def test_contract_trade_windows(name: str, params: dict) -> None:
    spec = get_spec(name)
    p = spec.make_params(**params)
    for seed in range(3):
        ev = make_event_table(seed, n_instruments=2, n_events=1500, kinds=("trades", "quotes"), span_ns=3600 * S)
        check_contract(spec, ev, p, cuts=(0.5,))
