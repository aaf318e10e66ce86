"""Self-contained HTML report of per-signal performance (:class:`~emerald.forward.performance.SignalReport`).

Built like the backtest report (:mod:`emerald.report.html`, whose helpers it uses): Plotly inlined
once, autoescaped jinja2 (the template below extends ``base.html.j2``), stable chart ids, a "no
data" note instead of an empty chart, byte-identical output for identical input. It shows the
report's tables as they are and never recomputes a statistic.

Charts (``data-chart`` names): ``decay`` (mean return by horizon, one line per signal), ``ic``
(information coefficient by horizon, Pearson solid, rank dotted), ``mean-ci`` (mean return per
group with its bootstrap interval), ``sessions`` and ``regimes`` (heatmaps of the mean return per
group and session / volatility regime).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import polars as pl

from emerald.forward.performance import SignalReport
from emerald.report.html import (
    _BLUE,
    _ENV,
    Chart,
    Table,
    _common,
    _dom_id,
    _figure,
    _fmt,
    _frame_table,
    _write,
)

_TEMPLATE = """{% extends "base.html.j2" %}
{% import "macros.html.j2" as m %}
{% block nav %}<a href="#runs">runs</a><a href="#go-live">go-live</a><a href="#summary">statistics</a><a href="#decay">decay</a><a href="#ic">IC</a><a href="#breakdowns">sessions and regimes</a>{% endblock %}
{% block content %}
<section id="runs">
<h2>Labelled runs</h2>
{{ m.kv_table(meta) }}
{{ m.table(runs) }}
{% if uncovered %}<p class="warn">{{ uncovered }} (signal, horizon) pairs reach past the end of the data: they have no outcome and are not counted below.</p>{% endif %}
</section>
<section id="go-live">
<h2>Go-live criteria</h2>
<p class="note">Per group: win rate &gt; 55 %, profit factor &gt; 1.5, Sharpe &gt; 1.5, max drawdown &lt; 10 %, at least 30 outcomes. Passing is necessary, not sufficient; overlapping horizons inflate the count of independent bets (see the HAC t-statistic).</p>
{% if go_live %}
<div class="scroll"><table>
<thead><tr>{% for c in go_live.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in go_live.rows %}
<tr>{% for cell in row %}<td{% if cell.startswith("PASS") %} class="pass"{% elif cell.startswith("FAIL") %} class="fail"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}
</tbody></table></div>
{% else %}<p class="bad">No group has outcomes.</p>{% endif %}
</section>
<section id="summary">
<h2>Statistics per signal and horizon</h2>
<p class="note">Returns are direction-signed, in percent; horizon "trade" is the would-be trade under the strategy's own exit rules. Signal "(all)" pools every signal of a strategy and kind.</p>
{{ m.table(summary) }}
{{ m.chart(charts.mean_ci, "no group has two or more outcomes") }}
</section>
<section id="decay">
<h2>Decay curve</h2>
{{ m.chart(charts.decay, "no horizon has outcomes") }}
</section>
<section id="ic">
<h2>Information coefficient by horizon</h2>
{{ m.chart(charts.ic, "no group has a defined IC (three or more outcomes with varying strength)") }}
</section>
<section id="breakdowns">
<h2>Sessions (UTC) and volatility regimes</h2>
{{ m.chart(charts.sessions, "no outcomes") }}
{{ m.table(sessions) }}
{{ m.chart(charts.regimes, "no outcomes") }}
{{ m.table(regimes) }}
</section>
{% endblock %}
"""

SUMMARY_COLUMNS = ("strategy", "kind", "signal", "horizon", "count", "win_rate_pct", "profit_factor", "sharpe",
                   "mean_return_pct", "median_return_pct", "t_stat_hac", "hac_lags", "ic", "rank_ic",
                   "max_drawdown_pct", "mean_return_ci_low_pct", "mean_return_ci_high_pct", "win_rate_ci_low_pct",
                   "win_rate_ci_high_pct", "mfe_mean_pct", "mae_mean_pct", "barrier_tp_pct", "barrier_sl_pct",
                   "barrier_timeout_pct", "funding_mean_pct", "go_live")


def write_signal_report(report: SignalReport, path: str | Path, *, title: str | None = None) -> Path:
    """Write the HTML report of ``report`` to ``path`` (parent folders created); returns ``path``."""
    s = report.summary
    charts = {
        "decay": _by_horizon_chart("decay", report.decay, [("mean_return_pct", "solid")],
                                   "Decay: mean return (%) by horizon", "mean return (%)"),
        "ic": _by_horizon_chart("ic", report.decay, [("ic", "solid"), ("rank_ic", "dot")],
                                "Information coefficient by horizon (solid: Pearson, dotted: rank)", "IC"),
        "mean_ci": _mean_ci_chart(s),
        "sessions": _heatmap("sessions", report.sessions, "session", "Mean return (%) by UTC session"),
        "regimes": _heatmap("regimes", report.regimes, "regime", "Mean return (%) by volatility regime (terciles)"),
    }
    runs = report.runs.select([c for c in ("run_id", "strategy", "start", "end", "signals", "rows", "uncovered",
                                           "no_price", "funding_unknown", "trades", "horizons", "take_profit_pct",
                                           "stop_pct") if c in report.runs.columns])
    text = _ENV.from_string(_TEMPLATE).render(
        title=title or "Signal performance report",
        meta=[(k, _fmt(v)) for k, v in report.meta.items()],
        runs=_frame_table(runs, max_rows=None),
        uncovered=int(report.runs["uncovered"].sum()) if report.runs.height else 0,
        go_live=_go_live_table(report.go_live),
        summary=_frame_table(s.select([c for c in SUMMARY_COLUMNS if c in s.columns]), max_rows=None),
        sessions=_frame_table(report.sessions, max_rows=None),
        regimes=_frame_table(report.regimes, max_rows=None),
        charts=charts,
        **_common(),
    )
    return _write(path, text)


def _label(row: dict[str, Any], with_horizon: bool = True) -> str:
    base = f"{row['strategy']} / {row['kind']} / {row['signal']}"
    return f"{base} @ {row['horizon']}" if with_horizon else base


def _go_live_table(go_live: pl.DataFrame) -> Table | None:
    """One row per group, one column per criterion: ``PASS 61.5`` / ``FAIL NaN``."""
    if not go_live.height:
        return None
    criteria = list(dict.fromkeys(go_live["criterion"].to_list()))
    groups: dict[tuple[str, ...], dict[str, str]] = {}
    for r in go_live.iter_rows(named=True):
        key = (r["strategy"], r["kind"], r["signal"], r["horizon"])
        shown = r["tally"] if r["criterion"] == "overall" else _fmt(r["value"])
        groups.setdefault(key, {})[r["criterion"]] = f"{'PASS' if r['pass'] else 'FAIL'} {shown}"
    rows = [[*key, *(cells.get(c, "") for c in criteria)] for key, cells in groups.items()]
    return Table(["strategy", "kind", "signal", "horizon", *criteria], rows)


def _by_horizon_chart(name: str, decay: pl.DataFrame, series: list[tuple[str, str]], title: str,
                      y_title: str) -> Chart | None:
    if not decay.height:
        return None
    order = decay.sort("horizon_ns")["horizon"].unique(maintain_order=True).to_list()
    fig = go.Figure()
    points = 0
    for _, g in decay.group_by("strategy", "kind", "signal", maintain_order=True):
        g = g.sort("horizon_ns")
        label = _label(g.row(0, named=True), with_horizon=False)
        for col, dash in series:
            y = g[col].to_list()
            points += sum(v is not None and v == v for v in y)
            fig.add_trace(go.Scatter(x=g["horizon"].to_list(), y=y, mode="lines+markers",
                                     name=label + ("" if len(series) == 1 else f" ({col})"),
                                     line={"dash": dash, "width": 1.5}, legend="legend2"))
    if not points:
        return None
    # legend2 below the plot: the shared figure helper puts `legend` above it, where many signals
    # would cover the title
    fig.update_layout(xaxis={"type": "category", "categoryorder": "array", "categoryarray": order,
                             "title": {"text": "horizon"}}, yaxis={"title": {"text": y_title}},
                      legend2={"orientation": "h", "y": -0.25, "yanchor": "top", "x": 0, "xanchor": "left"})
    return _figure(fig, name, _dom_id(name), title=title, height=460 + 22 * (len(fig.data) // 3))


def _mean_ci_chart(summary: pl.DataFrame) -> Chart | None:
    s = summary.filter(pl.col("mean_return_ci_low_pct").is_not_nan() & pl.col("mean_return_ci_high_pct").is_not_nan())
    if not s.height:
        return None
    labels = [_label(r) for r in s.iter_rows(named=True)]
    mean = s["mean_return_pct"].to_numpy()
    fig = go.Figure(go.Scatter(
        x=labels, y=mean, mode="markers", marker={"color": _BLUE, "size": 8}, name="mean",
        error_y={"type": "data", "symmetric": False, "array": s["mean_return_ci_high_pct"].to_numpy() - mean,
                 "arrayminus": mean - s["mean_return_ci_low_pct"].to_numpy()}))
    fig.update_layout(showlegend=False, yaxis={"title": {"text": "mean return (%)"}},
                      xaxis={"type": "category", "tickangle": -30})
    return _figure(fig, "mean-ci", _dom_id("mean-ci"), title="Mean return (%) with its 95 % bootstrap interval",
                   height=460)


def _heatmap(name: str, df: pl.DataFrame, col: str, title: str) -> Chart | None:
    if not df.height:
        return None
    labels = list(dict.fromkeys(_label(r) for r in df.iter_rows(named=True)))
    cols = list(dict.fromkeys(df[col].to_list()))
    ri, ci = {v: i for i, v in enumerate(labels)}, {v: i for i, v in enumerate(cols)}
    z: list[list[float | None]] = [[None] * len(cols) for _ in labels]
    text = [[""] * len(cols) for _ in labels]
    for r in df.iter_rows(named=True):
        v = r["mean_return_pct"]
        z[ri[_label(r)]][ci[r[col]]] = v if v == v else None
        text[ri[_label(r)]][ci[r[col]]] = f"{_fmt(v)} (n={r['count']})"
    fig = go.Figure(go.Heatmap(z=z, x=cols, y=labels, text=text, texttemplate="%{text}", colorscale="RdYlGn",
                               zmid=0, colorbar={"title": {"text": "%"}},
                               hovertemplate="%{y}, %{x}: %{text}<extra></extra>"))
    fig.update_layout(yaxis={"type": "category", "autorange": "reversed"}, xaxis={"type": "category"})
    return _figure(fig, name, _dom_id(name), title=title, height=160 + 28 * len(labels))
