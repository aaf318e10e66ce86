"""The backtest driver: strategy config + tape -> :class:`~emerald.backtest.result.RunResult`.

Event mode runs the strategy's metrics over the merged event table (batch kernels), then one
compiled loop (:mod:`emerald.backtest._loops`) that applies every event through the execution
kernels and calls the strategy's decision kernel. Bar mode builds UTC-aligned time bars from the
trades (a wide ``bars x instruments`` matrix), runs the metrics over the bars and loops over bars.
Both loops stop when an output buffer is nearly full; the driver grows it and resumes (the
state is explicit, so the result equals one uninterrupted run, whatever the buffer sizes).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import polars as pl

from emerald import __version__
from emerald._codegen import load_generated, sources_digest
from emerald.backtest import _loops
from emerald.backtest.config import assumptions, exec_params
from emerald.backtest.result import RunResult
from emerald.errors import ConfigError, DataError
from emerald.events.table import EventTable
from emerald.execution import kernels as K
from emerald.model.enums import InstrumentKind, Kind
from emerald.model.instruments import get_instrument
from emerald.signals.metric_set import MetricSet
from emerald.strategy.base import StrategyConfig, StrategyDef

ROOT = Path(__file__).resolve().parents[1]
INST_KIND = {InstrumentKind.SPOT: K.SPOT, InstrumentKind.LINEAR_PERP: K.LINEAR,
             InstrumentKind.INVERSE_PERP: K.INVERSE, InstrumentKind.FOREX: K.FOREX}


@dataclass(frozen=True)
class SignalContext:
    """What a strategy's ``signals()`` may depend on besides its parameters."""

    instruments: list[tuple[str, str]]
    mode: str
    bar_ns: int | None


# ------------------------------------------------------------------------------ compiled loops


def loops_for(strategy: StrategyDef) -> ModuleType:
    """The loop module compiled for ``strategy``'s decision kernel (generated, disk-cached)."""
    fn = strategy.decide_nb.py_func
    template = Path(_loops.__file__).read_text()
    marker = next(line for line in template.splitlines() if line.endswith("# DECIDE"))
    deps = [*(ROOT / "execution").glob("*.py"), *(ROOT / "strategy").glob("*.py"), Path(_loops.__file__)]
    mod_file = getattr(__import__("sys").modules.get(fn.__module__), "__file__", None)
    if mod_file:
        deps.append(Path(mod_file))
    src = template.replace(marker, f"from {fn.__module__} import {fn.__name__} as decide_nb  # DECIDE\n"
                                   f"# kernel sources {sources_digest(deps)}")
    return load_generated(src, "emerald_loops", "loops")


# ------------------------------------------------------------------------------ inputs


def instrument_table(instruments: list[tuple[str, str]], ex: dict[str, Any]) -> np.ndarray:
    insts = np.zeros(len(instruments), K.INST_DTYPE)
    for j, (venue, symbol) in enumerate(instruments):
        spec = get_instrument(venue, symbol)
        insts[j]["kind"] = INST_KIND[spec.kind]
        insts[j]["contract_size"] = spec.contract_size if spec.kind == InstrumentKind.INVERSE_PERP else 1.0
        maker = spec.maker_fee_bps if ex["maker_bps"] is None else ex["maker_bps"]
        taker = spec.taker_fee_bps if ex["taker_bps"] is None else ex["taker_bps"]
        insts[j]["maker_fee"] = maker / 1e4
        insts[j]["taker_fee"] = taker / 1e4
        insts[j]["leverage"] = 1.0 if spec.kind == InstrumentKind.SPOT else ex["leverage"]
        insts[j]["maint_margin"] = ex["maint_margin_pct"] / 100.0
    return insts


