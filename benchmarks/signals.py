"""Signal-library throughput, side by side with pandas, polars and a hand-written numba loop.

    .venv/bin/python benchmarks/signals.py [--trades 10000000] [--stream-events 100000]
        [--parts peers,trade,registry,stream,cold] [--metrics name,name,...]

``--parts`` runs a subset; ``--metrics`` restricts the per-metric tables and the registry run to
those metrics. The registry part prints each member's batch time over the whole tape (slowest
first) next to the whole-set time, so the two can be compared within one process.

Goals (issue 3): trade-window metrics >= 50 M events/s in batch on 10 M trades; the whole
registry over a 10 M-trade tape in <= 5 s after compilation; stream mode, all trade-driven
metrics together <= 10 us per event; cold-start compile time with an empty and a filled numba
cache. Best of ``--repeat`` runs (the machine is noisy).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import polars as pl
from numba import njit

from emerald.events.table import EventTable
from emerald.signals import REGISTRY, Metric
from emerald.signals.metric_set import MetricSet
from emerald.testing.strategies import make_event_table
from emerald.testing.tapes import make_trades

WINDOW_NS = 60_000_000_000
BUCKET_NS = 1_000_000_000


def best(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


@njit(cache=True)
def hand_imbalance_nb(ts, qty, side, window_ns, bucket_ns, out):
    """Hand-written peer: the same bucketed imbalance as `trade_flow_imbalance`, arrays only."""
    nb = window_ns // bucket_ns
    slots = np.zeros((nb, 2))
    buy = 0.0
    sell = 0.0
    head = -1
    for i in range(ts.shape[0]):
        b = ts[i] // bucket_ns
        if b > head:
            if head < 0 or b - head >= nb:
                slots[:] = 0.0
                buy = 0.0
                sell = 0.0
            else:
                for k in range(head + 1, b + 1):
                    s = k % nb
                    buy -= slots[s, 0]
                    sell -= slots[s, 1]
                    slots[s, 0] = 0.0
                    slots[s, 1] = 0.0
            head = b
        s = head % nb
        if side[i] > 0:
            slots[s, 0] += qty[i]
            buy += qty[i]
        else:
            slots[s, 1] += qty[i]
            sell += qty[i]
        tot = buy + sell
        out[i] = (buy - sell) / tot if tot > 0 else np.nan


def pandas_imbalance(ts: np.ndarray, qty: np.ndarray, side: np.ndarray) -> np.ndarray:
    b = ts // BUCKET_NS
    df = pd.DataFrame({"b": b, "buy": np.where(side > 0, qty, 0.0), "sell": np.where(side > 0, 0.0, qty)})
    per = df.groupby("b")[["buy", "sell"]].sum()
    full = per.reindex(np.arange(per.index[0], per.index[-1] + 1), fill_value=0.0)
    # window = this bucket (so far) + the nb - 1 buckets before it
    prev = full.rolling(WINDOW_NS // BUCKET_NS - 1, min_periods=1).sum().shift(1).fillna(0.0)
    cum = df.groupby("b")[["buy", "sell"]].cumsum()
    base = prev.reindex(b).to_numpy()
    tot = base + cum.to_numpy()
    return (tot[:, 0] - tot[:, 1]) / (tot[:, 0] + tot[:, 1])


def polars_imbalance(ts: np.ndarray, qty: np.ndarray, side: np.ndarray) -> np.ndarray:
    nb = WINDOW_NS // BUCKET_NS
    df = pl.DataFrame({"b": ts // BUCKET_NS, "buy": np.where(side > 0, qty, 0.0), "sell": np.where(side > 0, 0.0, qty)})
    per = df.group_by("b", maintain_order=True).agg(pl.col("buy").sum(), pl.col("sell").sum())
    full = pl.DataFrame({"b": np.arange(per["b"][0], per["b"][-1] + 1)}).join(per, on="b", how="left")
    full = full.with_columns(pl.col("buy").fill_null(0.0), pl.col("sell").fill_null(0.0))
    full = full.with_columns(
        pl.col("buy").rolling_sum(nb - 1, min_samples=1).shift(1).fill_null(0.0).alias("pb"),
        pl.col("sell").rolling_sum(nb - 1, min_samples=1).shift(1).fill_null(0.0).alias("ps"),
    )
    ev = df.with_columns(pl.col("buy").cum_sum().over("b").alias("cb"), pl.col("sell").cum_sum().over("b").alias("cs"))
    ev = ev.join(full.select("b", "pb", "ps"), on="b", how="left", maintain_order="left")
    buy = (ev["pb"] + ev["cb"]).to_numpy()
    sell = (ev["ps"] + ev["cs"]).to_numpy()
    return (buy - sell) / (buy + sell)


def cold_start(cache_dir: str) -> float:
    code = ("import time; t=time.perf_counter()\n"
            "from emerald.signals import REGISTRY, Metric\n"
            "from emerald.testing.strategies import make_event_table\n"
            "ev = make_event_table(1, n_instruments=2, n_events=200)\n"
            "[Metric(n).run(ev) for n in sorted(REGISTRY)]\n"
            "print(time.perf_counter()-t)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "NUMBA_CACHE_DIR": cache_dir})
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=10_000_000)
    ap.add_argument("--stream-events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--metrics", default="", help="comma-separated metric names (default: all)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if args.skip_cold:
        parts.discard("cold")
    if parts - set(PARTS):
        ap.error(f"unknown parts {sorted(parts - set(PARTS))}, known: {','.join(PARTS)}")
    names = sorted(args.metrics.split(",")) if args.metrics else sorted(REGISTRY)
    unknown = [nm for nm in names if nm not in REGISTRY]
    if unknown:
        ap.error(f"unknown metrics {unknown}")
    n = args.trades
    d = make_trades(n, mean_gap_ns=20_000_000)  # 50 trades/s: ~2.3 days
    ev = EventTable.from_tables([("trades", "bench", "BTCUSDT", d)])
    print(f"trades: {n:,}")
    if "peers" in parts:
        peers(ev, d, args.repeat)
    trade_only = [REGISTRY[nm] for nm in names if REGISTRY[nm].inputs == ("trades",) and REGISTRY[nm].instruments == 1]
    if "trade" in parts:
        print(f"trade-driven metrics ({len(trade_only)}), batch on {n:,} trades:")
        for spec in trade_only:
            Metric(spec).run(ev.slice(0, 100))
            t = best(lambda spec=spec: Metric(spec).run(ev), args.repeat)
            print(f"  {spec.name:36s} {n / t / 1e6:7.1f} M events/s")
    if "registry" in parts:
        registry(d, names, args.repeat)
    if "stream" in parts:
        stream(ev, trade_only, args.stream_events)
    if "cold" in parts:
        with tempfile.TemporaryDirectory() as cache:
            t_empty = cold_start(cache)
            t_filled = cold_start(cache)
        print(f"cold start, all {len(REGISTRY)} metrics compiled and run once: empty numba cache {t_empty:.1f} s, "
              f"filled cache {t_filled:.1f} s")


PARTS = ("peers", "trade", "registry", "stream", "cold")


def peers(ev: EventTable, d: dict, repeat: int) -> None:
    """One trade-window metric, four implementations."""
    n = len(ev)
    ts, qty, side = d["ts_event"], d["qty"], d["side"].astype(np.float64)
    m = Metric("trade_flow_imbalance", window_ns=WINDOW_NS, bucket_ns=BUCKET_NS)
    m.run(ev.slice(0, 100))
    t_ours = best(lambda: Metric("trade_flow_imbalance", window_ns=WINDOW_NS, bucket_ns=BUCKET_NS).run(ev), repeat)
    out = np.empty(n)
    hand_imbalance_nb(ts[:10], qty[:10], side[:10], WINDOW_NS, BUCKET_NS, out[:10])
    t_hand = best(lambda: hand_imbalance_nb(ts, qty, side, WINDOW_NS, BUCKET_NS, out), repeat)
    ours = Metric("trade_flow_imbalance", window_ns=WINDOW_NS, bucket_ns=BUCKET_NS).run(ev)[:, 0]
    t_pd = best(lambda: pandas_imbalance(ts, qty, side), 1)
    t_pl = best(lambda: polars_imbalance(ts, qty, side), 1)
    for name, fn in (("hand numba", lambda: out), ("pandas", lambda: pandas_imbalance(ts, qty, side)),
                     ("polars", lambda: polars_imbalance(ts, qty, side))):
        diff = np.nanmax(np.abs(fn() - ours))
        assert diff < 1e-6, f"{name} peer disagrees with the kernel by {diff}"
    print("trade_flow_imbalance (60 s window, 1 s buckets), batch:")
    for label, t in (("emerald kernel (step loop)", t_ours), ("hand-written numba loop", t_hand),
                     ("polars", t_pl), ("pandas", t_pd)):
        print(f"  {label:28s} {n / t / 1e6:7.1f} M events/s" + ("   goal >= 50" if "emerald" in label else ""))



def registry(d: dict, names: list[str], repeat: int) -> None:
    """The whole registry (or ``names``) over a tape with the 10 M trades and the other kinds."""
    n = len(d["ts_event"])
    ts = d["ts_event"]
    others = make_event_table(3, n_instruments=2, n_events=200_000,
                              kinds=("quotes", "book", "prices", "funding", "open_interest", "liquidations", "bars"),
                              span_ns=int(ts[-1] - ts[0]))
    tape = EventTable.from_tables(
        [("trades", "demo-perp", "X0USDT", d)]
        + [(k, *others.instruments[i], _rows_of(others, k, i)) for i in range(len(others.instruments))
           for k in ("quotes", "prices", "funding", "open_interest", "liquidations", "bars")
           if _rows_of(others, k, i) is not None])
    ms = MetricSet([Metric(nm) for nm in names])
    ms.run(tape.slice(0, 1000))
    per = {}
    for nm in names:  # each member's own batch driver over the whole tape (kernel work only)
        per[nm] = best(lambda nm=nm: Metric(nm).run(tape), 1)
    print(f"per-metric batch time over {len(tape):,} events, slowest first (sum {sum(per.values()):.2f} s):")
    for nm, t in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"  {nm:36s} {t:6.3f} s  {len(tape) / t / 1e6:7.1f} M events/s")
    print(f"whole registry ({len(names)} metrics, {len(ms.columns)} columns) over {len(tape):,} events "
          f"({n:,} trades), goal <= 5 s:")
    for order, threads in (("C", 1), ("F", 1), ("C", 2), ("F", 2)):
        t_all = best(lambda o=order, t=threads: MetricSet([Metric(nm) for nm in names]).run(tape, order=o, threads=t),
                     repeat)
        print(f"  MetricSet.run(order={order!r}, threads={threads})  {t_all:6.2f} s")


def stream(ev: EventTable, trade_only: list, stream_events: int) -> None:
    """All trade-driven metrics together, one compiled call per event."""
    n = len(ev)
    sset = MetricSet([Metric(s) for s in trade_only])
    k = min(stream_events, n)
    fields = ev.f[:, :k].T.copy()
    tsl, kl, il, rl = ev.ts[:k].tolist(), ev.kind[:k].tolist(), ev.inst[:k].tolist(), ev.row[:k].tolist()
    sset.update(tsl[0], kl[0], il[0], rl[0], fields[0])
    t0 = time.perf_counter()
    for i in range(1, k):
        sset.update(tsl[i], kl[i], il[i], rl[i], fields[i])
    per = (time.perf_counter() - t0) / (k - 1) * 1e6
    single = Metric("trade_flow_imbalance")
    t0 = time.perf_counter()
    for i in range(k):
        single.update(tsl[i], kl[i], il[i], rl[i], fields[i])
    per_one = (time.perf_counter() - t0) / k * 1e6
    print(f"stream: {len(trade_only)} trade-driven metrics together {per:.2f} us/event (goal <= 10); "
          f"one metric alone {per_one:.2f} us/event")


def _rows_of(events: EventTable, kind: str, inst: int) -> dict | None:
    from emerald.events.table import FIELDS
    from emerald.model.enums import Kind

    m = (events.kind == int(Kind.parse(kind))) & (events.inst == inst)
    if not m.any():
        return None
    cols: dict = {"ts_event": events.ts[m].copy()}
    for j, name in enumerate(FIELDS[kind]):
        cols[name] = events.f[j, m]
    if kind == "bars":
        cols["ts_event"] = cols["ts_event"] - cols["interval_ns"].astype(np.int64)
        cols["interval_ns"] = cols["interval_ns"].astype(np.int64)
        cols["trades"] = np.zeros(int(m.sum()), np.int64)
    if kind in ("trades", "quotes"):
        cols["ts_recv"] = cols["ts_event"]
    if kind == "trades":
        cols["trade_id"] = np.arange(int(m.sum()))
        cols["side"] = cols["side"].astype(np.int8)
    if kind == "liquidations":
        cols["side"] = cols["side"].astype(np.int8)
    if kind == "funding":
        cols["interval_ns"] = cols["interval_ns"].astype(np.int64)
        cols["next_funding_ts"] = cols["next_funding_ts"].astype(np.int64)
        cols["is_settlement"] = cols["is_settlement"].astype(bool)
    return cols


if __name__ == "__main__":
    main()
