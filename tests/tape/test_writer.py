from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emerald.errors import ConfigError, DataError
from emerald.tape.manifest import load_manifest
from emerald.tape.writer import TapeWriter, write_tape
from emerald.testing.tapes import T0, concat, make_trades, take

V, S = "binance-usdm", "BTCUSDT"
DAY = 86_400 * 10**9


def _read_all(root: Path, kind: str = "trades") -> pa.Table:
    files = sorted((root / kind).rglob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else None


def test_valid_rows_round_trip_sorted_and_partitioned_by_utc_date(tmp_path: Path) -> None:
    data = make_trades(2000, start_ts=T0, mean_gap_ns=100 * 10**9)  # spans ~2.3 days
    perm = np.random.default_rng(1).permutation(2000)
    rep = write_tape(tmp_path, "trades", V, S, take(data, perm))
    e = rep.entries[("trades", V, S)]
    assert (e.rows_in, e.rows_written, e.duplicates, e.quarantined) == (2000, 2000, 0, {})
    dates = sorted(p.name for p in (tmp_path / "trades" / f"venue={V}" / f"symbol={S}").iterdir())
    expected_dates = sorted({str(np.datetime64(int(t), "ns").astype("datetime64[D]")) for t in data["ts_event"]})
    assert dates == [f"date={d}" for d in expected_dates]
    back = _read_all(tmp_path)
    np.testing.assert_array_equal(back.column("ts_event").to_numpy(), np.sort(data["ts_event"]))
    np.testing.assert_array_equal(back.column("trade_id").to_numpy(), data["trade_id"])  # ids follow time here
    for f in (tmp_path / "trades").rglob("*.parquet"):
        meta = pq.read_metadata(f)
        assert meta.row_group(0).column(0).compression == "ZSTD"
        assert f.name.startswith("part-")


def test_every_rule_counted_by_name(tmp_path: Path) -> None:
    d = make_trades(400)
    d["price"][10] = np.nan
    d["price"][11] = -5.0
    d["price"][12] = 0.0
    d["price"][13] = np.inf
    d["qty"][20] = -1.0
    d["qty"][21] = np.nan
    d["side"][30] = 0
    d["side"][31] = 2
    d["ts_event"][40] = 1_700_000_000_000  # milliseconds by mistake
    d["price"][200] *= 100  # x100 spike
    dup = take(d, np.array([50, 51, 52]))
    conflict = take(d, np.array([60]))
    conflict["price"] = conflict["price"] + 1.0  # same id, other content
    rep = write_tape(tmp_path, "trades", V, S, concat(d, dup, conflict))
    e = rep.entries[("trades", V, S)]
    assert e.quarantined == {
        "not_finite.price": 2, "not_positive.price": 2, "negative.qty": 1, "not_finite.qty": 1,
        "bad_side.side": 2, "ts_range.ts_event": 1, "spike.price": 1, "trade_id_conflict": 1,
    }
    assert e.duplicates == 3
    assert e.rows_in == 404 and e.rows_written == 400 - 10 and e.balanced
    # the quarantined rows are kept, by reason, with their source
    q = tmp_path / "_quarantine" / "trades" / f"venue={V}" / f"symbol={S}"
    spike = pq.read_table(next((q / "reason=spike.price").glob("*.parquet")))
    assert spike.column("price").to_pylist() == [d["price"][200]]
    assert set(spike.column("_source").to_pylist()) == {"<memory>"}
    total_q = sum(pq.read_metadata(f).num_rows for f in q.rglob("*.parquet"))
    assert total_q == sum(e.quarantined.values())
    assert load_manifest(tmp_path)["quarantine"][f"trades/{V}/{S}/spike.price"] == 1


def test_strict_mode_names_source_field_and_value(tmp_path: Path) -> None:
    d = make_trades(10)
    d["qty"][3] = -2.5
    with pytest.raises(DataError, match=r"file src\.csv.*field `qty`.*was -2\.5"):
        write_tape(tmp_path, "trades", V, S, d, strict=True, source="src.csv")


def test_missing_unknown_and_naive_columns_are_clear_errors(tmp_path: Path) -> None:
    d = make_trades(5)
    bad = dict(d)
    bad.pop("side")
    with pytest.raises(DataError, match="field `side`"):
        write_tape(tmp_path, "trades", V, S, bad)
    with pytest.raises(DataError, match="unknown column"):
        write_tape(tmp_path, "trades", V, S, {**d, "sidee": d["side"]})
    naive = pa.array(d["ts_event"].astype("datetime64[ns]"))
    with pytest.raises(DataError, match="naive timestamps are rejected.*field `ts_event`"):
        write_tape(tmp_path, "trades", V, S, pa.table({**d, "ts_event": naive}))
    with pytest.raises(ConfigError, match="venue"):
        write_tape(tmp_path, "trades", "bad/venue", S, d)


def test_aware_timestamps_are_converted_to_ns_utc(tmp_path: Path) -> None:
    d = make_trades(5)
    aware = pa.array(d["ts_event"] // 1000, pa.timestamp("us", tz="Asia/Kolkata"))
    write_tape(tmp_path, "trades", V, S, pa.table({**d, "ts_event": aware}))
    back = _read_all(tmp_path)
    np.testing.assert_array_equal(back.column("ts_event").to_numpy(), d["ts_event"] // 1000 * 1000)


def test_appending_merges_dedups_and_replaces_the_partition_atomically(tmp_path: Path) -> None:
    d = make_trades(1000)
    write_tape(tmp_path, "trades", V, S, take(d, slice(0, 600)))
    first = sorted((tmp_path / "trades").rglob("*.parquet"))
    rep = write_tape(tmp_path, "trades", V, S, take(d, slice(400, 1000)))  # 200 overlap
    e = rep.entries[("trades", V, S)]
    assert (e.rows_in, e.rows_written, e.duplicates) == (600, 400, 200)
    files = sorted((tmp_path / "trades").rglob("*.parquet"))
    assert len(files) == len(first) and files != first  # replaced, old removed
    man = load_manifest(tmp_path)
    assert sorted(man["files"]) == [f.relative_to(tmp_path).as_posix() for f in files]
    for rel, info in man["files"].items():
        assert hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest() == info["sha256"]
    np.testing.assert_array_equal(_read_all(tmp_path).column("trade_id").to_numpy(), d["trade_id"])


def test_book_rules(tmp_path: Path) -> None:
    n, depth = 4, 3
    bid_px = np.array([[100.0, 99.0, 98.0]] * n)
    ask_px = np.array([[101.0, 102.0, 103.0]] * n)
    bid_qty = np.ones((n, depth))
    ask_qty = np.ones((n, depth))
    bid_px[1, 0] = 101.5  # crossed
    ask_px[2] = [101.0, np.nan, 103.0]  # hole
    ask_qty[2, 1] = 0.0
    bid_px[3, 2] = np.nan  # a valid partial book: empty last level
    bid_qty[3, 2] = 0.0
    ts = T0 + np.arange(n) * 10**9
    rep = write_tape(tmp_path, "book", V, S, {"ts_event": ts, "ts_recv": ts, "bid_px": bid_px, "bid_qty": bid_qty,
                                             "ask_px": ask_px, "ask_qty": ask_qty})
    e = rep.entries[("book", V, S)]
    assert e.quarantined == {"crossed_book": 1, "book_levels.ask_hole": 1} and e.rows_written == 2
    t = _read_all(tmp_path, "book")
    assert t.schema.field("bid_px").type == pa.list_(pa.float64(), 3)
    assert t.schema.metadata[b"emerald.book_depth"] == b"3"


def test_funding_and_bars_rules(tmp_path: Path) -> None:
    ts = T0 + np.arange(3) * 8 * 3600 * 10**9
    rep = write_tape(tmp_path, "funding", V, S, {"ts_event": ts, "rate": [1e-4, np.nan, -2e-4],
                                                "interval_ns": [8 * 3600 * 10**9] * 3, "next_funding_ts": ts + 1,
                                                "is_settlement": [True] * 3})
    assert rep.entries[("funding", V, S)].quarantined == {"not_finite.rate": 1}
    bars = {"ts_event": ts, "interval_ns": [60 * 10**9] * 3, "open": [10.0, 10, 10], "high": [11.0, 9.5, 12],
            "low": [9.0, 9, 9], "close": [10.5, 10, 11], "volume": [1.0, 1, np.nan], "buy_volume": [np.nan] * 3,
            "sell_volume": [np.nan] * 3, "trades": [-1, -1, -1]}
    rep = write_tape(tmp_path, "bars", V, S, bars)
    assert rep.entries[("bars", V, S)].quarantined == {"bar_ohlc": 1}


# ---------------------------------------------------------------- TD3: chunking never changes the output

def _digest(root: Path) -> dict[str, str]:
    out = {}
    for f in sorted(root.rglob("*.parquet")):
        rel = f.relative_to(root).as_posix()
        if "/_source" in rel:
            continue
        t = pq.read_table(f)
        if "_source" in t.column_names:
            t = t.drop(["_source"])
        # quarantine files are named by content hash; compare by content
        out[rel.rsplit("/", 1)[0]] = hashlib.sha256(str(t.to_pydict()).encode()).hexdigest()
    return out


_BASE = make_trades(600, mean_gap_ns=400 * 10**9)  # ~2.8 days, 3-4 partitions


@settings(max_examples=25)
@given(
    cuts=st.lists(st.integers(0, 640), max_size=6),
    dup_idx=st.lists(st.integers(0, 599), max_size=10),
    bad_idx=st.lists(st.integers(0, 599), max_size=10),
    swap=st.lists(st.integers(0, 598), max_size=10),
)
def test_any_chunking_gives_the_same_tape(tmp_path_factory, cuts, dup_idx, bad_idx, swap) -> None:
    d = {k: v.copy() for k, v in _BASE.items()}
    for i in bad_idx:
        d["price"][i] = np.nan
    for i in swap:  # reorder neighbours: out-of-order input
        for k in d:
            d[k][[i, i + 1]] = d[k][[i + 1, i]]
    data = concat(d, take(d, np.array(dup_idx, dtype=np.int64)))
    n = len(data["ts_event"])
    whole, chunked = tmp_path_factory.mktemp("whole"), tmp_path_factory.mktemp("chunked")
    with TapeWriter(whole) as w:
        w.write("trades", V, S, data)
    bounds = sorted({0, n, *[min(c, n) for c in cuts]})
    with TapeWriter(chunked) as w2:
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            w2.write("trades", V, S, take(data, slice(a, b)))
    r1, r2 = w.report.entries[("trades", V, S)], w2.report.entries[("trades", V, S)]
    assert r1.to_dict() | {"files": []} == r2.to_dict() | {"files": []}
    assert r1.balanced and r1.rows_in == n
    valid = ~np.isnan(data["price"])
    assert r1.quarantined.get("not_finite.price", 0) == int((~valid).sum())
    assert r1.duplicates == int(valid.sum()) - len(np.unique(data["trade_id"][valid]))
    assert _digest(whole) == _digest(chunked)
    assert load_manifest(whole)["content_hash"] == load_manifest(chunked)["content_hash"]


def test_funding_settlement_conflicts_are_quarantined_not_kept_twice(tmp_path: Path) -> None:
    iv = 8 * 3600 * 10**9
    ts = (T0 // iv + 1) * iv + np.arange(3) * iv
    base = {"ts_event": ts, "rate": np.array([1e-4, 2e-4, 3e-4]), "interval_ns": np.full(3, iv),
            "next_funding_ts": ts + iv, "is_settlement": np.ones(3, bool)}
    write_tape(tmp_path, "funding", V, S, base)
    other = {**base, "rate": base["rate"] + 1e-8}  # same settlements, another source's rounding
    other["rate"][0] = 1e-4  # one exact duplicate
    rep = write_tape(tmp_path, "funding", V, S, other)
    e = rep.entries[("funding", V, S)]
    assert (e.rows_in, e.rows_written, e.duplicates, e.quarantined) == (3, 0, 1, {"funding_conflict": 2})
    back = _read_all(tmp_path, "funding")
    np.testing.assert_array_equal(back.column("rate").to_numpy(), base["rate"])  # the first source wins
    with pytest.raises(DataError, match="conflicts with an earlier row.*field `ts_event`"):
        write_tape(tmp_path, "funding", V, S, other, strict=True)


def test_many_partitions_commit_in_linear_time(tmp_path: Path) -> None:
    """A regression guard for the partition index: 400 daily partitions in one commit."""
    d = make_trades(400, mean_gap_ns=86_400 * 10**9)
    rep = write_tape(tmp_path, "trades", V, S, d)
    days = np.unique(d["ts_event"] // DAY)
    assert len(days) > 200
    assert len(load_manifest(tmp_path)["files"]) == len(rep.entries[("trades", V, S)].files) == len(days)
