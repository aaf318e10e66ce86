"""oi_multitimeframe: a hand-built open-interest / price tape (windows 1 h / 2 h / 4 h) with an
accumulation, a squeeze fade and a distribution whose entries, holds and PnL are worked out here;
the demo tape's three planted conditions."""

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
PERP = "demo-perp:BTCUSDT"
TAKER = 5e-4  # demo-perp taker fee (emerald/model/instruments.toml)
EXEC = {"initial_equity": 100_000.0, "latency_ms": 100.0, "slippage_bps": 0.0, "sizing": "fraction", "fraction": 0.5,
        "decay": False, "breaker": False, "trail_pct": None}
PARAMS = {"short_h": 1, "mid_h": 2, "long_h": 4, "price_h": 2, "trend_hold_h": 2, "fade_hold_h": 1}
END = 14 * H + 30 * M

# open interest every 5 minutes and the price every minute, piecewise constant from the given times
OI = [(0, 1000.0), (5 * H, 1060.0), (8 * H, 900.0), (9 * H + 30 * M, 955.0), (12 * H, 1030.0)]
PX = [(0, 100.0), (4 * H + 58 * M, 103.0), (6 * H + 30 * M, 104.0), (9 * H + 28 * M, 106.0), (10 * H + 10 * M, 105.0),
      (11 * H + 58 * M, 101.0), (13 * H, 100.0)]


def step(path: list[tuple[int, float]], t: np.ndarray) -> np.ndarray:
    starts = np.array([s for s, _ in path])
    return np.array([v for _, v in path])[np.searchsorted(starts, t, side="right") - 1]


