"""Derivatives metrics on small hand-made event tables, with hand-computed expectations.

Golden example (emerald-gameplan.md 1.1 / the issue): perp 67,920 vs spot 67,890 -> basis
0.0442 %, strength neutral.
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

T = (1_700_000_000_000_000_000 // HOUR_NS) * HOUR_NS  # an hour boundary (2023-11-14 22:00 UTC)
NAN = math.nan


def _ts(ts) -> np.ndarray:
    return np.asarray(ts, dtype=np.int64)


def prices(ts, mark, index=None) -> dict:
    n = len(ts)
    return {"ts_event": _ts(ts), "mark": np.asarray(mark, float),
            "index": np.asarray(index if index is not None else [NAN] * n, float), "spot_ref": np.full(n, NAN)}


def funding(ts, rate, interval=8 * HOUR_NS, settle=True) -> dict:
    n = len(ts)
    return {"ts_event": _ts(ts), "rate": np.asarray(rate, float), "interval_ns": np.broadcast_to(interval, n),
            "next_funding_ts": _ts(ts) + HOUR_NS, "is_settlement": np.broadcast_to(settle, n)}


def quotes(ts, bid, ask) -> dict:
    n = len(ts)
    return {"ts_event": _ts(ts), "bid_px": np.asarray(bid, float), "bid_qty": np.ones(n),
            "ask_px": np.asarray(ask, float), "ask_qty": np.ones(n)}


def trades(ts, price, qty) -> dict:
    n = len(ts)
    return {"ts_event": _ts(ts), "price": np.broadcast_to(np.asarray(price, float), n).copy(),
            "qty": np.asarray(qty, float), "side": np.ones(n, np.int8)}


def oi(ts, qty) -> dict:
    return {"ts_event": _ts(ts), "oi_qty": np.asarray(qty, float), "oi_notional": np.full(len(ts), NAN)}


def at(events: EventTable, out: np.ndarray, ts: int, kind: int | None = None) -> np.ndarray:
    """Outputs at the last event with time ``ts`` (and kind)."""
    mask = events.ts == ts
    if kind is not None:
        mask &= events.kind == kind
    return out[np.flatnonzero(mask)[-1]]


# ------------------------------------------------------------------------- basis


def test_golden_basis_perp_67920_vs_spot_67890_is_neutral() -> None:
    ev = EventTable.from_tables([
        ("prices", "perp", "BTCUSDT", prices([T], [67_920.0])),
        ("quotes", "spot", "BTCUSDT", quotes([T + 1], [67_889.5], [67_890.5])),  # mid 67,890
    ])
    out = Metric("basis").run(ev)
    assert np.isnan(out[0, 0])  # spot unknown at the first event
    assert round(out[1, 0], 4) == 0.0442
    assert out[1, 0] == pytest.approx(30 / 67_890 * 100, rel=1e-12)
    assert out[1, 2] == 0.0  # neutral: |0.0442 %| < 0.2 %
    # annualised over the 8 h default interval: 365 x 3 = 1095 intervals a year
    assert out[1, 1] == pytest.approx(30 / 67_890 * 100 * 1095, rel=1e-12)


@pytest.mark.parametrize(("perp", "cls"), [(1003.0, 1), (1006.0, 2), (997.0, -1), (994.0, -2), (1001.0, 0),
                                           (999.0, 0)])
def test_basis_strength_classes(perp: float, cls: int) -> None:
    ev = EventTable.from_tables([("prices", "perp", "X", prices([T], [perp])),
                                 ("quotes", "spot", "X", quotes([T], [999.5], [1000.5]))])
    out = Metric("basis").run(ev)
    assert out[-1, 0] == pytest.approx((perp - 1000.0) / 1000.0 * 100, rel=1e-12)
    assert out[-1, 2] == cls


def test_basis_declared_references_and_perp_price() -> None:
    ev = EventTable.from_tables([
        ("funding", "perp", "X", funding([T], [1e-4], interval=HOUR_NS)),
        ("prices", "perp", "X", prices([T + 1], [101.0], index=[100.0])),
        ("trades", "perp", "X", trades([T + 2], 100.5, [1.0])),
        ("quotes", "spot", "X", quotes([T + 3], [99.0], [99.5])),  # mid 99.25
        ("trades", "spot", "X", trades([T + 4], 99.8, [1.0])),
    ])
    last = {}
    for ref in (0, 1, 2):
        for perp in (0, 1):
            last[ref, perp] = Metric("basis", reference=ref, perp_price=perp).run(ev)[-1]
    ref_px = {0: 99.25, 1: 100.0, 2: 99.8}
    perp_px = {0: 101.0, 1: 100.5}
    for (ref, perp), row in last.items():
        b = (perp_px[perp] - ref_px[ref]) / ref_px[ref] * 100
        assert row[0] == pytest.approx(b, rel=1e-12)
        assert row[1] == pytest.approx(b * 365 * 24, rel=1e-12)  # 1 h funding interval from the funding event


def test_basis_skips_nan_mark_and_rejects_same_instrument_for_spot_reference() -> None:
    ev = EventTable.from_tables([("prices", "perp", "X", prices([T, T + 1], [101.0, NAN])),
                                 ("quotes", "spot", "X", quotes([T], [99.5], [100.5]))])
    out = Metric("basis").run(ev)
    assert out[-1, 0] == pytest.approx(1.0, rel=1e-12)  # the NaN mark kept 101
    with pytest.raises(ConfigError, match="ref_inst"):
        Metric("basis", inst=0, ref_inst=0)
    Metric("basis", inst=0, ref_inst=0, reference=1)  # the index lives on the perp itself


# ------------------------------------------------------------------------- funding


def test_funding_annualized_uses_the_event_interval() -> None:
    ev = EventTable.from_tables([
        ("funding", "perp", "X", funding([T], [1e-4])),  # 8 h: 0.01 % x 1095 = 10.95 %/yr
        ("funding", "perp", "Y", funding([T + 1], [1.25e-5], interval=HOUR_NS)),  # 1 h: x 8760
        ("funding", "perp", "Z", funding([T + 2], [2e-4], interval=0)),  # no interval: the 8 h parameter
    ])
    assert Metric("funding_annualized", inst=0).run(ev)[-1] == pytest.approx([1e-4, 10.95], rel=1e-12)
    assert Metric("funding_annualized", inst=1).run(ev)[-1] == pytest.approx([1.25e-5, 10.95], rel=1e-12)
    assert Metric("funding_annualized", inst=2).run(ev)[-1] == pytest.approx([2e-4, 21.9], rel=1e-12)


def test_funding_annualized_settled_only_ignores_predicted_rates() -> None:
    ev = EventTable.from_tables([("funding", "perp", "X", funding([T, T + HOUR_NS], [1e-4, 5e-4],
                                                                  settle=[True, False]))])
    assert Metric("funding_annualized").run(ev)[-1, 0] == 5e-4
    assert Metric("funding_annualized", settled_only=1).run(ev)[-1, 0] == 1e-4


def test_funding_average_is_per_settlement_over_24h() -> None:
    ts = [T, T + 8 * HOUR_NS, T + 16 * HOUR_NS, T + 24 * HOUR_NS]
    ev = EventTable.from_tables([
        ("funding", "perp", "X", funding(ts, [1e-4, 2e-4, 3e-4, 4e-4])),
        ("funding", "perp", "X", funding([T + 20 * HOUR_NS], [9e-4], settle=False)),  # predicted: not counted
    ])
    out = Metric("funding_average").run(ev)
    # at T + 24 h the window (1-min buckets) holds the settlements of T + 8 h, + 16 h, + 24 h
    assert at(ev, out, ts[-1]) == pytest.approx([3e-4, 3e-4 * 1095 * 100, 3.0], rel=1e-12)
    assert at(ev, out, ts[1]) == pytest.approx([1.5e-4, 1.5e-4 * 109500, 2.0], rel=1e-12)
    both = Metric("funding_average", settled_only=0).run(ev)
    avg = (1 + 2 + 3 + 9) / 4 * 1e-4
    assert at(ev, both, T + 20 * HOUR_NS) == pytest.approx([avg, avg * 1095 * 100, 4.0], rel=1e-12)


def test_funding_velocity_and_acceleration() -> None:
    ts = [T, T + 4 * HOUR_NS, T + 8 * HOUR_NS]
    ev = EventTable.from_tables([("funding", "perp", "X", funding(ts, [1e-4, 2e-4, 4e-4]))])
    out = Metric("funding_velocity").run(ev)
    assert np.isnan(out[0]).all()
    # at T + 4 h: r(t - 4 h) = 1e-4; nothing is known 8 h back
    assert out[1, 0] == pytest.approx(1e-4, rel=1e-12) and np.isnan(out[1, 1]) and np.isnan(out[1, 2])
    # at T + 8 h: v4 = 4e-4 - 2e-4, v8 = 4e-4 - 1e-4, acceleration = 2e-4 - (2e-4 - 1e-4)
    assert out[2] == pytest.approx([2e-4, 3e-4, 1e-4], rel=1e-12)


def test_funding_velocity_lag_is_read_at_bucket_resolution() -> None:
    # lag 4 h at 1-min buckets: the lagged rate is the one known at the end of the minute bucket
    # 240 buckets back, so the lag is between 3 h 59 min and 4 h
    ev = EventTable.from_tables([
        ("funding", "perp", "X", funding([T, T + 30 * SECOND_NS, T + 90 * SECOND_NS, T + 4 * HOUR_NS],
                                         [1e-4, 3e-4, 7e-4, 5e-4])),
        ("prices", "perp", "X", prices([T + 4 * HOUR_NS + 59 * SECOND_NS, T + 4 * HOUR_NS + 60 * SECOND_NS],
                                       [1.0, 1.0])),
    ])
    out = Metric("funding_velocity").run(ev)
    assert out[-2, 0] == pytest.approx(5e-4 - 3e-4, rel=1e-12)  # bucket [T, T + 1 min) ended with 3e-4
    assert out[-1, 0] == pytest.approx(5e-4 - 7e-4, rel=1e-12)  # bucket [T + 1 min, T + 2 min) ended with 7e-4


def _volume_table(recent_qty: float, rate: float) -> EventTable:
    minutes = np.arange(20)
    qty = np.where(minutes >= 18, recent_qty, 1.0)
    return EventTable.from_tables([
        ("funding", "perp", "X", funding([T], [rate])),
        ("trades", "perp", "X", trades(T + minutes * MINUTE_NS + SECOND_NS, 100.0, qty)),
    ])


@pytest.mark.parametrize(("recent", "rate", "signal"), [(5.0, 2e-4, 1), (0.1, 2e-4, -1), (5.0, 5e-5, 0),
                                                          (1.0, -2e-4, 0), (0.1, -2e-4, -1)])
def test_funding_volume_context(recent: float, rate: float, signal: int) -> None:
    ev = _volume_table(recent, rate)
    m = Metric("funding_volume_context", recent_ns=2 * MINUTE_NS, long_ns=20 * MINUTE_NS, bucket_ns=MINUTE_NS)
    out = m.run(ev)
    # minutes 0..17 trade 1 each, minutes 18 and 19 trade `recent`: per-minute volume ratio
    ratio = (2 * recent / 2) / ((18 + 2 * recent) / 20)
    assert out[-1, 1] == pytest.approx(ratio, rel=1e-12)
    assert out[-1, 0] == signal
    assert np.isnan(out[:-1]).all()  # the 20-minute window is covered only at minute 19


def test_funding_basis_convergence_and_divergence() -> None:
    def run(rate: float, perp: float) -> np.ndarray:
        ev = EventTable.from_tables([("funding", "perp", "X", funding([T], [rate])),
                                     ("prices", "perp", "X", prices([T], [perp])),
                                     ("quotes", "spot", "X", quotes([T], [999.5], [1000.5]))])
        return Metric("funding_basis_convergence").run(ev)[-1]

    # 1e-4 per 8 h = 10.95 %/yr (> 10); -1e-4 = -10.95 %/yr
    assert list(run(1e-4, 1003.0)) == [1.0, 0.0]  # +0.3 % basis: bullish convergence
    assert list(run(-1e-4, 997.0)) == [-1.0, 0.0]  # bearish convergence
    assert list(run(1e-4, 998.5)) == [0.0, 1.0]  # funding > 10 %, basis -0.15 %: divergence
    assert list(run(-1e-4, 1001.5)) == [0.0, 1.0]
    assert list(run(1e-4, 999.5)) == [0.0, 0.0]  # -0.05 %: neither
    assert list(run(5e-5, 1003.0)) == [0.0, 0.0]  # 5.5 %/yr is not extreme


# ------------------------------------------------------------------------- open interest

OI_PARAMS = dict(short_ns=2 * MINUTE_NS, mid_ns=5 * MINUTE_NS, long_ns=10 * MINUTE_NS, price_ns=5 * MINUTE_NS,
                 bucket_ns=MINUTE_NS)


def _oi_table(oi_vals: list[float], marks: list[float]) -> EventTable:
    """OI at minutes 0, 5, 8, 10; marks at minutes 0, 5, 10."""
    return EventTable.from_tables([
        ("open_interest", "perp", "X", oi([T, T + 5 * MINUTE_NS, T + 8 * MINUTE_NS, T + 10 * MINUTE_NS], oi_vals)),
        ("prices", "perp", "X", prices([T, T + 5 * MINUTE_NS, T + 10 * MINUTE_NS], marks)),
    ])


@pytest.mark.parametrize(("oi_vals", "marks", "regime"), [
    ([100.0, 104.0, 108.0, 110.0], [100.0, 100.0, 103.0], 1),  # accumulation: OI up everywhere, price +3 %
    ([100.0, 104.0, 108.0, 110.0], [100.0, 100.0, 97.0], -1),  # distribution: same OI, price -3 %
    ([100.0, 104.0, 108.0, 110.0], [100.0, 100.0, 101.0], 0),  # price +1 %: no call
    ([100.0, 120.0, 100.0, 106.0], [100.0, 100.0, 100.5], 2),  # 2-min OI +6 % against a falling 5-min OI
])
def test_open_interest_change_and_regime(oi_vals: list[float], marks: list[float], regime: int) -> None:
    ev = _oi_table(oi_vals, marks)
    out = Metric("open_interest_change", **OI_PARAMS).run(ev)
    now = oi_vals[3]
    expected = [now / oi_vals[2] - 1, now / oi_vals[1] - 1, now / oi_vals[0] - 1, marks[2] / marks[1] - 1]
    assert out[-1, :4] == pytest.approx(expected, rel=1e-12)
    assert out[-1, 4] == regime
    # before 10 minutes of history the long change (and the regime) are unknown
    assert np.isnan(at(ev, out, T + 8 * MINUTE_NS)[2]) and np.isnan(at(ev, out, T + 8 * MINUTE_NS)[4])


def test_open_interest_change_default_lags_fit_seven_days() -> None:
    days = np.arange(8)
    ev = EventTable.from_tables([
        ("open_interest", "perp", "X", oi(T + days * 24 * HOUR_NS, 100.0 * 1.01 ** days)),
        ("prices", "perp", "X", prices(T + days * 24 * HOUR_NS, 100.0 + days)),
    ])
    out = Metric("open_interest_change").run(ev)
    assert out[-1, 1] == pytest.approx(0.01, rel=1e-9)  # 24 h
    assert out[-1, 2] == pytest.approx(1.01 ** 7 - 1, rel=1e-9)  # 7 d
    assert out[-1, 3] == pytest.approx(107 / 106 - 1, rel=1e-12)
    assert out[-1, 4] == 0  # 24 h OI +1 % is below +3 %


@pytest.mark.parametrize(("oi_end", "mark_end", "div"), [(95.0, 103.0, 1), (105.0, 97.0, -1), (105.0, 103.0, 0),
                                                          (95.0, 97.0, 0), (99.0, 103.0, 0)])
def test_oi_price_divergence(oi_end: float, mark_end: float, div: int) -> None:
    ev = EventTable.from_tables([
        ("open_interest", "perp", "X", oi([T, T + 5 * MINUTE_NS], [100.0, oi_end])),
        ("prices", "perp", "X", prices([T, T + 5 * MINUTE_NS], [100.0, mark_end])),
    ])
    out = Metric("oi_price_divergence", window_ns=5 * MINUTE_NS, bucket_ns=MINUTE_NS).run(ev)
    assert out[-1, :2] == pytest.approx([oi_end / 100 - 1, mark_end / 100 - 1], rel=1e-12)
    assert out[-1, 2] == div


def test_nan_open_interest_and_marks_are_skipped() -> None:
    ev = EventTable.from_tables([
        ("open_interest", "perp", "X", oi([T, T + 4 * MINUTE_NS, T + 5 * MINUTE_NS], [100.0, 104.0, NAN])),
        ("prices", "perp", "X", prices([T, T + 4 * MINUTE_NS, T + 5 * MINUTE_NS], [100.0, 102.0, NAN])),
    ])
    out = Metric("oi_price_divergence", window_ns=5 * MINUTE_NS, bucket_ns=MINUTE_NS).run(ev)
    assert out[-1, :2] == pytest.approx([0.04, 0.02], rel=1e-12)  # the NaN rows kept 104 and 102


def test_cross_venue_spread_bps() -> None:
    ev = EventTable.from_tables([("quotes", "a", "X", quotes([T, T + 2], [100.0, 100.1], [100.1, 100.2])),
                                 ("quotes", "b", "X", quotes([T + 1], [99.95], [100.05]))])
    out = Metric("cross_venue_spread").run(ev)
    assert np.isnan(out[0, 0])
    assert out[1, 0] == pytest.approx((100.05 - 100.0) / 100.0 * 1e4, rel=1e-12)
    assert out[2, 0] == pytest.approx((100.15 - 100.0) / 100.0 * 1e4, rel=1e-12)


# ------------------------------------------------------------------------- oracles off the defaults

NON_DEFAULT = [
    ("funding_velocity", dict(short_ns=10 * MINUTE_NS, long_ns=25 * MINUTE_NS, bucket_ns=MINUTE_NS)),
    ("funding_average", dict(settled_only=0, window_ns=20 * MINUTE_NS, bucket_ns=10 * SECOND_NS)),
    ("funding_volume_context", dict(recent_ns=2 * MINUTE_NS, long_ns=20 * MINUTE_NS, bucket_ns=MINUTE_NS,
                                    extreme_pct=5.0)),
    ("basis", dict(reference=2, perp_price=2, weak_pct=0.01, strong_pct=0.05)),
    ("funding_basis_convergence", dict(reference=1, funding_pct=1.0, basis_pct=0.01, divergence_pct=0.005)),
    ("open_interest_change", dict(OI_PARAMS, oi_mid_pct=0.0, oi_long_pct=0.0, price_pct=0.001, noise_pct=0.0)),
    ("oi_price_divergence", dict(window_ns=5 * MINUTE_NS, bucket_ns=MINUTE_NS, oi_pct=0.0, price_pct=0.0)),
    ("cross_venue_spread", dict(price_source=1)),
]


@pytest.mark.parametrize(("name", "params"), NON_DEFAULT, ids=[n for n, _ in NON_DEFAULT])
def test_contract_with_short_windows(name: str, params: dict) -> None:
    """The default windows (hours, days) are rarely filled by the generated streams; short ones are."""
    spec = REGISTRY[name]
    finite = 0
    for seed in range(6):
        events = make_event_table(seed, n_instruments=2 + seed % 2, n_events=300, span_ns=2 * HOUR_NS)
        check_contract(spec, events, spec.make_params(**params))
        finite += int(np.isfinite(Metric(spec, **params).run(events)).all(axis=1).sum())
    assert finite > 0  # the oracle comparison covered events where every output is defined
