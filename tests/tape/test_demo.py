"""The seeded demo tape: determinism, valid rows, and the planted conditions read back from Parquet.

The module shares one full build of Friday 2024-03-01 (seed 7); the same build runs meanwhile in
a subprocess under another PYTHONHASHSEED and must give byte-identical files. A three-day subset
build (BTC perp, ETH spot, EURUSD) covers what needs later days (open-interest accumulation,
elevated funding, the forex weekend) and shows that name-keyed streams write the same bytes as
the full build. Every check recomputes what it needs from the written files (basis = mark /
index - 1, VWAP and its sd from the trades, funding from the premium, OI and price changes) and
compares it with the rules of datasets/demo.md, not with numbers the generator computed.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emerald.errors import ConfigError
from emerald.model.enums import InstrumentKind
from emerald.model.instruments import get_instrument
from emerald.tape.demo import DEMO_INSTRUMENTS, build_demo
from emerald.tape.manifest import load_manifest

NS = 1_000_000_000
DAY = 86_400 * NS
HOUR = 3_600 * NS
FRIDAY = int(np.datetime64("2024-03-01", "ns").astype(np.int64))
DAYS = 1
PERPS = [s for v, s in DEMO_INSTRUMENTS if v == "demo-perp"]
CRYPTO = [(v, s) for v, s in DEMO_INSTRUMENTS if v != "demo-fx"]
BOOKED = [("demo-perp", s) for s in PERPS] + [("demo-spot", "BTCUSDT")]

SMALL = [("demo-spot", "ETHUSDT"), ("demo-fx", "EURUSD")]  # no book: quick to build
PART = [("demo-perp", "BTCUSDT"), *SMALL]
PART_DAYS = 3  # Friday to Sunday
_BUILD = "import sys; from emerald.tape.demo import build_demo; build_demo(sys.argv[1], seed=int(sys.argv[2]), days=int(sys.argv[3]))"


@functools.cache
def _read(root: Path, kind: str, venue: str, symbol: str) -> pa.Table:
    files = sorted((root / kind / f"venue={venue}" / f"symbol={symbol}").rglob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def _col(t: pa.Table, name: str) -> np.ndarray:
    col = t.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(col.type):
        return np.asarray(col.flatten()).reshape(len(col), col.type.list_size)
    return col.to_numpy(zero_copy_only=False)


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _on_grid(x: np.ndarray, step: float) -> bool:
    k = x / step
    return bool(np.all(np.abs(k - np.rint(k)) < 1e-6))


@pytest.fixture(scope="module", autouse=True)
def _forget_tables() -> Iterator[None]:
    yield
    _read.cache_clear()


@pytest.fixture(scope="module")
def rebuild(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """Rebuild the module's tape in another process, under another hash seed, while the module builds its own."""
    root = tmp_path_factory.mktemp("same")
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _BUILD, str(root), "7", str(DAYS)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yield root, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory,
         rebuild: Any) -> tuple[Path, dict[str, Any], list[tuple[str, int, int]]]:
    root = tmp_path_factory.mktemp("demo")
    calls: list[tuple[str, int, int]] = []
    summary = build_demo(root, days=DAYS, progress=lambda step, done, total: calls.append((step, done, total)))
    return root, summary, calls


@pytest.fixture(scope="module")
def part(tmp_path_factory: pytest.TempPathFactory, demo: Any) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("part")
    return root, build_demo(root, days=PART_DAYS, instruments=PART)


def test_same_seed_is_byte_identical_and_another_seed_is_not(demo: Any, rebuild: Any, tmp_path: Path) -> None:
    root, _, _ = demo
    same_root, proc = rebuild
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    mine = _digests(root)
    # one file per kind, instrument and date: 4 books + 7 quotes + 6 trades + 3 x (prices, funding, OI,
    # liquidations) + the manifest
    assert "_manifest.json" in mine and len(mine) == 4 + 7 + 6 + 3 * 4 + 1
    assert _digests(same_root) == mine  # every file, the manifest included, under another hash seed

    build_demo(tmp_path, seed=8, days=1, instruments=SMALL)
    a, b = _partitions(root), _partitions(tmp_path)
    assert set(b) == {k for k in a if k[3] == "2024-03-01" and (k[1], k[2]) in SMALL}  # the same partitions ...
    assert all(a[k] != b[k] for k in b)  # ... with other content


