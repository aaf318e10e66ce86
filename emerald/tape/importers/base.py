"""What every importer shares: the import report and rejected-line bookkeeping.

An importer turns one source format into tape tables and hands them to a
:class:`~emerald.tape.writer.TapeWriter`; it never repairs silently. Lines it cannot parse are
counted per reason and kept under ``_quarantine/_lines/``; messages of a type it does not map
are counted in ``unhandled``. Line conservation::

    lines_in == lines_parsed + sum(lines_rejected.values())
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from emerald.errors import DataError
from emerald.tape.manifest import atomic_write_bytes
from emerald.tape.writer import QUARANTINE_DIR, TapeWriter, WriteReport


@dataclass
class ImportReport:
    format: str
    sources: list[str] = field(default_factory=list)
    lines_in: int = 0
    lines_parsed: int = 0
    lines_rejected: dict[str, int] = field(default_factory=dict)
    unhandled: dict[str, int] = field(default_factory=dict)
    book: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    write: WriteReport | None = None

    @property
    def lines_balanced(self) -> bool:
        return self.lines_in == self.lines_parsed + sum(self.lines_rejected.values())

    def to_dict(self) -> dict[str, Any]:
        kinds = self.write.by_kind() if self.write else {}
        for kind, extra in self.book.items():
            if kind in kinds:
                kinds[kind].update(extra)
            else:
                kinds[kind] = dict(extra)
        return {
            "format": self.format, "sources": self.sources, "lines_in": self.lines_in,
            "lines_parsed": self.lines_parsed, "lines_rejected": dict(sorted(self.lines_rejected.items())),
            "lines_balanced": self.lines_balanced, "unhandled": dict(sorted(self.unhandled.items())),
            "notes": self.notes, "kinds": kinds,
            "balanced": bool(self.lines_balanced and (self.write is None or self.write.balanced)),
        }


class LineRejects:
    """Collect unparseable lines; strict mode raises on the first one, naming file, line and value."""

    def __init__(self, report: ImportReport, *, strict: bool) -> None:
        self.report, self.strict = report, strict
        self._rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def reject(self, reason: str, *, path: str, line_no: int, text: str | bytes, field: str | None = None) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if self.strict:
            raise DataError(f"cannot import line ({reason})", path=path, line=line_no, field=field,
                            value=text[:200])
        self.report.lines_rejected[reason] = self.report.lines_rejected.get(reason, 0) + 1
        self._rows[reason].append({"path": path, "line": line_no, "field": field, "text": text})

    def flush(self, writer: TapeWriter) -> None:
        """Write rejected lines to ``<root>/_quarantine/_lines/<format>/reason=<r>/<hash>.jsonl``."""
        for reason, rows in sorted(self._rows.items()):
            payload = b"".join(orjson.dumps(r) + b"\n" for r in rows)
            digest = hashlib.sha256(payload).hexdigest()[:16]
            atomic_write_bytes(Path(writer.root) / QUARANTINE_DIR / "_lines" / self.report.format
                               / f"reason={reason}" / f"{digest}.jsonl", payload)
        self._rows.clear()


def add_note(report: ImportReport, note: str) -> None:
    """Add a note to the import report once."""
    if note not in report.notes:
        report.notes.append(note)


def count_unhandled(report: ImportReport, key: str, n: int) -> None:
    """Count ``n`` messages or lines of a type the importer does not map."""
    if n:
        report.unhandled[key] = report.unhandled.get(key, 0) + n


def stable_id(text: str) -> int:
    """Stable 63-bit id of a non-numeric identifier: the top 63 bits of its 8-byte blake2b digest.

    >>> stable_id("ccc3c1fa-212c-e8b0-1706-9b9c4f3d5ecf") == stable_id("ccc3c1fa-212c-e8b0-1706-9b9c4f3d5ecf")
    True
    """
    import hashlib

    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 1
