"""Read the tape: select kind, venue, symbol and time range; get polars, pyarrow, numpy or SQL.

The manifest is the list of what exists: files on disk that it does not name (temp files left
by a killed writer, orphans) are never read. Every selected file is checked before it is read
(``verify="footer"``: size, Parquet footer, row count; ``"hash"``: also sha256). In strict mode
(the default) a bad file raises :class:`~emerald.errors.CorruptFileError` naming it; in lenient
mode it is moved to ``_quarantine/_files/``, recorded in the manifest and in
:attr:`Tape.problems`, and the read goes on without it, so
``files_ok + files_quarantined == files_total`` and
``rows_read + rows_quarantined == manifest rows``.

Examples
--------
>>> tape = Tape("demo-tape")                                   # doctest: +SKIP
>>> tape.scan("trades", venue="demo-perp", symbol="BTCUSDT",
...           start="2024-03-01", end="2024-03-02").collect()  # doctest: +SKIP
>>> tape.sql("SELECT venue, symbol, count(*) FROM trades GROUP BY ALL")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from emerald.errors import ConfigError, CorruptFileError, DataError
from emerald.model.dtypes import DTYPES, book_dtype
from emerald.tape.manifest import MANIFEST_NAME, load_manifest, save_manifest
from emerald.tape.schema import KINDS, arrow_schema
from emerald.tape.writer import QUARANTINE_DIR

Verify = str  # "none" | "footer" | "hash"


def parse_time(value: str | int | datetime | None, *, field: str = "time") -> int | None:
    """Turn a user-given time into int64 ns UTC.

    Accepts int ns, an aware ``datetime``, an ISO string with ``Z`` or an offset, or a bare
    date ``YYYY-MM-DD`` (a UTC day). Naive date-times are rejected: their zone is unknown.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"`{field}` must be a time, was {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(f"`{field}` is a naive datetime, was {value!r}; give it a tzinfo")
        return int(value.timestamp() * 1_000_000) * 1000
    s = str(value).strip()
    if len(s) == 10 and s[4] == "-" and s[7] == "-":
        return int(np.datetime64(s, "ns").astype(np.int64))
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"`{field}` is not an ISO time, was {value!r}") from None
    if dt.tzinfo is None:
        raise ConfigError(f"`{field}` has no zone, was {value!r}; add Z or an offset (2024-03-01T12:00Z)")
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


@dataclass(frozen=True)
class FileEntry:
    rel: str
    kind: str
    venue: str
    symbol: str
    date: str
    rows: int
    min_ts: int
    max_ts: int
    bytes: int
    sha256: str
    book_depth: int | None = None


@dataclass
class Problem:
    path: str
    error: str
    action: str  # "raised" | "quarantined" | "reported"
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "error": self.error, "action": self.action, "rows": self.rows}


