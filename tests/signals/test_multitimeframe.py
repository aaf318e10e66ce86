"""Multi-timeframe metrics: the design's cascade golden examples (3.5 / 2.8 / 1.8 -> bullish
cascade; 0.4 / 0.6 / 0.9 while long -> cascade reversed), VWAP alignment by hand, and the
contract on dense random streams."""

from __future__ import annotations

import numpy as np
import pytest

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals import Metric, get_spec
from emerald.testing.contract import check_contract
from emerald.testing.strategies import make_event_table
from emerald.testing.tapes import T0

S = 1_000_000_000
MIN = 60 * S
START = T0 - T0 % (24 * 3600 * S)


def tape(rows: list[tuple], probes: list[float] = ()) -> EventTable:
    """Trades ``(seconds after START, price, qty, side)`` of ``v:X``; ``probes``: trades of
    ``v:Y`` that only move stream time."""
    def table(rs: list[tuple]) -> dict[str, np.ndarray]:
        ts = np.array([START + round(r[0] * S) for r in rs], dtype=np.int64)
        return {"ts_event": ts, "ts_recv": ts, "price": np.array([r[1] for r in rs], dtype=float),
                "qty": np.array([r[2] for r in rs], dtype=float), "side": np.array([r[3] for r in rs], np.int8),
                "trade_id": np.arange(len(rs))}
    items = [("trades", "v", "X", table(rows))]
    if probes:
        items.append(("trades", "v", "Y", table([(t, 1.0, 1.0, 1) for t in probes])))
    return EventTable.from_tables(items)


def run(name: str, ev: EventTable, **params) -> np.ndarray:
    spec = get_spec(name)
    p = spec.make_params(**params)
    check_contract(spec, ev, p)
    return Metric(spec, p).run(ev)


def at(ev: EventTable, out: np.ndarray, seconds: float, inst: int = 0) -> np.ndarray:
    hit = np.flatnonzero((ev.ts == START + round(seconds * S)) & (ev.inst == inst))
    assert hit.size, f"no event of inst {inst} at {seconds} s"
    return out[hit[-1]]


# --------------------------------------------------------------------------------- flow cascade
# Windows 1m / 5m / 15m of 1 s buckets. At t (s) the fast window holds buckets (t-60, t], the mid
# (t-300, t], the slow (t-900, t].
ENTRY = [
    (200, 100.0, 2.0, 1), (210, 100.0, 2.5, -1),  # slow only at t=995
    (800, 100.0, 3.5, 1), (810, 100.0, 1.5, -1),  # mid and slow
    (990, 100.0, 3.5, 1), (995, 100.0, 1.0, -1),  # all three
]
# at t=995: fast 3.5/1 = 3.5, mid 7/2.5 = 2.8, slow 9/5 = 1.8
EXIT = [  # sells first: no long cascade forms on the way (a window of buys only is at the cap)
    (1100, 100.0, 5.0, -1), (1110, 100.0, 0.35, 1),  # slow only at t=1470
    (1300, 100.0, 1.0, -1), (1310, 100.0, 0.8, 1),  # mid and slow
    (1460, 100.0, 1.0, -1), (1470, 100.0, 0.4, 1),  # all three
]
# at t=1470 (t=200..210 have left the slow window): fast 0.4/1 = 0.4, mid 1.2/2 = 0.6,
# slow (3.5 + 3.5 + 0.35 + 0.8 + 0.4) / (1.5 + 1 + 5 + 1 + 1) = 8.55 / 9.5 = 0.9


def test_cascade_golden_bullish() -> None:
    ev = tape(ENTRY)
    out = run("flow_cascade", ev)
    r = at(ev, out, 995)
    assert r[:3] == pytest.approx([3.5, 2.8, 1.8], rel=1e-12)
    assert r[3] == 1.0  # 3.5 > 2.8 > 1.8 and 3.5 > 2.0: bullish cascade valid
    assert r[4:].tolist() == [0.0, 0.0]


def test_cascade_golden_reversal_while_long() -> None:
    ev = tape(ENTRY + EXIT)
    out = run("flow_cascade", ev)
    r = at(ev, out, 1470)
    assert r[:3] == pytest.approx([0.4, 0.6, 0.9], rel=1e-12)
    assert r[3] == -1.0  # 0.4 < 0.6 < 0.9 and 0.4 < 0.5: selling accelerates
    assert r[4] == 1.0 and r[5] == 0.0  # the long cascade of t=995 has reversed
    # without a long cascade within memory_ns it is the short pattern, not a reversal
    assert (out[(ev.ts > START + 995 * S), 3] != 1.0).all()  # the last long cascade: t=995, 475 s before
    out = run("flow_cascade", ev, memory_ns=5 * MIN)
    assert at(ev, out, 1470)[3:].tolist() == [-1.0, 0.0, 0.0]


