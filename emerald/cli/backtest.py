"""``emerald backtest``, ``emerald sweep``, ``emerald strategies`` and the end-to-end ``emerald demo``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from emerald.cli._common import console, emit_json, handle_errors, out

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Write the HTML report here.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Start of the run window (ISO time, UTC).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="End of the run window (exclusive).")]

KEY_STATS = ("total_return_pct", "cagr_pct", "sharpe", "sortino", "max_drawdown_pct", "calmar", "trades",
             "win_rate_pct", "profit_factor", "avg_r", "expectancy", "exposure_time_pct", "turnover", "trades_per_day",
             "funding_share_pct")


def _default_report(name: str) -> Path:
    return Path("reports") / f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.html"


def print_run(result: Any, report: Path | None) -> None:
    t = Table(title=f"backtest {result.manifest.get('strategy')} {result.manifest.get('start')} -> "
                    f"{result.manifest.get('end')}")
    t.add_column("statistic")
    t.add_column("value", justify="right")
    for key in KEY_STATS:
        v = result.stats.get(key)
        t.add_row(key, f"{v:,.4g}" if isinstance(v, float) else str(v))
    for key, v in result.pnl.items():
        t.add_row(f"pnl.{key}", f"{v:,.2f}")
    out.print(t)
    g = Table(title="go-live criteria")
    for c in ("criterion", "threshold", "value", "pass"):
        g.add_column(c)
    for row in result.go_live:
        g.add_row(str(row.get("criterion")), str(row.get("threshold")), f"{row.get('value')}",
                  "[green]pass[/]" if row.get("pass") else "[red]fail[/]")
    out.print(g)
    if report is not None:
        console.print(f"report: [bold]{report}[/]")


def run_summary(result: Any, report: Path | None) -> dict[str, Any]:
    return {"ok": True, **result.summary(), "report": str(report) if report else None,
            "strategy": result.manifest.get("strategy"), "start": result.manifest.get("start"),
            "end": result.manifest.get("end")}


def backtest(
    config: Annotated[Path, typer.Argument(metavar="STRATEGY.toml", help="Strategy config.")],
    root: Annotated[Path, typer.Option("--root", help="Tape folder.")],
    start: FromOpt = None,
    end: ToOpt = None,
    report: ReportOpt = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not write an HTML report.")] = False,
    fitted: Annotated[str | None, typer.Option("--fitted", help="ARTIFACT.json (its weights and thresholds), or "
                                               "'walk-forward' (refit before each period on the past only).")] = None,
    folds: Annotated[int, typer.Option(help="Periods of --fitted walk-forward.")] = 4,
    log: Annotated[Path | None, typer.Option("--log", help="Signal log to fit from (--fitted walk-forward; "
                                             "default: label a backtest of the declared defaults).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Backtest a strategy on a tape; print the statistics and write the HTML report. With --fitted,
    in-sample and out-of-sample are reported separately."""
    with handle_errors(as_json):
        from emerald.backtest.engine import backtest as run
        from emerald.report.html import write_report, write_sweep_report
        from emerald.strategy.base import load_config

        cfg = load_config(config, start=start, end=end)
        if fitted is not None:
            from emerald.cli.fit import print_fitted
            from emerald.fit.walkforward import backtest_fitted

            res = backtest_fitted(cfg, root, fitted, folds=folds, log=log)
            path = None if no_report else write_sweep_report(res.sweep, report or _default_report(
                f"{cfg.strategy.name}-fitted"))
            if as_json:
                emit_json({"ok": True, **res.summary(), "report": str(path) if path else None})
            else:
                print_fitted(res)
                if path is not None:
                    console.print(f"report: [bold]{path}[/]")
            return
        result = run(cfg, root)
        path = None
        if not no_report:
            path = write_report(result, report or _default_report(cfg.strategy.name))
        if as_json:
            emit_json(run_summary(result, path))
        else:
            print_run(result, path)


