"""A scripted test strategy for the execution tests.

Load it with :func:`emerald.strategy.base.load_strategy` (``SCRIPT_PATH``) everywhere, also in the
tests that call :func:`emerald.backtest.engine.run_events` directly: a strategy config names it by
path, and one module name means one generated (and disk-cached) loop for every test.

Two ways to script it:

* signal columns (``run_events`` with a hand-made ``sig`` matrix): at each event whose ``ACTION``
  column is 1 (long), 2 (short) or 3 (close), it writes one intent with the row's size, stop, ATR,
  conviction, order type, limit price and instrument (NaN: the defaults / the event's instrument);
* parameters (a config run, no signal columns): long (``direction`` 1) or short (-1) at the
  trade event of index ``enter_i`` of the merged stream, close at ``exit_i`` (-1: never).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from emerald.events.table import EventTable
from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.model.enums import Kind
from emerald.signals.base import Param
from emerald.strategy.base import StrategyDef

SCRIPT_PATH = str(Path(__file__).resolve())
# signal columns of a scripted row
ACTION, SIZE, STOP, ATR, CONV, OTYPE, LIMIT, INST, CASCADE = range(9)
N_COLS = 9


@njit(cache=True)
def script_decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    """Follow the script of the module docstring."""
    if sig.shape[0] == 0:
        if i == sp[0].enter_i:
            set_intent_nb(intents, 0, inst[i], LONG if sp[0].direction > 0 else SHORT, signal=0)
            return 1
        if i == sp[0].exit_i:
            set_intent_nb(intents, 0, inst[i], CLOSE)
            return 1
        return 0
    a = sig[0]
    if not (a > 0.0):
        return 0
    j = inst[i] if sig[7] != sig[7] else int(sig[7])
    size = 1.0 if sig[1] != sig[1] else sig[1]
    conv = -1 if sig[4] != sig[4] else int(sig[4])
    otype = 0 if sig[5] != sig[5] else int(sig[5])
    action = int(a)
    if action == 1:
        action = LONG
    elif action == 2:
        action = SHORT
    else:
        action = CLOSE
    set_intent_nb(intents, 0, j, action, size=size, stop=sig[2], atr=sig[3], conviction=conv, otype=otype,
                  limit=sig[6], signal=0 if action == LONG else 1)
    return 1


def _signals(params, ctx):
    return []


STRATEGY = StrategyDef(
    name="scripted",
    description="Test strategy: follows a script of intents (signal columns) or enters/exits at given events.",
    params=(
        Param("enter_i", "event", -1, -1, 10**12, "stream index of the entry (config runs)", integer=True),
        Param("exit_i", "event", -1, -1, 10**12, "stream index of the close (config runs)", integer=True),
        Param("direction", "sign", 1, -1, 1, "1 long, -1 short", integer=True),
    ),
    decide_nb=script_decide_nb,
    signals=_signals,
    decide_kinds=("funding", "prices", "book", "quotes", "trades", "bars"),
    signal_names=("long", "short"),
    kinds=("trades", "funding", "prices", "quotes"),
)


# ------------------------------------------------------------------------------ harness

S = 1_000_000_000
T0 = 1_709_510_400 * S  # 2024-03-04T00:00:00Z, a Monday
COLUMNS = ["action", "size", "stop", "atr", "conviction", "otype", "limit", "inst", "cascade"]
ACTIONS = {"long": 1.0, "short": 2.0, "close": 3.0}
# neutral execution defaults of the tests: exact quantities, known fees, no stop/expiry/breaker
BASE = {"initial_equity": 100_000.0, "latency_ms": 100.0, "slippage_bps": 0.0, "maker_bps": 2.0, "taker_bps": 5.0,
        "sizing": "qty", "trail_pct": None, "decay": False, "expiry_s": 0.0, "breaker": False}


def script_strategy() -> StrategyDef:
    """The canonical StrategyDef of this file, loaded by path (one module name everywhere)."""
    from emerald.strategy.base import load_strategy

    return load_strategy(SCRIPT_PATH)[0]


def trades(inst: str, ts: list[int], px: list[float], qty: float = 1.0) -> tuple:
    venue, symbol = inst.split(":")
    n = len(ts)
    return ("trades", venue, symbol, {"ts_event": np.asarray(ts, np.int64), "price": np.asarray(px, float),
                                      "qty": np.full(n, qty), "side": np.ones(n)})


def quotes(inst: str, ts: list[int], bid: list[float], ask: list[float]) -> tuple:
    venue, symbol = inst.split(":")
    n = len(ts)
    return ("quotes", venue, symbol, {"ts_event": np.asarray(ts, np.int64), "bid_px": np.asarray(bid, float),
                                      "bid_qty": np.ones(n), "ask_px": np.asarray(ask, float), "ask_qty": np.ones(n)})


def funding(inst: str, ts: list[int], rate: list[float], interval_ns: int, settle: list[bool] | None = None) -> tuple:
    venue, symbol = inst.split(":")
    n = len(ts)
    return ("funding", venue, symbol, {"ts_event": np.asarray(ts, np.int64), "rate": np.asarray(rate, float),
                                       "interval_ns": np.full(n, interval_ns, np.int64),
                                       "next_funding_ts": np.asarray(ts, np.int64) + interval_ns,
                                       "is_settlement": np.ones(n, bool) if settle is None else np.asarray(settle)})


def marks(inst: str, ts: list[int], mark: list[float]) -> tuple:
    venue, symbol = inst.split(":")
    n = len(ts)
    return ("prices", venue, symbol, {"ts_event": np.asarray(ts, np.int64), "mark": np.asarray(mark, float),
                                      "index": np.full(n, np.nan), "spot_ref": np.full(n, np.nan)})


def intent(action: str, *, kind: str = "trades", inst: str | None = None, **fields: float) -> dict:
    """One scripted intent, placed at the event of ``kind`` (and of instrument ``inst`` when given)
    at the script key's time; ``fields``: size, stop, atr, conviction, otype, limit, target (instrument
    index of the intent), cascade (1: flag a reversal at that event, no intent when action is "none");
    ``row``: the event's row in its source table (to tell events of the same nanosecond apart)."""
    return {"action": action, "kind": kind, "inst": inst, **fields}