def funding_coverage(tape: Any, instruments: list[tuple[str, str]], start_ns: int, end_ns: int,
                     allow_missing: bool) -> dict[str, Any]:
    """Expected vs present funding settlements of every perp in ``[start, end)``; a missing one is
    a :class:`DataError` unless ``allow_missing``."""
    out: dict[str, Any] = {}
    for venue, symbol in instruments:
        spec = get_instrument(venue, symbol)
        if not spec.is_perp:
            continue
        step = spec.funding_interval_ns
        first = -(-start_ns // step) * step
        expected = np.arange(first, end_ns, step, dtype=np.int64)
        present = np.empty(0, np.int64)
        if any(e.kind == "funding" for e in tape.entries("funding", venue, symbol)):
            t = tape.read_arrow("funding", venue, symbol, start_ns, end_ns, with_ids=False)
            ts = t.column("ts_event").to_numpy()
            settle = t.column("is_settlement").to_numpy(zero_copy_only=False)
            present = np.unique(ts[settle])
        missing = np.setdiff1d(expected, present)
        out[f"{venue}:{symbol}"] = {"expected_settlements": int(expected.size),
                                    "present_settlements": int(np.isin(expected, present).sum()),
                                    "missing": [_iso(x) for x in missing[:20]], "n_missing": int(missing.size)}
        if missing.size and not allow_missing:
            raise DataError(f"{missing.size} funding settlement(s) of {venue}:{symbol} missing from the tape in the run "
                            f"window (first {_iso(missing[0])}); pass allow_missing_funding = true to run anyway",
                            path=str(tape.root), field="funding.is_settlement", value=_iso(missing[0]))
    return out


def _iso(ns: int | np.integer) -> str:
    return np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="s") + "Z"


UNITS = {"s": 1_000_000_000, "m": 60_000_000_000, "min": 60_000_000_000, "h": 3_600_000_000_000,
         "d": 86_400_000_000_000}


