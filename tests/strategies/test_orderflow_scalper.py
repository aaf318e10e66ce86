"""orderflow_scalper: the level hierarchy and the confluence score on hand-made signal rows; a
hand-built tape whose entry and three exits (cascade reversal, adverse ticks, trailing stop) follow
by hand arithmetic; a run on the demo tape with the rejection counts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emerald.backtest.engine import SignalContext
from emerald.errors import ConfigError
from emerald.execution import kernels as K
from emerald.strategy.base import load_config
from emerald.tape.importers import run_import
from emerald.tape.writer import TapeWriter
from emerald.testing.backtest import assert_run_invariants
from strategies import orderflow_scalper as S
from tests.strategies.conftest import run_dict, run_toml

SEC = 1_000_000_000
T0 = 1_709_254_800 * SEC  # 2024-03-01 01:00:00 UTC: no funding settlement in the hand tapes
VENUE, SYMBOL = "demo-perp", "BTCUSDT"


def config(**params: Any) -> dict[str, Any]:
    return {"strategy": "orderflow_scalper", "instruments": [f"{VENUE}:{SYMBOL}"], "params": params,
            "execution": {"latency_ms": 0, "slippage_bps": 0, "taker_bps": 0, "maker_bps": 0, "decay": False,
                          "sizing": "fraction", "fraction": 1.0, "max_notional_pct": 100}}


# ------------------------------------------------------------------ the kernel on hand-made rows

def passing_row(side: int = 1) -> np.ndarray:
    """Every level passes on ``side``; confluence: zone 2.0 + |z| 2.5 (1.5) + |autocorr| 0.1 < 0.3
    (1.0) + the opposite zone ahead as target (0.5) = 5.0."""
    r = np.full(len(S.COLUMNS), np.nan)
    r[[S.C_ADX, S.C_PERS, S.C_HH, S.C_ATR]] = 30.0, 0.6, side, 100.0  # ATR 100 of 60,000 = 0.17 %
    r[[S.C_AT_VAL, S.C_AT_VAH, S.C_IN_FVG, S.C_FVG_SIDE]] = 0.0, 0.0, 0.0, 0.0
    r[S.C_IN_DEMAND if side > 0 else S.C_IN_SUPPLY] = 1.0
    r[S.C_IN_SUPPLY if side > 0 else S.C_IN_DEMAND] = 0.0
    r[S.C_SUPPLY_STR if side > 0 else S.C_DEMAND_STR] = 70.0
    r[S.C_CASCADE] = side
    r[S.C_VOLUME] = 2.0
    r[S.C_UP if side > 0 else S.C_DOWN] = 3.0
    r[S.C_DOWN if side > 0 else S.C_UP] = 0.0
    r[S.C_Z] = -2.5 * side
    r[S.C_AC] = 0.1
    return r


class Kernel:
    """Calls ``decide_nb`` on one trade at 60,000 with explicit state."""

    def __init__(self, **params: Any) -> None:
        self.sp = load_config(config(**params)).params.record
        self.pos = np.zeros(1, K.POS_DTYPE)
        self.ords = np.zeros(1, K.ORDER_STATE)
        self.acct = np.zeros(1, K.ACCOUNT_DTYPE)
        self.intents = K.new_intents(4)
        self.f = np.full((8, 1), np.nan)
        self.f[0, 0] = 60_000.0

    def __call__(self, row: np.ndarray, fitted: np.ndarray | None = None) -> int:
        return S.decide_nb(0, np.zeros(1, np.int64), np.full(1, 6, np.int8), np.zeros(1, np.int32), self.f, row,
                           self.pos, self.ords, self.acct, self.sp, np.zeros(0) if fitted is None else fitted,
                           self.intents)

    def counts(self) -> dict[str, float]:
        return dict(zip(S.COUNTERS, self.acct[0]["mem"][: len(S.COUNTERS)], strict=True))


@pytest.mark.parametrize("side", [1, -1])
def test_kernel_passes_all_levels_and_scores_the_confluence(side: int) -> None:
    k = Kernel()
    assert k(passing_row(side)) == 1
    it = k.intents[0]
    assert it["action"] == (K.LONG if side > 0 else K.SHORT)
    assert it["score"] == 5.0 and it["conviction"] == 1  # 5 <= 5.0 < 7: medium
    want = {"zone": 2.0, "z 2σ": 0.75, "z 1σ": 0.75, "AC random": 1.0, "target zone": 0.5}
    assert list(it["contrib"][: S.N_TRIGGERS]) == [side * want.get(label, 0.0) for label in S.LABELS]
    assert k.counts()["signals"] == 1 == k.counts()["decisions"]


def test_kernel_rejections_are_counted_per_level() -> None:
    k = Kernel()
    cases: list[tuple[str, dict[int, float]]] = [
        ("warmup", {S.C_ADX: np.nan}),
        ("warmup", {S.C_PERS: np.nan}),
        ("rejected_level1_regime", {S.C_ADX: 25.0}),  # ADX must exceed 25
        ("rejected_level1_regime", {S.C_PERS: 0.55}),
        ("rejected_level1_regime", {S.C_MRS: 0.6}),  # reverts too often
        ("rejected_level1_regime", {S.C_HH: 0.0}),  # no higher highs / lows: ranging
        ("rejected_level1_regime", {S.C_ATR: 50.0}),  # 0.083 % of the price < 0.1 %
        ("rejected_level2_zone", {S.C_IN_DEMAND: 0.0}),
        ("rejected_level2_zone", {S.C_IN_DEMAND: 0.0, S.C_AT_VAH: 1.0}),  # the short side's zone
        ("rejected_level2_zone", {S.C_IN_DEMAND: 0.0, S.C_IN_FVG: 1.0, S.C_FVG_SIDE: -1.0}),  # a bearish gap
        ("rejected_level3_cascade", {S.C_CASCADE: 0.0}),
        ("rejected_level3_cascade", {S.C_CASCADE: -1.0}),
        ("rejected_level4_bounce", {S.C_VOLUME: 1.5}),  # must exceed 1.5 x
        ("rejected_level4_bounce", {S.C_UP: 1.0}),  # one up-tick < bounce_ticks 2
        # zone 2.0 + 0.5 target only: 2.5 < 3
        ("rejected_confluence", {S.C_Z: 0.5, S.C_AC: np.nan}),
    ]
    expected = dict.fromkeys(S.COUNTERS, 0.0)
    for slot, change in cases:
        row = passing_row()
        for col, v in change.items():
            row[col] = v
        assert k(row) == 0, slot
        expected[slot] += 1
        expected["decisions"] += 1
        assert k.counts() == expected, slot
    # passing levels: mean reversion NaN (no resolved displacement) is not a ranging market
    row = passing_row()
    row[S.C_MRS] = np.nan
    assert k(row) == 1
    # the confluence 2.0 + 0.5 + 0.5 (0.3 < |r| < 0.6: half) = 3.0 trades at low conviction
    row = passing_row()
    row[[S.C_Z, S.C_AC]] = 0.5, 0.45
    assert k(row) == 1 and k.intents[0]["score"] == 3.0 and k.intents[0]["conviction"] == 0
    # an FVG, the value-area low and an autocorrelation of 0.7 add 1.5 + 1.5 + 1.0: 8.0, high conviction
    row = passing_row()
    row[[S.C_IN_FVG, S.C_FVG_SIDE, S.C_AT_VAL, S.C_AC]] = 1.0, 1.0, 1.0, 0.7
    assert k(row) == 1 and k.intents[0]["score"] == 8.0 and k.intents[0]["conviction"] == 2
    expected["decisions"] += 3
    expected["signals"] += 3
    assert k.counts() == expected


def test_kernel_is_silent_in_a_position_and_reads_fitted_weights() -> None:
    k = Kernel()
    k.pos[0]["qty"] = 1.0
    assert k(passing_row()) == 0 and k.counts()["decisions"] == 0
    k.pos[0]["qty"] = 0.0
    k.ords[0]["active"] = True
    assert k(passing_row()) == 0 and k.counts()["decisions"] == 0
    k.ords[0]["active"] = False
    fitted = np.zeros(2 * S.N_TRIGGERS)
    fitted[S.LABELS.index("zone")] = 4.0  # only the zone counts, 4 points
    fitted[S.N_TRIGGERS:] = S.THRESHOLDS
    assert k(passing_row(), fitted) == 1 and k.intents[0]["score"] == 4.0


# ------------------------------------------------------------------ a hand-made tape

CYCLE = (0.0, 1.5, 1.0, 0.5)


def staircase() -> list[tuple[float, float, float, int]]:
    """Ten 1-minute bars k = 0..9, a trade every 2 s (t = 60k + 1 + 2m, m = 0..29), qty 1, buyer
    when m is even, at L_k + CYCLE[m % 4], L_k = 100 + 2k: high L_k + 1.5, close = high. Every bar
    makes a higher high and a higher low (structure +1, +DM 2, -DM 0: ADX 100; all returns up:
    persistence 1), true range |H_k - C_k-1| = 2.0 = ATR (1.7 % of the price); every three bars
    leave a bullish gap [L_k-2 + 1.5, L_k] = [97.5 + 2k, 100 + 2k] (2.5 %), never revisited."""
    return [(60 * k + 1 + 2 * m, 100.0 + 2 * k + CYCLE[m % 4], 1.0, 1 if m % 2 == 0 else -1)
            for k in range(10) for m in range(30)]


# the regime, cascade, volume and z-score windows shortened to fit a 10-minute tape; the value-area
# edges switched off (edge tolerance 0) so the fair-value gap is the only zone
TAPE_PARAMS = {"regime_bar_s": 60, "adx_n": 3, "persist_n": 4, "profile_edge_pct": 0.0, "cascade_fast_s": 10,
               "cascade_mid_s": 30, "cascade_slow_s": 90, "vol_window_s": 10, "vol_periods": 5,
               "zscore_window_s": 60, "autocorr_bar_s": 60}

# The dip into the last gap [115.5, 118] (bars 7-9) and the buying that answers it. At t = 601 the
# 10 s flow is 2 buys : 3 sells (no cascade, level 3). At 602 the ratios are 7/3 = 2.33 (10 s) >
# 12/8 = 1.5 (30 s) > 27/23 = 1.17 (90 s) with 2.33 > 2 (cascade) and volume 10 vs 5 a window (2x),
# but one up-tick (level 4). At 603: 11/3 > 16/8 > 31/23, volume 14 / 5, two up-ticks: entry.
ENTRY = [(601, 116.3, 1.0, -1), (602, 116.4, 5.0, 1), (603, 116.5, 5.0, 1), (604, 116.6, 1.0, 1)]
QTY = 100_000 * 1.0 * 0.4 / 116.5  # fraction 1.0 x conf_low 0.4 of equity, at the decision price

EXITS = {
    # 10 s flow 11 buys : 32 sells = 0.34 < 30 s 16 : 37 = 0.43 < 90 s 31 : 52 = 0.60 at 607 (at 606:
    # 12 : 22 = 0.55, not below 0.5); unchanged prices after the first tick keep the adverse count at 1
    "cascade_reversal": ([(605, 116.5, 10.0, -1), (606, 116.5, 10.0, -1), (607, 116.5, 10.0, -1),
                          (608, 116.5, 1.0, 1)], 116.5, 608),
    # five consecutive down-ticks within 15 s at a loss (< 0.3 % profit: 5 end the trade)
    "adverse_moves": ([(605, 116.55, 1.0, -1), (606, 116.5, 1.0, -1), (607, 116.45, 1.0, -1),
                       (608, 116.4, 1.0, -1), (609, 116.35, 1.0, -1), (610, 116.35, 1.0, 1)], 116.35, 610),
    # best 117.3, trailing level 117.3 x 0.995 = 116.7135; 116.7 is through it (one down-tick only)
    "trailing_stop": ([(606, 116.8, 1.0, 1), (608, 117.3, 1.0, 1), (610, 116.7, 1.0, -1), (612, 116.7, 1.0, 1)],
                      116.7, 612),
}


def write_trades(root: Path, rows: list[tuple[float, float, float, int]]) -> Path:
    rows = [*rows, (3600, rows[-1][1], 1.0, 1)]  # an hour-long run (compute_stats' CAGR overflows on minutes)
    tr = np.array(rows, dtype=float)
    ts = T0 + np.round(tr[:, 0] * SEC).astype(np.int64)
    with TapeWriter(root, strict=True) as w:
        w.write("trades", VENUE, SYMBOL, {"ts_event": ts, "ts_recv": ts, "price": tr[:, 1], "qty": tr[:, 2],
                                          "side": tr[:, 3].astype(np.int8),
                                          "trade_id": np.arange(len(tr), dtype=np.int64)})
    return root


def test_hand_tape_signals_are_as_designed() -> None:
    """The facts the tape is built on, recomputed here from the rows with numpy."""
    rows = staircase() + ENTRY
    t = np.array([r[0] for r in rows])
    px = np.array([r[1] for r in rows])
    q = np.array([r[2] for r in rows])
    side = np.array([r[3] for r in rows])

    def ratio(at: float, span: float) -> float:
        m = (t > at - span) & (t <= at)
        return q[m & (side > 0)].sum() / q[m & (side < 0)].sum()

    assert ratio(601, 10) < 2
    assert ratio(602, 10) > 2 and ratio(602, 10) > ratio(602, 30) > ratio(602, 90)
    assert ratio(603, 10) > 2 and ratio(603, 10) > ratio(603, 30) > ratio(603, 90)
    w = (t > 543) & (t <= 603)  # the 60 s z-score window at the decision: beyond 2 sigma
    z = (116.5 - px[w].mean()) / px[w].std()
    assert z < -2


@pytest.mark.parametrize("reason", list(EXITS))
def test_hand_tape_entry_and_exit(tmp_path: Path, reason: str) -> None:
    path, exit_px, exit_t = EXITS[reason]
    res = run_dict(config(**TAPE_PARAMS), write_trades(tmp_path / "tape", staircase() + ENTRY + path))
    assert_run_invariants(res)
    assert res.trades.height == 1
    row = res.trades.row(0, named=True)
    assert (row["direction"], row["entry_ts"], row["exit_ts"]) == (1, T0 + 604 * SEC, T0 + exit_t * SEC)
    assert (row["entry_px"], row["exit_px"], row["exit_reason"]) == (116.6, exit_px, reason)
    assert row["qty"] == pytest.approx(QTY, rel=1e-12)
    assert row["pnl"] == pytest.approx(QTY * (exit_px - 116.6), rel=1e-12)
    d = res.decisions.row(0, named=True)
    # confluence: in the gap 1.5 + beyond 2 sigma 0.75 + beyond 1 sigma 0.75 = 3.0 (low conviction)
    assert (d["ts"], d["score"]) == (T0 + 603 * SEC, 3.0)
    assert (d["contrib.FVG"], d["contrib.z 2σ"], d["contrib.z 1σ"]) == (1.5, 0.75, 0.75)
    c = res.manifest["strategy_counters"]
    assert c["signals"] == 1
    # the 300 staircase trades are warm-up or have no zone (the trend is clean: level 1 passes); 601
    # stops at the cascade, 602 at the bounce. After the exit fill, flat again: the selling cascade
    # (cascade exit) or a 10 s ratio of exactly 12 : 6 = 2.0 (adverse exit) stops at level 3; after the
    # trailing stop the ratios cascade (9 > 18/7 > 33/22, volume 10 vs 6 a window) but the last move
    # was down (level 4). The closing trade an hour later sees bar 10's lower high: level 1.
    assert c["warmup"] + c["rejected_level2_zone"] == 300 and c["warmup"] > 0 and c["rejected_level2_zone"] > 0
    assert c["rejected_level1_regime"] == 1
    assert c["rejected_level3_cascade"] == 1 + (reason != "trailing_stop")
    assert c["rejected_level4_bounce"] == 1 + (reason == "trailing_stop")
    assert c["decisions"] == sum(v for k, v in c.items() if k != "decisions")


# ------------------------------------------------------------------ config, demo tape

def test_config_checks() -> None:
    with pytest.raises(ConfigError, match="did you mean 'adx_min'"):
        load_config(config(adx_mn=20))
    with pytest.raises(ConfigError, match="score_min <= score_standard"):
        load_config(config(score_min=6))
    with pytest.raises(ConfigError, match="fast < mid < slow"):
        load_config(config(cascade_fast_s=300))
    cfg = load_config(config())
    with pytest.raises(ConfigError, match="event mode"):
        cfg.strategy.signals(cfg.params, SignalContext(cfg.instruments, "bars", 60 * SEC))
    ex = cfg.execution
    assert (ex["cascade_long_col"], ex["cascade_short_col"], ex["adverse_exits"], ex["trail_pct"]) == \
        ("cascade.reversal_of_long", "cascade.reversal_of_short", True, 0.5)
    cols = [f"{n}.{o}" for n, m in cfg.strategy.signals(cfg.params, SignalContext(cfg.instruments, "event", None))
            for o in m.spec.outputs]
    assert cols == S.COLUMNS


def test_demo_tape(demo_tape: Path) -> None:
    res = run_toml("orderflow_scalper", demo_tape)
    assert res.trades.height > 0
    assert_run_invariants(res)
    c = res.manifest["strategy_counters"]
    assert list(c) == list(S.COUNTERS)
    assert c["decisions"] == sum(v for k, v in c.items() if k != "decisions")
    assert c["signals"] == res.decisions.height == res.orders.filter(res.orders["reason"] == "signal").height
    assert all(c[k] > 0 for k in ("warmup", "rejected_level1_regime", "rejected_level2_zone",
                                  "rejected_level3_cascade", "rejected_level4_bounce"))
    assert (res.decisions["score"] >= 3.0).all()
    assert set(res.trades["exit_reason"]) <= {"cascade_reversal", "adverse_moves", "trailing_stop"}
    assert not math.isnan(res.stats["total_return_pct"])


def test_real_tardis_trades(real_data: Path, tmp_path: Path) -> None:
    """Two hours of real Binance futures trades (Tardis CSV, aggressor sides): too short for the
    15-minute regime (the ADX alone needs 28 bars), so the regime runs on 1-minute bars. Every trade
    is a decision while flat; each lands in one counter; the run keeps the backtester's invariants."""
    csv = real_data / "tardis" / "trades.csv"
    n_trades = len(csv.read_text().splitlines()) - 1
    run_import("tardis", [csv], tmp_path / "tape")
    res = run_dict({"strategy": "orderflow_scalper", "instruments": ["binance-futures:BTCUSDT"],
                    "params": {"regime_bar_s": 60, "adx_n": 5, "persist_n": 20},
                    "execution": {"allow_missing_funding": True}}, tmp_path / "tape")
    assert_run_invariants(res)
    c = res.manifest["strategy_counters"]
    assert c["decisions"] == sum(v for k, v in c.items() if k != "decisions")
    assert c["decisions"] <= n_trades
    if res.orders.height == 0:  # (so far this sample never trends on 1-minute bars) every trade was a decision
        assert c["decisions"] == n_trades
