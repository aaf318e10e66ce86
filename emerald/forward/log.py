"""The signal log: a DuckDB file that the recorder appends to and the labeller, the per-signal
report and the fitter read.

Schema
------
``runs``
    one row per recording run: ``run_id`` (deterministic: hash of strategy, config, fitted artifact,
    data and window), ``strategy``, ``config`` (resolved JSON), ``code_hash``, ``config_hash``,
    ``fitted_hash``, ``data_hash``, ``source`` (``replay:<root>`` / ``live:<venue>``), ``start``,
    ``end`` (ns), ``status`` (``running`` / ``finished``), ``emitted``, ``recorded``,
    ``started_at``, ``finished_at`` (wall-clock ns, informational).
``progress``
    ``run_id``, ``events`` (events applied and committed), ``emitted`` (signal rows produced so
    far): written in the same transaction as the signals, so a restart knows exactly what is durable.
``signals``
    one row per signal firing or decision: ``signal_id`` (primary key; a deterministic hash of the
    run and the firing, so a replay after a crash inserts nothing twice), ``run_id``, ``kind``
    (``firing``: a scored condition turned long/short; ``decision``: the strategy placed an entry
    order), ``ts_event`` (ns, event time), ``ts_recorded`` (ns, wall clock at commit),
    ``event_index`` (position in the event stream), ``strategy``, ``instrument`` (``venue:SYMBOL``),
    ``signal`` (trigger name, or the decision's signal), ``direction`` (+1 / -1), ``value``,
    ``threshold``, ``weight``, ``score`` (the side's score), ``score_long``, ``score_short``,
    ``breakdown`` (JSON: per-trigger contribution), ``inputs`` (JSON: every signal column at that
    event), ``price`` (the instrument's last price at the event), ``code_hash``, ``config_hash``,
    ``fitted_hash``.
``outcomes``
    written by ``emerald label`` (see :mod:`emerald.forward.label`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, strategy VARCHAR, config VARCHAR, code_hash VARCHAR, config_hash VARCHAR,
    fitted_hash VARCHAR, data_hash VARCHAR, source VARCHAR, "start" BIGINT, "end" BIGINT, status VARCHAR,
    emitted BIGINT, recorded BIGINT, started_at BIGINT, finished_at BIGINT);
CREATE TABLE IF NOT EXISTS progress (run_id VARCHAR PRIMARY KEY, events BIGINT, emitted BIGINT);
CREATE TABLE IF NOT EXISTS signals (
    signal_id VARCHAR PRIMARY KEY, run_id VARCHAR, kind VARCHAR, ts_event BIGINT, ts_recorded BIGINT,
    event_index BIGINT, strategy VARCHAR, instrument VARCHAR, signal VARCHAR, direction INTEGER, value DOUBLE,
    threshold DOUBLE, weight DOUBLE, score DOUBLE, score_long DOUBLE, score_short DOUBLE, breakdown VARCHAR,
    inputs VARCHAR, price DOUBLE, code_hash VARCHAR, config_hash VARCHAR, fitted_hash VARCHAR);
"""

SIGNAL_COLUMNS = ("signal_id", "run_id", "kind", "ts_event", "ts_recorded", "event_index", "strategy", "instrument",
                  "signal", "direction", "value", "threshold", "weight", "score", "score_long", "score_short",
                  "breakdown", "inputs", "price", "code_hash", "config_hash", "fitted_hash")


def digest(obj: Any) -> str:
    """sha256 of a JSON-serialisable object (keys sorted), 32 hex digits."""
    return hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)).hexdigest()[:32]


def signal_id(run_id: str, kind: str, event_index: int, instrument: str, signal: str, direction: int) -> str:
    """Deterministic id of one firing: the same run over the same data gives the same ids."""
    key = f"{run_id}|{kind}|{event_index}|{instrument}|{signal}|{direction}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class SignalLog:
    """Append-only access to a signal-log file (one writer at a time)."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            from emerald.errors import ConfigError

            raise ConfigError(f"signal log {self.path} does not exist")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(self.path), read_only=read_only)
        if not read_only:
            self.con.execute(SCHEMA)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> SignalLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM runs WHERE run_id = ?", [run_id])
        return rows.to_dicts()[0] if rows.height else None

    def start_run(self, row: dict[str, Any]) -> None:
        self.con.execute("INSERT OR IGNORE INTO runs SELECT * FROM (SELECT ?::VARCHAR run_id, ?::VARCHAR strategy, "
                         "?::VARCHAR config, ?::VARCHAR code_hash, ?::VARCHAR config_hash, ?::VARCHAR fitted_hash, "
                         "?::VARCHAR data_hash, ?::VARCHAR source, ?::BIGINT, ?::BIGINT, 'running', 0, 0, ?::BIGINT, "
                         "NULL)",
                         [row["run_id"], row["strategy"], row["config"], row["code_hash"], row["config_hash"],
                          row["fitted_hash"], row["data_hash"], row["source"], row["start"], row["end"],
                          row["started_at"]])
        self.con.execute("INSERT OR IGNORE INTO progress VALUES (?, 0, 0)", [row["run_id"]])

    def progress(self, run_id: str) -> tuple[int, int]:
        row = self.con.execute("SELECT events, emitted FROM progress WHERE run_id = ?", [run_id]).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def commit(self, run_id: str, rows: pl.DataFrame | None, events: int, emitted: int) -> None:
        """One transaction: the new signal rows (ids already present are skipped) and the progress."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            if rows is not None and rows.height:
                self.con.register("_new_signals", rows.select(SIGNAL_COLUMNS))
                self.con.execute("INSERT OR IGNORE INTO signals SELECT * FROM _new_signals")
                self.con.unregister("_new_signals")
            self.con.execute("UPDATE progress SET events = ?, emitted = ? WHERE run_id = ?", [events, emitted, run_id])
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    def finish_run(self, run_id: str, emitted: int, finished_at: int) -> int:
        recorded = self.count(run_id)
        self.con.execute("UPDATE runs SET status = 'finished', emitted = ?, recorded = ?, finished_at = ? "
                         "WHERE run_id = ?", [emitted, recorded, finished_at, run_id])
        return recorded

    def count(self, run_id: str) -> int:
        return int(self.con.execute("SELECT count(*) FROM signals WHERE run_id = ?", [run_id]).fetchone()[0])

    def signals(self, run_id: str | None = None) -> pl.DataFrame:
        if run_id is None:
            return self.query("SELECT * FROM signals ORDER BY run_id, event_index, signal_id")
        return self.query("SELECT * FROM signals WHERE run_id = ? ORDER BY event_index, signal_id", [run_id])

    def runs(self) -> pl.DataFrame:
        return self.query("SELECT * FROM runs ORDER BY started_at, run_id")

    def query(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        """Run ``sql`` and return the result as a polars DataFrame."""
        return pl.from_arrow(self.con.sql(sql, params=params or None).to_arrow_table())  # type: ignore[return-value]
