"""Tiny, seeded tape builders for tests and benchmarks."""

from __future__ import annotations

from typing import Any

import numpy as np

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


def make_trades(n: int, *, seed: int = 0, start_ts: int = T0, mean_gap_ns: int = 50_000_000,
                price0: float = 30_000.0) -> dict[str, np.ndarray]:
    """``n`` valid, time-sorted trades with increasing ids (a random walk in price)."""
    rng = np.random.default_rng(seed)
    ts = start_ts + np.cumsum(rng.exponential(mean_gap_ns, n).astype(np.int64))
    price = np.round(price0 * np.exp(np.cumsum(rng.normal(0, 2e-5, n))), 1)
    return {
        "ts_event": ts,
        "ts_recv": ts + 1_000_000,
        "price": price,
        "qty": np.round(rng.lognormal(-4, 1.0, n), 3) + 0.001,
        "side": np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8),
        "trade_id": np.arange(1, n + 1, dtype=np.int64) + 1_000_000,
    }


def take(data: dict[str, np.ndarray], idx: np.ndarray | slice) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[idx] for k, v in data.items()}


def concat(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def iso_ns(text: str) -> int:
    """int64 ns of an ISO time; a time without a zone is read as UTC (test convenience only)."""
    import pandas as pd

    t = pd.Timestamp(text)
    return int((t.tz_localize("UTC") if t.tzinfo is None else t).value)


def read_partitions(root: Any, kind: str, venue: str, symbol: str) -> Any:
    """All rows of one instrument's ``kind`` straight from its partition files (polars, sorted by
    ``ts_event``, stable) — bypasses the reader so importer tests check the files themselves."""
    from pathlib import Path

    import polars as pl

    files = sorted((Path(root) / kind / f"venue={venue}" / f"symbol={symbol}").glob("date=*/*.parquet"))
    assert files, f"no {kind} files for {venue}/{symbol} under {root}"
    return pl.concat([pl.read_parquet(f) for f in files]).sort("ts_event", maintain_order=True)


def assert_import_conserved(report: Any) -> None:
    """Lines in == parsed + rejected, and rows in == written + duplicates + quarantined per kind."""
    assert report.lines_in == report.lines_parsed + sum(report.lines_rejected.values()), report.to_dict()
    for e in report.write.entries.values():
        assert e.rows_in == e.rows_written + e.duplicates + sum(e.quarantined.values()), e.to_dict()
