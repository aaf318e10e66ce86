"""Flow toxicity: follow informed flow, i.e. large price moves on ordinary volume.

The metric ``flow_toxicity`` measures, per 1-minute interval, the price impact ``|return| /
(volume / mean volume of the 10 preceding intervals)`` and scores ``toxicity = mean / std`` of
the last 10 impacts (cto-review-revised-direction.md, *Order Flow Toxicity*: "Toxicity > 2.0 =
informed flow entering. Trade in direction of informed traders"). The direction of the move is
the sign of the z-score of the last trade price against the mean trade price of the same ten
minutes (metric ``price_zscore``): above the window's mean, the price went up.

Entry (flat, no working order): ``toxicity > toxicity`` (2.0) and the move has a sign: LONG on an
up move, SHORT on a down move. The condition is the strategy's one scored trigger (``abs`` on
the toxicity, direction from the z-score), so a fitted artifact may move its threshold.

Exits (the design's "hold time 15-60 minutes"): no signal exit before ``min_hold_s`` (15 min);
after it, the kernel closes when the move has turned against the position (z-score below
``-exit_z`` for a long, above ``exit_z`` for a short); the engine closes at ``[execution]
max_hold_s`` (3,600 s by default: the 60 minutes) and applies the configured stops. The position
is not reversed while open.

Counters (``acct[0].mem``): 0 ``entries_long``, 1 ``entries_short``, 2 ``move_exits``.
Event mode only (the toxicity and the z-score are computed from trades).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.signals.base import SECOND_NS, Metric, Param
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger

PERP = 0
# signal columns (the order of signals()): tox.toxicity, tox.mean_impact, tox.std_impact, move.z_score, ...
C_TOX, C_MEAN_IMPACT, C_STD_IMPACT, C_Z = 0, 1, 2, 3
W_TOXICITY = 100.0  # the one scored condition carries the whole score


@njit(cache=True)
def weights_nb(sp, fitted):
    """``[weight, threshold]`` of the toxicity trigger: the engine's vector, else the params."""
    if fitted.shape[0] == 2:
        return fitted
    wt = np.empty(2)
    wt[0] = W_TOXICITY
    wt[1] = sp[0].toxicity
    return wt


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    if inst[i] != PERP or ords[PERP].active:
        return 0
    s = sp[0]
    p = pos[PERP]
    c = acct[0].mem
    tox = sig[C_TOX]
    z = sig[C_Z]
    if p.qty != 0.0:
        if ts[i] - p.entry_ts < s.min_hold_s * SECOND_NS or z != z:
            return 0
        if (p.qty > 0.0 and z < -s.exit_z) or (p.qty < 0.0 and z > s.exit_z):
            set_intent_nb(intents, 0, PERP, CLOSE)
            c[2] += 1.0
            return 1
        return 0
    wt = weights_nb(sp, fitted)
    if not (tox > wt[1]) or not (z == z) or z == 0.0 or wt[0] <= 0.0:
        return 0
    side = 1.0 if z > 0.0 else -1.0
    set_intent_nb(intents, 0, PERP, LONG if side > 0.0 else SHORT, signal=0 if side > 0.0 else 1)
    c[0 if side > 0.0 else 1] += 1.0
    it = intents[0]
    it.score = wt[0]
    it.contrib[0] = side * wt[0]  # the trigger's signed contribution (+ long, - short)
    return 1


def signals(p, ctx):
    if ctx.mode != "event":
        raise ConfigError(f"flow_toxicity: runs in event mode only (it reads trades), was mode {ctx.mode!r}")
    interval = p.interval_s * SECOND_NS
    return [("tox", Metric("flow_toxicity", inst=PERP, interval_ns=interval, n_intervals=p.n_intervals,
                           min_volume_ratio=p.min_volume_ratio)),
            ("move", Metric("price_zscore", inst=PERP, window_ns=interval * p.n_intervals))]


def triggers(p, columns):
    """One scored condition: toxicity above the threshold, in the direction of the move."""
    return [Trigger("toxicity", "toxicity", columns.index("tox.toxicity"), "abs", p.toxicity, W_TOXICITY,
                    move_column=columns.index("move.z_score"), inst=PERP)]


STRATEGY = StrategyDef(
    name="flow_toxicity",
    description="Toxicity (mean/std of price impact per unit volume, 10 x 1 min) > 2: trade in the direction of "
                "the move; hold 15-60 min, exit early when the move turns.",
    params=(
        Param("interval_s", "s", 60, 1, 86_400, "interval (candle) of the impact (design: 1-minute candles)",
              integer=True),
        Param("n_intervals", "intervals", 10, 2, 1024, "intervals in the toxicity window, and in the move's "
              "z-score window (design: window=10)", integer=True),
        Param("min_volume_ratio", "ratio", 0.1, 0.0, 1000.0, "intervals with volume ratio <= this have no impact "
              "(design: 0.1)"),
        Param("toxicity", "ratio", 2.0, 0.0, 100.0, "enter above this toxicity (design: > 2.0 = informed flow)"),
        Param("min_hold_s", "s", 900, 0, 86_400, "no signal exit before this (design: hold 15-60 min)",
              integer=True),
        Param("exit_z", "sigma", 0.0, 0.0, 10.0, "after min_hold_s, close a long when the move's z-score falls "
              "below -exit_z (a short above +exit_z)"),
    ),
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("trades",),
    signal_names=("toxic_up", "toxic_down"),
    kinds=("trades", "funding", "prices"),
    execution={"max_hold_s": 3600.0},
    score_labels=("toxicity",),
    counters=("entries_long", "entries_short", "move_exits"),
    triggers=triggers,
    source="cto-review-revised-direction.md IV.2 (Order Flow Toxicity: calculate_flow_toxicity window=10, "
           "toxicity_signal > 2.0, hold 15-60 minutes)",
)
