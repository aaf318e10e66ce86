"""The tape writer: validate, sort, de-duplicate, quarantine, write atomically, report.

Every row handed to :meth:`TapeWriter.write` ends in exactly one of three places, and the
report proves it per ``(kind, venue, symbol)``::

    rows_in == rows_written + duplicates + sum(quarantined.values())

Row rules (``emerald.tape.validate``) run as rows arrive; sorting, de-duplication and the
spike rule run at :meth:`TapeWriter.commit` on each touched date partition merged with what
is already on disk, so the files written do not depend on how the input was chunked. A
partition file is written to ``.tmp-*`` in its folder, fsynced and renamed into place; the
manifest is replaced the same way afterwards. A killed writer leaves at most a stray temp file
(never listed in the manifest, reported by ``emerald data validate``).

Examples
--------
>>> import numpy as np, tempfile
>>> from emerald.tape.writer import TapeWriter
>>> root = tempfile.mkdtemp()
>>> ts = np.array([2, 1, 3]) * 1_000_000_000 + 1_700_000_000_000_000_000
>>> with TapeWriter(root) as w:
...     w.write("trades", "binance-usdm", "BTCUSDT", {"ts_event": ts, "ts_recv": ts,
...             "price": [100.0, -1.0, 101.0], "qty": [1.0, 1.0, 2.0], "side": [1, -1, 1],
...             "trade_id": [2, 1, 3]}, source="doc")
>>> r = w.report.entries[("trades", "binance-usdm", "BTCUSDT")]
>>> (r.rows_in, r.rows_written, r.duplicates, r.quarantined)
(3, 2, 0, {'not_positive.price': 1})
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from emerald.errors import ConfigError, CorruptFileError, DataError
from emerald.model.dtypes import DEFAULT_BOOK_DEPTH
from emerald.tape.manifest import (
    fsync_dir,
    load_manifest,
    save_manifest,
)
from emerald.tape.schema import KINDS, RULES, arrow_schema
from emerald.tape.timeutil import ns_to_iso
from emerald.tape.validate import DEFAULT_SPIKE_RATIO, row_reasons, spike_mask

DAY_NS = 86_400_000_000_000
QUARANTINE_DIR = "_quarantine"
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 1
ROW_GROUP_SIZE = 1 << 20


@dataclass
class KindReport:
    """Conservation counts for one ``(kind, venue, symbol)``."""

    kind: str
    venue: str
    symbol: str
    rows_in: int = 0
    rows_written: int = 0
    duplicates: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    first_ts: int | None = None
    last_ts: int | None = None
    files: list[str] = field(default_factory=list)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_written + self.duplicates + self.quarantined_total

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "venue": self.venue, "symbol": self.symbol, "rows_in": self.rows_in,
            "rows_written": self.rows_written, "duplicates": self.duplicates,
            "quarantined": dict(sorted(self.quarantined.items())), "quarantined_total": self.quarantined_total,
            "first_ts": self.first_ts, "last_ts": self.last_ts,
            "first": ns_to_iso(self.first_ts), "last": ns_to_iso(self.last_ts),
            "balanced": self.balanced, "files": sorted(self.files),
        }


@dataclass
class WriteReport:
    """Per-group :class:`KindReport` entries of one commit (or several, merged)."""

    entries: dict[tuple[str, str, str], KindReport] = field(default_factory=dict)

    def entry(self, kind: str, venue: str, symbol: str) -> KindReport:
        key = (kind, venue, symbol)
        if key not in self.entries:
            self.entries[key] = KindReport(kind, venue, symbol)
        return self.entries[key]

    @property
    def balanced(self) -> bool:
        return all(e.balanced for e in self.entries.values())

    def check(self) -> None:
        """Raise if the conservation equation fails anywhere (a bug, never bad input)."""
        for e in self.entries.values():
            if not e.balanced:
                raise AssertionError(f"conservation broken for {e.kind}/{e.venue}/{e.symbol}: {e.to_dict()}")

    def by_kind(self) -> dict[str, dict[str, Any]]:
        """Totals per kind (summed over venues and symbols)."""
        out: dict[str, dict[str, Any]] = {}
        for e in sorted(self.entries.values(), key=lambda e: (e.kind, e.venue, e.symbol)):
            t = out.setdefault(e.kind, {"rows_in": 0, "rows_written": 0, "duplicates": 0, "quarantined": {},
                                        "first_ts": None, "last_ts": None})
            t["rows_in"] += e.rows_in
            t["rows_written"] += e.rows_written
            t["duplicates"] += e.duplicates
            for k, v in e.quarantined.items():
                t["quarantined"][k] = t["quarantined"].get(k, 0) + v
            for name, fn in (("first_ts", min), ("last_ts", max)):
                v = getattr(e, name)
                if v is not None:
                    t[name] = v if t[name] is None else fn(t[name], v)
        for t in out.values():
            t["quarantined_total"] = sum(t["quarantined"].values())
            t["balanced"] = t["rows_in"] == t["rows_written"] + t["duplicates"] + t["quarantined_total"]
            t["first"], t["last"] = ns_to_iso(t["first_ts"]), ns_to_iso(t["last_ts"])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"balanced": self.balanced, "kinds": self.by_kind(),
                "entries": [e.to_dict() for _, e in sorted(self.entries.items())]}


# --------------------------------------------------------------------------------------------
# input normalisation


def _infer_depth(kind: str, data: Any, depth: int | None) -> int:
    if kind != "book":
        return 0
    if depth is not None:
        return depth
    if isinstance(data, pa.Table):
        t = data.schema.field("bid_px").type
        if pa.types.is_fixed_size_list(t):
            return int(t.list_size)
    if isinstance(data, np.ndarray) and data.dtype.names:
        return int(data.dtype["bid_px"].shape[0])
    if isinstance(data, dict) and "bid_px" in data:
        arr = np.asarray(data["bid_px"])
        if arr.ndim == 2:
            return int(arr.shape[1])
    return DEFAULT_BOOK_DEPTH


def _ts_to_int(arr: pa.Array | pa.ChunkedArray, name: str, source: str) -> pa.Array:
    t = arr.type
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise DataError("naive timestamps are rejected: declare their zone (e.g. --tz UTC) or pass int64 ns UTC",
                            path=source, field=name, value=str(arr[0]) if len(arr) else None)
        return arr.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    return arr


def to_table(kind: str, data: Any, *, depth: int = 0, source: str = "<memory>") -> pa.Table:
    """Coerce ``data`` (pa.Table, dict of arrays, numpy record array, polars/pandas frame) to the
    exact Parquet schema of ``kind``; missing or unknown columns raise :class:`DataError`."""
    schema = arrow_schema(kind, depth or DEFAULT_BOOK_DEPTH)
    if isinstance(data, np.ndarray) and data.dtype.names:
        data = {n: data[n] for n in data.dtype.names}
    if not isinstance(data, pa.Table | dict):
        if hasattr(data, "to_arrow"):
            data = data.to_arrow()
        elif hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas
            data = pa.Table.from_pandas(data, preserve_index=False)
        else:
            raise ConfigError(f"cannot write {type(data).__name__} as a tape table; pass a pyarrow Table, a dict "
                              "of arrays or a numpy record array")
    names = data.column_names if isinstance(data, pa.Table) else list(data)
    missing = [f.name for f in schema if f.name not in names]
    if missing:
        raise DataError(f"{kind} table lacks column(s) {missing}", path=source, field=missing[0])
    unknown = [n for n in names if schema.get_field_index(n) < 0]
    if unknown:
        raise DataError(f"{kind} table has unknown column(s) {unknown}; expected {schema.names}",
                        path=source, field=unknown[0])
    cols = []
    for f in schema:
        raw = data.column(f.name) if isinstance(data, pa.Table) else data[f.name]
        if isinstance(raw, pa.Array | pa.ChunkedArray):
            arr = raw
        else:
            np_arr = np.asarray(raw)
            if np_arr.dtype.kind == "M":
                raise DataError("numpy datetime64 columns carry no zone; pass int64 ns UTC",
                                path=source, field=f.name)
            if pa.types.is_fixed_size_list(f.type):
                np_arr = np.ascontiguousarray(np_arr, dtype=np.float64)
                if np_arr.ndim != 2 or np_arr.shape[1] != f.type.list_size:
                    raise DataError(f"book column must be (rows, {f.type.list_size})", path=source,
                                    field=f.name, value=np_arr.shape)
                arr = pa.FixedSizeListArray.from_arrays(pa.array(np_arr.reshape(-1)), f.type.list_size)
            else:
                arr = pa.array(np_arr)
        if f.name.startswith("ts") or f.name.endswith("_ts"):
            arr = _ts_to_int(arr, f.name, source)
        if arr.null_count:
            if pa.types.is_floating(f.type):
                arr = arr.fill_null(np.nan)
            else:
                idx = int(np.flatnonzero(np.asarray(arr.is_null()))[0])
                raise DataError("missing value in a required column", path=source, field=f.name,
                                value=f"null at row {idx}")
        try:
            arr = arr.cast(f.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise DataError(f"cannot convert to {f.type} ({e})", path=source, field=f.name,
                            value=str(arr.type)) from None
        cols.append(arr)
    return pa.Table.from_arrays(cols, schema=schema)


# --------------------------------------------------------------------------------------------
# files


def partition_dir(root: Path, kind: str, venue: str, symbol: str, date: str) -> Path:
    return root / kind / f"venue={venue}" / f"symbol={symbol}" / f"date={date}"


def _check_name(what: str, value: str) -> str:
    if not value or any(c in value for c in "/\\=\0") or value.startswith((".", "_")):
        raise ConfigError(f"{what} must be a non-empty name without '/', '\\', '=' or a leading '.'/'_', "
                          f"was {value!r}")
    return value


def table_bytes(table: pa.Table) -> bytes:
    """Serialise a table as zstd Parquet in memory (deterministic for equal input)."""
    sink = pa.BufferOutputStream()
    # int64 times and ids: delta encoding (smaller and faster than dictionaries on sorted data)
    delta = {f.name: "DELTA_BINARY_PACKED" for f in table.schema if f.type == pa.int64()}
    dictionary = [f.name for f in table.schema if f.type in (pa.int8(), pa.bool_())]
    pq.write_table(table, sink, compression=COMPRESSION, compression_level=COMPRESSION_LEVEL,
                   row_group_size=ROW_GROUP_SIZE, write_statistics=["ts_event"], store_schema=True,
                   use_dictionary=dictionary, column_encoding=delta)
    return sink.getvalue().to_pybytes()


def atomic_write_file(path: Path, payload: bytes) -> None:
    """temp file in the target folder -> fsync -> rename -> fsync folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}.parquet"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(payload)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_partition_file(path: Path, expected_sha256: str | None = None) -> pa.Table:
    """Read a tape file; any failure is a :class:`CorruptFileError` naming the file."""
    try:
        if expected_sha256 is not None:
            data = path.read_bytes()
            got = hashlib.sha256(data).hexdigest()
            if got != expected_sha256:
                raise CorruptFileError("file content does not match its manifest sha256", path=str(path),
                                       field="sha256", value=got[:16])
            return pq.read_table(pa.BufferReader(data))
        return pq.read_table(path)
    except CorruptFileError:
        raise
    except (OSError, pa.ArrowException) as e:
        raise CorruptFileError(f"unreadable Parquet file ({e})", path=str(path)) from None


