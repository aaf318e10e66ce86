"""Throughput of the ``binance-raw`` importer on the real USD-M captures, with a peer baseline.

Run: ``.venv/bin/python benchmarks/bench_binance_raw.py [--repeat 9] [--profile]``

Three numbers, each in messages (lines) per second, interleaved run by run so that machine noise
hits them alike:

- ``peer``: gunzip + split lines + ``orjson.loads`` of every line's JSON, in one thread and
  nothing else: the least any JSON-decoding importer must do.
- ``import``: ``binance_raw.run`` into a :class:`TapeWriter` (decode, book, row validation), no
  commit: the importer itself, the number the >= 300k messages/s target is about.
- ``import+commit``: ``run_import``, which adds sorting, de-duplication and the zstd Parquet
  files the writer commits.

The importer runs two helper threads beside its line loop, so it needs the machine's second
core; the peer does not. Each run also records the CPU time *other* processes used meanwhile
(``/proc/stat`` busy time minus this process's), and the table shows best and median over all
runs and over the quiet ones (others used less than 10 % of the run's wall time), and the CPU
time of this process's main thread (the line loop: the part a busy machine inflates least). A
first run in the process is left out: it pays imports, pyarrow's lazy setup and loading the
compiled depth path (about 1 s).

``--profile`` prints the top of a cProfile of one ``import`` run instead.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import os
import pstats
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from emerald.tape.importers import binance_raw, run_import
from emerald.tape.writer import TapeWriter

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "binance-raw"
FILES = [REAL / "usdm_btcusdt_20230404.dat.gz", REAL / "usdm_btcusdt_20230405.dat.gz"]
QUIET = 0.10


def peer(_root: Path) -> int:
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


def busy_seconds() -> float | None:
    """CPU seconds all processes have been busy (Linux ``/proc/stat``), or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def timed(fn: Callable[[Path], int], root: Path) -> tuple[float, float | None, float, int]:
    """(wall seconds, CPU seconds of other processes meanwhile, main-thread CPU seconds, lines)."""
    busy0, cpu0, main0, t0 = busy_seconds(), time.process_time(), time.thread_time(), time.perf_counter()
    n = fn(root)
    wall, main = time.perf_counter() - t0, time.thread_time() - main0
    own, busy1 = time.process_time() - cpu0, busy_seconds()
    other = None if busy0 is None or busy1 is None else max(0.0, busy1 - busy0 - own)
    return wall, other, main, n


def line(name: str, lines: int, secs: list[float], main: list[float]) -> str:
    return (f"{name:>22}: best {lines / min(secs):>9,.0f} msg/s  median {lines / statistics.median(secs):>9,.0f} "
            f"msg/s  ({min(secs) * 1e3:.0f} / {statistics.median(secs) * 1e3:.0f} ms, {len(secs)} runs)  "
            f"main thread CPU {min(main) * 1e3:.0f} / {statistics.median(main) * 1e3:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    missing = [str(p) for p in FILES if not p.exists()]
    if missing:
        raise SystemExit(f"real captures not found: {missing}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-binance-raw-"))
    try:
        import_only(tmp / "warm-up")
        if args.profile:
            prof = cProfile.Profile()
            prof.runcall(import_only, tmp / "profile")
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            return
        fns = {"peer": peer, "import": import_only, "import+commit": import_commit}
        runs: dict[str, list[tuple[float, float | None, float]]] = {name: [] for name in fns}
        lines = 0
        for i in range(args.repeat):
            for name, fn in fns.items():
                root = tmp / f"{name}-{i}"
                wall, other, main, n = timed(fn, root)
                runs[name].append((wall, other, main))
                lines = lines or n
                shutil.rmtree(root, ignore_errors=True)
        print(f"{lines:,} messages (both USD-M captures), {os.cpu_count()} CPUs")
        for name, rs in runs.items():
            print(line(name, lines, [w for w, _, _ in rs], [m for _, _, m in rs]))
            quiet = [(w, m) for w, o, m in rs if o is not None and o < QUIET * w]
            if quiet:
                print(line(f"{name} (quiet runs)", lines, [w for w, _ in quiet], [m for _, m in quiet]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