def test_cascade_mirror_and_neutral() -> None:
    # the mirrored prints (buys <-> sells): ratios 1/3.5, 1/2.8, 1/1.8 -> short cascade
    mirror = [(t, p, q, -s) for t, p, q, s in ENTRY]
    ev = tape(mirror)
    r = at(ev, run("flow_cascade", ev), 995)
    assert r[:3] == pytest.approx([1 / 3.5, 1 / 2.8, 1 / 1.8], rel=1e-12) and r[3] == -1.0
    # ordered but too weak: fast 1.9 < 2.0 -> no cascade
    weak = [(200, 100.0, 1.0, 1), (210, 100.0, 1.0, -1), (990, 100.0, 1.9, 1), (995, 100.0, 1.0, -1)]
    ev = tape(weak)
    r = at(ev, run("flow_cascade", ev), 995)
    assert r[:3] == pytest.approx([1.9, 1.9, 1.45]) and r[3] == 0.0  # fast == mid: not strictly ordered


def test_cascade_undefined_and_capped() -> None:
    # buys only in every window: all three ratios at the cap, not ordered -> 0; before: NaN
    ev = tape([(10, 100.0, 1.0, 1), (20, 100.0, 1.0, 1)], probes=[5, 2000])
    out = run("flow_cascade", ev, cap=20.0)
    assert np.isnan(out[0]).all()
    assert out[1].tolist() == [20.0, 20.0, 20.0, 0.0, 0.0, 0.0]
    assert np.isnan(at(ev, out, 2000, inst=1)).all()  # every window empty again


def test_cascade_params_are_checked() -> None:
    with pytest.raises(ConfigError, match="`fast_ns` must be shorter"):
        Metric("flow_cascade", fast_ns=5 * MIN)
    with pytest.raises(ConfigError, match="short_ratio < 1 < long_ratio < cap"):
        Metric("flow_cascade", long_ratio=200.0)


# ------------------------------------------------------------------------------ VWAP alignment


def test_vwap_alignment_by_hand() -> None:
    rows = [(100, 100.0, 1.0, 1), (800, 101.0, 1.0, -1), (950, 102.0, 2.0, 1),
            (990, 104.0, 0.0, 1),  # a 0-size print moves the price, not the VWAPs
            (991, 101.0, 0.0, -1), (992, 99.0, 0.0, -1)]
    ev = tape(rows)
    out = run("vwap_alignment", ev)
    # VWAPs at t=990: fast (930, 990] = 102; mid (690, 990] = (101 + 204) / 3; slow = (100 + 101 + 204) / 4
    vwaps = np.array([102.0, 305.0 / 3, 405.0 / 4])
    for t, price, align in ((990, 104.0, 1.0), (991, 101.0, 0.0), (992, 99.0, -1.0)):
        r = at(ev, out, t)
        assert r[:3] == pytest.approx((price - vwaps) / vwaps * 100.0, rel=1e-12)
        assert r[3] == align
    # 104: +1.96 %, +2.30 %, +2.72 % -> all above +1 %; 101: -0.98 %, -0.66 %, -0.25 %; 99: all below -1 %
    assert out[0].tolist() == [0.0, 0.0, 0.0, 0.0]  # the first trade: price == every VWAP


def test_vwap_alignment_threshold_and_empty_windows() -> None:
    rows = [(100, 100.0, 1.0, 1), (800, 101.0, 1.0, -1), (950, 102.0, 2.0, 1), (990, 104.0, 0.0, 1)]
    ev = tape(rows, probes=[50, 1011])
    out = run("vwap_alignment", ev, threshold_pct=2.0)
    assert np.isnan(at(ev, out, 50, inst=1)).all()
    assert at(ev, out, 990)[3] == 0.0  # fast deviation 1.96 % is not beyond 2 %
    assert np.isnan(at(ev, out, 1011, inst=1)[[0, 3]]).all()  # fast window (951, 1011] holds no volume


# ----------------------------------------------------------------------- contract on dense streams

DENSE = {
    "flow_cascade": {"fast_ns": 10 * S, "mid_ns": 30 * S, "slow_ns": 90 * S, "long_ratio": 1.3,
                     "short_ratio": 0.75, "memory_ns": 60 * S, "min_notional": 20.0},
    "vwap_alignment": {"fast_ns": 10 * S, "mid_ns": 30 * S, "slow_ns": 90 * S, "threshold_pct": 0.1},
}


@pytest.mark.parametrize("seed", [21, 22])
@pytest.mark.parametrize("name", sorted(DENSE))
def test_contract_on_dense_streams(name: str, seed: int) -> None:
    ev = make_event_table(seed, n_instruments=2, n_events=1500, kinds=("trades", "quotes"), span_ns=10 * MIN,
                          gap_p=0.0)
    spec = get_spec(name)
    params = spec.make_params(**DENSE[name])
    check_contract(spec, ev, params, cuts=(0.25, 0.6))
    out = Metric(spec, params).run(ev)
    assert np.isfinite(out).all(axis=1).mean() > 0.5
    signal = out[:, 3]
    # both signs of the cascade / alignment occur, so the oracle checks them too
    assert (signal == 1.0).any() and (signal == -1.0).any()
    if name == "flow_cascade":
        assert (out[:, 4] == 1.0).any() and (out[:, 5] == 1.0).any()
