"""basis_arb: a hand-built perp/spot tape with worked-out entries, exits and PnL; the demo tape's
planted basis excursions; the real Binance BTCUSDT perp + spot capture."""

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
PERP, SPOT = "demo-perp:BTCUSDT", "demo-spot:BTCUSDT"
PERP_TAKER, SPOT_TAKER = 5e-4, 10e-4  # demo-perp / demo-spot taker fees (emerald/model/instruments.toml)
EXEC = {"initial_equity": 100_000.0, "latency_ms": 100.0, "slippage_bps": 0.0, "sizing": "fraction",
        "fraction": 0.5, "max_notional_pct": 100.0, "decay": False, "breaker": False, "allow_spot_short": True}


def quotes(ts: np.ndarray, mid: np.ndarray, half: float) -> dict[str, np.ndarray]:
    n = ts.size
    return {"ts_event": ts, "ts_recv": ts, "bid_px": mid - half, "bid_qty": np.full(n, 5.0), "ask_px": mid + half,
            "ask_qty": np.full(n, 5.0)}


@pytest.fixture(scope="module")
def hand_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """07:00-09:00: quotes every 10 s; spot mid 60,000 (bid/ask ±1); perp mid 60,000 except
    60,240 (+0.4 %) in [07:10, 08:30) and 59,760 (-0.4 %) in [08:40, 08:50), bid/ask ±1;
    a funding settlement at 08:00 of 0.01 %."""
    root = tmp_path_factory.mktemp("basis") / "tape"
    ts = T0 + 7 * H + np.arange(720, dtype=np.int64) * 10 * S
    perp = np.full(720, 60_000.0)
    perp[(ts >= T0 + 7 * H + 600 * S) & (ts < T0 + 8 * H + 1800 * S)] = 60_240.0
    perp[(ts >= T0 + 8 * H + 2400 * S) & (ts < T0 + 8 * H + 3000 * S)] = 59_760.0
    w = TapeWriter(root)
    w.write("quotes", "demo-perp", "BTCUSDT", quotes(ts, perp, 1.0))
    w.write("quotes", "demo-spot", "BTCUSDT", quotes(ts, np.full(720, 60_000.0), 1.0))
    w.write("funding", "demo-perp", "BTCUSDT", {
        "ts_event": np.array([T0 + 8 * H]), "rate": np.array([1e-4]), "interval_ns": np.array([8 * H]),
        "next_funding_ts": np.array([T0 + 16 * H]), "is_settlement": np.array([True])})
    w.commit()
    return root


def config(**execution: object) -> dict:
    return {"strategy": "basis_arb", "instruments": [PERP, SPOT], "params": {"entry_pct": 0.3, "exit_pct": 0.0},
            "execution": {**EXEC, **execution}}


