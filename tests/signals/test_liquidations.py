"""Liquidation metrics on small hand-made event tables, with hand-computed expectations.

``liquidations.side`` -1 = a long was liquidated (forced sell), +1 = a short was.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals import REGISTRY, Metric
from emerald.signals.base import HOUR_NS, MINUTE_NS, SECOND_NS
from emerald.testing.contract import check_contract
from emerald.testing.strategies import make_event_table

T = (1_700_000_000_000_000_000 // HOUR_NS) * HOUR_NS
NAN = math.nan


def liqs(ts, price, qty, side) -> dict:
    n = len(ts)
    return {"ts_event": np.asarray(ts, np.int64), "price": np.broadcast_to(np.asarray(price, float), n).copy(),
            "qty": np.asarray(qty, float), "side": np.asarray(side, np.int8)}


def ticks(ts) -> dict:
    """Trades used only to move stream time."""
    n = len(ts)
    return {"ts_event": np.asarray(ts, np.int64), "price": np.full(n, 100.0), "qty": np.ones(n),
            "side": np.ones(n, np.int8)}


def marks(ts, mark) -> dict:
    n = len(ts)
    return {"ts_event": np.asarray(ts, np.int64), "mark": np.asarray(mark, float), "index": np.full(n, NAN),
            "spot_ref": np.full(n, NAN)}


def oi(ts, qty, notional=None) -> dict:
    n = len(ts)
    return {"ts_event": np.asarray(ts, np.int64), "oi_qty": np.asarray(qty, float),
            "oi_notional": np.asarray(notional if notional is not None else [NAN] * n, float)}


def row_at(events: EventTable, out: np.ndarray, ts: int) -> np.ndarray:
    return out[np.flatnonzero(events.ts == ts)[-1]]


# ------------------------------------------------------------------------- notional and ratio


def test_liquidation_notional_and_long_short_ratio_over_5_min() -> None:
    s = SECOND_NS
    ev = EventTable.from_tables([
        ("liquidations", "perp", "X", liqs([T, T + 10 * s, T + 20 * s, T + 30 * s], 100.0, [1.0, 1.0, 0.5, 5.0],
                                           [-1, -1, 1, 0])),  # side 0 is not a liquidation side: skipped
        ("trades", "perp", "X", ticks([T + 300 * s, T + 310 * s, T + 320 * s])),
    ])
    out = Metric("liquidation_notional").run(ev)
    assert list(row_at(ev, out, T)) == [100.0, 100.0, 0.0, 100.0]  # only longs: the ratio cap
    assert list(row_at(ev, out, T + 20 * s)) == [250.0, 200.0, 50.0, 4.0]
    assert list(row_at(ev, out, T + 30 * s)) == [250.0, 200.0, 50.0, 4.0]
    assert list(row_at(ev, out, T + 300 * s)) == [150.0, 100.0, 50.0, 2.0]  # T left the window (1-s buckets)
    assert list(row_at(ev, out, T + 310 * s)) == [50.0, 0.0, 50.0, 0.0]
    r = row_at(ev, out, T + 320 * s)
    assert list(r[:3]) == [0.0, 0.0, 0.0] and np.isnan(r[3])


def test_liquidation_notional_other_instrument_is_ignored() -> None:
    ev = EventTable.from_tables([("liquidations", "perp", "X", liqs([T], 100.0, [1.0], [-1])),
                                 ("liquidations", "perp", "Y", liqs([T + 1], 10.0, [3.0], [1]))])
    assert list(Metric("liquidation_notional", inst=1).run(ev)[-1]) == [30.0, 0.0, 30.0, 0.0]


def test_liquidation_cascade() -> None:
    s = SECOND_NS
    ts = [T + k * 10 * s for k in range(5)]
    ev = EventTable.from_tables([("liquidations", "perp", "X", liqs(ts, 100.0, [1000.0] * 5, [-1] * 5)),
                                 ("trades", "perp", "X", ticks([T + 60 * s]))])
    out = Metric("liquidation_cascade").run(ev)  # >= 5 liquidations and >= 500,000 in 60 s
    assert list(row_at(ev, out, ts[3])) == [0.0, 4.0, 400_000.0, 0.0]
    assert list(row_at(ev, out, ts[4])) == [1.0, 5.0, 500_000.0, -1.0]  # longs liquidated: forced selling
    assert list(row_at(ev, out, T + 60 * s)) == [0.0, 4.0, 400_000.0, 0.0]  # the first one left the window
    shorts = EventTable.from_tables([("liquidations", "perp", "X", liqs(ts, 100.0, [1000.0] * 5, [-1, 1, 1, 1, 1]))])
    assert list(Metric("liquidation_cascade").run(shorts)[-1]) == [1.0, 5.0, 500_000.0, 1.0]
    small = Metric("liquidation_cascade", min_notional=600_000.0).run(ev)
    assert row_at(ev, small, ts[4])[0] == 0.0


# ------------------------------------------------------------------------- cluster levels

LEV = (5, 10, 15, 20, 25, 50)


def _expected(entry: float, px: float, alive_long: set[int], alive_short: set[int], mm: float = 0.005,
              reach: float = 0.05) -> tuple[float, float, float]:
    """Nearest levels and the proximity score by the definition, for equal-weight brackets."""
    longs = [entry * (1 - 1 / L + mm) for L in LEV if L in alive_long]
    shorts = [entry * (1 + 1 / L - mm) for L in LEV if L in alive_short]
    prox = [max(0.0, 1 - (px - lv) / px / reach) for lv in longs] + \
           [max(0.0, 1 - (lv - px) / px / reach) for lv in shorts]
    return max(longs), min(shorts), 10 * sum(prox) / len(prox)


def test_liquidation_levels_from_an_oi_increase() -> None:
    ev = EventTable.from_tables([
        ("prices", "perp", "X", marks([T, T + 3, T + 4], [100.0, 98.4, 100.0])),
        ("open_interest", "perp", "X", oi([T + 1, T + 2, T + 5], [1000.0, 1100.0, 1045.0])),
    ])
    out = Metric("liquidation_levels").run(ev)
    assert np.isnan(out[:2]).all()  # the OI present at the first sample has no known entry
    # +100 contracts at 100: longs liquidate at 100 x (1 - 1/L + 0.5 %), shorts at 100 x (1 + 1/L - 0.5 %)
    assert out[2] == pytest.approx([98.5, 101.5, 10 * 2 * (0.1 + 0.3 + 0.7) / 12], rel=1e-9)
    every = set(LEV)
    assert out[2] == pytest.approx(_expected(100.0, 100.0, every, every), rel=1e-12)
    # the mark reaches 98.4 <= 98.5: the 50x longs are gone, also after the price comes back
    assert out[3] == pytest.approx(_expected(100.0, 98.4, every - {50}, every), rel=1e-12)
    assert out[4] == pytest.approx(_expected(100.0, 100.0, every - {50}, every), rel=1e-12)
    assert out[4, 0] == pytest.approx(96.5, rel=1e-12)
    # an OI decrease closes positions pro rata: levels and score are unchanged
    assert out[5] == pytest.approx(out[4], rel=1e-12)


def test_liquidation_levels_merge_a_cohort_at_the_weighted_entry() -> None:
    ev = EventTable.from_tables([
        ("prices", "perp", "X", marks([T, T + 3], [100.0, 102.0])),
        ("open_interest", "perp", "X", oi([T + 1, T + 2, T + 4], [1000.0, 1100.0, 1200.0])),
    ])
    out = Metric("liquidation_levels").run(ev)
    entry = (100.0 * 10_000 + 102.0 * 10_200) / 20_200  # notional-weighted: 100 x 100 and 100 x 102
    # at 102 the first cohort's 50x shorts (101.5) were liquidated; the new notional revives that
    # bracket at the merged entry
    assert out[-1, 0] == pytest.approx(entry * 0.985, rel=1e-12)
    assert out[-1, 1] == pytest.approx(entry * 1.015, rel=1e-12)


def test_liquidation_levels_oi_notional_field_and_expiry() -> None:
    ev = EventTable.from_tables([
        ("prices", "perp", "X", marks([T, T + 2 * HOUR_NS - 1, T + 2 * HOUR_NS], [100.0, 100.0, 100.0])),
        ("open_interest", "perp", "X", oi([T + 1, T + 2], [NAN, NAN], notional=[1e5, 2e5])),
    ])
    out = Metric("liquidation_levels", oi_field=1, horizon_ns=2 * HOUR_NS).run(ev)
    assert out[2, :2] == pytest.approx([98.5, 101.5], rel=1e-12)
    assert out[3, :2] == pytest.approx([98.5, 101.5], rel=1e-12)  # 1 ns before the cohort's horizon
    assert np.isnan(out[4]).all()  # the hour-0 cohort is older than 2 h


def test_liquidation_levels_rejects_a_margin_that_liquidates_50x_at_entry() -> None:
    with pytest.raises(ConfigError, match="maintenance_margin"):
        Metric("liquidation_levels", maintenance_margin=0.02)
    with pytest.raises(ConfigError, match="horizon_ns"):
        Metric("liquidation_levels", cohort_ns=MINUTE_NS, horizon_ns=300 * MINUTE_NS)


NON_DEFAULT = [
    ("liquidation_notional", dict(window_ns=10 * SECOND_NS, bucket_ns=SECOND_NS, ratio_cap=3.0)),
    ("liquidation_cascade", dict(window_ns=5 * MINUTE_NS, min_count=2, min_notional=100.0)),
    ("liquidation_levels", dict(cohort_ns=MINUTE_NS, horizon_ns=30 * MINUTE_NS, maintenance_margin=0.0,
                                proximity_pct=1.0)),
    ("liquidation_levels", dict(cohort_ns=5 * MINUTE_NS, horizon_ns=HOUR_NS, price_source=1)),
]


@pytest.mark.parametrize(("name", "params"), NON_DEFAULT, ids=[f"{n}-{i}" for i, (n, _) in enumerate(NON_DEFAULT)])
def test_contract_off_the_defaults(name: str, params: dict) -> None:
    spec = REGISTRY[name]
    finite = 0
    for seed in range(6):
        events = make_event_table(seed, n_instruments=2, n_events=300, span_ns=2 * HOUR_NS)
        check_contract(spec, events, spec.make_params(**params))
        finite += int(np.isfinite(Metric(spec, **params).run(events)).all(axis=1).sum())
    assert finite > 0  # the oracle comparison covered events where every output is defined
