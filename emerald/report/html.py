"""Self-contained HTML reports for a :class:`RunResult` and a :class:`SweepResult`.

One file per report: the Plotly bundle is inlined once (``plotly.offline.get_plotlyjs()``), every
chart is a ``plotly.io.to_html(..., full_html=False, include_plotlyjs=False)`` fragment, and the
page is rendered by a jinja2 template with autoescaping on, so the file opens offline and no
string from a result (config value, signal or instrument name, assumption) can inject markup.

The report never recomputes a metric: it reads the result's tables, ``pnl``, ``stats`` and
``go_live`` as they are; the drawdown curve and the monthly returns come from
:mod:`emerald.backtest.stats` (the one implementation). What it does to data is presentation
only: formatting, sorting, counting refusals by reason, and min/max downsampling of long curves
for plotting (said on the chart).

Every chart sits in an element with a stable ``id`` and a ``data-chart`` name (``equity``,
``drawdown``, ``price:<instrument>``, ``pnl``, ``signals``, ``monthly``, ``exposure``; sweeps:
``objective``, ``walk-forward``; the stitched out-of-sample run of a sweep uses the run names
prefixed with ``oos-``). A chart with nothing to show is replaced by a "no data" note, never drawn
empty. The output is byte-identical for identical inputs (no generation time, fixed div ids).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import orjson
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline
import polars as pl
from markupsafe import Markup

from emerald.backtest.result import RunResult, SweepResult
from emerald.errors import ConfigError

MAX_POINTS = 4000
"""Points per plotted curve; longer curves keep the min and max of each bucket."""
MAX_PRICE_CHARTS = 6
MAX_MARKERS = 2000
"""Trade markers per instrument and kind (entry/exit); more are thinned evenly, said on the chart."""
MAX_TABLE_ROWS = 50

STAT_LABELS = {
    "total_return_pct": "Total return (%)",
    "cagr_pct": "CAGR (%)",
    "sharpe": "Sharpe ratio (annualised)",
    "sortino": "Sortino ratio (annualised)",
    "volatility_ann_pct": "Volatility, annualised (%)",
    "max_drawdown_pct": "Maximum drawdown (%)",
    "max_drawdown_duration_s": "Longest drawdown",
    "calmar": "Calmar ratio",
    "trades": "Trades",
    "win_rate_pct": "Win rate (%)",
    "profit_factor": "Profit factor",
    "avg_r": "Average R multiple",
    "expectancy": "Expectancy per trade",
    "avg_return_pct": "Average trade return (%)",
    "exposure_time_pct": "Time in market (%)",
    "turnover": "Turnover",
    "trades_per_day": "Trades per day",
    "funding_share_pct": "Funding share of PnL (%)",
    "fees_total": "Fees paid",
    "funding_total": "Funding paid",
    "start": "Start",
    "end": "End",
    "days": "Days",
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_GREEN, _RED, _GREY, _BLUE, _ORANGE = "#1a9850", "#d73027", "#7f7f7f", "#2c6fbb", "#e08214"

# A small template instead of plotly's "plotly_white": same look, and building a figure with
# the stock templates costs ~0.1 s each (deep copies of the full template).
_AXIS = {"gridcolor": "#e9ecf0", "linecolor": "#c7ccd3", "zerolinecolor": "#b9c0c8", "automargin": True}
_TEMPLATE = {"layout": {"paper_bgcolor": "white", "plot_bgcolor": "white", "xaxis": _AXIS, "yaxis": _AXIS,
                        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12,
                                 "color": "#2a3140"},
                        "colorway": [_BLUE, _ORANGE, _GREEN, _RED, _GREY],
                        "hoverlabel": {"align": "left"}}}

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("emerald.report", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


# --------------------------------------------------------------------------- view objects

@dataclass(frozen=True)
class Chart:
    """One Plotly figure as an HTML fragment, with its ``data-chart`` name and DOM id."""

    name: str
    dom_id: str
    html: Markup


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells; ``note`` says what was left out, if anything."""

    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class RunView:
    """Everything the run sections of the template show."""

    prefix: str
    manifest: list[tuple[str, str]]
    coverage: Table | None
    config_json: str | None
    assumptions: list[str] | None
    stats: list[tuple[str, str]]
    go_live: Table | None
    go_live_failed: int
    go_live_counted: int
    charts: dict[str, Chart | None]
    price_charts: list[Chart] = field(default_factory=list)
    omitted_instruments: list[str] = field(default_factory=list)
    pnl: list[tuple[str, str]] = field(default_factory=list)
    attribution: Table | None = None
    refusals: Table | None = None
    n_trades: int = 0


