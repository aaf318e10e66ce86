"""The HTML report, read as text (the browser check is in test_browser.py).

Expected values are the hand-written fixtures of conftest.py (stats, go-live, pnl, grid formula),
formatted by hand here, never numbers produced by the report code.
"""

from __future__ import annotations

import html
import re

import numpy as np
import plotly.offline
import polars as pl

from emerald.report import write_report, write_sweep_report
from emerald.report.html import MAX_POINTS, downsample_minmax
from tests.report.conftest import (
    ASSUMPTIONS,
    DIP_INDEX,
    FAST,
    HOSTILE,
    N_EQUITY,
    RUN_CHARTS,
    SLOW,
    STEP,
    T0,
    TRADES,
    equity_curve,
    figures,
    make_run,
    make_sweep,
    sweep_objective,
)


def chart_names(page: str) -> list[str]:
    return [html.unescape(n) for n in re.findall(r'data-chart="([^"]*)"', page)]


def kv(page: str, label: str) -> str:
    """The value cell of the ``<tr><th>label</th><td>value</td></tr>`` row."""
    m = re.search(r"<tr><th>" + re.escape(html.escape(label)) + r"</th><td>(.*?)</td></tr>", page)
    assert m, f"no row {label!r}"
    return html.unescape(m.group(1))


def iso(ts: int) -> str:
    return str(np.datetime64(ts, "ns").astype("datetime64[ms]"))


# --------------------------------------------------------------------------- offline, structure

def test_one_self_contained_file_with_plotly_inlined_once(run_page):
    _, page = run_page
    bundle = plotly.offline.get_plotlyjs()
    assert page.count(bundle[:2000]) == 1
    assert not re.search(r"<script[^>]+src=", page, re.I)
    assert not re.search(r"<link[^>]+href=", page, re.I)
    assert not re.search(r"<(img|iframe)[^>]+src=", page, re.I)


def test_every_run_chart_is_present_once_with_a_stable_id(run_page):
    _, page = run_page
    names = chart_names(page)
    assert sorted(names) == sorted(RUN_CHARTS)
    ids = re.findall(r'<figure class="chart" id="([^"]+)"', page)
    assert len(ids) == len(set(ids)) == len(RUN_CHARTS)
    assert {"chart-equity", "chart-drawdown", "chart-price-0", "chart-price-1", "chart-pnl", "chart-signals",
            "chart-monthly", "chart-exposure"} == set(ids)


def test_report_is_byte_identical_for_identical_input(run_result, run_page, tmp_path):
    path, page = run_page
    again = write_report(run_result, tmp_path / "again.html", title="Run " + HOSTILE)
    assert again.read_bytes() == path.read_bytes()


# --------------------------------------------------------------------------- tables

def test_stats_table_shows_every_stat_formatted(run_page):
    _, page = run_page
    assert kv(page, "Sharpe ratio (annualised)") == "1.88"
    assert kv(page, "Total return (%)") == "11.49"
    assert kv(page, "Maximum drawdown (%)") == "8.77"
    assert kv(page, "Longest drawdown") == "1d 02:03:04 (93,784 s)"  # 93784 s = 86400 + 2*3600 + 3*60 + 4
    assert kv(page, "Trades") == "10"
    assert kv(page, "Trades per day") == "0.096"
    assert kv(page, "Start") == "2024-01-01T00:00:00Z"
    assert kv(page, "End") == "2024-04-14T03:45:00Z"


def test_go_live_table_marks_the_failed_criterion(run_page):
    _, page = run_page
    assert page.count('<td class="pass">PASS</td>') == 3
    assert page.count('<td class="fail">FAIL</td>') == 2  # "trades" and "overall"
    assert "1 of 4 criteria did not pass." in page  # the overall row is not a criterion
    row = re.search(r"<tr><td>trades</td><td>(.*?)</td><td>(.*?)</td><td class=\"fail\">", page)
    assert row and html.unescape(row.group(1)) == ">= 30" and row.group(2) == "10"
    assert '<tr class="overall"><td>overall</td><td>all pass</td><td>3/4</td><td class="fail">FAIL</td></tr>' in page


