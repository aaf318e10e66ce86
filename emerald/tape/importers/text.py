"""Line-oriented text parsing shared by the CSV importers (bars-csv, forex, funding-csv, hyperliquid).

Vectorised with pyarrow: a file is read as one string column of physical lines, split and cast
column-wise; every line keeps its number so rejects name it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from emerald._typing import BoolArray, F64Array, I64Array
from emerald.errors import ConfigError, DataError
from emerald.tape.importers.base import ImportReport, LineRejects
from emerald.tape.timeutil import NS, check_zone, parse_offset
from emerald.tape.writer import TapeWriter

CHUNK_ROWS = 1_000_000
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_INTEGER = r"^[+-]?\d{1,18}$"
_ISO = (r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d{1,9})?"
        r"(?P<zone>Z|[+-]\d{2}:?\d{2})?$")
_FRACTION = r"^(?P<main>.*\d)(?P<frac>\.\d{1,9})$"
_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d)\s*$")
_INTERVAL_NS = {"s": NS["s"], "m": 60 * NS["s"], "min": 60 * NS["s"], "h": 3600 * NS["s"], "d": 86400 * NS["s"]}


# --------------------------------------------------------------------------------------------
# helpers


def check_options(fmt: str, options: dict[str, Any], known: set[str]) -> None:
    """Raise :class:`ConfigError` for an option ``fmt`` does not take (with a did-you-mean)."""
    for key in sorted(options):
        if key not in known:
            hint = get_close_matches(key, sorted(known), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else (
                f"; it takes {', '.join(sorted(known))}" if known else "; it takes none")
            raise ConfigError(f"{fmt}: unknown option, was {key!r}{extra}")


def read_lines(path: Path, *, encoding: str = "utf8") -> pa.StringArray:
    """Physical lines of a text file as a string array, without line terminators.

    Read with pyarrow's CSV reader as one column (gzip/bz2 by extension, ``\\r\\n`` and a
    UTF-8 byte-order mark handled). Blank lines are kept (as empty strings) so that line
    numbers stay exact and every line is accounted for.
    """
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=["line"], encoding=encoding),
            parse_options=pacsv.ParseOptions(delimiter="\x1f", quote_char=False, escape_char=False,
                                             ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()}, strings_can_be_null=False),
        )
    except pa.ArrowInvalid as e:
        if "Empty CSV file" in str(e):
            return pa.array([], pa.string())
        raise DataError(f"cannot read the file as text lines ({e})", path=str(path)) from None
    return table.column("line").combine_chunks()


def split_fields(lines: pa.Array, delimiter: str, n: int) -> tuple[list[pa.Array], BoolArray]:
    """Split lines on ``delimiter``: the first ``n`` fields (surrounding double quotes removed)
    and a mask of the lines that have exactly ``n`` fields (fields of other lines are junk)."""
    lists = pc.split_pattern(lines, delimiter)
    ok = np.asarray(pc.equal(pc.list_value_length(lists), n))
    flat = lists.filter(pa.array(ok)).flatten()
    # row -> its position among the good rows; other rows take a null (then "")
    position = pa.array(np.cumsum(ok) - 1, mask=~ok)
    fields = []
    for i in range(n):
        column = pc.fill_null(flat.take(pa.array(np.arange(i, len(flat), n))).take(position), "")
        fields.append(pc.replace_substring_regex(column, pattern=r'^"(.*)"$', replacement=r"\1"))
    return fields, ok


def parse_floats(arr: pa.Array) -> tuple[F64Array, BoolArray, BoolArray]:
    """Decimal strings to float64: ``(values, bad, empty)``; values are NaN where empty or bad."""
    s = pc.utf8_trim_whitespace(arr)
    empty = np.asarray(pc.equal(s, ""))
    good = np.asarray(pc.match_substring_regex(s, _NUMBER))
    values = np.asarray(pc.cast(pc.if_else(pa.array(good), s, "nan"), pa.float64()), dtype=np.float64)
    return values, ~good & ~empty, empty


def parse_ints(arr: pa.Array) -> tuple[I64Array, BoolArray]:
    """Integer strings to int64: ``(values, bad)``; values are 0 where bad."""
    s = pc.utf8_trim_whitespace(arr)
    good = np.asarray(pc.match_substring_regex(s, _INTEGER))
    return np.asarray(pc.cast(pc.if_else(pa.array(good), s, "0"), pa.int64()), dtype=np.int64), ~good


@dataclass(frozen=True)
class ParsedTimes:
    """Times parsed to int64 ns UTC, with the rows that could not be placed in time."""

    earliest: I64Array  # the instant; in a repeated local hour (clocks going back) the earlier one
    latest: I64Array  # equal to ``earliest`` except in a repeated local hour, where it is the later one
    bad: BoolArray  # does not match the format
    nonexistent: BoolArray  # local time inside a gap (clocks going forward)

    @property
    def ambiguous(self) -> BoolArray:
        return self.earliest != self.latest

    def in_file_order(self, ok: BoolArray) -> I64Array:
        """Instants of the ``ok`` rows read in file order: within a run of rows in a repeated local
        hour, the rows from the first step back in time on are the second pass and take the later
        instant (a time-ordered export then stays time-ordered across the change)."""
        out = self.earliest.copy()
        rows = np.flatnonzero(ok)
        if rows.size < 2:
            return out
        amb = self.ambiguous[rows]
        early = self.earliest[rows]
        back = np.zeros(rows.size, dtype=bool)
        back[1:] = amb[1:] & (early[1:] < early[:-1])
        run = np.cumsum(~amb)  # rows of one run of ambiguous rows share a number
        last_back_run = np.maximum.accumulate(np.where(back, run, -1))
        second = amb & (last_back_run == run)
        out[rows[second]] = self.latest[rows[second]]
        return out


def _fixed_offset_minutes(tz: str) -> int | None:
    """Minutes east of UTC for ``UTC`` or a fixed offset; None for a named zone."""
    if tz == "UTC":
        return 0
    try:
        return parse_offset(tz)
    except ConfigError:
        return None


def parse_times(strings: pa.Array, fmt: str | None, tz: str | None, *, path: str, field: str) -> ParsedTimes:
    """Parse date-time strings to int64 ns UTC.

    Parameters
    ----------
    strings
        One time per row.
    fmt
        strptime format (fractional seconds ``.f`` to ``.fffffffff`` after the last digit are
        allowed when it ends with ``%S``); ``None``: ISO 8601, ``2021-12-31 23:01:00.000000``,
        ``2021-12-31T23:01:00Z``, ``2021-12-31T23:01:00+01:00``.
    tz
        Zone of times that carry none: an IANA name or a fixed offset (``UTC-05:00``).

    Raises
    ------
    DataError
        Naive times and no ``tz``, naming the file, the column and the first such value.
    """
    s = pc.utf8_trim_whitespace(strings)
    n = len(s)
    zone_minutes = np.zeros(n, dtype=np.int64)
    has_zone = np.zeros(n, dtype=bool)
    if fmt is None:
        parts = pc.extract_regex(s, _ISO)
        valid = np.asarray(pc.is_valid(parts))
        main = pc.binary_join_element_wise(pc.struct_field(parts, "date"), pc.struct_field(parts, "time"), " ")
        main = pc.if_else(pa.array(valid), main, "")
        frac = pc.fill_null(pc.struct_field(parts, "frac"), "")
        zone = np.asarray(pc.fill_null(pc.struct_field(parts, "zone"), ""), dtype=object)
        has_zone = zone != ""
        for z in set(zone[has_zone]):
            sign = -1 if z.startswith("-") else 1
            digits = z[1:].replace(":", "") if z != "Z" else "0000"
            zone_minutes[zone == z] = sign * (int(digits[:2]) * 60 + int(digits[2:]))
        naive = pc.strptime(main, format="%Y-%m-%d %H:%M:%S", unit="ns", error_is_null=True)
    else:
        frac = pa.array([""] * n, pa.string())
        main = s
        if fmt.endswith("%S"):
            parts = pc.extract_regex(s, _FRACTION)
            matched = pc.is_valid(parts)
            main = pc.if_else(matched, pc.struct_field(parts, "main"), s)
            frac = pc.if_else(matched, pc.struct_field(parts, "frac"), "")
        try:
            naive = pc.strptime(main, format=fmt, unit="ns", error_is_null=True)
        except pa.ArrowInvalid as e:
            raise ConfigError(f"bad time format, was {fmt!r} ({e})") from None
        if naive.type.tz is not None:  # the format has %z: every parsed row carries its zone
            has_zone[:] = True
            naive = naive.cast(pa.timestamp("ns"))
    bad = np.asarray(pc.is_null(naive))
    digits = pc.utf8_rpad(pc.utf8_slice_codeunits(frac, 1), width=9, padding="0")
    local = np.asarray(pc.fill_null(naive.cast(pa.int64()), 0), dtype=np.int64) \
        + np.asarray(pc.cast(digits, pa.int64()), dtype=np.int64)
    earliest = local - zone_minutes * 60 * NS["s"]
    latest = earliest.copy()
    nonexistent = np.zeros(n, dtype=bool)
    naive_rows = ~has_zone & ~bad
    if naive_rows.any():
        if tz is None:
            first = int(np.flatnonzero(naive_rows)[0])
            raise DataError("times have no zone; declare it with --tz (an IANA name or UTC+hh:mm)",
                            path=path, field=field, value=s[first].as_py())
        tz = check_zone(tz)
        offset = _fixed_offset_minutes(tz)
        if offset is not None:
            earliest[naive_rows] = local[naive_rows] - offset * 60 * NS["s"]
            latest[naive_rows] = earliest[naive_rows]
        else:
            stamps = pa.array(local[naive_rows], pa.timestamp("ns"))
            early = pc.assume_timezone(stamps, timezone=tz, ambiguous="earliest", nonexistent="earliest")
            late = pc.assume_timezone(stamps, timezone=tz, ambiguous="latest", nonexistent="latest")
            earliest[naive_rows] = np.asarray(early.cast(pa.int64()))
            latest[naive_rows] = np.asarray(late.cast(pa.int64()))
            # a gap time comes back from the zone as another wall-clock time
            nonexistent[naive_rows] = np.asarray(pc.local_timestamp(early).cast(pa.int64())) != local[naive_rows]
    return ParsedTimes(earliest, latest, bad, nonexistent)


def parse_interval(text: str) -> int:
    """``'1m'``, ``'5min'``, ``'8h'``, ``'1d'``, ``'30s'`` to nanoseconds; :class:`ValueError` otherwise."""
    m = _INTERVAL.match(text)
    if m is None or int(m.group(1)) <= 0:
        raise ValueError(f"interval must look like 1m, 5m, 1h, 8h or 1d, was {text!r}")
    return int(m.group(1)) * _INTERVAL_NS[m.group(2)]


def interval_option(options: dict[str, Any]) -> int | None:
    """The ``interval`` option in ns (None when absent); :class:`ConfigError` when malformed."""
    if options.get("interval") is None:
        return None
    try:
        return parse_interval(str(options["interval"]))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def format_interval(ns: int) -> str:
    for unit, size in (("d", _INTERVAL_NS["d"]), ("h", _INTERVAL_NS["h"]), ("m", _INTERVAL_NS["m"])):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns / NS['s']:g}s"


def infer_interval(ts: I64Array) -> int | None:
    """The most common positive step between the distinct sorted times (None with fewer than two)."""
    steps = np.diff(np.unique(ts))
    steps = steps[steps > 0]
    if steps.size == 0:
        return None
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])


def bar_interval(ts: I64Array, interval_ns: int | None, report: ImportReport, *, path: Path) -> int:
    """``interval_ns`` if given, else the inferred one (noted); :class:`DataError` if it cannot be inferred."""
    if interval_ns is not None:
        return interval_ns
    inferred = infer_interval(ts)
    if inferred is None:
        raise DataError("cannot infer the bar interval from fewer than two distinct times; pass interval",
                        path=str(path), field="interval")
    report.notes.append(f"{path.name}: bar interval {format_interval(inferred)} inferred from the most common "
                        "step between consecutive times (pass interval to set it)")
    return inferred


def bars_data(ts: I64Array, interval_ns: int, o: F64Array, h: F64Array, lo: F64Array, c: F64Array,
              volume: F64Array) -> dict[str, np.ndarray]:
    """A bars table (dict of columns) for sources without buy/sell split or trade counts."""
    n = ts.size
    nan = np.full(n, np.nan)
    return {"ts_event": ts, "interval_ns": np.full(n, interval_ns, dtype=np.int64), "open": o, "high": h,
            "low": lo, "close": c, "volume": volume, "buy_volume": nan, "sell_volume": nan.copy(),
            "trades": np.full(n, -1, dtype=np.int64)}


def write_chunked(writer: TapeWriter, kind: str, venue: str, symbol: str, data: dict[str, np.ndarray], *,
                  source: str, depth: int | None = None) -> None:
    """Hand ``data`` to the writer in chunks of :data:`CHUNK_ROWS` rows (chunking never changes the output)."""
    n = len(data["ts_event"])
    for start in range(0, n, CHUNK_ROWS):
        writer.write(kind, venue, symbol, {k: v[start:start + CHUNK_ROWS] for k, v in data.items()},
                     source=source, depth=depth)


class FileRows:
    """The data lines of one file and which of them are still good.

    ``reject(mask, reason)`` sends every still-good line under ``mask`` to :class:`LineRejects`
    (with its line number and text) and marks it bad, so a line is rejected once, for the first
    rule it breaks.
    """

    def __init__(self, lines: pa.Array, rejects: LineRejects, path: Path, *, first_line: int) -> None:
        self.lines, self.rejects, self.path, self.first_line = lines, rejects, path, first_line
        self.ok = np.ones(len(lines), dtype=bool)

    def reject(self, mask: BoolArray, reason: str, field: str | None = None) -> None:
        idx = np.flatnonzero(mask & self.ok)
        for i in idx:
            self.rejects.reject(reason, path=str(self.path), line_no=self.first_line + int(i),
                                text=self.lines[int(i)].as_py(), field=field)
        self.ok[idx] = False

    def reject_times(self, times: ParsedTimes, field: str) -> None:
        self.reject(times.bad, "bad_time", field)
        self.reject(times.nonexistent, "nonexistent_local_time", field)


