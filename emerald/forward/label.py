"""Outcome labels of the signal log (``emerald label``): what happened after every recorded signal.

For each signal of a run and each horizon ``h`` (1 m, 5 m, 15 m, 1 h, 4 h, 24 h by default) the
labeller reads the instrument's trades from the tape and writes the forward return, the maximum
favourable and adverse excursions, a triple-barrier label and the funding over the hold; for the
strategy's decisions it also stores the would-be trade under the strategy's own exit rules (the
execution kernels, through a backtest of the run's config on the same tape).

Prices and lookahead
--------------------
Every price is a trade price read *as of* a time: the last trade with ``ts_event <= t``. The
entry reference is the as-of price at the signal's ``ts_event`` (a trade at exactly that time
counts, a later one never does); the exit is the as-of price at ``ts_event + h``; the excursions
and the barriers look at the trades with ``ts_event`` in ``(ts, ts + h]``. A signal with no trade
at or before it (within ``vol_window + 1 day``) has no outcome and is counted as ``no_price``.

Coverage: the data end of an instrument is its last trade on the tape. A horizon with
``ts + h`` past the data end gives **no row** (never a partial outcome); such (signal, horizon)
pairs are counted (``uncovered``, per horizon) in the returned dict and in ``outcome_runs``. A gap
inside the tape is not detected here (``emerald data check`` reports gaps): prices across a gap are
the last trade before it.

Tables (in the signal log's DuckDB file)
----------------------------------------
``outcomes``: one row per (signal, covered horizon).

==============  =======  ====================  ==================================================
column          dtype    unit                  notes
==============  =======  ====================  ==================================================
signal_id       VARCHAR                        ``signals.signal_id``
run_id          VARCHAR
horizon         VARCHAR                        as given, e.g. ``"5m"``
horizon_ns      BIGINT   ns
ts_event        BIGINT   ns UTC                the signal's time
direction       INTEGER                        +1 long / -1 short (the signal's)
entry_ts        BIGINT   ns UTC                time of the entry reference trade (``<= ts_event``)
entry_px        DOUBLE   quote per base        its price
exit_px         DOUBLE   quote per base        as-of price at ``ts_event + horizon_ns``
ret             DOUBLE   fraction              ``direction × (exit_px / entry_px − 1)``
mfe             DOUBLE   fraction, >= 0        ``max(0, max direction × (p / entry_px − 1))`` over the
                                               trades in ``(ts, ts + h]``
mae             DOUBLE   fraction, <= 0        ``min(0, min direction × (p / entry_px − 1))``, same trades
barrier         INTEGER                        +1: the take-profit level was touched first, −1: the stop
                                               first, 0: neither within ``h`` (time-out)
barrier_ts      BIGINT   ns UTC                time of the touching trade (NULL for 0)
funding         DOUBLE   fraction of notional  ``direction × Σ rate`` over the settlements in
                                               ``(ts, ts + h]`` (positive: paid); 0 for spot; NaN
                                               when a settlement the instrument's interval implies
                                               is missing from the tape
realised_vol    DOUBLE   annualised fraction   trailing realised volatility as of ``ts``: std (ddof 1)
                                               of the 1-minute log returns of as-of prices on the
                                               grid ``ts − k min``, ``k = 0..vol_window``, times
                                               ``sqrt(minutes per 365-day year)``; NaN when the
                                               window starts before the first trade
==============  =======  ====================  ==================================================

The take-profit level is ``entry_px × (1 + take_profit_pct / 100)`` for a long
(``× (1 − take_profit_pct / 100)`` for a short), the stop ``entry_px × (1 ∓ stop_pct / 100)``; a trade
*at* a level touches it. A settlement at exactly ``ts`` is not in the window: a position taken at
the signal is not yet held at that instant (the kernels' fills come strictly after a decision).

``outcome_trades``: one row per decision (``signals.kind = 'decision'``) of a run labelled with
trades: the would-be trade under the strategy's own exit rules.

==============  =======  =========================  =============================================
column          dtype    unit                       notes
==============  =======  =========================  =============================================
signal_id       VARCHAR
run_id          VARCHAR
order_id        BIGINT                              the backtest's entry order
status          VARCHAR                             ``closed``, ``open_at_end`` (filled, still open
                                                    at the end of the run), ``added`` (filled into
                                                    an open position of the same direction: no
                                                    trade of its own), or the order's status when
                                                    it did not fill (``expired``, ``cancelled``)
trade_id        BIGINT                              NULL unless ``closed``
entry_ts        BIGINT   ns UTC                     entry fill time (NULL when not filled)
exit_ts         BIGINT   ns UTC
entry_px        DOUBLE   quote per base
exit_px         DOUBLE   quote per base
qty             DOUBLE   base units
pnl             DOUBLE   account currency           net of fees and funding (``RunResult.trades``)
ret             DOUBLE   fraction                   ``pnl`` / entry notional
fees            DOUBLE   account currency
funding         DOUBLE   account currency           positive: paid
exit_reason     VARCHAR                             the kernels' reason (``trailing_stop`` ...)
==============  =======  =========================  =============================================

How a decision is matched to its trade: the run's config (with its fitted artifact) is backtested
on the same tape — the recorder and the backtester make the same decisions (the recorder's parity
test), and :func:`label` checks the run identity (strategy, config, fitted artifact, data hash,
window) before it does so. Each logged decision is joined to ``RunResult.decisions`` on (time,
instrument, direction) — unique, since an instrument has at most one working order and fills
come strictly after the decision — which gives the entry order; the order's first fill
(``RunResult.fills`` by ``order_id``) gives the entry time, and the closed trade of that instrument
and direction whose ``entry_ts`` is that fill's time is the decision's trade (a fill through zero
closes the old trade and opens the new one at the same fill, so a reversal matches the new one).
A logged decision the backtest does not reproduce raises :class:`~emerald.errors.DataError`.

``outcome_runs``: one row per labelled run: the parameters (``horizons`` JSON, ``take_profit_pct``,
``stop_pct``, ``vol_window_ns``, ``tape``) and the counts (``signals``, ``rows``, ``uncovered``,
``uncovered_by_horizon`` JSON, ``no_price``, ``funding_unknown``, ``trades`` JSON: decisions per
status, or NULL when trades were not labelled, ``data_end`` JSON: instrument -> ns).

Labelling a run again replaces all its rows in the three tables (one transaction per run).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
from numba import njit

from emerald.backtest.engine import parse_duration
from emerald.errors import ConfigError, DataError
from emerald.forward.log import SignalLog
from emerald.model.instruments import get_instrument

DEFAULT_HORIZONS = ("1m", "5m", "15m", "1h", "4h", "24h")
MINUTE_NS = 60_000_000_000
DAY_NS = 86_400_000_000_000
YEAR_MINUTES = 365 * 24 * 60
BLOCK = 64  # trades per block of the range-extrema tables

OUTCOME_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    signal_id VARCHAR, run_id VARCHAR, horizon VARCHAR, horizon_ns BIGINT, ts_event BIGINT, direction INTEGER,
    entry_ts BIGINT, entry_px DOUBLE, exit_px DOUBLE, ret DOUBLE, mfe DOUBLE, mae DOUBLE, barrier INTEGER,
    barrier_ts BIGINT, funding DOUBLE, realised_vol DOUBLE, PRIMARY KEY (signal_id, horizon));
CREATE TABLE IF NOT EXISTS outcome_trades (
    signal_id VARCHAR PRIMARY KEY, run_id VARCHAR, order_id BIGINT, status VARCHAR, trade_id BIGINT,
    entry_ts BIGINT, exit_ts BIGINT, entry_px DOUBLE, exit_px DOUBLE, qty DOUBLE, pnl DOUBLE, ret DOUBLE,
    fees DOUBLE, funding DOUBLE, exit_reason VARCHAR);
CREATE TABLE IF NOT EXISTS outcome_runs (
    run_id VARCHAR PRIMARY KEY, horizons VARCHAR, take_profit_pct DOUBLE, stop_pct DOUBLE, vol_window_ns BIGINT,
    tape VARCHAR, signals BIGINT, "rows" BIGINT, uncovered BIGINT, uncovered_by_horizon VARCHAR, no_price BIGINT,
    funding_unknown BIGINT, trades VARCHAR, data_end VARCHAR);
"""