def test_manifest_coverage_config_and_assumptions_are_shown(run_page):
    _, page = run_page
    assert kv(page, "run_id") == "run-0001"
    assert kv(page, "seed") == "7"
    assert kv(page, "start") == "2024-01-01 00:00:00 UTC"  # manifest start in ns
    assert kv(page, "end") == "2024-04-14 03:45:00 UTC"  # 9999 * 15 min = 104 d 3 h 45 min
    text = html.unescape(page)
    assert "<th>trades_pct</th><th>funding_pct</th><th>gaps</th>" in page
    assert "<tr><td>BTC-USDT-PERP</td><td>100.00</td><td>97.50</td><td>1</td></tr>" in page
    assert '{\n  "fee_bps": 5,\n' in text  # pretty JSON, sorted keys
    items = re.search(r'<ul class="assumptions">(.*?)</ul>', page, re.S).group(1)
    assert [html.unescape(li) for li in re.findall(r"<li>(.*?)</li>", items)] == ASSUMPTIONS


def test_missing_assumptions_and_coverage_are_flagged(tmp_path):
    run = make_run(n=500)
    del run.manifest["assumptions"], run.manifest["coverage"]
    page = write_report(run, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "The result states no assumptions" in page
    assert "The manifest has no coverage record" in page


def test_refusals_are_counted_by_reason(run_page):
    _, page = run_page
    assert "<tr><td>open</td><td>min_notional</td><td>3</td></tr>" in page  # rows with count 2 and 1
    assert "<tr><td>open</td><td>max_leverage</td><td>1</td></tr>" in page


def test_nested_coverage_becomes_one_row_per_leaf(tmp_path):
    run = make_run(n=400)
    run.manifest["coverage"] = {  # the engine's shape: kind -> instrument -> counts
        "funding": {"demo-perp:BTCUSDT": {"expected_settlements": 3, "present_settlements": 2, "n_missing": 1},
                    "demo-perp:ETHUSDT": {"expected_settlements": 3, "present_settlements": 3, "n_missing": 0}},
        "gaps": 0,
    }
    page = write_report(run, tmp_path / "r.html").read_text(encoding="utf-8")
    assert ("<th></th><th>expected_settlements</th><th>present_settlements</th><th>n_missing</th><th>value</th>"
            in page)
    assert "<tr><td>funding / demo-perp:BTCUSDT</td><td>3</td><td>2</td><td>1</td><td></td></tr>" in page
    assert "<tr><td>funding / demo-perp:ETHUSDT</td><td>3</td><td>3</td><td>0</td><td></td></tr>" in page
    assert "<tr><td>gaps</td><td></td><td></td><td></td><td>0</td></tr>" in page


def test_hostile_strings_are_escaped_everywhere(run_page):
    _, page = run_page
    assert "<img src=x" not in page
    assert "<script>console.error" not in page
    # once in <title>, once in <h1>, then the coverage row, the config JSON, the assumption, the attribution table
    assert page.count("&lt;img src=x onerror=") >= 6
    # inside the Plotly JSON, "<" is written \u003c, so no "</script>" can close the script early
    assert page.count("</script>") == page.count("<script")


# --------------------------------------------------------------------------- charts

def test_downsample_keeps_extremes_ends_and_order():
    rng = np.random.default_rng(5)
    n = 100_003
    x = np.arange(n, dtype=np.int64) * 1_000
    y = np.cumsum(rng.normal(size=n))
    y[77_777] = y.min() - 50.0  # a one-sample crash
    y[12_345] = y.max() + 50.0  # a one-sample spike
    y[500:520] = np.nan
    xs, ys = downsample_minmax(x, y, 1_000)
    assert xs.size <= 1_000
    assert np.all(np.diff(xs) > 0)
    assert xs[0] == x[0] and xs[-1] == x[-1]
    assert 77_777_000 in xs and 12_345_000 in xs
    assert np.nanmin(ys) == np.nanmin(y) and np.nanmax(ys) == np.nanmax(y)
    np.testing.assert_array_equal(ys, y[xs // 1_000])  # only original points, no interpolation
    # every bucket of ceil(n / 499) points keeps its own min and max
    size = -(-n // 499)
    for start in range(0, n, size):
        chunk = y[start:start + size]
        if np.isnan(chunk).all():
            continue
        inside = ys[(xs >= start * 1_000) & (xs < (start + size) * 1_000)]
        assert np.nanmin(inside) == np.nanmin(chunk) and np.nanmax(inside) == np.nanmax(chunk)


def test_short_curves_are_not_downsampled():
    x, y = np.arange(10), np.linspace(0, 1, 10)
    xs, ys = downsample_minmax(x, y, 10)
    assert xs is x and ys is y


def test_equity_chart_keeps_the_dip_and_says_it_is_downsampled(run_page):
    _, page = run_page
    eq = figures(page)["chart-equity-plot"]
    (trace,) = eq
    y = np.asarray(trace["y"])
    assert y.size <= MAX_POINTS < N_EQUITY
    raw = equity_curve()["equity"].to_numpy()
    assert y.min() == raw.min() == raw[DIP_INDEX]
    assert iso(T0 + DIP_INDEX * STEP) in trace["x"]
    assert f"downsampled for display: {y.size:,} of {N_EQUITY:,} points" in page


def test_price_chart_has_a_marker_at_every_entry_and_exit(run_page):
    _, page = run_page
    figs = figures(page)
    for k, inst in enumerate(("BTC-USDT-PERP", "ETH-USDT-PERP")):  # BTC has more trades: first
        traces = {t["name"]: t for t in figs[f"chart-price-{k}-plot"]}
        mine = sorted((r for r in TRADES if r[0] == inst), key=lambda r: r[2])
        assert list(traces["entry"]["x"]) == [iso(T0 + r[2] * STEP) for r in mine]
        assert list(np.asarray(traces["entry"]["y"])) == [r[4] for r in mine]
        assert list(traces["exit"]["x"]) == [iso(T0 + r[3] * STEP) for r in mine]
        assert list(np.asarray(traces["exit"]["y"])) == [r[5] for r in mine]
        assert list(traces["entry"]["marker"]["symbol"]) == ["triangle-up" if r[1] > 0 else "triangle-down"
                                                             for r in mine]


def test_many_trade_markers_are_thinned_and_the_chart_says_so(run_result, tmp_path, monkeypatch):
    import emerald.report.html as report_html

    monkeypatch.setattr(report_html, "MAX_MARKERS", 2)
    page = write_report(run_result, tmp_path / "r.html").read_text(encoding="utf-8")
    traces = {t["name"]: t for t in figures(page)["chart-price-0-plot"]}
    btc = sorted((r for r in TRADES if r[0] == "BTC-USDT-PERP"), key=lambda r: r[2])  # 6 trades -> every 3rd
    assert list(traces["entry"]["x"]) == [iso(T0 + r[2] * STEP) for r in btc[::3]]
    assert "trade markers thinned to 1 in 3: 2 of 6 shown" in page


def test_at_most_six_price_charts_the_most_traded_first(tmp_path):
    insts = tuple(f"C{k}-USDT-PERP" for k in range(8))
    # instrument Ck gets k + 1 trades, so C7..C2 are charted and C1, C0 are not
    trades = [(f"C{k}-USDT-PERP", 1, 10 * j, 10 * j + 5, 100.0, 101.0, 1.0, "signal", "s")
              for k in range(8) for j in range(k + 1)]
    page = write_report(make_run(trades=trades, insts=insts, n=400), tmp_path / "r.html").read_text(encoding="utf-8")
    assert [n for n in chart_names(page) if n.startswith("price:")] == [f"price:C{k}-USDT-PERP"
                                                                         for k in range(7, 1, -1)]
    assert "not shown: C1-USDT-PERP, C0-USDT-PERP." in page  # fewest trades last


def test_pnl_decomposition_bars_are_contributions(run_page):
    _, page = run_page
    (bar,) = figures(page)["chart-pnl-plot"]
    assert list(bar["x"]) == ["price", "fees", "funding", "slippage (in price)", "total"]
    # pnl fixture: price 1250, fees 80.5, funding 20.25, slippage 30, total 1149.25 (= 1250 - 80.5 - 20.25)
    assert list(np.asarray(bar["y"])) == [1250.0, -80.5, -20.25, -30.0, 1149.25]


def test_signal_bars_follow_the_attribution_table(run_page):
    _, page = run_page
    (bar,) = figures(page)["chart-signals-plot"]
    assert list(bar["x"]) == ["breakout", "funding_carry", HOSTILE]
    assert list(np.asarray(bar["y"])) == [900.0, 400.0, -150.75]


def test_monthly_heatmap_places_each_month(run_result, run_page):
    from emerald.backtest.stats import monthly_returns

    _, page = run_page
    (heat,) = figures(page)["chart-monthly-plot"]
    years = list(heat["y"])
    monthly = monthly_returns(run_result.equity)
    assert years == sorted({str(y) for y in monthly["year"].to_list()})
    filled = 0
    for year, month, ret in monthly.iter_rows():
        assert heat["z"][years.index(str(year))][month - 1] == ret
        filled += 1
    assert sum(v is not None for row in heat["z"] for v in row) == filled


def test_empty_run_renders_notes_instead_of_empty_charts(tmp_path):
    run = make_run(n=400)
    for name in ("trades", "equity", "prices", "attribution", "refusals"):
        setattr(run, name, getattr(run, name).clear())
    run.pnl = {}
    page = write_report(run, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert chart_names(page) == []
    assert page.count("No data for this chart") == 7


# --------------------------------------------------------------------------- sweep

def test_sweep_heatmap_slices_at_the_best_stop(sweep_page):
    _, page = sweep_page
    heat, best = figures(page)["chart-objective-plot"]
    assert list(heat["x"]) == [str(f) for f in FAST]
    assert list(heat["y"]) == [str(s) for s in SLOW]
    expected = [[sweep_objective(f, s, 1.0) for f in FAST] for s in SLOW]  # best stop = 1.0
    assert heat["z"] == expected
    assert list(best["x"]) == ["20"] and list(best["y"]) == ["100"]
    assert "other parameters held at the best configuration&#39;s values: stop = 1.00" in page


def test_sweep_with_one_parameter_draws_a_line(tmp_path):
    sweep = make_sweep(with_oos=False)
    sweep.grid = pl.DataFrame({"p.fast": [20, 5, 10], "sharpe": [2.0, 0.5, 1.0]})
    page = write_sweep_report(sweep, tmp_path / "s.html").read_text(encoding="utf-8")
    (line,) = figures(page)["chart-objective-plot"]
    assert line["type"] == "scatter"
    assert list(np.asarray(line["x"])) == [5, 10, 20] and list(np.asarray(line["y"])) == [0.5, 1.0, 2.0]


def test_walk_forward_panel_and_multiple_testing_warning(sweep_page):
    _, page = sweep_page
    is_bar, oos_bar = figures(page)["chart-walk-forward-plot"]
    assert list(is_bar["x"]) == ["fold 0", "fold 1", "fold 2"]
    assert list(np.asarray(is_bar["y"])) == [2.75, 1.75, 2.0]
    assert list(np.asarray(oos_bar["y"])) == [0.9, -0.3, 0.4]
    assert "12 configurations were tried" in page  # 3 fast x 2 slow x 2 stop
    assert "multiple testing" in page
    assert "<td>2024-01-11 10:00:00 UTC</td>" in page  # fold 0 is_end = T0 + 1000 * 15 min


def test_sweep_report_embeds_the_out_of_sample_run(sweep_page):
    _, page = sweep_page
    names = set(chart_names(page))
    assert {"objective", "walk-forward"} | {f"oos-{n}" for n in RUN_CHARTS} == names


def test_sweep_without_folds_says_it_is_in_sample(tmp_path):
    sweep = make_sweep(with_oos=False)
    sweep.folds = None
    page = write_sweep_report(sweep, tmp_path / "s.html").read_text(encoding="utf-8")
    assert "Not a walk-forward sweep" in page
    assert set(chart_names(page)) == {"objective"}
