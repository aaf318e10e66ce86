"""funding_velocity: a hand-built funding / trade tape (lags 1 h / 2 h) with worked-out
accelerations, entries, exits and PnL; the demo tape; the real Binance BTCUSDT 8-hourly funding
history (all_exchanges.csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals.base import Metric
from emerald.strategy.base import load_config
from emerald.tape.writer import TapeWriter
from emerald.testing.backtest import assert_run_invariants
from tests.strategies.conftest import run_dict, run_toml

S = 1_000_000_000
M = 60 * S
H = 60 * M
T0 = 1_709_510_400 * S  # 2024-03-04T00:00:00Z
PERP = "demo-perp:BTCUSDT"
TAKER = 5e-4  # demo-perp taker fee (emerald/model/instruments.toml)
EXEC = {"initial_equity": 100_000.0, "latency_ms": 100.0, "slippage_bps": 0.0, "sizing": "fraction", "fraction": 0.5,
        "decay": False, "breaker": False, "trail_pct": None}
PARAMS = {"short_h": 1, "long_h": 2, "accel_pct": 0.05}
END = 7 * H + 45 * M

# published (predicted) rates every 30 min, in % per 8 h, from the given times; the 00:00 row is a settlement
RATES = [(0, 0.01), (2 * H, 0.07), (5 * H, 0.10)]
PX = [(0, 100.0), (2 * H + 30 * M, 102.0), (3 * H + 20 * M, 101.0), (4 * H + 40 * M, 97.0)]


def step(path: list[tuple[int, float]], t: np.ndarray) -> np.ndarray:
    starts = np.array([s for s, _ in path])
    return np.array([v for _, v in path])[np.searchsorted(starts, t, side="right") - 1]


@pytest.fixture(scope="module")
def hand_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Funding rows every 30 min (the first a settlement), a trade of 0.01 at :10 s of every
    minute at the price path, and one at 00:00:00 (a run starts at its first trade, so the 00:00
    rate is in the window)."""
    root = tmp_path_factory.mktemp("fv") / "tape"
    t_f = np.arange(0, END, 30 * M, dtype=np.int64)
    t_px = np.r_[0, np.arange(0, END, M, dtype=np.int64) + 10 * S]
    settle = t_f == 0
    w = TapeWriter(root)
    w.write("funding", "demo-perp", "BTCUSDT", {
        "ts_event": T0 + t_f, "rate": step(RATES, t_f) / 100.0, "interval_ns": np.full(t_f.size, 8 * H),
        "next_funding_ts": np.full(t_f.size, T0 + 8 * H), "is_settlement": settle})
    w.write("trades", "demo-perp", "BTCUSDT", {
        "ts_event": T0 + t_px, "ts_recv": T0 + t_px, "price": step(PX, t_px), "qty": np.full(t_px.size, 0.01),
        "side": np.ones(t_px.size, np.int8), "trade_id": np.arange(t_px.size, dtype=np.int64)})
    w.commit()
    return root


def config(**params: object) -> dict:
    return {"strategy": "funding_velocity", "instruments": [PERP], "params": {**PARAMS, **params},
            "execution": dict(EXEC)}


