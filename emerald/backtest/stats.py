"""Run statistics, the go-live table, and the per-day / per-month tables of a backtest.

Inputs are the :class:`~emerald.backtest.result.RunResult` tables (``equity``: ``ts, equity,
positions, ...``; ``trades``: ``exit_ts, pnl, return_pct, r_multiple, ...``; ``fills``: ``qty,
price``), timestamps int64 ns UTC, the equity curve sorted by ``ts`` (rows with equal ``ts``: the
last one is the state at that instant).

Time
----
A year is the crypto year, 365 days x 24 h (markets never close): ``YEAR_NS = 365 * 86_400e9``.
Every cut (periods, UTC days, calendar months) is integer nanosecond arithmetic or numpy
``datetime64`` (which has no zone: it is UTC), so nothing depends on the process time zone or on
daylight saving time (RELIABILITY.md TB6). A day runs from 00:00 UTC to the next 00:00 UTC.

Sampling "as of" a time ``t`` means the last equity row with ``ts <= t`` (never a later value);
before the first row the account holds ``initial_equity``.

Formulas (``E`` = equity, ``E0`` = ``initial_equity``, ``E_end`` = last row's equity,
``T`` = ``end_ns - start_ns``)
------------------------------------------------------------------------------------------------
- ``total_return_pct = (E_end / E0 - 1) * 100``
- ``cagr_pct = ((E_end / E0) ** (YEAR_NS / T) - 1) * 100`` (-100 when the account is wiped out; +inf when a
  very short run's annualised growth does not fit a float)
- periodic returns: ``P = period_ns``; grid ``t_k = start_ns + k P`` for ``k = 0..floor(T / P)``
  (the last partial period is dropped); ``r_k = E(t_k) / E(t_{k-1}) - 1`` with ``E(t)`` as of ``t``;
  ``A = YEAR_NS / P`` periods per year; risk-free rate 0.
- ``sharpe = mean(r) / std(r, ddof=1) * sqrt(A)``
- ``sortino = mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(A)`` (downside deviation, target 0,
  averaged over all periods, as quantstats does)
- ``volatility_ann_pct = std(r, ddof=1) * sqrt(A) * 100``
- default ``P``: the median spacing of the distinct equity timestamps in ``[start_ns, end_ns]``,
  rounded (in log scale) to the nearest of 1 s, 1 min, 5 min, 15 min, 1 h, 4 h, 1 d, so a bar-sampled
  curve with extra rows at fills keeps its bar size; 1 h when the curve is sparse (fewer than three
  distinct timestamps, or a median spacing above one day: a curve written only at fills). Sampling a
  process at any ``P`` and annualising with ``sqrt(A)`` gives the same Sharpe up to sampling error.
- drawdown: ``E / cummax(E) - 1`` over the equity rows (``compute_stats`` puts ``(start_ns, E0)``
  first when the curve has no row at or before ``start_ns``); ``max_drawdown_pct`` is its largest
  depth as a positive percentage; ``max_drawdown_duration_s`` the longest time from a peak to the
  first row back at or above it (or to ``end_ns`` when never recovered).
- ``calmar = cagr_pct / max_drawdown_pct``
- trades: ``win_rate_pct`` = share of trades with ``pnl > 0`` (break-even trades are not wins);
  ``profit_factor = sum(pnl > 0) / |sum(pnl < 0)|``; ``avg_r`` = mean of the finite ``r_multiple``;
  ``expectancy`` = mean ``pnl``; ``avg_return_pct`` = mean ``return_pct``;
  ``trades_per_day = trades / (T / 1 day)``.
- ``exposure_time_pct``: time-weighted share of ``[start_ns, end_ns]`` with ``positions > 0``, each
  equity row's value holding until the next row.
- ``turnover = sum(|qty * price|) over fills / time-weighted mean equity`` (NaN without fills).
- ``funding_share_pct = pnl["funding"] / |pnl["total"]| * 100``: sign kept, positive = funding was
  a cost (``pnl["funding"]`` is what the account paid).

A ratio whose denominator is zero (no trades, no losing trade, a flat curve, no drawdown, zero
total PnL) is NaN: undefined, never ``inf``, and the go-live table fails it. A return standard
deviation below ``1e-12 * |mean|`` (a constant return, e.g. steady growth) counts as zero.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from emerald._typing import F64Array, I64Array
from emerald.errors import ConfigError
from emerald.tape.timeutil import ns_to_iso

SECOND_NS = 1_000_000_000
HOUR_NS = 3600 * SECOND_NS
DAY_NS = 24 * HOUR_NS
YEAR_NS = 365 * DAY_NS
PERIOD_LADDER_NS = np.array([1, 60, 300, 900, 3600, 4 * 3600, 86_400], dtype=np.int64) * SECOND_NS
SPARSE_PERIOD_NS = HOUR_NS

NAN = math.nan

# (criterion, stats key, operator, threshold, unit) — "> 55 %" means strictly above 55
GO_LIVE_CRITERIA: tuple[tuple[str, str, str, float, str], ...] = (
    ("win rate", "win_rate_pct", ">", 55.0, " %"),
    ("profit factor", "profit_factor", ">", 1.5, ""),
    ("Sharpe", "sharpe", ">", 1.5, ""),
    ("max drawdown", "max_drawdown_pct", "<", 10.0, " %"),
    ("trades", "trades", ">=", 30, ""),
)


def _ratio(num: float, den: float) -> float:
    return num / den if den != 0 and math.isfinite(num) and math.isfinite(den) else NAN


def _curve(equity: pl.DataFrame) -> tuple[I64Array, F64Array]:
    eq = equity.sort("ts", maintain_order=True) if equity.height else equity
    if not eq.height:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    return eq["ts"].to_numpy().astype(np.int64), eq["equity"].to_numpy().astype(np.float64)


def _as_of(ts: I64Array, values: F64Array, at: I64Array, before: float) -> F64Array:
    """``values`` of the last row with ``ts <= at`` (``before`` where there is none)."""
    idx = np.searchsorted(ts, at, side="right") - 1
    out = values[np.maximum(idx, 0)] if values.size else np.full(at.shape, before)
    return np.where(idx >= 0, out, before)


def _time_mean(ts: I64Array, values: F64Array, start_ns: int, end_ns: int, before: float) -> float:
    """Time-weighted mean over ``[start_ns, end_ns]`` of the step function ``values`` (each row holds
    until the next row; ``before`` until the first)."""
    if end_ns <= start_ns:
        return NAN
    inside = (ts > start_ns) & (ts < end_ns)
    knots = np.concatenate(([start_ns], ts[inside], [end_ns]))
    level = _as_of(ts, values, knots[:-1], before)
    return float(np.sum(level * np.diff(knots).astype(np.float64)) / (end_ns - start_ns))


def default_period_ns(ts: I64Array) -> int:
    """Sampling period for Sharpe/Sortino: median spacing of the distinct ``ts`` rounded to the
    ladder 1 s, 1 min, 5 min, 15 min, 1 h, 4 h, 1 d; 1 h when the curve is sparse (see module doc)."""
    uniq = np.unique(ts)
    if uniq.size < 3:
        return SPARSE_PERIOD_NS
    med = float(np.median(np.diff(uniq)))
    if med > DAY_NS:
        return SPARSE_PERIOD_NS
    return int(PERIOD_LADDER_NS[np.argmin(np.abs(np.log(PERIOD_LADDER_NS / med)))])


def periodic_returns(ts: I64Array, values: F64Array, *, start_ns: int, end_ns: int, period_ns: int,
                     initial_equity: float) -> F64Array:
    """Simple returns of the curve sampled as of ``start_ns + k * period_ns`` (full periods only)."""
    n = (end_ns - start_ns) // period_ns if end_ns > start_ns else 0
    grid = start_ns + np.arange(n + 1, dtype=np.int64) * np.int64(period_ns)
    level = _as_of(ts, values, grid, initial_equity)
    prev, cur = level[:-1], level[1:]
    ok = prev > 0
    return np.asarray(cur[ok] / prev[ok] - 1.0, dtype=np.float64)


def _drawdown(values: F64Array) -> F64Array:
    peak = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, values / peak - 1.0, 0.0)


def _max_drawdown_duration_ns(ts: I64Array, values: F64Array, end_ns: int) -> int:
    if values.size == 0:
        return 0
    at_peak = np.flatnonzero(values >= np.maximum.accumulate(values))
    next_peak_ts = np.append(ts[at_peak[1:]], max(end_ns, int(ts[-1])))
    underwater_after = np.append(np.diff(at_peak) > 1, at_peak[-1] < values.size - 1)
    return int(np.max(np.where(underwater_after, next_peak_ts - ts[at_peak], 0)))


def compute_stats(equity: pl.DataFrame, trades: pl.DataFrame, *, start_ns: int, end_ns: int,
                  initial_equity: float, pnl: dict[str, float], fills: pl.DataFrame | None = None,
                  period_ns: int | None = None) -> dict[str, float | int]:
    """Every statistic of one run (formulas and conventions in the module docstring).

    Parameters
    ----------
    equity, trades, fills
        RunResult tables; ``fills`` is needed for ``turnover`` only (NaN without it).
    start_ns, end_ns
        the run's span, int64 ns UTC.
    initial_equity
        account equity at ``start_ns``.
    pnl
        the run's decomposition ``{"price", "fees", "funding", "slippage", "total"}``.
    period_ns
        sampling period of the returns behind Sharpe, Sortino and volatility; default
        :func:`default_period_ns` of the curve.

    Returns
    -------
    dict
        ``total_return_pct, cagr_pct, sharpe, sortino, volatility_ann_pct, max_drawdown_pct,
        max_drawdown_duration_s, calmar, trades, win_rate_pct, profit_factor, avg_r, expectancy,
        avg_return_pct, exposure_time_pct, turnover, trades_per_day, funding_share_pct, fees_total,
        funding_total, start, end, days``; NaN where undefined.
    """
    start_ns, end_ns = int(start_ns), int(end_ns)
    ts, values = _curve(equity)
    span = end_ns - start_ns
    days = span / DAY_NS

    final = float(values[-1]) if values.size else NAN
    growth = _ratio(final, initial_equity)
    total_return = (growth - 1.0) * 100.0
    if span > 0 and growth > 0:
        # in logs: a short run's growth raised to (year / span) overflows a float; that is +inf %
        log_cagr = math.log(growth) * (YEAR_NS / span)
        cagr = (math.expm1(log_cagr) * 100.0) if log_cagr < 700.0 else math.inf
    elif span > 0 and growth <= 0:
        cagr = -100.0
    else:
        cagr = NAN

    if period_ns is not None and period_ns <= 0:
        raise ConfigError(f"`period_ns` must be a positive number of nanoseconds, was {period_ns!r}")
    p = int(period_ns) if period_ns is not None else default_period_ns(ts[(ts >= start_ns) & (ts <= end_ns)])
    r = periodic_returns(ts, values, start_ns=start_ns, end_ns=end_ns, period_ns=p, initial_equity=initial_equity)
    ann = math.sqrt(YEAR_NS / p)
    if values.size and r.size >= 2:
        mean, std = float(np.mean(r)), float(np.std(r, ddof=1))
        downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        flat = std <= 1e-12 * abs(mean)  # a constant return: the std is rounding noise
        sharpe, sortino = _ratio(mean, 0.0 if flat else std) * ann, _ratio(mean, downside) * ann
        vol = std * ann * 100.0
    else:
        sharpe = sortino = vol = NAN

    if values.size and ts[0] > start_ns:
        dd_ts, dd_values = np.insert(ts, 0, start_ns), np.insert(values, 0, initial_equity)
    else:
        dd_ts, dd_values = ts, values
    max_dd = 0.0 - float(np.min(_drawdown(dd_values))) * 100.0 if dd_values.size else NAN  # 0.0 - : never -0.0
    dd_duration = _max_drawdown_duration_ns(dd_ts, dd_values, end_ns) / SECOND_NS if dd_values.size else NAN

    n_trades = trades.height
    if n_trades:
        tp = trades["pnl"].to_numpy().astype(np.float64)
        gross_win, gross_loss = float(tp[tp > 0].sum()), float(-tp[tp < 0].sum())
        win_rate = float(np.mean(tp > 0)) * 100.0
        profit_factor = _ratio(gross_win, gross_loss)
        expectancy = float(np.mean(tp))
        rm = trades["r_multiple"].to_numpy().astype(np.float64)
        rm = rm[np.isfinite(rm)]
        avg_r = float(np.mean(rm)) if rm.size else NAN
        avg_return = float(np.mean(trades["return_pct"].to_numpy().astype(np.float64)))
    else:
        win_rate = profit_factor = expectancy = avg_r = avg_return = NAN

    if "positions" in equity.columns and equity.height:
        pos = equity.sort("ts", maintain_order=True)["positions"].to_numpy()
        exposure = _time_mean(ts, (pos > 0).astype(np.float64), start_ns, end_ns, 0.0) * 100.0
    else:
        exposure = NAN
    if fills is not None:
        notional = float(np.abs(fills["qty"].to_numpy() * fills["price"].to_numpy()).sum()) if fills.height else 0.0
        turnover = _ratio(notional, _time_mean(ts, values, start_ns, end_ns, initial_equity))
    else:
        turnover = NAN

    funding, total = float(pnl.get("funding", NAN)), float(pnl.get("total", NAN))
    return {
        "total_return_pct": total_return,
        "cagr_pct": cagr,
        "sharpe": sharpe,
        "sortino": sortino,
        "volatility_ann_pct": vol,
        "max_drawdown_pct": max_dd,
        "max_drawdown_duration_s": dd_duration,
        "calmar": _ratio(cagr, max_dd),
        "trades": n_trades,
        "win_rate_pct": win_rate,
        "profit_factor": profit_factor,
        "avg_r": avg_r,
        "expectancy": expectancy,
        "avg_return_pct": avg_return,
        "exposure_time_pct": exposure,
        "turnover": turnover,
        "trades_per_day": _ratio(n_trades, days),
        "funding_share_pct": _ratio(funding, abs(total)) * 100.0,
        "fees_total": float(pnl.get("fees", NAN)),
        "funding_total": funding,
        "start": ns_to_iso(start_ns),
        "end": ns_to_iso(end_ns),
        "days": days,
    }


def go_live_table(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The go-live criteria marked pass/fail, then an ``overall`` row (pass only if all pass).

    Win rate > 55 %, profit factor > 1.5, Sharpe > 1.5, max drawdown < 10 %, >= 30 trades; the
    inequalities are strict where written so (a win rate of exactly 55 % fails). A NaN value fails.
    """
    rows: list[dict[str, Any]] = []
    for name, key, op, threshold, unit in GO_LIVE_CRITERIA:
        value = stats.get(key, NAN)
        v = float(value) if value is not None else NAN
        ok = v > threshold if op == ">" else v < threshold if op == "<" else v >= threshold
        rows.append({"criterion": name, "threshold": f"{op} {threshold:g}{unit}", "value": value, "pass": bool(ok)})
    passed = sum(r["pass"] for r in rows)
    rows.append({"criterion": "overall", "threshold": "all pass", "value": f"{passed}/{len(rows)}",
                 "pass": passed == len(rows)})
    return rows


