"""``emerald record``: the forward-test recorder command (``label``, ``signals report`` and ``fit`` live in
signal_report.py and fit.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from emerald.cli._common import console, emit_json, handle_errors

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]


def parse_speed(text: str) -> float | None:
    from emerald.errors import ConfigError

    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise ConfigError(f"--speed must be a number (x real time) or 'max', was {text!r}") from None
    if not speed > 0:
        raise ConfigError(f"--speed must be > 0, was {text!r}")
    return speed


def record(
    config: Annotated[Path, typer.Argument(metavar="STRATEGY.toml", help="Strategy config.")],
    replay: Annotated[Path, typer.Option("--replay", help="Replay this tape as the event source.")],
    log: Annotated[Path, typer.Option("--log", help="Signal log (DuckDB file; created if missing).")] = Path(
        "signals.duckdb"),
    speed: Annotated[str, typer.Option(help="Replay speed: N x real time, or 'max'.")] = "max",
    fitted: Annotated[Path | None, typer.Option(help="Fitted artifact (JSON) whose weights/thresholds to use.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start of the window (ISO, UTC).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End of the window (exclusive).")] = None,
    progress: Annotated[bool, typer.Option(help="Print a line per commit (stderr).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Record every signal firing of a strategy on a replayed tape into the signal log (nothing is
    traded). Killed and started again, it resumes: no duplicates, nothing committed lost."""
    with handle_errors(as_json):
        from emerald.forward.recorder import Recorder
        from emerald.strategy.base import load_config

        cfg = load_config(config, start=start, end=end)
        weights, fitted_hash = None, "none"
        if fitted is not None:
            from emerald.fit.artifact import load_artifact

            art = load_artifact(fitted)
            weights, fitted_hash = art.scoring(), art.hash

        def on_commit(events: int, emitted: int) -> None:
            if progress:
                print(f"committed events={events} signals={emitted}", file=sys.stderr, flush=True)

        rec = Recorder(cfg, log, fitted=weights, fitted_hash=fitted_hash)
        report = rec.replay(replay, speed=parse_speed(speed), on_commit=on_commit)
        report["ok"] = report["emitted"] == report["recorded"]
        if as_json:
            emit_json(report)
        else:
            console.print(f"run {report['run_id']}: {report['status']}; {report['events']} events (resumed from "
                          f"{report['resumed_from']}); signals emitted {report['emitted']}, recorded "
                          f"{report['recorded']} in {log}")
        if not report["ok"]:
            raise typer.Exit(1)
