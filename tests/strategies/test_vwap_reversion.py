"""vwap_reversion: a hand-built trade tape with 2-sigma stretches inside and outside 12:00-20:00
UTC and one on surging volume; entries, exits and PnL worked out here; the demo tape's planted
stretches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from emerald.errors import ConfigError
from emerald.strategy.base import load_config
from emerald.tape.writer import TapeWriter
from emerald.testing.backtest import assert_run_invariants
from tests.strategies.conftest import run_dict, run_toml

S = 1_000_000_000
M = 60 * S
H = 60 * M
T0 = 1_709_510_400 * S  # 2024-03-04T00:00:00Z
START = 11 * H  # the tape starts at 11:00
NEXT_DAY = T0 + 24 * H
PERP = "demo-perp:BTCUSDT"
TAKER = 5e-4  # demo-perp taker fee (emerald/model/instruments.toml)
EXEC = {"initial_equity": 100_000.0, "latency_ms": 100.0, "slippage_bps": 0.0, "sizing": "fraction", "fraction": 0.5,
        "decay": False, "breaker": False, "trail_pct": None}


def minutes() -> tuple[np.ndarray, np.ndarray]:
    """Price and per-trade size of each minute from 11:00 to 13:59: 99 / 101 alternating, with
    stretches to 102 at 11:30 (outside the hours), 12:00-12:01 (then 100 at 12:02), 102 at 13:00
    on three times the volume, and 98 at 13:30-13:31 (then 101)."""
    k = np.arange(180)
    px = np.where(k % 2 == 0, 99.0, 101.0)
    qty = np.ones(180)
    px[[30, 60, 61, 120]] = 102.0
    px[62] = 100.0
    px[[150, 151]] = 98.0
    px[152] = 101.0
    qty[120] = 3.0
    return px, qty


PX, QTY = minutes()


@pytest.fixture(scope="module")
def hand_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three trades per minute (:00, :20, :40) at the minute's price and size; three more at 100
    at 00:00 of the next day (a new session); zero-rate funding settlements."""
    root = tmp_path_factory.mktemp("vwap") / "tape"
    ts = np.r_[T0 + START + np.arange(540, dtype=np.int64) * 20 * S, NEXT_DAY + np.arange(3, dtype=np.int64) * 20 * S]
    n = ts.size
    w = TapeWriter(root)
    w.write("trades", "demo-perp", "BTCUSDT", {
        "ts_event": ts, "ts_recv": ts, "price": np.r_[np.repeat(PX, 3), np.full(3, 100.0)],
        "qty": np.r_[np.repeat(QTY, 3), np.ones(3)],
        "side": np.ones(n, np.int8), "trade_id": np.arange(n, dtype=np.int64)})
    settle = np.array([T0 + 16 * H, NEXT_DAY])  # zero-rate settlements: the run checks they are there
    w.write("funding", "demo-perp", "BTCUSDT", {"ts_event": settle, "rate": np.zeros(2), "interval_ns": np.full(2, 8 * H),
                                                "next_funding_ts": settle + 8 * H, "is_settlement": np.ones(2, bool)})
    w.commit()
    return root


def signals_at(k: int) -> tuple[float, float]:
    """z-score and volume ratio seen from the first trade of minute k: the candles 0 .. k-1 are
    closed; session VWAP = sum(v p) / sum(v) (every trade of a minute at its price), sigma the
    volume-weighted std of the candle prices, ratio = last volume / mean of the last 20."""
    p, v = PX[:k], 3 * QTY[:k]
    vwap = (v * p).sum() / v.sum()
    sigma = np.sqrt((v * (p - vwap) ** 2).sum() / v.sum())
    return float((p[-1] - vwap) / sigma), float(v[-1] / v[-20:].mean())


def at(k: int) -> int:
    return T0 + START + k * M


def config(**params: object) -> dict:
    return {"strategy": "vwap_reversion", "instruments": [PERP], "params": params, "execution": dict(EXEC)}


def test_stretches_filters_exits_and_pnl(hand_tape: Path) -> None:
    z = {k: signals_at(k) for k in range(21, 180)}
    band = sorted(k for k, (zk, _) in z.items() if 1.5 < abs(zk) < 2.5)
    assert band == [31, 61, 62, 121, 151, 152]  # nothing else in the 1.5-2.5 sigma band
    assert z[121][1] > 1.3 > max(z[k][1] for k in (31, 61, 151))  # only the 13:00 candle surged
    # 11:31: outside 12-20 UTC, skipped. 12:01 (z +1.9 on the 12:00 candle): SHORT, filled 12:01:20
    # at 102; 12:02 still stretched; 12:03 (the 12:02 candle closed at 100 < VWAP): z <= 0, closed,
    # filled 12:03:20 at 101. 13:01: surging volume, skipped. 13:31 (z -2 on the 13:30 candle): LONG,
    # filled 13:31:20 at 98; 13:33 (13:32 closed at 101 > VWAP): closed, filled 13:33:20 at 101.
    assert z[63][0] <= 0.0 < z[62][0] and z[153][0] >= 0.0 > z[152][0]
    res = run_dict(config(), hand_tape)
    assert_run_invariants(res)
    t = res.trades.sort("entry_ts")
    assert t["direction"].to_list() == [-1, 1]
    assert t["entry_ts"].to_list() == [at(61) + 20 * S, at(151) + 20 * S]
    assert t["exit_ts"].to_list() == [at(63) + 20 * S, at(153) + 20 * S]
    assert t["entry_px"].to_list() == [102.0, 98.0] and t["exit_px"].to_list() == [101.0, 101.0]
    q1 = 0.5 * 100_000 / 102.0
    pnl1 = q1 * (102 - 101) - q1 * (102 + 101) * TAKER
    q2 = 0.5 * (100_000 + pnl1) / 98.0
    pnl2 = q2 * (101 - 98) - q2 * (98 + 101) * TAKER
    np.testing.assert_allclose(t["pnl"].to_numpy(), [pnl1, pnl2], rtol=1e-9)
    assert res.manifest["strategy_counters"] == {"entries_long": 1.0, "entries_short": 1.0, "vwap_exits": 2.0,
                                                 "session_exits": 0.0}
    assert res.decisions["explanation"][0] == (f"BTC SHORT 102.00 · score 100/100 · VWAP z {z[61][0]:+.2f} · "
                                               f"volume x avg {z[61][1]:+.2f}")


