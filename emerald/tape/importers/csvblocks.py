"""Block-wise CSV reading into polars frames, shared by the Binance Vision and Tardis importers.

Each block is a frame of ``line_no`` and ``line``; :func:`parse_columns` splits and casts the fields
and returns the lines it could not parse with a reason, so nothing is dropped silently.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from emerald.errors import DataError
from emerald.tape.importers.base import LineRejects

BLOCK_BYTES = 32 << 20  # ~400k lines of trades per block

# --------------------------------------------------------------------------------------------
# CSV lines -> typed columns


@contextmanager
def open_source(path: Path) -> Iterator[BinaryIO | Any]:
    """Open ``path`` as a binary text stream: plain, gzip (by its magic bytes) or a ZIP holding one CSV."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        with pa.input_stream(str(path), compression="gzip") as stream:
            yield stream
    elif magic == b"PK\x03\x04":
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise DataError(f"unreadable ZIP file ({e})", path=str(path)) from None
        with zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            if len(members) != 1 or not members[0].lower().endswith(".csv"):
                raise DataError("a ZIP must hold exactly one CSV file", path=str(path), field="members",
                                value=members)
            with zf.open(members[0]) as stream:
                yield stream
    else:
        with open(path, "rb") as stream:
            yield stream


def csv_lines(stream: Any, *, path: str) -> Iterator[pl.DataFrame]:
    """Yield the lines of a CSV stream block by block as frames ``line_no`` (1-based), ``line``.

    pyarrow.csv reads whole lines (the delimiter is a control character these formats never
    hold), so a line with a wrong field count is rejected on its own instead of failing the file.
    Fields in these formats are never quoted. A UTF-8 byte-order mark is dropped.
    """
    read = pacsv.ReadOptions(column_names=["line"], block_size=BLOCK_BYTES)
    parse = pacsv.ParseOptions(delimiter="\x1f", quote_char=False, double_quote=False, escape_char=False,
                               newlines_in_values=False, ignore_empty_lines=False)
    convert = pacsv.ConvertOptions(column_types={"line": pa.string()}, strings_can_be_null=False,
                                   quoted_strings_can_be_null=False)
    start = 1
    try:
        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            n = batch.num_rows
            yield pl.DataFrame({"line_no": np.arange(start, start + n, dtype=np.int64),
                                "line": pl.from_arrow(batch.column(0))})
            start += n
    except pa.ArrowInvalid as e:
        if start == 1 and "Empty CSV file" in str(e):
            return
        raise DataError(f"cannot read CSV text ({e})", path=path, line=start) from None


@dataclass(frozen=True)
class Col:
    """One field to parse: ``name`` at position ``index`` as ``kind`` (int, float, bool, str, datetime)."""

    name: str
    index: int
    kind: str
    required: bool = True


_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _cast(raw: pl.Expr, kind: str) -> pl.Expr:
    if kind == "int":
        return raw.cast(pl.Int64, strict=False)
    if kind == "float":
        return raw.cast(pl.Float64, strict=False)
    if kind == "bool":
        return raw.str.to_lowercase().replace_strict({"true": True, "false": False}, default=None,
                                                     return_dtype=pl.Boolean)
    if kind == "datetime":
        return raw.str.strptime(pl.Datetime("ns"), _DATETIME_FORMAT, strict=False).cast(pl.Int64)
    return raw


def parse_columns(lines: pl.DataFrame, n_fields: int, cols: Sequence[Col]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``lines`` on commas and cast ``cols``; return ``(parsed, rejected)``.

    ``parsed`` keeps ``line_no``, ``line`` and one column per :class:`Col` (optional fields that are
    empty are null). ``rejected`` has ``line_no``, ``line``, ``reason``: ``field_count`` when a
    line does not have exactly ``n_fields`` fields, else ``unparseable.<first bad field>``.
    """
    split = lines.with_columns(pl.col("line").str.split(",").alias("_f"))
    values, bad = [], []
    for c in cols:
        raw = pl.col("_f").list.get(c.index, null_on_oob=True)
        value = _cast(raw, c.kind)
        empty = raw.is_null() | (raw == "")
        broken = (empty | value.is_null()) if c.required else (~empty & value.is_null())
        values.append(pl.when(empty).then(None).otherwise(value).alias(c.name))
        bad.append(pl.when(broken).then(pl.lit(f"unparseable.{c.name}")))
    reason = (pl.when(pl.col("_f").list.len() != n_fields).then(pl.lit("field_count"))
              .otherwise(pl.coalesce(bad) if bad else pl.lit(None, pl.String)))
    out = split.with_columns(*values, reason.alias("reason")).drop("_f")
    return (out.filter(pl.col("reason").is_null()).drop("reason"),
            out.filter(pl.col("reason").is_not_null()).select("line_no", "line", "reason"))


def reject_rows(rejects: LineRejects, rows: pl.DataFrame, path: str) -> None:
    """Hand every row of ``rows`` (``line_no``, ``line``, ``reason``) to ``rejects``."""
    for line_no, line, reason in rows.select("line_no", "line", "reason").iter_rows():
        field = reason.split(".", 1)[1] if "." in reason else None
        rejects.reject(reason, path=path, line_no=line_no, text=line, field=field)


