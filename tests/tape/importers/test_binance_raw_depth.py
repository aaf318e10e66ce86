"""binance-raw: the compiled depth path (``emerald.tape.importers._binance_depth``).

The compiled path must write exactly what the Python path writes, so the reference here is the
importer with that path switched off (``_Book.try_fast`` a no-op), on the real captures and on an
excerpt edited so that every way back to Python happens (a repeated event, reformatted JSON, a
gap, a resync, a price printed another way, a non-canonical quantity, a bad price). The decimal
reader is checked against ``float()`` (and pyarrow's cast, which the Python path uses for
quantities), the book operations against a dict.
"""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emerald.tape.importers import _binance_depth as fast
from emerald.tape.importers import binance_raw


def raw_lines(path: Path) -> list[bytes]:
    return [line for line in gzip.decompress(path.read_bytes()).split(b"\n") if line]


def write_plain(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


class Spy:
    """Counts what the compiled path did during an import."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.applied = self.leaves = 0
        run, leave = binance_raw._Book.run_fast, binance_raw._Book.leave_fast

        def run_fast(book: Any, lines: Any, i: int) -> int:
            k = run(book, lines, i)
            self.applied += k - i
            return k

        def leave_fast(book: Any) -> None:
            self.leaves += 1
            leave(book)

        monkeypatch.setattr(binance_raw._Book, "run_fast", run_fast)
        monkeypatch.setattr(binance_raw._Book, "leave_fast", leave_fast)


class Recorder:
    """Stands in for the TapeWriter: keeps every ``write`` call as the importer made it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[Any, ...]] = []

    def write(self, kind: str, venue: str, symbol: str, data: dict[str, Any], *, source: str,
              depth: int | None = None) -> None:
        cols = {k: np.array(v) for k, v in data.items()}
        self.calls.append((kind, venue, symbol, source, depth, cols))


def import_both(paths: list[Path], root: Path, monkeypatch: pytest.MonkeyPatch,
                **kw: Any) -> tuple[dict[str, Any], Spy]:
    """Import with the compiled path, then with the Python path alone: what each wrote (the
    writer calls, the rejected lines' quarantine files) and its report."""
    out = {}
    spy = Spy(monkeypatch)
    for name in ("compiled", "python"):
        if name == "python":
            monkeypatch.setattr(binance_raw._Book, "try_fast", lambda book: None)
        rec = Recorder(root / name)
        report = binance_raw.run(paths, rec, **kw)  # type: ignore[arg-type]
        quarantine = {str(f.relative_to(rec.root)): f.read_bytes() for f in sorted(rec.root.rglob("*")) if f.is_file()}
        out[name] = (rec.calls, quarantine, report.to_dict())
    return out, spy


def assert_same(out: dict[str, Any]) -> None:
    """Same writer calls, column by column bit for bit (NaN padding included), same rejected
    lines, same report."""
    (calls, quarantine, report), (calls_py, quarantine_py, report_py) = out["compiled"], out["python"]
    assert [c[:5] for c in calls] == [c[:5] for c in calls_py]
    assert any(c[0] == "book" for c in calls)
    for c, c_py in zip(calls, calls_py, strict=True):
        assert c[5].keys() == c_py[5].keys()
        for k, v in c[5].items():
            assert v.dtype == c_py[5][k].dtype and v.shape == c_py[5][k].shape, (c[0], k)
            assert v.tobytes() == c_py[5][k].tobytes(), (c[0], k)
    assert quarantine == quarantine_py
    assert report == report_py


def book_rows(out: dict[str, Any]) -> int:
    return sum(len(c[5]["ts_event"]) for c in out["compiled"][0] if c[0] == "book")


# --------------------------------------------------------------------------------------------
# the real captures


@pytest.fixture(scope="module")
def usdm_files(real_data: Path) -> list[Path]:
    return [real_data / "binance-raw" / f"usdm_btcusdt_2023040{d}.dat.gz" for d in (4, 5)]


