"""The backtest driver: invariants on random runs (hypothesis), batch == chunked resume == split loop ==
stream step, the config path (``backtest()``) on hand-built tapes, and the invariant checker itself."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emerald.backtest.engine import NO_TRIGGERS, backtest, loops_for, run_events
from emerald.errors import DataError
from emerald.events.table import EventTable
from emerald.execution import kernels as K
from emerald.model.enums import Kind
from emerald.strategy.base import load_config
from emerald.testing.backtest import assert_run_invariants
from tests.backtest._strategies import (
    SCRIPT_PATH,
    T0,
    S,
    funding,
    intent,
    marks,
    prepare,
    quotes,
    run_script,
    trades,
    write_trades_tape,
)

LIN, INV, SPOT = "binance-usdm:BTCUSDT", "binance-coinm:BTCUSD_PERP", "binance-spot:BTCUSDT"


# ------------------------------------------------------------------------------ random runs


def random_events(seed: int, n: int) -> tuple[EventTable, np.ndarray]:
    """Three instruments (linear perp with quotes, marks and funding; inverse perp; spot) on random walks with
    duplicate timestamps, and a random script of intents at a third of the trade and quote events."""
    rng = np.random.default_rng(seed)
    tables = []
    for inst, p0 in ((LIN, 100.0), (INV, 20_000.0), (SPOT, 50.0)):
        ts = T0 + np.cumsum(rng.choice([0, 1, 2, 5], n) * (S // 2) + rng.integers(0, 3, n))
        px = np.round(p0 * np.exp(np.cumsum(rng.normal(0, 0.004, n))), 2)
        tables.append(trades(inst, ts.tolist(), px.tolist()))
        if inst == LIN:
            qts = ts[::3] + 1
            mid = px[::3]
            tables.append(quotes(inst, qts.tolist(), (mid - 0.05).tolist(), (mid + 0.05).tolist()))
            tables.append(marks(inst, (ts[::7] + 2).tolist(), (px[::7] * 1.0005).tolist()))
            fts = ts[::11] + 3
            tables.append(funding(inst, fts.tolist(), rng.normal(0, 0.002, fts.size).tolist(), 3600 * S,
                                  (rng.random(fts.size) < 0.8).tolist()))
    events = EventTable.from_tables(tables)
    sig = np.full((len(events), 9), np.nan)
    act = np.isin(events.kind, [int(Kind.TRADES), int(Kind.QUOTES)]) & (rng.random(len(events)) < 0.33)
    idx = np.flatnonzero(act)
    sig[idx, 0] = rng.integers(1, 4, idx.size)
    sig[idx, 1] = np.round(rng.uniform(0.5, 1.0, idx.size) * np.array([200.0, 200.0, 300.0])[events.inst[idx]], 3)
    px = np.where(events.kind[idx] == int(Kind.TRADES), events.f[0, idx], 0.5 * (events.f[0, idx] + events.f[2, idx]))
    long_ = sig[idx, 0] == 1
    with_stop = rng.random(idx.size) < 0.3
    sig[idx[with_stop], 2] = np.where(long_, px * 0.985, px * 1.015)[with_stop]
    lim = rng.random(idx.size) < 0.2
    sig[idx[lim], 5] = K.LIMIT
    sig[idx[lim], 6] = np.where(long_, px * 0.999, px * 1.001)[lim]
    sig[:, 8] = (rng.random(len(events)) < 0.02).astype(float)
    return events, sig


EXECUTION = st.fixed_dictionaries({
    "latency_ms": st.sampled_from([0.0, 50.0, 1000.0]),
    "slippage_bps": st.sampled_from([0.0, 3.0]),
    "sizing": st.sampled_from(["qty", "qty", "fraction", "all_cash"]),
    "trail_pct": st.sampled_from([None, 0.5, 2.0]),
    "stop_pct": st.sampled_from([None, 1.0]),
    "adverse_exits": st.booleans(),
    "expiry_s": st.sampled_from([0.0, 3.0]),
    "decay": st.booleans(),
    "breaker": st.booleans(),
    "leverage": st.sampled_from([1.0, 5.0, 20.0]),
    "max_notional_pct": st.sampled_from([50.0, 500.0]),
    "max_hold_s": st.sampled_from([0.0, 20.0]),
    "equity_interval_s": st.sampled_from([1.0, 60.0]),
    "cascade_long_col": st.sampled_from([None, "cascade"]),
    "allow_spot_short": st.booleans(),
})


def run_batch(events, sig, capacity=4096, **ex):
    strategy, sparams, state = prepare(events, capacity=capacity, **ex)
    run_events(strategy, sparams, events, sig, state)
    return state


def same_state(a, b) -> None:
    assert a.acct.tobytes() == b.acct.tobytes()
    assert a.pos.tobytes() == b.pos.tobytes() and a.ords.tobytes() == b.ords.tobytes()
    c = a.acct[0]
    n = {0: c["n_fills"], 1: c["n_orders"], 2: c["n_trades"], 3: c["n_equity"], 4: c["n_refusals"], 5: c["n_fills"],
         6: None, 7: c["n_decisions"], 8: c["n_firings"]}
    assert len(a.out) == len(n), "new output buffers: compare them here too"
    for k, rows in n.items():
        assert a.out[k][:rows].tobytes() == b.out[k][:rows].tobytes(), f"output buffer {k} differs"


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 120), ex=EXECUTION)
def test_random_runs_keep_the_invariants(seed, n, ex):
    events, sig = random_events(seed, n)
    state = run_batch(events, sig, **ex)
    assert_run_invariants(state, events)


def loop_args(events, sig, strategy, sparams, state) -> tuple:
    """The arguments of the generated module's ``event_loop_nb`` / ``event_step_nb`` after ``start`` / ``i``
    (as :func:`emerald.backtest.engine.run_events` passes them)."""
    decide = np.zeros(9, np.bool_)
    for kind in strategy.decide_kinds:
        decide[int(Kind.parse(kind))] = True
    books = (np.full((1, 1), np.nan),) * 4
    return (events.ts, events.kind, events.inst, events.row, np.ascontiguousarray(events.f),
            np.ascontiguousarray(sig), decide, state.insts, state.pos, state.ords, state.acct, state.out,
            state.params, sparams, np.zeros(0), K.new_intents(max(4, 2 * state.pos.shape[0])), -1, *books,
            NO_TRIGGERS)


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 80), cut=st.floats(0.0, 1.0), ex=EXECUTION)
def test_batch_equals_chunked_resume_equals_split_loop(seed, n, cut, ex):
    events, sig = random_events(seed, n)
    batch = run_batch(events, sig, **ex)
    assert_run_invariants(batch, events)
    same_state(batch, run_batch(events, sig, capacity=8, **ex))  # grows and resumes many times
    # event_loop_nb over [0, k), then over [k, n) of the full arrays (a driver resuming where it stopped)
    strategy, sparams, split = prepare(events, **ex)
    loops = loops_for(strategy)
    k = int(cut * len(events))
    assert loops.event_loop_nb(0, *loop_args(events.slice(0, k), sig[:k], strategy, sparams, split)) == k
    assert loops.event_loop_nb(k, *loop_args(events, sig, strategy, sparams, split)) == len(events)
    same_state(batch, split)


def test_stream_step_by_step_equals_batch():
    # the stream drivers call event_step_nb(i) with the full arrays, one event at a time
    events, sig = random_events(11, 150)
    ex = {"latency_ms": 50.0, "trail_pct": 0.5, "breaker": True, "leverage": 5.0, "max_notional_pct": 500.0}
    batch = run_batch(events, sig, **ex)
    strategy, sparams, stream = prepare(events, **ex)
    loops = loops_for(strategy)
    args = loop_args(events, sig, strategy, sparams, stream)
    for i in range(len(events)):
        loops.event_step_nb(i, *args)
    same_state(batch, stream)
    assert batch.acct[0]["n_fills"] > 10


# ------------------------------------------------------------------------------ the invariant checker can fail


def test_invariant_checker_catches_broken_ledgers():
    ts = [T0 + k * S for k in range(6)]
    tables = [trades(LIN, ts, [100.0, 101.0, 102.0, 103.0, 104.0, 105.0])]
    script = {ts[0]: intent("long", size=2.0), ts[2]: intent("close")}
    state, events = run_script(tables, script, slippage_bps=1.0)
    assert_run_invariants(state, events)
    for field, value, message in (("fee", 1.0, "fees"), ("price", 101.5, "trade 0 pnl_price"),
                                  ("ts", ts[0] + S // 20, "before its order's eligible time"),
                                  ("qty", 3.0, "quantity")):
        state, events = run_script(tables, script, slippage_bps=1.0)
        state.out[0][0][field] = value
        with pytest.raises(AssertionError, match=message):
            assert_run_invariants(state, events)
    # a fill at a price no event had at its time (the replay itself balanced: both legs moved by the same)
    state, events = run_script(tables, script)
    state.out[0]["price"][:2] += 0.5
    state.out[2][0]["fees"] = state.out[0]["fee"][:2].sum()
    with pytest.raises(AssertionError, match="no price of an event"):
        assert_run_invariants(state, events)
    state, events = run_script(tables, script)
    state.acct[0]["cash"] += 0.01  # money from nowhere
    with pytest.raises(AssertionError, match="cash"):
        assert_run_invariants(state, events)
    state, events = run_script(tables, script)
    state.out[2][0]["pnl"] += 0.01
    with pytest.raises(AssertionError, match="trade 0 pnl"):
        assert_run_invariants(state, events)


# ------------------------------------------------------------------------------ the config path


def scripted_config(enter_i: int, exit_i: int, **execution: object):
    ex = {"latency_ms": 100.0, "fraction": 0.25, "trail_pct": None, "decay": False, "breaker": False, **execution}
    return load_config({"strategy": SCRIPT_PATH, "instruments": [LIN], "mode": "event",
                        "params": {"enter_i": enter_i, "exit_i": exit_i, "direction": 1}, "execution": ex})


def test_backtest_from_a_config_matches_a_hand_computation(tmp_path):
    # 600 trades one second apart from 01:00 UTC (no funding settlement in the window); long 25 % of equity
    # decided at trade 100, filled at trade 101 + 1 bp slippage; closed at trade 401 - 1 bp; 5 bps taker fees
    k = np.arange(600)
    ts = T0 + 3600 * S + k * S
    px = np.round(60_000 + 40 * np.sin(k / 25.0) + k * 0.5, 1)
    write_trades_tape(tmp_path, LIN, ts, px)
    res = backtest(scripted_config(100, 400), tmp_path)
    assert_run_invariants(res)
    qty = D(25_000) / D(str(px[100]))
    buy = D(str(px[101])) * D("1.0001")
    sell = D(str(px[401])) * D("0.9999")
    fees = qty * buy * D("0.0005") + qty * sell * D("0.0005")
    final = D(100_000) + qty * (sell - buy) - fees
    assert res.trades.height == 1
    assert float(res.equity["equity"][-1]) == pytest.approx(float(final), rel=1e-12)
    assert res.pnl["total"] == pytest.approx(float(final - 100_000), rel=1e-9)
    assert res.fills["ts"].to_list() == [int(ts[101]), int(ts[401])]
    assert res.manifest["events"] == 600 and any("latency" in x or "100 ms" in x for x in res.manifest["assumptions"])


def test_missing_funding_settlement_stops_the_run(tmp_path):
    # trades across 08:00 UTC on an 8-hourly perp with no funding rows: a DataError naming the settlement
    ts = T0 + 7 * 3600 * S + np.arange(0, 7200, 10) * S
    write_trades_tape(tmp_path, LIN, ts, np.full(ts.size, 100.0))
    with pytest.raises(DataError, match="2024-03-04T08:00:00Z"):
        backtest(scripted_config(5, 10), tmp_path)
    res = backtest(scripted_config(5, 10, allow_missing_funding=True), tmp_path)
    assert res.manifest["coverage"]["funding"][LIN]["n_missing"] == 1
    assert_run_invariants(res)


def test_ema_cross_keeps_the_invariants(tmp_path):
    # the reference strategy (EMA 10/50 of 1-minute closes, trailing stop, 1 bp slippage) on 3 h of a random walk
    rng = np.random.default_rng(5)
    ts = T0 + 3600 * S + np.arange(5400) * 2 * S
    write_trades_tape(tmp_path, LIN, ts, np.round(60_000 * np.exp(np.cumsum(rng.normal(0, 3e-4, ts.size))), 1))
    cfg = load_config({"strategy": "ema_cross", "instruments": [LIN], "params": {"fast": 10, "slow": 50, "bar_s": 60},
                       "execution": {"fraction": 0.5, "trail_pct": 0.5}})
    res = backtest(cfg, tmp_path)
    assert_run_invariants(res)
    assert res.trades.height >= 3
