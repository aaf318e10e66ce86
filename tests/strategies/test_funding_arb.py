"""funding_arb: a hand-built tape with worked-out entry, exit, funding and PnL; the demo tape's
funding regimes; the real Binance BTCUSDT perp + spot 8-hourly history (all_exchanges.csv)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from emerald.strategy.base import REPO_STRATEGIES
from emerald.tape.writer import TapeWriter
from emerald.testing.backtest import assert_run_invariants
from tests.strategies.conftest import run_dict, run_toml

S = 1_000_000_000
M = 60 * S
H = 60 * M
T0 = 1_709_510_400 * S  # 2024-03-04T00:00:00Z
PERP, SPOT = "demo-perp:BTCUSDT", "demo-spot:BTCUSDT"
PERP_TAKER, SPOT_TAKER = 5e-4, 10e-4  # emerald/model/instruments.toml
EXEC = {"initial_equity": 100_000.0, "latency_ms": 100.0, "slippage_bps": 0.0, "sizing": "fraction",
        "fraction": 0.5, "max_notional_pct": 100.0, "decay": False, "breaker": False, "allow_spot_short": True}


def quotes(ts: np.ndarray, mid: np.ndarray) -> dict[str, np.ndarray]:
    n = ts.size
    return {"ts_event": ts, "ts_recv": ts, "bid_px": mid - 1.0, "bid_qty": np.full(n, 5.0), "ask_px": mid + 1.0,
            "ask_qty": np.full(n, 5.0)}


@pytest.fixture(scope="module")
def hand_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """07:00-17:00, quotes every minute: perp mid 60,010, spot 60,000, both +1,000 from 12:00 (bid/ask
    ±1). Funding: predicted 0.01 % at 07:30, settled 0.01 % at 08:00, predicted 0.05 % at 09:00,
    settled 0.05 % at 16:00, predicted 0.005 % at 16:30 and -0.05 % at 16:40."""
    root = tmp_path_factory.mktemp("funding") / "tape"
    ts = T0 + 7 * H + np.arange(600, dtype=np.int64) * M
    up = np.where(ts >= T0 + 12 * H, 1_000.0, 0.0)
    w = TapeWriter(root)
    w.write("quotes", "demo-perp", "BTCUSDT", quotes(ts, 60_010.0 + up))
    w.write("quotes", "demo-spot", "BTCUSDT", quotes(ts, 60_000.0 + up))
    f_ts = T0 + np.array([7 * H + 30 * M, 8 * H, 9 * H, 16 * H, 16 * H + 30 * M, 16 * H + 40 * M])
    w.write("funding", "demo-perp", "BTCUSDT", {
        "ts_event": f_ts, "rate": np.array([1e-4, 1e-4, 5e-4, 5e-4, 5e-5, -5e-4]),
        "interval_ns": np.full(6, 8 * H), "next_funding_ts": np.array([8, 16, 16, 24, 24, 24]) * H + T0,
        "is_settlement": np.array([False, True, False, True, False, False])})
    w.commit()
    return root


def test_hand_tape_entry_exit_funding_pnl(hand_tape: Path) -> None:
    cfg = {"strategy": "funding_arb", "instruments": [PERP, SPOT],
           "params": {"entry_pct": 0.03, "exit_pct": 0.01, "mirror": 0}, "execution": EXEC}
    res = run_dict(cfg, hand_tape)
    assert_run_invariants(res)
    t = res.trades.sort("inst")
    # 0.05 % published at 09:00 > 0.03 %: short perp / long spot, filled at the 09:01 quotes (the
    # 09:00 quotes are not after the decision); 0.005 % at 16:30 < 0.01 %: closed at the 16:31 quotes;
    # -0.05 % at 16:40 is not traded (mirror = 0)
    assert t["inst"].to_list() == [PERP, SPOT] and t["direction"].to_list() == [-1, 1]
    assert t["entry_ts"].to_list() == [T0 + 9 * H + M] * 2
    assert t["exit_ts"].to_list() == [T0 + 16 * H + 31 * M] * 2
    assert t["entry_px"].to_list() == [60_009.0, 60_001.0]
    assert t["exit_px"].to_list() == [61_011.0, 60_999.0]
    qp, qs = 50_000 / 60_010, 50_000 / 60_000
    np.testing.assert_allclose(t["qty"].to_numpy(), [qp, qs], rtol=1e-12)
    # the 16:00 settlement of 0.05 % on the short perp, at its last mid (61,010): received
    funding = -qp * 61_010 * 5e-4
    assert t["funding"].to_list() == pytest.approx([funding, 0.0], rel=1e-9)
    pnl_p = qp * (60_009 - 61_011) - qp * (60_009 + 61_011) * PERP_TAKER - funding
    pnl_s = qs * (60_999 - 60_001) - qs * (60_001 + 60_999) * SPOT_TAKER
    assert t["pnl"].to_list() == pytest.approx([pnl_p, pnl_s], rel=1e-9)
    assert res.pnl["total"] == pytest.approx(pnl_p + pnl_s, rel=1e-9)
    assert res.manifest["strategy_counters"] == {"entries": 1.0, "rate_exits": 1.0, "unhedged_closes": 0.0}
    assert res.decisions["explanation"][0].startswith("BTC SHORT 60,010 · score 100/100 · funding % +0.05")


def test_hand_tape_mirror(hand_tape: Path) -> None:
    cfg = {"strategy": "funding_arb", "instruments": [PERP, SPOT], "params": {"mirror": 1}, "execution": EXEC}
    res = run_dict(cfg, hand_tape)
    o = res.orders.filter(pl.col("ts_decision") == T0 + 16 * H + 40 * M).sort("inst")
    assert o["inst"].to_list() == [PERP, SPOT] and o["side"].to_list() == [1, -1]  # long perp, short spot


def asof_rates(funding: pl.DataFrame, at: list[int]) -> np.ndarray:
    t = pl.DataFrame({"ts_event": at}).sort("ts_event")
    return t.join_asof(funding.select("ts_event", "rate").sort("ts_event"), on="ts_event")["rate"].to_numpy()


def test_demo_tape_trades_the_funding_regimes(demo_tape: Path) -> None:
    res = run_toml("funding_arb", demo_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    assert res.pnl["funding"] < 0  # received: the pair is always on the receiving side
    funding = pl.read_parquet(demo_tape / "funding" / "venue=demo-perp" / "symbol=BTCUSDT" / "**/*.parquet")
    d = res.decisions.filter(pl.col("inst") == PERP)
    r = asof_rates(funding, d["ts"].to_list())
    assert ((r > 3e-4) & (d["action"] == -1).to_numpy() | (r < -3e-4) & (d["action"] == 1).to_numpy()).all()


@pytest.fixture(scope="module")
def binance_8h(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Binance BTC spot and USDT-perp rows of all_exchanges.csv from 2024 (a filtered copy in
    tmp: importing all 30 series takes minutes)."""
    from emerald.tape.importers import run_import

    lines = (real_data / "funding" / "all_exchanges.csv").read_text().splitlines()
    keep = [lines[0]] + [x for x in lines[1:] if x.startswith("2024") and (
        ",binance,bitcoin,BTC/USDT,spot," in x or ",binance,bitcoin,BTCUSDT,perpetual," in x)]
    tmp = tmp_path_factory.mktemp("binance8h")
    (tmp / "all_exchanges.csv").write_text("\n".join(keep) + "\n")
    run_import("funding-csv", [tmp / "all_exchanges.csv"], tmp / "tape")
    return tmp / "tape"


def test_real_binance_8h_history(binance_8h: Path) -> None:
    raw = tomllib.loads((REPO_STRATEGIES / "funding_arb.toml").read_text())
    raw["instruments"] = ["binance-usdm:BTCUSDT", "binance-spot:BTCUSDT"]
    # 8-hourly bars: an order waits for the next bar (never expires); the legs revalue one bar event
    # after the other, which the per-event drawdown breaker would read as a loss, so it is off
    raw["execution"].update(expiry_s=0.0, breaker=False)
    res = run_dict(raw, binance_8h)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    funding = pl.read_parquet(binance_8h / "funding" / "venue=binance-usdm" / "symbol=BTCUSDT" / "**/*.parquet")
    d = res.decisions.filter(pl.col("inst") == "binance-usdm:BTCUSDT")
    assert (asof_rates(funding, d["ts"].to_list()) > 3e-4).all()  # 2024 H1: only positive-rate entries
    perp = res.trades.filter(pl.col("inst") == "binance-usdm:BTCUSDT")
    assert (perp["direction"] == -1).all() and (perp["funding"] < 0).all()  # short perp, funding received
