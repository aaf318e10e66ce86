"""The dataset manifest: ``<root>/_manifest.json``.

It lists every data file (kind, venue, symbol, date, rows, first/last ts, bytes, sha256), the
sources imported into the dataset, files quarantined by a lenient reader, the schema version and
a content hash over all file hashes. It is replaced atomically (temp file + fsync + rename) on
every commit, so a reader sees either the old or the new manifest, never a half-written one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

from emerald import __version__
from emerald.errors import DataError
from emerald.tape.schema import SCHEMA_VERSION

MANIFEST_NAME = "_manifest.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{os.getpid()}-{path.name}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def empty_manifest() -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created_by": f"emerald {__version__}",
        "sources": [],
        "files": {},
        "quarantined_files": {},
        "content_hash": hashlib.sha256(b"").hexdigest(),
    }


def load_manifest(root: str | Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST_NAME
    if not path.exists():
        return empty_manifest()
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise DataError(f"manifest is not valid JSON ({e})", path=str(path)) from None
    if data.get("schema_version") != SCHEMA_VERSION:
        raise DataError(
            f"tape schema version {SCHEMA_VERSION} expected", path=str(path), field="schema_version",
            value=data.get("schema_version"),
        )
    return data


def content_hash(files: dict[str, dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode())
        h.update(b"\0")
        h.update(files[rel]["sha256"].encode())
        h.update(b"\n")
    return h.hexdigest()


def save_manifest(root: str | Path, manifest: dict[str, Any]) -> None:
    manifest["content_hash"] = content_hash(manifest["files"])
    manifest["summary"] = summarize(manifest)
    atomic_write_bytes(Path(root) / MANIFEST_NAME,
                       orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def summarize(manifest: dict[str, Any]) -> dict[str, Any]:
    """Rows, partitions and time span per ``kind/venue/symbol``."""
    out: dict[str, dict[str, Any]] = {}
    for entry in manifest["files"].values():
        key = f"{entry['kind']}/{entry['venue']}/{entry['symbol']}"
        s = out.setdefault(key, {"kind": entry["kind"], "venue": entry["venue"], "symbol": entry["symbol"],
                                 "rows": 0, "partitions": 0, "first_ts": None, "last_ts": None, "bytes": 0})
        s["rows"] += entry["rows"]
        s["partitions"] += 1
        s["bytes"] += entry["bytes"]
        if entry["rows"]:
            s["first_ts"] = entry["min_ts"] if s["first_ts"] is None else min(s["first_ts"], entry["min_ts"])
            s["last_ts"] = entry["max_ts"] if s["last_ts"] is None else max(s["last_ts"], entry["max_ts"])
    return dict(sorted(out.items()))


def add_source(manifest: dict[str, Any], path: str | Path, fmt: str, **extra: Any) -> None:
    """Record an imported source file (path, format, bytes, sha256) once."""
    p = Path(path)
    entry = {"path": str(p.resolve()), "format": fmt, "bytes": p.stat().st_size, "sha256": sha256_file(p)}
    entry.update(extra)
    for old in manifest["sources"]:
        if old["sha256"] == entry["sha256"] and old["format"] == fmt:
            return
    manifest["sources"].append(entry)
