"""Coverage and gaps per kind, funding settlements expected vs present, and a whole-dataset audit.

Gaps are *reported*, never filled: a hole is any step between consecutive ``ts_event`` values of
one instrument longer than the threshold (per kind defaults below, or ``gap_ns``). Markets that
close (forex weekends) show their closures as gaps; that is information, not an error.

Funding: for every perp instrument with funding rows, the expected settlements are the
multiples of the funding interval (from the data's ``interval_ns``, else the instrument
registry) inside the instrument's time span on the tape (all kinds together); a settlement
that is missing is listed, never treated as a zero rate.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from emerald.errors import ConfigError, CorruptFileError
from emerald.tape.reader import Tape
from emerald.tape.timeutil import ns_to_iso
from emerald.tape.writer import QUARANTINE_DIR

SECOND_NS = 1_000_000_000
DEFAULT_GAP_NS: dict[str, int | None] = {
    "trades": 60 * SECOND_NS,
    "quotes": 60 * SECOND_NS,
    "book": 60 * SECOND_NS,
    "book_delta": 60 * SECOND_NS,
    "prices": 60 * SECOND_NS,
    "open_interest": 30 * 60 * SECOND_NS,
    "bars": None,  # 1.5 x the bar interval
    "funding": None,  # judged by settlements, not by gaps
    "liquidations": None,  # sporadic by nature
}


@dataclass
class Gap:
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {"start": ns_to_iso(self.start), "end": ns_to_iso(self.end),
                "seconds": (self.end - self.start) / SECOND_NS, "start_ts": self.start, "end_ts": self.end}


@dataclass
class Coverage:
    kind: str
    venue: str
    symbol: str
    rows: int
    first_ts: int | None
    last_ts: int | None
    gap_threshold_ns: int | None
    gaps: list[Gap] = field(default_factory=list)
    funding: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind, "venue": self.venue, "symbol": self.symbol, "rows": self.rows,
            "first": ns_to_iso(self.first_ts), "last": ns_to_iso(self.last_ts),
            "first_ts": self.first_ts, "last_ts": self.last_ts,
            "gap_threshold_s": None if self.gap_threshold_ns is None else self.gap_threshold_ns / SECOND_NS,
            "gaps": len(self.gaps), "gap_list": [g.to_dict() for g in self.gaps],
        }
        if self.funding is not None:
            d["funding"] = self.funding
        return d


def find_gaps(ts: np.ndarray, threshold_ns: int) -> list[Gap]:
    """Holes longer than ``threshold_ns`` between consecutive sorted timestamps."""
    if ts.size < 2:
        return []
    d = np.diff(ts)
    idx = np.flatnonzero(d > threshold_ns)
    return [Gap(int(ts[i]), int(ts[i + 1])) for i in idx]


def funding_settlements(settled_ts: np.ndarray, interval_ns: int, span: tuple[int, int]) -> dict[str, Any]:
    """Expected settlements on the ``interval_ns`` grid within ``span`` vs the ones present."""
    lo, hi = span
    first = -(-lo // interval_ns) * interval_ns  # ceil to the grid
    expected = np.arange(first, hi + 1, interval_ns, dtype=np.int64) if hi >= first else np.empty(0, np.int64)
    present = np.unique(settled_ts)
    missing = np.setdiff1d(expected, present)
    off_grid = present[present % interval_ns != 0]
    return {
        "interval_s": interval_ns / SECOND_NS,
        "expected": int(expected.size), "present": int(np.intersect1d(expected, present).size),
        "missing": int(missing.size), "missing_list": [ns_to_iso(int(t)) for t in missing[:100]],
        "off_grid": int(off_grid.size), "off_grid_list": [ns_to_iso(int(t)) for t in off_grid[:100]],
        "coverage": 1.0 if expected.size == 0 else float(np.intersect1d(expected, present).size / expected.size),
    }


def coverage(tape: Tape | str | Path, kind: str | None = None, venue: str | None = None, symbol: str | None = None,
             *, gap_ns: int | None = None) -> list[Coverage]:
    """Coverage of every ``(kind, venue, symbol)`` in the selection (see module docstring)."""
    if not isinstance(tape, Tape):
        tape = Tape(tape)
    if gap_ns is not None and gap_ns <= 0:
        raise ConfigError(f"`gap_ns` must be > 0, was {gap_ns!r}")
    spans: dict[tuple[str, str], tuple[int, int]] = {}
    for e in tape.entries(None, venue, symbol):
        lo, hi = spans.get((e.venue, e.symbol), (e.min_ts, e.max_ts))
        spans[(e.venue, e.symbol)] = (min(lo, e.min_ts), max(hi, e.max_ts))
    out: list[Coverage] = []
    kinds = [kind] if kind else tape.kinds()
    for k in kinds:
        for v, s in tape.instruments(k):
            if (venue and v != venue) or (symbol and s != symbol):
                continue
            cols = ["ts_event"] + (["interval_ns", "is_settlement"] if k == "funding" else []) \
                + (["interval_ns"] if k == "bars" else [])
            t = tape.read_arrow(k, v, s, columns=cols, with_ids=False)
            ts = t.column("ts_event").to_numpy()
            threshold = gap_ns if gap_ns is not None else DEFAULT_GAP_NS.get(k)
            if k == "bars" and threshold is None and t.num_rows:
                threshold = int(Counter(t.column("interval_ns").to_numpy().tolist()).most_common(1)[0][0] * 3 // 2)
            cov = Coverage(k, v, s, t.num_rows, int(ts[0]) if ts.size else None, int(ts[-1]) if ts.size else None,
                           threshold, find_gaps(ts, threshold) if threshold else [])
            if k == "funding":
                settled = t.column("is_settlement").to_numpy(zero_copy_only=False)
                intervals = t.column("interval_ns").to_numpy()
                interval = int(Counter(intervals.tolist()).most_common(1)[0][0]) if intervals.size else 0
                if interval <= 0:
                    from emerald.model.instruments import get_instrument

                    try:
                        interval = get_instrument(v, s).funding_interval_ns
                    except ConfigError:
                        interval = 0
                if interval > 0:
                    cov.funding = funding_settlements(ts[settled], interval, spans[(v, s)])
            out.append(cov)
    return out


@dataclass
class Audit:
    files_total: int = 0
    files_ok: int = 0
    rows_total: int = 0
    bad_files: list[dict[str, Any]] = field(default_factory=list)
    stray_files: list[str] = field(default_factory=list)
    quarantined_rows: dict[str, int] = field(default_factory=dict)
    quarantined_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad_files and not self.stray_files

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "files_total": self.files_total, "files_ok": self.files_ok,
                "files_bad": len(self.bad_files), "rows_total": self.rows_total, "bad_files": self.bad_files,
                "stray_files": self.stray_files, "quarantined_rows": self.quarantined_rows,
                "quarantined_files": self.quarantined_files}


def audit(root: str | Path, *, verify: str = "hash", lenient: bool = False) -> Audit:
    """Check every file of the dataset against the manifest, its schema and its sort order, and
    list stray files (temp files of a killed writer, orphans the manifest does not name).

    ``lenient`` moves bad files to ``_quarantine/_files/`` (and out of the manifest)."""
    root = Path(root)
    tape = Tape(root, strict=not lenient, verify=verify)
    a = Audit()
    entries = tape.entries()
    a.files_total = len(entries)
    for e in entries:
        try:
            tape.check_file(e)
            pf = pq.ParquetFile(root / e.rel)
            kind_meta = (pf.schema_arrow.metadata or {}).get(b"emerald.kind", b"").decode()
            if kind_meta != e.kind:
                raise CorruptFileError("schema metadata names another kind", path=str(root / e.rel),
                                       field="emerald.kind", value=kind_meta)
            ts = pf.read(columns=["ts_event"]).column("ts_event").to_numpy()
            if ts.size and (bool(np.any(ts[1:] < ts[:-1])) or int(ts[0]) != e.min_ts or int(ts[-1]) != e.max_ts):
                raise CorruptFileError("ts_event not sorted or span differs from the manifest", path=str(root / e.rel),
                                       field="ts_event")
        except CorruptFileError as err:
            a.bad_files.append({"path": e.rel, "error": str(err)})
            if lenient:
                tape.quarantine_file(e, str(err))
            continue
        a.files_ok += 1
        a.rows_total += e.rows
    listed = set(tape.manifest["files"])
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        if rel.startswith(QUARANTINE_DIR + "/") or ("/" not in rel and rel.startswith("_")):
            continue  # the manifest and other top-level metadata (_demo.json) are not data
        if rel not in listed:
            a.stray_files.append(rel)
            if lenient:  # keep it for inspection, out of the data tree
                dst = root / QUARANTINE_DIR / "_stray" / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                p.replace(dst)
    a.quarantined_rows = dict(sorted(tape.manifest.get("quarantine", {}).items()))
    a.quarantined_files = sorted(tape.manifest.get("quarantined_files", {}))
    return a
