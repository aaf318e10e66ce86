"""Forex text exports: HistData.com M1 ASCII bars (``histdata``) and MetaTrader 5 tick and bar
exports (``mt5``).

Neither format carries a time zone, so ``tz`` is required for both and never defaulted.

HistData.com M1 ASCII (``DAT_ASCII_EURUSD_M1_201701.csv``), no header::

    20170102 020000;1.051550;1.051970;1.051550;1.051900;0
    (YYYYMMDD HHMMSS;open;high;low;close;volume)

HistData.com documents these times as Eastern Standard Time *without* daylight saving, i.e. a fixed
``UTC-05:00`` all year (``--tz UTC-05:00``; an IANA zone such as America/New_York would be wrong half
the year). A row's time is the bar's open; prices are bid quotes; the volume column is 0 in the
EURUSD files and is stored as given. Output: ``bars`` with a 1-minute interval, NaN buy/sell volume,
``trades = -1``. The symbol comes from the file name (``DAT_ASCII_<SYMBOL>_M1_<yyyymm>.csv``) unless
``symbol`` is given; the venue defaults to ``histdata``.

MetaTrader 5 exports (terminal: View -> Symbols -> Ticks or Bars -> Export), tab separated, with
an angle-bracket header that tells ticks from bars (UTF-8 or UTF-16 with a byte-order mark)::

    <DATE>	<TIME>	<BID>	<ASK>	<LAST>	<VOLUME>	<FLAGS>
    2024.01.02	00:00:00.123	1.10384	1.10396			6
    2024.01.02	00:00:00.311	1.10385				2

    <DATE>	<TIME>	<OPEN>	<HIGH>	<LOW>	<CLOSE>	<TICKVOL>	<VOL>	<SPREAD>
    2024.01.02	00:00:00	1.10384	1.10411	1.10371	1.10402	87	0	12

Times are the broker's server time (often UTC+2/UTC+3 following US or EU daylight saving): pass
``tz`` as an IANA zone or a fixed offset. With a daylight-saving zone, a local time inside the
spring-forward gap is rejected (``nonexistent_local_time``) and the repeated hour of the autumn
change is resolved in file order (times that step back into it are the second pass, the later
instant). In a tick export, FLAGS says which fields changed and an
unchanged field is left empty, so an empty BID or ASK means "same as the previous tick": the
importer carries the last known value forward (file order, within one file). Ticks before both
sides have been seen cannot form a quote and are rejected as ``before_two_sided_quote``; ticks with
neither BID nor ASK (trade-only ticks of exchange instruments) are counted in
``unhandled['trade_tick']``. Ticks become ``quotes`` with NaN sizes (the export has none);
``ts_recv = ts_event``. Bars become ``bars`` (OHLC are bid prices; SPREAD, in points, is not
stored); the interval comes from the ``interval`` option (``1m``, ``1h`` ...) or is inferred from
the most common time step. ``volume`` is VOL (real volume) when any bar of the file has a non-zero
VOL; when all VOL are 0 (forex) it is TICKVOL, a count of price changes rather than base units, and
a note says so. The export does not name the symbol: ``symbol`` is required; the venue defaults to
``mt5``.
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
    bar_interval,
    bars_data,
    check_options,
    interval_option,
    parse_floats,
    parse_times,
    read_lines,
    split_fields,
    write_chunked,
)
from emerald.tape.timeutil import NS
from emerald.tape.writer import TapeWriter

_HISTDATA_NAME = re.compile(r"^DAT_ASCII_([A-Z0-9]+)_M1_\d{4,6}", re.IGNORECASE)
_MT5_TICKS = ("<DATE>", "<TIME>", "<BID>", "<ASK>", "<LAST>", "<VOLUME>", "<FLAGS>")
_MT5_BARS = ("<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>", "<VOL>", "<SPREAD>")
_MT5_TIME_FORMAT = "%Y.%m.%d %H:%M:%S"


# --------------------------------------------------------------------------------------------
# HistData.com


def run_histdata(paths: list[Path], writer: TapeWriter, *, venue: str | None = None, symbol: str | None = None,
                 tz: str | None = None, strict: bool = False, **options: Any) -> ImportReport:
    """Import HistData.com M1 ASCII files as 1-minute ``bars``.

    Raises
    ------
    ConfigError
        No ``tz``; no ``symbol`` and a file name that does not name one; any option.
    """
    check_options("histdata", options, set())
    if tz is None:
        raise ConfigError("histdata times carry no zone: pass --tz explicitly. HistData.com documents EST "
                          "without daylight saving, i.e. --tz UTC-05:00")
    venue = venue or "histdata"
    report = ImportReport(format="histdata")
    rejects = LineRejects(report, strict=strict)
    for path in map(Path, paths):
        sym = symbol or _histdata_symbol(path)
        lines = read_lines(path)
        report.lines_in += len(lines)
        fields, count_ok = split_fields(lines, ";", 6)
        rows = FileRows(lines, rejects, path, first_line=1)
        rows.reject(~count_ok, "field_count")
        times = parse_times(pc.if_else(pa.array(rows.ok), fields[0], ""), "%Y%m%d %H%M%S", tz, path=str(path),
                            field="time")
        rows.reject_times(times, "time")
        values = []
        for name, text in zip(("open", "high", "low", "close", "volume"), fields[1:], strict=True):
            v, bad, empty = parse_floats(text)
            rows.reject(bad | empty, "bad_number", name)
            values.append(v)
        ok = rows.ok
        report.lines_parsed += int(ok.sum())
        o, h, lo, c, vol = (v[ok] for v in values)
        ts = times.in_file_order(ok)[ok]
        write_chunked(writer, "bars", venue, sym, bars_data(ts, 60 * NS["s"], o, h, lo, c, vol), source=str(path))
    add_note(report, "HistData prices are bid quotes; a row's time is the bar open")
    rejects.flush(writer)
    return report


def _histdata_symbol(path: Path) -> str:
    m = _HISTDATA_NAME.match(path.name)
    if m is None:
        raise ConfigError(f"cannot read the symbol from the file name (expected DAT_ASCII_<SYMBOL>_M1_<yyyymm>.csv), "
                          f"was {path.name!r}; pass --symbol")
    return m.group(1).upper()


# --------------------------------------------------------------------------------------------
# MetaTrader 5


def run_mt5(paths: list[Path], writer: TapeWriter, *, venue: str | None = None, symbol: str | None = None,
            tz: str | None = None, strict: bool = False, **options: Any) -> ImportReport:
    """Import MetaTrader 5 tick exports as ``quotes`` and bar exports as ``bars``.

    Raises
    ------
    ConfigError
        No ``tz`` or no ``symbol``; an unknown option (only ``interval`` is taken).
    DataError
        A header that is neither the tick nor the bar export header; ticks out of time order.
    """
    check_options("mt5", options, {"interval"})
    interval_ns = interval_option(options)
    if tz is None:
        raise ConfigError("MT5 exports are in the broker's server time and carry no zone: pass --tz "
                          "(an IANA zone such as Europe/Athens, or a fixed offset such as UTC+02:00)")
    if symbol is None:
        raise ConfigError("MT5 exports do not name the symbol inside the file; pass --symbol")
    venue = venue or "mt5"
    report = ImportReport(format="mt5")
    rejects = LineRejects(report, strict=strict)
    for path in map(Path, paths):
        lines = read_lines(path, encoding=_encoding(path))
        if len(lines) == 0:
            raise DataError("empty file; expected an MT5 export header", path=str(path))
        header = tuple(h.strip() for h in lines[0].as_py().split("\t"))
        data = lines[1:]
        report.lines_in += len(data)
        if header == _MT5_TICKS:
            _mt5_ticks(path, data, writer, report, rejects, venue, symbol, tz)
        elif header == _MT5_BARS:
            _mt5_bars(path, data, writer, report, rejects, venue, symbol, tz, interval_ns)
        else:
            raise DataError(f"not an MT5 tick or bar export header (expected {' '.join(_MT5_TICKS)} or "
                            f"{' '.join(_MT5_BARS)})", path=str(path), field="header", value=" ".join(header))
    rejects.flush(writer)
    return report


def _encoding(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(2)
    return "utf-16" if head in (b"\xff\xfe", b"\xfe\xff") else "utf8"


def _mt5_times(path: Path, fields: list[pa.Array], rows: FileRows, tz: str) -> np.ndarray:
    text = pc.if_else(pa.array(rows.ok), pc.binary_join_element_wise(fields[0], fields[1], " "), "")
    times = parse_times(text, _MT5_TIME_FORMAT, tz, path=str(path), field="<DATE> <TIME>")
    rows.reject_times(times, "<DATE> <TIME>")
    return times.in_file_order(rows.ok)


def _forward_fill(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Last present value at or before each row (NaN before the first)."""
    idx = np.where(present, np.arange(values.size), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], np.nan)


