"""Binance raw WebSocket captures: one message per line, ``<local receive time µs> <JSON>``.

The JSON is a combined-stream envelope ``{"stream": "btcusdt@trade", "data": {...}}``, or, for a
REST depth snapshot written into the capture, the bare ``GET /depth`` answer
``{"lastUpdateId", "E", "T", "bids", "asks"}`` (anywhere in the file). Files may be gzip (one or
several members) or plain text. Several files given together are **one continuous capture** in
the order given: the order book, the funding state and the bookTicker seed carry over.

| stream | tape kind | mapping |
|---|---|---|
| ``<s>@trade`` | trades | price ``p``, qty ``q``, side from ``m`` (true: the buyer was the maker, so the seller was the aggressor, -1), trade_id ``t`` |
| ``<s>@aggTrade`` | trades | as ``trade`` with trade_id ``a``; dropped (counted in ``unhandled['aggTrade']``, with a note) when the symbol also has a ``trade`` stream, else volume would count twice |
| ``<s>@depth[@100ms\\|@0ms...]`` | book | top-``depth`` snapshots of a book rebuilt from the REST snapshot plus the diff events (below) |
| ``<s>@bookTicker`` | quotes | bid ``b``/``B``, ask ``a``/``A`` |
| ``<s>@markPrice[@1s]`` | prices, funding | mark ``p``, index ``i``, spot_ref NaN; funding rows below |
| ``<s>@forceOrder``, ``!forceOrder@arr`` | liquidations | side ``o.S`` (SELL -1: a long was liquidated, BUY +1), price ``o.ap`` (average fill price; ``o.p`` when ``ap`` is 0), qty ``o.q``, time ``o.T`` |
| ``<s>@kline_<i>`` | bars | closed klines only (``k.x`` true; open ones are counted in ``unhandled['kline.open']``): open time ``t``, interval from ``i``, o/h/l/c, volume ``v`` (base), buy_volume ``V`` (taker buy base), sell_volume ``v - V``, trades ``n`` |
| anything else | | counted in ``unhandled`` by stream type (``depth20``, ``ticker``...) |

Times: ``ts_recv`` = the local receive time (µs -> ns); ``ts_event`` = the event's ``T``
(trade / transaction time) when present, else ``E`` (ms -> ns). Spot ``bookTicker`` carries
neither, so its quotes have ``ts_event = ts_recv`` (a note says so).

Venue and symbol: ``symbol`` defaults to the stream name's prefix, upper-cased (a capture holding
several symbols is written as one group per symbol); when ``symbol`` is given, only that symbol's
streams are imported and the others are counted in ``unhandled['other_symbol']``. ``venue`` is
``binance-usdm`` or ``binance-spot``; when not given it is inferred: depth events carrying ``pu``
or any ``markPrice`` stream mean ``binance-usdm``; otherwise ``binance-spot`` (with a note when no
depth stream backed the guess).

Order book
----------
Binance's "how to manage a local order book" procedure: a REST snapshot with ``lastUpdateId = L``
is the sync point; diff events with ``u < L`` (USD-M) / ``u <= L`` (spot) are older than it and
dropped; the first applied event must straddle it (USD-M ``U <= L <= u``, spot
``U <= L + 1 <= u``); afterwards each event must chain to the previous one (USD-M ``pu == previous
u``, spot ``U == previous u + 1``; the rule follows the event: ``pu`` present means USD-M). A break
is a **gap**: the book is invalid and emits no rows until the next sync point (a **resync**). Diff
events received while no sync point exists are buffered (up to 1,000) and replayed once one
arrives, so a snapshot written a few lines after the stream starts loses nothing.

A capture without a REST snapshot (the spot capture) gets a **partial** book: when 1,000 events
are buffered, or the input ends, without a snapshot, the book is seeded with the one level per
side of the last ``bookTicker`` received before a buffered event whose update range straddles that
bookTicker's ``u`` (same id sequence as the diffs), and the diffs are applied from there; the rows
of the buffered events keep their own times. After a gap such a capture re-seeds at once. Such a
book holds exactly the levels some diff (or the seed) touched, each with its true quantity, so it
is never crossed, but levels no diff touched are missing: its top-N can have holes. Rows from it
are written like any other, ``report.book['book']['partial']`` is True with the number of such
rows, and a note says so. Once a capture has shown a REST snapshot, only REST snapshots resync.

Rows: the top-``depth`` levels (option ``depth``, default 20) are written when they differ from
the last row written, at most once per ``book_interval_ms`` of event time (default 100): the state
after the first event at or past the interval is written, stamped with that event's times.
``report.book['book']`` counts ``events`` = ``events_applied + events_before_snapshot`` (not
applied before the book was first in sync) ``+ events_dropped_invalid`` (after a gap, before the
resync) ``+ events_stale`` (repeats of applied events), plus ``gaps``, ``resyncs``, ``snapshots``,
``seeds``, ``rows`` and ``rows_partial``. A depth line rejected half-applied also counts as a gap.
Levels are kept in dicts keyed by the price string (Binance prints one price one way); zero
quantities (``"0"``, ``"0.000"``...) remove a level. While a book is live, its events take a
compiled path (:mod:`emerald.tape.importers._binance_depth`) with the same results: it reads the
exact layout Binance sends and parses the decimals exactly; any other line, and every event that
does not chain, goes back to the Python path for that line.

Funding (``markPrice``): a published (``is_settlement`` False) row at ``E`` with ``rate = r`` and
``next_funding_ts = T`` for the first message and each time ``(r, T)`` changes (repeats carry no
information: the as-of value is the same); a settlement row (``is_settlement`` True) at the old
``T`` each time ``T`` advances, with the last ``r`` published while ``T`` still equalled it (the
rule that reproduces Binance's funding history: in the real capture a message 10 ms after 00:00
still carries the settling rate). ``interval_ns`` is ``funding_interval_h`` hours (default 8).

Options: ``depth`` (int, default 20), ``book_interval_ms`` (default 100), ``funding_interval_h``
(default 8).

Speed: two helper threads work beside the line loop. One inflates gzip ahead of it (zlib
releases the GIL). The other gets each decompressed block whole and decodes its ``bookTicker``,
``trade`` and ``aggTrade`` lines (most of a capture) with pyarrow (split, select by stream,
JSON-decode, cast), outside the GIL; the line loop skips those lines with one ``startswith`` and
decodes the rest (markPrice, snapshots...) with orjson, in order, keeping the book; depth
events are gathered per book and applied together, by the compiled path while the book is live,
before the next line of any other kind.
Lines the pyarrow readers refuse (bad JSON, a missing field, a bad number or time) are decoded
line by line, so that each bad line is rejected with its file and line number exactly as in
``strict`` mode, which decodes every line in order here and so raises on the first bad one. A
stream seen for the first time inside a block is decoded here until the block ends. The
garbage collector is paused during an import: the decoded messages are short-lived containers
without cycles, and its passes over the buffered rows cost about a tenth of the line loop.
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from emerald.errors import ConfigError, DataError
from emerald.tape.importers import _binance_depth as _fast
from emerald.tape.importers.base import ImportReport, LineRejects, add_note, count_unhandled
from emerald.tape.writer import TapeWriter

FORMAT = "binance-raw"
VENUES = ("binance-usdm", "binance-spot")
_OPTIONS = {"depth": 20, "book_interval_ms": 100, "funding_interval_h": 8}

MS = 1_000_000
US = 1_000
HOUR_NS = 3_600_000_000_000
_MIN_US, _MAX_US = _fast.MIN_US, _fast.MAX_US  # the range of local receive times (µs)
_MAX_MS = 4_102_444_800_000
_NO_TIME = -(1 << 62)      # a quote without exchange time (spot bookTicker): ts_event = ts_recv

_SYNC_BUFFER = 1000        # diff events kept while waiting for a sync point
_FAST_RETRY = 256          # after a short stay in the compiled path, depth events before the next try
_FLUSH_ROWS = 1_000_000    # buffered rows that trigger a write
_FIRST_CHUNK = 1 << 18     # decompressed bytes of the first read, small so that parsing starts at once
_READ_CHUNK = 1 << 23      # decompressed bytes of the next reads (one worker job each)
# While the worker runs, the GIL is handed over after 1 ms instead of CPython's 5 ms: every
# pyarrow / zlib call of the worker releases the GIL and must wait that long to get it back from
# the busy main thread (the convoy effect); restored when the import ends.
_SWITCH_INTERVAL = 0.001

_ZEROS = frozenset(["0", "0."] + ["0." + "0" * k for k in range(1, 19)])

_KLINE_MS = {"1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
             "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
             "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000}

# route codes; the first three are bulk-decoded outside strict mode
_QUOTE, _TRADE, _AGG, _DEPTH, _MARK, _LIQ, _KLINE, _SKIP = range(8)

_STREAM_PREFIX = b'{"stream":"'


# --------------------------------------------------------------------------------------------
# reading


def _inflate_all(path: Path) -> tuple[bytes, bool]:
    """All that zlib can inflate of a gzip file (several members allowed) and whether the
    stream ended properly."""
    d, parts = zlib.decompressobj(31), []
    with open(path, "rb") as fh:
        data = fh.read()
    while data:
        if d.eof:  # a further gzip member
            d = zlib.decompressobj(31)
        parts.append(d.decompress(data))
        data = d.unused_data if d.eof else b""
    return b"".join(parts), d.eof


def _read_blocks(paths: list[Path], report: ImportReport, strict: bool) -> Iterator[tuple[int, bytes | None]]:
    """Yield ``(file index, decompressed bytes)`` blocks of every file in turn, and
    ``(index, None)`` at the end of each file. A thread of its own reads and inflates ahead,
    across file boundaries too, so that inflating overlaps the parsing. Gzip files may hold
    several members."""
    q: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=6)
    stop = threading.Event()

    def put(item: tuple[int, Any]) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def inflate(i: int, path: Path) -> None:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        size, done = _FIRST_CHUNK, 0  # a small first chunk, so that parsing starts at once
        try:
            # pyarrow's stream gives up the GIL once per read (zlib's objects once per buffer
            # growth: many hand-offs, each costly on a busy machine)
            with pa.input_stream(str(path), compression="gzip" if gz else None) as stream:
                while not stop.is_set() and (chunk := stream.read(size)):
                    put((i, chunk))
                    done += len(chunk)
                    size = _READ_CHUNK
            put((i, None))
        except OSError:
            if not gz:
                raise
            # a truncated (or corrupt) gzip stream: inflate it again with zlib, which yields what
            # it can, and pass on the part not read yet
            tail, ended = _inflate_all(path)
            if len(tail) > done:
                put((i, tail[done:]))
            put((i, None) if ended else (i, "truncated"))

    def produce() -> None:
        for i, path in enumerate(paths):
            try:
                inflate(i, path)
            except (OSError, zlib.error) as e:
                put((i, e))
                return

    worker = threading.Thread(target=produce, name="binance-raw-inflate", daemon=True)
    worker.start()
    try:
        while True:
            i, item = q.get()
            if isinstance(item, Exception):
                raise DataError(f"cannot read the capture ({item})", path=str(paths[i])) from None
            if item == "truncated":
                if strict:
                    raise DataError("gzip stream ends early (truncated file)", path=str(paths[i]))
                add_note(report, f"{paths[i]}: gzip stream ends early (truncated file); the lines before the "
                         "cut were imported, a cut last line is rejected like any bad line")
                item = None
            yield i, item
            if item is None and i == len(paths) - 1:
                return
    finally:
        stop.set()
        worker.join()


# --------------------------------------------------------------------------------------------
# column accumulators


class _Trades:
    """Trade rows decoded line by line (strict mode and bulk fallback)."""

    __slots__ = ("ev", "recv", "px", "qty", "side", "tid")

    def __init__(self) -> None:
        self.ev: list[int] = []
        self.recv: list[int] = []
        self.px: list[float] = []
        self.qty: list[float] = []
        self.side: list[int] = []
        self.tid: list[int] = []

    def add(self, d: dict[str, Any], recv: int, id_key: str) -> None:
        """``trade`` / ``aggTrade`` data (USD-M; spot adds ``b``, ``a``, ``M``)::

            {"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT","t":3535186032,
             "p":"28145.10","q":"0.002","X":"MARKET","m":true}
            {"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100",
             "f":100,"l":105,"T":123456785,"m":true}
        """
        px, qty, m, tid = float(d["p"]), float(d["q"]), d["m"], d[id_key]
        t = d["T"] if "T" in d else d["E"]
        if type(m) is not bool:
            raise _BadValue("m", m, "true or false")
        _ints(**{id_key: tid, "T": t})
        self.ev.append(t)
        self.recv.append(recv)
        self.px.append(px)
        self.qty.append(qty)
        self.side.append(-1 if m else 1)
        self.tid.append(tid)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"ts_event": _ms_to_ns(np.array(self.ev, dtype=np.int64)),
                "ts_recv": np.array(self.recv, dtype=np.int64) * US,
                "price": np.array(self.px, dtype=np.float64), "qty": np.array(self.qty, dtype=np.float64),
                "side": np.array(self.side, dtype=np.int8), "trade_id": np.array(self.tid, dtype=np.int64)}


class _Quotes:
    """bookTicker rows decoded line by line (strict mode and bulk fallback)."""

    __slots__ = ("ev", "recv", "bp", "bq", "ap", "aq")

    def __init__(self) -> None:
        self.ev: list[int] = []
        self.recv: list[int] = []
        self.bp: list[float] = []
        self.bq: list[float] = []
        self.ap: list[float] = []
        self.aq: list[float] = []

    def add(self, d: dict[str, Any], recv: int) -> None:
        """``bookTicker`` data; USD-M has ``e``, ``T`` and ``E``, spot has none of them::

            {"e":"bookTicker","u":2710246762461,"s":"BTCUSDT","b":"28145.10","B":"3.868",
             "a":"28145.20","A":"6.887","T":1680652700430,"E":1680652700435}
            {"u":36090299876,"s":"BTCUSDT","b":"28165.47000000","B":"7.98680000",
             "a":"28165.48000000","A":"3.26888000"}
        """
        bp, bq, ap, aq = float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"])
        t = d["T"] if "T" in d else d.get("E", _NO_TIME)
        _ints(T=t)
        self.ev.append(t)
        self.recv.append(recv)
        self.bp.append(bp)
        self.bq.append(bq)
        self.ap.append(ap)
        self.aq.append(aq)

    def arrays(self) -> dict[str, np.ndarray]:
        ev, recv = np.array(self.ev, dtype=np.int64), np.array(self.recv, dtype=np.int64) * US
        return {"ts_event": np.where(ev == _NO_TIME, recv, _ms_to_ns(ev)), "ts_recv": recv,
                "bid_px": np.array(self.bp, dtype=np.float64), "bid_qty": np.array(self.bq, dtype=np.float64),
                "ask_px": np.array(self.ap, dtype=np.float64), "ask_qty": np.array(self.aq, dtype=np.float64)}


class _BadValue(ValueError):
    """A field holds a value of the wrong type or range (the line is rejected as ``bad_value``)."""

    def __init__(self, field: str, value: Any, expected: str) -> None:
        super().__init__(f"{field} must be {expected}, was {value!r}")
        self.field = field


def _ints(**fields: Any) -> None:
    """Raise :class:`_BadValue` for the first field that is not an int."""
    for name, v in fields.items():
        if type(v) is not int:
            raise _BadValue(name, v, "an integer")


def _ms_to_ns(ms: np.ndarray) -> np.ndarray:
    """ms -> ns; values outside 1970..2100 become -1 so that the writer quarantines them
    (``ts_range``) instead of overflowing."""
    return np.where((ms >= 0) & (ms < _MAX_MS), ms * MS, -1)


# --------------------------------------------------------------------------------------------
# bulk decoding (worker thread)


def _bulk_schema(number: pa.DataType, *fields: tuple[str, pa.DataType | None]) -> pa.Schema:
    return pa.schema([("data", pa.struct([(n, t or number) for n, t in fields]))])


_I64 = pa.int64()
_BULK_FIELDS: dict[int, tuple[tuple[str, pa.DataType | None], ...]] = {
    _QUOTE: (("b", None), ("B", None), ("a", None), ("A", None), ("T", _I64), ("E", _I64)),
    _TRADE: (("p", None), ("q", None), ("m", pa.bool_()), ("t", _I64), ("T", _I64), ("E", _I64)),
    _AGG: (("p", None), ("q", None), ("m", pa.bool_()), ("a", _I64), ("T", _I64), ("E", _I64)),
}
# read numbers as the strings Binance sends, then cast them all to float64 in one call
_BULK_PARSE = {k: pajson.ParseOptions(explicit_schema=_bulk_schema(pa.string(), *f), unexpected_field_behavior="ignore")
               for k, f in _BULK_FIELDS.items()}
_BULK_CAST = {k: _bulk_schema(pa.float64(), *f) for k, f in _BULK_FIELDS.items()}
_BULK_READ = pajson.ReadOptions(use_threads=False, block_size=1 << 26)

# (columns, lacked an exchange time, lines decoded, rejected lines: (index in block, reason, field, text))
_BulkOut = tuple[dict[str, np.ndarray], bool, int, list[tuple[int, str, str | None, bytes]]]


class _BulkRefused(ValueError):
    """The bulk readers cannot take these lines as they are; they are decoded line by line."""


def _bulk_block(data: bytes, size: int, streams: list[tuple[bytes, int]]) -> list[_BulkOut]:
    """Decode the lines of ``data[:size]`` (one block, whole lines) that belong to the bulk
    ``streams`` (``(b'{"stream":"<name>"', kind)``), one result per stream. Runs on the worker:
    pyarrow splits, selects and decodes outside the GIL. A line belongs to a stream when its text
    after the first space starts with that prefix, the main thread's rule exactly, so that every
    line is read by one of the two. Lines the bulk readers refuse are decoded line by line."""
    split = None
    try:
        whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, size], np.int64)),
                                                             pa.py_buffer(data)])
        # every line as (text before its first space, text after it), once for all streams
        parts = pc.split_pattern(pc.split_pattern(whole, b"\n").values, b" ", max_splits=1)
        after = pc.list_slice(parts, 1, 2)  # empty for a line without a space
        split = (parts, pc.list_flatten(after), pc.list_parent_indices(after))
    except pa.ArrowException:
        pass
    out = []
    for prefix, code in streams:
        try:
            if split is None:
                raise _BulkRefused("lines")
            out.append(_bulk_stream(*split, prefix, code))
        except (pa.ArrowException, _BulkRefused):
            out.append(_bulk_fallback(data[:size], prefix, code))
    return out


def _bulk_stream(parts: pa.Array, payloads: pa.Array, line_of: pa.Array, prefix: bytes, code: int) -> _BulkOut:
    """The lines of one stream as tape columns; raises on anything the line-by-line path would
    reject. ``parts`` holds each line split at its first space, ``payloads`` the texts after
    it and ``line_of`` their lines. Few pyarrow calls on purpose: each gives up the GIL and must
    wait to get it back."""
    mask = pc.starts_with(payloads, prefix)
    json_col = pc.filter(payloads, mask)
    if len(json_col) == 0:
        return _EMPTY_ROWS[code]().arrays(), False, 0, []
    heads = pc.list_element(pc.take(parts, pc.filter(line_of, mask)), 0)
    recv = pc.cast(pc.cast(heads, pa.string()), _I64).to_numpy()
    if recv.min() < _MIN_US or recv.max() >= _MAX_US:
        raise _BulkRefused("local time")
    recv = recv * US
    offsets = np.frombuffer(json_col.buffers()[1], np.int64, count=len(json_col) + 1, offset=8 * json_col.offset)
    payload = json_col.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    table = pajson.read_json(payload, read_options=_BULK_READ, parse_options=_BULK_PARSE[code])  # objects, back to back
    if table.num_rows != len(json_col):
        raise _BulkRefused("row count")
    col = table.cast(_BULK_CAST[code]).column("data")  # ArrowInvalid on a bad number
    data = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    if data.null_count:
        raise _BulkRefused("data")
    fields = {f: data.field(f) for f, _ in _BULK_FIELDS[code]}
    for f, arr in fields.items():
        if arr.null_count and f not in ("T", "E"):
            raise _BulkRefused(f)
    t_arr, e_arr = fields["T"], fields["E"]
    no_time = False
    if not t_arr.null_count:
        ev = _ms_to_ns(t_arr.to_numpy())
    elif t_arr.null_count == len(t_arr) and not e_arr.null_count:
        ev = _ms_to_ns(e_arr.to_numpy())
    elif t_arr.null_count == len(t_arr) and e_arr.null_count == len(e_arr) and code == _QUOTE:
        ev, no_time = recv.copy(), True  # spot bookTicker: no exchange time
    else:
        raise _BulkRefused("T")  # mixed: rare, decoded line by line
    if code == _QUOTE:
        cols = {"ts_event": ev, "ts_recv": recv, "bid_px": fields["b"].to_numpy(), "bid_qty": fields["B"].to_numpy(),
                "ask_px": fields["a"].to_numpy(), "ask_qty": fields["A"].to_numpy()}
    else:
        cols = {"ts_event": ev, "ts_recv": recv, "price": fields["p"].to_numpy(), "qty": fields["q"].to_numpy(),
                "side": np.where(fields["m"].to_numpy(zero_copy_only=False), -1, 1).astype(np.int8),
                "trade_id": fields["t" if code == _TRADE else "a"].to_numpy()}
    return cols, no_time, len(json_col), []


def _bulk_fallback(data: bytes, prefix: bytes, code: int) -> _BulkOut:
    """The lines of one stream decoded one by one with orjson, as strict mode does; bad lines
    are returned with their reason instead of raising."""
    rows = _EMPTY_ROWS[code]()
    rejects: list[tuple[int, str, str | None, bytes]] = []
    no_time = False
    for i, line in enumerate(data.split(b"\n")):
        sp = line.find(b" ")
        if sp < 0 or not line.startswith(prefix, sp + 1):
            continue
        try:
            recv = int(line[:sp])
        except ValueError:
            recv = -1
        if not _MIN_US <= recv < _MAX_US:
            rejects.append((i, "bad_timestamp", "local_time_us", line))
            continue
        try:
            d = orjson.loads(line[sp + 1:])["data"]
            no_time |= _add_flat(rows, code, d, recv)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            reason, field = _line_error(e)
            rejects.append((i, reason, field, line))
    return rows.arrays(), no_time, len(rows.ev), rejects


def _add_flat(rows: _Quotes | _Trades, code: int, d: Any, recv: int) -> bool:
    """One ``bookTicker`` / ``trade`` / ``aggTrade`` row; True for a quote without exchange time."""
    if isinstance(rows, _Quotes):
        rows.add(d, recv)
        return "T" not in d and "E" not in d
    rows.add(d, recv, "t" if code == _TRADE else "a")
    return False


def _line_error(e: Exception) -> tuple[str, str | None]:
    """The reject reason and field of an exception raised while decoding a line."""
    if isinstance(e, orjson.JSONDecodeError):
        return "bad_json", None
    if isinstance(e, KeyError):
        return "missing_field", str(e.args[0])
    return "bad_value", e.field if isinstance(e, _BadValue) else None


_EMPTY_ROWS: dict[int, type[_Quotes] | type[_Trades]] = {_QUOTE: _Quotes, _TRADE: _Trades, _AGG: _Trades}

# --------------------------------------------------------------------------------------------
# order book


_STATS = ("events", "events_applied", "events_before_snapshot", "events_dropped_invalid", "events_stale", "gaps",
          "resyncs", "snapshots", "seeds", "rows", "rows_partial")


class _Side:
    """One side of the book.

    ``levels`` maps the price string to the quantity string of every level seen since the last
    sync point; a level whose quantity became zero stays as a *dead* entry (so that an update is
    one C-level ``dict.update`` per event) until the top-N walk or a rebuild meets it. ``top`` is a
    short sorted list of signed float keys (``-price`` for bids, ``price`` for asks: smaller is
    better) with the price strings beside it in ``keys``; it holds every key of ``levels`` that is
    ``<= limit``. It is trimmed past ``2 * keep`` entries and rebuilt from ``levels`` when it runs
    short, so an update far from the touch never touches it.
    """

    __slots__ = ("sign", "keep", "levels", "top", "keys", "limit")

    def __init__(self, sign: float, keep: int) -> None:
        self.sign, self.keep = sign, keep
        self.levels: dict[str, str] = {}
        self.top: list[float] = []
        self.keys: list[str] = []
        self.limit = float("inf")

    def reset(self, levels: dict[str, str]) -> None:
        self.levels = levels
        self.rebuild()

    def rebuild(self) -> None:
        """Drop dead levels, re-rank the best ``keep`` live ones (rare: a sync point, or the
        touch moved through most of ``top``)."""
        sign, levels = self.sign, {p: q for p, q in self.levels.items() if q not in _ZEROS}
        ranked = sorted((sign * float(p), p) for p in levels)
        if len(ranked) > self.keep:
            ranked = ranked[:bisect_right(ranked, (ranked[self.keep - 1][0], "\uffff"))]
            self.limit = ranked[-1][0]
        else:
            self.limit = float("inf")
        self.levels = levels
        self.top = [k for k, _ in ranked]
        self.keys = [p for _, p in ranked]

    def apply(self, updates: list[list[str]]) -> None:
        """Apply ``[[price, qty], ...]``: one C-level ``dict.update``; prices never seen before
        (the last keys in the dict's insertion order) are then validated and ranked."""
        levels = self.levels
        n_before = len(levels)
        levels.update(updates)  # type: ignore[arg-type]  # any 2-item sequences
        if len(levels) != n_before:
            self.rank_new(len(levels) - n_before)

    def rank_new(self, n_new: int) -> None:
        """Validate and rank the ``n_new`` prices the last update added."""
        levels, sign, limit, top, keys = self.levels, self.sign, self.limit, self.top, self.keys
        for p in list(islice(reversed(levels), n_new)):
            k = sign * _price_key(p)
            if levels[p] in _ZEROS:  # removal of a level never seen: nothing to keep
                del levels[p]
            elif k <= limit:
                i = bisect_right(top, k)
                top.insert(i, k)
                keys.insert(i, p)
        if len(top) > 2 * self.keep:
            j = bisect_right(top, top[self.keep - 1])
            del top[j:], keys[j:]
            self.limit = top[-1]

    def best(self, n: int) -> tuple[list[str], list[str], list[float]]:
        """Price strings, quantity strings and float keys of the ``n`` best live levels."""
        while True:
            if len(self.keys) < n and self.limit != float("inf"):
                self.rebuild()
            keys, levels = self.keys[:n], self.levels
            qty = list(map(levels.__getitem__, keys))
            if _ZEROS.isdisjoint(qty):
                return keys, qty, self.top[:n]
            for i in range(len(keys) - 1, -1, -1):  # drop the dead levels met, then look again
                if qty[i] in _ZEROS:
                    del self.top[i], self.keys[i], levels[keys[i]]


class _Book:
    """L2 book of one symbol: two :class:`_Side`, the sync state and the top-N rows."""

    __slots__ = ("depth", "interval_ms", "bid", "ask", "live", "sync_id", "last_u", "had_sync", "had_rest",
                 "partial", "pending", "next_emit", "last_row", "out", "segments", "fast", "fast_wait", "saw_usdm",
                 "saw_spot", *_STATS)

    def __init__(self, depth: int, interval_ns: int) -> None:
        self.depth, self.interval_ms = depth, interval_ns / MS
        keep = max(8 * depth, 128)
        self.bid, self.ask = _Side(-1.0, keep), _Side(1.0, keep)
        self.live = False
        self.sync_id: int | None = None   # lastUpdateId of a sync point not yet straddled
        self.last_u = -1
        self.had_sync = False             # some sync point was ever applied
        self.had_rest = False             # a REST snapshot was ever seen
        self.partial = False              # the current book comes from a bookTicker seed
        self.pending: list[tuple[Any, ...]] = []  # (data, recv_us, t_ms, last bookTicker)
        self.next_emit: float = -(1 << 62)
        self.last_row: tuple[list[str], list[str], list[str], list[str]] | None = None
        # rows not yet written: (T ms, receive µs, -bid prices, bid qty strings, ask prices, ask qty strings)
        self.out: list[tuple[int, int, list[float], list[str], list[float], list[str]]] = []
        # earlier rows not yet written, in order: lists like `out`, and the compiled path's arrays
        self.segments: list[list[Any] | tuple[np.ndarray, np.ndarray]] = []
        self.fast: _fast.FastBook | None = None  # the book's state while in the compiled path
        self.fast_wait = 0  # depth events of a live book to leave to Python before trying that path again
        self.saw_usdm = self.saw_spot = False  # diff events with / without `pu`
        self.events = self.events_applied = self.events_before_snapshot = self.events_dropped_invalid = 0
        self.events_stale = self.gaps = self.resyncs = self.snapshots = self.seeds = 0
        self.rows = self.rows_partial = 0

    def stats(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in _STATS}

    def _drop(self, n: int) -> None:
        """Count ``n`` events not applied: before the book was first in sync, or after a gap."""
        if self.events_applied:
            self.events_dropped_invalid += n
        else:
            self.events_before_snapshot += n

    # -- sync points
    def snapshot(self, bids: dict[str, str], asks: dict[str, str], last_id: int, t_ms: int, recv: int) -> None:
        """Reset to a REST depth snapshot (levels validated by :func:`_snapshot_levels`)."""
        if self.fast is not None:
            self.leave_fast()
        self.snapshots += 1
        self.had_rest = True
        self._reset(dict(bids), dict(asks), last_id, partial=False)
        if t_ms >= self.next_emit:  # the snapshot is a book state of its own
            self._emit(t_ms, recv)
        self._replay()
        self._settle_pending()

    def _reset(self, bids: dict[str, str], asks: dict[str, str], last_id: int, *, partial: bool) -> None:
        """Replace the book by a sync point; diff events must then straddle ``last_id``."""
        if self.had_sync:
            self.resyncs += 1
        self.had_sync = True
        self.bid.reset(bids)
        self.ask.reset(asks)
        self.sync_id, self.live, self.partial = last_id, False, partial

    def _try_seed(self) -> bool:
        """Seed a partial book from a bookTicker (no REST snapshot seen); True when done."""
        for i, (d, _recv, _t, bt) in enumerate(self.pending):
            if bt is None:
                continue
            try:
                b = orjson.loads(bt)["data"]
                seed_id, bp, bq, ap, aq = b["u"], b["b"], b["B"], b["a"], b["A"]
                _price_key(bp), _price_key(ap), float(bq), float(aq)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            if type(seed_id) is not int or not _straddles(d, seed_id):
                continue
            self._drop(i)
            del self.pending[:i]
            self.seeds += 1
            self._reset({bp: bq} if bq not in _ZEROS else {}, {ap: aq} if aq not in _ZEROS else {}, seed_id,
                        partial=True)
            self._replay()
            return True
        return False

    def _replay(self) -> None:
        todo, self.pending = self.pending, []
        for d, recv, t, bt in todo:
            self._event(d, recv, t, bt)

    def _settle_pending(self, *, end: bool = False) -> None:
        """Seed from a bookTicker when that is the only way left to sync; bound the buffer."""
        if self.pending and self.sync_id is None and not self.had_rest and (
                end or self.had_sync or len(self.pending) > _SYNC_BUFFER):
            # no REST snapshot so far: after a gap re-seed at once; at first wait for a snapshot
            # while the buffer lasts. Each successful seed applies >= 1 pending event.
            while self.pending and self.sync_id is None and not self.live and self._try_seed():
                pass
        excess = len(self.pending) if end else len(self.pending) - _SYNC_BUFFER
        if excess > 0:
            del self.pending[:excess]
            self._drop(excess)

    def finish(self) -> None:
        """End of input: seed from a bookTicker if nothing else synced; count what is left. (A book
        still in the compiled path is live, with nothing pending, and its counts are current.)"""
        self._settle_pending(end=True)

    # -- the compiled path (emerald.tape.importers._binance_depth)
    def try_fast(self) -> None:
        """Move a live book to the compiled path, unless it was there a short while ago (then
        ``fast_wait`` more events go through Python first) or holds a level that path cannot."""
        if not self.live or self.pending:
            return
        if self.fast_wait:
            self.fast_wait -= 1
            return
        fb = _fast.FastBook(self.depth, self.interval_ms)
        levels = [[(p, q) for p, q in side.levels.items() if q not in _ZEROS] for side in (self.bid, self.ask)]
        if not fb.load(levels[0], levels[1], self.last_u, self.next_emit, self.last_row):
            self.fast_wait = _FAST_RETRY
            return
        if self.out:
            self.segments.append(self.out)
            self.out = []
        self.fast = fb

    def run_fast(self, lines: _fast.Lines, i: int) -> int:
        """Apply ``lines`` from ``i`` on in the compiled path; returns the first line it did not
        apply (the caller leaves the path and hands that line to :meth:`event`)."""
        fb = self.fast
        assert fb is not None
        k, events, rows = fb.run(lines, i)
        self.events += events
        self.events_applied += events
        self.rows += rows
        if self.partial:
            self.rows_partial += rows
        self.last_u, self.next_emit = fb.last_u, fb.next_emit
        return k

    def leave_fast(self) -> None:
        """Back to the Python path: levels and last row from the compiled path's state."""
        fb, self.fast = self.fast, None
        assert fb is not None
        if fb.n_rows:
            self.segments.append(fb.take_rows())
        if fb.applied:
            bids, asks = fb.levels()
            self.bid.reset(bids)
            self.ask.reset(asks)
            self.last_row = fb.last_row()
        self.fast_wait = 0 if fb.applied >= _FAST_RETRY else _FAST_RETRY

    def buffered_rows(self) -> int:
        return (len(self.out) + sum(len(s) if isinstance(s, list) else len(s[0]) for s in self.segments)
                + (self.fast.n_rows if self.fast is not None else 0))

    # -- diff events
    def event(self, d: dict[str, Any], recv: int, last_book_ticker: Callable[[int], bytes | None], n: int) -> None:
        """Apply one diff event (USD-M; spot has no ``T`` and no ``pu``)::

            {"e":"depthUpdate","E":1680652700594,"T":1680652700586,"s":"BTCUSDT",
             "U":2710246765373,"u":2710246765597,"pu":2710246765326,
             "b":[["5000.00","14.368"],["28018.90","0.000"]],"a":[["28145.20","6.961"]]}

        ``last_book_ticker(n)`` gives the payload of the latest bookTicker before line ``n`` (this
        event's), kept with an event that has to wait for a sync point (a possible seed).
        """
        if self.fast is not None:  # an envelope written with other spacing reaches here directly
            self.leave_fast()
        t = d.get("T") or d["E"]
        u, pu, bids, asks = d["u"], d.get("pu"), d["b"], d["a"]
        if (self.live and type(u) is int and type(t) is int and type(bids) is list and type(asks) is list
                and (pu == self.last_u if pu is not None else d["U"] == self.last_u + 1)):
            # the common case, the next event of a live book: _Side.apply inlined
            self.events += 1
            bid, ask = self.bid, self.ask
            try:
                levels = bid.levels
                n_before = len(levels)
                levels.update(bids)
                if len(levels) != n_before:
                    bid.rank_new(len(levels) - n_before)
                levels = ask.levels
                n_before = len(levels)
                levels.update(asks)
                if len(levels) != n_before:
                    ask.rank_new(len(levels) - n_before)
            except (ValueError, TypeError, IndexError):
                self._broken()
                raise
            self.events_applied += 1
            self.last_u = u
            if t >= self.next_emit:
                self._emit(t, recv)
            return
        first = d["U"]
        if type(first) is not int or type(u) is not int or type(pu or 0) is not int or type(t) is not int:
            _ints(U=first, u=u, pu=pu or 0, T=t)
        for side, levels in (("b", bids), ("a", asks)):
            if type(levels) is not list:
                raise _BadValue(side, levels, "a list of [price, qty]")
        if pu is None:
            self.saw_spot = True
        else:
            self.saw_usdm = True
        self.events += 1
        self._event(d, recv, t, last_book_ticker(n))
        if self.pending:
            self._settle_pending()

    def _apply(self, bids: list[list[str]], asks: list[list[str]], recv: int, t: int) -> None:
        try:
            self.bid.apply(bids)
            self.ask.apply(asks)
        except (ValueError, TypeError, IndexError):
            self._broken()
            raise
        self.events_applied += 1

    def _broken(self) -> None:
        """A bad level half-applied the event: the line is rejected (not an event) and the book
        is no longer known, as after a gap."""
        self.events -= 1
        self.gaps += 1
        self.live, self.sync_id = False, None

    def _event(self, d: dict[str, Any], recv: int, t: int, bt: bytes | None) -> None:
        u, pu = d["u"], d.get("pu")
        if self.live:
            if (pu != self.last_u) if pu is not None else (d["U"] != self.last_u + 1):
                if u <= self.last_u:  # already applied (a repeated message)
                    self.events_stale += 1
                else:
                    self._gap(d, recv, t, bt)
                return
        elif self.sync_id is None:
            self.pending.append((d, recv, t, bt))
            return
        else:
            sync = self.sync_id
            if u < sync or (pu is None and u == sync):  # older than the sync point
                self._drop(1)
                return
            if not _straddles(d, sync):
                self._gap(d, recv, t, bt)
                return
            self.sync_id, self.live = None, True
        self._apply(d["b"], d["a"], recv, t)
        self.last_u = u
        if t >= self.next_emit:
            self._emit(t, recv)

    def _gap(self, d: dict[str, Any], recv: int, t: int, bt: bytes | None) -> None:
        self.gaps += 1
        self.live, self.sync_id = False, None
        self.pending.append((d, recv, t, bt))  # a later sync point may still cover it

    # -- rows
    def _emit(self, t_ms: int, recv: int) -> None:
        n = self.depth
        bk, bq, btop = self.bid.best(n)
        ak, aq, atop = self.ask.best(n)
        row = (bk, bq, ak, aq)
        if row == self.last_row:
            return
        self.last_row = row
        self.next_emit = t_ms + self.interval_ms
        self.out.append((t_ms, recv, btop, bq, atop, aq))  # btop holds -price
        self.rows += 1
        if self.partial:
            self.rows_partial += 1

    def take_rows(self, path: str, strict: bool, report: ImportReport) -> dict[str, np.ndarray] | None:
        """The rows emitted since the last call, as book columns (quantity strings parsed here)."""
        if self.fast is not None and self.fast.n_rows:
            self.segments.append(self.fast.take_rows())
        if self.out:
            self.segments.append(self.out)
            self.out = []
        if not self.segments:
            return None
        n, segments = self.depth, self.segments
        self.segments = []
        times: list[np.ndarray] = []
        cols: dict[str, list[np.ndarray]] = {"bid_px": [], "bid_qty": [], "ask_px": [], "ask_qty": []}
        bad: dict[str, list[Any]] = {"bid": [], "ask": []}
        for seg in segments:
            if not isinstance(seg, list):  # the compiled path's arrays
                times.append(seg[0])
                for c, col in enumerate(cols.values()):
                    col.append(seg[1][:, c, :])
                continue
            times.append(np.array([r[:2] for r in seg], dtype=np.int64).reshape(-1, 2))
            for name, px, qty in (("bid", [r[2] for r in seg], [r[3] for r in seg]),
                                  ("ask", [r[4] for r in seg], [r[5] for r in seg])):
                for j, levels in enumerate(px):  # pad a short side: NaN price, 0 qty
                    if len(levels) < n:
                        px[j] = levels + [np.nan] * (n - len(levels))
                        qty[j] = qty[j] + ["0"] * (n - len(levels))
                cols[f"{name}_px"].append(np.fromiter(chain.from_iterable(px), np.float64, len(px) * n).reshape(-1, n))
                values, not_numbers = _qty_array(list(chain.from_iterable(qty)))
                cols[f"{name}_qty"].append(values.reshape(-1, n))
                bad[name] += not_numbers
        for name, not_numbers in bad.items():
            if not not_numbers:
                continue
            if strict:
                raise DataError("depth level quantity is not a number", path=path, field=f"{name[0]}[].qty",
                                value=not_numbers[0])
            add_note(report, f"{len(not_numbers)} depth level quantities in written book rows are not numbers (first "
                     f"{not_numbers[0]!r}); those rows are quarantined by the writer")
        sides = {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in cols.items()}
        sides["bid_px"] = -sides["bid_px"]
        t = np.concatenate(times) if len(times) > 1 else times[0]
        return {"ts_event": _ms_to_ns(t[:, 0]), "ts_recv": t[:, 1] * US, **sides}


def _qty_array(col: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Depth quantities are kept as the strings Binance sent and parsed only for written rows
    (pyarrow's cast: several times faster than ``float()`` on each). A value that is not a
    number becomes NaN, so that the writer quarantines its row (``negative.*_qty``); those
    values are returned too (the caller notes them, strict mode raises)."""
    try:
        return pa.array(col, pa.string()).cast(pa.float64()).to_numpy(), []
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    out = np.empty(len(col))
    bad = []
    for i, q in enumerate(col):
        try:
            out[i] = float(q)
        except (TypeError, ValueError):
            out[i] = np.nan
            bad.append(q)
    return out, bad


def _snapshot_levels(levels: Any, field: str) -> dict[str, str]:
    """``[[price, qty], ...]`` of a REST snapshot as a level dict, every price validated."""
    if type(levels) is not list:
        raise _BadValue(field, levels, "a list of [price, qty]")
    out = {p: q for p, q in levels}  # zero quantities are dropped by _Side.rebuild
    for p in out:
        _price_key(p)
    return out


def _price_key(p: str) -> float:
    x = float(p)
    if not 0.0 < x < float("inf"):
        raise _BadValue("price", p, "finite and > 0")
    return x


def _straddles(d: dict[str, Any], sync_id: int) -> bool:
    """Does diff event ``d`` contain the update right after a snapshot at ``sync_id``?"""
    if "pu" in d:  # USD-M: U <= lastUpdateId <= u
        return bool(d["U"] <= sync_id <= d["u"])
    return bool(d["U"] <= sync_id + 1 <= d["u"])

# --------------------------------------------------------------------------------------------
# per-symbol state


class _Symbol:
    """Everything buffered for one symbol until the next write."""

    def __init__(self, symbol: str, depth: int, interval_ns: int) -> None:
        self.symbol = symbol
        self.book = _Book(depth, interval_ns)
        self.bt_prefix: bytes | None = None  # b'{"stream":"<its bookTicker stream>"'
        self.last_bt: bytes | None = None  # payload of the latest bookTicker before the lines in hand
        self.has_trade_stream = False
        self.rows: dict[int, _Quotes | _Trades] = {_QUOTE: _Quotes(), _TRADE: _Trades(), _AGG: _Trades()}
        self.bulk: dict[int, list[dict[str, np.ndarray]]] = {_QUOTE: [], _TRADE: [], _AGG: []}
        # prices and funding
        self.px: tuple[list[int], list[float], list[float]] = ([], [], [])
        self.fu: tuple[list[int], list[float], list[int], list[bool]] = ([], [], [], [])
        self.fund_t: int | None = None    # current next_funding_ts
        self.fund_r: float = float("nan")  # last rate published while fund_t was current
        self.fund_pub: tuple[float, int] | None = None
        # liquidations, bars
        self.liq: tuple[list[int], list[int], list[float], list[float]] = ([], [], [], [])
        self.bars: list[list[Any]] = [[] for _ in range(10)]

    def buffered(self) -> int:
        return (sum(len(r.ev) for r in self.rows.values()) + sum(len(c["ts_event"]) for v in self.bulk.values()
                                                                  for c in v) + len(self.px[0]) + self.book.buffered_rows())


# --------------------------------------------------------------------------------------------
# the importer


class _Importer:
    def __init__(self, writer: TapeWriter, report: ImportReport, rejects: LineRejects, *, venue: str | None,
                 symbol: str | None, strict: bool, depth: int, interval_ns: int, funding_interval_ns: int) -> None:
        self.writer, self.report, self.rejects = writer, report, rejects
        self.venue_opt, self.symbol_opt, self.strict = venue, symbol.upper() if symbol else None, strict
        self.depth, self.interval_ns, self.funding_interval_ns = depth, interval_ns, funding_interval_ns
        self.routes: dict[bytes, tuple[Any, ...]] = {}
        self.symbols: dict[str, _Symbol] = {}
        self.depth_symbols: list[str] = []  # symbols with a depth stream (imported or not)
        self.pending_snapshots: list[tuple[dict[str, Any], int]] = []  # seen before any depth stream
        self.evidence_usdm = False  # a markPrice stream (depth events with `pu`: _Book.saw_usdm)
        self.venue_used: str | None = None
        self.spot_quotes_without_time = False
        self.pool = None if strict else ThreadPoolExecutor(max_workers=1, thread_name_prefix="binance-raw-bulk")
        self.sources: list[str] = []
        # bulk streams (prefix, kind, symbol); `skip` is the prefix tuple frozen for the block in
        # hand, whose matching lines the worker decodes (a stream found inside a block joins at
        # the next one: its first lines are decoded here)
        self.bulk_streams: list[tuple[bytes, int, _Symbol]] = []
        self.skip: tuple[bytes, ...] = ()
        self.blocks: list[tuple[Future[list[_BulkOut]], int, str, list[tuple[bytes, int, _Symbol]]]] = []
        self.block_lines = 0
        self.lines: list[bytes] = []  # the lines being fed and the line number before them
        self.base = 0

    # -- routing
    def _route(self, stream: bytes) -> tuple[Any, ...]:
        route = self.routes.get(stream)
        if route is not None:
            return route
        name = stream.decode("utf-8", "replace")
        sym_part, _, rest = name.partition("@")
        kind = rest.split("@", 1)[0]
        code = {"trade": _TRADE, "aggTrade": _AGG, "depth": _DEPTH, "bookTicker": _QUOTE, "markPrice": _MARK,
                "forceOrder": _LIQ}.get(kind, _KLINE if kind.startswith("kline_") else _SKIP)
        if sym_part.startswith("!"):  # all-market streams (`!forceOrder@arr`): only liquidations are mapped
            route = (_LIQ, None, sym_part) if sym_part == "!forceOrder" else (_SKIP, None, sym_part)
        elif code == _SKIP:
            route = (_SKIP, None, kind or name)
        else:
            sym = self._symbol(sym_part.upper())
            if code == _DEPTH and sym_part.upper() not in self.depth_symbols:
                self.depth_symbols.append(sym_part.upper())
                todo, self.pending_snapshots = self.pending_snapshots, []
                for obj, recv in todo:  # snapshots written before the first depth event
                    self._snapshot(obj, recv)
            if sym is None:
                route = (_SKIP, None, "other_symbol")
            elif code == _DEPTH:
                route = (code, sym, kind, partial(self._last_book_ticker, sym), sym.book.event)
            else:
                route = (code, sym, kind)
            if sym is not None and code in (_QUOTE, _TRADE, _AGG):
                prefix = _STREAM_PREFIX + stream + b'"'
                if code == _QUOTE and sym.bt_prefix is None:
                    sym.bt_prefix = prefix
                if self.pool is not None and stream.isascii():
                    self.bulk_streams.append((prefix, code, sym))
            if code == _MARK:
                self.evidence_usdm = True
            if code == _TRADE and sym is not None:
                sym.has_trade_stream = True
        self.routes[stream] = route
        return route

    def _symbol(self, name: str) -> _Symbol | None:
        if self.symbol_opt is not None and name != self.symbol_opt:
            return None
        sym = self.symbols.get(name)
        if sym is None:
            sym = self.symbols[name] = _Symbol(name, self.depth, self.interval_ns)
        return sym

    # -- the line loop
    def feed(self, lines: list[bytes], path: str, n: int) -> int:
        """Process ``lines`` (line numbers ``n + 1``...); returns the last line number. Depth
        events are gathered per book and applied together (:meth:`_drain`) before the next line
        of anything else, so that everything still happens in line order."""
        routes, skip, handle = self.routes, self.skip, self._line
        self.lines, self.base = lines, n
        batch: list[bytes] = []
        numbers: list[int] = []
        book: _Book | None = None
        parsed = 0
        for line in lines:
            n += 1
            sp = line.find(b" ")
            if skip and sp >= 0 and line.startswith(skip, sp + 1):
                continue  # a bulk stream's line: the worker decodes it
            route = None
            if sp > 0 and line.startswith(_STREAM_PREFIX, sp + 1):
                stream = line[sp + 12:line.find(b'"', sp + 12)]
                route = routes.get(stream)
                if route is None:
                    if batch:  # a new stream may apply held snapshots
                        self._drain(book, batch, numbers, path)
                    route = self._route(stream)
                if route[0] == _DEPTH:
                    if route[1].book is not book:
                        if batch:
                            self._drain(book, batch, numbers, path)
                        book = route[1].book
                    batch.append(line)
                    numbers.append(n)
                    continue
            if batch:
                self._drain(book, batch, numbers, path)
            parsed += handle(line, n, path, sp, route)
        if batch:
            self._drain(book, batch, numbers, path)
        self.report.lines_parsed += parsed
        for sym in self.symbols.values():  # remember the last bookTicker of these lines
            if sym.bt_prefix is not None:
                sym.last_bt = self._last_book_ticker(sym, n + 1)
        return n

    def _drain(self, book: _Book | None, batch: list[bytes], numbers: list[int], path: str) -> None:
        """Apply a batch of one book's depth lines (line numbers ``numbers``) in order, then empty
        it: runs of them in the compiled path while the book is live and the lines are as that path
        expects, any other one by :meth:`_line`."""
        assert book is not None
        todo: _fast.Lines | None = None
        i, parsed = 0, 0
        while i < len(batch):
            if book.fast is None:
                book.try_fast()
            if book.fast is not None:
                todo = todo or _fast.Lines(batch)
                k = book.run_fast(todo, i)
                parsed, i = parsed + k - i, k
                if i == len(batch):
                    break
                book.leave_fast()
            line = batch[i]
            sp = line.find(b" ")
            parsed += self._line(line, numbers[i], path, sp, self.routes[line[sp + 12:line.find(b'"', sp + 12)]])
            i += 1
        self.report.lines_parsed += parsed
        batch.clear()
        numbers.clear()

    def _line(self, line: bytes, n: int, path: str, sp: int, route: tuple[Any, ...] | None) -> int:
        """Decode and handle line ``n`` (``sp``: its first space; ``route``: its stream's, None
        when it does not start like a stream envelope); 1 when parsed, 0 when rejected."""
        reject = self.rejects.reject
        try:
            recv = int(line[:sp]) if sp > 0 else -1
        except ValueError:
            recv = -1
        if not _MIN_US <= recv < _MAX_US:
            reject("empty_line" if not line.strip() else "bad_timestamp", path=path, line_no=n, text=line,
                   field="local_time_us")
            return 0
        try:
            obj = orjson.loads(line[sp + 1:])
        except orjson.JSONDecodeError:
            reject("bad_json", path=path, line_no=n, text=line)
            return 0
        try:
            if route is None:
                route = self._route_object(obj, recv)
                if route is None:
                    return 1
            if route[0] == _DEPTH:
                route[4](obj["data"], recv, route[3], n)
            else:
                self._handle(route, obj["data"], recv)
        except KeyError as e:
            reject("missing_field", path=path, line_no=n, text=line, field=str(e.args[0]))
            return 0
        except (ValueError, TypeError, IndexError, AttributeError) as e:
            reject("bad_value", path=path, line_no=n, text=line, field=_line_error(e)[1])
            return 0
        return 1

    def _last_book_ticker(self, sym: _Symbol, n: int) -> bytes | None:
        """Payload of ``sym``'s latest bookTicker line before line ``n`` (one of the lines being
        fed), read back from the raw lines: the worker, not this thread, decodes them."""
        prefix, lines = sym.bt_prefix, self.lines
        if prefix is not None:
            for i in range(n - self.base - 2, -1, -1):
                line = lines[i]
                sp = line.find(b" ")
                if sp >= 0 and line.startswith(prefix, sp + 1):
                    return line[sp + 1:]
        return sym.last_bt

    def _route_object(self, obj: Any, recv: int) -> tuple[Any, ...] | None:
        """A line whose JSON does not start with ``{"stream":"``: a REST snapshot, an envelope
        written with other spacing, or something unhandled (None: nothing more to do)."""
        if isinstance(obj, dict):
            stream = obj.get("stream")
            if isinstance(stream, str):
                return self._route(stream.encode())
            if "lastUpdateId" in obj:
                self._snapshot(obj, recv)
                return None
            key = "response" if "id" in obj else str(obj.get("e", "unknown"))
        else:
            key = "unknown"
        count_unhandled(self.report, key, 1)
        return None

    def _handle(self, route: tuple[Any, ...], d: Any, recv: int) -> None:
        code, sym = route[0], route[1]
        if code <= _AGG:  # bookTicker, trade, aggTrade
            self.spot_quotes_without_time |= _add_flat(sym.rows[code], code, d, recv)
        elif code == _MARK:
            self._mark(sym, d)
        elif code == _LIQ:
            self._liquidation(sym, d)
        elif code == _KLINE:
            self._kline(sym, d)
        else:
            key = route[2]
            count_unhandled(self.report, key, 1)

    def _snapshot(self, obj: dict[str, Any], recv: int) -> None:
        """A REST depth snapshot::

            {"lastUpdateId": 2710246765483, "E": 1680652700590, "T": 1680652700580,
             "bids": [["28145.10", "3.818"], ...], "asks": [["28145.20", "6.833"], ...]}

        It carries no symbol: it belongs to the capture's only symbol with a depth stream (held
        until that stream's first line when written before it). Spot snapshots have no ``T``/``E``:
        the receive time stands in.
        """
        last_id = obj["lastUpdateId"]
        t = obj["T"] if "T" in obj else obj.get("E", recv // 1000)
        _ints(lastUpdateId=last_id, T=t)
        bids, asks = _snapshot_levels(obj["bids"], "bids"), _snapshot_levels(obj["asks"], "asks")
        if len(self.depth_symbols) > 1:
            raise _BadValue("lastUpdateId", last_id, f"a snapshot of one symbol, but depth streams of "
                            f"{self.depth_symbols} share the capture")
        if not self.depth_symbols:
            self.pending_snapshots.append((obj, recv))  # validated: applying it later cannot fail
            return
        sym = self._symbol(self.depth_symbols[0])
        if sym is None:  # the snapshot of a symbol not imported
            count_unhandled(self.report, "other_symbol", 1)
            return
        sym.book.snapshot(bids, asks, last_id, t, recv)

    def _mark(self, sym: _Symbol, d: dict[str, Any]) -> None:
        """``markPriceUpdate`` (USD-M)::

            {"e":"markPriceUpdate","E":1680652800010,"s":"BTCUSDT","p":"28155.10000000",
             "P":"28141.47600845","i":"28165.04857143","r":"0.00002760","T":1680652800000}
        """
        e, mark, index, r_str = d["E"], float(d["p"]), float(d.get("i") or "nan"), d.get("r")
        _ints(E=e)
        rate = float(r_str) if r_str else None  # delivery contracts publish r = ""
        t: int = d["T"] if rate is not None else 0
        _ints(T=t)
        sym.px[0].append(e)
        sym.px[1].append(mark)
        sym.px[2].append(index)
        if rate is None:
            return
        fu = sym.fu
        if sym.fund_t is not None and t > sym.fund_t:  # settled at fund_t with the last rate published for it
            fu[0].append(sym.fund_t)
            fu[1].append(sym.fund_r)
            fu[2].append(t)
            fu[3].append(True)
        if (rate, t) != sym.fund_pub:
            fu[0].append(e)
            fu[1].append(rate)
            fu[2].append(t)
            fu[3].append(False)
            sym.fund_pub = (rate, t)
        sym.fund_t, sym.fund_r = t, rate

    def _liquidation(self, sym: _Symbol | None, d: dict[str, Any]) -> None:
        """``forceOrder`` (USD-M docs, "Liquidation Order Streams")::

            {"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT",
             "f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014",
             "z":"0.014","T":1568014460893}}
        """
        o = d["o"]
        if sym is None:  # !forceOrder@arr
            sym = self._symbol(str(o["s"]).upper())
            if sym is None:
                count_unhandled(self.report, "other_symbol", 1)
                return
        side = {"SELL": -1, "BUY": 1}.get(o["S"])
        if side is None:
            raise _BadValue("o.S", o["S"], "BUY or SELL")
        avg, price, qty = float(o.get("ap") or 0.0), float(o["p"]), float(o["q"])
        t = o["T"] if "T" in o else d["E"]
        _ints(**{"o.T": t})
        liq = sym.liq
        liq[0].append(t)
        liq[1].append(side)
        liq[2].append(avg if avg > 0 else price)
        liq[3].append(qty)

    def _kline(self, sym: _Symbol, d: dict[str, Any]) -> None:
        """``kline`` (closed when ``k.x`` is true)::

            {"e":"kline","E":1638747660000,"s":"BTCUSDT","k":{"t":1638747600000,
             "T":1638747659999,"s":"BTCUSDT","i":"1m","f":100,"L":200,"o":"0.0010",
             "c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":true,
             "q":"1.0000","V":"500","Q":"0.500","B":"123456"}}
        """
        k = d["k"]
        if type(k["x"]) is not bool:
            raise _BadValue("k.x", k["x"], "true or false")
        if not k["x"]:
            count_unhandled(self.report, "kline.open", 1)
            return
        t_open, t_close, interval, n = k["t"], k["T"], k["i"], k["n"]
        _ints(**{"k.t": t_open, "k.T": t_close, "k.n": n})
        step = t_close - t_open + 1 if interval == "1M" else _KLINE_MS.get(interval)
        if step is None:
            raise _BadValue("k.i", interval, f"a kline interval ({', '.join([*_KLINE_MS, '1M'])})")
        vol, buy = float(k["v"]), float(k["V"])
        row = (t_open, step, float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]), vol, buy, vol - buy, n)
        for col, v in zip(sym.bars, row, strict=True):
            col.append(v)

    # -- bulk blocks
    def submit(self, data: bytes, size: int, first_line: int, path: str, n_lines: int) -> None:
        """Hand the bulk streams' lines of a block (``data[:size]``, whole lines from line
        ``first_line + 1``) to the worker, and freeze the prefixes the line loop skips for it."""
        streams = list(self.bulk_streams)
        self.skip = tuple(prefix for prefix, _, _ in streams)
        if streams and self.pool is not None:
            fut = self.pool.submit(_bulk_block, data, size, [(prefix, code) for prefix, code, _ in streams])
            self.blocks.append((fut, first_line, path, streams))
            self.block_lines += n_lines

    def _resolve(self) -> None:
        """Collect the worker's results: columns per (symbol, kind), line counts, rejected lines."""
        for fut, first_line, path, streams in self.blocks:
            for (_, code, sym), (cols, no_time, parsed, bad) in zip(streams, fut.result(), strict=True):
                self.report.lines_parsed += parsed
                self.spot_quotes_without_time |= no_time
                for i, reason, field, text in bad:
                    self.rejects.reject(reason, path=path, line_no=first_line + i + 1, text=text, field=field)
                if parsed:
                    sym.bulk[code].append(cols)
        self.blocks, self.block_lines = [], 0

    def _columns(self, sym: _Symbol, code: int) -> list[dict[str, np.ndarray]]:
        """The bulk columns, then the rows decoded here, of one kind; the buffers are emptied."""
        out, sym.bulk[code] = sym.bulk[code], []
        rows = sym.rows[code]
        if rows.ev:
            out.append(rows.arrays())
            sym.rows[code] = _EMPTY_ROWS[code]()
        return out

    # -- writing
    def venue(self) -> str:
        self.evidence_usdm |= any(s.book.saw_usdm for s in self.symbols.values())
        if self.venue_opt is not None:
            venue = self.venue_opt
        elif self.evidence_usdm and any(s.book.saw_spot for s in self.symbols.values()):
            raise ConfigError("the capture holds markPrice or depth events with `pu` (USD-M) and depth events "
                              "without `pu` (spot); pass --venue")
        elif self.evidence_usdm:
            venue = "binance-usdm"
        else:
            venue = "binance-spot"
            if not any(s.book.saw_spot for s in self.symbols.values()):
                note = ("venue inferred as binance-spot by default: no depth or markPrice stream showed the venue; "
                        "pass --venue binance-usdm if the capture is USD-M")
                add_note(self.report, note)
        if self.venue_used is not None and venue != self.venue_used:
            raise DataError(f"venue evidence changed after rows were written as {self.venue_used}; pass --venue",
                            path=self.sources[-1] if self.sources else None, field="venue", value=venue)
        self.venue_used = venue
        return venue

    def maybe_flush(self) -> None:
        if self.block_lines + sum(s.buffered() for s in self.symbols.values()) >= _FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.symbols:
            return
        venue = self.venue()
        w = self.writer
        source = ";".join(dict.fromkeys(self.sources)) or "<none>"
        self._resolve()
        for name, sym in self.symbols.items():
            quotes, trades, aggs = (self._columns(sym, code) for code in (_QUOTE, _TRADE, _AGG))
            for cols in quotes:
                w.write("quotes", venue, name, cols, source=source)
            for cols in trades:
                w.write("trades", venue, name, cols, source=source)
            n_agg = sum(len(c["ts_event"]) for c in aggs)
            if sym.has_trade_stream and n_agg:
                count_unhandled(self.report, "aggTrade", n_agg)
                note = (f"{name}: the capture has both trade and aggTrade streams; only trade is written and the "
                        "aggTrade messages are counted in unhandled['aggTrade'] (writing both would count volume twice)")
                add_note(self.report, note)
            else:
                for cols in aggs:
                    w.write("trades", venue, name, cols, source=source)
            book = sym.book.take_rows(source, self.strict, self.report)
            if book is not None:
                w.write("book", venue, name, book, source=source, depth=self.depth)
            if sym.px[0]:
                e = _ms_to_ns(np.array(sym.px[0], dtype=np.int64))
                w.write("prices", venue, name, {"ts_event": e, "mark": np.array(sym.px[1]),
                                                "index": np.array(sym.px[2]), "spot_ref": np.full(len(e), np.nan)},
                        source=source)
                sym.px = ([], [], [])
            if sym.fu[0]:
                ts, rate, nxt, settle = sym.fu
                w.write("funding", venue, name, {
                    "ts_event": _ms_to_ns(np.array(ts, dtype=np.int64)), "rate": np.array(rate, dtype=np.float64),
                    "interval_ns": np.full(len(ts), self.funding_interval_ns, dtype=np.int64),
                    "next_funding_ts": _ms_to_ns(np.array(nxt, dtype=np.int64)),
                    "is_settlement": np.array(settle, dtype=bool)}, source=source)
                sym.fu = ([], [], [], [])
            if sym.liq[0]:
                t, side, price, qty = sym.liq
                w.write("liquidations", venue, name, {
                    "ts_event": _ms_to_ns(np.array(t, dtype=np.int64)), "side": np.array(side, dtype=np.int8),
                    "price": np.array(price, dtype=np.float64), "qty": np.array(qty, dtype=np.float64)},
                    source=source)
                sym.liq = ([], [], [], [])
            if sym.bars[0]:
                names = ("ts_event", "interval_ns", "open", "high", "low", "close", "volume", "buy_volume",
                         "sell_volume", "trades")
                out = {k: np.array(v, dtype=np.int64 if k in ("ts_event", "interval_ns", "trades") else np.float64)
                       for k, v in zip(names, sym.bars, strict=True)}
                out["ts_event"] = _ms_to_ns(out["ts_event"])
                out["interval_ns"] = out["interval_ns"] * MS
                w.write("bars", venue, name, out, source=source)
                sym.bars = [[] for _ in range(10)]
        self.sources = self.sources[-1:]

    def finish(self) -> None:
        if self.pending_snapshots:  # no depth stream to apply them to
            count_unhandled(self.report, "depth_snapshot", len(self.pending_snapshots))
            self.pending_snapshots = []
        for sym in self.symbols.values():
            sym.book.finish()
        self.flush()
        books = {s.symbol: s.book.stats() for s in self.symbols.values() if s.book.events or s.book.snapshots}
        if books:
            total: dict[str, Any] = {k: sum(b[k] for b in books.values()) for k in _STATS}
            total["partial"] = total["rows_partial"] > 0
            total["depth"] = self.depth
            total["interval_ms"] = self.interval_ns / MS
            if len(books) > 1:
                total["by_symbol"] = books
            self.report.book["book"] = total
            if total["partial"]:
                add_note(self.report, f"book is partial: no REST depth snapshot preceded {total['rows_partial']} "
                         "book row(s); the book was seeded with the one level per side of a bookTicker and built "
                         "from the diff events, so it holds only the levels some diff touched (true quantities) "
                         "and levels beyond those are unknown (missing from the rows)")
        if self.spot_quotes_without_time:
            add_note(self.report, "bookTicker messages without E/T (spot): quotes.ts_event = the local receive "
                     "time (ts_recv)")
        if any(s.fund_t is not None for s in self.symbols.values()):
            add_note(self.report, "funding: published-rate rows are written for the first markPrice message and "
                     "each change of (r, T); a settlement row each time T advances")

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _check_options(options: dict[str, Any]) -> tuple[int, int, int]:
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        from difflib import get_close_matches

        hint = get_close_matches(unknown[0], list(_OPTIONS), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else f"; known options: {', '.join(_OPTIONS)}"
        raise ConfigError(f"{FORMAT}: unknown option, was {unknown[0]!r}{extra}")
    opts = {**_OPTIONS, **options}
    depth, interval_ms, funding_h = opts["depth"], opts["book_interval_ms"], opts["funding_interval_h"]
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConfigError(f"{FORMAT}: depth must be an integer >= 1, was {depth!r}")
    if isinstance(interval_ms, bool) or not isinstance(interval_ms, int | float) or not 0 <= interval_ms < 1e9:
        raise ConfigError(f"{FORMAT}: book_interval_ms must be a number >= 0, was {interval_ms!r}")
    if isinstance(funding_h, bool) or not isinstance(funding_h, int | float) or not 0 < funding_h < 1e6:
        raise ConfigError(f"{FORMAT}: funding_interval_h must be a number > 0, was {funding_h!r}")
    return depth, int(round(interval_ms * MS)), int(round(funding_h * HOUR_NS))


def run(paths: list[Path], writer: TapeWriter, *, venue: str | None = None, symbol: str | None = None,
        tz: str | None = None, strict: bool = False, **options: Any) -> ImportReport:
    """Import Binance raw WebSocket captures (one continuous capture, in the order given).

    Parameters
    ----------
    paths
        ``.dat.gz`` / plain capture files, ``<local receive time µs> <JSON>`` per line.
    writer
        Receives the rows; the caller commits.
    venue
        ``binance-usdm`` or ``binance-spot``; inferred when None (see the module docstring).
    symbol
        Import only this symbol's streams (case-insensitive); None: every symbol, named after its
        stream.
    tz
        Not used: every time in a capture is epoch UTC (only None or ``UTC`` are accepted).
    strict
        Raise :class:`DataError` on the first bad line instead of counting it.
    **options
        ``depth`` (book levels, 20), ``book_interval_ms`` (100), ``funding_interval_h`` (8).

    Returns
    -------
    ImportReport
        With ``book['book']`` holding the order-book statistics.

    Raises
    ------
    ConfigError
        Unknown option, bad venue, or a ``tz`` other than UTC.
    DataError
        In strict mode, on the first bad line (file, line, field, value); always on an unreadable file.
    """
    depth, interval_ns, funding_ns = _check_options(options)
    if venue is not None and venue not in VENUES:
        raise ConfigError(f"{FORMAT}: venue must be one of {', '.join(VENUES)}, was {venue!r}")
    if tz is not None and tz.upper() not in ("UTC", "Z"):
        raise ConfigError(f"{FORMAT}: capture times are epoch UTC; drop --tz, was {tz!r}")
    report = ImportReport(format=FORMAT)
    rejects = LineRejects(report, strict=strict)
    imp = _Importer(writer, report, rejects, venue=venue, symbol=symbol, strict=strict, depth=depth,
                    interval_ns=interval_ns, funding_interval_ns=funding_ns)
    switch = sys.getswitchinterval()
    if imp.pool is not None and switch > _SWITCH_INTERVAL:
        sys.setswitchinterval(_SWITCH_INTERVAL)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the line loop allocates no reference cycles; collections only cost time
    try:
        n, carry, current = 0, b"", -1
        for i, block in _read_blocks([Path(p) for p in paths], report, strict):
            name = str(paths[i])
            if i != current:  # a new file
                imp.sources.append(name)
                n, carry, current = 0, b"", i
            if block is None:  # end of the file: its last line may lack a newline
                data, carry = carry, b""
                lines = [data] if data else []
                size = len(data)
            else:
                data = carry + block if carry else block
                lines = data.split(b"\n")
                carry = lines.pop()
                size = len(data) - len(carry) - 1  # whole lines only
            if not lines:
                continue
            report.lines_in += len(lines)
            imp.submit(data, size, n, name, len(lines))
            n = imp.feed(lines, name, n)
            imp.maybe_flush()
        imp.finish()
    finally:
        imp.close()
        sys.setswitchinterval(switch)
        if gc_was_enabled:
            gc.enable()
    rejects.flush(writer)
    return report

