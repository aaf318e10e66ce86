"""Throughput of the ``binance-raw`` importer on the real USD-M captures, with a peer baseline.

Run: ``.venv/bin/python benchmarks/bench_binance_raw.py [--repeat 7] [--profile]``

Three numbers, each in messages (lines) per second, best and median of ``--repeat`` runs,
interleaved so that machine noise hits them alike:

- ``peer``: gunzip + split lines + ``orjson.loads`` of every line's JSON, in one thread and
  nothing else: the least any JSON-decoding importer must do.
- ``import``: ``binance_raw.run`` into a :class:`TapeWriter` (decode, book, row validation), no
  commit: the importer itself, the number the >= 300k messages/s target is about.
- ``import+commit``: ``run_import``, which adds sorting, de-duplication and the zstd Parquet
  files the writer commits.

``--profile`` prints the top of a cProfile of one ``import`` run instead.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import pstats
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from emerald.tape.importers import binance_raw, run_import
from emerald.tape.writer import TapeWriter

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "binance-raw"
FILES = [REAL / "usdm_btcusdt_20230404.dat.gz", REAL / "usdm_btcusdt_20230405.dat.gz"]


def peer() -> int:
    n = 0
    loads = orjson.loads
    for path in FILES:
        for line in gzip.decompress(path.read_bytes()).split(b"\n"):
            if line:
                loads(line[line.index(b" ") + 1:])
                n += 1
    return n


def import_only(root: Path) -> int:
    report = binance_raw.run(FILES, TapeWriter(root), venue="binance-usdm", symbol="BTCUSDT")
    return report.lines_in


def import_commit(root: Path) -> int:
    return run_import("binance-raw", FILES, root, venue="binance-usdm", symbol="BTCUSDT").lines_in


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    missing = [str(p) for p in FILES if not p.exists()]
    if missing:
        raise SystemExit(f"real captures not found: {missing}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-binance-raw-"))
    try:
        import_only(tmp / "warm-up")  # one-time costs: imports, pyarrow kernel registry
        if args.profile:
            prof = cProfile.Profile()
            prof.runcall(import_only, tmp / "profile")
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            return
        runs: dict[str, list[float]] = {"peer": [], "import": [], "import+commit": []}
        lines = 0
        for i in range(args.repeat):
            for name in runs:
                root = tmp / f"{name}-{i}"
                t0 = time.perf_counter()
                n = peer() if name == "peer" else import_only(root) if name == "import" else import_commit(root)
                runs[name].append(time.perf_counter() - t0)
                lines = lines or n
                shutil.rmtree(root, ignore_errors=True)
        print(f"{lines:,} messages (both USD-M captures), {args.repeat} runs each")
        for name, secs in runs.items():
            print(f"{name:>14}: best {lines / min(secs):>9,.0f} msg/s   median {lines / statistics.median(secs):>9,.0f} "
                  f"msg/s   ({min(secs) * 1e3:.0f} / {statistics.median(secs) * 1e3:.0f} ms)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
