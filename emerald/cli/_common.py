"""Shared CLI plumbing: JSON output as the last line, error -> exit code, progress bars."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from emerald.errors import ConfigError, DataError, EmeraldError

console = Console(stderr=True)
# piped output (CI logs, `| less`) gets a wide table instead of rich's 80-column default
out = Console() if sys.stdout.isatty() else Console(width=160)

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def emit_json(obj: Any) -> None:
    """Print one JSON object on one line (the last line of the command's output)."""
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode() + "\n")
    sys.stdout.flush()


@contextmanager
def handle_errors(as_json: bool) -> Iterator[None]:
    """Turn library errors into a message (or a JSON object) and an exit code."""
    try:
        yield
    except EmeraldError as e:
        code = EXIT_USAGE if isinstance(e, ConfigError) else EXIT_PROBLEMS
        kind = type(e).__name__
        if as_json:
            payload: dict[str, Any] = {"ok": False, "error": str(e), "error_type": kind}
            if isinstance(e, DataError):
                payload.update({"path": e.path, "field": e.field, "line": e.line})
            emit_json(payload)
        else:
            console.print(f"[bold red]{kind}:[/] {e}")
        raise typer.Exit(code) from None


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar driven by ``callback(step, done, total)``; silent when disabled."""
    if not enabled:
        yield lambda step, done, total: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True) as prog:
        task = prog.add_task("starting", total=1)

        def cb(step: str, done: int, total: int) -> None:
            prog.update(task, description=step, completed=done, total=max(total, 1))

        yield cb
