"""Dynamic-threshold kernels: exact rolling percentile (plain njit function and metric),
volatility-adjusted threshold, session multipliers; hand-computed expectations."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime

import numpy as np
import pytest

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals import REGISTRY, Metric
from emerald.signals.base import HOUR_NS, SECOND_NS
from emerald.signals.thresholds import (
    M_NALLOC,
    M_NFREE,
    PC_BLOCKS,
    new_percentile_state,
    percentile_window_sorted,
    rolling_percentile_rank_nb,
    rolling_percentile_step_nb,
)
from emerald.testing.contract import check_contract
from emerald.testing.strategies import make_event_table

T = (1_700_000_000_000_000_000 // HOUR_NS) * HOUR_NS
NAN = math.nan


def trades(ts, price, qty=None) -> dict:
    n = len(ts)
    return {"ts_event": np.asarray(ts, np.int64), "price": np.broadcast_to(np.asarray(price, float), n).copy(),
            "qty": np.asarray(qty if qty is not None else [1.0] * n, float), "side": np.ones(n, np.int8)}


# ------------------------------------------------------------------------- plain percentile kernel


def test_rolling_percentile_step_by_hand() -> None:
    st = new_percentile_state(5)
    got = [float(rolling_percentile_step_nb(st, x, 50.0)) for x in (5.0, 1.0, 4.0, 2.0, 3.0)]
    assert got == [5.0, 3.0, 4.0, 3.0, 3.0]  # medians of [5], [5,1], [5,1,4], [5,1,4,2], [5,1,4,2,3]
    # 10 pushes 5 out: [1, 2, 3, 4, 10]; the 90th percentile sits at rank 3.6 -> 4 + 0.6 x (10 - 4)
    assert rolling_percentile_step_nb(st, 10.0, 90.0) == pytest.approx(7.6, rel=1e-12)
    assert rolling_percentile_step_nb(st, NAN, 0.0) == 1.0  # NaN is skipped: the window is unchanged
    assert rolling_percentile_step_nb(st, math.inf, 100.0) == 10.0
    assert rolling_percentile_rank_nb(st, 3.0) == 0.6
    assert rolling_percentile_rank_nb(st, 0.5) == 0.0


def test_rolling_percentile_with_duplicates() -> None:
    st = new_percentile_state(3)
    for x in (2.0, 2.0, 2.0, 1.0):
        rolling_percentile_step_nb(st, x, 50.0)
    assert rolling_percentile_step_nb(st, NAN, 0.0) == 1.0  # window [2, 2, 1]
    assert rolling_percentile_step_nb(st, NAN, 50.0) == 2.0
    assert rolling_percentile_step_nb(st, 3.0, 50.0) == 2.0  # [2, 1, 3]
    assert rolling_percentile_step_nb(st, 1.0, 50.0) == 1.0  # [1, 3, 1]
    assert rolling_percentile_step_nb(st, NAN, 100.0) == 3.0


def test_rolling_percentile_matches_numpy_on_a_long_series() -> None:
    rng = np.random.default_rng(7)
    xs = np.round(rng.normal(0, 3, 3000))  # many ties
    for window in (1, 2, 50, 2048):
        st = new_percentile_state(window)
        for k, x in enumerate(xs):
            q = float(rng.uniform(0, 100))
            got = rolling_percentile_step_nb(st, x, q)
            win = xs[max(0, k + 1 - window):k + 1]
            assert got == pytest.approx(np.percentile(win, q), rel=1e-12, abs=1e-12)
        assert np.array_equal(percentile_window_sorted(st), np.sort(win))


def _sorted_list_percentile(win: list[float], q: float) -> float:
    """The kernel's interpolation formula on ``sorted()``: the block layout must give the same bits."""
    s = sorted(win)
    h = (len(s) - 1) * (q / 100.0)
    lo = math.floor(h)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


@pytest.mark.parametrize("window, series", [(2048, "walk"), (2048, "ties"), (65, "ties"), (64, "normal"),
                                            (1, "normal")])
