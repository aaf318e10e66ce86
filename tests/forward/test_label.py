"""Outcome labels: forward returns, excursions, triple barrier, funding and realised volatility on a
hand-made tape, checked against a brute-force loop over the trades and against numbers worked out
by hand; uncovered horizons counted, never labelled; re-labelling replaces; the would-be trades of
a recorded run match the backtest's trades."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from emerald.errors import ConfigError
from emerald.forward.label import block_tables_nb, label, outcomes_nb
from emerald.forward.log import SIGNAL_COLUMNS, SignalLog
from emerald.tape.writer import TapeWriter

VENUE, SYMBOL = "demo-perp", "BTCUSDT"  # a linear perp with 8 h funding (emerald/model/instruments.toml)
INST = f"{VENUE}:{SYMBOL}"
S = 1_000_000_000
M = 60 * S
T0 = 1_709_276_400 * S  # 2024-03-01 07:00:00 UTC
SETTLE = 1_709_280_000 * S  # 2024-03-01 08:00:00 UTC, a funding settlement
N_TRADES = 900  # one trade every 10 s: 07:00:00 .. 09:29:50
RUN = "run-hand"


def price_path(n: int = N_TRADES) -> np.ndarray:
    """Trade ``i``: ``100 + 0.05 * (|i mod 40 - 20| - 10) + 0.002 * i`` (a zig-zag of 40 trades with a
    drift; exact to the 0.001 it is rounded to)."""
    i = np.arange(n)
    tri = np.abs((i % 40) - 20) - 10  # -10 .. 10
    return np.round(100.0 + 0.05 * tri + 0.002 * i, 3)


def trade_table(ts: np.ndarray, px: np.ndarray) -> dict[str, np.ndarray]:
    return {"ts_event": ts, "ts_recv": ts, "price": px, "qty": np.full(ts.size, 0.01),
            # buyers while the zig-zag rises, sellers while it falls: the flow strategy trades on it
            "side": np.where(np.arange(ts.size) % 40 >= 20, 1, -1).astype(np.int8),
            "trade_id": np.arange(1, ts.size + 1, dtype=np.int64)}


def funding_table(ts: list[int], rates: list[float]) -> dict[str, np.ndarray]:
    ts_a = np.array(ts, dtype=np.int64)
    return {"ts_event": ts_a, "rate": np.array(rates), "interval_ns": np.full(ts_a.size, 8 * 3600 * S),
            "next_funding_ts": ts_a + 8 * 3600 * S, "is_settlement": np.ones(ts_a.size, dtype=bool)}


def build_tape(root: Path, *, with_settlement: bool = True) -> tuple[np.ndarray, np.ndarray]:
    ts = T0 + np.arange(N_TRADES, dtype=np.int64) * 10 * S
    px = price_path()
    with TapeWriter(root) as w:
        w.write("trades", VENUE, SYMBOL, trade_table(ts, px))
        if with_settlement:
            w.write("funding", VENUE, SYMBOL, funding_table([SETTLE], [0.0003]))
        else:  # a published (predicted) rate only: the settlement is missing
            f = funding_table([SETTLE - 60 * S], [0.0003])
            f["is_settlement"][:] = False
            w.write("funding", VENUE, SYMBOL, f)
    return ts, px


def write_log(path: Path, signals: list[tuple[int, int, str]], run_id: str = RUN) -> list[str]:
    """A signal log with one run and firings ``(ts, direction, signal name)``; returns the ids."""
    rows = []
    for k, (ts, d, name) in enumerate(signals):
        rows.append({"signal_id": f"{run_id}-s{k:03d}", "run_id": run_id, "kind": "firing", "ts_event": ts,
                     "ts_recorded": 1, "event_index": k, "strategy": "hand", "instrument": INST, "signal": name,
                     "direction": d, "value": 0.5 * d, "threshold": 0.3, "weight": 1.0, "score": 1.0,
                     "score_long": 1.0, "score_short": 0.0, "breakdown": None, "inputs": "{}", "price": None,
                     "code_hash": "c", "config_hash": "k", "fitted_hash": "none"})
    schema = {c: pl.Utf8 for c in SIGNAL_COLUMNS} | {"ts_event": pl.Int64, "ts_recorded": pl.Int64,
                                                     "event_index": pl.Int64, "direction": pl.Int32,
                                                     "value": pl.Float64, "threshold": pl.Float64,
                                                     "weight": pl.Float64, "score": pl.Float64,
                                                     "score_long": pl.Float64, "score_short": pl.Float64,
                                                     "price": pl.Float64}
    with SignalLog(path) as log:
        log.start_run({"run_id": run_id, "strategy": "hand", "config": "{}", "code_hash": "c", "config_hash": "k",
                       "fitted_hash": "none", "data_hash": "d", "source": "hand", "start": T0,
                       "end": T0 + N_TRADES * 10 * S, "started_at": 0})
        log.commit(run_id, pl.DataFrame(rows, schema=schema), len(rows), len(rows))
        log.finish_run(run_id, len(rows), 0)
    return [r["signal_id"] for r in rows]


def outcomes(path: Path) -> pl.DataFrame:
    with SignalLog(path, read_only=True) as log:
        return log.query("SELECT * FROM outcomes ORDER BY signal_id, horizon_ns")


def brute_force(ts: np.ndarray, px: np.ndarray, t0: int, d: int, h: int, tp: float, sl: float) -> dict[str, float]:
    """The definitions of emerald/forward/label.py, one trade at a time."""
    entry = max(k for k in range(ts.size) if ts[k] <= t0)
    p0 = px[entry]
    window = [k for k in range(ts.size) if t0 < ts[k] <= t0 + h]
    exit_k = max(k for k in range(ts.size) if ts[k] <= t0 + h)
    signed = [d * (px[k] / p0 - 1.0) for k in window]
    barrier, barrier_ts = 0, None
    for k, r in zip(window, signed, strict=True):
        if r >= tp - 1e-12:
            barrier, barrier_ts = 1, int(ts[k])
            break
        if r <= -sl + 1e-12:
            barrier, barrier_ts = -1, int(ts[k])
            break
    return {"entry_px": p0, "exit_px": px[exit_k], "ret": d * (px[exit_k] / p0 - 1.0),
            "mfe": max([0.0, *signed]), "mae": min([0.0, *signed]), "barrier": barrier, "barrier_ts": barrier_ts}


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    root = tmp_path_factory.mktemp("label") / "tape"
    ts, px = build_tape(root)
    return root, ts, px


SIGNALS = [
    (T0 + 60 * S, 1, "a"),            # exactly at a trade (07:01:00)
    (T0 + 65 * S, -1, "a"),           # between trades: entry is the 07:01:00 trade
    (T0 + 25 * M + 3 * S, 1, "b"),    # 07:25:03
    (T0 + 47 * M, -1, "b"),           # 07:47: the 1 h horizon spans the 08:00 settlement
    (T0 + 100 * M + 7 * S, 1, "a"),   # 08:40:07: 1 h past the data end (09:29:50)
    (T0 + 140 * M, -1, "b"),          # 09:20: 5 m covered, 15 m and 1 h past the data end (09:29:50)
]
HORIZONS = ("1m", "5m", "15m", "1h")
H_NS = {"1m": M, "5m": 5 * M, "15m": 15 * M, "1h": 60 * M}


def test_outcomes_equal_brute_force_and_uncovered_counted(tape, tmp_path):
    root, ts, px = tape
    log = tmp_path / "log.duckdb"
    ids = write_log(log, SIGNALS)
    # barrier distances that no price move of this tape equals exactly (no ties to argue about)
    rep = label(log, root, horizons=HORIZONS, take_profit_pct=0.2737, stop_pct=0.1913, vol_window="10m",
                trades=False)
    got = outcomes(log)
    data_end = int(ts[-1])
    expected_rows = [(sid, h) for sid, (t0, _, _) in zip(ids, SIGNALS, strict=True) for h in HORIZONS
                     if t0 + H_NS[h] <= data_end]
    assert sorted(zip(got["signal_id"], got["horizon"], strict=True)) == sorted(expected_rows)
    # past the data end (09:29:50): 08:40:07 + 1h, 09:20 + 15m and + 1h -> counted, not labelled
    assert rep["uncovered"] == 3 == len(SIGNALS) * len(HORIZONS) - len(expected_rows)
    assert rep["runs"][0]["uncovered_by_horizon"] == {"1m": 0, "5m": 0, "15m": 1, "1h": 2}
    assert rep["rows"] == got.height and rep["no_price"] == 0
    for row in got.iter_rows(named=True):
        k = ids.index(row["signal_id"])
        t0, d, _ = SIGNALS[k]
        want = brute_force(ts, px, t0, d, H_NS[row["horizon"]], 0.002737, 0.001913)
        for key in ("entry_px", "exit_px", "ret", "mfe", "mae"):
            assert row[key] == pytest.approx(want[key], rel=1e-12, abs=1e-15), (row["signal_id"], row["horizon"], key)
        assert (row["barrier"], row["barrier_ts"]) == (want["barrier"], want["barrier_ts"]), row
        assert row["mfe"] >= 0 >= row["mae"]
    with SignalLog(log, read_only=True) as lg:
        runs = lg.query("SELECT * FROM outcome_runs")
    assert runs.height == 1 and runs["uncovered"][0] == 3 and runs["rows"][0] == got.height


def test_numbers_worked_out_by_hand(tape, tmp_path):
    """Signal 0: long at 07:01:00, which is trade 6; 1 m later is trade 12; prices fall in between.
    Signal 1: short at 07:01:05, between trades 6 and 7."""
    root, ts, px = tape
    log = tmp_path / "log.duckdb"
    ids = write_log(log, SIGNALS[:2])
    label(log, root, horizons=["1m"], take_profit_pct=0.25, vol_window="10m", trades=False)
    got = {r["signal_id"]: r for r in outcomes(log).iter_rows(named=True)}
    # trade i at T0 + 10 s * i; price = 100 + 0.05 * (|i mod 40 - 20| - 10) + 0.002 i
    p6 = 100 + 0.05 * (14 - 10) + 0.012     # 100.212
    p12 = 100 + 0.05 * (8 - 10) + 0.024     # 99.924
    assert px[6] == pytest.approx(p6) and px[12] == pytest.approx(p12)
    long = got[ids[0]]
    assert long["entry_ts"] == T0 + 60 * S and long["entry_px"] == pytest.approx(p6)
    assert long["ret"] == pytest.approx(p12 / p6 - 1)             # -0.2874 %
    assert long["mfe"] == 0.0                                       # prices fall all minute
    assert long["mae"] == pytest.approx(p12 / p6 - 1)
    assert long["barrier"] == -1                                    # stop = 0.25 % below 100.212 = 99.9615
    p11 = 100 + 0.05 * (9 - 10) + 0.022                             # 99.972 > 99.9615, so trade 12 touches it
    assert px[11] == pytest.approx(p11) and long["barrier_ts"] == T0 + 120 * S
    short = got[ids[1]]
    assert short["entry_ts"] == T0 + 60 * S                         # as of 07:01:05: the 07:01:00 trade, not 07:01:10
    assert short["exit_px"] == pytest.approx(p12)                   # as of 07:02:05: the 07:02:00 trade
    assert short["ret"] == pytest.approx(-(p12 / p6 - 1))
    assert short["barrier"] == 1 and short["barrier_ts"] == T0 + 120 * S  # +0.2874 % >= 0.25 % at trade 12


def test_funding_and_realised_vol(tape, tmp_path):
    root, ts, px = tape
    log = tmp_path / "log.duckdb"
    ids = write_log(log, SIGNALS)
    label(log, root, horizons=HORIZONS, vol_window="10m", trades=False)
    got = outcomes(log)
    fund = {(r["signal_id"], r["horizon"]): r["funding"] for r in got.iter_rows(named=True)}
    # signal 3: short at 07:47; the 08:00 settlement (rate 0.0003) is inside (07:47, 08:47] but not (07:47, 07:52]
    assert fund[(ids[3], "1h")] == pytest.approx(-0.0003)  # a short receives a positive rate
    assert fund[(ids[3], "5m")] == 0.0 and fund[(ids[3], "15m")] == pytest.approx(-0.0003)
    assert fund[(ids[2], "1h")] == pytest.approx(0.0003)  # long at 07:25:03, 1 h: the long pays
    for (sid, h), v in fund.items():  # the one settlement is in (t0, t0 + h] or not
        t0, d, _ = SIGNALS[ids.index(sid)]
        assert v == (pytest.approx(d * 0.0003) if t0 < SETTLE <= t0 + H_NS[h] else 0.0), (sid, h)
    # realised vol as of 08:40:07 over 10 minutes: as-of prices at 08:30:07 .. 08:40:07, minute steps
    t0 = SIGNALS[4][0]
    grid = [t0 - k * M for k in range(10, -1, -1)]
    prices = [px[max(i for i in range(ts.size) if ts[i] <= g)] for g in grid]
    logret = np.diff(np.log(prices))
    want = float(np.std(logret, ddof=1)) * math.sqrt(365 * 24 * 60)
    vol = got.filter(pl.col("signal_id") == ids[4])["realised_vol"].unique().to_list()
    assert vol == [pytest.approx(want, rel=1e-12)]
    # 10 minutes before 07:01:00 is before the first trade: unknown
    assert got.filter(pl.col("signal_id") == ids[0])["realised_vol"].is_nan().all()


def test_missing_settlement_makes_funding_unknown(tmp_path):
    root = tmp_path / "tape"
    build_tape(root, with_settlement=False)
    log = tmp_path / "log.duckdb"
    ids = write_log(log, SIGNALS[3:4])
    rep = label(log, root, horizons=["5m", "1h"], trades=False)
    got = {r["horizon"]: r["funding"] for r in outcomes(log).iter_rows(named=True)}
    assert got["5m"] == 0.0 and math.isnan(got["1h"])
    assert rep["runs"][0]["funding_unknown"] == 1 and len(ids) == 1


def test_signal_before_first_trade_has_no_price(tape, tmp_path):
    root, _, _ = tape
    log = tmp_path / "log.duckdb"
    write_log(log, [(T0 - S, 1, "early"), (T0, 1, "at_first")])
    rep = label(log, root, horizons=["1m"], trades=False)
    assert rep["no_price"] == 1 and rep["rows"] == 1
    assert outcomes(log)["entry_ts"].to_list() == [T0]


def test_relabel_replaces_the_run(tape, tmp_path):
    root, _, _ = tape
    log = tmp_path / "log.duckdb"
    write_log(log, SIGNALS)
    label(log, root, horizons=HORIZONS, trades=False)
    first = outcomes(log)
    label(log, root, horizons=HORIZONS, trades=False)
    assert outcomes(log).equals(first)
    label(log, root, horizons=["5m"], take_profit_pct=1.0, trades=False)
    again = outcomes(log)
    assert set(again["horizon"]) == {"5m"} and again.height == len(SIGNALS)
    assert again.select("signal_id", "ret").equals(first.filter(pl.col("horizon") == "5m").select("signal_id", "ret"))
    with SignalLog(log, read_only=True) as lg:
        assert lg.query("SELECT count(*) AS n FROM outcome_runs")["n"][0] == 1


def test_bad_arguments(tape, tmp_path):
    root, _, _ = tape
    log = tmp_path / "log.duckdb"
    write_log(log, SIGNALS[:1])
    with pytest.raises(ConfigError, match="same length twice"):
        label(log, root, horizons=["60m", "1h"], trades=False)
    with pytest.raises(ConfigError, match="take_profit_pct"):
        label(log, root, take_profit_pct=-1.0, trades=False)
    with pytest.raises(ConfigError, match="not in signal log"):
        label(log, root, run_id="nope", trades=False)


def test_kernel_matches_brute_force_on_random_walks():
    """Many trades (several blocks of the range tables), random signals and levels."""
    rng = np.random.default_rng(3)
    n = 5_000
    ts = np.cumsum(rng.integers(1, 5, n)).astype(np.int64)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    sig_ts = np.sort(rng.integers(0, int(ts[-1]), 40)).astype(np.int64)
    sig_dir = np.where(rng.random(40) < 0.5, 1, -1).astype(np.int64)
    hz = np.array([50, 400, 3_000], dtype=np.int64)
    smax, smin = block_tables_nb(px, 64)
    entry, covered, exit_px, ret, mfe, mae, barrier, bidx = outcomes_nb(ts, px, smax, smin, 64, sig_ts, sig_dir, hz,
                                                                      int(ts[-1]), 0.01, 0.015)
    checked = 0
    for i in range(sig_ts.size):
        if sig_ts[i] < ts[0]:
            assert entry[i] == -1
            continue
        for k, h in enumerate(hz):
            assert covered[i, k] == (sig_ts[i] + h <= ts[-1])
            if not covered[i, k]:
                continue
            want = brute_force(ts, px, int(sig_ts[i]), int(sig_dir[i]), int(h), 0.01, 0.015)
            assert ret[i, k] == pytest.approx(want["ret"], abs=1e-14)
            assert (mfe[i, k], mae[i, k]) == (pytest.approx(want["mfe"], abs=1e-14), pytest.approx(want["mae"], abs=1e-14))
            assert barrier[i, k] == want["barrier"]
            assert (ts[bidx[i, k]] if bidx[i, k] >= 0 else None) == want["barrier_ts"]
            checked += 1
    assert checked > 60


# ------------------------------------------------------------------------------ would-be trades

STRATEGY = str(Path(__file__).resolve().parent / "_strategies.py")


def flow_config(**params: float) -> dict[str, object]:
    return {"strategy": STRATEGY, "instruments": [INST],
            "params": {"window_s": 60, "entry_score": 60.0, **params},
            "execution": {"latency_ms": 50, "slippage_bps": 1.0, "fraction": 0.5, "trail_pct": 0.5}}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, Path]:
    from emerald.forward.recorder import Recorder
    from emerald.strategy.base import load_config

    base = tmp_path_factory.mktemp("trades")
    root = base / "tape"
    build_tape(root)
    cfg = load_config(flow_config())
    log = base / "log.duckdb"
    Recorder(cfg, log).replay(root)
    return root, cfg, log


def test_would_be_trades_are_the_backtests_trades(recorded, tmp_path):
    import shutil

    from emerald.backtest.engine import backtest

    root, cfg, src = recorded
    log = tmp_path / "log.duckdb"
    shutil.copy(src, log)
    rep = label(log, root, horizons=["5m", "1h"], config=cfg)
    with SignalLog(log, read_only=True) as lg:
        trades = lg.query("SELECT t.*, s.ts_event AS decided, s.direction AS decision_dir FROM outcome_trades t "
                          "JOIN signals s USING (signal_id)")
        n_decisions = lg.query("SELECT count(*) AS n FROM signals WHERE kind = 'decision'")["n"][0]
    res = backtest(cfg, root)
    assert n_decisions >= 5 and trades.height == n_decisions
    assert sum(rep["runs"][0]["trades"].values()) == n_decisions
    closed = trades.filter(pl.col("status") == "closed")
    # this strategy opens a trade only through a decision, so every backtest trade is some decision's
    assert sorted(closed["trade_id"].to_list()) == sorted(res.trades["trade_id"].to_list())
    both = closed.join(res.trades, on="trade_id", suffix="_bt")
    for r in both.iter_rows(named=True):
        assert r["direction"] == r["decision_dir"]
        assert r["entry_ts"] == r["entry_ts_bt"] >= r["decided"] + 50_000_000  # after the 50 ms latency
        assert (r["pnl"], r["exit_reason"], r["exit_ts"]) == (r["pnl_bt"], r["exit_reason_bt"], r["exit_ts_bt"])
        assert r["ret"] == pytest.approx(r["return_pct"] / 100.0, rel=1e-12)
    still_open = int(res.positions.sort("ts")["qty"].to_list()[-1] != 0.0) if res.positions.height else 0
    assert trades.filter(pl.col("status") == "open_at_end").height == still_open


def test_would_be_trades_need_the_runs_own_config(recorded, tmp_path):
    import shutil

    from emerald.strategy.base import load_config

    root, _, src = recorded
    log = tmp_path / "log.duckdb"
    shutil.copy(src, log)
    with pytest.raises(ConfigError, match="do not reproduce run"):
        label(log, root, config=load_config(flow_config(flow_threshold=0.4)))
    # the recorded config names a strategy outside strategies/: it cannot be reloaded by name
    with pytest.raises(ConfigError, match="--config"):
        label(log, root)
    assert label(log, root, trades=False)["rows"] > 0
