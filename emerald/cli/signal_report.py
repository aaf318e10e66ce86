"""``emerald label`` (outcomes of the recorded signals) and ``emerald signals report`` (per-signal
performance as HTML / JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emerald.cli._common import console, emit_json, handle_errors

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]


def label(
    log: Annotated[Path, typer.Option("--log", help="Signal log (DuckDB file) written by `emerald record`.")],
    root: Annotated[Path, typer.Option("--root", help="The tape to read outcomes from (the run's own tape).")],
    horizons: Annotated[str, typer.Option(help="Comma-separated horizons (units s, m, h, d).")] = "1m,5m,15m,1h,4h,24h",
    take_profit_pct: Annotated[float, typer.Option(help="Triple barrier: take-profit distance, %.")] = 0.5,
    stop_pct: Annotated[float | None, typer.Option(help="Triple barrier: stop distance, % (default: take-profit).")
                        ] = None,
    vol_window: Annotated[str, typer.Option(help="Trailing window of the realised volatility.")] = "1h",
    run_id: Annotated[str | None, typer.Option("--run", help="Label this run only (default: every run).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="The run's strategy config (default: the recorded "
                                                                 "one, for strategies in strategies/).")] = None,
    fitted: Annotated[Path | None, typer.Option(help="The fitted artifact the run was recorded with.")] = None,
    trades: Annotated[bool, typer.Option("--trades/--no-trades", help="Also store each decision's would-be trade "
                                                                      "(backtests the run's config).")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Label every recorded signal with its outcomes: forward return, excursions, triple barrier and
    funding per horizon, and each decision's would-be trade. Horizons past the end of the data get no
    outcome (counted). Labelling a run again replaces its outcomes."""
    with handle_errors(as_json):
        from emerald.forward.label import label as run_label

        weights, fitted_hash = None, "none"
        if fitted is not None:
            from emerald.fit.artifact import load_artifact

            art = load_artifact(fitted)
            weights, fitted_hash = art.scoring(), art.hash
        report = run_label(log, root, horizons=horizons, take_profit_pct=take_profit_pct, stop_pct=stop_pct,
                           vol_window=vol_window, run_id=run_id, trades=trades, config=config, fitted=weights,
                           fitted_hash=fitted_hash)
        report["ok"] = True
        if as_json:
            emit_json(report)
            return
        for r in report["runs"]:
            console.print(f"run {r['run_id']}: {r['signals']} signals, {r['rows']} outcomes; {r['uncovered']} "
                          f"(signal, horizon) past the data end {r['uncovered_by_horizon']}, {r['no_price']} without "
                          f"a price, funding unknown {r['funding_unknown']}"
                          + (f"; trades {r['trades']}" if r["trades"] is not None else ""))


def signals_report(
    log: Annotated[Path, typer.Option("--log", help="Labelled signal log (DuckDB file).")],
    report: Annotated[Path, typer.Option("--report", help="HTML report to write.")],
    as_json: JsonOpt = False,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run (default: every labelled run).")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Per-signal performance of a labelled log: count, win rate, profit factor, Sharpe, mean and
    median return, HAC t-statistic, IC and rank IC by horizon, decay, sessions, volatility regimes,
    bootstrap intervals and the go-live table; written as HTML (and JSON with --json)."""
    with handle_errors(as_json):
        from emerald.forward.performance import signal_performance
        from emerald.report.signals import write_signal_report

        perf = signal_performance(log, run_id=run_id, seed=seed)
        path = write_signal_report(perf, report)
        if as_json:
            emit_json({"ok": True, "report": str(path), **perf.to_dict()})
            return
        passed = perf.summary.filter("go_live_pass").height
        console.print(f"{perf.summary.height} (strategy, signal, horizon) groups, {passed} pass the go-live "
                      f"criteria; report: {path}")
