"""Generic OHLCV bars CSV (format ``bars-csv``), and the text-file helpers that ``forex`` and
``funding_csv`` share.

A bars CSV has a header line and one bar per line. Nothing in such a file says which zone its
times are in, which edge of the bar they mark, or whether its volume is in base or quote units,
so the caller declares all three::

    timestamp,open,high,low,close,volume
    2021-12-31 23:01:00.000000,46319.0,46385.0,46319.0,46377.0,2300413.7295
    (FTX BTC-PERP 1-minute bars, nautilus_trader test data; the volume is quote notional)

    emerald data import bars-csv ftx.csv --venue ftx --symbol BTC-PERP --tz UTC \\
        -o time_column=timestamp -o stamp=open -o volume_unit=quote

Options
-------
| option | values | meaning |
|---|---|---|
| ``time_column`` | column name | required |
| ``stamp`` | ``open`` / ``close`` | required: which edge of the bar the time marks; ``close`` gives ``ts_event = time - interval`` |
| ``time_unit`` | ``s``/``ms``/``us``/``ns`` | the time column holds integer epochs in this unit (UTC by definition: ``tz`` other than UTC is refused) |
| ``format`` | strptime format | the time column holds strings in this format (fractional seconds after ``%S`` allowed); default ISO 8601 |
| ``interval`` | ``1m``, ``5m``, ``1h``, ``8h``, ``1d`` ... | bar length; default: the most common step between consecutive times of each file (recorded in ``notes``) |
| ``volume_unit`` | ``base`` / ``quote`` | required when the file has a volume column. ``quote``: volume is stored as NaN, because quote notional divided by any price is only an approximation of base volume |
| ``open_column`` ... ``volume_column`` | column name | default: the column named ``open``/``high``/``low``/``close``/``volume`` (any case); no volume column gives NaN volume |
| ``delimiter`` | one character | default ``,`` |

Times without a zone designator are local to ``tz`` (required for them); ISO strings with ``Z`` or
``+01:00`` carry their own zone. In a daylight-saving zone, a time inside the spring-forward gap is
rejected (``nonexistent_local_time``) and the repeated autumn hour is resolved in file order (times
that step back into it are its second pass, the later instant; counted in ``notes``). A field may be wrapped in double quotes but must not contain the
delimiter (such a line has the wrong number of fields and is rejected). ``buy_volume`` and
``sell_volume`` are NaN and ``trades`` is -1: the format has no such columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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
    parse_ints,
    parse_times,
    read_lines,
    split_fields,
    write_chunked,
)
from emerald.tape.timeutil import NS, check_zone, int_to_ns
from emerald.tape.writer import TapeWriter

# --------------------------------------------------------------------------------------------
# the bars-csv importer

_OPTIONS = {"time_column", "stamp", "time_unit", "format", "interval", "volume_unit", "delimiter",
            "open_column", "high_column", "low_column", "close_column", "volume_column"}
_PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class _Settings:
    time_column: str
    stamp: str
    time_unit: str | None
    fmt: str | None
    interval_ns: int | None
    volume_unit: str | None
    delimiter: str
    columns: dict[str, str | None]  # open/high/low/close/volume -> the name asked for (None: by default name)


def _settings(options: dict[str, Any], tz: str | None) -> _Settings:
    check_options("bars-csv", options, _OPTIONS)
    if not options.get("time_column"):
        raise ConfigError("bars-csv needs time_column (the name of the column holding the bar time)")
    stamp = options.get("stamp")
    if stamp not in ("open", "close"):
        raise ConfigError(f"bars-csv needs stamp='open' or stamp='close' (which edge of the bar the time "
                          f"column marks), was {stamp!r}")
    time_unit, fmt = options.get("time_unit"), options.get("format")
    if time_unit is not None and fmt is not None:
        raise ConfigError("pass time_unit (integer epochs) or format (date-time strings), not both")
    if time_unit is not None:
        if time_unit not in NS:
            raise ConfigError(f"time_unit must be one of {sorted(NS)}, was {time_unit!r}")
        if tz is not None and check_zone(tz) != "UTC":
            raise ConfigError(f"epoch times are UTC by definition; drop --tz, was {tz!r}")
    volume_unit = options.get("volume_unit")
    if volume_unit not in (None, "base", "quote"):
        raise ConfigError(f"volume_unit must be 'base' or 'quote', was {volume_unit!r}")
    delimiter = str(options.get("delimiter", ","))
    if len(delimiter) != 1:
        raise ConfigError(f"delimiter must be one character, was {delimiter!r}")
    return _Settings(
        time_column=str(options["time_column"]), stamp=stamp, time_unit=time_unit, fmt=fmt,
        interval_ns=interval_option(options), volume_unit=volume_unit, delimiter=delimiter,
        columns={c: options.get(f"{c}_column") for c in (*_PRICE_COLUMNS, "volume")})


def run(paths: list[Path], writer: TapeWriter, *, venue: str | None = None, symbol: str | None = None,
        tz: str | None = None, strict: bool = False, **options: Any) -> ImportReport:
    """Import generic OHLCV CSV files as ``bars`` (see the module docstring for the options).

    Raises
    ------
    ConfigError
        Missing ``venue``/``symbol``/``time_column``/``stamp``, ``volume_unit`` missing for a file with a
        volume column, an unknown option.
    DataError
        A file lacks a named column, or has naive times and no ``tz``.
    """
    settings = _settings(options, tz)
    if venue is None or symbol is None:
        raise ConfigError(f"bars-csv files carry no venue or symbol; pass --{'venue' if venue is None else 'symbol'}")
    report = ImportReport(format="bars-csv")
    rejects = LineRejects(report, strict=strict)
    for path in paths:
        _import_file(Path(path), writer, report, rejects, settings, venue, symbol, tz)
    rejects.flush(writer)
    return report


def _find_column(names: list[str], wanted: str | None, default: str, path: Path) -> int | None:
    """Index of the column named by an option, else of the column named ``default`` (any case)."""
    if wanted is not None:
        if wanted not in names:
            raise DataError(f"no such column; the header has {names}", path=str(path), field=wanted)
        return names.index(wanted)
    lowered = [n.lower() for n in names]
    return lowered.index(default) if default in lowered else None


def _import_file(path: Path, writer: TapeWriter, report: ImportReport, rejects: LineRejects, settings: _Settings,
                 venue: str, symbol: str, tz: str | None) -> None:
    lines = read_lines(path)
    if len(lines) == 0:
        raise DataError("empty file; expected a header line", path=str(path))
    names = [name.strip().strip('"').strip() for name in lines[0].as_py().split(settings.delimiter)]
    if settings.time_column not in names:
        raise DataError(f"no such time column; the header has {names}", path=str(path), field=settings.time_column)
    cols: dict[str, int] = {}
    for c in _PRICE_COLUMNS:
        idx = _find_column(names, settings.columns[c], c, path)
        if idx is None:
            raise DataError(f"no {c!r} column; name it with {c}_column=<name> (the header has {names})",
                            path=str(path), field=c)
        cols[c] = idx
    vol_idx = _find_column(names, settings.columns["volume"], "volume", path)
    if vol_idx is not None and settings.volume_unit is None:
        raise ConfigError(f"{path.name} has a volume column {names[vol_idx]!r}: declare its unit with "
                          "volume_unit='base' or volume_unit='quote'")
    data = lines[1:]
    report.lines_in += len(data)
    fields, count_ok = split_fields(data, settings.delimiter, len(names))
    rows = FileRows(data, rejects, path, first_line=2)
    rows.reject(~count_ok, "field_count")
    time_text = fields[names.index(settings.time_column)]
    if settings.time_unit is not None:
        raw, bad = parse_ints(time_text)
        rows.reject(bad, "bad_time", settings.time_column)
        ts = int_to_ns(raw, settings.time_unit)
    else:
        first_ok = np.flatnonzero(rows.ok)
        if settings.fmt is None and first_ok.size and re.fullmatch(r"\s*\d+\s*", time_text[int(first_ok[0])].as_py()):
            raise ConfigError(f"{path.name}: column {settings.time_column!r} holds integers "
                              f"({time_text[int(first_ok[0])].as_py()!r}); pass time_unit (s/ms/us/ns) for epochs "
                              "or format for date strings")
        times = parse_times(pc.if_else(pa.array(rows.ok), time_text, ""), settings.fmt, tz, path=str(path),
                            field=settings.time_column)
        rows.reject_times(times, settings.time_column)
        ambiguous = times.ambiguous & rows.ok
        if ambiguous.any():
            report.notes.append(f"{path.name}: {int(ambiguous.sum())} times fall in a repeated local hour of {tz}; "
                                "resolved in file order (the second pass is the later instant)")
        ts = times.in_file_order(rows.ok)
    prices = {}
    for c in _PRICE_COLUMNS:
        values, bad, empty = parse_floats(fields[cols[c]])
        rows.reject(bad | empty, "bad_number", names[cols[c]])
        prices[c] = values
    volume = np.full(len(data), np.nan)
    if vol_idx is not None:
        values, bad, _ = parse_floats(fields[vol_idx])
        rows.reject(bad, "bad_number", names[vol_idx])
        if settings.volume_unit == "base":
            volume = values
        else:
            add_note(report, f"volume column {names[vol_idx]!r} is quote-currency notional: it has no exact "
                             "conversion to base units, so bars.volume is NaN")
    else:
        add_note(report, "no volume column: bars.volume is NaN")
    ok = rows.ok
    report.lines_parsed += int(ok.sum())
    if not ok.any():
        return
    interval_ns = bar_interval(ts[ok], settings.interval_ns, report, path=path)
    ts_event = ts[ok] - (interval_ns if settings.stamp == "close" else 0)
    write_chunked(writer, "bars", venue, symbol,
                  bars_data(ts_event, interval_ns, prices["open"][ok], prices["high"][ok], prices["low"][ok],
                            prices["close"][ok], volume[ok]), source=str(path))
