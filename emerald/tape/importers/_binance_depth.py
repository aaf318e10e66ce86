"""Compiled path of the ``binance-raw`` importer for the diff-depth events of a live book.

While a book is in sync and its events chain (the common case), runs of ``depthUpdate`` lines are
scanned, applied and turned into top-N rows here, with exactly the results of the Python path in
:mod:`emerald.tape.importers.binance_raw` (the module docstring there states the rules). A line
this path does not recognise, or an event that does not chain, stops the run: the caller moves the
book back to the Python path, which handles that line (and snapshots, gaps, bad lines...).

Layout recognised, byte for byte (USD-M; spot lacks ``T`` and ``pu``; no whitespace, keys in
this order, at most 18-digit non-negative integers, ``T`` and the receive time below 2^53)::

    1680652700666675 {"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1680652700681,
    "T":1680652700674,"s":"BTCUSDT","U":2710246766966,"u":2710246767195,"pu":2710246766950,
    "b":[["5000.00","14.370"],["28082.80","0.000"]],"a":[["28146.80","0.202"]]}}

Decimals: price and quantity strings are read as an integer mantissa ``m`` and a scale ``s``
(digits after the point): ``(0|[1-9][0-9]*)(\\.[0-9]*)?`` with at most 15 significant digits and
``s <= 18``. Such a decimal maps to exactly one float64 (15 digits survive the round trip) and
``m / 10**s`` is that float, bit for bit the same as ``float(text)``: ``m < 2**53`` and
``10**s`` are exact doubles, so the one division rounds correctly. Together with the format code
``2 * s + (a point is written)``, ``(m, code)`` also gives the text back (:func:`decimal_text`),
so comparing pairs is comparing the strings the Python path keeps. Quantity zero (``m == 0``,
always one of the Python path's zero strings here) removes a level.

Book: a level's key is its price mantissa, negated for asks, so that on both sides a larger key
is a better price. All prices of a side must share one format (the Python path keys levels by the
price string, so ``"1.0"`` and ``"1.00"`` would be two levels there): a price in another format
stops the run. Each side holds its live levels in an open-addressing hash table (the diff stream
changes levels all through the book; a sorted array would shift thousands of entries per insert)
and, like the Python path's ``_Side``, a short sorted window of its best keys: every key
``>= limit``, cut back to the best ``keep`` past ``2 * keep`` and ranked again from the table
when fewer than ``depth`` are left.

The kernel keeps the GIL: released, each return would wait for the importer's worker thread to
hand it back (the convoy effect ``binance_raw`` describes), and a run lasts tens of µs. The
kernels are cached on disk (``cache=True``); the first use in a process still pays numba's
import and loading them (under a second on an idle machine, seconds on a busy one).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from numba import njit

# st: int64 scalars of a book in the compiled path (``*_BID``, ``*_ASK``: indexed ``+ side``)
(LAST_U, N_BID, N_ASK, TOP_BID, TOP_ASK, LIMIT_BID, LIMIT_ASK, PFMT_BID, PFMT_ASK, EVENTS, ROWS, N_OUT, LR_VALID,
 LR_EMITTED, LR_N_BID, LR_N_ASK, DEPTH, KEEP) = range(18)
_N_ST = 18
# fst: float64 scalars
NEXT_EMIT, INTERVAL_MS = range(2)
# why a run stopped
DONE, FALLBACK, GROW = range(3)

# local receive times must be µs between 2000-01-01 and 2100-01-01 (binance_raw uses these too)
MIN_US, MAX_US = 946_684_800_000_000, 4_102_444_800_000_000
_MAX_EXACT = 1 << 53
_MAX_SIG = 15
_MAX_SCALE = 18
_NO_LIMIT = -(1 << 63)          # a window holding every key of its side
_MIX = -7046029254386353131     # 0x9E3779B97F4A7C15 (Fibonacci hashing), as int64

_POW10 = np.array([float(10**k) for k in range(_MAX_SCALE + 1)])  # exact doubles


def _lit(text: bytes) -> np.ndarray:
    return np.frombuffer(text, np.uint8).copy()


_L_STREAM = _lit(b'{"stream":"')
_L_DATA = _lit(b'","data":{"e":"depthUpdate","E":')
_L_T = _lit(b',"T":')
_L_S = _lit(b',"s":"')
_L_U = _lit(b'","U":')
_L_LU = _lit(b',"u":')
_L_PU = _lit(b',"pu":')
_L_B = _lit(b',"b":[')
_L_A = _lit(b'],"a":[')
_L_END = _lit(b']}}')

# --------------------------------------------------------------------------------------------
# decimals


_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.([0-9]*))?")


def parse_decimal(text: Any) -> tuple[int, int] | None:
    """``(mantissa, format code)`` of a decimal string this path can hold, else None (the same
    grammar as the compiled scanner)."""
    if type(text) is not str:
        return None
    m = _DECIMAL.fullmatch(text)
    if m is None:
        return None
    whole, point, frac = m.group(1), m.group(2), m.group(3) or ""
    digits = whole + frac
    if len(frac) > _MAX_SCALE or len(digits.lstrip("0")) > _MAX_SIG:
        return None
    return int(digits), 2 * len(frac) + (point is not None)


def decimal_text(mantissa: int, code: int) -> str:
    """The string :func:`parse_decimal` read ``(mantissa, code)`` from."""
    scale = code >> 1
    if scale == 0:
        return str(mantissa) + ("." if code & 1 else "")
    digits = str(mantissa).rjust(scale + 1, "0")
    return f"{digits[:-scale]}.{digits[-scale:]}"


@njit(cache=True)
def decimal_value(mantissa: int, code: int) -> float:
    """The float64 of a decimal, bit-identical to ``float(text)``."""
    return mantissa / _POW10[code >> 1]


@njit(cache=True)
def scan_decimal(buf: np.ndarray, pos: int, end: int) -> tuple[int, int, int]:
    """Read a decimal from ``buf[pos:]`` up to and including its closing quote:
    ``(mantissa, format code, position after the quote)``; position -1 when the text is not one
    this path holds (the grammar of :func:`parse_decimal`)."""
    if pos >= end or not 48 <= buf[pos] <= 57:
        return 0, 0, -1
    m = 0
    sig = 0
    if buf[pos] == 48:  # "0" is the only integer part that may start with 0
        pos += 1
    else:
        while pos < end and 48 <= buf[pos] <= 57:
            m = m * 10 + (buf[pos] - 48)
            sig += 1
            pos += 1
            if sig > _MAX_SIG:
                return 0, 0, -1
    code = 0
    if pos < end and buf[pos] == 46:  # "."
        pos += 1
        scale = 0
        while pos < end and 48 <= buf[pos] <= 57:
            d = buf[pos] - 48
            if sig or d:
                sig += 1
            m = m * 10 + d
            scale += 1
            pos += 1
            if sig > _MAX_SIG or scale > _MAX_SCALE:
                return 0, 0, -1
        code = 2 * scale + 1
    if pos >= end or buf[pos] != 34:  # the closing quote
        return 0, 0, -1
    return m, code, pos + 1


# --------------------------------------------------------------------------------------------
# the line scanner


@njit(cache=True)
def _match(buf: np.ndarray, pos: int, end: int, lit: np.ndarray) -> int:
    """Position after ``lit`` when ``buf[pos:]`` starts with it, else -1."""
    n = len(lit)
    if pos < 0 or pos + n > end:
        return -1
    for k in range(n):
        if buf[pos + k] != lit[k]:
            return -1
    return pos + n


@njit(cache=True)
def _scan_int(buf: np.ndarray, pos: int, end: int) -> tuple[int, int]:
    """A JSON integer ``0|[1-9][0-9]{0,17}``: ``(value, position after it)``, position -1 if none."""
    if pos < 0 or pos >= end or not 48 <= buf[pos] <= 57:
        return 0, -1
    if buf[pos] == 48:
        return 0, pos + 1
    v = 0
    n = 0
    while pos < end and 48 <= buf[pos] <= 57:
        v = v * 10 + (buf[pos] - 48)
        n += 1
        pos += 1
    if n > 18:
        return 0, -1
    return v, pos


@njit(cache=True)
def _scan_name(buf: np.ndarray, pos: int, end: int) -> int:
    """Skip a stream or symbol name (``[0-9A-Za-z@_.!-]+``, plain JSON string text) up to its
    closing quote (not consumed); -1 if it holds anything else."""
    start = pos
    while 0 <= pos < end:
        c = buf[pos]
        if c == 34:
            return pos if pos > start else -1
        if not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 64 or c == 95 or c == 46 or c == 33
                or c == 45):
            return -1
        pos += 1
    return -1


@njit(cache=True)
def _scan_levels(buf: np.ndarray, pos: int, end: int, pfmt: int, sign: int, tk: np.ndarray, tq: np.ndarray,
                 tf: np.ndarray, n: int) -> tuple[int, int]:
    """Read ``["price","qty"],...`` up to the closing ``]`` (not consumed) into the key (``sign``
    times the price mantissa), quantity mantissa and quantity code arrays from index ``n``:
    ``(new n, position)``, position -1 when a level is not as expected (a price that is not > 0
    or not in the side's format ``pfmt`` included)."""
    if pos < 0 or pos >= end:
        return n, -1
    if buf[pos] == 93:  # "]": no levels
        return n, pos
    while True:
        if n >= len(tk) or pos + 2 > end or buf[pos] != 91 or buf[pos + 1] != 34:  # ["
            return n, -1
        pm, pcode, pos = scan_decimal(buf, pos + 2, end)
        if pos < 0 or pm == 0 or pcode != pfmt or pos + 2 > end or buf[pos] != 44 or buf[pos + 1] != 34:  # ,"
            return n, -1
        qm, qcode, pos = scan_decimal(buf, pos + 2, end)
        if pos < 0 or pos + 1 >= end or buf[pos] != 93:  # ]
            return n, -1
        tk[n] = sign * pm
        tq[n] = qm
        tf[n] = qcode
        n += 1
        pos += 1
        if buf[pos] == 93:
            return n, pos
        if buf[pos] != 44:
            return n, -1
        pos += 1


# --------------------------------------------------------------------------------------------
# the book: per side a hash table of all levels and a sorted window of the best keys


@njit(cache=True)
def _home(key: int, mask: int) -> int:
    h = key * _MIX  # wraps
    return (h ^ (h >> 31)) & mask


@njit(cache=True)
def _slot(hs: np.ndarray, side: int, key: int) -> int:
    """The slot holding ``key`` in a side's table (linear probing), or the empty one where it
    would go."""
    mask = hs.shape[2] - 1
    i = _home(key, mask)
    while True:
        k = hs[side, 0, i]
        if k == key or k == 0:
            return i
        i = (i + 1) & mask


@njit(cache=True)
def _table_delete(hs: np.ndarray, side: int, i: int) -> None:
    """Empty slot ``i``, moving later entries of its probe run back (no tombstones)."""
    mask = hs.shape[2] - 1
    j = i
    while True:
        j = (j + 1) & mask
        key = hs[side, 0, j]
        if key == 0:
            break
        k = _home(key, mask)
        if (i < k <= j) if i <= j else (i < k or k <= j):
            continue  # its home lies after the hole: it stays
        for c in range(3):
            hs[side, c, i] = hs[side, c, j]
        i = j
    hs[side, 0, i] = 0


@njit(cache=True)
def _bisect(top: np.ndarray, side: int, n: int, key: int) -> int:
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if top[side, mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def rebuild_top(hs: np.ndarray, top: np.ndarray, st: np.ndarray, side: int) -> None:
    """Rank the side's best ``keep`` keys into its window (a sync point, or the window ran short)."""
    keys = np.empty(st[N_BID + side], np.int64)
    j = 0
    for i in range(hs.shape[2]):
        if hs[side, 0, i] != 0:
            keys[j] = hs[side, 0, i]
            j += 1
    keys.sort()
    keep = st[KEEP]
    if j > keep:
        keys = keys[j - keep:]
        st[LIMIT_BID + side] = keys[0]
    else:
        st[LIMIT_BID + side] = _NO_LIMIT
    top[side, :len(keys)] = keys
    st[TOP_BID + side] = len(keys)


@njit(cache=True)
def set_level(hs: np.ndarray, top: np.ndarray, st: np.ndarray, side: int, key: int, qm: int, qcode: int) -> None:
    """Set one level (quantity 0 removes it). The window holds every key ``>= limit``, sorted
    (best last), and is cut back to the best ``keep`` past ``2 * keep``. The caller makes sure
    the table stays at most half full."""
    i = _slot(hs, side, key)
    in_top = key >= st[LIMIT_BID + side]
    n = st[TOP_BID + side]
    if hs[side, 0, i] == key:
        if qm != 0:
            hs[side, 1, i] = qm
            hs[side, 2, i] = qcode
            return
        _table_delete(hs, side, i)
        st[N_BID + side] -= 1
        if in_top:
            lo = _bisect(top, side, n, key)
            for k in range(lo, n - 1):
                top[side, k] = top[side, k + 1]
            st[TOP_BID + side] = n - 1
        return
    if qm == 0:
        return
    hs[side, 0, i] = key
    hs[side, 1, i] = qm
    hs[side, 2, i] = qcode
    st[N_BID + side] += 1
    if in_top:
        lo = _bisect(top, side, n, key)
        for k in range(n, lo, -1):
            top[side, k] = top[side, k - 1]
        top[side, lo] = key
        n += 1
        keep = st[KEEP]
        if n > 2 * keep:
            top[side, :keep] = top[side, n - keep:n].copy()
            n = keep
            st[LIMIT_BID + side] = top[side, 0]
        st[TOP_BID + side] = n


@njit(cache=True)
def best_levels(hs: np.ndarray, top: np.ndarray, st: np.ndarray, side: int, out: np.ndarray) -> int:
    """Write ``(key, qty mantissa, qty code)`` of the side's best ``depth`` levels (best first)
    into ``out[side]``; returns how many."""
    if st[TOP_BID + side] < st[DEPTH] and st[LIMIT_BID + side] != _NO_LIMIT:
        rebuild_top(hs, top, st, side)
    n = st[TOP_BID + side]
    m = min(n, st[DEPTH])
    for j in range(m):
        key = top[side, n - 1 - j]
        i = _slot(hs, side, key)
        out[side, 0, j] = key
        out[side, 1, j] = hs[side, 1, i]
        out[side, 2, j] = hs[side, 2, i]
    return m


@njit(cache=True)
def _emit(hs: np.ndarray, top: np.ndarray, st: np.ndarray, fst: np.ndarray, lr: np.ndarray, row: np.ndarray,
          out_i: np.ndarray, out_f: np.ndarray, t: int, recv: int) -> None:
    """Write the top-N row when it differs from the last one written (``_Book._emit``)."""
    nb = best_levels(hs, top, st, 0, row)
    na = best_levels(hs, top, st, 1, row)
    if st[LR_VALID] == 1 and st[LR_N_BID] == nb and st[LR_N_ASK] == na:
        same = True
        for side, m in ((0, nb), (1, na)):
            for j in range(m):
                for c in range(3):
                    if row[side, c, j] != lr[side, c, j]:
                        same = False
        if same:
            return
    lr[:] = row
    st[LR_VALID] = 1
    st[LR_EMITTED] = 1
    st[LR_N_BID] = nb
    st[LR_N_ASK] = na
    fst[NEXT_EMIT] = t + fst[INTERVAL_MS]
    r = st[N_OUT]
    out_i[r, 0] = t
    out_i[r, 1] = recv
    bid_code, ask_code = st[PFMT_BID], st[PFMT_ASK]
    for j in range(st[DEPTH]):
        if j < nb:  # bids as -price, like the Python rows
            out_f[r, 0, j] = -decimal_value(row[0, 0, j], bid_code)
            out_f[r, 1, j] = decimal_value(row[0, 1, j], row[0, 2, j])
        else:
            out_f[r, 0, j] = np.nan
            out_f[r, 1, j] = 0.0
        if j < na:
            out_f[r, 2, j] = decimal_value(-row[1, 0, j], ask_code)
            out_f[r, 3, j] = decimal_value(row[1, 1, j], row[1, 2, j])
        else:
            out_f[r, 2, j] = np.nan
            out_f[r, 3, j] = 0.0
    st[N_OUT] = r + 1
    st[ROWS] += 1


@njit(cache=True)
def run_events(buf: np.ndarray, offs: np.ndarray, i0: int, hs: np.ndarray, top: np.ndarray, st: np.ndarray,
               fst: np.ndarray, lr: np.ndarray, out_i: np.ndarray, out_f: np.ndarray) -> tuple[int, int]:
    """Apply the lines ``buf[offs[i]:offs[i + 1]]`` from ``i0`` on to a live book; stop at the
    first line that is not a recognised, chaining event. Returns ``(first line not applied,
    DONE | FALLBACK | GROW)``; GROW: the tables need more room (nothing of that line applied).
    ``out_*`` must have room for one row per line."""
    n_lines = len(offs) - 1
    longest = 0
    for i in range(i0, n_lines):
        longest = max(longest, offs[i + 1] - offs[i])
    cap = longest // 9 + 2  # a level takes >= 9 bytes
    tk = np.empty(cap, np.int64)
    tq = np.empty(cap, np.int64)
    tf = np.empty(cap, np.int64)
    row = np.empty_like(lr)
    room = hs.shape[2] // 2
    for i in range(i0, n_lines):
        pos, end = offs[i], offs[i + 1]
        recv, pos = _scan_int(buf, pos, end)
        if pos < 0 or pos >= end or buf[pos] != 32 or not MIN_US <= recv < MAX_US:
            return i, FALLBACK
        pos = _match(buf, pos + 1, end, _L_STREAM)
        pos = _scan_name(buf, pos, end)
        e_ms, pos = _scan_int(buf, _match(buf, pos, end, _L_DATA), end)
        t_ms = 0
        if pos >= 0 and _match(buf, pos, end, _L_T) >= 0:
            t_ms, pos = _scan_int(buf, pos + len(_L_T), end)
        pos = _match(buf, _scan_name(buf, _match(buf, pos, end, _L_S), end), end, _L_U)
        first, pos = _scan_int(buf, pos, end)
        last, pos = _scan_int(buf, _match(buf, pos, end, _L_LU), end)
        prev = -1
        has_pu = pos >= 0 and _match(buf, pos, end, _L_PU) >= 0
        if has_pu:
            prev, pos = _scan_int(buf, pos + len(_L_PU), end)
        n_b, pos = _scan_levels(buf, _match(buf, pos, end, _L_B), end, st[PFMT_BID], 1, tk, tq, tf, 0)
        n_all, pos = _scan_levels(buf, _match(buf, pos, end, _L_A), end, st[PFMT_ASK], -1, tk, tq, tf, n_b)
        if _match(buf, pos, end, _L_END) != end:
            return i, FALLBACK
        t = t_ms if t_ms != 0 else e_ms  # Python: d.get("T") or d["E"]
        if t >= _MAX_EXACT:
            return i, FALLBACK
        if (prev != st[LAST_U]) if has_pu else (first != st[LAST_U] + 1):
            return i, FALLBACK  # stale, a gap: the Python path decides
        if st[N_BID] + n_b > room or st[N_ASK] + n_all - n_b > room:
            return i, GROW
        for j in range(n_all):
            set_level(hs, top, st, 0 if j < n_b else 1, tk[j], tq[j], tf[j])
        st[EVENTS] += 1
        st[LAST_U] = last
        if t >= fst[NEXT_EMIT]:
            _emit(hs, top, st, fst, lr, row, out_i, out_f, t, recv)
    return n_lines, DONE


@njit(cache=True)
def fill_side(hs: np.ndarray, top: np.ndarray, st: np.ndarray, side: int, keys: np.ndarray, qm: np.ndarray,
              qc: np.ndarray) -> None:
    """Put levels (distinct keys, non-zero quantities) into an empty side and rank its window."""
    for j in range(len(keys)):
        i = _slot(hs, side, keys[j])
        hs[side, 0, i] = keys[j]
        hs[side, 1, i] = qm[j]
        hs[side, 2, i] = qc[j]
    st[N_BID + side] = len(keys)
    rebuild_top(hs, top, st, side)


@njit(cache=True)
def parse_texts(buf: np.ndarray, offs: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Mantissas and format codes of the decimals ``buf[offs[i]:offs[i + 1] - 1]`` (each
    followed by a quote); False when one is not a decimal this path holds."""
    n = len(offs) - 1
    m = np.empty(n, np.int64)
    code = np.empty(n, np.int64)
    for i in range(n):
        m[i], code[i], pos = scan_decimal(buf, offs[i], offs[i + 1])
        if pos != offs[i + 1]:
            return m, code, False
    return m, code, True


# --------------------------------------------------------------------------------------------
# the Python side


class Lines:
    """A batch of raw lines as one byte buffer and line offsets, for :func:`run_events`."""

    __slots__ = ("buf", "offs")

    def __init__(self, lines: list[bytes]) -> None:
        self.buf = np.frombuffer(b"".join(lines), np.uint8)
        self.offs = np.zeros(len(lines) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, lines), np.int64, len(lines)), out=self.offs[1:])


class FastBook:
    """The state of one live book in the compiled path: per side a hash table of the live levels
    (``hs[side]``: key, quantity mantissa, quantity code; key 0 marks an empty slot, as no price
    is 0) and a sorted window of its best keys (``top``), the scalars (``st``, ``fst``), the last
    row written (``lr``) and the rows not yet taken."""

    __slots__ = ("st", "fst", "hs", "top", "lr", "out_i", "out_f", "last_row_in", "applied")

    def __init__(self, depth: int, interval_ms: float) -> None:
        keep = max(8 * depth, 128)  # as the Python path's window
        self.st = np.zeros(_N_ST, np.int64)
        self.st[DEPTH], self.st[KEEP] = depth, keep
        self.fst = np.array([0.0, interval_ms])
        self.hs = np.zeros((2, 3, 0), np.int64)
        self.top = np.zeros((2, 2 * keep + 1), np.int64)
        self.lr = np.zeros((2, 3, depth), np.int64)
        self.out_i = np.empty((0, 2), np.int64)
        self.out_f = np.empty((0, 4, depth))
        self.last_row_in: Any = None
        self.applied = 0  # events applied since load()

    def load(self, bids: list[tuple[Any, Any]], asks: list[tuple[Any, Any]], last_u: int, next_emit: float,
             last_row: tuple[list[str], list[str], list[str], list[str]] | None) -> bool:
        """Take the live levels ``(price, qty)`` and emission state of a Python book; False
        (nothing taken) when a side is empty or holds a level this path cannot hold."""
        if not -(1 << 62) <= last_u < 1 << 62:
            return False
        sides = []
        for side, levels in enumerate((bids, asks)):
            parsed = _parse_all([x for level in levels for x in level])
            if parsed is None or not levels:
                return False
            m, codes = parsed
            pm, pc, qm, qc = m[0::2], codes[0::2], m[1::2], codes[1::2]
            if (pc != pc[0]).any() or not pm.all() or not qm.all():
                return False
            keys = pm if side == 0 else -pm  # contiguous arrays: one compiled signature
            sides.append((np.ascontiguousarray(keys), np.ascontiguousarray(qm), np.ascontiguousarray(qc), int(pc[0])))
        size = 1024
        while size < 4 * max(len(keys) for keys, *_ in sides):
            size *= 2
        self.hs = np.zeros((2, 3, size), np.int64)
        st = self.st
        for side, (keys, qm, qc, code) in enumerate(sides):
            st[PFMT_BID + side] = code
            fill_side(self.hs, self.top, st, side, keys, qm, qc)
        st[LAST_U] = last_u
        self.fst[NEXT_EMIT] = next_emit
        self.last_row_in = last_row
        st[LR_VALID] = st[LR_EMITTED] = 0
        if last_row is not None:
            st[LR_VALID] = self._load_last_row(last_row)
        st[EVENTS] = st[ROWS] = st[N_OUT] = 0
        self.applied = 0
        return True

    def _load_last_row(self, row: tuple[list[str], list[str], list[str], list[str]]) -> int:
        """1 when the last row's strings are all ones this path holds (else no row of this path
        can equal it: 0, "always write")."""
        for side, (prices, qtys) in enumerate(((row[0], row[1]), (row[2], row[3]))):
            self.st[LR_N_BID + side] = len(prices)
            for j, (p, q) in enumerate(zip(prices, qtys, strict=True)):
                pp, qq = parse_decimal(p), parse_decimal(q)
                if pp is None or qq is None or pp[1] != self.st[PFMT_BID + side]:
                    return 0
                self.lr[side, :, j] = ((1 if side == 0 else -1) * pp[0], qq[0], qq[1])
        return 1

    def run(self, lines: Lines, i: int) -> tuple[int, int, int]:
        """Apply ``lines`` from index ``i`` on, until one needs the Python path:
        ``(first line not applied, events applied, rows written)``."""
        st = self.st
        need = int(st[N_OUT]) + len(lines.offs) - 1 - i
        if need > len(self.out_i):
            size = max(need, 2 * len(self.out_i), 256)
            self.out_i = _grown(self.out_i, size, int(st[N_OUT]))
            self.out_f = _grown(self.out_f, size, int(st[N_OUT]))
        st[EVENTS] = st[ROWS] = 0
        while True:
            i, why = run_events(lines.buf, lines.offs, i, self.hs, self.top, st, self.fst, self.lr, self.out_i,
                                self.out_f)
            if why != GROW:
                break
            old, self.hs = self.hs, np.zeros((2, 3, 2 * self.hs.shape[2]), np.int64)
            for side in (0, 1):
                keys, qm, qc = (old[side, c][old[side, 0] != 0] for c in range(3))
                fill_side(self.hs, self.top, st, side, keys, qm, qc)
        self.applied += int(st[EVENTS])
        return i, int(st[EVENTS]), int(st[ROWS])

    @property
    def last_u(self) -> int:
        return int(self.st[LAST_U])

    @property
    def next_emit(self) -> float:
        return float(self.fst[NEXT_EMIT])

    @property
    def n_rows(self) -> int:
        return int(self.st[N_OUT])

    def take_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows written since the last call: ``(ms time, receive µs)`` per row and
        ``(-bid price, bid qty, ask price, ask qty)`` per row and level (NaN / 0 past a short side)."""
        n = int(self.st[N_OUT])
        self.st[N_OUT] = 0
        return self.out_i[:n].copy(), self.out_f[:n].copy()

    def levels(self) -> tuple[dict[str, str], dict[str, str]]:
        """The live levels of both sides as ``{price: qty}`` strings."""
        out = []
        for side, sign in ((0, 1), (1, -1)):
            code, used = int(self.st[PFMT_BID + side]), self.hs[side, 0] != 0
            keys, qm, qc = (self.hs[side, c][used].tolist() for c in range(3))
            out.append({decimal_text(sign * k, code): decimal_text(m, c) for k, m, c in zip(keys, qm, qc, strict=True)})
        return out[0], out[1]

    def last_row(self) -> Any:
        """The last row written, as the Python path keeps it: price and quantity strings."""
        if not self.st[LR_EMITTED]:
            return self.last_row_in
        row = []
        for side, sign in ((0, 1), (1, -1)):
            n, code = int(self.st[LR_N_BID + side]), int(self.st[PFMT_BID + side])
            keys, qm, qc = (self.lr[side, c, :n].tolist() for c in range(3))
            row += [[decimal_text(sign * k, code) for k in keys], [decimal_text(m, c) for m, c in zip(qm, qc, strict=True)]]
        return tuple(row)


def _parse_all(texts: list[Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Mantissas and codes of decimal strings (:func:`parse_texts`), None if any is not one."""
    if not texts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    try:
        joined = '"'.join(texts) + '"'
    except TypeError:  # not all strings
        return None
    raw = joined.encode()
    if len(raw) != len(joined):  # not ASCII
        return None
    offs = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1, out=offs[1:])
    m, code, ok = parse_texts(np.frombuffer(raw, np.uint8), offs)
    return (m, code) if ok else None


def _grown(a: np.ndarray, size: int, keep: int) -> np.ndarray:
    out = np.empty((size, *a.shape[1:]), a.dtype)
    out[:keep] = a[:keep]
    return out