def test_acceleration_entries_slowdown_exits_and_pnl(hand_tape: Path) -> None:
    res = run_dict(config(), hand_tape)
    assert_run_invariants(res)
    # acceleration a(t) = (r(t) - r(t-1h)) - (r(t-1h) - r(t-2h)), in %:
    # 02:00  (0.07 - 0.01) - (0.01 - 0.01) = +0.06 > 0.05: LONG (filled 02:00:10 at 100)
    # 02:30  (0.07 - 0.01) - 0             = +0.06: held
    # 03:00  (0.07 - 0.07) - (0.07 - 0.01) = -0.06 < 0: the velocity slowed, close (03:00:10 at 102)
    # 03:30  (0.07 - 0.07) - (0.07 - 0.01) = -0.06 < -0.05: SHORT (03:30:10 at 101)
    # 04:00, 04:30: 0, held; 05:00 (0.10 - 0.07) - 0 = +0.03 > 0: close (05:00:10 at 97);
    # 05:30 +0.03, 06:00 and 06:30 -0.03, 07:00 and 07:30 0: below 0.05, no entry
    t = res.trades.sort("entry_ts")
    assert t["direction"].to_list() == [1, -1]
    assert t["entry_ts"].to_list() == [T0 + 2 * H + 10 * S, T0 + 3 * H + 30 * M + 10 * S]
    assert t["exit_ts"].to_list() == [T0 + 3 * H + 10 * S, T0 + 5 * H + 10 * S]
    assert t["entry_px"].to_list() == [100.0, 101.0] and t["exit_px"].to_list() == [102.0, 97.0]
    q1 = 0.5 * 100_000 / 100.0
    pnl1 = q1 * (102 - 100) - q1 * (100 + 102) * TAKER
    q2 = 0.5 * (100_000 + pnl1) / 101.0
    pnl2 = q2 * (101 - 97) - q2 * (101 + 97) * TAKER
    np.testing.assert_allclose(t["qty"].to_numpy(), [q1, q2], rtol=1e-12)
    np.testing.assert_allclose(t["pnl"].to_numpy(), [pnl1, pnl2], rtol=1e-9)
    assert res.manifest["strategy_counters"] == {"entries_long": 1.0, "entries_short": 1.0, "slowdown_exits": 2.0}
    assert res.decisions["explanation"].to_list()[0].startswith("BTC LONG 100.00 · score 100/100 · accel ")
    np.testing.assert_allclose(res.decisions["contrib.accel"].to_numpy(), [100.0, -100.0])


def test_thresholds(hand_tape: Path) -> None:
    # 0.065 %: nothing trades. 0.02 %: as above, then 05:30 (+0.03) LONG, closed at 06:00 (-0.03 < 0),
    # 06:30 (-0.03) SHORT, held to the end (0 at 07:00 and 07:30)
    assert run_dict(config(accel_pct=0.065), hand_tape).trades.height == 0
    res = run_dict(config(accel_pct=0.02), hand_tape)
    assert res.decisions["action"].to_list() == [1, -1, 1, -1]
    assert res.decisions["ts"].to_list()[2:] == [T0 + 5 * H + 30 * M, T0 + 6 * H + 30 * M]
    assert res.trades.height == 3
    from emerald.backtest.engine import backtest

    fitted = backtest(load_config(config()), hand_tape, fitted={"thresholds": {"acceleration": 0.00065}})
    assert fitted.trades.height == 0


def test_kernel_columns_and_default_weights_match_the_triggers() -> None:
    """The kernel's column constants and its fallback weight vector (no fitted vector) agree with
    the signal columns and with what the engine packs from triggers()."""
    from emerald.backtest.engine import SignalContext
    from emerald.strategy.score import resolve
    from strategies import funding_velocity as mod

    cfg = load_config(config())
    metrics = mod.signals(cfg.params, SignalContext([("demo-perp", "BTCUSDT")], "event", None))
    cols = [f"{n}.{o}" for n, m in metrics for o in m.spec.outputs]
    assert cols.index("fv.acceleration") == mod.C_ACC
    vec, _ = resolve(mod.triggers(cfg.params, cols))
    np.testing.assert_array_equal(mod.weights_nb(cfg.params.record, np.zeros(0)), vec)


def test_unknown_and_bad_params_are_rejected() -> None:
    with pytest.raises(ConfigError, match="did you mean 'accel_pct'"):
        load_config(config(accel=0.05))
    with pytest.raises(ConfigError, match="long_h"):
        load_config(config(short_h=4, long_h=4))


