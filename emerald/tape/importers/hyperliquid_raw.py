"""Hyperliquid WebSocket captures (format ``hyperliquid-raw``): ``<local receive ns> <raw JSON>`` per line.

Channels (Hyperliquid API docs, "WebSocket -> Subscriptions"):

``l2Book`` — a full snapshot of the top levels of each side in every message (not a diff)::

    1737918843893903000 {"channel":"l2Book","data":{"coin":"BTC","time":1737918843542,"levels":[
        [{"n":5,"px":"105055.0","sz":"3.03622"}, ...],      <- bids, best first
        [{"n":13,"px":"105056.0","sz":"6.34472"}, ...]]}}   <- asks, best first

-> one ``book`` row per message (top ``depth`` levels, default 20; levels the message does not
have are NaN price / 0 qty; levels beyond ``depth`` are dropped and counted in ``notes``) **and**
one ``quotes`` row (level 0 of each side, the exact top of book at ``time`` because the message is
a full snapshot; an empty side gives NaN price and size). ``ts_event = time`` (ms),
``ts_recv`` = the local receive time. The order count ``n`` is not stored.

``trades`` — a list of fills; the first message after subscribing replays recent trades::

    1737918847319919000 {"channel":"trades","data":[{"coin":"BTC","side":"B","px":"105056.0",
        "sz":"0.02222","time":1737918847000,"tid":917211710228416,"hash":"0x00...","users":[...]}]}

-> ``trades`` rows: ``side`` is the aggressor (``B`` = the buyer took liquidity = +1, ``A`` = the
seller = -1), ``qty = sz`` (coin units), ``trade_id = tid``, ``ts_event = time`` (ms).

Any other channel (``subscriptionResponse``, ``pong`` ...) is counted in ``unhandled[channel]``. A line
is accepted or rejected as a whole (``bad_line``: no ``<int> <json>`` shape, ``bad_json``,
``bad_message``: a field missing or malformed). The venue defaults to ``hyperliquid``; the symbol
is the message's ``coin`` (``symbol`` renames it and is only allowed for a single-coin capture).
Times are UTC epochs, so ``tz`` does not apply.
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from emerald.errors import ConfigError
from emerald.model.dtypes import DEFAULT_BOOK_DEPTH
from emerald.tape.importers.base import ImportReport, LineRejects
from emerald.tape.importers.text import check_options, write_chunked
from emerald.tape.timeutil import NS, check_zone
from emerald.tape.writer import TapeWriter

_SIDES = {"B": 1, "A": -1}


class _Coin:
    """Rows collected for one coin."""

    def __init__(self) -> None:
        self.book_ts: list[int] = []
        self.book_recv: list[int] = []
        self.bids: list[list[tuple[float, float]]] = []
        self.asks: list[list[tuple[float, float]]] = []
        self.trades: list[tuple[int, int, float, float, int, int]] = []


def _levels(side: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(float(level["px"]), float(level["sz"])) for level in side]


def _parse_book(data: dict[str, Any]) -> tuple[str, int, list[tuple[float, float]], list[tuple[float, float]]]:
    """``{"coin":"BTC","time":1737918843542,"levels":[[{"n":5,"px":"105055.0","sz":"3.03622"}],[...]]}``."""
    bids, asks = data["levels"]
    return str(data["coin"]), int(data["time"]) * NS["ms"], _levels(bids), _levels(asks)


def _parse_trade(t: dict[str, Any], recv: int) -> tuple[str, tuple[int, int, float, float, int, int]]:
    """``{"coin":"BTC","side":"B","px":"105056.0","sz":"0.02222","time":1737918847000,"tid":917211710228416}``."""
    if t["side"] not in _SIDES:
        raise KeyError("side")  # reported as the field at fault
    return str(t["coin"]), (int(t["time"]) * NS["ms"], recv, float(t["px"]), float(t["sz"]), _SIDES[t["side"]],
                            int(t["tid"]))


def run(paths: list[Path], writer: TapeWriter, *, venue: str | None = None, symbol: str | None = None,
        tz: str | None = None, strict: bool = False, **options: Any) -> ImportReport:
    """Import Hyperliquid ``l2Book`` and ``trades`` captures as ``book``, ``quotes`` and ``trades``.

    Parameters
    ----------
    depth
        (option) book levels per side to keep, default 20.

    Raises
    ------
    ConfigError
        An unknown option, a bad ``depth``, a ``tz`` other than UTC, or ``symbol`` for a capture of
        several coins.
    """
    check_options("hyperliquid-raw", options, {"depth"})
    depth = options.get("depth", DEFAULT_BOOK_DEPTH)
    if not str(depth).isdigit() or int(depth) <= 0:
        raise ConfigError(f"depth must be a positive number of levels, was {depth!r}")
    depth = int(depth)
    if tz is not None and check_zone(tz) != "UTC":
        raise ConfigError(f"hyperliquid-raw times are UTC epochs; drop --tz, was {tz!r}")
    venue = venue or "hyperliquid"
    report = ImportReport(format="hyperliquid-raw")
    rejects = LineRejects(report, strict=strict)
    coins: dict[str, _Coin] = defaultdict(_Coin)
    sources: dict[str, set[str]] = defaultdict(set)
    deepest = 0
    for path in map(Path, paths):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            for line_no, raw in enumerate(f, start=1):
                report.lines_in += 1
                line = raw.rstrip(b"\r\n")
                stamp, _, payload = line.partition(b" ")
                if not stamp.isdigit() or not payload:
                    rejects.reject("bad_line", path=str(path), line_no=line_no, text=line)
                    continue
                try:
                    msg = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    rejects.reject("bad_json", path=str(path), line_no=line_no, text=line)
                    continue
                channel = msg.get("channel") if isinstance(msg, dict) else None
                recv = int(stamp)
                try:
                    if channel == "l2Book":
                        coin, ts, bids, asks = _parse_book(msg["data"])
                        c = coins[coin]
                        c.book_ts.append(ts)
                        c.book_recv.append(recv)
                        c.bids.append(bids)
                        c.asks.append(asks)
                        deepest = max(deepest, len(bids), len(asks))
                        sources[coin].add(str(path))
                    elif channel == "trades":
                        parsed = [_parse_trade(t, recv) for t in msg["data"]]
                        for coin, row in parsed:
                            coins[coin].trades.append(row)
                            sources[coin].add(str(path))
                    else:
                        report.unhandled[str(channel)] = report.unhandled.get(str(channel), 0) + 1
                except (KeyError, TypeError, ValueError) as e:
                    rejects.reject("bad_message", path=str(path), line_no=line_no, text=line,
                                   field=str(e.args[0]) if isinstance(e, KeyError) else None)
                    continue
                report.lines_parsed += 1
    if symbol is not None and len(coins) > 1:
        raise ConfigError(f"the capture holds several coins {sorted(coins)}; drop --symbol")
    if deepest > depth:
        report.notes.append(f"l2Book messages carry up to {deepest} levels per side; levels beyond depth {depth} "
                            "were dropped")
    report.book["book"] = {"depth": depth}
    for coin, c in sorted(coins.items()):
        source = ",".join(sorted(sources[coin]))
        _write_coin(writer, venue, symbol or coin, c, depth, source)
    rejects.flush(writer)
    return report


def _side_arrays(sides: list[list[tuple[float, float]]], depth: int) -> tuple[np.ndarray, np.ndarray]:
    px = np.full((len(sides), depth), np.nan)
    qty = np.zeros((len(sides), depth))
    for i, levels in enumerate(sides):
        k = min(len(levels), depth)
        if k:
            arr = np.asarray(levels[:k], dtype=np.float64)
            px[i, :k], qty[i, :k] = arr[:, 0], arr[:, 1]
    return px, qty


def _write_coin(writer: TapeWriter, venue: str, symbol: str, c: _Coin, depth: int, source: str) -> None:
    if c.book_ts:
        ts, recv = np.asarray(c.book_ts, dtype=np.int64), np.asarray(c.book_recv, dtype=np.int64)
        bid_px, bid_qty = _side_arrays(c.bids, depth)
        ask_px, ask_qty = _side_arrays(c.asks, depth)
        write_chunked(writer, "book", venue, symbol, {"ts_event": ts, "ts_recv": recv, "bid_px": bid_px,
                                                      "bid_qty": bid_qty, "ask_px": ask_px, "ask_qty": ask_qty},
                      source=source, depth=depth)
        # top of book; an empty side has no size either
        write_chunked(writer, "quotes", venue, symbol, {
            "ts_event": ts, "ts_recv": recv, "bid_px": bid_px[:, 0],
            "bid_qty": np.where(np.isnan(bid_px[:, 0]), np.nan, bid_qty[:, 0]),
            "ask_px": ask_px[:, 0], "ask_qty": np.where(np.isnan(ask_px[:, 0]), np.nan, ask_qty[:, 0])},
            source=source)
    if c.trades:
        cols = list(zip(*c.trades, strict=True))
        write_chunked(writer, "trades", venue, symbol, {
            "ts_event": np.asarray(cols[0], dtype=np.int64), "ts_recv": np.asarray(cols[1], dtype=np.int64),
            "price": np.asarray(cols[2]), "qty": np.asarray(cols[3]), "side": np.asarray(cols[4], dtype=np.int8),
            "trade_id": np.asarray(cols[5], dtype=np.int64)}, source=source)
