"""TB5 (RELIABILITY.md): funding and fee accounting. A position held across N funding settlements with known
positive and negative rates, 8-hourly (binance-usdm:BTCUSDT) and hourly (hyperliquid:BTC): the trade's PnL equals
price PnL - fees - funding exactly as computed here in Decimal from the inputs (the float results within 1e-9
relative); "positive rate: longs pay" both ways, shorts mirrored (freqtrade #6231)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from emerald.testing.backtest import assert_run_invariants
from tests.backtest._strategies import T0, S, funding, intent, marks, run_script, table, trades

H = 3600 * S
RATES = ["0.0001", "-0.00025", "0.0003", "-0.00005", "0.000125"]


def rel(x: float, y: D) -> None:
    assert float(x) == pytest.approx(float(y), rel=1e-9, abs=1e-12), (x, y)


@pytest.mark.parametrize(("inst", "interval_h", "taker_bps"), [("binance-usdm:BTCUSDT", 8, "5"),
                                                              ("hyperliquid:BTC", 1, "4.5")])
@pytest.mark.parametrize("direction", [1, -1])
def test_position_across_settlements(inst, interval_h, taker_bps, direction):
    step = interval_h * H
    n = len(RATES)
    settle = [T0 + (k + 1) * step for k in range(n)]
    mark = [D(60_000) + 250 * k for k in range(n)]                 # published 1 s before each settlement
    entry_px, exit_px = D("60010.5"), D("61234.5")
    ts = [T0 + 10 * S, T0 + 11 * S, settle[-1] + 10 * S, settle[-1] + 11 * S]
    px = [D(60_000), entry_px, D(61_000), exit_px]
    qty = D("0.75")
    tables = [trades(inst, ts, [float(x) for x in px]),
              marks(inst, [x - S for x in settle], [float(m) for m in mark]),
              funding(inst, settle, [float(D(r)) for r in RATES], step),
              # published (predicted) rates are not settlements: never charged
              funding(inst, [x - step // 2 for x in settle], [0.01] * n, step, [False] * n)]
    script = {ts[0]: intent("long" if direction > 0 else "short", size=float(qty)), ts[2]: intent("close")}
    # the instrument's own fees (no override): 5 bps taker on binance-usdm, 4.5 bps on hyperliquid
    state, events = run_script(tables, script, maker_bps=None, taker_bps=None, slippage_bps=2.0)
    assert_run_invariants(state, events)
    slip = D("0.0002")
    buy_px = (entry_px if direction > 0 else exit_px) * (1 + slip)
    sell_px = (exit_px if direction > 0 else entry_px) * (1 - slip)
    price_pnl = qty * (sell_px - buy_px)
    fees = qty * (buy_px + sell_px) * D(taker_bps) / 10_000
    # positive rate: the long pays qty x mark x rate, the short receives it
    per_settlement = [direction * qty * m * D(r) for m, r in zip(mark, RATES, strict=True)]
    fund = sum(per_settlement)
    (trade,) = table(state, 2)
    rel(trade["pnl_price"], price_pnl)
    rel(trade["fees"], fees)
    rel(trade["funding"], fund)
    rel(trade["pnl"], price_pnl - fees - fund)
    rel(state.acct[0]["equity"], D(100_000) + price_pnl - fees - fund)
    rel(state.acct[0]["cash"], D(100_000) + price_pnl - fees - fund)


@pytest.mark.parametrize(("rate", "direction", "cash_moves"), [("0.001", 1, -1), ("0.001", -1, 1),
                                                               ("-0.001", 1, 1), ("-0.001", -1, -1)])
def test_sign_convention_positive_rate_longs_pay(rate, direction, cash_moves):
    inst = "binance-usdm:BTCUSDT"
    ts = [T0 + 10 * S, T0 + 11 * S, T0 + 8 * H + S]
    tables = [trades(inst, ts, [100.0] * 3), funding(inst, [T0 + 8 * H], [float(rate)], 8 * H)]
    state, _ = run_script(tables, {ts[0]: intent("long" if direction > 0 else "short", size=10.0)})
    entry_fee = D(10) * 100 * D("0.0005")
    change = D(str(state.acct[0]["cash"])) - (D(100_000) - entry_fee)
    assert float(change) == pytest.approx(cash_moves * 10 * 100 * 0.001, rel=1e-12)
    assert state.pos[0]["funding"] == pytest.approx(-cash_moves * 1.0, rel=1e-12)  # paid is positive


def test_inverse_funding_on_contract_value():
    # inverse perps pay qty x contract size x rate (USD), independent of the price
    inst = "binance-coinm:BTCUSD_PERP"
    ts = [T0 + 10 * S, T0 + 11 * S, T0 + 8 * H + S, T0 + 8 * H + 2 * S]
    tables = [trades(inst, ts, [20_000.0, 20_000.0, 30_000.0, 30_000.0]),
              funding(inst, [T0 + 8 * H], [0.0004], 8 * H)]
    state, events = run_script(tables, {ts[0]: intent("long", size=50.0), ts[2]: intent("close")})
    assert_run_invariants(state, events)
    (trade,) = table(state, 2)
    rel(trade["funding"], D(50) * 100 * D("0.0004"))