def test_rolling_percentile_blocks_equal_a_sorted_list_bit_for_bit(window: int, series: str) -> None:
    """Order statistics from the sorted blocks equal those of a sorted list exactly, through block
    splits, freed blocks and the re-layout into half-full blocks (forced half-way by marking every
    block id handed out, which a long stream reaches on its own)."""
    rng = np.random.default_rng(11)
    n = 6_000
    xs = {"walk": np.cumsum(rng.normal(size=n)), "ties": np.round(rng.normal(0, 2, n)),
          "normal": rng.normal(size=n)}[series]
    st = new_percentile_state(window)
    relaid = False
    for k, x in enumerate(xs):
        if k >= n // 2 and not relaid:  # no id left: the next split lays the blocks out again
            st["pc_meta"][0, M_NALLOC] = PC_BLOCKS
            st["pc_meta"][0, M_NFREE] = 0
        q = float(rng.uniform(0, 100)) if k % 3 else float(rng.choice([0.0, 50.0, 90.0, 100.0]))
        win = xs[max(0, k + 1 - window):k + 1]
        assert rolling_percentile_step_nb(st, x, q) == _sorted_list_percentile(win.tolist(), q), k
        y = xs[rng.integers(0, k + 1)]
        assert rolling_percentile_rank_nb(st, y) == int((win <= y).sum()) / len(win), k
        relaid = relaid or (k >= n // 2 and st["pc_meta"][0, M_NALLOC] < PC_BLOCKS)  # only a re-layout lowers it
    assert np.array_equal(percentile_window_sorted(st), np.sort(xs[-window:]))
    assert relaid or window == 1  # (a one-value window never splits a block)


def test_new_percentile_state_checks_the_window() -> None:
    for bad in (0, 2049):
        with pytest.raises(ConfigError, match="window"):
            new_percentile_state(bad)


def test_rolling_percentile_metric_reads_a_field_of_the_input_kind() -> None:
    ev = EventTable.from_tables([
        ("trades", "perp", "X", trades([T, T + 1, T + 2, T + 3], 100.0, [1.0, 5.0, 3.0, 2.0])),
        ("quotes", "perp", "X", {"ts_event": np.array([T + 4]), "bid_px": [99.0], "bid_qty": [50.0],
                                 "ask_px": [101.0], "ask_qty": [1.0]}),
    ])
    out = Metric("rolling_percentile", window=3, q=50.0, min_count=2).run(ev)  # trades f1 = qty
    assert np.isnan(out[0]).all()  # one value < min_count
    assert out[1] == pytest.approx([3.0, 1.0])  # [1, 5]: median 3, 5 is the largest
    assert out[2] == pytest.approx([3.0, 2 / 3])  # [1, 5, 3]
    assert out[3] == pytest.approx([3.0, 1 / 3])  # [5, 3, 2]
    assert out[4] == pytest.approx(out[3])  # a quote is not an input: as-of value
    bid = Metric("rolling_percentile", input_kind=5, field=1, window=3, q=50.0, min_count=1).run(ev)
    assert np.isnan(bid[3]).all() and bid[4] == pytest.approx([50.0, 1.0])


def test_rolling_percentile_rejects_min_count_above_window() -> None:
    with pytest.raises(ConfigError, match="min_count"):
        Metric("rolling_percentile", window=10, min_count=11)


# ------------------------------------------------------------------------- volatility-adjusted


def _closes_table(closes: list[float], seconds: list[int]) -> EventTable:
    return EventTable.from_tables([("trades", "perp", "X", trades(
        [T + s * SECOND_NS + SECOND_NS // 2 for s in seconds], closes))])


def test_vol_adjusted_threshold_by_hand() -> None:
    px = [100.0, 101.0, 100.0, 101.0, 100.0, 103.0, 90.0]
    ev = _closes_table(px, list(range(7)))
    out = Metric("vol_adjusted_threshold", bucket_ns=SECOND_NS, short_n=2, long_n=4, base=10.0).run(ev)
    r = [math.log(px[k] / px[k - 1]) for k in range(1, 6)]  # returns of the completed buckets 1..5
    assert np.isnan(out[:5]).all()  # 4 returns need 5 closes: first defined in bucket 5
    ratio5 = statistics.stdev(r[2:4]) / statistics.stdev(r[0:4])
    assert out[5] == pytest.approx([10.0 * min(max(ratio5, 0.5), 2.0), ratio5], rel=1e-12)
    ratio6 = statistics.stdev(r[3:5]) / statistics.stdev(r[1:5])  # the 90 of bucket 6 is not complete yet
    assert out[6] == pytest.approx([10.0 * min(max(ratio6, 0.5), 2.0), ratio6], rel=1e-12)


def test_vol_adjusted_threshold_clips_and_counts_empty_buckets_as_zero_returns() -> None:
    px = [100.0 if k % 2 == 0 else 100.1 for k in range(11)] + [110.0, 100.0]
    ev = _closes_table(px, [*range(12), 13])  # nothing traded in second 12
    out = Metric("vol_adjusted_threshold", bucket_ns=SECOND_NS, short_n=2, long_n=10, base=3.0).run(ev)
    r = [math.log(px[k] / px[k - 1]) for k in range(1, 12)] + [0.0]  # returns of buckets 1..12; 12 repeats 110
    ratio = statistics.stdev(r[10:12]) / statistics.stdev(r[2:12])
    assert out[-1, 1] == pytest.approx(ratio, rel=1e-12)
    assert ratio > 2.0 and out[-1, 0] == 6.0  # clipped at 2 x base


# ------------------------------------------------------------------------- session multiplier


def _ns(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * SECOND_NS


@pytest.mark.parametrize(("ts", "expected"), [
    (_ns(2024, 1, 1, 3, 0), (0.7, 0)),  # Monday 03:00: Asia
    (_ns(2024, 1, 1, 8, 0), (0.9, 1)),
    (_ns(2024, 1, 1, 13, 0) - 1, (0.9, 1)),  # 12:59:59.999999999
    (_ns(2024, 1, 1, 13, 0), (1.0, 2)),
    (_ns(2024, 1, 1, 20, 59), (1.0, 2)),
    (_ns(2024, 1, 1, 21, 0), (0.7, 0)),
    (_ns(2024, 1, 6, 14, 0), (0.5, 3)),  # Saturday
    (_ns(2024, 1, 7, 23, 59), (0.5, 3)),  # Sunday
    (_ns(2024, 1, 8, 0, 0), (0.7, 0)),  # Monday again
])
def test_session_multiplier(ts: int, expected: tuple[float, int]) -> None:
    ev = EventTable.from_tables([("trades", "perp", "X", trades([ts], 1.0))])
    assert tuple(Metric("session_multiplier").run(ev)[0]) == expected


def test_session_multiplier_hours_are_parameters() -> None:
    ev = EventTable.from_tables([("trades", "perp", "X", trades([_ns(2024, 1, 2, 7, 30)], 1.0))])
    assert tuple(Metric("session_multiplier", europe_start_hour=7, europe=0.8).run(ev)[0]) == (0.8, 1)
    with pytest.raises(ConfigError, match="session hours"):
        Metric("session_multiplier", us_start_hour=22)


def test_session_multiplier_sessions_agree_with_trading_session() -> None:
    ev = make_event_table(3, n_events=400, span_ns=10 * 24 * HOUR_NS)
    ours = Metric("session_multiplier").run(ev)[:, 1]
    assert set(ours) == {0.0, 1.0, 2.0, 3.0}
    np.testing.assert_array_equal(ours, Metric("trading_session").run(ev)[:, 0])


NON_DEFAULT = [
    ("rolling_percentile", dict(window=10, min_count=3, q=90.0)),
    ("rolling_percentile", dict(window=7, min_count=1, q=0.0, input_kind=0, field=0)),
    ("rolling_percentile", dict(window=4, min_count=4, q=37.5, input_kind=5, field=1)),
    ("vol_adjusted_threshold", dict(bucket_ns=SECOND_NS, short_n=5, long_n=20)),
    ("vol_adjusted_threshold", dict(bucket_ns=10 * SECOND_NS, short_n=3, long_n=30, price_source=2, base=3.0)),
]


@pytest.mark.parametrize(("name", "params"), NON_DEFAULT, ids=[f"{n}-{i}" for i, (n, _) in enumerate(NON_DEFAULT)])
def test_contract_off_the_defaults(name: str, params: dict) -> None:
    spec = REGISTRY[name]
    finite = 0
    for seed in range(6):
        events = make_event_table(seed, n_instruments=2, n_events=300, span_ns=[60 * SECOND_NS, HOUR_NS][seed % 2])
        check_contract(spec, events, spec.make_params(**params))
        finite += int(np.isfinite(Metric(spec, **params).run(events)).all(axis=1).sum())
    assert finite > 0  # the oracle comparison covered events where every output is defined