def test_demo_tape(demo_tape: Path) -> None:
    res = run_toml("funding_velocity", demo_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    # every entry is at a funding event (one a minute: on the minute) with |acceleration| > 0.05 %
    assert (res.decisions["ts"].to_numpy() % M == 0).all()
    # the acceleration recomputed from the funding rows alone (the metric's default 4 h / 8 h lags)
    funding = EventTable.from_tape(demo_tape, [("demo-perp", "BTCUSDT")], ["funding"])
    acc = pd.Series(Metric("funding_velocity", inst=0).run(funding)[:, 2], index=funding.ts)
    for ts, action in zip(res.decisions["ts"].to_list(), res.decisions["action"].to_list(), strict=True):
        a = acc[acc.index <= ts].iloc[-1]  # the acceleration as of the decision
        assert abs(a) > 5e-4 and (a > 0) == (action == 1), (ts, a)


@pytest.fixture(scope="module")
def binance_rates(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """The Binance BTCUSDT perpetual rows of all_exchanges.csv from 2024-01-01 (8-hour bars and
    settled rates), imported with the funding-csv importer; and the same rows read here with pandas
    (times: Europe/London local, the importer's documented reading)."""
    src = real_data / "funding" / "all_exchanges.csv"
    lines = src.read_text().splitlines()
    keep = [lines[0]] + [x for x in lines[1:] if x.split(",")[1] == "binance" and x.split(",")[3] == "BTCUSDT"
                         and x >= "2024-01-01"]
    tmp = tmp_path_factory.mktemp("binance_funding")
    (tmp / "binance_btcusdt.csv").write_text("\n".join(keep) + "\n")
    from emerald.tape.importers import run_import

    run_import("funding-csv", [tmp / "binance_btcusdt.csv"], tmp / "tape")
    df = pd.read_csv(tmp / "binance_btcusdt.csv")
    local = pd.to_datetime(df["time"]).dt.tz_localize("Europe/London", ambiguous=True)
    df["ts"] = local.dt.tz_convert("UTC").dt.as_unit("ns").astype("int64")
    return tmp / "tape", df.sort_values("ts").reset_index(drop=True)


def test_real_binance_funding_history(binance_rates: tuple[Path, pd.DataFrame]) -> None:
    root, df = binance_rates
    inst = ["binance-usdm:BTCUSDT"]
    # settled rates only, one every 8 h: lags of 8 h and 16 h read the two previous settlements;
    # the next price after a decision is the close of an 8-hour bar, so entries must not expire
    cfg = load_config(Path(__file__).resolve().parents[2] / "strategies" / "funding_velocity.toml")
    res = run_dict({**cfg.raw, "instruments": inst, "params": {"accel_pct": 0.02, "short_h": 8, "long_h": 16,
                                                               "settled_only": 1},
                    "execution": {**cfg.raw["execution"], "expiry_s": 0.0, "decay": False}}, root)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    r = df.set_index("ts")["funding rate"] * 100
    acc = (r - r.shift(1)) - (r.shift(1) - r.shift(2))
    assert (np.diff(df["ts"]) == 8 * H).all()  # contiguous 8-hourly rows, so shift(1) is t - 8 h
    d = res.decisions
    for ts, action in zip(d["ts"].to_list(), d["action"].to_list(), strict=True):
        assert abs(acc[ts]) > 0.02 and (acc[ts] > 0) == (action == 1), (ts, acc[ts])
    # the first entry is the first settlement with |acceleration| > 0.02 %
    assert d["ts"][0] == int(acc[acc.abs() > 0.02].index[0])
    # ... filled, 100 ms later, at the first price after that: the close of the 8-hour bar that
    # opened at the settlement (the tape has bars only)
    closes = df.set_index("ts")["close"]
    t = res.trades.sort("entry_ts")
    assert t["entry_ts"][0] == d["ts"][0] + 8 * H
    slip = 1 + 1e-4 * d["action"][0]  # the config's 1 bp slippage against the entry
    assert t["entry_px"][0] == pytest.approx(closes[d["ts"][0]] * slip, rel=1e-12)
    assert pl.Series(t["exit_reason"]).is_in(["signal", "stop", "max_hold"]).all()
