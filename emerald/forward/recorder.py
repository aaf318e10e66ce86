"""The forward-test recorder: strategies in stream mode over an event source, every signal
firing appended durably to the signal log.

Stream mode is the same code as the backtest, one event at a time: the strategy's metrics
advance through :class:`~emerald.signals.metric_set.MetricSet.update` (the members' ``step_nb``)
and the event through the generated loop module's ``event_step_nb`` (the execution kernels, the
firing kernel and the strategy's decision kernel), on length-1 buffers. Positions are simulated
by the backtester's fill model (nothing is traded), so the strategy's decisions are exactly the
backtester's; :func:`backtest_signal_rows` turns a batch run into log rows the same way, which is
what the parity tests compare.

Durability: rows are committed in one DuckDB transaction with the stream position, at most
``commit_interval_s`` (100 ms) apart, and immediately when the strategy places an entry order
(a signal is durable before anything acts on it). Signal ids are deterministic (run id, event
index, instrument, signal, direction) and the primary key, so a recorder killed at any point and
started again replays from the beginning of the run — fast-forwarding in batch up to the last
committed event, whose state equals the stream state by the kernel contract — and inserts only
what was not yet committed: no duplicates, nothing committed lost (RELIABILITY TK2). The counts
``emitted`` (rows the kernels produced) and ``recorded`` (rows of the run in the log) are
compared at the end (invariant I5).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from emerald._codegen import sources_digest
from emerald.backtest.engine import NO_TRIGGERS, Prepared, State, grow, loops_for, prepare, run_events
from emerald.errors import ConfigError
from emerald.events.table import N_FIELDS, EventTable
from emerald.execution import kernels as K
from emerald.forward.log import SIGNAL_COLUMNS, SignalLog, digest, signal_id
from emerald.model.enums import Kind
from emerald.signals.metric_set import MetricSet
from emerald.strategy.base import StrategyConfig

ROOT = Path(__file__).resolve().parents[1]


def code_hash(config: StrategyConfig) -> str:
    paths = [p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts]
    return sources_digest([*paths, config.module_path])


def run_identity(prep: Prepared, fitted_hash: str) -> dict[str, Any]:
    config = prep.config
    data_hash = prep.manifest(prep.new_state(), 0)["data_hash"]
    ident = {"strategy": config.strategy.name, "config": config.resolved(), "fitted_hash": fitted_hash,
             "data_hash": data_hash, "start": prep.start_ns, "end": prep.end_ns}
    return {"run_id": digest(ident), "config_hash": digest(config.resolved()), "fitted_hash": fitted_hash,
            "data_hash": data_hash, "code_hash": code_hash(config)}


def log_rows(prep: Prepared, ident: dict[str, Any], firings: np.ndarray, decisions: np.ndarray,
             inputs_at: Callable[[int], np.ndarray], ts_recorded: int) -> pl.DataFrame:
    """Signal-log rows for a batch of firings and decisions (both drivers use this)."""
    config = prep.config
    names = [f"{v}:{s}" for v, s in config.instruments]
    trig_names = [t.name for t in prep.trigs]
    labels = list(config.strategy.score_labels)
    rows: list[dict[str, Any]] = []
    run_id = ident["run_id"]
    for r in firings:
        e = int(r["event"])
        inst = names[int(r["inst"])]
        name = trig_names[int(r["trigger"])]
        d = int(r["direction"])
        rows.append({"kind": "firing", "ts_event": int(r["ts"]), "event_index": e, "instrument": inst,
                     "signal": name, "direction": d, "value": float(r["value"]), "threshold": float(r["threshold"]),
                     "weight": float(r["weight"]),
                     "score": float(r["score_long"] if d > 0 else r["score_short"]),
                     "score_long": float(r["score_long"]), "score_short": float(r["score_short"]),
                     "breakdown": None, "price": None,
                     "signal_id": signal_id(run_id, "firing", e, inst, name, d), "inputs": _inputs(prep, inputs_at(e))})
    for r in decisions:
        e = int(r["event"])
        inst = names[int(r["inst"])]
        s = int(r["signal"])
        name = config.strategy.signal_names[s] if 0 <= s < len(config.strategy.signal_names) else "decision"
        d = int(r["action"])
        breakdown = {lab: float(r["contrib"][k]) for k, lab in enumerate(labels[: K.N_CONTRIB])} if labels else None
        rows.append({"kind": "decision", "ts_event": int(r["ts"]), "event_index": e, "instrument": inst,
                     "signal": name, "direction": d, "value": None, "threshold": None, "weight": None,
                     "score": float(r["score"]), "score_long": None, "score_short": None,
                     "breakdown": orjson.dumps(breakdown).decode() if breakdown is not None else None,
                     "price": float(r["price"]), "signal_id": signal_id(run_id, "decision", e, inst, name, d),
                     "inputs": _inputs(prep, inputs_at(e))})
    common = {"run_id": run_id, "ts_recorded": ts_recorded, "strategy": config.strategy.name,
              "code_hash": ident["code_hash"], "config_hash": ident["config_hash"],
              "fitted_hash": ident["fitted_hash"]}
    schema = {"signal_id": pl.Utf8, "run_id": pl.Utf8, "kind": pl.Utf8, "ts_event": pl.Int64, "ts_recorded": pl.Int64,
              "event_index": pl.Int64, "strategy": pl.Utf8, "instrument": pl.Utf8, "signal": pl.Utf8,
              "direction": pl.Int32, "value": pl.Float64, "threshold": pl.Float64, "weight": pl.Float64,
              "score": pl.Float64, "score_long": pl.Float64, "score_short": pl.Float64, "breakdown": pl.Utf8,
              "inputs": pl.Utf8, "price": pl.Float64, "code_hash": pl.Utf8, "config_hash": pl.Utf8,
              "fitted_hash": pl.Utf8}
    return pl.DataFrame([{**r, **common} for r in rows], schema=schema).select(SIGNAL_COLUMNS)


def _inputs(prep: Prepared, row: np.ndarray) -> str:
    return orjson.dumps({c: (float(v) if np.isfinite(v) else None) for c, v in zip(prep.columns, row, strict=True)}
                        ).decode()


def backtest_signal_rows(config: StrategyConfig, root: str | Path, *, fitted: dict[str, Any] | None = None,
                         fitted_hash: str = "none") -> pl.DataFrame:
    """The signal-log rows of a batch (backtester) run: what the recorder must reproduce."""
    prep = prepare(config, root, fitted)
    if config.mode != "event":
        raise ConfigError("the recorder runs strategies in event mode; set mode = \"event\"")
    ident = run_identity(prep, fitted_hash)
    events = prep.events()
    sig = MetricSet([m for _, m in prep.metrics]).run(events) if prep.metrics else np.zeros((len(events), 0))
    state = prep.new_state()
    run_events(config.strategy, config.params.record, events, sig, state, prep.wt, prep.trig)
    a = state.acct[0]
    return log_rows(prep, ident, state.out[8][: a["n_firings"]], state.out[7][: a["n_decisions"]],
                    lambda e: sig[e], 0)


class Recorder:
    """Record ``config``'s signals into the log at ``log_path``.

    Parameters
    ----------
    fitted, fitted_hash
        A fitted artifact's weights and thresholds and its hash (recorded with every row).
    commit_interval_s
        Group-commit interval (at most 100 ms by default).
    """

    def __init__(self, config: StrategyConfig, log_path: str | Path, *, fitted: dict[str, Any] | None = None,
                 fitted_hash: str = "none", commit_interval_s: float = 0.1) -> None:
        if config.mode != "event":
            raise ConfigError("the recorder runs strategies in event mode; set mode = \"event\" in the config")
        self.config = config
        self.log_path = Path(log_path)
        self.fitted = fitted
        self.fitted_hash = fitted_hash
        self.commit_interval_s = commit_interval_s

    def replay(self, root: str | Path, *, speed: float | None = None,
               on_commit: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Replay the tape at ``root`` through the strategy (``speed``: multiple of real time; None:
        as fast as possible). Returns the run's counts."""
        prep = prepare(self.config, root, self.fitted)
        ident = run_identity(prep, self.fitted_hash)
        run_id = ident["run_id"]
        events = prep.events()
        with SignalLog(self.log_path) as log:
            existing = log.run(run_id)
            if existing and existing["status"] == "finished":
                return {"run_id": run_id, "status": "already recorded", "emitted": existing["emitted"],
                        "recorded": existing["recorded"], "events": len(events), "resumed_from": len(events)}
            log.start_run({**ident, "strategy": self.config.strategy.name,
                           "config": orjson.dumps(self.config.resolved()).decode(), "source": f"replay:{root}",
                           "start": prep.start_ns, "end": prep.end_ns, "started_at": time.time_ns()})
            done, emitted_before = log.progress(run_id)
            stream = _Stream(prep, events)
            if done:
                stream.fast_forward(done)
                if stream.emitted() != emitted_before:
                    raise RuntimeError(f"signal log {self.log_path}: replaying the first {done} events produced "
                                       f"{stream.emitted()} signals, the log says {emitted_before}; the code, config "
                                       f"or data changed under run {run_id}")
            self._stream(stream, log, ident, done, speed, on_commit)
            emitted = stream.emitted()
            recorded = log.finish_run(run_id, emitted, time.time_ns())
        return {"run_id": run_id, "status": "finished", "emitted": emitted, "recorded": recorded,
                "events": len(events), "resumed_from": done, "log": str(self.log_path)}

    def _stream(self, stream: _Stream, log: SignalLog, ident: dict[str, Any], start: int, speed: float | None,
                on_commit: Callable[[int, int], None] | None) -> None:
        events = stream.events
        n = len(events)
        pending: list[pl.DataFrame] = []
        last_commit = time.monotonic()
        wall0 = time.monotonic()
        ts0 = int(events.ts[start]) if start < n else 0
        run_id = ident["run_id"]
        f0, d0 = stream.counts()
        for i in range(start, n):
            if speed:
                ahead = (int(events.ts[i]) - ts0) / 1e9 / speed - (time.monotonic() - wall0)
                if ahead > 0:
                    time.sleep(ahead)
            row = stream.step(i)
            f1, d1 = stream.counts()
            decided = d1 > d0
            if f1 > f0 or decided:
                a = stream.state.out
                pending.append(log_rows(stream.prep, ident, a[8][f0:f1], a[7][d0:d1], lambda e, r=row: r,
                                        time.time_ns()))
                f0, d0 = f1, d1
            now = time.monotonic()
            # an entry order is durable before it can fill (at a later event); others group-commit
            if pending and (decided or now - last_commit >= self.commit_interval_s):
                log.commit(run_id, pl.concat(pending), i + 1, stream.emitted())
                pending.clear()
                last_commit = now
                if on_commit is not None:
                    on_commit(i + 1, stream.emitted())
        log.commit(run_id, pl.concat(pending) if pending else None, n, stream.emitted())
        if on_commit is not None:
            on_commit(n, stream.emitted())