def _partitions(root: Path) -> dict[tuple[str, str, str, str], str]:
    return {(e["kind"], e["venue"], e["symbol"], e["date"]): e["sha256"] for e in load_manifest(root)["files"].values()}


def test_a_subset_writes_the_same_rows_as_the_full_build(demo: Any, part: Any) -> None:
    root, _, _ = demo
    part_root, summary = part
    assert summary["instruments"] == [f"{v}:{s}" for v, s in DEMO_INSTRUMENTS if (v, s) in PART]
    assert {e["symbol"] for e in summary["conditions"]["basis_excursions"]} == {"BTCUSDT"}  # written perps only
    full, sub = _partitions(root), _partitions(part_root)
    assert {k[1:3] for k in sub} == set(PART)
    friday = [k for k in sub if k[3] == "2024-03-01"]
    assert len(friday) == 7 + 2 + 1  # perp: 7 kinds, spot: trades and quotes, forex: quotes
    assert all(sub[k] == full[k] for k in friday)  # streams are keyed by name: the same bytes
    with pytest.raises(ConfigError, match="instruments"):
        build_demo(part_root / "x", instruments=[("demo-perp", "DOGEUSDT")])


def test_rows_are_valid_and_conserved(demo: Any) -> None:
    root, summary, _ = demo
    write = summary["write"]
    assert write["balanced"] is True
    for e in write["entries"]:
        assert e["rows_in"] == e["rows_written"] > 0 and e["quarantined_total"] == 0 and e["duplicates"] == 0, e
    assert not (root / "_quarantine").exists()
    assert summary["seed"] == 7 and summary["days"] == DAYS
    # the summary's counts are the files' counts
    for kind, venues in summary["rows"].items():
        for venue, symbols in venues.items():
            for symbol, r in symbols.items():
                ts = _col(_read(root, kind, venue, symbol), "ts_event")
                assert (ts.size, int(ts.min()), int(ts.max())) == (r["rows"], r["first_ts"], r["last_ts"])
                assert FRIDAY <= ts.min() and ts.max() < FRIDAY + DAYS * DAY
    # cadences fixed by the spec: book/quotes/prices every second, OI every 5 min, funding each minute + 3 settlements
    rows = summary["rows"]
    for venue, symbol in BOOKED:
        assert rows["book"][venue][symbol]["rows"] == DAYS * 86_400
    for venue, symbol in CRYPTO:
        assert rows["quotes"][venue][symbol]["rows"] == DAYS * 86_400
    for symbol in PERPS:
        assert rows["prices"]["demo-perp"][symbol]["rows"] == DAYS * 86_400
        assert rows["open_interest"]["demo-perp"][symbol]["rows"] == DAYS * 288
        assert rows["funding"]["demo-perp"][symbol]["rows"] == DAYS * (1440 + 3)
        assert rows["liquidations"]["demo-perp"][symbol]["rows"] > 0
    assert {(v, s) for v, syms in rows["quotes"].items() for s in syms} == set(DEMO_INSTRUMENTS)
    assert {(v, s) for v, syms in rows["trades"].items() for s in syms} == set(CRYPTO)
    assert 50_000 < sum(r["rows"] for syms in rows["trades"].values() for r in syms.values()) < 300_000


def test_demo_instruments_are_registered() -> None:
    kinds = {"demo-perp": InstrumentKind.LINEAR_PERP, "demo-spot": InstrumentKind.SPOT, "demo-fx": InstrumentKind.FOREX}
    assert len(DEMO_INSTRUMENTS) == 7
    for venue, symbol in DEMO_INSTRUMENTS:
        assert get_instrument(venue, symbol).kind == kinds[venue]