def _mt5_ticks(path: Path, data: pa.Array, writer: TapeWriter, report: ImportReport, rejects: LineRejects,
               venue: str, symbol: str, tz: str) -> None:
    """``2024.01.02	00:00:00.311	1.10385				2`` (flags 2: only BID changed; ASK unchanged)."""
    fields, count_ok = split_fields(data, "\t", len(_MT5_TICKS))
    rows = FileRows(data, rejects, path, first_line=2)
    rows.reject(~count_ok, "field_count")
    ts = _mt5_times(path, fields, rows, tz)
    bid, bid_bad, bid_empty = parse_floats(fields[2])
    ask, ask_bad, ask_empty = parse_floats(fields[3])
    rows.reject(bid_bad, "bad_number", "<BID>")
    rows.reject(ask_bad, "bad_number", "<ASK>")
    trade_only = rows.ok & bid_empty & ask_empty
    if trade_only.any():
        report.unhandled["trade_tick"] = report.unhandled.get("trade_tick", 0) + int(trade_only.sum())
    quote = rows.ok & ~trade_only
    sel = np.flatnonzero(quote)
    if sel.size > 1 and bool(np.any(np.diff(ts[sel]) < 0)):
        i = int(sel[1:][np.diff(ts[sel]) < 0][0])
        raise DataError("tick export is not in time order; empty BID/ASK fields mean 'unchanged since the "
                        "previous tick', which needs file order", path=str(path), line=i + 2,
                        field="<DATE> <TIME>", value=data[i].as_py())
    bid_f = _forward_fill(bid[sel], ~bid_empty[sel])
    ask_f = _forward_fill(ask[sel], ~ask_empty[sel])
    one_sided = np.zeros(len(data), dtype=bool)
    one_sided[sel] = np.isnan(bid_f) | np.isnan(ask_f)
    rows.reject(one_sided, "before_two_sided_quote")
    report.lines_parsed += int(rows.ok.sum())
    keep = ~one_sided[sel]
    n = int(keep.sum())
    if n:
        write_chunked(writer, "quotes", venue, symbol, {
            "ts_event": ts[sel][keep], "ts_recv": ts[sel][keep], "bid_px": bid_f[keep], "bid_qty": np.full(n, np.nan),
            "ask_px": ask_f[keep], "ask_qty": np.full(n, np.nan)}, source=str(path))
    add_note(report, "MT5 ticks: an empty BID or ASK field means unchanged (FLAGS lists the changed fields); "
                     "the last known value is carried forward")