class Tape:
    """A tape dataset at ``root``.

    Parameters
    ----------
    root
        Dataset folder (holds ``_manifest.json``).
    strict
        Raise on a bad file (default) instead of quarantining it and reading on.
    verify
        ``"footer"`` (default), ``"hash"`` or ``"none"``: how much to check a file before reading it.
    """

    def __init__(self, root: str | Path, *, strict: bool = True, verify: Verify = "footer") -> None:
        self.root = Path(root)
        if verify not in ("none", "footer", "hash"):
            raise ConfigError(f"`verify` must be none, footer or hash, was {verify!r}")
        if not (self.root / MANIFEST_NAME).exists():
            raise DataError("not a tape: no manifest (build one with `emerald data demo` or `emerald data import`)",
                            path=str(self.root / MANIFEST_NAME))
        self.strict, self.verify = strict, verify
        self.manifest = load_manifest(self.root)
        self.problems: list[Problem] = []
        self._verified: set[str] = set()

    # ---------------------------------------------------------------- selection
    def entries(self, kind: str | None = None, venue: str | None = None, symbol: str | None = None,
                start: Any = None, end: Any = None) -> list[FileEntry]:
        """Manifest entries matching the selection; ``[start, end)`` prunes by file time span."""
        if kind is not None and kind not in KINDS:
            from emerald.model.enums import Kind

            Kind.parse(kind)
        lo, hi = parse_time(start, field="start"), parse_time(end, field="end")
        out = []
        for rel, e in sorted(self.manifest["files"].items()):
            if (kind and e["kind"] != kind) or (venue and e["venue"] != venue) or (symbol and e["symbol"] != symbol):
                continue
            if lo is not None and e["max_ts"] < lo:
                continue
            if hi is not None and e["min_ts"] >= hi:
                continue
            out.append(FileEntry(rel=rel, kind=e["kind"], venue=e["venue"], symbol=e["symbol"], date=e["date"],
                                 rows=e["rows"], min_ts=e["min_ts"], max_ts=e["max_ts"], bytes=e["bytes"],
                                 sha256=e["sha256"], book_depth=e.get("book_depth")))
        return out

    def instruments(self, kind: str | None = None) -> list[tuple[str, str]]:
        return sorted({(e.venue, e.symbol) for e in self.entries(kind)})

    def kinds(self) -> list[str]:
        return sorted({e["kind"] for e in self.manifest["files"].values()})

    # ---------------------------------------------------------------- checks
    def check_file(self, entry: FileEntry, verify: Verify | None = None) -> None:
        """Raise :class:`CorruptFileError` (naming the file) unless ``entry`` is intact."""
        verify = verify or self.verify
        path = self.root / entry.rel
        if verify == "none":
            return
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise CorruptFileError("file listed in the manifest is missing", path=str(path)) from None
        if size != entry.bytes:
            raise CorruptFileError(f"file size differs from the manifest ({entry.bytes} bytes)", path=str(path),
                                   field="bytes", value=size)
        try:
            meta = pq.read_metadata(path)
        except (OSError, pa.ArrowException) as e:
            raise CorruptFileError(f"unreadable Parquet footer ({e})", path=str(path)) from None
        if meta.num_rows != entry.rows:
            raise CorruptFileError(f"row count differs from the manifest ({entry.rows})", path=str(path),
                                   field="rows", value=meta.num_rows)
        if verify == "hash":
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            if h.hexdigest() != entry.sha256:
                raise CorruptFileError("content does not match the manifest sha256", path=str(path),
                                       field="sha256", value=h.hexdigest()[:16])

    def _good(self, entries: list[FileEntry]) -> list[FileEntry]:
        good = []
        for e in entries:
            if e.rel in self._verified:
                good.append(e)
                continue
            try:
                self.check_file(e)
            except CorruptFileError as err:
                if self.strict:
                    raise
                self.quarantine_file(e, str(err))
                continue
            self._verified.add(e.rel)
            good.append(e)
        return good

    def quarantine_file(self, entry: FileEntry, error: str) -> None:
        """Move a bad file to ``_quarantine/_files/`` and drop it from the manifest (lenient mode)."""
        src = self.root / entry.rel
        dst = self.root / QUARANTINE_DIR / "_files" / entry.rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.exists():
            os.replace(src, dst)
        info = self.manifest["files"].pop(entry.rel)
        info["error"] = error
        self.manifest["quarantined_files"][entry.rel] = info
        save_manifest(self.root, self.manifest)
        self.problems.append(Problem(entry.rel, error, "quarantined", entry.rows))

    # ---------------------------------------------------------------- reading
    def read_arrow(self, kind: str, venue: str | None = None, symbol: str | None = None, start: Any = None,
                   end: Any = None, *, columns: list[str] | None = None, with_ids: bool = True) -> pa.Table:
        """Rows of ``kind`` in ``[start, end)`` as one pyarrow Table sorted per instrument by ``ts_event``;
        ``venue`` and ``symbol`` columns are added when ``with_ids``."""
        entries = self._good(self.entries(kind, venue, symbol, start, end))
        lo, hi = parse_time(start, field="start"), parse_time(end, field="end")
        depth = next((e.book_depth for e in entries if e.book_depth), None) or 20
        schema = arrow_schema(kind, depth)
        cols = columns or schema.names
        tables = []
        for e in entries:
            try:
                t = pq.read_table(self.root / e.rel, columns=cols)
            except (OSError, pa.ArrowException) as err:
                if self.strict:
                    raise CorruptFileError(f"unreadable Parquet file ({err})", path=str(self.root / e.rel)) from None
                self.quarantine_file(e, str(err))
                continue
            if lo is not None or hi is not None:
                ts = t.column("ts_event").to_numpy()
                m = np.ones(len(ts), dtype=bool)
                if lo is not None:
                    m &= ts >= lo
                if hi is not None:
                    m &= ts < hi
                if not m.all():
                    t = t.filter(pa.array(m))
            if with_ids:
                t = t.append_column("venue", pa.array([e.venue] * t.num_rows, pa.string())) \
                     .append_column("symbol", pa.array([e.symbol] * t.num_rows, pa.string()))
            tables.append(t)
        if not tables:
            empty = pa.schema([schema.field(c) for c in cols])
            if with_ids:
                empty = empty.append(pa.field("venue", pa.string())).append(pa.field("symbol", pa.string()))
            return empty.empty_table()
        return pa.concat_tables(tables)

    def scan(self, kind: str, venue: str | None = None, symbol: str | None = None, start: Any = None,
             end: Any = None) -> Any:
        """A polars ``LazyFrame`` over the selection, with ``venue`` and ``symbol`` columns."""
        import polars as pl

        entries = self._good(self.entries(kind, venue, symbol, start, end))
        lo, hi = parse_time(start, field="start"), parse_time(end, field="end")
        groups: dict[tuple[str, str], list[str]] = {}
        for e in entries:
            groups.setdefault((e.venue, e.symbol), []).append(str(self.root / e.rel))
        frames = [
            pl.scan_parquet(files).with_columns(pl.lit(v).alias("venue"), pl.lit(s).alias("symbol"))
            for (v, s), files in sorted(groups.items())
        ]
        if not frames:
            return pl.from_arrow(self.read_arrow(kind, venue, symbol, start, end)).lazy()
        lf = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
        if lo is not None:
            lf = lf.filter(pl.col("ts_event") >= lo)
        if hi is not None:
            lf = lf.filter(pl.col("ts_event") < hi)
        return lf

    def read_numpy(self, kind: str, venue: str | None = None, symbol: str | None = None, start: Any = None,
                   end: Any = None) -> np.ndarray:
        """One instrument's rows as a numpy record array with the dtype of ``emerald.model.dtypes``."""
        insts = {(e.venue, e.symbol) for e in self.entries(kind, venue, symbol, start, end)}
        if len(insts) > 1:
            raise ConfigError(f"numpy output holds one instrument; the selection has {len(insts)}: "
                              f"{sorted(insts)[:4]} — pass venue and symbol")
        t = self.read_arrow(kind, venue, symbol, start, end, with_ids=False)
        return table_to_records(kind, t)

    def duckdb(self) -> Any:
        """An in-memory DuckDB connection with one view per kind present (``trades``, ``book``, ...),
        each with ``venue``, ``symbol`` and ``date`` columns from the partition path."""
        import duckdb

        con = duckdb.connect()
        for kind in self.kinds():
            files = [str(self.root / e.rel) for e in self._good(self.entries(kind))]
            if not files:
                continue
            lst = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(f"CREATE VIEW {kind} AS SELECT * FROM read_parquet([{lst}], hive_partitioning = true)")
        return con

    def sql(self, query: str) -> Any:
        """Run SQL over the kind views; returns a polars DataFrame."""
        import polars as pl

        con = self.duckdb()
        try:
            rel = con.sql(query)
            return pl.DataFrame() if rel is None else pl.from_arrow(rel.to_arrow_table())
        except Exception as e:  # duckdb raises many error types; surface them as a config problem
            raise ConfigError(f"SQL failed: {e}") from None
        finally:
            con.close()


