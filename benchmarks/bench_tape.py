"""Tape write/read throughput, side by side with plain pyarrow in the same process.

    .venv/bin/python benchmarks/bench_tape.py [--rows 5000000] [--repeat 3]

Goals (issue 2): writing trades with validation >= 5 M rows/s; reading one symbol-day back
>= 20 M rows/s. Best of ``--repeat`` runs is reported (the machine is noisy).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from emerald.tape.reader import Tape
from emerald.tape.writer import TapeWriter
from emerald.testing.tapes import make_trades

V, S = "binance-usdm", "BTCUSDT"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.rows
    # one UTC day of trades (n rows spread over 86,400 s)
    data = make_trades(n, start_ts=1_700_006_400_000_000_000, mean_gap_ns=max(1, 86_400 * 10**9 // (n + n // 50)))
    table = pa.table(data)
    base = Path(tempfile.mkdtemp(prefix="emerald-bench-"))
    try:
        def ours_write() -> None:
            root = base / "ours"
            shutil.rmtree(root, ignore_errors=True)
            with TapeWriter(root) as w:
                w.write("trades", V, S, table)
            assert w.report.entries[("trades", V, S)].rows_written == n

        def peer_write() -> None:
            root = base / "peer"
            shutil.rmtree(root, ignore_errors=True)
            t = table.append_column("date", pa.array(np.full(n, "2023-11-15")))
            pq.write_to_dataset(t, root, partition_cols=["date"])

        t_ours = best(ours_write, args.repeat)
        t_peer = best(peer_write, args.repeat)
        tape = Tape(base / "ours")
        entries = tape.entries("trades", V, S)
        day = entries[0].date
        rows_day = entries[0].rows

        def ours_read() -> None:
            assert Tape(base / "ours").read_arrow("trades", V, S, start=day, with_ids=False).num_rows == rows_day

        def ours_numpy() -> None:
            assert Tape(base / "ours").read_numpy("trades", V, S, start=day).size == rows_day

        def ours_polars() -> None:
            assert Tape(base / "ours").scan("trades", V, S, start=day).collect().height == rows_day

        def peer_read() -> None:
            pq.read_table(base / "ours" / entries[0].rel)

        r = {name: best(fn, args.repeat) for name, fn in
             [("ours_arrow", ours_read), ("ours_numpy", ours_numpy), ("ours_polars", ours_polars), ("peer", peer_read)]}
        print(f"rows: {n:,} (one symbol-day file: {rows_day:,} rows)")
        print(f"write  emerald TapeWriter (validate+dedup+sort+zstd+fsync+manifest): {n / t_ours / 1e6:6.2f} M rows/s"
              f"   goal >= 5.0")
        print(f"write  plain pyarrow write_to_dataset (no validation, snappy):       {n / t_peer / 1e6:6.2f} M rows/s")
        for name, t in r.items():
            label = {"ours_arrow": "read   emerald Tape.read_arrow (footer-verified)",
                     "ours_numpy": "read   emerald Tape.read_numpy (record array)  ",
                     "ours_polars": "read   emerald Tape.scan().collect() (polars)  ",
                     "peer": "read   plain pyarrow.parquet.read_table         "}[name]
            goal = "   goal >= 20.0" if name == "ours_arrow" else ""
            print(f"{label}:                  {rows_day / t / 1e6:6.2f} M rows/s{goal}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
