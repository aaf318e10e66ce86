"""Importers: one module per source format, each ``run(paths, writer, *, venue, symbol, tz, strict)``.

| FORMAT | module | reads |
|---|---|---|
| binance-raw | binance_raw | ``<local ts> <combined-stream JSON>`` WebSocket captures (gzip) |
| binance-vision | binance_vision | data.binance.vision CSV/ZIP bulk files |
| tardis | tardis | Tardis.dev CSV (trades, quotes, book snapshots, incremental L2, derivative ticker, liquidations) |
| hyperliquid-raw | hyperliquid_raw | ``<local ns> <JSON>`` captures of ``l2Book`` and ``trades`` |
| histdata | forex | HistData.com M1 ASCII bars |
| mt5 | forex | MetaTrader 5 exported tick and bar CSVs |
| funding-csv | funding_csv | funding histories (Binance website export, multi-exchange 8-hourly CSV) |
| bars-csv | bars_csv | generic OHLCV CSV with a declared time column, unit and zone |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

from emerald.errors import ConfigError
from emerald.tape.importers.base import ImportReport, LineRejects

IMPORTERS: dict[str, str] = {
    "binance-raw": "emerald.tape.importers.binance_raw:run",
    "binance-vision": "emerald.tape.importers.binance_vision:run",
    "tardis": "emerald.tape.importers.tardis:run",
    "hyperliquid-raw": "emerald.tape.importers.hyperliquid_raw:run",
    "histdata": "emerald.tape.importers.forex:run_histdata",
    "mt5": "emerald.tape.importers.forex:run_mt5",
    "funding-csv": "emerald.tape.importers.funding_csv:run",
    "bars-csv": "emerald.tape.importers.bars_csv:run",
}

ImporterFn = Callable[..., ImportReport]


def get_importer(fmt: str) -> ImporterFn:
    if fmt not in IMPORTERS:
        from difflib import get_close_matches

        hint = get_close_matches(fmt, list(IMPORTERS), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else f"; known formats: {', '.join(IMPORTERS)}"
        raise ConfigError(f"unknown import format, was {fmt!r}{extra}")
    module, _, name = IMPORTERS[fmt].partition(":")
    fn: ImporterFn = getattr(import_module(module), name)
    return fn


def run_import(fmt: str, paths: Sequence[str | Path], root: str | Path, *, strict: bool = False,
               **options: Any) -> ImportReport:
    """Import ``paths`` in ``fmt`` into the tape at ``root``; commit and return the report."""
    from emerald.tape.writer import TapeWriter

    fn = get_importer(fmt)
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise ConfigError(f"input file not found, was {missing[0]!r}")
    writer = TapeWriter(root, strict=strict)
    report = fn([Path(p) for p in paths], writer, strict=strict, **options)
    for p in paths:
        writer.add_source(p, fmt)
    report.write = writer.commit()
    report.sources = [str(p) for p in paths]
    return report


__all__ = ["IMPORTERS", "ImportReport", "LineRejects", "get_importer", "run_import"]