def table_to_records(kind: str, table: pa.Table) -> np.ndarray:
    """Convert a tape table (schema columns only) to a numpy record array."""
    if kind == "book":
        depth = table.schema.field("bid_px").type.list_size if table.num_columns else 20
        dtype = book_dtype(depth)
    else:
        dtype = DTYPES[kind]
    out = np.empty(table.num_rows, dtype=dtype)
    for name in dtype.names:
        col = table.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(col.type):
            out[name] = np.asarray(col.flatten(), dtype=np.float64).reshape(table.num_rows, -1)
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out


def read_tape(root: str | Path, kind: str, venue: str | None = None, symbol: str | None = None, start: Any = None,
              end: Any = None, *, as_: str = "polars", strict: bool = True) -> Any:
    """Read one selection in one call: ``as_`` is polars (LazyFrame), arrow, numpy or pandas."""
    tape = Tape(root, strict=strict)
    if as_ == "polars":
        return tape.scan(kind, venue, symbol, start, end)
    if as_ == "arrow":
        return tape.read_arrow(kind, venue, symbol, start, end)
    if as_ == "numpy":
        return tape.read_numpy(kind, venue, symbol, start, end)
    if as_ == "pandas":
        return tape.read_arrow(kind, venue, symbol, start, end).to_pandas()
    raise ConfigError(f"`as_` must be polars, arrow, numpy or pandas, was {as_!r}")
