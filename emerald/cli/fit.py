"""``emerald fit`` (a fitted artifact from a labelled signal log) and the printing of a backtest with
``--fitted ARTIFACT.json|walk-forward`` (in-sample and out-of-sample apart)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from emerald.cli._common import console, emit_json, handle_errors, out

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]


def fit(
    log: Annotated[Path, typer.Option("--log", help="Labelled signal log (DuckDB file).")],
    strategy: Annotated[Path, typer.Option("--strategy", metavar="STRATEGY.toml", help="Strategy config.")],
    out_path: Annotated[Path, typer.Option("--out", metavar="ARTIFACT.json", help="Artifact to write.")],
    root: Annotated[Path | None, typer.Option("--root", help="Tape for the metric history (default: the runs' "
                                                             "replayed tape; else the log's inputs).")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Fit on this run only.")] = None,
    horizon: Annotated[str, typer.Option(help="Outcome horizon (must be labelled).")] = "1h",
    min_samples: Annotated[int, typer.Option(help="Below this many outcomes a signal keeps its default.")] = 100,
    percentile: Annotated[float, typer.Option(help="Threshold percentile of the metric's history.")] = 90.0,
    lookback: Annotated[str | None, typer.Option(help="Threshold history: the last DURATION (default: all).")
                        ] = None,
    validation: Annotated[float, typer.Option(help="Share of the window (by time) that is out-of-sample.")] = 0.3,
    calibration: Annotated[str | None, typer.Option(help="Score -> win probability: logistic or isotonic.")
                           ] = None,
    before: Annotated[str | None, typer.Option("--before", help="Use only outcomes ended before this time (ISO, "
                                                                "UTC).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit a strategy's signal weights (proportional to out-of-sample Sharpe, clipped at zero,
    normalised to 100) and thresholds (percentiles of each metric's history) from a labelled signal
    log, and write the versioned artifact. Signals with too few outcomes keep their defaults."""
    with handle_errors(as_json):
        from emerald.fit.fitter import FitParams
        from emerald.fit.fitter import fit as run_fit
        from emerald.strategy.base import load_config
        from emerald.tape.reader import parse_time

        cfg = load_config(strategy)
        params = FitParams(horizon=horizon, min_samples=min_samples, percentile=percentile, lookback=lookback,
                           validation=validation, calibration=calibration)
        art = run_fit(log, cfg, root=root, run_id=run_id, before=parse_time(before, field="before"), params=params)
        art.write(out_path)
        payload = {"ok": True, "artifact": str(out_path), "hash": art.hash, "strategy": art.strategy,
                   "scoring": art.scoring(), "signals": {n: {k: s[k] for k in ("weight", "weight_source", "threshold",
                                                                                "threshold_source", "notes")}
                                                         for n, s in art.signals.items()},
                   "window": art.doc["window"], "notes": art.doc["notes"]}
        if as_json:
            emit_json(payload)
            return
        t = Table(title=f"fit {art.strategy} -> {out_path} ({art.hash})")
        for c in ("signal", "weight", "source", "threshold", "source ", "OOS n", "OOS Sharpe", "notes"):
            t.add_column(c)
        for n, s in art.signals.items():
            t.add_row(n, f"{s['weight']:.4g}", s["weight_source"], f"{s['threshold']:.4g}", s["threshold_source"],
                      str(s["out_of_sample"]["count"]), _num(s["out_of_sample"]["sharpe"]), "; ".join(s["notes"]))
        out.print(t)
        for note in art.doc["notes"]:
            console.print(f"note: {note}")


def print_fitted(result: Any) -> None:
    """Print a :class:`~emerald.fit.walkforward.FittedBacktest`: in-sample and out-of-sample key
    statistics side by side, the folds, the per-signal table and the notes."""
    from emerald.cli.backtest import KEY_STATS

    t = Table(title=f"{result.kind}: in-sample vs out-of-sample")
    for c in ("statistic", "in-sample", "out-of-sample"):
        t.add_column(c, justify="right" if c != "statistic" else "left")
    is_stats = result.in_sample.stats if result.in_sample is not None else {}
    oos_stats = result.out_of_sample.stats if result.out_of_sample is not None else {}
    for key in KEY_STATS:
        t.add_row(key, _num(is_stats.get(key)), _num(oos_stats.get(key)))
    out.print(t)
    if result.sweep.folds is not None:
        cols = [c for c in result.sweep.folds.columns if c in ("fold", "artifact", "is.sharpe", "oos.sharpe",
                                                              "is.trades", "oos.trades") or c[:2] in ("w.", "th")]
        out.print(result.sweep.folds.select(cols))
    if result.signals.height:
        out.print(result.signals.select("fold", "signal", "weight", "weight_source", "threshold", "is_count",
                                        "is_sharpe", "oos_count", "oos_sharpe", "oos_ic"))
    for note in result.sweep.manifest.get("notes", []):
        console.print(f"note: {note}")


def _num(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:,.4g}" if isinstance(v, float) else str(v)