def daily_table(equity: pl.DataFrame, trades: pl.DataFrame) -> pl.DataFrame:
    """One row per UTC day from the first to the last equity row.

    ``start_equity`` is the equity as of the day's 00:00 UTC (the first row of the day on the
    first day); ``end_equity`` the equity as of the next 00:00 UTC (the last row on the last day),
    so the days' returns chain to the run's return. ``max_intraday_drawdown_pct`` is the deepest
    fall below ``start_equity`` during the day (from the 00:00 state through the end state), a
    positive percentage. ``trades`` / ``pnl``: the trades that closed (``exit_ts``) that day (a run's
    curve spans every exit, its last row being the end of the run).

    Columns: ``date`` (ISO ``YYYY-MM-DD``), ``start_equity``, ``end_equity``, ``return_pct``,
    ``max_intraday_drawdown_pct``, ``trades``, ``pnl``.
    """
    ts, values = _curve(equity)
    if not ts.size:
        return pl.DataFrame(schema={"date": pl.Utf8, "start_equity": pl.Float64, "end_equity": pl.Float64,
                                    "return_pct": pl.Float64, "max_intraday_drawdown_pct": pl.Float64,
                                    "trades": pl.Int64, "pnl": pl.Float64})
    day = np.arange(ts[0] // DAY_NS, ts[-1] // DAY_NS + 1, dtype=np.int64)
    i0 = np.maximum(np.searchsorted(ts, day * DAY_NS, side="right") - 1, 0)
    i1 = np.searchsorted(ts, (day + 1) * DAY_NS, side="right") - 1
    start_eq, end_eq = values[i0], values[i1]
    # running minimum inside each day's slice [i0, i1] (slices overlap by at most one row)
    low = np.array([values[a:b + 1].min() for a, b in zip(i0, i1, strict=True)], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(start_eq != 0, (end_eq / start_eq - 1.0) * 100.0, NAN)
        dd = np.where(start_eq > 0, np.maximum(1.0 - low / start_eq, 0.0) * 100.0, NAN)

    n_trades = np.zeros(day.size, dtype=np.int64)
    day_pnl = np.zeros(day.size, dtype=np.float64)
    if trades.height:
        k = trades["exit_ts"].to_numpy().astype(np.int64) // DAY_NS - day[0]
        inside = (k >= 0) & (k < day.size)
        np.add.at(n_trades, k[inside], 1)
        np.add.at(day_pnl, k[inside], trades["pnl"].to_numpy().astype(np.float64)[inside])
    return pl.DataFrame({
        "date": np.datetime_as_string(day.astype("datetime64[D]")).tolist(),
        "start_equity": start_eq, "end_equity": end_eq, "return_pct": ret, "max_intraday_drawdown_pct": dd,
        "trades": n_trades, "pnl": day_pnl,
    })


def monthly_returns(equity: pl.DataFrame) -> pl.DataFrame:
    """Return per UTC calendar month (``year``, ``month``, ``return_pct``) for the heatmap: equity as
    of the month's first 00:00 UTC (the first row in the first month) to equity as of the next
    month's (the last row in the last month)."""
    ts, values = _curve(equity)
    if not ts.size:
        return pl.DataFrame(schema={"year": pl.Int32, "month": pl.Int8, "return_pct": pl.Float64})
    first, last = (ts[[0, -1]].astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64))
    month = np.arange(first, last + 1, dtype=np.int64)
    bounds = np.arange(first, last + 2, dtype=np.int64).astype("datetime64[M]").astype("datetime64[ns]")
    bounds = bounds.astype(np.int64)
    i0 = np.maximum(np.searchsorted(ts, bounds[:-1], side="right") - 1, 0)
    i1 = np.searchsorted(ts, bounds[1:], side="right") - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = np.where(values[i0] != 0, (values[i1] / values[i0] - 1.0) * 100.0, NAN)
    return pl.DataFrame({"year": (month // 12 + 1970).astype(np.int32), "month": (month % 12 + 1).astype(np.int8),
                         "return_pct": ret})


def drawdown_series(equity: pl.DataFrame) -> pl.DataFrame:
    """``ts, drawdown_pct``: ``(E / cummax(E) - 1) * 100`` (<= 0) over the equity rows."""
    ts, values = _curve(equity)
    return pl.DataFrame({"ts": ts, "drawdown_pct": _drawdown(values) * 100.0},
                        schema={"ts": pl.Int64, "drawdown_pct": pl.Float64})
