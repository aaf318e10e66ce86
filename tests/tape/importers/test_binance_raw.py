"""binance-raw importer: the real captures in ``../shared/data/real/binance-raw`` and hand-written
fixtures in ``tests/data/binance`` (payloads shaped after Binance's USD-M WebSocket docs, see the
README there).

Expected values come from the raw files themselves (gzip + string operations + the stdlib ``json``
module), from Binance's own funding history export and from the data README, never from the
importer.
"""

from __future__ import annotations

import csv
import functools
import gzip
import heapq
import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow.parquet as pq
import pytest

from emerald.errors import ConfigError, DataError
from emerald.tape.importers import run_import

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "binance"
MS = 1_000_000
US = 1_000
SETTLEMENT_MS = 1_680_652_800_000  # 2023-04-05T00:00:00Z


# --------------------------------------------------------------------------------------------
# independent helpers: raw lines, a naive order book


def raw_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [line for line in data.split(b"\n") if line]


def recv_us(line: bytes) -> int:
    return int(line.split(b" ", 1)[0])


def payload(line: bytes) -> dict[str, Any]:
    return json.loads(line.split(b" ", 1)[1])


def is_depth(line: bytes) -> bool:
    return b'"e":"depthUpdate"' in line


_price = functools.cache(float)


def naive_top(bids: dict[str, str], asks: dict[str, str], n: int = 20) -> tuple[list[tuple[float, float]], ...]:
    """Top ``n`` levels ranked over the whole book each time (slow and obviously right)."""
    b = heapq.nlargest(n, bids, key=_price)
    a = heapq.nsmallest(n, asks, key=_price)
    return [(float(p), float(bids[p])) for p in b], [(float(p), float(asks[p])) for p in a]


def naive_apply(side: dict[str, str], levels: list[list[str]]) -> None:
    for p, q in levels:
        if float(q) == 0:
            side.pop(p, None)
        else:
            side[p] = q


def row_levels(table: Any, i: int) -> tuple[list[tuple[float, float]], ...]:
    """Filled levels of book row ``i``; also checks that empty levels are NaN / 0 and trailing."""
    out = []
    for px_col, qty_col in (("bid_px", "bid_qty"), ("ask_px", "ask_qty")):
        px = np.array(table.column(px_col)[i].as_py())
        qty = np.array(table.column(qty_col)[i].as_py())
        filled = ~np.isnan(px)
        assert filled.sum() == 0 or filled[: filled.sum()].all(), "empty levels must be trailing"
        assert (qty[~filled] == 0).all()
        out.append(list(zip(px[filled].tolist(), qty[filled].tolist(), strict=True)))
    return out[0], out[1]


def table(root: Path, kind: str, venue: str, symbol: str = "BTCUSDT") -> Any:
    return pq.read_table(root / kind / f"venue={venue}" / f"symbol={symbol}")


def write_capture(path: Path, lines: list[bytes], *, members: int = 1) -> Path:
    """Write lines as a capture file: plain for ``.dat``, gzip (``members`` members) for ``.gz``."""
    cut = np.linspace(0, len(lines), members + 1).astype(int)
    parts = [b"".join(line + b"\n" for line in lines[a:b]) for a, b in zip(cut[:-1], cut[1:], strict=True)]
    path.write_bytes(b"".join(map(gzip.compress, parts)) if path.suffix == ".gz" else b"".join(parts))
    return path


def assert_conserved(report: Any) -> None:
    assert report.lines_balanced
    assert report.lines_in == report.lines_parsed + sum(report.lines_rejected.values())
    assert report.write.balanced
    for e in report.write.entries.values():
        assert e.rows_in == e.rows_written + e.duplicates + sum(e.quarantined.values()), e
    book = report.book.get("book")
    if book:
        assert book["events"] == (book["events_applied"] + book["events_before_snapshot"]
                                  + book["events_dropped_invalid"] + book["events_stale"])


# --------------------------------------------------------------------------------------------
# the real captures


@pytest.fixture(scope="module")
def usdm_files(real_data: Path) -> list[Path]:
    return [real_data / "binance-raw" / f"usdm_btcusdt_2023040{d}.dat.gz" for d in (4, 5)]


