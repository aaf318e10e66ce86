"""funding_volume: a hand-built funding / trade tape (volume: last 1-hour candle vs the 4-hour
average) with a fade on falling volume and a follow on surging volume, worked out here; the demo
tape; the real Binance BTCUSDT 8-hourly funding and volume history (all_exchanges.csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
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
PERP = "demo-perp:BTCUSDT"
TAKER = 5e-4  # demo-perp taker fee (emerald/model/instruments.toml)
EXEC = {"initial_equity": 100_000.0, "latency_ms": 100.0, "slippage_bps": 0.0, "sizing": "fraction", "fraction": 0.5,
        "decay": False, "breaker": False, "trail_pct": None}
PARAMS = {"extreme_pct": 30.0, "recent_h": 1, "long_h": 4}
END = 12 * H

QTY = [1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 2.0, 1.2, 1.0, 1.0]  # size of every trade, by hour
RATES = [(0, 0.01), (4 * H, 0.05), (6 * H, 0.01), (8 * H, -0.05), (11 * H, 0.01)]  # % per 8 h
PX = [(0, 100.0), (5 * H, 101.0), (5 * H + 30 * M, 99.0), (8 * H, 98.0), (10 * H + 30 * M, 97.0)]


def step(path: list[tuple[int, float]], t: np.ndarray) -> np.ndarray:
    starts = np.array([s for s, _ in path])
    return np.array([v for _, v in path])[np.searchsorted(starts, t, side="right") - 1]


@pytest.fixture(scope="module")
def hand_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trade on every minute (size by hour), funding rows every 10 min with settlements at
    00:00 and 08:00 (each at the rate published then)."""
    root = tmp_path_factory.mktemp("fvol") / "tape"
    t_px = np.arange(0, END, M, dtype=np.int64)
    t_f = np.arange(0, END, 10 * M, dtype=np.int64)
    w = TapeWriter(root)
    w.write("trades", "demo-perp", "BTCUSDT", {
        "ts_event": T0 + t_px, "ts_recv": T0 + t_px, "price": step(PX, t_px), "qty": np.repeat(QTY, 60),
        "side": np.ones(t_px.size, np.int8), "trade_id": np.arange(t_px.size, dtype=np.int64)})
    w.write("funding", "demo-perp", "BTCUSDT", {
        "ts_event": T0 + t_f, "rate": step(RATES, t_f) / 100.0, "interval_ns": np.full(t_f.size, 8 * H),
        "next_funding_ts": T0 + (t_f // (8 * H) + 1) * 8 * H, "is_settlement": t_f % (8 * H) == 0})
    w.commit()
    return root


def config(**params: object) -> dict:
    return {"strategy": "funding_volume", "instruments": [PERP], "params": {**PARAMS, **params},
            "execution": dict(EXEC)}


def test_fade_on_falling_follow_on_surging(hand_tape: Path) -> None:
    res = run_dict(config(), hand_tape)
    assert_run_invariants(res)
    # hourly volumes 60, 60, 60, 60, 30, 60, 60, 60, 120, 72, ...; ratio = last / mean of the last 4
    # 04:00  funding 0.05 % = 54.75 %/yr > 30 (extreme), ratio 60/60 = 1: nothing
    # 05:00  the 04:00 candle closed: 30 / 52.5 = 0.57 < 0.8, falling: fade the longs who pay, SHORT
    #        (filled at the 05:01 trade, 101)
    # 06:00  funding 0.01 % = 10.95 %/yr: no longer extreme, closed (06:01, 99)
    # 08:00  funding -0.05 %, ratio 60 / 52.5 = 1.14: nothing
    # 09:00  120 / 75 = 1.6 > 1.5, surging: follow the shorts who pay, SHORT (09:01, 98)
    # 10:00  72 / 78 = 0.92: held; 11:00 funding 0.01 %: closed (11:01, 97)
    t = res.trades.sort("entry_ts")
    assert t["direction"].to_list() == [-1, -1]
    assert t["entry_ts"].to_list() == [T0 + 5 * H + M, T0 + 9 * H + M]
    assert t["exit_ts"].to_list() == [T0 + 6 * H + M, T0 + 11 * H + M]
    assert t["entry_px"].to_list() == [101.0, 98.0] and t["exit_px"].to_list() == [99.0, 97.0]
    # the 04:00 candle closes at the first event at or after 05:00, the funding row, so the entry is
    # decided there and sized at the last trade price then (100, of 04:59)
    q1 = 0.5 * 100_000 / 100.0
    pnl1 = q1 * (101 - 99) - q1 * (101 + 99) * TAKER
    q2 = 0.5 * (100_000 + pnl1) / 98.0
    pnl2 = q2 * (98 - 97) - q2 * (98 + 97) * TAKER
    np.testing.assert_allclose(t["pnl"].to_numpy(), [pnl1, pnl2], rtol=1e-9)
    assert res.manifest["strategy_counters"] == {"fades": 1.0, "follows": 1.0, "funding_exits": 2.0,
                                                 "opposite_exits": 0.0}
    ex = res.decisions["explanation"].to_list()
    assert ex == ["BTC SHORT 100.00 · score 100/100 · funding %/yr +54.75 · volume falling x +0.57",
                  "BTC SHORT 98.00 · score 100/100 · funding %/yr -54.75 · volume surging x +1.60"]


def test_thresholds(hand_tape: Path) -> None:
    # extreme above 60 %/yr: nothing is extreme; a falling threshold of 0.5: no fade, only the follow
    assert run_dict(config(extreme_pct=60.0), hand_tape).trades.height == 0
    res = run_dict(config(falling=0.5), hand_tape)
    assert res.trades["entry_ts"].to_list() == [T0 + 9 * H + M]
    from emerald.backtest.engine import backtest

    fitted = backtest(load_config(config()), hand_tape, fitted={"thresholds": {"volume_surging": 1.7}})
    assert fitted.trades["entry_ts"].to_list() == [T0 + 5 * H + M]


def test_kernel_columns_and_default_weights_match_the_triggers() -> None:
    """The kernel's column constants and its fallback weight vector (no fitted vector) agree with
    the signal columns and with what the engine packs from triggers()."""
    from emerald.backtest.engine import SignalContext
    from emerald.strategy.score import resolve
    from strategies import funding_volume as mod

    cfg = load_config(config())
    metrics = mod.signals(cfg.params, SignalContext([("demo-perp", "BTCUSDT")], "event", None))
    cols = [f"{n}.{o}" for n, m in metrics for o in m.spec.outputs]
    assert cols.index("funding.annualized_pct") == mod.C_ANNUAL
    assert cols.index("vol.ratio") == mod.C_RATIO
    vec, _ = resolve(mod.triggers(cfg.params, cols))
    np.testing.assert_array_equal(mod.weights_nb(cfg.params.record, np.zeros(0)), vec)


def test_unknown_and_bad_params_are_rejected() -> None:
    with pytest.raises(ConfigError, match="did you mean 'surging'"):
        load_config(config(surge=1.5))
    with pytest.raises(ConfigError, match="recent_h"):
        load_config(config(recent_h=5, long_h=20))
    with pytest.raises(ConfigError, match="falling"):
        load_config(config(falling=2.0))


def test_demo_tape(demo_tape: Path) -> None:
    res = run_toml("funding_volume", demo_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    # only the planted elevated / negative regimes are extreme at 30 %/yr; fades go against the sign
    # of funding, follows with it
    for row in res.decisions.iter_rows(named=True):
        ann = float(row["explanation"].split("funding %/yr ")[1].split(" ")[0].replace(",", ""))
        assert abs(ann) > 30
        fade = "volume falling" in row["explanation"]
        assert row["action"] == (-1 if (ann > 0) == fade else 1), row["explanation"]


@pytest.fixture(scope="module")
def binance_history(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """The Binance BTCUSDT perpetual rows of all_exchanges.csv from 2024-01-01 (8-hour bars with
    volume, settled rates), imported with the funding-csv importer; and the same rows read here."""
    src = real_data / "funding" / "all_exchanges.csv"
    lines = src.read_text().splitlines()
    keep = [lines[0]] + [x for x in lines[1:] if x.split(",")[1] == "binance" and x.split(",")[3] == "BTCUSDT"
                         and x >= "2024-01-01"]
    tmp = tmp_path_factory.mktemp("binance_volume")
    (tmp / "binance_btcusdt.csv").write_text("\n".join(keep) + "\n")
    from emerald.tape.importers import run_import

    run_import("funding-csv", [tmp / "binance_btcusdt.csv"], tmp / "tape")
    df = pd.read_csv(tmp / "binance_btcusdt.csv")
    local = pd.to_datetime(df["time"]).dt.tz_localize("Europe/London", ambiguous=True)
    df["ts"] = local.dt.tz_convert("UTC").dt.as_unit("ns").astype("int64")
    return tmp / "tape", df.sort_values("ts").reset_index(drop=True)


def test_real_binance_history(binance_history: tuple[Path, pd.DataFrame]) -> None:
    root, df = binance_history
    assert (np.diff(df["ts"]) == 8 * H).all()
    # volume: the last 8-hour bar of the tape vs the mean of the last 24 (8 days); extreme: 30 %/yr
    cfg = load_config(Path(__file__).resolve().parents[2] / "strategies" / "funding_volume.toml")
    res = run_dict({**cfg.raw, "instruments": ["binance-usdm:BTCUSDT"],
                    "params": {"extreme_pct": 30.0, "recent_h": 8, "long_h": 192, "volume_source": 1,
                               "settled_only": 1},
                    "execution": {**cfg.raw["execution"], "expiry_s": 0.0, "decay": False}}, root)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    rate = df.set_index("ts")["funding rate"]
    vol = df["volume"].to_numpy()
    ratio = pd.Series(vol / pd.Series(vol).rolling(24).mean().to_numpy(), index=df["ts"] + 8 * H)  # known at close
    for row in res.decisions.iter_rows(named=True):
        ts = row["ts"]
        ann = rate[rate.index <= ts].iloc[-1] * 3 * 365 * 100
        assert abs(ann) > 30
        # the decision saw the last closed bar: the one closing at ts (bar event) or the one before
        # (the funding event at the same time comes first)
        shown = float(row["explanation"].split("volume ")[1].split(" x ")[1].split(" ")[0])
        seen = [ratio[t] for t in (ts, ts - 8 * H) if t in ratio.index]
        x = min(seen, key=lambda v: abs(v - shown))
        assert abs(shown - x) < 0.006, (ts, shown, seen)
        fade = "volume falling" in row["explanation"]
        assert (x < 0.8) if fade else (x > 1.5)
        assert row["action"] == (-1 if (ann > 0) == fade else 1)
