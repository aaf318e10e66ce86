"""The execution model of emerald/execution/kernels.py (its module docstring), pinned on tiny hand-built
event tables with the scripted strategy of tests/backtest/_strategies.py. Every expected number is worked out
by hand in the test (prices, fees in bps, Decimal where rounding matters), never taken from the engine."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from emerald.execution import kernels as K
from emerald.testing.backtest import assert_run_invariants
from tests.backtest._strategies import T0, S, intent, marks, quotes, run_script, table, trades

LIN = "binance-usdm:BTCUSDT"   # linear perp, 8 h funding
LIN2 = "binance-usdm:ETHUSDT"
INV = "binance-coinm:BTCUSD_PERP"  # inverse, contract size 100 USD
SPOT = "binance-spot:BTCUSDT"
FX = "demo-fx:EURUSD"
MS = 1_000_000


def t(sec: float) -> int:
    return T0 + int(round(sec * 1e9))


def reasons(state) -> list[str]:
    return [K.REASONS[r["reason"]] for r in table(state, 4)]


def run(tables, script, **ex):
    state, events = run_script(tables, script, **ex)
    assert_run_invariants(state, events)
    return state


# ------------------------------------------------------------------------------ latency and reference prices


def test_fill_at_first_event_strictly_after_decision_and_latency():
    # decision at 10 s with 100 ms latency: the trades 50 ms later and at exactly decision + latency - 1 ns are
    # not eligible; the one at decision + latency is (>= eligible time), at its own price
    ts = [t(10), t(10.05), t(10.1) - 1, t(10.1), t(10.2)]
    st = run([trades(LIN, ts, [100.0, 101.0, 101.5, 102.0, 103.0])], {t(10): intent("long", size=2.0)})
    (fill,) = table(st, 0)
    assert (fill["ts"], fill["price"], fill["qty"]) == (t(10.1), 102.0, 2.0)
    (order,) = table(st, 1)
    assert (order["ts_decision"], order["ts_eligible"], order["ts_done"]) == (t(10), t(10.1), t(10.1))


def test_zero_latency_never_fills_at_the_decision_timestamp():
    # two trades share the decision's nanosecond: the second one comes after the decision in stream order but at
    # the same instant, so it is not "strictly after"; the fill is the next timestamp
    tbl = trades(LIN, [t(10), t(10), t(11)], [100.0, 100.5, 101.0])
    st = run([tbl], {t(10): intent("long", row=0)}, latency_ms=0)
    assert [(f["ts"], f["price"]) for f in table(st, 0)] == [(t(11), 101.0)]
    # one nanosecond later is strictly after
    tbl = trades(LIN, [t(10), t(10) + 1, t(11)], [100.0, 100.5, 101.0])
    st = run([tbl], {t(10): intent("long")}, latency_ms=0)
    assert [(f["ts"], f["price"]) for f in table(st, 0)] == [(t(10) + 1, 100.5)]


def test_market_orders_take_the_touch_plus_slippage():
    # quotes: buy at the ask, sell at the bid; 10 bps slippage against the touch; taker fee 5 bps
    q = quotes(LIN, [t(11), t(21)], [99.0, 104.0], [101.0, 106.0])
    tr = trades(LIN, [t(10), t(20)], [100.0, 105.0])
    st = run([q, tr], {t(10): intent("long", size=3.0), t(20): intent("close")}, slippage_bps=10.0)
    buy, sell = table(st, 0)
    buy_px = D(101) * (1 + D("0.001"))
    sell_px = D(104) * (1 - D("0.001"))
    assert buy["price"] == pytest.approx(float(buy_px), rel=1e-12)
    assert sell["price"] == pytest.approx(float(sell_px), rel=1e-12)
    assert buy["slippage"] == pytest.approx(float(3 * (buy_px - 101)), rel=1e-9)
    assert sell["fee"] == pytest.approx(float(3 * sell_px * D("0.0005")), rel=1e-12)
    (trade,) = table(st, 2)
    assert trade["pnl_price"] == pytest.approx(float(3 * (sell_px - buy_px)), rel=1e-9)
    assert trade["slippage"] == pytest.approx(float(3 * (buy_px - 101) + 3 * (104 - sell_px)), rel=1e-9)


def test_market_order_at_a_trade_fills_at_the_trade_price():
    tr = trades(LIN, [t(10), t(11), t(20), t(21)], [100.0, 100.7, 105.0, 104.2])
    st = run([tr], {t(10): intent("short", size=1.0), t(20): intent("close")}, slippage_bps=2.0)
    sell, buy = table(st, 0)
    assert sell["price"] == pytest.approx(100.7 * (1 - 2e-4), rel=1e-12) and sell["side"] == -1
    assert buy["price"] == pytest.approx(104.2 * (1 + 2e-4), rel=1e-12) and buy["side"] == 1


# ------------------------------------------------------------------------------ limit orders, fees


def test_limit_fills_only_through_the_limit_at_the_limit_with_maker_fee():
    # buy limit 99: an ask of 98 (a quote) and a trade at exactly 99 do not fill; a trade at 98.9 does, at 99
    q = quotes(LIN, [t(11)], [97.0], [98.0])
    tr = trades(LIN, [t(10), t(12), t(13), t(14), t(30), t(31)], [100.0, 99.5, 99.0, 98.9, 99.4, 99.6])
    st = run([q, tr], {t(10): intent("long", size=2.0, otype=K.LIMIT, limit=99.0), t(30): intent("close")})
    buy, sell = table(st, 0)
    assert (buy["ts"], buy["price"], buy["maker"]) == (t(14), 99.0, True)
    assert buy["fee"] == pytest.approx(float(D(2) * 99 * D("0.0002")), rel=1e-12)  # maker 2 bps
    assert sell["maker"] is False and sell["fee"] == pytest.approx(float(D(2) * D("99.6") * D("0.0005")), rel=1e-12)


def test_sell_limit_needs_a_trade_strictly_above():
    tr = trades(LIN, [t(10), t(11), t(12), t(13)], [100.0, 101.0, 101.0, 101.01])
    st = run([tr], {t(10): intent("short", size=1.0, otype=K.LIMIT, limit=101.0)})
    (fill,) = table(st, 0)
    assert (fill["ts"], fill["price"], fill["side"], fill["maker"]) == (t(13), 101.0, -1, True)


def test_round_trip_fees_taker_both_sides():
    tr = trades(LIN, [t(10), t(11), t(20), t(21)], [100.0, 200.0, 300.0, 250.0])
    st = run([tr], {t(10): intent("long", size=4.0), t(20): intent("close")})
    (trade,) = table(st, 2)
    fees = D(4) * 200 * D("0.0005") + D(4) * 250 * D("0.0005")
    assert trade["fees"] == pytest.approx(float(fees), rel=1e-12)
    assert trade["pnl"] == pytest.approx(float(D(4) * 50 - fees), rel=1e-12)
    assert st.acct[0]["equity"] == pytest.approx(float(D(100_000) + D(4) * 50 - fees), rel=1e-13)


# ------------------------------------------------------------------------------ expiry and decay


def test_close_while_flat_cancels_the_working_entry():
    # long decided at 10 s, "close" (go flat) at 10.05 s before the entry became eligible: the entry is cancelled
    ts = [t(10), t(10.05), t(10.1), t(10.2)]
    st = run([trades(LIN, ts, [100.0, 100.0, 100.0, 100.0])], {ts[0]: intent("long"), ts[1]: intent("close")})
    assert table(st, 0) == []
    (order,) = table(st, 1)
    assert (order["status"], order["ts_done"]) == (K.ST_CANCELLED, ts[1])


def test_entry_decays_with_the_signal_age():
    # expiry 10 s, decay on: the first eligible event is 5 s after the signal -> half the size
    tr = trades(LIN, [t(10), t(15)], [100.0, 100.0])
    st = run([tr], {t(10): intent("long", size=2.0)}, expiry_s=10.0, decay=True)
    (fill,) = table(st, 0)
    assert fill["qty"] == 1.0
    (order,) = table(st, 1)
    assert order["qty"] == 1.0 and order["status"] == K.ST_FILLED


def test_entry_expires_and_exit_orders_do_not():
    tr = trades(LIN, [t(10), t(21)], [100.0, 100.0])
    st = run([tr], {t(10): intent("long", size=2.0)}, expiry_s=10.0)
    assert table(st, 0) == []
    (order,) = table(st, 1)
    assert (order["status"], order["ts_done"]) == (K.ST_EXPIRED, t(21))
    (ref,) = table(st, 4)
    assert K.REASONS[ref["reason"]] == "expired" and ref["value"] == pytest.approx(11.0)
    # an exit decided at 20 s fills 100 s later although entries expire after 10 s
    tr = trades(LIN, [t(10), t(11), t(20), t(120)], [100.0, 100.0, 100.0, 99.0])
    st = run([tr], {t(10): intent("long"), t(20): intent("close")}, expiry_s=10.0)
    assert [(f["ts"], f["side"]) for f in table(st, 0)] == [(t(11), 1), (t(120), -1)]


# ------------------------------------------------------------------------------ stops


def exit_of(state) -> tuple[int, str, float]:
    """(decision ts, reason, fill price) of the single exit order."""
    exits = [o for o in table(state, 1) if o["reason"] != K.R_SIGNAL]
    assert len(exits) == 1, exits
    fill = [f for f in table(state, 0) if f["order_id"] == exits[0]["order_id"]][0]
    return exits[0]["ts_decision"], K.REASONS[exits[0]["reason"]], fill["price"]


def test_trailing_stop_only_tightens_and_exits_at_the_first_breach():
    # trail 1 %: the anchor is the best price since entry; 103 -> level 101.97; the falling prices after it do
    # not lower the level (a level that followed them down would not be hit by 101.96)
    px = [100.0, 100.0, 101.0, 103.0, 102.5, 102.2, 102.0, 101.96, 101.5]
    ts = [t(10 + k) for k in range(len(px))]
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long")}, trail_pct=1.0)
    assert exit_of(st) == (ts[7], "trailing_stop", 101.5)


def test_trailing_level_uses_the_best_before_the_event():
    # a jump to 110 moves the anchor after the check: the same event cannot stop out on its own high
    px = [100.0, 100.0, 110.0, 109.0, 108.8, 108.0]
    ts = [t(10 + k) for k in range(len(px))]
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long")}, trail_pct=1.0)  # level 108.9 after 110
    assert exit_of(st) == (ts[4], "trailing_stop", 108.0)


def test_short_trailing_stop_mirrors():
    px = [100.0, 100.0, 97.0, 97.5, 97.98, 98.0]
    ts = [t(10 + k) for k in range(len(px))]
    st = run([trades(LIN, ts, px)], {ts[0]: intent("short")}, trail_pct=1.0)  # level 97.97 after 97
    assert exit_of(st) == (ts[4], "trailing_stop", 98.0)


def test_initial_stop_from_the_intent_and_from_stop_pct():
    px = [100.0, 100.0, 99.0, 98.4, 98.0, 97.0]
    ts = [t(10 + k) for k in range(len(px))]
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long", stop=98.0)})
    assert exit_of(st) == (ts[4], "stop", 97.0)
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long")}, stop_pct=1.5)  # 100 x (1 - 1.5 %) = 98.5
    assert exit_of(st) == (ts[3], "stop", 98.0)


@pytest.mark.parametrize(("conviction", "mult"), [(2, 2.5), (1, 2.0), (0, 1.5), (-1, 2.0)])
def test_atr_stop_by_conviction(conviction, mult):
    # stop = decision price -/+ multiple x ATR (high 2.5, medium 2.0, low 1.5; none: medium)
    px = [200.0, 201.0]
    ts = [t(10), t(11)]
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long", atr=4.0, conviction=conviction)})
    assert st.pos[0]["stop"] == 200.0 - mult * 4.0
    st = run([trades(LIN, ts, px)], {ts[0]: intent("short", atr=4.0, conviction=conviction)})
    assert st.pos[0]["stop"] == 200.0 + mult * 4.0
    assert st.pos[0]["risk"] == pytest.approx(abs(201.0 - (200.0 + mult * 4.0)))  # qty 1 x |entry - stop|


# ------------------------------------------------------------------------------ adverse moves


@pytest.mark.parametrize(("path", "exit_at"), [
    # profit < 0.3 %: 5 consecutive adverse ticks
    ([99.9, 99.8, 99.7, 99.6, 99.5, 99.4], 4),
    # 0.3 % <= profit < 1 %: 3
    ([100.9, 100.8, 100.7, 100.6, 100.5], 3),
    # 1 % <= profit < 2 %: 2
    ([101.9, 101.8, 101.7, 101.6], 2),
    # profit >= 2 %: 1
    ([103.0, 102.9, 102.8], 1),
    # an up tick resets the count: 4 down, 1 up, 4 down -> no exit
    ([99.9, 99.8, 99.7, 99.6, 99.65, 99.6, 99.5, 99.4, 99.3], None),
])
def test_adverse_move_thresholds_by_profit(path, exit_at):
    px = [100.0, 100.0, *path]
    ts = [t(10 + k) for k in range(len(px))]
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long")}, adverse_exits=True, adverse_window_s=15.0)
    if exit_at is None:
        assert [o for o in table(st, 1) if o["reason"] != K.R_SIGNAL] == []
    else:
        dec, reason, _ = exit_of(st)
        assert (dec, reason) == (ts[2 + exit_at], "adverse_moves")


def test_adverse_ticks_outside_the_window_do_not_count():
    # 5 s apart with a 15 s window: at most 4 ticks are in the window, the 5-tick threshold is never met
    px = [100.0, 100.0, 99.9, 99.8, 99.7, 99.6, 99.5, 99.4, 99.3]
    ts = [t(10), t(11), *[t(11 + 5 * k) for k in range(1, 8)]]
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long")}, adverse_exits=True, adverse_window_s=15.0)
    assert [o for o in table(st, 1) if o["reason"] != K.R_SIGNAL] == []
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long")}, adverse_exits=True, adverse_window_s=20.0)
    assert exit_of(st)[:2] == (ts[6], "adverse_moves")


# ------------------------------------------------------------------------------ exit priority


@pytest.mark.parametrize(("cascade", "adverse", "expected"), [
    (True, True, "cascade_reversal"), (False, True, "adverse_moves"), (False, False, "trailing_stop")])
def test_exit_priority_cascade_then_adverse_then_trailing(cascade, adverse, expected):
    # at 102.4 after a high of 103 (profit 2.4 %): one adverse tick (threshold 1), the 0.5 % trailing level
    # 102.485 is breached, and (first case) the cascade column flags a reversal against longs
    px = [100.0, 100.0, 103.0, 102.4, 102.0]
    ts = [t(10 + k) for k in range(len(px))]
    script = {ts[0]: intent("long", stop=97.0)}
    if cascade:
        script[ts[3]] = intent("none", cascade=1.0)
    st = run([trades(LIN, ts, px)], script, trail_pct=0.5, adverse_exits=adverse, cascade_long_col="cascade")
    assert exit_of(st) == (ts[3], expected, 102.0)


def test_trailing_before_initial_stop_before_max_hold():
    px = [100.0, 100.0, 97.0, 96.0]
    ts = [t(10), t(11), t(80), t(81)]
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long", stop=98.0)}, trail_pct=0.5, max_hold_s=60.0)
    assert exit_of(st) == (ts[2], "trailing_stop", 96.0)
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long", stop=98.0)}, max_hold_s=60.0)
    assert exit_of(st) == (ts[2], "stop", 96.0)


def test_max_hold_counts_from_the_entry_fill():
    px = [100.0, 100.0, 100.0, 100.0, 100.0]
    ts = [t(10), t(11), t(70), t(71), t(72)]  # entry fill at 11 s; 60 s later is 71 s
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long")}, max_hold_s=60.0)
    assert exit_of(st) == (ts[3], "max_hold", 100.0)


FRI = 1_709_856_000 * S  # 2024-03-08T00:00:00Z, a Friday


def test_forex_session_close_friday_2330_and_no_entries_until_sunday_2200():
    def f(h, m, s=0, day=0):
        return FRI + day * 86_400 * S + ((h * 60 + m) * 60 + s) * S

    ts = [f(23, 0), f(23, 0, 1), f(23, 29, 59), f(23, 30), f(23, 30, 1), f(12, 0, day=1), f(21, 59, 59, day=2),
          f(22, 0, day=2), f(22, 0, 1, day=2)]
    bid = [1.0800] * len(ts)
    ask = [1.0802] * len(ts)
    script = {ts[0]: intent("long", kind="quotes", size=10_000.0), ts[5]: intent("long", kind="quotes", size=1e4),
              ts[6]: intent("short", kind="quotes", size=1e4), ts[7]: intent("long", kind="quotes", size=1e4)}
    st = run([quotes(FX, ts, bid, ask)], script)
    exits = [o for o in table(st, 1) if o["reason"] != K.R_SIGNAL]
    assert [(o["ts_decision"], K.REASONS[o["reason"]]) for o in exits] == [(ts[3], "session_close")]
    assert [(r["ts"], K.REASONS[r["reason"]], r["action"]) for r in table(st, 4)] == [
        (ts[5], "market_closed", 1), (ts[6], "market_closed", -1)]
    fills = table(st, 0)
    assert [(x["ts"], x["side"]) for x in fills] == [(ts[1], 1), (ts[4], -1), (ts[8], 1)]


# ------------------------------------------------------------------------------ sizing and refusals


@pytest.mark.parametrize(("conviction", "conf"), [(2, "1.0"), (1, "0.7"), (0, "0.4"), (-1, "1")])
def test_risk_sizing_with_confidence_and_fees(conviction, conf):
    # risk 1 % of 100 000 lost at the stop 98 (2 %) with 2 x 5 bps fees: qty = 1000 x conf / (2 + 0.1)
    ts = [t(10), t(11)]
    st = run([trades(LIN, ts, [100.0, 100.0])], {ts[0]: intent("long", stop=98.0, conviction=conviction)},
             sizing="risk", risk_pct=1.0)
    (order,) = table(st, 1)
    assert order["qty"] == pytest.approx(float(D(1000) * D(conf) / D("2.1")), rel=1e-12)


@pytest.mark.parametrize(("ex", "stop", "reason", "value"), [
    ({"sizing": "fraction", "fraction": 0.00005}, None, "notional_below_min", 5.0),
    ({"sizing": "fraction", "fraction": 0.6}, None, "notional_above_max", 60_000.0),
    ({"sizing": "risk"}, 99.7, "stop_too_close", 0.3),
    ({"sizing": "risk"}, 94.0, "stop_too_far", 6.0),
])
def test_sizing_refusals_with_reasons(ex, stop, reason, value):
    ts = [t(10), t(11)]
    kw = {} if stop is None else {"stop": stop}
    st = run([trades(LIN, ts, [100.0, 100.0])], {ts[0]: intent("long", **kw)}, **ex)
    assert table(st, 0) == [] and table(st, 1) == []
    (ref,) = table(st, 4)
    assert (ref["ts"], K.REASONS[ref["reason"]], ref["action"], ref["count"]) == (ts[0], reason, 1, 1)
    assert ref["value"] == pytest.approx(value, rel=1e-9)


def test_repeated_refusals_are_counted_in_one_row():
    ts = [t(10 + k) for k in range(4)]
    st = run([trades(SPOT, ts, [100.0] * 4)], {x: intent("short") for x in ts[:3]})
    (ref,) = table(st, 4)
    assert (K.REASONS[ref["reason"]], ref["count"], ref["ts"], ref["last_ts"]) == ("spot_short", 3, ts[0], ts[2])


def two_instruments(px0, px1, ts):
    return [trades(LIN, ts, px0), trades(LIN2, [x + MS for x in ts], px1)]


def test_max_positions():
    ts = [t(10), t(11), t(12), t(13)]
    tables = two_instruments([100.0] * 4, [50.0] * 4, ts)
    st = run(tables, {ts[0]: intent("long", inst=LIN), ts[2] + MS: intent("long", inst=LIN2)}, max_positions=1)
    assert [f["inst"] for f in table(st, 0)] == [0]
    (ref,) = table(st, 4)
    assert (K.REASONS[ref["reason"]], ref["inst"], ref["value"]) == ("max_positions", 1, 1.0)


def test_gross_exposure_limit():
    ts = [t(10), t(11), t(12), t(13)]
    tables = two_instruments([100.0] * 4, [50.0] * 4, ts)
    script = {ts[0]: intent("long", inst=LIN, size=300.0), ts[2] + MS: intent("long", inst=LIN2, size=600.0)}
    st = run(tables, script, max_gross=0.5)  # 30 000 + 30 000 > 0.5 x equity
    assert [f["inst"] for f in table(st, 0)] == [0]
    (ref,) = table(st, 4)
    equity = 100_000 - 300 * 100 * 5e-4
    assert K.REASONS[ref["reason"]] == "gross_exposure"
    assert ref["value"] == pytest.approx(60_000 / equity, rel=1e-12)


def test_leverage_cap():
    ts = [t(10), t(11)]
    st = run([trades(LIN, ts, [100.0, 100.0])], {ts[0]: intent("long", size=2500.0)}, leverage=2.0,
             max_notional_pct=1000.0)
    (ref,) = table(st, 4)
    assert (K.REASONS[ref["reason"]], ref["value"]) == ("leverage_cap", 2.5)
    st = run([trades(LIN, ts, [100.0, 100.0])], {ts[0]: intent("long", size=2000.0)}, leverage=2.0,
             max_notional_pct=1000.0)
    assert [f["qty"] for f in table(st, 0)] == [2000.0]


def test_isolated_margin_liquidation():
    # 1000 x 100 at 10x: margin 10 000; liquidated when 10 000 + 1000 (p - 100) <= 0.5 % x 1000 p, i.e. p <= 90.452
    px = [100.0, 100.0, 91.0, 90.5, 90.4, 80.0]
    ts = [t(10 + k) for k in range(len(px))]
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long", size=1000.0)}, leverage=10.0, maint_margin_pct=0.5,
             max_notional_pct=200.0)
    entry, liq = table(st, 0)
    assert (liq["ts"], liq["price"], liq["qty"], K.REASONS[liq["reason"]]) == (ts[4], 90.4, 1000.0, "liquidation")
    assert liq["fee"] == pytest.approx(1000 * 90.4 * 5e-4)
    (trade,) = table(st, 2)
    assert trade["pnl_price"] == pytest.approx(-9600.0) and K.REASONS[trade["exit_reason"]] == "liquidation"
    assert st.acct[0]["equity"] == pytest.approx(100_000 - 9600 - 50 - 45.2)


# ------------------------------------------------------------------------------ daily breaker


def test_breaker_levels_act_once_each_against_the_day_start():
    # two 200-unit longs at 100 (fees 2 x 10); the day started at 100 000
    ts0 = [t(10), t(11), t(20), t(30), t(31), t(60), t(61), t(62), t(70), t(71), t(80)]
    px0 = [100.0, 100.0, 90.0, 85.0, 85.0, 85.0, 85.0, 78.0, 78.0, 78.0, 78.0]
    ts1 = [t(12), t(13), t(40), t(41), t(90)]
    px1 = [100.0, 100.0, 95.0, 95.0, 95.0]
    tables = [trades(LIN, ts0, px0), trades(LIN2, ts1, px1)]
    script = {ts0[0]: intent("long", inst=LIN, size=200.0), ts1[0]: intent("long", inst=LIN2, size=200.0),
              ts0[5]: intent("long", inst=LIN, size=300.0), ts0[8]: intent("long", inst=LIN, size=10.0),
              ts0[9]: intent("long", inst=LIN, size=10.0)}
    st = run(tables, script, breaker=True)
    rows = [(r["ts"], K.REASONS[r["reason"]], r["count"]) for r in table(st, 4)]
    # 90: loss 2000 + 20 fees = 2.02 % -> alert only
    # 85: loss 3020 = 3.02 % -> close the worse half (1 of 2: LIN, upnl -3000 against 0)
    # LIN2 95 after LIN closed at 85 (fee 8.5): 3028.5 + 1000 = 4.0285 % -> close all
    # re-entry of 300 at 85 (fee 12.75), 78: 4038 + 12.75 + 2100 = 6.15 % -> halt; later entries refused
    assert rows == [(ts0[2], "breaker_alert", 1), (ts0[3], "breaker_worst_half", 1), (ts1[2], "breaker_close_all", 1),
                    (ts0[7], "breaker_halt", 1), (ts0[8], "breaker_halt", 2)]
    assert table(st, 4)[-1]["last_ts"] == ts0[9]
    exits = [(o["ts_decision"], o["inst"], K.REASONS[o["reason"]]) for o in table(st, 1) if o["reason"] != K.R_SIGNAL]
    assert exits == [(ts0[3], 0, "breaker_worst_half"), (ts1[2], 1, "breaker_close_all"),
                     (ts0[7], 0, "breaker_close_all")]
    alert, half, close_all, halt = (r["value"] for r in table(st, 4)[:4])
    # losses: fees 20, LIN 3000, its exit fee 8.5, LIN2 1000 (then its exit fee 9.5), re-entry fee 12.75, LIN 2100
    assert alert == pytest.approx(2.02) and half == pytest.approx(3.02) and close_all == pytest.approx(4.0285)
    assert halt == pytest.approx(100 * (4038.0 + 12.75 + 2100) / 100_000)
    assert [f["price"] for f in table(st, 0)] == [100.0, 100.0, 85.0, 95.0, 85.0, 78.0]


def test_breaker_rebases_at_midnight_utc_and_counts_funding():
    # a 20 000 long pays 11 % funding (2 200 = 2.2 %) at 08:00: the next price event raises the alert; the next
    # day's drawdown is measured from that day's first equity, so the same position raises nothing more
    h = 3600
    ts = [t(10), t(11), t(8 * h - 1), t(8 * h + 1), t(86_400 + 10), t(86_400 + 11)]
    tables = [trades(LIN, ts, [100.0] * 6), ("funding", "binance-usdm", "BTCUSDT", {
        "ts_event": np.array([t(8 * h)]), "rate": np.array([0.11]), "interval_ns": np.array([8 * h * S]),
        "next_funding_ts": np.array([t(16 * h)]), "is_settlement": np.array([True])})]
    st = run(tables, {ts[0]: intent("long", size=200.0)}, breaker=True)
    rows = [(r["ts"], K.REASONS[r["reason"]]) for r in table(st, 4)]
    assert rows == [(ts[3], "breaker_alert")]
    assert table(st, 4)[0]["value"] == pytest.approx(100 * (10 + 2200) / 100_000)
    assert st.acct[0]["day_start"] == pytest.approx(100_000 - 10 - 2200)


# ------------------------------------------------------------------------------ instrument kinds


def test_linear_inverse_and_spot_pnl():
    ts = [t(10), t(11), t(20), t(21)]
    st = run([trades(LIN, ts, [100.0, 100.0, 110.0, 110.0])], {ts[0]: intent("long", size=2.0),
                                                             ts[2]: intent("close")})
    assert table(st, 2)[0]["pnl_price"] == pytest.approx(20.0)
    # inverse: 10 contracts of 100 USD from 20 000 to 25 000: 1000 x (1/20000 - 1/25000) BTC at 25 000 = 250 USD;
    # fees are on the contracts' USD value (10 x 100 x 5 bps each side)
    st = run([trades(INV, ts, [20_000.0, 20_000.0, 25_000.0, 25_000.0])],
             {ts[0]: intent("long", size=10.0), ts[2]: intent("close")})
    (trade,) = table(st, 2)
    assert trade["pnl_price"] == pytest.approx(250.0, rel=1e-12)
    assert trade["fees"] == pytest.approx(1.0, rel=1e-12)
    assert trade["notional"] == 1000.0  # 10 contracts x 100 USD (the base of return_pct), not 10 x price
    # inverse short: 10 contracts from 20 000 to 16 000: 1000 x (1/16000 - 1/20000) x 16000 = 200 USD
    st = run([trades(INV, ts, [20_000.0, 20_000.0, 16_000.0, 16_000.0])],
             {ts[0]: intent("short", size=10.0), ts[2]: intent("close")})
    assert table(st, 2)[0]["pnl_price"] == pytest.approx(200.0, rel=1e-12)
    # spot: long only (a short is refused), PnL as holding the coin
    st = run([trades(SPOT, ts, [100.0, 100.0, 105.0, 105.0])], {ts[0]: intent("long", size=1.0),
                                                              ts[2]: intent("close")})
    assert table(st, 2)[0]["pnl_price"] == pytest.approx(5.0)


def test_inverse_average_entry_is_harmonic():
    # two buys of 10 contracts at 20 000 and 25 000 (the kernel directly: a strategy cannot add to a position):
    # the average is 20 / (10/20000 + 10/25000); marked at 25 000 the PnL is that of the first lot, 250 USD
    from emerald.backtest.config import check_execution, exec_params
    from emerald.backtest.engine import instrument_table, new_state

    ex = check_execution({"taker_bps": 0.0, "maker_bps": 0.0})
    st = new_state(instrument_table([("binance-coinm", "BTCUSD_PERP")], ex), exec_params(ex, []), 64)
    for k, px in enumerate((20_000.0, 25_000.0)):
        K.apply_fill_nb(st.insts, st.pos, st.acct, st.out, 0, t(k), 1, 10.0, px, 0.0, False, 0.0, 0, k, np.nan,
                        np.nan, 0)
    assert st.pos[0]["avg"] == pytest.approx(float(D(20) / (D(10) / 20000 + D(10) / 25000)), rel=1e-14)
    assert st.pos[0]["upnl"] == pytest.approx(250.0, rel=1e-12)
    assert st.acct[0]["equity"] == pytest.approx(100_000 + 250.0, rel=1e-14)


def test_reversal_through_zero_makes_two_trades():
    ts = [t(10), t(11), t(20), t(21), t(30), t(31)]
    px = [100.0, 100.0, 110.0, 110.0, 105.0, 105.0]
    st = run([trades(LIN, ts, px)], {ts[0]: intent("long"), ts[2]: intent("short"), ts[4]: intent("close")})
    fills = table(st, 0)
    assert [(f["side"], f["qty"], f["price"]) for f in fills] == [(1, 1.0, 100.0), (-1, 2.0, 110.0), (1, 1.0, 105.0)]
    long_, short = table(st, 2)
    fee_rev = 2 * 110 * 5e-4
    assert (long_["direction"], long_["pnl_price"], short["direction"], short["pnl_price"]) == (1, 10.0, -1, 5.0)
    assert long_["fees"] == pytest.approx(100 * 5e-4 + fee_rev / 2)
    assert short["fees"] == pytest.approx(fee_rev / 2 + 105 * 5e-4)
    assert (long_["exit_ts"], short["entry_ts"]) == (t(21), t(21))


def test_multi_leg_spot_long_perp_short_shared_cash():
    # spot and perp each with their own spec fees (spot 10 bps taker, binance-usdm 5 bps) and funding on the perp
    ts = [t(10), t(11), t(30_000), t(30_001)]
    tables = [trades(SPOT, ts, [100.0, 100.0, 102.0, 102.0]),
              trades(LIN, [x + MS for x in ts], [101.0, 101.0, 102.5, 102.5]),
              marks(LIN, [t(28_799)], [101.2]),
              ("funding", "binance-usdm", "BTCUSDT", {
                  "ts_event": np.array([t(28_800)]), "rate": np.array([0.0001]),
                  "interval_ns": np.array([28_800 * S]), "next_funding_ts": np.array([t(57_600)]),
                  "is_settlement": np.array([True])})]
    script = {ts[0]: intent("long", inst=SPOT, size=3.0), ts[0] + MS: intent("short", inst=LIN, size=3.0),
              ts[2]: intent("close", inst=SPOT), ts[2] + MS: intent("close", inst=LIN)}
    st = run(tables, script, maker_bps=None, taker_bps=None)
    spot, perp = sorted(table(st, 2), key=lambda x: x["inst"])
    spot_fees = D(3) * 100 * D("0.001") + D(3) * 102 * D("0.001")
    perp_fees = D(3) * 101 * D("0.0005") + D(3) * D("102.5") * D("0.0005")
    perp_funding = -D(3) * D("101.2") * D("0.0001")  # short receives a positive rate, on the mark
    assert spot["fees"] == pytest.approx(float(spot_fees), rel=1e-12) and spot["funding"] == 0.0
    assert perp["fees"] == pytest.approx(float(perp_fees), rel=1e-12)
    assert perp["funding"] == pytest.approx(float(perp_funding), rel=1e-12)
    total = D(3) * 2 + D(3) * D("-1.5") - spot_fees - perp_fees - perp_funding
    assert st.acct[0]["equity"] == pytest.approx(float(D(100_000) + total), rel=1e-13)


# ------------------------------------------------------------------------------ output buffers


def test_small_output_buffers_grow_to_the_same_result():
    rng = np.random.default_rng(3)
    n = 400
    ts = [t(k) for k in range(n)]
    px = list(100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n))))
    script = {ts[k]: intent("long" if k % 20 == 0 else "short" if k % 20 == 10 else "close", size=1.0)
              for k in range(0, n - 1, 5)}
    small, _ = run_script([trades(LIN, ts, px)], script, capacity=8, equity_interval_s=1.0)
    big, _ = run_script([trades(LIN, ts, px)], script, capacity=4096, equity_interval_s=1.0)
    assert small.out[0].shape[0] < 4096
    for k in range(5):
        n = len(table(big, k))
        assert len(table(small, k)) == n and small.out[k][:n].tobytes() == big.out[k][:n].tobytes()
    assert small.acct.tobytes() == big.acct.tobytes() and small.pos.tobytes() == big.pos.tobytes()
    n = big.acct[0]["n_decisions"]
    assert n > 0 and small.out[7][:n].tobytes() == big.out[7][:n].tobytes()
    assert len(table(big, 2)) > 20 and len(table(big, 3)) > 300