def script_matrix(events: EventTable, script: dict[int, dict | list[dict]]) -> np.ndarray:
    """The ``sig`` matrix of a script ``{ts: intent(...) or [intent(...), ...]}``."""
    sig = np.full((len(events), len(COLUMNS)), np.nan)
    names = [f"{v}:{s}" for v, s in events.instruments]
    for ts, rows in script.items():
        for row in rows if isinstance(rows, list) else [rows]:
            mask = (events.ts == ts) & (events.kind == int(Kind.parse(row["kind"])))
            if row["inst"] is not None:
                mask &= events.inst == names.index(row["inst"])
            if "row" in row:
                mask &= events.row == row["row"]
            idx = np.flatnonzero(mask)
            assert idx.size == 1, f"script key {ts} ({row}) matches {idx.size} events"
            i = idx[0]
            sig[i, 0] = ACTIONS.get(row["action"], np.nan)
            for key, col in (("size", 1), ("stop", 2), ("atr", 3), ("conviction", 4), ("otype", 5), ("limit", 6),
                             ("target", 7), ("cascade", 8)):
                if key in row:
                    sig[i, col] = row[key]
    return sig


def prepare(events: EventTable, *, capacity: int = 4096, **execution: object):
    """``(strategy, sparams, state)`` ready for ``run_events`` over ``events`` with the test defaults."""
    from emerald.backtest.config import check_execution, exec_params
    from emerald.backtest.engine import instrument_table, new_state

    strategy = script_strategy()
    ex = check_execution({**BASE, **execution})
    state = new_state(instrument_table(events.instruments, ex), exec_params(ex, COLUMNS), capacity)
    return strategy, strategy.make_params().record, state


def run_script(tables: list[tuple], script: dict, *, capacity: int = 4096, **execution: object):
    """Run the scripted strategy over the events of ``tables``; returns ``(state, events)``."""
    from emerald.backtest.engine import run_events

    events = EventTable.from_tables(tables)
    strategy, sparams, state = prepare(events, capacity=capacity, **execution)
    run_events(strategy, sparams, events, script_matrix(events, script), state)
    return state, events


def write_trades_tape(root: Path, inst: str, ts: np.ndarray, px: np.ndarray) -> None:
    """A tape with one instrument's trades (qty 1, alternating sides)."""
    from emerald.tape.writer import TapeWriter

    venue, symbol = inst.split(":")
    n = len(ts)
    with TapeWriter(root) as w:
        w.write("trades", venue, symbol, {
            "ts_event": np.asarray(ts, np.int64), "ts_recv": np.asarray(ts, np.int64), "price": np.asarray(px, float),
            "qty": np.ones(n), "side": np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8),
            "trade_id": np.arange(1, n + 1, dtype=np.int64)}, source="test")


def table(state, k: int, names: tuple[str, ...] | None = None) -> list[dict]:
    """Output buffer ``k`` of ``state`` (0 fills, 1 orders, 2 trades, 3 equity, 4 refusals) as dicts."""
    a = state.acct[0]
    n = (a["n_fills"], a["n_orders"], a["n_trades"], a["n_equity"], a["n_refusals"])[k]
    rows = state.out[k][:n]
    return [{f: (r[f].item()) for f in (names or rows.dtype.names)} for r in rows]