OUTCOME_SCHEMA_PL = {
    "signal_id": pl.Utf8, "run_id": pl.Utf8, "horizon": pl.Utf8, "horizon_ns": pl.Int64, "ts_event": pl.Int64,
    "direction": pl.Int32, "entry_ts": pl.Int64, "entry_px": pl.Float64, "exit_px": pl.Float64, "ret": pl.Float64,
    "mfe": pl.Float64, "mae": pl.Float64, "barrier": pl.Int32, "barrier_ts": pl.Int64, "funding": pl.Float64,
    "realised_vol": pl.Float64}
RUN_COLUMNS = ("run_id", "horizons", "take_profit_pct", "stop_pct", "vol_window_ns", "tape", "signals", "rows",
               "uncovered", "uncovered_by_horizon", "no_price", "funding_unknown", "trades", "data_end")
TRADE_SCHEMA_PL = {
    "signal_id": pl.Utf8, "run_id": pl.Utf8, "order_id": pl.Int64, "status": pl.Utf8, "trade_id": pl.Int64,
    "entry_ts": pl.Int64, "exit_ts": pl.Int64, "entry_px": pl.Float64, "exit_px": pl.Float64, "qty": pl.Float64,
    "pnl": pl.Float64, "ret": pl.Float64, "fees": pl.Float64, "funding": pl.Float64, "exit_reason": pl.Utf8}