def test_real_usdm_captures_compiled_equals_python(usdm_files: list[Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out, spy = import_both(usdm_files, tmp_path, monkeypatch, venue="binance-usdm")
    assert_same(out)
    n_depth = sum(b'"e":"depthUpdate"' in line for f in usdm_files for line in raw_lines(f))
    assert n_depth == 16_110
    # all but the first event after the snapshot (replayed by the Python path) go the compiled way
    assert spy.applied == n_depth - 1 and spy.leaves == 0
    assert book_rows(out) > 4_000


def test_real_spot_capture_compiled_equals_python(real_data: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = real_data / "binance-raw" / "spot_btcusdt_20230405.dat.gz"
    out, spy = import_both([path], tmp_path, monkeypatch, depth=7, book_interval_ms=0)
    assert_same(out)
    # the partial book is seeded after 1,000 buffered events; the rest go the compiled way
    n_depth = sum(b'"e":"depthUpdate"' in line for line in raw_lines(path))
    assert spy.applied >= n_depth - 1_001 > 2_000


def test_two_symbols_interleaved_compiled_equals_python(real_data: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # the spot capture and a copy of it renamed to a second symbol, line by line in turn: two
    # partial books (seeded from their bookTickers) whose depth events alternate
    lines = raw_lines(real_data / "binance-raw" / "spot_btcusdt_20230405.dat.gz")[:6_000]
    other = [line.replace(b"btcusdt@", b"ethusdt@").replace(b'"s":"BTCUSDT"', b'"s":"ETHUSDT"') for line in lines]
    path = write_plain(tmp_path / "two.dat", [x for pair in zip(lines, other, strict=True) for x in pair])
    out, spy = import_both([path], tmp_path, monkeypatch, depth=5, book_interval_ms=0)
    assert_same(out)
    books = [c for c in out["compiled"][0] if c[0] == "book"]
    assert sorted(c[2] for c in books) == ["BTCUSDT", "ETHUSDT"]
    assert books[0][5]["ts_event"].tolist() == books[1][5]["ts_event"].tolist()  # the same events
    n_depth = sum(b'"e":"depthUpdate"' in line for line in lines)
    assert spy.applied >= 2 * (n_depth - 1_001) > 0


# --------------------------------------------------------------------------------------------
# an excerpt edited so that the compiled path has to give way


def _data(line: bytes) -> dict[str, Any]:
    return json.loads(line.split(b" ", 1)[1])["data"]


def _with_data(line: bytes, d: dict[str, Any], *, spaced_envelope: bool = False) -> bytes:
    """The line with its event replaced; the envelope stays compact (the layout the line loop
    batches) unless ``spaced_envelope``."""
    recv, rest = line.split(b" ", 1)
    stream = json.loads(rest)["stream"]
    if spaced_envelope:
        return recv + b" " + json.dumps({"stream": stream, "data": d}).encode()
    return recv + b' {"stream":"' + stream.encode() + b'","data":' + json.dumps(d, separators=(",", ":")).encode() + b"}"


def edited_excerpt(lines: list[bytes]) -> list[bytes]:
    depth = [i for i, line in enumerate(lines) if b'"e":"depthUpdate"' in line]
    snap_line = next(line for line in lines if b'"lastUpdateId"' in line)
    edits: dict[int, list[bytes]] = {}

    def level_edit(k: int, side: str, fn: Any) -> None:
        i = depth[k]
        d = _data(lines[i])
        d[side] = [fn(p, q) for p, q in d[side][:1]] + d[side][1:]
        edits[i] = [_with_data(lines[i], d)]

    i = depth[150]
    edits[i] = [lines[i], lines[i]]  # repeated: stale
    i = depth[300]
    edits[i] = [_with_data(lines[i], _data(lines[i]), spaced_envelope=True)]  # not batched
    i = depth[320]
    edits[i] = [lines[i].replace(b'"data":{', b'"data": {')]  # batched, not the scanner's layout
    edits[depth[500]] = []  # lost: a gap
    i = depth[700]  # a REST snapshot whose lastUpdateId this event straddles: a resync
    snap = json.loads(snap_line.split(b" ", 1)[1])
    snap["lastUpdateId"] = _data(lines[i])["u"]
    edits[i] = [lines[i].split(b" ", 1)[0] + b" " + json.dumps(snap).encode(), lines[i]]
    level_edit(1000, "a", lambda p, q: [p, f"{float(q):.6e}" if float(q) else "1e-3"])  # 1.234000e-01
    level_edit(1300, "b", lambda p, q: [p.rstrip("0") if p.endswith("0") else p + "0", "0.500"])  # 28020.3
    level_edit(1600, "b", lambda p, q: ["0.00", "1.000"])  # a bad price: rejected, the book breaks
    out: list[bytes] = []
    for i, line in enumerate(lines):
        out += edits.get(i, [line])
    return out


@pytest.mark.parametrize("retry", [0, 256])
def test_edited_excerpt_compiled_equals_python(usdm_files: list[Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, retry: int) -> None:
    lines = raw_lines(usdm_files[0])[:5_500]
    path = write_plain(tmp_path / "edited.dat", edited_excerpt(lines))
    monkeypatch.setattr(binance_raw, "_FAST_RETRY", retry)
    out, spy = import_both([path], tmp_path, monkeypatch, venue="binance-usdm", depth=10, book_interval_ms=20)
    assert_same(out)
    report = out["python"][2]
    book = report["kinds"]["book"]
    # the repeated event; the lost event and the bad price (gaps); the inserted snapshot
    assert (book["events_stale"], book["gaps"], book["resyncs"]) == (1, 2, 1)
    assert report["lines_rejected"] == {"bad_value": 1}
    # back to Python at the repeated event, both reformatted lines, the gap, the scientific
    # quantity and the other price format; retry 0: back to the compiled path as soon as it can,
    # 256: the reformatted lines come while the book waits after the repeated event
    assert spy.leaves == (6 if retry == 0 else 4)
    assert spy.applied > (1_000 if retry == 0 else 300)


def _edit_t_zero(line: bytes) -> bytes:
    d = _data(line)
    d["T"] = 0  # Python: d.get("T") or d["E"]
    return _with_data(line, d)


def _edit_no_pu(line: bytes) -> bytes:
    d = _data(line)
    del d["pu"]  # the spot chaining rule then applies: a gap
    return _with_data(line, d)


def _edit_level(side: str, level: list[str]) -> Any:
    def edit(line: bytes) -> bytes:
        d = _data(line)
        d[side] = [*d[side], level]
        return _with_data(line, d)
    return edit


LINE_EDITS = {
    "T is 0": _edit_t_zero,
    "no pu": _edit_no_pu,
    "trailing CR": lambda line: line + b"\r",
    "other event name": lambda line: line.replace(b'"depthUpdate"', b'"depthUpdatX"'),
    "E of 19 digits": lambda line: line.replace(b'"E":', b'"E":1000000000', 1),
    "symbol not UTF-8": lambda line: line.replace(b'"s":"BTCUSDT"', b'"s":"BTC\xffUSDT"'),
    "repeated key": lambda line: line.replace(b'"b":[', b'"u":1,"b":[', 1),
    "three-item level": _edit_level("b", ["28000.00", "1.000", "x"]),
    "quantity 00.5": _edit_level("a", ["28999.90", "00.5"]),
    "16-digit price removed": _edit_level("a", ["28999.90000000001", "0.000"]),
    "19-zero quantity": _edit_level("b", ["28000.00", "0." + "0" * 19]),
    "price 0": _edit_level("a", ["0.00", "0.000"]),
}


@pytest.mark.parametrize("edit", list(LINE_EDITS))
def test_unusual_depth_lines_compiled_equals_python(usdm_files: list[Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, edit: str) -> None:
    lines = raw_lines(usdm_files[0])[:1_200]
    depth = [i for i, line in enumerate(lines) if b'"e":"depthUpdate"' in line]
    i = depth[150]
    edited = LINE_EDITS[edit](lines[i])
    assert edited != lines[i]
    path = write_plain(tmp_path / "x.dat", [*lines[:i], edited, *lines[i + 1:]])
    monkeypatch.setattr(binance_raw, "_FAST_RETRY", 0)
    out, spy = import_both([path], tmp_path, monkeypatch, venue="binance-usdm", book_interval_ms=0)
    assert_same(out)
    assert spy.applied >= 148  # the events between the snapshot and the edit at least


# --------------------------------------------------------------------------------------------
# decimals


def _scan(text: str) -> tuple[int, int, int]:
    buf = np.frombuffer((text + '"').encode(), np.uint8)
    return fast.scan_decimal(buf, 0, len(buf))


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


@st.composite
def decimal_strings(draw: Any) -> str:
    whole = str(draw(st.integers(0, 10**17) | st.integers(0, 99)))
    if not draw(st.booleans()):
        return whole
    return whole + "." + draw(st.text("0123456789", max_size=21))


@settings(deadline=None, max_examples=400)
@given(decimal_strings())
@example("0.1")
@example("28145.10")
@example("0.00000000")
@example("999999999999999")          # 15 significant digits: held
@example("9007199254740993")         # 16: not held
@example("0.000000000000000001")     # scale 18: held
@example("0.0000000000000000001")    # scale 19: not held
@example("1.")
def test_decimal_reader_is_bit_identical_to_float(text: str) -> None:
    whole, _, frac = text.partition(".")
    held = len((whole + frac).lstrip("0")) <= 15 and len(frac) <= 18
    m, code, pos = _scan(text)
    assert fast.parse_decimal(text) == ((m, code) if held else None)
    if not held:
        assert pos == -1
        return
    assert pos == len(text) + 1
    value = fast.decimal_value(m, code)
    assert _bits(value) == _bits(float(text))
    # the Python path parses the quantities it writes with pyarrow's cast
    assert _bits(pa.array([text]).cast(pa.float64())[0].as_py()) == _bits(value)
    assert fast.decimal_text(m, code) == text


@settings(deadline=None, max_examples=300)
@given(st.text("0123456789.-+eE \"x", max_size=12))
@example("01.5")
@example(".5")
@example("1e5")
@example("-1.0")
@example("")
def test_decimal_reader_rejects_what_it_cannot_hold(text: str) -> None:
    m, code, pos = _scan(text)
    parsed = fast.parse_decimal(text)
    assert (pos == len(text) + 1) == (parsed is not None)
    grammar = text.replace(".", "", 1).isdigit() and not text.startswith(".") and not (
        len(text.split(".")[0]) > 1 and text.startswith("0"))
    if not grammar:
        assert parsed is None
    if parsed is not None:
        assert parsed == (m, code) and _bits(fast.decimal_value(m, code)) == _bits(float(text))


# --------------------------------------------------------------------------------------------
# book operations against a dict


def _check_side(hs: np.ndarray, top: np.ndarray, state: np.ndarray, side: int, oracle: dict[int, tuple[int, int]],
                depth: int) -> None:
    used = hs[side, 0] != 0
    assert dict(zip(hs[side, 0][used].tolist(), zip(hs[side, 1][used].tolist(), hs[side, 2][used].tolist(),
                                                    strict=True), strict=True)) == oracle
    assert state[fast.N_BID + side] == len(oracle)
    n, limit = state[fast.TOP_BID + side], state[fast.LIMIT_BID + side]
    window = top[side, :n].tolist()
    assert window == sorted(window) and set(window) == {k for k in oracle if k >= limit}
    out = np.zeros((2, 3, depth), np.int64)
    m = fast.best_levels(hs, top, state, side, out)
    best = sorted(oracle, reverse=True)[:depth]
    assert out[side, 0, :m].tolist() == best
    assert [tuple(x) for x in out[side, 1:, :m].T.tolist()] == [oracle[k] for k in best]


@settings(deadline=None, max_examples=150)
@given(st.sampled_from([64, 128]), st.integers(1, 6), st.integers(0, 3),
       st.lists(st.tuples(st.integers(0, 1), st.integers(1, 32), st.integers(0, 3), st.integers(0, 4)), max_size=250))
def test_book_operations_match_a_dict(size: int, depth: int, extra: int, ops: list[tuple[int, int, int, int]]) -> None:
    keep = depth + extra  # the window keeps >= depth keys (the importer: max(8 * depth, 128))
    hs = np.zeros((2, 3, size), np.int64)
    state = np.zeros(fast._N_ST, np.int64)
    state[fast.DEPTH], state[fast.KEEP] = depth, keep
    top = np.zeros((2, 2 * keep + 1), np.int64)
    empty = np.zeros(0, np.int64)
    for side in (0, 1):
        fast.fill_side(hs, top, state, side, empty, empty, empty)
    oracles: list[dict[int, tuple[int, int]]] = [{}, {}]
    for side, price, qty, code in ops:
        key = price if side == 0 else -price  # asks: best = largest key = lowest price
        fast.set_level(hs, top, state, side, key, qty, code)
        if qty:
            oracles[side][key] = (qty, code)
        else:
            oracles[side].pop(key, None)
        _check_side(hs, top, state, side, oracles[side], depth)