@pytest.fixture(scope="module")
def hand_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Marks on the minute, one trade of 0.01 at :30 of every minute at the same price (fills),
    OI every 5 min, zero-rate funding settlements at 00:00 and 08:00."""
    root = tmp_path_factory.mktemp("oi") / "tape"
    t_oi = np.arange(0, END, 5 * M, dtype=np.int64)
    t_px = np.arange(0, END, M, dtype=np.int64)
    n = t_px.size
    w = TapeWriter(root)
    w.write("open_interest", "demo-perp", "BTCUSDT", {"ts_event": T0 + t_oi, "oi_qty": step(OI, t_oi),
                                                      "oi_notional": np.full(t_oi.size, np.nan)})
    w.write("prices", "demo-perp", "BTCUSDT", {"ts_event": T0 + t_px, "mark": step(PX, t_px), "index": step(PX, t_px),
                                               "spot_ref": np.full(n, np.nan)})
    w.write("trades", "demo-perp", "BTCUSDT", {
        "ts_event": T0 + t_px + 30 * S, "ts_recv": T0 + t_px + 30 * S, "price": step(PX, t_px), "qty": np.full(n, 0.01),
        "side": np.ones(n, np.int8), "trade_id": np.arange(n, dtype=np.int64)})
    w.write("funding", "demo-perp", "BTCUSDT", {
        "ts_event": T0 + np.array([0, 8 * H]), "rate": np.zeros(2), "interval_ns": np.full(2, 8 * H),
        "next_funding_ts": T0 + np.array([8 * H, 16 * H]), "is_settlement": np.ones(2, bool)})
    w.commit()
    return root


def config(**params: object) -> dict:
    return {"strategy": "oi_multitimeframe", "instruments": [PERP], "params": {**PARAMS, **params},
            "execution": dict(EXEC)}


def expected(trips: list[tuple[int, int, int]]) -> tuple[list[float], list[float]]:
    """Quantities and PnLs of round trips (side, decision time, exit decision time) filled at the
    trade 30 s after each decision; each entry uses half the equity at its decision."""
    equity, qtys, pnls = 100_000.0, [], []
    for side, t_in, t_out in trips:
        p_in, p_out = step(PX, np.array([t_in]))[0], step(PX, np.array([t_out]))[0]
        q = 0.5 * equity / p_in
        pnl = side * q * (p_out - p_in) - q * (p_in + p_out) * TAKER
        qtys.append(q)
        pnls.append(pnl)
        equity += pnl
    return qtys, pnls


def check(res, trips: list[tuple[int, int, int]], reasons: list[str]) -> None:
    t = res.trades.sort("entry_ts")
    assert t["direction"].to_list() == [s for s, _, _ in trips]
    assert t["entry_ts"].to_list() == [T0 + a + 30 * S for _, a, _ in trips]
    assert t["exit_ts"].to_list() == [T0 + b + 30 * S for _, _, b in trips]
    qtys, pnls = expected(trips)
    np.testing.assert_allclose(t["qty"].to_numpy(), qtys, rtol=1e-12)
    np.testing.assert_allclose(t["pnl"].to_numpy(), pnls, rtol=1e-9)
    assert t["exit_reason"].to_list() == reasons


def test_accumulation_fade_distribution(hand_tape: Path) -> None:
    res = run_dict(config(), hand_tape)
    assert_run_invariants(res)
    # 05:00 (OI 1000 -> 1060, price 100 -> 103 at 04:58): 2 h OI +6 % > 3 %, 4 h OI +6 % > 5 %, 2 h price
    #   +3 % > 2 %: accumulation, LONG; held 2 h from the 05:00:30 fill: closed at the OI event of 07:05.
    # 09:30 (OI 900 -> 955): 1 h OI +6.1 % > 5 % while 2 h OI 955/1060 - 1 = -9.9 % < 0, 2 h price
    #   106/104 - 1 = +1.9 % > 1 %: squeeze fade, SHORT; held 1 h: closed at 10:35.
    # 12:00 (OI 955 -> 1030, price 106 -> 101 at 11:58): 2 h OI +7.9 %, 4 h OI 1030/900 - 1 = +14 %,
    #   2 h price 101/106 - 1 = -4.7 %: distribution, SHORT; held 2 h: closed at 14:05.
    trips = [(1, 5 * H, 7 * H + 5 * M), (-1, 9 * H + 30 * M, 10 * H + 35 * M), (-1, 12 * H, 14 * H + 5 * M)]
    check(res, trips, ["signal"] * 3)
    assert res.manifest["strategy_counters"] == {"accumulation": 1.0, "distribution": 1.0, "squeeze_fades": 1.0,
                                                 "hold_exits": 3.0, "opposite_exits": 0.0}
    # explanations name the conditions that held with their values (fractions)
    ex = res.decisions["explanation"].to_list()
    assert ex[0] == "BTC LONG 103.00 · score 100/100 · OI 24h +0.06 · OI 7d +0.06 · price 24h +0.03"
    assert ex[1] == "BTC SHORT 106.00 · score 100/100 · OI 4h +0.06 · OI 24h falling -0.10 · price 24h up +0.02"
    c = res.decisions.select(pl.selectors.starts_with("contrib.")).to_numpy()
    np.testing.assert_allclose(c, [[30, 30, 40, 0, 0, 0], [0, 0, 0, -40, -30, -30], [-30, -30, -40, 0, 0, 0]])


def test_opposite_setup_closes_a_held_trend(hand_tape: Path) -> None:
    res = run_dict(config(trend_hold_h=20), hand_tape)
    assert_run_invariants(res)
    # the accumulation long is still held at 09:30 when the squeeze fade (a short) appears: closed
    # there; the fade is entered at the next OI event (09:35) and held 1 h from its 09:35:30 fill
    trips = [(1, 5 * H, 9 * H + 30 * M), (-1, 9 * H + 35 * M, 10 * H + 40 * M)]
    check(res, trips, ["signal", "signal"])  # the distribution short of 12:00 is still open at the end
    assert res.manifest["strategy_counters"]["opposite_exits"] == 1.0
    assert res.decisions["action"].to_list() == [1, -1, -1]


def test_min_score_and_thresholds(hand_tape: Path) -> None:
    # a 7 % spike threshold: the 09:30 fade (1 h OI +6.1 %) no longer trades; the rest is unchanged
    res = run_dict(config(spike_pct=7.0), hand_tape)
    assert res.trades["direction"].to_list() == [1, -1]
    assert res.manifest["strategy_counters"]["squeeze_fades"] == 0.0
    # ... and a fitted artifact moving the same threshold does the same
    from emerald.backtest.engine import backtest

    fitted = backtest(load_config(config()), hand_tape, fitted={"thresholds": {"oi_4h_spike": 0.07}})
    assert fitted.trades["direction"].to_list() == [1, -1]


def test_kernel_columns_and_default_weights_match_the_triggers() -> None:
    """The kernel's column constants and its fallback weight vector (no fitted vector) agree with
    the signal columns and with what the engine packs from triggers()."""
    from emerald.backtest.engine import SignalContext
    from emerald.strategy.score import resolve
    from strategies import oi_multitimeframe as mod

    cfg = load_config(config())
    metrics = mod.signals(cfg.params, SignalContext([("demo-perp", "BTCUSDT")], "event", None))
    cols = [f"{n}.{o}" for n, m in metrics for o in m.spec.outputs]
    assert cols.index("oi.change_short") == mod.C_SHORT
    assert cols.index("oi.change_mid") == mod.C_MID
    assert cols.index("oi.change_long") == mod.C_LONG
    assert cols.index("oi.price_change") == mod.C_PRICE
    vec, _ = resolve(mod.triggers(cfg.params, cols))
    np.testing.assert_array_equal(mod.weights_nb(cfg.params.record, np.zeros(0)), vec)


def test_unknown_and_bad_params_are_rejected() -> None:
    with pytest.raises(ConfigError, match="did you mean 'long_h'"):
        load_config(config(lon_h=24))
    with pytest.raises(ConfigError, match="short_h < mid_h <= long_h"):
        load_config(config(mid_h=8))


def test_demo_tape_trades_the_planted_conditions(demo_tape: Path) -> None:
    res = run_toml("oi_multitimeframe", demo_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    # the planted windows (datasets/demo.md, open_interest): accumulation day 0 23:55 -> day 1 23:55,
    # distribution day 2 23:55 -> day 3 23:55, OI spike day 5 14:00 -> 18:00
    day0 = T0 - 3 * 24 * H  # the demo tape starts on 2024-03-01
    btc = {"accumulation": (day0 + 24 * H - 5 * M, day0 + 48 * H - 5 * M),
           "distribution": (day0 + 72 * H - 5 * M, day0 + 96 * H - 5 * M),
           "oi_spike": (day0 + 5 * 24 * H + 14 * H, day0 + 5 * 24 * H + 18 * H)}
    d = res.decisions.sort("ts")
    assert d["action"].to_list() == [1, -1, -1]  # accumulation, distribution, squeeze fade
    c = res.manifest["strategy_counters"]
    assert (c["accumulation"], c["distribution"], c["squeeze_fades"]) == (1.0, 1.0, 1.0)
    # each entry inside its planted window (24 h windows end at 23:55, the spike's 4 h at 18:00)
    for ts, kind in zip(d["ts"].to_list(), ("accumulation", "distribution", "oi_spike"), strict=True):
        assert btc[kind][0] <= ts <= btc[kind][1], (kind, ts)
    assert pl.Series(res.trades["exit_reason"]).is_in(["signal", "stop"]).all()