class _Stream:
    """One strategy advanced event by event (the stream driver)."""

    def __init__(self, prep: Prepared, events: EventTable) -> None:
        self.prep = prep
        self.events = events
        self.state: State = prep.new_state()
        self.loops = loops_for(prep.config.strategy)
        self.mset = MetricSet([m for _, m in prep.metrics]) if prep.metrics else None
        if self.mset is not None:
            self.mset._bind_from(events)
        self.decide = np.zeros(9, np.bool_)
        for kind in prep.config.strategy.decide_kinds:
            self.decide[int(Kind.parse(kind))] = True
        self.book_inst, self.books = -1, (np.full((1, 1), np.nan),) * 4
        if events.books:
            self.book_inst = min(events.books)
            b = events.books[self.book_inst]
            self.books = (b.bid_px, b.bid_qty, b.ask_px, b.ask_qty)
        self.intents = K.new_intents(max(4, 2 * self.state.pos.shape[0]))
        self.ts1 = np.zeros(1, np.int64)
        self.kind1 = np.zeros(1, np.int8)
        self.inst1 = np.zeros(1, np.int32)
        self.row1 = np.zeros(1, np.int64)
        self.f1 = np.full((N_FIELDS, 1), np.nan)
        self.sig1 = np.zeros((1, len(prep.columns)))
        self.trig = prep.trig if prep.trig.shape[0] else NO_TRIGGERS

    def counts(self) -> tuple[int, int]:
        a = self.state.acct[0]
        return int(a["n_firings"]), int(a["n_decisions"])

    def emitted(self) -> int:
        f, d = self.counts()
        return f + d

    def fast_forward(self, k: int) -> None:
        """Apply events ``[0, k)`` with the batch kernels (state equal to streaming them)."""
        part = self.events.slice(0, k)
        sig = self.mset.run(part) if self.mset is not None else np.zeros((k, 0))
        run_events(self.prep.config.strategy, self.prep.config.params.record, part, sig, self.state, self.prep.wt,
                   self.trig)

    def step(self, i: int) -> np.ndarray:
        ev = self.events
        self.ts1[0], self.kind1[0], self.inst1[0], self.row1[0] = ev.ts[i], ev.kind[i], ev.inst[i], ev.row[i]
        self.f1[:, 0] = ev.f[:, i]
        if self.mset is not None:
            self.sig1[0] = self.mset.update(int(ev.ts[i]), int(ev.kind[i]), int(ev.inst[i]), int(ev.row[i]),
                                            ev.f[:, i])
        st = self.state
        if not self.loops.room_nb(st.acct, st.out, st.pos.shape[0]):
            grow(st)
        self.loops.event_step_nb(0, self.ts1, self.kind1, self.inst1, self.row1, self.f1, self.sig1, self.decide,
                                 st.insts, st.pos, st.ords, st.acct, st.out, st.params,
                                 self.prep.config.params.record, self.prep.wt, self.intents, self.book_inst,
                                 *self.books, self.trig)
        return self.sig1[0]
