"""The merged event stream: one time-ordered table of events from any set of tape tables.

Every driver (backtest, recorder, paper, live) consumes the same stream, so a metric that needs
two inputs sees exactly the same values in each.

**Order (the tie-break).** Events are sorted by ``ts``, then by the kind priority of
:class:`emerald.model.enums.Kind` (funding, open interest, prices, book deltas, book, quotes,
trades, liquidations, bars: state a decision reads is applied before the trades of the same
nanosecond), then by the order of the instruments as given, then by the row order within the
source table. The sort is stable and fully determined by its inputs.

**Bars** are stamped at their open on the tape but become known only at their close, so a bar
event's ``ts`` is ``ts_event + interval_ns`` (its open time stays available as ``ts - f7``).

**As-of semantics.** "The last spot price known at this perp trade" means: the value carried by
the last event of the other input that comes *before* this event in stream order. Kernels get
this for free by updating their state event by event; :func:`asof_index` gives the same answer
for vectorised joins.

**Fields.** Each event carries eight float64 fields ``f0..f7`` whose meaning depends on its kind:

| kind | f0 | f1 | f2 | f3 | f4 | f5 | f6 | f7 |
|---|---|---|---|---|---|---|---|---|
| trades | price | qty | side (+1/-1) | | | | | |
| quotes | bid_px | bid_qty | ask_px | ask_qty | | | | |
| book | bid_px[0] | bid_qty[0] | ask_px[0] | ask_qty[0] | | | | |
| book_delta | side (+1 bid/-1 ask) | price | qty | is_snapshot | update_id | | | |
| prices | mark | index | spot_ref | | | | | |
| funding | rate | interval_ns | next_funding_ts | is_settlement | | | | |
| open_interest | oi_qty | oi_notional | | | | | | |
| liquidations | price | qty | side | | | | | |
| bars | open | high | low | close | volume | buy_volume | sell_volume | interval_ns |

Unused fields are NaN. Full book depth stays in :attr:`EventTable.books`, indexed by ``row``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from emerald.errors import ConfigError
from emerald.model.enums import Kind

N_FIELDS = 8

FIELDS: dict[str, tuple[str, ...]] = {
    "trades": ("price", "qty", "side"),
    "quotes": ("bid_px", "bid_qty", "ask_px", "ask_qty"),
    "book": ("bid_px", "bid_qty", "ask_px", "ask_qty"),
    "book_delta": ("side", "price", "qty", "is_snapshot", "update_id"),
    "prices": ("mark", "index", "spot_ref"),
    "funding": ("rate", "interval_ns", "next_funding_ts", "is_settlement"),
    "open_interest": ("oi_qty", "oi_notional"),
    "liquidations": ("price", "qty", "side"),
    "bars": ("open", "high", "low", "close", "volume", "buy_volume", "sell_volume", "interval_ns"),
}


def field_index(kind: str, name: str) -> int:
    """Slot ``f<k>`` of field ``name`` for events of ``kind``."""
    try:
        return FIELDS[kind].index(name)
    except (KeyError, ValueError):
        raise ConfigError(f"events of kind {kind!r} have no field {name!r}; fields: {FIELDS.get(kind)}") from None


@dataclass(frozen=True)
class Book:
    """Full-depth snapshots of one instrument; event ``row`` indexes these arrays."""

    bid_px: np.ndarray
    bid_qty: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray


@dataclass
class EventTable:
    """The columnar event stream (batch driver).

    Attributes
    ----------
    ts : int64[n]      event time, ns UTC (bars: close time)
    kind : int8[n]     :class:`Kind` value
    inst : int32[n]    index into :attr:`instruments`
    row : int64[n]     row of the event in its source table (per kind and instrument)
    f : float64[8, n]  fields, see the module table; ``f[k]`` is contiguous
    instruments : list of (venue, symbol)
    books : {inst: Book} full-depth book snapshots
    """

    ts: np.ndarray
    kind: np.ndarray
    inst: np.ndarray
    row: np.ndarray
    f: np.ndarray
    instruments: list[tuple[str, str]]
    books: dict[int, Book] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def inst_index(self, venue: str, symbol: str) -> int:
        try:
            return self.instruments.index((venue, symbol))
        except ValueError:
            raise ConfigError(f"instrument {venue}:{symbol} is not in this event table; it has "
                              f"{[f'{v}:{s}' for v, s in self.instruments]}") from None

    def slice(self, start: int, stop: int) -> EventTable:
        """Events ``[start, stop)`` (views, no copy); books are shared."""
        return EventTable(self.ts[start:stop], self.kind[start:stop], self.inst[start:stop], self.row[start:stop],
                          self.f[:, start:stop], self.instruments, self.books)

    def select(self, mask: np.ndarray) -> EventTable:
        """Events where ``mask`` holds (a copy, order kept)."""
        return EventTable(self.ts[mask], self.kind[mask], self.inst[mask], self.row[mask],
                          np.ascontiguousarray(self.f[:, mask]), self.instruments, self.books)

    def kinds_present(self) -> set[str]:
        return {Kind(int(k)).table for k in np.unique(self.kind)}

    # ------------------------------------------------------------------ building
    @classmethod
    def from_tables(cls, tables: Sequence[tuple[str, str, str, Any]]) -> EventTable:
        """Merge ``(kind, venue, symbol, table)`` items (pyarrow Tables or numpy record arrays
        with the tape schema) into one stream, in the documented order."""
        instruments: list[tuple[str, str]] = []
        parts = []
        books: dict[int, Book] = {}
        for kind, venue, symbol, table in tables:
            if kind not in FIELDS:
                Kind.parse(kind)
            if (venue, symbol) not in instruments:
                instruments.append((venue, symbol))
            inst = instruments.index((venue, symbol))
            cols = _columns(table)
            n = len(cols["ts_event"])
            ts = np.asarray(cols["ts_event"], dtype=np.int64)
            f = np.full((N_FIELDS, n), np.nan)
            if kind == "book":
                bp = _matrix(cols["bid_px"], n)
                bq, ap, aq = _matrix(cols["bid_qty"], n), _matrix(cols["ask_px"], n), _matrix(cols["ask_qty"], n)
                if inst in books:
                    raise ConfigError(f"two book tables for {venue}:{symbol}; concatenate them first")
                books[inst] = Book(bp, bq, ap, aq)
                f[0], f[1], f[2], f[3] = bp[:, 0], bq[:, 0], ap[:, 0], aq[:, 0]
            else:
                for k, name in enumerate(FIELDS[kind]):
                    f[k] = np.asarray(cols[name], dtype=np.float64)
            if kind == "bars":
                ts = ts + np.asarray(cols["interval_ns"], dtype=np.int64)  # known at the close
            parts.append((ts, np.full(n, int(Kind.parse(kind)), np.int8), np.full(n, inst, np.int32),
                          np.arange(n, dtype=np.int64), f))
        if not parts:
            return cls(np.empty(0, np.int64), np.empty(0, np.int8), np.empty(0, np.int32), np.empty(0, np.int64),
                       np.empty((N_FIELDS, 0)), instruments, books)
        ts = np.concatenate([p[0] for p in parts])
        kind = np.concatenate([p[1] for p in parts])
        inst = np.concatenate([p[2] for p in parts])
        row = np.concatenate([p[3] for p in parts])
        f = np.concatenate([p[4] for p in parts], axis=1)
        order = np.lexsort((row, inst, kind, ts))  # last key is primary: ts, kind priority, instrument, row
        return cls(ts[order], kind[order], inst[order], row[order], np.ascontiguousarray(f[:, order]), instruments,
                   books)

    @classmethod
    def from_tape(cls, tape: Any, instruments: Sequence[tuple[str, str]], kinds: Sequence[str] | None = None,
                  start: Any = None, end: Any = None) -> EventTable:
        """Read ``kinds`` (default: every kind present) of ``instruments`` from a
        :class:`~emerald.tape.reader.Tape` in ``[start, end)`` and merge them."""
        from emerald.tape.reader import Tape

        if not isinstance(tape, Tape):
            tape = Tape(tape)
        items = []
        for venue, symbol in instruments:
            present = {e.kind for e in tape.entries(None, venue, symbol)}
            if not present:
                raise ConfigError(f"no data for {venue}:{symbol} in {tape.root}")
            for kind in (kinds or sorted(present, key=lambda k: Kind.parse(k))):
                if kind not in present:
                    continue
                items.append((kind, venue, symbol, tape.read_arrow(kind, venue, symbol, start, end, with_ids=False)))
        table = cls.from_tables(items)
        table.instruments = [tuple(i) for i in instruments if tuple(i) in table.instruments] + [
            i for i in table.instruments if i not in instruments]  # keep the caller's order
        return table

    # ------------------------------------------------------------------ stream driver
    def __iter__(self) -> Iterator[Event]:
        return iter_events(self)


class Event(NamedTuple):
    """One event of the stream (stream driver)."""

    ts: int
    kind: int
    inst: int
    row: int
    f: tuple[float, ...]


def iter_events(table: EventTable, start: int = 0) -> Iterator[Event]:
    """Yield the events of ``table`` one at a time, in stream order."""
    ts, kind, inst, row = table.ts.tolist(), table.kind.tolist(), table.inst.tolist(), table.row.tolist()
    fields = table.f.T.tolist()
    for i in range(start, len(ts)):
        yield Event(ts[i], kind[i], inst[i], row[i], tuple(fields[i]))


def asof_index(left_ts: np.ndarray, right_ts: np.ndarray, *, right_first_on_ties: bool = True) -> np.ndarray:
    """For each left time, the index of the last right event at or before it (-1 if none).

    ``right_first_on_ties`` says whether a right event at the *same* timestamp is visible; in the
    merged stream that holds when the right kind has the lower priority (e.g. quotes before
    trades) — pass ``Kind`` priorities' comparison to keep joins and kernels in agreement.
    """
    side = "right" if right_first_on_ties else "left"
    return np.searchsorted(right_ts, left_ts, side=side).astype(np.int64) - 1


def _columns(table: Any) -> dict[str, Any]:
    if isinstance(table, pa.Table):
        return {name: table.column(name) for name in table.column_names}
    if isinstance(table, np.ndarray) and table.dtype.names:
        return {name: table[name] for name in table.dtype.names}
    if isinstance(table, dict):
        return table
    raise ConfigError(f"cannot read events from {type(table).__name__}")


def _matrix(col: Any, n: int) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray | pa.Array):
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        return np.asarray(arr.flatten(), dtype=np.float64).reshape(n, -1)
    return np.asarray(col, dtype=np.float64).reshape(n, -1)
