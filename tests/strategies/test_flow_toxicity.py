"""flow_toxicity: a hand-built trade tape whose toxicity crosses 2 in a steady up-move, with the
entry, the 15-minute minimum hold, the move exit and the PnL worked out here; the demo tape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emerald.backtest.engine import SignalContext
from emerald.errors import ConfigError
from emerald.strategy.base import load_config
from emerald.tape.writer import TapeWriter
from emerald.testing.backtest import assert_run_invariants
from tests.strategies.conftest import run_dict, run_toml

S = 1_000_000_000
T0 = 1_709_546_400 * S  # 2024-03-04T10:00:00Z
PERP = "demo-perp:BTCUSDT"
TAKER = 5e-4  # demo-perp taker fee (emerald/model/instruments.toml)
EXEC = {"initial_equity": 100_000.0, "latency_ms": 100.0, "slippage_bps": 0.0, "sizing": "fraction", "fraction": 0.5,
        "decay": False, "breaker": False, "trail_pct": None, "max_hold_s": 3600.0}


def minute_prices() -> np.ndarray:
    """One price per minute, 60 minutes: A (0-29) zig-zag with steps +1, -6 (impacts alternate
    ~1 and ~6 bp: toxicity (1+6)/(6-1) = 1.4, at most 1.84 over three impacts 6, 1, 6); B (30-39)
    an up-move with steps +3, +2 (impacts 3 and 2 bp: toxicity 5); C (40-59) a down-move with steps
    -1, -6 (toxicity 1.4 again)."""
    steps = [1.0 if k % 2 == 0 else -6.0 for k in range(29)]
    steps += [3.0 if k % 2 == 0 else 2.0 for k in range(10)]
    steps += [-1.0 if k % 2 == 0 else -6.0 for k in range(20)]
    return 10_000.0 + np.concatenate([[0.0], np.cumsum(steps)])


P = minute_prices()
TRADE_TS = T0 + np.arange(360, dtype=np.int64) * 10 * S  # a trade every 10 s, six per minute, qty 1
TRADE_PX = np.repeat(P, 6)


@pytest.fixture(scope="module")
def hand_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toxicity") / "tape"
    n = TRADE_TS.size
    w = TapeWriter(root)
    w.write("trades", "demo-perp", "BTCUSDT", {
        "ts_event": TRADE_TS, "ts_recv": TRADE_TS, "price": TRADE_PX, "qty": np.ones(n),
        "side": np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8), "trade_id": np.arange(n, dtype=np.int64)})
    w.commit()
    return root


def toxicity(m: int) -> float:
    """Toxicity seen during minute ``m``: every minute has the same volume (ratio 1), so the
    impact of minute c is |P_c / P_(c-1) - 1|, defined once 10 earlier minutes exist; mean / std
    of the impacts of minutes m-10 .. m-1."""
    imp = [abs(P[c] / P[c - 1] - 1) for c in range(max(m - 10, 10), m)]
    return float(np.mean(imp) / np.std(imp)) if len(imp) >= 2 and np.std(imp) > 0 else float("nan")


def zscore(t: int) -> float:
    """Last trade price against the trades of the last 10 minutes."""
    x = TRADE_PX[(TRADE_TS > t - 600 * S) & (TRADE_TS <= t)]
    return float((x[-1] - x.mean()) / x.std())


def config(**params: object) -> dict:
    return {"strategy": "flow_toxicity", "instruments": [PERP], "params": params, "execution": dict(EXEC)}


def expected_entry() -> int:
    tox = [toxicity(m) for m in range(60)]
    m_e = next(m for m in range(60) if tox[m] > 2.0)
    assert m_e > 30 and max(t for t in tox[:31] if t == t) < 1.9  # A never comes near 2
    t = T0 + m_e * 60 * S  # the first trade of minute m_e sees the new toxicity
    assert zscore(t) > 1.0  # ... at the top of the up-move: LONG
    return m_e


def test_entry_min_hold_move_exit_and_pnl(hand_tape: Path) -> None:
    res = run_dict(config(), hand_tape)
    assert_run_invariants(res)
    m_e = expected_entry()
    t_dec = T0 + m_e * 60 * S
    entry_ts = t_dec + 10 * S  # filled at the next trade (latency 100 ms)
    # no exit before 15 minutes; at entry + 900 s (a trade time) the price has been falling for
    # several minutes, below its 10-minute mean: close, filled at the next trade
    exit_dec = entry_ts + 900 * S
    assert zscore(exit_dec) < -1.0
    exit_ts = exit_dec + 10 * S
    assert res.trades.height == 1
    tr = res.trades.row(0, named=True)
    assert (tr["direction"], tr["entry_ts"], tr["exit_ts"], tr["exit_reason"]) == (1, entry_ts, exit_ts, "signal")
    entry_px = TRADE_PX[TRADE_TS == entry_ts][0]
    exit_px = TRADE_PX[TRADE_TS == exit_ts][0]
    assert (tr["entry_px"], tr["exit_px"]) == (entry_px, exit_px)
    qty = 0.5 * 100_000 / TRADE_PX[TRADE_TS == t_dec][0]  # half the equity at the decision's price
    assert tr["qty"] == pytest.approx(qty, rel=1e-12)
    pnl = qty * (exit_px - entry_px) - qty * (entry_px + exit_px) * TAKER
    assert tr["pnl"] == pytest.approx(pnl, rel=1e-9)
    # after the exit the toxicity stays below 2 (the down-move zig-zags): no second entry
    assert all(toxicity(m) <= 2.0 for m in range((exit_ts - T0) // (60 * S), 60))
    assert res.manifest["strategy_counters"] == {"entries_long": 1.0, "entries_short": 0.0, "move_exits": 1.0}
    assert res.decisions["explanation"][0] == (f"BTC LONG {TRADE_PX[TRADE_TS == t_dec][0]:,.0f} · score 100/100 · "
                                               f"toxicity {toxicity(m_e):+.2f}")


def test_without_min_hold_the_first_turn_exits(hand_tape: Path) -> None:
    res = run_dict(config(min_hold_s=0), hand_tape)
    m_e = expected_entry()
    entry_ts = T0 + m_e * 60 * S + 10 * S
    later = TRADE_TS[TRADE_TS > entry_ts]
    first_turn = next(int(t) for t in later if zscore(int(t)) < 0.0)
    tr = res.trades.row(0, named=True)
    assert (tr["entry_ts"], tr["exit_ts"]) == (entry_ts, first_turn + 10 * S)
    assert first_turn - entry_ts < 900 * S


def test_max_hold_closes_at_sixty_minutes_or_less(hand_tape: Path) -> None:
    cfg = config()
    cfg["execution"]["max_hold_s"] = 300.0
    res = run_dict(cfg, hand_tape)
    assert_run_invariants(res)
    entry_ts = T0 + expected_entry() * 60 * S + 10 * S
    tr = res.trades.row(0, named=True)
    # the engine's exit at the first trade >= entry + 300 s, filled at the next trade
    assert (tr["exit_ts"], tr["exit_reason"]) == (entry_ts + 310 * S, "max_hold")


def test_kernel_columns_and_default_weights_match_the_triggers() -> None:
    """The kernel's column constants and its fallback weight vector (no fitted vector) agree with
    the signal columns and with what the engine packs from triggers()."""
    from emerald.backtest.engine import SignalContext
    from emerald.strategy.score import resolve
    from strategies import flow_toxicity as mod

    cfg = load_config(config())
    metrics = mod.signals(cfg.params, SignalContext([("demo-perp", "BTCUSDT")], "event", None))
    cols = [f"{n}.{o}" for n, m in metrics for o in m.spec.outputs]
    assert cols.index("tox.toxicity") == mod.C_TOX
    assert cols.index("move.z_score") == mod.C_Z
    vec, _ = resolve(mod.triggers(cfg.params, cols))
    np.testing.assert_array_equal(mod.weights_nb(cfg.params.record, np.zeros(0)), vec)


def test_unknown_and_bad_params_are_rejected() -> None:
    with pytest.raises(ConfigError, match="did you mean 'toxicity'"):
        load_config(config(toxicty=2.0))
    with pytest.raises(ConfigError, match="n_intervals"):
        load_config(config(n_intervals=1))
    bars = load_config({**config(), "mode": "bars", "bar": "1m"})
    with pytest.raises(ConfigError, match="event mode"):
        bars.strategy.signals(bars.params, SignalContext([("demo-perp", "BTCUSDT")], "bars", 60 * S))


def test_demo_tape(demo_tape: Path) -> None:
    res = run_toml("flow_toxicity", demo_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    c = res.manifest["strategy_counters"]
    assert c["entries_long"] + c["entries_short"] == res.decisions.height >= res.trades.height
    # every entry: held at most the configured hour (+ the exit's fill), never reversed while open
    held = (res.trades["exit_ts"] - res.trades["entry_ts"]).to_numpy()
    assert held.max() <= 3600 * S + 60 * S
    assert set(res.trades["exit_reason"].unique()) <= {"signal", "max_hold", "trailing_stop"}