# ------------------------------------------------------------------------------ kernels


@njit(cache=True)
def block_tables_nb(px, block):
    """Sparse tables of block maxima and minima: ``smax[k, b]`` = max of ``px`` over blocks
    ``[b, b + 2**k)`` of ``block`` trades (the last block may be short)."""
    n = px.size
    nb = (n + block - 1) // block
    levels = 1
    while (1 << levels) <= nb:
        levels += 1
    smax = np.empty((levels, max(nb, 1)))
    smin = np.empty((levels, max(nb, 1)))
    for b in range(nb):
        hi = -np.inf
        lo = np.inf
        for i in range(b * block, min(n, (b + 1) * block)):
            hi = max(hi, px[i])
            lo = min(lo, px[i])
        smax[0, b] = hi
        smin[0, b] = lo
    for k in range(1, levels):
        half = 1 << (k - 1)
        for b in range(nb - (1 << k) + 1):
            smax[k, b] = max(smax[k - 1, b], smax[k - 1, b + half])
            smin[k, b] = min(smin[k - 1, b], smin[k - 1, b + half])
    return smax, smin


@njit(cache=True)
def _range_extrema_nb(px, smax, smin, block, lo, hi):
    """Max and min of ``px[lo..hi]`` (inclusive, ``lo <= hi``)."""
    b0 = lo // block + 1
    b1 = hi // block  # full blocks [b0, b1)
    mx = -np.inf
    mn = np.inf
    if b1 <= b0:
        for i in range(lo, hi + 1):
            mx = max(mx, px[i])
            mn = min(mn, px[i])
        return mx, mn
    for i in range(lo, b0 * block):
        mx = max(mx, px[i])
        mn = min(mn, px[i])
    for i in range(b1 * block, hi + 1):
        mx = max(mx, px[i])
        mn = min(mn, px[i])
    k = 0
    while (1 << (k + 1)) <= b1 - b0:
        k += 1
    mx = max(mx, max(smax[k, b0], smax[k, b1 - (1 << k)]))
    mn = min(mn, min(smin[k, b0], smin[k, b1 - (1 << k)]))
    return mx, mn