def sweep(
    config: Annotated[Path, typer.Argument(metavar="STRATEGY.toml", help="Strategy config.")],
    root: Annotated[Path, typer.Option("--root", help="Tape folder.")],
    grid: Annotated[list[str], typer.Option("--grid", help="NAME=v1,v2,... (repeat for more parameters).")],
    walk_forward: Annotated[str | None, typer.Option("--walk-forward", help="e.g. 'folds=4,test=1d,anchored' "
                                                     "(see emerald.backtest.sweep.parse_walk_forward).")] = None,
    executor: Annotated[str, typer.Option(help="local (process pool), ray, or serial.")] = "local",
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: CPU count).")] = None,
    objective: Annotated[str, typer.Option(help="Statistic that ranks configurations.")] = "sharpe",
    start: FromOpt = None,
    end: ToOpt = None,
    report: ReportOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a parameter grid (optionally walk-forward) and write the sweep report."""
    with handle_errors(as_json):
        from emerald.backtest import sweep as sw
        from emerald.report.html import write_sweep_report
        from emerald.strategy.base import load_config

        cfg = load_config(config, start=start, end=end)
        wf = sw.parse_walk_forward(walk_forward) if walk_forward else None
        result = sw.sweep(cfg, root, sw.parse_grid(grid), executor=executor, workers=workers, objective=objective,
                          walk_forward=wf)
        path = write_sweep_report(result, report or _default_report(f"{cfg.strategy.name}-sweep"))
        payload = {"ok": True, "n_configs": result.n_configs, "best": result.best, "objective": result.objective,
                   "grid": result.grid.to_dicts(), "folds": result.folds.to_dicts() if result.folds is not None
                   else None, "report": str(path)}
        if as_json:
            emit_json(payload)
        else:
            out.print(result.grid)
            if result.folds is not None:
                out.print(result.folds)
            console.print(f"{result.n_configs} configurations tried; best by {objective}: {result.best}")
            console.print(f"report: [bold]{path}[/]")


def strategies_list(as_json: JsonOpt = False) -> None:
    """List the strategies in strategies/ with their parameters."""
    with handle_errors(as_json):
        from emerald.strategy.base import REPO_STRATEGIES, load_strategy

        rows = []
        for path in sorted(REPO_STRATEGIES.glob("*.py")):
            if path.stem.startswith("_"):
                continue
            s, _ = load_strategy(path.stem)
            rows.append({"name": s.name, "description": s.description, "config": str(path.with_suffix(".toml")),
                         "params": [p.to_dict() for p in s.params], "signals": list(s.signal_names),
                         "source": s.source})
        if as_json:
            emit_json({"strategies": rows})
            return
        t = Table(title=f"{len(rows)} strategies")
        for c in ("name", "description", "params"):
            t.add_column(c)
        for r in rows:
            t.add_row(r["name"], r["description"], ", ".join(f"{p['name']}={p['default']}" for p in r["params"]))
        out.print(t)


def demo_run(root: Path, seed: int, days: int, force: bool, report: Path | None, as_json: bool) -> None:
    """Build (or reuse) the demo tape, backtest the reference strategy on it, write the report."""
    with handle_errors(as_json):
        from emerald.backtest.engine import backtest as run
        from emerald.cli.data import build_or_reuse_demo
        from emerald.report.html import write_report
        from emerald.strategy.base import REPO_STRATEGIES, load_config

        t0 = time.perf_counter()
        summary = build_or_reuse_demo(root, seed, days, force=force, progress=not as_json)
        if not as_json:
            how = "reused" if summary["reused"] else f"built in {summary['seconds']} s"
            console.print(f"demo tape {how} at [bold]{root}[/] (seed {seed}, {days} days)")
        cfg = load_config(REPO_STRATEGIES / "ema_cross.toml")
        if as_json:
            result = run(cfg, root)
        else:
            with console.status("backtesting ema_cross on demo-perp:BTCUSDT ..."):
                result = run(cfg, root)
        path = write_report(result, report or Path("reports") / "demo.html")
        if as_json:
            emit_json({**run_summary(result, path), "tape": str(root), "tape_reused": summary["reused"],
                       "seconds": round(time.perf_counter() - t0, 2)})
        else:
            print_run(result, path)
            console.print(f"demo done in {time.perf_counter() - t0:.1f} s; open {path.resolve()}")
