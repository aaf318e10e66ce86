"""Rolling return correlation between two instruments, with hand-computed expectations."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals import REGISTRY, Metric
from emerald.signals.base import HOUR_NS, MINUTE_NS, SECOND_NS
from emerald.testing.contract import check_contract
from emerald.testing.strategies import make_event_table

T = (1_700_000_000_000_000_000 // HOUR_NS) * HOUR_NS


def trades(ts, price) -> dict:
    n = len(ts)
    return {"ts_event": np.asarray(ts, np.int64), "price": np.asarray(price, float), "qty": np.ones(n),
            "side": np.ones(n, np.int8)}


def _pair(rx: list[float], ry: list[float], extra: list[tuple[int, float, float]] = ()) -> EventTable:
    """One trade per second per instrument with prices 100 x exp(cumulated log returns), then
    one event in the next second (and ``extra`` (ns offset, px, py) trades)."""
    px = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(rx)]))
    py = 50.0 * np.exp(np.concatenate([[0.0], np.cumsum(ry)]))
    sec = np.arange(len(px)) * SECOND_NS
    ts_x = [*(T + sec + SECOND_NS // 10), *(T + o for o, _, _ in extra)]
    ts_y = [*(T + sec + SECOND_NS // 5), *(T + o for o, _, _ in extra)]
    tick = T + len(px) * SECOND_NS + SECOND_NS // 2
    return EventTable.from_tables([
        ("trades", "a", "COIN", trades([*ts_x, tick], [*px, *(p for _, p, _ in extra), px[-1]])),
        ("trades", "a", "BTC", trades(ts_y, [*py, *(p for _, _, p in extra)])),
    ])


RX = [0.01, -0.02, 0.03, 0.0, 0.01, -0.01]
PARAMS = dict(bucket_ns=SECOND_NS, window=5)


def test_correlation_by_hand() -> None:
    ry = [0.02, 0.005, -0.01, 0.01, 0.01, 0.0]
    out = Metric("return_correlation", **PARAMS).run(_pair(RX, ry))
    # the final event is in bucket 7: returns of buckets 2..6 are the last five completed ones
    assert out[-1, 0] == pytest.approx(statistics.correlation(RX[1:], ry[1:]), rel=1e-9)


@pytest.mark.parametrize(("scale", "expected"), [(2.0, 1.0), (-0.5, -1.0)])
def test_correlation_of_proportional_returns(scale: float, expected: float) -> None:
    out = Metric("return_correlation", **PARAMS).run(_pair(RX, [scale * r for r in RX]))
    assert out[-1, 0] == pytest.approx(expected, rel=1e-9)


def test_correlation_warm_up_and_constant_series() -> None:
    ev = _pair(RX, RX)
    out = Metric("return_correlation", **PARAMS).run(ev)
    bucket = (ev.ts - T) // SECOND_NS
    assert np.isnan(out[bucket <= 5, 0]).all()  # five returns need six closes: buckets 0..5 complete in bucket 6
    np.testing.assert_allclose(out[bucket >= 6, 0], 1.0, rtol=1e-9)
    flat = Metric("return_correlation", **PARAMS).run(_pair(RX, [0.0] * 6))
    assert np.isnan(flat[-1, 0])  # a constant series has no correlation


def test_correlation_is_constant_within_a_bucket() -> None:
    base = Metric("return_correlation", **PARAMS).run(_pair(RX, [0.5 * r for r in RX]))
    # wild trades inside the last (incomplete) bucket do not move the value before the bucket ends
    wild = _pair(RX, [0.5 * r for r in RX], extra=[(7 * SECOND_NS + 1, 1.0, 1e6)])
    out = Metric("return_correlation", **PARAMS).run(wild)
    assert out[-1, 0] == base[-1, 0]


def test_correlation_rejects_one_instrument() -> None:
    with pytest.raises(ConfigError, match="ref_inst"):
        Metric("return_correlation", inst=1, ref_inst=1)


@pytest.mark.parametrize("params", [dict(bucket_ns=SECOND_NS, window=10),
                                    dict(bucket_ns=10 * SECOND_NS, window=5, price_source=2),
                                    dict(bucket_ns=MINUTE_NS, window=3, price_source=0, ref_inst=2)])
def test_contract_off_the_defaults(params: dict) -> None:
    spec = REGISTRY["return_correlation"]
    finite = 0
    for seed in range(8):
        events = make_event_table(seed, n_instruments=3, n_events=400, span_ns=[60 * SECOND_NS, HOUR_NS][seed % 2])
        check_contract(spec, events, spec.make_params(**params))
        finite += int(np.isfinite(Metric(spec, **params).run(events)).all(axis=1).sum())
    assert finite > 0  # the oracle comparison covered events where every output is defined
