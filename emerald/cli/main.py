"""The ``emerald`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emerald import __version__
from emerald.cli import backtest as bt
from emerald.cli import data, forward, signal_report, signals
from emerald.cli import fit as fit_cli

app = typer.Typer(
    help="EMERALD: research-first backtesting and paper trading for crypto perps. One set of kernels for "
         "backtest, recorder, paper and live.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(signals.app, name="signals")
strategies_app = typer.Typer(help="Strategies shipped in strategies/.", no_args_is_help=True)
strategies_app.command("list")(bt.strategies_list)
app.add_typer(strategies_app, name="strategies")
app.command("backtest")(bt.backtest)
app.command("sweep")(bt.sweep)
app.command("record")(forward.record)
app.command("label")(signal_report.label)
app.command("fit")(fit_cli.fit)
signals.app.command("report")(signal_report.signals_report)
docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


@docs_app.command("cli")
def docs_cli(write: Annotated[bool, typer.Option("--write", help="Write docs/cli.md instead of printing.")] = False
             ) -> None:
    """Generate the CLI reference (docs/cli.md) from the commands themselves."""
    from emerald.cli.reference import DOCS_PATH, render

    text = render(app)
    if write:
        DOCS_PATH.write_text(text)
        print(f"wrote {DOCS_PATH}")
    else:
        print(text, end="")


@docs_app.command("formats")
def docs_formats(write: Annotated[bool, typer.Option("--write", help="Write docs/tape-formats.md.")] = False
                 ) -> None:
    """Generate the import-format reference (docs/tape-formats.md) from the importer modules."""
    from emerald.cli.reference import FORMATS_PATH, render_formats

    text = render_formats()
    if write:
        FORMATS_PATH.write_text(text)
        print(f"wrote {FORMATS_PATH}")
    else:
        print(text, end="")


@app.command("demo")
def demo(
    root: Annotated[Path, typer.Option("--root", help="Where to build the demo tape.")] = Path("demo-tape"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    days: Annotated[int, typer.Option(help="Days of data.", min=1, max=365)] = 7,
    force: Annotated[bool, typer.Option(help="Rebuild the demo tape even if one with the same recipe exists.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Report path (default reports/demo.html).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
) -> None:
    """Run the demo end to end: build (or reuse) the demo tape, backtest the reference strategy
    (EMA 10/50 cross on the BTC perp) and write the HTML report; prints its path."""
    bt.demo_run(root, seed, days, force, report, as_json)


@app.command("version")
def version(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the EMERALD version."""
    if as_json:
        from emerald.cli._common import emit_json

        emit_json({"version": __version__})
    else:
        print(__version__)


if __name__ == "__main__":  # pragma: no cover
    app()
