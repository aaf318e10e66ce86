"""emerald_convergence: hand-built tapes whose entries, stops, sizes and PnL follow from the rules by
hand arithmetic; a run on the demo tape; a run on the real Binance USD-M capture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from emerald.backtest.engine import SignalContext, backtest
from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.model.enums import Kind
from emerald.signals.metric_set import MetricSet
from emerald.strategy.base import load_config
from emerald.tape.importers import run_import
from emerald.tape.writer import TapeWriter
from emerald.testing.backtest import assert_run_invariants
from tests.strategies.conftest import run_dict, run_toml

S = 1_000_000_000
T0 = 1_709_254_800 * S  # 2024-03-01 01:00:00 UTC: no funding settlement within the hand tapes
VENUE, SYMBOL = "demo-perp", "BTCUSDT"
LEVELS = 5

# Short windows so a few minutes of hand-made trades warm everything up: ATR(2) of 1-minute bars,
# VWAP windows of 1, 2 and 3 minutes; zero fees, slippage and latency; no size decay.
PARAMS = {"vwap_fast_s": 60, "vwap_mid_s": 120, "vwap_slow_s": 180, "vwap_bucket_s": 1, "atr_bar_s": 60,
          "atr_n": 2, "ob_levels": LEVELS}
EXECUTION = {"latency_ms": 0, "slippage_bps": 0, "taker_bps": 0, "maker_bps": 0, "decay": False,
             "risk_pct": 1.0, "initial_equity": 100_000}


def config(**params: Any) -> dict[str, Any]:
    return {"strategy": "emerald_convergence", "instruments": [f"{VENUE}:{SYMBOL}"], "mode": "event",
            "params": {**PARAMS, **params}, "execution": dict(EXECUTION)}


class Tape:
    """Rows of a hand-made tape (times in seconds after T0). The run window starts at the first
    trade (t = 1 s), so the first book, prices and funding rows are stamped then too (they sort
    before the trade of the same nanosecond)."""

    def __init__(self) -> None:
        self.trades: list[tuple[float, float, float, int]] = []
        self.books: list[tuple[float, float, float, float]] = []
        self.prices: list[tuple[float, float, float]] = []
        self.funding: list[tuple[float, float]] = []

    def warm_up(self) -> None:
        """Trades every second for 4 minutes, alternating a seller at 99.5 and a buyer at 100.5, qty
        1: every 1-minute bar has high 100.5, low 99.5, so every true range and the ATR are 1.0;
        the flow is balanced (|imbalance| <= 1/59) and every VWAP is 100 +- 0.01, so the last price
        is 0.5 % from it (< 1 %): no trigger but funding-basis can fire."""
        for t in range(1, 241):
            self.trades.append((t, 99.5 if t % 2 else 100.5, 1.0, -1 if t % 2 else 1))
        self.book(1, 100.0, 1.0, 1.0)

    def book(self, t: float, mid: float, bid_qty: float, ask_qty: float) -> None:
        self.books.append((t, mid, bid_qty, ask_qty))

    def write(self, root: Path) -> Path:
        """Write the rows, plus a last trade an hour after T0 (alone in every window: flow 25 at most,
        no trade) so the run spans an hour (compute_stats' CAGR overflows on a 5-minute span)."""
        self.trades.append((3600, self.trades[-1][1], 1.0, 1))
        with TapeWriter(root, strict=True) as w:
            tr = np.array(self.trades, dtype=float)
            ts = T0 + np.round(tr[:, 0] * S).astype(np.int64)
            w.write("trades", VENUE, SYMBOL, {"ts_event": ts, "ts_recv": ts, "price": tr[:, 1], "qty": tr[:, 2],
                                              "side": tr[:, 3].astype(np.int8),
                                              "trade_id": np.arange(len(tr), dtype=np.int64)})
            bk = np.array(self.books, dtype=float)
            ts = T0 + np.round(bk[:, 0] * S).astype(np.int64)
            step = 0.1 * np.arange(1, LEVELS + 1)
            w.write("book", VENUE, SYMBOL, {
                "ts_event": ts, "ts_recv": ts, "bid_px": np.round(bk[:, 1:2] - step, 1),
                "bid_qty": np.repeat(bk[:, 2:3], LEVELS, axis=1), "ask_px": np.round(bk[:, 1:2] + step, 1),
                "ask_qty": np.repeat(bk[:, 3:4], LEVELS, axis=1)}, depth=LEVELS)
            pr = np.array(self.prices, dtype=float)
            ts = T0 + np.round(pr[:, 0] * S).astype(np.int64)
            w.write("prices", VENUE, SYMBOL, {"ts_event": ts, "mark": pr[:, 1], "index": pr[:, 2],
                                              "spot_ref": np.full(len(pr), np.nan)})
            fu = np.array(self.funding, dtype=float)
            ts = T0 + np.round(fu[:, 0] * S).astype(np.int64)
            w.write("funding", VENUE, SYMBOL, {
                "ts_event": ts, "rate": fu[:, 1], "interval_ns": np.full(len(fu), 8 * 3600 * S),
                "next_funding_ts": np.full(len(fu), T0 + 7 * 3600 * S), "is_settlement": np.zeros(len(fu), bool)})
        return root


def ts(seconds: float) -> int:
    return T0 + int(round(seconds * S))


def test_high_conviction_long_takes_profit_at_target(tmp_path: Path) -> None:
    tape = Tape()
    tape.warm_up()
    # funding 0.03 % per 8 h = 32.85 %/yr (> 10) with basis 100.3 / 100 - 1 = +0.3 % (> 0.2): convergence, +20
    tape.funding.append((1, 0.0003))
    tape.prices.append((1, 100.3, 100.0))
    # bid-heavy book: (15 - 5) / 20 = +0.5 > 0.4: +25
    tape.book(240.5, 103.0, 3.0, 1.0)
    # a 100-lot buyer at 103: flow (30 + 100 - 29) / 159 ~ +0.64 > 0.4: +25; VWAPs of the last 1/2/3 min
    # ~ (100 x 59 + 103 x 100) / 159 = 101.89, 101.37, 101.08: 103 is 1.09 %, 1.6 %, 1.9 % above: +30
    tape.trades.append((241, 103.0, 100.0, 1))
    tape.trades.append((242, 103.0, 1.0, 1))  # the entry fills here (first trade after the decision)
    tape.book(243, 103.0, 1.0, 1.0)  # book balanced, basis gone: no re-entry after the exit
    tape.prices.append((243, 103.0, 103.0))
    # score 100 >= 85: conviction 2, stop 103 - 2.5 x ATR 1.0 = 100.5; risk 1 % of 100,000 = 1,000 at
    # 2.5 a unit: qty 400; target 103 + 2.5 R x 2.5 = 109.25
    tape.trades.append((310, 109.5, 1.0, 1))  # >= target: close (decided here)
    tape.trades.append((311, 109.5, 1.0, -1))  # ... filled here; the 1-min flow is balanced again: flat
    res = run_dict(config(), tape.write(tmp_path / "tape"))
    assert_run_invariants(res)
    tr = res.trades
    assert tr.height == 1
    row = tr.row(0, named=True)
    assert (row["direction"], row["entry_ts"], row["exit_ts"]) == (1, ts(242), ts(311))
    assert (row["entry_px"], row["exit_px"]) == (103.0, 109.5)
    assert row["qty"] == pytest.approx(400.0, rel=1e-12)
    assert row["pnl"] == pytest.approx(400.0 * (109.5 - 103.0), rel=1e-12)
    assert row["exit_reason"] == "signal" and row["signal"] == "convergence_long"
    d = res.decisions.row(0, named=True)
    assert res.decisions.height == 1
    assert (d["ts"], d["score"], d["stop"]) == (ts(241), 100.0, pytest.approx(100.5, rel=1e-12))
    assert [d[f"contrib.{k}"] for k in ("OB", "flow", "VWAP 1m/5m/15m", "funding+basis", "divergence")] == \
        [25.0, 25.0, 30.0, 20.0, 0.0]
    # the explanation shows each trigger's raw signal value at the decision (the engine reads them from the
    # signal matrix), not its weighted contribution
    line = d["explanation"]
    assert line.startswith("BTC LONG 103.00 · score 100/100 · OB +") and line.endswith("stop 100.50")
    assert [part.split(" +")[0] for part in line.split(" · ")[2:6]] == ["OB", "flow", "VWAP 1m/5m/15m", "funding+basis"]
    assert res.pnl["total"] == pytest.approx(2600.0, rel=1e-12)


def reduced_tape(side: int, *, diverge: bool) -> Tape:
    """Order book and trade flow on ``side`` only: score 25 + 25 = 50 (reduced size), or 50 - 15 = 35
    with a funding-basis divergence (no trade)."""
    tape = Tape()
    tape.warm_up()
    if diverge:  # funding 32.85 %/yr (> 10) against a basis of 99.8 / 100 - 1 = -0.2 % (< -0.1): -15
        tape.funding.append((1, 0.0003))
        tape.prices.append((1, 99.8, 100.0))
    else:  # 0.005 % per 8 h = 5.5 %/yr: neither convergence nor divergence
        tape.funding.append((1, 0.00005))
        tape.prices.append((1, 100.0, 100.0))
    tape.book(240.5, 100.0, 3.0 if side > 0 else 1.0, 1.0 if side > 0 else 3.0)
    px = 100.5 if side > 0 else 99.5  # a buyer lifts the ask, a seller hits the bid
    tape.trades.append((241, px, 100.0, side))  # decision: VWAPs ~100.3 / 99.7, 0.2 % away: no VWAP points
    tape.trades.append((242, px, 1.0, side))  # entry fill
    tape.book(243, 100.0, 1.0, 1.0)
    out = 98.9 if side > 0 else 101.1  # through the stop 100.5 - 1.5 = 99.0 (short: 99.5 + 1.5 = 101.0)
    tape.trades.append((250, out, 1.0, -side))
    tape.trades.append((251, out, 1.0, -side))
    return tape


@pytest.mark.parametrize("side", [1, -1])
def test_reduced_conviction_sizes_down_and_stops_at_one_and_a_half_atr(tmp_path: Path, side: int) -> None:
    res = run_dict(config(), reduced_tape(side, diverge=False).write(tmp_path / "tape"))
    assert_run_invariants(res)
    assert res.trades.height == 1
    row = res.trades.row(0, named=True)
    entry, stop, out = (100.5, 99.0, 98.9) if side > 0 else (99.5, 101.0, 101.1)
    qty = 100_000 * 0.01 * 0.4 / 1.5  # conf_low 0.4 of a 1 % risk at 1.5 x ATR 1.0 a unit
    assert (row["direction"], row["entry_ts"], row["exit_ts"]) == (side, ts(242), ts(251))
    assert (row["entry_px"], row["exit_px"], row["exit_reason"]) == (entry, out, "stop")
    assert row["qty"] == pytest.approx(qty, rel=1e-12)
    assert row["pnl"] == pytest.approx(side * qty * (out - entry), rel=1e-12)
    assert row["r_multiple"] == pytest.approx(-1.6 / 1.5, rel=1e-12)  # lost 1.6 a unit, risked 1.5
    d = res.decisions.row(0, named=True)
    assert (d["score"], d["stop"]) == (50.0, pytest.approx(stop, rel=1e-12))
    assert d["contrib.OB"] == d["contrib.flow"] == 25.0 * side


@pytest.mark.parametrize("side", [1, -1])
def test_divergence_penalty_blocks_either_side(tmp_path: Path, side: int) -> None:
    res = run_dict(config(), reduced_tape(side, diverge=True).write(tmp_path / "tape"))
    assert res.orders.height == 0 and res.trades.height == 0
    # the same tape trades once the penalty is weighed at 0
    res = run_dict(config(w_divergence=0.0), reduced_tape(side, diverge=True).write(tmp_path / "tape2"))
    assert res.trades.height == 1 and res.trades["direction"][0] == side


def test_config_checks() -> None:
    with pytest.raises(ConfigError, match="did you mean 'ob_threshold'"):
        load_config(config(ob_treshold=0.5))
    with pytest.raises(ConfigError, match="score_reduced <= score_standard"):
        load_config(config(score_reduced=80))
    with pytest.raises(ConfigError, match="ob_threshold"):
        load_config(config(ob_threshold=1.5))
    with pytest.raises(ConfigError, match="event mode"):
        cfg = load_config(config())
        cfg.strategy.signals(cfg.params, SignalContext(cfg.instruments, "bars", 60 * S))
    assert load_config(config()).execution["sizing"] == "risk"
    assert load_config(config()).execution["trail_pct"] is None


def test_demo_tape(demo_tape: Path) -> None:
    res = run_toml("emerald_convergence", demo_tape)
    assert res.trades.height > 0
    assert_run_invariants(res)
    d = res.decisions
    assert (d["score"] >= 50).all()
    # the score is what the triggers on the chosen side add, less the divergence penalty
    contrib = np.stack([d[f"contrib.{k}"].to_numpy() for k in
                        ("OB", "flow", "VWAP 1m/5m/15m", "funding+basis", "divergence")], axis=1)
    side = np.where(d["action"].to_numpy() > 0, 1.0, -1.0)
    backing = contrib[:, :4] * side[:, None]
    assert np.array_equal(np.where(backing > 0, backing, 0.0).sum(axis=1) - np.abs(contrib[:, 4]),
                          d["score"].to_numpy())


def test_real_binance_capture(real_data: Path, tmp_path: Path) -> None:
    """8.5 minutes of Binance USD-M BTCUSDT (book, trades, mark/index, funding with the 00:00
    settlement). The ATR uses 20-second bars so a stop exists within the capture, sized by fraction
    (ATR stops of a few dollars would make risk sizing refuse). Each entry's score must equal the
    score recomputed here from the metric columns at that trade."""
    root = tmp_path / "tape"
    files = sorted((real_data / "binance-raw").glob("usdm_btcusdt_*.dat.gz"))
    run_import("binance-raw", files, root, venue="binance-usdm", symbol="BTCUSDT")
    cfg = load_config({"strategy": "emerald_convergence", "instruments": ["binance-usdm:BTCUSDT"],
                       "params": {"atr_bar_s": 20, "atr_n": 2},
                       "execution": {"sizing": "fraction", "fraction": 0.5, "min_stop_pct": 0.0}})
    res = backtest(cfg, root)
    assert_run_invariants(res)
    assert res.manifest["coverage"]["funding"]["binance-usdm:BTCUSDT"]["present_settlements"] == 1
    assert res.trades.height > 0
    # independent score: the metric columns at each decision's trade, weighed by the gameplan's rules
    start = int(pq.read_table(root / "trades").column("ts_event").to_numpy().min())
    metrics = cfg.strategy.signals(cfg.params, SignalContext(cfg.instruments, "event", None))
    events = EventTable.from_tape(root, cfg.instruments, cfg.strategy.kinds, start)
    values = MetricSet([m for _, m in metrics]).run(events)
    col = {name: k for k, name in enumerate(f"{n}.{o}" for n, m in metrics for o in m.spec.outputs)}
    for d in res.decisions.iter_rows(named=True):
        i = int(np.flatnonzero((events.ts == d["ts"]) & (events.kind == int(Kind.TRADES)))[-1])
        v = values[i]
        side = d["action"]
        score = (25 * (side * v[col["ob.imbalance"]] > 0.4) + 25 * (side * v[col["flow.imbalance"]] > 0.4)
                 + 30 * (v[col["vwap.alignment"]] == side) + 20 * (v[col["fb.convergence"]] == side)
                 - 15 * (v[col["fb.divergence"]] > 0))
        assert d["score"] == score >= 50
