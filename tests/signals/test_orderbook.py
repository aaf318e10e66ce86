"""Order-book metrics: hand-computed snapshots, and the contract on gridded books where levels,
trades and large orders share prices (the generic contract streams rarely make them meet)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals import Metric, get_spec
from emerald.testing.contract import check_contract
from emerald.testing.tapes import T0

S = 1_000_000_000
NAN = math.nan


def book_table(snaps: list[tuple[int, list[tuple[float, float]], list[tuple[float, float]]]],
               depth: int = 5) -> dict[str, np.ndarray]:
    """Snapshots ``(seconds after T0, [(bid px, qty)...], [(ask px, qty)...])``, tails padded empty."""
    n = len(snaps)
    bp, bq, ap, aq = (np.full((n, depth), NAN), np.zeros((n, depth)), np.full((n, depth), NAN), np.zeros((n, depth)))
    for r, (_, bids, asks) in enumerate(snaps):
        for lv, (p, q) in enumerate(bids):
            bp[r, lv], bq[r, lv] = p, q
        for lv, (p, q) in enumerate(asks):
            ap[r, lv], aq[r, lv] = p, q
    ts = np.array([T0 + int(t * S) for t, _, _ in snaps], dtype=np.int64)
    return {"ts_event": ts, "ts_recv": ts, "bid_px": bp, "bid_qty": bq, "ask_px": ap, "ask_qty": aq}


def trade_table(trades: list[tuple[float, float, float]]) -> dict[str, np.ndarray]:
    """Trades ``(seconds after T0, price, qty)``."""
    ts = np.array([T0 + int(t * S) for t, _, _ in trades], dtype=np.int64)
    n = len(trades)
    return {"ts_event": ts, "ts_recv": ts, "price": np.array([p for _, p, _ in trades], dtype=float),
            "qty": np.array([q for _, _, q in trades], dtype=float), "side": np.ones(n, np.int8),
            "trade_id": np.arange(n)}


def events(snaps, trades=(), depth: int = 5, other: bool = False) -> EventTable:
    items = [("book", "v", "X", book_table(snaps, depth))]
    if trades:
        items.append(("trades", "v", "X", trade_table(list(trades))))
    if other:  # another instrument's book: its rows must never be read as ours
        items.append(("book", "v", "Y", book_table([(0.5, [(1.0, 1.0)], [(2.0, 1.0)])], depth)))
    return EventTable.from_tables(items)


def run(name: str, ev: EventTable, **params) -> np.ndarray:
    spec = get_spec(name)
    p = spec.make_params(**params)
    check_contract(spec, ev, p)  # every hand-made case also passes the four contract checks
    return Metric(spec, p).run(ev)


# --------------------------------------------------------------------------------- imbalance


def test_imbalance_design_doc_cases_balanced_all_bids_all_asks() -> None:
    # cto-review-revised-direction.md: balanced book -> 0.0, 100 % bids -> +1.0, 100 % asks -> -1.0
    ev = events([(1, [(99.0, 2.0)], [(101.0, 2.0)]), (2, [(99.0, 3.0)], []), (3, [], [(101.0, 1.0)]), (4, [], [])])
    out = run("book_imbalance", ev)
    assert out[:, 0].tolist()[:3] == [0.0, 1.0, -1.0]
    assert math.isnan(out[3, 0])  # nothing on either side
    assert out[0, 1] == 0.0 and math.isnan(out[1, 1])  # weighted needs a two-sided touch for the mid


def test_imbalance_top_n_partial_depth_and_weights() -> None:
    bids = [(100.0, 1.0), (99.0, 2.0), (98.0, 3.0)]
    asks = [(101.0, 2.0), (102.0, 2.0)]
    ev = events([(1, bids, asks)], other=True)
    two = run("book_imbalance", ev, n_levels=2)[-1]
    assert two[0] == pytest.approx((3 - 4) / 7, rel=1e-12)
    assert (two[2], two[3]) == (3.0, 4.0)
    deep = run("book_imbalance", ev, n_levels=10, decay_bps=50.0)[-1]  # more levels than the book has
    assert deep[0] == pytest.approx((6 - 4) / 10, rel=1e-12)
    mid = 100.5
    w = {p: math.exp(-abs(p - mid) / mid * 1e4 / 50.0) for p in (100.0, 99.0, 98.0, 101.0, 102.0)}
    wb = 1 * w[100.0] + 2 * w[99.0] + 3 * w[98.0]
    wa = 2 * w[101.0] + 2 * w[102.0]
    assert deep[1] == pytest.approx((wb - wa) / (wb + wa), rel=1e-12)


def test_imbalance_skips_nan_levels_and_is_nan_before_the_first_snapshot() -> None:
    tab = book_table([(1, [(100.0, 1.0), (99.0, 5.0)], [(101.0, 1.0)])])
    tab["bid_qty"][0, 1] = NAN  # a broken level is skipped, not propagated
    ev = EventTable.from_tables([("trades", "v", "X", trade_table([(0.5, 100.0, 1.0), (2.0, 100.0, 1.0)])),
                                 ("book", "v", "X", tab)])
    out = run("book_imbalance", ev)
    assert np.isnan(out[0]).all()
    assert out[1, 0] == 0.0 and out[2, 0] == 0.0  # as-of: repeated at the later trade


# --------------------------------------------------------------------------------- spread, microprice


def test_spread_mid_and_microprice() -> None:
    ev = events([(1, [(100.0, 3.0), (99.9, 9.0)], [(100.1, 1.0)]), (2, [(100.0, 3.0)], [])])
    out = run("book_spread", ev)
    assert out[0, 0] == pytest.approx(0.1 / 100.05 * 1e4, rel=1e-9)
    assert out[0, 1] == pytest.approx(100.05, rel=1e-12)
    # microprice leans toward the thin ask side: (100 * 1 + 100.1 * 3) / 4
    assert out[0, 2] == pytest.approx(100.075, rel=1e-12)
    assert out[0, 3] == pytest.approx((100.075 - 100.05) / 100.05 * 1e4, rel=1e-9)
    assert np.isnan(out[1]).all()  # one-sided book


# --------------------------------------------------------------------------------- walls


def test_wall_detection_uses_k_times_the_median() -> None:
    # quantities 1, 12, 2 (bids) and 1, 3, 2 (asks): median 2, wall_mult 5 -> threshold 10
    ev = events([(1, [(100.0, 1.0), (99.0, 12.0), (98.0, 2.0)], [(101.0, 1.0), (102.0, 3.0), (103.0, 2.0)])])
    out = run("book_walls", ev)[0]
    assert (out[0], out[1], out[2]) == (99.0, 1.0, 12.0)
    assert out[3] == pytest.approx(1.5 / 100.5 * 1e4, rel=1e-12)
    assert run("book_walls", ev, wall_mult=6.0)[0, 1] == 0.0  # 12 is not > 6 x 2
    assert math.isnan(run("book_walls", ev, wall_mult=6.0)[0, 0])


def test_wall_following_the_mid_counts_consecutive_moves() -> None:
    def snap(t: float, best_bid: float, wall_px: float, wall_q: float = 20.0) -> tuple:
        bids = [(best_bid - k, wall_q if best_bid - k == wall_px else 1.0) for k in range(4)]
        return (t, bids, [(best_bid + 1, 1.0), (best_bid + 2, 1.0)])  # median 1, threshold 5

    ev = events([
        snap(1, 100, 98),
        snap(2, 101, 99),   # mid +1, wall +1 -> +1
        snap(3, 102, 100),  # -> +2
        snap(4, 102, 100),  # nothing moved -> stays +2
        snap(5, 103, 101, 35.0),  # same order (35/20 < size_ratio 2) -> +3
        snap(6, 104, 101, 35.0),  # mid moved, wall stayed -> 0
        snap(7, 103, 100, 35.0),  # both down -> -1
        snap(8, 102, 99, 100.0),  # a different order (size x 2.9) -> 0
    ])
    out = run("book_walls", ev)
    assert out[:, 4].tolist() == [0, 1, 2, 2, 3, 0, -1, 0]
    assert out[:, 5].tolist() == [0] * 8  # no ask wall


# --------------------------------------------------------------------------------- spoofing


def flash_book(t: float, big: bool, big_px: float = 98.0) -> tuple:
    bids = [(100.0, 1.0), (99.0, 1.0), (98.0, 1.0), (97.0, 1.0)]
    if big:
        bids = [(p, 50.0 if p == big_px else q) for p, q in bids]
    return (t, bids, [(101.0, 1.0), (102.0, 1.0)])


def test_spoofing_counts_cancels_of_a_flashing_large_order() -> None:
    snaps = [flash_book(t, big) for t, big in [(1, True), (2, False), (3, True), (4, False), (5, True), (6, False)]]
    out = run("book_spoofing", events(snaps))
    assert out[:, 0].tolist() == [0, 1, 1, 2, 2, 3]
    assert out[:, 1].tolist() == [0, 0, 0, 0, 0, 1]  # min_cancels 3
    assert out[-1, 2] == 98.0 and out[-1, 3] == 1.0
    assert math.isnan(out[0, 2]) and out[0, 3] == 0.0


def test_spoofing_window_and_fills_are_not_cancels() -> None:
    snaps = [flash_book(t, big) for t, big in [(1, True), (2, False), (3, True), (4, False)]]
    # a trade at 98 between the last two snapshots: the order was filled, not cancelled
    out = run("book_spoofing", events(snaps, trades=[(3.5, 98.0, 50.0)]))
    assert out[:, 0].tolist() == [0, 1, 1, 1, 1]
    # a trade above the order (99) does not reach it
    out = run("book_spoofing", events(snaps, trades=[(3.5, 99.0, 5.0)]))
    assert out[-1, 0] == 2
    # the 60 s window at 62.5 s spans the buckets of seconds 3..62: the cancel at 4 s is in, the one at 2 s out
    late = snaps + [flash_book(62.5, False)]
    out = run("book_spoofing", events(late))
    assert out[-1, 0] == 1


def test_spoofing_ignores_orders_scrolled_out_of_the_levels_read() -> None:
    # the large bid at 97 vanishes because the book moved up and 97 is below the 4 levels read
    snaps = [flash_book(1, True, big_px=97.0),
             (2, [(103.0, 1.0), (102.0, 1.0), (101.0, 1.0), (100.0, 1.0)], [(104.0, 1.0)])]
    out = run("book_spoofing", events(snaps))
    assert out[-1, 0] == 0


# --------------------------------------------------------------------------------- iceberg


def test_iceberg_refill_after_trades_at_the_level() -> None:
    s1 = (1, [(100.0, 5.0), (99.0, 5.0)], [(101.0, 4.0)])
    s2 = (2, [(100.0, 5.0), (99.0, 5.0)], [(101.0, 4.0)])  # 100 traded 4 but shows 5 again
    out = run("book_iceberg", events([s1, s2], trades=[(1.5, 100.0, 3.0), (1.6, 100.0, 1.0)]))
    # hidden = 5 - (5 - 4) = 4 >= 0.5 x 5
    assert out[-1].tolist() == [1.0, 4.0, 100.0, 1.0]
    assert np.isnan(out[0, 2]) and out[0, 0] == 0.0


def test_iceberg_needs_both_the_fill_and_the_refill() -> None:
    s1 = (1, [(100.0, 5.0)], [(101.0, 4.0)])
    consumed = (2, [(100.0, 1.0)], [(101.0, 4.0)])  # traded 4, 1 left: no refill
    assert run("book_iceberg", events([s1, consumed], trades=[(1.5, 100.0, 4.0)]))[-1, 0] == 0
    small_fill = (2, [(100.0, 6.0)], [(101.0, 4.0)])  # traded 1 < 0.5 x 5: size grew, not an iceberg
    assert run("book_iceberg", events([s1, small_fill], trades=[(1.5, 100.0, 1.0)]))[-1, 0] == 0
    ask = (2, [(100.0, 5.0)], [(101.0, 4.0)])  # the ask at 101 traded 3 and came back at 4: hidden 3
    out = run("book_iceberg", events([s1, ask], trades=[(1.5, 101.0, 3.0)]))
    assert out[-1].tolist() == [1.0, 3.0, 101.0, -1.0]
    # 61 s later the refill has left the 60 s window
    out = run("book_iceberg", events([s1, ask, (62.5, [(100.0, 5.0)], [(101.0, 4.0)])], trades=[(1.5, 101.0, 3.0)]))
    assert out[-1, 0] == 0 and math.isnan(out[-1, 2]) and out[-1, 3] == 0


# --------------------------------------------------------------------------------- gridded contract


def gridded(seed: int, n_snap: int = 300, depth: int = 8, n_trades: int = 400) -> EventTable:
    """Books on a 0.5 tick grid with a flashing large order at two prices, a bid wall riding
    the touch, partial depth, and trades at the touch prices."""
    rng = np.random.default_rng(seed)
    tick, span = 0.5, 120 * S
    ts_b = T0 + np.sort(rng.integers(0, span, n_snap))
    mid = 200 + np.cumsum(rng.choice([-1, 0, 0, 1], n_snap))
    lv = np.arange(depth)
    bid, ask = (mid[:, None] - lv) * tick, (mid[:, None] + 1 + lv) * tick
    bq, aq = rng.lognormal(0, 0.5, (n_snap, depth)), rng.lognormal(0, 0.5, (n_snap, depth))
    bq[:, 2] = np.where(rng.random(n_snap) < 0.7, 25.0, bq[:, 2])  # a wall 2 ticks under the touch
    for price in (196 * tick, 205 * tick):
        for r in np.nonzero(rng.random(n_snap) < 0.5)[0]:
            bq[r][bid[r] == price] = 30.0
            aq[r][ask[r] == price] = 30.0
    for px, q in ((bid, bq), (ask, aq)):
        empty = lv[None, :] >= rng.integers(2, depth + 1, n_snap)[:, None]
        px[empty], q[empty] = NAN, 0.0
    book = {"ts_event": ts_b, "ts_recv": ts_b, "bid_px": bid, "bid_qty": bq, "ask_px": ask, "ask_qty": aq}
    ts_t = T0 + np.sort(rng.integers(0, span, n_trades))
    at = np.clip(np.searchsorted(ts_b, ts_t) - 1, 0, n_snap - 1)
    side = np.where(rng.random(n_trades) < 0.5, 1, -1)
    trades = {"ts_event": ts_t, "ts_recv": ts_t, "price": np.where(side > 0, mid[at] + 1, mid[at]) * tick,
              "qty": rng.lognormal(0, 1, n_trades), "side": side.astype(np.int8), "trade_id": np.arange(n_trades)}
    return EventTable.from_tables([("book", "v", "X", book), ("trades", "v", "X", trades)])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_contract_on_gridded_books_exercises_every_output(seed: int) -> None:
    ev = gridded(seed)
    outs = {name: run(name, ev) for name in ("book_imbalance", "book_spread", "book_walls", "book_spoofing",
                                             "book_iceberg")}
    assert np.nanmax(outs["book_spoofing"][:, 0]) >= 3 and np.nanmax(outs["book_spoofing"][:, 1]) == 1
    assert np.nanmax(outs["book_iceberg"][:, 0]) >= 1
    follow = outs["book_walls"][:, 4]
    assert np.nanmax(follow) >= 2 and np.nanmin(follow) <= -2  # the riding wall follows both ways
    assert np.isfinite(outs["book_imbalance"]).all(axis=1).mean() > 0.9


def test_book_params_are_validated() -> None:
    with pytest.raises(ConfigError, match="n_levels"):
        Metric("book_imbalance", n_levels=51)
    with pytest.raises(ConfigError, match="buckets"):
        Metric("book_spoofing", window_ns=600 * S, bucket_ns=S)
    with pytest.raises(ConfigError, match="multiple of `bucket_ns`"):
        Metric("book_iceberg", window_ns=90 * S, bucket_ns=60 * S)