@pytest.fixture(scope="module")
def usdm(usdm_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("usdm")
    report = run_import("binance-raw", usdm_files, root, venue="binance-usdm", symbol="BTCUSDT")
    return root, report


@pytest.fixture(scope="module")
def usdm_lines(usdm_files: list[Path]) -> list[bytes]:
    return [line for f in usdm_files for line in raw_lines(f)]


def test_usdm_acceptance_counts(usdm: tuple[Path, Any], usdm_lines: list[bytes]) -> None:
    root, report = usdm
    # 12,935 per the data README, and counted here with plain string operations
    n_trades = sum(b'"e":"trade"' in line for line in usdm_lines)
    assert n_trades == 12_935
    assert report.write.entries[("trades", "binance-usdm", "BTCUSDT")].rows_written == n_trades
    assert report.lines_in == len(usdm_lines) == 73_765
    assert report.lines_rejected == {} and report.unhandled == {}
    book = report.book["book"]
    assert book["gaps"] == 0 and book["resyncs"] == 0 and book["partial"] is False
    assert book["snapshots"] == 1 == sum(b'"lastUpdateId"' in line for line in usdm_lines)
    assert book["events"] == book["events_applied"] == sum(map(is_depth, usdm_lines))
    assert_conserved(report)
    quotes = report.write.entries[("quotes", "binance-usdm", "BTCUSDT")]
    assert quotes.rows_written == sum(b"@bookTicker" in line for line in usdm_lines)


def test_trades_match_raw_messages(usdm: tuple[Path, Any], usdm_lines: list[bytes]) -> None:
    t = table(usdm[0], "trades", "binance-usdm").sort_by("trade_id")
    raw = sorted(((payload(line)["data"], recv_us(line)) for line in usdm_lines if b'"e":"trade"' in line),
                 key=lambda x: x[0]["t"])
    assert t.column("trade_id").to_pylist() == [d["t"] for d, _ in raw]
    assert t.column("ts_event").to_pylist() == [d["T"] * MS for d, _ in raw]
    assert t.column("ts_recv").to_pylist() == [r * US for _, r in raw]
    assert t.column("price").to_pylist() == [float(d["p"]) for d, _ in raw]
    assert t.column("qty").to_pylist() == [float(d["q"]) for d, _ in raw]
    # m true: the buyer was the maker, so the seller was the aggressor
    assert t.column("side").to_pylist() == [-1 if d["m"] else 1 for d, _ in raw]
    first = json.loads(b'{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT","t":3535186032,'
                       b'"p":"28145.10","q":"0.002","X":"MARKET","m":true}')  # line 2 of the first file
    row = t.filter(t.column("trade_id").to_numpy() == first["t"]).to_pylist()[0]
    assert (row["side"], row["price"], row["qty"]) == (-1, 28145.1, 0.002)


def test_quotes_match_raw_messages(usdm: tuple[Path, Any], usdm_lines: list[bytes]) -> None:
    q = table(usdm[0], "quotes", "binance-usdm")
    raw = sorted(((payload(line)["data"], recv_us(line)) for line in usdm_lines if b"@bookTicker" in line),
                 key=lambda x: (x[0]["T"], x[1]))
    order = np.lexsort((q.column("ts_recv").to_numpy(), q.column("ts_event").to_numpy()))
    q = q.take(order)
    assert q.column("ts_event").to_pylist() == [d["T"] * MS for d, _ in raw]
    assert q.column("ts_recv").to_pylist() == [r * US for _, r in raw]
    for col, key in (("bid_px", "b"), ("bid_qty", "B"), ("ask_px", "a"), ("ask_qty", "A")):
        assert q.column(col).to_pylist() == [float(d[key]) for d, _ in raw]


def test_funding_settlement_matches_binance_history(usdm: tuple[Path, Any], usdm_lines: list[bytes],
                                                   real_data: Path) -> None:
    f = table(usdm[0], "funding", "binance-usdm").to_pylist()
    settled = [r for r in f if r["is_settlement"]]
    assert [r["ts_event"] for r in settled] == [SETTLEMENT_MS * MS]
    assert settled[0]["rate"] == 2.760e-05
    assert settled[0]["next_funding_ts"] == (SETTLEMENT_MS + 8 * 3_600_000) * MS
    assert all(r["interval_ns"] == 8 * 3_600 * 10**9 for r in f)

    # Binance's website export: BOM, Europe/London wall time, percent strings; parsed by hand
    raw = (real_data / "funding" / "binance_btcusdt_funding_history_export.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    london = datetime.strptime("2023-04-05 01:00:00", "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/London"))
    assert london.utcoffset() == timedelta(hours=1)  # BST in April
    hist = next(r for r in rows if r["Time"] == "2023-04-05 01:00:00")
    assert int(london.timestamp() * 1000) == SETTLEMENT_MS
    assert math.isclose(float(hist["Funding Rate"].rstrip("%")) / 100, settled[0]["rate"], rel_tol=1e-12)

    # the rule: the last r published while T still equalled the settlement time
    marks = [payload(line)["data"] for line in usdm_lines if b"@markPrice" in line]
    last_at_t = [m for m in marks if m["T"] == SETTLEMENT_MS][-1]
    assert last_at_t["E"] - SETTLEMENT_MS == 10 and float(last_at_t["r"]) == settled[0]["rate"]
    # published rows: the first message and each change of (r, T)
    changes = [m for i, m in enumerate(marks) if i == 0 or (m["r"], m["T"]) != (marks[i - 1]["r"], marks[i - 1]["T"])]
    published = [r for r in f if not r["is_settlement"]]
    assert [(r["ts_event"], r["rate"], r["next_funding_ts"]) for r in published] == \
        [(m["E"] * MS, float(m["r"]), m["T"] * MS) for m in changes]


def test_settled_rate_is_the_last_published_under_the_old_next_funding_time(tmp_path: Path) -> None:
    """Hand-written: r changes on the very message where T advances (the real capture cannot tell)."""
    report = run_import("binance-raw", [FIXTURES / "mark_price_funding.dat"], tmp_path)
    assert_conserved(report)
    f = table(tmp_path, "funding", "binance-usdm").to_pylist()  # venue inferred from markPrice
    t0, t1 = 1680652800000 * MS, 1680681600000 * MS
    assert [(r["ts_event"], r["rate"], r["next_funding_ts"], r["is_settlement"]) for r in f] == [
        (1680652790000 * MS, 0.0001, t0, False),
        (1680652799000 * MS, 0.00012, t0, False),
        (t0, 0.000125, t1, True),                     # settled: last r while T == 00:00
        (1680652800005 * MS, 0.000125, t0, False),
        (1680652801000 * MS, 0.00003, t1, False),
        (1680652803000 * MS, 0.000031, t1, False),    # the repeat at ...802000 adds nothing
    ]
    # the delivery contract has a mark price but no funding
    assert table(tmp_path, "prices", "binance-usdm", "BTCUSDT_230630").column("mark").to_pylist() == [28455.1]
    assert ("funding", "binance-usdm", "BTCUSDT_230630") not in report.write.entries


def test_prices_from_mark_price(usdm: tuple[Path, Any], usdm_lines: list[bytes]) -> None:
    p = table(usdm[0], "prices", "binance-usdm")
    marks = [payload(line)["data"] for line in usdm_lines if b"@markPrice" in line]
    assert p.column("ts_event").to_pylist() == [m["E"] * MS for m in marks]
    assert p.column("mark").to_pylist() == [float(m["p"]) for m in marks]
    assert p.column("index").to_pylist() == [float(m["i"]) for m in marks]
    assert np.isnan(p.column("spot_ref").to_numpy()).all()


def _asof_agreement(book: Any, quotes: Any, key: str) -> float:
    """Share of book rows whose best bid and ask equal the last quote at or before them."""
    qt = quotes.column(key).to_numpy()
    order = np.argsort(qt, kind="stable")
    i = np.searchsorted(qt[order], book.column(key).to_numpy(), side="right") - 1
    ok = i >= 0
    best_bid = np.array([r[0] for r in book.column("bid_px").to_pylist()])
    best_ask = np.array([r[0] for r in book.column("ask_px").to_pylist()])
    qb, qa = quotes.column("bid_px").to_numpy()[order][i], quotes.column("ask_px").to_numpy()[order][i]
    return float(((best_bid == qb) & (best_ask == qa))[ok].mean())


def check_book_rows(book: Any, depth: int = 20) -> None:
    bp = np.array(book.column("bid_px").to_pylist())
    ap = np.array(book.column("ask_px").to_pylist())
    assert bp.shape == (book.num_rows, depth)
    for i in range(book.num_rows):
        bids, asks = row_levels(book, i)
        assert all(a[0] > b[0] for a, b in zip(bids, bids[1:], strict=False)), "bids descending"
        assert all(a[0] < b[0] for a, b in zip(asks, asks[1:], strict=False)), "asks ascending"
        assert all(q > 0 for _, q in bids + asks)
    assert (bp[:, 0] < ap[:, 0]).all(), "best bid < best ask"


def test_book_rows_consistent_and_agree_with_book_ticker(usdm: tuple[Path, Any]) -> None:
    book = table(usdm[0], "book", "binance-usdm")
    quotes = table(usdm[0], "quotes", "binance-usdm")
    check_book_rows(book)
    # at most one row per 100 ms of event time
    assert (np.diff(book.column("ts_event").to_numpy()) >= 100 * MS).all()
    # Tolerance: >= 99 % of rows have exactly the bookTicker's best bid and ask as of the same
    # receive time, and as of the same transaction time (measured: 100 % and 99.98 %).
    assert _asof_agreement(book, quotes, "ts_recv") >= 0.99
    assert _asof_agreement(book, quotes, "ts_event") >= 0.99


def test_book_rows_equal_a_naive_rebuild(usdm: tuple[Path, Any], usdm_files: list[Path]) -> None:
    """Every row of the first capture file equals the top 20 of a book rebuilt naively."""
    book = table(usdm[0], "book", "binance-usdm")
    rows = {(te, tr): i for i, (te, tr) in enumerate(zip(book.column("ts_event").to_pylist(),
                                                         book.column("ts_recv").to_pylist(), strict=True))}
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    checked = 0
    for line in raw_lines(usdm_files[0]):
        obj = payload(line)
        if "lastUpdateId" in obj:
            bids, asks = dict(map(tuple, obj["bids"])), dict(map(tuple, obj["asks"]))
            key = (obj["T"] * MS, recv_us(line) * US)
        elif is_depth(line):
            d = obj["data"]
            naive_apply(bids, d["b"])
            naive_apply(asks, d["a"])
            key = (d["T"] * MS, recv_us(line) * US)
        else:
            continue
        if key in rows:
            assert row_levels(book, rows[key]) == naive_top(bids, asks)
            checked += 1
    second_file_start = recv_us(raw_lines(usdm_files[1])[0]) * US
    assert checked == int((book.column("ts_recv").to_numpy() < second_file_start).sum()) > 800


# --------------------------------------------------------------------------------------------
# book sync: gaps, resyncs, events before the snapshot (excerpts built from the real file)


@pytest.fixture(scope="module")
def excerpt(usdm_files: list[Path]) -> list[bytes]:
    lines = raw_lines(usdm_files[0])[:300]
    assert b'"lastUpdateId"' in lines[16]  # line 17, as the README says
    return lines


def depth_positions(lines: list[bytes]) -> list[int]:
    return [i for i, line in enumerate(lines) if is_depth(line)]


def rest_snapshot(lines: list[bytes], upto: int, last_update_id: int, t_ms: int) -> bytes:
    """A REST snapshot line (spaced JSON like the real one) holding the naive book after
    applying the real snapshot and every depth event of ``lines[:upto]``."""
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    for line in lines[:upto]:
        obj = payload(line)
        if "lastUpdateId" in obj:
            bids, asks = dict(map(tuple, obj["bids"])), dict(map(tuple, obj["asks"]))
        elif is_depth(line):
            naive_apply(bids, obj["data"]["b"])
            naive_apply(asks, obj["data"]["a"])
    snap = {"lastUpdateId": last_update_id, "E": t_ms, "T": t_ms,
            "bids": sorted(bids.items(), key=lambda x: -float(x[0])), "asks": sorted(asks.items(), key=lambda x: float(x[0]))}
    return str(recv_us(lines[upto - 1])).encode() + b" " + json.dumps(snap).encode()


def assert_rows_match_naive_book(rows: Any, lines: list[bytes], *, after_recv: int = 0) -> int:
    """Each row received at or after ``after_recv`` equals the naive top 20 after the depth event
    it is stamped with (its ``(T, receive time)``); returns how many rows were checked."""
    want = {(te, tr): i for i, (te, tr) in enumerate(zip(rows.column("ts_event").to_pylist(),
                                                         rows.column("ts_recv").to_pylist(), strict=True))
            if tr >= after_recv}
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    checked = 0
    for line in lines:
        obj = payload(line)
        if "lastUpdateId" in obj:
            bids, asks = dict(map(tuple, obj["bids"])), dict(map(tuple, obj["asks"]))
        elif is_depth(line):
            naive_apply(bids, obj["data"]["b"])
            naive_apply(asks, obj["data"]["a"])
            key = (obj["data"]["T"] * MS, recv_us(line) * US)
            if key in want:
                assert row_levels(rows, want.pop(key)) == naive_top(bids, asks), key
                checked += 1
    return checked


def test_gap_marks_book_invalid_until_resync(excerpt: list[bytes], tmp_path: Path) -> None:
    depth = depth_positions(excerpt)
    assert depth[0] == 17  # the first depth event follows the snapshot
    dropped, resync_before = depth[5], depth[41]
    resync = rest_snapshot(excerpt, resync_before, payload(excerpt[resync_before])["data"]["U"],
                           payload(excerpt[resync_before - 1])["data"]["T"])
    lines = excerpt[:dropped] + excerpt[dropped + 1:resync_before] + [resync] + excerpt[resync_before:]
    path = write_capture(tmp_path / "gap.dat.gz", lines, members=2)  # also a multi-member gzip
    report: Any = run_import("binance-raw", [path], tmp_path / "tape")  # venue inferred from `pu`
    assert_conserved(report)
    book = report.book["book"]
    n_events = len(depth) - 1
    assert (book["gaps"], book["resyncs"], book["snapshots"]) == (1, 1, 2)
    assert book["events"] == n_events
    # events 6..40 come after the gap and are older than the resync snapshot
    assert book["events_dropped_invalid"] == 35
    assert book["events_applied"] == n_events - 35
    rows = table(tmp_path / "tape", "book", "binance-usdm")
    recv = rows.column("ts_recv").to_numpy()
    gap_seen = recv_us(excerpt[depth[6]]) * US  # the event whose pu does not chain
    resync_recv = recv_us(resync) * US
    assert not ((recv >= gap_seen) & (recv < resync_recv)).any(), "no rows while the book is invalid"
    assert (recv < gap_seen).any() and (recv >= resync_recv).any()
    # before the gap and after the resync the rows are the naive book of the whole excerpt (the
    # resync row itself is stamped with the snapshot, not with an event)
    assert assert_rows_match_naive_book(rows, excerpt) >= rows.num_rows - 2
    assert report.write.entries[("book", "binance-usdm", "BTCUSDT")].rows_written == book["rows"]


def test_gap_without_resync_emits_nothing_after_it(excerpt: list[bytes], tmp_path: Path) -> None:
    depth = depth_positions(excerpt)
    lines = excerpt[:depth[5]] + excerpt[depth[5] + 1:]
    report = run_import("binance-raw", [write_capture(tmp_path / "gap.dat", lines)], tmp_path / "tape",
                        venue="binance-usdm")
    assert_conserved(report)
    book = report.book["book"]
    assert (book["gaps"], book["resyncs"]) == (1, 0)
    assert book["events_applied"] == 5
    assert book["events_dropped_invalid"] == len(depth) - 1 - 5
    recv = table(tmp_path / "tape", "book", "binance-usdm").column("ts_recv").to_numpy()
    assert recv.max() < recv_us(excerpt[depth[6]]) * US


def test_events_before_a_late_snapshot_are_buffered(excerpt: list[bytes], tmp_path: Path) -> None:
    """A snapshot written after some diff events: the older ones are dropped, the rest replayed."""
    depth = depth_positions(excerpt)
    snap = rest_snapshot(excerpt, depth[9], payload(excerpt[depth[9]])["data"]["U"],
                         payload(excerpt[depth[8]])["data"]["T"])
    body = [line for line in excerpt if b'"lastUpdateId"' not in line]
    at = body.index(excerpt[depth[12]]) + 1
    report = run_import("binance-raw", [write_capture(tmp_path / "late.dat", body[:at] + [snap] + body[at:])],
                        tmp_path / "tape", venue="binance-usdm")
    assert_conserved(report)
    book = report.book["book"]
    assert (book["gaps"], book["resyncs"], book["events_before_snapshot"]) == (0, 0, 9)
    assert book["events_applied"] == len(depth) - 9
    rows = table(tmp_path / "tape", "book", "binance-usdm")
    assert assert_rows_match_naive_book(rows, excerpt) >= rows.num_rows - 1 > 10  # the snapshot's row aside


def test_usdm_snapshot_equal_to_an_events_last_id(excerpt: list[bytes], tmp_path: Path) -> None:
    """USD-M rule U <= lastUpdateId <= u: the event whose u equals the snapshot's id is applied
    (under the spot rule, U <= id + 1 <= u, it would not straddle and the book would gap)."""
    depth = depth_positions(excerpt)
    k = depth[20]
    snap = rest_snapshot(excerpt, k + 1, payload(excerpt[k])["data"]["u"], payload(excerpt[k])["data"]["T"])
    body = [line for line in excerpt if b'"lastUpdateId"' not in line]
    at = body.index(excerpt[k])
    report = run_import("binance-raw", [write_capture(tmp_path / "x.dat", body[:at] + [snap] + body[at:])],
                        tmp_path / "tape", venue="binance-usdm")
    book = report.book["book"]
    assert (book["gaps"], book["events_before_snapshot"], book["events_applied"]) == (0, 20, len(depth) - 20)
    rows = table(tmp_path / "tape", "book", "binance-usdm")
    assert assert_rows_match_naive_book(rows, excerpt) >= rows.num_rows - 1 > 10


def test_repeated_depth_message_is_stale_not_a_gap(excerpt: list[bytes], tmp_path: Path) -> None:
    depth = depth_positions(excerpt)
    lines = excerpt[:depth[10] + 1] + [excerpt[depth[10]]] + excerpt[depth[10] + 1:]
    report = run_import("binance-raw", [write_capture(tmp_path / "x.dat", lines)], tmp_path / "tape",
                        venue="binance-usdm")
    assert_conserved(report)
    book = report.book["book"]
    assert (book["gaps"], book["events_stale"], book["events_applied"]) == (0, 1, len(depth))


# --------------------------------------------------------------------------------------------
# spot: no snapshot, partial book


@pytest.fixture(scope="module")
def spot(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, list[bytes]]:
    path = real_data / "binance-raw" / "spot_btcusdt_20230405.dat.gz"
    root = tmp_path_factory.mktemp("spot")
    return root, run_import("binance-raw", [path], root), raw_lines(path)


def test_spot_capture(spot: tuple[Path, Any, list[bytes]]) -> None:
    root, report, lines = spot
    assert_conserved(report)
    n_trades = sum(b'"e":"trade"' in line for line in lines)
    assert n_trades == 3_144  # README
    # venue inferred: depth events without `pu`, no markPrice
    assert report.write.entries[("trades", "binance-spot", "BTCUSDT")].rows_written == n_trades
    book = report.book["book"]
    assert book["partial"] is True and book["rows_partial"] == book["rows"] > 0
    assert book["snapshots"] == 0 and book["seeds"] == 1 and book["gaps"] == 0
    assert book["events"] == sum(map(is_depth, lines))
    assert any("book is partial" in n for n in report.notes)
    assert any("quotes.ts_event = the local receive time" in n for n in report.notes)
    quotes = table(root, "quotes", "binance-spot")
    assert quotes.column("ts_event").equals(quotes.column("ts_recv"))
    rows = table(root, "book", "binance-spot")
    check_book_rows(rows)
    # the partial book still has the bookTicker's touch (>= 99 %, measured 100 %)
    assert _asof_agreement(rows, quotes, "ts_recv") >= 0.99


def test_spot_trade_sides(spot: tuple[Path, Any, list[bytes]]) -> None:
    root, _, lines = spot
    t = table(root, "trades", "binance-spot").sort_by("trade_id")
    raw = sorted((payload(line)["data"] for line in lines if b'"e":"trade"' in line), key=lambda d: d["t"])
    assert t.column("side").to_pylist() == [-1 if d["m"] else 1 for d in raw]
    assert t.column("ts_event").to_pylist() == [d["T"] * MS for d in raw]


# --------------------------------------------------------------------------------------------
# bad lines, strict mode, the two decoding paths


@pytest.mark.parametrize("kind", [b"@bookTicker", b'"e":"trade"', b'"e":"depthUpdate"'])
def test_corrupt_line(excerpt: list[bytes], tmp_path: Path, kind: bytes) -> None:
    lines = list(excerpt)
    n = next(i for i, line in enumerate(lines) if i > 100 and kind in line)
    lines[n] = lines[n][: len(lines[n]) // 2]  # cut in the middle: bad JSON
    path = write_capture(tmp_path / "bad.dat", lines)
    with pytest.raises(DataError) as e:
        run_import("binance-raw", [path], tmp_path / "strict", strict=True, venue="binance-usdm")
    assert e.value.path == str(path) and e.value.line == n + 1
    assert f"line {n + 1}" in str(e.value) and str(path) in str(e.value)

    report = run_import("binance-raw", [path], tmp_path / "lenient", venue="binance-usdm")
    assert_conserved(report)
    assert report.lines_rejected == {"bad_json": 1}
    kept = [json.loads(x) for f in (tmp_path / "lenient" / "_quarantine" / "_lines").rglob("*.jsonl")
            for x in f.read_text().splitlines()]
    assert [(k["path"], k["line"]) for k in kept] == [(str(path), n + 1)]
    if kind == b'"e":"depthUpdate"':  # a lost diff event breaks the chain
        assert report.book["book"]["gaps"] == 1


def test_strict_and_bulk_paths_write_the_same_tape(usdm_files: list[Path], tmp_path: Path) -> None:
    reports = [run_import("binance-raw", usdm_files[:1], tmp_path / str(s), strict=s) for s in (False, True)]
    for kind in ("trades", "quotes", "book", "prices", "funding"):
        a, b = (table(tmp_path / str(s), kind, "binance-usdm").to_pandas() for s in (False, True))
        assert len(a) > 0 and a.equals(b), kind
    assert reports[0].to_dict()["kinds"] == reports[1].to_dict()["kinds"]


def test_blank_line_and_bad_timestamp(tmp_path: Path) -> None:
    lines = raw_lines(FIXTURES / "trade_and_aggtrade.dat")
    lines[1:1] = [b"", b"abc " + lines[0].split(b" ", 1)[1], b"1680652863 " + lines[0].split(b" ", 1)[1]]
    report = run_import("binance-raw", [write_capture(tmp_path / "x.dat", lines)], tmp_path / "t")
    assert_conserved(report)
    # the seconds timestamp is out of the µs range: rejected, not misread
    assert report.lines_rejected == {"empty_line": 1, "bad_timestamp": 2}


def test_truncated_gzip(excerpt: list[bytes], tmp_path: Path) -> None:
    full = write_capture(tmp_path / "full.dat.gz", excerpt).read_bytes()
    path = tmp_path / "cut.dat.gz"
    path.write_bytes(full[: len(full) - 200])
    report = run_import("binance-raw", [path], tmp_path / "t", venue="binance-usdm")
    assert_conserved(report)
    assert any("truncated" in n for n in report.notes)
    assert 0 < report.lines_in < len(excerpt)
    with pytest.raises(DataError, match="truncated"):
        run_import("binance-raw", [path], tmp_path / "s", venue="binance-usdm", strict=True)


# --------------------------------------------------------------------------------------------
# hand-written fixtures: liquidations, klines, aggTrade, unhandled streams


def test_fixture_streams(tmp_path: Path) -> None:
    report = run_import("binance-raw", [FIXTURES / "usdm_streams.dat"], tmp_path, venue="binance-usdm")
    assert_conserved(report)
    assert (report.lines_in, report.lines_parsed) == (10, 10)
    assert report.unhandled == {"kline.open": 1, "ticker": 1, "depth20": 1}
    liq = table(tmp_path, "liquidations", "binance-usdm").to_pylist()
    assert [(r["ts_event"], r["side"], r["price"], r["qty"]) for r in liq] == [
        (1680652859998 * MS, -1, 28110.2, 0.014),   # SELL: a long was liquidated; price = ap
        (1680652860999 * MS, 1, 28190.0, 0.25),     # BUY, ap "0" (not filled yet): price = p
    ]
    eth = table(tmp_path, "liquidations", "binance-usdm", "ETHUSDT").to_pylist()
    assert [(r["ts_event"], r["side"], r["price"], r["qty"]) for r in eth] == [(1680652861997 * MS, -1, 1891.3, 1.5)]
    bars = table(tmp_path, "bars", "binance-usdm").to_pylist()
    assert [(b["ts_event"], b["interval_ns"], b["open"], b["high"], b["low"], b["close"], b["trades"]) for b in bars] == [
        (1680652800000 * MS, 3_600 * 10**9, 28155.0, 28230.9, 28080.0, 28120.3, 110001),
        (1680652860000 * MS, 60 * 10**9, 28150.1, 28170.0, 28140.2, 28162.0, 121),  # the closed one
    ]
    assert [(b["volume"], b["buy_volume"]) for b in bars] == [(9876.543, 4321.0), (13.5, 8.25)]
    assert math.isclose(bars[0]["sell_volume"], 9876.543 - 4321.0) and bars[1]["sell_volume"] == 5.25
    trades = table(tmp_path, "trades", "binance-usdm").to_pylist()  # aggTrade, no trade stream
    assert [(t["trade_id"], t["side"], t["price"], t["qty"], t["ts_event"]) for t in trades] == [
        (1668000001, -1, 28151.3, 0.12, 1680652863001 * MS), (1668000002, 1, 28151.4, 0.005, 1680652863101 * MS)]


def test_venue_inference(tmp_path: Path) -> None:
    # neither depth nor markPrice: the documented default, with a note
    report: Any = run_import("binance-raw", [FIXTURES / "usdm_streams.dat"], tmp_path)
    assert {v for _, v, _ in report.write.entries} == {"binance-spot"}
    assert any("venue inferred as binance-spot" in n for n in report.notes)


def test_trade_and_aggtrade_streams_do_not_double_count(tmp_path: Path) -> None:
    report = run_import("binance-raw", [FIXTURES / "trade_and_aggtrade.dat"], tmp_path, venue="binance-usdm")
    assert_conserved(report)
    t = table(tmp_path, "trades", "binance-usdm")
    assert t.column("trade_id").to_pylist() == [3535200010, 3535200011, 3535200012]
    assert report.unhandled == {"aggTrade": 2}
    assert any("aggTrade" in n and "twice" in n for n in report.notes)


def test_symbol_filter(tmp_path: Path) -> None:
    report: Any = run_import("binance-raw", [FIXTURES / "usdm_streams.dat"], tmp_path, venue="binance-usdm",
                             symbol="ethusdt")
    assert_conserved(report)
    assert {s for _, _, s in report.write.entries} == {"ETHUSDT"}
    assert report.unhandled == {"other_symbol": 7, "ticker": 1, "depth20": 1}


def test_options(excerpt: list[bytes], tmp_path: Path) -> None:
    path = write_capture(tmp_path / "x.dat", excerpt)
    run_import("binance-raw", [path], tmp_path / "default", venue="binance-usdm")
    report = run_import("binance-raw", [path], tmp_path / "d5", venue="binance-usdm", depth=5, book_interval_ms=0,
                        funding_interval_h=4)
    book = table(tmp_path / "d5", "book", "binance-usdm")
    check_book_rows(book, depth=5)
    # interval 0: a row at every event that changes the top 5 (at most one per event, plus the snapshot)
    assert table(tmp_path / "default", "book", "binance-usdm").num_rows < book.num_rows
    assert book.num_rows <= report.book["book"]["events_applied"] + 1
    funding = table(tmp_path / "d5", "funding", "binance-usdm")
    assert funding.num_rows > 0 and set(funding.column("interval_ns").to_pylist()) == {4 * 3_600 * 10**9}
    for bad, match in (({"dept": 5}, "did you mean 'depth'"), ({"depth": 0}, "depth"),
                       ({"book_interval_ms": -1}, "book_interval_ms"), ({"venue": "binance-coinm"}, "venue"),
                       ({"tz": "Europe/London"}, "tz")):
        with pytest.raises(ConfigError, match=match):
            run_import("binance-raw", [path], tmp_path / "bad", **bad)

