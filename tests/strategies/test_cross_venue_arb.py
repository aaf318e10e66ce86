"""cross_venue_arb: a hand-built tape of two perp venues with worked-out entries, exits and PnL; the
demo tape (perp vs spot of ETH: the demo has one venue of each kind); the real Binance capture."""

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
H = 3600 * S
T0 = 1_709_510_400 * S  # 2024-03-04T00:00:00Z
A, B = "binance-usdm:BTCUSDT", "binance-futures:BTCUSDT"  # two USD-M perp venues of the registry
A_TAKER, B_TAKER = 5e-4, 4e-4  # their taker fees (emerald/model/instruments.toml)
EXEC = {"initial_equity": 100_000.0, "latency_ms": 100.0, "slippage_bps": 0.0, "sizing": "fraction",
        "fraction": 0.5, "max_notional_pct": 100.0, "decay": False, "breaker": False}


def quotes(ts: np.ndarray, mid: np.ndarray) -> dict[str, np.ndarray]:
    n = ts.size
    return {"ts_event": ts, "ts_recv": ts, "bid_px": mid - 1.0, "bid_qty": np.full(n, 5.0), "ask_px": mid + 1.0,
            "ask_qty": np.full(n, 5.0)}


@pytest.fixture(scope="module")
def hand_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """01:00-02:00 (no funding settlement), quotes every 10 s, bid/ask = mid ± 1: venue B mid 60,000;
    venue A 60,000 except 60,150 (+25 bps) in [01:10, 01:30) and 59,880 (-20 bps) in [01:40, 01:50)."""
    root = tmp_path_factory.mktemp("xvenue") / "tape"
    ts = T0 + H + np.arange(360, dtype=np.int64) * 10 * S
    a = np.full(360, 60_000.0)
    a[(ts >= T0 + H + 600 * S) & (ts < T0 + H + 1800 * S)] = 60_150.0
    a[(ts >= T0 + H + 2400 * S) & (ts < T0 + H + 3000 * S)] = 59_880.0
    w = TapeWriter(root)
    w.write("quotes", "binance-usdm", "BTCUSDT", quotes(ts, a))
    w.write("quotes", "binance-futures", "BTCUSDT", quotes(ts, np.full(360, 60_000.0)))
    w.commit()
    return root


def config(**params: float) -> dict:
    return {"strategy": "cross_venue_arb", "instruments": [A, B],
            "params": {"fee_a_bps": 5.0, "fee_b_bps": 4.0, "margin_bps": 5.0, "exit_bps": 0.0, **params},
            "execution": EXEC}


def test_hand_tape_fee_threshold_entries_exits_pnl(hand_tape: Path) -> None:
    # threshold 2 x (5 + 4) + 5 = 23 bps: the +25 bps gap trades, the -20 bps one does not
    res = run_dict(config(), hand_tape)
    assert_run_invariants(res)
    t = res.trades.sort(pl.col("inst") == B)  # venue A first
    assert t["inst"].to_list() == [A, B] and t["direction"].to_list() == [-1, 1]
    # decided at 01:10:00, filled at the next quotes (01:10:10); gap 0 at 01:30:00, closed at 01:30:10
    assert t["entry_ts"].to_list() == [T0 + H + 610 * S] * 2
    assert t["exit_ts"].to_list() == [T0 + H + 1810 * S] * 2
    assert t["entry_px"].to_list() == [60_149.0, 60_001.0] and t["exit_px"].to_list() == [60_001.0, 59_999.0]
    qa, qb = 50_000 / 60_150, 50_000 / 60_000
    np.testing.assert_allclose(t["qty"].to_numpy(), [qa, qb], rtol=1e-12)
    pnl_a = qa * (60_149 - 60_001) - qa * (60_149 + 60_001) * A_TAKER
    pnl_b = qb * (59_999 - 60_001) - qb * (60_001 + 59_999) * B_TAKER
    assert t["pnl"].to_list() == pytest.approx([pnl_a, pnl_b], rel=1e-9)
    assert res.pnl["total"] == pytest.approx(pnl_a + pnl_b, rel=1e-9)
    assert res.manifest["strategy_counters"] == {"entries": 1.0, "convergence_exits": 1.0, "unhedged_closes": 0.0}
    assert res.decisions["explanation"][0].startswith("BTC SHORT 60,150 · score 100/100 · gap bps +25.00")
    assert res.firings["signal"].to_list() == ["gap"] and res.firings["threshold"].to_list() == [23.0]
    # dearer venue B fees: threshold 2 x (5 + 10) + 5 = 35 bps, nothing trades
    assert run_dict(config(fee_b_bps=10.0), hand_tape).trades.height == 0
    # a lower margin: threshold 2 x 9 + 1 = 19 bps, the -20 bps gap trades too (long A / short B)
    both = run_dict(config(margin_bps=1.0), hand_tape).trades.sort("entry_ts", pl.col("inst") == B)
    assert both["direction"].to_list() == [-1, 1, 1, -1]


