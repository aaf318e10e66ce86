"""Funding-rate histories (format ``funding-csv``); the layout is detected from the header.

**Binance website export** ("Funding Rate History" download), UTF-8 with a byte-order mark::

    "Time","Contracts","Funding Interval","Funding Rate"
    "2023-04-05 01:00:00","BTCUSDT Perpetual","8h","0.002760%"

-> ``funding`` rows with ``is_settlement = True``, ``rate`` = the percent string / 100 (parsed by
moving the decimal point, so ``0.002760%`` is exactly the float ``2.76e-05``), ``interval_ns`` from
"Funding Interval", ``next_funding_ts = ts + interval``; symbol from "Contracts" (``BTCUSDT
Perpetual`` -> ``BTCUSDT``), venue ``binance-usdm`` unless given.

**Multi-exchange 8-hourly CSV** (AHA-HH/optimising-funding-rate-arbitrage ``all_exchanges.csv``)::

    time,exchange,crypto,pair,contract,open,high,low,close,volume,funding rate
    2023-04-05 01:00:00,binance,bitcoin,BTCUSDT,perpetual,28155.1,28800.0,28085.8,28515.7,164107.058,2.76e-05

-> one 8-hour ``bars`` row per line, and a ``funding`` settlement row per perpetual line with a
rate. Series map to venues and the venues' own symbols (``venue`` and ``symbol`` cannot be given):

| exchange | spot ``BTC/USDT`` | perpetual ``BTCUSDT`` (USDT-margined) | perpetual ``BTCUSDCM`` (coin-margined) |
|---|---|---|---|
| binance | binance-spot BTCUSDT | binance-usdm BTCUSDT | binance-coinm BTCUSD_PERP |
| bybit | bybit-spot BTCUSDT | bybit-linear BTCUSDT | bybit-inverse BTCUSD |
| okx | okx-spot BTC-USDT | okx-swap BTC-USDT-SWAP | okx-swap BTC-USD-SWAP |

A row's time is the bar **open**: in the real file the Binance perpetual row stamped 2023-04-05
00:00Z has open 28155.1, the first BTCUSDT trade after 00:00:00 in the Binance capture of that
night, and the row before it closes at 28155.2, the last trade before midnight (both checked in
``tests/tape/importers/test_funding_csv.py``). The same row's rate, 2.76e-05, is the rate Binance's
own export lists as settled at 2023-04-05 00:00Z, so a row's rate is the rate settled at the row's
time. The volume column's unit is not documented; the values look like base-currency amounts
(coin-margined volumes are not whole contract counts) and are stored as given, with a note.

**Time zone.** Both files are stamped in Europe/London local time: 00/08/16 in winter and
01/09/17 in summer, switching on the UK daylight-saving dates (2023-03-26, 2023-10-29, 2024-03-31
in ``all_exchanges.csv``; 2023-10-29 etc. in the Binance export). When ``tz`` is not given and the
header is one of these two exact headers, the importer reads the times as Europe/London and says
so in ``notes``; an explicit ``tz`` wins. Every converted time is then **checked against the
funding schedule** (a multiple of the interval since the epoch: 00:00/08:00/16:00 UTC for 8 h): a row
off the schedule is rejected as ``off_schedule``, never shifted. In the repeated hour when clocks go
back (01:00 on 2023-10-29 is both 00:00Z and 01:00Z) the instant on the schedule is taken; a local
time that does not exist is rejected as ``nonexistent_local_time``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from emerald.errors import ConfigError, DataError
from emerald.tape.importers.base import ImportReport, LineRejects, add_note
from emerald.tape.importers.text import (
    FileRows,
    bars_data,
    check_options,
    parse_floats,
    parse_interval,
    parse_times,
    read_lines,
    split_fields,
    write_chunked,
)
from emerald.tape.writer import TapeWriter

HOUR_NS = 3_600_000_000_000
_BINANCE_EXPORT = ("Time", "Contracts", "Funding Interval", "Funding Rate")
_ALL_EXCHANGES = ("time", "exchange", "crypto", "pair", "contract", "open", "high", "low", "close", "volume",
                  "funding rate")
_EXPORT_ZONE = "Europe/London"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_CONTRACT = re.compile(r"^(\S+) Perpetual$")
# (exchange, margin) -> (venue, symbol template); margin is spot, usdt or coin
_SERIES = {
    ("binance", "spot"): ("binance-spot", "{base}{quote}"),
    ("binance", "usdt"): ("binance-usdm", "{base}USDT"),
    ("binance", "coin"): ("binance-coinm", "{base}USD_PERP"),
    ("bybit", "spot"): ("bybit-spot", "{base}{quote}"),
    ("bybit", "usdt"): ("bybit-linear", "{base}USDT"),
    ("bybit", "coin"): ("bybit-inverse", "{base}USD"),
    ("okx", "spot"): ("okx-spot", "{base}-{quote}"),
    ("okx", "usdt"): ("okx-swap", "{base}-USDT-SWAP"),
    ("okx", "coin"): ("okx-swap", "{base}-USD-SWAP"),
}


def run(paths: list[Path], writer: TapeWriter, *, venue: str | None = None, symbol: str | None = None,
        tz: str | None = None, strict: bool = False, **options: Any) -> ImportReport:
    """Import funding histories (see the module docstring for the two layouts).

    Raises
    ------
    ConfigError
        Any option; ``venue``/``symbol`` given for the multi-exchange layout.
    DataError
        A header that is neither layout's.
    """
    check_options("funding-csv", options, set())
    report = ImportReport(format="funding-csv")
    rejects = LineRejects(report, strict=strict)
    for path in map(Path, paths):
        lines = read_lines(path)
        if len(lines) == 0:
            raise DataError("empty file; expected a header line", path=str(path))
        header = tuple(h.strip().strip('"') for h in lines[0].as_py().split(","))
        data = lines[1:]
        report.lines_in += len(data)
        rows = FileRows(data, rejects, path, first_line=2)
        if header == _BINANCE_EXPORT:
            _binance_export(path, data, rows, writer, report, venue or "binance-usdm", symbol, tz)
        elif header == _ALL_EXCHANGES:
            if venue is not None or symbol is not None:
                raise ConfigError(f"{path.name} holds many series and names each one; drop --venue/--symbol")
            _all_exchanges(path, data, rows, writer, report, tz)
        else:
            raise DataError(f"unknown funding CSV header (expected {','.join(_BINANCE_EXPORT)} or "
                            f"{','.join(_ALL_EXCHANGES)})", path=str(path), field="header", value=lines[0].as_py())
        report.lines_parsed += int(rows.ok.sum())
    rejects.flush(writer)
    return report


def _zone(path: Path, tz: str | None, report: ImportReport, evidence: str) -> str:
    if tz is not None:
        return tz
    add_note(report, f"{path.name}: times read as {_EXPORT_ZONE} local time, this layout's clock ({evidence}); "
                     "pass --tz to override. Rows off the funding schedule are rejected as off_schedule")
    return _EXPORT_ZONE


def _on_schedule(path: Path, text: pa.Array, rows: FileRows, tz: str, interval_ns: np.ndarray) -> np.ndarray:
    """Settlement times (ns UTC): of the candidate instants of each local time, the one on the schedule."""
    times = parse_times(pc.if_else(pa.array(rows.ok), text, ""), _TIME_FORMAT, tz, path=str(path), field="time")
    rows.reject_times(times, "time")
    early_ok = times.earliest % interval_ns == 0
    late_ok = times.latest % interval_ns == 0
    rows.reject(~early_ok & ~late_ok, "off_schedule", "time")
    return np.where(early_ok, times.earliest, times.latest)


def _binance_export(path: Path, data: pa.Array, rows: FileRows, writer: TapeWriter, report: ImportReport,
                    venue: str, symbol: str | None, tz: str | None) -> None:
    """``"2023-04-05 01:00:00","BTCUSDT Perpetual","8h","0.002760%"`` (Europe/London local time)."""
    fields, count_ok = split_fields(data, ",", 4)
    rows.reject(~count_ok, "field_count")
    interval_text = np.asarray(fields[2], dtype=object)
    interval_ns = np.full(len(data), 8 * HOUR_NS, dtype=np.int64)
    for text in set(interval_text[rows.ok]):
        try:
            interval_ns[interval_text == text] = parse_interval(text)
        except ValueError:
            rows.reject(interval_text == text, "bad_interval", "Funding Interval")
    zone = _zone(path, tz, report, "00/08/16 in winter, 01/09/17 in summer")
    ts = _on_schedule(path, fields[0], rows, zone, interval_ns)
    rate_text = fields[3]
    rows.reject(~np.asarray(pc.ends_with(rate_text, "%")), "bad_number", "Funding Rate")
    # "0.002760%" -> "0.002760e-2": the decimal string of the fraction, parsed once (no division rounding)
    rate, bad, empty = parse_floats(pc.binary_join_element_wise(pc.utf8_rtrim(rate_text, characters="%"), "e-2", ""))
    rows.reject(bad | empty, "bad_number", "Funding Rate")
    contracts = np.asarray(fields[1], dtype=object)
    symbols = np.empty(len(data), dtype=object)
    for text in set(contracts[rows.ok]):
        m = _CONTRACT.match(text)
        if m is None:
            rows.reject(contracts == text, "bad_contract", "Contracts")
        else:
            symbols[contracts == text] = m.group(1)
    found = sorted(set(symbols[rows.ok]))
    if symbol is not None and len(found) > 1:
        raise ConfigError(f"{path.name} holds several contracts {found}; drop --symbol")
    for sym in found:
        sel = rows.ok & (symbols == sym)
        write_chunked(writer, "funding", venue, symbol or sym, {
            "ts_event": ts[sel], "rate": rate[sel], "interval_ns": interval_ns[sel],
            "next_funding_ts": ts[sel] + interval_ns[sel], "is_settlement": np.ones(int(sel.sum()), dtype=bool),
        }, source=str(path))


def _series(exchange: str, contract: str, pair: str) -> tuple[str, str] | None:
    """``('binance', 'perpetual', 'BTCUSDCM')`` -> ``('binance-coinm', 'BTCUSD_PERP')``; None if unknown."""
    if contract == "spot":
        m = re.fullmatch(r"([A-Z0-9]+)/([A-Z0-9]+)", pair)
        margin = "spot"
    elif contract == "perpetual":
        m = re.fullmatch(r"([A-Z0-9]+?)(USDT|USDCM)", pair)
        margin = "usdt" if m is not None and m.group(2) == "USDT" else "coin"
    else:
        return None
    if m is None or (exchange, margin) not in _SERIES:
        return None
    venue, template = _SERIES[(exchange, margin)]
    return venue, template.format(base=m.group(1), quote=m.group(2))


def _all_exchanges(path: Path, data: pa.Array, rows: FileRows, writer: TapeWriter, report: ImportReport,
                   tz: str | None) -> None:
    """``2023-04-05 01:00:00,binance,bitcoin,BTCUSDT,perpetual,28155.1,28800.0,28085.8,28515.7,164107.058,2.76e-05``."""
    fields, count_ok = split_fields(data, ",", len(_ALL_EXCHANGES))
    rows.reject(~count_ok, "field_count")
    col = dict(zip(_ALL_EXCHANGES, fields, strict=True))
    interval = 8 * HOUR_NS
    zone = _zone(path, tz, report, "00/08/16 in winter, 01/09/17 in summer; not a fixed UTC+1")
    ts = _on_schedule(path, col["time"], rows, zone, np.full(len(data), interval, dtype=np.int64))
    prices = {}
    for name in ("open", "high", "low", "close", "volume"):
        values, bad, empty = parse_floats(col[name])
        rows.reject(bad | empty, "bad_number", name)
        prices[name] = values
    rate, rate_bad, rate_empty = parse_floats(col["funding rate"])
    rows.reject(rate_bad, "bad_number", "funding rate")
    is_perp = np.asarray(pc.equal(col["contract"], "perpetual"))
    rows.reject(~is_perp & ~rate_empty, "funding_on_spot", "funding rate")
    keys = np.asarray(pc.binary_join_element_wise(col["exchange"], col["contract"], col["pair"], "\x1f"), dtype=object)
    for key in sorted(set(keys[rows.ok])):
        target = _series(*key.split("\x1f"))
        if target is None:
            rows.reject(keys == key, "unknown_series", "pair")
            continue
        venue, symbol = target
        sel = rows.ok & (keys == key)
        write_chunked(writer, "bars", venue, symbol,
                      bars_data(ts[sel], interval, prices["open"][sel], prices["high"][sel], prices["low"][sel],
                                prices["close"][sel], prices["volume"][sel]), source=str(path))
        fund = sel & ~rate_empty
        if fund.any():
            write_chunked(writer, "funding", venue, symbol, {
                "ts_event": ts[fund], "rate": rate[fund], "interval_ns": np.full(int(fund.sum()), interval),
                "next_funding_ts": ts[fund] + interval, "is_settlement": np.ones(int(fund.sum()), dtype=bool),
            }, source=str(path))
    missing = rows.ok & is_perp & rate_empty
    if missing.any():
        report.notes.append(f"{path.name}: {int(missing.sum())} perpetual rows have no funding rate (bars only)")
    add_note(report, f"{path.name}: volume units are not documented by the source; the values look like "
                     "base-currency amounts and are stored as given")