def test_hand_tape_entries_exits_pnl_and_funding(hand_tape: Path) -> None:
    res = run_dict(config(), hand_tape)
    assert_run_invariants(res)
    t = res.trades.sort(["entry_ts", "inst"])
    # basis +0.4 % at 07:10:00 -> short perp / long spot, both filled at the next quotes (07:10:10);
    # back to 0 at 08:30:00 -> closed at 08:30:10. Basis -0.4 % at 08:40:00 -> long perp / short spot
    # (07:10:10 fills), back to 0 at 08:50:00 -> closed at 08:50:10.
    e1, x1, e2, x2 = (T0 + 7 * H + 610 * S, T0 + 8 * H + 1810 * S, T0 + 8 * H + 2410 * S, T0 + 8 * H + 3010 * S)
    assert t["inst"].to_list() == [PERP, SPOT, PERP, SPOT]
    assert t["direction"].to_list() == [-1, 1, 1, -1]
    assert t["entry_ts"].to_list() == [e1, e1, e2, e2]
    assert t["exit_ts"].to_list() == [x1, x1, x2, x2]
    # fills at the touch: sells at the bid, buys at the ask
    assert t["entry_px"].to_list() == [60_239.0, 60_001.0, 59_761.0, 59_999.0]
    assert t["exit_px"].to_list() == [60_001.0, 59_999.0, 59_999.0, 60_001.0]
    # each leg: 50 % of the equity at the decision, over the leg's mid then; the short perp leg of the
    # first pair receives the 08:00 settlement: qty x mark (the last mid, 60,240) x 0.01 %
    q0, q1 = 50_000 / 60_240, 50_000 / 60_000
    price = [q0 * (60_239 - 60_001), q1 * (59_999 - 60_001)]
    fees = [q0 * (60_239 + 60_001) * PERP_TAKER, q1 * (60_001 + 59_999) * SPOT_TAKER]
    funding = [-q0 * 60_240 * 1e-4, 0.0]
    equity = 100_000 + sum(price) - sum(fees) - sum(funding)  # flat again at 08:40
    q2, q3 = 0.5 * equity / 59_760, 0.5 * equity / 60_000
    price += [q2 * (59_999 - 59_761), q3 * (59_999 - 60_001)]
    fees += [q2 * (59_761 + 59_999) * PERP_TAKER, q3 * (59_999 + 60_001) * SPOT_TAKER]
    funding += [0.0, 0.0]
    np.testing.assert_allclose(t["qty"].to_numpy(), [q0, q1, q2, q3], rtol=1e-12)
    np.testing.assert_allclose(t["funding"].to_numpy(), funding, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(t["pnl"].to_numpy(), np.subtract(np.subtract(price, fees), funding), rtol=1e-9)
    total = sum(price) - sum(fees) - sum(funding)
    assert res.pnl["total"] == pytest.approx(total, rel=1e-9)
    assert res.manifest["strategy_counters"] == {"entries": 2.0, "convergence_exits": 2.0, "unhedged_closes": 0.0}
    assert res.decisions["explanation"][0].startswith("BTC SHORT 60,240 · score 100/100 · basis +0.40")


def test_refused_spot_short_closes_the_other_leg(hand_tape: Path) -> None:
    res = run_dict(config(allow_spot_short=False), hand_tape)
    assert_run_invariants(res)
    t = res.trades.sort(["entry_ts", "inst"])
    # the mirror pair: the spot short is refused, the perp long fills at 08:40:10 and is closed by
    # the kernel at that event, filling at the next perp quote
    assert t["inst"].to_list() == [PERP, SPOT, PERP]
    assert t["entry_ts"][2] == T0 + 8 * H + 2410 * S and t["exit_ts"][2] == T0 + 8 * H + 2420 * S
    assert t["entry_px"][2] == 59_761.0 and t["exit_px"][2] == 59_759.0
    assert res.refusals.filter(pl.col("reason") == "spot_short")["inst"].to_list() == [SPOT]
    assert res.manifest["strategy_counters"]["unhedged_closes"] == 1.0


def test_no_mirror_trades_only_the_positive_basis(hand_tape: Path) -> None:
    cfg = config()
    cfg["params"]["mirror"] = 0
    res = run_dict(cfg, hand_tape)
    assert res.trades["direction"].to_list() == [-1, 1]


def test_unknown_and_bad_params_are_rejected() -> None:
    with pytest.raises(ConfigError, match="did you mean 'entry_pct'"):
        load_config({**config(), "params": {"entry_pc": 0.3}})
    with pytest.raises(ConfigError, match="exit_pct"):
        load_config({**config(), "params": {"entry_pct": 0.3, "exit_pct": 0.3}})


def test_demo_tape_trades_the_planted_excursions(demo_tape: Path) -> None:
    res = run_toml("basis_arb", demo_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    # datasets/demo.md: BTC (asset 0) excursions start at 03:00 + 37 min x day, last 4 + 8 + 6 min,
    # positive when the day index is even; the demo starts 2024-03-01
    day0 = 1_709_251_200 * S
    planted = [(day0 + d * 24 * H + 3 * H + d * 37 * 60 * S, 1 if d % 2 == 0 else -1) for d in range(7)]
    perp_entries = res.trades.filter(pl.col("inst") == PERP)
    assert perp_entries.height == len(planted)  # one pair per excursion, nothing else exceeds 0.3 %
    for row, (start, sign) in zip(perp_entries.sort("entry_ts").iter_rows(named=True), planted, strict=True):
        assert start <= row["entry_ts"] <= start + 18 * 60 * S, row
        assert row["direction"] == -sign  # short the perp when it is rich
    assert res.trades.height == 2 * perp_entries.height


@pytest.fixture(scope="module")
def binance_tape(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from emerald.tape.importers import run_import

    root = tmp_path_factory.mktemp("binance") / "tape"
    run_import("binance-raw", [real_data / "binance-raw" / "usdm_btcusdt_20230405.dat.gz"], root, venue="binance-usdm")
    run_import("binance-raw", [real_data / "binance-raw" / "spot_btcusdt_20230405.dat.gz"], root, venue="binance-spot")
    return root


def asof_basis(root: Path, at: list[int]) -> np.ndarray:
    """Basis (%) of perp mid vs spot mid, each the last quote at or before each time in ``at``."""
    def mids(venue: str) -> pl.DataFrame:
        q = pl.read_parquet(root / "quotes" / f"venue={venue}" / "symbol=BTCUSDT" / "**/*.parquet")
        return q.select("ts_event", ((pl.col("bid_px") + pl.col("ask_px")) / 2).alias(venue)).sort("ts_event")

    t = pl.DataFrame({"ts_event": at}).sort("ts_event")
    j = t.join_asof(mids("binance-usdm"), on="ts_event").join_asof(mids("binance-spot"), on="ts_event")
    return ((j["binance-usdm"] - j["binance-spot"]) / j["binance-spot"] * 100).to_numpy()


def test_real_binance_capture(binance_tape: Path) -> None:
    inst = ["binance-usdm:BTCUSDT", "binance-spot:BTCUSDT"]
    quiet = run_toml("basis_arb", binance_tape, instruments=inst)
    assert quiet.stats["trades"] == 0  # |basis| stays near 0.02-0.07 % in these minutes
    every = pl.read_parquet(binance_tape / "quotes" / "venue=binance-spot" / "symbol=BTCUSDT" / "**/*.parquet")
    assert np.nanmax(np.abs(asof_basis(binance_tape, every["ts_event"].to_list()))) < 0.3
    cfg = load_config(Path(__file__).resolve().parents[2] / "strategies" / "basis_arb.toml", instruments=inst)
    res = run_dict({**cfg.raw, "instruments": inst, "params": {**cfg.raw["params"], "entry_pct": 0.05,
                                                                "exit_pct": 0.03}}, binance_tape)
    assert res.stats["trades"] > 0
    assert_run_invariants(res)
    d = res.decisions.filter(pl.col("inst") == inst[0])
    b = asof_basis(binance_tape, d["ts"].to_list())
    assert (b < -0.05).all()  # every entry: perp below spot by more than 0.05 %
    assert (d["action"] == 1).all()  # ... so long the perp