def test_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="did you mean 'margin_bps'"):
        load_config({**config(), "params": {"margin": 5.0}})
    with pytest.raises(ConfigError, match="exit_bps"):
        load_config(config(exit_bps=30.0))


def test_demo_tape(demo_tape: Path) -> None:
    res = run_toml("cross_venue_arb", demo_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    # datasets/demo.md: ETH (asset 1) excursions start 03:00 + 2:30 + 37 min x day, last 18 min,
    # positive when day + 1 is even
    day0 = 1_709_251_200 * S
    planted = [(day0 + d * 24 * H + 5 * H + 1800 * S + d * 37 * 60 * S, 1 if (d + 1) % 2 == 0 else -1)
               for d in range(7)]
    a = res.trades.filter(pl.col("inst") == "demo-perp:ETHUSDT").sort("entry_ts")
    assert a.height == len(planted)
    for row, (start, sign) in zip(a.iter_rows(named=True), planted, strict=True):
        assert start <= row["entry_ts"] <= start + 18 * 60 * S, row
        assert row["direction"] == -sign


@pytest.fixture(scope="module")
def binance_tape(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from emerald.tape.importers import run_import

    root = tmp_path_factory.mktemp("binance") / "tape"
    run_import("binance-raw", [real_data / "binance-raw" / "usdm_btcusdt_20230405.dat.gz"], root, venue="binance-usdm")
    run_import("binance-raw", [real_data / "binance-raw" / "spot_btcusdt_20230405.dat.gz"], root, venue="binance-spot")
    return root


def asof_gap_bps(root: Path, at: list[int]) -> np.ndarray:
    def mids(venue: str) -> pl.DataFrame:
        q = pl.read_parquet(root / "quotes" / f"venue={venue}" / "symbol=BTCUSDT" / "**/*.parquet")
        return q.select("ts_event", ((pl.col("bid_px") + pl.col("ask_px")) / 2).alias(venue)).sort("ts_event")

    t = pl.DataFrame({"ts_event": at}).sort("ts_event")
    j = t.join_asof(mids("binance-usdm"), on="ts_event").join_asof(mids("binance-spot"), on="ts_event")
    return ((j["binance-usdm"] - j["binance-spot"]) / j["binance-spot"] * 1e4).to_numpy()


def test_real_binance_capture(binance_tape: Path) -> None:
    inst = ["binance-usdm:BTCUSDT", "binance-spot:BTCUSDT"]
    cfg = {"strategy": "cross_venue_arb", "instruments": inst, "execution": {**EXEC, "allow_spot_short": True}}
    assert run_dict(cfg, binance_tape).trades.height == 0  # the gap (2-7 bps) never pays 35 bps
    spot = pl.read_parquet(binance_tape / "quotes" / "venue=binance-spot" / "symbol=BTCUSDT" / "**/*.parquet")
    assert np.nanmax(np.abs(asof_gap_bps(binance_tape, spot["ts_event"].to_list()))) < 35.0
    res = run_dict({**cfg, "params": {"fee_a_bps": 0.0, "fee_b_bps": 0.0, "margin_bps": 5.0, "exit_bps": 3.0}},
                   binance_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    d = res.decisions.filter(pl.col("inst") == inst[0])
    assert (asof_gap_bps(binance_tape, d["ts"].to_list()) < -5.0).all() and (d["action"] == 1).all()
