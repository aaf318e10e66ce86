"""hyperliquid-raw importer: the real BTC capture and a hand-written fixture.

Expected numbers are counted here from the raw text (substring counts, stdlib ``json``), or come
from the data README (46 l2Book snapshots), never from the importer.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from emerald.errors import ConfigError, DataError
from emerald.tape.importers import run_import

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "hyperliquid"


def _read(root: Path, kind: str, venue: str, symbol: str) -> dict[str, np.ndarray]:
    table = pq.read_table(root / kind / f"venue={venue}" / f"symbol={symbol}")
    out = {}
    for name in table.column_names:
        if name in ("date",):
            continue
        col = table.column(name).combine_chunks()
        if hasattr(col.type, "list_size"):
            out[name] = np.asarray(col.flatten()).reshape(len(col), col.type.list_size)
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out


def _assert_conserved(report) -> None:
    assert report.lines_in == report.lines_parsed + sum(report.lines_rejected.values())
    for e in report.write.entries.values():
        assert e.rows_in == e.rows_written + e.duplicates + sum(e.quarantined.values())


@pytest.fixture(scope="module")
def capture(real_data: Path) -> Path:
    return real_data / "hyperliquid-raw" / "btc_20250126.gz"


@pytest.fixture(scope="module")
def raw_lines(capture: Path) -> list[str]:
    with gzip.open(capture, "rt") as f:
        return f.read().splitlines()


@pytest.fixture(scope="module")
def imported(capture: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("hl")
    return root, run_import("hyperliquid-raw", [capture], root)


def test_real_capture_counts(imported, raw_lines: list[str]) -> None:
    root, report = imported
    n_book_lines = sum('"channel":"l2Book"' in line for line in raw_lines)
    n_trade_objects = sum(line.count('"tid":') for line in raw_lines)
    assert n_book_lines == 46  # the data README
    _assert_conserved(report)
    assert report.lines_in == len(raw_lines)
    assert report.lines_parsed == len(raw_lines) and report.lines_rejected == {}
    assert report.unhandled == {}
    entries = report.write.entries
    assert entries[("book", "hyperliquid", "BTC")].rows_written == n_book_lines
    assert entries[("quotes", "hyperliquid", "BTC")].rows_written == n_book_lines
    assert entries[("trades", "hyperliquid", "BTC")].rows_written == n_trade_objects
    trade_ids = {int(t) for t in re.findall(r'"tid":(\d+)', "\n".join(raw_lines))}
    assert set(_read(root, "trades", "hyperliquid", "BTC")["trade_id"].tolist()) == trade_ids


def test_real_book_matches_raw_json(imported, raw_lines: list[str]) -> None:
    root, _ = imported
    book = _read(root, "book", "hyperliquid", "BTC")
    quotes = _read(root, "quotes", "hyperliquid", "BTC")
    assert book["bid_px"].shape == (46, 20)
    snapshots = []
    for line in raw_lines:
        recv, payload = line.split(" ", 1)
        msg = json.loads(payload)
        if msg["channel"] == "l2Book":
            snapshots.append((int(recv), msg["data"]))
    order = np.argsort(book["ts_recv"], kind="stable")
    for row, (recv, data) in zip(order, sorted(snapshots, key=lambda s: s[0]), strict=True):
        assert book["ts_recv"][row] == recv
        assert book["ts_event"][row] == data["time"] * 1_000_000
        bids, asks = data["levels"]
        np.testing.assert_array_equal(book["bid_px"][row], [float(lv["px"]) for lv in bids])
        np.testing.assert_array_equal(book["bid_qty"][row], [float(lv["sz"]) for lv in bids])
        np.testing.assert_array_equal(book["ask_px"][row], [float(lv["px"]) for lv in asks])
        np.testing.assert_array_equal(book["ask_qty"][row], [float(lv["sz"]) for lv in asks])
    # the first snapshot by hand: best bid 105055.0 x 3.03622, best ask 105056.0 x 6.34472
    first = int(np.argmin(quotes["ts_recv"]))
    assert quotes["ts_recv"][first] == 1737918843893903000
    assert (quotes["bid_px"][first], quotes["bid_qty"][first]) == (105055.0, 3.03622)
    assert (quotes["ask_px"][first], quotes["ask_qty"][first]) == (105056.0, 6.34472)


def test_real_trades_side_and_values(imported, raw_lines: list[str]) -> None:
    root, _ = imported
    trades = _read(root, "trades", "hyperliquid", "BTC")
    text = "\n".join(raw_lines)
    assert int((trades["side"] == 1).sum()) == text.count('"side":"B"')
    assert int((trades["side"] == -1).sum()) == text.count('"side":"A"')
    # one trade copied by hand from the capture (line at local time 1737918847319919000)
    i = int(np.flatnonzero(trades["trade_id"] == 917211710228416)[0])
    assert trades["ts_event"][i] == 1737918847000 * 1_000_000
    assert trades["ts_recv"][i] == 1737918847319919000
    assert (trades["price"][i], trades["qty"][i], trades["side"][i]) == (105056.0, 0.02222, 1)
    # aggressor check against the book: a buyer-initiated trade prints at the ask or above,
    # a seller-initiated one at the bid or below (trades before the first snapshot are skipped)
    quotes = _read(root, "quotes", "hyperliquid", "BTC")
    q = np.argsort(quotes["ts_event"], kind="stable")
    q_ts, bid, ask = quotes["ts_event"][q], quotes["bid_px"][q], quotes["ask_px"][q]
    k = np.searchsorted(q_ts, trades["ts_event"], side="right") - 1
    seen = k >= 0
    assert seen.sum() >= 30
    buy, sell = seen & (trades["side"] == 1), seen & (trades["side"] == -1)
    assert np.all(trades["price"][buy] >= ask[k[buy]])
    assert np.all(trades["price"][sell] <= bid[k[sell]])


def test_depth_option_truncates_and_notes(capture: Path, tmp_path: Path) -> None:
    report = run_import("hyperliquid-raw", [capture], tmp_path, depth=5)
    _assert_conserved(report)
    book = _read(tmp_path, "book", "hyperliquid", "BTC")
    assert book["bid_px"].shape == (46, 5)
    assert any("up to 20 levels" in n and "depth 5" in n for n in report.notes)
    assert report.book["book"]["depth"] == 5


def test_fixture_channels_rejects_and_padding(tmp_path: Path) -> None:
    report = run_import("hyperliquid-raw", [FIXTURES / "sol_capture.txt"], tmp_path, depth=4)
    _assert_conserved(report)
    # counted by hand from the fixture (see tests/data/hyperliquid/README.md)
    assert report.lines_in == 10
    assert report.unhandled == {"subscriptionResponse": 2, "pong": 1}
    assert report.lines_rejected == {"bad_message": 1, "bad_json": 1, "bad_line": 1}
    assert report.lines_parsed == 7
    book = _read(tmp_path, "book", "hyperliquid", "SOL")
    np.testing.assert_array_equal(book["bid_px"][0], [250.10, 250.05, 250.00, np.nan])
    np.testing.assert_array_equal(book["bid_qty"][0], [12.5, 4.0, 100.25, 0.0])
    np.testing.assert_array_equal(book["ask_px"][0], [250.15, 250.20, np.nan, np.nan])
    np.testing.assert_array_equal(book["ask_px"][1], [np.nan] * 4)
    np.testing.assert_array_equal(book["ask_qty"][1], [0.0] * 4)
    quotes = _read(tmp_path, "quotes", "hyperliquid", "SOL")
    assert quotes["bid_px"].tolist() == [250.10, 250.10]
    assert np.isnan(quotes["ask_px"][1]) and np.isnan(quotes["ask_qty"][1])
    trades = _read(tmp_path, "trades", "hyperliquid", "SOL")
    assert trades["trade_id"].tolist() == [1001, 1002, 1004]
    assert trades["side"].tolist() == [1, -1, -1]
    assert trades["qty"].tolist() == [2.0, 0.5, 3.0]


def test_strict_mode_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"sol_capture\.txt, line 7.*field `side`"):
        run_import("hyperliquid-raw", [FIXTURES / "sol_capture.txt"], tmp_path, strict=True)


def test_bad_arguments(tmp_path: Path) -> None:
    path = FIXTURES / "sol_capture.txt"
    with pytest.raises(ConfigError, match="tz"):
        run_import("hyperliquid-raw", [path], tmp_path, tz="Europe/London")
    with pytest.raises(ConfigError, match="depth"):
        run_import("hyperliquid-raw", [path], tmp_path, depth=0)
    with pytest.raises(ConfigError, match="did you mean 'depth'"):
        run_import("hyperliquid-raw", [path], tmp_path, depht=5)