# --------------------------------------------------------------------------- public API

def write_report(result: RunResult, path: str | Path, *, title: str | None = None) -> Path:
    """Write the HTML report of one backtest run.

    Parameters
    ----------
    result
        The run; its tables, ``pnl``, ``stats``, ``go_live`` and ``manifest`` are shown as they are.
    path
        Output file; parent folders are created.
    title
        Page title; default ``"Backtest report"`` plus the manifest's ``run_id`` when present.

    Returns
    -------
    Path
        ``path``.
    """
    run_id = result.manifest.get("run_id")
    page_title = title or ("Backtest report" + (f" {run_id}" if run_id else ""))
    view = _run_view(result, prefix="")
    return _write(path, _ENV.get_template("run.html.j2").render(title=page_title, run=view, **_common()))


def write_sweep_report(sweep: SweepResult, path: str | Path, *, title: str | None = None) -> Path:
    """Write the HTML report of a parameter sweep (and its walk-forward folds, if any).

    Shows the objective over the first two parameters (a heatmap; the other parameters held at the
    best configuration's values) or over the only parameter (a line), the grid's best rows, the
    walk-forward panel (in-sample vs out-of-sample objective per fold), ``n_configs`` with the
    multiple-testing warning, and, when ``sweep.oos`` is set, every section of the run report for
    the stitched out-of-sample run.
    """
    run_id = sweep.manifest.get("run_id")
    page_title = title or ("Sweep report" + (f" {run_id}" if run_id else ""))
    objective = sweep.objective
    params = [c for c in sweep.grid.columns if c.startswith("p.")]
    best = _best_config(sweep, params)
    folds_table = None
    wf_chart = None
    if sweep.folds is not None and sweep.folds.height:
        folds_table = _frame_table(sweep.folds, max_rows=None)
        wf_chart = _walk_forward_chart(sweep.folds, objective)
    html_text = _ENV.get_template("sweep.html.j2").render(
        title=page_title,
        manifest=_manifest_rows(sweep.manifest),
        coverage=_coverage_table(sweep.manifest.get("coverage")),
        config_json=_config_json(sweep.manifest.get("config")),
        assumptions=_assumptions(sweep.manifest),
        objective=objective,
        n_configs=sweep.n_configs,
        grid_rows=sweep.grid.height,
        params=[p.removeprefix("p.") for p in params],
        best=[(k, _fmt(v)) for k, v in sweep.best.items()],
        objective_chart=_objective_chart(sweep.grid, objective, params, best),
        objective_note=_objective_note(sweep.grid, objective, params, best),
        grid=_grid_table(sweep.grid, objective),
        is_walk_forward=sweep.folds is not None,
        folds=folds_table,
        walk_forward=wf_chart,
        oos=_run_view(sweep.oos, prefix="oos-") if sweep.oos is not None else None,
        **_common(),
    )
    return _write(path, html_text)