def test_hours_and_volume_filters_are_parameters(hand_tape: Path) -> None:
    # the window opened at 11:00 takes the 11:31 stretch (short), closed once a candle closes at
    # or below the VWAP
    res = run_dict(config(start_hour=11), hand_tape)
    k_exit = next(k for k in range(32, 180) if signals_at(k)[0] <= 0.0)
    assert res.trades["direction"][0] == -1
    assert res.trades["entry_ts"][0] == at(31) + 20 * S and res.trades["exit_ts"][0] == at(k_exit) + 20 * S
    # a volume cap of 3 x lets the 13:01 stretch (2.7 x) through
    res = run_dict(config(volume_max=3.0), hand_tape)
    assert at(121) + 20 * S in res.trades["entry_ts"].to_list()


def test_session_end_closes(hand_tape: Path) -> None:
    # entries from 13:00 with an exit level never reached: the long of 13:31 (at 98) is held until
    # the first trade of the next UTC day (the VWAP resets), filled at the next one (100)
    res = run_dict(config(start_hour=13, exit_z=1.49), hand_tape)
    assert_run_invariants(res)
    assert res.trades.height == 1
    tr = res.trades.row(0, named=True)
    assert (tr["direction"], tr["entry_ts"], tr["exit_ts"]) == (1, at(151) + 20 * S, NEXT_DAY + 20 * S)
    q = 0.5 * 100_000 / 98.0
    assert tr["pnl"] == pytest.approx(q * (100 - 98) - q * (98 + 100) * TAKER, rel=1e-9)
    assert res.manifest["strategy_counters"]["session_exits"] == 1.0
    # a fitted z threshold above every stretch trades nothing
    from emerald.backtest.engine import backtest

    none = backtest(load_config(config()), hand_tape, fitted={"thresholds": {"vwap_z": 2.3}})
    assert none.trades.height == 0


def test_kernel_columns_and_default_weights_match_the_triggers() -> None:
    """The kernel's column constants and its fallback weight vector (no fitted vector) agree with
    the signal columns and with what the engine packs from triggers()."""
    from emerald.backtest.engine import SignalContext
    from emerald.strategy.score import resolve
    from strategies import vwap_reversion as mod

    cfg = load_config(config())
    metrics = mod.signals(cfg.params, SignalContext([("demo-perp", "BTCUSDT")], "event", None))
    cols = [f"{n}.{o}" for n, m in metrics for o in m.spec.outputs]
    assert cols.index("vwap.z_score") == mod.C_Z
    assert cols.index("vol.ratio") == mod.C_RATIO
    vec, _ = resolve(mod.triggers(cfg.params, cols))
    np.testing.assert_array_equal(mod.weights_nb(cfg.params.record, np.zeros(0)), vec)


def test_unknown_and_bad_params_are_rejected() -> None:
    with pytest.raises(ConfigError, match="did you mean 'z_max'"):
        load_config(config(zmax=2.5))
    with pytest.raises(ConfigError, match="z_min"):
        load_config(config(z_min=3.0))


def test_demo_tape_trades_the_planted_stretches(demo_tape: Path) -> None:
    res = run_toml("vwap_reversion", demo_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    tod = res.decisions["ts"].to_numpy() % (24 * H)
    assert ((tod >= 12 * H) & (tod < 20 * H)).all()
    # fade: short above the VWAP, long below
    z = [float(e.split("VWAP z ")[1].split(" ")[0]) for e in res.decisions["explanation"]]
    assert all(1.49 < abs(v) < 2.51 and (a == 1) == (v < 0) for v, a in zip(z, res.decisions["action"], strict=True))
    # the planted BTC stretches: the 13:30 candle of every day closes about 2 sigma from the session
    # VWAP (datasets/demo.md, measured as: VWAP of the perp trades from 00:00, last trade of 13:30);
    # at the end of that minute a position against the stretch is open
    trades = pl.read_parquet(demo_tape / "trades" / "venue=demo-perp" / "symbol=BTCUSDT" / "**/*.parquet")
    day0 = int(trades["ts_event"].min()) // (24 * H) * (24 * H)
    for d in range(7):
        t = day0 + d * 24 * H + 13 * H + 31 * M
        x = trades.filter((pl.col("ts_event") >= t - 13 * H - 31 * M) & (pl.col("ts_event") < t))
        vwap = (x["price"] * x["qty"]).sum() / x["qty"].sum()
        sign = 1 if x["price"][-1] > vwap else -1
        held = res.trades.filter((pl.col("entry_ts") <= t) & (pl.col("exit_ts") >= t))
        assert held["direction"].to_list() == [-sign], d
