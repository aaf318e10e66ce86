"""vectorbt as an oracle for bar mode: identical trades and equity curve (1e-9) on generated and real bars.

What is compared
----------------
Our bar mode (:func:`emerald.backtest.engine.run_bar_matrix` with
:func:`emerald.strategy.builtin.signals_decide_nb`: entries/exits columns, sizing ``all_cash``,
latency 0, breaker off, no notional/gross limits, no expiry, taker fee, slippage, optional trailing
stop) against ``vectorbt.Portfolio.from_signals`` (vectorbt 1.2.0, numba engine; the Rust engine
is not installed) on the features both have: long/short entries and exits, reversals, fees,
slippage, ``size=inf`` (all cash) and a trailing stop. Every closed trade (entry and exit bar,
direction, entry and exit price, size, fees, PnL), the position left open at the end and the
equity at every bar must agree within a relative 1e-9 (money: or 1e-9 of the initial equity).

How vectorbt is made to model "decide at the close of bar t, fill at the open of bar t+1"
-----------------------------------------------------------------------------------------
Each bar becomes two vectorbt rows: an *open row* (open = high = low = close = the bar's open)
that carries the signals decided at the close of the previous bar with a price, and a *body row*
(the bar's open, high, low, close) without signals. ``price=inf`` (the row's close: the open on
an open row), ``stop_entry_price="fillprice"`` (the trailing anchor starts at the fill, slippage
included), ``stop_exit_price="stopmarket"`` (a stop fills at its level, or at the open when the
bar opens through it, and pays slippage like any market order), ``upon_opposite_entry="reverse"``,
``min_size=0``. The split is what makes vectorbt model a real market here: with one row per bar
and ``price=open`` it can neither check a stop inside the bar it entered at the open, nor let the
open (the bar's first price) move the trailing anchor before the rest of the bar is checked.

Where the two differ, and what we decided
-----------------------------------------
* Stop inside the entry bar: a stop rests from the fill at the open, so the rest of that bar can
  hit it. Ours did this already; vectorbt does it with the split rows.
* Trailing anchor and the open: the open is known to come first in the bar, so it moves the
  anchor before the bar's low (longs) / high (shorts) is checked; the bar's high / low moves it
  only after (their order is unknown). vectorbt's split-row behaviour is right: we aligned our
  bar mode (``bar_stop_nb``; it used the anchor of the bars before only).
* All-cash reversal: the new position is what the equity left after closing the old one at the
  fill price, less the closing fee, buys. vectorbt's sizing is right: we aligned
  ``resolve_qty_nb`` (it used the equity at the previous mark and ignored the closing fee).
* Signals on a bar without a price (NaN bar): ours keeps the order working and fills it at the
  open of the next bar with a price; vectorbt drops an order whose price is NaN. Ours is right (a
  market order does not vanish because a minute had no trade): the decisions are handed to
  vectorbt on the next bar with a price.
* Conflicting signals on one bar (entry and exit, or long and short entries): vectorbt ignores
  both by default, ``signals_decide_nb`` takes the exit first, then the long entry. Neither is a
  market question; the generated signals carry at most one signal per bar.
* A bar that opens through the stop while a reversal order fills at that open: vectorbt lets the
  stop win and drops the signal (flat); ours fills the reversal at the open (the decision stands;
  the old position is closed at the same price the stop would have got) and the new position's
  stop is live for the rest of the bar. Ours is right; the comparison stops before the first such
  bar (found from vectorbt's own positions), and :func:`test_gap_stop_on_a_reversal_bar` pins
  both behaviours down on a hand-made case.
* Not compared: anything vectorbt does not have (funding, liquidation, limit orders, latency,
  expiry, risk sizing, the breaker) and several instruments in one account (vectorbt's columns are
  independent portfolios).

Data: seeded random walks with gaps and NaN bars (runs of them too), hypothesis-drawn short bar
series, and real 1-minute bars from ``../shared/data/real/bars`` (FTX BTC-PERP January 2022,
Binance ADABTC klines, HistData EURUSD on a full minute grid, so weekends and gaps are NaN bars).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emerald.backtest.config import check_execution, exec_params
from emerald.backtest.engine import instrument_table, new_state, run_bar_matrix
from emerald.strategy.base import StrategyDef
from emerald.strategy.builtin import signals_decide_nb

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # vectorbt's own import-time deprecation noise is not ours to fix
    import vectorbt as vbt
    from vectorbt.portfolio import nb as vbt_nb

# vectorbt compiles from_signals' static simulator without numba's disk cache: cache it (it is ~10 s)
vbt_nb.simulate_from_signals_nb.enable_caching()

STRATEGY = StrategyDef(name="vectorbt_oracle_signals", description="entries/exits columns", params=(),
                       decide_nb=signals_decide_nb, signals=lambda p, ctx: [])
MINUTE = 60_000_000_000
INIT = 100_000.0
INSTRUMENT = [("demo-perp", "BTCUSDT")]  # a linear perp; fees are overridden per case
LONG_ENTRY, LONG_EXIT, SHORT_ENTRY, SHORT_EXIT = range(4)


# ------------------------------------------------------------------------------ the two engines


def run_ours(bars: dict[str, np.ndarray], sig: np.ndarray, fee_bps: float, slip_bps: float,
             trail_pct: float | None) -> dict[str, np.ndarray]:
    """Our bar mode on one instrument: ``bars`` has ``ts`` (bar closes) and ``open .. close`` (1-D)."""
    ex = check_execution({"initial_equity": INIT, "sizing": "all_cash", "latency_ms": 0.0,
                          "slippage_bps": slip_bps, "taker_bps": fee_bps, "maker_bps": fee_bps, "expiry_s": 0.0,
                          "trail_pct": trail_pct, "breaker": False, "max_notional_pct": 1e6, "max_gross": 1000.0,
                          "min_notional": 0.0, "maint_margin_pct": 0.0})
    state = new_state(instrument_table(INSTRUMENT, ex), exec_params(ex, []))
    wide = {"ts": bars["ts"], **{k: bars[k][:, None] for k in ("open", "high", "low", "close")}}
    run_bar_matrix(STRATEGY, STRATEGY.make_params().record, wide, MINUTE, sig[:, None, :], state)
    a = state.acct[0]
    return {"trades": state.out[2][: a["n_trades"]].copy(), "equity": state.out[3][: a["n_equity"]].copy(),
            "qty": float(state.pos[0]["qty"]), "avg": float(state.pos[0]["avg"])}


def shifted(sig: np.ndarray, close: np.ndarray) -> np.ndarray:
    """The decisions at the close of each bar with a price, moved to the next bar with a price
    (where our working order fills at the open)."""
    out = np.zeros(sig.shape, bool)
    ok = np.flatnonzero(np.isfinite(close))
    out[ok[1:]] = sig[ok[:-1]] > 0
    return out


def run_vbt(bars: dict[str, np.ndarray], sig: np.ndarray, fee_bps: float, slip_bps: float,
            trail_pct: float | None) -> vbt.Portfolio:
    """vectorbt on the split rows of the module docstring (row 2t: bar t's open, row 2t+1: the bar)."""
    o, h, lo, c = (bars[k] for k in ("open", "high", "low", "close"))
    n = c.shape[0]
    rows = {k: np.empty(2 * n) for k in ("open", "high", "low", "close")}
    for k in rows:
        rows[k][0::2] = o
    rows["open"][1::2], rows["high"][1::2], rows["low"][1::2], rows["close"][1::2] = o, h, lo, c
    s = np.zeros((2 * n, 4), bool)
    s[0::2] = shifted(sig, c)
    return vbt.Portfolio.from_signals(
        rows["close"], entries=s[:, LONG_ENTRY], exits=s[:, LONG_EXIT], short_entries=s[:, SHORT_ENTRY],
        short_exits=s[:, SHORT_EXIT], open=rows["open"], high=rows["high"], low=rows["low"], price=np.inf,
        size=np.inf, fees=fee_bps / 1e4, slippage=slip_bps * 1e-4, min_size=0.0, init_cash=INIT,
        sl_stop=np.nan if trail_pct is None else trail_pct / 100.0, sl_trail=True, stop_entry_price="fillprice",
        stop_exit_price="stopmarket", upon_opposite_entry="reverse")


def first_stop_over_reversal(pf: vbt.Portfolio, sig: np.ndarray, close: np.ndarray) -> int | None:
    """The first bar where vectorbt's stop filled at the open and swallowed a reversal signal
    (position before the bar, opposite entry handed to that bar, flat after its open row)."""
    pos = pf.assets().to_numpy()
    s = shifted(sig, close)
    before, after = pos[1:-1:2], pos[2::2]  # after bar t-1's body row, after bar t's open row (t >= 1)
    hit = (after == 0) & (((before > 0) & s[1:, SHORT_ENTRY]) | ((before < 0) & s[1:, LONG_ENTRY]))
    idx = np.flatnonzero(hit)
    return int(idx[0]) + 1 if idx.size else None


def money(a: np.ndarray, b: np.ndarray, what: str) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * INIT, err_msg=what)