def test_trades_are_on_tick_and_lot_with_increasing_ids_and_bursty_arrivals(demo: Any) -> None:
    root, _, _ = demo
    for venue, symbol in CRYPTO:
        spec = get_instrument(venue, symbol)
        t = _read(root, "trades", venue, symbol)
        ts, ids, side, price, qty = (_col(t, c) for c in ("ts_event", "trade_id", "side", "price", "qty"))
        assert np.all(np.diff(ts) >= 0) and np.all(np.diff(ids) > 0)
        assert np.all(_col(t, "ts_recv") > ts)
        assert set(np.unique(side).tolist()) == {-1, 1}
        assert _on_grid(price, spec.tick_size) and _on_grid(qty, spec.lot_size) and qty.min() >= spec.lot_size
        assert np.quantile(qty, 0.999) > 50 * np.median(qty)  # heavy tail
        counts = np.bincount((ts - FRIDAY) // NS, minlength=DAYS * 86_400)
        assert counts.var() > 1.3 * counts.mean()  # clustered, not Poisson


def test_books_are_consistent_and_trades_print_at_the_touch(demo: Any) -> None:
    root, _, _ = demo
    for venue, symbol in CRYPTO:
        spec = get_instrument(venue, symbol)
        tick = spec.tick_size
        q = _read(root, "quotes", venue, symbol)
        q_ts, bid, ask = _col(q, "ts_event"), _col(q, "bid_px"), _col(q, "ask_px")
        assert np.all(np.diff(q_ts) == NS) and np.all(bid < ask)
        if (venue, symbol) in BOOKED:
            b = _read(root, "book", venue, symbol)
            bp, bq, ap, aq = (_col(b, c) for c in ("bid_px", "bid_qty", "ask_px", "ask_qty"))
            assert bp.shape[1] == 20 and not np.isnan(bp).any() and not np.isnan(ap).any()
            assert np.all(bp[:, 0] < ap[:, 0])
            assert np.all(np.diff(bp, axis=1) < 0) and np.all(np.diff(ap, axis=1) > 0)
            assert _on_grid(bp, tick) and _on_grid(ap, tick)
            assert _on_grid(np.diff(bp, axis=1), tick) and _on_grid(np.diff(ap, axis=1), tick)
            assert _on_grid(bq, spec.lot_size) and bq.min() >= spec.lot_size and aq.min() >= spec.lot_size
            assert np.median(bq[:, 19]) > 2 * np.median(bq[:, 0]) and np.median(aq[:, 19]) > 2 * np.median(aq[:, 0])
            np.testing.assert_array_equal(_col(b, "ts_event"), q_ts)
            np.testing.assert_array_equal(bp[:, 0], bid)
            np.testing.assert_array_equal(aq[:, 0], _col(q, "ask_qty"))
        t = _read(root, "trades", venue, symbol)
        ts, side, price = _col(t, "ts_event"), _col(t, "side"), _col(t, "price")
        i = np.searchsorted(q_ts, ts, side="right") - 1  # the latest top of book at or before each trade
        assert i.min() >= 0
        assert np.all(price >= bid[i] - tick * 1.000001) and np.all(price <= ask[i] + tick * 1.000001)
        np.testing.assert_array_equal(price[side > 0], ask[i][side > 0])  # buyers lift the ask
        np.testing.assert_array_equal(price[side < 0], bid[i][side < 0])  # sellers hit the bid


def test_book_imbalance_follows_short_term_flow(demo: Any) -> None:
    root, _, _ = demo
    for symbol in PERPS:
        b = _read(root, "book", "demo-perp", symbol)
        bq, aq = _col(b, "bid_qty")[:, :5].sum(axis=1), _col(b, "ask_qty")[:, :5].sum(axis=1)
        imbalance = (bq - aq) / (bq + aq)
        t = _read(root, "trades", "demo-perp", symbol)
        sec = (_col(t, "ts_event") - FRIDAY) // NS
        net = np.bincount(sec, weights=_col(t, "side").astype(float), minlength=imbalance.size)
        trailing = np.convolve(net, np.ones(5))[: imbalance.size]  # net aggressor count over the last 5 s
        assert np.corrcoef(imbalance, trailing)[0, 1] > 0.1, symbol


def _check_funding(root: Path, symbol: str, days: int) -> np.ndarray:
    """Check the funding rows of one perp against the 8-hour grid and Binance's rule; return settled rates."""
    interval = 8 * HOUR
    f = _read(root, "funding", "demo-perp", symbol)
    ts, rate, settle = _col(f, "ts_event"), _col(f, "rate"), _col(f, "is_settlement")
    nxt, iv = _col(f, "next_funding_ts"), _col(f, "interval_ns")
    assert np.all(iv == interval)
    s_ts = ts[settle]
    np.testing.assert_array_equal(s_ts, FRIDAY + np.arange(3 * days) * interval)  # 00:00, 08:00, 16:00 UTC
    np.testing.assert_array_equal(nxt[settle], s_ts + interval)
    p_ts = ts[~settle]
    np.testing.assert_array_equal(p_ts, FRIDAY + np.arange(1440 * days) * 60 * NS)  # predicted every minute
    np.testing.assert_array_equal(nxt[~settle], (p_ts // interval + 1) * interval)
    # each settled rate is P + clamp(I - P, +-0.05 %), P the mean premium (mark / index - 1) of the interval
    p = _read(root, "prices", "demo-perp", symbol)
    premium = (_col(p, "mark") / _col(p, "index") - 1.0).reshape(-1, 8 * 3600).mean(axis=1)
    expected = premium + np.clip(0.0001 - premium, -0.0005, 0.0005)
    settled = rate[settle]
    np.testing.assert_allclose(settled[1:], expected[:-1], rtol=0, atol=1e-8)
    assert settled[0] == 0.0001  # the start has no earlier interval: the interest rate
    return settled


def test_funding_settles_on_the_8h_grid_from_the_premium(demo: Any, part: Any) -> None:
    root, summary, _ = demo
    for symbol in PERPS:
        assert np.all(_check_funding(root, symbol, DAYS) == 0.0001)  # Friday is a normal day: 0.01 %
    part_root, part_summary = part
    settled = _check_funding(part_root, "BTCUSDT", PART_DAYS)
    # Saturday 08:00 -> Sunday 16:00 is an elevated stretch: it settles Saturday 16:00 .. Sunday 16:00
    assert np.all(settled[:5] == 0.0001) and np.all(settled[5:] > 0.0005)
    regimes = [(e["regime"], e["settlements"]) for e in part_summary["conditions"]["funding_regimes"]]
    assert regimes == [("normal", 5), ("elevated", 4)]


def test_planted_basis_excursions_exceed_0_3pct_and_nothing_else_does(demo: Any) -> None:
    root, summary, _ = demo
    listed = summary["conditions"]["basis_excursions"]
    assert {e["sign"] for e in listed} == {-1, 1}
    for symbol in PERPS:
        p = _read(root, "prices", "demo-perp", symbol)
        ts = _col(p, "ts_event")
        basis = _col(p, "mark") / _col(p, "index") - 1.0
        mine = [e for e in listed if e["symbol"] == symbol]
        assert len(mine) == DAYS  # one per asset and day
        for e in mine:
            sel = (ts >= e["start_ts"]) & (ts < e["end_ts"])
            extreme = float((e["sign"] * basis[sel]).max())
            assert extreme > 0.003
            assert math.isclose(e["sign"] * extreme * 100, e["peak_basis_pct"], abs_tol=1e-4)
        # episodes beyond 0.3 % (runs less than 5 minutes apart merged): exactly the listed ones
        beyond = np.flatnonzero(np.abs(basis) > 0.003)
        starts = ts[beyond[np.r_[True, np.diff(beyond) > 300]]]
        assert len(starts) == len(mine)
        for s, e in zip(starts, mine, strict=True):
            assert e["start_ts"] <= s < e["end_ts"]


def test_liquidation_cascade_sells_longs_into_the_sharp_drop(demo: Any) -> None:
    root, summary, _ = demo
    friday_cascades = [e for e in summary["conditions"]["liquidation_cascades"] if e["start_ts"] < FRIDAY + DAY]
    assert {e["symbol"] for e in friday_cascades} == set(PERPS)
    for e in friday_cascades:
        symbol = e["symbol"]
        liq = _read(root, "liquidations", "demo-perp", symbol)
        ts, side, price, qty = (_col(liq, c) for c in ("ts_event", "side", "price", "qty"))
        span = e["end_ts"] - e["start_ts"]
        inside = (ts >= e["start_ts"]) & (ts < e["end_ts"])
        before = (ts >= e["start_ts"] - 4 * span) & (ts < e["start_ts"])
        assert e["side"] == -1 and inside.sum() >= 50
        assert (side[inside] == -1).mean() > 0.95  # longs are liquidated in a down move
        assert inside.sum() > 10 * before.sum() / 4  # a burst, not the background rate
        p = _read(root, "prices", "demo-perp", symbol)
        mark, pts = _col(p, "mark"), _col(p, "ts_event")
        window = mark[(pts >= e["start_ts"]) & (pts < e["end_ts"])]
        assert window.min() / window[0] - 1.0 < -0.02  # a sharp move down
        # forced sells fill at the bid and print as trades
        b = _read(root, "quotes", "demo-perp", symbol)
        i = np.searchsorted(_col(b, "ts_event"), ts, side="right") - 1
        np.testing.assert_array_equal(price, np.where(side > 0, _col(b, "ask_px")[i], _col(b, "bid_px")[i]))
        t = _read(root, "trades", "demo-perp", symbol)
        trades = set(zip(_col(t, "ts_event").tolist(), _col(t, "side").tolist(), _col(t, "qty").tolist(), strict=True))
        assert set(zip(ts.tolist(), side.tolist(), qty.tolist(), strict=True)) <= trades


def test_eurusd_quotes_only_in_forex_hours(demo: Any, part: Any) -> None:
    root, summary, _ = demo
    q = _read(root, "quotes", "demo-fx", "EURUSD")
    ts, bid, ask = _col(q, "ts_event"), _col(q, "bid_px"), _col(q, "ask_px")
    assert ts.min() >= FRIDAY and ts.max() < FRIDAY + 22 * HOUR  # Friday until 22:00 UTC
    assert ts.size > 20_000 and np.all(np.diff(ts) > 0)
    gaps = np.diff(ts)
    assert gaps.std() > gaps.mean()  # irregular arrivals
    spread_pips = (ask - bid) / 0.0001
    assert spread_pips.min() >= 0.5 - 1e-6 and spread_pips.max() <= 1.0 + 1e-6
    assert _on_grid(bid, 0.00001) and abs(np.median((bid + ask) / 2) / 1.08 - 1) < 0.02
    assert "demo-fx" not in summary["rows"]["trades"] and "demo-fx" not in summary["rows"]["book"]
    ts = _col(_read(part[0], "quotes", "demo-fx", "EURUSD"), "ts_event")
    saturday, sunday = FRIDAY + DAY, FRIDAY + 2 * DAY
    assert not np.any((ts >= saturday) & (ts < saturday + DAY))  # no tick on Saturday
    assert not np.any((ts >= FRIDAY + 22 * HOUR) & (ts < sunday + 22 * HOUR))  # closed Fri 22:00 -> Sun 22:00
    assert np.sum(ts >= sunday + 22 * HOUR) > 1000  # and open again


def test_vwap_stretches_sit_between_1_5_and_2_5_sigma_in_the_afternoon(demo: Any) -> None:
    root, summary, _ = demo
    stretches = summary["conditions"]["vwap_stretches"]
    assert len(stretches) == DAYS * len(PERPS)
    for e in stretches:
        end = e["minute_end_ts"]
        assert 12 * HOUR < end % DAY <= 20 * HOUR
        t = _read(root, "trades", "demo-perp", e["symbol"])
        ts, price, qty = _col(t, "ts_event"), _col(t, "price"), _col(t, "qty")
        sel = (ts >= end - end % DAY) & (ts < end)  # the UTC session so far
        p, q = price[sel], qty[sel]
        vwap = (p * q).sum() / q.sum()
        z = (p[-1] - vwap) / math.sqrt((q * (p - vwap) ** 2).sum() / q.sum())
        assert 1.5 <= abs(z) <= 2.5 and np.sign(z) == e["sign"], (e, z)
        assert math.isclose(z, e["z"], abs_tol=1e-3)


def test_flow_bursts_dominate_and_come_before_the_move(demo: Any) -> None:
    root, summary, _ = demo
    bursts = summary["conditions"]["flow_bursts"]
    assert {e["side"] for e in bursts} == {-1, 1} and len(bursts) == DAYS * 4 * len(PERPS)  # 2 up, 2 down a day
    moves = []
    for e in bursts:
        t = _read(root, "trades", "demo-perp", e["symbol"])
        ts, side, qty = _col(t, "ts_event"), _col(t, "side"), _col(t, "qty")
        sel = (ts >= e["start_ts"]) & (ts < e["end_ts"])
        buy, sell = qty[sel & (side > 0)].sum(), qty[sel & (side < 0)].sum()
        ratio = buy / sell if e["side"] > 0 else sell / buy
        assert ratio > 2.5, e  # the seed strategies' 2.5:1 threshold
        p = _read(root, "prices", "demo-perp", e["symbol"])
        pts, mark = _col(p, "ts_event"), _col(p, "mark")
        t0, t1 = (int(np.datetime64(e[k].rstrip("Z"), "ns").astype(np.int64)) for k in ("move_start", "move_end"))
        moves.append(e["side"] * (mark[pts == t1][0] / mark[pts == t0][0] - 1.0))
    assert np.mean(moves) > 0.004 and np.mean(np.array(moves) > 0) > 0.8


def test_open_interest_accumulates_with_price_on_day_two(part: Any) -> None:
    root, summary = part
    (acc,) = [e for e in summary["conditions"]["open_interest"] if e["kind"] == "accumulation"]
    assert acc["end_ts"] - acc["start_ts"] == DAY and acc["end_ts"] == FRIDAY + 2 * DAY - 300 * NS
    oi = _read(root, "open_interest", "demo-perp", "BTCUSDT")
    o_ts, o_qty = _col(oi, "ts_event"), _col(oi, "oi_qty")
    np.testing.assert_array_equal(o_ts, FRIDAY + np.arange(PART_DAYS * 288) * 300 * NS)  # every 5 minutes
    p = _read(root, "prices", "demo-perp", "BTCUSDT")
    pts, mark = _col(p, "ts_event"), _col(p, "mark")
    oi_change = o_qty[o_ts == acc["end_ts"]][0] / o_qty[o_ts == acc["start_ts"]][0] - 1.0
    price_change = mark[pts == acc["end_ts"]][0] / mark[pts == acc["start_ts"]][0] - 1.0
    assert oi_change > 0.03 and price_change > 0.02, (oi_change, price_change)  # accumulation: OI and price up
    assert math.isclose(oi_change * 100, acc["oi_change_pct"], abs_tol=1e-4)
    np.testing.assert_allclose(_col(oi, "oi_notional"), o_qty * mark[np.searchsorted(pts, o_ts)], rtol=1e-9)


def test_progress_and_summary_shape(demo: Any) -> None:
    _, summary, calls = demo
    done = [c[1] for c in calls]
    assert done == list(range(1, len(calls) + 1)) and {c[2] for c in calls} == {len(calls)}
    assert all(isinstance(c[0], str) and c[0] for c in calls)
    assert summary["start"] == "2024-03-01T00:00:00Z" and summary["end"] == "2024-03-02T00:00:00Z"
    assert set(summary["conditions"]) == {"regimes", "basis_excursions", "funding_regimes", "flow_bursts",
                                          "vwap_stretches", "open_interest", "liquidation_cascades"}
    kinds = {e["kind"] for e in summary["conditions"]["regimes"]}
    assert {"trend", "range", "shock"} <= kinds


def test_bad_arguments_and_an_occupied_root(demo: Any, tmp_path: Path) -> None:
    root, _, _ = demo
    for kwargs, match in (({"seed": -1}, "seed"), ({"days": 0}, "days"), ({"start": "2024-3-1"}, "start"),
                          ({"start": "1990-01-01"}, "within")):
        with pytest.raises(ConfigError, match=match):
            build_demo(tmp_path, **kwargs)
    with pytest.raises(ConfigError, match="already holds demo data"):
        build_demo(root, days=1)
