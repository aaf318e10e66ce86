"""Liquidation cascade: detect bursts of forced orders and trade the overshoot back, or only alert.

A **cascade** is a window (``window_s``, 5 min: emerald-gameplan.md 2.2 "liquidation volume in last
5 min") holding at least ``min_count`` liquidations of at least ``min_notional`` in total (the
intelligence PRD's cascade thresholds; metric ``liquidation_cascade``), with one side dominating:
long liquidations (forced sells, side −1) push the price down, short liquidations (forced buys,
+1) push it up. The notional condition is the strategy's scored trigger, so every cascade is
logged as a signal firing (``RunResult.firings``: time, side, notional): in ``alerts_only = 1``
mode those rows are the alerts and nothing is traded.

The **estimated cluster levels** are the metric ``liquidation_levels``: the nearest long-
liquidation level below the price and short-liquidation level above it, estimated from open-
interest increases (5–50x leverage). While a cascade runs the kernel tracks its extreme price;
``p0`` is the 15-minute mean trade price when it was detected (the pre-cascade level). When the
cascade ends (the window drops below ``min_count``) and the overshoot ``|p0 − extreme| / p0`` is at
least ``min_move_pct``, it fades the move (long after long liquidations, short after short ones):

* skipped when the next cluster on the cascade's side (the long level below for a long fade) is
  within ``cluster_gap_pct`` of the price: the cascade has fuel left;
* stop ``stop_pct`` beyond the extreme; target: ``retrace`` of the overshoot back toward ``p0``
  (the kernel closes there); the ``[execution]`` max hold caps the rest.

State (``pos[0].mem``): 0 phase (0 idle, 1 cascade running, 2 fade open), 1 cascade side, 2 p0,
3 extreme, 4 target. Counters (``acct[0].mem``): 0 ``cascades_long``, 1 ``cascades_short``,
2 ``fades``, 3 ``skipped_near_cluster``, 4 ``skipped_small_move``, 5 ``target_exits``.
"""

from __future__ import annotations

from numba import njit

from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.signals.base import SECOND_NS, Metric, Param
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger

PERP = 0
# signal columns (the order of signals())
CASCADE, COUNT, NOTIONAL, SIDE, LONG_LEVEL, SHORT_LEVEL, RISK, Z, MEAN, STD = range(10)


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    if inst[i] != PERP:
        return 0
    p = pos[PERP]
    px = p.last
    if not (px > 0.0):
        return 0
    m = p.mem
    c = acct[0].mem
    th = fitted[1] if fitted.shape[0] >= 2 else sp[0].min_notional
    phase = m[0]
    if phase == 2.0:
        if ords[PERP].active:
            return 0
        if p.qty == 0.0:
            m[0] = 0.0  # stopped out, held to the maximum, or the entry never filled
            return 0
        if (p.qty > 0.0 and px >= m[4]) or (p.qty < 0.0 and px <= m[4]):
            set_intent_nb(intents, 0, PERP, CLOSE)
            c[5] += 1.0
            m[0] = 0.0
            return 1
        return 0
    on = sig[CASCADE] > 0.0 and sig[NOTIONAL] > th and sig[SIDE] != 0.0
    if phase == 0.0:
        if on:
            m[0] = 1.0
            m[1] = sig[SIDE]
            m[2] = sig[MEAN] if sig[MEAN] > 0.0 else px
            m[3] = px
            c[0 if sig[SIDE] < 0.0 else 1] += 1.0
        return 0
    # phase 1: a cascade is running
    side = m[1]
    if (side < 0.0 and px < m[3]) or (side > 0.0 and px > m[3]):
        m[3] = px
    if sig[CASCADE] > 0.0:
        return 0
    m[0] = 0.0
    p0 = m[2]
    ext = m[3]
    move = (p0 - ext) / p0 * 100.0 * (-side)  # > 0: the price went the cascade's way
    if sp[0].alerts_only or p.qty != 0.0:
        return 0
    if move < sp[0].min_move_pct:
        c[4] += 1.0
        return 0
    if side < 0.0:
        level = sig[LONG_LEVEL]
        gap = (px - level) / px * 100.0
    else:
        level = sig[SHORT_LEVEL]
        gap = (level - px) / px * 100.0
    if level > 0.0 and gap < sp[0].cluster_gap_pct:
        c[3] += 1.0
        return 0
    target = ext + sp[0].retrace * (p0 - ext)
    if (side < 0.0 and px >= target) or (side > 0.0 and px <= target):
        c[4] += 1.0  # already retraced
        return 0
    if side < 0.0:
        set_intent_nb(intents, 0, PERP, LONG, stop=ext * (1.0 - sp[0].stop_pct / 100.0), signal=0)
    else:
        set_intent_nb(intents, 0, PERP, SHORT, stop=ext * (1.0 + sp[0].stop_pct / 100.0), signal=1)
    it = intents[0]
    it.score = fitted[0] if fitted.shape[0] >= 2 else 100.0
    it.contrib[0] = sig[NOTIONAL]
    it.contrib[1] = move
    it.contrib[2] = gap if level > 0.0 else 0.0
    m[4] = target
    m[0] = 2.0
    c[2] += 1.0
    return 1