def assert_same(bars: dict[str, np.ndarray], sig: np.ndarray, fee_bps: float, slip_bps: float,
                trail_pct: float | None) -> dict[str, int]:
    """Run both engines (up to the first stop-over-reversal bar) and compare everything; returns
    counts from vectorbt's side for coverage checks."""
    pf = run_vbt(bars, sig, fee_bps, slip_bps, trail_pct)
    cut = first_stop_over_reversal(pf, sig, bars["close"])
    if cut is not None:
        bars = {k: v[:cut] for k, v in bars.items()}
        sig = sig[:cut]
        pf = run_vbt(bars, sig, fee_bps, slip_bps, trail_pct)
    ours = run_ours(bars, sig, fee_bps, slip_bps, trail_pct)
    n = bars["ts"].shape[0]
    rec = pf.trades.records_arr
    closed, still_open = rec[rec["status"] == 1], rec[rec["status"] == 0]
    tr = ours["trades"]
    opens = bars["ts"] - MINUTE
    assert tr.shape[0] == closed.shape[0], f"{tr.shape[0]} trades, vectorbt {closed.shape[0]}"
    np.testing.assert_array_equal(np.searchsorted(opens, tr["entry_ts"]), closed["entry_idx"] // 2, "entry bar")
    np.testing.assert_array_equal(np.searchsorted(opens, tr["exit_ts"]), closed["exit_idx"] // 2, "exit bar")
    np.testing.assert_array_equal(tr["direction"], np.where(closed["direction"] == 0, 1, -1), "direction")
    np.testing.assert_allclose(tr["entry_px"], closed["entry_price"], rtol=1e-9, err_msg="entry price")
    np.testing.assert_allclose(tr["exit_px"], closed["exit_price"], rtol=1e-9, err_msg="exit price")
    np.testing.assert_allclose(tr["qty"], closed["size"], rtol=1e-9, err_msg="size")
    money(tr["fees"], closed["entry_fees"] + closed["exit_fees"], "fees")
    money(tr["pnl"], closed["pnl"], "pnl")
    # the position left open
    held = pf.assets().to_numpy()[-1]
    np.testing.assert_allclose(ours["qty"], held, rtol=1e-9, atol=0, err_msg="open position")
    if still_open.shape[0]:
        np.testing.assert_allclose(ours["avg"], still_open["entry_price"][0], rtol=1e-9, err_msg="open entry price")
    # the equity at every bar close (vectorbt values NaN bars at the last close, as we mark them)
    eq = ours["equity"]
    assert eq.shape[0] == n, f"{eq.shape[0]} equity rows for {n} bars"
    np.testing.assert_array_equal(eq["ts"], bars["ts"])
    money(eq["equity"], pf.value().to_numpy()[1::2], "equity")
    exit_rows = closed["exit_idx"]
    return {"trades": int(closed.shape[0]), "cut": int(cut is not None),
            "reversals": int(np.sum(rec["exit_idx"][:-1] == rec["entry_idx"][1:])),
            "stops_in_bar": int(np.sum(exit_rows % 2 == 1)),
            "entry_bar_stops": int(np.sum((exit_rows % 2 == 1) & (exit_rows // 2 == closed["entry_idx"] // 2)))}


# ------------------------------------------------------------------------------ generated bars


def random_bars(seed: int, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A random walk with gapped opens, bar ranges, single NaN bars and runs of them, and one
    random signal (or none) per bar."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0.0, 0.003, n) * (rng.random(n) < 0.3))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.003, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.003, n)))
    gone = rng.random(n) < 0.03
    for start in rng.integers(0, n - 10, 3):
        gone[start:start + rng.integers(2, 10)] = True
    bars = {"ts": (np.arange(n, dtype=np.int64) + 1) * MINUTE + 1_700_000_040 * 1_000_000_000 // MINUTE * MINUTE}
    for name, v in (("open", open_), ("high", high), ("low", low), ("close", close)):
        bars[name] = np.where(gone, np.nan, v)
    pick = rng.choice(5, n, p=[0.88, 0.03, 0.03, 0.03, 0.03])
    sig = np.zeros((n, 4))
    for k in range(4):
        sig[pick == k + 1, k] = 1.0
    return bars, sig


def keep_columns(sig: np.ndarray, columns: tuple[int, ...]) -> np.ndarray:
    out = np.zeros_like(sig)
    out[:, list(columns)] = sig[:, list(columns)]
    return out


CASES = {  # name: (signal columns kept, fee bps, slippage bps, trailing stop %)
    "long_trail": ((LONG_ENTRY, LONG_EXIT), 5.0, 1.0, 0.5),
    "short_trail": ((SHORT_ENTRY, SHORT_EXIT), 10.0, 2.0, 1.0),
    "both_no_stop": ((LONG_ENTRY, LONG_EXIT, SHORT_ENTRY, SHORT_EXIT), 7.5, 0.5, None),
    "both_trail": ((LONG_ENTRY, LONG_EXIT, SHORT_ENTRY, SHORT_EXIT), 4.0, 3.0, 0.8),
    "reversals_trail_free": ((LONG_ENTRY, SHORT_ENTRY), 0.0, 0.0, 1.5),
}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("case", list(CASES))
def test_random_walks(seed: int, case: str) -> None:
    columns, fee, slip, trail = CASES[case]
    bars, sig = random_bars(seed, 1500)
    counts = assert_same(bars, keep_columns(sig, columns), fee, slip, trail)
    assert counts["trades"] >= 5
    if trail is not None:
        assert counts["stops_in_bar"] >= 1


def test_random_walks_reach_the_edge_cases() -> None:
    """The generated cases are not vacuous: counted on vectorbt's side over a few seeds, they
    contain stops inside bars and inside the entry bar, reversals, cuts before a stop-over-
    reversal bar, and orders decided right before a NaN bar."""
    total: dict[str, int] = {}
    carried = 0
    for seed in range(4):
        bars, sig = random_bars(seed, 1500)
        close = bars["close"]
        decided = np.flatnonzero(sig.any(axis=1) & np.isfinite(close))
        carried += int(np.sum(np.isnan(close[np.minimum(decided + 1, close.size - 1)])))
        for case in ("both_trail", "reversals_trail_free"):
            columns, fee, slip, trail = CASES[case]
            for k, v in assert_same(bars, keep_columns(sig, columns), fee, slip, trail).items():
                total[k] = total.get(k, 0) + v
    assert carried > 0
    assert total["stops_in_bar"] > 0 and total["entry_bar_stops"] > 0 and total["reversals"] > 0
    assert total["cut"] > 0


finite = st.integers(-25, 25)
bar_st = st.one_of(st.none(), st.tuples(finite, finite, st.integers(0, 12), st.integers(0, 12)))


@settings(max_examples=60)
@given(st.lists(st.tuples(bar_st, st.integers(0, 4)), min_size=2, max_size=40),
       st.sampled_from([0.0, 2.0, 10.0]), st.sampled_from([0.0, 1.0, 5.0]), st.sampled_from([None, 0.5, 1.0, 2.5]))
def test_hypothesis_bars(rows: list, fee: float, slip: float, trail: float | None) -> None:
    """Short bar series: each bar is NaN or (gap of the open, move to the close, range above and
    below, in 0.1 % steps), with at most one signal."""
    n = len(rows)
    bars = {"ts": (np.arange(n, dtype=np.int64) + 1) * MINUTE}
    for k in ("open", "high", "low", "close"):
        bars[k] = np.full(n, np.nan)
    sig = np.zeros((n, 4))
    last = 100.0
    for t, (bar, pick) in enumerate(rows):
        if pick:
            sig[t, pick - 1] = 1.0
        if bar is None:
            continue
        gap, move, up, down = bar
        o = last * (1.0 + gap / 1000.0)
        c = o * (1.0 + move / 1000.0)
        bars["open"][t], bars["close"][t] = o, c
        bars["high"][t] = max(o, c) * (1.0 + up / 1000.0)
        bars["low"][t] = min(o, c) * (1.0 - down / 1000.0)
        last = c
    assert_same(bars, sig, fee, slip, trail)


def test_gap_stop_on_a_reversal_bar() -> None:
    """The documented difference, by hand: long at 100 with a 10 % trailing stop (level 90), a short
    decided at the next close, and a bar opening at 80 (through the stop). Ours reverses at 80:
    the long closes at 80 (PnL -20 x qty) and the short takes what the equity left buys; vectorbt
    stops out at 80 and drops the short."""
    bars = {"ts": np.arange(1, 5, dtype=np.int64) * MINUTE, "open": np.array([100.0, 100.0, 100.0, 80.0]),
            "high": np.array([100.0, 100.0, 100.0, 80.0]), "low": np.array([100.0, 100.0, 100.0, 80.0]),
            "close": np.array([100.0, 100.0, 100.0, 80.0])}
    sig = np.zeros((4, 4))
    sig[0, LONG_ENTRY] = 1.0
    sig[2, SHORT_ENTRY] = 1.0
    ours = run_ours(bars, sig, 0.0, 0.0, 10.0)
    long_qty = INIT / 100.0
    assert ours["trades"].shape[0] == 1
    assert ours["trades"]["pnl"][0] == pytest.approx(-20.0 * long_qty, rel=1e-12)
    assert ours["qty"] == pytest.approx(-(INIT - 20.0 * long_qty) / 80.0, rel=1e-12)
    pf = run_vbt(bars, sig, 0.0, 0.0, 10.0)
    assert pf.assets().to_numpy()[-1] == 0.0
    assert first_stop_over_reversal(pf, sig, bars["close"]) == 3


# ------------------------------------------------------------------------------ real bars


def ema(x: np.ndarray, span: int) -> np.ndarray:
    alpha = 2.0 / (span + 1.0)
    out = np.empty_like(x)
    acc = x[0]
    for i, v in enumerate(x):
        acc = acc + alpha * (v - acc) if v == v else acc
        out[i] = acc
    return out


def cross_signals(close: np.ndarray, fast: int = 10, slow: int = 50) -> np.ndarray:
    """EMA(fast/slow) of the closes (NaN bars carry the last value): column 0 = fast crosses above,
    column 1 = fast crosses below (on bars with a price)."""
    ok = np.isfinite(close)
    first = np.flatnonzero(ok)[0]
    diff = np.full(close.shape, np.nan)
    diff[first:] = ema(close[first:], fast) - ema(close[first:], slow)
    prev = np.r_[np.nan, diff[:-1]]
    out = np.zeros((close.shape[0], 2))
    out[:, 0] = ok & (prev <= 0) & (diff > 0)
    out[:, 1] = ok & (prev >= 0) & (diff < 0)
    return out


def real_cases(cross: np.ndarray) -> dict[str, tuple[np.ndarray, float | None]]:
    up, down = cross[:, 0], cross[:, 1]
    z = np.zeros_like(up)
    return {"reversals_no_stop": (np.c_[up, z, down, z], None),
            "long_trail": (np.c_[up, down, z, z], 0.5),
            "short_trail": (np.c_[z, z, down, up], 0.5),
            "reversals_trail": (np.c_[up, z, down, z], 1.0)}


def check_real(bars: dict[str, np.ndarray], fee_bps: float, slip_bps: float, min_trades: int) -> None:
    cross = cross_signals(bars["close"])
    for name, (sig, trail) in real_cases(cross).items():
        counts = assert_same(bars, sig, fee_bps, slip_bps, trail)
        assert counts["trades"] >= min_trades, name


def test_real_ftx_btc_perp_1m(real_data: Path) -> None:
    """FTX BTC-PERP 1-minute bars, 2021-12-31 23:01 -> 2022-02-01 05:31 UTC (45,031 bars; the
    timestamp is taken as the bar's open time), EMA(10/50) cross, taker 7 bps, 1 bp slippage."""
    df = pl.read_csv(real_data / "bars" / "ftx_btc-perp_1m_2022-01.csv")
    assert df.height == 45_031  # README
    opens = (df["timestamp"].str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC").dt.epoch("ns")).to_numpy()
    bars = {"ts": opens + MINUTE, **{k: df[k].to_numpy().astype(np.float64) for k in ("open", "high", "low", "close")}}
    check_real(bars, 7.0, 1.0, 200)


def test_real_binance_adabtc_klines(real_data: Path) -> None:
    """Binance Vision ADABTC 1-minute klines, two full days (prices ~3e-5 BTC: a scale far from 1)."""
    frames = [pl.read_csv(real_data / "bars" / f"ADABTC-1m-2021-11-{d}.csv", has_header=False) for d in (27, 28)]
    df = pl.concat(frames)
    assert df.height == 2 * 1440
    bars = {"ts": df[:, 6].to_numpy().astype(np.int64) * 1_000_000 + 1_000_000,  # close time ms + 1 ms
            **{k: df[:, i].to_numpy().astype(np.float64) for i, k in enumerate(("open", "high", "low", "close"), 1)}}
    check_real(bars, 10.0, 2.0, 10)


def test_real_eurusd_minute_grid_with_gaps(real_data: Path) -> None:
    """HistData EURUSD M1, January 2017 (EST without daylight saving = UTC-5), laid on a full
    1-minute grid: weekends and quiet minutes become NaN bars with signals decided around them."""
    df = pl.read_csv(real_data / "bars" / "DAT_ASCII_EURUSD_M1_201701.csv", has_header=False, separator=";",
                     new_columns=["t", "open", "high", "low", "close", "v"])
    opens = (df["t"].str.to_datetime("%Y%m%d %H%M%S", time_zone="UTC").dt.epoch("ns").to_numpy()
             + 5 * 3_600_000_000_000)
    grid = np.arange(opens[0], opens[-1] + MINUTE, MINUTE)
    at = np.searchsorted(grid, opens)
    assert np.array_equal(grid[at], opens)
    bars = {"ts": grid + MINUTE}
    for k in ("open", "high", "low", "close"):
        bars[k] = np.full(grid.size, np.nan)
        bars[k][at] = df[k].to_numpy()
    assert np.isnan(bars["close"]).sum() > 10_000  # weekends
    check_real(bars, 0.5, 0.2, 50)
