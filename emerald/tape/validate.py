"""Row validation: every rule is vectorised and named; a failing row carries the first rule it broke.

Rules are applied in two stages. **Row rules** look at one row only (finite positive prices,
non-negative quantities, side in +-1, timestamps in range, crossed books, OHLC consistency), so
they give the same answer however the input is chunked. **Context rules** need neighbours
(duplicates, price spikes against a rolling median) and run on the merged, time-sorted
partition at commit time.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from emerald.tape.schema import RULES
from emerald.tape.timeutil import MAX_TS_NS, MIN_TS_NS

OK = 0
# Default factor for the spike rule: a price more than 10x (or less than 1/10) the median of
# its block of neighbours is quarantined as `spike.<column>`.
DEFAULT_SPIKE_RATIO = 10.0
SPIKE_BLOCK = 256


def _col(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    return col.to_numpy() if col.num_chunks != 1 else col.chunk(0).to_numpy(zero_copy_only=False)


def _flat(table: pa.Table, name: str, depth: int) -> np.ndarray:
    arr = table.column(name).combine_chunks()
    return np.asarray(arr.flatten(), dtype=np.float64).reshape(-1, depth)


def row_reasons(kind: str, table: pa.Table, depth: int = 0) -> tuple[np.ndarray, list[str]]:
    """Return ``(codes, names)``: per-row rule code (0 = valid) and the rule name of each code."""
    n = table.num_rows
    codes = np.zeros(n, dtype=np.int16)
    names: list[str] = ["ok"]
    rules = RULES[kind]

    def flag(mask: np.ndarray, name: str) -> None:
        mask = mask & (codes == OK)
        if mask.any():
            if name not in names:
                names.append(name)
            codes[mask] = names.index(name)

    for ts_name in ("ts_event", "ts_recv"):
        if ts_name in table.column_names:
            ts = _col(table, ts_name)
            flag((ts < MIN_TS_NS) | (ts >= MAX_TS_NS), f"ts_range.{ts_name}")
    for c in rules.prices:
        x = _col(table, c)
        flag(~np.isfinite(x), f"not_finite.{c}")
        flag(x <= 0, f"not_positive.{c}")
    for c in rules.optional_prices:
        x = _col(table, c)
        flag(np.isinf(x), f"not_finite.{c}")
        flag(x <= 0, f"not_positive.{c}")
    for c in rules.quantities:
        x = _col(table, c)
        flag(~np.isfinite(x), f"not_finite.{c}")
        flag(x < 0, f"negative.{c}")
    for c in rules.optional_quantities:
        x = _col(table, c)
        flag(np.isinf(x), f"not_finite.{c}")
        flag(x < 0, f"negative.{c}")
    for c in rules.sides:
        x = _col(table, c)
        flag((x != 1) & (x != -1), f"bad_side.{c}")
    for c in rules.finite:
        flag(~np.isfinite(_col(table, c)), f"not_finite.{c}")
    for c in rules.positive_ints:
        flag(_col(table, c) <= 0, f"not_positive.{c}")

    if kind == "book" and n:
        bp, bq = _flat(table, "bid_px", depth), _flat(table, "bid_qty", depth)
        ap, aq = _flat(table, "ask_px", depth), _flat(table, "ask_qty", depth)
        for px, qty, side in ((bp, bq, "bid"), (ap, aq, "ask")):
            filled = ~np.isnan(px)
            flag(np.isinf(px).any(axis=1) | (filled & (px <= 0)).any(axis=1), f"not_positive.{side}_px")
            flag((~np.isfinite(qty) & filled).any(axis=1) | (qty < 0).any(axis=1), f"negative.{side}_qty")
            # empty levels (NaN price) must have qty 0 and come after all filled levels
            flag((~filled & (np.nan_to_num(qty) != 0)).any(axis=1), f"book_levels.{side}_qty_without_price")
            flag((~filled[:, :-1] & filled[:, 1:]).any(axis=1), f"book_levels.{side}_hole")
        with np.errstate(invalid="ignore"):
            flag((np.diff(bp, axis=1) >= 0).any(axis=1), "book_levels.bid_not_descending")
            flag((np.diff(ap, axis=1) <= 0).any(axis=1), "book_levels.ask_not_ascending")
            flag(bp[:, 0] >= ap[:, 0], "crossed_book")
    if kind == "quotes" and n:
        bid, ask = _col(table, "bid_px"), _col(table, "ask_px")
        flag(np.isnan(bid) & np.isnan(ask), "empty_quote")
        with np.errstate(invalid="ignore"):
            flag(bid >= ask, "crossed_book")
    if kind == "prices" and n:
        flag(np.isnan(_col(table, "mark")) & np.isnan(_col(table, "index")) & np.isnan(_col(table, "spot_ref")),
             "empty_prices")
    if kind == "open_interest" and n:
        flag(np.isnan(_col(table, "oi_qty")) & np.isnan(_col(table, "oi_notional")), "empty_open_interest")
    if kind == "bars" and n:
        o, h, lo, c = (_col(table, k) for k in ("open", "high", "low", "close"))
        flag((h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo), "bar_ohlc")
    return codes, names


def spike_mask(x: np.ndarray, ratio: float = DEFAULT_SPIKE_RATIO, block: int = SPIKE_BLOCK) -> np.ndarray:
    """Rows whose value is more than ``ratio`` times (or less than 1/``ratio`` of) the median of
    their block of ``block`` consecutive rows (NaN ignored). Series shorter than 5 values are not
    checked: a median of fewer points cannot tell which value is the spike."""
    n = x.size
    if n < 5 or ratio <= 0 or not np.isfinite(ratio):
        return np.zeros(n, dtype=bool)
    med_fn = np.nanmedian if bool(np.isnan(x).any()) else np.median
    nb = max(1, n // block)
    if nb == 1:
        ref = np.full(n, med_fn(x))
    else:
        ref = np.repeat(med_fn(x[: nb * block].reshape(nb, block), axis=1), block)
        # the remainder joins the last block
        ref = np.concatenate([ref[: (nb - 1) * block], np.full(n - (nb - 1) * block, med_fn(x[(nb - 1) * block:]))])
    with np.errstate(invalid="ignore"):
        ok_ref = np.isfinite(ref) & (ref > 0)
        return ok_ref & ((x > ref * ratio) | (x < ref / ratio))