def signals(p, ctx):
    return [("liq", Metric("liquidation_cascade", inst=PERP, window_ns=p.window_s * SECOND_NS, min_count=p.min_count,
                           min_notional=0.0)),
            ("levels", Metric("liquidation_levels", inst=PERP)),
            ("px", Metric("price_zscore", inst=PERP))]


def triggers(p, columns):
    """One scored condition: liquidated notional in the window above min_notional; its direction is
    the dominant liquidation side (-1: longs liquidated, forced selling), which the metric gives only
    while the window holds min_count liquidations, so a firing is a cascade."""
    return [Trigger("cascade", "liq", columns.index("liq.notional"), "abs", p.min_notional, 100.0,
                    move_column=columns.index("liq.side"), inst=PERP)]


STRATEGY = StrategyDef(
    explain_from="contrib",  # the kernel writes the signal values (in the labels' units) to contrib
    name="liquidation_cascade",
    description="Detect liquidation cascades (and the estimated cluster levels); fade the overshoot or alert only.",
    params=(
        Param("window_s", "s", 300, 1, 86_400, "cascade window (emerald-gameplan 2.2: last 5 min)", integer=True),
        Param("min_count", "liquidations", 10, 1, 1_000_000, "liquidations in the window for a cascade",
              integer=True),
        Param("min_notional", "quote", 500_000.0, 0.0, 1e12, "liquidated notional in the window for a cascade "
              "(intelligence PRD: 5 x the single-liquidation threshold; the scored trigger's default)"),
        Param("min_move_pct", "%", 1.0, 0.0, 50.0, "smallest overshoot (15-min mean before -> extreme) to fade"),
        Param("retrace", "fraction", 0.5, 0.05, 1.0, "target: this share of the overshoot back toward the start"),
        Param("stop_pct", "%", 1.0, 0.05, 20.0, "stop this far beyond the cascade's extreme"),
        Param("cluster_gap_pct", "%", 0.1, 0.0, 50.0, "skip the fade when the next cluster on the cascade's side "
              "is closer than this"),
        Param("alerts_only", "bool", 0, 0, 1, "1: log cascades (signal firings, counters), never trade",
              integer=True),
    ),
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("trades", "liquidations"),
    signal_names=("fade_long_liquidations", "fade_short_liquidations"),
    kinds=("funding", "open_interest", "prices", "trades", "liquidations"),
    execution={"trail_pct": None},
    score_labels=("liq notional", "overshoot %", "cluster gap %"),
    counters=("cascades_long", "cascades_short", "fades", "skipped_near_cluster", "skipped_small_move",
              "target_exits"),
    triggers=triggers,
    source="emerald-gameplan.md 2.2 (liquidation cascade detection, 5 min); intelligence-prd-v2.md (cascade "
           "thresholds, liquidation levels from OI); algo-engine-design.md 9.8 Strategy 5 (cascade overshoot)",
)
