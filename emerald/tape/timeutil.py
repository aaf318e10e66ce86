"""Timestamp conversion to int64 ns UTC. Naive times are rejected unless a zone is declared."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from emerald.errors import ConfigError, DataError

NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
# Plausible ns range for market data: 2000-01-01 .. 2100-01-01.
MIN_TS_NS = 946_684_800_000_000_000
MAX_TS_NS = 4_102_444_800_000_000_000


def check_zone(tz: str) -> str:
    """Validate an IANA zone name or a fixed offset like ``UTC-05:00``; return it."""
    if tz.upper() in ("UTC", "Z"):
        return "UTC"
    if tz.startswith(("UTC+", "UTC-", "+", "-")):
        parse_offset(tz)
        return tz
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone, was {tz!r}; use an IANA name (Europe/London) or UTC-05:00") from None
    return tz


def parse_offset(tz: str) -> int:
    """Minutes east of UTC of a fixed offset: ``UTC-05:00``, ``+05:30``, ``+0530``, ``UTC+2``."""
    import re

    m = re.fullmatch(r"(?:UTC)?([+-])(\d{1,2})(?::?(\d{2}))?", tz.strip(), flags=re.IGNORECASE)
    if m is None:
        raise ConfigError(f"bad UTC offset, was {tz!r}; write it as UTC-05:00")
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 14 or minutes >= 60:
        raise ConfigError(f"UTC offset out of range, was {tz!r}")
    return (-1 if m.group(1) == "-" else 1) * (hours * 60 + minutes)


def int_to_ns(values: np.ndarray, unit: str) -> np.ndarray:
    """Scale integer epoch times in ``unit`` (s, ms, us, ns) to int64 ns."""
    if unit not in NS:
        raise ConfigError(f"time unit must be one of {sorted(NS)}, was {unit!r}")
    return np.asarray(values, dtype=np.int64) * NS[unit]


def guess_int_unit(values: np.ndarray) -> str:
    """Guess s/ms/us/ns from the magnitude of epoch integers (median of the first values)."""
    v = np.asarray(values[:1000], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "ns"
    m = float(np.median(np.abs(v)))
    if m < 1e11:
        return "s"
    if m < 1e14:
        return "ms"
    if m < 1e17:
        return "us"
    return "ns"


def local_strings_to_ns(strings: pa.Array | list[str], fmt: str, tz: str | None, *, path: str = "?",
                        field: str = "time") -> np.ndarray:
    """Parse local date-time strings with ``fmt`` (strptime) in zone ``tz`` to int64 ns UTC.

    ``tz`` is required: the formats that use this carry no zone. Ambiguous local times (the
    repeated hour when clocks go back) resolve to the earlier instant; nonexistent ones raise.
    """
    if tz is None:
        raise DataError("times in this format have no zone; declare one with --tz", path=path, field=field)
    tz = check_zone(tz)
    arr = pa.array(strings) if not isinstance(strings, pa.Array | pa.ChunkedArray) else strings
    try:
        naive = pc.strptime(arr, format=fmt, unit="ns", error_is_null=True)
    except pa.ArrowInvalid as e:
        raise DataError(f"cannot parse times with format {fmt!r}: {e}", path=path, field=field) from None
    if naive.null_count:
        bad_idx = int(np.flatnonzero(np.asarray(pc.is_null(naive)))[0])
        raise DataError(f"time does not match format {fmt!r}", path=path, field=field,
                        value=str(arr[bad_idx]), line=bad_idx + 1)
    ints = np.asarray(naive.cast(pa.int64()), dtype=np.int64)
    if tz == "UTC":
        return ints
    if tz.startswith(("UTC+", "UTC-", "+", "-")):
        return ints - parse_offset(tz) * 60 * 1_000_000_000
    try:
        aware = pc.assume_timezone(naive, timezone=tz, ambiguous="earliest", nonexistent="raise")
    except pa.ArrowInvalid as e:
        raise DataError(f"local time does not exist in {tz}: {e}", path=path, field=field) from None
    return np.asarray(aware.cast(pa.int64()), dtype=np.int64)


def ns_to_iso(ts: int | None) -> str | None:
    """Format int64 ns as ISO-8601 UTC with a ``Z`` (None passes through)."""
    if ts is None:
        return None
    ts = int(ts)
    unit = "s" if ts % 1_000_000_000 == 0 else "ms" if ts % 1_000_000 == 0 else "us" if ts % 1000 == 0 else "ns"
    return np.datetime_as_string(np.datetime64(ts, "ns"), unit=unit) + "Z"