def downsample_minmax(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Thin a curve for plotting, keeping the extremes.

    The points are cut into ``(max_points - 2) // 2`` buckets of equal count; each bucket keeps its
    minimum and its maximum (in time order), and the first and last points are always kept, so no
    drawdown or spike disappears from the chart. NaN never wins a bucket unless the bucket is all NaN.
    Curves of at most ``max_points`` points are returned unchanged.
    """
    n = y.shape[0]
    if n <= max_points:
        return x, y
    if max_points < 4:
        raise ConfigError(f"`max_points` must be >= 4, was {max_points}")
    n_buckets = (max_points - 2) // 2
    size = -(-n // n_buckets)
    starts = np.arange(0, n, size)
    pad = starts.size * size - n
    nan = np.isnan(y)
    low = np.concatenate([np.where(nan, np.inf, y), np.full(pad, np.inf)]).reshape(-1, size).argmin(axis=1)
    high = np.concatenate([np.where(nan, -np.inf, y), np.full(pad, -np.inf)]).reshape(-1, size).argmax(axis=1)
    keep = np.unique(np.concatenate([np.minimum(low + starts, n - 1), np.minimum(high + starts, n - 1), [0, n - 1]]))
    return x[keep], y[keep]


# --------------------------------------------------------------------------- run view

def _run_view(result: RunResult, *, prefix: str) -> RunView:
    from emerald.backtest.stats import drawdown_series, monthly_returns

    go_live_table, failed, counted = _go_live_table(result.go_live)
    view = RunView(
        prefix=prefix,
        manifest=_manifest_rows(result.manifest),
        coverage=_coverage_table(result.manifest.get("coverage")),
        config_json=_config_json(result.manifest.get("config")),
        assumptions=_assumptions(result.manifest),
        stats=[(STAT_LABELS.get(k, k), _fmt_stat(k, v)) for k, v in result.stats.items()],
        go_live=go_live_table,
        go_live_failed=failed,
        go_live_counted=counted,
        charts={},
        n_trades=result.trades.height,
    )
    equity = result.equity.sort("ts")
    max_dd = result.stats.get("max_drawdown_pct")
    has_curve = equity.height > 0
    view.charts = {
        "equity": _line_chart(prefix + "equity", equity, [("equity", "equity", _BLUE)],
                              title="Equity (account currency)"),
        "drawdown": _line_chart(prefix + "drawdown", drawdown_series(equity).sort("ts"),
                                [("drawdown_pct", "drawdown", _RED)],
                                title="Drawdown (%)" + (f", maximum {_fmt(max_dd)} %" if max_dd is not None else ""),
                                fill=True, height=260) if has_curve else None,
        "exposure": _line_chart(prefix + "exposure", equity,
                                [("gross_exposure", "gross", _ORANGE), ("net_exposure", "net", _BLUE)],
                                title="Exposure (notional, account currency)", height=300),
        "pnl": _pnl_chart(prefix + "pnl", result.pnl),
        "signals": _signal_chart(prefix + "signals", result.attribution),
        "monthly": _monthly_chart(prefix + "monthly", monthly_returns(equity)) if has_curve else None,
    }
    view.price_charts, view.omitted_instruments = _price_charts(prefix, result.prices, result.trades)
    view.pnl = [(k, _fmt(v)) for k, v in result.pnl.items()]
    if result.attribution.height:
        view.attribution = _frame_table(result.attribution.sort("pnl", descending=True, nulls_last=True))
    if result.refusals.height:
        # a refusal row may stand for several repeats of the same refusal (its ``count``)
        n = pl.col("count").sum() if "count" in result.refusals.columns else pl.len()
        counts = (result.refusals.group_by(["action", "reason"]).agg(n.alias("count"))
                  .sort(["count", "action", "reason"], descending=[True, False, False]))
        view.refusals = _frame_table(counts)
    return view


def _manifest_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    skip = {"config", "coverage", "assumptions"}
    return [(k, _fmt_keyed(k, v)) for k, v in manifest.items() if k not in skip]


def _coverage_table(coverage: Any) -> Table | None:
    """``manifest["coverage"]`` as a table. Nested dicts are walked down to their last level of
    dicts: each leaf dict is a row named by its path (``funding / venue:symbol``), its keys are the
    columns (the union, in first-seen order); a plain value is a row with one ``value`` column."""
    if not coverage:
        return None
    if not isinstance(coverage, dict):
        return Table(["coverage"], [[_fmt(coverage)]])
    leaves = list(_leaf_dicts(coverage, ()))
    cols: list[str] = []
    for _, inner in leaves:
        cols.extend(str(k) for k in inner if str(k) not in cols)
    rows = [[" / ".join(path)] + [_fmt_keyed(c, inner[c]) if c in inner else "" for c in cols]
            for path, inner in leaves]
    return Table([""] + cols, rows)


def _leaf_dicts(d: dict[str, Any], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    for key, value in d.items():
        if value and isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            yield from _leaf_dicts(value, (*path, str(key)))
        else:
            yield (*path, str(key)), value if isinstance(value, dict) else {"value": value}


def _config_json(config: Any) -> str | None:
    if config is None:
        return None
    return orjson.dumps(config, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                        default=str).decode()


def _assumptions(manifest: dict[str, Any]) -> list[str] | None:
    items = manifest.get("assumptions")
    if items is None:
        return None
    if isinstance(items, str):
        return [items]
    return [str(a) for a in items]


def _go_live_table(rows: list[dict[str, Any]]) -> tuple[Table | None, int, int]:
    """The go-live rows as a table, with the number of criteria that failed and the number of
    criteria (the ``overall`` row that :func:`~emerald.backtest.stats.go_live_table` appends is
    shown but not counted)."""
    if not rows:
        return None, 0, 0
    out, failed, counted = [], 0, 0
    for row in rows:
        ok = row.get("pass")
        if row.get("criterion") != "overall":
            counted += 1
            failed += ok is not True
        out.append([str(row.get("criterion", "")), _fmt(row.get("threshold")), _fmt(row.get("value")),
                     "PASS" if ok is True else ("FAIL" if ok is False else "n/a")])
    return Table(["criterion", "threshold", "value", "result"], out), failed, counted


# --------------------------------------------------------------------------- charts

def _figure(fig: go.Figure, name: str, dom_id: str, *, title: str, height: int, note: str = "") -> Chart:
    text = title + (f"<br><sup>{note}</sup>" if note else "")
    fig.update_layout(title={"text": text, "x": 0.01, "xanchor": "left"}, template=_TEMPLATE, height=height,
                      margin={"l": 64, "r": 24, "t": 64 if note else 48, "b": 40},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"})
    html_text = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=dom_id + "-plot",
                            default_height=f"{height}px", default_width="100%",
                            config={"displaylogo": False, "responsive": True})
    return Chart(name=name, dom_id=dom_id, html=Markup(html_text))


def _dom_id(name: str) -> str:
    return "chart-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name)


def _iso(ts: np.ndarray) -> np.ndarray:
    """int64 ns UTC -> ISO strings (UTC, millisecond precision) for Plotly date axes."""
    return np.datetime_as_string(ts.astype("datetime64[ns]"), unit="ms")


def _downsample_note(n_in: int, n_out: int) -> str:
    if n_out == n_in:
        return ""
    return f"downsampled for display: {n_out:,} of {n_in:,} points, min and max of each bucket kept"


def _line_chart(name: str, frame: pl.DataFrame, series: list[tuple[str, str, str]], *, title: str,
                fill: bool = False, height: int = 380) -> Chart | None:
    """Lines over time from ``frame`` (column ``ts`` plus ``series``: (column, legend, colour))."""
    if frame.height == 0 or any(col not in frame.columns for col, _, _ in series):
        return None
    ts = frame["ts"].to_numpy()
    fig = go.Figure()
    note = ""
    for col, legend, colour in series:
        x, y = downsample_minmax(ts, frame[col].cast(pl.Float64).to_numpy())
        note = note or _downsample_note(ts.size, x.size)
        fig.add_trace(go.Scatter(x=_iso(x), y=y, mode="lines", name=legend, line={"color": colour, "width": 1.5},
                                 fill="tozeroy" if fill else None))
    fig.update_layout(showlegend=len(series) > 1, hovermode="x unified")
    return _figure(fig, name, _dom_id(name), title=title, height=height, note=note)


def _price_charts(prefix: str, prices: pl.DataFrame, trades: pl.DataFrame) -> tuple[list[Chart], list[str]]:
    """One chart per instrument (those with most trades first, at most MAX_PRICE_CHARTS): price line
    plus entry markers (triangle up = long, down = short) and exit markers (x, green win / red loss)."""
    insts = set(prices["inst"].unique().to_list()) | set(trades["inst"].unique().to_list())
    n_trades = dict(trades.group_by("inst").len().iter_rows()) if trades.height else {}
    order = sorted(insts, key=lambda i: (-n_trades.get(i, 0), str(i)))
    charts = []
    for k, inst in enumerate(order[:MAX_PRICE_CHARTS]):
        fig = go.Figure()
        notes = []
        p = prices.filter(pl.col("inst") == inst).sort("ts")
        if p.height:
            ts = p["ts"].to_numpy()
            x, y = downsample_minmax(ts, p["price"].cast(pl.Float64).to_numpy())
            notes.append(_downsample_note(ts.size, x.size))
            fig.add_trace(go.Scatter(x=_iso(x), y=y, mode="lines", name="price", line={"color": _GREY, "width": 1}))
        t = trades.filter(pl.col("inst") == inst).sort("entry_ts")
        if t.height:
            step = -(-t.height // MAX_MARKERS)
            if step > 1:
                total = t.height
                t = t.gather_every(step)
                notes.append(f"trade markers thinned to 1 in {step}: {t.height:,} of {total:,} shown")
            long = t["direction"].to_numpy() > 0
            win = t["pnl"].to_numpy() > 0
            ids = t["trade_id"].cast(pl.Utf8).to_list()
            pnl = [_fmt(v) for v in t["pnl"].to_list()]
            reasons = t["exit_reason"].cast(pl.Utf8).fill_null("").to_list()
            signals = t["signal"].cast(pl.Utf8).fill_null("").to_list()
            fig.add_trace(go.Scatter(
                x=_iso(t["entry_ts"].to_numpy()), y=t["entry_px"].to_numpy(), mode="markers", name="entry",
                marker={"symbol": np.where(long, "triangle-up", "triangle-down"), "size": 9,
                        "color": np.where(long, _GREEN, _RED), "line": {"width": 0.5, "color": "#333"}},
                hovertext=[f"trade {i}: {'long' if lg else 'short'} entry, signal {s}"
                           for i, lg, s in zip(ids, long, signals, strict=True)],
                hoverinfo="text+x+y"))
            fig.add_trace(go.Scatter(
                x=_iso(t["exit_ts"].to_numpy()), y=t["exit_px"].to_numpy(), mode="markers", name="exit",
                marker={"symbol": "x", "size": 8, "color": np.where(win, _GREEN, _RED)},
                hovertext=[f"trade {i}: exit ({r}), pnl {v}" for i, r, v in zip(ids, reasons, pnl, strict=True)],
                hoverinfo="text+x+y"))
        name = f"{prefix}price:{inst}"
        charts.append(_figure(fig, name, f"chart-{prefix}price-{k}", title=f"{inst}: price and trades",
                              height=420, note="; ".join(n for n in notes if n)))
    return charts, order[MAX_PRICE_CHARTS:]


def _pnl_chart(name: str, pnl: dict[str, float]) -> Chart | None:
    """Contributions to PnL: price, minus fees, minus funding, total; slippage (already inside price)
    drawn apart in grey so its cost is visible."""
    parts = [("price", 1.0), ("fees", -1.0), ("funding", -1.0), ("slippage", -1.0), ("total", 1.0)]
    shown = [(k, sign) for k, sign in parts if k in pnl and pnl[k] is not None]
    if not shown:
        return None
    labels = [k if k != "slippage" else "slippage (in price)" for k, _ in shown]
    values = [sign * float(pnl[k]) for k, sign in shown]
    colours = [_GREY if k == "slippage" else (_BLUE if k == "total" else (_GREEN if v >= 0 else _RED))
               for (k, _), v in zip(shown, values, strict=True)]
    fig = go.Figure(go.Bar(x=labels, y=values, marker={"color": colours},
                           text=[_fmt(v) for v in values], textposition="outside", cliponaxis=False))
    fig.update_layout(showlegend=False, yaxis={"title": {"text": "contribution to PnL"}})
    return _figure(fig, name, _dom_id(name), title="PnL decomposition (total = price − fees − funding)", height=340)


def _signal_chart(name: str, attribution: pl.DataFrame) -> Chart | None:
    if attribution.height == 0:
        return None
    a = attribution.sort("pnl", descending=True, nulls_last=True)
    pnl = a["pnl"].cast(pl.Float64).to_numpy()
    trades = a["trades"].to_list()
    win = a["win_rate"].to_list()
    fig = go.Figure(go.Bar(
        x=a["signal"].cast(pl.Utf8).fill_null("(none)").to_list(), y=pnl,
        marker={"color": np.where(pnl >= 0, _GREEN, _RED)},
        hovertext=[f"{n} trades, win rate {_fmt(w)}" for n, w in zip(trades, win, strict=True)]))
    fig.update_layout(showlegend=False, yaxis={"title": {"text": "PnL of the trades it opened"}})
    return _figure(fig, name, _dom_id(name), title="Contribution per signal", height=340)


def _monthly_chart(name: str, monthly: pl.DataFrame) -> Chart | None:
    if monthly.height == 0:
        return None
    years = sorted(set(monthly["year"].to_list()))
    row = {y: i for i, y in enumerate(years)}
    z: list[list[float | None]] = [[None] * 12 for _ in years]
    for year, month, ret in monthly.select("year", "month", "return_pct").iter_rows():
        z[row[year]][int(month) - 1] = None if ret is None or math.isnan(ret) else float(ret)
    text = [["" if v is None else f"{v:.2f}%" for v in r] for r in z]
    fig = go.Figure(go.Heatmap(z=z, x=list(_MONTHS), y=[str(y) for y in years], text=text, texttemplate="%{text}",
                               colorscale="RdYlGn", zmid=0, colorbar={"title": {"text": "%"}},
                               hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>"))
    fig.update_layout(yaxis={"type": "category", "autorange": "reversed"})
    return _figure(fig, name, _dom_id(name), title="Monthly returns (%), UTC months",
                   height=140 + 36 * len(years))


# --------------------------------------------------------------------------- sweep

def _best_config(sweep: SweepResult, params: list[str]) -> dict[str, Any]:
    """The best configuration's parameter values (``sweep.best``, keys with or without ``p.``)."""
    out = {}
    for p in params:
        for key in (p, p.removeprefix("p.")):
            if key in sweep.best:
                out[p] = sweep.best[key]
                break
    return out


def _sorted_unique(values: list[Any]) -> list[Any]:
    uniq = list(dict.fromkeys(values))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def _objective_note(grid: pl.DataFrame, objective: str, params: list[str], best: dict[str, Any]) -> str:
    if objective not in grid.columns:
        return f"the grid has no column {objective!r} (the objective), so it is not plotted"
    held = params[2:]
    if not held:
        return ""
    fixed = ", ".join(f"{p.removeprefix('p.')} = {_fmt(best[p])}" if p in best else
                      f"{p.removeprefix('p.')} = (not in sweep.best: all values, first row per cell)"
                      for p in held)
    return f"other parameters held at the best configuration's values: {fixed}"


def _objective_chart(grid: pl.DataFrame, objective: str, params: list[str], best: dict[str, Any]) -> Chart | None:
    if objective not in grid.columns or grid.height == 0:
        return None
    name = "objective"
    if not params:
        fig = go.Figure(go.Bar(x=[str(i) for i in range(grid.height)], y=grid[objective].cast(pl.Float64).to_numpy(),
                               marker={"color": _BLUE}))
        fig.update_layout(xaxis={"title": {"text": "configuration"}}, yaxis={"title": {"text": objective}})
        return _figure(fig, name, _dom_id(name), title=f"{objective} per configuration", height=360)
    if len(params) == 1:
        g = grid.sort(params[0])
        xs = g[params[0]].to_list()
        numeric = g[params[0]].dtype.is_numeric()
        fig = go.Figure(go.Scatter(x=xs if numeric else [str(v) for v in xs],
                                   y=g[objective].cast(pl.Float64).to_numpy(), mode="lines+markers",
                                   line={"color": _BLUE}))
        fig.update_layout(xaxis={"title": {"text": params[0].removeprefix("p.")}},
                          yaxis={"title": {"text": objective}})
        return _figure(fig, name, _dom_id(name), title=f"{objective} by {params[0].removeprefix('p.')}", height=380)
    g = grid
    for p in params[2:]:
        if p in best:
            g = g.filter(pl.col(p) == best[p])
    px, py = params[0], params[1]
    xs, ys = _sorted_unique(g[px].to_list()), _sorted_unique(g[py].to_list())
    xi, yi = {v: i for i, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    z: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    for xv, yv, val in g.select(px, py, objective).iter_rows():
        if z[yi[yv]][xi[xv]] is None and val is not None and not math.isnan(val):
            z[yi[yv]][xi[xv]] = float(val)
    fig = go.Figure(go.Heatmap(z=z, x=[_fmt(v) for v in xs], y=[_fmt(v) for v in ys], colorscale="Viridis",
                               texttemplate="%{z:.3g}", colorbar={"title": {"text": objective}},
                               hovertemplate=f"{px.removeprefix('p.')}=%{{x}}, {py.removeprefix('p.')}=%{{y}}: "
                                             "%{z}<extra></extra>"))
    if px in best and py in best and best[px] in xi and best[py] in yi:
        fig.add_trace(go.Scatter(x=[_fmt(best[px])], y=[_fmt(best[py])], mode="markers", name="best",
                                 marker={"symbol": "square-open", "size": 40, "color": "black",
                                         "line": {"width": 3}}, hoverinfo="skip"))
    fig.update_layout(xaxis={"type": "category", "title": {"text": px.removeprefix("p.")}},
                      yaxis={"type": "category", "title": {"text": py.removeprefix("p.")}}, showlegend=False)
    return _figure(fig, name, _dom_id(name), title=f"{objective} over {px.removeprefix('p.')} × "
                   f"{py.removeprefix('p.')}", height=480)


def _grid_table(grid: pl.DataFrame, objective: str) -> Table:
    g = grid.sort(objective, descending=True, nulls_last=True) if objective in grid.columns else grid
    table = _frame_table(g, max_rows=20)
    if objective in grid.columns:
        note = f"sorted by {objective}, highest first"
        return Table(table.columns, table.rows, note + (f"; {table.note}" if table.note else ""))
    return table


def _walk_forward_chart(folds: pl.DataFrame, objective: str) -> Chart | None:
    is_col, oos_col = f"is.{objective}", f"oos.{objective}"
    if is_col not in folds.columns or oos_col not in folds.columns:
        return None
    labels = [f"fold {f}" for f in folds["fold"].to_list()]
    params = [c for c in folds.columns if c.startswith("p.")]
    hover = [", ".join(f"{p.removeprefix('p.')}={_fmt(v)}" for p, v in zip(params, row, strict=True))
             for row in folds.select(params).iter_rows()] if params else None
    fig = go.Figure([
        go.Bar(x=labels, y=folds[is_col].cast(pl.Float64).to_numpy(), name="in-sample", marker={"color": _GREY},
               hovertext=hover),
        go.Bar(x=labels, y=folds[oos_col].cast(pl.Float64).to_numpy(), name="out-of-sample",
               marker={"color": _BLUE}, hovertext=hover),
    ])
    fig.update_layout(barmode="group", yaxis={"title": {"text": objective}})
    name = "walk-forward"
    return _figure(fig, name, _dom_id(name), title=f"Walk-forward: {objective} in-sample vs out-of-sample per fold",
                   height=360)


# --------------------------------------------------------------------------- formatting

def _fmt(v: Any) -> str:
    """A number or value as text: thousands separators, 2 decimals from 1 up, 4 significant digits below."""
    if v is None:
        return "—"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "∞" if f > 0 else "−∞"
        if f == 0:
            return "0"
        if abs(f) >= 1:
            return f"{f:,.2f}"
        return f"{f:.4g}"
    if isinstance(v, dict | list | tuple):
        return orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    return str(v)


def _is_time_key(key: str) -> bool:
    return key in ("ts", "start", "end") or key.endswith(("_ts", "_start", "_end")) or key.startswith("ts_")


def _fmt_ts(ns: int) -> str:
    return str(np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="s")).replace("T", " ") + " UTC"


def _fmt_keyed(key: str, v: Any) -> str:
    """Like :func:`_fmt`, but integers under a time-like key are ns timestamps shown as UTC dates."""
    if _is_time_key(str(key)) and isinstance(v, int | np.integer) and not isinstance(v, bool):
        return _fmt_ts(int(v))
    return _fmt(v)


def _fmt_duration(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return _fmt(seconds)
    s = int(round(seconds))
    days, rest = divmod(s, 86_400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{h:02d}:{m:02d}:{sec:02d} ({s:,} s)"


def _fmt_stat(key: str, v: Any) -> str:
    if key.endswith("_duration_s") and isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
        return _fmt_duration(float(v))
    return _fmt_keyed(key, v)


def _frame_table(df: pl.DataFrame, max_rows: int | None = MAX_TABLE_ROWS) -> Table:
    shown = df if max_rows is None else df.head(max_rows)
    int_time = {c for c, t in df.schema.items() if _is_time_key(c) and t.is_integer()}
    rows = [[_fmt_ts(v) if c in int_time and v is not None else _fmt(v) for c, v in zip(df.columns, row, strict=True)]
            for row in shown.iter_rows()]
    note = f"first {shown.height:,} of {df.height:,} rows" if shown.height < df.height else ""
    return Table(list(df.columns), rows, note)


# --------------------------------------------------------------------------- output

def _common() -> dict[str, Any]:
    return {"plotlyjs": Markup(plotly.offline.get_plotlyjs())}


def _write(path: str | Path, text: str) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
