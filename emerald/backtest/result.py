"""What a backtest returns: :class:`RunResult` (one run) and :class:`SweepResult` (a grid / walk-forward).

A result holds tables, not objects: every table is a :class:`polars.DataFrame` with the columns
listed below, timestamps as int64 nanoseconds UTC, money in the account currency (the quote
currency of the instruments, USD/USDT), quantities in base units (contracts for inverse perps).
Reports read these tables and never recompute a metric.

Tables
------
orders
    ``order_id, ts_decision, ts_eligible, inst, side (+1 buy/-1 sell), qty, type ("market"/"limit"),
    limit_px, status ("filled"/"expired"/"cancelled"), reason, ts_done``
fills
    ``fill_id, order_id, ts, inst, side, qty, price, fee, liquidity ("maker"/"taker"), slippage
    (cost in money versus the reference price), reason``
trades
    closed round trips: ``trade_id, inst, direction (+1 long/-1 short), entry_ts, exit_ts, entry_px,
    exit_px, qty, pnl_price, fees, funding, slippage, pnl, return_pct (pnl / entry notional, %),
    r_multiple (pnl / initial risk; NaN without a stop), exit_reason, signal``
equity
    sampled curve: ``ts, equity, cash, unrealized, gross_exposure, net_exposure, positions``
    (one row per sampling interval and one per fill; the last row is the end of the run)
positions
    position after every fill: ``ts, inst, qty, avg_px``
refusals
    every refused or forced action: ``ts, inst, action, reason, value, count, last_ts`` (``value``:
    the number the rule compared, e.g. the notional that was below the minimum; a repeat of the
    previous row is counted in ``count``, its last time in ``last_ts``)
prices
    the price of each instrument at the equity samples, for charts: ``ts, inst, price``
attribution
    per signal: ``signal, trades, pnl, win_rate`` (the signal that opened each trade)
decisions
    one row per entry order placed: ``ts, inst, action, order_id, score, price, stop, signal,
    explanation`` and ``contrib.<signal>`` per scored signal (weighted-score strategies)
firings
    signal firings (a scored trigger turning long or short): ``ts, event, inst, signal, direction,
    value, threshold, weight, score_long, score_short``

``pnl`` is the decomposition ``{"price", "fees", "funding", "slippage", "total"}`` with
``total == price - fees - funding`` exactly (slippage is already inside ``price``; reported
apart so its cost is visible). ``stats`` comes from :func:`emerald.backtest.stats.compute_stats`.
``manifest`` is the run manifest of ARCHITECTURE §10 (data content hash, code version,
resolved config, seed, start/end, coverage, assumptions).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl

TABLES = ("orders", "fills", "trades", "equity", "positions", "refusals", "prices", "attribution")


@dataclass
class RunResult:
    """One backtest run (see module docstring for every table's columns)."""

    manifest: dict[str, Any]
    orders: pl.DataFrame
    fills: pl.DataFrame
    trades: pl.DataFrame
    equity: pl.DataFrame
    positions: pl.DataFrame
    refusals: pl.DataFrame
    prices: pl.DataFrame
    attribution: pl.DataFrame
    pnl: dict[str, float]
    stats: dict[str, Any] = field(default_factory=dict)
    go_live: list[dict[str, Any]] = field(default_factory=list)
    decisions: pl.DataFrame = field(default_factory=pl.DataFrame)
    firings: pl.DataFrame = field(default_factory=pl.DataFrame)

    def digest(self) -> str:
        """sha256 of orders, fills, trades and the equity curve (LEAN ``OrderListHash`` style):
        equal digests mean equal results, whatever the executor, worker count or chunk size."""
        h = hashlib.sha256()
        for name in ("orders", "fills", "trades", "equity"):
            df: pl.DataFrame = getattr(self, name)
            h.update(name.encode())
            h.update(orjson.dumps(df.columns))
            for col in df.columns:
                s = df[col]
                h.update(s.cast(pl.Utf8).fill_null("∅").str.join("\x1f").item().encode() if s.dtype == pl.Utf8
                         else s.to_numpy().tobytes())
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: stats, trade count, pnl decomposition, go-live table, digest."""
        return {"stats": self.stats, "trades": self.trades.height, "pnl": self.pnl, "go_live": self.go_live,
                "digest": self.digest(), "refusals": self.refusals.height}


@dataclass
class SweepResult:
    """A parameter grid, optionally walk-forward.

    ``grid``: one row per configuration: the parameters (one column each, prefixed ``p.``) and the
    stats of the run (``total_return``, ``sharpe``, ``max_drawdown``, ``trades`` ...).
    ``folds``: walk-forward only, one row per fold: ``fold, is_start, is_end, oos_start, oos_end``,
    the chosen parameters (``p.*``), in-sample stats (``is.*``) and out-of-sample stats (``oos.*``).
    ``oos``: the out-of-sample runs stitched together (a :class:`RunResult`) or None.
    ``n_configs``: how many configurations were tried (for the multiple-testing warning).
    """

    manifest: dict[str, Any]
    grid: pl.DataFrame
    folds: pl.DataFrame | None
    oos: RunResult | None
    n_configs: int
    objective: str = "sharpe"
    best: dict[str, Any] = field(default_factory=dict)
