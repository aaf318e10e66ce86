"""liquidation_cascade: a hand-built cascade with the worked-out fade (entry, target exit, PnL) and
alert; the demo tape's planted cascades. The real samples carry no liquidation feed (README), so
there is no real-data run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emerald.tape.writer import TapeWriter
from emerald.testing.backtest import assert_run_invariants
from tests.strategies.conftest import run_dict, run_toml

S = 1_000_000_000
M = 60 * S
H = 60 * M
T0 = 1_709_510_400 * S  # 2024-03-04T00:00:00Z
PERP = "demo-perp:BTCUSDT"
TAKER = 5e-4  # demo-perp taker fee (emerald/model/instruments.toml)
EXEC = {"initial_equity": 100_000.0, "latency_ms": 100.0, "slippage_bps": 0.0, "sizing": "fraction",
        "fraction": 0.5, "decay": False, "breaker": False}
PARAMS = {"window_s": 300, "min_count": 10, "min_notional": 500_000.0, "min_move_pct": 1.0, "retrace": 0.5,
          "stop_pct": 1.0, "cluster_gap_pct": 0.1}


def trade_path() -> tuple[np.ndarray, np.ndarray]:
    """Trades every 10 s, 01:00-03:00: 60,000; from 01:30:00 ten trades fall 120 apart from 59,880 to
    58,800 (01:31:30); flat until 01:40:00, then +10 per trade back to 60,000 (02:00:00), flat."""
    ts = T0 + H + np.arange(720, dtype=np.int64) * 10 * S
    k = (ts - (T0 + H + 30 * M)) // (10 * S)
    n = (ts - (T0 + H + 40 * M)) // (10 * S)
    px = np.where(k < 0, 60_000.0, np.maximum(59_880.0 - 120.0 * k, 58_800.0))
    px = np.where(n >= 0, np.minimum(58_800.0 + 10.0 * n, 60_000.0), px)
    return ts, px


@pytest.fixture(scope="module")
def hand_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trade path above and 12 long liquidations (1 BTC each, at the last trade price) every 10 s
    from 01:30:05 to 01:31:55."""
    root = tmp_path_factory.mktemp("liq") / "tape"
    ts, px = trade_path()
    lts = T0 + H + 30 * M + 5 * S + np.arange(12, dtype=np.int64) * 10 * S
    lpx = px[np.searchsorted(ts, lts) - 1]
    w = TapeWriter(root)
    w.write("trades", "demo-perp", "BTCUSDT", {"ts_event": ts, "ts_recv": ts, "price": px, "qty": np.full(720, 0.1),
                                              "side": np.ones(720, np.int8), "trade_id": np.arange(720)})
    w.write("liquidations", "demo-perp", "BTCUSDT", {"ts_event": lts, "side": np.full(12, -1, np.int8),
                                                    "price": lpx, "qty": np.ones(12)})
    w.commit()
    return root


def config(**params: float) -> dict:
    return {"strategy": "liquidation_cascade", "instruments": [PERP], "params": {**PARAMS, **params},
            "execution": EXEC}


def test_hand_cascade_fade(hand_tape: Path) -> None:
    res = run_dict(config(), hand_tape)
    assert_run_invariants(res)
    ts, px = trade_path()
    # detected at the 10th liquidation (01:31:35: count 10, notional 593,400 > 500,000); p0 = the mean
    # trade price of the 15 minutes before: 79 trades at 60,000 (01:16:40-01:29:50) and the ten falling ones
    p0 = (79 * 60_000.0 + sum(59_880.0 - 120.0 * k for k in range(10))) / 89
    ext = 58_800.0
    assert (p0 - ext) / p0 * 100 > 1.0  # the overshoot is worth fading
    # the cascade ends when the 3rd liquidation (01:30:25) leaves the 5-min window: decided at the
    # 01:35:30 trade, filled at the next one (01:35:40, 58,800)
    target = ext + 0.5 * (p0 - ext)
    entry = int(np.searchsorted(ts, T0 + H + 35 * M + 40 * S))
    hit = entry + int(np.flatnonzero(px[entry:] >= target)[0])  # first trade at the target: the close
    t = res.trades
    assert t.height == 1 and t["direction"][0] == 1
    assert t["entry_ts"][0] == T0 + H + 35 * M + 40 * S and t["entry_px"][0] == 58_800.0
    assert t["exit_ts"][0] == ts[hit + 1] and t["exit_px"][0] == px[hit + 1]
    assert t["exit_reason"][0] == "signal"
    q = 50_000 / 58_800
    assert t["qty"][0] == pytest.approx(q, rel=1e-12)
    pnl = q * (px[hit + 1] - 58_800.0) - q * (58_800.0 + px[hit + 1]) * TAKER
    assert t["pnl"][0] == pytest.approx(pnl, rel=1e-9)
    assert res.decisions["stop"][0] == pytest.approx(ext * 0.99, rel=1e-12)
    counters = res.manifest["strategy_counters"]
    assert counters["cascades_long"] == 1 and counters["fades"] == 1 and counters["target_exits"] == 1
    # the alert: notional is above 500,000 from the 9th liquidation on, but the side (the firing's
    # direction) exists only once the window is a cascade (10 liquidations): 01:31:35, longs liquidated
    f = res.firings
    assert f.height == 1 and f["direction"][0] == -1 and f["ts"][0] == T0 + H + 31 * M + 35 * S
    assert f["value"][0] == pytest.approx(sum(59_880.0 - 120.0 * k for k in range(10)), rel=1e-12)


def test_alerts_only_and_small_moves(hand_tape: Path) -> None:
    alerts = run_dict(config(alerts_only=1), hand_tape)
    assert alerts.trades.height == 0 and alerts.orders.height == 0
    assert alerts.firings.height == 1 and alerts.manifest["strategy_counters"]["cascades_long"] == 1
    small = run_dict(config(min_move_pct=2.0), hand_tape)  # the overshoot is 1.88 %
    assert small.trades.height == 0 and small.manifest["strategy_counters"]["skipped_small_move"] == 1


def test_demo_tape_planted_cascades(demo_tape: Path) -> None:
    res = run_toml("liquidation_cascade", demo_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    # datasets/demo.md: shocks day 0 20:30 (longs liquidated), day 2 02:00 (longs), day 4 06:00
    # (shorts); window = shock + 10 min
    day0 = 1_709_251_200 * S
    for start, side in ((day0 + 20 * H + 30 * M, -1), (day0 + 2 * 24 * H + 2 * H, -1), (day0 + 4 * 24 * H + 6 * H, 1)):
        f = res.firings.filter((res.firings["ts"] >= start) & (res.firings["ts"] <= start + 10 * M))
        assert f.height >= 1 and (f["direction"] == side).all(), (start, f)
    # every fade goes against the cascade it follows: the decision's direction is opposite the last
    # firing before it
    for d in res.decisions.iter_rows(named=True):
        last = res.firings.filter(res.firings["ts"] <= d["ts"]).tail(1)
        assert d["action"] == -last["direction"][0]
    alerts = run_toml("liquidation_cascade", demo_tape, params={**PARAMS, "alerts_only": 1})
    assert alerts.trades.height == 0 and alerts.firings.equals(res.firings)