@njit(cache=True)
def _first_cross_nb(px, table, block, lo, hi, level, above):
    """First index in ``[lo, hi]`` with ``px >= level`` (``above``) or ``px <= level``; -1 if none.
    ``table`` is the sparse table of block maxima (``above``) or minima."""
    if hi < lo:
        return -1
    edge = min(hi, (lo // block + 1) * block - 1)
    for i in range(lo, edge + 1):
        if (px[i] >= level) if above else (px[i] <= level):
            return i
    if edge == hi:
        return -1
    b = edge // block + 1
    b1 = hi // block  # full blocks [b, b1); the last, partial one is scanned below
    # binary lifting over the blocks that cannot hold a crossing
    for k in range(table.shape[0] - 1, -1, -1):
        if b + (1 << k) <= b1:
            v = table[k, b]
            if (v < level) if above else (v > level):
                b += 1 << k
    start = b * block
    stop = hi if b >= b1 else min(hi, (b + 1) * block - 1)
    for i in range(start, stop + 1):
        if (px[i] >= level) if above else (px[i] <= level):
            return i
    return -1


@njit(cache=True)
def outcomes_nb(ts, px, smax, smin, block, sig_ts, sig_dir, horizons, data_end, tp, sl):
    """Outcomes of every signal at every horizon (see the module docstring for the definitions).

    ``ts``/``px``: the instrument's trades sorted by time; ``horizons`` sorted ascending (ns);
    ``tp``/``sl``: barrier distances as fractions. Returns ``entry`` (index of the entry trade,
    -1: none), and ``(n, H)`` arrays ``covered``, ``exit_px``, ``ret``, ``mfe``, ``mae``, ``barrier``,
    ``barrier_idx`` (-1: none); rows of uncovered horizons are left NaN / 0.
    """
    n = sig_ts.size
    nh = horizons.size
    entry = np.full(n, -1, np.int64)
    covered = np.zeros((n, nh), np.bool_)
    exit_px = np.full((n, nh), np.nan)
    ret = np.full((n, nh), np.nan)
    mfe = np.full((n, nh), np.nan)
    mae = np.full((n, nh), np.nan)
    barrier = np.zeros((n, nh), np.int64)
    barrier_idx = np.full((n, nh), -1, np.int64)
    for i in range(n):
        t0 = sig_ts[i]
        e0 = np.searchsorted(ts, t0, side="right") - 1
        if e0 < 0:
            continue
        entry[i] = e0
        p0 = px[e0]
        d = sig_dir[i]
        last = -1
        for k in range(nh):
            if t0 + horizons[k] <= data_end:
                last = k
        if last < 0:
            continue
        a = e0 + 1
        end_max = np.searchsorted(ts, t0 + horizons[last], side="right") - 1
        if d > 0:
            i_tp = _first_cross_nb(px, smax, block, a, end_max, p0 * (1.0 + tp), True)
            i_sl = _first_cross_nb(px, smin, block, a, end_max, p0 * (1.0 - sl), False)
        else:
            i_tp = _first_cross_nb(px, smin, block, a, end_max, p0 * (1.0 - tp), False)
            i_sl = _first_cross_nb(px, smax, block, a, end_max, p0 * (1.0 + sl), True)
        for k in range(last + 1):
            e = np.searchsorted(ts, t0 + horizons[k], side="right") - 1
            covered[i, k] = True
            exit_px[i, k] = px[e]
            ret[i, k] = d * (px[e] / p0 - 1.0)
            fav = 0.0
            adv = 0.0
            if e >= a:
                hi, lo = _range_extrema_nb(px, smax, smin, block, a, e)
                if d > 0:
                    fav = hi / p0 - 1.0
                    adv = lo / p0 - 1.0
                else:
                    fav = 1.0 - lo / p0
                    adv = 1.0 - hi / p0
            mfe[i, k] = max(fav, 0.0)
            mae[i, k] = min(adv, 0.0)
            tp_in = i_tp >= 0 and i_tp <= e
            sl_in = i_sl >= 0 and i_sl <= e
            if tp_in and (not sl_in or i_tp < i_sl):
                barrier[i, k] = 1
                barrier_idx[i, k] = i_tp
            elif sl_in:
                barrier[i, k] = -1
                barrier_idx[i, k] = i_sl
    return entry, covered, exit_px, ret, mfe, mae, barrier, barrier_idx


# ------------------------------------------------------------------------------ numpy helpers


def realised_vol(ts: np.ndarray, px: np.ndarray, at: np.ndarray, window_ns: int) -> np.ndarray:
    """Annualised realised volatility as of each time in ``at`` (see the module docstring)."""
    k = window_ns // MINUTE_NS
    if k < 2 or at.size == 0:
        return np.full(at.size, np.nan)
    grid = at[:, None] - np.arange(k, -1, -1, dtype=np.int64)[None, :] * MINUTE_NS
    idx = np.searchsorted(ts, grid, side="right") - 1
    prices = np.where(idx >= 0, px[np.maximum(idx, 0)] if px.size else np.nan, np.nan)
    with np.errstate(invalid="ignore"):
        r = np.diff(np.log(prices), axis=1)
        vol = np.std(r, axis=1, ddof=1) * math.sqrt(YEAR_MINUTES)
    return np.where(np.isfinite(r).all(axis=1), vol, np.nan)


def funding_over(settle_ts: np.ndarray, rates: np.ndarray, interval_ns: int, t0: np.ndarray, t1: np.ndarray
                 ) -> np.ndarray:
    """``Σ rate`` over the settlements in ``(t0, t1]``; NaN where fewer settlements are on the tape
    than multiples of ``interval_ns`` in the window (a missing settlement makes the sum unknown)."""
    csum = np.concatenate(([0.0], np.cumsum(rates)))
    lo = np.searchsorted(settle_ts, t0, side="right")
    hi = np.searchsorted(settle_ts, t1, side="right")
    expected = t1 // interval_ns - t0 // interval_ns
    return np.where(hi - lo >= expected, csum[hi] - csum[lo], np.nan)


# ------------------------------------------------------------------------------ labelling


def parse_horizons(horizons: Any) -> list[tuple[str, int]]:
    """``["5m", "1h"]`` -> ``[("5m", 300e9), ("1h", 3600e9)]`` sorted by length; duplicates refused."""
    if isinstance(horizons, str):
        horizons = [h for h in horizons.split(",") if h.strip()]
    out = sorted(((str(h).strip(), parse_duration(h, "horizon")) for h in horizons), key=lambda x: x[1])
    if not out:
        raise ConfigError("`horizons` must name at least one horizon (e.g. 1m,5m,1h), was empty")
    for (a, na), (b, nb) in zip(out, out[1:], strict=False):
        if na == nb:
            raise ConfigError(f"`horizons` lists the same length twice: {a!r} and {b!r}")
    if out[0][1] <= 0:
        raise ConfigError(f"a horizon must be positive, was {out[0][0]!r}")
    return out


def label(log_path: str | Path, root: str | Path, *, horizons: Any = DEFAULT_HORIZONS, take_profit_pct: float = 0.5,
          stop_pct: float | None = None, vol_window: str = "1h", run_id: str | None = None, trades: bool = True,
          config: Any = None, fitted: dict[str, Any] | None = None, fitted_hash: str = "none") -> dict[str, Any]:
    """Label the signals of the log at ``log_path`` with their outcomes on the tape at ``root``.

    Parameters
    ----------
    log_path
        Signal log (DuckDB) written by the recorder.
    root
        The tape the outcomes are read from (the run's own tape for the would-be trades).
    horizons
        Horizons like ``"5m"`` (units s, m/min, h, d), a list or a comma-separated string.
    take_profit_pct, stop_pct
        Triple-barrier distances from the entry price, in percent; ``stop_pct`` defaults to
        ``take_profit_pct`` (symmetric barriers).
    vol_window
        Trailing window of the realised volatility stored with each outcome (whole minutes, >= 2).
    run_id
        Label this run only (default: every run in the log).
    trades
        Also store the would-be trade of every decision (``outcome_trades``); needs the run's
        config (``config``, or the recorded one when its strategy is in ``strategies/``) and, for a
        run recorded with a fitted artifact, the same artifact (``fitted``, ``fitted_hash``).
    config
        The run's :class:`~emerald.strategy.base.StrategyConfig` (or a path / dict for
        :func:`~emerald.strategy.base.load_config`).

    Returns
    -------
    dict
        ``log``, ``rows`` (outcome rows written), ``uncovered``, ``no_price`` and ``runs``: one dict
        per run with its counts (as stored in ``outcome_runs``).

    Raises
    ------
    ConfigError
        Bad horizons or barriers, an unknown run, or a config that does not reproduce the run.
    DataError
        The backtest of the run's config does not reproduce a logged decision.
    """
    hz = parse_horizons(horizons)
    stop = take_profit_pct if stop_pct is None else stop_pct
    for name, v in (("take_profit_pct", take_profit_pct), ("stop_pct", stop)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ConfigError(f"`{name}` must be a positive number of percent, was {v!r}")
    vol_ns = parse_duration(vol_window, "vol_window")
    if vol_ns < 2 * MINUTE_NS:
        raise ConfigError(f"`vol_window` must be at least 2 minutes, was {vol_window!r}")
    from emerald.tape.reader import Tape

    tape = Tape(root)
    with SignalLog(log_path) as log:
        log.con.execute(OUTCOME_SCHEMA)
        runs = log.runs()
        if run_id is not None:
            runs = runs.filter(pl.col("run_id") == run_id)
            if not runs.height:
                raise ConfigError(f"run {run_id!r} is not in signal log {log_path}")
        reports = []
        for run in runs.to_dicts():
            sigs = log.query("SELECT signal_id, kind, ts_event, instrument, direction FROM signals WHERE run_id = ? "
                             "ORDER BY ts_event, signal_id", [run["run_id"]])
            outcomes, counts = _outcomes(tape, sigs, run["run_id"], hz, take_profit_pct / 100.0, stop / 100.0,
                                         vol_ns)
            trade_rows = None
            if trades:
                trade_rows = _trades(run, sigs.filter(pl.col("kind") == "decision"), root, config, fitted,
                                     fitted_hash)
                counts["trades"] = dict(sorted(trade_rows.group_by("status").len().iter_rows()))
            else:
                counts["trades"] = None
            meta = {"run_id": run["run_id"], "horizons": orjson.dumps([h for h, _ in hz]).decode(),
                    "take_profit_pct": float(take_profit_pct), "stop_pct": float(stop), "vol_window_ns": vol_ns,
                    "tape": str(Path(root).resolve()), "signals": sigs.height, "rows": outcomes.height,
                    "uncovered": sum(counts["uncovered_by_horizon"].values()),
                    "uncovered_by_horizon": orjson.dumps(counts["uncovered_by_horizon"]).decode(),
                    "no_price": counts["no_price"], "funding_unknown": counts["funding_unknown"],
                    "trades": None if counts["trades"] is None else orjson.dumps(counts["trades"]).decode(),
                    "data_end": orjson.dumps(counts["data_end"]).decode()}
            _replace(log, run["run_id"], outcomes, trade_rows, meta)
            reports.append({**meta, "horizons": [h for h, _ in hz], "uncovered_by_horizon":
                            counts["uncovered_by_horizon"], "trades": counts["trades"],
                            "data_end": counts["data_end"]})
    return {"log": str(log_path), "rows": sum(r["rows"] for r in reports),
            "uncovered": sum(r["uncovered"] for r in reports), "no_price": sum(r["no_price"] for r in reports),
            "runs": reports}


def _replace(log: SignalLog, run_id: str, outcomes: pl.DataFrame, trades: pl.DataFrame | None,
             meta: dict[str, Any]) -> None:
    con = log.con
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("outcomes", "outcome_trades", "outcome_runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        if outcomes.height:
            con.register("_new_outcomes", outcomes)
            con.execute("INSERT INTO outcomes SELECT * FROM _new_outcomes")
            con.unregister("_new_outcomes")
        if trades is not None and trades.height:
            con.register("_new_trades", trades)
            con.execute("INSERT INTO outcome_trades SELECT * FROM _new_trades")
            con.unregister("_new_trades")
        con.execute(f"INSERT INTO outcome_runs VALUES ({', '.join(['?'] * len(RUN_COLUMNS))})",
                    [meta[c] for c in RUN_COLUMNS])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def _outcomes(tape: Any, sigs: pl.DataFrame, run_id: str, hz: list[tuple[str, int]], tp: float, sl: float,
              vol_ns: int) -> tuple[pl.DataFrame, dict[str, Any]]:
    names = [h for h, _ in hz]
    h_ns = np.array([n for _, n in hz], dtype=np.int64)
    frames = []
    counts: dict[str, Any] = {"uncovered_by_horizon": dict.fromkeys(names, 0), "no_price": 0, "funding_unknown": 0,
                              "data_end": {}}
    for (inst,), group in sigs.group_by("instrument", maintain_order=True):
        venue, symbol = str(inst).split(":", 1)
        sig_ts = group["ts_event"].to_numpy().astype(np.int64)
        sig_dir = group["direction"].to_numpy().astype(np.int64)
        entries = tape.entries("trades", venue, symbol)
        if not entries:
            counts["no_price"] += group.height
            continue
        data_end = max(e.max_ts for e in entries)
        counts["data_end"][inst] = int(data_end)
        lo = int(sig_ts.min()) - vol_ns - DAY_NS
        hi = min(int(sig_ts.max()) + int(h_ns[-1]), data_end) + 1
        t = tape.read_arrow("trades", venue, symbol, lo, hi, columns=["ts_event", "price"], with_ids=False)
        ts = t.column("ts_event").to_numpy().astype(np.int64)
        px = t.column("price").to_numpy().astype(np.float64)
        smax, smin = block_tables_nb(px, BLOCK)
        entry, covered, exit_px, ret, mfe, mae, barrier, barrier_idx = outcomes_nb(
            ts, px, smax, smin, BLOCK, sig_ts, sig_dir, h_ns, data_end, tp, sl)
        priced = entry >= 0
        counts["no_price"] += int((~priced).sum())
        for k, name in enumerate(names):
            counts["uncovered_by_horizon"][name] += int((priced & ~covered[:, k]).sum())
        vol = realised_vol(ts, px, sig_ts, vol_ns)
        fund = _funding(tape, venue, symbol, sig_ts, sig_dir, h_ns)
        rows, cols = np.nonzero(covered)
        counts["funding_unknown"] += int(np.isnan(fund[rows, cols]).sum())
        b_idx = barrier_idx[rows, cols]
        frames.append(pl.DataFrame({
            "signal_id": group["signal_id"].gather(rows), "run_id": pl.Series([run_id] * rows.size, dtype=pl.Utf8),
            "horizon": pl.Series([names[c] for c in cols], dtype=pl.Utf8), "horizon_ns": h_ns[cols],
            "ts_event": sig_ts[rows], "direction": sig_dir[rows].astype(np.int32), "entry_ts": ts[entry[rows]],
            "entry_px": px[entry[rows]], "exit_px": exit_px[rows, cols], "ret": ret[rows, cols],
            "mfe": mfe[rows, cols], "mae": mae[rows, cols], "barrier": barrier[rows, cols].astype(np.int32),
            "barrier_ts": pl.Series(ts[b_idx] if ts.size else np.zeros(0, np.int64)).scatter(
                np.flatnonzero(b_idx < 0), None),
            "funding": fund[rows, cols], "realised_vol": vol[rows]}, schema=OUTCOME_SCHEMA_PL))
    out = pl.concat(frames) if frames else pl.DataFrame(schema=OUTCOME_SCHEMA_PL)
    return out, counts


def _funding(tape: Any, venue: str, symbol: str, sig_ts: np.ndarray, sig_dir: np.ndarray, h_ns: np.ndarray
             ) -> np.ndarray:
    """``direction × Σ settled rates`` per (signal, horizon); 0 for non-perps."""
    spec = get_instrument(venue, symbol)
    if not spec.is_perp:
        return np.zeros((sig_ts.size, h_ns.size))
    settle_ts = np.empty(0, np.int64)
    rates = np.empty(0, np.float64)
    if tape.entries("funding", venue, symbol):
        t = tape.read_arrow("funding", venue, symbol, int(sig_ts.min()), int(sig_ts.max() + h_ns[-1]) + 1,
                            columns=["ts_event", "rate", "is_settlement"], with_ids=False)
        m = t.column("is_settlement").to_numpy(zero_copy_only=False)
        ts = t.column("ts_event").to_numpy()[m]
        # one settlement per time (a repeated row would count twice)
        settle_ts, first = np.unique(ts, return_index=True)
        rates = t.column("rate").to_numpy()[m][first]
    out = np.empty((sig_ts.size, h_ns.size))
    for k, h in enumerate(h_ns):
        out[:, k] = sig_dir * funding_over(settle_ts, rates, spec.funding_interval_ns, sig_ts, sig_ts + h)
    return out


# ------------------------------------------------------------------------------ would-be trades


def _trades(run: dict[str, Any], decisions: pl.DataFrame, root: str | Path, config: Any,
            fitted: dict[str, Any] | None, fitted_hash: str) -> pl.DataFrame:
    """The would-be trade of every logged decision (see the module docstring for the matching)."""
    from emerald.backtest.engine import backtest, prepare
    from emerald.forward.recorder import run_identity
    from emerald.strategy.base import StrategyConfig, load_config

    run_id = run["run_id"]
    if not decisions.height:
        return pl.DataFrame(schema=TRADE_SCHEMA_PL)
    if run["fitted_hash"] != fitted_hash:
        raise ConfigError(f"run {run_id} was recorded with fitted artifact {run['fitted_hash']}, was given "
                          f"{fitted_hash}: pass the same artifact to label its would-be trades")
    if config is None:
        try:
            cfg = load_config(orjson.loads(run["config"]))
        except ConfigError as e:
            raise ConfigError(f"run {run_id}: its recorded config cannot be loaded ({e}); pass the strategy config "
                              "(--config) or label without trades (--no-trades)") from None
    else:
        cfg = config if isinstance(config, StrategyConfig) else load_config(config)
    ident = run_identity(prepare(cfg, root, fitted), fitted_hash)
    if ident["run_id"] != run_id:
        raise ConfigError(f"the config, tape and fitted artifact given do not reproduce run {run_id} (they identify "
                          f"run {ident['run_id']}: strategy, config, data or window differ); the would-be trades "
                          "need the run's own")
    res = backtest(cfg, root, fitted=fitted)
    bt = res.decisions.select(pl.col("ts").alias("ts_event"), pl.col("inst").alias("instrument"),
                              pl.col("action").cast(pl.Int32).alias("direction"), "order_id")
    if bt.select("ts_event", "instrument").is_duplicated().any():
        raise DataError(f"run {run_id}: two backtest decisions share a time and instrument; cannot match",
                        path=str(root), field="decisions.ts")
    joined = decisions.select("signal_id", "ts_event", "instrument", pl.col("direction").cast(pl.Int32)).join(
        bt, on=["ts_event", "instrument", "direction"], how="left")
    missing = joined.filter(pl.col("order_id").is_null())
    if missing.height:
        r = missing.row(0, named=True)
        raise DataError(f"run {run_id}: {missing.height} of {decisions.height} logged decisions are not made by the "
                        f"backtest of the run's config (code changed since recording? logged code_hash "
                        f"{run['code_hash']}, now {ident['code_hash']})", path=str(root),
                        field="signals.ts_event", value=f"{r['instrument']} at {r['ts_event']}")
    first_fill = res.fills.group_by("order_id").agg(pl.col("ts").min().alias("entry_ts"))
    orders = res.orders.select("order_id", pl.col("status").alias("order_status"))
    closed = res.trades.select(
        pl.col("inst").alias("instrument"), pl.col("direction").cast(pl.Int32), "entry_ts", "trade_id", "exit_ts",
        "entry_px", "exit_px", "qty", "pnl", (pl.col("return_pct") / 100.0).alias("ret"), "fees", "funding",
        "exit_reason")
    m = (joined.join(orders, on="order_id", how="left").join(first_fill, on="order_id", how="left")
         .join(closed, on=["instrument", "direction", "entry_ts"], how="left"))
    # a fill with no trade of its own: still open at the end, or added to an open trade
    spans = res.trades.select(pl.col("inst").alias("instrument"), pl.col("direction").cast(pl.Int32),
                              pl.col("entry_ts").alias("t_in"), pl.col("exit_ts").alias("t_out"))
    added = (m.filter(pl.col("trade_id").is_null() & pl.col("entry_ts").is_not_null())
             .join(spans, on=["instrument", "direction"], how="inner")
             .filter((pl.col("t_in") < pl.col("entry_ts")) & (pl.col("entry_ts") <= pl.col("t_out")))
             .select("signal_id").unique())
    status = (pl.when(pl.col("trade_id").is_not_null()).then(pl.lit("closed"))
              .when(pl.col("entry_ts").is_null()).then(pl.col("order_status"))
              .when(pl.col("signal_id").is_in(added["signal_id"].implode())).then(pl.lit("added"))
              .otherwise(pl.lit("open_at_end")))
    return m.with_columns(status.alias("status"), pl.lit(run_id).alias("run_id")).select(
        list(TRADE_SCHEMA_PL)).cast(TRADE_SCHEMA_PL)  # type: ignore[arg-type]