# --------------------------------------------------------------------------------------------
# the writer


def _sorted_order(ts: np.ndarray) -> np.ndarray | None:
    """Stable order by ts; None when already sorted (the common case, O(n))."""
    if ts.size < 2 or bool(np.all(ts[1:] >= ts[:-1])):
        return None
    return np.argsort(ts, kind="stable")


def _first_occurrence(keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the first occurrence of each key (in array order)."""
    n = keys.shape[0]
    if n < 2:
        return np.ones(n, dtype=bool)
    if keys.ndim == 1 and bool(np.all(keys[1:] > keys[:-1])):
        return np.ones(n, dtype=bool)
    _, first = np.unique(keys, axis=0, return_index=True)
    mask = np.zeros(n, dtype=bool)
    mask[first] = True
    return mask


def _first_occurrence_rows(table: pa.Table) -> np.ndarray:
    """First occurrence of each whole row. Equal rows share ``ts_event``, so only rows whose
    timestamp repeats are compared (book partitions rarely have any: O(n) instead of a sort of
    every row's 80-odd values)."""
    ts = table.column("ts_event").to_numpy()
    n = ts.size
    first = np.ones(n, dtype=bool)
    if n < 2 or bool(np.all(ts[1:] > ts[:-1])):
        return first
    order = np.argsort(ts, kind="stable")
    eq = ts[order][1:] == ts[order][:-1]
    shared = np.zeros(n, dtype=bool)
    shared[:-1] |= eq
    shared[1:] |= eq
    cand = np.sort(order[shared])  # input order, so "first" means first given
    if cand.size:
        first[cand[~_first_occurrence(_row_matrix(table.take(pa.array(cand))))]] = False
    return first


def _row_matrix(table: pa.Table) -> np.ndarray:
    """Rows as an (n, k) uint64 matrix of their bit patterns, for whole-row duplicate tests."""
    parts = []
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(col.type):
            a = np.asarray(col.flatten(), dtype=np.float64).reshape(len(col), -1)
            parts.append(np.ascontiguousarray(a).view(np.uint64))
        else:
            a = col.to_numpy(zero_copy_only=False)
            if a.dtype == np.float64:
                a = np.where(np.isnan(a), np.nan, a)  # one NaN bit pattern
                parts.append(a.view(np.uint64)[:, None])
            else:
                parts.append(a.astype(np.int64).view(np.uint64)[:, None])
    return np.hstack(parts) if parts else np.zeros((table.num_rows, 0), dtype=np.uint64)


class TapeWriter:
    """Buffer, validate and commit tape rows under ``root``.

    Parameters
    ----------
    root
        Dataset folder (created if missing).
    strict
        Raise :class:`DataError` on the first row that breaks a rule instead of quarantining it.
    spike_ratio
        Factor for the spike rule (see :func:`emerald.tape.validate.spike_mask`); ``inf`` disables it.
    """

    def __init__(self, root: str | Path, *, strict: bool = False, spike_ratio: float = DEFAULT_SPIKE_RATIO) -> None:
        self.root = Path(root)
        self.strict = strict
        self.spike_ratio = spike_ratio
        self.report = WriteReport()
        self._pending: dict[tuple[str, str, str], list[tuple[pa.Table, str]]] = defaultdict(list)
        self._quarantine: dict[tuple[str, str, str, str], list[pa.Table]] = defaultdict(list)
        self._depth: dict[tuple[str, str, str], int] = {}
        self._sources: list[tuple[str, str, dict[str, Any]]] = []
        self._replaced: list[Path] = []
        self._index: tuple[dict[str, Any], dict[str, str]] | None = None

    # -- context manager: commit on success, drop the buffer on error
    def __enter__(self) -> TapeWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()

    def add_source(self, path: str | Path, fmt: str, **extra: Any) -> None:
        """Record a source file in the manifest at commit (path, format, bytes, sha256)."""
        self._sources.append((str(path), fmt, extra))

    def write(self, kind: str, venue: str, symbol: str, data: Any, *, source: str = "<memory>",
              depth: int | None = None) -> None:
        """Validate ``data`` row by row and buffer the valid rows for :meth:`commit`."""
        if kind not in KINDS:
            from emerald.model.enums import Kind

            Kind.parse(kind)
        _check_name("venue", venue)
        _check_name("symbol", symbol)
        d = _infer_depth(kind, data, depth)
        key = (kind, venue, symbol)
        if kind == "book":
            if self._depth.setdefault(key, d) != d:
                raise DataError(f"book depth changes within one write session ({self._depth[key]} then {d})",
                                path=source, field="bid_px", value=d)
        table = data if (isinstance(data, pa.Table) and data.schema.equals(arrow_schema(kind, d or 20),
                                                                           check_metadata=False)) \
            else to_table(kind, data, depth=d, source=source)
        rep = self.report.entry(*key)
        rep.rows_in += table.num_rows
        if table.num_rows == 0:
            return
        codes, names = row_reasons(kind, table, d)
        bad = codes != 0
        if bad.any():
            if self.strict:
                i = int(np.flatnonzero(bad)[0])
                reason = names[codes[i]]
                col = reason.split(".", 1)[1] if "." in reason else None
                val = table.column(col)[i].as_py() if col in (table.column_names if col else []) else None
                raise DataError(f"{kind} row {i} breaks rule {reason!r}", path=source, field=col or reason,
                                value=val)
            for code in np.unique(codes[bad]):
                m = codes == code
                self._add_quarantine(kind, venue, symbol, names[code], table.filter(pa.array(m)), source)
            table = table.filter(pa.array(~bad))
        if table.num_rows:
            self._pending[key].append((table, source))

    def _add_quarantine(self, kind: str, venue: str, symbol: str, reason: str, rows: pa.Table, source: str) -> None:
        rep = self.report.entry(kind, venue, symbol)
        rep.quarantined[reason] = rep.quarantined.get(reason, 0) + rows.num_rows
        rows = rows.append_column("_source", pa.array([source] * rows.num_rows, pa.string()))
        self._quarantine[(kind, venue, symbol, reason)].append(rows)

    def commit(self) -> WriteReport:
        """Merge the buffered rows into their partitions, write files and the manifest."""
        manifest = load_manifest(self.root)
        for key in sorted(self._pending):
            self._commit_group(key, self._pending[key], manifest)
        self._pending.clear()
        self._write_quarantine(manifest)
        for path, fmt, extra in self._sources:
            from emerald.tape.manifest import add_source

            add_source(manifest, path, fmt, **extra)
        self._sources.clear()
        if self.report.entries or manifest["files"]:
            save_manifest(self.root, manifest)
        for old in self._replaced:  # only now is nothing pointing at them
            old.unlink(missing_ok=True)
        self._replaced.clear()
        self.report.check()
        return self.report

    def _commit_group(self, key: tuple[str, str, str], chunks: list[tuple[pa.Table, str]],
                      manifest: dict[str, Any]) -> None:
        kind, venue, symbol = key
        depth = self._depth.get(key, 0)
        rep = self.report.entry(*key)
        new = pa.concat_tables([c for c, _ in chunks]).combine_chunks()
        sources = np.concatenate([np.full(c.num_rows, i, dtype=np.int32) for i, (c, _) in enumerate(chunks)])
        src_names = [s for _, s in chunks]
        ts_new = new.column("ts_event").to_numpy()
        day_of = ts_new // DAY_NS
        dates = np.unique(day_of[np.concatenate([[True], day_of[1:] != day_of[:-1]])])
        # existing rows of the touched dates come first so that they win ties and de-duplication
        existing_tables = []
        for day in dates:
            date = str(np.datetime64(int(day), "D"))
            rel = self._partition_entry(manifest, kind, venue, symbol, date)
            if rel is not None:
                path = self.root / rel
                old = read_partition_file(path, manifest["files"][rel]["sha256"])
                if kind == "book":
                    old_depth = old.schema.field("bid_px").type.list_size
                    if old_depth != depth:
                        raise DataError(f"book depth {depth} differs from the stored depth {old_depth}",
                                        path=str(path), field="bid_px", value=depth)
                existing_tables.append(old.select(new.column_names).cast(new.schema))
        n_old = sum(t.num_rows for t in existing_tables)
        merged = pa.concat_tables([*existing_tables, new]).combine_chunks() if existing_tables else new
        is_new = np.zeros(merged.num_rows, dtype=bool)
        is_new[n_old:] = True
        src = np.concatenate([np.full(n_old, -1, dtype=np.int32), sources])

        # 1. de-duplicate (first occurrence wins: existing, then input order)
        keep = np.ones(merged.num_rows, dtype=bool)
        rules = RULES[kind]
        if rules.dedup_key is not None:
            key = rules.dedup_key
            ids = merged.column(key[0]).to_numpy() if len(key) == 1 else _row_matrix(merged.select(list(key)))
            first = _first_occurrence(ids)
            if not first.all():
                # a repeated key whose row differs is a conflict, not a duplicate
                first_rows = _first_occurrence(_row_matrix(merged))
                conflict = ~first & first_rows
                if conflict.any():
                    if self.strict and (conflict & is_new).any():
                        i = int(np.flatnonzero(conflict & is_new)[0])
                        raise DataError(f"{kind} row conflicts with an earlier row of the same {'+'.join(key)}",
                                        path=src_names[src[i]] if src[i] >= 0 else "<existing>", field=key[0],
                                        value=merged.column(key[0])[i].as_py())
                    self._quarantine_mask(merged, conflict & is_new, kind, venue, symbol, rules.conflict_reason,
                                          src, src_names)
                keep &= first & ~conflict
                rep.duplicates += int((~first & ~conflict & is_new).sum())
        else:
            first = _first_occurrence_rows(merged)
            rep.duplicates += int((~first & is_new).sum())
            keep &= first
        # 2. sort by ts_event (stable: ties keep existing-then-input order)
        if not keep.all():
            merged, is_new, src = merged.filter(pa.array(keep)), is_new[keep], src[keep]
        order = _sorted_order(merged.column("ts_event").to_numpy())
        if order is not None:
            merged, is_new, src = merged.take(pa.array(order)), is_new[order], src[order]
        # 3. spikes against the merged neighbours; only new rows can be quarantined
        if np.isfinite(self.spike_ratio):
            spikes = np.zeros(merged.num_rows, dtype=bool)
            for col in RULES[kind].spike_columns:
                m = spike_mask(merged.column(col).to_numpy(), self.spike_ratio) & is_new & ~spikes
                if m.any():
                    if self.strict:
                        i = int(np.flatnonzero(m)[0])
                        raise DataError(f"{kind} row breaks rule 'spike.{col}' (more than {self.spike_ratio}x "
                                        "its neighbours' median)", path=src_names[src[i]], field=col,
                                        value=merged.column(col)[i].as_py())
                    self._quarantine_mask(merged, m, kind, venue, symbol, f"spike.{col}", src, src_names)
                    spikes |= m
            if spikes.any():
                merged, is_new = merged.filter(pa.array(~spikes)), is_new[~spikes]
        rep.rows_written += int(is_new.sum())
        # 4. one file per UTC date
        ts = merged.column("ts_event").to_numpy()
        days = ts // DAY_NS
        bounds = np.flatnonzero(np.diff(days)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(days)]])
        for s, e in zip(starts, ends, strict=True):
            if e <= s:
                continue
            date = str(np.datetime64(int(days[s]), "D"))
            part = merged.slice(s, e - s)
            if kind == "book":
                part = part.replace_schema_metadata(arrow_schema("book", depth).metadata)
            payload = table_bytes(part)
            digest = hashlib.sha256(payload).hexdigest()
            # content-addressed name: the manifest switches from the old file to the new one in a
            # single atomic rename of the manifest; the old file is deleted only after that.
            path = partition_dir(self.root, kind, venue, symbol, date) / f"part-{digest[:16]}.parquet"
            rel = path.relative_to(self.root).as_posix()
            old_rel = self._partition_entry(manifest, kind, venue, symbol, date)
            if old_rel is not None and old_rel != rel:
                manifest["files"].pop(old_rel)
                self._replaced.append(self.root / old_rel)
            assert self._index is not None
            self._index[1][rel.rsplit("/", 1)[0]] = rel
            if not path.exists() or old_rel != rel:
                atomic_write_file(path, payload)
            manifest["files"][rel] = {
                "kind": kind, "venue": venue, "symbol": symbol, "date": date, "rows": int(e - s),
                "min_ts": int(ts[s]), "max_ts": int(ts[e - 1]), "bytes": len(payload),
                "sha256": digest,
                **({"book_depth": depth} if kind == "book" else {}),
            }
            rep.files.append(rel)
        if is_new.any():
            nts = ts[is_new]
            lo, hi = int(nts.min()), int(nts.max())
            rep.first_ts = lo if rep.first_ts is None else min(rep.first_ts, lo)
            rep.last_ts = hi if rep.last_ts is None else max(rep.last_ts, hi)

    def _partition_entry(self, manifest: dict[str, Any], kind: str, venue: str, symbol: str, date: str) -> str | None:
        """The manifest's file for one date partition (an index built once per commit)."""
        if self._index is None or self._index[0] is not manifest:
            index = {rel.rsplit("/", 1)[0]: rel for rel in manifest["files"]}
            self._index = (manifest, index)
        return self._index[1].get(f"{kind}/venue={venue}/symbol={symbol}/date={date}")

    def _quarantine_mask(self, table: pa.Table, mask: np.ndarray, kind: str, venue: str, symbol: str,
                         reason: str, src: np.ndarray, src_names: list[str]) -> None:
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        for s in np.unique(src[idx]):
            sel = idx[src[idx] == s]
            self._add_quarantine(kind, venue, symbol, reason, table.take(pa.array(sel)),
                                 src_names[s] if s >= 0 else "<existing>")

    def _write_quarantine(self, manifest: dict[str, Any]) -> None:
        tally = manifest.setdefault("quarantine", {})
        for (kind, venue, symbol, reason), tables in sorted(self._quarantine.items()):
            rows = pa.concat_tables(tables)
            k = f"{kind}/{venue}/{symbol}/{reason}"
            tally[k] = tally.get(k, 0) + rows.num_rows
            payload = table_bytes(rows)
            digest = hashlib.sha256(payload).hexdigest()[:16]
            folder = self.root / QUARANTINE_DIR / kind / f"venue={venue}" / f"symbol={symbol}" / f"reason={reason}"
            atomic_write_file(folder / f"part-{digest}.parquet", payload)
        self._quarantine.clear()


def write_tape(root: str | Path, kind: str, venue: str, symbol: str, data: Any, *, source: str = "<memory>",
               strict: bool = False, depth: int | None = None) -> WriteReport:
    """Validate and write one table in one call; returns the :class:`WriteReport`."""
    with TapeWriter(root, strict=strict) as w:
        w.write(kind, venue, symbol, data, source=source, depth=depth)
    return w.report