def _mt5_bars(path: Path, data: pa.Array, writer: TapeWriter, report: ImportReport, rejects: LineRejects,
              venue: str, symbol: str, tz: str, interval_ns: int | None) -> None:
    """``2024.01.02	00:00:00	1.10384	1.10411	1.10371	1.10402	87	0	12``."""
    fields, count_ok = split_fields(data, "\t", len(_MT5_BARS))
    rows = FileRows(data, rejects, path, first_line=2)
    rows.reject(~count_ok, "field_count")
    ts = _mt5_times(path, fields, rows, tz)
    values = {}
    for i, name in enumerate(_MT5_BARS[2:], start=2):
        v, bad, empty = parse_floats(fields[i])
        rows.reject(bad | empty, "bad_number", name)
        values[name] = v
    ok = rows.ok
    report.lines_parsed += int(ok.sum())
    if not ok.any():
        return
    if np.any(values["<VOL>"][ok] != 0):
        volume = values["<VOL>"][ok]
    else:
        volume = values["<TICKVOL>"][ok]
        report.notes.append(f"{path.name}: <VOL> is 0 in every bar, so bars.volume is <TICKVOL>, the number of "
                            "price changes in the bar, not a base-unit volume")
    interval = bar_interval(ts[ok], interval_ns, report, path=path)
    write_chunked(writer, "bars", venue, symbol,
                  bars_data(ts[ok], interval, values["<OPEN>"][ok], values["<HIGH>"][ok], values["<LOW>"][ok],
                            values["<CLOSE>"][ok], volume), source=str(path))
    add_note(report, "MT5 bars: OHLC are bid prices; <SPREAD> (points) is not stored")