def parse_duration(text: str, what: str = "duration") -> int:
    """``"5m"`` -> nanoseconds (units s, m/min, h, d)."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*", str(text))
    if m is None:
        raise ConfigError(f"`{what}` must look like 30s, 5m, 1h or 1d, was {text!r}")
    return int(round(float(m.group(1)) * UNITS[m.group(2)]))


def _bar_ns(text: str) -> int:
    ns = parse_duration(text, "bar")
    if ns <= 0 or 86_400_000_000_000 % ns:
        raise ConfigError(f"`bar` must divide 24 h, was {text!r}")
    return ns


def bars_from_trades(tape: Any, instruments: list[tuple[str, str]], bar_ns: int, start: Any = None,
                     end: Any = None) -> dict[str, np.ndarray]:
    """UTC-aligned time bars of every instrument's trades on one grid: ``ts`` (bar close, int64[T])
    and ``open, high, low, close, volume`` float64[T, N] (NaN where an instrument has no trade)."""
    frames = []
    for j, (venue, symbol) in enumerate(instruments):
        lf = tape.scan("trades", venue, symbol, start, end).select("ts_event", "price", "qty")
        frames.append(
            lf.with_columns(((pl.col("ts_event") // bar_ns) * bar_ns + bar_ns).alias("close_ts"))
            .group_by("close_ts", maintain_order=True)
            .agg(pl.col("price").first().alias("open"), pl.col("price").max().alias("high"),
                 pl.col("price").min().alias("low"), pl.col("price").last().alias("close"),
                 pl.col("qty").sum().alias("volume"))
            .with_columns(pl.lit(j, pl.Int32).alias("j")).collect())
    df = pl.concat(frames).sort(["close_ts", "j"])
    grid = np.unique(df["close_ts"].to_numpy())
    t_idx = np.searchsorted(grid, df["close_ts"].to_numpy())
    j_idx = df["j"].to_numpy()
    out: dict[str, np.ndarray] = {"ts": grid}
    for name in ("open", "high", "low", "close", "volume"):
        m = np.full((grid.size, len(instruments)), np.nan)
        m[t_idx, j_idx] = df[name].to_numpy()
        out[name] = m
    return out


# ------------------------------------------------------------------------------ state


@dataclass
class State:
    insts: np.ndarray
    pos: np.ndarray
    ords: np.ndarray
    acct: np.ndarray
    out: tuple[np.ndarray, ...]
    params: np.ndarray


def new_state(insts: np.ndarray, params: np.ndarray, capacity: int = 4096) -> State:
    n = insts.shape[0]
    pos = np.zeros(n, K.POS_DTYPE)
    for name in ("stop", "trail", "mark", "bid", "ask"):
        pos[name] = np.nan
    ords = np.zeros(n, K.ORDER_STATE)
    acct = np.zeros(1, K.ACCOUNT_DTYPE)
    acct[0]["cash"] = acct[0]["equity"] = acct[0]["day_start"] = params[0]["initial_equity"]
    acct[0]["day"] = -1
    window = max(int(params[0]["corr_window"]), 1)
    out = (np.zeros(capacity, K.FILL_DTYPE), np.zeros(capacity, K.ORDER_DTYPE), np.zeros(capacity, K.TRADE_DTYPE),
           np.zeros(capacity, K.EQUITY_DTYPE), np.zeros(capacity, K.REFUSAL_DTYPE), np.zeros((capacity, 4)),
           np.full((window, n), np.nan), np.zeros(capacity, K.DECISION_DTYPE), np.zeros(capacity, K.FIRING_DTYPE))
    return State(insts, pos, ords, acct, out, params)


def grow(state: State) -> None:
    """Double every output buffer (their filled rows are kept)."""
    out = []
    for k, buf in enumerate(state.out):
        if k == 6:
            out.append(buf)
            continue
        new = np.zeros((buf.shape[0] * 2, *buf.shape[1:]), buf.dtype)
        new[:buf.shape[0]] = buf
        out.append(new)
    state.out = tuple(out)


# ------------------------------------------------------------------------------ runs


NO_TRIGGERS = np.zeros((0, 5))


def run_events(strategy: StrategyDef, sparams: np.ndarray, events: EventTable, sig: np.ndarray, state: State,
               fitted: np.ndarray | None = None, trig: np.ndarray | None = None) -> State:
    """Event mode over ``events`` with signal matrix ``sig`` (n_events x k); ``fitted`` is the
    weighted-score vector and ``trig`` the packed trigger table (:mod:`emerald.strategy.score`)."""
    loops = loops_for(strategy)
    decide = np.zeros(9, np.bool_)
    for kind in strategy.decide_kinds:
        decide[int(Kind.parse(kind))] = True
    book_inst, books = -1, (np.full((1, 1), np.nan),) * 4
    if events.books:
        book_inst = min(events.books)
        b = events.books[book_inst]
        books = (b.bid_px, b.bid_qty, b.ask_px, b.ask_qty)
    intents = K.new_intents(max(4, 2 * state.pos.shape[0]))
    fitted = np.zeros(0) if fitted is None else fitted
    sig = np.ascontiguousarray(sig, dtype=np.float64)
    i = 0
    n = len(events)
    while i < n:
        i = loops.event_loop_nb(i, events.ts, events.kind, events.inst, events.row, events.f, sig, decide,
                                state.insts, state.pos, state.ords, state.acct, state.out, state.params, sparams,
                                fitted, intents, book_inst, *books, NO_TRIGGERS if trig is None else trig)
        if i < n:
            grow(state)
    return state


def run_bar_matrix(strategy: StrategyDef, sparams: np.ndarray, bars: dict[str, np.ndarray], bar_ns: int,
                   sig: np.ndarray, state: State, funding: np.ndarray | None = None,
                   fitted: np.ndarray | None = None, trig: np.ndarray | None = None) -> State:
    """Bar mode over wide matrices (``bars x instruments``); ``sig`` is ``bars x instruments x k``."""
    loops = loops_for(strategy)
    intents = K.new_intents(max(4, 2 * state.pos.shape[0]))
    ts1, kind1 = np.zeros(1, np.int64), np.full(1, int(Kind.BARS), np.int8)
    inst1, f1 = np.zeros(1, np.int32), np.full((8, 1), np.nan)
    f1[7, 0] = bar_ns
    fund = np.zeros((0, 0)) if funding is None else np.ascontiguousarray(funding, dtype=np.float64)
    fitted = np.zeros(0) if fitted is None else fitted
    t = 0
    n = bars["ts"].shape[0]
    o, h, lo, c = (np.ascontiguousarray(bars[k], dtype=np.float64) for k in ("open", "high", "low", "close"))
    sig = np.ascontiguousarray(sig, dtype=np.float64)
    while t < n:
        t = loops.bar_loop_nb(t, bars["ts"], bar_ns, o, h, lo, c, fund, sig, state.insts, state.pos, state.ords,
                              state.acct, state.out, state.params, sparams, fitted, intents, ts1, kind1, inst1, f1,
                              NO_TRIGGERS if trig is None else trig)
        if t < n:
            grow(state)
    return state


def finish(state: State, end_ns: int) -> None:
    """Close the run: a last equity sample at ``end_ns`` (open positions stay open, marked)."""
    a = state.acct[0]
    if a["n_equity"] + 1 >= state.out[3].shape[0]:
        grow(state)
    K.equity_sample_nb(state.insts, state.pos, state.acct, state.out, state.params, end_ns)


# ------------------------------------------------------------------------------ result


def _names(codes: np.ndarray) -> pl.Series:
    return pl.Series([K.REASONS[int(c)] if 0 <= c < len(K.REASONS) else "unknown" for c in codes], dtype=pl.Utf8)


def build_result(config: StrategyConfig, state: State, instruments: list[tuple[str, str]], *, start_ns: int,
                 end_ns: int, manifest: dict[str, Any], prices: pl.DataFrame,
                 trigger_values: np.ndarray | None = None) -> RunResult:
    from emerald.backtest.stats import compute_stats, go_live_table

    a = state.acct[0]
    fills_a = state.out[0][: a["n_fills"]]
    orders_a = state.out[1][: a["n_orders"]]
    trades_a = state.out[2][: a["n_trades"]]
    eq_a = state.out[3][: a["n_equity"]]
    ref_a = state.out[4][: a["n_refusals"]]
    pos_a = state.out[5][: a["n_fills"]]
    names = [f"{v}:{s}" for v, s in instruments]

    def inst_col(idx: np.ndarray) -> pl.Series:
        return pl.Series([names[int(j)] if j >= 0 else "portfolio" for j in idx], dtype=pl.Utf8)

    fills = pl.DataFrame({
        "fill_id": fills_a["fill_id"], "order_id": fills_a["order_id"], "ts": fills_a["ts"],
        "inst": inst_col(fills_a["inst"]), "side": fills_a["side"], "qty": fills_a["qty"], "price": fills_a["price"],
        "fee": fills_a["fee"], "liquidity": pl.Series(np.where(fills_a["maker"], "maker", "taker").tolist(), dtype=pl.Utf8),
        "slippage": fills_a["slippage"], "reason": _names(fills_a["reason"])})
    status = np.array(["filled", "expired", "cancelled", "working"])
    orders = pl.DataFrame({
        "order_id": orders_a["order_id"], "ts_decision": orders_a["ts_decision"],
        "ts_eligible": orders_a["ts_eligible"], "inst": inst_col(orders_a["inst"]), "side": orders_a["side"],
        "qty": orders_a["qty"], "type": pl.Series(np.where(orders_a["otype"] == K.LIMIT, "limit", "market").tolist(),
                                                  dtype=pl.Utf8),
        "limit_px": orders_a["limit_px"], "status": pl.Series(status[orders_a["status"]].tolist(), dtype=pl.Utf8),
        "reason": _names(orders_a["reason"]), "ts_done": orders_a["ts_done"]})
    signal_names = list(config.strategy.signal_names)
    trades = pl.DataFrame({
        "trade_id": trades_a["trade_id"], "inst": inst_col(trades_a["inst"]), "direction": trades_a["direction"],
        "entry_ts": trades_a["entry_ts"], "exit_ts": trades_a["exit_ts"], "entry_px": trades_a["entry_px"],
        "exit_px": trades_a["exit_px"], "qty": trades_a["qty"], "pnl_price": trades_a["pnl_price"],
        "fees": trades_a["fees"], "funding": trades_a["funding"], "slippage": trades_a["slippage"],
        "pnl": trades_a["pnl"],
        "return_pct": trades_a["pnl"] / np.where(trades_a["notional"] > 0, trades_a["notional"], np.nan) * 100.0,
        "r_multiple": trades_a["pnl"] / np.where(trades_a["risk"] > 0, trades_a["risk"], np.nan),
        "exit_reason": _names(trades_a["exit_reason"]),
        "signal": pl.Series([signal_names[s] if 0 <= s < len(signal_names) else "unattributed"
                             for s in trades_a["signal"]], dtype=pl.Utf8)})
    equity = pl.DataFrame({name: eq_a[name] for name in K.EQUITY_DTYPE.names})
    positions = pl.DataFrame({"ts": pos_a[:, 0].astype(np.int64), "inst": inst_col(pos_a[:, 1].astype(np.int64)),
                              "qty": pos_a[:, 2], "avg_px": pos_a[:, 3]})
    refusals = pl.DataFrame({"ts": ref_a["ts"], "inst": inst_col(ref_a["inst"]), "action": ref_a["action"],
                             "reason": _names(ref_a["reason"]), "value": ref_a["value"], "count": ref_a["count"],
                             "last_ts": ref_a["last_ts"]})
    attribution = (trades.group_by("signal", maintain_order=True)
                   .agg(pl.len().alias("trades"), pl.col("pnl").sum().alias("pnl"),
                        (pl.col("pnl") > 0).mean().mul(100).alias("win_rate"))
                   .sort("signal") if trades.height else
                   pl.DataFrame(schema={"signal": pl.Utf8, "trades": pl.UInt32, "pnl": pl.Float64,
                                        "win_rate": pl.Float64}))
    # PnL decomposition over the whole run, including the open positions' unrealised PnL
    fees_total = float(fills_a["fee"].sum())
    funding_total = float(state.pos["funding"][state.pos["qty"] != 0].sum() + trades_a["funding"].sum())
    total = float(a["equity"] - state.params[0]["initial_equity"])
    pnl = {"price": total + fees_total + funding_total, "fees": fees_total, "funding": funding_total,
           "slippage": float(fills_a["slippage"].sum()), "total": total}
    result = RunResult(manifest=manifest, orders=orders, fills=fills, trades=trades, equity=equity,
                       positions=positions, refusals=refusals, prices=prices, attribution=attribution, pnl=pnl,
                       decisions=decisions_table(config.strategy, state.out[7][: a["n_decisions"]], names,
                                                 trigger_values))
    result.stats = compute_stats(equity, trades, start_ns=start_ns, end_ns=end_ns,
                                 initial_equity=float(state.params[0]["initial_equity"]), pnl=pnl, fills=fills)
    result.go_live = go_live_table(result.stats)
    return result


def decisions_table(strategy: StrategyDef, d: np.ndarray, names: list[str], values: np.ndarray | None = None
                    ) -> pl.DataFrame:
    """The decision log with an explanation line per entry (see :func:`emerald.strategy.score.explain`);
    ``values``: per decision, the raw value of each scored trigger's signal column (explanations
    then show "OB +0.68" rather than the weighted contribution)."""
    from emerald.strategy.score import explain

    labels = list(strategy.score_labels or strategy.signal_names)
    cols: dict[str, Any] = {"ts": d["ts"], "inst": pl.Series([names[int(j)] for j in d["inst"]], dtype=pl.Utf8),
                            "action": d["action"], "order_id": d["order_id"], "score": d["score"],
                            "price": d["price"], "stop": d["stop"],
                            "signal": pl.Series([strategy.signal_names[s] if 0 <= s < len(strategy.signal_names)
                                                 else "unattributed" for s in d["signal"]], dtype=pl.Utf8)}
    if strategy.score_labels:
        for k, label in enumerate(labels[: K.N_CONTRIB]):
            cols[f"contrib.{label}"] = d["contrib"][:, k]
    cols["explanation"] = pl.Series([
        explain(names[int(r["inst"])], int(r["action"]), float(r["price"]), float(r["score"]),
                r["contrib"][: len(strategy.score_labels)] if strategy.score_labels else np.zeros(0),
                labels if strategy.score_labels else [], stop=float(r["stop"]),
                values=None if values is None else [float(v) for v in values[k]], max_score=strategy.score_max)
        for k, r in enumerate(d)], dtype=pl.Utf8)
    return pl.DataFrame(cols)


def code_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "emerald", "strategies"], cwd=ROOT.parent,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    return f"{__version__}+{sha or 'unknown'}{'.dirty' if dirty else ''}"


def _window(tape: Any, config: StrategyConfig) -> tuple[int, int]:
    from emerald.tape.reader import parse_time

    starts, ends = [], []
    for venue, symbol in config.instruments:
        entries = tape.entries("trades", venue, symbol) or tape.entries(None, venue, symbol)
        if not entries:
            raise ConfigError(f"no data for {venue}:{symbol} in {tape.root}")
        starts.append(min(e.min_ts for e in entries))
        ends.append(max(e.max_ts for e in entries) + 1)
    start = parse_time(config.start, field="start") if config.start else min(starts)
    end = parse_time(config.end, field="end") if config.end else max(ends)
    if end <= start:
        raise ConfigError(f"empty run window: start {config.start!r} is not before end {config.end!r}")
    return int(start), int(end)


def scoring(config: StrategyConfig, columns: list[str], fitted: dict[str, Any] | None
            ) -> tuple[np.ndarray, np.ndarray, list[Any], list[str]]:
    """The packed trigger table, the weighted-score vector (declared defaults, or the fitted
    artifact's values), the triggers and the source of each value."""
    from emerald.strategy.score import pack, resolve

    if config.strategy.triggers is None:
        if fitted:
            raise ConfigError(f"strategy {config.strategy.name} has no scored triggers; a fitted artifact does not apply")
        return NO_TRIGGERS, np.zeros(0), [], []
    trigs = config.strategy.triggers(config.params, columns)
    vec, sources = resolve(trigs, fitted)
    return pack(trigs), vec, trigs, sources


@dataclass
class Prepared:
    """Everything a run needs before its loop: the window, instruments, metrics, scoring and a
    fresh state. The backtester and the recorder both start from this, so they see the same inputs."""

    config: StrategyConfig
    root: Path
    tape: Any
    start_ns: int
    end_ns: int
    coverage: dict[str, Any]
    insts: np.ndarray
    bar_ns: int | None
    metrics: list[tuple[str, Any]]
    columns: list[str]
    params: np.ndarray
    trig: np.ndarray
    wt: np.ndarray
    trigs: list[Any]
    sources: list[str]
    fitted: dict[str, Any] | None

    def new_state(self) -> State:
        return new_state(self.insts, self.params)

    def events(self) -> EventTable:
        return EventTable.from_tape(self.tape, self.config.instruments, self.config.strategy.kinds, self.start_ns,
                                    self.end_ns)

    def manifest(self, state: State, n_events: int, kind: str = "backtest") -> dict[str, Any]:
        config = self.config
        ex = config.execution
        return {
            "kind": kind, "strategy": config.strategy.name,
            "config_path": str(config.path) if config.path else None, "config": config.resolved(),
            "seed": config.seed, "code_version": code_version(), "data_root": str(self.root.resolve()),
            "data_hash": tape_hash(self.tape, config.instruments), "start": _iso(self.start_ns),
            "end": _iso(self.end_ns), "mode": config.mode, "events": n_events, "signal_columns": self.columns,
            "coverage": {"funding": self.coverage}, "assumptions": assumptions(ex, config.mode),
            "fitted": self.fitted is not None,
            "scoring": [{"name": t.name, "weight": float(self.wt[k]), "threshold": float(self.wt[len(self.trigs) + k]),
                         "source": self.sources[k]} for k, t in enumerate(self.trigs)],
            "strategy_counters": {name: float(state.acct[0]["mem"][k]) for k, name in
                                  enumerate(config.strategy.counters)},
        }


def prepare(config: StrategyConfig, root: str | Path, fitted: dict[str, Any] | None = None) -> Prepared:
    from emerald.tape.reader import Tape

    tape = Tape(root)
    start_ns, end_ns = _window(tape, config)
    ex = config.execution
    coverage = funding_coverage(tape, config.instruments, start_ns, end_ns, ex["allow_missing_funding"])
    insts = instrument_table(config.instruments, ex)
    bar_ns = _bar_ns(config.bar) if config.bar else None
    ctx = SignalContext(list(config.instruments), config.mode, bar_ns)
    metrics = config.strategy.signals(config.params, ctx)
    columns = [f"{name}.{o}" for name, m in metrics for o in m.spec.outputs]
    params = exec_params(ex, columns)
    trig, wt, trigs, sources = scoring(config, columns, fitted)
    return Prepared(config, Path(root), tape, start_ns, end_ns, coverage, insts, bar_ns, metrics, columns, params,
                    trig, wt, trigs, sources, fitted)


def backtest(config: StrategyConfig, root: str | Path, *, fitted: dict[str, Any] | None = None) -> RunResult:
    """Backtest ``config`` on the tape at ``root`` (see module docstring); ``fitted``: the weights
    and thresholds of a fitted artifact (``{"weights": {...}, "thresholds": {...}}``)."""
    p = prepare(config, root, fitted)
    state = p.new_state()
    sparams = config.params.record
    if config.mode == "event":
        events = p.events()
        sig = MetricSet([m for _, m in p.metrics]).run(events) if p.metrics else np.zeros((len(events), 0))
        run_events(config.strategy, sparams, events, sig, state, p.wt, p.trig)
        n_events = len(events)
        prices = _prices_from_events(events, config.instruments, config.execution["equity_interval_s"])
    else:
        assert p.bar_ns is not None
        bars = bars_from_trades(p.tape, config.instruments, p.bar_ns, p.start_ns, p.end_ns)
        sig = _bar_signals(p.metrics, bars, p.bar_ns, config.instruments)
        funding = _bar_funding(p.tape, config.instruments, bars["ts"], p.bar_ns, p.start_ns, p.end_ns)
        run_bar_matrix(config.strategy, sparams, bars, p.bar_ns, sig, state, funding, p.wt, p.trig)
        n_events = int(np.isfinite(bars["close"]).sum())
        prices = _prices_from_bars(bars, config.instruments)
    finish(state, p.end_ns)
    values = None
    if config.mode == "event" and p.trigs and config.strategy.score_labels and \
            config.strategy.explain_from == "signals":
        events_of = state.out[7][: state.acct[0]["n_decisions"]]["event"]
        values = sig[events_of][:, [t.column for t in p.trigs]]
    result = build_result(config, state, config.instruments, start_ns=p.start_ns, end_ns=p.end_ns,
                          manifest=p.manifest(state, n_events), prices=prices, trigger_values=values)
    result.firings = firings_table(state, p.trigs, config.instruments)
    return result


def firings_table(state: State, trigs: list[Any], instruments: list[tuple[str, str]]) -> pl.DataFrame:
    """Signal firings of a run (see :func:`emerald.strategy.score.fire_nb`)."""
    f = state.out[8][: state.acct[0]["n_firings"]]
    names = [t.name for t in trigs]
    return pl.DataFrame({
        "ts": f["ts"], "event": f["event"], "inst": pl.Series([f"{instruments[int(j)][0]}:{instruments[int(j)][1]}"
                                                               for j in f["inst"]], dtype=pl.Utf8),
        "signal": pl.Series([names[int(k)] for k in f["trigger"]], dtype=pl.Utf8), "direction": f["direction"],
        "value": f["value"], "threshold": f["threshold"], "weight": f["weight"], "score_long": f["score_long"],
        "score_short": f["score_short"]})


def tape_hash(tape: Any, instruments: list[tuple[str, str]]) -> str:
    """Content hash of every partition of the run's instruments (from the tape manifest)."""
    import hashlib

    h = hashlib.sha256()
    for venue, symbol in instruments:
        for e in sorted(tape.entries(None, venue, symbol), key=lambda e: (e.kind, e.date)):
            h.update(f"{e.kind}/{venue}/{symbol}/{e.date}/{e.sha256}".encode())
    return h.hexdigest()


def _bar_signals(metrics: list[tuple[str, Any]], bars: dict[str, np.ndarray], bar_ns: int,
                 instruments: list[tuple[str, str]]) -> np.ndarray:
    n_t, n_i = bars["close"].shape
    if not metrics:
        return np.zeros((n_t, n_i, 0))
    items = []
    for j, (venue, symbol) in enumerate(instruments):
        ok = np.isfinite(bars["close"][:, j])
        cols = {"ts_event": bars["ts"][ok] - bar_ns, "interval_ns": np.full(ok.sum(), bar_ns, np.int64)}
        for name in ("open", "high", "low", "close", "volume"):
            cols[name] = bars[name][ok, j]
        cols["buy_volume"] = np.full(ok.sum(), np.nan)
        cols["sell_volume"] = np.full(ok.sum(), np.nan)
        items.append(("bars", venue, symbol, cols))
    events = EventTable.from_tables(items)
    values = MetricSet([m for _, m in metrics]).run(events)
    sig = np.full((n_t, n_i, values.shape[1]), np.nan)
    t_idx = np.searchsorted(bars["ts"], events.ts)
    sig[t_idx, events.inst] = values
    return sig


def _bar_funding(tape: Any, instruments: list[tuple[str, str]], grid: np.ndarray, bar_ns: int, start_ns: int,
                 end_ns: int) -> np.ndarray:
    """Settled funding rates on the bar grid: a settlement at ``s`` is applied at the close of the
    bar that contains it (close >= s)."""
    m = np.full((grid.size, len(instruments)), np.nan)
    for j, (venue, symbol) in enumerate(instruments):
        if not any(e.kind == "funding" for e in tape.entries("funding", venue, symbol)):
            continue
        t = tape.read_arrow("funding", venue, symbol, start_ns, end_ns, with_ids=False)
        settle = t.column("is_settlement").to_numpy(zero_copy_only=False)
        ts = t.column("ts_event").to_numpy()[settle]
        rate = t.column("rate").to_numpy()[settle]
        close = -(-ts // bar_ns) * bar_ns
        k = np.searchsorted(grid, close)
        ok = (k < grid.size) & (grid[np.minimum(k, grid.size - 1)] == close)
        m[k[ok], j] = rate[ok]
    return m


def _prices_from_events(events: EventTable, instruments: list[tuple[str, str]], interval_s: float) -> pl.DataFrame:
    trades = events.kind == int(Kind.TRADES)
    step = int(max(interval_s, 60.0) * 1e9)
    frames = []
    for j, (venue, symbol) in enumerate(instruments):
        mask = trades & (events.inst == j)
        if not mask.any():
            q = (events.inst == j) & np.isin(events.kind, [int(Kind.QUOTES), int(Kind.BOOK)])
            ts, px = events.ts[q], 0.5 * (events.f[0, q] + events.f[2, q])
        else:
            ts, px = events.ts[mask], events.f[0, mask]
        if ts.size == 0:
            continue
        frames.append(pl.DataFrame({"ts": ts, "price": px}).with_columns((pl.col("ts") // step * step).alias("b"))
                      .group_by("b", maintain_order=True).agg(pl.col("ts").last(), pl.col("price").last())
                      .select("ts", pl.lit(f"{venue}:{symbol}").alias("inst"), "price"))
    return pl.concat(frames) if frames else pl.DataFrame(schema={"ts": pl.Int64, "inst": pl.Utf8, "price": pl.Float64})


def _prices_from_bars(bars: dict[str, np.ndarray], instruments: list[tuple[str, str]]) -> pl.DataFrame:
    frames = []
    for j, (venue, symbol) in enumerate(instruments):
        ok = np.isfinite(bars["close"][:, j])
        frames.append(pl.DataFrame({"ts": bars["ts"][ok], "inst": f"{venue}:{symbol}", "price": bars["close"][ok, j]}))
    return pl.concat(frames)
